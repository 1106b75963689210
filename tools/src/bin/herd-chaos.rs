//! `herd-chaos`: runs `herd serve` under steady load while killing workers, storming it with
//! TTIN/TTOU/HUP and hanging requests past the timeout, and accounts for every request.
//!
//! A request either succeeded, or failed because it was in flight on a worker that died (the
//! arbiter's `in_flight_deaths` counter, read through `herd ctl`), or failed for another reason:
//! those must be zero. It also checks that no zombie lingers, the arbiter's descriptors and memory
//! stay flat, and the worker count is back at its target within a bound after each storm. Kills
//! pause for the last 3 s of every 10 s so that hung requests meet the timeout kill.
//! Every random choice comes from `--seed` (printed), so a run can be replayed.

use clap::Parser;
use herd::protocol::rng::Rng;
use herd_tools::procfs::{fd_count, rss_kib, workers_of, zombies_of};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(name = "herd-chaos", about = "Chaos soak of herd serve: every request accounted for")]
struct Args {
    /// How long to run (e.g. 60s, 10m).
    #[arg(long, default_value = "60s", value_parser = duration)]
    duration: Duration,
    /// Workers.
    #[arg(long, default_value_t = 4)]
    workers: u32,
    /// Concurrent clients of the steady load.
    #[arg(long, default_value_t = 8)]
    clients: u32,
    /// Accept mode of the server.
    #[arg(long, default_value = "signaled")]
    accept_mode: String,
    /// SIGKILL a random worker this often.
    #[arg(long, default_value = "100ms", value_parser = duration)]
    kill_every: Duration,
    /// Seed of every random choice (default: from the clock; printed).
    #[arg(long)]
    seed: Option<u64>,
    /// The herd binary (default: next to this one).
    #[arg(long)]
    herd: Option<PathBuf>,
    /// Most time the worker count may take to get back to its target after a storm.
    #[arg(long, default_value = "5s", value_parser = duration)]
    recovery_bound: Duration,
}

