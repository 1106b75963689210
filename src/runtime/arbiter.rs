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

use crate::control::{self, Reply, Request};
use crate::os::listen::{LISTEN_FDS, LISTEN_FDS_START, LISTEN_PID};
use crate::os::notify::Notifier;
use crate::os::ready::ReadySocket;
use crate::os::sys::{Blocked, Clock, WakePipe};
use crate::resources::{OnReady, Resources, UPGRADE_FROM_ENV};
use crate::runtime::kind::Booted;
use crate::runtime::kind::WorkerMain;
use crate::runtime::trace::Recorder;
use crate::runtime::worker::WorkerSetup;
use crate::store::{REGISTRY_FD_ENV, Store};
use herd_protocol::arbiter::{
    Accepting, Action, Arbiter, Command, ExitStatus, Input, Life, Phase, Role, WorkerId,
};
use herd_protocol::message::{Decoder, ListenerId, Message, WorkerMsg};
use herd_protocol::signals::Sig;
use herd_protocol::trace::{self, ArbiterEntry};
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType, socketpair};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};
use rustix::process::{PidfdFlags, pidfd_open, pidfd_send_signal};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ffi::{CString, OsString};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

const WAKE: u64 = 0;
const LISTENER: u64 = 1 << 32;
const CHANNEL: u64 = 2 << 32;
const CONTROL: u64 = 3 << 32;
const CONTROL_CONN: u64 = 4 << 32;
/// An exec worker's readiness socket (`--worker-ready notify`).
const READY: u64 = 5 << 32;
/// `--metrics-bind`: its listener, and its connections.
const METRICS: u64 = 6 << 32;
const METRICS_CONN: u64 = 7 << 32;
/// Events one wait can report: every worker's socket (HTTP and cron, retiring ones too), the
/// listeners, the self-pipe and the control connections.
const EVENTS: usize = 4 * herd_protocol::arbiter::MAX_WORKERS as usize + 64;
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
    /// Its scoreboard slot.
    slot: Option<usize>,
    /// Where the program says `READY=1` (`--worker-ready notify`), until it has.
    ready: Option<ReadySocket>,
    /// When a program that tells nothing has booted if still alive (`Booted::After`), until then.
    ready_at: Option<herd_protocol::time::Instant>,
    /// Why it is leaving, as first learned (its BYE, or why the arbiter signalled it), for the
    /// log line of its exit.
    leaving: Option<Leaving>,
}

/// Why a worker left, for the operator (docs/operations.md, "Logs").
#[derive(Clone, Copy, Debug)]
enum Leaving {
    Bye(herd_protocol::message::ByeReason),
    Killed(herd_protocol::arbiter::KillReason),
}

struct Runner<'s, A: WorkerMain> {
    core: Arbiter,
    clock: Clock,
    wake: WakePipe,
    epoll: Epoll,
    res: &'s mut Resources,
    app: A,
    procs: BTreeMap<WorkerId, Proc>,
    /// The workers whose frames are not all written yet: what `flush` visits (not every worker
    /// at every drain).
    unsent: Vec<WorkerId>,
    by_pid: HashMap<Pid, WorkerId>,
    inputs: VecDeque<Input>,
    me: Pid,
    /// Control requests answered once the inputs they caused are handled.
    replies: Vec<(u64, Request)>,
    notifier: Option<Notifier>,
    /// A reload is under way (for RELOADING/READY notifications).
    reloading: bool,
    stopping_notified: bool,
    /// The child arbiter started by an upgrade, while it runs.
    reexec: Option<Pid>,
    /// A wakeup's inputs are queued and a deadline of the core has come: call `handle_timeout`
    /// once they are all fed.
    timeout_due: bool,
    /// An upgrade was refused since the last replies (the parent arbiter still runs).
    /// Why the last upgrade asked for was refused, for the control reply.
    upgrade_refused: Option<String>,
    /// `--trace-events`: what is fed to the core and carried out.
    recorder: Recorder,
    /// Workers that died while accepting or serving (each may have taken a connection with it).
    in_flight_deaths: u64,
    /// Workers reaped, by why they left; signals received, by name (`herd ctl status`).
    exits: BTreeMap<String, u64>,
    signals: BTreeMap<String, u64>,
    /// How this process was started, to start its replacement the same way.
    exe: PathBuf,
    args: Vec<OsString>,
}

