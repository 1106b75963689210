//! The library API: build a [`Server`], give it an [`App`] (or a closure), run it.

use crate::access::{AccessLog, AccessWriter};
use crate::app::{App, Context, FnApp};
use crate::control::ControlServer;
use crate::cron::{Cron, CronJob, JobStore};
use crate::error::Error;
use crate::http::HttpLimits;
use crate::os::listen::{Bind, Connection, ListenOptions, Listener, SocketOrigin};
use crate::os::pidfile::Pidfile;
use crate::os::scoreboard::Scoreboard;
use crate::resources::{Limits, OnReady, Resources, UPGRADE_FROM_ENV};
use crate::store::ShmStore;
use crate::store::{REGISTRY_FD_ENV, Store};
use herd_protocol::arbiter::{AcceptMode, Config};
use std::path::PathBuf;
use std::time::Duration;

/// Builds a [`Server`]. Defaults are gunicorn's: one worker, 30 s timeout and graceful timeout,
/// no request limit.
pub struct ServerBuilder {
    binds: Vec<Bind>,
    inherited: Vec<Listener>,
    config: Config,
    pidfile: Option<PathBuf>,
    control: Option<PathBuf>,
    limits: Limits,
    http: HttpLimits,
    registry_store: Option<String>,
    on_ready: Option<OnReady>,
    cron_jobs: Vec<CronJob>,
    trace_dir: Option<PathBuf>,
    error_log: Option<PathBuf>,
    access_log: Option<AccessLog>,
    user: Option<String>,
    group: Option<String>,
    listen: ListenOptions,
    metrics: Option<String>,
    from_env: bool,
}

