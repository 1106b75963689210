//! Tests that pin behaviour the scenario tests left loose, written from what `cargo mutants`
//! found alive (docs/verification.md): the generator's exact stream, time arithmetic, signal
//! batches, registry bookkeeping, the decoder's frame bound, dispatch across listeners, the
//! invariant names, and the arbiter's counters and stop rules.

use herd_protocol::arbiter::{
    AcceptMode, Action, Arbiter, Config, ExitStatus, Input, KillSignal, Life, MAX_WORKERS, WorkerId,
};
use herd_protocol::dispatch::Dispatcher;
use herd_protocol::invariants::{Invariant, Violation};
use herd_protocol::message::{DecodeError, Decoder, ListenerId, WorkerMsg};
use herd_protocol::registry::{Bump, Coherence, Registry, SequenceStore, Sequences, SharedSequences};
use herd_protocol::rng::Rng;
use herd_protocol::signals::{Sig, SignalQueue};
use herd_protocol::time::Instant;
use std::time::Duration;

const MS: u64 = 1_000_000;

#[test]
fn rng_is_splitmix64_exactly() {
    let mut r = Rng::new(0);
    assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
    assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    assert_eq!(r.next_u64(), 0x06c4_5d18_8009_454f);
}

#[test]
fn rng_up_to_and_chance_stay_in_range_and_are_roughly_fair() {
    let mut r = Rng::new(7);
    assert!((0..1000).all(|_| r.up_to(0) == 0));
    let mut seen = [0u32; 10];
    for _ in 0..10_000 {
        let v = r.up_to(9);
        assert!(v <= 9);
        seen[v as usize] += 1;
    }
    assert!(seen.iter().all(|&n| (800..1200).contains(&n)), "{seen:?}");
    assert!((0..1000).all(|_| !r.chance(0.0)));
    assert!((0..1000).all(|_| r.chance(1.0)));
    let hits = (0..10_000).filter(|_| r.chance(0.25)).count();
    assert!((2_300..2_700).contains(&hits), "{hits}");
}

#[test]
fn time_arithmetic_saturates_and_prints() {
    let (a, b) = (Instant(5_000 * MS), Instant(2_000 * MS));
    assert_eq!(a.saturating_since(b), Duration::from_secs(3));
    assert_eq!(b.saturating_since(a), Duration::ZERO);
    assert_eq!(a - Duration::from_secs(3), b);
    assert_eq!(b - Duration::from_secs(5), Instant::ZERO);
    assert_eq!(format!("{:?}", Instant(1_500 * MS + 2_000)), "1.500002s");
}

#[test]
fn signal_batches_count() {
    let q = SignalQueue::new();
    assert!(q.drain().is_empty());
    assert_eq!(q.drain().total(), 0);
    q.push(Sig::Ttin);
    q.push(Sig::Ttin);
    q.push(Sig::Hup);
    let b = q.drain();
    assert!(!b.is_empty());
    assert_eq!(b.total(), 3);
}

fn seq(registry: u64, cache: u64) -> Sequences {
    Sequences { registry, cache }
}

#[test]
fn cache_bumps_advance_the_view_only_when_nobody_else_bumped() {
    let mut c = Coherence::new(seq(4, 7));
    c.invalidate_cache();
    assert_eq!(c.commit(), Some(Bump::Cache));
    c.bumped(Bump::Cache, seq(4, 8));
    assert_eq!(c.seen(), seq(4, 8));
    c.invalidate_cache();
    let _ = c.commit();
    // Someone else bumped the cache too: keep the old view, clear on the next check.
    c.bumped(Bump::Cache, seq(4, 10));
    assert_eq!(c.seen(), seq(4, 8));
}

#[test]
fn a_registry_changes_its_value_and_records_the_invalidation() {
    let mut r = Registry::new(5u32, seq(1, 0));
    assert_eq!(r.coherence().seen(), seq(1, 0));
    r.change(|v| *v = 6);
    assert_eq!(*r.checked(), 6);
    assert_eq!(r.coherence_mut().commit(), Some(Bump::Registry));
}

