"""The protected environment end to end: deploy/entrypoint.sh, as the
container runs it, on 127.0.0.1 with free ports and private directories.
It creates a user, starts fail2ban, sshd and JupyterLab (HTTPS) as that
user; the tests reach them the way people do (ssh, a browser) and check
what they see, the audit trail, the fail2ban ban and a clean shutdown.

Tests run in file order against one running environment: the ban test
comes first, while the audit trail holds no failures yet, and the
shutdown test last."""
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "system"))
from conftest import ROOT, assert_nothing_of, free_port, leakguard, require, stop, wait_for  # noqa: E402,F401

USER = "lge2e"
GROUP = "leakguard"
MAXRETRY = 3
ENTRYPOINT = os.path.join(ROOT, "deploy", "entrypoint.sh")

# Test secrets, put together at run time.
OPENAI = "sk-proj-" + "Xq3Tb8NwLp5Rk2Vz7Hc9Md4Fs6Gj1Ay0" + "Ue8Wo3Bi5Kt7Nr2Lx9Pv4Qm6Cz1Dh8Ef3Jg5"
GITHUB = "ghp_" + "Tz4Lw8Qp2Rn6Kv9Xs3Bm" + "7Hd1Fc5Gj0Ya8Ue2W"
AWS_KEY_ID = "AKIA" + "Q7LTRWZB3N5X2KPD"
AWS_SECRET = "Hk7pQ2vL9xRt4Wm8Zc3N" + "b6Fd1Gs5Jy0Ua2Ei7Ko4"
HF = "hf_" + "Pq7Lk2Vx9Rt4Wm8Zc3Nb" + "6Fd1Gs5JyUaEiKoRb"
SECRETS = [OPENAI, GITHUB, AWS_KEY_ID, AWS_SECRET, HF]
ENV_FILE = (f"OPENAI_API_KEY={OPENAI}\nGITHUB_TOKEN={GITHUB}\nAWS_ACCESS_KEY_ID={AWS_KEY_ID}\n"
            f"AWS_SECRET_ACCESS_KEY={AWS_SECRET}\nHF_TOKEN={HF}\nDEBUG=1\n")


