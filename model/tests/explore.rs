//! The exhaustive explorer on small bounds: complete and clean in every accept mode, and able to
//! find each re-introduced arbiter bug it can reach, with a short trace.

use herd_model::explore::{Bounds, EXPLORABLE_CORNERS, KINDS, explore};
use herd_protocol::arbiter::AcceptMode;

fn bounds(mode: AcceptMode, workers: u32, connections: u32, faults: u32) -> Bounds {
    Bounds {
        workers,
        connections,
        faults,
        kinds: KINDS.iter().map(|k| k.to_string()).collect(),
        mode,
        max_requests: 0,
        kind: herd_protocol::worker::WorkerKind::Sync,
        corner: None,
        symmetry: true,
        partial_order: true,
        max_states: 2_000_000,
        max_seconds: 0,
        threads: 0,
        #[cfg(feature = "mutants")]
        mutant: None,
    }
}

fn kinds(b: Bounds, kinds: &[&str]) -> Bounds {
    Bounds { kinds: kinds.iter().map(|k| k.to_string()).collect(), ..b }
}

/// Complete, clean, and wider for its faults: more than twice the states of the same bounds
/// with no fault (a fault kind that is never taken would leave the two alike).
fn complete_and_clean(b: &Bounds) {
    let r = explore(b);
    assert!(!r.truncated, "{b:?}: not complete at {} states", r.states);
    assert!(r.violation.is_none(), "{b:?}: {:?}", r.violation);
    let calm = explore(&Bounds { faults: 0, ..b.clone() });
    assert!(
        r.states > 2 * calm.states,
        "{b:?}: {} states, {} without faults: the faults are not being explored",
        r.states,
        calm.states
    );
}

#[test]
fn signaled_two_workers_two_connections_any_one_fault() {
    complete_and_clean(&bounds(AcceptMode::Signaled, 2, 2, 1));
}

#[test]
fn shared_two_workers_one_connection_any_one_fault() {
    complete_and_clean(&bounds(AcceptMode::Shared, 2, 1, 1));
}

/// Auto mode with HUP is wide (direct accepts race the signaling of two generations): beyond a
/// test's budget; `herd-explore --mode auto --kinds hup --connections 0` covers the reload.
#[test]
fn auto_two_workers_one_connection_any_one_fault_but_reload() {
    let b = kinds(bounds(AcceptMode::Auto, 2, 1, 1), &["kill", "ttin", "ttou", "term", "abandon"]);
    complete_and_clean(&b);
}

#[test]
fn recycling_workers_with_kills_and_ttou() {
    let b = Bounds { max_requests: 1, ..kinds(bounds(AcceptMode::Signaled, 2, 2, 1), &["kill", "ttou"]) };
    complete_and_clean(&b);
}

/// The search is parallel; what it finds is not: the same states, transitions and depth on one
/// searcher as on four.
#[test]
fn the_result_does_not_depend_on_the_number_of_searchers() {
    let b = async_bounds(AcceptMode::Shared, 1);
    let one = explore(&Bounds { threads: 1, ..b.clone() });
    let four = explore(&Bounds { threads: 4, ..b });
    assert!(one.states > 10_000 && !one.truncated && one.violation.is_none(), "{one:?}");
    assert_eq!((one.states, one.transitions, one.depth), (four.states, four.transitions, four.depth));
}

#[cfg(feature = "mutants")]
#[test]
fn reachable_arbiter_bugs_are_found_with_a_short_trace() {
    use herd_protocol::mutants::Mutant;
    // B16 strands a worker after an empty accept: with a second worker the server still serves,
    // so it takes a server of one.
    for (m, workers) in [(Mutant::B10, 2), (Mutant::B15, 2), (Mutant::B16, 1), (Mutant::B17, 2)] {
        let b = Bounds { mutant: Some(m), ..bounds(AcceptMode::Signaled, workers, 2, 1) };
        let r = explore(&Bounds { threads: 1, ..b.clone() });
        let (v, trace) = r.violation.unwrap_or_else(|| panic!("{m:?} not found in {} states", r.states));
        assert!(trace.len() < 30, "{m:?}: trace of {} steps", trace.len());
        eprintln!("{m:?}: {v} after {} steps: {trace:?}", trace.len());
        // The trace names workers as they were spawned: it replays without any renaming.
        let replayed = herd_model::explore::replay(&b, &trace).unwrap_or_else(|e| panic!("{m:?}: {e}"));
        match replayed {
            Some(r) => assert_eq!(r.invariant, v.invariant, "{m:?}"),
            // A stuck state: no step breaks anything, the trace leads to it.
            None => assert!(v.to_string().contains("stuck"), "{m:?}: {v} not raised by the replay"),
        }
        // The same trace whichever searcher found it first.
        let again = explore(&Bounds { threads: 3, ..b });
        assert_eq!(again.violation.map(|(_, t)| t), Some(trace), "{m:?}");
    }
}

