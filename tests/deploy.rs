//! gunicorn's deployment knobs, on real processes: `--user`/`--group` (workers only, and they
//! can still reopen their logs), `--umask` (the unix socket's mode), `--backlog`, `--reuse-port`,
//! `fd://` binds and `--chdir`.
// Runs the herd binary, built with the feature `cli`.
#![cfg(feature = "cli")]

mod common;
use common::{Herd, get_ok, herd_bin, tempdir, wait_until};
use nix::sys::signal::Signal;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

/// `Uid:`/`Gid:` of a process: real, effective, saved, filesystem.
fn ids(pid: i32, field: &str) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().skip(1).map(|n| n.parse().unwrap()).collect()
}

fn root() -> bool {
    let me = nix::unistd::Uid::effective().is_root();
    if !me {
        eprintln!("SKIPPED: not root; --user/--group need it to be seen working");
    }
    me
}

#[test]
fn workers_run_as_the_user_and_group_and_still_reopen_their_logs() {
    if !root() {
        return;
    }
    let dir = tempdir("user");
    let err = dir.join("error.log");
    let h = Herd::start(&[
        "--workers",
        "2",
        "--user",
        "nobody",
        "--group",
        "65534",
        "--error-logfile",
        err.to_str().unwrap(),
    ]);
    let workers = h.wait_count(2);
    wait_until("the workers changed identity", || workers.iter().all(|&w| ids(w, "Uid:") == [65534; 4]));
    for &w in &workers {
        assert_eq!(ids(w, "Gid:"), [65534; 4], "worker {w}");
        assert!(ids(w, "Groups:").iter().all(|&g| g == 65534), "worker {w}: {:?}", ids(w, "Groups:"));
    }
    assert_eq!(ids(h.pid, "Uid:"), [0; 4], "the arbiter keeps its identity");
    assert!(!get_ok(&h.addr, "/pid").is_empty());
    // The log file is theirs: after a rotation they reopen it themselves.
    std::fs::rename(&err, dir.join("error.log.1")).unwrap();
    h.signal(Signal::SIGUSR1);
    wait_until("every worker writing to the new error log", || {
        workers
            .iter()
            .all(|&w| std::fs::read_link(format!("/proc/{w}/fd/2")).ok().as_deref() == Some(err.as_path()))
    });
    let meta = std::fs::metadata(&err).unwrap();
    assert_eq!(
        (std::os::unix::fs::MetadataExt::uid(&meta), std::os::unix::fs::MetadataExt::gid(&meta)),
        (65534, 65534)
    );
    // An unknown user is one clear error, before anything runs.
    let out = Command::new(herd_bin())
        .args(["serve", "--bind", "127.0.0.1:0", "--user", "no-such-user-herd"])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--user no-such-user-herd: no such user"));
}

#[test]
fn umask_007_gives_the_unix_socket_mode_0770() {
    let dir = tempdir("umask");
    for (mask, mode) in [("007", 0o770), ("077", 0o700)] {
        let sock = dir.join(format!("{mask}.sock"));
        let bind = format!("unix:{}", sock.display());
        let _h = Herd::start_with(&["--bind", &bind], &["--umask", mask]);
        let got = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
        assert_eq!(got, mode, "--umask {mask}: mode {got:o}");
    }
    let out = Command::new(herd_bin()).args(["serve", "--umask", "999"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// The backlog `ss` reports for the listener on `port` (its Send-Q), if `ss` is here.
fn backlog_of(port: &str) -> Option<u32> {
    let out = Command::new("ss").args(["-ltnH", &format!("sport = :{port}")]).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().next()?.split_whitespace().nth(2)?.parse().ok()
}

#[test]
fn backlog_and_reuse_port_as_gunicorn() {
    let h = Herd::start(&["--backlog", "77", "--reuse-port"]);
    let port = h.addr.rsplit_once(':').unwrap().1.to_owned();
    match backlog_of(&port) {
        Some(b) => assert_eq!(b, 77),
        None => {
            assert!(std::env::var_os("CI").is_none(), "CI installs ss (iproute2)");
            eprintln!("SKIPPED: no ss on this machine; the backlog was not read back");
        }
    }
    // A second server on the same port: with SO_REUSEPORT on both, it binds; without, it is
    // refused with a clear error.
    let bind = format!("127.0.0.1:{port}");
    let second = Herd::start_with(&["--bind", &bind], &["--reuse-port"]);
    assert!(!get_ok(&second.addr, "/pid").is_empty());
    let out = Command::new(herd_bin()).args(["serve", "--bind", &bind]).output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("address already in use"), "{out:?}");
}

#[test]
fn an_fd_bind_adopts_an_inherited_listening_socket() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&listener);
    // Inheritable, as a supervisor would pass it.
    nix::fcntl::fcntl(&listener, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty())).unwrap();
    let bind = format!("fd://{fd}");
    let h = Herd::start_with(&["--bind", &bind], &["--workers", "2"]);
    h.wait_ready(2);
    let answer = get_ok(&addr.to_string(), "/pid");
    assert!(h.workers().contains(&answer.parse::<i32>().unwrap()), "served through the inherited socket");
    // Not a listening socket: named, before anything runs.
    let out = Command::new(herd_bin()).args(["serve", "--bind", "fd://0"]).output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("fd://0: not a listening socket"), "{out:?}");
}

#[test]
fn chdir_moves_the_server_and_what_it_names_relatively() {
    let dir = tempdir("chdir");
    let h = Herd::start(&["--chdir", dir.to_str().unwrap(), "--pidfile", "herd.pid"]);
    let worker = *h.wait_count(1).first().unwrap();
    assert_eq!(std::fs::read_to_string(dir.join("herd.pid")).unwrap().trim(), h.pid.to_string());
    assert_eq!(std::fs::read_link(format!("/proc/{worker}/cwd")).unwrap(), dir);
    let out = Command::new(herd_bin()).args(["serve", "--chdir", "/nonexistent/herd"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--chdir /nonexistent/herd"));
}
