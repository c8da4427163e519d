#!/usr/bin/env bash
# leakguard's protected environment: JupyterLab (HTTPS) and SSH whose output
# is masked by leakguard, and fail2ban banning SSH clients that keep showing
# secrets.
#
#   entrypoint.sh [start]          set up, start every service, wait; SIGTERM,
#                                  SIGINT or SIGHUP stop them all
#   entrypoint.sh health           exit 0 when the enabled services answer
#   entrypoint.sh install-jupyter  enable the kernel extension, the kernel
#                                  proxy, the terminal shell and the pre-save
#                                  hook in the Python environment (run once
#                                  at image build too)
#
# The container image runs it under tini; ./start.sh and tests/e2e run the
# same script outside Docker. Every port, path and switch comes from the
# environment (docs/operations.md lists them); leakguard's own settings come
# from the config file and the usual variables (REDACT_MODE, SCAN_INPUT, ...,
# LEAKGUARD_<SETTING>), and reach SSH sessions too.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

say() { printf 'leakguard-entrypoint: %s\n' "$*" >&2; }
die() {
  say "error: $*"
  exit 1
}

switch() { # NAME DEFAULT: an on/off variable, as on or off
  local v=${!1:-$2}
  case ${v,,} in
    1 | on | true | yes) echo on ;;
    0 | off | false | no) echo off ;;
    *) die "$1=$v: expected on or off" ;;
  esac
}

is_root() { [ "$(id -u)" = 0 ]; }

bin=${LEAKGUARD_BIN:-$(command -v leakguard || echo /usr/local/bin/leakguard)}
python=${LEAKGUARD_PYTHON:-$(command -v python3 || echo python3)}
etc_dir=${LEAKGUARD_ETC_DIR:-/etc/leakguard}
log_dir=${LEAKGUARD_LOG_DIR:-/var/log/leakguard}
state_dir=${LEAKGUARD_STATE_DIR:-/var/lib/leakguard}
workspace=${LEAKGUARD_WORKSPACE:-/workspace}
group=${LEAKGUARD_GROUP:-leakguard}
bind=${LEAKGUARD_BIND_ADDRESS:-0.0.0.0}
jupyter_port=${LEAKGUARD_JUPYTER_PORT:-8888}
ssh_port=${LEAKGUARD_SSH_PORT:-2222}
if is_root; then
  user=${LEAKGUARD_USER:-dev}
  root_default=on
else
  user=$(id -un)
  [ "${LEAKGUARD_USER:-$user}" = "$user" ] || die "LEAKGUARD_USER=$LEAKGUARD_USER: only root can run JupyterLab as another user"
  root_default=off
fi
jupyter=$(switch LEAKGUARD_JUPYTER on)
sshd=$(switch LEAKGUARD_SSHD "$root_default")
fail2ban=$(switch LEAKGUARD_FAIL2BAN "$sshd")
tls=$(switch LEAKGUARD_TLS on)
# Kernels run behind `leakguard kernel-proxy`, which user code cannot switch off.
enforce_kernels=$(switch LEAKGUARD_ENFORCE_KERNELS on)
tls_cert=${LEAKGUARD_TLS_CERT:-$state_dir/tls/jupyter.crt}
tls_key=${LEAKGUARD_TLS_KEY:-$state_dir/tls/jupyter.key}
run_dir=$state_dir/run
for port in "$jupyter_port" "$ssh_port"; do
  if ! [[ $port =~ ^[0-9]+$ ]] || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then
    die "port $port: expected a number from 1 to 65535"
  fi
done

# A host address clients of this machine can use to reach the services.
local_host() {
  case $bind in
    0.0.0.0 | '' | '*') echo 127.0.0.1 ;;
    :: | '[::]') echo ::1 ;;
    *) echo "$bind" ;;
  esac
}

scheme() { if [ "$tls" = on ]; then echo https; else echo http; fi; }

