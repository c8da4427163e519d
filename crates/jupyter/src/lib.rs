//! Jupyter's data as leakguard sees it: which strings of a notebook or a
//! kernel message are text to scan, which are binary (images, PDF) or
//! metadata to leave alone, and how to mask text inside them without
//! breaking their structure.
//!
//! Notebooks are scanned as parsed JSON, never as raw text: escaped quotes
//! and newlines do not hide secrets, base64 images and metadata hashes do not
//! raise false alarms, and a redacted notebook is the same JSON with only
//! string values changed.
//!
//! [`content`] is the one walk of Jupyter JSON that every channel shares:
//! the kernel proxy walks kernel messages with it, the CLI and the server's
//! save hook walk notebooks (whose outputs are the same data saved), and the
//! Python package reaches it through the native module.

pub mod content;
pub mod guarded;
pub mod mime;
pub mod notebook;
