"""Shared helpers for system tests: the built binary, free ports, process cleanup."""
import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="session")
def leakguard():
    """Path of the release binary (built by .ci/run before the tests)."""
    path = os.environ.get("LEAKGUARD_BIN", os.path.join(ROOT, "target", "release", "leakguard"))
    assert os.path.exists(path), f"{path} missing: run cargo build --release first"
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, check, timeout=30.0, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def isolated_env(tmp, **extra):
    """An environment that ignores the machine's leakguard settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEAKGUARD_") and k not in ("REDACT_MODE", "SCAN_INPUT")}
    config = os.path.join(tmp, "empty-config.toml")
    if not os.path.exists(config):
        open(config, "w").close()
    env.update(LEAKGUARD_CONFIG=config, LEAKGUARD_AUDIT_KEY_FILE=os.path.join(tmp, "audit.key"))
    env.update(extra)
    return env


# Vendor prefixes that stay visible around a mask, so they are not pieces of a secret.
PREFIXES = ("sk-proj-", "ghp_", "AKIA", "hf_")


def pieces(secret, n=6):
    """Every run of n characters of a secret's body (after its prefix)."""
    body = next((secret[len(p):] for p in PREFIXES if secret.startswith(p)), secret)
    return {body[i:i + n] for i in range(len(body) - n + 1)}


def assert_nothing_of(secrets, text, what):
    for s in secrets:
        for p in pieces(s):
            assert p not in text, f"{what} shows {p!r} of a secret:\n{text}"


def stop(proc, sig=signal.SIGTERM, timeout=10):
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def require(*tools):
    missing = [t for t in tools if shutil.which(t) is None and not os.path.exists(t)]
    if missing:
        pytest.fail(f"missing system tools {missing}: .ci/run installs them")
