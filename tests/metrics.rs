//! `--metrics-bind`: the arbiter's counters in Prometheus' text format, read by a Prometheus
//! parser after a known workload and held to `herd ctl status --json`; silent scrapers do not
//! keep it, or the server, from answering.
// Runs the herd binary, built with the feature `cli`.
#![cfg(feature = "cli")]

mod common;
use common::{Herd, get_ok, status, tempdir, wait_until};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;

/// Scrapes `addr`/metrics: every sample, by name and labels.
fn scrape(addr: &str) -> BTreeMap<String, f64> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(common::PATIENCE)).unwrap();
    write!(s, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let lines = body.lines().map(|l| Ok(l.to_owned()));
    let parsed = prometheus_parse::Scrape::parse(lines).expect("Prometheus text");
    parsed
        .samples
        .into_iter()
        .map(|s| {
            let mut labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            labels.sort();
            let v = match s.value {
                prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) => v,
                prometheus_parse::Value::Untyped(v) => v,
                other => panic!("unexpected sample {other:?}"),
            };
            (format!("{}{{{}}}", s.metric, labels.join(",")), v)
        })
        .collect()
}

fn metrics_addr(h: &Herd) -> String {
    h.wait_log("the metrics address", |l| l.iter().any(|l| l.contains("metrics on http://")));
    let lines = h.log_lines();
    let line = lines.iter().find(|l| l.contains("metrics on http://")).unwrap();
    line.split("metrics on http://").nth(1).unwrap().trim_end_matches("/metrics").to_owned()
}

#[test]
fn the_metrics_match_ctl_status_after_a_known_workload() {
    let dir = tempdir("metrics");
    let pidfile = dir.join("herd.pid");
    let pf = pidfile.to_str().unwrap();
    // Signaled: every connection is a dispatch the counters show.
    let h = Herd::start(&[
        "--workers",
        "2",
        "--accept-mode",
        "signaled",
        "--metrics-bind",
        "127.0.0.1:0",
        "--pidfile",
        pf,
    ]);
    let addr = metrics_addr(&h);
    let first = h.wait_ready(2);
    for _ in 0..10 {
        get_ok(&h.addr, "/");
    }
    h.signal(Signal::SIGTTIN);
    let three = h.wait_ready(3);
    let victim = *first.first().unwrap();
    kill(Pid::from_raw(victim), Signal::SIGKILL).unwrap();
    h.wait_ready(3);
    wait_until("the replacement counted", || status(pf)["counters"]["spawns"] == 4);
    let m = scrape(&addr);
    let st = status(pf);
    let c = &st["counters"];
    let count = |name: &str| m.get(&format!("{name}{{}}")).copied().unwrap_or(f64::NAN);
    // The workload, exactly.
    assert_eq!(count("herd_worker_spawns_total"), 4.0, "{m:?}");
    assert_eq!(count("herd_worker_deaths_total"), 1.0);
    assert_eq!(count("herd_dispatches_total"), 10.0);
    assert_eq!(m.get("herd_worker_exits_total{reason=crashed}"), Some(&1.0), "{m:?}");
    assert_eq!(m.get("herd_signals_total{signal=TTIN}"), Some(&1.0), "{m:?}");
    assert_eq!(count("herd_target_workers"), 3.0);
    let workers: f64 =
        m.iter().filter(|(k, _)| k.starts_with("herd_workers{role=http,")).map(|(_, v)| v).sum();
    assert_eq!((workers, three.len()), (3.0, 3), "{m:?}");
    // And ctl status --json, counter by counter.
    for (metric, key) in [
        ("herd_worker_spawns_total", "spawns"),
        ("herd_worker_deaths_total", "deaths"),
        ("herd_worker_timeouts_total", "timeouts"),
        ("herd_worker_recycles_total", "recycles"),
        ("herd_dispatches_total", "dispatches"),
        ("herd_protocol_errors_total", "protocol_errors"),
        ("herd_boot_failures_total", "boot_failures"),
        ("herd_in_flight_deaths_total", "in_flight_deaths"),
    ] {
        assert_eq!(Some(count(metric)), c[key].as_f64(), "{metric} vs {key}");
    }
    for (reason, n) in c["deaths_by_reason"].as_object().unwrap() {
        assert_eq!(m.get(&format!("herd_worker_exits_total{{reason={reason}}}")).copied(), n.as_f64());
    }
    for (sig, n) in c["signals"].as_object().unwrap() {
        assert_eq!(m.get(&format!("herd_signals_total{{signal={sig}}}")).copied(), n.as_f64());
    }
    for w in st["workers"].as_array().unwrap() {
        let key = format!("herd_worker_requests{{pid={},worker=w{}}}", w["pid"], w["id"]);
        assert_eq!(m.get(&key).copied(), w["requests"].as_f64(), "{key}");
    }
    let served: f64 = m.iter().filter(|(k, _)| k.starts_with("herd_worker_requests{")).map(|(_, v)| v).sum();
    assert!(served >= 1.0, "the live workers' requests: {served}");
}

#[test]
fn silent_scrapers_keep_neither_the_metrics_nor_the_server_from_answering() {
    let h = Herd::start(&["--workers", "1", "--metrics-bind", "127.0.0.1:0"]);
    let addr = metrics_addr(&h);
    h.wait_ready(1);
    // More silent connections than are kept, and one that sends half a head and stops.
    let mut silent: Vec<TcpStream> = (0..40).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    let mut half = TcpStream::connect(&addr).unwrap();
    half.write_all(b"GET /metr").unwrap();
    silent.push(half);
    // The server serves, and a scrape is answered, while they hang on.
    assert_eq!(get_ok(&h.addr, "/"), "hello");
    let m = scrape(&addr);
    assert_eq!(m.get("herd_target_workers{}"), Some(&1.0));
    // Anything but GET /metrics is a 404.
    let mut s = TcpStream::connect(&addr).unwrap();
    write!(s, "GET /other HTTP/1.1\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 404"), "{text}");
    drop(silent);
}

#[test]
fn a_usr2_upgrade_keeps_the_metrics_address() {
    // A fixed port, as an operator's scrape configuration has it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let dir = tempdir("metrics-upgrade");
    let pidfile = dir.join("herd.pid");
    let pf = pidfile.to_str().unwrap().to_owned();
    let mut old = Herd::start(&["--workers", "1", "--metrics-bind", &addr, "--pidfile", &pf]);
    old.wait_ready(1);
    old.signal(Signal::SIGUSR2);
    let read = || std::fs::read_to_string(&pidfile).ok().and_then(|s| s.trim().parse::<i32>().ok());
    wait_until("the new arbiter writes the pidfile", || read().is_some_and(|n| n != old.pid));
    let new = read().unwrap();
    old.signal(Signal::SIGTERM);
    assert_eq!(old.wait_exit().code(), Some(0));
    // The new arbiter answers on the same address.
    wait_until("the new arbiter's metrics", || {
        std::panic::catch_unwind(|| scrape(&addr)).is_ok_and(|m| m.get("herd_target_workers{}") == Some(&1.0))
    });
    let st = status(&pf);
    assert_eq!(st["pid"].as_i64(), Some(i64::from(new)));
    let _ = kill(Pid::from_raw(new), Signal::SIGTERM);
    wait_until("the new arbiter gone", || !common::exists(new));
}
