//! The library API: build a [`Server`], give it an [`App`] (or a closure), run it.

use crate::control::ControlServer;
use crate::listen::{Bind, BindError, Connection, Listener};
use crate::pidfile::{Pidfile, PidfileError};
use crate::scoreboard::Scoreboard;
use crate::store::{REGISTRY_FD_ENV, ShmStore, Store, StoreError};
use herd_protocol::arbiter::{AcceptMode, Config, ConfigError, WorkerId};
use herd_protocol::registry::{Registry, SequenceStore, Sequences};
use std::io;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

/// Why a server could not be built or run.
#[derive(Debug, thiserror::Error)]
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
    /// A system call the arbiter needs failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        source: io::Error,
    },
}

/// An application served by herd's workers.
///
/// `load` builds the per-process registry (whatever must be rebuilt when another process changes
/// it); herd calls it in each worker after fork and again before any request that finds the shared
/// registry sequence moved. `handle` serves one accepted connection.
pub trait App {
    /// The per-process registry; `()` if the application has none.
    type Registry;

    /// Builds the registry as of the sequences `as_of` (read before this call began).
    fn load(&self, as_of: Sequences) -> Self::Registry;

    /// Clears caches after another process invalidated them (the registry itself stays).
    fn clear_caches(&self, _registry: &mut Self::Registry) {}

    /// Serves one connection.
    fn handle(&mut self, ctx: &mut Context<'_, Self::Registry>, conn: Connection);

    /// The registry store could not be read before a request: answer `conn` with a clean failure
    /// (the request must not run on a registry that may be stale). The default closes it.
    fn unavailable(&mut self, _conn: Connection, _error: &StoreError) {}

    /// Runs one scheduled job in a cron worker (`--cron-workers`, `--cron-job`). An error or a
    /// panic records the run as failed (it runs again at its next time); a job that outlasts the
    /// timeout is killed with its worker and retried once its lease ends. The default has no jobs.
    fn run_job(&mut self, job: &crate::cron::JobRun<'_>) -> Result<(), String> {
        Err(format!("this application runs no cron job (asked for {:?})", job.name))
    }
}

/// An [`App`] made of a closure, with no registry.
#[derive(Debug)]
pub struct FnApp<F>(pub F);

impl<F: FnMut(&mut Context<'_, ()>, Connection)> App for FnApp<F> {
    type Registry = ();
    fn load(&self, _: Sequences) {}
    fn handle(&mut self, ctx: &mut Context<'_, ()>, conn: Connection) {
        (self.0)(ctx, conn)
    }
}

/// What a request handler can see and do besides its connection.
pub struct Context<'a, R> {
    pub(crate) worker: WorkerId,
    pub(crate) generation: u32,
    pub(crate) requests: u64,
    pub(crate) registry: &'a mut Registry<R>,
    pub(crate) store: &'a Store,
    pub(crate) chan: &'a UnixStream,
}

impl<R> Context<'_, R> {
    /// The arbiter's id for this worker (never reused).
    pub fn worker_id(&self) -> u64 {
        self.worker.0
    }

    /// The worker's generation (bumped by each reload).
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// Requests this worker served before this one.
    pub fn requests_served(&self) -> u64 {
        self.requests
    }

    /// The sequences this request's registry is as new as.
    pub fn sequences(&self) -> Sequences {
        self.registry.coherence().seen()
    }

    /// The registry, checked against the shared sequences before this request.
    pub fn registry(&mut self) -> &mut R {
        self.registry.checked()
    }

    /// Changes the registry and signals the change to every process: applies `f` to this
    /// process's registry, then bumps the shared registry sequence. Returns the sequences right
    /// after the bump: every request that starts after this returns runs on a registry at least
    /// that new.
    pub fn change_registry(&mut self, f: impl FnOnce(&mut R)) -> Result<Sequences, StoreError> {
        self.registry.change(f);
        self.commit()
    }

    /// Signals that caches were invalidated: every process clears its caches before its next
    /// request.
    pub fn invalidate_caches(&mut self) -> Result<Sequences, StoreError> {
        self.registry.coherence_mut().invalidate_cache();
        self.commit()
    }

    fn commit(&mut self) -> Result<Sequences, StoreError> {
        match self.registry.coherence_mut().commit() {
            Some(what) => {
                let after = self.store.bump(what)?;
                self.registry.coherence_mut().bumped(what, after);
                Ok(after)
            }
            None => self.store.get(),
        }
    }

    /// Writes raw bytes to the arbiter's pipe, bypassing the protocol. Exists only so that tests
    /// can make a worker misbehave; the arbiter kills a worker that sends anything malformed.
    #[doc(hidden)]
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        use std::io::Write;
        let mut c = self.chan;
        c.write_all(bytes)
    }
}

