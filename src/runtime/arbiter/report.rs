//! What the arbiter tells the operator: the log's words for a worker's end and for a halt, and
//! the status `herd ctl status` and the metrics endpoint answer (docs/operations.md).

use super::*;

/// The log's words for a worker's end: why, then how (`recycled after its request budget (exit
/// 0)`, `timed out (killed by SIGABRT)`, `crashed (killed by SIGSEGV)`).
pub(super) fn exit_words(leaving: Option<Leaving>, status: ExitStatus) -> String {
    let signal_name = |n: i32| nix::sys::signal::Signal::try_from(n).map(|s| s.as_str());
    let how = match status {
        // A worker's own handler of a fatal signal exits 128 + its number (ABRT: 134).
        ExitStatus::Code(c) if c > 128 && signal_name(c - 128).is_ok() && c != crate::os::sys::EXIT_CPU => {
            format!("exit {c}, on {}", signal_name(c - 128).unwrap_or_default())
        }
        ExitStatus::Code(c) => format!("exit {c}"),
        ExitStatus::Signaled(n) => match nix::sys::signal::Signal::try_from(n) {
            Ok(sig) => format!("killed by {}", sig.as_str()),
            Err(_) => format!("killed by signal {n}"),
        },
    };
    format!("{} ({how})", exit_reason(leaving, status))
}

/// Why a worker left, in the log's words (`timed out`); `herd ctl status` counts by them.
pub(super) fn exit_reason(leaving: Option<Leaving>, status: ExitStatus) -> &'static str {
    use herd_protocol::arbiter::KillReason as K;
    use herd_protocol::message::ByeReason as B;
    match (leaving, status) {
        (Some(Leaving::Bye(B::Recycle)), _) => "recycled after its request budget",
        (Some(Leaving::Bye(B::Memory)), _) => "over its memory limit",
        (Some(Leaving::Bye(B::Parent)), _) => "its arbiter went away",
        (Some(Leaving::Bye(B::Stop) | Leaving::Killed(K::Stop)), _) => "stopped",
        (Some(Leaving::Killed(K::Retire)), _) => "retired",
        (Some(Leaving::Killed(K::Timeout)), _) => "timed out",
        (Some(Leaving::Killed(K::GraceExpired)), _) => "did not stop within its grace",
        (Some(Leaving::Killed(K::Protocol)), _) => "broke the protocol",
        (None, ExitStatus::Code(crate::os::sys::EXIT_CPU)) => "over its CPU limit",
        (None, ExitStatus::Code(crate::runtime::worker::EXIT_PANIC)) => "the application panicked",
        (None, ExitStatus::Code(herd_protocol::arbiter::WORKER_BOOT_ERROR)) => "could not boot",
        (None, ExitStatus::Code(herd_protocol::arbiter::APP_LOAD_ERROR)) => "could not load the application",
        (None, ExitStatus::Code(0)) => "exited",
        (None, ExitStatus::Code(c)) if c > 128 => "crashed",
        (None, ExitStatus::Code(_)) => "failed",
        (None, ExitStatus::Signaled(_)) => "crashed",
    }
}

/// Why a running server halted on `input` (a worker's death): the log's words, naming how the
/// last worker ended (`10 workers in a row died before booting (--max-boot-failures 10); the last
/// failed (exit 7)`). `None` if the input was no worker's death.
pub(super) fn halt_words(core: &Arbiter, input: Input) -> Option<String> {
    let last = match input {
        Input::Exited { status, .. } => exit_words(None, status),
        Input::SpawnFailed { .. } => "could not be started".to_string(),
        _ => return None,
    };
    Some(if core.boot_failures_exhausted() {
        format!(
            "{} workers in a row died before booting (--max-boot-failures {}); the last {last}",
            core.failed_boots(),
            core.config().max_boot_failures
        )
    } else {
        format!("a worker {last}")
    })
}

