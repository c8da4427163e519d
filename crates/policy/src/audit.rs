//! The metadata-only audit trail.
//!
//! An event says what happened (a secret found, a cell blocked, rules
//! reloaded), where (channel, user, session, host, client address, notebook)
//! and which rule; never the secret or the text around it. Repeats of the
//! same secret correlate through a keyed fingerprint (HMAC-SHA256 under a
//! per-installation key), which cannot be reversed or brute-forced offline
//! without the key.
//!
//! The JSON-lines file is a hash chain: every line carries a sequence
//! number, the MAC of the line before it and its own MAC under the same
//! key, so `leakguard audit verify` finds an edited, removed or reordered
//! line and says which. Processes append under an exclusive file lock, so
//! every kernel and SSH session can share one file.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

use crate::alert::AlertSender;
use crate::error::AuditError;
use crate::settings::{Priority, Settings};
use leakguard_engine::Severity;

type HmacSha256 = Hmac<Sha256>;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    SecretDetected,
    InputSecretDetected,
    Blocked,
    RulesReloaded,
    RulesReloadFailed,
    SessionStart,
    SessionEnd,
    FileTransfer,
    AlertFailed,
    InternalError,
    /// A message that failed its signature check or could not be parsed,
    /// dropped by an enforcing channel (a sign of tampering).
    MessageRejected,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::SecretDetected => "secret_detected",
            EventKind::InputSecretDetected => "input_secret_detected",
            EventKind::Blocked => "blocked",
            EventKind::RulesReloaded => "rules_reloaded",
            EventKind::RulesReloadFailed => "rules_reload_failed",
            EventKind::SessionStart => "session_start",
            EventKind::SessionEnd => "session_end",
            EventKind::FileTransfer => "file_transfer",
            EventKind::AlertFailed => "alert_failed",
            EventKind::InternalError => "internal_error",
            EventKind::MessageRejected => "message_rejected",
        }
    }
}

/// Which channel saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Jupyter,
    Ssh,
    Cli,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Jupyter => "jupyter",
            Channel::Ssh => "ssh",
            Channel::Cli => "cli",
        }
    }
}

/// One audit event. Field order is the JSON key order (`ts` first, which
/// fail2ban's date pattern relies on).
#[derive(Clone, Debug, Serialize)]
pub struct Event {
    pub ts: String,
    pub event: EventKind,
    pub channel: Channel,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notebook: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enforced: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sampled: Option<bool>,
    /// Why (reload failures, internal errors): never derived from scanned text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Event {
    /// An event of `kind` stamped now, with the origin fields from `origin`.
    pub fn new(kind: EventKind, origin: &Origin) -> Event {
        Event {
            ts: now_rfc3339(),
            event: kind,
            channel: origin.channel,
            action: None,
            rule: None,
            category: None,
            severity: None,
            count: None,
            user: origin.user.clone(),
            session: origin.session.clone(),
            host: origin.host.clone(),
            src: origin.src.clone(),
            notebook: origin.notebook.clone(),
            parent: origin.parent.clone(),
            fingerprint: None,
            enforced: origin.enforced.then_some(true),
            sampled: None,
            reason: None,
        }
    }

    /// A new event of `kind` from the same origin, stamped now.
    pub fn derived(&self, kind: EventKind) -> Event {
        Event {
            ts: now_rfc3339(),
            event: kind,
            channel: self.channel,
            action: None,
            rule: None,
            category: None,
            severity: None,
            count: None,
            user: self.user.clone(),
            session: self.session.clone(),
            host: self.host.clone(),
            src: self.src.clone(),
            notebook: self.notebook.clone(),
            parent: None,
            fingerprint: None,
            enforced: self.enforced,
            sampled: None,
            reason: None,
        }
    }

    /// The `key=value` line sent to syslog (and matched by fail2ban).
    pub fn syslog_line(&self) -> String {
        let v = |o: &Option<String>| o.as_deref().map(sanitize).unwrap_or_else(|| "-".into());
        let mut line = format!(
            "event={} channel={} user={} rule={} action={} src={}",
            self.event.as_str(),
            self.channel.as_str(),
            v(&self.user),
            v(&self.rule),
            v(&self.action),
            v(&self.src)
        );
        for (k, o) in [("session", &self.session), ("notebook", &self.notebook), ("fp", &self.fingerprint)] {
            if let Some(x) = o {
                line.push_str(&format!(" {k}={}", sanitize(x)));
            }
        }
        if let Some(c) = self.count {
            line.push_str(&format!(" count={c}"));
        }
        if let Some(r) = &self.reason {
            line.push_str(&format!(" reason=\"{}\"", r.replace(['"', '\n'], "'")));
        }
        line
    }
}

