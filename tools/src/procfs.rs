//! A herd server seen from outside, through `/proc`: its children, their names and states, its
//! descriptors and memory. What `herd-chaos` and the integration tests watch a running server by
//! (Linux only, as herd is).

use std::collections::BTreeSet;

/// One child process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Child {
    /// Its pid.
    pub pid: i32,
    /// Its state letter (`R`, `S`, `Z` for a zombie, ...).
    pub state: char,
    /// Its name: herd sets `herd: arbiter` and `herd: worker N`.
    pub comm: String,
}

/// Every child of `parent` (none if `/proc` cannot be read).
pub fn children(parent: i32) -> Vec<Child> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else { return out };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // pid (comm) state ppid ...: comm may hold spaces and parentheses, so split at the last ')'.
        let Some((head, rest)) = stat.rsplit_once(')') else { continue };
        let mut f = rest.split_whitespace();
        let state = f.next().and_then(|s| s.chars().next()).unwrap_or('?');
        if f.next().and_then(|s| s.parse::<i32>().ok()) == Some(parent) {
            let comm = head.split_once('(').map_or("", |(_, c)| c).to_owned();
            out.push(Child { pid, state, comm });
        }
    }
    out
}

/// The live worker children of an arbiter: not zombies, and not a child arbiter an upgrade
/// started.
pub fn workers_of(arbiter: i32) -> BTreeSet<i32> {
    children(arbiter)
        .into_iter()
        .filter(|c| c.state != 'Z' && c.comm != "herd: arbiter")
        .map(|c| c.pid)
        .collect()
}

/// The zombie children of an arbiter: exited and not yet reaped.
pub fn zombies_of(arbiter: i32) -> BTreeSet<i32> {
    children(arbiter).into_iter().filter(|c| c.state == 'Z').map(|c| c.pid).collect()
}

/// A process's name (`/proc/PID/comm`), empty if it is gone.
pub fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).map(|s| s.trim().to_owned()).unwrap_or_default()
}

/// A process's open descriptors (0 if it is gone).
pub fn fd_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// A process's resident memory in KiB (`VmRSS`; 0 if it is gone).
pub fn rss_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("VmRSS:").and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
            })
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This test process, seen from its parent (cargo's test runner or a shell): a live child
    /// with this pid and this name; it holds descriptors and memory.
    #[test]
    fn a_process_is_seen_from_its_parent() {
        let me = std::process::id() as i32;
        let parent = nix::unistd::getppid().as_raw();
        let seen = children(parent).into_iter().find(|c| c.pid == me).expect("listed by its parent");
        assert_eq!(seen.comm, comm(me));
        assert_ne!(seen.state, 'Z');
        assert!(!zombies_of(parent).contains(&me));
        assert!(fd_count(me) >= 3, "stdin, stdout, stderr at least");
        assert!(rss_kib(me) > 0);
        assert_eq!((fd_count(-1), rss_kib(-1), comm(-1)), (0, 0, String::new()), "no such process");
    }
}
