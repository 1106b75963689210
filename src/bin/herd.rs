//! `herd`: the prefork server's command line.
//!
//! `herd serve --bind 127.0.0.1:8000 --workers 4` serves the demo application. Flags follow
//! gunicorn's names. Bad flags or values exit with code 2.

#[path = "herd/config.rs"]
mod config;
#[path = "herd/logs.rs"]
mod logs;

use clap::{Parser, Subcommand, ValueEnum};
use herd::demo::Demo;
use herd::protocol::arbiter::{AcceptMode, domain};
use herd::{Bind, Server};
use std::ops::RangeInclusive;
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
    Serve(Box<ServeArgs>),
    /// Control a running arbiter through its control socket (exact, acknowledged commands).
    Ctl(CtlArgs),
}

#[derive(clap::Args, Debug)]
struct CtlArgs {
    /// The arbiter's pidfile; its control socket is `<pidfile>.ctl`.
    #[arg(short, long, value_name = "FILE", conflicts_with = "socket", required_unless_present = "socket")]
    pidfile: Option<PathBuf>,
    /// The control socket.
    #[arg(short, long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Print the arbiter's JSON answer instead of a table.
    #[arg(long)]
    json: bool,
    #[command(subcommand)]
    request: CtlRequest,
}

#[derive(Subcommand, Debug)]
enum CtlRequest {
    /// Every worker (id, pid, state, requests, age, last heartbeat) and the counters.
    Status,
    /// Add N workers (exactly N, unlike repeated TTIN).
    Incr {
        /// How many.
        #[arg(default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
        n: u32,
    },
    /// Remove N workers (never below one).
    Decr {
        /// How many.
        #[arg(default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
        n: u32,
    },
    /// Replace every worker with a new generation (as HUP).
    Reload,
    /// Stop: graceful (as TERM), or fast (as QUIT) with --fast.
    Stop {
        /// Do not wait for requests in flight.
        #[arg(long)]
        fast: bool,
    },
    /// Start a new arbiter from the program on disk, inheriting the sockets (as USR2).
    Upgrade,
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// A configuration file (TOML): every flag is a key of the same name (`workers = 4`,
    /// `bind = ["127.0.0.1:8000"]`, `command = ["python3", "app.py"]`). The command line and
    /// HERD_CMD_ARGS (extra arguments in the environment) override it.
    #[arg(short = 'c', long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print the configuration in force (every layer merged, defaults included) and exit.
    #[arg(long)]
    print_config: bool,
    /// Check the configuration (flags, values, the program to run) without serving: exit 0 if
    /// it is valid, 1 with the reason if not.
    #[arg(long)]
    check_config: bool,
    /// Address to listen on: HOST:PORT, [IPV6]:PORT, HOST (port 8000) or unix:PATH. Repeatable.
    /// [default: 127.0.0.1:8000, or 0.0.0.0:$PORT when PORT is set, as gunicorn]
    #[arg(short, long, value_name = "ADDR")]
    bind: Vec<Bind>,
    /// Number of worker processes.
    #[arg(short, long, default_value_t = 1, env = "WEB_CONCURRENCY",
          value_parser = clap::value_parser!(u32).range(i64::from(*domain::WORKERS.start())..=i64::from(*domain::WORKERS.end())))]
    workers: u32,
    /// Workers silent for this many seconds are killed and replaced (a request may not take
    /// longer); 0: no timeout. [default: 30; 0 with --worker-protocol none]
    #[arg(short, long, value_name = "SECONDS", value_parser = timeout)]
    timeout: Option<Duration>,
    /// Seconds stopping workers get to finish their requests before they are killed.
    #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = graceful_timeout)]
    graceful_timeout: Duration,
    /// Requests a worker serves before it is replaced (0: never).
    #[arg(long, value_name = "N", default_value_t = 0)]
    max_requests: u32,
    /// Up to this many more requests, chosen per worker, so that workers do not all restart at once.
    #[arg(long, value_name = "N", default_value_t = 0)]
    max_requests_jitter: u32,
    /// Workers in a row that die before booting (respawned with backoff meanwhile) after which
    /// the server halts with exit 3 (0: never).
    #[arg(long, value_name = "N", default_value_t = 10)]
    max_boot_failures: u32,
    /// Serve the arbiter's counters for Prometheus at http://HOST:PORT/metrics.
    #[arg(long, value_name = "HOST:PORT")]
    metrics_bind: Option<String>,
    /// Length of each listener's accept queue.
    #[arg(long, value_name = "N", default_value_t = herd::ListenOptions::default().backlog,
          value_parser = clap::value_parser!(i32).range(1..=65535))]
    backlog: i32,
    /// Set SO_REUSEPORT on TCP listeners (other processes may bind the same port).
    #[arg(long)]
    reuse_port: bool,
    /// Run workers as this user (a name or a uid); the arbiter keeps its own.
    #[arg(short, long, value_name = "USER")]
    user: Option<String>,
    /// Run workers in this group (a name or a gid) [default: the user's].
    #[arg(short, long, value_name = "GROUP")]
    group: Option<String>,
    /// The file mode creation mask (octal) of herd and its workers: unix sockets, the pidfile
    /// and log files are made with it [default: the one herd was started with].
    #[arg(short = 'm', long, value_name = "OCTAL", value_parser = umask)]
    umask: Option<u32>,
    /// Change to this directory before anything else (relative paths in other settings are
    /// taken from there).
    #[arg(long, value_name = "DIR")]
    chdir: Option<PathBuf>,
    /// Write the arbiter's pid to this file (and serve `herd ctl` on `<FILE>.ctl`).
    #[arg(short, long, visible_alias = "pid", value_name = "FILE")]
    pidfile: Option<PathBuf>,
    /// Serve `herd ctl` on this unix socket (owner-only).
    #[arg(long, value_name = "PATH")]
    control_socket: Option<PathBuf>,
    /// Record what the arbiter and every worker feed their cores and carry out, one file per process in this
    /// (existing) directory, for `herd-sim --check-trace DIR`.
    #[arg(long, value_name = "DIR", env = "HERD_TRACE_EVENTS")]
    trace_events: Option<PathBuf>,
    /// Resident memory (bytes; K, M, G suffixes) past which a worker finishes its request and is
    /// replaced.
    #[arg(long, value_name = "BYTES", value_parser = bytes)]
    limit_memory_soft: Option<u64>,
    /// Address space (bytes; K, M, G suffixes) a worker may never exceed; past it the worker dies.
    #[arg(long, value_name = "BYTES", value_parser = bytes)]
    limit_memory_hard: Option<u64>,
    /// CPU seconds one request may use; past it the worker dies and is replaced.
    #[arg(long, value_name = "SECONDS", value_parser = seconds)]
    limit_cpu: Option<Duration>,
    /// How connections reach workers. [default: auto; shared with --worker-protocol none]
    #[arg(long, value_enum)]
    accept_mode: Option<Mode>,
    /// Worker kind: sync (one connection at a time) or async (tokio + hyper, keep-alive, up to
    /// --worker-connections at once).
    #[arg(short = 'k', long, value_enum, default_value_t = WorkerClass::Sync)]
    worker_class: WorkerClass,
    /// Most connections an async worker serves at once.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    worker_connections: u32,
    /// Seconds an idle keep-alive connection is kept open (async workers; sync workers close
    /// after each request).
    #[arg(long, value_name = "SECONDS", default_value = "2", value_parser = seconds)]
    keep_alive: Duration,
    /// Seconds a client has to send a request head (request line and headers), from when a
    /// worker takes the connection or ends the previous request; then the connection is closed.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = seconds)]
    header_timeout: Duration,
    /// Longest request line in bytes (0: up to 8190); longer ones get 414.
    #[arg(long, value_name = "BYTES", default_value_t = 4094,
          value_parser = clap::value_parser!(u32).range(0..=herd::http::MAX_REQUEST_LINE as i64))]
    limit_request_line: u32,
    /// Most header fields in a request; more get 431.
    #[arg(long, value_name = "N", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..=herd::http::MAX_REQUEST_FIELDS as i64))]
    limit_request_fields: u32,
    /// Longest header field in bytes (0: up to 1 MiB); longer ones get 431.
    #[arg(long = "limit-request-field_size", visible_alias = "limit-request-field-size", value_name = "BYTES",
          default_value_t = 8190,
          value_parser = clap::value_parser!(u32).range(0..=herd::http::MAX_REQUEST_FIELD_SIZE as i64))]
    limit_request_field_size: u32,
    /// Where the registry sequences live: shm (one host) or postgres://user:password@host/db
    /// (several hosts sharing one database).
    #[arg(
        long,
        value_name = "URL",
        env = "HERD_REGISTRY_STORE",
        default_value = "shm",
        hide_env_values = true
    )]
    registry_store: String,
    /// Cron worker processes, besides the HTTP workers: they run the --cron-job jobs, each due
    /// run exactly once across every process (and every arbiter sharing a PostgreSQL store).
    #[arg(long, value_name = "N", default_value_t = 0,
          value_parser = clap::value_parser!(u32).range(i64::from(*domain::CRON_WORKERS.start())..=i64::from(*domain::CRON_WORKERS.end())))]
    cron_workers: u32,
    /// A scheduled job, NAME=SECONDS (its interval). Repeatable. The demo's job sleeps
    /// --test-cron-sleep-ms and logs to --test-cron-log.
    #[arg(long, value_name = "NAME=SECONDS")]
    cron_job: Vec<herd::cron::CronJob>,
    /// Test only: the demo's cron jobs append `start`/`end` lines here.
    #[arg(long, hide = true, value_name = "FILE")]
    test_cron_log: Option<PathBuf>,
    /// Test only: how long the demo's cron jobs take.
    #[arg(long, hide = true, value_name = "MS", default_value_t = 50)]
    test_cron_sleep_ms: u64,
    /// Log level: critical, error, warning (warn), info, debug or trace. RUST_LOG, when set,
    /// overrides it (tracing's targets syntax: `info,herd=debug`).
    #[arg(long, default_value = "info", value_parser = log_level)]
    log_level: tracing::Level,
    /// Log lines as text, or one JSON object per line.
    #[arg(long, value_enum, default_value_t = logs::LogFormat::Text)]
    log_format: logs::LogFormat,
    /// Where the log goes: a file (appended to; USR1 reopens it after a rotation), or - for
    /// standard error. Workers and the programs they run write there too.
    #[arg(long, visible_alias = "log-file", value_name = "PATH|-")]
    error_logfile: Option<PathBuf>,
    /// Write one line per request to this file (appended to; USR1 reopens it), or - for
    /// standard output.
    #[arg(long, value_name = "PATH|-")]
    access_logfile: Option<PathBuf>,
    /// The access log's format, in gunicorn's atoms (docs/operations.md).
    #[arg(long, value_name = "FORMAT", default_value = herd::access::DEFAULT_FORMAT, requires = "access_logfile")]
    access_logformat: herd::access::AccessFormat,
    /// Test only: enable GET /misbehave, which makes the serving worker break the protocol.
    #[arg(long, hide = true)]
    test_misbehave: bool,
    /// With a COMMAND: how the program talks to herd. herd: it speaks herd's wire protocol on
    /// the descriptor HERD_FD names (docs/protocol.md); none: it knows nothing of herd (shared
    /// accept, no heartbeat, no timeout).
    #[arg(long, value_enum, default_value_t = Protocol::Herd, requires = "command")]
    worker_protocol: Protocol,
    /// With a COMMAND of --worker-protocol none: when a new worker counts as ready (a HUP
    /// retires old workers as new ones are). exec: once it has run a second; notify: once it says READY=1 on
    /// NOTIFY_SOCKET, as to systemd.
    #[arg(long, value_enum, default_value_t = Ready::Exec, requires = "command")]
    worker_ready: Ready,
    /// With a COMMAND: the signal asking a worker to finish its requests and exit (where herd's
    /// own workers get TERM): a name (TERM, SIGINT, ...) or a number.
    #[arg(long, value_name = "SIGNAL", default_value = "TERM", value_parser = signal, requires = "command")]
    stop_signal: nix::sys::signal::Signal,
    /// The program every worker runs instead of the demo (after `--`), with the listeners at
    /// descriptors 3, 4, ... (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES); no shell is involved.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<std::ffi::OsString>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Ready {
    /// Once it has run a second.
    Exec,
    /// Once it says READY=1 (sd_notify).
    Notify,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Protocol {
    /// The program speaks herd's wire protocol.
    Herd,
    /// The program knows nothing of herd.
    None,
}

