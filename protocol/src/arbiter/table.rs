//! The arbiter's books: each worker's row, the phase, the counters.

use super::config::Role;
use super::io::KillSignal;
use crate::message::ListenerId;
use crate::time::Instant;

/// Where a worker is in its life, as the arbiter sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Life {
    /// Counted towards the target; may be given work.
    Active,
    /// Asked to stop (TERM/QUIT sent, or it said BYE); KILL at `kill_at`.
    Stopping {
        /// When it is killed if still there.
        kill_at: Instant,
    },
    /// Soft-killed for silence (ABRT sent); KILL at `kill_at`.
    Killing {
        /// When it is killed if still there.
        kill_at: Instant,
    },
    /// SIGKILL sent; waiting to reap it.
    Killed,
}

/// Where a worker is in the accept protocol, as the arbiter sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Accepting {
    /// Not asking for work (booting, serving, or shared mode).
    Busy,
    /// Sent `ACCEPT`, waiting to be dispatched.
    Idle,
    /// Sent `ACCEPT:<socket>`, waiting for `ACCEPTED` or `EMPTY`.
    Dispatched(ListenerId),
}

/// One row of the worker table.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WorkerEntry {
    /// What it does.
    pub role: Role,
    /// Its generation.
    pub generation: u32,
    /// When it was spawned.
    pub spawned_at: Instant,
    /// When the arbiter last received anything from it (or spawned it).
    pub last_seen: Instant,
    /// Whether it has sent anything yet (it booted).
    pub booted: bool,
    /// Its life state.
    pub life: Life,
    /// Its accept state.
    pub accepting: Accepting,
    /// Connections it reported accepting when dispatched.
    pub requests: u64,
    /// Its request budget (0 = unlimited).
    pub max_requests: u32,
    /// Whether a stop signal (TERM or QUIT) was sent to it; each at most once.
    pub asked: Option<KillSignal>,
    /// False once it sent a malformed or illegal frame: nothing it says is believed again.
    pub trusted: bool,
    /// Start of the current heartbeat window (`timeout / 2` long) and the `ALIVE` frames received
    /// in it: a worker heartbeats about once per window, so more than [`MAX_ALIVES_PER_WINDOW`]
    /// is a flood, and a protocol violation.
    pub alive_window: (Instant, u8),
}

/// The active workers of each role: what converging the worker count reads after every input.
/// Kept up to date by the arbiter at each change of a row's life, boot or generation, not counted
/// again each time (at 256 workers, scanning the table after every input was 40% of the
/// arbiter's CPU per connection); debug builds check it against a fresh count after every input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Census {
    /// Per role (`Role::Http`, then `Role::Cron`): active workers of the current generation, how
    /// many of them have booted, and active workers of older generations.
    counts: [RoleCount; 2],
}

/// One role's line of a [`Census`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RoleCount {
    /// Active, current generation.
    pub current: usize,
    /// Of those, booted.
    pub booted: usize,
    /// Active, an older generation.
    pub old: usize,
}

impl Census {
    /// Counts the active workers of `workers` against the current `generation`.
    pub fn take<'a>(workers: impl IntoIterator<Item = &'a WorkerEntry>, generation: u32) -> Self {
        let mut c = Census::default();
        for w in workers {
            c.join(w, generation);
        }
        c
    }

    /// `w` joins the count (spawned, or its boot or generation counted anew).
    pub fn join(&mut self, w: &WorkerEntry, generation: u32) {
        self.add(w, generation, 1);
    }

    /// `w` leaves the count: it is no longer active, or is gone, or its boot is counted anew.
    pub fn leave(&mut self, w: &WorkerEntry, generation: u32) {
        self.add(w, generation, usize::MAX);
    }

    /// Adds `n` (wrapping: `usize::MAX` takes one away) to the lines `w` counts in.
    fn add(&mut self, w: &WorkerEntry, generation: u32, n: usize) {
        if w.life != Life::Active {
            return;
        }
        let line = self.of_mut(w.role);
        if w.generation == generation {
            line.current = line.current.wrapping_add(n);
            if w.booted {
                line.booted = line.booted.wrapping_add(n);
            }
        } else {
            line.old = line.old.wrapping_add(n);
        }
    }

    /// A new generation: every active worker becomes old.
    pub fn new_generation(&mut self) {
        for line in &mut self.counts {
            *line = RoleCount { current: 0, booted: 0, old: line.old + line.current };
        }
    }

    /// The line of `role`.
    pub fn of(&self, role: Role) -> RoleCount {
        self.counts[role as usize]
    }

    fn of_mut(&mut self, role: Role) -> &mut RoleCount {
        &mut self.counts[role as usize]
    }
}

/// Most `ALIVE` frames a worker may send in one `timeout / 2` (it sends one, two at a boundary).
pub const MAX_ALIVES_PER_WINDOW: u8 = 16;

/// Counters, for status output and checkers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Stats {
    /// Workers spawned.
    pub spawns: u64,
    /// Workers reaped.
    pub deaths: u64,
    /// Workers soft-killed for silence.
    pub timeouts: u64,
    /// Workers that left after their budget (`BYE:recycle`).
    pub recycles: u64,
    /// `ACCEPT:<socket>` frames sent.
    pub dispatches: u64,
    /// Workers killed for malformed or illegal frames.
    pub protocol_errors: u64,
    /// Workers that died before booting, or could not be forked.
    pub boot_failures: u64,
}

/// The arbiter's phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Serving.
    Running,
    /// Stopping: workers were asked to stop; whatever remains at `deadline` is killed.
    Stopping {
        /// TERM (true) or QUIT (false) sent.
        graceful: bool,
        /// When the rest is killed.
        deadline: Instant,
        /// The exit code once every worker is gone.
        code: i32,
    },
    /// `Exit` was emitted.
    Exited,
}
