//! Exhaustive exploration of arbiter + workers + pipes + a listener, with a bounded budget of
//! faults.
//!
//! Every state holds the real cores (the arbiter inside `invariants::Checked`, so the shared
//! monitor checks every transition; each worker's `Worker`), both pipes of each worker as FIFO
//! queues, the listener's accept queue and the fault budget. Every interleaving of deliveries,
//! accepts, request completions, forks, reaps, deadlines and faults is explored, states are
//! deduplicated by hash, and:
//!
//! - **safety**: each transition passes the monitor, and connections are conserved;
//! - **liveness**: from every reachable state, a state where every connection is served (or the
//!   server has stopped) is reachable — no deadlock, no lost wakeup. Checked by reverse
//!   reachability from those goal states over the explored graph.
//!
//! A violation comes with a shortest trace from the initial state (see [`explore`]).

use herd_protocol::arbiter::domain::Corner;
use herd_protocol::arbiter::{AcceptMode, Action, Config, ExitStatus, Input, KillSignal, Life, WorkerId};
use herd_protocol::idmap::IdMap;
use herd_protocol::invariants::{Checked, Invariant, Violation};
use herd_protocol::message::{ArbiterMsg, ListenerId, WorkerMsg};
use herd_protocol::signals::Sig;
use herd_protocol::time::Instant;
use herd_protocol::worker::{self, Worker, WorkerConfig, WorkerKind, WorkerSignal};
use smallvec::SmallVec;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

mod graph;
mod partial_order;
mod readiness;
mod search;
mod symmetry;

pub use partial_order::check_partial_order;
pub use readiness::check_readiness;
pub use search::explore;
pub use symmetry::{check_symmetry, replay};

const L0: ListenerId = ListenerId(0);

/// Where time starts, and where every state's clock is translated back to (time-translation
/// symmetry: the cores only compare instants and add durations, so two states that differ by a
/// shift of every instant behave alike and are one state). Far from zero, so that no instant a
/// state holds saturates when translated.
const T0: Instant = Instant(100_000 * 1_000_000_000);

/// The workers' timeout in the explorer: far longer than any path lets time pass (time only
/// moves to deadlines less than a minute away — kill grace, graceful stop, spawn backoff — each
/// made by a worker's retirement or death or by the stop, so a path passes a few minutes at
/// most). So no worker is ever killed for silence, and the past instants kept for that (last
/// heard, heartbeat window, spawned) only meet comparisons that come out the same: raising them
/// all to the present merges states that differ only there (the timeout kill has its own
/// tests, the simulator and the fuzzers).
const TIMEOUT: Duration = Duration::from_secs(3_600);

/// The corners of the configuration domain the explorer can run at. Not the timing ones (no
/// timeout, the smallest timeout: the explorer's time model never reaches a silence kill, see
/// its `TIMEOUT`) nor the most workers (beyond any exhaustive search).
pub const EXPLORABLE_CORNERS: [Corner; 6] = [
    Corner::OneWorker,
    Corner::SmallestGracefulTimeout,
    Corner::OneRequest,
    Corner::JitterWithoutBase,
    Corner::OneBootFailure,
    Corner::EndlessBootFailures,
];

/// The fault kinds, by name.
pub const KINDS: [&str; 7] = ["kill", "boot-crash", "ttin", "ttou", "hup", "term", "abandon"];

