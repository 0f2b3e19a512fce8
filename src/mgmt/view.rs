//! The current interval as Etsy's console shows it, read from the shards and
//! the remembered gauges on the flush thread (between flushes, so a series is
//! never seen half-flushed). Each shard is locked only while its map of one
//! kind is copied or pruned: a receive worker waits for that copy at most,
//! never for the rendering or the network.

use std::sync::Arc;

use hashbrown::{HashMap, HashSet};

use crate::aggregate::{GaugeState, GaugeUpdate, IntakeCounts};
use crate::intake::ShardCell;

/// The series kinds the console lists and deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `counters`, `delcounters`.
    Counters,
    /// `timers`, `deltimers`.
    Timers,
    /// `gauges`, `delgauges`.
    Gauges,
    /// `sets`, `delsets`.
    Sets,
}

/// A series' value as listed.
#[derive(Debug, Clone, PartialEq)]
pub enum Listed {
    /// Counter sum, gauge value, or a set's distinct members.
    Number(f64),
    /// A timer's kept samples, in arrival order per shard.
    Samples(Vec<f64>),
}

/// Names of Etsy's own counters, which it lists first (`prefixStats` is
/// `statsd`), and which are not series of ours: `del*` leaves them alone.
pub const OWN_COUNTERS: [&str; 3] = [
    "statsd.bad_lines_seen",
    "statsd.packets_received",
    "statsd.metrics_received",
];

/// The series of `kind` now, Etsy's own counters first, then by name.
pub fn list(kind: Kind, shards: &[Arc<ShardCell>], gauges: &GaugeState) -> Vec<(Box<str>, Listed)> {
    let mut series: Vec<(Box<str>, Listed)> = match kind {
        Kind::Counters => {
            let mut sums: HashMap<Box<str>, f64> = HashMap::new();
            for cell in shards {
                let copy: Vec<(Box<str>, f64)> = cell.with(|shard| {
                    shard
                        .counters
                        .iter()
                        .map(|(name, sum)| (name.into(), *sum))
                        .collect()
                });
                for (name, sum) in copy {
                    *sums.entry(name).or_insert(0.0) += sum;
                }
            }
            sums.into_iter()
                .map(|(k, v)| (k, Listed::Number(v)))
                .collect()
        }
        Kind::Timers => {
            let mut samples: HashMap<Box<str>, Vec<f64>> = HashMap::new();
            for cell in shards {
                let copy = cell.with(|shard| {
                    shard
                        .timers
                        .iter()
                        .map(|(name, timer)| (Box::<str>::from(name), timer.values.clone()))
                        .collect::<Vec<_>>()
                });
                for (name, values) in copy {
                    samples.entry(name).or_default().extend(values);
                }
            }
            samples
                .into_iter()
                .map(|(k, v)| (k, Listed::Samples(v)))
                .collect()
        }
        Kind::Gauges => {
            let mut updates: HashMap<Box<str>, GaugeUpdate> = HashMap::new();
            for cell in shards {
                let copy = cell.with(|shard| shard.gauges.clone());
                for (name, update) in copy {
                    updates.entry(name).or_default().then(update);
                }
            }
            let mut values: Vec<(Box<str>, Listed)> = gauges
                .iter()
                .filter(|(name, _)| !updates.contains_key(*name))
                .map(|(name, value)| (name.into(), Listed::Number(value)))
                .collect();
            // As the merge applies an interval's update to a remembered value.
            values.extend(updates.into_iter().map(|(name, update)| {
                let base = update.set.or(gauges.get(&name)).unwrap_or(0.0);
                (name, Listed::Number(base + update.delta))
            }));
            values
        }
        Kind::Sets => {
            let mut members: HashMap<Box<str>, HashSet<u64>> = HashMap::new();
            for cell in shards {
                let copy = cell.with(|shard| shard.sets.clone());
                for (name, set) in copy {
                    members.entry(name).or_default().extend(set);
                }
            }
            members
                .into_iter()
                .map(|(k, v)| (k, Listed::Number(v.len() as f64)))
                .collect()
        }
    };
    series.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    if kind == Kind::Counters {
        let mut own: Vec<(Box<str>, Listed)> = Vec::with_capacity(series.len() + 3);
        let live = shards
            .iter()
            .fold(IntakeCounts::default(), |mut all, cell| {
                all.add(&cell.live());
                all
            });
        let values = [live.discarded, live.packets, live.lines + live.discarded];
        for (name, value) in OWN_COUNTERS.iter().zip(values) {
            own.push(((*name).into(), Listed::Number(value as f64)));
        }
        own.extend(
            series
                .into_iter()
                .filter(|(name, _)| !OWN_COUNTERS.contains(&&**name)),
        );
        return own;
    }
    series
}

/// Removes the series `names` of `kind` from every shard (and, for gauges,
/// from the remembered values); returns how many were held anywhere.
pub fn delete(
    kind: Kind,
    names: &[String],
    shards: &[Arc<ShardCell>],
    gauges: &mut GaugeState,
) -> usize {
    let mut removed = 0;
    for cell in shards {
        removed += cell.with(|shard| {
            names
                .iter()
                .filter(|name| match kind {
                    Kind::Counters => shard.counters.remove(name.as_str()).is_some(),
                    Kind::Timers => shard.timers.remove(name.as_str()).is_some(),
                    Kind::Gauges => shard.gauges.remove(name.as_str()).is_some(),
                    Kind::Sets => shard.sets.remove(name.as_str()).is_some(),
                })
                .count()
        });
    }
    if kind == Kind::Gauges {
        removed += names.iter().filter(|name| gauges.remove(name)).count();
    }
    removed
}