url_host() { # IPv6 literals need brackets in URLs
  local h
  h=$(local_host)
  case $h in *:*) echo "[$h]" ;; *) echo "$h" ;; esac
}

# ---------------------------------------------------------------------------
# health: the services answer.

jupyter_answers() {
  curl -fsS -k -o /dev/null --max-time 5 "$(scheme)://$(url_host):$jupyter_port/api" 2>/dev/null
}

# sshd's listener is up: its pid file names a live process and the port is
# in LISTEN state. Read from /proc, as a connection would be logged by sshd
# at every health check.
sshd_answers() {
  local pid hex
  pid=$(cat "$run_dir/sshd.pid" 2>/dev/null) || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  hex=$(printf '%04X' "$ssh_port")
  grep -qE "^ *[0-9]+: [0-9A-F]+:$hex [0-9A-F]+:0000 0A " /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

health() {
  local bad=0
  if [ "$jupyter" = on ] && ! jupyter_answers; then
    say "JupyterLab does not answer on port $jupyter_port"
    bad=1
  fi
  if [ "$sshd" = on ] && ! sshd_answers; then
    say "sshd does not answer on port $ssh_port"
    bad=1
  fi
  return "$bad"
}

# ---------------------------------------------------------------------------
# Settings: the config file, the audit trail and its key.

# The effective value of one setting (empty when unset).
setting() {
  local line
  line=$(grep -E "^$1 = " <<<"$shown" || true)
  line=${line#"$1 = "}
  line=${line%%  # *}
  [ "$line" = "(none)" ] || printf '%s' "$line"
}

sed_replacement() { printf '%s' "$1" | sed 's/[\\&|]/\\&/g'; }

setup_settings() {
  unset LEAKGUARD_ACTIVE # set inside a protected shell: Jupyter terminals would not be filtered
  [ -x "$bin" ] || die "LEAKGUARD_BIN=$bin: not an executable (build it with cargo build --release)"
  if [ -n "${LEAKGUARD_CONFIG:-}" ]; then
    config=$LEAKGUARD_CONFIG
    [ -f "$config" ] || die "LEAKGUARD_CONFIG=$config: no such file"
  else
    config=$etc_dir/config.toml
    if [ ! -e "$config" ]; then
      mkdir -p "$etc_dir"
      sed -e "s|/etc/leakguard/|$(sed_replacement "$etc_dir/")|g" \
        -e "s|/var/log/leakguard/|$(sed_replacement "$log_dir/")|g" \
        "$here/config.example.toml" >"$config"
      chmod 0644 "$config"
      say "wrote $config from config.example.toml"
    fi
  fi
  export LEAKGUARD_CONFIG=$config
  # `config show` validates every setting (a bad value is an error naming it).
  shown=$("$bin" config show) || die "the settings above are not valid"
  # One audit file and one key for every kernel and session, or the chain
  # cannot be verified: fill them in when the settings leave them unset.
  if [ -z "$(setting audit_log)" ]; then
    export LEAKGUARD_AUDIT_LOG=$log_dir/audit.jsonl
  fi
  if [ -z "$(setting audit_key_file)" ]; then
    export LEAKGUARD_AUDIT_KEY_FILE=$etc_dir/audit.key
  fi
  shown=$("$bin" config show)
  audit_log=$(setting audit_log)
  audit_key=$(setting audit_key_file)

  mkdir -p "$(dirname "$audit_log")" "$(dirname "$audit_key")"
  touch "$audit_log"
  if [ ! -s "$audit_key" ]; then
    (
      umask 077
      od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$audit_key"
    )
  fi
  if is_root; then
    # Kernels, terminals and SSH sessions run as the users and append to the
    # shared file; they need the key for fingerprints and the chain.
    if ! { chgrp "$group" "$audit_log" && chmod 0660 "$audit_log"; }; then
      die "cannot share $audit_log with group $group"
    fi
    # A key mounted read-only (a Kubernetes Secret) keeps the mode it was given.
    if ! { chgrp "$group" "$audit_key" && chmod 0640 "$audit_key"; } 2>/dev/null; then
      say "warning: cannot give $audit_key to group $group; the users' kernels and sessions must be able to read it"
    fi
  fi
}

# The environment SSH sessions get (sshd builds it from scratch): the config
# file, PATH, and every leakguard setting given in this environment.
session_env() {
  local key name
  printf '%s\n' "LEAKGUARD_CONFIG=$LEAKGUARD_CONFIG" "PATH=$(dirname "$bin"):$(dirname "$python"):$PATH"
  [ -z "${LEAKGUARD_PROFILE:-}" ] || printf '%s\n' "LEAKGUARD_PROFILE=$LEAKGUARD_PROFILE"
  for name in SCAN_INPUT REDACT_MODE ALLOWLIST_PATHS PATTERN_UPDATE_INTERVAL; do
    [ -z "${!name+x}" ] || printf '%s\n' "$name=${!name}"
  done
  while read -r key _; do
    name=LEAKGUARD_${key^^}
    [ -z "${!name+x}" ] || printf '%s\n' "$name=${!name}"
  done < <(grep -E '^[a-z_]+ = ' <<<"$shown")
}

# ---------------------------------------------------------------------------
# Users.

setup_user() {
  is_root || return 0
  getent group "$group" >/dev/null || groupadd "$group"
  if ! id "$user" >/dev/null 2>&1; then
    # '*': no password can log in, but the account is not locked ('!'),
    # which sshd would refuse even for keys.
    useradd -m -s /bin/bash -G "$group" -p '*' ${LEAKGUARD_UID:+-u "$LEAKGUARD_UID"} "$user"
    say "created user $user"
  elif [ "$user" != root ] && ! id -nG "$user" | tr ' ' '\n' | grep -qx "$group"; then
    usermod -a -G "$group" "$user"
  fi
}

user_home() { getent passwd "$1" | cut -d: -f6; }

# The argv prefix that runs a command as the JupyterLab user, with that
# user's identity variables (in the array `as_user`).
user_argv() {
  local home
  home=$(user_home "$user")
  as_user=(env HOME="$home" USER="$user" LOGNAME="$user")
  if [ "$(id -un)" != "$user" ]; then
    as_user=(setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups --
      "${as_user[@]}" SHELL="$(getent passwd "$user" | cut -d: -f7)")
  fi
}

# ---------------------------------------------------------------------------
# sshd: host keys, keys of the user, the config from deploy/sshd/leakguard.conf.

# One SetEnv argument: quoted, with \ and " escaped (sshd splits its config
# lines like a shell would).
sshd_quote() {
  local v=$1
  case $v in *$'\n'*) die "a setting for SSH sessions holds a line break: ${v%%=*}" ;; esac
  v=${v//\\/\\\\}
  v=${v//\"/\\\"}
  printf '"%s"' "$v"
}

setup_sshd() {
  local dir=$state_dir/ssh fragment line setenv=() home keys
  command -v sshd >/dev/null || [ -x /usr/sbin/sshd ] || die "sshd is not installed (apt-get install openssh-server), or set LEAKGUARD_SSHD=off"
  mkdir -p "$dir" "$run_dir" /run/sshd
  chmod 0755 /run/sshd
  [ -f "$dir/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C '' -f "$dir/ssh_host_ed25519_key"
  [ -f "$dir/ssh_host_rsa_key" ] || ssh-keygen -q -t rsa -b 3072 -N '' -C '' -f "$dir/ssh_host_rsa_key"

  if [ -n "${LEAKGUARD_SSH_AUTHORIZED_KEYS:-}" ]; then
    home=$(user_home "$user")
    keys=$home/.ssh/authorized_keys
    install -d -m 0700 -o "$user" -g "$(id -g "$user")" "$home/.ssh"
    touch "$keys"
    while IFS= read -r line; do
      [ -z "$line" ] || grep -qxF "$line" "$keys" || printf '%s\n' "$line" >>"$keys"
    done <<<"$LEAKGUARD_SSH_AUTHORIZED_KEYS"
    chown "$user:$(id -g "$user")" "$keys"
    chmod 0600 "$keys"
  fi

  fragment=$(<"$here/sshd/leakguard.conf")
  for line in "Port 2222" "Match Group leakguard" "ForceCommand /usr/local/bin/leakguard shell"; do
    grep -qF "$line" <<<"$fragment" || die "$here/sshd/leakguard.conf has no line '$line' to fill in"
  done
  fragment=$(sed -e "s|^Port 2222\$|Port $ssh_port|" \
    -e "s|^Match Group leakguard\$|Match Group $(sed_replacement "$group")|" \
    -e "s|ForceCommand /usr/local/bin/leakguard shell|ForceCommand $(sed_replacement "$bin") shell|" <<<"$fragment")
  while IFS= read -r line; do
    setenv+=("$(sshd_quote "$line")")
  done < <(session_env)
  {
    echo "# Written by entrypoint.sh at every start: edit deploy/sshd/leakguard.conf or the environment instead."
    echo "ListenAddress $bind"
    echo "HostKey $dir/ssh_host_ed25519_key"
    echo "HostKey $dir/ssh_host_rsa_key"
    echo "PidFile $run_dir/sshd.pid"
    echo "AuthenticationMethods publickey"
    echo "PasswordAuthentication no"
    echo "KbdInteractiveAuthentication no"
    echo "PermitRootLogin no"
    echo "UsePAM yes"
    # Only members of the group log in, and every one of their sessions runs
    # through the ForceCommand below.
    echo "AllowGroups $group"
    echo
    printf '%s\n' "$fragment"
    echo "    SetEnv ${setenv[*]}"
  } >"$dir/sshd_config"
  "$(command -v sshd || echo /usr/sbin/sshd)" -t -f "$dir/sshd_config" || die "sshd rejects $dir/sshd_config"
}

# ---------------------------------------------------------------------------
# fail2ban: a private configuration with the leakguard jail on the audit file.

setup_fail2ban() {
  local dir=$state_dir/fail2ban f
  command -v fail2ban-server >/dev/null || die "fail2ban is not installed (apt-get install fail2ban), or set LEAKGUARD_FAIL2BAN=off"
  [ -d /etc/fail2ban ] || die "/etc/fail2ban is missing: reinstall fail2ban"
  rm -rf "$dir"
  mkdir -p "$run_dir"
  cp -a /etc/fail2ban "$dir"
  # The distribution's jail.d enables jails (sshd) for logs this machine may not have.
  rm -f "$dir"/jail.d/*
  cp "$here"/fail2ban/filter.d/*.conf "$dir/filter.d/"
  cp "$here/fail2ban/jail.d/leakguard.local" "$dir/jail.d/10-leakguard.local"
  cat >"$dir/jail.d/20-entrypoint.local" <<EOF
# Written by entrypoint.sh. Files in $etc_dir/fail2ban/jail.d/ are copied
# after this one and override it.
[DEFAULT]
banaction = nftables-multiport
banaction_allports = nftables-allports

# No syslog daemon here: the JSON-lines audit file is the source.
[leakguard]
enabled = false

[leakguard-json]
enabled = true
port = $ssh_port
logpath = $audit_log
EOF
  for f in "$etc_dir"/fail2ban/jail.d/*.local "$etc_dir"/fail2ban/jail.d/*.conf; do
    [ -f "$f" ] && cp "$f" "$dir/jail.d/90-$(basename "$f" .conf | sed 's/\.local$//').local"
  done
  cat >"$dir/fail2ban.local" <<EOF
[Definition]
logtarget = STDOUT
allowipv6 = auto
socket = $run_dir/fail2ban.sock
pidfile = $run_dir/fail2ban.pid
dbfile = $state_dir/fail2ban.sqlite3
EOF
  fail2ban-client -c "$dir" -t >/dev/null || die "fail2ban rejects its configuration in $dir"
}

# ---------------------------------------------------------------------------
# JupyterLab.

python_prefix() { "$python" -c 'import sys; print(sys.prefix)'; }

# The server settings that make terminals and saved files safe, for every
# server started from this Python (the entrypoint's and JupyterHub's
# jupyterhub-singleuser alike): a marked block in the environment's
# jupyter_server_config.py, replaced on every run, other settings kept.
server_config() { echo "$(python_prefix)/etc/jupyter/jupyter_server_config.py"; }

install_jupyter() {
  local file
  "$python" -c 'import jupyterlab, leakguard' 2>/dev/null ||
    die "LEAKGUARD_PYTHON=$python: needs JupyterLab and the leakguard package (./start.sh --setup-only installs both)"
  file=$(server_config)
  mkdir -p "$(dirname "$file")"
  "$python" - "$bin" "$file" <<'EOF'
import json, os, re, sys
binary, path = sys.argv[1:]
begin, end = "# >>> leakguard (entrypoint.sh install-jupyter) >>>", "# <<< leakguard <<<"
block = "\n".join([
    begin,
    "# Jupyter terminals run through leakguard's PTY proxy; notebooks and files are masked before saving.",
    f'c.ServerApp.terminado_settings.update({{"shell_command": {json.dumps([binary, "shell", "-l"])}}})',
    'c.ContentsManager.pre_save_hook = "leakguard.server.pre_save"',
    end,
]) + "\n"
try:
    with open(path) as f:
        text = f.read()
except FileNotFoundError:
    text = "c = get_config()  # noqa\n"
text = re.sub(re.escape(begin) + ".*?" + re.escape(end) + "\n?", "", text, flags=re.S)
if text and not text.endswith("\n"):
    text += "\n"
with open(path + ".tmp", "w") as f:
    f.write(text + block)
os.replace(path + ".tmp", path)
EOF
  "$python" -m leakguard.jupyter_cli install --sys-prefix >&2
  if [ "$enforce_kernels" = on ]; then
    # The environment's kernelspecs (the server's data dir holds none of the user's).
    JUPYTER_DATA_DIR=$state_dir/jupyter/data "$python" -m leakguard.jupyter_cli install --enforce --leakguard "$bin" >&2
  else
    JUPYTER_DATA_DIR=$state_dir/jupyter/data "$python" -m leakguard.jupyter_cli uninstall --enforce >&2
  fi
}

setup_jupyter() {
  local prefix host
  prefix=$(python_prefix)
  if [ -w "$prefix" ]; then
    install_jupyter
  else
    grep -qs "leakguard (entrypoint.sh install-jupyter)" "$(server_config)" ||
      die "$prefix is read-only and $(server_config) does not set leakguard up: run entrypoint.sh install-jupyter as its owner"
  fi
  if [ ! -d "$workspace" ]; then
    mkdir -p "$workspace"
    ! is_root || chown "$user:$(id -g "$user")" "$workspace"
  fi
  if [ "$tls" = on ] && [ ! -f "$tls_cert" ] && [ ! -f "$tls_key" ]; then
    command -v openssl >/dev/null || die "openssl is needed for the self-signed certificate (or set LEAKGUARD_TLS_CERT/KEY)"
    mkdir -p "$(dirname "$tls_cert")" "$(dirname "$tls_key")"
    host=$(hostname)
    (
      umask 077
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 825 \
        -subj "/CN=$host" -addext "subjectAltName=DNS:localhost,DNS:$host,IP:127.0.0.1,IP:::1" \
        -keyout "$tls_key" -out "$tls_cert" 2>/dev/null
    ) || die "openssl could not create $tls_cert"
    chmod 0644 "$tls_cert"
    ! is_root || chown "$user" "$tls_key"
    say "made a self-signed certificate $tls_cert"
  fi
  if [ "$tls" = on ]; then
    if [ ! -r "$tls_cert" ] || [ ! -r "$tls_key" ]; then
      die "TLS certificate $tls_cert or key $tls_key missing"
    fi
  fi
  if [ -z "${JUPYTER_TOKEN:-}" ]; then
    JUPYTER_TOKEN=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
  fi
  export JUPYTER_TOKEN # read by the server; kept off its command line, where ps shows it
  install -d -m 0755 "$state_dir/jupyter/config" "$state_dir/jupyter/data"
  # jupyter_core migrates IPython 3 config once and records that in this
  # marker; a marker the user cannot write tells it to skip.
  touch "$state_dir/jupyter/config/migrated"
  user_argv
  "${as_user[@]}" "$python" -c 'import jupyterlab, leakguard' ||
    die "user $user cannot run $python with JupyterLab and leakguard: put the environment where $user can read it"
}

# When root starts JupyterLab for a user, the user's own Jupyter config and
# data directories (~/.jupyter, ~/.local/share/jupyter) would come first at
# the next start and could switch the terminal shell, the pre-save hook or
# the kernelspecs back; the server gets root-owned ones instead, and keeps
# the user's settings, workspaces and runtime files where they always are.
jupyter_env() {
  local home
  if [ "$(id -un)" = "$user" ]; then
    return 0
  fi
  home=$(user_home "$user")
  printf '%s\0' "JUPYTER_CONFIG_DIR=$state_dir/jupyter/config" "JUPYTER_DATA_DIR=$state_dir/jupyter/data" \
    "JUPYTER_RUNTIME_DIR=$home/.local/share/jupyter/runtime" \
    "JUPYTERLAB_SETTINGS_DIR=$home/.jupyter/lab/user-settings" \
    "JUPYTERLAB_WORKSPACES_DIR=$home/.jupyter/lab/workspaces"
}

jupyter_command() {
  local cmd=("$python" -m jupyterlab --no-browser
    "--ServerApp.ip=$bind" "--ServerApp.port=$jupyter_port" --ServerApp.port_retries=0
    "--ServerApp.root_dir=$workspace")
  if [ "$tls" = on ]; then
    cmd+=("--ServerApp.certfile=$tls_cert" "--ServerApp.keyfile=$tls_key")
  fi
  [ "$user" != root ] || cmd+=(--allow-root)
  if [ "$(id -un)" != "$user" ]; then
    cmd+=("--NotebookNotary.data_dir=$(user_home "$user")/.local/share/jupyter")
  fi
  # shellcheck disable=SC2206 # extra arguments are words, as on a command line
  cmd+=(${LEAKGUARD_JUPYTER_ARGS:-})
  printf '%s\0' "${cmd[@]}"
}

# ---------------------------------------------------------------------------
# Services.

pids=()
names=()
stop_signal=''

service() { # NAME DIR COMMAND...: in its own session, so a terminal's ^C reaches only us
  local name=$1 dir=$2
  shift 2
  (cd "$dir" && exec setsid "$@") </dev/null &
  pids+=("$!")
  names+=("$name")
  say "started $name (pid $!)"
}

# Every process below PID (from /proc; procps may be missing).
descendants() {
  local stat line rest pid ppid found=("$1") i=0 all=()
  for stat in /proc/[0-9]*/stat; do
    read -r line 2>/dev/null <"$stat" || continue
    pid=${stat#/proc/}
    pid=${pid%/stat}
    rest=${line##*) } # the command name may hold spaces and parentheses
    read -r _ ppid _ <<<"$rest"
    all+=("$pid:$ppid")
  done
  while [ "$i" -lt "${#found[@]}" ]; do
    for line in "${all[@]}"; do
      [ "${line#*:}" != "${found[$i]}" ] || found+=("${line%%:*}")
    done
    i=$((i + 1))
  done
  printf '%s\n' "${found[@]:1}"
}

# sleep that a ^C (which reaches our foreground children too) cannot turn
# into an exit through `set -e`: the trap records the signal instead.
nap() { sleep "$1" || true; }

alive() {
  local pid
  for pid in "$@"; do
    if kill -0 "$pid" 2>/dev/null; then return 0; fi
  done
  return 1
}

wait_gone() { # SECONDS PID...
  local deadline=$((SECONDS + $1))
  shift
  while alive "$@" && [ "$SECONDS" -lt "$deadline" ]; do nap 0.2; done
}

stop_all() {
  local tree=() pid
  [ "${#pids[@]}" -gt 0 ] || return 0
  for pid in "${pids[@]}"; do
    mapfile -t -O "${#tree[@]}" tree < <(descendants "$pid")
  done
  say "stopping ${names[*]}"
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait_gone 15 "${pids[@]}"
  # What outlived its service: sshd's per-connection processes (their own
  # sessions), kernels and shells a server did not end in time.
  if [ "${#tree[@]}" -gt 0 ] && alive "${tree[@]}"; then
    kill -TERM "${tree[@]}" 2>/dev/null || true
    wait_gone 3 "${tree[@]}"
  fi
  kill -KILL "${pids[@]}" "${tree[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
}

on_signal() { stop_signal=$1; }

start() {
  local i status=0 host ready=''
  trap 'on_signal TERM' TERM
  trap 'on_signal INT' INT
  trap 'on_signal HUP' HUP
  if [ "$sshd" = on ] || [ "$fail2ban" = on ]; then
    is_root || die "sshd and fail2ban need root: run as root, or set LEAKGUARD_SSHD=off"
  fi
  setup_user
  setup_settings
  [ "$sshd" = off ] || setup_sshd
  [ "$fail2ban" = off ] || setup_fail2ban
  [ "$jupyter" = off ] || setup_jupyter

  if [ "$fail2ban" = on ]; then
    service fail2ban / fail2ban-server -f -x -c "$state_dir/fail2ban"
  fi
  if [ "$sshd" = on ]; then
    service sshd / "$(command -v sshd || echo /usr/sbin/sshd)" -D -e -f "$state_dir/ssh/sshd_config"
  fi
  if [ "$jupyter" = on ]; then
    local cmd=() env=()
    mapfile -d '' cmd < <(jupyter_command)
    mapfile -d '' env < <(jupyter_env)
    service jupyterlab "$workspace" "${as_user[@]}" "${env[@]}" "${cmd[@]}"
  fi
  [ "${#pids[@]}" -gt 0 ] || die "every service is switched off"

  # Ready when every enabled service answers.
  while [ -z "$stop_signal" ]; do
    if health 2>/dev/null; then
      ready=yes
      break
    fi
    for i in "${!pids[@]}"; do
      alive "${pids[$i]}" || break 2
    done
    nap 0.5
  done
  if [ -n "$ready" ]; then
    host=$(url_host)
    [ "$jupyter" = off ] || say "JupyterLab: $(scheme)://$host:$jupyter_port/lab?token=$JUPYTER_TOKEN"
    if [ "$sshd" = on ] && [ "$user" = root ]; then
      say "SSH on port $ssh_port: for members of group $group with a key in ~/.ssh/authorized_keys (not root)"
    elif [ "$sshd" = on ]; then
      say "SSH: ssh -p $ssh_port $user@$host (members of group $group, key authentication)"
    fi
    say "audit trail: $audit_log; ready"
  fi

  while [ -z "$stop_signal" ]; do
    for i in "${!pids[@]}"; do
      if ! alive "${pids[$i]}"; then
        wait "${pids[$i]}" || status=$?
        say "${names[$i]} exited (status $status): stopping the others"
        [ "$status" -ne 0 ] || status=1
        break 2
      fi
    done
    wait -n 2>/dev/null || true
  done
  [ -z "$stop_signal" ] || say "got SIG$stop_signal"
  stop_all
  exit "$status"
}

case ${1:-start} in
  start) start ;;
  health) health ;;
  install-jupyter) install_jupyter ;;
  *) die "unknown command $1: expected start, health or install-jupyter" ;;
esac
