//! Who workers run as (`--user`, `--group`), gunicorn's way: the arbiter keeps the identity it
//! was started with (it binds, writes the pidfile, signals its workers), and each worker takes
//! the configured one right after fork, before the application or the program runs — after
//! the listeners were bound, so a privileged port works.

use nix::unistd::{Gid, Group, Uid, User};
use std::ffi::CString;
use std::io;

/// A user and group to run workers as, resolved once at startup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) uid: Uid,
    pub(crate) gid: Gid,
    /// The user's name, for its supplementary groups (`initgroups`); `None`: a bare uid with
    /// no entry, which gets no supplementary group.
    name: Option<CString>,
}

/// Resolves `--user` and `--group` (names, or numeric ids) into an identity; `None` when neither
/// is given. A user without a group takes the user's primary group.
pub(crate) fn resolve(user: Option<&str>, group: Option<&str>) -> Result<Option<Identity>, String> {
    if user.is_none() && group.is_none() {
        return Ok(None);
    }
    let lookup_user = |u: &str| -> Result<(Uid, Option<Gid>, Option<CString>), String> {
        let found = match u.parse::<u32>() {
            Ok(n) => User::from_uid(Uid::from_raw(n)),
            Err(_) => User::from_name(u),
        }
        .map_err(|e| format!("--user {u}: {e}"))?;
        match (found, u.parse::<u32>()) {
            (Some(e), _) => Ok((e.uid, Some(e.gid), CString::new(e.name).ok())),
            (None, Ok(n)) => Ok((Uid::from_raw(n), None, None)),
            (None, Err(_)) => Err(format!("--user {u}: no such user")),
        }
    };
    let lookup_group = |g: &str| -> Result<Gid, String> {
        if let Ok(n) = g.parse::<u32>() {
            return Ok(Gid::from_raw(n));
        }
        match Group::from_name(g).map_err(|e| format!("--group {g}: {e}"))? {
            Some(e) => Ok(e.gid),
            None => Err(format!("--group {g}: no such group")),
        }
    };
    let (uid, primary, name) = match user {
        Some(u) => lookup_user(u)?,
        None => (Uid::current(), None, None),
    };
    let gid = match (group, primary) {
        (Some(g), _) => lookup_group(g)?,
        (None, Some(p)) => p,
        (None, None) => Gid::current(),
    };
    Ok(Some(Identity { uid, gid, name }))
}

impl Identity {
    /// Becomes this identity (in a forked worker): supplementary groups, group, then user; the
    /// user last, since it gives up the right to the rest. It clears the parent-death signal
    /// (credentials changed): set that after this.
    pub(crate) fn assume(&self) -> io::Result<()> {
        if Uid::effective().is_root() {
            match &self.name {
                Some(n) => nix::unistd::initgroups(n, self.gid)?,
                None => nix::unistd::setgroups(&[self.gid])?,
            }
        }
        nix::unistd::setgid(self.gid)?;
        nix::unistd::setuid(self.uid)?;
        Ok(())
    }
}
