//! The sockets and the threads that move messages between them.
//!
//! One thread per channel, each polling only its own two or three sockets:
//! a long scan of a huge output on iopub never delays a reply on control
//! (interrupts, shutdown), and each poll is short (a poll over all ten
//! sockets from one thread cost more CPU than relaying the message).
//! Heartbeats are relayed by libzmq's own `zmq_proxy`, without looking at
//! them, so a hung kernel still looks hung.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use zmq::{Context, Socket, SocketType};

use crate::connection::{Channel, Connection};
use crate::filter::{Iopub, Shared};
use crate::kernel::{self, InterruptMode};
use crate::wire::Message;

/// Polls wake at least this often (ms) to see a stop request.
const TICK_MS: i64 = 100;
/// Messages taken from one socket before looking at the other.
const BATCH: usize = 64;
/// How long the outer sockets try to deliver the last messages on exit (ms).
const LINGER_MS: i32 = 1000;

/// Commands to the iopub thread from the others.
const PUBLISH: &[u8] = b"publish";
const FLUSH: &[u8] = b"flush";
const CMD_ENDPOINT: &str = "inproc://leakguard-iopub-commands";

/// A socket that could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot {what} the {channel} socket at {endpoint}: {source}")]
pub struct SocketError {
    what: &'static str,
    channel: &'static str,
    endpoint: String,
    source: zmq::Error,
}

/// The proxy's sockets, bound and connected, before the threads start.
pub struct Sockets {
    pub ctx: Context,
    outer: Vec<(Channel, Socket)>,
    inner: Vec<(Channel, Socket)>,
    commands: Socket,
    interrupter: Socket,
}

fn setup(
    ctx: &Context,
    kind: SocketType,
    ch: Channel,
    endpoint: &str,
    what: &'static str,
    opts: impl FnOnce(&Socket) -> zmq::Result<()>,
) -> Result<Socket, SocketError> {
    let err = |what, source| SocketError { what, channel: ch.name(), endpoint: endpoint.to_string(), source };
    let s = ctx.socket(kind).map_err(|e| err("create", e))?;
    opts(&s).map_err(|e| err("configure", e))?;
    match what {
        "bind" => s.bind(endpoint),
        _ => s.connect(endpoint),
    }
    .map_err(|e| err(what, e))?;
    Ok(s)
}

impl Sockets {
    /// Binds the client's ports and connects to the kernel's (which it
    /// binds later: ZeroMQ connects when it is up).
    pub fn open(outer: &Connection, inner: &Connection) -> Result<Sockets, SocketError> {
        let ctx = Context::new();
        // Shell and stdin share one routing identity: the kernel addresses
        // input_request to the identity a shell request came from.
        let identity = format!("leakguard-proxy-{}", std::process::id()).into_bytes();
        let mut outs = Vec::new();
        let mut ins = Vec::new();
        for ch in Channel::ALL {
            let (outer_kind, inner_kind) = match ch {
                Channel::Iopub => (SocketType::XPUB, SocketType::XSUB),
                _ => (SocketType::ROUTER, SocketType::DEALER),
            };
            let o = setup(&ctx, outer_kind, ch, &outer.endpoint(ch), "bind", |s| {
                s.set_ipv6(outer.ipv6())?;
                // The proxy never drops messages itself; the kernel's own
                // limits stay where they were.
                s.set_sndhwm(0)?;
                s.set_rcvhwm(0)?;
                s.set_linger(if ch == Channel::Hb { 0 } else { LINGER_MS })
            })?;
            let i = setup(&ctx, inner_kind, ch, &inner.endpoint(ch), "connect", |s| {
                if matches!(ch, Channel::Shell | Channel::Stdin) {
                    s.set_identity(&identity)?;
                }
                s.set_sndhwm(0)?;
                s.set_rcvhwm(0)?;
                s.set_linger(0)
            })?;
            outs.push((ch, o));
            ins.push((ch, i));
        }
        let commands = setup(&ctx, SocketType::PULL, Channel::Iopub, CMD_ENDPOINT, "bind", |s| s.set_rcvhwm(0))?;
        let interrupter =
            setup(&ctx, SocketType::DEALER, Channel::Control, &inner.endpoint(Channel::Control), "connect", |s| {
                s.set_linger(0)
            })?;
        Ok(Sockets { ctx, outer: outs, inner: ins, commands, interrupter })
    }

    fn take(&mut self, ch: Channel) -> (Socket, Socket) {
        let pick = |v: &mut Vec<(Channel, Socket)>| {
            let i = v.iter().position(|(c, _)| *c == ch).expect("one socket per channel");
            v.remove(i).1
        };
        (pick(&mut self.outer), pick(&mut self.inner))
    }
}