fn sanitize(s: &str) -> String {
    s.chars().map(|c| if c.is_whitespace() || c == '=' || c.is_control() { '_' } else { c }).collect()
}

/// Now, RFC 3339 in UTC with microseconds (what fail2ban's `%f` reads).
fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let micros = now.nanosecond() / 1000 * 1000;
    now.replace_nanosecond(micros)
        .unwrap_or(now)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

/// Who and where: the fields every event of one session shares.
#[derive(Clone, Debug)]
pub struct Origin {
    pub channel: Channel,
    pub user: Option<String>,
    pub session: Option<String>,
    pub host: Option<String>,
    pub src: Option<String>,
    pub notebook: Option<String>,
    /// The request the text belongs to (a Jupyter parent message id).
    pub parent: Option<String>,
    /// Set by enforcement layers that user code cannot switch off.
    pub enforced: bool,
}

impl Origin {
    pub fn new(channel: Channel) -> Origin {
        Origin {
            channel,
            user: None,
            session: None,
            host: hostname(),
            src: None,
            notebook: None,
            parent: None,
            enforced: false,
        }
    }

    /// The client address of an SSH session: the first field of `SSH_CONNECTION`.
    pub fn ssh_client(ssh_connection: &str) -> Option<String> {
        ssh_connection.split_whitespace().next().filter(|a| a.parse::<std::net::IpAddr>().is_ok()).map(String::from)
    }
}

/// This machine's host name.
pub fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates on success.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Some(String::from_utf8_lossy(&buf[..end]).into_owned()).filter(|h| !h.is_empty())
}

/// The installation's secret key for fingerprints and the chain.
#[derive(Clone)]
pub struct Key(Vec<u8>);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Key {
    /// Reads the key file, creating it (0600, 32 random bytes as hex) when missing.
    pub fn load_or_create(path: &Path) -> Result<Key, AuditError> {
        let err = |message: String| AuditError::Key { path: path.display().to_string(), message };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let bytes = from_hex(text.trim()).ok_or_else(|| err("not a hex key".into()))?;
                if bytes.len() < 16 {
                    return Err(err("shorter than 16 bytes".into()));
                }
                Ok(Key(bytes))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let mut bytes = vec![0u8; 32];
                File::open("/dev/urandom")
                    .and_then(|mut f| f.read_exact(&mut bytes))
                    .map_err(|e| err(format!("cannot read random bytes: {e}")))?;
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| err(format!("cannot create its directory: {e}")))?;
                }
                // create_new: two processes racing keep whichever key was written first.
                match OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
                    Ok(mut f) => f.write_all(to_hex(&bytes).as_bytes()).map_err(|e| err(e.to_string()))?,
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Key::load_or_create(path),
                    Err(e) => return Err(err(format!("cannot create it: {e}"))),
                }
                Ok(Key(bytes))
            }
            Err(e) => Err(err(e.to_string())),
        }
    }

    /// A key that lives only as long as the process (when no key file can be used).
    pub fn ephemeral() -> Key {
        let mut bytes = vec![0u8; 32];
        let _ = File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
        Key(bytes)
    }

    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut m = HmacSha256::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().into()
    }

    /// Keyed fingerprint of a secret found by a rule: 128 bits, hex.
    pub fn fingerprint(&self, rule: &str, secret: &[u8]) -> String {
        to_hex(&self.mac(&[b"leakguard-fingerprint\0", rule.as_bytes(), b"\0", secret])[..16])
    }
}

/// The default key file: `/etc/leakguard/audit.key` for root, otherwise
/// under `$XDG_DATA_HOME` (or `~/.local/share`).
pub fn default_key_file() -> PathBuf {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return PathBuf::from("/etc/leakguard/audit.key");
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    base.join("leakguard/audit.key")
}

pub fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Appends chained lines to the JSON-lines file.
struct ChainFile {
    path: PathBuf,
    file: File,
}

