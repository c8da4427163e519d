//! `leakguard._native`: the engine and policy layer for Python.
//!
//! The IPython extension and the Jupyter server hooks (in the `leakguard`
//! Python package next to this crate) call into this module. Scans of text
//! run without the GIL (`check_message`: of long texts), and every object
//! is safe to use from the kernel's IOPub, main and subshell threads at once.

mod tree;

use std::borrow::Cow;
use std::cell::Cell;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use leakguard_engine::{Engine, Hold, Style};
use leakguard_jupyter::content::{self, MessageKind};
use leakguard_policy::audit::{Auditor, Channel, Event, EventKind, Key, Origin};
use leakguard_policy::{Context, Found, Guard as PolicyGuard, GuardedStream, LoadOptions, Reloader, Verdict};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use crate::tree::{PyNode, Unlocked};

/// The built-in rules, compiled once per process for `redact` and `scan`.
fn builtin() -> &'static Arc<Engine> {
    static ENGINE: OnceLock<Arc<Engine>> = OnceLock::new();
    ENGINE.get_or_init(|| Arc::new(Engine::builtin()))
}

fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Clean => "clean",
        Verdict::Logged => "logged",
        Verdict::Masked => "masked",
        Verdict::Blocked => "blocked",
    }
}

/// A secret found in text. Offsets are in characters of the Python string.
#[pyclass(frozen, get_all, module = "leakguard._native")]
#[derive(Clone)]
struct Finding {
    rule: String,
    category: String,
    severity: String,
    mode: String,
    fingerprint: String,
    start: Option<usize>,
    end: Option<usize>,
}

#[pymethods]
impl Finding {
    fn __repr__(&self) -> String {
        format!(
            "Finding(rule={:?}, category={:?}, severity={:?}, mode={:?})",
            self.rule, self.category, self.severity, self.mode
        )
    }
}

impl From<&Found> for Finding {
    fn from(f: &Found) -> Finding {
        Finding {
            rule: f.rule.clone(),
            category: f.category.clone(),
            severity: f.severity.to_string(),
            mode: f.mode.to_string(),
            fingerprint: f.fingerprint.clone(),
            start: None,
            end: None,
        }
    }
}

/// The UTF-8 text of a Python string, without a copy where CPython keeps
/// one (always for ASCII strings): outputs can be hundreds of megabytes.
/// `PyUnicode_AsUTF8AndSize` is in every CPython 3 but only in the limited
/// API from 3.10; a POSIX extension module resolves it from the
/// interpreter, so the abi3 (3.9) wheel can use it too.
#[cfg(unix)]
pub(crate) fn utf8<'a>(s: &'a Bound<'_, PyString>) -> PyResult<Cow<'a, str>> {
    unsafe extern "C" {
        fn PyUnicode_AsUTF8AndSize(o: *mut pyo3::ffi::PyObject, size: *mut pyo3::ffi::Py_ssize_t) -> *const u8;
    }
    let mut size: pyo3::ffi::Py_ssize_t = 0;
    // SAFETY: `s` is a live str; the buffer CPython returns lives as long as
    // the object, which `'a` borrows.
    let data = unsafe { PyUnicode_AsUTF8AndSize(s.as_ptr(), &mut size) };
    if data.is_null() {
        return Err(PyErr::fetch(s.py()));
    }
    // SAFETY: CPython hands back `size` bytes of valid UTF-8.
    let bytes = unsafe { std::slice::from_raw_parts(data, size as usize) };
    Ok(Cow::Borrowed(unsafe { std::str::from_utf8_unchecked(bytes) }))
}

#[cfg(not(unix))]
pub(crate) fn utf8<'a>(s: &'a Bound<'_, PyString>) -> PyResult<Cow<'a, str>> {
    s.to_cow()
}

/// Character offset of byte offset `b` in `s`.
fn char_offset(s: &str, b: usize) -> usize {
    s.get(..b).map_or_else(|| s.len(), |p| p.chars().count())
}

/// Masks secrets in `text` with the built-in rules (no settings, no audit).
#[pyfunction]
fn redact(py: Python<'_>, text: &str) -> String {
    let engine = builtin();
    py.allow_threads(|| String::from_utf8_lossy(&engine.redact(text.as_bytes(), &Style::default()).output).into_owned())
}

