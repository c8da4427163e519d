//! Validators: cheap structural checks that confirm or reject a candidate.

use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose};

use crate::rules::Validator;

/// Runs one validator on the candidate secret `h[start..end]`.
pub(crate) fn check(v: Validator, h: &[u8], start: usize, end: usize, placeholders: &PlaceholderCheck) -> bool {
    let secret = &h[start..end];
    match v {
        Validator::Luhn => luhn(secret),
        Validator::PrcId => prc_resident_id(secret),
        Validator::GithubChecksum => github_checksum(secret),
        Validator::Jwt => jwt(secret),
        Validator::Pem => pem_body(secret),
        Validator::Base64Json => base64_json(strip_to_base64(secret)),
        Validator::UrlPassword => url_password(secret, placeholders),
        Validator::Alphanumeric => secret.iter().any(u8::is_ascii_alphabetic) && secret.iter().any(u8::is_ascii_digit),
        Validator::Literal => {
            // A quoted value is a string literal whatever it looks like.
            let quote = start.checked_sub(1).map(|i| h[i]).filter(|q| matches!(q, b'"' | b'\'' | b'`'));
            quote.is_some_and(|q| h.get(end) == Some(&q)) || literal(secret)
        }
        Validator::BasicAuth => {
            decode_base64(secret).is_some_and(|d| d.contains(&b':') && url_password(&d, placeholders))
        }
        Validator::Base64PrivateKey => {
            let take = (secret.len().min(96) / 4) * 4;
            decode_base64(&secret[..take]).is_some_and(|d| memchr::memmem::find(&d, b"PRIVATE KEY").is_some())
        }
    }
}

/// Whether a value is a literal rather than a reference in code: not a
/// variable (`$PASS`, `%PASS%`), not a bare identifier that reads like code
/// (`pw`, `str`, `None`, `dbPassword`), not an attribute chain
/// (`args.password`, `self.db_pass2`), not a call (`getpass()`).
/// Identifiers with digits or with the irregular case of random text
/// (`hunter2`, `irWQYyEgJdOs`) count as literals.
pub fn literal(v: &[u8]) -> bool {
    let ident_start = |b: u8| b.is_ascii_alphabetic() || b == b'_';
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let Some(&first) = v.first() else {
        return false;
    };
    if first == b'$' || (first == b'%' && v.last() == Some(&b'%')) {
        return false;
    }
    if !ident_start(first) {
        return true;
    }
    if v.contains(&b'(') {
        return false;
    }
    if !v.iter().all(|&b| ident(b) || b == b'.') {
        return true;
    }
    if v.contains(&b'.') {
        // `args.password` is code; `model.eval617` is a password only when quoted.
        return false;
    }
    if v.iter().any(u8::is_ascii_digit) {
        return true;
    }
    let letters: Vec<u8> = v.iter().copied().filter(u8::is_ascii_alphabetic).collect();
    let flips = letters.windows(2).filter(|w| w[0].is_ascii_uppercase() != w[1].is_ascii_uppercase()).count();
    flips * 2 > letters.len()
}

