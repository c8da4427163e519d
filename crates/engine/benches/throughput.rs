//! Single-thread throughput of the engine on a corpus of notebook/terminal output.
//!
//! `cargo bench -p leakguard-engine --bench throughput -- [FILE...]`
//!
//! Each FILE (default: `$LEAKGUARD_CORPUS`, a file or directory; see
//! `benches/README.md` for generating one with `gen_corpus.py`) is loaded
//! into memory and redacted in 1 MiB pieces, as a stream would be, with the
//! built-in rules. Reports MB/s of `Engine::find` and of `StreamRedactor`,
//! best of three runs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use leakguard_engine::{Engine, StreamRedactor, Style};

fn load(path: &Path) -> Vec<u8> {
    let mut files: Vec<PathBuf> = if path.is_dir() {
        std::fs::read_dir(path).expect("corpus directory").map(|e| e.unwrap().path()).collect()
    } else {
        vec![path.to_path_buf()]
    };
    files.sort();
    let mut data = Vec::new();
    for f in &files {
        data.extend_from_slice(&std::fs::read(f).expect("corpus file"));
    }
    data
}

fn best_of<F: FnMut() -> usize>(runs: usize, mut f: F) -> (f64, usize) {
    let mut best = f64::MAX;
    let mut n = 0;
    for _ in 0..runs {
        let t = Instant::now();
        n = f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    (best, n)
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    if args.is_empty() {
        match std::env::var("LEAKGUARD_CORPUS") {
            Ok(p) => args.push(p),
            Err(_) => {
                eprintln!("no corpus: pass a file or directory, or set LEAKGUARD_CORPUS (see benches/README.md)");
                return;
            }
        }
    }
    let t = Instant::now();
    let engine = Arc::new(Engine::builtin());
    println!(
        "compiled {} rules in {:.1} ms (keywords: {})",
        engine.len(),
        t.elapsed().as_secs_f64() * 1e3,
        engine.keyword_backend()
    );
    for arg in args {
        let data = load(Path::new(&arg));
        let mb = data.len() as f64 / 1e6;
        let (secs, found) = best_of(3, || data.chunks(1 << 20).map(|c| engine.find(c).len()).sum());
        println!("{arg}: {mb:.1} MB  find   {:>7.0} MB/s  {found} findings", mb / secs);
        let (secs, out_len) = best_of(3, || {
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
        println!("{arg}: {mb:.1} MB  stream {:>7.0} MB/s  {out_len} bytes out", mb / secs);
    }
}
