//! A random walk of an arbiter (through its monitor): the steps and how they are applied, shared
//! by the property tests that drive one.
#![allow(dead_code)]

use herd_protocol::arbiter::{Config, ExitStatus, Input};
use herd_protocol::invariants::Checked;
use herd_protocol::message::WorkerMsg;
use herd_protocol::signals::Sig;
use herd_protocol::time::Instant;
use proptest::prelude::*;
use std::time::Duration;

/// Where every run starts: late enough that a translation back never saturates at zero.
pub const T0: Instant = Instant(1_000_000_000_000);

#[derive(Clone, Copy, Debug)]
pub enum Step {
    /// Time passes (ms), then the timeout pass.
    Wait(u32),
    Signal(u8),
    /// The n-th worker of the table (mod its size) says ALIVE.
    Alive(u8),
    /// ... says ACCEPT.
    Accept(u8),
    /// ... dies (by SIGKILL, or exits 0).
    Exit(u8, bool),
}

pub fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0u32..4_000).prop_map(Step::Wait),
        1 => any::<u8>().prop_map(Step::Signal),
        3 => any::<u8>().prop_map(Step::Alive),
        2 => any::<u8>().prop_map(Step::Accept),
        1 => (any::<u8>(), any::<bool>()).prop_map(|(n, k)| Step::Exit(n, k)),
    ]
}

const SIGNALS: [Sig; 5] = [Sig::Ttin, Sig::Ttou, Sig::Hup, Sig::Winch, Sig::Term];

/// Applies `step` at `now` (after `Wait` moved it); the actions, or the violation.
pub fn apply(c: &mut Checked, now: &mut Instant, step: Step) -> Result<Vec<String>, String> {
    let pick = |c: &Checked, n: u8| {
        let ids: Vec<_> = c.arbiter.workers().keys().copied().collect();
        (!ids.is_empty()).then(|| ids[usize::from(n) % ids.len()])
    };
    let input = match step {
        Step::Wait(ms) => {
            *now = *now + Duration::from_millis(u64::from(ms));
            let actions = c.tick(*now).map_err(|v| v.to_string())?;
            return Ok(actions.iter().map(|a| format!("{a:?}")).collect());
        }
        Step::Signal(n) => Input::Signal(SIGNALS[usize::from(n) % SIGNALS.len()]),
        Step::Alive(n) | Step::Accept(n) | Step::Exit(n, _) => {
            let Some(from) = pick(c, n) else { return Ok(Vec::new()) };
            match step {
                Step::Alive(_) => Input::Message { from, msg: WorkerMsg::Alive { timestamp: 0 } },
                Step::Accept(_) => Input::Message { from, msg: WorkerMsg::Accept },
                Step::Exit(_, true) => Input::Exited { id: from, status: ExitStatus::Signaled(9) },
                _ => Input::Exited { id: from, status: ExitStatus::Code(0) },
            }
        }
    };
    let actions = c.step(*now, input).map_err(|v| v.to_string())?;
    Ok(actions.iter().map(|a| format!("{a:?}")).collect())
}

pub fn config(workers: u32, timeout: Option<Duration>) -> Config {
    Config { workers, timeout, graceful_timeout: Duration::from_secs(5), ..Config::default() }
}

/// A request budget and its jitter, corners included (a jitter without its base, B27).
pub fn budget() -> impl Strategy<Value = (u32, u32)> {
    (prop_oneof![Just(0u32), 1u32..4], prop_oneof![Just(0u32), 1u32..4])
}

/// `max_boot_failures`, corners included: never (0), the first failure halts (1), short rows,
/// the default.
pub fn boot_limit() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0u32), 1u32..4, Just(Config::default().max_boot_failures)]
}
