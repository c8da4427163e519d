//! Scanning and redacting `.ipynb` files (nbformat 4).
//!
//! Scanned, through the walk of [`content`](crate::content): every cell's
//! `source`; its outputs as the kernel sent them (stream text, text MIME
//! types as text, JSON MIME types and output metadata as values, an error's
//! `ename`, `evalue` and `traceback`); attachments' text types; cell and
//! notebook metadata as values. Left alone: base64 images and other binary
//! MIME types, and the names of nbformat's own keys.

use std::fmt;

use leakguard_engine::{Engine, Finding, Style};
use serde_json::Value;

use crate::content::{self, Role};

/// Where in a notebook a text lies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    /// The cell's source.
    Source,
    /// The cell's `index`-th output (0-based).
    Output { index: usize },
    /// An attachment of a markdown cell.
    Attachment,
    /// The cell's metadata, or the notebook's when there is no cell.
    Metadata,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Source => f.write_str("source"),
            Place::Output { index } => write!(f, "output {index}"),
            Place::Attachment => f.write_str("attachment"),
            Place::Metadata => f.write_str("metadata"),
        }
    }
}

/// A secret found in a notebook.
#[derive(Clone, Debug)]
pub struct NotebookFinding {
    /// Index in the notebook's `cells` list (0-based); `None` for the
    /// notebook's own metadata.
    pub cell: Option<usize>,
    pub place: Place,
    /// What the text is: cell code is input, the rest output.
    pub role: Role,
    /// Line (1-based) and column (1-based, in characters) within the text.
    pub line: usize,
    pub column: usize,
    /// The engine's finding, offsets relative to the text it was found in.
    pub finding: Finding,
    /// The secret itself (for fingerprints and masked previews; never printed raw).
    pub secret: Vec<u8>,
    /// The line of text holding the secret (for reports that mask it).
    pub context: String,
}

/// A notebook that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum NotebookError {
    #[error("not valid JSON (truncated or damaged notebook?): {0}")]
    Json(#[from] serde_json::Error),
    #[error("not an nbformat 4 notebook: {0}")]
    Format(String),
}

/// Receives a notebook's texts with where they are.
type TextFn<'a> = dyn FnMut(Option<usize>, &Place, &mut String, Role) + 'a;

struct At<'f, 'a> {
    f: &'f mut TextFn<'a>,
    cell: Option<usize>,
    place: Place,
}

impl content::Visitor for At<'_, '_> {
    fn text(&mut self, text: &mut String, role: Role) {
        (self.f)(self.cell, &self.place, text, role)
    }
}

/// Calls `f` for every text of the notebook, with its cell and place; `f`
/// may change the text.
pub fn for_each_text(nb: &mut Value, f: &mut TextFn<'_>) -> Result<(), NotebookError> {
    let cells = nb
        .get_mut("cells")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| NotebookError::Format("no `cells` list (nbformat 3 and older are not supported)".into()))?;
    for (i, cell) in cells.iter_mut().enumerate() {
        let Some(cell) = cell.as_object_mut() else { continue };
        let cell_no = Some(i);
        if let Some(source) = cell.get_mut("source") {
            content::walk_lines(source, Role::Input, &mut At { f, cell: cell_no, place: Place::Source });
        }
        if let Some(Value::Array(outputs)) = cell.get_mut("outputs") {
            for (j, out) in outputs.iter_mut().enumerate() {
                content::walk_output(out, &mut At { f, cell: cell_no, place: Place::Output { index: j } });
            }
        }
        if let Some(Value::Object(attachments)) = cell.get_mut("attachments") {
            for bundle in attachments.values_mut() {
                content::walk_bundle(bundle, &mut At { f, cell: cell_no, place: Place::Attachment });
            }
        }
        if let Some(md) = cell.get_mut("metadata") {
            content::walk_value(md, Role::Output, &mut At { f, cell: cell_no, place: Place::Metadata });
        }
    }
    if let Some(md) = nb.get_mut("metadata") {
        content::walk_value(md, Role::Output, &mut At { f, cell: None, place: Place::Metadata });
    }
    Ok(())
}

fn findings_in(
    engine: &Engine,
    (cell, place, role): (Option<usize>, &Place, Role),
    text: &str,
    out: &mut Vec<NotebookFinding>,
) -> Vec<Finding> {
    let found = engine.find(text.as_bytes());
    for f in &found {
        let before = &text[..f.start];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[f.start..].find('\n').map_or(text.len(), |i| f.start + i);
        out.push(NotebookFinding {
            cell,
            place: place.clone(),
            role,
            line: before.matches('\n').count() + 1,
            column: text[line_start..f.start].chars().count() + 1,
            finding: f.clone(),
            secret: f.secret(text.as_bytes()).to_vec(),
            context: text[line_start..line_end].to_string(),
        });
    }
    found
}

/// Finds every secret in a notebook's text.
pub fn scan(engine: &Engine, json: &[u8]) -> Result<Vec<NotebookFinding>, NotebookError> {
    let mut nb: Value = serde_json::from_slice(json)?;
    let mut out = Vec::new();
    for_each_text(&mut nb, &mut |cell, place, text, role| {
        findings_in(engine, (cell, place, role), text, &mut out);
    })?;
    Ok(out)
}

/// A redacted notebook: the same JSON with only string values changed,
/// written the way Jupyter writes notebooks (indent 1, UTF-8, final newline).
pub struct Redacted {
    pub json: Vec<u8>,
    pub findings: Vec<NotebookFinding>,
}

