//! The visible projection of terminal and notebook text.
//!
//! Colour codes, backspaces and zero-width characters can sit inside a
//! token without changing what a reader sees: `grep --color` wraps the match
//! in SGR codes, a terminal echo of a correction is `\b \b`, and zero-width
//! spaces are a known way around output filters. Matching runs on the text
//! as displayed; every visible byte remembers its raw offset so findings map
//! back, and escape sequences inside a masked span are kept so the
//! terminal's state (colours, line erasure) stays right.

use crate::classify::{BLOCK, Classifier};

/// Text as displayed, with the raw offset of every byte.
pub(crate) struct Projection {
    pub text: Vec<u8>,
    /// `map[i]` is the raw offset of `text[i]`.
    pub map: Vec<usize>,
    /// Raw ranges of escape sequences (kept when a span around them is masked).
    pub escapes: Vec<(usize, usize)>,
}

const ESC: u8 = 0x1b;
const BS: u8 = 0x08;

/// Zero-width and invisible formatting characters, UTF-8 encoded.
const INVISIBLE: &[&[u8]] = &[
    "\u{200b}".as_bytes(), // zero width space
    "\u{200c}".as_bytes(), // zero width non-joiner
    "\u{200d}".as_bytes(), // zero width joiner
    "\u{2060}".as_bytes(), // word joiner
    "\u{feff}".as_bytes(), // zero width no-break space
    "\u{00ad}".as_bytes(), // soft hyphen
    "\u{180e}".as_bytes(), // mongolian vowel separator
];

/// Second bytes of the invisible characters: a one-load reject for the
/// many other multi-byte characters (box drawing in progress bars, CJK).
const INVISIBLE_SECOND: [bool; 256] = {
    let mut t = [false; 256];
    let mut k = 0;
    while k < INVISIBLE.len() {
        t[INVISIBLE[k][1] as usize] = true;
        k += 1;
    }
    t
};

fn invisible_at(h: &[u8], i: usize) -> Option<usize> {
    if !h.get(i + 1).is_some_and(|&b| INVISIBLE_SECOND[b as usize]) {
        return None;
    }
    INVISIBLE.iter().find(|z| h[i..].starts_with(z)).map(|z| z.len())
}

/// Whether the byte at `i` starts something the projection changes: an
/// escape sequence, a backspace or an invisible character.
#[inline]
pub(crate) fn changes_at(h: &[u8], i: usize) -> bool {
    h[i] == ESC || h[i] == BS || (h[i] >= 0xc2 && invisible_at(h, i).is_some())
}

/// Whether the text holds escape sequences to keep when masking (no
/// projection of the text is needed just to find them).
pub(crate) fn needs_projection_quick(h: &[u8]) -> bool {
    memchr::memchr(ESC, h).is_some()
}

/// Whether the text holds anything the projection would change.
pub(crate) fn needs_projection(classifier: Classifier, h: &[u8]) -> bool {
    let mut blocks = h.chunks_exact(BLOCK);
    for (k, b) in blocks.by_ref().enumerate() {
        let mut m = classifier.classify(b.try_into().expect("a block is 64 bytes")).special;
        while m != 0 {
            if changes_at(h, k * BLOCK + m.trailing_zeros() as usize) {
                return true;
            }
            m &= m - 1;
        }
    }
    let base = h.len() - blocks.remainder().len();
    (base..h.len()).any(|i| changes_at(h, i))
}

