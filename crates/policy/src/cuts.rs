//! Secrets shown cut short: `sk-ant-api03-AbCd...WxYzAA`.
//!
//! pydoc (IPython's verbose tracebacks), reprlib and IPython's inspector
//! shorten a long value to its head and tail around an ellipsis. Neither
//! side is a whole token, yet together they show most of the secret. The
//! text is searched once more with the ellipses taken out; a finding that
//! spans one is mapped back over it, so head, ellipsis and tail are masked.

use leakguard_engine::{Engine, Finding};

/// What a shortened value puts in place of its middle, longest first.
const CUTS: [&[u8]; 4] = [b" <...> ", b"<...>", b"...", "\u{2026}".as_bytes()];

/// Whether `text` may hold a cut (cheap: one or two SIMD searches).
fn has_cut(text: &[u8]) -> bool {
    memchr::memmem::find(text, b"...").is_some() || memchr::memmem::find(text, CUTS[3]).is_some()
}

/// Findings that a cut in `text` hides, in `text`'s offsets (covering the
/// cut): those that appear once the cuts are taken out, and tokens cut short
/// right after a rule's prefix (16 bytes or more, as a stream masks an armed
/// token at its idle timeout; a cut token fails checksums and structure
/// checks). Findings already in `known` are not repeated.
pub(crate) fn across_cuts(engine: &Engine, text: &[u8], known: &[Finding]) -> Vec<Finding> {
    if !has_cut(text) {
        return Vec::new();
    }
    // (offset in `text`, offset in `joined`, length) of each cut
    let mut cuts: Vec<(usize, usize, usize)> = Vec::new();
    let mut joined = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        match CUTS.iter().find(|c| text[i..].starts_with(c)) {
            Some(c) => {
                cuts.push((i, joined.len(), c.len()));
                i += c.len();
            }
            None => {
                joined.push(text[i]);
                i += 1;
            }
        }
    }
    // Offset in `text` of offset `p` of `joined`; a cut at `p` counts when
    // `at_cut` (the start of a span after a cut, the end of a span over one).
    let to_text = |p: usize, at_cut: bool| -> usize {
        p + cuts.iter().take_while(|&&(_, at, _)| at < p || (at_cut && at == p)).map(|&(_, _, n)| n).sum::<usize>()
    };
    let mut found: Vec<Finding> = engine
        .find(&joined)
        .into_iter()
        .filter(|f| cuts.iter().any(|&(_, at, _)| f.start < at && at < f.end))
        .map(|f| Finding {
            rule: f.rule,
            start: to_text(f.start, true),
            end: to_text(f.end, false),
            match_start: to_text(f.match_start, true),
            match_end: to_text(f.match_end, false),
        })
        .collect();
    for &(at, _, len) in &cuts {
        let start = text[..at].iter().rposition(|&b| !token_byte(b)).map_or(0, |p| p + 1);
        let end = text[at + len..].iter().position(|&b| !token_byte(b)).map_or(text.len(), |p| at + len + p);
        if let Some(rule) = cut_prefix(engine, &text[start..at]) {
            found.push(Finding { rule, start, end, match_start: start, match_end: end });
        }
    }
    found.retain(|f| !known.iter().any(|k| k.start <= f.start && f.end <= k.end));
    found
}

fn token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'+' | b'/' | b'=')
}

/// The rule whose prefix starts `head`, when `head` looks like a token cut
/// short: 16 bytes or more, letters and digits after the prefix.
fn cut_prefix(engine: &Engine, head: &[u8]) -> Option<usize> {
    if head.len() < 16 {
        return None;
    }
    let (rule, plen) = engine
        .rules()
        .enumerate()
        .flat_map(|(i, r)| r.prefixes.iter().map(move |p| (i, p.as_bytes())))
        .filter(|(_, p)| !p.is_empty() && head.starts_with(p))
        .map(|(i, p)| (i, p.len()))
        .max_by_key(|&(_, n)| n)?;
    let body = &head[plen..];
    (body.len() >= 8 && body.iter().any(u8::is_ascii_digit) && body.iter().any(u8::is_ascii_alphabetic)).then_some(rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined_and_masked(text: &str) -> String {
        let engine = Engine::builtin();
        let known = engine.find(text.as_bytes());
        let mut all = known.clone();
        all.extend(across_cuts(&engine, text.as_bytes(), &known));
        String::from_utf8(engine.redact_findings(text.as_bytes(), &all, &Default::default())).unwrap()
    }

    // Built at run time so no whole test key sits in the source.
    fn key() -> String {
        format!("sk-ant-api03-{}AA", "Qm3xT9vR2kLp7WzN4bYc8HdJ6fGs1aEu0".repeat(3))
    }

    #[test]
    fn head_and_tail_around_an_ellipsis_are_masked() {
        let k = key();
        for cut in ["...", " <...> ", "\u{2026}"] {
            let shown = format!("tok='{}{cut}{}', n=1", &k[..48], &k[k.len() - 48..]);
            let out = joined_and_masked(&shown);
            assert_eq!(out, "tok='[REDACTED]', n=1", "{cut:?}");
        }
    }

    #[test]
    fn a_head_already_masked_takes_its_tail_along() {
        let k = key();
        let shown = format!("'{}...{}'", &k[..90], &k[k.len() - 20..]);
        assert_eq!(joined_and_masked(&shown), "'[REDACTED]'");
    }

    #[test]
    fn a_token_cut_after_its_prefix_is_masked_with_its_tail() {
        // A JWT cut in its payload fails the structure check once joined.
        let jwt = "eyJhbGciOiAiSFMyNTYiLCAidHlwIjogIkpXVCJ9.eyJzdWI...DkyfQ.sL-P_-cshZvWPC1ULAmESW4cDNEYO8Pb";
        assert_eq!(joined_and_masked(&format!("{{'jwt': '{jwt}', 'n': 1}}")), "{'jwt': '[REDACTED]', 'n': 1}");
    }

    #[test]
    fn text_without_cuts_or_secrets_is_left_alone() {
        let engine = Engine::builtin();
        for text in [
            "Loading... done",
            "a <...> b",
            "no cut here",
            "x = [1, 2, ..., 9]",
            "SecretsManagerClient... ok",
            "sk-proj-ab... (truncated)",
        ] {
            assert!(across_cuts(&engine, text.as_bytes(), &[]).is_empty(), "{text}");
        }
    }
}
