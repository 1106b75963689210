//! The demo application `herd serve` runs: a small HTTP/1.1 app (parsed with httparse) whose
//! routes exercise the server: `GET /`, `GET /sleep?ms=N`, `GET /pid`, `GET /registry`,
//! `POST /registry/bump`, `GET /crash`, `GET /alloc?mb=N[&keep=1]` (allocate and touch N MiB;
//! keep it resident), `GET /spin?ms=N` (burn CPU), and, with the test switch on, `GET /misbehave?kind=K`.
//!
//! One request per connection (`Connection: close`), as a sync worker serves it.

use crate::app::{App, Context};
use crate::http::{HeadError, HttpLimits};
use crate::os::listen::Connection;
use crate::store::StoreError;
use herd_protocol::registry::Sequences;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// How long an answer may take to write (a client that stops reading).
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest `/sleep`.
const MAX_SLEEP_MS: u64 = 600_000;

/// The demo application.
#[derive(Clone, Debug, Default)]
pub struct Demo {
    /// Memory kept by `/alloc?keep=1`, so that it stays resident after the request.
    pub retained: Vec<Vec<u8>>,
    /// Enables `GET /misbehave?kind=garbage|overlong|bye|flood|forged` (tests only): after
    /// answering, the worker writes that to its arbiter.
    pub misbehave: bool,
    /// Cron jobs append `start`/`end` lines here (tests): `start NAME TOKEN SLOT PID NANOS` and
    /// `end NAME TOKEN SLOT PID NANOS`, nanoseconds of the wall clock.
    pub cron_log: Option<std::path::PathBuf>,
    /// How long a cron job takes.
    pub cron_sleep: Duration,
    /// What a client may make a worker wait for and hold (`--header-timeout`,
    /// `--limit-request-*`).
    pub http: HttpLimits,
}

/// The demo's registry: which registry version this process has loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DemoRegistry {
    /// The registry sequence it was loaded at.
    pub version: u64,
}

/// Loads the async demo's registry ([`demo_async`]): the registry sequence it was loaded at.
#[cfg(feature = "async")]
#[derive(Clone, Copy, Debug, Default)]
pub struct DemoLoader;

#[cfg(feature = "async")]
impl crate::app::RegistryLoader for DemoLoader {
    type Registry = DemoRegistry;
    fn load(&self, as_of: Sequences) -> DemoRegistry {
        DemoRegistry { version: as_of.registry }
    }
}

impl App for Demo {
    type Registry = DemoRegistry;

    fn run_job(&mut self, job: &crate::cron::JobRun<'_>) -> Result<(), String> {
        let line = |what: &str| {
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            format!(
                "{what} {} {} {} {} {}\n",
                job.name,
                job.token,
                job.slot,
                std::process::id(),
                t.as_nanos()
            )
        };
        let log = |what: &str| -> Result<(), String> {
            let Some(path) = &self.cron_log else { return Ok(()) };
            // One write per line with O_APPEND: lines from several processes never interleave.
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            f.write_all(line(what).as_bytes()).map_err(|e| format!("{}: {e}", path.display()))
        };
        log("start")?;
        std::thread::sleep(self.cron_sleep);
        log("end")
    }

    fn load(&self, as_of: Sequences) -> DemoRegistry {
        DemoRegistry { version: as_of.registry }
    }

    fn handle(&mut self, ctx: &mut Context<'_, DemoRegistry>, mut conn: Connection) {
        let (started, clock) = (std::time::SystemTime::now(), Instant::now());
        let req = match read_head(&mut conn, &self.http, ctx.access_log_on()) {
            Head::Request(r) => r,
            Head::Closed => return,
            Head::Over(e) => {
                respond(&mut conn, e.status(), &format!("{e}\n"));
                return;
            }
            Head::Bad(e) => {
                respond(&mut conn, 400, &format!("bad request: {e}\n"));
                return;
            }
        };
        let remote = if ctx.access_log_on() { conn.peer_addr() } else { None };
        // The connection is answered and closed before its line is written.
        let (status, bytes) = self.route(ctx, conn, &req);
        if ctx.access_log_on() {
            let headers: Vec<(&str, &str)> =
                req.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            ctx.log_access(&crate::access::Entry {
                remote,
                method: &req.method,
                target: &req.path,
                version: req.version,
                status,
                bytes,
                started,
                took: clock.elapsed(),
                headers: &headers,
            });
        }
    }

    fn unavailable(&mut self, mut conn: Connection, error: &StoreError) {
        // Read the request first: closing with it unread would reset the connection.
        if let Head::Request(_) = read_head(&mut conn, &self.http, false) {
            respond(&mut conn, 503, &format!("{error}\n"));
        }
    }
}

