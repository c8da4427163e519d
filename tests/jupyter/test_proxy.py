"""The kernel proxy: enforcement from outside the kernel process.

The masking suite (test_masking.py) runs through the proxy as the layer
``proxy`` (extension not loaded). Here: what only the proxy does or must
withstand (tampering from user code, forged messages), its modes, the
byte-for-byte pass-through, interrupt/restart/shutdown, no orphans, and
``jupyter leakguard install --enforce``.
"""

import json
import os
import queue
import signal
import shutil
import subprocess
import time

import pytest
import zmq
from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpecManager

import tokens
from conftest import EXTENSION, LINES, assert_hidden, leaks, load_secrets, support
from proxy_layer import PROXY, PROXY_AND_EXTENSION

GH = tokens.BY_NAME["github-pat"]


def proxied(kernels, line, **settings):
    return kernels.get(line, PROXY, **settings)


def pids(k):
    """(proxy pid, kernel pid) of a proxied kernel."""
    proxy = k.km.provisioner.process.pid
    kernel = int(k.eval("__import__('os').getpid()"))
    assert int(k.eval("__import__('os').getppid()")) == proxy, "the kernel is the proxy's child"
    return proxy, kernel


def gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie is gone for our purpose (its parent has not reaped it yet).
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def wait_gone(pid, what, timeout=15):
    support.wait_for(f"{what} (pid {pid}) to exit", lambda: gone(pid), timeout=timeout)


def inner_connection_file(k):
    return os.path.join(k.dir, "connection-leakguard-inner.json")


# ------------------------------------------------------------------ tampering
# Each cell undoes or goes around the in-kernel extension (research/jupyter.md §6).
BYPASSES = {
    "delete the patch": """
k = get_ipython().kernel
for attr in ("serialize", "send"):
    k.session.__dict__.pop(attr, None)
print("deleted:", S["github-pat"])
""",
    "call the class method": """
from jupyter_client.session import Session
k = get_ipython().kernel
Session.send(k.session, k.iopub_socket, "stream", {"name": "stdout", "text": "class: " + S["github-pat"] + "\\n"},
             parent=k.get_parent(), ident=b"stream.stdout")
""",
    "sign and send a raw message with session.key": """
import datetime, hashlib, hmac, json, uuid
k = get_ipython().kernel
hdr = json.dumps({"msg_id": uuid.uuid4().hex, "msg_type": "stream", "username": "u", "session": k.session.session,
                  "date": datetime.datetime.now(datetime.timezone.utc).isoformat(), "version": "5.3"}).encode()
parts = [hdr, json.dumps(k.get_parent()["header"], default=str).encode(), b"{}",
         json.dumps({"name": "stdout", "text": "raw: " + S["github-pat"] + "\\n"}).encode()]
sig = hmac.new(k.session.key, b"".join(parts), hashlib.sha256).hexdigest().encode()
k.iopub_socket.send_multipart([b"stream.stdout", b"<IDS|MSG>", sig] + parts)
""",
    "unload the extension": """
get_ipython().run_line_magic("unload_ext", "leakguard")
print("unloaded:", S["github-pat"])
""",
}


@pytest.mark.parametrize("bypass", list(BYPASSES))
def test_tampering_from_user_code_does_not_reach_the_client(kernels, line, secrets_file, bypass):
    k = kernels.get(line, PROXY_AND_EXTENSION, fresh=True)
    load_secrets(k, secrets_file)
    r = k.execute(BYPASSES[bypass])
    assert r.status == "ok", r
    k.settle()
    assert_hidden(r)
    assert_hidden([m for m in k.all if m["msg_type"] != "status"])
    assert "[REDACTED]" in r.stream("stdout"), r


def test_the_bypasses_defeat_the_extension_alone(kernels, line, secrets_file):
    """Without the proxy the same cells show the secret: the test above means something."""
    shown = []
    for bypass, code in BYPASSES.items():
        k = kernels.get(line, EXTENSION, fresh=True)
        load_secrets(k, secrets_file)
        r = k.execute(code)
        if leaks(r.texts(), [GH]):
            shown.append(bypass)
    assert "sign and send a raw message with session.key" in shown, shown


