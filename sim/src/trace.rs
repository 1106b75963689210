//! Trace validation: replays what a real runtime recorded (`herd serve --trace-events DIR`)
//! through a fresh core and the invariant monitor, and reports the first place where the runtime
//! and the core part ways, or where the run broke an invariant.
//!
//! Per trace (the arbiter's, each worker's and each cron worker's), in order:
//! - an input read from the world (`queued`) must be fed in the order it was read, and only once;
//!   one that answers an action (an accept's result, a finished request, a store's answer) must
//!   answer the oldest action still waiting for one; one noticed at a loop point (a signal, a
//!   changed parent, memory over its limit) comes between drains, perhaps inside an action (the
//!   end of a request or a job is a loop point);
//! - every input read is fed, and every timeout pass runs, only once the core's earlier actions
//!   are all carried out and answered (the drain rule), and a timeout pass never runs while
//!   inputs it has read are not yet fed (B22);
//! - the actions carried out must be exactly the core's, in order: none that it did not ask for,
//!   none left out;
//! - the runtime never blocks past the core's deadline: each `wait` ends no later than
//!   `poll_timeout` (plus the millisecond a wait is rounded up to), and comes after the core's
//!   actions are carried out and every input read is fed — whatever the machine's scheduling
//!   did to the instants in between;
//! - every step must satisfy the core's monitor: the arbiter's
//!   ([`herd_protocol::invariants::Checked`]); for a cron worker, that no job runs past its
//!   fence.
//!
//! A trace may end anywhere (the process was killed); a last line cut short by that is ignored.

use herd_protocol::arbiter::{self, Config};
use herd_protocol::cron::{CronAction, CronConfig, CronInput, CronWorker, Timer as CronTimer};
use herd_protocol::invariants::Checked;
use herd_protocol::time::Instant;
use herd_protocol::trace::Entry;
use herd_protocol::worker::{self, Worker, WorkerConfig, WorkerKind};
use serde::de::DeserializeOwned;
use std::collections::VecDeque;
use std::fmt::{self, Debug};
use std::path::{Path, PathBuf};

/// What one trace file showed.
#[derive(Debug)]
pub struct FileReport {
    /// The file.
    pub path: PathBuf,
    /// Entries checked.
    pub entries: u64,
    /// The first divergence or violation, with its line number and context.
    pub problem: Option<String>,
}

/// What a directory of traces showed.
#[derive(Debug, Default)]
pub struct Report {
    /// Every file, in name order.
    pub files: Vec<FileReport>,
}

impl Report {
    /// Entries checked in all files.
    pub fn entries(&self) -> u64 {
        self.files.iter().map(|f| f.entries).sum()
    }

    /// The files with a problem.
    pub fn problems(&self) -> impl Iterator<Item = &FileReport> {
        self.files.iter().filter(|f| f.problem.is_some())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in self.problems() {
            writeln!(f, "{}: {}", r.path.display(), r.problem.as_deref().unwrap_or_default())?;
        }
        write!(
            f,
            "traces: {} processes, {} entries checked, {} with a divergence or violation",
            self.files.len(),
            self.entries(),
            self.problems().count()
        )
    }
}

/// The kinds of trace file, by name prefix.
const KINDS: [&str; 3] = ["arbiter-", "worker-", "cron-"];

/// Checks every trace (`arbiter-*.jsonl`, `worker-*.jsonl`, `cron-*.jsonl`) in `dir`.
pub fn check_dir(dir: &Path) -> std::io::Result<Report> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| KINDS.iter().any(|k| n.starts_with(k)) && n.ends_with(".jsonl"))
        })
        .collect();
    paths.sort();
    let mut report = Report::default();
    for path in paths {
        let text = std::fs::read_to_string(&path)?;
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let (entries, problem) = if name.starts_with("worker-") {
            check::<Worker>(&text)
        } else if name.starts_with("cron-") {
            check::<CronWorker>(&text)
        } else {
            check::<Checked>(&text)
        };
        report.files.push(FileReport { path, entries, problem });
    }
    Ok(report)
}

/// Checks one arbiter trace; the entries checked and the first problem.
pub fn check_arbiter(text: &str) -> (u64, Option<String>) {
    check::<Checked>(text)
}

/// Checks one worker trace; the entries checked and the first problem.
pub fn check_worker(text: &str) -> (u64, Option<String>) {
    check::<Worker>(text)
}

