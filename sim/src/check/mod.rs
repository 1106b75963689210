//! World-level checkers, one module per invariant of docs/architecture.md. They see what the arbiter
//! cannot: the kernel's accept queues, the registry a request really ran on, the processes that
//! really live. The arbiter-level invariants come from `herd_protocol::invariants::Monitor`,
//! which the world runs on every step (`Checked`).

mod fair_dispatch;
mod graceful_stop;
mod liveness_kill;
mod no_lost_wakeup;
mod no_stale_registry;
mod reaping;
mod recycling;
mod single_wakeup;
mod worker_count;

use crate::world::Tally;
use herd_protocol::arbiter::{AcceptMode, Arbiter, Config, WorkerId};
use herd_protocol::invariants::Violation;
use herd_protocol::message::ListenerId;
use herd_protocol::time::Instant;
use herd_protocol::worker;
use std::time::Duration;

/// What the checkers see of the world after an event.
pub struct View<'a> {
    /// Virtual time.
    pub now: Instant,
    /// The arbiter core.
    pub arbiter: &'a Arbiter,
    /// Connections waiting in each listener's accept queue.
    pub queues: Vec<usize>,
    /// Whether each listener reports its queue length to the arbiter.
    pub counts: Vec<bool>,
    /// Live workers waiting for work: id, frames in flight to the arbiter, core state.
    pub idle_workers: Vec<(WorkerId, u32, worker::State)>,
    /// Worker processes alive.
    pub live_procs: usize,
    /// Dead worker processes not yet reaped.
    pub zombies: usize,
    /// Live workers stuck in a hung request, with when they last wrote to their pipe.
    pub hung: Vec<(WorkerId, Instant)>,
    /// Counters.
    pub(crate) tally: Tally,
    /// The largest pipe delay of this run.
    pub max_delay: Duration,
    /// When the final TERM reaches the arbiter, once it is sent.
    pub stop_sent: Option<Instant>,
}

/// All world-level checkers of one run.
pub struct Checkers {
    no_lost_wakeup: no_lost_wakeup::NoLostWakeup,
    single_wakeup: single_wakeup::SingleWakeup,
    no_stale_registry: no_stale_registry::NoStaleRegistry,
    recycling: recycling::Recycling,
    liveness_kill: liveness_kill::LivenessKill,
    worker_count: worker_count::WorkerCount,
    reaping: reaping::Reaping,
    graceful_stop: graceful_stop::GracefulStop,
    fair_dispatch: fair_dispatch::FairDispatch,
    error: Option<Violation>,
}

impl Checkers {
    /// Checkers for a server with this configuration.
    pub fn new(config: &Config) -> Self {
        Checkers {
            no_lost_wakeup: no_lost_wakeup::NoLostWakeup::default(),
            single_wakeup: single_wakeup::SingleWakeup::new(config),
            no_stale_registry: no_stale_registry::NoStaleRegistry,
            recycling: recycling::Recycling::new(config),
            liveness_kill: liveness_kill::LivenessKill::new(config),
            worker_count: worker_count::WorkerCount,
            reaping: reaping::Reaping,
            graceful_stop: graceful_stop::GracefulStop::new(config),
            fair_dispatch: fair_dispatch::FairDispatch::default(),
            error: None,
        }
    }

    fn note(&mut self, r: Result<(), Violation>) {
        if let (Err(v), None) = (r, &self.error) {
            self.error = Some(v);
        }
    }

    /// The first violation a hook found, if any.
    pub fn take_error(&mut self) -> Result<(), Violation> {
        self.error.take().map_or(Ok(()), Err)
    }

    pub(crate) fn spawned(&mut self, id: WorkerId, budget: u32) {
        self.recycling.spawned(id, budget);
    }

    pub(crate) fn empty_accept(&mut self, id: WorkerId, mode: AcceptMode, told: Option<ListenerId>) {
        let r = self.single_wakeup.empty_accept(id, mode, told);
        self.note(r);
    }

    /// The arbiter took `id`'s request for work (ACCEPT or EMPTY).
    pub(crate) fn asked(&mut self, id: WorkerId) {
        self.fair_dispatch.asked(id);
    }

    /// `id` will not wait for work again: a stop or kill signal, its BYE.
    pub(crate) fn leaving(&mut self, id: WorkerId) {
        self.fair_dispatch.leaving(id);
    }

    /// `id` was reaped.
    pub(crate) fn reaped(&mut self, id: WorkerId) {
        self.fair_dispatch.reaped(id);
    }

    /// `ACCEPT:<socket>` went to `to`.
    pub(crate) fn dispatched(&mut self, to: WorkerId, live: usize) {
        let r = self.fair_dispatch.dispatched(to, live);
        self.note(r);
    }

    pub(crate) fn taken_by_the_dead(&mut self, s: ListenerId) {
        self.single_wakeup.taken_by_the_dead(s);
    }

    pub(crate) fn serve(&mut self, id: WorkerId, version: u64, signalled: u64, served: u32, budget: u32) {
        let r = self.no_stale_registry.serve(id, version, signalled);
        self.note(r);
        let r = self.recycling.serve(id, served, budget);
        self.note(r);
    }

    /// After every event.
    pub fn after_event(&mut self, v: &View<'_>) -> Result<(), Violation> {
        self.take_error()?;
        self.no_lost_wakeup.check(v)?;
        self.liveness_kill.check(v)?;
        Ok(())
    }

    /// At the end of the liveness phase.
    pub(crate) fn liveness_done(&mut self, v: &View<'_>) {
        let r = self.worker_count.converged(v);
        self.note(r);
        let r = self.reaping.converged(v);
        self.note(r);
    }

    /// At the end of the run.
    pub fn at_end(
        &mut self,
        v: &View<'_>,
        exited: Option<i32>,
        stop_sent: Option<Instant>,
        code: i32,
    ) -> Result<(), Violation> {
        self.take_error()?;
        self.recycling.at_end()?;
        self.graceful_stop.at_end(v, exited, stop_sent, code)
    }
}