/// Shannon entropy in bits per byte.
pub fn shannon_entropy(data: &[u8]) -> f64 {
    if data.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in data {
        counts[b as usize] += 1;
    }
    let n = data.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

/// Luhn mod 10 over the digits of `s`; spaces and dashes between groups are ignored.
pub fn luhn(s: &[u8]) -> bool {
    let mut sum = 0u32;
    let mut n = 0;
    for &b in s.iter().rev() {
        match b {
            b'0'..=b'9' => {
                let mut d = (b - b'0') as u32;
                if n % 2 == 1 {
                    d *= 2;
                    if d > 9 {
                        d -= 9;
                    }
                }
                sum += d;
                n += 1;
            }
            b' ' | b'-' => {}
            _ => return false,
        }
    }
    (12..=19).contains(&n) && sum.is_multiple_of(10)
}

/// Province-level codes of GB/T 2260, plus 81-83 used on residence permits.
const PRC_PROVINCES: &[u8] = &[
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52, 53, 54, 61, 62, 63,
    64, 65, 71, 81, 82, 83,
];

/// PRC resident identity number (GB 11643): province code, a real birth
/// date, and the ISO 7064 MOD 11-2 check character.
pub fn prc_resident_id(s: &[u8]) -> bool {
    if s.len() != 18 || !s[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let digit = |i: usize| (s[i] - b'0') as u32;
    if !PRC_PROVINCES.contains(&((digit(0) * 10 + digit(1)) as u8)) {
        return false;
    }
    let year = (6..10).fold(0, |acc, i| acc * 10 + digit(i));
    let month = digit(10) * 10 + digit(11);
    let day = digit(12) * 10 + digit(13);
    if !(1900..=2099).contains(&year) || !valid_date(year, month, day) {
        return false;
    }
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = (0..17).map(|i| digit(i) * WEIGHTS[i]).sum();
    let expected = b"10X98765432"[(sum % 11) as usize];
    s[17].to_ascii_uppercase() == expected
}

fn valid_date(year: u32, month: u32, day: u32) -> bool {
    let leap = (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// GitHub (and npm) token format: `prefix_` + 30 random base62 characters +
/// 6 characters of base62 CRC32 over those 30.
pub fn github_checksum(token: &[u8]) -> bool {
    let body = match token.iter().rposition(|&b| b == b'_') {
        Some(i) => &token[i + 1..],
        None => token,
    };
    if body.len() != 36 || !body.iter().all(u8::is_ascii_alphanumeric) {
        return false;
    }
    let (random, check) = body.split_at(30);
    let mut crc = crc32fast::hash(random) as u64;
    let mut encoded = [b'0'; 6];
    for slot in encoded.iter_mut().rev() {
        *slot = BASE62[(crc % 62) as usize];
        crc /= 62;
    }
    crc == 0 && encoded == check
}

const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
    .with_decode_allow_trailing_bits(true);
const URL_LENIENT: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, LENIENT);
const STD_LENIENT: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, LENIENT);

/// Decodes standard or URL-safe base64, with or without padding.
pub(crate) fn decode_base64(s: &[u8]) -> Option<Vec<u8>> {
    let s = s.strip_suffix(b"==").or_else(|| s.strip_suffix(b"=")).unwrap_or(s);
    if s.iter().any(|&b| b == b'-' || b == b'_') {
        URL_LENIENT.decode(s).ok()
    } else {
        STD_LENIENT.decode(s).ok().or_else(|| general_purpose::STANDARD_NO_PAD.decode(s).ok())
    }
}

fn json_object(bytes: &[u8]) -> Option<serde_json::Map<String, serde_json::Value>> {
    match serde_json::from_slice::<serde_json::Value>(bytes).ok()? {
        serde_json::Value::Object(m) => Some(m),
        _ => None,
    }
}

/// A JWS (three parts) or JWE (five parts) compact token whose header is a
/// JSON object naming an `alg`, and (JWS) whose payload is JSON.
pub fn jwt(token: &[u8]) -> bool {
    let parts: Vec<&[u8]> = token.split(|&b| b == b'.').collect();
    if parts.len() != 3 && parts.len() != 5 {
        return false;
    }
    let Some(header) = decode_base64(parts[0]).and_then(|h| json_object(&h)) else {
        return false;
    };
    if !header.get("alg").is_some_and(|a| a.is_string()) {
        return false;
    }
    parts.len() == 5 || decode_base64(parts[1]).is_some_and(|p| serde_json::from_slice::<serde_json::Value>(&p).is_ok())
}

/// `prefix_` + base64 JSON: the part after the last `_` (or the whole) decodes to a JSON object.
pub fn base64_json(s: &[u8]) -> bool {
    decode_base64(s).is_some_and(|d| json_object(&d).is_some())
}

fn strip_to_base64(s: &[u8]) -> &[u8] {
    match s.windows(3).position(|w| w == b"eyJ") {
        Some(i) => &s[i..],
        None => s,
    }
}

/// The body of a PEM/OpenSSH/PGP private key block: enough base64 that
/// decodes to DER (a SEQUENCE), an OpenSSH key, or OpenPGP packets.
pub fn pem_body(block: &[u8]) -> bool {
    let mut body = Vec::with_capacity(block.len());
    for line in split_pem_lines(block) {
        let line = line.trim_ascii();
        if line.is_empty() || line.starts_with(b"-----") || line.starts_with(b"---- ") || line.contains(&b':') {
            continue; // armour lines and headers such as Proc-Type, DEK-Info, Comment
        }
        if line.starts_with(b"=") && line.len() <= 5 {
            continue; // PGP CRC-24 line
        }
        if !line.iter().all(|&b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)) {
            return false;
        }
        body.extend_from_slice(line);
    }
    if body.len() < 16 || body.iter().all(|&b| b == body[0]) {
        return false;
    }
    // openssh-key-v1 magic, and the SSH2 (RFC 4716 tools) private key magic 0x3f6ff9eb.
    if body.starts_with(b"b3BlbnNzaC1rZXktdjE") || body.starts_with(b"P2/56w") {
        return true;
    }
    // Decode a whole number of quanta from the start; a truncated print is fine.
    let take = (body.len().min(64) / 4) * 4;
    let Some(der) = decode_base64(&body[..take]) else {
        return false;
    };
    match der.first() {
        Some(0x30) => der.len() > 2,
        // OpenPGP packet tag: old or new format with the high bit set.
        Some(&t) => t & 0x80 != 0,
        None => false,
    }
}

/// Splits on real line breaks and on the escaped `\n` of JSON/Python strings.
fn split_pem_lines(block: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = block;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut i = 0;
        while i < rest.len() {
            if rest[i] == b'\n' || rest[i] == b'\r' {
                let line = &rest[..i];
                rest = &rest[i + 1..];
                return Some(line);
            }
            if rest[i] == b'\\' && matches!(rest.get(i + 1), Some(b'n' | b'r')) {
                let line = &rest[..i];
                rest = &rest[i + 2..];
                return Some(line);
            }
            i += 1;
        }
        let line = rest;
        rest = &[];
        Some(line)
    })
}

