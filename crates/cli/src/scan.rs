//! `leakguard scan` and `leakguard redact FILE...`: files, directories and notebooks.

use std::collections::HashSet;
use std::fs;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context as _, Result};
use leakguard_engine::{Engine, Style};
use leakguard_jupyter::notebook::{self, NotebookError, Place};
use leakguard_policy::audit::{EventKind, Key};
use leakguard_policy::{Guard, Settings};
use serde::{Deserialize, Serialize};

/// Files larger than this are memory-mapped rather than read.
const MMAP_FROM: u64 = 1 << 20;
/// A NUL byte in this much of the head marks a file as binary.
const BINARY_PROBE: usize = 8 * 1024;

/// One finding, as reported.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub rule_id: String,
    pub category: String,
    pub severity: String,
    pub path: String,
    /// Line and column (1-based): in the file, or within the cell's text for notebooks.
    pub line: usize,
    pub column: usize,
    /// Notebook cell index (0-based), for `.ipynb` files.
    pub cell: Option<usize>,
    /// `source` or `output`, for notebooks.
    pub location: Option<&'static str>,
    /// Which output of the cell (0-based).
    pub output: Option<usize>,
    pub fingerprint: String,
    /// Only with `--show-secrets`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// The secret shortened for display (`ghp_…`).
    #[serde(skip)]
    pub preview: String,
    /// Line in the file itself, for SARIF (notebooks: where the secret's JSON text is).
    #[serde(skip)]
    pub file_line: usize,
}

/// What a scan found and what went wrong.
#[derive(Default)]
pub struct Outcome {
    pub reports: Vec<Report>,
    pub errors: Vec<String>,
    pub files: usize,
    pub bytes: u64,
}

/// How `scan` walks and reads.
pub struct ScanOptions {
    pub threads: usize,
    pub verbose: bool,
    pub show_secrets: bool,
    pub no_ignore: bool,
}

/// A baseline: known findings, keyed by rule and keyed fingerprint of the secret.
#[derive(Serialize, Deserialize)]
pub struct Baseline {
    pub version: u32,
    pub findings: Vec<BaselineEntry>,
}

#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, Hash)]
pub struct BaselineEntry {
    pub rule_id: String,
    pub fingerprint: String,
    #[serde(default)]
    pub path: String,
}

impl Baseline {
    pub fn read(path: &Path) -> Result<Baseline> {
        let text = fs::read_to_string(path).with_context(|| format!("cannot read baseline {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("baseline {} is not a leakguard baseline", path.display()))
    }

    pub fn keys(&self) -> HashSet<(String, String)> {
        self.findings.iter().map(|e| (e.rule_id.clone(), e.fingerprint.clone())).collect()
    }
}

fn preview(secret: &[u8]) -> String {
    let s = String::from_utf8_lossy(secret);
    let head: String = s.chars().take(4.min(s.chars().count() / 3)).collect();
    format!("{head}…({} chars)", s.chars().count())
}

fn is_binary(head: &[u8]) -> bool {
    head[..head.len().min(BINARY_PROBE)].contains(&0)
}

/// File contents, mapped when large.
enum Contents {
    Read(Vec<u8>),
    Mapped(memmap2::Mmap),
}

impl std::ops::Deref for Contents {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Contents::Read(v) => v,
            Contents::Mapped(m) => m,
        }
    }
}

fn load(path: &Path) -> io::Result<Contents> {
    let file = fs::File::open(path)?;
    if file.metadata()?.len() >= MMAP_FROM {
        // SAFETY: the map is read-only and dropped before the scan returns; a
        // file truncated meanwhile by another process is the accepted risk of mmap.
        return Ok(Contents::Mapped(unsafe { memmap2::Mmap::map(&file)? }));
    }
    let mut v = Vec::new();
    io::Read::read_to_end(&mut &file, &mut v)?;
    Ok(Contents::Read(v))
}

fn is_notebook(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("ipynb"))
}