#[test]
fn shared_sequences_are_a_store() {
    let s = SharedSequences::new();
    let store: &dyn SequenceStore<Error = std::convert::Infallible> = &s;
    assert_eq!(store.bump(Bump::Registry).unwrap(), seq(1, 0));
    assert_eq!(store.bump(Bump::Cache).unwrap(), seq(1, 1));
    assert_eq!(store.get().unwrap(), seq(1, 1));
}

#[test]
fn the_frame_bound_is_exact() {
    // 31 bytes and LF: within the bound (a number too large, but a frame).
    let ok = format!("ALIVE:{}\n", "1".repeat(25));
    assert_eq!(ok.len(), 32);
    let mut d = Decoder::<WorkerMsg>::new();
    assert_eq!(d.decode(ok.as_bytes()).1, Some(Err(DecodeError::Overflow)));
    // 32 bytes and LF: too long.
    let long = format!("ALIVE:{}\n", "1".repeat(26));
    let mut d = Decoder::<WorkerMsg>::new();
    assert_eq!(d.decode(long.as_bytes()).1, Some(Err(DecodeError::TooLong)));
    assert!(format!("{d:?}").contains("Decoder"));
}

#[test]
fn dispatch_goes_round_robin_over_listeners_with_a_backlog() {
    let mut d = Dispatcher::new(3);
    let _: Vec<_> = d.sync_watches(true).collect();
    assert_eq!(d.books().len(), 3);
    d.ready(ListenerId(0), Some(2));
    d.ready(ListenerId(2), Some(2));
    for w in 0..4 {
        d.push_idle(WorkerId(w));
    }
    let got: Vec<u16> = std::iter::from_fn(|| d.next_dispatch()).map(|(_, l)| l.0).collect();
    assert_eq!(got, vec![0, 2, 0, 2]);
    assert_eq!(d.books()[0].outstanding, 2);
    d.push_idle(WorkerId(9));
    d.ready(ListenerId(1), Some(1));
    d.close();
    assert!(d.idle().is_empty());
    assert!(d.books().iter().all(|b| b.backlog == 0));
}

#[test]
fn invariants_have_their_documented_names_and_violations_print_them() {
    let names: Vec<&str> = Invariant::ALL.iter().map(|i| i.name()).collect();
    assert_eq!(
        names,
        [
            "no-lost-wakeup",
            "single-wakeup",
            "no-stale-registry",
            "recycling",
            "liveness-kill",
            "worker-count",
            "reaping",
            "graceful-stop",
            "single-child-master",
            "consistency",
            "fair-dispatch",
            "cron-exclusive",
            "cron-progress"
        ]
    );
    let v = Violation::new(Invariant::Reaping, "w3 signalled after it was reaped");
    let shown = v.to_string();
    assert!(shown.contains("reaping") && shown.contains("w3 signalled"), "{shown}");
}

fn config(workers: u32) -> Config {
    Config {
        workers,
        timeout: Some(Duration::from_secs(10)),
        graceful_timeout: Duration::from_secs(5),
        kill_grace: Duration::from_secs(1),
        listeners: 1,
        ..Config::default()
    }
}

struct A {
    a: Arbiter,
}

impl A {
    fn new(c: Config) -> (A, Vec<Action>) {
        let mut a = Arbiter::new(c, Instant::ZERO).unwrap();
        let acts = std::iter::from_fn(|| a.poll_action()).collect();
        (A { a }, acts)
    }
    fn at(&mut self, ms: u64, input: Input) -> Vec<Action> {
        self.a.handle(Instant(ms * MS), input);
        std::iter::from_fn(|| self.a.poll_action()).collect()
    }
    fn tick(&mut self, ms: u64) -> Vec<Action> {
        self.a.handle_timeout(Instant(ms * MS));
        std::iter::from_fn(|| self.a.poll_action()).collect()
    }
    fn msg(&mut self, ms: u64, from: u64, msg: WorkerMsg) -> Vec<Action> {
        self.at(ms, Input::Message { from: WorkerId(from), msg })
    }
}

fn kills(acts: &[Action]) -> Vec<(WorkerId, KillSignal)> {
    acts.iter()
        .filter_map(|a| match *a {
            Action::Kill { id, signal, .. } => Some((id, signal)),
            _ => None,
        })
        .collect()
}