impl ChainFile {
    fn open(path: &Path) -> Result<ChainFile, AuditError> {
        let io_err = |source| AuditError::Io { path: path.display().to_string(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io_err)?;
        }
        let file = OpenOptions::new().read(true).append(true).create(true).mode(0o640).open(path).map_err(io_err)?;
        Ok(ChainFile { path: path.to_path_buf(), file })
    }

    /// Appends one event under an exclusive lock, continuing the chain.
    fn append(&mut self, key: &Key, event: &Event) -> Result<(), AuditError> {
        let io_err = |source| AuditError::Io { path: self.path.display().to_string(), source };
        let fd = self.file.as_raw_fd();
        // SAFETY: fd is an open descriptor owned by self.file.
        if unsafe { libc::flock(fd, libc::LOCK_EX) } != 0 {
            return Err(io_err(io::Error::last_os_error()));
        }
        let result = (|| {
            let (seq, prev) = match last_line(&mut self.file).map_err(io_err)? {
                Some(line) => {
                    let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
                    let seq = v.get("seq").and_then(|s| s.as_u64()).map_or(0, |s| s + 1);
                    (seq, v.get("mac").and_then(|m| m.as_str()).unwrap_or(GENESIS).to_string())
                }
                None => (0, GENESIS.to_string()),
            };
            let line = chain_line(key, event, seq, &prev);
            self.file.write_all(line.as_bytes()).map_err(io_err)
        })();
        // SAFETY: as above.
        unsafe { libc::flock(fd, libc::LOCK_UN) };
        result
    }
}

/// Serialises an event with `seq`, `prev` and its `mac`.
fn chain_line(key: &Key, event: &Event, seq: u64, prev: &str) -> String {
    let mut body = serde_json::to_string(event).expect("events serialise");
    body.pop(); // the closing brace
    body.push_str(&format!(",\"seq\":{seq},\"prev\":\"{prev}\""));
    let mac = to_hex(&key.mac(&[body.as_bytes(), b"}"]));
    format!("{body},\"mac\":\"{mac}\"}}\n")
}

/// The last complete line of the file, if any.
fn last_line(f: &mut File) -> io::Result<Option<String>> {
    let len = f.seek(SeekFrom::End(0))?;
    if len == 0 {
        return Ok(None);
    }
    let mut tail = Vec::new();
    let mut pos = len;
    loop {
        let step = pos.min(4096);
        pos -= step;
        f.seek(SeekFrom::Start(pos))?;
        let mut chunk = vec![0u8; step as usize];
        f.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&tail);
        tail = chunk;
        let body = tail.strip_suffix(b"\n").unwrap_or(&tail);
        if let Some(nl) = body.iter().rposition(|&b| b == b'\n') {
            return Ok(Some(String::from_utf8_lossy(&body[nl + 1..]).into_owned()));
        }
        if pos == 0 {
            return Ok(Some(String::from_utf8_lossy(body).into_owned()));
        }
    }
}

/// Where events go, and the key they are signed with.
pub struct Auditor {
    key: Key,
    file: Option<Mutex<ChainFile>>,
    syslog: Option<Priority>,
    stderr: bool,
    alerts: Option<AlertSender>,
    alert_min: Severity,
    /// Errors of the audit itself, reported once on stderr.
    complained: Mutex<bool>,
}

impl Auditor {
    /// Sets up the sinks the settings ask for. Fails if the audit file or
    /// key cannot be used, so a misconfiguration shows at start-up.
    pub fn new(settings: &Settings) -> Result<Auditor, AuditError> {
        let key_file = settings.audit_key_file.value.clone().unwrap_or_else(default_key_file);
        let key = Key::load_or_create(&key_file)?;
        let file = match &settings.audit_log.value {
            Some(p) => Some(Mutex::new(ChainFile::open(p)?)),
            None => None,
        };
        let syslog = settings.audit_syslog.value.then_some(settings.syslog_priority.value);
        if syslog.is_some() {
            open_syslog();
        }
        Ok(Auditor {
            key,
            file,
            syslog,
            stderr: settings.audit_stderr.value,
            alerts: AlertSender::from_settings(settings),
            alert_min: settings.alert_min_severity.value,
            complained: Mutex::new(false),
        })
    }

