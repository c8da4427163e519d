//! Checking rules against their own examples (`leakguard rules check`).
//!
//! Every rule carries texts it must find a secret in (`examples`) and texts
//! it must leave alone (`negative_examples`). Each rule is checked twice:
//! alone, so a failure points at the rule itself, and inside the whole set,
//! so an example is really masked (alone and between other lines) and a
//! negative example is not masked by some other rule.

use std::fmt;

use crate::engine::Engine;
use crate::redact::Style;
use crate::rules::RuleSet;

/// Why a rule failed its check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The rule does not compile.
    Compile,
    /// The rule found nothing in one of its examples.
    Missed,
    /// The rule (or, with the whole set, another rule) found a secret in a negative example.
    FalsePositive,
    /// The whole set found the secret but the redacted text still shows it.
    NotRedacted,
    /// The rule has no examples or no negative examples.
    NoExamples,
}

/// One failed check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub rule: String,
    pub problem: Problem,
    /// The example concerned (empty for compile errors).
    pub example: String,
    pub detail: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.problem {
            Problem::Compile => "does not compile",
            Problem::Missed => "misses its example",
            Problem::FalsePositive => "matches its negative example",
            Problem::NotRedacted => "leaves its example readable",
            Problem::NoExamples => "lacks examples",
        };
        write!(f, "rule `{}` {what}", self.rule)?;
        if !self.example.is_empty() {
            write!(f, " {:?}", self.example)?;
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

/// The outcome of checking a rule set.
#[derive(Debug, Default)]
pub struct Report {
    pub rules: usize,
    pub examples: usize,
    pub negative_examples: usize,
    pub failures: Vec<Failure>,
}

/// Checks every rule of `set` (enabled or not) against its examples.
/// With `require_examples`, a rule without both kinds of example fails.
pub fn check(set: &RuleSet, require_examples: bool) -> Report {
    let mut report = Report { rules: set.rules.len(), ..Report::default() };
    let whole = match Engine::new(set).and_then(|e| e.compile_all().map(|()| e)) {
        Ok(e) => Some(e),
        Err(e) => {
            report.failures.push(Failure {
                rule: e.rule_id().unwrap_or("").to_string(),
                problem: Problem::Compile,
                example: String::new(),
                detail: e.message().to_string(),
            });
            None
        }
    };
    for rule in &set.rules {
        let fail = |problem, example: &str, detail: String| Failure {
            rule: rule.id.clone(),
            problem,
            example: example.to_string(),
            detail,
        };
        report.examples += rule.examples.len();
        report.negative_examples += rule.negative_examples.len();
        if require_examples && (rule.examples.is_empty() || rule.negative_examples.is_empty()) {
            report.failures.push(fail(
                Problem::NoExamples,
                "",
                "every rule needs examples and negative_examples".into(),
            ));
        }
        let alone = match Engine::for_rule(rule).and_then(|e| e.compile_all().map(|()| e)) {
            Ok(e) => e,
            Err(e) => {
                report.failures.push(fail(Problem::Compile, "", e.message().to_string()));
                continue;
            }
        };
        for ex in &rule.examples {
            let found = alone.find(ex.as_bytes());
            if found.is_empty() {
                report.failures.push(fail(Problem::Missed, ex, String::new()));
                continue;
            }
            let Some(whole) = whole.as_ref().filter(|_| rule.enabled) else {
                continue;
            };
            // Alone, and as output shows it: a line among others.
            for text in [ex.clone(), format!("before\n{ex}\nafter\n")] {
                let out = whole.redact(text.as_bytes(), &Style::default()).output;
                if let Some(f) = found.iter().find(|f| memchr::memmem::find(&out, f.secret(ex.as_bytes())).is_some()) {
                    let secret = String::from_utf8_lossy(f.secret(ex.as_bytes())).into_owned();
                    report.failures.push(fail(
                        Problem::NotRedacted,
                        ex,
                        format!("{secret:?} is left in {:?}", String::from_utf8_lossy(&out)),
                    ));
                    break;
                }
            }
        }
        for neg in &rule.negative_examples {
            if let Some(f) = alone.find(neg.as_bytes()).first() {
                let secret = String::from_utf8_lossy(f.secret(neg.as_bytes())).into_owned();
                report.failures.push(fail(Problem::FalsePositive, neg, format!("found {secret:?}")));
                continue;
            }
            let Some(whole) = whole.as_ref().filter(|_| rule.enabled) else {
                continue;
            };
            if let Some(f) = whole.find(neg.as_bytes()).first() {
                let other = &whole.rule(f.rule).id;
                let secret = String::from_utf8_lossy(f.secret(neg.as_bytes())).into_owned();
                report.failures.push(fail(Problem::FalsePositive, neg, format!("rule `{other}` found {secret:?}")));
            }
        }
    }
    report
}
