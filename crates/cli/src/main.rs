//! The `leakguard` command: thin adapters from files, pipes and terminals
//! to the engine and the policy layer.

mod scan;
mod setup;

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};
use leakguard_engine::{Engine, Hold, selftest};
use leakguard_policy::audit::{self, Channel, Key};
use leakguard_policy::settings::Settings;
use leakguard_policy::{LoadOptions, Verdict};

use crate::setup::Common;

/// Exit code when `redact` withheld output in block mode.
const EXIT_BLOCKED: u8 = 3;

#[derive(Parser)]
#[command(name = "leakguard", version, about = "Find and mask secrets in text, files, notebooks and terminals")]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Mask secrets: standard input to standard output, or files (notebooks as notebooks).
    Redact {
        /// Files to redact; without any, standard input.
        files: Vec<PathBuf>,
        /// Rewrite the files (atomically, permissions kept) instead of printing them.
        #[arg(long)]
        in_place: bool,
        /// Only say what would be masked.
        #[arg(long)]
        dry_run: bool,
    },
    /// Scan files and directories (notebooks cell by cell) for secrets.
    Scan {
        /// Files or directories (default: the current directory).
        paths: Vec<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        format: ScanFormat,
        /// Print secrets in full instead of a short preview.
        #[arg(long)]
        show_secrets: bool,
        /// Ignore findings recorded in this baseline file.
        #[arg(long, value_name = "FILE")]
        baseline: Option<PathBuf>,
        /// Record the current findings as a baseline.
        #[arg(long, value_name = "FILE")]
        write_baseline: Option<PathBuf>,
        /// Worker threads (default: all cores).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Also scan files that .gitignore excludes.
        #[arg(long)]
        no_ignore: bool,
        /// Say which files were skipped and why.
        #[arg(long, short)]
        verbose: bool,
    },
    /// List or check the rules in use.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Show or check settings.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Check the audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Run the user's shell with its output masked live: the sshd
    /// ForceCommand, a login shell, or the shell of Jupyter terminals.
    /// Without -c, runs $SSH_ORIGINAL_COMMAND, or an interactive shell.
    Shell {
        /// Run this command instead of an interactive shell.
        #[arg(short = 'c', value_name = "COMMAND")]
        command: Option<String>,
        /// Start the real shell as a login shell.
        #[arg(short = 'l', long)]
        login: bool,
    },
    /// Run a Jupyter kernel behind a proxy that masks everything it sends
    /// (what a kernelspec's argv starts; see `jupyter leakguard install --enforce`).
    KernelProxy {
        /// The connection file the client wrote: `{connection_file}`.
        #[arg(long, value_name = "FILE")]
        connection_file: PathBuf,
        /// The kernelspec's interrupt_mode: how block mode stops a cell.
        #[arg(long, value_enum, default_value = "signal")]
        interrupt_mode: InterruptModeArg,
        /// The real kernel's command, with `{inner_connection_file}` where
        /// it takes its connection file.
        #[arg(last = true, required = true, value_name = "KERNEL_ARGV")]
        argv: Vec<std::ffi::OsString>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum InterruptModeArg {
    Signal,
    Message,
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Print the rules in use.
    List {
        #[arg(long, value_enum, default_value = "text")]
        format: ListFormat,
    },
    /// Run every rule against its examples and negative examples.
    Check,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the effective settings and where each value came from.
    Show,
    /// Validate a settings file (and the rules it names) without using it.
    Check { file: PathBuf },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verify the hash chain of a JSON-lines audit file.
    Verify {
        file: PathBuf,
        /// Key file (default: the setting audit_key_file).
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ScanFormat {
    Text,
    Json,
    Sarif,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ListFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    if let Some(request) = shell_invocation(&args) {
        run_shell(&Common::default(), request);
    }
    let cli = Cli::parse_from(args);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("leakguard: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// leakguard invoked as a shell rather than as a command: as a login shell
/// (argv0 `-leakguard`), by sshd as `leakguard -c CMD` when it is a user's
/// passwd shell, or through a link named `leakguard-shell`.
fn shell_invocation(args: &[OsString]) -> Option<leakguard_shell::Request> {
    let argv0 = args.first()?.to_string_lossy();
    let name = argv0.rsplit('/').next().unwrap_or(&argv0);
    let login = name.starts_with('-');
    let rest: Vec<String> = args[1..].iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let as_shell = login || name == "leakguard-shell" || rest.first().is_some_and(|a| a == "-c");
    if !as_shell {
        return None;
    }
    let command = match rest.iter().position(|a| a == "-c") {
        Some(i) => rest.get(i + 1).cloned(),
        None => ssh_original_command(),
    };
    Some(leakguard_shell::Request { command, login })
}

fn ssh_original_command() -> Option<String> {
    std::env::var("SSH_ORIGINAL_COMMAND").ok()
}

/// Runs a shell session and ends the process as the session ended.
fn run_shell(common: &Common, request: leakguard_shell::Request) -> ! {
    let guard = match common.guard(Channel::Ssh) {
        Ok(mut guard) => {
            guard.context.origin.session = Some(leakguard_shell::session_id());
            // ALLOWLIST_PATHS covers working directories: where the session starts.
            guard.context.path = std::env::current_dir().ok();
            guard.watch_reloads();
            guard
        }
        Err(e) => {
            // Without its settings the proxy would run unprotected: refuse.
            eprintln!("leakguard: cannot start a protected shell: {e:#}");
            std::process::exit(1)
        }
    };
    match leakguard_shell::run(&guard, &request) {
        Ok(exit) => leakguard_shell::exit_like(exit),
        Err(e) => {
            eprintln!("leakguard: shell: {e}");
            std::process::exit(1)
        }
    }
}

/// Runs a kernel behind the proxy; exits as the kernel exited.
fn kernel_proxy(
    common: &Common,
    connection_file: PathBuf,
    mode: InterruptModeArg,
    argv: Vec<std::ffi::OsString>,
) -> Result<ExitCode> {
    // Without its settings the kernel would run unprotected: refuse.
    let mut guard = common.guard(Channel::Jupyter).context("cannot start a protected kernel")?;
    let origin = &mut guard.context.origin;
    origin.enforced = true;
    // The kernel's id, as jupyter_client names connection files (kernel-<id>.json).
    origin.session = connection_file.file_stem().map(|s| s.to_string_lossy().trim_start_matches("kernel-").to_string());
    // Set by jupyter_server for the kernel: the notebook's path (a hint for
    // ALLOWLIST_PATHS, not an authorisation).
    let notebook = std::env::var("JPY_SESSION_NAME").ok().filter(|s| !s.is_empty());
    origin.notebook = notebook.clone();
    guard.context.path = notebook.map(PathBuf::from);
    guard.watch_reloads();
    let interrupt_mode = match mode {
        InterruptModeArg::Signal => leakguard_kernel_proxy::InterruptMode::Signal,
        InterruptModeArg::Message => leakguard_kernel_proxy::InterruptMode::Message,
    };
    let opts = leakguard_kernel_proxy::Options { connection_file, argv, interrupt_mode };
    let code = leakguard_kernel_proxy::run(&opts, &guard)?;
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

fn run(cli: Cli) -> Result<ExitCode> {
    let common = cli.common;
    match cli.command {
        Command::Shell { command, login } => {
            run_shell(&common, leakguard_shell::Request { command: command.or_else(ssh_original_command), login })
        }
        Command::KernelProxy { connection_file, interrupt_mode, argv } => {
            kernel_proxy(&common, connection_file, interrupt_mode, argv)
        }
        Command::Redact { files, in_place, dry_run } if files.is_empty() => {
            if in_place || dry_run {
                anyhow::bail!("--in-place and --dry-run need files");
            }
            redact_stdin(&common)
        }
        Command::Redact { files, in_place, dry_run } => redact_files(&common, &files, in_place, dry_run),
        Command::Scan { paths, format, show_secrets, baseline, write_baseline, threads, no_ignore, verbose } => {
            let guard = common.guard(Channel::Cli)?;
            let paths = if paths.is_empty() { vec![PathBuf::from(".")] } else { paths };
            let opts = scan::ScanOptions { threads, verbose, show_secrets, no_ignore };
            let mut outcome = scan::scan(&guard, &paths, &opts)?;
            if let Some(b) = &baseline {
                let known = scan::Baseline::read(b)?.keys();
                outcome.reports.retain(|r| !known.contains(&(r.rule_id.clone(), r.fingerprint.clone())));
            }
            if let Some(b) = &write_baseline {
                let findings = outcome
                    .reports
                    .iter()
                    .map(|r| scan::BaselineEntry {
                        rule_id: r.rule_id.clone(),
                        fingerprint: r.fingerprint.clone(),
                        path: r.path.clone(),
                    })
                    .collect();
                let text = serde_json::to_string_pretty(&scan::Baseline { version: 1, findings })?;
                std::fs::write(b, text + "\n").with_context(|| format!("cannot write {}", b.display()))?;
            }
            let mut stdout = io::stdout().lock();
            match format {
                ScanFormat::Text => {
                    let colour = std::io::IsTerminal::is_terminal(&io::stdout());
                    scan::print_text(&outcome.reports, &mut stdout, colour)?;
                }
                ScanFormat::Json => writeln!(stdout, "{}", serde_json::to_string_pretty(&outcome.reports)?)?,
                ScanFormat::Sarif => {
                    let engine = guard.snapshot().engine.clone();
                    writeln!(stdout, "{}", serde_json::to_string_pretty(&scan::sarif(&engine, &outcome.reports))?)?;
                }
            }
            for e in &outcome.errors {
                eprintln!("leakguard: {e}");
            }
            if verbose {
                eprintln!(
                    "{} files, {} bytes scanned, {} findings",
                    outcome.files,
                    outcome.bytes,
                    outcome.reports.len()
                );
            }
            Ok(ExitCode::from(if !outcome.errors.is_empty() {
                2
            } else if outcome.reports.is_empty() {
                0
            } else {
                1
            }))
        }
        Command::Rules { command } => {
            let settings = Settings::load(&common.load_options()?)?;
            let set = settings.rule_set()?;
            match command {
                RulesCommand::List { format } => {
                    let engine = Engine::new(&set)?;
                    let rules: Vec<_> = engine.rules().collect();
                    match format {
                        ListFormat::Json => println!("{}", serde_json::to_string_pretty(&rules)?),
                        ListFormat::Text => {
                            for r in rules {
                                println!("{:<40} {:<14} {:<8} {}", r.id, r.category, r.severity, r.description);
                            }
                        }
                    }
                    Ok(ExitCode::SUCCESS)
                }
                RulesCommand::Check => {
                    let report = selftest::check(&set, true);
                    for f in &report.failures {
                        println!("FAIL {f}");
                    }
                    println!(
                        "{} rules, {} examples, {} negative examples: {} failures",
                        report.rules,
                        report.examples,
                        report.negative_examples,
                        report.failures.len()
                    );
                    Ok(if report.failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
                }
            }
        }
        Command::Config { command: ConfigCommand::Show } => {
            let s = Settings::load(&common.load_options()?)?;
            println!("# config file: {}", s.config_file.as_ref().map_or("(none)".into(), |p| p.display().to_string()));
            println!("# profile: {}", s.profile.as_deref().unwrap_or("(none)"));
            for (key, value, source) in s.entries() {
                println!("{key} = {value}  # {source}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Config { command: ConfigCommand::Check { file } } => {
            let opts = LoadOptions { config_file: Some(file.clone()), ..LoadOptions::default() };
            let s = Settings::load_with_env(&opts, &|_| None)?;
            let engine = Engine::new(&s.rule_set()?)?;
            engine.compile_all()?;
            println!("{}: ok ({} rules enabled)", file.display(), engine.len());
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit { command: AuditCommand::Verify { file, key } } => {
            let key_file = match key {
                Some(k) => k,
                None => Settings::load(&common.load_options()?)?
                    .audit_key_file
                    .value
                    .unwrap_or_else(audit::default_key_file),
            };
            if !key_file.exists() {
                anyhow::bail!("no audit key at {} (pass --key FILE)", key_file.display());
            }
            let key = Key::load_or_create(&key_file)?;
            match audit::verify(&file, &key)? {
                Ok(n) => {
                    println!("{}: {n} lines, chain intact", file.display());
                    Ok(ExitCode::SUCCESS)
                }
                Err(b) => {
                    println!("{}: line {}: {}", file.display(), b.line, b.reason);
                    Ok(ExitCode::from(1))
                }
            }
        }
    }
}

/// Streams standard input to standard output; a line goes out as soon as it
/// is complete, memory stays bounded on endless input.
fn redact_stdin(common: &Common) -> Result<ExitCode> {
    let guard = common.guard(Channel::Cli)?;
    // A filter may run for days: rules and settings follow their files.
    guard.watch_reloads();
    let mut stream = guard.stream(Hold::Line, false);
    let mut input = io::stdin().lock();
    let mut output = io::stdout().lock();
    let mut buf = vec![0u8; 256 * 1024];
    let mut out = Vec::with_capacity(buf.len() + 4096);
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("reading standard input"),
        };
        out.clear();
        let verdict = stream.push(&buf[..n], &mut out);
        if !write_out(&mut output, &out)? {
            return Ok(ExitCode::SUCCESS);
        }
        if verdict == Verdict::Blocked {
            eprintln!("leakguard: output blocked: it holds a secret (see the audit log)");
            return Ok(ExitCode::from(EXIT_BLOCKED));
        }
    }
    out.clear();
    let verdict = stream.flush(&mut out);
    write_out(&mut output, &out)?;
    if verdict == Verdict::Blocked {
        eprintln!("leakguard: output blocked: it holds a secret (see the audit log)");
        return Ok(ExitCode::from(EXIT_BLOCKED));
    }
    Ok(ExitCode::SUCCESS)
}

/// `redact FILE...`: prints, rewrites or reports each file.
fn redact_files(common: &Common, files: &[PathBuf], in_place: bool, dry_run: bool) -> Result<ExitCode> {
    let guard = common.guard(Channel::Cli)?;
    let snap = guard.snapshot();
    let style = &snap.settings.redaction_style.value;
    let mut failed = false;
    for path in files {
        let r = match scan::redact_file(&snap.engine, style, path) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("leakguard: {e:#}");
                failed = true;
                continue;
            }
        };
        for (rule, _) in &r.masked {
            guard.record(leakguard_policy::audit::EventKind::SecretDetected, |e| {
                e.action = Some("mask".into());
                e.rule = Some(rule.clone());
                e.count = Some(1);
            });
        }
        if dry_run {
            println!("{}: {} secret(s) would be masked", path.display(), r.masked.len());
            for (rule, place) in &r.masked {
                println!("  {place}: {rule}");
            }
        } else if in_place {
            if !r.masked.is_empty() {
                scan::write_atomically(path, &r.output)?;
                eprintln!("{}: {} secret(s) masked", path.display(), r.masked.len());
            }
        } else if !write_out(&mut io::stdout().lock(), &r.output)? {
            break;
        }
    }
    Ok(if failed { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

/// Writes and flushes; false when the reader went away (broken pipe).
fn write_out(w: &mut impl Write, bytes: &[u8]) -> Result<bool> {
    match w.write_all(bytes).and_then(|()| w.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e).context("writing standard output"),
    }
}
