//! `herd`: the prefork server's command line.
//!
//! `herd serve --bind 127.0.0.1:8000 --workers 4` serves the demo application. Flags follow
//! gunicorn's names. Bad flags or values exit with code 2.

use clap::{Parser, Subcommand, ValueEnum};
use herd::demo::Demo;
use herd::protocol::arbiter::AcceptMode;
use herd::{Bind, Server};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(name = "herd", version, about = "A prefork server: an arbiter supervising forked workers")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the demo HTTP application.
    Serve(ServeArgs),
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// Address to listen on: HOST:PORT, [IPV6]:PORT or unix:PATH. Repeatable.
    #[arg(short, long, value_name = "ADDR", default_value = "127.0.0.1:8000")]
    bind: Vec<Bind>,
    /// Number of worker processes.
    #[arg(short, long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    workers: u32,
    /// Workers silent for this many seconds are killed and replaced (a request may not take longer).
    #[arg(short, long, value_name = "SECONDS", default_value = "30", value_parser = seconds)]
    timeout: Duration,
    /// Seconds stopping workers get to finish their requests before they are killed.
    #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = seconds)]
    graceful_timeout: Duration,
    /// Requests a worker serves before it is replaced (0: never).
    #[arg(long, value_name = "N", default_value_t = 0)]
    max_requests: u32,
    /// Up to this many more requests, chosen per worker, so that workers do not all restart at once.
    #[arg(long, value_name = "N", default_value_t = 0)]
    max_requests_jitter: u32,
    /// Write the arbiter's pid to this file.
    #[arg(short, long, value_name = "FILE")]
    pidfile: Option<PathBuf>,
    /// How connections reach workers.
    #[arg(long, value_enum, default_value_t = Mode::Signaled)]
    accept_mode: Mode,
    /// Log level: error, warn, info, debug or trace.
    #[arg(long, default_value = "info")]
    log_level: tracing::Level,
    /// Test only: enable GET /misbehave, which makes the serving worker break the protocol.
    #[arg(long, hide = true)]
    test_misbehave: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Mode {
    /// Every worker accepts on the shared sockets; the kernel picks one.
    Shared,
    /// The arbiter watches the sockets and wakes one idle worker per connection.
    Signaled,
    /// Signaled while workers are idle, direct accepts under load.
    Auto,
}

fn seconds(s: &str) -> Result<Duration, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(v.is_finite() && v > 0.0 && v <= 1e9) {
        return Err(format!("{s:?} must be a number of seconds greater than 0"));
    }
    Ok(Duration::from_secs_f64(v))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(args.log_level)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let mode = match args.accept_mode {
        Mode::Shared => AcceptMode::Shared,
        Mode::Signaled => AcceptMode::Signaled,
        Mode::Auto => AcceptMode::Auto,
    };
    let mut b = Server::builder()
        .workers(args.workers)
        .timeout(args.timeout)
        .graceful_timeout(args.graceful_timeout)
        .max_requests(args.max_requests)
        .max_requests_jitter(args.max_requests_jitter)
        .accept_mode(mode);
    for bind in args.bind {
        b = b.bind(bind);
    }
    if let Some(p) = args.pidfile {
        b = b.pidfile(p);
    }
    b = b.on_ready(|listeners| {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        for l in listeners {
            let _ = writeln!(out, "herd: listening on {}", l.url());
        }
        let _ = out.flush();
    });
    let server = match b.build() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("herd: {e}");
            return ExitCode::FAILURE;
        }
    };
    match server.run_app(Demo { misbehave: args.test_misbehave }) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("herd: {e}");
            ExitCode::FAILURE
        }
    }
}
