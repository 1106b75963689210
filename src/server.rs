//! The library API: build a [`Server`], give it an [`App`] (or a closure), run it.

use crate::listen::{Bind, BindError, Connection, Listener};
use crate::pidfile::{Pidfile, PidfileError};
use crate::store::{ShmStore, Store, StoreError};
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
    on_ready: Option<OnReady>,
}

impl std::fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("binds", &self.binds)
            .field("inherited", &self.inherited)
            .field("config", &self.config)
            .field("pidfile", &self.pidfile)
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

    /// Calls `f` once the arbiter is ready to serve (e.g. to print the addresses or notify a
    /// supervisor). Connections made after it returns are served.
    pub fn on_ready(mut self, f: impl FnOnce(&[Listener]) + 'static) -> Self {
        self.on_ready = Some(Box::new(f));
        self
    }

    /// Seeds the request-limit jitter (default: from the clock and pid).
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = seed;
        self
    }

    /// Checks the configuration, binds the listeners, checks the pidfile and sets up the store.
    pub fn build(self) -> Result<Server, Error> {
        let mut listeners = self.inherited;
        for b in &self.binds {
            listeners.push(Listener::bind(b)?);
        }
        if listeners.is_empty() {
            return Err(Error::NoListener);
        }
        let mut config = self.config;
        config.listeners = u16::try_from(listeners.len()).map_err(|_| Error::NoListener)?;
        config.validate()?;
        let pidfile = self.pidfile.map(Pidfile::check).transpose()?;
        let store = Store::Shm(ShmStore::create().map_err(Error::Store)?);
        Ok(Server { config, listeners, pidfile, store, on_ready: self.on_ready })
    }
}

/// A prefork server, bound and ready to run.
pub struct Server {
    pub(crate) config: Config,
    pub(crate) listeners: Vec<Listener>,
    pub(crate) pidfile: Option<Pidfile>,
    pub(crate) store: Store,
    pub(crate) on_ready: Option<OnReady>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.config)
            .field("listeners", &self.listeners)
            .field("pidfile", &self.pidfile)
            .field("store", &self.store)
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
        ServerBuilder { binds: Vec::new(), inherited: Vec::new(), config, pidfile: None, on_ready: None }
    }

    /// The listeners, in `--bind` order (their index is the protocol's `ListenerId`).
    pub fn listeners(&self) -> &[Listener] {
        &self.listeners
    }

    /// The arbiter's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Runs the arbiter in this process until it stops; returns its exit code. Workers are forked
    /// from here and never return.
    ///
    /// Call it from a single-threaded process: `fork` copies only the calling thread.
    pub fn run_app<A: App>(self, app: A) -> Result<i32, Error> {
        crate::arbiter::run(self, app)
    }

    /// Runs a closure as the application (no registry).
    pub fn run<F: FnMut(&mut Context<'_, ()>, Connection)>(self, handler: F) -> Result<i32, Error> {
        self.run_app(FnApp(handler))
    }
}
