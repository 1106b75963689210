//! Cron: scheduled jobs run by several cron worker processes, each due run exactly once.
//!
//! Three sans-IO parts:
//! - [`Table`]: the job table's rules — what a store does on claim and finish. The shared-memory
//!   store runs exactly this code under a lock; the PostgreSQL store runs the same rules in SQL
//!   (`FOR NO KEY UPDATE SKIP LOCKED`); the simulator and the explorer drive it directly.
//! - [`CronWorker`]: a cron worker's loop: heartbeat, claim, run, finish, recycle, stop.
//! - [`CronMonitor`]: the two invariants, checked from outside ([`Invariant::CronExclusive`],
//!   [`Invariant::CronProgress`]).
//!
//! # Leases and fencing
//!
//! A claim takes a due job's lease until `now + lease` by the store's clock, with a fencing token
//! one above the job's last. Only the holder of the job's current token may finish it; finishing
//! moves `next_call` forward past `now` by whole intervals (missed runs fold into one, as Odoo does
//! without `doall`), whether the run succeeded or failed. A holder that dies leaves its lease to
//! expire; the job is then claimable again with a new token — it is retried, and the dead holder's
//! token can never finish it.
//!
//! The runtime makes the lease longer than the arbiter needs to kill a silent worker
//! (`timeout + kill_grace`): a cron worker does not heartbeat while its job runs, so a holder is
//! dead before its lease expires and a job never runs twice at once. Only a store clock that jumps
//! forward can expire a live holder's lease; then two holders may run the job at once, and fencing
//! makes sure only the newer one's finish counts.

use crate::arbiter::WorkerId;
use crate::invariants::{Invariant, Violation};
use crate::message::{ByeReason, WorkerMsg};
use crate::time::Instant;
use crate::worker::{EXIT_OK, WorkerSignal};
use core::fmt;
use core::time::Duration;
use std::collections::{BTreeMap, VecDeque};

/// A job's index in its table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct JobId(pub u32);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "job{}", self.0)
    }
}

/// A granted claim: run `job` for its `slot`, holding fencing `token` until `until`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Claim {
    /// The job.
    pub job: JobId,
    /// The fencing token; only the job's current token may finish it.
    pub token: u64,
    /// The scheduled time being run (the job's `next_call` when claimed), store clock.
    pub slot: Instant,
    /// The lease's end, store clock.
    pub until: Instant,
}

/// One job's row.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Job {
    /// Time between runs.
    pub interval: Duration,
    /// When it is next due, store clock.
    pub next_call: Instant,
    /// The last fencing token handed out.
    pub token: u64,
    /// The current lease: holder and end, store clock.
    pub lease: Option<(u64, Instant)>,
    /// Runs finished.
    pub runs: u64,
    /// Of those, runs that failed.
    pub failures: u64,
}

/// What a claim found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Poll {
    /// A due job, now held.
    Claimed(Claim),
    /// Nothing is due; something may be at this time (store clock).
    Idle {
        /// The earliest `next_call` or lease end, if there is any job.
        next: Option<Instant>,
    },
}

/// Why a store refused an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum CronError {
    /// The job was claimed again since this claim was granted: the holder's token is stale.
    #[error("{job}: token {held} is stale (the job was claimed again)")]
    Stale {
        /// The job.
        job: JobId,
        /// The token of the refused claim.
        held: u64,
    },
    /// No such job.
    #[error("{0}: no such job")]
    NoSuchJob(JobId),
    /// A job needs an interval above zero.
    #[error("a job's interval must be greater than zero")]
    ZeroInterval,
}

/// The job table and its rules (see the module documentation).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Table {
    jobs: Vec<Job>,
}

impl Table {
    /// An empty table.
    pub fn new() -> Self {
        Table::default()
    }

    /// A table holding these rows (a store's decoded copy).
    pub fn from_jobs(jobs: Vec<Job>) -> Self {
        Table { jobs }
    }

