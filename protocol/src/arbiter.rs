//! The arbiter core: the worker table, signal handling, liveness, recycling, accept dispatch and
//! stopping, as a sans-IO state machine.
//!
//! It is not the process that forks: it says *what* to do ([`Action`]) and is told what happened
//! ([`Input`]). The runtime, the simulator, the models and the fuzzers all drive it the same way.
//!
//! # Driving it
//!
//! Methods come in four kinds, as in quinn-proto: getters ([`Arbiter::workers`], ...); `handle*`
//! for what happened ([`Arbiter::handle`], [`Arbiter::handle_timeout`]); the constructor; and
//! `poll*` for what to do ([`Arbiter::poll_action`], [`Arbiter::poll_timeout`]).
//!
//! **The drain rule.** After [`Arbiter::new`] and after every `handle*` call the caller MUST call
//! [`Arbiter::poll_action`] until it returns `None`, carrying out each action in order, and then
//! read [`Arbiter::poll_timeout`]: it MUST call [`Arbiter::handle_timeout`] no later than that
//! instant (earlier is harmless). Times passed in MUST NOT go backwards; an earlier time is taken
//! as the latest seen, so a clock that steps back can never make a worker look late (B05).
//!
//! # Semantics (gunicorn's, with its known bugs fixed; see docs/protocol.md)
//!
//! - TTIN: +1 worker; TTOU: -1, never below one; WINCH: stop all workers, keep the arbiter;
//!   HUP: a new generation of `workers` (the configured count, as gunicorn) replaces the old, each
//!   old worker asked to stop exactly once, and only as its replacements come up.
//! - USR2: re-exec; at most one child arbiter at a time (B07). USR1: reopen logs. CHLD: reap.
//! - TERM: graceful stop (TERM to workers, KILL what is left at `graceful_timeout`, B19); INT and
//!   QUIT: fast stop (QUIT, then KILL at `graceful_timeout`).
//! - A worker silent for `timeout` (by the arbiter's own receive time) gets ABRT, then KILL after
//!   `kill_grace` — a retiring one too while the server runs; a stopping server gives its workers
//!   `graceful_timeout` instead. A worker exit code 3 (boot error) or 4 (app load error) halts the server; a
//!   death by signal never does (B09). Workers that die before their first message are respawned
//!   one at a time with exponential backoff; `max_boot_failures` of them in a row halt the server
//!   as an exit 3 does (0: never).
//! - A worker that sends a malformed frame or a frame illegal in its state is killed at once and
//!   never trusted again.

/// `bug!(self, B10)`: is this docs/bugs.md row re-introduced in this instance? The constant `false`
/// without the `mutants` feature, so the mutant's code path compiles away.
macro_rules! bug {
    ($self:ident, $id:ident) => {{
        #[cfg(feature = "mutants")]
        let on = $self.bug(crate::mutants::Mutant::$id);
        #[cfg(not(feature = "mutants"))]
        let on = false;
        on
    }};
}

mod config;
pub mod domain;
mod io;
mod table;
mod timers;

pub use config::{
    APP_LOAD_ERROR, AcceptMode, Config, ConfigError, MAX_WORKERS, Role, UNTIMED_PACE, WORKER_BOOT_ERROR,
    WorkerId,
};
pub use io::{Action, Command, ExitStatus, Input, KillReason, KillSignal};
use table::Census;
pub use table::{Accepting, Life, MAX_ALIVES_PER_WINDOW, Phase, Stats, WorkerEntry};
pub use timers::Timer;

use crate::dispatch::Dispatcher;
use crate::idmap::IdMap;
use crate::message::{ArbiterMsg, ByeReason, ListenerId, WorkerMsg};
use crate::rng::Rng;
use crate::signals::Sig;
use crate::time::Instant;
use core::time::Duration;
use std::collections::VecDeque;

/// The arbiter core. See the module documentation for the drain rule.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Arbiter {
    config: Config,
    now: Instant,
    phase: Phase,
    target: u32,
    cron_target: u32,
    generation: u32,
    next_id: u64,
    workers: IdMap<WorkerId, WorkerEntry>,
    /// The active workers in `workers`, counted as they change.
    census: Census,
    dispatcher: Dispatcher,
    /// Consecutive workers that died before booting.
    boot_failures: u32,
    /// No spawn before this instant (backoff after boot failures).
    spawn_not_before: Instant,
    reexec_running: bool,
    rng: Rng,
    stats: Stats,
    actions: VecDeque<Action>,
    #[cfg(feature = "mutants")]
    mutant: Option<crate::mutants::Mutant>,
}

