//! Hot reload of settings and rules.
//!
//! The current settings and compiled engine sit behind an atomic pointer;
//! readers take a snapshot per chunk and never wait. A background thread
//! rebuilds both every `pattern_update_interval` seconds and when a watched
//! file (the config file, rule files) changes, and swaps them in one step. A
//! failed rebuild (bad TOML, a regex that does not compile) keeps the last
//! good snapshot and records `rules_reload_failed` with the reason.
//!
//! Files are watched by polling their metadata once a second rather than
//! with inotify: Kubernetes updates mounted ConfigMaps by swapping a symlink,
//! which inotify watches on the file itself do not see, while `stat`
//! follows the link.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use leakguard_engine::Engine;

use crate::audit::{Auditor, Event, EventKind, Origin};
use crate::error::SettingsError;
use crate::settings::{LoadOptions, Settings};

/// Settings and the engine compiled from them, valid together.
pub struct Snapshot {
    pub settings: Settings,
    pub engine: Arc<Engine>,
    /// Increases with every successful reload.
    pub generation: u64,
    /// The watched files as they were when read.
    stamps: Vec<(PathBuf, Stamp)>,
}

/// Owns the current snapshot and reloads it.
pub struct Reloader {
    current: ArcSwap<Snapshot>,
    options: LoadOptions,
    stop: AtomicBool,
}

/// What identifies a file's content cheaply.
type Stamp = Option<(SystemTime, u64, u64)>;

fn stamp(p: &PathBuf) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).ok().map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len(), m.ino()))
}

/// Loads settings and compiles rules. `eager` also builds every regex now,
/// so a reload can reject a rule that would only fail on first use; the
/// first load skips that to keep start-up (a notebook kernel's) quick.
fn build(options: &LoadOptions, generation: u64, eager: bool) -> Result<Snapshot, SettingsError> {
    let settings = Settings::load(options)?;
    // Stamped before the rule files are read: a change from now on triggers a reload.
    let stamps = settings
        .watched_files()
        .into_iter()
        .map(|f| {
            let s = stamp(&f);
            (f, s)
        })
        .collect();
    let set = settings.rule_set()?;
    let engine = Engine::new(&set).map_err(|e| SettingsError::new(format!("rules: {e}")))?;
    if eager {
        engine.compile_all().map_err(|e| SettingsError::new(format!("rules: {e}")))?;
    }
    Ok(Snapshot { settings, engine: Arc::new(engine), generation, stamps })
}

impl Reloader {
    /// Loads settings and rules; an error here is a start-up error.
    pub fn load(options: LoadOptions) -> Result<Arc<Reloader>, SettingsError> {
        let first = build(&options, 0, false)?;
        Ok(Arc::new(Reloader { current: ArcSwap::from_pointee(first), options, stop: AtomicBool::new(false) }))
    }

    /// The snapshot in force now.
    pub fn current(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Rebuilds now. On success the new snapshot is in force; on failure the
    /// old one stays and the reason is returned.
    pub fn reload(&self) -> Result<Arc<Snapshot>, SettingsError> {
        let next = build(&self.options, self.current.load().generation + 1, true)?;
        self.current.store(Arc::new(next));
        Ok(self.current())
    }

    /// Starts the background thread; it records reload events through `auditor`.
    pub fn watch(self: &Arc<Self>, auditor: Arc<Auditor>, origin: Origin) {
        let me = Arc::clone(self);
        let spawned = std::thread::Builder::new().name("leakguard-reload".into()).spawn(move || {
            let mut stamps = me.current().stamps.clone();
            let mut last = Instant::now();
            while !me.stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(500));
                let interval = me.current().settings.update_interval();
                let now: Vec<(PathBuf, Stamp)> = stamps.iter().map(|(f, _)| (f.clone(), stamp(f))).collect();
                if now == stamps && last.elapsed() < interval {
                    continue;
                }
                if now != stamps {
                    // Let a writer finish: reload once the files have been still for a moment.
                    std::thread::sleep(Duration::from_millis(300));
                    if stamps.iter().map(|(f, _)| (f.clone(), stamp(f))).collect::<Vec<_>>() != now {
                        continue;
                    }
                }
                last = Instant::now();
                stamps = now;
                match me.reload() {
                    Ok(snap) => {
                        stamps = snap.stamps.clone();
                        let mut e = Event::new(EventKind::RulesReloaded, &origin);
                        e.count = Some(snap.engine.len() as u64);
                        auditor.record(&e);
                    }
                    Err(err) => {
                        let mut e = Event::new(EventKind::RulesReloadFailed, &origin);
                        e.reason = Some(err.to_string());
                        auditor.record(&e);
                    }
                }
            }
        });
        if let Err(e) = spawned {
            eprintln!("leakguard: cannot start the reload thread: {e}");
        }
    }

    /// Ends the background thread at its next wake-up.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