    /// Adds a job first due at `first_call`.
    pub fn add(&mut self, interval: Duration, first_call: Instant) -> Result<JobId, CronError> {
        if interval.is_zero() {
            return Err(CronError::ZeroInterval);
        }
        self.jobs.push(Job { interval, next_call: first_call, token: 0, lease: None, runs: 0, failures: 0 });
        Ok(JobId(self.jobs.len() as u32 - 1))
    }

    /// The rows.
    pub fn jobs(&self) -> &[Job] {
        &self.jobs
    }

    /// Claims the job due longest (lowest id among equals) whose lease is free or expired.
    pub fn claim(&mut self, now: Instant, holder: u64, lease: Duration) -> Poll {
        let due = self
            .jobs
            .iter()
            .enumerate()
            .filter(|(_, j)| j.next_call <= now && j.lease.is_none_or(|(_, until)| until <= now))
            .min_by_key(|(i, j)| (j.next_call, *i))
            .map(|(i, _)| i);
        let Some(i) = due else {
            let next = self
                .jobs
                .iter()
                .map(|j| match j.lease {
                    Some((_, until)) => until.max(j.next_call),
                    None => j.next_call,
                })
                .min();
            return Poll::Idle { next };
        };
        let j = &mut self.jobs[i];
        j.token += 1;
        let until = now + lease;
        j.lease = Some((holder, until));
        Poll::Claimed(Claim { job: JobId(i as u32), token: j.token, slot: j.next_call, until })
    }

    /// Finishes a run: only the current token may. The lease is released and `next_call` moves
    /// past `now` by whole intervals. Returns the new `next_call`.
    pub fn finish(&mut self, now: Instant, claim: &Claim, ok: bool) -> Result<Instant, CronError> {
        let j = self.jobs.get_mut(claim.job.0 as usize).ok_or(CronError::NoSuchJob(claim.job))?;
        if j.token != claim.token || j.lease.is_none() {
            return Err(CronError::Stale { job: claim.job, held: claim.token });
        }
        j.lease = None;
        j.runs += 1;
        if !ok {
            j.failures += 1;
        }
        j.next_call = next_after(j.next_call, j.interval, now);
        Ok(j.next_call)
    }
}

/// The lease a claim takes: longer than the arbiter can let a silent holder live. A cron worker's
/// last `ALIVE` before a claim is at most `timeout / 2` old, the arbiter kills it for silence
/// `timeout` after that (or, while stopping, at the stop's end, `graceful_timeout` on), and the
/// hard kill follows `kill_grace` later; a whole `timeout` more is the margin.
pub fn lease(timeout: Duration, graceful_timeout: Duration, kill_grace: Duration) -> Duration {
    timeout + timeout.max(graceful_timeout) + kill_grace
}

/// How long after it asked for a claim a holder fences itself: its job is stopped (the process
/// exits with [`EXIT_FENCED`]) before the lease can end, whether or not an arbiter is left to
/// kill it. The lease counts from when the store took the claim, which is after the worker asked;
/// the eighth left over covers a store clock up to 12% faster than the worker's and the exit
/// itself.
pub fn fence_after(lease: Duration) -> Duration {
    lease - lease / 8
}

/// Exit code of a cron worker that fenced itself (128 + SIGALRM, the signal its runtime uses).
pub const EXIT_FENCED: i32 = 142;

/// The first `from + k * interval` (k >= 1) after `now`.
pub fn next_after(from: Instant, interval: Duration, now: Instant) -> Instant {
    let step = interval.as_nanos().max(1) as u64;
    if from > now {
        return from + interval;
    }
    let k = (now.0 - from.0) / step + 1;
    Instant(from.0.saturating_add(k.saturating_mul(step)))
}

/// Shortest sleep between two claims that found nothing.
pub const MIN_IDLE: Duration = Duration::from_millis(10);

