//! The matcher: finds where rules must run, without running them.
//!
//! A rule is triggered in one of four ways, and each has its own fast path:
//!
//! * **prefixes** (`ghp_`, `sk-ant-`, `AKIA`): looked up only where a token
//!   starts and the token is long enough to be a secret. Token starts come
//!   from the byte-class masks of [`crate::classify`], so the bulk of the
//!   text is skipped 64 bytes at a time; each start costs one or two steps
//!   of an anchored Aho-Corasick DFA over the prefixes. The few prefixes led
//!   by a digit (`1//`) are found like keywords, then held to a token start.
//! * **keywords** (`password`, `-----BEGIN`): found anywhere,
//!   case-insensitively, by Teddy (SIMD) over an ASCII-case-folded copy of
//!   the text using one short, rare "seed" per keyword; the full keyword is
//!   then verified. With too many keywords for Teddy, an Aho-Corasick DFA
//!   takes over.
//! * **digit runs** (resident IDs, phone and card numbers): runs of digits,
//!   possibly grouped by spaces or dashes, found from the same masks.
//! * rules with none of these run everywhere.
//!
//! The output is a list of [`Window`]s: byte ranges in which a rule's regex
//! must be evaluated. Nothing here decides what is a secret.

use std::sync::OnceLock;

use aho_corasick::automaton::Automaton;
use aho_corasick::{AhoCorasick, AhoCorasickKind, Anchored, MatchKind, StartKind, dfa::DFA, packed};

use crate::classify::{BLOCK, BlockWalker, ByteSet, Classifier, Runs, Simd, from_ahead, from_behind, wide};
use crate::normalize;

/// A byte range of the haystack in which one rule's regex must run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Window {
    pub rule: u32,
    /// Whether the match must start at `start` (a token start with a prefix).
    pub anchored: bool,
    pub start: usize,
    pub end: usize,
}

/// Finds the windows that need a regex evaluation. Implementations must
/// report every place where a rule could match (a miss here is a leak);
/// extra windows only cost time.
pub(crate) trait Matcher: Send + Sync {
    /// Appends the windows to `out`. With `check_visible`, returns false
    /// (and leaves `out` incomplete) as soon as the text turns out to hold
    /// escape sequences, backspaces or invisible characters: it must then be
    /// projected (see `normalize`) and matched again.
    fn windows(&self, haystack: &[u8], check_visible: bool, out: &mut Vec<Window>) -> bool;
}

/// How far around a trigger a rule's match can lie. A match that reaches
/// the end of its window is searched again in a longer one, so for rules
/// without an upper bound these are search distances, not limits.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reach {
    /// Bytes before a keyword the match may start at.
    pub back: usize,
    /// Bytes after the trigger the match may end at.
    pub forward: usize,
    /// The same for a match anchored at a prefix: an anchored search stops
    /// where the match does, so this can be generous (long tokens).
    pub anchored_forward: usize,
    /// Whether the match may cross line breaks.
    pub multiline: bool,
}

/// What triggers one rule, as the matcher needs it.
#[derive(Clone, Debug)]
pub(crate) struct Triggers {
    /// Literal starts of every match. Led by a letter, they are looked up at
    /// token starts; led by a digit, found by the keyword search and held
    /// to token starts; led by punctuation (`://`), found anywhere.
    pub prefixes: Vec<Vec<u8>>,
    /// Whether prefixes must match in case too (the regex starts without `(?i)`).
    pub prefix_case_sensitive: bool,
    pub keywords: Vec<Vec<u8>>,
    pub min_digits: Option<usize>,
    /// Most digits a match holds, when every match also begins and ends at
    /// a word boundary (so it is made of whole digit groups of the run).
    pub max_digits: Option<usize>,
    /// Every match starts with at least this many token bytes: shorter
    /// tokens cannot hold one.
    pub token_run: usize,
    pub reach: Reach,
}

/// Teddy stays fast up to a few dozen seeds; past that the DFA wins.
const TEDDY_MAX_SEEDS: usize = 40;
/// Slim Teddy's eight buckets hold this many seeds well.
const SLIM_TEDDY_SEEDS: usize = 16;
/// Text is case-folded for Teddy in segments of this size.
const FOLD_SEGMENT: usize = 64 * 1024;
/// The shortest token length checked for prefixes, whatever the rules say.
const MIN_TOKEN_FLOOR: usize = 2;
/// Past this many bytes without a break, a token run is a blob (base64
/// image data, a hex dump): only its start is looked at for prefixes.
const LONG_RUN: usize = 1024;

/// The pure-Rust matcher described in the module documentation.
pub(crate) struct Prefilter {
    classifier: Classifier,
    reach: Vec<Reach>,
    /// Every prefix, whichever way it is found.
    armed_prefixes: Vec<Vec<u8>>,
    /// An anchored, case-insensitive automaton of `armed_prefixes` that
    /// answers [`Prefilter::starts_with_prefix`]. Only terminals ask, so
    /// it is built on first use: it would be a fifth of a filter's start-up.
    armed: OnceLock<Option<DFA>>,
    prefixes: Option<PrefixIndex>,
    keywords: Option<KeywordIndex>,
    digits: Option<DigitIndex>,
    always: Vec<u32>,
}

struct PrefixIndex {
    /// Rejects, with a few loads and no branch, the many token starts
    /// (`grad_norm`, `tokenizers`, `user=`) that begin no prefix, before the
    /// automaton (too big to stay in cache) walks.
    starts: StartIndex,
    patterns: Vec<PrefixPattern>,
    /// [`head`] of each pattern.
    heads: Vec<(u64, u64)>,
    /// Tokens shorter than this cannot hold any prefix rule's match.
    min_token: Runs,
    min_token_len: usize,
    /// The longest token run any prefix rule needs: tokens are measured no further.
    longest_run: usize,
}

struct PrefixPattern {
    literal: Vec<u8>,
    /// (rule, shortest token run of its matches, case-sensitive)
    rules: Vec<(u32, usize, bool)>,
}

