//! A deadline is checked from both sides: the monitor holds every action to the instant its
//! timer falls (not late, not early), and this holds the timers to the actions: every deadline
//! the arbiter reports through `poll_timeout` is one it acts on. A deadline it would do nothing
//! at is a wakeup for nothing (an idle server that wakes), and a sign that the timer table and
//! the transitions disagree.

mod walk;
use herd_protocol::arbiter::domain;
use herd_protocol::invariants::Checked;
use proptest::prelude::*;
use std::time::Duration;
use walk::{T0, apply, config, step};

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn the_arbiter_acts_at_every_deadline_it_reports(
        workers in *domain::WORKERS.start()..=4u32,
        timeout_s in proptest::option::of(1u64..30),
        steps in proptest::collection::vec(step(), 1..60),
    ) {
        let (mut c, _) = Checked::new(config(workers, timeout_s.map(Duration::from_secs)), T0).unwrap();
        let mut now = T0;
        for s in steps {
            if apply(&mut c, &mut now, s).is_err() {
                break;
            }
            let Some(due) = c.arbiter.poll_timeout() else { continue };
            let mut probe = c.arbiter.clone();
            probe.handle_timeout(due.max(now));
            let acted = std::iter::from_fn(|| probe.poll_action()).count();
            prop_assert!(
                acted > 0,
                "after {:?}: poll_timeout {:?} (timers {:?}), and nothing to do there",
                s,
                due,
                c.arbiter.timers().collect::<Vec<_>>()
            );
        }
    }
}
