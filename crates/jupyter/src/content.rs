//! The one walk over Jupyter JSON: which strings of a kernel message's
//! content (and of a notebook's outputs, which are the same data saved) hold
//! user data, and how they are visited.
//!
//! Rules (research/jupyter.md section 2):
//!
//! * text MIME types are visited as strings (a notebook's list of lines is
//!   joined first, so a private key split over lines is one text);
//! * JSON MIME types and metadata are walked as values, every string inside
//!   visited on its own: serialized JSON is never matched as text, so a mask
//!   can never cut an escape;
//! * binary MIME types (images, PDF, ...) are never visited: changing a
//!   base64 string corrupts the file;
//! * object keys are visited too (a dict keyed by a secret), except the
//!   names of the protocol and of nbformat, which carry no user data.
//!
//! Visitors change strings in place; everything else is left as it was.

use serde_json::{Map, Value};

use crate::mime::{self, MimeKind};

/// Shortest string worth a scan, in bytes: no rule matches a shorter secret.
pub const MIN_LEN: usize = 6;

/// What a visited string is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Something the kernel shows: output, replies, prompts.
    Output,
    /// Something the user typed: cell code, input history.
    Input,
}

/// Receives each string worth checking, and may change it.
pub trait Visitor {
    fn text(&mut self, text: &mut String, role: Role);
}

impl<F: FnMut(&mut String, Role)> Visitor for F {
    fn text(&mut self, text: &mut String, role: Role) {
        self(text, role)
    }
}

/// Names of the messaging protocol and of nbformat: as keys they carry no
/// user data (their values are still walked).
const PROTOCOL_KEYS: &[&str] = &[
    "application/javascript",
    "application/json",
    "arguments",
    "command",
    "content",
    "cursor_end",
    "cursor_pos",
    "cursor_start",
    "data",
    "detail_level",
    "display_id",
    "ename",
    "evaluateName",
    "evalue",
    "execution_count",
    "execution_state",
    "found",
    "history",
    "image/svg+xml",
    "indexedVariables",
    "isolated",
    "matches",
    "message",
    "metadata",
    "name",
    "namedVariables",
    "output_type",
    "outputs",
    "payload",
    "presentationHint",
    "replace",
    "request_seq",
    "restart",
    "session_id",
    "source",
    "status",
    "success",
    "text",
    "text/html",
    "text/latex",
    "text/markdown",
    "text/plain",
    "traceback",
    "transient",
    "user_expressions",
    "variables",
    "variablesReference",
];

fn is_protocol_key(k: &str) -> bool {
    PROTOCOL_KEYS.binary_search(&k).is_ok()
}

/// A key that names a MIME type (`image/png`), as opposed to user data.
fn looks_mime(k: &str) -> bool {
    k.contains('/') && !k.contains(' ') && k.len() < 128
}

fn visit(s: &mut String, role: Role, v: &mut dyn Visitor) {
    if s.len() >= MIN_LEN {
        v.text(s, role);
    }
}

/// Visits every string of a JSON value; values under binary MIME keys are
/// skipped, keys that are not protocol names are visited too.
pub fn walk_value(value: &mut Value, role: Role, v: &mut dyn Visitor) {
    match value {
        Value::String(s) => visit(s, role, v),
        Value::Array(a) => a.iter_mut().for_each(|x| walk_value(x, role, v)),
        Value::Object(o) => walk_object(o, role, v),
        _ => {}
    }
}

fn walk_object(o: &mut Map<String, Value>, role: Role, v: &mut dyn Visitor) {
    let mut renamed = false;
    let mut new_keys = Vec::new();
    for (k, x) in o.iter_mut() {
        if looks_mime(k) && mime::kind(k) == MimeKind::Binary {
            new_keys.push(None);
            continue;
        }
        walk_value(x, role, v);
        if is_protocol_key(k) || k.len() < MIN_LEN {
            new_keys.push(None);
            continue;
        }
        let mut nk = k.clone();
        v.text(&mut nk, role);
        renamed |= nk != *k;
        new_keys.push(Some(nk).filter(|nk| nk != k));
    }
    if renamed {
        // Rebuilt to keep the order of the keys.
        let old = std::mem::take(o);
        for ((k, x), nk) in old.into_iter().zip(new_keys) {
            o.insert(nk.unwrap_or(k), x);
        }
    }
}

