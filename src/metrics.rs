//! `--metrics-bind HOST:PORT`: the arbiter's counters in Prometheus' text format, served over
//! HTTP by the arbiter itself — the same [`Status`] `herd ctl status --json` answers, so the two
//! agree by construction.
//!
//! The arbiter never blocks on a scraper: its sockets are non-blocking, a request head is read
//! as it comes (at most [`MAX_HEAD`] bytes), the answer is written as the socket takes it, at
//! most [`MAX_CONNS`] connections are kept (the oldest closed for a new one) and none for
//! longer than [`MAX_AGE`].

use crate::control::Status;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// Longest request head read.
pub(crate) const MAX_HEAD: usize = 8192;
/// Most connections kept at once; past it the oldest is closed for the newest (silent clients
/// cannot keep a scraper out).
pub(crate) const MAX_CONNS: usize = 16;
/// Longest a connection is kept (a scraper that stops reading or writing).
pub(crate) const MAX_AGE: Duration = Duration::from_secs(10);

/// The Prometheus text for `status`.
pub(crate) fn render(status: &Status) -> String {
    type Labels = Vec<(String, String)>;
    let mut r = Registry::with_prefix("herd");
    let c = &status.counters;
    for (name, help, v) in [
        ("worker_spawns", "Workers spawned", c.spawns),
        ("worker_deaths", "Workers reaped", c.deaths),
        ("worker_timeouts", "Workers killed for silence (--timeout)", c.timeouts),
        ("worker_recycles", "Workers that left after their request budget (--max-requests)", c.recycles),
        ("dispatches", "Connections handed to an idle worker (ACCEPT:<socket>)", c.dispatches),
        ("protocol_errors", "Workers killed for breaking the protocol", c.protocol_errors),
        ("boot_failures", "Workers that died before booting or could not be forked", c.boot_failures),
        ("in_flight_deaths", "Workers that died while accepting or serving", c.in_flight_deaths),
    ] {
        let counter: Counter = Counter::default();
        counter.inc_by(v);
        r.register(name, help, counter);
    }
    let deaths = Family::<Labels, Counter>::default();
    for (reason, n) in &c.deaths_by_reason {
        deaths.get_or_create(&vec![("reason".into(), reason.clone())]).inc_by(*n);
    }
    r.register("worker_exits", "Workers reaped, by why they left", deaths);
    let signals = Family::<Labels, Counter>::default();
    for (sig, n) in &c.signals {
        signals.get_or_create(&vec![("signal".into(), sig.clone())]).inc_by(*n);
    }
    r.register("signals", "Signals the arbiter received, by kind", signals);
    let states = Family::<Labels, Gauge>::default();
    let requests = Family::<Labels, Gauge>::default();
    for w in &status.workers {
        states.get_or_create(&vec![("role".into(), w.role.clone()), ("state".into(), w.state.clone())]).inc();
        let labels = vec![("worker".into(), format!("w{}", w.id)), ("pid".into(), w.pid.to_string())];
        requests.get_or_create(&labels).set(i64::try_from(w.requests).unwrap_or(i64::MAX));
    }
    r.register("workers", "Worker processes, by role and state", states);
    r.register("worker_requests", "Requests each worker took (cron workers: jobs)", requests);
    let queued = Family::<Labels, Gauge>::default();
    for l in &status.listeners {
        if let Some(q) = l.queued {
            queued.get_or_create(&vec![("listener".into(), l.address.clone())]).set(i64::from(q));
        }
    }
    r.register("listener_queue", "Connections waiting in each listener's accept queue", queued);
    let target: Gauge = Gauge::default();
    target.set(i64::from(status.target));
    r.register("target_workers", "Workers the arbiter aims to run", target);
    let generation: Gauge = Gauge::default();
    generation.set(i64::from(status.generation));
    r.register("generation", "The current generation (bumped by each HUP)", generation);
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = encode(&mut out, &r);
    out
}

#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    head: Vec<u8>,
    /// The answer still to write, once the head is complete.
    out: Option<Vec<u8>>,
    since: Instant,
}

/// What a connection needs next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// More of the request head (or nothing: it was closed).
    Read,
    /// The head is complete: answer it with [`MetricsServer::answer`].
    Answer,
    /// Part of the answer is written; the rest when the socket is writable.
    Write,
    /// Done, closed.
    Closed,
}

/// The arbiter's metrics endpoint: a listening socket and the scrapes under way.
#[derive(Debug)]
pub(crate) struct MetricsServer {
    listener: TcpListener,
    conns: BTreeMap<u64, Conn>,
    next: u64,
}