/// What to explore.
#[derive(Clone, Debug)]
pub struct Bounds {
    /// Workers the arbiter runs.
    pub workers: u32,
    /// Connections that arrive over the run.
    pub connections: u32,
    /// Faults per run, in all: each of any kind that is on.
    pub faults: u32,
    /// Which fault kinds are on: any of `kill`, `ttin`, `ttou`, `hup`, `term`, `abandon`.
    pub kinds: Vec<String>,
    /// Accept mode.
    pub mode: AcceptMode,
    /// Worker request budget (0 = unlimited).
    pub max_requests: u32,
    /// Sync or async workers.
    pub kind: WorkerKind,
    /// A corner of the configuration domain the run is put at (one of [`EXPLORABLE_CORNERS`]);
    /// it overrides `workers` and `max_requests` where it sets them.
    pub corner: Option<Corner>,
    /// Merge states that differ only in the workers' names (docs/model.md, "Symmetry"): an
    /// order-preserving renaming always, any renaming where no choice by id order can come.
    pub symmetry: bool,
    /// Explore the end of a request alone where nothing can reach its worker first
    /// (docs/model.md, "Partial-order reduction").
    pub partial_order: bool,
    /// Stop after this many states (0 = no limit).
    pub max_states: usize,
    /// Stop after this many seconds (0 = no limit); the report says the search is not complete.
    pub max_seconds: u64,
    /// Search threads (0 = one per core). The states, transitions, depth and verdict do not
    /// depend on it; with `max_states` reached, which states were seen does.
    pub threads: usize,
    /// A re-introduced bug of docs/bugs.md.
    #[cfg(feature = "mutants")]
    pub mutant: Option<herd_protocol::mutants::Mutant>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Os {
    Accept(Option<ListenerId>),
    Serving,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Proc {
    core: Worker,
    dead: bool,
    status: Option<ExitStatus>,
    /// Frames in the pipe to the arbiter, each marked if it ends a packet: the frames of one
    /// drain are written with one `write()` (atomic below `PIPE_BUF`), so they arrive together.
    /// (Inline: a state is cloned for every transition, and a pipe rarely holds more than a
    /// packet or two.)
    to_arbiter: Pipe,
    to_worker: SmallVec<[ArbiterMsg; 2]>,
    os: Option<Os>,
    /// Async workers: connections open (each serves one request, then closes; keep-alive
    /// changes nothing the arbiter sees).
    conns: u32,
}

/// A worker's pipe to the arbiter: frames, each marked if it ends a packet.
type Pipe = SmallVec<[(WorkerMsg, bool); 4]>;

/// Faults left in this run, and the kinds that are on.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
struct Budget {
    left: u32,
    kill: bool,
    boot_crash: bool,
    ttin: bool,
    ttou: bool,
    hup: bool,
    term: bool,
    abandon: bool,
}

/// One state of the whole system.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State {
    arb: Checked,
    procs: IdMap<WorkerId, Proc>,
    queue: u32,
    to_arrive: u32,
    arrived: u32,
    served: u32,
    lost_with_worker: u32,
    abandoned: u32,
    budget: Budget,
    now: Instant,
    exited: bool,
    /// The runtime owes the arbiter a readiness report: a connection arrived, or a watch or a
    /// `Poll` asked for a level check.
    ready_pending: bool,
    /// Dispatched accepts that may legitimately find nothing: one per abandoned connection.
    spare_wakeups: u32,
    /// The worker kind.
    kind: WorkerKind,
    /// Whether states are named canonically ([`Bounds::symmetry`]).
    symmetry: bool,
    /// Whether the partial-order reduction is on ([`Bounds::partial_order`]).
    partial_order: bool,
}

/// A transition, for traces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    /// A client connects.
    Arrive,
    /// The arbiter learns the listener is readable.
    Ready,
    /// The head packet of a worker's pipe reaches the arbiter.
    ToArbiter(WorkerId),
    /// The head frame of the arbiter's pipe reaches a worker.
    ToWorker(WorkerId),
    /// A worker's accept or request completes.
    Os(WorkerId),
    /// A waiting worker (shared mode) sees the listener readable.
    Wake(WorkerId),
    /// An async worker's connection ends: its request done, the connection closed.
    Finish(WorkerId),

    /// A dead worker is reaped (its pipe read to the end first).
    Reap(WorkerId),
    /// Time passes to the arbiter's next deadline.
    Advance,
    /// Fault: SIGKILL from outside.
    Kill(WorkerId),
    /// Fault: a worker dies before booting (exit 1), before it wrote anything.
    BootCrash(WorkerId),
    /// Fault: a signal to the arbiter.
    Signal(Sig),
    /// Fault: a queued client gives up.
    Abandon,
}

