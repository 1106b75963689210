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
//! | [`async_worker`] | async workers: tokio + hyper, HTTP/1.1 keep-alive (feature `async`) |
//! | [`server`] | [`Server`], its builder, the [`App`] trait and the request [`Context`] |
//! | [`listen`] | `--bind` addresses, listeners, accepted connections |
//! | [`store`] | registry sequence stores (shared memory; PostgreSQL in `pgstore` with the `postgres` feature) |
//! | [`cron`] | cron workers: the job stores (shared memory, PostgreSQL) and the cron worker process |
//! | [`control`] | the control socket behind `herd ctl` |
//! | [`scoreboard`] | per-worker request counters in shared memory |
//! | [`notify`] | systemd readiness notifications |
//! | [`shm`] | shared memory regions |
//! | [`pidfile`] | the pidfile |
//! | [`procfs`] | a server seen from outside through `/proc` (for `herd-chaos` and the tests) |
//! | [`demo`] | the demo HTTP application of `herd serve` |
//! | [`sys`] | signal handlers, the self-pipe, signal masks, the clock |
//!
//! `Server::run` must be called from a single-threaded process: workers are forked from it.
#![deny(missing_docs)]

mod arbiter;
#[cfg(feature = "async")]
pub mod async_worker;
pub mod control;
pub mod cron;
pub mod demo;
pub mod listen;
pub mod notify;
#[cfg(feature = "postgres")]
pub mod pgstore;
pub mod pidfile;
pub mod procfs;
pub mod scoreboard;
pub mod server;
pub mod shm;
pub mod store;
pub mod sys;
mod worker;

pub use herd_protocol as protocol;
pub use listen::{Bind, Connection, Listener};
pub use server::{App, Context, Error, Limits, Server, ServerBuilder};
