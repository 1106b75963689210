//! `herd-explore --workers 3 --connections 2 --faults 1`: explores every state of an arbiter, its
//! workers, their pipes and a listener within those bounds, and checks every invariant.

use clap::{Parser, ValueEnum};
use herd_model::explore::{Bounds, EXPLORABLE_CORNERS, explore};
use herd_protocol::arbiter::AcceptMode;
use herd_protocol::arbiter::domain::Corner;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Mode {
    Shared,
    Signaled,
    Auto,
}

#[derive(Parser, Debug)]
#[command(name = "herd-explore", about = "Exhaustive exploration of the herd protocol")]
struct Cli {
    /// Workers the arbiter runs.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=8))]
    workers: u32,
    /// Connections that arrive.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=8))]
    connections: u32,
    /// Faults per run, in all, each of any kind that is on (--kinds).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=4))]
    faults: u32,
    /// Fault kinds that are on (comma-separated): kill, ttin, ttou, hup, term, abandon.
    #[arg(long, value_delimiter = ',', default_value = "kill,boot-crash,ttin,ttou,hup,term,abandon", value_parser = clap::builder::PossibleValuesParser::new(herd_model::explore::KINDS))]
    kinds: Vec<String>,
    /// Accept mode.
    #[arg(long, value_enum, default_value_t = Mode::Signaled)]
    mode: Mode,
    /// Worker request budget (0 = unlimited).
    #[arg(long, default_value_t = 0)]
    max_requests: u32,
    /// Async workers serving up to this many connections at once (0: sync workers).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=4))]
    async_connections: u32,
    /// Put the configuration at a corner of its domain (overrides --workers, --max-requests
    /// where the corner sets them).
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(EXPLORABLE_CORNERS.map(Corner::name)))]
    corner: Option<String>,
    /// Explore every naming of the workers apart (no symmetry reduction): slower, for checking
    /// that the reduction changes no verdict.
    #[arg(long)]
    no_symmetry: bool,
    /// Explore every order of a request's end and what cannot touch its worker (no
    /// partial-order reduction): slower, for checking that the reduction changes no verdict.
    #[arg(long)]
    no_partial_order: bool,
    /// Give up after this many states (0 = none).
    #[arg(long, default_value_t = 20_000_000)]
    max_states: usize,
    /// Give up after this many seconds (0 = never).
    #[arg(long, default_value_t = 0)]
    max_seconds: u64,
    /// Search threads (0 = one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let bounds = Bounds {
        workers: cli.workers,
        connections: cli.connections,
        faults: cli.faults,
        kinds: cli.kinds,
        mode: match cli.mode {
            Mode::Shared => AcceptMode::Shared,
            Mode::Signaled => AcceptMode::Signaled,
            Mode::Auto => AcceptMode::Auto,
        },
        max_requests: cli.max_requests,
        kind: match cli.async_connections {
            0 => herd_protocol::worker::WorkerKind::Sync,
            n => herd_protocol::worker::WorkerKind::Async { connections: n },
        },
        corner: cli.corner.as_deref().and_then(|n| EXPLORABLE_CORNERS.into_iter().find(|c| c.name() == n)),
        symmetry: !cli.no_symmetry,
        partial_order: !cli.no_partial_order,
        max_states: cli.max_states,
        max_seconds: cli.max_seconds,
        threads: cli.threads,
        #[cfg(feature = "mutants")]
        mutant: None,
    };
    println!("exploring {bounds:?}");
    let started = Instant::now();
    let r = explore(&bounds);
    let secs = started.elapsed().as_secs_f64();
    println!("states: {}", r.states);
    println!("transitions: {}", r.transitions);
    println!("depth: {}", r.depth);
    println!("final states: {}", r.finals);
    println!(
        "time: {secs:.2} s ({:.0} states/s, {} searchers)",
        r.states as f64 / secs.max(1e-9),
        r.searchers
    );
    println!("complete: {}", if r.truncated { "no (--max-states or --max-seconds reached)" } else { "yes" });
    match r.violation {
        None => {
            println!("violations: 0");
            if r.truncated { ExitCode::from(3) } else { ExitCode::SUCCESS }
        }
        Some((v, trace)) => {
            println!("violations: 1");
            println!("{v}");
            println!("shortest trace ({} steps):", trace.len());
            for (i, s) in trace.iter().enumerate() {
                println!("  {:>3}. {s:?}", i + 1);
            }
            ExitCode::FAILURE
        }
    }
}
