//! The arbiter's signal queue: bounded, lossless for every signal delivered to the process, and
//! async-signal-safe; plus the wakeup contract between the signal handler and the main loop.
//!
//! This is real code the runtime calls from its signal handlers, not a model of it: `herd-model`
//! checks this exact code under loom (`--cfg herd_loom`, see `crate::sync`).
//!
//! # Counting, not queueing
//!
//! Each signal kind has one atomic counter. A handler does one `fetch_add`; the main loop takes
//! every counter with `swap(0)`. So memory is fixed (ten counters), nothing allocates or locks in
//! the handler, and no delivered signal is ever dropped — gunicorn <= 21 dropped every signal past
//! the fifth queued (B01). k TTINs that reach the process count as k. (The kernel itself coalesces
//! a standard signal that arrives while the same one is pending; `herd ctl` exists for exact
//! counts.)
//!
//! What is given up is the arrival order *between kinds* within one drain. A drained batch is
//! handled in a fixed order, [`SignalBatch::iter`]: CHLD (coalesced to one reap), USR1, TTIN xk,
//! TTOU xk, WINCH, HUP, USR2, then the stop signals TERM, INT, QUIT last so that a stop is never
//! undone by a signal that arrived with it.
//!
//! # The wakeup contract
//!
//! The handler half is [`SignalQueue::push_and_wake`]: count the signal, *then* wake the loop
//! (write a byte to the self-pipe). The loop half is [`SignalQueue::drain_woken`]: clear the wakeup
//! (drain the self-pipe), *then* take the counters; then handle them; then sleep on the self-pipe.
//! A signal that lands after the counters were taken has written its byte after the pipe was
//! drained, so the sleep returns at once: no wakeup is lost. Draining the pipe after taking the
//! counters is the classic race (B03): a signal in between is counted but its byte is thrown away,
//! and it waits a whole sleep.

use crate::sync::{AtomicU32, Ordering};

/// The signals the arbiter acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Sig {
    /// Reap dead children.
    Chld,
    /// Reopen log files.
    Usr1,
    /// One more worker.
    Ttin,
    /// One fewer worker (never below one).
    Ttou,
    /// Stop all workers, keep the arbiter (daemon use).
    Winch,
    /// Reload: a new generation of workers replaces the old.
    Hup,
    /// Re-exec a new arbiter that inherits the listeners.
    Usr2,
    /// Graceful stop.
    Term,
    /// Fast stop.
    Int,
    /// Fast stop.
    Quit,
}

impl Sig {
    /// Every signal, in the order a drained batch is handled.
    pub const ALL: [Sig; 10] = [
        Sig::Chld,
        Sig::Usr1,
        Sig::Ttin,
        Sig::Ttou,
        Sig::Winch,
        Sig::Hup,
        Sig::Usr2,
        Sig::Term,
        Sig::Int,
        Sig::Quit,
    ];

    fn index(self) -> usize {
        self as usize
    }

    /// The conventional name (`"TTIN"`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            Sig::Chld => "CHLD",
            Sig::Usr1 => "USR1",
            Sig::Ttin => "TTIN",
            Sig::Ttou => "TTOU",
            Sig::Winch => "WINCH",
            Sig::Hup => "HUP",
            Sig::Usr2 => "USR2",
            Sig::Term => "TERM",
            Sig::Int => "INT",
            Sig::Quit => "QUIT",
        }
    }
}

/// Counters of delivered signals, shared between signal handlers and the main loop.
#[derive(Debug)]
pub struct SignalQueue {
    counts: [AtomicU32; 10],
}

impl Default for SignalQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl SignalQueue {
    /// An empty queue.
    pub fn new() -> Self {
        SignalQueue { counts: core::array::from_fn(|_| AtomicU32::new(0)) }
    }

    /// Counts one delivery of `sig`. Async-signal-safe: one atomic add, no lock, no allocation.
    pub fn push(&self, sig: Sig) {
        // Release: whatever the handler did before is visible to the loop that drains this count.
        self.counts[sig.index()].fetch_add(1, Ordering::Release);
    }

