"""Harness for the Jupyter tests: real kernels started with jupyter_client.

A test asks for kernels through the ``kernels`` fixture:
``kernels.get(line, layer, **settings)`` starts (once, then reuses) an IPython
kernel of one ipykernel line (``"ik6"``: 6.31.x, ``"ik7"``: 7.4.x, the venvs
made by ``tests/jupyter/setup.sh``) protected by one :class:`Layer`, with the
leakguard settings given as environment variables (``REDACT_MODE="block"``...).
``kernel.execute(code)`` runs a cell and returns a :class:`Run`: every iopub,
shell and stdin message of that request until the kernel is idle again, and
the joined stream text. :func:`assert_hidden` checks that no piece of a secret
is in any of it.

Each kernel gets its own directory: a kernelspec in a private JUPYTER_PATH,
its IPYTHONDIR (so history.sqlite and the extension's config are its own), an
empty leakguard config, an audit log and key, and its stdout/stderr log.
``PYTEST_CURRENT_TEST`` is removed from the kernel's environment, or
ipykernel would not capture file-descriptor output (subprocesses, C printf).

Layers: the ``layer`` fixture is parametrised over :data:`LAYERS` (select
with ``LEAKGUARD_JUPYTER_LAYERS=name,name``). A layer says whether the
leakguard IPython extension is loaded and may rewrite the kernelspec argv
(for instance to start the kernel behind ``leakguard kernel-proxy``). Tests
that check masking take ``layer`` so that they run against every layer;
tests of the extension's own features use :data:`EXTENSION`.
"""

import json
import os
import re
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Callable, Optional

import pytest
import zmq
from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpecManager
from leakguard._native import is_binary_mime

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TARGET = os.path.join(ROOT, "target", "jupyter")
LINES = {"ik6": os.path.join(TARGET, "venv-ik6"), "ik7": os.path.join(TARGET, "venv-ik7")}

sys.path[:0] = [HERE, os.path.join(ROOT, "tests")]
import support  # noqa: E402  (ports, waiting, process clean-up, isolated environments)
import tokens  # noqa: E402


@dataclass(frozen=True)
class Layer:
    """How the kernels of a test are protected.

    ``extension``: load the leakguard IPython extension in the kernel.
    ``wrap(argv, kernel)``: rewrites the kernelspec argv (``[python, -m,
    ipykernel_launcher, -f, {connection_file}]``), e.g. to put a proxy in
    front of the kernel; ``kernel.dir`` is the kernel's private directory.
    """

    name: str
    extension: bool = True
    wrap: Optional[Callable[[list, "Kernel"], list]] = None


EXTENSION = Layer("extension", extension=True)
PLAIN = Layer("plain", extension=False)
# Layers that mask: the masking tests run against each of them.
LAYERS = {EXTENSION.name: EXTENSION}


def register_layer(layer):
    """Adds a masking layer (e.g. the kernel proxy) to the ``layer`` parametrisation."""
    LAYERS[layer.name] = layer


def pytest_report_header(config):
    return f"leakguard test secrets seed: {tokens.SEED} (replay with LEAKGUARD_TEST_SEED)"


def pytest_generate_tests(metafunc):
    if "layer" in metafunc.fixturenames:
        wanted = os.environ.get("LEAKGUARD_JUPYTER_LAYERS")
        names = [n.strip() for n in wanted.split(",")] if wanted else list(LAYERS)
        missing = [n for n in names if n not in LAYERS]
        if missing:
            raise pytest.UsageError(f"LEAKGUARD_JUPYTER_LAYERS names unknown layers {missing}; known: {list(LAYERS)}")
        metafunc.parametrize("layer", [LAYERS[n] for n in names], ids=names, scope="session")
    if "line" in metafunc.fixturenames:
        metafunc.parametrize("line", list(LINES), scope="session")


# ------------------------------------------------------------------ leak checks
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
_INVISIBLE = re.compile("[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff]")


def rendered(text):
    """Text as a front end shows it: escape sequences and invisible
    characters gone, ``\\b`` erasing the character before, ``\\r`` dropped."""
    text = _INVISIBLE.sub("", _ANSI.sub("", text))
    if "\b" in text:
        out = []
        for ch in text:
            if ch == "\b":
                if out:
                    out.pop()
            else:
                out.append(ch)
        text = "".join(out)
    return text.replace("\r", "")