struct KeywordIndex {
    keywords: Vec<Keyword>,
    search: KeywordSearch,
    longest: usize,
    /// The longest token run any of its prefix rules needs.
    longest_prefix_run: usize,
}

struct Keyword {
    /// Lower-cased.
    literal: Vec<u8>,
    /// Rules it triggers wherever it is.
    rules: Vec<u32>,
    /// Rules it triggers as a prefix: at a token start only, like a
    /// [`PrefixPattern`]'s rules.
    prefix_rules: Vec<TokenStartRule>,
}

struct TokenStartRule {
    rule: u32,
    /// Shortest token run of the rule's matches.
    min_run: usize,
    /// The literal as written, if it must match in case too.
    case_sensitive: Option<Vec<u8>>,
}

/// What one keyword literal triggers.
enum KeywordHit {
    Anywhere(u32),
    AtTokenStart(TokenStartRule),
}

enum KeywordSearch {
    /// Teddy over case-folded text; per seed pattern: (keyword, offset of the seed in it).
    Teddy { searcher: packed::Searcher, seeds: Vec<Vec<(u32, usize)>> },
    /// Case-insensitive overlapping Aho-Corasick over the raw text.
    Automaton(AhoCorasick),
}

struct DigitIndex {
    rules: Vec<DigitRule>,
    /// Bytes in the shortest run any rule needs (digits and separators).
    min_run: Runs,
}

struct DigitRule {
    rule: u32,
    min: usize,
    max: Option<usize>,
}

/// Digit groups of a run beyond this many are not told apart.
const MAX_GROUPS: usize = 16;

impl Prefilter {
    pub fn new(rules: &[Triggers]) -> Prefilter {
        let reach = rules.iter().map(|t| t.reach).collect();
        let mut prefix_lits: Vec<(Vec<u8>, (u32, usize, bool))> = Vec::new();
        let mut keyword_lits: Vec<(Vec<u8>, KeywordHit)> = Vec::new();
        let mut digits = Vec::new();
        let mut min_digits = u32::MAX;
        let mut min_token = usize::MAX;
        let mut always = Vec::new();
        let mut armed = Vec::new();
        for (i, t) in rules.iter().enumerate() {
            let i = i as u32;
            for p in &t.prefixes {
                // A match starts with the prefix, so its token is at least as long as the prefix's.
                let run = t.token_run.max(p.iter().take_while(|&&b| is_token_byte(b)).count());
                if p[0].is_ascii_alphabetic() {
                    prefix_lits.push((p.clone(), (i, run, t.prefix_case_sensitive)));
                    min_token = min_token.min(run);
                } else if p[0].is_ascii_digit() {
                    // Numbers are everywhere in tensor prints and logs: a
                    // digit-led prefix (`1//`, `24.`) is found by the
                    // keyword search, rarely, instead of being looked up at
                    // every number that starts like it.
                    let case_sensitive = t.prefix_case_sensitive.then(|| p.clone());
                    let hit = KeywordHit::AtTokenStart(TokenStartRule { rule: i, min_run: run, case_sensitive });
                    keyword_lits.push((p.to_ascii_lowercase(), hit));
                } else {
                    // Punctuation starts no token (`://`): found anywhere.
                    keyword_lits.push((p.to_ascii_lowercase(), KeywordHit::Anywhere(i)));
                    continue;
                }
                armed.push(p.clone());
            }
            for k in &t.keywords {
                keyword_lits.push((k.to_ascii_lowercase(), KeywordHit::Anywhere(i)));
            }
            if let Some(n) = t.min_digits {
                digits.push(DigitRule { rule: i, min: n, max: t.max_digits });
                min_digits = min_digits.min(n as u32);
            }
            if t.prefixes.is_empty() && t.keywords.is_empty() && t.min_digits.is_none() {
                always.push(i);
            }
        }
        let prefixes = PrefixIndex::new(prefix_lits, min_token);
        let (first, second) = prefixes.as_ref().map_or_else(Default::default, PrefixIndex::byte_sets);
        Prefilter {
            classifier: Classifier::with_sets(first, second),
            reach,
            armed_prefixes: armed,
            armed: OnceLock::new(),
            prefixes,
            keywords: KeywordIndex::new(keyword_lits),
            digits: (!digits.is_empty())
                .then(|| DigitIndex { rules: digits, min_run: Runs::new(min_digits.clamp(1, 64)) }),
            always,
        }
    }

