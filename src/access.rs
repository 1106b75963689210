//! The access log (`--access-logfile`, `--access-logformat`): one line per request, in
//! gunicorn's format language, written by the worker that served it.
//!
//! The format is gunicorn's: text with `%(atom)s` for each value (`%%` for a percent sign). The
//! default is gunicorn's default, `%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"`:
//!
//! ```text
//! 127.0.0.1 - - [01/Dec/2026:06:04:48 +0000] "GET /pid HTTP/1.1" 200 6 "-" "curl/8.5.0"
//! ```
//!
//! | atom | value |
//! |---|---|
//! | `h` | the client's address (`-` on a unix socket) |
//! | `l` | `-` |
//! | `u` | `-` (no user name is taken from the request) |
//! | `t` | when the request began, `[day/Mon/year:hh:mm:ss +0000]` (UTC) |
//! | `r` | the request line, `METHOD TARGET VERSION` |
//! | `m` / `U` / `q` / `H` | the method / the path / the query string / the protocol |
//! | `s` | the status code |
//! | `B` / `b` | the response body's length in bytes / the same, `-` when 0 |
//! | `f` / `a` | the `Referer` / `User-Agent` header (`-` when absent) |
//! | `T` / `M` / `D` / `L` | how long the request took in whole seconds / milliseconds / microseconds / seconds with six decimals |
//! | `p` | `<pid>` of the worker |
//! | `{name}i` | the request header `name` (`-` when absent) |
//!
//! Each line is written with one `write(2)` to a file opened for appending (lines of all workers
//! interleave whole), once the request is answered; USR1 reopens the file after a rotation
//! (`crate::os::logfile`).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// gunicorn's default access log format.
pub const DEFAULT_FORMAT: &str = r#"%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s""#;

/// A format string that is not one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// `%(name)s` with a name that is no atom.
    #[error("unknown atom %({0})s in the access log format")]
    UnknownAtom(String),
    /// A `%` that starts neither `%(name)s` nor `%%`.
    #[error("a lone % at byte {0} of the access log format (write %% for a percent sign)")]
    LonePercent(usize),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Atom(Atom),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Atom {
    Remote,
    Dash,
    Time,
    RequestLine,
    Method,
    Path,
    Query,
    Protocol,
    Status,
    Bytes { dash_when_zero: bool },
    Header(String),
    Seconds,
    Millis,
    Micros,
    DecimalSeconds,
    Pid,
}

/// A parsed access log format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessFormat {
    parts: Vec<Part>,
}

impl Default for AccessFormat {
    fn default() -> Self {
        DEFAULT_FORMAT.parse().expect("the default format parses")
    }
}

impl std::str::FromStr for AccessFormat {
    type Err = FormatError;

    fn from_str(s: &str) -> Result<Self, FormatError> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut rest = s;
        while let Some(at) = rest.find('%') {
            text.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            if let Some(tail) = after.strip_prefix('%') {
                text.push('%');
                rest = tail;
                continue;
            }
            let offset = s.len() - rest.len() + at;
            let Some((name, tail)) = after.strip_prefix('(').and_then(|a| a.split_once(")s")) else {
                return Err(FormatError::LonePercent(offset));
            };
            let atom = match name {
                "h" => Atom::Remote,
                "l" | "u" => Atom::Dash,
                "t" => Atom::Time,
                "r" => Atom::RequestLine,
                "m" => Atom::Method,
                "U" => Atom::Path,
                "q" => Atom::Query,
                "H" => Atom::Protocol,
                "s" => Atom::Status,
                "B" => Atom::Bytes { dash_when_zero: false },
                "b" => Atom::Bytes { dash_when_zero: true },
                "f" => Atom::Header("referer".into()),
                "a" => Atom::Header("user-agent".into()),
                "T" => Atom::Seconds,
                "M" => Atom::Millis,
                "D" => Atom::Micros,
                "L" => Atom::DecimalSeconds,
                "p" => Atom::Pid,
                _ => match name.strip_prefix('{').and_then(|n| n.strip_suffix("}i")) {
                    Some(h) if !h.is_empty() => Atom::Header(h.to_ascii_lowercase()),
                    _ => return Err(FormatError::UnknownAtom(name.to_owned())),
                },
            };
            if !text.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut text)));
            }
            parts.push(Part::Atom(atom));
            rest = tail;
        }
        text.push_str(rest);
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(AccessFormat { parts })
    }
}

