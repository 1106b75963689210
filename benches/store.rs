//! The cost of the registry check before each request: one `get` of the sequences from each
//! store. `cargo bench --bench store` measures shared memory; with `--features postgres` and
//! `HERD_TEST_PG_URL` set (scripts/pg-test-cluster.sh), PostgreSQL on loopback too.

use criterion::{Criterion, criterion_group, criterion_main};
use herd::protocol::registry::SequenceStore;
use herd::store::{ShmStore, Store};

fn stores(c: &mut Criterion) {
    let shm = Store::Shm(ShmStore::create().expect("memfd"));
    c.bench_function("registry check: shm get", |b| b.iter(|| shm.get().unwrap()));
    #[cfg(feature = "postgres")]
    match std::env::var("HERD_TEST_PG_URL") {
        Ok(url) => {
            let pg = Store::Postgres(Box::new(herd::store::PgStore::setup(&url).expect("set up the store")));
            c.bench_function("registry check: postgres get (loopback)", |b| b.iter(|| pg.get().unwrap()));
        }
        Err(_) => eprintln!("HERD_TEST_PG_URL not set: PostgreSQL not measured"),
    }
}

criterion_group!(benches, stores);
criterion_main!(benches);
