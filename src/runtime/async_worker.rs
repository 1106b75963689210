//! Async workers (`--worker-class async`): the [`herd_protocol::worker::Worker`] core with
//! [`WorkerKind::Async`], driven by a tokio current-thread runtime created after fork, serving
//! HTTP/1.1 with keep-alive through hyper.
//!
//! One task runs the core: it reads the arbiter's socket and the self-pipe, waits on the
//! listeners (shared mode), heartbeats on the core's timer, and spawns one task per accepted
//! connection. Connection tasks report each finished request and their own end back to it;
//! `Drain` turns every connection to a graceful shutdown (the request under way finishes, then the
//! connection closes). The registry sequence is checked before every request.

use crate::app::RegistryLoader;
use crate::os::listen::Connection;
use crate::resources::Resources;
use crate::runtime::kind::WorkerMain;
use crate::runtime::trace::{Recorder, Traced};
use crate::runtime::worker::{self, WorkerSetup, over_memory, set_busy};
use crate::store::StoreError;
use bytes::Bytes;
use herd_protocol::arbiter::WorkerId;
use herd_protocol::message::{ArbiterMsg, Decoder, Message};
use herd_protocol::registry::{Bump, Registry, SequenceStore, Sequences};
use herd_protocol::signals::Sig;
use herd_protocol::trace;
use herd_protocol::worker::{Action, Input, Worker, WorkerConfig, WorkerKind, WorkerSignal};
use http_body_util::{Either, Full};
use hyper::body::{Body, Incoming};
use hyper::{Request, Response};
use std::cell::RefCell;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::rc::Rc;
use std::sync::Arc;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch};

/// What a request handler of an async worker can see and do: which worker serves it, the
/// client's address, the registry it runs on and the sequences that registry is as new as, and
/// registry bumps. `Send + Sync`: it travels in a request's extensions (an axum handler takes it
/// as `Extension<HttpContext<R>>` under [`crate::Server::run_service`]) and into spawned tasks.
pub struct HttpContext<R = ()> {
    worker: WorkerId,
    peer: Option<std::net::SocketAddr>,
    seen: Sequences,
    registry: Arc<R>,
    bumps: mpsc::UnboundedSender<BumpAsk>,
}

// A context travels in request extensions and into spawned tasks: it must stay `Send + Sync`.
const _: fn() = || {
    fn send_sync<T: Send + Sync + Clone + 'static>() {}
    send_sync::<HttpContext>();
};

/// A bump asked of the worker's main task (which owns the store), and where to answer.
type BumpAsk = (Bump, oneshot::Sender<Result<Sequences, StoreError>>);

impl<R> Clone for HttpContext<R> {
    fn clone(&self) -> Self {
        HttpContext {
            worker: self.worker,
            peer: self.peer,
            seen: self.seen,
            registry: Arc::clone(&self.registry),
            bumps: self.bumps.clone(),
        }
    }
}

impl<R> std::fmt::Debug for HttpContext<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpContext")
            .field("worker", &self.worker)
            .field("peer", &self.peer)
            .field("sequences", &self.seen)
            .finish_non_exhaustive()
    }
}

impl<R> HttpContext<R> {
    /// The arbiter's id for this worker.
    pub fn worker_id(&self) -> u64 {
        self.worker.0
    }

    /// The client's address (TCP connections; `None` on a unix socket).
    pub fn peer_addr(&self) -> Option<std::net::SocketAddr> {
        self.peer
    }

    /// The sequences this request's registry is as new as (checked before the request began).
    pub fn sequences(&self) -> Sequences {
        self.seen
    }

    /// The registry object this request runs on (see [`crate::RegistryLoader`]).
    pub fn registry(&self) -> &R {
        &self.registry
    }

    /// Signals a registry change to every process: bumps the shared registry sequence (call it
    /// after the change is committed). Every request that starts after this returns, on any
    /// worker, this one included, runs on a registry loaded at least that new.
    pub async fn bump_registry(&self) -> Result<Sequences, StoreError> {
        self.bump(Bump::Registry).await
    }