/// A cron worker's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CronConfig {
    /// The arbiter's silence timeout; heartbeats go out at least every half of it.
    pub timeout: Duration,
    /// Jobs to run before recycling; 0 = unlimited (`--max-requests`).
    pub max_jobs: u32,
    /// Longest sleep between two claims, so new jobs and clock changes are noticed.
    pub max_idle: Duration,
    /// Wait after the store failed before trying again.
    pub retry: Duration,
    /// The lease its claims take ([`lease`]): a job still running [`fence_after`] it is stopped.
    pub lease: Duration,
}

/// Something that happened to a cron worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum CronInput {
    /// The answer to [`CronAction::Claim`]. `next_in` is how long until something may be due,
    /// measured on the store's clock (the worker adds it to its own).
    Claimed(Option<Claim>, Option<Duration>),
    /// The store could not be reached for a claim or a finish.
    StoreFailed,
    /// The job of [`CronAction::Run`] returned.
    JobDone {
        /// It succeeded.
        ok: bool,
    },
    /// The answer to [`CronAction::Finish`]: the store took it, or refused it as stale.
    Finished {
        /// The store recorded the run.
        recorded: bool,
    },
    /// A signal, at a loop point.
    Signal(WorkerSignal),
}

/// What a cron worker does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum CronAction {
    /// Write a frame to the arbiter.
    Send(WorkerMsg),
    /// Ask the store for a due job; answer with [`CronInput::Claimed`] or
    /// [`CronInput::StoreFailed`].
    Claim,
    /// Run the job (no heartbeat meanwhile: the arbiter's timeout bounds it); answer
    /// [`CronInput::JobDone`].
    Run(Claim),
    /// Record the run in the store; answer [`CronInput::Finished`] or [`CronInput::StoreFailed`].
    Finish {
        /// The claim.
        claim: Claim,
        /// Whether the job succeeded.
        ok: bool,
    },
    /// Exit the process with this code.
    Exit(i32),
}

/// Where a cron worker is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CronState {
    /// Not started.
    Booting,
    /// Sleeping until the next claim.
    Idle,
    /// A claim is under way.
    Claiming,
    /// A job runs.
    Running(Claim),
    /// A finish is under way.
    Finishing(Claim),
    /// Exit was emitted.
    Exited,
}

/// A deadline the cron worker core acts on (its timer table; see docs/architecture.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// `timeout / 2` since its last `ALIVE`, while idle: send `ALIVE`.
    Heartbeat,
    /// The store said when something may next be due (or a retry after a store error): claim.
    Claim,
    /// While a job runs: [`fence_after`] the lease since the claim was asked for, the job is
    /// stopped and the process exits ([`EXIT_FENCED`]) — a holder never outlives its lease, even
    /// with its arbiter dead (then nobody else would kill it). A driver blocked in the job
    /// enforces it with an OS timer.
    Fence,
}

/// The cron worker core. Same driving rules as [`crate::worker::Worker`]: `start`, then
/// `handle`/`handle_timeout`, each followed by draining `poll_action`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CronWorker {
    config: CronConfig,
    state: CronState,
    now: Instant,
    last_alive: Instant,
    claim_at: Instant,
    /// When the last claim was asked for.
    claimed_at: Instant,
    done: u32,
    stopping: bool,
    actions: VecDeque<CronAction>,
    #[cfg(feature = "mutants")]
    mutant: Option<crate::mutants::Mutant>,
}

impl CronWorker {
    /// A cron worker, not started.
    pub fn new(config: CronConfig, now: Instant) -> Self {
        CronWorker {
            config,
            state: CronState::Booting,
            now,
            last_alive: now,
            claim_at: now,
            claimed_at: now,
            done: 0,
            stopping: false,
            actions: VecDeque::new(),
            #[cfg(feature = "mutants")]
            mutant: None,
        }
    }

    /// Re-introduces a bug of docs/bugs.md in this instance (B28 only; the `mutants` feature).
    #[cfg(feature = "mutants")]
    pub fn set_mutant(&mut self, mutant: Option<crate::mutants::Mutant>) {
        self.mutant = mutant;
    }

