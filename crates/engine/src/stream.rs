//! Redacting input that arrives in pieces.
//!
//! A [`StreamRedactor`] takes chunks and returns redacted output as soon as
//! it is final. It holds back only bytes that could still turn out to be
//! part of a secret, and keeps a little of what it already emitted as
//! context, so a keyword in one chunk still governs a value in the next.
//!
//! With [`Hold::Line`] (the default) the incomplete last line is held, and
//! the output for any split of an input is exactly the one-shot
//! [`Engine::redact`] of the whole input (property-tested over random splits
//! of every rule example). With [`Hold::Token`] (interactive terminals) only
//! the trailing token is held, so echo and prompts go out at once.

use std::sync::Arc;

use crate::engine::{Engine, Finding, Scan, merge_spans};
use crate::normalize::Projection;
use crate::redact::{self, Style};

/// What a stream holds back at the end of each chunk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Hold {
    /// The incomplete last line. Exact, for pipes, files and notebooks.
    #[default]
    Line,
    /// Only the trailing token (and digit groups). Low latency, for terminals.
    Token,
}

/// How the held tail of an interactive stream looks, to choose a timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tail {
    /// Nothing held.
    Empty,
    /// An ordinary partial token, or the start of a key prefix (`s`, `sk`):
    /// prefixes are public, so they need not wait.
    Plain,
    /// The token starts with a known secret prefix (`sk-`, `AKIA`, `ghp_`),
    /// or ends like the start of a remembered secret: what follows is secret.
    Armed,
}

/// A finding reported by a stream, positioned in the whole stream's input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamFinding {
    pub rule: usize,
    /// Byte offset of the secret in the stream's input.
    pub offset: u64,
    /// The secret itself, for keyed fingerprints; its `Debug` shows nothing.
    pub secret: Secret,
}

/// Secret bytes that never print.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

/// Which rules' findings a stream masks (the others are only reported).
pub type MaskFilter = Arc<dyn Fn(usize) -> bool + Send + Sync>;

/// Emitted input kept to give context to later chunks: well past how far
/// before its keyword a match may start (256 bytes). Every push re-scans
/// it, so a terminal's small reads pay for it in proportion.
const CONTEXT: usize = 1024;
/// The held tail never grows past this; then a secret is masked in parts.
const DEFAULT_MAX_HOLD: usize = 64 * 1024;
/// A timed-out armed token this long is masked rather than shown.
const FAIL_CLOSED_LEN: usize = 16;
/// In Token mode a trailing token is held by at most its last this many
/// bytes: far longer than any single-token secret, and a long run (base64
/// data) is not re-scanned whole on every read.
const LONG_TOKEN: usize = 4096;
/// Secrets a stream remembers; the oldest is forgotten past this.
const MAX_KNOWN: usize = 64;
/// Shorter values are not remembered: they would mask ordinary words.
const MIN_KNOWN_LEN: usize = 6;
/// A held token ending in this much of a remembered secret is armed.
const KNOWN_ARMED_LEN: usize = 4;

/// A secret the channel saw elsewhere (typed or pasted input), masked
/// wherever it appears in this stream, even where no rule would find it.
struct Known {
    secret: Vec<u8>,
    /// The rule that found it, by id: indices change when rules reload.
    rule_id: String,
    rule: Option<usize>,
}

/// See the module documentation.
pub struct StreamRedactor {
    engine: Arc<Engine>,
    style: Style,
    hold: Hold,
    max_hold: usize,
    /// `buf[..emitted]` is context already written out; the rest is held.
    buf: Vec<u8>,
    emitted: usize,
    /// Stream offset of `buf[0]`.
    base: u64,
    mask: Option<MaskFilter>,
    /// Rules of findings already seen in the held tail.
    held_rules: Vec<usize>,
    known: Vec<Known>,
    known_matcher: Option<aho_corasick::AhoCorasick>,
    /// Findings starting at or after this stream offset are not reported yet.
    unreported_from: u64,
}

