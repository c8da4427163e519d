//! A message's Python objects as the one walk of Jupyter content
//! (`leakguard_jupyter::content`) sees them, with no JSON in between.
//!
//! Copy on write: a string, list or dict that changes becomes a new
//! object, and so do the containers above it; everything else is the
//! object it was, so what a user handed to `display()` is never changed.
//! Strings are read where CPython keeps them; values under binary MIME
//! keys (base64 images) are not read at all.

use std::borrow::Cow;
use std::cell::Cell;

use leakguard_jupyter::content::Node;
use leakguard_jupyter::guarded::Runner;
use pyo3::exceptions::PyRecursionError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

use crate::utf8;

/// Texts at least this long (bytes) are checked without the GIL, so the
/// kernel's other threads run meanwhile; shorter ones take less time than
/// handing the GIL over and back.
const UNLOCK_AT: usize = 16 * 1024;

/// Deepest nesting walked, as Python's own recursion limit: deeper objects
/// (or one that holds itself) are an error, not a crashed kernel.
const MAX_DEPTH: usize = 1000;

/// Runs long checks without the GIL.
pub(crate) struct Unlocked<'py>(pub(crate) Python<'py>);

impl Runner for Unlocked<'_> {
    fn run<T: Send>(&mut self, text_len: usize, check: impl FnOnce() -> T + Send) -> T {
        if text_len >= UNLOCK_AT { self.0.allow_threads(check) } else { check() }
    }
}

/// One Python value in the walk: the object as it was, or its changed copy.
pub(crate) struct PyNode<'a, 'py> {
    pub(crate) obj: Bound<'py, PyAny>,
    /// Whether `obj` is a new object.
    changed: bool,
    depth: usize,
    /// The first error of the walk (raised when it is over).
    error: &'a Cell<Option<PyErr>>,
}

impl<'a, 'py> PyNode<'a, 'py> {
    pub(crate) fn new(obj: Bound<'py, PyAny>, error: &'a Cell<Option<PyErr>>) -> Self {
        PyNode { obj, changed: false, depth: 0, error }
    }

    fn child(&self, obj: Bound<'py, PyAny>) -> Self {
        PyNode { depth: self.depth + 1, ..PyNode::new(obj, self.error) }
    }

    /// Whether to go into this container: not after an error (the walk is
    /// over), nor past [`MAX_DEPTH`].
    fn enter(&self) -> bool {
        if self.failed() {
            return false;
        }
        if self.depth >= MAX_DEPTH {
            self.fail(PyRecursionError::new_err(format!(
                "leakguard cannot check this message: it is nested deeper than {MAX_DEPTH} levels or holds itself"
            )));
            return false;
        }
        true
    }

    fn failed(&self) -> bool {
        let e = self.error.take();
        let failed = e.is_some();
        self.error.set(e);
        failed
    }

    fn fail(&self, e: PyErr) {
        let first = self.error.take().unwrap_or(e);
        self.error.set(Some(first));
    }

    fn replace(&mut self, obj: Bound<'py, PyAny>) {
        self.obj = obj;
        self.changed = true;
    }
}

/// A str's text: lone surrogates (which UTF-8 cannot hold) become U+FFFD.
fn text_of<'a>(s: &'a Bound<'_, PyString>) -> Cow<'a, str> {
    utf8(s).unwrap_or_else(|_| s.to_string_lossy())
}

impl Node for PyNode<'_, '_> {
    fn text(&self) -> Option<Cow<'_, str>> {
        self.obj.downcast::<PyString>().ok().map(text_of)
    }

    fn set_text(&mut self, text: String) {
        let s = PyString::new(self.obj.py(), &text).into_any();
        self.replace(s);
    }

    fn items(&mut self, f: &mut dyn FnMut(&mut Self)) {
        // A list is walked as a snapshot: long checks let go of the GIL,
        // and another thread may change the user's list meanwhile.
        let items = if let Ok(l) = self.obj.downcast::<PyList>() {
            l.to_tuple()
        } else if let Ok(t) = self.obj.downcast::<PyTuple>() {
            t.clone()
        } else {
            return;
        };
        if items.is_empty() || !self.enter() {
            return;
        }
        let mut new: Option<Vec<Bound<'_, PyAny>>> = None;
        for (i, x) in items.iter().enumerate() {
            let mut child = self.child(x);
            f(&mut child);
            if self.failed() {
                return;
            }
            if child.changed {
                new.get_or_insert_with(|| items.iter().collect())[i] = child.obj;
            }
        }
        if let Some(new) = new {
            match PyList::new(self.obj.py(), new) {
                Ok(l) => self.replace(l.into_any()),
                Err(e) => self.fail(e),
            }
        }
    }

    fn entries(&mut self, f: &mut dyn FnMut(&str, &mut Self) -> Option<String>) {
        let Ok(d) = self.obj.downcast::<PyDict>() else { return };
        if d.is_empty() || !self.enter() {
            return;
        }
        // A private copy, for the same reason as a list's snapshot; it
        // becomes the new dict when only values change.
        let copy = match d.copy() {
            Ok(c) => c,
            Err(e) => return self.fail(e),
        };
        // (index, key, new key, new value) of each entry that changed.
        let mut changes = Vec::new();
        for (i, (k, x)) in copy.iter().enumerate() {
            let mut child = self.child(x);
            let new_key = {
                let key = k.downcast::<PyString>().ok().map(text_of);
                f(key.as_deref().unwrap_or(""), &mut child)
            };
            if self.failed() {
                return;
            }
            if child.changed || new_key.is_some() {
                changes.push((i, k, new_key, child.changed.then_some(child.obj)));
            }
        }
        if changes.is_empty() {
            return;
        }
        let py = self.obj.py();
        let out = if changes.iter().all(|c| c.2.is_none()) {
            for (_, k, _, x) in changes {
                if let Some(x) = x
                    && let Err(e) = copy.set_item(k, x)
                {
                    return self.fail(e);
                }
            }
            copy
        } else {
            // A key changed: rebuilt, to keep the order of the keys.
            let out = PyDict::new(py);
            let mut changes = changes.into_iter().peekable();
            for (i, (k, x)) in copy.iter().enumerate() {
                let (k, x) = match changes.next_if(|c| c.0 == i) {
                    Some((_, k, nk, nx)) => (nk.map_or(k, |nk| PyString::new(py, &nk).into_any()), nx.unwrap_or(x)),
                    None => (k, x),
                };
                if let Err(e) = out.set_item(k, x) {
                    return self.fail(e);
                }
            }
            out
        };
        self.replace(out.into_any());
    }
}
