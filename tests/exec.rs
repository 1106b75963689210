//! Programs herd did not link, supervised for real (`herd serve -- COMMAND`): the Python reference
//! worker (examples/python/herd_worker.py), which speaks herd's wire protocol, and a program that
//! knows nothing of herd (`--worker-protocol none`). Python 3 is the machine's; without it these
//! tests fail in CI and are skipped loudly elsewhere.
// Runs the herd binary, built with the feature `cli`.
#![cfg(feature = "cli")]

mod common;
use common::{Herd, PATIENCE, herd_bin, http, pids_answering, under_load};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::process::Command;
use std::time::{Duration, Instant};

const WORKER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/python/herd_worker.py");

/// Whether python3 (with wsgiref) runs here; in CI its absence is a failure.
fn python() -> bool {
    let ok =
        Command::new("python3").args(["-c", "import wsgiref, selectors"]).status().is_ok_and(|s| s.success());
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "python3 is needed by tests/exec.rs (CI installs it)");
        eprintln!("SKIPPED: no python3 on this machine; tests/exec.rs did not run");
    }
    ok
}

/// `herd serve` with these flags, then `-- python3 <script> <args>`.
fn start(flags: &[&str], script: &str, args: &[&str]) -> Herd {
    let mut all = flags.to_vec();
    all.extend(["--", "python3", script]);
    all.extend(args);
    Herd::start(&all)
}

#[test]
fn the_python_reference_worker_serves_and_reloads_under_load_in_every_accept_mode() {
    if !python() {
        return;
    }
    for mode in ["signaled", "shared", "auto"] {
        let h = start(&["--workers", "4", "--accept-mode", mode], WORKER, &[]);
        let old = h.wait_ready(4);
        let ((), ok, failed) = under_load(&h.addr, 4, "/", || {
            std::thread::sleep(Duration::from_millis(200));
            h.signal(Signal::SIGHUP);
            h.wait_workers("a new generation", |w| w.len() == 4 && w.is_disjoint(&old));
        });
        assert!(failed.is_empty(), "{mode}: requests failed across HUP: {failed:?}");
        assert!(ok > 0, "{mode}");
        // Every worker of the new generation serves.
        let (served, failures) = pids_answering(&h.addr, 4, 200);
        assert_eq!(failures, 0, "{mode}");
        assert!(served.keys().all(|p| !old.contains(p)), "{mode}: an old worker still serves");
    }
}

#[test]
fn a_hung_python_request_is_cut_at_the_timeout_not_before() {
    if !python() {
        return;
    }
    let h = start(&["--workers", "1", "--timeout", "1"], WORKER, &[]);
    let old = h.wait_ready(1);
    let began = Instant::now();
    let r = http(&h.addr, "GET", "/sleep?ms=60000");
    let took = began.elapsed();
    assert!(r.is_err(), "the hung request was answered: {r:?}");
    assert!(took >= Duration::from_secs(1), "cut after {took:?}, before the timeout");
    assert!(took < Duration::from_millis(2_500), "cut after {took:?}, long past the 1 s timeout");
    h.wait_log("the timeout kill", |l| l.iter().any(|l| l.contains("worker timeout, killing")));
    h.wait_workers("a replacement", |w| w.len() == 1 && w.is_disjoint(&old));
    // The replacement that booted serves (a Python slower than the 1 s timeout to start on a
    // loaded machine is itself replaced: that is the timeout's rule too).
    let new = h.wait_ready(1);
    assert!(new.is_disjoint(&old));
    assert_eq!(http(&h.addr, "GET", "/pid").unwrap().1.trim().parse::<i32>().ok(), new.first().copied());
}

#[test]
fn python_workers_recycle_after_max_requests_and_lose_no_request() {
    if !python() {
        return;
    }
    let h = start(&["--workers", "2", "--max-requests", "50"], WORKER, &[]);
    h.wait_ready(2);
    let (served, failures) = pids_answering(&h.addr, 3, 300);
    assert_eq!(failures, 0, "requests lost while workers recycled");
    assert!(served.len() >= 6, "300 requests at 50 per worker need at least 6 workers: {served:?}");
    assert!(served.values().all(|&n| n <= 50), "a worker served past its budget: {served:?}");
    h.wait_log("recycling", |l| l.iter().any(|l| l.contains("BYE:recycle")));
}

