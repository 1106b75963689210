//! Listening sockets: `--bind` addresses, binding, non-blocking accept, and the accept-queue
//! length the arbiter dispatches by.

use nix::libc;
use nix::sys::socket::{self, AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage, sockopt};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Length of each listener's accept queue (`listen(2)` backlog), gunicorn's default.
pub const BACKLOG: i32 = 2048;

/// An address to listen on, as `--bind` takes it: `HOST:PORT` (`[V6]:PORT` for IPv6),
/// `unix:PATH`, or `fd://N` (a listening socket this process inherited as descriptor N).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Bind {
    /// A TCP address; the host may be a name, resolved once at startup.
    Tcp(String),
    /// A unix socket path.
    Unix(PathBuf),
    /// An inherited listening socket, by its descriptor number (gunicorn's `fd://`).
    Fd(i32),
}

/// How listeners are set up: gunicorn's `--backlog` and `--reuse-port`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenOptions {
    /// Length of each accept queue (`listen(2)`; the kernel caps it at `somaxconn`).
    pub backlog: i32,
    /// `SO_REUSEPORT` on TCP listeners: other processes may bind the same port (the kernel
    /// spreads connections between them).
    pub reuse_port: bool,
}

impl Default for ListenOptions {
    fn default() -> Self {
        ListenOptions { backlog: BACKLOG, reuse_port: false }
    }
}

/// A `--bind` value that cannot be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BindParseError {
    /// Empty value.
    #[error("empty address")]
    Empty,
    /// `unix:` with no path.
    #[error("unix: needs a path, as in unix:/run/herd.sock")]
    EmptyPath,
    /// No `:PORT`.
    #[error("{0:?} has no port; expected HOST:PORT or unix:PATH")]
    NoPort(String),
    /// The port is not a number from 0 to 65535.
    #[error("{0:?} has a bad port; expected a number from 0 to 65535")]
    BadPort(String),
    /// `fd://` without a descriptor number.
    #[error("{0:?}: expected fd://N, N a descriptor number from 0")]
    BadFd(String),
}

/// The port of a `--bind` that names only a host (gunicorn's).
pub const DEFAULT_PORT: u16 = 8000;

impl FromStr for Bind {
    type Err = BindParseError;
    fn from_str(s: &str) -> Result<Bind, BindParseError> {
        if s.is_empty() {
            return Err(BindParseError::Empty);
        }
        if let Some(n) = s.strip_prefix("fd://") {
            return n
                .parse::<i32>()
                .ok()
                .filter(|&n| n >= 0)
                .map(Bind::Fd)
                .ok_or_else(|| BindParseError::BadFd(s.to_owned()));
        }
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(BindParseError::EmptyPath);
            }
            return Ok(Bind::Unix(PathBuf::from(path)));
        }
        // A bare HOST (a name, an IPv4 address, a bracketed IPv6 one) means port 8000, as in
        // gunicorn.
        let bare = !s.contains(':') || (s.starts_with('[') && s.ends_with(']'));
        if bare {
            return Ok(Bind::Tcp(format!("{s}:{DEFAULT_PORT}")));
        }
        let (_, port) = s.rsplit_once(':').ok_or_else(|| BindParseError::NoPort(s.to_owned()))?;
        if port.parse::<u16>().is_err() {
            return Err(BindParseError::BadPort(s.to_owned()));
        }
        Ok(Bind::Tcp(s.to_owned()))
    }
}

impl fmt::Display for Bind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bind::Tcp(a) => f.write_str(a),
            Bind::Unix(p) => write!(f, "unix:{}", p.display()),
            Bind::Fd(n) => write!(f, "fd://{n}"),
        }
    }
}

/// A listener that could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BindError {
    /// The host name did not resolve.
    #[error("cannot resolve {addr}: {source}")]
    Resolve {
        /// The `--bind` value.
        addr: String,
        /// Why.
        source: io::Error,
    },
    /// Something else listens there.
    #[error("address already in use: {0} (is another server running?)")]
    InUse(Bind),
    /// Any other failure.
    #[error("cannot listen on {bind}: {source}")]
    Io {
        /// The `--bind` value.
        bind: Bind,
        /// Why.
        source: io::Error,
    },
}