    /// The keyword search backend in use, for diagnostics and benchmarks.
    pub fn keyword_backend(&self) -> &'static str {
        match &self.keywords {
            None => "none",
            Some(k) => match k.search {
                KeywordSearch::Teddy { .. } => "teddy",
                KeywordSearch::Automaton(_) => "aho-corasick",
            },
        }
    }

    /// Whether `token` begins with a known secret prefix (case aside).
    pub fn starts_with_prefix(&self, token: &[u8]) -> bool {
        let armed = self.armed.get_or_init(|| {
            (!self.armed_prefixes.is_empty()).then(|| {
                DFA::builder()
                    .ascii_case_insensitive(true)
                    .match_kind(MatchKind::Standard)
                    .start_kind(StartKind::Anchored)
                    .build(&self.armed_prefixes)
                    .expect("a DFA over a few hundred short literals always builds")
            })
        });
        let Some(dfa) = armed else {
            return false;
        };
        let Ok(mut sid) = dfa.start_state(Anchored::Yes) else {
            return false;
        };
        for &b in token {
            sid = dfa.next_state(Anchored::Yes, sid, b);
            if dfa.is_dead(sid) {
                return false;
            }
            if dfa.is_match(sid) {
                return true;
            }
        }
        false
    }

    fn push(&self, h: &[u8], out: &mut Vec<Window>, rule: u32, hit_start: usize, hit_end: usize, anchored: bool) {
        let reach = self.reach[rule as usize];
        let (back, forward) = if anchored { (0, reach.anchored_forward) } else { (reach.back, reach.forward) };
        let mut start = hit_start.saturating_sub(back);
        let mut end = (hit_end + forward).min(h.len());
        if !reach.multiline {
            if let Some(nl) = memchr::memrchr(b'\n', &h[start..hit_start]) {
                start += nl + 1;
            }
            if let Some(nl) = memchr::memchr(b'\n', &h[hit_end..end]) {
                end = hit_end + nl;
            }
        }
        out.push(Window { rule, anchored, start, end });
    }

    /// Returns false when `check_visible` is set and the text needs projecting.
    fn scan_blocks(&self, h: &[u8], check_visible: bool, out: &mut Vec<Window>) -> bool {
        #[cfg(target_arch = "x86_64")]
        match self.classifier.simd() {
            // SAFETY: the classifier found these features at run time.
            Simd::Avx512 => return unsafe { self.scan_blocks_avx512(h, check_visible, out) },
            Simd::Avx2 => return unsafe { self.scan_blocks_avx2(h, check_visible, out) },
            Simd::Baseline => {}
        }
        self.scan_blocks_with::<{ Simd::Baseline as u8 }>(h, check_visible, out)
    }

    /// The walk compiled for AVX2, so that the classifier inlines into it.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,bmi1,bmi2,lzcnt,popcnt")]
    unsafe fn scan_blocks_avx2(&self, h: &[u8], check_visible: bool, out: &mut Vec<Window>) -> bool {
        self.scan_blocks_with::<{ Simd::Avx2 as u8 }>(h, check_visible, out)
    }

    /// The walk compiled for AVX-512BW.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512bw,avx2,bmi1,bmi2,lzcnt,popcnt")]
    unsafe fn scan_blocks_avx512(&self, h: &[u8], check_visible: bool, out: &mut Vec<Window>) -> bool {
        self.scan_blocks_with::<{ Simd::Avx512 as u8 }>(h, check_visible, out)
    }

    #[inline(always)]
    fn scan_blocks_with<const SIMD: u8>(&self, h: &[u8], check_visible: bool, out: &mut Vec<Window>) -> bool {
        let mut w = BlockWalker::<SIMD>::new(self.classifier, h);
        // Length of the token run reaching the end of the previous block.
        let mut run = 0usize;
        while w.advance() {
            let (p, c, n) = (w.prev(), w.cur(), w.next());
            if check_visible && c.special != 0 {
                let mut m = c.special;
                while m != 0 {
                    if normalize::changes_at(h, w.at + m.trailing_zeros() as usize) {
                        return false;
                    }
                    m &= m - 1;
                }
            }
            let inside_blob = c.token == u64::MAX && run >= LONG_RUN;
            run = if c.token == u64::MAX { run + BLOCK } else { c.token.leading_ones() as usize };
            if let Some(pi) = self.prefixes.as_ref().filter(|_| !inside_blob) {
                let alnum = c.alnum;
                let mut starts = alnum & !from_behind(p.alnum, alnum, 1);
                // Starts after an escaped newline (`\nsk-...`) or a percent-encoding (`%3Dsk-...`).
                starts |= alnum & from_behind(p.backslash, c.backslash, 2);
                starts |= alnum & from_behind(p.percent, c.percent, 3);
                // Whose first two bytes are those of some prefix.
                starts &= c.first & from_ahead(c.second, n.second, 1);
                if starts != 0 {
                    if pi.min_token_len > MIN_TOKEN_FLOOR {
                        starts &= pi.min_token.of(wide(c.token, n.token)) as u64;
                    }
                    let mut cand = pi.starts.filter(h, w.at, starts);
                    while cand != 0 {
                        let at = w.at + cand.trailing_zeros() as usize;
                        cand &= cand - 1;
                        self.prefix_at(pi, h, at, out);
                    }
                }
            }
            if let Some(di) = &self.digits {
                if c.digit == 0 {
                    continue;
                }
                let grouped = |prev: u64, cur: &crate::classify::Masks, next: u64| {
                    cur.digit | (cur.sep & from_behind(prev, cur.digit, 1) & from_ahead(cur.digit, next, 1))
                };
                let ds = grouped(p.digit, c, n.digit);
                let ds_next = grouped(c.digit, n, 0);
                let run_start = c.digit
                    & !(from_behind(p.digit, c.digit, 1)
                        | (from_behind(p.sep, c.sep, 1) & from_behind(p.digit, c.digit, 2)));
                if run_start == 0 {
                    continue;
                }
                let mut cand = di.min_run.at(wide(ds, ds_next), run_start);
                while cand != 0 {
                    let at = w.at + cand.trailing_zeros() as usize;
                    cand &= cand - 1;
                    self.digits_at(di, h, at, out);
                }
            }
        }
        true
    }

    fn prefix_at(&self, pi: &PrefixIndex, h: &[u8], at: usize, out: &mut Vec<Window>) {
        let mut run: Option<usize> = None;
        let raw = eight_at(h, at);
        let eight = raw | FOLD8;
        for id in pi.starts.candidates(raw as u32) {
            let (head, mask) = pi.heads[id as usize];
            if eight & mask != head {
                continue;
            }
            let pat = &pi.patterns[id as usize];
            let len = pat.literal.len();
            let Some(text) = h.get(at..at + len) else { continue };
            if !text.eq_ignore_ascii_case(&pat.literal) {
                continue;
            }
            let exact = text == &pat.literal[..];
            let run = *run.get_or_insert_with(|| token_run(h, at, pi.longest_run));
            for &(r, min_run, case_sensitive) in &pat.rules {
                if run >= min_run && (exact || !case_sensitive) {
                    self.push(h, out, r, at, at + len, true);
                }
            }
        }
    }

    fn digits_at(&self, di: &DigitIndex, h: &[u8], at: usize, out: &mut Vec<Window>) {
        // The run: digits, and single spaces or dashes between digits.
        let mut groups = [0usize; MAX_GROUPS];
        let mut n_groups = 0;
        let mut digits = 0;
        let mut end = at;
        while end < h.len() {
            if h[end].is_ascii_digit() {
                digits += 1;
                if n_groups < MAX_GROUPS {
                    groups[n_groups] += 1;
                }
            } else if matches!(h[end], b' ' | b'-') && h.get(end + 1).is_some_and(u8::is_ascii_digit) {
                n_groups += 1;
            } else {
                break;
            }
            end += 1;
        }
        let groups = &groups[..(n_groups + 1).min(MAX_GROUPS)];
        let before = at.checked_sub(1).map(|i| h[i]);
        let after = h.get(end).copied();
        let digit_at = |i: Option<usize>| i.and_then(|i| h.get(i)).is_some_and(u8::is_ascii_digit);
        // Identifiers (`user13812345678`) and the two halves of a decimal number are not numbers of their own.
        let in_identifier = before.is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            || after.is_some_and(|b| (b.is_ascii_alphabetic() && b != b'X' && b != b'x') || b == b'_');
        let decimal = (matches!(before, Some(b'.' | b',')) && digit_at(at.checked_sub(2)))
            || (matches!(after, Some(b'.' | b',')) && digit_at(Some(end + 1)));
        if in_identifier || decimal {
            return;
        }
        // One byte more so a trailing check character (`...002X`) is in range.
        let end = (end + 1).min(h.len());
        for r in &di.rules {
            if digits >= r.min && r.max.is_none_or(|max| n_groups >= MAX_GROUPS || some_groups_sum(groups, r.min, max))
            {
                out.push(Window { rule: r.rule, anchored: false, start: at, end });
            }
        }
    }
}

