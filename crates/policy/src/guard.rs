//! What a channel talks to: text in, decision and text out, audit done.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;

use leakguard_engine::{Engine, Finding, Hold, MaskFilter, Mode, Severity, StreamFinding, StreamRedactor, Style, Tail};

use crate::audit::{Auditor, Event, EventKind, Origin};
use crate::reload::{Reloader, Snapshot};

/// What happened to a piece of text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    /// Nothing found.
    Clean,
    /// Found, recorded, left as it was (log-only mode).
    Logged,
    /// Found and masked.
    Masked,
    /// Found a secret whose mode is block: the channel must withhold the
    /// output and stop (interrupt the cell, end the session, exit).
    Blocked,
}

/// One finding as channels and reports see it (never the secret itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub rule: String,
    pub category: String,
    pub severity: Severity,
    pub mode: Mode,
    /// Keyed fingerprint of the secret.
    pub fingerprint: String,
}

/// The outcome of checking one whole piece of text.
#[derive(Debug)]
pub struct Outcome<'a> {
    pub verdict: Verdict,
    /// The text to show: masked, or unchanged when clean or log-only. When
    /// blocked, this is the masked text for channels that must show
    /// something; most show nothing.
    pub output: Cow<'a, [u8]>,
    pub found: Vec<Found>,
    /// Whether only the head and tail were scanned (the text exceeded `sample_threshold`).
    pub sampled: bool,
}

/// Where text comes from: fills audit events and decides allowlisting.
#[derive(Clone, Debug)]
pub struct Context {
    pub origin: Origin,
    /// Notebook path, file, or working directory; under an allowlisted path
    /// nothing is filtered. A hint from the channel, not an authorisation.
    pub path: Option<PathBuf>,
}

/// A channel's handle on policy, rules and audit. Cheap to clone.
#[derive(Clone)]
pub struct Guard {
    reloader: Arc<Reloader>,
    auditor: Arc<Auditor>,
    pub context: Context,
}

fn mode_of(engine: &Engine, rule: usize, default: Mode) -> Mode {
    engine.rule(rule).mode.unwrap_or(default)
}

impl Guard {
    pub fn new(reloader: Arc<Reloader>, auditor: Arc<Auditor>, context: Context) -> Guard {
        Guard { reloader, auditor, context }
    }

    /// This guard for the text of one request: its events name `parent`.
    pub fn for_parent(&self, parent: Option<String>) -> Guard {
        let mut g = self.clone();
        g.context.origin.parent = parent;
        g
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.reloader.current()
    }

    pub fn auditor(&self) -> &Arc<Auditor> {
        &self.auditor
    }

    /// Reloads rules and settings in the background, on the interval and
    /// when their files change, until the process ends.
    pub fn watch_reloads(&self) {
        self.reloader.watch(self.auditor.clone(), self.context.origin.clone());
    }

    /// Whether the context's path is allowlisted (then nothing is filtered).
    pub fn allowlisted(&self) -> bool {
        let snap = self.snapshot();
        self.context.path.as_deref().is_some_and(|p| snap.settings.is_allowlisted(p))
    }

    /// Records an event with this guard's origin.
    pub fn record(&self, kind: EventKind, fill: impl FnOnce(&mut Event)) {
        let mut e = Event::new(kind, &self.context.origin);
        fill(&mut e);
        self.auditor.record(&e);
    }