/// Visits a notebook "multiline string": a string, or a list of lines
/// joined into one text (and stored back as lines when changed).
pub fn walk_lines(value: &mut Value, role: Role, v: &mut dyn Visitor) {
    match value {
        Value::String(s) => visit(s, role, v),
        Value::Array(a) if a.iter().all(Value::is_string) => {
            let joined: String = a.iter().filter_map(Value::as_str).collect();
            let mut text = joined.clone();
            visit(&mut text, role, v);
            if text != joined {
                *a = text.split_inclusive('\n').map(|l| Value::String(l.to_string())).collect();
            }
        }
        other => walk_value(other, role, v),
    }
}

/// Visits a MIME bundle (`data` of a display, a result, an attachment):
/// text types as text, JSON types as values, binary types not at all.
pub fn walk_bundle(data: &mut Value, v: &mut dyn Visitor) {
    let Value::Object(o) = data else {
        return walk_value(data, Role::Output, v);
    };
    for (mime_type, x) in o.iter_mut() {
        match mime::kind(mime_type) {
            MimeKind::Text => walk_lines(x, Role::Output, v),
            MimeKind::Json => walk_value(x, Role::Output, v),
            MimeKind::Binary => {}
        }
    }
}

/// An output of a notebook cell (nbformat's form of an iopub message).
pub fn walk_output(out: &mut Value, v: &mut dyn Visitor) {
    let Some(o) = out.as_object_mut() else { return };
    let kind = o.get("output_type").and_then(Value::as_str).unwrap_or("").to_string();
    match kind.as_str() {
        "stream" => {
            if let Some(t) = o.get_mut("text") {
                walk_lines(t, Role::Output, v);
            }
        }
        "display_data" | "execute_result" | "update_display_data" => {
            if let Some(d) = o.get_mut("data") {
                walk_bundle(d, v);
            }
            if let Some(m) = o.get_mut("metadata") {
                walk_value(m, Role::Output, v);
            }
        }
        "error" => {
            for key in ["ename", "evalue", "traceback"] {
                if let Some(x) = o.get_mut(key) {
                    walk_value(x, Role::Output, v);
                }
            }
        }
        _ => {
            for (k, x) in o.iter_mut() {
                if k != "output_type" {
                    walk_value(x, Role::Output, v);
                }
            }
        }
    }
}

/// How a kernel message is treated, by its `msg_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageKind {
    /// Carries no user data: passed as it is.
    Skip,
    /// `stream`: its `text` arrives in pieces; a channel keeps a carry
    /// buffer per (parent, stream name) and visits what is final.
    Stream,
    /// Widget comm messages: their state is two-way bound, masking it
    /// changes what the front end sends back; walked only when asked.
    Comm,
    /// `execute_input`: the cell's code, echoed.
    ExecuteInput,
    /// Outputs that block mode withholds (`display_data`, `execute_result`,
    /// `update_display_data`, `error`).
    Output,
    /// Everything else (replies, prompts, debug events): walked, masked in
    /// every mode, never withheld.
    Reply,
}

/// Classifies a message type.
pub fn message_kind(msg_type: &str) -> MessageKind {
    match msg_type {
        "status" | "clear_output" | "kernel_info_reply" | "shutdown_reply" | "interrupt_reply"
        | "is_complete_reply" | "comm_info_reply" | "iopub_welcome" | "shutdown_request" | "interrupt_request" => {
            MessageKind::Skip
        }
        "stream" => MessageKind::Stream,
        "comm_open" | "comm_msg" | "comm_close" => MessageKind::Comm,
        "execute_input" => MessageKind::ExecuteInput,
        "display_data" | "update_display_data" | "execute_result" | "error" => MessageKind::Output,
        _ => MessageKind::Reply,
    }
}