    /// The handler half of the wakeup contract: count `sig`, then call `wake` (write one byte to
    /// the self-pipe). The order is the contract; see the module documentation.
    pub fn push_and_wake(&self, sig: Sig, wake: impl FnOnce()) {
        self.push(sig);
        wake();
    }

    /// Takes every counter, leaving them at zero.
    #[must_use]
    pub fn drain(&self) -> SignalBatch {
        SignalBatch { counts: core::array::from_fn(|i| self.counts[i].swap(0, Ordering::Acquire)) }
    }

    /// The main loop's half of the wakeup contract: `clear_wakeup` (drain the self-pipe) first,
    /// then take the counters. After handling the batch the loop may sleep on the self-pipe.
    #[must_use]
    pub fn drain_woken(&self, clear_wakeup: impl FnOnce()) -> SignalBatch {
        clear_wakeup();
        self.drain()
    }
}

/// The signals taken by one drain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SignalBatch {
    counts: [u32; 10],
}

impl SignalBatch {
    /// How many times `sig` was delivered.
    pub fn count(&self, sig: Sig) -> u32 {
        self.counts[sig.index()]
    }

    /// True if no signal was taken.
    pub fn is_empty(&self) -> bool {
        self.counts.iter().all(|&c| c == 0)
    }

    /// Total deliveries in the batch.
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|&c| u64::from(c)).sum()
    }

    /// The signals to handle, in handling order: each kind as often as it was delivered, except
    /// CHLD, which means "reap" and is given once however often it came.
    pub fn iter(&self) -> impl Iterator<Item = Sig> + '_ {
        Sig::ALL.into_iter().flat_map(move |sig| {
            let n = match sig {
                Sig::Chld => self.count(sig).min(1),
                _ => self.count(sig),
            };
            core::iter::repeat_n(sig, n as usize)
        })
    }
}

#[cfg(all(test, not(herd_loom)))]
mod tests {
    use super::*;

    #[test]
    fn b01_every_delivered_signal_is_counted_past_five() {
        let q = SignalQueue::new();
        for _ in 0..10 {
            q.push(Sig::Ttin);
        }
        q.push(Sig::Hup);
        let batch = q.drain();
        assert_eq!(batch.count(Sig::Ttin), 10);
        assert_eq!(batch.iter().filter(|&s| s == Sig::Ttin).count(), 10);
        assert_eq!(batch.count(Sig::Hup), 1);
        assert!(q.drain().is_empty());
    }

    #[test]
    fn chld_coalesces_and_stop_signals_come_last() {
        let q = SignalQueue::new();
        for s in [Sig::Term, Sig::Chld, Sig::Chld, Sig::Ttin, Sig::Quit, Sig::Ttou] {
            q.push(s);
        }
        let order: Vec<Sig> = q.drain().iter().collect();
        assert_eq!(order, vec![Sig::Chld, Sig::Ttin, Sig::Ttou, Sig::Term, Sig::Quit]);
    }

    #[test]
    fn b03_drain_woken_clears_the_wakeup_before_taking_counters() {
        // A signal arriving inside `clear_wakeup` must be in this batch or leave a wakeup behind.
        let q = SignalQueue::new();
        let mut woken = false;
        let batch = q.drain_woken(|| {
            woken = false;
            q.push_and_wake(Sig::Ttin, || woken = true);
        });
        assert_eq!(batch.count(Sig::Ttin), 1);
        // Had the counters been taken first, this TTIN would have been left with no wakeup.
        let q = SignalQueue::new();
        let mut woken = false;
        let batch = q.drain_woken(|| woken = false);
        q.push_and_wake(Sig::Term, || woken = true);
        assert!(batch.is_empty());
        assert!(woken, "a signal after the drain leaves the loop woken");
        assert_eq!(q.drain().count(Sig::Term), 1);
    }
}