/// Called once the arbiter is ready: signal handlers installed, pidfile written, listeners open.
pub type OnReady = Box<dyn FnOnce(&[Listener])>;

/// Builds a [`Server`]. Defaults are gunicorn's: one worker, 30 s timeout and graceful timeout,
/// no request limit.
pub struct ServerBuilder {
    binds: Vec<Bind>,
    inherited: Vec<Listener>,
    config: Config,
    pidfile: Option<PathBuf>,
    control: Option<PathBuf>,
    limits: Limits,
    registry_store: Option<String>,
    on_ready: Option<OnReady>,
    cron_jobs: Vec<crate::cron::CronJob>,
}

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

impl std::fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("binds", &self.binds)
            .field("inherited", &self.inherited)
            .field("config", &self.config)
            .field("pidfile", &self.pidfile)
            .field("control", &self.control)
            .field("limits", &self.limits)
            .field("registry_store", &self.registry_store.as_deref().map(crate::store::redact))
            .finish_non_exhaustive()
    }
}

impl ServerBuilder {
    /// Listens on `bind` (repeatable).
    pub fn bind(mut self, bind: Bind) -> Self {
        self.binds.push(bind);
        self
    }

    /// Serves on an already listening socket (inherited, or bound by the caller).
    pub fn listener(mut self, listener: Listener) -> Self {
        self.inherited.push(listener);
        self
    }

    /// Number of workers (`--workers`).
    pub fn workers(mut self, n: u32) -> Self {
        self.config.workers = n;
        self
    }