#[test]
fn configs_at_the_worker_limit() {
    assert!(Config { workers: MAX_WORKERS, ..config(1) }.validate().is_ok());
    assert!(Config { workers: MAX_WORKERS + 1, ..config(1) }.validate().is_err());
}

#[test]
fn getters_follow_generation_reexec_and_time() {
    let (mut s, _) = A::new(config(1));
    assert_eq!(s.a.generation(), 0);
    s.at(5, Input::Signal(Sig::Hup));
    assert_eq!(s.a.generation(), 1);
    assert_eq!(s.a.now(), Instant(5 * MS));
    assert!(!s.a.reexec_running());
    s.at(6, Input::Signal(Sig::Usr2));
    assert!(s.a.reexec_running());
    s.at(7, Input::ReexecEnded);
    assert!(!s.a.reexec_running());
}

#[test]
fn counters_count_exactly() {
    let (mut s, _) = A::new(config(2));
    for w in 0..2 {
        s.msg(1, w, WorkerMsg::Accept);
    }
    s.at(2, Input::Ready { socket: ListenerId(0), queued: Some(2) });
    s.msg(3, 0, WorkerMsg::Accepted { socket: ListenerId(0) });
    s.msg(3, 1, WorkerMsg::Accepted { socket: ListenerId(0) });
    assert_eq!(s.a.workers()[&WorkerId(0)].requests, 1);
    s.msg(4, 0, WorkerMsg::Accept);
    s.at(5, Input::Ready { socket: ListenerId(0), queued: Some(1) });
    s.msg(6, 0, WorkerMsg::Accepted { socket: ListenerId(0) });
    assert_eq!(s.a.workers()[&WorkerId(0)].requests, 2);
    s.msg(7, 0, WorkerMsg::Bye { reason: herd_protocol::message::ByeReason::Recycle });
    s.at(8, Input::Exited { id: WorkerId(0), status: ExitStatus::Code(0) });
    s.at(9, Input::Exited { id: WorkerId(1), status: ExitStatus::Signaled(9) });
    // Two replacements die before booting, one could not be forked.
    s.at(10, Input::Exited { id: WorkerId(2), status: ExitStatus::Code(1) });
    s.at(11, Input::SpawnFailed { id: WorkerId(3) });
    let st = s.a.stats();
    assert_eq!((st.spawns, st.dispatches, st.recycles), (4, 3, 1));
    assert_eq!((st.deaths, st.boot_failures), (3, 2));
}

#[test]
fn a_worker_that_said_bye_gets_its_graceful_timeout() {
    let (mut s, _) = A::new(config(1));
    s.msg(1, 0, WorkerMsg::Accept);
    s.msg(2, 0, WorkerMsg::Bye { reason: herd_protocol::message::ByeReason::Recycle });
    assert!(kills(&s.tick(3)).is_empty(), "not killed right after BYE");
    assert!(kills(&s.tick(4_999)).is_empty());
    assert_eq!(kills(&s.tick(5_002)), vec![(WorkerId(0), KillSignal::Kill)]);
}

#[test]
fn answers_must_name_the_listener_dispatched() {
    let (mut s, _) = A::new(Config { listeners: 2, ..config(1) });
    s.msg(1, 0, WorkerMsg::Accept);
    s.at(2, Input::Ready { socket: ListenerId(0), queued: Some(1) });
    let acts = s.msg(3, 0, WorkerMsg::Accepted { socket: ListenerId(1) });
    assert_eq!(kills(&acts), vec![(WorkerId(0), KillSignal::Kill)]);
    let (mut s, _) = A::new(Config { listeners: 2, ..config(1) });
    s.msg(1, 0, WorkerMsg::Accept);
    s.at(2, Input::Ready { socket: ListenerId(0), queued: Some(1) });
    let acts = s.msg(3, 0, WorkerMsg::Empty { socket: ListenerId(1) });
    assert_eq!(kills(&acts), vec![(WorkerId(0), KillSignal::Kill)]);
}

#[test]
fn accept_requests_are_illegal_in_shared_mode() {
    let (mut s, _) = A::new(Config { accept_mode: AcceptMode::Shared, ..config(1) });
    s.msg(1, 0, WorkerMsg::Alive { timestamp: 1 });
    let acts = s.msg(2, 0, WorkerMsg::Accept);
    assert_eq!(kills(&acts), vec![(WorkerId(0), KillSignal::Kill)]);
}

