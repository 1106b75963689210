//! `herd serve`'s configuration, gunicorn's way: a TOML file (`-c`), extra arguments in
//! `HERD_CMD_ARGS`, the command line, with gunicorn's precedence; `--print-config` and
//! `--check-config`; errors naming where a bad value came from. Runs the real binary.
// Runs the herd binary, built with the feature `cli`.
#![cfg(feature = "cli")]

mod common;
use common::{Herd, get_ok, herd_bin, tempdir};
use std::process::Command;

/// `herd serve ARGS` with `env`: exit code, stdout, stderr.
fn run(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let out = Command::new(herd_bin()).arg("serve").args(args).envs(env.iter().copied()).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn setting<'a>(printed: &'a str, key: &str) -> &'a str {
    printed
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("no {key} in\n{printed}"))
}

#[test]
fn the_command_line_beats_herd_cmd_args_which_beats_the_file_which_beats_the_defaults() {
    let dir = tempdir("config-layers");
    let file = dir.join("herd.toml");
    std::fs::write(
        &file,
        "workers = 3\nmax_requests = 100\ngraceful-timeout = 12\nbind = [\"127.0.0.1:9001\", \"127.0.0.1:9002\"]\n\
         registry-store = \"postgres://herd:s3cret@db/x\"\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let (code, out, err) = run(
        &["-c", f, "--workers", "2", "--print-config"],
        &[("HERD_CMD_ARGS", "--max-requests 7 --workers 5 --timeout 9")],
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(setting(&out, "workers"), "\"2\"", "the command line wins");
    assert_eq!(setting(&out, "max-requests"), "\"7\"", "HERD_CMD_ARGS beats the file");
    assert_eq!(setting(&out, "timeout"), "\"9\"");
    assert_eq!(setting(&out, "graceful-timeout"), "\"12\"", "the file beats the default");
    assert_eq!(setting(&out, "bind"), "[\"127.0.0.1:9001\", \"127.0.0.1:9002\"]");
    assert_eq!(setting(&out, "max-requests-jitter"), "\"0\"", "the default");
    assert!(!out.contains("s3cret"), "a secret printed:\n{out}");
    // A repeatable setting given higher up replaces the file's whole list.
    let (_, out, _) = run(&["-c", f, "--bind", "127.0.0.1:9003", "--print-config"], &[]);
    assert_eq!(setting(&out, "bind"), "[\"127.0.0.1:9003\"]");
}

#[test]
fn a_server_runs_from_its_file() {
    let dir = tempdir("config-serve");
    let file = dir.join("herd.toml");
    std::fs::write(&file, "workers = 2\naccept_mode = \"shared\"\n").unwrap();
    let h = Herd::start(&["-c", file.to_str().unwrap()]);
    h.wait_ready(2);
    assert!(h.log_text().contains("mode=shared"), "{}", h.log_text());
    assert_eq!(get_ok(&h.addr, "/"), "hello");
}

#[test]
fn check_config_says_whether_the_configuration_is_valid() {
    let dir = tempdir("config-check");
    let good = dir.join("good.toml");
    std::fs::write(&good, "workers = 4\ntimeout = 5\n").unwrap();
    let (code, out, err) = run(&["-c", good.to_str().unwrap(), "--check-config"], &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("valid"));
    // Settings that parse but do not go together: exit 1, with the reason.
    let (code, _, err) = run(&["--cron-job", "j=5", "--check-config"], &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("cron"), "{err}");
    let (code, _, err) =
        run(&["--worker-protocol", "none", "--accept-mode", "auto", "--check-config", "--", "true"], &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("--accept-mode shared"), "{err}");
    // Nothing was bound or written.
    let (code, _, err) = run(&["--bind", "127.0.0.1:1", "--check-config"], &[]);
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn a_bad_value_names_where_it_came_from() {
    let dir = tempdir("config-bad");
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "timeout = 30\n\nworkers = \"many\"\n").unwrap();
    let (code, _, err) = run(&["-c", bad.to_str().unwrap()], &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("bad.toml") && err.contains("'many'") && err.contains("--workers"), "{err}");
    std::fs::write(&bad, "timeout = 30\nworkerz = 2\n").unwrap();
    let (code, _, err) = run(&["-c", bad.to_str().unwrap()], &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("bad.toml, line 2: workerz: no such setting"), "{err}");
    std::fs::write(&bad, "workers = [\n").unwrap();
    let (code, _, err) = run(&["-c", bad.to_str().unwrap()], &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("bad.toml") && err.contains("line 1"), "{err}");
    let (code, _, err) = run(&["--check-config"], &[("HERD_CMD_ARGS", "--timeout soon")]);
    assert_eq!(code, Some(2));
    assert!(err.contains("HERD_CMD_ARGS") && err.contains("soon"), "{err}");
    let (code, _, err) = run(&["-c", dir.join("missing.toml").to_str().unwrap()], &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("missing.toml") && err.contains("No such file"), "{err}");
    // What says which file to read is for the command line only.
    std::fs::write(&bad, "config = \"other.toml\"\n").unwrap();
    let (code, _, err) = run(&["-c", bad.to_str().unwrap()], &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("config is for the command line only"), "{err}");
}
