//! What the proxy does to each message, without sockets: verify what the
//! kernel sends, walk it with the policy [`Guard`], re-sign what changed;
//! hold split stream text; withhold outputs in block mode; scan cell code.
//!
//! The same redaction as the in-kernel layer (`leakguard.ipython`): the
//! walk of [`leakguard_jupyter::content`], a carry buffer per (parent
//! message, stream name) released on an idle timer and before any other
//! message of the same parent, the first withheld output of a request
//! turned into an error naming the rule, and the rest of its output dropped.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use leakguard_engine::Hold;
use leakguard_jupyter::content::{self, MessageKind};
use leakguard_jupyter::guarded::{self, Checked};
use leakguard_policy::audit::EventKind;
use leakguard_policy::{Guard, GuardedStream, Verdict};
use serde_json::{Value, json};

use crate::wire::{Header, Message, Signer, WireError};

/// A held stream tail goes out after this long without new text ...
pub const FLUSH_IDLE: Duration = Duration::from_millis(1000);
/// ... or at the latest this long after it was first held.
pub const FLUSH_MAX_AGE: Duration = Duration::from_millis(3000);
/// Bytes a stream may hold back (an RSA-4096 PEM block is about 3.3 KB).
pub const MAX_HOLD: usize = 16384;
/// Carry buffers kept (idle requests release theirs).
const MAX_CARRIES: usize = 256;
/// Remembered blocked and interrupted requests, and scanned cells.
const MAX_REMEMBERED: usize = 256;

const ERROR_NAME: &str = "SecretBlocked";

fn rules_text(rules: &[String]) -> String {
    if rules.is_empty() { "a secret rule".to_string() } else { rules.join(", ") }
}

/// The texts the in-kernel layer shows, word for word.
fn blocked_output_text(rules: &[String]) -> String {
    format!("leakguard withheld output that contained a secret (rule {}); the cell was interrupted", rules_text(rules))
}

fn blocked_input_text(rules: &[String]) -> String {
    format!("leakguard did not run this cell: its code contains a secret (rule {})", rules_text(rules))
}

fn error_content(evalue: &str) -> Value {
    json!({"ename": ERROR_NAME, "evalue": evalue, "traceback": [format!("\u{1b}[0;31m{ERROR_NAME}\u{1b}[0m: {evalue}")]})
}

/// A bounded set that forgets its oldest members.
#[derive(Default)]
struct Recent {
    order: VecDeque<String>,
    set: HashSet<String>,
}

impl Recent {
    /// Adds; returns whether it was new.
    fn insert(&mut self, k: &str) -> bool {
        if self.set.contains(k) {
            return false;
        }
        self.set.insert(k.to_string());
        self.order.push_back(k.to_string());
        if self.order.len() > MAX_REMEMBERED
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        true
    }

    fn contains(&self, k: &str) -> bool {
        self.set.contains(k)
    }

    fn remove(&mut self, k: &str) {
        if self.set.remove(k) {
            self.order.retain(|x| x != k);
        }
    }
}

/// Makes headers for messages the proxy writes itself, in the kernel's
/// session (learned from its messages) with ids of their own.
pub struct Ids {
    prefix: String,
    counter: AtomicU64,
    kernel: Mutex<(String, String)>,
}

impl Ids {
    pub fn new() -> Ids {
        let mut seed = [0u8; 8];
        // Ids need to be unique, not secret: fall back to time and pid.
        if std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut seed)).is_err() {
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            seed = (t.as_nanos() as u64 ^ u64::from(std::process::id()) << 32).to_le_bytes();
        }
        let prefix = seed.iter().map(|b| format!("{b:02x}")).collect();
        Ids { prefix, counter: AtomicU64::new(0), kernel: Mutex::new((String::new(), String::new())) }
    }

    pub fn next_id(&self) -> String {
        format!("leakguard-{}-{}", self.prefix, self.counter.fetch_add(1, Ordering::Relaxed))
    }

    /// Remembers the kernel's session and user name from one of its headers.
    pub fn learn(&self, h: &Header) {
        if let Ok(mut k) = self.kernel.lock()
            && k.0.is_empty()
            && !h.session.is_empty()
        {
            *k = (h.session.clone(), h.username.clone());
        }
    }

    /// A header for a new message.
    pub fn header(&self, msg_type: &str) -> Vec<u8> {
        let (session, username) = self.kernel.lock().map(|k| k.clone()).unwrap_or_default();
        let session = if session.is_empty() { format!("leakguard-{}", self.prefix) } else { session };
        let username = if username.is_empty() { "leakguard".to_string() } else { username };
        to_json(&json!({
            "msg_id": self.next_id(), "msg_type": msg_type, "username": username, "session": session,
            "date": now_iso8601(), "version": "5.3",
        }))
    }

    /// `header` with a new id and type (a message derived from another).
    fn derive(&self, header: &[u8], msg_type: &str) -> Vec<u8> {
        match serde_json::from_slice::<Value>(header) {
            Ok(Value::Object(mut h)) => {
                h.insert("msg_id".into(), Value::String(self.next_id()));
                h.insert("msg_type".into(), Value::String(msg_type.into()));
                to_json(&Value::Object(h))
            }
            _ => self.header(msg_type),
        }
    }
}

