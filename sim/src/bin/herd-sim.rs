//! `herd-sim`: run the deterministic simulator.
//!
//! - `herd-sim --seeds 0..10000`: a campaign on every core, then a summary table; exit 1 on any
//!   violation (each shrunk and printed with its replay command).
//! - `herd-sim --seed 42 --trace`: one run, its trace printed.
//! - `herd-sim --seed 42 --timeline run.svg`: one run, drawn.

use clap::Parser;
use std::io::Write as _;

/// Prints a line; a closed stdout (`herd-sim ... | head`) ends the program quietly.
macro_rules! say {
    ($($arg:tt)*) => {{
        let mut out = std::io::stdout().lock();
        if writeln!(out, $($arg)*).is_err() {
            std::process::exit(0);
        }
    }};
}
use herd_sim::{Options, Outcome, campaign, faults::FaultKind, run, shrink};
use indicatif::{ProgressBar, ProgressStyle};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(name = "herd-sim", about = "Deterministic simulation of a whole herd server")]
struct Cli {
    /// Run one seed.
    #[arg(long, conflicts_with = "seeds")]
    seed: Option<u64>,
    /// Run a campaign over a range of seeds, e.g. 0..10000.
    #[arg(long, value_parser = parse_range)]
    seeds: Option<(u64, u64)>,
    /// Simulated seconds of the safety phase of each run.
    #[arg(long, default_value_t = 600.0)]
    duration: f64,
    /// Fault kinds allowed, as a bit mask (0x1ff = all).
    #[arg(long, value_parser = parse_mask, default_value = "0x1ff")]
    faults: u32,
    /// Print the trace of a single run.
    #[arg(long)]
    trace: bool,
    /// Draw a single run as SVG to this file.
    #[arg(long)]
    timeline: Option<std::path::PathBuf>,
    /// Threads for a campaign (default: every core).
    #[arg(long)]
    threads: Option<usize>,
    /// Validate the traces a real server recorded (`herd serve --trace-events DIR`): replay each
    /// through a fresh core and the invariant monitor, report the first divergence or violation.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["seed", "seeds"])]
    check_trace: Option<std::path::PathBuf>,
    /// Re-introduce a bug of docs/bugs.md (needs `--features mutants`), e.g. B15.
    #[cfg(feature = "mutants")]
    #[arg(long, value_parser = parse_mutant)]
    mutant: Option<herd_protocol::mutants::Mutant>,
}

fn check_trace(dir: &std::path::Path) -> ExitCode {
    match herd_sim::trace::check_dir(dir) {
        Err(e) => {
            eprintln!("herd-sim: {}: {e}", dir.display());
            ExitCode::from(2)
        }
        Ok(r) if r.files.is_empty() => {
            eprintln!(
                "herd-sim: {}: no trace (arbiter-*.jsonl, worker-*.jsonl, cron-*.jsonl) in it",
                dir.display()
            );
            ExitCode::from(2)
        }
        Ok(r) => {
            println!("{r}");
            if r.problems().count() == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
    }
}

fn parse_range(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s.split_once("..").ok_or_else(|| format!("expected A..B, got {s:?}"))?;
    let a: u64 = a.parse().map_err(|e| format!("bad start {a:?}: {e}"))?;
    let b: u64 = b.parse().map_err(|e| format!("bad end {b:?}: {e}"))?;
    if a >= b {
        return Err(format!("empty range {a}..{b}"));
    }
    Ok((a, b))
}

fn parse_mask(s: &str) -> Result<u32, String> {
    let v = match s.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => s.parse(),
    }
    .map_err(|e| format!("bad mask {s:?}: {e}"))?;
    if v > FaultKind::ALL_MASK {
        return Err(format!("mask {v:#x} has bits beyond {:#x}", FaultKind::ALL_MASK));
    }
    Ok(v)
}