impl StreamRedactor {
    pub fn new(engine: Arc<Engine>, style: Style) -> StreamRedactor {
        StreamRedactor {
            engine,
            style,
            hold: Hold::Line,
            max_hold: DEFAULT_MAX_HOLD,
            buf: Vec::new(),
            emitted: 0,
            base: 0,
            mask: None,
            held_rules: Vec::new(),
            known: Vec::new(),
            known_matcher: None,
            unreported_from: 0,
        }
    }

    pub fn with_hold(mut self, hold: Hold) -> StreamRedactor {
        self.hold = hold;
        self
    }

    /// Caps the held tail (and so the memory of the stream). At least 1 KiB.
    pub fn with_max_hold(mut self, bytes: usize) -> StreamRedactor {
        self.max_hold = bytes.max(1024);
        self
    }

    /// Masks only findings of rules (engine indices) the filter accepts;
    /// all findings are still reported. Without a filter everything is masked.
    pub fn set_mask_filter(&mut self, filter: Option<MaskFilter>) {
        self.mask = filter;
    }

    /// Swaps in new rules (after a reload); held bytes are judged by them.
    /// The mask filter refers to rule indices, so set it again too.
    pub fn set_engine(&mut self, engine: Arc<Engine>) {
        self.engine = engine;
        self.resolve_known();
    }

    /// Remembers a secret found by the rule `rule_id` somewhere else in the
    /// session (in what the user typed or pasted): from now on it is masked
    /// wherever it appears in this stream, split or whole, as a finding of
    /// that rule. Forgotten if a reload removes the rule.
    pub fn remember(&mut self, secret: &[u8], rule_id: &str) {
        if secret.len() < MIN_KNOWN_LEN || self.known.iter().any(|k| k.secret == secret) {
            return;
        }
        if self.known.len() == MAX_KNOWN {
            self.known.remove(0);
        }
        self.known.push(Known { secret: secret.to_vec(), rule_id: rule_id.to_string(), rule: None });
        self.resolve_known();
    }

    fn resolve_known(&mut self) {
        for k in &mut self.known {
            k.rule = self.engine.rules().position(|r| r.id == k.rule_id);
        }
        self.known.retain(|k| k.rule.is_some());
        self.known_matcher = (!self.known.is_empty())
            .then(|| aho_corasick::AhoCorasick::new(self.known.iter().map(|k| &k.secret)).ok())
            .flatten();
    }

    pub fn set_style(&mut self, style: Style) {
        self.style = style;
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Number of bytes held back, not yet written out.
    pub fn held(&self) -> usize {
        self.buf.len() - self.emitted
    }

    /// Adds a chunk; appends whatever is final to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Vec<StreamFinding> {
        self.buf.extend_from_slice(chunk);
        self.emit(false, out)
    }

    /// Writes out everything held (end of input, or an idle timer).
    pub fn flush(&mut self, out: &mut Vec<u8>) -> Vec<StreamFinding> {
        self.emit(true, out)
    }

    /// What the held tail looks like, so an interactive channel can pick
    /// how long to wait before [`flush`](Self::flush)ing it.
    pub fn tail(&self) -> Tail {
        if self.held() == 0 {
            Tail::Empty
        } else if self.armed_start().is_some() {
            Tail::Armed
        } else {
            Tail::Plain
        }
    }

    /// Where the trailing token starts if it is armed: it begins with a key
    /// prefix, or ends like the start of a remembered secret. Tokens are
    /// judged whole, including any part already written out: a key typed
    /// one keystroke at a time went out up to its prefix before the rest
    /// was typed.
    fn armed_start(&self) -> Option<usize> {
        let held = self.trailing_run(is_held_byte);
        // A key may start anywhere a word starts: `KEY=sk-…`, `https://ghp_…`.
        let key = (held..self.buf.len()).find(|&i| {
            (i == held || !self.buf[i - 1].is_ascii_alphanumeric()) && self.engine.starts_with_prefix(&self.buf[i..])
        });
        key.or_else(|| self.ends_in_known(&self.buf[held..]).then_some(held))
    }

    /// Start of the run of `class` bytes that ends the buffer (looking back
    /// at most [`LONG_TOKEN`] bytes).
    fn trailing_run(&self, class: fn(u8) -> bool) -> usize {
        let from = self.buf.len().saturating_sub(LONG_TOKEN);
        from + self.buf[from..].iter().rposition(|&b| !class(b)).map_or(0, |i| i + 1)
    }

