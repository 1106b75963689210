//! The invariants of docs/architecture.md as checkers over the arbiter core, shared by the proptests,
//! the fuzzers, the simulator and the explorer (one copy, not one per harness).
//!
//! [`Monitor`] watches an [`Arbiter`] from outside: it sees every input and action and keeps its
//! own books (who is alive, when each worker was last heard from, what each was sent), so a bug in
//! the arbiter's bookkeeping cannot vouch for itself. [`Checked`] bundles an arbiter with its
//! monitor and follows the drain rule.
//!
//! What needs the world outside the arbiter (how many connections really wait in the kernel,
//! which registry a request really ran on, whether the count *converges*) is checked by the
//! simulator and the explorer, with the same [`Invariant`] names.

use crate::arbiter::{
    APP_LOAD_ERROR, Accepting, Action, Arbiter, Command, ConfigError, ExitStatus, Input, KillReason,
    KillSignal, Life, Phase, Role, WORKER_BOOT_ERROR, WorkerId,
};
use crate::idmap::IdMap;
use crate::message::{ArbiterMsg, WorkerMsg};
use crate::signals::Sig;
use crate::time::Instant;
use core::fmt;
use core::time::Duration;

/// The invariants, named as in docs/architecture.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Invariant {
    /// A pending connection is handed to an idle worker within a bounded time; no signal is left
    /// unhandled while the arbiter sleeps.
    NoLostWakeup,
    /// In signaled mode at most one worker is woken per ready connection.
    SingleWakeup,
    /// A request that starts after a registry change was signalled runs on a registry at least
    /// that new.
    NoStaleRegistry,
    /// A worker serves at most its budget, then drains and exits; budgets are jittered.
    Recycling,
    /// A silent worker is killed; a worker that is heard from is never killed for timeout.
    LivenessKill,
    /// The live count stays at or converges to the target; `max_boot_failures` workers in a row
    /// that die before booting halt the server instead, and nothing less does.
    WorkerCount,
    /// Every dead child is reaped; nothing is signalled or sent that the arbiter does not own.
    Reaping,
    /// A stop ends within `graceful_timeout`; each worker is asked to stop once.
    GracefulStop,
    /// At most one re-executed child arbiter at a time, and its sockets are left alone.
    SingleChildMaster,
    /// The arbiter's own books agree with each other.
    Consistency,
    /// Work goes to the worker that has waited for it longest (docs/protocol.md), so no idle
    /// worker starves while others are served.
    FairDispatch,
    /// A cron job never runs twice at once (unless the store's clock jumped, and then only the
    /// newer run is recorded); each scheduled run is recorded at most once.
    CronExclusive,
    /// Every due cron job is eventually run while a cron worker lives; a job whose holder died
    /// is retried.
    CronProgress,
}

impl Invariant {
    /// The kebab-case name used in docs and reports.
    pub const fn name(self) -> &'static str {
        match self {
            Invariant::NoLostWakeup => "no-lost-wakeup",
            Invariant::SingleWakeup => "single-wakeup",
            Invariant::NoStaleRegistry => "no-stale-registry",
            Invariant::Recycling => "recycling",
            Invariant::LivenessKill => "liveness-kill",
            Invariant::WorkerCount => "worker-count",
            Invariant::Reaping => "reaping",
            Invariant::GracefulStop => "graceful-stop",
            Invariant::SingleChildMaster => "single-child-master",
            Invariant::Consistency => "consistency",
            Invariant::FairDispatch => "fair-dispatch",
            Invariant::CronExclusive => "cron-exclusive",
            Invariant::CronProgress => "cron-progress",
        }
    }

    /// Every invariant.
    pub const ALL: [Invariant; 13] = [
        Invariant::NoLostWakeup,
        Invariant::SingleWakeup,
        Invariant::NoStaleRegistry,
        Invariant::Recycling,
        Invariant::LivenessKill,
        Invariant::WorkerCount,
        Invariant::Reaping,
        Invariant::GracefulStop,
        Invariant::SingleChildMaster,
        Invariant::Consistency,
        Invariant::FairDispatch,
        Invariant::CronExclusive,
        Invariant::CronProgress,
    ];
}

/// A broken invariant, with what showed it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Violation {
    /// Which invariant.
    pub invariant: Invariant,
    /// What happened, for the report.
    pub detail: String,
}

impl Violation {
    /// A violation of `invariant`.
    pub fn new(invariant: Invariant, detail: impl Into<String>) -> Self {
        Violation { invariant, detail: detail.into() }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.invariant.name(), self.detail)
    }
}