    /// Checks one whole output (`input` false) or user input (`input` true):
    /// masks what the modes say, records one event per finding.
    pub fn check<'a>(&self, text: &'a [u8], input: bool) -> Outcome<'a> {
        self.inspect(text, input, |_, _| {})
    }

    /// [`check`](Self::check), also handing `masked` the rule id and bytes
    /// of each secret that is masked (not log-only).
    fn inspect<'a>(&self, text: &'a [u8], input: bool, mut masked: impl FnMut(&str, &[u8])) -> Outcome<'a> {
        let clean =
            |sampled| Outcome { verdict: Verdict::Clean, output: Cow::Borrowed(text), found: Vec::new(), sampled };
        if self.allowlisted() {
            return clean(false);
        }
        let snap = self.snapshot();
        let s = &snap.settings;
        let engine = &snap.engine;
        let threshold = s.sample_threshold.value as usize;
        let window = (s.sample_window.value as usize).max(1).min(threshold / 2);
        let sampled = text.len() > threshold;
        let mut findings: Vec<Finding> = if sampled {
            // The head and the tail, each scanned on its own.
            let tail_at = floor_char(text, text.len() - window);
            let head = &text[..ceil_char(text, window)];
            let mut f = engine.find(head);
            f.extend(engine.find(&text[tail_at..]).into_iter().map(|mut x| {
                x.start += tail_at;
                x.end += tail_at;
                x.match_start += tail_at;
                x.match_end += tail_at;
                x
            }));
            f
        } else {
            engine.find(text)
        };
        if !sampled {
            let cut = crate::cuts::across_cuts(engine, text, &findings);
            findings.extend(cut);
        }
        if findings.is_empty() {
            return clean(sampled);
        }
        let default = s.redact_mode.value;
        let found: Vec<Found> = findings.iter().map(|f| self.found(engine, f.rule, f.secret(text), default)).collect();
        let to_mask: Vec<Finding> =
            findings.iter().filter(|f| mode_of(engine, f.rule, default) != Mode::LogOnly).cloned().collect();
        for f in &to_mask {
            masked(&engine.rule(f.rule).id, f.secret(text));
        }
        let verdict = verdict_of(&found);
        self.audit(&found, input, sampled, verdict);
        let output = if to_mask.is_empty() {
            Cow::Borrowed(text)
        } else {
            Cow::Owned(engine.redact_findings(text, &to_mask, &s.redaction_style.value))
        };
        Outcome { verdict, output, found, sampled }
    }

    fn found(&self, engine: &Engine, rule: usize, secret: &[u8], default: Mode) -> Found {
        let r = engine.rule(rule);
        Found {
            rule: r.id.clone(),
            category: r.category.clone(),
            severity: r.severity,
            mode: r.mode.unwrap_or(default),
            fingerprint: self.auditor.key().fingerprint(&r.id, secret),
        }
    }

    fn audit(&self, found: &[Found], input: bool, sampled: bool, verdict: Verdict) {
        let kind = if input { EventKind::InputSecretDetected } else { EventKind::SecretDetected };
        for f in found {
            self.record(kind, |e| {
                e.action = Some(f.mode.as_str().to_string());
                e.rule = Some(f.rule.clone());
                e.category = Some(f.category.clone());
                e.severity = Some(f.severity);
                e.count = Some(1);
                e.fingerprint = Some(f.fingerprint.clone());
                e.sampled = sampled.then_some(true);
            });
        }
        if verdict == Verdict::Blocked {
            let first = found.iter().find(|f| f.mode == Mode::Block);
            self.record(EventKind::Blocked, |e| {
                e.action = Some("block".into());
                e.rule = first.map(|f| f.rule.clone());
                e.category = first.map(|f| f.category.clone());
                e.severity = first.map(|f| f.severity);
                e.count = Some(found.len() as u64);
            });
        }
    }

    /// A stream (terminal, pipe, kernel stream output) under this guard.
    pub fn stream(&self, hold: Hold, input: bool) -> GuardedStream {
        let snap = self.snapshot();
        let mut inner =
            StreamRedactor::new(snap.engine.clone(), snap.settings.redaction_style.value.clone()).with_hold(hold);
        inner.set_mask_filter(Some(mask_filter(&snap)));
        GuardedStream {
            guard: self.clone(),
            generation: snap.generation,
            inner,
            input,
            pass_through: self.allowlisted(),
            keep_width: false,
        }
    }
}

fn mask_filter(snap: &Snapshot) -> MaskFilter {
    let default = snap.settings.redact_mode.value;
    let masked: Vec<bool> =
        (0..snap.engine.len()).map(|i| mode_of(&snap.engine, i, default) != Mode::LogOnly).collect();
    Arc::new(move |rule| masked.get(rule).copied().unwrap_or(true))
}

fn verdict_of(found: &[Found]) -> Verdict {
    found
        .iter()
        .map(|f| match f.mode {
            Mode::Block => Verdict::Blocked,
            Mode::Mask => Verdict::Masked,
            Mode::LogOnly => Verdict::Logged,
        })
        .max()
        .unwrap_or(Verdict::Clean)
}

fn floor_char(t: &[u8], mut i: usize) -> usize {
    while i > 0 && i < t.len() && t[i] & 0xc0 == 0x80 {
        i -= 1;
    }
    i
}

fn ceil_char(t: &[u8], mut i: usize) -> usize {
    while i < t.len() && t[i] & 0xc0 == 0x80 {
        i += 1;
    }
    i
}

