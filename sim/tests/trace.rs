//! Trace validation of worker and cron worker traces: a driver that keeps the core's rules passes,
//! and each way a driver can part from its core is named (docs/verification.md).

use herd_protocol::arbiter::AcceptMode;
use herd_protocol::cron::{Claim, CronAction, CronConfig, CronInput, CronWorker, JobId, fence_after};
use herd_protocol::message::{ArbiterMsg, ListenerId};
use herd_protocol::time::Instant;
use herd_protocol::trace::{CronEntry, Entry, WorkerEntry};
use herd_protocol::worker::{Action, Input, Worker, WorkerConfig, WorkerKind};
use herd_sim::trace::{check_cron, check_worker};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(2);

fn ms(n: u64) -> Instant {
    Instant::ZERO + Duration::from_millis(n)
}

fn lines<E: serde::Serialize>(entries: &[E]) -> String {
    entries.iter().map(|e| serde_json::to_string(e).unwrap() + "\n").collect()
}

/// Records a sync worker driven as the runtime drives it.
struct Driver {
    core: Worker,
    out: Vec<WorkerEntry>,
}

impl Driver {
    fn start(at: Instant) -> Driver {
        let config = WorkerConfig {
            accept_mode: AcceptMode::Signaled,
            timeout: TIMEOUT,
            max_requests: 0,
            kind: WorkerKind::Sync,
        };
        let mut core = Worker::new(config.clone(), at);
        core.start(at);
        let mut d = Driver { core, out: vec![Entry::New { config, at }] };
        d.drain(at);
        d
    }

    /// Carries out every action, answering accepts with a connection on the listener asked for
    /// and requests with their end.
    fn drain(&mut self, at: Instant) {
        while let Some(a) = self.core.poll_action() {
            self.out.push(Entry::Done(a));
            let answer = match a {
                Action::Accept(which) => Input::Accepted(which.unwrap_or(ListenerId(0))),
                Action::Serve(_) => Input::RequestDone,
                _ => continue,
            };
            self.fed(at, answer);
        }
    }

    fn fed(&mut self, at: Instant, input: Input) {
        self.out.push(Entry::Fed { at, input });
        self.core.handle(at, input);
    }

    fn read_and_feed(&mut self, at: Instant, input: Input) {
        self.out.push(Entry::Queued(input));
        self.fed(at, input);
        self.drain(at);
    }

    fn tick(&mut self, at: Instant) {
        self.out.push(Entry::Timeout { at });
        self.core.handle_timeout(at);
        self.drain(at);
    }
}

/// A sync worker asked for work twice and heartbeating in between, as the runtime drives it.
fn good_worker() -> Driver {
    let mut d = Driver::start(ms(0));
    d.read_and_feed(ms(100), Input::Message(ArbiterMsg::Accept { socket: ListenerId(0) }));
    d.tick(ms(1_150));
    d.read_and_feed(ms(1_200), Input::Message(ArbiterMsg::Accept { socket: ListenerId(1) }));
    d.tick(ms(2_300));
    d
}

#[test]
fn a_worker_driven_by_the_rules_passes() {
    let d = good_worker();
    let (entries, problem) = check_worker(&lines(&d.out));
    assert_eq!(problem, None);
    assert_eq!(entries, d.out.len() as u64);
    assert!(d.out.iter().filter(|e| matches!(e, Entry::Done(Action::Serve(_)))).count() == 2);
}

#[test]
fn an_input_fed_before_the_actions_it_follows_is_caught() {
    let mut out = good_worker().out;
    // Read and feed the first frame before the start's ALIVE and ACCEPT are carried out.
    let fed = out.iter().position(|e| matches!(e, Entry::Fed { input: Input::Message(_), .. })).unwrap();
    let frame: Vec<WorkerEntry> = out.drain(fed - 1..=fed).collect();
    out.splice(1..1, frame);
    let (_, problem) = check_worker(&lines(&out));
    assert!(problem.unwrap().contains("before the core's"));
}

#[test]
fn an_accept_answered_from_another_listener_is_caught() {
    let mut out = good_worker().out;
    for e in &mut out {
        if let Entry::Fed { input: input @ Input::Accepted(ListenerId(1)), .. } = e {
            *input = Input::Accepted(ListenerId(0));
        }
    }
    let (_, problem) = check_worker(&lines(&out));
    assert!(problem.unwrap().contains("does not answer Accept(Some(ListenerId(1)))"));
}

