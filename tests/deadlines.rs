//! Deadlines on real processes, from both sides: a hung request ends at its timeout (not later,
//! and not before the protocol allows), whatever the worker's life; and an arbiter that was
//! itself stalled does not mistake its own delay for its workers' silence. Each test launches the
//! real binary.
// Runs the herd binary, built with the feature `cli`.
#![cfg(feature = "cli")]

mod common;

use common::{Herd, http, status, tempdir};
use nix::sys::signal::Signal;
use std::time::{Duration, Instant};

/// The slack a real run may take beyond the deadline: the bound, `timeout + 150 ms`.
const SLACK: Duration = Duration::from_millis(150);

/// A request hung in a worker that HUP has since asked to stop is still cut at `--timeout`
/// (gunicorn's murder_workers), not at the replacement's next heartbeat nor at the graceful
/// timeout (issue #20, B21).
#[test]
fn a_retiring_workers_hung_request_ends_at_the_timeout_in_every_accept_mode() {
    let timeout = Duration::from_secs(2);
    for mode in ["signaled", "shared", "auto"] {
        let h = Herd::start(&[
            "--workers",
            "1",
            "--timeout",
            "2",
            "--graceful-timeout",
            "30",
            "--accept-mode",
            mode,
        ]);
        h.wait_ready(1);
        let addr = h.addr.clone();
        let client = std::thread::spawn(move || {
            let start = Instant::now();
            let r = http(&addr, "GET", "/sleep?ms=60000");
            (r, start.elapsed())
        });
        // HUP half a heartbeat period (timeout / 4) after the request began: its worker retires
        // with the request in hand, and the replacement's heartbeats, which wake the arbiter
        // every timeout / 2, fall half a period away from the deadline, so a deadline the
        // arbiter does not sleep until is missed by a quarter of the timeout, not by luck.
        h.wait_log("the request started", |l| l.iter().any(|l| l.contains("sleeping")));
        std::thread::sleep(timeout / 4);
        h.signal(Signal::SIGHUP);
        let (r, took) = client.join().unwrap();
        assert!(r.is_err(), "{mode}: the hung request was answered: {r:?}");
        assert!(took <= timeout + SLACK, "{mode}: ended {took:?} after it began (timeout {timeout:?})");
        // Not early either: in signaled and auto modes the worker's ACCEPTED starts the clock at
        // the request; in shared mode its last heartbeat may be up to timeout / 2 older.
        let earliest = if mode == "shared" { timeout / 2 } else { timeout - Duration::from_millis(50) };
        assert!(took >= earliest, "{mode}: cut after {took:?}, before {earliest:?}");
        let log = h.log_text();
        let retired = log.find("Retire").unwrap_or_else(|| panic!("{mode}: no retirement:\n{log}"));
        let killed = log.find("worker timeout").unwrap_or_else(|| panic!("{mode}: no timeout kill:\n{log}"));
        assert!(retired < killed, "{mode}: the worker was killed before it was retiring:\n{log}");
    }
}

/// The arbiter stalled for three timeouts (SIGSTOP) while its idle workers kept writing
/// heartbeats: on SIGCONT it reads them before judging anyone late, and kills nobody (B22).
#[test]
fn an_arbiter_stalled_past_the_timeout_kills_no_worker_that_heartbeat() {
    let dir = tempdir("stalled");
    let pidfile = dir.join("herd.pid");
    let p = pidfile.to_str().unwrap();
    let h = Herd::start(&["--workers", "2", "--timeout", "2", "--pidfile", p]);
    let before = h.wait_ready(2);
    let pid = nix::unistd::Pid::from_raw(h.pid);
    nix::sys::signal::kill(pid, Signal::SIGSTOP).unwrap();
    // The stall itself is the scenario (three timeouts long), not a wait for something to happen.
    std::thread::sleep(Duration::from_secs(6));
    nix::sys::signal::kill(pid, Signal::SIGCONT).unwrap();
    // The answer comes after the arbiter's first timeout pass since it resumed.
    let st = status(p);
    assert_eq!(st["counters"]["timeouts"], 0, "{st}\n{}", h.log_text());
    assert_eq!(st["counters"]["deaths"], 0, "{st}");
    assert_eq!(h.workers(), before, "no worker was replaced");
}