/// The program of `herd serve -- COMMAND`, with how it talks to herd.
fn program_of(args: &ServeArgs) -> herd::Program {
    let protocol = match args.worker_protocol {
        Protocol::Herd => herd::WorkerProtocol::Herd,
        Protocol::None => herd::WorkerProtocol::None,
    };
    let ready = match args.worker_ready {
        Ready::Exec => herd::Readiness::Exec,
        Ready::Notify => herd::Readiness::Notify,
    };
    herd::Program::new(args.command.clone())
        .protocol(protocol)
        .readiness(ready)
        .graceful_signal(args.stop_signal)
}

/// `--log-level`: tracing's levels and gunicorn's names (`warning`, `critical`).
fn log_level(s: &str) -> Result<tracing::Level, String> {
    match s.to_ascii_lowercase().as_str() {
        "critical" => Ok(tracing::Level::ERROR),
        "warning" => Ok(tracing::Level::WARN),
        other => other
            .parse()
            .map_err(|_| format!("{s:?} is not a log level (critical, error, warning, info, debug, trace)")),
    }
}

/// `--stop-signal`: TERM, SIGTERM or 15.
fn signal(s: &str) -> Result<nix::sys::signal::Signal, String> {
    use nix::sys::signal::Signal;
    let found = match s.parse::<i32>() {
        Ok(n) => Signal::try_from(n).ok(),
        Err(_) => {
            let name = s.to_ascii_uppercase();
            let name = if name.starts_with("SIG") { name } else { format!("SIG{name}") };
            name.parse::<Signal>().ok()
        }
    };
    match found {
        Some(Signal::SIGKILL | Signal::SIGSTOP) => Err(format!("{s}: a program cannot act on it")),
        Some(sig) => Ok(sig),
        None => Err(format!("{s:?} is not a signal")),
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum WorkerClass {
    /// One connection at a time, one request per connection.
    Sync,
    /// Many connections at once on an event loop, with keep-alive.
    Async,
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

/// `--umask`: an octal mode mask (`007`, `0o007`, `0`).
fn umask(s: &str) -> Result<u32, String> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    match u32::from_str_radix(digits, 8) {
        Ok(m) if m <= 0o777 => Ok(m),
        _ => Err(format!("expected an octal mask from 0 to 777, got {s:?}")),
    }
}

/// Environment variable: the directory `herd serve` was started in, before `--chdir`, so that
/// the arbiter an upgrade starts (in the changed directory, with the same arguments) resolves a
/// relative `--chdir` as the first did.
const CHDIR_BASE_ENV: &str = "HERD_CHDIR_BASE";

/// `--chdir` and `--umask`, before anything is opened, bound or created.
fn enter(args: &ServeArgs) -> Result<(), String> {
    if let Some(m) = args.umask {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(m));
    }
    if let Some(dir) = &args.chdir {
        let base = match std::env::var_os(CHDIR_BASE_ENV) {
            Some(b) => PathBuf::from(b),
            None => std::env::current_dir().map_err(|e| format!("--chdir: the current directory: {e}"))?,
        };
        // SAFETY: single-threaded still (nothing is started yet); read back by a re-executed
        // arbiter, never by a worker's program (herd's variables are not passed on).
        unsafe { std::env::set_var(CHDIR_BASE_ENV, &base) };
        std::env::set_current_dir(base.join(dir)).map_err(|e| format!("--chdir {}: {e}", dir.display()))?;
    }
    Ok(())
}

fn seconds(s: &str) -> Result<Duration, String> {
    seconds_within(s, &(Duration::from_nanos(1)..=domain::LONGEST))
}

/// Seconds within `range` (the configuration domain's, for the arbiter's settings).
fn seconds_within(s: &str, range: &RangeInclusive<Duration>) -> Result<Duration, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number of seconds"))?;
    let (lo, hi) = (range.start().as_secs_f64(), range.end().as_secs_f64());
    if !(v.is_finite() && v >= lo && v <= hi && v > 0.0) {
        return Err(if lo < 1e-6 {
            format!("{s:?} must be a number of seconds greater than 0")
        } else {
            format!("{s:?} must be a number of seconds from {lo} to {hi}")
        });
    }
    Ok(Duration::from_secs_f64(v))
}

