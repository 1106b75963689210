//! Cron workers in the simulated world: their inputs and actions against the shared job table,
//! and orphans (cron workers whose arbiter died while they ran a job).

use super::*;

impl World {
    /// The arbiter of `id`, a cron worker running a job, dies: for the arbiter that carries on,
    /// `id` is a worker lost (reaped as killed); the process itself runs on as an [`Orphan`],
    /// told to stop by the parent-death TERM.
    pub(super) fn orphan(&mut self, id: WorkerId) {
        let Some(p) = self.procs.get_mut(&id) else { return };
        let Some(cron) = p.cron.take() else { return };
        let orphan = Orphan { cron, hung: p.hung, lane: p.lane };
        self.log(|| format!("fault: the arbiter of {id} dies mid-job; {id} runs on, orphaned"));
        self.die(id, ExitStatus::Signaled(9));
        self.orphans.insert(id, orphan);
        self.orphan_input(id, CronInput::Signal(WorkerSignal::Term));
    }

    pub(super) fn orphan_job_done(&mut self, id: WorkerId, token: u64) {
        let Some(o) = self.orphans.get_mut(&id) else { return };
        if o.hung || o.cron.running.is_none_or(|r| r.token != token) {
            return;
        }
        o.cron.running = None;
        let ok = self.crons.as_mut().is_some_and(|c| !c.rng.chance(0.1));
        if let Some(c) = &mut self.crons {
            c.monitor.ended(id);
        }
        self.orphan_input(id, CronInput::JobDone { ok });
    }

    pub(super) fn orphan_fence(&mut self, id: WorkerId, token: u64) {
        let Some(o) = self.orphans.get(&id) else { return };
        if o.cron.running.is_none_or(|r| r.token != token) {
            return;
        }
        self.log(|| format!("orphaned {id}'s job reaches its fence: the process exits"));
        if let Some(c) = &mut self.crons {
            c.monitor.died(id);
        }
        self.orphan_exit(id, herd_protocol::cron::EXIT_FENCED);
    }

    pub(super) fn orphan_exit(&mut self, id: WorkerId, code: i32) {
        let Some(o) = self.orphans.remove(&id) else { return };
        if let Some(t) = &mut self.timeline {
            t.exit(o.lane, self.now, ExitStatus::Code(code));
        }
    }

    /// Feeds an orphan's core and carries out its actions: its frames go nowhere, its finish
    /// reaches the store like any other.
    pub(super) fn orphan_input(&mut self, id: WorkerId, input: CronInput) {
        let now = self.now;
        let Some(o) = self.orphans.get_mut(&id) else { return };
        o.cron.core.handle(now, input);
        while let Some(a) = self.orphans.get_mut(&id).and_then(|o| o.cron.core.poll_action()) {
            let store_now = self.store_now();
            match a {
                CronAction::Send(_) => {}
                CronAction::Finish { claim, ok } => {
                    let Some(recorded) = self.finish(store_now, claim, ok) else { return };
                    let o = self.orphans.get_mut(&id).expect("orphan");
                    o.cron.core.handle(now, CronInput::Finished { recorded });
                }
                CronAction::Exit(code) => return self.orphan_exit(id, code),
                CronAction::Claim | CronAction::Run(_) => {
                    return self.fail(Violation::new(
                        herd_protocol::invariants::Invariant::CronExclusive,
                        format!("orphaned {id} asked for {a:?} after its TERM"),
                    ));
                }
            }
        }
    }

    pub(super) fn cron_input(&mut self, id: WorkerId, input: CronInput) {
        let now = self.now;
        let Some(p) = self.procs.get_mut(&id) else { return };
        let Some(c) = &mut p.cron else { return };
        if p.dead.is_some() {
            return;
        }
        c.core.handle(now, input);
        self.worker_actions(id);
    }

    /// The store's clock: true time plus the jumps.
    pub(super) fn store_now(&self) -> Instant {
        let skew = self.crons.as_ref().map_or(0, |c| c.skew);
        Instant(self.now.0.saturating_add_signed(skew))
    }

    pub(super) fn cron_action(&mut self, id: WorkerId, a: CronAction) {
        if !matches!(a, CronAction::Send(_)) {
            self.log(|| format!("{id} -> {a:?}"));
        }
        let store_now = self.store_now();
        match a {
            CronAction::Send(msg) => self.send_frame(id, msg),
            CronAction::Claim => {
                let Some(c) = &mut self.crons else { return };
                let input = match c.table.claim(store_now, id.0, c.lease) {
                    Poll::Claimed(claim) => {
                        if let Err(v) = c.monitor.started(id, claim) {
                            return self.fail(v);
                        }
                        CronInput::Claimed(Some(claim), None)
                    }
                    Poll::Idle { next } => {
                        CronInput::Claimed(None, next.map(|t| t.saturating_since(store_now)))
                    }
                };
                let p = self.procs.get_mut(&id).expect("proc");
                if let (CronInput::Claimed(Some(claim), _), Some(c)) = (input, &mut p.cron) {
                    c.running = Some(claim);
                }
                self.cron_input(id, input);
            }
            CronAction::Run(claim) => {
                // The holder's fence, armed as the job starts (a hung job too: a signal).
                let fence = self.procs[&id].cron.as_ref().and_then(|c| c.core.timer(CronTimer::Fence));
                if let Some(at) = fence {
                    self.schedule_at(at, Ev::Fence(id, claim.token));
                }
                // A job takes up to half the timeout; under the hang fault some outlast the
                // timeout (killed, then retried) and some hang.
                let hang = self.rng.chance(self.mix.hang);
                let long = self.mix.hang > 0.0;
                let Some(c) = &mut self.crons else { return };
                let ms = self.config.pace().as_millis() as u64;
                let d = if long && c.rng.chance(0.05) {
                    Duration::from_millis(ms + 1 + c.rng.next_u64() % ms)
                } else {
                    Duration::from_millis(
                        1 + c.rng.next_u64() % (ms / 2).max(1) / [1, 100][c.rng.up_to(1) as usize],
                    )
                };
                if hang {
                    self.log(|| format!("fault: {id}'s cron job hangs"));
                    self.procs.get_mut(&id).expect("proc").hung = true;
                } else {
                    self.schedule_in(d, Ev::JobDone(id, claim.token));
                }
            }
            CronAction::Finish { claim, ok } => {
                let Some(recorded) = self.finish(store_now, claim, ok) else { return };
                self.cron_input(id, CronInput::Finished { recorded });
            }
            CronAction::Exit(code) => self.die(id, ExitStatus::Code(code)),
        }
    }

    /// A holder records its run in the store, watched by the monitor: whether the store took it
    /// (`None` after a violation, or without cron jobs).
    pub(super) fn finish(&mut self, store_now: Instant, claim: Claim, ok: bool) -> Option<bool> {
        let c = self.crons.as_mut()?;
        let recorded = c.table.finish(store_now, &claim, ok).is_ok();
        if !recorded {
            c.monitor.refused();
        } else if let Err(v) = c.monitor.recorded(claim) {
            self.fail(v);
            return None;
        }
        Some(recorded)
    }
}