impl Arbiter {
    /// A new arbiter at time `now`. Its first actions (watch the listeners, spawn the workers) are
    /// waiting in [`Arbiter::poll_action`].
    pub fn new(config: Config, now: Instant) -> Result<Self, ConfigError> {
        Self::build(config, now, |_| {})
    }

    fn build(
        config: Config,
        now: Instant,
        before_start: impl FnOnce(&mut Self),
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut a = Arbiter {
            target: config.workers,
            cron_target: config.cron_workers,
            rng: Rng::new(config.seed),
            dispatcher: Dispatcher::new(if config.accept_mode.dispatches() { config.listeners } else { 0 }),
            config,
            now,
            phase: Phase::Running,
            generation: 0,
            next_id: 0,
            workers: IdMap::new(),
            census: Census::default(),
            boot_failures: 0,
            spawn_not_before: now,
            reexec_running: false,
            stats: Stats::default(),
            actions: VecDeque::new(),
            #[cfg(feature = "mutants")]
            mutant: None,
        };
        before_start(&mut a);
        a.settle();
        Ok(a)
    }

    /// A new arbiter with one bug of docs/bugs.md re-introduced from its very first action (tests of
    /// the suite's teeth only).
    #[cfg(feature = "mutants")]
    pub fn with_mutant(
        config: Config,
        now: Instant,
        mutant: Option<crate::mutants::Mutant>,
    ) -> Result<Self, ConfigError> {
        Self::build(config, now, |a| a.mutant = mutant)
    }

    /// Is this re-introduced bug switched on? Always false without the `mutants` feature.
    #[cfg(feature = "mutants")]
    fn bug(&self, id: crate::mutants::Mutant) -> bool {
        self.mutant == Some(id)
    }

    /// B25's grace for a retiring worker: half of it.
    fn b25_grace(&self) -> Duration {
        self.config.graceful_timeout / 2
    }

    /// B27's budget: a jitter without its base drawn as a budget of its own (none without one).
    fn b27_budget(&mut self) -> u32 {
        match self.config.max_requests_jitter {
            0 => 0,
            j => 1 + self.rng.up_to(j - 1),
        }
    }