impl std::error::Error for Violation {}

/// The monitor's view of one worker.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Seen {
    last_heard: Instant,
    /// Asked to go (TERM/QUIT/ABRT sent, or it said BYE): must be SIGKILLed by this time if still
    /// there.
    kill_by: Option<Instant>,
    term_sent: bool,
    quit_sent: bool,
    /// ABRT sent (the soft kill for silence).
    aborted: bool,
    killed: bool,
    /// Sent ACCEPT (or EMPTY) and not dispatched since.
    idle: bool,
    /// Heard from while trusted: it booted.
    booted: bool,
}

/// Watches one arbiter; see the module documentation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Monitor {
    /// `None`: no timeout (`--timeout 0`), and no kill for silence, ever.
    timeout: Option<Duration>,
    graceful_timeout: Duration,
    kill_grace: Duration,
    max_requests: u32,
    jitter: u32,
    max_boot_failures: u32,
    /// Workers in a row that died before booting, asked to go by nobody.
    failed_boots: u32,
    /// `max_boot_failures` of them: the server must halt.
    halt_due: bool,
    now: Instant,
    alive: IdMap<WorkerId, Seen>,
    /// A stop was requested (signal, command, or a worker exit code 3/4).
    stop_requested: bool,
    /// A fast stop was asked for (INT, QUIT, `stop --fast`); otherwise every stop is graceful.
    fast_stop_requested: bool,
    reexec_outstanding: u32,
    exited: bool,
    /// Workers the arbiter may hand work to, in the order they asked for it: they asked (ACCEPT
    /// or EMPTY), and since then nothing ended their turn (a dispatch, a stop or kill signal,
    /// their BYE, their death, a stop of the server). An order, not timestamps, so that states
    /// differing only in when things happened stay equal for the explorer.
    waiting: Vec<WorkerId>,
}

impl Monitor {
    /// As [`Arbiter::translate_back`], for the monitor's instants.
    #[doc(hidden)]
    pub fn translate_back(&mut self, d: Duration) {
        self.now = self.now - d;
        for s in self.alive.values_mut() {
            s.last_heard = s.last_heard - d;
            s.kill_by = s.kill_by.map(|k| k - d);
        }
    }

    /// As [`Arbiter::clamp_past`], for the monitor's record of when it last heard each worker.
    #[doc(hidden)]
    pub fn clamp_past(&mut self, floor: Instant) {
        for s in self.alive.values_mut() {
            s.last_heard = s.last_heard.max(floor);
        }
    }

    /// As [`Arbiter::rename_workers`], for the monitor's records.
    #[doc(hidden)]
    pub fn rename_workers(&mut self, f: impl Fn(WorkerId) -> WorkerId) {
        self.alive.rename_keys(|&id| f(id));
        for w in &mut self.waiting {
            *w = f(*w);
        }
    }

    /// A monitor for an arbiter with this configuration.
    pub fn new(arbiter: &Arbiter) -> Self {
        let c = arbiter.config();
        Monitor {
            timeout: c.timeout,
            graceful_timeout: c.graceful_timeout,
            kill_grace: c.kill_grace,
            max_requests: c.max_requests,
            jitter: c.max_requests_jitter,
            max_boot_failures: c.max_boot_failures,
            failed_boots: 0,
            halt_due: false,
            now: arbiter.now(),
            alive: IdMap::new(),
            stop_requested: false,
            fast_stop_requested: false,
            reexec_outstanding: 0,
            exited: false,
            waiting: Vec::new(),
        }
    }

