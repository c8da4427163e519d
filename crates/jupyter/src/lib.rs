//! Jupyter's data as leakguard sees it: which strings of a notebook or a
//! kernel message are text to scan, which are binary (images, PDF) or
//! metadata to leave alone, and how to mask text inside them without
//! breaking their structure.
//!
//! Notebooks are scanned as parsed JSON, never as raw text: escaped quotes
//! and newlines do not hide secrets, base64 images and metadata hashes do not
//! raise false alarms, and a redacted notebook is the same JSON with only
//! string values changed.

pub mod mime;
pub mod notebook;
