//! A server that links the library, on real processes: the axum example (`examples/axum.rs`,
//! issue #23), an axum `Router` with a path parameter and JSON served by `Server::run_service`
//! with no glue; the handlers reach their `HttpContext` through an `Extension`; a panicking
//! handler answers 500 and its worker serves on; built without `from_env`, it refuses a USR2
//! upgrade.
#![cfg(all(feature = "tower", feature = "cli"))]

mod common;

use common::PATIENCE;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

/// The example's binary, built by `cargo test` next to the test binaries. Refused if it is older
/// than the newest build of the library (`cargo test --test library` alone does not rebuild
/// examples: the test would run yesterday's server).
fn example() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let path = deps.parent().unwrap().join("examples/axum");
    let again = "`cargo test` builds the examples (or: cargo build --example axum)";
    let built = std::fs::metadata(&path).and_then(|m| m.modified());
    let built = built.unwrap_or_else(|e| panic!("{}: {e}: {again}", path.display()));
    let newest_lib = std::fs::read_dir(deps)
        .unwrap()
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with("libherd-") && name.ends_with(".rlib")
        })
        .filter_map(|e| e.metadata().and_then(|m| m.modified()).ok())
        .max();
    assert!(
        newest_lib.is_none_or(|lib| built >= lib),
        "{} is older than the library: {again}",
        path.display()
    );
    path
}

/// The example serving on a free port with `workers` workers; killed (its workers too) on drop.
struct Example {
    child: Child,
    addr: String,
}

impl Example {
    fn start(workers: u32) -> Example {
        let mut child = Command::new(example())
            .args(["127.0.0.1:0", &workers.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
        let addr = first.trim().strip_prefix("herd: listening on http://").expect(&first).to_owned();
        Example { child, addr }
    }

    fn workers(&self) -> std::collections::BTreeSet<i32> {
        common::workers_of(self.child.id() as i32)
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let workers = self.workers();
        let _ = self.child.kill();
        let _ = self.child.wait();
        for w in workers {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(w), nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// One request with a JSON body (or none); the status and the body parsed as JSON (`Null` if
/// it is not JSON).
fn call(addr: &str, method: &str, path: &str, json: Option<&str>) -> (u16, serde_json::Value) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    let body = json.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: herd\r\nConnection: close\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no response: {resp:?}"));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, serde_json::from_str(body).unwrap_or(serde_json::Value::Null))
}

#[test]
fn an_axum_router_runs_on_herd_as_it_is() {
    let ex = Example::start(2);
    common::wait_until("two workers", || ex.workers().len() == 2);
    let workers = ex.workers();
    let mut seen = std::collections::BTreeSet::new();
    for name in ["ada", "grace", "edsger", "barbara"] {
        let (status, v) = call(&ex.addr, "GET", &format!("/hello/{name}"), None);
        assert_eq!(status, 200, "{v}");
        // The path parameter, and the context the handler took from the request's extensions.
        assert_eq!(v["hello"], name, "{v}");
        let pid = v["pid"].as_i64().unwrap() as i32;
        assert!(workers.contains(&pid), "answered by {pid}, not one of the workers {workers:?}");
        seen.insert(v["worker"].as_u64().unwrap());
    }
    assert!(seen.iter().all(|&w| w < 2), "worker ids {seen:?} (two workers spawned: 0 and 1)");
    let (status, v) = call(&ex.addr, "POST", "/sum", Some(r#"{"numbers":[1,2,3,-10]}"#));
    assert_eq!((status, v["sum"].as_i64()), (200, Some(-4)), "{v}");
    // axum's own rejection of a bad body reaches the client as axum answers it.
    assert_eq!(call(&ex.addr, "POST", "/sum", Some("not json")).0, 400);
    assert_eq!(call(&ex.addr, "GET", "/nowhere", None).0, 404);
}

/// Many panics in a row on one worker, then ordinary requests: each panic is a 500, every later
/// request succeeds, and the worker is never replaced (its connection slots come back).
#[test]
fn a_panicking_axum_handler_answers_500_and_the_worker_serves_on() {
    let ex = Example::start(1);
    common::wait_until("one worker", || ex.workers().len() == 1);
    let worker = ex.workers();
    for i in 0..20 {
        assert_eq!(call(&ex.addr, "GET", "/bug", None).0, 500, "panic {i}");
    }
    for i in 0..20 {
        let (status, v) = call(&ex.addr, "GET", &format!("/hello/n{i}"), None);
        assert_eq!((status, v["hello"].as_str()), (200, Some(format!("n{i}").as_str())), "{v}");
    }
    assert_eq!(ex.workers(), worker, "the same worker serves on");
}

/// The example is built without `ServerBuilder::from_env`: a USR2 upgrade is refused (a new
/// arbiter would bind the address again), so no new arbiter is started; the server serves on.
/// The TTIN sent after the USR2 is handled after it: once its worker exists, a new arbiter would
/// exist too, as one more child of the arbiter (with workers of its own).
#[test]
fn a_library_server_without_from_env_refuses_an_upgrade() {
    use nix::sys::signal::{Signal, kill};
    let ex = Example::start(1);
    common::wait_until("one worker", || ex.workers().len() == 1);
    let arbiter = nix::unistd::Pid::from_raw(ex.child.id() as i32);
    kill(arbiter, Signal::SIGUSR2).unwrap();
    kill(arbiter, Signal::SIGTTIN).unwrap();
    // A freshly forked worker carries the arbiter's name until it sets its own.
    let named_workers =
        || common::children(arbiter.as_raw()).iter().filter(|c| c.comm.starts_with("herd: worker")).count();
    common::wait_until("the TTIN's worker", || named_workers() >= 2);
    let children = common::children(arbiter.as_raw());
    assert_eq!(children.len(), 2, "one more child than the two workers: {children:?}");
    for c in &children {
        assert!(c.comm.starts_with("herd: worker"), "a child that is not a worker: {c:?}");
        assert!(common::children(c.pid).is_empty(), "{c:?} has children of its own: a new arbiter");
    }
    assert_eq!(call(&ex.addr, "GET", "/hello/after", None).0, 200);
}
