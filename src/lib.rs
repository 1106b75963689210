//! # herd
//!
//! The runtime of the herd prefork server: it drives the sans-IO cores of [`herd_protocol`]
//! with real processes. This crate re-exports the protocol; the process runtime lands here.
#![deny(missing_docs)]

pub use herd_protocol as protocol;