/// Passwords that documentation and defaults use instead of a real one.
const DEFAULT_PASSWORDS: &[&str] = &[
    "password",
    "passwd",
    "pass",
    "pwd",
    "secret",
    "changeme",
    "change_me",
    "admin",
    "root",
    "user",
    "username",
    "guest",
    "test",
    "example",
    "postgres",
    "mysql",
    "redis",
    "default",
    "pw",
    "p",
];

/// The password part of `user:password` (a bare pair, or the userinfo of a
/// `scheme://user:password@host/...` URL): not a placeholder, not a
/// documented default, not equal to the user name.
pub(crate) fn url_password(s: &[u8], placeholders: &PlaceholderCheck) -> bool {
    let s = match memchr::memmem::find(s, b"://") {
        Some(i) => {
            let rest = &s[i + 3..];
            match memchr::memrchr(b'@', rest) {
                Some(at) => &rest[..at],
                None => return false,
            }
        }
        None => s,
    };
    let (user, pass) = match s.iter().position(|&b| b == b':') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (&b""[..], s),
    };
    let pass = pass.strip_suffix(b"@").unwrap_or(pass);
    if pass.is_empty() || placeholders.matches(pass) {
        return false;
    }
    let lower = pass.to_ascii_lowercase();
    if DEFAULT_PASSWORDS.iter().any(|p| p.as_bytes() == lower.as_slice()) {
        return false;
    }
    !(user.eq_ignore_ascii_case(pass))
}

/// Whole words that mark a value as a stand-in rather than a secret.
const PLACEHOLDER_WORDS: &[&str] = &[
    "example",
    "examples",
    "dummy",
    "fake",
    "mock",
    "placeholder",
    "changeme",
    "redacted",
    "your",
    "xxx",
    "todo",
    "fixme",
    "none",
    "null",
    "nil",
    "undefined",
    "true",
    "false",
    "test",
    "testing",
    "invalid",
];

