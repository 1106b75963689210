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

use crate::server::Server;
use crate::shm::Region;
use crate::store::StoreError;
use crate::sys::Clock;
use crate::worker::{WorkerSetup, prepare, run_process};
use herd_protocol::cron::{Claim, CronAction, CronConfig, CronInput, CronWorker, Job, Poll, Table};
use herd_protocol::message::Message;
use herd_protocol::signals::Sig;
use herd_protocol::time::Instant;
use herd_protocol::worker::WorkerSignal;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Environment variable naming the shared-memory job table a re-executed arbiter inherits.
pub const CRON_FD_ENV: &str = "HERD_CRON_FD";
/// Most jobs a server defines.
pub const MAX_JOBS: usize = 64;

/// A scheduled job: its name (unique; the key in a shared database) and how often it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CronJob {
    /// The name.
    pub name: String,
    /// Time between runs.
    pub interval: Duration,
}

/// One run of a job, as the application's runner sees it.
#[derive(Clone, Copy, Debug)]
pub struct JobRun<'a> {
    /// The job's name.
    pub name: &'a str,
    /// The fencing token of this run: strictly greater than every earlier run's. Writes the job
    /// makes elsewhere can carry it, so that a run that lost its lease cannot overwrite a newer
    /// one's.
    pub token: u64,
    /// The scheduled time being run, on the store's clock (nanoseconds).
    pub slot: u64,
}

/// Why a job definition was refused.
#[derive(Debug, thiserror::Error)]
pub enum CronSpecError {
    /// Not `NAME=SECONDS`.
    #[error("bad cron job {0:?}: expected NAME=SECONDS, e.g. mail_queue=60")]
    Syntax(String),
    /// Two jobs with one name.
    #[error("cron job {0:?} is defined twice")]
    Duplicate(String),
    /// More than [`MAX_JOBS`].
    #[error("at most {MAX_JOBS} cron jobs")]
    TooMany,
    /// Cron workers but no job, or jobs of zero interval.
    #[error("{0}")]
    Invalid(String),
}

impl std::str::FromStr for CronJob {
    type Err = CronSpecError;
    fn from_str(s: &str) -> Result<Self, CronSpecError> {
        let bad = || CronSpecError::Syntax(s.to_owned());
        let (name, secs) = s.split_once('=').ok_or_else(bad)?;
        let valid_name = !name.is_empty()
            && name.len() <= 64
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
        let secs: f64 = secs.parse().map_err(|_| bad())?;
        if !(valid_name && secs.is_finite() && (0.001..=1e9).contains(&secs)) {
            return Err(bad());
        }
        Ok(CronJob { name: name.to_owned(), interval: Duration::from_secs_f64(secs) })
    }
}

/// Checks a server's job list.
pub(crate) fn validate(jobs: &[CronJob], workers: u32) -> Result<(), CronSpecError> {
    if jobs.len() > MAX_JOBS {
        return Err(CronSpecError::TooMany);
    }
    for (i, j) in jobs.iter().enumerate() {
        if jobs[..i].iter().any(|k| k.name == j.name) {
            return Err(CronSpecError::Duplicate(j.name.clone()));
        }
        if j.interval.is_zero() {
            return Err(CronSpecError::Invalid(format!("cron job {:?} has a zero interval", j.name)));
        }
    }
    if workers > 0 && jobs.is_empty() {
        return Err(CronSpecError::Invalid("cron workers need at least one cron job (--cron-job)".into()));
    }
    Ok(())
}

