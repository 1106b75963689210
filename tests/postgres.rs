//! The PostgreSQL registry store on a real PostgreSQL (no mocks): two arbiters standing for two
//! hosts share one database; the database restarts mid-run.
//!
//! Needs `HERD_TEST_PG_URL` and `HERD_TEST_PG_CTL` (`scripts/pg-test-cluster.sh start DIR` prints
//! them; `.ci/run` sets them). Without them the tests fail under CI and are skipped loudly
//! elsewhere.
#![cfg(feature = "postgres")]

mod common;

use common::{Herd, get_ok, http};
use std::sync::Mutex;

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
