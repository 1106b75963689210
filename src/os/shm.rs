//! Shared memory regions: a `memfd` mapped `MAP_SHARED`. Forked workers inherit the mapping; a
//! re-executed arbiter inherits the descriptor and maps the same pages.

use rustix::fs::{MemfdFlags, ftruncate, memfd_create};
use rustix::mm::{MapFlags, ProtFlags, mmap, munmap};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;

/// A zero-filled shared mapping of `len` bytes.
#[derive(Debug)]
pub struct Region {
    fd: OwnedFd,
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the region is plain shared bytes; the types placed in it are atomics.
unsafe impl Send for Region {}
// SAFETY: as above.
unsafe impl Sync for Region {}

impl Region {
    /// A new zero-filled region.
    pub fn create(name: &str, len: usize) -> io::Result<Region> {
        let fd = memfd_create(name, MemfdFlags::CLOEXEC)?;
        ftruncate(&fd, len as u64)?;
        Self::map(fd, len)
    }

    /// Maps an inherited region descriptor.
    ///
    /// # Safety
    /// `fd` must be an open descriptor this process owns, made by [`Region::create`] for a
    /// region of the same type.
    pub unsafe fn from_raw_fd(fd: RawFd, len: usize) -> io::Result<Region> {
        // SAFETY: the caller promises ownership.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC)?;
        if rustix::fs::fstat(&fd)?.st_size < len as i64 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "inherited shared memory is too small"));
        }
        Self::map(fd, len)
    }

    fn map(fd: OwnedFd, len: usize) -> io::Result<Region> {
        // SAFETY: a fresh shared mapping of the memfd; nothing else aliases it in this process.
        let p = unsafe {
            mmap(std::ptr::null_mut(), len, ProtFlags::READ | ProtFlags::WRITE, MapFlags::SHARED, &fd, 0)
        }?;
        let ptr = NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Region { fd, ptr, len })
    }

    /// The region as a `T`.
    ///
    /// # Safety
    /// `T` must fit in the region, be valid when zero-filled, and be safe to share between
    /// processes (atomics only).
    pub unsafe fn get<T>(&self) -> &T {
        debug_assert!(std::mem::size_of::<T>() <= self.len);
        // SAFETY: per the caller's promise; the mapping is page-aligned and lives as long as self.
        unsafe { self.ptr.cast::<T>().as_ref() }
    }

    /// The descriptor number (to hand to a re-executed arbiter).
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for Region {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`; no reference into it outlives self.
        let _ = unsafe { munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}
