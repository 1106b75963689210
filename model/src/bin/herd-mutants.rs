//! `herd-mutants`: every bug of docs/bugs.md, re-introduced on purpose, must be caught by the suite.
//!
//! `cargo run --release -p herd-model --features mutants --bin herd-mutants` prints one row per
//! bug: caught or not, by which layer, how long it took, and the command that replays the
//! counterexample. Exit status 1 if any bug is not caught.
//!
//! Three ways a bug is re-introduced, none leaving a trace in normal builds:
//! - **switch**: the arbiter bugs behind the `mutants` cargo feature (`Arbiter::with_mutant`),
//!   run through the simulator in-process, first catching seed among 0..300;
//! - **patch**: a one-line change applied to a scratch copy of the workspace (under
//!   `target/herd-mutants/`), then the named test of that layer is run and must fail (and passes
//!   on the unpatched copy: a row that cannot fail proves nothing);
//! - **model**: a loom model of the buggy ordering, which loom must find failing.
//!
//! `--quick` skips the loom row (the slowest, named in the output), for CI; `--only B12` runs one
//! row (the replay of a patch row: the patch is printed by `--only` runs too, in the source below).

use clap::Parser;
use herd_protocol::mutants::Mutant;
use herd_sim::{Options, run};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

#[derive(clap::Parser, Debug)]
#[command(
    name = "herd-mutants",
    about = "Re-introduces every bug of docs/bugs.md and shows which layer catches it"
)]
struct Cli {
    /// Skip the loom row (the slowest; CI's loom step runs that model).
    #[arg(long)]
    quick: bool,
    /// Run one row, e.g. B12 (prints its replay command).
    #[arg(long, value_name = "ID")]
    only: Option<String>,
}

enum How {
    Switch(Mutant),
    /// A core's unit test (`cargo test -p herd-protocol --lib TEST`).
    Patch {
        file: &'static str,
        from: &'static str,
        to: &'static str,
        test: &'static str,
    },
    /// A runtime bug, caught by an integration test of the real binary (`cargo test -p herd
    /// --test TARGET FILTER`).
    RuntimePatch {
        file: &'static str,
        from: &'static str,
        to: &'static str,
        target: &'static str,
        filter: &'static str,
        /// Which check of that test catches it.
        check: &'static str,
    },
    /// A core bug, caught by a property test of the core (`cargo test -p herd-protocol --test
    /// TARGET`).
    PropertyPatch {
        file: &'static str,
        from: &'static str,
        to: &'static str,
        target: &'static str,
    },
    Loom {
        test: &'static str,
    },
}

struct Row {
    id: &'static str,
    what: &'static str,
    how: How,
}

