//! Byte-class bitmasks over 64-byte blocks, the first stage of matching.
//!
//! Each block becomes a handful of `u64` masks (bit `i` describes byte `i`).
//! Token starts and digit runs are then found with shifts and ANDs instead of
//! a loop per byte, which is what lets the matcher skip tensor dumps, logs
//! and base64 at several GB/s. On x86_64 the masks come from SSE2 (always
//! present there), AVX2 or AVX-512; elsewhere from a scalar loop that the
//! tests hold equal.

/// Class masks of one 64-byte block.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Masks {
    pub digit: u64,
    pub alnum: u64,
    /// Alphanumerics plus `-` `_` `.` `+` `/`: bytes that can sit inside a token.
    pub token: u64,
    /// Space or dash: what may separate digit groups (`4111 1111`, `138-1234`).
    pub sep: u64,
    pub backslash: u64,
    pub percent: u64,
    /// Bytes that may start an escape sequence, a backspace or an invisible
    /// character (ESC, BS, and the UTF-8 lead bytes E1, E2, EF, C2).
    pub special: u64,
    /// Bytes in the classifier's first and second [`ByteSet`]s.
    pub first: u64,
    pub second: u64,
}

pub(crate) const BLOCK: usize = 64;

/// A set of bytes that SIMD tests 32 at a time with two table lookups.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ByteSet {
    /// Bit `h` of `lo[l]` says whether the ASCII byte `h << 4 | l` is in.
    lo: [u8; 16],
    /// Whether the bytes 0x80..=0xff are in (all or none).
    high: bool,
}

impl ByteSet {
    pub fn insert(&mut self, b: u8) {
        if b >= 0x80 {
            self.high = true;
        } else {
            self.lo[(b & 15) as usize] |= 1 << (b >> 4);
        }
    }

    pub fn contains(&self, b: u8) -> bool {
        if b >= 0x80 { self.high } else { self.lo[(b & 15) as usize] >> (b >> 4) & 1 == 1 }
    }

    fn is_empty(&self) -> bool {
        !self.high && self.lo == [0; 16]
    }
}

/// The instruction sets a classifier can use, narrowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Simd {
    /// A scalar loop, or SSE2 on x86_64.
    Baseline,
    /// AVX2, with BMI1/2 and LZCNT for the walk's bit tricks.
    Avx2,
    /// AVX-512BW: a whole block in one register, each mask one instruction.
    Avx512,
}

impl Simd {
    /// The widest this CPU has.
    pub fn detect() -> Simd {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            let bits = has!("bmi1") && has!("bmi2") && has!("lzcnt") && has!("popcnt");
            if bits && has!("avx512bw") {
                return Simd::Avx512;
            }
            if bits && has!("avx2") {
                return Simd::Avx2;
            }
        }
        Simd::Baseline
    }
}

/// Picks the widest SIMD the CPU has, once, and holds the byte sets whose
/// masks ([`Masks::first`], [`Masks::second`]) its user needs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Classifier {
    simd: Simd,
    first: ByteSet,
    second: ByteSet,
    with_sets: bool,
}

impl Classifier {
    #[cfg(test)]
    pub fn new() -> Classifier {
        Classifier::with_sets(ByteSet::default(), ByteSet::default())
    }

    pub fn with_sets(first: ByteSet, second: ByteSet) -> Classifier {
        Classifier::using(Simd::detect(), first, second)
    }

    /// A classifier limited to `simd`, which the CPU must have.
    fn using(simd: Simd, first: ByteSet, second: ByteSet) -> Classifier {
        Classifier { simd, first, second, with_sets: !(first.is_empty() && second.is_empty()) }
    }

    /// The same classifier using `simd` (which the CPU must have).
    #[cfg(test)]
    pub fn limited_to(self, simd: Simd) -> Classifier {
        Classifier::using(simd, self.first, self.second)
    }

    pub fn simd(&self) -> Simd {
        self.simd
    }

