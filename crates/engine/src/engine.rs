//! The compiled engine: rules + matcher, finding and redacting secrets.

use std::borrow::Cow;
use std::sync::OnceLock;

use regex_automata::meta::{self, Regex};
use regex_automata::util::captures::Captures;
use regex_automata::util::syntax;
use regex_automata::{Anchored, Input};
use regex_syntax::hir::literal::{ExtractKind, Extractor};
use regex_syntax::hir::{Class, Hir, HirKind, Look};

use crate::error::RuleError;
use crate::matcher::{Matcher, Prefilter, Reach, Triggers, Window};
use crate::normalize::{self, Projection};
use crate::redact::{self, Span, Style};
use crate::rules::{AllowTarget, Allowlist, Condition, Rule, RuleSet, SecretGroup};
use crate::validate;

/// A secret found in a haystack. Offsets are byte offsets into the haystack
/// given to [`Engine::find`], and always fall on UTF-8 character boundaries
/// of text that was valid UTF-8.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Finding {
    /// Index of the rule in [`Engine::rules`].
    pub rule: usize,
    /// The secret.
    pub start: usize,
    pub end: usize,
    /// The whole regex match (the secret plus its context, such as `password=`).
    pub match_start: usize,
    pub match_end: usize,
}

impl Finding {
    pub fn secret<'h>(&self, haystack: &'h [u8]) -> &'h [u8] {
        &haystack[self.start..self.end]
    }
}

/// Findings with what a stream needs to know besides.
pub(crate) struct Scan {
    pub findings: Vec<Finding>,
    /// The visible projection the findings were made on, if the text needed one.
    pub projection: Option<Projection>,
    /// Start of a multi-line match that more lines could still extend.
    pub growing: Option<usize>,
}

/// The result of [`Engine::redact`].
#[derive(Clone, Debug)]
pub struct Redaction<'h> {
    /// The redacted text; borrowed when nothing was found.
    pub output: Cow<'h, [u8]>,
    pub findings: Vec<Finding>,
}

/// Bytes searched around a keyword when a rule's match has no upper bound.
const UNBOUNDED_REACH: usize = 1024;
/// How far before its keyword a match may start.
const KEYWORD_BACK: usize = 256;
/// How far a window is extended when a match runs into its end.
const EXTENDED_REACH: usize = 256 * 1024;

struct CompiledRule {
    rule: Rule,
    hir: Hir,
    /// Built on first use: most rules never see a trigger, and building
    /// every automaton up front would cost a notebook kernel its start-up.
    regex: OnceLock<Result<Regex, String>>,
    secret_group: usize,
    allow: Vec<CompiledAllowlist>,
    context: Vec<Regex>,
    /// Lower-cased prefixes, stripped before the placeholder check.
    prefixes: Vec<Vec<u8>>,
    /// Whether a match can span lines.
    multiline: bool,
}

struct CompiledAllowlist {
    regexes: Vec<Regex>,
    target: AllowTarget,
    stopwords: Vec<Vec<u8>>,
    values: Vec<Vec<u8>>,
    condition: Condition,
}

/// Rules compiled for matching. Cheap to share between threads (`&Engine`
/// is `Sync`); build once, reuse for every input.
pub struct Engine {
    rules: Vec<CompiledRule>,
    global_allow: Vec<CompiledAllowlist>,
    matcher: Prefilter,
    placeholders: validate::PlaceholderCheck,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("rules", &self.rules.len()).finish()
    }
}

/// `^` and `$` match at line boundaries: a rule runs over a window of a
/// larger text, and a window of a single-line rule ends before the line
/// break that its `$` (or a trailing `[^0-9]`) is about.
fn syntax_config() -> syntax::Config {
    syntax::Config::new().unicode(false).utf8(false).multi_line(true)
}

fn parse_hir(pattern: &str) -> Result<Hir, String> {
    regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .multi_line(true)
        .build()
        .parse(pattern)
        .map_err(|e| e.to_string())
}

fn build_regex(hir: &Hir) -> Result<Regex, String> {
    meta::Builder::new()
        .syntax(syntax_config())
        .configure(meta::Config::new().nfa_size_limit(Some(64 << 20)).utf8_empty(false))
        .build_from_hir(hir)
        .map_err(|e| e.to_string())
}

