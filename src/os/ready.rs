//! The readiness socket of one exec worker that knows nothing of herd (`--worker-ready notify`):
//! the program finds it in `NOTIFY_SOCKET` and says `READY=1` on it, as it would to systemd
//! (`sd_notify`). Bound by the arbiter before the fork, in the abstract namespace (no file to
//! clean up), and believed only from the worker's own pid (the kernel's credentials).

use nix::sys::socket::{
    AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockType, UnixAddr, bind, recvmsg, setsockopt,
    socket, sockopt,
};
use std::io::{self, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// A worker's readiness socket, on the arbiter's side.
#[derive(Debug)]
pub(crate) struct ReadySocket(OwnedFd);

/// The `NOTIFY_SOCKET` of worker `id` of the arbiter `arbiter` (`@` marks the abstract namespace).
pub(crate) fn address(arbiter: i32, id: u64) -> String {
    format!("@herd-ready-{arbiter}-{id}")
}

impl ReadySocket {
    /// Binds the socket of worker `id`.
    pub(crate) fn bind(arbiter: i32, id: u64) -> io::Result<ReadySocket> {
        let fd = socket(
            AddressFamily::Unix,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            None,
        )?;
        let name = address(arbiter, id);
        bind(fd.as_raw_fd(), &UnixAddr::new_abstract(&name.as_bytes()[1..])?)?;
        setsockopt(&fd, sockopt::PassCred, &true)?;
        Ok(ReadySocket(fd))
    }

    /// Reads every datagram waiting: whether one from process `pid` said `READY=1`. Datagrams
    /// from any other process are dropped unread.
    pub(crate) fn ready_from(&self, pid: i32) -> bool {
        let mut ready = false;
        loop {
            let mut buf = [0u8; 4096];
            let mut iov = [IoSliceMut::new(&mut buf)];
            let mut space = nix::cmsg_space!(nix::sys::socket::UnixCredentials);
            let msg = match recvmsg::<()>(self.0.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::empty()) {
                Ok(m) => m,
                Err(nix::errno::Errno::EINTR) => continue,
                // EAGAIN: all read.
                Err(_) => return ready,
            };
            let from = msg.cmsgs().ok().into_iter().flatten().find_map(|c| match c {
                ControlMessageOwned::ScmCredentials(creds) => Some(creds.pid()),
                _ => None,
            });
            let len = msg.bytes;
            if from != Some(pid) {
                tracing::warn!(from = ?from, worker_pid = pid, "a readiness notification not from the worker: ignored");
            } else if buf[..len].split(|&b| b == b'\n').any(|l| l == b"READY=1") {
                ready = true;
            }
        }
    }
}

impl AsFd for ReadySocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}
