"""The leakguard IPython extension: masks secrets in everything a kernel sends.

Load it with ``%load_ext leakguard`` or, for every kernel, with
``jupyter leakguard install`` (``c.InteractiveShellApp.extensions``).

How it works (research/jupyter.md, sections 1-4):

- ``kernel.session.serialize`` is wrapped on the instance. Every message the
  kernel sends on iopub, shell, control and stdin passes through it as a
  complete dict, whether the caller used ``Session.send``'s pre-built-message
  form or its ``msg_type, content`` form, and on every thread (IOPub, main,
  subshells, forked children). The wrapper rebuilds the message's content
  (copy on write: the user's objects are never mutated) and hands it on.
- Stream text goes through a carry buffer per (parent msg_id, stream name):
  a native ``Guard.stream()`` that holds an unfinished line (and a private key
  block that may still grow), so a secret split over several writes or
  stream messages is still masked. What is held goes out after a short idle
  time (a timer thread), when the hold grows past a bound, and before any
  other message with the same parent, so ordering and the final ``idle`` are
  kept. Text written to the kernel's ``sys.stdout``/``sys.stderr`` (prints,
  subprocess and C output through ipykernel's fd capture) is filtered where
  it is written (:class:`_Writer`): the scan of a big output runs without
  the GIL beside ipykernel's own encoding on the IOPub thread, and the
  stream messages made of it pass ``serialize`` untouched. Stream messages
  from elsewhere are filtered in ``serialize``.
- The rules compile on a thread while the kernel starts; the first text to
  check waits for them.
- Other messages go through ``Guard.check_message``: the walk the kernel
  proxy and the CLI scanner use (``leakguard_jupyter``), run natively over
  the message's Python objects and copying them on write. Text MIME types
  are scanned as strings, JSON MIME types walked as values, binary MIME
  types and ``buffers`` untouched; widget comm messages are left alone
  unless the ``mask_widget_state`` setting is on (masking breaks two-way
  binding).
- ``block`` mode withholds the offending output, shows an error naming the
  rule (never the secret) and interrupts the running cell: on the main thread
  by raising :class:`SecretBlocked` where the output was produced, otherwise
  with SIGINT to the kernel process (as the "interrupt kernel" button does),
  so blocking system calls are interrupted too. Subshell threads (ipykernel
  7) cannot be interrupted; their offending output is still withheld.
- ``SCAN_INPUT``: ``kernel.do_execute`` is wrapped. A cell whose code holds a
  secret is recorded (``input_secret_detected``); in ``block`` mode it does
  not run and gets an error reply. In every mode the secret is scrubbed from
  the history database and ``In``/``_ih``/``_iN`` (``store_inputs`` is
  wrapped), and the ``execute_input`` broadcast is masked.
- Nothing escapes the hook: an internal error is contained and recorded
  (``internal_error``); in ``block`` mode the message is withheld (fail
  closed), otherwise it passes through.

This layer lives inside the user's process and is a guard against accidents,
not a control: user code can undo it (``del kernel.session.serialize``). The
kernel proxy is the layer user code cannot switch off.
"""

import collections
import functools
import inspect
import os
import signal
import sys
import threading
import time

from . import _CONTAINED
from ._native import MIN_LEN, Guard, message_kind, redact, scan

__all__ = ["SecretBlocked", "Filter", "load", "unload"]

# A held stream tail goes out after this long without new text ...
FLUSH_IDLE = 1.0
# ... or at the latest this long after it was first held.
FLUSH_MAX_AGE = 3.0
# Bytes a stream may hold back (an RSA-4096 PEM block is about 3.3 KB).
MAX_HOLD = 16384
# Carry buffers kept (empty ones are evicted first).
MAX_CARRIES = 256
# Remembered blocked parents and scanned inputs.
MAX_REMEMBERED = 256
# Writes to sys.stdout/sys.stderr of at least this many characters are
# filtered at once, on the writing thread (the scan runs without the GIL,
# beside ipykernel's own work on the IOPub thread); smaller ones are
# gathered first, so a loop of short prints costs one scan per batch ...
BATCH = 65536
# ... which goes out this long after its first write at the latest (or at a flush).
GATHER = 0.05

# Outputs made by the cell's own code on its thread (display(), a result).
_RAISE_ON = frozenset({"display_data", "update_display_data", "execute_result"})

_ORDER = {"clean": 0, "logged": 1, "masked": 2, "blocked": 3}

_ERROR_NAME = "SecretBlocked"


class SecretBlocked(Exception):
    """Raised in a cell when leakguard's block mode withholds its output or input.

    The message names the rule, never the secret.
    """


