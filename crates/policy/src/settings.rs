//! Layered settings: built-in defaults < config file (and its profile) <
//! environment variables < command-line flags. Every value remembers where
//! it came from, for `leakguard config show`.
//!
//! The config file is TOML with one key per setting (`redact_mode = "block"`),
//! `[profiles.NAME]` tables that override settings for matching users or
//! groups, and optionally `[[rules]]` of the rule format. Every setting can
//! be set in the environment as `LEAKGUARD_<KEY>` (`LEAKGUARD_REDACT_MODE`);
//! the four names of the design document also work without the prefix
//! (`SCAN_INPUT`, `REDACT_MODE`, `ALLOWLIST_PATHS`, `PATTERN_UPDATE_INTERVAL`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use leakguard_engine::{Mode, RuleSet, Severity, Style};

use crate::error::SettingsError;

/// Where a setting's value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Default,
    File(PathBuf),
    Profile { file: PathBuf, profile: String },
    Env(String),
    Flag(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File(p) => write!(f, "file {}", p.display()),
            Source::Profile { file, profile } => write!(f, "profile `{profile}` in {}", file.display()),
            Source::Env(v) => write!(f, "environment {v}"),
            Source::Flag(n) => write!(f, "flag {n}"),
        }
    }
}

/// A setting's value and its origin.
#[derive(Clone, Debug, PartialEq)]
pub struct Sourced<T> {
    pub value: T,
    pub source: Source,
}

/// How a value is read from text (environment, flags) and from TOML.
pub trait Value: Sized + Clone {
    fn parse(s: &str) -> Result<Self, String>;
    fn from_toml(v: &toml::Value) -> Result<Self, String> {
        match v {
            toml::Value::String(s) => Self::parse(s),
            other => Self::parse(&other.to_string()),
        }
    }
    fn show(&self) -> String;
}

impl Value for bool {
    fn parse(s: &str) -> Result<bool, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            other => Err(format!("`{other}` is not a boolean; expected true or false")),
        }
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

