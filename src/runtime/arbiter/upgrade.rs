//! Zero-downtime upgrade (USR2): the replacement arbiter, forked and executed with the
//! listeners and the registry store passed on.

use super::*;

impl<A: WorkerMain> Runner<'_, A> {
    /// Starts the replacement arbiter: fork, pass the listeners as `LISTEN_FDS` (3..) and the
    /// registry store, exec this program with the same arguments. The child execs with every
    /// signal blocked; the new arbiter unblocks them once its handlers are installed.
    pub(super) fn reexec(&mut self) -> io::Result<Pid> {
        let n = self.res.listeners.len() as i32;
        // The shared-memory store is passed on; a database store is reopened from the arguments.
        let shm_fd = match &self.res.store {
            Store::Shm(shm) => Some(shm.raw_fd()),
            #[allow(unreachable_patterns)]
            _ => None,
        };
        let cron_fd = match self.res.cron.as_ref().map(|c| &c.store) {
            Some(crate::cron::JobStore::Shm(s)) => Some(s.raw_fd()),
            _ => None,
        };
        let store_fd = LISTEN_FDS_START + n;
        let exe = CString::new(self.exe.as_os_str().as_encoded_bytes())?;
        let argv: Vec<CString> =
            self.args.iter().map(|a| CString::new(a.as_encoded_bytes())).collect::<Result<_, _>>()?;
        let mut env: Vec<(OsString, OsString)> = std::env::vars_os()
            .filter(|(k, _)| {
                ![
                    LISTEN_FDS,
                    LISTEN_PID,
                    "LISTEN_FDNAMES",
                    REGISTRY_FD_ENV,
                    crate::cron::CRON_FD_ENV,
                    UPGRADE_FROM_ENV,
                ]
                .iter()
                .any(|x| k == x)
            })
            .collect();
        env.push((LISTEN_FDS.into(), n.to_string().into()));
        if shm_fd.is_some() {
            env.push((REGISTRY_FD_ENV.into(), store_fd.to_string().into()));
        }
        if cron_fd.is_some() {
            let at = store_fd + i32::from(shm_fd.is_some());
            env.push((crate::cron::CRON_FD_ENV.into(), at.to_string().into()));
        }
        env.push((UPGRADE_FROM_ENV.into(), self.me.as_raw().to_string().into()));
        let sources: Vec<i32> =
            self.res.listeners.iter().map(|l| l.as_fd().as_raw_fd()).chain(shm_fd).chain(cron_fd).collect();
        if let Some(p) = &self.res.pidfile {
            p.to_oldbin(self.me.as_raw() as u32);
        }
        use std::io::Write;
        let _ = io::stdout().flush();
        let _ = io::stderr().flush();
        self.recorder.flush();
        let blocked = Blocked::all()?;
        // SAFETY: single-threaded arbiter; the child only rearranges descriptors and execs.
        match unsafe { fork() } {
            Err(e) => {
                blocked.restore()?;
                Err(e.into())
            }
            Ok(ForkResult::Child) => {
                let code = exec_child(&exe, &argv, env, &sources);
                // SAFETY: exec failed; leave without running the arbiter's destructors.
                unsafe { nix::libc::_exit(code) }
            }
            Ok(ForkResult::Parent { child }) => {
                blocked.restore()?;
                Ok(child)
            }
        }
    }
}

/// In the forked child of an upgrade: moves `sources` to descriptors 3.. (inheritable), sets
/// `LISTEN_PID` to this process, and execs. Returns only on failure, with an exit code.
pub(super) fn exec_child(
    exe: &CString,
    argv: &[CString],
    mut env: Vec<(OsString, OsString)>,
    sources: &[i32],
) -> i32 {
    use nix::libc;
    // First out of the way (above any target number), then into place; dup2 clears CLOEXEC.
    let high: Vec<i32> = sources
        .iter()
        // SAFETY: plain descriptor calls on descriptors this process holds.
        .map(|&fd| unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 1000) })
        .collect();
    if high.iter().any(|&fd| fd < 0) {
        return 126;
    }
    for (i, &fd) in high.iter().enumerate() {
        // SAFETY: as above.
        if unsafe { libc::dup2(fd, LISTEN_FDS_START + i as i32) } < 0 {
            return 126;
        }
    }
    env.push((LISTEN_PID.into(), std::process::id().to_string().into()));
    let envp: Vec<CString> = env
        .into_iter()
        .filter_map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            CString::new(kv.into_encoded_bytes()).ok()
        })
        .collect();
    let _ = nix::unistd::execve(exe, argv, &envp);
    127
}