FORGE = """
import datetime, hashlib, hmac, json, uuid
k = get_ipython().kernel
def forged(text, key):
    hdr = json.dumps({"msg_id": uuid.uuid4().hex, "msg_type": "stream", "username": "u", "session": k.session.session,
                      "date": datetime.datetime.now(datetime.timezone.utc).isoformat(), "version": "5.3"}).encode()
    parts = [hdr, json.dumps(k.get_parent()["header"], default=str).encode(), b"{}",
             json.dumps({"name": "stdout", "text": text + "\\n"}).encode()]
    sig = hmac.new(key, b"".join(parts), hashlib.sha256).hexdigest().encode() if key else b""
    k.iopub_socket.send_multipart([b"stream.stdout", b"<IDS|MSG>", sig] + parts)
forged("FORG" + "ED-WRONG-KEY " + S["github-pat"], b"not the session key")
forged("FORG" + "ED-UNSIGNED " + S["github-pat"], b"")
k.iopub_socket.send_multipart([b"stream.stdout", b"no delimiter", b"FORG" + b"ED-JUNK"])
print("sent")
"""


def test_forged_and_unsigned_messages_are_dropped(kernels, line, secrets_file):
    k = proxied(kernels, line)
    load_secrets(k, secrets_file)
    before = len(k.audit())
    r = k.execute(FORGE)
    assert r.status == "ok", r
    k.settle()
    shown = json.dumps([m["content"] for m in k.all])
    assert "FORGED-" not in shown
    assert r.stream("stdout") == "sent\n"
    rejected = [e for e in k.audit()[before:] if e["event"] == "message_rejected"]
    assert len(rejected) == 3, k.audit_text()
    assert all(e.get("enforced") is True for e in rejected)
    assert not leaks([("audit", k.audit_text())], [GH]), "the audit trail holds no secret"


def test_unchanged_messages_pass_byte_for_byte(kernels, line):
    """Raw frames seen on the kernel's own iopub port equal those the proxy publishes."""
    k = proxied(kernels, line)
    info = k.km.get_connection_info()
    with open(inner_connection_file(k)) as f:
        inner = json.load(f)
    assert inner["key"] == info["key"].decode() and inner["iopub_port"] != info["iopub_port"]
    ctx = zmq.Context.instance()
    subs = []
    for port in (info["iopub_port"], inner["iopub_port"]):
        s = ctx.socket(zmq.SUB)
        s.setsockopt(zmq.SUBSCRIBE, b"")
        s.connect(f"tcp://127.0.0.1:{port}")
        subs.append(s)
    try:
        time.sleep(1.0)  # subscriptions travel through the proxy to the kernel
        r = k.execute("print('plain text'); display({'text/plain': 'a display'}, raw=True); 6 * 7")
        assert r.status == "ok"
        time.sleep(0.5)
        seen = []
        for s in subs:
            frames = {}
            while s.poll(200):
                msg = s.recv_multipart()
                i = msg.index(b"<IDS|MSG>")
                frames[json.loads(msg[i + 2])["msg_id"]] = msg
            seen.append(frames)
        outer, kernel_side = seen
        ids = [m["header"]["msg_id"] for m in r.iopub]
        assert ids and all(i in outer and i in kernel_side for i in ids), (ids, list(outer), list(kernel_side))
        for i in ids:
            assert outer[i] == kernel_side[i], f"message {i} changed on its way"
    finally:
        for s in subs:
            s.close(linger=0)


# --------------------------------------------------------------------- modes
def test_block_withholds_and_interrupts(kernels, line, secrets_file):
    k = proxied(kernels, line, REDACT_MODE="block")
    load_secrets(k, secrets_file)
    t0 = time.monotonic()
    r = k.execute("import time\nprint('start', flush=True)\nprint(S['github-pat'], flush=True)\ntime.sleep(30)\nprint('after')")
    assert time.monotonic() - t0 < 20, "the cell was interrupted, not left to finish"
    assert_hidden(r)
    assert r.status == "error", r
    names = [e["ename"] for e in r.errors]
    assert "SecretBlocked" in names and "KeyboardInterrupt" in names, names
    assert "github" in next(e["evalue"] for e in r.errors if e["ename"] == "SecretBlocked")
    assert "after" not in r.stream()
    assert k.execute("print('next cell')").stream() == "next cell\n"
    assert any(e["event"] == "blocked" and e.get("enforced") for e in k.audit())


def test_log_only_shows_and_records(kernels, line, secrets_file):
    k = proxied(kernels, line, REDACT_MODE="log_only")
    load_secrets(k, secrets_file)
    r = k.execute("print(S['github-pat'])")
    assert r.stream() == GH.text + "\n"
    events = [e for e in k.audit() if e["event"] == "secret_detected"]
    assert events and events[-1]["action"] == "log_only" and events[-1]["enforced"] is True


