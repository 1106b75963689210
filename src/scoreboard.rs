//! The scoreboard: one shared counter per worker slot, which a worker bumps after each request
//! and the arbiter reads for `herd ctl status` (Apache's scoreboard, Unicorn's raindrops). It is
//! for reporting only: no decision of the arbiter depends on it.

use crate::shm::Region;
use herd_protocol::arbiter::MAX_WORKERS;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

/// Slots: the most workers at once, plus room for the ones still stopping.
pub const SLOTS: usize = 2 * MAX_WORKERS as usize;

type Board = [AtomicU64; SLOTS];

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
        self.board()[slot].store(0, Ordering::Relaxed);
        Some(slot)
    }

    /// Returns a slot whose worker was reaped.
    pub fn release(&mut self, slot: usize) {
        self.free.push(slot);
    }

    /// Requests the worker in `slot` served.
    pub fn requests(&self, slot: usize) -> u64 {
        self.board().get(slot).map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Counts one request served by the worker in `slot` (called in the worker).
    pub fn count(&self, slot: usize) {
        if let Some(c) = self.board().get(slot) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }
}
