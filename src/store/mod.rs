//! Registry sequence stores: where the shared [`Sequences`] live.
//!
//! The default is shared memory: a region holding the protocol's
//! [`SharedSequences`](herd_protocol::registry::SharedSequences) (two atomics, the code loom checks). Every forked worker inherits the
//! mapping; a re-executed arbiter inherits the descriptor, so the sequences survive an upgrade.

mod error;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
pub(crate) mod shm;

pub use error::{StoreError, redact};
use herd_protocol::registry::{Bump, SequenceStore, Sequences};
#[cfg(feature = "postgres")]
pub use postgres::{PgSetupError, PgStore};
pub use shm::ShmStore;

/// Environment variable carrying the store's descriptor to a re-executed arbiter.
pub const REGISTRY_FD_ENV: &str = "HERD_REGISTRY_FD";

/// The store a server uses.
#[derive(Debug)]
pub enum Store {
    /// Shared memory on this host.
    Shm(ShmStore),
    /// PostgreSQL: processes on several hosts sharing one database.
    #[cfg(feature = "postgres")]
    Postgres(Box<postgres::PgStore>),
}

impl Store {
    /// Closes this process's connections (before forking workers, which open their own).
    pub fn disconnect(&self) {
        match self {
            Store::Shm(_) => {}
            #[cfg(feature = "postgres")]
            Store::Postgres(p) => p.disconnect(),
        }
    }
}

impl SequenceStore for Store {
    type Error = StoreError;
    fn get(&self) -> Result<Sequences, StoreError> {
        match self {
            Store::Shm(s) => Ok(s.shared().load()),
            #[cfg(feature = "postgres")]
            Store::Postgres(p) => p.get(),
        }
    }
    fn bump(&self, what: Bump) -> Result<Sequences, StoreError> {
        match self {
            Store::Shm(s) => Ok(s.shared().increment(what)),
            #[cfg(feature = "postgres")]
            Store::Postgres(p) => p.bump(what),
        }
    }
}
