//! The worker core: ask for work, accept, serve, heartbeat, recycle, drain — as a sans-IO state
//! machine. The runtime's worker process, the simulator's workers and the models drive it.
//!
//! # Driving it
//!
//! Call [`Worker::start`] once after fork, then [`Worker::handle`] for each event and
//! [`Worker::handle_timeout`] when [`Worker::poll_timeout`] says. **Drain rule:** after each of
//! these calls, call [`Worker::poll_action`] until `None` and carry the actions out in order.
//!
//! # The cycle
//!
//! Boot: send `ALIVE` (the arbiter learns it booted). Then, by accept mode:
//! - signaled: send `ACCEPT`, wait for `ACCEPT:<socket>`, try one non-blocking accept on that
//!   listener, answer `ACCEPTED:<socket>` (then serve) or `EMPTY:<socket>` (idle again);
//! - shared: try a non-blocking accept on any listener; when there is nothing, wait for the
//!   listeners to be readable ([`Worker::waits_on_listeners`]) and try again;
//! - auto: try a direct accept first; only when there is nothing, send `ACCEPT` and proceed as
//!   signaled. Under load the workers never wait for the arbiter.
//!
//! [`Action::Serve`] means: read the registry sequences, run the registry check
//! ([`crate::registry::Registry::before_request`]), then run the handler on the connection; report
//! [`Input::RequestDone`] when it returns. The request budget is checked *after* each request
//! (B18): a worker with budget n serves exactly n requests, then says `BYE:recycle` and exits.
//! While not serving it sends `ALIVE` at least every `timeout / 2`, and at each request boundary
//! when one is due (a worker that goes from request to request never waits). TERM lets the current request
//! finish; QUIT and INT exit at once; a changed parent means exit at the next idle point.

use crate::arbiter::AcceptMode;
use crate::message::{ArbiterMsg, ByeReason, ListenerId, WorkerMsg};
use crate::time::Instant;
use core::time::Duration;
use std::collections::VecDeque;

/// Exit code of a worker that stopped on purpose.
pub const EXIT_OK: i32 = 0;
/// Exit code of a worker that received an illegal frame from its arbiter.
pub const EXIT_PROTOCOL: i32 = 1;

/// A worker's configuration (from its `Spawn` action and the server's config).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct WorkerConfig {
    /// How connections reach it.
    pub accept_mode: AcceptMode,
    /// The arbiter's silence timeout; heartbeats go out at least every half of it.
    pub timeout: Duration,
    /// Requests to serve before recycling; 0 = unlimited.
    pub max_requests: u32,
    /// Sync (one connection at a time) or async (several at once).
    pub kind: WorkerKind,
}

/// What kind of worker: how many connections it serves at once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum WorkerKind {
    /// One connection at a time, one request per connection; no heartbeat while serving, so the
    /// arbiter's timeout is a request timeout (gunicorn's sync worker).
    #[default]
    Sync,
    /// Up to `connections` connections at once, each with any number of requests (keep-alive).
    /// It asks for work whenever it is below its limit, and heartbeats while requests run, so
    /// the timeout catches a blocked event loop, not a slow request.
    Async {
        /// Most connections open at once (`--worker-connections`).
        connections: u32,
    },
}

/// Signals a worker acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum WorkerSignal {
    /// Finish the current request, then exit.
    Term,
    /// Exit now (QUIT or INT).
    Quit,
}

/// Something that happened to the worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Input {
    /// A frame from the arbiter.
    Message(ArbiterMsg),
    /// The arbiter's pipe carried a malformed frame.
    Malformed,
    /// The accept asked for took a connection from this listener.
    Accepted(ListenerId),
    /// The accept asked for found nothing.
    AcceptEmpty,
    /// A listener became readable (shared mode, while waiting on the listeners).
    ListenersReadable,
    /// The handler returned.
    RequestDone,
    /// A signal.
    Signal(WorkerSignal),
    /// The parent is no longer the arbiter this worker was born to.
    ParentChanged,
    /// The worker's memory passed its soft limit: leave after the current request.
    OverMemory,
    /// Async workers: a connection closed (it was counted open since its `Accepted`).
    ConnectionClosed,
    /// The accept asked for failed for lack of resources (descriptors, buffers, memory): back
    /// off before trying again, rather than spin.
    AcceptFailed,
}

/// What the worker must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Action {
    /// Write this frame to the arbiter.
    Send(WorkerMsg),
    /// Try one non-blocking accept: on this listener, or on any (`None`). Report
    /// [`Input::Accepted`], [`Input::AcceptEmpty`] or [`Input::AcceptFailed`].
    Accept(Option<ListenerId>),
    /// Check the registry, then run the handler on the accepted connection; report
    /// [`Input::RequestDone`].
    Serve(ListenerId),
    /// Exit the process with this code.
    Exit(i32),
    /// Async workers: finish the requests under way, close every connection after its current
    /// request (no more keep-alive), then report [`Input::ConnectionClosed`] for each.
    Drain,
}

