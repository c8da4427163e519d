//! The Jupyter wire protocol: a message's frames, and their signature.
//!
//! ```text
//! [identities...] b"<IDS|MSG>" signature header parent_header metadata content [buffers...]
//! ```
//!
//! The signature is the hex HMAC of the four JSON frames with the key of
//! the connection file. A message that is not changed keeps every frame as
//! it came, so it passes byte for byte.

use hmac::{Hmac, Mac};
use leakguard_policy::audit::{from_hex, to_hex};
use serde::Deserialize;
use sha2::Sha256;

/// Separates routing identities from the message.
pub const DELIMITER: &[u8] = b"<IDS|MSG>";

type HmacSha256 = Hmac<Sha256>;

/// A message that cannot be relayed as it is.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("no <IDS|MSG> delimiter")]
    NoDelimiter,
    #[error("{0} frames after the delimiter, at least 5 expected")]
    Truncated(usize),
    #[error("bad signature")]
    BadSignature,
    #[error("the {part} is not valid JSON: {reason}")]
    Json { part: &'static str, reason: String },
    #[error("signature_scheme {0:?} is not supported (only hmac-sha256)")]
    Scheme(String),
}

/// A message's frames, split at the delimiter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    frames: Vec<Vec<u8>>,
    delim: usize,
}

const SIG: usize = 1;
const HEADER: usize = 2;
const PARENT: usize = 3;
const METADATA: usize = 4;
const CONTENT: usize = 5;

/// The parts of a header this relay reads.
#[derive(Debug, Default, Deserialize)]
pub struct Header {
    #[serde(default)]
    pub msg_id: String,
    #[serde(default)]
    pub msg_type: String,
    #[serde(default)]
    pub session: String,
    #[serde(default)]
    pub username: String,
}

impl Message {
    pub fn parse(frames: Vec<Vec<u8>>) -> Result<Message, WireError> {
        let delim = frames.iter().position(|f| f == DELIMITER).ok_or(WireError::NoDelimiter)?;
        let after = frames.len() - delim - 1;
        if after < 5 {
            return Err(WireError::Truncated(after));
        }
        Ok(Message { frames, delim })
    }

    /// A new message, signed.
    pub fn build(idents: Vec<Vec<u8>>, parts: [Vec<u8>; 4], buffers: Vec<Vec<u8>>, signer: &Signer) -> Message {
        let delim = idents.len();
        let mut frames = idents;
        frames.push(DELIMITER.to_vec());
        frames.push(Vec::new());
        frames.extend(parts);
        frames.extend(buffers);
        let mut m = Message { frames, delim };
        m.sign(signer);
        m
    }

    fn part(&self, i: usize) -> &[u8] {
        &self.frames[self.delim + i]
    }

    pub fn idents(&self) -> &[Vec<u8>] {
        &self.frames[..self.delim]
    }

    pub fn signature(&self) -> &[u8] {
        self.part(SIG)
    }

    pub fn header_bytes(&self) -> &[u8] {
        self.part(HEADER)
    }

    pub fn parent_bytes(&self) -> &[u8] {
        self.part(PARENT)
    }

    pub fn metadata(&self) -> &[u8] {
        self.part(METADATA)
    }

    pub fn content(&self) -> &[u8] {
        self.part(CONTENT)
    }

    pub fn buffers(&self) -> &[Vec<u8>] {
        &self.frames[self.delim + CONTENT + 1..]
    }

    /// The four signed frames.
    fn signed_parts(&self) -> [&[u8]; 4] {
        [self.part(HEADER), self.part(PARENT), self.part(METADATA), self.part(CONTENT)]
    }

    pub fn header(&self) -> Result<Header, WireError> {
        parse_header(self.header_bytes(), "header")
    }

    /// The `msg_id` of the parent header; `None` when there is no parent.
    pub fn parent_id(&self) -> Result<Option<String>, WireError> {
        let p = parse_header(self.parent_bytes(), "parent header")?;
        Ok(Some(p.msg_id).filter(|id| !id.is_empty()))
    }

    pub fn set_header(&mut self, header: Vec<u8>) {
        let i = self.delim + HEADER;
        self.frames[i] = header;
    }

    pub fn set_metadata(&mut self, metadata: Vec<u8>) {
        let i = self.delim + METADATA;
        self.frames[i] = metadata;
    }

    pub fn set_content(&mut self, content: Vec<u8>) {
        let i = self.delim + CONTENT;
        self.frames[i] = content;
    }

    /// The same routing, header, parent and metadata with another content
    /// and no buffers (not yet signed): a message derived from this one.
    pub fn with_content(&self, content: Vec<u8>) -> Message {
        let mut frames = self.frames[..self.delim + CONTENT].to_vec();
        frames.push(content);
        Message { frames, delim: self.delim }
    }

    pub fn set_idents(&mut self, idents: Vec<Vec<u8>>) {
        let rest = self.frames.split_off(self.delim);
        self.frames = idents;
        self.delim = self.frames.len();
        self.frames.extend(rest);
    }

    /// Signs the message again after a change.
    pub fn sign(&mut self, signer: &Signer) {
        let sig = signer.sign(self.signed_parts());
        let i = self.delim + SIG;
        self.frames[i] = sig;
    }

    pub fn verify(&self, signer: &Signer) -> Result<(), WireError> {
        signer.verify(self.signature(), self.signed_parts())
    }

    pub fn into_frames(self) -> Vec<Vec<u8>> {
        self.frames
    }
}

fn parse_header(bytes: &[u8], part: &'static str) -> Result<Header, WireError> {
    serde_json::from_slice(bytes).map_err(|e| WireError::Json { part, reason: e.to_string() })
}