/// Sorts windows (by rule, then anchored, start and end) in linear time in
/// the usual case: a counting sort by rule, after which each rule's windows
/// are already in order, since the matcher finds each kind of trigger in
/// text order. Sorting took a few percent of a scan of notebook output.
fn order_windows(windows: &mut Vec<Window>, rules: usize) {
    if windows.len() < 64 {
        windows.sort_unstable();
        return;
    }
    let mut offsets = vec![0usize; rules + 1];
    for w in windows.iter() {
        offsets[w.rule as usize + 1] += 1;
    }
    for i in 1..=rules {
        offsets[i] += offsets[i - 1];
    }
    let mut sorted = vec![windows[0]; windows.len()];
    let mut next = offsets.clone();
    for w in windows.iter() {
        sorted[next[w.rule as usize]] = *w;
        next[w.rule as usize] += 1;
    }
    for r in 0..rules {
        let group = &mut sorted[offsets[r]..offsets[r + 1]];
        if !group.is_sorted() {
            group.sort_unstable();
        }
    }
    *windows = sorted;
}

/// Names of the capture groups in the order of their indices (1, 2, ...).
fn capture_names(hir: &Hir) -> Vec<Option<String>> {
    fn walk(h: &Hir, out: &mut Vec<(u32, Option<String>)>) {
        match h.kind() {
            HirKind::Capture(c) => {
                out.push((c.index, c.name.as_deref().map(String::from)));
                walk(&c.sub, out);
            }
            HirKind::Repetition(r) => walk(&r.sub, out),
            HirKind::Concat(v) | HirKind::Alternation(v) => v.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut v = Vec::new();
    walk(hir, &mut v);
    v.sort_by_key(|(i, _)| *i);
    v.into_iter().map(|(_, n)| n).collect()
}

impl CompiledRule {
    fn regex(&self) -> Result<&Regex, &str> {
        self.regex.get_or_init(|| build_regex(&self.hir)).as_ref().map_err(String::as_str)
    }
}

/// Shortest run of token bytes (see `matcher::is_token_byte`) that every
/// match of `hir` starts with: a prefix hit in a shorter token cannot match.
fn leading_token_run(hir: &Hir) -> usize {
    /// (guaranteed leading token bytes, whether every byte h can match is a token byte)
    fn go(h: &Hir) -> (usize, bool) {
        let token = crate::matcher::is_token_byte;
        match h.kind() {
            HirKind::Empty | HirKind::Look(_) => (0, true),
            HirKind::Literal(lit) => {
                let k = lit.0.iter().take_while(|&&b| token(b)).count();
                (k, k == lit.0.len())
            }
            HirKind::Class(Class::Bytes(c)) => {
                let all = c.ranges().iter().all(|r| (r.start()..=r.end()).all(token));
                (usize::from(all), all)
            }
            HirKind::Class(Class::Unicode(c)) => {
                let all = c.ranges().iter().all(|r| (r.start()..=r.end()).all(|ch| ch.is_ascii() && token(ch as u8)));
                (usize::from(all), all)
            }
            HirKind::Repetition(r) => {
                let (l, full) = go(&r.sub);
                let min = r.min as usize;
                (
                    if full {
                        l.saturating_mul(min)
                    } else if min > 0 {
                        l
                    } else {
                        0
                    },
                    full,
                )
            }
            HirKind::Capture(c) => go(&c.sub),
            HirKind::Concat(v) => {
                let mut acc = 0usize;
                for e in v {
                    let (l, full) = go(e);
                    acc = acc.saturating_add(l);
                    if !full {
                        return (acc, false);
                    }
                }
                (acc, true)
            }
            HirKind::Alternation(v) => {
                let parts: Vec<(usize, bool)> = v.iter().map(go).collect();
                (parts.iter().map(|p| p.0).min().unwrap_or(0), parts.iter().all(|p| p.1))
            }
        }
    }
    go(hir).0
}

/// The fewest and the most digits a match can hold (most: `None` if unbounded).
fn digit_span(hir: &Hir) -> (usize, Option<usize>) {
    let class = |ranges: &mut dyn Iterator<Item = (u32, u32)>| {
        let (mut all, mut any) = (true, false);
        for (a, b) in ranges {
            all &= a >= u32::from(b'0') && b <= u32::from(b'9');
            any |= a <= u32::from(b'9') && b >= u32::from(b'0');
        }
        (usize::from(all && any), Some(usize::from(any)))
    };
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => (0, Some(0)),
        HirKind::Literal(lit) => {
            let n = lit.0.iter().filter(|b| b.is_ascii_digit()).count();
            (n, Some(n))
        }
        HirKind::Class(Class::Bytes(c)) => class(&mut c.ranges().iter().map(|r| (r.start().into(), r.end().into()))),
        HirKind::Class(Class::Unicode(c)) => class(&mut c.ranges().iter().map(|r| (r.start().into(), r.end().into()))),
        HirKind::Repetition(r) => {
            let (lo, hi) = digit_span(&r.sub);
            let hi = match (hi, r.max) {
                (Some(0), _) => Some(0),
                (Some(h), Some(m)) => h.checked_mul(m as usize),
                _ => None,
            };
            (lo.saturating_mul(r.min as usize), hi)
        }
        HirKind::Capture(c) => digit_span(&c.sub),
        HirKind::Concat(v) => v.iter().map(digit_span).fold((0, Some(0)), |(lo, hi), (l, h)| {
            (lo.saturating_add(l), hi.zip(h).and_then(|(a, b)| a.checked_add(b)))
        }),
        HirKind::Alternation(v) => {
            let spans: Vec<_> = v.iter().map(digit_span).collect();
            let lo = spans.iter().map(|s| s.0).min().unwrap_or(0);
            let hi = spans.iter().try_fold(0, |m, s| s.1.map(|h| m.max(h)));
            (lo, hi)
        }
    }
}

/// Whether every match begins (or, with `end`, ends) with a `\b`.
fn at_word_boundary(hir: &Hir, end: bool) -> bool {
    match hir.kind() {
        HirKind::Look(l) => matches!(l, Look::WordAscii | Look::WordUnicode),
        HirKind::Capture(c) => at_word_boundary(&c.sub, end),
        HirKind::Concat(v) => (if end { v.last() } else { v.first() }).is_some_and(|e| at_word_boundary(e, end)),
        HirKind::Alternation(v) => v.iter().all(|e| at_word_boundary(e, end)),
        _ => false,
    }
}

/// Literal starts of every match, when the regex has a small set of them.
fn extract_prefixes(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    let seq = Extractor::new().kind(ExtractKind::Prefix).limit_total(256).extract(hir);
    let lits = seq.literals()?;
    if lits.is_empty() || lits.len() > 64 || lits.iter().any(|l| l.as_bytes().len() < 3) {
        return None;
    }
    Some(lits.iter().map(|l| l.as_bytes().to_vec()).collect())
}

fn compile_allowlist(a: &Allowlist, owner: Option<&str>) -> Result<CompiledAllowlist, RuleError> {
    let err = |msg: String| match owner {
        Some(id) => RuleError::rule(id, msg),
        None => RuleError::new(msg),
    };
    let regexes = a
        .regexes
        .iter()
        .map(|r| {
            parse_hir(r)
                .and_then(|h| build_regex(&h))
                .map_err(|e| err(format!("allowlist regex `{r}` does not compile: {e}")))
        })
        .collect::<Result<_, _>>()?;
    Ok(CompiledAllowlist {
        regexes,
        target: a.target,
        stopwords: a.stopwords.iter().map(|s| s.to_ascii_lowercase().into_bytes()).collect(),
        values: a.values.iter().map(|s| s.as_bytes().to_vec()).collect(),
        condition: a.condition,
    })
}

impl CompiledAllowlist {
    /// Whether this allowlist lets the finding go.
    fn allows(&self, h: &[u8], f: &Finding) -> bool {
        let secret = &h[f.start..f.end];
        let target = match self.target {
            AllowTarget::Secret => secret,
            AllowTarget::Match => &h[f.match_start..f.match_end],
            AllowTarget::Line => line_of(h, f.match_start, f.match_end),
        };
        let checks = [
            (!self.regexes.is_empty()).then(|| self.regexes.iter().any(|r| r.is_match(target))),
            (!self.stopwords.is_empty()).then(|| validate::has_stopword(secret, &self.stopwords)),
            (!self.values.is_empty()).then(|| self.values.iter().any(|v| v.as_slice() == secret)),
        ];
        let mut active = checks.iter().flatten();
        match self.condition {
            Condition::Or => active.any(|&c| c),
            Condition::And => {
                let v: Vec<bool> = active.copied().collect();
                !v.is_empty() && v.iter().all(|&c| c)
            }
        }
    }
}

impl Engine {
    /// Compiles every enabled rule of the set.
    pub fn new(set: &RuleSet) -> Result<Engine, RuleError> {
        set.check()?;
        let mut rules = Vec::new();
        let mut triggers = Vec::new();
        for rule in set.rules.iter().filter(|r| r.enabled) {
            let (compiled, trig) = compile_rule(rule)?;
            rules.push(compiled);
            triggers.push(trig);
        }
        let global_allow = set.allowlist.iter().map(|a| compile_allowlist(a, None)).collect::<Result<_, _>>()?;
        Ok(Engine {
            rules,
            global_allow,
            matcher: Prefilter::new(&triggers),
            placeholders: validate::PlaceholderCheck::new(),
        })
    }

    /// Builds every rule's automaton now (they are otherwise built on first
    /// use), so a rule that parses but is too big to compile shows up at
    /// load time. `rules check` and `config check` call this.
    pub fn compile_all(&self) -> Result<(), RuleError> {
        for cr in &self.rules {
            cr.regex().map_err(|e| RuleError::rule(&cr.rule.id, format!("`regex` does not compile: {e}")))?;
        }
        Ok(())
    }

    /// The built-in rule pack, compiled.
    pub fn builtin() -> Engine {
        Engine::new(&RuleSet::builtin()).expect("the built-in rule pack compiles")
    }

    /// Compiles a single rule on its own (used to check a rule's examples in isolation).
    pub fn for_rule(rule: &Rule) -> Result<Engine, RuleError> {
        let mut rule = rule.clone();
        rule.enabled = true;
        Engine::new(&RuleSet { rules: vec![rule], allowlist: Vec::new() })
    }

    /// The enabled rules, in the order findings refer to them.
    pub fn rules(&self) -> impl ExactSizeIterator<Item = &Rule> {
        self.rules.iter().map(|r| &r.rule)
    }

    pub fn rule(&self, index: usize) -> &Rule {
        &self.rules[index].rule
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub(crate) fn starts_with_prefix(&self, token: &[u8]) -> bool {
        self.matcher.starts_with_prefix(token)
    }

    /// Which keyword search is in use (`teddy`, `aho-corasick` or `none`).
    pub fn keyword_backend(&self) -> &'static str {
        self.matcher.keyword_backend()
    }

    /// Finds all secrets, sorted by position. Terminal escape sequences,
    /// backspaces and zero-width characters inside a token do not hide it.
    pub fn find(&self, haystack: &[u8]) -> Vec<Finding> {
        self.scan(haystack).findings
    }

    /// Finds on the visible projection when the text needs one, and maps
    /// the findings back to raw offsets.
    pub(crate) fn scan(&self, haystack: &[u8]) -> Scan {
        let mut windows = Vec::new();
        if self.matcher.windows(haystack, true, &mut windows) {
            let (findings, growing) = self.evaluate(haystack, windows);
            return Scan { findings, projection: None, growing };
        }
        let p = normalize::project(haystack);
        windows.clear();
        self.matcher.windows(&p.text, false, &mut windows);
        let (mut findings, growing) = self.evaluate(&p.text, windows);
        for f in &mut findings {
            (f.start, f.end) = p.raw_span(f.start, f.end);
            (f.match_start, f.match_end) = p.raw_span(f.match_start, f.match_end);
        }
        let growing = growing.map(|g| p.map.get(g).copied().unwrap_or(haystack.len()));
        Scan { findings, projection: Some(p), growing }
    }

    /// Runs each rule's regex in its windows.
    fn evaluate(&self, h: &[u8], mut windows: Vec<Window>) -> (Vec<Finding>, Option<usize>) {
        let mut found = Vec::new();
        let mut growing = None;
        if windows.is_empty() {
            return (found, growing);
        }
        order_windows(&mut windows, self.rules.len());
        windows.dedup();
        let mut caps: Vec<Option<Captures>> = Vec::new();
        caps.resize_with(self.rules.len(), || None);
        let mut i = 0;
        while i < windows.len() {
            let Window { rule, anchored, start, mut end } = windows[i];
            i += 1;
            if !anchored {
                while i < windows.len() && windows[i].rule == rule && !windows[i].anchored && windows[i].start <= end {
                    end = end.max(windows[i].end);
                    i += 1;
                }
            }
            let Ok(regex) = self.rules[rule as usize].regex() else { continue };
            let caps = caps[rule as usize].get_or_insert_with(|| regex.create_captures());
            let w = Window { rule, anchored, start, end };
            self.run_rule(rule as usize, regex, h, w, caps, &mut found, &mut growing);
        }
        (self.one_per_secret(found), growing)
    }

    /// Merges findings whose secrets overlap (one secret found by a vendor
    /// rule and a generic one) into one, named after the most specific rule
    /// and covering all of them.
    fn one_per_secret(&self, mut found: Vec<Finding>) -> Vec<Finding> {
        found.sort_unstable_by_key(|f| (f.start, std::cmp::Reverse(f.end), f.rule));
        let rank = |f: &Finding| {
            let r = &self.rules[f.rule].rule;
            (r.category != "generic", r.severity, f.end - f.start, std::cmp::Reverse(f.rule))
        };
        let mut out: Vec<Finding> = Vec::with_capacity(found.len());
        for f in found {
            match out.last_mut() {
                Some(last) if f.start < last.end => {
                    let best = if rank(&f) > rank(last) { f.rule } else { last.rule };
                    last.end = last.end.max(f.end);
                    last.match_start = last.match_start.min(f.match_start);
                    last.match_end = last.match_end.max(f.match_end);
                    last.rule = best;
                }
                _ => out.push(f),
            }
        }
        out
    }

    /// Appends the rule's findings in the window. `growing` gets the start of
    /// any multi-line match that could still grow with more lines, whether
    /// or not it is a finding yet (a key header before its body).
    #[allow(clippy::too_many_arguments)]
    fn run_rule(
        &self,
        index: usize,
        regex: &Regex,
        h: &[u8],
        w: Window,
        caps: &mut Captures,
        out: &mut Vec<Finding>,
        growing: &mut Option<usize>,
    ) {
        let cr = &self.rules[index];
        let anchored = if w.anchored { Anchored::Yes } else { Anchored::No };
        let mut input = Input::new(h).range(w.start..w.end).anchored(anchored);
        loop {
            regex.search_captures(&input, caps);
            let Some(mut m) = caps.get_match() else { break };
            let continues = h.get(input.end()).is_some_and(|&b| cr.multiline || b != b'\n');
            if m.end() == input.end() && continues && input.end() < w.start + EXTENDED_REACH {
                // The match ran into the window's end: it may be longer.
                let wider =
                    input.clone().range(m.start()..h.len().min(w.start + EXTENDED_REACH)).anchored(Anchored::Yes);
                regex.search_captures(&wider, caps);
                match caps.get_match() {
                    Some(longer) => m = longer,
                    None => break,
                }
            }
            if cr.multiline && may_continue(&h[m.end()..]) {
                *growing = Some(growing.map_or(m.start(), |g: usize| g.min(m.start())));
            }
            if let Some(secret) = caps.get_group(cr.secret_group).filter(|s| !s.is_empty()) {
                let (s, e) = snap_to_chars(h, secret.start, secret.end);
                let f =
                    Finding { rule: index, start: s, end: e, match_start: m.start().min(s), match_end: m.end().max(e) };
                if self.accept(cr, h, &f) {
                    out.push(f);
                }
            }
            if w.anchored {
                break;
            }
            let next = if m.is_empty() { m.end() + 1 } else { m.end() };
            if next > input.end() {
                break;
            }
            input.set_start(next);
        }
    }

    fn accept(&self, cr: &CompiledRule, h: &[u8], f: &Finding) -> bool {
        let secret = f.secret(h);
        if cr.allow.iter().chain(&self.global_allow).any(|a| a.allows(h, f)) {
            return false;
        }
        if let Some(min) = cr.rule.entropy
            && validate::shannon_entropy(secret) < min
        {
            return false;
        }
        if !cr.rule.validators.iter().all(|&v| validate::check(v, h, f.start, f.end, &self.placeholders)) {
            return false;
        }
        if cr.rule.placeholder_check {
            let lower = secret.to_ascii_lowercase();
            let body = cr
                .prefixes
                .iter()
                .filter(|p| lower.starts_with(p))
                .map(|p| &secret[p.len()..])
                .min_by_key(|b| b.len())
                .unwrap_or(secret);
            if self.placeholders.matches(body) {
                return false;
            }
        }
        cr.context.is_empty() || {
            let line = line_of(h, f.match_start, f.match_end);
            cr.context.iter().any(|r| r.is_match(line))
        }
    }

    /// Finds and masks every secret. Overlapping findings are masked as one
    /// span. Text without findings comes back borrowed and byte-exact.
    pub fn redact<'h>(&self, haystack: &'h [u8], style: &Style) -> Redaction<'h> {
        let Scan { findings, projection, .. } = self.scan(haystack);
        if findings.is_empty() {
            return Redaction { output: Cow::Borrowed(haystack), findings };
        }
        let mut out = Vec::with_capacity(haystack.len());
        self.write_redacted(haystack, &findings, style, projection.as_ref(), &mut out);
        Redaction { output: Cow::Owned(out), findings }
    }

    /// `haystack` with only the given findings (from [`Engine::find`] on the
    /// same haystack) masked: for callers that mask some findings and only
    /// log others.
    pub fn redact_findings(&self, haystack: &[u8], findings: &[Finding], style: &Style) -> Vec<u8> {
        let projection = normalize::needs_projection_quick(haystack).then(|| normalize::project(haystack));
        let mut out = Vec::with_capacity(haystack.len());
        self.write_redacted(haystack, findings, style, projection.as_ref(), &mut out);
        out
    }

    /// Writes `haystack` with the given findings masked.
    pub(crate) fn write_redacted(
        &self,
        h: &[u8],
        findings: &[Finding],
        style: &Style,
        projection: Option<&Projection>,
        out: &mut Vec<u8>,
    ) {
        let spans = merge_spans(findings, |f| self.rule(f.rule).id.as_str());
        let escapes = projection.map_or(&[][..], |p| &p.escapes);
        redact::apply(h, &spans, style, escapes, out);
    }
}

