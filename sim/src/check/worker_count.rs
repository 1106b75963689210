//! worker-count: after the faults stop, the live workers converge to the target within the
//! liveness bound, and every connection that arrived has been served or failed with a worker
//! that was killed.

use super::View;
use herd_protocol::arbiter::Phase;
use herd_protocol::invariants::{Invariant, Violation};

pub(super) struct WorkerCount;

impl WorkerCount {
    pub(super) fn converged(&self, v: &View<'_>) -> Result<(), Violation> {
        if v.arbiter.phase() != Phase::Running {
            return Ok(());
        }
        let target = (v.arbiter.target() + v.arbiter.cron_target()) as usize;
        if v.live_procs != target || v.arbiter.active() != target {
            return Err(Violation::new(
                Invariant::WorkerCount,
                format!(
                    "after healing: {} processes, {} counted, target {target}",
                    v.live_procs,
                    v.arbiter.active()
                ),
            ));
        }
        let pending: usize = v.queues.iter().sum();
        let t = v.tally;
        if pending > 0 || t.arrived != t.served + t.failed_killed {
            return Err(Violation::new(
                Invariant::NoLostWakeup,
                format!(
                    "after healing: {pending} still queued; arrived {} != served {} + failed with a killed worker {}",
                    t.arrived, t.served, t.failed_killed
                ),
            ));
        }
        Ok(())
    }
}
