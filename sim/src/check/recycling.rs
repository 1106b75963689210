//! recycling: no worker serves more than its budget; budgets are jittered (B06: with a jitter of
//! ten or more, eight or more workers all drawing one budget has odds below 1e-7). A jitter without
//! its base (`max_requests` 0) is moot: no worker is recycled, every budget is 0 (the monitor
//! checks that), and one budget for all is right.

use herd_protocol::arbiter::{Config, WorkerId};
use herd_protocol::invariants::{Invariant, Violation};
use std::collections::BTreeSet;

pub(super) struct Recycling {
    jitter: u32,
    budgets: BTreeSet<u32>,
    spawns: u32,
}

impl Recycling {
    pub(super) fn new(config: &Config) -> Self {
        // The jitter in force: none without a base.
        let jitter = if config.max_requests > 0 { config.max_requests_jitter } else { 0 };
        Recycling { jitter, budgets: BTreeSet::new(), spawns: 0 }
    }

    pub(super) fn spawned(&mut self, _id: WorkerId, budget: u32) {
        self.budgets.insert(budget);
        self.spawns += 1;
    }

    pub(super) fn serve(&self, id: WorkerId, served: u32, budget: u32) -> Result<(), Violation> {
        if budget > 0 && served > budget {
            return Err(Violation::new(
                Invariant::Recycling,
                format!("{id} serves request {served} with a budget of {budget}"),
            ));
        }
        Ok(())
    }

    pub(super) fn at_end(&self) -> Result<(), Violation> {
        if self.jitter >= 10 && self.spawns >= 8 && self.budgets.len() == 1 {
            return Err(Violation::new(
                Invariant::Recycling,
                format!(
                    "{} workers all drew budget {:?}: recycling is not jittered",
                    self.spawns, self.budgets
                ),
            ));
        }
        Ok(())
    }
}