/// Whether a multi-line match followed by `rest` may still grow: nothing but
/// blank space and at most an unfinished line comes after it.
fn may_continue(rest: &[u8]) -> bool {
    match rest.iter().position(|b| !b.is_ascii_whitespace()) {
        None => true,
        Some(i) => memchr::memchr(b'\n', &rest[i..]).is_none(),
    }
}

/// The line(s) holding `start..end`, at most 1 KiB to each side.
fn line_of(h: &[u8], start: usize, end: usize) -> &[u8] {
    let lo = start.saturating_sub(1024);
    let hi = (end + 1024).min(h.len());
    let s = memchr::memrchr(b'\n', &h[lo..start]).map_or(lo, |i| lo + i + 1);
    let e = memchr::memchr(b'\n', &h[end..hi]).map_or(hi, |i| end + i);
    &h[s..e]
}

/// Sorted findings to disjoint spans; overlapping ones become one.
pub(crate) fn merge_spans<'a>(findings: &[Finding], rule_id: impl Fn(&Finding) -> &'a str) -> Vec<Span<'a>> {
    let mut spans: Vec<Span<'a>> = Vec::with_capacity(findings.len());
    let mut sorted: Vec<&Finding> = findings.iter().collect();
    sorted.sort_by_key(|f| (f.start, std::cmp::Reverse(f.end)));
    for f in sorted {
        match spans.last_mut() {
            Some(last) if f.start < last.end => last.end = last.end.max(f.end),
            _ => spans.push(Span { start: f.start, end: f.end, rule_id: rule_id(f) }),
        }
    }
    spans
}

