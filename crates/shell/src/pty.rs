//! PTY mode: the real shell on a pseudo-terminal, its output redacted live.
//!
//! One `poll` loop over the outer terminal, the PTY master and a signal
//! pipe. Output goes through a token-holding stream redactor: bytes that
//! cannot be part of a secret go out at once; a partial token waits a few
//! milliseconds, longer when it starts like a key prefix (`sk-`, `AKIA`),
//! so a typed or pasted key does not leak through its echo.

use std::ffi::CString;
use std::io;
use std::os::fd::{IntoRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

use leakguard_engine::{Hold, Tail};
use leakguard_policy::{Guard, Verdict};
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};

use crate::signals::SignalPipe;
use crate::terminal::{self, RawMode};
use crate::{ACTIVE_ENV, EXIT_BLOCKED, Exit, Request, shell_argv};

/// Idle time before a held token goes out, by what it looks like. A plain
/// token waits just long enough for the rest of a bulk write split across
/// reads (the keystroke echo cost); an armed one waits for a typist.
fn idle_delay(tail: Tail) -> Option<Duration> {
    match tail {
        Tail::Empty => None,
        Tail::Plain => Some(Duration::from_micros(500)),
        Tail::Armed => Some(Duration::from_millis(1000)),
    }
}

const PASTE_START: &[u8] = b"\x1b[200~";
const PASTE_END: &[u8] = b"\x1b[201~";

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

/// Typed and pasted input, collected into lines and pastes to scan.
#[derive(Default)]
struct InputScan {
    line: Vec<u8>,
    paste: Option<Vec<u8>>,
}

impl InputScan {
    /// Feeds input; returns the completed texts (an entered line, a paste).
    fn feed(&mut self, mut data: &[u8]) -> Vec<Vec<u8>> {
        let mut done = Vec::new();
        while !data.is_empty() {
            if let Some(p) = self.paste.as_mut() {
                match find(data, PASTE_END) {
                    Some(i) => {
                        p.extend_from_slice(&data[..i]);
                        done.push(self.paste.take().unwrap_or_default());
                        data = &data[i + PASTE_END.len()..];
                    }
                    None => {
                        p.extend_from_slice(data);
                        return done;
                    }
                }
                continue;
            }
            if let Some(i) = find(data, PASTE_START) {
                self.typed(&data[..i], &mut done);
                self.paste = Some(Vec::new());
                data = &data[i + PASTE_START.len()..];
                continue;
            }
            self.typed(data, &mut done);
            break;
        }
        done
    }

    fn typed(&mut self, data: &[u8], done: &mut Vec<Vec<u8>>) {
        for &b in data {
            match b {
                b'\r' | b'\n' => done.push(std::mem::take(&mut self.line)),
                0x7f | 0x08 => {
                    self.line.pop();
                }
                0x15 | 0x03 => self.line.clear(),
                b if b >= 0x20 => self.line.push(b),
                _ => {}
            }
        }
        if self.line.len() > 64 * 1024 {
            self.line.clear();
        }
    }
}

struct Session<'a> {
    guard: &'a Guard,
    master: RawFd,
    child: Pid,
    /// Held for its `Drop`, which restores the outer terminal.
    _raw: Option<RawMode>,
}

impl Session<'_> {
    fn write_out(&self, bytes: &[u8]) {
        write_all(1, bytes);
    }

    /// Ends the session because a secret was about to be shown or sent.
    fn block(&self) -> Exit {
        self.write_out(b"\r\n\x1b[0m[leakguard] session ended: a secret was about to be shown (see the audit log)\r\n");
        let pgrp = Pid::from_raw(-self.child.as_raw());
        let _ = nix::sys::signal::kill(pgrp, Signal::SIGHUP);
        let deadline = Instant::now() + Duration::from_secs(1);
        while Instant::now() < deadline {
            if !matches!(waitpid(self.child, Some(WaitPidFlag::WNOHANG)), Ok(WaitStatus::StillAlive)) {
                return Exit::Code(EXIT_BLOCKED);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = nix::sys::signal::kill(pgrp, Signal::SIGKILL);
        let _ = waitpid(self.child, None);
        Exit::Code(EXIT_BLOCKED)
    }
}

fn write_all(fd: RawFd, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: writing from a valid buffer to an open descriptor.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => {
                    let mut p = libc::pollfd { fd, events: libc::POLLOUT, revents: 0 };
                    // SAFETY: one valid pollfd.
                    unsafe { libc::poll(&mut p, 1, 100) };
                    continue;
                }
                _ => return,
            }
        }
        bytes = &bytes[n as usize..];
    }
}

fn read_some(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: reading into a valid buffer from an open descriptor.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) }
}

/// Reads what the PTY has, up to a full buffer: bulk output is redacted
/// in large pieces (a PTY read returns at most a few KiB), while a single
/// keystroke's echo still goes out alone.
fn read_batch(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = read_some(fd, buf)?;
    while n > 0 && n + 4096 <= buf.len() {
        match read_some(fd, &mut buf[n..]) {
            Ok(0) => break,
            Ok(m) => n += m,
            Err(_) => break,
        }
    }
    Ok(n)
}

