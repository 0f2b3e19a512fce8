//! One shard's counter sums, laid out for a million names: the entries in
//! one vector, which the flush takes as it is (no copy) to sort and render,
//! and a hash table of `u32` indices into it. A bucket costs 5 bytes instead
//! of the 25 of a map holding `(Name, f64)` itself, and the vector grows
//! by `realloc` (pages moved, not copied), so neither a million names nor the
//! table doubling on the way there costs twice the memory.

use hashbrown::HashTable;

use super::{saturate, Hasher, Name};

/// Counter sums by name, in the order the names first arrived.
#[derive(Debug, Clone)]
pub struct CounterMap {
    /// Index of each entry, placed by the hash of its name.
    index: HashTable<u32>,
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

    fn find(&self, key: &str) -> Option<usize> {
        let hash = self.hasher.hash_one(key);
        let entries = &self.entries;
        self.index
            .find(hash, |&i| &*entries[i as usize].0 == key)
            .map(|&i| i as usize)
    }

    /// The sum of `key`, if it has one this interval.
    pub fn get(&self, key: &str) -> Option<f64> {
        self.find(key).map(|i| self.entries[i].1)
    }

    /// Adds `delta` to the sum of `key`. A name new to the map is taken only
    /// when `admit` says so (the name budget); false when it was refused.
    pub fn add(&mut self, key: &str, delta: f64, admit: impl FnOnce() -> bool) -> bool {
        let hash = self.hasher.hash_one(key);
        let CounterMap {
            index,
            entries,
            hasher,
        } = self;
        if let Some(&i) = index.find(hash, |&i| &*entries[i as usize].0 == key) {
            let sum = &mut entries[i as usize].1;
            *sum = saturate(*sum + delta);
            return true;
        }
        // Past u32::MAX names the cap has long refused them; refuse here too.
        let Ok(at) = u32::try_from(entries.len()) else {
            return false;
        };
        if !admit() {
            return false;
        }
        entries.push((key.into(), saturate(delta)));
        index.insert_unique(hash, at, |&i| hasher.hash_one(&*entries[i as usize].0));
        true
    }

    /// Adds another shard's sum of `key` (the merge: the name is moved, not
    /// copied, when it is new here).
    pub fn merge_one(&mut self, key: Name, sum: f64) {
        if let Some(i) = self.find(&key) {
            let total = &mut self.entries[i].1;
            *total = saturate(*total + sum);
        } else if let Ok(at) = u32::try_from(self.entries.len()) {
            let hash = self.hasher.hash_one(&*key);
            self.entries.push((key, saturate(sum)));
            let CounterMap {
                index,
                entries,
                hasher,
            } = self;
            index.insert_unique(hash, at, |&i| hasher.hash_one(&*entries[i as usize].0));
        }
    }

    /// Removes `key` (Etsy's `delcounters`); its sum if it had one.
    pub fn remove(&mut self, key: &str) -> Option<f64> {
        let hash = self.hasher.hash_one(key);
        let CounterMap {
            index,
            entries,
            hasher,
        } = self;
        let found = index
            .find_entry(hash, |&i| &*entries[i as usize].0 == key)
            .ok()?;
        let (at, _) = found.remove();
        let at = at as usize;
        let last = entries.len() - 1;
        let (_, sum) = entries.swap_remove(at);
        if at != last {
            // The entry that was last now sits at `at`: point its slot there.
            let moved = hasher.hash_one(&*entries[at].0);
            if let Some(slot) = index.find_mut(moved, |&i| i as usize == last) {
                *slot = at as u32;
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
