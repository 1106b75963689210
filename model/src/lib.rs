//! # herd-model: the proofs
//!
//! The simulator samples; these check every case within their bounds.
//!
//! - [`explore`]: exhaustive exploration of the arbiter, its workers, their pipes and
//!   a listener, with a budget of faults; safety in every state, and from every state a way to
//!   serve everything (binary `herd-explore`).
//! - [`cron`]: exhaustive exploration of the cron claim protocol (cron workers, the job table and
//!   its clock, the arbiter's timeout kill) with kills and clock jumps.
//! - `tests/loom.rs` (under `RUSTFLAGS="--cfg herd_loom"`): the exact `SignalQueue` and
//!   `SharedSequences` code under every interleaving.
//! - `tests/shuttle.rs`: arbiter and workers as threads over channels, randomized and
//!   depth-first schedules.
#![deny(missing_docs)]

pub mod cron;
pub mod explore;

/// The steps from the initial state (number 0) to state `at`, then `last`, from the breadth-first
/// parent links (each state's parent and the step from it).
pub(crate) fn trace<S: Copy>(parent: &[(u32, Option<S>)], mut at: u32, last: Option<S>) -> Vec<S> {
    let mut steps: Vec<S> = last.into_iter().collect();
    while let (p, Some(s)) = parent[at as usize] {
        steps.push(s);
        at = p;
    }
    steps.reverse();
    steps
}
