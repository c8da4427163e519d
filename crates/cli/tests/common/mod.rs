//! What the binary's behaviour tests share.

use std::path::Path;
use std::process::Command;

/// A leakguard command isolated from the machine's settings: its own audit
/// key, no /etc config, a clean environment, run in `dir`.
pub fn leakguard(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_leakguard"));
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("LEAKGUARD_CONFIG", dir.join("none.toml"))
        .env("LEAKGUARD_AUDIT_KEY_FILE", dir.join("audit.key"))
        .current_dir(dir);
    std::fs::write(dir.join("none.toml"), "").unwrap();
    c
}
