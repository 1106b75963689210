//! loom models of the exact shared-memory code the runtime uses: the signal queue with its
//! wakeup contract, and the registry sequences with coherence. Run with
//! `RUSTFLAGS="--cfg herd_loom" cargo test -p herd-model --release --test loom` (three preemptions per
//! execution unless `LOOM_MAX_PREEMPTIONS` is set).
//!
//! loom cannot model a pipe, so the self-pipe is a flag behind a mutex with a condvar: `wake`
//! writes the byte, `clear` drains the pipe, `wait` is the poll. A lost wakeup is then a loom
//! deadlock: the loop sleeps with a signal counted and no byte to wake it.
#![cfg(herd_loom)]

use herd_protocol::registry::{Registry, Sequences, SharedSequences};
use herd_protocol::signals::{Sig, SignalBatch, SignalQueue};
use loom::sync::atomic::{AtomicU64, Ordering};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

/// `loom::model` with at most three preemptions per execution unless `LOOM_MAX_PREEMPTIONS` says
/// otherwise: the bugs these models are for (B03, B14) need one, and an unbounded search of the
/// three-thread signal model had not finished after twenty minutes.
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = builder.preemption_bound.or(Some(3));
    builder.check(f);
}

struct SelfPipe {
    readable: Mutex<bool>,
    cv: Condvar,
}

impl SelfPipe {
    fn new() -> Self {
        SelfPipe { readable: Mutex::new(false), cv: Condvar::new() }
    }
    fn wake(&self) {
        *self.readable.lock().unwrap() = true;
        self.cv.notify_one();
    }
    fn clear(&self) {
        *self.readable.lock().unwrap() = false;
    }
    fn wait(&self) {
        let mut r = self.readable.lock().unwrap();
        while !*r {
            r = self.cv.wait(r).unwrap();
        }
    }
}

/// Runs the arbiter's loop until it has handled `want` deliveries of each signal.
fn main_loop(pipe: &SelfPipe, want: &[(Sig, u32)], drain: impl Fn() -> SignalBatch) {
    let mut got = vec![0u32; want.len()];
    loop {
        let batch = drain();
        for (i, (sig, _)) in want.iter().enumerate() {
            got[i] += batch.count(*sig);
        }
        if want.iter().zip(&got).all(|((_, w), g)| g == w) {
            break;
        }
        pipe.wait();
    }
}

#[test]
fn no_signal_and_no_wakeup_is_lost() {
    model(|| {
        let q = Arc::new(SignalQueue::new());
        let pipe = Arc::new(SelfPipe::new());
        // Two handlers (a handler may be interrupted by another signal's handler).
        let handlers: Vec<_> = [(Sig::Ttin, Sig::Term), (Sig::Ttin, Sig::Hup)]
            .into_iter()
            .map(|(a, b)| {
                let (q, pipe) = (q.clone(), pipe.clone());
                thread::spawn(move || {
                    q.push_and_wake(a, || pipe.wake());
                    q.push_and_wake(b, || pipe.wake());
                })
            })
            .collect();
        let want = [(Sig::Ttin, 2), (Sig::Term, 1), (Sig::Hup, 1)];
        main_loop(&pipe, &want, || q.drain_woken(|| pipe.clear()));
        for h in handlers {
            h.join().unwrap();
        }
    });
}

/// B03: taking the counters first and draining the self-pipe after loses a wakeup; loom finds the
/// interleaving and reports the loop asleep forever. loom aborts the process after reporting a
/// deadlock, so the model runs in a child process (this test binary, re-run) and the test checks
/// that the child reported the deadlock.
#[test]
fn b03_draining_the_pipe_after_the_counters_loses_a_wakeup() {
    if std::env::var_os("HERD_LOOM_B03").is_some() {
        return b03_model();
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "b03_draining_the_pipe_after_the_counters_loses_a_wakeup", "--nocapture"])
        .env("HERD_LOOM_B03", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the B03 model passed: loom missed the lost wakeup");
    assert!(stderr.contains("deadlock"), "the B03 model failed, but not with a lost wakeup:\n{stderr}");
}

