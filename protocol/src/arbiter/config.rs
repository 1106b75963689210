//! The arbiter's configuration, what it names workers by, and the limits it enforces.

use core::fmt;
use core::time::Duration;

/// The most workers the arbiter will run at once, whatever TTIN says.
pub const MAX_WORKERS: u32 = 1024;
/// Exit code of a worker that could not boot: halts the server.
pub const WORKER_BOOT_ERROR: i32 = 3;
/// Exit code of a worker that could not load the application: halts the server.
pub const APP_LOAD_ERROR: i32 = 4;

/// A worker, as the arbiter names it. Ids are never reused, so nothing about a dead worker can be
/// mistaken for its successor (B20); the runtime maps ids to pids and pidfds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct WorkerId(pub u64);

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "w{}", self.0)
    }
}

/// How connections reach workers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum AcceptMode {
    /// Every worker accepts on the shared listeners itself; the kernel balances.
    Shared,
    /// The arbiter watches the listeners and wakes one idle worker per connection (ticket #792).
    Signaled,
    /// Signaled while workers are idle; a worker that finishes a request first tries to accept
    /// directly, so under load the signaling is bypassed.
    Auto,
}

impl AcceptMode {
    /// Its name, as `--accept-mode` takes it (`shared`, `signaled`, `auto`).
    pub fn name(self) -> &'static str {
        match self {
            AcceptMode::Shared => "shared",
            AcceptMode::Signaled => "signaled",
            AcceptMode::Auto => "auto",
        }
    }

    /// Does the arbiter dispatch connections in this mode?
    pub fn dispatches(self) -> bool {
        !matches!(self, AcceptMode::Shared)
    }
}

/// What a worker process does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Role {
    /// Serves connections from the listeners.
    #[default]
    Http,
    /// Runs scheduled jobs ([`crate::cron`]); no listeners, never dispatched to.
    Cron,
}

/// The arbiter's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Config {
    /// Workers to run (`--workers`).
    pub workers: u32,
    /// Cron workers to run besides them (`--cron-workers`); TTIN/TTOU do not change this.
    pub cron_workers: u32,
    /// Silence after which a worker is killed (`--timeout`); `None`: never (`--timeout 0`), and
    /// workers pace their heartbeats by [`UNTIMED_PACE`] instead.
    pub timeout: Option<Duration>,
    /// How long a stopping worker may take before it is killed (`--graceful-timeout`).
    pub graceful_timeout: Duration,
    /// Time between the soft kill (ABRT) of a late worker and the hard kill (KILL).
    pub kill_grace: Duration,
    /// Requests a worker serves before it is recycled; 0 = never (`--max-requests`).
    pub max_requests: u32,
    /// Up to this many more, chosen per worker (`--max-requests-jitter`).
    pub max_requests_jitter: u32,
    /// How connections reach workers.
    pub accept_mode: AcceptMode,
    /// Number of listeners (`--bind` given this many times).
    pub listeners: u16,
    /// First respawn delay after a worker died before booting; doubles per failure.
    pub spawn_backoff: Duration,
    /// Upper bound of that delay.
    pub spawn_backoff_max: Duration,
    /// Workers in a row that die before booting after which the server halts, as it does when a
    /// worker exits [`WORKER_BOOT_ERROR`] (`--max-boot-failures`); 0 = never: respawn with
    /// backoff forever. A worker that boots ends the row.
    pub max_boot_failures: u32,
    /// Seed of the jitter.
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            workers: 1,
            cron_workers: 0,
            timeout: Some(Duration::from_secs(30)),
            graceful_timeout: Duration::from_secs(30),
            kill_grace: Duration::from_secs(1),
            max_requests: 0,
            max_requests_jitter: 0,
            accept_mode: AcceptMode::Signaled,
            listeners: 1,
            spawn_backoff: Duration::from_millis(100),
            spawn_backoff_max: Duration::from_secs(10),
            max_boot_failures: 10,
            seed: 0,
        }
    }
}

/// A configuration the arbiter refuses.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `workers` was 0 or above [`MAX_WORKERS`].
    #[error("workers must be between 1 and {MAX_WORKERS}, got {0}")]
    Workers(u32),
    /// `cron_workers` was above [`MAX_WORKERS`].
    #[error("cron workers must be at most {MAX_WORKERS}, got {0}")]
    CronWorkers(u32),
    /// `timeout` was outside [`super::domain::TIMEOUT`] (no timeout at all is `None`).
    #[error("timeout must be from {lo:?} to {hi:?} (or none), got {0:?}", lo = super::domain::TIMEOUT.start(), hi = super::domain::TIMEOUT.end())]
    Timeout(Duration),
    /// `graceful_timeout` was outside [`super::domain::GRACEFUL_TIMEOUT`].
    #[error("graceful timeout must be from {lo:?} to {hi:?}, got {0:?}", lo = super::domain::GRACEFUL_TIMEOUT.start(), hi = super::domain::GRACEFUL_TIMEOUT.end())]
    GracefulTimeout(Duration),
    /// Cron workers without a timeout: a job's lease is bounded by it ([`crate::cron::lease`]).
    #[error("cron workers need a timeout: a job's lease is bounded by it")]
    CronWithoutTimeout,
    /// No listener in a mode that dispatches connections.
    #[error("accept mode {0:?} needs at least one listener")]
    NoListener(AcceptMode),
}

/// The timeout workers pace their heartbeats by when there is none (`--timeout 0`): they still
/// say `ALIVE` (for `herd ctl status` and the flood rule), nobody is killed for silence.
pub const UNTIMED_PACE: Duration = Duration::from_secs(30);

impl Config {
    /// The timeout workers pace their heartbeats by (every half of it, at least): `timeout`, or
    /// [`UNTIMED_PACE`] without one. The arbiter's flood rule counts `ALIVE`s per half of it.
    pub fn pace(&self) -> Duration {
        self.timeout.unwrap_or(UNTIMED_PACE)
    }

    /// Checks the configuration against its domain ([`super::domain`]).
    pub fn validate(&self) -> Result<(), ConfigError> {
        use super::domain;
        if !domain::WORKERS.contains(&self.workers) {
            return Err(ConfigError::Workers(self.workers));
        }
        if !domain::CRON_WORKERS.contains(&self.cron_workers) {
            return Err(ConfigError::CronWorkers(self.cron_workers));
        }
        match self.timeout {
            Some(t) if !domain::TIMEOUT.contains(&t) => return Err(ConfigError::Timeout(t)),
            None if self.cron_workers > 0 => return Err(ConfigError::CronWithoutTimeout),
            _ => {}
        }
        if !domain::GRACEFUL_TIMEOUT.contains(&self.graceful_timeout) {
            return Err(ConfigError::GracefulTimeout(self.graceful_timeout));
        }
        if self.listeners == 0 && self.accept_mode.dispatches() {
            return Err(ConfigError::NoListener(self.accept_mode));
        }
        Ok(())
    }
}
