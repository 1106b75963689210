//! One test per timer kind of the timer table: `poll_timeout` names the deadline, nothing happens
//! a nanosecond before it, and the timer's action happens at it (two-sided: not late, not early).

use super::*;

impl Script {
    /// `handle_timeout` at `t`, which must be the core's own `poll_timeout`.
    fn tick_at(&mut self, t: Instant) -> Vec<Action> {
        self.now = t;
        self.tick()
    }

    /// The timer is pending at `at`, is the earliest, and fires at `at` and not a nanosecond
    /// before. Returns the actions at `at`.
    fn fires_at(&mut self, timer: Timer, at: Instant) -> Vec<Action> {
        assert_eq!(self.a().timer(timer), Some(at), "{timer:?}\n{}", self.log);
        assert_eq!(self.a().poll_timeout(), Some(at), "poll_timeout is the earliest timer ({timer:?})");
        assert!(self.a().timers().any(|(t, when)| t == timer && when == at));
        let early = self.tick_at(Instant(at.0 - 1));
        assert!(
            early.iter().all(|a| matches!(a, Action::Poll(_) | Action::Watch(_) | Action::Unwatch(_))),
            "{timer:?} acted early: {early:?}"
        );
        self.tick_at(at)
    }
}

fn config_long_timeout(workers: u32) -> Config {
    Config { timeout: Some(Duration::from_secs(100)), ..config(workers) }
}

#[test]
fn silence_of_an_active_worker() {
    let mut s = Script::new(config(1));
    s.at(1).boot_all();
    let w = s.spawned[0];
    let acts = s.fires_at(Timer::Silence(w), Instant(10_001 * MS));
    assert_eq!(kills(&acts), vec![(w, KillSignal::Abrt)]);
    assert_eq!(s.a().timer(Timer::Silence(w)), None, "a soft-killed worker is no longer timed for silence");
}

/// No timeout (`--timeout 0`): no silence timer for any worker, however long it is silent, and
/// the pace of heartbeats (the flood rule) is [`UNTIMED_PACE`]; a stop still ends at its deadline.
#[test]
fn no_timeout_no_silence_timer() {
    let mut s = Script::new(Config { timeout: None, ..config(2) });
    s.at(1).boot_all();
    assert_eq!(s.a().config().pace(), UNTIMED_PACE);
    for &w in &s.spawned.clone() {
        assert_eq!(s.a().timer(Timer::Silence(w)), None);
    }
    assert_eq!(s.a().poll_timeout(), None, "nothing is ever due");
    let acts = s.at(3_600_000).tick();
    assert!(kills(&acts).is_empty(), "an hour of silence: {acts:?}");
    // A retiring worker is bound by its grace alone.
    let old = s.spawned[0];
    assert_eq!(kills(&s.at(3_600_001).input(Input::Signal(Sig::Ttou))), vec![(old, KillSignal::Term)]);
    assert_eq!(s.a().timer(Timer::Silence(old)), None);
    let acts = s.fires_at(Timer::Grace(old), Instant(3_605_001 * MS));
    assert_eq!(kills(&acts), vec![(old, KillSignal::Kill)]);
}

#[test]
fn kill_grace_after_the_soft_kill() {
    let mut s = Script::new(config(1));
    s.at(1).boot_all();
    let w = s.spawned[0];
    s.at(10_001).tick();
    let acts = s.fires_at(Timer::Grace(w), Instant(11_001 * MS));
    assert_eq!(kills(&acts), vec![(w, KillSignal::Kill)]);
}

#[test]
fn grace_of_a_retired_worker() {
    let mut s = Script::new(config_long_timeout(2));
    s.at(1).boot_all();
    let old = s.spawned[0];
    assert_eq!(kills(&s.at(2).input(Input::Signal(Sig::Ttou))), vec![(old, KillSignal::Term)]);
    let acts = s.fires_at(Timer::Grace(old), Instant(5_002 * MS));
    assert_eq!(kills(&acts), vec![(old, KillSignal::Kill)]);
}