/// Signs and verifies with the connection file's key.
#[derive(Clone)]
pub struct Signer {
    /// `None` when the key is empty: Jupyter then neither signs nor checks.
    mac: Option<HmacSha256>,
}

impl Signer {
    pub fn new(scheme: &str, key: &[u8]) -> Result<Signer, WireError> {
        if scheme != "hmac-sha256" {
            return Err(WireError::Scheme(scheme.to_string()));
        }
        let mac = (!key.is_empty()).then(|| HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length"));
        Ok(Signer { mac })
    }

    pub fn authenticates(&self) -> bool {
        self.mac.is_some()
    }

    fn digest(&self, parts: [&[u8]; 4]) -> Option<HmacSha256> {
        let mut m = self.mac.clone()?;
        for p in parts {
            m.update(p);
        }
        Some(m)
    }

    /// The hex signature of the four JSON frames (empty without a key).
    pub fn sign(&self, parts: [&[u8]; 4]) -> Vec<u8> {
        self.digest(parts).map(|m| to_hex(&m.finalize().into_bytes()).into_bytes()).unwrap_or_default()
    }

    /// Checks a signature in constant time.
    pub fn verify(&self, signature: &[u8], parts: [&[u8]; 4]) -> Result<(), WireError> {
        let Some(m) = self.digest(parts) else { return Ok(()) };
        let raw = std::str::from_utf8(signature).ok().and_then(from_hex).ok_or(WireError::BadSignature)?;
        m.verify_slice(&raw).map_err(|_| WireError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> Signer {
        Signer::new("hmac-sha256", b"a0436f6c-1916-498b-8eb9-e81ab9368e84").unwrap()
    }

    fn sample() -> Vec<Vec<u8>> {
        let parts: [&[u8]; 4] = [
            br#"{"msg_id":"m1","msg_type":"stream","session":"s","username":"u","date":"2026-01-01T00:00:00Z","version":"5.3"}"#,
            br#"{"msg_id":"p1","msg_type":"execute_request"}"#,
            b"{}",
            br#"{"name":"stdout","text":"hi\n"}"#,
        ];
        let mut frames = vec![b"stream.stdout".to_vec(), DELIMITER.to_vec(), signer().sign(parts)];
        frames.extend(parts.iter().map(|p| p.to_vec()));
        frames.push(b"\x00\x01binary".to_vec());
        frames
    }

    #[test]
    fn hmac_matches_jupyter_client() {
        // Session(key=b"a0436f6c-...", signature_scheme="hmac-sha256").sign([b"a", b"b", b"c", b"d"])
        let sig = signer().sign([b"a", b"b", b"c", b"d"]);
        assert_eq!(sig, b"3213c4615eb4d7ea3d51e93a31f3b50fc0d41ccb5080ead934ab195784ba9c06".to_vec());
    }

    #[test]
    fn parses_verifies_and_round_trips() {
        let frames = sample();
        let m = Message::parse(frames.clone()).unwrap();
        assert_eq!(m.idents(), [b"stream.stdout".to_vec()]);
        assert_eq!(m.header().unwrap().msg_type, "stream");
        assert_eq!(m.parent_id().unwrap().as_deref(), Some("p1"));
        assert_eq!(m.buffers(), [b"\x00\x01binary".to_vec()]);
        m.verify(&signer()).unwrap();
        assert_eq!(m.into_frames(), frames, "byte for byte");
    }

    #[test]
    fn tampering_is_detected_and_resigning_fixes_it() {
        let mut m = Message::parse(sample()).unwrap();
        m.set_content(br#"{"name":"stdout","text":"changed\n"}"#.to_vec());
        assert_eq!(m.verify(&signer()), Err(WireError::BadSignature));
        m.sign(&signer());
        m.verify(&signer()).unwrap();
        let other = Signer::new("hmac-sha256", b"another key").unwrap();
        assert_eq!(m.verify(&other), Err(WireError::BadSignature));
        let mut unsigned = m.clone();
        let i = unsigned.delim + SIG;
        unsigned.frames[i] = b"not hex!".to_vec();
        assert_eq!(unsigned.verify(&signer()), Err(WireError::BadSignature));
    }

    #[test]
    fn malformed_frames() {
        assert_eq!(Message::parse(vec![b"a".to_vec()]), Err(WireError::NoDelimiter));
        assert_eq!(
            Message::parse(vec![DELIMITER.to_vec(), b"sig".to_vec(), b"{}".to_vec()]),
            Err(WireError::Truncated(2))
        );
        let mut f = sample();
        f[3] = b"{not json".to_vec();
        assert!(matches!(Message::parse(f).unwrap().header(), Err(WireError::Json { part: "header", .. })));
        assert!(matches!(Signer::new("hmac-md5", b"k"), Err(WireError::Scheme(_))));
    }

    #[test]
    fn no_key_means_no_signature() {
        let s = Signer::new("hmac-sha256", b"").unwrap();
        assert!(!s.authenticates());
        assert!(s.sign([b"a", b"b", b"c", b"d"]).is_empty());
        assert!(s.verify(b"whatever", [b"a", b"b", b"c", b"d"]).is_ok());
    }

    #[test]
    fn build_and_set_idents() {
        let s = signer();
        let mut m = Message::build(
            vec![b"id1".to_vec()],
            [b"{}".to_vec(), b"{}".to_vec(), b"{}".to_vec(), b"{}".to_vec()],
            vec![b"buf".to_vec()],
            &s,
        );
        m.verify(&s).unwrap();
        m.set_idents(vec![b"x".to_vec(), b"y".to_vec()]);
        assert_eq!(m.idents().len(), 2);
        assert_eq!(m.buffers(), [b"buf".to_vec()]);
        m.verify(&s).unwrap();
    }
}