    /// Signals that caches were invalidated: every worker clears its registry's caches
    /// ([`crate::RegistryLoader::clear_caches`]) before its next request.
    pub async fn invalidate_caches(&self) -> Result<Sequences, StoreError> {
        self.bump(Bump::Cache).await
    }

    async fn bump(&self, what: Bump) -> Result<Sequences, StoreError> {
        let gone = || StoreError::Unavailable("the worker is stopping".into());
        let (tx, rx) = oneshot::channel();
        self.bumps.send((what, tx)).map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }
}

/// What a worker's connection tasks share: its registry (with its coherence state), the loader,
/// and the way to the main task.
struct Shared<L: RegistryLoader> {
    worker: WorkerId,
    loader: L,
    registry: RefCell<Registry<Arc<L::Registry>>>,
    bumps: mpsc::UnboundedSender<BumpAsk>,
    res: ServerRef,
}

impl<L: RegistryLoader> Shared<L> {
    /// The check before every request: reads the store, reloads the registry or clears its
    /// caches when it moved, and gives the request its context; `Err` if the store could not be
    /// read (the request must not run on a registry that may be stale).
    fn before_request(
        &self,
        peer: Option<std::net::SocketAddr>,
    ) -> Result<HttpContext<L::Registry>, StoreError> {
        let shared = self.res.get().store.get()?;
        let mut r = self.registry.borrow_mut();
        let registry = Arc::clone(r.before_request(
            shared,
            || Arc::new(self.loader.load(shared)),
            |reg| self.loader.clear_caches(reg),
        ));
        Ok(HttpContext {
            worker: self.worker,
            peer,
            seen: r.coherence().seen(),
            registry,
            bumps: self.bumps.clone(),
        })
    }
}

/// The parts of the server a worker uses (the `Resources` live in the forked process's memory for
/// the worker's whole life).
struct ServerRef(*const Resources);

impl ServerRef {
    fn get(&self) -> &Resources {
        // SAFETY: the Resources outlive the worker: the worker process exits with `_exit` from a
        // frame below the one that owns it.
        unsafe { &*self.0 }
    }
}

/// An async worker running `handler` on up to `connections` connections at once, with the
/// registry `loader` loads.
pub(crate) struct AsyncWorker<L, F> {
    pub loader: L,
    pub handler: F,
    pub connections: u32,
}

impl<L, F, Fut, B> WorkerMain for AsyncWorker<L, F>
where
    L: RegistryLoader + Clone,
    F: Fn(Request<Incoming>, HttpContext<L::Registry>) -> Fut + Clone + 'static,
    Fut: Future<Output = Response<B>> + 'static,
    B: Body<Data = Bytes> + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    /// `run_async` refuses cron workers; were one spawned, each of its jobs fails.
    fn cron_main(&mut self, setup: WorkerSetup, res: &Resources) -> ! {
        crate::runtime::cron::run(setup, res, &mut |job| {
            Err(format!("async server: no runner for {:?}", job.name))
        })
    }

    fn worker_main(&mut self, setup: WorkerSetup, res: &Resources) -> ! {
        let inherited = setup.inherited.clone();
        let handler = self.handler.clone();
        let loader = self.loader.clone();
        let connections = self.connections;
        worker::run_process(&inherited, |loaded| {
            let wake = worker::prepare(setup.id, setup.blocked, res)?;
            loaded.set(true);
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let local = tokio::task::LocalSet::new();
            let setup = Setup {
                id: setup.id,
                max_requests: setup.max_requests,
                arbiter: setup.arbiter,
                chan: setup.chan,
                slot: setup.slot,
            };
            local.block_on(&rt, main_loop(setup, res, wake, loader, handler, connections))
        })
    }
}

struct Setup {
    id: WorkerId,
    max_requests: u32,
    arbiter: nix::unistd::Pid,
    chan: std::os::unix::net::UnixStream,
    slot: Option<usize>,
}

/// A raw descriptor to wait on (the self-pipe, a listener): owned elsewhere.
struct Fd(RawFd);
impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

enum Ev {
    RequestDone,
    Closed,
}

