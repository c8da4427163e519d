"""Benchmark: what the leakguard extension costs a kernel.

  target/jupyter/venv-ik7/bin/python tests/jupyter/bench_kernel.py [--line ik7] [--mb 100] [--rounds 3]

1. A cell printing ``--mb`` MB of tensor-like text (lines of signed floats,
   as a printed tensor or array looks) in 1 MB prints, timed from
   execute_request to the kernel's idle with every stream message received,
   with and without the extension. Rounds alternate between the two
   kernels; medians are compared.
2. The same for ``--rows-mb`` MB printed one row (~100 characters) per
   print: the cost per write.
3. Kernel start (process start to kernel_info reply), with and without.

Targets (DESIGN.md): under 5% slower, under 50 ms extra start. The machine
is shared: compare the ratio of one run, and re-run when it is quiet.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import EXTENSION, PLAIN, Kernels  # noqa: E402

# One MB-ish block of tensor-like text, built in the kernel; printed N times.
SETUP = """
import random as _r
_r.seed(7)
_row = lambda: '[' + ', '.join(f'{_r.uniform(-3, 3):.4f}' for _ in range(12)) + '],'
BLOCK = '\\n'.join(_row() for _ in range(12800)) + '\\n'
ROW = _row()
len(BLOCK)
"""
PRINT = "for _ in range({n}):\n    print(BLOCK, end='')"
PRINT_ROWS = "for _ in range({n}):\n    print(ROW)"


def run_cell(k, code):
    t = time.perf_counter()
    r = k.execute(code, timeout=600)
    took = time.perf_counter() - t
    assert r.status == "ok", r
    return took, sum(len(m["content"]["text"]) for m in r.of_type("stream")), len(r.of_type("stream"))


def bench_print(kernels, line, mb, rounds, rows=False):
    ks = {name: kernels.get(line, layer) for name, layer in (("plain", PLAIN), ("leakguard", EXTENSION))}
    block = {}
    for name, k in ks.items():
        r = k.execute(SETUP)
        block[name] = int(r.of_type("execute_result")[0]["content"]["data"]["text/plain"])
        if rows:
            block[name] = int(k.eval("len(ROW) + 1"))
    n = max(1, round(mb * 1e6 / block["plain"]))
    code = (PRINT_ROWS if rows else PRINT).format(n=n)
    times = {name: [] for name in ks}
    for i in range(rounds + 1):
        for name, k in ks.items() if i % 2 == 0 else reversed(list(ks.items())):
            took, chars, msgs = run_cell(k, code)
            assert chars == n * block[name], (name, chars, n * block[name])
            if i > 0:  # the first round warms up both
                times[name].append(took)
                print(f"  {name:9} {took:7.3f} s  {chars / 1e6:.0f} MB in {msgs} stream messages", flush=True)
    med = {name: statistics.median(t) for name, t in times.items()}
    print(
        f"print {n * block['plain'] / 1e6:.0f} MB {'row by row' if rows else 'in 1 MB prints'} ({line}): "
        f"plain {med['plain']:.3f} s, "
        f"leakguard {med['leakguard']:.3f} s, {100 * (med['leakguard'] / med['plain'] - 1):+.1f}%"
    )


def bench_start(kernels, line, rounds):
    times = {"plain": [], "leakguard": []}
    for i in range(rounds):
        for name, layer in (("plain", PLAIN), ("leakguard", EXTENSION)) if i % 2 == 0 else (
            ("leakguard", EXTENSION),
            ("plain", PLAIN),
        ):
            t = time.perf_counter()
            k = kernels.get(line, layer, tag=f"start-{i}", options={"check": False})
            times[name].append(time.perf_counter() - t)
            k.shutdown()
    med = {name: statistics.median(t) for name, t in times.items()}
    print(
        f"kernel start ({line}): plain {1000 * med['plain']:.0f} ms, leakguard {1000 * med['leakguard']:.0f} ms, "
        f"{1000 * (med['leakguard'] - med['plain']):+.0f} ms"
    )


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--line", default="ik7", choices=["ik6", "ik7"])
    p.add_argument("--mb", type=float, default=100)
    p.add_argument("--rows-mb", type=float, default=10)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--start-rounds", type=int, default=7)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        kernels = Kernels(tmp)
        try:
            bench_print(kernels, args.line, args.mb, args.rounds)
            bench_print(kernels, args.line, args.rows_mb, args.rounds, rows=True)
            kernels.shutdown()
            bench_start(kernels, args.line, args.start_rounds)
        finally:
            kernels.shutdown()


if __name__ == "__main__":
    main()