fn exit_of(status: WaitStatus) -> Option<Exit> {
    match status {
        WaitStatus::Exited(_, c) => Some(Exit::Code(c)),
        WaitStatus::Signaled(_, s, _) => Some(Exit::Signal(s as i32)),
        _ => None,
    }
}

pub fn run(guard: &Guard, shell: &Path, request: &Request) -> io::Result<Exit> {
    let size = terminal::window_size(0);
    let pty = nix::pty::openpty(size.as_ref(), None).map_err(io::Error::from)?;
    // Everything the child needs is prepared before fork: after it, only
    // async-signal-safe calls.
    let argv: Vec<CString> = shell_argv(shell, request, true)
        .into_iter()
        .map(|a| CString::new(a).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in the command")))
        .collect::<io::Result<_>>()?;
    let path = CString::new(shell.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in the shell path"))?;
    let mut envp: Vec<CString> = std::env::vars_os()
        .filter(|(k, _)| k != ACTIVE_ENV && k != "SHELL")
        .filter_map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).ok()
        })
        .collect();
    envp.push(CString::new(format!("{ACTIVE_ENV}=1")).expect("no NUL"));
    envp.push(CString::new([b"SHELL=".as_slice(), shell.as_os_str().as_bytes()].concat()).expect("no NUL"));
    let master = pty.master.into_raw_fd();
    let slave = pty.slave.into_raw_fd();
    // SAFETY: the child only calls async-signal-safe functions before exec.
    let child = match unsafe { fork() }.map_err(io::Error::from)? {
        ForkResult::Child => unsafe {
            libc::close(master);
            libc::setsid();
            libc::ioctl(slave, libc::TIOCSCTTY, 0);
            libc::dup2(slave, 0);
            libc::dup2(slave, 1);
            libc::dup2(slave, 2);
            if slave > 2 {
                libc::close(slave);
            }
            let mut a: Vec<*const libc::c_char> = argv.iter().map(|c| c.as_ptr()).collect();
            a.push(std::ptr::null());
            let mut e: Vec<*const libc::c_char> = envp.iter().map(|c| c.as_ptr()).collect();
            e.push(std::ptr::null());
            libc::execve(path.as_ptr(), a.as_ptr(), e.as_ptr());
            libc::_exit(127);
        },
        ForkResult::Parent { child } => child,
    };
    // SAFETY: closing our copy of the slave; the child holds its own.
    unsafe { libc::close(slave) };
    // SAFETY: fcntl on our own descriptor.
    unsafe { libc::fcntl(master, libc::F_SETFL, libc::fcntl(master, libc::F_GETFL) | libc::O_NONBLOCK) };
    let signals = SignalPipe::install(&[
        Signal::SIGWINCH,
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGINT,
        Signal::SIGQUIT,
    ])
    .map_err(io::Error::from)?;
    let raw = if terminal::is_tty(0) { RawMode::enter(0).ok() } else { None };
    let session = Session { guard, master, child, _raw: raw };
    let exit = session.run_loop(&signals);
    // The outer terminal is restored when `session.raw` drops.
    drop(session);
    // SAFETY: closing our master descriptor.
    unsafe { libc::close(master) };
    exit
}

