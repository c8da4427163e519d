#!/usr/bin/env python3
"""Tensor-only corpus: gen_corpus.py with every filler block a PyTorch tensor print.

The worst case for a matcher that looks at number runs (dense digits, signs,
decimal points, no words). Same arguments as gen_corpus.py, whose path comes
from $LEAKGUARD_GEN_CORPUS (default: ../shared/bench/gen_corpus.py next to the repo).

    python3 benches/gen_tensor.py --out corpus/tensor --size-mb 100 --secrets 0
"""
import importlib.util
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
path = os.environ.get("LEAKGUARD_GEN_CORPUS", os.path.join(here, "..", "..", "shared", "bench", "gen_corpus.py"))
if not os.path.exists(path):
    sys.exit(f"gen_corpus.py not found at {path}: set LEAKGUARD_GEN_CORPUS to its path")
spec = importlib.util.spec_from_file_location("gen_corpus", path)
gen = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gen)
gen.Filler.KINDS = [("tensor", 1)]
gen.main()