    /// An auditor that records nothing (tests, `--no-audit`).
    pub fn disabled() -> Auditor {
        Auditor {
            key: Key::ephemeral(),
            file: None,
            syslog: None,
            stderr: false,
            alerts: None,
            alert_min: Severity::Critical,
            complained: Mutex::new(false),
        }
    }

    pub fn key(&self) -> &Key {
        &self.key
    }

    /// Records an event in every sink, and alerts when it is severe enough.
    /// Never fails: a sink error is reported once on stderr.
    pub fn record(&self, event: &Event) {
        if let Some(a) = &self.alerts {
            for reason in a.take_failures() {
                let mut e = event.derived(EventKind::AlertFailed);
                e.reason = Some(reason);
                self.write(&e);
            }
        }
        self.write(event);
        let alertable =
            matches!(event.event, EventKind::SecretDetected | EventKind::InputSecretDetected | EventKind::Blocked)
                && event.severity.is_some_and(|s| s >= self.alert_min);
        if let (true, Some(a)) = (alertable, &self.alerts) {
            a.send(event);
        }
    }

    fn write(&self, event: &Event) {
        if let Some(f) = &self.file {
            let result = f
                .lock()
                .map_err(|_| "audit file lock poisoned".to_string())
                .and_then(|mut f| f.append(&self.key, event).map_err(|e| e.to_string()));
            if let Err(e) = result {
                self.complain(&e);
            }
        }
        if let Some(priority) = self.syslog {
            send_syslog(priority, &event.syslog_line());
        }
        if self.stderr {
            eprintln!("{}", serde_json::to_string(event).unwrap_or_default());
        }
    }

    fn complain(&self, msg: &str) {
        if let Ok(mut done) = self.complained.lock()
            && !*done
        {
            *done = true;
            eprintln!("leakguard: audit trail unavailable: {msg}");
        }
    }
}

fn open_syslog() {
    static IDENT: &[u8] = b"leakguard\0";
    // SAFETY: IDENT is a static NUL-terminated string that outlives every syslog call.
    unsafe { libc::openlog(IDENT.as_ptr().cast(), libc::LOG_PID | libc::LOG_NDELAY, libc::LOG_AUTHPRIV) };
}

fn send_syslog(priority: Priority, line: &str) {
    let level = match priority {
        Priority::Err => libc::LOG_ERR,
        Priority::Warning => libc::LOG_WARNING,
        Priority::Notice => libc::LOG_NOTICE,
        Priority::Info => libc::LOG_INFO,
    };
    let Ok(msg) = std::ffi::CString::new(line.replace('\0', "")) else { return };
    // SAFETY: the format is a static NUL-terminated "%s" and msg is a valid C string.
    unsafe { libc::syslog(libc::LOG_AUTHPRIV | level, c"%s".as_ptr(), msg.as_ptr()) };
}

/// Why `verify` rejected a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// 1-based line number.
    pub line: usize,
    pub reason: String,
}