#[test]
fn term_lets_a_python_request_in_flight_finish() {
    if !python() {
        return;
    }
    let pidfile = common::tempdir("exec-term").join("herd.pid");
    let pidfile = pidfile.to_str().unwrap();
    let mut h = start(&["--workers", "2", "--graceful-timeout", "20", "--pidfile", pidfile], WORKER, &[]);
    let workers = h.wait_ready(2);
    // `herd ctl status` names each worker's pid and program (what a platform uses, not pgrep).
    let status = common::status(pidfile);
    let listed: std::collections::BTreeSet<i32> =
        status["workers"].as_array().unwrap().iter().map(|w| w["pid"].as_i64().unwrap() as i32).collect();
    assert_eq!(listed, workers);
    for w in status["workers"].as_array().unwrap() {
        assert_eq!(w["command"], format!("python3 {WORKER}"));
    }
    let addr = h.addr.clone();
    let client = std::thread::spawn(move || http(&addr, "GET", "/sleep?ms=800"));
    h.wait_log("the request accepted", |l| l.iter().any(|l| l.contains(" recv ") && l.contains("ACCEPTED")));
    h.signal(Signal::SIGTERM);
    let (status, body) = client.join().unwrap().expect("the request in flight completes");
    assert_eq!((status, body.trim()), (200, "slept"));
    assert_eq!(h.wait_exit().code(), Some(0));
    assert!(h.log_text().contains("BYE:stop"));
}

/// A server that knows nothing of herd: Python's standard HTTP server on the inherited socket,
/// finishing its request on TERM. Its argument is a directory where it leaves `in-flight` when a
/// `/sleep` request begins. Given a `NOTIFY_SOCKET`, it also says when it is ready, as to
/// systemd: it leaves `started-<pid>` there, waits for `go`, then says READY=1.
const SILENT: &str = r#"
import os, signal, socket, socketserver, http.server, sys, time
d = sys.argv[1]
assert int(os.environ["LISTEN_PID"]) == os.getpid() and os.environ["LISTEN_FDS"] == "1"
if "NOTIFY_SOCKET" in os.environ:
    open(os.path.join(d, f"started-{os.getpid()}"), "w").close()
    while not os.path.exists(os.path.join(d, "go")):
        time.sleep(0.01)
    addr = os.environ["NOTIFY_SOCKET"]
    n = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    n.sendto(b"READY=1", "\0" + addr[1:] if addr.startswith("@") else addr)
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/sleep"):
            open(os.path.join(d, "in-flight"), "w").close()
            time.sleep(0.8)
        body = f"{os.getpid()}\n".encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
srv = socketserver.TCPServer(None, H, bind_and_activate=False)
srv.socket = socket.socket(fileno=3)
srv.timeout = 0.2
while not stop:
    srv.handle_request()
"#;

#[test]
fn a_program_that_knows_nothing_of_herd_is_respawned_reloaded_and_stopped() {
    if !python() {
        return;
    }
    let dir = common::tempdir("exec-silent");
    let script = dir.join("silent.py");
    std::fs::write(&script, SILENT).unwrap();
    let marker = dir.join("in-flight");
    let flags = ["--workers", "2", "--worker-protocol", "none", "--graceful-timeout", "20"];
    let mut h = start(&flags, script.to_str().unwrap(), &[dir.to_str().unwrap()]);
    let first = h.wait_ready(2);
    assert_eq!(pids_answering(&h.addr, 2, 20).1, 0);
    // Killed from outside: replaced.
    let victim = *first.first().unwrap();
    kill(Pid::from_raw(victim), Signal::SIGKILL).unwrap();
    let before_hup = h.wait_workers("a replacement", |w| w.len() == 2 && !w.contains(&victim));
    // HUP under load: a new generation, no request failed.
    let ((), ok, failed) = under_load(&h.addr, 4, "/", || {
        std::thread::sleep(Duration::from_millis(200));
        h.signal(Signal::SIGHUP);
        h.wait_workers("a new generation", |w| w.len() == 2 && w.is_disjoint(&before_hup));
    });
    assert!(failed.is_empty(), "requests failed across HUP: {failed:?}");
    assert!(ok > 0);
    // TERM: the request in flight finishes, the server exits 0.
    let addr = h.addr.clone();
    let client = std::thread::spawn(move || http(&addr, "GET", "/sleep"));
    common::wait_until("the request in flight", || marker.exists());
    h.signal(Signal::SIGTERM);
    assert_eq!(client.join().unwrap().map(|r| r.0), Ok(200));
    assert_eq!(h.wait_exit().code(), Some(0));
}