fn async_bounds(mode: AcceptMode, faults: u32) -> Bounds {
    Bounds { kind: herd_protocol::worker::WorkerKind::Async { connections: 2 }, ..bounds(mode, 2, 2, faults) }
}

#[test]
fn async_workers_signaled_any_one_fault() {
    complete_and_clean(&async_bounds(AcceptMode::Signaled, 1));
}

#[test]
fn async_workers_shared_any_one_fault() {
    complete_and_clean(&async_bounds(AcceptMode::Shared, 1));
}

#[test]
fn async_workers_auto_kill_term_abandon() {
    complete_and_clean(&kinds(async_bounds(AcceptMode::Auto, 1), &["kill", "term", "abandon"]));
}

/// Every corner of the configuration domain the explorer can run at, complete and clean (the CI
/// runs them at larger bounds).
#[test]
fn every_explorable_corner_is_complete_and_clean() {
    for corner in EXPLORABLE_CORNERS {
        let b = Bounds { corner: Some(corner), ..bounds(AcceptMode::Signaled, 2, 2, 1) };
        complete_and_clean(&b);
    }
}

/// The symmetry reduction is sound where it is checked: on every state of these searches, a
/// state and its canonical naming lead to the same canonical states and the same violations.
#[test]
fn canonical_names_lead_where_the_states_they_name_lead() {
    for b in [
        bounds(AcceptMode::Signaled, 3, 2, 1),
        kinds(bounds(AcceptMode::Signaled, 3, 1, 2), &["hup", "ttou", "kill"]),
        bounds(AcceptMode::Shared, 2, 2, 1),
        bounds(AcceptMode::Auto, 2, 1, 1),
        async_bounds(AcceptMode::Signaled, 1),
    ] {
        let n = herd_model::explore::check_symmetry(&b, 30_000).unwrap_or_else(|e| panic!("{b:?}: {e}"));
        // Fewer than the limit: the whole space was checked.
        assert!(n > 10_000, "{b:?}: only {n} states");
    }
}

/// The reduced search gives the unreduced search's verdicts, in fewer states.
#[test]
fn symmetry_changes_no_verdict() {
    for b in [
        bounds(AcceptMode::Signaled, 2, 2, 1),
        bounds(AcceptMode::Shared, 2, 1, 1),
        async_bounds(AcceptMode::Signaled, 1),
    ] {
        let reduced = explore(&b);
        let full = explore(&Bounds { symmetry: false, ..b.clone() });
        assert!(!reduced.truncated && !full.truncated, "{b:?}");
        assert_eq!(reduced.violation.is_some(), full.violation.is_some(), "{b:?}");
        assert_eq!(reduced.stuck > 0, full.stuck > 0, "{b:?}");
        assert!(
            reduced.states * 3 / 2 < full.states,
            "{b:?}: {} states reduced, {} in full",
            reduced.states,
            full.states
        );
    }
}