/// A retiring worker's request is bound by the earlier of `--timeout` (above) and
/// `--graceful-timeout` after it was asked to stop: here the graceful timeout binds first, so the
/// request is cut that long after the HUP — not later, and not before.
#[test]
fn a_retiring_workers_request_is_cut_at_the_graceful_timeout_when_that_comes_first() {
    let graceful = Duration::from_secs(1);
    let h = Herd::start(&["--workers", "1", "--timeout", "30", "--graceful-timeout", "1"]);
    h.wait_ready(1);
    let addr = h.addr.clone();
    let client = std::thread::spawn(move || {
        let r = http(&addr, "GET", "/sleep?ms=8000");
        (r, Instant::now())
    });
    h.wait_log("the request started", |l| l.iter().any(|l| l.contains("sleeping")));
    let hup = Instant::now();
    h.signal(Signal::SIGHUP);
    let (r, ended) = client.join().unwrap();
    let after = ended - hup;
    assert!(r.is_err(), "the request outlived its grace: {r:?}");
    assert!(after <= graceful + SLACK, "cut {after:?} after the HUP (graceful timeout {graceful:?})");
    assert!(
        after >= graceful - Duration::from_millis(50),
        "cut {after:?} after the HUP, before its grace ended"
    );
    h.wait_log("grace expired", |l| l.iter().any(|l| l.contains("GraceExpired")));
}

/// And a request shorter than both bounds finishes: HUP never cuts a request short.
#[test]
fn a_retiring_workers_request_within_its_bounds_completes() {
    let h = Herd::start(&["--workers", "1", "--timeout", "30", "--graceful-timeout", "30"]);
    h.wait_ready(1);
    let addr = h.addr.clone();
    let client = std::thread::spawn(move || http(&addr, "GET", "/sleep?ms=700"));
    h.wait_log("the request started", |l| l.iter().any(|l| l.contains("sleeping")));
    h.signal(Signal::SIGHUP);
    assert_eq!(client.join().unwrap(), Ok((200, "slept 700\n".to_owned())));
}

/// `--timeout 0` turns the request timeout off (gunicorn's meaning): a request far past what a
/// one-second timeout allows completes, on both worker kinds, and the trace shows no kill (the
/// monitor refuses any kill for silence without a timeout). The value is checked in both
/// directions: the same request under `--timeout 1` is cut; and cron workers, whose leases the
/// timeout bounds, refuse to run without one.
#[test]
fn timeout_zero_turns_the_request_timeout_off() {
    for class in ["sync", "async"] {
        // The async demo's /block stops its event loop, as a sync worker's request does.
        let path = if class == "sync" { "/sleep?ms=2500" } else { "/block?ms=2500" };
        let off = Herd::start(&["--workers", "1", "--timeout", "0", "--worker-class", class]);
        off.wait_ready(1);
        assert_eq!(off.get(path).map(|(s, _)| s), Ok(200), "{class}: --timeout 0\n{}", off.log_text());
        let on = Herd::start(&["--workers", "1", "--timeout", "1", "--worker-class", class]);
        on.wait_ready(1);
        assert!(on.get(path).is_err(), "{class}: --timeout 1 lets a 2.5 s request finish\n{}", on.log_text());
    }
    let out = std::process::Command::new(common::herd_bin())
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--timeout",
            "0",
            "--cron-workers",
            "1",
            "--cron-job",
            "j=1",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("timeout"), "{err}");
    for bad in ["-1", "soon", "nan"] {
        let out = std::process::Command::new(common::herd_bin())
            .args(["serve".to_owned(), format!("--timeout={bad}")])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "--timeout {bad}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("--timeout"), "--timeout {bad}");
    }
}
