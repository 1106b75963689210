//! Exhaustive exploration of the cron claim protocol: cron worker cores, the job table (the
//! store) and its clock, the arbiter's timeout kill and the holder's own fence, with a budget of
//! faults (a holder killed at any point, a holder orphaned by its arbiter's death — nobody kills
//! it any more, and the parent-death TERM lets its job run on —, the store's clock jumping
//! forward past a lease or back).
//!
//! Time is discrete: instantaneous steps (a worker's store operation) happen before time passes;
//! time then advances to the next instant anything can happen (a worker's wake-up, a job
//! overrunning into its arbiter kill), up to a horizon. A job may return at any instant before
//! its kill. The graph is acyclic (each step consumes a pending action, a fault, or time), so
//! every path ends in a terminal state, and:
//!
//! - **cron-exclusive** is checked on every transition by [`CronMonitor`];
//! - **cron-progress** is checked at every terminal state: whatever the schedule, every job was
//!   run and every orphaned run retried.

use herd_protocol::arbiter::WorkerId;
use herd_protocol::cron::{
    Claim, CronAction, CronConfig, CronInput, CronMonitor, CronWorker, Poll, Table, Timer, lease,
};
use herd_protocol::invariants::Violation;
use herd_protocol::time::Instant;
use herd_protocol::worker::WorkerSignal;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

const S: Duration = Duration::from_secs(1);

/// What to explore.
#[derive(Clone, Debug)]
pub struct CronBounds {
    /// Cron workers (each respawned at once when it dies, as the arbiter does).
    pub workers: u32,
    /// Jobs, each every `interval`, first due at 0.
    pub jobs: u32,
    /// The jobs' interval.
    pub interval: Duration,
    /// Faults in all: kills of a worker, store clock jumps.
    pub faults: u32,
    /// Explore until the true clock reaches this.
    pub horizon: Duration,
    /// The lease claims take; `None`: the runtime's, [`lease`] of the timeouts. (A shorter one
    /// must be caught: the teeth of this model.)
    pub lease: Option<Duration>,
    /// Holders do not fence themselves (the teeth of the fence: an orphan's job then overlaps
    /// the next holder's run).
    pub no_fence: bool,
}

impl Default for CronBounds {
    fn default() -> Self {
        CronBounds {
            workers: 2,
            jobs: 1,
            interval: S * 3,
            faults: 1,
            horizon: S * 10,
            lease: None,
            no_fence: false,
        }
    }
}

const TIMEOUT: Duration = Duration::from_secs(2);
const GRACE: Duration = Duration::from_secs(1);

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Proc {
    id: WorkerId,
    core: CronWorker,
    pending: VecDeque<CronAction>,
    /// The job it runs and when it started.
    running: Option<(Claim, Instant)>,
    /// Its arbiter died: nobody kills it, nobody respawns it.
    orphan: bool,
    /// Exited or killed as an orphan: nothing more happens to it.
    gone: bool,
}

/// One state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CronState {
    now: Instant,
    skew: i64,
    table: Table,
    procs: Vec<Proc>,
    monitor: CronMonitor,
    next_id: u64,
    faults: u32,
    lease: Duration,
    fence: bool,
}

/// A transition, for traces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CronStep {
    /// Worker `i` carries out its next action.
    Act(usize),
    /// Worker `i`'s job returns.
    Done(usize),
    /// Time passes to the next instant something is due.
    Advance,
    /// Fault: worker `i` is SIGKILLed (and respawned).
    Kill(usize),
    /// Fault: worker `i`'s arbiter dies (SIGKILL): the parent-death TERM reaches it.
    Orphan(usize),
    /// Fault: the store's clock jumps forward by a lease.
    JumpForward,
    /// Fault: the store's clock jumps back by a lease.
    JumpBack,
}

/// What the exploration found.
#[derive(Debug)]
pub struct CronReport {
    /// Distinct states.
    pub states: usize,
    /// Transitions.
    pub transitions: usize,
    /// Terminal states (each checked for progress).
    pub terminals: usize,
    /// The first violation and the shortest trace to it.
    pub violation: Option<(Violation, Vec<CronStep>)>,
}

