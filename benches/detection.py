#!/usr/bin/env python3
"""Detection quality on a gen_corpus.py corpus: per-type recall and clean-text changes.

    benches/detection.py CORPUS_DIR [--leakguard target/release/leakguard] [--show N]

CORPUS_DIR is the --out directory of ../shared/bench/gen_corpus.py (files/ and
ground_truth.jsonl). Every file is redacted by `leakguard redact`; a planted
secret counts as caught when no 8-byte piece of it is left on its lines, and
every changed line that holds no planted secret counts as a false positive.
Redaction uses the same-width style, which keeps line breaks, so lines align.
"""
import argparse
import collections
import json
import os
import subprocess
import sys


def pieces(text, n=8):
    text = text.replace("\n", "")
    return {text[i:i + n] for i in range(0, max(1, len(text) - n + 1))}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus")
    ap.add_argument("--leakguard", default=os.path.join(os.path.dirname(__file__), "..", "target", "release", "leakguard"))
    ap.add_argument("--show", type=int, default=3, help="misses and false positives to print per type")
    a = ap.parse_args()
    files_dir = os.path.join(a.corpus, "files")
    truth = collections.defaultdict(list)
    gt_path = os.path.join(a.corpus, "ground_truth.jsonl")
    if os.path.exists(gt_path):
        for line in open(gt_path, encoding="utf-8"):
            g = json.loads(line)
            truth[g["file"]].append(g)
    caught, total, misses = collections.Counter(), collections.Counter(), collections.defaultdict(list)
    false_positives = []
    for name in sorted(os.listdir(files_dir)):
        src = open(os.path.join(files_dir, name), "rb").read()
        out = subprocess.run([a.leakguard, "redact", "--style", "same-width"], input=src, stdout=subprocess.PIPE, check=True).stdout
        before = src.decode("utf-8").split("\n")
        after = out.decode("utf-8").split("\n")
        if len(before) != len(after):
            sys.exit(f"{name}: line count changed ({len(before)} -> {len(after)})")
        planted_lines = set()
        for g in truth[name]:
            total[g["type"]] += 1
            lines = range(g["line"] - 1, g["end_line"])
            planted_lines.update(lines)
            region = "\n".join(after[i] for i in lines)
            left = [p for p in pieces(g["text"]) if p in region]
            if left:
                misses[g["type"]].append((name, g["line"], g["context"][:160]))
            else:
                caught[g["type"]] += 1
        for i, (b, c) in enumerate(zip(before, after)):
            if b != c and i not in planted_lines:
                false_positives.append((name, i + 1, b[:160], c[:160]))
    print(f"{'type':<28} {'caught':>7} {'total':>7} {'recall':>7}")
    for t in sorted(total):
        print(f"{t:<28} {caught[t]:>7} {total[t]:>7} {caught[t] / total[t]:>7.1%}")
    n = sum(total.values())
    if n:
        print(f"{'all':<28} {sum(caught.values()):>7} {n:>7} {sum(caught.values()) / n:>7.1%}")
    print(f"changed lines without a planted secret: {len(false_positives)}")
    for t, ms in sorted(misses.items()):
        for m in ms[: a.show]:
            print(f"  miss {t}: {m[0]}:{m[1]}: {m[2]}")
    for fp in false_positives[: a.show * 5]:
        print(f"  changed {fp[0]}:{fp[1]}: {fp[2]}\n       -> {fp[3]}")


if __name__ == "__main__":
    main()
