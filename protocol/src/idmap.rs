//! [`IdMap`]: the worker tables' map, a vector of `(id, value)` pairs sorted by id.
//!
//! Workers are few (at most [`crate::arbiter::MAX_WORKERS`]) and their ids only grow, so a new
//! worker is a push at the end, a lookup is a binary search, and a reap moves at most a few
//! kilobytes. What the sorted vector buys over a `BTreeMap` is its footprint: one allocation the
//! size of its entries, cloned and hashed in one pass. The exhaustive explorer clones and hashes
//! the arbiter's table, the monitor's and its own tens of millions of times, and a `BTreeMap`
//! leaf node is sized for eleven entries whatever it holds.

use std::fmt;

/// A map from ordered ids to values, iterated in id order (as a `BTreeMap` is).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IdMap<K, V> {
    entries: Vec<(K, V)>,
}

impl<K, V> Default for IdMap<K, V> {
    fn default() -> Self {
        IdMap { entries: Vec::new() }
    }
}

impl<K: Ord, V> IdMap<K, V> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    fn find(&self, key: &K) -> Result<usize, usize> {
        // Ids grow: the newest key is the likeliest insert, and a search for it ends at once.
        match self.entries.last() {
            Some((last, _)) if last < key => Err(self.entries.len()),
            _ => self.entries.binary_search_by(|(k, _)| k.cmp(key)),
        }
    }

    /// Entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The value under `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.find(key).ok().map(|i| &self.entries[i].1)
    }

    /// The value under `key`, to change.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.find(key).ok().map(|i| &mut self.entries[i].1)
    }

    /// Whether `key` has a value.
    pub fn contains_key(&self, key: &K) -> bool {
        self.find(key).is_ok()
    }

    /// Puts `value` under `key`; returns the value it replaces.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.find(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.entries.insert(i, (key, value));
                None
            }
        }
    }

    /// Takes the value under `key` out.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        self.find(key).ok().map(|i| self.entries.remove(i).1)
    }

    /// Every key renamed by `f`, one-to-one on the keys held, and the id order restored. For
    /// model checkers that name equivalent states alike (see `Arbiter::rename_workers`).
    #[doc(hidden)]
    pub fn rename_keys(&mut self, f: impl Fn(&K) -> K) {
        for (k, _) in &mut self.entries {
            *k = f(k);
        }
        self.entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    }
}

impl<K, V> IdMap<K, V> {
    /// `(id, value)` pairs in id order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&K, &V)> + ExactSizeIterator + Clone {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// `(id, value)` pairs in id order, the values to change.
    pub fn iter_mut(&mut self) -> impl DoubleEndedIterator<Item = (&K, &mut V)> + ExactSizeIterator {
        self.entries.iter_mut().map(|(k, v)| (&*k, v))
    }

    /// Ids in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &K> + ExactSizeIterator + Clone {
        self.entries.iter().map(|(k, _)| k)
    }

    /// Values in id order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> + ExactSizeIterator + Clone {
        self.entries.iter().map(|(_, v)| v)
    }

    /// Values in id order, to change.
    pub fn values_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut V> + ExactSizeIterator {
        self.entries.iter_mut().map(|(_, v)| v)
    }
}

impl<K: Ord, V> std::ops::Index<&K> for IdMap<K, V> {
    type Output = V;

    /// The value under `key`; panics if there is none (as a `BTreeMap` does).
    fn index(&self, key: &K) -> &V {
        self.get(key).expect("no entry for this id")
    }
}

impl<'a, K, V> IntoIterator for &'a IdMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = std::iter::Map<std::slice::Iter<'a, (K, V)>, fn(&'a (K, V)) -> (&'a K, &'a V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(k, v)| (k, v))
    }
}

impl<K: Ord, V> FromIterator<(K, V)> for IdMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut m = IdMap::new();
        for (k, v) in iter {
            m.insert(k, v);
        }
        m
    }
}

/// Printed as a map, as a `BTreeMap` is (the snapshots do not change).
impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for IdMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::IdMap;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8, u16),
        Remove(u8),
    }

    proptest! {
        /// Any sequence of inserts and removes leaves the same contents, in the same order, as a
        /// `BTreeMap` given the same sequence, and every call answers as the `BTreeMap`'s does.
        #[test]
        fn behaves_as_a_btreemap(ops in proptest::collection::vec(
            prop_oneof![
                (0u8..24, any::<u16>()).prop_map(|(k, v)| Op::Insert(k, v)),
                (0u8..24).prop_map(Op::Remove),
            ],
            0..64,
        )) {
            let mut m = IdMap::new();
            let mut b = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Insert(k, v) => prop_assert_eq!(m.insert(k, v), b.insert(k, v)),
                    Op::Remove(k) => prop_assert_eq!(m.remove(&k), b.remove(&k)),
                }
                prop_assert_eq!(m.len(), b.len());
                prop_assert!(m.iter().eq(b.iter()));
                for k in 0..24 {
                    prop_assert_eq!(m.get(&k), b.get(&k));
                    prop_assert_eq!(m.contains_key(&k), b.contains_key(&k));
                }
                prop_assert_eq!(format!("{m:?}"), format!("{b:?}"));
            }
            // Collected from the same pairs, in any order, it is the same map.
            let collected: IdMap<u8, u16> = b.iter().rev().map(|(&k, &v)| (k, v)).collect();
            prop_assert!(collected.iter().eq(b.iter()));
        }
    }
}
