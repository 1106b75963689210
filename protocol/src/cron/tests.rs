use super::*;
use proptest::prelude::*;

const S: Duration = Duration::from_secs(1);
const LEASE: Duration = Duration::from_secs(10);

fn at(secs: u64) -> Instant {
    Instant::ZERO + S * secs as u32
}

fn table(jobs: &[(u64, u64)]) -> Table {
    let mut t = Table::new();
    for &(interval, first) in jobs {
        t.add(S * interval as u32, at(first)).unwrap();
    }
    t
}

fn claimed(p: Poll) -> Claim {
    match p {
        Poll::Claimed(c) => c,
        other => panic!("expected a claim, got {other:?}"),
    }
}

#[test]
fn claim_takes_the_job_due_longest_and_idle_says_when_next() {
    let mut t = table(&[(60, 5), (60, 3), (60, 100)]);
    assert_eq!(t.claim(at(2), 1, LEASE), Poll::Idle { next: Some(at(3)) });
    let c = claimed(t.claim(at(6), 1, LEASE));
    assert_eq!((c.job, c.token, c.slot, c.until), (JobId(1), 1, at(3), at(16)));
    let c = claimed(t.claim(at(6), 2, LEASE));
    assert_eq!(c.job, JobId(0));
    // Both held: the next thing that can happen is the first lease's end.
    assert_eq!(t.claim(at(6), 3, LEASE), Poll::Idle { next: Some(at(16)) });
    assert_eq!(Table::new().claim(at(6), 3, LEASE), Poll::Idle { next: None });
}

#[test]
fn a_held_job_is_not_claimed_again_until_its_lease_expires_and_the_old_token_is_then_fenced() {
    let mut t = table(&[(60, 0)]);
    let first = claimed(t.claim(at(1), 1, LEASE));
    assert!(matches!(t.claim(at(10), 2, LEASE), Poll::Idle { .. }));
    // The holder died; at the lease's end the job is retried, same slot, new token.
    let second = claimed(t.claim(at(11), 2, LEASE));
    assert_eq!((second.slot, second.token), (first.slot, first.token + 1));
    assert_eq!(t.finish(at(12), &first, true), Err(CronError::Stale { job: JobId(0), held: 1 }));
    assert_eq!(t.finish(at(12), &second, true), Ok(at(60)));
    // Finished: a second finish of the same claim is refused too.
    assert!(t.finish(at(13), &second, true).is_err());
    assert_eq!(t.jobs()[0].runs, 1);
}

#[test]
fn finish_folds_missed_runs_and_counts_failures() {
    let mut t = table(&[(10, 0)]);
    let c = claimed(t.claim(at(35), 1, LEASE));
    assert_eq!(c.slot, at(0));
    assert_eq!(t.finish(at(36), &c, false), Ok(at(40)));
    assert_eq!((t.jobs()[0].runs, t.jobs()[0].failures), (1, 1));
    assert_eq!(t.finish(at(36), &Claim { job: JobId(7), ..c }, true), Err(CronError::NoSuchJob(JobId(7))));
    assert_eq!(Table::new().add(Duration::ZERO, at(0)), Err(CronError::ZeroInterval));
}

#[test]
fn next_after_is_the_first_step_past_now() {
    assert_eq!(next_after(at(0), S * 10, at(0)), at(10));
    assert_eq!(next_after(at(0), S * 10, at(10)), at(20));
    assert_eq!(next_after(at(0), S * 10, at(9)), at(10));
    // Finished before its slot (the store's clock went back): still one interval on.
    assert_eq!(next_after(at(50), S * 10, at(20)), at(60));
}

fn config(max_jobs: u32) -> CronConfig {
    CronConfig { timeout: S * 30, max_jobs, max_idle: S * 60, retry: S * 2, lease: S * 91 }
}

fn drain(w: &mut CronWorker) -> Vec<CronAction> {
    std::iter::from_fn(|| w.poll_action()).collect()
}

fn alive(t: u64) -> CronAction {
    CronAction::Send(WorkerMsg::Alive { timestamp: t * 1_000 })
}

