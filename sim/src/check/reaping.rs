//! reaping: every dead child is reaped (the Monitor checks that nothing dead is signalled).

use super::View;
use herd_protocol::invariants::{Invariant, Violation};

pub(super) struct Reaping;

impl Reaping {
    pub(super) fn converged(&self, v: &View<'_>) -> Result<(), Violation> {
        if v.zombies > 0 {
            return Err(Violation::new(
                Invariant::Reaping,
                format!("{} dead workers never reaped", v.zombies),
            ));
        }
        Ok(())
    }
}
