//! The explored graph: adjacency, breadth-first distances, and shortest paths back to the
//! initial state, found again by replaying steps (for traces).

use super::search::{fingerprint, successor};
use super::*;

/// The explored graph: each state's fingerprint, whether it is a goal, and the transitions.
pub(super) struct Graph {
    pub(super) fps: Vec<u64>,
    pub(super) goal: Vec<bool>,
    /// `(from, to)`, in no particular order.
    pub(super) edges: Vec<(u32, u32)>,
}

impl Graph {
    pub(super) fn len(&self) -> usize {
        self.fps.len()
    }

    /// For each state, the states it leads to, as `(starts, targets)`: the successors of `i` are
    /// `targets[starts[i]..starts[i + 1]]`. With `reverse`, the states leading to it.
    pub(super) fn adjacency(&self, reverse: bool) -> Adjacency {
        let n = self.len();
        let key = |&(from, to): &(u32, u32)| if reverse { (to, from) } else { (from, to) };
        let mut starts = vec![0usize; n + 1];
        for e in &self.edges {
            starts[key(e).0 as usize + 1] += 1;
        }
        for i in 0..n {
            starts[i + 1] += starts[i];
        }
        let mut fill = starts.clone();
        let mut targets = vec![0u32; self.edges.len()];
        for e in &self.edges {
            let (a, b) = key(e);
            targets[fill[a as usize]] = b;
            fill[a as usize] += 1;
        }
        (starts, targets)
    }

    /// Breadth-first distances from the initial state (`u32::MAX`: not reached).
    pub(super) fn distances(&self) -> Vec<u32> {
        let (starts, targets) = self.adjacency(false);
        let mut dist = vec![u32::MAX; self.len()];
        let mut queue = VecDeque::from([0u32]);
        dist[0] = 0;
        while let Some(a) = queue.pop_front() {
            for &b in &targets[starts[a as usize]..starts[a as usize + 1]] {
                if dist[b as usize] == u32::MAX {
                    dist[b as usize] = dist[a as usize] + 1;
                    queue.push_back(b);
                }
            }
        }
        dist
    }

    /// The steps of a shortest path from the initial state to `to`, and the state they reach;
    /// the same path whatever order the states were numbered in: walking back from `to` over the
    /// reversed graph (`reverse`, from [`Graph::adjacency`]), the predecessor one level up with
    /// the least fingerprint; the step between each two found again by replaying (the one whose
    /// successor has the next state's fingerprint).
    pub(super) fn path(
        &self,
        bounds: &Bounds,
        dist: &[u32],
        reverse: &Adjacency,
        to: u32,
    ) -> (Vec<Step>, State) {
        let (starts, sources) = reverse;
        let mut states = vec![to];
        while let Some(&at) = states.last().filter(|&&at| dist[at as usize] > 0) {
            let up = sources[starts[at as usize]..starts[at as usize + 1]]
                .iter()
                .copied()
                .filter(|&a| dist[a as usize] + 1 == dist[at as usize])
                .min_by_key(|&a| self.fps[a as usize])
                .expect("a state one level up leads here");
            states.push(up);
        }
        states.reverse();
        let mut s = State::initial(bounds);
        let mut steps = Vec::new();
        for &next in &states[1..] {
            let (step, t) = s
                .enabled()
                .into_iter()
                .find_map(|step| {
                    successor(&s, step)
                        .ok()
                        .filter(|t| fingerprint(t) == self.fps[next as usize])
                        .map(|t| (step, t))
                })
                .expect("an explored transition is found again");
            steps.push(step);
            s = t;
        }
        (steps, s)
    }
}

/// A graph's adjacency lists, as [`Graph::adjacency`] makes them.
pub(super) type Adjacency = (Vec<usize>, Vec<u32>);