    /// B28 (no fence) re-introduced in this instance.
    #[cfg(feature = "mutants")]
    fn b28(&self) -> bool {
        self.mutant == Some(crate::mutants::Mutant::B28)
    }

    /// Its configuration.
    pub fn config(&self) -> &CronConfig {
        &self.config
    }

    /// Where it is.
    pub fn state(&self) -> CronState {
        self.state
    }

    /// Jobs run so far.
    pub fn done(&self) -> u32 {
        self.done
    }

    /// The next action.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<CronAction> {
        self.actions.pop_front()
    }

    /// When [`CronWorker::handle_timeout`] is due: the earliest of [`CronWorker::timers`].
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers().map(|(_, at)| at).min()
    }

    /// When `timer` is due, if it is pending: the heartbeat and the claim only while idle (a job
    /// under way sends nothing, so the arbiter's timeout bounds it; a store call under way has its
    /// own answer), the fence only while a job runs.
    pub fn timer(&self, timer: Timer) -> Option<Instant> {
        match (timer, self.state) {
            (Timer::Heartbeat, CronState::Idle) => Some(self.last_alive + self.config.timeout / 2),
            (Timer::Claim, CronState::Idle) => Some(self.claim_at),
            #[cfg(feature = "mutants")]
            (Timer::Fence, CronState::Running(_)) if self.b28() => None,
            (Timer::Fence, CronState::Running(_)) => Some(self.claimed_at + fence_after(self.config.lease)),
            _ => None,
        }
    }

    /// Every pending timer with its deadline; [`CronWorker::handle_timeout`] fires the due ones
    /// in this order.
    pub fn timers(&self) -> impl Iterator<Item = (Timer, Instant)> + '_ {
        [Timer::Heartbeat, Timer::Claim, Timer::Fence]
            .into_iter()
            .filter_map(|t| self.timer(t).map(|at| (t, at)))
    }

    /// After fork: `ALIVE` (it booted), then the first claim.
    pub fn start(&mut self, now: Instant) {
        self.now = self.now.max(now);
        if self.state != CronState::Booting {
            return;
        }
        self.alive();
        self.claim();
    }

    /// Fires every timer due at `now`: heartbeat, then claim.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        let due: Vec<Timer> = self.timers().filter(|&(_, at)| at <= self.now).map(|(t, _)| t).collect();
        for t in due {
            // An earlier timer of this pass may have ended this one (nothing does today).
            if self.timer(t).is_some_and(|at| at <= self.now) {
                match t {
                    Timer::Heartbeat => self.alive(),
                    Timer::Claim => self.claim(),
                    Timer::Fence => {
                        // The job is abandoned (its run is retried once the lease ends): no
                        // finish, no goodbye, the process just ends.
                        self.state = CronState::Exited;
                        self.actions.push_back(CronAction::Exit(EXIT_FENCED));
                    }
                }
            }
        }
    }

    /// One input.
    pub fn handle(&mut self, now: Instant, input: CronInput) {
        self.now = self.now.max(now);
        match (input, self.state) {
            (_, CronState::Exited) => {}
            (CronInput::Signal(WorkerSignal::Quit), _) => self.exit(ByeReason::Stop),
            (CronInput::Signal(WorkerSignal::Term), CronState::Idle | CronState::Booting) => {
                self.exit(ByeReason::Stop)
            }
            // Finish what is under way, then stop.
            (CronInput::Signal(WorkerSignal::Term), _) => self.stopping = true,
            (CronInput::Claimed(Some(claim), _), CronState::Claiming) => {
                // The job gets (nearly) the whole timeout: the arbiter hears from it right before.
                self.alive_if_stale();
                self.state = CronState::Running(claim);
                self.actions.push_back(CronAction::Run(claim));
            }
            (CronInput::Claimed(None, next_in), CronState::Claiming) => {
                // Never a busy loop, whatever the store says (a row another process is claiming
                // right now is skipped, yet may look due).
                let wait = next_in.map_or(self.config.max_idle, |d| d.min(self.config.max_idle));
                self.idle(wait.max(MIN_IDLE));
            }
            (CronInput::JobDone { ok }, CronState::Running(claim)) => {
                // The arbiter heard nothing while the job ran.
                self.alive_if_stale();
                self.state = CronState::Finishing(claim);
                self.actions.push_back(CronAction::Finish { claim, ok });
            }
            (CronInput::Finished { .. }, CronState::Finishing(_)) => {
                self.done = self.done.saturating_add(1);
                self.after_run();
            }
            (CronInput::StoreFailed, CronState::Claiming) => self.idle(self.config.retry),
            // The run was not recorded; its lease expires and the job is retried.
            (CronInput::StoreFailed, CronState::Finishing(_)) => self.after_run(),
            // An answer to nothing asked: the driver's bug, ignored.
            _ => {}
        }
    }

    fn after_run(&mut self) {
        if self.stopping {
            self.exit(ByeReason::Stop);
        } else if self.config.max_jobs > 0 && self.done >= self.config.max_jobs {
            self.exit(ByeReason::Recycle);
        } else {
            // More may be due at once.
            self.claim();
        }
    }

    fn idle(&mut self, wait: Duration) {
        if self.stopping {
            return self.exit(ByeReason::Stop);
        }
        self.state = CronState::Idle;
        self.claim_at = self.now + wait;
    }

    fn claim(&mut self) {
        self.claimed_at = self.now;
        self.state = CronState::Claiming;
        self.actions.push_back(CronAction::Claim);
    }

    /// A heartbeat at a job boundary, unless one went out within `timeout / 8`: a job then has
    /// at least 7/8 of the timeout, and a worker running short jobs back to back stays far below
    /// the arbiter's flood limit ([`crate::arbiter::MAX_ALIVES_PER_WINDOW`] per `timeout / 2`).
    fn alive_if_stale(&mut self) {
        if self.last_alive + self.config.timeout / 8 <= self.now {
            self.alive();
        }
    }

    fn alive(&mut self) {
        self.last_alive = self.now;
        self.actions.push_back(CronAction::Send(WorkerMsg::Alive { timestamp: self.now.as_millis() }));
    }

    fn exit(&mut self, reason: ByeReason) {
        self.state = CronState::Exited;
        self.actions.push_back(CronAction::Send(WorkerMsg::Bye { reason }));
        self.actions.push_back(CronAction::Exit(EXIT_OK));
    }
}