#[test]
fn a_program_that_dies_at_every_boot_halts_the_server_with_its_last_exit_status() {
    for protocol in ["herd", "none"] {
        let mut cmd = Command::new(herd_bin());
        cmd.args(["serve", "--bind", "127.0.0.1:0", "--workers", "2", "--max-boot-failures", "4"]).args([
            "--worker-protocol",
            protocol,
            "--",
            "sh",
            "-c",
            "exit 7",
        ]);
        let began = Instant::now();
        let out = cmd.output().unwrap();
        assert!(began.elapsed() < PATIENCE, "{protocol}: still respawning after {:?}", began.elapsed());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{protocol}: {err}");
        assert!(
            err.contains(
                "halting: 4 workers in a row died before booting (--max-boot-failures 4); the last failed (exit 7)"
            ),
            "{protocol}: {err}"
        );
        // Two at once, then one probe at a time with backoff, and not one more.
        let spawned = err.lines().filter(|l| l.contains("worker spawned")).count();
        assert_eq!(spawned, 4, "{protocol}: {err}");
    }
}

/// `herd serve -- ARGS` that must fail before serving: its exit code and stderr.
fn refused(flags: &[&str], command: &[&str]) -> (Option<i32>, String) {
    let mut cmd = Command::new(herd_bin());
    cmd.args(["serve", "--bind", "127.0.0.1:0"]).args(flags).arg("--").args(command);
    let began = Instant::now();
    let out = cmd.output().unwrap();
    assert!(began.elapsed() < PATIENCE);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("worker spawned"), "a worker was forked: {err}");
    (out.status.code(), err)
}

