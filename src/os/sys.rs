//! The process-level plumbing: signal handlers feeding the protocol's [`SignalQueue`], the
//! self-pipe that wakes the loop, signal masks around `fork`, pidfd kills, the monotonic clock.
//!
//! Everything here that a signal handler touches is async-signal-safe: one atomic add on the
//! queue and one `write(2)` of one byte to a non-blocking pipe, with `errno` saved and restored.

use herd_protocol::signals::{Sig, SignalBatch, SignalQueue};
use herd_protocol::time::Instant;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::libc;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal, sigaction, sigprocmask};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, Ordering};

/// The queue the handlers count into. Set once, before any handler is installed.
static QUEUE: OnceLock<SignalQueue> = OnceLock::new();
/// The write end of the current self-pipe, or -1.
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);

fn queue() -> &'static SignalQueue {
    QUEUE.get_or_init(SignalQueue::new)
}

/// The signal handler of the arbiter (and of a worker's TERM): count, then wake the loop.
extern "C" fn on_signal(signo: libc::c_int) {
    let saved = Errno::last_raw();
    if let (Some(q), Some(sig)) = (QUEUE.get(), sig_of(signo)) {
        q.push_and_wake(sig, || {
            let fd = WAKE_FD.load(Ordering::Relaxed);
            if fd >= 0 {
                // SAFETY: write(2) is async-signal-safe; a full pipe (EAGAIN) already means "woken".
                unsafe { libc::write(fd, [1u8].as_ptr().cast(), 1) };
            }
        });
    }
    Errno::set_raw(saved);
}

/// A worker's QUIT and INT: exit now, whatever it is doing (a sync worker may be inside the
/// handler, where no flag would be looked at).
extern "C" fn on_quit(_: libc::c_int) {
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(0) }
}

/// A worker's ABRT (the arbiter's soft kill of a late worker): exit now without a core dump.
extern "C" fn on_abort(_: libc::c_int) {
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(EXIT_ABORTED) }
}

/// Exit code of a worker that took SIGABRT (128 + 6, as a shell reports it).
pub const EXIT_ABORTED: i32 = 134;
/// Exit code of a worker whose request used up its CPU limit (128 + SIGXCPU).
pub const EXIT_CPU: i32 = 152;

/// A cron worker's fence (its job reached the end of its lease's safe part): exit now.
extern "C" fn on_fence(_: libc::c_int) {
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(herd_protocol::cron::EXIT_FENCED) }
}

/// A cron job's fence ([`herd_protocol::cron::Timer::Fence`]): SIGALRM on the monotonic clock
/// after the given time, whose handler ends the process with
/// [`herd_protocol::cron::EXIT_FENCED`] however the job is blocked; disarmed when dropped.
pub struct Fence(#[allow(dead_code)] nix::sys::timer::Timer);

impl Fence {
    /// Arms it `after` from now (at once if zero).
    pub fn arm(after: std::time::Duration) -> io::Result<Fence> {
        use nix::sys::signal::{SigEvent, SigevNotify};
        use nix::sys::timer::{Expiration, Timer, TimerSetTimeFlags};
        let event = SigEvent::new(SigevNotify::SigevSignal { signal: Signal::SIGALRM, si_value: 0 });
        let mut timer = Timer::new(nix::time::ClockId::CLOCK_MONOTONIC, event)?;
        // A zero expiration would disarm it.
        let after = after.max(std::time::Duration::from_nanos(1));
        timer.set(
            Expiration::OneShot(nix::sys::time::TimeSpec::from_duration(after)),
            TimerSetTimeFlags::empty(),
        )?;
        Ok(Fence(timer))
    }
}

/// A worker's XCPU (`--limit-cpu` reached): exit now.
extern "C" fn on_xcpu(_: libc::c_int) {
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(EXIT_CPU) }
}

fn sig_of(signo: libc::c_int) -> Option<Sig> {
    Some(match Signal::try_from(signo).ok()? {
        Signal::SIGCHLD => Sig::Chld,
        Signal::SIGUSR1 => Sig::Usr1,
        Signal::SIGTTIN => Sig::Ttin,
        Signal::SIGTTOU => Sig::Ttou,
        Signal::SIGWINCH => Sig::Winch,
        Signal::SIGHUP => Sig::Hup,
        Signal::SIGUSR2 => Sig::Usr2,
        Signal::SIGTERM => Sig::Term,
        Signal::SIGINT => Sig::Int,
        Signal::SIGQUIT => Sig::Quit,
        _ => return None,
    })
}

/// The self-pipe: handlers write a byte, the loop sleeps on the read end.
#[derive(Debug)]
pub struct WakePipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl WakePipe {
    /// A new non-blocking, close-on-exec pipe, made the target of the handlers.
    pub fn install() -> io::Result<WakePipe> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)?;
        WAKE_FD.store(write.as_raw_fd(), Ordering::Relaxed);
        Ok(WakePipe { read, write })
    }

    /// The end to poll for readability.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }

    /// Takes the signal counters without reading the self-pipe: for a loop point at which the
    /// wait did not report the pipe readable (reading it would only fail with EAGAIN). A byte the
    /// pipe may hold makes the next wait return at once, and that loop point [`Self::drain`]s it:
    /// no signal is lost, and none sleeps.
    pub fn take(&self) -> SignalBatch {
        queue().drain()
    }

    /// The loop's half of the wakeup contract: drain the pipe, then take the counters.
    pub fn drain(&self) -> SignalBatch {
        queue().drain_woken(|| {
            let mut buf = [0u8; 64];
            while matches!(nix::unistd::read(&self.read, &mut buf), Ok(n) if n > 0) {}
        })
    }
}

