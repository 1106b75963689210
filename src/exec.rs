//! Supervising a program herd did not link (`herd serve [flags] -- COMMAND [ARGS...]`): each
//! worker is forked as usual, then executes the program with the listeners passed the systemd
//! way (`LISTEN_FDS`, `LISTEN_PID`, `LISTEN_FDNAMES`, descriptors from 3). The arbiter is the
//! same as for Rust workers: the stable supervisor, pidfd kills (never a recycled pid), USR2
//! upgrades, `herd ctl` (docs/operations.md, "Any server under herd").

use crate::error::Error;
use herd_protocol::arbiter::{AcceptMode, Config};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// How an executed program talks to herd.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum WorkerProtocol {
    /// The program speaks herd's wire protocol (docs/protocol.md) on the descriptor that
    /// `HERD_FD` names: heartbeats, accepts when told to, `BYE` with its reason. Everything of
    /// herd's own workers applies: the timeout kill, signaled and auto accept, `--max-requests`.
    #[default]
    Herd,
    /// The program knows nothing of herd: any server that can listen on an inherited descriptor.
    /// Shared accept only, no heartbeat (so no timeout: liveness is the process's), ready as
    /// [`Readiness`] says.
    None,
}

/// When a program that knows nothing of herd ([`WorkerProtocol::None`]) counts as ready: a HUP
/// retires old workers as their replacements are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Readiness {
    /// Once it has run a second after it was executed (one that dies sooner is a boot failure,
    /// respawned with backoff).
    #[default]
    Exec,
    /// When it says `READY=1` on the socket `NOTIFY_SOCKET` names, as to systemd (`sd_notify`;
    /// believed only from the worker's own pid).
    Notify,
}

/// A program for the workers to execute, and how herd talks to it.
#[derive(Clone, Debug)]
pub struct Program {
    command: Vec<OsString>,
    protocol: WorkerProtocol,
    readiness: Readiness,
    graceful: nix::sys::signal::Signal,
}

impl Program {
    /// The command (its first word is the program, found in `PATH` unless it holds a `/`) and
    /// its arguments, run as they are: no shell is involved.
    pub fn new<S: Into<OsString>>(command: impl IntoIterator<Item = S>) -> Program {
        Program {
            command: command.into_iter().map(Into::into).collect(),
            protocol: WorkerProtocol::default(),
            readiness: Readiness::default(),
            graceful: nix::sys::signal::Signal::SIGTERM,
        }
    }

    /// How the program talks to herd (default: [`WorkerProtocol::Herd`]).
    pub fn protocol(mut self, protocol: WorkerProtocol) -> Program {
        self.protocol = protocol;
        self
    }

    /// When a program of [`WorkerProtocol::None`] counts as ready (default: [`Readiness::Exec`]).
    pub fn readiness(mut self, readiness: Readiness) -> Program {
        self.readiness = readiness;
        self
    }

    pub(crate) fn readiness_of(&self) -> Readiness {
        self.readiness
    }

    /// The signal that asks a worker to finish its requests and exit, where herd's own workers
    /// get TERM (default: TERM); the fast stop is QUIT, then KILL.
    pub fn graceful_signal(mut self, signal: nix::sys::signal::Signal) -> Program {
        self.graceful = signal;
        self
    }

    pub(crate) fn protocol_of(&self) -> WorkerProtocol {
        self.protocol
    }

    pub(crate) fn graceful(&self) -> nix::sys::signal::Signal {
        self.graceful
    }

    pub(crate) fn args(&self) -> &[OsString] {
        &self.command
    }

    /// The program's path, found and checked before any worker is forked: a program that cannot
    /// be executed is one clear error, not a respawn storm.
    pub(crate) fn resolve(&self) -> Result<PathBuf, Error> {
        let Some(first) = self.command.first() else {
            return Err(Error::Program { path: PathBuf::new(), why: "no command given".into() });
        };
        let name = Path::new(first);
        let found = if first.as_encoded_bytes().contains(&b'/') {
            Some(name.to_path_buf())
        } else {
            std::env::var_os("PATH")
                .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(name)).find(|p| p.is_file()))
        };
        let Some(path) = found else {
            return Err(Error::Program { path: name.into(), why: "not found in PATH".into() });
        };
        let meta = std::fs::metadata(&path)
            .map_err(|e| Error::Program { path: path.clone(), why: e.to_string() })?;
        if !meta.is_file() {
            return Err(Error::Program { path, why: "not a file".into() });
        }
        nix::unistd::access(&path, nix::unistd::AccessFlags::X_OK)
            .map_err(|e| Error::Program { path: path.clone(), why: std::io::Error::from(e).to_string() })?;
        Ok(path)
    }

    /// What a program that does not speak the protocol cannot do, named.
    pub(crate) fn check(&self, config: &Config) -> Result<(), Error> {
        let refuse =
            |why: &str| Err(Error::Program { path: self.command[0].clone().into(), why: why.into() });
        if config.cron_workers > 0 {
            return refuse("cron workers run a Rust application's jobs, not a program's (no --cron-workers)");
        }
        if self.protocol == WorkerProtocol::Herd && self.readiness == Readiness::Notify {
            return refuse(
                "--worker-ready notify: a worker of the protocol is ready at its first frame (--worker-protocol none)",
            );
        }
        if self.protocol == WorkerProtocol::None {
            if config.accept_mode != AcceptMode::Shared {
                return refuse(
                    "--worker-protocol none: the program accepts on the shared listeners itself \
                     (--accept-mode shared); signaled and auto accept need the protocol",
                );
            }
            if config.max_requests > 0 || config.max_requests_jitter > 0 {
                return refuse(
                    "--worker-protocol none: the program does not count its requests (no --max-requests)",
                );
            }
            if config.timeout.is_some() {
                return refuse(
                    "--worker-protocol none: the program sends no heartbeats, so no timeout can apply \
                     (--timeout 0)",
                );
            }
        }
        Ok(())
    }
}
