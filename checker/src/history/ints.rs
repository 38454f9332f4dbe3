//! Key ids of integer record values: a dense window of ids indexed by value
//! for values close together (the common case: producers count, and most
//! give each value to one partition), and a hash map for the rest.
//!
//! A history names each value about four times (send, ack, poll, process),
//! so this lookup is the hottest step of folding. The window turns it into
//! an array index where a hash map would miss the cache. A window slot holds
//! the first key with that value, whatever its partition; the same value in
//! another partition goes to the map. Memory stays O(values), never
//! O(largest value): the window holds at most `SLOTS_PER_KEY` slots per key,
//! and values outside it go to the map.

use super::NONE;
use crate::util::FxHashMap;

/// Window slots allowed per key interned so far.
const SLOTS_PER_KEY: usize = 4;
/// Slots every history may use however few keys it has.
const SLOTS_FREE: usize = 1 << 16;
/// The window starts this far below the first value, for values that
/// producers racing each other record a little out of order.
const SLACK: i64 = 1024;

#[derive(Debug, Default)]
pub(super) struct IntIds {
    /// The window's first value, once there is one.
    base: Option<i64>,
    /// Per value from `base`: the first key with it, or `NONE`.
    window: Vec<u32>,
    sparse: FxHashMap<(u32, i64), u32>,
}

impl IntIds {
    fn slot(&self, v: i64) -> Option<usize> {
        let i = usize::try_from(v.checked_sub(self.base?)?).ok()?;
        (i < self.window.len()).then_some(i)
    }

    /// The id of value `v` in partition `p`. `partition_of` gives a key's
    /// partition.
    pub(super) fn get(&self, p: u32, v: i64, partition_of: impl Fn(u32) -> u32) -> Option<u32> {
        match self.slot(v).map(|i| self.window[i]) {
            Some(id) if id != NONE && partition_of(id) == p => Some(id),
            _ => self.sparse.get(&(p, v)).copied(),
        }
    }

    /// The id of `(p, v)`, or `next` (then true) after filing it; `next` is
    /// also how many keys exist, which bounds the window.
    pub(super) fn intern(&mut self, p: u32, v: i64, next: u32, partition_of: impl Fn(u32) -> u32) -> (u32, bool) {
        if let Some(id) = self.get(p, v, partition_of) {
            return (id, false);
        }
        match self.free_slot(v, next as usize) {
            Some(i) => self.window[i] = next,
            None => {
                self.sparse.insert((p, v), next);
            }
        }
        (next, true)
    }

    /// An empty window slot for `v`, growing the window if the budget
    /// allows.
    fn free_slot(&mut self, v: i64, keys: usize) -> Option<usize> {
        let base = *self.base.get_or_insert(v.saturating_sub(SLACK));
        let i = usize::try_from(v.checked_sub(base)?).ok()?;
        if i >= self.window.len() {
            let len = (i + 1).max(self.window.len() * 2);
            if len > SLOTS_PER_KEY.saturating_mul(keys).saturating_add(SLOTS_FREE) {
                return None;
            }
            self.window.resize(len, NONE);
        }
        (self.window[i] == NONE).then_some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Interns `(p, v)` pairs in order, as the history does: ids are dense.
    struct Keys {
        ids: IntIds,
        partitions: Vec<u32>,
    }

    impl Keys {
        fn intern(&mut self, p: u32, v: i64) -> (u32, bool) {
            let parts = &self.partitions;
            let (id, new) = self.ids.intern(p, v, parts.len() as u32, |k| parts[k as usize]);
            if new {
                self.partitions.push(p);
            }
            (id, new)
        }
    }

    /// Values near each other and far apart, and one value in two
    /// partitions, get distinct ids, and each is found again.
    #[test]
    fn dense_and_sparse_values_intern_once() {
        let mut keys = Keys { ids: IntIds::default(), partitions: Vec::new() };
        let values = [5, 6, -3000, i64::MAX, i64::MIN, 4, 1 << 40, 7];
        let pairs: Vec<(u32, i64)> = values.iter().flat_map(|&v| [(0, v), (1, v)]).collect();
        for (n, &(p, v)) in pairs.iter().enumerate() {
            assert_eq!(keys.intern(p, v), (n as u32, true), "({p}, {v})");
        }
        for (n, &(p, v)) in pairs.iter().enumerate() {
            assert_eq!(keys.intern(p, v), (n as u32, false), "({p}, {v})");
        }
        let parts = &keys.partitions;
        assert_eq!(keys.ids.get(0, 8, |k| parts[k as usize]), None);
        assert!(keys.ids.window.len() <= SLOTS_FREE + SLOTS_PER_KEY * pairs.len());
    }

    /// Huge, spread-out values never grow the window past its budget.
    #[test]
    fn spread_values_stay_within_the_budget() {
        let mut keys = Keys { ids: IntIds::default(), partitions: Vec::new() };
        for n in 0..10_000i64 {
            keys.intern(0, n * 1_000_003);
        }
        assert!(keys.ids.window.len() <= SLOTS_FREE + SLOTS_PER_KEY * 10_000, "{} slots", keys.ids.window.len());
        assert_eq!(keys.intern(0, 9_999 * 1_000_003), (9_999, false));
    }
}