def _rules_text(rules):
    return ", ".join(rules) if rules else "a secret rule"


def _blocked_text(rules, what="output"):
    if what == "input":
        return f"leakguard did not run this cell: its code contains a secret (rule {_rules_text(rules)})"
    return f"leakguard withheld {what} that contained a secret (rule {_rules_text(rules)}); the cell was interrupted"


def _error_content(evalue):
    return {"ename": _ERROR_NAME, "evalue": evalue, "traceback": [f"\x1b[0;31m{_ERROR_NAME}\x1b[0m: {evalue}"]}


def _with(msg, content=None, metadata=None, msg_type=None):
    """A shallow copy of a message with some parts replaced."""
    m = dict(msg)
    if content is not None:
        m["content"] = content
    if metadata is not None:
        m["metadata"] = metadata
    if msg_type is not None:
        m["header"] = dict(m.get("header") or {}, msg_type=msg_type)
        if "msg_type" in m:
            m["msg_type"] = msg_type
    return m


class _Carry:
    __slots__ = ("key", "stream", "parent", "ident", "name", "first", "last")

    def __init__(self, key, stream, parent, ident, name):
        self.key = key
        self.stream = stream
        self.parent = parent
        self.ident = ident
        self.name = name
        self.first = None  # monotonic time the held tail started
        self.last = None  # monotonic time of the last push


