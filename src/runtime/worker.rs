//! The worker process: runs the [`herd_protocol::worker::Worker`] core after fork.
//!
//! One loop sleeps in `epoll_wait` on the arbiter's socket, the worker's own self-pipe and (shared
//! mode) the listeners, registered with `EPOLLEXCLUSIVE` so that one connection wakes one waiting
//! worker. Accepts are non-blocking and done right after the core asks; the registry sequence is
//! checked before every request; signals reach the core only at loop points (before waiting, and
//! between the end of a request and the decision what to do next).

use crate::app::{App, Context};
use crate::os::listen::Connection;
use crate::os::sys::{Blocked, Clock, WakePipe};
use crate::resources::Resources;
use crate::runtime::trace::{Recorder, Traced};
use herd_protocol::arbiter::AcceptMode;
use herd_protocol::arbiter::WorkerId;
use herd_protocol::message::{ArbiterMsg, Decoder, ListenerId, Message};
use herd_protocol::registry::{Registry, SequenceStore, Sequences};
use herd_protocol::signals::Sig;
use herd_protocol::trace;
use herd_protocol::worker::{Action, Input, State, Worker, WorkerConfig, WorkerKind, WorkerSignal};
use nix::errno::Errno;
use nix::libc;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::unistd::Pid;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;

const WAKE: u64 = 0;
const CHANNEL: u64 = 1;
const LISTENER: u64 = 2;

/// What a forked worker starts with.
pub(crate) struct WorkerSetup {
    pub id: WorkerId,
    pub generation: u32,
    pub max_requests: u32,
    /// The arbiter's pid: a different parent means the arbiter died.
    pub arbiter: Pid,
    pub chan: UnixStream,
    /// Every signal is blocked until the worker's handlers are in place.
    pub blocked: Blocked,
    /// Its scoreboard slot.
    pub slot: Option<usize>,
    /// The arbiter's descriptors, closed first thing.
    pub inherited: Vec<i32>,
}

/// Runs a worker to its end and exits the process; never returns into the arbiter's code.
pub(crate) fn run<A: App>(setup: WorkerSetup, res: &Resources, app: &mut A) -> ! {
    let inherited = setup.inherited.clone();
    run_process(&inherited, |loaded| boot(setup, res, app, loaded))
}

/// The frame of every worker process: closes the arbiter's descriptors, runs `body`, and exits
/// with its code. A panic never unwinds out of here: above this frame is the arbiter's loop (and
/// its destructors, which remove the pidfile and unlink sockets). `body` sets the flag once the
/// application is loaded: a panic before that is an application load error, which halts the
/// server; after, a crash of this worker.
pub(crate) fn run_process(
    inherited: &[i32],
    body: impl FnOnce(&std::cell::Cell<bool>) -> io::Result<i32>,
) -> ! {
    for fd in inherited {
        // SAFETY: these are the arbiter's descriptors; nothing in the worker owns or uses them
        // (the arbiter's structures that do are never touched again in this process).
        unsafe { libc::close(*fd) };
    }
    let loaded = std::cell::Cell::new(false);
    let code = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&loaded))) {
        Ok(Ok(code)) => code,
        // The runtime could not set the worker up (descriptors, memory): it dies before booting
        // and the arbiter respawns it with backoff. Not a boot error of the application, which
        // would halt the res.
        Ok(Err(e)) => {
            tracing::error!(error = %e, "worker failed to start");
            EXIT_SETUP
        }
        Err(_) if !loaded.get() => {
            tracing::error!("the application panicked while loading: stopping the server");
            herd_protocol::arbiter::APP_LOAD_ERROR
        }
        Err(_) => EXIT_PANIC,
    };
    let _ = io::stdout().flush();
    let _ = io::stderr().flush();
    // SAFETY: _exit ends the process without running the arbiter's destructors (which would
    // remove the pidfile and unlink sockets).
    unsafe { libc::_exit(code) }
}

