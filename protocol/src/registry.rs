//! Registry coherence: when a process must reload its registry or clear its caches before a
//! request, and when it must signal its own changes to the others (Odoo's
//! `check_signaling` / `signal_changes`).
//!
//! Every process keeps the pair of [`Sequences`] its registry and caches are as new as. A shared
//! store (shared memory on one host, PostgreSQL across hosts: [`SequenceStore`]) holds the current
//! pair. Before each request a process compares; if the registry sequence moved it reloads, else if
//! the cache sequence moved it clears its caches. After committing a change that invalidates the
//! registry (or caches) it bumps the matching sequence.
//!
//! The rules, each a bug someone shipped (docs/bugs.md):
//! - the sequences are read *before* loading, so a bump that lands during the load costs one more
//!   reload later and is never missed (B14): [`Check::Reload`] carries the value to record;
//! - a bump happens only after the change is committed, and every committed invalidation is bumped
//!   (B13): [`Coherence::commit`];
//! - consuming an invalidation (reloading) never raises one (B11);
//! - after a reload only the new registry can be reached (B12): [`Registry::before_request`] hands
//!   out a borrow that cannot outlive the next check;
//! - a process's own bump advances its view only if nobody else bumped in between (otherwise the
//!   other change would be skipped); a freshly forked worker carries no pending invalidation.
//!
//! [`SharedSequences`] is the shared-memory store's real code (atomics from `crate::sync`, so
//! loom checks it).

use crate::sync::{AtomicU64, Ordering};
use core::convert::Infallible;

/// The registry and cache sequence numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sequences {
    /// Moves when the registry (installed modules, models) changed: reload before serving.
    pub registry: u64,
    /// Moves when caches were invalidated: clear them before serving.
    pub cache: u64,
}

/// Which sequence to bump.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bump {
    /// The registry changed.
    Registry,
    /// Only caches were invalidated.
    Cache,
}

/// Where the shared sequences live. Implemented by shared memory ([`SharedSequences`]), by the
/// PostgreSQL store in the runtime, and by the simulator's and the models' stores.
pub trait SequenceStore {
    /// Why the store could not answer (the database went away, ...).
    type Error: core::fmt::Debug + core::fmt::Display;
    /// The current sequences.
    fn get(&self) -> Result<Sequences, Self::Error>;
    /// Increments one sequence and returns the sequences right after (the other one as read just
    /// after the increment). Call only after the change it signals is committed.
    fn bump(&self, what: Bump) -> Result<Sequences, Self::Error>;
}

/// What to do before serving a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[must_use]
pub enum Check {
    /// The registry and caches are current.
    UpToDate,
    /// Rebuild the registry (which also clears caches), then call [`Coherence::reloaded`] with
    /// `as_of`: the sequences read before the rebuild started.
    Reload {
        /// Record this after the reload, not what the store says then.
        as_of: Sequences,
    },
    /// Clear caches, then call [`Coherence::caches_cleared`] with `as_of`.
    ClearCaches {
        /// Record this after clearing.
        as_of: Sequences,
    },
}

/// One process's view of the sequences, and the invalidations of its current transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Coherence {
    seen: Sequences,
    registry_invalidated: bool,
    cache_invalidated: bool,
}

impl Coherence {
    /// A process whose registry was loaded from a store that said `as_of` *before* the load began.
    pub fn new(as_of: Sequences) -> Self {
        Coherence { seen: as_of, registry_invalidated: false, cache_invalidated: false }
    }

    /// The view a freshly forked worker starts with: the parent's sequences, none of its pending
    /// invalidations (they belong to the parent's transaction, not the child's).
    pub fn forked(&self) -> Self {
        Coherence::new(self.seen)
    }

    /// The sequences this process's registry and caches are as new as.
    pub fn seen(&self) -> Sequences {
        self.seen
    }

    /// Compares the store's current sequences (read just now, before the request) with ours.
    pub fn check(&self, shared: Sequences) -> Check {
        if shared.registry != self.seen.registry {
            Check::Reload { as_of: shared }
        } else if shared.cache != self.seen.cache {
            Check::ClearCaches { as_of: shared }
        } else {
            Check::UpToDate
        }
    }

    /// The registry was rebuilt after [`Check::Reload`]; `as_of` is the value that check carried.
    /// Consuming an invalidation raises none (B11).
    pub fn reloaded(&mut self, as_of: Sequences) {
        self.seen = as_of;
    }

    /// Caches were cleared after [`Check::ClearCaches`].
    pub fn caches_cleared(&mut self, as_of: Sequences) {
        self.seen.cache = as_of.cache;
    }

    /// This process changed the registry in its current transaction.
    pub fn invalidate_registry(&mut self) {
        self.registry_invalidated = true;
    }

    /// This process invalidated caches in its current transaction.
    pub fn invalidate_cache(&mut self) {
        self.cache_invalidated = true;
    }

    /// The transaction committed: returns what to bump (registry wins over cache), and forgets
    /// the invalidations. Bump exactly what this returns, then report it with [`Self::bumped`].
    #[must_use]
    pub fn commit(&mut self) -> Option<Bump> {
        let what = if self.registry_invalidated {
            Some(Bump::Registry)
        } else if self.cache_invalidated {
            Some(Bump::Cache)
        } else {
            None
        };
        self.registry_invalidated = false;
        self.cache_invalidated = false;
        what
    }