/// What the exploration found.
#[derive(Debug)]
pub struct Report {
    /// Distinct states.
    pub states: usize,
    /// Transitions explored.
    pub transitions: usize,
    /// The longest of the shortest paths from the initial state to each state (the deepest
    /// breadth-first level); with a violation, the length of its trace.
    pub depth: usize,
    /// Whether `max_states` cut the search short.
    pub truncated: bool,
    /// A violation, with a shortest trace to one.
    pub violation: Option<(Violation, Vec<Step>)>,
    /// States from which no goal state is reachable.
    pub stuck: usize,
    /// States with no step to take (the server stopped, or everything at rest).
    pub finals: usize,
    /// Searchers that ran.
    pub searchers: usize,
}

impl State {
    /// The initial state.
    pub fn initial(b: &Bounds) -> Self {
        let mut config = Config {
            workers: b.workers,
            cron_workers: 0,
            timeout: Some(TIMEOUT),
            graceful_timeout: Duration::from_secs(10),
            kill_grace: Duration::from_secs(1),
            max_requests: b.max_requests,
            max_requests_jitter: 0,
            accept_mode: b.mode,
            listeners: 1,
            spawn_backoff: Duration::from_millis(100),
            spawn_backoff_max: Duration::from_secs(1),
            // Beyond any fault budget: the corners put it in reach.
            max_boot_failures: Config::default().max_boot_failures,
            seed: 1,
        };
        if let Some(corner) = b.corner {
            assert!(EXPLORABLE_CORNERS.contains(&corner), "the explorer cannot run at {}", corner.name());
            corner.apply(&mut config, 3);
        }
        #[cfg(feature = "mutants")]
        let arbiter = herd_protocol::arbiter::Arbiter::with_mutant(config, T0, b.mutant);
        #[cfg(not(feature = "mutants"))]
        let arbiter = herd_protocol::arbiter::Arbiter::new(config, T0);
        let (arb, actions) = Checked::wrap(arbiter.expect("valid bounds"));
        let on = |k: &str| b.kinds.iter().any(|x| x == k);
        let mut s = State {
            arb,
            procs: IdMap::new(),
            queue: 0,
            to_arrive: b.connections,
            arrived: 0,
            served: 0,
            lost_with_worker: 0,
            abandoned: 0,
            budget: Budget {
                left: b.faults,
                kill: on("kill"),
                boot_crash: on("boot-crash"),
                ttin: on("ttin"),
                ttou: on("ttou"),
                hup: on("hup"),
                term: on("term"),
                abandon: on("abandon"),
            },
            now: T0,
            exited: false,
            ready_pending: false,
            spare_wakeups: 0,
            kind: b.kind,
            symmetry: b.symmetry,
            partial_order: b.partial_order,
        };
        s.arbiter_actions(actions).expect("start breaks nothing");
        s.drop_empty_report();
        s.canonical_ids();
        s
    }

    /// Every connection is served (or failed with its worker, or abandoned), or the server stopped.
    fn goal(&self) -> bool {
        self.exited
            || (self.to_arrive == 0
                && self.queue == 0
                && self.procs.values().all(|p| p.os != Some(Os::Serving) || p.dead))
    }

    /// Whether the arbiter watches the listener (a readiness report can reach it).
    fn watched(&self) -> bool {
        self.arb.arbiter.dispatcher().books().first().is_some_and(|b| b.watched)
    }

    /// A readiness report with nothing queued says nothing (epoll reports nothing): a report
    /// owed on an empty listener is no report, and the state is the one without it
    /// ([`check_readiness`] checks that this drops only a step that changes nothing).
    fn drop_empty_report(&mut self) {
        if self.queue == 0 {
            self.ready_pending = false;
        }
    }

