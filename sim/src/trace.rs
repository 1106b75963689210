//! Trace validation: replays what a real runtime recorded (`herd serve --trace-events DIR`)
//! through a fresh core and the invariant monitor, and reports the first place where the runtime
//! and the core part ways, or where the run broke an invariant.
//!
//! Per arbiter trace, in order:
//! - an input must be fed in the order it was read (`queued`), and only once;
//! - a timeout pass must not run while inputs it has read are not yet fed (B22);
//! - the actions carried out must be exactly the core's, in order: none that it did not ask for,
//!   none left out before the next input or timeout pass;
//! - every step must satisfy the monitor ([`herd_protocol::invariants::Checked`]).
//!
//! A trace may end anywhere (the process was killed); a last line cut short by that is ignored.

use herd_protocol::arbiter::{Action, Input};
use herd_protocol::invariants::Checked;
use herd_protocol::trace::{ArbiterEntry, Entry};
use std::collections::VecDeque;
use std::fmt;
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

/// Checks every arbiter trace (`arbiter-*.jsonl`) in `dir`.
pub fn check_dir(dir: &Path) -> std::io::Result<Report> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("arbiter-") && n.ends_with(".jsonl"))
        })
        .collect();
    paths.sort();
    let mut report = Report::default();
    for path in paths {
        let text = std::fs::read_to_string(&path)?;
        let (entries, problem) = check_arbiter(&text);
        report.files.push(FileReport { path, entries, problem });
    }
    Ok(report)
}

/// Checks one arbiter trace; the entries checked and the first problem.
pub fn check_arbiter(text: &str) -> (u64, Option<String>) {
    let mut replay = Replay::default();
    let lines: Vec<&str> = text.lines().collect();
    let last = lines.len();
    let mut checked = 0;
    for (n, line) in lines.iter().enumerate() {
        let entry: ArbiterEntry = match serde_json::from_str(line) {
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

#[derive(Default)]
struct Replay {
    core: Option<Checked>,
    /// Inputs read and not yet fed.
    queued: VecDeque<Input>,
    /// Actions the core asked for and the runtime has not carried out yet.
    expected: VecDeque<Action>,
}

impl Replay {
    fn entry(&mut self, entry: ArbiterEntry) -> Result<(), String> {
        if !matches!(entry, Entry::New { .. }) && self.core.is_none() {
            return Err("an entry before the core was made".into());
        }
        match entry {
            Entry::New { config, at } => {
                if self.core.is_some() {
                    return Err("a second core in one trace".into());
                }
                let (core, actions) = Checked::new(config, at)
                    .map_err(|e| format!("the core refuses the configuration: {e}"))?;
                self.core = Some(core);
                self.expected.extend(actions);
            }
            Entry::Queued(input) => self.queued.push_back(input),
            Entry::Fed { at, input } => {
                self.all_done("an input was fed")?;
                match self.queued.pop_front() {
                    Some(first) if first == input => {}
                    Some(first) => {
                        return Err(format!("fed {input:?} before {first:?}, which was read first"));
                    }
                    None => return Err(format!("fed {input:?}, which was never read")),
                }
                let core = self.core.as_mut().expect("checked above");
                let actions = core.step(at, input).map_err(|v| format!("violation: {v}"))?;
                self.expected.extend(actions);
            }
            Entry::Timeout { at } => {
                self.all_done("a timeout pass ran")?;
                if let Some(first) = self.queued.front() {
                    return Err(format!(
                        "a timeout pass ran with {} input(s) read and not fed, first {first:?}",
                        self.queued.len()
                    ));
                }
                let core = self.core.as_mut().expect("checked above");
                let actions = core.tick(at).map_err(|v| format!("violation: {v}"))?;
                self.expected.extend(actions);
            }
            Entry::Done(action) => match self.expected.pop_front() {
                Some(asked) if asked == action => {}
                Some(asked) => return Err(format!("carried out {action:?}; the core asked for {asked:?}")),
                None => return Err(format!("carried out {action:?}, which the core did not ask for")),
            },
        }
        Ok(())
    }

    fn all_done(&self, what: &str) -> Result<(), String> {
        match self.expected.front() {
            Some(a) => Err(format!(
                "{what} before the core's {a:?} (and {} more) was carried out",
                self.expected.len() - 1
            )),
            None => Ok(()),
        }
    }
}