/// The running relay threads.
pub struct Relay {
    ctx: Context,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// Runs `body` on a thread; a failure or panic tells the main thread (a
/// SIGUSR1 to the process), which stops the kernel and exits.
fn spawn(name: &str, body: impl FnOnce() -> zmq::Result<()> + Send + 'static) -> std::thread::JoinHandle<()> {
    let label = name.to_string();
    std::thread::Builder::new()
        .name(format!("lg-{name}"))
        .spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
            let failed = match r {
                Ok(Ok(())) | Ok(Err(zmq::Error::ETERM)) => false,
                Ok(Err(e)) => {
                    eprintln!("leakguard kernel-proxy: the {label} relay failed: {e}");
                    true
                }
                Err(_) => {
                    eprintln!("leakguard kernel-proxy: the {label} relay failed (internal error)");
                    true
                }
            };
            if failed {
                // SAFETY: signalling this process; the main thread waits for it.
                unsafe { libc::kill(libc::getpid(), libc::SIGUSR1) };
            }
        })
        .expect("a thread can be started")
}

impl Relay {
    pub fn start(mut sockets: Sockets, shared: Arc<Shared>, kernel_pid: libc::pid_t, mode: InterruptMode) -> Relay {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        let ctx = sockets.ctx.clone();
        for ch in [Channel::Shell, Channel::Control, Channel::Stdin] {
            let (outer, inner) = sockets.take(ch);
            let push = ctx.socket(SocketType::PUSH).and_then(|p| p.connect(CMD_ENDPOINT).map(|_| p));
            let (shared, stop) = (shared.clone(), stop.clone());
            threads.push(spawn(ch.name(), move || {
                let router = Router { ch, outer, inner, push: push?, shared };
                router.run(&stop)
            }));
        }
        let (hb_outer, hb_inner) = sockets.take(Channel::Hb);
        let (outer, inner) = sockets.take(Channel::Iopub);
        let (commands, interrupter) = (sockets.commands, sockets.interrupter);
        let (sh, st) = (shared.clone(), stop.clone());
        threads.push(spawn("iopub", move || {
            let io = IopubRelay {
                outer,
                inner,
                commands,
                filter: Iopub::new(sh.clone()),
                interrupt: Interrupt { mode, pid: kernel_pid, socket: interrupter, shared: sh },
            };
            io.run(&st)
        }));
        // Ends with ETERM when the context is destroyed.
        let hb = spawn("hb", move || zmq::proxy(&hb_outer, &hb_inner));
        Relay {
            ctx,
            stop,
            threads: {
                threads.push(hb);
                threads
            },
        }
    }

    /// Stops the threads after they passed on what the kernel sent last,
    /// then closes the sockets (delivering what is queued, within the linger).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let hb = self.threads.pop();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        let _ = self.ctx.destroy();
        if let Some(hb) = hb {
            let _ = hb.join();
        }
    }
}

/// Shell, control or stdin: ROUTER (clients) <-> DEALER (kernel).
struct Router {
    ch: Channel,
    outer: Socket,
    inner: Socket,
    push: Socket,
    shared: Arc<Shared>,
}

impl Router {
    fn run(self, stop: &AtomicBool) -> zmq::Result<()> {
        loop {
            let mut items = [self.outer.as_poll_item(zmq::POLLIN), self.inner.as_poll_item(zmq::POLLIN)];
            zmq::poll(&mut items, TICK_MS)?;
            let (from_client, from_kernel) = (items[0].is_readable(), items[1].is_readable());
            if from_client {
                for _ in 0..BATCH {
                    let Some(frames) = recv(&self.outer)? else { break };
                    self.client_message(frames)?;
                }
            }
            if from_kernel || stop.load(Ordering::SeqCst) {
                let all = stop.load(Ordering::SeqCst);
                for n in 0.. {
                    if !all && n == BATCH {
                        break;
                    }
                    let Some(frames) = recv(&self.inner)? else { break };
                    self.kernel_message(frames)?;
                }
                if all {
                    return Ok(());
                }
            }
        }
    }

    fn client_message(&self, frames: Vec<Vec<u8>>) -> zmq::Result<()> {
        if self.ch == Channel::Shell
            && let Some(refusal) = self.shared.request(&frames)
        {
            for m in refusal.iopub {
                let mut cmd = vec![PUBLISH.to_vec()];
                cmd.extend(m.into_frames());
                self.push.send_multipart(cmd, 0)?;
            }
            return self.outer.send_multipart(refusal.shell.into_frames(), 0);
        }
        self.inner.send_multipart(frames, 0)
    }