/// Widens a span so it does not cut a UTF-8 character in two.
fn snap_to_chars(h: &[u8], start: usize, end: usize) -> (usize, usize) {
    let cont = |i: usize| h.get(i).is_some_and(|&b| b & 0xc0 == 0x80);
    let mut s = start;
    while s > 0 && cont(s) && start - s < 3 {
        s -= 1;
    }
    if cont(s) {
        s = start; // not UTF-8 here; leave the bytes alone
    }
    let mut e = end;
    while cont(e) && e - end < 3 {
        e += 1;
    }
    (s, e)
}

fn compile_rule(rule: &Rule) -> Result<(CompiledRule, Triggers), RuleError> {
    let id = &rule.id;
    let hir = parse_hir(&rule.regex).map_err(|e| RuleError::rule(id, format!("`regex` does not parse: {e}")))?;
    let names = capture_names(&hir);
    let group_count = names.len() + 1;
    let secret_group = match &rule.secret_group {
        Some(SecretGroup::Index(i)) if *i < group_count => *i,
        Some(SecretGroup::Index(i)) => {
            return Err(RuleError::rule(
                id,
                format!("`secret_group` is {i} but the regex has {} groups", group_count - 1),
            ));
        }
        Some(SecretGroup::Name(n)) => names
            .iter()
            .position(|g| g.as_deref() == Some(n))
            .map(|i| i + 1)
            .ok_or_else(|| RuleError::rule(id, format!("the regex has no group named `{n}`")))?,
        None => names
            .iter()
            .position(|g| g.as_deref() == Some("secret"))
            .map(|i| i + 1)
            .unwrap_or(if group_count > 1 { 1 } else { 0 }),
    };
    let props = hir.properties();
    let min_len = props.minimum_len().unwrap_or(0);
    let max_len = props.maximum_len();
    let multiline = rule.multiline;
    let bound = max_len.unwrap_or(UNBOUNDED_REACH).min(EXTENDED_REACH);
    let reach = Reach {
        back: bound.min(KEYWORD_BACK),
        forward: bound,
        anchored_forward: max_len.unwrap_or(EXTENDED_REACH).min(EXTENDED_REACH),
        multiline,
    };
    // How each prefix is looked for (at token starts or anywhere) is the matcher's choice.
    let mut prefixes: Vec<Vec<u8>> = rule.prefixes.iter().map(|p| p.as_bytes().to_vec()).collect();
    let keywords: Vec<Vec<u8>> = rule.keywords.iter().map(|k| k.as_bytes().to_vec()).collect();
    if prefixes.is_empty()
        && keywords.is_empty()
        && rule.min_digits.is_none()
        && let Some(lits) = extract_prefixes(&hir)
    {
        prefixes = lits;
    }
    let allow = rule.allowlist.iter().map(|a| compile_allowlist(a, Some(id))).collect::<Result<_, _>>()?;
    let context = rule
        .context
        .iter()
        .map(|r| {
            parse_hir(r)
                .and_then(|h| build_regex(&h))
                .map_err(|e| RuleError::rule(id, format!("context regex `{r}` does not compile: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let token_run = leading_token_run(&hir).min(min_len.max(1));
    // A run with fewer digits than any match holds cannot hold one; nor can
    // one whose digit groups add up to too many, if matches are whole groups.
    let (fewest, most) = digit_span(&hir);
    let min_digits = rule.min_digits.map(|n| n.max(fewest));
    let whole_groups = at_word_boundary(&hir, false) && at_word_boundary(&hir, true);
    let max_digits = most.filter(|_| whole_groups && min_digits.is_some());
    let compiled = CompiledRule {
        hir,
        regex: OnceLock::new(),
        secret_group,
        allow,
        context,
        prefixes: prefixes.iter().map(|p| p.to_ascii_lowercase()).collect(),
        multiline,
        rule: rule.clone(),
    };
    let triggers = Triggers {
        prefixes,
        // `(?i)` or `(?i:` at the start of the regex makes its prefixes case-insensitive.
        prefix_case_sensitive: !rule.regex.trim_start().trim_start_matches("(?:").starts_with("(?i"),
        keywords,
        min_digits,
        max_digits,
        token_run,
        reach,
    };
    Ok((compiled, triggers))
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn order_windows_sorts(
            raw in proptest::collection::vec((0u32..12, proptest::bool::ANY, 0usize..500, 0usize..50), 0..300),
        ) {
            let mut windows: Vec<Window> =
                raw.iter().map(|&(rule, anchored, start, len)| Window { rule, anchored, start, end: start + len }).collect();
            let mut expected = windows.clone();
            expected.sort_unstable();
            order_windows(&mut windows, 12);
            proptest::prop_assert_eq!(windows, expected);
        }
    }

    fn engine(toml: &str) -> Engine {
        Engine::new(&RuleSet::from_toml(toml).unwrap()).unwrap()
    }

    const GH: &str = r#"
[[rules]]
id = "gh"
description = "GitHub PAT"
category = "vcs"
prefixes = ["ghp_"]
regex = '''ghp_[A-Za-z0-9]{36}\b'''
"#;

    #[test]
    fn finds_and_masks_only_the_secret() {
        let e = engine(GH);
        let text = b"export GITHUB_TOKEN=ghp_R7kPq2LmN9xVt4Hs8WzC1bYd6FjG3aEu0K9p; echo ok";
        let r = e.redact(text, &Style::default());
        assert_eq!(r.findings.len(), 1);
        assert_eq!(std::str::from_utf8(&r.output).unwrap(), "export GITHUB_TOKEN=[REDACTED]; echo ok");
    }

    #[test]
    fn line_anchors_hold_on_every_line() {
        // `^` and `$` of a single-line rule are about its line, wherever the
        // line sits in the text.
        let e = engine(
            r#"
[[rules]]
id = "tok"
description = "a token alone on its line"
category = "generic"
keywords = ["tok_"]
regex = '''^(tok_[a-z0-9]{12})$'''
"#,
        );
        let r = e.redact(b"first\ntok_k3x9q2m7v8w1\nlast\n", &Style::default());
        assert_eq!(r.output.as_ref(), b"first\n[REDACTED]\nlast\n");
        assert!(e.find(b"x tok_k3x9q2m7v8w1\n").is_empty());
    }

    #[test]
    fn clean_text_is_borrowed() {
        let e = engine(GH);
        let r = e.redact(b"nothing here \xff\xfe", &Style::default());
        assert!(matches!(r.output, Cow::Borrowed(_)));
    }

    #[test]
    fn sees_through_colour_codes() {
        let e = engine(GH);
        let text = b"\x1b[01;31m\x1b[Kghp_R7kPq2LmN9x\x1b[m\x1b[KVt4Hs8WzC1bYd6FjG3aEu0K9p done";
        let r = e.redact(text, &Style::default());
        assert_eq!(r.output.as_ref(), b"\x1b[01;31m\x1b[K[REDACTED]\x1b[m\x1b[K done");
        let r = e.redact(text, &Style::SameWidth(b'*'));
        let expected = format!("\x1b[01;31m\x1b[K[REDACTED]*****\x1b[m\x1b[K{} done", "*".repeat(25));
        assert_eq!(r.output.as_ref(), expected.as_bytes(), "escapes stay where they were");
    }

    #[test]
    fn secret_group_and_keywords() {
        let e = engine(
            r#"
[[rules]]
id = "pw"
description = "password"
category = "generic"
keywords = ["password"]
regex = '''(?i)password\s*=\s*"([^"]{6,})"'''
"#,
        );
        let r = e.redact(br#"db_password = "Xk29vLq7mZ" # prod"#, &Style::default());
        assert_eq!(r.output.as_ref(), br#"db_password = "[REDACTED]" # prod"#);
        assert!(e.find(br#"password = "changeme""#).is_empty(), "placeholder");
    }

    #[test]
    fn bad_regex_names_rule() {
        let set =
            RuleSet::from_toml("[[rules]]\nid = \"broken\"\ndescription = \"x\"\ncategory = \"c\"\nregex = 'a(b'\n")
                .unwrap();
        let err = Engine::new(&set).unwrap_err();
        assert_eq!(err.rule_id(), Some("broken"));
        assert!(err.to_string().contains("regex"), "{err}");
    }

    #[test]
    fn allowlist_values_and_stopwords() {
        let e = engine(
            r#"
[[rules]]
id = "aws"
description = "AWS key id"
category = "cloud"
prefixes = ["AKIA"]
regex = '''AKIA[A-Z2-7]{16}'''
[rules.allowlist]
values = ["AKIAIOSFODNN7EXAMPLE"]
"#,
        );
        assert!(e.find(b"id=AKIAIOSFODNN7EXAMPLE").is_empty());
        assert_eq!(e.find(b"id=AKIAZ7K3ZQ5WQXNMJ2PA").len(), 1);
    }

    #[test]
    fn rules_without_triggers_use_extracted_literals() {
        let e = engine("[[rules]]\nid = \"x\"\ndescription = \"x\"\ncategory = \"c\"\nregex = 'tok_[a-z0-9]{20}'\n");
        assert_eq!(e.find(b"a tok_q8zk2m4xw7r1p9tj5vb3 b").len(), 1);
    }

    #[test]
    fn digit_spans_and_word_boundaries() {
        let span = |re: &str| digit_span(&parse_hir(re).unwrap());
        assert_eq!(span(r"\b[1-8]\d{5}(?:19|20)\d{2}\d{7}[\dXx]\b"), (17, Some(18)));
        assert_eq!(
            span(r"\b(?:4\d{15}|3[47]\d\d[ -]?\d{6}[ -]?\d{5}|62\d\d(?:[ -]?\d{4}){3}(?:[ -]?\d{3})?)\b"),
            (15, Some(19))
        );
        assert_eq!(span(r"id=\d+"), (1, None));
        assert_eq!(span(r"[a-z]{3}"), (0, Some(0)));
        let bounded = |re: &str| {
            let h = parse_hir(re).unwrap();
            (at_word_boundary(&h, false), at_word_boundary(&h, true))
        };
        assert_eq!(bounded(r"\b(?:4\d{15}|5\d{15})\b"), (true, true));
        assert_eq!(bounded(r"(?:\+86[ -]?|\b)(1\d{10})\b"), (false, true));
        assert_eq!(bounded(r"\d{11}"), (false, false));
    }

    #[test]
    fn multibyte_edges_stay_whole() {
        let e = engine(
            "[[rules]]\nid = \"x\"\ndescription = \"x\"\ncategory = \"c\"\nkeywords = [\"key\"]\nregex = 'key=(\\S+)'\nplaceholder_check = false\n",
        );
        let text = "key=ab\u{00e9}cd rest".as_bytes();
        let r = e.redact(text, &Style::default());
        assert_eq!(std::str::from_utf8(&r.output).unwrap(), "key=[REDACTED] rest");
    }
}
