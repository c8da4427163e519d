//! Byte-class bitmasks over 64-byte blocks, the first stage of matching.
//!
//! Each block becomes a handful of `u64` masks (bit `i` describes byte `i`).
//! Token starts and digit runs are then found with shifts and ANDs instead of
//! a loop per byte, which is what lets the matcher skip tensor dumps, logs
//! and base64 at several GB/s. On x86_64 the masks come from SSE2 (always
//! present there); elsewhere from a scalar loop that the tests hold equal.

/// Class masks of one 64-byte block.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Masks {
    pub digit: u64,
    pub upper: u64,
    pub lower: u64,
    /// Alphanumerics plus `-` `_` `.` `+` `/`: bytes that can sit inside a token.
    pub token: u64,
    /// Space or dash: what may separate digit groups (`4111 1111`, `138-1234`).
    pub sep: u64,
    pub backslash: u64,
    pub percent: u64,
}

impl Masks {
    #[inline]
    pub fn alnum(&self) -> u64 {
        self.digit | self.upper | self.lower
    }
}

pub(crate) const BLOCK: usize = 64;

/// Classifies one block.
#[inline]
pub(crate) fn classify(block: &[u8; BLOCK]) -> Masks {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: SSE2 is part of the x86_64 baseline.
        unsafe { sse2::classify(block) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        classify_scalar(block)
    }
}

#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
pub(crate) fn classify_scalar(block: &[u8; BLOCK]) -> Masks {
    let mut m = Masks::default();
    for (i, &b) in block.iter().enumerate() {
        let bit = 1u64 << i;
        if b.is_ascii_digit() {
            m.digit |= bit;
        }
        if b.is_ascii_uppercase() {
            m.upper |= bit;
        }
        if b.is_ascii_lowercase() {
            m.lower |= bit;
        }
        if b.is_ascii_alphanumeric() || b"-_.+/".contains(&b) {
            m.token |= bit;
        }
        if b == b' ' || b == b'-' {
            m.sep |= bit;
        }
        if b == b'\\' {
            m.backslash |= bit;
        }
        if b == b'%' {
            m.percent |= bit;
        }
    }
    m
}

#[cfg(target_arch = "x86_64")]
mod sse2 {
    use super::{BLOCK, Masks};
    use core::arch::x86_64::*;

    #[inline(always)]
    unsafe fn in_range(v: __m128i, lo: u8, hi: u8) -> __m128i {
        // Unsigned `lo <= v <= hi` as `min(v - lo, hi - lo) == v - lo`.
        unsafe {
            let t = _mm_sub_epi8(v, _mm_set1_epi8(lo as i8));
            _mm_cmpeq_epi8(_mm_min_epu8(t, _mm_set1_epi8((hi - lo) as i8)), t)
        }
    }

    #[inline(always)]
    unsafe fn eq(v: __m128i, c: u8) -> __m128i {
        unsafe { _mm_cmpeq_epi8(v, _mm_set1_epi8(c as i8)) }
    }

    #[inline(always)]
    unsafe fn bits(v: __m128i) -> u64 {
        unsafe { _mm_movemask_epi8(v) as u16 as u64 }
    }

    #[inline]
    pub(super) unsafe fn classify(block: &[u8; BLOCK]) -> Masks {
        let mut m = Masks::default();
        for lane in 0..4 {
            unsafe {
                let v = _mm_loadu_si128(block.as_ptr().add(16 * lane) as *const __m128i);
                let digit = in_range(v, b'0', b'9');
                let upper = in_range(v, b'A', b'Z');
                let lower = in_range(v, b'a', b'z');
                let dash = eq(v, b'-');
                let punct = _mm_or_si128(
                    _mm_or_si128(dash, eq(v, b'_')),
                    _mm_or_si128(eq(v, b'.'), _mm_or_si128(eq(v, b'+'), eq(v, b'/'))),
                );
                let token = _mm_or_si128(_mm_or_si128(digit, upper), _mm_or_si128(lower, punct));
                let shift = 16 * lane;
                m.digit |= bits(digit) << shift;
                m.upper |= bits(upper) << shift;
                m.lower |= bits(lower) << shift;
                m.token |= bits(token) << shift;
                m.sep |= bits(_mm_or_si128(eq(v, b' '), dash)) << shift;
                m.backslash |= bits(eq(v, b'\\')) << shift;
                m.percent |= bits(eq(v, b'%')) << shift;
            }
        }
        m
    }
}