class Filter:
    """Filters Jupyter messages with a :class:`leakguard.Guard`.

    ``emit(msg_type, content, parent_header, ident)`` sends a new iopub
    message that needs no filtering (released stream text, block notices).
    ``on_block(parent_id, rules, how)`` is told when output of a request was
    withheld: ``how`` is "raise" when it may raise :class:`SecretBlocked` to
    stop the code that produced it (a print, display or result of the cell
    itself, on the cell's thread), "interrupt" to interrupt the cell, "none"
    when the cell has stopped already (its traceback is being shown).
    """

    def __init__(self, guard, emit, on_block=None):
        self.guard = guard
        self.emit = emit
        self.on_block = on_block
        self._lock = threading.RLock()
        self._carries = collections.OrderedDict()  # (parent_id, name) -> _Carry
        self._by_parent = {}  # parent_id -> {name: _Carry}
        self._blocked = collections.OrderedDict()  # parent ids whose output was withheld
        self._inputs = collections.OrderedDict()  # code -> (verdict, output, findings)
        self._wake = threading.Event()
        self._timer = None
        self._timer_pid = None
        self._stopped = False
        self.writers = []  # _Writer of each of the kernel's output streams

    # ----------------------------------------------------------------- scanning
    def _walk(self, mtype, content, metadata, pid):
        """``Guard.check_message``: (verdict, content, metadata, rule ids)."""
        return self.guard.check_message(mtype, content, metadata, parent=pid)

    def check_input(self, code, pid=None):
        """``Guard.check(code, input=True)``, once per cell: the execute_input
        broadcast and ``do_execute`` share the result (one audit event)."""
        with self._lock:
            hit = self._inputs.get(code)
        if hit is not None:
            return hit
        # With SCAN_INPUT off the execute_input echo is still masked, as output.
        hit = self.guard.check(code, input=self.guard.scan_input, parent=pid)
        with self._lock:
            self._inputs[code] = hit
            while len(self._inputs) > 16:
                self._inputs.popitem(last=False)
        return hit

    def forget_input(self, code):
        with self._lock:
            self._inputs.pop(code, None)

    # ---------------------------------------------------------------- messages
    def process(self, msg, ident=None):
        """Returns the message to send instead of ``msg`` (``msg`` itself when
        nothing changed). Raises only :class:`SecretBlocked` (block mode,
        output produced on the thread running the cell)."""
        __tracebackhide__ = True
        try:
            return self._process(msg, ident)
        except SecretBlocked:
            raise
        except _CONTAINED as e:  # contain: never kill or hang the kernel
            return self._failed(msg, e)

    def _failed(self, msg, exc):
        mtype = _msg_type(msg)
        block = _block_mode(self.guard)
        try:
            # The reason names the failure, never the scanned text.
            self.guard.record(
                "internal_error",
                reason=f"{type(exc).__name__} while filtering a {mtype} message"
                + ("; withheld (block mode)" if block else "; passed through"),
                parent=_parent_id(msg) or "",
            )
        except _CONTAINED:
            pass
        if not block or message_kind(mtype) == "skip":
            return msg
        try:
            return _withheld(msg, mtype)
        except _CONTAINED:
            return msg

    def _process(self, msg, ident):
        mtype = _msg_type(msg)
        if mtype == "stream" and getattr(_TRUSTED, "on", False):
            return msg  # made by a filtered OutStream from text filtered when written
        content = msg.get("content")
        pid = _parent_id(msg)
        if pid is not None and pid in self._by_parent and mtype != "stream":
            # Held stream text of this request goes out before anything else of it.
            if mtype == "status" and isinstance(content, dict) and content.get("execution_state") == "idle":
                self._retire(pid)
            else:
                self._flush_parent(pid)
        if not isinstance(content, dict):
            # bytes content = already packed (relayed frames): leave alone.
            return msg
        if mtype == "stream":
            return self._stream(msg, content, pid, ident)
        kind = message_kind(mtype)
        if kind == "skip":
            return msg
        md = msg.get("metadata")
        if kind == "execute_input":
            # The code is checked once per cell, the check shared with
            # do_execute (one audit event); the metadata as any message's.
            new = content
            code = content.get("code")
            if isinstance(code, str) and len(code) >= MIN_LEN:
                verdict, out, _ = self.check_input(code, pid)
                if verdict not in ("clean", "logged"):
                    new = dict(content, code=out)
            new_md = self._walk(mtype, None, md, pid)[2]
        else:
            verdict, new, new_md, rules = self._walk(mtype, content, md, pid)
            if verdict == "blocked" and kind == "output":
                return self._block(msg, pid, rules, mtype)
        if new is content and new_md is md:
            return msg
        return _with(msg, content=new, metadata=new_md)

    # ------------------------------------------------------------------ block
    def _block(self, msg, pid, rules, mtype):
        """Withholds an output message: the first one of a request becomes an
        error naming the rule, later ones empty stream text."""
        first = self._mark_blocked(pid)
        if self.on_block is not None:
            # Raising is safe only inside the user's own display()/result;
            # never from a traceback being shown or a stream.
            self.on_block(pid, rules, "raise" if mtype in _RAISE_ON else "none" if mtype == "error" else "interrupt")
        if first or mtype == "error":
            return _with(msg, content=_error_content(_blocked_text(rules)), metadata={}, msg_type="error")
        return _with(msg, content={"name": "stderr", "text": ""}, metadata={}, msg_type="stream")

    def _mark_blocked(self, pid):
        key = pid or ""
        with self._lock:
            first = key not in self._blocked
            self._blocked[key] = True
            while len(self._blocked) > MAX_REMEMBERED:
                self._blocked.popitem(last=False)
        return first

    def is_blocked(self, pid):
        return (pid or "") in self._blocked

    # ---------------------------------------------------------------- streams
    def _stream(self, msg, content, pid, ident):
        name = content.get("name")
        text = content.get("text")
        if not isinstance(text, str):
            return msg
        if self.is_blocked(pid):
            # A blocked request's remaining stream output is withheld (a
            # child process may still be writing).
            return _with(msg, content=dict(content, text=""))
        verdict, out = self._feed(pid, msg.get("parent_header") or {}, name, text, ident)
        if verdict == "blocked":
            rules = _rule_names(text)
            return self._block(msg, pid, rules, "stream")
        if out is text:
            return msg
        return _with(msg, content=dict(content, text=out))

    def _feed(self, pid, parent, name, text, ident):
        """Pushes stream text through the carry of (request, stream name)."""
        key = (pid or "", name)
        with self._lock:
            # Other streams of the request are not flushed: stdout and stderr
            # are buffered apart by ipykernel and never ordered between them.
            c = self._carries.get(key)
            if c is None:
                c = self._new_carry(key, parent, ident, name)
            else:
                self._carries.move_to_end(key)
            verdict, out = c.stream.push(text)
            if verdict != "blocked" and c.stream.held and (text.endswith("\r") or c.stream.held > MAX_HOLD):
                # A progress bar redraws its line with \r: show it now. A
                # hold past the bound goes out too (bounded memory).
                v2, o2 = c.stream.flush()
                out += o2
                verdict = _worse(verdict, v2)
            if verdict == "blocked":
                c.stream = self.guard.stream(parent=pid)
                c.first = None
            elif c.stream.held:
                now = time.monotonic()
                c.last = now
                if c.first is None:
                    c.first = now
                    self._ensure_timer()
                    self._wake.set()
            else:
                c.first = None
        return verdict, out

    def write_text(self, pid, parent, name, text, ident, how):
        """Filters text written to one of the kernel's output streams;
        returns what to write instead. ``how``: see ``on_block``."""
        if self.is_blocked(pid):
            return ""  # a blocked request's later output is withheld
        try:
            verdict, out = self._feed(pid, parent, name, text, ident)
        except _CONTAINED as e:  # contain: never break the user's print()
            self._failed({"header": {"msg_type": "stream"}, "parent_header": parent}, e)
            return "" if _block_mode(self.guard) else text
        if verdict != "blocked":
            return out
        rules = _rule_names(text)
        first = self._mark_blocked(pid)
        if how == "raise" and self.on_block is not None:
            # Raises SecretBlocked (shown as the error) in the cell's own print() ...
            self.on_block(pid, rules, how)
        if first:
            self.emit("error", _error_content(_blocked_text(rules)), parent, ident)
        if how != "raise" and self.on_block is not None:
            # ... else the error goes out first: a SIGINT to this very thread
            # stops it at once.
            self.on_block(pid, rules, how)
        return ""

    def _new_carry(self, key, parent, ident, name):
        c = _Carry(key, self.guard.stream(parent=key[0] or None), parent, ident, name)
        self._carries[key] = c
        self._by_parent.setdefault(key[0], {})[name] = c
        if len(self._carries) > MAX_CARRIES:
            self._evict()
        return c

    def _evict(self):
        for k in list(self._carries):
            if len(self._carries) <= MAX_CARRIES // 2:
                break
            c = self._carries[k]
            if c.stream.held:
                self._release(c, c.stream.flush())
            self._drop(c)

    def _drop(self, c):
        self._carries.pop(c.key, None)
        names = self._by_parent.get(c.key[0])
        if names is not None:
            names.pop(c.name, None)
            if not names:
                del self._by_parent[c.key[0]]

    def _flush_parent(self, pid, except_name=None):
        key = pid or ""
        with self._lock:
            for name, c in list(self._by_parent.get(key, {}).items()):
                if name != except_name and c.stream.held:
                    c.first = None
                    self._release(c, c.stream.flush())

    def _retire(self, pid):
        """The request is done (status idle): release and forget its carries."""
        key = pid or ""
        with self._lock:
            for c in list(self._by_parent.get(key, {}).values()):
                if c.stream.held:
                    self._release(c, c.stream.flush())
                self._drop(c)

    def _release(self, c, result):
        """Sends text a carry let go of (or withholds it, in block mode)."""
        verdict, out = result
        pid = c.key[0] or None
        if verdict == "blocked":
            c.stream = self.guard.stream(parent=pid)
            first = self._mark_blocked(pid)
            if first:
                self.emit("error", _error_content(_blocked_text([])), c.parent, c.ident)
            if self.on_block is not None:
                self.on_block(pid, [], "interrupt")
            return
        if out and not self.is_blocked(pid):
            self.emit("stream", {"name": c.name, "text": out}, c.parent, c.ident)

    def flush_all(self):
        """Releases every held tail (end of a forked child, unload)."""
        for w in self.writers:
            try:
                w.drain("interrupt")
            except SecretBlocked:
                pass
        with self._lock:
            for c in list(self._carries.values()):
                if c.stream.held:
                    c.first = None
                    try:
                        self._release(c, c.stream.flush())
                    except SecretBlocked:
                        pass

    # ------------------------------------------------------------------ timer
    def _ensure_timer(self):
        if self._timer is not None and self._timer_pid == os.getpid() and self._timer.is_alive():
            return
        self._timer_pid = os.getpid()
        self._timer = threading.Thread(target=self._timer_loop, name="leakguard-flush", daemon=True)
        self._timer.start()

    def _timer_loop(self):
        while not self._stopped:
            deadline = None
            try:
                for w in self.writers:
                    due = w.due()
                    if due is not None and due <= time.monotonic():
                        w.drain("interrupt")
                    elif due is not None and (deadline is None or due < deadline):
                        deadline = due
                with self._lock:
                    now = time.monotonic()
                    for c in list(self._carries.values()):
                        if c.first is None:
                            continue
                        due = min(c.last + FLUSH_IDLE, c.first + FLUSH_MAX_AGE)
                        if due <= now:
                            c.first = None
                            if c.stream.held:
                                # An armed key prefix of 16+ bytes is masked rather than shown.
                                self._release(c, c.stream.flush_idle())
                        elif deadline is None or due < deadline:
                            deadline = due
            except _CONTAINED as e:
                try:
                    self.guard.record("internal_error", reason=f"{type(e).__name__} in the stream flush timer")
                except _CONTAINED:
                    pass
                deadline = time.monotonic() + 0.1
            timeout = None if deadline is None else max(0.01, deadline - time.monotonic())
            self._wake.wait(timeout)
            self._wake.clear()

    def stop(self):
        self._stopped = True
        self._wake.set()

    def after_fork_in_child(self):
        """A forked child has no timer thread and must not resend its parent's held text."""
        self._lock = threading.RLock()
        self._carries = collections.OrderedDict()
        self._by_parent = {}
        self._wake = threading.Event()
        self._timer = None
        self._timer_pid = None
        for w in self.writers:
            w.after_fork_in_child()