impl std::fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("binds", &self.binds)
            .field("inherited", &self.inherited)
            .field("config", &self.config)
            .field("pidfile", &self.pidfile)
            .field("control", &self.control)
            .field("limits", &self.limits)
            .field("http", &self.http)
            .field("registry_store", &self.registry_store.as_deref().map(crate::store::redact))
            .field("error_log", &self.error_log)
            .field("access_log", &self.access_log)
            .field("user", &self.user)
            .field("group", &self.group)
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

    /// Silence after which a worker is killed (`--timeout`): for a sync worker, the longest a
    /// request may take. Zero: no timeout (`--timeout 0`; refused with cron workers, whose job
    /// leases it bounds).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.config.timeout = (!d.is_zero()).then_some(d);
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

    /// Workers in a row that die before booting after which the server halts with exit 3
    /// (`--max-boot-failures`; default 10); 0: never, respawn with backoff forever.
    pub fn max_boot_failures(mut self, n: u32) -> Self {
        self.config.max_boot_failures = n;
        self
    }

    /// How connections reach workers (`--accept-mode`; default auto).
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

    /// What an HTTP client may make an async worker wait for and hold: keep-alive idle time,
    /// request-head read timeout, request line and header field limits (`--keep-alive`,
    /// `--header-timeout`, `--limit-request-*`). Sync applications read requests themselves.
    pub fn http_limits(mut self, limits: HttpLimits) -> Self {
        self.http = limits;
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
    pub fn cron_job(mut self, job: CronJob) -> Self {
        self.cron_jobs.push(job);
        self
    }

    /// Records what each process feeds its core and carries out, one file per process in `dir`
    /// (which must exist), for `herd-sim --check-trace` (`--trace-events`).
    pub fn trace_events(mut self, dir: impl Into<PathBuf>) -> Self {
        self.trace_dir = Some(dir.into());
        self
    }

    /// Sends the log — this process's standard error, which its workers and the programs they
    /// exec inherit — to `path`, appending (`--error-logfile`); USR1 reopens it after a
    /// rotation, in the arbiter and in herd's own workers. Set up last in [`Self::build`], so
    /// that a server that cannot start says why where it was started.
    pub fn error_logfile(mut self, path: impl Into<PathBuf>) -> Self {
        self.error_log = Some(path.into());
        self
    }

    /// Writes one line per request to an access log (`--access-logfile`, `--access-logformat`):
    /// the built-in async HTTP layer does it for every request, a sync application through
    /// [`crate::Context::log_access`]. USR1 reopens the file after a rotation.
    pub fn access_log(mut self, log: AccessLog) -> Self {
        self.access_log = Some(log);
        self
    }

    /// Serves the arbiter's counters in Prometheus' text format at `http://ADDR/metrics`
    /// (`--metrics-bind`): those of `herd ctl status`, by the same code.
    pub fn metrics_bind(mut self, addr: impl Into<String>) -> Self {
        self.metrics = Some(addr.into());
        self
    }

    /// How the `bind` addresses are listened on (`--backlog`, `--reuse-port`).
    pub fn listen_options(mut self, options: ListenOptions) -> Self {
        self.listen = options;
        self
    }

    /// Runs workers as this user, a name or a numeric id (`--user`); the arbiter keeps the
    /// identity it was started with, as gunicorn's does. Without [`Self::group`], the user's
    /// primary group.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Runs workers in this group, a name or a numeric id (`--group`).
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// Takes over what the environment hands this process, as a prefork server must to be
    /// upgraded in place or socket-activated: the listeners of systemd socket activation
    /// (`LISTEN_FDS` and `LISTEN_PID` naming this process: then `bind` addresses are not bound
    /// again), and, in a new arbiter started by a USR2 upgrade, the listeners, registry and
    /// cron stores of the arbiter it replaces (`HERD_UPGRADE_FROM`, `HERD_REGISTRY_FD`,
    /// `HERD_CRON_FD`). Without it the environment is not read, and a USR2 upgrade is refused
    /// with a message (the new arbiter could not take the listeners over).
    ///
    /// ```no_run
    /// let server = herd::Server::builder().from_env().bind("127.0.0.1:8000".parse()?).build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_env(mut self) -> Self {
        self.from_env = true;
        self
    }

    /// Seeds the request-limit jitter (default: from the clock and pid).
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = seed;
        self
    }

    /// Checks the settings without setting anything up (no socket bound, no file written, no
    /// store reached): what [`ServerBuilder::build`] would refuse in the settings themselves
    /// (`herd serve --check-config`).
    pub fn check(&self) -> Result<(), Error> {
        let mut config = self.config.clone();
        let listeners = (self.binds.len() + self.inherited.len()).max(1);
        config.listeners = u16::try_from(listeners).map_err(|_| Error::NoListener)?;
        config.validate()?;
        crate::cron::validate(&self.cron_jobs, config.cron_workers)
            .map_err(|e| Error::Cron(e.to_string()))?;
        crate::os::identity::resolve(self.user.as_deref(), self.group.as_deref()).map_err(Error::Identity)?;
        match self.registry_store.as_deref() {
            None | Some("shm") => Ok(()),
            Some(url) if is_postgres(url) => Ok(()),
            Some(other) => Err(unknown_store(other)),
        }
    }

    /// As [`ServerBuilder::check`], for a server that will run `program` ([`Server::run_program`]):
    /// it can be executed, and the settings are ones its protocol can honour.
    pub fn check_program(&self, program: &crate::Program) -> Result<(), Error> {
        program.resolve()?;
        program.check(&self.config)
    }

    /// Checks the configuration, sets up the listeners (the sockets passed by socket activation
    /// or by the arbiter this one replaces, if any — then `bind` addresses are not bound again —
    /// else the `bind` addresses), checks the pidfile and sets up the store.
    pub fn build(self) -> Result<Server, Error> {
        self.build_in(&|name| std::env::var(name).ok())
    }

    /// [`Self::build`], reading the environment through `read` (only if [`Self::from_env`]).
    fn build_in(self, read: &dyn Fn(&str) -> Option<String>) -> Result<Server, Error> {
        let from_env = self.from_env;
        let env = |name: &str| if from_env { read(name) } else { None };
        let upgrade_from = env(UPGRADE_FROM_ENV).and_then(|p| p.parse::<i32>().ok());
        // From the arbiter this one replaces, or from socket activation: who owns the files.
        let origin = if upgrade_from.is_some() { SocketOrigin::Upgrade } else { SocketOrigin::Activation };
        let from_env = crate::os::listen::listeners_from_env(origin, &env).map_err(Error::Inherited)?;
        let mut listeners = self.inherited;
        if from_env.is_empty() {
            for b in &self.binds {
                listeners.push(Listener::bind_with(b, self.listen)?);
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
                let inherited = env(REGISTRY_FD_ENV).and_then(|f| f.parse::<i32>().ok());
                let shm = match inherited {
                    // SAFETY: the arbiter this one replaces passed it (with LISTEN_PID naming us).
                    Some(fd) if upgrade_from.is_some() => unsafe { ShmStore::from_raw_fd(fd) },
                    _ => ShmStore::create(),
                }
                .map_err(Error::Store)?;
                Store::Shm(shm)
            }
            Some(url) if is_postgres(url) => postgres_store(url)?,
            Some(other) => return Err(unknown_store(other)),
        };
        crate::cron::validate(&self.cron_jobs, config.cron_workers)
            .map_err(|e| Error::Cron(e.to_string()))?;
        let cron = if self.cron_jobs.is_empty() {
            None
        } else {
            let store = match &store {
                Store::Shm(_) => {
                    let inherited = env(crate::cron::CRON_FD_ENV).and_then(|f| f.parse::<i32>().ok());
                    let shm = match inherited {
                        // SAFETY: the arbiter this one replaces passed it (with LISTEN_PID naming us).
                        Some(fd) if upgrade_from.is_some() => unsafe {
                            crate::cron::ShmJobs::from_raw_fd(fd)
                        },
                        _ => crate::cron::ShmJobs::create(&self.cron_jobs),
                    }
                    .map_err(|e| Error::Cron(e.to_string()))?;
                    JobStore::Shm(shm)
                }
                #[cfg(feature = "postgres")]
                Store::Postgres(pg) => JobStore::Postgres(Box::new(
                    crate::cron::PgJobs::setup(pg.raw_url(), &self.cron_jobs)
                        .map_err(|e| Error::Cron(e.to_string()))?,
                )),
            };
            Some(Cron { jobs: self.cron_jobs, store })
        };
        let scoreboard = Scoreboard::create().map_err(Error::Store)?;
        let identity = crate::os::identity::resolve(self.user.as_deref(), self.group.as_deref())
            .map_err(Error::Identity)?;
        let metrics = self
            .metrics
            .map(|addr| {
                crate::metrics::MetricsServer::bind(&addr).map_err(|source| Error::Metrics { addr, source })
            })
            .transpose()?;
        if let Some(who) = &identity {
            crate::os::logfile::give_to(who.uid.as_raw(), who.gid.as_raw());
        }
        let access = self
            .access_log
            .map(|log| {
                AccessWriter::open(&log).map_err(|source| Error::LogFile { path: log.path.clone(), source })
            })
            .transpose()?;
        if let Some(path) = self.error_log {
            crate::os::logfile::redirect_stderr(&path).map_err(|source| Error::LogFile { path, source })?;
        }
        Ok(Server {
            res: Resources {
                cron,
                config,
                listeners,
                pidfile,
                control,
                limits: self.limits,
                http: self.http,
                store,
                scoreboard,
                upgrade_from,
                trace_dir: self.trace_dir,
                access,
                identity,
                metrics,
                from_env: self.from_env,
            },
            on_ready: self.on_ready,
        })
    }
}