fn rows() -> Vec<Row> {
    use How::*;
    vec![
        Row {
            id: "B01",
            what: "signals past the fifth queued are dropped",
            how: Patch {
                file: "protocol/src/signals.rs",
                from: "self.counts[sig.index()].fetch_add(1, Ordering::Release);",
                to: "if self.counts[sig.index()].load(Ordering::Acquire) < 5 { self.counts[sig.index()].fetch_add(1, Ordering::Release); }",
                test: "signals::tests::b01",
            },
        },
        Row {
            id: "B02",
            what: "CHLD mutates the worker table where it is received",
            how: Patch {
                file: "protocol/src/arbiter.rs",
                from: "Sig::Chld => self.actions.push_back(Action::Reap),",
                to: "Sig::Chld => { self.actions.push_back(Action::Reap); if let Some(&id) = self.workers.keys().next() { self.workers.remove(&id); } }",
                test: "arbiter::tests::b02",
            },
        },
        Row {
            id: "B03",
            what: "the loop takes the counters, then clears the wakeup",
            how: Patch {
                file: "protocol/src/signals.rs",
                from: "clear_wakeup();\n        self.drain()",
                to: "let batch = self.drain();\n        clear_wakeup();\n        batch",
                test: "signals::tests::b03",
            },
        },
        Row {
            id: "B04",
            what: "a reaped worker stays in the table and is signalled",
            how: Patch {
                file: "protocol/src/arbiter.rs",
                from: "let Some(w) = self.workers.remove(&id) else {\n            return;\n        };\n        self.census.leave(&w, self.generation);",
                to: "let Some(w) = self.workers.get(&id).cloned() else {\n            return;\n        };",
                test: "arbiter::tests::b04",
            },
        },
        Row { id: "B05", what: "liveness judged on the worker's timestamp", how: Switch(Mutant::B05) },
        Row { id: "B06", what: "no recycling jitter", how: Switch(Mutant::B06) },
        Row { id: "B07", what: "a second USR2 forks a second child arbiter", how: Switch(Mutant::B07) },
        Row { id: "B08", what: "unix sockets unlinked under a child arbiter", how: Switch(Mutant::B08) },
        Row { id: "B09", what: "death by signal 3/4 read as exit code 3/4", how: Switch(Mutant::B09) },
        Row { id: "B10", what: "TTOU lowers the target, stops no worker", how: Switch(Mutant::B10) },
        Row {
            id: "B11",
            what: "consuming an invalidation raises one",
            how: Patch {
                file: "protocol/src/registry.rs",
                from: "pub fn reloaded(&mut self, as_of: Sequences) {\n        self.seen = as_of;",
                to: "pub fn reloaded(&mut self, as_of: Sequences) {\n        self.seen = as_of;\n        self.registry_invalidated = true;",
                test: "registry::tests::b11",
            },
        },
        Row {
            id: "B12",
            what: "the old registry object is used after a reload",
            how: Patch {
                file: "protocol/src/registry.rs",
                from: "self.value = load();",
                to: "let _ = load();",
                test: "registry::tests::b12",
            },
        },
        Row {
            id: "B13",
            what: "a committed registry change is never signalled",
            how: Patch {
                file: "protocol/src/registry.rs",
                from: "Some(Bump::Registry)\n        } else if",
                to: "None\n        } else if",
                test: "registry::tests::b13",
            },
        },
        Row {
            id: "B14",
            what: "the sequence is read after loading",
            how: Loom { test: "b14_reading_the_sequence_after_loading_serves_a_stale_registry" },
        },
        Row { id: "B15", what: "a dispatch to a dead worker is forgotten", how: Switch(Mutant::B15) },
        Row { id: "B16", what: "EMPTY forgets the worker's ACCEPT", how: Switch(Mutant::B16) },
        Row { id: "B17", what: "every idle worker is woken per connection", how: Switch(Mutant::B17) },
        Row {
            id: "B18",
            what: "the request budget is checked before the request",
            how: Patch {
                file: "protocol/src/worker.rs",
                from: "if budget > 0 && self.requests >= budget {\n                    self.bye(ByeReason::Recycle);",
                to: "if budget > 0 && self.requests > budget {\n                    self.bye(ByeReason::Recycle);",
                test: "worker::tests::b18",
            },
        },
        Row { id: "B19", what: "graceful stop waits forever for a hung worker", how: Switch(Mutant::B19) },
        Row {
            id: "B20",
            what: "a respawned worker is timed from a stale start",
            how: Patch {
                file: "protocol/src/arbiter.rs",
                from: "spawned_at: self.now,\n            last_seen: self.now,",
                to: "spawned_at: self.now,\n            last_seen: self.now + self.config.timeout,",
                test: "arbiter::tests::b20",
            },
        },
        Row {
            id: "B21",
            what: "a retiring worker's silence is acted on but not reported by poll_timeout",
            how: Switch(Mutant::B21),
        },
        Row {
            id: "B22",
            what: "the arbiter loop runs its timeout pass before feeding the frames it read",
            how: RuntimePatch {
                file: "src/runtime/arbiter.rs",
                from: "self.timeout_due = n < events.len() && deadline.is_some_and(|d| d <= self.clock.now());",
                to: "self.timeout_due = false;\n            self.tick();",
                // Any test of a running server: its trace fails validation at the first wakeup.
                target: "serve",
                filter: "serves_the_demo_app_in_every_accept_mode",
                check: "trace validation",
            },
        },
        Row { id: "B23", what: "the newest idle worker is served first", how: Switch(Mutant::B23) },
        Row { id: "B25", what: "a retiring worker is killed at half its grace", how: Switch(Mutant::B25) },
        Row {
            id: "B26",
            what: "no timeout (--timeout 0) read as the heartbeat pace: a silent worker is killed",
            how: Switch(Mutant::B26),
        },
        Row {
            id: "B27",
            what: "a jitter without its base (max-requests 0) recycles workers",
            how: Switch(Mutant::B27),
        },
        Row {
            id: "B28",
            what: "a cron holder orphaned by its arbiter's death is never fenced: its job outlives its lease",
            how: Switch(Mutant::B28),
        },
        Row {
            id: "B29",
            what: "a new worker unblocks its signals before it installs its own handlers (the fork window)",
            how: RuntimePatch {
                file: "src/runtime/worker.rs",
                from: "    let wake = WakePipe::install()?;\n    crate::os::sys::install_worker_handlers()?;\n    pause_point(id, \"handlers\");\n    blocked.restore()?;",
                to: "    blocked.restore()?;\n    let wake = WakePipe::install()?;\n    crate::os::sys::install_worker_handlers()?;\n    pause_point(id, \"handlers\");",
                target: "reliability",
                filter: "a_signal_at_any_point_of_a_workers_setup_is_acted_on",
                check: "a driven fork window",
            },
        },
        Row {
            id: "B30",
            what: "the async worker feeds every input of a wakeup before carrying out the core's actions",
            how: RuntimePatch {
                file: "src/runtime/async_worker.rs",
                from: "            core.feed(clock.now(), input);\n            drive!();\n        }\n        core.tick(clock.now());",
                to: "            core.feed(clock.now(), input);\n        }\n        core.tick(clock.now());",
                // Any test of a running async server: a worker's trace fails at its first wakeup.
                target: "async",
                filter: "async_workers_lose_no_wakeup_in_any_mode",
                check: "trace validation",
            },
        },
        Row {
            id: "B31",
            what: "the spawn backoff's deadline is reported while a probe boots, when nothing will be spawned",
            how: PropertyPatch {
                file: "protocol/src/arbiter/timers.rs",
                from: "self.phase == Phase::Running && self.spawn_pending()",
                to: "self.phase == Phase::Running && self.role_to_spawn().is_some()",
                target: "deadlines",
            },
        },
        Row {
            id: "B32",
            what: "a worker's wait ignores the core's deadline: it sleeps past its heartbeat",
            how: RuntimePatch {
                file: "src/runtime/worker.rs",
                from: "self.clock.wait_for(self.core.poll_timeout(), Some(60_000))",
                to: "self.clock.wait_for(None, Some(60_000))",
                target: "serve",
                filter: "serves_the_demo_app_in_every_accept_mode",
                check: "trace validation",
            },
        },
        Row {
            id: "B24",
            what: "a worker out of descriptors answers EMPTY at once and is dispatched to again",
            how: RuntimePatch {
                file: "src/runtime/worker.rs",
                from: "return (Input::AcceptFailed, None);",
                to: "return (Input::AcceptEmpty, None);",
                target: "reliability",
                filter: "a_worker_out_of_descriptors_backs_off_and_recovers",
                check: "CPU over a window",
            },
        },
    ]
}