/// Masks every secret in a notebook's text.
pub fn redact(engine: &Engine, json: &[u8], style: &Style) -> Result<Redacted, NotebookError> {
    let mut nb: Value = serde_json::from_slice(json)?;
    let mut findings = Vec::new();
    for_each_text(&mut nb, &mut |cell, place, text, role| {
        let found = findings_in(engine, (cell, place, role), text, &mut findings);
        if !found.is_empty() {
            let masked = engine.redact_findings(text.as_bytes(), &found, style);
            // Masks replace whole characters, so valid UTF-8 stays valid.
            *text = String::from_utf8_lossy(&masked).into_owned();
        }
    })?;
    let json = if findings.is_empty() { json.to_vec() } else { to_notebook_json(&nb) };
    Ok(Redacted { json, findings })
}

/// Serialises like nbformat: `json.dumps(nb, indent=1, ensure_ascii=False) + "\n"`.
pub fn to_notebook_json(nb: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b" ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    serde::Serialize::serialize(nb, &mut ser).expect("serialising a JSON value into memory cannot fail");
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const GH: &str = "ghp_R7kPq2LmN9xVt4Hs8WzC1bYd6FjG3aEu0K9p";

    fn notebook() -> String {
        let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
        serde_json::json!({
            "cells": [
                {"cell_type": "markdown", "id": "a1", "metadata": {}, "source": ["# Title\n", "no secrets here"]},
                {"cell_type": "code", "id": "b2", "execution_count": 1, "metadata": {},
                 "source": ["import os\n", format!("os.environ[\"GITHUB_TOKEN\"] = \"{GH}\"\n")],
                 "outputs": [
                    {"output_type": "stream", "name": "stdout", "text": ["ok\n", format!("token {GH}\n")]},
                    {"output_type": "display_data", "metadata": {"sha": "5d41402abc4b2a76b9719d911017c592"},
                     "data": {"image/png": png, "text/html": [format!("<b>{GH}</b>")],
                              "application/json": {"nested": {"key": GH}}}},
                    {"output_type": "error", "ename": "ValueError", "evalue": format!("bad {GH}"),
                     "traceback": [format!("\u{1b}[0;31m---> 1\u{1b}[0m token = '{GH}'")]}
                 ]}
            ],
            "metadata": {"kernelspec": {"name": "python3"}},
            "nbformat": 4, "nbformat_minor": 5
        })
        .to_string()
    }

    #[test]
    fn finds_everywhere_with_locations() {
        let e = Engine::builtin();
        let f = scan(&e, notebook().as_bytes()).unwrap();
        let places: Vec<(Option<usize>, String, usize)> =
            f.iter().map(|x| (x.cell, x.place.to_string(), x.line)).collect();
        assert!(places.contains(&(Some(1), "source".into(), 2)), "{places:?}");
        assert!(places.contains(&(Some(1), "output 0".into(), 2)), "{places:?}");
        assert!(places.iter().filter(|p| p.1 == "output 1").count() == 2, "html and json: {places:?}");
        assert!(places.iter().filter(|p| p.1 == "output 2").count() == 2, "evalue and traceback: {places:?}");
    }

    #[test]
    fn redacts_strings_only() {
        let e = Engine::builtin();
        let r = redact(&e, notebook().as_bytes(), &Style::default()).unwrap();
        let text = String::from_utf8(r.json.clone()).unwrap();
        assert!(!text.contains("R7kPq2LmN9"), "{text}");
        let before: Value = serde_json::from_str(&notebook()).unwrap();
        let after: Value = serde_json::from_slice(&r.json).unwrap();
        assert_eq!(
            before["cells"][1]["outputs"][1]["data"]["image/png"],
            after["cells"][1]["outputs"][1]["data"]["image/png"]
        );
        assert_eq!(before["metadata"], after["metadata"]);
        assert_eq!(after["cells"][1]["source"][1], "os.environ[\"GITHUB_TOKEN\"] = \"[REDACTED]\"\n");
        assert!(scan(&e, &r.json).unwrap().is_empty());
        assert!(text.ends_with("}\n") && text.starts_with("{\n \"cells\""));
    }

    #[test]
    fn metadata_and_attachments_are_walked() {
        let nb = serde_json::json!({
            "cells": [{"cell_type": "markdown", "id": "m1", "source": "see image",
                       "metadata": {"tags": [format!("token {GH}")]},
                       "attachments": {"a.png": {"image/png": "iVBORw0KGgo=", "text/plain": GH}}}],
            "metadata": {"papermill": {"parameters": {"token": GH}}},
            "nbformat": 4, "nbformat_minor": 5
        })
        .to_string();
        let e = Engine::builtin();
        let f = scan(&e, nb.as_bytes()).unwrap();
        let places: Vec<(Option<usize>, String)> = f.iter().map(|x| (x.cell, x.place.to_string())).collect();
        assert_eq!(
            places,
            [(Some(0), "attachment".into()), (Some(0), "metadata".into()), (None, "metadata".into())],
            "{places:?}"
        );
        let r = redact(&e, nb.as_bytes(), &Style::default()).unwrap();
        let after: Value = serde_json::from_slice(&r.json).unwrap();
        assert_eq!(after["cells"][0]["attachments"]["a.png"]["image/png"], "iVBORw0KGgo=");
        assert!(!String::from_utf8_lossy(&r.json).contains("R7kPq2LmN9"));
    }

    #[test]
    fn damaged_notebooks_are_errors() {
        let e = Engine::builtin();
        let nb = notebook();
        assert!(matches!(scan(&e, &nb.as_bytes()[..nb.len() / 2]), Err(NotebookError::Json(_))));
        assert!(matches!(scan(&e, b"{\"worksheets\": []}"), Err(NotebookError::Format(_))));
    }
}