impl<A: WorkerMain> Runner<'_, A> {
    pub(super) fn accept_control(&mut self) {
        let Some(c) = &mut self.res.control else { return };
        for (key, stream) in c.accept() {
            let ev = EpollEvent::new(EpollFlags::EPOLLIN, CONTROL_CONN | key);
            if let Err(e) = self.epoll.add(stream.as_fd(), ev) {
                tracing::warn!(error = %e, "cannot watch a control connection");
            }
        }
    }

    pub(super) fn accept_metrics(&mut self) {
        let Some(m) = &mut self.res.metrics else { return };
        for (key, stream) in m.accept(std::time::Instant::now()) {
            let ev = EpollEvent::new(EpollFlags::EPOLLIN, METRICS_CONN | key);
            if let Err(e) = self.epoll.add(stream.as_fd(), ev) {
                tracing::warn!(error = %e, "cannot watch a metrics connection");
            }
        }
    }

    /// A metrics connection is readable or writable: answered as soon as its head is in, written
    /// as its socket takes it; the arbiter never waits on it.
    pub(super) fn scrape(&mut self, key: u64) {
        use crate::metrics::Next;
        let Some(m) = &mut self.res.metrics else { return };
        let mut next = m.ready(key);
        // The status is built once a head is complete, not on every partial read or write.
        if next == Next::Answer {
            let status = self.status();
            let Some(m) = &mut self.res.metrics else { return };
            next = m.answer(key, &status);
        }
        let Some(m) = &self.res.metrics else { return };
        if next == Next::Write
            && let Some(stream) = m.stream(key)
        {
            let ev = EpollEvent::new(EpollFlags::EPOLLOUT, METRICS_CONN | key);
            let _ = self.epoll.modify(stream.as_fd(), &mut { ev });
        }
    }

    pub(super) fn read_control(&mut self, key: u64) {
        let Some(c) = &mut self.res.control else { return };
        if let control::Event::Request(key, req) = c.read(key) {
            tracing::info!(request = ?req, "control request");
            if let Request::Command(cmd) = req {
                self.queue(Input::Control(cmd));
            }
            self.replies.push((key, req));
        }
    }

    pub(super) fn status(&self) -> control::Status {
        let now = self.clock.now();
        let secs = |t: herd_protocol::time::Instant| now.saturating_since(t).as_secs_f64();
        let workers = self
            .core
            .workers()
            .iter()
            .map(|(id, w)| {
                let p = self.procs.get(id);
                let state = match (w.life, w.accepting, w.booted) {
                    (Life::Stopping { .. }, ..) => "stopping",
                    (Life::Killing { .. }, ..) => "killing",
                    (Life::Killed, ..) => "killed",
                    (_, _, false) => "booting",
                    _ if w.role == Role::Cron => "cron",
                    (_, Accepting::Idle, _) => "idle",
                    (_, Accepting::Dispatched(_), _) => "dispatched",
                    (_, Accepting::Busy, _) => "busy",
                };
                control::WorkerStatus {
                    id: id.0,
                    pid: p.map_or(0, |p| p.pid.as_raw()),
                    generation: w.generation,
                    role: match w.role {
                        Role::Http => "http",
                        Role::Cron => "cron",
                    }
                    .to_owned(),
                    state: state.to_owned(),
                    requests: p.and_then(|p| p.slot).map_or(0, |s| self.res.scoreboard.requests(s)),
                    age_secs: secs(w.spawned_at),
                    last_heartbeat_secs: secs(w.last_seen),
                    command: (w.role == Role::Http).then(|| self.app.command()).flatten(),
                }
            })
            .collect();
        let st = self.core.stats();
        control::Status {
            pid: self.me.as_raw(),
            phase: match self.core.phase() {
                Phase::Running => "running",
                Phase::Stopping { .. } => "stopping",
                Phase::Exited => "exited",
            }
            .to_owned(),
            target: self.core.target(),
            generation: self.core.generation(),
            accept_mode: self.res.config.accept_mode.name().to_owned(),
            workers,
            counters: control::Counters {
                spawns: st.spawns,
                deaths: st.deaths,
                timeouts: st.timeouts,
                recycles: st.recycles,
                dispatches: st.dispatches,
                protocol_errors: st.protocol_errors,
                boot_failures: st.boot_failures,
                in_flight_deaths: self.in_flight_deaths,
                deaths_by_reason: self.exits.clone(),
                signals: self.signals.clone(),
            },
            listeners: self
                .res
                .listeners
                .iter()
                .map(|l| control::ListenerStatus { address: l.url(), queued: l.queued() })
                .collect(),
            cron: self.cron_status(),
        }
    }

    pub(super) fn cron_status(&self) -> Vec<control::CronStatus> {
        let Some(cron) = &self.res.cron else { return Vec::new() };
        let Some((rows, now)) = cron.store().at_a_glance() else { return Vec::new() };
        cron.jobs()
            .iter()
            .zip(rows)
            .map(|(job, row)| control::CronStatus {
                name: job.name.clone(),
                interval_secs: row.interval.as_secs_f64(),
                runs: row.runs,
                failures: row.failures,
                running: row.lease.is_some_and(|(_, until)| until > now),
                next_due_secs: if row.next_call >= now {
                    row.next_call.saturating_since(now).as_secs_f64()
                } else {
                    -now.saturating_since(row.next_call).as_secs_f64()
                },
            })
            .collect()
    }
}
