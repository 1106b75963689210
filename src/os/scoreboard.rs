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

#[repr(C)]
struct Board {
    requests: [AtomicU64; SLOTS],
    /// Set from before an accept to the end of the request it took.
    busy: [AtomicU64; SLOTS],
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
        self.board().requests[slot].store(0, Ordering::Relaxed);
        self.board().busy[slot].store(0, Ordering::Relaxed);
        Some(slot)
    }

    /// Returns a slot whose worker was reaped.
    pub fn release(&mut self, slot: usize) {
        self.free.push(slot);
    }

    /// Requests the worker in `slot` served.
    pub fn requests(&self, slot: usize) -> u64 {
        self.board().requests.get(slot).map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Counts one request served by the worker in `slot` (called in the worker).
    pub fn count(&self, slot: usize) {
        if let Some(c) = self.board().requests.get(slot) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Marks the worker in `slot` as accepting or serving (called in the worker).
    pub fn set_busy(&self, slot: usize, busy: bool) {
        if let Some(c) = self.board().busy.get(slot) {
            c.store(u64::from(busy), Ordering::Release);
        }
    }

    /// Whether the worker in `slot` was accepting or serving (read by the arbiter once it died).
    pub fn busy(&self, slot: usize) -> bool {
        self.board().busy.get(slot).is_some_and(|c| c.load(Ordering::Acquire) != 0)
    }
}