/// Whether some consecutive groups hold between `min` and `max` digits.
fn some_groups_sum(groups: &[usize], min: usize, max: usize) -> bool {
    (0..groups.len()).any(|i| {
        let mut sum = 0;
        groups[i..].iter().any(|&g| {
            sum += g;
            (min..=max).contains(&sum)
        })
    })
}

impl Matcher for Prefilter {
    fn windows(&self, h: &[u8], check_visible: bool, out: &mut Vec<Window>) -> bool {
        if h.is_empty() {
            return true;
        }
        if self.prefixes.is_some() || self.digits.is_some() {
            if !self.scan_blocks(h, check_visible, out) {
                return false;
            }
        } else if check_visible && normalize::needs_projection(self.classifier, h) {
            return false;
        }
        if let Some(ki) = &self.keywords {
            ki.find(h, |kw, start| {
                let k = &ki.keywords[kw as usize];
                let end = start + k.literal.len();
                for &r in &k.rules {
                    self.push(h, out, r, start, end, false);
                }
                if !k.prefix_rules.is_empty() && is_token_start(h, start) {
                    let run = token_run(h, start, ki.longest_prefix_run);
                    for p in &k.prefix_rules {
                        if run >= p.min_run && p.case_sensitive.as_ref().is_none_or(|lit| h[start..end] == lit[..]) {
                            self.push(h, out, p.rule, start, end, true);
                        }
                    }
                }
            });
        }
        for &r in &self.always {
            out.push(Window { rule: r, anchored: false, start: 0, end: h.len() });
        }
        true
    }
}

impl PrefixIndex {
    fn new(lits: Vec<(Vec<u8>, (u32, usize, bool))>, min_token: usize) -> Option<PrefixIndex> {
        if lits.is_empty() {
            return None;
        }
        let mut patterns: Vec<PrefixPattern> = Vec::new();
        for (literal, rule) in lits {
            match patterns.iter_mut().find(|p| p.literal == literal) {
                Some(p) => p.rules.push(rule),
                None => patterns.push(PrefixPattern { literal, rules: vec![rule] }),
            }
        }
        let min_token_len = min_token.clamp(MIN_TOKEN_FLOOR, BLOCK);
        let min_token = Runs::new(min_token_len as u32);
        let starts = StartIndex::new(&patterns);
        let longest_run = patterns.iter().flat_map(|p| p.rules.iter().map(|r| r.1)).max().unwrap_or(0);
        Some(PrefixIndex {
            starts,
            heads: patterns.iter().map(|p| head(&p.literal)).collect(),
            patterns,
            min_token,
            min_token_len,
            longest_run,
        })
    }

    /// The bytes prefixes start with, and their second bytes, in every
    /// case they may match in.
    fn byte_sets(&self) -> (ByteSet, ByteSet) {
        let (mut first, mut second) = (ByteSet::default(), ByteSet::default());
        for p in &self.patterns {
            let any_case = p.rules.iter().any(|r| !r.2);
            for (set, b) in [(&mut first, p.literal[0]), (&mut second, p.literal[1])] {
                set.insert(b);
                if any_case {
                    set.insert(b.to_ascii_lowercase());
                    set.insert(b.to_ascii_uppercase());
                }
            }
        }
        (first, second)
    }
}

/// Prefixes by their first bytes: by their first four folded to lower
/// case (a three-byte prefix of a token rule with each token byte that may
/// follow it), or, for two-byte prefixes, by their exact two (every case
/// variant, if they match in any case). A Bloom-style bit table and a pair
/// table reject most token starts with two loads; the patterns behind a key
/// are then compared in full.
struct StartIndex {
    bits: Box<[u64; START_BITS / 64]>,
    pairs: Box<[u64; 1 << 10]>,
    four: KeyTable,
    two: KeyTable,
}

const START_BITS: usize = 1 << 16;
/// Folds the four ASCII letters of a little-endian `u32` to lower case
/// (and maps other bytes consistently, which is all a key needs).
const FOLD: u32 = 0x2020_2020;

#[inline(always)]
fn start_slot(folded: u32) -> usize {
    (folded as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) as usize >> (usize::BITS - START_BITS.trailing_zeros())
}

#[inline(always)]
fn bit(table: &[u64], i: usize) -> u64 {
    table[i / 64] >> (i % 64) & 1
}

const FOLD8: u64 = 0x2020_2020_2020_2020;

