//! Slow and oversized clients against the real binary (docs/operations.md, "Slow clients"):
//! `--keep-alive`, `--header-timeout` and gunicorn's `--limit-request-*` on both built-in HTTP
//! layers. Every bound is checked from both sides: a slow connection is closed within its limit
//! and not before it; a head exactly at a size limit is served, one byte more is refused.
// Runs the herd binary, built with the feature `cli`.
#![cfg(feature = "cli")]

mod common;

use common::{Herd, http};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// Raises this process's descriptor limit (its servers inherit it): the test holds 1,000 sockets.
fn enough_descriptors(n: u64) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if soft < n {
        assert!(hard >= n, "this test needs {n} descriptors; the hard limit is {hard}");
        setrlimit(Resource::RLIMIT_NOFILE, n, hard).unwrap();
    }
}

/// One raw request; the status line's code (None: closed without an answer).
fn raw_status(addr: &str, request: &[u8]) -> Option<u16> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(common::PATIENCE)).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    text.split(' ').nth(1).and_then(|c| c.parse().ok())
}

/// A request whose line is exactly `line` bytes long and that has `fields` fields of exactly
/// `field` bytes each (`name: value`).
fn request(line: usize, fields: usize, field: usize) -> Vec<u8> {
    let fixed = "GET /".len() + " HTTP/1.1".len();
    let mut r = format!("GET /{} HTTP/1.1\r\n", "a".repeat(line - fixed)).into_bytes();
    for i in 0..fields {
        let name = format!("X-F{i:05}");
        r.extend_from_slice(format!("{name}: {}\r\n", "v".repeat(field - name.len() - 2)).as_bytes());
    }
    r.extend_from_slice(b"Connection: close\r\n\r\n");
    r
}

/// The size limits on one server, from both sides: at the limit served (404: the demo has no
/// such route, but the head was read), one over refused with the documented status.
fn check_size_limits(addr: &str) {
    // The server's limits: line 100, 6 fields (one is `Connection: close`), fields of 40 bytes.
    assert_eq!(raw_status(addr, &request(100, 5, 40)), Some(404), "a head exactly at every limit");
    assert_eq!(raw_status(addr, &request(101, 0, 40)), Some(414), "a request line one byte over");
    assert_eq!(raw_status(addr, &request(50, 6, 20)), Some(431), "one field too many");
    assert_eq!(raw_status(addr, &request(50, 1, 41)), Some(431), "a field one byte over");
}

const LIMITS: [&str; 6] =
    ["--limit-request-line", "100", "--limit-request-fields", "6", "--limit-request-field_size", "40"];

#[test]
fn size_limits_hold_on_both_http_layers() {
    for class in ["sync", "async"] {
        let mut args = vec!["--worker-class", class, "--workers", "1"];
        args.extend(LIMITS);
        let h = Herd::start(&args);
        check_size_limits(&h.addr);
        // The worker survived every refusal and serves on.
        assert_eq!(h.get("/").unwrap().0, 200, "{class}");
    }
}

/// gunicorn's default field limit (100) on both layers, from both sides: the async worker leaves
/// it to hyper's own (the same 100), which must refuse the 101st field as a limit set does.
#[test]
fn the_default_field_limit_holds_on_both_http_layers() {
    for class in ["sync", "async"] {
        let h = Herd::start(&["--worker-class", class, "--workers", "1"]);
        // `Connection: close` is the last of them.
        assert_eq!(raw_status(&h.addr, &request(50, 99, 20)), Some(404), "{class}: 100 fields");
        assert_eq!(raw_status(&h.addr, &request(50, 100, 20)), Some(431), "{class}: 101 fields");
        assert_eq!(h.get("/").unwrap().0, 200, "{class}");
    }
}

/// A slow connection: how it misbehaves, when its clock started, and when the server must have
/// closed it.
struct Slow {
    stream: TcpStream,
    kind: &'static str,
    since: Instant,
    limit: Duration,
    closed: Option<Instant>,
}

/// Opens `n` connections of each kind: silent (connects, sends nothing), half-sent (part of a
/// request head), and kept alive (one request answered, then idle).
fn open_slow(addr: &str, n: usize, header_timeout: Duration, keep_alive: Duration) -> Vec<Slow> {
    let mut slow = Vec::new();
    for i in 0..3 * n {
        // Taken before connecting: a worker may accept (and start its clock) before connect()
        // returns here, but never before the connection exists.
        let since = Instant::now();
        let mut stream = TcpStream::connect(addr).unwrap();
        let (kind, limit) = match i % 3 {
            0 => ("silent", header_timeout),
            1 => {
                stream.write_all(b"GET / HTTP/1.1\r\nHost: herd\r\nX-Half: ").unwrap();
                ("half-sent", header_timeout)
            }
            _ => {
                // Counted from before the request: the server's idle time starts after it.
                stream.write_all(b"GET / HTTP/1.1\r\nHost: herd\r\n\r\n").unwrap();
                ("kept alive", keep_alive)
            }
        };
        slow.push(Slow { stream, kind, since, limit, closed: None });
    }
    // The kept-alive ones read their answer (and nothing more).
    for s in slow.iter_mut().filter(|s| s.kind == "kept alive") {
        s.stream.set_read_timeout(Some(common::PATIENCE)).unwrap();
        let mut buf = [0u8; 512];
        let n = s.stream.read(&mut buf).unwrap();
        let head = String::from_utf8_lossy(&buf[..n]);
        assert!(head.starts_with("HTTP/1.1 200"), "{head:?}");
        assert!(head.ends_with("hello\n"), "one read holds the whole answer: {head:?}");
    }
    slow
}

