use super::*;

fn seq(registry: u64, cache: u64) -> Sequences {
    Sequences { registry, cache }
}

#[test]
fn registry_move_wins_over_cache_move() {
    let c = Coherence::new(seq(1, 1));
    assert_eq!(c.check(seq(1, 1)), Check::UpToDate);
    assert_eq!(c.check(seq(1, 2)), Check::ClearCaches { as_of: seq(1, 2) });
    assert_eq!(c.check(seq(2, 2)), Check::Reload { as_of: seq(2, 2) });
    // A store that went backwards (reset) also forces a reload.
    assert_eq!(c.check(seq(0, 1)), Check::Reload { as_of: seq(0, 1) });
}

#[test]
fn b14_a_bump_during_loading_costs_one_more_reload_and_is_never_missed() {
    let store = SharedSequences::new();
    let mut c = Coherence::new(store.load());
    store.increment(Bump::Registry); // seq 1: someone installed a module
    let Check::Reload { as_of } = c.check(store.load()) else { panic!("must reload") };
    // ... loading takes a while; another process commits and bumps meanwhile ...
    store.increment(Bump::Registry); // seq 2
    c.reloaded(as_of); // records 1, what was read *before* loading
    assert_eq!(c.check(store.load()), Check::Reload { as_of: seq(2, 0) });
}

#[test]
fn b11_consuming_an_invalidation_never_raises_one() {
    let mut c = Coherence::new(seq(0, 0));
    let Check::Reload { as_of } = c.check(seq(3, 1)) else { panic!() };
    c.reloaded(as_of);
    assert_eq!(c.commit(), None, "a reload must not signal anything");
    let Check::ClearCaches { as_of } = c.check(seq(3, 2)) else { panic!() };
    c.caches_cleared(as_of);
    assert_eq!(c.commit(), None);
    assert_eq!(c.check(seq(3, 2)), Check::UpToDate);
}

#[test]
fn b13_every_committed_invalidation_is_signalled_and_rollbacks_are_not() {
    let mut c = Coherence::new(seq(0, 0));
    c.invalidate_cache();
    c.invalidate_registry();
    assert_eq!(c.commit(), Some(Bump::Registry));
    assert_eq!(c.commit(), None, "flags are forgotten once committed");
    c.invalidate_cache();
    assert_eq!(c.commit(), Some(Bump::Cache));
    c.invalidate_registry();
    c.rollback();
    assert_eq!(c.commit(), None);
}

#[test]
fn own_bump_advances_the_view_only_without_a_concurrent_bump() {
    let store = SharedSequences::new();
    let mut a = Coherence::new(store.load());
    a.invalidate_registry();
    let what = a.commit().unwrap();
    let after = store.increment(what);
    a.bumped(what, after);
    assert_eq!(a.check(store.load()), Check::UpToDate, "our own change needs no reload");

    // Someone else bumps (seq 2) before our bump (seq 3): we must still reload for theirs.
    let mut b = Coherence::new(store.load());
    store.increment(Bump::Registry);
    b.invalidate_registry();
    let what = b.commit().unwrap();
    let after = store.increment(what);
    b.bumped(what, after);
    assert_eq!(b.check(store.load()), Check::Reload { as_of: seq(3, 0) });
}

#[test]
fn forked_worker_carries_no_pending_invalidation() {
    let mut parent = Coherence::new(seq(4, 4));
    parent.invalidate_registry();
    let mut child = parent.forked();
    assert_eq!(child.seen(), seq(4, 4));
    assert_eq!(child.commit(), None);
}

#[test]
fn b12_before_request_hands_out_the_new_registry() {
    let store = SharedSequences::new();
    let mut reg = Registry::new(String::from("v0"), store.load());
    assert_eq!(reg.before_request(store.load(), || unreachable!(), |_| unreachable!()), "v0");
    store.increment(Bump::Registry);
    let got = reg.before_request(store.load(), || String::from("v1"), |_| {});
    assert_eq!(got, "v1");
    store.increment(Bump::Cache);
    let got = reg.before_request(store.load(), || unreachable!(), |s| s.push_str("+cleared"));
    assert_eq!(got, "v1+cleared");
}