#[test]
fn worker_claims_runs_finishes_and_claims_again_until_nothing_is_due() {
    let mut w = CronWorker::new(config(0), at(0));
    w.start(at(0));
    assert_eq!(drain(&mut w), [alive(0), CronAction::Claim]);
    let c = Claim { job: JobId(0), token: 1, slot: at(0), until: at(10) };
    // A heartbeat went out 1 s ago, less than timeout / 8: none before the job.
    w.handle(at(1), CronInput::Claimed(Some(c), None));
    assert_eq!(drain(&mut w), [CronAction::Run(c)]);
    assert_eq!(w.timer(Timer::Heartbeat), None, "no heartbeat while a job runs");
    assert_eq!(w.poll_timeout(), w.timer(Timer::Fence), "only the fence");
    w.handle(at(5), CronInput::JobDone { ok: true });
    assert_eq!(drain(&mut w), [alive(5), CronAction::Finish { claim: c, ok: true }]);
    w.handle(at(5), CronInput::Finished { recorded: true });
    assert_eq!(drain(&mut w), [CronAction::Claim]);
    w.handle(at(5), CronInput::Claimed(None, Some(S * 100)));
    assert!(drain(&mut w).is_empty());
    // Next: the heartbeat at 5 + 15, before the claim (capped at max_idle = 60 s).
    assert_eq!(w.poll_timeout(), Some(at(20)));
    w.handle_timeout(at(20));
    assert_eq!(drain(&mut w), [alive(20)]);
    assert_eq!(w.poll_timeout(), Some(at(35)));
    w.handle_timeout(at(35));
    assert_eq!(drain(&mut w), [alive(35)]);
    assert_eq!(w.poll_timeout(), Some(at(50)));
    w.handle_timeout(at(65));
    assert_eq!(drain(&mut w), [alive(65), CronAction::Claim]);
    assert_eq!(w.done(), 1);
}

#[test]
fn term_lets_the_job_finish_quit_does_not_and_the_budget_recycles() {
    let c = Claim { job: JobId(0), token: 1, slot: at(0), until: at(10) };
    let bye = |reason| [CronAction::Send(WorkerMsg::Bye { reason }), CronAction::Exit(EXIT_OK)];
    let mut w = CronWorker::new(config(0), at(0));
    w.start(at(0));
    w.handle(at(0), CronInput::Claimed(Some(c), None));
    drain(&mut w);
    w.handle(at(1), CronInput::Signal(WorkerSignal::Term));
    assert!(drain(&mut w).is_empty(), "the job runs on");
    w.handle(at(2), CronInput::JobDone { ok: true });
    drain(&mut w);
    w.handle(at(2), CronInput::Finished { recorded: true });
    assert_eq!(drain(&mut w), bye(ByeReason::Stop));
    assert_eq!(w.state(), CronState::Exited);

    let mut w = CronWorker::new(config(0), at(0));
    w.start(at(0));
    w.handle(at(0), CronInput::Claimed(Some(c), None));
    drain(&mut w);
    w.handle(at(1), CronInput::Signal(WorkerSignal::Quit));
    assert_eq!(drain(&mut w), bye(ByeReason::Stop));

    let mut w = CronWorker::new(config(1), at(0));
    w.start(at(0));
    w.handle(at(0), CronInput::Claimed(Some(c), None));
    w.handle(at(1), CronInput::JobDone { ok: false });
    drain(&mut w);
    // Refused as stale: the run still counts towards the budget (it ran).
    w.handle(at(1), CronInput::Finished { recorded: false });
    assert_eq!(drain(&mut w), bye(ByeReason::Recycle));
}

#[test]
fn a_store_failure_is_retried_later_and_an_unrecorded_run_moves_on() {
    let mut w = CronWorker::new(config(0), at(0));
    w.start(at(0));
    drain(&mut w);
    w.handle(at(1), CronInput::StoreFailed);
    assert_eq!(w.poll_timeout(), Some(at(3)));
    w.handle_timeout(at(3));
    assert_eq!(drain(&mut w), [CronAction::Claim]);
    let c = Claim { job: JobId(0), token: 1, slot: at(0), until: at(10) };
    w.handle(at(3), CronInput::Claimed(Some(c), None));
    w.handle(at(4), CronInput::JobDone { ok: true });
    drain(&mut w);
    w.handle(at(4), CronInput::StoreFailed);
    assert_eq!(drain(&mut w), [CronAction::Claim]);
    // Answers to questions not asked change nothing.
    w.handle(at(5), CronInput::JobDone { ok: true });
    w.handle(at(5), CronInput::Finished { recorded: true });
    assert!(drain(&mut w).is_empty());
    assert_eq!(w.state(), CronState::Claiming);
    w.handle(at(5), CronInput::Signal(WorkerSignal::Term));
    w.handle(at(5), CronInput::Claimed(None, None));
    assert_eq!(drain(&mut w).last(), Some(&CronAction::Exit(EXIT_OK)));
}

