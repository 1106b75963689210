//! The arbiter process: runs the [`herd_protocol::arbiter::Arbiter`] core over real processes.
//!
//! One loop sleeps in `epoll_wait` on the self-pipe, every worker's socket and the watched
//! listeners, with the core's `poll_timeout` as the timeout. Each wakeup turns what happened into
//! core inputs; after every input the core's actions are carried out in order (the drain rule),
//! and the frames each drain produced for a worker go out in one `write`.
//!
//! Contracts from the models (docs/model.md): listeners are watched edge-triggered with the
//! kernel's accept-queue length (`TCP_INFO`), and level-checked on `Watch` and `Poll`; a dead
//! worker's socket is read to the end before its exit is reported, so an answer it sent before
//! dying is never lost; signals reach the core only from the loop, never from a handler.

use crate::listen::Listener;
use crate::server::{App, Server};
use crate::sys::{Blocked, Clock, WakePipe};
use crate::worker::{self, WorkerSetup};
use herd_protocol::arbiter::{Action, Arbiter, ExitStatus, Input, KillSignal, WorkerId};
use herd_protocol::message::{Decoder, ListenerId, Message, WorkerMsg};
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType, socketpair};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};
use rustix::process::{PidfdFlags, pidfd_open, pidfd_send_signal};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

const WAKE: u64 = 0;
const LISTENER: u64 = 1 << 32;
const CHANNEL: u64 = 2 << 32;
/// Most bytes read from one worker per wakeup: a worker flooding its pipe cannot starve the loop.
const READ_BUDGET: usize = 64 * 1024;

/// One forked worker, as the runtime knows it.
struct Proc {
    pid: Pid,
    pidfd: OwnedFd,
    /// The arbiter's end of the worker's socket; `None` after end of file.
    chan: Option<UnixStream>,
    decoder: Decoder<WorkerMsg>,
    /// Frames waiting to be written (one write per drain).
    out: Vec<u8>,
}

struct Runner<'s, A: App> {
    core: Arbiter,
    clock: Clock,
    wake: WakePipe,
    epoll: Epoll,
    server: &'s Server,
    app: A,
    procs: BTreeMap<WorkerId, Proc>,
    by_pid: HashMap<Pid, WorkerId>,
    inputs: VecDeque<Input>,
    me: Pid,
}

pub(crate) fn run<A: App>(mut server: Server, app: A) -> Result<i32, crate::Error> {
    let io = |what| move |source| crate::Error::Io { what, source };
    let me = nix::unistd::getpid();
    let clock = Clock::new();
    crate::sys::install_arbiter_handlers().map_err(io("installing signal handlers"))?;
    let wake = WakePipe::install().map_err(io("creating the self-pipe"))?;
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(|e| io("epoll_create")(e.into()))?;
    epoll
        .add(wake.fd(), EpollEvent::new(EpollFlags::EPOLLIN, WAKE))
        .map_err(|e| io("watching the self-pipe")(e.into()))?;
    if let Some(p) = &server.pidfile {
        p.write(me.as_raw() as u32)?;
    }
    let core = Arbiter::new(server.config.clone(), clock.now())?;
    if let Some(f) = server.on_ready.take() {
        f(&server.listeners);
    }
    tracing::info!(pid = me.as_raw(), workers = server.config.workers, mode = ?server.config.accept_mode, "arbiter started");
    let mut r = Runner {
        core,
        clock,
        wake,
        epoll,
        server: &server,
        app,
        procs: BTreeMap::new(),
        by_pid: HashMap::new(),
        inputs: VecDeque::new(),
        me,
    };
    let code = r.main_loop();
    drop(r);
    if let Some(p) = &server.pidfile {
        p.remove(me.as_raw() as u32);
    }
    Ok(code)
}

