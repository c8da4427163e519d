"""`leakguard shell` behind a real sshd on loopback, through the real ssh,
sftp and scp clients: the deploy/sshd fragment, a test user in the
`leakguard` group, key authentication (shared/research/ssh.md section 5)."""
import os
import re
import shutil
import subprocess
import tempfile
import time

import pexpect
import pytest

from conftest import require
from support import ROOT, SshUser, assert_nothing_of, wait_for

USER = "lgtest"
GROUP = "leakguard"
GITHUB = "ghp_R7kPq2LmN9xVt4Hs8WzC1bYd6FjG3aEu0K9p"
OPENAI = "sk-proj-R7kPq2LmN9xVt4Hs8WzC1bYd6FjG3aEu0K9pR7kPq2LmN9xVt4Hs8WzC1b"
PASSWORD = "Qv7pLw2xZr9Kd3"
ENV_FILE = f"OPENAI_API_KEY={OPENAI}\nGITHUB_TOKEN={GITHUB}\nDEBUG=1\n"
SECRETS = [GITHUB, OPENAI, PASSWORD]


class Host:
    """sshd on 127.0.0.1 with the fragment, and ssh command lines for it."""

    def __init__(self, user, work, port):
        self.user, self.work, self.port = user, work, port
        self.config = os.path.join(work, "config.toml")
        self.audit = os.path.join(work, "audit", "audit.jsonl")
        self.home = user.pw.pw_dir
        self.opts = user.opts

    def ssh(self, *args):
        return self.user.ssh(self.port, *args)

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
        os.chown(path, self.user.pw.pw_uid, self.user.pw.pw_gid)
        os.chmod(path, mode)
        return path


def fragment(binary):
    """The deploy fragment as the entrypoint uses it, for `binary`."""
    text = open(os.path.join(ROOT, "deploy/sshd/leakguard.conf")).read()
    assert "\nPort 2222\n" in text and "ForceCommand /usr/local/bin/leakguard shell" in text
    return text.replace("\nPort 2222\n", "\n").replace("/usr/local/bin/leakguard", binary)


@pytest.fixture(scope="module")
def host(leakguard):
    require("/usr/sbin/sshd", "ssh", "sftp", "scp", "ssh-keygen", "useradd")
    if os.geteuid() != 0:
        pytest.fail("the SSH tests create a user and run sshd: run them as root (.ci/run does)")
    work = tempfile.mkdtemp(prefix="lg-ssh-")
    os.chmod(work, 0o755)
    try:
        with SshUser(work, USER, GROUP) as user:
            binary = os.path.join(work, "leakguard")
            shutil.copy(leakguard, binary)
            os.chmod(binary, 0o755)
            os.makedirs(os.path.join(work, "audit"))
            os.chown(os.path.join(work, "audit"), user.pw.pw_uid, user.pw.pw_gid)
            with open(os.path.join(work, "config.toml"), "w") as f:
                f.write(f'audit_log = "{work}/audit/audit.jsonl"\naudit_key_file = "{work}/audit/audit.key"\n'
                        'audit_syslog = false\n')
            port = user.sshd("leakguard", f"SetEnv LEAKGUARD_CONFIG={work}/config.toml\n" + fragment(binary))
            h = Host(user, work, port)
            h.settings()
            h.put_home(".env", ENV_FILE.encode())
            yield h
    finally:
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


def test_endless_input_after_the_shell_exits_does_not_hang(host):
    # The shell exits while a background job keeps the PTY open and the
    # client keeps sending (shared/research/ssh.md section 2, step 5).
    with open("/dev/zero", "rb") as zero:
        r = subprocess.run(host.ssh("-tt") + ["sleep 300 & exit 5"], stdin=zero, capture_output=True, timeout=60)
    assert r.returncode == 5, r


def test_a_shell_killed_by_a_signal_is_reported_as_without_the_proxy(host):
    r = host.run("kill -TERM $$", "-tt", stdin=subprocess.DEVNULL)
    # sshd reports exit-signal; the OpenSSH client then exits with 255.
    assert r.returncode == 255, r


def test_a_killed_client_leaves_no_processes(host):
    client = subprocess.Popen(host.ssh("-tt") + ["sleep 377"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        wait_for("the remote sleep", lambda: subprocess.run(["pgrep", "-u", USER, "-f", "sleep 377"],
                                                             capture_output=True).returncode == 0)
    finally:
        client.kill()
        client.wait()
    wait_for("the session to end", lambda: subprocess.run(["pgrep", "-u", USER, "-f", "sleep 377|leakguard"],
                                                            capture_output=True).returncode == 1, timeout=20)


def test_a_nested_shell_does_not_stack_a_second_proxy(host):
    binary = os.path.join(host.work, "leakguard")
    r = host.run(f"{binary} shell -c 'pgrep -c -u {USER} -x leakguard; cat .env'")
    lines = r.stdout.decode().splitlines()
    assert r.returncode == 0 and lines[0] == "1", f"one proxy process, not two: {r}"
    assert "[REDACTED]" in lines[1] and "[REDACTED]" in lines[2] and lines[3] == "DEBUG=1", r
    assert_nothing_of([GITHUB, OPENAI], r.stdout.decode(), "a nested shell")


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
