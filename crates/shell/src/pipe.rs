//! Pipe mode (`ssh host cmd`): standard output and error redacted apart,
//! with masks that keep the byte length.

use std::io::{self, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use leakguard_engine::Hold;
use leakguard_policy::{Guard, Verdict};

use crate::{ACTIVE_ENV, EXIT_BLOCKED, Exit, Request, shell_argv};

fn relay(guard: &Guard, mut from: impl Read, mut to: impl Write, blocked: &AtomicBool, child: i32) -> io::Result<()> {
    let mut stream = guard.stream(Hold::Line, false).keep_width();
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::with_capacity(buf.len());
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        out.clear();
        let verdict = stream.push(&buf[..n], &mut out);
        to.write_all(&out)?;
        to.flush()?;
        if verdict == Verdict::Blocked {
            blocked.store(true, Ordering::SeqCst);
            // SAFETY: signalling our own child process.
            unsafe { libc::kill(child, libc::SIGKILL) };
            return Ok(());
        }
    }
    out.clear();
    if stream.flush(&mut out) == Verdict::Blocked {
        blocked.store(true, Ordering::SeqCst);
        return Ok(());
    }
    to.write_all(&out)?;
    to.flush()
}

pub fn run(guard: &Guard, shell: &Path, request: &Request) -> io::Result<Exit> {
    let argv = shell_argv(shell, request, false);
    let mut child = {
        use std::os::unix::process::CommandExt;
        Command::new(shell)
            .arg0(&argv[0])
            .args(&argv[1..])
            .env(ACTIVE_ENV, "1")
            .env("SHELL", shell)
            .stdin(Stdio::inherit())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?
    };
    let pid = child.id() as i32;
    let blocked = Arc::new(AtomicBool::new(false));
    let (out, err) = (child.stdout.take().expect("piped"), child.stderr.take().expect("piped"));
    let (g2, b2) = (guard.clone(), blocked.clone());
    let errs = std::thread::spawn(move || relay(&g2, err, io::stderr(), &b2, pid));
    let result = relay(guard, out, io::stdout(), &blocked, pid);
    let _ = errs.join();
    let status = child.wait()?;
    if blocked.load(Ordering::SeqCst) {
        eprintln!("\nleakguard: command stopped: its output holds a secret (see the audit log)");
        return Ok(Exit::Code(EXIT_BLOCKED));
    }
    if let Err(e) = result
        && e.kind() != io::ErrorKind::BrokenPipe
    {
        return Err(e);
    }
    Ok(match (status.code(), status.signal()) {
        (Some(c), _) => Exit::Code(c),
        (None, Some(s)) => Exit::Signal(s),
        _ => Exit::Code(1),
    })
}
