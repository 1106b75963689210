//! Integration tests: the real `herd serve` binary, forked workers, real sockets and signals.
//! Each test launches its own server on an ephemeral port.
// Runs the herd binary, built with the feature `cli`.
#![cfg(feature = "cli")]

mod common;

use common::{Herd, get_ok, herd_bin, http, pids_answering, tempdir};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::collections::BTreeSet;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

const MODES: [&str; 3] = ["shared", "signaled", "auto"];

/// Runs `n` requests from `clients` threads; returns (ok, failures with reasons).
fn burst(addr: &str, path: &str, clients: usize, n: usize) -> (usize, Vec<String>) {
    let next = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let (addr, path, next) = (addr.to_owned(), path.to_owned(), Arc::clone(&next));
            std::thread::spawn(move || {
                let mut ok = 0;
                let mut failed = Vec::new();
                while next.fetch_add(1, Ordering::Relaxed) < n as u64 {
                    match http(&addr, "GET", &path) {
                        Ok((200, _)) => ok += 1,
                        other => failed.push(format!("{other:?}")),
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).fold((0, Vec::new()), |(a, mut f), (ok, g)| {
        f.extend(g);
        (a + ok, f)
    })
}

#[test]
fn serves_the_demo_app_in_every_accept_mode() {
    for mode in MODES {
        let h = Herd::start(&["--workers", "2", "--accept-mode", mode]);
        assert_eq!(get_ok(&h.addr, "/"), "hello", "{mode}");
        let pid: i32 = get_ok(&h.addr, "/pid").parse().unwrap();
        assert!(h.workers().contains(&pid), "{mode}: /pid answered by a worker");
        assert_eq!(http(&h.addr, "GET", "/nope").unwrap().0, 404);
        assert_eq!(http(&h.addr, "DELETE", "/").unwrap().0, 405);
        assert_eq!(http(&h.addr, "GET", "/sleep?ms=x").unwrap().0, 400);
        assert_eq!(get_ok(&h.addr, "/sleep?ms=1"), "slept 1");
    }
}

#[test]
fn no_lost_wakeups_under_a_burst_larger_than_the_workers() {
    for mode in MODES {
        let h = Herd::start(&["--workers", "4", "--accept-mode", mode]);
        h.wait_ready(4);
        // 32 clients at once against 4 workers, 400 connections in all.
        let (ok, failed) = burst(&h.addr, "/", 32, 400);
        assert!(failed.is_empty(), "{mode}: {} failed: {:?}", failed.len(), &failed[..failed.len().min(5)]);
        assert_eq!(ok, 400, "{mode}");
        // Every worker took part (signaled dispatch is first-come first-served).
        assert_eq!(h.workers().len(), 4);
    }
}

#[test]
fn a_connection_dispatched_to_a_worker_that_dies_is_served_by_another() {
    let h = Herd::start(&["--workers", "2", "--accept-mode", "signaled"]);
    let workers = h.wait_ready(2);
    // Freeze both idle workers, then connect: the arbiter tells one of them to accept.
    for &w in &workers {
        kill(Pid::from_raw(w), Signal::SIGSTOP).unwrap();
    }
    let addr = h.addr.clone();
    let client = std::thread::spawn(move || http(&addr, "GET", "/pid"));
    h.wait_log("ACCEPT:0 sent to a frozen worker", |l| {
        l.iter().any(|l| l.contains(" send ") && l.contains("ACCEPT:0"))
    });
    // Kill the worker told to accept (and the other): neither ever accepts.
    for &w in &workers {
        kill(Pid::from_raw(w), Signal::SIGKILL).unwrap();
    }
    let (status, body) = client.join().unwrap().expect("the connection is served");
    assert_eq!(status, 200);
    let pid: i32 = body.trim().parse().unwrap();
    assert!(!workers.contains(&pid), "served by a replacement");
}

#[test]
fn no_stale_registry_after_a_bump() {
    for mode in MODES {
        let h = Herd::start(&["--workers", "4", "--accept-mode", mode]);
        h.wait_ready(4);
        for round in 1..=3u64 {
            let (status, body) = h.post("/registry/bump").unwrap();
            assert_eq!(status, 200);
            let v: u64 = body.trim().parse().unwrap();
            assert_eq!(v, round, "{mode}: sequences are exact");
            // Every later request, on whichever worker, runs on at least that version.
            let seen: Vec<u64> = (0..24).map(|_| get_ok(&h.addr, "/registry").parse().unwrap()).collect();
            assert!(seen.iter().all(|&s| s >= v), "{mode}: stale registry after bump to {v}: {seen:?}");
        }
    }
}

#[test]
fn recycling_keeps_every_worker_within_its_budget() {
    let h = Herd::start(&["--workers", "4", "--max-requests", "50", "--max-requests-jitter", "10"]);
    h.wait_ready(4);
    let (served, failures) = pids_answering(&h.addr, 4, 1000);
    assert_eq!(failures, 0);
    assert_eq!(served.values().sum::<u32>(), 1000);
    let max = served.values().max().copied().unwrap();
    assert!(max <= 60, "a worker served {max} > 60 requests: {served:?}");
    // 1000 requests at 50..=60 each: at least 16 workers took part, so recycling happened.
    assert!(served.len() >= 16, "{} workers served: {served:?}", served.len());
    h.wait_count(4);
}

#[test]
fn a_killed_worker_is_replaced() {
    let h = Herd::start(&["--workers", "3"]);
    let before = h.wait_ready(3);
    let victim = *before.iter().next().unwrap();
    let t = Instant::now();
    kill(Pid::from_raw(victim), Signal::SIGKILL).unwrap();
    let after = h.wait_workers("a replacement", |w| w.len() == 3 && !w.contains(&victim));
    eprintln!("respawned in {:?}", t.elapsed());
    assert_eq!(after.intersection(&before).count(), 2);
    assert_eq!(get_ok(&h.addr, "/"), "hello");
    assert!(h.zombies().is_empty());
}

#[test]
fn a_request_past_the_timeout_kills_its_worker() {
    let h = Herd::start(&["--workers", "2", "--timeout", "1"]);
    let before = h.wait_ready(2);
    // The request sleeps far past the 1 s timeout: its worker is killed, the client gets nothing.
    let r = http(&h.addr, "GET", "/sleep?ms=20000");
    assert!(r.is_err(), "the hung request was not cut: {r:?}");
    h.wait_log("timeout kill", |l| l.iter().any(|l| l.contains("worker timeout")));
    let after = h.wait_workers("replacement", |w| w.len() == 2 && w != &before);
    assert_eq!(after.intersection(&before).count(), 1, "only the hung worker was replaced");
    assert_eq!(get_ok(&h.addr, "/"), "hello");
}

#[test]
fn ttin_and_ttou_change_the_count_by_one_each() {
    let h = Herd::start(&["--workers", "2"]);
    h.wait_count(2);
    for want in [3, 4, 5] {
        h.signal(Signal::SIGTTIN);
        h.wait_count(want);
    }
    for want in [4, 3, 2, 1] {
        h.signal(Signal::SIGTTOU);
        h.wait_count(want);
    }
    // Never below one: a TTOU at one worker is handled (logged) and changes nothing.
    let handled = |h: &Herd| h.log_lines().iter().filter(|l| l.contains("signal=TTOU")).count();
    let ttous = handled(&h);
    h.signal(Signal::SIGTTOU);
    h.wait_log("TTOU handled", |l| l.iter().filter(|l| l.contains("signal=TTOU")).count() > ttous);
    assert_eq!(h.wait_count(1).len(), 1);
    h.signal(Signal::SIGTTIN);
    h.wait_count(2);
    assert_eq!(get_ok(&h.addr, "/"), "hello");
}

#[test]
fn hup_under_load_replaces_every_worker_without_failing_a_request() {
    for mode in MODES {
        let h = Herd::start(&["--workers", "4", "--accept-mode", mode]);
        let old = h.wait_ready(4);
        let stop = Arc::new(AtomicBool::new(false));
        let load: Vec<_> = (0..4)
            .map(|_| {
                let (addr, stop) = (h.addr.clone(), Arc::clone(&stop));
                std::thread::spawn(move || {
                    let (mut ok, mut failed) = (0u32, Vec::new());
                    while !stop.load(Ordering::Relaxed) {
                        match http(&addr, "GET", "/sleep?ms=2") {
                            Ok((200, _)) => ok += 1,
                            other => failed.push(format!("{other:?}")),
                        }
                    }
                    (ok, failed)
                })
            })
            .collect();
        h.signal(Signal::SIGHUP);
        h.wait_workers("a new generation", |w| w.len() == 4 && w.is_disjoint(&old));
        stop.store(true, Ordering::Relaxed);
        let mut total = 0;
        for t in load {
            let (ok, failed) = t.join().unwrap();
            assert!(failed.is_empty(), "{mode}: requests failed across HUP: {failed:?}");
            total += ok;
        }
        assert!(total > 0, "{mode}");
    }
}

#[test]
fn term_lets_requests_in_flight_finish() {
    let mut h = Herd::start(&["--workers", "4", "--graceful-timeout", "20"]);
    h.wait_ready(4);
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let addr = h.addr.clone();
            std::thread::spawn(move || http(&addr, "GET", "/sleep?ms=800"))
        })
        .collect();
    // All four are being served before TERM arrives.
    h.wait_log("4 accepted", |l| {
        l.iter().filter(|l| l.contains(" recv ") && l.contains("ACCEPTED")).count() >= 4
    });
    h.signal(Signal::SIGTERM);
    for c in clients {
        let (status, body) = c.join().unwrap().expect("in-flight request completes");
        assert_eq!((status, body.trim()), (200, "slept 800"));
    }
    let status = h.wait_exit();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn many_respawns_leave_no_zombie_and_no_descriptor_behind() {
    let h = Herd::start(&["--workers", "2"]);
    let mut current = h.wait_ready(2);
    let fds = h.fd_count();
    for _ in 0..20 {
        let victim = *current.iter().next().unwrap();
        kill(Pid::from_raw(victim), Signal::SIGKILL).unwrap();
        current = h.wait_workers("replacement", |w| w.len() == 2 && !w.contains(&victim));
    }
    h.wait_ready(2);
    assert!(h.zombies().is_empty(), "zombies: {:?}", h.zombies());
    assert_eq!(h.fd_count(), fds, "the arbiter's descriptors grew over 20 respawns");
    assert_eq!(get_ok(&h.addr, "/"), "hello");
}

#[test]
fn pidfile_is_written_refused_when_live_and_removed_on_exit() {
    let dir = tempdir("pidfile");
    let pidfile = dir.join("herd.pid");
    let p = pidfile.to_str().unwrap();
    let mut h = Herd::start(&["--pidfile", p]);
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap().trim(), h.pid.to_string());
    // A second server refuses to take over a live pidfile.
    let out =
        Command::new(herd_bin()).args(["serve", "--bind", "127.0.0.1:0", "--pidfile", p]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("belongs to running process"), "{err}");
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap().trim(), h.pid.to_string());
    h.signal(Signal::SIGTERM);
    assert_eq!(h.wait_exit().code(), Some(0));
    assert!(!pidfile.exists(), "pidfile removed on exit");
    // A stale pidfile (dead pid) does not stop a new server.
    std::fs::write(&pidfile, "999999999\n").unwrap();
    let mut h = Herd::start(&["--pidfile", p]);
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap().trim(), h.pid.to_string());
    h.signal(Signal::SIGINT);
    h.wait_exit();
    assert!(!pidfile.exists());
}

