//! Workers in the simulated world: their inputs and actions, frames to the arbiter, and the
//! requests they serve.

use super::*;

impl World {
    /// Feeds a worker core. Workers run on the monotonic clock, as the runtime's do; clock jumps
    /// only skew the timestamp a worker reports in `ALIVE` (see [`World::worker_action`]).
    pub(super) fn worker_input(&mut self, id: WorkerId, input: worker::Input) {
        let now = self.now;
        let Some(p) = self.procs.get_mut(&id) else { return };
        if p.dead.is_some() {
            return;
        }
        p.core.handle(now, input);
        self.worker_actions(id);
    }

    pub(super) fn worker_actions(&mut self, id: WorkerId) {
        loop {
            let Some(p) = self.procs.get_mut(&id) else { return };
            if p.dead.is_some() {
                return;
            }
            if let Some(c) = &mut p.cron {
                let Some(a) = c.core.poll_action() else { break };
                self.cron_action(id, a);
                continue;
            }
            let Some(a) = p.core.poll_action() else { break };
            self.worker_action(id, a);
        }
        let Some(p) = self.procs.get_mut(&id) else { return };
        if p.dead.is_some() {
            return;
        }
        let t = match &p.cron {
            Some(c) => c.core.poll_timeout(),
            None => p.core.poll_timeout(),
        };
        if t != p.timer_at {
            p.timer_at = t;
            if let Some(t) = t {
                let at = t.max(self.now);
                p.timer_at = Some(at);
                self.schedule_at(at, Ev::WorkerTimer(id));
            }
        }
    }

    pub(super) fn worker_action(&mut self, id: WorkerId, a: worker::Action) {
        if !matches!(a, worker::Action::Send(_)) {
            self.log(|| format!("{id} -> {a:?}"));
        }
        match a {
            worker::Action::Send(msg) => self.send_frame(id, msg),
            worker::Action::Accept(which) => {
                if which.is_some() {
                    self.procs.get_mut(&id).expect("proc").unreported = which;
                }
                let n = self.listeners.len();
                let start = self.rng.up_to(n as u32 - 1) as usize;
                let order: Vec<usize> = match which {
                    Some(s) => vec![usize::from(s.0)],
                    None => (0..n).map(|k| (start + k) % n).collect(),
                };
                let got = order.into_iter().find_map(|i| {
                    self.listeners.get_mut(i).and_then(|l| l.queue.pop_front()).map(|c| (i, c))
                });
                match got {
                    Some((i, conn)) => {
                        self.tally.longest_wait =
                            self.tally.longest_wait.max(self.now.saturating_since(conn.arrived));
                        let p = self.procs.get_mut(&id).expect("proc");
                        p.serving = Some(conn);
                        self.worker_input(id, worker::Input::Accepted(ListenerId(i as u16)));
                    }
                    None => {
                        if which.is_some() {
                            let mode = self.config.accept_mode;
                            self.checks().empty_accept(id, mode, which);
                        }
                        self.worker_input(id, worker::Input::AcceptEmpty);
                    }
                }
            }
            worker::Action::Serve(_) => match self.kind {
                WorkerKind::Sync => self.start_request(id, 0),
                WorkerKind::Async { .. } => {
                    let keep_alive = 1 + self.rng.up_to(3);
                    let p = self.procs.get_mut(&id).expect("proc");
                    p.serving = None;
                    let conn = p.next_conn;
                    p.next_conn += 1;
                    p.conns.push(AsyncConn { id: conn, requests_left: keep_alive });
                    self.start_request(id, conn);
                }
            },
            worker::Action::Drain => {
                let p = self.procs.get_mut(&id).expect("proc");
                p.draining = true;
            }
            worker::Action::Exit(code) => self.die(id, ExitStatus::Code(code)),
        }
    }

