//! The `leakguard` command: thin adapters from files, pipes and terminals to the engine.

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use leakguard_engine::{Engine, RuleSet, StreamRedactor, Style};

#[derive(Parser)]
#[command(name = "leakguard", version, about = "Find and mask secrets in text, files, notebooks and terminals")]
struct Cli {
    /// Extra rule file (leakguard TOML, or gitleaks TOML detected by its keys); repeatable.
    #[arg(long = "rules", global = true, value_name = "FILE")]
    rules: Vec<PathBuf>,
    /// Rule file in gitleaks' format; repeatable. Rules with an existing id replace it.
    #[arg(long = "gitleaks-config", global = true, value_name = "FILE")]
    gitleaks: Vec<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read standard input, write it with secrets masked to standard output.
    Redact {
        /// Replacement: redacted, rule-id, prefix:N, same-width[:C], text:STRING.
        #[arg(long, default_value = "redacted")]
        style: Style,
    },
    /// List or check the rules in use.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Print the rules in use.
    List {
        #[arg(long, default_value = "text")]
        format: ListFormat,
    },
    /// Run every rule against its examples and negative examples.
    Check,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ListFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("leakguard: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn load_rules(cli: &Cli) -> Result<RuleSet> {
    let mut set = RuleSet::builtin();
    for path in &cli.rules {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read rule file {}", path.display()))?;
        let part = if RuleSet::looks_like_gitleaks(&text) {
            RuleSet::from_gitleaks_toml(&text)
        } else {
            RuleSet::from_toml(&text)
        }
        .with_context(|| format!("rule file {}", path.display()))?;
        set.extend(part);
    }
    for path in &cli.gitleaks {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read rule file {}", path.display()))?;
        set.extend(RuleSet::from_gitleaks_toml(&text).with_context(|| format!("rule file {}", path.display()))?);
    }
    Ok(set)
}

fn run(cli: Cli) -> Result<ExitCode> {
    let set = load_rules(&cli)?;
    match cli.command {
        Command::Redact { style } => {
            let engine = Arc::new(Engine::new(&set)?);
            redact_stdin(engine, style)
        }
        Command::Rules { command: RulesCommand::List { format } } => {
            let engine = Engine::new(&set)?;
            let rules: Vec<_> = engine.rules().collect();
            match format {
                ListFormat::Json => println!("{}", serde_json::to_string_pretty(&rules)?),
                ListFormat::Text => {
                    for r in rules {
                        println!("{:<36} {:<10} {:<8} {}", r.id, r.category, r.severity, r.description);
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Rules { command: RulesCommand::Check } => {
            let report = leakguard_engine::selftest::check(&set, true);
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

fn redact_stdin(engine: Arc<Engine>, style: Style) -> Result<ExitCode> {
    let mut stream = StreamRedactor::new(engine, style);
    let stdin = io::stdin();
    let mut input = stdin.lock();
    let stdout = io::stdout();
    let mut output = stdout.lock();
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
        stream.push(&buf[..n], &mut out);
        output.write_all(&out).context("writing standard output")?;
        output.flush().context("writing standard output")?;
    }
    out.clear();
    stream.flush(&mut out);
    output.write_all(&out).context("writing standard output")?;
    output.flush().context("writing standard output")?;
    Ok(ExitCode::SUCCESS)
}