    /// Classifies one block.
    #[inline(always)]
    pub fn classify(&self, block: &[u8; BLOCK]) -> Masks {
        let mut m = Masks::default();
        // SAFETY: `self.simd` was detected at run time.
        unsafe {
            match self.simd {
                Simd::Avx512 => self.classify_into::<{ Simd::Avx512 as u8 }>(block, &mut m),
                Simd::Avx2 => self.classify_into::<{ Simd::Avx2 as u8 }>(block, &mut m),
                Simd::Baseline => self.classify_into::<{ Simd::Baseline as u8 }>(block, &mut m),
            }
        }
        m
    }

    /// Classifies one block with the instructions of `SIMD` (a [`Simd`] as
    /// `u8`) into `out`. A walk fixes them once and has each mask stored
    /// where it is used: masks assembled elsewhere and then copied as one
    /// struct stall on store forwarding.
    ///
    /// # Safety
    /// The CPU has them: `SIMD <= self.simd() as u8`.
    #[inline(always)]
    pub unsafe fn classify_into<const SIMD: u8>(&self, block: &[u8; BLOCK], out: &mut Masks) {
        #[cfg(target_arch = "x86_64")]
        {
            if SIMD == Simd::Avx512 as u8 {
                // SAFETY: the caller's.
                unsafe { avx512::classify(block, &self.first, &self.second, self.with_sets, out) }
            } else if SIMD == Simd::Avx2 as u8 {
                // SAFETY: the caller's.
                *out = unsafe { avx2::classify(block, &self.first, &self.second, self.with_sets) };
            } else {
                // SAFETY: SSE2 is part of the x86_64 baseline.
                *out = unsafe { sse2::classify(block) };
                if self.with_sets {
                    (out.first, out.second) = sets_scalar(block, &self.first, &self.second);
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            *out = classify_scalar(block, &self.first, &self.second);
        }
    }
}

fn sets_scalar(block: &[u8; BLOCK], first: &ByteSet, second: &ByteSet) -> (u64, u64) {
    let (mut f, mut s) = (0, 0);
    for (i, &b) in block.iter().enumerate() {
        f |= (first.contains(b) as u64) << i;
        s |= (second.contains(b) as u64) << i;
    }
    (f, s)
}

#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
pub(crate) fn classify_scalar(block: &[u8; BLOCK], first: &ByteSet, second: &ByteSet) -> Masks {
    let mut m = Masks::default();
    for (i, &b) in block.iter().enumerate() {
        let bit = 1u64 << i;
        if b.is_ascii_digit() {
            m.digit |= bit;
        }
        if b.is_ascii_alphanumeric() {
            m.alnum |= bit;
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
        if matches!(b, 0x1b | 0x08 | 0xe1 | 0xe2 | 0xef | 0xc2) {
            m.special |= bit;
        }
    }
    (m.first, m.second) = sets_scalar(block, first, second);
    m
}

/// The SSE2 classifier, for x86_64 CPUs without AVX2.
macro_rules! simd_classify {
    ($name:ident, $feature:literal, $vec:ty, $lanes:expr, $width:expr,
     $load:ident, $set1:ident, $sub:ident, $min:ident, $cmpeq:ident, $or:ident, $movemask:ident, $mask_ty:ty) => {
        #[cfg(target_arch = "x86_64")]
        mod $name {
            use super::{BLOCK, Masks};
            use core::arch::x86_64::*;

            #[inline(always)]
            unsafe fn in_range(v: $vec, lo: u8, hi: u8) -> $vec {
                // Unsigned `lo <= v <= hi` as `min(v - lo, hi - lo) == v - lo`.
                unsafe {
                    let t = $sub(v, $set1(lo as i8));
                    $cmpeq($min(t, $set1((hi - lo) as i8)), t)
                }
            }

            #[inline(always)]
            unsafe fn eq(v: $vec, c: u8) -> $vec {
                unsafe { $cmpeq(v, $set1(c as i8)) }
            }

            #[inline(always)]
            unsafe fn bits(v: $vec) -> u64 {
                unsafe { $movemask(v) as $mask_ty as u64 }
            }

            #[target_feature(enable = $feature)]
            pub(super) unsafe fn classify(block: &[u8; BLOCK]) -> Masks {
                let mut m = Masks::default();
                for lane in 0..$lanes {
                    unsafe {
                        let v = $load(block.as_ptr().add($width * lane) as *const $vec);
                        let digit = in_range(v, b'0', b'9');
                        let alpha = in_range($or(v, $set1(0x20)), b'a', b'z');
                        let dash = eq(v, b'-');
                        let punct = $or($or(dash, eq(v, b'_')), $or(eq(v, b'.'), $or(eq(v, b'+'), eq(v, b'/'))));
                        let shift = $width * lane;
                        let alnum = $or(digit, alpha);
                        m.digit |= bits(digit) << shift;
                        m.alnum |= bits(alnum) << shift;
                        m.token |= bits($or(alnum, punct)) << shift;
                        m.sep |= bits($or(eq(v, b' '), dash)) << shift;
                        m.backslash |= bits(eq(v, b'\\')) << shift;
                        m.percent |= bits(eq(v, b'%')) << shift;
                        let special = $or($or(eq(v, 0x1b), eq(v, 0x08)), $or(eq(v, 0xe2), eq(v, 0xef)));
                        m.special |= bits($or(special, $or(eq(v, 0xc2), eq(v, 0xe1)))) << shift;
                    }
                }
                m
            }
        }
    };
}

simd_classify!(
    sse2,
    "sse2",
    __m128i,
    4,
    16,
    _mm_loadu_si128,
    _mm_set1_epi8,
    _mm_sub_epi8,
    _mm_min_epu8,
    _mm_cmpeq_epi8,
    _mm_or_si128,
    _mm_movemask_epi8,
    u16
);

/// Class tables for the AVX2 and AVX-512 classifiers: two table lookups
/// per nibble give each byte a set of class bits, from which every mask is
/// one or two operations away.
#[cfg(target_arch = "x86_64")]
mod nibble {
    // Classes of the first table. Each is a product of a set of high and a
    // set of low nibbles, which is what the two lookups can express.
    pub const DIGIT: u8 = 1;
    const ALPHA_UPPER_A: u8 = 2; // A-O and a-o
    const ALPHA_UPPER_P: u8 = 4; // P-Z and p-z
    const PUNCT: u8 = 8; // + - . /
    const UNDERSCORE: u8 = 16;
    pub const SEP: u8 = 32; // space and -
    pub const BACKSLASH: u8 = 64;
    pub const PERCENT: u8 = 128;
    pub const ALNUM: u8 = DIGIT | ALPHA_UPPER_A | ALPHA_UPPER_P;
    pub const TOKEN: u8 = ALNUM | PUNCT | UNDERSCORE;
    /// (class, high nibbles, low nibbles)
    const FIRST: &[(u8, &[u8], &[u8])] = &[
        (DIGIT, &[3], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
        (ALPHA_UPPER_A, &[4, 6], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]),
        (ALPHA_UPPER_P, &[5, 7], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
        (PUNCT, &[2], &[0xb, 0xd, 0xe, 0xf]),
        (UNDERSCORE, &[5], &[0xf]),
        (SEP, &[2], &[0x0, 0xd]),
        (BACKSLASH, &[5], &[0xc]),
        (PERCENT, &[2], &[0x5]),
    ];
    /// ESC, BS, and the lead bytes E1 E2 EF and C2 (see `Masks::special`).
    const SPECIAL: &[(u8, &[u8], &[u8])] =
        &[(1, &[1], &[0xb]), (2, &[0], &[8]), (4, &[0xe], &[1, 2, 0xf]), (8, &[0xc], &[2])];

    const fn tables(classes: &[(u8, &[u8], &[u8])]) -> ([u8; 16], [u8; 16]) {
        let (mut hi, mut lo) = ([0u8; 16], [0u8; 16]);
        let mut c = 0;
        while c < classes.len() {
            let (bit, his, los) = classes[c];
            let mut i = 0;
            while i < his.len() {
                hi[his[i] as usize] |= bit;
                i += 1;
            }
            i = 0;
            while i < los.len() {
                lo[los[i] as usize] |= bit;
                i += 1;
            }
            c += 1;
        }
        (hi, lo)
    }

    /// (high nibble table, low nibble table)
    pub const FIRST_TABLES: ([u8; 16], [u8; 16]) = tables(FIRST);
    pub const SPECIAL_TABLES: ([u8; 16], [u8; 16]) = tables(SPECIAL);
    /// For a high nibble below 8, the bit `ByteSet::lo` keeps it at.
    pub const BIT_OF_HIGH: [u8; 16] = [1, 2, 4, 8, 16, 32, 64, 128, 0, 0, 0, 0, 0, 0, 0, 0];
}

/// The AVX2 classifier: a block is two 32-byte halves.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::nibble::*;
    use super::{BLOCK, ByteSet, Masks};
    use core::arch::x86_64::*;

    #[inline(always)]
    unsafe fn table(t: &[u8; 16]) -> __m256i {
        unsafe { _mm256_broadcastsi128_si256(_mm_loadu_si128(t.as_ptr() as *const __m128i)) }
    }

    #[inline(always)]
    unsafe fn bits(v: __m256i) -> u64 {
        unsafe { _mm256_movemask_epi8(v) as u32 as u64 }
    }

    /// Bytes whose class bits meet `class`.
    #[inline(always)]
    unsafe fn any(c: __m256i, class: u8) -> u64 {
        unsafe {
            !bits(_mm256_cmpeq_epi8(_mm256_and_si256(c, _mm256_set1_epi8(class as i8)), _mm256_setzero_si256()))
                & 0xffff_ffff
        }
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn classify(block: &[u8; BLOCK], first: &ByteSet, second: &ByteSet, with_sets: bool) -> Masks {
        let mut m = Masks::default();
        unsafe {
            let (first_hi, first_lo) = (table(&FIRST_TABLES.0), table(&FIRST_TABLES.1));
            let (special_hi, special_lo) = (table(&SPECIAL_TABLES.0), table(&SPECIAL_TABLES.1));
            let bit_of_high = table(&BIT_OF_HIGH);
            let (set_a, set_b) = (table(&first.lo), table(&second.lo));
            let nibble = _mm256_set1_epi8(0x0f);
            for lane in 0..2 {
                let shift = 32 * lane;
                let v = _mm256_loadu_si256(block.as_ptr().add(shift) as *const __m256i);
                let lo = _mm256_and_si256(v, nibble);
                let hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble);
                let c = _mm256_and_si256(_mm256_shuffle_epi8(first_lo, lo), _mm256_shuffle_epi8(first_hi, hi));
                let sp = _mm256_and_si256(_mm256_shuffle_epi8(special_lo, lo), _mm256_shuffle_epi8(special_hi, hi));
                // A 16-bit shift left by 7 - k brings class bit k of every byte to its top bit.
                m.digit |= bits(_mm256_slli_epi16(c, 7)) << shift;
                m.alnum |= any(c, ALNUM) << shift;
                m.token |= any(c, TOKEN) << shift;
                m.sep |= bits(_mm256_slli_epi16(c, 2)) << shift;
                m.backslash |= bits(_mm256_slli_epi16(c, 1)) << shift;
                m.percent |= bits(c) << shift;
                m.special |= any(sp, 0xff) << shift;
                if with_sets {
                    let bit = _mm256_shuffle_epi8(bit_of_high, hi);
                    let high = bits(v);
                    let a = any(_mm256_and_si256(_mm256_shuffle_epi8(set_a, lo), bit), 0xff);
                    let b = any(_mm256_and_si256(_mm256_shuffle_epi8(set_b, lo), bit), 0xff);
                    m.first |= (a | if first.high { high } else { 0 }) << shift;
                    m.second |= (b | if second.high { high } else { 0 }) << shift;
                }
            }
        }
        m
    }
}

/// The AVX-512BW classifier: the block is one register, and each mask is
/// one test instruction.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::nibble::*;
    use super::{BLOCK, ByteSet, Masks};
    use core::arch::x86_64::*;

    #[inline(always)]
    unsafe fn table(t: &[u8; 16]) -> __m512i {
        unsafe { _mm512_broadcast_i32x4(_mm_loadu_si128(t.as_ptr() as *const __m128i)) }
    }

    /// Bytes whose class bits in `c` meet `class`.
    #[inline(always)]
    unsafe fn any(c: __m512i, class: u8) -> u64 {
        unsafe { _mm512_test_epi8_mask(c, _mm512_set1_epi8(class as i8)) }
    }

    #[inline]
    #[target_feature(enable = "avx512bw")]
    pub(super) unsafe fn classify(
        block: &[u8; BLOCK],
        first: &ByteSet,
        second: &ByteSet,
        with_sets: bool,
        out: &mut Masks,
    ) {
        unsafe {
            let v = _mm512_loadu_si512(block.as_ptr() as *const _);
            let nibble = _mm512_set1_epi8(0x0f);
            let lo = _mm512_and_si512(v, nibble);
            let hi = _mm512_and_si512(_mm512_srli_epi16::<4>(v), nibble);
            let lookup = |t: &([u8; 16], [u8; 16])| {
                _mm512_and_si512(_mm512_shuffle_epi8(table(&t.1), lo), _mm512_shuffle_epi8(table(&t.0), hi))
            };
            let c = lookup(&FIRST_TABLES);
            // Field by field, so that each mask goes straight to `out`.
            out.digit = any(c, DIGIT);
            out.alnum = any(c, ALNUM);
            out.token = any(c, TOKEN);
            out.sep = any(c, SEP);
            out.backslash = any(c, BACKSLASH);
            out.percent = any(c, PERCENT);
            out.special = any(lookup(&SPECIAL_TABLES), 0xff);
            (out.first, out.second) = if with_sets {
                let bit = _mm512_shuffle_epi8(table(&BIT_OF_HIGH), hi);
                let high = _mm512_movepi8_mask(v);
                let member = |set: &ByteSet| {
                    _mm512_test_epi8_mask(_mm512_shuffle_epi8(table(&set.lo), lo), bit)
                        | if set.high { high } else { 0 }
                };
                (member(first), member(second))
            } else {
                (0, 0)
            };
        }
    }
}

/// Bit `p` set iff bits `p..p+len` of `w` are all set (`len` in 1..=64).
#[cfg(test)]
pub(crate) fn runs_of(w: u128, len: u32) -> u128 {
    Runs::new(len).of(w)
}

/// A precomputed `runs_of` for one length: at most seven shift-and steps.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Runs {
    shifts: [u32; 7],
    n: usize,
    len: u32,
}

impl Runs {
    pub fn new(len: u32) -> Runs {
        debug_assert!((1..=64).contains(&len));
        let mut shifts = [0; 7];
        let mut n = 0;
        let mut have = 1;
        while have * 2 <= len {
            shifts[n] = have;
            n += 1;
            have *= 2;
        }
        if have < len {
            shifts[n] = len - have;
            n += 1;
        }
        Runs { shifts, n, len }
    }

