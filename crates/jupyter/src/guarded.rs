//! The walk of [`content`](crate::content) driven by a policy [`Guard`]:
//! what the kernel proxy does to each message, and the server's save hook
//! (through the Python package) to each notebook.

use std::borrow::Cow;

use leakguard_policy::{Guard, Verdict};
use serde_json::Value;

use crate::content::{self, Role, Visitor};
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

struct Checker<'a> {
    guard: &'a Guard,
    /// Whether text of [`Role::Input`] is recorded as user input.
    input: bool,
    out: Checked,
}

impl Visitor for Checker<'_> {
    fn text(&mut self, text: &mut String, role: Role) {
        let o = self.guard.check(text.as_bytes(), role == Role::Input && self.input);
        self.out.verdict = self.out.verdict.max(o.verdict);
        for f in &o.found {
            if !self.out.rules.contains(&f.rule) {
                self.out.rules.push(f.rule.clone());
            }
        }
        if let Cow::Owned(v) = o.output {
            // Masks replace whole characters: valid UTF-8 stays valid.
            *text = String::from_utf8(v).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
            self.out.changed = true;
        }
    }
}

fn checker(guard: &Guard, input: bool) -> Checker<'_> {
    Checker { guard, input, out: Checked { verdict: Verdict::Clean, rules: Vec::new(), changed: false } }
}

/// Checks a kernel message's content and metadata in place (not `stream`
/// text, which needs a carry buffer). Cell code counts as user input when
/// `SCAN_INPUT` is on, history always, as in the IPython extension.
pub fn message(guard: &Guard, msg_type: &str, content: &mut Value, metadata: &mut Value) -> Checked {
    let settings = &guard.snapshot().settings;
    let input = msg_type == "history_reply" || settings.scan_input.value;
    let mut c = checker(guard, input);
    content::walk_message(msg_type, content, metadata, settings.mask_widget_state.value, &mut c);
    c.out
}

/// Checks every text of a notebook in place; cell sources count as input.
pub fn notebook(guard: &Guard, nb: &mut Value) -> Result<Checked, NotebookError> {
    let mut c = checker(guard, true);
    notebook::for_each_text(nb, &mut |_, _, text, role| c.text(text, role))?;
    Ok(c.out)
}