impl CronState {
    /// The initial state: every worker just started, every job due at 0.
    pub fn initial(b: &CronBounds) -> Self {
        let mut table = Table::new();
        for _ in 0..b.jobs {
            table.add(b.interval, Instant::ZERO).expect("interval above zero");
        }
        let mut s = CronState {
            now: Instant::ZERO,
            skew: 0,
            table,
            procs: Vec::new(),
            monitor: CronMonitor::new(),
            next_id: 0,
            faults: b.faults,
            lease: b.lease.unwrap_or(lease(TIMEOUT, TIMEOUT, GRACE)),
            fence: !b.no_fence,
        };
        for _ in 0..b.workers {
            let p = s.fork();
            s.procs.push(p);
        }
        s
    }

    fn fork(&mut self) -> Proc {
        // The lease the worker believes its claims take: the runtime's, whatever the store does.
        let config = CronConfig {
            timeout: TIMEOUT,
            max_jobs: 0,
            max_idle: S,
            retry: S,
            lease: lease(TIMEOUT, TIMEOUT, GRACE),
        };
        let mut core = CronWorker::new(config, self.now);
        core.start(self.now);
        let pending = std::iter::from_fn(|| core.poll_action()).collect();
        self.next_id += 1;
        Proc { id: WorkerId(self.next_id - 1), core, pending, running: None, orphan: false, gone: false }
    }

    fn store_now(&self) -> Instant {
        Instant(self.now.0.saturating_add_signed(self.skew))
    }

    /// When the arbiter kills a job that has not returned: its `ALIVE` went out as it started.
    fn kill_at(start: Instant) -> Instant {
        start + TIMEOUT + GRACE
    }

    /// When a running job's process ends against its will: the arbiter's kill (unless it is
    /// dead) or the holder's own fence, whichever comes first.
    fn end_at(&self, p: &Proc) -> Option<Instant> {
        let (_, start) = p.running?;
        let kill = (!p.orphan).then(|| Self::kill_at(start));
        let fence = p.core.timer(Timer::Fence).filter(|_| self.fence);
        kill.into_iter().chain(fence).min()
    }

    fn next_instant(&self) -> Option<Instant> {
        self.procs
            .iter()
            .filter(|p| !p.gone)
            .filter_map(|p| if p.running.is_some() { self.end_at(p) } else { p.core.poll_timeout() })
            .min()
    }

    fn enabled(&self, b: &CronBounds) -> Vec<CronStep> {
        let mut steps = Vec::new();
        let mut instant = false;
        for (i, p) in self.procs.iter().enumerate() {
            if p.gone {
                continue;
            }
            if !p.pending.is_empty() {
                steps.push(CronStep::Act(i));
                instant = true;
            }
            if p.running.is_some() && p.pending.is_empty() {
                steps.push(CronStep::Done(i));
            }
            if self.faults > 0 {
                steps.push(CronStep::Kill(i));
                if !p.orphan {
                    steps.push(CronStep::Orphan(i));
                }
            }
        }
        if self.faults > 0 {
            steps.push(CronStep::JumpForward);
            steps.push(CronStep::JumpBack);
        }
        if !instant && self.next_instant().is_some_and(|t| t <= Instant::ZERO + b.horizon) {
            steps.push(CronStep::Advance);
        }
        steps
    }

    fn feed(&mut self, i: usize, input: CronInput) {
        let now = self.now;
        let p = &mut self.procs[i];
        p.core.handle(now, input);
        p.pending.extend(std::iter::from_fn(|| p.core.poll_action()));
    }

    fn kill(&mut self, i: usize) {
        // It may hold a claim whose run has not started yet: the monitor knows.
        self.monitor.died(self.procs[i].id);
        self.end(i);
    }

    /// Worker `i`'s process is over: respawned by its arbiter, or gone with it.
    fn end(&mut self, i: usize) {
        if self.procs[i].orphan {
            let p = &mut self.procs[i];
            p.gone = true;
            p.running = None;
            p.pending.clear();
        } else {
            self.procs[i] = self.fork();
        }
    }