# Set while a filtered OutStream sends what was written to it (see _Writer).
_TRUSTED = threading.local()


class _Writer:
    """Filters what is written to one of the kernel's OutStreams (sys.stdout,
    sys.stderr) where it is written, instead of when ipykernel sends it.

    Big writes are filtered on the writing thread at once; small ones are
    gathered per request and filtered together (at ``BATCH`` characters,
    after ``GATHER`` seconds, or when the stream is flushed). The filtered
    text is written to the stream, which echoes and sends only that; its
    stream messages then pass ``serialize`` untouched (``_TRUSTED``).
    Streams split across writes are still masked: the text goes through the
    same carry per (request, stream name) as stream messages do.
    """

    def __init__(self, flt, stream):
        self.flt = flt
        self.stream = stream
        self.name = stream.name
        self.orig_write = stream.write
        self.orig_flush = stream.flush
        self.orig_send = stream._flush
        self.lock = threading.Lock()
        self.pending = {}  # request id -> [parent header, [texts], characters]
        self.since = None  # when the oldest pending text was written

    def install(self, ext):
        ext._set(self.stream, "write", self.write)
        ext._set(self.stream, "flush", self.flush)
        ext._set(self.stream, "_flush", self.send)
        self.flt.writers.append(self)

    def write(self, string):
        if not isinstance(string, str) or self.stream.pub_thread is None:
            return self.orig_write(string)  # ipykernel's own errors
        parent = self.stream.parent_header
        pid = parent.get("msg_id") if isinstance(parent, dict) else None
        with self.lock:
            p = self.pending.get(pid)
            if p is None:
                p = self.pending[pid] = [parent, [], 0]
            p[1].append(string)
            p[2] += len(string)
            batch = self.pending.pop(pid) if p[2] >= BATCH else None
            start_timer = batch is None and self.since is None
            if start_timer:
                self.since = time.monotonic()
        if batch is not None:
            self._out(pid, batch, "raise")
        elif start_timer:
            self.flt._ensure_timer()
            self.flt._wake.set()
        return len(string)

    def flush(self):
        self.drain("interrupt")
        return self.orig_flush()

    def send(self):
        _TRUSTED.on = True
        try:
            return self.orig_send()
        finally:
            _TRUSTED.on = False

    def due(self):
        since = self.since
        return None if since is None else since + GATHER

    def drain(self, how):
        """Filters and writes out everything gathered."""
        with self.lock:
            batches = list(self.pending.items())
            self.pending.clear()
            self.since = None
        for pid, batch in batches:
            self._out(pid, batch, how)

    def _out(self, pid, batch, how):
        parent, texts, _ = batch
        text = texts[0] if len(texts) == 1 else "".join(texts)
        out = self.flt.write_text(pid, parent, self.name, text, self.stream.topic, how)
        if out:
            self.orig_write(out)

    def after_fork_in_child(self):
        self.lock = threading.Lock()
        self.pending = {}
        self.since = None


