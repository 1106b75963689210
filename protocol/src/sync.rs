//! The one place the cores' shared-memory code gets its atomics from.
//!
//! Under `RUSTFLAGS="--cfg herd_loom"` these are loom's, so `herd-model` checks the exact
//! [`crate::signals::SignalQueue`] and [`crate::registry::SharedSequences`] code the runtime uses
//! under every interleaving; otherwise they are `core`'s. Nothing else in the crate names
//! `core::sync::atomic` directly (the tokio / crossbeam convention).

#[cfg(herd_loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering};

#[cfg(not(herd_loom))]
pub(crate) use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
