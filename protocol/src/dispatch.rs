//! Signaled accept: which idle worker gets the next `ACCEPT:<socket>`, and when a listener must be
//! watched.
//!
//! The dispatcher only books; the arbiter applies its choices to its worker table. Per listener it
//! keeps:
//! - `backlog`: connections known to be waiting and not yet handed to anyone;
//! - `outstanding`: `ACCEPT:<socket>` frames sent and not yet answered (`ACCEPTED` / `EMPTY`) nor
//!   voided by the worker's death.
//!
//! A listener is watched only while both are zero. Readiness is level-triggered and stays set
//! until the connection is accepted, so watching a listener while a worker is on its way to accept
//! from it would hand the same connection out twice (B17); not watching it while `backlog` is
//! known keeps the loop from spinning. Idle workers are served first-come first-served, listeners
//! round-robin. [`Dispatcher::next`] hands out work while both a backlog and an idle worker exist,
//! so a pending connection never waits while an idle worker waits.

use crate::arbiter::WorkerId;
use crate::message::ListenerId;
use std::collections::VecDeque;

/// Booking of one listener.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ListenerBook {
    /// Connections known to be waiting and not yet handed out.
    pub backlog: u32,
    /// `ACCEPT:<socket>` frames not yet answered.
    pub outstanding: u32,
    /// Whether the runtime is told to watch this listener.
    pub watched: bool,
}

/// The idle queue and the listener books.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Dispatcher {
    listeners: Vec<ListenerBook>,
    idle: VecDeque<WorkerId>,
    next_listener: usize,
}

impl Dispatcher {
    /// Books for `listeners` listeners, none watched yet.
    pub fn new(listeners: u16) -> Self {
        Dispatcher {
            listeners: vec![ListenerBook::default(); usize::from(listeners)],
            idle: VecDeque::new(),
            next_listener: 0,
        }
    }

    /// The books, indexed by listener.
    pub fn books(&self) -> &[ListenerBook] {
        &self.listeners
    }

    /// The idle workers, first to be served first.
    pub fn idle(&self) -> &VecDeque<WorkerId> {
        &self.idle
    }

    fn book(&mut self, s: ListenerId) -> Option<&mut ListenerBook> {
        self.listeners.get_mut(usize::from(s.0))
    }

    /// Does this listener exist?
    pub fn has(&self, s: ListenerId) -> bool {
        usize::from(s.0) < self.listeners.len()
    }

    /// The runtime saw `queued` connections waiting on a watched listener. Ignored when the
    /// listener is not watched: that readiness predates an `Unwatch` and is already booked.
    pub fn ready(&mut self, s: ListenerId, queued: u32) {
        if let Some(b) = self.book(s).filter(|b| b.watched) {
            b.backlog = b.backlog.max(queued.max(1));
        }
    }

    /// A worker asked for work.
    pub fn push_idle(&mut self, w: WorkerId) {
        self.idle.push_back(w);
    }

    /// A worker is no longer idle (it died, was retired or killed).
    pub fn remove_idle(&mut self, w: WorkerId) {
        self.idle.retain(|&x| x != w);
    }

    /// The next (worker, listener) pair to send `ACCEPT:<socket>` to, booked as outstanding.
    pub fn next(&mut self) -> Option<(WorkerId, ListenerId)> {
        if self.idle.is_empty() {
            return None;
        }
        let n = self.listeners.len();
        let i = (0..n)
            .map(|k| (self.next_listener + k) % n)
            .find(|&i| self.listeners[i].backlog > 0)?;
        let w = self.idle.pop_front()?;
        let b = &mut self.listeners[i];
        b.backlog -= 1;
        b.outstanding += 1;
        self.next_listener = (i + 1) % n;
        Some((w, ListenerId(i as u16)))
    }

    /// A dispatched worker answered `ACCEPTED` or `EMPTY`.
    pub fn answered(&mut self, s: ListenerId) {
        if let Some(b) = self.book(s) {
            b.outstanding = b.outstanding.saturating_sub(1);
        }
    }

    /// A dispatched worker died or left before answering: its connection is still waiting in the
    /// kernel (or was taken by a worker that died with it), so it goes back to the backlog (B15).
    pub fn voided(&mut self, s: ListenerId) {
        if let Some(b) = self.book(s) {
            b.outstanding = b.outstanding.saturating_sub(1);
            b.backlog = b.backlog.saturating_add(1);
        }
    }

    /// Forget every backlog and idle worker (the server is stopping).
    pub fn close(&mut self) {
        self.idle.clear();
        for b in &mut self.listeners {
            b.backlog = 0;
        }
    }

    /// Brings `watched` in line with the rule (watch iff `open` and nothing booked) and returns
    /// the listeners whose state changed, with the new state.
    pub fn sync_watches(&mut self, open: bool) -> impl Iterator<Item = (ListenerId, bool)> + '_ {
        self.listeners
            .iter_mut()
            .enumerate()
            .filter_map(move |(i, b)| {
                let want = open && b.backlog == 0 && b.outstanding == 0;
                (want != b.watched).then(|| {
                    b.watched = want;
                    (ListenerId(i as u16), want)
                })
            })
    }
}
