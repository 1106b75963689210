use super::*;

const MS: u64 = 1_000_000;

fn worker(mode: AcceptMode, max_requests: u32) -> Worker {
    Worker::new(
        WorkerConfig {
            accept_mode: mode,
            timeout: Duration::from_secs(10),
            max_requests,
            kind: WorkerKind::Sync,
        },
        Instant::ZERO,
    )
}

fn drain(w: &mut Worker) -> Vec<Action> {
    std::iter::from_fn(|| w.poll_action()).collect()
}

fn step(w: &mut Worker, ms: u64, input: Input) -> Vec<Action> {
    w.handle(Instant(ms * MS), input);
    drain(w)
}

const L0: ListenerId = ListenerId(0);

fn send(m: WorkerMsg) -> Action {
    Action::Send(m)
}

#[test]
fn signaled_cycle_asks_accepts_answers_serves() {
    let mut w = worker(AcceptMode::Signaled, 0);
    w.start(Instant::ZERO);
    assert_eq!(drain(&mut w), vec![send(WorkerMsg::Alive { timestamp: 0 }), send(WorkerMsg::Accept)]);
    assert_eq!(
        step(&mut w, 1, Input::Message(ArbiterMsg::Accept { socket: L0 })),
        vec![Action::Accept(Some(L0))]
    );
    assert_eq!(
        step(&mut w, 1, Input::Accepted(L0)),
        vec![send(WorkerMsg::Accepted { socket: L0 }), Action::Serve(L0)]
    );
    assert_eq!(w.poll_timeout(), None, "no heartbeat while serving");
    assert_eq!(step(&mut w, 2, Input::RequestDone), vec![send(WorkerMsg::Accept)]);
    assert_eq!(w.requests(), 1);
}

#[test]
fn b16_spurious_wakeup_answers_empty_and_stays_idle() {
    let mut w = worker(AcceptMode::Signaled, 0);
    w.start(Instant::ZERO);
    drain(&mut w);
    step(&mut w, 1, Input::Message(ArbiterMsg::Accept { socket: L0 }));
    assert_eq!(step(&mut w, 1, Input::AcceptEmpty), vec![send(WorkerMsg::Empty { socket: L0 })]);
    assert_eq!(w.state(), State::Idle);
    // The arbiter re-queued it: the next dispatch is taken without a new ACCEPT.
    assert_eq!(
        step(&mut w, 2, Input::Message(ArbiterMsg::Accept { socket: L0 })),
        vec![Action::Accept(Some(L0))]
    );
}

#[test]
fn b18_budget_is_checked_after_the_request_exactly_n_served() {
    for budget in 1..5u32 {
        let mut w = worker(AcceptMode::Shared, budget);
        w.start(Instant::ZERO);
        drain(&mut w);
        let mut served = 0;
        loop {
            let acts = step(&mut w, 1, Input::Accepted(L0));
            assert_eq!(acts, vec![Action::Serve(L0)]);
            served += 1;
            let acts = step(&mut w, 2, Input::RequestDone);
            if acts.contains(&Action::Exit(EXIT_OK)) {
                assert_eq!(
                    acts,
                    vec![send(WorkerMsg::Bye { reason: ByeReason::Recycle }), Action::Exit(EXIT_OK)]
                );
                break;
            }
            assert!(served < 10, "never recycled");
        }
        assert_eq!(served, budget);
    }
}

#[test]
fn term_finishes_the_request_then_exits_quit_exits_now() {
    let mut w = worker(AcceptMode::Signaled, 0);
    w.start(Instant::ZERO);
    drain(&mut w);
    step(&mut w, 1, Input::Message(ArbiterMsg::Accept { socket: L0 }));
    step(&mut w, 1, Input::Accepted(L0));
    assert_eq!(step(&mut w, 2, Input::Signal(WorkerSignal::Term)), vec![]);
    assert_eq!(
        step(&mut w, 3, Input::RequestDone),
        vec![send(WorkerMsg::Bye { reason: ByeReason::Stop }), Action::Exit(EXIT_OK)]
    );
    let mut w = worker(AcceptMode::Signaled, 0);
    w.start(Instant::ZERO);
    drain(&mut w);
    step(&mut w, 1, Input::Message(ArbiterMsg::Accept { socket: L0 }));
    step(&mut w, 1, Input::Accepted(L0));
    assert_eq!(step(&mut w, 2, Input::Signal(WorkerSignal::Quit)), vec![Action::Exit(EXIT_OK)]);
    assert_eq!(step(&mut w, 3, Input::RequestDone), vec![], "nothing after exit");
}

