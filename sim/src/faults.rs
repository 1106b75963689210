//! The fault mix of one run (swarm testing): each seed enables a random subset of fault kinds,
//! each with a random intensity, so that campaigns explore quiet runs, single-fault runs and
//! storms alike. A mask can switch kinds off (shrinking does this).

use herd_protocol::rng::Rng;
use std::time::Duration;

/// The kinds of fault, one bit each in a mask.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultKind {
    /// Random SIGKILL of a worker from outside (the OOM killer); with cron workers, half the kills
    /// of one running a job are its arbiter dying instead (the holder runs on, orphaned).
    Kill = 0,
    /// A request hangs past the timeout.
    Hang = 1,
    /// A request crashes its worker (abort).
    Crash = 2,
    /// A worker dies before booting.
    BootCrash = 3,
    /// fork() fails.
    ForkFail = 4,
    /// Storms of TTIN/TTOU/HUP/USR2/USR1 at the arbiter.
    SignalStorm = 5,
    /// Pipe delays.
    Delay = 6,
    /// Workers' wall clocks jump (ALIVE timestamps).
    ClockJump = 7,
    /// A worker writes garbage on its pipe.
    Garbage = 8,
}

impl FaultKind {
    /// Every kind.
    pub const ALL: [FaultKind; 9] = [
        FaultKind::Kill,
        FaultKind::Hang,
        FaultKind::Crash,
        FaultKind::BootCrash,
        FaultKind::ForkFail,
        FaultKind::SignalStorm,
        FaultKind::Delay,
        FaultKind::ClockJump,
        FaultKind::Garbage,
    ];
    /// Mask with every kind allowed.
    pub const ALL_MASK: u32 = (1 << 9) - 1;

    /// Short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Hang => "hang",
            FaultKind::Crash => "crash",
            FaultKind::BootCrash => "boot-crash",
            FaultKind::ForkFail => "fork-fail",
            FaultKind::SignalStorm => "storm",
            FaultKind::Delay => "delay",
            FaultKind::ClockJump => "clock-jump",
            FaultKind::Garbage => "garbage",
        }
    }
}

/// Probabilities and rates of one run. Zero means off.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultMix {
    /// Kinds that are on (bit per [`FaultKind`]).
    pub mask: u32,
    /// Mean time between outside SIGKILLs.
    pub kill_every: Option<Duration>,
    /// Probability that a request hangs.
    pub hang: f64,
    /// Probability that a request crashes its worker.
    pub crash: f64,
    /// Probability that a fresh worker dies before booting.
    pub boot_crash: f64,
    /// Probability that a fork fails.
    pub fork_fail: f64,
    /// Mean time between signal storms.
    pub storm_every: Option<Duration>,
    /// Largest pipe delay.
    pub delay_max: Duration,
    /// Mean time between clock jumps.
    pub jump_every: Option<Duration>,
    /// Probability that a frame a worker sends is garbage.
    pub garbage: f64,
}

impl FaultMix {
    /// Draws the mix of a run: each kind allowed by `allowed` is on with probability 1/2.
    pub fn draw(rng: &mut Rng, allowed: u32) -> Self {
        let mut mix = FaultMix::default();
        for kind in FaultKind::ALL {
            // Always draw both numbers, so switching one kind off does not shift the others.
            let on = rng.chance(0.5) && allowed & (1 << kind as u32) != 0;
            let level = (rng.up_to(999) + 1) as f64 / 1000.0;
            if !on {
                continue;
            }
            mix.mask |= 1 << kind as u32;
            match kind {
                FaultKind::Kill => {
                    mix.kill_every = Some(Duration::from_millis(500 + (level * 20_000.0) as u64))
                }
                FaultKind::Hang => mix.hang = level * 0.05,
                FaultKind::Crash => mix.crash = level * 0.05,
                FaultKind::BootCrash => mix.boot_crash = level * 0.5,
                FaultKind::ForkFail => mix.fork_fail = level * 0.3,
                FaultKind::SignalStorm => {
                    mix.storm_every = Some(Duration::from_millis(1_000 + (level * 30_000.0) as u64))
                }
                FaultKind::Delay => mix.delay_max = Duration::from_micros((level * 20_000.0) as u64),
                FaultKind::ClockJump => {
                    mix.jump_every = Some(Duration::from_millis(1_000 + (level * 30_000.0) as u64))
                }
                FaultKind::Garbage => mix.garbage = level * 0.01,
            }
        }
        mix
    }

    /// The names of the kinds that are on.
    pub fn describe(&self) -> String {
        let on: Vec<&str> =
            FaultKind::ALL.iter().filter(|k| self.mask & (1 << **k as u32) != 0).map(|k| k.name()).collect();
        if on.is_empty() { "none".into() } else { on.join(",") }
    }
}
