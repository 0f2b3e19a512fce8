//! Values that carry their own time (DogStatsD `|T<unix seconds>`, counters
//! and gauges): not folded into the interval, but written to carbon at
//! their own timestamp. A counter is written as its raw count (the sum of
//! `value / rate` for that second), a gauge as the last value for it.

use hashbrown::HashMap;

use super::{saturate, Hasher};

/// `(name, second, value)`, as the flush writes them.
pub type StampedValues = Vec<(Box<str>, u64, f64)>;

/// One interval's timestamped values, per series and second.
#[derive(Debug, Clone)]
pub struct Stamped {
    /// Counter sums per series and second.
    pub counters: HashMap<(Box<str>, u64), f64, Hasher>,
    /// Last gauge value per series and second.
    pub gauges: HashMap<(Box<str>, u64), f64, Hasher>,
}

impl Stamped {
    /// Empty, with the shard's hasher.
    pub fn new(hasher: Hasher) -> Stamped {
        Stamped {
            counters: HashMap::with_hasher(hasher.clone()),
            gauges: HashMap::with_hasher(hasher),
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.counters.len() + self.gauges.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when this (series, second) already has an entry of that kind.
    pub fn has(&self, counter: bool, key: &str, at: u64) -> bool {
        let map = if counter {
            &self.counters
        } else {
            &self.gauges
        };
        // The tuple key needs an owned name; lookups are rare (only `|T`).
        map.contains_key(&(Box::from(key), at))
    }

    /// Adds a counter's `value / rate` at second `at`.
    pub fn add_counter(&mut self, key: &str, at: u64, amount: f64) {
        let sum = self.counters.entry((key.into(), at)).or_insert(0.0);
        *sum = saturate(*sum + amount);
    }

    /// Sets a gauge at second `at` (a sign is part of the value: a delta at
    /// a past second has nothing to add to).
    pub fn set_gauge(&mut self, key: &str, at: u64, value: f64) {
        self.gauges.insert((key.into(), at), value);
    }

    /// Folds another shard's entries in (counters add, gauges: the other's).
    pub fn merge(&mut self, other: Stamped) {
        for (key, sum) in other.counters {
            let total = self.counters.entry(key).or_insert(0.0);
            *total = saturate(*total + sum);
        }
        self.gauges.extend(other.gauges);
    }

    /// Sorted by name, then time: `(name, second, value)`.
    pub fn into_sorted(self) -> (StampedValues, StampedValues) {
        let sorted = |map: HashMap<(Box<str>, u64), f64, Hasher>| {
            let mut list: StampedValues = map.into_iter().map(|((k, t), v)| (k, t, v)).collect();
            list.sort_unstable_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
            list
        };
        (sorted(self.counters), sorted(self.gauges))
    }
}
