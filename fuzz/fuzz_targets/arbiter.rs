//! Arbitrary sequences of inputs (signals, commands, messages including garbage and forgeries,
//! exits, spawn failures, readiness, time steps) into the arbiter core, with every invariant of
//! docs/architecture.md checked after each step by the same `Monitor` the simulator uses.
#![no_main]

use arbitrary::Arbitrary;
use herd_protocol::arbiter::{AcceptMode, Command, Config, ExitStatus, Input, WorkerId, domain};
use herd_protocol::invariants::Checked;
use herd_protocol::message::{ByeReason, DecodeError, ListenerId, WorkerMsg};
use herd_protocol::signals::Sig;
use herd_protocol::time::Instant;
use libfuzzer_sys::fuzz_target;
use std::time::Duration;

#[derive(Arbitrary, Debug)]
struct Setup {
    workers: u8,
    mode: u8,
    listeners: u8,
    max_requests: u8,
    jitter: u8,
    timeout_ms: u16,
    max_boot_failures: u8,
    seed: u64,
}

#[derive(Arbitrary, Debug)]
enum Msg {
    Accept,
    Alive(u64),
    Accepted(u8),
    Empty(u8),
    Bye(u8),
}

#[derive(Arbitrary, Debug)]
enum Op {
    Signal(u8),
    Incr(u8),
    Decr(u8),
    Reload,
    Stop(bool),
    Upgrade,
    /// A message from the n-th worker of the table (or an unknown id when the table is empty).
    Message(u8, Msg),
    Garbage(u8),
    /// The n-th worker exits: code or signal.
    Exit(u8, bool, i8),
    SpawnFailed(u8),
    Ready(u8, Option<u8>),
    ReexecEnded,
    /// Time passes (ms), then the arbiter's timeout is handled.
    Advance(u16),
    /// Time passes up to the arbiter's own next deadline, which is then handled.
    Deadline,
}

fuzz_target!(|input: (Setup, Vec<Op>)| {
    let (setup, ops) = input;
    let config = Config {
        workers: u32::from(setup.workers % 8) + 1,
        cron_workers: u32::from(setup.workers / 8 % 3),
        accept_mode: [AcceptMode::Signaled, AcceptMode::Shared, AcceptMode::Auto]
            [usize::from(setup.mode % 3)],
        listeners: u16::from(setup.listeners % 3) + 1,
        max_requests: u32::from(setup.max_requests % 10),
        max_requests_jitter: u32::from(setup.jitter % 10),
        // Inside the configuration domain (`arbiter::domain`), its edges included: 0 draws no
        // timeout (`--timeout 0`), which cron workers refuse; the smallest one is 100 ms.
        timeout: match setup.timeout_ms % 5_001 {
            0 if setup.workers / 8 % 3 == 0 => None,
            ms => Some(Duration::from_millis(u64::from(ms)).max(*domain::TIMEOUT.start())),
        },
        graceful_timeout: Duration::from_millis(700),
        kill_grace: Duration::from_millis(300),
        spawn_backoff: Duration::from_millis(10),
        spawn_backoff_max: Duration::from_millis(500),
        // 0 (never halt) and the smallest rows included.
        max_boot_failures: u32::from(setup.max_boot_failures % 5),
        seed: setup.seed,
    };
    let (mut c, _) = Checked::new(config, Instant::ZERO).expect("valid config");
    let mut now = Instant::ZERO;
    for op in ops.into_iter().take(500) {
        let pick = |n: u8| -> WorkerId {
            let ids: Vec<WorkerId> = c.arbiter.workers().keys().copied().collect();
            if ids.is_empty() { WorkerId(u64::from(n)) } else { ids[usize::from(n) % ids.len()] }
        };
        let input = match op {
            Op::Signal(s) => Input::Signal(Sig::ALL[usize::from(s) % Sig::ALL.len()]),
            Op::Incr(n) => Input::Control(Command::Incr(u32::from(n % 4))),
            Op::Decr(n) => Input::Control(Command::Decr(u32::from(n % 4))),
            Op::Reload => Input::Control(Command::Reload),
            Op::Stop(graceful) => Input::Control(Command::Stop { graceful }),
            Op::Upgrade => Input::Control(Command::Upgrade),
            Op::Message(n, m) => {
                let msg = match m {
                    Msg::Accept => WorkerMsg::Accept,
                    Msg::Alive(timestamp) => WorkerMsg::Alive { timestamp },
                    Msg::Accepted(s) => WorkerMsg::Accepted { socket: ListenerId(u16::from(s % 4)) },
                    Msg::Empty(s) => WorkerMsg::Empty { socket: ListenerId(u16::from(s % 4)) },
                    Msg::Bye(r) => WorkerMsg::Bye { reason: ByeReason::ALL[usize::from(r) % 4] },
                };
                Input::Message { from: pick(n), msg }
            }
            Op::Garbage(n) => Input::Malformed { from: pick(n), error: DecodeError::UnknownVerb },
            Op::Exit(n, by_signal, v) => {
                let status = if by_signal {
                    ExitStatus::Signaled(i32::from(v))
                } else {
                    ExitStatus::Code(i32::from(v))
                };
                Input::Exited { id: pick(n), status }
            }
            Op::SpawnFailed(n) => Input::SpawnFailed { id: pick(n) },
            Op::Ready(s, q) => {
                Input::Ready { socket: ListenerId(u16::from(s % 4)), queued: q.map(u32::from) }
            }
            Op::ReexecEnded => Input::ReexecEnded,
            Op::Advance(ms) => {
                now = now + Duration::from_millis(u64::from(ms));
                if let Err(v) = c.tick(now) {
                    panic!("invariant broken: {v}");
                }
                continue;
            }
            Op::Deadline => {
                if let Some(t) = c.arbiter.poll_timeout() {
                    now = now.max(t);
                    if let Err(v) = c.tick(now) {
                        panic!("invariant broken: {v}");
                    }
                }
                continue;
            }
        };
        if let Err(v) = c.step(now, input) {
            panic!("invariant broken: {v}");
        }
    }
});