/// The job table, where it lives.
#[derive(Debug)]
pub enum JobStore {
    /// Shared memory on this host.
    Shm(ShmJobs),
    /// PostgreSQL, shared by arbiters on several hosts.
    #[cfg(feature = "postgres")]
    Postgres(Box<crate::pgstore::PgJobs>),
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
    fn for_this_process(&self) -> io::Result<JobStore> {
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

    /// The rows, for status and tests.
    pub fn jobs(&self) -> Result<Vec<Job>, StoreError> {
        match self {
            JobStore::Shm(s) => s.with_table(|t| t.jobs().to_vec()),
            #[cfg(feature = "postgres")]
            JobStore::Postgres(p) => p.jobs(),
        }
    }
}

const FIELDS: usize = 8;

#[repr(C)]
struct TableShm {
    count: AtomicU64,
    rows: [[AtomicU64; FIELDS]; MAX_JOBS],
}

/// The job table in shared memory (see the module documentation).
#[derive(Debug)]
pub struct ShmJobs {
    region: Region,
    /// This process's own open file description of the region, for `flock`.
    lock: Option<OwnedFd>,
}

/// The store's clock for shared memory: `CLOCK_MONOTONIC`, the same in every process of a host.
fn monotonic() -> Instant {
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

    fn attach(&mut self) -> io::Result<()> {
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
    fn with_table<R>(&self, f: impl FnOnce(&mut Table) -> R) -> Result<R, StoreError> {
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

    fn claim(&self, holder: u64, lease: Duration) -> Result<(Option<Claim>, Option<Duration>), StoreError> {
        let now = monotonic();
        self.with_table(|t| match t.claim(now, holder, lease) {
            Poll::Claimed(c) => (Some(c), None),
            Poll::Idle { next } => (None, next.map(|n| n.saturating_since(now))),
        })
    }

    fn finish(&self, claim: &Claim, ok: bool) -> Result<bool, StoreError> {
        let now = monotonic();
        self.with_table(|t| t.finish(now, claim, ok).is_ok())
    }
}

/// Runs a cron worker to its end and exits the process.
pub(crate) fn run(
    setup: WorkerSetup,
    server: &Server,
    runner: &mut dyn FnMut(&JobRun<'_>) -> Result<(), String>,
) -> ! {
    let inherited = setup.inherited.clone();
    run_process(&inherited, |loaded| {
        let WorkerSetup { id, max_requests, arbiter, mut chan, blocked, slot, .. } = setup;
        let wake = prepare(id, blocked, server)?;
        if let Ok(title) = std::ffi::CString::new(format!("herd: cron worker {}", id.0)) {
            let _ = nix::sys::prctl::set_name(&title);
        }
        let Some(cron) = &server.cron else {
            return Err(io::Error::other("a cron worker without a job store"));
        };
        // This process's own handle (lock description, database connection).
        let store = cron.store.for_this_process()?;
        loaded.set(true);
        chan.set_nonblocking(false)?;
        let clock = Clock::new();
        let config = server.config();
        let lease = herd_protocol::cron::lease(config.timeout, config.graceful_timeout, config.kill_grace);
        let mut core = CronWorker::new(
            CronConfig {
                timeout: config.timeout,
                max_jobs: max_requests,
                max_idle: Duration::from_secs(1),
                retry: Duration::from_secs(1),
            },
            clock.now(),
        );
        let holder = u64::from(std::process::id());
        tracing::debug!(worker = %id, pid = holder, "cron worker booted");
        core.start(clock.now());
        loop {
            while let Some(action) = core.poll_action() {
                let input = match action {
                    CronAction::Send(msg) => {
                        // The arbiter reads every frame; a write error means it is gone, which
                        // the parent check below notices.
                        let _ = chan.write_all(msg.encode().as_bytes());
                        continue;
                    }
                    CronAction::Claim => match store.claim(holder, lease) {
                        Ok((claim, next)) => CronInput::Claimed(claim, next),
                        Err(e) => {
                            tracing::warn!(worker = %id, error = %e, "cron: cannot claim");
                            CronInput::StoreFailed
                        }
                    },
                    CronAction::Run(claim) => {
                        let job = &cron.jobs[claim.job.0 as usize];
                        let run = JobRun { name: &job.name, token: claim.token, slot: claim.slot.0 };
                        crate::worker::set_busy(server, slot, true);
                        if let Some(s) = slot {
                            server.scoreboard.count(s);
                        }
                        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runner(&run)));
                        crate::worker::set_busy(server, slot, false);
                        let ok = match ran {
                            Ok(Ok(())) => true,
                            Ok(Err(e)) => {
                                tracing::warn!(worker = %id, job = %job.name, error = %e, "cron job failed");
                                false
                            }
                            Err(_) => {
                                tracing::warn!(worker = %id, job = %job.name, "cron job panicked");
                                false
                            }
                        };
                        signals(&wake, &mut core, &clock, arbiter);
                        CronInput::JobDone { ok }
                    }
                    CronAction::Finish { claim, ok } => match store.finish(&claim, ok) {
                        Ok(recorded) => {
                            if !recorded {
                                tracing::warn!(worker = %id, job = claim.job.0, token = claim.token,
                                    "cron: the run was not recorded: the job was claimed again meanwhile");
                            }
                            CronInput::Finished { recorded }
                        }
                        Err(e) => {
                            tracing::warn!(worker = %id, error = %e, "cron: cannot record a run");
                            CronInput::StoreFailed
                        }
                    },
                    CronAction::Exit(code) => return Ok(code),
                };
                core.handle(clock.now(), input);
            }
            let wait_ms = core.poll_timeout().map_or(1_000, |at| clock.millis_until(at).min(1_000)) as u16;
            let mut fds = [nix::poll::PollFd::new(wake.fd(), nix::poll::PollFlags::POLLIN)];
            match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(wait_ms)) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(crate::sys::io_err(e)),
            }
            signals(&wake, &mut core, &clock, arbiter);
            core.handle_timeout(clock.now());
        }
    })
}

/// A loop point: TERM (or a changed parent) asks the core to stop after the job under way.
fn signals(wake: &crate::sys::WakePipe, core: &mut CronWorker, clock: &Clock, arbiter: nix::unistd::Pid) {
    let batch = wake.drain();
    if batch.count(Sig::Term) > 0 || nix::unistd::getppid() != arbiter {
        core.handle(clock.now(), CronInput::Signal(WorkerSignal::Term));
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
    fn job_specs_parse_or_say_why_not() {
        let j: CronJob = "mail_queue=60".parse().unwrap();
        assert_eq!(j, CronJob { name: "mail_queue".into(), interval: Duration::from_secs(60) });
        assert_eq!("a=0.25".parse::<CronJob>().unwrap().interval, Duration::from_millis(250));
        for bad in ["", "x", "=5", "x=", "x=0", "x=-1", "x=abc", "x y=5", "x=inf"] {
            let e = bad.parse::<CronJob>().unwrap_err();
            assert!(e.to_string().contains("NAME=SECONDS"), "{bad}: {e}");
        }
        let a: CronJob = "a=1".parse().unwrap();
        assert!(matches!(validate(&[a.clone(), a.clone()], 1), Err(CronSpecError::Duplicate(_))));
        assert!(validate(&[], 1).unwrap_err().to_string().contains("--cron-job"));
        validate(&[a], 2).unwrap();
        validate(&[], 0).unwrap();
    }

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
