//! Async workers (`--worker-class async`, tokio + hyper) on the real binary: no lost wakeups,
//! recycling across connections, the timeout kill of a worker whose event loop is blocked (and
//! not of one whose requests merely await), graceful stop with keep-alive connections open.
// The herd binary (feature `cli`) serves the async demo (`cli` includes `async`).
#![cfg(feature = "cli")]

mod common;

use common::{Herd, get_ok, http};
use nix::sys::signal::Signal;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

const MODES: [&str; 3] = ["shared", "signaled", "auto"];

/// A keep-alive HTTP/1.1 client connection.
struct KeepAlive {
    r: BufReader<TcpStream>,
}

impl KeepAlive {
    fn open(addr: &str) -> KeepAlive {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(common::PATIENCE)).unwrap();
        KeepAlive { r: BufReader::new(s) }
    }

    /// One GET on the connection; the status and body, or what went wrong.
    fn get(&mut self, path: &str) -> Result<(u16, String), String> {
        self.request("GET", path)
    }

    /// One request (no body) on the connection; the status and body, or what went wrong.
    fn request(&mut self, method: &str, path: &str) -> Result<(u16, String), String> {
        write!(self.r.get_mut(), "{method} {path} HTTP/1.1\r\nHost: herd\r\nContent-Length: 0\r\n\r\n")
            .map_err(|e| e.to_string())?;
        let mut line = String::new();
        if self.r.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            return Err("closed".into());
        }
        let status =
            line.split(' ').nth(1).and_then(|c| c.parse().ok()).ok_or(format!("bad status {line:?}"))?;
        let mut len = 0;
        loop {
            let mut h = String::new();
            self.r.read_line(&mut h).map_err(|e| e.to_string())?;
            if h == "\r\n" || h.is_empty() {
                break;
            }
            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; len];
        self.r.read_exact(&mut body).map_err(|e| e.to_string())?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }

    /// Whether the server closed the connection (end of file).
    fn closed_by_server(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.r.get_mut().read(&mut b), Ok(0))
    }
}

#[test]
fn async_workers_lose_no_wakeup_in_any_mode() {
    for mode in MODES {
        let h = Herd::start(&["--workers", "3", "--worker-class", "async", "--accept-mode", mode]);
        h.wait_ready(3);
        // 24 keep-alive clients of 20 requests each, plus 100 one-shot connections.
        let clients: Vec<_> = (0..24)
            .map(|_| {
                let addr = h.addr.clone();
                std::thread::spawn(move || {
                    let mut c = KeepAlive::open(&addr);
                    (0..20).filter(|_| c.get("/").is_ok_and(|(s, b)| s == 200 && b == "hello\n")).count()
                })
            })
            .collect();
        for _ in 0..100 {
            assert_eq!(get_ok(&h.addr, "/"), "hello", "{mode}");
        }
        let ok: usize = clients.into_iter().map(|c| c.join().unwrap()).sum();
        assert_eq!(ok, 24 * 20, "{mode}");
    }
}

#[test]
fn async_recycling_counts_requests_across_connections() {
    let h = Herd::start(&[
        "--workers",
        "3",
        "--worker-class",
        "async",
        "--worker-connections",
        "4",
        "--max-requests",
        "50",
        "--max-requests-jitter",
        "10",
    ]);
    h.wait_ready(3);
    let (served, failures) = common::pids_answering(&h.addr, 4, 1000);
    assert_eq!(failures, 0);
    assert_eq!(served.values().sum::<u32>(), 1000);
    // Budget 50..=60, plus at most connections - 1 requests already started when it was spent.
    let max = *served.values().max().unwrap();
    assert!(max <= 63, "a worker served {max}: {served:?}");
    assert!(served.len() >= 16, "recycling happened: {served:?}");
    h.wait_count(3);
}

#[test]
fn a_blocked_event_loop_is_killed_but_an_awaiting_request_is_not() {
    // Signaled: the arbiter hands the second connection to the other worker (the one at the head
    // of its line), so the blocked loop and the awaiting request are on different workers.
    let h = Herd::start(&[
        "--workers",
        "2",
        "--worker-class",
        "async",
        "--timeout",
        "1",
        "--accept-mode",
        "signaled",
    ]);
    let before = h.wait_ready(2);
    // Awaiting 2.5 s, past the 1 s timeout: heartbeats keep flowing, the request completes.
    let addr = h.addr.clone();
    let slow = std::thread::spawn(move || http(&addr, "GET", "/sleep?ms=2500"));
    // Blocking the event loop for 20 s: no heartbeat, the worker is killed.
    assert!(http(&h.addr, "GET", "/block?ms=20000").is_err(), "the blocked worker was not killed");
    h.wait_log("timeout kill", |l| l.iter().any(|l| l.contains("worker timeout")));
    let (status, body) = slow.join().unwrap().expect("the awaiting request completes");
    assert_eq!((status, body.trim()), (200, "slept 2500"));
    let after = h.wait_workers("replacement", |w| w.len() == 2 && w != &before);
    assert_eq!(after.intersection(&before).count(), 1, "only the blocked worker died");
}

