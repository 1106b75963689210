//! The control socket: exact, acknowledged commands for a running arbiter (`herd ctl`).
//!
//! Signals coalesce (ten `kill -TTIN` may arrive as one); a command on this socket never does.
//! Protocol: the client writes one line, the arbiter answers one line of JSON ([`Reply`]) and
//! closes. Lines: `status`, `incr N`, `decr N`, `reload`, `stop`, `stop fast`, `upgrade`.
//! The socket is created owner-only (mode 0600).

use herd_protocol::arbiter::{Command, MAX_WORKERS};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Longest request line.
const MAX_LINE: usize = 256;
/// Most control connections open at once.
const MAX_CONNS: usize = 16;

/// A parsed request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// Report the worker table and counters.
    Status,
    /// A command for the arbiter core.
    Command(Command),
}

/// A request line that is not understood.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// Unknown command.
    #[error("unknown command {0:?}; expected status, incr N, decr N, reload, stop, stop fast or upgrade")]
    Unknown(String),
    /// Bad count.
    #[error("{0:?} is not a count from 1 to {MAX_WORKERS}")]
    BadCount(String),
}

impl std::str::FromStr for Request {
    type Err = RequestError;
    fn from_str(line: &str) -> Result<Request, RequestError> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let count = |w: &str| {
            w.parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_WORKERS).contains(n))
                .ok_or_else(|| RequestError::BadCount(w.to_owned()))
        };
        Ok(match words.as_slice() {
            ["status"] => Request::Status,
            ["incr"] => Request::Command(Command::Incr(1)),
            ["incr", n] => Request::Command(Command::Incr(count(n)?)),
            ["decr"] => Request::Command(Command::Decr(1)),
            ["decr", n] => Request::Command(Command::Decr(count(n)?)),
            ["reload"] => Request::Command(Command::Reload),
            ["stop"] => Request::Command(Command::Stop { graceful: true }),
            ["stop", "fast"] => Request::Command(Command::Stop { graceful: false }),
            ["upgrade"] => Request::Command(Command::Upgrade),
            _ => return Err(RequestError::Unknown(line.trim().to_owned())),
        })
    }
}

/// One worker in `status`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct WorkerStatus {
    /// The arbiter's id for it.
    pub id: u64,
    /// Its pid.
    pub pid: i32,
    /// Its generation.
    pub generation: u32,
    /// `http` or `cron`.
    #[serde(default)]
    pub role: String,
    /// `booting`, `idle`, `dispatched`, `busy`, `cron` (a cron worker at work), `stopping`,
    /// `killing` or `killed`.
    pub state: String,
    /// Requests it took (counted as each starts; cron workers: jobs).
    pub requests: u64,
    /// Seconds since it was spawned.
    pub age_secs: f64,
    /// Seconds since the arbiter last heard from it.
    pub last_heartbeat_secs: f64,
    /// The program it runs (`herd serve -- COMMAND`), if not herd's own code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

/// The arbiter's counters in `status`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Counters {
    /// Workers spawned.
    pub spawns: u64,
    /// Workers reaped.
    pub deaths: u64,
    /// Workers killed for silence.
    pub timeouts: u64,
    /// Workers recycled after their request budget.
    pub recycles: u64,
    /// Connections handed to workers (`ACCEPT:<socket>` sent).
    pub dispatches: u64,
    /// Workers killed for breaking the protocol.
    pub protocol_errors: u64,
    /// Workers that died before booting or could not be forked.
    pub boot_failures: u64,
    /// Workers that died while accepting or serving: each may have taken one connection with it.
    #[serde(default)]
    pub in_flight_deaths: u64,
    /// Workers reaped, by why they left (the log's words: `recycled after its request budget`,
    /// `timed out`, `crashed`, ...); they add up to `deaths`.
    #[serde(default)]
    pub deaths_by_reason: std::collections::BTreeMap<String, u64>,
    /// Signals the arbiter received, by name (`TERM`, `HUP`, ...).
    #[serde(default)]
    pub signals: std::collections::BTreeMap<String, u64>,
}

/// One listener in `status`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ListenerStatus {
    /// Where it listens (`http://127.0.0.1:8000`, `unix:/run/herd.sock`).
    pub address: String,
    /// Connections waiting in its accept queue (TCP only).
    pub queued: Option<u32>,
}

