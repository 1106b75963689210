//! The invariant monitor has teeth of its own: fed actions a broken arbiter would emit, it names
//! the invariant each breaks. (The simulator, the explorer and the fuzzers trust it.)

use herd_protocol::arbiter::{
    Action, Arbiter, Config, ExitStatus, Input, KillReason, KillSignal, Role, WorkerId,
};
use herd_protocol::invariants::{Invariant, Monitor};
use herd_protocol::message::{ArbiterMsg, ByeReason, ListenerId, WorkerMsg};
use herd_protocol::signals::Sig;
use herd_protocol::time::Instant;
use std::time::Duration;

const MS: u64 = 1_000_000;

fn config() -> Config {
    Config {
        workers: 2,
        timeout: Some(Duration::from_secs(10)),
        graceful_timeout: Duration::from_secs(5),
        kill_grace: Duration::from_secs(1),
        max_requests: 10,
        max_requests_jitter: 5,
        listeners: 1,
        ..Config::default()
    }
}

/// A monitor that has seen the arbiter's start (workers 0 and 1 spawned).
fn started() -> (Monitor, Arbiter) {
    let mut a = Arbiter::new(config(), Instant::ZERO).unwrap();
    let mut m = Monitor::new(&a);
    while let Some(act) = a.poll_action() {
        m.on_action(&act).unwrap();
    }
    (m, a)
}

fn kill(id: u64, signal: KillSignal) -> Action {
    Action::Kill { id: WorkerId(id), signal, reason: KillReason::Stop }
}

fn broken(m: &mut Monitor, action: Action) -> Invariant {
    m.on_action(&action).expect_err("the monitor must object").invariant
}

#[test]
fn spawns_are_unique_and_budgets_in_range() {
    let (mut m, _) = started();
    assert_eq!(
        broken(&mut m, Action::Spawn { role: Role::Http, id: WorkerId(0), generation: 0, max_requests: 12 }),
        Invariant::Consistency
    );
    assert_eq!(
        broken(&mut m, Action::Spawn { role: Role::Http, id: WorkerId(7), generation: 0, max_requests: 16 }),
        Invariant::Recycling
    );
    assert_eq!(
        broken(&mut m, Action::Spawn { role: Role::Http, id: WorkerId(8), generation: 0, max_requests: 9 }),
        Invariant::Recycling
    );
    m.on_action(&Action::Spawn { role: Role::Http, id: WorkerId(9), generation: 0, max_requests: 15 })
        .unwrap();
    m.on_action(&Action::Spawn { role: Role::Http, id: WorkerId(10), generation: 0, max_requests: 10 })
        .unwrap();
}

#[test]
fn accept_goes_only_to_a_live_worker_that_asked() {
    let (mut m, _) = started();
    let send = |to| Action::Send { to: WorkerId(to), msg: ArbiterMsg::Accept { socket: ListenerId(0) } };
    assert_eq!(broken(&mut m, send(0)), Invariant::SingleWakeup);
    assert_eq!(broken(&mut m, send(42)), Invariant::Reaping);
    m.on_input(Instant(MS), &Input::Message { from: WorkerId(1), msg: WorkerMsg::Accept });
    m.on_action(&send(1)).unwrap();
    assert_eq!(broken(&mut m, send(1)), Invariant::SingleWakeup, "one ask, one dispatch");
    // An EMPTY answer is a new ask.
    m.on_input(
        Instant(2 * MS),
        &Input::Message { from: WorkerId(1), msg: WorkerMsg::Empty { socket: ListenerId(0) } },
    );
    m.on_action(&send(1)).unwrap();
    // A worker that said BYE is never dispatched to.
    m.on_input(Instant(3 * MS), &Input::Message { from: WorkerId(0), msg: WorkerMsg::Accept });
    m.on_input(
        Instant(3 * MS),
        &Input::Message { from: WorkerId(0), msg: WorkerMsg::Bye { reason: ByeReason::Stop } },
    );
    assert_eq!(broken(&mut m, send(0)), Invariant::SingleWakeup);
}

