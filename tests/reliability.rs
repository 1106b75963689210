//! Resource exhaustion in the arbiter (fork failing at RLIMIT_NPROC, descriptors exhausted at
//! RLIMIT_NOFILE): it logs, backs off, keeps serving with the workers it has, and recovers when
//! the resources return. Plus a short chaos run (`herd-chaos`); the 60-second one is in `.ci/run`.
// Runs the herd binary, built with the feature `cli`.
#![cfg(feature = "cli")]

mod common;

use common::{Herd, get_ok, herd_bin};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::process::Command;
use std::time::Duration;

/// Sets the soft limit `what` (`nproc`, `nofile`) of another process, leaving the hard limit:
/// lowering and raising a soft limit needs no privilege, only the same user, so the call runs
/// as `as_uid` when given (`setpriv` + util-linux `prlimit`).
fn set_soft_limit(pid: i32, what: &str, value: u64, as_uid: Option<u32>) {
    let mut cmd = match as_uid {
        Some(uid) => {
            let mut c = Command::new("setpriv");
            c.args([
                format!("--reuid={uid}"),
                format!("--regid={uid}"),
                "--clear-groups".into(),
                "--".into(),
            ]);
            c.arg("prlimit");
            c
        }
        None => Command::new("prlimit"),
    };
    let out =
        cmd.args(["--pid", &pid.to_string(), &format!("--{what}={value}:")]).output().expect("run prlimit");
    assert!(out.status.success(), "prlimit --{what}={value}: {}", String::from_utf8_lossy(&out.stderr));
}

fn processes_of(uid: u32) -> u64 {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(|s| s.parse::<u32>().is_ok()))
        .filter_map(|e| std::fs::read_to_string(e.path().join("status")).ok())
        .filter(|s| {
            s.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some(&uid.to_string()))
        })
        .map(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|t| t.trim().parse::<u64>().ok())
                .unwrap_or(1)
        })
        .sum()
}

#[test]
fn fork_failing_at_rlimit_nproc_backs_off_and_recovers() {
    // RLIMIT_NPROC does not bind root: run the server as `nobody` when the tests run as root.
    let root = rustix::process::getuid().is_root();
    let mut cmd = if root {
        // setpriv execs (runuser would fork and stay the parent).
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--", herd_bin()]);
        c
    } else {
        Command::new(herd_bin())
    };
    cmd.args(["serve", "--bind", "127.0.0.1:0", "--workers", "2", "--log-level", "debug"]);
    let h = Herd::launch(cmd, &[]);
    h.wait_ready(2);
    let uid = if root { 65534 } else { rustix::process::getuid().as_raw() };
    // No room for one more process of this user.
    let n = processes_of(uid);
    let as_uid = root.then_some(uid);
    set_soft_limit(h.pid, "nproc", n, as_uid);
    h.signal(Signal::SIGTTIN);
    h.wait_log("fork failed", |l| l.iter().any(|l| l.contains("cannot fork a worker")));
    // It keeps serving with the workers it has.
    for _ in 0..20 {
        assert_eq!(get_ok(&h.addr, "/"), "hello");
    }
    assert_eq!(h.workers().len(), 2);
    set_soft_limit(h.pid, "nproc", n + 64, as_uid);
    h.wait_ready(3);
    assert!(h.zombies().is_empty());
}

#[test]
fn descriptors_exhausted_back_off_and_recover() {
    let h = Herd::start(&["--workers", "2"]);
    let workers = h.wait_ready(2);
    let fds = h.fd_count() as u64;
    // Below what it has open: descriptors it holds stay, no new one can be made (0, 1, 2 are
    // taken, so no number under the limit is free).
    set_soft_limit(h.pid, "nofile", 3, None);
    let victim = *workers.iter().next().unwrap();
    kill(Pid::from_raw(victim), Signal::SIGKILL).unwrap();
    h.wait_log("spawn failed", |l| l.iter().any(|l| l.contains("cannot fork a worker")));
    for _ in 0..20 {
        assert_eq!(get_ok(&h.addr, "/"), "hello");
    }
    set_soft_limit(h.pid, "nofile", 1024, None);
    h.wait_ready(2);
    common::wait_until("no zombies", || h.zombies().is_empty());
    assert_eq!(h.fd_count() as u64, fds, "no descriptor leaked by the failed spawns");
}

