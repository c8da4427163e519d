"""Helpers shared by the system tests, the Jupyter and end-to-end tests and
the benchmarks: free ports, polling with a deadline, process clean-up, an
environment isolated from the machine's leakguard settings, and a test user
with key authentication for sshd on loopback."""
import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def binary():
    """Path of the release binary (built before the tests run)."""
    path = os.environ.get("LEAKGUARD_BIN", os.path.join(ROOT, "target", "release", "leakguard"))
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} missing: run cargo build --release first")
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
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("LEAKGUARD_") and k not in ("REDACT_MODE", "SCAN_INPUT", "ALLOWLIST_PATHS",
                                                          "PATTERN_UPDATE_INTERVAL")}
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


class SshUser:
    """A local user (created if missing, removed again if it was) in
    `group`, whose key in `work` logs in to sshd servers started by
    `sshd()`. Needs root."""

    def __init__(self, work, name="lgtest", group="leakguard"):
        self.work, self.name, self.group = work, name, group
        self.made_user = self.made_group = False
        self.servers = []

    def __enter__(self):
        try:
            grp.getgrnam(self.group)
        except KeyError:
            subprocess.run(["groupadd", self.group], check=True)
            self.made_group = True
        try:
            pwd.getpwnam(self.name)
        except KeyError:
            subprocess.run(["useradd", "-m", "-s", "/bin/bash", "-G", self.group, self.name], check=True)
            self.made_user = True
        # '*' (no password) rather than '!' (locked): sshd refuses locked accounts.
        subprocess.run(["usermod", "-p", "*", "-a", "-G", self.group, self.name], check=True)
        self.pw = pwd.getpwnam(self.name)
        for key in ("host_key", "client_key"):
            if not os.path.exists(os.path.join(self.work, key)):
                subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(self.work, key)],
                               check=True)
        ssh_dir = os.path.join(self.pw.pw_dir, ".ssh")
        os.makedirs(ssh_dir, exist_ok=True)
        shutil.copy(os.path.join(self.work, "client_key.pub"), os.path.join(ssh_dir, "authorized_keys"))
        for p in (ssh_dir, os.path.join(ssh_dir, "authorized_keys")):
            os.chown(p, self.pw.pw_uid, self.pw.pw_gid)
        os.chmod(ssh_dir, 0o700)
        self.opts = ["-i", os.path.join(self.work, "client_key"), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                     "-o", "StrictHostKeyChecking=no", "-o", f"UserKnownHostsFile={self.work}/known_hosts",
                     "-o", "LogLevel=ERROR"]
        return self

    def __exit__(self, *exc):
        for s in self.servers:
            stop(s)
        subprocess.run(["pkill", "-KILL", "-u", self.name], capture_output=True)
        if self.made_user:
            subprocess.run(["userdel", "-r", self.name], capture_output=True)
        if self.made_group:
            subprocess.run(["groupdel", self.group], capture_output=True)

    def ssh(self, port, *args):
        return ["ssh", "-p", str(port), *self.opts, *args, f"{self.name}@127.0.0.1"]

    def sshd(self, name, extra):
        """Starts sshd on a free loopback port with key authentication for
        this user, then `extra` config text; returns the port once it
        accepts this user's sessions."""
        port = free_port()
        config = os.path.join(self.work, f"sshd_config.{name}")
        lines = ["ListenAddress 127.0.0.1", f"Port {port}", f"HostKey {self.work}/host_key",
                 f"PidFile {self.work}/sshd.{name}.pid", "AuthenticationMethods publickey",
                 "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM yes",
                 f"AllowUsers {self.name}"]
        with open(config, "w") as f:
            f.write("\n".join(lines) + "\n" + extra)
        os.makedirs("/run/sshd", exist_ok=True)
        subprocess.run(["/usr/sbin/sshd", "-t", "-f", config], check=True)
        self.servers.append(subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", config],
                                             stderr=open(os.path.join(self.work, f"sshd.{name}.log"), "w")))
        wait_for(f"sshd {name}", lambda: subprocess.run(self.ssh(port) + ["true"], capture_output=True,
                                                          timeout=30).returncode == 0, timeout=30, interval=0.2)
        return port
