//! Scanning and redacting `.ipynb` files (nbformat 4).
//!
//! Scanned: every cell's `source`; every output's stream `text`, text MIME
//! types of `data` (joined when stored as a list of lines), every string
//! inside JSON MIME types, and an error's `ename`, `evalue` and `traceback`.
//! Left alone: base64 images and other binary MIME types, attachments,
//! output and notebook metadata (execution ids, hashes), widget state.

use std::fmt;

use leakguard_engine::{Engine, Finding, Style};
use serde_json::Value;

use crate::mime::{self, MimeKind};

/// Where in a notebook a text lies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    /// The cell's source.
    Source,
    /// The cell's `index`-th output (0-based).
    Output { index: usize },
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Source => f.write_str("source"),
            Place::Output { index } => write!(f, "output {index}"),
        }
    }
}

/// A secret found in a notebook.
#[derive(Clone, Debug)]
pub struct NotebookFinding {
    /// Index in the notebook's `cells` list (0-based).
    pub cell: usize,
    pub place: Place,
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

/// One text of a notebook: a string, or a list of strings stored as lines.
enum Text<'a> {
    One(&'a mut String),
    Lines(&'a mut Vec<Value>),
}

impl Text<'_> {
    fn get(&self) -> Option<String> {
        match self {
            Text::One(s) => Some((*s).clone()),
            Text::Lines(v) => v.iter().map(|x| x.as_str()).collect::<Option<Vec<_>>>().map(|p| p.concat()),
        }
    }

    fn set(&mut self, new: String) {
        match self {
            Text::One(s) => **s = new,
            // Same form as Jupyter writes: one string per line, newline kept.
            Text::Lines(v) => **v = new.split_inclusive('\n').map(|l| Value::String(l.to_string())).collect(),
        }
    }
}

fn text_of(v: &mut Value) -> Option<Text<'_>> {
    match v {
        Value::String(s) => Some(Text::One(s)),
        Value::Array(a) if a.iter().all(Value::is_string) => Some(Text::Lines(a)),
        _ => None,
    }
}

/// Calls `f` for every text of the notebook.
fn for_each_text(nb: &mut Value, f: &mut dyn FnMut(usize, Place, Text<'_>)) -> Result<(), NotebookError> {
    let cells = nb
        .get_mut("cells")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| NotebookError::Format("no `cells` list (nbformat 3 and older are not supported)".into()))?;
    for (i, cell) in cells.iter_mut().enumerate() {
        if let Some(t) = cell.get_mut("source").and_then(text_of) {
            f(i, Place::Source, t);
        }
        let Some(outputs) = cell.get_mut("outputs").and_then(Value::as_array_mut) else { continue };
        for (j, out) in outputs.iter_mut().enumerate() {
            let place = || Place::Output { index: j };
            let Some(obj) = out.as_object_mut() else { continue };
            for key in ["text", "ename", "evalue"] {
                if let Some(t) = obj.get_mut(key).and_then(text_of) {
                    f(i, place(), t);
                }
            }
            if let Some(Value::Array(tb)) = obj.get_mut("traceback") {
                for line in tb.iter_mut() {
                    if let Value::String(s) = line {
                        f(i, place(), Text::One(s));
                    }
                }
            }
            if let Some(Value::Object(data)) = obj.get_mut("data") {
                for (mime_type, value) in data.iter_mut() {
                    match mime::kind(mime_type) {
                        MimeKind::Text => {
                            if let Some(t) = text_of(value) {
                                f(i, place(), t);
                            }
                        }
                        MimeKind::Json => for_each_json_string(value, &mut |s| f(i, place(), Text::One(s))),
                        MimeKind::Binary => {}
                    }
                }
            }
        }
    }
    Ok(())
}

/// Calls `f` for every string inside a JSON value (keys stay as they are).
pub fn for_each_json_string(v: &mut Value, f: &mut dyn FnMut(&mut String)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(a) => a.iter_mut().for_each(|x| for_each_json_string(x, f)),
        Value::Object(o) => o.values_mut().for_each(|x| for_each_json_string(x, f)),
        _ => {}
    }
}

fn findings_in(
    engine: &Engine,
    cell: usize,
    place: &Place,
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
    for_each_text(&mut nb, &mut |cell, place, t| {
        if let Some(text) = t.get() {
            findings_in(engine, cell, &place, &text, &mut out);
        }
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
    for_each_text(&mut nb, &mut |cell, place, mut t| {
        let Some(text) = t.get() else { return };
        let found = findings_in(engine, cell, &place, &text, &mut findings);
        if !found.is_empty() {
            let masked = engine.redact_findings(text.as_bytes(), &found, style);
            // Masks replace whole characters, so valid UTF-8 stays valid.
            t.set(String::from_utf8_lossy(&masked).into_owned());
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
        let places: Vec<(usize, String, usize)> = f.iter().map(|x| (x.cell, x.place.to_string(), x.line)).collect();
        assert!(places.contains(&(1, "source".into(), 2)), "{places:?}");
        assert!(places.contains(&(1, "output 0".into(), 2)), "{places:?}");
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
    fn damaged_notebooks_are_errors() {
        let e = Engine::builtin();
        let nb = notebook();
        assert!(matches!(scan(&e, &nb.as_bytes()[..nb.len() / 2]), Err(NotebookError::Json(_))));
        assert!(matches!(scan(&e, b"{\"worksheets\": []}"), Err(NotebookError::Format(_))));
    }
}
