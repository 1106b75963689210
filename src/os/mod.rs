//! The operating system as herd uses it: signals and the self-pipe, listening sockets, the
//! pidfile, readiness notifications, shared memory and the scoreboard in it. Nothing here knows
//! the protocol's cores or the server above it.

pub(crate) mod identity;
pub(crate) mod listen;
pub(crate) mod logfile;
pub(crate) mod notify;
pub(crate) mod pidfile;
pub(crate) mod ready;
pub(crate) mod scoreboard;
pub(crate) mod shm;
pub(crate) mod sys;
