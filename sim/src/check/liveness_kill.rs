//! liveness-kill, seen from the world: a worker stuck in a hung request is dead within
//! `timeout` (plus its grace and the pipe delay) of the last frame it wrote. (The other half, "a
//! worker that is heard from is never killed for timeout", is the Monitor's.)

use super::View;
use herd_protocol::arbiter::Config;
use herd_protocol::invariants::{Invariant, Violation};
use std::time::Duration;

pub(super) struct LivenessKill {
    allowance: Duration,
}

impl LivenessKill {
    pub(super) fn new(c: &Config) -> Self {
        LivenessKill {
            allowance: c.timeout + c.kill_grace.max(c.graceful_timeout) + Duration::from_millis(1),
        }
    }

    pub(super) fn check(&self, v: &View<'_>) -> Result<(), Violation> {
        for &(id, last_sent) in &v.hung {
            let due = last_sent + self.allowance + v.max_delay;
            if v.now > due {
                return Err(Violation::new(
                    Invariant::LivenessKill,
                    format!("{id} hung since its last frame at {last_sent:?}, still alive at {:?}", v.now),
                ));
            }
        }
        Ok(())
    }
}