/// The partial-order reduction is sound where it is checked: at every state of these unreduced
/// searches (their first 15,000) where a step would be explored alone, it breaks nothing and
/// lowers what is pending, and every other step keeps the condition, commutes with it and
/// breaks an invariant on either side of it or on neither. A bound per fault kind that could
/// end a condition, and async workers (whose live workers' frames are not last words).
#[test]
fn a_request_end_explored_alone_commutes_with_every_other_step() {
    for b in [
        bounds(AcceptMode::Signaled, 3, 2, 1),
        kinds(bounds(AcceptMode::Signaled, 3, 2, 2), &["ttin", "abandon", "boot-crash"]),
        kinds(bounds(AcceptMode::Signaled, 3, 3, 2), &["kill", "abandon"]),
        kinds(bounds(AcceptMode::Signaled, 3, 1, 2), &["hup", "ttou", "kill"]),
        // Two reloads: retired workers killed at their grace with their frames unread.
        kinds(bounds(AcceptMode::Signaled, 3, 1, 2), &["hup"]),
        kinds(bounds(AcceptMode::Signaled, 2, 2, 1), &["hup"]),
        kinds(bounds(AcceptMode::Signaled, 2, 2, 1), &["ttou"]),
        kinds(bounds(AcceptMode::Signaled, 2, 2, 1), &["term", "ttin"]),
        Bounds { max_requests: 1, ..bounds(AcceptMode::Signaled, 2, 3, 1) },
        bounds(AcceptMode::Shared, 2, 2, 1),
        bounds(AcceptMode::Auto, 2, 2, 1),
        async_bounds(AcceptMode::Signaled, 1),
    ] {
        let (n, applied) =
            herd_model::explore::check_partial_order(&b, 15_000).unwrap_or_else(|e| panic!("{b:?}: {e}"));
        eprintln!(
            "{:?} {} workers: {n} states checked, the reduction applies at {applied}",
            b.mode, b.workers
        );
        // Fewer than the limit: the whole space was checked.
        assert!(applied >= 100, "{b:?}: the reduction applies at only {applied} of {n} states");
    }
}

/// The reduced search reaches the unreduced search's verdicts and the same final states, in
/// fewer states.
#[test]
fn partial_order_changes_no_verdict_and_no_final_state() {
    for b in [
        bounds(AcceptMode::Signaled, 3, 2, 1),
        Bounds { max_requests: 1, ..bounds(AcceptMode::Signaled, 2, 2, 1) },
        bounds(AcceptMode::Shared, 2, 2, 1),
        kinds(bounds(AcceptMode::Auto, 2, 2, 1), &["kill", "ttin", "ttou", "term", "abandon"]),
        kinds(
            bounds(AcceptMode::Signaled, 3, 2, 2),
            &["kill", "boot-crash", "ttin", "ttou", "term", "abandon"],
        ),
        kinds(bounds(AcceptMode::Signaled, 2, 0, 2), &["hup"]),
        kinds(bounds(AcceptMode::Signaled, 3, 0, 2), &["hup"]),
        async_bounds(AcceptMode::Signaled, 1),
    ] {
        let reduced = explore(&b);
        let full = explore(&Bounds { partial_order: false, ..b.clone() });
        assert!(!reduced.truncated && !full.truncated, "{b:?}");
        assert_eq!(reduced.violation.is_some(), full.violation.is_some(), "{b:?}");
        assert_eq!((reduced.stuck > 0, reduced.finals), (full.stuck > 0, full.finals), "{b:?}");
        eprintln!("{:?}: {} states reduced, {} in full", b.mode, reduced.states, full.states);
    }
}

/// The readiness rule is sound where it is checked: at every state of these unreduced searches
/// with nothing queued, owing a readiness report adds the report, which changes nothing, and
/// changes no other step.
#[test]
fn a_report_owed_on_an_empty_listener_changes_nothing() {
    for b in [
        bounds(AcceptMode::Signaled, 3, 2, 1),
        kinds(bounds(AcceptMode::Signaled, 3, 1, 2), &["hup", "abandon", "kill"]),
        // (Not shared mode: the arbiter never watches the listener, so no report is owed.)
        kinds(bounds(AcceptMode::Signaled, 2, 2, 1), &["ttou", "term"]),
        bounds(AcceptMode::Auto, 2, 2, 1),
        async_bounds(AcceptMode::Signaled, 1),
    ] {
        let (n, applied) =
            herd_model::explore::check_readiness(&b, 15_000).unwrap_or_else(|e| panic!("{b:?}: {e}"));
        eprintln!("{:?} {} workers: {n} states checked, the rule applies at {applied}", b.mode, b.workers);
        assert!(applied >= 100, "{b:?}: the rule applies at only {applied} of {n} states");
    }
}