/// Checks one cron worker trace; the entries checked and the first problem.
pub fn check_cron(text: &str) -> (u64, Option<String>) {
    check::<CronWorker>(text)
}

fn check<R: Replayed>(text: &str) -> (u64, Option<String>) {
    let mut replay = Replay::<R>::default();
    let lines: Vec<&str> = text.lines().collect();
    let last = lines.len();
    let mut checked = 0;
    for (n, line) in lines.iter().enumerate() {
        let entry: Entry<R::Config, R::Input, R::Action> = match serde_json::from_str(line) {
            Ok(e) => e,
            // The process died while writing its last line.
            Err(_) if n + 1 == last && !text.ends_with('\n') => break,
            Err(e) => return (checked, Some(format!("line {}: unreadable entry: {e}", n + 1))),
        };
        checked += 1;
        if let Err(why) = replay.entry(entry) {
            let from = n.saturating_sub(5);
            let context: Vec<String> = lines[from..=n]
                .iter()
                .enumerate()
                .map(|(i, l)| format!("  {:>6}: {l}", from + i + 1))
                .collect();
            return (checked, Some(format!("line {}: {why}\n{}", n + 1, context.join("\n"))));
        }
    }
    (checked, None)
}

/// How an input reaches a core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Arrival {
    /// Read from the world, queued, fed later in the order read.
    Read,
    /// The answer to an action just carried out, fed at once.
    Answer,
    /// Noticed by the driver at a loop point, fed at once.
    Noticed,
    /// Either read or noticed (a changed parent: the pipe's end, or `getppid`).
    ReadOrNoticed,
}

/// A core as trace validation replays it.
trait Replayed: Sized {
    type Config: DeserializeOwned;
    type Input: DeserializeOwned + Copy + PartialEq + Debug;
    type Action: DeserializeOwned + Copy + PartialEq + Debug;
    /// The core made (and, for a worker, started) at `at`, with its first actions.
    fn make(config: Self::Config, at: Instant) -> Result<(Self, Vec<Self::Action>), String>;
    /// Feeds one input; the actions it asks for, or the invariant it broke.
    fn feed(&mut self, at: Instant, input: Self::Input) -> Result<Vec<Self::Action>, String>;
    /// The timeout pass.
    fn tick(&mut self, at: Instant) -> Result<Vec<Self::Action>, String>;
    /// How `input` reaches the core.
    fn arrival(&self, input: &Self::Input) -> Arrival;
    /// Whether `action`, once carried out, waits for an answer.
    fn awaits(&self, action: &Self::Action) -> bool;
    /// Whether `input` answers `action`.
    fn answers(input: &Self::Input, action: &Self::Action) -> bool;
    /// A deadline the driver let pass by more than it may, seen at `at` (before that entry).
    fn overdue(&self, _at: Instant) -> Option<String> {
        None
    }
    /// When the core next needs its timeout pass (`poll_timeout`).
    fn deadline(&self) -> Option<Instant>;
}

/// How much later than a deadline a wait may end: waits are whole milliseconds, rounded up.
const WAIT_ROUNDING: std::time::Duration = std::time::Duration::from_millis(1);

impl Replayed for Checked {
    type Config = Config;
    type Input = arbiter::Input;
    type Action = arbiter::Action;
    fn make(config: Config, at: Instant) -> Result<(Self, Vec<arbiter::Action>), String> {
        Checked::new(config, at).map_err(|e| format!("the core refuses the configuration: {e}"))
    }
    fn feed(&mut self, at: Instant, input: arbiter::Input) -> Result<Vec<arbiter::Action>, String> {
        self.step(at, input).map_err(|v| format!("violation: {v}"))
    }
    fn tick(&mut self, at: Instant) -> Result<Vec<arbiter::Action>, String> {
        Checked::tick(self, at).map_err(|v| format!("violation: {v}"))
    }
    fn arrival(&self, _: &arbiter::Input) -> Arrival {
        Arrival::Read
    }
    fn awaits(&self, _: &arbiter::Action) -> bool {
        false
    }
    fn answers(_: &arbiter::Input, _: &arbiter::Action) -> bool {
        false
    }
    fn deadline(&self) -> Option<Instant> {
        self.arbiter.poll_timeout()
    }
}

