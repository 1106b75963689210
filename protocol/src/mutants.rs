//! Bugs from docs/bugs.md, re-introduced on purpose, one at a time, to prove the suite catches them.
//!
//! Only with the `mutants` cargo feature (off by default). A mutant is switched on per core
//! instance ([`crate::arbiter::Arbiter::set_mutant`], [`crate::cron::CronWorker::set_mutant`]), never globally; without the feature every
//! check is the constant `false` and compiles away.

/// A re-introduced bug, named by its docs/bugs.md id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mutant {
    /// Liveness judged on the worker's own timestamp instead of the arbiter's receive time.
    B05,
    /// No jitter: every worker gets the same budget.
    B06,
    /// A second USR2 forks a second child arbiter.
    B07,
    /// The arbiter unlinks unix sockets even while a child arbiter uses them.
    B08,
    /// A death by signal 3 or 4 is read as exit code 3 or 4 and halts the server.
    B09,
    /// TTOU lowers the target but stops no worker.
    B10,
    /// A dispatch to a worker that died before answering is forgotten: its connection waits forever.
    B15,
    /// A worker that answered EMPTY is forgotten: it is not idle again.
    B16,
    /// Every idle worker is woken for one connection.
    B17,
    /// Graceful stop waits forever for a hung worker.
    B19,
    /// A retiring worker's silence is acted on but not reported by `poll_timeout`: the driver
    /// sleeps past it and the hung request outlives its timeout.
    B21,
    /// The newest idle worker is served first: under light load one worker takes every
    /// connection while the others starve.
    B23,
    /// A retiring worker is killed at half its graceful timeout: an early kill.
    B25,
    /// No timeout (`--timeout 0`) read as the heartbeat pace: a worker silent in a long request
    /// is killed though the operator turned the timeout off.
    B26,
    /// A jitter without its base (`--max-requests-jitter` without `--max-requests`) recycles
    /// workers after up to that many requests, where gunicorn never recycles.
    B27,
    /// The cron core's fence is never armed: a holder orphaned by its arbiter's death runs its
    /// job past its lease, while another host may already run the same job.
    B28,
}

impl Mutant {
    /// Every mutant (of the arbiter core, and B28 of the cron core).
    pub const ALL: [Mutant; 16] = [
        Mutant::B05,
        Mutant::B06,
        Mutant::B07,
        Mutant::B08,
        Mutant::B09,
        Mutant::B10,
        Mutant::B15,
        Mutant::B16,
        Mutant::B17,
        Mutant::B19,
        Mutant::B21,
        Mutant::B23,
        Mutant::B25,
        Mutant::B26,
        Mutant::B27,
        Mutant::B28,
    ];
}
