//! `leakguard kernel-proxy`: Jupyter enforcement that user code cannot
//! switch off.
//!
//! # Brief overview
//!
//! A kernelspec's `argv` starts this proxy instead of the kernel:
//!
//! ```text
//! leakguard kernel-proxy --connection-file {connection_file} -- \
//!     /usr/bin/python3 -m ipykernel_launcher -f {inner_connection_file}
//! ```
//!
//! The proxy binds the ports of the connection file the client wrote,
//! writes an inner connection file (fresh loopback ports, the same key,
//! transport and signature scheme) beside it, and starts the real kernel
//! on it. Between the two it relays:
//!
//! * shell, control and stdin: ROUTER (clients) <-> DEALER (kernel); the
//!   shell and stdin DEALERs share one identity, since the kernel sends
//!   `input_request` to the identity a shell request came from;
//! * iopub: XPUB (clients) <-> XSUB (kernel), subscriptions forwarded, so
//!   ipykernel 7's `iopub_welcome` works as without the proxy;
//! * heartbeat: ROUTER <-> DEALER through `zmq_proxy`, untouched.
//!
//! Every message from the kernel has its HMAC checked, is walked with the
//! policy guard ([`filter`]), and is signed again only if something changed;
//! an unchanged message passes byte for byte. A message that fails its
//! signature or cannot be parsed is dropped and recorded
//! (`message_rejected`): nothing the kernel's user code forges with the
//! session key gets past the proxy unchecked. Requests from clients pass
//! as they are, except cells refused by `SCAN_INPUT` in block mode.
//!
//! The kernel runs in a process group of its own, dies with the proxy
//! (`PR_SET_PDEATHSIG`, and ipykernel's parent poller through
//! `JPY_PARENT_PID`), gets the SIGINT the client sends the proxy, and its
//! own standard output and error are masked on the way to the server log.
//! The proxy exits with the kernel's status when the kernel ends.
//!
//! # Why libzmq (the `zmq` crate), built from source
//!
//! The relay needs XPUB/XSUB with libzmq's subscription semantics, ROUTER
//! identities exactly as pyzmq sees them, `zmq_proxy` for heartbeats, and
//! high-water marks and linger that never drop what the kernel sent; it is
//! the same library ipykernel and jupyter_client run on. The pure-Rust
//! `zeromq` crate gained XPUB/XSUB only in 0.7, needs a tokio runtime and has
//! far less use against pyzmq peers. The `zmq` crate builds libzmq 4.3 from
//! its vendored source with the C++ compiler (no system library at run time,
//! so the `leakguard` binary stays self-contained) rather than linking
//! Debian's `libzmq3-dev`; that build has no CurveZMQ, which the proxy
//! refuses anyway (a connection file with Curve keys is a clear error).

pub mod connection;
pub mod filter;
pub mod kernel;
pub mod relay;
pub mod wire;

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use leakguard_policy::Guard;
use leakguard_policy::audit::EventKind;

use crate::connection::{Connection, ConnectionError};
pub use crate::kernel::InterruptMode;
use crate::kernel::Kernel;
use crate::relay::{Relay, SocketError, Sockets};
use crate::wire::{Signer, WireError};

/// Stands for the inner connection file in the kernel's command.
pub const PLACEHOLDER: &str = "{inner_connection_file}";

/// How long a kernel has to exit on SIGTERM before it is killed.
const TERM_GRACE: Duration = Duration::from_secs(3);

pub struct Options {
    /// The connection file the client wrote (`{connection_file}`).
    pub connection_file: PathBuf,
    /// The real kernel's command, naming [`PLACEHOLDER`].
    pub argv: Vec<OsString>,
    pub interrupt_mode: InterruptMode,
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    #[error(transparent)]
    Socket(#[from] SocketError),
    #[error("the connection file's {0}")]
    Wire(#[from] WireError),
    #[error("the kernel command must name its connection file as {PLACEHOLDER} (the proxy writes that file); got: {0}")]
    NoPlaceholder(String),
    #[error("cannot start the kernel `{program}`: {source}")]
    Spawn { program: String, source: io::Error },
}

/// Removes the inner connection file however `run` ends.
struct Remove(PathBuf);

impl Drop for Remove {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs the proxy until the kernel ends; returns the exit code to end with.
pub fn run(opts: &Options, guard: &Guard) -> Result<i32, ProxyError> {
    // Before any thread starts, so that every thread inherits the mask.
    let signals = Signals::block();
    let outer = Connection::read(&opts.connection_file)?;
    let signer = Signer::new(&outer.signature_scheme, &outer.key)?;
    if !opts.argv.iter().any(|a| a.to_string_lossy().contains(PLACEHOLDER)) {
        let shown: Vec<String> = opts.argv.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        return Err(ProxyError::NoPlaceholder(shown.join(" ")));
    }
    if !signer.authenticates() {
        eprintln!("leakguard kernel-proxy: the connection file has no key: messages cannot be authenticated");
    }
    let inner = outer.inner()?;
    let inner_path = connection::inner_path(&opts.connection_file);
    inner.write(&inner_path)?;
    let _remove = Remove(inner_path.clone());
    let sockets = Sockets::open(&outer, &inner)?;
    let argv = substitute(&opts.argv, &inner_path);
    let program = argv[0].to_string_lossy().into_owned();
    let mut kernel =
        Kernel::spawn(&argv, guard).map_err(|source| ProxyError::Spawn { program: program.clone(), source })?;
    guard.record(EventKind::SessionStart, |e| e.reason = Some(format!("kernel proxy started {program}")));
    let shared = Arc::new(filter::Shared::new(guard.clone(), signer));
    let relay = Relay::start(sockets, shared, kernel.pid(), opts.interrupt_mode);
    let (code, why) = signals.wait(&mut kernel);
    // What the kernel left running in its group goes with it, as when a
    // client kills the group of a kernel it started itself.
    kernel::signal_group(kernel.pid(), libc::SIGKILL);
    // The relay passes on what the kernel sent last; a stuck close must not
    // keep a dead kernel's proxy alive.
    let watchdog_path = inner_path.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(5));
        let _ = std::fs::remove_file(watchdog_path);
        std::process::exit(code);
    });
    relay.stop();
    kernel.join_output(Duration::from_secs(1));
    guard.record(EventKind::SessionEnd, |e| e.reason = Some(why));
    Ok(code)
}