/// The actions a core asked for since the last call.
fn drain<A>(next: impl FnMut() -> Option<A>) -> Vec<A> {
    std::iter::from_fn(next).collect()
}

impl Replayed for Worker {
    type Config = WorkerConfig;
    type Input = worker::Input;
    type Action = worker::Action;
    fn make(config: WorkerConfig, at: Instant) -> Result<(Self, Vec<worker::Action>), String> {
        let mut w = Worker::new(config, at);
        w.start(at);
        let actions = drain(|| w.poll_action());
        Ok((w, actions))
    }
    fn feed(&mut self, at: Instant, input: worker::Input) -> Result<Vec<worker::Action>, String> {
        self.handle(at, input);
        Ok(drain(|| self.poll_action()))
    }
    fn tick(&mut self, at: Instant) -> Result<Vec<worker::Action>, String> {
        self.handle_timeout(at);
        Ok(drain(|| self.poll_action()))
    }
    fn arrival(&self, input: &worker::Input) -> Arrival {
        use worker::Input as I;
        let sync = self.config().kind == WorkerKind::Sync;
        match input {
            I::Accepted(_) | I::AcceptEmpty | I::AcceptFailed => Arrival::Answer,
            // A sync worker's request ends inside the action; an async worker's in its own task.
            I::RequestDone if sync => Arrival::Answer,
            I::Signal(_) | I::OverMemory => Arrival::Noticed,
            I::ParentChanged => Arrival::ReadOrNoticed,
            I::Message(_) | I::Malformed | I::ListenersReadable | I::RequestDone | I::ConnectionClosed => {
                Arrival::Read
            }
        }
    }
    fn awaits(&self, action: &worker::Action) -> bool {
        match action {
            worker::Action::Accept(_) => true,
            worker::Action::Serve(_) => self.config().kind == WorkerKind::Sync,
            _ => false,
        }
    }
    fn answers(input: &worker::Input, action: &worker::Action) -> bool {
        use worker::{Action as A, Input as I};
        match (action, input) {
            (A::Accept(Some(l)), I::Accepted(m)) => l == m,
            (A::Accept(_), I::Accepted(_) | I::AcceptEmpty | I::AcceptFailed) => true,
            (A::Serve(_), I::RequestDone) => true,
            _ => false,
        }
    }
    fn deadline(&self) -> Option<Instant> {
        self.poll_timeout()
    }
}

impl Replayed for CronWorker {
    type Config = CronConfig;
    type Input = CronInput;
    type Action = CronAction;
    fn make(config: CronConfig, at: Instant) -> Result<(Self, Vec<CronAction>), String> {
        let mut w = CronWorker::new(config, at);
        w.start(at);
        let actions = drain(|| w.poll_action());
        Ok((w, actions))
    }
    fn feed(&mut self, at: Instant, input: CronInput) -> Result<Vec<CronAction>, String> {
        self.handle(at, input);
        Ok(drain(|| self.poll_action()))
    }
    fn tick(&mut self, at: Instant) -> Result<Vec<CronAction>, String> {
        self.handle_timeout(at);
        Ok(drain(|| self.poll_action()))
    }
    fn arrival(&self, input: &CronInput) -> Arrival {
        match input {
            CronInput::Signal(_) => Arrival::Noticed,
            _ => Arrival::Answer,
        }
    }
    fn awaits(&self, action: &CronAction) -> bool {
        matches!(action, CronAction::Claim | CronAction::Run(_) | CronAction::Finish { .. })
    }
    fn answers(input: &CronInput, action: &CronAction) -> bool {
        matches!(
            (action, input),
            (CronAction::Claim, CronInput::Claimed(..) | CronInput::StoreFailed)
                | (CronAction::Run(_), CronInput::JobDone { .. })
                | (CronAction::Finish { .. }, CronInput::Finished { .. } | CronInput::StoreFailed)
        )
    }
    fn overdue(&self, at: Instant) -> Option<String> {
        let fence = self.timer(CronTimer::Fence)?;
        (at > fence).then(|| format!("the job ran past its fence at {fence:?} (seen at {at:?})"))
    }
    fn deadline(&self) -> Option<Instant> {
        self.poll_timeout()
    }
}

