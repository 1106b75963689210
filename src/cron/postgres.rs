//! The cron job table in PostgreSQL.

use crate::cron::job::CronJob;
use crate::store::postgres::{PgSetupError, describe, holder, parse, with_lazy};
use crate::store::{StoreError, redact};
use postgres::{Client, NoTls, Statement};
use std::cell::RefCell;
use std::time::Duration;

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
    pub fn setup(url: &str, jobs: &[CronJob]) -> Result<PgJobs, PgSetupError> {
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