impl Default for Ids {
    fn default() -> Ids {
        Ids::new()
    }
}

/// The date format of Jupyter headers (microseconds, UTC).
fn now_iso8601() -> String {
    let t = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

fn to_json(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("a JSON value serialises")
}

fn json_part(bytes: &[u8], part: &'static str) -> Result<Value, WireError> {
    serde_json::from_slice(bytes).map_err(|e| WireError::Json { part, reason: e.to_string() })
}

/// Cells scanned on their way to the kernel, so the `execute_input` echo
/// is masked the same way without a second audit event.
#[derive(Default)]
pub struct InputMemo {
    cells: Mutex<VecDeque<(String, String, String)>>,
}

impl InputMemo {
    fn remember(&self, msg_id: &str, code: &str, masked: String) {
        if let Ok(mut c) = self.cells.lock() {
            c.push_back((msg_id.to_string(), code.to_string(), masked));
            while c.len() > 64 {
                c.pop_front();
            }
        }
    }

    fn take(&self, msg_id: &str, code: &str) -> Option<String> {
        let mut c = self.cells.lock().ok()?;
        let i = c.iter().position(|(id, raw, _)| id == msg_id && raw == code)?;
        c.remove(i).map(|x| x.2)
    }
}

/// What is shared by the filters of every channel.
pub struct Shared {
    pub guard: Guard,
    pub signer: Signer,
    pub ids: Ids,
    pub memo: InputMemo,
    /// The execution count of the last reply, for refused cells.
    pub execution_count: AtomicU64,
}

impl Shared {
    pub fn new(guard: Guard, signer: Signer) -> Shared {
        Shared { guard, signer, ids: Ids::new(), memo: InputMemo::default(), execution_count: AtomicU64::new(0) }
    }

    /// The guard whose audit events name the request (parent message id).
    fn for_request(&self, id: Option<String>) -> Guard {
        self.guard.for_parent(id.filter(|id| !id.is_empty()))
    }

    /// Records a dropped message: why, never what it held.
    pub fn reject(&self, channel: &str, why: &WireError) {
        self.guard.record(EventKind::MessageRejected, |e| {
            e.action = Some("drop".into());
            e.reason = Some(format!("a message from the kernel on {channel} was dropped: {why}"));
        });
    }

    /// Parses and verifies a message from the kernel.
    pub fn accept(&self, frames: Vec<Vec<u8>>) -> Result<(Message, Header), WireError> {
        let m = Message::parse(frames)?;
        m.verify(&self.signer)?;
        let h = m.header()?;
        Ok((m, h))
    }

    /// Walks content and metadata; re-signs the message when they changed.
    fn walk(&self, m: &mut Message, msg_type: &str) -> Result<Checked, WireError> {
        let mut content = json_part(m.content(), "content")?;
        let md_raw = m.metadata();
        let empty_md = md_raw == b"{}";
        let mut metadata = if empty_md { Value::Null } else { json_part(md_raw, "metadata")? };
        let c = guarded::message(&self.for_request(m.parent_id()?), msg_type, &mut content, &mut metadata);
        if c.changed {
            m.set_content(to_json(&content));
            if !empty_md {
                m.set_metadata(to_json(&metadata));
            }
            m.sign(&self.signer);
        }
        Ok(c)
    }

    /// A reply on shell, control or stdin: masked in every mode (only
    /// outputs are withheld). `Err` means drop it.
    pub fn reply(&self, frames: Vec<Vec<u8>>) -> Result<(Message, Header), WireError> {
        let (mut m, h) = self.accept(frames)?;
        self.ids.learn(&h);
        if content::message_kind(&h.msg_type) == MessageKind::Skip {
            return Ok((m, h));
        }
        self.walk(&mut m, &h.msg_type)?;
        if h.msg_type == "execute_reply"
            && let Some(n) = json_part(m.content(), "content")?.get("execution_count").and_then(Value::as_u64)
        {
            self.execution_count.store(n, Ordering::Relaxed);
        }
        Ok((m, h))
    }

    /// A request from a client on shell: with SCAN_INPUT, cell code is
    /// checked; `Some` refuses the cell (block mode) with these replies.
    /// Anything this cannot read goes to the kernel, which judges it.
    pub fn request(&self, frames: &[Vec<u8>]) -> Option<Refusal> {
        let m = Message::parse(frames.to_vec()).ok()?;
        let h = m.header().ok()?;
        if h.msg_type != "execute_request" || !self.guard.snapshot().settings.scan_input.value {
            return None;
        }
        // An unsigned request would be refused by the kernel: do not answer it.
        m.verify(&self.signer).ok()?;
        let content = json_part(m.content(), "content").ok()?;
        let code = content.get("code").and_then(Value::as_str)?;
        if code.len() < content::MIN_LEN {
            return None;
        }
        let o = self.for_request(Some(h.msg_id.clone())).check(code.as_bytes(), true);
        match o.verdict {
            Verdict::Clean | Verdict::Logged => None,
            Verdict::Masked => {
                self.memo.remember(&h.msg_id, code, String::from_utf8_lossy(&o.output).into_owned());
                None
            }
            Verdict::Blocked => {
                let rules: Vec<String> = o.found.iter().map(|f| f.rule.clone()).collect();
                let silent = content.get("silent").and_then(Value::as_bool).unwrap_or(false);
                Some(self.refusal(&m, &rules, silent))
            }
        }
    }

    fn refusal(&self, request: &Message, rules: &[String], silent: bool) -> Refusal {
        let evalue = blocked_input_text(rules);
        let err = error_content(&evalue);
        let count = self.execution_count.load(Ordering::Relaxed) + 1;
        let mut reply = err.clone();
        let o = reply.as_object_mut().expect("an object");
        o.insert("status".into(), "error".into());
        o.insert("execution_count".into(), count.into());
        o.insert("user_expressions".into(), json!({}));
        o.insert("payload".into(), json!([]));
        let parent = request.header_bytes().to_vec();
        let signer = &self.signer;
        let msg = |idents: Vec<Vec<u8>>, msg_type: &str, content: Value| {
            let parts = [self.ids.header(msg_type), parent.clone(), b"{}".to_vec(), to_json(&content)];
            Message::build(idents, parts, Vec::new(), signer)
        };
        let shell = msg(request.idents().to_vec(), "execute_reply", reply);
        let topic = |t: &str| vec![format!("kernel.leakguard.{t}").into_bytes()];
        let mut iopub = vec![msg(topic("status"), "status", json!({"execution_state": "busy"}))];
        if !silent {
            iopub.push(msg(topic("error"), "error", err));
        }
        iopub.push(msg(topic("status"), "status", json!({"execution_state": "idle"})));
        Refusal { shell, iopub }
    }
}

/// The answer to a refused cell: its reply, and what iopub shows.
pub struct Refusal {
    pub shell: Message,
    pub iopub: Vec<Message>,
}

struct Carry {
    parent: String,
    name: String,
    stream: GuardedStream,
    /// The last message of this stream without its text: topic, header and
    /// parent for text released later.
    template: Message,
    /// Whether the template's id was already sent (then released text
    /// gets an id of its own).
    template_sent: bool,
    first: Option<Instant>,
    last: Instant,
}

/// The iopub side: streams with carry buffers, outputs withheld in block
/// mode, requests interrupted.
pub struct Iopub {
    shared: Arc<Shared>,
    carries: Vec<Carry>,
    blocked: Recent,
    running: Recent,
    interrupted: Recent,
}

/// What the relay does after filtering one message.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Effects {
    /// Interrupt the kernel: a running request's output was withheld.
    pub interrupt: bool,
}