def tree(pid):
    """pid and every process below it."""
    parents = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = open(f"/proc/{d}/stat").read()
            except OSError:
                continue
            parents[int(d)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, i = [pid], 0
    while i < len(found):
        found += [p for p, pp in parents.items() if pp == found[i]]
        i += 1
    return found


def running(pid):
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def cmdline(pid):
    try:
        return open(f"/proc/{pid}/cmdline", "rb").read()
    except OSError:
        return b""


def user_processes():
    uid = pwd.getpwnam(USER).pw_uid
    return [int(d) for d in os.listdir("/proc") if d.isdigit() and running(int(d))
            and os.stat(f"/proc/{d}").st_uid == uid]


class Environment:
    def __init__(self, work, binary):
        self.work = work
        self.ssh_port, self.jupyter_port = free_port(), free_port()
        self.state = os.path.join(work, "state")
        self.audit = os.path.join(work, "log", "audit.jsonl")
        self.key = os.path.join(work, "etc", "audit.key")
        self.banned = os.path.join(work, "banned.txt")
        self.binary = binary
        self.client_key = os.path.join(work, "client_key")
        self.output = os.path.join(work, "entrypoint.log")
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("LEAKGUARD_") and k not in ("REDACT_MODE", "SCAN_INPUT", "ALLOWLIST_PATHS",
                                                                    "PATTERN_UPDATE_INTERVAL", "JUPYTER_TOKEN")}
        self.env.update(
            LEAKGUARD_BIN=binary, LEAKGUARD_ETC_DIR=os.path.join(work, "etc"),
            LEAKGUARD_LOG_DIR=os.path.join(work, "log"), LEAKGUARD_STATE_DIR=self.state,
            LEAKGUARD_WORKSPACE=os.path.join(work, "workspace"), LEAKGUARD_USER=USER, LEAKGUARD_GROUP=GROUP,
            LEAKGUARD_BIND_ADDRESS="127.0.0.1", LEAKGUARD_SSH_PORT=str(self.ssh_port),
            LEAKGUARD_JUPYTER_PORT=str(self.jupyter_port), LEAKGUARD_JUPYTER="off",
        )
        self.proc = None

    def ssh(self, *args):
        return ["ssh", "-p", str(self.ssh_port), "-i", self.client_key, "-o", "IdentitiesOnly=yes",
                "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                "-o", f"UserKnownHostsFile={self.work}/known_hosts", "-o", "LogLevel=ERROR",
                *args, f"{USER}@127.0.0.1"]

    def run(self, command, *args):
        return subprocess.run(self.ssh(*args) + [command], capture_output=True, timeout=60,
                              stdin=subprocess.DEVNULL)

    def fail2ban(self, *args):
        return subprocess.run(["fail2ban-client", "-c", os.path.join(self.state, "fail2ban"), *args],
                              capture_output=True, text=True, timeout=30)

    def log(self):
        return open(self.output, errors="replace").read()

    def healthy(self):
        assert self.proc.poll() is None, f"the entrypoint exited ({self.proc.returncode}):\n{self.log()}"
        return subprocess.run([ENTRYPOINT, "health"], env=self.env, capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def env(leakguard):
    require("/usr/sbin/sshd", "ssh", "ssh-keygen", "fail2ban-server", "fail2ban-client", "setpriv", "useradd",
            "openssl", "curl")
    if os.geteuid() != 0:
        pytest.fail("the end-to-end test creates a user and runs sshd and fail2ban: run it as root (.ci/run does)")
    work = tempfile.mkdtemp(prefix="lg-e2e-")
    os.chmod(work, 0o755)
    try:
        pwd.getpwnam(USER)
        made_user = False
    except KeyError:
        made_user = True
    # Sessions run the binary as the test user: keep it where every user can read it.
    binary = os.path.join(work, "leakguard")
    shutil.copy(leakguard, binary)
    e = Environment(work, binary)
    try:
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", e.client_key], check=True)
        e.env["LEAKGUARD_SSH_AUTHORIZED_KEYS"] = open(e.client_key + ".pub").read()
        # The operator's jail overrides: a dummy ban action, and loopback is
        # not exempt (fail2ban ignores its own addresses by default).
        jail_d = os.path.join(work, "etc", "fail2ban", "jail.d")
        os.makedirs(jail_d)
        with open(os.path.join(jail_d, "e2e.local"), "w") as f:
            f.write(f"[DEFAULT]\nignoreself = false\nignoreip =\n\n[leakguard-json]\nmaxretry = {MAXRETRY}\n"
                    f"backend = polling\naction = dummy[target={e.banned}]\n")
        e.proc = subprocess.Popen([ENTRYPOINT], env=e.env, stdout=open(e.output, "w"), stderr=subprocess.STDOUT,
                                  start_new_session=True)
        wait_for("the environment to answer", e.healthy, timeout=180, interval=0.5)
        home = pwd.getpwnam(USER).pw_dir
        with open(os.path.join(home, ".env"), "w") as f:
            f.write(ENV_FILE)
        os.chown(os.path.join(home, ".env"), pwd.getpwnam(USER).pw_uid, pwd.getpwnam(USER).pw_gid)
        yield e
    finally:
        if e.proc is not None:
            stop(e.proc, timeout=30)
        subprocess.run(["pkill", "-KILL", "-u", USER], capture_output=True)
        if made_user:
            subprocess.run(["userdel", "-r", USER], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def failures(env):
    status = env.fail2ban("status", "leakguard-json").stdout
    line = next((l for l in status.splitlines() if "Total failed:" in l), "")
    return int(line.split(":")[-1]) if line else 0


def banned(env):
    return os.path.exists(env.banned) and "+127.0.0.1" in open(env.banned).read()


def test_fail2ban_bans_after_maxretry(env):
    r = env.run("grep GITHUB_TOKEN .env")  # one secret: one failure
    assert r.returncode == 0 and b"[REDACTED]" in r.stdout, r
    wait_for("fail2ban to count the leak", lambda: failures(env) >= 1)
    n = failures(env)
    assert n < MAXRETRY and not banned(env), f"banned after {n} failures, below maxretry"
    r = env.run("cat .env")
    assert r.returncode == 0, r
    wait_for("the ban", lambda: banned(env))
    assert failures(env) >= MAXRETRY
    assert "127.0.0.1" in env.fail2ban("status", "leakguard-json").stdout


def test_ssh_command_without_a_pty(env):
    r = env.run("cat .env")
    assert r.returncode == 0, r
    text = r.stdout.decode()
    assert text.count("[REDACTED]") == 5 and "DEBUG=1" in text
    assert len(r.stdout) == len(ENV_FILE.encode()), "masks keep the byte length of piped output"
    assert_nothing_of(SECRETS, text, "ssh host 'cat .env'")


def test_ssh_with_a_pty(env):
    r = env.run("cat .env; exit 3", "-tt")
    assert r.returncode == 3, r
    text = r.stdout.decode()
    assert text.count("[REDACTED]") == 5 and "DEBUG=1" in text
    assert_nothing_of(SECRETS, text, "ssh -tt host 'cat .env'")


def test_audit_trail(env, leakguard):
    text = open(env.audit).read()
    assert_nothing_of(SECRETS, text, "the audit trail")
    lines = text.splitlines()
    ssh = [line for line in lines if '"channel":"ssh"' in line and '"src":"127.0.0.1"' in line]
    assert any('"event":"session_start"' in line for line in ssh)
    assert sum('"event":"secret_detected"' in line for line in ssh) >= 5 * 3
    assert all(f'"user":"{USER}"' in line for line in ssh)
    r = subprocess.run([leakguard, "audit", "verify", env.audit, "--key", env.key], capture_output=True, text=True)
    assert r.returncode == 0, r


def test_sigterm_stops_everything(env):
    session = subprocess.Popen(env.ssh("-tt") + ["sleep 600"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        wait_for("the SSH session", lambda: any(b"sleep" in cmdline(p) for p in user_processes()))
        before = tree(env.proc.pid)
        assert len(before) > 4, before
        env.proc.send_signal(signal.SIGTERM)
        assert env.proc.wait(60) == 0, env.log()
        time.sleep(0.5)
        left = [p for p in before if running(p)]
        assert not left, f"left running after SIGTERM: {left}"
        assert not user_processes(), "processes of the user outlived the environment"
        assert "got SIGTERM" in env.log()
    finally:
        session.kill()
        session.wait()
