//! Replacing secrets in text.
//!
//! Only the secret's own bytes are replaced; everything around it, and any
//! escape sequence inside it, stays as it was.

use std::fmt;
use std::str::FromStr;

/// What a secret is replaced with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Style {
    /// Fixed text; the default is `[REDACTED]`.
    Text(String),
    /// `[REDACTED:rule-id]`.
    RuleId,
    /// The first `n` characters of the secret, then `[REDACTED]` (`sk-proj-[REDACTED]`).
    KeepPrefix(usize),
    /// As many bytes as the secret, line breaks kept, so widths, offsets and
    /// line numbers do not shift (terminals, fixed-width and structured
    /// output): `[REDACTED]` padded with the mask byte when the secret is at
    /// least that long, only mask bytes when it is shorter.
    SameWidth(u8),
}

pub const DEFAULT_MASK: &str = "[REDACTED]";

impl Default for Style {
    fn default() -> Style {
        Style::Text(DEFAULT_MASK.to_string())
    }
}

impl fmt::Display for Style {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Style::Text(t) if t == DEFAULT_MASK => f.write_str("redacted"),
            Style::Text(t) => write!(f, "text:{t}"),
            Style::RuleId => f.write_str("rule-id"),
            Style::KeepPrefix(n) => write!(f, "prefix:{n}"),
            Style::SameWidth(b) => write!(f, "same-width:{}", *b as char),
        }
    }
}

impl FromStr for Style {
    type Err = String;
    /// `redacted`, `rule-id`, `prefix:N`, `same-width[:C]`, `text:ANY`.
    fn from_str(s: &str) -> Result<Style, String> {
        let (name, arg) = match s.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (s, None),
        };
        match (name.trim().to_ascii_lowercase().as_str(), arg) {
            ("redacted" | "default" | "mask", None) => Ok(Style::default()),
            ("rule-id" | "rule_id" | "rule", None) => Ok(Style::RuleId),
            ("prefix" | "keep-prefix", Some(n)) => n
                .trim()
                .parse()
                .map(Style::KeepPrefix)
                .map_err(|_| format!("`{n}` is not a number of characters to keep")),
            ("same-width" | "same_width" | "width", None) => Ok(Style::SameWidth(b'*')),
            ("same-width" | "same_width" | "width", Some(c)) if c.len() == 1 && c.is_ascii() && !c.is_empty() => {
                Ok(Style::SameWidth(c.as_bytes()[0]))
            }
            ("text", Some(t)) => Ok(Style::Text(t.to_string())),
            _ => Err(format!(
                "`{s}` is not a redaction style; expected redacted, rule-id, prefix:N, same-width[:C] or text:STRING"
            )),
        }
    }
}

/// One span to replace, already merged and sorted.
pub(crate) struct Span<'a> {
    pub start: usize,
    pub end: usize,
    pub rule_id: &'a str,
}

/// Writes `h` with `spans` replaced into `out`. `escapes` are sorted raw
/// ranges of terminal escape sequences, kept even inside a span.
pub(crate) fn apply(h: &[u8], spans: &[Span<'_>], style: &Style, escapes: &[(usize, usize)], out: &mut Vec<u8>) {
    let mut at = 0;
    let mut esc = 0;
    for s in spans {
        out.extend_from_slice(&h[at..s.start]);
        while esc < escapes.len() && escapes[esc].1 <= s.start {
            esc += 1;
        }
        let inside: Vec<(usize, usize)> =
            escapes[esc..].iter().take_while(|e| e.0 < s.end).map(|e| (e.0.max(s.start), e.1.min(s.end))).collect();
        match style {
            Style::SameWidth(c) => {
                let visible = gaps(s.start, s.end, &inside);
                let mut fill = SameWidthFill::new(visible.clone().map(|(a, b)| &h[a..b]), *c);
                let mut i = s.start;
                for (&(a, b), (from, to)) in inside.iter().chain(std::iter::once(&(s.end, s.end))).zip(visible) {
                    debug_assert_eq!((from, to), (i, a));
                    fill.write(&h[i..a], out);
                    out.extend_from_slice(&h[a..b]);
                    i = b;
                }
            }
            _ => {
                write_mask(&h[s.start..s.end], Some(s.rule_id), style, out);
                for &(a, b) in &inside {
                    out.extend_from_slice(&h[a..b]);
                }
            }
        }
        at = s.end;
    }
    out.extend_from_slice(&h[at..]);
}

/// Writes the mask for `secret`; `rule_id` is `None` for text masked
/// before any rule matched it (a held token the stream gave up waiting on).
pub(crate) fn write_mask(secret: &[u8], rule_id: Option<&str>, style: &Style, out: &mut Vec<u8>) {
    match style {
        Style::Text(t) => out.extend_from_slice(t.as_bytes()),
        Style::RuleId => match rule_id {
            Some(id) => {
                out.extend_from_slice(b"[REDACTED:");
                out.extend_from_slice(id.as_bytes());
                out.push(b']');
            }
            None => out.extend_from_slice(DEFAULT_MASK.as_bytes()),
        },
        Style::KeepPrefix(n) => {
            // Keep whole characters only, and never most of the secret.
            let mut keep = 0;
            let mut chars = 0;
            while keep < secret.len() && chars < *n {
                keep += utf8_len(secret[keep]);
                chars += 1;
            }
            if keep < secret.len() / 2 + 1 && keep < secret.len() {
                out.extend_from_slice(&secret[..keep]);
            }
            out.extend_from_slice(DEFAULT_MASK.as_bytes());
        }
        Style::SameWidth(c) => SameWidthFill::new(std::iter::once(secret), *c).write(secret, out),
    }
}

/// The bytes of a same-width mask, handed out across the pieces a span is
/// cut into by escape sequences and line breaks (which are kept).
struct SameWidthFill {
    label: &'static [u8],
    written: usize,
    mask: u8,
}

impl SameWidthFill {
    /// `visible` are the span's pieces outside escape sequences. The label
    /// goes in only when the first line has room for it: a label broken
    /// across lines reads worse than plain mask bytes.
    fn new<'a>(visible: impl Iterator<Item = &'a [u8]>, mask: u8) -> SameWidthFill {
        let mut first_line = 0;
        for piece in visible {
            match piece.iter().position(|&b| is_line_break(b)) {
                Some(i) => {
                    first_line += i;
                    break;
                }
                None => first_line += piece.len(),
            }
        }
        let label = if first_line >= DEFAULT_MASK.len() { DEFAULT_MASK.as_bytes() } else { b"" };
        SameWidthFill { label, written: 0, mask }
    }

    fn write(&mut self, piece: &[u8], out: &mut Vec<u8>) {
        for &b in piece {
            if is_line_break(b) {
                out.push(b);
            } else {
                out.push(self.label.get(self.written).copied().unwrap_or(self.mask));
                self.written += 1;
            }
        }
    }
}

