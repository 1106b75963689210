//! The operator's logs, for real: the access log (gunicorn's format, one line per request, in
//! both worker classes), the error log in a file, both reopened by USR1 after a rotation with
//! no line lost, and JSON log lines.
// Runs the herd binary, built with the feature `cli`.
#![cfg(feature = "cli")]

mod common;
use common::{Herd, PATIENCE, get_ok, tempdir, wait_until};
use nix::sys::signal::Signal;
use std::path::Path;

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_owned).collect()
}

/// `IP - - [dd/Mon/yyyy:hh:mm:ss +0000] "GET /pid?n=N HTTP/1.1" STATUS BYTES "-" "-"`: the
/// request's number, its status and its bytes; or why the line is not in the format.
fn parse_default(line: &str) -> Result<(u32, u16, u64), String> {
    let bad = || format!("not gunicorn's default format: {line:?}");
    let (ip, rest) = line.split_once(" - - [").ok_or_else(bad)?;
    ip.parse::<std::net::IpAddr>().map_err(|_| bad())?;
    let (time, rest) = rest.split_once("] \"").ok_or_else(bad)?;
    let (date, zone) = time.split_once(' ').ok_or_else(bad)?;
    let fields: Vec<&str> = date.split(['/', ':']).collect();
    if zone != "+0000" || fields.len() != 6 || fields[1].len() != 3 || fields[2].len() != 4 {
        return Err(bad());
    }
    let (request, rest) = rest.split_once("\" ").ok_or_else(bad)?;
    let n = request
        .strip_prefix("GET /pid?n=")
        .and_then(|r| r.strip_suffix(" HTTP/1.1"))
        .and_then(|n| n.parse().ok())
        .ok_or_else(bad)?;
    let mut tail = rest.split(' ');
    let status = tail.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    let bytes = tail.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    if tail.collect::<Vec<_>>() != ["\"-\"", "\"-\""] {
        return Err(bad());
    }
    Ok((n, status, bytes))
}

#[test]
fn the_access_log_has_one_line_per_request_in_gunicorns_format() {
    let dir = tempdir("access");
    for class in ["sync", "async"] {
        let log = dir.join(format!("{class}.log"));
        let h = Herd::start(&["--workers", "2", "-k", class, "--access-logfile", log.to_str().unwrap()]);
        h.wait_ready(2);
        let mut bodies = std::collections::BTreeMap::new();
        for n in 0..20u32 {
            bodies.insert(n, get_ok(&h.addr, &format!("/pid?n={n}")).len() as u64 + 1);
        }
        wait_until("20 access lines", || lines(&log).len() >= 20);
        let got: Vec<(u32, u16, u64)> =
            lines(&log).iter().map(|l| parse_default(l)).collect::<Result<_, _>>().unwrap();
        assert_eq!(got.len(), 20, "{class}: one line per request: {got:?}");
        for (n, status, bytes) in got {
            assert_eq!((status, Some(bytes)), (200, bodies.get(&n).copied()), "{class}: request {n}");
        }
        let mut seen: Vec<u32> = lines(&log).iter().map(|l| parse_default(l).unwrap().0).collect();
        seen.sort();
        assert_eq!(seen, (0..20).collect::<Vec<_>>(), "{class}");
    }
    // A format of one's own: the worker's pid, the status and the duration in microseconds.
    let log = dir.join("custom.log");
    let h = Herd::start(&[
        "--access-logfile",
        log.to_str().unwrap(),
        "--access-logformat",
        "%(p)s %(s)s %(D)s %({Host}i)s",
    ]);
    let pid = get_ok(&h.addr, "/sleep?ms=30");
    assert!(pid.starts_with("slept"));
    let worker = get_ok(&h.addr, "/pid");
    wait_until("2 access lines", || lines(&log).len() >= 2);
    let l = lines(&log);
    let first: Vec<&str> = l[0].split(' ').collect();
    assert_eq!(first[0], format!("<{worker}>"), "{l:?}");
    assert_eq!((first[1], first[3]), ("200", "herd"), "{l:?}");
    let micros: u64 = first[2].parse().unwrap();
    assert!(micros >= 30_000 && micros < PATIENCE.as_micros() as u64, "{l:?}");
}

#[test]
fn usr1_reopens_the_error_and_access_logs_after_a_rotation_losing_no_line() {
    let dir = tempdir("rotate");
    let (err, access) = (dir.join("error.log"), dir.join("access.log"));
    let h = Herd::start(&[
        "--workers",
        "2",
        "--error-logfile",
        err.to_str().unwrap(),
        "--access-logfile",
        access.to_str().unwrap(),
    ]);
    // Forked is enough: a worker blocks signals from fork until its handlers are in place.
    let workers = h.wait_count(2);
    let stderr_of = |pid: i32| std::fs::read_link(format!("/proc/{pid}/fd/2")).unwrap_or_default();
    for &p in workers.iter().chain([&h.pid]) {
        assert_eq!(stderr_of(p), err, "process {p} logs elsewhere");
    }
    for n in 0..10 {
        get_ok(&h.addr, &format!("/pid?n={n}"));
    }
    // A line is written once its connection is answered and closed, so after the client has its
    // answer: wait for all ten before rotating, or the last could rightly land in the new file.
    wait_until("the first 10 access lines", || lines(&access).len() >= 10);
    // logrotate's way: move the files, then USR1.
    let (err_old, access_old) = (dir.join("error.log.1"), dir.join("access.log.1"));
    std::fs::rename(&err, &err_old).unwrap();
    std::fs::rename(&access, &access_old).unwrap();
    h.signal(Signal::SIGUSR1);
    wait_until("every process writing to the new error log", || {
        workers.iter().chain([&h.pid]).all(|&p| stderr_of(p) == err)
    });
    assert!(lines(&err).iter().any(|l| l.contains("USR1: log files reopened")), "{:?}", lines(&err));
    for n in 10..20 {
        get_ok(&h.addr, &format!("/pid?n={n}"));
    }
    wait_until("20 access lines in all", || lines(&access_old).len() + lines(&access).len() >= 20);
    let numbers = |p: &Path| -> Vec<u32> { lines(p).iter().map(|l| parse_default(l).unwrap().0).collect() };
    let (before, after) = (numbers(&access_old), numbers(&access));
    assert_eq!(before.len() + after.len(), 20, "a line lost or doubled: {before:?} {after:?}");
    assert!(
        after.iter().all(|&n| n >= 10) && after.len() == 10,
        "the new file has the later requests: {after:?}"
    );
    assert!(lines(&err_old).iter().any(|l| l.contains("arbiter started")));
}

#[test]
fn json_log_lines_parse_as_json() {
    let h = Herd::start(&["--log-format", "json", "--workers", "2"]);
    h.wait_log("two workers spawned", |l| l.iter().filter(|l| l.contains("\"worker spawned\"")).count() >= 2);
    get_ok(&h.addr, "/");
    let all = h.log_lines();
    assert!(all.len() > 3);
    for line in &all {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
        assert!(v["timestamp"].is_string() && v["level"].is_string() && v["message"].is_string(), "{line}");
    }
    let spawned = all.iter().find(|l| l.contains("\"worker spawned\"")).unwrap();
    let v: serde_json::Value = serde_json::from_str(spawned).unwrap();
    assert!(v["pid"].as_i64().is_some_and(|p| p > 1), "fields are the event's own: {v}");
}