#[test]
fn term_during_accept_still_serves_a_taken_connection() {
    let mut w = worker(AcceptMode::Signaled, 0);
    w.start(Instant::ZERO);
    drain(&mut w);
    step(&mut w, 1, Input::Message(ArbiterMsg::Accept { socket: L0 }));
    assert_eq!(step(&mut w, 1, Input::Signal(WorkerSignal::Term)), vec![]);
    assert_eq!(
        step(&mut w, 1, Input::Accepted(L0)),
        vec![send(WorkerMsg::Accepted { socket: L0 }), Action::Serve(L0)]
    );
    assert_eq!(step(&mut w, 2, Input::RequestDone).last(), Some(&Action::Exit(EXIT_OK)));
}

#[test]
fn heartbeat_at_half_the_timeout_while_idle() {
    let mut w = worker(AcceptMode::Signaled, 0);
    w.start(Instant::ZERO);
    drain(&mut w);
    assert_eq!(w.poll_timeout(), Some(Instant(5_000 * MS)));
    w.handle_timeout(Instant(4_999 * MS));
    assert_eq!(drain(&mut w), vec![]);
    w.handle_timeout(Instant(5_000 * MS));
    assert_eq!(drain(&mut w), vec![send(WorkerMsg::Alive { timestamp: 5_000 })]);
    assert_eq!(w.poll_timeout(), Some(Instant(10_000 * MS)));
}

#[test]
fn shared_mode_waits_on_listeners_and_never_talks_accept() {
    let mut w = worker(AcceptMode::Shared, 0);
    w.start(Instant::ZERO);
    assert_eq!(drain(&mut w), vec![send(WorkerMsg::Alive { timestamp: 0 }), Action::Accept(None)]);
    assert_eq!(step(&mut w, 1, Input::AcceptEmpty), vec![]);
    assert!(w.waits_on_listeners());
    assert_eq!(step(&mut w, 2, Input::ListenersReadable), vec![Action::Accept(None)]);
    assert_eq!(step(&mut w, 2, Input::Accepted(L0)), vec![Action::Serve(L0)]);
}

#[test]
fn auto_mode_accepts_directly_and_falls_back_to_signaling() {
    let mut w = worker(AcceptMode::Auto, 0);
    w.start(Instant::ZERO);
    assert_eq!(drain(&mut w), vec![send(WorkerMsg::Alive { timestamp: 0 }), Action::Accept(None)]);
    // Under load the direct accept wins: no message to the arbiter.
    assert_eq!(step(&mut w, 1, Input::Accepted(L0)), vec![Action::Serve(L0)]);
    assert_eq!(step(&mut w, 2, Input::RequestDone), vec![Action::Accept(None)]);
    // Idle: nothing to take, so it asks the arbiter.
    assert_eq!(step(&mut w, 3, Input::AcceptEmpty), vec![send(WorkerMsg::Accept)]);
    assert_eq!(w.state(), State::Idle);
}

#[test]
fn parent_change_exits_at_the_next_idle_point() {
    let mut w = worker(AcceptMode::Shared, 0);
    w.start(Instant::ZERO);
    drain(&mut w);
    step(&mut w, 1, Input::Accepted(L0));
    assert_eq!(step(&mut w, 2, Input::ParentChanged), vec![]);
    assert_eq!(
        step(&mut w, 3, Input::RequestDone),
        vec![send(WorkerMsg::Bye { reason: ByeReason::Parent }), Action::Exit(EXIT_OK)]
    );
}

#[test]
fn over_memory_finishes_the_request_then_says_bye_memory() {
    let mut w = worker(AcceptMode::Signaled, 0);
    w.start(Instant::ZERO);
    drain(&mut w);
    step(&mut w, 1, Input::Message(ArbiterMsg::Accept { socket: L0 }));
    step(&mut w, 1, Input::Accepted(L0));
    // Reported during the request: nothing happens until it ends; a later TERM does not change
    // the reason.
    assert_eq!(step(&mut w, 2, Input::OverMemory), vec![]);
    assert_eq!(step(&mut w, 2, Input::Signal(WorkerSignal::Term)), vec![]);
    assert_eq!(
        step(&mut w, 3, Input::RequestDone),
        vec![send(WorkerMsg::Bye { reason: ByeReason::Memory }), Action::Exit(EXIT_OK)]
    );
    // While idle it leaves at once.
    let mut w = worker(AcceptMode::Signaled, 0);
    w.start(Instant::ZERO);
    drain(&mut w);
    assert_eq!(
        step(&mut w, 1, Input::OverMemory),
        vec![send(WorkerMsg::Bye { reason: ByeReason::Memory }), Action::Exit(EXIT_OK)]
    );
}

