#!/usr/bin/env bash
# Starts the protected environment on this machine: JupyterLab over HTTPS,
# whose kernels, terminals and saved notebooks mask secrets, and, when run
# as root, SSH through `leakguard shell` with fail2ban. It first installs
# what is missing: the Rust toolchain (rustup) and the leakguard build, a
# Python environment with JupyterLab and the leakguard package, and as root
# the Debian packages (openssh-server, fail2ban, ...). Ctrl-C stops it all.
#
#   ./start.sh                set up, then start
#   ./start.sh --setup-only   set up only
#
# It keeps everything in this checkout: .venv/ (the Python environment),
# workspace/ (JupyterLab's folder), target/start/ (settings, audit trail,
# keys, certificate). deploy/entrypoint.sh, which the container image runs
# too, does the starting; its variables (docs/operations.md) work here, e.g.
#   LEAKGUARD_JUPYTER_PORT=9999 REDACT_MODE=block ./start.sh
# It listens on 127.0.0.1 unless LEAKGUARD_BIND_ADDRESS says otherwise.
# As root, JupyterLab runs as the user who ran sudo (else root) unless
# LEAKGUARD_USER names another.
set -euo pipefail
cd "$(dirname "$0")"
repo=$PWD

setup_only=no
for arg in "$@"; do
  case $arg in
    --setup-only) setup_only=yes ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "start.sh: unknown argument $arg (try --help)" >&2
      exit 2
      ;;
  esac
done

venv=${LEAKGUARD_VENV:-$repo/.venv}
python=${PYTHON:-python3}
out=$repo/target/start
log=$out/setup.log
mkdir -p "$out"
: >"$log"

step() { echo "start.sh: $*" >&2; }

# Quiet unless a step fails; then its output is shown.
run() {
  if ! "$@" >>"$log" 2>&1; then
    echo "start.sh: failed: $*" >&2
    tail -n 60 "$log" >&2
    exit 1
  fi
}

is_root() { [ "$(id -u)" = 0 ]; }

# --- Debian packages (root only; otherwise say what is missing).
need=()
command -v curl >/dev/null || need+=(curl)
command -v openssl >/dev/null || need+=(openssl)
command -v cc >/dev/null || need+=(build-essential)
"$python" -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if is_root; then
  [ -x /usr/sbin/sshd ] || need+=(openssh-server)
  command -v ssh >/dev/null || need+=(openssh-client)
  command -v fail2ban-server >/dev/null || need+=(fail2ban)
fi
if [ ${#need[@]} -gt 0 ]; then
  if is_root && command -v apt-get >/dev/null; then
    step "installing ${need[*]}"
    run apt-get update -qq
    run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
  else
    echo "start.sh: please install ${need[*]} (or run this as root on Debian/Ubuntu)" >&2
    exit 1
  fi
fi

# --- Rust and the leakguard binary.
if ! command -v cargo >/dev/null; then
  if [ ! -x "$HOME/.cargo/bin/cargo" ]; then
    step "installing the Rust toolchain (rustup, into ~/.cargo)"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs -o "$out/rustup-init.sh"
    run sh "$out/rustup-init.sh" -y --profile minimal --no-modify-path
  fi
  PATH=$HOME/.cargo/bin:$PATH
fi
# Whether FILE is missing or older than a source it is built from.
stale() {
  [ ! -e "$1" ] || [ -n "$(find crates rules Cargo.toml Cargo.lock -newer "$1" -print -quit)" ]
}
if stale target/release/leakguard; then
  step "building leakguard (cargo build --release; the first build takes a few minutes)"
  run scripts/with-build-lock cargo build --release --locked -p leakguard
fi

# --- The Python environment: JupyterLab and the leakguard package.
if [ ! -x "$venv/bin/python" ]; then
  step "creating the Python environment $venv"
  run "$python" -m venv "$venv"
fi
want="$(cat deploy/requirements.txt) maturin>=1.5,<2"
if [ "$(cat "$venv/.leakguard-requirements" 2>/dev/null)" != "$want" ]; then
  step "installing JupyterLab into $venv"
  run "$venv/bin/python" -m pip install -q --disable-pip-version-check -r deploy/requirements.txt "maturin>=1.5,<2"
  echo "$want" >"$venv/.leakguard-requirements"
fi
if stale "$venv/.leakguard-wheel"; then
  step "building the leakguard Python package"
  rm -rf "$out/wheels"
  run scripts/with-build-lock "$venv/bin/maturin" build --release --locked -m crates/python/Cargo.toml \
    -i "$venv/bin/python" -o "$out/wheels"
  wheel=$(ls "$out"/wheels/leakguard-*.whl)
  sum=$(sha256sum "$wheel" | cut -d' ' -f1)
  if [ "$(cat "$venv/.leakguard-wheel" 2>/dev/null)" != "$sum" ]; then
    run "$venv/bin/python" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "$wheel"
  fi
  echo "$sum" >"$venv/.leakguard-wheel"
fi

if [ "$setup_only" = yes ]; then
  step "set up: $repo/target/release/leakguard, $venv"
  exit 0
fi

# --- Start: the container's entrypoint with this checkout's paths.
export LEAKGUARD_BIN=$repo/target/release/leakguard
export LEAKGUARD_PYTHON=$venv/bin/python
export LEAKGUARD_ETC_DIR=${LEAKGUARD_ETC_DIR:-$out/etc}
export LEAKGUARD_LOG_DIR=${LEAKGUARD_LOG_DIR:-$out/log}
export LEAKGUARD_STATE_DIR=${LEAKGUARD_STATE_DIR:-$out/state}
export LEAKGUARD_WORKSPACE=${LEAKGUARD_WORKSPACE:-$repo/workspace}
export LEAKGUARD_BIND_ADDRESS=${LEAKGUARD_BIND_ADDRESS:-127.0.0.1}
if is_root; then
  export LEAKGUARD_USER=${LEAKGUARD_USER:-${SUDO_USER:-root}}
fi
step "starting; Ctrl-C stops everything"
exec "$repo/deploy/entrypoint.sh" start