/// Length of the escape sequence at `h[i]` (which is ESC), and whether it is
/// transparent (SGR colours or erase-in-line) rather than a token break.
fn escape_len(h: &[u8], i: usize) -> (usize, bool) {
    let rest = &h[i + 1..];
    match rest.first() {
        Some(b'[') => {
            // CSI: parameters and intermediates, then a final byte 0x40..=0x7e.
            for (j, &b) in rest[1..].iter().enumerate() {
                if (0x40..=0x7e).contains(&b) {
                    return (j + 3, b == b'm' || b == b'K');
                }
                if !(0x20..=0x3f).contains(&b) {
                    return (j + 2, false);
                }
            }
            (h.len() - i, false)
        }
        Some(b']') | Some(b'P') | Some(b'_') | Some(b'^') => {
            // OSC/DCS/APC/PM: up to BEL or ESC \.
            let mut j = 1;
            while j < rest.len() {
                if rest[j] == 0x07 {
                    return (j + 2, false);
                }
                if rest[j] == ESC && rest.get(j + 1) == Some(&b'\\') {
                    return (j + 3, false);
                }
                j += 1;
            }
            (h.len() - i, false)
        }
        Some(_) => {
            // ESC, intermediates 0x20..=0x2f, then one final byte.
            let mut j = 0;
            while j < rest.len() && (0x20..=0x2f).contains(&rest[j]) {
                j += 1;
            }
            ((j + 2).min(h.len() - i), false)
        }
        None => (1, false),
    }
}

pub(crate) fn project(h: &[u8]) -> Projection {
    let mut p = Projection { text: Vec::with_capacity(h.len()), map: Vec::with_capacity(h.len()), escapes: Vec::new() };
    let mut i = 0;
    while i < h.len() {
        let b = h[i];
        if b == ESC {
            let (len, transparent) = escape_len(h, i);
            p.escapes.push((i, i + len));
            if !transparent {
                // Cursor movement and the like: what follows is not the same token.
                p.text.push(b'\n');
                p.map.push(i);
            }
            i += len;
            continue;
        }
        if b == BS {
            // The next character overwrites the previous one.
            while let Some(last) = p.text.pop() {
                p.map.pop();
                if last & 0xc0 != 0x80 {
                    break;
                }
            }
            i += 1;
            continue;
        }
        if b >= 0xc2
            && let Some(len) = invisible_at(h, i)
        {
            i += len;
            continue;
        }
        p.text.push(b);
        p.map.push(i);
        i += 1;
    }
    p
}

impl Projection {
    /// The raw range of the projected range `start..end` (non-empty).
    pub fn raw_span(&self, start: usize, end: usize) -> (usize, usize) {
        (self.map[start], self.map[end - 1] + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visible(s: &[u8]) -> String {
        String::from_utf8(project(s).text).unwrap()
    }

    #[test]
    fn colour_codes_are_transparent() {
        let raw = b"\x1b[01;31m\x1b[Ksk-proj\x1b[m\x1b[K-riGp";
        assert!(needs_projection(Classifier::new(), raw));
        assert_eq!(visible(raw), "sk-proj-riGp");
        let p = project(raw);
        assert_eq!(p.raw_span(0, 12), (11, raw.len()));
    }

    #[test]
    fn cursor_moves_break_tokens() {
        assert_eq!(visible(b"abc\x1b[3;1Hdef"), "abc\ndef");
    }

    #[test]
    fn backspace_overwrites() {
        assert_eq!(visible(b"sk-x\x08y"), "sk-y");
        assert_eq!(visible(b"a\xc3\xa9\x08b"), "ab");
        assert_eq!(visible(b"\x08x"), "x");
    }

    #[test]
    fn zero_width_removed() {
        let raw = "s\u{200b}k\u{200b}-\u{200b}a".as_bytes();
        assert!(needs_projection(Classifier::new(), raw));
        assert_eq!(visible(raw), "sk-a");
        assert!(!needs_projection(Classifier::new(), "█ progress ━━".as_bytes()));
        let long = format!("{}\u{200b}", "a".repeat(100));
        assert!(needs_projection(Classifier::new(), long.as_bytes()));
    }

    #[test]
    fn unterminated_escape_at_end() {
        assert_eq!(visible(b"abc\x1b[31"), "abc\n");
        assert_eq!(visible(b"abc\x1b"), "abc\n");
    }
}