async fn main_loop<L, F, Fut, B>(
    setup: Setup,
    res: &Resources,
    wake: crate::os::sys::WakePipe,
    loader: L,
    handler: F,
    limit: u32,
) -> io::Result<i32>
where
    L: RegistryLoader,
    F: Fn(Request<Incoming>, HttpContext<L::Registry>) -> Fut + Clone + 'static,
    Fut: Future<Output = Response<B>> + 'static,
    B: Body<Data = Bytes> + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let clock = crate::os::sys::Clock::new();
    setup.chan.set_nonblocking(true)?;
    let mut chan = tokio::net::UnixStream::from_std(setup.chan)?;
    let wake_fd = register(wake.fd().as_raw_fd())?;
    let listener_fds: Vec<AsyncFd<Fd>> =
        res.listeners.iter().map(|l| register(l.as_fd().as_raw_fd())).collect::<Result<_, _>>()?;
    // The registry as of the sequences read before it was loaded (an unreadable store: the
    // first request's check reloads it).
    let as_of = res.store.get().unwrap_or_default();
    let registry = Registry::new(Arc::new(loader.load(as_of)), as_of);
    let (bump_tx, mut bump_rx) = mpsc::unbounded_channel::<BumpAsk>();
    let shared = Rc::new(Shared {
        worker: setup.id,
        loader,
        registry: RefCell::new(registry),
        bumps: bump_tx,
        res: ServerRef(res),
    });
    let recorder = Recorder::for_worker(res.trace_dir.as_deref(), &trace::worker_file(std::process::id()));
    let mut core: Traced<Worker> = Traced::start(
        WorkerConfig {
            accept_mode: res.config.accept_mode,
            timeout: res.config.pace(),
            max_requests: setup.max_requests,
            kind: WorkerKind::Async { connections: limit },
        },
        clock.now(),
        recorder,
    );
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<Ev>();
    let (drain_tx, drain_rx) = watch::channel(false);
    let mut decoder = Decoder::<ArbiterMsg>::new();
    let mut out: Vec<u8> = Vec::new();
    let mut accepts = worker::Accepts::default();
    let mut inputs: Vec<Input> = Vec::new();
    // Carries out the core's actions until it has none (the drain rule: after every call that
    // feeds it), feeding back accept results at once; an exit leaves the loop with its code.
    macro_rules! drive {
        () => {
            while let Some(action) = core.next_action() {
                match action {
                    Action::Send(m) => out.extend_from_slice(m.encode().as_bytes()),
                    Action::Accept(which) => {
                        let (input, conn) = worker::accept(&res.listeners, which, &mut accepts);
                        if let Some(conn) = conn {
                            set_busy(res, setup.slot, true);
                            spawn_connection(
                                conn,
                                handler.clone(),
                                Rc::clone(&shared),
                                ev_tx.clone(),
                                drain_rx.clone(),
                            );
                        }
                        core.feed(clock.now(), input);
                    }
                    // The connection task was spawned when it was accepted.
                    Action::Serve(_) => {}
                    Action::Drain => {
                        let _ = drain_tx.send(true);
                    }
                    Action::Exit(code) => {
                        core.flush();
                        let _ = chan.write_all(&out).await;
                        return Ok(code);
                    }
                }
            }
        };
    }
    // The wait reported the self-pipe readable.
    let mut woken = false;
    loop {
        drive!();
        core.flush();
        if !out.is_empty() {
            if let Err(e) = chan.write_all(&out).await {
                tracing::debug!(worker = %setup.id, error = %e, "cannot write to the arbiter");
            }
            out.clear();
        }
        let (now, wait) = clock.wait_for(core.poll_timeout(), None);
        core.wait(now, wait.map(|(_, until)| until));
        core.flush();
        let timeout = wait.map(|(ms, _)| ms);
        let waits = core.waits_on_listeners();
        let mut buf = [0u8; 256];
        tokio::select! {
            r = chan.read(&mut buf) => match r {
                Ok(0) | Err(_) => inputs.push(Input::ParentChanged),
                Ok(n) => {
                    let mut decoded = Vec::new();
                    decoder.decode_all(&buf[..n], &mut decoded);
                    inputs.extend(decoded.into_iter().map(|r| r.map_or(Input::Malformed, Input::Message)));
                }
            },
            g = wake_fd.readable() => {
                if let Ok(mut g) = g {
                    g.clear_ready();
                }
                woken = true;
            }
            // A handler's bump: the store is this task's, the answer goes back at once.
            Some((what, answer)) = bump_rx.recv() => {
                let _ = answer.send(res.store.bump(what));
                continue;
            }
            Some(ev) = ev_rx.recv() => {
                // Every event already sent, in one pass of the loop (under load, requests end
                // faster than the loop turns).
                let mut next = Some(ev);
                while let Some(ev) = next {
                    inputs.push(match ev {
                        Ev::RequestDone => {
                            if let Some(s) = setup.slot {
                                res.scoreboard.count(s);
                            }
                            Input::RequestDone
                        }
                        Ev::Closed => Input::ConnectionClosed,
                    });
                    next = ev_rx.try_recv().ok();
                }
            }
            _ = readable_any(&listener_fds), if waits => inputs.push(Input::ListenersReadable),
            _ = tokio::time::sleep(std::time::Duration::from_millis(timeout.unwrap_or(60_000))), if timeout.is_some() => {}
        }
        for &input in &inputs {
            core.read(input);
        }
        // A loop point: signals and the parent check first. The self-pipe is read only when the
        // wait said it was readable: a read at every turn (a request's end is a turn) could only
        // fail, and a byte written after the wait makes the next one return (WakePipe::take).
        let batch = if std::mem::take(&mut woken) { wake.drain() } else { wake.take() };
        if batch.count(Sig::Term) > 0 {
            core.feed(clock.now(), Input::Signal(WorkerSignal::Term));
            drive!();
        }
        if nix::unistd::getppid() != setup.arbiter {
            core.feed(clock.now(), Input::ParentChanged);
            drive!();
        }
        for input in inputs.drain(..) {
            if input == Input::ConnectionClosed && core.open_connections() == 1 {
                set_busy(res, setup.slot, false);
            }
            if input == Input::RequestDone && over_memory(res) {
                core.feed(clock.now(), Input::OverMemory);
                drive!();
            }
            core.feed(clock.now(), input);
            drive!();
        }
        core.tick(clock.now());
    }
}

