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

/// A number of `/proc/PID/status` (the line `name:`, its unit dropped; 0 if the process is gone).
fn status_number(pid: i32, name: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                let v = l.strip_prefix(name)?.strip_prefix(':')?;
                v.trim().trim_end_matches(" kB").parse().ok()
            })
        })
        .unwrap_or(0)
}

/// A process's resident memory in KiB (`VmRSS`; 0 if it is gone).
pub fn rss_kib(pid: i32) -> u64 {
    status_number(pid, "VmRSS")
}

/// How many times a process's main thread gave up the CPU to wait (`voluntary_ctxt_switches`):
/// each sleep it woke from (0 if it is gone).
pub fn voluntary_switches(pid: i32) -> u64 {
    status_number(pid, "voluntary_ctxt_switches")
}

/// CPU time (user + system, in clock ticks) a process has used, from `/proc/PID/stat` (0 if it
/// is gone).
pub fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at the state, field 3.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
        + fields.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
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
        // A sleep is a voluntary switch (of the main thread, if the test runs there; if not, the
        // main thread has slept waiting for the test's thread).
        std::thread::sleep(std::time::Duration::from_millis(1));
        assert!(voluntary_switches(me) > 0);
        let spun = cpu_ticks(me);
        let start = std::time::Instant::now();
        while cpu_ticks(me) == spun {
            assert!(start.elapsed() < std::time::Duration::from_secs(10), "CPU time is counted");
        }
        assert_eq!(
            (fd_count(-1), rss_kib(-1), comm(-1), voluntary_switches(-1), cpu_ticks(-1)),
            (0, 0, String::new(), 0, 0),
            "no such process"
        );
    }
}
