//! Partial-order reduction: where a worker's request can only end, and nothing else can reach
//! that worker first, its end is the one step explored.
//!
//! A sync worker serving a request (its core in `Serving`, the `Os` step pending) reads nothing
//! until the request ends: not its pipe (the runtime's `serve` runs to the end before the loop
//! reads again), not a TERM (seen at the loop point after the request). Only a kill can reach it
//! — the arbiter's ABRT or KILL, a QUIT, or a fault. Where none can come before the request
//! ends ([`State::persistent`]), every other step is independent of the end of the request: it
//! neither changes what the end reads nor is changed by it, and whether it breaks an invariant
//! does not depend on it. Then the end alone is explored: any run from that state that ends the
//! request later has a twin that ends it first and reaches the same states after it, and any
//! run that never ends it could end it anywhere (a persistent set of one step). The search then
//! finds every violation, every stuck state and every final state the unreduced search finds:
//!
//! - a path to a violation or a final state either contains the end (moved to the front, the
//!   rest unchanged) or does not (then the end is still enabled at its last state, so that state
//!   is not final, and the end's twin path leads to the same violation);
//! - a state from which no goal is reachable stays one: a goal state has no request being served
//!   unless the server has stopped, and a path to a goal must end the request, so it is moved to
//!   the front the same way;
//! - the end of a request adds one to the served count, which nothing lowers: it is on no cycle,
//!   and every cycle of the reduced graph is made of fully expanded states (the cycle proviso).
//!
//! The condition is about what the arbiter can do, so it is checked, not assumed:
//! [`check_partial_order`] walks the unreduced search and, at every state where the end of a
//! request would be explored alone, checks that every other enabled step leaves the worker as it
//! was (its pipe to the arbiter read from the front at most), keeps the condition true, closes
//! the diamond with the end, and breaks an invariant on one side of it exactly when it does on
//! the other. The tests compare the reduced search's verdicts and final states with the
//! unreduced search's.

use super::search::{fingerprint, successor};
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

    /// The one step to explore from this state, if the reduction applies: the end of the request
    /// of the first worker that nothing can reach first ([`State::serving_alone`]).
    fn persistent(&self) -> Option<Step> {
        if !self.partial_order || self.exited {
            return None;
        }
        self.procs.keys().copied().find(|&id| self.serving_alone(id)).map(Step::Os)
    }

    /// The steps the search explores from this state: [`State::persistent`] alone, or every
    /// enabled step.
    pub(super) fn expand(&self) -> Vec<Step> {
        match self.persistent() {
            Some(step) => vec![step],
            None => self.enabled(),
        }
    }
}

/// What a step leaves of worker `id`: everything but its pipe to the arbiter, and that pipe
/// (which the arbiter reads from the front).
fn worker_view(s: &State, id: WorkerId) -> Option<(Proc, Pipe)> {
    s.procs.get(&id).map(|p| {
        let mut rest = p.clone();
        let pipe = std::mem::take(&mut rest.to_arbiter);
        (rest, pipe)
    })
}

/// Checks the partial-order reduction on the first `limit` states of the unreduced search
/// within `bounds` (breadth-first, no symmetry reduction, so that workers keep their names): at
/// every state, for every worker whose request end would be explored alone, and for every other
/// enabled step, that the step leaves the worker as it was but for frames read from the front of
/// its pipe, keeps the condition, closes the diamond with the end (both orders reach the same
/// state) and breaks an invariant exactly when it does after the end; and that the end itself
/// breaks none.
/// Returns the number of states checked and how many of them the reduction applies to, or what
/// failed and where.
pub fn check_partial_order(bounds: &Bounds, limit: usize) -> Result<(usize, usize), String> {
    let full = Bounds { symmetry: false, partial_order: false, ..bounds.clone() };
    let init = State::initial(&full);
    let mut seen = search::Visited::default();
    seen.insert(fingerprint(&init), 0);
    let mut frontier = VecDeque::from([init]);
    let (mut checked, mut applied) = (0, 0);
    while let Some(s) = frontier.pop_front() {
        if checked == limit {
            break;
        }
        checked += 1;
        let steps = s.enabled();
        let alone: Vec<WorkerId> = s.procs.keys().copied().filter(|&id| s.serving_alone(id)).collect();
        if !alone.is_empty() {
            applied += 1;
        }
        for id in alone {
            let end = Step::Os(id);
            let fail =
                |what: String| Err(format!("state {checked}, end of {id}'s request: {what}\nstate: {s:?}"));
            let Ok(ended) = successor(&s, end) else { return fail("the end breaks an invariant".into()) };
            let (before, pipe) = worker_view(&s, id).expect("serving");
            for &step in steps.iter().filter(|&&step| step != end) {
                let first = successor(&s, step);
                let after_end = successor(&ended, step);
                let (first, after_end) = match (first, after_end) {
                    (Ok(a), Ok(b)) => (a, b),
                    (Err(a), Err(b)) if a.invariant == b.invariant => continue,
                    (a, b) => {
                        return fail(format!(
                            "{step:?} breaks {:?} first and {:?} after the end",
                            a.err().map(|v| v.invariant),
                            b.err().map(|v| v.invariant)
                        ));
                    }
                };
                match worker_view(&first, id) {
                    Some((rest, left)) if rest == before && pipe.ends_with(&left) => {}
                    _ => return fail(format!("{step:?} reaches the worker")),
                }
                if !first.serving_alone(id) || !first.enabled().contains(&end) {
                    return fail(format!("{step:?} ends the condition"));
                }
                match successor(&first, end) {
                    Ok(t) if fingerprint(&t) == fingerprint(&after_end) => {}
                    _ => return fail(format!("{step:?} and the end do not commute")),
                }
            }
        }
        for step in steps {
            if let Ok(t) = successor(&s, step)
                && seen.insert(fingerprint(&t), 0).is_none()
            {
                frontier.push_back(t);
            }
        }
    }
    Ok((checked, applied))
}
