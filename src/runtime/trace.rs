//! Records what the runtime feeds a core and carries out (`--trace-events DIR`), one JSON line per
//! [`herd_protocol::trace::Entry`], for `herd-sim --check-trace DIR` to replay: the arbiter's
//! (its loop records by hand) and each worker's and cron worker's (through [`Traced`]).
//!
//! Recording never stops the server: a failed write is logged once and recording ends.

use herd_protocol::cron::{CronAction, CronConfig, CronInput, CronWorker};
use herd_protocol::time::Instant;
use herd_protocol::trace::Entry;
use herd_protocol::worker::{self, Worker, WorkerConfig};
use serde::Serialize;
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

    /// As [`Recorder::create`] for a worker process: a failure is logged and the worker runs on
    /// unrecorded (recording never stops the server).
    pub(crate) fn for_worker(dir: Option<&Path>, name: &str) -> Recorder {
        Recorder::create(dir, name).unwrap_or_else(|e| {
            tracing::error!(file = name, error = %e, "trace events: cannot create; this worker is not recorded");
            Recorder::default()
        })
    }

    /// Appends one entry.
    pub(crate) fn record<C: Serialize, I: Serialize, A: Serialize>(&mut self, entry: &Entry<C, I, A>) {
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

/// A worker core as its driver sees it: started once, then fed, timed out and drained.
pub(crate) trait Core {
    /// Its configuration.
    type Config: Serialize + Clone;
    /// What it is fed.
    type Input: Serialize + Copy;
    /// What it asks for.
    type Action: Serialize + Copy;
    /// A core made and started at `at`.
    fn start(config: Self::Config, at: Instant) -> Self;
    /// Handles one input.
    fn handle(&mut self, at: Instant, input: Self::Input);
    /// The timeout pass.
    fn handle_timeout(&mut self, at: Instant);
    /// The next action.
    fn poll_action(&mut self) -> Option<Self::Action>;
}

impl Core for Worker {
    type Config = WorkerConfig;
    type Input = worker::Input;
    type Action = worker::Action;
    fn start(config: WorkerConfig, at: Instant) -> Self {
        let mut w = Worker::new(config, at);
        w.start(at);
        w
    }
    fn handle(&mut self, at: Instant, input: worker::Input) {
        Worker::handle(self, at, input);
    }
    fn handle_timeout(&mut self, at: Instant) {
        Worker::handle_timeout(self, at);
    }
    fn poll_action(&mut self) -> Option<worker::Action> {
        Worker::poll_action(self)
    }
}

impl Core for CronWorker {
    type Config = CronConfig;
    type Input = CronInput;
    type Action = CronAction;
    fn start(config: CronConfig, at: Instant) -> Self {
        let mut w = CronWorker::new(config, at);
        w.start(at);
        w
    }
    fn handle(&mut self, at: Instant, input: CronInput) {
        CronWorker::handle(self, at, input);
    }
    fn handle_timeout(&mut self, at: Instant) {
        CronWorker::handle_timeout(self, at);
    }
    fn poll_action(&mut self) -> Option<CronAction> {
        CronWorker::poll_action(self)
    }
}

/// A worker core and the recorder of everything its driver does with it: every call goes through
/// here, so the trace is what the core was really fed and what was really asked of the driver.
pub(crate) struct Traced<C> {
    core: C,
    recorder: Recorder,
}

impl<C: Core> Traced<C> {
    /// Makes and starts the core at `at`, recording to `recorder`.
    pub(crate) fn start(config: C::Config, at: Instant, mut recorder: Recorder) -> Self {
        recorder.record(&Entry::<_, C::Input, C::Action>::New { config: config.clone(), at });
        Traced { core: C::start(config, at), recorder }
    }

    /// The driver read `input` and will feed it later, in the order read.
    pub(crate) fn read(&mut self, input: C::Input) {
        self.recorder.record(&Entry::<C::Config, _, C::Action>::Queued(input));
    }

    /// Feeds one input.
    pub(crate) fn feed(&mut self, at: Instant, input: C::Input) {
        self.recorder.record(&Entry::<C::Config, _, C::Action>::Fed { at, input });
        self.core.handle(at, input);
    }

    /// Runs the timeout pass.
    pub(crate) fn tick(&mut self, at: Instant) {
        self.recorder.record(&Entry::<C::Config, C::Input, C::Action>::Timeout { at });
        self.core.handle_timeout(at);
    }

    /// The driver blocks at `at` until `until` at the latest (`None`: until something happens).
    pub(crate) fn wait(&mut self, at: Instant, until: Option<Instant>) {
        self.recorder.record(&Entry::<C::Config, C::Input, C::Action>::Wait { at, until });
    }

    /// The next action, recorded as carried out (the driver carries each out as it takes it).
    pub(crate) fn next_action(&mut self) -> Option<C::Action> {
        let action = self.core.poll_action()?;
        self.recorder.record(&Entry::<C::Config, C::Input, _>::Done(action));
        Some(action)
    }

    /// Writes out what is recorded (before the driver blocks or exits).
    pub(crate) fn flush(&mut self) {
        self.recorder.flush();
    }
}

impl<C> std::ops::Deref for Traced<C> {
    type Target = C;
    fn deref(&self) -> &C {
        &self.core
    }
}
