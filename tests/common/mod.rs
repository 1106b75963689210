//! Helpers for the integration tests: launch the real `herd` binary, talk HTTP to it, look at
//! its processes through /proc. Nothing here forks the test harness: the binary is spawned.
#![allow(dead_code)]

// Each test crate uses some of them.
#[allow(unused_imports)]
#[path = "../../tools/src/procfs.rs"]
mod procfs;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
#[allow(unused_imports)]
pub use procfs::{children, comm, cpu_ticks, fd_count, rss_kib, voluntary_switches, workers_of, zombies_of};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long any wait for the server may take before the test fails. Generous: the machine may be
/// loaded by parallel tests; a healthy run takes a small fraction of it.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A running `herd serve`.
pub struct Herd {
    child: Option<Child>,
    /// Where the server records its traces (`--trace-events`), validated when it is dropped.
    traces: std::path::PathBuf,
    pub addr: String,
    pub pid: i32,
    log: Arc<(Mutex<Vec<String>>, Condvar)>,
}

pub fn herd_bin() -> &'static str {
    env!("CARGO_BIN_EXE_herd")
}

impl Herd {
    /// Starts `herd serve --bind 127.0.0.1:0 <args>` (debug logs on) and waits until it listens.
    pub fn start(args: &[&str]) -> Herd {
        Self::start_with(&["--bind", "127.0.0.1:0"], args)
    }

    /// Starts `herd serve <bind> <args>` and waits until it listens.
    pub fn start_with(bind: &[&str], args: &[&str]) -> Herd {
        Self::start_env(bind, args, &[])
    }

    /// As [`Herd::start_with`], with extra environment variables.
    pub fn start_env(bind: &[&str], args: &[&str], env: &[(&str, &str)]) -> Herd {
        let mut cmd = Command::new(herd_bin());
        cmd.arg("serve").args(bind).args(["--log-level", "debug"]).args(args);
        Self::launch(cmd, env)
    }

    /// Launches a prepared command whose first stdout line is herd's "listening on".
    pub fn launch(cmd: Command, env: &[(&str, &str)]) -> Herd {
        Self::launch_with_stdin(cmd, env, Stdio::null())
    }

    /// As [`Herd::launch`], with this standard input (a terminal, say).
    pub fn launch_with_stdin(mut cmd: Command, env: &[(&str, &str)], stdin: Stdio) -> Herd {
        static SERVERS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = SERVERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let traces = std::env::temp_dir().join(format!("herd-traces-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&traces);
        std::fs::create_dir_all(&traces).unwrap();
        // Like /tmp: a server the test runs as another user (setpriv) records here too.
        std::fs::set_permissions(&traces, std::os::unix::fs::PermissionsExt::from_mode(0o1777)).unwrap();
        // Every server a test starts records its traces; dropping it validates them.
        cmd.env("HERD_TRACE_EVENTS", &traces);
        let mut child = cmd
            .envs(env.iter().copied())
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn herd");
        let pid = child.id() as i32;
        let log = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let stderr = child.stderr.take().unwrap();
        let l2 = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let (m, cv) = &*l2;
                m.lock().unwrap_or_else(|e| e.into_inner()).push(line);
                cv.notify_all();
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).expect("read herd stdout");
        // Keep draining stdout so that the server never blocks on it.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let addr = first
            .trim()
            .strip_prefix("herd: listening on ")
            .unwrap_or_else(|| {
                panic!(
                    "unexpected first line {first:?}; log:\n{}",
                    log.0.lock().unwrap_or_else(|e| e.into_inner()).join("\n")
                )
            })
            .to_owned();
        let addr = addr.strip_prefix("http://").unwrap_or(&addr).to_owned();
        Herd { child: Some(child), traces, addr, pid, log }
    }

    /// Sends a signal to the arbiter.
    pub fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.pid), sig).expect("signal arbiter");
    }

    /// The arbiter's live (non-zombie) worker children.
    pub fn workers(&self) -> BTreeSet<i32> {
        workers_of(self.pid)
    }

    /// The arbiter's zombie children.
    pub fn zombies(&self) -> Vec<i32> {
        zombies_of(self.pid).into_iter().collect()
    }

    /// Waits until `f(workers)` holds; returns them.
    pub fn wait_workers(&self, what: &str, f: impl Fn(&BTreeSet<i32>) -> bool) -> BTreeSet<i32> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let w = self.workers();
            if f(&w) {
                return w;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for workers: {what}; have {w:?}\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits until `n` workers run.
    pub fn wait_count(&self, n: usize) -> BTreeSet<i32> {
        self.wait_workers(&format!("{n} workers"), |w| w.len() == n)
    }

    /// Waits until `n` workers run and each has announced itself to the arbiter (it booted).
    pub fn wait_ready(&self, n: usize) -> BTreeSet<i32> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let w = self.wait_count(n);
            let lines = self.log_lines();
            if w.iter().all(|&pid| booted(&lines, pid)) {
                return w;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {n} booted workers\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The arbiter's name (`w3`) for the worker with this pid, from the log.
    pub fn worker_name(&self, pid: i32) -> Option<String> {
        worker_name(&self.log_lines(), pid)
    }

    /// All stderr lines so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.log.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn log_text(&self) -> String {
        self.log_lines().join("\n")
    }

    /// Waits until the log satisfies `f`.
    pub fn wait_log(&self, what: &str, f: impl Fn(&[String]) -> bool) {
        let (m, cv) = &*self.log;
        let deadline = Instant::now() + PATIENCE;
        let mut lines = m.lock().unwrap_or_else(|e| e.into_inner());
        while !f(&lines) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let text = lines.join("\n");
                drop(lines);
                panic!("timed out waiting for log: {what}\n{text}");
            }
            lines = cv.wait_timeout(lines, left).unwrap().0;
        }
    }

    /// Waits for the arbiter to exit.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("still running");
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                return s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("herd did not exit\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The arbiter's open descriptors.
    pub fn fd_count(&self) -> usize {
        fd_count(self.pid)
    }

    /// GET `path`.
    pub fn get(&self, path: &str) -> Result<(u16, String), String> {
        http(&self.addr, "GET", path)
    }

    /// POST `path`.
    pub fn post(&self, path: &str) -> Result<(u16, String), String> {
        http(&self.addr, "POST", path)
    }
}

