//! One shard's series of one kind (counter sums, timer samples), laid out
//! for a million names: the entries in
//! one vector, which the flush takes as it is (no copy) to sort and render,
//! and a hash table of `u32` indices into it, each beside 32 bits of its
//! name's hash. A bucket costs 9 bytes instead of the 25 of a map holding
//! `(Box<str>, V)` itself; names of up to 24 bytes need no allocation of
//! their own ([`Name`]); and the vector grows by `realloc` (pages moved, not
//! copied), so neither a million names nor the table doubling on the way
//! there costs twice the memory. The stored hash bits let the table grow
//! without reading a single name (at a million names reading them took about
//! 100 ms, long enough for a 208 KiB receive buffer to overflow at 100k
//! lines/s) and spare a name comparison on most misses.

use hashbrown::HashTable;

use super::{saturate, Hasher, Name};

/// Most names one map holds: its indices are `u32` (the name cap refuses
/// far fewer).
const MAX_ENTRIES: usize = u32::MAX as usize;

/// Values by name, in the order the names first arrived.
#[derive(Debug, Clone)]
pub struct SeriesMap<V> {
    /// Index of each entry and the high 32 bits of its name's hash, placed
    /// by [`placement`] of those bits.
    index: HashTable<(u32, u32)>,
    /// Names and values.
    entries: Vec<(Name, V)>,
    hasher: Hasher,
}

/// Counter sums by name.
pub type CounterMap = SeriesMap<f64>;

impl<V> SeriesMap<V> {
    pub fn new(hasher: Hasher) -> SeriesMap<V> {
        SeriesMap {
            index: HashTable::new(),
            entries: Vec::new(),
            hasher,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn hash(&self, key: &str) -> u32 {
        (self.hasher.hash_one(key) >> 32) as u32
    }

    /// The entry of `key`, whose [`SeriesMap::hash`] is `hash`.
    fn find(&self, key: &str, hash: u32) -> Option<usize> {
        let entries = &self.entries;
        self.index
            .find(placement(hash), |&(i, h)| {
                h == hash && &*entries[i as usize].0 == key
            })
            .map(|&(i, _)| i as usize)
    }

    /// The value of `key`, if it has one this interval.
    pub fn get(&self, key: &str) -> Option<&V> {
        self.find(key, self.hash(key)).map(|i| &self.entries[i].1)
    }

    /// The value of `key`; a name new to the map gets `new()`, but only when
    /// `admit` says so (the name budget): None when it was refused. The name
    /// is hashed once, whether it is new or not.
    pub fn entry(
        &mut self,
        key: &str,
        admit: impl FnOnce() -> bool,
        new: impl FnOnce() -> V,
    ) -> Option<&mut V> {
        let hash = self.hash(key);
        if let Some(i) = self.find(key, hash) {
            return Some(&mut self.entries[i].1);
        }
        if self.entries.len() >= MAX_ENTRIES || !admit() {
            return None;
        }
        let at = self.entries.len() as u32;
        self.entries.push((key.into(), new()));
        self.index
            .insert_unique(placement(hash), (at, hash), |&(_, h)| placement(h));
        self.entries.last_mut().map(|(_, value)| value)
    }

    /// Removes `key` (Etsy's `delcounters`, `deltimers`); its value if it
    /// had one.
    pub fn remove(&mut self, key: &str) -> Option<V> {
        let hash = self.hash(key);
        let at = self.find(key, hash)?;
        let last = self.entries.len() - 1;
        // The last entry moves into the hole: its slot must point there.
        let moved = (at != last).then(|| self.hash(&self.entries[last].0));
        if let Ok(slot) = self
            .index
            .find_entry(placement(hash), |&(i, _)| i as usize == at)
        {
            slot.remove();
        }
        if let Some(moved) = moved {
            if let Some(slot) = self
                .index
                .find_mut(placement(moved), |&(i, _)| i as usize == last)
            {
                slot.0 = at as u32;
            }
        }
        Some(self.entries.swap_remove(at).1)
    }

    /// Names and values, in the order the names first arrived.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &V)> {
        self.entries.iter().map(|(name, value)| (&**name, value))
    }

    /// The entries, for the flush to sort (and the merge to fold in).
    pub fn into_entries(self) -> Vec<(Name, V)> {
        self.entries
    }
}

impl SeriesMap<f64> {
    /// Adds `delta` to the sum of `key` (a new name only when `admit` says
    /// so); false when it was refused.
    pub fn add(&mut self, key: &str, delta: f64, admit: impl FnOnce() -> bool) -> bool {
        match self.entry(key, admit, || 0.0) {
            Some(sum) => {
                *sum = saturate(*sum + delta);
                true
            }
            None => false,
        }
    }
}

/// The table's hash for 32 stored bits: hashbrown takes the bucket from the
/// low bits and its tag from the top seven, so both halves carry them.
fn placement(hash: u32) -> u64 {
    (u64::from(hash) << 32) | u64::from(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_refuses_what_the_budget_refuses_and_removes() {
        let mut map = CounterMap::new(Hasher::default());
        for i in 0..1000 {
            assert!(map.add(&format!("c{i}"), 1.0, || true));
        }
        assert!(map.add("c7", 2.0, || false), "known names need no budget");
        assert!(!map.add("new", 1.0, || false));
        assert_eq!(map.get("c7"), Some(&3.0));
        assert_eq!(map.get("new"), None);
        // Removing moves the last entry into the hole; both stay reachable.
        assert_eq!(map.remove("c10"), Some(1.0));
        assert_eq!(map.remove("c10"), None);
        assert_eq!(map.get("c999"), Some(&1.0));
        assert_eq!(map.remove("c999"), Some(1.0));
        assert_eq!(map.len(), 998);
        for i in (0..999).filter(|&i| i != 10) {
            let want = if i == 7 { 3.0 } else { 1.0 };
            assert_eq!(map.get(&format!("c{i}")), Some(&want), "c{i}");
        }
        map.add("c1", 4.0, || true);
        map.add("m", 4.0, || true);
        assert_eq!((map.get("c1"), map.get("m")), (Some(&5.0), Some(&4.0)));
        let total: f64 = map.iter().map(|(_, sum)| sum).sum();
        assert_eq!(total, 998.0 + 2.0 + 8.0);
    }
}
