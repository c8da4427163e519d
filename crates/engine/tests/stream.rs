//! The streaming redactor gives the one-shot result however its input is split.

use std::sync::{Arc, OnceLock};

use leakguard_engine::{Engine, Hold, RuleSet, StreamRedactor, Style, Tail};
use proptest::prelude::*;

fn engine() -> Arc<Engine> {
    static ENGINE: OnceLock<Arc<Engine>> = OnceLock::new();
    ENGINE.get_or_init(|| Arc::new(Engine::builtin())).clone()
}

/// Every example and negative example of the built-in pack, each also
/// framed by other text and with ANSI colour codes and a zero-width space
/// inside it, as terminals and notebooks produce.
fn texts() -> &'static [Vec<u8>] {
    static TEXTS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    TEXTS.get_or_init(|| {
        let mut out = Vec::new();
        for rule in RuleSet::builtin().rules {
            for ex in rule.examples.iter().chain(&rule.negative_examples) {
                out.push(ex.as_bytes().to_vec());
                out.push(format!("$ run\n{ex}\nnext line 42\n").into_bytes());
                let mid = ex.char_indices().nth(ex.chars().count() / 2).map_or(0, |(i, _)| i);
                out.push(format!("{}\x1b[1m{}\x1b[0m\n", &ex[..mid], &ex[mid..]).into_bytes());
                out.push(format!("{}\u{200b}{}", &ex[..mid], &ex[mid..]).into_bytes());
            }
        }
        out
    })
}

fn stream(parts: &[&[u8]], hold: Hold, style: &Style) -> Vec<u8> {
    let mut s = StreamRedactor::new(engine(), style.clone()).with_hold(hold);
    let mut out = Vec::new();
    for p in parts {
        s.push(p, &mut out);
    }
    s.flush(&mut out);
    out
}

fn split<'a>(text: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (text.len() + 1)).collect();
    cuts.sort_unstable();
    let mut parts = Vec::new();
    let mut at = 0;
    for c in cuts {
        parts.push(&text[at..c]);
        at = c;
    }
    parts.push(&text[at..]);
    parts
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn line_hold_equals_one_shot(which in any::<prop::sample::Index>(), cuts in prop::collection::vec(any::<usize>(), 1..6)) {
        let text = which.get(texts());
        let whole = engine().redact(text, &Style::default()).output.into_owned();
        let parts = split(text, &cuts);
        let got = stream(&parts, Hold::Line, &Style::default());
        prop_assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&whole),
            "parts {:?}", parts.iter().map(|p| String::from_utf8_lossy(p)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn same_width_keeps_length(which in any::<prop::sample::Index>(), cuts in prop::collection::vec(any::<usize>(), 1..6)) {
        let text = which.get(texts());
        let out = stream(&split(text, &cuts), Hold::Line, &Style::SameWidth(b'*'));
        prop_assert_eq!(out.len(), text.len());
    }
}

#[test]
fn every_single_split_point() {
    for text in texts() {
        let whole = engine().redact(text, &Style::default()).output.into_owned();
        for cut in 0..=text.len() {
            let got = stream(&[&text[..cut], &text[cut..]], Hold::Line, &Style::default());
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&whole),
                "split at {cut} of {:?}",
                String::from_utf8_lossy(text)
            );
        }
    }
}

/// The secrets a one-shot scan finds in `text` that a stream must never
/// show whole, with their rule ids.
fn secrets<'t>(e: &Engine, text: &'t [u8]) -> Vec<(&'t [u8], String)> {
    e.find(text)
        .iter()
        .map(|f| (f.secret(text), e.rule(f.rule).id.clone()))
        .filter(|(s, _)| s.len() >= 8 && !s.iter().any(|&b| b == 0x1b || b >= 0x80))
        .collect()
}

fn leaked(secrets: &[(&[u8], String)], text: &[u8], out: &[u8]) -> Vec<String> {
    secrets
        .iter()
        .filter(|(s, _)| memchr_find(out, s).is_some())
        .map(|(_, id)| format!("{id} in {:?}", String::from_utf8_lossy(text)))
        .collect()
}

#[test]
fn every_split_point_in_terminal_mode() {
    // What the SSH proxy does: hold only the trailing token, same-width masks.
    let e = engine();
    let style = Style::SameWidth(b'*');
    let mut leaks = Vec::new();
    for text in texts() {
        let secrets = secrets(&e, text);
        for cut in 0..=text.len() {
            let out = stream(&[&text[..cut], &text[cut..]], Hold::Token, &style);
            assert_eq!(out.len(), text.len(), "split at {cut} of {:?}", String::from_utf8_lossy(text));
            leaks.extend(leaked(&secrets, text, &out).into_iter().map(|l| format!("split at {cut}: {l}")));
        }
    }
    assert!(leaks.is_empty(), "{} leaks:\n{}", leaks.len(), leaks.join("\n"));
}

#[test]
fn byte_at_a_time_in_token_mode_leaks_nothing() {
    // Interactive terminals hold only the trailing token: the output may be
    // cut differently, but no secret found in one shot may appear.
    let e = engine();
    let mut leaks = Vec::new();
    for text in texts() {
        let parts: Vec<&[u8]> = text.chunks(1).collect();
        let out = stream(&parts, Hold::Token, &Style::default());
        leaks.extend(leaked(&secrets(&e, text), text, &out));
    }
    assert!(leaks.is_empty(), "{} leaks:\n{}", leaks.len(), leaks.join("\n"));
}

fn memchr_find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

#[test]
fn keys_typed_one_keystroke_at_a_time_show_only_their_prefix() {
    // A terminal's echo of a typist: every keystroke is its own read, the
    // plain-token timer fires between keystrokes, the armed one does not.
    // Same-width masks keep positions, so what shows of a key is checked
    // where the key stands.
    let e = engine();
    let style = Style::SameWidth(b'*');
    let set = RuleSet::builtin();
    let mut leaks = Vec::new();
    for rule in set.rules.iter().filter(|r| r.enabled && !r.prefixes.is_empty()) {
        for ex in rule.examples.iter().filter(|ex| ex.is_ascii()) {
            let text = ex.as_bytes();
            let mut s = StreamRedactor::new(e.clone(), style.clone()).with_hold(Hold::Token);
            let mut out = Vec::new();
            for key in text.chunks(1) {
                s.push(key, &mut out);
                if s.tail() == Tail::Plain {
                    s.flush_idle(&mut out);
                }
            }
            s.flush(&mut out);
            assert_eq!(out.len(), text.len());
            for f in e.find(text).iter().filter(|f| e.rule(f.rule).id == rule.id) {
                let secret = f.secret(text);
                let Some(prefix) = rule
                    .prefixes
                    .iter()
                    .find(|p| secret.len() > p.len() && secret[..p.len()].eq_ignore_ascii_case(p.as_bytes()))
                else {
                    continue;
                };
                let body = f.start + prefix.len()..f.end;
                let shown = body.clone().filter(|&i| out[i] == text[i]).count();
                if shown * 4 > body.len() {
                    leaks.push(format!(
                        "{}: {shown} of {} shown in {:?}",
                        rule.id,
                        body.len(),
                        String::from_utf8_lossy(&out)
                    ));
                }
            }
        }
    }
    assert!(leaks.is_empty(), "{} typed keys leak:\n{}", leaks.len(), leaks.join("\n"));
}