    /// The transaction rolled back: nothing is signalled.
    pub fn rollback(&mut self) {
        self.registry_invalidated = false;
        self.cache_invalidated = false;
    }

    /// Our own bump returned `after`. Our registry already holds our change, so our view may move
    /// to the new value, but only if nobody else bumped since we last synchronised (the new value
    /// is exactly one past ours); otherwise we keep the old view and reload on the next check.
    pub fn bumped(&mut self, what: Bump, after: Sequences) {
        match what {
            Bump::Registry if after.registry == self.seen.registry.wrapping_add(1) => {
                self.seen.registry = after.registry;
            }
            Bump::Cache if after.cache == self.seen.cache.wrapping_add(1) => {
                self.seen.cache = after.cache;
            }
            _ => {}
        }
    }
}

/// A process's registry object together with its coherence state.
///
/// The only way to reach the registry is [`Registry::before_request`], which checks first and
/// returns a borrow tied to `self`: code cannot keep using an old registry object after a reload
/// (B12), because the borrow checker ends the old borrow before the next check.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Registry<T> {
    value: T,
    coherence: Coherence,
}

impl<T> Registry<T> {
    /// A registry loaded from a store that said `as_of` before loading began.
    pub fn new(value: T, as_of: Sequences) -> Self {
        Registry { value, coherence: Coherence::new(as_of) }
    }

    /// The coherence state (for commits and bumps).
    pub fn coherence_mut(&mut self) -> &mut Coherence {
        &mut self.coherence
    }

    /// The coherence state.
    pub fn coherence(&self) -> &Coherence {
        &self.coherence
    }

    /// Changes this process's own registry (installs a module, ...) and records that the
    /// registry was invalidated, in one step: [`Coherence::bumped`] relies on the process's
    /// registry holding its own change. After the transaction commits, call
    /// `coherence_mut().commit()`, bump what it returns, and report it with `bumped`.
    pub fn change(&mut self, f: impl FnOnce(&mut T)) {
        f(&mut self.value);
        self.coherence.invalidate_registry();
    }

    /// The registry as of the last [`Registry::before_request`], for code running inside the
    /// request that check guarded (a request context holds `&mut Registry` for the request's
    /// duration, so the borrow still ends before the next check).
    pub fn checked(&mut self) -> &mut T {
        &mut self.value
    }

    /// Checks `shared` (read from the store just now), reloads with `load` or clears caches with
    /// `clear_caches` as needed, and returns the registry to serve this request with.
    pub fn before_request(
        &mut self,
        shared: Sequences,
        load: impl FnOnce() -> T,
        clear_caches: impl FnOnce(&mut T),
    ) -> &mut T {
        match self.coherence.check(shared) {
            Check::UpToDate => {}
            Check::Reload { as_of } => {
                self.value = load();
                self.coherence.reloaded(as_of);
            }
            Check::ClearCaches { as_of } => {
                clear_caches(&mut self.value);
                self.coherence.caches_cleared(as_of);
            }
        }
        &mut self.value
    }
}

/// The shared-memory sequence store: two atomic counters, placed by the runtime in a shared
/// mapping that every forked worker (and a re-executed arbiter) sees.
///
/// Ordering: [`SharedSequences::bump`] is a release increment, so everything committed before the
/// bump is visible to a process whose acquire [`SharedSequences::get`] sees the new value; that
/// process then reloads and sees the change.
#[derive(Debug)]
#[repr(C)]
pub struct SharedSequences {
    registry: AtomicU64,
    cache: AtomicU64,
}

impl Default for SharedSequences {
    fn default() -> Self {
        Self::new()
    }
}

impl SharedSequences {
    /// Both sequences at zero.
    pub fn new() -> Self {
        SharedSequences { registry: AtomicU64::new(0), cache: AtomicU64::new(0) }
    }

    /// The current sequences.
    pub fn load(&self) -> Sequences {
        Sequences {
            registry: self.registry.load(Ordering::Acquire),
            cache: self.cache.load(Ordering::Acquire),
        }
    }

    /// Increments one sequence; returns the sequences just after.
    pub fn increment(&self, what: Bump) -> Sequences {
        match what {
            Bump::Registry => {
                let registry = self.registry.fetch_add(1, Ordering::AcqRel).wrapping_add(1);
                Sequences { registry, cache: self.cache.load(Ordering::Acquire) }
            }
            Bump::Cache => {
                let cache = self.cache.fetch_add(1, Ordering::AcqRel).wrapping_add(1);
                Sequences { registry: self.registry.load(Ordering::Acquire), cache }
            }
        }
    }
}

impl SequenceStore for SharedSequences {
    type Error = Infallible;
    fn get(&self) -> Result<Sequences, Infallible> {
        Ok(self.load())
    }
    fn bump(&self, what: Bump) -> Result<Sequences, Infallible> {
        Ok(self.increment(what))
    }
}

#[cfg(all(test, not(herd_loom)))]
mod tests;
