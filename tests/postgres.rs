//! The PostgreSQL registry store on a real PostgreSQL (no mocks): two arbiters standing for two
//! hosts share one database; the database restarts mid-run.
//!
//! Needs `HERD_TEST_PG_URL` and `HERD_TEST_PG_CTL` (`scripts/pg-test-cluster.sh start DIR` prints
//! them; `.ci/run` sets them). Without them the tests fail under CI and are skipped loudly
//! elsewhere.
#![cfg(all(feature = "postgres", feature = "cli"))]

mod common;

use common::{Herd, check_cron_runs, cron_runs, get_ok, http};
use std::sync::Mutex;
use std::time::Duration;

/// The restart test stops the whole cluster: no other test of this file may run meanwhile.
static CLUSTER: Mutex<()> = Mutex::new(());

struct Pg {
    url: String,
    ctl: String,
}

fn pg() -> Option<Pg> {
    match (std::env::var("HERD_TEST_PG_URL"), std::env::var("HERD_TEST_PG_CTL")) {
        (Ok(url), Ok(ctl)) => Some(Pg { url, ctl }),
        _ if std::env::var_os("CI").is_some() => {
            panic!("CI must provide HERD_TEST_PG_URL and HERD_TEST_PG_CTL (scripts/pg-test-cluster.sh)")
        }
        _ => {
            eprintln!(
                "\n*** SKIPPED: no PostgreSQL. Run `eval \"$(scripts/pg-test-cluster.sh start /tmp/herd-pg)\"` first. ***\n"
            );
            None
        }
    }
}

impl Pg {
    /// A fresh database for one test; its URL.
    fn database(&self, name: &str) -> String {
        let mut c =
            postgres::Client::connect(&self.url, postgres::NoTls).expect("connect to the test cluster");
        c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).unwrap();
        c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        let (base, _) = self.url.rsplit_once('/').unwrap();
        format!("{base}/{name}")
    }

    fn pg_ctl(&self, what: &str) {
        let st = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{} -w {what}", self.ctl))
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "pg_ctl {what}");
    }
}

fn registry(h: &Herd) -> u64 {
    get_ok(&h.addr, "/registry").parse().unwrap()
}

#[test]
fn two_arbiters_on_one_database_see_each_others_bumps() {
    let Some(pg) = pg() else { return };
    let _guard = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let url = pg.database("herd_two_hosts");
    let a = Herd::start(&["--workers", "3", "--registry-store", &url]);
    let b = Herd::start(&["--workers", "3", "--registry-store", &url]);
    a.wait_ready(3);
    b.wait_ready(3);
    let mut last = 0;
    for round in 0..4 {
        let (bumper, other) = if round % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let (status, body) = bumper.post("/registry/bump").unwrap();
        assert_eq!(status, 200, "{body}");
        let v: u64 = body.trim().parse().unwrap();
        assert!(v > last, "sequences move forward: {last} -> {v}");
        last = v;
        // Every later request on every worker of both arbiters runs on at least v.
        for h in [other, bumper] {
            let seen: Vec<u64> = (0..15).map(|_| registry(h)).collect();
            assert!(seen.iter().all(|&s| s >= v), "stale registry after bump to {v}: {seen:?}");
        }
    }
}

#[test]
fn a_database_restart_fails_requests_cleanly_and_never_serves_a_stale_registry() {
    let Some(pg) = pg() else { return };
    let _guard = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let url = pg.database("herd_restart");
    let h = Herd::start(&["--workers", "2", "--registry-store", &url]);
    h.wait_ready(2);
    let before = registry(&h);
    /// Starts the cluster again even if the test fails while it is down.
    struct Restart<'a>(&'a Pg, bool);
    impl Drop for Restart<'_> {
        fn drop(&mut self) {
            if self.1 {
                self.0.pg_ctl("start");
            }
        }
    }
    pg.pg_ctl("-m fast stop");
    let mut down = Restart(&pg, true);
    // Down: every request is refused with 503, none is served on a registry that may be stale.
    for _ in 0..6 {
        let (status, body) = http(&h.addr, "GET", "/registry").unwrap();
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("registry store unavailable"), "{body}");
    }
    pg.pg_ctl("start");
    down.1 = false;
    // Another host changes the registry as soon as the database is back.
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let bumped: i64 = c.query_one("SELECT nextval('base_registry_signaling')", &[]).unwrap().get(0);
    assert!(bumped as u64 > before);
    // The workers recover, and every answer is at least that new.
    let seen: Vec<u64> = (0..10).map(|_| registry(&h)).collect();
    assert!(seen.iter().all(|&s| s >= bumped as u64), "stale after restart: {seen:?} < {bumped}");
    assert_eq!(h.workers().len(), 2, "no worker died for it");
}

