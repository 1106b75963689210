//! Symmetry reduction: states that differ only in which worker is which are one state.
//!
//! The canonical names ([`State::canonical_ids`]) are checked against the states they stand for
//! by [`check_symmetry`]: a state and its canonical form must have the same canonical successors,
//! step for step — the condition under which exploring canonical states alone finds every
//! violation and every stuck state the full search finds.

use super::search::{outcome, successor, walk_unreduced};
use super::*;

impl State {
    /// Whether the arbiter may yet choose between `id` and other workers by their ids' order.
    /// It does so twice, both among its active workers: TTOU retires the oldest of the current
    /// generation, and as a new generation boots the old one's workers retire oldest first (HUP).
    /// So it may for an active worker of an old generation, and for one of the current
    /// generation while a fault is left that may be a TTOU or a HUP (which makes it old). Never
    /// for any other: a worker never becomes active again, the budget only shrinks, and only
    /// HUP makes a generation old.
    fn ordered(&self, id: WorkerId) -> bool {
        let b = &self.budget;
        let a = &self.arb.arbiter;
        a.workers().get(&id).is_some_and(|w| {
            w.life == Life::Active && (w.generation < a.generation() || (b.left > 0 && (b.ttou || b.hup)))
        })
    }

    /// The canonical names of the workers (with [`Bounds::symmetry`]): `0..n` for the `n` ids the
    /// state holds, and `n` the next to give. The arbiter compares ids only to choose among
    /// [`State::ordered`] workers, and a new worker's id is above every other, so those keep
    /// their order and come first; elsewhere ids are only told apart, so the others are named
    /// after them in the order of what the state holds of each (symmetry reduction: states alike
    /// but for which worker is which become one). Two workers alike in everything are
    /// interchangeable, and either order gives the same state.
    pub(super) fn canonical_ids(&mut self) {
        if !self.symmetry {
            return;
        }
        use std::hash::{BuildHasher, Hash, Hasher};
        let mut ids = self.arb.worker_ids();
        ids.extend(self.procs.keys().copied());
        ids.sort_unstable();
        ids.dedup();
        let seed = foldhash::quality::FixedState::with_seed(0x6865_7264);
        let mut keyed: SmallVec<[(bool, u64, WorkerId); 8]> = ids
            .iter()
            .map(|&id| {
                if self.ordered(id) {
                    return (false, id.0, id);
                }
                let mut h = seed.build_hasher();
                self.procs.get(&id).hash(&mut h);
                self.arb.hash_worker(id, &mut h);
                (true, h.finish(), id)
            })
            .collect();
        keyed.sort_unstable();
        let name = |id: WorkerId| {
            let i = keyed.iter().position(|&(_, _, x)| x == id).expect("every id is named");
            WorkerId(i as u64)
        };
        self.arb.rename_workers(name, keyed.len() as u64);
        self.procs.rename_keys(|&id| name(id));
    }
}

/// Checks the symmetry reduction on the first `limit` states of the unreduced search within
/// `bounds` (breadth-first): for each, the state named canonically must lead, over all its
/// enabled steps, to the same canonical states (as a multiset) as the state does, and to the
/// same violations.
/// Returns the number of states checked, or what differed and where.
pub fn check_symmetry(bounds: &Bounds, limit: usize) -> Result<usize, String> {
    walk_unreduced(bounds, limit, |checked, s, _| {
        let mut named = s.clone();
        named.symmetry = true;
        let mut canonical = named.clone();
        canonical.canonical_ids();
        let mut from_state: Vec<_> = named.enabled().into_iter().map(|step| outcome(&named, step)).collect();
        let mut from_canonical: Vec<_> =
            canonical.enabled().into_iter().map(|step| outcome(&canonical, step)).collect();
        from_state.sort_unstable();
        from_canonical.sort_unstable();
        if from_state != from_canonical {
            return Err(format!(
                "state {checked} and its canonical form lead to different states:\n{:?}\nvs\n{:?}\nstate: {s:?}",
                from_state, from_canonical
            ));
        }
        Ok(())
    })
}

/// A trace found among canonical states, its workers named as they were spawned: each step is
/// found again from the state as it was, the one leading where the canonical step led (up to
/// naming). Traces read as a run would, not as a sequence of renamings.
pub(super) fn as_spawned(bounds: &Bounds, steps: &[Step]) -> Vec<Step> {
    if !bounds.symmetry {
        return steps.to_vec();
    }
    let mut canonical = State::initial(bounds);
    let mut spawned = State::initial(&Bounds { symmetry: false, ..bounds.clone() });
    let mut out = Vec::with_capacity(steps.len());
    for &step in steps {
        let want = outcome(&canonical, step);
        let mut named = spawned.clone();
        named.symmetry = true;
        let Some(same) = spawned.enabled().into_iter().find(|&x| outcome(&named, x) == want) else {
            // Only an unsound reduction gets here, and check_symmetry looks for one.
            return steps.to_vec();
        };
        out.push(same);
        match (successor(&canonical, step), successor(&spawned, same)) {
            (Ok(c), Ok(s)) => (canonical, spawned) = (c, s),
            _ => break,
        }
    }
    out
}

/// Replays `steps` from the initial state without renaming (the ids as spawned): the violation
/// the last step raises, if any; `Err` names a step that is not enabled where it is taken.
pub fn replay(bounds: &Bounds, steps: &[Step]) -> Result<Option<Violation>, String> {
    let mut s = State::initial(&Bounds { symmetry: false, ..bounds.clone() });
    for (i, &step) in steps.iter().enumerate() {
        if !s.enabled().contains(&step) {
            return Err(format!("step {} ({step:?}) is not enabled", i + 1));
        }
        match successor(&s, step) {
            Ok(t) => s = t,
            Err(v) if i + 1 == steps.len() => return Ok(Some(v)),
            Err(v) => return Err(format!("step {} ({step:?}) breaks {v} before the end", i + 1)),
        }
    }
    Ok(None)
}