def test_scan_input_refuses_cells_with_secrets_in_block_mode(kernels, line, tmp_path):
    k = proxied(kernels, line, REDACT_MODE="block")
    marker = tmp_path / "ran"
    r = k.execute(f"token = {GH.text!r}\nopen({str(marker)!r}, 'w').close()")
    assert r.status == "error", r
    assert r.reply["content"]["ename"] == "SecretBlocked"
    assert "did not run" in r.reply["content"]["evalue"]
    assert [e["ename"] for e in r.errors] == ["SecretBlocked"]
    assert not marker.exists(), "the cell never reached the kernel"
    assert_hidden(r)
    assert any(e["event"] == "input_secret_detected" for e in k.audit())
    off = proxied(kernels, line, REDACT_MODE="block", SCAN_INPUT="false")
    r = off.execute(f"token = {GH.text!r}\nopen({str(marker)!r}, 'w').close()")
    assert r.status == "ok" and marker.exists(), r


def test_scan_input_mask_mode_runs_the_cell_and_masks_its_echo(kernels, line):
    k = proxied(kernels, line)
    r = k.execute(f"token = {GH.text!r}\nprint(len(token))")
    assert r.status == "ok" and r.stream() == f"{len(GH.text)}\n", r
    echo = r.of_type("execute_input")[0]["content"]["code"]
    assert "[REDACTED]" in echo
    assert_hidden(r)


def test_input_prompts_and_split_writes(kernels, line, secrets_file):
    k = proxied(kernels, line)
    load_secrets(k, secrets_file)
    code = (
        "import sys, time\n"
        "s = S['github-pat']\n"
        "sys.stdout.write(s[:10]); sys.stdout.flush(); time.sleep(0.3)\n"
        "print(s[10:])\n"
        "answer = input('value for ' + s + ': ')\n"
        "print('got', answer)\n"
    )
    r = k.execute(code, stdin=["forty-two"])
    assert r.status == "ok", r
    assert_hidden(r)
    prompts = [m["content"]["prompt"] for m in r.stdin if m["msg_type"] == "input_request"]
    assert prompts == ["value for [REDACTED]: "], prompts
    assert r.stream("stdout") == "[REDACTED]\ngot forty-two\n"


