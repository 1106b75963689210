//! The pidfile: written atomically (temp file + rename) when the arbiter starts, removed when it
//! exits, and never written over a live process's.

use nix::sys::signal::kill;
use nix::unistd::Pid;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A pidfile that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PidfileError {
    /// Another live process's pid is in it.
    #[error("pidfile {path} belongs to running process {pid}; is herd already running?")]
    Live {
        /// The pidfile.
        path: PathBuf,
        /// The pid in it.
        pid: i32,
    },
    /// It cannot be read or written.
    #[error("pidfile {path}: {source}")]
    Io {
        /// The pidfile.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

/// A checked pidfile path.
#[derive(Debug)]
pub struct Pidfile {
    path: PathBuf,
}

/// The pid recorded in `path`, if it holds one.
pub fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok().filter(|&p: &i32| p > 0)
}

fn alive(pid: i32) -> bool {
    // EPERM means it exists but is someone else's.
    !matches!(kill(Pid::from_raw(pid), None), Err(nix::errno::Errno::ESRCH))
}

impl Pidfile {
    /// Refuses a pidfile that holds a live process other than this one or `parent` (the arbiter
    /// this one replaces); a stale one is fine.
    ///
    /// Nothing that is not a pidfile is ever replaced: a path that is not a regular file, or a
    /// file holding anything but a pid (or nothing), is an error naming it; so is a directory
    /// that does not exist, named as the operator gave the path.
    pub fn check(path: PathBuf, parent: Option<i32>) -> Result<Pidfile, PidfileError> {
        let refuse = |path: PathBuf, why: String| {
            Err(PidfileError::Io { path, source: io::Error::new(io::ErrorKind::AlreadyExists, why) })
        };
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if !dir.is_dir() {
            let why = format!("directory {} does not exist", dir.display());
            return Err(PidfileError::Io { path, source: io::Error::new(io::ErrorKind::NotFound, why) });
        }
        match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Pidfile { path }),
            Err(source) => return Err(PidfileError::Io { path, source }),
            Ok(m) if !m.file_type().is_file() => {
                return refuse(path, "it exists and is not a regular file; herd does not replace it".into());
            }
            Ok(_) => {}
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|source| PidfileError::Io { path: path.clone(), source })?;
        let text = text.trim();
        if text.is_empty() {
            return Ok(Pidfile { path });
        }
        let Some(pid) = text.parse::<i32>().ok().filter(|&p| p > 0) else {
            return refuse(path, "it holds something other than a pid; herd does not replace it".into());
        };
        if pid != std::process::id() as i32 && Some(pid) != parent && alive(pid) {
            return Err(PidfileError::Live { path, pid });
        }
        Ok(Pidfile { path })
    }

    /// Writes `pid` atomically: a reader sees the old content or the new, never a torn one.
    pub fn write(&self, pid: u32) -> Result<(), PidfileError> {
        let err = |source| PidfileError::Io { path: self.path.clone(), source };
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(format!(".{pid}.tmp"));
        let tmp = PathBuf::from(tmp);
        let mut f = std::fs::File::create(&tmp).map_err(err)?;
        f.write_all(format!("{pid}\n").as_bytes()).map_err(err)?;
        f.sync_all().map_err(err)?;
        std::fs::rename(&tmp, &self.path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            err(e)
        })
    }

    /// Removes the pidfile (and its `.oldbin`) if it still holds `pid` (a new arbiter may have
    /// taken it over).
    pub fn remove(&self, pid: u32) {
        for p in [self.path.clone(), self.oldbin()] {
            if read_pid(&p) == Some(pid as i32) {
                let _ = std::fs::remove_file(p);
            }
        }
    }

    /// `<pidfile>.oldbin`: where an arbiter that started its replacement keeps its pid (nginx's
    /// and gunicorn's convention), so that the new arbiter can write the pidfile.
    pub fn oldbin(&self) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(".oldbin");
        PathBuf::from(p)
    }

    /// Moves the pidfile to `.oldbin` (before starting a replacement arbiter).
    pub fn to_oldbin(&self, pid: u32) {
        if read_pid(&self.path) == Some(pid as i32) {
            let _ = std::fs::rename(&self.path, self.oldbin());
        }
    }

    /// Takes the pidfile back from `.oldbin` (the replacement died) unless a live process holds it.
    pub fn back_from_oldbin(&self, pid: u32) {
        let held = read_pid(&self.path).is_some_and(|p| p != pid as i32 && alive(p));
        if read_pid(&self.oldbin()) == Some(pid as i32) && !held {
            let _ = std::fs::rename(self.oldbin(), &self.path);
        }
    }
}
