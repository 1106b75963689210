//! The parallel breadth-first search over the explorer's states: fingerprints, the sharded
//! visited set, the searchers, and the verdict from the explored graph.

use super::graph::Graph;
use super::*;

/// A state's 64-bit fingerprint (foldhash's quality variant, fixed seed: runs are reproducible).
pub(super) fn fingerprint(s: &State) -> u64 {
    use std::hash::BuildHasher;
    foldhash::quality::FixedState::with_seed(0x6865_7264).hash_one(s)
}

/// The visited set is keyed by fingerprints, already well mixed: hashed as they are.
#[derive(Default)]
pub(super) struct Prehashed(u64);

impl std::hash::Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        // The top bits choose the shard (see `Shared::visit`); within one, the table's own
        // use of the top and bottom bits needs them varied.
        self.0 = v.rotate_left(32);
    }
}

pub(super) type Visited = HashMap<u64, u32, std::hash::BuildHasherDefault<Prehashed>>;

/// The successor of `s` by `step`, canonical.
pub(super) fn successor(s: &State, step: Step) -> Result<State, Violation> {
    let mut t = s.clone();
    let applied = t.apply(step);
    t.canonical_time();
    t.canonical_ids();
    applied.map(|()| t)
}

/// Where `step` leads from `s`, as the search sees it: the successor's fingerprint, or the
/// invariant it breaks.
pub(super) fn outcome(s: &State, step: Step) -> Result<u64, Invariant> {
    successor(s, step).map(|t| fingerprint(&t)).map_err(|v| v.invariant)
}

/// Walks the first `limit` states of the unreduced search within `bounds` (breadth-first, no
/// symmetry or partial-order reduction, so workers keep their names and every enabled step is
/// taken), handing each to `check` with its number from 1; the reductions' checks are written on
/// it. Returns the number of states checked, or the first failure.
pub(super) fn walk_unreduced(
    bounds: &Bounds,
    limit: usize,
    mut check: impl FnMut(usize, &State, &[Step]) -> Result<(), String>,
) -> Result<usize, String> {
    let full = Bounds { symmetry: false, partial_order: false, ..bounds.clone() };
    let init = State::initial(&full);
    let mut seen = Visited::default();
    seen.insert(fingerprint(&init), 0);
    let mut frontier = VecDeque::from([init]);
    let mut checked = 0;
    while let Some(s) = frontier.pop_front() {
        if checked == limit {
            break;
        }
        checked += 1;
        let steps = s.enabled();
        check(checked, &s, &steps)?;
        for step in steps {
            if let Ok(t) = successor(&s, step)
                && seen.insert(fingerprint(&t), 0).is_none()
            {
                frontier.push_back(t);
            }
        }
    }
    Ok(checked)
}

/// The first violation breadth-first, so with a shortest trace: `None` if there is none within
/// `limit` states.
fn shortest_violation(bounds: &Bounds, limit: usize) -> Option<(Violation, Vec<Step>)> {
    let init = State::initial(bounds);
    let mut index = Visited::default();
    let mut parent: Vec<(u32, Option<Step>)> = vec![(0, None)];
    index.insert(fingerprint(&init), 0);
    let mut frontier = VecDeque::from([(0u32, init)]);
    while let Some((from, s)) = frontier.pop_front() {
        for step in s.expand() {
            match successor(&s, step) {
                Err(v) => return Some((v, crate::trace(&parent, from, Some(step)))),
                Ok(t) => {
                    let fp = fingerprint(&t);
                    if !index.contains_key(&fp) && parent.len() < limit {
                        index.insert(fp, parent.len() as u32);
                        parent.push((from, Some(step)));
                        frontier.push_back((parent.len() as u32 - 1, t));
                    }
                }
            }
        }
    }
    None
}

/// Shards of the visited set: two searchers rarely want the same one.
const SHARDS: usize = 64;

/// What the searchers share.
struct Shared {
    shards: Vec<Mutex<Visited>>,
    /// The next state's number.
    next: AtomicUsize,
    limit: usize,
    /// No state is expanded after this.
    deadline: Option<std::time::Instant>,
    truncated: AtomicBool,
    /// A violation was found: everyone stops.
    stop: AtomicBool,
    failure: Mutex<Option<(u32, Step, Violation)>>,
    /// States handed from a busy searcher to an idle one.
    pool: Mutex<Pool>,
    more: Condvar,
    /// A searcher is waiting for states.
    hungry: AtomicBool,
    threads: usize,
}

struct Pool {
    states: Vec<(u32, State)>,
    idle: usize,
    done: bool,
}

