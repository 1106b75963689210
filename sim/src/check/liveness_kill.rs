//! liveness-kill, seen from the world: a worker stuck in a hung request is dead within `timeout`
//! of the last frame it wrote (plus the pipe delay and the signal's delivery) while the server
//! runs — exactly, so a timer the arbiter acts on late is caught (B21); a stopping server gives it
//! at most its graceful timeout instead. (The other half, "a worker that is heard from is never
//! killed for timeout", is the Monitor's.)

use super::View;
use herd_protocol::arbiter::{Config, Phase};
use herd_protocol::invariants::{Invariant, Violation};
use std::time::Duration;

pub(super) struct LivenessKill {
    /// While the server runs: the timeout, and the soft kill (ABRT) ends the process.
    running: Duration,
    /// While it stops: the stop's deadline or the hard kill after the soft one, whichever binds.
    stopping: Duration,
}

impl LivenessKill {
    pub(super) fn new(c: &Config) -> Self {
        LivenessKill {
            running: c.timeout + crate::world::SIGNAL_DELAY,
            stopping: c.timeout + c.kill_grace.max(c.graceful_timeout) + crate::world::SIGNAL_DELAY,
        }
    }

    pub(super) fn check(&self, v: &View<'_>) -> Result<(), Violation> {
        let allowance = if v.arbiter.phase() == Phase::Running { self.running } else { self.stopping };
        for &(id, last_sent) in &v.hung {
            let due = last_sent + allowance + v.max_delay;
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
