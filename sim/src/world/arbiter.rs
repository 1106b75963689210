//! The arbiter's side of the simulated world: its inputs and actions, forks, reaps, deaths, and
//! readiness reports from the listeners.

use super::*;

impl World {
    pub(super) fn send_signal_later(&mut self, sig: Sig, d: Duration) {
        // The kernel keeps one pending bit per standard signal: a second one coalesces.
        if self.pending_signal[sig as usize] {
            return;
        }
        self.pending_signal[sig as usize] = true;
        self.schedule_in(d + Duration::from_nanos(10 * US), Ev::SignalDelivered(sig));
    }

    /// The runtime's epoll: report readiness of a watched listener with connections waiting.
    pub(super) fn report_ready(&mut self, s: ListenerId) {
        let l = &mut self.listeners[usize::from(s.0)];
        if l.watched && !l.queue.is_empty() && !l.ready_scheduled {
            l.ready_scheduled = true;
            self.schedule_in(Duration::from_nanos(10 * US), Ev::Ready(s));
        }
    }

    /// A connection arrived (or a watch began): an edge for the arbiter, and readable listeners
    /// for workers waiting on them.
    pub(super) fn listener_changed(&mut self, s: ListenerId) {
        if self.listeners[usize::from(s.0)].queue.is_empty() {
            return;
        }
        self.report_ready(s);
        // Shared mode: every waiting worker is woken (the thundering herd of poll()).
        let waiting: Vec<WorkerId> = self
            .procs
            .iter()
            .filter(|(_, p)| p.dead.is_none() && p.core.waits_on_listeners())
            .map(|(&id, _)| id)
            .collect();
        for id in waiting {
            self.worker_input(id, worker::Input::ListenersReadable);
        }
    }

    pub(super) fn arbiter_input(&mut self, input: Input) {
        if self.arbiter_exited.is_some() {
            return;
        }
        self.log(|| format!("arbiter <- {input:?}"));
        match self.arb.step(self.now, input) {
            Ok(actions) => self.arbiter_actions(actions),
            Err(v) => self.fail(v),
        }
    }

    pub(super) fn arbiter_actions(&mut self, actions: Vec<Action>) {
        for a in actions {
            if self.violation.is_some() {
                return;
            }
            self.log(|| format!("arbiter -> {a:?}"));
            self.arbiter_action(a);
        }
        if self.stop_sent.is_none() && self.arb.arbiter.phase() != Phase::Running {
            // Nothing but a row of boot failures stops the server before the world's TERM: the
            // run ends with the halt, which must end as a stop does (with exit 3).
            self.log(|| "the arbiter halts".into());
            self.halted = true;
            self.tally.halts = 1;
            self.stop_sent = Some(self.now);
            self.phase = RunPhase::Stopping;
            let c = &self.config;
            self.schedule_in(c.graceful_timeout + c.kill_grace + Duration::from_secs(1), Ev::End);
        }
        if self.arbiter_exited.is_none()
            && let Some(t) = self.arb.arbiter.poll_timeout()
            && Some(t) != self.arbiter_timer_at
        {
            let at = t.max(self.now);
            self.arbiter_timer_at = Some(at);
            self.schedule_at(at, Ev::ArbiterTimer);
        }
    }