impl Drop for Herd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let workers = self.workers();
            let _ = c.kill();
            let _ = c.wait();
            for w in workers {
                let _ = kill(Pid::from_raw(w), Signal::SIGKILL);
            }
        }
        if std::thread::panicking() {
            eprintln!("--- herd log ---\n{}", self.log_text());
            return;
        }
        // The run, replayed through fresh cores and the invariant monitor: the runtime fed and
        // carried out exactly what the cores say (docs/verification.md, trace validation).
        let report = herd_sim::trace::check_dir(&self.traces).expect("read the traces");
        assert!(!report.files.is_empty(), "no trace recorded in {}", self.traces.display());
        assert_eq!(report.problems().count(), 0, "{report}\n--- herd log ---\n{}", self.log_text());
        eprintln!("{report}");
        let _ = std::fs::remove_dir_all(&self.traces);
    }
}

fn worker_name(lines: &[String], pid: i32) -> Option<String> {
    let tag = format!(" pid={pid} ");
    let line = lines.iter().find(|l| l.contains("worker spawned") && l.contains(&tag))?;
    let w = line.split_whitespace().find_map(|f| f.strip_prefix("worker="))?;
    Some(w.to_owned())
}

/// Whether the worker with this pid has sent anything to the arbiter.
fn booted(lines: &[String], pid: i32) -> bool {
    let Some(w) = worker_name(lines, pid) else { return false };
    let tag = format!(" worker={w} ");
    lines.iter().any(|l| l.contains(" recv ") && l.contains(&tag))
}

/// Whether a process exists (not yet reaped).
pub fn exists(pid: i32) -> bool {
    !matches!(kill(Pid::from_raw(pid), None), Err(nix::errno::Errno::ESRCH))
}

/// Waits until `f()` holds.
pub fn wait_until(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A fresh empty directory for one test.
pub fn tempdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("herd-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// One HTTP/1.1 request with `Connection: close`; the status and body.
pub fn http(addr: &str, method: &str, path: &str) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: herd\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).map_err(|e| format!("read: {e}"))?;
    let (head, body) = resp.split_once("\r\n\r\n").ok_or_else(|| format!("no response: {resp:?}"))?;
    let status =
        head.split(' ').nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| format!("bad head {head:?}"))?;
    Ok((status, body.to_owned()))
}

/// GET that must succeed with 200; the body, trimmed.
pub fn get_ok(addr: &str, path: &str) -> String {
    match http(addr, "GET", path) {
        Ok((200, body)) => body.trim().to_owned(),
        other => panic!("GET {path}: {other:?}"),
    }
}