    /// Whether `token` ends with the start of a remembered secret.
    fn ends_in_known(&self, token: &[u8]) -> bool {
        self.known
            .iter()
            .any(|k| (KNOWN_ARMED_LEN..=k.secret.len().min(token.len())).any(|n| token.ends_with(&k.secret[..n])))
    }

    /// Flushes after an idle timeout: like [`flush`](Self::flush), but an
    /// armed token of 16 bytes or more, or one ending in the start of a
    /// remembered secret, is masked whole rather than shown, since its rest
    /// may still come and by then the start would be out.
    pub fn flush_idle(&mut self, out: &mut Vec<u8>) -> Vec<StreamFinding> {
        if let Some(token_start) = self.armed_start().filter(|_| self.held() > 0) {
            let token = &self.buf[token_start..];
            if token.len() >= FAIL_CLOSED_LEN || self.ends_in_known(token) {
                let split = token_start.max(self.emitted);
                let mut found = self.emit_until(split, out);
                // Secrets already whole in the masked token are reported now.
                let inside: Vec<Finding> =
                    self.scan(self.buf.len()).findings.into_iter().filter(|f| f.start >= split).collect();
                found.extend(inside.iter().map(|f| self.report(f)));
                redact::write_mask(&self.buf[split..], None, &self.style, out);
                self.emitted = self.buf.len();
                self.trim();
                return found;
            }
        }
        self.flush(out)
    }

    /// Rules of secrets found in the held tail, not yet reported: a channel
    /// that blocks can stop before any of that line goes out.
    pub fn held_rules(&self) -> &[usize] {
        &self.held_rules
    }

    fn emit(&mut self, flush: bool, out: &mut Vec<u8>) -> Vec<StreamFinding> {
        let scan = self.scan(self.buf.len());
        let cut = if flush { self.buf.len() } else { self.safe_cut(&scan) };
        self.held_rules = scan.findings.iter().filter(|f| f.start >= cut).map(|f| f.rule).collect();
        self.write(cut, &scan.findings, scan.projection.as_ref(), out)
    }

    fn emit_until(&mut self, cut: usize, out: &mut Vec<u8>) -> Vec<StreamFinding> {
        let scan = self.scan(cut);
        self.write(cut, &scan.findings, scan.projection.as_ref(), out)
    }

    /// The engine's findings in `buf[..end]`, plus remembered secrets where
    /// no rule found anything.
    fn scan(&self, end: usize) -> Scan {
        let h = &self.buf[..end];
        let mut scan = self.engine.scan(h);
        if let Some(ac) = &self.known_matcher {
            let found_by_rules = scan.findings.len();
            for m in ac.find_overlapping_iter(h) {
                let (start, end) = (m.start(), m.end());
                let Some(rule) = self.known[m.pattern().as_usize()].rule else { continue };
                if !scan.findings[..found_by_rules].iter().any(|f| f.start < end && start < f.end) {
                    scan.findings.push(Finding { rule, start, end, match_start: start, match_end: end });
                }
            }
        }
        scan
    }

