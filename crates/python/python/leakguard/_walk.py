"""Walking Jupyter message contents and notebook outputs.

Shared by the kernel extension (:mod:`leakguard.ipython`) and the server's
save hook (:mod:`leakguard.server`). Text values go through a ``check``
function (``Guard.check``); nothing here matches secrets itself.

Rules (research/jupyter.md section 2):

- text MIME types (``text/*``, ``image/svg+xml``, ``application/javascript``)
  are scanned as strings;
- JSON MIME types (``application/json``, ``*+json``) and metadata are walked
  as values; serialized JSON is never scanned as text, so a mask can never
  cut an escape;
- binary MIME types (images, PDF, audio, video, ...) and ``bytes`` are never
  touched: changing a base64 string corrupts the file.

Walking is copy-on-write: a container is rebuilt only when something inside
it changed, so the objects a user handed to ``display()`` are never mutated.
"""

_ORDER = {"clean": 0, "logged": 1, "masked": 2, "blocked": 3}

# Shortest text worth a scan: no rule matches a secret shorter than this.
MIN_LEN = 6

_TEXT_LIKE = frozenset(
    {
        "image/svg+xml",
        "application/javascript",
        "application/x-javascript",
        "application/xml",
        "application/xhtml+xml",
        "application/x-latex",
        "application/x-tex",
    }
)
_BINARY_PREFIXES = ("image/", "audio/", "video/", "font/", "model/")
_BINARY = frozenset(
    {
        "application/pdf",
        "application/octet-stream",
        "application/zip",
        "application/gzip",
        "application/x-tar",
        "application/vnd.ms-excel",
        "application/wasm",
        "application/x-hdf5",
        "application/x-npy",
    }
)


def is_binary_mime(key):
    """Whether a mimebundle key names a binary (base64) type."""
    k = key.lower()
    if k in _TEXT_LIKE or k.endswith("+json") or k.endswith("+xml"):
        return False
    return k.startswith(_BINARY_PREFIXES) or k in _BINARY


# Keys of the Jupyter protocol and nbformat: their names carry no user data
# (their values are still walked).
_PROTOCOL_KEYS = frozenset(
    """
    text/plain text/html text/markdown text/latex application/json application/javascript image/svg+xml
    execution_count execution_state user_expressions traceback transient display_id metadata content
    cursor_start cursor_end cursor_pos matches status payload source data name text ename evalue
    output_type outputs detail_level found restart history session_id variables variablesReference
    command success request_seq message arguments evaluateName presentationHint namedVariables
    indexedVariables replace isolated
    """.split()
)


def _looks_mime(key):
    return "/" in key and " " not in key and len(key) < 128


class Result:
    """What a walk found: the worst verdict and the rules involved."""

    __slots__ = ("verdict", "rules")

    def __init__(self):
        self.verdict = "clean"
        self.rules = []

    def add(self, verdict, findings):
        if _ORDER.get(verdict, 0) > _ORDER[self.verdict]:
            self.verdict = verdict
        for f in findings or ():
            if f.rule not in self.rules:
                self.rules.append(f.rule)

    @property
    def changed_or_found(self):
        return self.verdict != "clean"


class Walker:
    """Applies ``check(text, input) -> (verdict, output, findings)`` to every
    string of a JSON-like value, skipping binary MIME types."""

    __slots__ = ("check",)

    def __init__(self, check):
        self.check = check

    def text(self, s, res, input=False):
        if len(s) < MIN_LEN:
            return s
        verdict, out, findings = self.check(s, input)
        if verdict == "clean":
            return s
        res.add(verdict, findings)
        # log_only hands the text back unchanged: keep the original object.
        return s if verdict == "logged" else out

    def lines(self, value, res, input=False):
        """A notebook multiline string: a str, or a list of lines."""
        if isinstance(value, str):
            return self.text(value, res, input)
        if isinstance(value, list) and all(isinstance(x, str) for x in value):
            joined = "".join(value)
            out = self.text(joined, res, input)
            if out is joined:
                return value
            return out.splitlines(keepends=True)
        return self.value(value, res, input)

    def value(self, v, res, input=False):
        if isinstance(v, str):
            return self.text(v, res, input)
        if isinstance(v, dict):
            new = None
            for k, x in v.items():
                if isinstance(k, str) and _looks_mime(k) and is_binary_mime(k):
                    continue
                y = self.value(x, res, input)
                nk = self.text(k, res, input) if isinstance(k, str) and k not in _PROTOCOL_KEYS else k
                if y is not x or nk is not k:
                    if new is None:
                        new = dict(v)
                    if nk is not k:
                        new.pop(k, None)
                    new[nk] = y
            return v if new is None else new
        if isinstance(v, (list, tuple)):
            new = None
            for i, x in enumerate(v):
                y = self.value(x, res, input)
                if y is not x:
                    if new is None:
                        new = list(v)
                    new[i] = y
            return v if new is None else new
        # numbers, None, bools, bytes (buffers): nothing to scan.
        return v

    def bundle(self, data, res, multiline=False):
        """A mimebundle: text types as strings, JSON types as values,
        binary types untouched."""
        if not isinstance(data, dict):
            return self.value(data, res)
        new = None
        for k, x in data.items():
            if isinstance(k, str) and is_binary_mime(k):
                continue
            y = self.lines(x, res) if multiline else self.value(x, res)
            if y is not x:
                if new is None:
                    new = dict(data)
                new[k] = y
        return data if new is None else new