impl Session<'_> {
    fn run_loop(&self, signals: &SignalPipe) -> io::Result<Exit> {
        let mut output = self.guard.stream(Hold::Token, false).keep_width();
        let mut inputs = InputScan::default();
        let mut pending_in: Vec<u8> = Vec::new();
        let mut stdin_open = true;
        let mut master_open = true;
        let mut status: Option<Exit> = None;
        let mut drain_until: Option<Instant> = None;
        let mut idle_at: Option<Instant> = None;
        let mut buf = vec![0u8; 64 * 1024];
        let mut out = Vec::with_capacity(buf.len() + 256);
        loop {
            let now = Instant::now();
            if let Some(d) = drain_until
                && (now >= d || !master_open)
            {
                break;
            }
            let mut timeout = idle_at.map(|t| t.saturating_duration_since(now));
            if let Some(d) = drain_until {
                let left = d.saturating_duration_since(now);
                timeout = Some(timeout.map_or(left, |t| t.min(left)));
            }
            let mut fds = vec![libc::pollfd { fd: signals.fd(), events: libc::POLLIN, revents: 0 }];
            let master_ix = master_open.then(|| {
                let events = libc::POLLIN | if pending_in.is_empty() { 0 } else { libc::POLLOUT };
                fds.push(libc::pollfd { fd: self.master, events, revents: 0 });
                fds.len() - 1
            });
            let stdin_ix = (stdin_open && status.is_none() && drain_until.is_none()).then(|| {
                fds.push(libc::pollfd { fd: 0, events: libc::POLLIN, revents: 0 });
                fds.len() - 1
            });
            // ppoll: the plain-token timer is below poll's millisecond resolution.
            let ts = timeout.map(|t| libc::timespec { tv_sec: t.as_secs() as _, tv_nsec: t.subsec_nanos() as _ });
            let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
            // SAFETY: fds is a valid array of pollfd for its length; ts_ptr is null or points to ts.
            let n = unsafe { libc::ppoll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ts_ptr, std::ptr::null()) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            // Signals.
            if fds[0].revents & libc::POLLIN != 0 {
                for sig in signals.drain() {
                    match sig {
                        libc::SIGWINCH => {
                            if let Some(ws) = terminal::window_size(0) {
                                terminal::set_window_size(self.master, &ws);
                            }
                        }
                        libc::SIGCHLD => {
                            if let Some(e) = waitpid(self.child, Some(WaitPidFlag::WNOHANG)).ok().and_then(exit_of) {
                                status = Some(e);
                                // Output still in the PTY goes out; input stops (a client
                                // that keeps typing must not keep the session alive).
                                drain_until = Some(Instant::now() + Duration::from_millis(50));
                            }
                        }
                        libc::SIGTERM | libc::SIGHUP | libc::SIGINT | libc::SIGQUIT => {
                            let _ = nix::sys::signal::kill(Pid::from_raw(-self.child.as_raw()), Signal::SIGHUP);
                            let _ = waitpid(self.child, None);
                            return Ok(Exit::Signal(sig));
                        }
                        _ => {}
                    }
                }
            }
            // Output of the shell.
            if let Some(i) = master_ix {
                let re = fds[i].revents;
                if re & libc::POLLIN != 0 {
                    match read_batch(self.master, &mut buf) {
                        Ok(0) => master_open = false,
                        Ok(n) => {
                            out.clear();
                            if output.push(&buf[..n], &mut out) == Verdict::Blocked {
                                return Ok(self.block());
                            }
                            self.write_out(&out);
                            idle_at = idle_delay(output.tail()).map(|d| Instant::now() + d);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => {}
                        // EIO: every slave descriptor is closed.
                        Err(_) => master_open = false,
                    }
                } else if re & (libc::POLLHUP | libc::POLLERR) != 0 {
                    master_open = false;
                }
                if master_open && re & libc::POLLOUT != 0 && !pending_in.is_empty() {
                    match nix_write(self.master, &pending_in) {
                        Ok(n) => drop(pending_in.drain(..n)),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(_) => pending_in.clear(),
                    }
                }
                if !master_open && drain_until.is_none() {
                    drain_until = Some(Instant::now());
                }
            }
            // Input of the user.
            if let Some(i) = stdin_ix
                && fds[i].revents & (libc::POLLIN | libc::POLLHUP) != 0
            {
                match read_some(0, &mut buf) {
                    Ok(0) => {
                        stdin_open = false;
                        // End of input: the terminal's end-of-file character.
                        pending_in.push(0x04);
                    }
                    Ok(n) => {
                        let data = buf[..n].to_vec();
                        let mut forward = true;
                        if self.guard.snapshot().settings.scan_input.value {
                            for text in inputs.feed(&data) {
                                if output.check_input(&text) == Verdict::Blocked {
                                    forward = false;
                                }
                            }
                        }
                        if forward {
                            pending_in.extend_from_slice(&data);
                        } else {
                            // Drop the input and clear what was typed of the line.
                            pending_in.push(0x15);
                            self.write_out(b"\r\n[leakguard] input dropped: it holds a secret\r\n");
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted || e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => stdin_open = false,
                }
            }
            // The idle timer: release what is held.
            if idle_at.is_some_and(|t| Instant::now() >= t) {
                out.clear();
                if output.flush_idle(&mut out) == Verdict::Blocked {
                    return Ok(self.block());
                }
                self.write_out(&out);
                idle_at = idle_delay(output.tail()).map(|d| Instant::now() + d);
            }
        }
        out.clear();
        if output.flush(&mut out) == Verdict::Blocked {
            return Ok(self.block());
        }
        self.write_out(&out);
        let status = match status {
            Some(s) => s,
            None => exit_of(waitpid(self.child, None).map_err(io::Error::from)?).unwrap_or(Exit::Code(1)),
        };
        Ok(status)
    }
}

fn nix_write(fd: RawFd, bytes: &[u8]) -> io::Result<usize> {
    // SAFETY: writing from a valid buffer to an open descriptor.
    let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
    if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_lines_and_pastes() {
        let mut s = InputScan::default();
        assert!(s.feed(b"echo sk-").is_empty());
        assert_eq!(s.feed(b"abc\x7fd\r"), vec![b"echo sk-abd".to_vec()]);
        let got = s.feed(b"x\x1b[200~pasted key\nline2\x1b[201~y\r");
        assert_eq!(got, vec![b"pasted key\nline2".to_vec(), b"xy".to_vec()]);
        assert!(s.feed(b"\x1b[200~partial").is_empty());
        assert_eq!(s.feed(b" rest\x1b[201~"), vec![b"partial rest".to_vec()]);
    }

    #[test]
    fn timers() {
        assert_eq!(idle_delay(Tail::Empty), None);
        assert!(idle_delay(Tail::Plain).unwrap() < Duration::from_millis(1), "keystroke echo stays under 1 ms");
        assert!(idle_delay(Tail::Plain).unwrap() < idle_delay(Tail::Armed).unwrap());
    }
}