#[test]
fn a_retiring_worker_is_never_given_work() {
    let (mut s, _) = A::new(config(2));
    s.msg(1, 0, WorkerMsg::Accept);
    s.msg(1, 1, WorkerMsg::Accept);
    s.at(2, Input::Signal(Sig::Ttou)); // retires one of them
    let retired = *s.a.workers().iter().find(|(_, w)| w.life != Life::Active).unwrap().0;
    // It finishes and asks again; an EMPTY also must not re-queue it.
    s.msg(3, retired.0, WorkerMsg::Accept);
    assert!(!s.a.dispatcher().idle().contains(&retired));
    let acts = s.at(4, Input::Ready { socket: ListenerId(0), queued: Some(2) });
    assert!(!acts.iter().any(|a| matches!(a, Action::Send { to, .. } if *to == retired)));
}

#[test]
fn alive_floods_are_judged_per_half_timeout_window() {
    let (mut s, _) = A::new(config(1));
    // Twenty heartbeats 1.2 s apart: at most five in any 5 s window, never a flood.
    for k in 0..20u64 {
        let acts = s.msg(1 + k * 1_200, 0, WorkerMsg::Alive { timestamp: k });
        assert!(kills(&acts).is_empty(), "heartbeat {k}");
    }
}

#[test]
fn commands_after_a_stop_change_nothing() {
    let (mut s, _) = A::new(config(1));
    s.msg(1, 0, WorkerMsg::Accept);
    s.at(2, Input::Signal(Sig::Term));
    let acts = s.at(3, Input::Signal(Sig::Ttin));
    assert!(!acts.iter().any(|a| matches!(a, Action::Spawn { .. })));
    assert_eq!(s.a.target(), 1);
}

#[test]
fn term_asks_with_term_and_quit_with_quit() {
    let (mut s, _) = A::new(config(1));
    s.msg(1, 0, WorkerMsg::Accept);
    assert_eq!(kills(&s.at(2, Input::Signal(Sig::Term))), vec![(WorkerId(0), KillSignal::Term)]);
    let (mut s, _) = A::new(config(1));
    s.msg(1, 0, WorkerMsg::Accept);
    assert_eq!(kills(&s.at(2, Input::Signal(Sig::Quit))), vec![(WorkerId(0), KillSignal::Quit)]);
}

#[test]
fn a_worker_retired_before_a_stop_keeps_its_earlier_deadline() {
    let (mut s, _) = A::new(Config { graceful_timeout: Duration::from_secs(5), ..config(2) });
    s.msg(1, 0, WorkerMsg::Accept);
    s.msg(1, 1, WorkerMsg::Accept);
    s.at(1_000, Input::Signal(Sig::Ttou)); // retired at 1 s: killed at 6 s if still there
    let retired = *s.a.workers().iter().find(|(_, w)| w.life != Life::Active).unwrap().0;
    s.at(3_000, Input::Signal(Sig::Term)); // the stop's deadline is 8 s
    assert_eq!(kills(&s.tick(6_001)), vec![(retired, KillSignal::Kill)]);
}

#[test]
fn a_soft_killed_worker_is_hard_killed_at_the_stop_deadline_if_that_comes_first() {
    let (mut s, _) = A::new(Config {
        kill_grace: Duration::from_secs(3),
        graceful_timeout: Duration::from_millis(500),
        ..config(1)
    });
    s.msg(1, 0, WorkerMsg::Accept);
    s.at(2, Input::Ready { socket: ListenerId(0), queued: Some(1) });
    s.msg(3, 0, WorkerMsg::Accepted { socket: ListenerId(0) });
    // Silent: ABRT at 10.003 s, KILL due at 13.003 s.
    assert_eq!(kills(&s.tick(10_003)), vec![(WorkerId(0), KillSignal::Abrt)]);
    s.at(10_100, Input::Signal(Sig::Term)); // deadline 10.6 s
    assert!(kills(&s.tick(10_601)).contains(&(WorkerId(0), KillSignal::Kill)), "killed at the stop deadline");
}