/// Visits a message's content and metadata (not `stream` text, which
/// needs a carry buffer, and not skipped types). `comm` says whether widget
/// state is walked. Cell code (`execute_input`) and history are visited as
/// [`Role::Input`].
pub fn walk_message(msg_type: &str, content: &mut Value, metadata: &mut Value, comm: bool, v: &mut dyn Visitor) {
    match message_kind(msg_type) {
        MessageKind::Skip | MessageKind::Stream => return,
        MessageKind::Comm => {
            if let Some(d) = content.get_mut("data").filter(|_| comm) {
                walk_value(d, Role::Output, v);
            }
            return;
        }
        MessageKind::ExecuteInput => {
            if let Some(Value::String(code)) = content.get_mut("code") {
                visit(code, Role::Input, v);
            }
        }
        MessageKind::Output | MessageKind::Reply => {
            let role = if msg_type == "history_reply" { Role::Input } else { Role::Output };
            walk_value(content, role, v);
        }
    }
    walk_value(metadata, Role::Output, v);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const S: &str = "SECRET-0123456789";

    fn mask(s: &mut String, _: Role) {
        *s = s.replace(S, "[REDACTED]");
    }

    #[test]
    fn protocol_keys_are_sorted() {
        assert!(PROTOCOL_KEYS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn display_bundle_masks_text_and_json_not_binary() {
        let png = format!("iVBOR{S}");
        let mut content = json!({
            "data": {"text/plain": format!("'{S}'"), "image/png": png,
                     "application/vnd.custom+json": {"k": [S, 1, null]}},
            "metadata": {"image/png": {"width": 10}},
            "transient": {"display_id": "abc123"}
        });
        let mut md = json!({"note": S});
        walk_message("display_data", &mut content, &mut md, false, &mut mask);
        assert_eq!(content["data"]["text/plain"], "'[REDACTED]'");
        assert_eq!(content["data"]["image/png"], png.as_str());
        assert_eq!(content["data"]["application/vnd.custom+json"]["k"], json!(["[REDACTED]", 1, null]));
        assert_eq!(md["note"], "[REDACTED]");
    }

    #[test]
    fn keys_are_masked_in_order_protocol_keys_are_not() {
        let mut v = json!({"a_first": 1, S: "x", "text": S, "z_last": 2});
        walk_value(&mut v, Role::Output, &mut mask);
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["a_first", "[REDACTED]", "text", "z_last"]);
        assert_eq!(v["text"], "[REDACTED]");
    }

    #[test]
    fn roles_and_skips() {
        let mut seen = Vec::new();
        let mut md = json!({});
        let mut record = |s: &mut String, r: Role| seen.push((s.clone(), r));
        walk_message("execute_input", &mut json!({"code": S, "execution_count": 3}), &mut md, false, &mut record);
        walk_message("history_reply", &mut json!({"history": [[0, 1, S]]}), &mut md, false, &mut record);
        walk_message("inspect_reply", &mut json!({"data": {"text/plain": S}}), &mut md, false, &mut record);
        walk_message("status", &mut json!({"execution_state": S}), &mut md, false, &mut record);
        walk_message("comm_msg", &mut json!({"data": {"state": {"value": S}}}), &mut md, false, &mut record);
        walk_message("stream", &mut json!({"name": "stdout", "text": S}), &mut md, false, &mut record);
        walk_message("comm_msg", &mut json!({"data": {"state": {"value": S}}}), &mut md, true, &mut record);
        let roles: Vec<Role> = seen.iter().map(|x| x.1).collect();
        assert_eq!(roles, [Role::Input, Role::Input, Role::Output, Role::Output], "widget state only when asked");
    }

    #[test]
    fn lines_are_joined_and_split_back() {
        let mut v = json!(["key: SECRET-", "0123456789\n", "next\n"]);
        walk_lines(&mut v, Role::Output, &mut mask);
        // The secret was split over two list items: found in the joined text.
        assert_eq!(v, json!(["key: [REDACTED]\n", "next\n"]));
        let mut clean = json!(["a\n", "b"]);
        walk_lines(&mut clean, Role::Output, &mut mask);
        assert_eq!(clean, json!(["a\n", "b"]), "unchanged lines keep their split");
    }

    #[test]
    fn short_strings_are_not_visited() {
        let mut n = 0;
        walk_value(&mut json!(["abc", "abcdef", {"k": "12345"}]), Role::Output, &mut |_: &mut String, _| n += 1);
        assert_eq!(n, 1);
    }
}