#[test]
fn illegal_or_malformed_frames_from_the_arbiter_end_the_worker() {
    let mut w = worker(AcceptMode::Signaled, 0);
    w.start(Instant::ZERO);
    drain(&mut w);
    step(&mut w, 1, Input::Message(ArbiterMsg::Accept { socket: L0 }));
    step(&mut w, 1, Input::Accepted(L0));
    // A dispatch while serving: the arbiter broke the protocol.
    assert_eq!(
        step(&mut w, 2, Input::Message(ArbiterMsg::Accept { socket: L0 })),
        vec![Action::Exit(EXIT_PROTOCOL)]
    );
    let mut w = worker(AcceptMode::Signaled, 0);
    w.start(Instant::ZERO);
    drain(&mut w);
    assert_eq!(step(&mut w, 1, Input::Malformed), vec![Action::Exit(EXIT_PROTOCOL)]);
}

#[test]
fn back_to_back_requests_still_heartbeat() {
    // Found by herd-sim (seed 27, shared mode under load): a worker going straight from one
    // request to the next never sent ALIVE and was killed for silence, again and again.
    for mode in [AcceptMode::Shared, AcceptMode::Auto] {
        let mut w = worker(mode, 0);
        w.start(Instant::ZERO);
        drain(&mut w);
        let mut alive_at = Vec::new();
        for i in 0..100u64 {
            // Each request takes 100 ms and the next connection is always waiting.
            step(&mut w, i * 100, Input::Accepted(L0));
            for a in step(&mut w, i * 100 + 100, Input::RequestDone) {
                if let Action::Send(WorkerMsg::Alive { timestamp }) = a {
                    alive_at.push(timestamp);
                }
            }
        }
        assert!(!alive_at.is_empty(), "{mode:?}: no heartbeat in 10 s of back-to-back requests");
        let gaps: Vec<u64> = alive_at.windows(2).map(|p| p[1] - p[0]).collect();
        assert!(gaps.iter().all(|&g| g <= 5_000), "{mode:?}: heartbeat gaps {gaps:?} exceed timeout/2");
        assert!(alive_at[0] <= 5_000, "{mode:?}: first heartbeat at {}", alive_at[0]);
    }
}

fn async_worker(mode: AcceptMode, max_requests: u32, connections: u32) -> Worker {
    Worker::new(
        WorkerConfig {
            accept_mode: mode,
            timeout: Duration::from_secs(10),
            max_requests,
            kind: WorkerKind::Async { connections },
        },
        Instant::ZERO,
    )
}

#[test]
fn async_asks_for_work_while_below_its_limit_and_heartbeats_while_serving() {
    let mut w = async_worker(AcceptMode::Signaled, 0, 2);
    w.start(Instant::ZERO);
    assert_eq!(drain(&mut w), vec![send(WorkerMsg::Alive { timestamp: 0 }), send(WorkerMsg::Accept)]);
    step(&mut w, 1, Input::Message(ArbiterMsg::Accept { socket: L0 }));
    // One connection open, one free: answer, serve, and ask again at once.
    assert_eq!(
        step(&mut w, 1, Input::Accepted(L0)),
        vec![send(WorkerMsg::Accepted { socket: L0 }), Action::Serve(L0), send(WorkerMsg::Accept)]
    );
    step(&mut w, 2, Input::Message(ArbiterMsg::Accept { socket: L0 }));
    // At the limit: serve, do not ask.
    assert_eq!(
        step(&mut w, 2, Input::Accepted(L0)),
        vec![send(WorkerMsg::Accepted { socket: L0 }), Action::Serve(L0)]
    );
    assert_eq!(w.open_connections(), 2);
    // Heartbeats flow while requests run.
    assert_eq!(w.poll_timeout(), Some(Instant(5_000 * MS)));
    w.handle_timeout(Instant(5_000 * MS));
    assert_eq!(drain(&mut w), vec![send(WorkerMsg::Alive { timestamp: 5_000 })]);
    // Requests end (keep-alive: no new ask); a connection closes: below the limit, ask again.
    assert_eq!(step(&mut w, 5_001, Input::RequestDone), vec![]);
    assert_eq!(step(&mut w, 5_002, Input::ConnectionClosed), vec![send(WorkerMsg::Accept)]);
    assert_eq!(w.open_connections(), 1);
}