fn b03_model() {
    model(|| {
        let q = Arc::new(SignalQueue::new());
        let pipe = Arc::new(SelfPipe::new());
        let h = {
            let (q, pipe) = (q.clone(), pipe.clone());
            thread::spawn(move || q.push_and_wake(Sig::Ttin, || pipe.wake()))
        };
        main_loop(&pipe, &[(Sig::Ttin, 1)], || {
            let batch = q.drain();
            pipe.clear();
            batch
        });
        h.join().unwrap();
    });
}

/// A writer commits a registry change and bumps; a reader checks before each request. No request
/// that starts after the bump completed runs on the old registry.
#[test]
fn no_request_runs_on_a_registry_older_than_a_completed_bump() {
    model(|| {
        let store = Arc::new(SharedSequences::new());
        let db = Arc::new(AtomicU64::new(0)); // the committed registry version
        let done = Arc::new(AtomicU64::new(0)); // the newest version whose bump completed
        let writer = {
            let (store, db, done) = (store.clone(), db.clone(), done.clone());
            thread::spawn(move || {
                let mut reg = Registry::new(0u64, store.load());
                reg.change(|v| *v = 1);
                db.store(1, Ordering::Release); // commit
                if let Some(what) = reg.coherence_mut().commit() {
                    let after = store.increment(what);
                    reg.coherence_mut().bumped(what, after);
                }
                done.store(1, Ordering::SeqCst);
            })
        };
        let mut reg = Registry::new(0u64, Sequences::default());
        for _ in 0..2 {
            let required = done.load(Ordering::SeqCst); // the request starts
            let v = *reg.before_request(store.load(), || db.load(Ordering::Acquire), |_| {});
            assert!(v >= required, "served v{v} after v{required} was signalled");
        }
        writer.join().unwrap();
    });
}

/// B14: reading the sequence *after* loading records a version the registry does not have.
#[test]
#[should_panic(expected = "served")]
fn b14_reading_the_sequence_after_loading_serves_a_stale_registry() {
    model(|| {
        let store = Arc::new(SharedSequences::new());
        let db = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicU64::new(0));
        let writer = {
            let (store, db, done) = (store.clone(), db.clone(), done.clone());
            thread::spawn(move || {
                db.store(1, Ordering::Release);
                store.increment(herd_protocol::registry::Bump::Registry);
                done.store(1, Ordering::SeqCst);
            })
        };
        // The bug: load first, then read the sequence and record it.
        let mut value = db.load(Ordering::Acquire);
        let mut c = herd_protocol::registry::Coherence::new(store.load());
        c.reloaded(store.load());
        for _ in 0..2 {
            let required = done.load(Ordering::SeqCst);
            if let herd_protocol::registry::Check::Reload { .. } = c.check(store.load()) {
                value = db.load(Ordering::Acquire);
                c.reloaded(store.load());
            }
            assert!(value >= required, "served v{value} after v{required} was signalled");
        }
        writer.join().unwrap();
    });
}

/// Two processes each change the registry and bump, concurrently; each then serves a request.
/// A process's own bump must not make it skip the other's change (Odoo's `signal_changes`
/// recorded `nextval` unconditionally). Changes are bits; a registry is the set it holds.
#[test]
fn concurrent_bumps_never_hide_the_other_change() {
    model(|| {
        let store = Arc::new(SharedSequences::new());
        let db = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicU64::new(0));
        let procs: Vec<_> = [1u64, 2]
            .into_iter()
            .map(|bit| {
                let (store, db, done) = (store.clone(), db.clone(), done.clone());
                thread::spawn(move || {
                    let mut reg = Registry::new(0u64, Sequences::default());
                    reg.change(|v| *v |= bit);
                    db.fetch_or(bit, Ordering::AcqRel); // commit
                    let what = reg.coherence_mut().commit().expect("a change to signal");
                    let after = store.increment(what);
                    reg.coherence_mut().bumped(what, after);
                    done.fetch_or(bit, Ordering::SeqCst);
                    // The next request of this process.
                    let required = done.load(Ordering::SeqCst);
                    let v = *reg.before_request(store.load(), || db.load(Ordering::Acquire), |_| {});
                    assert_eq!(
                        v & required,
                        required,
                        "process {bit} served {v:b} after {required:b} was signalled"
                    );
                })
            })
            .collect();
        for p in procs {
            p.join().unwrap();
        }
    });
}