/// One run in progress, as the monitor saw it start.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Run {
    holder: WorkerId,
    claim: Claim,
    /// Forward store-clock jumps seen before it started.
    jumps: u32,
}

/// Checks the cron invariants from outside the table and the workers: it sees each run start,
/// end and finish, each holder death and each forward jump of the store's clock.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct CronMonitor {
    running: Vec<Run>,
    /// Per job: the highest token granted.
    granted: BTreeMap<JobId, u64>,
    /// Per job: the last slot recorded and the token that recorded it.
    recorded: BTreeMap<JobId, (Instant, u64)>,
    /// Per job: the slot a dead holder left unfinished and its lease's end (the slot must be
    /// recorded once the lease ran out).
    orphaned: BTreeMap<JobId, (Instant, Instant)>,
    jumps: u32,
    /// Runs recorded.
    pub runs: u64,
    /// Finishes refused as stale.
    pub stale: u64,
    /// Holders that died with a job.
    pub orphans: u64,
}

impl CronMonitor {
    /// A monitor that has seen nothing.
    pub fn new() -> Self {
        CronMonitor::default()
    }

    /// `holder` starts running `claim`.
    pub fn started(&mut self, holder: WorkerId, claim: Claim) -> Result<(), Violation> {
        let granted = self.granted.entry(claim.job).or_insert(0);
        if claim.token <= *granted {
            return Err(Violation::new(
                Invariant::CronExclusive,
                format!(
                    "{}: token {} granted twice or out of order (last {granted})",
                    claim.job, claim.token
                ),
            ));
        }
        *granted = claim.token;
        // Two runs of one job at once are allowed only after the store's clock jumped forward
        // while the older one ran (its lease expired early); fencing must then refuse the older.
        if let Some(other) = self.running.iter().find(|r| r.claim.job == claim.job && r.jumps == self.jumps) {
            return Err(Violation::new(
                Invariant::CronExclusive,
                format!(
                    "{} runs twice at once: {} (token {}) and {holder} (token {})",
                    claim.job, other.holder, other.claim.token, claim.token
                ),
            ));
        }
        self.running.push(Run { holder, claim, jumps: self.jumps });
        Ok(())
    }

