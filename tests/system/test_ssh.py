"""`leakguard shell` behind a real sshd on loopback, through the real ssh,
sftp and scp clients: the deploy/sshd fragment, a test user in the
`leakguard` group, key authentication (shared/research/ssh.md section 5)."""
import grp
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time

import pexpect
import pytest

from conftest import ROOT, assert_nothing_of, free_port, require, stop, wait_for

USER = "lgtest"
GROUP = "leakguard"
GITHUB = "ghp_R7kPq2LmN9xVt4Hs8WzC1bYd6FjG3aEu0K9p"
OPENAI = "sk-proj-R7kPq2LmN9xVt4Hs8WzC1bYd6FjG3aEu0K9pR7kPq2LmN9xVt4Hs8WzC1b"
PASSWORD = "Qv7pLw2xZr9Kd3"
ENV_FILE = f"OPENAI_API_KEY={OPENAI}\nGITHUB_TOKEN={GITHUB}\nDEBUG=1\n"
SECRETS = [GITHUB, OPENAI, PASSWORD]


class Host:
    """sshd on 127.0.0.1 with the fragment, and ssh command lines for it."""

    def __init__(self, work, port):
        self.work, self.port = work, port
        self.config = os.path.join(work, "config.toml")
        self.audit = os.path.join(work, "audit", "audit.jsonl")
        self.home = pwd.getpwnam(USER).pw_dir
        key = os.path.join(work, "client_key")
        self.opts = ["-i", key, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                     "-o", f"UserKnownHostsFile={work}/known_hosts", "-o", "LogLevel=ERROR"]

    def ssh(self, *args):
        return ["ssh", "-p", str(self.port), *self.opts, *args, f"{USER}@127.0.0.1"]

    def run(self, command, *args, **kw):
        return subprocess.run(self.ssh(*args) + [command], capture_output=True, timeout=60, **kw)

    def settings(self, extra=""):
        """The root-owned settings file every session reads at its start."""
        with open(self.config, "w") as f:
            f.write(f'audit_log = "{self.audit}"\naudit_key_file = "{self.work}/audit/audit.key"\n'
                    f'audit_syslog = false\n{extra}')
        os.chmod(self.config, 0o644)

    def put_home(self, name, content, mode=0o600):
        path = os.path.join(self.home, name)
        with open(path, "wb") as f:
            f.write(content)
        uid, gid = pwd.getpwnam(USER).pw_uid, pwd.getpwnam(USER).pw_gid
        os.chown(path, uid, gid)
        os.chmod(path, mode)
        return path


def sshd_config(work, port, binary):
    """Test-only global lines, then the fragment as the entrypoint uses it."""
    fragment = open(os.path.join(ROOT, "deploy/sshd/leakguard.conf")).read()
    assert "\nPort 2222\n" in fragment and "ForceCommand /usr/local/bin/leakguard shell" in fragment
    fragment = fragment.replace("\nPort 2222\n", "\n").replace("/usr/local/bin/leakguard", binary)
    lines = ["ListenAddress 127.0.0.1", f"Port {port}", f"HostKey {work}/host_key", f"PidFile {work}/sshd.pid",
             "AuthenticationMethods publickey", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
             "UsePAM yes", f"AllowUsers {USER}", f"SetEnv LEAKGUARD_CONFIG={work}/config.toml"]
    return "\n".join(lines) + "\n" + fragment