/// Finds secrets in `text` with the built-in rules (no settings, no audit).
#[pyfunction]
fn scan(py: Python<'_>, text: &str) -> Vec<Finding> {
    let engine = builtin();
    let found = py.allow_threads(|| engine.find(text.as_bytes()));
    let key = Key::ephemeral();
    found
        .iter()
        .map(|f| {
            let r = engine.rule(f.rule);
            Finding {
                rule: r.id.clone(),
                category: r.category.clone(),
                severity: r.severity.to_string(),
                mode: r.mode.map_or("default".into(), |m| m.to_string()),
                fingerprint: key.fingerprint(&r.id, f.secret(text.as_bytes())),
                start: Some(char_offset(text, f.start)),
                end: Some(char_offset(text, f.end)),
            }
        })
        .collect()
}

/// How a kernel message type is treated: "skip" (no user data), "stream",
/// "comm" (widget state), "execute_input", "output" (withheld in block
/// mode) or "reply" (masked, never withheld).
#[pyfunction]
fn message_kind(msg_type: &str) -> &'static str {
    match content::message_kind(msg_type) {
        MessageKind::Skip => "skip",
        MessageKind::Stream => "stream",
        MessageKind::Comm => "comm",
        MessageKind::ExecuteInput => "execute_input",
        MessageKind::Output => "output",
        MessageKind::Reply => "reply",
    }
}

/// Whether a mimebundle key names a binary type (base64 images, PDF...)
/// whose value the walk leaves alone.
#[pyfunction]
fn is_binary_mime(key: &str) -> bool {
    content::is_binary_key(key)
}

fn channel(name: &str) -> PyResult<Channel> {
    match name {
        "jupyter" => Ok(Channel::Jupyter),
        "ssh" => Ok(Channel::Ssh),
        "cli" => Ok(Channel::Cli),
        other => Err(PyValueError::new_err(format!("unknown channel {other:?}; expected jupyter, ssh or cli"))),
    }
}

/// Settings, rules (reloaded in the background) and audit for one channel.
#[pyclass(frozen, module = "leakguard._native")]
struct Guard {
    inner: PolicyGuard,
}

impl Guard {
    /// The guard whose audit events name `parent` (the Jupyter request).
    fn for_parent(&self, parent: Option<String>) -> Cow<'_, PolicyGuard> {
        match parent {
            Some(p) => Cow::Owned(self.inner.for_parent(Some(p))),
            None => Cow::Borrowed(&self.inner),
        }
    }
}

#[pymethods]
impl Guard {
    /// Loads settings as the CLI does (defaults < config file < environment).
    /// Compiling the rules takes tens of milliseconds, without the GIL.
    #[new]
    #[pyo3(signature = (channel="jupyter", notebook=None, session=None, user=None, config=None, enforced=false))]
    fn new(
        py: Python<'_>,
        channel: &str,
        notebook: Option<String>,
        session: Option<String>,
        user: Option<String>,
        config: Option<PathBuf>,
        enforced: bool,
    ) -> PyResult<Guard> {
        let ch = self::channel(channel)?;
        let opts = LoadOptions { config_file: config, ..LoadOptions::default() };
        let (reloader, auditor) = py.allow_threads(|| {
            let reloader = Reloader::load(opts).map_err(|e| PyValueError::new_err(e.to_string()))?;
            let auditor =
                Auditor::new(&reloader.current().settings).map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
            Ok::<_, PyErr>((reloader, Arc::new(auditor)))
        })?;
        let mut origin = Origin::new(ch);
        origin.user = user.or_else(|| std::env::var("USER").ok());
        origin.session = session;
        origin.notebook = notebook.clone();
        origin.enforced = enforced;
        let path = notebook.map(PathBuf::from);
        let inner = PolicyGuard::new(reloader, auditor, Context { origin, path });
        inner.watch_reloads();
        Ok(Guard { inner })
    }

