//! A deadline is checked from both sides: the monitor holds every action to the instant its
//! timer falls (not late, not early), and this holds the timers to the actions: every deadline
//! the arbiter reports through `poll_timeout` is one it acts on. A deadline it would do nothing
//! at is a wakeup for nothing (an idle server that wakes), and a sign that the timer table and
//! the transitions disagree.

mod walk;
use herd_protocol::arbiter::{Config, ExitStatus, Input, Life, Phase, Role, domain};
use herd_protocol::invariants::Checked;
use herd_protocol::message::WorkerMsg;
use proptest::prelude::*;
use std::time::Duration;
use walk::{T0, apply, boot_limit, budget, config, step};

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_arbiter_acts_at_every_deadline_it_reports(
        workers in *domain::WORKERS.start()..=4u32,
        timeout_s in proptest::option::of(1u64..30),
        (max_requests, max_requests_jitter) in budget(),
        max_boot_failures in boot_limit(),
        steps in proptest::collection::vec(step(), 1..60),
    ) {
        let config = Config {
            max_requests,
            max_requests_jitter,
            max_boot_failures,
            ..config(workers, timeout_s.map(Duration::from_secs))
        };
        let (mut c, _) = Checked::new(config, T0).unwrap();
        let mut now = T0;
        for s in steps {
            apply(&mut c, &mut now, s).map_err(TestCaseError::fail)?;
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

    /// After a worker died before booting, spawns go one probe at a time: no new worker while
    /// one spawned since is still booting, until a worker boots (no fork storm; docs/protocol.md).
    #[test]
    fn after_a_boot_failure_spawns_go_one_probe_at_a_time(
        workers in 2u32..=4,
        max_boot_failures in boot_limit(),
        steps in proptest::collection::vec(step(), 1..80),
    ) {
        let config = Config { max_boot_failures, ..config(workers, Some(Duration::from_secs(10))) };
        let (mut c, _) = Checked::new(config, T0).unwrap();
        let mut now = T0;
        // Whether workers have failed to boot since one last booted, as seen from outside.
        let mut failing = false;
        for s in steps {
            let before = c.arbiter.workers().clone();
            let booted_before = before.values().filter(|w| w.booted).count();
            let actions = apply(&mut c, &mut now, s).map_err(TestCaseError::fail)?;
            let after = c.arbiter.workers();
            let died_unbooted = before.iter().any(|(id, w)| {
                !w.booted && w.life == Life::Active && !after.contains_key(id)
            });
            if after.values().any(|w| w.booted) && after.values().filter(|w| w.booted).count() > booted_before {
                failing = false;
            }
            failing |= died_unbooted;
            let spawned = actions.iter().filter(|a| a.starts_with("Spawn")).count();
            let booting = after.values().filter(|w| !w.booted && w.life == Life::Active).count();
            if failing && spawned > 0 {
                prop_assert!(
                    spawned == 1 && booting == 1,
                    "after {:?}: {} spawned while failing to boot, {} booting", s, spawned, booting
                );
            }
        }
    }

    /// The other side of one probe at a time: a server left alone after any walk (no more
    /// faults; workers say `ALIVE` as they come up and at their pace, and those asked to go
    /// leave) gets back to its target — unless it halted or was stopped. A spawn withheld
    /// for a probe that is not booting, or a backoff that never ends, fails here.
    #[test]
    fn left_alone_the_server_gets_back_to_its_target(
        workers in *domain::WORKERS.start()..=4u32,
        max_boot_failures in boot_limit(),
        steps in proptest::collection::vec(step(), 1..60),
    ) {
        let config = Config { max_boot_failures, ..config(workers, Some(Duration::from_secs(10))) };
        let (mut c, _) = Checked::new(config, T0).unwrap();
        let mut now = T0;
        for s in steps {
            apply(&mut c, &mut now, s).map_err(TestCaseError::fail)?;
        }
        let pace = Duration::from_secs(4);
        for _ in 0..1_000 {
            if c.arbiter.phase() != Phase::Running {
                return Ok(());
            }
            let (generation, target) = (c.arbiter.generation(), c.arbiter.target() as usize);
            let table = c.arbiter.workers().clone();
            let serving = table
                .values()
                .filter(|w| w.role == Role::Http && w.life == Life::Active && w.booted && w.generation == generation)
                .count();
            if serving == target && table.len() == target {
                return Ok(());
            }
            for (&id, w) in &table {
                let input = if w.life != Life::Active {
                    Input::Exited { id, status: ExitStatus::Code(0) }
                } else if !w.booted || now >= w.last_seen + pace {
                    Input::Message { from: id, msg: WorkerMsg::Alive { timestamp: 0 } }
                } else {
                    continue;
                };
                c.step(now, input).map_err(|v| TestCaseError::fail(v.to_string()))?;
            }
            let limit = now + Duration::from_secs(2);
            now = c.arbiter.poll_timeout().map_or(limit, |t| t.min(limit)).max(now);
            c.tick(now).map_err(|v| TestCaseError::fail(v.to_string()))?;
        }
        prop_assert!(
            false,
            "not back at the target {} of generation {} after 1,000 rounds: {:?}",
            c.arbiter.target(),
            c.arbiter.generation(),
            c.arbiter.workers()
        );
    }
}
