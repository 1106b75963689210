//! Recorded traces of real runs (feature `serde`): what a runtime fed a core and what it carried
//! out, one entry per line, so that a checker can replay the same inputs through a fresh core and
//! the invariant monitor and name the first place where the runtime and the core part ways
//! (docs/verification.md, trace validation).
//!
//! The runtime records an input when it reads it ([`Entry::Queued`]) and again when it feeds it
//! ([`Entry::Fed`]), every `handle_timeout` ([`Entry::Timeout`]), every action as it carries it
//! out ([`Entry::Done`]) and every time it blocks, with the latest instant it will wake at
//! ([`Entry::Wait`]). So a replay sees, besides what the core decided, the order the runtime
//! kept: inputs fed in the order read, none left waiting when a timeout pass runs, every action
//! asked for carried out before the next input.
//!
//! Worker and cron worker traces have the same entries. Their cores are made and started in one
//! step ([`Entry::New`] is `new(config, at)` then `start(at)`), and an input that answers an
//! action (an accept's result, a finished request, a claim's answer) or that the driver notices
//! at a loop point (a signal, a changed parent) is fed at once, with no `Queued` entry before it.

use crate::arbiter::{Action, Config, Input};
use crate::cron::{CronAction, CronConfig, CronInput};
use crate::time::Instant;
use crate::worker::{self, WorkerConfig};

/// One entry of a core's trace; `C`, `I` and `A` are the core's configuration, input and action.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Entry<C, I, A> {
    /// The core was made at `at` with `config` (a worker's or cron worker's also started then).
    New {
        /// Its configuration.
        config: C,
        /// The instant it was made at.
        at: Instant,
    },
    /// The runtime read an input and queued it.
    Queued(I),
    /// The runtime fed an input to the core at `at`.
    Fed {
        /// The instant passed with it.
        at: Instant,
        /// The input.
        input: I,
    },
    /// The runtime called `handle_timeout(at)`.
    Timeout {
        /// The instant passed.
        at: Instant,
    },
    /// The runtime carried out an action.
    Done(A),
    /// The runtime is about to block at `at`, until `until` at the latest (`None`: until
    /// something happens). A driver must never sleep past the core's `poll_timeout` (a deadline
    /// already past: it must not sleep at all).
    Wait {
        /// When it blocks.
        at: Instant,
        /// The latest instant it will wake at.
        until: Option<Instant>,
    },
}

/// An entry of an arbiter's trace.
pub type ArbiterEntry = Entry<Config, Input, Action>;

/// The file name of an arbiter's trace in a trace directory.
pub fn arbiter_file(pid: u32) -> String {
    format!("arbiter-{pid}.jsonl")
}

/// An entry of a worker's trace.
pub type WorkerEntry = Entry<WorkerConfig, worker::Input, worker::Action>;

/// An entry of a cron worker's trace.
pub type CronEntry = Entry<CronConfig, CronInput, CronAction>;

/// The file name of a worker's trace in a trace directory.
pub fn worker_file(pid: u32) -> String {
    format!("worker-{pid}.jsonl")
}

/// The file name of a cron worker's trace in a trace directory.
pub fn cron_file(pid: u32) -> String {
    format!("cron-{pid}.jsonl")
}

#[cfg(test)]
mod tests {
    /// The names are the contract between the runtime that writes traces and the checker that
    /// reads a directory of them: one file per process, its kind and pid in the name.
    #[test]
    fn each_process_has_its_own_file_named_by_kind_and_pid() {
        assert_eq!(super::arbiter_file(7), "arbiter-7.jsonl");
        assert_eq!(super::worker_file(7), "worker-7.jsonl");
        assert_eq!(super::cron_file(7), "cron-7.jsonl");
    }
}
