//! Idle series: Etsy writes a counter, timer or set that got nothing this
//! interval as 0 (unless its `delete*` says otherwise) and resends every
//! gauge's last value. Etsy remembers them forever; here they are
//! remembered until idle for the gauge TTL (`--gauge-ttl`), at most
//! `--max-names` of each kind, so junk names cannot grow memory for good.

use hashbrown::HashMap;

use super::Deletes;
use crate::aggregate::{GaugeState, Hasher, Snapshot, TimerSamples};

/// Names of one kind and the flush that last saw each.
#[derive(Debug, Clone)]
struct Known {
    /// Name -> flush number of its last update.
    seen: HashMap<Box<str>, u64, Hasher>,
}

impl Known {
    /// Marks `updated` as seen at `flush`, then returns the names idle this
    /// flush; forgets those idle past `ttl` flushes (0: never), and
    /// remembers at most `max` names (0: no bound).
    fn update<'a>(
        &mut self,
        updated: impl Iterator<Item = &'a str>,
        flush: u64,
        ttl: u64,
        max: usize,
    ) -> Vec<Box<str>> {
        for name in updated {
            if let Some(last) = self.seen.get_mut(name) {
                *last = flush;
            } else if max == 0 || self.seen.len() < max {
                self.seen.insert(name.into(), flush);
            }
        }
        if ttl > 0 {
            self.seen.retain(|_, last| flush - *last <= ttl);
        }
        self.seen
            .iter()
            .filter(|(_, last)| **last != flush)
            .map(|(name, _)| name.clone())
            .collect()
    }
}

/// The idle series of every kind, across flushes.
#[derive(Debug, Clone)]
pub struct IdleSeries {
    /// Counters, timers, sets.
    kinds: [Known; 3],
    /// What is deleted rather than written.
    deletes: Deletes,
    /// Flushes a series is remembered while idle (0: forever).
    ttl_flushes: u64,
    /// Most series remembered per kind (0: no bound).
    max_names: usize,
    /// Flushes so far.
    flushes: u64,
    /// Etsy's gauge deletion: forget a gauge's value after each flush.
    forget_gauges: bool,
}

impl IdleSeries {
    /// `forget_gauges`: under `--etsy` a deleted gauge's value is gone too
    /// (a later delta starts from 0, as in Etsy).
    pub fn new(
        hasher: &Hasher,
        deletes: Deletes,
        ttl_flushes: u64,
        max_names: usize,
        forget_gauges: bool,
    ) -> IdleSeries {
        let known = || Known {
            seen: HashMap::with_hasher(hasher.clone()),
        };
        IdleSeries {
            kinds: [known(), known(), known()],
            deletes,
            ttl_flushes,
            max_names,
            flushes: 0,
            forget_gauges,
        }
    }

    /// Adds the idle series to a merged snapshot (0, an empty timer, 0, the
    /// remembered gauge values) and keeps every list sorted by name.
    pub fn fill(&mut self, snapshot: &mut Snapshot, gauges: &mut GaugeState) {
        let flush = self.flushes;
        self.flushes += 1;
        let (ttl, max) = (self.ttl_flushes, self.max_names);
        let [counters, timers, sets] = &mut self.kinds;
        if !self.deletes.counters {
            let idle = counters.update(snapshot.counters.iter().map(|c| &*c.0), flush, ttl, max);
            fill_sorted(&mut snapshot.counters, idle, |_| 0.0);
        }
        if !self.deletes.timers {
            let idle = timers.update(snapshot.timers.iter().map(|t| &*t.0), flush, ttl, max);
            fill_sorted(&mut snapshot.timers, idle, |_| TimerSamples::default());
        }
        if !self.deletes.sets {
            let idle = sets.update(snapshot.sets.iter().map(|s| &*s.0), flush, ttl, max);
            fill_sorted(&mut snapshot.sets, idle, |_| 0);
        }
        if !self.deletes.gauges {
            let idle: Vec<(Box<str>, f64)> = gauges
                .iter()
                .filter(|(name, _)| {
                    snapshot
                        .gauges
                        .binary_search_by(|g| (*g.0).cmp(*name))
                        .is_err()
                })
                .map(|(name, value)| (name.into(), value))
                .collect();
            snapshot.gauges.extend(idle);
            snapshot.gauges.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        } else if self.forget_gauges {
            gauges.forget_all();
        }
    }
}

/// Appends an entry for each idle name, then sorts by name again.
fn fill_sorted<K: From<Box<str>> + Ord, V>(
    list: &mut Vec<(K, V)>,
    idle: Vec<Box<str>>,
    zero: impl Fn(&str) -> V,
) {
    if idle.is_empty() {
        return;
    }
    list.extend(idle.into_iter().map(|name| {
        let value = zero(&name);
        (name.into(), value)
    }));
    list.sort_unstable_by(|a, b| a.0.cmp(&b.0));
}