    /// Silence after which a worker is killed (`--timeout`).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.config.timeout = d;
        self
    }

    /// How long stopping workers may take (`--graceful-timeout`).
    pub fn graceful_timeout(mut self, d: Duration) -> Self {
        self.config.graceful_timeout = d;
        self
    }

    /// Requests per worker before it is recycled; 0 = never (`--max-requests`).
    pub fn max_requests(mut self, n: u32) -> Self {
        self.config.max_requests = n;
        self
    }

    /// Up to this many more requests, chosen per worker (`--max-requests-jitter`).
    pub fn max_requests_jitter(mut self, n: u32) -> Self {
        self.config.max_requests_jitter = n;
        self
    }

    /// How connections reach workers (`--accept-mode`).
    pub fn accept_mode(mut self, m: AcceptMode) -> Self {
        self.config.accept_mode = m;
        self
    }

    /// Writes the arbiter's pid here while it runs (`--pidfile`).
    pub fn pidfile(mut self, path: impl Into<PathBuf>) -> Self {
        self.pidfile = Some(path.into());
        self
    }

    /// Serves `herd ctl` on a unix socket at `path` (owner-only). Default: `<pidfile>.ctl` when a
    /// pidfile is set.
    pub fn control_socket(mut self, path: impl Into<PathBuf>) -> Self {
        self.control = Some(path.into());
        self
    }

    /// Where the registry sequences live: `shm` (the default: shared memory, one host) or a
    /// PostgreSQL URL `postgres://user:password@host:port/database` (several hosts; needs the
    /// `postgres` feature).
    pub fn registry_store(mut self, url: impl Into<String>) -> Self {
        self.registry_store = Some(url.into());
        self
    }

    /// Per-worker resource limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Calls `f` once the arbiter is ready to serve (e.g. to print the addresses or notify a
    /// supervisor). Connections made after it returns are served.
    pub fn on_ready(mut self, f: impl FnOnce(&[Listener]) + 'static) -> Self {
        self.on_ready = Some(Box::new(f));
        self
    }

    /// Cron worker processes to run besides the HTTP workers (`--cron-workers`).
    pub fn cron_workers(mut self, n: u32) -> Self {
        self.config.cron_workers = n;
        self
    }

    /// A scheduled job the cron workers run through [`App::run_job`] (`--cron-job NAME=SECONDS`,
    /// repeatable). Its table lives with the registry store: shared memory, or PostgreSQL.
    pub fn cron_job(mut self, job: crate::cron::CronJob) -> Self {
        self.cron_jobs.push(job);
        self
    }

    /// Seeds the request-limit jitter (default: from the clock and pid).
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = seed;
        self
    }

    /// Checks the configuration, sets up the listeners (the sockets passed by socket activation
    /// or by the arbiter this one replaces, if any — then `bind` addresses are not bound again —
    /// else the `bind` addresses), checks the pidfile and sets up the store.
    pub fn build(self) -> Result<Server, Error> {
        let upgrade_from = std::env::var(UPGRADE_FROM_ENV).ok().and_then(|p| p.parse::<i32>().ok());
        let from_env = crate::listen::listeners_from_env().map_err(Error::Inherited)?;
        let mut listeners = self.inherited;
        if from_env.is_empty() {
            for b in &self.binds {
                listeners.push(Listener::bind(b)?);
            }
        } else {
            listeners.extend(from_env);
        }
        if listeners.is_empty() {
            return Err(Error::NoListener);
        }
        let mut config = self.config;
        config.listeners = u16::try_from(listeners.len()).map_err(|_| Error::NoListener)?;
        config.validate()?;
        let control_path = self.control.or_else(|| {
            self.pidfile.as_ref().map(|p| {
                let mut s = p.clone().into_os_string();
                s.push(".ctl");
                PathBuf::from(s)
            })
        });
        let pidfile = self.pidfile.map(|p| Pidfile::check(p, upgrade_from)).transpose()?;
        let control = control_path
            .map(|path| {
                ControlServer::bind(&path, upgrade_from.is_some())
                    .map_err(|source| Error::Control { path, source })
            })
            .transpose()?;
        let store = match self.registry_store.as_deref() {
            None | Some("shm") => {
                let inherited = std::env::var(REGISTRY_FD_ENV).ok().and_then(|f| f.parse::<i32>().ok());
                let shm = match inherited {
                    // SAFETY: the arbiter this one replaces passed it (with LISTEN_PID naming us).
                    Some(fd) if upgrade_from.is_some() => unsafe { ShmStore::from_raw_fd(fd) },
                    _ => ShmStore::create(),
                }
                .map_err(Error::Store)?;
                Store::Shm(shm)
            }
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                postgres_store(url)?
            }
            Some(other) => {
                return Err(Error::RegistryStore(format!(
                    "unknown registry store {other:?}: expected shm or postgres://user:password@host/database"
                )));
            }
        };
        crate::cron::validate(&self.cron_jobs, config.cron_workers)
            .map_err(|e| Error::Cron(e.to_string()))?;
        let cron = if self.cron_jobs.is_empty() {
            None
        } else {
            let store = match &store {
                Store::Shm(_) => {
                    let inherited =
                        std::env::var(crate::cron::CRON_FD_ENV).ok().and_then(|f| f.parse::<i32>().ok());
                    let shm = match inherited {
                        // SAFETY: the arbiter this one replaces passed it (with LISTEN_PID naming us).
                        Some(fd) if upgrade_from.is_some() => unsafe {
                            crate::cron::ShmJobs::from_raw_fd(fd)
                        },
                        _ => crate::cron::ShmJobs::create(&self.cron_jobs),
                    }
                    .map_err(|e| Error::Cron(e.to_string()))?;
                    crate::cron::JobStore::Shm(shm)
                }
                #[cfg(feature = "postgres")]
                Store::Postgres(pg) => crate::cron::JobStore::Postgres(Box::new(
                    crate::pgstore::PgJobs::setup(pg.raw_url(), &self.cron_jobs)
                        .map_err(|e| Error::Cron(e.to_string()))?,
                )),
            };
            Some(crate::cron::Cron { jobs: self.cron_jobs, store })
        };
        let scoreboard = Scoreboard::create().map_err(Error::Store)?;
        Ok(Server {
            cron,
            config,
            listeners,
            pidfile,
            control,
            limits: self.limits,
            store,
            scoreboard,
            upgrade_from,
            on_ready: self.on_ready,
        })
    }
}

