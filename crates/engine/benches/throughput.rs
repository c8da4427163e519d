//! Single-thread throughput of the engine on a corpus of notebook/terminal output.
//!
//! `cargo bench -p leakguard-engine --bench throughput -- [--runs N] [--only LIST] [FILE...]`
//!
//! Each FILE (default: `$LEAKGUARD_CORPUS`; a file, or a directory whose
//! files are read in name order; see `benches/README.md` for generating
//! corpora with `gen_corpus.py`) is loaded into memory and measured with
//! the built-in rules, best of N runs (default 3):
//!
//! * `cat`: `cat FILE... > /dev/null`, the reference: what reading the data costs;
//! * `find`: `Engine::find` over 1 MiB pieces;
//! * `stream`: a `StreamRedactor` fed 1 MiB pieces, as `leakguard redact` does.
//!
//! MB/s are decimal megabytes per second of CPU time of this thread (of the
//! `cat` process for `cat`), which a busy machine disturbs far less than
//! wall time; wall-time MB/s follow in brackets. `--only find,stream`
//! picks measurements. Every regex is compiled before timing starts.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use leakguard_engine::{Engine, StreamRedactor, Style};

fn files_of(path: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = if path.is_dir() {
        std::fs::read_dir(path)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", path.display()))
            .map(|e| e.expect("directory entry").path())
            .filter(|p| p.is_file())
            .collect()
    } else {
        vec![path.to_path_buf()]
    };
    files.sort();
    files
}

fn load(files: &[PathBuf]) -> Vec<u8> {
    let mut data = Vec::new();
    for f in files {
        data.extend_from_slice(&std::fs::read(f).unwrap_or_else(|e| panic!("cannot read {}: {e}", f.display())));
    }
    data
}

#[derive(Clone, Copy)]
struct Cost {
    cpu: Duration,
    wall: Duration,
}

fn timespec(clock: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out-pointer for the call.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// User plus system time of the waited-for children so far.
fn children_cpu() -> Duration {
    // SAFETY: an all-zero rusage is valid, and `ru` is a valid out-pointer.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Runs `f` `runs` times; the best CPU and best wall time, and `f`'s result.
fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (Cost, T) {
    let mut best = Cost { cpu: Duration::MAX, wall: Duration::MAX };
    let mut out = None;
    for _ in 0..runs {
        let (c0, t0) = (timespec(libc::CLOCK_THREAD_CPUTIME_ID), Instant::now());
        out = Some(f());
        best.wall = best.wall.min(t0.elapsed());
        best.cpu = best.cpu.min(timespec(libc::CLOCK_THREAD_CPUTIME_ID) - c0);
    }
    (best, out.expect("at least one run"))
}

fn cat(files: &[PathBuf], runs: usize) -> Cost {
    let mut best = Cost { cpu: Duration::MAX, wall: Duration::MAX };
    for _ in 0..runs {
        let (c0, t0) = (children_cpu(), Instant::now());
        let status = Command::new("cat").args(files).stdout(Stdio::null()).status().expect("cat runs");
        assert!(status.success(), "cat failed");
        best.wall = best.wall.min(t0.elapsed());
        best.cpu = best.cpu.min(children_cpu() - c0);
    }
    best
}

fn report(what: &str, mb: f64, cost: Cost, note: &str) {
    let rate = |d: Duration| mb / d.as_secs_f64().max(1e-9);
    println!("  {what:<7}{:>8.0} MB/s  ({:.0} MB/s wall)  {note}", rate(cost.cpu), rate(cost.wall));
}

fn main() {
    let mut runs = 3;
    let mut only: Option<Vec<String>> = None;
    let mut paths = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => runs = args.next().and_then(|n| n.parse().ok()).expect("--runs takes a number"),
            "--only" => only = Some(args.next().expect("--only takes a list").split(',').map(String::from).collect()),
            // What `cargo bench` passes to every bench target.
            _ if a.starts_with("--") => {}
            _ => paths.push(PathBuf::from(a)),
        }
    }
    if paths.is_empty() {
        match std::env::var_os("LEAKGUARD_CORPUS") {
            Some(p) => paths.push(PathBuf::from(p)),
            None => {
                eprintln!("no corpus: pass files or directories, or set LEAKGUARD_CORPUS (see benches/README.md)");
                return;
            }
        }
    }
    let wanted = |what: &str| only.as_ref().is_none_or(|o| o.iter().any(|w| w == what));
    let t = Instant::now();
    let engine = Arc::new(Engine::builtin());
    println!(
        "{} rules compiled in {:.1} ms (keywords: {})",
        engine.len(),
        t.elapsed().as_secs_f64() * 1e3,
        engine.keyword_backend()
    );
    engine.compile_all().expect("the built-in rules compile");
    for path in paths {
        let files = files_of(&path);
        let data = load(&files);
        let mb = data.len() as f64 / 1e6;
        println!("{}: {mb:.1} MB, best of {runs}", path.display());
        if wanted("cat") {
            report("cat", mb, cat(&files, runs), "reference");
        }
        if wanted("find") {
            let (cost, found) = best_of(runs, || data.chunks(1 << 20).map(|c| engine.find(c).len()).sum::<usize>());
            report("find", mb, cost, &format!("{found} findings"));
        }
        if wanted("stream") {
            let (cost, out_len) = best_of(runs, || {
                let mut s = StreamRedactor::new(engine.clone(), Style::default());
                let mut out = Vec::with_capacity(1 << 21);
                let mut total = 0;
                for c in data.chunks(1 << 20) {
                    out.clear();
                    s.push(c, &mut out);
                    total += out.len();
                }
                out.clear();
                s.flush(&mut out);
                total + out.len()
            });
            report("stream", mb, cost, &format!("{out_len} bytes out"));
        }
    }
}