/// The answer to `status`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Status {
    /// The arbiter's pid.
    pub pid: i32,
    /// `running`, `stopping` or `exited`.
    pub phase: String,
    /// Workers it aims to run.
    pub target: u32,
    /// Current generation.
    pub generation: u32,
    /// `shared`, `signaled` or `auto`.
    pub accept_mode: String,
    /// Every worker process it has, by id.
    pub workers: Vec<WorkerStatus>,
    /// Counters since it started.
    pub counters: Counters,
    /// Its listeners, in `--bind` order.
    #[serde(default)]
    pub listeners: Vec<ListenerStatus>,
    /// The cron jobs, as their table in shared memory has them (empty with PostgreSQL's, which
    /// the arbiter does not query: its loop never waits on a database).
    #[serde(default)]
    pub cron: Vec<CronStatus>,
}

/// One cron job in `status`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CronStatus {
    /// Its name.
    pub name: String,
    /// Seconds between runs.
    pub interval_secs: f64,
    /// Runs finished.
    pub runs: u64,
    /// Of those, failed.
    pub failures: u64,
    /// A worker holds it now.
    pub running: bool,
    /// Seconds until it is next due (negative: overdue).
    pub next_due_secs: f64,
}

/// One answer line.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Reply {
    /// Whether the request was carried out.
    pub ok: bool,
    /// Why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The worker target after `incr`/`decr`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<u32>,
    /// The answer to `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
}

/// The arbiter's side: a listening socket and the requests under way.
#[derive(Debug)]
pub struct ControlServer {
    listener: UnixListener,
    path: PathBuf,
    ino: u64,
    conns: BTreeMap<u64, Conn>,
    next: u64,
}

#[derive(Debug)]
struct Conn {
    stream: UnixStream,
    buf: Vec<u8>,
}

/// What a control connection asked for, once its line is complete.
#[derive(Debug)]
pub enum Event {
    /// Nothing complete yet.
    Pending,
    /// The connection asks for this; answer with [`ControlServer::reply`].
    Request(u64, Request),
}