    /// Records an input before it is handed to the arbiter.
    pub fn on_input(&mut self, now: Instant, input: &Input) {
        self.now = self.now.max(now);
        let now = self.now;
        match *input {
            Input::Message { from, msg } => {
                if let Some(s) = self.alive.get_mut(&from).filter(|s| !s.killed) {
                    s.last_heard = now;
                    if !s.booted {
                        s.booted = true;
                        self.failed_boots = 0;
                    }
                    match msg {
                        WorkerMsg::Accept | WorkerMsg::Empty { .. } => {
                            s.idle = true;
                            self.waiting.retain(|&w| w != from);
                            if s.kill_by.is_none() && !self.stop_requested {
                                self.waiting.push(from);
                            }
                        }
                        WorkerMsg::Bye { .. } => {
                            s.idle = false;
                            self.waiting.retain(|&w| w != from);
                            let by = now + self.graceful_timeout;
                            s.kill_by = Some(s.kill_by.map_or(by, |k| k.min(by)));
                        }
                        _ => {}
                    }
                }
            }
            // A malformed frame gets its sender killed at once (`Action::Kill`, reason
            // `Protocol`): nothing it is owed depends on when it was last heard from.
            Input::Exited { id, status } => {
                if let ExitStatus::Code(WORKER_BOOT_ERROR | APP_LOAD_ERROR) = status {
                    self.alive.remove(&id);
                    self.stop_requested = true;
                    self.waiting.clear();
                } else {
                    self.gone(id);
                }
            }
            Input::SpawnFailed { id } => self.gone(id),
            Input::Signal(Sig::Term | Sig::Int | Sig::Quit) | Input::Control(Command::Stop { .. }) => {
                self.stop_requested = true;
                self.fast_stop_requested |= matches!(
                    input,
                    Input::Signal(Sig::Int | Sig::Quit) | Input::Control(Command::Stop { graceful: false })
                );
                self.waiting.clear();
            }
            Input::ReexecEnded => self.reexec_outstanding = self.reexec_outstanding.saturating_sub(1),
            _ => {}
        }
    }

    /// `id` died (or was never forked) with no halting exit code: one more boot failure in a row
    /// if it never booted and nobody asked it to go, and at `max_boot_failures` of them the
    /// server must halt.
    fn gone(&mut self, id: WorkerId) {
        self.waiting.retain(|&w| w != id);
        let Some(s) = self.alive.remove(&id) else { return };
        if s.booted || s.killed || s.kill_by.is_some() {
            return;
        }
        self.failed_boots = self.failed_boots.saturating_add(1);
        if self.max_boot_failures > 0 && self.failed_boots >= self.max_boot_failures && !self.stop_requested {
            self.halt_due = true;
            self.stop_requested = true;
            self.waiting.clear();
        }
    }