pub(crate) fn run<A: WorkerMain>(
    mut res: Resources,
    on_ready: Option<OnReady>,
    app: A,
) -> Result<i32, crate::Error> {
    let io = |what| move |source| crate::Error::Io { what, source };
    let me = nix::unistd::getpid();
    let clock = Clock::new();
    let _ = nix::sys::prctl::set_name(c"herd: arbiter");
    let exe = std::env::current_exe().map_err(io("finding this program for upgrades"))?;
    let args: Vec<OsString> = std::env::args_os().collect();
    crate::os::sys::install_arbiter_handlers().map_err(io("installing signal handlers"))?;
    let wake = WakePipe::install().map_err(io("creating the self-pipe"))?;
    // An arbiter started by an upgrade begins with every signal blocked (nothing sent to it
    // between fork and here is lost): its handlers are in place now.
    crate::os::sys::unblock_all().map_err(io("unblocking signals"))?;
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(|e| io("epoll_create")(e.into()))?;
    epoll
        .add(wake.fd(), EpollEvent::new(EpollFlags::EPOLLIN, WAKE))
        .map_err(|e| io("watching the self-pipe")(e.into()))?;
    if let Some(c) = &res.control {
        epoll
            .add(c.listener().as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, CONTROL))
            .map_err(|e| io("watching the control socket")(e.into()))?;
    }
    if let Some(m) = &res.metrics {
        epoll
            .add(m.listener().as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, METRICS))
            .map_err(|e| io("watching the metrics socket")(e.into()))?;
        if let Some(a) = m.local_addr() {
            tracing::info!("metrics on http://{a}/metrics");
        }
    }
    if let Some(p) = &res.pidfile {
        p.write(me.as_raw() as u32)?;
    }
    let notifier = Notifier::from_env().map_err(io("NOTIFY_SOCKET"))?;
    let at = clock.now();
    let core = Arbiter::new(res.config.clone(), at)?;
    let mut recorder =
        Recorder::create(res.trace_dir.as_deref(), &trace::arbiter_file(me.as_raw() as u32)).map_err(
            |source| crate::Error::Trace { path: res.trace_dir.clone().unwrap_or_default(), source },
        )?;
    recorder.record(&ArbiterEntry::New { config: res.config.clone(), at });
    if let Some(f) = on_ready {
        f(&res.listeners);
    }
    if let Some(n) = &notifier {
        n.ready();
    }
    let mode = res.config.accept_mode.name();
    match res.upgrade_from {
        Some(from) => {
            tracing::info!(pid = me.as_raw(), workers = res.config.workers, mode = %mode, upgraded_from = from, "arbiter started")
        }
        None => {
            tracing::info!(pid = me.as_raw(), workers = res.config.workers, mode = %mode, "arbiter started")
        }
    }
    let mut r = Runner {
        core,
        clock,
        wake,
        epoll,
        res: &mut res,
        app,
        procs: BTreeMap::new(),
        unsent: Vec::new(),
        by_pid: HashMap::new(),
        inputs: VecDeque::new(),
        me,
        replies: Vec::new(),
        notifier,
        reloading: false,
        stopping_notified: false,
        reexec: None,
        timeout_due: false,
        upgrade_refused: None,
        recorder,
        in_flight_deaths: 0,
        exits: BTreeMap::new(),
        signals: BTreeMap::new(),
        exe,
        args,
    };
    let code = r.main_loop();
    drop(r);
    if let Some(p) = &res.pidfile {
        p.remove(me.as_raw() as u32);
    }
    if let Some(c) = &res.control {
        c.unlink();
    }
    Ok(code)
}