#[test]
fn a_stopping_server_gives_a_silent_worker_its_graceful_timeout_not_the_request_timeout() {
    let (mut s, _) = A::new(Config { graceful_timeout: Duration::from_secs(60), ..config(1) });
    s.msg(1, 0, WorkerMsg::Accept);
    s.at(2, Input::Ready { socket: ListenerId(0), queued: Some(1) });
    s.msg(3, 0, WorkerMsg::Accepted { socket: ListenerId(0) });
    s.at(1_000, Input::Signal(Sig::Term));
    assert!(kills(&s.tick(10_010)).is_empty(), "no ABRT for silence while the server stops");
    assert_eq!(kills(&s.tick(61_001)), vec![(WorkerId(0), KillSignal::Kill)]);
}

#[test]
fn a_retiring_worker_timed_out_is_hard_killed_at_its_earlier_stop_deadline() {
    let (mut s, _) = A::new(Config { kill_grace: Duration::from_secs(3), ..config(2) });
    s.msg(1, 0, WorkerMsg::Accept);
    s.msg(1, 1, WorkerMsg::Accept);
    s.at(2, Input::Ready { socket: ListenerId(0), queued: Some(1) });
    s.msg(3, 0, WorkerMsg::Accepted { socket: ListenerId(0) }); // w0 busy and silent from 3 ms
    s.msg(3, 1, WorkerMsg::Alive { timestamp: 3 });
    s.at(6_000, Input::Signal(Sig::Ttou)); // retires the oldest: w0, busy
    let retired = *s.a.workers().iter().find(|(_, w)| w.life != Life::Active).unwrap().0;
    assert_eq!(retired, WorkerId(0));
    // Stop deadline 11.000 s; silent since 0.003 s: ABRT at 10.003 s, KILL at 11.000 s, not 13.003 s.
    s.msg(9_000, 1, WorkerMsg::Alive { timestamp: 9 });
    assert_eq!(kills(&s.tick(10_003)), vec![(WorkerId(0), KillSignal::Abrt)]);
    assert_eq!(kills(&s.tick(11_001)), vec![(WorkerId(0), KillSignal::Kill)]);
}

#[test]
fn a_retiring_worker_that_finds_nothing_is_not_given_work_again() {
    let (mut s, _) = A::new(config(2));
    s.msg(1, 0, WorkerMsg::Accept);
    s.msg(1, 1, WorkerMsg::Accept);
    s.at(2, Input::Ready { socket: ListenerId(0), queued: Some(1) }); // dispatched to w0
    s.at(3, Input::Signal(Sig::Hup)); // a new generation: both old ones retire as it boots
    let new: Vec<u64> = s.a.workers().keys().map(|w| w.0).filter(|&w| w >= 2).collect();
    for w in new {
        s.msg(4, w, WorkerMsg::Accept);
    }
    s.msg(5, 0, WorkerMsg::Empty { socket: ListenerId(0) });
    assert!(!s.a.dispatcher().idle().contains(&WorkerId(0)), "a retiring worker is not idle");
}

#[test]
fn quit_during_a_graceful_stop_escalates() {
    let (mut s, _) = A::new(config(1));
    s.msg(1, 0, WorkerMsg::Accept);
    s.at(2, Input::Signal(Sig::Term));
    assert_eq!(kills(&s.at(3, Input::Signal(Sig::Quit))), vec![(WorkerId(0), KillSignal::Quit)]);
}

#[test]
fn a_soft_killed_worker_asked_to_stop_keeps_its_earlier_hard_kill() {
    let (mut s, _) = A::new(Config {
        kill_grace: Duration::from_secs(1),
        graceful_timeout: Duration::from_secs(5),
        ..config(1)
    });
    s.msg(1, 0, WorkerMsg::Accept);
    s.at(2, Input::Ready { socket: ListenerId(0), queued: Some(1) });
    s.msg(3, 0, WorkerMsg::Accepted { socket: ListenerId(0) });
    assert_eq!(kills(&s.tick(10_003)), vec![(WorkerId(0), KillSignal::Abrt)]); // KILL due 11.003 s
    s.at(10_100, Input::Signal(Sig::Term)); // stop deadline 15.1 s
    assert!(kills(&s.tick(11_004)).contains(&(WorkerId(0), KillSignal::Kill)), "not left until 15.1 s");
}
