//! What to do with each part of a MIME bundle.

/// How a MIME bundle entry is treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MimeKind {
    /// A string (or list of strings) of text: scanned as text.
    Text,
    /// A JSON value: every string in it is scanned.
    Json,
    /// Base64 binary or opaque data: never changed.
    Binary,
}

/// Types under these prefixes are binary, except the text-like ones below.
const BINARY_PREFIXES: &[&str] = &["image/", "audio/", "video/", "font/", "model/"];
const BINARY: &[&str] = &[
    "application/gzip",
    "application/octet-stream",
    "application/pdf",
    "application/vnd.ms-excel",
    "application/wasm",
    "application/x-hdf5",
    "application/x-npy",
    "application/x-tar",
    "application/zip",
];

/// Classifies a MIME type of a display/execute result bundle. Unknown types
/// are text: for a redactor a missed secret costs more than a needless scan.
pub fn kind(mime: &str) -> MimeKind {
    let m = mime.to_ascii_lowercase();
    let m = m.split(';').next().unwrap_or("").trim();
    if m == "application/json" || m.ends_with("+json") {
        return MimeKind::Json;
    }
    if m.ends_with("+xml") {
        return MimeKind::Text; // image/svg+xml
    }
    if BINARY_PREFIXES.iter().any(|p| m.starts_with(p)) || BINARY.contains(&m) {
        return MimeKind::Binary;
    }
    MimeKind::Text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(kind("text/plain"), MimeKind::Text);
        assert_eq!(kind("text/html"), MimeKind::Text);
        assert_eq!(kind("image/svg+xml"), MimeKind::Text);
        assert_eq!(kind("application/javascript"), MimeKind::Text);
        assert_eq!(kind("application/x-custom"), MimeKind::Text);
        assert_eq!(kind("application/json"), MimeKind::Json);
        assert_eq!(kind("application/vnd.plotly.v1+json"), MimeKind::Json);
        assert_eq!(kind("image/png"), MimeKind::Binary);
        assert_eq!(kind("IMAGE/JPEG; charset=binary"), MimeKind::Binary);
        assert_eq!(kind("application/pdf"), MimeKind::Binary);
        assert_eq!(kind("video/mp4"), MimeKind::Binary);
    }
}
