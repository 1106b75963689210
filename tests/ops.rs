//! Operating herd: the control socket and `herd ctl`, per-worker limits, systemd readiness and
//! socket activation, WINCH, and the zero-downtime USR2 upgrade. Each test launches the real
//! binary.
// Runs the herd binary, built with the feature `cli`.
#![cfg(feature = "cli")]

mod common;

use common::{Herd, comm, ctl, exists, get_ok, herd_bin, http, status, tempdir, wait_until, workers_of};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::collections::BTreeSet;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[test]
fn ctl_incr_and_decr_are_exact() {
    let dir = tempdir("ctl-exact");
    let pidfile = dir.join("herd.pid");
    let p = pidfile.to_str().unwrap();
    let h = Herd::start(&["--workers", "2", "--pidfile", p]);
    h.wait_count(2);
    // Ten TTINs sent at once may coalesce; one `incr 10` never does.
    let (code, out, err) = ctl(&["--pidfile", p, "incr", "10"]);
    assert_eq!((code, out.trim()), (0, "ok: target 12 workers"), "{err}");
    h.wait_count(12);
    let (code, out, _) = ctl(&["--pidfile", p, "decr", "5"]);
    assert_eq!((code, out.trim()), (0, "ok: target 7 workers"));
    h.wait_count(7);
    // Bad requests are refused with a clear message, exit 2 for usage.
    let (code, _, err) = ctl(&["--pidfile", p, "incr", "0"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = ctl(&["--socket", "/nonexistent/herd.ctl", "status"]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot talk to the arbiter"), "{err}");
}

#[test]
fn ctl_status_matches_the_process_table() {
    let dir = tempdir("ctl-status");
    let pidfile = dir.join("herd.pid");
    let p = pidfile.to_str().unwrap();
    // Signaled: every connection is a dispatch the counters show.
    let h = Herd::start(&["--workers", "3", "--accept-mode", "signaled", "--pidfile", p]);
    let pids = h.wait_ready(3);
    for _ in 0..9 {
        get_ok(&h.addr, "/");
    }
    let s = status(p);
    assert_eq!(s["pid"], h.pid);
    assert_eq!(s["target"], 3);
    assert_eq!(s["phase"], "running");
    let listed: BTreeSet<i32> =
        s["workers"].as_array().unwrap().iter().map(|w| w["pid"].as_i64().unwrap() as i32).collect();
    assert_eq!(listed, pids, "status lists exactly the worker processes");
    let served: u64 = s["workers"].as_array().unwrap().iter().map(|w| w["requests"].as_u64().unwrap()).sum();
    assert_eq!(served, 9, "requests served add up");
    assert_eq!(s["counters"]["spawns"], 3);
    assert_eq!(s["counters"]["dispatches"], 9);
    // Process titles.
    assert_eq!(comm(h.pid), "herd: arbiter");
    for &w in &pids {
        assert!(comm(w).starts_with("herd: worker "), "{}", comm(w));
    }
    // The human table has a row per worker.
    let (code, table, _) = ctl(&["--pidfile", p, "status"]);
    assert_eq!(code, 0);
    for &w in &pids {
        assert!(table.contains(&format!(" {w} ")), "pid {w} missing from\n{table}");
    }
    // The control socket is owner-only.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.join("herd.pid.ctl")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn a_worker_holds_no_descriptor_of_the_arbiter_or_of_other_workers() {
    let dir = tempdir("fds");
    let pidfile = dir.join("herd.pid");
    let p = pidfile.to_str().unwrap();
    let h = Herd::start(&["--workers", "1", "--pidfile", p]);
    let first = *h.wait_ready(1).iter().next().unwrap();
    let fds = |pid: i32| std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count();
    let baseline = fds(first);
    // Spawned by a control request (its connection open at fork time), with 5 workers around.
    ctl(&["--pidfile", p, "incr", "5"]);
    let all = h.wait_ready(6);
    for w in all {
        assert_eq!(fds(w), baseline, "worker {w} has {} descriptors, the first had {baseline}", fds(w));
    }
}

#[test]
fn soft_memory_limit_finishes_the_request_then_recycles_the_worker() {
    let h = Herd::start(&["--workers", "2", "--limit-memory-soft", "64M"]);
    let before = h.wait_ready(2);
    let body = get_ok(&h.addr, "/alloc?mb=96&keep=1");
    let pid: i32 = body.split_whitespace().next().unwrap().parse().unwrap();
    assert!(before.contains(&pid));
    h.wait_workers("the big worker replaced", |w| w.len() == 2 && !w.contains(&pid));
    h.wait_log("BYE:memory", |l| l.iter().any(|l| l.contains("msg=BYE:memory")));
    let tag = format!("pid={pid}");
    h.wait_log("the reason in the log", |l| {
        l.iter().any(|l| l.contains("worker exited: over its memory limit (exit 0)") && l.ends_with(&tag))
    });
    // A small request does not trip it.
    let body = get_ok(&h.addr, "/alloc?mb=1");
    let small: i32 = body.split_whitespace().next().unwrap().parse().unwrap();
    assert!(h.workers().contains(&small));
}

#[test]
fn hard_memory_limit_kills_only_the_worker_that_passes_it() {
    let h = Herd::start(&["--workers", "3", "--limit-memory-hard", "512M"]);
    let before = h.wait_ready(3);
    assert!(http(&h.addr, "GET", "/alloc?mb=1024").is_err(), "the allocation cannot succeed");
    let after = h.wait_workers("one replacement", |w| w.len() == 3 && w != &before);
    assert_eq!(after.intersection(&before).count(), 2, "only one worker died");
    get_ok(&h.addr, "/alloc?mb=64");
}

#[test]
fn cpu_limit_is_per_request() {
    let h = Herd::start(&["--workers", "1", "--limit-cpu", "1"]);
    let before = h.wait_ready(1);
    // Ten requests of 0.3 s each: 3 s of CPU in all, never 1 s in one request.
    for _ in 0..10 {
        assert_eq!(get_ok(&h.addr, "/spin?ms=300"), "spun 300");
    }
    assert_eq!(h.workers(), before, "re-armed before each request: the worker lived");
    // One request spinning far past the limit is cut.
    assert!(http(&h.addr, "GET", "/spin?ms=8000").is_err());
    h.wait_workers("replacement", |w| w.len() == 1 && w != &before);
    h.wait_log("XCPU exit", |l| l.iter().any(|l| l.contains("worker exited: over its CPU limit (exit 152)")));
}

/// Without a controlling terminal (systemd, a supervisor: here `setsid`), WINCH stops the workers
/// and keeps the arbiter, as gunicorn does when daemonized.
#[test]
fn winch_without_a_terminal_stops_the_workers_and_keeps_the_arbiter() {
    let mut cmd = Command::new("setsid");
    cmd.args([herd_bin(), "serve", "--bind", "127.0.0.1:0", "--workers", "3", "--log-level", "debug"]);
    let h = Herd::launch(cmd, &[]);
    h.wait_count(3);
    h.signal(Signal::SIGWINCH);
    h.wait_count(0);
    assert!(exists(h.pid));
    h.signal(Signal::SIGHUP);
    h.wait_count(3);
    assert_eq!(get_ok(&h.addr, "/"), "hello");
}

/// A pseudo-terminal whose master end the test holds: (master, slave).
fn pty() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    use std::os::fd::FromRawFd;
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: openpty writes two descriptors it opened; no name, termios or size given.
    let rc = unsafe {
        nix::libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), std::ptr::null())
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both are fresh descriptors this process owns.
    unsafe { (std::os::fd::OwnedFd::from_raw_fd(master), std::os::fd::OwnedFd::from_raw_fd(slave)) }
}

/// In a terminal (here a real pseudo-terminal whose foreground job `herd serve` is), every resize
/// sends SIGWINCH to the whole foreground group: the arbiter ignores it with an info line, and
/// the workers keep serving (issue #21; it used to stop every worker).
#[test]
fn winch_in_a_terminal_is_ignored_and_workers_keep_serving() {
    use std::os::fd::AsRawFd;
    let (master, slave) = pty();
    // `setsid --ctty`: a new session whose controlling terminal is standard input, the pty;
    // herd's process group is its foreground group.
    let mut cmd = Command::new("setsid");
    cmd.args([
        "--ctty",
        herd_bin(),
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--workers",
        "2",
        "--log-level",
        "debug",
    ]);
    let h = Herd::launch_with_stdin(cmd, &[], std::process::Stdio::from(slave));
    let before = h.wait_ready(2);
    let ignored =
        |n: usize| move |l: &[String]| l.iter().filter(|l| l.contains("SIGWINCH ignored")).count() >= n;
    // As an operator would.
    h.signal(Signal::SIGWINCH);
    h.wait_log("kill -WINCH ignored", ignored(1));
    // As a terminal does: the kernel signals the foreground group on a new window size.
    let size = nix::libc::winsize { ws_row: 40, ws_col: 100, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ reads one winsize from the pointer.
    let rc = unsafe { nix::libc::ioctl(master.as_raw_fd(), nix::libc::TIOCSWINSZ, &size) };
    assert_eq!(rc, 0, "TIOCSWINSZ: {}", std::io::Error::last_os_error());
    h.wait_log("a resize ignored", ignored(2));
    for _ in 0..10 {
        assert_eq!(get_ok(&h.addr, "/"), "hello");
    }
    assert_eq!(h.workers(), before, "no worker stopped");
    drop(master);
}

#[test]
fn sd_notify_ready_reloading_stopping() {
    let dir = tempdir("notify");
    let path = dir.join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(common::PATIENCE)).unwrap();
    let recv = || {
        let mut buf = [0u8; 512];
        let n = sock.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let mut h = Herd::start_env(
        &["--bind", "127.0.0.1:0"],
        &["--workers", "2"],
        &[("NOTIFY_SOCKET", path.to_str().unwrap())],
    );
    let ready = recv();
    assert!(ready.contains("READY=1") && ready.contains(&format!("MAINPID={}", h.pid)), "{ready}");
    h.wait_ready(2);
    h.signal(Signal::SIGHUP);
    let reloading = recv();
    assert!(reloading.contains("RELOADING=1") && reloading.contains("MONOTONIC_USEC="), "{reloading}");
    assert!(recv().contains("READY=1"), "ready again once the new generation is up");
    h.signal(Signal::SIGTERM);
    assert!(recv().contains("STOPPING=1"));
    assert_eq!(h.wait_exit().code(), Some(0));
}

#[test]
fn socket_activation_serves_on_the_passed_listener() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    // Make the socket inheritable, and let a shell put it at descriptor 3 with LISTEN_PID set to
    // its own pid, which `exec` hands on to herd (what systemd does after its fork).
    use std::os::fd::AsRawFd;
    let fd = listener.as_raw_fd();
    rustix::io::fcntl_setfd(&listener, rustix::io::FdFlags::empty()).unwrap();
    let redirect = if fd == 3 { String::new() } else { format!("exec 3<&{fd} {fd}<&-; ") };
    let script =
        format!("{redirect}LISTEN_FDS=1 LISTEN_PID=$$ exec \"$0\" serve --workers 2 --log-level debug");
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &script, herd_bin()]);
    let h = Herd::launch(cmd, &[]);
    drop(listener);
    assert_eq!(h.addr, addr, "serves on the passed socket, not a --bind of its own");
    h.wait_ready(2);
    assert_eq!(get_ok(&h.addr, "/"), "hello");
}

