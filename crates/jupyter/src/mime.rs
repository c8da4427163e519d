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

/// Classifies a MIME type of a display/execute result bundle.
pub fn kind(mime: &str) -> MimeKind {
    let m = mime.to_ascii_lowercase();
    let m = m.split(';').next().unwrap_or("").trim();
    if m == "application/json" || m.ends_with("+json") {
        return MimeKind::Json;
    }
    if m.starts_with("text/")
        || m == "image/svg+xml"
        || m == "application/javascript"
        || m.ends_with("+xml")
        || m == "application/xml"
    {
        return MimeKind::Text;
    }
    MimeKind::Binary
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(kind("text/plain"), MimeKind::Text);
        assert_eq!(kind("text/html"), MimeKind::Text);
        assert_eq!(kind("image/svg+xml"), MimeKind::Text);
        assert_eq!(kind("application/json"), MimeKind::Json);
        assert_eq!(kind("application/vnd.plotly.v1+json"), MimeKind::Json);
        assert_eq!(kind("image/png"), MimeKind::Binary);
        assert_eq!(kind("application/pdf"), MimeKind::Binary);
    }
}