/// Line (1-based) of the first occurrence of `needle` in `haystack`.
fn line_of(haystack: &[u8], needle: &[u8]) -> usize {
    if needle.is_empty() {
        return 1;
    }
    memchr::memmem::find(haystack, needle).map_or(1, |i| memchr::memchr_iter(b'\n', &haystack[..i]).count() + 1)
}

struct FileScan<'a> {
    engine: &'a Engine,
    key: &'a Key,
    show_secrets: bool,
}

impl FileScan<'_> {
    fn report(&self, rule: usize, path: &Path, line: usize, column: usize, secret: &[u8]) -> Report {
        let r = self.engine.rule(rule);
        Report {
            rule_id: r.id.clone(),
            category: r.category.clone(),
            severity: r.severity.to_string(),
            path: path.display().to_string(),
            line,
            column,
            cell: None,
            location: None,
            output: None,
            fingerprint: self.key.fingerprint(&r.id, secret),
            secret: self.show_secrets.then(|| String::from_utf8_lossy(secret).into_owned()),
            preview: preview(secret),
            file_line: line,
        }
    }

    /// Scans one file; `Err` for unreadable files and damaged notebooks
    /// (which are still scanned as text).
    fn file(&self, path: &Path, out: &mut Vec<Report>, errors: &mut Vec<String>) -> io::Result<Option<u64>> {
        let data = load(path)?;
        if is_binary(&data) {
            return Ok(None);
        }
        if is_notebook(path) {
            match notebook::scan(self.engine, &data) {
                Ok(found) => {
                    for f in found {
                        let mut r = self.report(f.finding.rule, path, f.line, f.column, &f.secret);
                        r.cell = f.cell;
                        (r.location, r.output) = match f.place {
                            Place::Source => (Some("source"), None),
                            Place::Output { index } => (Some("output"), Some(index)),
                            Place::Attachment => (Some("attachment"), None),
                            Place::Metadata => (Some("metadata"), None),
                        };
                        let escaped = serde_json::to_string(&String::from_utf8_lossy(&f.secret)).unwrap_or_default();
                        r.file_line = line_of(&data, escaped.trim_matches('"').as_bytes());
                        out.push(r);
                    }
                    return Ok(Some(data.len() as u64));
                }
                Err(e @ (NotebookError::Json(_) | NotebookError::Format(_))) => {
                    errors.push(format!("{}: {e}; scanned as plain text", path.display()));
                }
            }
        }
        let mut line = 1;
        let mut line_start = 0;
        let mut at = 0;
        for f in self.engine.find(&data) {
            for (i, &b) in data[at..f.start].iter().enumerate() {
                if b == b'\n' {
                    line += 1;
                    line_start = at + i + 1;
                }
            }
            at = f.start;
            let column = String::from_utf8_lossy(&data[line_start..f.start]).chars().count() + 1;
            out.push(self.report(f.rule, path, line, column, f.secret(&data)));
        }
        Ok(Some(data.len() as u64))
    }
}