#[test]
fn usr2_upgrade_under_load_loses_no_request() {
    let dir = tempdir("upgrade");
    let pidfile = dir.join("herd.pid");
    let p = pidfile.to_str().unwrap().to_owned();
    let mut old = Herd::start(&["--workers", "3", "--pidfile", &p]);
    old.wait_ready(3);
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..3)
        .map(|_| {
            let (addr, stop) = (old.addr.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                let (mut ok, mut failed) = (0u32, Vec::new());
                while !stop.load(Ordering::Relaxed) {
                    match http(&addr, "GET", "/sleep?ms=1") {
                        Ok((200, _)) => ok += 1,
                        other => failed.push(format!("{other:?}")),
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    old.signal(Signal::SIGUSR2);
    // The new arbiter takes the pidfile; the old one keeps its pid in .oldbin.
    let read =
        |f: &std::path::Path| std::fs::read_to_string(f).ok().and_then(|s| s.trim().parse::<i32>().ok());
    let oldbin = dir.join("herd.pid.oldbin");
    wait_until("new arbiter writes the pidfile", || read(&pidfile).is_some_and(|n| n != old.pid));
    let new = read(&pidfile).unwrap();
    assert_eq!(read(&oldbin), Some(old.pid));
    assert_eq!(comm(new), "herd: arbiter");
    wait_until("new arbiter's workers", || workers_of(new).len() == 3);
    // A second USR2 while the new arbiter runs starts nothing (one child arbiter at most).
    let usr2s = |h: &Herd| h.log_lines().iter().filter(|l| l.contains("signal=USR2")).count();
    let seen = usr2s(&old);
    old.signal(Signal::SIGUSR2);
    old.wait_log("second USR2 handled", |l| l.iter().filter(|l| l.contains("signal=USR2")).count() > seen);
    let child_arbiters = common::children(old.pid).into_iter().filter(|c| c.comm == "herd: arbiter").count();
    assert_eq!(child_arbiters, 1);
    // The old arbiter leaves; the new one serves on.
    old.signal(Signal::SIGTERM);
    assert_eq!(old.wait_exit().code(), Some(0));
    assert!(!oldbin.exists(), "the old arbiter removed its .oldbin");
    assert_eq!(read(&pidfile), Some(new), "the pidfile names the new arbiter");
    for _ in 0..20 {
        get_ok(&old.addr, "/");
    }
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for t in load {
        let (ok, failed) = t.join().unwrap();
        assert!(failed.is_empty(), "requests failed across the upgrade: {failed:?}");
        total += ok;
    }
    assert!(total > 0);
    // The new arbiter answers its control socket, then stops.
    let s = status(&p);
    assert_eq!(s["pid"], new);
    kill(Pid::from_raw(new), Signal::SIGTERM).unwrap();
    wait_until("new arbiter gone", || !exists(new) || comm(new).is_empty());
    assert!(!pidfile.exists());
}

/// `--control-socket` never removes or replaces a file that is not herd's: a regular file, or a
/// socket another process listens on, is an error naming the path, and stays as it was.
#[test]
fn the_control_socket_never_replaces_a_file_that_is_not_herds() {
    let dir = tempdir("ctl-files");
    let precious = dir.join("precious.txt");
    std::fs::write(&precious, "do not touch\n").unwrap();
    let other = dir.join("other.sock");
    let listener = std::os::unix::net::UnixListener::bind(&other).unwrap();
    for (path, why) in [(&precious, "not a socket"), (&other, "listens on it")] {
        let p = path.to_str().unwrap();
        let out = Command::new(herd_bin())
            .args(["serve", "--bind", "127.0.0.1:0", "--control-socket", p])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{p}: started anyway");
        assert!(err.contains(p) && err.contains(why), "{p}: {err}");
    }
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "do not touch\n");
    assert!(std::os::unix::net::UnixStream::connect(&other).is_ok(), "the other process's socket is gone");
    drop(listener);
    // A stale socket of ours (nobody listens) is replaced, and removed again on exit.
    let stale = dir.join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let p = stale.to_str().unwrap();
    let mut h = Herd::start(&["--control-socket", p]);
    h.wait_ready(1);
    let (code, _, err) = ctl(&["--socket", p, "status"]);
    assert_eq!(code, 0, "{err}");
    h.signal(Signal::SIGTERM);
    assert!(h.wait_exit().success());
    assert!(!stale.exists(), "the control socket stays after exit");
}

/// One `GET /` over a unix socket; the status.
fn get_unix(path: &std::path::Path) -> Result<u16, String> {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(path).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(common::PATIENCE)).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: herd\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).map_err(|e| format!("read: {e}"))?;
    resp.split(' ').nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| format!("no response: {resp:?}"))
}

