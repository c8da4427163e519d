#!/usr/bin/env python3
"""Throughput of `leakguard scan`: files/s and MB/s on two trees, with one
thread and with every core.

    python3 benches/scan.py [--runs 3] [--bin target/release/leakguard]

Trees (generated once into target/bench/scan/ by ../shared/bench/gen_corpus.py,
deterministic):
  mixed      1,000 files, about 20 MB (generated with planted secrets): logs, .env, YAML, JSON, shell and Python
             files cut from the text corpus, and small notebooks
  notebooks  100 MB of notebooks (.ipynb), 1 MB each

Prints a Markdown table (best of --runs). Findings are expected: the corpora
carry planted secrets, as a real workspace would; the exit code 1 that
`scan` gives for them is not an error here.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GEN = os.environ.get("LEAKGUARD_GEN_CORPUS", os.path.join(ROOT, "..", "shared", "bench", "gen_corpus.py"))
WORK = os.path.join(ROOT, "target", "bench", "scan")
EXTENSIONS = [".log", ".env", ".yaml", ".json", ".sh", ".py", ".txt", ".cfg", ".md"]


def generate(out, *args):
    subprocess.run([sys.executable, GEN, "--out", out, *args], check=True, stdout=subprocess.DEVNULL)
    return os.path.join(out, "files")


def mixed_tree():
    tree = os.path.join(WORK, "mixed")
    if os.path.isdir(tree):
        return tree
    text = generate(os.path.join(WORK, "gen-text"), "--size-mb", "25", "--file-mb", "0.015", "--secrets", "300")
    nbs = generate(os.path.join(WORK, "gen-nb"), "--size-mb", "3", "--file-mb", "0.015", "--secrets", "40",
                   "--format", "ipynb", "--seed", "2")
    staging = tree + ".tmp"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    names = sorted(os.listdir(text))[:900]
    notebooks = sorted(os.listdir(nbs))[:100]
    assert len(names) == 900 and len(notebooks) == 100, "gen_corpus made fewer files than the tree needs"
    for i, name in enumerate(names):
        sub = os.path.join(staging, f"project{i % 10}", ["src", "config", "logs"][i % 3])
        os.makedirs(sub, exist_ok=True)
        shutil.copy(os.path.join(text, name), os.path.join(sub, f"file{i}{EXTENSIONS[i % len(EXTENSIONS)]}"))
    for i, name in enumerate(notebooks):
        sub = os.path.join(staging, f"project{i % 10}", "notebooks")
        os.makedirs(sub, exist_ok=True)
        shutil.copy(os.path.join(nbs, name), os.path.join(sub, name))
    os.rename(staging, tree)
    return tree


def notebook_tree():
    out = os.path.join(WORK, "notebooks")
    files = os.path.join(out, "files")
    if not os.path.isdir(files):
        generate(out, "--size-mb", "100", "--file-mb", "1", "--secrets", "400", "--format", "ipynb", "--seed", "3")
    return files


def tree_size(tree):
    n = size = 0
    for d, _, fs in os.walk(tree):
        for f in fs:
            n += 1
            size += os.path.getsize(os.path.join(d, f))
    return n, size


def scan(binary, tree, threads, runs):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEAKGUARD_")}
    env.update(LEAKGUARD_CONFIG=os.devnull, LEAKGUARD_AUDIT_KEY_FILE=os.path.join(WORK, "audit.key"),
               ALLOWLIST_PATHS="[]")
    best, findings = float("inf"), None
    for _ in range(runs):
        started = time.perf_counter()
        r = subprocess.run([binary, "scan", "--format", "json", "--no-ignore", "--threads", str(threads), tree],
                           capture_output=True, env=env)
        took = time.perf_counter() - started
        if r.returncode not in (0, 1):
            sys.exit(f"scan failed ({r.returncode}): {r.stderr.decode(errors='replace')}")
        best = min(best, took)
        findings = len(json.loads(r.stdout))
    return best, findings


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "leakguard"))
    args = ap.parse_args()
    if not os.path.exists(GEN):
        sys.exit(f"{GEN} not found: set LEAKGUARD_GEN_CORPUS to gen_corpus.py")
    cores = os.cpu_count() or 1
    print(f"leakguard scan, best of {args.runs}, {cores} cores\n")
    print("| tree | threads | files | MB | seconds | files/s | MB/s | findings |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, tree in (("1,000 mixed files", mixed_tree()), ("notebooks, 100 MB", notebook_tree())):
        n, size = tree_size(tree)
        for threads in sorted({1, cores}):
            took, findings = scan(args.bin, tree, threads, args.runs)
            print(f"| {name} | {threads} | {n} | {size / 1e6:.1f} | {took:.2f} | {n / took:,.0f} | "
                  f"{size / 1e6 / took:,.0f} | {findings} |", flush=True)


if __name__ == "__main__":
    main()
