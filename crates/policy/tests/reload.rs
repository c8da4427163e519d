//! Rules changed on disk are picked up; a broken file keeps the old ones.

use std::sync::Arc;
use std::time::{Duration, Instant};

use leakguard_policy::audit::{Auditor, Channel, Origin};
use leakguard_policy::{LoadOptions, Reloader};

fn rule(id: &str, prefix: &str) -> String {
    format!(
        "[[rules]]\nid = \"{id}\"\ndescription = \"test\"\ncategory = \"test\"\nprefixes = [\"{prefix}\"]\nregex = '{prefix}[a-z0-9]{{24}}'\n"
    )
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < Duration::from_secs(60), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn reload_on_change_and_keep_last_good_rules() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.toml");
    let audit = dir.path().join("audit.jsonl");
    std::fs::write(&rules, rule("acme", "acme_")).unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "pattern_update_interval = 3600\nrule_files = [\"{}\"]\naudit_log = \"{}\"\naudit_key_file = \"{}/key\"\n",
            rules.display(),
            audit.display(),
            dir.path().display()
        ),
    )
    .unwrap();
    let reloader = Reloader::load(LoadOptions { config_file: Some(config), ..LoadOptions::default() }).unwrap();
    let auditor = Arc::new(Auditor::new(&reloader.current().settings).unwrap());
    reloader.watch(auditor, Origin::new(Channel::Cli));
    let finds = |text: &str| !reloader.current().engine.find(text.as_bytes()).is_empty();
    assert!(finds("acme_q8zk2m4xw7r1p9tj5vb3n6c0"));
    assert!(!finds("zeta_q8zk2m4xw7r1p9tj5vb3n6c0"));

    // A changed file is picked up (well within the hour-long interval).
    std::fs::write(&rules, rule("acme", "acme_") + &rule("zeta", "zeta_")).unwrap();
    wait_for("the new rule", || finds("zeta_q8zk2m4xw7r1p9tj5vb3n6c0"));
    let generation = reloader.current().generation;

    // A broken file keeps the last good rules and says why.
    std::fs::write(&rules, "[[rules]]\nid = \"broken\"\ndescription = \"x\"\ncategory = \"x\"\nregex = '(unclosed'\n")
        .unwrap();
    wait_for("rules_reload_failed", || {
        std::fs::read_to_string(&audit).unwrap_or_default().contains("rules_reload_failed")
    });
    assert_eq!(reloader.current().generation, generation);
    assert!(finds("zeta_q8zk2m4xw7r1p9tj5vb3n6c0"), "old rules still in force");
    let log = std::fs::read_to_string(&audit).unwrap();
    assert!(log.contains("broken"), "the reason names the rule: {log}");
    reloader.stop();
}

#[test]
fn interval_reload_happens() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "pattern_update_interval = 1\naudit_log = \"{}\"\naudit_key_file = \"{}/key\"\n",
            audit.display(),
            dir.path().display()
        ),
    )
    .unwrap();
    let reloader = Reloader::load(LoadOptions { config_file: Some(config), ..LoadOptions::default() }).unwrap();
    let auditor = Arc::new(Auditor::new(&reloader.current().settings).unwrap());
    reloader.watch(auditor, Origin::new(Channel::Cli));
    wait_for("a periodic reload", || reloader.current().generation >= 1);
    assert!(std::fs::read_to_string(&audit).unwrap().contains("rules_reloaded"));
    reloader.stop();
}