/// The eight bytes at `at` as a little-endian `u64`, zero-padded at the end.
#[inline(always)]
fn eight_at(h: &[u8], at: usize) -> u64 {
    match h.get(at..at + 8) {
        Some(b) => u64::from_le_bytes(b.try_into().expect("eight bytes")),
        None => {
            let mut eight = [0u8; 8];
            eight[..h.len() - at].copy_from_slice(&h[at..]);
            u64::from_le_bytes(eight)
        }
    }
}

/// The first (up to) eight bytes of `literal` folded like [`FOLD8`] folds
/// text, and the mask of the bytes it has: a one-compare reject.
fn head(literal: &[u8]) -> (u64, u64) {
    let n = literal.len().min(8);
    let mut eight = [0u8; 8];
    eight[..n].copy_from_slice(&literal[..n]);
    let mask = if n == 8 { u64::MAX } else { (1u64 << (8 * n)) - 1 };
    (u64::from_le_bytes(eight) & mask | FOLD8 & mask, mask)
}

/// The four bytes at `at` as a little-endian `u32`, zero-padded at the end.
#[inline(always)]
fn four_at(h: &[u8], at: usize) -> u32 {
    match h.get(at..at + 4) {
        Some(b) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        None => {
            let mut four = [0u8; 4];
            four[..h.len() - at].copy_from_slice(&h[at..]);
            u32::from_le_bytes(four)
        }
    }
}

impl StartIndex {
    fn new(patterns: &[PrefixPattern]) -> StartIndex {
        let (mut four, mut two) = (Vec::new(), Vec::new());
        for (id, p) in patterns.iter().enumerate() {
            let id = id as u32;
            let lit = &p.literal;
            let mut bytes = [0u8; 4];
            let n = lit.len().min(4);
            bytes[..n].copy_from_slice(&lit[..n]);
            let x = u32::from_le_bytes(bytes) | FOLD;
            let token_follows = n == 3 && p.rules.iter().all(|r| r.1 > 3);
            if n == 4 {
                four.push((x, id));
            } else if token_follows {
                for b in (0..=u8::MAX).filter(|&b| is_token_byte(b)) {
                    four.push((x & 0xff_ffff | u32::from(b | 0x20) << 24, id));
                }
            } else {
                let any_case = p.rules.iter().any(|r| !r.2);
                let cases = |b: u8| if any_case { [b.to_ascii_lowercase(), b.to_ascii_uppercase()] } else { [b, b] };
                for a in cases(lit[0]) {
                    for b in cases(lit[1]) {
                        two.push((u32::from(u16::from_le_bytes([a, b])), id));
                    }
                }
            }
        }
        let mut bits = Box::new([0; START_BITS / 64]);
        for &(key, _) in &four {
            let i = start_slot(key);
            bits[i / 64] |= 1 << (i % 64);
        }
        let mut pairs = Box::new([0; 1 << 10]);
        for &(key, _) in &two {
            pairs[key as usize / 64] |= 1 << (key % 64);
        }
        StartIndex { bits, pairs, four: KeyTable::new(four), two: KeyTable::new(two) }
    }

    /// The token starts among `cand` (bits of the block at `at`) that may begin a prefix.
    #[inline]
    fn filter(&self, h: &[u8], at: usize, mut cand: u64) -> u64 {
        let mut keep = 0;
        while cand != 0 {
            let i = cand.trailing_zeros();
            cand &= cand - 1;
            let x = four_at(h, at + i as usize);
            keep |= (bit(&self.bits[..], start_slot(x | FOLD)) | bit(&self.pairs[..], (x & 0xffff) as usize)) << i;
        }
        keep
    }

    /// The patterns that may start with the four bytes `x`.
    #[inline]
    fn candidates(&self, x: u32) -> impl Iterator<Item = u32> + '_ {
        self.four.get(x | FOLD).iter().chain(self.two.get(x & 0xffff)).copied()
    }
}

/// A small open-addressing map from a `u32` key to a list of pattern ids.
struct KeyTable {
    /// (key, start, end) of the key's ids; `end == 0` marks a free slot.
    slots: Vec<(u32, u32, u32)>,
    ids: Vec<u32>,
}

impl KeyTable {
    fn new(mut entries: Vec<(u32, u32)>) -> KeyTable {
        entries.sort_unstable();
        entries.dedup();
        let keys = entries.chunk_by(|a, b| a.0 == b.0).count();
        let mut slots = vec![(0, 0, 0); (2 * keys).next_power_of_two().max(8)];
        let mut ids = Vec::with_capacity(entries.len());
        for group in entries.chunk_by(|a, b| a.0 == b.0) {
            let start = ids.len() as u32;
            ids.extend(group.iter().map(|e| e.1));
            let mut i = Self::slot(group[0].0, slots.len());
            while slots[i].2 != 0 {
                i = (i + 1) % slots.len();
            }
            slots[i] = (group[0].0, start, ids.len() as u32);
        }
        KeyTable { slots, ids }
    }

    #[inline(always)]
    fn slot(key: u32, len: usize) -> usize {
        ((key as u64).wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as usize & (len - 1)
    }

    #[inline]
    fn get(&self, key: u32) -> &[u32] {
        let mut i = Self::slot(key, self.slots.len());
        loop {
            let (k, start, end) = self.slots[i];
            if end == 0 {
                return &[];
            }
            if k == key {
                return &self.ids[start as usize..end as usize];
            }
            i = (i + 1) % self.slots.len();
        }
    }
}

/// Length of the token run at `at`, counted up to `limit`.
fn token_run(h: &[u8], at: usize, limit: usize) -> usize {
    h[at..].iter().take(limit).take_while(|&&b| is_token_byte(b)).count()
}

/// Whether a token may start at `at`, as the block walk sees starts: after
/// a byte that is not alphanumeric, an escape (`\n`) or a percent-encoding (`%3D`).
fn is_token_start(h: &[u8], at: usize) -> bool {
    let back = |n: usize| at.checked_sub(n).map(|i| h[i]);
    !back(1).is_some_and(|b| b.is_ascii_alphanumeric()) || back(2) == Some(b'\\') || back(3) == Some(b'%')
}

/// Bytes the classifier counts as part of a token (see `classify::Masks::token`).
pub(crate) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.+/".contains(&b)
}