    #[inline]
    pub fn of(&self, w: u128) -> u128 {
        let mut r = w;
        for &k in &self.shifts[..self.n] {
            r &= r >> k;
        }
        r
    }

    /// The bits of `starts` at which `w` has a run of `len` set bits. Long
    /// runs are rare: three fixed shifts rule most blocks out first.
    #[inline]
    pub fn at(&self, w: u128, starts: u64) -> u64 {
        if self.len >= 8 {
            let mut r = w & w >> 1;
            r &= r >> 2;
            r &= r >> 4;
            if starts & r as u64 == 0 {
                return 0;
            }
        }
        starts & self.of(w) as u64
    }
}

/// Walks a haystack block by block, giving each block's masks together
/// with its neighbours' (needed to see runs and starts across block edges),
/// classified with the instructions of `SIMD` (see [`Classifier::classify_into`]).
pub(crate) struct BlockWalker<'h, const SIMD: u8> {
    classifier: Classifier,
    haystack: &'h [u8],
    /// The previous, current and next blocks' masks, in rotating slots.
    /// Moving on overwrites one slot: copying masks just stored field by
    /// field, as whole structs, would stall on store forwarding.
    ring: [Masks; 3],
    /// Slot of the current block; the next block's is the one after it.
    cur: usize,
    /// Offset of the current block in the haystack.
    pub at: usize,
    started: bool,
}