/// `--timeout`: seconds in the domain, or 0 for none.
fn timeout(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(0.0) => Ok(Duration::ZERO),
        _ => seconds_within(s, &domain::TIMEOUT).map_err(|e| format!("{e} (0: none)")),
    }
}

/// `--graceful-timeout`: seconds in the domain.
fn graceful_timeout(s: &str) -> Result<Duration, String> {
    seconds_within(s, &domain::GRACEFUL_TIMEOUT)
}

fn bytes(s: &str) -> Result<u64, String> {
    let (num, mult) = match s.as_bytes().last() {
        Some(b'K' | b'k') => (&s[..s.len() - 1], 1 << 10),
        Some(b'M' | b'm') => (&s[..s.len() - 1], 1 << 20),
        Some(b'G' | b'g') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("{s:?} is not a size in bytes (e.g. 536870912 or 512M)"))
}

fn main() -> ExitCode {
    let argv = match config::layered(std::env::args_os().collect()) {
        Ok(argv) => argv,
        Err(e) => {
            eprintln!("herd: {e}");
            return ExitCode::from(2);
        }
    };
    let cli = Cli::parse_from(&argv);
    match cli.command {
        Command::Serve(args) if args.print_config => {
            print!("{}", config::print(&argv));
            ExitCode::SUCCESS
        }
        Command::Serve(args) => serve(*args),
        Command::Ctl(args) => ctl(args),
    }
}