    /// Checks a whole text: returns (verdict, text to show, findings).
    /// `verdict` is "clean", "logged", "masked" or "blocked"; audit events
    /// name `parent` (the Jupyter request the text belongs to).
    /// The text to show is `text` itself (the same object) when unchanged.
    #[pyo3(signature = (text, input=false, parent=None))]
    fn check<'py>(
        &self,
        text: &Bound<'py, PyString>,
        input: bool,
        parent: Option<String>,
    ) -> PyResult<(&'static str, Bound<'py, PyAny>, Vec<Finding>)> {
        let py = text.py();
        let guard = self.for_parent(parent);
        let guard = &*guard;
        let s = utf8(text)?;
        let s: &str = &s;
        let (verdict, changed, found) = py.allow_threads(|| {
            let o = guard.check(s.as_bytes(), input);
            let changed = match o.output {
                Cow::Borrowed(_) => None,
                Cow::Owned(v) => Some(v),
            };
            (verdict_name(o.verdict), changed, o.found.iter().map(Finding::from).collect())
        });
        let output = match changed {
            None => text.clone().into_any(),
            Some(out) => PyString::new(py, &String::from_utf8_lossy(&out)).into_any(),
        };
        Ok((verdict, output, found))
    }

    /// Checks a kernel message's content and metadata (Python objects, as
    /// `Session.serialize` gets them) with the walk the kernel proxy uses:
    /// returns (verdict, content, metadata, rule ids). Content and metadata
    /// are the objects given when nothing changed, else new ones: objects
    /// are copied on write, never changed. `stream` text is not walked (it
    /// needs a carry: use `stream()`); with `content` None only the
    /// metadata is. Audit events name `parent`.
    #[pyo3(signature = (msg_type, content, metadata=None, parent=None))]
    #[allow(clippy::type_complexity)]
    fn check_message<'py>(
        &self,
        msg_type: &str,
        content: Bound<'py, PyAny>,
        metadata: Option<Bound<'py, PyAny>>,
        parent: Option<String>,
    ) -> PyResult<(&'static str, Bound<'py, PyAny>, Bound<'py, PyAny>, Vec<String>)> {
        let py = content.py();
        let guard = self.for_parent(parent);
        let error = Cell::new(None);
        let mut c = PyNode::new(content, &error);
        let mut m = PyNode::new(metadata.unwrap_or_else(|| py.None().into_bound(py)), &error);
        let checked = leakguard_jupyter::guarded::message_with(&guard, msg_type, &mut c, &mut m, Unlocked(py));
        if let Some(e) = error.take() {
            return Err(e);
        }
        Ok((verdict_name(checked.verdict), c.obj, m.obj, checked.rules))
    }

    /// Checks a notebook (nbformat 4 JSON text) as the CLI scanner walks it:
    /// returns (verdict, new notebook JSON or None when unchanged, rule ids).
    /// Cell sources count as user input.
    fn check_notebook(&self, py: Python<'_>, notebook: &str) -> PyResult<(&'static str, Option<String>, Vec<String>)> {
        let guard = &self.inner;
        py.allow_threads(|| {
            let mut nb: serde_json::Value = serde_json::from_str(notebook)
                .map_err(|e| PyValueError::new_err(format!("the notebook is not JSON: {e}")))?;
            let checked = leakguard_jupyter::guarded::notebook(guard, &mut nb)
                .map_err(|e| PyValueError::new_err(e.to_string()))?;
            let out = checked.changed.then(|| nb.to_string());
            Ok((verdict_name(checked.verdict), out, checked.rules))
        })
    }

    /// A stream for text that arrives in pieces (stream outputs, terminals);
    /// its audit events name `parent`.
    #[pyo3(signature = (input=false, line=true, parent=None))]
    fn stream(&self, input: bool, line: bool, parent: Option<String>) -> Stream {
        let hold = if line { Hold::Line } else { Hold::Token };
        let stream = self.inner.for_parent(parent).stream(hold, input);
        Stream { inner: Mutex::new(StreamState { stream, out: Vec::new() }) }
    }

    /// Whether the notebook path is under an allowlisted path (a hint, not an authorisation).
    fn allowlisted(&self) -> bool {
        self.inner.allowlisted()
    }

    /// The effective mode: "mask", "block" or "log_only".
    #[getter]
    fn mode(&self) -> String {
        self.inner.snapshot().settings.redact_mode.value.to_string()
    }

    #[getter]
    fn scan_input(&self) -> bool {
        self.inner.snapshot().settings.scan_input.value
    }

    #[getter]
    fn mask_widget_state(&self) -> bool {
        self.inner.snapshot().settings.mask_widget_state.value
    }

    /// Every setting as a dict of key -> (value, source).
    fn settings<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        let snap = self.inner.snapshot();
        for (k, v, source) in snap.settings.entries() {
            d.set_item(k, (v, source.to_string()))?;
        }
        Ok(d)
    }

    /// Records an audit event (`session_start`, `blocked`, `internal_error`...)
    /// with optional fields: rule, action, parent, reason, notebook.
    #[pyo3(signature = (event, **fields))]
    fn record(&self, event: &str, fields: Option<&Bound<'_, PyDict>>) -> PyResult<()> {
        let kind = match event {
            "secret_detected" => EventKind::SecretDetected,
            "input_secret_detected" => EventKind::InputSecretDetected,
            "blocked" => EventKind::Blocked,
            "session_start" => EventKind::SessionStart,
            "session_end" => EventKind::SessionEnd,
            "internal_error" => EventKind::InternalError,
            other => return Err(PyValueError::new_err(format!("unknown audit event {other:?}"))),
        };
        let mut e = Event::new(kind, &self.inner.context.origin);
        if let Some(f) = fields {
            for (k, v) in f.iter() {
                let key: String = k.extract()?;
                let value: String = v.str()?.to_string();
                match key.as_str() {
                    "rule" => e.rule = Some(value),
                    "action" => e.action = Some(value),
                    "parent" => e.parent = Some(value),
                    "reason" => e.reason = Some(value),
                    "notebook" => e.notebook = Some(value),
                    other => return Err(PyValueError::new_err(format!("unknown audit field {other:?}"))),
                }
            }
        }
        self.inner.auditor().record(&e);
        Ok(())
    }
}