def strings(value, where="content"):
    """Every string in a JSON-like value (keys too), with where it was.
    Values of binary MIME types (base64 images, PDF) are skipped: leakguard
    never changes them (tests check they pass byte-exact)."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, str):
                if is_binary_mime(k):
                    continue
                yield f"{where}.<key>", k
            yield from strings(v, f"{where}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from strings(v, f"{where}[{i}]")


def leaks(texts, secrets=None):
    """(secret name, where, piece) for every piece of a secret found in
    ``texts``, an iterable of (where, text)."""
    secrets = tokens.ALL if secrets is None else secrets
    found = []
    windows = [(s.name, s.windows()) for s in secrets]
    for where, text in texts:
        for variant in {text, rendered(text)}:
            for name, ws in windows:
                hit = next((w for w in ws if w in variant), None)
                if hit is not None:
                    found.append((name, where, hit))
    return found


def assert_hidden(what, secrets=None):
    """Fails if any piece (12 characters) of a secret is in ``what``: a
    :class:`Run`, a list of messages, or (where, text) pairs."""
    if isinstance(what, Run):
        texts = what.texts()
    elif isinstance(what, list) and what and isinstance(what[0], dict):
        texts = [t for m in what for t in message_texts(m)]
    else:
        texts = what
    found = leaks(texts, secrets)
    assert not found, "secret pieces shown:\n" + "\n".join(f"  {n}: {w}: {p!r}" for n, w, p in found[:20])


def message_texts(msg):
    kind = msg["header"]["msg_type"]
    yield from strings(msg.get("content"), f"{kind}.content")
    yield from strings(msg.get("metadata"), f"{kind}.metadata")


# ------------------------------------------------------------------------ runs
class Run:
    """Everything one request caused: its iopub messages (in order), the
    shell reply, and stdin requests."""

    def __init__(self, msg_id):
        self.msg_id = msg_id
        self.iopub = []
        self.reply = None
        self.stdin = []

    @property
    def messages(self):
        return self.iopub + self.stdin + ([self.reply] if self.reply else [])

    def of_type(self, *types):
        return [m for m in self.iopub if m["header"]["msg_type"] in types]

    def stream(self, name=None):
        """The stream text joined, as a front end shows consecutive stream outputs."""
        return "".join(
            m["content"]["text"]
            for m in self.of_type("stream")
            if name is None or m["content"].get("name") == name
        )

    @property
    def errors(self):
        return [m["content"] for m in self.of_type("error")]

    @property
    def status(self):
        return self.reply["content"]["status"] if self.reply else None

    def texts(self):
        for m in self.messages:
            yield from message_texts(m)
        for name in ("stdout", "stderr"):
            yield f"joined {name}", self.stream(name)
        yield "joined streams", self.stream()

    def __repr__(self):
        parts = [f"{m['header']['msg_type']}:{json.dumps(m['content'])[:300]}" for m in self.messages]
        return "Run(\n  " + "\n  ".join(parts) + "\n)"


class KernelDied(AssertionError):
    pass


class Kernel:
    """One running kernel and its client, in a private directory."""

    def __init__(self, line, layer, settings, root, python=None, ipython_dir=None, install=True, check=True):
        self.line = line
        self.layer = layer
        self.settings = dict(settings)
        self.dir = tempfile.mkdtemp(prefix=f"{line}-{layer.name}-", dir=root)
        self.python = python or os.path.join(LINES[line], "bin", "python")
        self.ipython_dir = ipython_dir or os.path.join(self.dir, "ipython")
        # Whether the harness enables the extension (in IPYTHONDIR) for a layer that wants it.
        self.install = install
        # Whether to check, once started, that the extension is loaded or not as the layer says.
        self.check = check
        self.audit_log = os.path.join(self.dir, "audit.jsonl")
        self.log_path = os.path.join(self.dir, "kernel.log")
        self.all = []  # every message received, of any request
        self.km = self.kc = None
        self._log = None
        self._start()

    # --------------------------------------------------------------- set-up
    def env(self):
        env = support.isolated_env(self.dir)
        for k in ("PYTEST_CURRENT_TEST", "JPY_SESSION_NAME", "IPYTHONDIR"):
            env.pop(k, None)
        env.update(
            IPYTHONDIR=self.ipython_dir,
            JUPYTER_PATH=os.path.join(self.dir, "jupyter"),
            JUPYTER_RUNTIME_DIR=os.path.join(self.dir, "runtime"),
            LEAKGUARD_AUDIT_LOG=self.audit_log,
            # Secrets are not allowlisted by the default /workspace/trusted/ in a test.
            ALLOWLIST_PATHS="[]",
            PYTHONUNBUFFERED="1",
        )
        env.update({k: str(v) for k, v in self.settings.items()})
        return env

    def _start(self):
        assert os.path.exists(self.python), f"{self.python} missing: run tests/jupyter/setup.sh"
        argv = [self.python, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        if self.layer.wrap is not None:
            argv = self.layer.wrap(argv, self)
        kernels = os.path.join(self.dir, "jupyter", "kernels")
        spec = os.path.join(kernels, "lg")
        os.makedirs(spec)
        with open(os.path.join(spec, "kernel.json"), "w") as f:
            json.dump({"argv": argv, "display_name": f"leakguard {self.line}", "language": "python", "interrupt_mode": "signal"}, f)
        if self.layer.extension and self.install:
            from leakguard import jupyter_cli

            jupyter_cli.install(os.path.join(self.ipython_dir, "profile_default"))
        self._log = open(self.log_path, "ab")
        self.km = KernelManager(
            kernel_name="lg",
            kernel_spec_manager=KernelSpecManager(kernel_dirs=[kernels]),
            connection_file=os.path.join(self.dir, "connection.json"),
        )
        try:
            self.km.start_kernel(env=self.env(), stdout=self._log, stderr=self._log)
            self.kc = self.km.client()
            self.kc.start_channels()
            self.kc.wait_for_ready(timeout=60)
            if not self.check:
                return
            self._drain(0.5)
            loaded = self.eval("'leakguard' in get_ipython().extension_manager.loaded")
            assert loaded == repr(self.layer.extension), f"extension loaded: {loaded}; kernel log:\n{self.log()}"
        except RuntimeError as e:
            # jupyter_client's "Kernel died before replying": say why.
            log = self.log()
            self.shutdown()
            raise KernelDied(f"kernel did not start: {e}\nkernel log:\n{log}") from e
        except BaseException:
            self.shutdown()
            raise

    def _drain(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                self.all.append(self.kc.get_iopub_msg(timeout=max(0.01, end - time.monotonic())))
            except Exception:
                pass

    # ------------------------------------------------------------- requests
    def execute(self, code, *, timeout=60, stdin=(), **kw):
        """Runs a cell; ``stdin`` answers its input() prompts in order."""
        kw.setdefault("stop_on_error", False)
        if stdin:
            kw["allow_stdin"] = True
        mid = self.kc.execute(code, **kw)
        return self._collect(mid, timeout, list(stdin))

    def request(self, method, *args, timeout=30, **kw):
        """inspect, complete, history, kernel_info...: the reply and its iopub messages."""
        mid = getattr(self.kc, method)(*args, **kw)
        return self._collect(mid, timeout, [])

    def control(self, msg_type, content, timeout=30):
        """A request on the control channel (debug_request...)."""
        msg = self.kc.session.msg(msg_type, content)
        self.kc.control_channel.send(msg)
        return self._collect(msg["header"]["msg_id"], timeout, [])

    def eval(self, expr):
        """The repr of a Python expression, through user_expressions."""
        r = self.execute("", user_expressions={"x": expr}, store_history=False)
        x = r.reply["content"]["user_expressions"]["x"]
        assert x["status"] == "ok", x
        return x["data"]["text/plain"]

    def _collect(self, mid, timeout, answers):
        run = Run(mid)
        idle = False
        channels = [self.kc.iopub_channel, self.kc.shell_channel, self.kc.stdin_channel, self.kc.control_channel]
        poller = zmq.Poller()
        for ch in channels:
            poller.register(ch.socket, zmq.POLLIN)
        deadline = time.monotonic() + timeout
        while not (idle and run.reply is not None):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no idle/reply for {mid} after {timeout}s; so far {run!r}\nkernel log:\n{self.log()}")
            ready = dict(poller.poll(min(left, 1.0) * 1000))
            if not ready and not self.km.is_alive():
                raise KernelDied(f"kernel died; so far {run!r}\nkernel log:\n{self.log()}")
            for ch in channels:
                if ch.socket not in ready:
                    continue
                msg = ch.get_msg(timeout=0)
                self.all.append(msg)
                if msg["parent_header"].get("msg_id") != mid:
                    continue
                kind = msg["header"]["msg_type"]
                if ch is self.kc.stdin_channel:
                    run.stdin.append(msg)
                    if kind == "input_request":
                        self.kc.input(answers.pop(0) if answers else "")
                elif ch in (self.kc.shell_channel, self.kc.control_channel):
                    run.reply = msg
                else:
                    run.iopub.append(msg)
                    if kind == "status" and msg["content"]["execution_state"] == "idle":
                        idle = True
        return run

    def settle(self, seconds=1.5):
        """Collects late messages (held stream tails, forked children)."""
        self._drain(seconds)

    def interrupt(self):
        self.km.interrupt_kernel()

    # -------------------------------------------------------------- records
    def audit(self):
        try:
            with open(self.audit_log) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def audit_text(self):
        try:
            with open(self.audit_log) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def history_db(self):
        """Every (source, source_raw) in the kernel's history.sqlite."""
        self.execute("get_ipython().history_manager.writeout_cache()", store_history=False)
        db = os.path.join(self.ipython_dir, "profile_default", "history.sqlite")
        con = sqlite3.connect(db)
        try:
            return con.execute("SELECT source, source_raw FROM history").fetchall()
        finally:
            con.close()

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-4000:]
        except OSError:
            return ""

    def alive(self):
        return self.km is not None and self.km.is_alive()

    def shutdown(self):
        try:
            if self.kc is not None:
                self.kc.stop_channels()
        finally:
            try:
                if self.km is not None and self.km.has_kernel:
                    self.km.shutdown_kernel(now=True)
            finally:
                if self._log is not None:
                    self._log.close()