impl<'h, const SIMD: u8> BlockWalker<'h, SIMD> {
    /// # Panics
    /// If the CPU lacks the instructions of `SIMD`.
    pub fn new(classifier: Classifier, haystack: &'h [u8]) -> BlockWalker<'h, SIMD> {
        assert!(SIMD <= classifier.simd() as u8, "the CPU lacks the instructions asked for");
        let mut w = BlockWalker { classifier, haystack, ring: [Masks::default(); 3], cur: 0, at: 0, started: false };
        Self::load(&w.classifier, w.haystack, 0, &mut w.ring[1]);
        w
    }

    /// Classifies the block at `at` into `out`. Not a method, so that `out`
    /// can be one of the walker's own slots.
    #[inline(always)]
    fn load(classifier: &Classifier, haystack: &[u8], at: usize, out: &mut Masks) {
        match haystack.get(at..at + BLOCK) {
            // SAFETY: `new` checked that the CPU has them.
            Some(b) => unsafe { classifier.classify_into::<SIMD>(b.try_into().expect("a block is 64 bytes"), out) },
            None => *out = Self::load_tail(classifier, haystack.get(at..).unwrap_or_default()),
        }
    }

    /// The last, partial block: zero padding classifies as "nothing", which ends every run.
    #[cold]
    fn load_tail(classifier: &Classifier, tail: &[u8]) -> Masks {
        if tail.is_empty() {
            return Masks::default(); // past the end: nothing, whatever the byte sets hold
        }
        let mut pad = [0u8; BLOCK];
        pad[..tail.len()].copy_from_slice(tail);
        classifier.classify(&pad)
    }

    #[inline(always)]
    fn after(slot: usize) -> usize {
        if slot == 2 { 0 } else { slot + 1 }
    }

    /// Moves to the next block; false at the end of the haystack.
    #[inline(always)]
    pub fn advance(&mut self) -> bool {
        if self.started {
            self.at += BLOCK;
        }
        self.started = true;
        if self.at >= self.haystack.len() {
            return false;
        }
        self.cur = Self::after(self.cur);
        // The slot after the new current one held the block before the old current one.
        let next = Self::after(self.cur);
        Self::load(&self.classifier, self.haystack, self.at + BLOCK, &mut self.ring[next]);
        true
    }

    #[inline]
    pub fn prev(&self) -> &Masks {
        &self.ring[Self::after(Self::after(self.cur))]
    }

    #[inline]
    pub fn cur(&self) -> &Masks {
        &self.ring[self.cur]
    }

    #[inline]
    pub fn next(&self) -> &Masks {
        &self.ring[Self::after(self.cur)]
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
        fn simd_equals_scalar(
            bytes in proptest::collection::vec(any::<u8>(), 64),
            first in proptest::collection::vec(any::<u8>(), 0..40),
            second in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let block: [u8; 64] = bytes.try_into().unwrap();
            let (mut a, mut b) = (ByteSet::default(), ByteSet::default());
            first.iter().for_each(|&x| a.insert(x));
            second.iter().for_each(|&x| b.insert(x));
            let scalar = classify_scalar(&block, &a, &b);
            for simd in [Simd::Baseline, Simd::Avx2, Simd::Avx512] {
                if simd <= Simd::detect() {
                    prop_assert_eq!(Classifier::using(simd, a, b).classify(&block), scalar, "{:?}", simd);
                }
            }
            for (i, &x) in block.iter().enumerate() {
                prop_assert_eq!(scalar.first >> i & 1 == 1, first.contains(&x) || (x >= 0x80 && first.iter().any(|&f| f >= 0x80)));
            }
        }

        #[test]
        fn runs_match_naive(w in any::<u128>(), len in 1u32..=64, starts in any::<u64>()) {
            let r = runs_of(w, len);
            for p in 0..64 {
                let naive = (p..p + len as usize).all(|i| i < 128 && w >> i & 1 == 1);
                prop_assert_eq!(r >> p & 1 == 1, naive, "p={} len={}", p, len);
            }
            prop_assert_eq!(Runs::new(len).at(w, starts), starts & r as u64);
        }
    }

    #[test]
    fn walker_covers_tail() {
        let text = vec![b'7'; 130];
        let mut w = BlockWalker::<{ Simd::Baseline as u8 }>::new(Classifier::new(), &text);
        let mut digits = 0;
        while w.advance() {
            digits += w.cur().digit.count_ones();
        }
        assert_eq!(digits, 130);
    }
}
