//! The simulated world's events: what happens when each scheduled event comes due (a client
//! arrives, a frame is delivered, a process forks or dies, a fault strikes, ...).

use super::*;

impl World {
    pub(super) fn event(&mut self, ev: Ev) {
        match ev {
            Ev::ArbiterTimer => {
                if self.arbiter_timer_at == Some(self.now) {
                    self.arbiter_timer_at = None;
                    self.log(|| "arbiter timeout".into());
                    match self.arb.tick(self.now) {
                        Ok(actions) => self.arbiter_actions(actions),
                        Err(v) => self.fail(v),
                    }
                }
            }
            Ev::SignalDelivered(sig) => {
                // The handler runs: count, then wake (the runtime's exact contract).
                self.pending_signal[sig as usize] = false;
                let mut wake = false;
                self.signals.push_and_wake(sig, || wake = true);
                if wake && !self.wake_scheduled {
                    self.wake_scheduled = true;
                    self.schedule_in(Duration::from_nanos(5 * US), Ev::ArbiterWake);
                }
            }
            Ev::ArbiterWake => {
                let mut cleared = false;
                let batch = self.signals.drain_woken(|| cleared = true);
                if cleared {
                    self.wake_scheduled = false;
                }
                for sig in batch.iter() {
                    self.arbiter_input(Input::Signal(sig));
                }
            }
            Ev::ToArbiter { from, frame } => {
                let Some(p) = self.procs.get_mut(&from) else { return };
                p.in_flight -= 1;
                let mut results = Vec::new();
                p.decoder.decode_all(&frame, &mut results);
                let reap_now = p.dead.is_some() && p.reap_wanted && p.in_flight == 0;
                for r in results {
                    // An answer counts only if the arbiter takes it: a worker caught lying is not heard.
                    let heard = self.arb.arbiter.workers().get(&from).is_some_and(|w| w.trusted);
                    if let Ok(WorkerMsg::Accepted { .. } | WorkerMsg::Empty { .. }) = r
                        && heard
                        && let Some(p) = self.procs.get_mut(&from)
                    {
                        p.unreported = None;
                    }
                    match r {
                        Ok(WorkerMsg::Accept | WorkerMsg::Empty { .. }) if heard => self.checks().asked(from),
                        Ok(WorkerMsg::Bye { .. }) => self.checks().leaving(from),
                        _ => {}
                    }
                    let input = match r {
                        Ok(msg) => Input::Message { from, msg },
                        Err(error) => Input::Malformed { from, error },
                    };
                    self.arbiter_input(input);
                }
                if reap_now {
                    self.reap_one(from);
                }
            }
            Ev::ToWorker { to, msg } => {
                // A hung async worker's event loop is blocked: nothing is read.
                if self.procs.get(&to).is_some_and(|p| p.dead.is_none() && p.started && !self.loop_blocked(p))
                {
                    self.worker_input(to, worker::Input::Message(msg));
                }
            }
            Ev::Ready(s) => {
                let l = &mut self.listeners[usize::from(s.0)];
                l.ready_scheduled = false;
                if l.watched && !l.queue.is_empty() {
                    let queued = l.counts.then_some(l.queue.len() as u32);
                    self.arbiter_input(Input::Ready { socket: s, queued });
                }
            }
            Ev::Forked(id) => self.forked(id),
            Ev::SpawnFailed(id) => {
                self.procs.remove(&id);
                self.arbiter_input(Input::SpawnFailed { id });
            }
            Ev::WorkerTimer(id) => {
                let now = self.now;
                let Some(p) = self.procs.get_mut(&id) else { return };
                if p.dead.is_some() || p.timer_at != Some(now) || (p.hung && self.kind != WorkerKind::Sync) {
                    return;
                }
                p.timer_at = None;
                match &mut p.cron {
                    Some(c) => c.core.handle_timeout(now),
                    None => p.core.handle_timeout(now),
                }
                self.worker_actions(id);
            }
            Ev::WorkerSignal(id, signal) => {
                if self.procs.get(&id).is_none_or(|p| p.dead.is_some()) {
                    return;
                }
                let cron = self.procs.get(&id).is_some_and(|p| p.cron.is_some());
                match signal {
                    KillSignal::Term if cron => self.cron_input(id, CronInput::Signal(WorkerSignal::Term)),
                    KillSignal::Quit if cron => self.cron_input(id, CronInput::Signal(WorkerSignal::Quit)),
                    KillSignal::Term => self.worker_input(id, worker::Input::Signal(WorkerSignal::Term)),
                    KillSignal::Quit => self.worker_input(id, worker::Input::Signal(WorkerSignal::Quit)),
                    KillSignal::Abrt => self.die(id, ExitStatus::Signaled(6)),
                    KillSignal::Kill => self.die(id, ExitStatus::Signaled(9)),
                }
            }
            Ev::RequestDone(id, conn) => {
                let Some(p) = self.procs.get_mut(&id) else { return };
                let open = match self.kind {
                    WorkerKind::Sync => p.serving.is_some(),
                    WorkerKind::Async { .. } => p.conns.iter().any(|c| c.id == conn),
                };
                if p.dead.is_some() || !open || p.hung {
                    return;
                }
                if p.crash_at_done {
                    // SIGQUIT (core dump), SIGILL, SIGABRT, SIGSEGV: none of them is an exit code.
                    let sig = [3, 4, 6, 11][self.rng.up_to(3) as usize];
                    return self.die(id, ExitStatus::Signaled(sig));
                }
                p.serving = None;
                // Connections are what arrive; an async connection counts as served when it
                // closes after its last request.
                if self.kind == WorkerKind::Sync {
                    self.tally.served += 1;
                }
                // Some requests change the registry: commit, then bump (registry or caches).
                let r = self.rng.up_to(99);
                if r < 3 {
                    // The worker changes its own registry (it reflects the new version only if
                    // it was current), commits, then signals.
                    let (before, after_commit) = (self.db_version, self.db_version + 1);
                    self.db_version = after_commit;
                    let p = self.procs.get_mut(&id).expect("proc");
                    p.registry.change(|v| {
                        if *v == before {
                            *v = after_commit;
                        }
                    });
                    let c = p.registry.coherence_mut();
                    if let Some(what) = c.commit() {
                        let after = self.store.increment(what);
                        c.bumped(what, after);
                        self.signalled = self.db_version;
                        self.tally.bumps += 1;
                    }
                } else if r < 6 {
                    let p = self.procs.get_mut(&id).expect("proc");
                    let c = p.registry.coherence_mut();
                    c.invalidate_cache();
                    if let Some(what) = c.commit() {
                        let after = self.store.increment(what);
                        c.bumped(what, after);
                    }
                }
                if let Some(t) = &mut self.timeline {
                    let lane = self.procs[&id].lane;
                    t.request_end(lane, self.now);
                }
                self.worker_input(id, worker::Input::RequestDone);
                if self.kind != WorkerKind::Sync {
                    self.next_request_or_close(id, conn);
                }
            }
            Ev::Fence(id, token) if self.orphans.contains_key(&id) => self.orphan_fence(id, token),
            Ev::JobDone(id, token) if self.orphans.contains_key(&id) => self.orphan_job_done(id, token),
            Ev::Fence(id, token) => {
                let Some(p) = self.procs.get(&id) else { return };
                let Some(c) = &p.cron else { return };
                if p.dead.is_some() || c.running.is_none_or(|r| r.token != token) {
                    return;
                }
                self.log(|| format!("{id}'s job reaches its fence: the process exits"));
                self.die(id, ExitStatus::Code(herd_protocol::cron::EXIT_FENCED));
            }
            Ev::JobDone(id, token) => {
                let Some(p) = self.procs.get_mut(&id) else { return };
                let Some(c) = &mut p.cron else { return };
                if p.dead.is_some() || p.hung || c.running.is_none_or(|r| r.token != token) {
                    return;
                }
                c.running = None;
                let ok = self.crons.as_mut().is_some_and(|c| !c.rng.chance(0.1));
                if let Some(c) = &mut self.crons {
                    c.monitor.ended(id);
                }
                self.cron_input(id, CronInput::JobDone { ok });
            }
            Ev::Arrival => {
                if self.phase != RunPhase::Safety {
                    return;
                }
                let s = self.rng.up_to(u32::from(self.config.listeners) - 1) as u16;
                self.listeners[usize::from(s)].queue.push_back(Conn { arrived: self.now });
                self.tally.arrived += 1;
                self.listener_changed(ListenerId(s));
                let d = exp(&mut self.rng, self.arrival_mean);
                self.schedule_in(d, Ev::Arrival);
            }
            Ev::OutsideKill => {
                if self.phase != RunPhase::Safety {
                    return;
                }
                let live: Vec<WorkerId> = self
                    .procs
                    .iter()
                    .filter(|(_, p)| p.dead.is_none() && p.started)
                    .map(|(&id, _)| id)
                    .collect();
                // With cron workers, half the kills go to one running a job, if any.
                let mid_job: Vec<WorkerId> = self
                    .procs
                    .iter()
                    .filter(|(_, p)| p.dead.is_none() && p.cron.as_ref().is_some_and(|c| c.running.is_some()))
                    .map(|(&id, _)| id)
                    .collect();
                let pick = match &mut self.crons {
                    Some(c) if !mid_job.is_empty() => {
                        c.rng.chance(0.5).then(|| mid_job[c.rng.up_to(mid_job.len() as u32 - 1) as usize])
                    }
                    _ => None,
                };
                let orphaned = pick.is_some() && self.crons.as_mut().is_some_and(|c| c.orphaning.chance(0.5));
                if let Some(id) = pick.filter(|_| orphaned) {
                    self.orphan(id);
                } else if let Some(id) = pick {
                    self.log(|| format!("fault: SIGKILL {id} from outside, mid-job"));
                    self.die(id, ExitStatus::Signaled(9));
                } else if !live.is_empty() {
                    let id = live[self.rng.up_to(live.len() as u32 - 1) as usize];
                    self.log(|| format!("fault: SIGKILL {id} from outside"));
                    self.die(id, ExitStatus::Signaled(9));
                }
                self.schedule_fault(self.mix.kill_every, Ev::OutsideKill);
            }
            Ev::Storm => {
                if self.phase != RunPhase::Safety {
                    return;
                }
                let n = 1 + self.rng.up_to(9);
                for _ in 0..n {
                    let sig = [Sig::Ttin, Sig::Ttou, Sig::Hup, Sig::Usr2, Sig::Usr1, Sig::Ttin, Sig::Ttou]
                        [self.rng.up_to(6) as usize];
                    let d = Duration::from_nanos(self.rng.up_to(2_000) as u64 * US);
                    self.log(|| format!("fault: SIG{} in {d:?}", sig.name()));
                    self.send_signal_later(sig, d);
                }
                self.schedule_fault(self.mix.storm_every, Ev::Storm);
            }
            Ev::ClockJump => {
                if self.phase != RunPhase::Safety {
                    return;
                }
                let ids: Vec<WorkerId> = self.procs.keys().copied().collect();
                if !ids.is_empty() {
                    let id = ids[self.rng.up_to(ids.len() as u32 - 1) as usize];
                    let jump = (self.rng.next_u64() % 172_800_000) as i64 - 86_400_000;
                    self.log(|| format!("fault: {id} wall clock jumps {jump} ms"));
                    if let Some(p) = self.procs.get_mut(&id) {
                        p.skew_ms = jump;
                    }
                }
                // The store's clock jumps too: forward up to three leases (live holders' leases
                // expire early), or back up to MAX_BACK_JUMP (leases and due times come later).
                if let Some(c) = &mut self.crons {
                    let forward = c.rng.chance(0.5);
                    let ns = if forward {
                        (c.rng.next_u64() % (3 * c.lease.as_nanos() as u64)) as i64
                    } else {
                        -((c.rng.next_u64() % MAX_BACK_JUMP.as_nanos() as u64) as i64)
                    };
                    c.skew += ns;
                    if forward {
                        c.monitor.jumped_forward();
                    }
                    self.log(|| format!("fault: the store's clock jumps {} ms", ns / 1_000_000));
                }
                self.schedule_fault(self.mix.jump_every, Ev::ClockJump);
            }
            Ev::ReexecEnded => {
                self.arbiter_input(Input::ReexecEnded);
            }
            // A halted run has nothing left to heal or stop.
            Ev::Heal | Ev::Stop if self.halted => {}
            Ev::Heal => {
                // Faults off; what is pending must now converge within a bound.
                self.log(|| "heal: faults off, no new clients".into());
                self.phase = RunPhase::Liveness;
                self.mix = FaultMix::default();
                // Room to recover (a hung request killed, a crashed worker respawned after its
                // backoff), then to drain what piled up at the pace of the target's workers.
                let c = &self.config;
                let pending: usize = self.listeners.iter().map(|l| l.queue.len()).sum();
                let workers = self.arb.arbiter.target().max(1);
                let drain = MAX_SERVICE * u32::try_from(pending).unwrap_or(u32::MAX) / workers;
                let bound = c.timeout.unwrap_or(UNTIMED_SLOW.1) * 2
                    + c.graceful_timeout
                    + c.kill_grace
                    + c.spawn_backoff_max * 2
                    + Duration::from_secs(2)
                    + drain;
                self.schedule_in(bound, Ev::Stop);
            }
            Ev::Stop => {
                let r = self.with_checks(|c, v| {
                    c.liveness_done(v);
                    c.take_error()
                });
                if let Err(v) = r {
                    return self.fail(v);
                }
                if let Some(c) = &self.crons {
                    // Room for a dead holder's lease to run out, a clock that went back, the
                    // longest interval and a claim poll.
                    let slack = c.lease + MAX_BACK_JUMP + c.longest_interval + Duration::from_secs(2);
                    if let Err(v) = c.monitor.progress(&c.table, self.store_now(), slack) {
                        return self.fail(v);
                    }
                }
                // Stop under load: a connection per worker arrives, and TERM lands while they
                // are served; some hang if this run hangs requests; an upgrade may race the stop.
                self.phase = RunPhase::Stopping;
                let n = self.arb.arbiter.target().max(1);
                for i in 0..n {
                    let s = (i % u32::from(self.config.listeners)) as usize;
                    self.listeners[s].queue.push_back(Conn { arrived: self.now });
                    self.tally.arrived += 1;
                    self.listener_changed(ListenerId(s as u16));
                }
                if self.faults_drawn & (1 << FaultKind::Hang as u32) != 0 {
                    self.mix.hang = 0.5;
                }
                if self.faults_drawn & (1 << FaultKind::SignalStorm as u32) != 0 {
                    self.log(|| "stop: SIGUSR2 to the arbiter".into());
                    self.send_signal_later(Sig::Usr2, Duration::ZERO);
                }
                self.log(|| "stop: SIGTERM to the arbiter".into());
                let at = self.now + Duration::from_millis(5);
                self.stop_sent = Some(at);
                self.send_signal_later(Sig::Term, Duration::from_millis(5));
                let c = &self.config;
                let bound =
                    Duration::from_millis(5) + c.graceful_timeout + c.kill_grace + Duration::from_secs(1);
                self.schedule_in(bound, Ev::End);
            }
            Ev::End => {}
        }
    }
}