#[test]
fn kills_go_to_the_living_once_per_signal_and_never_early() {
    let (mut m, _) = started();
    assert_eq!(broken(&mut m, kill(42, KillSignal::Kill)), Invariant::Reaping);
    m.on_action(&kill(0, KillSignal::Term)).unwrap();
    assert_eq!(broken(&mut m, kill(0, KillSignal::Term)), Invariant::GracefulStop);
    // QUIT only after a fast stop was asked for, and once.
    assert_eq!(broken(&mut m, kill(1, KillSignal::Quit)), Invariant::GracefulStop, "no fast stop asked for");
    m.on_input(Instant(MS), &Input::Signal(Sig::Quit));
    m.on_action(&kill(1, KillSignal::Quit)).unwrap();
    assert_eq!(broken(&mut m, kill(1, KillSignal::Quit)), Invariant::GracefulStop);
    // A halt after a worker's exit 3 is graceful: QUIT is not.
    let (mut m, _) = started();
    m.on_input(Instant(MS), &Input::Exited { id: WorkerId(0), status: ExitStatus::Code(3) });
    assert_eq!(broken(&mut m, kill(1, KillSignal::Quit)), Invariant::GracefulStop);
    m.on_action(&kill(1, KillSignal::Term)).unwrap();
    let (mut m, _) = started();
    m.on_timeout(Instant(9_999 * MS));
    assert_eq!(
        broken(&mut m, kill(0, KillSignal::Abrt)),
        Invariant::LivenessKill,
        "heard from 10 s ago is not late"
    );
    m.on_timeout(Instant(10_000 * MS));
    m.on_action(&kill(1, KillSignal::Abrt)).unwrap();
}

/// Without a timeout (`--timeout 0`) a silence is never a reason to kill, however long, and no
/// silence is a missed deadline.
#[test]
fn without_a_timeout_no_silence_kill_is_owed_or_allowed() {
    let mut a = Arbiter::new(Config { timeout: None, ..config() }, Instant::ZERO).unwrap();
    let mut m = Monitor::new(&a);
    while let Some(act) = a.poll_action() {
        m.on_action(&act).unwrap();
    }
    m.on_timeout(Instant(86_400_000 * MS));
    assert!(m.check(&a, true).is_ok(), "a day of silence is owed nothing");
    assert_eq!(m.next_deadline(), None);
    assert_eq!(broken(&mut m, kill(0, KillSignal::Abrt)), Invariant::LivenessKill, "a kill for silence");
}

#[test]
fn one_child_arbiter_and_exit_only_after_a_stop_with_everyone_reaped() {
    let (mut m, _) = started();
    m.on_action(&Action::Reexec).unwrap();
    assert_eq!(broken(&mut m, Action::Reexec), Invariant::SingleChildMaster);
    let (mut m, _) = started();
    m.on_action(&Action::Reexec).unwrap();
    m.on_input(Instant(MS), &Input::ReexecEnded);
    m.on_action(&Action::Reexec).unwrap();
    let (mut m, _) = started();
    assert_eq!(broken(&mut m, Action::Exit { code: 0, unlink_sockets: true }), Invariant::Reaping);
    let (mut m, _) = started();
    m.on_input(Instant(MS), &Input::Signal(Sig::Term));
    assert_eq!(
        broken(&mut m, Action::Exit { code: 0, unlink_sockets: true }),
        Invariant::Reaping,
        "workers alive"
    );
    let (mut m, _) = started();
    m.on_action(&Action::Reexec).unwrap();
    m.on_input(Instant(MS), &Input::Signal(Sig::Term));
    for id in 0..2 {
        m.on_input(Instant(2 * MS), &Input::Exited { id: WorkerId(id), status: ExitStatus::Code(0) });
    }
    assert_eq!(broken(&mut m, Action::Exit { code: 0, unlink_sockets: true }), Invariant::SingleChildMaster);
    assert_eq!(broken(&mut m, Action::Reap), Invariant::Reaping, "nothing after Exit");
    // A halting exit code is a stop; a spawn failure forgets the worker.
    let (mut m, _) = started();
    m.on_input(Instant(MS), &Input::Exited { id: WorkerId(0), status: ExitStatus::Code(3) });
    m.on_input(Instant(MS), &Input::SpawnFailed { id: WorkerId(1) });
    m.on_action(&Action::Exit { code: 3, unlink_sockets: false }).unwrap();
}