    /// `holder`'s job returned.
    pub fn ended(&mut self, holder: WorkerId) {
        self.running.retain(|r| r.holder != holder);
    }

    /// The store recorded `claim`'s run (finish accepted).
    pub fn recorded(&mut self, claim: Claim) -> Result<(), Violation> {
        let granted = self.granted.get(&claim.job).copied().unwrap_or(0);
        if claim.token != granted {
            return Err(Violation::new(
                Invariant::CronExclusive,
                format!("{}: stale token {} recorded a run (current {granted})", claim.job, claim.token),
            ));
        }
        if let Some(&(slot, token)) = self.recorded.get(&claim.job)
            && slot >= claim.slot
        {
            return Err(Violation::new(
                Invariant::CronExclusive,
                format!(
                    "{}: slot {:?} recorded by token {} after slot {slot:?} by token {token}",
                    claim.job, claim.slot, claim.token
                ),
            ));
        }
        self.recorded.insert(claim.job, (claim.slot, claim.token));
        if self.orphaned.get(&claim.job).is_some_and(|&(s, _)| s <= claim.slot) {
            self.orphaned.remove(&claim.job);
        }
        self.runs += 1;
        Ok(())
    }

    /// A finish was refused as stale.
    pub fn refused(&mut self) {
        self.stale += 1;
    }

    /// `holder` died; a job it ran is orphaned and must be retried.
    pub fn died(&mut self, holder: WorkerId) {
        for r in self.running.iter().filter(|r| r.holder == holder) {
            let o = self.orphaned.entry(r.claim.job).or_insert((r.claim.slot, r.claim.until));
            *o = (o.0.min(r.claim.slot), o.1.max(r.claim.until));
            self.orphans += 1;
        }
        self.ended(holder);
    }

    /// The store's clock jumped forward: leases may expire early from here on.
    pub fn jumped_forward(&mut self) {
        self.jumps += 1;
    }

    /// Progress, checked once faults stopped and the system had time to catch up: every job is
    /// due (or its lease ends) no earlier than `now - slack` (store clock), and every run
    /// orphaned by a dead holder was retried within `slack` of its lease's end.
    pub fn progress(&self, table: &Table, now: Instant, slack: Duration) -> Result<(), Violation> {
        if let Some((job, (slot, until))) = self.orphaned.iter().find(|(_, (_, until))| *until + slack < now)
        {
            return Err(Violation::new(
                Invariant::CronProgress,
                format!(
                    "{job}: slot {slot:?} orphaned by a dead holder (lease to {until:?}) was never retried"
                ),
            ));
        }
        for (i, j) in table.jobs().iter().enumerate() {
            // A held job is not late before its lease ends (its holder may have died).
            let due = j.lease.map_or(j.next_call, |(_, until)| until.max(j.next_call));
            if due + slack < now {
                return Err(Violation::new(
                    Invariant::CronProgress,
                    format!("job{i} due at {:?} has not run by {now:?} ({} runs)", j.next_call, j.runs),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(all(test, not(herd_loom)))]
mod tests;