    /// Records the time before [`Arbiter::handle_timeout`] is called.
    pub fn on_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    /// Checks one action as it is drained.
    pub fn on_action(&mut self, action: &Action) -> Result<(), Violation> {
        use Invariant::*;
        if self.exited {
            return Err(Violation::new(Reaping, format!("{action:?} after Exit")));
        }
        let now = self.now;
        match *action {
            Action::Spawn { id, max_requests, .. } => {
                if self.alive.contains_key(&id) {
                    return Err(Violation::new(Consistency, format!("{id} spawned twice")));
                }
                let (lo, hi) = (self.max_requests, self.max_requests.saturating_add(self.jitter));
                if (self.max_requests == 0 && max_requests != 0)
                    || (self.max_requests > 0 && !(lo..=hi).contains(&max_requests))
                {
                    return Err(Violation::new(
                        Recycling,
                        format!("{id} budget {max_requests} outside {lo}..={hi}"),
                    ));
                }
                self.alive.insert(
                    id,
                    Seen {
                        last_heard: now,
                        kill_by: None,
                        term_sent: false,
                        quit_sent: false,
                        aborted: false,
                        killed: false,
                        idle: false,
                        booted: false,
                    },
                );
            }
            Action::Send { to, msg: ArbiterMsg::Accept { socket } } => {
                // First come, first served: no worker still waiting asked before this one.
                if let Some(&first) = self.waiting.first()
                    && first != to
                    && self.waiting.contains(&to)
                {
                    return Err(Violation::new(
                        FairDispatch,
                        format!(
                            "ACCEPT:{socket} sent to {to} while {first}, which asked for work earlier, waits"
                        ),
                    ));
                }
                self.waiting.retain(|&w| w != to);
                let Some(s) = self.alive.get_mut(&to) else {
                    return Err(Violation::new(Reaping, format!("ACCEPT:{socket} sent to dead {to}")));
                };
                // (A killed worker is never idle: its kill ended its turn, and nothing it says
                // after is believed.)
                if !s.idle || s.kill_by.is_some() {
                    return Err(Violation::new(
                        SingleWakeup,
                        format!("ACCEPT:{socket} sent to {to}, which had not asked for work"),
                    ));
                }
                s.idle = false;
            }
            Action::Kill { id, signal, reason } => {
                let timeout = self.timeout;
                let Some(s) = self.alive.get_mut(&id) else {
                    return Err(Violation::new(Reaping, format!("{signal:?} sent to dead or unknown {id}")));
                };
                s.idle = false;
                self.waiting.retain(|&w| w != id);
                let bound = match signal {
                    KillSignal::Term => {
                        if s.term_sent {
                            return Err(Violation::new(GracefulStop, format!("{id} sent TERM twice")));
                        }
                        s.term_sent = true;
                        Some(self.graceful_timeout)
                    }
                    KillSignal::Quit => {
                        // QUIT cuts requests short: only a fast stop asked for it (a halt after
                        // a worker's exit 3 or 4 is graceful, as TERM and gunicorn's halt are).
                        if !self.fast_stop_requested {
                            return Err(Violation::new(
                                GracefulStop,
                                format!("{id} sent QUIT ({reason:?}) though no fast stop was asked for"),
                            ));
                        }
                        if s.quit_sent {
                            return Err(Violation::new(GracefulStop, format!("{id} sent QUIT twice")));
                        }
                        s.quit_sent = true;
                        Some(self.graceful_timeout)
                    }
                    KillSignal::Abrt => {
                        s.aborted = true;
                        // Not early, and never without a timeout (0 means off).
                        if timeout.is_none_or(|t| s.last_heard + t > now) {
                            return Err(Violation::new(
                                LivenessKill,
                                format!(
                                    "{id} killed for {reason:?} at {now:?}, heard from at {:?} (timeout {timeout:?})",
                                    s.last_heard
                                ),
                            ));
                        }
                        Some(self.kill_grace)
                    }
                    KillSignal::Kill => {
                        // Not early: a grace ends at its deadline, not before (a protocol
                        // violation is killed at once, and has no deadline).
                        if reason == KillReason::GraceExpired && s.kill_by.is_none_or(|by| by > now) {
                            return Err(Violation::new(
                                GracefulStop,
                                format!("{id} SIGKILLed at {now:?} before its grace ended ({:?})", s.kill_by),
                            ));
                        }
                        s.killed = true;
                        None
                    }
                };
                if let Some(b) = bound {
                    let by = now + b;
                    s.kill_by = Some(s.kill_by.map_or(by, |k| k.min(by)));
                }
            }
            Action::Reexec => {
                self.reexec_outstanding += 1;
                if self.reexec_outstanding > 1 {
                    return Err(Violation::new(SingleChildMaster, "a second child arbiter forked"));
                }
            }
            Action::Exit { code, unlink_sockets } => {
                self.exited = true;
                if !self.stop_requested {
                    return Err(Violation::new(
                        Reaping,
                        format!("exit {code} without a stop or a halting exit code"),
                    ));
                }
                if unlink_sockets && self.reexec_outstanding > 0 {
                    return Err(Violation::new(
                        SingleChildMaster,
                        "exit unlinks unix sockets the child arbiter uses",
                    ));
                }
                if !self.alive.is_empty() {
                    return Err(Violation::new(Reaping, "exit with workers not reaped"));
                }
            }
            Action::Watch(_) | Action::Unwatch(_) | Action::Poll(_) | Action::Reap | Action::ReopenLogs => {}
        }
        Ok(())
    }

    /// The earliest deadline in the monitor's own books, with the invariant it belongs to: a
    /// worker's silence (`last heard + timeout`, while no soft kill was sent and the server is not
    /// stopping or the worker was never asked to go) or the end of its grace.
    pub fn next_deadline(&self) -> Option<(Instant, Invariant, WorkerId)> {
        let mut next: Option<(Instant, Invariant, WorkerId)> = None;
        for (&id, s) in &self.alive {
            if s.killed {
                continue;
            }
            let silence = self
                .timeout
                .filter(|_| !s.aborted && (s.kill_by.is_none() || !self.stop_requested))
                .map(|t| (s.last_heard + t, Invariant::LivenessKill));
            let grace = s.kill_by.map(|by| (by, Invariant::GracefulStop));
            for (at, inv) in [silence, grace].into_iter().flatten() {
                if next.is_none_or(|(n, ..)| at < n) {
                    next = Some((at, inv, id));
                }
            }
        }
        next
    }

