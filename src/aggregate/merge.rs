//! The flush's first step: every shard of the interval merged into one
//! [`Snapshot`], sorted by name so the output is stable.

use super::sort::sort_by_name;
use super::stamped::StampedValues;
use super::{GaugeState, GaugeUpdate, IntakeCounts, Map, Name, Shard, TimerSamples};
use crate::protocol::ParseError;

/// Everything one flush writes: the merge of all shards, plus gauge state.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Counter sums of the interval.
    pub counters: Vec<(Name, f64)>,
    /// Gauges updated in the interval, with their new values.
    pub gauges: Vec<(Box<str>, f64)>,
    /// Timers of the interval.
    pub timers: Vec<(Name, TimerSamples)>,
    /// Distinct member counts of the sets of the interval.
    pub sets: Vec<(Box<str>, usize)>,
    /// Timestamped counter sums: `(name, second, sum)`.
    pub stamped_counters: StampedValues,
    /// Timestamped gauges: `(name, second, value)`.
    pub stamped_gauges: StampedValues,
    /// What the shards took in during the interval.
    pub intake: IntakeCounts,
    /// One discarded line of the interval (cut short) and why.
    pub sample_bad_line: Option<(Box<[u8]>, ParseError)>,
}

impl Snapshot {
    /// Distinct series in the snapshot.
    pub fn names(&self) -> usize {
        self.counters.len()
            + self.gauges.len()
            + self.timers.len()
            + self.sets.len()
            + self.stamped_counters.len()
            + self.stamped_gauges.len()
    }
}

/// Merges the shards of one interval into a snapshot. Gauge updates are
/// applied to `gauges`; across shards the order of gauge writes within one
/// interval is not defined (UDP has none).
pub fn merge(shards: Vec<Shard>, gauges: &mut GaugeState, max_timer_samples: usize) -> Snapshot {
    let max_members = shards
        .first()
        .map_or(usize::MAX, |s| s.limits.max_set_members);
    let mut snapshot = Snapshot::default();
    // The largest shard is the base: the others' series are inserted into
    // it, so a flood through one worker is not copied key by key.
    let mut shards = shards;
    if let Some(largest) = (0..shards.len()).max_by_key(|&i| shards[i].names()) {
        shards.swap(0, largest);
    }
    let mut shards = shards.into_iter();
    let Some(mut first) = shards.next() else {
        return snapshot;
    };
    let mut rng = first.rng.clone();
    let mut updated: Map<GaugeUpdate> = std::mem::take(&mut first.gauges);
    for shard in shards {
        first.intake.add(&shard.intake);
        if first.sample_bad_line.is_none() {
            first.sample_bad_line = shard.sample_bad_line;
        }
        for (key, sum) in shard.counters.into_entries() {
            first.counters.add(&key, sum, || true);
        }
        for (key, timer) in shard.timers.into_entries() {
            // Admitted: the name budget took each name once, in its shard.
            if let Some(merged) = first.timers.entry(&key, || true, TimerSamples::default) {
                merged.merge(timer, max_timer_samples, &mut rng);
            }
        }
        for (key, members) in shard.sets {
            let merged = first.sets.entry(key).or_default();
            for member in members {
                if merged.len() < max_members || merged.contains(&member) {
                    merged.insert(member);
                } else {
                    first.intake.set_members_refused += 1;
                }
            }
        }
        for (key, update) in shard.gauges {
            updated.entry(key).or_default().then(update);
        }
        first.stamped.merge(shard.stamped);
    }
    (snapshot.stamped_counters, snapshot.stamped_gauges) = first.stamped.into_sorted();
    snapshot.intake = first.intake;
    snapshot.sample_bad_line = first.sample_bad_line;
    snapshot.counters = first.counters.into_entries();
    snapshot.timers = first.timers.into_entries();
    snapshot.sets = first
        .sets
        .into_iter()
        .map(|(key, members)| (key, members.len()))
        .collect();
    for (key, update) in updated {
        let value = gauges.apply(&key, update);
        snapshot.gauges.push((key, value));
    }
    gauges.end_flush();
    sort_by_name(&mut snapshot.counters);
    sort_by_name(&mut snapshot.gauges);
    sort_by_name(&mut snapshot.timers);
    sort_by_name(&mut snapshot.sets);
    snapshot
}
