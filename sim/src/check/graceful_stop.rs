//! graceful-stop: after TERM the arbiter exits with code 0 within `graceful_timeout` (plus the
//! kill grace and a second of slack), with every worker gone; after a halt (a row of boot
//! failures), the same with code 3.

use super::View;
use herd_protocol::arbiter::Config;
use herd_protocol::invariants::{Invariant, Violation};
use herd_protocol::time::Instant;

pub(super) struct GracefulStop {
    graceful: std::time::Duration,
}

impl GracefulStop {
    pub(super) fn new(c: &Config) -> Self {
        GracefulStop { graceful: c.graceful_timeout }
    }

    pub(super) fn at_end(
        &self,
        v: &View<'_>,
        exited: Option<i32>,
        stop_sent: Option<Instant>,
        code: i32,
    ) -> Result<(), Violation> {
        let Some(sent) = stop_sent else { return Ok(()) };
        match exited {
            Some(c) if c == code && v.live_procs == 0 && v.zombies == 0 => Ok(()),
            Some(code) => Err(Violation::new(
                Invariant::GracefulStop,
                format!("exit {code} with {} workers alive, {} unreaped", v.live_procs, v.zombies),
            )),
            None => Err(Violation::new(
                Invariant::GracefulStop,
                format!(
                    "stop (exit {code}) at {sent:?}, still running at {:?} (graceful_timeout {:?}) with {} workers",
                    v.now, self.graceful, v.live_procs
                ),
            )),
        }
    }
}