/// Substrings that mark a value as elided, masked or templated.
const PLACEHOLDER_MARKS: &[&str] = &[
    "xxxx",
    "****",
    "....",
    "\u{2026}",
    "####",
    "????",
    "____",
    "${",
    "{{",
    "}}",
    "<%",
    "%>",
    "$(",
    "os.environ",
    "getenv",
    "process.env",
    "env[",
    "secrets.",
    "changeme",
    "change_me",
    "your_",
    "your-",
    "yourkey",
    "example",
    "placeholder",
    "[redacted",
    "redacted]",
    "(redacted",
];

/// Recognises placeholders: elided, masked or templated values and toy sequences.
pub(crate) struct PlaceholderCheck {
    marks: aho_corasick::AhoCorasick,
}

impl PlaceholderCheck {
    pub fn new() -> PlaceholderCheck {
        let marks = aho_corasick::AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(PLACEHOLDER_MARKS)
            .expect("placeholder marks build");
        PlaceholderCheck { marks }
    }

    /// Whether a value (with any vendor prefix already removed) is a placeholder.
    pub fn matches(&self, v: &[u8]) -> bool {
        if v.is_empty() {
            return true;
        }
        if self.marks.is_match(v) {
            return true;
        }
        if v.len() >= 3 && v.iter().all(|&b| b == v[0]) {
            return true;
        }
        if matches!(v.first(), Some(b'<' | b'$' | b'%' | b'{')) && matches!(v.last(), Some(b'>' | b'%' | b'}')) {
            return true;
        }
        let lower = v.to_ascii_lowercase();
        if has_ascending_run(&lower, 8) {
            return true;
        }
        // Stand-in words only count in word-like values (`test-secret`,
        // `dummy_key_1`); a random key splits into many short pieces, and one
        // of them spelling `nil` or `true` means nothing.
        words(&lower).count() <= 4 && words(&lower).any(|w| PLACEHOLDER_WORDS.iter().any(|p| p.as_bytes() == w))
    }
}

/// Splits at non-alphanumeric bytes and at letter/digit transitions.
fn words(s: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < s.len() && !s[i].is_ascii_alphanumeric() {
            i += 1;
        }
        if i >= s.len() {
            return None;
        }
        let start = i;
        let digit = s[i].is_ascii_digit();
        while i < s.len() && s[i].is_ascii_alphanumeric() && s[i].is_ascii_digit() == digit {
            i += 1;
        }
        Some(&s[start..i])
    })
}

/// Whether `s` holds `len` consecutive characters that count upwards (`abcdefgh`, `12345678`).
fn has_ascending_run(s: &[u8], len: usize) -> bool {
    let mut run = 1;
    for w in s.windows(2) {
        if w[1] == w[0].wrapping_add(1) && w[1].is_ascii_alphanumeric() {
            run += 1;
            if run >= len {
                return true;
            }
        } else {
            run = 1;
        }
    }
    false
}

