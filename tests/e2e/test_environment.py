"""The protected environment end to end: deploy/entrypoint.sh, as the
container runs it, on 127.0.0.1 with free ports and private directories.
It creates a user, starts fail2ban, sshd and JupyterLab (HTTPS) as that
user; the tests reach them as clients do (the ssh client, JupyterLab's
REST and websocket APIs, JupyterLab in headless Chromium) and check what
they see, the saved notebook, the audit trail, the fail2ban ban and a
clean shutdown.

Tests run in file order against one running environment: the ban test
comes first, while the audit trail holds no failures yet, and the
shutdown test last."""
import grp
import json
import os
import pwd
import shutil
import signal
import ssl
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

import pytest
import websocket

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), os.path.join(os.path.dirname(HERE), "system")]
from conftest import leakguard, require  # noqa: E402,F401 (a fixture, and the tool check of the system tests)
from support import ROOT, assert_nothing_of, free_port, stop, wait_for  # noqa: E402

INSECURE = ssl.create_default_context()
INSECURE.check_hostname = False
INSECURE.verify_mode = ssl.CERT_NONE

USER = "lge2e"
GROUP = "leakguard"
MAXRETRY = 3
ENTRYPOINT = os.path.join(ROOT, "deploy", "entrypoint.sh")
SHOTS = os.path.join(ROOT, "target", "e2e")  # screenshots of the browser test

# Test secrets, put together at run time.
OPENAI = "sk-proj-" + "Xq3Tb8NwLp5Rk2Vz7Hc9Md4Fs6Gj1Ay0" + "Ue8Wo3Bi5Kt7Nr2Lx9Pv4Qm6Cz1Dh8Ef3Jg5"
GITHUB = "ghp_" + "Tz4Lw8Qp2Rn6Kv9Xs3Bm" + "7Hd1Fc5Gj0Ya8Ue2"
AWS_KEY_ID = "AKIA" + "Q7LTRWZB3N5X2KPD"
AWS_SECRET = "Hk7pQ2vL9xRt4Wm8Zc3N" + "b6Fd1Gs5Jy0Ua2Ei7Ko4"
HF = "hf_" + "Pq7Lk2Vx9Rt4Wm8Zc3Nb" + "6Fd1Gs5JyUaEiKoRb"
SECRETS = [OPENAI, GITHUB, AWS_KEY_ID, AWS_SECRET, HF]
ENV_FILE = (f"OPENAI_API_KEY={OPENAI}\nGITHUB_TOKEN={GITHUB}\nAWS_ACCESS_KEY_ID={AWS_KEY_ID}\n"
            f"AWS_SECRET_ACCESS_KEY={AWS_SECRET}\nHF_TOKEN={HF}\nDEBUG=1\n")


def venv_dir():
    """The e2e Python environment: made by ./start.sh --setup-only, from a
    Python and in a folder the test user can read (JupyterLab runs as it)."""
    def public(path):
        path = os.path.abspath(path)
        while path != "/":
            if not os.stat(path).st_mode & stat.S_IXOTH:
                return False
            path = os.path.dirname(path)
        return True
    return os.path.join(ROOT, "target", "e2e", "venv") if public(ROOT) else "/var/tmp/leakguard-e2e/venv"