    fn mode(&self) -> AcceptMode {
        self.arb.arbiter.config().accept_mode
    }

    fn enabled(&self) -> Vec<Step> {
        let mut steps = Vec::new();
        if self.exited {
            return steps;
        }
        if self.to_arrive > 0 {
            steps.push(Step::Arrive);
        }
        if self.watched() && self.ready_pending {
            steps.push(Step::Ready);
        }
        for (&id, p) in &self.procs {
            if !p.to_arbiter.is_empty() {
                steps.push(Step::ToArbiter(id));
            }
            if p.dead {
                if p.to_arbiter.is_empty() {
                    steps.push(Step::Reap(id));
                }
                continue;
            }

            if !p.to_worker.is_empty() {
                steps.push(Step::ToWorker(id));
            }
            if p.os.is_some() {
                steps.push(Step::Os(id));
            }
            if p.conns > 0 {
                steps.push(Step::Finish(id));
            }
            if p.core.waits_on_listeners() && self.queue > 0 {
                steps.push(Step::Wake(id));
            }
            if self.budget.left > 0 && self.budget.kill {
                steps.push(Step::Kill(id));
            }
            // Nothing it wrote has reached the arbiter yet: it may have died before writing it.
            if self.budget.left > 0
                && self.budget.boot_crash
                && self.arb.arbiter.workers().get(&id).is_some_and(|w| !w.booted)
            {
                steps.push(Step::BootCrash(id));
            }
        }
        if let Some(t) = self.arb.arbiter.poll_timeout()
            && t < self.now + Duration::from_secs(60)
        {
            steps.push(Step::Advance);
        }
        let b = &self.budget;
        if b.left > 0 {
            for (on, sig) in
                [(b.ttin, Sig::Ttin), (b.ttou, Sig::Ttou), (b.hup, Sig::Hup), (b.term, Sig::Term)]
            {
                if on {
                    steps.push(Step::Signal(sig));
                }
            }
            if b.abandon && self.queue > 0 {
                steps.push(Step::Abandon);
            }
        }
        steps
    }