    /// Checks the arbiter's state after its actions were drained. `after_timeout` says whether the
    /// last call was [`Arbiter::handle_timeout`] (time-based duties are due only then).
    pub fn check(&self, a: &Arbiter, after_timeout: bool) -> Result<(), Violation> {
        use Invariant::*;
        let now = self.now;
        // The monitor's view of who is alive matches the arbiter's table.
        if a.workers().len() != self.alive.len() || a.workers().keys().any(|id| !self.alive.contains_key(id))
        {
            return Err(Violation::new(
                Consistency,
                format!(
                    "table {:?} vs alive {:?}",
                    a.workers().keys().collect::<Vec<_>>(),
                    self.alive.keys().collect::<Vec<_>>()
                ),
            ));
        }
        if after_timeout {
            for (id, s) in &self.alive {
                if s.killed {
                    continue;
                }
                match s.kill_by {
                    Some(by) if by <= now => {
                        return Err(Violation::new(
                            GracefulStop,
                            format!("{id} still not killed at {now:?}, due by {by:?}"),
                        ));
                    }
                    // Silent past the timeout and not soft-killed: only a stopping server may
                    // leave a worker its graceful timeout instead.
                    _ if self.timeout.is_some_and(|t| s.last_heard + t <= now)
                        && !s.aborted
                        && (s.kill_by.is_none() || !self.stop_requested) =>
                    {
                        return Err(Violation::new(
                            LivenessKill,
                            format!("{id} silent since {:?}, not killed at {now:?}", s.last_heard),
                        ));
                    }
                    _ => {}
                }
            }
        }
        // The core's own timer is never later than a deadline the monitor knows is pending: a
        // driver sleeps until `poll_timeout`, so a later one is a late action.
        if let Some((due, invariant, id)) = self.next_deadline()
            && a.poll_timeout().is_none_or(|t| t > due)
        {
            return Err(Violation::new(
                invariant,
                format!("{id} is due at {due:?} but poll_timeout() is {:?}", a.poll_timeout()),
            ));
        }
        if !self.stop_requested && !matches!(a.phase(), Phase::Running) {
            return Err(Violation::new(Reaping, format!("phase {:?} without a stop", a.phase())));
        }
        // The other side: a row of boot failures as long as the limit halts the server.
        if self.halt_due && a.phase() == Phase::Running {
            return Err(Violation::new(
                WorkerCount,
                format!(
                    "{} workers in a row died before booting (max_boot_failures {}) and the server still runs",
                    self.failed_boots, self.max_boot_failures
                ),
            ));
        }
        let d = a.dispatcher();
        // Idle queue and table agree.
        let idle: Vec<WorkerId> = d.idle().iter().copied().collect();
        let marked: Vec<WorkerId> =
            a.workers().iter().filter(|(_, w)| w.accepting == Accepting::Idle).map(|(&id, _)| id).collect();
        let mut sorted = idle.clone();
        sorted.sort();
        sorted.dedup();
        if sorted.len() != idle.len() || sorted != marked {
            return Err(Violation::new(Consistency, format!("idle queue {idle:?} vs table {marked:?}")));
        }
        for (i, b) in d.books().iter().enumerate() {
            let n = a
                .workers()
                .values()
                .filter(|w| matches!(w.accepting, Accepting::Dispatched(s) if usize::from(s.0) == i))
                .count();
            if n as u32 != b.outstanding {
                return Err(Violation::new(
                    Consistency,
                    format!("listener {i}: {n} dispatched, books say {}", b.outstanding),
                ));
            }
            if b.backlog > 0 && !idle.is_empty() {
                return Err(Violation::new(
                    NoLostWakeup,
                    format!("listener {i} has {} waiting while {idle:?} are idle", b.backlog),
                ));
            }
            let open = a.phase() == Phase::Running;
            if b.watched != open {
                return Err(Violation::new(
                    if b.watched { Reaping } else { NoLostWakeup },
                    format!("listener {i} watched={} in {:?}", b.watched, a.phase()),
                ));
            }
        }
        if a.phase() == Phase::Running {
            for (role, target) in [(Role::Http, a.target()), (Role::Cron, a.cron_target())] {
                let current = a
                    .workers()
                    .values()
                    .filter(|w| w.role == role && w.life == Life::Active && w.generation == a.generation())
                    .count();
                if current > target as usize {
                    return Err(Violation::new(
                        WorkerCount,
                        format!("{current} active {role:?} workers for a target of {target}"),
                    ));
                }
            }
        } else if a.workers().values().any(|w| w.life == Life::Active) {
            return Err(Violation::new(GracefulStop, "stopping with a worker not asked to stop"));
        }
        Ok(())
    }
}

/// An arbiter and its monitor, driven by the drain rule; every step is checked.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Checked {
    /// The arbiter under check.
    pub arbiter: Arbiter,
    /// Its monitor.
    pub monitor: Monitor,
    /// A violation found while starting, reported by the first step.
    pending: Option<Violation>,
}