#[test]
fn bad_flags_exit_with_code_2_and_a_clear_message() {
    let cases: [(&[&str], &str); 10] = [
        (&["--workers", "0"], "--workers"),
        (&["--workers", "many"], "--workers"),
        (&["--bind", "127.0.0.1:"], "bad port"),
        (&["--log-level", "loud"], "not a log level"),
        (&["--bind", "127.0.0.1:99999"], "bad port"),
        (&["--graceful-timeout", "0"], "from 0.1"),
        (&["--timeout", "0.05"], "from 0.1"),
        (&["--timeout=-1"], "0: none"),
        (&["--accept-mode", "psychic"], "--accept-mode"),
        (&["--no-such-flag"], "--no-such-flag"),
    ];
    for (args, needle) in cases {
        let out = Command::new(herd_bin()).arg("serve").args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

/// What an operator coming from gunicorn types: `-k`, `--pid`, `--log-level warning`, a bare
/// HOST bind, `PORT` and `WEB_CONCURRENCY` from the environment.
#[test]
fn gunicorn_spellings_and_environment_are_understood() {
    let dir = tempdir("gunicorn-spellings");
    let pidfile = dir.join("herd.pid");
    let mut cmd = Command::new(herd_bin());
    cmd.args(["serve", "-k", "sync", "--log-level", "warning", "--pid", pidfile.to_str().unwrap()]);
    let h = Herd::launch(cmd, &[("PORT", "0"), ("WEB_CONCURRENCY", "3")]);
    assert!(h.addr.starts_with("0.0.0.0:"), "PORT binds every interface: {}", h.addr);
    h.wait_count(3);
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap().trim(), h.pid.to_string());
    let port = h.addr.rsplit_once(':').unwrap().1;
    assert_eq!(get_ok(&format!("127.0.0.1:{port}"), "/"), "hello");
    // At warning, the info lines (a worker spawned) are not written.
    assert!(!h.log_text().contains("worker spawned"), "{}", h.log_text());
    let out = Command::new(herd_bin())
        .args(["serve", "--log-level", "critical", "--workers", "0"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("--workers"), "critical is a level");
}

#[test]
fn address_in_use_is_a_clear_error() {
    let h = Herd::start(&[]);
    let out = Command::new(herd_bin()).args(["serve", "--bind", &h.addr]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("address already in use"), "{err}");
}

#[test]
fn unix_socket_listener_serves_and_is_unlinked_on_exit() {
    let dir = tempdir("unix");
    let path = dir.join("herd.sock");
    let bind = format!("unix:{}", path.display());
    let mut h = Herd::start_with(&["--bind", &bind], &["--workers", "2"]);
    assert_eq!(h.addr, bind);
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(&path).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.ends_with("\r\n\r\nhello\n"), "{resp:?}");
    h.signal(Signal::SIGTERM);
    h.wait_exit();
    assert!(!path.exists(), "socket unlinked on exit");
}

#[test]
fn a_worker_that_breaks_the_protocol_is_killed_and_replaced_alone() {
    for kind in ["garbage", "overlong", "bye", "flood", "forged"] {
        let h = Herd::start(&["--workers", "3", "--test-misbehave"]);
        let before = h.wait_ready(3);
        let rss_before = common::rss_kib(h.pid);
        let (status, body) = h.get(&format!("/misbehave?kind={kind}")).unwrap();
        assert_eq!(status, 200);
        let culprit: i32 = body.trim().parse().unwrap();
        let after = h.wait_workers("replacement", |w| w.len() == 3 && !w.contains(&culprit));
        let others: BTreeSet<i32> = before.iter().copied().filter(|&p| p != culprit).collect();
        assert!(others.is_subset(&after), "{kind}: other workers disturbed: {before:?} -> {after:?}");
        h.wait_log("protocol kill", |l| {
            l.iter().any(|l| l.contains("signal worker") && l.contains("reason=Protocol"))
        });
        let (ok, failed) = burst(&h.addr, "/", 4, 40);
        assert!(failed.is_empty() && ok == 40, "{kind}: {failed:?}");
        let grown = common::rss_kib(h.pid).saturating_sub(rss_before);
        assert!(grown < 4096, "{kind}: the arbiter's memory grew by {grown} KiB");
    }
}

#[test]
fn a_crashing_worker_is_replaced_and_the_server_keeps_serving() {
    let h = Herd::start(&["--workers", "2"]);
    let before = h.wait_ready(2);
    assert!(h.get("/crash").is_err(), "a crash answers nothing");
    h.wait_workers("replacement", |w| w.len() == 2 && w != &before);
    assert_eq!(get_ok(&h.addr, "/"), "hello");
}

/// The binary these tests launch is built in this same cargo invocation, with the same
/// herd-protocol: no re-introduced bug may be compiled into it (`--features sim` once turned the
/// `mutants` switches on for the whole build).
#[test]
fn the_tested_binary_has_no_mutant_switches() {
    assert!(!herd::protocol::mutants_compiled(), "herd-protocol was built with `mutants` for this test run");
}

/// No form of a registry store address is ever printed with its password: every message herd
/// prints about a store it cannot use is grepped for it.
#[test]
fn a_store_password_is_never_printed() {
    let secret = "s3cretPassw0rd";
    let stores = [
        format!("host=127.0.0.1 port=1 user=herd password={secret} dbname=x connect_timeout=1"),
        format!("host=127.0.0.1 port=1 password='{secret} with space' dbname=x"),
        format!("postgres://herd:{secret}@127.0.0.1:1/x?connect_timeout=1"),
        format!("postgresql://herd@127.0.0.1:1/x?password={secret}&connect_timeout=1"),
        format!("postgres://herd:{secret}@127.0.0.1:notaport/x"),
        format!("mysql://herd:{secret}@db/x"),
    ];
    for store in &stores {
        let out = Command::new(herd_bin())
            .args(["serve", "--bind", "127.0.0.1:0", "--registry-store", store])
            .output()
            .unwrap();
        let text =
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!out.status.success(), "{store}: served on a store it cannot reach:\n{text}");
        assert!(text.contains("registry store"), "{store}: the message does not say what is wrong:\n{text}");
        assert!(!text.contains("s3cret"), "{store}: the password was printed:\n{text}");
    }
}