#[test]
fn monitor_catches_double_runs_stale_records_repeats_and_orphans() {
    let (a, b) = (WorkerId(1), WorkerId(2));
    let c1 = Claim { job: JobId(0), token: 1, slot: at(0), until: at(10) };
    let c2 = Claim { token: 2, ..c1 };
    let mut m = CronMonitor::new();
    m.started(a, c1).unwrap();
    let v = m.clone().started(b, c2).unwrap_err();
    assert_eq!(v.invariant, Invariant::CronExclusive);
    assert!(v.detail.contains("twice at once"), "{v}");
    assert!(m.clone().started(b, c1).is_err(), "a token granted twice");
    // After a forward jump of the store clock, the overlap is allowed, but not the old record.
    m.jumped_forward();
    m.started(b, c2).unwrap();
    assert!(m.clone().recorded(c1).unwrap_err().detail.contains("stale token"));
    m.recorded(c2).unwrap();
    assert!(m.clone().recorded(c2).unwrap_err().detail.contains("recorded by token"));
    m.ended(a);
    m.ended(b);

    // A holder dies mid-job: progress fails until the slot is recorded.
    let t = table(&[(60, 100)]);
    let c3 = Claim { job: JobId(0), token: 3, slot: at(60), until: at(70) };
    m.started(a, c3).unwrap();
    m.died(a);
    assert_eq!(m.orphans, 1);
    m.progress(&t, at(70), S).unwrap();
    assert_eq!(m.progress(&t, at(72), S).unwrap_err().invariant, Invariant::CronProgress);
    let c4 = Claim { token: 4, ..c3 };
    m.started(b, c4).unwrap();
    m.recorded(c4).unwrap();
    m.progress(&t, at(0), S).unwrap();
    // A job overdue by the slack exactly is not late yet; by more, it is.
    m.progress(&t, at(101), S).unwrap();
    assert!(m.progress(&t, at(102), S).unwrap_err().detail.contains("has not run"));
    // Each stale record refused is counted.
    m.refused();
    m.refused();
    assert_eq!(m.stale, 2);
}

#[test]
fn an_orphaned_run_is_late_only_past_its_lease_and_the_slack() {
    let t = table(&[(60, 1_000)]);
    let mut m = CronMonitor::new();
    let c = Claim { job: JobId(0), token: 1, slot: at(60), until: at(70) };
    m.started(WorkerId(1), c).unwrap();
    m.died(WorkerId(1));
    m.progress(&t, at(71), S).unwrap();
    assert_eq!(m.progress(&t, at(72), S).unwrap_err().invariant, Invariant::CronProgress);
}

#[test]
fn a_table_decoded_from_its_rows_has_those_rows_and_names_them() {
    let rows = table(&[(5, 0), (7, 3)]).jobs().to_vec();
    assert_eq!(Table::from_jobs(rows.clone()).jobs(), rows.as_slice());
    assert_eq!(JobId(3).to_string(), "job3");
}

#[test]
fn jobs_are_numbered_as_they_are_added() {
    let mut t = Table::new();
    let ids: Vec<JobId> = [1u32, 2, 3].iter().map(|&s| t.add(S * s, at(0)).unwrap()).collect();
    assert_eq!(ids, [JobId(0), JobId(1), JobId(2)]);
    for (id, s) in ids.iter().zip([1u32, 2, 3]) {
        assert_eq!(t.jobs()[id.0 as usize].interval, S * s);
    }
}

proptest! {
    /// The lease outlives every holder the arbiter can let live, with a whole timeout to spare:
    /// a holder's last heartbeat before its claim is at most `timeout / 2` old, the arbiter kills
    /// it `max(timeout, graceful_timeout)` after that at the latest, and the hard kill follows
    /// `kill_grace` later.
    #[test]
    fn the_lease_outlives_any_holder_the_arbiter_lets_live(
        t in 1u64..100_000, g in 1u64..100_000, k in 1u64..100_000,
    ) {
        let (t, g, k) = (Duration::from_millis(t), Duration::from_millis(g), Duration::from_millis(k));
        let lives = t / 2 + t.max(g) + k;
        let l = lease(t, g, k);
        prop_assert!(l >= lives + t / 2, "lease {l:?} for a holder living up to {lives:?}");
        prop_assert!(fence_after(l) < l, "a holder fences itself before its lease ends");
    }
}

