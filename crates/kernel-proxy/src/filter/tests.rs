use std::path::Path;

use leakguard_policy::audit::{Auditor, Channel, Origin};
use leakguard_policy::{Context, LoadOptions, Reloader};

use super::*;

const KEY: &[u8] = b"5ca1ab1e-0000-4000-8000-feedfacecafe";

fn secret() -> String {
    // A GitHub token shape, assembled so no scanner flags this file.
    format!("ghp_{}{}", "R7kPq2LmN9xVt4Hs8WzC1bYd", "6FjG3aEu0K9p")
}

fn shared(dir: &Path, settings: &[(&str, &str)]) -> Arc<Shared> {
    let cfg = dir.join("config.toml");
    std::fs::write(&cfg, format!("audit_key_file = \"{0}/key\"\naudit_log = \"{0}/audit.jsonl\"\n", dir.display()))
        .unwrap();
    let flags = settings.iter().map(|(k, v)| (k.to_string(), v.to_string(), format!("--{k}"))).collect();
    let reloader = Reloader::load(LoadOptions { config_file: Some(cfg), flags, ..LoadOptions::default() }).unwrap();
    let auditor = Arc::new(Auditor::new(&reloader.current().settings).unwrap());
    let mut origin = Origin::new(Channel::Jupyter);
    origin.enforced = true;
    let guard = Guard::new(reloader, auditor, Context { origin, path: None });
    Arc::new(Shared::new(guard, Signer::new("hmac-sha256", KEY).unwrap()))
}

fn audit(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("audit.jsonl")).unwrap_or_default()
}

fn signer() -> Signer {
    Signer::new("hmac-sha256", KEY).unwrap()
}

/// A message as the kernel would send it on iopub.
fn kmsg(msg_type: &str, parent: &str, content: Value) -> Vec<Vec<u8>> {
    static N: AtomicU64 = AtomicU64::new(0);
    let id = N.fetch_add(1, Ordering::Relaxed);
    let header = json!({"msg_id": format!("k-{msg_type}-{id}"), "msg_type": msg_type,
                        "session": "ksession", "username": "kuser", "date": "2026-01-01T00:00:00.000000Z",
                        "version": "5.3"});
    let parent = if parent.is_empty() { json!({}) } else { json!({"msg_id": parent, "msg_type": "execute_request"}) };
    // Python's json.dumps spacing: a message that is not changed must keep it.
    let py = |v: &Value| serde_json::to_string(v).unwrap().replace("\":", "\": ").replace(",\"", ", \"").into_bytes();
    let parts = [py(&header), py(&parent), b"{}".to_vec(), py(&content)];
    Message::build(vec![format!("kernel.x.{msg_type}").into_bytes()], parts, Vec::new(), &signer()).into_frames()
}

fn stream(parent: &str, text: &str) -> Vec<Vec<u8>> {
    kmsg("stream", parent, json!({"name": "stdout", "text": text}))
}

fn status(parent: &str, state: &str) -> Vec<Vec<u8>> {
    kmsg("status", parent, json!({"execution_state": state}))
}

fn run(io: &mut Iopub, msgs: Vec<Vec<Vec<u8>>>) -> (Vec<Message>, Effects) {
    let mut out = Vec::new();
    let mut fx = Effects::default();
    for m in msgs {
        let f = io.message(m, &mut out);
        fx.interrupt |= f.interrupt;
    }
    for m in &out {
        m.verify(&signer()).expect("everything sent is signed");
    }
    (out, fx)
}

fn texts(out: &[Message]) -> Vec<(String, String)> {
    out.iter()
        .map(|m| {
            let c: Value = serde_json::from_slice(m.content()).unwrap();
            let t = c.get("text").or_else(|| c.get("evalue")).or_else(|| c.get("execution_state"));
            (m.header().unwrap().msg_type, t.and_then(Value::as_str).unwrap_or("").to_string())
        })
        .collect()
}

#[test]
fn clean_messages_pass_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let mut io = Iopub::new(shared(dir.path(), &[]));
    let msgs = vec![
        status("p1", "busy"),
        stream("p1", "hello\n"),
        kmsg("display_data", "p1", json!({"data": {"text/plain": "a plain result"}, "metadata": {}})),
        status("p1", "idle"),
    ];
    let (out, _) = run(&mut io, msgs.clone());
    let frames: Vec<Vec<Vec<u8>>> = out.into_iter().map(Message::into_frames).collect();
    assert_eq!(frames, msgs);
}