#[test]
fn an_unreachable_database_or_a_bad_url_is_a_clear_startup_error() {
    let out = std::process::Command::new(common::herd_bin())
        .args(["serve", "--bind", "127.0.0.1:0", "--registry-store", "postgres://herd:pw@127.0.0.1:1/herd"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("registry store postgres://herd:***@127.0.0.1:1/herd"), "{err}");
    assert!(!err.contains("pw@"), "the password is not printed: {err}");
    let out = std::process::Command::new(common::herd_bin())
        .args(["serve", "--bind", "127.0.0.1:0", "--registry-store", "mysql://x"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("unknown registry store"), "{err}");
}

/// The cron table's SQL follows the core's rules: a claim takes the lease and a new token; an
/// expired lease is claimable again; the stale token cannot record the run, the current one can,
/// and the next call moves an interval on; concurrent claims (SKIP LOCKED) never share a job.
#[test]
fn the_cron_table_fences_stale_holders_and_skip_locked_claims_are_disjoint() {
    let Some(pg) = pg() else { return };
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let url = pg.database("herd_cron_sql");
    let jobs: Vec<herd::cron::CronJob> = (0..8).map(|i| format!("job{i}=3600").parse().unwrap()).collect();
    let store = herd::cron::PgJobs::setup(&url, &jobs).unwrap();
    let short = Duration::from_millis(1);
    let (first, _) = store.claim(short).unwrap();
    let first = first.expect("every job is due at once");
    std::thread::sleep(Duration::from_millis(20));
    // The lease ran out: the same job (due longest) is claimed again, with a new token.
    let (second, _) = store.claim(Duration::from_secs(60)).unwrap();
    let second = second.unwrap();
    assert_eq!((second.job, second.slot), (first.job, first.slot));
    assert_eq!(second.token, first.token + 1);
    assert!(!store.finish(&first, true).unwrap(), "a stale token recorded a run");
    assert!(store.finish(&second, true).unwrap());
    assert!(!store.finish(&second, true).unwrap(), "recorded twice");
    let row = &store.jobs().unwrap()[first.job.0 as usize];
    assert_eq!(row.runs, 1);
    assert!(row.next_call.0 >= first.slot.0 + 3_600_000_000_000, "next call one interval on: {row:?}");
    // Seven jobs left due; eight processes claim at once: seven distinct jobs, one finds none.
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
    let claims: Vec<Option<herd::protocol::cron::Claim>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (mine, barrier) = (store.fresh(), barrier.clone());
                s.spawn(move || {
                    mine.claim(Duration::from_secs(60)).unwrap(); // connect first
                    barrier.wait();
                    mine.claim(Duration::from_secs(60)).unwrap().0
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut got: Vec<u32> = claims.iter().flatten().map(|c| c.job.0).collect();
    got.sort_unstable();
    let n = got.len();
    got.dedup();
    assert_eq!(got.len(), n, "a job was claimed twice at once: {claims:?}");
}

/// Two arbiters (two hosts) with two cron workers each on one database: every scheduled run
/// happens once, never two at once, shared between both; when one arbiter stops, the other's
/// cron workers carry on.
#[test]
fn two_arbiters_on_one_database_never_run_a_job_twice() {
    let Some(pg) = pg() else { return };
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let url = pg.database("herd_cron_two");
    let dir = common::tempdir("pg-cron");
    let log = dir.join("cron.log");
    let args = |log: &std::path::Path| -> Vec<String> {
        [
            "--workers",
            "1",
            "--registry-store",
            &url,
            "--cron-workers",
            "2",
            "--cron-job",
            "fast=0.1",
            "--cron-job",
            "slow=0.25",
            "--test-cron-sleep-ms",
            "30",
            "--test-cron-log",
            log.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec()
    };
    let a_args = args(&log);
    let mut a = Herd::start(&a_args.iter().map(String::as_str).collect::<Vec<_>>());
    let mut b = Herd::start(&a_args.iter().map(String::as_str).collect::<Vec<_>>());
    let (a_workers, b_workers) = (a.wait_ready(3), b.wait_ready(3));
    let ended = |name: &str| cron_runs(&log).iter().filter(|r| r.name == name && r.end.is_some()).count();
    common::wait_until("runs of both jobs", || ended("fast") >= 15 && ended("slow") >= 6);
    a.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(a.wait_exit().success());
    let before = ended("fast");
    common::wait_until("the other arbiter carries on", || ended("fast") >= before + 5);
    b.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(b.wait_exit().success());
    let runs = cron_runs(&log);
    check_cron_runs(&runs).unwrap();
    let by = |set: &std::collections::BTreeSet<i32>| runs.iter().filter(|r| set.contains(&r.pid)).count();
    assert!(
        by(&a_workers) > 0 && by(&b_workers) > 0,
        "both hosts ran jobs: {} and {}",
        by(&a_workers),
        by(&b_workers)
    );
    assert!(!a.log_text().contains("reason=Protocol") && !b.log_text().contains("reason=Protocol"));
}

/// Whether a process is gone: reaped, or a zombie (an orphan's zombie waits for whoever adopted
/// it).
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

fn wall_nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

/// A host dies mid-job (issue #20): SIGKILL one arbiter while its cron worker runs a long job on
/// the PostgreSQL store. The orphan gets the parent-death TERM, which would let its job run on,
/// and no arbiter is left to kill it; it fences itself before its lease can end, so the other
/// host's run of that job, which starts once the lease is over, never overlaps it.
#[test]
fn a_dead_hosts_cron_job_is_fenced_before_another_host_runs_it() {
    let Some(pg) = pg() else { return };
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let url = pg.database("herd_cron_fence");
    let dir = common::tempdir("pg-fence");
    let log = dir.join("cron.log");
    // Lease: timeout 2 + max(2, graceful 2) + kill grace 1 = 5 s; the fence 4.375 s after the
    // claim. The job would take 30 s.
    let args = |sleep_ms: &str| -> Vec<String> {
        [
            "--workers",
            "1",
            "--timeout",
            "2",
            "--graceful-timeout",
            "2",
            "--registry-store",
            &url,
            "--cron-workers",
            "1",
            "--cron-job",
            "long=600",
            "--test-cron-sleep-ms",
            sleep_ms,
            "--test-cron-log",
            log.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec()
    };
    let a_args = args("30000");
    let mut a = Herd::start(&a_args.iter().map(String::as_str).collect::<Vec<_>>());
    common::wait_until("host A's cron worker starts the job", || !cron_runs(&log).is_empty());
    let orphan = cron_runs(&log)[0].clone();
    // Before A's own timeout kill (2 s after the job's last heartbeat): the host dies.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(a.pid), nix::sys::signal::Signal::SIGKILL).unwrap();
    let _ = a.wait_exit();
    let b_args = args("50");
    let b = Herd::start(&b_args.iter().map(String::as_str).collect::<Vec<_>>());
    let died = std::cell::Cell::new(None);
    common::wait_until("host B runs the job once A's lease is over", || {
        if died.get().is_none() && gone(orphan.pid) {
            died.set(Some(wall_nanos()));
        }
        cron_runs(&log).iter().any(|r| r.pid != orphan.pid && r.end.is_some())
    });
    let died = died.get().unwrap_or_else(|| panic!("the orphan {} still runs its job", orphan.pid));
    let runs = cron_runs(&log);
    let next = runs.iter().find(|r| r.pid != orphan.pid).unwrap();
    assert_eq!(runs[0].end, None, "the orphan's job was stopped, not finished: {runs:?}");
    assert!(next.token > orphan.token, "{runs:?}");
    let ms = |t: u128| (t as f64 - orphan.start as f64) / 1e6;
    assert!(
        died <= next.start,
        "the orphan died {:.0} ms after its job began, host B's run began at {:.0} ms: they overlap",
        ms(died),
        ms(next.start)
    );
    // And not long before its fence: it was the fence, not something else, that stopped it.
    assert!(ms(died) > 3_000.0, "the orphan died after only {:.0} ms", ms(died));
    eprintln!("orphan stopped at {:.0} ms, the next run began at {:.0} ms", ms(died), ms(next.start));
    drop(b);
}
