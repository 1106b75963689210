//! The cron claim protocol, explored exhaustively.

use herd_model::cron::{CronBounds, explore_cron};
use herd_protocol::invariants::Invariant;
use std::time::Duration;

#[test]
fn two_workers_one_job_one_fault_of_any_kind() {
    let r = explore_cron(&CronBounds::default());
    assert!(r.violation.is_none(), "{:?}", r.violation);
    assert!(r.states > 1_000 && r.terminals > 10, "{r:?}");
    println!("{r:?}");
}

#[test]
fn two_workers_two_jobs_one_fault() {
    let b = CronBounds { jobs: 2, horizon: Duration::from_secs(6), ..CronBounds::default() };
    let r = explore_cron(&b);
    assert!(r.violation.is_none(), "{:?}", r.violation);
    println!("{r:?}");
}

/// A lease shorter than the arbiter needs to kill a silent holder lets a second worker claim a
/// job its holder still runs: the explorer finds it, with the trace.
#[test]
fn a_lease_shorter_than_the_kill_is_caught() {
    let b = CronBounds { lease: Some(Duration::from_secs(2)), faults: 0, ..CronBounds::default() };
    let r = explore_cron(&b);
    let (v, trace) = r.violation.expect("a double run");
    assert_eq!(v.invariant, Invariant::CronExclusive, "{v}");
    assert!(v.detail.contains("twice at once"), "{v}");
    assert!(!trace.is_empty());
}

/// An arbiter's death mid-job (issue #20): its cron worker gets the parent-death TERM, which lets
/// the job run on, and nobody is left to kill it. The holder's own fence stops the job before its
/// lease can end, so the next holder's run never overlaps: the explorer proves it over every
/// interleaving, and finds the overlap when the fence is off.
#[test]
fn an_orphaned_holder_fences_itself_before_its_lease_ends() {
    let b = CronBounds::default();
    let r = explore_cron(&b);
    assert!(r.violation.is_none(), "{:?}", r.violation);
    let r = explore_cron(&CronBounds { no_fence: true, ..b });
    let (v, trace) = r.violation.expect("an orphan's job overlapping the next run");
    assert_eq!(v.invariant, Invariant::CronExclusive, "{v}");
    assert!(trace.iter().any(|s| matches!(s, herd_model::cron::CronStep::Orphan(_))), "{trace:?}");
}