struct Outcome {
    caught: bool,
    layer: String,
    replay: String,
}

fn main() -> ExitCode {
    let Cli { quick, only } = Cli::parse();
    let root = workspace_root();
    let scratch = root.join("target/herd-mutants");
    println!("| id | re-introduced bug | caught | layer | time | replay |");
    println!("|---|---|---|---|---|---|");
    let (mut caught, mut total, mut skipped) = (0, 0, Vec::new());
    // The scratch copy is made once, on the first patch row; each row restores what it patched.
    let mut tree: Option<Result<PathBuf, String>> = None;
    for row in rows() {
        if only.as_deref().is_some_and(|o| o != row.id) {
            continue;
        }
        if quick && matches!(row.how, How::Loom { .. }) {
            skipped.push(row.id);
            println!("| {} | {} | skipped (--quick: loom is the slowest layer) | | | |", row.id, row.what);
            continue;
        }
        total += 1;
        let t = Instant::now();
        let o = match &row.how {
            How::Switch(m) => switch(*m),
            How::Patch { file, from, to, test } => {
                let tree = tree.get_or_insert_with(|| {
                    sync_tree(&root, &scratch).map_err(|e| format!("cannot copy the workspace: {e}"))
                });
                let args = ["-p", "herd-protocol", "--lib", test];
                patch(tree, &scratch, row.id, (file, from, to), &format!("unit test {test}"), &args)
            }
            How::RuntimePatch { file, from, to, target, filter, check } => {
                let tree = tree.get_or_insert_with(|| {
                    sync_tree(&root, &scratch).map_err(|e| format!("cannot copy the workspace: {e}"))
                });
                let args = ["-p", "herd", "--test", target, filter];
                let layer = format!("{check} in tests/{target}.rs {filter}");
                patch(tree, &scratch, row.id, (file, from, to), &layer, &args)
            }
            How::PropertyPatch { file, from, to, target } => {
                let tree = tree.get_or_insert_with(|| {
                    sync_tree(&root, &scratch).map_err(|e| format!("cannot copy the workspace: {e}"))
                });
                let args = ["-p", "herd-protocol", "--test", target];
                patch(
                    tree,
                    &scratch,
                    row.id,
                    (file, from, to),
                    &format!("property test protocol/tests/{target}.rs"),
                    &args,
                )
            }
            How::Loom { test } => loom(&root, test),
        };
        if o.caught {
            caught += 1;
        }
        println!(
            "| {} | {} | {} | {} | {:.1} s | `{}` |",
            row.id,
            row.what,
            if o.caught { "yes" } else { "**NO**" },
            o.layer,
            t.elapsed().as_secs_f64(),
            o.replay
        );
    }
    println!(
        "\ncaught: {caught} of {total}{}",
        if skipped.is_empty() { String::new() } else { format!(" (skipped: {})", skipped.join(", ")) }
    );
    if caught == total { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("model/ is in the workspace").to_path_buf()
}

/// The simulator, in-process: the first seed among 0..300 that breaks an invariant.
fn switch(m: Mutant) -> Outcome {
    for seed in 0..300 {
        let o = Options { mutant: Some(m), ..Options::new(seed) };
        if let Some(v) = run(&o).violation {
            return Outcome {
                caught: true,
                layer: format!("simulator ({}, seed {seed})", v.invariant.name()),
                replay: o.replay_command(),
            };
        }
    }
    Outcome { caught: false, layer: "simulator (300 seeds)".into(), replay: String::new() }
}

/// Copies the workspace's sources to `scratch/tree` (the build directory is kept between runs).
fn sync_tree(root: &Path, scratch: &Path) -> std::io::Result<PathBuf> {
    let tree = scratch.join("tree");
    // Every directory of the workspace manifest (members and the root package's targets).
    for dir in ["protocol", "sim", "model", "tools", "src", "benches", "examples", "tests"] {
        let _ = std::fs::remove_dir_all(tree.join(dir));
        copy_dir(&root.join(dir), &tree.join(dir))?;
    }
    for f in ["Cargo.toml", "Cargo.lock", "rustfmt.toml"] {
        if root.join(f).exists() {
            std::fs::copy(root.join(f), tree.join(f))?;
        }
    }
    Ok(tree)
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let p = e.path();
        if e.file_type()?.is_dir() {
            copy_dir(&p, &to.join(e.file_name()))?;
        } else {
            std::fs::copy(&p, to.join(e.file_name()))?;
        }
    }
    Ok(())
}