#[test]
fn term_drains_keep_alive_connections_and_finishes_requests_in_flight() {
    let mut h = Herd::start(&["--workers", "2", "--worker-class", "async", "--graceful-timeout", "30"]);
    h.wait_ready(2);
    let mut idle = KeepAlive::open(&h.addr);
    assert_eq!(idle.get("/").unwrap(), (200, "hello\n".into()));
    let addr = h.addr.clone();
    let busy = std::thread::spawn(move || {
        let mut c = KeepAlive::open(&addr);
        c.get("/sleep?ms=800")
    });
    h.wait_log("the slow request is being served", |l| {
        l.iter().filter(|l| l.contains(" recv ") && l.contains("ACCEPTED")).count() >= 2
    });
    h.signal(Signal::SIGTERM);
    assert_eq!(busy.join().unwrap().unwrap(), (200, "slept 800\n".into()), "in flight, finished");
    assert!(idle.closed_by_server(), "an idle keep-alive connection is closed by the drain");
    assert_eq!(h.wait_exit().code(), Some(0));
}

/// `--keep-alive` counts from the end of a connection's last request: a connection whose
/// requests come more often than that stays open however long it lives, a request longer than it
/// is not cut short, and once idle the connection is closed when the time is up, not before and
/// not much after. (The worker's timer is moved only when it fires, not at every request.)
#[test]
fn keep_alive_counts_from_the_end_of_the_last_request() {
    use std::time::{Duration, Instant};
    let h = Herd::start(&["--workers", "1", "--worker-class", "async", "--keep-alive", "1"]);
    h.wait_ready(1);
    let keep_alive = Duration::from_secs(1);
    let mut c = KeepAlive::open(&h.addr);
    // Requests 0.6 s apart for 2.4 s: the timer armed at the first fires in a pause, with the
    // connection idle for less than the keep-alive time.
    for i in 0..4 {
        assert_eq!(c.get("/").map(|(s, _)| s), Ok(200), "request {i}, 0.6 s after the one before");
        std::thread::sleep(Duration::from_millis(600));
    }
    // Longer than the keep-alive time: in flight when the timer fires.
    let before = Instant::now();
    assert_eq!(c.get("/sleep?ms=1500"), Ok((200, "slept 1500\n".into())));
    assert!(c.closed_by_server(), "idle past the keep-alive time, closed");
    // The request ended at least 1.5 s after `before`; the close comes a keep-alive time later.
    let took = before.elapsed();
    let earliest = Duration::from_millis(1500) + keep_alive;
    assert!(took >= earliest, "closed {took:?} after the last request began: before {earliest:?}");
    assert!(took <= earliest + Duration::from_secs(1), "closed {took:?} after the last request began");
}

/// A request under way when the keep-alive timer fires disarms it until the request ends: with
/// a keep-alive time of a millisecond, a one-second request leaves its worker asleep (re-armed a
/// keep-alive time on each time instead, the timer would wake the worker a thousand times over
/// that second), and the connection still closes after it.
#[test]
fn a_request_longer_than_the_keep_alive_time_leaves_its_worker_asleep() {
    let h = Herd::start(&["--workers", "1", "--worker-class", "async", "--keep-alive", "0.001"]);
    let worker = *h.wait_ready(1).iter().next().unwrap();
    let mut c = KeepAlive::open(&h.addr);
    let before = common::voluntary_switches(worker);
    assert_eq!(c.get("/sleep?ms=1000"), Ok((200, "slept 1000\n".into())));
    let woke = common::voluntary_switches(worker) - before;
    // The request's own wakeups (its head, its sleep's end, the answer written) are a few.
    assert!(woke <= 50, "the worker woke {woke} times over a one-second request");
    assert!(c.closed_by_server(), "closed once idle");
}