    fn apply(&mut self, step: Step) -> Result<(), Violation> {
        match step {
            Step::Arrive => {
                self.to_arrive -= 1;
                self.arrived += 1;
                self.queue += 1;
                self.ready_pending = true;
            }
            Step::Ready => {
                // Reported only if something waits (epoll says nothing otherwise).
                self.ready_pending = false;
                if self.queue > 0 {
                    let input = Input::Ready { socket: L0, queued: Some(self.queue) };
                    self.arbiter(input)?;
                }
            }
            Step::ToArbiter(id) => {
                let p = self.procs.get_mut(&id).expect("proc");
                let end = p.to_arbiter.iter().position(|&(_, last)| last).expect("packet");
                let packet: Pipe = p.to_arbiter.drain(..=end).collect();
                for (msg, _) in packet {
                    self.arbiter(Input::Message { from: id, msg })?;
                }
            }
            Step::ToWorker(id) => {
                let p = self.procs.get_mut(&id).expect("proc");
                let msg = p.to_worker.remove(0);
                self.worker(id, worker::Input::Message(msg));
                // The driver accepts right after decoding `ACCEPT:<socket>`: no other input
                // reaches the worker in between (signals are fed at the driver's loop points).
                if let Some(Os::Accept(Some(_))) = self.procs.get(&id).and_then(|p| p.os.clone()) {
                    self.apply(Step::Os(id))?;
                }
            }
            Step::Os(id) => {
                let p = self.procs.get_mut(&id).expect("proc");
                match p.os.take().expect("os step") {
                    Os::Accept(_) if self.queue > 0 => {
                        self.queue -= 1;
                        self.worker(id, worker::Input::Accepted(L0));
                    }
                    Os::Accept(told) => {
                        // single-wakeup: in signaled mode only the arbiter hands out connections,
                        // one per connection; a woken worker finds one unless a client left.
                        if told.is_some() && self.mode() == AcceptMode::Signaled {
                            if self.spare_wakeups == 0 {
                                return Err(Violation::new(
                                    Invariant::SingleWakeup,
                                    format!(
                                        "{id} was told ACCEPT and found nothing: a connection woke two workers"
                                    ),
                                ));
                            }
                            self.spare_wakeups -= 1;
                        }
                        self.worker(id, worker::Input::AcceptEmpty)
                    }
                    Os::Serving => {
                        self.served += 1;
                        self.worker(id, worker::Input::RequestDone);
                    }
                }
            }
            Step::Wake(id) => self.worker(id, worker::Input::ListenersReadable),
            Step::Finish(id) => {
                let p = self.procs.get_mut(&id).expect("proc");
                p.conns -= 1;
                self.served += 1;
                self.worker(id, worker::Input::RequestDone);
                self.worker(id, worker::Input::ConnectionClosed);
            }

            Step::Reap(id) => {
                let p = self.procs.remove(&id).expect("proc");
                let status = p.status.expect("dead");
                self.arbiter(Input::Exited { id, status })?;
            }
            Step::Advance => {
                let t = self.arb.arbiter.poll_timeout().expect("deadline");
                self.now = self.now.max(t);
                let actions = self.arb.tick(self.now)?;
                self.arbiter_actions(actions)?;
            }
            Step::Kill(id) => {
                self.budget.left -= 1;
                self.die(id, ExitStatus::Signaled(9));
            }
            Step::BootCrash(id) => {
                self.budget.left -= 1;
                if let Some(p) = self.procs.get_mut(&id) {
                    p.to_arbiter.clear();
                }
                self.die(id, ExitStatus::Code(1));
            }
            Step::Signal(sig) => {
                self.budget.left -= 1;
                self.arbiter(Input::Signal(sig))?;
            }
            Step::Abandon => {
                self.budget.left -= 1;
                self.queue -= 1;
                self.abandoned += 1;
                self.spare_wakeups += 1;
            }
        }
        self.drop_empty_report();
        let serving = self.procs.values().filter(|p| !p.dead && p.os == Some(Os::Serving)).count() as u32
            + self.procs.values().filter(|p| !p.dead).map(|p| p.conns).sum::<u32>();
        if self.arrived != self.served + self.queue + serving + self.lost_with_worker + self.abandoned {
            return Err(Violation::new(
                Invariant::NoLostWakeup,
                format!(
                    "connections not conserved: arrived {} != served {} + queued {} + serving {serving} + lost {} + abandoned {}",
                    self.arrived, self.served, self.queue, self.lost_with_worker, self.abandoned
                ),
            ));
        }
        Ok(())
    }

    /// The canonical form of a state's time (see [`TIMEOUT`] and [`T0`]): every instant
    /// translated back so that the clock reads `T0`, then every past liveness instant (spawned,
    /// last heard, last heartbeat, the timestamps of `ALIVE` frames in flight) raised to `T0`.
    fn canonical_time(&mut self) {
        let d = self.now.saturating_since(T0);
        if !d.is_zero() {
            self.now = T0;
            self.arb.translate_back(d);
            for p in self.procs.values_mut() {
                p.core.translate_back(d);
            }
        }
        self.arb.clamp_past(T0);
        for p in self.procs.values_mut() {
            p.core.clamp_past(T0);
            for (msg, _) in p.to_arbiter.iter_mut() {
                if let WorkerMsg::Alive { timestamp } = msg {
                    *timestamp = T0.as_millis();
                }
            }
        }
    }

    fn arbiter(&mut self, input: Input) -> Result<(), Violation> {
        let actions = self.arb.step(self.now, input)?;
        self.arbiter_actions(actions)
    }

