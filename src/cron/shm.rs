//! The cron job table in shared memory.

use crate::cron::job::{CronJob, MAX_JOBS};
use crate::os::shm::Region;
use crate::store::StoreError;
use herd_protocol::cron::{Claim, Job, Poll, Table};
use herd_protocol::time::Instant;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const FIELDS: usize = 8;

#[repr(C)]
struct TableShm {
    count: AtomicU64,
    rows: [[AtomicU64; FIELDS]; MAX_JOBS],
}

/// The job table in shared memory (see the module documentation).
#[derive(Debug)]
pub struct ShmJobs {
    pub(super) region: Region,
    /// This process's own open file description of the region, for `flock`.
    lock: Option<OwnedFd>,
}

/// The store's clock for shared memory: `CLOCK_MONOTONIC`, the same in every process of a host.
pub(crate) fn monotonic() -> Instant {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    Instant((t.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(t.tv_nsec as u64))
}

impl ShmJobs {
    /// A new table holding `jobs`, each first due now.
    pub fn create(jobs: &[CronJob]) -> io::Result<ShmJobs> {
        let region = Region::create("herd-cron", std::mem::size_of::<TableShm>())?;
        let s = ShmJobs { region, lock: None };
        let mut table = Table::new();
        let now = monotonic();
        for j in jobs.iter().take(MAX_JOBS) {
            table.add(j.interval, now).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        }
        s.store(&table);
        Ok(s)
    }

    /// The table a replaced arbiter passed on.
    ///
    /// # Safety
    /// `fd` must be an open descriptor this process owns, made by [`ShmJobs::create`].
    pub unsafe fn from_raw_fd(fd: RawFd) -> io::Result<ShmJobs> {
        // SAFETY: per the caller.
        let region = unsafe { Region::from_raw_fd(fd, std::mem::size_of::<TableShm>()) }?;
        Ok(ShmJobs { region, lock: None })
    }

    /// The descriptor, for a re-executed arbiter.
    pub fn raw_fd(&self) -> RawFd {
        self.region.raw_fd()
    }

    fn shm(&self) -> &TableShm {
        // SAFETY: the region was made for a TableShm; zero-filled is valid; atomics only.
        unsafe { self.region.get::<TableShm>() }
    }

    pub(super) fn attach(&mut self) -> io::Result<()> {
        let path = format!("/proc/self/fd/{}", self.region.as_fd().as_raw_fd());
        let fd = rustix::fs::open(
            path.as_str(),
            rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
            0.into(),
        )?;
        self.lock = Some(fd);
        Ok(())
    }

    fn load(&self) -> Table {
        let shm = self.shm();
        let n = (shm.count.load(Ordering::Acquire) as usize).min(MAX_JOBS);
        let jobs = shm.rows[..n]
            .iter()
            .map(|r| {
                let f = |i: usize| r[i].load(Ordering::Relaxed);
                Job {
                    interval: Duration::from_nanos(f(0)),
                    next_call: Instant(f(1)),
                    token: f(2),
                    lease: (f(3) != 0).then(|| (f(4), Instant(f(5)))),
                    runs: f(6),
                    failures: f(7),
                }
            })
            .collect();
        Table::from_jobs(jobs)
    }

    fn store(&self, t: &Table) {
        let shm = self.shm();
        for (row, j) in shm.rows.iter().zip(t.jobs()) {
            let (held, holder, until) = j.lease.map_or((0, 0, 0), |(h, u)| (1, h, u.0));
            let values = [
                j.interval.as_nanos() as u64,
                j.next_call.0,
                j.token,
                held,
                holder,
                until,
                j.runs,
                j.failures,
            ];
            for (cell, v) in row.iter().zip(values) {
                cell.store(v, Ordering::Relaxed);
            }
        }
        shm.count.store(t.jobs().len() as u64, Ordering::Release);
    }

    /// Runs `f` on the table under the lock (only the arbiter, before any cron worker runs, and
    /// tests read it without one).
    pub(super) fn with_table<R>(&self, f: impl FnOnce(&mut Table) -> R) -> Result<R, StoreError> {
        let unavailable = |e: rustix::io::Errno| StoreError::Unavailable(format!("cron table lock: {e}"));
        if let Some(fd) = &self.lock {
            rustix::fs::flock(fd, rustix::fs::FlockOperation::LockExclusive).map_err(unavailable)?;
        }
        let mut t = self.load();
        let before = t.clone();
        let r = f(&mut t);
        if t != before {
            self.store(&t);
        }
        if let Some(fd) = &self.lock {
            rustix::fs::flock(fd, rustix::fs::FlockOperation::Unlock).map_err(unavailable)?;
        }
        Ok(r)
    }

    pub(super) fn claim(
        &self,
        holder: u64,
        lease: Duration,
    ) -> Result<(Option<Claim>, Option<Duration>), StoreError> {
        let now = monotonic();
        self.with_table(|t| match t.claim(now, holder, lease) {
            Poll::Claimed(c) => (Some(c), None),
            Poll::Idle { next } => (None, next.map(|n| n.saturating_since(now))),
        })
    }

    pub(super) fn finish(&self, claim: &Claim, ok: bool) -> Result<bool, StoreError> {
        let now = monotonic();
        self.with_table(|t| t.finish(now, claim, ok).is_ok())
    }
}
