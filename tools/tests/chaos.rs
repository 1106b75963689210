//! A short chaos run (`herd-chaos`) against the real `herd` binary, its arbiter's trace validated;
//! the 60-second one is in `.ci/run`.

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
    let traces = std::env::temp_dir().join(format!("herd-chaos-traces-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&traces);
    std::fs::create_dir_all(&traces).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_herd-chaos"))
        .env("HERD_TRACE_EVENTS", &traces)
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
    // The arbiter under chaos fed and carried out exactly what its core says.
    let report = herd_sim::trace::check_dir(&traces).unwrap();
    assert!(!report.files.is_empty() && report.entries() > 1_000, "{report}");
    assert_eq!(report.problems().count(), 0, "{report}");
    eprintln!("{report}");
    let _ = std::fs::remove_dir_all(&traces);
}

/// Every binary of this package answers `--help` (and exits 0) instead of panicking or running.
#[test]
fn every_tool_answers_help() {
    for bin in [env!("CARGO_BIN_EXE_herd-chaos"), env!("CARGO_BIN_EXE_herd-raw")] {
        let out = Command::new(bin).arg("--help").output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{bin} --help: {:?}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("Usage:"), "{bin} --help:\n{text}");
    }
}