    fn arbiter_actions(&mut self, actions: Vec<Action>) -> Result<(), Violation> {
        for a in actions {
            match a {
                Action::Spawn { id, max_requests, .. } => {
                    let core = Worker::new(
                        WorkerConfig {
                            accept_mode: self.mode(),
                            timeout: TIMEOUT,
                            max_requests,
                            kind: self.kind,
                        },
                        self.now,
                    );
                    // The fork completes at once: what a started worker does is visible only
                    // through its frames, whose delivery is a transition of its own.
                    self.procs.insert(
                        id,
                        Proc {
                            core,
                            dead: false,
                            status: None,
                            to_arbiter: SmallVec::new(),
                            to_worker: SmallVec::new(),
                            os: None,
                            conns: 0,
                        },
                    );
                    let now = self.now;
                    if let Some(p) = self.procs.get_mut(&id) {
                        p.core.start(now);
                    }
                    self.worker_actions(id);
                }
                Action::Send { to, msg } => {
                    if let Some(p) = self.procs.get_mut(&to).filter(|p| !p.dead) {
                        p.to_worker.push(msg);
                    }
                }
                Action::Kill { id, signal, .. } => match signal {
                    KillSignal::Term => self.worker(id, worker::Input::Signal(WorkerSignal::Term)),
                    KillSignal::Quit => self.worker(id, worker::Input::Signal(WorkerSignal::Quit)),
                    KillSignal::Abrt => self.die(id, ExitStatus::Signaled(6)),
                    KillSignal::Kill => self.die(id, ExitStatus::Signaled(9)),
                },
                Action::Exit { .. } => self.exited = true,
                // A watch and a poll are level checks, reported by the Ready step.
                Action::Watch(_) | Action::Poll(_) => self.ready_pending = true,
                // Reaping is the Reap step.
                Action::Unwatch(_) | Action::Reap => {}
                Action::Reexec | Action::ReopenLogs => {}
            }
        }
        Ok(())
    }

    fn worker(&mut self, id: WorkerId, input: worker::Input) {
        let now = self.now;
        if let Some(p) = self.procs.get_mut(&id).filter(|p| !p.dead) {
            p.core.handle(now, input);
            self.worker_actions(id);
        }
    }

    fn worker_actions(&mut self, id: WorkerId) {
        let mut packet: SmallVec<[WorkerMsg; 4]> = SmallVec::new();
        while let Some(p) = self.procs.get_mut(&id) {
            if p.dead {
                break;
            }
            let Some(a) = p.core.poll_action() else { break };
            match a {
                worker::Action::Send(m) => packet.push(m),
                worker::Action::Accept(which) => p.os = Some(Os::Accept(which)),
                worker::Action::Serve(_) if self.kind != WorkerKind::Sync => p.conns += 1,
                worker::Action::Serve(_) => p.os = Some(Os::Serving),
                // Connections finish on their own (the Finish step).
                worker::Action::Drain => {}
                worker::Action::Exit(code) => {
                    // Frames written before exiting are still read by the arbiter.
                    end_packet(&mut p.to_arbiter, &mut packet);
                    self.die(id, ExitStatus::Code(code));
                }
            }
        }
        if let Some(p) = self.procs.get_mut(&id) {
            end_packet(&mut p.to_arbiter, &mut packet);
        }
    }

    fn die(&mut self, id: WorkerId, status: ExitStatus) {
        if let Some(p) = self.procs.get_mut(&id).filter(|p| !p.dead) {
            if p.os == Some(Os::Serving) {
                self.lost_with_worker += 1;
            }
            self.lost_with_worker += std::mem::take(&mut p.conns);
            p.dead = true;
            p.status = Some(status);
            p.os = None;
            p.to_worker.clear();
        }
    }
}

/// Writes the frames of one drain into the pipe as one packet.
fn end_packet(pipe: &mut Pipe, packet: &mut SmallVec<[WorkerMsg; 4]>) {
    let n = packet.len();
    pipe.extend(packet.drain(..).enumerate().map(|(i, m)| (m, i + 1 == n)));
}