fn substitute(argv: &[OsString], inner: &Path) -> Vec<OsString> {
    let path = inner.to_string_lossy();
    argv.iter()
        .map(|a| match a.to_str() {
            Some(s) if s.contains(PLACEHOLDER) => OsString::from(s.replace(PLACEHOLDER, &path)),
            _ => a.clone(),
        })
        .collect()
}

/// The signals the main thread handles, blocked everywhere and taken with
/// `sigwait`: no handler runs on a relay thread.
struct Signals {
    set: libc::sigset_t,
}

const HANDLED: [libc::c_int; 6] =
    [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT, libc::SIGCHLD, libc::SIGUSR1];

impl Signals {
    fn block() -> Signals {
        // SAFETY: plain signal-set manipulation on a local set.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for s in HANDLED {
                libc::sigaddset(&mut set, s);
            }
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            Signals { set }
        }
    }

    fn next(&self, timeout: Option<Duration>) -> Option<libc::c_int> {
        // SAFETY: waiting on our own blocked set.
        unsafe {
            match timeout {
                None => {
                    let mut sig = 0;
                    (libc::sigwait(&self.set, &mut sig) == 0).then_some(sig)
                }
                Some(t) => {
                    let ts = libc::timespec { tv_sec: t.as_secs() as _, tv_nsec: t.subsec_nanos() as _ };
                    let s = libc::sigtimedwait(&self.set, std::ptr::null_mut(), &ts);
                    (s > 0).then_some(s)
                }
            }
        }
    }

    /// Waits until the kernel ends (or is ended); returns the exit code and why.
    fn wait(&self, kernel: &mut Kernel) -> (i32, String) {
        loop {
            match kernel.try_wait() {
                Ok(Some(status)) => return (kernel::exit_code(status), format!("the kernel exited ({status})")),
                Ok(None) => {}
                Err(e) => return (1, format!("the kernel cannot be waited for: {e}")),
            }
            // A bounded wait also catches a SIGCHLD that came before the mask.
            match self.next(Some(Duration::from_secs(1))) {
                Some(libc::SIGINT) => kernel::signal_group(kernel.pid(), libc::SIGINT),
                Some(s @ (libc::SIGTERM | libc::SIGHUP | libc::SIGQUIT | libc::SIGUSR1)) => {
                    let code = self.terminate(kernel);
                    let why = if s == libc::SIGUSR1 { "a relay failed" } else { "the proxy was asked to stop" };
                    return (if s == libc::SIGUSR1 { 1 } else { code }, format!("{why}; the kernel was stopped"));
                }
                _ => {}
            }
        }
    }

    /// SIGTERM to the kernel's group, SIGKILL if it is still there later.
    fn terminate(&self, kernel: &mut Kernel) -> i32 {
        kernel::signal_group(kernel.pid(), libc::SIGTERM);
        let deadline = std::time::Instant::now() + TERM_GRACE;
        loop {
            match kernel.try_wait() {
                Ok(Some(status)) => return kernel::exit_code(status),
                Ok(None) => {}
                Err(_) => return 1,
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            self.next(Some(left.min(Duration::from_millis(100))));
        }
        kernel::signal_group(kernel.pid(), libc::SIGKILL);
        loop {
            match kernel.try_wait() {
                Ok(Some(status)) => return kernel::exit_code(status),
                Ok(None) => {}
                Err(_) => return 1,
            }
            self.next(Some(Duration::from_millis(50)));
        }
    }
}
