//! Records what the runtime feeds a core and carries out (`--trace-events DIR`), one JSON line per
//! [`herd_protocol::trace::Entry`], for `herd-sim --check-trace DIR` to replay.
//!
//! Recording never stops the server: a failed write is logged once and recording ends.

use herd_protocol::trace::ArbiterEntry;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// A trace being written, or none.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    out: Option<(BufWriter<File>, PathBuf)>,
}

impl Recorder {
    /// A recorder writing `dir/name`, a file herd creates (an existing one is an error: it is not
    /// herd's to overwrite); none without a directory.
    pub(crate) fn create(dir: Option<&Path>, name: &str) -> io::Result<Recorder> {
        let Some(dir) = dir else { return Ok(Recorder::default()) };
        let path = dir.join(name);
        let file = OpenOptions::new().write(true).create_new(true).open(&path)?;
        Ok(Recorder { out: Some((BufWriter::new(file), path)) })
    }

    /// Appends one entry.
    pub(crate) fn record(&mut self, entry: &ArbiterEntry) {
        let Some((w, path)) = &mut self.out else { return };
        let r =
            serde_json::to_writer(&mut *w, entry).map_err(io::Error::from).and_then(|()| w.write_all(b"\n"));
        if let Err(e) = r {
            tracing::error!(path = %path.display(), error = %e, "trace events: cannot write; recording stops");
            self.out = None;
        }
    }

    /// Writes out what is buffered (at the end of each drain, and before a fork, so that a child
    /// never holds a copy of it).
    pub(crate) fn flush(&mut self) {
        let Some((w, path)) = &mut self.out else { return };
        if let Err(e) = w.flush() {
            tracing::error!(path = %path.display(), error = %e, "trace events: cannot write; recording stops");
            self.out = None;
        }
    }

    /// Its descriptor, for a forked child to close.
    pub(crate) fn fd(&self) -> Option<i32> {
        self.out.as_ref().map(|(w, _)| w.get_ref().as_raw_fd())
    }
}