/// Walks `paths` (gitignore-aware, hidden files included, `.git` skipped,
/// allowlisted paths skipped) and scans every file, in parallel.
pub fn scan(guard: &Guard, paths: &[PathBuf], opts: &ScanOptions) -> Result<Outcome> {
    let snap = guard.snapshot();
    let settings: &Settings = &snap.settings;
    let engine = &snap.engine;
    let scanner = FileScan { engine, key: guard.auditor().key(), show_secrets: opts.show_secrets };
    let allow: Vec<PathBuf> =
        settings.allowlist_paths.value.iter().map(|p| fs::canonicalize(p).unwrap_or(p.clone())).collect();
    let outcome = Mutex::new(Outcome::default());
    let progress = io::stderr().is_terminal().then(|| {
        let p = indicatif::ProgressBar::new_spinner();
        p.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {pos} files scanned {msg}").expect("valid template"),
        );
        p
    });
    let mut roots = paths.iter();
    let first = roots.next().context("no path to scan")?;
    for p in paths {
        if !p.exists() {
            anyhow::bail!("{}: no such file or directory", p.display());
        }
    }
    let mut walk = ignore::WalkBuilder::new(first);
    for p in roots {
        walk.add(p);
    }
    walk.hidden(false)
        .git_ignore(!opts.no_ignore)
        .git_exclude(!opts.no_ignore)
        .ignore(!opts.no_ignore)
        .require_git(false)
        .threads(opts.threads)
        .filter_entry(|e| e.file_name() != ".git");
    walk.build_parallel().run(|| {
        let scanner = &scanner;
        let outcome = &outcome;
        let progress = &progress;
        let allow = &allow;
        Box::new(move |entry| {
            let mut reports = Vec::new();
            let mut errors = Vec::new();
            let mut counted = None;
            match entry {
                Err(e) => errors.push(e.to_string()),
                Ok(e) => {
                    let path = e.path();
                    let absolute = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
                    if allow.iter().any(|a| absolute.starts_with(a)) {
                        if opts.verbose {
                            eprintln!("skipped (allowlisted path): {}", path.display());
                        }
                        return if e.file_type().is_some_and(|t| t.is_dir()) {
                            ignore::WalkState::Skip
                        } else {
                            ignore::WalkState::Continue
                        };
                    }
                    if e.file_type().is_some_and(|t| t.is_file()) {
                        match scanner.file(path, &mut reports, &mut errors) {
                            Ok(Some(n)) => counted = Some(n),
                            Ok(None) if opts.verbose => eprintln!("skipped (binary): {}", path.display()),
                            Ok(None) => {}
                            Err(err) => errors.push(format!("{}: {err}", path.display())),
                        }
                    }
                }
            }
            if let Ok(mut o) = outcome.lock() {
                o.reports.extend(reports);
                o.errors.extend(errors);
                if let Some(n) = counted {
                    o.files += 1;
                    o.bytes += n;
                    if let Some(p) = progress {
                        p.inc(1);
                    }
                }
            }
            ignore::WalkState::Continue
        })
    });
    if let Some(p) = progress {
        p.finish_and_clear();
    }
    let mut outcome = outcome.into_inner().map_err(|_| anyhow::anyhow!("a scan thread failed"))?;
    outcome.reports.sort_by(|a, b| (&a.path, a.cell, a.line, a.column).cmp(&(&b.path, b.cell, b.line, b.column)));
    for r in &outcome.reports {
        guard.record(EventKind::SecretDetected, |e| {
            e.action = Some("report".into());
            e.rule = Some(r.rule_id.clone());
            e.category = Some(r.category.clone());
            e.count = Some(1);
            e.fingerprint = Some(r.fingerprint.clone());
            e.notebook = r.location.map(|_| r.path.clone());
        });
    }
    Ok(outcome)
}

/// Prints findings as text (colour on a terminal).
pub fn print_text(reports: &[Report], w: &mut impl Write, colour: bool) -> io::Result<()> {
    let (bold, dim, red, reset) = if colour { ("\x1b[1m", "\x1b[2m", "\x1b[31m", "\x1b[0m") } else { ("", "", "", "") };
    for r in reports {
        let place = match (r.cell, r.location) {
            (Some(c), Some("output")) => format!("cell {c} output {}: line {}", r.output.unwrap_or(0), r.line),
            (Some(c), Some(l)) => format!("cell {c} {l}: line {}", r.line),
            (None, Some(l)) => format!("notebook {l}: line {}", r.line),
            _ => format!("{}:{}", r.line, r.column),
        };
        let shown = r.secret.clone().unwrap_or_else(|| r.preview.clone());
        writeln!(
            w,
            "{bold}{}{reset}:{place}: {red}{}{reset} {dim}({}, {}){reset} {shown}",
            r.path, r.rule_id, r.category, r.severity
        )?;
    }
    Ok(())
}