    /// A worker writes a frame to its pipe (maybe garbage, under that fault).
    pub(super) fn send_frame(&mut self, id: WorkerId, msg: WorkerMsg) {
        let garbage = self.rng.chance(self.mix.garbage);
        let d = self.delay();
        let p = self.procs.get_mut(&id).expect("proc");
        // A worker's reported clock is its own: a jumped wall clock shows here only.
        let msg = match msg {
            WorkerMsg::Alive { timestamp } => {
                WorkerMsg::Alive { timestamp: timestamp.saturating_add_signed(p.skew_ms) }
            }
            other => other,
        };
        let frame = if garbage { b"\xffGARBAGE\n".to_vec() } else { msg.encode().as_bytes().to_vec() };
        let at = (self.now + d).max(p.to_arbiter_free);
        p.to_arbiter_free = at;
        p.in_flight += 1;
        p.last_sent = self.now;
        if garbage {
            self.log(|| format!("fault: {id} writes garbage"));
        }
        self.schedule_at(at, Ev::ToArbiter { from: id, frame });
    }

    /// A hung async worker: its event loop is blocked (a handler that never yields).
    pub(super) fn loop_blocked(&self, p: &Proc) -> bool {
        p.hung && self.kind != WorkerKind::Sync
    }

    /// Starts a request on a worker's connection: the registry check, then the request, which
    /// ends (`RequestDone`), hangs, or crashes the worker at its end.
    pub(super) fn start_request(&mut self, id: WorkerId, conn: u64) {
        let shared = self.store.load();
        let db = self.db_version;
        let signalled = self.signalled;
        let p = self.procs.get_mut(&id).expect("proc");
        let mut reloaded = false;
        let version = *p.registry.before_request(
            shared,
            || {
                reloaded = true;
                db
            },
            |_| {},
        );
        p.served += 1;
        let (served, budget) = (p.served, p.budget);
        if reloaded {
            self.tally.reloads += 1;
        }
        // An async worker learns its budget is spent when a request ends; requests already
        // started on its other connections still run: at most `connections - 1` more.
        let slack = match self.kind {
            WorkerKind::Sync => 0,
            WorkerKind::Async { connections } => connections - 1,
        };
        self.checks().serve(id, version, signalled, served, if budget > 0 { budget + slack } else { 0 });
        let hang = self.rng.chance(self.mix.hang);
        let crash = self.rng.chance(self.mix.crash);
        let d = Duration::from_nanos((100 + u64::from(self.rng.up_to(19_900))) * US);
        let p = self.procs.get_mut(&id).expect("proc");
        p.hung |= hang;
        p.crash_at_done |= crash;
        if let Some(t) = &mut self.timeline {
            t.request_start(p.lane, self.now, hang);
        }
        if hang && self.config.timeout.is_none() && self.phase == RunPhase::Safety {
            // Nothing would end a hung request while the server runs: a very slow one instead.
            let p = self.procs.get_mut(&id).expect("proc");
            p.hung = false;
            let (lo, hi) = UNTIMED_SLOW;
            let slow = lo + Duration::from_millis(self.rng.next_u64() % (hi - lo).as_millis() as u64);
            self.log(|| format!("fault: {id}'s request takes {slow:?} (no timeout)"));
            self.schedule_in(slow, Ev::RequestDone(id, conn));
        } else if hang {
            self.log(|| format!("fault: {id}'s request hangs"));
        } else {
            self.schedule_in(d, Ev::RequestDone(id, conn));
        }
    }

    /// Async: after a request, the connection carries the next one (keep-alive) or closes.
    pub(super) fn next_request_or_close(&mut self, id: WorkerId, conn: u64) {
        let Some(p) = self.procs.get_mut(&id) else { return };
        if p.dead.is_some() {
            return;
        }
        let Some(i) = p.conns.iter().position(|c| c.id == conn) else { return };
        if p.conns[i].requests_left > 1 && !p.draining {
            p.conns[i].requests_left -= 1;
            self.start_request(id, conn);
        } else {
            p.conns.remove(i);
            self.tally.served += 1;
            self.worker_input(id, worker::Input::ConnectionClosed);
        }
    }
}
