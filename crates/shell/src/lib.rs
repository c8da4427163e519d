//! `leakguard shell`: the SSH channel.
//!
//! Used as sshd's `ForceCommand` (users keep their real login shells), as a
//! login shell, or as the shell of Jupyter terminals. It chooses a mode from
//! `SSH_ORIGINAL_COMMAND` (or `-c CMD`) and whether standard input is a
//! terminal:
//!
//! * **PTY mode** (interactive, or `ssh -t host cmd`): the real shell runs on
//!   a pseudo-terminal; everything it prints goes through the engine's
//!   streaming redactor with same-width masks, so full-screen layouts do not
//!   shift. Typed and pasted input is scanned too.
//! * **Pipe mode** (`ssh host cmd`): standard output and standard error are
//!   redacted separately, masks keep the byte length.
//! * **File transfer** (`internal-sftp`, scp, rsync, git): passed through
//!   unchanged; the `file_transfer` setting allows, denies or audits it.
//! * **Nested** (a shell started inside a protected session): the real shell
//!   runs directly, so output is not filtered twice.
//!
//! The real shell comes from the user's passwd entry, never from `$SHELL`
//! (sshd sets `SHELL` to the wrapper when it is the login shell).

mod pipe;
mod pty;
mod signals;
mod terminal;

use std::ffi::CStr;
use std::path::{Path, PathBuf};

use leakguard_policy::Guard;
use leakguard_policy::audit::EventKind;
use leakguard_policy::settings::TransferPolicy;

/// Set in the environment of shells running under a proxy.
pub const ACTIVE_ENV: &str = "LEAKGUARD_ACTIVE";
/// Exit status when a session or command was ended because it would have
/// shown a secret in block mode.
pub const EXIT_BLOCKED: i32 = 112;
/// Exit status when a file transfer is denied by policy.
pub const EXIT_DENIED: i32 = 113;

/// How the session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    /// The shell was killed by this signal; the caller re-raises it so sshd
    /// reports the same `exit-signal`.
    Signal(i32),
}

/// What was asked of the wrapper.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// The command to run (`SSH_ORIGINAL_COMMAND`, or `-c CMD`).
    pub command: Option<String>,
    /// Invoked as a login shell (argv0 starting with `-`).
    pub login: bool,
}

/// The mode chosen for a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    Nested,
    Transfer { argv: Vec<String> },
    Pty,
    Pipe,
}

const SFTP_SERVERS: &[&str] = &[
    "/usr/lib/openssh/sftp-server",
    "/usr/libexec/openssh/sftp-server",
    "/usr/libexec/sftp-server",
    "/usr/lib/ssh/sftp-server",
];

/// The sftp server binary sshd's `internal-sftp` stands for.
fn sftp_server() -> Option<&'static str> {
    SFTP_SERVERS.iter().copied().find(|p| Path::new(p).exists())
}

/// Commands that move files and must never be altered.
fn transfer_argv(command: &str) -> Option<Vec<String>> {
    let words: Vec<&str> = command.split_whitespace().collect();
    let first = *words.first()?;
    let base = first.rsplit('/').next().unwrap_or(first);
    if base == "internal-sftp" {
        let mut argv = vec![sftp_server().unwrap_or(SFTP_SERVERS[0]).to_string()];
        argv.extend(words[1..].iter().map(|w| w.to_string()));
        return Some(argv);
    }
    let transfer = base == "sftp-server"
        || (base == "scp" && words.iter().any(|w| w.starts_with("-t") || w.starts_with("-f")))
        || (base == "rsync" && words.contains(&"--server"))
        || matches!(base, "git-upload-pack" | "git-receive-pack" | "git-upload-archive");
    transfer.then(|| vec![command.to_string()])
}

/// Chooses the mode.
pub fn plan(request: &Request, nested: bool, stdin_is_tty: bool) -> Plan {
    if nested {
        return Plan::Nested;
    }
    if let Some(argv) = request.command.as_deref().and_then(transfer_argv) {
        return Plan::Transfer { argv };
    }
    if stdin_is_tty { Plan::Pty } else { Plan::Pipe }
}

/// The user's real shell: the passwd entry's, unless that is leakguard
/// itself (used as the login shell) or unusable; then bash or sh.
pub fn real_shell() -> PathBuf {
    // SAFETY: getpwuid returns a pointer to static storage (or null); we copy
    // the string out before any other call that could overwrite it.
    let from_passwd = unsafe {
        let pw = libc::getpwuid(libc::getuid());
        (!pw.is_null() && !(*pw).pw_shell.is_null())
            .then(|| CStr::from_ptr((*pw).pw_shell).to_string_lossy().into_owned())
    };
    let me = std::env::current_exe().ok().and_then(|p| p.canonicalize().ok());
    let usable = |s: &str| {
        let p = Path::new(s);
        !s.is_empty()
            && !s.ends_with("nologin")
            && !s.ends_with("/false")
            && p.exists()
            && p.canonicalize().ok() != me
            && !s.ends_with("leakguard")
    };
    from_passwd
        .filter(|s| usable(s))
        .or_else(|| ["/bin/bash", "/bin/sh"].iter().find(|s| Path::new(s).exists()).map(|s| s.to_string()))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/bin/sh"))
}