    /// Where output can safely stop: nothing before it can still change.
    fn safe_cut(&self, scan: &Scan) -> usize {
        let buf = &self.buf;
        let held = &buf[self.emitted..];
        let mut cut = match self.hold {
            Hold::Line => self.emitted + held.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1),
            Hold::Token => self.emitted + token_tail_start(held),
        };
        // An incomplete escape sequence at the end changes what precedes it.
        if let Some(esc) = incomplete_escape(buf) {
            cut = cut.min(esc);
        }
        // Bounded memory: past max_hold, give out all but the last token.
        if buf.len() - cut > self.max_hold {
            let floor = buf.len() - self.max_hold / 2;
            cut = floor + buf[floor..].iter().rposition(|b| b.is_ascii_whitespace()).map_or(0, |i| i + 1);
        }
        // A multi-line block (a private key) that the next lines may extend.
        if let Some(g) = scan.growing.filter(|&g| g >= self.emitted && buf.len() - g <= self.max_hold) {
            cut = cut.min(g);
        }
        // Never cut through a secret, nor give out the start of one that may grow.
        for f in &scan.findings {
            if f.start < cut && f.end >= cut && f.start >= self.emitted && buf.len() - f.start <= self.max_hold {
                cut = f.start;
            }
        }
        cut.max(self.emitted)
    }

    fn write(
        &mut self,
        cut: usize,
        findings: &[Finding],
        projection: Option<&Projection>,
        out: &mut Vec<u8>,
    ) -> Vec<StreamFinding> {
        let from = self.emitted;
        let mut reported = Vec::new();
        let mut clipped: Vec<Finding> = Vec::new();
        for f in findings {
            if f.end <= from || f.start >= cut {
                continue;
            }
            // New, or the rest of one whose start went out masked but
            // unreported (an armed token masked whole at an idle timeout).
            if f.start >= from || self.base + f.start as u64 >= self.unreported_from {
                reported.push(self.report(f));
            }
            if self.mask.as_ref().is_some_and(|m| !m(f.rule)) {
                continue;
            }
            let mut c = f.clone();
            c.start = c.start.max(from) - from;
            c.end = c.end.min(cut) - from;
            clipped.push(c);
        }
        let piece = &self.buf[from..cut];
        if clipped.is_empty() {
            out.extend_from_slice(piece);
        } else {
            let engine = &self.engine;
            let spans = merge_spans(&clipped, |f| engine.rule(f.rule).id.as_str());
            let escapes: Vec<(usize, usize)> = projection
                .map(|p| {
                    p.escapes
                        .iter()
                        .filter(|(a, b)| *b > from && *a < cut)
                        .map(|(a, b)| ((*a).max(from) - from, (*b).min(cut) - from))
                        .collect()
                })
                .unwrap_or_default();
            redact::apply(piece, &spans, &self.style, &escapes, out);
        }
        self.emitted = cut;
        self.trim();
        reported
    }

    fn report(&mut self, f: &Finding) -> StreamFinding {
        let offset = self.base + f.start as u64;
        self.unreported_from = self.unreported_from.max(offset + 1);
        StreamFinding { rule: f.rule, offset, secret: Secret(self.buf[f.start..f.end].to_vec()) }
    }

    /// Drops emitted bytes beyond the context window.
    fn trim(&mut self) {
        if self.emitted > 2 * CONTEXT {
            let drop = self.emitted - CONTEXT;
            self.buf.drain(..drop);
            self.emitted -= drop;
            self.base += drop as u64;
        }
    }
}

/// Bytes that continue a token for holding purposes (wider than the
/// matcher's tokens: `KEY=value` is held as one): a table, since the walk
/// back over a held token runs on every read of a terminal.
const HELD_BYTES: [bool; 256] = {
    let mut t = [true; 256];
    let breaks = b" \t\n\x0b\x0c\r\"'`,()<>[]{}|";
    let mut i = 0;
    while i < breaks.len() {
        t[breaks[i] as usize] = false;
        i += 1;
    }
    t
};

fn is_held_byte(b: u8) -> bool {
    HELD_BYTES[b as usize]
}

/// Start of what Token mode holds: the trailing token, or trailing digit groups.
fn token_tail_start(held: &[u8]) -> usize {
    let floor = held.len().saturating_sub(LONG_TOKEN);
    let mut i = held.len();
    while i > floor && is_held_byte(held[i - 1]) {
        i -= 1;
    }
    let tok = &held[i..];
    if tok.is_empty() || tok.iter().all(u8::is_ascii_digit) {
        // `4111 1111 ` may be the first half of a card number.
        let mut j = i;
        while j > floor && (held[j - 1].is_ascii_digit() || held[j - 1] == b' ' || held[j - 1] == b'-') {
            j -= 1;
        }
        if held[j..i].iter().any(u8::is_ascii_digit) {
            i = j;
        }
    }
    i
}