/// Hands `input` to both the monitor and the arbiter, and the arbiter's actions to the monitor.
fn feed(m: &mut Monitor, a: &mut Arbiter, now: Instant, input: Input) {
    m.on_input(now, &input);
    a.handle(now, input);
    while let Some(act) = a.poll_action() {
        m.on_action(&act).unwrap();
    }
}

#[test]
fn state_checks_catch_late_kills() {
    // Worker 0 said BYE at 1 ms: it must be gone by 5.001 s.
    let (mut m, mut a) = started();
    let bye = WorkerMsg::Bye { reason: ByeReason::Stop };
    feed(&mut m, &mut a, Instant(MS), Input::Message { from: WorkerId(0), msg: bye });
    feed(
        &mut m,
        &mut a,
        Instant(MS),
        Input::Message { from: WorkerId(1), msg: WorkerMsg::Alive { timestamp: 1 } },
    );
    m.on_timeout(Instant(5_001 * MS));
    assert!(m.check(&a, false).is_ok(), "time-based duties only after a timeout call");
    assert_eq!(m.check(&a, true).unwrap_err().invariant, Invariant::GracefulStop);
    // Silent for the timeout and never soft-killed.
    let (mut m, a) = started();
    m.on_timeout(Instant(10_000 * MS));
    assert_eq!(m.check(&a, true).unwrap_err().invariant, Invariant::LivenessKill);
    // A malformed frame gets its sender killed for lying at once, never for silence.
    let (mut m, mut a) = started();
    for id in 0..2 {
        let error = herd_protocol::message::DecodeError::UnknownVerb;
        feed(&mut m, &mut a, Instant(9_000 * MS), Input::Malformed { from: WorkerId(id), error });
    }
    m.on_timeout(Instant(10_000 * MS));
    assert!(m.check(&a, true).is_ok());
}

#[test]
fn a_poll_timeout_later_than_a_pending_deadline_is_a_late_action() {
    // The monitor knows worker 0 said BYE (grace ends at 5.001 s); an arbiter that did not take
    // it into account sleeps until worker 0's silence at 10 s: too late.
    let (mut m, a) = started();
    let bye = WorkerMsg::Bye { reason: ByeReason::Stop };
    m.on_input(Instant(MS), &Input::Message { from: WorkerId(0), msg: bye });
    assert_eq!(a.poll_timeout(), Some(Instant(10_000 * MS)));
    let v = m.check(&a, false).unwrap_err();
    assert_eq!(v.invariant, Invariant::GracefulStop, "{v}");
    assert_eq!(m.next_deadline().map(|(at, ..)| at), Some(Instant(5_001 * MS)));
    // Heard from at 2 s: the silence deadline moves to 12 s, the arbiter's is still 10 s (earlier
    // is harmless) — but a poll_timeout of None with a deadline pending is late.
    let (mut m, mut a) = started();
    feed(
        &mut m,
        &mut a,
        Instant(2_000 * MS),
        Input::Message { from: WorkerId(0), msg: WorkerMsg::Alive { timestamp: 2 } },
    );
    assert!(m.check(&a, false).is_ok());
    feed(&mut m, &mut a, Instant(2_000 * MS), Input::Signal(Sig::Quit));
    assert!(m.check(&a, false).is_ok(), "QUIT: grace 5 s after, and the arbiter says so");
}

#[test]
fn a_grace_is_not_cut_short() {
    let (mut m, _) = started();
    m.on_timeout(Instant(MS));
    m.on_action(&kill(0, KillSignal::Term)).unwrap();
    let hard =
        |id| Action::Kill { id: WorkerId(id), signal: KillSignal::Kill, reason: KillReason::GraceExpired };
    m.on_timeout(Instant(5_000 * MS));
    assert_eq!(broken(&mut m, hard(0)), Invariant::GracefulStop, "TERM at 1 ms: grace ends at 5.001 s");
    assert_eq!(broken(&mut m, hard(1)), Invariant::GracefulStop, "never asked to go: no grace to expire");
    m.on_timeout(Instant(5_001 * MS));
    m.on_action(&hard(0)).unwrap();
    // A protocol violation is killed at once.
    let protocol = Action::Kill { id: WorkerId(1), signal: KillSignal::Kill, reason: KillReason::Protocol };
    m.on_action(&protocol).unwrap();
}

