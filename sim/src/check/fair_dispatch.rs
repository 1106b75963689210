//! fair-dispatch, seen from the world: a worker that asked for work is not passed over more
//! often than there were workers alive (or dead and not yet reaped: the arbiter dispatches to a
//! worker until it learns of its death) while it waited — whatever rule the arbiter follows, as
//! long as no worker is served twice while another waits, and so under light load every idle
//! worker gets used. (The Monitor checks the stated rule itself, first come first served, on
//! every dispatch.)

use herd_protocol::arbiter::WorkerId;
use herd_protocol::invariants::{Invariant, Violation};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Default)]
pub(super) struct FairDispatch {
    /// Workers waiting for work, with how many dispatches went to others since they asked and
    /// the most workers alive meanwhile.
    waiting: BTreeMap<WorkerId, (u32, usize)>,
    /// Workers told to stop, killed, or that said BYE: a request for work they sent before
    /// they knew is not one (ids are never reused).
    leaving: BTreeSet<WorkerId>,
}

impl FairDispatch {
    /// The arbiter took `id`'s ACCEPT or EMPTY: it waits for work.
    pub(super) fn asked(&mut self, id: WorkerId) {
        if !self.leaving.contains(&id) {
            self.waiting.insert(id, (0, 0));
        }
    }

    /// `id` no longer waits: told to stop or killed, or said BYE.
    pub(super) fn leaving(&mut self, id: WorkerId) {
        self.waiting.remove(&id);
        self.leaving.insert(id);
    }

    /// `id` was reaped.
    pub(super) fn reaped(&mut self, id: WorkerId) {
        self.waiting.remove(&id);
        self.leaving.remove(&id);
    }

    /// `ACCEPT:<socket>` went to `to`, with `live` worker processes not yet reaped.
    pub(super) fn dispatched(&mut self, to: WorkerId, live: usize) -> Result<(), Violation> {
        self.waiting.remove(&to);
        for (&id, (passed, most)) in &mut self.waiting {
            *passed += 1;
            *most = (*most).max(live);
            if *passed as usize > *most {
                return Err(Violation::new(
                    Invariant::FairDispatch,
                    format!(
                        "{id} asked for work and was passed over {passed} times (at most {most} workers alive)"
                    ),
                ));
            }
        }
        Ok(())
    }
}
