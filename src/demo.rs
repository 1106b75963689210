//! The demo application `herd serve` runs: a small HTTP/1.1 app (parsed with httparse) whose
//! routes exercise the server: `GET /`, `GET /sleep?ms=N`, `GET /pid`, `GET /registry`,
//! `POST /registry/bump`, `GET /crash`, and, with the test switch on, `GET /misbehave?kind=K`.
//!
//! One request per connection (`Connection: close`), as a sync worker serves it.

use crate::listen::Connection;
use crate::server::{App, Context};
use crate::store::StoreError;
use herd_protocol::registry::Sequences;
use std::io::{Read, Write};
use std::time::Duration;

/// Largest request head read.
const MAX_HEAD: usize = 16 * 1024;
/// Longest `/sleep`.
const MAX_SLEEP_MS: u64 = 600_000;

/// The demo application.
#[derive(Clone, Debug, Default)]
pub struct Demo {
    /// Enables `GET /misbehave?kind=garbage|overlong|bye` (tests only): after answering, the
    /// worker writes that to its arbiter.
    pub misbehave: bool,
}

/// The demo's registry: which registry version this process has loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DemoRegistry {
    /// The registry sequence it was loaded at.
    pub version: u64,
}

impl App for Demo {
    type Registry = DemoRegistry;

    fn load(&self, as_of: Sequences) -> DemoRegistry {
        DemoRegistry { version: as_of.registry }
    }

    fn handle(&mut self, ctx: &mut Context<'_, DemoRegistry>, mut conn: Connection) {
        let _ = conn.set_timeouts(Some(Duration::from_secs(30)));
        let mut buf = vec![0u8; MAX_HEAD];
        let mut len = 0;
        let (method, path) = loop {
            let n = match conn.read(&mut buf[len..]) {
                Ok(0) => return,
                Ok(n) => n,
                // A socket with a timeout is not restarted after a signal (TERM): read again.
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            };
            len += n;
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(&buf[..len]) {
                Ok(httparse::Status::Complete(_)) => {
                    break (req.method.unwrap_or("").to_owned(), req.path.unwrap_or("").to_owned());
                }
                Ok(httparse::Status::Partial) if len < buf.len() => {}
                Ok(httparse::Status::Partial) => return respond(&mut conn, 431, "request head too large\n"),
                Err(e) => return respond(&mut conn, 400, &format!("bad request: {e}\n")),
            }
        };
        let (route, query) = path.split_once('?').unwrap_or((&path, ""));
        match (method.as_str(), route) {
            ("GET", "/") => respond(&mut conn, 200, "hello\n"),
            ("GET", "/pid") => respond(&mut conn, 200, &format!("{}\n", std::process::id())),
            ("GET", "/registry") => respond(&mut conn, 200, &format!("{}\n", ctx.registry().version)),
            ("POST", "/registry/bump") => match ctx.change_registry(|r| r.version += 1) {
                Ok(after) => {
                    ctx.registry().version = after.registry;
                    respond(&mut conn, 200, &format!("{}\n", after.registry))
                }
                Err(e) => respond(&mut conn, 503, &format!("{e}\n")),
            },
            ("GET", "/sleep") => match param(query, "ms").and_then(|v| v.parse::<u64>().ok()) {
                Some(ms) if ms <= MAX_SLEEP_MS => {
                    std::thread::sleep(Duration::from_millis(ms));
                    respond(&mut conn, 200, &format!("slept {ms}\n"))
                }
                _ => respond(&mut conn, 400, &format!("ms must be a number from 0 to {MAX_SLEEP_MS}\n")),
            },
            ("GET", "/crash") => std::process::abort(),
            ("GET", "/misbehave") if self.misbehave => {
                let bytes: Vec<u8> = match param(query, "kind") {
                    Some("garbage") => b"\x00\xffnot a frame\n".to_vec(),
                    Some("overlong") => [vec![b'A'; 100], vec![b'\n']].concat(),
                    Some("bye") => b"BYE:nonsense\n".to_vec(),
                    _ => return respond(&mut conn, 400, "kind must be garbage, overlong or bye\n"),
                };
                respond(&mut conn, 200, &format!("{}\n", std::process::id()));
                let _ = ctx.send_raw(&bytes);
            }
            (_, "/" | "/pid" | "/registry" | "/registry/bump" | "/sleep" | "/crash") => {
                respond(&mut conn, 405, "method not allowed\n")
            }
            _ => respond(&mut conn, 404, "not found\n"),
        }
    }

    fn unavailable(&mut self, mut conn: Connection, error: &StoreError) {
        respond(&mut conn, 503, &format!("{error}\n"));
    }
}

fn param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query.split('&').find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

fn respond(conn: &mut Connection, status: u16, body: &str) {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all([head.as_bytes(), body.as_bytes()].concat().as_slice());
    let _ = conn.flush();
}
