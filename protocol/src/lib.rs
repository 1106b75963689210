//! # herd-protocol: the sans-IO cores of the prefork arbiter/worker protocol
//!
//! Everything herd decides lives here as plain state machines that own no I/O, no clock, no
//! thread, no entropy source and no global state. The runtime (real processes), the simulator,
//! the model checkers and the fuzzers all drive these same structs: there is no second copy of
//! the protocol anywhere.
//!
//! | module | what |
//! |---|---|
//! | [`message`] | the arbiter <-> worker wire messages and their codec |
//! | [`arbiter`] | the arbiter: worker table, signals, liveness, recycling, stop |
//! | [`worker`] | the worker: ask, accept, serve, heartbeat, recycle, drain |
//! | [`cron`] | scheduled jobs: the claim table (leases, fencing), the cron worker, its invariants |
//! | [`dispatch`] | which idle worker gets the next `ACCEPT:<socket>` |
//! | [`idmap`] | the worker tables' map: a vector sorted by id |
//! | [`signals`] | the async-signal-safe signal queue and its wakeup contract |
//! | [`registry`] | registry-sequence coherence and the shared-memory store |
//! | [`invariants`] | the invariants of docs/architecture.md as checkers over the cores |
//! | [`time`], [`rng`] | time as a number passed in; the seeded generator |
//!
//! Every core follows one shape: `handle*(now, input)`, then drain `poll_action()` until `None`,
//! then `poll_timeout()`. Every state is `Clone + Eq + Hash + Debug`.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod arbiter;
pub mod cron;
pub mod dispatch;
pub mod idmap;
pub mod invariants;
pub mod message;
#[cfg(feature = "mutants")]
pub mod mutants;
pub mod registry;
pub mod rng;
pub mod signals;
mod sync;
pub mod time;
#[cfg(feature = "serde")]
pub mod trace;
pub mod worker;

/// Whether this build has the re-introduced bugs compiled in (the `mutants` feature). Never in a
/// shipped binary; the integration tests assert it, since they run in the same build as the binary.
#[doc(hidden)]
pub fn mutants_compiled() -> bool {
    cfg!(feature = "mutants")
}
