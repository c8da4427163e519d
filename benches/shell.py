#!/usr/bin/env python3
"""Bulk throughput and keystroke echo latency of `leakguard shell`, against
the same path without it and with `script` (util-linux) in its place.

    sudo python3 benches/shell.py [--mb 200] [--keys 500] [--runs 3]

Throughput: `cat` of a generated log (../shared/bench/gen_corpus.py, no
secrets) through `ssh -tt` to three sshd servers on 127.0.0.1 that differ
only in their ForceCommand (none, `script`, `leakguard shell`), and through a
local pseudo-terminal (the command run directly, under `script`, under
`leakguard shell -c`). Every variant runs once per round, rounds alternate,
and the best round counts, so the machine's load hits all alike.

Latency: one keystroke at a time into `cat` on a raw pseudo-terminal, timed
from the write to the master until its echo comes back; median and p99.

Needs root (it creates a test user for sshd, as tests/system/test_ssh.py does).
"""
import argparse
import os
import pty
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
from support import ROOT, SshUser, binary, isolated_env  # noqa: E402

GEN = os.environ.get("LEAKGUARD_GEN_CORPUS", os.path.join(ROOT, "..", "shared", "bench", "gen_corpus.py"))
# What people type: words, options, paths, punctuation.
TYPED = "ls -la ~/projects && git status; python train.py --epochs 10 --lr 3e-4 | tee log.txt\r"


def corpus(work, mb):
    out = os.path.join(work, "gen")
    subprocess.run([sys.executable, GEN, "--out", out, "--size-mb", str(mb), "--secrets", "0"], check=True,
                   stdout=subprocess.DEVNULL)
    path = os.path.join(work, "log.txt")
    with open(path, "wb") as f:
        for name in sorted(os.listdir(os.path.join(out, "files"))):
            with open(os.path.join(out, "files", name), "rb") as part:
                shutil.copyfileobj(part, f)
    shutil.rmtree(out)
    os.chmod(path, 0o644)
    return path


def drain_pty(argv, env=None):
    """Runs argv on a new pseudo-terminal, reads all it prints; returns
    (seconds, bytes)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execvpe(argv[0], argv, env or os.environ)
    started, total = time.perf_counter(), 0
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except OSError:
            break
        if not chunk:
            break
        total += len(chunk)
    took = time.perf_counter() - started
    os.waitpid(pid, 0)
    os.close(fd)
    return took, total


def echo_latency(argv, keys, env=None):
    """Milliseconds from writing one key to reading its echo, for `keys` keys."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execvpe(argv[0], argv, env or os.environ)
    try:
        buf = b""
        while b"ready" not in buf:  # the command prints it once the terminal is raw
            r, _, _ = select.select([fd], [], [], 10)
            if not r:
                raise RuntimeError(f"{argv} never became ready: {buf!r}")
            buf += os.read(fd, 4096)
        samples = []
        for i in range(keys):
            key = TYPED[i % len(TYPED)].encode()
            started = time.perf_counter()
            os.write(fd, key)
            got = b""
            while key not in got:
                r, _, _ = select.select([fd], [], [], 5)
                if not r:
                    raise RuntimeError(f"no echo of {key!r} from {argv}")
                got += os.read(fd, 4096)
            samples.append((time.perf_counter() - started) * 1000)
            time.sleep(0.002)
        return samples
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(fd)


def p99(samples):
    return sorted(samples)[int(len(samples) * 0.99) - 1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--keys", type=int, default=500)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the benchmark creates a test user for sshd")
    work = tempfile.mkdtemp(prefix="lg-bench-shell-")
    os.chmod(work, 0o755)
    try:
        lg = os.path.join(work, "leakguard")
        shutil.copy(binary(), lg)
        os.chmod(lg, 0o755)
        log = corpus(work, args.mb)
        size = os.path.getsize(log)
        env = isolated_env(work, LEAKGUARD_AUDIT_SYSLOG="false")
        env.pop("LEAKGUARD_ACTIVE", None)
        raw_cat = "stty raw -echo; echo ready; exec cat"
        with SshUser(work) as user:
            audit = os.path.join(work, "audit")
            os.makedirs(audit)
            os.chown(audit, user.pw.pw_uid, user.pw.pw_gid)
            with open(os.path.join(work, "config.toml"), "w") as f:
                f.write(f'audit_syslog = false\naudit_key_file = "{audit}/audit.key"\n')
            os.chmod(os.path.join(work, "config.toml"), 0o644)
            common = f"SetEnv LEAKGUARD_CONFIG={work}/config.toml\n"
            ports = {
                "plain": user.sshd("plain", ""),
                "script": user.sshd("script", 'ForceCommand script -qec "$SSH_ORIGINAL_COMMAND" /dev/null\n'),
                "leakguard shell": user.sshd("leakguard", common + f"ForceCommand {lg} shell\n"),
            }
            ssh_tt = {name: user.ssh(port, "-tt") + [f"cat {log}"] for name, port in ports.items()}
            local = {
                "plain": ["cat", log],
                "script": ["script", "-qec", f"cat {log}", "/dev/null"],
                "leakguard shell": [lg, "shell", "-c", f"cat {log}"],
            }
            best = {}
            for _ in range(args.runs):
                for path, variants in (("ssh -tt", ssh_tt), ("local PTY", local)):
                    for name, argv in variants.items():
                        took, n = drain_pty(argv, env)
                        if n < size:
                            sys.exit(f"{path} {name}: read {n} of {size} bytes")
                        best[(path, name)] = min(best.get((path, name), float("inf")), took)
            latency = {}
            for _ in range(args.runs):
                for name, argv in (("plain", ["sh", "-c", raw_cat]),
                                   ("script", ["script", "-qec", raw_cat, "/dev/null"]),
                                   ("leakguard shell", [lg, "shell", "-c", raw_cat])):
                    latency.setdefault(name, []).extend(echo_latency(argv, args.keys, env))
        print(f"\n{size / 1e6:.0f} MB log, best of {args.runs} rounds\n")
        print("| path | plain | script | leakguard shell | leakguard / script |")
        print("| --- | --- | --- | --- | --- |")
        for path in ("ssh -tt", "local PTY"):
            rate = {name: size / 1e6 / best[(path, name)] for name in local}
            print(f"| {path} | {rate['plain']:.0f} MB/s | {rate['script']:.0f} MB/s | "
                  f"{rate['leakguard shell']:.0f} MB/s | {100 * rate['leakguard shell'] / rate['script']:.0f}% |")
        print(f"\nkeystroke echo, {args.keys} keys x {args.runs} rounds, local PTY\n")
        print("| path | median | p99 |")
        print("| --- | --- | --- |")
        for name, samples in latency.items():
            print(f"| {name} | {statistics.median(samples):.3f} ms | {p99(samples):.3f} ms |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
