//! What an application gives herd: the [`App`] trait, and the [`Context`] a request runs in.

use crate::cron::JobRun;
use crate::os::listen::Connection;
use crate::store::{Store, StoreError};
use herd_protocol::arbiter::WorkerId;
use herd_protocol::registry::{Registry, SequenceStore, Sequences};
use std::io;
use std::os::unix::net::UnixStream;

/// An application served by herd's workers.
///
/// `load` builds the per-process registry (whatever must be rebuilt when another process changes
/// it); herd calls it in each worker after fork and again before any request that finds the shared
/// registry sequence moved. `handle` serves one accepted connection.
pub trait App {
    /// The per-process registry; `()` if the application has none.
    type Registry;

    /// Builds the registry as of the sequences `as_of` (read before this call began).
    fn load(&self, as_of: Sequences) -> Self::Registry;

    /// Clears caches after another process invalidated them (the registry itself stays).
    fn clear_caches(&self, _registry: &mut Self::Registry) {}

    /// Serves one connection.
    fn handle(&mut self, ctx: &mut Context<'_, Self::Registry>, conn: Connection);

    /// The registry store could not be read before a request: answer `conn` with a clean failure
    /// (the request must not run on a registry that may be stale). The default closes it.
    fn unavailable(&mut self, _conn: Connection, _error: &StoreError) {}

    /// Runs one scheduled job in a cron worker (`--cron-workers`, `--cron-job`). An error or a
    /// panic records the run as failed (it runs again at its next time); a job that outlasts the
    /// timeout is killed with its worker and retried once its lease ends. The default has no jobs.
    fn run_job(&mut self, job: &JobRun<'_>) -> Result<(), String> {
        Err(format!("this application runs no cron job (asked for {:?})", job.name))
    }
}

/// The per-process registry of an async application (`Server::run_async_with`,
/// `Server::run_service_with`): what [`App::load`] and [`App::clear_caches`] are to a sync one.
///
/// Requests on an async worker run concurrently, so the registry is shared, not borrowed: each
/// request gets the registry object current when it began (an `Arc`). Before every request the
/// worker reads the shared sequences; when another process (or this one) bumped the registry, it
/// loads a new object and later requests get that one, while requests already under way finish
/// on theirs. `load` runs on the worker's event loop: a slow load delays its other connections.
///
/// ```
/// use herd::protocol::registry::Sequences;
///
/// struct Modules;
/// struct Installed { as_of: u64 }
///
/// impl herd::RegistryLoader for Modules {
///     type Registry = Installed;
///     fn load(&self, as_of: Sequences) -> Installed {
///         Installed { as_of: as_of.registry } // read the installed modules here
///     }
/// }
/// ```
#[cfg(feature = "async")]
pub trait RegistryLoader: 'static {
    /// The registry object; `()` if the application has none.
    type Registry: Send + Sync + 'static;

    /// Builds the registry as of the sequences `as_of` (read before this call began).
    fn load(&self, as_of: Sequences) -> Self::Registry;

    /// Clears caches after another process invalidated them (the registry object stays; its
    /// caches live behind interior mutability).
    fn clear_caches(&self, _registry: &Self::Registry) {}
}

/// No registry.
#[cfg(feature = "async")]
impl RegistryLoader for () {
    type Registry = ();
    fn load(&self, _: Sequences) {}
}

/// An [`App`] made of a closure, with no registry.
#[derive(Debug)]
pub struct FnApp<F>(pub F);

impl<F: FnMut(&mut Context<'_, ()>, Connection)> App for FnApp<F> {
    type Registry = ();
    fn load(&self, _: Sequences) {}
    fn handle(&mut self, ctx: &mut Context<'_, ()>, conn: Connection) {
        (self.0)(ctx, conn)
    }
}

/// What a request handler can see and do besides its connection.
pub struct Context<'a, R> {
    pub(crate) worker: WorkerId,
    pub(crate) generation: u32,
    pub(crate) requests: u64,
    pub(crate) registry: &'a mut Registry<R>,
    pub(crate) store: &'a Store,
    pub(crate) chan: &'a UnixStream,
    pub(crate) access: Option<&'a crate::access::AccessWriter>,
}

impl<R> Context<'_, R> {
    /// The arbiter's id for this worker (never reused).
    pub fn worker_id(&self) -> u64 {
        self.worker.0
    }

    /// The worker's generation (bumped by each reload).
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// Requests this worker served before this one.
    pub fn requests_served(&self) -> u64 {
        self.requests
    }

    /// The sequences this request's registry is as new as.
    pub fn sequences(&self) -> Sequences {
        self.registry.coherence().seen()
    }

    /// The registry, checked against the shared sequences before this request.
    pub fn registry(&mut self) -> &mut R {
        self.registry.checked()
    }

    /// Changes the registry and signals the change to every process: applies `f` to this
    /// process's registry, then bumps the shared registry sequence. Returns the sequences right
    /// after the bump: every request that starts after this returns runs on a registry at least
    /// that new.
    pub fn change_registry(&mut self, f: impl FnOnce(&mut R)) -> Result<Sequences, StoreError> {
        self.registry.change(f);
        self.commit()
    }

    /// Signals that caches were invalidated: every process clears its caches before its next
    /// request.
    pub fn invalidate_caches(&mut self) -> Result<Sequences, StoreError> {
        self.registry.coherence_mut().invalidate_cache();
        self.commit()
    }

    fn commit(&mut self) -> Result<Sequences, StoreError> {
        match self.registry.coherence_mut().commit() {
            Some(what) => {
                let after = self.store.bump(what)?;
                self.registry.coherence_mut().bumped(what, after);
                Ok(after)
            }
            None => self.store.get(),
        }
    }

    /// Whether the server keeps an access log (`--access-logfile`).
    pub fn access_log_on(&self) -> bool {
        self.access.is_some()
    }

    /// Reports an answered request to the access log, if the server keeps one (an application
    /// with its own HTTP layer calls this once it has answered; the built-in async layer does
    /// it itself).
    pub fn log_access(&self, entry: &crate::access::Entry<'_>) {
        if let Some(a) = self.access {
            a.log(entry);
        }
    }

    /// Writes raw bytes to the arbiter's pipe, bypassing the protocol. Exists only so that tests
    /// can make a worker misbehave; the arbiter kills a worker that sends anything malformed.
    #[doc(hidden)]
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        use std::io::Write;
        let mut c = self.chan;
        c.write_all(bytes)
    }
}