impl Drop for WakePipe {
    fn drop(&mut self) {
        // Handlers must not write to a closed (and maybe reused) descriptor.
        let _ = WAKE_FD.compare_exchange(self.write.as_raw_fd(), -1, Ordering::Relaxed, Ordering::Relaxed);
    }
}

/// The signals the arbiter acts on.
const ARBITER_SIGNALS: [Signal; 10] = [
    Signal::SIGCHLD,
    Signal::SIGUSR1,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
    Signal::SIGWINCH,
    Signal::SIGHUP,
    Signal::SIGUSR2,
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGQUIT,
];

fn set(signal: Signal, handler: SigHandler) -> io::Result<()> {
    let flags = SaFlags::SA_RESTART
        | if signal == Signal::SIGCHLD { SaFlags::SA_NOCLDSTOP } else { SaFlags::empty() };
    let action = SigAction::new(handler, flags, SigSet::empty());
    // SAFETY: the handlers only touch atomics and async-signal-safe calls.
    unsafe { sigaction(signal, &action) }?;
    Ok(())
}

/// Installs the arbiter's handlers (all of [`Sig`]) and ignores SIGPIPE.
pub fn install_arbiter_handlers() -> io::Result<()> {
    queue();
    for s in ARBITER_SIGNALS {
        set(s, SigHandler::Handler(on_signal))?;
    }
    set(Signal::SIGPIPE, SigHandler::SigIgn)
}

/// In a freshly forked worker, with every signal still blocked: forget the arbiter's pending
/// counts, and install the worker's dispositions (TERM counted and woken; QUIT, INT exit at once;
/// ABRT exits without a core; CHLD default; the arbiter's other signals and PIPE ignored).
pub fn install_worker_handlers() -> io::Result<()> {
    let _ = queue().drain();
    for s in ARBITER_SIGNALS {
        let h = match s {
            Signal::SIGTERM => SigHandler::Handler(on_signal),
            Signal::SIGINT | Signal::SIGQUIT => SigHandler::Handler(on_quit),
            Signal::SIGCHLD => SigHandler::SigDfl,
            // Relayed by the arbiter after a log rotation.
            Signal::SIGUSR1 => SigHandler::Handler(crate::os::logfile::on_reopen),
            _ => SigHandler::SigIgn,
        };
        set(s, h)?;
    }
    set(Signal::SIGABRT, SigHandler::Handler(on_abort))?;
    set(Signal::SIGXCPU, SigHandler::Handler(on_xcpu))?;
    set(Signal::SIGALRM, SigHandler::Handler(on_fence))?;
    set(Signal::SIGPIPE, SigHandler::SigIgn)
}

/// Blocks every signal; the returned guard's [`Blocked::restore`] puts the old mask back. Used
/// around `fork` so that no signal runs the arbiter's handler in the child before the child has
/// installed its own (gunicorn #1910): signals sent meanwhile stay pending, none is lost.
pub struct Blocked {
    old: SigSet,
}

impl Blocked {
    /// Blocks all signals.
    pub fn all() -> io::Result<Blocked> {
        let mut old = SigSet::empty();
        sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::all()), Some(&mut old))?;
        Ok(Blocked { old })
    }

    /// Restores the mask from before [`Blocked::all`].
    pub fn restore(self) -> io::Result<()> {
        sigprocmask(SigmaskHow::SIG_SETMASK, Some(&self.old), None)?;
        Ok(())
    }
}

/// Unblocks every signal (an arbiter started by an upgrade begins with all of them blocked).
pub fn unblock_all() -> io::Result<()> {
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)?;
    Ok(())
}

/// The monotonic clock, as the cores' [`Instant`]: nanoseconds since this clock was made.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin: std::time::Instant,
}

impl Clock {
    /// A clock whose origin is now.
    pub fn new() -> Clock {
        Clock { origin: std::time::Instant::now() }
    }

    /// Now.
    pub fn now(&self) -> Instant {
        Instant(u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    /// How long to block for a deadline `at`, at most `cap` milliseconds, read from one reading of
    /// the clock: now, and the whole milliseconds (rounded up, so a wait never ends before `at`)
    /// with the instant the wait ends at (`None`: wait for an event alone).
    pub fn wait_for(&self, at: Option<Instant>, cap: Option<u64>) -> (Instant, Option<(u64, Instant)>) {
        let now = self.now();
        let ms = match (at, cap) {
            (None, None) => return (now, None),
            (Some(at), cap) => at.0.saturating_sub(now.0).div_ceil(1_000_000).min(cap.unwrap_or(u64::MAX)),
            (None, Some(cap)) => cap,
        };
        (now, Some((ms, now + std::time::Duration::from_millis(ms))))
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// Converts a nix error into an io error.
pub fn io_err(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// Whether this process has a controlling terminal (it runs in the foreground of a terminal, a
/// `docker run -t`, a tmux pane): `/dev/tty` opens only then.
pub fn has_terminal() -> bool {
    std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty").is_ok()
}

/// How many threads this process runs (`/proc/self/task`).
pub fn threads() -> io::Result<usize> {
    Ok(std::fs::read_dir("/proc/self/task")?.count())
}
