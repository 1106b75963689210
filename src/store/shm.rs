//! The shared-memory registry store: a region holding the protocol's [`SharedSequences`].

use crate::os::shm::Region;
use herd_protocol::registry::{Sequences, SharedSequences};
use std::io;
use std::os::fd::RawFd;

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

    pub(super) fn shared(&self) -> &SharedSequences {
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