    fn kernel_message(&self, frames: Vec<Vec<u8>>) -> zmq::Result<()> {
        match self.shared.reply(frames) {
            Ok((m, h)) => {
                if h.msg_type == "input_request" {
                    // A prompt printed just before input() must show first.
                    if let Ok(Some(pid)) = m.parent_id() {
                        self.push.send_multipart([FLUSH.to_vec(), pid.into_bytes()], 0)?;
                    }
                }
                self.outer.send_multipart(m.into_frames(), 0)
            }
            Err(e) => {
                self.shared.reject(self.ch.name(), &e);
                Ok(())
            }
        }
    }
}

/// Takes one message if there is one.
fn recv(s: &Socket) -> zmq::Result<Option<Vec<Vec<u8>>>> {
    match s.recv_multipart(zmq::DONTWAIT) {
        Ok(f) => Ok(Some(f)),
        Err(zmq::Error::EAGAIN) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Stops a running request whose output was withheld.
struct Interrupt {
    mode: InterruptMode,
    pid: libc::pid_t,
    socket: Socket,
    shared: Arc<Shared>,
}

impl Interrupt {
    fn send(&self) -> zmq::Result<()> {
        match self.mode {
            InterruptMode::Signal => kernel::signal_group(self.pid, libc::SIGINT),
            InterruptMode::Message => {
                // Earlier interrupt_replies are of no interest.
                while recv(&self.socket)?.is_some() {}
                let parts =
                    [self.shared.ids.header("interrupt_request"), b"{}".to_vec(), b"{}".to_vec(), b"{}".to_vec()];
                let m = Message::build(Vec::new(), parts, Vec::new(), &self.shared.signer);
                self.socket.send_multipart(m.into_frames(), 0)?;
            }
        }
        Ok(())
    }
}

/// iopub: XSUB (kernel) -> XPUB (clients), subscriptions the other way.
struct IopubRelay {
    outer: Socket,
    inner: Socket,
    commands: Socket,
    filter: Iopub,
    interrupt: Interrupt,
}

impl IopubRelay {
    fn run(mut self, stop: &AtomicBool) -> zmq::Result<()> {
        let mut out: Vec<Message> = Vec::new();
        loop {
            let timeout = match self.filter.deadline() {
                Some(d) => (d.saturating_duration_since(Instant::now()).as_millis() as i64).clamp(0, TICK_MS),
                None => TICK_MS,
            };
            let mut items = [
                self.inner.as_poll_item(zmq::POLLIN),
                self.outer.as_poll_item(zmq::POLLIN),
                self.commands.as_poll_item(zmq::POLLIN),
            ];
            zmq::poll(&mut items, timeout)?;
            let ready = [items[0].is_readable(), items[1].is_readable(), items[2].is_readable()];
            let stopping = stop.load(Ordering::SeqCst);
            if ready[0] || stopping {
                for n in 0.. {
                    if !stopping && n == BATCH {
                        break;
                    }
                    let Some(frames) = recv(&self.inner)? else { break };
                    let fx = self.filter.message(frames, &mut out);
                    self.send(&mut out)?;
                    if fx.interrupt {
                        self.interrupt.send()?;
                    }
                }
            }
            if ready[1] {
                // Subscriptions from clients, on to the kernel's XPUB.
                while let Some(frames) = recv(&self.outer)? {
                    self.inner.send_multipart(frames, 0)?;
                }
            }
            if ready[2] {
                while let Some(frames) = recv(&self.commands)? {
                    self.command(frames, &mut out)?;
                }
            }
            if self.filter.deadline().is_some_and(|d| d <= Instant::now()) {
                let fx = self.filter.on_timer(Instant::now(), &mut out);
                self.send(&mut out)?;
                if fx.interrupt {
                    self.interrupt.send()?;
                }
            }
            if stopping {
                self.filter.flush_all(&mut out);
                return self.send(&mut out);
            }
        }
    }

    fn command(&mut self, mut frames: Vec<Vec<u8>>, out: &mut Vec<Message>) -> zmq::Result<()> {
        if frames.is_empty() {
            return Ok(());
        }
        let verb = frames.remove(0);
        let mut fx = crate::filter::Effects::default();
        if verb == PUBLISH {
            if let Ok(m) = Message::parse(frames) {
                self.filter.publish(m, out, &mut fx);
            }
        } else if verb == FLUSH
            && let Some(pid) = frames.first()
        {
            self.filter.flush_request(&String::from_utf8_lossy(pid), out, &mut fx);
        }
        self.send(out)?;
        if fx.interrupt {
            self.interrupt.send()?;
        }
        Ok(())
    }

    fn send(&self, out: &mut Vec<Message>) -> zmq::Result<()> {
        for m in out.drain(..) {
            self.outer.send_multipart(m.into_frames(), 0)?;
        }
        Ok(())
    }
}