@pytest.fixture(scope="module")
def host(leakguard):
    require("/usr/sbin/sshd", "ssh", "sftp", "scp", "ssh-keygen", "useradd")
    if os.geteuid() != 0:
        pytest.fail("the SSH tests create a user and run sshd: run them as root (.ci/run does)")
    work = tempfile.mkdtemp(prefix="lg-ssh-")
    os.chmod(work, 0o755)
    made_group = made_user = False
    sshd = None
    try:
        try:
            grp.getgrnam(GROUP)
        except KeyError:
            subprocess.run(["groupadd", GROUP], check=True)
            made_group = True
        try:
            pwd.getpwnam(USER)
        except KeyError:
            subprocess.run(["useradd", "-m", "-s", "/bin/bash", "-G", GROUP, USER], check=True)
            made_user = True
        subprocess.run(["usermod", "-p", "*", "-a", "-G", GROUP, USER], check=True)
        user = pwd.getpwnam(USER)
        binary = os.path.join(work, "leakguard")
        shutil.copy(leakguard, binary)
        os.chmod(binary, 0o755)
        os.makedirs(os.path.join(work, "audit"))
        os.chown(os.path.join(work, "audit"), user.pw_uid, user.pw_gid)
        for name in ("host_key", "client_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(work, name)], check=True)
        ssh_dir = os.path.join(user.pw_dir, ".ssh")
        os.makedirs(ssh_dir, exist_ok=True)
        shutil.copy(os.path.join(work, "client_key.pub"), os.path.join(ssh_dir, "authorized_keys"))
        for p in (ssh_dir, os.path.join(ssh_dir, "authorized_keys")):
            os.chown(p, user.pw_uid, user.pw_gid)
        os.chmod(ssh_dir, 0o700)
        os.makedirs("/run/sshd", exist_ok=True)
        port = free_port()
        config = os.path.join(work, "sshd_config")
        with open(config, "w") as f:
            f.write(sshd_config(work, port, binary))
        subprocess.run(["/usr/sbin/sshd", "-t", "-f", config], check=True)
        sshd = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", config],
                                stderr=open(os.path.join(work, "sshd.log"), "w"))
        h = Host(work, port)
        h.settings()
        h.put_home(".env", ENV_FILE.encode())
        wait_for("sshd", lambda: h.run("true").returncode == 0, timeout=30, interval=0.2)
        yield h
    finally:
        if sshd is not None:
            stop(sshd)
        subprocess.run(["pkill", "-KILL", "-u", USER], capture_output=True)
        if made_user:
            subprocess.run(["userdel", "-r", USER], capture_output=True)
        if made_group:
            subprocess.run(["groupdel", GROUP], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def test_command_without_a_pty_keeps_byte_lengths(host):
    r = host.run("cat .env; cat .env >&2; exit 3")
    assert r.returncode == 3, r
    for stream in (r.stdout, r.stderr):
        text = stream.decode()
        assert "[REDACTED]" in text and "DEBUG=1" in text
        assert len(stream) == len(ENV_FILE.encode()), "masks keep the byte length"
        assert_nothing_of([GITHUB, OPENAI], text, "ssh host cmd")


def test_command_with_a_forced_pty(host):
    r = host.run("cat .env; exit 3", "-tt", stdin=subprocess.DEVNULL)
    assert r.returncode == 3, r
    text = r.stdout.decode()
    assert "[REDACTED]" in text and "DEBUG=1" in text
    assert_nothing_of([GITHUB, OPENAI], text, "ssh -tt host cmd")


def test_sftp_and_scp_are_byte_exact(host):
    blob = os.urandom(1 << 20) + ENV_FILE.encode()
    local = os.path.join(host.work, "blob")
    with open(local, "wb") as f:
        f.write(blob)
    got = os.path.join(host.work, "got")
    sftp = ["sftp", "-q", "-b", "-", "-P", str(host.port), *host.opts, f"{USER}@127.0.0.1"]
    r = subprocess.run(sftp, input=f"put {local} blob\nget blob {got}\nget .env {got}.env\n".encode(),
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r
    assert open(got, "rb").read() == blob
    assert open(f"{got}.env").read() == ENV_FILE, "transfers are never altered (file_transfer = allow)"
    for legacy in ([], ["-O"]):  # OpenSSH 9 scp speaks sftp; -O is the old scp -t/-f protocol
        os.remove(got)
        scp = ["scp", "-q", *legacy, "-P", str(host.port), *host.opts]
        assert subprocess.run(scp + [local, f"{USER}@127.0.0.1:blob2"], timeout=60).returncode == 0
        assert subprocess.run(scp + [f"{USER}@127.0.0.1:blob2", got], timeout=60).returncode == 0
        assert open(got, "rb").read() == blob, f"scp {legacy}"


def test_transfers_can_be_denied(host):
    host.settings('file_transfer = "deny"\n')
    try:
        sftp = ["sftp", "-q", "-b", "-", "-P", str(host.port), *host.opts, f"{USER}@127.0.0.1"]
        r = subprocess.run(sftp, input=b"get .env /dev/null\n", capture_output=True, timeout=60)
        assert r.returncode != 0
        r = host.run("scp -f .env")
        assert r.returncode == 113 and b"not allowed" in r.stderr
    finally:
        host.settings()
    events = open(host.audit).read()
    assert '"event":"file_transfer"' in events and '"action":"deny"' in events


def interactive(host, rows=24, cols=80):
    child = pexpect.spawn(host.ssh("-tt")[0], host.ssh("-tt")[1:], dimensions=(rows, cols), timeout=15)
    child.expect(r"[$#] ")
    child.sendline("PS1='P> '; bind 'set enable-bracketed-paste on' 2>/dev/null")
    child.expect("P> ")
    return child


def typed(child, text, delay=0.03):
    for ch in text:
        child.send(ch)
        time.sleep(delay)
    child.send("\r")


def test_interactive_session(host):
    child = interactive(host)
    seen = []
    try:
        child.sendline("cat .env")
        child.expect("DEBUG=1")
        seen.append(child.before.decode(errors="replace"))
        assert "[REDACTED]" in seen[-1]
        child.expect("P> ")

        # A key typed one keystroke at a time: its echo and the output.
        typed(child, f"echo {GITHUB}")
        child.expect("P> ")
        seen.append(child.before.decode(errors="replace"))
        assert "[REDACTED]" in seen[-1]

        # A pasted value that no output rule would find on its own later.
        child.send(f"\x1b[200~export DB_PASSWORD='{PASSWORD}'\x1b[201~\r")
        child.expect("P> ")
        child.sendline('echo "val""ue=$DB_PASSWORD"')  # the echoed command line does not match
        child.expect("value=(.*?)\r\n")
        shown = child.match.group(1).decode(errors="replace")
        assert shown and PASSWORD not in shown and set(shown) <= set("[REDACTED]*"), shown
        child.expect("P> ")
        seen.append(child.before.decode(errors="replace"))

        # Window size changes reach the shell.
        child.setwinsize(40, 120)
        time.sleep(0.3)
        child.sendline("stty size")
        child.expect(r"(\d+) (\d+)\r\n")
        assert child.match.groups() == (b"40", b"120")
        child.expect("P> ")

        # Ctrl-C interrupts the foreground job.
        child.sendline('sleep 30; echo not-"inter"rupted')
        time.sleep(0.5)
        started = time.monotonic()
        child.sendcontrol("c")
        child.expect("P> ", timeout=5)
        assert time.monotonic() - started < 5 and b"not-interrupted" not in child.before

        child.sendline("exit 7")
        child.expect(pexpect.EOF)
        seen.append(child.before.decode(errors="replace"))
    finally:
        child.close()
    assert child.exitstatus == 7
    assert_nothing_of(SECRETS, "".join(seen), "the interactive session")


def test_block_mode_ends_the_session(host):
    host.settings('redact_mode = "block"\n')
    try:
        child = interactive(host)
        try:
            child.sendline("cat .env; sleep 5")
            child.expect(pexpect.EOF, timeout=10)
            text = child.before.decode(errors="replace")
        finally:
            child.close()
        assert "session ended" in text
        assert child.exitstatus == 112
        assert_nothing_of([GITHUB, OPENAI], text, "block mode")
        r = host.run("echo fine; cat .env; echo after")
        assert r.returncode == 112 and b"after" not in r.stdout
        assert_nothing_of([GITHUB, OPENAI], r.stdout.decode(), "block mode without a pty")
    finally:
        host.settings()


def test_audit_trail(host, leakguard):
    events = [line for line in open(host.audit)]
    text = "".join(events)
    assert_nothing_of(SECRETS, text, "the audit log")
    for kind in ("session_start", "session_end", "secret_detected", "input_secret_detected", "blocked"):
        assert f'"event":"{kind}"' in text, kind
    ssh_events = [e for e in events if '"channel":"ssh"' in e]
    assert ssh_events and all(f'"user":"{USER}"' in e and '"src":"127.0.0.1"' in e for e in ssh_events)
    assert all(re.search(r'"session":"[0-9a-f]+-\d+"', e) for e in ssh_events)
    r = subprocess.run([leakguard, "audit", "verify", host.audit, "--key", f"{host.work}/audit/audit.key"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r
