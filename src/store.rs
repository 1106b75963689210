//! Registry sequence stores: where the shared [`Sequences`] live.
//!
//! The default is shared memory: a region ([`crate::shm::Region`]) holding the protocol's
//! [`SharedSequences`] (two atomics, the code loom checks). Every forked worker inherits the
//! mapping; a re-executed arbiter inherits the descriptor, so the sequences survive an upgrade.

use crate::shm::Region;
use herd_protocol::registry::{Bump, SequenceStore, Sequences, SharedSequences};
use std::io;
use std::os::fd::RawFd;

/// Environment variable carrying the store's descriptor to a re-executed arbiter.
pub const REGISTRY_FD_ENV: &str = "HERD_REGISTRY_FD";

/// A store URL with any password replaced, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => match url[s + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
            None => url.to_owned(),
        },
        _ => url.to_owned(),
    }
}

/// A store that could not answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store is unreachable (the database went away, ...).
    #[error("registry store unavailable: {0}")]
    Unavailable(String),
}

/// The shared-memory store.
#[derive(Debug)]
pub struct ShmStore {
    region: Region,
}

const SIZE: usize = std::mem::size_of::<SharedSequences>();

impl ShmStore {
    /// A new store, both sequences at zero.
    pub fn create() -> io::Result<ShmStore> {
        Ok(ShmStore { region: Region::create("herd-registry", SIZE)? })
    }

    /// Maps an inherited store descriptor (a re-executed arbiter).
    ///
    /// # Safety
    /// `fd` must be an open descriptor this process owns, made by [`ShmStore::create`].
    pub unsafe fn from_raw_fd(fd: RawFd) -> io::Result<ShmStore> {
        // SAFETY: per the caller.
        Ok(ShmStore { region: unsafe { Region::from_raw_fd(fd, SIZE) }? })
    }

    fn shared(&self) -> &SharedSequences {
        // SAFETY: the region was made for a SharedSequences (atomics, valid when zeroed).
        unsafe { self.region.get() }
    }

    /// The current sequences.
    pub fn load(&self) -> Sequences {
        self.shared().load()
    }

    /// The region's descriptor.
    pub fn raw_fd(&self) -> RawFd {
        self.region.raw_fd()
    }
}

/// The store a server uses.
#[derive(Debug)]
pub enum Store {
    /// Shared memory on this host.
    Shm(ShmStore),
    /// PostgreSQL: processes on several hosts sharing one database.
    #[cfg(feature = "postgres")]
    Postgres(Box<crate::pgstore::PgStore>),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden_in_messages() {
        assert_eq!(redact("postgres://herd:s3cret@db:5432/x"), "postgres://herd:***@db:5432/x");
        assert_eq!(redact("postgres://herd@db/x"), "postgres://herd@db/x");
        assert_eq!(redact("host=/tmp dbname=x"), "host=/tmp dbname=x");
    }
}