#[test]
fn secrets_are_masked_and_resigned() {
    let dir = tempfile::tempdir().unwrap();
    let mut io = Iopub::new(shared(dir.path(), &[]));
    let s = secret();
    let png = format!("iVBORw0KGgo{s}");
    let (out, fx) = run(
        &mut io,
        vec![
            stream("p1", &format!("token {s}\n")),
            kmsg(
                "display_data",
                "p1",
                json!({"data": {"text/plain": format!("'{s}'"), "image/png": png,
                                "application/json": {"k": s}}, "metadata": {}}),
            ),
        ],
    );
    assert_eq!(fx, Effects::default());
    assert_eq!(texts(&out)[0], ("stream".into(), "token [REDACTED]\n".into()));
    let display: Value = serde_json::from_slice(out[1].content()).unwrap();
    assert_eq!(display["data"]["text/plain"], "'[REDACTED]'");
    assert_eq!(display["data"]["application/json"]["k"], "[REDACTED]");
    assert_eq!(display["data"]["image/png"], png.as_str(), "binary data is never changed");
    let log = audit(dir.path());
    assert_eq!(log.matches("\"secret_detected\"").count(), 3, "{log}");
    assert!(log.contains("\"enforced\":true") && !log.contains(&s[4..]));
    assert_eq!(log.matches("\"parent\":\"p1\"").count(), 3, "events name the request: {log}");
}

#[test]
fn split_secrets_are_joined_and_held_text_keeps_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let mut io = Iopub::new(shared(dir.path(), &[]));
    let s = secret();
    let (a, b) = s.split_at(12);
    let (out, _) = run(
        &mut io,
        vec![
            status("p1", "busy"),
            stream("p1", &format!("key={a}")),
            stream("p1", b),
            stream("p1", " tail"),
            kmsg("display_data", "p1", json!({"data": {"text/plain": "after"}, "metadata": {}})),
            stream("p1", "unfinished"),
            status("p1", "idle"),
        ],
    );
    let t = texts(&out);
    let joined: String = t.iter().filter(|x| x.0 == "stream").map(|x| x.1.as_str()).collect();
    assert_eq!(joined, "key=[REDACTED] tailunfinished");
    let kinds: Vec<&str> = t.iter().map(|x| x.0.as_str()).collect();
    assert_eq!(kinds, ["status", "stream", "display_data", "stream", "status"], "held text goes out first: {t:?}");
    let ids: HashSet<String> = out.iter().map(|m| m.header().unwrap().msg_id).collect();
    assert_eq!(ids.len(), out.len(), "every message sent has its own id");
}

#[test]
fn held_tails_go_out_on_the_idle_timer() {
    let dir = tempfile::tempdir().unwrap();
    let mut io = Iopub::new(shared(dir.path(), &[]));
    let (out, _) = run(&mut io, vec![stream("p1", "Enter a value: ")]);
    assert!(out.is_empty());
    let due = io.deadline().expect("a tail is held");
    let mut out = Vec::new();
    io.on_timer(due - Duration::from_millis(10), &mut out);
    assert!(out.is_empty(), "not yet");
    io.on_timer(due, &mut out);
    assert_eq!(texts(&out), [("stream".to_string(), "Enter a value: ".to_string())]);
    assert_eq!(io.deadline(), None);
}

#[test]
fn forged_and_malformed_messages_are_dropped_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let mut io = Iopub::new(shared(dir.path(), &[]));
    let mut forged = stream("p1", &format!("{}\n", secret()));
    forged[2] =
        Signer::new("hmac-sha256", b"not the key").unwrap().sign([&forged[3], &forged[4], &forged[5], &forged[6]]);
    let mut unsigned = stream("p1", "x\n");
    unsigned[2] = Vec::new();
    let mut bad_json = stream("p1", "x\n");
    bad_json[6] = b"{\"name\": \"stdout\", \"text\": ".to_vec();
    let parts = [bad_json[3].clone(), bad_json[4].clone(), bad_json[5].clone(), bad_json[6].clone()];
    bad_json[2] = signer().sign([&parts[0], &parts[1], &parts[2], &parts[3]]);
    let no_delimiter = vec![b"topic".to_vec(), b"junk".to_vec()];
    let (out, _) = run(&mut io, vec![forged, unsigned, bad_json, no_delimiter, stream("p1", "fine\n")]);
    assert_eq!(texts(&out), [("stream".to_string(), "fine\n".to_string())]);
    let log = audit(dir.path());
    assert_eq!(log.matches("\"message_rejected\"").count(), 4, "{log}");
    assert!(log.contains("bad signature") && log.contains("not valid JSON") && log.contains("delimiter"));
}

#[test]
fn block_withholds_outputs_and_interrupts_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut io = Iopub::new(shared(dir.path(), &[("redact_mode", "block")]));
    let s = secret();
    let (out, fx) = run(
        &mut io,
        vec![
            status("p1", "busy"),
            stream("p1", "before\n"),
            kmsg("execute_result", "p1", json!({"data": {"text/plain": s}, "metadata": {}, "execution_count": 1})),
            stream("p1", &format!("again {s}\n")),
            stream("p1", "clean but after the block\n"),
            status("p1", "idle"),
        ],
    );
    assert!(fx.interrupt);
    let t = texts(&out);
    assert_eq!(t.len(), 4, "{t:?}");
    assert_eq!(t[1], ("stream".into(), "before\n".into()));
    assert_eq!(t[2].0, "error");
    assert!(t[2].1.contains("withheld output") && t[2].1.contains("github"), "{t:?}");
    assert!(!format!("{t:?}").contains(&s[4..]));
    // Output of a request that is no longer running: withheld, no interrupt.
    let (_, fx) = run(&mut io, vec![stream("p2", &format!("{s}\n"))]);
    assert!(!fx.interrupt);
}