/// A prefork server, bound and ready to run.
pub struct Server {
    res: Resources,
    on_ready: Option<OnReady>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = &self.res;
        f.debug_struct("Server")
            .field("config", &r.config)
            .field("listeners", &r.listeners)
            .field("pidfile", &r.pidfile)
            .field("control", &r.control)
            .field("limits", &r.limits)
            .field("store", &r.store)
            .field("upgrade_from", &r.upgrade_from)
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
        // Auto: the single wakeup of signaled mode while workers wait, the direct accept of
        // shared mode under load — the fastest that keeps the protocol's guarantee at idle
        // (docs/runtime.md, "The default accept mode"; docs/benchmarks.md).
        let config = Config { seed, accept_mode: AcceptMode::Auto, ..Config::default() };
        ServerBuilder {
            binds: Vec::new(),
            inherited: Vec::new(),
            config,
            pidfile: None,
            control: None,
            limits: Limits::default(),
            http: HttpLimits::default(),
            registry_store: None,
            on_ready: None,
            cron_jobs: Vec::new(),
            trace_dir: None,
            error_log: None,
            access_log: None,
            user: None,
            group: None,
            listen: ListenOptions::default(),
            metrics: None,
            from_env: false,
        }
    }

    /// The listeners, in `--bind` order (their index is the protocol's `ListenerId`).
    pub fn listeners(&self) -> &[Listener] {
        &self.res.listeners
    }

    /// The arbiter's configuration.
    pub fn config(&self) -> &Config {
        &self.res.config
    }

    /// The cron jobs and their store, if any.
    pub fn cron(&self) -> Option<&Cron> {
        self.res.cron.as_ref()
    }

    /// The control socket's path, if any.
    pub fn control_path(&self) -> Option<&std::path::Path> {
        self.res.control.as_ref().map(ControlServer::path)
    }

    /// Runs the arbiter in this process until it stops; returns its exit code. Workers are forked
    /// from here and never return.
    ///
    /// Call it from a single-threaded process: `fork` copies only the calling thread.
    pub fn run_app<A: App>(self, app: A) -> Result<i32, Error> {
        single_threaded()?;
        crate::runtime::run(self.res, self.on_ready, crate::runtime::SyncWorker(app))
    }

    /// Runs an async application on async workers (tokio + hyper, HTTP/1.1 with keep-alive),
    /// each serving up to `connections` connections at once (`--worker-connections`). `handler`
    /// answers one request; it gets an [`crate::HttpContext`] (worker id, client address,
    /// registry sequences, registry bumps). The registry sequence is checked before every
    /// request. A handler that panics answers 500; the worker serves on.
    ///
    /// A handler that blocks the runtime stops the worker's heartbeats: the arbiter kills it
    /// after `timeout`. A slow handler that awaits does not.
    #[cfg(feature = "async")]
    pub fn run_async<F, Fut, B>(self, connections: u32, handler: F) -> Result<i32, Error>
    where
        F: Fn(hyper::Request<hyper::body::Incoming>, crate::HttpContext) -> Fut + Clone + 'static,
        Fut: std::future::Future<Output = hyper::Response<B>> + 'static,
        B: hyper::body::Body<Data = bytes::Bytes> + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.run_async_with(connections, (), handler)
    }

    /// [`Server::run_async`] with a registry: `loader` builds each worker's registry object and
    /// rebuilds it whenever the shared registry sequence moved; each request's
    /// [`crate::HttpContext::registry`] is the object current when it began.
    #[cfg(feature = "async")]
    pub fn run_async_with<L, F, Fut, B>(self, connections: u32, loader: L, handler: F) -> Result<i32, Error>
    where
        L: crate::RegistryLoader + Clone,
        F: Fn(hyper::Request<hyper::body::Incoming>, crate::HttpContext<L::Registry>) -> Fut
            + Clone
            + 'static,
        Fut: std::future::Future<Output = hyper::Response<B>> + 'static,
        B: hyper::body::Body<Data = bytes::Bytes> + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        single_threaded()?;
        if self.res.config.cron_workers > 0 {
            return Err(Error::Cron("cron workers run an App's jobs: use run_app, not run_async".into()));
        }
        crate::runtime::run(
            self.res,
            self.on_ready,
            crate::runtime::async_worker::AsyncWorker { loader, handler, connections: connections.max(1) },
        )
    }

    /// Runs a tower [`Service`](tower_service::Service) — an axum `Router` as it is — on async
    /// workers, as [`Server::run_async`] runs a handler. Each request carries its
    /// [`crate::HttpContext`] as an extension (axum: `Extension<herd::HttpContext>`). A service
    /// error answers 500 and is logged.
    ///
    /// ```no_run
    /// use axum::{Router, extract::Extension, routing::get};
    ///
    /// async fn hello(Extension(ctx): Extension<herd::HttpContext>) -> String {
    ///     format!("hello from worker {}\n", ctx.worker_id())
    /// }
    ///
    /// let app = Router::new().route("/", get(hello));
    /// let server = herd::Server::builder().bind("127.0.0.1:8000".parse()?).workers(4).build()?;
    /// std::process::exit(server.run_service(1000, app)?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "tower")]
    pub fn run_service<S, B>(self, connections: u32, service: S) -> Result<i32, Error>
    where
        S: tower_service::Service<hyper::Request<hyper::body::Incoming>, Response = hyper::Response<B>>
            + Clone
            + 'static,
        S::Future: 'static,
        S::Error: std::fmt::Display,
        B: hyper::body::Body<Data = bytes::Bytes> + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.run_service_with(connections, (), service)
    }

    /// [`Server::run_service`] with a registry (see [`Server::run_async_with`]): the request's
    /// extension is an `HttpContext<L::Registry>`.
    #[cfg(feature = "tower")]
    pub fn run_service_with<L, S, B>(self, connections: u32, loader: L, service: S) -> Result<i32, Error>
    where
        L: crate::RegistryLoader + Clone,
        S: tower_service::Service<hyper::Request<hyper::body::Incoming>, Response = hyper::Response<B>>
            + Clone
            + 'static,
        S::Future: 'static,
        S::Error: std::fmt::Display,
        B: hyper::body::Body<Data = bytes::Bytes> + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        use crate::runtime::async_worker::call_service;
        self.run_async_with(connections, loader, move |req, ctx| call_service(service.clone(), req, ctx))
    }

    /// Runs `program` in every worker (`herd serve -- COMMAND`): each worker is forked, then
    /// executes it with the listeners at descriptors 3, 4, ... (`LISTEN_FDS`, `LISTEN_PID`,
    /// `LISTEN_FDNAMES`, as systemd passes them). A program that cannot be executed is an error
    /// here, before anything is forked; a configuration the program's protocol cannot honour too.
    pub fn run_program(self, program: crate::Program) -> Result<i32, Error> {
        single_threaded()?;
        let path = program.resolve()?;
        program.check(&self.res.config)?;
        crate::runtime::run(self.res, self.on_ready, crate::runtime::ExecWorker { program, path })
    }

    /// Runs a closure as the application (no registry).
    pub fn run<F: FnMut(&mut Context<'_, ()>, Connection)>(self, handler: F) -> Result<i32, Error> {
        self.run_app(FnApp(handler))
    }
}

