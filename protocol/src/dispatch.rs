//! Signaled accept: which idle worker gets the next `ACCEPT:<socket>`, and what the arbiter knows
//! of each listener's accept queue.
//!
//! The dispatcher only books; the arbiter applies its choices to its worker table. Per listener it
//! keeps:
//! - `backlog`: connections known to be waiting that no worker has been sent to take;
//! - `outstanding`: `ACCEPT:<socket>` frames sent and not yet answered (`ACCEPTED` / `EMPTY`) nor
//!   voided by the worker's death.
//!
//! The runtime watches every listener while the server runs and reports readiness as it happens
//! (edge-triggered: each arrival), with the kernel's accept-queue length when it is known
//! (`TCP_INFO`). The kernel's count is the truth: `backlog = queued - outstanding`. That may
//! undercount (a worker accepted and its `ACCEPTED` is still in its pipe) but never overcounts, so
//! no connection wakes two workers (B17); and every answer asks for a level re-check
//! ([`crate::arbiter::Action::Poll`]), so an undercount is repaired within one round trip. Where
//! the count is unknown (unix sockets), a report says only "something is waiting" and is used
//! when nothing is outstanding (otherwise the waiting connection may be the one a worker is on
//! its way to take); the re-check after the last answer covers the rest.
//!
//! Idle workers are served first-come first-served, listeners round-robin. [`Dispatcher::next_dispatch`]
//! hands out work while both a backlog and an idle worker exist, so a known connection never
//! waits while an idle worker waits.

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

    /// The runtime saw connections waiting on a watched listener: `Some(n)` with the kernel's
    /// accept-queue length, `None` where it is unknown.
    pub fn ready(&mut self, s: ListenerId, queued: Option<u32>) {
        let Some(b) = self.book(s).filter(|b| b.watched) else { return };
        match queued {
            Some(n) => b.backlog = n.saturating_sub(b.outstanding),
            None if b.outstanding == 0 => b.backlog = b.backlog.max(1),
            None => {}
        }
    }

    /// Every idle worker's id renamed by `f` (see `Arbiter::rename_workers`).
    pub(crate) fn rename_workers(&mut self, f: impl Fn(WorkerId) -> WorkerId) {
        for w in &mut self.idle {
            *w = f(*w);
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

    /// The next (worker, listener) pair to send `ACCEPT:<socket>` to, booked as outstanding: the
    /// worker that has waited longest, the next listener with a backlog after the last served.
    pub fn next_dispatch(&mut self) -> Option<(WorkerId, ListenerId)> {
        self.take(false)
    }

    /// As [`Dispatcher::next_dispatch`], but the newest idle worker first (only the B23 mutant).
    #[cfg(feature = "mutants")]
    pub(crate) fn next_dispatch_newest_first(&mut self) -> Option<(WorkerId, ListenerId)> {
        self.take(true)
    }

    fn take(&mut self, newest_first: bool) -> Option<(WorkerId, ListenerId)> {
        if self.idle.is_empty() {
            return None;
        }
        let n = self.listeners.len();
        let i = (0..n).map(|k| (self.next_listener + k) % n).find(|&i| self.listeners[i].backlog > 0)?;
        let w = if newest_first { self.idle.pop_back() } else { self.idle.pop_front() }?;
        let b = &mut self.listeners[i];
        b.backlog -= 1;
        b.outstanding += 1;
        // Kept below the count of listeners: the one next in turn has one name (the explorer
        // tells states apart by what they hold).
        self.next_listener = (i + 1) % n;
        Some((w, ListenerId(i as u16)))
    }

    /// Books one more outstanding dispatch on `s` beyond the backlog (only the B17 mutant does).
    pub(crate) fn booked_extra(&mut self, s: ListenerId) {
        if let Some(b) = self.book(s) {
            b.outstanding += 1;
        }
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

    /// Brings `watched` in line with the rule (every listener is watched while the server is open)
    /// and returns the listeners whose state changed, with the new state.
    pub fn sync_watches(&mut self, open: bool) -> impl Iterator<Item = (ListenerId, bool)> + '_ {
        self.listeners.iter_mut().enumerate().filter_map(move |(i, b)| {
            let want = open;
            (want != b.watched).then(|| {
                b.watched = want;
                (ListenerId(i as u16), want)
            })
        })
    }
}
