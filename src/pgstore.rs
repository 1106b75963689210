//! The PostgreSQL registry store: Odoo's two signaling sequences, read before every request in
//! one round trip, bumped with `nextval` after the change they signal is committed. Processes on
//! several hosts that share one database see each other's changes.
//!
//! Each process opens its own connection, lazily, after fork (a connection is never shared
//! across `fork`). A lost connection is reopened on the next call; while the database is away,
//! every call fails with [`StoreError::Unavailable`] and requests are refused (never served on a
//! registry that may be stale).

use crate::store::{StoreError, redact};
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

/// The cron job table in PostgreSQL (see [`crate::cron`]): one row per job name, shared by every
/// arbiter on the database. Each cron worker opens its own connection after fork; claims take the
/// due row with `FOR NO KEY UPDATE SKIP LOCKED` (Odoo's way) and set its lease and fencing token in
/// the same statement; time is the database's clock.
pub struct PgJobs {
    config: postgres::Config,
    url: String,
    names: Vec<String>,
    /// `host:pid` of this handle's process, recorded with each lease.
    holder: String,
    client: RefCell<Option<JobsConn>>,
}

struct JobsConn {
    client: Client,
    claim: Statement,
    next: Statement,
    finish: Statement,
}

const CLAIM: &str = "WITH due AS (
    SELECT name FROM herd_cron
    WHERE name = ANY($1) AND next_call <= clock_timestamp()
      AND (lease_until IS NULL OR lease_until <= clock_timestamp())
    ORDER BY next_call, name LIMIT 1
    FOR NO KEY UPDATE SKIP LOCKED)
UPDATE herd_cron c SET token = c.token + 1, holder = $2,
    lease_until = clock_timestamp() + $3::bigint * interval '1 microsecond'
FROM due WHERE c.name = due.name
RETURNING c.name, c.token, (extract(epoch FROM c.next_call) * 1e6)::bigint,
    (extract(epoch FROM c.lease_until) * 1e6)::bigint";

const NEXT: &str = "SELECT (extract(epoch FROM min(greatest(next_call, coalesce(lease_until, next_call)))
    - clock_timestamp()) * 1e6)::bigint FROM herd_cron WHERE name = ANY($1)";

// next_call moves past now by whole intervals (missed runs fold into one), as Table::finish.
const FINISH: &str = "UPDATE herd_cron SET lease_until = NULL, holder = NULL, runs = runs + 1,
    failures = failures + $3::bigint,
    next_call = next_call + interval_us * greatest(1, floor(extract(epoch FROM clock_timestamp() - next_call)
        * 1e6 / interval_us) + 1) * interval '1 microsecond'
WHERE name = $1 AND token = $2 AND lease_until IS NOT NULL";

impl std::fmt::Debug for PgJobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgJobs")
            .field("url", &redact(&self.url))
            .field("jobs", &self.names)
            .finish_non_exhaustive()
    }
}