#[test]
fn async_budget_counts_requests_across_connections_then_drains() {
    let mut w = async_worker(AcceptMode::Shared, 3, 4);
    w.start(Instant::ZERO);
    drain(&mut w);
    step(&mut w, 1, Input::Accepted(L0));
    step(&mut w, 1, Input::Accepted(L0));
    // Nothing more to take: it waits on the listeners while serving.
    assert_eq!(step(&mut w, 1, Input::AcceptEmpty), vec![]);
    assert!(w.waits_on_listeners());
    assert_eq!(w.open_connections(), 2);
    assert_eq!(step(&mut w, 2, Input::RequestDone), vec![]);
    assert_eq!(step(&mut w, 3, Input::RequestDone), vec![]);
    // The third request spends the budget: stop taking work, drain, leave when all closed.
    assert_eq!(step(&mut w, 4, Input::RequestDone), vec![Action::Drain]);
    assert!(!w.waits_on_listeners());
    assert_eq!(step(&mut w, 5, Input::ConnectionClosed), vec![]);
    assert_eq!(
        step(&mut w, 6, Input::ConnectionClosed),
        vec![send(WorkerMsg::Bye { reason: ByeReason::Recycle }), Action::Exit(EXIT_OK)]
    );
}

#[test]
fn async_term_drains_and_still_serves_a_dispatch_already_asked_for() {
    let mut w = async_worker(AcceptMode::Signaled, 0, 2);
    w.start(Instant::ZERO);
    drain(&mut w);
    step(&mut w, 1, Input::Message(ArbiterMsg::Accept { socket: L0 }));
    step(&mut w, 1, Input::Accepted(L0)); // serving one, asked for another
    assert_eq!(step(&mut w, 2, Input::Signal(WorkerSignal::Term)), vec![Action::Drain]);
    // The arbiter had already dispatched to it: legal, taken and served, no new ask.
    step(&mut w, 3, Input::Message(ArbiterMsg::Accept { socket: L0 }));
    assert_eq!(
        step(&mut w, 3, Input::Accepted(L0)),
        vec![send(WorkerMsg::Accepted { socket: L0 }), Action::Serve(L0)]
    );
    assert_eq!(step(&mut w, 4, Input::ConnectionClosed), vec![]);
    assert_eq!(
        step(&mut w, 5, Input::ConnectionClosed),
        vec![send(WorkerMsg::Bye { reason: ByeReason::Stop }), Action::Exit(EXIT_OK)]
    );
    // Idle with nothing open: TERM leaves at once.
    let mut w = async_worker(AcceptMode::Signaled, 0, 2);
    w.start(Instant::ZERO);
    drain(&mut w);
    assert_eq!(
        step(&mut w, 1, Input::Signal(WorkerSignal::Term)),
        vec![Action::Drain, send(WorkerMsg::Bye { reason: ByeReason::Stop }), Action::Exit(EXIT_OK)]
    );
}

#[test]
fn async_ends_on_quit_malformed_or_an_illegal_dispatch_and_then_ignores_everything() {
    for (input, code) in [
        (Input::Signal(WorkerSignal::Quit), EXIT_OK),
        (Input::Malformed, EXIT_PROTOCOL),
        (Input::Message(ArbiterMsg::Accept { socket: L0 }), EXIT_PROTOCOL),
    ] {
        let mut w = async_worker(AcceptMode::Shared, 0, 2);
        w.start(Instant::ZERO);
        drain(&mut w);
        // Shared mode never asks the arbiter: a dispatch is illegal here.
        assert_eq!(step(&mut w, 1, input), vec![Action::Exit(code)], "{input:?}");
        assert_eq!(w.state(), State::Exited);
        assert_eq!(step(&mut w, 2, Input::Accepted(L0)), vec![]);
        assert_eq!(step(&mut w, 3, Input::Signal(WorkerSignal::Term)), vec![]);
    }
}