/// SARIF 2.1.0 for GitHub code scanning and other tools.
pub fn sarif(engine: &Engine, reports: &[Report]) -> serde_json::Value {
    let mut rule_ids: Vec<&str> = reports.iter().map(|r| r.rule_id.as_str()).collect();
    rule_ids.sort_unstable();
    rule_ids.dedup();
    let rules: Vec<serde_json::Value> = rule_ids
        .iter()
        .map(|id| {
            let r = engine.rules().find(|r| r.id == *id);
            serde_json::json!({
                "id": id,
                "name": id,
                "shortDescription": { "text": r.map_or(id.to_string(), |r| r.description.clone()) },
                "help": { "text": "Remove the secret from the file and rotate it: it may already have been copied." },
                "properties": { "tags": ["security", "secret", r.map_or("", |r| r.category.as_str())] },
            })
        })
        .collect();
    let results: Vec<serde_json::Value> = reports
        .iter()
        .map(|r| {
            let level = match r.severity.as_str() {
                "critical" | "high" => "error",
                "medium" => "warning",
                _ => "note",
            };
            let where_ = match (r.cell, r.location) {
                (Some(c), l) => format!(" in cell {c} {}", l.unwrap_or("")),
                (None, Some(l)) => format!(" in the notebook {l}"),
                (None, None) => String::new(),
            };
            let mut loc = serde_json::json!({
                "physicalLocation": {
                    "artifactLocation": { "uri": r.path.trim_start_matches("./") },
                    "region": { "startLine": r.file_line.max(1) },
                }
            });
            if r.location.is_none() {
                loc["physicalLocation"]["region"]["startColumn"] = r.column.into();
            }
            serde_json::json!({
                "ruleId": r.rule_id,
                "ruleIndex": rule_ids.iter().position(|x| *x == r.rule_id).unwrap_or(0),
                "level": level,
                "message": { "text": format!("{} found{where_}", r.rule_id) },
                "locations": [loc],
                "partialFingerprints": { "leakguardFingerprint/v1": r.fingerprint },
            })
        })
        .collect();
    serde_json::json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "leakguard",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/leakguard/leakguard",
                "rules": rules,
            }},
            "results": results,
        }]
    })
}

/// What `redact FILE...` did to one file.
pub struct FileRedaction {
    pub output: Vec<u8>,
    pub masked: Vec<(String, String)>,
}

/// Redacts one file (notebooks as JSON, other files as text).
pub fn redact_file(engine: &Engine, style: &Style, path: &Path) -> Result<FileRedaction> {
    let data = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if is_notebook(path) {
        let r = notebook::redact(engine, &data, style).with_context(|| format!("{}", path.display()))?;
        let masked = r
            .findings
            .iter()
            .map(|f| {
                let cell = f.cell.map_or_else(|| "notebook".to_string(), |c| format!("cell {c}"));
                (engine.rule(f.finding.rule).id.clone(), format!("{cell} {}, line {}", f.place, f.line))
            })
            .collect();
        return Ok(FileRedaction { output: r.json, masked });
    }
    let r = engine.redact(&data, style);
    let mut masked = Vec::new();
    for f in &r.findings {
        let line = data[..f.start].iter().filter(|&&b| b == b'\n').count() + 1;
        masked.push((engine.rule(f.rule).id.clone(), format!("line {line}")));
    }
    Ok(FileRedaction { output: r.output.into_owned(), masked })
}

/// Replaces a file's contents atomically: a temporary file in the same
/// directory, the original permissions, then a rename.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().context("not a file path")?.to_string_lossy();
    let tmp = dir.join(format!(".{name}.leakguard-{}.tmp", std::process::id()));
    let result = (|| -> Result<()> {
        let perms = fs::metadata(path)?.permissions();
        let mut f = fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::set_permissions(&tmp, perms)?;
        fs::rename(&tmp, path)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot rewrite {}", path.display()))
}
