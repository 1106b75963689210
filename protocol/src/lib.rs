//! # herd-protocol: the sans-IO cores of the prefork arbiter/worker protocol
//!
//! Everything herd decides lives here as plain state machines that own no I/O, no clock, no
//! thread, no entropy source and no global state. The runtime (real processes), the simulator,
//! the model checkers and the fuzzers all drive these same structs: there is no second copy of
//! the protocol anywhere.
//!
//! - [`message`]: the arbiter <-> worker wire messages and their codec.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod message;