/// Checks the chain of an audit file; returns the number of lines.
pub fn verify(path: &Path, key: &Key) -> Result<Result<usize, Broken>, AuditError> {
    let io_err = |source| AuditError::Io { path: path.display().to_string(), source };
    let reader = BufReader::new(File::open(path).map_err(io_err)?);
    let mut prev_mac = GENESIS.to_string();
    let mut prev_seq: Option<u64> = None;
    let mut n = 0;
    for line in reader.lines() {
        let line = line.map_err(io_err)?;
        n += 1;
        let broken = |reason: String| Ok(Err(Broken { line: n, reason }));
        let Some(mac_at) = line.rfind(",\"mac\":\"") else {
            return broken("no MAC: not a leakguard audit line, or it was edited".into());
        };
        let body = &line[..mac_at];
        let mac = line[mac_at + 8..].trim_end_matches("\"}");
        if to_hex(&key.mac(&[body.as_bytes(), b"}"])) != mac {
            return broken("MAC mismatch: the line was edited (or the key differs)".into());
        }
        let v: serde_json::Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(e) => return broken(format!("not JSON: {e}")),
        };
        let seq = v.get("seq").and_then(|s| s.as_u64());
        let prev = v.get("prev").and_then(|p| p.as_str()).unwrap_or("");
        match (prev_seq, seq) {
            (None, Some(0)) if prev == GENESIS => {}
            (None, Some(s)) => {
                return broken(format!(
                    "the chain starts at sequence {s}: lines before it were removed (or the log was rotated)"
                ));
            }
            (Some(p), Some(s)) if s == p + 1 && prev == prev_mac => {}
            (Some(p), Some(s)) if s <= p => return broken(format!("sequence {s} after {p}: lines were reordered")),
            (Some(p), Some(s)) if s > p + 1 => {
                return broken(format!("sequence jumps from {p} to {s}: lines were removed"));
            }
            (Some(_), Some(_)) => {
                return broken("does not follow the line before it: lines were removed or reordered".into());
            }
            (_, None) => return broken("no sequence number".into()),
        }
        prev_seq = seq;
        prev_mac = mac.to_string();
    }
    Ok(Ok(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(rule: &str) -> Event {
        let mut e = Event::new(EventKind::SecretDetected, &Origin::new(Channel::Cli));
        e.rule = Some(rule.into());
        e.action = Some("mask".into());
        e
    }

    fn write_log(dir: &Path, key: &Key, n: usize) -> PathBuf {
        let path = dir.join("audit.jsonl");
        let mut f = ChainFile::open(&path).unwrap();
        for i in 0..n {
            f.append(key, &event(&format!("rule-{i}"))).unwrap();
        }
        path
    }

    #[test]
    fn chain_verifies_and_detects_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let key = Key::load_or_create(&dir.path().join("k")).unwrap();
        let path = write_log(dir.path(), &key, 5);
        assert_eq!(verify(&path, &key).unwrap(), Ok(5));
        let lines: Vec<String> = std::fs::read_to_string(&path).unwrap().lines().map(String::from).collect();
        let check = |ls: &[String]| {
            std::fs::write(&path, ls.join("\n") + "\n").unwrap();
            verify(&path, &key).unwrap().unwrap_err()
        };
        let mut edited = lines.clone();
        edited[2] = edited[2].replace("rule-2", "rule-X");
        assert_eq!(check(&edited).line, 3);
        let mut removed = lines.clone();
        removed.remove(2);
        let b = check(&removed);
        assert_eq!(b.line, 3);
        assert!(b.reason.contains("removed"), "{}", b.reason);
        let mut reordered = lines.clone();
        reordered.swap(1, 3);
        let b = check(&reordered);
        assert_eq!(b.line, 2);
        let mut head_cut = lines.clone();
        head_cut.remove(0);
        assert_eq!(check(&head_cut).line, 1);
        let mut last_edited = lines.clone();
        last_edited[4] = last_edited[4].replace("mask", "block");
        assert_eq!(check(&last_edited).line, 5, "the last line is covered by its own MAC");
    }

    #[test]
    fn appends_continue_across_processes() {
        let dir = tempfile::tempdir().unwrap();
        let key = Key::load_or_create(&dir.path().join("k")).unwrap();
        write_log(dir.path(), &key, 2);
        write_log(dir.path(), &key, 3);
        assert_eq!(verify(&dir.path().join("audit.jsonl"), &key).unwrap(), Ok(5));
    }

    #[test]
    fn fingerprints_are_keyed() {
        let dir = tempfile::tempdir().unwrap();
        let a = Key::load_or_create(&dir.path().join("a")).unwrap();
        let b = Key::load_or_create(&dir.path().join("b")).unwrap();
        assert_eq!(a.fingerprint("r", b"secret"), a.fingerprint("r", b"secret"));
        assert_ne!(a.fingerprint("r", b"secret"), b.fingerprint("r", b"secret"));
        assert_eq!(a.fingerprint("r", b"s").len(), 32);
        let again = Key::load_or_create(&dir.path().join("a")).unwrap();
        assert_eq!(a.fingerprint("r", b"x"), again.fingerprint("r", b"x"), "the key file is reused");
    }

    #[test]
    fn syslog_line_format() {
        let mut e = event("openai-api-key");
        e.user = Some("alice".into());
        e.src = Some("127.0.0.1".into());
        e.channel = Channel::Ssh;
        let line = e.syslog_line();
        assert!(
            line.starts_with(
                "event=secret_detected channel=ssh user=alice rule=openai-api-key action=mask src=127.0.0.1"
            ),
            "{line}"
        );
    }
}
