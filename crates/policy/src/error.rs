//! Errors of loading settings, writing the audit trail and verifying it.

use std::path::Path;

use crate::settings::Source;

/// A setting, config file or rule file that cannot be used. The message
/// names the setting and where its value came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SettingsError {
    message: String,
}

impl SettingsError {
    pub(crate) fn new(message: impl Into<String>) -> SettingsError {
        SettingsError { message: message.into() }
    }

    pub(crate) fn value(key: &str, source: &Source, message: impl std::fmt::Display) -> SettingsError {
        SettingsError::new(format!("setting `{key}` ({source}): {message}"))
    }

    pub(crate) fn unknown(key: &str, source: &Source) -> SettingsError {
        SettingsError::new(format!("unknown setting `{key}` ({source}); `leakguard config show` lists the settings"))
    }

    pub(crate) fn read(path: &Path, e: std::io::Error) -> SettingsError {
        SettingsError::new(format!("cannot read {}: {e}", path.display()))
    }

    pub(crate) fn toml(path: &Path, e: toml::de::Error) -> SettingsError {
        SettingsError::new(format!("{} is not valid TOML: {}", path.display(), e.to_string().trim_end()))
    }

    pub(crate) fn in_file(path: &Path, message: impl std::fmt::Display) -> SettingsError {
        SettingsError::new(format!("{}: {message}", path.display()))
    }
}

/// The audit trail could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("audit key {path}: {message}")]
    Key { path: String, message: String },
}