impl Iopub {
    pub fn new(shared: Arc<Shared>) -> Iopub {
        Iopub {
            shared,
            carries: Vec::new(),
            blocked: Recent::default(),
            running: Recent::default(),
            interrupted: Recent::default(),
        }
    }

    /// Filters one message from the kernel; appends what to publish.
    pub fn message(&mut self, frames: Vec<Vec<u8>>, out: &mut Vec<Message>) -> Effects {
        let mut fx = Effects::default();
        let result = self.shared.accept(frames).and_then(|(m, h)| self.handle(m, h, out, &mut fx));
        if let Err(e) = result {
            self.shared.reject("iopub", &e);
        }
        fx
    }

    /// A message the proxy itself publishes (a refused cell): released
    /// streams of its parent first, like any other message.
    pub fn publish(&mut self, m: Message, out: &mut Vec<Message>, fx: &mut Effects) {
        if let Ok(Some(pid)) = m.parent_id() {
            self.flush_parent(&pid, out, fx);
        }
        out.push(m);
    }

    fn handle(&mut self, mut m: Message, h: Header, out: &mut Vec<Message>, fx: &mut Effects) -> Result<(), WireError> {
        self.shared.ids.learn(&h);
        let pid = m.parent_id()?.unwrap_or_default();
        let kind = content::message_kind(&h.msg_type);
        if kind == MessageKind::Stream {
            return self.stream(m, pid, out, fx);
        }
        if h.msg_type == "status" {
            let state = json_part(m.content(), "content")?;
            match state.get("execution_state").and_then(Value::as_str) {
                Some("busy") => {
                    self.running.insert(&pid);
                }
                Some("idle") => {
                    self.running.remove(&pid);
                    self.retire(&pid, out, fx);
                    out.push(m);
                    return Ok(());
                }
                _ => {}
            }
        }
        self.flush_parent(&pid, out, fx);
        match kind {
            MessageKind::Skip => {}
            MessageKind::ExecuteInput => {
                let mut c = json_part(m.content(), "content")?;
                let code = c.get("code").and_then(Value::as_str).unwrap_or("");
                if let Some(masked) = self.shared.memo.take(&pid, code) {
                    c["code"] = Value::String(masked);
                    m.set_content(to_json(&c));
                    m.sign(&self.shared.signer);
                } else {
                    self.shared.walk(&mut m, &h.msg_type)?;
                }
            }
            _ => {
                let w = self.shared.walk(&mut m, &h.msg_type)?;
                if w.verdict == Verdict::Blocked && kind == MessageKind::Output {
                    self.block(m, &pid, &w.rules, out, fx);
                    return Ok(());
                }
            }
        }
        out.push(m);
        Ok(())
    }