/// Watches a descriptor for readability (interest: read only).
fn register(fd: RawFd) -> io::Result<AsyncFd<Fd>> {
    // SAFETY: the self-pipe and the listeners stay open, as the same descriptions, for the whole
    // life of the worker process, which outlives these registrations.
    unsafe { AsyncFd::register_with_interest(Fd(fd), tokio::io::Interest::READABLE) }
        .map_err(|e| io::Error::other(e.to_string()))
}

async fn readable_any(fds: &[AsyncFd<Fd>]) {
    let futs: Vec<std::pin::Pin<Box<dyn Future<Output = ()> + '_>>> = fds
        .iter()
        .map(|f| {
            Box::pin(async move {
                if let Ok(mut g) = f.readable().await {
                    g.clear_ready();
                }
            }) as std::pin::Pin<Box<dyn Future<Output = ()> + '_>>
        })
        .collect();
    futures_select_all(futs).await;
}

/// Waits for the first of several futures (a tiny `select_all`).
async fn futures_select_all(mut futs: Vec<std::pin::Pin<Box<dyn Future<Output = ()> + '_>>>) {
    std::future::poll_fn(move |cx| {
        for f in futs.iter_mut() {
            if f.as_mut().poll(cx).is_ready() {
                return std::task::Poll::Ready(());
            }
        }
        std::task::Poll::Pending
    })
    .await
}

