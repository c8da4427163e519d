//! Policy, audit trail and alerts: the layer every leakguard channel shares.
//!
//! # Brief overview
//!
//! * [`Settings`] are layered (built-in defaults < config file and profile <
//!   environment < flags) and remember where each value came from.
//! * [`Reloader`] keeps the current settings and compiled rules behind an
//!   atomic pointer, reloading them on a timer and when a watched file
//!   changes; a failed reload keeps the last good rules.
//! * [`Guard`] is what a channel talks to: it redacts text or streams
//!   according to the mode (mask, block, log-only, or a rule's own mode),
//!   and records [`audit`] events and alerts for what it found.
//! * The audit trail holds metadata only (never a secret, never the text
//!   around it): JSON lines chained by a keyed hash, syslog lines that
//!   fail2ban can act on, webhook alerts sent off the data path.

pub mod alert;
pub mod audit;
mod cuts;
mod error;
mod guard;
mod reload;
pub mod settings;

pub use error::{AuditError, SettingsError};
pub use guard::{Context, Found, Guard, GuardedStream, Outcome, Verdict};
pub use leakguard_engine::Mode;
pub use reload::{Reloader, Snapshot};
pub use settings::{Identity, LoadOptions, Settings, Source};
