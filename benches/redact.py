#!/usr/bin/env python3
"""Throughput and peak memory of `leakguard redact` as a filter (stdin to
stdout, one thread), with `cat` of the same bytes as the reference.

    python3 benches/redact.py [--runs 3] [--gb 1] [--bin target/release/leakguard]

Corpora (generated once into target/bench/redact/ by ../shared/bench/gen_corpus.py,
deterministic; `LEAKGUARD_GEN_CORPUS` points elsewhere):
  clean    100 MB of notebook/terminal output (tensor prints, logs, tracebacks,
           base64 images, hashes), no secrets
  planted  the same kind of text with 2,000 planted secrets

For each corpus: MB/s of CPU time (user + system of the child, which a busy
machine disturbs far less than wall time; wall-time MB/s in brackets), best
of --runs. Then `--gb` GB of the clean corpus, repeated, are piped through
`redact` and its peak resident memory is reported (the target is < 64 MB).
"""
import argparse
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GEN = os.environ.get("LEAKGUARD_GEN_CORPUS", os.path.join(ROOT, "..", "shared", "bench", "gen_corpus.py"))
WORK = os.path.join(ROOT, "target", "bench", "redact")


def corpus(name, *args):
    """One file holding the whole generated corpus."""
    path = os.path.join(WORK, name + ".txt")
    if os.path.exists(path):
        return path
    out = os.path.join(WORK, "gen-" + name)
    subprocess.run([sys.executable, GEN, "--out", out, "--size-mb", "100", *args], check=True,
                   stdout=subprocess.DEVNULL)
    files = os.path.join(out, "files")
    with open(path + ".tmp", "wb") as dst:
        for f in sorted(os.listdir(files)):
            with open(os.path.join(files, f), "rb") as src:
                dst.write(src.read())
    os.rename(path + ".tmp", path)
    return path


def run(argv, stdin):
    """Runs argv to completion; returns (cpu seconds, wall seconds, peak RSS in KiB).
    The child's rusage comes from wait4, so other processes do not count."""
    start = time.perf_counter()
    p = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - start
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"{argv[0]} exited with {p.returncode}")
    return usage.ru_utime + usage.ru_stime, wall, usage.ru_maxrss


def best(runs, argv, path):
    results = []
    for _ in range(runs):
        with open(path, "rb") as stdin:
            results.append(run(argv, stdin))
    return min(r[0] for r in results), min(r[1] for r in results)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--gb", type=float, default=1.0, help="size of the peak-memory run")
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "leakguard"))
    a = ap.parse_args()
    os.makedirs(WORK, exist_ok=True)
    # Built-in defaults only: no config or rule files of this machine.
    os.environ["LEAKGUARD_CONFIG"] = os.devnull
    corpora = [("clean", corpus("clean", "--secrets", "0")),
               ("planted", corpus("planted", "--secrets", "2000", "--seed", "1"))]
    print("| corpus | MB | cat MB/s | redact MB/s | redact / cat |")
    print("|---|---|---|---|---|")
    for name, path in corpora:
        mb = os.path.getsize(path) / 1e6
        cat_cpu, cat_wall = best(a.runs, ["cat"], path)
        cpu, wall = best(a.runs, [a.bin, "redact"], path)
        print(f"| {name} | {mb:.0f} | {mb / cat_cpu:.0f} ({mb / cat_wall:.0f} wall) "
              f"| {mb / cpu:.0f} ({mb / wall:.0f} wall) | {cat_cpu / cpu:.1%} |")

    # `cat` feeds the repeated corpus: had this process written it, the
    # child's peak RSS would count this process's memory from before exec.
    path = corpora[0][1]
    repeats = max(1, round(a.gb * 1e9 / os.path.getsize(path)))
    total = repeats * os.path.getsize(path)
    feeder = subprocess.Popen(["cat"] + [path] * repeats, stdout=subprocess.PIPE)
    cpu, wall, rss = run([a.bin, "redact"], stdin=feeder.stdout)
    feeder.stdout.close()
    if feeder.wait() != 0:
        sys.exit("cat failed")
    print(f"\npeak RSS of `leakguard redact` over {total / 1e9:.1f} GB on stdin: {rss / 1024:.1f} MiB "
          f"({total / 1e6 / cpu:.0f} MB/s CPU, {total / 1e6 / wall:.0f} MB/s wall)")

if __name__ == "__main__":
    main()