#[test]
fn a_frame_read_and_left_behind_by_a_timeout_pass_is_caught() {
    let mut d = good_worker();
    d.out.push(Entry::Queued(Input::Message(ArbiterMsg::Accept { socket: ListenerId(0) })));
    d.tick(ms(2_400));
    let (_, problem) = check_worker(&lines(&d.out));
    assert!(problem.unwrap().contains("a timeout pass ran with 1 input(s) read and not fed"));
}

#[test]
fn a_runtime_that_blocks_past_the_deadline_is_caught_and_not_one_that_blocks_until_it() {
    let d = good_worker();
    let due = d.core.poll_timeout().expect("a heartbeat pending");
    let with = |until: Option<Instant>| {
        let mut out = d.out.clone();
        out.push(Entry::Wait { at: due - Duration::from_millis(400), until });
        check_worker(&lines(&out)).1
    };
    // Waits are whole milliseconds, rounded up: up to a millisecond past is the deadline itself.
    assert_eq!(with(Some(due)), None);
    assert_eq!(with(Some(due + Duration::from_millis(1))), None);
    assert!(
        with(Some(due + Duration::from_millis(1) + Duration::from_nanos(1)))
            .unwrap()
            .contains("past the core's deadline")
    );
    assert!(with(None).unwrap().contains("past the core's deadline"), "blocking with no end at all");
    // A deadline already past when it blocks (the runtime was stalled): it must not sleep.
    let late = due + Duration::from_secs(5);
    let mut out = d.out.clone();
    out.push(Entry::Wait { at: late, until: Some(late) });
    assert_eq!(check_worker(&lines(&out)).1, None);
    out.pop();
    out.push(Entry::Wait { at: late, until: Some(late + Duration::from_millis(2)) });
    assert!(check_worker(&lines(&out)).1.unwrap().contains("past the core's deadline"));
    // Blocking with a frame read and not fed.
    let mut out = d.out.clone();
    out.push(Entry::Queued(Input::Message(ArbiterMsg::Accept { socket: ListenerId(0) })));
    out.push(Entry::Wait { at: due - Duration::from_millis(400), until: Some(due) });
    assert!(check_worker(&lines(&out)).1.unwrap().contains("read and not fed"));
}

#[test]
fn an_action_the_core_did_not_ask_for_is_caught() {
    let mut out = good_worker().out;
    out.push(Entry::Done(Action::Exit(0)));
    let (_, problem) = check_worker(&lines(&out));
    assert!(problem.unwrap().contains("which the core did not ask for"));
}

/// A cron worker that claims one job and runs it for `ran`.
fn cron_run(ran: Duration) -> (Vec<CronEntry>, Instant) {
    let lease = Duration::from_secs(8);
    let config = CronConfig {
        timeout: TIMEOUT,
        max_jobs: 0,
        max_idle: Duration::from_secs(1),
        retry: Duration::from_secs(1),
        lease,
    };
    let mut core = CronWorker::new(config.clone(), ms(0));
    core.start(ms(0));
    let mut out = vec![Entry::New { config, at: ms(0) }];
    let claim = Claim { job: JobId(0), token: 1, slot: ms(0), until: ms(8_000) };
    while let Some(a) = core.poll_action() {
        out.push(Entry::Done(a));
        let answer = match a {
            CronAction::Claim => CronInput::Claimed(Some(claim), None),
            CronAction::Run(_) => CronInput::JobDone { ok: true },
            CronAction::Finish { .. } => break,
            _ => continue,
        };
        let at = if matches!(answer, CronInput::JobDone { .. }) { ms(10) + ran } else { ms(10) };
        out.push(Entry::Fed { at, input: answer });
        core.handle(at, answer);
    }
    (out, ms(0) + fence_after(lease))
}

#[test]
fn a_cron_job_is_held_to_its_fence() {
    let (within, fence) = cron_run(Duration::from_millis(6_000));
    assert_eq!(check_cron(&lines(&within)).1, None);
    let (past, _) = cron_run(Duration::from_millis(7_000));
    let (_, problem) = check_cron(&lines(&past));
    assert!(problem.unwrap().contains(&format!("the job ran past its fence at {fence:?}")));
}

#[test]
fn a_cron_answer_to_the_wrong_action_is_caught() {
    let (mut out, _) = cron_run(Duration::from_millis(10));
    // Answer the claim as if it were a finish.
    for e in &mut out {
        if let Entry::Fed { input: input @ CronInput::Claimed(..), .. } = e {
            *input = CronInput::Finished { recorded: true };
        }
    }
    let (_, problem) = check_cron(&lines(&out));
    assert!(problem.unwrap().contains("does not answer Claim"));
}
