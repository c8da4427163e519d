//! The real kernel as a child process: started in a process group of its
//! own (so the proxy decides which signals reach it), killed with the proxy
//! whatever ends it, and with its own standard output and error passed
//! through the redactor on their way to the server's log.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;

use leakguard_engine::Hold;
use leakguard_policy::{Guard, Verdict};

/// How the kernel is interrupted (its kernelspec's `interrupt_mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InterruptMode {
    /// SIGINT to the kernel's process group, as the client would send it.
    #[default]
    Signal,
    /// An `interrupt_request` on the control channel.
    Message,
}

pub struct Kernel {
    child: Child,
    relays: Vec<JoinHandle<()>>,
}

impl Kernel {
    /// Starts `argv` with its output relayed through `guard`. The caller
    /// has blocked the signals it waits for; the child starts with none
    /// blocked and SIGPIPE at its default, like a kernel started directly.
    pub fn spawn(argv: &[OsString], guard: &Guard) -> io::Result<Kernel> {
        let (program, args) = argv.split_first().ok_or_else(|| io::Error::other("no kernel command"))?;
        let proxy = std::process::id() as libc::pid_t;
        let mut cmd = Command::new(program);
        cmd.args(args)
            // ipykernel exits when this process is gone (its parent poller).
            .env("JPY_PARENT_PID", proxy.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // A blocked SIGINT would never interrupt the kernel.
                let mut none: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut none);
                if libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut()) != 0 {
                    return Err(io::Error::last_os_error());
                }
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                if libc::setpgid(0, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
                // Killed with the proxy, even by SIGKILL.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                    return Err(io::Error::last_os_error());
                }
                if libc::getppid() != proxy {
                    libc::_exit(1); // the proxy died before the line above
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn()?;
        let mut relays = Vec::new();
        if let Some(out) = child.stdout.take() {
            relays.push(relay_output(guard.clone(), out, io::stdout()));
        }
        if let Some(err) = child.stderr.take() {
            relays.push(relay_output(guard.clone(), err, io::stderr()));
        }
        Ok(Kernel { child, relays })
    }

    pub fn pid(&self) -> libc::pid_t {
        self.child.id() as libc::pid_t
    }

    /// The exit status, if the kernel has exited.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.child.try_wait()
    }

    /// Waits for the output relays to see the end of the kernel's output
    /// (its children may hold the pipes: not for long).
    pub fn join_output(&mut self, within: std::time::Duration) {
        let deadline = std::time::Instant::now() + within;
        for r in self.relays.drain(..) {
            while !r.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            if r.is_finished() {
                let _ = r.join();
            }
        }
    }
}

/// Sends a signal to the kernel's process group (the kernel and what it
/// started), as Jupyter's clients signal kernels they start themselves.
/// Safe after the kernel was reaped: Linux never hands out a pid that is
/// still the id of a process group.
pub fn signal_group(pid: libc::pid_t, sig: libc::c_int) {
    // SAFETY: signalling a process group we created.
    unsafe { libc::killpg(pid, sig) };
}

/// The shell convention for a status: the code, or 128 + the signal.
pub fn exit_code(status: ExitStatus) -> i32 {
    status.code().or_else(|| status.signal().map(|s| 128 + s)).unwrap_or(1)
}

/// Copies the kernel's output to the proxy's, masked; withheld in block
/// mode (the kernel's iopub messages carry the same output, and there the
/// cell is interrupted). Keeps draining when the proxy's output is gone,
/// so the kernel never blocks on a full pipe.
fn relay_output(
    guard: Guard,
    mut from: impl Read + Send + 'static,
    mut to: impl Write + Send + 'static,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut stream = guard.stream(Hold::Line, false);
        let mut buf = vec![0u8; 64 * 1024];
        let mut out = Vec::with_capacity(buf.len());
        let mut writable = true;
        loop {
            out.clear();
            let (verdict, end) = match from.read(&mut buf) {
                Ok(0) => (stream.flush(&mut out), true),
                Ok(n) => (stream.push(&buf[..n], &mut out), false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => (stream.flush(&mut out), true),
            };
            if writable && verdict != Verdict::Blocked && !out.is_empty() {
                writable = to.write_all(&out).and_then(|_| to.flush()).is_ok();
            }
            if end {
                break;
            }
        }
    })
}