/// A bound, listening, non-blocking socket.
#[derive(Debug)]
pub enum Listener {
    /// TCP.
    Tcp(TcpListener),
    /// A unix socket, its path, and who made the file there (and so who may remove it).
    Unix(UnixListener, PathBuf, SocketOrigin),
}

/// Who made a unix socket's file, and so whether this process may unlink it when it exits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SocketOrigin {
    /// This process bound it (`--bind unix:PATH`): removed on a clean exit (unless a child
    /// arbiter still serves on it, B08).
    Bound,
    /// Passed on by the arbiter this one replaced (a USR2 upgrade): removed only once that
    /// arbiter is gone and this one exits (it took over); never while it lives (a back-out).
    Upgrade,
    /// Passed by socket activation (systemd): never removed; the file is the supervisor's.
    Activation,
}

impl Listener {
    /// Binds and listens, with the default options.
    pub fn bind(bind: &Bind) -> Result<Listener, BindError> {
        Self::bind_with(bind, ListenOptions::default())
    }

    /// Binds and listens (an `fd://N` is adopted as it is: it listens already).
    pub fn bind_with(bind: &Bind, options: ListenOptions) -> Result<Listener, BindError> {
        let backlog = Backlog::new(options.backlog).unwrap_or(Backlog::MAXCONN);
        let io_err = |source: io::Error| {
            if source.kind() == io::ErrorKind::AddrInUse {
                BindError::InUse(bind.clone())
            } else {
                BindError::Io { bind: bind.clone(), source }
            }
        };
        match bind {
            Bind::Tcp(addr) => {
                let sa = addr
                    .to_socket_addrs()
                    .and_then(|mut it| {
                        it.next().ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))
                    })
                    .map_err(|source| BindError::Resolve { addr: addr.clone(), source })?;
                listen_tcp(sa, backlog, options.reuse_port).map(Listener::Tcp).map_err(io_err)
            }
            Bind::Fd(n) => adopt(*n).map_err(io_err),
            Bind::Unix(path) => {
                remove_stale_socket(path).map_err(io_err)?;
                let l = UnixListener::bind(path).map_err(io_err)?;
                let fd = l.as_fd();
                socket::listen(&fd, backlog).map_err(|e| io_err(e.into()))?;
                l.set_nonblocking(true).map_err(io_err)?;
                Ok(Listener::Unix(l, path.clone(), SocketOrigin::Bound))
            }
        }
    }

    /// Wraps an inherited listening socket (systemd socket activation, a re-executed arbiter);
    /// `origin` says which, for a unix socket.
    pub fn from_fd(fd: OwnedFd, origin: SocketOrigin) -> io::Result<Listener> {
        let addr: SockaddrStorage = socket::getsockname(fd.as_raw_fd())?;
        let l = if addr.as_unix_addr().is_some() {
            let l = UnixListener::from(fd);
            let path = l.local_addr()?.as_pathname().map(Path::to_path_buf).unwrap_or_default();
            Listener::Unix(l, path, origin)
        } else {
            Listener::Tcp(TcpListener::from(fd))
        };
        match &l {
            Listener::Tcp(t) => t.set_nonblocking(true)?,
            Listener::Unix(u, ..) => u.set_nonblocking(true)?,
        }
        Ok(l)
    }

    /// Where it listens, as a URL-ish string: `http://127.0.0.1:8000` or `unix:/path`.
    pub fn url(&self) -> String {
        match self {
            Listener::Tcp(l) => match l.local_addr() {
                Ok(a) => format!("http://{a}"),
                Err(_) => "http://?".to_owned(),
            },
            Listener::Unix(_, p, _) => format!("unix:{}", p.display()),
        }
    }

    /// The TCP address, if TCP.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Listener::Tcp(l) => l.local_addr().ok(),
            Listener::Unix(..) => None,
        }
    }

    /// One non-blocking accept: `Ok(None)` when nothing is waiting. The connection is blocking.
    pub fn accept(&self) -> io::Result<Option<Connection>> {
        let r = match self {
            Listener::Tcp(l) => l.accept().map(|(s, _)| Connection::Tcp(s)),
            Listener::Unix(l, ..) => l.accept().map(|(s, _)| Connection::Unix(s)),
        };
        match r {
            Ok(c) => Ok(Some(c)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            // The client gave up between the handshake and the accept: nothing to serve.
            Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The kernel's accept-queue length (`TCP_INFO.tcpi_unacked` on a listening TCP socket);
    /// `None` for unix sockets, where the kernel does not say.
    pub fn queued(&self) -> Option<u32> {
        let Listener::Tcp(l) = self else { return None };
        // SAFETY: tcp_info is plain data; the kernel writes at most `len` bytes of it.
        unsafe {
            let mut info: libc::tcp_info = std::mem::zeroed();
            let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
            let rc = libc::getsockopt(
                l.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                (&raw mut info).cast(),
                &mut len,
            );
            (rc == 0).then_some(info.tcpi_unacked)
        }
    }

    /// Whether a connection is waiting now (a level check).
    pub fn pending(&self) -> bool {
        match self.queued() {
            Some(n) => n > 0,
            None => {
                let mut fds = [nix::poll::PollFd::new(self.as_fd(), nix::poll::PollFlags::POLLIN)];
                matches!(nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO), Ok(n) if n > 0)
            }
        }
    }

    /// Unlinks the socket file of a unix listener on a clean exit, if it is this process's to
    /// remove: it bound it, or it took it over from an arbiter that is now gone (`took_over`).
    /// A file inherited from socket activation is never removed.
    pub fn unlink(&self, took_over: bool) {
        let Listener::Unix(_, p, origin) = self else { return };
        let ours = match origin {
            SocketOrigin::Bound => true,
            SocketOrigin::Upgrade => took_over,
            SocketOrigin::Activation => false,
        };
        if ours {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Listener::Tcp(l) => l.as_fd(),
            Listener::Unix(l, ..) => l.as_fd(),
        }
    }
}

fn listen_tcp(sa: SocketAddr, backlog: Backlog, reuse_port: bool) -> io::Result<TcpListener> {
    let family = if sa.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
    let fd =
        socket::socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK, None)?;
    socket::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    if reuse_port {
        socket::setsockopt(&fd, sockopt::ReusePort, &true)?;
    }
    socket::bind(fd.as_raw_fd(), &SockaddrStorage::from(sa))?;
    socket::listen(&fd, backlog)?;
    Ok(TcpListener::from(fd))
}