def setup_venv():
    venv = venv_dir()
    python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else "python3"
    r = subprocess.run([os.path.join(ROOT, "start.sh"), "--setup-only"], capture_output=True, text=True,
                       env={**os.environ, "LEAKGUARD_VENV": venv, "PYTHON": python})
    assert r.returncode == 0, f"start.sh --setup-only failed:\n{r.stderr}"
    return os.path.join(venv, "bin", "python")


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
    def __init__(self, work, binary, python):
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
            LEAKGUARD_JUPYTER_PORT=str(self.jupyter_port), LEAKGUARD_PYTHON=python,
            JUPYTER_TOKEN=uuid.uuid4().hex,
        )
        self.workspace = self.env["LEAKGUARD_WORKSPACE"]
        # A setting by its design-document name, for every channel.
        self.trusted = os.path.join(self.workspace, "trusted") + "/"
        self.env["ALLOWLIST_PATHS"] = json.dumps(["/workspace/trusted/", self.trusted])
        # tests/jupyter/lab_driver.mjs drives the page through window.jupyterapp.
        self.env["LEAKGUARD_JUPYTER_ARGS"] = "--LabApp.expose_app_in_browser=True"
        self.url = f"https://127.0.0.1:{self.jupyter_port}"
        self.wss = f"wss://127.0.0.1:{self.jupyter_port}"
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

    def api(self, method, path, body=None):
        """JupyterLab's REST API, over HTTPS with the self-signed certificate."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Authorization": f"token {self.env['JUPYTER_TOKEN']}",
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, context=INSECURE, timeout=60) as r:
                text = r.read().decode()
        except urllib.error.HTTPError as e:
            raise AssertionError(f"{method} {path}: {e}: {e.read().decode(errors='replace')[-2000:]}\n"
                                 f"entrypoint log:\n{self.log()[-4000:]}") from None
        return json.loads(text) if text else None

    def websocket(self, path):
        return websocket.create_connection(f"{self.wss}{path}?token={self.env['JUPYTER_TOKEN']}",
                                           sslopt={"cert_reqs": ssl.CERT_NONE}, timeout=60)

    @staticmethod
    def receive(ws, done, timeout=60):
        """Frames from ws until done(frames) or the timeout; control frames
        (the server's pings) count for the timeout, not as frames."""
        frames, deadline = [], time.monotonic() + timeout
        while not done(frames):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; received {frames}")
            ws.settimeout(max(deadline - time.monotonic(), 0.1))
            opcode, data = ws.recv_data(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_TEXT:
                frames.append(data.decode())
            elif opcode == websocket.ABNF.OPCODE_CLOSE:
                raise AssertionError(f"the server closed the websocket; received {frames}")
        return frames

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
    try:
        grp.getgrnam(GROUP)
        made_group = False
    except KeyError:
        made_group = True  # by the entrypoint
    # Sessions run the binary as the test user: keep it where every user can read it.
    binary = os.path.join(work, "leakguard")
    shutil.copy(leakguard, binary)
    e = Environment(work, binary, setup_venv())
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
        user = pwd.getpwnam(USER)
        # No "Jupyter news" question in the screenshots.
        settings = os.path.join(user.pw_dir, ".jupyter", "lab", "user-settings", "@jupyterlab", "apputils-extension")
        os.makedirs(settings, exist_ok=True)
        with open(os.path.join(settings, "notification.jupyterlab-settings"), "w") as f:
            json.dump({"fetchNews": "false", "checkForUpdates": False}, f)
        subprocess.run(["chown", "-R", f"{USER}:", os.path.join(user.pw_dir, ".jupyter")], check=True)
        for folder in (user.pw_dir, e.workspace):
            with open(os.path.join(folder, ".env"), "w") as f:
                f.write(ENV_FILE)
            os.chown(os.path.join(folder, ".env"), user.pw_uid, user.pw_gid)
        yield e
    finally:
        if e.proc is not None:
            stop(e.proc, timeout=30)
        subprocess.run(["pkill", "-KILL", "-u", USER], capture_output=True)
        if made_user:
            subprocess.run(["userdel", "-r", USER], capture_output=True)
        if made_group:
            subprocess.run(["groupdel", GROUP], capture_output=True)
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


def test_jupyterlab_serves_https_only(env):
    assert "version" in env.api("GET", "/api")
    with pytest.raises(Exception):
        urllib.request.urlopen(f"http://127.0.0.1:{env.jupyter_port}/api", timeout=10)
    cert = ssl.get_server_certificate(("127.0.0.1", env.jupyter_port))
    assert "BEGIN CERTIFICATE" in cert


def kernel_run(env, code, notebook=None):
    """Runs code in a new kernel through the server's websocket (for a
    notebook's session when one is named); every frame received."""
    if notebook:
        # jupyter_server gives the kernel <root>/<session name> as the notebook (JPY_SESSION_NAME).
        session = env.api("POST", "/api/sessions", {"path": notebook, "name": notebook, "type": "notebook",
                                                    "kernel": {"name": "python3"}})
        kernel = session["kernel"]
    else:
        kernel = env.api("POST", "/api/kernels", {"name": "python3"})
    ws = env.websocket(f"/api/kernels/{kernel['id']}/channels")
    try:
        msg_id = uuid.uuid4().hex
        ws.send(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": USER,
                       "session": uuid.uuid4().hex, "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True},
        }))
        def idle(frames):
            msg = json.loads(frames[-1]) if frames else {}
            return (msg.get("parent_header", {}).get("msg_id") == msg_id and msg.get("msg_type") == "status"
                    and msg["content"].get("execution_state") == "idle")
        frames = env.receive(ws, idle, timeout=120)
    finally:
        ws.close()
        env.api("DELETE", f"/api/kernels/{kernel['id']}")
    outputs = "".join(m["content"].get("text", "") for m in map(json.loads, frames)
                      if m.get("msg_type") == "stream")
    return frames, outputs


