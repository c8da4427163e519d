//! The rule model and its loaders.
//!
//! A rule file is TOML. Our own format is a list of `[[rules]]` tables plus an
//! optional global `[allowlist]`; gitleaks' format is read by
//! [`RuleSet::from_gitleaks_toml`] and normalised into the same model.
//! Loading only parses and checks the data; compiling the regexes happens in
//! [`crate::Engine::new`].

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::RuleError;

/// How bad a leak of this kind of secret is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    #[default]
    High,
    Critical,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        })
    }
}

/// What a channel does with a finding. A rule may force one (private keys
/// always block, say); otherwise the policy's mode applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Replace the secret and let the rest through.
    Mask,
    /// Withhold the output and stop the cell, session or command.
    Block,
    /// Change nothing; record the event.
    LogOnly,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Mask => "mask",
            Mode::Block => "block",
            Mode::LogOnly => "log_only",
        }
    }

    /// The stricter of two modes: block beats mask beats log-only.
    pub fn strictest(self, other: Mode) -> Mode {
        fn rank(m: Mode) -> u8 {
            match m {
                Mode::LogOnly => 0,
                Mode::Mask => 1,
                Mode::Block => 2,
            }
        }
        if rank(other) > rank(self) { other } else { self }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Mode, String> {
        match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "mask" => Ok(Mode::Mask),
            "block" => Ok(Mode::Block),
            "log_only" | "logonly" | "log" => Ok(Mode::LogOnly),
            other => Err(format!("`{other}` is not a mode; expected mask, block or log_only")),
        }
    }
}

/// Structural checks that confirm a candidate. A candidate that fails any
/// validator of its rule is dropped, so these belong on weakly shaped rules
/// (bare digits, generic assignments), never on strong vendor prefixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Validator {
    /// Luhn mod-10 check digit (payment cards).
    Luhn,
    /// PRC resident ID: region, real birth date, ISO 7064 MOD 11-2 check character.
    PrcId,
    /// GitHub-style token: the last six characters are the base62 CRC32 of the body.
    GithubChecksum,
    /// JSON Web Token: base64url JSON header with `alg`, JSON payload.
    Jwt,
    /// PEM or OpenSSH private key block with a sane base64 body.
    Pem,
    /// The secret is base64 (or base64url) of a JSON object.
    Base64Json,
    /// `user:password` or `Basic` credentials whose password part is not a placeholder.
    UrlPassword,
    /// Mixed character classes: at least a letter and a digit.
    Alphanumeric,
    /// A literal value, not a code reference: not an identifier, attribute
    /// chain or call (`args.password`, `pw`, `getpass()`, `str`).
    Literal,
    /// Base64 of `user:password` whose password passes `url-password`.
    BasicAuth,
    /// Base64 of a PEM private key (`LS0tLS1CRUdJTi...` decoding to `-----BEGIN ... PRIVATE KEY`).
    Base64PrivateKey,
}

impl Validator {
    pub const ALL: &'static [Validator] = &[
        Validator::Luhn,
        Validator::PrcId,
        Validator::GithubChecksum,
        Validator::Jwt,
        Validator::Pem,
        Validator::Base64Json,
        Validator::UrlPassword,
        Validator::Alphanumeric,
        Validator::Literal,
        Validator::BasicAuth,
        Validator::Base64PrivateKey,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Validator::Luhn => "luhn",
            Validator::PrcId => "prc-id",
            Validator::GithubChecksum => "github-checksum",
            Validator::Jwt => "jwt",
            Validator::Pem => "pem",
            Validator::Base64Json => "base64-json",
            Validator::UrlPassword => "url-password",
            Validator::Alphanumeric => "alphanumeric",
            Validator::Literal => "literal",
            Validator::BasicAuth => "basic-auth",
            Validator::Base64PrivateKey => "base64-private-key",
        }
    }
}

/// Which capture group of a rule's regex holds the secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SecretGroup {
    Index(usize),
    Name(String),
}

/// What an allowlist regex is matched against.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AllowTarget {
    /// The secret itself (the default).
    #[default]
    Secret,
    /// The whole regex match.
    Match,
    /// The line holding the match.
    Line,
}

