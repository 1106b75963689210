//! The arbiter's timer table: every deadline it acts on, each computed in one place.
//!
//! [`Arbiter::poll_timeout`] is the earliest of [`Arbiter::timers`], and
//! [`Arbiter::handle_timeout`] fires exactly the timers that are due, so the instant the runtime
//! sleeps until and the instant the core acts at cannot disagree (they once did: a retiring
//! worker's silence was acted on but not reported, so a hung request outlived its timeout until
//! something else woke the arbiter; docs/bugs.md, B21).
//!
//! The deadlines are read from the worker table and the phase rather than stored, so no
//! transition can forget to arm or disarm one: a timer is pending exactly while the state it
//! belongs to lasts.

use super::{Arbiter, Life, Phase, WorkerEntry, WorkerId};
use crate::time::Instant;

/// A deadline the arbiter acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// A worker asked to stop (TERM, QUIT, its own BYE) or soft-killed (ABRT) is still there at
    /// the end of its grace: SIGKILL.
    Grace(WorkerId),
    /// A worker has been silent for `timeout` (by the arbiter's receive time): ABRT, then SIGKILL
    /// after `kill_grace`. Pending for an active worker, and for a retiring one while the server
    /// runs; a stopping server gives its workers `graceful_timeout` instead.
    Silence(WorkerId),
    /// A stop's `graceful_timeout` ends with workers left: SIGKILL them all.
    StopDeadline,
    /// The respawn backoff after boot failures ends: spawn.
    SpawnBackoff,
}

impl Arbiter {
    /// When `timer` is due, if it is pending.
    pub fn timer(&self, timer: Timer) -> Option<Instant> {
        if self.phase == Phase::Exited {
            return None;
        }
        match timer {
            Timer::Grace(id) => self.workers.get(&id).and_then(|w| self.grace_at(w)),
            Timer::Silence(id) => self.workers.get(&id).and_then(|w| self.silence_at(w)),
            Timer::StopDeadline => self.stop_deadline(),
            Timer::SpawnBackoff => self.backoff_ends(),
        }
    }

    /// Every pending timer with its deadline: per worker (oldest first) its grace, then its
    /// silence; then the stop deadline and the spawn backoff. [`Arbiter::handle_timeout`] fires
    /// the due ones in this order.
    pub fn timers(&self) -> impl Iterator<Item = (Timer, Instant)> + '_ {
        let live = self.phase != Phase::Exited;
        let workers = self.workers.iter().filter(move |_| live).flat_map(move |(&id, w)| {
            [
                self.grace_at(w).map(|at| (Timer::Grace(id), at)),
                self.silence_at(w).map(|at| (Timer::Silence(id), at)),
            ]
        });
        let global = [
            self.timer(Timer::StopDeadline).map(|at| (Timer::StopDeadline, at)),
            self.timer(Timer::SpawnBackoff).map(|at| (Timer::SpawnBackoff, at)),
        ];
        workers.chain(global).flatten()
    }

    /// The earliest of [`Arbiter::timers`]: what `poll_timeout` answers.
    pub(super) fn earliest_timer(&self) -> Option<Instant> {
        self.timers()
            // B21: a retiring worker's silence is acted on but not reported, so the driver
            // sleeps past it.
            .filter(|&(t, _)| {
                !(bug!(self, B21)
                    && matches!(t, Timer::Silence(id) if self.workers.get(&id).is_some_and(|w| w.life != Life::Active)))
            })
            .map(|(_, at)| at)
            .min()
    }

    fn grace_at(&self, w: &WorkerEntry) -> Option<Instant> {
        match w.life {
            // B19: a stopping server never enforces the graceful timeout.
            Life::Stopping { .. } | Life::Killing { .. }
                if bug!(self, B19) && self.phase != Phase::Running =>
            {
                None
            }
            Life::Stopping { kill_at } | Life::Killing { kill_at } => Some(kill_at),
            Life::Active | Life::Killed => None,
        }
    }

    fn silence_at(&self, w: &WorkerEntry) -> Option<Instant> {
        // A retiring worker (HUP, TTOU, WINCH, recycling) is still bound by the request timeout
        // while the server runs, as gunicorn's murder_workers does.
        let bound = match w.life {
            Life::Active => true,
            Life::Stopping { .. } => self.phase == Phase::Running,
            Life::Killing { .. } | Life::Killed => false,
        };
        // B26: no timeout read as the pace, a kill the operator turned off.
        let timeout = if bug!(self, B26) { Some(self.config.pace()) } else { self.config.timeout };
        timeout.filter(|_| bound).map(|t| w.last_seen + t)
    }

    /// The deadline of a stop, while someone is left to kill; after that the arbiter waits for
    /// reaps, which are inputs.
    fn stop_deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Stopping { deadline, .. }
                if !bug!(self, B19) && self.workers.values().any(|w| w.life != Life::Killed) =>
            {
                Some(deadline)
            }
            _ => None,
        }
    }

    /// The end of the spawn backoff, while a spawn waits for it.
    fn backoff_ends(&self) -> Option<Instant> {
        (self.phase == Phase::Running && self.spawn_pending() && self.spawn_not_before > self.now)
            .then_some(self.spawn_not_before)
    }
}