/// Redacts a stream that arrives in pieces; the output for any split
/// equals the redaction of the whole.
#[pyclass(frozen, module = "leakguard._native")]
struct Stream {
    inner: Mutex<StreamState>,
}

struct StreamState {
    stream: GuardedStream,
    /// Output of `push`, kept between calls: a fresh buffer per megabyte
    /// printed costs page faults that add up to a measurable share of a
    /// big print.
    out: Vec<u8>,
}

/// Output buffers above this are given back after use.
const KEEP_OUT: usize = 4 << 20;

impl Stream {
    fn run(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut GuardedStream, &mut Vec<u8>) -> Verdict + Send,
    ) -> PyResult<(&'static str, String)> {
        py.allow_threads(|| {
            let mut s = self.inner.lock().map_err(|_| PyRuntimeError::new_err("stream lock poisoned"))?;
            let mut out = Vec::new();
            let v = f(&mut s.stream, &mut out);
            Ok((verdict_name(v), String::from_utf8_lossy(&out).into_owned()))
        })
    }
}

#[pymethods]
impl Stream {
    /// Adds text; returns (verdict, text that may be shown now). That text
    /// is `text` itself (the same object) when all of it goes out unchanged.
    fn push<'py>(&self, text: &Bound<'py, PyString>) -> PyResult<(&'static str, Bound<'py, PyAny>)> {
        let py = text.py();
        let s = utf8(text)?;
        let bytes = s.as_bytes();
        let (verdict, changed) = py.allow_threads(|| {
            let mut s = self.inner.lock().map_err(|_| PyRuntimeError::new_err("stream lock poisoned"))?;
            let StreamState { stream, out } = &mut *s;
            let held_before = stream.held();
            out.clear();
            let v = stream.push(bytes, out);
            // Nothing was held before or after, nothing masked: the output is the input.
            let same = v == Verdict::Clean && held_before == 0 && stream.held() == 0 && out.len() == bytes.len();
            // Changed text (rare) takes the buffer along: one copy, into the str.
            let changed = (!same).then(|| std::mem::take(out));
            if out.capacity() > KEEP_OUT {
                *out = Vec::new();
            }
            Ok::<_, PyErr>((v, changed))
        })?;
        let shown = match changed {
            None => text.clone().into_any(),
            Some(o) => PyString::new(py, &String::from_utf8_lossy(&o)).into_any(),
        };
        Ok((verdict_name(verdict), shown))
    }

    /// Releases everything held (end of output).
    fn flush(&self, py: Python<'_>) -> PyResult<(&'static str, String)> {
        self.run(py, |s, out| s.flush(out))
    }

    /// Releases after an idle timeout; a long armed key prefix is masked.
    fn flush_idle(&self, py: Python<'_>) -> PyResult<(&'static str, String)> {
        self.run(py, |s, out| s.flush_idle(out))
    }

    /// Bytes held back.
    #[getter]
    fn held(&self) -> usize {
        self.inner.lock().map(|s| s.stream.held()).unwrap_or(0)
    }
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(redact, m)?)?;
    m.add_function(wrap_pyfunction!(scan, m)?)?;
    m.add_function(wrap_pyfunction!(message_kind, m)?)?;
    m.add_function(wrap_pyfunction!(is_binary_mime, m)?)?;
    // Shortest text worth a scan: no rule matches less.
    m.add("MIN_LEN", content::MIN_LEN)?;
    // What a Rust panic becomes in Python: a BaseException, which
    // `except Exception` lets through, so the extension names it.
    m.add("PanicException", m.py().get_type::<pyo3::panic::PanicException>())?;
    m.add_class::<Finding>()?;
    m.add_class::<Guard>()?;
    m.add_class::<Stream>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
