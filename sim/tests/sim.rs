//! The simulator under `cargo test`: determinism, trace snapshots of fixed seeds, a campaign, and
//! the checkers' teeth (every re-introduced arbiter bug of docs/bugs.md is caught).

use herd_sim::{Options, campaign, run};
use std::time::Duration;

fn short(seed: u64) -> Options {
    Options { duration: Duration::from_secs(2), trace: true, ..Options::new(seed) }
}

#[test]
fn same_seed_same_trace() {
    for seed in [3, 77, 1_000_003] {
        let a = run(&Options { trace: true, duration: Duration::from_secs(60), ..Options::new(seed) });
        let b = run(&Options { trace: true, duration: Duration::from_secs(60), ..Options::new(seed) });
        assert!(a.trace.len() > 100, "seed {seed}: a trace of {} lines says little", a.trace.len());
        assert_eq!(a.trace, b.trace, "seed {seed} is not deterministic");
        assert_eq!(a.events, b.events);
    }
    let a = run(&short(1));
    let b = run(&short(2));
    assert_ne!(a.trace, b.trace, "different seeds, different runs");
}

#[test]
fn trace_of_seed_7() {
    let o = run(&short(7));
    assert!(o.violation.is_none(), "{:?}", o.violation);
    insta::assert_snapshot!(o.trace.join("\n"));
}

#[test]
fn trace_of_seed_42() {
    let o = run(&short(42));
    assert!(o.violation.is_none(), "{:?}", o.violation);
    insta::assert_snapshot!(o.trace.join("\n"));
}

#[test]
fn trace_of_seed_2026() {
    let o = run(&short(2026));
    assert!(o.violation.is_none(), "{:?}", o.violation);
    insta::assert_snapshot!(o.trace.join("\n"));
}

/// The campaign CI runs: 2,000 seeds of ten simulated minutes each, faults on.
#[cfg(feature = "sim")]
#[test]
fn campaign_of_2000_seeds_has_no_violation() {
    let sum = campaign(0, 2_000, 2, &Options::new(0), &|| {});
    assert_eq!(sum.seeds, 2_000);
    assert!(sum.events > 10_000_000, "only {} events: the campaign is not exercising much", sum.events);
    assert!(sum.failed_killed > 0, "no request ever met a killed worker: faults are not on");
    let first: Vec<String> = sum
        .failing
        .iter()
        .take(5)
        .map(|(seed, v)| format!("seed {seed}: {v}\n  replay: {}", Options::new(*seed).replay_command()))
        .collect();
    assert_eq!(sum.total_violations(), 0, "{}", first.join("\n"));
}

/// Without the campaign feature, a small campaign still runs in `cargo test`.
#[cfg(not(feature = "sim"))]
#[test]
fn small_campaign_has_no_violation() {
    let sum = campaign(0, 50, 2, &Options::new(0), &|| {});
    assert_eq!(sum.total_violations(), 0, "{:?}", sum.failing);
}

/// Each arbiter bug of docs/bugs.md, re-introduced, is caught by some seed among the first 300, and the
/// catch replays.
#[cfg(feature = "mutants")]
#[test]
fn every_reintroduced_arbiter_bug_is_caught() {
    use herd_protocol::mutants::Mutant;
    let mut missed = Vec::new();
    for m in Mutant::ALL {
        let caught = (0..300).find_map(|seed| {
            let o = Options { mutant: Some(m), ..Options::new(seed) };
            run(&o).violation.map(|v| (o, v))
        });
        match caught {
            None => missed.push(m),
            Some((o, v)) => {
                let again = run(&o).violation;
                assert_eq!(again.as_ref(), Some(&v), "{m:?}: seed {} does not replay", o.seed);
                eprintln!("{m:?} caught: {v}\n  replay: {}", o.replay_command());
            }
        }
    }
    assert!(missed.is_empty(), "not caught by the simulator: {missed:?}");
}