impl KeywordIndex {
    fn new(lits: Vec<(Vec<u8>, KeywordHit)>) -> Option<KeywordIndex> {
        if lits.is_empty() {
            return None;
        }
        let mut keywords: Vec<Keyword> = Vec::new();
        for (literal, hit) in lits {
            let k = match keywords.iter().position(|k| k.literal == literal) {
                Some(i) => &mut keywords[i],
                None => {
                    keywords.push(Keyword { literal, rules: Vec::new(), prefix_rules: Vec::new() });
                    keywords.last_mut().expect("just pushed")
                }
            };
            match hit {
                KeywordHit::Anywhere(rule) if !k.rules.contains(&rule) => k.rules.push(rule),
                KeywordHit::Anywhere(_) => {}
                KeywordHit::AtTokenStart(p) => k.prefix_rules.push(p),
            }
        }
        let longest = keywords.iter().map(|k| k.literal.len()).max().unwrap_or(0);
        let longest_prefix_run =
            keywords.iter().flat_map(|k| k.prefix_rules.iter().map(|p| p.min_run)).max().unwrap_or(0);
        let mut seed_pats: Vec<Vec<u8>> = Vec::new();
        let mut seeds: Vec<Vec<(u32, usize)>> = Vec::new();
        // Shorter keywords first, so a longer one (`passport`) reuses the
        // seed of one it contains (`pass`) instead of adding its own.
        let mut order: Vec<usize> = (0..keywords.len()).collect();
        order.sort_by_key(|&k| keywords[k].literal.len());
        for k in order {
            let lit = &keywords[k].literal;
            let folded: Vec<u8> = lit.iter().map(|b| b | 0x20).collect();
            let shared = seed_pats
                .iter()
                .enumerate()
                .find_map(|(i, s)| folded.windows(s.len()).position(|w| w == s.as_slice()).map(|off| (i, off)));
            match shared {
                Some((i, off)) => seeds[i].push((k as u32, off)),
                None => {
                    let (off, seed) = rarest_window(lit);
                    seed_pats.push(seed.iter().map(|b| b | 0x20).collect());
                    seeds.push(vec![(k as u32, off)]);
                }
            }
        }
        let teddy = |fat: Option<bool>| {
            let mut config = packed::Config::new();
            config.match_kind(packed::MatchKind::LeftmostFirst).only_teddy_fat(fat);
            config.builder().extend(&seed_pats).build()
        };
        // Past two seeds per bucket of Slim Teddy, the 16 buckets of Fat
        // Teddy cut false candidates by more than its half-width steps cost
        // (digits and dots in seeds are common in output): measured 20 ms
        // against 16 ms per 100 MB of notebook output with 19 seeds.
        let teddy = (seed_pats.len() <= TEDDY_MAX_SEEDS)
            .then(|| (seed_pats.len() > SLIM_TEDDY_SEEDS).then(|| teddy(Some(true))).flatten().or_else(|| teddy(None)))
            .flatten();
        let search = match teddy {
            Some(searcher) => KeywordSearch::Teddy { searcher, seeds },
            None => KeywordSearch::Automaton(
                AhoCorasick::builder()
                    .kind(Some(AhoCorasickKind::DFA))
                    .ascii_case_insensitive(true)
                    .match_kind(MatchKind::Standard)
                    .build(keywords.iter().map(|k| &k.literal))
                    .expect("an Aho-Corasick automaton over the keywords always builds"),
            ),
        };
        Some(KeywordIndex { keywords, search, longest, longest_prefix_run })
    }

    /// Calls `hit(keyword, start)` for every occurrence of every keyword.
    fn find(&self, h: &[u8], mut hit: impl FnMut(u32, usize)) {
        match &self.search {
            KeywordSearch::Automaton(ac) => {
                for m in ac.find_overlapping_iter(h) {
                    hit(m.pattern().as_u32(), m.start());
                }
            }
            KeywordSearch::Teddy { searcher, seeds } => {
                let overlap = self.longest.saturating_sub(1);
                let mut folded = Vec::with_capacity(FOLD_SEGMENT.min(h.len()) + overlap);
                let mut seg = 0;
                while seg < h.len() {
                    let seg_end = (seg + FOLD_SEGMENT + overlap).min(h.len());
                    folded.clear();
                    folded.extend(h[seg..seg_end].iter().map(|b| b | 0x20));
                    // Seeds starting in the overlap belong to the next segment.
                    let own_end = (seg + FOLD_SEGMENT).min(h.len()) - seg;
                    let mut from = 0;
                    while let Some(m) = searcher.find_in(&folded, aho_corasick::Span { start: from, end: folded.len() })
                    {
                        if m.start() >= own_end {
                            break;
                        }
                        from = m.start() + 1;
                        for &(kw, off) in &seeds[m.pattern().as_usize()] {
                            let pos = seg + m.start();
                            let Some(start) = pos.checked_sub(off) else {
                                continue;
                            };
                            let lit = &self.keywords[kw as usize].literal;
                            if h.get(start..start + lit.len()).is_some_and(|s| s.eq_ignore_ascii_case(lit)) {
                                hit(kw, start);
                            }
                        }
                    }
                    seg += FOLD_SEGMENT;
                }
            }
        }
    }
}

/// How often a byte shows up in program output; lower is rarer.
fn byte_weight(b: u8) -> u32 {
    const BY_FREQUENCY: &[u8] = b"etaoinsrhldcumfpgwybvkxjqz";
    match b.to_ascii_lowercase() {
        c @ b'a'..=b'z' => 10 + 26 - BY_FREQUENCY.iter().position(|&x| x == c).unwrap_or(25) as u32,
        b'0'..=b'9' => 24,
        b' ' | b'-' | b'=' => 40,
        b'.' | b',' | b':' | b'/' => 25,
        _ => 8,
    }
}