    fn apply(&mut self, step: CronStep) -> Result<(), Violation> {
        match step {
            CronStep::Act(i) => {
                let action = self.procs[i].pending.pop_front().expect("pending");
                let store_now = self.store_now();
                let id = self.procs[i].id;
                match action {
                    // Heartbeats matter only through the arbiter's kill, modelled by `kill_at`.
                    CronAction::Send(_) => {}
                    CronAction::Claim => match self.table.claim(store_now, id.0, self.lease) {
                        Poll::Claimed(c) => {
                            self.monitor.started(id, c)?;
                            self.feed(i, CronInput::Claimed(Some(c), None));
                        }
                        Poll::Idle { next } => {
                            let next_in = next.map(|t| t.saturating_since(store_now));
                            self.feed(i, CronInput::Claimed(None, next_in));
                        }
                    },
                    CronAction::Run(c) => self.procs[i].running = Some((c, self.now)),
                    CronAction::Finish { claim, ok } => {
                        let recorded = self.table.finish(store_now, &claim, ok).is_ok();
                        if recorded {
                            self.monitor.recorded(claim)?;
                        } else {
                            self.monitor.refused();
                        }
                        self.feed(i, CronInput::Finished { recorded });
                    }
                    CronAction::Exit(_) => self.end(i),
                }
            }
            CronStep::Done(i) => {
                let id = self.procs[i].id;
                self.procs[i].running = None;
                self.monitor.ended(id);
                self.feed(i, CronInput::JobDone { ok: true });
            }
            CronStep::Advance => {
                let t = self.next_instant().expect("something is due");
                self.now = self.now.max(t);
                for i in 0..self.procs.len() {
                    if self.procs[i].gone {
                        continue;
                    }
                    match self.procs[i].running {
                        Some(_) if self.end_at(&self.procs[i]).is_some_and(|t| t <= self.now) => self.kill(i),
                        Some(_) => {}
                        None => {
                            let now = self.now;
                            let p = &mut self.procs[i];
                            p.core.handle_timeout(now);
                            p.pending.extend(std::iter::from_fn(|| p.core.poll_action()));
                        }
                    }
                }
            }
            CronStep::Kill(i) => {
                self.faults -= 1;
                self.kill(i);
            }
            CronStep::Orphan(i) => {
                self.faults -= 1;
                self.procs[i].orphan = true;
                self.feed(i, CronInput::Signal(WorkerSignal::Term));
            }
            CronStep::JumpForward => {
                self.faults -= 1;
                self.skew += self.lease.as_nanos() as i64;
                self.monitor.jumped_forward();
            }
            CronStep::JumpBack => {
                self.faults -= 1;
                self.skew -= self.lease.as_nanos() as i64;
            }
        }
        Ok(())
    }

    fn progress(&self) -> Result<(), Violation> {
        // Measured on the store's clock, a held job is not due before its lease ends; after that
        // (or its next call) a worker claims it within an idle poll — plus whatever a forward
        // jump just skipped.
        let slack = S * 2 + Duration::from_nanos(self.skew.max(0) as u64);
        self.monitor.progress(&self.table, self.store_now(), slack)
    }
}

/// Explores every state within `b`.
pub fn explore_cron(b: &CronBounds) -> CronReport {
    let init = CronState::initial(b);
    let mut index: HashMap<CronState, u32> = HashMap::new();
    let mut parent: Vec<(u32, Option<CronStep>)> = vec![(0, None)];
    let mut frontier: VecDeque<(u32, CronState)> = VecDeque::new();
    index.insert(init.clone(), 0);
    frontier.push_back((0, init));
    let (mut transitions, mut terminals) = (0, 0);
    let trace = crate::trace::<CronStep>;
    while let Some((from, s)) = frontier.pop_front() {
        let steps = s.enabled(b);
        if steps.is_empty() {
            terminals += 1;
            if let Err(v) = s.progress() {
                return CronReport {
                    states: parent.len(),
                    transitions,
                    terminals,
                    violation: Some((v, trace(&parent, from, None))),
                };
            }
        }
        for step in steps {
            transitions += 1;
            let mut t = s.clone();
            if let Err(v) = t.apply(step) {
                return CronReport {
                    states: parent.len(),
                    transitions,
                    terminals,
                    violation: Some((v, trace(&parent, from, Some(step)))),
                };
            }
            if !index.contains_key(&t) {
                let i = parent.len() as u32;
                index.insert(t.clone(), i);
                parent.push((from, Some(step)));
                frontier.push_back((i, t));
            }
        }
    }
    CronReport { states: parent.len(), transitions, terminals, violation: None }
}
