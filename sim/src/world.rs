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

mod arbiter;
mod cron;
mod event;
mod workers;

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
}