/// The late kill of issue #20 (B21): a retiring worker (HUP) busy with a hung request is still
/// bound by the timeout while the server runs, as gunicorn's murder_workers does; its silence is
/// earlier than its grace, and `poll_timeout` must say so (it used to report only the grace).
#[test]
fn silence_of_a_retiring_worker_while_the_server_runs() {
    let mut s = Script::new(Config { graceful_timeout: Duration::from_secs(60), ..config(1) });
    s.at(1).boot_all();
    let old = s.spawned[0];
    s.at(2).input(ready(1));
    s.at(3).msg(old, WorkerMsg::Accepted { socket: ListenerId(0) });
    s.at(4).input(Input::Signal(Sig::Hup));
    let new = *s.spawned.last().unwrap();
    assert_eq!(kills(&s.at(5).msg(new, WorkerMsg::Accept)), vec![(old, KillSignal::Term)]);
    assert_eq!(s.a().timer(Timer::Grace(old)), Some(Instant(60_005 * MS)));
    let acts = s.fires_at(Timer::Silence(old), Instant(10_003 * MS));
    assert_eq!(kills(&acts), vec![(old, KillSignal::Abrt)]);
    // The hard kill follows after kill_grace, not at the far later end of the grace.
    assert_eq!(s.a().timer(Timer::Grace(old)), Some(Instant(11_003 * MS)));
}

#[test]
fn a_stopping_server_gives_graceful_timeout_not_the_request_timeout() {
    let mut s = Script::new(Config { graceful_timeout: Duration::from_secs(60), ..config(1) });
    s.at(1).boot_all();
    let w = s.spawned[0];
    s.at(2).input(Input::Signal(Sig::Term));
    assert_eq!(s.a().timer(Timer::Silence(w)), None);
    assert_eq!(s.a().timer(Timer::StopDeadline), Some(Instant(60_002 * MS)));
    let acts = s.fires_at(Timer::Grace(w), Instant(60_002 * MS));
    assert_eq!(kills(&acts), vec![(w, KillSignal::Kill)]);
    assert_eq!(s.a().timer(Timer::StopDeadline), None, "nobody left to kill");
}

#[test]
fn stop_deadline() {
    let mut s = Script::new(config_long_timeout(2));
    s.at(1).boot_all();
    s.at(2).input(Input::Signal(Sig::Int));
    let acts = s.fires_at(Timer::StopDeadline, Instant(5_002 * MS));
    assert_eq!(kills(&acts).len(), 2);
    assert!(kills(&acts).iter().all(|&(_, sig)| sig == KillSignal::Kill));
}

#[test]
fn spawn_backoff() {
    let mut s = Script::new(Config { spawn_backoff: Duration::from_millis(100), ..config_long_timeout(1) });
    let w = s.spawned[0];
    // Dies before its first message: a boot failure, the respawn waits for the backoff.
    let acts = s.at(1).exit(w, ExitStatus::Code(1));
    assert!(!acts.iter().any(|a| matches!(a, Action::Spawn { .. })));
    let acts = s.fires_at(Timer::SpawnBackoff, Instant(101 * MS));
    assert_eq!(acts.iter().filter(|a| matches!(a, Action::Spawn { .. })).count(), 1);
    assert_eq!(s.a().timer(Timer::SpawnBackoff), None);
}

#[test]
fn an_exited_arbiter_has_no_timer() {
    let mut s = Script::new(config_long_timeout(1));
    let w = s.spawned[0];
    s.at(1).boot_all();
    s.at(2).input(Input::Signal(Sig::Quit));
    s.at(3).exit(w, ExitStatus::Code(0));
    assert_eq!(s.a().phase(), Phase::Exited);
    assert_eq!(s.a().timers().count(), 0);
    assert_eq!(s.a().poll_timeout(), None);
}