fn spawn_connection<L, F, Fut, B>(
    conn: Connection,
    handler: F,
    shared: Rc<Shared<L>>,
    events: mpsc::UnboundedSender<Ev>,
    mut drain: watch::Receiver<bool>,
) where
    L: RegistryLoader,
    F: Fn(Request<Incoming>, HttpContext<L::Registry>) -> Fut + Clone + 'static,
    Fut: Future<Output = Response<B>> + 'static,
    B: Body<Data = Bytes> + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let limits = shared.res.get().http;
    let peer = match &conn {
        Connection::Tcp(s) => s.peer_addr().ok(),
        Connection::Unix(_) => None,
    };
    tokio::task::spawn_local(async move {
        // However the task ends (a panic in a response body included), the loop hears of it.
        let _closed = ClosedOnDrop(events.clone());
        let done = events.clone();
        let state = Rc::new(ConnState::default());
        let service_state = Rc::clone(&state);
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let (handler, shared, done) = (handler.clone(), Rc::clone(&shared), done.clone());
            let in_flight = InFlight::begin(&service_state);
            async move {
                let _in_flight = in_flight;
                // What the access log needs of the request, taken before the handler has it.
                let access = shared.res.get().access.as_ref().map(|_| AccessRequest::of(&req));
                let resp = match over_limits(&req, &limits) {
                    Err(e) => herd_answer(
                        hyper::StatusCode::from_u16(e.status()).unwrap_or(hyper::StatusCode::BAD_REQUEST),
                        format!("{e}\n"),
                        true,
                    ),
                    // The registry check before every request; no request on a registry that may
                    // be stale.
                    Ok(()) => match shared.before_request(peer) {
                        Ok(ctx) => {
                            let worker = shared.worker;
                            match CatchUnwind(Box::pin(handler(req, ctx))).await {
                                Ok(resp) => resp.map(Either::Left),
                                // The worker serves on: its slot and its other connections are
                                // untouched, the client gets an answer.
                                Err(()) => {
                                    tracing::error!(worker = %worker, "the request handler panicked: 500");
                                    herd_answer(
                                        hyper::StatusCode::INTERNAL_SERVER_ERROR,
                                        "internal server error\n".into(),
                                        true,
                                    )
                                }
                            }
                        }
                        Err(e) => {
                            herd_answer(hyper::StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n"), false)
                        }
                    },
                };
                if let (Some(w), Some(a)) = (shared.res.get().access.as_ref(), access) {
                    a.log(w, peer, resp.status().as_u16(), resp.body().size_hint().exact().unwrap_or(0));
                }
                let _ = done.send(Ev::RequestDone);
                Ok::<_, Infallible>(resp)
            }
        });
        let io = match conn {
            Connection::Tcp(s) => {
                s.set_nonblocking(true).and_then(|()| tokio::net::TcpStream::from_std(s)).map(Io::Tcp)
            }
            Connection::Unix(s) => {
                s.set_nonblocking(true).and_then(|()| tokio::net::UnixStream::from_std(s)).map(Io::Unix)
            }
        };
        if let Ok(io) = io {
            // hyper's header read timeout runs from the moment it waits for a head: the first
            // one, and each next one on a kept-alive connection.
            let mut http = hyper::server::conn::http1::Builder::new();
            http.keep_alive(true)
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .max_buf_size(limits.max_head().clamp(8192, MAX_BUF));
            // hyper's own limit is 100 fields (gunicorn's default too): set only another, as
            // a limit set fills a buffer of that many slots at every request head (3% of a
            // request's CPU) where hyper's own keeps them uninitialised on the stack.
            if limits.fields_limit() != HYPER_MAX_HEADERS {
                http.max_headers(limits.fields_limit());
            }
            let served = http.serve_connection(hyper_util::rt::TokioIo::new(io), service);
            tokio::pin!(served);
            // Shut down (gracefully: a request under way finishes) when asked to drain once the
            // first request has begun (a connection taken from the listener is owed an answer:
            // closing it before its request is read would lose it), or when it has been idle
            // between requests for the keep-alive time.
            let mut draining = *drain.borrow();
            let mut shut = false;
            // The keep-alive timer, armed when the first request begins and moved only when it
            // fires (not at every request: a timer taken out and put back per request was a
            // few percent of a request's cost): it fires at the earliest the connection can
            // have been idle for the keep-alive time, and then closes it, or moves to when it
            // will have been, or, with a request under way, is disarmed until that request ends
            // (ConnState::wake_when_idle), not re-armed a keep-alive time on: that would wake
            // the task once per keep-alive time for as long as a request runs.
            let idle_timer = tokio::time::sleep(limits.keep_alive);
            tokio::pin!(idle_timer);
            let mut armed = false;
            // Disarmed until the request the timer found under way ends.
            let mut awaiting_idle = false;
            loop {
                if !armed && !awaiting_idle && state.began.get() {
                    armed = true;
                    // From the end of the last request if none is under way, else from now.
                    let idle = state.idle_since.get().filter(|_| state.in_flight.get() == 0);
                    idle_timer
                        .as_mut()
                        .reset(idle.unwrap_or_else(tokio::time::Instant::now) + limits.keep_alive);
                }
                if !shut && draining && state.began.get() {
                    shut = true;
                    served.as_mut().graceful_shutdown();
                }
                tokio::select! {
                    _ = served.as_mut() => break,
                    r = drain.changed(), if !draining => {
                        draining = r.is_err() || *drain.borrow();
                    }
                    // The first request's beginning, or the end of the one the timer found under
                    // way (ConnState::activity): the timer is armed again at the loop's top.
                    _ = state.activity.notified(), if !shut && !armed => awaiting_idle = false,
                    () = idle_timer.as_mut(), if armed && !shut => {
                        let now = tokio::time::Instant::now();
                        match (state.in_flight.get(), state.idle_since.get()) {
                            (0, Some(t)) if t + limits.keep_alive <= now => {
                                shut = true;
                                served.as_mut().graceful_shutdown();
                            }
                            (0, Some(t)) => idle_timer.as_mut().reset(t + limits.keep_alive),
                            _ => {
                                armed = false;
                                awaiting_idle = true;
                                state.wake_when_idle.set(true);
                            }
                        }
                    }
                }
            }
        }
    });
}