impl Checked {
    /// A checked arbiter, with the actions of its start.
    pub fn new(config: crate::arbiter::Config, now: Instant) -> Result<(Self, Vec<Action>), ConfigError> {
        Ok(Self::wrap(Arbiter::new(config, now)?))
    }

    /// Checks an arbiter built elsewhere (with a mutant, say) from its first action on. It must
    /// not have been polled yet.
    pub fn wrap(arbiter: Arbiter) -> (Self, Vec<Action>) {
        let monitor = Monitor::new(&arbiter);
        let mut c = Checked { arbiter, monitor, pending: None };
        let actions = c.drain(false).unwrap_or_else(|v| {
            // Only a mutant can break an invariant at start; report it as the first step would.
            c.pending = Some(v);
            Vec::new()
        });
        (c, actions)
    }

    /// As [`Arbiter::translate_back`], for the arbiter and its monitor.
    #[doc(hidden)]
    pub fn translate_back(&mut self, d: Duration) {
        self.arbiter.translate_back(d);
        self.monitor.translate_back(d);
    }

    /// As [`Arbiter::clamp_past`], for the arbiter and its monitor.
    #[doc(hidden)]
    pub fn clamp_past(&mut self, floor: Instant) {
        self.arbiter.clamp_past(floor);
        self.monitor.clamp_past(floor);
    }

    /// As [`Arbiter::rename_workers`], for the arbiter and its monitor.
    #[doc(hidden)]
    pub fn rename_workers(&mut self, f: impl Fn(WorkerId) -> WorkerId, next: u64) {
        self.arbiter.rename_workers(&f, next);
        self.monitor.rename_workers(&f);
    }

    /// Every worker id the arbiter or its monitor holds, in order, once each.
    #[doc(hidden)]
    pub fn worker_ids(&self) -> Vec<WorkerId> {
        let m = &self.monitor;
        let mut ids: Vec<WorkerId> = (self.arbiter.workers().keys().copied())
            .chain(self.arbiter.dispatcher().idle().iter().copied())
            .chain(m.alive.keys().copied())
            .chain(m.waiting.iter().copied())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Hashes what the arbiter and its monitor hold of worker `id`, its id left out: its table
    /// entry, its place in the idle queue, the monitor's record and its place among the waiting.
    /// Two workers alike in this (and in what else a model holds of them) are interchangeable
    /// wherever ids are only told apart, not compared.
    #[doc(hidden)]
    pub fn hash_worker(&self, id: WorkerId, h: &mut impl std::hash::Hasher) {
        use std::hash::Hash;
        let a = &self.arbiter;
        a.workers().get(&id).hash(h);
        a.dispatcher().idle().iter().position(|&w| w == id).hash(h);
        self.monitor.alive.get(&id).hash(h);
        self.monitor.waiting.iter().position(|&w| w == id).hash(h);
    }

    /// Hands `input` to the arbiter; returns its actions or the first broken invariant.
    pub fn step(&mut self, now: Instant, input: Input) -> Result<Vec<Action>, Violation> {
        if let Some(v) = self.pending.take() {
            return Err(v);
        }
        self.monitor.on_input(now, &input);
        self.arbiter.handle(now, input);
        self.drain(false)
    }

    /// Calls `handle_timeout(now)`; returns the actions or the first broken invariant.
    pub fn tick(&mut self, now: Instant) -> Result<Vec<Action>, Violation> {
        self.monitor.on_timeout(now);
        self.arbiter.handle_timeout(now);
        let actions = self.drain(true)?;
        // Progress: what was due has been done, so the next deadline lies in the future;
        // otherwise a driver following the drain rule spins.
        if let Some(t) = self.arbiter.poll_timeout()
            && t <= self.arbiter.now()
        {
            return Err(Violation::new(
                Invariant::Consistency,
                format!(
                    "poll_timeout() is {t:?} right after handle_timeout({:?}): the driver would spin",
                    self.arbiter.now()
                ),
            ));
        }
        Ok(actions)
    }

    fn drain(&mut self, after_timeout: bool) -> Result<Vec<Action>, Violation> {
        let mut out = Vec::new();
        while let Some(a) = self.arbiter.poll_action() {
            self.monitor.on_action(&a)?;
            out.push(a);
        }
        self.monitor.check(&self.arbiter, after_timeout)?;
        Ok(out)
    }
}