/// What every worker does first: its own self-pipe and signal dispositions, then the signals
/// unblocked; the parent-death signal; its process title; the hard memory limit.
pub(crate) fn prepare(id: WorkerId, blocked: Blocked, res: &Resources) -> io::Result<WakePipe> {
    pause_point(id, "forked");
    let wake = WakePipe::install()?;
    crate::os::sys::install_worker_handlers()?;
    pause_point(id, "handlers");
    blocked.restore()?;
    pause_point(id, "unblocked");
    // Before the parent-death signal, which a change of identity clears.
    if let Some(who) = &res.identity {
        who.assume()?;
    }
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)?;
    if let Ok(title) = std::ffi::CString::new(format!("herd: worker {}", id.0)) {
        let _ = nix::sys::prctl::set_name(&title);
    }
    if let Some(bytes) = res.limits.memory_hard {
        nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_AS, bytes, bytes)?;
    }
    Ok(wake)
}

/// Environment variable naming a point of a worker's setup where the first worker (`w0`) stops
/// itself with SIGSTOP, for tests of the fork window (`tests/reliability.rs`): `forked` (every
/// signal still blocked, the arbiter's dispositions still installed), `handlers` (the worker's
/// dispositions installed, signals still blocked), `unblocked` (signals unblocked). A test sends
/// its signal while the worker is stopped there, then SIGCONT: the window is driven, not raced.
/// It changes nothing else (no bug is switched on by it).
pub const PAUSE_ENV: &str = "HERD_TEST_PAUSE";

fn pause_point(id: WorkerId, here: &str) {
    if id.0 == 0 && std::env::var_os(PAUSE_ENV).is_some_and(|v| v == here) {
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGSTOP);
    }
}

/// Exit code of a worker whose runtime setup failed (before it could boot).
pub const EXIT_SETUP: i32 = 1;
/// Exit code of a worker whose application panicked while serving.
pub const EXIT_PANIC: i32 = 101;

fn boot<A: App>(
    setup: WorkerSetup,
    res: &Resources,
    app: &mut A,
    loaded: &std::cell::Cell<bool>,
) -> io::Result<i32> {
    let WorkerSetup { id, generation, max_requests, arbiter, chan, blocked, slot, .. } = setup;
    let wake = prepare(id, blocked, res)?;
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
    epoll.add(wake.fd(), EpollEvent::new(EpollFlags::EPOLLIN, WAKE))?;
    epoll.add(chan.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, CHANNEL))?;
    let config = res.config.clone();
    let shared = config.accept_mode == herd_protocol::arbiter::AcceptMode::Shared;
    if shared {
        watch_listeners(&epoll, res, true)?;
    }
    chan.set_nonblocking(false)?;
    let clock = Clock::new();
    let as_of = res.store.get().unwrap_or_default();
    let registry = Registry::new(app.load(as_of), as_of);
    loaded.set(true);
    let recorder = Recorder::for_worker(res.trace_dir.as_deref(), &trace::worker_file(std::process::id()));
    let core = Traced::start(
        WorkerConfig {
            accept_mode: config.accept_mode,
            timeout: config.pace(),
            max_requests,
            kind: WorkerKind::Sync,
        },
        clock.now(),
        recorder,
    );
    let mut w = Proc {
        id,
        generation,
        arbiter,
        core,
        clock,
        wake,
        epoll,
        chan,
        decoder: Decoder::new(),
        out: Vec::new(),
        conn: None,
        accepts: Accepts::default(),
        watching: shared,
        res,
        registry,
        slot,
        exit: None,
    };
    tracing::debug!(worker = %id, pid = std::process::id(), "worker booted");
    Ok(w.main_loop(app))
}

