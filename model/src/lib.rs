//! herd-model: loom models of the real concurrent code, shuttle models of the message protocol,
//! and an exhaustive breadth-first exploration of arbiter + workers.
#![deny(missing_docs)]
