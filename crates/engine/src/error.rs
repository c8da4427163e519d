//! Errors of loading and compiling rules.

use std::fmt;

/// A rule file or rule that cannot be used, with the rule it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    rule: Option<String>,
    message: String,
}

impl RuleError {
    pub(crate) fn new(message: impl Into<String>) -> RuleError {
        RuleError { rule: None, message: message.into() }
    }

    pub(crate) fn rule(id: &str, message: impl Into<String>) -> RuleError {
        RuleError { rule: Some(id.to_string()), message: message.into() }
    }

    pub(crate) fn toml(e: toml::de::Error) -> RuleError {
        RuleError::new(format!("invalid rule TOML: {}", e.to_string().trim_end()))
    }

    /// The id of the rule at fault, when one rule is.
    pub fn rule_id(&self) -> Option<&str> {
        self.rule.as_deref()
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.rule {
            Some(id) => write!(f, "rule `{id}`: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for RuleError {}