    pub(super) fn arbiter_action(&mut self, a: Action) {
        match a {
            Action::Spawn { id, role, max_requests, .. } => {
                if self.rng.chance(self.mix.fork_fail) {
                    self.log(|| format!("fault: fork of {id} fails"));
                    self.schedule_in(Duration::from_nanos(US), Ev::SpawnFailed(id));
                    return;
                }
                let as_of = self.store.load();
                let lane = match &mut self.timeline {
                    Some(t) => t.spawn(id, self.now),
                    None => 0,
                };
                let core = Worker::new(
                    WorkerConfig {
                        accept_mode: self.config.accept_mode,
                        timeout: self.config.pace(),
                        max_requests,
                        kind: self.kind,
                    },
                    self.now,
                );
                let cron = (role == Role::Cron).then(|| {
                    #[allow(unused_mut)]
                    let mut core = CronWorker::new(
                        CronConfig {
                            timeout: self.config.pace(),
                            max_jobs: max_requests,
                            max_idle: Duration::from_secs(1),
                            retry: Duration::from_millis(200),
                            lease: self.crons.as_ref().map_or(Duration::MAX, |c| c.lease),
                        },
                        self.now,
                    );
                    #[cfg(feature = "mutants")]
                    core.set_mutant(self.mutant);
                    CronProc { core, running: None }
                });
                if cron.is_none() {
                    self.checks().spawned(id, max_requests);
                }
                self.procs.insert(
                    id,
                    Proc {
                        core,
                        budget: max_requests,
                        started: false,
                        dead: None,
                        reap_wanted: false,
                        serving: None,
                        conns: Vec::new(),
                        draining: false,
                        next_conn: 0,
                        hung: false,
                        crash_at_done: false,
                        registry: Registry::new(self.db_version, as_of),
                        decoder: Decoder::new(),
                        to_arbiter_free: self.now,
                        to_worker_free: self.now,
                        in_flight: 0,
                        timer_at: None,
                        skew_ms: 0,
                        served: 0,
                        last_sent: self.now,
                        unreported: None,
                        lane,
                        cron,
                    },
                );
                let fork = Duration::from_nanos((200 + self.rng.up_to(2_000) as u64) * US);
                self.schedule_in(fork, Ev::Forked(id));
            }
            Action::Send { to, msg } => {
                // Every frame to a worker is an `ACCEPT:<socket>`.
                // Workers the arbiter may still dispatch to: alive, or dead and not yet reaped
                // (it learns of a death only from the reap).
                let unreaped = self.procs.len();
                self.checks().dispatched(to, unreaped);
                let d = self.delay();
                let Some(p) = self.procs.get_mut(&to) else { return };
                if p.dead.is_some() {
                    return;
                }
                let at = (self.now + d).max(p.to_worker_free);
                p.to_worker_free = at;
                self.schedule_at(at, Ev::ToWorker { to, msg });
            }
            Action::Kill { id, signal, .. } => {
                self.checks().leaving(id);
                if let Some(t) = &mut self.timeline
                    && let Some(p) = self.procs.get(&id)
                {
                    t.kill(p.lane, self.now, signal);
                }
                self.schedule_in(SIGNAL_DELAY, Ev::WorkerSignal(id, signal));
            }
            Action::Watch(s) => {
                self.listeners[usize::from(s.0)].watched = true;
                self.listener_changed(s);
            }
            Action::Unwatch(s) => self.listeners[usize::from(s.0)].watched = false,
            Action::Poll(s) => self.report_ready(s),
            Action::Reap => {
                let zombies: Vec<WorkerId> =
                    self.procs.iter().filter(|(_, p)| p.dead.is_some()).map(|(&id, _)| id).collect();
                for id in zombies {
                    let p = self.procs.get_mut(&id).expect("proc");
                    if p.in_flight == 0 {
                        self.reap_one(id);
                    } else {
                        // The runtime reads a dead worker's pipe to the end before reporting it.
                        p.reap_wanted = true;
                    }
                }
            }
            Action::Reexec => {
                let d = Duration::from_millis(10 + u64::from(self.rng.up_to(90)));
                self.schedule_in(d, Ev::ReexecEnded);
            }
            Action::ReopenLogs => {}
            Action::Exit { code, .. } => {
                self.arbiter_exited = Some(code);
                self.log(|| format!("arbiter exited with {code}"));
            }
        }
    }

    pub(super) fn reap_one(&mut self, id: WorkerId) {
        let Some(p) = self.procs.remove(&id) else { return };
        self.checks().reaped(id);
        let status = p.dead.expect("dead");
        if let Some(s) = p.unreported {
            // The arbiter will hand this dispatch out again, but its accept was already tried:
            // the next one may find nothing, through no fault of the arbiter.
            self.checks().taken_by_the_dead(s);
        }
        self.arbiter_input(Input::Exited { id, status });
    }

    pub(super) fn forked(&mut self, id: WorkerId) {
        let Some(p) = self.procs.get_mut(&id) else { return };
        if p.dead.is_some() {
            return;
        }
        p.started = true;
        if self.rng.chance(self.mix.boot_crash) {
            self.log(|| format!("fault: {id} dies while booting"));
            return self.die(id, ExitStatus::Code(1));
        }
        let now = self.now;
        if let Some(p) = self.procs.get_mut(&id) {
            match &mut p.cron {
                Some(c) => c.core.start(now),
                None => p.core.start(now),
            }
        }
        self.worker_actions(id);
    }

    pub(super) fn die(&mut self, id: WorkerId, status: ExitStatus) {
        let Some(p) = self.procs.get_mut(&id) else { return };
        if p.dead.is_some() {
            return;
        }
        p.dead = Some(status);
        p.timer_at = None;
        if let Some(c) = &mut p.cron
            && c.running.take().is_some()
            && let Some(crons) = &mut self.crons
        {
            crons.monitor.died(id);
        }
        if p.serving.take().is_some() {
            self.tally.failed_killed += 1;
        }
        // Each open connection of an async worker loses its request under way.
        self.tally.failed_killed += p.conns.drain(..).count() as u64;
        let lane = p.lane;
        if let Some(t) = &mut self.timeline {
            t.exit(lane, self.now, status);
        }
        self.log(|| format!("{id} died {status:?}"));
        self.send_signal_later(Sig::Chld, Duration::ZERO);
    }
}
