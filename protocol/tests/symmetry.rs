//! The symmetries the model checker relies on to merge states, checked against the cores
//! themselves: a core moved back in time (`translate_back`) behaves as the original, shifted;
//! a core whose past liveness instants are raised to the present (`clamp_past`) behaves as the
//! original while nothing it does compares them with a timeout. If either failed, the explorer
//! would merge states that differ and miss what only one of them does.

use herd_protocol::arbiter::{Phase, domain};
use herd_protocol::invariants::Checked;
use herd_protocol::message::{ArbiterMsg, ListenerId, WorkerMsg};
use herd_protocol::time::Instant;
use herd_protocol::worker::{self, Worker, WorkerConfig, WorkerKind};
use proptest::prelude::*;
use std::time::Duration;

mod walk;
use walk::{T0, apply, config, step};

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The arbiter (and its monitor) moved back by `d` does what the original does `d` later.
    #[test]
    fn the_arbiter_moved_back_in_time_behaves_alike(
        workers in *domain::WORKERS.start()..=4u32,
        timeout_s in 1u64..30,
        before in proptest::collection::vec(step(), 0..40),
        after in proptest::collection::vec(step(), 1..40),
        back_ms in 0u64..1_000_000,
    ) {
        let (mut a, _) = Checked::new(config(workers, Some(Duration::from_secs(timeout_s))), T0).unwrap();
        let mut now = T0;
        for s in before {
            apply(&mut a, &mut now, s).map_err(TestCaseError::fail)?;
        }
        let d = Duration::from_millis(back_ms);
        let mut b = a.clone();
        b.translate_back(d);
        let mut then = now - d;
        // Every instant of the state moved, none left behind (the explorer hashes them all).
        for (id, w) in a.arbiter.workers().iter() {
            let v = b.arbiter.workers().get(id).expect("same workers");
            prop_assert_eq!(
                (v.spawned_at, v.last_seen, v.alive_window.0),
                (w.spawned_at - d, w.last_seen - d, w.alive_window.0 - d)
            );
        }
        if let (Phase::Stopping { deadline: x, .. }, Phase::Stopping { deadline: y, .. }) =
            (a.arbiter.phase(), b.arbiter.phase())
        {
            prop_assert_eq!(y, x - d);
        }
        prop_assert_eq!(b.arbiter.poll_timeout(), a.arbiter.poll_timeout().map(|t| t - d));
        for s in after {
            let ra = apply(&mut a, &mut now, s);
            let rb = apply(&mut b, &mut then, s);
            prop_assert_eq!(&ra, &rb, "after {:?}", s);
            prop_assert_eq!(b.arbiter.poll_timeout(), a.arbiter.poll_timeout().map(|t| t - d));
            if ra.is_err() {
                break;
            }
        }
    }

    /// With a timeout far beyond the time a run lets pass, raising the past liveness instants to
    /// the present changes nothing the arbiter does; the status counters start over.
    #[test]
    fn the_arbiter_with_its_past_clamped_behaves_alike(
        workers in *domain::WORKERS.start()..=4u32,
        before in proptest::collection::vec(step(), 0..40),
        after in proptest::collection::vec(step(), 1..40),
    ) {
        let timeout = Some(Duration::from_secs(1_000_000));
        let (mut a, _) = Checked::new(config(workers, timeout), T0).unwrap();
        let mut now = T0;
        for s in before {
            apply(&mut a, &mut now, s).map_err(TestCaseError::fail)?;
        }
        let mut b = a.clone();
        b.clamp_past(now);
        prop_assert_eq!(b.arbiter.stats(), Default::default());
        for w in b.arbiter.workers().values() {
            prop_assert!(w.spawned_at >= now && w.last_seen >= now && w.alive_window.0 >= now);
        }
        let mut then = now;
        for s in after {
            let ra = apply(&mut a, &mut now, s);
            let rb = apply(&mut b, &mut then, s);
            prop_assert_eq!(&ra, &rb, "after {:?}", s);
            if ra.is_err() {
                break;
            }
        }
    }

    /// A worker core moved back by `d` does what the original does `d` later.
    #[test]
    fn a_worker_moved_back_in_time_behaves_alike(
        inputs in proptest::collection::vec((0u32..3_000, 0u8..6), 1..40),
        split in 0usize..40,
        back_ms in 0u64..1_000_000,
        asynchronous in any::<bool>(),
    ) {
        let mut a = started_worker(Duration::from_secs(2), 0, asynchronous);
        let mut now = T0;
        let feed = |w: &mut Worker, now: Instant, i: (u32, u8)| {
            // An ALIVE carries the worker's own clock, which the translation moves too (and the
            // arbiter never reads it for liveness, B05).
            feed_worker(w, now, i)
                .into_iter()
                .map(|a| match a {
                    worker::Action::Send(WorkerMsg::Alive { .. }) => {
                        worker::Action::Send(WorkerMsg::Alive { timestamp: 0 })
                    }
                    a => a,
                })
                .collect::<Vec<_>>()
        };
        let split = split.min(inputs.len());
        for &i in &inputs[..split] {
            now = now + Duration::from_millis(u64::from(i.0));
            feed(&mut a, now, i);
        }
        let d = Duration::from_millis(back_ms);
        let mut b = a.clone();
        b.translate_back(d);
        for &i in &inputs[split..] {
            prop_assert_eq!(b.poll_timeout(), a.poll_timeout().map(|t| t - d));
            now = now + Duration::from_millis(u64::from(i.0));
            prop_assert_eq!(feed(&mut a, now, i), feed(&mut b, now - d, i));
        }
    }

    /// A worker core whose last heartbeat is raised to the present, under a timeout far beyond
    /// the time a run lets pass, does what the original does; without a request budget its
    /// request count starts over (it decides nothing then), with one it is kept.
    #[test]
    fn a_worker_with_its_past_clamped_behaves_alike(
        inputs in proptest::collection::vec((0u32..3_000, 0u8..6), 1..40),
        split in 0usize..40,
        max_requests in 0u32..4,
        asynchronous in any::<bool>(),
    ) {
        let mut a = started_worker(Duration::from_secs(1_000_000), max_requests, asynchronous);
        let mut now = T0;
        let feed = feed_worker;
        let split = split.min(inputs.len());
        for &i in &inputs[..split] {
            now = now + Duration::from_millis(u64::from(i.0));
            feed(&mut a, now, i);
        }
        let mut b = a.clone();
        b.clamp_past(now);
        let kept = if max_requests == 0 { 0 } else { a.requests() };
        prop_assert_eq!(b.requests(), kept);
        for &i in &inputs[split..] {
            now = now + Duration::from_millis(u64::from(i.0));
            prop_assert_eq!(feed(&mut a, now, i), feed(&mut b, now, i));
        }
    }
}

/// A started worker core (signaled accept) with this timeout and budget, sync or async.
fn started_worker(timeout: Duration, max_requests: u32, asynchronous: bool) -> Worker {
    let kind = if asynchronous { WorkerKind::Async { connections: 2 } } else { WorkerKind::Sync };
    let config = WorkerConfig {
        accept_mode: herd_protocol::arbiter::AcceptMode::Signaled,
        timeout,
        max_requests,
        kind,
    };
    let mut w = Worker::new(config, T0);
    w.start(T0);
    w
}

/// Feeds one drawn input (its kind `k`) at `now`, then the timeout pass; the actions.
fn feed_worker(w: &mut Worker, now: Instant, (_, k): (u32, u8)) -> Vec<worker::Action> {
    let input = match k {
        0 => worker::Input::Message(ArbiterMsg::Accept { socket: ListenerId(0) }),
        1 => worker::Input::Accepted(ListenerId(0)),
        2 => worker::Input::AcceptEmpty,
        3 => worker::Input::AcceptFailed,
        4 => worker::Input::RequestDone,
        _ => worker::Input::ConnectionClosed,
    };
    w.handle(now, input);
    w.handle_timeout(now);
    std::iter::from_fn(|| w.poll_action()).collect()
}