fn duration(s: &str) -> Result<Duration, String> {
    let (n, unit) = s.find(|c: char| !c.is_ascii_digit()).map_or((s, "s"), |i| (&s[..i], &s[i..]));
    let n: u64 = n.parse().map_err(|_| format!("{s:?}: expected e.g. 100ms, 60s, 10m"))?;
    Ok(match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(60 * n),
        _ => return Err(format!("{s:?}: unit must be ms, s or m")),
    })
}

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
    hang_sent: AtomicU64,
    hang_failed: AtomicU64,
    hang_ok: AtomicU64,
    reasons: Mutex<BTreeMap<String, u64>>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
    });
    println!("herd-chaos: seed {seed} (replay: herd-chaos --seed {seed} --duration {:?})", args.duration);
    match run(&args, seed) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            println!("replay: herd-chaos --seed {seed} --duration {}s", args.duration.as_secs());
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("herd-chaos: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &Args, seed: u64) -> Result<bool, String> {
    let herd = match &args.herd {
        Some(p) => p.clone(),
        None => std::env::current_exe().map_err(|e| e.to_string())?.with_file_name("herd"),
    };
    let dir = std::env::temp_dir().join(format!("herd-chaos-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let pidfile = dir.join("herd.pid");
    let log = std::fs::File::create(dir.join("herd.log")).map_err(|e| e.to_string())?;
    let mut child = Command::new(&herd)
        .args(["serve", "--bind", "127.0.0.1:0", "--timeout", "2", "--graceful-timeout", "10"])
        .args(["--workers", &args.workers.to_string(), "--accept-mode", &args.accept_mode])
        .arg("--pidfile")
        .arg(&pidfile)
        .args(["--log-level", "info"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", herd.display()))?;
    let arbiter = child.id() as i32;
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).map_err(|e| e.to_string())?;
    let addr = first
        .trim()
        .strip_prefix("herd: listening on http://")
        .ok_or_else(|| format!("unexpected output {first:?}"))?
        .to_owned();
    let ctl = |line: &str| -> Result<herd::control::Reply, String> {
        herd::control::request(&dir.join("herd.pid.ctl"), line).map_err(|e| format!("herd ctl {line}: {e}"))
    };
    let target = || ctl("status").ok().and_then(|r| r.status).map(|s| s.target as usize);
    wait_for(Duration::from_secs(10), || workers_of(arbiter).len() == args.workers as usize)
        .ok_or("workers did not start")?;
    let (fds0, workers0, rss0) = (fd_count(arbiter), workers_of(arbiter).len(), rss_kib(arbiter));

    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for c in 0..args.clients {
        let (addr, tally, stop) = (addr.clone(), Arc::clone(&tally), Arc::clone(&stop));
        let mut rng = Rng::new(seed ^ (u64::from(c) + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let path =
                    if rng.chance(0.5) { "/".to_owned() } else { format!("/sleep?ms={}", rng.up_to(20)) };
                match get(&addr, &path) {
                    Ok(200) => tally.ok.fetch_add(1, Ordering::Relaxed),
                    other => {
                        *tally.reasons.lock().unwrap().entry(format!("{other:?}")).or_default() += 1;
                        tally.failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        }));
    }
    {
        // Requests that hang past the 2 s timeout: their workers must be killed.
        let (addr, tally, stop) = (addr.clone(), Arc::clone(&tally), Arc::clone(&stop));
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                tally.hang_sent.fetch_add(1, Ordering::Relaxed);
                match get(&addr, "/sleep?ms=6000") {
                    Ok(200) => tally.hang_ok.fetch_add(1, Ordering::Relaxed),
                    _ => tally.hang_failed.fetch_add(1, Ordering::Relaxed),
                };
                std::thread::sleep(Duration::from_millis(500));
            }
        }));
    }

    let mut rng = Rng::new(seed);
    let mut problems: Vec<String> = Vec::new();
    let (mut kills, mut storms, mut worst_recovery) = (0u64, 0u64, Duration::ZERO);
    let mut zombies_seen: BTreeSet<i32> = BTreeSet::new();
    let start = Instant::now();
    let mut next_storm = start + Duration::from_millis(1_000 + u64::from(rng.up_to(4_000)));
    let mut next_zombie_check = start;
    while start.elapsed() < args.duration {
        std::thread::sleep(args.kill_every);
        // Kills pause for the last 3 s of every 10 s, so that hung requests live long enough to
        // be cut by the arbiter's timeout kill rather than by chaos.
        let quiet = start.elapsed().as_millis() % 10_000 >= 7_000;
        let ws: Vec<i32> = workers_of(arbiter).into_iter().collect();
        if !ws.is_empty() && !quiet {
            let victim = ws[rng.up_to(ws.len() as u32 - 1) as usize];
            if kill(Pid::from_raw(victim), Signal::SIGKILL).is_ok() {
                kills += 1;
            }
        }
        if Instant::now() >= next_storm {
            storms += 1;
            let (sig, k) = match rng.up_to(2) {
                0 => (Signal::SIGTTIN, 1 + rng.up_to(3)),
                1 => (Signal::SIGTTOU, 1 + rng.up_to(3)),
                _ => (Signal::SIGHUP, 1),
            };
            for _ in 0..k {
                let _ = kill(Pid::from_raw(arbiter), sig);
            }
            let t = Instant::now();
            let settled =
                wait_for(args.recovery_bound, || target().is_some_and(|n| workers_of(arbiter).len() == n));
            match settled {
                Some(()) => worst_recovery = worst_recovery.max(t.elapsed()),
                None => problems.push(format!(
                    "storm {storms} ({sig} x{k}): worker count not back at target within {:?}",
                    args.recovery_bound
                )),
            }
            next_storm = Instant::now() + Duration::from_millis(2_000 + u64::from(rng.up_to(4_000)));
        }
        if Instant::now() >= next_zombie_check {
            let z: BTreeSet<i32> = zombies_of(arbiter);
            for &p in z.intersection(&zombies_seen) {
                problems.push(format!("zombie {p} not reaped for 500 ms"));
            }
            zombies_seen = z;
            next_zombie_check = Instant::now() + Duration::from_millis(500);
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    // Quiet: back at target, then measure.
    if wait_for(args.recovery_bound, || target().is_some_and(|n| workers_of(arbiter).len() == n)).is_none() {
        problems.push("worker count not back at target after the run".into());
    }
    let status = ctl("status")?.status.ok_or("no status")?;
    let (fds1, workers1, rss1) = (fd_count(arbiter), workers_of(arbiter).len(), rss_kib(arbiter));
    // Two descriptors per worker (its socket and pidfd); the rest must not grow.
    let (base0, base1) = (fds0 as i64 - 2 * workers0 as i64, fds1 as i64 - 2 * workers1 as i64);
    if base1 != base0 {
        problems.push(format!("arbiter descriptors besides workers' went from {base0} to {base1}"));
    }
    if rss1 > rss0 + 4096 {
        problems.push(format!("arbiter RSS grew from {rss0} KiB to {rss1} KiB"));
    }
    let _ = kill(Pid::from_raw(arbiter), Signal::SIGTERM);
    let exited = wait_for(Duration::from_secs(20), || child.try_wait().ok().flatten().is_some());
    if exited.is_none() {
        let _ = child.kill();
        problems.push("the arbiter did not stop on TERM".into());
    }
    if !zombies_of(arbiter).is_empty() {
        problems.push("zombies left".into());
    }

    let c = &status.counters;
    let (ok, failed) = (tally.ok.load(Ordering::Relaxed), tally.failed.load(Ordering::Relaxed));
    let (hang_sent, hang_failed, hang_ok) = (
        tally.hang_sent.load(Ordering::Relaxed),
        tally.hang_failed.load(Ordering::Relaxed),
        tally.hang_ok.load(Ordering::Relaxed),
    );
    let explained = c.in_flight_deaths.saturating_sub(hang_failed);
    let unexplained = failed.saturating_sub(explained);
    if unexplained > 0 {
        problems.push(format!("{unexplained} failed requests not explained by a worker death"));
    }
    if args.duration >= Duration::from_secs(10) && c.timeouts == 0 {
        problems.push("no hung request was cut by the timeout kill".into());
    }
    if hang_ok > 0 {
        problems.push(format!("{hang_ok} requests ran past --timeout without their worker being killed"));
    }
    let secs = args.duration.as_secs_f64();
    println!("| figure | value |");
    println!("|---|---|");
    println!(
        "| duration | {secs:.0} s, {} workers, {} clients, {} mode |",
        args.workers, args.clients, args.accept_mode
    );
    println!("| requests served | {ok} ({:.0}/s) |", ok as f64 / secs);
    println!("| failed, in flight on a worker that died | {} |", failed.min(explained));
    println!("| unexplained failures | {unexplained} |");
    println!(
        "| hung requests (6 s against a 2 s timeout) | {hang_sent} sent, {hang_failed} cut ({} by the timeout kill, the rest by chaos) |",
        c.timeouts
    );
    println!("| workers SIGKILLed by chaos | {kills} |");
    println!("| storms (TTIN/TTOU/HUP) | {storms}, worst recovery to target {worst_recovery:?} |");
    println!(
        "| arbiter counters | spawns {}, deaths {}, timeouts {}, in-flight deaths {}, boot failures {} |",
        c.spawns, c.deaths, c.timeouts, c.in_flight_deaths, c.boot_failures
    );
    println!("| arbiter descriptors (besides workers') | {base0} -> {base1} |");
    println!("| arbiter RSS | {rss0} KiB -> {rss1} KiB |");
    let reasons = tally.reasons.lock().unwrap();
    if !reasons.is_empty() {
        println!("failure kinds: {reasons:?}");
    }
    for p in &problems {
        println!("PROBLEM: {p}");
    }
    let verdict = problems.is_empty();
    println!("verdict: {}", if verdict { "ok" } else { "FAILED" });
    if verdict {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        println!("server log: {}", dir.join("herd.log").display());
    }
    Ok(verdict)
}

fn wait_for(bound: Duration, mut f: impl FnMut() -> bool) -> Option<()> {
    let t = Instant::now();
    loop {
        if f() {
            return Some(());
        }
        if t.elapsed() > bound {
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// One request with `Connection: close`: the status code, or what went wrong.
fn get(addr: &str, path: &str) -> Result<u16, String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect: {}", e.kind()))?;
    s.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: chaos\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("write: {}", e.kind()))?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).map_err(|e| format!("read: {}", e.kind()))?;
    let head = String::from_utf8_lossy(&resp[..resp.len().min(16)]).into_owned();
    head.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| if resp.is_empty() { "empty".into() } else { "garbled".into() })
}
