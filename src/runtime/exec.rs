//! Exec workers (`herd serve -- COMMAND`): a forked worker becomes the program. Between fork and
//! exec it only arranges descriptors, environment and signals; the program then talks to the
//! arbiter over its channel (protocol `herd`), or not at all (protocol `none`: the worker
//! announces itself ready with one `ALIVE` before it executes the program).

use crate::exec::{Program, Readiness, WorkerProtocol};
use crate::os::ready;
use crate::resources::Resources;
use crate::runtime::kind::{Booted, WorkerMain};
use crate::runtime::worker::{WorkerSetup, run_process};
use herd_protocol::arbiter::{KillSignal, WORKER_BOOT_ERROR};
use nix::libc;
use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, sigprocmask};
use std::ffi::{CString, OsString};
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// The first descriptor a program inherits (`SD_LISTEN_FDS_START`).
const FIRST_FD: RawFd = 3;

/// A program that tells nothing (`--worker-protocol none`, `--worker-ready exec`) has booted once
/// it has run this long: one that dies sooner is a boot failure, respawned with backoff rather
/// than at once (a program that crashes at start would otherwise be forked in a loop).
pub(crate) const READY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// Workers that execute a program.
pub(crate) struct ExecWorker {
    pub program: Program,
    /// Its path, found before anything was forked.
    pub path: PathBuf,
}

impl WorkerMain for ExecWorker {
    fn worker_main(&mut self, setup: WorkerSetup, res: &Resources) -> ! {
        let inherited = setup.inherited.clone();
        run_process(&inherited, |_| {
            let e = exec(&self.program, &self.path, setup, res);
            // Only a failed exec returns: a boot error, which halts the server (the program
            // would fail the same way in every worker).
            let _ = writeln!(io::stderr(), "herd: cannot execute {}: {e}", self.path.display());
            Ok(WORKER_BOOT_ERROR)
        })
    }

    fn cron_main(&mut self, _: WorkerSetup, _: &Resources) -> ! {
        // Refused before anything is forked (`Program::check`).
        // SAFETY: ends this forked process without the arbiter's destructors.
        unsafe { libc::_exit(WORKER_BOOT_ERROR) }
    }

    fn readiness(&self) -> Booted {
        match (self.program.protocol_of(), self.program.readiness_of()) {
            (WorkerProtocol::Herd, _) => Booted::FirstFrame,
            (WorkerProtocol::None, Readiness::Notify) => Booted::Notify,
            (WorkerProtocol::None, _) => Booted::After(READY_AFTER),
        }
    }

    fn command(&self) -> Option<String> {
        let words: Vec<String> =
            self.program.args().iter().map(|a| a.to_string_lossy().into_owned()).collect();
        Some(words.join(" "))
    }

    fn signal(&self, signal: KillSignal) -> Signal {
        match signal {
            KillSignal::Term => self.program.graceful(),
            other => crate::runtime::kind::default_signal(other),
        }
    }
}

