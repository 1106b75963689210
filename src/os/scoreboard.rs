//! The scoreboard (Apache's, Unicorn's raindrops): per worker slot, a request counter the worker
//! bumps after each request and a busy flag it holds from accept to the end of the request. The
//! arbiter reads them for `herd ctl status` and to count workers that died with a request in
//! flight. Reporting only: no decision of the arbiter depends on it.

use crate::os::shm::Region;
use herd_protocol::arbiter::MAX_WORKERS;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

/// Slots: the most workers at once, plus room for the ones still stopping.
pub const SLOTS: usize = 2 * MAX_WORKERS as usize;

/// One worker's counters, alone in their cache lines: each worker writes its own slot on every
/// request, and slots side by side in one line would bounce it between the workers' cores at
/// that rate (false sharing; 128 bytes: a pair of lines, which x86's adjacent-line prefetch
/// moves together).
#[repr(C, align(128))]
struct Slot {
    requests: AtomicU64,
    /// Set from before an accept to the end of the request it took.
    busy: AtomicU64,
}

#[repr(C)]
struct Board {
    slots: [Slot; SLOTS],
}

/// The shared counters and which slots are free (the free list lives in the arbiter only).
#[derive(Debug)]
pub struct Scoreboard {
    region: Region,
    free: Vec<usize>,
}

impl Scoreboard {
    /// A zeroed scoreboard.
    pub fn create() -> io::Result<Scoreboard> {
        let region = Region::create("herd-scoreboard", std::mem::size_of::<Board>())?;
        Ok(Scoreboard { region, free: (0..SLOTS).rev().collect() })
    }

    fn board(&self) -> &Board {
        // SAFETY: the region was made for a Board (atomics, valid when zeroed).
        unsafe { self.region.get() }
    }

    /// Takes a free slot, zeroed; `None` if all are in use.
    pub fn claim(&mut self) -> Option<usize> {
        let slot = self.free.pop()?;
        let s = &self.board().slots[slot];
        s.requests.store(0, Ordering::Relaxed);
        s.busy.store(0, Ordering::Relaxed);
        Some(slot)
    }

    /// Returns a slot whose worker was reaped.
    pub fn release(&mut self, slot: usize) {
        self.free.push(slot);
    }

    /// Requests the worker in `slot` served.
    pub fn requests(&self, slot: usize) -> u64 {
        self.board().slots.get(slot).map_or(0, |s| s.requests.load(Ordering::Relaxed))
    }

    /// Counts one request served by the worker in `slot` (called in the worker).
    pub fn count(&self, slot: usize) {
        if let Some(s) = self.board().slots.get(slot) {
            s.requests.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Marks the worker in `slot` as accepting or serving (called in the worker).
    pub fn set_busy(&self, slot: usize, busy: bool) {
        if let Some(s) = self.board().slots.get(slot) {
            s.busy.store(u64::from(busy), Ordering::Release);
        }
    }

    /// Whether the worker in `slot` was accepting or serving (read by the arbiter once it died).
    pub fn busy(&self, slot: usize) -> bool {
        self.board().slots.get(slot).is_some_and(|s| s.busy.load(Ordering::Acquire) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No two workers' counters share a pair of cache lines, and each worker's writes land in
    /// its own slot only.
    #[test]
    fn each_slot_is_alone_in_its_lines_and_counts_for_its_worker_only() {
        let mut sb = Scoreboard::create().expect("scoreboard");
        let (a, b) = (sb.claim().expect("slot"), sb.claim().expect("slot"));
        let board = sb.board();
        let addr = |s: usize| std::ptr::from_ref(&board.slots[s]) as usize;
        for s in [a, b] {
            assert_eq!(addr(s) % 128, 0, "slot {s} starts a 128-byte block");
        }
        assert!(addr(a).abs_diff(addr(b)) >= 128, "slots {a} and {b} share a 128-byte block");
        sb.count(a);
        sb.count(a);
        sb.set_busy(b, true);
        assert_eq!((sb.requests(a), sb.requests(b)), (2, 0));
        assert_eq!((sb.busy(a), sb.busy(b)), (false, true));
    }
}