/// `fork` copies only the calling thread: forked from a process with other threads (a tokio
/// runtime, a thread pool), a worker can inherit a lock some vanished thread held. Refused before
/// anything is forked.
fn single_threaded() -> Result<(), Error> {
    // Inside a tokio runtime (even a current-thread one): its workers could not start their own.
    #[cfg(feature = "async")]
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::InsideRuntime);
    }
    match crate::os::sys::threads() {
        Ok(1) => Ok(()),
        Ok(threads) => Err(Error::Threads { threads }),
        Err(source) => Err(Error::Io { what: "counting this process's threads", source }),
    }
}

/// A PostgreSQL address: a URL, or libpq's key=value connection string (`host=db user=herd
/// dbname=x`).
fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://") || url.contains('=')
}

fn unknown_store(address: &str) -> Error {
    Error::RegistryStore(format!(
        "unknown registry store {:?}: expected shm, postgres://user:password@host/database or key=value \
         pairs (host=... dbname=...)",
        crate::store::redact(address)
    ))
}

#[cfg(feature = "postgres")]
fn postgres_store(url: &str) -> Result<Store, Error> {
    crate::store::PgStore::setup(url)
        .map(|p| Store::Postgres(Box::new(p)))
        .map_err(|e| Error::RegistryStore(e.to_string()))
}

