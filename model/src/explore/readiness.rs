//! The readiness rule: a report owed on an empty listener is no report (docs/model.md,
//! "Modelling choices"). The explorer drops such a report as it arises, so the state that owed
//! it is never explored; [`check_readiness`] checks that it would have added nothing.

use super::search::{fingerprint, successor};
use super::*;

/// Checks the readiness rule on the first `limit` states of the unreduced search within `bounds`
/// (breadth-first, no reduction): at every state with an empty listener, the same state owing a
/// readiness report must have the same steps and one more, the report, which leads back to the
/// state itself, and every other step must lead where it leads from the state (or break the
/// same invariant). So the report is a stutter step, and states owing it are their twins without it.
/// Returns the number of states checked and at how many the rule applied, or what differed and where.
pub fn check_readiness(bounds: &Bounds, limit: usize) -> Result<(usize, usize), String> {
    let full = Bounds { symmetry: false, partial_order: false, ..bounds.clone() };
    let init = State::initial(&full);
    let mut seen = search::Visited::default();
    seen.insert(fingerprint(&init), 0);
    let mut frontier = VecDeque::from([init]);
    let (mut checked, mut applied) = (0, 0);
    let outcome = |s: &State, step| successor(s, step).map(|t| fingerprint(&t)).map_err(|v| v.invariant);
    while let Some(s) = frontier.pop_front() {
        if checked == limit {
            break;
        }
        checked += 1;
        let steps = s.enabled();
        if s.queue == 0 && !s.ready_pending {
            let mut owed = s.clone();
            owed.ready_pending = true;
            let watched = s.arb.arbiter.dispatcher().books().first().is_some_and(|b| b.watched);
            let owed_steps = owed.enabled();
            let fail = |what: String| Err(format!("state {checked}, owing a report: {what}\nstate: {s:?}"));
            let mut expected = steps.clone();
            if watched {
                applied += 1;
                expected.push(Step::Ready);
                let mut same = s.clone();
                same.canonical_time();
                same.canonical_ids();
                if outcome(&owed, Step::Ready) != Ok(fingerprint(&same)) {
                    return fail("the report does not lead back to the state".into());
                }
            }
            let (mut a, mut b) = (owed_steps.clone(), expected);
            a.sort_unstable_by_key(|x| format!("{x:?}"));
            b.sort_unstable_by_key(|x| format!("{x:?}"));
            if a != b {
                return fail(format!("steps {a:?}, expected {b:?}"));
            }
            for &u in &steps {
                if outcome(&owed, u) != outcome(&s, u) {
                    return fail(format!("{u:?} leads elsewhere"));
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