    fn stream(&mut self, m: Message, pid: String, out: &mut Vec<Message>, fx: &mut Effects) -> Result<(), WireError> {
        let c = json_part(m.content(), "content")?;
        let (Some(name), Some(text)) = (c.get("name").and_then(Value::as_str), c.get("text").and_then(Value::as_str))
        else {
            return Err(WireError::Json { part: "content", reason: "a stream without name and text".into() });
        };
        if self.blocked.contains(&pid) {
            // A blocked request's remaining stream output is withheld.
            return Ok(());
        }
        let i = match self.carries.iter().position(|c| c.parent == pid && c.name == name) {
            Some(i) => i,
            None => {
                if self.carries.len() >= MAX_CARRIES {
                    let mut oldest = self.carries.remove(0);
                    self.release(&mut oldest, false, out, fx);
                }
                let stream = self.shared.for_request(Some(pid.clone())).stream(Hold::Line, false);
                let now = Instant::now();
                let template = m.with_content(Vec::new());
                self.carries.push(Carry {
                    parent: pid.clone(),
                    name: name.to_string(),
                    stream,
                    template,
                    template_sent: false,
                    first: None,
                    last: now,
                });
                self.carries.len() - 1
            }
        };
        let carry = &mut self.carries[i];
        let held_before = carry.stream.held();
        let mut shown = Vec::with_capacity(text.len());
        let mut verdict = carry.stream.push(text.as_bytes(), &mut shown);
        if verdict != Verdict::Blocked
            && carry.stream.held() > 0
            && (text.ends_with('\r') || carry.stream.held() > MAX_HOLD)
        {
            // A progress bar redraws its line with \r: show it now. A hold
            // past the bound goes out too (bounded memory).
            verdict = verdict.max(carry.stream.flush(&mut shown));
        }
        if verdict == Verdict::Blocked {
            carry.stream = self.shared.for_request(Some(pid.clone())).stream(Hold::Line, false);
            carry.first = None;
            let rules = self.rule_names(text.as_bytes());
            self.block(m, &pid, &rules, out, fx);
            return Ok(());
        }
        let now = Instant::now();
        if carry.stream.held() > 0 {
            carry.last = now;
            carry.first.get_or_insert(now);
        } else {
            carry.first = None;
        }
        if held_before == 0 && carry.stream.held() == 0 && shown == text.as_bytes() {
            carry.template = m.with_content(Vec::new());
            carry.template_sent = true;
            out.push(m);
            return Ok(());
        }
        carry.template = m.with_content(Vec::new());
        carry.template_sent = false;
        if !shown.is_empty() {
            let text = String::from_utf8_lossy(&shown);
            let mut msg = carry.template.with_content(to_json(&json!({"name": name, "text": text})));
            msg.sign(&self.shared.signer);
            carry.template_sent = true;
            out.push(msg);
        }
        Ok(())
    }