/// `fd://N`: a copy of descriptor N (close-on-exec), which must be a listening socket; the
/// original is closed, so that it reaches no worker and no program twice.
fn adopt(n: i32) -> io::Result<Listener> {
    // SAFETY: fcntl on a number the operator says this process inherited; it fails (EBADF) if
    // nothing is open there.
    let copy = unsafe { libc::fcntl(n, libc::F_DUPFD_CLOEXEC, 3) };
    if copy < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `copy` was just opened by this process and is owned by nothing else.
    let owned = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(copy) };
    let listening = socket::getsockopt(&owned, sockopt::AcceptConn).unwrap_or(false);
    if !listening {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a listening socket"));
    }
    // SAFETY: the original is replaced by its copy; nothing in this process holds it.
    unsafe { libc::close(n) };
    Listener::from_fd(owned, SocketOrigin::Activation)
}

/// A unix socket file nobody listens on any more (a crashed server's) is removed; a live one is
/// left alone so that binding reports "address in use".
fn remove_stale_socket(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => match UnixStream::connect(path) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => std::fs::remove_file(path),
            Err(_) => Ok(()),
        },
        _ => Ok(()),
    }
}

/// An accepted client connection, blocking.
#[derive(Debug)]
pub enum Connection {
    /// TCP.
    Tcp(TcpStream),
    /// Unix socket.
    Unix(UnixStream),
}

impl Connection {
    /// The client's address (`None` on a unix socket).
    pub fn peer_addr(&self) -> Option<std::net::SocketAddr> {
        match self {
            Connection::Tcp(s) => s.peer_addr().ok(),
            Connection::Unix(_) => None,
        }
    }

    /// Sets read and write timeouts.
    pub fn set_timeouts(&self, d: Option<std::time::Duration>) -> io::Result<()> {
        self.set_read_timeout(d)?;
        self.set_write_timeout(d)
    }

