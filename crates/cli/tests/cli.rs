//! Behaviour of the `leakguard` binary: redact, modes, audit, settings.

mod common;

use common::leakguard;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const SK_PROJ: &str = "sk-proj-Qx7rT2mKp9LzW4vN8bYc3HdF6jS1gA5eR0uTiOkMnBvCxZaQwErTyUiOpLkJhGfDsAqWeRtY5uI8oP3lK2jH9gF6dS4aZ1xC7vB0nMT3BlbkFJq8wX2eR5tY7uI0oP3aS6dF9gH1jK4lZ7xC0vB";
const GH: &str = "ghp_R7kPq2LmN9xVt4Hs8WzC1bYd6FjG3aEu0K9p";
const PEM: &str = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA8M55k0SY19Z8ITwSj0xvw5nwZllYKC2KKvIAPMlYp5JOmkMM\nvP3FalIhYrNnVGFMZP/GBJtw52lbBYFvrA421VYTLfuESSzUKxFB1uQpOStRp+Nu\n-----END RSA PRIVATE KEY-----";

fn run(cmd: &mut Command, stdin: &str) -> Output {
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn redact_masks_only_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(leakguard(dir.path()).arg("redact"), &format!("key={SK_PROJ}\n"));
    assert!(o.status.success());
    assert_eq!(stdout(&o), "key=[REDACTED]\n");
    let text = format!("before\n{PEM}\nafter {GH} end\n");
    let o = run(leakguard(dir.path()).arg("redact"), &text);
    assert_eq!(stdout(&o), "before\n[REDACTED]\nafter [REDACTED] end\n");
}

#[test]
fn redact_passes_invalid_utf8_byte_exact() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = leakguard(dir.path());
    cmd.arg("redact").stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let data: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    let mut stdin = child.stdin.take().unwrap();
    let feed = data.clone();
    let writer = std::thread::spawn(move || stdin.write_all(&feed).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert_eq!(out.stdout, data);
}

#[test]
fn redact_flushes_each_line_promptly() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = leakguard(dir.path()).arg("redact").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap());
    for i in 0..3 {
        writeln!(stdin, "line {i} token {GH}").unwrap();
        stdin.flush().unwrap();
        let mut got = String::new();
        lines.read_line(&mut got).unwrap();
        assert_eq!(got, format!("line {i} token [REDACTED]\n"), "a line comes back before the input ends");
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

#[test]
fn block_mode_exits_distinctly_and_withholds() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = leakguard(dir.path());
    cmd.arg("redact").env("REDACT_MODE", "block");
    let o = run(&mut cmd, &format!("fine\nGITHUB_TOKEN={GH}\nmore\n"));
    assert_eq!(o.status.code(), Some(3));
    assert!(!stdout(&o).contains("GITHUB_TOKEN"), "nothing of the offending chunk: {:?}", stdout(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("blocked"));
}

#[test]
fn log_only_changes_nothing_and_records() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let mut cmd = leakguard(dir.path());
    cmd.arg("redact").env("LEAKGUARD_REDACT_MODE", "log_only").env("LEAKGUARD_AUDIT_LOG", &log);
    let input = format!("GITHUB_TOKEN={GH}\n");
    let o = run(&mut cmd, &input);
    assert!(o.status.success());
    assert_eq!(stdout(&o), input);
    let audit = std::fs::read_to_string(&log).unwrap();
    assert!(audit.contains("\"action\":\"log_only\""), "{audit}");
}

/// Every 8-byte piece of `secret`.
fn pieces(secret: &str) -> impl Iterator<Item = &str> {
    (0..=secret.len().saturating_sub(8)).map(move |i| &secret[i..(i + 8).min(secret.len())])
}

#[test]
fn audit_has_one_event_per_finding_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let mut cmd = leakguard(dir.path());
    cmd.arg("redact").env("LEAKGUARD_AUDIT_LOG", &log).env("USER", "alice");
    let secrets = [SK_PROJ, GH, "xD4G1WiYOhss2iP4"];
    let input = format!("OPENAI_API_KEY={}\ntoken {}\nDB_PASSWORD={}\n{PEM}\n", secrets[0], secrets[1], secrets[2]);
    let o = run(&mut cmd, &input);
    assert!(o.status.success());
    let audit = std::fs::read_to_string(&log).unwrap();
    let events: Vec<serde_json::Value> = audit.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let detected: Vec<&serde_json::Value> = events.iter().filter(|e| e["event"] == "secret_detected").collect();
    assert_eq!(detected.len(), 4, "{audit}");
    for e in &detected {
        for field in ["ts", "channel", "action", "rule", "category", "count", "host", "fingerprint"] {
            assert!(!e[field].is_null(), "{field} missing in {e}");
        }
        assert_eq!(e["channel"], "cli");
        assert!(e["ts"].as_str().unwrap().ends_with('Z'), "RFC 3339 UTC");
    }
    for s in secrets.iter().copied().chain(PEM.lines().filter(|l| !l.starts_with("-----"))) {
        for p in pieces(s) {
            assert!(!audit.contains(p), "audit log holds {p:?}");
        }
    }
}

