//! Partial-order reduction: a step that nothing else can reach first, and that reaches nothing
//! else, is the one step explored from its state (a persistent set of one step).
//!
//! Three kinds ([`State::alone`]). The end of a sync worker's request: while it serves, the worker
//! reads nothing — not its pipe (the runtime's `serve` runs to the end before the loop reads
//! again), not a TERM (seen at the loop point after the request); only a kill reaches it, and
//! [`State::serving_alone`] asks that none can come. A dead worker's last words: the arbiter
//! reading `BYE` and `ACCEPT` frames of a worker it has asked to go, which no choice of the
//! arbiter's falls on any more, and `ALIVE` too once it has SIGKILLed it
//! ([`State::last_words_alone`]). And the reap of a dead worker the arbiter has SIGKILLed, with
//! nothing left to read and no dispatch to settle ([`State::reap_alone`]). Every other step is then independent
//! of it: neither changes what the other reads, and whether a step breaks an invariant does not
//! depend on which came first. Any run that takes it later has a twin that takes it first and
//! reaches the same states after it; any run that never takes it leaves it enabled throughout.
//! The search then finds every violation, every stuck state and every final state the unreduced
//! search finds:
//!
//! - a path to a violation or a final state either contains the step (moved to the front, the
//!   rest unchanged) or does not (then the step is still enabled at its last state, so that state
//!   is not final, and taking it first then the same steps leads to the same violation);
//! - a state from which no goal is reachable stays one: the step keeps a goal state a goal, so a
//!   path to a goal is moved the same way;
//! - each such move shortens the path still to go or lowers what is pending
//!   ([`State::pending`]), so they end (no step taken alone is on a cycle).
//!
//! The conditions are about what the arbiter can do, so they are checked, not assumed:
//! [`check_partial_order`] walks the unreduced search and, at every state where a step would be
//! taken alone, checks what the argument needs of it and of every other enabled step (see
//! there). The tests compare the reduced search's verdicts and final states with the unreduced
//! search's; docs/model.md, "Partial-order reduction", gives the measures.

use super::search::{fingerprint, successor, walk_unreduced};
use super::*;

impl State {
    /// Whether no step can reach worker `id` before its request ends: its request is under way
    /// (a sync worker), it is an active worker of the current generation (the arbiter signals
    /// and kills only workers it has asked to go, and a stop asks them all; a silent worker is
    /// never killed here, see [`TIMEOUT`]), and no fault that could touch it is left: neither a
    /// kill nor a signal that retires or stops.
    fn serving_alone(&self, id: WorkerId) -> bool {
        let b = &self.budget;
        let a = &self.arb.arbiter;
        self.procs.get(&id).is_some_and(|p| !p.dead && p.os == Some(Os::Serving))
            && a.workers().get(&id).is_some_and(|w| w.life == Life::Active && w.generation == a.generation())
            && (b.left == 0 || !(b.kill || b.ttou || b.hup || b.term))
    }

