//! One shard's counter sums, laid out for a million names: the entries in
//! one vector, which the flush takes as it is (no copy) to sort and render,
//! and a hash table of `u32` indices into it, each beside 32 bits of its
//! name's hash. A bucket costs 9 bytes instead of the 25 of a map holding
//! `(Box<str>, f64)` itself; names of up to 24 bytes need no allocation of
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

/// Counter sums by name, in the order the names first arrived.
#[derive(Debug, Clone)]
pub struct CounterMap {
    /// Index of each entry and the high 32 bits of its name's hash, placed
    /// by [`placement`] of those bits.
    index: HashTable<(u32, u32)>,
    /// Names and sums.
    entries: Vec<(Name, f64)>,
    hasher: Hasher,
}

impl CounterMap {
    pub fn new(hasher: Hasher) -> CounterMap {
        CounterMap {
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

    fn find(&self, key: &str) -> Option<usize> {
        let hash = self.hash(key);
        let entries = &self.entries;
        self.index
            .find(placement(hash), |&(i, h)| {
                h == hash && &*entries[i as usize].0 == key
            })
            .map(|&(i, _)| i as usize)
    }

    /// The sum of `key`, if it has one this interval.
    pub fn get(&self, key: &str) -> Option<f64> {
        self.find(key).map(|i| self.entries[i].1)
    }

    /// Adds `delta` to the sum of `key`. A name new to the map is taken only
    /// when `admit` says so (the name budget); false when it was refused.
    pub fn add(&mut self, key: &str, delta: f64, admit: impl FnOnce() -> bool) -> bool {
        if let Some(i) = self.find(key) {
            let sum = &mut self.entries[i].1;
            *sum = saturate(*sum + delta);
            return true;
        }
        if self.entries.len() >= MAX_ENTRIES || !admit() {
            return false;
        }
        self.insert_new(key.into(), saturate(delta));
        true
    }

    /// Appends a name known to be new (below [`MAX_ENTRIES`]).
    fn insert_new(&mut self, key: Name, sum: f64) {
        let at = self.entries.len() as u32;
        let hash = self.hash(&key);
        self.entries.push((key, sum));
        self.index
            .insert_unique(placement(hash), (at, hash), |&(_, h)| placement(h));
    }

    /// Adds another shard's sum of `key` (the merge: the name is moved, not
    /// copied, when it is new here).
    pub fn merge_one(&mut self, key: Name, sum: f64) {
        if let Some(i) = self.find(&key) {
            let total = &mut self.entries[i].1;
            *total = saturate(*total + sum);
        } else if self.entries.len() < MAX_ENTRIES {
            self.insert_new(key, saturate(sum));
        }
    }

    /// Removes `key` (Etsy's `delcounters`); its sum if it had one.
    pub fn remove(&mut self, key: &str) -> Option<f64> {
        let hash = self.hash(key);
        let CounterMap {
            index,
            entries,
            hasher,
        } = self;
        let found = index
            .find_entry(placement(hash), |&(i, h)| {
                h == hash && &*entries[i as usize].0 == key
            })
            .ok()?;
        let ((at, _), _) = found.remove();
        let at = at as usize;
        let last = entries.len() - 1;
        let (_, sum) = entries.swap_remove(at);
        if at != last {
            // The entry that was last now sits at `at`: point its slot there.
            let moved = (hasher.hash_one(&*entries[at].0) >> 32) as u32;
            if let Some(slot) = index.find_mut(placement(moved), |&(i, _)| i as usize == last) {
                slot.0 = at as u32;
            }
        }
        Some(sum)
    }

    /// Names and sums, in the order the names first arrived.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> {
        self.entries.iter().map(|(name, sum)| (&**name, *sum))
    }

    /// The entries, for the flush to sort.
    pub fn into_entries(self) -> Vec<(Name, f64)> {
        self.entries
    }
}

/// The table's hash for 32 stored bits: hashbrown takes the bucket from the
/// low bits and its tag from the top seven, so both halves carry them.
fn placement(hash: u32) -> u64 {
    (u64::from(hash) << 32) | u64::from(hash)
}

impl IntoIterator for CounterMap {
    type Item = (Name, f64);
    type IntoIter = std::vec::IntoIter<(Name, f64)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
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
        assert_eq!(map.get("c7"), Some(3.0));
        assert_eq!(map.get("new"), None);
        // Removing moves the last entry into the hole; both stay reachable.
        assert_eq!(map.remove("c10"), Some(1.0));
        assert_eq!(map.remove("c10"), None);
        assert_eq!(map.get("c999"), Some(1.0));
        assert_eq!(map.remove("c999"), Some(1.0));
        assert_eq!(map.len(), 998);
        for i in (0..999).filter(|&i| i != 10) {
            let want = if i == 7 { 3.0 } else { 1.0 };
            assert_eq!(map.get(&format!("c{i}")), Some(want), "c{i}");
        }
        map.merge_one("c1".into(), 4.0);
        map.merge_one("m".into(), 4.0);
        assert_eq!((map.get("c1"), map.get("m")), (Some(5.0), Some(4.0)));
        let total: f64 = map.iter().map(|(_, sum)| sum).sum();
        assert_eq!(total, 998.0 + 2.0 + 8.0);
    }
}
