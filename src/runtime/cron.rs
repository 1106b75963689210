//! The cron worker process: drives the [`herd_protocol::cron`] core (claim a due job from the
//! store, run it with no heartbeat meanwhile, record it, claim again).

use crate::cron::JobRun;
use crate::os::sys::{Clock, WakePipe};
use crate::resources::Resources;
use crate::runtime::trace::{Recorder, Traced};
use crate::runtime::worker::{WorkerSetup, prepare, run_process, set_busy};
use herd_protocol::cron::{CronAction, CronConfig, CronInput, CronWorker, Timer as CronTimer};
use herd_protocol::message::Message;
use herd_protocol::signals::Sig;
use herd_protocol::trace;
use herd_protocol::worker::WorkerSignal;
use std::io::{self, Write};
use std::time::Duration;

/// Runs a cron worker to its end and exits the process.
pub(crate) fn run(
    setup: WorkerSetup,
    res: &Resources,
    runner: &mut dyn FnMut(&JobRun<'_>) -> Result<(), String>,
) -> ! {
    let inherited = setup.inherited.clone();
    run_process(&inherited, |loaded| {
        let WorkerSetup { id, max_requests, arbiter, mut chan, blocked, slot, .. } = setup;
        let wake = prepare(id, blocked, res)?;
        if let Ok(title) = std::ffi::CString::new(format!("herd: cron worker {}", id.0)) {
            let _ = nix::sys::prctl::set_name(&title);
        }
        let Some(cron) = &res.cron else {
            return Err(io::Error::other("a cron worker without a job store"));
        };
        // This process's own handle (lock description, database connection).
        let store = cron.store.for_this_process()?;
        loaded.set(true);
        chan.set_nonblocking(false)?;
        let clock = Clock::new();
        let config = &res.config;
        let lease = herd_protocol::cron::lease(config.pace(), config.graceful_timeout, config.kill_grace);
        let holder = u64::from(std::process::id());
        let recorder = Recorder::for_worker(res.trace_dir.as_deref(), &trace::cron_file(std::process::id()));
        let mut core: Traced<CronWorker> = Traced::start(
            CronConfig {
                timeout: config.pace(),
                max_jobs: max_requests,
                max_idle: Duration::from_secs(1),
                retry: Duration::from_secs(1),
                lease,
            },
            clock.now(),
            recorder,
        );
        tracing::debug!(worker = %id, pid = holder, "cron worker booted");
        loop {
            while let Some(action) = core.next_action() {
                let input = match action {
                    CronAction::Send(msg) => {
                        // The arbiter reads every frame; a write error means it is gone, which
                        // the parent check below notices.
                        let _ = chan.write_all(msg.encode().as_bytes());
                        continue;
                    }
                    CronAction::Claim => match store.claim(holder, lease) {
                        Ok((claim, next)) => CronInput::Claimed(claim, next),
                        Err(e) => {
                            tracing::warn!(worker = %id, error = %e, "cron: cannot claim");
                            CronInput::StoreFailed
                        }
                    },
                    CronAction::Run(claim) => {
                        let job = &cron.jobs[claim.job.0 as usize];
                        let run = JobRun { name: &job.name, token: claim.token, slot: claim.slot.0 };
                        set_busy(res, slot, true);
                        if let Some(s) = slot {
                            res.scoreboard.count(s);
                        }
                        // The holder's fence: the job is stopped before its lease can end, even
                        // with no arbiter left to kill it.
                        let fence_at = core.timer(CronTimer::Fence).unwrap_or_else(|| clock.now());
                        // What the job's process does while it runs is written out first (the
                        // fence ends it without a chance to).
                        core.flush();
                        let fence = crate::os::sys::Fence::arm(fence_at.saturating_since(clock.now()))?;
                        let began = std::time::Instant::now();
                        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runner(&run)));
                        let took = began.elapsed();
                        drop(fence);
                        set_busy(res, slot, false);
                        let ok = match ran {
                            Ok(Ok(())) => true,
                            Ok(Err(e)) => {
                                tracing::warn!(worker = %id, job = %job.name, error = %e, "cron job failed");
                                false
                            }
                            Err(_) => {
                                tracing::warn!(worker = %id, job = %job.name, "cron job panicked");
                                false
                            }
                        };
                        tracing::info!(
                            worker = %id,
                            token = claim.token,
                            "cron job {}: {} in {:.3} s",
                            job.name,
                            if ok { "ok" } else { "failed" },
                            took.as_secs_f64()
                        );
                        signals(&wake, &mut core, &clock, arbiter);
                        CronInput::JobDone { ok }
                    }
                    CronAction::Finish { claim, ok } => match store.finish(&claim, ok) {
                        Ok(recorded) => {
                            if !recorded {
                                tracing::warn!(worker = %id, job = claim.job.0, token = claim.token,
                                    "cron: the run was not recorded: the job was claimed again meanwhile");
                            }
                            CronInput::Finished { recorded }
                        }
                        Err(e) => {
                            tracing::warn!(worker = %id, error = %e, "cron: cannot record a run");
                            CronInput::StoreFailed
                        }
                    },
                    CronAction::Exit(code) => {
                        core.flush();
                        return Ok(code);
                    }
                };
                core.feed(clock.now(), input);
            }
            core.flush();
            // At most a second: new jobs and clock changes are noticed.
            let (now, wait) = clock.wait_for(core.poll_timeout(), Some(1_000));
            let (wait_ms, until) = wait.expect("capped");
            core.wait(now, Some(until));
            core.flush();
            let wait_ms = wait_ms as u16;
            let mut fds = [nix::poll::PollFd::new(wake.fd(), nix::poll::PollFlags::POLLIN)];
            match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(wait_ms)) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(crate::os::sys::io_err(e)),
            }
            if signals(&wake, &mut core, &clock, arbiter) {
                // Drained at the top of the loop; the timeout pass comes after it.
                continue;
            }
            core.tick(clock.now());
        }
    })
}

/// A loop point: TERM (or a changed parent) asks the core to stop after the job under way.
/// Whether it fed the core (its actions are then to be carried out before anything else).
fn signals(wake: &WakePipe, core: &mut Traced<CronWorker>, clock: &Clock, arbiter: nix::unistd::Pid) -> bool {
    let batch = wake.drain();
    let stop = batch.count(Sig::Term) > 0 || nix::unistd::getppid() != arbiter;
    if stop {
        core.feed(clock.now(), CronInput::Signal(WorkerSignal::Term));
    }
    stop
}
