//! systemd's readiness protocol (`sd_notify`): datagrams to `$NOTIFY_SOCKET` saying READY,
//! RELOADING and STOPPING. Without the variable nothing is sent.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// A connection to the service manager's notification socket.
#[derive(Debug)]
pub struct Notifier {
    sock: UnixDatagram,
    addr: SocketAddr,
}

impl Notifier {
    /// From `$NOTIFY_SOCKET` (a path, or `@name` for an abstract socket); `None` if unset.
    pub fn from_env() -> io::Result<Option<Notifier>> {
        let Some(path) = std::env::var_os("NOTIFY_SOCKET") else { return Ok(None) };
        let bytes = path.as_encoded_bytes();
        let addr = match bytes.strip_prefix(b"@") {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(name)?
            }
            None => SocketAddr::from_pathname(std::path::Path::new(&path))?,
        };
        let sock = UnixDatagram::unbound()?;
        Ok(Some(Notifier { sock, addr }))
    }

    /// Its socket's descriptor (a forked worker closes it).
    pub fn fd(&self) -> i32 {
        use std::os::fd::AsRawFd;
        self.sock.as_raw_fd()
    }

    /// Sends one notification (`KEY=value` lines). Failures are logged, never fatal.
    pub fn send(&self, msg: &str) {
        if let Err(e) = self.sock.send_to_addr(msg.as_bytes(), &self.addr) {
            tracing::warn!(error = %e, "sd_notify failed");
        }
    }

    /// READY=1 with this process as the main pid.
    pub fn ready(&self) {
        self.send(&format!("READY=1\nMAINPID={}\nSTATUS=serving", std::process::id()));
    }

    /// RELOADING=1, with the monotonic time systemd's `Type=notify-reload` asks for.
    pub fn reloading(&self) {
        let usec = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        let usec = usec.tv_sec as u64 * 1_000_000 + usec.tv_nsec as u64 / 1_000;
        self.send(&format!("RELOADING=1\nMONOTONIC_USEC={usec}\nSTATUS=reloading"));
    }

    /// STOPPING=1.
    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=stopping");
    }
}