#[test]
fn async_parent_change_and_memory_drain_then_leave_with_their_reason() {
    for (input, reason) in [(Input::ParentChanged, ByeReason::Parent), (Input::OverMemory, ByeReason::Memory)]
    {
        let mut w = async_worker(AcceptMode::Shared, 0, 2);
        w.start(Instant::ZERO);
        drain(&mut w);
        step(&mut w, 1, Input::Accepted(L0));
        step(&mut w, 1, Input::AcceptEmpty);
        assert_eq!(step(&mut w, 2, input), vec![Action::Drain]);
        assert_eq!(
            step(&mut w, 3, Input::ConnectionClosed),
            vec![send(WorkerMsg::Bye { reason }), Action::Exit(EXIT_OK)]
        );
    }
}

#[test]
fn async_signaled_empty_and_shared_wakeups() {
    let mut w = async_worker(AcceptMode::Signaled, 0, 2);
    w.start(Instant::ZERO);
    drain(&mut w);
    step(&mut w, 1, Input::Message(ArbiterMsg::Accept { socket: L0 }));
    // Nothing there: EMPTY, and idle again (a later dispatch is legal).
    assert_eq!(step(&mut w, 2, Input::AcceptEmpty), vec![send(WorkerMsg::Empty { socket: L0 })]);
    assert_eq!(w.state(), State::Idle);
    assert_eq!(
        step(&mut w, 3, Input::Message(ArbiterMsg::Accept { socket: L0 })),
        vec![Action::Accept(Some(L0))]
    );
    // Shared: waiting on the listeners, a wakeup makes it try an accept.
    let mut w = async_worker(AcceptMode::Shared, 0, 2);
    w.start(Instant::ZERO);
    drain(&mut w);
    step(&mut w, 1, Input::AcceptEmpty);
    assert!(w.waits_on_listeners());
    assert_eq!(step(&mut w, 2, Input::ListenersReadable), vec![Action::Accept(None)]);
    // At its limit of one, it stops asking; a close makes it ask again.
    let mut w = async_worker(AcceptMode::Signaled, 0, 1);
    w.start(Instant::ZERO);
    drain(&mut w);
    step(&mut w, 1, Input::Message(ArbiterMsg::Accept { socket: L0 }));
    assert_eq!(
        step(&mut w, 1, Input::Accepted(L0)),
        vec![send(WorkerMsg::Accepted { socket: L0 }), Action::Serve(L0)]
    );
    assert_eq!(step(&mut w, 2, Input::RequestDone), vec![]);
    assert_eq!(step(&mut w, 3, Input::ConnectionClosed), vec![send(WorkerMsg::Accept)]);
    // A close while it is already asking (below its limit) asks nothing more.
    let mut w = async_worker(AcceptMode::Signaled, 0, 3);
    w.start(Instant::ZERO);
    drain(&mut w);
    step(&mut w, 1, Input::Message(ArbiterMsg::Accept { socket: L0 }));
    step(&mut w, 1, Input::Accepted(L0));
    assert_eq!(w.state(), State::Idle);
    assert_eq!(step(&mut w, 2, Input::ConnectionClosed), vec![]);
}

#[test]
fn a_sync_worker_counts_requests_and_ignores_everything_after_exit() {
    let mut w = worker(AcceptMode::Shared, 0);
    w.start(Instant::ZERO);
    drain(&mut w);
    for k in 0..3 {
        step(&mut w, 1 + k, Input::Accepted(L0));
        step(&mut w, 1 + k, Input::RequestDone);
    }
    assert_eq!(w.requests(), 3);
    assert_eq!(step(&mut w, 9, Input::Signal(WorkerSignal::Quit)), vec![Action::Exit(EXIT_OK)]);
    assert_eq!(step(&mut w, 10, Input::Signal(WorkerSignal::Term)), vec![]);
    assert_eq!(step(&mut w, 11, Input::Message(ArbiterMsg::Accept { socket: L0 })), vec![]);
}

/// The heartbeat timer, from both sides; none while a sync worker serves.
#[test]
fn the_heartbeat_fires_at_its_deadline_and_not_before() {
    let mut w = worker(AcceptMode::Signaled, 0);
    w.start(Instant::ZERO);
    drain(&mut w);
    assert_eq!(w.timer(Timer::Heartbeat), Some(Instant(5_000 * MS)));
    assert_eq!(w.poll_timeout(), w.timer(Timer::Heartbeat));
    w.handle_timeout(Instant(5_000 * MS - 1));
    assert!(drain(&mut w).is_empty(), "early heartbeat");
    w.handle_timeout(Instant(5_000 * MS));
    assert_eq!(drain(&mut w), vec![send(WorkerMsg::Alive { timestamp: 5_000 })]);
    step(&mut w, 5_001, Input::Message(ArbiterMsg::Accept { socket: L0 }));
    step(&mut w, 5_002, Input::Accepted(L0));
    assert_eq!(w.timers().count(), 0, "a sync worker cannot heartbeat mid-request");
}