/// A panicking async handler (issue #23): the client gets a 500, the worker's connection slot is
/// given back, and the worker serves on. With one worker of two connection slots, more panics
/// than slots, then ordinary requests: each is answered by the same worker (a leaked slot per
/// panic would leave every later request hanging, with heartbeats going on, never replaced).
#[test]
fn a_panicking_handler_answers_500_and_frees_its_slot() {
    let h = Herd::start(&["--worker-class", "async", "--workers", "1", "--worker-connections", "2"]);
    let pid = h.wait_ready(1);
    for i in 0..5 {
        assert_eq!(http(&h.addr, "GET", "/panic").map(|(s, _)| s), Ok(500), "panic {i}");
    }
    // Keep-alive connections too: a panic closes only its own connection.
    let mut kept = KeepAlive::open(&h.addr);
    assert_eq!(kept.get("/").map(|(s, _)| s), Ok(200));
    for _ in 0..3 {
        assert_eq!(get_ok(&h.addr, "/"), "hello");
    }
    assert_eq!(kept.get("/").map(|(s, _)| s), Ok(200), "the kept-alive connection serves on");
    assert_eq!(h.workers(), pid, "the same worker, never replaced");
    assert_eq!(h.log_text().matches("the request handler panicked").count(), 5);
}

/// Async handlers see the client's address (issue #23): the demo's `GET /peer` answers it, and it
/// is the address of the very socket the client connected from, on a fresh and on a kept-alive
/// connection.
#[test]
fn an_async_handler_sees_the_clients_address() {
    let h = Herd::start(&["--worker-class", "async", "--workers", "1"]);
    h.wait_ready(1);
    let mut kept = KeepAlive::open(&h.addr);
    let mine = kept.r.get_ref().local_addr().unwrap().to_string();
    for _ in 0..2 {
        assert_eq!(kept.get("/peer").map(|(s, b)| (s, b.trim().to_owned())), Ok((200, mine.clone())));
    }
    let mut other = KeepAlive::open(&h.addr);
    let theirs = other.r.get_ref().local_addr().unwrap().to_string();
    assert_ne!(theirs, mine);
    assert_eq!(other.get("/peer").map(|(_, b)| b.trim().to_owned()), Ok(theirs));
}

/// Async registry reloads (issue #23): after `POST /registry/bump` returns version V, every later
/// request on every async worker runs on a registry object *loaded* at V or later (the demo's
/// `GET /registry` answers the version its registry object was loaded at, not merely the
/// sequences seen). Each worker holds one kept-alive connection opened before the bump
/// (`--worker-connections 1`: three connections reach three workers), so the check before
/// every request is what must catch the bump: no accept happens after it.
#[test]
fn after_a_bump_every_async_worker_serves_a_reloaded_registry() {
    for mode in MODES {
        let h = Herd::start(&[
            "--worker-class",
            "async",
            "--workers",
            "3",
            "--worker-connections",
            "1",
            "--accept-mode",
            mode,
        ]);
        h.wait_ready(3);
        let mut kept: Vec<(KeepAlive, String)> = (0..3)
            .map(|_| {
                let mut c = KeepAlive::open(&h.addr);
                let pid = c.get("/pid").unwrap().1;
                (c, pid)
            })
            .collect();
        let pids: std::collections::BTreeSet<_> = kept.iter().map(|(_, p)| p.clone()).collect();
        assert_eq!(pids.len(), 3, "{mode}: one connection per worker");
        let version = |c: &mut KeepAlive| -> u64 {
            let (status, body) = c.get("/registry").unwrap();
            assert_eq!(status, 200, "{mode}: {body}");
            body.trim().parse().unwrap()
        };
        let before: Vec<u64> = kept.iter_mut().map(|(c, _)| version(c)).collect();
        for round in 0..3 {
            // Each worker in turn bumps; then every worker, the bumping one too, has reloaded.
            let (status, body) = kept[round].0.request("POST", "/registry/bump").unwrap();
            assert_eq!(status, 200, "{mode}: {body}");
            let bumped: u64 = body.trim().parse().unwrap();
            assert!(before.iter().all(|&b| bumped > b), "{mode}: bump to {bumped} from {before:?}");
            for (c, pid) in kept.iter_mut() {
                let v = version(c);
                assert!(
                    v >= bumped,
                    "{mode}: worker {pid} served on a registry loaded at {v} after the bump to {bumped}"
                );
                assert_eq!(c.get("/pid").unwrap().1, *pid, "{mode}: the same worker, on the same connection");
            }
        }
    }
}