impl Value for u64 {
    /// A count or size; sizes may end in K, M or G (powers of 1024).
    fn parse(s: &str) -> Result<u64, String> {
        let t = s.trim();
        let (num, mult) = match t.char_indices().last() {
            Some((i, 'k' | 'K')) => (&t[..i], 1 << 10),
            Some((i, 'm' | 'M')) => (&t[..i], 1 << 20),
            Some((i, 'g' | 'G')) => (&t[..i], 1 << 30),
            _ => (t, 1),
        };
        num.trim()
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(mult))
            .ok_or_else(|| format!("`{t}` is not a non-negative whole number"))
    }
    fn from_toml(v: &toml::Value) -> Result<u64, String> {
        match v {
            toml::Value::Integer(i) if *i >= 0 => Ok(*i as u64),
            toml::Value::String(s) => Self::parse(s),
            other => Err(format!("`{other}` is not a non-negative whole number")),
        }
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

impl Value for Mode {
    fn parse(s: &str) -> Result<Mode, String> {
        Mode::from_str(s)
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

impl Value for Style {
    fn parse(s: &str) -> Result<Style, String> {
        Style::from_str(s)
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

impl Value for Severity {
    fn parse(s: &str) -> Result<Severity, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "low" => Ok(Severity::Low),
            "medium" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            "critical" => Ok(Severity::Critical),
            other => Err(format!("`{other}` is not a severity; expected low, medium, high or critical")),
        }
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

impl Value for Option<String> {
    fn parse(s: &str) -> Result<Option<String>, String> {
        Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty()))
    }
    fn show(&self) -> String {
        self.clone().unwrap_or_else(|| "(none)".into())
    }
}

impl Value for Option<PathBuf> {
    fn parse(s: &str) -> Result<Option<PathBuf>, String> {
        Ok(Some(s.trim()).filter(|s| !s.is_empty()).map(PathBuf::from))
    }
    fn show(&self) -> String {
        self.as_ref().map_or_else(|| "(none)".into(), |p| p.display().to_string())
    }
}

/// Lists: a TOML array, a JSON list, or `:`-separated text (`,` also works
/// for names).
fn parse_list(s: &str) -> Result<Vec<String>, String> {
    let t = s.trim();
    if t.starts_with('[') {
        return serde_json::from_str::<Vec<String>>(t).map_err(|e| format!("`{t}` is not a JSON list of strings: {e}"));
    }
    Ok(t.split([':', ',']).map(str::trim).filter(|p| !p.is_empty()).map(String::from).collect())
}

fn list_from_toml(v: &toml::Value) -> Result<Vec<String>, String> {
    match v {
        toml::Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(String::from).ok_or_else(|| format!("`{i}` in the list is not a string")))
            .collect(),
        toml::Value::String(s) => parse_list(s),
        other => Err(format!("`{other}` is not a list")),
    }
}

impl Value for Vec<String> {
    fn parse(s: &str) -> Result<Vec<String>, String> {
        parse_list(s)
    }
    fn from_toml(v: &toml::Value) -> Result<Vec<String>, String> {
        list_from_toml(v)
    }
    fn show(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl Value for Vec<PathBuf> {
    fn parse(s: &str) -> Result<Vec<PathBuf>, String> {
        Ok(parse_list(s)?.into_iter().map(PathBuf::from).collect())
    }
    fn from_toml(v: &toml::Value) -> Result<Vec<PathBuf>, String> {
        Ok(list_from_toml(v)?.into_iter().map(PathBuf::from).collect())
    }
    fn show(&self) -> String {
        let v: Vec<String> = self.iter().map(|p| p.display().to_string()).collect();
        serde_json::to_string(&v).unwrap_or_default()
    }
}

/// Declares an enum setting with its spellings.
macro_rules! choice {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $name { $($(#[$vm])* $variant),+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl Value for $name {
            fn parse(s: &str) -> Result<$name, String> {
                match s.trim().to_ascii_lowercase().as_str() {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!("`{other}` is not one of {}", [$($text),+].join(", "))),
                }
            }
            fn show(&self) -> String {
                self.as_str().to_string()
            }
        }
    };
}

choice!(
    /// Body of webhook alerts.
    WebhookFormat {
        /// The audit event as JSON.
        Json = "json",
        /// A Slack-compatible `{"text": ...}` message.
        Slack = "slack",
    }
);

choice!(
    /// What the SSH channel does with file transfers (sftp, scp, rsync, git).
    TransferPolicy {
        Allow = "allow",
        Deny = "deny",
        /// Allow, and record an audit event.
        Audit = "audit",
    }
);

choice!(
    /// syslog priority of audit lines.
    Priority {
        Err = "err",
        Warning = "warning",
        Notice = "notice",
        Info = "info",
    }
);

/// Declares every setting once: its field, TOML key, type, default, whether
/// the unprefixed design-document name works in the environment, and help.
macro_rules! settings {
    ($($field:ident : $ty:ty = $default:expr, bare = $bare:literal, $help:literal;)+) => {
        /// The effective settings of one process, with the origin of each value.
        #[derive(Clone, Debug)]
        pub struct Settings {
            $(#[doc = $help] pub $field: Sourced<$ty>,)+
            /// The config file read, if any.
            pub config_file: Option<PathBuf>,
            /// The profile applied, if any.
            pub profile: Option<String>,
            /// Rules written inside the config file.
            pub inline_rules: RuleSet,
        }

        /// The names of every setting, as in the config file.
        pub const KEYS: &[&str] = &[$(stringify!($field)),+];

        impl Settings {
            /// Built-in defaults.
            pub fn defaults() -> Settings {
                Settings {
                    $($field: Sourced { value: $default, source: Source::Default },)+
                    config_file: None,
                    profile: None,
                    inline_rules: RuleSet::default(),
                }
            }

            /// Sets one setting from text (environment or flag).
            fn set_text(&mut self, key: &str, text: &str, source: Source) -> Result<(), SettingsError> {
                match key {
                    $(stringify!($field) => {
                        let value = <$ty as Value>::parse(text)
                            .map_err(|m| SettingsError::value(key, &source, m))?;
                        self.$field = Sourced { value, source };
                    })+
                    _ => return Err(SettingsError::unknown(key, &source)),
                }
                Ok(())
            }

            /// Sets one setting from a TOML value of the config file.
            fn set_toml(&mut self, key: &str, v: &toml::Value, source: Source) -> Result<(), SettingsError> {
                match key {
                    $(stringify!($field) => {
                        let value = <$ty as Value>::from_toml(v)
                            .map_err(|m| SettingsError::value(key, &source, m))?;
                        self.$field = Sourced { value, source };
                    })+
                    _ => return Err(SettingsError::unknown(key, &source)),
                }
                Ok(())
            }

            /// Applies the environment: `LEAKGUARD_<KEY>`, and the bare
            /// design-document names (the prefixed one wins).
            fn apply_env(&mut self, env: &dyn Fn(&str) -> Option<String>) -> Result<(), SettingsError> {
                $(
                    let upper = stringify!($field).to_ascii_uppercase();
                    if $bare {
                        if let Some(v) = env(&upper) {
                            self.set_text(stringify!($field), &v, Source::Env(upper.clone()))?;
                        }
                    }
                    let prefixed = format!("LEAKGUARD_{upper}");
                    if let Some(v) = env(&prefixed) {
                        self.set_text(stringify!($field), &v, Source::Env(prefixed))?;
                    }
                )+
                Ok(())
            }

            /// Every setting as (key, value, source), for display.
            pub fn entries(&self) -> Vec<(&'static str, String, &Source)> {
                vec![$((stringify!($field), self.$field.value.show(), &self.$field.source)),+]
            }

            /// One line of help per setting.
            pub fn help() -> Vec<(&'static str, &'static str)> {
                vec![$((stringify!($field), $help)),+]
            }
        }
    };
}

settings! {
    scan_input: bool = true, bare = true,
        "Also scan user input: cell code, typed terminal input.";
    redact_mode: Mode = Mode::Mask, bare = true,
        "mask (replace the secret), block (withhold the output and stop), log_only (change nothing, record).";
    allowlist_paths: Vec<PathBuf> = vec![PathBuf::from("/workspace/trusted/")], bare = true,
        "Notebooks, files and working directories under these paths are not filtered.";
    pattern_update_interval: u64 = 3600, bare = true,
        "Seconds between reloads of rules and settings (files are also watched).";
    redaction_style: Style = Style::default(), bare = false,
        "What replaces a secret: redacted, rule-id, prefix:N, same-width[:C], text:STRING.";
    sample_threshold: u64 = 64 << 20, bare = false,
        "Outputs larger than this many bytes have only their head and tail scanned.";
    sample_window: u64 = 4 << 20, bare = false,
        "Bytes scanned at each end of an output larger than sample_threshold.";
    rule_files: Vec<PathBuf> = Vec::new(), bare = false,
        "Extra rule files (leakguard or gitleaks TOML); a rule with an existing id replaces it.";
    gitleaks_files: Vec<PathBuf> = Vec::new(), bare = false,
        "Extra rule files in gitleaks' format.";
    enable_rules: Vec<String> = Vec::new(), bare = false,
        "Ids of shipped opt-in rules to turn on (email-address, ...).";
    disable_rules: Vec<String> = Vec::new(), bare = false,
        "Ids of rules to turn off.";
    audit_log: Option<PathBuf> = None, bare = false,
        "JSON-lines audit file (metadata only, hash-chained).";
    audit_syslog: bool = false, bare = false,
        "Send audit events to syslog (ident leakguard, facility authpriv).";
    audit_stderr: bool = false, bare = false,
        "Print audit events on standard error (debugging).";
    audit_key_file: Option<PathBuf> = None, bare = false,
        "Key for fingerprints and the audit hash chain; created when missing.";
    syslog_priority: Priority = Priority::Warning, bare = false,
        "syslog priority of audit lines.";
    alert_webhook_url: Option<String> = None, bare = false,
        "POST each alert to this URL.";
    alert_webhook_format: WebhookFormat = WebhookFormat::Json, bare = false,
        "Webhook body: json (the event) or slack ({\"text\": ...}).";
    alert_min_severity: Severity = Severity::High, bare = false,
        "Alert on findings of at least this severity (independent of the mode).";
    alert_timeout_ms: u64 = 2000, bare = false,
        "Timeout of one webhook request.";
    alert_retries: u64 = 2, bare = false,
        "Retries of a failed webhook request.";
    alert_rate_per_minute: u64 = 60, bare = false,
        "At most this many webhook alerts per minute; the rest are counted and dropped.";
    file_transfer: TransferPolicy = TransferPolicy::Audit, bare = false,
        "SSH file transfers (sftp, scp, rsync, git): allow, deny or audit.";
    mask_widget_state: bool = false, bare = false,
        "Jupyter: also mask widget state (breaks two-way binding of masked values).";
}

/// Who the settings are for: picks the profile.
#[derive(Clone, Debug, Default)]
pub struct Identity {
    pub user: Option<String>,
    pub groups: Vec<String>,
}

/// Where to look and what to override.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// `--config FILE`; otherwise `LEAKGUARD_CONFIG`, otherwise
    /// `/etc/leakguard/config.toml` if it exists.
    pub config_file: Option<PathBuf>,
    /// `--profile NAME`; otherwise `LEAKGUARD_PROFILE`, otherwise by identity.
    pub profile: Option<String>,
    pub identity: Identity,
    /// Command-line overrides as (key, value, flag name).
    pub flags: Vec<(String, String, String)>,
}

pub const DEFAULT_CONFIG_FILE: &str = "/etc/leakguard/config.toml";

impl Settings {
    /// Loads the layers with the process environment.
    pub fn load(opts: &LoadOptions) -> Result<Settings, SettingsError> {
        Settings::load_with_env(opts, &|k| std::env::var(k).ok())
    }

    /// Loads the layers, reading environment variables through `env`.
    pub fn load_with_env(opts: &LoadOptions, env: &dyn Fn(&str) -> Option<String>) -> Result<Settings, SettingsError> {
        let mut s = Settings::defaults();
        let file = match (&opts.config_file, env("LEAKGUARD_CONFIG")) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(p)) if !p.is_empty() => Some(PathBuf::from(p)),
            _ => Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|p| p.exists()),
        };
        let wanted_profile = opts.profile.clone().or_else(|| env("LEAKGUARD_PROFILE").filter(|p| !p.is_empty()));
        if let Some(path) = file {
            let text = std::fs::read_to_string(&path).map_err(|e| SettingsError::read(&path, e))?;
            s.apply_file(&path, &text, wanted_profile.as_deref(), &opts.identity)?;
        } else if let Some(p) = wanted_profile {
            return Err(SettingsError::new(format!("profile `{p}` was asked for but no config file defines profiles")));
        }
        s.apply_env(env)?;
        for (key, value, flag) in &opts.flags {
            s.set_text(key, value, Source::Flag(flag.clone()))?;
        }
        Ok(s)
    }

    /// Reads a config file: top-level settings, then the profile that
    /// applies, then inline rules.
    fn apply_file(
        &mut self,
        path: &Path,
        text: &str,
        profile: Option<&str>,
        who: &Identity,
    ) -> Result<(), SettingsError> {
        let table: toml::Table = text.parse().map_err(|e| SettingsError::toml(path, e))?;
        let mut profiles: BTreeMap<String, toml::Table> = BTreeMap::new();
        let mut default_profile = None;
        for (key, v) in &table {
            match key.as_str() {
                "rules" | "allowlist" => {}
                "profiles" => {
                    let t = v
                        .as_table()
                        .ok_or_else(|| SettingsError::in_file(path, "`profiles` must be a table of tables"))?;
                    for (name, p) in t {
                        let p = p
                            .as_table()
                            .ok_or_else(|| SettingsError::in_file(path, format!("profile `{name}` must be a table")))?;
                        profiles.insert(name.clone(), p.clone());
                    }
                }
                "default_profile" => {
                    default_profile = Some(
                        v.as_str()
                            .ok_or_else(|| SettingsError::in_file(path, "`default_profile` must be a string"))?
                            .to_string(),
                    )
                }
                _ => self.set_toml(key, v, Source::File(path.to_path_buf()))?,
            }
        }
        let chosen = match profile {
            Some(p) if profiles.contains_key(p) => Some(p.to_string()),
            Some(p) => {
                return Err(SettingsError::in_file(
                    path,
                    format!("profile `{p}` is not defined (profiles: {:?})", profiles.keys()),
                ));
            }
            None => profiles
                .iter()
                .find(|(_, t)| list_matches(t.get("users"), who.user.as_slice()))
                .or_else(|| profiles.iter().find(|(_, t)| list_matches(t.get("groups"), &who.groups)))
                .map(|(n, _)| n.clone())
                .or(default_profile),
        };
        if let Some(name) = chosen {
            let t = profiles
                .get(&name)
                .ok_or_else(|| SettingsError::in_file(path, format!("default_profile `{name}` is not defined")))?;
            for (key, v) in t {
                if key != "users" && key != "groups" {
                    let source = Source::Profile { file: path.to_path_buf(), profile: name.clone() };
                    self.set_toml(key, v, source)?;
                }
            }
            self.profile = Some(name);
        }
        self.inline_rules = RuleSet::from_table(&table).map_err(|e| SettingsError::in_file(path, e.to_string()))?;
        self.config_file = Some(path.to_path_buf());
        Ok(())
    }

    /// The files whose change triggers a reload.
    pub fn watched_files(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = self.config_file.iter().cloned().collect();
        v.extend(self.rule_files.value.iter().cloned());
        v.extend(self.gitleaks_files.value.iter().cloned());
        v
    }

    /// The rule set these settings ask for: built-in pack, inline rules,
    /// rule files, gitleaks files, then enable/disable lists.
    pub fn rule_set(&self) -> Result<RuleSet, SettingsError> {
        let mut set = RuleSet::builtin();
        set.extend(self.inline_rules.clone());
        for path in &self.rule_files.value {
            let text = std::fs::read_to_string(path).map_err(|e| SettingsError::read(path, e))?;
            let part = if RuleSet::looks_like_gitleaks(&text) {
                RuleSet::from_gitleaks_toml(&text)
            } else {
                RuleSet::from_toml(&text)
            };
            set.extend(part.map_err(|e| SettingsError::in_file(path, e.to_string()))?);
        }
        for path in &self.gitleaks_files.value {
            let text = std::fs::read_to_string(path).map_err(|e| SettingsError::read(path, e))?;
            set.extend(RuleSet::from_gitleaks_toml(&text).map_err(|e| SettingsError::in_file(path, e.to_string()))?);
        }
        set.set_enabled(&self.enable_rules.value, true)
            .map_err(|e| SettingsError::value("enable_rules", &self.enable_rules.source, e.to_string()))?;
        set.set_enabled(&self.disable_rules.value, false)
            .map_err(|e| SettingsError::value("disable_rules", &self.disable_rules.source, e.to_string()))?;
        Ok(set)
    }

    pub fn update_interval(&self) -> Duration {
        Duration::from_secs(self.pattern_update_interval.value.max(1))
    }

    /// Whether `path` lies under one of the allowlisted paths (compared by
    /// whole components, after making both absolute).
    pub fn is_allowlisted(&self, path: &Path) -> bool {
        self.allowlist_paths.value.iter().any(|a| !a.as_os_str().is_empty() && path.starts_with(a))
    }
}

fn list_matches(v: Option<&toml::Value>, wanted: &[String]) -> bool {
    let Some(toml::Value::Array(items)) = v else { return false };
    items.iter().filter_map(|i| i.as_str()).any(|i| wanted.iter().any(|w| w == i))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(
        file: Option<&str>,
        env: &[(&str, &str)],
        flags: &[(&str, &str)],
        who: Identity,
    ) -> Result<Settings, SettingsError> {
        let dir = tempfile::tempdir().unwrap();
        let config_file = file.map(|text| {
            let p = dir.path().join("config.toml");
            std::fs::write(&p, text).unwrap();
            p
        });
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let opts = LoadOptions {
            config_file,
            profile: None,
            identity: who,
            flags: flags.iter().map(|(k, v)| (k.to_string(), v.to_string(), format!("--set {k}"))).collect(),
        };
        Settings::load_with_env(&opts, &|k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn precedence_default_file_env_flag() {
        let s = load(None, &[], &[], Identity::default()).unwrap();
        assert_eq!(s.redact_mode.value, Mode::Mask);
        assert_eq!(s.redact_mode.source, Source::Default);
        let s = load(Some("redact_mode = \"log_only\""), &[], &[], Identity::default()).unwrap();
        assert_eq!(s.redact_mode.value, Mode::LogOnly);
        assert!(matches!(s.redact_mode.source, Source::File(_)));
        let s =
            load(Some("redact_mode = \"log_only\""), &[("REDACT_MODE", "block")], &[], Identity::default()).unwrap();
        assert_eq!(s.redact_mode.value, Mode::Block);
        assert_eq!(s.redact_mode.source, Source::Env("REDACT_MODE".into()));
        let s = load(
            Some("redact_mode = \"log_only\""),
            &[("REDACT_MODE", "block"), ("LEAKGUARD_REDACT_MODE", "log_only")],
            &[],
            Identity::default(),
        )
        .unwrap();
        assert_eq!(s.redact_mode.value, Mode::LogOnly, "the prefixed name wins");
        let s = load(
            Some("redact_mode = \"log_only\""),
            &[("REDACT_MODE", "block")],
            &[("redact_mode", "mask")],
            Identity::default(),
        )
        .unwrap();
        assert_eq!(s.redact_mode.value, Mode::Mask);
        assert!(matches!(s.redact_mode.source, Source::Flag(_)));
    }

    #[test]
    fn design_document_names() {
        let s = load(
            None,
            &[("SCAN_INPUT", "false"), ("ALLOWLIST_PATHS", "[\"/a/\", \"/b\"]"), ("PATTERN_UPDATE_INTERVAL", "60")],
            &[],
            Identity::default(),
        )
        .unwrap();
        assert!(!s.scan_input.value);
        assert_eq!(s.allowlist_paths.value, vec![PathBuf::from("/a/"), PathBuf::from("/b")]);
        assert_eq!(s.update_interval(), Duration::from_secs(60));
        let s = load(None, &[("LEAKGUARD_ALLOWLIST_PATHS", "/x:/y/z")], &[], Identity::default()).unwrap();
        assert_eq!(s.allowlist_paths.value, vec![PathBuf::from("/x"), PathBuf::from("/y/z")]);
        assert!(s.is_allowlisted(Path::new("/y/z/nb.ipynb")));
        assert!(!s.is_allowlisted(Path::new("/y/zz/nb.ipynb")));
    }

    #[test]
    fn bad_values_name_the_setting() {
        let e = load(None, &[("REDACT_MODE", "masked")], &[], Identity::default()).unwrap_err().to_string();
        assert!(e.contains("REDACT_MODE") && e.contains("masked"), "{e}");
        let e = load(Some("pattern_update_interval = -5"), &[], &[], Identity::default()).unwrap_err().to_string();
        assert!(e.contains("pattern_update_interval"), "{e}");
        let e = load(Some("redact_mod = \"mask\""), &[], &[], Identity::default()).unwrap_err().to_string();
        assert!(e.contains("redact_mod") && e.contains("unknown"), "{e}");
        let e = load(Some("redact_mode = "), &[], &[], Identity::default()).unwrap_err().to_string();
        assert!(e.contains("config.toml"), "{e}");
    }

    #[test]
    fn profiles_select_by_user_group_and_default() {
        let file = r#"
redact_mode = "mask"
default_profile = "base"
[profiles.base]
alert_min_severity = "critical"
[profiles.strict]
users = ["alice"]
redact_mode = "block"
[profiles.research]
groups = ["ml"]
redact_mode = "log_only"
"#;
        let who =
            |u: &str, g: &[&str]| Identity { user: Some(u.into()), groups: g.iter().map(|s| s.to_string()).collect() };
        let s = load(Some(file), &[], &[], who("alice", &[])).unwrap();
        assert_eq!((s.redact_mode.value, s.profile.as_deref()), (Mode::Block, Some("strict")));
        let s = load(Some(file), &[], &[], who("bob", &["ml"])).unwrap();
        assert_eq!((s.redact_mode.value, s.profile.as_deref()), (Mode::LogOnly, Some("research")));
        let s = load(Some(file), &[], &[], who("carol", &[])).unwrap();
        assert_eq!((s.redact_mode.value, s.profile.as_deref()), (Mode::Mask, Some("base")));
        assert_eq!(s.alert_min_severity.value, Severity::Critical);
        let s = load(Some(file), &[("LEAKGUARD_PROFILE", "research")], &[], who("alice", &[])).unwrap();
        assert_eq!(s.profile.as_deref(), Some("research"), "LEAKGUARD_PROFILE wins over the user name");
    }

    #[test]
    fn inline_rules_and_rule_files() {
        let file = r#"
disable_rules = ["private-ipv4"]
[[rules]]
id = "acme-token"
description = "Acme"
category = "vendor"
prefixes = ["acme_"]
regex = 'acme_[a-z0-9]{24}'
"#;
        let s = load(Some(file), &[], &[], Identity::default()).unwrap();
        let set = s.rule_set().unwrap();
        assert!(set.get("acme-token").is_some());
        assert!(!set.get("private-ipv4").unwrap().enabled);
        let e = load(Some("disable_rules = [\"no-such-rule\"]"), &[], &[], Identity::default())
            .unwrap()
            .rule_set()
            .unwrap_err();
        assert!(e.to_string().contains("no-such-rule"), "{e}");
    }
}