fn write_log(dir: &Path) -> PathBuf {
    let log = dir.join("audit.jsonl");
    let mut cmd = leakguard(dir);
    cmd.arg("redact").env("LEAKGUARD_AUDIT_LOG", &log);
    let input: String = (0..5).map(|i| format!("line {i} {GH}\n")).collect();
    assert!(run(&mut cmd, &input).status.success());
    log
}

fn verify(dir: &Path, log: &Path) -> Output {
    let mut cmd = leakguard(dir);
    cmd.args(["audit", "verify"]).arg(log);
    run(&mut cmd, "")
}

#[test]
fn audit_verify_finds_edits_removals_and_reordering() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path());
    let o = verify(dir.path(), &log);
    assert!(o.status.success(), "{}", stdout(&o));
    let lines: Vec<String> = std::fs::read_to_string(&log).unwrap().lines().map(String::from).collect();
    assert_eq!(lines.len(), 5);
    type Change = Box<dyn Fn(&mut Vec<String>)>;
    let cases: [(&str, Change, usize); 3] = [
        ("edit", Box::new(|l: &mut Vec<String>| l[2] = l[2].replace("\"mask\"", "\"log_only\"")), 3),
        ("delete", Box::new(|l: &mut Vec<String>| drop(l.remove(1))), 2),
        ("reorder", Box::new(|l: &mut Vec<String>| l.swap(2, 3)), 3),
    ];
    for (what, change, line) in cases {
        let mut l = lines.clone();
        change(&mut l);
        std::fs::write(&log, l.join("\n") + "\n").unwrap();
        let o = verify(dir.path(), &log);
        assert_eq!(o.status.code(), Some(1), "{what}");
        assert!(stdout(&o).contains(&format!("line {line}:")), "{what}: {}", stdout(&o));
    }
}

#[test]
fn settings_precedence_and_errors_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, "redact_mode = \"log_only\"\nscan_input = false\n").unwrap();
    let mut cmd = leakguard(dir.path());
    cmd.args(["config", "show"]).env("LEAKGUARD_CONFIG", &cfg).env("REDACT_MODE", "block");
    let o = run(&mut cmd, "");
    let out = stdout(&o);
    assert!(out.contains("redact_mode = block  # environment REDACT_MODE"), "{out}");
    assert!(out.contains(&format!("scan_input = false  # file {}", cfg.display())), "{out}");
    let mut cmd = leakguard(dir.path());
    cmd.args(["--mode", "mask", "config", "show"]).env("LEAKGUARD_CONFIG", &cfg).env("REDACT_MODE", "block");
    assert!(stdout(&run(&mut cmd, "")).contains("redact_mode = mask  # flag --mode"));
    let mut cmd = leakguard(dir.path());
    cmd.arg("redact").env("REDACT_MODE", "masked");
    let o = run(&mut cmd, "x\n");
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("REDACT_MODE") && err.contains("masked"), "{err}");
    std::fs::write(&cfg, "pattern_update_interval = \"soon\"\n").unwrap();
    let mut cmd = leakguard(dir.path());
    cmd.args(["config", "check"]).arg(&cfg);
    let o = run(&mut cmd, "");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("pattern_update_interval"));
}

#[test]
fn rules_check_and_list() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = leakguard(dir.path());
    cmd.args(["rules", "check"]);
    let o = run(&mut cmd, "");
    assert!(o.status.success(), "{}", stdout(&o));
    let mut cmd = leakguard(dir.path());
    cmd.args(["rules", "list", "--format", "json"]);
    let rules: Vec<serde_json::Value> = serde_json::from_slice(&run(&mut cmd, "").stdout).unwrap();
    assert!(rules.len() >= 150, "{} rules", rules.len());
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "[[rules]]\nid = \"bad\"\ndescription = \"x\"\ncategory = \"x\"\nregex = '(unclosed'\n")
        .unwrap();
    let mut cmd = leakguard(dir.path());
    cmd.args(["--rules"]).arg(&broken).arg("redact");
    let o = run(&mut cmd, "x\n");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("rule `bad`"));
}