impl Demo {
    /// Answers one request by its route; the status and body length answered.
    fn route(
        &mut self,
        ctx: &mut Context<'_, DemoRegistry>,
        mut conn: Connection,
        req: &Request,
    ) -> (u16, u64) {
        let (route, query) = req.path.split_once('?').unwrap_or((&req.path, ""));
        match (req.method.as_str(), route) {
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
                    tracing::debug!(ms, "demo: sleeping");
                    std::thread::sleep(Duration::from_millis(ms));
                    respond(&mut conn, 200, &format!("slept {ms}\n"))
                }
                _ => respond(&mut conn, 400, &format!("ms must be a number from 0 to {MAX_SLEEP_MS}\n")),
            },
            ("GET", "/crash") => std::process::abort(),
            ("GET", "/alloc") => match param(query, "mb").and_then(|v| v.parse::<usize>().ok()) {
                Some(mb) if mb <= 1 << 16 => {
                    // Touch every page so that it is resident.
                    let block = vec![1u8; mb << 20];
                    let sum: u64 = block.iter().step_by(4096).map(|&b| u64::from(b)).sum();
                    if param(query, "keep") == Some("1") {
                        self.retained.push(block);
                    }
                    respond(
                        &mut conn,
                        200,
                        &format!("{} allocated {mb} MiB ({sum} pages)\n", std::process::id()),
                    )
                }
                _ => respond(&mut conn, 400, "mb must be a number of MiB\n"),
            },
            ("GET", "/spin") => match param(query, "ms").and_then(|v| v.parse::<u64>().ok()) {
                Some(ms) if ms <= MAX_SLEEP_MS => {
                    let until = std::time::Instant::now() + Duration::from_millis(ms);
                    let mut x = 0u64;
                    while std::time::Instant::now() < until {
                        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                    }
                    respond(&mut conn, 200, &format!("spun {ms}\n"))
                }
                _ => respond(&mut conn, 400, &format!("ms must be a number from 0 to {MAX_SLEEP_MS}\n")),
            },
            ("GET", "/misbehave") if self.misbehave => {
                let bytes: Vec<u8> = match param(query, "kind") {
                    Some("garbage") => b"\x00\xffnot a frame\n".to_vec(),
                    Some("overlong") => [vec![b'A'; 100], vec![b'\n']].concat(),
                    Some("bye") => b"BYE:nonsense\n".to_vec(),
                    // Legal frames, far too many: 16 MiB of heartbeats.
                    Some("flood") => b"ALIVE:1\n".repeat(2 << 20),
                    // "I want work" while serving; the worker's own ACCEPT after this request
                    // then comes from a worker the arbiter already counts as idle.
                    Some("forged") => b"ACCEPT\n".to_vec(),
                    _ => {
                        return respond(
                            &mut conn,
                            400,
                            "kind must be garbage, overlong, bye, flood or forged\n",
                        );
                    }
                };
                let answer = respond(&mut conn, 200, &format!("{}\n", std::process::id()));
                drop(conn);
                let _ = ctx.send_raw(&bytes);
                answer
            }
            (_, "/" | "/pid" | "/registry" | "/registry/bump" | "/sleep" | "/crash" | "/alloc" | "/spin") => {
                respond(&mut conn, 405, "method not allowed\n")
            }
            _ => respond(&mut conn, 404, "not found\n"),
        }
    }
}

/// A request head, as far as the demo and the access log need it.
struct Request {
    method: String,
    path: String,
    version: &'static str,
    /// Only with an access log (its `{name}i` atoms).
    headers: Vec<(String, String)>,
}

enum Head {
    Request(Request),
    Closed,
    Over(HeadError),
    Bad(httparse::Error),
}