/// One answered request, as an HTTP layer reports it.
#[derive(Clone, Copy, Debug)]
pub struct Entry<'a> {
    /// The client (`None` on a unix socket).
    pub remote: Option<SocketAddr>,
    /// The method.
    pub method: &'a str,
    /// The request target (path and query).
    pub target: &'a str,
    /// The protocol, e.g. `HTTP/1.1`.
    pub version: &'a str,
    /// The status answered.
    pub status: u16,
    /// The response body's length in bytes.
    pub bytes: u64,
    /// When the request began.
    pub started: SystemTime,
    /// How long it took.
    pub took: Duration,
    /// The request's headers (any case).
    pub headers: &'a [(&'a str, &'a str)],
}

impl AccessFormat {
    /// The line for `e`, with its newline.
    pub fn render(&self, e: &Entry<'_>) -> String {
        let mut out = String::with_capacity(160);
        let (path, query) = e.target.split_once('?').unwrap_or((e.target, ""));
        for part in &self.parts {
            let atom = match part {
                Part::Text(t) => {
                    out.push_str(t);
                    continue;
                }
                Part::Atom(a) => a,
            };
            let _ = match atom {
                Atom::Remote => match e.remote {
                    Some(a) => write!(out, "{}", a.ip()),
                    None => write!(out, "-"),
                },
                Atom::Dash => write!(out, "-"),
                Atom::Time => write!(out, "[{}]", clf_time(e.started)),
                Atom::RequestLine => {
                    write!(out, "{} {} {}", clean(e.method), clean(e.target), clean(e.version))
                }
                Atom::Method => write!(out, "{}", clean(e.method)),
                Atom::Path => write!(out, "{}", clean(path)),
                Atom::Query => write!(out, "{}", clean(query)),
                Atom::Protocol => write!(out, "{}", clean(e.version)),
                Atom::Status => write!(out, "{}", e.status),
                Atom::Bytes { dash_when_zero: true } if e.bytes == 0 => write!(out, "-"),
                Atom::Bytes { .. } => write!(out, "{}", e.bytes),
                Atom::Header(name) => match e.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
                    Some((_, v)) => write!(out, "{}", clean(v)),
                    None => write!(out, "-"),
                },
                Atom::Seconds => write!(out, "{}", e.took.as_secs()),
                Atom::Millis => write!(out, "{}", e.took.as_millis()),
                Atom::Micros => write!(out, "{}", e.took.as_micros()),
                Atom::DecimalSeconds => write!(out, "{:.6}", e.took.as_secs_f64()),
                Atom::Pid => write!(out, "<{}>", std::process::id()),
            };
        }
        out.push('\n');
        out
    }
}

/// What a client sent, made safe for one log line: control characters (a newline that would
/// forge a line), quotes and backslashes escaped as `\xNN`.
fn clean(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.bytes().any(|b| b.is_ascii_control() || b == b'"' || b == b'\\') {
        return s.into();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_ascii_control() || c == '"' || c == '\\' {
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else {
            out.push(c);
        }
    }
    out.into()
}

/// `01/Dec/2026:06:04:48 +0000`: the common log format's time, in UTC.
fn clf_time(t: SystemTime) -> String {
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{day:02}/{}/{year}:{:02}:{:02}:{:02} +0000",
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The access log of a server: where lines go and how they read (`--access-logfile`,
/// `--access-logformat`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessLog {
    /// The file (appended to; `-`: standard output).
    pub path: PathBuf,
    /// The format.
    pub format: AccessFormat,
}

impl AccessLog {
    /// An access log to `path` in gunicorn's default format.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        AccessLog { path: path.into(), format: AccessFormat::default() }
    }

    /// Whether it goes to standard output.
    pub(crate) fn to_stdout(&self) -> bool {
        self.path == Path::new("-")
    }
}

/// Where this process writes access lines: the format, and the descriptor of the file (opened
/// once in the arbiter, inherited by its workers, reopened in place on USR1).
#[derive(Debug)]
pub(crate) struct AccessWriter {
    format: AccessFormat,
    fd: std::os::fd::RawFd,
}

impl AccessWriter {
    /// Opens `log`'s file for appending (standard output for `-`).
    pub(crate) fn open(log: &AccessLog) -> std::io::Result<Self> {
        let fd = if log.to_stdout() { 1 } else { crate::os::logfile::open_access(&log.path)? };
        Ok(AccessWriter { format: log.format.clone(), fd })
    }

    /// Writes `e`'s line with one `write(2)` (a file opened for appending takes it whole); a
    /// failure (a full disk) loses the line, never the request.
    pub(crate) fn log(&self, e: &Entry<'_>) {
        let line = self.format.render(e);
        // SAFETY: the descriptor stays open for the life of the process (reopening replaces
        // the file under the same number).
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(self.fd) };
        let mut rest = line.as_bytes();
        while !rest.is_empty() {
            match nix::unistd::write(fd, rest) {
                Ok(0) => return,
                Ok(n) => rest = &rest[n..],
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "access log: line lost");
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
