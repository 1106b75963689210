//! Cron workers against the real binary: jobs run on schedule, each scheduled run once and never
//! two at once; a cron worker killed mid-job is replaced and the job retried once its lease ends.
// Runs the herd binary, built with the feature `cli`.
#![cfg(feature = "cli")]

mod common;

use common::{Herd, check_cron_runs, cron_runs, tempdir, wait_until};
use nix::sys::signal::Signal;
use std::time::Duration;

#[test]
fn three_cron_workers_run_each_scheduled_run_once() {
    let dir = tempdir("cron-schedule");
    let log = dir.join("cron.log");
    let pidfile = dir.join("herd.pid");
    let mut h = Herd::start(&[
        "--workers",
        "1",
        "--cron-workers",
        "3",
        "--cron-job",
        "fast=0.1",
        "--cron-job",
        "slow=0.3",
        "--test-cron-sleep-ms",
        "40",
        "--test-cron-log",
        log.to_str().unwrap(),
        "--pidfile",
        pidfile.to_str().unwrap(),
    ]);
    h.wait_ready(4);
    // The arbiter reports its cron workers.
    let ctl = std::process::Command::new(common::herd_bin())
        .args(["ctl", "--json", "--pidfile", pidfile.to_str().unwrap(), "status"])
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&ctl.stdout);
    assert_eq!(status.matches("\"role\":\"cron\"").count(), 3, "{status}");
    let ended = |name: &str| cron_runs(&log).iter().filter(|r| r.name == name && r.end.is_some()).count();
    wait_until("ten runs of each job", || ended("fast") >= 10 && ended("slow") >= 10);
    // ctl status shows each job's runs as the table records them (each recorded after its end
    // line, at most one per cron worker pending), and when it is next due.
    let before: Vec<usize> = ["fast", "slow"].iter().map(|n| ended(n)).collect();
    let st = common::status(pidfile.to_str().unwrap());
    let after: Vec<usize> = ["fast", "slow"].iter().map(|n| ended(n)).collect();
    let jobs = st["cron"].as_array().unwrap();
    assert_eq!(jobs.len(), 2, "{st}");
    for (i, (job, interval)) in jobs.iter().zip([0.1, 0.3]).enumerate() {
        let runs = job["runs"].as_u64().unwrap() as usize;
        assert!(
            runs + 3 >= before[i] && runs <= after[i],
            "{job}: {runs} runs; the log says {before:?}..{after:?}"
        );
        assert_eq!(
            (job["interval_secs"].as_f64(), job["failures"].as_u64()),
            (Some(interval), Some(0)),
            "{job}"
        );
        let due = job["next_due_secs"].as_f64().unwrap();
        assert!(due <= interval && due > -2.0, "{job}");
    }
    let text = std::process::Command::new(common::herd_bin())
        .args(["ctl", "--pidfile", pidfile.to_str().unwrap(), "status"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("cron fast: every 0.1s") && text.contains("cron slow: every 0.3s"), "{text}");
    assert!(h.log_text().contains("cron job fast: ok in"), "each run is logged");
    // TTOU resizes the HTTP workers only; the cron workers keep running jobs.
    h.signal(Signal::SIGTTOU);
    let before = ended("fast");
    wait_until("runs after TTOU", || ended("fast") >= before + 3);
    h.signal(Signal::SIGTERM);
    assert!(h.wait_exit().success());
    let runs = cron_runs(&log);
    check_cron_runs(&runs).unwrap();
    assert!(runs.iter().all(|r| r.end.is_some()), "TERM lets a job finish: {runs:?}");
    assert!(
        !h.log_text().contains("reason=Protocol"),
        "an honest cron worker was killed for a protocol error"
    );
    let pids: std::collections::BTreeSet<i32> = runs.iter().map(|r| r.pid).collect();
    assert!(pids.len() >= 2, "the jobs were shared among the cron workers: {pids:?}");
}

#[test]
fn a_cron_worker_killed_mid_job_is_replaced_and_the_job_retried() {
    let dir = tempdir("cron-kill");
    let log = dir.join("cron.log");
    // timeout 1 s, graceful 1 s, kill grace 1 s: a lease of 3 s. The job takes 700 ms and is due
    // once an hour, so any second run is the retry.
    let mut h = Herd::start(&[
        "--workers",
        "1",
        "--timeout",
        "1",
        "--graceful-timeout",
        "1",
        "--cron-workers",
        "2",
        "--cron-job",
        "nightly=3600",
        "--test-cron-sleep-ms",
        "700",
        "--test-cron-log",
        log.to_str().unwrap(),
    ]);
    wait_until("the job starts", || !cron_runs(&log).is_empty());
    let first = cron_runs(&log)[0].clone();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(first.pid), Signal::SIGKILL).unwrap();
    let killed_at = std::time::Instant::now();
    wait_until("the job is retried and runs to its end", || {
        cron_runs(&log).iter().any(|r| r.token > first.token && r.end.is_some())
    });
    let waited = killed_at.elapsed();
    let runs = cron_runs(&log);
    check_cron_runs(&runs).unwrap();
    let retry = runs.iter().find(|r| r.token > first.token).unwrap();
    assert_eq!(retry.slot, first.slot, "the retry runs the slot the dead holder left");
    assert_ne!(retry.pid, first.pid);
    assert_eq!(runs.iter().find(|r| r.token == first.token).unwrap().end, None);
    // Not before the dead holder's lease ended.
    assert!(waited >= Duration::from_millis(2_000), "retried after {waited:?}: the lease was not respected");
    h.signal(Signal::SIGTERM);
    assert!(h.wait_exit().success());
    assert_eq!(cron_runs(&log).len(), 2, "run once, retried once: {:?}", cron_runs(&log));
}

#[test]
fn bad_cron_flags_are_clear_errors() {
    for (args, says) in [
        (&["--cron-job", "x"][..], "NAME=SECONDS"),
        (&["--cron-workers", "1"][..], "at least one cron job"),
        (&["--cron-job", "a=1"][..], "need cron workers"),
        (&["--cron-job", "a=1", "--cron-job", "a=2"][..], "defined twice"),
    ] {
        let out = std::process::Command::new(common::herd_bin())
            .args(["serve", "--bind", "127.0.0.1:0"])
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