/// A worker out of descriptors (`accept` fails with EMFILE) backs off instead of spinning
/// ACCEPT/EMPTY with the arbiter or spinning on a readable listener; it logs one line for the
/// burst, and serves the waiting connection once descriptors are back (issue #20).
#[test]
fn a_worker_out_of_descriptors_backs_off_and_recovers() {
    for mode in ["signaled", "shared"] {
        let h = Herd::start(&["--workers", "1", "--accept-mode", mode]);
        let worker = *h.wait_ready(1).iter().next().unwrap();
        // No new descriptor in the worker (0, 1 and 2 are taken, so no number under 3 is free):
        // its next accept fails with EMFILE.
        set_soft_limit(worker, "nofile", 3, None);
        let addr = h.addr.clone();
        let client = std::thread::spawn(move || common::http(&addr, "GET", "/"));
        h.wait_log("the first failure", |l| {
            l.iter().any(|l| l.contains("accept failed for lack of resources"))
        });
        let before = (common::cpu_ticks(worker), common::cpu_ticks(h.pid));
        // The measurement window itself, not a wait for something to happen.
        std::thread::sleep(Duration::from_millis(600));
        let used = (common::cpu_ticks(worker) - before.0, common::cpu_ticks(h.pid) - before.1);
        let failures = h.log_lines().iter().filter(|l| l.contains("accept failed")).count();
        assert_eq!(failures, 1, "{mode}: one line per burst");
        // A spin would use the whole window (60 ticks at 100 Hz); backing off uses almost none.
        assert!(used.0 <= 10 && used.1 <= 10, "{mode}: CPU ticks over 600 ms, worker and arbiter: {used:?}");
        set_soft_limit(worker, "nofile", 1024, None);
        assert_eq!(client.join().unwrap().map(|(s, _)| s), Ok(200), "{mode}: the waiting connection");
        h.wait_log("recovery", |l| l.iter().any(|l| l.contains("accept works again")));
        assert_eq!(h.workers().into_iter().collect::<Vec<_>>(), vec![worker], "{mode}: the worker lived");
    }
}

/// The fork window (issue #20, gunicorn #1910): a signal that reaches a worker at any point of its
/// setup — before its own dispositions are installed, after, and once its signals are unblocked —
/// is acted on, not lost and not run by the arbiter's handler in the child. Driven, not raced:
/// `HERD_TEST_PAUSE` makes the first worker stop itself (SIGSTOP) at that point; the test sends
/// TERM while it is stopped there, then SIGCONT. A TERM that reaches a worker makes it leave
/// gracefully (exit 0) and the arbiter replace it; a lost one would leave it serving forever.
#[test]
fn a_signal_at_any_point_of_a_workers_setup_is_acted_on() {
    for stage in ["forked", "handlers", "unblocked"] {
        let h =
            Herd::start_env(&["--bind", "127.0.0.1:0"], &["--workers", "1"], &[("HERD_TEST_PAUSE", stage)]);
        // (At `forked` it still bears the arbiter's process title: found by state, not name.)
        let stopped = || common::children(h.pid).into_iter().find(|c| c.state == 'T').map(|c| c.pid);
        common::wait_until(&format!("w0 stopped at {stage}"), || stopped().is_some());
        let w0 = stopped().unwrap();
        kill(Pid::from_raw(w0), Signal::SIGTERM).unwrap();
        kill(Pid::from_raw(w0), Signal::SIGCONT).unwrap();
        let tag = format!("pid={w0}");
        h.wait_log(&format!("w0 ({stage}) leaves on its TERM"), |lines| {
            lines.iter().any(|l| {
                l.contains("worker exited: stopped (exit 0)") && l.split_whitespace().any(|f| f == tag)
            })
        });
        // Replaced, and serving.
        h.wait_workers("a replacement", |w| w.len() == 1 && !w.contains(&w0));
        assert_eq!(h.get("/").map(|(s, _)| s), Ok(200), "after a TERM at {stage}");
    }
}