/// The upgrade cycle an operator may run, under load on TCP and a unix socket, with 0 failed
/// requests: USR2; a USR2 (and `ctl upgrade`) to the new arbiter while the old one lives is
/// refused (no third arbiter, `.oldbin` untouched); back out (TERM the new one: the old takes its
/// pidfile back and the unix socket stays); a second upgrade; the old one leaves; the last one
/// stops and removes what is now its own.
#[test]
fn upgrade_refusal_back_out_and_second_upgrade_keep_sockets_pidfile_and_requests() {
    let dir = tempdir("upgrade-cycle");
    let (pidfile, oldbin, sock) = (dir.join("herd.pid"), dir.join("herd.pid.oldbin"), dir.join("herd.sock"));
    let p = pidfile.to_str().unwrap().to_owned();
    let unix = format!("unix:{}", sock.display());
    let mut a =
        Herd::start_with(&["--bind", "127.0.0.1:0", "--bind", &unix], &["--workers", "2", "--pidfile", &p]);
    a.wait_ready(2);
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..4)
        .map(|i| {
            let (addr, sock, stop) = (a.addr.clone(), sock.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                let (mut ok, mut failed) = (0u32, Vec::new());
                while !stop.load(Ordering::Relaxed) {
                    let r =
                        if i % 2 == 0 { http(&addr, "GET", "/").map(|(s, _)| s) } else { get_unix(&sock) };
                    match r {
                        Ok(200) => ok += 1,
                        other => failed.push(format!("{other:?}")),
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    let read =
        |f: &std::path::Path| std::fs::read_to_string(f).ok().and_then(|s| s.trim().parse::<i32>().ok());
    let arbiters_under =
        |pid: i32| common::children(pid).into_iter().filter(|c| c.comm == "herd: arbiter").count();
    // 1. Upgrade: B takes the pidfile, A's pid is in .oldbin.
    a.signal(Signal::SIGUSR2);
    wait_until("B writes the pidfile", || read(&pidfile).is_some_and(|n| n != a.pid));
    let b = read(&pidfile).unwrap();
    assert_eq!(read(&oldbin), Some(a.pid));
    wait_until("B's workers", || workers_of(b).len() == 2);
    // 2. B refuses to upgrade while A lives, by signal and by ctl.
    kill(Pid::from_raw(b), Signal::SIGUSR2).unwrap();
    a.wait_log("USR2 refused", |l| l.iter().any(|l| l.contains("upgrade refused")));
    let (code, _, err) = ctl(&["--pidfile", &p, "upgrade"]);
    assert_ne!(code, 0, "ctl upgrade to B was not refused");
    assert!(err.contains("upgrade refused") && err.contains(&a.pid.to_string()), "{err}");
    assert_eq!(arbiters_under(b), 0, "B started a third arbiter");
    assert_eq!((read(&pidfile), read(&oldbin)), (Some(b), Some(a.pid)), "pidfiles untouched");
    // 3. Back out: TERM B. A takes the pidfile back; the unix socket is still there and served.
    kill(Pid::from_raw(b), Signal::SIGTERM).unwrap();
    wait_until("A takes the pidfile back", || read(&pidfile) == Some(a.pid) && !oldbin.exists());
    wait_until("B gone", || !exists(b) || comm(b).is_empty());
    assert!(sock.exists(), "backing out removed the old arbiter's unix socket");
    assert_eq!(get_unix(&sock), Ok(200));
    // 4. A second upgrade, then A leaves: C serves alone, on the same socket.
    a.signal(Signal::SIGUSR2);
    wait_until("C writes the pidfile", || read(&pidfile).is_some_and(|n| n != a.pid && n != b));
    let c = read(&pidfile).unwrap();
    wait_until("C's workers", || workers_of(c).len() == 2);
    a.signal(Signal::SIGTERM);
    assert_eq!(a.wait_exit().code(), Some(0));
    assert!(sock.exists() && !oldbin.exists());
    assert_eq!(read(&pidfile), Some(c));
    for _ in 0..10 {
        assert_eq!(get_unix(&sock), Ok(200));
        get_ok(&a.addr, "/");
    }
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for t in load {
        let (ok, failed) = t.join().unwrap();
        assert!(failed.is_empty(), "requests failed during the upgrade cycle: {failed:?}");
        total += ok;
    }
    assert!(total > 0);
    // 5. C stops: the socket and the pidfile are now its own to remove.
    kill(Pid::from_raw(c), Signal::SIGTERM).unwrap();
    wait_until("C gone", || !exists(c) || comm(c).is_empty());
    wait_until("C removed the pidfile", || !pidfile.exists());
    assert!(!sock.exists(), "the last arbiter left its unix socket behind");
}

/// `--pidfile` never replaces a file that is not a pidfile, and a missing directory is reported
/// with the path the operator gave (it used to overwrite the file, then delete it on exit, and
/// to name the derived control socket `<pidfile>.ctl`).
#[test]
fn the_pidfile_never_replaces_a_file_that_is_not_one() {
    let dir = tempdir("pidfile-files");
    let precious = dir.join("notes.txt");
    std::fs::write(&precious, "do not touch\n").unwrap();
    let sub = dir.join("a-directory");
    std::fs::create_dir(&sub).unwrap();
    let missing = dir.join("missing").join("herd.pid");
    for (path, why) in [
        (&precious, "something other than a pid"),
        (&sub, "not a regular file"),
        (&missing, "does not exist"),
    ] {
        let p = path.to_str().unwrap();
        let out = Command::new(herd_bin())
            .args(["serve", "--bind", "127.0.0.1:0", "--pidfile", p])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{p}: started anyway");
        assert!(err.contains(&format!("pidfile {p}")) && err.contains(why), "{p}: {err}");
        assert!(!err.contains(".ctl"), "{p}: names the derived control socket: {err}");
    }
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "do not touch\n");
    assert!(sub.is_dir());
    // A stale pidfile of a process that is gone is herd's own: replaced, and removed on exit.
    let stale = dir.join("herd.pid");
    std::fs::write(&stale, "999999999\n").unwrap();
    let p = stale.to_str().unwrap();
    let mut h = Herd::start(&["--pidfile", p]);
    h.wait_ready(1);
    assert_eq!(std::fs::read_to_string(&stale).unwrap().trim(), h.pid.to_string());
    h.signal(Signal::SIGTERM);
    assert!(h.wait_exit().success());
    assert!(!stale.exists(), "the pidfile stays after exit");
}

/// Every worker's end is logged at info with why it left and how (docs/operations.md, "Logs").
#[test]
fn the_log_says_why_each_worker_left() {
    let mut h = Herd::start(&["--workers", "2", "--max-requests", "3", "--timeout", "1", "--test-misbehave"]);
    h.wait_ready(2);
    // The exit line of a worker, by the request that ends it (or the signal, for the last two).
    let ended = |h: &Herd, what: &str, words: &str| {
        h.wait_log(what, |l| {
            l.iter().any(|l| l.contains(" INFO ") && l.contains(&format!("worker exited: {words}")))
        });
    };
    // The protocol violation first, while every worker is fresh: the one that answers it is at
    // its first request of three. Later, a worker at its third would recycle right after writing
    // the garbage and exit 0 before the arbiter's SIGKILL lands (seen in CI: "broke the protocol
    // (exit 0)"), which is herd's right behaviour but not the one this line is about.
    let _ = http(&h.addr, "GET", "/misbehave?kind=garbage");
    ended(&h, "a protocol violation", "broke the protocol (killed by SIGKILL)");
    h.wait_count(2);
    // Six requests on two workers with a budget of three: at least one reaches it.
    for _ in 0..6 {
        get_ok(&h.addr, "/");
    }
    ended(&h, "a recycled worker", "recycled after its request budget (exit 0)");
    assert!(http(&h.addr, "GET", "/crash").is_err());
    ended(&h, "a crash", "crashed (exit 134, on SIGABRT)");
    assert!(http(&h.addr, "GET", "/sleep?ms=5000").is_err());
    ended(&h, "a timeout", "timed out (exit 134, on SIGABRT)");
    h.wait_count(2);
    h.signal(Signal::SIGTTOU);
    ended(&h, "a retired worker", "retired (exit 0)");
    h.signal(Signal::SIGTERM);
    assert_eq!(h.wait_exit().code(), Some(0));
    ended(&h, "a stopped worker", "stopped (exit 0)");
}