/// The ranges of `start..end` between the sorted, clipped `escapes`.
fn gaps(start: usize, end: usize, escapes: &[(usize, usize)]) -> impl Iterator<Item = (usize, usize)> + Clone + '_ {
    let starts = std::iter::once(start).chain(escapes.iter().map(|e| e.1));
    let ends = escapes.iter().map(|e| e.0).chain(std::iter::once(end));
    starts.zip(ends)
}

fn is_line_break(b: u8) -> bool {
    b == b'\n' || b == b'\r'
}

fn utf8_len(lead: u8) -> usize {
    match lead {
        0xf0..=0xf7 => 4,
        0xe0..=0xef => 3,
        0xc0..=0xdf => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(h: &str, spans: &[(usize, usize)], style: &Style) -> String {
        let spans: Vec<Span> = spans.iter().map(|&(start, end)| Span { start, end, rule_id: "r" }).collect();
        let mut out = Vec::new();
        apply(h.as_bytes(), &spans, style, &[], &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn styles() {
        let h = "key=sk-abcdef12 end";
        assert_eq!(run(h, &[(4, 15)], &Style::default()), "key=[REDACTED] end");
        assert_eq!(run(h, &[(4, 15)], &Style::RuleId), "key=[REDACTED:r] end");
        assert_eq!(run(h, &[(4, 15)], &Style::KeepPrefix(3)), "key=sk-[REDACTED] end");
        assert_eq!(run(h, &[(4, 15)], &Style::SameWidth(b'*')), "key=[REDACTED]* end");
        assert_eq!(run(h, &[(4, 10)], &Style::SameWidth(b'*')), "key=******def12 end", "too short for the label");
        assert_eq!(run(h, &[(4, 6)], &Style::KeepPrefix(5)), "key=[REDACTED]-abcdef12 end", "never reveals most of it");
    }

    #[test]
    fn parse_styles() {
        assert_eq!("redacted".parse::<Style>().unwrap(), Style::default());
        assert_eq!("prefix:4".parse::<Style>().unwrap(), Style::KeepPrefix(4));
        assert_eq!("same-width:#".parse::<Style>().unwrap(), Style::SameWidth(b'#'));
        assert_eq!("text:***".parse::<Style>().unwrap(), Style::Text("***".into()));
        assert!("bogus".parse::<Style>().is_err());
        for s in [Style::default(), Style::RuleId, Style::KeepPrefix(2), Style::SameWidth(b'x')] {
            assert_eq!(s.to_string().parse::<Style>().unwrap(), s);
        }
    }

    #[test]
    fn escapes_inside_span_survive() {
        let h = b"\x1b[31msk-ab\x1b[0mcd rest";
        let spans = [Span { start: 5, end: 16, rule_id: "r" }];
        let mut out = Vec::new();
        apply(h, &spans, &Style::default(), &[(0, 5), (10, 14)], &mut out);
        assert_eq!(out, b"\x1b[31m[REDACTED]\x1b[0m rest");
        out.clear();
        apply(h, &spans, &Style::SameWidth(b'*'), &[(0, 5), (10, 14)], &mut out);
        assert_eq!(out, b"\x1b[31m*****\x1b[0m** rest");
        let h = b"\x1b[31msk-abcdef\x1b[0m123456 rest";
        let spans = [Span { start: 5, end: 24, rule_id: "r" }];
        out.clear();
        apply(h, &spans, &Style::SameWidth(b'*'), &[(0, 5), (14, 18)], &mut out);
        assert_eq!(out, b"\x1b[31m[REDACTED\x1b[0m]***** rest", "the label runs on across the escape");
    }

    #[test]
    fn same_width_keeps_lines() {
        assert_eq!(run("a KEY\nBODY\nEND b", &[(2, 14)], &Style::SameWidth(b'*')), "a ***\n****\n*** b");
        assert_eq!(
            run("a -----BEGIN KEY-----\nMIIBOgIBAAJBAKj34\n-----END KEY----- b", &[(2, 57)], &Style::SameWidth(b'*')),
            "a [REDACTED]*********\n*****************\n***************** b"
        );
    }
}