impl ControlServer {
    /// Listens at `path`, owner-only. `take_over`: replace a live socket there (a re-executed
    /// arbiter taking over from its parent); otherwise a live socket is an error and a stale one
    /// is replaced.
    pub fn bind(path: &Path, take_over: bool) -> io::Result<ControlServer> {
        // Only a socket nobody listens on (a stale one of ours) or, when taking over, the parent
        // arbiter's live one is replaced: anything else at the path is not herd's to remove.
        match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
            Ok(m) if !std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "a file that is not a socket is there; herd does not replace it",
                ));
            }
            Ok(_) => match UnixStream::connect(path) {
                Ok(_) if !take_over => {
                    return Err(io::Error::new(
                        io::ErrorKind::AddrInUse,
                        "a running process listens on it; herd does not replace it",
                    ));
                }
                Ok(_) => std::fs::remove_file(path)?,
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => std::fs::remove_file(path)?,
                Err(e) => return Err(e),
            },
        }
        let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
        let bound = UnixListener::bind(path);
        rustix::process::umask(old);
        let listener = bound?;
        listener.set_nonblocking(true)?;
        let ino = std::fs::metadata(path)?.ino();
        Ok(ControlServer { listener, path: path.to_owned(), ino, conns: BTreeMap::new(), next: 0 })
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The listening socket (to poll).
    pub fn listener(&self) -> &UnixListener {
        &self.listener
    }

    /// Accepts waiting connections; returns their keys (to poll).
    pub fn accept(&mut self) -> Vec<(u64, &UnixStream)> {
        let mut keys = Vec::new();
        while let Ok((stream, _)) = self.listener.accept() {
            if self.conns.len() >= MAX_CONNS || stream.set_nonblocking(true).is_err() {
                continue; // Dropped: closed.
            }
            let key = self.next;
            self.next += 1;
            self.conns.insert(key, Conn { stream, buf: Vec::new() });
            keys.push(key);
        }
        keys.into_iter().filter_map(|k| self.conns.get(&k).map(|c| (k, &c.stream))).collect()
    }

    /// Every descriptor it holds (a forked worker closes them).
    pub fn fds(&self) -> Vec<i32> {
        use std::os::fd::AsRawFd;
        let mut fds = vec![self.listener.as_raw_fd()];
        fds.extend(self.conns.values().map(|c| c.stream.as_raw_fd()));
        fds
    }

    /// A connection's socket.
    pub fn stream(&self, key: u64) -> Option<&UnixStream> {
        self.conns.get(&key).map(|c| &c.stream)
    }

    /// Reads from a readable connection.
    pub fn read(&mut self, key: u64) -> Event {
        let Some(c) = self.conns.get_mut(&key) else { return Event::Pending };
        let mut chunk = [0u8; MAX_LINE];
        loop {
            match c.stream.read(&mut chunk) {
                Ok(0) => {
                    self.conns.remove(&key);
                    return Event::Pending;
                }
                Ok(n) => c.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    self.conns.remove(&key);
                    return Event::Pending;
                }
            }
            if c.buf.len() > MAX_LINE {
                break;
            }
        }
        let Some(end) = c.buf.iter().position(|&b| b == b'\n') else {
            if c.buf.len() > MAX_LINE {
                let reply = Reply { error: Some("request line too long".into()), ..Reply::default() };
                self.reply(key, &reply);
            }
            return Event::Pending;
        };
        let line = String::from_utf8_lossy(&c.buf[..end]).into_owned();
        match line.parse::<Request>() {
            Ok(r) => Event::Request(key, r),
            Err(e) => {
                self.reply(key, &Reply { error: Some(e.to_string()), ..Reply::default() });
                Event::Pending
            }
        }
    }

    /// Answers a connection and closes it. The write blocks for at most a second: the client is
    /// the operator, on this host.
    pub fn reply(&mut self, key: u64, reply: &Reply) {
        let Some(c) = self.conns.remove(&key) else { return };
        let mut line = serde_json::to_vec(reply).unwrap_or_else(|_| b"{\"ok\":false}".to_vec());
        line.push(b'\n');
        let mut s = c.stream;
        if s.set_nonblocking(false).is_ok() && s.set_write_timeout(Some(Duration::from_secs(1))).is_ok() {
            let _ = s.write_all(&line);
        }
    }

    /// Removes the socket file if it is still this server's (a new arbiter may have replaced it).
    pub fn unlink(&self) {
        if std::fs::metadata(&self.path).is_ok_and(|m| m.ino() == self.ino) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The client's side: sends one request line, returns the reply.
pub fn request(socket: &Path, line: &str) -> io::Result<Reply> {
    let mut s = UnixStream::connect(socket)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(format!("{}\n", line.trim()).as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    serde_json::from_str(out.trim()).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines_parse_exactly() {
        assert_eq!("status".parse(), Ok(Request::Status));
        assert_eq!("incr 10".parse(), Ok(Request::Command(Command::Incr(10))));
        assert_eq!(" decr  2 ".parse(), Ok(Request::Command(Command::Decr(2))));
        assert_eq!("incr".parse(), Ok(Request::Command(Command::Incr(1))));
        assert_eq!("stop fast".parse(), Ok(Request::Command(Command::Stop { graceful: false })));
        assert_eq!("stop".parse(), Ok(Request::Command(Command::Stop { graceful: true })));
        assert_eq!("reload".parse(), Ok(Request::Command(Command::Reload)));
        assert_eq!("upgrade".parse(), Ok(Request::Command(Command::Upgrade)));
        assert!(matches!("incr 0".parse::<Request>(), Err(RequestError::BadCount(_))));
        assert!(matches!("incr 99999".parse::<Request>(), Err(RequestError::BadCount(_))));
        assert!(matches!("incr x".parse::<Request>(), Err(RequestError::BadCount(_))));
        assert!(matches!("explode".parse::<Request>(), Err(RequestError::Unknown(_))));
        assert!(matches!("".parse::<Request>(), Err(RequestError::Unknown(_))));
    }

    #[test]
    fn replies_round_trip_through_json() {
        let r = Reply { ok: true, target: Some(3), ..Reply::default() };
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(s, r#"{"ok":true,"target":3}"#);
        assert_eq!(serde_json::from_str::<Reply>(&s).unwrap(), r);
    }
}
