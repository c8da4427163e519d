//! The walk of [`content`](crate::content) driven by a policy [`Guard`]:
//! what the kernel proxy does to each message, and the server's save hook
//! (through the Python package) to each notebook.

use std::borrow::Cow;

use leakguard_policy::{Guard, Verdict};
use serde_json::Value;

use crate::content::{self, Node, Role, Visitor};
use crate::notebook::{self, NotebookError};

/// What a walk found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    /// The worst verdict of any string.
    pub verdict: Verdict,
    /// Rule ids of what was found, first seen first.
    pub rules: Vec<String>,
    /// Whether any string was changed (masked).
    pub changed: bool,
}

/// Runs each check of a walk. The Python package lets go of the GIL
/// around the long ones; everything else runs them as they come.
pub trait Runner {
    fn run<T: Send>(&mut self, text_len: usize, check: impl FnOnce() -> T + Send) -> T;
}

/// Runs checks where the walk is.
pub struct Inline;

impl Runner for Inline {
    fn run<T: Send>(&mut self, _: usize, check: impl FnOnce() -> T + Send) -> T {
        check()
    }
}

struct Checker<'a, R> {
    guard: &'a Guard,
    /// Whether text of [`Role::Input`] is recorded as user input.
    input: bool,
    runner: R,
    out: Checked,
}

impl<R: Runner> Visitor for Checker<'_, R> {
    fn text(&mut self, text: &str, role: Role) -> Option<String> {
        let (guard, input) = (self.guard, role == Role::Input && self.input);
        let o = self.runner.run(text.len(), || guard.check(text.as_bytes(), input));
        self.out.verdict = self.out.verdict.max(o.verdict);
        for f in &o.found {
            if !self.out.rules.contains(&f.rule) {
                self.out.rules.push(f.rule.clone());
            }
        }
        let Cow::Owned(v) = o.output else { return None };
        self.out.changed = true;
        // Masks replace whole characters: valid UTF-8 stays valid.
        Some(String::from_utf8(v).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }
}

fn checker<R: Runner>(guard: &Guard, input: bool, runner: R) -> Checker<'_, R> {
    Checker { guard, input, runner, out: Checked { verdict: Verdict::Clean, rules: Vec::new(), changed: false } }
}

/// Checks a kernel message's content and metadata in place (not `stream`
/// text, which needs a carry buffer). Cell code counts as user input when
/// `SCAN_INPUT` is on, history always.
pub fn message(guard: &Guard, msg_type: &str, content: &mut Value, metadata: &mut Value) -> Checked {
    message_with(guard, msg_type, content, metadata, Inline)
}

/// [`message`] over any [`Node`], its checks run by `runner`.
pub fn message_with<N: Node>(
    guard: &Guard,
    msg_type: &str,
    content: &mut N,
    metadata: &mut N,
    runner: impl Runner,
) -> Checked {
    let settings = &guard.snapshot().settings;
    let input = msg_type == "history_reply" || settings.scan_input.value;
    let mut c = checker(guard, input, runner);
    content::walk_message(msg_type, content, metadata, settings.mask_widget_state.value, &mut c);
    c.out
}

/// Checks every text of a notebook in place; cell sources count as input.
pub fn notebook(guard: &Guard, nb: &mut Value) -> Result<Checked, NotebookError> {
    let mut c = checker(guard, true, Inline);
    notebook::for_each_text(nb, &mut |_, _, text, role| c.text(text, role))?;
    Ok(c.out)
}
