//! Alerts to an administrator, off the data path.
//!
//! Events go into a bounded queue and a worker thread POSTs them to the
//! webhook with a timeout, a few retries and a rate limit. When the queue is
//! full or the rate is exceeded the alert is dropped and counted; failures
//! are handed back to the auditor, which records them as `alert_failed`
//! events. Nothing here can block or slow the caller.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::audit::Event;
use crate::settings::{Settings, WebhookFormat};

const QUEUE: usize = 256;

/// Handle to the webhook worker.
pub struct AlertSender {
    queue: SyncSender<String>,
    failures: Arc<Mutex<Vec<String>>>,
    format: WebhookFormat,
}

struct Worker {
    url: String,
    agent: ureq::Agent,
    retries: u64,
    per_minute: u64,
    failures: Arc<Mutex<Vec<String>>>,
}

impl AlertSender {
    /// Starts the worker when a webhook URL is configured.
    pub fn from_settings(s: &Settings) -> Option<AlertSender> {
        let url = s.alert_webhook_url.value.clone()?;
        let (queue, rx) = sync_channel(QUEUE);
        let failures = Arc::new(Mutex::new(Vec::new()));
        let worker = Worker {
            url,
            agent: ureq::AgentBuilder::new().timeout(Duration::from_millis(s.alert_timeout_ms.value.max(1))).build(),
            retries: s.alert_retries.value,
            per_minute: s.alert_rate_per_minute.value.max(1),
            failures: failures.clone(),
        };
        std::thread::Builder::new().name("leakguard-alerts".into()).spawn(move || worker.run(rx)).ok()?;
        Some(AlertSender { queue, failures, format: s.alert_webhook_format.value })
    }

    /// Queues an alert; never waits.
    pub fn send(&self, event: &Event) {
        let body = match self.format {
            WebhookFormat::Json => serde_json::to_string(event).unwrap_or_default(),
            WebhookFormat::Slack => serde_json::json!({ "text": slack_text(event) }).to_string(),
        };
        if let Err(TrySendError::Full(_)) = self.queue.try_send(body) {
            self.failures.lock().map(|mut f| f.push("alert queue full: alert dropped".into())).ok();
        }
    }

    /// Failures reported by the worker since the last call.
    pub fn take_failures(&self) -> Vec<String> {
        self.failures.lock().map(|mut f| std::mem::take(&mut *f)).unwrap_or_default()
    }
}

fn slack_text(e: &Event) -> String {
    let mut t = format!(":rotating_light: leakguard: {} on {}", e.event.as_str(), e.channel.as_str());
    for (k, v) in [
        ("rule", &e.rule),
        ("action", &e.action),
        ("user", &e.user),
        ("host", &e.host),
        ("src", &e.src),
        ("notebook", &e.notebook),
    ] {
        if let Some(v) = v {
            t.push_str(&format!(" {k}={v}"));
        }
    }
    t
}

impl Worker {
    fn run(self, rx: Receiver<String>) {
        let mut window = Instant::now();
        let mut sent = 0u64;
        let mut dropped = 0u64;
        for body in rx {
            if window.elapsed() >= Duration::from_secs(60) {
                if dropped > 0 {
                    self.fail(format!("{dropped} alerts dropped by the rate limit"));
                }
                window = Instant::now();
                sent = 0;
                dropped = 0;
            }
            if sent >= self.per_minute {
                dropped += 1;
                continue;
            }
            sent += 1;
            let mut last = String::new();
            let ok = (0..=self.retries).any(|attempt| {
                if attempt > 0 {
                    std::thread::sleep(Duration::from_millis(200 << attempt.min(4)));
                }
                match self.agent.post(&self.url).set("Content-Type", "application/json").send_string(&body) {
                    Ok(_) => true,
                    Err(e) => {
                        // Never the URL: a webhook URL is itself a credential.
                        last = match e {
                            ureq::Error::Status(code, _) => format!("HTTP status {code}"),
                            ureq::Error::Transport(t) => t.kind().to_string(),
                        };
                        false
                    }
                }
            });
            if !ok {
                self.fail(format!("webhook delivery failed after {} attempts: {last}", self.retries + 1));
            }
        }
    }

    fn fail(&self, reason: String) {
        self.failures.lock().map(|mut f| f.push(reason)).ok();
    }
}