/// Runs the session to its end.
pub fn run(guard: &Guard, request: &Request) -> std::io::Result<Exit> {
    let nested = std::env::var_os(ACTIVE_ENV).is_some();
    let stdin_tty = terminal::is_tty(0);
    let shell = real_shell();
    match plan(request, nested, stdin_tty) {
        Plan::Nested => exec_shell(&shell, request),
        Plan::Transfer { argv } => transfer(guard, &shell, argv),
        Plan::Pty => {
            record_session(guard, EventKind::SessionStart, "pty");
            let exit = pty::run(guard, &shell, request);
            record_session(guard, EventKind::SessionEnd, "pty");
            exit
        }
        Plan::Pipe => {
            record_session(guard, EventKind::SessionStart, "pipe");
            let exit = pipe::run(guard, &shell, request);
            record_session(guard, EventKind::SessionEnd, "pipe");
            exit
        }
    }
}

/// Ends this process the way the session ended: with the shell's exit
/// status, or killed by the same signal, so sshd reports the same
/// `exit-status` or `exit-signal` as without the proxy.
pub fn exit_like(exit: Exit) -> ! {
    match exit {
        Exit::Code(code) => std::process::exit(code),
        Exit::Signal(sig) => {
            signals::reset(sig);
            // SAFETY: raising a signal on ourselves; its action is the default.
            unsafe { libc::raise(sig) };
            // Signals whose default is to be ignored (SIGWINCH) land here.
            std::process::exit(128 + sig)
        }
    }
}

/// An id for the session in audit events: unique per host and process.
pub fn session_id() -> String {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format!("{:x}-{}", since_epoch.as_micros(), std::process::id())
}

fn record_session(guard: &Guard, kind: EventKind, mode: &str) {
    guard.record(kind, |e| e.action = Some(mode.to_string()));
}

/// argv of the real shell for a request.
pub(crate) fn shell_argv(shell: &Path, request: &Request, login: bool) -> Vec<String> {
    let name = shell.file_name().map_or("sh".into(), |n| n.to_string_lossy().into_owned());
    match &request.command {
        Some(cmd) => vec![name, "-c".into(), cmd.clone()],
        None if login || request.login => vec![format!("-{name}")],
        None => vec![name],
    }
}

fn exec_shell(shell: &Path, request: &Request) -> std::io::Result<Exit> {
    use std::os::unix::process::CommandExt;
    let argv = shell_argv(shell, request, false);
    let err = std::process::Command::new(shell).arg0(&argv[0]).args(&argv[1..]).exec();
    Err(err)
}

fn transfer(guard: &Guard, shell: &Path, argv: Vec<String>) -> std::io::Result<Exit> {
    use std::os::unix::process::CommandExt;
    let policy = guard.snapshot().settings.file_transfer.value;
    let what = argv.join(" ");
    let program = what.split_whitespace().next().unwrap_or("").rsplit('/').next().unwrap_or("").to_string();
    if policy != TransferPolicy::Allow {
        guard.record(EventKind::FileTransfer, |e| {
            e.action = Some(policy.as_str().to_string());
            e.reason = Some(program.clone());
        });
    }
    if policy == TransferPolicy::Deny {
        eprintln!("leakguard: file transfers are not allowed on this host");
        return Ok(Exit::Code(EXIT_DENIED));
    }
    let err = if argv.len() == 1 && argv[0].contains(' ') {
        std::process::Command::new(shell).arg("-c").arg(&argv[0]).exec()
    } else {
        std::process::Command::new(&argv[0]).args(&argv[1..]).exec()
    };
    Err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(cmd: Option<&str>) -> Request {
        Request { command: cmd.map(String::from), login: false }
    }

    #[test]
    fn modes() {
        assert_eq!(plan(&req(None), false, true), Plan::Pty);
        assert_eq!(plan(&req(None), false, false), Plan::Pipe);
        assert_eq!(plan(&req(Some("cat .env")), false, false), Plan::Pipe);
        assert_eq!(plan(&req(Some("cat .env")), false, true), Plan::Pty);
        assert_eq!(plan(&req(Some("cat .env")), true, true), Plan::Nested);
        assert!(matches!(plan(&req(Some("internal-sftp")), false, false), Plan::Transfer { .. }));
        assert!(matches!(plan(&req(Some("scp -t /tmp/x")), false, false), Plan::Transfer { .. }));
        assert!(matches!(
            plan(&req(Some("rsync --server -vlogDtpre.iLsfxC . /tmp")), false, false),
            Plan::Transfer { .. }
        ));
        assert!(matches!(plan(&req(Some("git-upload-pack 'repo.git'")), false, false), Plan::Transfer { .. }));
        assert_eq!(plan(&req(Some("scp-wrapper --help")), false, false), Plan::Pipe);
        assert_eq!(plan(&req(Some("rsync --version")), false, false), Plan::Pipe);
    }

    #[test]
    fn internal_sftp_maps_to_the_server() {
        let argv = transfer_argv("internal-sftp -l INFO").unwrap();
        assert!(argv[0].ends_with("sftp-server"));
        assert_eq!(&argv[1..], ["-l", "INFO"]);
    }

    #[test]
    fn argv_shapes() {
        let sh = Path::new("/bin/bash");
        assert_eq!(shell_argv(sh, &req(None), true), ["-bash"]);
        assert_eq!(shell_argv(sh, &req(Some("ls")), true), ["bash", "-c", "ls"]);
    }

    #[test]
    fn never_the_wrapper_itself() {
        let s = real_shell();
        assert!(s.exists());
        assert!(!s.to_string_lossy().ends_with("leakguard"));
    }
}