impl<A: App> Runner<'_, A> {
    fn main_loop(&mut self) -> i32 {
        let mut events = vec![EpollEvent::empty(); 64];
        loop {
            if let Some(code) = self.drain() {
                return code;
            }
            let timeout = match self.core.poll_timeout() {
                None => EpollTimeout::NONE,
                Some(at) => EpollTimeout::try_from(self.clock.millis_until(at).min(60_000) as u16 as i32)
                    .unwrap_or(EpollTimeout::NONE),
            };
            let n = match self.epoll.wait(&mut events, timeout) {
                Ok(n) => n,
                Err(Errno::EINTR) => 0,
                Err(e) => {
                    tracing::error!(error = %e, "epoll_wait failed");
                    0
                }
            };
            for ev in &events[..n] {
                let token = ev.data();
                match token & !0xffff_ffff {
                    WAKE => {
                        let batch = self.wake.drain();
                        for sig in batch.iter() {
                            tracing::debug!(signal = %sig.name(), "signal");
                            self.inputs.push_back(Input::Signal(sig));
                        }
                    }
                    LISTENER => {
                        let i = (token & 0xffff) as u16;
                        let queued = self.server.listeners[usize::from(i)].queued();
                        self.inputs.push_back(Input::Ready { socket: ListenerId(i), queued });
                    }
                    _ => self.read_worker(WorkerId(token & 0xffff_ffff), false),
                }
            }
            let now = self.clock.now();
            self.core.handle_timeout(now);
        }
    }

    /// Feeds queued inputs and carries out every action, in order, until both are empty; then
    /// writes each worker's frames. Returns the exit code once the core says Exit.
    fn drain(&mut self) -> Option<i32> {
        loop {
            while let Some(action) = self.core.poll_action() {
                if let Some(code) = self.act(action) {
                    return Some(code);
                }
            }
            self.flush();
            let input = self.inputs.pop_front()?;
            let now = self.clock.now();
            self.core.handle(now, input);
        }
    }

    fn act(&mut self, action: Action) -> Option<i32> {
        match action {
            Action::Spawn { id, generation, max_requests } => self.spawn(id, generation, max_requests),
            Action::Send { to, msg } => {
                if let Some(p) = self.procs.get_mut(&to) {
                    tracing::debug!(worker = %to, %msg, "send");
                    p.out.extend_from_slice(msg.encode().as_bytes());
                }
            }
            Action::Kill { id, signal, reason } => {
                if let Some(p) = self.procs.get(&id) {
                    let sig = match signal {
                        KillSignal::Term => rustix::process::Signal::TERM,
                        KillSignal::Quit => rustix::process::Signal::QUIT,
                        KillSignal::Abrt => rustix::process::Signal::ABORT,
                        KillSignal::Kill => rustix::process::Signal::KILL,
                    };
                    tracing::debug!(worker = %id, pid = p.pid.as_raw(), ?signal, ?reason, "signal worker");
                    if matches!(reason, herd_protocol::arbiter::KillReason::Timeout) {
                        tracing::warn!(worker = %id, pid = p.pid.as_raw(), "worker timeout, killing");
                    }
                    if let Err(e) = pidfd_send_signal(&p.pidfd, sig) {
                        // ESRCH: it already exited; its exit is on the way.
                        tracing::debug!(worker = %id, error = %e, "pidfd_send_signal");
                    }
                }
            }
            Action::Watch(l) => {
                let listener = &self.server.listeners[usize::from(l.0)];
                let ev =
                    EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLET, LISTENER | u64::from(l.0));
                if let Err(e) = self.epoll.add(listener.as_fd(), ev) {
                    tracing::error!(listener = %l, error = %e, "cannot watch listener");
                }
                self.level_check(l);
            }
            Action::Unwatch(l) => {
                let _ = self.epoll.delete(self.server.listeners[usize::from(l.0)].as_fd());
            }
            Action::Poll(l) => self.level_check(l),
            Action::Reap => self.reap(),
            Action::Reexec => {
                tracing::warn!("USR2 re-exec is not supported by this build; ignored");
                self.inputs.push_back(Input::ReexecEnded);
            }
            Action::ReopenLogs => tracing::info!("USR1: logs go to stderr; nothing to reopen"),
            Action::Exit { code, unlink_sockets } => {
                if unlink_sockets {
                    self.server.listeners.iter().for_each(Listener::unlink);
                }
                tracing::info!(code, "arbiter exiting");
                return Some(code);
            }
        }
        None
    }

    fn level_check(&mut self, l: ListenerId) {
        let listener = &self.server.listeners[usize::from(l.0)];
        if listener.pending() {
            self.inputs.push_back(Input::Ready { socket: l, queued: listener.queued() });
        }
    }

    fn flush(&mut self) {
        for (id, p) in &mut self.procs {
            if p.out.is_empty() {
                continue;
            }
            let Some(chan) = &p.chan else {
                p.out.clear();
                continue;
            };
            match nix::sys::socket::send(
                chan.as_raw_fd(),
                &p.out,
                MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT,
            ) {
                Ok(n) => {
                    p.out.drain(..n);
                }
                // Full: a worker that does not read its socket; try again after the next drain.
                Err(Errno::EAGAIN) => {}
                // Gone: its exit will be reported.
                Err(e) => {
                    tracing::debug!(worker = %id, error = %e, "write to worker failed");
                    p.out.clear();
                }
            }
        }
    }

    fn spawn(&mut self, id: WorkerId, generation: u32, max_requests: u32) {
        if let Err(e) = self.fork_worker(id, generation, max_requests) {
            tracing::error!(worker = %id, error = %e, "cannot fork a worker");
            self.inputs.push_back(Input::SpawnFailed { id });
        }
    }

    fn fork_worker(&mut self, id: WorkerId, generation: u32, max_requests: u32) -> io::Result<()> {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        )?;
        use std::io::Write;
        let _ = io::stdout().flush();
        let _ = io::stderr().flush();
        let blocked = Blocked::all()?;
        // SAFETY: the arbiter is single-threaded (Server::run's contract), so the child may run
        // arbitrary code; it never returns into the arbiter's loop.
        match unsafe { fork() } {
            Err(e) => {
                blocked.restore()?;
                Err(e.into())
            }
            Ok(ForkResult::Child) => {
                drop(ours);
                let chan = UnixStream::from(theirs);
                let setup = WorkerSetup {
                    id,
                    generation,
                    max_requests,
                    arbiter: self.me,
                    chan,
                    blocked,
                    inherited: self.arbiter_fds(),
                };
                worker::run(setup, self.server, &mut self.app)
            }
            Ok(ForkResult::Parent { child }) => {
                drop(theirs);
                blocked.restore()?;
                let pidfd = pidfd_open(
                    rustix::process::Pid::from_raw(child.as_raw()).expect("fork returns a positive pid"),
                    PidfdFlags::empty(),
                )?;
                let chan = UnixStream::from(ours);
                self.epoll.add(chan.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, CHANNEL | id.0))?;
                tracing::info!(worker = %id, pid = child.as_raw(), generation, max_requests, "worker spawned");
                self.by_pid.insert(child, id);
                self.procs.insert(
                    id,
                    Proc { pid: child, pidfd, chan: Some(chan), decoder: Decoder::new(), out: Vec::new() },
                );
                Ok(())
            }
        }
    }

    /// The descriptors a forked worker must close: only the arbiter uses them.
    fn arbiter_fds(&self) -> Vec<i32> {
        let mut fds = vec![self.epoll.0.as_raw_fd(), self.wake.fd().as_raw_fd()];
        for p in self.procs.values() {
            fds.push(p.pidfd.as_raw_fd());
            if let Some(c) = &p.chan {
                fds.push(c.as_raw_fd());
            }
        }
        fds
    }

    /// Reads what a worker wrote, up to the budget (or, for a dead worker, to the end).
    fn read_worker(&mut self, id: WorkerId, to_end: bool) {
        let Some(p) = self.procs.get_mut(&id) else { return };
        let trusted = self.core.workers().get(&id).is_some_and(|w| w.trusted);
        let mut buf = [0u8; 4096];
        let mut total = 0;
        let mut decoded = Vec::new();
        while let Some(chan) = &mut p.chan {
            if !to_end && total >= READ_BUDGET {
                break;
            }
            match chan.read(&mut buf) {
                Ok(0) => {
                    let _ = self.epoll.delete(chan.as_fd());
                    p.chan = None;
                }
                Ok(n) => {
                    total += n;
                    // An untrusted worker's bytes are read (so it cannot block) but not believed.
                    if trusted {
                        p.decoder.decode_all(&buf[..n], &mut decoded);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // WouldBlock: all read for now (a dead worker's child may still hold the socket).
                Err(_) => break,
            }
        }
        for r in decoded {
            self.inputs.push_back(match r {
                Ok(msg) => {
                    tracing::debug!(worker = %id, %msg, "recv");
                    Input::Message { from: id, msg }
                }
                Err(error) => {
                    tracing::warn!(worker = %id, %error, "malformed frame from worker");
                    Input::Malformed { from: id, error }
                }
            });
        }
    }

    fn reap(&mut self) {
        loop {
            let (pid, status) = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, ExitStatus::Code(code)),
                Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, ExitStatus::Signaled(sig as i32)),
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
                Ok(_) => continue,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "waitpid failed");
                    return;
                }
            };
            let Some(id) = self.by_pid.remove(&pid) else {
                tracing::debug!(pid = pid.as_raw(), "reaped an unknown child");
                continue;
            };
            // Everything it wrote before dying is delivered before its death.
            self.read_worker(id, true);
            if let Some(p) = self.procs.remove(&id) {
                tracing::info!(worker = %id, pid = p.pid.as_raw(), ?status, "worker exited");
            }
            self.inputs.push_back(Input::Exited { id, status });
        }
    }
}