/// Reads one request head (the demo's requests have no body worth reading) within `limits`: the
/// whole head within `header_timeout` of the call, each part within its size limit.
fn read_head(conn: &mut Connection, limits: &HttpLimits, keep_headers: bool) -> Head {
    let deadline = Instant::now() + limits.header_timeout;
    let field_limit = limits.field_size_limit();
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    // Answers are written under the write timeout (a client that stops reading); each read of
    // the head under what is left of the header timeout. The head is the only thing read.
    if conn.set_write_timeout(Some(WRITE_TIMEOUT)).is_err() {
        return Head::Closed;
    }
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || conn.set_read_timeout(Some(left)).is_err() {
            break Head::Closed;
        }
        let n = match conn.read(&mut chunk) {
            Ok(0) => break Head::Closed,
            Ok(n) => n,
            // A socket with a timeout is not restarted after a signal (TERM): read again.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // Closed, reset, or the header timeout.
            Err(_) => break Head::Closed,
        };
        buf.extend_from_slice(&chunk[..n]);
        // The request line, complete or not, within its limit.
        let end = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
        let line = buf[..end].strip_suffix(b"\r").map_or(end, <[u8]>::len);
        if let Err(e) = limits.check_line(line) {
            break Head::Over(e);
        }
        let mut headers = vec![httparse::EMPTY_HEADER; limits.fields_limit()];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => {
                if let Err(e) = limits.check_fields(req.headers.iter().map(|h| (h.name.len(), h.value.len())))
                {
                    break Head::Over(e);
                }
                let headers = if keep_headers {
                    let value = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
                    req.headers.iter().map(|h| (h.name.to_owned(), value(h.value))).collect()
                } else {
                    Vec::new()
                };
                break Head::Request(Request {
                    method: req.method.unwrap_or("").to_owned(),
                    path: req.path.unwrap_or("").to_owned(),
                    version: if req.version == Some(0) { "HTTP/1.0" } else { "HTTP/1.1" },
                    headers,
                });
            }
            Ok(httparse::Status::Partial) => {
                // The field being received, not yet ended by its CRLF, within its limit.
                let partial = buf.len() - buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                if end < buf.len() && partial > field_limit + 1 {
                    break Head::Over(HeadError::FieldTooLong { limit: field_limit });
                }
            }
            Err(httparse::Error::TooManyHeaders) => {
                break Head::Over(HeadError::TooManyFields { limit: limits.fields_limit() });
            }
            Err(e) => break Head::Bad(e),
        }
    }
}

fn param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query.split('&').find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

/// Answers `status` with `body`; the status and the body's length.
fn respond(conn: &mut Connection, status: u16, body: &str) -> (u16, u64) {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        414 => "URI Too Long",
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
    (status, body.len() as u64)
}

/// The demo application for async workers (`herd serve --worker-class async`): the same routes,
/// HTTP/1.1 with keep-alive; `/sleep` awaits (the worker keeps serving others), and
/// `GET /block?ms=N` blocks the worker's event loop (its heartbeats stop: past `--timeout` the
/// arbiter kills it), `GET /peer` answers the client's address, and `GET /panic` panics in the handler (the client gets a 500 and the
/// worker serves on).
#[cfg(feature = "async")]
pub async fn demo_async(
    req: hyper::Request<hyper::body::Incoming>,
    ctx: crate::HttpContext<DemoRegistry>,
) -> hyper::Response<http_body_util::Full<bytes::Bytes>> {
    let reply = |status: u16, body: String| {
        let mut r = hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from(body)));
        *r.status_mut() =
            hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
        r
    };
    let query = req.uri().query().unwrap_or("").to_owned();
    let ms = || param(&query, "ms").and_then(|v| v.parse::<u64>().ok()).filter(|&ms| ms <= MAX_SLEEP_MS);
    match (req.method().as_str(), req.uri().path()) {
        ("GET", "/") => reply(200, "hello\n".into()),
        ("GET", "/pid") => reply(200, format!("{}\n", std::process::id())),
        ("GET", "/peer") => reply(200, ctx.peer_addr().map_or("unix\n".into(), |a| format!("{a}\n"))),
        // The version the registry object serving this request was loaded at.
        ("GET", "/registry") => reply(200, format!("{}\n", ctx.registry().version)),
        ("POST", "/registry/bump") => match ctx.bump_registry().await {
            Ok(after) => reply(200, format!("{}\n", after.registry)),
            Err(e) => reply(503, format!("{e}\n")),
        },
        ("GET", "/sleep") => match ms() {
            Some(ms) => {
                tracing::debug!(ms, "demo: sleeping");
                tokio::time::sleep(Duration::from_millis(ms)).await;
                reply(200, format!("slept {ms}\n"))
            }
            None => reply(400, format!("ms must be a number from 0 to {MAX_SLEEP_MS}\n")),
        },
        ("GET", "/block") => match ms() {
            Some(ms) => {
                std::thread::sleep(Duration::from_millis(ms));
                reply(200, format!("blocked {ms}\n"))
            }
            None => reply(400, format!("ms must be a number from 0 to {MAX_SLEEP_MS}\n")),
        },
        ("GET", "/crash") => std::process::abort(),
        ("GET", "/panic") => panic!("demo: GET /panic"),
        _ => reply(404, "not found\n".into()),
    }
}