impl MetricsServer {
    /// Listens on `addr`, with `SO_REUSEPORT`: during a USR2 upgrade the new arbiter binds it
    /// while the old one still serves on it (each answers for itself until the old one leaves).
    pub(crate) fn bind(addr: &str) -> io::Result<MetricsServer> {
        let bind = crate::os::listen::Bind::Tcp(addr.to_owned());
        let options = crate::os::listen::ListenOptions { backlog: 64, reuse_port: true };
        let listener = match crate::os::listen::Listener::bind_with(&bind, options) {
            Ok(crate::os::listen::Listener::Tcp(l)) => l,
            Ok(_) => return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a TCP address")),
            Err(e) => return Err(io::Error::other(e.to_string())),
        };
        listener.set_nonblocking(true)?;
        Ok(MetricsServer { listener, conns: BTreeMap::new(), next: 0 })
    }

    /// The listening socket (to poll).
    pub(crate) fn listener(&self) -> &TcpListener {
        &self.listener
    }

    /// Where it listens.
    pub(crate) fn local_addr(&self) -> Option<std::net::SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// A connection's socket.
    pub(crate) fn stream(&self, key: u64) -> Option<&TcpStream> {
        self.conns.get(&key).map(|c| &c.stream)
    }

    /// Every descriptor it holds (a forked worker closes them).
    pub(crate) fn fds(&self) -> Vec<i32> {
        let mut fds = vec![self.listener.as_raw_fd()];
        fds.extend(self.conns.values().map(|c| c.stream.as_raw_fd()));
        fds
    }

    /// Accepts waiting connections (closing those past [`MAX_AGE`] first); their keys and
    /// sockets, to poll.
    pub(crate) fn accept(&mut self, now: Instant) -> Vec<(u64, &TcpStream)> {
        self.conns.retain(|_, c| now.saturating_duration_since(c.since) < MAX_AGE);
        let mut keys = Vec::new();
        while let Ok((stream, _)) = self.listener.accept() {
            if stream.set_nonblocking(true).is_err() {
                continue; // Dropped: closed.
            }
            if self.conns.len() >= MAX_CONNS {
                self.conns.pop_first();
            }
            let key = self.next;
            self.next += 1;
            self.conns.insert(key, Conn { stream, head: Vec::new(), out: None, since: now });
            keys.push(key);
        }
        keys.into_iter().filter_map(|k| self.conns.get(&k).map(|c| (k, &c.stream))).collect()
    }

    /// The connection is readable or writable: reads its head, or writes more of its answer.
    pub(crate) fn ready(&mut self, key: u64) -> Next {
        let Some(c) = self.conns.get_mut(&key) else { return Next::Closed };
        if c.out.is_some() {
            return self.write(key);
        }
        let mut chunk = [0u8; 1024];
        loop {
            match c.stream.read(&mut chunk) {
                Ok(0) => {
                    self.conns.remove(&key);
                    return Next::Closed;
                }
                Ok(n) => c.head.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    self.conns.remove(&key);
                    return Next::Closed;
                }
            }
            if c.head.windows(4).any(|w| w == b"\r\n\r\n") {
                return Next::Answer;
            }
            if c.head.len() > MAX_HEAD {
                self.conns.remove(&key);
                return Next::Closed;
            }
        }
        if c.head.windows(4).any(|w| w == b"\r\n\r\n") { Next::Answer } else { Next::Read }
    }

    /// Answers a complete head: the metrics for `GET /metrics` (or `/`), 404 otherwise.
    pub(crate) fn answer(&mut self, key: u64, status: &Status) -> Next {
        let Some(c) = self.conns.get_mut(&key) else { return Next::Closed };
        let line = c.head.split(|&b| b == b'\n').next().unwrap_or_default();
        let mut parts = line.split(|&b| b == b' ');
        let (method, path) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
        let (code, body, kind) = match (method, path) {
            (b"GET" | b"HEAD", b"/metrics" | b"/") => {
                ("200 OK", render(status), "application/openmetrics-text; version=1.0.0; charset=utf-8")
            }
            _ => ("404 Not Found", "not found: GET /metrics\n".to_owned(), "text/plain"),
        };
        let mut out = format!(
            "HTTP/1.1 {code}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        if method != b"HEAD" {
            out.extend_from_slice(body.as_bytes());
        }
        c.out = Some(out);
        self.write(key)
    }

    fn write(&mut self, key: u64) -> Next {
        let Some(c) = self.conns.get_mut(&key) else { return Next::Closed };
        let Some(out) = &mut c.out else { return Next::Read };
        while !out.is_empty() {
            match c.stream.write(out) {
                Ok(0) => break,
                Ok(n) => {
                    out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Write,
                Err(_) => break,
            }
        }
        self.conns.remove(&key);
        Next::Closed
    }
}
