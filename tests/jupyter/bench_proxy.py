"""What the kernel proxy costs: round trips and bulk output, with and
without it, measured in one run (the machine is shared: compare the two
columns, not numbers from different runs).

    target/jupyter/venv-ik7/bin/python tests/jupyter/bench_proxy.py [--line ik7] [--rounds 400] [--mb 100]

Reports the median and p99 of kernel_info and empty-cell execute round
trips, and the throughput of one large print, for a plain kernel and the
same kernel behind ``leakguard kernel-proxy`` (in-kernel extension off in
both). Rounds alternate between the two kernels so load changes hit both.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from conftest import PLAIN, Kernel  # noqa: E402
from proxy_layer import PROXY  # noqa: E402


def shell_round_trip(k, send):
    t = time.perf_counter()
    mid = send()
    while True:
        m = k.kc.get_shell_msg(timeout=30)
        if m["parent_header"].get("msg_id") == mid:
            break
    return time.perf_counter() - t, mid


def wait_idle(k, mid):
    while True:
        m = k.kc.get_iopub_msg(timeout=600)
        if m["parent_header"].get("msg_id") == mid and m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
            return


def kernel_info(k):
    dt, _ = shell_round_trip(k, k.kc.kernel_info)
    return dt


def empty_cell(k):
    t = time.perf_counter()
    _, mid = shell_round_trip(k, lambda: k.kc.execute("", store_history=False))
    wait_idle(k, mid)
    return time.perf_counter() - t


def big_print(k, mb):
    code = f"import sys\nsys.stdout.write(('x' * 99 + '\\n') * {mb * 10_000})\nsys.stdout.flush()"
    t = time.perf_counter()
    mid = k.kc.execute(code, store_history=False)
    got = 0
    while True:
        m = k.kc.get_iopub_msg(timeout=600)
        if m["parent_header"].get("msg_id") != mid:
            continue
        if m["msg_type"] == "stream":
            got += len(m["content"]["text"])
        if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
            break
    dt = time.perf_counter() - t
    assert got == mb * 1_000_000, f"received {got} bytes of {mb * 1_000_000}"
    return dt


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--line", default="ik7")
    ap.add_argument("--rounds", type=int, default=400)
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--prints", type=int, default=3)
    a = ap.parse_args()
    root = tempfile.mkdtemp(prefix="bench-proxy-")
    kernels = {"plain": Kernel(a.line, PLAIN, {}, root), "proxy": Kernel(a.line, PROXY, {}, root)}
    try:
        results = {name: {"kernel_info": [], "empty cell": [], "print": []} for name in kernels}
        for k in kernels.values():  # warm up
            for _ in range(20):
                kernel_info(k)
                empty_cell(k)
        for _ in range(a.rounds):
            for name, k in kernels.items():
                results[name]["kernel_info"].append(kernel_info(k))
                results[name]["empty cell"].append(empty_cell(k))
        for _ in range(a.prints):
            for name, k in kernels.items():
                results[name]["print"].append(big_print(k, a.mb))
        print(f"ipykernel line {a.line}, {a.rounds} rounds, load average {os.getloadavg()[0]:.1f}")
        print(f"{'':14}{'plain':>22}{'proxy':>22}{'added':>12}")
        for what in ("kernel_info", "empty cell"):
            row = []
            for name in kernels:
                xs = results[name][what]
                row.append((statistics.median(xs) * 1e3, pct(xs, 99) * 1e3))
            cells = "".join(f"{m:9.3f} / {p:7.3f} ms " for m, p in row)
            print(f"{what:14}{cells}{row[1][0] - row[0][0]:+9.3f} ms   (median / p99)")
        tp = {name: a.mb / statistics.median(results[name]["print"]) for name in kernels}
        print(f"{a.mb} MB print   {tp['plain']:15.1f} MB/s {tp['proxy']:15.1f} MB/s   {tp['proxy'] / tp['plain']:.0%} of plain")
    finally:
        for k in kernels.values():
            k.shutdown()


if __name__ == "__main__":
    main()