/// How the checks of one allowlist combine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Condition {
    /// Any check that matches allows the finding (the default).
    #[default]
    Or,
    /// Every configured check must match.
    And,
}

/// Values that look like secrets but are not. Stopwords are matched as whole
/// tokens of the secret (split at non-alphanumeric characters), so the
/// stopword `test` allows `test-secret` but not `Contest2024`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allowlist {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regexes: Vec<String>,
    #[serde(default)]
    pub target: AllowTarget,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stopwords: Vec<String>,
    /// Exact secret values, such as documented example keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    #[serde(default)]
    pub condition: Condition,
}

impl Allowlist {
    fn is_empty(&self) -> bool {
        self.regexes.is_empty() && self.stopwords.is_empty() && self.values.is_empty()
    }
}

/// One detection rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Stable identifier, kebab-case (`openai-project-key`).
    pub id: String,
    pub description: String,
    /// Free-form grouping used in reports and policies (`ai`, `cloud`, `pii`...).
    pub category: String,
    #[serde(default)]
    pub severity: Severity,
    /// The regex; ASCII semantics on bytes (RE2 syntax, `(?i)` allowed).
    pub regex: String,
    /// Capture group holding the secret: a name or index. Default: the group
    /// named `secret`, else group 1 when the regex has groups, else the match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_group: Option<SecretGroup>,
    /// Literal starts of the token (matched case-insensitively where a token
    /// starts). The regex runs from there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefixes: Vec<String>,
    /// Literals that must appear near a match (case-insensitive, anywhere in
    /// the text). The regex runs on the lines around each occurrence.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    /// The rule matches numbers: it runs on runs of at least this many
    /// digits (spaces and dashes between digit groups allowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_digits: Option<usize>,
    /// Minimum Shannon entropy (bits per byte) of the secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entropy: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validators: Vec<Validator>,
    /// Regexes of which at least one must match the line holding the match
    /// (for shapes that are only secrets in context, like bare phone numbers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub context: Vec<String>,
    /// The secret spans lines (private key blocks): windows are not cut at
    /// line ends, and a stream holds a match that the next lines may extend.
    /// Otherwise `\s` between a name and its value stays on one line.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub multiline: bool,
    /// Drop values that look like placeholders (`xxxx`, `<token>`, `YOUR_KEY`...).
    #[serde(default = "yes")]
    pub placeholder_check: bool,
    #[serde(default, deserialize_with = "one_or_many", skip_serializing_if = "Vec::is_empty")]
    pub allowlist: Vec<Allowlist>,
    /// Force this mode whatever the policy says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,
    /// Texts this rule must find a secret in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<String>,
    /// Texts this rule must find nothing in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub negative_examples: Vec<String>,
}

fn yes() -> bool {
    true
}

fn one_or_many<'de, D>(d: D) -> Result<Vec<Allowlist>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(Allowlist),
        Many(Vec<Allowlist>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(a) => vec![a],
        OneOrMany::Many(v) => v,
    })
}

/// A list of rules plus allowlists that apply to all of them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleSet {
    #[serde(default)]
    pub rules: Vec<Rule>,
    #[serde(default, deserialize_with = "one_or_many", skip_serializing_if = "Vec::is_empty")]
    pub allowlist: Vec<Allowlist>,
}

impl RuleSet {
    /// The rule pack compiled into leakguard.
    pub fn builtin() -> RuleSet {
        let mut set = RuleSet::default();
        for (name, text) in crate::builtin::FILES {
            let part = RuleSet::from_toml(text).unwrap_or_else(|e| panic!("built-in rule file {name} is invalid: {e}"));
            set.extend(part);
        }
        set
    }

    /// Parses our own TOML rule format. Unknown keys are errors.
    pub fn from_toml(text: &str) -> Result<RuleSet, RuleError> {
        let set: RuleSet = toml::from_str(text).map_err(RuleError::toml)?;
        set.check()?;
        Ok(set)
    }