fn ctl(args: CtlArgs) -> ExitCode {
    let socket = match (&args.socket, &args.pidfile) {
        (Some(s), _) => s.clone(),
        (None, Some(p)) => {
            let mut s = p.clone().into_os_string();
            s.push(".ctl");
            PathBuf::from(s)
        }
        (None, None) => unreachable!("clap requires one"),
    };
    let line = match args.request {
        CtlRequest::Status => "status".to_owned(),
        CtlRequest::Incr { n } => format!("incr {n}"),
        CtlRequest::Decr { n } => format!("decr {n}"),
        CtlRequest::Reload => "reload".to_owned(),
        CtlRequest::Stop { fast: false } => "stop".to_owned(),
        CtlRequest::Stop { fast: true } => "stop fast".to_owned(),
        CtlRequest::Upgrade => "upgrade".to_owned(),
    };
    let reply = match herd::control::request(&socket, &line) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("herd ctl: cannot talk to the arbiter at {}: {e}", socket.display());
            return ExitCode::FAILURE;
        }
    };
    if args.json {
        println!("{}", serde_json::to_string(&reply).unwrap_or_default());
    } else if let Some(status) = &reply.status {
        print!("{}", status_table(status));
    } else if let Some(t) = reply.target {
        println!("ok: target {t} workers");
    } else if reply.ok {
        println!("ok");
    }
    if !reply.ok {
        eprintln!("herd ctl: {}", reply.error.as_deref().unwrap_or("refused"));
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn status_table(s: &herd::control::Status) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "arbiter {}  {}  target {}  generation {}  accept mode {}",
        s.pid, s.phase, s.target, s.generation, s.accept_mode
    );
    let _ = writeln!(
        out,
        "{:>6} {:>8} {:>4} {:<10} {:>9} {:>9} {:>10}",
        "ID", "PID", "GEN", "STATE", "REQUESTS", "AGE", "HEARTBEAT"
    );
    for w in &s.workers {
        let _ = writeln!(
            out,
            "{:>6} {:>8} {:>4} {:<10} {:>9} {:>8.1}s {:>6.1}s ago{}",
            w.id,
            w.pid,
            w.generation,
            w.state,
            w.requests,
            w.age_secs,
            w.last_heartbeat_secs,
            w.command.as_deref().map_or(String::new(), |c| format!("  {c}"))
        );
    }
    let c = &s.counters;
    let _ = writeln!(
        out,
        "spawns {}  deaths {}  timeouts {}  recycles {}  dispatches {}  protocol errors {}  boot failures {}  \
         in-flight deaths {}",
        c.spawns,
        c.deaths,
        c.timeouts,
        c.recycles,
        c.dispatches,
        c.protocol_errors,
        c.boot_failures,
        c.in_flight_deaths
    );
    if !c.deaths_by_reason.is_empty() {
        let why: Vec<String> = c.deaths_by_reason.iter().map(|(r, n)| format!("{r} {n}")).collect();
        let _ = writeln!(out, "exits: {}", why.join(", "));
    }
    for j in &s.cron {
        let due = if j.running {
            "running now".to_owned()
        } else if j.next_due_secs >= 0.0 {
            format!("next in {:.1}s", j.next_due_secs)
        } else {
            format!("overdue by {:.1}s", -j.next_due_secs)
        };
        let _ = writeln!(
            out,
            "cron {}: every {}s, {} runs ({} failed), {due}",
            j.name, j.interval_secs, j.runs, j.failures
        );
    }
    out
}