#[test]
fn a_cron_worker_counts_every_job_it_ran_and_ignores_everything_once_exited() {
    let mut w = CronWorker::new(config(0), at(0));
    w.start(at(0));
    drain(&mut w);
    for n in 1..=3u64 {
        let c = Claim { job: JobId(0), token: n, slot: at(n), until: at(n + 10) };
        w.handle(at(n), CronInput::Claimed(Some(c), None));
        w.handle(at(n), CronInput::JobDone { ok: true });
        w.handle(at(n), CronInput::Finished { recorded: true });
        drain(&mut w);
    }
    assert_eq!(w.done(), 3);
    // Idle (nothing due), TERM: it leaves at once.
    w.handle(at(4), CronInput::Claimed(None, Some(S * 100)));
    drain(&mut w);
    w.handle(at(4), CronInput::Signal(WorkerSignal::Term));
    assert_eq!(
        drain(&mut w),
        [CronAction::Send(WorkerMsg::Bye { reason: ByeReason::Stop }), CronAction::Exit(EXIT_OK)]
    );
    // Exited: nothing more, whatever comes.
    for input in [CronInput::Signal(WorkerSignal::Quit), CronInput::Signal(WorkerSignal::Term)] {
        w.handle(at(5), input);
        assert!(drain(&mut w).is_empty(), "{input:?} after the exit");
    }
}

#[derive(Clone, Debug)]
enum Op {
    Claim(usize),
    Finish(usize, bool),
    Die(usize),
    Wait(u8),
    Jump(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..3usize).prop_map(Op::Claim),
        3 => (0..3usize, any::<bool>()).prop_map(|(h, ok)| Op::Finish(h, ok)),
        1 => (0..3usize).prop_map(Op::Die),
        3 => (1..8u8).prop_map(Op::Wait),
        1 => (1..30u8).prop_map(Op::Jump),
    ]
}

proptest! {
    /// Three holders over a table of two jobs, with the runtime's discipline: a holder is dead
    /// before its lease ends (the arbiter's timeout), except that a jump of the store's clock
    /// outruns it. The monitor never fires, and the table records exactly what it saw.
    #[test]
    fn leases_and_fencing_keep_runs_exclusive(ops in proptest::collection::vec(op(), 1..80)) {
        let mut t = table(&[(5, 0), (7, 3)]);
        let mut m = CronMonitor::new();
        let mut now = at(0);
        let mut held: [Option<Claim>; 3] = [None; 3];
        for op in ops {
            match op {
                Op::Claim(h) if held[h].is_none() => {
                    if let Poll::Claimed(c) = t.claim(now, h as u64, LEASE) {
                        m.started(WorkerId(h as u64), c).map_err(|v| TestCaseError::fail(v.to_string()))?;
                        held[h] = Some(c);
                    }
                }
                Op::Finish(h, ok) => {
                    if let Some(c) = held[h].take() {
                        m.ended(WorkerId(h as u64));
                        match t.finish(now, &c, ok) {
                            Ok(next) => {
                                prop_assert!(next > now);
                                m.recorded(c).map_err(|v| TestCaseError::fail(v.to_string()))?;
                            }
                            Err(_) => m.refused(),
                        }
                    }
                }
                Op::Die(h) => {
                    if held[h].take().is_some() {
                        m.died(WorkerId(h as u64));
                    }
                }
                Op::Wait(s) => {
                    now = now + S * u32::from(s);
                    // The arbiter kills a silent holder before its lease ends.
                    for (h, c) in held.iter_mut().enumerate() {
                        if c.is_some_and(|c| c.until <= now) {
                            *c = None;
                            m.died(WorkerId(h as u64));
                        }
                    }
                }
                Op::Jump(s) => {
                    now = now + S * u32::from(s);
                    m.jumped_forward();
                }
                Op::Claim(_) => {}
            }
        }
        let runs: u64 = t.jobs().iter().map(|j| j.runs).sum();
        prop_assert_eq!(runs, m.runs);
        // With the holders gone and time to catch up, everything due runs and orphans are retried.
        for (h, c) in held.iter_mut().enumerate() {
            if c.take().is_some() {
                m.died(WorkerId(h as u64));
            }
        }
        now = now + LEASE;
        for _ in 0..8 {
            while let Poll::Claimed(c) = t.claim(now, 9, LEASE) {
                m.started(WorkerId(9), c).map_err(|v| TestCaseError::fail(v.to_string()))?;
                m.ended(WorkerId(9));
                t.finish(now, &c, true).map_err(|e| TestCaseError::fail(e.to_string()))?;
                m.recorded(c).map_err(|v| TestCaseError::fail(v.to_string()))?;
            }
        }
        m.progress(&t, now, Duration::ZERO).map_err(|v| TestCaseError::fail(v.to_string()))?;
    }
}