    /// Rule ids for a withheld stream chunk (best effort: a secret split
    /// over chunks is named by a later notice).
    fn rule_names(&self, text: &[u8]) -> Vec<String> {
        let snap = self.shared.guard.snapshot();
        let mut names: Vec<String> = Vec::new();
        for f in snap.engine.find(text) {
            let id = &snap.engine.rule(f.rule).id;
            if !names.contains(id) {
                names.push(id.clone());
            }
        }
        names
    }

    /// Withholds an output: the first of a request becomes an error naming
    /// the rule; the request is interrupted if it still runs.
    fn block(&mut self, m: Message, pid: &str, rules: &[String], out: &mut Vec<Message>, fx: &mut Effects) {
        if self.blocked.insert(pid) {
            let mut notice = m;
            notice.set_header(self.shared.ids.derive(notice.header_bytes(), "error"));
            notice.set_metadata(b"{}".to_vec());
            notice.set_content(to_json(&error_content(&blocked_output_text(rules))));
            notice.sign(&self.shared.signer);
            out.push(notice);
        }
        if self.running.contains(pid) && self.interrupted.insert(pid) {
            fx.interrupt = true;
        }
    }

    /// Releases what a carry holds: a stream message of its own (or a
    /// block, if the held text turns out to hold a blocking secret).
    fn release(&mut self, c: &mut Carry, idle: bool, out: &mut Vec<Message>, fx: &mut Effects) {
        c.first = None;
        if c.stream.held() == 0 {
            return;
        }
        let mut shown = Vec::new();
        let verdict = if idle { c.stream.flush_idle(&mut shown) } else { c.stream.flush(&mut shown) };
        if verdict == Verdict::Blocked {
            c.stream = self.shared.for_request(Some(c.parent.clone())).stream(Hold::Line, false);
            self.block(c.template.with_content(Vec::new()), &c.parent.clone(), &[], out, fx);
            return;
        }
        if shown.is_empty() || self.blocked.contains(&c.parent) {
            return;
        }
        let mut msg =
            c.template.with_content(to_json(&json!({"name": c.name, "text": String::from_utf8_lossy(&shown)})));
        if c.template_sent {
            msg.set_header(self.shared.ids.derive(msg.header_bytes(), "stream"));
        }
        msg.sign(&self.shared.signer);
        c.template_sent = true;
        c.template = msg.with_content(Vec::new());
        out.push(msg);
    }

    /// Releases what a request's streams hold (before its input prompt).
    pub fn flush_request(&mut self, pid: &str, out: &mut Vec<Message>, fx: &mut Effects) {
        self.flush_parent(pid, out, fx);
    }

    /// Held text of a request goes out before any other message of it.
    fn flush_parent(&mut self, pid: &str, out: &mut Vec<Message>, fx: &mut Effects) {
        if !self.carries.iter().any(|c| c.parent == pid && c.stream.held() > 0) {
            return;
        }
        let mut carries = std::mem::take(&mut self.carries);
        for c in carries.iter_mut().filter(|c| c.parent == pid) {
            self.release(c, false, out, fx);
        }
        self.carries = carries;
    }

    /// The request is over (status idle): release and forget its carries.
    fn retire(&mut self, pid: &str, out: &mut Vec<Message>, fx: &mut Effects) {
        self.flush_parent(pid, out, fx);
        self.carries.retain(|c| c.parent != pid);
    }

    /// When the next held tail is due.
    pub fn deadline(&self) -> Option<Instant> {
        self.carries.iter().filter_map(|c| c.first.map(|first| (c.last + FLUSH_IDLE).min(first + FLUSH_MAX_AGE))).min()
    }

    /// Releases every tail that is due.
    pub fn on_timer(&mut self, now: Instant, out: &mut Vec<Message>) -> Effects {
        let mut fx = Effects::default();
        let mut carries = std::mem::take(&mut self.carries);
        for c in carries.iter_mut() {
            if let Some(first) = c.first
                && (c.last + FLUSH_IDLE).min(first + FLUSH_MAX_AGE) <= now
            {
                self.release(c, true, out, &mut fx);
            }
        }
        self.carries = carries;
        fx
    }

    /// Releases everything held (the kernel is gone).
    pub fn flush_all(&mut self, out: &mut Vec<Message>) {
        let mut fx = Effects::default();
        let mut carries = std::mem::take(&mut self.carries);
        for c in carries.iter_mut() {
            self.release(c, false, out, &mut fx);
        }
    }
}

#[cfg(test)]
mod tests;