impl<A: WorkerMain> Runner<'_, A> {
    fn main_loop(&mut self) -> i32 {
        // Room for every descriptor the loop watches, so that one wait reports everything ready
        // and the timeout pass never runs with a worker's frames still unread.
        let mut events = vec![EpollEvent::empty(); EVENTS];
        loop {
            if let Some(code) = self.drain() {
                return code;
            }
            let ready_at =
                self.announces().then(|| self.procs.values().filter_map(|p| p.ready_at).min()).flatten();
            let deadline = self.core.poll_timeout();
            let (now, wait) = self.clock.wait_for(deadline.into_iter().chain(ready_at).min(), Some(60_000));
            self.recorder.record(&ArbiterEntry::Wait { at: now, until: wait.map(|(_, until)| until) });
            self.recorder.flush();
            let timeout = match wait {
                None => EpollTimeout::NONE,
                Some((ms, _)) => EpollTimeout::try_from(ms as u16 as i32).unwrap_or(EpollTimeout::NONE),
            };
            let n = match self.epoll.wait(&mut events, timeout) {
                Ok(n) => n,
                // A signal, or a stop and continue (epoll_wait fails with EINTR after SIGCONT even
                // without a handler): wait again, with a zero timeout if a deadline passed, so
                // that what is ready is read before the timeout pass (B22).
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "epoll_wait failed");
                    0
                }
            };
            // Signals first: a TERM that came with workers' messages (a TERM to the whole
            // process group) stops the server before their BYEs could start replacements.
            events[..n].sort_by_key(|ev| ev.data() != WAKE);
            for ev in &events[..n] {
                let token = ev.data();
                match token & !0xffff_ffff {
                    WAKE => {
                        let batch = self.wake.drain();
                        for sig in batch.iter() {
                            // A terminal sends WINCH to its whole foreground group at every
                            // resize: honoured only without one (gunicorn: only daemonized).
                            if sig == Sig::Winch && crate::os::sys::has_terminal() {
                                tracing::info!(
                                    "SIGWINCH ignored: herd runs in a terminal, which sends it on every resize \
                                     (without a controlling terminal, e.g. under systemd, WINCH stops the workers)"
                                );
                                continue;
                            }
                            tracing::info!(signal = %sig.name(), "signal received");
                            *self.signals.entry(sig.name().to_owned()).or_default() += 1;
                            self.queue(Input::Signal(sig));
                        }
                    }
                    LISTENER => {
                        let i = (token & 0xffff) as u16;
                        let queued = self.res.listeners[usize::from(i)].queued();
                        self.queue(Input::Ready { socket: ListenerId(i), queued });
                    }
                    CONTROL => self.accept_control(),
                    CONTROL_CONN => self.read_control(token & 0xffff_ffff),
                    METRICS => self.accept_metrics(),
                    METRICS_CONN => self.scrape(token & 0xffff_ffff),
                    READY => self.read_ready(WorkerId(token & 0xffff_ffff)),
                    _ => self.read_worker(WorkerId(token & 0xffff_ffff), false),
                }
            }
            // The timeout pass comes after the inputs this wakeup read: a worker whose heartbeat
            // is already in hand is not late, however long the arbiter itself was stalled (B22).
            // Only a full event buffer can leave something unreported: then wait again first.
            // Without a deadline come, there is no pass to run (one with nothing due does
            // nothing, and costs a look at every worker); a deadline the inputs of this wakeup
            // set is met by the next wait, computed after them.
            self.ready_by_now();
            self.timeout_due = n < events.len() && deadline.is_some_and(|d| d <= self.clock.now());
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
            let Some(input) = self.inputs.pop_front() else {
                if std::mem::take(&mut self.timeout_due) {
                    self.tick();
                    continue;
                }
                break;
            };
            if matches!(input, Input::Signal(Sig::Hup) | Input::Control(Command::Reload)) {
                self.reloading = true;
                if let Some(n) = &self.notifier {
                    n.reloading();
                }
            }
            self.feed(input);
        }
        self.after_drain();
        None
    }

    /// Answers control requests and sends readiness notifications, now that every input is
    /// handled.
    fn after_drain(&mut self) {
        self.recorder.flush();
        let refused = std::mem::take(&mut self.upgrade_refused);
        for (key, req) in std::mem::take(&mut self.replies) {
            let reply = match req {
                Request::Status => Reply { ok: true, status: Some(self.status()), ..Reply::default() },
                Request::Command(Command::Incr(_) | Command::Decr(_)) => {
                    Reply { ok: true, target: Some(self.core.target()), ..Reply::default() }
                }
                Request::Command(Command::Upgrade) if refused.is_some() => Reply {
                    ok: false,
                    error: refused.clone().map(|why| format!("upgrade refused: {why}")),
                    ..Reply::default()
                },
                Request::Command(_) => Reply { ok: true, ..Reply::default() },
            };
            if let Some(c) = &mut self.res.control {
                c.reply(key, &reply);
            }
        }
        let generation = self.core.generation();
        if self.reloading
            && self.core.phase() == Phase::Running
            && self.core.workers().values().all(|w| w.generation == generation && w.booted)
        {
            self.reloading = false;
            if let Some(n) = &self.notifier {
                n.ready();
            }
        }
        if !self.stopping_notified && self.core.phase() != Phase::Running {
            self.stopping_notified = true;
            if let Some(n) = &self.notifier {
                n.stopping();
            }
        }
    }

    /// Hands one input to the core (recorded).
    fn feed(&mut self, input: Input) {
        let now = self.clock.now();
        self.recorder.record(&ArbiterEntry::Fed { at: now, input });
        let running = self.core.phase() == Phase::Running;
        self.core.handle(now, input);
        if running
            && self.core.phase() != Phase::Running
            && let Some(why) = halt_words(&self.core, input)
        {
            tracing::error!("halting: {why}");
        }
    }

    /// The timeout pass (recorded).
    fn tick(&mut self) {
        let now = self.clock.now();
        self.recorder.record(&ArbiterEntry::Timeout { at: now });
        self.core.handle_timeout(now);
    }

    /// Whether the arbiter this one replaced (by an upgrade) still runs: it is our parent until
    /// it exits.
    fn parent_arbiter_lives(&self) -> bool {
        self.res.upgrade_from.is_some_and(|p| nix::unistd::getppid().as_raw() == p)
    }

    /// Queues an input read from the world, to be fed in order by the next drain.
    fn queue(&mut self, input: Input) {
        self.recorder.record(&ArbiterEntry::Queued(input));
        self.inputs.push_back(input);
    }

    fn act(&mut self, action: Action) -> Option<i32> {
        self.recorder.record(&ArbiterEntry::Done(action));
        match action {
            Action::Spawn { id, role, generation, max_requests } => {
                self.spawn(id, role, generation, max_requests)
            }
            Action::Send { to, msg } => {
                if let Some(p) = self.procs.get_mut(&to) {
                    tracing::debug!(worker = %to, %msg, "send");
                    if p.out.is_empty() {
                        self.unsent.push(to);
                    }
                    p.out.extend_from_slice(msg.encode().as_bytes());
                }
            }
            Action::Kill { id, signal, reason } => {
                if let Some(p) = self.procs.get_mut(&id) {
                    p.leaving.get_or_insert(Leaving::Killed(reason));
                    let p = &*p;
                    let sig = rustix::process::Signal::from_named_raw(self.app.signal(signal) as i32)
                        .unwrap_or(rustix::process::Signal::KILL);
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
                let listener = &self.res.listeners[usize::from(l.0)];
                let ev =
                    EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLET, LISTENER | u64::from(l.0));
                if let Err(e) = self.epoll.add(listener.as_fd(), ev) {
                    tracing::error!(listener = %l, error = %e, "cannot watch listener");
                }
                self.level_check(l);
            }
            Action::Unwatch(l) => {
                let _ = self.epoll.delete(self.res.listeners[usize::from(l.0)].as_fd());
            }
            Action::Poll(l) => self.level_check(l),
            Action::Reap => self.reap(),
            Action::Reexec if self.parent_arbiter_lives() => {
                let parent = self.res.upgrade_from.unwrap_or_default();
                tracing::warn!(
                    parent,
                    "upgrade refused: the arbiter this one replaced (pid {parent}) still runs; stop it first \
                     (TERM) to finish the upgrade, or stop this one to back out"
                );
                self.upgrade_refused =
                    Some(format!("the arbiter this one replaced (pid {parent}) still runs; stop it first"));
                self.queue(Input::ReexecEnded);
            }
            // A new arbiter takes the listeners over from its environment: one built without
            // `from_env` would bind them again, or fail to.
            Action::Reexec if !self.res.from_env => {
                let why = "this server does not take its listeners over from the environment \
                           (ServerBuilder::from_env), so a new arbiter could not serve them";
                tracing::warn!("upgrade refused: {why}");
                self.upgrade_refused = Some(why.to_owned());
                self.queue(Input::ReexecEnded);
            }
            Action::Reexec => match self.reexec() {
                Ok(pid) => {
                    tracing::info!(pid = pid.as_raw(), "upgrade: new arbiter started");
                    self.reexec = Some(pid);
                }
                Err(e) => {
                    tracing::error!(error = %e, "upgrade: cannot start a new arbiter");
                    if let Some(p) = &self.res.pidfile {
                        p.back_from_oldbin(self.me.as_raw() as u32);
                    }
                    self.queue(Input::ReexecEnded);
                }
            },
            Action::ReopenLogs => match crate::os::logfile::reopen() {
                Ok(false) => tracing::info!("USR1: logs go to stderr; nothing to reopen"),
                Ok(true) => {
                    tracing::info!("USR1: log files reopened");
                    // herd's own workers reopen theirs on USR1; a program herd did not link may
                    // take USR1 for anything (by default it dies of it): it keeps its stderr.
                    if self.app.command().is_none() {
                        for p in self.procs.values() {
                            let _ = pidfd_send_signal(&p.pidfd, rustix::process::Signal::USR1);
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "USR1: cannot reopen the log files; still writing to the old ones")
                }
            },
            Action::Exit { code, unlink_sockets } => {
                if unlink_sockets {
                    // Sockets passed on by an upgrade are this arbiter's once the one it replaced
                    // is gone; while it lives (a back-out), they are still its.
                    let took_over =
                        self.res.upgrade_from.is_none_or(|p| nix::unistd::getppid().as_raw() != p);
                    self.res.listeners.iter().for_each(|l| l.unlink(took_over));
                }
                tracing::info!(code, "arbiter exiting");
                return Some(code);
            }
        }
        None
    }

    fn level_check(&mut self, l: ListenerId) {
        let listener = &self.res.listeners[usize::from(l.0)];
        // One look at the accept queue: its length where the kernel tells it (TCP), else
        // whether anything waits.
        match listener.queued() {
            Some(0) => {}
            Some(n) => self.queue(Input::Ready { socket: l, queued: Some(n) }),
            None if listener.pending() => self.queue(Input::Ready { socket: l, queued: None }),
            None => {}
        }
    }

    fn flush(&mut self) {
        let mut unsent = std::mem::take(&mut self.unsent);
        unsent.retain(|id| {
            let Some(p) = self.procs.get_mut(id).filter(|p| !p.out.is_empty()) else { return false };
            let Some(chan) = &p.chan else {
                p.out.clear();
                return false;
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
            !p.out.is_empty()
        });
        self.unsent = unsent;
    }

    fn spawn(&mut self, id: WorkerId, role: Role, generation: u32, max_requests: u32) {
        if let Err(e) = self.fork_worker(id, role, generation, max_requests) {
            tracing::error!(worker = %id, error = %e, "cannot fork a worker");
            self.queue(Input::SpawnFailed { id });
        }
    }

    fn fork_worker(
        &mut self,
        id: WorkerId,
        role: Role,
        generation: u32,
        max_requests: u32,
    ) -> io::Result<()> {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        )?;
        use std::io::Write;
        let _ = io::stdout().flush();
        let _ = io::stderr().flush();
        let booted = if role == Role::Http { self.app.readiness() } else { Booted::FirstFrame };
        let ready =
            if booted == Booted::Notify { Some(ReadySocket::bind(self.me.as_raw(), id.0)?) } else { None };
        let slot = self.res.scoreboard.claim();
        self.recorder.flush();
        let blocked = Blocked::all()?;
        // SAFETY: the arbiter is single-threaded (Server::run's contract), so the child may run
        // arbitrary code; it never returns into the arbiter's loop.
        match unsafe { fork() } {
            Err(e) => {
                blocked.restore()?;
                if let Some(s) = slot {
                    self.res.scoreboard.release(s);
                }
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
                    slot,
                    inherited: self.arbiter_fds(),
                };
                match role {
                    Role::Http => self.app.worker_main(setup, self.res),
                    Role::Cron => self.app.cron_main(setup, self.res),
                }
            }
            Ok(ForkResult::Parent { child }) => {
                drop(theirs);
                blocked.restore()?;
                let chan = UnixStream::from(ours);
                let tracked = pidfd_open(
                    rustix::process::Pid::from_raw(child.as_raw()).expect("fork returns a positive pid"),
                    PidfdFlags::empty(),
                )
                .map_err(io::Error::from)
                .and_then(|pidfd| {
                    self.epoll.add(chan.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, CHANNEL | id.0))?;
                    if let Some(r) = &ready {
                        self.epoll.add(r.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, READY | id.0))?;
                    }
                    Ok(pidfd)
                });
                let pidfd = match tracked {
                    Ok(fd) => fd,
                    Err(e) => {
                        // Out of descriptors (or memory) after the fork: a worker the arbiter cannot
                        // track must not live. Not yet reaped, so its pid cannot have been reused.
                        let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                        if let Some(s) = slot {
                            self.res.scoreboard.release(s);
                        }
                        return Err(e);
                    }
                };
                let role = match role {
                    Role::Http => "http",
                    Role::Cron => "cron",
                };
                tracing::info!(worker = %id, pid = child.as_raw(), role = %role, generation, max_requests, "worker spawned");
                self.by_pid.insert(child, id);
                self.procs.insert(
                    id,
                    Proc {
                        pid: child,
                        pidfd,
                        chan: Some(chan),
                        decoder: Decoder::new(),
                        out: Vec::new(),
                        slot,
                        ready,
                        ready_at: match booted {
                            Booted::After(d) => Some(self.clock.now() + d),
                            _ => None,
                        },
                        leaving: None,
                    },
                );
                Ok(())
            }
        }
    }

    /// The descriptors a forked worker must close: only the arbiter uses them.
    fn arbiter_fds(&self) -> Vec<i32> {
        let mut fds = vec![self.epoll.0.as_raw_fd(), self.wake.fd().as_raw_fd()];
        if let Some(c) = &self.res.control {
            fds.extend(c.fds());
        }
        if let Some(m) = &self.res.metrics {
            fds.extend(m.fds());
        }
        if let Some(n) = &self.notifier {
            fds.push(n.fd());
        }
        fds.extend(self.recorder.fd());
        for p in self.procs.values() {
            fds.push(p.pidfd.as_raw_fd());
            if let Some(c) = &p.chan {
                fds.push(c.as_raw_fd());
            }
            fds.extend(p.ready.as_ref().map(|r| r.as_fd().as_raw_fd()));
        }
        fds
    }

    /// Whether this server's workers are announced by the arbiter after a while
    /// (`Booted::After`): only then is there a readiness deadline to look for, on every wakeup.
    fn announces(&self) -> bool {
        matches!(self.app.readiness(), Booted::After(_))
    }

    /// Announces the programs that tell nothing and have run long enough (`Booted::After`): as
    /// for `READY=1`, their first frame, which they never send themselves.
    fn ready_by_now(&mut self) {
        if !self.announces() {
            return;
        }
        let now = self.clock.now();
        let due: Vec<WorkerId> = self
            .procs
            .iter()
            .filter(|(_, p)| p.ready_at.is_some_and(|t| t <= now))
            .map(|(&id, _)| id)
            .collect();
        for id in due {
            let Some(p) = self.procs.get_mut(&id) else { continue };
            p.ready_at = None;
            // A pidfd is readable once its process has exited: then it never booted (its exit
            // is on the way, a boot failure).
            let mut fds = [nix::poll::PollFd::new(p.pidfd.as_fd(), nix::poll::PollFlags::POLLIN)];
            if nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO).is_ok_and(|n| n > 0) {
                continue;
            }
            tracing::debug!(worker = %id, msg = "running", "recv");
            self.queue(Input::Message { from: id, msg: WorkerMsg::Alive { timestamp: 0 } });
        }
    }

    /// Reads an exec worker's readiness socket: its `READY=1` counts as its first frame (it has
    /// booted), which it never sends itself.
    fn read_ready(&mut self, id: WorkerId) {
        let Some(p) = self.procs.get_mut(&id) else { return };
        let Some(r) = &p.ready else { return };
        if r.ready_from(p.pid.as_raw()) {
            let _ = self.epoll.delete(r.as_fd());
            p.ready = None;
            tracing::debug!(worker = %id, msg = "READY=1", "recv");
            tracing::info!(worker = %id, pid = p.pid.as_raw(), "worker ready (READY=1)");
            self.queue(Input::Message { from: id, msg: WorkerMsg::Alive { timestamp: 0 } });
        }
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
                    // A short read emptied the socket (a stream socket's read copies all it
                    // holds, up to the buffer): another would only fail with EAGAIN. The channel
                    // is level-triggered, so what arrives later wakes the loop again.
                    if n < buf.len() && !to_end {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // WouldBlock: all read for now (a dead worker's child may still hold the socket).
                Err(_) => break,
            }
        }
        for r in decoded {
            if let Ok(WorkerMsg::Bye { reason }) = r
                && let Some(p) = self.procs.get_mut(&id)
            {
                p.leaving.get_or_insert(Leaving::Bye(reason));
            }
            self.queue(match r {
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
            if self.reexec == Some(pid) {
                tracing::warn!(pid = pid.as_raw(), ?status, "upgrade: the new arbiter exited");
                self.reexec = None;
                if let Some(p) = &self.res.pidfile {
                    p.back_from_oldbin(self.me.as_raw() as u32);
                }
                self.queue(Input::ReexecEnded);
                continue;
            }
            let Some(id) = self.by_pid.remove(&pid) else {
                tracing::debug!(pid = pid.as_raw(), "reaped an unknown child");
                continue;
            };
            // Everything it wrote before dying is delivered before its death.
            self.read_worker(id, true);
            if let Some(p) = self.procs.remove(&id) {
                tracing::info!(worker = %id, pid = p.pid.as_raw(), "worker exited: {}", exit_words(p.leaving, status));
                *self.exits.entry(exit_reason(p.leaving, status).to_owned()).or_default() += 1;
                if let Some(s) = p.slot {
                    if self.res.scoreboard.busy(s) {
                        self.in_flight_deaths += 1;
                        tracing::info!(worker = %id, "the worker died with a request in flight");
                    }
                    self.res.scoreboard.release(s);
                }
            }
            self.queue(Input::Exited { id, status });
        }
    }
}

mod report;
mod upgrade;
use report::{exit_reason, exit_words, halt_words};