#[test]
fn short_jobs_back_to_back_stay_below_the_arbiter_flood_limit() {
    use crate::arbiter::MAX_ALIVES_PER_WINDOW;
    let timeout = Duration::from_millis(1_000);
    let mut w = CronWorker::new(
        CronConfig { timeout, max_jobs: 0, max_idle: S, retry: S, lease: lease(timeout, timeout, S) },
        Instant::ZERO,
    );
    w.start(Instant::ZERO);
    let mut now = Instant::ZERO;
    let mut alives = Vec::new();
    for token in 1..=500 {
        for a in drain(&mut w) {
            if let CronAction::Send(WorkerMsg::Alive { .. }) = a {
                alives.push(now);
            }
        }
        let c = Claim { job: JobId(0), token, slot: now, until: now + LEASE };
        w.handle(now, CronInput::Claimed(Some(c), None));
        now = now + Duration::from_millis(2);
        w.handle(now, CronInput::JobDone { ok: true });
        w.handle(now, CronInput::Finished { recorded: true });
    }
    for (i, &t) in alives.iter().enumerate() {
        let in_window = alives[i..].iter().take_while(|&&u| u < t + timeout / 2).count();
        assert!(
            in_window <= usize::from(MAX_ALIVES_PER_WINDOW),
            "{in_window} ALIVE within timeout/2 from {t:?}"
        );
    }
    assert!(alives.len() >= 8, "it still heartbeats: {}", alives.len());
}

/// The timer table, from both sides: each timer fires at its deadline and not a nanosecond
/// before, and `poll_timeout` is the earliest of them.
#[test]
fn each_timer_fires_at_its_deadline_and_not_before() {
    let mut w = CronWorker::new(config(0), at(0));
    w.start(at(0));
    drain(&mut w);
    // Nothing due for 100 s: the claim waits for max_idle (60 s), the heartbeat for 15 s.
    w.handle(at(0), CronInput::Claimed(None, Some(S * 100)));
    assert_eq!(w.timer(Timer::Heartbeat), Some(at(15)));
    assert_eq!(w.timer(Timer::Claim), Some(at(60)));
    assert_eq!(w.poll_timeout(), Some(at(15)));
    for (timer, due, fired) in
        [(Timer::Heartbeat, at(15), alive(15)), (Timer::Claim, at(60), CronAction::Claim)]
    {
        // The heartbeats before the claim's deadline go out at theirs.
        while w.poll_timeout() < Some(due) {
            let t = w.poll_timeout().unwrap();
            w.handle_timeout(t);
            assert_eq!(drain(&mut w), [alive(t.0 / 1_000_000_000)]);
        }
        assert_eq!(w.timer(timer), Some(due));
        w.handle_timeout(Instant(due.0 - 1));
        assert!(drain(&mut w).is_empty(), "{timer:?} fired early");
        w.handle_timeout(due);
        assert!(drain(&mut w).contains(&fired), "{timer:?} did not fire at {due:?}");
    }
    // While the claim is out, no timer runs.
    assert_eq!(w.timers().count(), 0);
    assert_eq!(w.poll_timeout(), None);
}

/// The fence (issue #20): while a job runs, the holder stops itself `fence_after(lease)` after it
/// asked for the claim — not a nanosecond before, and before the lease (which the store counts
/// from later) can end; nothing else is due meanwhile, and nothing is left pending after it.
#[test]
fn a_running_job_is_fenced_before_its_lease_ends_and_not_before_its_fence() {
    let mut w = CronWorker::new(config(0), at(0));
    w.start(at(0));
    drain(&mut w);
    let c = Claim { job: JobId(0), token: 1, slot: at(0), until: at(91) };
    // The store took the claim 2 s after the worker asked: its lease ends at 2 + 91 s.
    w.handle(at(2), CronInput::Claimed(Some(c), None));
    assert_eq!(drain(&mut w), [CronAction::Run(c)]);
    let fence = at(0) + fence_after(S * 91);
    assert_eq!(w.timer(Timer::Fence), Some(fence));
    assert!(fence < at(2) + S * 91, "the fence comes before the lease's end");
    w.handle_timeout(Instant(fence.0 - 1));
    assert_eq!(drain(&mut w), [], "not a nanosecond early");
    w.handle_timeout(fence);
    assert_eq!(drain(&mut w), [CronAction::Exit(EXIT_FENCED)]);
    assert_eq!(w.state(), CronState::Exited);
    assert_eq!(w.poll_timeout(), None);
    // A job that returns in time disarms it.
    let mut w = CronWorker::new(config(0), at(0));
    w.start(at(0));
    drain(&mut w);
    w.handle(at(0), CronInput::Claimed(Some(c), None));
    drain(&mut w);
    w.handle(at(3), CronInput::JobDone { ok: true });
    assert_eq!(w.timer(Timer::Fence), None);
}