# ------------------------------------------------- lifecycle through the proxy
def wait_for_output(k, mid, timeout=30):
    """Waits until request ``mid`` printed something (so it is running)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            m = k.kc.get_iopub_msg(timeout=1)
        except queue.Empty:
            continue
        k.all.append(m)
        if m["parent_header"].get("msg_id") == mid and m["msg_type"] == "stream":
            return
    raise AssertionError(f"request {mid} printed nothing within {timeout}s")


def test_interrupt(kernels, line):
    k = kernels.get(line, PROXY, fresh=True, TEST_PURPOSE="interrupt")
    mid = k.kc.execute("import time\nprint('sleeping', flush=True)\ntime.sleep(60)")
    wait_for_output(k, mid)
    t0 = time.monotonic()
    k.interrupt()
    r = k._collect(mid, 20, [])
    assert time.monotonic() - t0 < 15
    assert [e["ename"] for e in r.errors] == ["KeyboardInterrupt"], r
    assert k.execute("print(1 + 1)").stream() == "2\n"


def test_heartbeat_follows_the_kernel(kernels, line):
    """Heartbeats go through to the kernel: a stopped kernel stops beating."""
    k = kernels.get(line, PROXY, fresh=True, TEST_PURPOSE="heartbeat")
    _, kernel = pids(k)
    hb = k.kc.hb_channel
    support.wait_for("heartbeats", hb.is_beating, timeout=10)
    os.kill(kernel, signal.SIGSTOP)
    try:
        support.wait_for("missed heartbeats", lambda: not hb.is_beating(), timeout=15)
    finally:
        os.kill(kernel, signal.SIGCONT)
    support.wait_for("heartbeats again", hb.is_beating, timeout=15)


def test_restart_and_shutdown(kernels, line):
    k = kernels.get(line, PROXY, fresh=True, TEST_PURPOSE="restart")
    proxy, kernel = pids(k)
    k.km.restart_kernel(now=False)
    wait_gone(proxy, "the old proxy")
    wait_gone(kernel, "the old kernel")
    k.kc.wait_for_ready(timeout=60)
    proxy2, kernel2 = pids(k)
    assert (proxy2, kernel2) != (proxy, kernel)
    assert k.execute("print('after restart')").stream() == "after restart\n"
    k.km.shutdown_kernel(now=False)
    wait_gone(proxy2, "the proxy")
    wait_gone(kernel2, "the kernel")
    assert not os.path.exists(inner_connection_file(k)), "the inner connection file is removed"
    events = [e["event"] for e in k.audit()]
    assert events.count("session_start") == 2 and events.count("session_end") == 2, events


@pytest.mark.parametrize("victim", ["proxy", "kernel"])
def test_no_orphan_when_either_is_killed(kernels, line, victim):
    k = kernels.get(line, PROXY, fresh=True, TEST_PURPOSE=f"kill-{victim}")
    proxy, kernel = pids(k)
    child = int(k.eval("__import__('subprocess').Popen(['sleep', '300']).pid"))
    os.kill(proxy if victim == "proxy" else kernel, signal.SIGKILL)
    wait_gone(kernel, "the kernel")
    wait_gone(proxy, "the proxy")
    if victim == "kernel":
        # The proxy ended the kernel's process group on its way out.
        wait_gone(child, "the kernel's child process")
    else:
        os.kill(child, signal.SIGKILL)
    k.shutdown()


# ------------------------------------------------------ install --enforce
def _cli(python, *args, env):
    return subprocess.run([python, "-m", "leakguard.jupyter_cli", *args], env=env, capture_output=True, text=True, timeout=60)


def test_install_enforce_status_and_uninstall(line, tmp_path):
    python = os.path.join(LINES[line], "bin", "python")
    kernels = tmp_path / "path" / "kernels"
    spec_dir = kernels / "py"
    spec_dir.mkdir(parents=True)
    original = json.dumps(
        {"argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"], "display_name": "Py",
         "language": "python", "metadata": {"debugger": True, "supported_encryption": ["curve"]}},
        indent=1,
    )
    (spec_dir / "kernel.json").write_text(original)
    (spec_dir / "logo-32x32.png").write_bytes(b"\x89PNG")
    env = support.isolated_env(str(tmp_path))
    env.update(JUPYTER_PATH=str(tmp_path / "path"), JUPYTER_DATA_DIR=str(tmp_path / "data"),
               JUPYTER_CONFIG_DIR=str(tmp_path / "config"), IPYTHONDIR=str(tmp_path / "ipython"),
               LEAKGUARD_AUDIT_LOG=str(tmp_path / "audit.jsonl"), ALLOWLIST_PATHS="[]")
    env.pop("JUPYTER_PLATFORM_DIRS", None)

    r = _cli(python, "install", "--enforce", "--kernel", "py", "--leakguard", support.binary(), env=env)
    assert r.returncode == 0, r.stderr
    spec = json.loads((spec_dir / "kernel.json").read_text())
    assert spec["argv"][:4] == [support.binary(), "kernel-proxy", "--connection-file", "{connection_file}"]
    inner = spec["argv"][spec["argv"].index("--") + 1 :]
    assert inner == [python, "-m", "ipykernel_launcher", "-f", "{inner_connection_file}"], "bare python replaced"
    assert "supported_encryption" not in spec["metadata"] and spec["metadata"]["debugger"] is True
    r = _cli(python, "status", env=env)
    assert "py: enforced" in r.stdout, r.stdout
    # Installing again with the binary elsewhere points the spec at it; the original stays saved.
    moved = shutil.copy(support.binary(), tmp_path / "moved-leakguard")
    r = _cli(python, "install", "--enforce", "--kernel", "py", "--leakguard", moved, env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads((spec_dir / "kernel.json").read_text())["argv"] == [str(moved), *spec["argv"][1:]]
    r = _cli(python, "install", "--enforce", "--kernel", "py", "--leakguard", support.binary(), env=env)
    assert json.loads((spec_dir / "kernel.json").read_text()) == spec

    km = KernelManager(kernel_name="py", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)]),
                       connection_file=str(tmp_path / "conn.json"))
    km.start_kernel(env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        outputs = []
        reply = kc.execute_interactive(f"print({GH.text!r}[:4] + {GH.text!r}[4:])", timeout=60,
                                       output_hook=lambda m: outputs.append(m))
        assert reply["content"]["status"] == "ok"
        text = "".join(m["content"].get("text", "") for m in outputs if m["msg_type"] == "stream")
        assert text == "[REDACTED]\n", text
        kc.stop_channels()
    finally:
        km.shutdown_kernel(now=True)

    r = _cli(python, "uninstall", "--enforce", "--kernel", "py", env=env)
    assert r.returncode == 0, r.stderr
    assert (spec_dir / "kernel.json").read_text() == original
    assert not (spec_dir / "kernel.json.leakguard-orig").exists()

    r = _cli(python, "install", "--enforce", "--copy", "--kernel", "py", "--leakguard", support.binary(), env=env)
    assert r.returncode == 0, r.stderr
    copy = tmp_path / "data" / "kernels" / "py-leakguard"
    assert json.loads((copy / "kernel.json").read_text())["display_name"] == "Py (leakguard)"
    assert (copy / "logo-32x32.png").exists() and (spec_dir / "kernel.json").read_text() == original
    r = _cli(python, "uninstall", "--enforce", env=env)
    assert r.returncode == 0 and not copy.exists(), r.stdout + r.stderr
