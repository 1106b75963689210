//! The kinds of worker process behind one trait: what a forked worker runs.

use crate::app::App;
use crate::resources::Resources;
use crate::runtime::{cron, worker};
use herd_protocol::arbiter::KillSignal;
use nix::sys::signal::Signal;
use worker::WorkerSetup;

/// What a forked worker runs: never returns into the arbiter's code.
pub(crate) trait WorkerMain {
    fn worker_main(&mut self, setup: WorkerSetup, res: &Resources) -> !;
    /// A cron worker (`Role::Cron`): runs scheduled jobs.
    fn cron_main(&mut self, setup: WorkerSetup, res: &Resources) -> !;
    /// The signal the arbiter sends for the core's `Kill` (an executed program may want another
    /// than TERM for a graceful stop).
    fn signal(&self, signal: KillSignal) -> Signal {
        default_signal(signal)
    }
    /// The program an HTTP worker runs, for `herd ctl status`, if not herd's own code.
    fn command(&self) -> Option<String> {
        None
    }
    /// How the arbiter learns that a new HTTP worker has booted.
    fn readiness(&self) -> Booted {
        Booted::FirstFrame
    }
}

/// How the arbiter learns that a worker has booted (the core counts it booted at its first
/// message; a worker that dies before is a boot failure, respawned with backoff).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Booted {
    /// Its first frame (every worker that speaks the protocol).
    FirstFrame,
    /// `READY=1` on a socket the arbiter binds for it (`--worker-ready notify`).
    Notify,
    /// Still alive this long after it was forked (a program that tells nothing).
    After(std::time::Duration),
}

/// The signal of each kill, for herd's own workers.
pub(crate) fn default_signal(signal: KillSignal) -> Signal {
    match signal {
        KillSignal::Term => Signal::SIGTERM,
        KillSignal::Quit => Signal::SIGQUIT,
        KillSignal::Abrt => Signal::SIGABRT,
        KillSignal::Kill => Signal::SIGKILL,
    }
}

/// A sync worker serving an [`App`].
pub(crate) struct SyncWorker<A>(pub A);

impl<A: App> WorkerMain for SyncWorker<A> {
    fn worker_main(&mut self, setup: WorkerSetup, res: &Resources) -> ! {
        worker::run(setup, res, &mut self.0)
    }
    fn cron_main(&mut self, setup: WorkerSetup, res: &Resources) -> ! {
        cron::run(setup, res, &mut |job| self.0.run_job(job))
    }
}