def _is_kernel_stream(stream):
    """An ipykernel OutStream with the parts _Writer relies on."""
    try:
        from ipykernel.iostream import OutStream
    except ImportError:
        return False
    return isinstance(stream, OutStream) and all(
        hasattr(stream, a) for a in ("_flush", "parent_header", "topic", "pub_thread", "name")
    )


class _Loading:
    """A value made on another thread; attribute access waits for it (and
    raises what making it raised)."""

    def __init__(self, make):
        self._make = make
        self._done = threading.Event()
        self._value = self._error = None
        threading.Thread(target=self._run, name="leakguard-load", daemon=True).start()

    def _run(self):
        try:
            self._value = self._make()
        except BaseException as e:  # surfaced on first use
            self._error = e
        finally:
            self._done.set()

    def after_fork_in_child(self):
        # A fork before the value was made has no thread making it.
        if not self._done.is_set():
            self._done = threading.Event()
            self._run()

    def get(self):
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value

    def __getattr__(self, name):
        return getattr(self.get(), name)


def _started(guard):
    if guard.allowlisted():
        # Notebooks under ALLOWLIST_PATHS are not filtered (the path is a hint, see _Extension).
        guard.record("session_start", reason="allowlisted notebook path: not filtered")
    else:
        guard.record("session_start")
    return guard


