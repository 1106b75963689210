//! Cron workers at runtime: the job stores and the cron worker process.
//!
//! The arbiter runs `--cron-workers N` processes next to the HTTP workers (no listeners; same
//! heartbeats, timeouts, recycling and reloads). Each drives the [`herd_protocol::cron`] core:
//! claim a due job from the store, run it (no heartbeat meanwhile, so the arbiter's timeout bounds
//! a job), record it, claim again.
//!
//! Two stores keep the job table, with the same rules ([`herd_protocol::cron::Table`]):
//! - [`ShmJobs`], shared memory on one host: the table in a memfd, each operation under an
//!   exclusive `flock` taken on the cron worker's own open file description (a dead holder's lock
//!   goes with it); the store's clock is `CLOCK_MONOTONIC`. Passed on to a re-executed arbiter.
//! - `PgJobs` (feature `postgres`), across hosts: the table `herd_cron`, claimed with
//!   `SELECT ... FOR NO KEY UPDATE SKIP LOCKED` in one statement; the store's clock is the
//!   database's.
//!
//! The lease is [`herd_protocol::cron::lease`] of the server's timeouts: a holder is killed by its
//! arbiter before its lease can expire, so a job never runs twice at once; a holder that died
//! leaves the job to be retried when the lease ends, and its token can no longer record it.

mod job;
#[cfg(feature = "postgres")]
mod postgres;
mod shm;

use crate::store::StoreError;
use herd_protocol::cron::{Claim, Job};
pub(crate) use job::validate;
pub use job::{CRON_FD_ENV, CronJob, CronSpecError, JobRun, MAX_JOBS};
#[cfg(feature = "postgres")]
pub use postgres::PgJobs;
pub use shm::ShmJobs;
use std::io;
use std::os::fd::AsFd;
use std::time::Duration;

/// The job table, where it lives.
#[derive(Debug)]
pub enum JobStore {
    /// Shared memory on this host.
    Shm(ShmJobs),
    /// PostgreSQL, shared by arbiters on several hosts.
    #[cfg(feature = "postgres")]
    Postgres(Box<postgres::PgJobs>),
}

impl JobStore {
    /// Claims a due job for `holder`: the claim, or how long until something may be due.
    pub fn claim(
        &self,
        holder: u64,
        lease: Duration,
    ) -> Result<(Option<Claim>, Option<Duration>), StoreError> {
        match self {
            JobStore::Shm(s) => s.claim(holder, lease),
            #[cfg(feature = "postgres")]
            JobStore::Postgres(p) => p.claim(lease),
        }
    }

    /// Records a run; `Ok(false)` if the claim was stale (the job was claimed again since).
    pub fn finish(&self, claim: &Claim, ok: bool) -> Result<bool, StoreError> {
        match self {
            JobStore::Shm(s) => s.finish(claim, ok),
            #[cfg(feature = "postgres")]
            JobStore::Postgres(p) => p.finish(claim, ok),
        }
    }

    /// This process's own handle on the store (a forked cron worker's): for shared memory, its
    /// own open file description to lock; for PostgreSQL, its own connection.
    pub(crate) fn for_this_process(&self) -> io::Result<JobStore> {
        match self {
            JobStore::Shm(s) => {
                let fd = rustix::io::fcntl_dupfd_cloexec(s.region.as_fd(), 0)?;
                let raw = std::os::fd::IntoRawFd::into_raw_fd(fd);
                // SAFETY: `raw` is a fresh duplicate this process owns, of a region made by create.
                let mut own = unsafe { ShmJobs::from_raw_fd(raw) }?;
                own.attach()?;
                Ok(JobStore::Shm(own))
            }
            #[cfg(feature = "postgres")]
            JobStore::Postgres(p) => Ok(JobStore::Postgres(Box::new(p.fresh()))),
        }
    }

    /// The rows and the store's clock now, if reading them cannot wait on anything (shared
    /// memory; not PostgreSQL): for `herd ctl status`, answered from the arbiter's loop.
    pub(crate) fn at_a_glance(&self) -> Option<(Vec<Job>, herd_protocol::time::Instant)> {
        match self {
            JobStore::Shm(s) => s.with_table(|t| t.jobs().to_vec()).ok().map(|j| (j, shm::monotonic())),
            #[cfg(feature = "postgres")]
            JobStore::Postgres(_) => None,
        }
    }

    /// The rows, for status and tests.
    pub fn jobs(&self) -> Result<Vec<Job>, StoreError> {
        match self {
            JobStore::Shm(s) => s.with_table(|t| t.jobs().to_vec()),
            #[cfg(feature = "postgres")]
            JobStore::Postgres(p) => p.jobs(),
        }
    }
}

/// The cron side of a server: its jobs and where their table lives.
#[derive(Debug)]
pub struct Cron {
    pub(crate) jobs: Vec<CronJob>,
    pub(crate) store: JobStore,
}

impl Cron {
    /// The jobs, in table order.
    pub fn jobs(&self) -> &[CronJob] {
        &self.jobs
    }

    /// The store.
    pub fn store(&self) -> &JobStore {
        &self.store
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_memory_table_round_trips_and_locks_per_process() {
        let jobs: Vec<CronJob> = vec!["a=10".parse().unwrap(), "b=20".parse().unwrap()];
        let mut s = ShmJobs::create(&jobs).unwrap();
        s.attach().unwrap();
        let lease = Duration::from_secs(5);
        let (first, _) = s.claim(7, lease).unwrap();
        let first = first.expect("both are due at once");
        let (second, _) = s.claim(8, lease).unwrap();
        let second = second.expect("the other one");
        assert_ne!(first.job, second.job);
        let (none, next) = s.claim(9, lease).unwrap();
        assert!(none.is_none());
        assert!(next.is_some_and(|d| d <= lease), "{next:?}");
        assert!(s.finish(&first, true).unwrap());
        assert!(!s.finish(&first, true).unwrap(), "finished already");
        let t = s.with_table(|t| t.clone()).unwrap();
        assert_eq!(t.jobs()[first.job.0 as usize].runs, 1);
        assert_eq!(t.jobs()[second.job.0 as usize].lease.map(|(h, _)| h), Some(8));
        // A second handle (another process's) sees the same rows.
        let other = JobStore::Shm(s).for_this_process().unwrap();
        assert_eq!(other.jobs().unwrap(), t.jobs());
    }
}
