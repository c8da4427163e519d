#!/usr/bin/env bash
# Sets up what tests/jupyter needs, under target/jupyter/ (idempotent; quiet
# unless something fails, then the failing step's output is shown):
#   venv-ik6, venv-ik7   ipykernel 6.31.x / 7.4.x (latest of each), jupyter_client,
#                        pytest and the leakguard wheel; ik7 also has jupyterlab,
#                        jupyter_server and maturin, and runs the tests
#   wheels/              the leakguard wheel (maturin, under the shared cargo lock)
#   node/                playwright-core, driving Debian's chromium (browser test)
# As root with apt-get (CI on a fresh Debian machine) it installs chromium too.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=target/jupyter
mkdir -p "$out"
log="$out/setup.log"
: >"$log"

run() {
  if ! "$@" >>"$log" 2>&1; then
    echo "tests/jupyter/setup.sh: failed: $*" >&2
    tail -n 80 "$log" >&2
    exit 1
  fi
}

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  need=()
  dpkg -s chromium >/dev/null 2>&1 || need+=(chromium)
  command -v npm >/dev/null || need+=(npm)
  if [ ${#need[@]} -gt 0 ]; then
    run apt-get update -qq
    run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
  fi
fi

# One stamp per venv: the requirement list it was made with.
venv() {
  local dir="$1"
  shift
  local want="$*"
  if [ ! -x "$dir/bin/python" ]; then
    run python3 -m venv "$dir"
  fi
  if [ "$(cat "$dir/.requirements" 2>/dev/null)" != "$want" ]; then
    run "$dir/bin/python" -m pip install -q --disable-pip-version-check "$@"
    echo "$want" >"$dir/.requirements"
  fi
}

common=(jupyter_client pytest)
venv "$out/venv-ik6" "ipykernel~=6.31.0" "${common[@]}"
venv "$out/venv-ik7" "ipykernel~=7.4.0" "${common[@]}" jupyterlab jupyter_server "maturin>=1.5,<2"

rm -rf "$out/wheels"
run scripts/with-build-lock "$out/venv-ik7/bin/maturin" build --release --compatibility linux \
  -m crates/python/Cargo.toml -i "$out/venv-ik7/bin/python" -o "$out/wheels"
wheel=$(ls "$out"/wheels/leakguard-*.whl)
sum=$(sha256sum "$wheel" | cut -d' ' -f1)
for v in "$out/venv-ik6" "$out/venv-ik7"; do
  if [ "$(cat "$v/.wheel" 2>/dev/null)" != "$sum" ]; then
    run "$v/bin/python" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "$wheel"
    echo "$sum" >"$v/.wheel"
  fi
done

if [ ! -f "$out/node/node_modules/playwright-core/package.json" ]; then
  run npm install --prefix "$out/node" --no-audit --no-fund --loglevel=error "playwright-core@1"
fi
