//! The errors of building and running a server.

use crate::os::listen::BindError;
use crate::os::pidfile::PidfileError;
use herd_protocol::arbiter::ConfigError;
use std::io;
use std::path::PathBuf;

/// Why a server could not be built or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No `--bind` address and no inherited listener.
    #[error("no address to listen on (give at least one --bind)")]
    NoListener,
    /// A listener could not be set up.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// The pidfile is held by a live process or cannot be written.
    #[error(transparent)]
    Pidfile(#[from] PidfileError),
    /// The registry store could not be set up.
    #[error("registry store: {0}")]
    Store(io::Error),
    /// The registry store URL is unusable, or its database unreachable.
    #[error("{0}")]
    RegistryStore(String),
    /// Inherited sockets (`LISTEN_FDS`) are unusable.
    #[error("inherited sockets: {0}")]
    Inherited(io::Error),
    /// The control socket could not be set up.
    #[error("control socket {path}: {source}")]
    Control {
        /// Its path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The cron jobs or their store are unusable.
    #[error("cron: {0}")]
    Cron(String),
    /// The trace directory (`--trace-events`) is unusable.
    #[error("trace events {path}: {source}")]
    Trace {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The metrics endpoint (`--metrics-bind`) could not listen.
    #[error("metrics {addr}: {source}")]
    Metrics {
        /// The address.
        addr: String,
        /// Why.
        source: io::Error,
    },
    /// The user or group to run workers as (`--user`, `--group`) is unknown.
    #[error("{0}")]
    Identity(String),
    /// A log file (`--error-logfile`, `--access-logfile`) cannot be opened for appending.
    #[error("log file {path}: {source}")]
    LogFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The process runs more than one thread: forked workers would inherit a broken copy.
    #[error(
        "this process runs {threads} threads: a prefork server forks its workers and must start \
         from a single-threaded process (call run before starting a runtime or any thread)"
    )]
    Threads {
        /// How many.
        threads: usize,
    },
    /// Called from inside a tokio runtime.
    #[error(
        "called from inside a tokio runtime: a prefork server forks its workers and must start \
         outside any runtime (call run from main, before building one)"
    )]
    InsideRuntime,
    /// The program to execute (`herd serve -- COMMAND`) cannot be run, or not as configured.
    #[error("{}: {why}", path.display())]
    Program {
        /// The program.
        path: std::path::PathBuf,
        /// Why not.
        why: String,
    },
    /// A system call the arbiter needs failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        source: io::Error,
    },
}