/// Serves one request with a tower service: the request's context as an extension, the
/// service's readiness awaited, an error answered 500.
#[cfg(feature = "tower")]
pub(crate) async fn call_service<R, S, B>(
    mut service: S,
    mut req: Request<Incoming>,
    ctx: HttpContext<R>,
) -> Response<Either<B, Full<Bytes>>>
where
    R: Send + Sync + 'static,
    S: tower_service::Service<Request<Incoming>, Response = Response<B>>,
    S::Error: std::fmt::Display,
{
    let worker = ctx.worker;
    req.extensions_mut().insert(ctx);
    let served = match std::future::poll_fn(|cx| service.poll_ready(cx)).await {
        Ok(()) => service.call(req).await,
        Err(e) => Err(e),
    };
    match served {
        Ok(resp) => resp.map(Either::Left),
        Err(e) => {
            tracing::error!(worker = %worker, error = %e, "the service failed: 500");
            herd_answer(hyper::StatusCode::INTERNAL_SERVER_ERROR, "internal server error\n".into(), true)
        }
    }
}

/// A request as the access log sees it, taken before the handler consumes it.
struct AccessRequest {
    method: String,
    target: String,
    version: &'static str,
    headers: Vec<(String, String)>,
    started: std::time::SystemTime,
    clock: std::time::Instant,
}

impl AccessRequest {
    fn of<T>(req: &Request<T>) -> Self {
        let version = match req.version() {
            hyper::Version::HTTP_10 => "HTTP/1.0",
            hyper::Version::HTTP_2 => "HTTP/2.0",
            _ => "HTTP/1.1",
        };
        AccessRequest {
            method: req.method().as_str().to_owned(),
            target: req
                .uri()
                .path_and_query()
                .map_or_else(|| req.uri().path().to_owned(), |p| p.as_str().to_owned()),
            version,
            headers: req
                .headers()
                .iter()
                .map(|(n, v)| (n.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                .collect(),
            started: std::time::SystemTime::now(),
            clock: std::time::Instant::now(),
        }
    }

    fn log(
        self,
        w: &crate::access::AccessWriter,
        remote: Option<std::net::SocketAddr>,
        status: u16,
        bytes: u64,
    ) {
        let headers: Vec<(&str, &str)> = self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        w.log(&crate::access::Entry {
            remote,
            method: &self.method,
            target: &self.target,
            version: self.version,
            status,
            bytes,
            started: self.started,
            took: self.clock.elapsed(),
            headers: &headers,
        });
    }
}

/// An answer herd gives in the application's place (a request over a limit, the store
/// unreachable, a handler that panicked): plain text; with `close`, the connection ends after it.
fn herd_answer<B>(status: hyper::StatusCode, body: String, close: bool) -> Response<Either<B, Full<Bytes>>> {
    let mut r = Response::new(Either::Right(Full::new(Bytes::from(body))));
    *r.status_mut() = status;
    if close {
        r.headers_mut().insert(hyper::header::CONNECTION, hyper::header::HeaderValue::from_static("close"));
    }
    r
}

/// Sends [`Ev::Closed`] when dropped: a connection's slot is given back even when its task
/// panics.
struct ClosedOnDrop(mpsc::UnboundedSender<Ev>);

impl Drop for ClosedOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(Ev::Closed);
    }
}