/// Bit `p` set iff bits `p..p+len` of `w` are all set (`len` in 1..=64).
#[inline]
pub(crate) fn runs_of(w: u128, len: u32) -> u128 {
    debug_assert!((1..=64).contains(&len));
    let mut r = w;
    let mut have = 1;
    while have * 2 <= len {
        r &= r >> have;
        have *= 2;
    }
    if have < len {
        r &= r >> (len - have);
    }
    r
}

/// Walks a haystack block by block, giving each block's masks together
/// with its neighbours' (needed to see runs and starts across block edges).
pub(crate) struct BlockWalker<'h> {
    haystack: &'h [u8],
    next_at: usize,
    pub prev: Masks,
    pub cur: Masks,
    pub next: Masks,
    /// Offset of the current block in the haystack.
    pub at: usize,
    started: bool,
}

impl<'h> BlockWalker<'h> {
    pub fn new(haystack: &'h [u8]) -> BlockWalker<'h> {
        let mut w = BlockWalker {
            haystack,
            next_at: 0,
            prev: Masks::default(),
            cur: Masks::default(),
            next: Masks::default(),
            at: 0,
            started: false,
        };
        w.next = w.load();
        w
    }

    fn load(&mut self) -> Masks {
        let at = self.next_at;
        self.next_at += BLOCK;
        match self.haystack.get(at..at + BLOCK) {
            Some(b) => classify(b.try_into().expect("a block is 64 bytes")),
            None if at < self.haystack.len() => {
                // Zero padding classifies as "nothing", which ends every run.
                let mut pad = [0u8; BLOCK];
                let tail = &self.haystack[at..];
                pad[..tail.len()].copy_from_slice(tail);
                classify(&pad)
            }
            None => Masks::default(),
        }
    }

    /// Moves to the next block; false at the end of the haystack.
    pub fn advance(&mut self) -> bool {
        if self.started {
            self.at += BLOCK;
        }
        self.started = true;
        if self.at >= self.haystack.len() {
            return false;
        }
        self.prev = self.cur;
        self.cur = self.next;
        self.next = self.load();
        true
    }
}

/// `x` of the current block shifted left by `k` (towards higher positions),
/// filled from the previous block: bit `p` says whether byte `p - k` had it.
#[inline]
pub(crate) fn from_behind(prev: u64, cur: u64, k: u32) -> u64 {
    (cur << k) | (prev >> (64 - k))
}

/// Bit `p` says whether byte `p + k` had it, looking into the next block.
#[inline]
pub(crate) fn from_ahead(cur: u64, next: u64, k: u32) -> u64 {
    (cur >> k) | (next << (64 - k))
}

#[inline]
pub(crate) fn wide(cur: u64, next: u64) -> u128 {
    cur as u128 | (next as u128) << 64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn simd_equals_scalar(bytes in proptest::collection::vec(any::<u8>(), 64)) {
            let block: [u8; 64] = bytes.try_into().unwrap();
            prop_assert_eq!(classify(&block), classify_scalar(&block));
        }

        #[test]
        fn runs_match_naive(w in any::<u128>(), len in 1u32..=64) {
            let r = runs_of(w, len);
            for p in 0..64 {
                let naive = (p..p + len as usize).all(|i| i < 128 && w >> i & 1 == 1);
                prop_assert_eq!(r >> p & 1 == 1, naive, "p={} len={}", p, len);
            }
        }
    }

    #[test]
    fn walker_covers_tail() {
        let text = vec![b'7'; 130];
        let mut w = BlockWalker::new(&text);
        let mut digits = 0;
        while w.advance() {
            digits += w.cur.digit.count_ones();
        }
        assert_eq!(digits, 130);
    }
}