/// Waits (poll(2) on every socket) until the server closed each one; records when.
fn wait_closed(slow: &mut [Slow], patience: Duration) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let deadline = Instant::now() + patience;
    loop {
        let open: Vec<usize> = (0..slow.len()).filter(|&i| slow[i].closed.is_none()).collect();
        if open.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "{} slow connections still open after {patience:?}", open.len());
        let mut fds: Vec<PollFd> =
            open.iter().map(|&i| PollFd::new(slow[i].stream.as_fd(), PollFlags::POLLIN)).collect();
        let ready = poll(&mut fds, PollTimeout::from(100u16)).unwrap();
        let now = Instant::now();
        if ready == 0 {
            continue;
        }
        let hits: Vec<usize> = open
            .iter()
            .zip(&fds)
            .filter(|(_, f)| f.revents().is_some_and(|r| !r.is_empty()))
            .map(|(&i, _)| i)
            .collect();
        drop(fds);
        for i in hits {
            let mut buf = [0u8; 64];
            match slow[i].stream.read(&mut buf) {
                Ok(0) | Err(_) => slow[i].closed = Some(now),
                Ok(n) => panic!("{} connection got {:?}", slow[i].kind, String::from_utf8_lossy(&buf[..n])),
            }
        }
    }
}

/// The scenario: 1,000 idle and half-sent connections against 2 async workers. Other
/// clients are served meanwhile, quickly, and every slow connection is closed within its limit,
/// and not before it.
#[test]
fn a_thousand_slow_connections_neither_starve_others_nor_outlive_their_limits() {
    enough_descriptors(4096);
    let (header_timeout, keep_alive) = (Duration::from_secs(3), Duration::from_secs(1));
    let h = Herd::start(&[
        "--worker-class",
        "async",
        "--workers",
        "2",
        "--header-timeout",
        "3",
        "--keep-alive",
        "1",
    ]);
    h.wait_ready(2);
    let mut slow = open_slow(&h.addr, 334, header_timeout, keep_alive);
    assert!(slow.len() >= 1000);
    // Meanwhile, a client making one request per connection, until the slow ones are gone.
    let addr = h.addr.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = std::sync::Arc::clone(&stop);
    let fast = std::thread::spawn(move || {
        let mut latencies = Vec::new();
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            let t = Instant::now();
            let r = http(&addr, "GET", "/");
            latencies.push(t.elapsed());
            assert_eq!(r.map(|(s, _)| s), Ok(200));
            std::thread::sleep(Duration::from_millis(2));
        }
        latencies
    });
    wait_closed(&mut slow, common::PATIENCE);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut latencies = fast.join().unwrap();
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    eprintln!("{} requests served meanwhile, p99 {p99:?}, max {:?}", latencies.len(), latencies.last());
    assert!(latencies.len() >= 100, "only {} requests served meanwhile", latencies.len());
    assert!(p99 < Duration::from_millis(50), "p99 {p99:?}");
    // Each slow connection closed within its limit (plus the slack of a loaded machine, less
    // than the gap between the two limits), and never before it.
    let slack = Duration::from_millis(1000);
    for s in &slow {
        let took = s.closed.unwrap() - s.since;
        assert!(
            took >= s.limit,
            "a {} connection closed after {took:?}, before its limit {:?}",
            s.kind,
            s.limit
        );
        assert!(
            took <= s.limit + slack,
            "a {} connection closed after {took:?} (limit {:?})",
            s.kind,
            s.limit
        );
    }
    // The workers are all still there, and their connection slots are free again.
    assert_eq!(h.workers().len(), 2);
}

/// A sync worker holds its one connection no longer than the header timeout: a silent and a
/// half-sent client each get closed within it (and not before), and the next client is served.
#[test]
fn a_sync_worker_drops_a_slow_client_at_the_header_timeout() {
    let h = Herd::start(&["--workers", "1", "--header-timeout", "1"]);
    h.wait_ready(1);
    let mut slow = Vec::new();
    for (i, kind) in ["silent", "half-sent"].into_iter().enumerate() {
        // The worker's clock starts when it takes the connection: after this (not after connect()
        // returns: a worker waiting on the listener may take it first).
        let since = Instant::now();
        let mut stream = TcpStream::connect(&h.addr).unwrap();
        if i == 1 {
            stream.write_all(b"GET / HTTP/1.1\r\nHost: herd\r\n").unwrap();
        }
        slow.push(Slow { stream, kind, since, limit: Duration::from_secs(1), closed: None });
        wait_closed(&mut slow[i..], common::PATIENCE);
    }
    for s in &slow {
        let took = s.closed.unwrap() - s.since;
        assert!(took >= s.limit && took <= s.limit + Duration::from_millis(1500), "{}: {took:?}", s.kind);
    }
    assert_eq!(h.get("/").unwrap().0, 200);
}
