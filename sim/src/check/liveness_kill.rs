//! liveness-kill, seen from the world: a worker stuck in a hung request is dead within `timeout`
//! of the last frame it wrote (plus the pipe delay and the signal's delivery) while the server
//! runs — exactly, so a timer the arbiter acts on late is caught (B21); a stopping server gives it
//! at most its graceful timeout instead. Without a timeout (`--timeout 0`) nothing is owed while
//! the server runs, and a stop kills a hung worker by the stop's deadline, counted from the stop
//! (or from its last frame, if later). (The other half, "a worker that is heard from is never
//! killed for timeout", and "never at all without a timeout", is the Monitor's.)

use super::View;
use herd_protocol::arbiter::{Config, Phase};
use herd_protocol::invariants::{Invariant, Violation};
use std::time::Duration;

pub(super) struct LivenessKill {
    /// While the server runs: the timeout, and the soft kill (ABRT) ends the process; nothing
    /// without a timeout.
    running: Option<Duration>,
    /// While it stops: the stop's deadline or the hard kill after the soft one, whichever binds.
    stopping: Duration,
    /// No timeout: the stopping allowance counts from the stop as well.
    untimed: bool,
}

impl LivenessKill {
    pub(super) fn new(c: &Config) -> Self {
        let d = crate::world::SIGNAL_DELAY;
        match c.timeout {
            Some(t) => LivenessKill {
                running: Some(t + d),
                stopping: t + c.kill_grace.max(c.graceful_timeout) + d,
                untimed: false,
            },
            // The stop's deadline, then KILL; the kill grace is slack for the signal's delivery.
            None => {
                LivenessKill { running: None, stopping: c.graceful_timeout + c.kill_grace + d, untimed: true }
            }
        }
    }

    pub(super) fn check(&self, v: &View<'_>) -> Result<(), Violation> {
        let allowance = if v.arbiter.phase() == Phase::Running { self.running } else { Some(self.stopping) };
        let Some(allowance) = allowance else { return Ok(()) };
        for &(id, last_sent) in &v.hung {
            let since = match v.stop_sent {
                Some(stop) if self.untimed => last_sent.max(stop),
                _ => last_sent,
            };
            let due = since + allowance + v.max_delay;
            if v.now > due {
                return Err(Violation::new(
                    Invariant::LivenessKill,
                    format!(
                        "{id} hung since its last frame at {last_sent:?}, still alive at {:?} (due by {due:?})",
                        v.now
                    ),
                ));
            }
        }
        Ok(())
    }
}