#[cfg(feature = "mutants")]
fn parse_mutant(s: &str) -> Result<herd_protocol::mutants::Mutant, String> {
    herd_protocol::mutants::Mutant::ALL
        .into_iter()
        .find(|m| format!("{m:?}").eq_ignore_ascii_case(s))
        .ok_or_else(|| format!("unknown mutant {s:?}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(dir) = &cli.check_trace {
        return check_trace(dir);
    }
    if !(cli.duration.is_finite() && cli.duration > 0.0 && cli.duration <= 86_400.0) {
        eprintln!("herd-sim: --duration must be between 0 and 86400 seconds");
        return ExitCode::from(2);
    }
    let base = Options {
        duration: Duration::from_secs_f64(cli.duration),
        faults: cli.faults,
        trace: cli.trace,
        timeline: cli.timeline.is_some(),
        #[cfg(feature = "mutants")]
        mutant: cli.mutant,
        ..Options::new(0)
    };
    match (cli.seed, cli.seeds) {
        (Some(seed), _) => single(Options { seed, ..base }, cli.timeline.as_deref()),
        (None, Some((from, to))) => {
            let threads =
                cli.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            many(from, to, threads, &base)
        }
        (None, None) => {
            eprintln!("herd-sim: give --seed N or --seeds A..B (see --help)");
            ExitCode::from(2)
        }
    }
}

fn report(o: &Outcome) {
    say!(
        "seed {}: {:?} mode, faults [{}], {} events, {:.1} simulated s, {} served (longest wait {:?}), {} failed with a killed worker, {} registry bumps",
        o.seed,
        o.mode,
        o.faults,
        o.events,
        o.sim_time.as_secs_f64(),
        o.tally.served,
        o.tally.longest_wait,
        o.tally.failed_killed,
        o.tally.bumps
    );
}

fn single(opts: Options, timeline: Option<&std::path::Path>) -> ExitCode {
    let o = run(&opts);
    for line in &o.trace {
        say!("{line}");
    }
    report(&o);
    if let (Some(path), Some(t)) = (timeline, &o.timeline) {
        let title = format!("herd-sim seed {} ({:?}, faults {})", o.seed, o.mode, o.faults);
        let end = herd_protocol::time::Instant(o.sim_time.as_nanos() as u64);
        if let Err(e) = std::fs::write(path, t.svg(end, &title)) {
            eprintln!("herd-sim: cannot write {}: {e}", path.display());
            return ExitCode::from(2);
        }
        say!("timeline written to {}", path.display());
    }
    match o.violation {
        None => {
            say!("violations: 0");
            ExitCode::SUCCESS
        }
        Some(v) => {
            say!("VIOLATION {v}");
            say!("replay: {}", opts.replay_command());
            ExitCode::FAILURE
        }
    }
}

fn many(from: u64, to: u64, threads: usize, base: &Options) -> ExitCode {
    let bar = ProgressBar::new(to - from);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} seeds {per_sec} eta {eta}").expect("template"),
    );
    let started = Instant::now();
    let sum =
        campaign(from, to, threads, &Options { trace: false, timeline: false, ..base.clone() }, &|| {
            bar.inc(1)
        });
    bar.finish_and_clear();
    let wall = started.elapsed().as_secs_f64();
    say!(
        "| seeds | events | simulated time | served | failed (killed worker) | halted (boot failures) | violations | events/s | events/s/core | sim s per wall s | wall |"
    );
    say!("|---|---|---|---|---|---|---|---|---|---|---|");
    say!(
        "| {}..{} ({}) | {} | {:.0} h | {} | {} | {} | {} | {:.2} M | {:.2} M | {:.0} | {:.1} s |",
        from,
        to,
        sum.seeds,
        sum.events,
        sum.sim_time.as_secs_f64() / 3600.0,
        sum.served,
        sum.failed_killed,
        sum.halts,
        sum.total_violations(),
        sum.events as f64 / wall / 1e6,
        sum.events as f64 / wall / 1e6 / threads as f64,
        sum.sim_time.as_secs_f64() / wall,
        wall
    );
    say!("");
    say!("| invariant | violations |");
    say!("|---|---|");
    for inv in herd_protocol::invariants::Invariant::ALL {
        say!("| {} | {} |", inv.name(), sum.violations.get(inv.name()).copied().unwrap_or(0));
    }
    if sum.failing.is_empty() {
        say!("\nviolations: 0");
        return ExitCode::SUCCESS;
    }
    say!("\nviolations: {}", sum.total_violations());
    for (seed, v) in sum.failing.iter().take(3) {
        let s = shrink(&Options { seed: *seed, ..base.clone() }, v.invariant);
        say!("\nseed {seed}: {v}");
        let trace = &s.outcome.trace;
        let start = trace.len().saturating_sub(40);
        say!("last {} trace lines of the shrunk run:", trace.len() - start);
        for line in &trace[start..] {
            say!("  {line}");
        }
        say!("replay: {}", s.options.replay_command());
    }
    ExitCode::FAILURE
}