/// Polls a future, turning a panic in it into `Err(())` (the request's answer is then a 500).
struct CatchUnwind<F>(std::pin::Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, ()>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let fut = self.0.as_mut();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(std::task::Poll::Ready(v)) => std::task::Poll::Ready(Ok(v)),
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(_) => std::task::Poll::Ready(Err(())),
        }
    }
}

/// Largest read buffer a connection may grow (hyper's `max_buf_size`).
const MAX_BUF: usize = 16 << 20;

/// What a connection's task knows of its requests.
#[derive(Default)]
struct ConnState {
    /// A request has begun (its head was read).
    began: std::cell::Cell<bool>,
    /// Requests under way.
    in_flight: std::cell::Cell<u32>,
    /// When the last request under way ended.
    idle_since: std::cell::Cell<Option<tokio::time::Instant>>,
    /// The first request began, or the connection became idle with `wake_when_idle` set: what
    /// the connection's task waits for to arm its keep-alive timer (and, draining, to close).
    activity: tokio::sync::Notify,
    /// The keep-alive timer fired with a request under way: tell the task when none is.
    wake_when_idle: std::cell::Cell<bool>,
}

/// A request under way, counted until it ends (or its future is dropped).
struct InFlight(Rc<ConnState>);

impl InFlight {
    fn begin(state: &Rc<ConnState>) -> InFlight {
        if !state.began.replace(true) {
            state.activity.notify_one();
        }
        state.in_flight.set(state.in_flight.get() + 1);
        InFlight(Rc::clone(state))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let s = &self.0;
        s.in_flight.set(s.in_flight.get().saturating_sub(1));
        if s.in_flight.get() == 0 {
            s.idle_since.set(Some(tokio::time::Instant::now()));
            if s.wake_when_idle.replace(false) {
                s.activity.notify_one();
            }
        }
    }
}

/// The number of header fields hyper accepts when no `max_headers` is set (its
/// `DEFAULT_MAX_HEADERS`); more is answered 431, as with a limit set.
const HYPER_MAX_HEADERS: usize = 100;

/// The request line and header fields against `--limit-request-*` (the number of fields is
/// also bounded by hyper's `max_headers`, which answers 431 itself).
fn over_limits<T>(req: &Request<T>, limits: &crate::http::HttpLimits) -> Result<(), crate::http::HeadError> {
    let uri = req.uri();
    let target = match uri.path_and_query() {
        Some(pq) if uri.scheme().is_none() => pq.as_str().len(),
        _ => uri.to_string().len(),
    };
    // METHOD SP TARGET SP HTTP/1.1
    limits.check_line(req.method().as_str().len() + 1 + target + 1 + 8)?;
    limits.check_fields(req.headers().iter().map(|(n, v)| (n.as_str().len(), v.len())))
}

/// A TCP or unix connection, for hyper.
enum Io {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

impl tokio::io::AsyncRead for Io {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Tcp(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            Io::Unix(s) => std::pin::Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncWrite for Io {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Tcp(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            Io::Unix(s) => std::pin::Pin::new(s).poll_write(cx, buf),
        }
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Tcp(s) => std::pin::Pin::new(s).poll_flush(cx),
            Io::Unix(s) => std::pin::Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Tcp(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            Io::Unix(s) => std::pin::Pin::new(s).poll_shutdown(cx),
        }
    }
}