/// The window of up to four bytes of `lit` that is least likely to occur by chance.
fn rarest_window(lit: &[u8]) -> (usize, &[u8]) {
    let n = lit.len().min(4);
    (0..=lit.len() - n)
        .map(|i| {
            let w = &lit[i..i + n];
            let repeats = w.windows(2).filter(|p| p[0] == p[1]).count() as u32;
            (w.iter().map(|&b| byte_weight(b)).sum::<u32>() + 30 * repeats, i)
        })
        .min()
        .map(|(_, i)| (i, &lit[i..i + n]))
        .unwrap_or((0, lit))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn triggers(prefixes: &[&str], keywords: &[&str], min_digits: Option<usize>) -> Triggers {
        Triggers {
            prefixes: prefixes.iter().map(|s| s.as_bytes().to_vec()).collect(),
            prefix_case_sensitive: false,
            keywords: keywords.iter().map(|s| s.as_bytes().to_vec()).collect(),
            min_digits,
            max_digits: None,
            token_run: prefixes.iter().map(|p| p.len()).min().unwrap_or(2).max(6),
            reach: Reach { back: 64, forward: 64, anchored_forward: 64, multiline: false },
        }
    }

    fn windows(m: &Prefilter, h: &str) -> Vec<Window> {
        let mut out = Vec::new();
        assert!(m.windows(h.as_bytes(), true, &mut out));
        out
    }

    #[test]
    fn prefixes_only_at_token_starts() {
        let m = Prefilter::new(&[triggers(&["ghp_"], &[], None)]);
        let w = windows(&m, "token=ghp_0123456789abcdefghijklmnopqrstuvwxyz");
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].start, 6);
        assert!(w[0].anchored);
        assert!(windows(&m, "xghp_0123456789abcdefghijklmnopqrstuvwxyz").is_empty(), "inside a word");
        assert!(windows(&m, "ghp_x").is_empty(), "too short to be a token");
        let mut named = triggers(&["DD_API_KEY"], &[], None);
        named.token_run = 10;
        let named = Prefilter::new(&[named]);
        assert_eq!(
            windows(&named, "export DD_API_KEY=0123456789abcdef").len(),
            1,
            "a name before `=` is a token of its own"
        );
        let w = windows(&m, "\"line\\nghp_0123456789abcdefghijklmnopqrstuvwxyz\"");
        assert_eq!(w.len(), 1, "after an escaped newline");
    }

    #[test]
    fn prefix_across_block_edge() {
        let m = Prefilter::new(&[triggers(&["AKIA"], &[], None)]);
        for pad in 50..70 {
            let text = format!("{} AKIAZ7K3ZQ5WQXNMJ2PA", " ".repeat(pad));
            assert_eq!(windows(&m, &text).len(), 1, "pad {pad}");
        }
    }

    #[test]
    fn digit_led_prefixes_only_at_token_starts() {
        let mut t = triggers(&["1//"], &[], None);
        t.token_run = 20;
        t.prefix_case_sensitive = true;
        let m = Prefilter::new(&[t]);
        let token = "1//0gAbCdEfGhIjKlMnOpQrStUv";
        let w = windows(&m, &format!("refresh_token: {token}"));
        assert_eq!(w.len(), 1);
        assert!(w[0].anchored);
        assert_eq!(w[0].start, "refresh_token: ".len());
        assert_eq!(windows(&m, &format!("x=\\n{token}")).len(), 1, "after an escaped newline");
        assert!(windows(&m, &format!("a{token}")).is_empty(), "inside a word");
        assert!(windows(&m, "0.21//0gAbCdEfGhIjKlMnOpQrStUv").is_empty(), "inside a number");
        assert!(windows(&m, "1//0gAb short").is_empty(), "too short a token");
        assert!(m.starts_with_prefix(b"1//0g"), "armed like any prefix");
        let mut t = triggers(&["24.", "AKIA"], &[], None);
        t.prefix_case_sensitive = true;
        let m = Prefilter::new(&[t]);
        assert!(windows(&m, "[ 0.1224, -1.2456, 24.5, 3.0024 ]").is_empty(), "numbers");
        assert_eq!(windows(&m, "24.a3f0c9e1d2b4a5f6e7d8c9b0a1f2e3d4").len(), 1);
        assert!(windows(&m, "akiaZ7K3ZQ5WQXNMJ2PA").is_empty(), "case-sensitive");
        let m = Prefilter::new(&[triggers(&["://"], &[], None)]);
        assert_eq!(windows(&m, "https://user:pw@host").len(), 1, "led by punctuation: anywhere");
        assert!(!m.starts_with_prefix(b"://x"), "and no token start to arm");
    }

    #[test]
    fn keywords_case_insensitive_anywhere() {
        let m = Prefilter::new(&[triggers(&[], &["password"], None)]);
        let w = windows(&m, "x\nDB_PASSWORD=hunter2\ny");
        assert_eq!(w.len(), 1);
        assert_eq!(&"x\nDB_PASSWORD=hunter2\ny"[w[0].start..w[0].end], "DB_PASSWORD=hunter2");
        let long = format!("{}password{}", "a".repeat(FOLD_SEGMENT - 3), "b".repeat(10));
        assert_eq!(windows(&m, &long).len(), 1, "keyword across a fold segment edge");
    }

    #[test]
    fn automaton_fallback_finds_the_same() {
        let many: Vec<String> =
            (0..60u8).map(|i| format!("zq{}{}", (b'a' + i / 26) as char, (b'a' + i % 26) as char)).collect();
        let refs: Vec<&str> = many.iter().map(|s| s.as_str()).collect();
        let m = Prefilter::new(&[triggers(&[], &refs, None)]);
        assert_eq!(m.keyword_backend(), "aho-corasick");
        assert_eq!(windows(&m, "a ZQAR b zqch").len(), 2);
    }

    #[test]
    fn digit_runs() {
        let m = Prefilter::new(&[triggers(&[], &[], Some(11))]);
        assert_eq!(windows(&m, "tel: 13812345678.").len(), 1);
        assert_eq!(windows(&m, "card 4111 1111 1111 1111 ok").len(), 1);
        assert!(windows(&m, "x=0.13812345678123").is_empty(), "decimal fraction");
        assert!(windows(&m, "user13812345678").is_empty(), "identifier");
        assert!(windows(&m, "1.2483, 1.1419, -0.9623").is_empty());
        let w = windows(&m, "id 11010519491231002X");
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].end, "id 11010519491231002X".len());
    }

    /// (literal, matches in any case, the token it starts is longer than 3 bytes)
    fn start_index(lits: &[(Vec<u8>, bool, bool)]) -> (StartIndex, Vec<PrefixPattern>) {
        let patterns: Vec<PrefixPattern> = lits
            .iter()
            .enumerate()
            .map(|(i, (lit, any_case, long))| PrefixPattern {
                literal: lit.clone(),
                rules: vec![(i as u32, if *long { 8 } else { 0 }, !any_case)],
            })
            .collect();
        (StartIndex::new(&patterns), patterns)
    }

    /// The patterns the index names for the text at `at`.
    fn named(index: &StartIndex, h: &[u8], at: usize) -> Vec<u32> {
        index.candidates(four_at(h, at)).collect()
    }

    proptest::proptest! {
        #[test]
        fn start_index_finds_every_prefix(
            lits in proptest::collection::vec(
                (proptest::collection::vec(0x21u8..0x7f, 2..12), proptest::bool::ANY, proptest::bool::ANY),
                1..40,
            ),
            which in proptest::prelude::any::<proptest::sample::Index>(),
            flips in proptest::prelude::any::<u16>(),
            token in proptest::sample::select(b"aZ09-_./+".to_vec()),
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..6),
        ) {
            let (index, _) = start_index(&lits);
            let id = which.index(lits.len());
            let (lit, any_case, long) = &lits[id];
            let mut text: Vec<u8> = lit.iter().enumerate()
                .map(|(i, &b)| if *any_case && flips >> (i % 16) & 1 == 1 { b ^ (0x20 * b.is_ascii_alphabetic() as u8) } else { b })
                .collect();
            if *long {
                // Its rule's matches hold more token bytes after the prefix.
                text.push(token);
            }
            text.extend_from_slice(&tail);
            proptest::prop_assert_eq!(index.filter(&text, 0, 1), 1);
            proptest::prop_assert!(named(&index, &text, 0).contains(&(id as u32)));
            let mut shifted = vec![b' '; 5];
            shifted.extend_from_slice(&text);
            proptest::prop_assert_eq!(index.filter(&shifted, 0, 1 << 5), 1 << 5);
            proptest::prop_assert!(named(&index, &shifted, 5).contains(&(id as u32)));
        }
    }

    proptest::proptest! {
        /// The walk gives the same windows whichever instructions classify.
        #[test]
        fn walks_agree_across_simd(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "ghp_", "sk-", "AKIA", "1//", "4111 1111 1111 1111", "13812345678", " ", "\n", "\\n",
                    "%3D", "=", "x", "0123456789abcdef", "\x1b[31m", "\u{200b}", "é", "\t",
                ]),
                0..200,
            ),
        ) {
            let text = parts.concat();
            let mut m = Prefilter::new(&[
                triggers(&["ghp_", "AKIA"], &[], None),
                triggers(&["sk-"], &["secret"], Some(11)),
                triggers(&["1//"], &[], None),
                triggers(&[], &[], Some(13)),
            ]);
            let mut walk = |simd: Simd| {
                m.classifier = m.classifier.limited_to(simd);
                let mut out = Vec::new();
                let done = m.scan_blocks(text.as_bytes(), true, &mut out);
                (done, out)
            };
            let baseline = walk(Simd::Baseline);
            for simd in [Simd::Avx2, Simd::Avx512] {
                if simd <= Simd::detect() {
                    proptest::prop_assert_eq!(&walk(simd), &baseline, "{:?}", simd);
                }
            }
        }
    }

    #[test]
    fn start_index_rejects_most_words() {
        let lits: Vec<(Vec<u8>, bool, bool)> = ["registry", "username", "TRAVIS_TOKEN", "sk-", "AC"]
            .iter()
            .map(|l| (l.as_bytes().to_vec(), *l != "sk-" && *l != "AC", true))
            .collect();
        let (index, _) = start_index(&lits);
        let passes = |t: &str| index.filter(t.as_bytes(), 0, 1) == 1;
        assert!(passes("REGISTRY_PASSWORD") && passes("UserName") && passes("sk-x") && passes("ACx"));
        let words = ["regular", "usage", "train", "sk-!", "SKU", "skip", "ac", "Ad"];
        assert!(words.iter().filter(|w| passes(w)).count() <= 1, "a bloom false positive at most");
        assert_eq!(named(&index, b"TRAVIS_X", 0), [2]);
        assert_eq!(named(&index, b"trav", 0), [2], "the index names candidates; the caller compares");
        assert!(named(&index, b"tram", 0).is_empty());
    }

    #[test]
    fn digit_runs_by_groups() {
        let mut t = triggers(&[], &[], Some(14));
        t.max_digits = Some(19);
        let m = Prefilter::new(&[t]);
        assert!(windows(&m, "ts=1717412522356 ").is_empty(), "13 digits");
        assert!(windows(&m, "2024-06-03 12:58:49").is_empty(), "10 digits in groups");
        assert_eq!(windows(&m, "id=13891441682524640831 ").len(), 0, "20 digits, one group");
        assert_eq!(windows(&m, "card 4111 1111 1111 1111 2222 ok").len(), 1, "a card among the groups");
        assert_eq!(windows(&m, "n 1389144168252464083 ").len(), 1);
        let m = Prefilter::new(&[triggers(&[], &[], Some(14))]);
        assert_eq!(windows(&m, "id=13891441682524640831 ").len(), 1, "no upper bound");
    }

    #[test]
    fn rarest_seed_avoids_dashes() {
        let (off, seed) = rarest_window(b"-----begin");
        assert!(!seed.contains(&b'-') || off > 3, "{}", String::from_utf8_lossy(seed));
    }
}