/// Where the worker is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Not started.
    Booting,
    /// Sent `ACCEPT` (or `EMPTY`), waiting for `ACCEPT:<socket>`.
    Idle,
    /// An accept is under way; `Some` if the arbiter told us which listener.
    Accepting(Option<ListenerId>),
    /// Shared mode: nothing to accept, waiting for a listener to become readable.
    Waiting,
    /// An accept failed for lack of resources; at [`Timer::AcceptRetry`] the worker goes on as
    /// if it had found nothing (answering `EMPTY` if the arbiter told it where).
    Backoff(Option<ListenerId>),
    /// Running the handler.
    Serving,
    /// Exit was emitted.
    Exited,
}

/// A deadline the worker core acts on (its timer table; see docs/architecture.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// `timeout / 2` since its last `ALIVE`: send `ALIVE`.
    Heartbeat,
    /// The end of the backoff after an accept failed for lack of resources.
    AcceptRetry,
}

/// The first backoff after an accept failed for lack of resources; it doubles per failure in a
/// row, up to [`MAX_ACCEPT_BACKOFF`], and starts over after an accept succeeds.
pub const MIN_ACCEPT_BACKOFF: Duration = Duration::from_millis(10);
/// The longest backoff after failed accepts.
pub const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// The worker core.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Worker {
    config: WorkerConfig,
    state: State,
    now: Instant,
    last_alive: Instant,
    requests: u64,
    /// Leave at the next idle point, with this reason.
    leaving: Option<ByeReason>,
    /// Async workers: connections open.
    open: u32,
    /// The backoff after the last accept that failed for lack of resources (zero after one that
    /// did not), and when it ends.
    backoff: (Duration, Instant),
    actions: VecDeque<Action>,
}

impl Worker {
    /// As [`crate::arbiter::Arbiter::translate_back`], for the worker's instants.
    #[doc(hidden)]
    pub fn translate_back(&mut self, d: Duration) {
        self.now = self.now - d;
        self.last_alive = self.last_alive - d;
        self.backoff.1 = self.backoff.1 - d;
    }

    /// As [`crate::arbiter::Arbiter::clamp_past`], for the worker's clock, last heartbeat and backoff.
    #[doc(hidden)]
    pub fn clamp_past(&mut self, floor: Instant) {
        // Every call that reads the clock first raises it to the caller's time, never earlier
        // than `floor`; a backoff's end is read only while it is in the future.
        self.now = self.now.max(floor);
        self.backoff.1 = self.backoff.1.max(floor);
        self.last_alive = self.last_alive.max(floor);
        // Without a budget, the count decides nothing.
        if self.config.max_requests == 0 {
            self.requests = 0;
        }
    }

    /// A worker that has not started.
    pub fn new(config: WorkerConfig, now: Instant) -> Self {
        Worker {
            config,
            state: State::Booting,
            now,
            last_alive: now,
            requests: 0,
            leaving: None,
            open: 0,
            backoff: (Duration::ZERO, now),
            actions: VecDeque::new(),
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &WorkerConfig {
        &self.config
    }

    /// Where it is.
    pub fn state(&self) -> State {
        self.state
    }

    /// Requests served.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// Whether the runtime should wait for the listeners to become readable (shared mode).
    pub fn waits_on_listeners(&self) -> bool {
        self.state == State::Waiting
    }

    /// The next action. Drain until `None` after every call that changes state.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`Worker::handle_timeout`] is due: the earliest of [`Worker::timers`].
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers().map(|(_, at)| at).min()
    }

    /// When `timer` is due, if it is pending. The heartbeat is pending except while booting,
    /// after exit, and while a sync worker serves (a sync worker cannot heartbeat in the middle of
    /// a request, which is what makes the arbiter's timeout a request timeout).
    pub fn timer(&self, timer: Timer) -> Option<Instant> {
        match timer {
            Timer::Heartbeat => match (self.state, self.config.kind) {
                (State::Exited | State::Booting, _) | (State::Serving, WorkerKind::Sync) => None,
                _ => Some(self.last_alive + self.config.timeout / 2),
            },
            Timer::AcceptRetry => matches!(self.state, State::Backoff(_)).then_some(self.backoff.1),
        }
    }

    /// Every pending timer with its deadline.
    pub fn timers(&self) -> impl Iterator<Item = (Timer, Instant)> + '_ {
        [Timer::Heartbeat, Timer::AcceptRetry].into_iter().filter_map(|t| self.timer(t).map(|at| (t, at)))
    }

