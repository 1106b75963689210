//! The log files an operator names (`--error-logfile`, `--access-logfile`): each is opened for
//! appending onto a descriptor that stays the same for the life of the process (standard error
//! for the error log), so that reopening it after a rotation (USR1, as gunicorn) is one
//! `open(2)` and one `dup2(2)` onto that descriptor: whoever writes there — the log subscriber,
//! the access log, a program exec'd with its standard error inherited — writes to the new file
//! from then on, with no lock and no window where the descriptor is closed.
//!
//! The arbiter reopens on USR1 and relays USR1 to herd's own workers, whose handler reopens too
//! (open, dup2 and close are async-signal-safe, and the paths are set before any fork).

use nix::errno::Errno;
use nix::libc;
use std::ffi::{CStr, CString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::OnceLock;

/// The error log's path, once it is not standard error.
static ERROR_LOG: OnceLock<CString> = OnceLock::new();
/// The access log's path and the descriptor it is kept on.
static ACCESS_LOG: OnceLock<(CString, libc::c_int)> = OnceLock::new();

/// Mode of a log file herd creates (less the umask): the owner writes, the group reads.
const MODE: libc::c_uint = 0o640;

/// Who the workers run as (`--user`, `--group`), when not the arbiter: the log files are
/// given to them, so that a worker can reopen them after a rotation.
static OWNER: OnceLock<(libc::uid_t, libc::gid_t)> = OnceLock::new();

/// The log files herd opens from now on belong to `uid`:`gid` (set before any is opened).
pub(crate) fn give_to(uid: libc::uid_t, gid: libc::gid_t) {
    let _ = OWNER.set((uid, gid));
}

/// Opens `path` for appending (creating it) and puts it on descriptor `onto`; with `onto` < 0,
/// on a new descriptor, which is returned. Async-signal-safe: no allocation, no lock.
fn open_onto(path: &CStr, onto: libc::c_int) -> Result<libc::c_int, Errno> {
    let flags = libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | libc::O_CLOEXEC | libc::O_NOCTTY;
    // SAFETY: a valid NUL-terminated path; open(2) is async-signal-safe.
    let fd = unsafe { libc::open(path.as_ptr(), flags, MODE) };
    if fd < 0 {
        return Err(Errno::last());
    }
    if let Some(&(uid, gid)) = OWNER.get() {
        // SAFETY: fchown(2) on the descriptor just opened; async-signal-safe. In a worker (no
        // longer allowed to) it fails harmlessly: the arbiter gave the file away already.
        unsafe { libc::fchown(fd, uid, gid) };
    }
    if onto < 0 || fd == onto {
        return Ok(fd);
    }
    // SAFETY: both descriptors are open; dup2(2) replaces `onto` atomically (the standard error
    // descriptor keeps its number, without close-on-exec, so an exec'd program inherits it).
    let r = unsafe { libc::dup2(fd, onto) };
    let e = Errno::last();
    // SAFETY: `fd` is ours and no longer needed.
    unsafe { libc::close(fd) };
    if r < 0 { Err(e) } else { Ok(onto) }
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path with a NUL byte"))
}

/// Makes `path` this process's standard error (`--error-logfile`), appending; set once.
pub(crate) fn redirect_stderr(path: &Path) -> io::Result<()> {
    let c = c_path(path)?;
    open_onto(&c, libc::STDERR_FILENO)?;
    let _ = ERROR_LOG.set(c);
    Ok(())
}

/// Opens the access log (`--access-logfile`) once; the descriptor its lines are written to.
pub(crate) fn open_access(path: &Path) -> io::Result<libc::c_int> {
    if let Some((_, fd)) = ACCESS_LOG.get() {
        return Ok(*fd);
    }
    let c = c_path(path)?;
    let fd = open_onto(&c, -1)?;
    // Close-on-exec: herd's own workers are forked and keep it, on a number that never changes;
    // an exec'd program or a new arbiter (USR2) does not (the new arbiter opens its own).
    let _ = ACCESS_LOG.set((c, fd));
    Ok(fd)
}

/// Reopens every log file this process has (after a rotation); whether there was any. For the
/// arbiter's USR1; also async-signal-safe, for the workers' handler.
pub(crate) fn reopen() -> Result<bool, Errno> {
    // The access log first: whoever sees standard error moved (a test, an operator) may take
    // every log as moved.
    let mut any = false;
    if let Some((p, fd)) = ACCESS_LOG.get() {
        open_onto(p, *fd)?;
        any = true;
    }
    if let Some(p) = ERROR_LOG.get() {
        open_onto(p, libc::STDERR_FILENO)?;
        any = true;
    }
    Ok(any)
}

/// A worker's USR1 handler: reopen the log files (a rotation); errors leave the old ones.
pub(crate) extern "C" fn on_reopen(_: libc::c_int) {
    let saved = Errno::last_raw();
    let _ = reopen();
    Errno::set_raw(saved);
}