/// Whether the secret's whole tokens include one of the stopwords.
pub(crate) fn has_stopword(secret: &[u8], stopwords: &[Vec<u8>]) -> bool {
    if stopwords.is_empty() {
        return false;
    }
    let lower = secret.to_ascii_lowercase();
    lower
        .split(|b| !b.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .any(|w| stopwords.iter().any(|s| s.as_slice() == w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy() {
        assert_eq!(shannon_entropy(b"aaaa"), 0.0);
        assert!((shannon_entropy(b"ab") - 1.0).abs() < 1e-9);
        assert!(shannon_entropy(b"8f3kQ9zLm2Xv7Rt1") > 3.5);
    }

    #[test]
    fn luhn_cards() {
        assert!(luhn(b"4111111111111111"));
        assert!(luhn(b"4111 1111 1111 1111"));
        assert!(luhn(b"5555-5555-5555-4444"));
        assert!(!luhn(b"4111111111111112"));
        assert!(!luhn(b"41111"), "too short");
        assert!(!luhn(b"4111a11111111111"));
    }

    #[test]
    fn prc_id() {
        assert!(prc_resident_id(b"11010519491231002X"), "the standard's sample has a valid check");
        assert!(prc_resident_id(b"11010519491231002x"));
        assert!(!prc_resident_id(b"110105194912310021"), "wrong check character");
        assert!(!prc_resident_id(b"990105194912310028"), "no such province");
        assert!(!prc_resident_id(b"110105194902300027"), "30 February");
        assert!(!prc_resident_id(b"1101051949123100"), "too short");
    }

    fn b62(mut n: u64) -> String {
        let mut out = Vec::new();
        while n > 0 {
            out.push(BASE62[(n % 62) as usize]);
            n /= 62;
        }
        while out.len() < 6 {
            out.push(b'0');
        }
        out.reverse();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn github() {
        let body = "R7kPq2LmN9xVt4Hs8WzC1bYd6FjG3aEu";
        let random = &body[..30];
        let token = format!("ghp_{random}{}", b62(crc32fast::hash(random.as_bytes()) as u64));
        assert!(github_checksum(token.as_bytes()), "{token}");
        let mut bad = token.clone().into_bytes();
        bad[10] = if bad[10] == b'a' { b'b' } else { b'a' };
        assert!(!github_checksum(&bad));
        assert!(!github_checksum(b"ghp_short"));
    }

    #[test]
    fn jwt_structure() {
        let good = b"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI0MiIsIm5hbWUiOiJhbGljZSJ9.c2lnbmF0dXJl";
        assert!(jwt(good));
        assert!(!jwt(b"eyJmb28iOiJiYXIifQ.eyJzdWIiOiI0MiJ9.c2ln"), "header without alg");
        assert!(!jwt(b"eyJhbGciOiJIUzI1NiJ9.notjson.sig"));
        assert!(!jwt(b"abc.def"));
    }

    #[test]
    fn pem() {
        let rsa = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n-----END RSA PRIVATE KEY-----";
        assert!(pem_body(rsa.as_bytes()));
        let escaped = r"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n";
        assert!(pem_body(escaped.as_bytes()));
        assert!(!pem_body(b"-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----"));
        assert!(!pem_body(b"-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----"));
    }

    #[test]
    fn placeholders() {
        for p in [
            "xxxxxxxxxxxxxxxx",
            "your-api-key-here",
            "<token>",
            "${API_KEY}",
            "********",
            "test-secret",
            "None",
            "abcdefghijklmnop",
            "1234567890",
            "changeme",
            "EXAMPLEKEY",
            "os.environ['KEY']",
            "YOUR_API_KEY",
            "sk-a****awAA",
        ] {
            assert!(PlaceholderCheck::new().matches(p.as_bytes()), "{p} should be a placeholder");
        }
        for s in ["Summer2024!", "R7kPq2LmN9xVt4Hs8WzC", "Contest2024", "hunter2-Qx9", "Xk4nil9Qp2Ls7true2Rv8Nw3"] {
            assert!(!PlaceholderCheck::new().matches(s.as_bytes()), "{s} is not a placeholder");
        }
    }

    #[test]
    fn literals() {
        for lit in ["hunter2", "Summer2024!", "Xk29vLq7mZ", "a-b-c-d", "9f8e7d6c", "irWQYyEgJdOs"] {
            assert!(literal(lit.as_bytes()), "{lit} is a literal");
        }
        for r in [
            "pw",
            "password",
            "args.password",
            "self.db_pass2",
            "getpass()",
            "str",
            "getpass.getpass('x')",
            "$PASS",
            "%DB_PASSWORD%",
            "dbPassword",
            "DATABASE_PASSWORD",
        ] {
            assert!(!literal(r.as_bytes()), "{r} is a reference");
        }
    }

    #[test]
    fn url_passwords() {
        let p = PlaceholderCheck::new();
        assert!(url_password(b"app:Xk29vLq7mZ", &p));
        assert!(!url_password(b"user:password", &p));
        assert!(!url_password(b"postgres:postgres", &p));
        assert!(!url_password(b"app:${DB_PASSWORD}", &p));
        assert!(url_password(b"postgresql://app:Xk29vLq7mZ@db:5432/x", &p));
        assert!(!url_password(b"postgresql://user:password@localhost/db", &p));
    }

    #[test]
    fn stopwords_whole_tokens() {
        let sw = vec![b"test".to_vec()];
        assert!(has_stopword(b"test-secret", &sw));
        assert!(!has_stopword(b"Contest2024", &sw));
    }
}
