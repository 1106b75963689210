//! Registry sequence stores: where the shared [`Sequences`] live.
//!
//! The default is shared memory: a `memfd` mapped `MAP_SHARED` holding the protocol's
//! [`SharedSequences`] (two atomics). Every forked worker inherits the mapping; a re-executed
//! arbiter inherits the descriptor and maps the same pages, so the sequences survive an upgrade.

use herd_protocol::registry::{Bump, SequenceStore, Sequences, SharedSequences};
use rustix::fs::{MemfdFlags, ftruncate, memfd_create};
use rustix::mm::{MapFlags, ProtFlags, mmap, munmap};
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;

/// A store that could not answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store is unreachable (the database went away, ...).
    #[error("registry store unavailable: {0}")]
    Unavailable(String),
}

/// The shared-memory store.
pub struct ShmStore {
    fd: OwnedFd,
    ptr: NonNull<SharedSequences>,
}

// SAFETY: the mapping holds only atomics, and lives as long as the value.
unsafe impl Send for ShmStore {}
// SAFETY: as above: all access goes through atomics.
unsafe impl Sync for ShmStore {}

impl fmt::Debug for ShmStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShmStore").field("fd", &self.fd.as_raw_fd()).field("now", &self.load()).finish()
    }
}

const SIZE: u64 = std::mem::size_of::<SharedSequences>() as u64;

impl ShmStore {
    /// A new store, both sequences at zero.
    pub fn create() -> io::Result<ShmStore> {
        let fd = memfd_create("herd-registry", MemfdFlags::CLOEXEC)?;
        ftruncate(&fd, SIZE)?;
        Self::map(fd)
    }

    /// Maps an inherited store descriptor (a re-executed arbiter).
    ///
    /// # Safety
    /// `fd` must be an open descriptor this process owns, made by [`ShmStore::create`].
    pub unsafe fn from_raw_fd(fd: RawFd) -> io::Result<ShmStore> {
        // SAFETY: the caller promises ownership.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        if rustix::fs::fstat(&fd)?.st_size < SIZE as i64 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "registry store is too small"));
        }
        Self::map(fd)
    }

    fn map(fd: OwnedFd) -> io::Result<ShmStore> {
        // SAFETY: a fresh shared mapping of `SIZE` bytes of the memfd; zeroed pages are a valid
        // SharedSequences (two atomics at zero), and it is only accessed through atomics.
        let p = unsafe {
            mmap(
                std::ptr::null_mut(),
                SIZE as usize,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                &fd,
                0,
            )
        }?;
        let ptr = NonNull::new(p.cast::<SharedSequences>())
            .ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(ShmStore { fd, ptr })
    }

    fn shared(&self) -> &SharedSequences {
        // SAFETY: mapped for the lifetime of self.
        unsafe { self.ptr.as_ref() }
    }

    /// The current sequences.
    pub fn load(&self) -> Sequences {
        self.shared().load()
    }
}

impl AsFd for ShmStore {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for ShmStore {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, not used after this.
        let _ = unsafe { munmap(self.ptr.as_ptr().cast(), SIZE as usize) };
    }
}

/// The store a server uses.
#[derive(Debug)]
pub enum Store {
    /// Shared memory on this host.
    Shm(ShmStore),
}

impl SequenceStore for Store {
    type Error = StoreError;
    fn get(&self) -> Result<Sequences, StoreError> {
        match self {
            Store::Shm(s) => Ok(s.shared().load()),
        }
    }
    fn bump(&self, what: Bump) -> Result<Sequences, StoreError> {
        match self {
            Store::Shm(s) => Ok(s.shared().increment(what)),
        }
    }
}