    /// Sets the read timeout (`SO_RCVTIMEO`): a read waiting longer fails.
    pub fn set_read_timeout(&self, d: Option<std::time::Duration>) -> io::Result<()> {
        match self {
            Connection::Tcp(s) => s.set_read_timeout(d),
            Connection::Unix(s) => s.set_read_timeout(d),
        }
    }

    /// Sets the write timeout (`SO_SNDTIMEO`): a write waiting longer fails.
    pub fn set_write_timeout(&self, d: Option<std::time::Duration>) -> io::Result<()> {
        match self {
            Connection::Tcp(s) => s.set_write_timeout(d),
            Connection::Unix(s) => s.set_write_timeout(d),
        }
    }
}

impl Read for Connection {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Connection::Tcp(s) => s.read(buf),
            Connection::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Connection {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Connection::Tcp(s) => s.write(buf),
            Connection::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Connection::Tcp(s) => s.flush(),
            Connection::Unix(s) => s.flush(),
        }
    }
}

impl AsFd for Connection {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Connection::Tcp(s) => s.as_fd(),
            Connection::Unix(s) => s.as_fd(),
        }
    }
}

/// Environment variables of socket activation (systemd's, also used by a re-executed arbiter).
pub const LISTEN_FDS: &str = "LISTEN_FDS";
/// The pid the passed sockets are meant for.
pub const LISTEN_PID: &str = "LISTEN_PID";
/// The first passed descriptor.
pub const LISTEN_FDS_START: i32 = 3;

/// The listening sockets passed by systemd socket activation or a parent arbiter's upgrade:
/// descriptors 3.. as `LISTEN_FDS` says, if `LISTEN_PID` is this process. Empty otherwise.
/// `env` reads a variable of the environment.
pub fn listeners_from_env(
    origin: SocketOrigin,
    env: &dyn Fn(&str) -> Option<String>,
) -> io::Result<Vec<Listener>> {
    let pid = env(LISTEN_PID).and_then(|p| p.parse::<u32>().ok());
    if pid != Some(std::process::id()) {
        return Ok(Vec::new());
    }
    let n: i32 = env(LISTEN_FDS)
        .and_then(|n| n.parse().ok())
        .filter(|&n| (0..=u16::MAX as i32).contains(&n))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "LISTEN_FDS is not a count"))?;
    let mut out = Vec::new();
    for fd in LISTEN_FDS_START..LISTEN_FDS_START + n {
        // The descriptor must be open and a listening socket; anything else is refused.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        let listening = socket::getsockopt(&borrowed, sockopt::AcceptConn).map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("LISTEN_FDS descriptor {fd}: {e}"))
        })?;
        if !listening {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("LISTEN_FDS descriptor {fd} is not a listening socket"),
            ));
        }
        // SAFETY: passed to this process for it to own (LISTEN_PID matched).
        let owned = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        rustix::io::fcntl_setfd(&owned, rustix::io::FdFlags::CLOEXEC)?;
        out.push(Listener::from_fd(owned, origin)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_are_read_as_gunicorn_reads_them() {
        let tcp = |s: &str| s.parse::<Bind>().map(|b| b.to_string());
        assert_eq!(tcp("127.0.0.1:9000"), Ok("127.0.0.1:9000".into()));
        assert_eq!(tcp("127.0.0.1"), Ok("127.0.0.1:8000".into()));
        assert_eq!(tcp("localhost"), Ok("localhost:8000".into()));
        assert_eq!(tcp("[::1]"), Ok("[::1]:8000".into()));
        assert_eq!(tcp("[::1]:9000"), Ok("[::1]:9000".into()));
        assert_eq!(tcp("unix:/run/x.sock"), Ok("unix:/run/x.sock".into()));
        assert_eq!(tcp("127.0.0.1:"), Err(BindParseError::BadPort("127.0.0.1:".into())));
        assert_eq!(tcp("127.0.0.1:99999"), Err(BindParseError::BadPort("127.0.0.1:99999".into())));
        assert_eq!(tcp(""), Err(BindParseError::Empty));
        assert_eq!(tcp("unix:"), Err(BindParseError::EmptyPath));
    }
}
