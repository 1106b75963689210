//! # herd
//!
//! A prefork server: one arbiter process forks and supervises worker processes that share
//! listening sockets (gunicorn's and Unicorn's design), driven by the sans-IO cores of
//! [`herd_protocol`] (re-exported as [`protocol`]).
//!
//! ```no_run
//! use std::io::Write;
//! let server = herd::Server::builder()
//!     .bind("127.0.0.1:8000".parse()?)
//!     .workers(4)
//!     .build()?;
//! let code = server.run(|ctx, mut conn| {
//!     let body = format!("hello from worker {}\n", ctx.worker_id());
//!     let _ = write!(conn, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
//! })?;
//! std::process::exit(code);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! | module | what |
//! |---|---|
//! | [`app`] | what an application gives herd: the [`App`] trait and the request [`Context`] |
//! | [`server`] | [`Server`] and its builder |
//! | [`store`] | registry sequence stores (shared memory; PostgreSQL with the `postgres` feature) |
//! | [`cron`] | scheduled jobs and their stores |
//! | [`control`] | the control socket behind `herd ctl` |
//! | `demo` | the demo HTTP application of `herd serve` (feature `cli`) |
//! | [`http`] | limits on slow and oversized HTTP clients, for both built-in HTTP layers |
//! | [`access`] | the access log: gunicorn's format, one line per request |
//!
//! Inside, not public: `resources` (what a built server holds, borrowed by the runtime),
//! `runtime` (the arbiter and worker processes) and `os` (signals, listeners, pidfile, shared
//! memory). Imports go one way: `os` ← `store`, `cron` ← `resources`, `app` ← `runtime` ←
//! `server`.
//!
//! `Server::run` must be called from a single-threaded process: workers are forked from it.
#![deny(missing_docs)]

pub mod access;
pub mod app;
pub mod control;
pub mod cron;
#[cfg(feature = "cli")]
pub mod demo;
mod error;
pub mod exec;
pub mod http;
mod metrics;
mod os;
mod resources;
mod runtime;
pub mod server;
pub mod store;

#[cfg(feature = "async")]
pub use app::RegistryLoader;
pub use app::{App, Context, FnApp};
pub use error::Error;
pub use exec::{Program, Readiness, WorkerProtocol};
pub use herd_protocol as protocol;
pub use http::HttpLimits;
pub use os::listen::{Bind, BindError, BindParseError, Connection, ListenOptions, Listener, SocketOrigin};
pub use os::pidfile::PidfileError;
pub use resources::{Limits, OnReady, UPGRADE_FROM_ENV};
pub use server::{Server, ServerBuilder};
/// The types an async handler names, so that it needs no direct dependency on hyper or bytes.
#[cfg(feature = "async")]
pub use {
    bytes::Bytes,
    http_body_util::Full,
    hyper::{Request, Response, StatusCode, body::Incoming},
    runtime::async_worker::HttpContext,
};

/// The README's code, compiled as a doctest so that the quick start cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