#[test]
fn work_goes_to_the_worker_that_asked_first() {
    let (mut m, _) = started();
    let send = |to| Action::Send { to: WorkerId(to), msg: ArbiterMsg::Accept { socket: ListenerId(0) } };
    let ask = |m: &mut Monitor, id, ms| {
        m.on_input(Instant(ms * MS), &Input::Message { from: WorkerId(id), msg: WorkerMsg::Accept })
    };
    ask(&mut m, 1, 1);
    ask(&mut m, 0, 2);
    assert_eq!(broken(&mut m, send(0)), Invariant::FairDispatch, "worker 1 asked first");
    m.on_action(&send(1)).unwrap();
    m.on_action(&send(0)).unwrap();
    // Asking again (EMPTY) puts a worker at the back.
    ask(&mut m, 0, 3);
    m.on_input(
        Instant(4 * MS),
        &Input::Message { from: WorkerId(1), msg: WorkerMsg::Empty { socket: ListenerId(0) } },
    );
    assert_eq!(broken(&mut m, send(1)), Invariant::FairDispatch);
    // A worker told to stop no longer waits: the next in line may be served.
    let (mut m, _) = started();
    ask(&mut m, 0, 1);
    ask(&mut m, 1, 2);
    m.on_action(&kill(0, KillSignal::Term)).unwrap();
    m.on_action(&send(1)).unwrap();
}

#[test]
fn a_row_of_boot_failures_halts_the_server_and_nothing_shorter_does() {
    // Limit 2, two workers: both die before saying anything.
    let halting = |limit| {
        let config = Config { max_boot_failures: limit, ..config() };
        let mut a = Arbiter::new(config, Instant::ZERO).unwrap();
        let mut m = Monitor::new(&a);
        while let Some(act) = a.poll_action() {
            m.on_action(&act).unwrap();
        }
        (m, a)
    };
    let died = |id| Input::Exited { id: WorkerId(id), status: ExitStatus::Code(1) };
    let (mut m, mut a) = halting(2);
    feed(&mut m, &mut a, Instant(MS), died(0));
    assert!(m.check(&a, false).is_ok(), "one failure of two: still running");
    feed(&mut m, &mut a, Instant(MS), died(1));
    assert!(m.check(&a, false).is_ok(), "the arbiter halted: {:?}", a.phase());
    // An arbiter that does not halt at the limit (here: one allowed more) is caught...
    let (mut m, _) = halting(2);
    let (_, mut lenient) = halting(3);
    m.on_input(Instant(MS), &died(0));
    m.on_input(Instant(MS), &died(1));
    for input in [died(0), died(1)] {
        lenient.handle(Instant(MS), input);
    }
    while lenient.poll_action().is_some() {}
    assert_eq!(m.check(&lenient, false).unwrap_err().invariant, Invariant::WorkerCount);
    // ...and so is one that halts before it (a monitor that saw one failure of two).
    let (mut m, _) = halting(2);
    let (_, mut eager) = halting(1);
    m.on_input(Instant(MS), &died(0));
    eager.handle(Instant(MS), died(0));
    while eager.poll_action().is_some() {}
    assert_eq!(m.check(&eager, false).unwrap_err().invariant, Invariant::Reaping);
    // A worker that boots ends the row; one asked to go, or one already booted, is not in it.
    let (mut m, mut a) = halting(2);
    feed(&mut m, &mut a, Instant(MS), died(0));
    feed(
        &mut m,
        &mut a,
        Instant(MS),
        Input::Message { from: WorkerId(1), msg: WorkerMsg::Alive { timestamp: 1 } },
    );
    feed(&mut m, &mut a, Instant(MS), died(1));
    assert!(m.check(&a, false).is_ok());
    assert_eq!(
        a.phase(),
        herd_protocol::arbiter::Phase::Running,
        "a booted worker's death is no boot failure"
    );
    // Never (0): any row.
    let (mut m, mut a) = halting(0);
    for round in 0..20 {
        let ids: Vec<WorkerId> = a.workers().keys().copied().collect();
        for id in ids {
            feed(
                &mut m,
                &mut a,
                Instant((round + 1) * 60_000 * MS),
                Input::Exited { id, status: ExitStatus::Code(1) },
            );
        }
        a.handle_timeout(Instant((round + 2) * 60_000 * MS - 1));
        m.on_timeout(Instant((round + 2) * 60_000 * MS - 1));
        while let Some(act) = a.poll_action() {
            m.on_action(&act).unwrap();
        }
        assert!(m.check(&a, true).is_ok());
    }
    assert_eq!(a.phase(), herd_protocol::arbiter::Phase::Running);
    assert!(a.failed_boots() >= 20, "{}", a.failed_boots());
}