struct Proc<'s, R> {
    id: WorkerId,
    generation: u32,
    arbiter: Pid,
    core: Traced<Worker>,
    clock: Clock,
    wake: WakePipe,
    epoll: Epoll,
    chan: UnixStream,
    decoder: Decoder<ArbiterMsg>,
    out: Vec<u8>,
    conn: Option<Connection>,
    accepts: Accepts,
    /// Shared mode: the listeners are in the epoll set (not while an accept backs off: they are
    /// readable then, and the wait would spin).
    watching: bool,
    res: &'s Resources,
    registry: Registry<R>,
    slot: Option<usize>,
    exit: Option<i32>,
}

impl<R> Proc<'_, R> {
    fn main_loop<A: App<Registry = R>>(&mut self, app: &mut A) -> i32 {
        let mut events = [EpollEvent::empty(); 8];
        loop {
            self.drive(app);
            if let Some(code) = self.exit {
                return code;
            }
            let backing_off = matches!(self.core.state(), State::Backoff(_));
            if self.watching == backing_off && self.res.config.accept_mode == AcceptMode::Shared {
                self.watching = !backing_off;
                if let Err(e) = watch_listeners(&self.epoll, self.res, self.watching) {
                    tracing::error!(error = %e, "cannot change the worker's watch on the listeners");
                    return 1;
                }
            }
            let (now, wait) = self.clock.wait_for(self.core.poll_timeout(), Some(60_000));
            self.core.wait(now, wait.map(|(_, until)| until));
            self.core.flush();
            let timeout = match wait {
                None => EpollTimeout::NONE,
                Some((ms, _)) => EpollTimeout::from(ms as u16),
            };
            let n = match self.epoll.wait(&mut events, timeout) {
                Ok(n) => n,
                Err(Errno::EINTR) => 0,
                Err(e) => {
                    tracing::error!(error = %e, "epoll_wait failed in worker");
                    return 1;
                }
            };
            let mut inputs = Vec::new();
            let mut woken = false;
            for ev in &events[..n] {
                match ev.data() {
                    WAKE => woken = true,
                    CHANNEL => self.read_arbiter(&mut inputs),
                    _ => {
                        if self.core.waits_on_listeners() && inputs.is_empty() {
                            inputs.push(Input::ListenersReadable);
                        }
                    }
                }
            }
            for &input in &inputs {
                self.core.read(input);
            }
            // A loop point: signals and the parent check come first.
            self.loop_point(woken);
            self.drive(app);
            for input in inputs {
                if self.exit.is_some() {
                    break;
                }
                let now = self.clock.now();
                self.core.feed(now, input);
                self.drive(app);
            }
            // Every frame read is fed before the timeout pass (B22), and an exiting worker has
            // none to run.
            if self.exit.is_none() {
                let now = self.clock.now();
                self.core.tick(now);
            }
        }
    }

    /// Takes pending signals and checks the parent, feeding the core. `woken`: the wait reported
    /// the self-pipe readable, so it is drained; otherwise only the counters are taken.
    fn loop_point(&mut self, woken: bool) {
        let batch = if woken { self.wake.drain() } else { self.wake.take() };
        let now = self.clock.now();
        // One notice per loop point, so that the core's answer to it is carried out before
        // anything else is fed (the drain rule): a TERM first; a changed parent is seen at the
        // next loop point if the TERM has not ended the worker by then.
        if batch.count(Sig::Term) > 0 {
            self.core.feed(now, Input::Signal(WorkerSignal::Term));
        } else if nix::unistd::getppid() != self.arbiter {
            self.core.feed(now, Input::ParentChanged);
        }
    }

    /// Carries out the core's actions until it has none, feeding back accept and request results.
    fn drive<A: App<Registry = R>>(&mut self, app: &mut A) {
        while let Some(action) = self.core.next_action() {
            let now = self.clock.now();
            match action {
                Action::Send(msg) => self.out.extend_from_slice(msg.encode().as_bytes()),
                Action::Accept(which) => {
                    // Busy from before the accept to the end of the request: a death meanwhile
                    // may lose a connection, and the arbiter counts it.
                    self.set_busy(true);
                    let input = self.accept(which);
                    if !matches!(input, Input::Accepted(_)) {
                        self.set_busy(false);
                    }
                    self.core.feed(now, input);
                }
                Action::Serve(_) => {
                    self.flush();
                    self.arm_cpu_limit();
                    // Counted as it starts, as the arbiter counts it (on ACCEPTED): counted after,
                    // a client could see its answer before the count (the handler closes the
                    // connection) and read a status that is one short.
                    if let Some(s) = self.slot {
                        self.res.scoreboard.count(s);
                    }
                    self.serve(app);
                    self.set_busy(false);
                    if over_memory(self.res) {
                        let now = self.clock.now();
                        self.core.feed(now, Input::OverMemory);
                    }
                    // The end of a request is a loop point: a TERM that came during it is seen
                    // before the worker decides to take more work.
                    self.loop_point(false);
                    let now = self.clock.now();
                    self.core.feed(now, Input::RequestDone);
                }
                Action::Exit(code) => {
                    self.flush();
                    self.exit = Some(code);
                    return;
                }
                // Only async workers are told to drain.
                Action::Drain => {}
            }
        }
        self.flush();
    }

    fn set_busy(&self, busy: bool) {
        set_busy(self.res, self.slot, busy);
    }

    /// Re-arms `RLIMIT_CPU` so that this request gets `--limit-cpu` seconds of CPU from now.
    fn arm_cpu_limit(&self) {
        use nix::sys::resource::{Resource, UsageWho, getrlimit, getrusage, setrlimit};
        let Some(limit) = self.res.limits.cpu else { return };
        let Ok(usage) = getrusage(UsageWho::RUSAGE_SELF) else { return };
        let used = usage.user_time().tv_sec() + usage.system_time().tv_sec() + 1;
        let soft = used as u64 + limit.as_secs().max(1);
        let hard = getrlimit(Resource::RLIMIT_CPU).map_or(nix::libc::RLIM_INFINITY, |(_, h)| h);
        if let Err(e) = setrlimit(Resource::RLIMIT_CPU, soft.min(hard), hard) {
            tracing::warn!(error = %e, "cannot arm the CPU limit");
        }
    }

    fn accept(&mut self, which: Option<ListenerId>) -> Input {
        let (input, conn) = accept(&self.res.listeners, which, &mut self.accepts);
        self.conn = conn;
        input
    }

    fn serve<A: App<Registry = R>>(&mut self, app: &mut A) {
        let Some(conn) = self.conn.take() else { return };
        let store = &self.res.store;
        let shared = match store.get() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(worker = %self.id, error = %e, "registry store unavailable");
                app.unavailable(conn, &e);
                return;
            }
        };
        let app_ref: &A = app;
        let load = |as_of: Sequences| app_ref.load(as_of);
        self.registry.before_request(shared, || load(shared), |r| app_ref.clear_caches(r));
        let mut ctx = Context {
            worker: self.id,
            generation: self.generation,
            requests: self.core.requests(),
            registry: &mut self.registry,
            store,
            chan: &self.chan,
            access: self.res.access.as_ref(),
        };
        app.handle(&mut ctx, conn);
    }

    fn read_arbiter(&mut self, inputs: &mut Vec<Input>) {
        let mut buf = [0u8; 256];
        match self.chan.read(&mut buf) {
            // The arbiter is gone.
            Ok(0) => {
                let _ = self.epoll.delete(self.chan.as_fd());
                inputs.push(Input::ParentChanged);
            }
            Ok(n) => {
                let mut decoded = Vec::new();
                self.decoder.decode_all(&buf[..n], &mut decoded);
                for r in decoded {
                    inputs.push(match r {
                        Ok(msg) => Input::Message(msg),
                        Err(e) => {
                            tracing::error!(worker = %self.id, error = %e, "malformed frame from the arbiter");
                            Input::Malformed
                        }
                    });
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::error!(worker = %self.id, error = %e, "cannot read from the arbiter");
                inputs.push(Input::ParentChanged);
            }
        }
    }

    /// Writes the frames of this drain in one write.
    fn flush(&mut self) {
        self.core.flush();
        if self.out.is_empty() {
            return;
        }
        if let Err(e) = self.chan.write_all(&self.out) {
            // The arbiter is gone; the parent check ends this worker at the next loop point.
            tracing::debug!(worker = %self.id, error = %e, "cannot write to the arbiter");
        }
        self.out.clear();
    }
}