#[test]
fn log_only_changes_nothing_but_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut io = Iopub::new(shared(dir.path(), &[("redact_mode", "log_only")]));
    let msg = stream("p1", &format!("{}\n", secret()));
    let (out, _) = run(&mut io, vec![msg.clone()]);
    assert_eq!(out.into_iter().map(Message::into_frames).collect::<Vec<_>>(), [msg]);
    assert!(audit(dir.path()).contains("\"secret_detected\""));
}

fn request(code: &str, silent: bool) -> Vec<Vec<u8>> {
    let header = json!({"msg_id": "req1", "msg_type": "execute_request", "session": "c", "username": "u",
                        "date": "2026-01-01T00:00:00Z", "version": "5.3"});
    let content = json!({"code": code, "silent": silent, "store_history": true});
    let parts = [to_json(&header), b"{}".to_vec(), b"{}".to_vec(), to_json(&content)];
    Message::build(vec![b"client-id".to_vec()], parts, Vec::new(), &signer()).into_frames()
}

#[test]
fn scan_input_refuses_cells_in_block_mode() {
    let dir = tempfile::tempdir().unwrap();
    let sh = shared(dir.path(), &[("redact_mode", "block")]);
    let code = format!("token = '{}'", secret());
    let r = sh.request(&request(&code, false)).expect("refused");
    assert_eq!(r.shell.idents(), [b"client-id".to_vec()]);
    assert_eq!(r.shell.parent_id().unwrap().as_deref(), Some("req1"));
    let reply: Value = serde_json::from_slice(r.shell.content()).unwrap();
    assert_eq!((reply["status"].as_str(), reply["ename"].as_str()), (Some("error"), Some("SecretBlocked")));
    let t = texts(&r.iopub);
    assert_eq!(t.iter().map(|x| x.0.as_str()).collect::<Vec<_>>(), ["status", "error", "status"]);
    assert!(t[1].1.starts_with("leakguard did not run this cell"));
    assert_eq!(sh.request(&request(&code, true)).unwrap().iopub.len(), 2, "silent: no error shown");
    assert!(sh.request(&request("print('hello world')", false)).is_none());
    let mut forged = request(&code, false);
    forged[2] = b"00".to_vec();
    assert!(sh.request(&forged).is_none(), "left to the kernel, which refuses it");
    assert!(audit(dir.path()).contains("\"input_secret_detected\""));
    let off = shared(dir.path(), &[("redact_mode", "block"), ("scan_input", "false")]);
    assert!(off.request(&request(&code, false)).is_none());
}

#[test]
fn scanned_cells_are_echoed_masked_with_one_audit_event() {
    let dir = tempfile::tempdir().unwrap();
    let sh = shared(dir.path(), &[]);
    let code = format!("token = '{}'", secret());
    assert!(sh.request(&request(&code, false)).is_none(), "mask mode runs the cell");
    let mut io = Iopub::new(sh);
    let (out, _) = run(&mut io, vec![kmsg("execute_input", "req1", json!({"code": code, "execution_count": 1}))]);
    let c: Value = serde_json::from_slice(out[0].content()).unwrap();
    assert_eq!(c["code"], "token = '[REDACTED]'");
    assert_eq!(audit(dir.path()).matches("input_secret_detected").count(), 1);
}

#[test]
fn replies_are_masked_even_in_block_mode_and_keep_buffers() {
    let dir = tempfile::tempdir().unwrap();
    let sh = shared(dir.path(), &[("redact_mode", "block")]);
    let s = secret();
    let mut frames = kmsg(
        "inspect_reply",
        "p1",
        json!({"status": "ok", "found": true,
                                                          "data": {"text/plain": format!("String form: {s}")}}),
    );
    frames.push(b"\xff\x00raw buffer".to_vec());
    let (m, _) = sh.reply(frames).unwrap();
    m.verify(&signer()).unwrap();
    let c: Value = serde_json::from_slice(m.content()).unwrap();
    assert_eq!(c["data"]["text/plain"], "String form: [REDACTED]");
    assert_eq!(m.buffers(), [b"\xff\x00raw buffer".to_vec()]);
    let mut forged = kmsg("execute_reply", "p1", json!({"status": "ok", "execution_count": 4}));
    forged[2] = b"0000".to_vec();
    assert_eq!(sh.reply(forged).err(), Some(WireError::BadSignature));
    sh.reply(kmsg("execute_reply", "p1", json!({"status": "ok", "execution_count": 4}))).unwrap();
    assert_eq!(sh.execution_count.load(Ordering::Relaxed), 4);
}
