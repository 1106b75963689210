//! no-lost-wakeup, seen from the world: a connection waiting in the kernel while a worker the
//! arbiter knows to be idle waits too, for longer than the readiness latency, is a lost wakeup
//! (the arbiter-level half, "a known backlog with an idle worker", is the Monitor's). A connection
//! counts as waiting only beyond the dispatches already on their way to a worker.

use super::View;
use herd_protocol::arbiter::Accepting;
use herd_protocol::invariants::{Invariant, Violation};
use herd_protocol::time::Instant;
use std::time::Duration;

/// Longest a connection may wait while an idle worker waits.
const BOUND: Duration = Duration::from_millis(1);

#[derive(Default)]
pub(super) struct NoLostWakeup {
    since: Option<Instant>,
}

impl NoLostWakeup {
    pub(super) fn check(&mut self, v: &View<'_>) -> Result<(), Violation> {
        // Connections no worker is on its way to take (a dispatched `ACCEPT:<socket>` may still be
        // crossing a slow pipe). A listener without a queue count (a unix socket) tells the
        // arbiter only "something waits", which it can act on only with nothing outstanding: one
        // dispatch in flight at a time there (see docs/protocol.md).
        let books = v.arbiter.dispatcher().books();
        let waiting = v.queues.iter().enumerate().any(|(i, &q)| {
            let outstanding = books.get(i).map_or(0, |b| b.outstanding as usize);
            if v.counts.get(i).copied().unwrap_or(true) { q > outstanding } else { q > 0 && outstanding == 0 }
        });
        let idle = v.idle_workers.iter().find(|(id, in_flight, _)| {
            *in_flight == 0
                && v.arbiter.workers().get(id).is_some_and(|w| {
                    w.accepting == Accepting::Idle || !v.arbiter.config().accept_mode.dispatches()
                })
        });
        match (waiting, idle) {
            (true, Some((id, _, state))) => {
                let since = *self.since.get_or_insert(v.now);
                if v.now.saturating_since(since) > BOUND {
                    return Err(Violation::new(
                        Invariant::NoLostWakeup,
                        format!(
                            "queues {:?} waiting since {since:?} while {id} is idle ({state:?}); books {:?}",
                            v.queues,
                            v.arbiter.dispatcher().books()
                        ),
                    ));
                }
            }
            _ => self.since = None,
        }
        Ok(())
    }
}