/// Marks the worker's scoreboard slot busy (from before an accept to the end of its request) or
/// not. Shared by the sync and async workers.
pub(crate) fn set_busy(res: &Resources, slot: Option<usize>, busy: bool) {
    if let Some(s) = slot {
        res.scoreboard.set_busy(s, busy);
    }
}

/// Whether this process's resident memory passed `--limit-memory-soft`. Shared by the sync and
/// async workers.
pub(crate) fn over_memory(res: &Resources) -> bool {
    let Some(limit) = res.limits.memory_soft else { return false };
    resident_bytes().is_some_and(|rss| rss > limit)
}

/// This process's resident memory (`/proc/self/statm`).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * rustix::param::page_size() as u64)
}

/// One accept as the worker core asked: on the listener named, or on any (round-robin from
/// `next`). A direct accept first asks the kernel whether anything is queued (TCP_INFO): an
/// accept() that can only fail is not made, and a connection that arrives just after still wakes
/// a waiting worker (the listener is level-triggered). Shared by the sync and async workers.
/// Adds the listeners to a shared-mode worker's epoll set (`EPOLLEXCLUSIVE`: one connection
/// wakes one waiting worker), or removes them.
fn watch_listeners(epoll: &Epoll, res: &Resources, on: bool) -> io::Result<()> {
    for (i, l) in res.listeners.iter().enumerate() {
        if on {
            let flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLEXCLUSIVE;
            epoll.add(l.as_fd(), EpollEvent::new(flags, LISTENER + i as u64))?;
        } else {
            epoll.delete(l.as_fd())?;
        }
    }
    Ok(())
}