/// A prefork server, bound and ready to run.
pub struct Server {
    pub(crate) config: Config,
    pub(crate) listeners: Vec<Listener>,
    pub(crate) pidfile: Option<Pidfile>,
    pub(crate) control: Option<ControlServer>,
    pub(crate) limits: Limits,
    pub(crate) store: Store,
    pub(crate) scoreboard: Scoreboard,
    pub(crate) upgrade_from: Option<i32>,
    pub(crate) on_ready: Option<OnReady>,
    pub(crate) cron: Option<crate::cron::Cron>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.config)
            .field("listeners", &self.listeners)
            .field("pidfile", &self.pidfile)
            .field("control", &self.control)
            .field("limits", &self.limits)
            .field("store", &self.store)
            .field("upgrade_from", &self.upgrade_from)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A builder with gunicorn's defaults.
    pub fn builder() -> ServerBuilder {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ u64::from(std::process::id()).rotate_left(32);
        let config = Config { seed, ..Config::default() };
        ServerBuilder {
            binds: Vec::new(),
            inherited: Vec::new(),
            config,
            pidfile: None,
            control: None,
            limits: Limits::default(),
            registry_store: None,
            on_ready: None,
            cron_jobs: Vec::new(),
        }
    }

    /// The listeners, in `--bind` order (their index is the protocol's `ListenerId`).
    pub fn listeners(&self) -> &[Listener] {
        &self.listeners
    }

    /// The arbiter's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The cron jobs and their store, if any.
    pub fn cron(&self) -> Option<&crate::cron::Cron> {
        self.cron.as_ref()
    }

    /// The control socket's path, if any.
    pub fn control_path(&self) -> Option<&std::path::Path> {
        self.control.as_ref().map(ControlServer::path)
    }

    /// Runs the arbiter in this process until it stops; returns its exit code. Workers are forked
    /// from here and never return.
    ///
    /// Call it from a single-threaded process: `fork` copies only the calling thread.
    pub fn run_app<A: App>(self, app: A) -> Result<i32, Error> {
        crate::arbiter::run(self, crate::arbiter::SyncWorker(app))
    }

    /// Runs an async application on async workers (tokio + hyper, HTTP/1.1 with keep-alive),
    /// each serving up to `connections` connections at once (`--worker-connections`). `handler`
    /// answers one request; it gets an [`crate::async_worker::HttpContext`] (worker id, registry
    /// sequences, registry bumps). The registry sequence is checked before every request.
    ///
    /// A handler that blocks the runtime stops the worker's heartbeats: the arbiter kills it
    /// after `timeout`. A slow handler that awaits does not.
    #[cfg(feature = "async")]
    pub fn run_async<F, Fut, B>(self, connections: u32, handler: F) -> Result<i32, Error>
    where
        F: Fn(hyper::Request<hyper::body::Incoming>, crate::async_worker::HttpContext) -> Fut
            + Clone
            + 'static,
        Fut: std::future::Future<Output = hyper::Response<B>> + 'static,
        B: hyper::body::Body<Data = bytes::Bytes> + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        if self.config.cron_workers > 0 {
            return Err(Error::Cron("cron workers run an App's jobs: use run_app, not run_async".into()));
        }
        crate::arbiter::run(
            self,
            crate::async_worker::AsyncWorker { handler, connections: connections.max(1) },
        )
    }

    /// Runs a closure as the application (no registry).
    pub fn run<F: FnMut(&mut Context<'_, ()>, Connection)>(self, handler: F) -> Result<i32, Error> {
        self.run_app(FnApp(handler))
    }
}

#[cfg(feature = "postgres")]
fn postgres_store(url: &str) -> Result<Store, Error> {
    crate::pgstore::PgStore::setup(url)
        .map(|p| Store::Postgres(Box::new(p)))
        .map_err(|e| Error::RegistryStore(e.to_string()))
}

#[cfg(not(feature = "postgres"))]
fn postgres_store(_: &str) -> Result<Store, Error> {
    Err(Error::RegistryStore(
        "this herd was built without PostgreSQL support (cargo feature `postgres`)".into(),
    ))
}
