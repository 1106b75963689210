//! herd-sim: a seeded deterministic simulator of a whole herd server (arbiter, workers, clients,
//! store, OS faults) running the real cores of `herd-protocol`.
#![deny(missing_docs)]