def _block_mode(guard):
    try:
        return guard.mode == "block"
    except _CONTAINED:
        return True


def _worse(a, b):
    return a if _ORDER.get(a, 0) >= _ORDER.get(b, 0) else b


def _rule_names(text):
    """Best-effort rule names for a withheld stream chunk (built-in rules;
    ``Stream.push`` reports no findings)."""
    try:
        names = []
        for f in scan(text):
            if f.rule not in names:
                names.append(f.rule)
        return names
    except _CONTAINED:
        return []


def _msg_type(msg):
    header = msg.get("header")
    if isinstance(header, dict) and header.get("msg_type"):
        return header["msg_type"]
    return msg.get("msg_type") or ""


def _parent_id(msg):
    parent = msg.get("parent_header")
    if isinstance(parent, dict):
        return parent.get("msg_id") or None
    return None


def _withheld(msg, mtype):
    """What block mode sends when filtering failed (fail closed)."""
    note = "leakguard withheld this message: it could not be checked"
    if mtype == "stream":
        return _with(msg, content={"name": "stderr", "text": ""}, metadata={})
    if message_kind(mtype) == "output":
        return _with(msg, content=_error_content(note), metadata={}, msg_type="error")
    content = {"status": "error", "ename": _ERROR_NAME, "evalue": note, "traceback": []}
    old = msg.get("content")
    if isinstance(old, dict) and "execution_count" in old:
        content["execution_count"] = old["execution_count"]
        content.setdefault("user_expressions", {})
        content.setdefault("payload", [])
    return _with(msg, content=content, metadata={})


# ----------------------------------------------------------------- the kernel
_active = None  # the loaded extension of this process