/// An accept that fails for lack of resources backs off (10 ms, doubling, at most 1 s) before the
/// worker answers EMPTY, instead of answering at once and being dispatched to again in a spin; a
/// successful accept starts the backoff over. Two-sided: not a nanosecond early.
#[test]
fn a_failed_accept_backs_off_before_answering_empty() {
    let mut w = worker(AcceptMode::Signaled, 0);
    w.start(Instant::ZERO);
    drain(&mut w);
    let mut at = 1;
    let mut expected = MIN_ACCEPT_BACKOFF;
    for _ in 0..9 {
        step(&mut w, at, Input::Message(ArbiterMsg::Accept { socket: L0 }));
        assert!(step(&mut w, at, Input::AcceptFailed).is_empty(), "no answer during the backoff");
        assert_eq!(w.state(), State::Backoff(Some(L0)));
        let due = Instant(at * MS) + expected;
        assert_eq!(w.timer(Timer::AcceptRetry), Some(due));
        w.handle_timeout(Instant(due.0 - 1));
        assert!(!drain(&mut w).contains(&send(WorkerMsg::Empty { socket: L0 })), "answered early");
        w.handle_timeout(due);
        assert!(drain(&mut w).contains(&send(WorkerMsg::Empty { socket: L0 })), "no answer at {due:?}");
        assert_eq!(w.state(), State::Idle);
        at = due.0 / MS + 1;
        expected = (expected * 2).min(MAX_ACCEPT_BACKOFF);
    }
    assert_eq!(expected, MAX_ACCEPT_BACKOFF, "the backoff is capped");
    // A successful accept starts over.
    step(&mut w, at, Input::Message(ArbiterMsg::Accept { socket: L0 }));
    step(&mut w, at, Input::Accepted(L0));
    step(&mut w, at + 1, Input::RequestDone);
    step(&mut w, at + 2, Input::Message(ArbiterMsg::Accept { socket: L0 }));
    step(&mut w, at + 2, Input::AcceptFailed);
    assert_eq!(w.timer(Timer::AcceptRetry), Some(Instant((at + 2) * MS) + MIN_ACCEPT_BACKOFF));
    // TERM during a backoff: the dispatch is answered first, then BYE.
    let acts = step(&mut w, at + 3, Input::Signal(WorkerSignal::Term));
    assert!(acts.is_empty(), "{acts:?}");
    w.handle_timeout(Instant((at + 2) * MS) + MIN_ACCEPT_BACKOFF);
    let acts = drain(&mut w);
    assert_eq!(acts[0], send(WorkerMsg::Empty { socket: L0 }), "{acts:?}");
    assert!(acts.contains(&send(WorkerMsg::Bye { reason: ByeReason::Stop })), "{acts:?}");
}

/// An async worker backs off a failed accept the same way, and answers EMPTY at its end.
#[test]
fn an_async_worker_backs_off_a_failed_accept_too() {
    let mut w = async_worker(AcceptMode::Signaled, 0, 2);
    w.start(Instant::ZERO);
    drain(&mut w);
    step(&mut w, 1, Input::Message(ArbiterMsg::Accept { socket: L0 }));
    assert!(step(&mut w, 1, Input::AcceptFailed).is_empty(), "no answer during the backoff");
    assert_eq!(w.state(), State::Backoff(Some(L0)));
    let due = Instant(MS) + MIN_ACCEPT_BACKOFF;
    assert_eq!(w.timer(Timer::AcceptRetry), Some(due));
    w.handle_timeout(due);
    assert!(drain(&mut w).contains(&send(WorkerMsg::Empty { socket: L0 })));
}

/// Shared mode: a failed accept stops watching the listeners for the backoff.
#[test]
fn shared_mode_stops_watching_the_listeners_while_backing_off() {
    let mut w = worker(AcceptMode::Shared, 0);
    w.start(Instant::ZERO);
    drain(&mut w);
    step(&mut w, 1, Input::AcceptFailed);
    assert!(!w.waits_on_listeners());
    w.handle_timeout(Instant(MS) + MIN_ACCEPT_BACKOFF);
    drain(&mut w);
    assert!(w.waits_on_listeners(), "{:?}", w.state());
}