#[test]
fn a_program_that_cannot_run_is_one_clear_error_before_any_worker() {
    let dir = common::tempdir("exec-refused");
    let (code, err) = refused(&[], &["/nonexistent/herd-program"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("/nonexistent/herd-program") && err.contains("No such file"), "{err}");
    let (code, err) = refused(&[], &["herd-no-such-program-in-path"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("herd-no-such-program-in-path: not found in PATH"), "{err}");
    let plain = dir.join("not-executable");
    std::fs::write(&plain, "#!/bin/sh\n").unwrap();
    let (code, err) = refused(&[], &[plain.to_str().unwrap()]);
    assert_ne!(code, Some(0));
    assert!(err.contains("not-executable") && err.contains("Permission denied"), "{err}");
    // What a program that does not speak the protocol cannot do, named.
    for (flags, says) in [
        (&["--worker-protocol", "none", "--accept-mode", "signaled"][..], "--accept-mode shared"),
        (&["--worker-protocol", "none", "--max-requests", "5"][..], "no --max-requests"),
        (&["--worker-protocol", "none", "--timeout", "5"][..], "--timeout 0"),
        (&["--cron-workers", "1", "--cron-job", "j=5"][..], "no --cron-workers"),
        (&["--worker-ready", "notify"][..], "ready at its first frame (--worker-protocol none)"),
        (&["--access-logfile", "-"][..], "keeps its own access log"),
    ] {
        let (code, err) = refused(flags, &["python3", "-c", "pass"]);
        assert_ne!(code, Some(0), "{flags:?}");
        assert!(err.contains(says), "{flags:?}: {err}");
    }
}

#[test]
fn a_program_the_kernel_cannot_execute_halts_the_server_once() {
    let dir = common::tempdir("exec-format");
    let bad = dir.join("garbage");
    std::fs::write(&bad, b"\x7fELF garbage").unwrap();
    std::fs::set_permissions(&bad, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut h = Herd::start(&["--workers", "3", "--", bad.to_str().unwrap()]);
    let status = h.wait_exit();
    assert_ne!(status.code(), Some(0));
    let log = h.log_text();
    assert!(log.contains("cannot execute") && log.contains("Exec format error"), "{log}");
    // A boot error halts: no respawn storm.
    let spawned = log.lines().filter(|l| l.contains("worker spawned")).count();
    assert!(spawned <= 3, "{spawned} workers spawned:\n{log}");
}

/// An ASGI application for uvicorn: answers its pid.
const ASGI_APP: &str = r#"
import os
async def app(scope, receive, send):
    body = f"{os.getpid()}\n".encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
"#;

/// A real third-party server that adopts an inherited descriptor: uvicorn (`--fd 3`), from
/// `HERD_TEST_UVICORN` (CI installs it into a virtual environment; `.ci/run`).
#[test]
fn uvicorn_on_the_inherited_socket_reloads_under_load_without_a_failed_request() {
    let Some(uvicorn) = std::env::var_os("HERD_TEST_UVICORN") else {
        assert!(std::env::var_os("CI").is_none(), "HERD_TEST_UVICORN is not set (.ci/run installs uvicorn)");
        eprintln!("SKIPPED: HERD_TEST_UVICORN is not set; the uvicorn test did not run");
        return;
    };
    let dir = common::tempdir("exec-uvicorn");
    std::fs::write(dir.join("asgi.py"), ASGI_APP).unwrap();
    let h = Herd::start(&[
        "--workers",
        "2",
        "--worker-protocol",
        "none",
        "--graceful-timeout",
        "20",
        "--",
        uvicorn.to_str().unwrap(),
        "--fd",
        "3",
        "--app-dir",
        dir.to_str().unwrap(),
        "--log-level",
        "warning",
        "asgi:app",
    ]);
    let old = h.wait_ready(2);
    // Served by uvicorn itself (the workers' pids answer).
    common::wait_until("uvicorn answering", || http(&h.addr, "GET", "/").is_ok());
    let (served, failures) = pids_answering(&h.addr, 2, 40);
    assert_eq!(failures, 0);
    assert!(served.keys().all(|p| old.contains(p)), "{served:?} vs {old:?}");
    let ((), ok, failed) = under_load(&h.addr, 4, "/", || {
        std::thread::sleep(Duration::from_millis(200));
        h.signal(Signal::SIGHUP);
        h.wait_workers("a new generation", |w| w.len() == 2 && w.is_disjoint(&old));
        // Until the new uvicorns answer, connections wait in the shared backlog.
        common::wait_until("the new generation answering", || {
            http(&h.addr, "GET", "/").is_ok_and(|(_, b)| !old.contains(&b.trim().parse().unwrap_or(0)))
        });
    });
    // uvicorn closes the connections it has accepted and not yet read when its own graceful
    // shutdown begins (Kludex/uvicorn#2757: "connections the old worker had accepted but not yet
    // read, dropped at ~0.02% under load", in the worker's own shutdown path): the client sees a
    // reset from uvicorn, not a request herd lost. Anything else fails: a refused connection (the
    // listener closed), a timeout, a wrong answer, or more resets than the connections the four
    // clients can have had in flight at the two old uvicorns' shutdowns.
    let (resets, others): (Vec<&String>, Vec<&String>) =
        failed.iter().partition(|f| f.contains("Connection reset by peer"));
    assert!(others.is_empty(), "requests failed across HUP: {failed:?}");
    assert!(resets.len() <= 4 * 2, "{} resets across HUP: {failed:?}", resets.len());
    // The old generation left on its own, by the TERM herd sent (uvicorn re-raises it on the way
    // out), never killed: what was reset, uvicorn reset.
    let log = h.log_text();
    assert!(
        !log.contains("SIGKILL") && !log.contains("signal=Kill"),
        "a worker was killed across HUP:\n{log}"
    );
    assert!(ok > 0);
}

#[test]
fn with_notify_readiness_a_reload_retires_old_workers_only_once_new_ones_say_ready() {
    if !python() {
        return;
    }
    let dir = common::tempdir("exec-notify");
    let script = dir.join("silent.py");
    std::fs::write(&script, SILENT).unwrap();
    std::fs::write(dir.join("go"), "").unwrap();
    let flags = ["--workers", "2", "--worker-protocol", "none", "--worker-ready", "notify"];
    let h = start(&flags, script.to_str().unwrap(), &[dir.to_str().unwrap()]);
    let old = h.wait_ready(2);
    assert!(h.log_text().contains("worker ready (READY=1)"));
    // Reload while new workers cannot say they are ready: they start, the old ones go on.
    std::fs::remove_file(dir.join("go")).unwrap();
    h.signal(Signal::SIGHUP);
    let all = h.wait_workers("the new generation spawned", |w| w.len() == 4);
    let new: Vec<i32> = all.difference(&old).copied().collect();
    common::wait_until("the new workers running", || {
        new.iter().all(|p| dir.join(format!("started-{p}")).exists())
    });
    // A READY=1 from another process is not believed.
    let name = h
        .log_lines()
        .iter()
        .find(|l| l.contains("worker spawned") && l.contains(&format!("pid={} ", new[0])))
        .and_then(|l| l.split_whitespace().find_map(|f| f.strip_prefix("worker=w")).map(str::to_owned))
        .expect("the new worker's id");
    let forged = std::os::unix::net::UnixDatagram::unbound().unwrap();
    let to = <std::os::unix::net::SocketAddr as std::os::linux::net::SocketAddrExt>::from_abstract_name(
        format!("herd-ready-{}-{name}", h.pid),
    )
    .unwrap();
    forged.send_to_addr(b"READY=1", &to).unwrap();
    h.wait_log("the forged notification ignored", |l| {
        l.iter().any(|l| l.contains("not from the worker: ignored"))
    });
    // Nothing said ready: the old generation still serves, whole.
    let (served, failures) = pids_answering(&h.addr, 2, 20);
    assert_eq!(failures, 0);
    assert!(served.keys().all(|p| old.contains(p)), "{served:?}");
    assert!(old.iter().all(|&p| common::exists(p)));
    // Ready: the old generation is retired.
    std::fs::write(dir.join("go"), "").unwrap();
    h.wait_workers("only the new generation", |w| w.len() == 2 && w.is_disjoint(&old));
    let (served, failures) = pids_answering(&h.addr, 2, 20);
    assert_eq!(failures, 0);
    assert!(served.keys().all(|p| new.contains(p)), "{served:?}");
}

/// The instant (seconds of the day) a log line was written.
fn at(line: &str) -> f64 {
    let t = line.split_whitespace().next().and_then(|s| s.split('T').nth(1)).expect("a timestamp");
    let hms: Vec<f64> = t.trim_end_matches('Z').split(':').map(|f| f.parse().unwrap()).collect();
    hms[0] * 3600.0 + hms[1] * 60.0 + hms[2]
}

#[test]
fn a_program_that_tells_nothing_and_dies_at_start_is_respawned_with_backoff_not_in_a_loop() {
    // The shell, not Python: a program that dies within milliseconds, however loaded the machine
    // (one that lives past the readiness second has booted, by definition).
    let h = Herd::start(&["--workers", "2", "--worker-protocol", "none", "--", "sh", "-c", "exit 1"]);
    h.wait_log("six spawns", |l| l.iter().filter(|l| l.contains("worker spawned")).count() >= 6);
    let spawns: Vec<f64> =
        h.log_lines().iter().filter(|l| l.contains("worker spawned")).map(|l| at(l)).take(6).collect();
    // It never ran a second, so it never booted: each death is a boot failure, and the next
    // spawn waits (100 ms, doubling). A loop would fork six in the time Python takes to start
    // six times.
    assert!(spawns[5] - spawns[0] >= 1.2, "six spawns in {:.3} s: {spawns:?}", spawns[5] - spawns[0]);
    assert!(
        h.log_lines().iter().all(|l| !l.contains(" recv ")),
        "a program that died at start counted as booted:\n{}",
        h.log_text()
    );
}
