//! The detection and redaction core of leakguard.
//!
//! This crate is pure: no files, sockets, environment variables or global
//! state. Channels (the CLI, the Jupyter kernel hook and proxy, the SSH
//! shell) feed it bytes and decide what to do with its findings.
//!
//! # Brief overview
//!
//! * [`RuleSet`] holds rules as data: our TOML format, gitleaks' format, or
//!   the built-in pack ([`RuleSet::builtin`]).
//! * [`Engine`] compiles a rule set once and then finds ([`Engine::find`])
//!   or masks ([`Engine::redact`]) secrets in any byte string, UTF-8 or not.
//! * [`StreamRedactor`] does the same for input that arrives in pieces (a
//!   terminal, stream messages) and gives the same result however the input
//!   is split, holding back only what could still be part of a secret.
//!
//! Matching is linear in the input: regexes are finite automata (no
//! backtracking), and a byte-class prefilter decides where each rule runs
//! at all (see the `matcher` module).
//!
//! # Example
//!
//! ```
//! use leakguard_engine::{Engine, Style};
//!
//! let engine = Engine::builtin();
//! let text = b"OPENAI_API_KEY=sk-proj-Qx7rT2mKp9LzW4vN8bYc3HdF6jS1gA5eR0uTiOkMnBvCxZaQwErTyUiOpLkJhGfDsAqWeRtY5uI8oP3lK2jH9gF6dS4aZ1xC7vB0nM";
//! let out = engine.redact(text, &Style::default());
//! assert_eq!(&out.output[..], b"OPENAI_API_KEY=[REDACTED]");
//! ```

mod builtin;
mod classify;
mod engine;
mod error;
mod gitleaks;
mod matcher;
mod normalize;
mod redact;
mod rules;
pub mod selftest;
mod stream;
mod validate;

pub use engine::{Engine, Finding, Redaction};
pub use error::RuleError;
pub use redact::{DEFAULT_MASK, Style};
pub use rules::{AllowTarget, Allowlist, Condition, Mode, Rule, RuleSet, SecretGroup, Severity, Validator};
pub use stream::{Hold, MaskFilter, Secret, StreamFinding, StreamRedactor, Tail};
pub use validate::{luhn, prc_resident_id, shannon_entropy};