    // ---- getters ----

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }
    /// The worker table.
    pub fn workers(&self) -> &IdMap<WorkerId, WorkerEntry> {
        &self.workers
    }
    /// The number of (HTTP) workers it aims to run.
    pub fn target(&self) -> u32 {
        self.target
    }
    /// The number of cron workers it aims to run.
    pub fn cron_target(&self) -> u32 {
        self.cron_target
    }
    /// The current generation.
    pub fn generation(&self) -> u32 {
        self.generation
    }
    /// The phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }
    /// The counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }
    /// Workers in a row that died before booting (a worker that boots ends the row); the server
    /// halts when this reaches [`Config::max_boot_failures`].
    pub fn failed_boots(&self) -> u32 {
        self.boot_failures
    }
    /// Whether the row of boot failures has reached [`Config::max_boot_failures`] (never with
    /// 0): the rule the arbiter halts by, for whoever says why it halted.
    pub fn boot_failures_exhausted(&self) -> bool {
        let max = self.config.max_boot_failures;
        max > 0 && self.boot_failures >= max
    }
    /// The dispatcher (idle queue and listener books).
    pub fn dispatcher(&self) -> &Dispatcher {
        &self.dispatcher
    }
    /// Whether a re-executed child arbiter is running.
    pub fn reexec_running(&self) -> bool {
        self.reexec_running
    }
    /// The latest time seen.
    pub fn now(&self) -> Instant {
        self.now
    }
    /// Workers counted towards the target.
    pub fn active(&self) -> usize {
        self.workers.values().filter(|w| w.life == Life::Active).count()
    }

    /// Moves every instant this core holds `d` back: the cores only compare instants and add
    /// durations, so a state and its translate in time behave alike (time-translation symmetry).
    /// For model checkers, which merge such states; `d` must not exceed the age of the oldest
    /// instant held (instants saturate at zero).
    #[doc(hidden)]
    pub fn translate_back(&mut self, d: Duration) {
        self.now = self.now - d;
        self.spawn_not_before = self.spawn_not_before - d;
        if let Phase::Stopping { deadline, .. } = &mut self.phase {
            *deadline = *deadline - d;
        }
        for w in self.workers.values_mut() {
            w.spawned_at = w.spawned_at - d;
            w.last_seen = w.last_seen - d;
            w.alive_window.0 = w.alive_window.0 - d;
            if let Life::Stopping { kill_at } | Life::Killing { kill_at } = &mut w.life {
                *kill_at = *kill_at - d;
            }
        }
    }

    /// Raises every past instant of liveness bookkeeping (spawned, last heard, heartbeat window)
    /// to `floor`. For model checkers whose `timeout` is far longer than any time they let pass:
    /// those instants then only ever meet `timeout` comparisons that come out the same, and
    /// states differing only in them behave alike.
    #[doc(hidden)]
    pub fn clamp_past(&mut self, floor: Instant) {
        // The counters are for status output: nothing the arbiter decides reads them.
        self.stats = Stats::default();
        for w in self.workers.values_mut() {
            w.requests = 0;
            w.spawned_at = w.spawned_at.max(floor);
            w.last_seen = w.last_seen.max(floor);
            w.alive_window.0 = w.alive_window.0.max(floor);
        }
    }

    /// Renames every worker by `f`, one-to-one on the ids held (the table, the idle queue), and
    /// makes `next` the next id to give. For model checkers that name equivalent states alike: the
    /// arbiter decides by comparing ids only (the oldest retires first), so renaming that keeps
    /// their order and gives `next` above every id held changes nothing it will do; a renaming
    /// that does not keep the order is only sound where no such choice can come.
    #[doc(hidden)]
    pub fn rename_workers(&mut self, f: impl Fn(WorkerId) -> WorkerId, next: u64) {
        debug_assert!(self.actions.is_empty(), "renamed with actions not yet polled");
        self.workers.rename_keys(|&id| f(id));
        self.dispatcher.rename_workers(&f);
        self.next_id = next;
    }

    // ---- polls ----

    /// The next action to carry out, in order. Drain until `None` after every call that changes
    /// state.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`Arbiter::handle_timeout`] must be called next, if ever: the earliest pending
    /// timer ([`Arbiter::timers`]).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.earliest_timer()
    }

    // ---- handlers ----

    /// Handles one input at `now`.
    pub fn handle(&mut self, now: Instant, input: Input) {
        self.advance(now);
        if self.phase == Phase::Exited {
            return;
        }
        match input {
            Input::Signal(sig) => self.on_signal(sig),
            Input::Control(cmd) => self.on_command(cmd),
            Input::Message { from, msg } => self.on_message(from, msg),
            Input::Malformed { from, .. } => self.violation(from),
            Input::Exited { id, status } => self.on_exit(id, Some(status)),
            Input::SpawnFailed { id } => self.on_exit(id, None),
            Input::Ready { socket, queued } => {
                if self.phase == Phase::Running {
                    self.dispatcher.ready(socket, queued);
                }
            }
            Input::ReexecEnded => self.reexec_running = false,
        }
        self.settle();
    }

    /// Handles the passage of time: fires every timer due at `now` ([`Arbiter::timers`]) —
    /// kills late workers, ends a stop, spawns after a backoff.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
        if self.phase == Phase::Exited {
            return;
        }
        let now = self.now;
        let due: Vec<Timer> = self.timers().filter(|&(_, at)| at <= now).map(|(t, _)| t).collect();
        for t in due {
            // An earlier timer of this pass may have ended this one (a KILL ends a silence).
            if self.timer(t).is_some_and(|at| at <= now) {
                self.fire(t);
            }
        }
        self.settle();
    }

    fn fire(&mut self, timer: Timer) {
        let now = self.now;
        match timer {
            Timer::Grace(id) => self.hard_kill(id, KillReason::GraceExpired),
            Timer::Silence(id) => {
                let Some(w) = self.workers.get(&id) else { return };
                // The hard kill comes after `kill_grace`, or sooner if a stop is already due.
                let kill_at = match w.life {
                    Life::Stopping { kill_at } => kill_at.min(now + self.config.kill_grace),
                    _ => now + self.config.kill_grace,
                };
                self.stats.timeouts += 1;
                self.set_life(id, Life::Killing { kill_at });
                self.kill(id, KillSignal::Abrt, KillReason::Timeout);
            }
            Timer::StopDeadline => {
                let ids: Vec<WorkerId> = self.workers.keys().copied().collect();
                for id in ids {
                    self.hard_kill(id, KillReason::GraceExpired);
                }
            }
            // Spawning is settle's: the backoff only kept it waiting.
            Timer::SpawnBackoff => {}
        }
    }

    fn advance(&mut self, now: Instant) {
        // Time never goes backwards for the core.
        self.now = self.now.max(now);
    }

    fn on_signal(&mut self, sig: Sig) {
        match sig {
            Sig::Chld => self.actions.push_back(Action::Reap),
            Sig::Usr1 => self.actions.push_back(Action::ReopenLogs),
            Sig::Ttin => self.on_command(Command::Incr(1)),
            Sig::Ttou => self.on_command(Command::Decr(1)),
            Sig::Hup => self.on_command(Command::Reload),
            Sig::Usr2 => self.on_command(Command::Upgrade),
            Sig::Term => self.on_command(Command::Stop { graceful: true }),
            Sig::Int | Sig::Quit => self.on_command(Command::Stop { graceful: false }),
            Sig::Winch => {
                if self.phase == Phase::Running {
                    self.target = 0;
                    self.cron_target = 0;
                }
            }
        }
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Stop { graceful } => self.stop(graceful, 0),
            _ if self.phase != Phase::Running => {}
            Command::Incr(n) => self.target = self.target.saturating_add(n).min(MAX_WORKERS),
            // Never below one by TTOU; a target of zero (after WINCH) stays zero.
            Command::Decr(n) => self.target = self.target.saturating_sub(n).max(self.target.min(1)),
            Command::Reload => {
                self.generation += 1;
                self.census.new_generation();
                self.target = self.config.workers;
                self.cron_target = self.config.cron_workers;
            }
            Command::Upgrade => {
                if !self.reexec_running || bug!(self, B07) {
                    self.reexec_running = true;
                    self.actions.push_back(Action::Reexec);
                }
            }
        }
    }

    fn on_message(&mut self, from: WorkerId, msg: WorkerMsg) {
        let now = self.now;
        let dispatches = self.config.accept_mode.dispatches();
        let running = self.phase == Phase::Running;
        let b05 = bug!(self, B05);
        let b16 = bug!(self, B16);
        let Some(w) = self.workers.get_mut(&from) else {
            return;
        };
        if !w.trusted {
            return; // Nothing it says is believed.
        }
        if w.life == Life::Killed {
            // SIGKILLed for silence or an expired grace, not for lying: its answer to a dispatch
            // is still true, and keeps a connection it took from being handed out again.
            if let (WorkerMsg::Accepted { socket } | WorkerMsg::Empty { socket }, Accepting::Dispatched(s)) =
                (msg, w.accepting)
                && socket == s
            {
                w.accepting = Accepting::Busy;
                self.answered(s);
            }
            return;
        }
        w.last_seen = match msg {
            WorkerMsg::Alive { timestamp } if b05 => Instant(timestamp.saturating_mul(1_000_000)),
            _ => now,
        };
        if !w.booted {
            self.census.leave(w, self.generation);
            w.booted = true;
            self.census.join(w, self.generation);
            self.boot_failures = 0;
        }
        let active = w.life == Life::Active;
        let http = w.role == Role::Http;
        match (msg, w.accepting) {
            (WorkerMsg::Alive { .. }, _) => {
                let (start, n) = w.alive_window;
                w.alive_window = if now >= start + self.config.pace() / 2 {
                    (now, 1)
                } else {
                    (start, n.saturating_add(1))
                };
                if w.alive_window.1 > MAX_ALIVES_PER_WINDOW {
                    self.violation(from);
                }
            }
            (WorkerMsg::Accept, Accepting::Busy) if dispatches && http => {
                if active && running {
                    w.accepting = Accepting::Idle;
                    self.dispatcher.push_idle(from);
                }
            }
            (WorkerMsg::Accepted { socket }, Accepting::Dispatched(s)) if socket == s => {
                w.accepting = Accepting::Busy;
                w.requests += 1;
                self.answered(s);
            }
            (WorkerMsg::Empty { socket }, Accepting::Dispatched(s)) if socket == s => {
                if active && running && !b16 {
                    w.accepting = Accepting::Idle;
                    self.dispatcher.push_idle(from);
                } else {
                    w.accepting = Accepting::Busy;
                }
                self.answered(s);
            }
            (WorkerMsg::Bye { reason }, _) => {
                if reason == ByeReason::Recycle {
                    self.stats.recycles += 1;
                }
                if w.life == Life::Active {
                    self.census.leave(w, self.generation);
                    w.life = Life::Stopping { kill_at: now + self.config.graceful_timeout };
                }
                self.release(from);
            }
            _ => self.violation(from),
        }
    }

    fn on_exit(&mut self, id: WorkerId, status: Option<ExitStatus>) {
        self.release(id);
        let Some(w) = self.workers.remove(&id) else {
            return;
        };
        self.census.leave(&w, self.generation);
        if let Accepting::Dispatched(s) = w.accepting {
            // B15: the dispatch is forgotten; the listener stays unwatched waiting for an answer.
            if !bug!(self, B15) {
                self.dispatcher.voided(s);
            }
        }
        match status {
            Some(_) => self.stats.deaths += 1,
            None => self.stats.boot_failures += 1,
        }
        let halting = match status {
            Some(ExitStatus::Code(c @ (WORKER_BOOT_ERROR | APP_LOAD_ERROR))) => Some(c),
            Some(ExitStatus::Signaled(c @ (WORKER_BOOT_ERROR | APP_LOAD_ERROR))) if bug!(self, B09) => {
                Some(c)
            }
            _ => None,
        };
        // A worker that cannot boot or load the application halts the server gracefully, as
        // gunicorn's halt does: the other workers finish their requests.
        if let Some(code) = halting
            && self.phase == Phase::Running
        {
            return self.stop(true, code);
        }
        if !w.booted && w.life == Life::Active {
            if status.is_some() {
                self.stats.boot_failures += 1;
            }
            self.boot_failures = self.boot_failures.saturating_add(1);
            if self.boot_failures_exhausted() && self.phase == Phase::Running {
                return self.stop(true, WORKER_BOOT_ERROR);
            }
            let shift = (self.boot_failures - 1).min(16);
            let delay = self.config.spawn_backoff.saturating_mul(1 << shift);
            self.spawn_not_before = self.now + delay.min(self.config.spawn_backoff_max);
        }
    }

    /// Stop serving: ask every worker to stop once, kill what is left at the deadline.
    fn stop(&mut self, graceful: bool, code: i32) {
        let now = self.now;
        let (deadline, code) = match self.phase {
            Phase::Running => (now + self.config.graceful_timeout, code),
            // A second TERM changes nothing; INT/QUIT during a graceful stop escalates, keeping
            // the first stop's deadline and exit code.
            Phase::Stopping { graceful: false, .. } => return,
            Phase::Stopping { graceful: true, .. } if graceful => return,
            Phase::Stopping { deadline, code, .. } => (deadline, code),
            Phase::Exited => return,
        };
        self.phase = Phase::Stopping { graceful, deadline, code };
        self.dispatcher.close();
        let signal = if graceful { KillSignal::Term } else { KillSignal::Quit };
        let ids: Vec<WorkerId> = self.workers.keys().copied().collect();
        for id in ids {
            self.ask(id, signal, KillReason::Stop, deadline);
        }
    }

    /// Sends a stop signal (TERM or QUIT) to a worker at most once per signal, and bounds its life.
    fn ask(&mut self, id: WorkerId, signal: KillSignal, reason: KillReason, kill_at: Instant) {
        let Some(w) = self.workers.get_mut(&id) else {
            return;
        };
        if w.life == Life::Killed || w.asked == Some(signal) || w.asked == Some(KillSignal::Quit) {
            return;
        }
        w.asked = Some(signal);
        self.census.leave(w, self.generation);
        w.life = match w.life {
            Life::Stopping { kill_at: k } | Life::Killing { kill_at: k } => {
                Life::Stopping { kill_at: k.min(kill_at) }
            }
            _ => Life::Stopping { kill_at },
        };
        self.release(id);
        self.kill(id, signal, reason);
    }

    fn hard_kill(&mut self, id: WorkerId, reason: KillReason) {
        if self.workers.get(&id).is_some_and(|w| w.life != Life::Killed) {
            self.set_life(id, Life::Killed);
            self.kill(id, KillSignal::Kill, reason);
        }
    }

    /// A malformed or illegal frame: kill at once, never trust again.
    fn violation(&mut self, id: WorkerId) {
        let Some(w) = self.workers.get_mut(&id).filter(|w| w.trusted) else { return };
        w.trusted = false;
        self.stats.protocol_errors += 1;
        if w.life == Life::Killed {
            return;
        }
        self.hard_kill(id, KillReason::Protocol);
    }

    fn set_life(&mut self, id: WorkerId, life: Life) {
        if let Some(w) = self.workers.get_mut(&id) {
            self.census.leave(w, self.generation);
            w.life = life;
            self.census.join(w, self.generation);
        }
        if life != Life::Active {
            self.release(id);
        }
    }

    fn kill(&mut self, id: WorkerId, signal: KillSignal, reason: KillReason) {
        self.actions.push_back(Action::Kill { id, signal, reason });
    }

    /// The worker takes no more work: out of the idle queue. A dispatch it has not answered stays
    /// booked: a leaving worker may still accept and answer it, and if it dies first the
    /// connection goes back to the backlog when it is reaped (B15).
    fn release(&mut self, id: WorkerId) {
        let Some(w) = self.workers.get_mut(&id) else {
            return;
        };
        if w.accepting == Accepting::Idle {
            self.dispatcher.remove_idle(id);
            w.accepting = Accepting::Busy;
        }
    }

    /// A dispatch on `s` was answered. The arbiter's count of waiting connections may now be
    /// short (a kernel count taken while this worker had accepted but not yet answered did not
    /// include the connection that arrived after), so ask for a level re-check.
    fn answered(&mut self, s: ListenerId) {
        self.dispatcher.answered(s);
        if self.phase == Phase::Running {
            self.actions.push_back(Action::Poll(s));
        }
    }

    /// Whether a spawn waits for nothing but the backoff: a role is below its target and, after
    /// boot failures, no probe is still booting (one at a time). The spawn timer is pending only
    /// then, so that the arbiter never wakes at a deadline it would do nothing at.
    fn spawn_pending(&self) -> bool {
        self.role_to_spawn().is_some() && !self.probe_booting()
    }

    /// After boot failures, a worker spawned and not yet booted: the probe.
    fn probe_booting(&self) -> bool {
        self.boot_failures > 0 && self.workers.values().any(|w| !w.booted && w.life == Life::Active)
    }

    /// HTTP workers first, then cron workers, up to their targets.
    fn role_to_spawn(&self) -> Option<Role> {
        [(Role::Http, self.target), (Role::Cron, self.cron_target)]
            .into_iter()
            .find(|&(role, target)| self.census.of(role).current < target as usize)
            .map(|(role, _)| role)
    }

    /// After every input: converge the worker count, dispatch, watch, finish a stop.
    fn settle(&mut self) {
        debug_assert_eq!(
            self.census,
            Census::take(self.workers.values(), self.generation),
            "the census kept as workers change is the table's"
        );
        match self.phase {
            Phase::Running => {
                self.manage_workers();
                self.dispatch();
                let changes: Vec<_> = self.dispatcher.sync_watches(true).collect();
                self.push_watches(changes);
            }
            Phase::Stopping { code, .. } => {
                let changes: Vec<_> = self.dispatcher.sync_watches(false).collect();
                self.push_watches(changes);
                if self.workers.is_empty() {
                    self.phase = Phase::Exited;
                    self.actions.push_back(Action::Exit {
                        code,
                        unlink_sockets: !self.reexec_running || bug!(self, B08),
                    });
                }
            }
            Phase::Exited => {}
        }
    }

    fn push_watches(&mut self, changes: Vec<(ListenerId, bool)>) {
        for (s, watch) in changes {
            self.actions.push_back(if watch { Action::Watch(s) } else { Action::Unwatch(s) });
        }
    }

    fn manage_workers(&mut self) {
        let now = self.now;
        // Spawn up to the target; after boot failures, one probe at a time and not before the
        // backoff ends.
        while let Some(role) = self.role_to_spawn()
            && now >= self.spawn_not_before
        {
            // One probe at a time: the probe just spawned is booting, so this ends the loop.
            if self.probe_booting() {
                break;
            }
            self.spawn(role);
        }
        // The table is read below only for the ids of workers to retire.
        for (role, target) in [(Role::Http, self.target), (Role::Cron, self.cron_target)] {
            let target = target as usize;
            let cur = self.generation;
            // Retire the oldest current-generation workers above the target (TTOU, WINCH).
            let excess = self.census.of(role).current.saturating_sub(target);
            if excess > 0 && !bug!(self, B10) {
                for id in
                    self.oldest(excess, |w| w.role == role && w.life == Life::Active && w.generation == cur)
                {
                    self.retire(id);
                }
            }
            // Retire old-generation workers as their replacements come up (HUP).
            let count = self.census.of(role);
            let excess = count.old.saturating_sub(target.saturating_sub(count.booted));
            if excess > 0 {
                for id in
                    self.oldest(excess, |w| w.role == role && w.life == Life::Active && w.generation < cur)
                {
                    self.retire(id);
                }
            }
        }
    }

    /// The `n` oldest workers matching `f` (ids grow with age).
    fn oldest(&self, n: usize, f: impl Fn(&WorkerEntry) -> bool) -> Vec<WorkerId> {
        self.workers.iter().filter(|(_, w)| f(w)).map(|(&id, _)| id).take(n).collect()
    }

    fn retire(&mut self, id: WorkerId) {
        // B25: the grace of a retiring worker cut to half: it is killed early.
        let grace = if bug!(self, B25) { self.b25_grace() } else { self.config.graceful_timeout };
        let kill_at = self.now + grace;
        self.ask(id, KillSignal::Term, KillReason::Retire, kill_at);
    }

    fn spawn(&mut self, role: Role) {
        let id = WorkerId(self.next_id);
        self.next_id += 1;
        let max_requests = match self.config.max_requests {
            // B27: a jitter without its base taken as a budget of its own.
            0 if bug!(self, B27) => self.b27_budget(),
            0 => 0,
            n if bug!(self, B06) => n,
            n => n.saturating_add(self.rng.up_to(self.config.max_requests_jitter)),
        };
        let w = WorkerEntry {
            role,
            generation: self.generation,
            spawned_at: self.now,
            last_seen: self.now,
            booted: false,
            life: Life::Active,
            accepting: Accepting::Busy,
            requests: 0,
            max_requests,
            asked: None,
            trusted: true,
            alive_window: (self.now, 0),
        };
        self.census.join(&w, self.generation);
        self.workers.insert(id, w);
        self.stats.spawns += 1;
        self.actions.push_back(Action::Spawn { id, role, generation: self.generation, max_requests });
    }

    fn dispatch(&mut self) {
        while let Some((to, socket)) = self.next_dispatch() {
            self.send_accept(to, socket);
            if bug!(self, B17) {
                // Wake every idle worker for this one connection.
                while let Some(other) = self.dispatcher.idle().front().copied() {
                    self.dispatcher.remove_idle(other);
                    self.dispatcher.booked_extra(socket);
                    self.send_accept(other, socket);
                }
            }
        }
    }

    fn next_dispatch(&mut self) -> Option<(WorkerId, ListenerId)> {
        // B23: the newest idle worker first, so the others wait while it is served.
        #[cfg(feature = "mutants")]
        if bug!(self, B23) {
            return self.dispatcher.next_dispatch_newest_first();
        }
        self.dispatcher.next_dispatch()
    }

    fn send_accept(&mut self, to: WorkerId, socket: ListenerId) {
        if let Some(w) = self.workers.get_mut(&to) {
            w.accepting = Accepting::Dispatched(socket);
        }
        self.stats.dispatches += 1;
        self.actions.push_back(Action::Send { to, msg: ArbiterMsg::Accept { socket } });
    }
}

#[cfg(all(test, not(herd_loom)))]
mod tests;