struct Replay<R: Replayed> {
    core: Option<R>,
    /// Inputs read and not yet fed.
    queued: VecDeque<R::Input>,
    /// Actions the core asked for and the driver has not carried out yet.
    expected: VecDeque<R::Action>,
    /// Actions carried out that wait for their answer, oldest first.
    awaiting: VecDeque<R::Action>,
}

impl<R: Replayed> Default for Replay<R> {
    fn default() -> Self {
        Replay { core: None, queued: VecDeque::new(), expected: VecDeque::new(), awaiting: VecDeque::new() }
    }
}

impl<R: Replayed> Replay<R> {
    fn entry(&mut self, entry: Entry<R::Config, R::Input, R::Action>) -> Result<(), String> {
        let Some(core) = self.core.as_mut() else {
            let Entry::New { config, at } = entry else {
                return Err("an entry before the core was made".into());
            };
            let (core, actions) = R::make(config, at)?;
            self.core = Some(core);
            self.expected.extend(actions);
            return Ok(());
        };
        match entry {
            Entry::New { .. } => return Err("a second core in one trace".into()),
            Entry::Queued(input) => self.queued.push_back(input),
            Entry::Fed { at, input } => {
                if let Some(late) = core.overdue(at) {
                    return Err(format!("late: {late}"));
                }
                let read = match core.arrival(&input) {
                    Arrival::Read => true,
                    Arrival::ReadOrNoticed => self.queued.front() == Some(&input),
                    Arrival::Answer | Arrival::Noticed => false,
                };
                if core.arrival(&input) == Arrival::Answer {
                    match self.awaiting.pop_front() {
                        Some(asked) if R::answers(&input, &asked) => {}
                        Some(asked) => return Err(format!("fed {input:?}, which does not answer {asked:?}")),
                        None => return Err(format!("fed {input:?}, an answer to no action")),
                    }
                } else {
                    // A loop point may come inside an action (at the end of a request or a job),
                    // so a noticed input may come while that action waits for its answer.
                    let waiting = if read { &self.awaiting } else { &VecDeque::new() };
                    Self::all_done(&self.expected, waiting, "an input was fed")?;
                }
                if read {
                    match self.queued.pop_front() {
                        Some(first) if first == input => {}
                        Some(first) => {
                            return Err(format!("fed {input:?} before {first:?}, which was read first"));
                        }
                        None => return Err(format!("fed {input:?}, which was never read")),
                    }
                }
                let actions = core.feed(at, input)?;
                self.expected.extend(actions);
            }
            Entry::Timeout { at } => {
                if let Some(late) = core.overdue(at) {
                    return Err(format!("late: {late}"));
                }
                Self::all_done(&self.expected, &self.awaiting, "a timeout pass ran")?;
                if let Some(first) = self.queued.front() {
                    return Err(format!(
                        "a timeout pass ran with {} input(s) read and not fed, first {first:?}",
                        self.queued.len()
                    ));
                }
                let actions = core.tick(at)?;
                self.expected.extend(actions);
            }
            Entry::Wait { at, until } => {
                Self::all_done(&self.expected, &self.awaiting, "the runtime blocked")?;
                if let Some(first) = self.queued.front() {
                    return Err(format!("the runtime blocked with {first:?} read and not fed"));
                }
                // A deadline already past when it blocks: it must not sleep at all.
                if let Some(due) = core.deadline()
                    && until.is_none_or(|u| u > due.max(at) + WAIT_ROUNDING)
                {
                    return Err(format!(
                        "late: at {at:?} the runtime blocked until {until:?}, past the core's deadline {due:?}"
                    ));
                }
            }
            Entry::Done(action) => match self.expected.pop_front() {
                Some(asked) if asked == action => {
                    if core.awaits(&action) {
                        self.awaiting.push_back(action);
                    }
                }
                Some(asked) => return Err(format!("carried out {action:?}; the core asked for {asked:?}")),
                None => return Err(format!("carried out {action:?}, which the core did not ask for")),
            },
        }
        Ok(())
    }

    fn all_done(
        expected: &VecDeque<R::Action>,
        awaiting: &VecDeque<R::Action>,
        what: &str,
    ) -> Result<(), String> {
        if let Some(a) = expected.front() {
            return Err(format!(
                "{what} before the core's {a:?} (and {} more) was carried out",
                expected.len() - 1
            ));
        }
        match awaiting.front() {
            Some(a) => Err(format!("{what} while {a:?} waited for its answer")),
            None => Ok(()),
        }
    }
}