def test_kernel_output_is_masked(env):
    frames, out = kernel_run(env, "print(open('.env').read())")
    assert out.count("[REDACTED]") == 5 and "DEBUG=1" in out, out
    assert_nothing_of(SECRETS, "".join(frames), "the kernel's websocket frames")


def test_kernels_run_behind_the_proxy(env):
    """User code that switches the in-kernel extension off still shows masks:
    the kernel proxy, outside the kernel, catches what it sends."""
    spec = env.api("GET", "/api/kernelspecs")["kernelspecs"]["python3"]["spec"]
    assert "kernel-proxy" in spec["argv"], spec["argv"]
    code = ("import leakguard.ipython as lg; lg.unload(get_ipython()); "
            f"print(open({os.path.join(env.workspace, '.env')!r}).read())")
    frames, out = kernel_run(env, code)
    assert out.count("[REDACTED]") == 5 and "DEBUG=1" in out, out
    assert_nothing_of(SECRETS, "".join(frames), "the kernel's websocket frames with the extension off")
    events = [json.loads(line) for line in open(env.audit)]
    assert any(e.get("enforced") and e["event"] == "secret_detected" and e["channel"] == "jupyter" for e in events)


def stdout(frames):
    """What a terminal showed, from its websocket frames."""
    return "".join(m[1] for m in map(json.loads, frames) if m[0] == "stdout")


def test_allowlisted_notebooks_are_not_filtered(env):
    """ALLOWLIST_PATHS, given to the entrypoint, reaches the kernels (and SSH sessions)."""
    # The code holds no piece of a secret: the user's IPython history is shared by every kernel.
    _, out = kernel_run(env, f"print(open({os.path.join(env.workspace, '.env')!r}).read())", notebook="trusted/t.ipynb")
    assert GITHUB in out, out
    r = env.run("printenv ALLOWLIST_PATHS")
    assert r.stdout.decode().strip() == env.env["ALLOWLIST_PATHS"], r


def test_terminal_is_masked(env):
    name = env.api("POST", "/api/terminals")["name"]
    ws = env.websocket(f"/terminals/websocket/{name}")
    try:
        # Typed before the shell's first prompt, a line would be lost (as on any terminal).
        frames = env.receive(ws, lambda f: stdout(f).rstrip().endswith("$"))
        ws.send(json.dumps(["stdin", "cd && cat .env && echo 'the-'end\r"]))  # the echo of the line holds no the-end
        frames += env.receive(ws, lambda f: "the-end" in stdout(f))
    finally:
        ws.close()
        env.api("DELETE", f"/api/terminals/{name}")
    shown = stdout(frames)
    assert "the-end" in shown and "[REDACTED]" in shown and "DEBUG=1" in shown, shown
    assert_nothing_of(SECRETS, shown, "the Jupyter terminal")


NOTEBOOK_CELLS = [
    "print(open('.env').read())",
    "from IPython.display import HTML, display\n"
    "s = dict(line.split('=', 1) for line in open('.env').read().split())\n"
    "display(HTML('<b>OpenAI key</b> ' + s['OPENAI_API_KEY']))",
    "s['GITHUB_TOKEN']",
    "raise ValueError('bad credentials ' + s['OPENAI_API_KEY'])",
]