/// Arranges the process for the program and executes it; returns only on failure.
fn exec(program: &Program, path: &std::path::Path, setup: WorkerSetup, res: &Resources) -> io::Error {
    let protocol = program.protocol_of();
    // Descriptors: the listeners at 3, 4, ...; with the protocol, the channel after them. Moved
    // out of the way first (above every target), so that placing one never closes another.
    let mut wanted: Vec<RawFd> = res.listeners.iter().map(|l| l.as_fd().as_raw_fd()).collect();
    if protocol == WorkerProtocol::Herd {
        wanted.push(setup.chan.as_raw_fd());
        if let Err(e) = setup.chan.set_nonblocking(false) {
            return e;
        }
    }
    // The originals stay with this process only (an adopted listener may lack close-on-exec).
    for fd in &wanted {
        // SAFETY: fcntl on a descriptor this process holds.
        unsafe { libc::fcntl(*fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    let floor = FIRST_FD + wanted.len() as RawFd;
    let mut moved = Vec::with_capacity(wanted.len());
    for fd in &wanted {
        // SAFETY: fcntl on a descriptor this process holds; the copy is close-on-exec.
        let copy = unsafe { libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, floor) };
        if copy < 0 {
            return io::Error::last_os_error();
        }
        moved.push(copy);
    }
    for (i, copy) in moved.iter().enumerate() {
        // SAFETY: dup2 onto a number this process reserves for the program; the new descriptor
        // is not close-on-exec, the copy (close-on-exec) goes away at exec.
        if unsafe { libc::dup2(*copy, FIRST_FD + i as RawFd) } < 0 {
            return io::Error::last_os_error();
        }
    }
    let listeners = res.listeners.len();
    let mut env: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(k, _)| {
            let k = k.as_bytes();
            !k.starts_with(b"LISTEN_") && !k.starts_with(b"HERD_") && k != b"NOTIFY_SOCKET"
        })
        .collect();
    let pid = std::process::id();
    let names: Vec<String> = (0..listeners).map(|i| format!("herd{i}")).collect();
    env.push(("LISTEN_FDS".into(), listeners.to_string().into()));
    env.push(("LISTEN_PID".into(), pid.to_string().into()));
    env.push(("LISTEN_FDNAMES".into(), names.join(":").into()));
    env.push(("HERD_WORKER_ID".into(), setup.id.0.to_string().into()));
    if protocol == WorkerProtocol::None && program.readiness_of() == Readiness::Notify {
        env.push(("NOTIFY_SOCKET".into(), ready::address(setup.arbiter.as_raw(), setup.id.0).into()));
    }
    if protocol == WorkerProtocol::Herd {
        let mode = res.config.accept_mode.name();
        env.push(("HERD_FD".into(), (FIRST_FD + listeners as RawFd).to_string().into()));
        env.push(("HERD_ACCEPT_MODE".into(), mode.into()));
        // The heartbeat pace: an ALIVE at least every half of it.
        env.push(("HERD_TIMEOUT".into(), res.config.pace().as_secs_f64().to_string().into()));
        env.push(("HERD_MAX_REQUESTS".into(), setup.max_requests.to_string().into()));
    }
    let cstr =
        |s: &[u8]| CString::new(s).map_err(|_| io::Error::other("a NUL byte in the command or environment"));
    let argv: Result<Vec<CString>, io::Error> = program.args().iter().map(|a| cstr(a.as_bytes())).collect();
    let envp: Result<Vec<CString>, io::Error> =
        env.iter().map(|(k, v)| cstr(&[k.as_bytes(), b"=", v.as_bytes()].concat())).collect();
    let (argv, envp, file) = match (argv, envp, cstr(path.as_os_str().as_bytes())) {
        (Ok(a), Ok(e), Ok(f)) => (a, e, f),
        (Err(e), ..) | (_, Err(e), _) | (.., Err(e)) => return e,
    };
    // Signals as a freshly started program expects them: default dispositions (an ignored
    // signal stays ignored across exec; Rust ignores SIGPIPE), nothing blocked. The parent-death
    // TERM set at fork stays: a program whose arbiter dies is asked to stop.
    for sig in Signal::iterator() {
        if matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        // SAFETY: restoring the default disposition installs no handler.
        let _ = unsafe { nix::sys::signal::signal(sig, SigHandler::SigDfl) };
    }
    // Who it runs as (`--user`, `--group`); before the parent-death signal, which that clears.
    if let Some(who) = &res.identity
        && let Err(e) = who.assume()
    {
        return e;
    }
    // The arbiter's death asks the program to stop, as it would ask it (the setting survives
    // exec); an arbiter already gone leaves nothing to serve for.
    if let Err(e) = nix::sys::prctl::set_pdeathsig(program.graceful()) {
        return e.into();
    }
    if nix::unistd::getppid() != setup.arbiter {
        return io::Error::other("the arbiter exited before the program started");
    }
    if let Err(e) = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None) {
        return e.into();
    }
    match nix::unistd::execve(&file, &argv, &envp) {
        Err(e) => e.into(),
        Ok(never) => match never {},
    }
}
