//! The simulated world: one arbiter core, worker cores in simulated processes, a simulated OS
//! (fork latency and failure, pipes with delay, coalescing signals, CHLD, kill, exit statuses),
//! listeners with accept queues, seeded clients, handlers, and a shared registry store.
//!
//! Virtual time, one event queue, ties broken by insertion order: one seed gives one run.

use crate::check::Checkers;
use crate::faults::{FaultKind, FaultMix};
use crate::timeline::Timeline;
use crate::{Options, Outcome};
use herd_protocol::arbiter::domain::Corner;
use herd_protocol::arbiter::{
    AcceptMode, Action, Config, ExitStatus, Input, KillSignal, Phase, Role, WORKER_BOOT_ERROR, WorkerId,
};
use herd_protocol::cron::{
    Claim, CronAction, CronConfig, CronInput, CronMonitor, CronWorker, Poll, Table, Timer as CronTimer,
};
use herd_protocol::invariants::{Checked, Violation};
use herd_protocol::message::{ArbiterMsg, Decoder, ListenerId, Message, WorkerMsg};
use herd_protocol::registry::{Registry, SharedSequences};
use herd_protocol::rng::Rng;
use herd_protocol::signals::{Sig, SignalQueue};
use herd_protocol::time::Instant;
use herd_protocol::worker::{self, Worker, WorkerConfig, WorkerKind, WorkerSignal};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::time::Duration;

const US: u64 = 1_000;
/// How long a signal the arbiter sends takes to reach its worker.
pub(crate) const SIGNAL_DELAY: Duration = Duration::from_nanos(50 * US);
/// The longest a (non-hung) request takes.
const MAX_SERVICE: Duration = Duration::from_millis(20);
/// The safety phase of a run at [`Corner::MostWorkers`], at most.
const MOST_WORKERS_SAFETY: Duration = Duration::from_secs(10);
/// Without a timeout (`--timeout 0`) the hang fault makes requests this slow instead (a sync worker
/// is silent meanwhile): longer than the pace heartbeats keep, so an arbiter that killed for
/// silence anyway (at the pace, say) would be caught.
const UNTIMED_SLOW: (Duration, Duration) = (Duration::from_secs(31), Duration::from_secs(45));

/// A client connection.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Conn {
    pub arrived: Instant,
}

#[derive(Clone, Debug)]
enum Ev {
    ArbiterTimer,
    ArbiterWake,
    SignalDelivered(Sig),
    ToArbiter {
        from: WorkerId,
        frame: Vec<u8>,
    },
    ToWorker {
        to: WorkerId,
        msg: ArbiterMsg,
    },
    Ready(ListenerId),
    Forked(WorkerId),
    SpawnFailed(WorkerId),
    WorkerTimer(WorkerId),
    WorkerSignal(WorkerId, KillSignal),
    /// A request ended, on the worker's only connection (sync) or on this one (async).
    RequestDone(WorkerId, u64),
    /// A cron job returned (the claim's token).
    JobDone(WorkerId, u64),
    /// A cron worker's fence for the run with this token (its OS timer, in the real runtime).
    Fence(WorkerId, u64),
    Arrival,
    OutsideKill,
    Storm,
    ClockJump,
    ReexecEnded,
    Heal,
    Stop,
    End,
}

/// A simulated worker process.
struct Proc {
    core: Worker,
    budget: u32,
    started: bool,
    dead: Option<ExitStatus>,
    reap_wanted: bool,
    serving: Option<Conn>,
    /// Async workers: open connections (keep-alive), and whether they were told to drain.
    conns: Vec<AsyncConn>,
    draining: bool,
    next_conn: u64,
    hung: bool,
    crash_at_done: bool,
    registry: Registry<u64>,
    /// The arbiter's decoder of this worker's pipe.
    decoder: Decoder<WorkerMsg>,
    to_arbiter_free: Instant,
    to_worker_free: Instant,
    in_flight: u32,
    timer_at: Option<Instant>,
    skew_ms: i64,
    served: u32,
    last_sent: Instant,
    /// Tried the accept of a dispatch whose answer (`ACCEPTED` or `EMPTY`) has not reached the
    /// arbiter.
    unreported: Option<ListenerId>,
    /// Index in the timeline.
    lane: usize,
    /// A cron worker: its core and the job it runs (its HTTP core is never started).
    cron: Option<CronProc>,
}

struct CronProc {
    core: CronWorker,
    running: Option<Claim>,
}

/// A cron worker whose arbiter died while it ran a job: it got the parent-death TERM, nobody
/// will ever kill it, and the arbiter that carries on (standing in for the successor: systemd's
/// restart or another host) knows nothing of it. Only its job's end or its fence ends it.
struct Orphan {
    cron: CronProc,
    hung: bool,
    lane: usize,
}

/// The cron side of a run: the job table (the store), its clock's skew, the monitor.
pub(crate) struct Crons {
    table: Table,
    pub(crate) monitor: CronMonitor,
    lease: Duration,
    /// The store's clock minus true time, nanoseconds (clock jumps).
    skew: i64,
    /// Its own generator, so the runs without cron workers are what they were.
    rng: Rng,
    /// Whether a kill of a worker mid-job is instead its arbiter's death (its own generator, so
    /// that the other draws of a run stay what they were).
    orphaning: Rng,
    longest_interval: Duration,
}

/// Most the store's clock jumps back.
const MAX_BACK_JUMP: Duration = Duration::from_secs(10);

/// An async worker's open connection: requests left on it (keep-alive).
struct AsyncConn {
    id: u64,
    requests_left: u32,
}

struct Listener {
    queue: VecDeque<Conn>,
    watched: bool,
    ready_scheduled: bool,
    /// Reports the accept-queue length (TCP with `TCP_INFO`) or not (a unix socket).
    counts: bool,
}

/// Counters of one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Connections that arrived.
    pub arrived: u64,
    /// Connections served to the end (every request on them).
    pub served: u64,
    /// Requests in flight on a worker that was killed or crashed (explained failures).
    pub failed_killed: u64,
    /// Registry changes committed and signalled.
    pub bumps: u64,
    /// Reloads performed before requests.
    pub reloads: u64,
    /// Runs the arbiter halted after a row of boot failures (0 or 1).
    pub halts: u64,
    /// Longest time a served connection waited in an accept queue.
    pub longest_wait: Duration,
}

/// The phase of the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RunPhase {
    Safety,
    Liveness,
    Stopping,
}

/// The world.
pub struct World {
    pub(crate) now: Instant,
    seq: u64,
    events: BinaryHeap<Reverse<(Instant, u64)>>,
    payloads: BTreeMap<u64, Ev>,
    rng: Rng,
    pub(crate) mix: FaultMix,
    /// The longest pipe delay drawn so far (the checkers' slack for a frame in flight).
    longest_delay: Duration,
    pub(crate) config: Config,
    pub(crate) arb: Checked,
    arbiter_exited: Option<i32>,
    arbiter_timer_at: Option<Instant>,
    signals: SignalQueue,
    pending_signal: [bool; 10],
    wake_scheduled: bool,
    procs: BTreeMap<WorkerId, Proc>,
    listeners: Vec<Listener>,
    store: SharedSequences,
    db_version: u64,
    /// Registry version whose bump has completed.
    pub(crate) signalled: u64,
    arrival_mean: Duration,
    pub(crate) phase: RunPhase,
    pub(crate) tally: Tally,
    checks: Option<Checkers>,
    events_run: u64,
    trace: Option<Vec<String>>,
    pub(crate) timeline: Option<Timeline>,
    stop_sent: Option<Instant>,
    /// The arbiter halted on its own (a row of boot failures): `stop_sent` is when.
    halted: bool,
    violation: Option<Violation>,
    /// The worker kind of this run (drawn apart from the main generator, so that the sync runs
    /// of every seed are what they were before async workers existed).
    kind: WorkerKind,
    /// The fault kinds of this run, as drawn (healing clears the mix).
    faults: String,
    faults_drawn: u32,
    pub(crate) crons: Option<Crons>,
    orphans: BTreeMap<WorkerId, Orphan>,
    /// The re-introduced bug of this run, for the cores made during it (cron workers).
    #[cfg(feature = "mutants")]
    mutant: Option<herd_protocol::mutants::Mutant>,
}