    /// Async workers: connections open.
    pub fn open_connections(&self) -> u32 {
        self.open
    }

    /// Boots: announce liveness and start asking for work.
    pub fn start(&mut self, now: Instant) {
        self.now = self.now.max(now);
        if self.state == State::Booting {
            self.alive();
            self.ask_for_work();
        }
    }

    /// Fires every timer due at `now`: a heartbeat, the end of an accept backoff.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        if self.timer(Timer::Heartbeat).is_some_and(|t| t <= self.now) {
            self.alive();
        }
        if self.timer(Timer::AcceptRetry).is_some_and(|t| t <= self.now)
            && let State::Backoff(told) = self.state
        {
            // Go on as if the accept had found nothing: answer EMPTY if told where (the
            // connection goes to the next idle worker), or wait on the listeners again.
            self.state = State::Accepting(told);
            let now = self.now;
            self.handle(now, Input::AcceptEmpty);
        }
    }

    /// An accept failed for lack of resources: back off, doubling from the last failure in a row.
    fn back_off(&mut self, told: Option<ListenerId>) {
        let next = (self.backoff.0 * 2).clamp(MIN_ACCEPT_BACKOFF, MAX_ACCEPT_BACKOFF);
        self.backoff = (next, self.now + next);
        self.state = State::Backoff(told);
    }

    /// Handles one event.
    pub fn handle(&mut self, now: Instant, input: Input) {
        self.now = self.now.max(now);
        if let WorkerKind::Async { connections } = self.config.kind {
            return self.handle_async(input, connections.max(1));
        }
        match (self.state, input) {
            (State::Exited, _) => {}
            (_, Input::Signal(WorkerSignal::Quit)) => self.exit(EXIT_OK),
            (_, Input::Malformed) => self.exit(EXIT_PROTOCOL),
            (_, Input::Signal(WorkerSignal::Term)) => self.leave(ByeReason::Stop),
            (_, Input::ParentChanged) => self.leave(ByeReason::Parent),
            (_, Input::OverMemory) => self.leave(ByeReason::Memory),
            (State::Idle, Input::Message(ArbiterMsg::Accept { socket })) => {
                self.accept(Some(socket));
            }
            (State::Accepting(told), Input::AcceptFailed) => self.back_off(told),
            (State::Accepting(told), Input::Accepted(socket)) => {
                self.backoff.0 = Duration::ZERO;
                if told.is_some() {
                    self.send(WorkerMsg::Accepted { socket });
                }
                self.state = State::Serving;
                self.actions.push_back(Action::Serve(socket));
            }
            (State::Accepting(Some(socket)), Input::AcceptEmpty) => {
                // Idle again; the arbiter re-queues us on EMPTY, no new ACCEPT (B16).
                self.send(WorkerMsg::Empty { socket });
                self.idle_point(State::Idle);
            }
            (State::Accepting(None), Input::AcceptEmpty) => match self.config.accept_mode {
                AcceptMode::Shared => {
                    self.idle_point(State::Waiting);
                }
                _ => {
                    if self.idle_point(State::Idle) {
                        self.send(WorkerMsg::Accept);
                    }
                }
            },
            (State::Waiting, Input::ListenersReadable) => {
                self.accept(None);
            }
            (State::Serving, Input::RequestDone) => {
                self.requests += 1;
                let budget = u64::from(self.config.max_requests);
                if budget > 0 && self.requests >= budget {
                    self.bye(ByeReason::Recycle);
                } else if let Some(reason) = self.leaving {
                    self.bye(reason);
                } else {
                    self.ask_for_work();
                }
            }
            // ACCEPT:<socket> while not idle: the arbiter broke the protocol; never trust it.
            (_, Input::Message(_)) => self.exit(EXIT_PROTOCOL),
            // Results that do not fit the state (a spurious readiness, a stray report) change
            // nothing.
            _ => {}
        }
    }

    /// The async kind: the accept half of the cycle is the sync one's; connections are counted,
    /// and the worker asks for more whenever it is below its limit and not leaving.
    fn handle_async(&mut self, input: Input, limit: u32) {
        match (self.state, input) {
            (State::Exited, _) => {}
            (_, Input::Signal(WorkerSignal::Quit)) => self.exit(EXIT_OK),
            (_, Input::Malformed) => self.exit(EXIT_PROTOCOL),
            (_, Input::Signal(WorkerSignal::Term)) => self.leave_async(ByeReason::Stop),
            (_, Input::ParentChanged) => self.leave_async(ByeReason::Parent),
            (_, Input::OverMemory) => self.leave_async(ByeReason::Memory),
            (State::Idle, Input::Message(ArbiterMsg::Accept { socket })) => {
                self.accept(Some(socket));
            }
            (State::Accepting(told), Input::AcceptFailed) => self.back_off(told),
            (State::Accepting(told), Input::Accepted(socket)) => {
                self.backoff.0 = Duration::ZERO;
                if told.is_some() {
                    self.send(WorkerMsg::Accepted { socket });
                }
                self.open += 1;
                self.actions.push_back(Action::Serve(socket));
                if self.leaving.is_none() && self.open < limit {
                    self.ask();
                } else {
                    self.state = State::Serving;
                }
            }
            (State::Accepting(Some(socket)), Input::AcceptEmpty) => {
                self.send(WorkerMsg::Empty { socket });
                self.state = State::Idle;
                self.maybe_bye_async();
            }
            (State::Accepting(None), Input::AcceptEmpty) => {
                if self.leaving.is_some() {
                    self.state = State::Serving;
                    self.maybe_bye_async();
                } else if self.config.accept_mode == AcceptMode::Shared {
                    self.state = State::Waiting;
                } else {
                    self.state = State::Idle;
                    self.send(WorkerMsg::Accept);
                }
            }
            (State::Waiting, Input::ListenersReadable) => {
                self.accept(None);
            }
            (_, Input::RequestDone) => {
                self.requests += 1;
                let budget = u64::from(self.config.max_requests);
                if budget > 0 && self.requests >= budget {
                    self.leave_async(ByeReason::Recycle);
                }
            }
            (_, Input::ConnectionClosed) => {
                self.open = self.open.saturating_sub(1);
                if self.leaving.is_some() {
                    self.maybe_bye_async();
                } else if self.state == State::Serving && self.open < limit {
                    self.ask();
                }
            }
            // ACCEPT:<socket> while not asking: the arbiter broke the protocol.
            (_, Input::Message(_)) => self.exit(EXIT_PROTOCOL),
            _ => {}
        }
    }

    /// Async: stop taking work (the first reason wins), drain the open connections, and say BYE
    /// once none is left. An `ACCEPT` already sent may still be answered with `ACCEPT:<socket>`:
    /// the worker stays ready for it (state `Idle`) and serves what it takes.
    fn leave_async(&mut self, reason: ByeReason) {
        if self.leaving.is_some() {
            return;
        }
        self.leaving = Some(reason);
        self.actions.push_back(Action::Drain);
        if matches!(self.state, State::Waiting | State::Booting) {
            self.state = State::Serving;
        }
        self.maybe_bye_async();
    }

    fn maybe_bye_async(&mut self) {
        if let Some(reason) = self.leaving
            && self.open == 0
            && !matches!(self.state, State::Accepting(_) | State::Exited)
        {
            self.bye(reason);
        }
    }

    /// Leaves now if idle; while a request or an accept is under way, at the next idle point
    /// (the first reason given wins).
    fn leave(&mut self, reason: ByeReason) {
        match self.state {
            // An accept under way (or backing off) still owes the arbiter its answer.
            State::Serving | State::Accepting(_) | State::Backoff(_) => {
                self.leaving.get_or_insert(reason);
            }
            _ => self.bye(reason),
        }
    }

    /// Enters an idle state, or leaves if asked to. Returns false if it left.
    fn idle_point(&mut self, state: State) -> bool {
        match self.leaving {
            Some(reason) => {
                self.bye(reason);
                false
            }
            None => {
                self.state = state;
                true
            }
        }
    }

    fn ask_for_work(&mut self) {
        // A worker going from request to request without ever waiting must still heartbeat:
        // every request boundary sends ALIVE if one is due.
        if self.last_alive + self.config.timeout / 2 <= self.now {
            self.alive();
        }
        self.ask();
    }

    /// Asks for one more connection: `ACCEPT` to the arbiter in signaled mode, else a direct
    /// accept first.
    fn ask(&mut self) {
        match self.config.accept_mode {
            AcceptMode::Signaled => {
                self.state = State::Idle;
                self.send(WorkerMsg::Accept);
            }
            AcceptMode::Shared | AcceptMode::Auto => self.accept(None),
        }
    }

    /// Accepts on `which` listener (or any, `None`).
    fn accept(&mut self, which: Option<ListenerId>) {
        self.state = State::Accepting(which);
        self.actions.push_back(Action::Accept(which));
    }

    fn alive(&mut self) {
        self.last_alive = self.now;
        self.send(WorkerMsg::Alive { timestamp: self.now.as_millis() });
    }

    fn send(&mut self, msg: WorkerMsg) {
        self.actions.push_back(Action::Send(msg));
    }

    fn bye(&mut self, reason: ByeReason) {
        self.send(WorkerMsg::Bye { reason });
        self.exit(EXIT_OK);
    }

    fn exit(&mut self, code: i32) {
        self.state = State::Exited;
        self.actions.push_back(Action::Exit(code));
    }
}

#[cfg(all(test, not(herd_loom)))]
mod tests;
