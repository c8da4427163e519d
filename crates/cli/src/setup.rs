//! Turning command-line options into settings, rules, an auditor and a guard.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use clap::Args;
use leakguard_policy::audit::{Auditor, Channel, Origin};
use leakguard_policy::{Context, Guard, Identity, LoadOptions, Reloader};

/// Options every subcommand shares.
#[derive(Args, Debug, Clone, Default)]
pub struct Common {
    /// Settings file (default: $LEAKGUARD_CONFIG, else /etc/leakguard/config.toml if present).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Settings profile (default: $LEAKGUARD_PROFILE, else chosen by user and group).
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,
    /// Override a setting, as in the settings file (`--set redact_mode=block`); repeatable.
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// mask, block or log_only (the setting redact_mode).
    #[arg(long, global = true)]
    pub mode: Option<String>,
    /// Replacement style: redacted, rule-id, prefix:N, same-width[:C], text:STRING.
    #[arg(long, global = true)]
    pub style: Option<String>,
    /// Extra rule file (leakguard or gitleaks TOML); repeatable.
    #[arg(long = "rules", global = true, value_name = "FILE")]
    pub rules: Vec<PathBuf>,
    /// Extra rule file in gitleaks' format; repeatable.
    #[arg(long = "gitleaks-config", global = true, value_name = "FILE")]
    pub gitleaks: Vec<PathBuf>,
    /// JSON-lines audit file (the setting audit_log).
    #[arg(long = "audit-log", global = true, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
}

impl Common {
    pub fn load_options(&self) -> Result<LoadOptions> {
        let mut flags = Vec::new();
        for kv in &self.set {
            let (k, v) = kv.split_once('=').with_context(|| format!("--set {kv}: expected KEY=VALUE"))?;
            flags.push((k.trim().to_string(), v.to_string(), format!("--set {}", k.trim())));
        }
        let mut flag = |key: &str, value: String, name: &str| flags.push((key.into(), value, name.into()));
        if let Some(m) = &self.mode {
            flag("redact_mode", m.clone(), "--mode");
        }
        if let Some(s) = &self.style {
            flag("redaction_style", s.clone(), "--style");
        }
        if let Some(a) = &self.audit_log {
            flag("audit_log", a.display().to_string(), "--audit-log");
        }
        let paths =
            |v: &[PathBuf]| serde_json::to_string(&v.iter().map(|p| p.display().to_string()).collect::<Vec<_>>());
        if !self.rules.is_empty() {
            flag("rule_files", paths(&self.rules)?, "--rules");
        }
        if !self.gitleaks.is_empty() {
            flag("gitleaks_files", paths(&self.gitleaks)?, "--gitleaks-config");
        }
        Ok(LoadOptions { config_file: self.config.clone(), profile: self.profile.clone(), identity: identity(), flags })
    }

    /// Settings, rules and audit for one channel.
    pub fn guard(&self, channel: Channel) -> Result<Guard> {
        let reloader = Reloader::load(self.load_options()?)?;
        let settings = &reloader.current().settings;
        let auditor = Arc::new(Auditor::new(settings).context("audit trail")?);
        let mut origin = Origin::new(channel);
        origin.user = identity().user;
        origin.src = std::env::var("SSH_CONNECTION").ok().and_then(|c| Origin::ssh_client(&c));
        let path = std::env::current_dir().ok();
        Ok(Guard::new(reloader, auditor, Context { origin, path }))
    }
}

/// The user this process runs as, and their groups.
pub fn identity() -> Identity {
    // SAFETY: getpwuid/getgrgid return pointers into static storage that stay
    // valid until the next call; we copy the names out immediately.
    unsafe {
        let uid = libc::geteuid();
        let pw = libc::getpwuid(uid);
        let user = (!pw.is_null()).then(|| cstr((*pw).pw_name)).flatten().or_else(|| std::env::var("USER").ok());
        let mut gids = vec![0 as libc::gid_t; 256];
        let n = libc::getgroups(gids.len() as libc::c_int, gids.as_mut_ptr());
        let mut groups = Vec::new();
        for &g in gids.iter().take(n.max(0) as usize) {
            let gr = libc::getgrgid(g);
            if let Some(name) = (!gr.is_null()).then(|| cstr((*gr).gr_name)).flatten() {
                groups.push(name);
            }
        }
        Identity { user, groups }
    }
}

unsafe fn cstr(p: *const libc::c_char) -> Option<String> {
    // SAFETY: the caller passes a NUL-terminated string or null.
    (!p.is_null()).then(|| unsafe { std::ffi::CStr::from_ptr(p) }.to_string_lossy().into_owned())
}