fn cargo_test(tree: &Path, scratch: &Path, args: &[&str]) -> bool {
    // The workspace's own build directory: the scratch copy's dependencies are already built there.
    let target = scratch.parent().map_or_else(|| scratch.join("target"), Path::to_path_buf);
    Command::new(env!("CARGO"))
        .current_dir(tree)
        .env("CARGO_TARGET_DIR", target)
        .args(["test", "-q"])
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Applies one line change to the scratch copy and runs the layer's test: caught if it fails
/// there and passes on the unpatched copy. The file is restored afterwards.
fn patch(
    tree: &Result<PathBuf, String>,
    scratch: &Path,
    id: &str,
    (file, from, to): (&str, &str, &str),
    layer: &str,
    args: &[&str],
) -> Outcome {
    let layer = layer.to_owned();
    let fail =
        |why: String| Outcome { caught: false, layer: format!("{layer}: {why}"), replay: String::new() };
    let tree = match tree {
        Ok(t) => t,
        Err(e) => return fail(e.clone()),
    };
    if !cargo_test(tree, scratch, args) {
        return fail("fails without the mutant".into());
    }
    let path = tree.join(file);
    let Ok(src) = std::fs::read_to_string(&path) else { return fail(format!("cannot read {file}")) };
    if src.matches(from).count() != 1 {
        return fail(format!("the patch site is not unique in {file} (the code moved?)"));
    }
    if std::fs::write(&path, src.replacen(from, to, 1)).is_err() {
        return fail("cannot write the patch".into());
    }
    let caught = !cargo_test(tree, scratch, args);
    let _ = std::fs::write(&path, &src);
    Outcome { caught, layer, replay: format!("herd-mutants --only {id}") }
}

/// A loom model of the buggy ordering: the test asserts loom finds the failure.
fn loom(root: &Path, test: &str) -> Outcome {
    let ok = Command::new(env!("CARGO"))
        .current_dir(root)
        .env("RUSTFLAGS", "--cfg herd_loom")
        .env("LOOM_MAX_PREEMPTIONS", "3")
        .args(["test", "-q", "-p", "herd-model", "--release", "--test", "loom", test])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    Outcome {
        caught: ok,
        layer: format!("loom model {test}"),
        replay: format!(
            "RUSTFLAGS=\"--cfg herd_loom\" LOOM_MAX_PREEMPTIONS=3 cargo test -p herd-model --release --test loom {test}"
        ),
    }
}