/// A monitor that has seen the start of `workers` workers.
fn started_with(config: Config) -> (Monitor, Arbiter) {
    let mut a = Arbiter::new(config, Instant::ZERO).unwrap();
    let mut m = Monitor::new(&a);
    while let Some(act) = a.poll_action() {
        m.on_action(&act).unwrap();
    }
    (m, a)
}

#[test]
fn the_line_of_waiting_workers_survives_every_end_of_a_turn() {
    let send = |to| Action::Send { to: WorkerId(to), msg: ArbiterMsg::Accept { socket: ListenerId(0) } };
    let ask = |m: &mut Monitor, id: u64| {
        m.on_input(Instant((id + 1) * MS), &Input::Message { from: WorkerId(id), msg: WorkerMsg::Accept })
    };
    // Four workers ask in order; worker 0's turn ends one way or another; worker 1 is then first
    // in line, so work for worker 2 passes it over.
    let bye = Input::Message { from: WorkerId(0), msg: WorkerMsg::Bye { reason: ByeReason::Stop } };
    type End<'a> = (&'a str, &'a dyn Fn(&mut Monitor));
    let ends: [End; 5] = [
        ("its BYE", &|m| m.on_input(Instant(10 * MS), &bye)),
        ("its death", &|m| {
            m.on_input(Instant(10 * MS), &Input::Exited { id: WorkerId(0), status: ExitStatus::Signaled(9) })
        }),
        ("a failed spawn", &|m| m.on_input(Instant(10 * MS), &Input::SpawnFailed { id: WorkerId(0) })),
        ("work sent to it", &|m| m.on_action(&send(0)).unwrap()),
        ("a stop signal", &|m| m.on_action(&kill(0, KillSignal::Term)).unwrap()),
    ];
    for (what, end) in ends {
        let (mut m, _) = started_with(Config { workers: 4, ..config() });
        for id in 0..4 {
            ask(&mut m, id);
        }
        end(&mut m);
        assert_eq!(broken(&mut m, send(2)), Invariant::FairDispatch, "after {what}");
    }
    // A worker asked to go that says ACCEPT again (late) is not put back in line.
    let (mut m, _) = started();
    ask(&mut m, 0);
    m.on_action(&kill(0, KillSignal::Term)).unwrap();
    ask(&mut m, 0);
    ask(&mut m, 1);
    m.on_action(&send(1)).unwrap();
}

#[test]
fn a_retiring_workers_silence_is_owed_while_the_server_runs() {
    // graceful_timeout (30 s) past the timeout (10 s): worker 0, told to retire at 1 ms, must
    // still be soft-killed for silence at 10 s, not left to its grace.
    let (mut m, a) = started_with(Config { graceful_timeout: Duration::from_secs(30), ..config() });
    m.on_timeout(Instant(MS));
    m.on_action(&Action::Kill { id: WorkerId(0), signal: KillSignal::Term, reason: KillReason::Retire })
        .unwrap();
    m.on_input(
        Instant(5_000 * MS),
        &Input::Message { from: WorkerId(1), msg: WorkerMsg::Alive { timestamp: 5 } },
    );
    assert_eq!(m.next_deadline(), Some((Instant(10_000 * MS), Invariant::LivenessKill, WorkerId(0))));
    m.on_timeout(Instant(10_000 * MS));
    assert_eq!(m.check(&a, true).unwrap_err().invariant, Invariant::LivenessKill);
}

#[test]
fn a_worker_the_arbiter_does_not_have_is_an_inconsistency() {
    let (mut m, a) = started();
    let spawn = Action::Spawn { role: Role::Http, id: WorkerId(7), generation: 0, max_requests: 12 };
    m.on_action(&spawn).unwrap();
    assert_eq!(m.check(&a, false).unwrap_err().invariant, Invariant::Consistency);
}