/// Start of an escape sequence cut off by the end of the buffer.
fn incomplete_escape(buf: &[u8]) -> Option<usize> {
    let from = buf.len().saturating_sub(64);
    let esc = from + memchr::memrchr(0x1b, &buf[from..])?;
    let rest = &buf[esc + 1..];
    let complete = match rest.first() {
        None => false,
        Some(b'[') => rest[1..].iter().any(|b| (0x40..=0x7e).contains(b)),
        Some(b']') => rest.contains(&0x07) || rest.windows(2).any(|w| w == b"\x1b\\"),
        Some(_) => true,
    };
    (!complete).then_some(esc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Arc<Engine> {
        Arc::new(Engine::builtin())
    }

    fn run(e: &Arc<Engine>, parts: &[&[u8]], hold: Hold) -> Vec<u8> {
        let mut s = StreamRedactor::new(e.clone(), Style::default()).with_hold(hold);
        let mut out = Vec::new();
        for p in parts {
            s.push(p, &mut out);
        }
        s.flush(&mut out);
        out
    }

    #[test]
    fn split_secret_is_masked() {
        let e = engine();
        let text = b"token ghp_R7kPq2LmN9xVt4Hs8WzC1bYd6FjG3aEu0K9p here\n";
        let whole = e.redact(text, &Style::default()).output.into_owned();
        assert!(!whole.windows(10).any(|w| w == b"ghp_R7kPq2"));
        for cut in 1..text.len() {
            assert_eq!(run(&e, &[&text[..cut], &text[cut..]], Hold::Line), whole, "cut at {cut}");
        }
    }

    #[test]
    fn complete_lines_go_out_at_once() {
        let e = engine();
        let mut s = StreamRedactor::new(e, Style::default());
        let mut out = Vec::new();
        s.push(b"hello\nwor", &mut out);
        assert_eq!(out, b"hello\n");
        assert_eq!(s.held(), 3);
    }

    #[test]
    fn token_mode_emits_all_but_the_token() {
        let e = engine();
        let mut s = StreamRedactor::new(e, Style::default()).with_hold(Hold::Token);
        let mut out = Vec::new();
        s.push(b"user@host:~$ ec", &mut out);
        assert_eq!(out, b"user@host:~$ ");
        assert_eq!(s.tail(), Tail::Plain);
    }

    #[test]
    fn memory_is_bounded() {
        let e = engine();
        let mut s = StreamRedactor::new(e, Style::default()).with_max_hold(4096);
        let mut out = Vec::new();
        for _ in 0..1000 {
            s.push(&[b'a'; 1000], &mut out);
            s.push(b" ", &mut out);
        }
        assert!(s.held() <= 4096 + 1001, "held {}", s.held());
        s.flush(&mut out);
        assert_eq!(out.len(), 1000 * 1001);
    }

    #[test]
    fn remembered_secrets_are_masked_wherever_they_appear() {
        let e = engine();
        let text = b"$ echo $DB_PASS\r\nQv7pLw2xZr9\r\n$ ";
        for cut in 1..text.len() {
            let mut s = StreamRedactor::new(e.clone(), Style::default()).with_hold(Hold::Token);
            s.remember(b"Qv7pLw2xZr9", "password-assignment");
            let mut out = Vec::new();
            let mut found = s.push(&text[..cut], &mut out);
            if s.tail() == Tail::Armed {
                // What an idle timer would do while the rest is still coming.
                found.extend(s.flush_idle(&mut out));
            }
            found.extend(s.push(&text[cut..], &mut out));
            found.extend(s.flush(&mut out));
            let shown = String::from_utf8_lossy(&out);
            assert!(!shown.contains("Qv7p") && !shown.contains("2xZr9"), "cut {cut}: {shown}");
            assert!(!found.is_empty(), "cut {cut}: {shown}");
        }
        let mut s = StreamRedactor::new(e.clone(), Style::default()).with_hold(Hold::Token);
        s.remember(b"Qv7pLw2xZr9", "password-assignment");
        s.push(b"x=Qv7p", &mut Vec::new());
        assert_eq!(s.tail(), Tail::Armed, "the start of a remembered secret waits for the rest");
        s.set_engine(e.clone());
        assert_eq!(s.tail(), Tail::Armed, "kept across reloads");
    }
}