class _Extension:
    def __init__(self, ip):
        self.ip = ip
        self.kernel = getattr(ip, "kernel", None)
        self.restore = []  # (object, attribute, previous instance value or _MISSING)
        self.running = {}  # parent msg_id -> thread ident executing it
        self.interrupted = collections.OrderedDict()
        self.current_input = {}  # thread ident -> (raw code, code to store in history)
        self.kernel_pid = os.getpid()
        # JPY_SESSION_NAME is set by jupyter_server to the notebook's absolute
        # path. It is a hint from the kernel's environment (user code or a
        # client can set it, it goes stale after a rename, nbclient and VS
        # Code do not set it): it selects the allowlist, it is not an
        # authorisation.
        self.notebook = os.environ.get("JPY_SESSION_NAME") or None
        session_id = None
        if self.kernel is not None:
            session_id = getattr(getattr(self.kernel, "session", None), "session", None)
        self.guard = _Loading(lambda: _started(Guard(channel="jupyter", notebook=self.notebook, session=session_id)))
        self.filter = None

    def install(self):
        # The hooks go in at once; the rules compile on another thread while
        # the kernel starts, and the first text to check waits for them.
        # Under ALLOWLIST_PATHS every check passes text through unchanged.
        if self.kernel is not None:
            self.filter = Filter(self.guard, self._emit, self._on_block)
            self._wrap_serialize(self.kernel.session)
            self._wrap_do_execute(self.kernel)
            self._show_blocked_briefly()
            for stream in (sys.stdout, sys.stderr):
                if _is_kernel_stream(stream):
                    _Writer(self.filter, stream).install(self)
        hm = getattr(self.ip, "history_manager", None)
        if hm is not None:
            self._wrap_store_inputs(hm)
        if self.kernel is None:
            print("leakguard: no Jupyter kernel here; only input history is scrubbed", file=sys.stderr)

    # ------------------------------------------------------------- patching
    def _set(self, obj, name, value):
        prev = obj.__dict__.get(name, _MISSING) if hasattr(obj, "__dict__") else _MISSING
        self.restore.append((obj, name, prev))
        setattr(obj, name, value)

    def uninstall(self):
        for obj, name, prev in reversed(self.restore):
            try:
                if prev is _MISSING:
                    delattr(obj, name)
                else:
                    setattr(obj, name, prev)
            except _CONTAINED:
                pass
        self.restore.clear()
        if self.filter is not None:
            self.filter.flush_all()
            self.filter.stop()
        try:
            self.guard.record("session_end")
        except _CONTAINED:
            pass

    def _wrap_serialize(self, session):
        orig = session.serialize  # bound method (or an earlier wrapper)
        flt = self.filter
        self.orig_serialize = orig

        def serialize(msg, ident=None):
            __tracebackhide__ = True
            if isinstance(msg, dict):
                msg = flt.process(msg, ident)
            return orig(msg, ident)

        serialize.__wrapped__ = orig
        self._set(session, "serialize", serialize)

    def _show_blocked_briefly(self):
        """SecretBlocked is raised deep inside ipykernel's display code: show
        it as one line naming the rule, not a traceback through ipykernel,
        jupyter_client and leakguard (IPython's custom exception handler; one
        the user set already keeps handling its own exceptions)."""
        ip = self.ip
        prev_types = tuple(getattr(ip, "custom_exceptions", ()) or ())
        prev_handler = getattr(ip, "CustomTB", None)

        def handler(shell, etype, evalue, tb, tb_offset=None):
            if not issubclass(etype, SecretBlocked):
                return prev_handler(etype, evalue, tb, tb_offset=tb_offset)
            stb = _error_content(str(evalue))["traceback"]
            shell._showtraceback(etype, evalue, stb)
            return stb

        prev_instance = {k: ip.__dict__.get(k, _MISSING) for k in ("CustomTB", "custom_exceptions")}
        ip.set_custom_exc(prev_types + (SecretBlocked,), handler)
        for k, v in prev_instance.items():
            self.restore.append((ip, k, v))

    def _emit(self, msg_type, content, parent_header, ident):
        """Sends an already-filtered iopub message through the IOPub thread's
        queue, so it keeps its place before the message being filtered."""
        k = self.kernel
        msg = k.session.msg(msg_type, content, parent=parent_header or None)
        frames = self.orig_serialize(msg, ident)
        k.iopub_socket.send_multipart(frames)

    # ---------------------------------------------------------------- block
    def _on_block(self, pid, rules, how):
        if pid is None:
            return
        tid = self.running.get(pid)
        if tid is None:
            return  # the request is over: withholding is all that is left
        in_child = os.getpid() != self.kernel_pid
        if not in_child and threading.get_ident() == tid and threading.current_thread() is threading.main_thread():
            if how == "raise":
                # Produced by the cell's own code on this thread: stop it right here.
                raise SecretBlocked(_blocked_text(rules))
            if how == "none":
                return  # e.g. the cell's traceback being shown: it has stopped already
        if tid != threading.main_thread().ident:
            return  # a subshell thread: SIGINT only reaches the main thread
        if pid in self.interrupted:
            return
        self.interrupted[pid] = True
        while len(self.interrupted) > MAX_REMEMBERED:
            self.interrupted.popitem(last=False)
        _interrupt(self.kernel_pid)

    # -------------------------------------------------------------- execute
    def _wrap_do_execute(self, kernel):
        orig = kernel.do_execute
        ext = self

        @functools.wraps(orig)
        async def do_execute(code, silent, store_history=True, user_expressions=None, allow_stdin=False, **kwargs):
            pid = _current_parent_id(kernel)
            tid = threading.get_ident()
            if pid:
                ext.running[pid] = tid
            try:
                refusal = ext._before_execute(code, silent, store_history, pid, tid)
                if refusal is not None:
                    return refusal
                res = orig(code, silent, store_history, user_expressions, allow_stdin, **kwargs)
                if inspect.isawaitable(res):
                    res = await res
                return res
            finally:
                if pid:
                    ext.running.pop(pid, None)
                ext.current_input.pop(tid, None)
                if isinstance(code, str):
                    ext.filter.forget_input(code)

        self._set(kernel, "do_execute", do_execute)

    def _before_execute(self, code, silent, store_history, pid, tid):
        """Scans the cell (SCAN_INPUT); returns an error reply to refuse it."""
        try:
            if not isinstance(code, str) or len(code) < MIN_LEN or not self.guard.scan_input:
                return None
            verdict, out, findings = self.filter.check_input(code, pid)
            if verdict == "clean":
                self.current_input[tid] = (code, code)
                return None
            if verdict == "blocked":
                return self._refuse([f.rule for f in findings], silent, store_history)
            self.current_input[tid] = (code, _masked_input(code, verdict, out))
            return None
        except SecretBlocked:
            raise
        except _CONTAINED as e:
            self._record_error(e, "scanning cell input", pid)
            if self._block_mode():
                return self._refuse([], silent, store_history, reason="its code could not be checked")
            return None

    def _refuse(self, rules, silent, store_history, reason=None):
        shell = self.ip
        evalue = _blocked_text(rules, "input") if reason is None else f"leakguard did not run this cell: {reason}"
        content = _error_content(evalue)
        if not silent:
            try:
                shell._showtraceback(SecretBlocked, evalue, content["traceback"])
            except _CONTAINED:
                k = self.kernel
                k.session.send(k.iopub_socket, "error", content, k.get_parent(), ident=b"error")
        count = shell.execution_count
        if store_history and not silent:
            shell.execution_count += 1
        return dict(content, status="error", execution_count=count, user_expressions={}, payload=[])

    # -------------------------------------------------------------- history
    def _wrap_store_inputs(self, hm):
        orig = hm.store_inputs
        ext = self

        @functools.wraps(orig)
        def store_inputs(line_num, source, source_raw=None):
            try:
                source, source_raw = ext._scrub_history(source, source_raw)
            except _CONTAINED as e:
                ext._record_error(e, "scrubbing input history", None)
                if ext._block_mode():
                    source = source_raw = "# leakguard: input withheld (it could not be checked)"
            return orig(line_num, source, source_raw)

        self._set(hm, "store_inputs", store_inputs)

    def _scrub_history(self, source, source_raw):
        if not self.guard.scan_input:
            return source, source_raw
        raw = source if source_raw is None else source_raw
        if not isinstance(raw, str):
            return source, source_raw
        cur = self.current_input.get(threading.get_ident())
        if cur is not None and cur[0] == raw:
            masked = cur[1]
        else:
            # Not a cell of this kernel's do_execute (a magic re-running
            # input, IPython without a kernel): check it here.
            verdict, out, _ = self.guard.check(raw, input=True) if len(raw) >= MIN_LEN else ("clean", raw, [])
            masked = _masked_input(raw, verdict, out)
        if masked == raw:
            if isinstance(source, str) and source != raw and len(source) >= MIN_LEN:
                v, out, _ = self.guard.check(source, input=True)
                source = _masked_input(source, v, out)
            return source, source_raw
        if source == raw:
            new_source = masked
        else:
            try:
                new_source = self.ip.transform_cell(masked)
            except _CONTAINED:
                new_source = masked
        return new_source, masked

    # ---------------------------------------------------------------- misc
    def _block_mode(self):
        return _block_mode(self.guard)

    def _record_error(self, exc, what, pid):
        try:
            self.guard.record("internal_error", reason=f"{type(exc).__name__} while {what}", parent=pid or "")
        except _CONTAINED:
            pass