impl PgJobs {
    /// Creates the table if missing and adds the jobs not yet in it (first due now); a job
    /// already there keeps its schedule and takes the new interval.
    pub fn setup(url: &str, jobs: &[crate::cron::CronJob]) -> Result<PgJobs, PgSetupError> {
        let config = parse(url)?;
        let db = |e: postgres::Error| PgSetupError::Database { url: redact(url), reason: describe(&e) };
        let mut client = config.connect(NoTls).map_err(db)?;
        let mut tx = client.transaction().map_err(db)?;
        tx.execute("SELECT pg_advisory_xact_lock(hashtext('herd cron'))", &[]).map_err(db)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS herd_cron (
                name text PRIMARY KEY,
                interval_us bigint NOT NULL CHECK (interval_us > 0),
                next_call timestamptz NOT NULL,
                token bigint NOT NULL DEFAULT 0,
                holder text,
                lease_until timestamptz,
                runs bigint NOT NULL DEFAULT 0,
                failures bigint NOT NULL DEFAULT 0)",
        )
        .map_err(db)?;
        for j in jobs {
            let us = i64::try_from(j.interval.as_micros()).unwrap_or(i64::MAX).max(1);
            tx.execute(
                "INSERT INTO herd_cron (name, interval_us, next_call) VALUES ($1, $2, clock_timestamp())
                 ON CONFLICT (name) DO UPDATE SET interval_us = EXCLUDED.interval_us",
                &[&j.name, &us],
            )
            .map_err(db)?;
        }
        tx.commit().map_err(db)?;
        Ok(PgJobs {
            config,
            url: url.to_owned(),
            names: jobs.iter().map(|j| j.name.clone()).collect(),
            holder: holder(),
            client: RefCell::new(None),
        })
    }

    /// The same store, not connected, for this process (a forked cron worker).
    pub fn fresh(&self) -> PgJobs {
        PgJobs {
            config: self.config.clone(),
            url: self.url.clone(),
            names: self.names.clone(),
            holder: holder(),
            client: RefCell::new(None),
        }
    }

    fn with_conn<R>(
        &self,
        f: impl FnOnce(&mut JobsConn) -> Result<R, postgres::Error>,
    ) -> Result<R, StoreError> {
        let open = || -> Result<JobsConn, postgres::Error> {
            let mut client = self.config.connect(NoTls)?;
            let claim = client.prepare(CLAIM)?;
            let next = client.prepare(NEXT)?;
            let finish = client.prepare(FINISH)?;
            Ok(JobsConn { client, claim, next, finish })
        };
        with_lazy(&self.client, |c| &c.client, open, f)
    }

    /// Claims a due job of this server's: the claim, or how long until something may be due.
    pub fn claim(
        &self,
        lease: Duration,
    ) -> Result<(Option<herd_protocol::cron::Claim>, Option<Duration>), StoreError> {
        use herd_protocol::cron::{Claim, JobId};
        use herd_protocol::time::Instant;
        let lease_us = i64::try_from(lease.as_micros()).unwrap_or(i64::MAX);
        let us = |v: i64| Instant(u64::try_from(v).unwrap_or(0).saturating_mul(1_000));
        self.with_conn(|c| {
            if let Some(row) = c.client.query_opt(&c.claim, &[&self.names, &self.holder, &lease_us])? {
                let name: String = row.get(0);
                let job = self.names.iter().position(|n| *n == name).unwrap_or(usize::MAX);
                let claim = Claim {
                    job: JobId(u32::try_from(job).unwrap_or(u32::MAX)),
                    token: row.get::<_, i64>(1) as u64,
                    slot: us(row.get(2)),
                    until: us(row.get(3)),
                };
                return Ok((Some(claim), None));
            }
            let next: Option<i64> = c.client.query_one(&c.next, &[&self.names])?.get(0);
            Ok((None, next.map(|v| Duration::from_micros(u64::try_from(v).unwrap_or(0)))))
        })
    }

    /// Records a run; `Ok(false)` if the token is stale.
    pub fn finish(&self, claim: &herd_protocol::cron::Claim, ok: bool) -> Result<bool, StoreError> {
        let name = self.names.get(claim.job.0 as usize).cloned().unwrap_or_default();
        let token = claim.token as i64;
        let failed: i64 = if ok { 0 } else { 1 };
        self.with_conn(|c| Ok(c.client.execute(&c.finish, &[&name, &token, &failed])? == 1))
    }

    /// This server's rows (times in microseconds of the epoch, as nanoseconds).
    pub fn jobs(&self) -> Result<Vec<herd_protocol::cron::Job>, StoreError> {
        use herd_protocol::time::Instant;
        let us = |v: i64| Instant(u64::try_from(v).unwrap_or(0).saturating_mul(1_000));
        self.with_conn(|c| {
            let mut out = Vec::new();
            for name in &self.names {
                let row = c.client.query_one(
                    "SELECT interval_us, (extract(epoch FROM next_call) * 1e6)::bigint, token, holder,
                        (extract(epoch FROM lease_until) * 1e6)::bigint, runs, failures
                     FROM herd_cron WHERE name = $1",
                    &[name],
                )?;
                let until: Option<i64> = row.get(4);
                out.push(herd_protocol::cron::Job {
                    interval: Duration::from_micros(row.get::<_, i64>(0) as u64),
                    next_call: us(row.get(1)),
                    token: row.get::<_, i64>(2) as u64,
                    lease: until.map(|u| (0, us(u))),
                    runs: row.get::<_, i64>(5) as u64,
                    failures: row.get::<_, i64>(6) as u64,
                });
            }
            Ok(out)
        })
    }
}

/// `host:pid` of this process.
fn holder() -> String {
    format!("{}:{}", nix::unistd::gethostname().unwrap_or_default().to_string_lossy(), std::process::id())
}

/// Parses a store URL; connections time out after 2 s unless it says otherwise.
fn parse(url: &str) -> Result<postgres::Config, PgSetupError> {
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
fn with_lazy<C, R>(
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
fn describe(e: &postgres::Error) -> String {
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