#[cfg(not(feature = "postgres"))]
fn postgres_store(_: &str) -> Result<Store, Error> {
    Err(Error::RegistryStore(
        "a PostgreSQL registry store needs a herd built with the cargo feature `postgres`".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test harness runs tests on threads of their own: this process is not single-threaded,
    /// and running a server from it is refused before anything is forked.
    #[test]
    fn a_multi_threaded_process_is_refused_before_forking() {
        let extra = std::thread::spawn(|| std::thread::park_timeout(std::time::Duration::from_secs(5)));
        let threads = crate::os::sys::threads().unwrap();
        assert!(threads >= 2, "{threads}");
        assert!(matches!(single_threaded(), Err(Error::Threads { threads: n }) if n >= 2));
        // Only now (the check works) is it safe to ask a server to run from here.
        let server = Server::builder().bind("127.0.0.1:0".parse().unwrap()).build().unwrap();
        let e = server.run(|_, _| {}).unwrap_err();
        assert!(matches!(e, Error::Threads { .. }), "{e}");
        assert!(e.to_string().contains("thread"), "{e}");
        extra.thread().unpark();
        extra.join().unwrap();
    }

    /// The environment is read only by a builder that asked for it (`from_env`): then for the
    /// upgrade and socket-activation variables, and what it says is taken over.
    #[test]
    fn the_environment_is_read_only_when_asked() {
        let asked = std::cell::RefCell::new(Vec::new());
        let read = |name: &str| {
            asked.borrow_mut().push(name.to_owned());
            (name == UPGRADE_FROM_ENV).then(|| "4242".to_owned())
        };
        let builder = || Server::builder().bind("127.0.0.1:0".parse().unwrap());
        let server = builder().build_in(&read).unwrap();
        assert!(asked.borrow().is_empty(), "read without from_env: {:?}", asked.borrow());
        assert_eq!((server.res.upgrade_from, server.res.from_env), (None, false));
        let server = builder().from_env().build_in(&read).unwrap();
        let names = asked.borrow().clone();
        for name in [UPGRADE_FROM_ENV, crate::os::listen::LISTEN_PID, REGISTRY_FD_ENV] {
            assert!(names.iter().any(|n| n == name), "{name} not read: {names:?}");
        }
        assert_eq!((server.res.upgrade_from, server.res.from_env), (Some(4242), true));
    }

    /// Called from inside a tokio runtime, even a single-threaded one, a server is refused before
    /// forking (its async workers could not start a runtime of their own).
    #[cfg(feature = "async")]
    #[test]
    fn inside_a_tokio_runtime_is_refused_before_forking() {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let e = rt.block_on(async { single_threaded() }).unwrap_err();
        assert!(matches!(e, Error::InsideRuntime), "{e}");
    }
}