fn exp(rng: &mut Rng, mean: Duration) -> Duration {
    let u = ((rng.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    Duration::from_nanos((-(u.ln()) * mean.as_nanos() as f64) as u64)
}

impl World {
    /// Builds the world of one run.
    pub fn new(opts: &Options) -> Self {
        let mut rng = Rng::new(opts.seed);
        // The server's configuration is part of the swarm.
        let mode = [AcceptMode::Signaled, AcceptMode::Shared, AcceptMode::Auto][rng.up_to(2) as usize];
        let max_requests = if rng.chance(0.6) { 5 + rng.up_to(45) } else { 0 };
        // Cron workers in 30% of the runs, drawn apart from the main generator.
        let mut cron_rng = Rng::new(opts.seed ^ 0x0c20_7000_5eed_0c20);
        let cron_workers = if cron_rng.chance(0.3) { 1 + cron_rng.up_to(2) } else { 0 };
        // Corners of the configuration domain (`arbiter::domain`), drawn apart from the main
        // generator: no timeout (`--timeout 0`) in 15% of the runs without cron workers (which
        // need one), another corner in 20% of the rest.
        let mut corner_rng = Rng::new(opts.seed ^ 0x7140_0000_0000_0ff0);
        let untimed = cron_workers == 0 && corner_rng.chance(0.15);
        let corner = if untimed {
            Some(Corner::NoTimeout)
        } else if corner_rng.chance(0.2) {
            let others: Vec<Corner> =
                Corner::ALL.into_iter().filter(|&c| c != Corner::NoTimeout && !c.boot_failures()).collect();
            match others[corner_rng.up_to(others.len() as u32 - 1) as usize] {
                // A quarter as often as the others: such a run costs a hundred.
                Corner::MostWorkers if !corner_rng.chance(0.25) => None,
                c => Some(c),
            }
        } else {
            None
        };
        // Drawn in this order (the order of seeds' recorded traces).
        let workers = 1 + rng.up_to(5);
        let timeout = Duration::from_millis(1_000 + 500 * u64::from(rng.up_to(18)));
        let mut config = Config {
            workers,
            cron_workers,
            timeout: Some(timeout),
            graceful_timeout: Duration::from_millis(500 + 500 * u64::from(rng.up_to(8))),
            kill_grace: Duration::from_millis(100 + 100 * u64::from(rng.up_to(9))),
            max_requests,
            max_requests_jitter: if max_requests > 0 { rng.up_to(25) } else { 0 },
            accept_mode: mode,
            listeners: 1 + rng.up_to(2) as u16,
            spawn_backoff: Duration::from_millis(50),
            spawn_backoff_max: Duration::from_secs(2),
            max_boot_failures: Config::default().max_boot_failures,
            seed: rng.next_u64(),
        };
        if let Some(c) = corner {
            c.apply(&mut config, 1 + corner_rng.up_to(24));
        }
        // The row of boot failures that halts the server, drawn apart from the rest: the
        // default in most runs (out of reach of the faults), a row the boot faults may reach in
        // one in six, and each corner (the first failure halts; never) in one in twelve. About
        // one run in ten halts.
        let mut boot_rng = Rng::new(opts.seed ^ 0xb007_0000_0000_b007);
        let boot_corner = match boot_rng.up_to(11) {
            0 => Some(Corner::OneBootFailure),
            1 => Some(Corner::EndlessBootFailures),
            2..=3 => {
                config.max_boot_failures = 3 + boot_rng.up_to(3);
                None
            }
            _ => None,
        };
        if let Some(c) = boot_corner {
            c.apply(&mut config, 0);
        }
        let arrival_mean = Duration::from_millis(20 + u64::from(rng.up_to(480)));
        let mix = FaultMix::draw(&mut rng, opts.faults);
        #[cfg(feature = "mutants")]
        let arbiter =
            herd_protocol::arbiter::Arbiter::with_mutant(config.clone(), Instant::ZERO, opts.mutant);
        #[cfg(not(feature = "mutants"))]
        let arbiter = herd_protocol::arbiter::Arbiter::new(config.clone(), Instant::ZERO);
        let (arb, first) = Checked::wrap(arbiter.expect("the simulator draws valid configs"));
        // The checkers' view costs O(workers) per event: a run at the most workers is kept to
        // ten simulated seconds of faults.
        let safety = match corner {
            Some(Corner::MostWorkers) => opts.duration.min(MOST_WORKERS_SAFETY),
            _ => opts.duration,
        };
        let heal_at = Instant::ZERO + safety;
        let mut kind_rng = Rng::new(opts.seed ^ 0xa5a5_0000_0000_a5a5);
        let kind = if kind_rng.chance(0.3) {
            WorkerKind::Async { connections: 2 + kind_rng.up_to(2) }
        } else {
            WorkerKind::Sync
        };
        let mut w = World {
            now: Instant::ZERO,
            seq: 0,
            events: BinaryHeap::new(),
            payloads: BTreeMap::new(),
            rng,
            checks: Some(Checkers::new(&config)),
            mix,
            longest_delay: Duration::ZERO,
            config,
            arb,
            arbiter_exited: None,
            arbiter_timer_at: None,
            signals: SignalQueue::new(),
            pending_signal: [false; 10],
            wake_scheduled: false,
            procs: BTreeMap::new(),
            listeners: Vec::new(),
            store: SharedSequences::new(),
            db_version: 0,
            signalled: 0,
            arrival_mean,
            phase: RunPhase::Safety,
            tally: Tally::default(),
            events_run: 0,
            trace: opts.trace.then(Vec::new),
            timeline: opts.timeline.then(Timeline::default),
            stop_sent: None,
            halted: false,
            violation: None,
            kind,
            faults: String::new(),
            faults_drawn: 0,
            crons: None,
            orphans: BTreeMap::new(),
            #[cfg(feature = "mutants")]
            mutant: opts.mutant,
        };
        if cron_workers > 0 {
            let c = &w.config;
            let lease = herd_protocol::cron::lease(c.pace(), c.graceful_timeout, c.kill_grace);
            let mut table = Table::new();
            let mut longest_interval = Duration::ZERO;
            for _ in 0..=cron_rng.up_to(2) {
                let interval = Duration::from_millis(20 + 100 * u64::from(cron_rng.up_to(28)));
                let first = Instant::ZERO + Duration::from_millis(u64::from(cron_rng.up_to(3_000)));
                table.add(interval, first).expect("intervals are above zero");
                longest_interval = longest_interval.max(interval);
            }
            w.crons = Some(Crons {
                table,
                monitor: CronMonitor::new(),
                lease,
                skew: 0,
                rng: cron_rng,
                orphaning: Rng::new(opts.seed ^ 0x0a2b_1e2d_0ead_7e55),
                longest_interval,
            });
        }
        w.faults = w.mix.describe();
        w.faults_drawn = w.mix.mask;
        w.listeners = (0..w.config.listeners)
            .map(|_| Listener {
                queue: VecDeque::new(),
                watched: false,
                ready_scheduled: false,
                counts: w.rng.chance(0.7),
            })
            .collect();
        let line = format!(
            "config {:?}{} {:?} arrivals every {:?}; faults: {}{}",
            w.config,
            corner.iter().chain(&boot_corner).map(|c| format!(" (corner: {})", c.name())).collect::<String>(),
            w.kind,
            w.arrival_mean,
            w.mix.describe(),
            w.crons.as_ref().map_or(String::new(), |c| format!("; cron jobs {:?}", c.table.jobs()))
        );
        w.log(|| line);
        w.arbiter_actions(first);
        let d = exp(&mut w.rng, w.arrival_mean);
        w.schedule_in(d, Ev::Arrival);
        w.schedule_fault(w.mix.kill_every, Ev::OutsideKill);
        w.schedule_fault(w.mix.storm_every, Ev::Storm);
        w.schedule_fault(w.mix.jump_every, Ev::ClockJump);
        w.schedule_at(heal_at, Ev::Heal);
        w
    }

    fn log(&mut self, f: impl FnOnce() -> String) {
        if let Some(t) = &mut self.trace {
            let line = f();
            t.push(format!("{:>14?} {line}", self.now));
        }
    }

    fn schedule_at(&mut self, at: Instant, ev: Ev) {
        self.seq += 1;
        self.events.push(Reverse((at, self.seq)));
        self.payloads.insert(self.seq, ev);
    }

    fn schedule_in(&mut self, d: Duration, ev: Ev) {
        self.schedule_at(self.now + d, ev);
    }

    /// Schedules the next occurrence of a recurring fault, `mean` apart on average (if it is on).
    fn schedule_fault(&mut self, mean: Option<Duration>, ev: Ev) {
        if let Some(m) = mean {
            let d = exp(&mut self.rng, m);
            self.schedule_in(d, ev);
        }
    }

    fn fail(&mut self, v: Violation) {
        if self.violation.is_none() {
            self.log(|| format!("VIOLATION {v}"));
            self.violation = Some(v);
        }
    }

    fn delay(&mut self) -> Duration {
        let max = self.mix.delay_max.as_nanos() as u64;
        let d = Duration::from_nanos(20 * US + if max > 0 { self.rng.next_u64() % max } else { 0 });
        self.longest_delay = self.longest_delay.max(d);
        d
    }

    /// Runs to the end; returns the outcome.
    pub fn run(mut self, seed: u64) -> Outcome {
        while self.violation.is_none() {
            let Some(Reverse((at, seq))) = self.events.pop() else { break };
            let ev = self.payloads.remove(&seq).expect("payload");
            self.now = at;
            self.events_run += 1;
            if matches!(ev, Ev::End) {
                break;
            }
            self.event(ev);
            if self.violation.is_none() {
                let r = self.with_checks(|c, v| c.after_event(v));
                if let Err(v) = r {
                    self.fail(v);
                }
            }
        }
        // Only the garbage fault makes a worker break the protocol: an honest worker killed for
        // it (e.g. for an ALIVE flood) is a bug.
        let honest = self.faults_drawn & (1 << FaultKind::Garbage as u32) == 0;
        let errors = self.arb.arbiter.stats().protocol_errors;
        if self.violation.is_none() && honest && errors > 0 {
            self.fail(Violation::new(
                herd_protocol::invariants::Invariant::Consistency,
                format!("{errors} honest workers killed for protocol errors"),
            ));
        }
        if self.violation.is_none() {
            let (exited, stop_sent) = (self.arbiter_exited, self.stop_sent);
            let code = if self.halted { WORKER_BOOT_ERROR } else { 0 };
            let r = self.with_checks(|c, v| c.at_end(v, exited, stop_sent, code));
            if let Err(v) = r {
                self.fail(v);
            }
        }
        Outcome {
            seed,
            events: self.events_run,
            sim_time: Duration::from_nanos(self.now.0),
            violation: self.violation,
            trace: self.trace.unwrap_or_default(),
            tally: self.tally,
            faults: self.faults.clone(),
            mode: self.config.accept_mode,
            timeline: self.timeline,
        }
    }

    /// What the checkers see of the world.
    fn snapshot(&self) -> crate::check::View<'_> {
        crate::check::View {
            now: self.now,
            arbiter: &self.arb.arbiter,
            queues: self.listeners.iter().map(|l| l.queue.len()).collect(),
            counts: self.listeners.iter().map(|l| l.counts).collect(),
            idle_workers: self
                .procs
                .iter()
                .filter(|(_, p)| p.dead.is_none() && p.started)
                .filter(|(_, p)| matches!(p.core.state(), worker::State::Idle | worker::State::Waiting))
                .map(|(&id, p)| (id, p.in_flight, p.core.state()))
                .collect(),
            live_procs: self.procs.values().filter(|p| p.dead.is_none()).count(),
            zombies: self.procs.values().filter(|p| p.dead.is_some()).count(),
            hung: self
                .procs
                .iter()
                .filter(|(_, p)| p.dead.is_none() && p.hung)
                .map(|(&id, p)| (id, p.last_sent))
                .collect(),
            tally: self.tally,
            max_delay: self.longest_delay,
            stop_sent: self.stop_sent,
        }
    }

    fn event(&mut self, ev: Ev) {
        match ev {
            Ev::ArbiterTimer => {
                if self.arbiter_timer_at == Some(self.now) {
                    self.arbiter_timer_at = None;
                    self.log(|| "arbiter timeout".into());
                    match self.arb.tick(self.now) {
                        Ok(actions) => self.arbiter_actions(actions),
                        Err(v) => self.fail(v),
                    }
                }
            }
            Ev::SignalDelivered(sig) => {
                // The handler runs: count, then wake (the runtime's exact contract).
                self.pending_signal[sig as usize] = false;
                let mut wake = false;
                self.signals.push_and_wake(sig, || wake = true);
                if wake && !self.wake_scheduled {
                    self.wake_scheduled = true;
                    self.schedule_in(Duration::from_nanos(5 * US), Ev::ArbiterWake);
                }
            }
            Ev::ArbiterWake => {
                let mut cleared = false;
                let batch = self.signals.drain_woken(|| cleared = true);
                if cleared {
                    self.wake_scheduled = false;
                }
                for sig in batch.iter() {
                    self.arbiter_input(Input::Signal(sig));
                }
            }
            Ev::ToArbiter { from, frame } => {
                let Some(p) = self.procs.get_mut(&from) else { return };
                p.in_flight -= 1;
                let mut results = Vec::new();
                p.decoder.decode_all(&frame, &mut results);
                let reap_now = p.dead.is_some() && p.reap_wanted && p.in_flight == 0;
                for r in results {
                    // An answer counts only if the arbiter takes it: a worker caught lying is not heard.
                    let heard = self.arb.arbiter.workers().get(&from).is_some_and(|w| w.trusted);
                    if let Ok(WorkerMsg::Accepted { .. } | WorkerMsg::Empty { .. }) = r
                        && heard
                        && let Some(p) = self.procs.get_mut(&from)
                    {
                        p.unreported = None;
                    }
                    match r {
                        Ok(WorkerMsg::Accept | WorkerMsg::Empty { .. }) if heard => self.checks().asked(from),
                        Ok(WorkerMsg::Bye { .. }) => self.checks().leaving(from),
                        _ => {}
                    }
                    let input = match r {
                        Ok(msg) => Input::Message { from, msg },
                        Err(error) => Input::Malformed { from, error },
                    };
                    self.arbiter_input(input);
                }
                if reap_now {
                    self.reap_one(from);
                }
            }
            Ev::ToWorker { to, msg } => {
                // A hung async worker's event loop is blocked: nothing is read.
                if self.procs.get(&to).is_some_and(|p| p.dead.is_none() && p.started && !self.loop_blocked(p))
                {
                    self.worker_input(to, worker::Input::Message(msg));
                }
            }
            Ev::Ready(s) => {
                let l = &mut self.listeners[usize::from(s.0)];
                l.ready_scheduled = false;
                if l.watched && !l.queue.is_empty() {
                    let queued = l.counts.then_some(l.queue.len() as u32);
                    self.arbiter_input(Input::Ready { socket: s, queued });
                }
            }
            Ev::Forked(id) => self.forked(id),
            Ev::SpawnFailed(id) => {
                self.procs.remove(&id);
                self.arbiter_input(Input::SpawnFailed { id });
            }
            Ev::WorkerTimer(id) => {
                let now = self.now;
                let Some(p) = self.procs.get_mut(&id) else { return };
                if p.dead.is_some() || p.timer_at != Some(now) || (p.hung && self.kind != WorkerKind::Sync) {
                    return;
                }
                p.timer_at = None;
                match &mut p.cron {
                    Some(c) => c.core.handle_timeout(now),
                    None => p.core.handle_timeout(now),
                }
                self.worker_actions(id);
            }
            Ev::WorkerSignal(id, signal) => {
                if self.procs.get(&id).is_none_or(|p| p.dead.is_some()) {
                    return;
                }
                let cron = self.procs.get(&id).is_some_and(|p| p.cron.is_some());
                match signal {
                    KillSignal::Term if cron => self.cron_input(id, CronInput::Signal(WorkerSignal::Term)),
                    KillSignal::Quit if cron => self.cron_input(id, CronInput::Signal(WorkerSignal::Quit)),
                    KillSignal::Term => self.worker_input(id, worker::Input::Signal(WorkerSignal::Term)),
                    KillSignal::Quit => self.worker_input(id, worker::Input::Signal(WorkerSignal::Quit)),
                    KillSignal::Abrt => self.die(id, ExitStatus::Signaled(6)),
                    KillSignal::Kill => self.die(id, ExitStatus::Signaled(9)),
                }
            }
            Ev::RequestDone(id, conn) => {
                let Some(p) = self.procs.get_mut(&id) else { return };
                let open = match self.kind {
                    WorkerKind::Sync => p.serving.is_some(),
                    WorkerKind::Async { .. } => p.conns.iter().any(|c| c.id == conn),
                };
                if p.dead.is_some() || !open || p.hung {
                    return;
                }
                if p.crash_at_done {
                    // SIGQUIT (core dump), SIGILL, SIGABRT, SIGSEGV: none of them is an exit code.
                    let sig = [3, 4, 6, 11][self.rng.up_to(3) as usize];
                    return self.die(id, ExitStatus::Signaled(sig));
                }
                p.serving = None;
                // Connections are what arrive; an async connection counts as served when it
                // closes after its last request.
                if self.kind == WorkerKind::Sync {
                    self.tally.served += 1;
                }
                // Some requests change the registry: commit, then bump (registry or caches).
                let r = self.rng.up_to(99);
                if r < 3 {
                    // The worker changes its own registry (it reflects the new version only if
                    // it was current), commits, then signals.
                    let (before, after_commit) = (self.db_version, self.db_version + 1);
                    self.db_version = after_commit;
                    let p = self.procs.get_mut(&id).expect("proc");
                    p.registry.change(|v| {
                        if *v == before {
                            *v = after_commit;
                        }
                    });
                    let c = p.registry.coherence_mut();
                    if let Some(what) = c.commit() {
                        let after = self.store.increment(what);
                        c.bumped(what, after);
                        self.signalled = self.db_version;
                        self.tally.bumps += 1;
                    }
                } else if r < 6 {
                    let p = self.procs.get_mut(&id).expect("proc");
                    let c = p.registry.coherence_mut();
                    c.invalidate_cache();
                    if let Some(what) = c.commit() {
                        let after = self.store.increment(what);
                        c.bumped(what, after);
                    }
                }
                if let Some(t) = &mut self.timeline {
                    let lane = self.procs[&id].lane;
                    t.request_end(lane, self.now);
                }
                self.worker_input(id, worker::Input::RequestDone);
                if self.kind != WorkerKind::Sync {
                    self.next_request_or_close(id, conn);
                }
            }
            Ev::Fence(id, token) if self.orphans.contains_key(&id) => self.orphan_fence(id, token),
            Ev::JobDone(id, token) if self.orphans.contains_key(&id) => self.orphan_job_done(id, token),
            Ev::Fence(id, token) => {
                let Some(p) = self.procs.get(&id) else { return };
                let Some(c) = &p.cron else { return };
                if p.dead.is_some() || c.running.is_none_or(|r| r.token != token) {
                    return;
                }
                self.log(|| format!("{id}'s job reaches its fence: the process exits"));
                self.die(id, ExitStatus::Code(herd_protocol::cron::EXIT_FENCED));
            }
            Ev::JobDone(id, token) => {
                let Some(p) = self.procs.get_mut(&id) else { return };
                let Some(c) = &mut p.cron else { return };
                if p.dead.is_some() || p.hung || c.running.is_none_or(|r| r.token != token) {
                    return;
                }
                c.running = None;
                let ok = self.crons.as_mut().is_some_and(|c| !c.rng.chance(0.1));
                if let Some(c) = &mut self.crons {
                    c.monitor.ended(id);
                }
                self.cron_input(id, CronInput::JobDone { ok });
            }
            Ev::Arrival => {
                if self.phase != RunPhase::Safety {
                    return;
                }
                let s = self.rng.up_to(u32::from(self.config.listeners) - 1) as u16;
                self.listeners[usize::from(s)].queue.push_back(Conn { arrived: self.now });
                self.tally.arrived += 1;
                self.listener_changed(ListenerId(s));
                let d = exp(&mut self.rng, self.arrival_mean);
                self.schedule_in(d, Ev::Arrival);
            }
            Ev::OutsideKill => {
                if self.phase != RunPhase::Safety {
                    return;
                }
                let live: Vec<WorkerId> = self
                    .procs
                    .iter()
                    .filter(|(_, p)| p.dead.is_none() && p.started)
                    .map(|(&id, _)| id)
                    .collect();
                // With cron workers, half the kills go to one running a job, if any.
                let mid_job: Vec<WorkerId> = self
                    .procs
                    .iter()
                    .filter(|(_, p)| p.dead.is_none() && p.cron.as_ref().is_some_and(|c| c.running.is_some()))
                    .map(|(&id, _)| id)
                    .collect();
                let pick = match &mut self.crons {
                    Some(c) if !mid_job.is_empty() => {
                        c.rng.chance(0.5).then(|| mid_job[c.rng.up_to(mid_job.len() as u32 - 1) as usize])
                    }
                    _ => None,
                };
                let orphaned = pick.is_some() && self.crons.as_mut().is_some_and(|c| c.orphaning.chance(0.5));
                if let Some(id) = pick.filter(|_| orphaned) {
                    self.orphan(id);
                } else if let Some(id) = pick {
                    self.log(|| format!("fault: SIGKILL {id} from outside, mid-job"));
                    self.die(id, ExitStatus::Signaled(9));
                } else if !live.is_empty() {
                    let id = live[self.rng.up_to(live.len() as u32 - 1) as usize];
                    self.log(|| format!("fault: SIGKILL {id} from outside"));
                    self.die(id, ExitStatus::Signaled(9));
                }
                self.schedule_fault(self.mix.kill_every, Ev::OutsideKill);
            }
            Ev::Storm => {
                if self.phase != RunPhase::Safety {
                    return;
                }
                let n = 1 + self.rng.up_to(9);
                for _ in 0..n {
                    let sig = [Sig::Ttin, Sig::Ttou, Sig::Hup, Sig::Usr2, Sig::Usr1, Sig::Ttin, Sig::Ttou]
                        [self.rng.up_to(6) as usize];
                    let d = Duration::from_nanos(self.rng.up_to(2_000) as u64 * US);
                    self.log(|| format!("fault: SIG{} in {d:?}", sig.name()));
                    self.send_signal_later(sig, d);
                }
                self.schedule_fault(self.mix.storm_every, Ev::Storm);
            }
            Ev::ClockJump => {
                if self.phase != RunPhase::Safety {
                    return;
                }
                let ids: Vec<WorkerId> = self.procs.keys().copied().collect();
                if !ids.is_empty() {
                    let id = ids[self.rng.up_to(ids.len() as u32 - 1) as usize];
                    let jump = (self.rng.next_u64() % 172_800_000) as i64 - 86_400_000;
                    self.log(|| format!("fault: {id} wall clock jumps {jump} ms"));
                    if let Some(p) = self.procs.get_mut(&id) {
                        p.skew_ms = jump;
                    }
                }
                // The store's clock jumps too: forward up to three leases (live holders' leases
                // expire early), or back up to MAX_BACK_JUMP (leases and due times come later).
                if let Some(c) = &mut self.crons {
                    let forward = c.rng.chance(0.5);
                    let ns = if forward {
                        (c.rng.next_u64() % (3 * c.lease.as_nanos() as u64)) as i64
                    } else {
                        -((c.rng.next_u64() % MAX_BACK_JUMP.as_nanos() as u64) as i64)
                    };
                    c.skew += ns;
                    if forward {
                        c.monitor.jumped_forward();
                    }
                    self.log(|| format!("fault: the store's clock jumps {} ms", ns / 1_000_000));
                }
                self.schedule_fault(self.mix.jump_every, Ev::ClockJump);
            }
            Ev::ReexecEnded => {
                self.arbiter_input(Input::ReexecEnded);
            }
            // A halted run has nothing left to heal or stop.
            Ev::Heal | Ev::Stop if self.halted => {}
            Ev::Heal => {
                // Faults off; what is pending must now converge within a bound.
                self.log(|| "heal: faults off, no new clients".into());
                self.phase = RunPhase::Liveness;
                self.mix = FaultMix::default();
                // Room to recover (a hung request killed, a crashed worker respawned after its
                // backoff), then to drain what piled up at the pace of the target's workers.
                let c = &self.config;
                let pending: usize = self.listeners.iter().map(|l| l.queue.len()).sum();
                let workers = self.arb.arbiter.target().max(1);
                let drain = MAX_SERVICE * u32::try_from(pending).unwrap_or(u32::MAX) / workers;
                let bound = c.timeout.unwrap_or(UNTIMED_SLOW.1) * 2
                    + c.graceful_timeout
                    + c.kill_grace
                    + c.spawn_backoff_max * 2
                    + Duration::from_secs(2)
                    + drain;
                self.schedule_in(bound, Ev::Stop);
            }
            Ev::Stop => {
                let r = self.with_checks(|c, v| {
                    c.liveness_done(v);
                    c.take_error()
                });
                if let Err(v) = r {
                    return self.fail(v);
                }
                if let Some(c) = &self.crons {
                    // Room for a dead holder's lease to run out, a clock that went back, the
                    // longest interval and a claim poll.
                    let slack = c.lease + MAX_BACK_JUMP + c.longest_interval + Duration::from_secs(2);
                    if let Err(v) = c.monitor.progress(&c.table, self.store_now(), slack) {
                        return self.fail(v);
                    }
                }
                // Stop under load: a connection per worker arrives, and TERM lands while they
                // are served; some hang if this run hangs requests; an upgrade may race the stop.
                self.phase = RunPhase::Stopping;
                let n = self.arb.arbiter.target().max(1);
                for i in 0..n {
                    let s = (i % u32::from(self.config.listeners)) as usize;
                    self.listeners[s].queue.push_back(Conn { arrived: self.now });
                    self.tally.arrived += 1;
                    self.listener_changed(ListenerId(s as u16));
                }
                if self.faults_drawn & (1 << FaultKind::Hang as u32) != 0 {
                    self.mix.hang = 0.5;
                }
                if self.faults_drawn & (1 << FaultKind::SignalStorm as u32) != 0 {
                    self.log(|| "stop: SIGUSR2 to the arbiter".into());
                    self.send_signal_later(Sig::Usr2, Duration::ZERO);
                }
                self.log(|| "stop: SIGTERM to the arbiter".into());
                let at = self.now + Duration::from_millis(5);
                self.stop_sent = Some(at);
                self.send_signal_later(Sig::Term, Duration::from_millis(5));
                let c = &self.config;
                let bound =
                    Duration::from_millis(5) + c.graceful_timeout + c.kill_grace + Duration::from_secs(1);
                self.schedule_in(bound, Ev::End);
            }
            Ev::End => {}
        }
    }

    /// Runs `f` with the checkers and a view of the world.
    fn with_checks<R>(&mut self, f: impl FnOnce(&mut Checkers, &crate::check::View<'_>) -> R) -> R {
        let mut c = self.checks.take().expect("checkers are only taken here");
        let r = f(&mut c, &self.snapshot());
        self.checks = Some(c);
        r
    }

    fn checks(&mut self) -> &mut Checkers {
        self.checks.as_mut().expect("checkers present")
    }

    fn send_signal_later(&mut self, sig: Sig, d: Duration) {
        // The kernel keeps one pending bit per standard signal: a second one coalesces.
        if self.pending_signal[sig as usize] {
            return;
        }
        self.pending_signal[sig as usize] = true;
        self.schedule_in(d + Duration::from_nanos(10 * US), Ev::SignalDelivered(sig));
    }

    /// The runtime's epoll: report readiness of a watched listener with connections waiting.
    fn report_ready(&mut self, s: ListenerId) {
        let l = &mut self.listeners[usize::from(s.0)];
        if l.watched && !l.queue.is_empty() && !l.ready_scheduled {
            l.ready_scheduled = true;
            self.schedule_in(Duration::from_nanos(10 * US), Ev::Ready(s));
        }
    }

    /// A connection arrived (or a watch began): an edge for the arbiter, and readable listeners
    /// for workers waiting on them.
    fn listener_changed(&mut self, s: ListenerId) {
        if self.listeners[usize::from(s.0)].queue.is_empty() {
            return;
        }
        self.report_ready(s);
        // Shared mode: every waiting worker is woken (the thundering herd of poll()).
        let waiting: Vec<WorkerId> = self
            .procs
            .iter()
            .filter(|(_, p)| p.dead.is_none() && p.core.waits_on_listeners())
            .map(|(&id, _)| id)
            .collect();
        for id in waiting {
            self.worker_input(id, worker::Input::ListenersReadable);
        }
    }

    fn arbiter_input(&mut self, input: Input) {
        if self.arbiter_exited.is_some() {
            return;
        }
        self.log(|| format!("arbiter <- {input:?}"));
        match self.arb.step(self.now, input) {
            Ok(actions) => self.arbiter_actions(actions),
            Err(v) => self.fail(v),
        }
    }

    fn arbiter_actions(&mut self, actions: Vec<Action>) {
        for a in actions {
            if self.violation.is_some() {
                return;
            }
            self.log(|| format!("arbiter -> {a:?}"));
            self.arbiter_action(a);
        }
        if self.stop_sent.is_none() && self.arb.arbiter.phase() != Phase::Running {
            // Nothing but a row of boot failures stops the server before the world's TERM: the
            // run ends with the halt, which must end as a stop does (with exit 3).
            self.log(|| "the arbiter halts".into());
            self.halted = true;
            self.tally.halts = 1;
            self.stop_sent = Some(self.now);
            self.phase = RunPhase::Stopping;
            let c = &self.config;
            self.schedule_in(c.graceful_timeout + c.kill_grace + Duration::from_secs(1), Ev::End);
        }
        if self.arbiter_exited.is_none()
            && let Some(t) = self.arb.arbiter.poll_timeout()
            && Some(t) != self.arbiter_timer_at
        {
            let at = t.max(self.now);
            self.arbiter_timer_at = Some(at);
            self.schedule_at(at, Ev::ArbiterTimer);
        }
    }

    fn arbiter_action(&mut self, a: Action) {
        match a {
            Action::Spawn { id, role, max_requests, .. } => {
                if self.rng.chance(self.mix.fork_fail) {
                    self.log(|| format!("fault: fork of {id} fails"));
                    self.schedule_in(Duration::from_nanos(US), Ev::SpawnFailed(id));
                    return;
                }
                let as_of = self.store.load();
                let lane = match &mut self.timeline {
                    Some(t) => t.spawn(id, self.now),
                    None => 0,
                };
                let core = Worker::new(
                    WorkerConfig {
                        accept_mode: self.config.accept_mode,
                        timeout: self.config.pace(),
                        max_requests,
                        kind: self.kind,
                    },
                    self.now,
                );
                let cron = (role == Role::Cron).then(|| {
                    #[allow(unused_mut)]
                    let mut core = CronWorker::new(
                        CronConfig {
                            timeout: self.config.pace(),
                            max_jobs: max_requests,
                            max_idle: Duration::from_secs(1),
                            retry: Duration::from_millis(200),
                            lease: self.crons.as_ref().map_or(Duration::MAX, |c| c.lease),
                        },
                        self.now,
                    );
                    #[cfg(feature = "mutants")]
                    core.set_mutant(self.mutant);
                    CronProc { core, running: None }
                });
                if cron.is_none() {
                    self.checks().spawned(id, max_requests);
                }
                self.procs.insert(
                    id,
                    Proc {
                        core,
                        budget: max_requests,
                        started: false,
                        dead: None,
                        reap_wanted: false,
                        serving: None,
                        conns: Vec::new(),
                        draining: false,
                        next_conn: 0,
                        hung: false,
                        crash_at_done: false,
                        registry: Registry::new(self.db_version, as_of),
                        decoder: Decoder::new(),
                        to_arbiter_free: self.now,
                        to_worker_free: self.now,
                        in_flight: 0,
                        timer_at: None,
                        skew_ms: 0,
                        served: 0,
                        last_sent: self.now,
                        unreported: None,
                        lane,
                        cron,
                    },
                );
                let fork = Duration::from_nanos((200 + self.rng.up_to(2_000) as u64) * US);
                self.schedule_in(fork, Ev::Forked(id));
            }
            Action::Send { to, msg } => {
                // Every frame to a worker is an `ACCEPT:<socket>`.
                // Workers the arbiter may still dispatch to: alive, or dead and not yet reaped
                // (it learns of a death only from the reap).
                let unreaped = self.procs.len();
                self.checks().dispatched(to, unreaped);
                let d = self.delay();
                let Some(p) = self.procs.get_mut(&to) else { return };
                if p.dead.is_some() {
                    return;
                }
                let at = (self.now + d).max(p.to_worker_free);
                p.to_worker_free = at;
                self.schedule_at(at, Ev::ToWorker { to, msg });
            }
            Action::Kill { id, signal, .. } => {
                self.checks().leaving(id);
                if let Some(t) = &mut self.timeline
                    && let Some(p) = self.procs.get(&id)
                {
                    t.kill(p.lane, self.now, signal);
                }
                self.schedule_in(SIGNAL_DELAY, Ev::WorkerSignal(id, signal));
            }
            Action::Watch(s) => {
                self.listeners[usize::from(s.0)].watched = true;
                self.listener_changed(s);
            }
            Action::Unwatch(s) => self.listeners[usize::from(s.0)].watched = false,
            Action::Poll(s) => self.report_ready(s),
            Action::Reap => {
                let zombies: Vec<WorkerId> =
                    self.procs.iter().filter(|(_, p)| p.dead.is_some()).map(|(&id, _)| id).collect();
                for id in zombies {
                    let p = self.procs.get_mut(&id).expect("proc");
                    if p.in_flight == 0 {
                        self.reap_one(id);
                    } else {
                        // The runtime reads a dead worker's pipe to the end before reporting it.
                        p.reap_wanted = true;
                    }
                }
            }
            Action::Reexec => {
                let d = Duration::from_millis(10 + u64::from(self.rng.up_to(90)));
                self.schedule_in(d, Ev::ReexecEnded);
            }
            Action::ReopenLogs => {}
            Action::Exit { code, .. } => {
                self.arbiter_exited = Some(code);
                self.log(|| format!("arbiter exited with {code}"));
            }
        }
    }

    fn reap_one(&mut self, id: WorkerId) {
        let Some(p) = self.procs.remove(&id) else { return };
        self.checks().reaped(id);
        let status = p.dead.expect("dead");
        if let Some(s) = p.unreported {
            // The arbiter will hand this dispatch out again, but its accept was already tried:
            // the next one may find nothing, through no fault of the arbiter.
            self.checks().taken_by_the_dead(s);
        }
        self.arbiter_input(Input::Exited { id, status });
    }

    fn forked(&mut self, id: WorkerId) {
        let Some(p) = self.procs.get_mut(&id) else { return };
        if p.dead.is_some() {
            return;
        }
        p.started = true;
        if self.rng.chance(self.mix.boot_crash) {
            self.log(|| format!("fault: {id} dies while booting"));
            return self.die(id, ExitStatus::Code(1));
        }
        let now = self.now;
        if let Some(p) = self.procs.get_mut(&id) {
            match &mut p.cron {
                Some(c) => c.core.start(now),
                None => p.core.start(now),
            }
        }
        self.worker_actions(id);
    }

    fn die(&mut self, id: WorkerId, status: ExitStatus) {
        let Some(p) = self.procs.get_mut(&id) else { return };
        if p.dead.is_some() {
            return;
        }
        p.dead = Some(status);
        p.timer_at = None;
        if let Some(c) = &mut p.cron
            && c.running.take().is_some()
            && let Some(crons) = &mut self.crons
        {
            crons.monitor.died(id);
        }
        if p.serving.take().is_some() {
            self.tally.failed_killed += 1;
        }
        // Each open connection of an async worker loses its request under way.
        self.tally.failed_killed += p.conns.drain(..).count() as u64;
        let lane = p.lane;
        if let Some(t) = &mut self.timeline {
            t.exit(lane, self.now, status);
        }
        self.log(|| format!("{id} died {status:?}"));
        self.send_signal_later(Sig::Chld, Duration::ZERO);
    }

    /// The arbiter of `id`, a cron worker running a job, dies: for the arbiter that carries on,
    /// `id` is a worker lost (reaped as killed); the process itself runs on as an [`Orphan`],
    /// told to stop by the parent-death TERM.
    fn orphan(&mut self, id: WorkerId) {
        let Some(p) = self.procs.get_mut(&id) else { return };
        let Some(cron) = p.cron.take() else { return };
        let orphan = Orphan { cron, hung: p.hung, lane: p.lane };
        self.log(|| format!("fault: the arbiter of {id} dies mid-job; {id} runs on, orphaned"));
        self.die(id, ExitStatus::Signaled(9));
        self.orphans.insert(id, orphan);
        self.orphan_input(id, CronInput::Signal(WorkerSignal::Term));
    }

    fn orphan_job_done(&mut self, id: WorkerId, token: u64) {
        let Some(o) = self.orphans.get_mut(&id) else { return };
        if o.hung || o.cron.running.is_none_or(|r| r.token != token) {
            return;
        }
        o.cron.running = None;
        let ok = self.crons.as_mut().is_some_and(|c| !c.rng.chance(0.1));
        if let Some(c) = &mut self.crons {
            c.monitor.ended(id);
        }
        self.orphan_input(id, CronInput::JobDone { ok });
    }

    fn orphan_fence(&mut self, id: WorkerId, token: u64) {
        let Some(o) = self.orphans.get(&id) else { return };
        if o.cron.running.is_none_or(|r| r.token != token) {
            return;
        }
        self.log(|| format!("orphaned {id}'s job reaches its fence: the process exits"));
        if let Some(c) = &mut self.crons {
            c.monitor.died(id);
        }
        self.orphan_exit(id, herd_protocol::cron::EXIT_FENCED);
    }

    fn orphan_exit(&mut self, id: WorkerId, code: i32) {
        let Some(o) = self.orphans.remove(&id) else { return };
        if let Some(t) = &mut self.timeline {
            t.exit(o.lane, self.now, ExitStatus::Code(code));
        }
    }

    /// Feeds an orphan's core and carries out its actions: its frames go nowhere, its finish
    /// reaches the store like any other.
    fn orphan_input(&mut self, id: WorkerId, input: CronInput) {
        let now = self.now;
        let Some(o) = self.orphans.get_mut(&id) else { return };
        o.cron.core.handle(now, input);
        while let Some(a) = self.orphans.get_mut(&id).and_then(|o| o.cron.core.poll_action()) {
            let store_now = self.store_now();
            match a {
                CronAction::Send(_) => {}
                CronAction::Finish { claim, ok } => {
                    let Some(recorded) = self.finish(store_now, claim, ok) else { return };
                    let o = self.orphans.get_mut(&id).expect("orphan");
                    o.cron.core.handle(now, CronInput::Finished { recorded });
                }
                CronAction::Exit(code) => return self.orphan_exit(id, code),
                CronAction::Claim | CronAction::Run(_) => {
                    return self.fail(Violation::new(
                        herd_protocol::invariants::Invariant::CronExclusive,
                        format!("orphaned {id} asked for {a:?} after its TERM"),
                    ));
                }
            }
        }
    }

    /// Feeds a worker core. Workers run on the monotonic clock, as the runtime's do; clock jumps
    /// only skew the timestamp a worker reports in `ALIVE` (see [`World::worker_action`]).
    fn worker_input(&mut self, id: WorkerId, input: worker::Input) {
        let now = self.now;
        let Some(p) = self.procs.get_mut(&id) else { return };
        if p.dead.is_some() {
            return;
        }
        p.core.handle(now, input);
        self.worker_actions(id);
    }

    fn worker_actions(&mut self, id: WorkerId) {
        loop {
            let Some(p) = self.procs.get_mut(&id) else { return };
            if p.dead.is_some() {
                return;
            }
            if let Some(c) = &mut p.cron {
                let Some(a) = c.core.poll_action() else { break };
                self.cron_action(id, a);
                continue;
            }
            let Some(a) = p.core.poll_action() else { break };
            self.worker_action(id, a);
        }
        let Some(p) = self.procs.get_mut(&id) else { return };
        if p.dead.is_some() {
            return;
        }
        let t = match &p.cron {
            Some(c) => c.core.poll_timeout(),
            None => p.core.poll_timeout(),
        };
        if t != p.timer_at {
            p.timer_at = t;
            if let Some(t) = t {
                let at = t.max(self.now);
                p.timer_at = Some(at);
                self.schedule_at(at, Ev::WorkerTimer(id));
            }
        }
    }

    fn worker_action(&mut self, id: WorkerId, a: worker::Action) {
        if !matches!(a, worker::Action::Send(_)) {
            self.log(|| format!("{id} -> {a:?}"));
        }
        match a {
            worker::Action::Send(msg) => self.send_frame(id, msg),
            worker::Action::Accept(which) => {
                if which.is_some() {
                    self.procs.get_mut(&id).expect("proc").unreported = which;
                }
                let n = self.listeners.len();
                let start = self.rng.up_to(n as u32 - 1) as usize;
                let order: Vec<usize> = match which {
                    Some(s) => vec![usize::from(s.0)],
                    None => (0..n).map(|k| (start + k) % n).collect(),
                };
                let got = order.into_iter().find_map(|i| {
                    self.listeners.get_mut(i).and_then(|l| l.queue.pop_front()).map(|c| (i, c))
                });
                match got {
                    Some((i, conn)) => {
                        self.tally.longest_wait =
                            self.tally.longest_wait.max(self.now.saturating_since(conn.arrived));
                        let p = self.procs.get_mut(&id).expect("proc");
                        p.serving = Some(conn);
                        self.worker_input(id, worker::Input::Accepted(ListenerId(i as u16)));
                    }
                    None => {
                        if which.is_some() {
                            let mode = self.config.accept_mode;
                            self.checks().empty_accept(id, mode, which);
                        }
                        self.worker_input(id, worker::Input::AcceptEmpty);
                    }
                }
            }
            worker::Action::Serve(_) => match self.kind {
                WorkerKind::Sync => self.start_request(id, 0),
                WorkerKind::Async { .. } => {
                    let keep_alive = 1 + self.rng.up_to(3);
                    let p = self.procs.get_mut(&id).expect("proc");
                    p.serving = None;
                    let conn = p.next_conn;
                    p.next_conn += 1;
                    p.conns.push(AsyncConn { id: conn, requests_left: keep_alive });
                    self.start_request(id, conn);
                }
            },
            worker::Action::Drain => {
                let p = self.procs.get_mut(&id).expect("proc");
                p.draining = true;
            }
            worker::Action::Exit(code) => self.die(id, ExitStatus::Code(code)),
        }
    }

    /// A worker writes a frame to its pipe (maybe garbage, under that fault).
    fn send_frame(&mut self, id: WorkerId, msg: WorkerMsg) {
        let garbage = self.rng.chance(self.mix.garbage);
        let d = self.delay();
        let p = self.procs.get_mut(&id).expect("proc");
        // A worker's reported clock is its own: a jumped wall clock shows here only.
        let msg = match msg {
            WorkerMsg::Alive { timestamp } => {
                WorkerMsg::Alive { timestamp: timestamp.saturating_add_signed(p.skew_ms) }
            }
            other => other,
        };
        let frame = if garbage { b"\xffGARBAGE\n".to_vec() } else { msg.encode().as_bytes().to_vec() };
        let at = (self.now + d).max(p.to_arbiter_free);
        p.to_arbiter_free = at;
        p.in_flight += 1;
        p.last_sent = self.now;
        if garbage {
            self.log(|| format!("fault: {id} writes garbage"));
        }
        self.schedule_at(at, Ev::ToArbiter { from: id, frame });
    }

    fn cron_input(&mut self, id: WorkerId, input: CronInput) {
        let now = self.now;
        let Some(p) = self.procs.get_mut(&id) else { return };
        let Some(c) = &mut p.cron else { return };
        if p.dead.is_some() {
            return;
        }
        c.core.handle(now, input);
        self.worker_actions(id);
    }

    /// The store's clock: true time plus the jumps.
    fn store_now(&self) -> Instant {
        let skew = self.crons.as_ref().map_or(0, |c| c.skew);
        Instant(self.now.0.saturating_add_signed(skew))
    }

    fn cron_action(&mut self, id: WorkerId, a: CronAction) {
        if !matches!(a, CronAction::Send(_)) {
            self.log(|| format!("{id} -> {a:?}"));
        }
        let store_now = self.store_now();
        match a {
            CronAction::Send(msg) => self.send_frame(id, msg),
            CronAction::Claim => {
                let Some(c) = &mut self.crons else { return };
                let input = match c.table.claim(store_now, id.0, c.lease) {
                    Poll::Claimed(claim) => {
                        if let Err(v) = c.monitor.started(id, claim) {
                            return self.fail(v);
                        }
                        CronInput::Claimed(Some(claim), None)
                    }
                    Poll::Idle { next } => {
                        CronInput::Claimed(None, next.map(|t| t.saturating_since(store_now)))
                    }
                };
                let p = self.procs.get_mut(&id).expect("proc");
                if let (CronInput::Claimed(Some(claim), _), Some(c)) = (input, &mut p.cron) {
                    c.running = Some(claim);
                }
                self.cron_input(id, input);
            }
            CronAction::Run(claim) => {
                // The holder's fence, armed as the job starts (a hung job too: a signal).
                let fence = self.procs[&id].cron.as_ref().and_then(|c| c.core.timer(CronTimer::Fence));
                if let Some(at) = fence {
                    self.schedule_at(at, Ev::Fence(id, claim.token));
                }
                // A job takes up to half the timeout; under the hang fault some outlast the
                // timeout (killed, then retried) and some hang.
                let hang = self.rng.chance(self.mix.hang);
                let long = self.mix.hang > 0.0;
                let Some(c) = &mut self.crons else { return };
                let ms = self.config.pace().as_millis() as u64;
                let d = if long && c.rng.chance(0.05) {
                    Duration::from_millis(ms + 1 + c.rng.next_u64() % ms)
                } else {
                    Duration::from_millis(
                        1 + c.rng.next_u64() % (ms / 2).max(1) / [1, 100][c.rng.up_to(1) as usize],
                    )
                };
                if hang {
                    self.log(|| format!("fault: {id}'s cron job hangs"));
                    self.procs.get_mut(&id).expect("proc").hung = true;
                } else {
                    self.schedule_in(d, Ev::JobDone(id, claim.token));
                }
            }
            CronAction::Finish { claim, ok } => {
                let Some(recorded) = self.finish(store_now, claim, ok) else { return };
                self.cron_input(id, CronInput::Finished { recorded });
            }
            CronAction::Exit(code) => self.die(id, ExitStatus::Code(code)),
        }
    }

    /// A holder records its run in the store, watched by the monitor: whether the store took it
    /// (`None` after a violation, or without cron jobs).
    fn finish(&mut self, store_now: Instant, claim: Claim, ok: bool) -> Option<bool> {
        let c = self.crons.as_mut()?;
        let recorded = c.table.finish(store_now, &claim, ok).is_ok();
        if !recorded {
            c.monitor.refused();
        } else if let Err(v) = c.monitor.recorded(claim) {
            self.fail(v);
            return None;
        }
        Some(recorded)
    }

    /// A hung async worker: its event loop is blocked (a handler that never yields).
    fn loop_blocked(&self, p: &Proc) -> bool {
        p.hung && self.kind != WorkerKind::Sync
    }

    /// Starts a request on a worker's connection: the registry check, then the request, which
    /// ends (`RequestDone`), hangs, or crashes the worker at its end.
    fn start_request(&mut self, id: WorkerId, conn: u64) {
        let shared = self.store.load();
        let db = self.db_version;
        let signalled = self.signalled;
        let p = self.procs.get_mut(&id).expect("proc");
        let mut reloaded = false;
        let version = *p.registry.before_request(
            shared,
            || {
                reloaded = true;
                db
            },
            |_| {},
        );
        p.served += 1;
        let (served, budget) = (p.served, p.budget);
        if reloaded {
            self.tally.reloads += 1;
        }
        // An async worker learns its budget is spent when a request ends; requests already
        // started on its other connections still run: at most `connections - 1` more.
        let slack = match self.kind {
            WorkerKind::Sync => 0,
            WorkerKind::Async { connections } => connections - 1,
        };
        self.checks().serve(id, version, signalled, served, if budget > 0 { budget + slack } else { 0 });
        let hang = self.rng.chance(self.mix.hang);
        let crash = self.rng.chance(self.mix.crash);
        let d = Duration::from_nanos((100 + u64::from(self.rng.up_to(19_900))) * US);
        let p = self.procs.get_mut(&id).expect("proc");
        p.hung |= hang;
        p.crash_at_done |= crash;
        if let Some(t) = &mut self.timeline {
            t.request_start(p.lane, self.now, hang);
        }
        if hang && self.config.timeout.is_none() && self.phase == RunPhase::Safety {
            // Nothing would end a hung request while the server runs: a very slow one instead.
            let p = self.procs.get_mut(&id).expect("proc");
            p.hung = false;
            let (lo, hi) = UNTIMED_SLOW;
            let slow = lo + Duration::from_millis(self.rng.next_u64() % (hi - lo).as_millis() as u64);
            self.log(|| format!("fault: {id}'s request takes {slow:?} (no timeout)"));
            self.schedule_in(slow, Ev::RequestDone(id, conn));
        } else if hang {
            self.log(|| format!("fault: {id}'s request hangs"));
        } else {
            self.schedule_in(d, Ev::RequestDone(id, conn));
        }
    }

    /// Async: after a request, the connection carries the next one (keep-alive) or closes.
    fn next_request_or_close(&mut self, id: WorkerId, conn: u64) {
        let Some(p) = self.procs.get_mut(&id) else { return };
        if p.dead.is_some() {
            return;
        }
        let Some(i) = p.conns.iter().position(|c| c.id == conn) else { return };
        if p.conns[i].requests_left > 1 && !p.draining {
            p.conns[i].requests_left -= 1;
            self.start_request(id, conn);
        } else {
            p.conns.remove(i);
            self.tally.served += 1;
            self.worker_input(id, worker::Input::ConnectionClosed);
        }
    }
}