fn serve(args: ServeArgs) -> ExitCode {
    if let Err(e) = logs::init(args.log_level, args.log_format, args.error_logfile.as_deref()) {
        eprintln!("herd: {e}");
        return ExitCode::from(2);
    }
    if let Err(e) = enter(&args) {
        eprintln!("herd: {e}");
        return ExitCode::from(2);
    }
    // A program that knows nothing of herd accepts for itself and sends no heartbeats: those
    // are its defaults (and anything else said explicitly is refused by run_program).
    let silent = !args.command.is_empty() && args.worker_protocol == Protocol::None;
    let mode = match args.accept_mode.unwrap_or(if silent { Mode::Shared } else { Mode::Auto }) {
        Mode::Shared => AcceptMode::Shared,
        Mode::Signaled => AcceptMode::Signaled,
        Mode::Auto => AcceptMode::Auto,
    };
    let timeout = args.timeout.unwrap_or(if silent { Duration::ZERO } else { Duration::from_secs(30) });
    let program = (!args.command.is_empty()).then(|| program_of(&args));
    if program.is_some() && args.access_logfile.is_some() {
        eprintln!(
            "herd: --access-logfile: a program run with -- COMMAND answers its requests itself, and \
             keeps its own access log"
        );
        return ExitCode::from(2);
    }
    // Socket activation and USR2 upgrades hand listeners and stores over through the environment.
    let mut b = Server::builder()
        .from_env()
        .workers(args.workers)
        .timeout(timeout)
        .graceful_timeout(args.graceful_timeout)
        .max_requests(args.max_requests)
        .max_requests_jitter(args.max_requests_jitter)
        .max_boot_failures(args.max_boot_failures)
        .accept_mode(mode)
        .cron_workers(args.cron_workers);
    if let Some(path) = logs::to_file(args.error_logfile.as_deref()) {
        b = b.error_logfile(path);
    }
    b = b.listen_options(herd::ListenOptions { backlog: args.backlog, reuse_port: args.reuse_port });
    if let Some(addr) = &args.metrics_bind {
        b = b.metrics_bind(addr);
    }
    if let Some(u) = &args.user {
        b = b.user(u);
    }
    if let Some(g) = &args.group {
        b = b.group(g);
    }
    if let Some(path) = &args.access_logfile {
        b = b.access_log(herd::access::AccessLog {
            path: path.clone(),
            format: args.access_logformat.clone(),
        });
    }
    for job in args.cron_job {
        b = b.cron_job(job);
    }
    let binds = if args.bind.is_empty() {
        // gunicorn's default: PORT (set by many platforms) on every interface, else port 8000
        // on loopback.
        match std::env::var("PORT") {
            Ok(port) => match format!("0.0.0.0:{port}").parse::<Bind>() {
                Ok(b) => vec![b],
                Err(e) => {
                    eprintln!("herd: PORT={port:?}: {e}");
                    return ExitCode::from(2);
                }
            },
            Err(_) => vec![Bind::Tcp("127.0.0.1:8000".into())],
        }
    } else {
        args.bind
    };
    for bind in binds {
        b = b.bind(bind);
    }
    if let Some(p) = args.pidfile {
        b = b.pidfile(p);
    }
    if let Some(p) = args.control_socket {
        b = b.control_socket(p);
    }
    if let Some(d) = args.trace_events {
        b = b.trace_events(d);
    }
    b = b.registry_store(args.registry_store);
    b = b.limits(herd::Limits {
        memory_soft: args.limit_memory_soft,
        memory_hard: args.limit_memory_hard,
        cpu: args.limit_cpu,
    });
    let http = herd::HttpLimits {
        keep_alive: args.keep_alive,
        header_timeout: args.header_timeout,
        request_line: args.limit_request_line as usize,
        request_fields: args.limit_request_fields as usize,
        request_field_size: args.limit_request_field_size as usize,
    };
    b = b.http_limits(http);
    b = b.on_ready(|listeners| {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        for l in listeners {
            let _ = writeln!(out, "herd: listening on {}", l.url());
        }
        let _ = out.flush();
    });
    if args.check_config {
        let checked = b.check().and_then(|()| match &program {
            Some(p) => b.check_program(p),
            None => Ok(()),
        });
        return match checked {
            Ok(()) => {
                println!("herd: the configuration is valid");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("herd: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let server = match b.build() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("herd: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(program) = program {
        return match server.run_program(program) {
            Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
            Err(e) => {
                eprintln!("herd: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let ran = match args.worker_class {
        WorkerClass::Sync => server.run_app(Demo {
            misbehave: args.test_misbehave,
            cron_log: args.test_cron_log,
            cron_sleep: Duration::from_millis(args.test_cron_sleep_ms),
            http,
            ..Demo::default()
        }),
        #[cfg(feature = "async")]
        WorkerClass::Async => {
            server.run_async_with(args.worker_connections, herd::demo::DemoLoader, herd::demo::demo_async)
        }
        #[cfg(not(feature = "async"))]
        WorkerClass::Async => {
            eprintln!(
                "herd: --worker-class async: this herd was built without async workers (cargo feature `async`)"
            );
            return ExitCode::from(2);
        }
    };
    match ran {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("herd: {e}");
            ExitCode::FAILURE
        }
    }
}