/// Stops the other searchers if this one panics: they would otherwise wait for its states
/// forever.
struct WakeOnPanic<'a>(&'a Shared);

impl Drop for WakeOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.stop_all();
        }
    }
}

/// What one searcher found: new states (number, fingerprint, goal) and transitions.
#[derive(Default)]
struct Found {
    states: Vec<(u32, u64, bool)>,
    edges: Vec<(u32, u32)>,
    /// Expanded states with no step to take.
    finals: usize,
}

impl Shared {
    /// The number of the state with fingerprint `fp`, and whether it is new; `None` if it is
    /// new and the limit is reached.
    fn visit(&self, fp: u64) -> Option<(u32, bool)> {
        let mut shard = self.shards[(fp >> 58) as usize % SHARDS].lock().expect("no searcher panics");
        if let Some(&i) = shard.get(&fp) {
            return Some((i, false));
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        if i >= self.limit {
            self.truncated.store(true, Ordering::Relaxed);
            return None;
        }
        shard.insert(fp, i as u32);
        Some((i as u32, true))
    }

    /// A state to expand from the pool; `None` once every searcher is idle (or one failed).
    fn take(&self) -> Option<(u32, State)> {
        let mut pool = self.pool.lock().expect("no searcher panics");
        pool.idle += 1;
        loop {
            if let Some(x) = pool.states.pop() {
                pool.idle -= 1;
                return Some(x);
            }
            if pool.done || self.stop.load(Ordering::Relaxed) {
                return None;
            }
            if pool.idle == self.threads {
                pool.done = true;
                self.more.notify_all();
                return None;
            }
            self.hungry.store(true, Ordering::Relaxed);
            pool = self.more.wait(pool).expect("no searcher panics");
        }
    }

    /// Hands the older half of a searcher's stack (the shallower states, with the larger
    /// subtrees) to the pool.
    fn give(&self, stack: &mut Vec<(u32, State)>) {
        let mut pool = self.pool.lock().expect("no searcher panics");
        pool.states.extend(stack.drain(..stack.len() / 2));
        self.hungry.store(false, Ordering::Relaxed);
        self.more.notify_all();
    }

    fn fail(&self, from: u32, step: Step, v: Violation) {
        self.failure.lock().expect("no searcher panics").get_or_insert((from, step, v));
        self.stop_all();
    }

    /// Stops every searcher: each leaves after the state in hand, and none waits for states.
    /// (Also from a panicking searcher, whose pool lock may be poisoned.)
    fn stop_all(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let _pool = self.pool.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.more.notify_all();
    }

    /// One searcher: depth-first from its own stack, from the pool when that is empty.
    fn search(&self, mut stack: Vec<(u32, State)>) -> Found {
        let _waker = WakeOnPanic(self);
        let mut found = Found::default();
        let mut expanded = 0u32;
        while let Some((from, s)) = stack.pop().or_else(|| self.take()) {
            if self.stop.load(Ordering::Relaxed) {
                break;
            }
            expanded = expanded.wrapping_add(1);
            if expanded.is_multiple_of(1024) && self.deadline.is_some_and(|d| std::time::Instant::now() >= d)
            {
                self.truncated.store(true, Ordering::Relaxed);
                self.stop_all();
                break;
            }
            let steps = s.expand();
            found.finals += usize::from(steps.is_empty());
            for step in steps {
                let t = match successor(&s, step) {
                    Ok(t) => t,
                    Err(v) => {
                        self.fail(from, step, v);
                        break;
                    }
                };
                let fp = fingerprint(&t);
                let Some((to, new)) = self.visit(fp) else { continue };
                if new {
                    found.states.push((to, fp, t.goal()));
                    stack.push((to, t));
                }
                found.edges.push((from, to));
            }
            if stack.len() > 1 && self.hungry.load(Ordering::Relaxed) {
                self.give(&mut stack);
            }
        }
        found
    }
}

/// Explores every state reachable within `bounds`.
///
/// The search is depth-first: a stack holds a few hundred states where a breadth-first frontier
/// held two million (and the memory traffic of a breadth-first search was half its time). It
/// runs on every core: each searcher keeps its own stack and hands half of it over when another
/// runs dry; they share the visited set, in shards. Visited states are kept as 64-bit
/// fingerprints (hash compaction, as SPIN and TLC do: at ten million states the odds of a
/// collision hiding a state are about 3 in a million), with the transitions between them. The
/// graph then gives the breadth-first depth, the liveness verdict and, for a report, a shortest
/// path, whose states are rebuilt by replaying. A violation is reported with a shortest trace to
/// one, found by a breadth-first search run again for it, and the same on every run.
pub fn explore(bounds: &Bounds) -> Report {
    let threads = match bounds.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let init = State::initial(bounds);
    let fp = fingerprint(&init);
    let shared = Shared {
        shards: (0..SHARDS).map(|_| Mutex::new(Visited::default())).collect(),
        next: AtomicUsize::new(0),
        limit: match bounds.max_states {
            0 => u32::MAX as usize,
            n => n.min(u32::MAX as usize),
        },
        deadline: (bounds.max_seconds > 0)
            .then(|| std::time::Instant::now() + Duration::from_secs(bounds.max_seconds)),
        truncated: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        failure: Mutex::new(None),
        pool: Mutex::new(Pool { states: Vec::new(), idle: 0, done: false }),
        more: Condvar::new(),
        hungry: AtomicBool::new(false),
        threads,
    };
    shared.visit(fp);
    let first = Found { states: vec![(0, fp, init.goal())], edges: Vec::new(), finals: 0 };
    let mut start = Some(vec![(0u32, init)]);
    let founds: Vec<Found> = std::thread::scope(|scope| {
        let searchers: Vec<_> = (0..threads)
            .map(|_| {
                let stack = start.take().unwrap_or_default();
                let shared = &shared;
                scope.spawn(move || shared.search(stack))
            })
            .collect();
        // A searcher's panic (a model bug) is the explorer's, with its own message.
        searchers.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
    });
    let n = shared.next.load(Ordering::Relaxed).min(shared.limit);
    let truncated = shared.truncated.load(Ordering::Relaxed);
    let finals = founds.iter().map(|f| f.finals).sum();
    let mut g = Graph { fps: vec![0; n], goal: vec![false; n], edges: Vec::new() };
    g.edges.reserve_exact(founds.iter().map(|f| f.edges.len()).sum());
    for f in std::iter::once(first).chain(founds) {
        for (i, fp, goal) in f.states {
            g.fps[i as usize] = fp;
            g.goal[i as usize] = goal;
        }
        g.edges.extend(f.edges);
    }
    if let Some((from, step, v)) = shared.failure.into_inner().expect("no searcher panics") {
        // Shortest breadth-first; failing that (too many states before it), a shortest path to
        // this one in the graph explored so far.
        let trace = shortest_violation(bounds, n.max(100_000)).unwrap_or_else(|| {
            let (mut steps, _) = g.path(bounds, &g.distances(), &g.adjacency(true), from);
            steps.push(step);
            (v, steps)
        });
        let trace = (trace.0, super::symmetry::as_spawned(bounds, &trace.1));
        return Report {
            states: n,
            transitions: g.edges.len() + 1,
            depth: trace.1.len(),
            truncated,
            violation: Some(trace),
            stuck: 0,
            finals,
            searchers: threads,
        };
    }
    let dist = g.distances();
    // Liveness: every state must reach a goal state. Walk the reversed graph from the goals.
    let mut can_finish = std::mem::take(&mut g.goal);
    let mut work: Vec<u32> = (0..n as u32).filter(|&i| can_finish[i as usize]).collect();
    let reverse = g.adjacency(true);
    let (starts, sources) = &reverse;
    while let Some(to) = work.pop() {
        for &from in &sources[starts[to as usize]..starts[to as usize + 1]] {
            if !can_finish[from as usize] {
                can_finish[from as usize] = true;
                work.push(from);
            }
        }
    }
    let stuck: Vec<usize> = (0..n).filter(|&i| !can_finish[i]).collect();
    let violation = if truncated {
        None
    } else {
        stuck.iter().min_by_key(|&&i| (dist[i], g.fps[i])).map(|&i| {
            let (steps, s) = g.path(bounds, &dist, &reverse, i as u32);
            let v = Violation::new(
                Invariant::NoLostWakeup,
                format!(
                    "stuck: {} queued, {} to arrive, workers {:?}, books {:?}",
                    s.queue,
                    s.to_arrive,
                    s.procs.iter().map(|(id, p)| (id.0, p.core.state(), p.dead)).collect::<Vec<_>>(),
                    s.arb.arbiter.dispatcher().books()
                ),
            );
            (v, super::symmetry::as_spawned(bounds, &steps))
        })
    };
    Report {
        states: n,
        transitions: g.edges.len(),
        depth: dist.iter().copied().filter(|&d| d != u32::MAX).max().unwrap_or(0) as usize,
        truncated,
        violation,
        stuck: if truncated { 0 } else { stuck.len() },
        finals,
        searchers: threads,
    }
}