class Kernels:
    """Starts kernels on demand and keeps them for the session; one per
    (line, layer, settings)."""

    def __init__(self, root):
        self.root = root
        self.kernels = {}

    def get(self, line, layer=EXTENSION, fresh=False, tag=None, options=None, **settings):
        """``settings``: environment of the kernel (leakguard settings...);
        ``tag``: keeps a kernel apart from others of the same settings;
        ``options``: more arguments of :class:`Kernel` (python, ipython_dir, install, check)."""
        key = (line, layer.name, tag, tuple(sorted(settings.items())), tuple(sorted((options or {}).items())))
        k = self.kernels.get(key)
        if k is not None and (fresh or not k.alive()):
            k.shutdown()
            k = None
        if k is None:
            k = self.kernels[key] = Kernel(line, layer, settings, self.root, **(options or {}))
        return k

    def shutdown(self):
        for k in self.kernels.values():
            try:
                k.shutdown()
            except Exception:
                pass
        self.kernels.clear()


@pytest.fixture(scope="session")
def kernels(tmp_path_factory):
    ks = Kernels(str(tmp_path_factory.mktemp("kernels")))
    try:
        yield ks
    finally:
        ks.shutdown()


@pytest.fixture
def kernel(kernels, line, layer):
    """The default masking kernel of a line and layer (mode mask)."""
    return kernels.get(line, layer)


@pytest.fixture(scope="session")
def secrets_file(tmp_path_factory):
    """The test secrets as JSON, for cells to load (so no cell's code holds one)."""
    path = tmp_path_factory.mktemp("secrets") / "secrets.json"
    path.write_text(json.dumps({s.name: s.text for s in tokens.ALL}))
    return str(path)


def load_secrets(kernel, secrets_file):
    """Defines ``S`` (name -> text) in the kernel from the secrets file."""
    r = kernel.execute(f"import json as _json; S = _json.load(open({secrets_file!r}))", store_history=False)
    assert r.status == "ok", r


# Layers defined beside their own tests register themselves here, before
# the test modules are collected.
import proxy_layer  # noqa: E402,F401  (the kernel proxy: test_proxy.py)
