//! Gauge values live across flushes so later deltas apply to them; memory
//! stays bounded by a TTL and a cap on how many are remembered.

use super::{saturate, Hasher, Map};

/// A gauge's changes within one interval, in one shard.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GaugeUpdate {
    /// The last absolute value seen, if any.
    pub set: Option<f64>,
    /// Sum of the deltas seen after that absolute value (or all of them).
    pub delta: f64,
}

impl GaugeUpdate {
    /// Folds a later update of the same interval into this one.
    pub fn then(&mut self, later: GaugeUpdate) {
        match later.set {
            Some(_) => *self = later,
            None => self.delta = saturate(self.delta + later.delta),
        }
    }
}

/// Gauge values remembered across flushes.
#[derive(Debug, Clone)]
pub struct GaugeState {
    /// Last known value of each gauge and the flush that last updated it.
    values: Map<(f64, u64)>,
    /// Flushes merged so far.
    flushes: u64,
    /// Flushes a gauge is remembered without updates (0 = forever).
    ttl_flushes: u64,
    /// Most gauges remembered (0 = unlimited); new ones beyond are flushed
    /// but not remembered, so memory stays bounded whatever arrives.
    max_remembered: usize,
    /// Gauges forgotten (expired or over the bound) since start.
    pub forgotten: u64,
}

impl GaugeState {
    /// Empty state that remembers every gauge forever.
    pub fn new(hasher: Hasher) -> GaugeState {
        GaugeState::bounded(hasher, 0, 0)
    }

    /// Empty state that forgets gauges idle for `ttl_flushes` flushes and
    /// remembers at most `max_remembered` (0 = no bound, for either).
    pub fn bounded(hasher: Hasher, ttl_flushes: u64, max_remembered: usize) -> GaugeState {
        GaugeState {
            values: Map::with_hasher(hasher),
            flushes: 0,
            ttl_flushes,
            max_remembered,
            forgotten: 0,
        }
    }

    /// Applies one interval's update; returns the gauge's new value.
    pub fn apply(&mut self, key: &str, update: GaugeUpdate) -> f64 {
        let flush = self.flushes;
        let value = match self.values.get_mut(key) {
            Some((value, updated)) => {
                *updated = flush;
                value
            }
            None => {
                let value = saturate(update.set.unwrap_or(0.0) + update.delta);
                if self.max_remembered > 0 && self.values.len() >= self.max_remembered {
                    self.forgotten += 1;
                } else {
                    self.values.insert(key.into(), (value, flush));
                }
                return value;
            }
        };
        if let Some(set) = update.set {
            *value = set;
        }
        *value = saturate(*value + update.delta);
        *value
    }

    /// Ends a flush: forgets gauges idle for longer than the TTL.
    pub fn end_flush(&mut self) {
        if self.ttl_flushes > 0 && self.flushes.is_multiple_of(16) {
            // Sweeping every 16th flush keeps the cost off most flushes.
            let (flush, ttl) = (self.flushes, self.ttl_flushes);
            let before = self.values.len();
            self.values
                .retain(|_, (_, updated)| flush - *updated <= ttl);
            self.forgotten += (before - self.values.len()) as u64;
        }
        self.flushes += 1;
    }

    /// The remembered value of `key`, if any.
    pub fn get(&self, key: &str) -> Option<f64> {
        self.values.get(key).map(|(value, _)| *value)
    }

    /// Every remembered gauge and its value, in no order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> {
        self.values.iter().map(|(key, (value, _))| (&**key, *value))
    }

    /// Forgets `key` (the management console's `delgauges`); true if it was held.
    pub fn remove(&mut self, key: &str) -> bool {
        self.values.remove(key).is_some()
    }

    /// Forgets every gauge (Etsy's `deleteGauges`: a gauge's value lasts one
    /// flush, a later delta starts from 0).
    pub fn forget_all(&mut self) {
        self.values.clear();
    }

    /// Number of gauges remembered.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when no gauge is remembered.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}