/// A [`StreamRedactor`] that follows reloads, applies modes and audits.
pub struct GuardedStream {
    guard: Guard,
    generation: u64,
    inner: StreamRedactor,
    input: bool,
    pass_through: bool,
    keep_width: bool,
}

/// The style a width-keeping stream uses: the configured one if it keeps
/// the width already, else same-width with `*`.
fn width_keeping(style: &Style) -> Style {
    match style {
        Style::SameWidth(_) => style.clone(),
        _ => Style::SameWidth(b'*'),
    }
}

impl GuardedStream {
    /// Masks keep the byte length of what they replace, whatever style is
    /// configured: terminals, and pipes carrying structured output.
    pub fn keep_width(mut self) -> GuardedStream {
        self.keep_width = true;
        self.inner.set_style(width_keeping(&self.guard.snapshot().settings.redaction_style.value));
        self
    }

    /// Adds a chunk. Appends what may be shown to `out`; on `Blocked`
    /// nothing of this chunk is appended.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Verdict {
        if self.pass_through {
            out.extend_from_slice(chunk);
            return Verdict::Clean;
        }
        self.follow_reload();
        let start = out.len();
        let found = self.inner.push(chunk, out);
        self.settle(found, start, out)
    }

    /// Writes out everything held (end of input).
    pub fn flush(&mut self, out: &mut Vec<u8>) -> Verdict {
        let start = out.len();
        let found = self.inner.flush(out);
        self.settle(found, start, out)
    }

    /// Flushes after an idle timeout (interactive terminals).
    pub fn flush_idle(&mut self, out: &mut Vec<u8>) -> Verdict {
        let start = out.len();
        let found = self.inner.flush_idle(out);
        self.settle(found, start, out)
    }

    /// Checks what the user typed or pasted into this stream's session,
    /// like [`Guard::check`] with `input` true. Secrets found there are
    /// then masked wherever they appear in this stream: their echo, and
    /// later output such as `echo $TOKEN`.
    pub fn check_input(&mut self, text: &[u8]) -> Verdict {
        if self.pass_through {
            return Verdict::Clean;
        }
        let inner = &mut self.inner;
        self.guard.inspect(text, true, |rule_id, secret| inner.remember(secret, rule_id)).verdict
    }

    /// How the held tail looks, to choose the idle timer.
    pub fn tail(&self) -> Tail {
        self.inner.tail()
    }

    pub fn held(&self) -> usize {
        self.inner.held()
    }

    fn follow_reload(&mut self) {
        let snap = self.guard.snapshot();
        if snap.generation != self.generation {
            self.generation = snap.generation;
            self.inner.set_engine(snap.engine.clone());
            let style = &snap.settings.redaction_style.value;
            self.inner.set_style(if self.keep_width { width_keeping(style) } else { style.clone() });
            self.inner.set_mask_filter(Some(mask_filter(&snap)));
        }
    }

    /// Decides on what the redactor appended to `out` after `start`: on
    /// `Blocked` it is taken back out.
    fn settle(&mut self, found: Vec<StreamFinding>, start: usize, out: &mut Vec<u8>) -> Verdict {
        let snap = self.guard.snapshot();
        let default = snap.settings.redact_mode.value;
        let engine = self.inner.engine().clone();
        // A blocking secret in the held tail stops the stream before any of
        // its line goes out.
        let held_block = self.inner.held_rules().iter().any(|&r| mode_of(&engine, r, default) == Mode::Block);
        if found.is_empty() && !held_block {
            return Verdict::Clean;
        }
        if found.is_empty() {
            out.truncate(start);
            self.guard.record(EventKind::Blocked, |e| {
                let r = self.inner.held_rules().iter().find(|&&r| mode_of(&engine, r, default) == Mode::Block);
                e.action = Some("block".into());
                e.rule = r.map(|&r| engine.rule(r).id.clone());
            });
            return Verdict::Blocked;
        }
        let found: Vec<Found> =
            found.iter().map(|f| self.guard.found(&engine, f.rule, f.secret.as_bytes(), default)).collect();
        let verdict = if held_block { Verdict::Blocked } else { verdict_of(&found) };
        self.guard.audit(&found, self.input, false, verdict);
        if verdict == Verdict::Blocked {
            out.truncate(start);
        }
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Channel;
    use crate::settings::LoadOptions;

    fn guard(dir: &std::path::Path, extra: &str) -> Guard {
        let cfg = dir.join("config.toml");
        std::fs::write(
            &cfg,
            format!(
                "audit_key_file = \"{}/key\"\naudit_log = \"{}/audit.jsonl\"\n{extra}",
                dir.display(),
                dir.display()
            ),
        )
        .unwrap();
        let opts = LoadOptions { config_file: Some(cfg), ..LoadOptions::default() };
        let reloader = Reloader::load(opts).unwrap();
        let auditor = Arc::new(Auditor::new(&reloader.current().settings).unwrap());
        Guard::new(reloader, auditor, Context { origin: Origin::new(Channel::Cli), path: None })
    }

    const KEY: &str = "GITHUB_TOKEN=ghp_R7kPq2LmN9xVt4Hs8WzC1bYd6FjG3aEu0K9p\n";

    #[test]
    fn modes() {
        let dir = tempfile::tempdir().unwrap();
        let g = guard(dir.path(), "");
        let o = g.check(KEY.as_bytes(), false);
        assert_eq!(o.verdict, Verdict::Masked);
        assert_eq!(&*o.output, b"GITHUB_TOKEN=[REDACTED]\n");
        let g = guard(dir.path(), "redact_mode = \"log_only\"");
        let o = g.check(KEY.as_bytes(), false);
        assert_eq!((o.verdict, &*o.output), (Verdict::Logged, KEY.as_bytes()));
        let g = guard(dir.path(), "redact_mode = \"block\"");
        assert_eq!(g.check(KEY.as_bytes(), false).verdict, Verdict::Blocked);
        let audit = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
        assert_eq!(audit.lines().filter(|l| l.contains("\"secret_detected\"")).count(), 3);
        assert_eq!(audit.lines().filter(|l| l.contains("\"blocked\"")).count(), 1);
        assert!(!audit.contains("R7kPq2LmN9"));
    }

    #[test]
    fn stream_block_withholds_the_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let g = guard(dir.path(), "redact_mode = \"block\"");
        let mut s = g.stream(Hold::Line, false);
        let mut out = Vec::new();
        assert_eq!(s.push(b"fine line\n", &mut out), Verdict::Clean);
        assert_eq!(s.push(format!("x {KEY}").as_bytes(), &mut out), Verdict::Blocked, "even while the line is held");
        assert_eq!(out, b"fine line\n");
    }

    #[test]
    fn secrets_typed_in_are_masked_in_later_output() {
        let dir = tempfile::tempdir().unwrap();
        let g = guard(dir.path(), "");
        let mut s = g.stream(Hold::Token, false).keep_width();
        assert_eq!(s.check_input(b"export DB_PASSWORD='Qv7pLw2xZr9'"), Verdict::Masked);
        let mut out = Vec::new();
        s.push(b"$ echo $DB_PASSWORD\r\nQv7pLw2xZr9\r\n$ ", &mut out);
        s.flush(&mut out);
        assert_eq!(out, b"$ echo $DB_PASSWORD\r\n[REDACTED]*\r\n$ ", "same width, the value masked on its own");
        let audit = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
        assert!(audit.contains("\"input_secret_detected\""), "{audit}");
        assert!(!audit.contains("Qv7pLw2x"));
    }

    #[test]
    fn sampling_scans_head_and_tail() {
        let dir = tempfile::tempdir().unwrap();
        let g = guard(dir.path(), "sample_threshold = 4096\nsample_window = 1024\n");
        let mut text = KEY.to_string();
        text.push_str(&"0.1234, ".repeat(2000));
        text.push_str(KEY);
        text.push_str(&"0.1234, ".repeat(2000));
        text.push_str(KEY);
        let o = g.check(text.as_bytes(), false);
        assert!(o.sampled);
        assert_eq!(o.found.len(), 2, "head and tail, not the middle");
        assert_eq!(String::from_utf8_lossy(&o.output).matches("ghp_").count(), 1, "the middle one is not scanned");
    }

    #[test]
    fn rule_mode_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let extra = r#"
[[rules]]
id = "github-pat"
description = "GitHub PAT that always blocks"
category = "vcs"
mode = "block"
prefixes = ["ghp_"]
regex = 'ghp_[A-Za-z0-9]{36}'
"#;
        let g = guard(dir.path(), &format!("redact_mode = \"log_only\"\n{extra}"));
        assert_eq!(g.check(KEY.as_bytes(), false).verdict, Verdict::Blocked);
    }
}