#[test]
fn gitleaks_rules_load() {
    let dir = tempfile::tempdir().unwrap();
    let gl = dir.path().join("gitleaks.toml");
    std::fs::write(
        &gl,
        "title = \"t\"\n[[rules]]\nid = \"acme\"\ndescription = \"Acme\"\nregex = '''acme_([a-z0-9]{24})'''\nsecretGroup = 1\nkeywords = [\"acme_\"]\n",
    )
    .unwrap();
    let mut cmd = leakguard(dir.path());
    cmd.arg("--gitleaks-config").arg(&gl).arg("redact");
    assert_eq!(stdout(&run(&mut cmd, "v=acme_q8zk2m4xw7r1p9tj5vb3n6c0\n")), "v=acme_[REDACTED]\n");
}

/// A one-shot HTTP server: records the first request body, answers 200.
fn webhook_server() -> (String, std::thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = s.read(&mut chunk).unwrap();
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf);
            if let Some(head_end) = text.find("\r\n\r\n") {
                let len: usize = text
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if buf.len() >= head_end + 4 + len {
                    s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").unwrap();
                    return text[head_end + 4..].to_string();
                }
            }
            if n == 0 {
                return String::new();
            }
        }
    });
    (url, handle)
}

#[test]
fn webhook_alert_is_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let (url, server) = webhook_server();
    let mut cmd = leakguard(dir.path());
    cmd.arg("redact").env("LEAKGUARD_ALERT_WEBHOOK_URL", &url);
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "OPENAI_API_KEY={SK_PROJ}").unwrap();
    // Keep the process alive until the alert arrived: delivery is asynchronous.
    let body = server.join().unwrap();
    drop(stdin);
    child.wait().unwrap();
    let event: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(event["event"], "secret_detected");
    assert!(!body.contains(&SK_PROJ[..20]));
}

#[test]
fn webhook_down_does_not_delay_redaction() {
    let dir = tempfile::tempdir().unwrap();
    // A server that accepts and never answers, and one that is not there.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    for url in [format!("http://{}/", silent.local_addr().unwrap()), format!("http://127.0.0.1:{closed_port}/")] {
        let mut cmd = leakguard(dir.path());
        cmd.arg("redact").env("LEAKGUARD_ALERT_WEBHOOK_URL", &url).env("LEAKGUARD_ALERT_TIMEOUT_MS", "20000");
        let input: String = (0..50).map(|i| format!("{i} OPENAI_API_KEY={SK_PROJ}\n")).collect();
        let started = Instant::now();
        let o = run(&mut cmd, &input);
        let took = started.elapsed();
        assert!(o.status.success());
        assert_eq!(stdout(&o), (0..50).map(|i| format!("{i} OPENAI_API_KEY=[REDACTED]\n")).collect::<String>());
        assert!(took < Duration::from_secs(10), "redaction waited for the webhook ({took:?})");
    }
}

#[test]
fn a_running_filter_reloads_its_rules() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.toml");
    let rule = |id: &str| {
        format!(
            "[[rules]]\nid = \"{id}\"\ndescription = \"t\"\ncategory = \"t\"\nprefixes = [\"{id}_\"]\nregex = '{id}_[a-z0-9]{{24}}'\n"
        )
    };
    std::fs::write(&rules, rule("acme")).unwrap();
    let log = dir.path().join("audit.jsonl");
    let mut child = leakguard(dir.path())
        .arg("--rules")
        .arg(&rules)
        .arg("redact")
        .env("PATTERN_UPDATE_INTERVAL", "1")
        .env("LEAKGUARD_AUDIT_LOG", &log)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap());
    let mut roundtrip = |text: &str| {
        writeln!(stdin, "{text}").unwrap();
        stdin.flush().unwrap();
        let mut got = String::new();
        lines.read_line(&mut got).unwrap();
        got
    };
    assert_eq!(roundtrip("zeta_q8zk2m4xw7r1p9tj5vb3n6c0"), "zeta_q8zk2m4xw7r1p9tj5vb3n6c0\n");
    std::fs::write(&rules, rule("acme") + &rule("zeta")).unwrap();
    let started = Instant::now();
    loop {
        if roundtrip("zeta_q8zk2m4xw7r1p9tj5vb3n6c0") == "[REDACTED]\n" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the changed rule file was never picked up");
        std::thread::sleep(Duration::from_millis(100));
    }
    // PATTERN_UPDATE_INTERVAL=1: periodic reloads happen without any change.
    let reloads = || std::fs::read_to_string(&log).unwrap_or_default().matches("\"rules_reloaded\"").count();
    let seen = reloads();
    while reloads() < seen + 2 {
        assert!(started.elapsed() < Duration::from_secs(60), "no periodic reload with PATTERN_UPDATE_INTERVAL=1");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
}