    /// The steps that may be explored alone from this state (each one a persistent set), in the
    /// order the search prefers them: the end of a request no step can reach first
    /// ([`State::serving_alone`]), then a dead worker's last words ([`State::last_words_alone`]),
    /// then a SIGKILLed worker's reap ([`State::reap_alone`]).
    fn alone(&self) -> impl Iterator<Item = Step> + '_ {
        let ends = self.procs.keys().copied().filter(|&id| self.serving_alone(id)).map(Step::Os);
        let last_words =
            self.procs.keys().copied().filter(|&id| self.last_words_alone(id)).map(Step::ToArbiter);
        let reaps = self.procs.keys().copied().filter(|&id| self.reap_alone(id)).map(Step::Reap);
        ends.chain(last_words).chain(reaps)
    }

    /// Whether reaping worker `id` is independent of every step that can come first: it is dead
    /// with nothing left in its pipe, and the arbiter has SIGKILLed it (nothing it said or says
    /// changes anything but a dispatch's books; it holds no deadline and counts for no target and
    /// no boot), with no dispatch of it to settle and no exit code that halts the server.
    fn reap_alone(&self, id: WorkerId) -> bool {
        use herd_protocol::arbiter::{APP_LOAD_ERROR, Accepting, WORKER_BOOT_ERROR};
        let killed = self
            .arb
            .arbiter
            .workers()
            .get(&id)
            .is_some_and(|w| w.life == Life::Killed && !matches!(w.accepting, Accepting::Dispatched(_)));
        killed
            && self.procs.get(&id).is_some_and(|p| {
                p.dead
                    && p.to_arbiter.is_empty()
                    && !matches!(p.status, Some(ExitStatus::Code(WORKER_BOOT_ERROR | APP_LOAD_ERROR)))
            })
    }

    /// Whether the arbiter's reading of the next packet of worker `id` is independent of every
    /// step that can come first: the worker is dead (the arbiter does not know it yet) and was
    /// asked to go (not active: no choice by id order falls on it, nothing is dispatched to it),
    /// and the packet holds only `BYE` and `ACCEPT` frames, or `ALIVE` too once the arbiter has
    /// SIGKILLed it (the arbiter and its monitor ignore all of these from a killed worker). Not
    /// `ALIVE` before that: whether the worker had booted races with its kill deadline, to which
    /// time may pass first (the check fails it); not `ACCEPTED`: it
    /// settles the dispatch books a readiness report reads (the check fails it). `EMPTY` settles
    /// the same books and is left out with it, though no checked bound fails it.
    fn last_words_alone(&self, id: WorkerId) -> bool {
        let life = self.arb.arbiter.workers().get(&id).map(|w| w.life);
        let asked_to_go = life.is_some_and(|l| l != Life::Active);
        let killed = life == Some(Life::Killed);
        asked_to_go
            && self.procs.get(&id).is_some_and(|p| {
                let packet = p
                    .to_arbiter
                    .iter()
                    .position(|&(_, last)| last)
                    .map_or(&[][..], |end| &p.to_arbiter[..=end]);
                p.dead
                    && !packet.is_empty()
                    && packet.iter().all(|(m, _)| match m {
                        WorkerMsg::Bye { .. } | WorkerMsg::Accept => true,
                        WorkerMsg::Alive { .. } => killed,
                        WorkerMsg::Accepted { .. } | WorkerMsg::Empty { .. } => false,
                    })
            })
    }

    /// The one step to explore from this state, if the reduction applies.
    fn persistent(&self) -> Option<Step> {
        if !self.partial_order || self.exited {
            return None;
        }
        self.alone().next()
    }

    /// The steps the search explores from this state: [`State::persistent`] alone, or every
    /// enabled step.
    pub(super) fn expand(&self) -> Vec<Step> {
        match self.persistent() {
            Some(step) => vec![step],
            None => self.enabled(),
        }
    }

    /// What every step taken alone lowers (in this order: a request's end may leave its worker
    /// dead with frames unread, and a reap comes after the last frame), and nothing takes below
    /// zero: the requests under way, then the frames in dead workers' pipes, then the dead workers.
    fn pending(&self) -> (usize, usize, usize) {
        let serving = self.procs.values().filter(|p| !p.dead && p.os == Some(Os::Serving)).count();
        let last_words = self.procs.values().filter(|p| p.dead).map(|p| p.to_arbiter.len()).sum();
        let dead = self.procs.values().filter(|p| p.dead).count();
        (serving, last_words, dead)
    }
}

/// Checks the partial-order reduction on the first `limit` states of the unreduced search
/// within `bounds` (breadth-first, no symmetry reduction, so that workers keep their names). At
/// every state, for every step that may be taken alone there (`State::alone`):
///
/// - it breaks no invariant, lowers what is pending (`State::pending`), and keeps a goal state a goal;
/// - every other enabled step commutes with it (both orders reach the same state), leaves it
///   one that may be taken alone, and breaks an invariant after it exactly when it does before.
///
/// The second point, checked at every state, follows every path that avoids the step from a
/// state where it may be taken alone: no step on such a path depends on it, so it is a
/// persistent set.
/// Returns the number of states checked and how many of them the reduction applies to, or what
/// failed and where.
pub fn check_partial_order(bounds: &Bounds, limit: usize) -> Result<(usize, usize), String> {
    let mut applied = 0;
    let checked = walk_unreduced(bounds, limit, |checked, s, steps| {
        let alone: Vec<Step> = s.alone().collect();
        if !alone.is_empty() {
            applied += 1;
        }
        for t in alone {
            let fail =
                |what: String| Err(format!("state {checked}, {t:?} taken alone: {what}\nstate: {s:?}"));
            if !steps.contains(&t) {
                return fail("it is not enabled".into());
            }
            let Ok(after) = successor(s, t) else { return fail("it breaks an invariant".into()) };
            if after.pending() >= s.pending() {
                return fail("it does not lower what is pending".into());
            }
            if s.goal() && !after.goal() {
                return fail("it leaves a goal state".into());
            }
            for &u in steps.iter().filter(|&&u| u != t) {
                let (first, then) = match (successor(s, u), successor(&after, u)) {
                    (Ok(a), Ok(b)) => (a, b),
                    (Err(a), Err(b)) if a.invariant == b.invariant => continue,
                    (a, b) => {
                        return fail(format!(
                            "{u:?} breaks {:?} before it and {:?} after it",
                            a.err().map(|v| v.invariant),
                            b.err().map(|v| v.invariant)
                        ));
                    }
                };
                if !first.alone().any(|x| x == t) {
                    return fail(format!("{u:?} ends its condition"));
                }
                match successor(&first, t) {
                    Ok(x) if fingerprint(&x) == fingerprint(&then) => {}
                    _ => return fail(format!("{u:?} and it do not commute")),
                }
            }
        }
        Ok(())
    })?;
    Ok((checked, applied))
}
