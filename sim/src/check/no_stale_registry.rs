//! no-stale-registry: every request runs on a registry at least as new as the last change whose
//! bump completed before the request started.

use herd_protocol::arbiter::WorkerId;
use herd_protocol::invariants::{Invariant, Violation};

pub(super) struct NoStaleRegistry;

impl NoStaleRegistry {
    pub(super) fn serve(&self, id: WorkerId, version: u64, signalled: u64) -> Result<(), Violation> {
        if version < signalled {
            return Err(Violation::new(
                Invariant::NoStaleRegistry,
                format!("{id} served on registry v{version} after v{signalled} was signalled"),
            ));
        }
        Ok(())
    }
}
