//! What the arbiter is told ([`Input`]) and what it asks for ([`Action`]).

use super::config::{Role, WorkerId};
use crate::message::{ArbiterMsg, DecodeError, ListenerId, WorkerMsg};
use crate::signals::Sig;

/// How a child process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ExitStatus {
    /// It exited with this code.
    Code(i32),
    /// It was terminated by this signal number.
    Signaled(i32),
}

/// An exact command from the control socket (unlike signals, never coalesced).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Command {
    /// Add this many workers.
    Incr(u32),
    /// Remove this many workers (never below one).
    Decr(u32),
    /// As HUP.
    Reload,
    /// Stop; graceful as TERM, else as QUIT.
    Stop {
        /// TERM-like if true.
        graceful: bool,
    },
    /// As USR2.
    Upgrade,
}

/// Something that happened, for [`Arbiter::handle`](super::Arbiter::handle).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Input {
    /// A signal taken from the signal queue.
    Signal(Sig),
    /// A control command.
    Control(Command),
    /// A frame decoded from a worker's pipe. The sender is the pipe, not a claim in the frame.
    Message {
        /// The worker whose pipe it came from.
        from: WorkerId,
        /// The message.
        msg: WorkerMsg,
    },
    /// A worker's pipe carried a malformed frame.
    Malformed {
        /// The worker whose pipe it came from.
        from: WorkerId,
        /// What was wrong.
        error: DecodeError,
    },
    /// A worker process was reaped.
    Exited {
        /// Which worker.
        id: WorkerId,
        /// How it ended.
        status: ExitStatus,
    },
    /// The runtime could not start a worker it was told to spawn (fork failed).
    SpawnFailed {
        /// Which worker.
        id: WorkerId,
    },
    /// A watched listener has connections waiting (reported on each arrival, and after
    /// [`Action::Poll`] if any are waiting).
    Ready {
        /// Which listener.
        socket: ListenerId,
        /// The kernel's accept-queue length, if known (`TCP_INFO`); `None` for unix sockets.
        queued: Option<u32>,
    },
    /// The re-executed child arbiter was reaped (or could not be started).
    ReexecEnded,
}

/// Why the arbiter signals a worker; carried in [`Action::Kill`] for logs and checkers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum KillReason {
    /// TTOU, WINCH, or replaced by a new generation.
    Retire,
    /// The server is stopping.
    Stop,
    /// Silent for longer than `timeout`.
    Timeout,
    /// It did not exit within its grace after being asked.
    GraceExpired,
    /// It sent a malformed or illegal frame.
    Protocol,
}

/// A signal the arbiter sends to a worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum KillSignal {
    /// Finish the current request, then exit.
    Term,
    /// Exit now.
    Quit,
    /// Abort (soft kill of a late worker; it may dump state).
    Abrt,
    /// SIGKILL.
    Kill,
}

/// What to do, from [`Arbiter::poll_action`](super::Arbiter::poll_action).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Action {
    /// Fork a worker.
    Spawn {
        /// Its id.
        id: WorkerId,
        /// What it does.
        role: Role,
        /// Its generation (bumped by each reload).
        generation: u32,
        /// Its request budget, jitter included; 0 = unlimited.
        max_requests: u32,
    },
    /// Write a frame to a worker's pipe.
    Send {
        /// The worker.
        to: WorkerId,
        /// The message.
        msg: ArbiterMsg,
    },
    /// Signal a worker (through its pidfd: a recycled pid is never hit).
    Kill {
        /// The worker.
        id: WorkerId,
        /// The signal.
        signal: KillSignal,
        /// Why.
        reason: KillReason,
    },
    /// Start reporting readiness of this listener: now if connections wait (a level check),
    /// then on every arrival (edge-triggered).
    Watch(ListenerId),
    /// Stop reporting readiness of this listener.
    Unwatch(ListenerId),
    /// Report readiness of this watched listener now if connections wait (a level check): the
    /// arbiter's count may be short after an answer.
    Poll(ListenerId),
    /// Reap: `waitpid(-1, WNOHANG)` until there is nothing left, reporting each worker.
    Reap,
    /// Fork and exec a new arbiter that inherits the listeners.
    Reexec,
    /// Reopen log files.
    ReopenLogs,
    /// Exit the arbiter process. The last action ever.
    Exit {
        /// The process exit code.
        code: i32,
        /// Whether unix sockets may be unlinked: false while a child arbiter uses them (B08).
        unlink_sockets: bool,
    },
}