/// One run of a demo cron job, from its `start` and `end` lines (`--test-cron-log`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CronRun {
    pub name: String,
    pub token: u64,
    pub slot: u64,
    pub pid: i32,
    pub start: u128,
    /// None: its worker died first.
    pub end: Option<u128>,
}

/// The runs in a cron log, in the order they started.
pub fn cron_runs(path: &std::path::Path) -> Vec<CronRun> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut runs: Vec<CronRun> = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(f.len(), 6, "bad cron log line {line:?}");
        let (name, token, slot, pid, t) = (
            f[1].to_owned(),
            f[2].parse().unwrap(),
            f[3].parse().unwrap(),
            f[4].parse().unwrap(),
            f[5].parse().unwrap(),
        );
        match f[0] {
            "start" => runs.push(CronRun { name, token, slot, pid, start: t, end: None }),
            "end" => {
                let r = runs
                    .iter_mut()
                    .find(|r| r.name == name && r.token == token)
                    .unwrap_or_else(|| panic!("end without a start: {line}"));
                assert_eq!((r.slot, r.pid), (slot, pid), "{line}");
                r.end = Some(t);
            }
            other => panic!("bad cron log line {other:?}"),
        }
    }
    runs.sort_by_key(|r| r.start);
    runs
}

/// cron-exclusive, from outside: per job, no run starts before the previous one ended (a run
/// whose worker died has no end), tokens grow with every run, and each scheduled slot is run to
/// its end once.
pub fn check_cron_runs(runs: &[CronRun]) -> Result<(), String> {
    let mut names: Vec<&str> = runs.iter().map(|r| r.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        let job: Vec<&CronRun> = runs.iter().filter(|r| r.name == name).collect();
        for w in job.windows(2) {
            let (a, b) = (w[0], w[1]);
            if a.end.is_some_and(|end| b.start < end) {
                return Err(format!("{name} ran twice at once: {a:?} and {b:?}"));
            }
            if b.token <= a.token {
                return Err(format!("{name}: token {} after {}", b.token, a.token));
            }
        }
        let mut slots: Vec<u64> = job.iter().filter(|r| r.end.is_some()).map(|r| r.slot).collect();
        let n = slots.len();
        slots.dedup();
        if slots.len() != n || !slots.is_sorted() {
            return Err(format!("{name}: a slot ran to its end twice (or out of order): {job:?}"));
        }
    }
    Ok(())
}

/// `total` requests `GET /pid` from `threads` clients at once: how many each worker (by pid)
/// answered, and how many requests failed.
pub fn pids_answering(addr: &str, threads: usize, total: u64) -> (std::collections::BTreeMap<i32, u32>, u64) {
    use std::sync::atomic::{AtomicU64, Ordering};
    let served: Mutex<std::collections::BTreeMap<i32, u32>> = Mutex::default();
    let (failures, next) = (AtomicU64::new(0), AtomicU64::new(0));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                while next.fetch_add(1, Ordering::Relaxed) < total {
                    match http(addr, "GET", "/pid") {
                        Ok((200, b)) => {
                            *served.lock().unwrap().entry(b.trim().parse().unwrap()).or_default() += 1
                        }
                        _ => {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
    });
    (served.into_inner().unwrap(), failures.into_inner())
}

/// Clients sending `GET path` on `threads` threads, one connection per request, while `during`
/// runs: what it returned, the requests answered 200, and every other outcome.
pub fn under_load<R>(
    addr: &str,
    threads: usize,
    path: &str,
    during: impl FnOnce() -> R,
) -> (R, u64, Vec<String>) {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let (stop, ok, failed) = (AtomicBool::new(false), AtomicU64::new(0), Mutex::new(Vec::new()));
    let r = std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    match http(addr, "GET", path) {
                        Ok((200, _)) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        other => failed.lock().unwrap().push(format!("{other:?}")),
                    }
                }
            });
        }
        let r = during();
        stop.store(true, Ordering::Relaxed);
        r
    });
    (r, ok.into_inner(), failed.into_inner().unwrap())
}

/// Runs `herd ctl ARGS`: exit code, stdout, stderr.
pub fn ctl(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(herd_bin()).arg("ctl").args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `herd ctl --json status` of the arbiter whose pidfile this is: its `status` object.
pub fn status(pidfile: &str) -> serde_json::Value {
    let (code, out, err) = ctl(&["--pidfile", pidfile, "--json", "status"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], true);
    v["status"].clone()
}
