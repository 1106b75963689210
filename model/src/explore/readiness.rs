//! The readiness rule: a report owed on an empty listener is no report (docs/model.md,
//! "Modelling choices"). The explorer drops such a report as it arises, so the state that owed
//! it is never explored; [`check_readiness`] checks that it would have added nothing.

use super::search::{fingerprint, outcome, walk_unreduced};
use super::*;

/// Checks the readiness rule on the first `limit` states of the unreduced search within `bounds`
/// (breadth-first, no reduction): at every state with an empty listener, the same state owing a
/// readiness report must have the same steps and one more, the report, which leads back to the
/// state itself, and every other step must lead where it leads from the state (or break the
/// same invariant). So the report is a stutter step, and states owing it are their twins without it.
/// Returns the number of states checked and at how many the rule applied, or what differed and where.
pub fn check_readiness(bounds: &Bounds, limit: usize) -> Result<(usize, usize), String> {
    let mut applied = 0;
    let checked = walk_unreduced(bounds, limit, |checked, s, steps| {
        if s.queue > 0 || s.ready_pending {
            return Ok(());
        }
        let fail = |what: String| Err(format!("state {checked}, owing a report: {what}\nstate: {s:?}"));
        let mut owed = s.clone();
        owed.ready_pending = true;
        let owed_steps = owed.enabled();
        if owed_steps.contains(&Step::Ready) != s.watched()
            || !owed_steps.iter().filter(|&&x| x != Step::Ready).eq(steps)
        {
            return fail(format!("steps {owed_steps:?}, without the debt {steps:?}"));
        }
        if s.watched() {
            applied += 1;
            let mut same = s.clone();
            same.canonical_time();
            same.canonical_ids();
            if outcome(&owed, Step::Ready) != Ok(fingerprint(&same)) {
                return fail("the report does not lead back to the state".into());
            }
        }
        for &u in steps {
            if outcome(&owed, u) != outcome(s, u) {
                return fail(format!("{u:?} leads elsewhere"));
            }
        }
        Ok(())
    })?;
    Ok((checked, applied))
}
