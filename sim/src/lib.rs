//! # herd-sim: a seeded deterministic simulator of a whole herd server
//!
//! One seed drives one PRNG that makes every choice of a run: the server's configuration, the
//! fault mix (swarm testing), client arrivals, handler durations, fork latencies, pipe delays.
//! The world runs the real cores of `herd-protocol` (arbiter, workers, signal queue, registry
//! coherence, shared-memory sequence store) against a simulated OS, in virtual time.
//!
//! A run has three phases, as TigerBeetle's VOPR: **safety** (faults on, every checker after
//! every event), **liveness** (faults off and no new clients; within a bound every queued
//! connection is served, the worker count is back at the target, every dead child reaped), then
//! **stop** (TERM; the arbiter must exit cleanly within `graceful_timeout`).
//!
//! A violation is shrunk (fault kinds switched off, the run shortened) and reported with the
//! exact command that replays it.

pub mod check;
pub mod faults;
pub mod timeline;
pub mod trace;
pub mod world;

use herd_protocol::arbiter::AcceptMode;
use herd_protocol::invariants::{Invariant, Violation};
use std::time::Duration;

/// How to run one seed.
#[derive(Clone, Debug)]
pub struct Options {
    /// The seed.
    pub seed: u64,
    /// Length of the safety phase (simulated).
    pub duration: Duration,
    /// Fault kinds allowed (bit per `faults::FaultKind`).
    pub faults: u32,
    /// Record a trace.
    pub trace: bool,
    /// Record a timeline.
    pub timeline: bool,
    /// A re-introduced bug (`mutants` feature).
    #[cfg(feature = "mutants")]
    pub mutant: Option<herd_protocol::mutants::Mutant>,
}

impl Options {
    /// Default options for `seed`: ten simulated minutes, every fault kind allowed.
    pub fn new(seed: u64) -> Self {
        Options {
            seed,
            duration: Duration::from_secs(600),
            faults: faults::FaultKind::ALL_MASK,
            trace: false,
            timeline: false,
            #[cfg(feature = "mutants")]
            mutant: None,
        }
    }

    /// The command that replays this run.
    pub fn replay_command(&self) -> String {
        #[allow(unused_mut)]
        let mut cmd = format!(
            "cargo run --release -p herd-sim -- --seed {} --duration {} --faults {:#x} --trace",
            self.seed,
            self.duration.as_secs_f64(),
            self.faults
        );
        #[cfg(feature = "mutants")]
        if let Some(m) = self.mutant {
            cmd = cmd.replace("-p herd-sim", "-p herd-sim --features mutants") + &format!(" --mutant {m:?}");
        }
        cmd
    }
}

/// The result of one run.
#[derive(Debug)]
pub struct Outcome {
    /// The seed.
    pub seed: u64,
    /// Events processed.
    pub events: u64,
    /// Simulated time at the end.
    pub sim_time: Duration,
    /// The first violation, if any.
    pub violation: Option<Violation>,
    /// The trace, if recorded.
    pub trace: Vec<String>,
    /// Counters.
    pub tally: world::Tally,
    /// The fault kinds that were on.
    pub faults: String,
    /// The accept mode of the run.
    pub mode: AcceptMode,
    /// The timeline, if recorded.
    pub timeline: Option<timeline::Timeline>,
}

/// Runs one seed.
pub fn run(opts: &Options) -> Outcome {
    world::World::new(opts).run(opts.seed)
}

/// A violation, shrunk: the smallest run found that still breaks the same invariant.
#[derive(Debug)]
pub struct Shrunk {
    /// The options of the smallest failing run.
    pub options: Options,
    /// Its outcome.
    pub outcome: Outcome,
}

/// Shrinks a failing run: switches fault kinds off one at a time and halves the duration while
/// the same invariant still breaks.
pub fn shrink(opts: &Options, invariant: Invariant) -> Shrunk {
    let fails = |o: &Options| {
        let out = run(o);
        let same = out.violation.as_ref().is_some_and(|v| v.invariant == invariant);
        (same, out)
    };
    let mut best = opts.clone();
    for kind in faults::FaultKind::ALL {
        let bit = 1 << kind as u32;
        if best.faults & bit == 0 {
            continue;
        }
        let mut o = best.clone();
        o.faults &= !bit;
        if fails(&o).0 {
            best = o;
        }
    }
    while best.duration > Duration::from_secs(1) {
        let mut o = best.clone();
        o.duration = Duration::from_secs_f64((best.duration.as_secs_f64() / 2.0).max(1.0).floor());
        if !fails(&o).0 {
            break;
        }
        best = o;
    }
    best.trace = true;
    let outcome = run(&best);
    Shrunk { options: best, outcome }
}

/// Totals of a campaign.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    /// Seeds run.
    pub seeds: u64,
    /// Events processed.
    pub events: u64,
    /// Simulated time.
    pub sim_time: Duration,
    /// Violations per invariant.
    pub violations: std::collections::BTreeMap<&'static str, u64>,
    /// Failing seeds (first few).
    pub failing: Vec<(u64, Violation)>,
    /// Requests served.
    pub served: u64,
    /// Requests failed with a killed worker.
    pub failed_killed: u64,
    /// Runs the arbiter halted after a row of boot failures.
    pub halts: u64,
}

impl Summary {
    /// Adds one outcome.
    pub fn add(&mut self, o: &Outcome) {
        self.seeds += 1;
        self.events += o.events;
        self.sim_time += o.sim_time;
        self.served += o.tally.served;
        self.failed_killed += o.tally.failed_killed;
        self.halts += o.tally.halts;
        if let Some(v) = &o.violation {
            *self.violations.entry(v.invariant.name()).or_default() += 1;
            if self.failing.len() < 20 {
                self.failing.push((o.seed, v.clone()));
            }
        }
    }

    /// Merges another summary.
    pub fn merge(&mut self, other: Summary) {
        self.seeds += other.seeds;
        self.events += other.events;
        self.sim_time += other.sim_time;
        self.served += other.served;
        self.halts += other.halts;
        self.failed_killed += other.failed_killed;
        for (k, v) in other.violations {
            *self.violations.entry(k).or_default() += v;
        }
        self.failing.extend(other.failing);
        self.failing.sort_by_key(|(s, _)| *s);
        self.failing.truncate(20);
    }

    /// Total violations.
    pub fn total_violations(&self) -> u64 {
        self.violations.values().sum()
    }
}

/// Runs seeds `from..to` on `threads` threads, calling `progress` after each seed.
pub fn campaign(from: u64, to: u64, threads: usize, base: &Options, progress: &(dyn Fn() + Sync)) -> Summary {
    let next = std::sync::atomic::AtomicU64::new(from);
    let summaries: Vec<Summary> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads.max(1))
            .map(|_| {
                s.spawn(|| {
                    let mut sum = Summary::default();
                    loop {
                        let seed = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if seed >= to {
                            break;
                        }
                        let o = Options { seed, ..base.clone() };
                        sum.add(&run(&o));
                        progress();
                    }
                    sum
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("campaign thread")).collect()
    });
    let mut total = Summary::default();
    for s in summaries {
        total.merge(s);
    }
    total
}