def test_browser_notebook_and_terminal(env):
    """JupyterLab over HTTPS in headless Chromium (tests/jupyter/lab_driver.mjs):
    a notebook printing the .env, a terminal running cat .env."""
    require("node", "/usr/bin/chromium")
    modules = os.path.join(ROOT, "target", "jupyter", "node", "node_modules")
    assert os.path.isdir(os.path.join(modules, "playwright-core")), "run tests/jupyter/setup.sh first (test.sh does)"
    user = pwd.getpwnam(USER)
    nb = {"nbformat": 4, "nbformat_minor": 5,
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
          "cells": [{"cell_type": "code", "id": f"c{i}", "metadata": {}, "source": src, "outputs": [],
                     "execution_count": None} for i, src in enumerate(NOTEBOOK_CELLS)]}
    path = os.path.join(env.workspace, "secrets.ipynb")
    with open(path, "w") as f:
        json.dump(nb, f)
    os.chown(path, user.pw_uid, user.pw_gid)
    os.makedirs(SHOTS, exist_ok=True)
    p = subprocess.run(
        ["node", os.path.join(ROOT, "tests", "jupyter", "lab_driver.mjs"), "--url", env.url,
         "--token", env.env["JUPYTER_TOKEN"], "--path", "secrets.ipynb",
         "--screenshot", os.path.join(SHOTS, "notebook.png"),
         "--terminal-command", "cat .env; echo the-''end", "--terminal-done", "the-end",
         "--terminal-screenshot", os.path.join(SHOTS, "terminal.png")],
        capture_output=True, text=True, timeout=300, env={**os.environ, "LEAKGUARD_NODE_MODULES": modules})
    assert p.returncode == 0, f"the browser driver failed:\n{p.stderr[-3000:]}\n{env.log()[-3000:]}"
    seen = json.loads(p.stdout.strip().split("\n")[-1])  # not splitlines: frames may hold U+2028
    shown = "\n".join(seen["outputs"])
    assert seen["cells"] == len(NOTEBOOK_CELLS)
    assert "GITHUB_TOKEN=[REDACTED]" in shown and "DEBUG=1" in shown, shown
    assert "OpenAI key [REDACTED]" in shown and "ValueError: bad credentials [REDACTED]" in shown, shown
    assert_nothing_of(SECRETS, shown, "the notebook page")
    assert "[REDACTED]" in seen["terminal"] and "the-end" in seen["terminal"], seen["terminal"]
    assert_nothing_of(SECRETS, seen["terminal"], "the terminal page")
    assert seen["frames"], "no websocket frames were seen"
    assert_nothing_of(SECRETS, "\n".join(seen["frames"]), "the websocket frames")
    saved = open(path).read()
    assert "[REDACTED]" in saved
    assert_nothing_of(SECRETS, saved, "the saved notebook")
    for shot in ("notebook.png", "terminal.png"):
        with open(os.path.join(SHOTS, shot), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_saved_notebook_is_masked(env):
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{
        "cell_type": "code", "id": "c1", "execution_count": 1, "metadata": {},
        "source": f"token = '{GITHUB}'",
        "outputs": [{"output_type": "stream", "name": "stdout", "text": ENV_FILE}],
    }]}
    env.api("PUT", "/api/contents/saved.ipynb", {"type": "notebook", "format": "json", "content": nb})
    text = open(os.path.join(env.workspace, "saved.ipynb")).read()
    assert "[REDACTED]" in text and "DEBUG=1" in text
    assert_nothing_of(SECRETS, text, "the saved notebook")


def test_audit_trail(env, leakguard):
    text = open(env.audit).read()
    assert_nothing_of(SECRETS, text, "the audit trail")
    lines = text.splitlines()
    ssh = [line for line in lines if '"channel":"ssh"' in line and '"src":"127.0.0.1"' in line]
    assert any('"event":"session_start"' in line for line in ssh)
    assert sum('"event":"secret_detected"' in line for line in ssh) >= 5 * 3
    assert all(f'"user":"{USER}"' in line for line in ssh)
    jupyter = [line for line in lines if '"channel":"jupyter"' in line and '"event":"secret_detected"' in line]
    assert jupyter and all(f'"user":"{USER}"' in line for line in jupyter)
    assert any('"notebook":' in line and "saved.ipynb" in line for line in jupyter), "the pre-save hook's events"
    r = subprocess.run([leakguard, "audit", "verify", env.audit, "--key", env.key], capture_output=True, text=True)
    assert r.returncode == 0, r


def test_sigterm_stops_everything(env):
    session = subprocess.Popen(env.ssh("-tt") + ["sleep 600"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        wait_for("the SSH session", lambda: any(b"sleep" in cmdline(p) for p in user_processes()))
        env.api("POST", "/api/kernels", {"name": "python3"})  # left running, as are the terminal's shell
        env.api("POST", "/api/terminals")
        wait_for("the kernel", lambda: any(b"ipykernel" in cmdline(p) for p in user_processes()))
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
