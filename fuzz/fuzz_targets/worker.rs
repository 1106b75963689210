//! Arbitrary input sequences into the worker core, both kinds (sync and async with 1 to 4
//! connections), every accept mode: it never panics, and what it does stays within the protocol —
//! it never serves a connection it did not take, never holds more connections than its limit,
//! never acts after exiting, and never sends `ACCEPTED`/`EMPTY` for a dispatch it was not given.
#![no_main]

use arbitrary::Arbitrary;
use herd_protocol::arbiter::AcceptMode;
use herd_protocol::message::{ArbiterMsg, ListenerId, WorkerMsg};
use herd_protocol::time::Instant;
use herd_protocol::worker::{Action, Input, Worker, WorkerConfig, WorkerKind, WorkerSignal};
use libfuzzer_sys::fuzz_target;
use std::time::Duration;

#[derive(Arbitrary, Debug)]
enum Op {
    Dispatch(u8),
    Malformed,
    Accepted(u8),
    Empty,
    Failed,
    Readable,
    RequestDone,
    Closed,
    Term,
    Quit,
    Parent,
    Memory,
    Tick(u16),
}

#[derive(Arbitrary, Debug)]
struct Case {
    mode: u8,
    connections: u8,
    max_requests: u8,
    ops: Vec<Op>,
}

fuzz_target!(|case: Case| {
    let mode = [AcceptMode::Shared, AcceptMode::Signaled, AcceptMode::Auto][usize::from(case.mode % 3)];
    let kind = match case.connections % 5 {
        0 => WorkerKind::Sync,
        n => WorkerKind::Async { connections: u32::from(n) },
    };
    let limit = match kind {
        WorkerKind::Sync => 1,
        WorkerKind::Async { connections } => connections,
    };
    let mut w = Worker::new(
        WorkerConfig {
            accept_mode: mode,
            timeout: Duration::from_secs(10),
            max_requests: u32::from(case.max_requests % 8),
            kind,
        },
        Instant::ZERO,
    );
    let mut now = 0u64;
    let mut exited = false;
    // What the driver knows: the accept asked for, the dispatch being answered, the connections
    // taken (each may be served once) and those still open (async).
    let mut pending_accept: Option<Option<ListenerId>> = None;
    let mut told: Option<ListenerId> = None;
    let (mut accepted, mut served, mut open) = (0u32, 0u32, 0u32);
    w.start(Instant(now));
    for op in case.ops.iter().take(256) {
        while let Some(a) = w.poll_action() {
            assert!(!exited, "{a:?} after exiting");
            match a {
                Action::Accept(which) => {
                    pending_accept = Some(which);
                    told = which;
                }
                Action::Serve(_) => {
                    served += 1;
                    assert!(served <= accepted, "serves a connection it did not take");
                }
                Action::Send(WorkerMsg::Accepted { socket } | WorkerMsg::Empty { socket }) => {
                    assert_eq!(told.take(), Some(socket), "answers a dispatch it was not given");
                }
                Action::Exit(_) => exited = true,
                _ => {}
            }
        }
        assert!(w.open_connections() <= limit, "{} connections open, limit {limit}", w.open_connections());
        let input = match *op {
            Op::Dispatch(s) => Input::Message(ArbiterMsg::Accept { socket: ListenerId(u16::from(s % 2)) }),
            Op::Malformed => Input::Malformed,
            // Accept results only for an accept that was asked for, as the runtime reports them.
            Op::Accepted(s) => match pending_accept.take() {
                Some(which) => {
                    accepted += 1;
                    open += 1;
                    Input::Accepted(which.unwrap_or(ListenerId(u16::from(s % 2))))
                }
                None => continue,
            },
            Op::Empty => match pending_accept.take() {
                Some(_) => Input::AcceptEmpty,
                None => continue,
            },
            // Out of descriptors: the worker backs off, then answers as if it found nothing.
            Op::Failed => match pending_accept.take() {
                Some(_) => Input::AcceptFailed,
                None => continue,
            },
            Op::Readable => Input::ListenersReadable,
            Op::RequestDone => Input::RequestDone,
            Op::Closed => {
                if open == 0 || kind == WorkerKind::Sync {
                    continue;
                }
                open -= 1;
                Input::ConnectionClosed
            }
            Op::Term => Input::Signal(WorkerSignal::Term),
            Op::Quit => Input::Signal(WorkerSignal::Quit),
            Op::Parent => Input::ParentChanged,
            Op::Memory => Input::OverMemory,
            Op::Tick(ms) => {
                now += u64::from(ms) * 1_000_000;
                w.handle_timeout(Instant(now));
                continue;
            }
        };
        w.handle(Instant(now), input);
    }
});