/// Where a worker's accepts stand: the listener to try first (round-robin) and the failures in
/// a row for lack of resources (logged once per burst).
#[derive(Debug, Default)]
pub(crate) struct Accepts {
    next: usize,
    failing: u64,
}

pub(crate) fn accept(
    listeners: &[crate::os::listen::Listener],
    which: Option<ListenerId>,
    state: &mut Accepts,
) -> (Input, Option<Connection>) {
    let n = listeners.len();
    let order: Vec<usize> = match which {
        Some(l) if usize::from(l.0) < n => vec![usize::from(l.0)],
        // ACCEPT:<socket> naming no listener: the arbiter broke the protocol.
        Some(_) => return (Input::Malformed, None),
        None => (0..n).map(|k| (state.next + k) % n).collect(),
    };
    for i in order {
        if which.is_none() && listeners[i].queued() == Some(0) {
            continue;
        }
        match listeners[i].accept() {
            Ok(Some(c)) => {
                state.next = (i + 1) % n;
                if state.failing > 0 {
                    tracing::info!(failures = state.failing, "accept works again");
                    state.failing = 0;
                }
                return (Input::Accepted(ListenerId(i as u16)), Some(c));
            }
            Ok(None) => {}
            // Out of descriptors, buffers or memory: the connection stays queued; the core backs
            // off instead of asking again at once. One line per burst.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
                ) =>
            {
                if state.failing == 0 {
                    tracing::warn!(error = %e, "accept failed for lack of resources; backing off (until it works again, \
                                   further failures are not logged)");
                }
                state.failing += 1;
                return (Input::AcceptFailed, None);
            }
            // The client gave up before it was accepted: nothing to take.
            Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {}
            Err(e) => tracing::warn!(error = %e, "accept failed"),
        }
    }
    (Input::AcceptEmpty, None)
}
