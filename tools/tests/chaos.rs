//! A short chaos run (`herd-chaos`) against the real `herd` binary; the 60-second one is in
//! `.ci/run`.

use std::path::PathBuf;
use std::process::Command;

/// The `herd` binary of the same build: cargo puts every binary of the workspace in one directory,
/// and `cargo test` at the workspace root builds it for herd's own integration tests.
fn herd_bin() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_BIN_EXE_herd-chaos")).with_file_name("herd");
    assert!(p.exists(), "{} is missing: run the tests from the workspace root (cargo test)", p.display());
    p
}

#[test]
fn a_short_chaos_run_accounts_for_every_request() {
    let out = Command::new(env!("CARGO_BIN_EXE_herd-chaos"))
        .arg("--duration")
        .arg("8s")
        .arg("--herd")
        .arg(herd_bin())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "herd-chaos failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("unexplained failures") && stdout.contains("verdict: ok"), "{stdout}");
}
