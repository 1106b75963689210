//! Scripted scenarios (insta snapshots of the action sequences) and one test per docs/bugs.md row that
//! concerns the arbiter. Every step runs through `invariants::Checked`, so each scenario is also
//! checked against every invariant.

use super::*;
use crate::invariants::Checked;
use crate::message::DecodeError;
use std::fmt::Write as _;

mod timers;

const MS: u64 = 1_000_000;

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

fn show(a: &Action) -> String {
    match *a {
        Action::Spawn { id, role: Role::Http, generation, max_requests } => {
            format!("spawn {id} gen{generation} budget={max_requests}")
        }
        Action::Spawn { id, role: Role::Cron, generation, max_requests } => {
            format!("spawn {id} cron gen{generation} budget={max_requests}")
        }
        Action::Send { to, msg } => format!("send {to} {msg}"),
        Action::Kill { id, signal, reason } => format!("kill {id} {signal:?} ({reason:?})"),
        Action::Watch(s) => format!("watch {s}"),
        Action::Unwatch(s) => format!("unwatch {s}"),
        Action::Poll(s) => format!("poll {s}"),
        Action::Exit { code, unlink_sockets } => format!("exit {code} unlink={unlink_sockets}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// Drives a checked arbiter and writes a readable log for snapshots.
struct Script {
    c: Checked,
    now: Instant,
    log: String,
    spawned: Vec<WorkerId>,
}

impl Script {
    fn new(config: Config) -> Self {
        let (c, actions) = Checked::new(config, Instant::ZERO).unwrap();
        let mut s = Script { c, now: Instant::ZERO, log: String::new(), spawned: Vec::new() };
        s.record("start", &actions);
        s
    }

    fn record(&mut self, what: &str, actions: &[Action]) {
        for a in actions {
            if let Action::Spawn { id, .. } = a {
                self.spawned.push(*id);
            }
        }
        let shown: Vec<String> = actions.iter().map(show).collect();
        let _ = writeln!(self.log, "{:>7}ms {what:<24} -> {}", self.now.0 / MS, shown.join(", "));
    }

    fn at(&mut self, ms: u64) -> &mut Self {
        self.now = Instant(ms * MS);
        self
    }

    fn input(&mut self, input: Input) -> Vec<Action> {
        let actions = self.c.step(self.now, input).unwrap_or_else(|v| panic!("{v}\n{}", self.log));
        let what = match input {
            Input::Message { from, msg } => format!("{from}: {msg}"),
            Input::Exited { id, status } => format!("{id} exited {status:?}"),
            Input::Signal(s) => format!("SIG{}", s.name()),
            other => format!("{other:?}"),
        };
        self.record(&what, &actions);
        actions
    }

    fn msg(&mut self, from: WorkerId, msg: WorkerMsg) -> Vec<Action> {
        self.input(Input::Message { from, msg })
    }

    fn tick(&mut self) -> Vec<Action> {
        let actions = self.c.tick(self.now).unwrap_or_else(|v| panic!("{v}\n{}", self.log));
        self.record("timeout", &actions);
        actions
    }

    fn a(&self) -> &Arbiter {
        &self.c.arbiter
    }

    /// Every worker that has not booted says ACCEPT (signaled mode).
    fn boot_all(&mut self) {
        let ids: Vec<WorkerId> =
            self.a().workers().iter().filter(|(_, w)| !w.booted).map(|(&id, _)| id).collect();
        for id in ids {
            self.msg(id, WorkerMsg::Accept);
        }
    }

    fn exit(&mut self, id: WorkerId, status: ExitStatus) -> Vec<Action> {
        self.input(Input::Exited { id, status })
    }

    /// Reaps every worker that was sent a stop or kill signal, as the runtime would after CHLD.
    fn reap_signalled(&mut self, actions: &[Action]) {
        for a in actions {
            if let Action::Kill { id, signal, .. } = *a {
                let status = match signal {
                    KillSignal::Term | KillSignal::Quit => ExitStatus::Code(0),
                    KillSignal::Abrt => ExitStatus::Signaled(6),
                    KillSignal::Kill => ExitStatus::Signaled(9),
                };
                if self.a().workers().contains_key(&id) {
                    self.exit(id, status);
                }
            }
        }
    }
}

fn ready(queued: u32) -> Input {
    Input::Ready { socket: ListenerId(0), queued: Some(queued) }
}

fn kills(actions: &[Action]) -> Vec<(WorkerId, KillSignal)> {
    actions
        .iter()
        .filter_map(|a| match *a {
            Action::Kill { id, signal, .. } => Some((id, signal)),
            _ => None,
        })
        .collect()
}

#[test]
fn scenario_boot_4() {
    let mut s = Script::new(config(4));
    s.at(5).boot_all();
    s.at(6).input(ready(1));
    assert_eq!(s.a().active(), 4);
    assert_eq!(s.a().stats().dispatches, 1);
    insta::assert_snapshot!(s.log);
}

#[test]
fn scenario_ttin_x3() {
    let mut s = Script::new(config(2));
    s.at(5).boot_all();
    for _ in 0..3 {
        s.at(10).input(Input::Signal(Sig::Ttin));
    }
    assert_eq!(s.a().target(), 5);
    assert_eq!(s.a().active(), 5);
    insta::assert_snapshot!(s.log);
}

#[test]
fn scenario_ttou_x5_never_below_one() {
    let mut s = Script::new(config(3));
    s.at(5).boot_all();
    let mut all = Vec::new();
    for _ in 0..5 {
        all.extend(s.at(10).input(Input::Signal(Sig::Ttou)));
    }
    assert_eq!(s.a().target(), 1);
    assert_eq!(s.a().active(), 1);
    s.at(20).reap_signalled(&all);
    assert_eq!(s.a().workers().len(), 1);
    insta::assert_snapshot!(s.log);
}

#[test]
fn scenario_hup_replaces_old_workers_as_new_ones_boot() {
    let mut s = Script::new(config(2));
    s.at(5).boot_all();
    let old: Vec<WorkerId> = s.a().workers().keys().copied().collect();
    let acts = s.at(100).input(Input::Signal(Sig::Hup));
    assert!(kills(&acts).is_empty(), "nobody is retired before a replacement is up");
    let new: Vec<WorkerId> = s.spawned[2..].to_vec();
    assert_eq!(new.len(), 2);
    let acts = s.at(150).msg(new[0], WorkerMsg::Accept);
    assert_eq!(kills(&acts), vec![(old[0], KillSignal::Term)], "one old worker per new one up");
    let acts = s.at(160).msg(new[1], WorkerMsg::Accept);
    assert_eq!(kills(&acts), vec![(old[1], KillSignal::Term)]);
    s.at(170).reap_signalled(&[acts[0]]);
    s.at(170).exit(old[0], ExitStatus::Code(0));
    assert!(s.a().workers().values().all(|w| w.generation == 1));
    insta::assert_snapshot!(s.log);
}

#[test]
fn scenario_worker_crash_is_respawned() {
    let mut s = Script::new(config(2));
    s.at(5).boot_all();
    let victim = s.spawned[0];
    let acts = s.at(50).exit(victim, ExitStatus::Signaled(9));
    assert!(matches!(acts[..], [Action::Spawn { .. }, ..]));
    assert_eq!(s.a().active(), 2);
    assert_eq!(s.a().phase(), Phase::Running, "a death by signal never halts (B09)");
    insta::assert_snapshot!(s.log);
}

#[test]
fn scenario_worker_boot_error_halts() {
    let mut s = Script::new(config(2));
    s.at(5).msg(WorkerId(1), WorkerMsg::Accept);
    let acts = s.at(10).exit(WorkerId(0), ExitStatus::Code(WORKER_BOOT_ERROR));
    assert_eq!(kills(&acts), vec![(WorkerId(1), KillSignal::Term)], "a halt is graceful (gunicorn's halt)");
    let acts = s.at(20).exit(WorkerId(1), ExitStatus::Code(0));
    assert_eq!(acts, vec![Action::Exit { code: WORKER_BOOT_ERROR, unlink_sockets: true }]);
    insta::assert_snapshot!(s.log);
}

#[test]
fn scenario_timeout_kill_soft_then_hard() {
    let mut s = Script::new(config(2));
    s.at(5).boot_all();
    let (a, b) = (s.spawned[0], s.spawned[1]);
    s.at(5_000).msg(b, WorkerMsg::Alive { timestamp: 5_000 });
    assert_eq!(s.a().poll_timeout(), Some(Instant(10_005 * MS)));
    let acts = s.at(10_005).tick();
    assert_eq!(kills(&acts), vec![(a, KillSignal::Abrt)]);
    let acts = s.at(11_005).tick();
    assert_eq!(kills(&acts), vec![(a, KillSignal::Kill)]);
    s.at(11_010).exit(a, ExitStatus::Signaled(9));
    assert_eq!(s.a().stats().timeouts, 1);
    insta::assert_snapshot!(s.log);
}

#[test]
fn scenario_max_requests_recycle() {
    let mut s = Script::new(Config { max_requests: 2, max_requests_jitter: 0, ..config(1) });
    s.at(1).boot_all();
    let w = s.spawned[0];
    for i in 0..2u64 {
        let acts = s.at(10 + i * 10).input(ready(1));
        assert_eq!(acts[0], Action::Send { to: w, msg: ArbiterMsg::Accept { socket: ListenerId(0) } });
        s.at(11 + i * 10).msg(w, WorkerMsg::Accepted { socket: ListenerId(0) });
        if i == 0 {
            s.at(12).msg(w, WorkerMsg::Accept);
        }
    }
    let acts = s.at(30).msg(w, WorkerMsg::Bye { reason: ByeReason::Recycle });
    assert!(matches!(acts[..], [Action::Spawn { .. }]), "the replacement starts before the exit");
    s.at(31).exit(w, ExitStatus::Code(0));
    assert_eq!(s.a().stats().recycles, 1);
    insta::assert_snapshot!(s.log);
}

#[test]
fn scenario_term_with_requests_in_flight() {
    let mut s = Script::new(config(2));
    s.at(5).boot_all();
    let (a, b) = (s.spawned[0], s.spawned[1]);
    s.at(10).input(ready(2));
    s.at(11).msg(a, WorkerMsg::Accepted { socket: ListenerId(0) });
    s.at(11).msg(b, WorkerMsg::Accepted { socket: ListenerId(0) });
    let acts = s.at(20).input(Input::Signal(Sig::Term));
    assert_eq!(kills(&acts), vec![(a, KillSignal::Term), (b, KillSignal::Term)]);
    s.at(30).input(Input::Signal(Sig::Term)); // a second TERM changes nothing
    s.at(500).exit(a, ExitStatus::Code(0)); // a finished its request
    let acts = s.at(5_020).tick(); // b hangs past graceful_timeout
    assert_eq!(kills(&acts), vec![(b, KillSignal::Kill)]);
    let acts = s.at(5_021).exit(b, ExitStatus::Signaled(9));
    assert_eq!(acts, vec![Action::Exit { code: 0, unlink_sockets: true }]);
    insta::assert_snapshot!(s.log);
}

#[test]
fn scenario_usr2_reexec() {
    let mut s = Script::new(config(1));
    s.at(5).boot_all();
    assert_eq!(s.at(10).input(Input::Signal(Sig::Usr2)), vec![Action::Reexec]);
    assert_eq!(s.at(11).input(Input::Signal(Sig::Usr2)), vec![], "B07: one child arbiter");
    s.at(20).input(Input::Signal(Sig::Term));
    let w = s.spawned[0];
    let acts = s.at(30).exit(w, ExitStatus::Code(0));
    assert_eq!(acts, vec![Action::Exit { code: 0, unlink_sockets: false }], "B08");
    insta::assert_snapshot!(s.log);
}

#[test]
fn b04_never_signals_a_reaped_worker() {
    let mut s = Script::new(config(1));
    s.at(5).boot_all();
    let w = s.spawned[0];
    s.at(6).exit(w, ExitStatus::Signaled(9));
    // Its timeout would have fallen now; the new worker is younger, so nothing is killed.
    let acts = s.at(10_005).tick();
    assert!(kills(&acts).iter().all(|(id, _)| *id != w));
}

#[test]
fn b05_liveness_uses_receive_time_not_the_worker_timestamp() {
    let mut s = Script::new(config(1));
    let w = s.spawned[0];
    // The worker's wall clock jumped a day back: its timestamp is ancient, it is not late.
    s.at(9_000).msg(w, WorkerMsg::Alive { timestamp: 0 });
    assert!(kills(&s.at(12_000).tick()).is_empty());
    // The arbiter's input time steps back to 1 ms: taken as the latest seen (12 000 ms).
    s.at(1).msg(w, WorkerMsg::Alive { timestamp: 1 });
    assert!(kills(&s.at(21_999).tick()).is_empty());
    assert_eq!(kills(&s.at(22_000).tick()), vec![(w, KillSignal::Abrt)]);
}

#[test]
fn b06_budgets_are_jittered_per_worker() {
    let mut s = Script::new(Config { max_requests: 100, max_requests_jitter: 50, ..config(16) });
    let budgets: std::collections::BTreeSet<u32> = s.a().workers().values().map(|w| w.max_requests).collect();
    assert!(budgets.len() >= 8, "16 workers drew only {budgets:?}");
    assert!(budgets.iter().all(|b| (100..=150).contains(b)));
    s.at(1).boot_all();
}

#[test]
fn b07_second_usr2_or_upgrade_forks_no_second_master() {
    let mut s = Script::new(config(1));
    assert_eq!(s.at(1).input(Input::Signal(Sig::Usr2)), vec![Action::Reexec]);
    assert_eq!(s.at(2).input(Input::Control(Command::Upgrade)), vec![]);
    s.at(3).input(Input::ReexecEnded);
    assert_eq!(s.at(4).input(Input::Signal(Sig::Usr2)), vec![Action::Reexec]);
}

#[test]
fn b09_death_by_signal_3_or_4_is_not_exit_code_3_or_4() {
    let mut s = Script::new(config(2));
    s.at(1).boot_all();
    let (a, b) = (s.spawned[0], s.spawned[1]);
    s.at(2).exit(a, ExitStatus::Signaled(3));
    s.at(3).exit(b, ExitStatus::Signaled(4));
    assert_eq!(s.a().phase(), Phase::Running);
    assert_eq!(s.a().active(), 2);
}

#[test]
fn b10_ttou_stops_a_worker() {
    let mut s = Script::new(config(3));
    s.at(1).boot_all();
    let acts = s.at(2).input(Input::Signal(Sig::Ttou));
    assert_eq!(kills(&acts), vec![(s.spawned[0], KillSignal::Term)], "the oldest is retired");
    assert_eq!(s.a().active(), 2);
}

#[test]
fn b15_connection_dispatched_to_a_worker_that_died_is_dispatched_again() {
    let mut s = Script::new(config(2));
    s.at(1).boot_all();
    let (a, b) = (s.spawned[0], s.spawned[1]);
    let acts = s.at(2).input(ready(1));
    assert_eq!(acts, vec![Action::Send { to: a, msg: ArbiterMsg::Accept { socket: ListenerId(0) } },]);
    let acts = s.at(3).exit(a, ExitStatus::Signaled(9));
    assert!(
        acts.contains(&Action::Send { to: b, msg: ArbiterMsg::Accept { socket: ListenerId(0) } }),
        "{acts:?}"
    );
}

#[test]
fn b16_empty_puts_the_worker_back_in_the_idle_queue() {
    let mut s = Script::new(config(1));
    s.at(1).boot_all();
    let w = s.spawned[0];
    s.at(2).input(ready(1));
    s.at(3).msg(w, WorkerMsg::Empty { socket: ListenerId(0) }); // spurious wakeup
    let acts = s.at(4).input(ready(1));
    assert_eq!(acts[0], Action::Send { to: w, msg: ArbiterMsg::Accept { socket: ListenerId(0) } });
}

#[test]
fn b17_one_connection_wakes_one_worker() {
    let mut s = Script::new(config(8));
    s.at(1).boot_all();
    let acts = s.at(2).input(ready(1));
    let sends = acts.iter().filter(|a| matches!(a, Action::Send { .. })).count();
    assert_eq!(sends, 1);
    // Readiness is level-triggered: a second report before the accept wakes nobody.
    let acts = s.at(3).input(ready(1));
    assert!(acts.is_empty(), "{acts:?}");
    // With TCP_INFO saying 3 are queued, exactly 3 are woken at once.
    let first = s.spawned[0];
    s.at(4).msg(first, WorkerMsg::Accepted { socket: ListenerId(0) });
    let acts = s.at(5).input(ready(3));
    assert_eq!(acts.iter().filter(|a| matches!(a, Action::Send { .. })).count(), 3);
}

#[test]
fn a_connection_arriving_while_a_dispatch_is_outstanding_is_dispatched_at_once() {
    // Found by herd-sim (seed 20, pipe delays only): with the listener unwatched while a dispatch
    // was outstanding, a second connection waited beside an idle worker for a whole round trip.
    let mut s = Script::new(config(2));
    s.at(1).boot_all();
    let (a, b) = (s.spawned[0], s.spawned[1]);
    assert_eq!(
        s.at(2).input(ready(1)),
        vec![Action::Send { to: a, msg: ArbiterMsg::Accept { socket: ListenerId(0) } }]
    );
    // a is still on its way to accept; a second connection arrives: the kernel says 2 queued.
    assert_eq!(
        s.at(3).input(ready(2)),
        vec![Action::Send { to: b, msg: ArbiterMsg::Accept { socket: ListenerId(0) } }]
    );
    // a accepted and b too, but a's ACCEPTED is late: the count undercounts, never over.
    s.at(4).msg(a, WorkerMsg::Accept); // illegal: a is dispatched
    assert_eq!(s.a().stats().protocol_errors, 1);
}

#[test]
fn unknown_queue_lengths_are_used_only_with_nothing_outstanding() {
    let mut s = Script::new(config(3));
    s.at(1).boot_all();
    let a = s.spawned[0];
    let unix = Input::Ready { socket: ListenerId(0), queued: None };
    assert_eq!(s.at(2).input(unix).len(), 1, "one connection known");
    assert_eq!(s.at(3).input(unix), vec![], "it may be the one a is taking");
    // After a's answer the arbiter re-checks the level itself.
    assert_eq!(
        s.at(4).msg(a, WorkerMsg::Accepted { socket: ListenerId(0) }),
        vec![Action::Poll(ListenerId(0))]
    );
    assert_eq!(s.at(5).input(unix).len(), 1);
}

#[test]
fn b19_graceful_stop_kills_a_hung_worker_at_the_deadline() {
    let mut s = Script::new(config(1));
    s.at(1).boot_all();
    s.at(10).input(Input::Signal(Sig::Term));
    assert_eq!(s.a().poll_timeout(), Some(Instant(5_010 * MS)));
    assert!(kills(&s.at(5_009).tick()).is_empty());
    assert_eq!(kills(&s.at(5_010).tick()), vec![(s.spawned[0], KillSignal::Kill)]);
}

#[test]
fn b20_a_respawned_worker_is_timed_from_its_own_spawn() {
    let mut s = Script::new(config(1));
    let first = s.spawned[0];
    s.at(9_000).exit(first, ExitStatus::Signaled(9)); // never booted
    // Backoff delays the respawn; the new worker must hang for a full timeout from its spawn.
    let t = s.a().poll_timeout().unwrap();
    s.now = t;
    s.tick();
    let second = *s.spawned.last().unwrap();
    assert_ne!(second, first);
    let spawned_at = s.a().workers()[&second].spawned_at;
    assert!(kills(&s.at(spawned_at.0 / MS + 9_999).tick()).is_empty());
    assert_eq!(kills(&s.at(spawned_at.0 / MS + 10_000).tick()), vec![(second, KillSignal::Abrt)]);
}

#[test]
fn boot_crashes_back_off_exponentially_one_probe_at_a_time() {
    let mut s = Script::new(Config { spawn_backoff: Duration::from_millis(100), ..config(4) });
    let mut t = 1;
    let mut gaps = Vec::new();
    // Every worker crashes before booting, over and over.
    for _ in 0..6 {
        let ids: Vec<WorkerId> = s.a().workers().keys().copied().collect();
        for id in ids {
            s.at(t).exit(id, ExitStatus::Code(1));
        }
        let next = s.a().poll_timeout().unwrap();
        gaps.push(next.0 / MS - t);
        t = next.0 / MS;
        s.at(t).tick();
        assert!(s.a().workers().len() <= 1, "one probe at a time, not a fork storm");
    }
    // Four crashes make the first delay 100 ms * 2^3; then it doubles per probe up to the cap.
    assert_eq!(gaps, vec![800, 1_600, 3_200, 6_400, 10_000, 10_000]);
    // One boot resets it: the rest are spawned at once.
    let probe = *s.a().workers().keys().next().unwrap();
    s.at(t + 1).msg(probe, WorkerMsg::Accept);
    assert_eq!(s.a().workers().len(), 4);
}

#[test]
fn hostile_worker_is_killed_and_replaced_and_its_dispatch_redone() {
    let mut s = Script::new(config(2));
    s.at(1).boot_all();
    let (a, b) = (s.spawned[0], s.spawned[1]);
    s.at(2).input(ready(1)); // dispatched to a
    // a forges an ACCEPT while dispatched, then garbage.
    let acts = s.at(3).msg(a, WorkerMsg::Accept);
    assert_eq!(kills(&acts), vec![(a, KillSignal::Kill)]);
    assert!(acts.iter().any(|x| matches!(x, Action::Spawn { .. })), "replaced at once");
    let acts = s.at(4).input(Input::Malformed { from: a, error: DecodeError::UnknownVerb });
    assert!(acts.is_empty(), "a killed worker is not killed twice");
    let acts = s.at(5).exit(a, ExitStatus::Signaled(9));
    assert!(acts.contains(&Action::Send { to: b, msg: ArbiterMsg::Accept { socket: ListenerId(0) } }));
    // An ACCEPTED nobody asked for is also fatal.
    let acts = s.at(6).msg(b, WorkerMsg::Empty { socket: ListenerId(0) });
    assert!(kills(&acts).is_empty());
    let acts = s.at(7).msg(b, WorkerMsg::Accepted { socket: ListenerId(0) });
    assert_eq!(kills(&acts), vec![(b, KillSignal::Kill)]);
    assert_eq!(s.a().stats().protocol_errors, 2);
}

#[test]
fn a_flood_of_alive_is_a_violation_but_steady_heartbeats_are_not() {
    let mut s = Script::new(config(2));
    s.at(1).boot_all();
    let (a, b) = (s.spawned[0], s.spawned[1]);
    // b heartbeats every timeout / 2 for a long time: never killed.
    for k in 1..=40u64 {
        let acts = s.at(k * 5_000).msg(b, WorkerMsg::Alive { timestamp: k });
        assert!(kills(&acts).is_empty(), "steady heartbeat {k}");
    }
    // a floods: MAX_ALIVES_PER_WINDOW in one window are tolerated, one more is not.
    let t = 200_001;
    for k in 0..u64::from(MAX_ALIVES_PER_WINDOW) {
        let acts = s.at(t).msg(a, WorkerMsg::Alive { timestamp: k });
        assert!(kills(&acts).is_empty(), "alive {k}");
    }
    let acts = s.at(t).msg(a, WorkerMsg::Alive { timestamp: 99 });
    assert_eq!(kills(&acts), vec![(a, KillSignal::Kill)]);
    assert_eq!(s.a().stats().protocol_errors, 1);
}

#[test]
fn winch_stops_all_workers_and_hup_brings_them_back() {
    let mut s = Script::new(config(3));
    s.at(1).boot_all();
    let acts = s.at(2).input(Input::Signal(Sig::Winch));
    assert_eq!(kills(&acts).len(), 3);
    assert_eq!(s.a().target(), 0);
    s.at(3).input(Input::Signal(Sig::Ttou));
    assert_eq!(s.a().target(), 0, "TTOU does not raise a zero target");
    let acts = s.at(4).input(Input::Signal(Sig::Hup));
    assert_eq!(acts.iter().filter(|a| matches!(a, Action::Spawn { .. })).count(), 3);
}

#[test]
fn control_commands_are_exact() {
    let mut s = Script::new(config(2));
    s.at(1).input(Input::Control(Command::Incr(10)));
    assert_eq!(s.a().target(), 12);
    assert_eq!(s.a().active(), 12);
    s.at(2).input(Input::Control(Command::Decr(100)));
    assert_eq!(s.a().target(), 1);
    s.at(3).input(Input::Control(Command::Incr(u32::MAX)));
    assert_eq!(s.a().target(), MAX_WORKERS);
}

#[test]
fn bad_configs_are_refused() {
    assert_eq!(
        Arbiter::new(Config { workers: 0, ..config(1) }, Instant::ZERO).err(),
        Some(ConfigError::Workers(0))
    );
    assert_eq!(
        Arbiter::new(Config { timeout: Some(Duration::ZERO), ..config(1) }, Instant::ZERO).err(),
        Some(ConfigError::Timeout(Duration::ZERO))
    );
    assert_eq!(
        Arbiter::new(Config { timeout: None, cron_workers: 1, ..config(1) }, Instant::ZERO).err(),
        Some(ConfigError::CronWithoutTimeout)
    );
    assert!(Arbiter::new(Config { timeout: None, ..config(1) }, Instant::ZERO).is_ok());
    assert_eq!(
        Arbiter::new(Config { listeners: 0, ..config(1) }, Instant::ZERO).err(),
        Some(ConfigError::NoListener(AcceptMode::Signaled))
    );
    assert!(
        Arbiter::new(Config { listeners: 0, accept_mode: AcceptMode::Shared, ..config(1) }, Instant::ZERO)
            .is_ok()
    );
}

#[test]
fn stop_deadline_does_not_spin_once_everyone_is_killed() {
    // Found by herd-sim (seed 10): after the stop deadline had SIGKILLed everything, the reaps
    // were still on their way and poll_timeout() kept answering the past deadline.
    let mut s = Script::new(config(2));
    s.at(1).boot_all();
    s.at(2).input(Input::Signal(Sig::Term));
    let acts = s.at(5_002).tick();
    assert_eq!(kills(&acts).len(), 2);
    assert_eq!(s.a().poll_timeout(), None, "nothing is due until the reaps arrive");
}

#[test]
fn a_worker_killed_for_its_grace_still_answers_its_dispatch() {
    // Found by herd-explore (10 steps): a worker SIGKILLed after its grace had accepted its
    // dispatch; its ACCEPTED was ignored, and the reap handed the connection out again.
    let mut s = Script::new(config(2));
    s.at(1).boot_all();
    let (a, b) = (s.spawned[0], s.spawned[1]);
    s.at(2).input(ready(1)); // dispatched to a, which accepts
    s.at(3).input(Input::Signal(Sig::Ttou)); // a is retired mid-request...
    assert_eq!(kills(&s.at(5_003).tick()), vec![(a, KillSignal::Kill)]); // ...and killed at its grace
    s.at(5_004).msg(a, WorkerMsg::Accepted { socket: ListenerId(0) }); // its answer, read after the kill
    let acts = s.at(5_005).exit(a, ExitStatus::Signaled(9));
    assert!(
        !acts.iter().any(|x| matches!(x, Action::Send { .. })),
        "b woken for a taken connection: {acts:?}"
    );
    // A worker caught lying is not believed, even about its dispatch.
    s.at(5_006).msg(b, WorkerMsg::Accepted { socket: ListenerId(0) });
    assert!(!s.a().workers().get(&b).is_some_and(|w| w.trusted));
}

#[test]
fn b02_chld_only_asks_the_loop_to_reap() {
    // gunicorn reaped and mutated the worker table inside the CHLD handler. Here CHLD is counted
    // by the handler and, on the main loop, only asks for a reap; the table changes on Exited.
    let mut s = Script::new(config(2));
    s.at(1).boot_all();
    let before = s.a().workers().clone();
    assert_eq!(s.at(2).input(Input::Signal(Sig::Chld)), vec![Action::Reap]);
    assert_eq!(s.a().workers(), &before);
}

#[test]
fn b08_exit_leaves_unix_sockets_to_a_running_child_arbiter() {
    let mut s = Script::new(config(1));
    s.at(1).boot_all();
    s.at(2).input(Input::Signal(Sig::Usr2));
    s.at(3).input(Input::Signal(Sig::Quit));
    let w = s.spawned[0];
    assert_eq!(s.at(4).exit(w, ExitStatus::Code(0)), vec![Action::Exit { code: 0, unlink_sockets: false }]);
    // Without a child arbiter, the sockets are ours to remove.
    let mut s = Script::new(config(1));
    s.at(1).input(Input::Signal(Sig::Quit));
    let w = s.spawned[0];
    assert_eq!(s.at(2).exit(w, ExitStatus::Code(0)), vec![Action::Exit { code: 0, unlink_sockets: true }]);
}

#[test]
fn scenario_cron_workers_are_supervised_apart_from_the_http_workers() {
    let mut s = Script::new(Config { cron_workers: 2, ..config(2) });
    let roles: Vec<Role> = s.a().workers().values().map(|w| w.role).collect();
    assert_eq!(roles, [Role::Http, Role::Http, Role::Cron, Role::Cron], "HTTP workers first");
    let cron: Vec<WorkerId> = s.spawned[2..].to_vec();
    for &id in &s.spawned.clone()[..2] {
        s.at(5).msg(id, WorkerMsg::Accept);
    }
    for &id in &cron {
        s.at(5).msg(id, WorkerMsg::Alive { timestamp: 5 });
    }
    // Connections go to HTTP workers only.
    let acts = s.at(6).input(ready(2));
    assert!(acts.iter().all(|a| !matches!(a, Action::Send { to, .. } if cron.contains(to))));
    // TTOU and TTIN resize the HTTP workers; the cron workers stay.
    let acts = s.at(10).input(Input::Signal(Sig::Ttou));
    assert!(kills(&acts).iter().all(|(id, _)| !cron.contains(id)), "{acts:?}");
    assert_eq!((s.a().target(), s.a().cron_target()), (1, 2));
    // A cron worker asking for a connection breaks the protocol: killed and replaced.
    let acts = s.at(20).msg(cron[0], WorkerMsg::Accept);
    assert_eq!(kills(&acts), vec![(cron[0], KillSignal::Kill)]);
    assert!(matches!(acts[..], [_, Action::Spawn { role: Role::Cron, .. }]), "{acts:?}");
    s.at(21).exit(cron[0], ExitStatus::Signaled(9));
    // A silent cron worker (a job running too long) is killed for timeout like any other.
    let acts = s.at(40_000).tick();
    assert!(kills(&acts).contains(&(cron[1], KillSignal::Abrt)), "{acts:?}");
    // HUP replaces them too; WINCH stops them all.
    let acts = s.at(41_000).input(Input::Signal(Sig::Hup));
    let spawned: Vec<Role> = acts
        .iter()
        .filter_map(|a| match a {
            Action::Spawn { role, .. } => Some(*role),
            _ => None,
        })
        .collect();
    assert_eq!(spawned.iter().filter(|&&r| r == Role::Cron).count(), 2, "{acts:?}");
    s.at(42_000).input(Input::Signal(Sig::Winch));
    assert_eq!(s.a().cron_target(), 0);
    assert!(s.a().workers().values().all(|w| w.life != Life::Active));
    insta::assert_snapshot!(s.log);
}

#[test]
fn too_many_cron_workers_is_a_config_error() {
    let c = Config { cron_workers: MAX_WORKERS + 1, ..Config::default() };
    assert_eq!(c.validate(), Err(ConfigError::CronWorkers(MAX_WORKERS + 1)));
}
