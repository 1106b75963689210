//! The PostgreSQL registry store: Odoo's two signaling sequences, read before every request in
//! one round trip, bumped with `nextval` after the change they signal is committed. Processes on
//! several hosts that share one database see each other's changes.
//!
//! Each process opens its own connection, lazily, after fork (a connection is never shared
//! across `fork`). A lost connection is reopened on the next call; while the database is away,
//! every call fails with [`StoreError::Unavailable`] and requests are refused (never served on a
//! registry that may be stale).

use crate::store::error::{StoreError, redact};
use herd_protocol::registry::{Bump, Sequences};
use postgres::{Client, NoTls, Statement};
use std::cell::RefCell;
use std::time::Duration;

/// The sequence bumped when the registry changed (Odoo's name).
pub const REGISTRY_SEQUENCE: &str = "base_registry_signaling";
/// The sequence bumped when caches were invalidated (Odoo's name).
pub const CACHE_SEQUENCE: &str = "base_cache_signaling";

const READ: &str = "SELECT r.last_value, c.last_value FROM base_registry_signaling r, base_cache_signaling c";

/// A connection (opened on demand) to the database holding the sequences.
pub struct PgStore {
    config: postgres::Config,
    url: String,
    client: RefCell<Option<Conn>>,
}

/// A connection and its prepared statements (so that a read is one round trip, not two).
struct Conn {
    client: Client,
    read: Statement,
    bump_registry: Statement,
    bump_cache: Statement,
}

impl Conn {
    fn open(config: &postgres::Config) -> Result<Conn, postgres::Error> {
        let mut client = config.connect(NoTls)?;
        let read = client.prepare(READ)?;
        let bump_registry = client.prepare(
            "SELECT nextval('base_registry_signaling'), (SELECT last_value FROM base_cache_signaling)",
        )?;
        let bump_cache = client.prepare(
            "SELECT (SELECT last_value FROM base_registry_signaling), nextval('base_cache_signaling')",
        )?;
        Ok(Conn { client, read, bump_registry, bump_cache })
    }
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").field("url", &redact(&self.url)).finish_non_exhaustive()
    }
}

/// Why the store could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgSetupError {
    /// Not a PostgreSQL URL or connection string.
    #[error("bad registry store URL {url}: {reason}")]
    BadUrl {
        /// The URL, password hidden.
        url: String,
        /// Why.
        reason: String,
    },
    /// The database could not be reached or refused the setup.
    #[error("registry store {url}: {reason}")]
    Database {
        /// The URL, password hidden.
        url: String,
        /// Why.
        reason: String,
    },
}

impl PgStore {
    /// Parses `url`, connects once to check it, creates the two sequences if missing (under an
    /// advisory lock, so that arbiters starting together on several hosts create them once), and
    /// closes the connection again: workers open their own.
    pub fn setup(url: &str) -> Result<PgStore, PgSetupError> {
        let config = parse(url)?;
        let store = PgStore { config, url: url.to_owned(), client: RefCell::new(None) };
        let db = |e: postgres::Error| PgSetupError::Database { url: redact(url), reason: describe(&e) };
        let mut client = store.config.connect(NoTls).map_err(db)?;
        let mut tx = client.transaction().map_err(db)?;
        tx.execute("SELECT pg_advisory_xact_lock(hashtext('herd registry signaling'))", &[]).map_err(db)?;
        for seq in [REGISTRY_SEQUENCE, CACHE_SEQUENCE] {
            let exists: bool =
                tx.query_one("SELECT to_regclass($1) IS NOT NULL", &[&seq]).map_err(db)?.get(0);
            if !exists {
                // As Odoo does: created, then advanced once, so that last_value moves on every
                // later nextval.
                tx.batch_execute(&format!(
                    "CREATE SEQUENCE {seq} INCREMENT BY 1 START WITH 1; SELECT nextval('{seq}');"
                ))
                .map_err(db)?;
            }
        }
        tx.commit().map_err(db)?;
        Ok(store)
    }

    /// The URL, password hidden.
    pub fn url(&self) -> String {
        redact(&self.url)
    }

    /// The URL as given (for the cron table, kept in the same database).
    pub(crate) fn raw_url(&self) -> &str {
        &self.url
    }

    /// Drops this process's connection (before fork; workers open their own).
    pub fn disconnect(&self) {
        self.client.borrow_mut().take();
    }

    fn with_conn(
        &self,
        f: impl FnOnce(&mut Conn) -> Result<Sequences, postgres::Error>,
    ) -> Result<Sequences, StoreError> {
        with_lazy(&self.client, |c| &c.client, || Conn::open(&self.config), f)
    }

    /// The current sequences: one round trip.
    pub fn get(&self) -> Result<Sequences, StoreError> {
        self.with_conn(|c| {
            let row = c.client.query_one(&c.read, &[])?;
            Ok(Sequences { registry: row.get::<_, i64>(0) as u64, cache: row.get::<_, i64>(1) as u64 })
        })
    }

    /// Bumps one sequence (call after the change it signals is committed); the sequences right
    /// after.
    pub fn bump(&self, what: Bump) -> Result<Sequences, StoreError> {
        self.with_conn(|c| {
            let stmt = match what {
                Bump::Registry => &c.bump_registry,
                Bump::Cache => &c.bump_cache,
            };
            let row = c.client.query_one(stmt, &[])?;
            Ok(Sequences { registry: row.get::<_, i64>(0) as u64, cache: row.get::<_, i64>(1) as u64 })
        })
    }
}

/// `host:pid` of this process.
pub(crate) fn holder() -> String {
    format!("{}:{}", nix::unistd::gethostname().unwrap_or_default().to_string_lossy(), std::process::id())
}

/// Parses a store URL; connections time out after 2 s unless it says otherwise.
pub(crate) fn parse(url: &str) -> Result<postgres::Config, PgSetupError> {
    let mut config: postgres::Config = url
        .parse()
        .map_err(|e: postgres::Error| PgSetupError::BadUrl { url: redact(url), reason: e.to_string() })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(2));
    }
    Ok(config)
}

/// Runs `f` on this process's connection in `slot`, opening it first if there is none or it
/// closed; a failure drops it, so the next call reconnects (the database may have restarted).
pub(crate) fn with_lazy<C, R>(
    slot: &RefCell<Option<C>>,
    client: impl Fn(&C) -> &Client,
    open: impl FnOnce() -> Result<C, postgres::Error>,
    f: impl FnOnce(&mut C) -> Result<R, postgres::Error>,
) -> Result<R, StoreError> {
    let mut slot = slot.borrow_mut();
    if slot.as_ref().is_none_or(|c| client(c).is_closed()) {
        *slot = None;
        *slot = Some(open().map_err(|e| StoreError::Unavailable(describe(&e)))?);
    }
    let conn = slot.as_mut().expect("connected above");
    f(conn).map_err(|e| {
        *slot = None;
        StoreError::Unavailable(describe(&e))
    })
}

/// The error with its cause (postgres's Display alone often says only "db error").
pub(crate) fn describe(e: &postgres::Error) -> String {
    let mut s = e.to_string();
    if let Some(db) = e.as_db_error() {
        s = format!("{}: {}", db.severity(), db.message());
    } else if let Some(src) = std::error::Error::source(e) {
        s = format!("{s}: {src}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_url_is_a_clear_error() {
        let e = PgStore::setup("postgres://herd@:notaport/x").unwrap_err();
        assert!(matches!(e, PgSetupError::BadUrl { .. }), "{e}");
    }
}
