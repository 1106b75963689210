//! What a running server holds: the configuration, listeners, files, stores and shared memory
//! that the arbiter and its workers borrow. [`crate::Server`] owns one; the runtime reads it.

use crate::control::ControlServer;
use crate::cron::Cron;
use crate::os::listen::Listener;
use crate::os::pidfile::Pidfile;
use crate::os::scoreboard::Scoreboard;
use crate::store::Store;
use herd_protocol::arbiter::Config;
use std::path::PathBuf;
use std::time::Duration;

/// Per-worker resource limits (Odoo's `--limit-memory-soft`, `--limit-memory-hard`,
/// `--limit-time-cpu`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Resident memory in bytes past which a worker finishes its request, then is replaced.
    pub memory_soft: Option<u64>,
    /// Address space in bytes a worker may never exceed (`RLIMIT_AS`): an allocation past it
    /// fails and the worker dies, alone.
    pub memory_hard: Option<u64>,
    /// CPU seconds one request may use (`RLIMIT_CPU`, re-armed before each request).
    pub cpu: Option<Duration>,
}

/// Environment variable naming the arbiter a re-executed arbiter replaces.
pub const UPGRADE_FROM_ENV: &str = "HERD_UPGRADE_FROM";

/// Called once the arbiter is ready: signal handlers installed, pidfile written, listeners open.
pub type OnReady = Box<dyn FnOnce(&[Listener])>;

/// The parts of a built server that the runtime uses.
#[derive(Debug)]
pub(crate) struct Resources {
    pub(crate) config: Config,
    pub(crate) listeners: Vec<Listener>,
    pub(crate) pidfile: Option<Pidfile>,
    pub(crate) control: Option<ControlServer>,
    pub(crate) limits: Limits,
    /// Limits on HTTP clients, for the async workers' hyper.
    #[cfg_attr(not(feature = "async"), allow(dead_code))]
    pub(crate) http: crate::http::HttpLimits,
    pub(crate) store: Store,
    pub(crate) scoreboard: Scoreboard,
    pub(crate) upgrade_from: Option<i32>,
    pub(crate) cron: Option<Cron>,
    /// `--trace-events`: where each process records its trace.
    pub(crate) trace_dir: Option<PathBuf>,
    /// `--access-logfile`: opened by the arbiter, written by its workers.
    pub(crate) access: Option<crate::access::AccessWriter>,
    /// `--metrics-bind`: the arbiter's Prometheus endpoint.
    pub(crate) metrics: Option<crate::metrics::MetricsServer>,
    /// Built with `ServerBuilder::from_env`: listeners and stores were (or could have been)
    /// taken over from the environment, so a re-executed arbiter can take them over too.
    pub(crate) from_env: bool,
    /// `--user`, `--group`: who workers run as.
    pub(crate) identity: Option<crate::os::identity::Identity>,
}