_MISSING = object()


def _masked_input(code, verdict, out):
    """The cell text to keep in history: masked in every mode. log_only hands
    the text back unchanged, so it is masked with the built-in rules."""
    if verdict in ("masked", "blocked"):
        return out
    if verdict == "logged":
        return redact(code)
    return code


def _current_parent_id(kernel):
    try:
        parent = kernel.get_parent()
    except _CONTAINED:
        return None
    if isinstance(parent, dict):
        header = parent.get("header")
        if isinstance(header, dict):
            return header.get("msg_id")
    return None


def _interrupt(kernel_pid):
    """SIGINT as the "interrupt kernel" button sends it: to the kernel's
    process group when the kernel leads it, else to the kernel."""
    try:
        if hasattr(os, "killpg") and os.getpgid(kernel_pid) == kernel_pid:
            os.killpg(kernel_pid, signal.SIGINT)
        else:
            os.kill(kernel_pid, signal.SIGINT)
    except OSError:
        try:
            os.kill(kernel_pid, signal.SIGINT)
        except OSError:
            pass


def _after_fork_in_child():
    ext = _active
    if ext is None or ext.filter is None:
        return
    if isinstance(ext.guard, _Loading):
        ext.guard.after_fork_in_child()
    ext.filter.after_fork_in_child()
    # A multiprocessing child ends with os._exit after running its
    # finalizers: release what is still held then. Process._bootstrap clears
    # the finalizers inherited or made before it, then runs the after-fork
    # callbacks: arm the finalizer from there (and now, for other forks).
    mp_util = sys.modules.get("multiprocessing.util")
    if mp_util is not None:
        flt = ext.filter

        def arm(_obj=None):
            mp_util.Finalize(None, flt.flush_all, exitpriority=-100)

        try:
            mp_util.register_after_fork(flt, arm)
            arm()
        except _CONTAINED:
            pass


_fork_hook_registered = False


def load(ip):
    """Installs the filter in this kernel (idempotent)."""
    global _active, _fork_hook_registered
    if _active is not None and _active.ip is ip:
        return
    ext = _Extension(ip)
    ext.install()
    _active = ext
    if not _fork_hook_registered and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _fork_hook_registered = True


def unload(ip):
    """Removes the filter (``%unload_ext leakguard``)."""
    global _active
    if _active is not None and _active.ip is ip:
        _active.uninstall()
        _active = None