    /// Reads the `rules` and `allowlist` entries of a larger TOML document
    /// (a settings file that also carries rules), ignoring other keys.
    pub fn from_table(table: &toml::Table) -> Result<RuleSet, RuleError> {
        let mut sub = toml::Table::new();
        for key in ["rules", "allowlist"] {
            if let Some(v) = table.get(key) {
                sub.insert(key.to_string(), v.clone());
            }
        }
        let set: RuleSet = toml::Value::Table(sub).try_into().map_err(RuleError::toml)?;
        set.check()?;
        Ok(set)
    }

    /// Reads a gitleaks configuration (`gitleaks.toml`) and maps it onto our
    /// model: `secretGroup`, `entropy`, `keywords`, rule and global
    /// allowlists (`regexes`, `regexTarget`, `stopwords`, `condition`).
    /// Path-only rules and path/commit allowlists do not apply to streams
    /// and are skipped.
    pub fn from_gitleaks_toml(text: &str) -> Result<RuleSet, RuleError> {
        crate::gitleaks::parse(text)
    }

    /// Whether a TOML document looks like a gitleaks configuration.
    pub fn looks_like_gitleaks(text: &str) -> bool {
        crate::gitleaks::looks_like(text)
    }

    /// Adds `other`'s rules; a rule whose id already exists replaces it.
    pub fn extend(&mut self, other: RuleSet) {
        let mut index: HashMap<String, usize> = self.rules.iter().enumerate().map(|(i, r)| (r.id.clone(), i)).collect();
        for rule in other.rules {
            match index.get(&rule.id) {
                Some(&i) => self.rules[i] = rule,
                None => {
                    index.insert(rule.id.clone(), self.rules.len());
                    self.rules.push(rule);
                }
            }
        }
        self.allowlist.extend(other.allowlist);
    }

    /// Turns the named rules on or off. Unknown ids are reported.
    pub fn set_enabled(&mut self, ids: &[String], enabled: bool) -> Result<(), RuleError> {
        for id in ids {
            let rule = self
                .rules
                .iter_mut()
                .find(|r| &r.id == id)
                .ok_or_else(|| RuleError::rule(id, "no rule has this id"))?;
            rule.enabled = enabled;
        }
        Ok(())
    }

    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// Checks what can be checked without compiling: ids, required fields,
    /// value ranges.
    pub fn check(&self) -> Result<(), RuleError> {
        let mut seen = HashSet::new();
        for rule in &self.rules {
            if !seen.insert(rule.id.as_str()) {
                return Err(RuleError::rule(&rule.id, "the id is used by two rules in one file"));
            }
            rule.check()?;
        }
        for a in &self.allowlist {
            if a.is_empty() {
                return Err(RuleError::new("a global allowlist has no regexes, stopwords or values"));
            }
        }
        Ok(())
    }
}

impl Rule {
    fn check(&self) -> Result<(), RuleError> {
        let id = &self.id;
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
            return Err(RuleError::rule(id, "ids are non-empty and use only letters, digits, `-`, `_` and `.`"));
        }
        if self.regex.is_empty() {
            return Err(RuleError::rule(id, "`regex` is empty"));
        }
        if self.category.is_empty() {
            return Err(RuleError::rule(id, "`category` is empty"));
        }
        if let Some(e) = self.entropy
            && !(0.0..=8.0).contains(&e)
        {
            return Err(RuleError::rule(id, format!("`entropy` is {e}; it must lie between 0 and 8 bits")));
        }
        if let Some(n) = self.min_digits
            && !(4..=64).contains(&n)
        {
            return Err(RuleError::rule(id, format!("`min_digits` is {n}; it must lie between 4 and 64")));
        }
        for lit in &self.prefixes {
            if lit.len() < 2 {
                return Err(RuleError::rule(
                    id,
                    format!("the prefix `{lit}` is too short to trigger on (2 bytes at least)"),
                ));
            }
        }
        if self.keywords.iter().any(String::is_empty) {
            return Err(RuleError::rule(id, "a keyword is empty"));
        }
        for a in &self.allowlist {
            if a.is_empty() {
                return Err(RuleError::rule(id, "an allowlist has no regexes, stopwords or values"));
            }
        }
        Ok(())
    }
}
