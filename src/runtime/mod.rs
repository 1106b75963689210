//! The runtime: the processes that run herd's sans-IO cores over real descriptors, signals and
//! clocks. [`arbiter`] supervises; a forked worker runs [`worker`] (sync), [`async_worker`]
//! (tokio + hyper), [`cron`] (scheduled jobs) or becomes a program ([`exec`]). Each borrows the server's `Resources`.

mod arbiter;
#[cfg(feature = "async")]
pub mod async_worker;
mod cron;
mod exec;
mod kind;
mod trace;
mod worker;

pub(crate) use arbiter::run;
pub(crate) use exec::ExecWorker;
pub(crate) use kind::SyncWorker;
