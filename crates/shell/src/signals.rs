//! Signals as bytes on a pipe, so one `poll` loop sees them.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

use nix::fcntl::OFlag;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

static WRITE_END: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = WRITE_END.load(Ordering::Relaxed);
    if fd >= 0 {
        let b = sig as u8;
        // SAFETY: write(2) is async-signal-safe; the pipe is non-blocking so a
        // full pipe drops the byte instead of blocking the handler.
        unsafe { libc::write(fd, (&b as *const u8).cast(), 1) };
    }
}

/// The read end of the signal pipe.
pub struct SignalPipe {
    read: OwnedFd,
    _write: OwnedFd,
}

impl SignalPipe {
    pub fn install(signals: &[Signal]) -> nix::Result<SignalPipe> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)?;
        WRITE_END.store(write.as_raw_fd(), Ordering::Relaxed);
        let action = SigAction::new(SigHandler::Handler(on_signal), SaFlags::SA_RESTART, SigSet::empty());
        for &s in signals {
            // SAFETY: the handler only calls write(2) on a non-blocking pipe.
            unsafe { sigaction(s, &action)? };
        }
        Ok(SignalPipe { read, _write: write })
    }

    pub fn fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// Signals received since the last call.
    pub fn drain(&self) -> Vec<i32> {
        let mut buf = [0u8; 64];
        let mut out = Vec::new();
        loop {
            // SAFETY: reading into a local buffer from our own pipe.
            let n = unsafe { libc::read(self.fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return out;
            }
            out.extend(buf[..n as usize].iter().map(|&b| b as i32));
        }
    }
}

/// Back to the default action for a signal (before re-raising it on ourselves).
pub fn reset(sig: i32) {
    if let Ok(s) = Signal::try_from(sig) {
        // SAFETY: restoring the default disposition.
        let _ = unsafe { sigaction(s, &SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty())) };
    }
}
