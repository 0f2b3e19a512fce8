//! Aggregation: each receive worker owns a [`Shard`] and applies parsed
//! values to it; at every flush the shards are swapped out and merged into a
//! [`Snapshot`]. Pure: no clocks, no I/O, no locks.
//!
//! - [`timer`]: a timer's samples and the bounded reservoir.
//! - [`gauge`]: gauge values remembered across flushes.
//! - [`stamped`]: values with their own timestamp (`|T`).
//! - [`merge`](mod@merge): shards -> [`Snapshot`].

mod gauge;
mod merge;
mod names;
mod series;
mod sort;
mod stamped;
mod timer;

use arc_swap::ArcSwap;
use hashbrown::hash_map::EntryRef;
use hashbrown::{HashMap, HashSet};
use nohash_hasher::BuildNoHashHasher;
use std::sync::Arc;

use crate::protocol::{self, ParseError, Value};

pub use gauge::{GaugeState, GaugeUpdate};
pub use merge::{merge, Snapshot};
pub use names::{NameRegistry, SeriesKind};
pub use series::{CounterMap, SeriesMap};
pub use stamped::{Stamped, StampedValues};
pub use timer::TimerSamples;

/// Hasher for every name map and set member. Keyed at random per process so
/// crafted names cannot force collisions; one key is shared by all shards so
/// set-member hashes from different shards can be merged.
pub type Hasher = ahash::RandomState;

type Map<V> = HashMap<Box<str>, V, Hasher>;

/// A counter's name: up to 24 bytes are held inline, without an allocation
/// of their own (a boxed name of any length costs a 32-byte heap chunk).
pub type Name = compact_str::CompactString;

/// Set members are stored as their keyed hash: hashing them again is waste.
type MemberSet = HashSet<u64, BuildNoHashHasher<u64>>;

/// Every sum, count and gauge is held within ±`f64::MAX`. Huge values, or values
/// at tiny sample rates (`1|c|@5e-324`), would otherwise add up to infinity, and
/// a remembered gauge at +inf given a -inf delta would be NaN (written as 0) for
/// good; saturating keeps every aggregate finite and as near the truth as f64
/// allows. Found by fuzzing (fuzz/).
#[inline]
fn saturate(x: f64) -> f64 {
    x.clamp(-f64::MAX, f64::MAX)
}

/// Distinct series accepted per interval by default (`--max-names`).
pub const DEFAULT_MAX_NAMES: usize = 1_000_000;
/// Timer samples kept per series per interval by default.
pub const DEFAULT_MAX_TIMER_SAMPLES: usize = 10_000;

/// Distinct members kept per set per interval by default.
pub const DEFAULT_MAX_SET_MEMBERS: usize = 100_000;

/// Limits that keep one interval's memory bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest accepted line, in bytes.
    pub max_line_bytes: usize,
    /// Distinct series accepted per interval, all shards together;
    /// 0 = unlimited.
    pub max_names: usize,
    /// Timer samples kept per series per interval (beyond: reservoir).
    pub max_timer_samples: usize,
    /// Distinct members kept per set per interval; beyond, new members are
    /// refused and counted, and the set's count is a lower bound.
    pub max_set_members: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line_bytes: protocol::DEFAULT_MAX_LINE_BYTES,
            max_names: DEFAULT_MAX_NAMES,
            max_timer_samples: DEFAULT_MAX_TIMER_SAMPLES,
            max_set_members: DEFAULT_MAX_SET_MEMBERS,
        }
    }
}

/// Counts of what a shard took in, merged at flush into the server's stats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IntakeCounts {
    /// Lines accepted (SPEC `pending_stats`).
    pub lines: u64,
    /// Lines discarded as bad (SPEC `metrics.discarded`).
    pub discarded: u64,
    /// The same, by reason (indexed by `ParseError::index`).
    pub discarded_by: [u64; ParseError::ALL.len()],
    /// Datagrams or reads holding more than one line.
    pub batches: u64,
    /// Such batches in which at least one line was discarded.
    pub batches_discarded: u64,
    /// Datagrams (UDP) or reads (TCP) received.
    pub packets: u64,
    /// Bytes received.
    pub bytes: u64,
    /// Lines refused because the distinct-name cap was reached.
    pub names_refused: u64,
    /// Lines with a DogStatsD container id (`|c:`), accepted, not written.
    pub container_ids: u64,
    /// Lines with DogStatsD external data (`|e:`), accepted, not written.
    pub external_data: u64,
    /// Lines with their own timestamp (`|T`), written at that time.
    pub timestamped: u64,
    /// Set members refused because the set was full (`--max-set-members`).
    pub set_members_refused: u64,
}

impl IntakeCounts {
    /// Adds another shard's counts to these.
    pub fn add(&mut self, other: &IntakeCounts) {
        self.lines += other.lines;
        self.discarded += other.discarded;
        for (mine, theirs) in self.discarded_by.iter_mut().zip(&other.discarded_by) {
            *mine += theirs;
        }
        self.batches += other.batches;
        self.batches_discarded += other.batches_discarded;
        self.packets += other.packets;
        self.bytes += other.bytes;
        self.names_refused += other.names_refused;
        self.container_ids += other.container_ids;
        self.external_data += other.external_data;
        self.timestamped += other.timestamped;
        self.set_members_refused += other.set_members_refused;
    }
}

/// One worker's aggregates for the current interval.
#[derive(Debug, Clone)]
pub struct Shard {
    /// Counter sums of `value / rate`.
    pub counters: CounterMap,
    /// Gauge changes.
    pub gauges: Map<GaugeUpdate>,
    /// Timer samples.
    pub timers: SeriesMap<TimerSamples>,
    /// Set members, as keyed hashes.
    pub sets: Map<MemberSet>,
    /// Values with their own timestamp.
    pub stamped: Stamped,
    /// What came in.
    pub intake: IntakeCounts,
    /// One discarded line of the interval (cut short) and why, for the
    /// stderr summary.
    pub sample_bad_line: Option<(Box<[u8]>, ParseError)>,
    /// Bounds on this shard's growth, this interval.
    limits: Limits,
    /// Where the next interval's bounds come from (SIGHUP may store new ones).
    next_limits: Arc<ArcSwap<Limits>>,
    /// Keyed hasher, shared by all shards of one server.
    hasher: Hasher,
    /// Series created this interval by all shards together; checked only
    /// when a name is new, so the hot path never touches it.
    names: Arc<NameRegistry>,
    /// Reservoir sampling state.
    rng: fastrand::Rng,
}

impl Shard {
    /// An empty shard with its own name budget (for tests and tools).
    pub fn new(hasher: Hasher, limits: Limits) -> Shard {
        Shard::with_budget(hasher, limits, Arc::default())
    }

    /// An empty shard. Every shard of one server must share `hasher` and
    /// `names`, the series created this interval.
    pub fn with_budget(hasher: Hasher, limits: Limits, names: Arc<NameRegistry>) -> Shard {
        Shard::with_live_limits(hasher, Arc::new(ArcSwap::from_pointee(limits)), names)
    }

    /// As [`Shard::with_budget`], each interval bounded by what `limits`
    /// holds when it starts.
    pub fn with_live_limits(
        hasher: Hasher,
        limits: Arc<ArcSwap<Limits>>,
        names: Arc<NameRegistry>,
    ) -> Shard {
        let rng = fastrand::Rng::with_seed(hasher.hash_one(0x5eed_u64));
        Shard {
            counters: CounterMap::new(hasher.clone()),
            gauges: Map::with_hasher(hasher.clone()),
            timers: SeriesMap::new(hasher.clone()),
            sets: Map::with_hasher(hasher.clone()),
            stamped: Stamped::new(hasher.clone()),
            intake: IntakeCounts::default(),
            sample_bad_line: None,
            limits: **limits.load(),
            next_limits: limits,
            hasher,
            names,
            rng,
        }
    }

    /// Takes this interval's aggregates out, leaving an empty shard.
    pub fn take(&mut self) -> Shard {
        let fresh = Shard::with_live_limits(
            self.hasher.clone(),
            self.next_limits.clone(),
            self.names.clone(),
        );
        std::mem::replace(self, fresh)
    }

    /// Number of distinct series held.
    pub fn names(&self) -> usize {
        self.counters.len()
            + self.gauges.len()
            + self.timers.len()
            + self.sets.len()
            + self.stamped.len()
    }

    /// Counts a discarded line; also for lines lost before parsing (too
    /// long for the TCP framer, cut off by a close).
    pub fn count_discarded(&mut self, reason: ParseError) {
        self.intake.discarded += 1;
        self.intake.discarded_by[reason.index()] += 1;
    }

    /// Keeps the interval's first discarded line (already cut short by the
    /// caller) for the summary on stderr.
    pub fn keep_bad_line(&mut self, line: &[u8], reason: ParseError) {
        if self.sample_bad_line.is_none() {
            self.sample_bad_line = Some((line.into(), reason));
        }
    }

    /// Starts a new interval's name budget (call after taking every shard).
    pub fn reset_name_budget(&self) {
        self.names.reset();
    }

    /// Aggregates one parsed line; false when the cardinality cap refused
    /// it. Counts an accepted line in `intake.lines`.
    pub fn apply(&mut self, key: &str, values: &[Value<'_>]) -> bool {
        // One hash lookup per value; the name is copied only when new.
        let mut budget = NameBudget {
            limits: &self.limits,
            names: &self.names,
            hasher: &self.hasher,
            key,
            intake: &mut self.intake,
        };
        for value in values {
            match *value {
                Value::Counter { value, rate } => {
                    let admit = || budget.has_room(SeriesKind::Counter);
                    if !self.counters.add(key, value / rate, admit) {
                        return false;
                    }
                }
                Value::Gauge { value, delta } => {
                    let update = match self.gauges.entry_ref(key) {
                        EntryRef::Occupied(update) => update.into_mut(),
                        EntryRef::Vacant(slot) if budget.has_room(SeriesKind::Gauge) => {
                            slot.insert(GaugeUpdate::default())
                        }
                        EntryRef::Vacant(_) => return false,
                    };
                    if delta {
                        update.delta = saturate(update.delta + value);
                    } else {
                        update.set = Some(value);
                        update.delta = 0.0;
                    }
                }
                Value::Timer { value, rate } => {
                    let admit = || budget.has_room(SeriesKind::Timer);
                    let Some(timer) = self.timers.entry(key, admit, TimerSamples::default) else {
                        return false;
                    };
                    timer.add(value, rate, self.limits.max_timer_samples, &mut self.rng);
                }
                Value::Set(member) => {
                    let hash = self.hasher.hash_one(member);
                    let members = match self.sets.entry_ref(key) {
                        EntryRef::Occupied(members) => members.into_mut(),
                        EntryRef::Vacant(slot) if budget.has_room(SeriesKind::Set) => {
                            slot.insert(MemberSet::default())
                        }
                        EntryRef::Vacant(_) => return false,
                    };
                    if members.len() < self.limits.max_set_members || members.contains(&hash) {
                        members.insert(hash);
                    } else {
                        budget.intake.set_members_refused += 1;
                    }
                }
            }
        }
        self.intake.lines += 1;
        true
    }
}

impl Shard {
    /// Keeps a line's counter and gauge values at their own second `at`
    /// (the parser allows `|T` on nothing else); false when the cap refused.
    pub fn apply_at(&mut self, key: &str, values: &[Value<'_>], at: u64) -> bool {
        let mut budget = NameBudget {
            limits: &self.limits,
            names: &self.names,
            hasher: &self.hasher,
            key,
            intake: &mut self.intake,
        };
        for value in values {
            let counter = matches!(value, Value::Counter { .. });
            let kind = if counter {
                SeriesKind::StampedCounter
            } else {
                SeriesKind::StampedGauge
            };
            if !self.stamped.has(counter, key, at) && !budget.has_room(kind) {
                return false;
            }
            match *value {
                Value::Counter { value, rate } => self.stamped.add_counter(key, at, value / rate),
                Value::Gauge { value, .. } => self.stamped.set_gauge(key, at, value),
                Value::Timer { .. } | Value::Set(_) => {}
            }
        }
        self.intake.lines += 1;
        self.intake.timestamped += 1;
        true
    }
}

/// The distinct-name cap, borrowed apart from the maps it guards.
struct NameBudget<'a> {
    /// Holds the cap.
    limits: &'a Limits,
    /// Series created this interval, all shards together.
    names: &'a NameRegistry,
    /// Hashes series for the registry.
    hasher: &'a Hasher,
    /// The series' key.
    key: &'a str,
    /// Where refusals are counted.
    intake: &'a mut IntakeCounts,
}

impl NameBudget<'_> {
    /// True when a new series may be created; counts a refusal otherwise.
    fn has_room(&mut self, kind: SeriesKind) -> bool {
        if self
            .names
            .admit(self.hasher, kind, self.key, self.limits.max_names)
        {
            return true;
        }
        self.intake.names_refused += 1;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard() -> Shard {
        Shard::new(Hasher::with_seeds(1, 2, 3, 4), Limits::default())
    }

    fn ingest(shard: &mut Shard, text: &str) {
        for line in text.lines() {
            match protocol::parse_line(line.as_bytes()) {
                Ok(parsed) => {
                    shard.apply(&parsed.key, &parsed.values);
                }
                Err(reason) => shard.count_discarded(reason),
            }
        }
    }

    #[test]
    fn counters_add_with_rate() {
        let mut s = shard();
        ingest(&mut s, "a:1|c\na:2|c|@0.5\n");
        assert_eq!(s.counters.get("a"), Some(&5.0));
        assert_eq!(s.intake.lines, 2);
    }

    #[test]
    fn gauges_set_then_delta_across_flushes() {
        let mut s = shard();
        let mut state = GaugeState::new(Hasher::with_seeds(1, 2, 3, 4));
        ingest(&mut s, "g:+3|g\n");
        let snap = merge(vec![s.take()], &mut state, 100);
        assert_eq!(snap.gauges, [("g".into(), 3.0)]);
        ingest(&mut s, "g:10|g\ng:-4|g\n");
        let snap = merge(vec![s.take()], &mut state, 100);
        assert_eq!(snap.gauges, [("g".into(), 6.0)]);
        let snap = merge(vec![s.take()], &mut state, 100);
        assert!(snap.gauges.is_empty(), "only updated gauges flush");
        ingest(&mut s, "g:+1|g\n");
        let snap = merge(vec![s.take()], &mut state, 100);
        assert_eq!(snap.gauges, [("g".into(), 7.0)]);
    }

    #[test]
    fn gauges_expire_and_stay_bounded() {
        let mut s = shard();
        let mut state = GaugeState::bounded(Hasher::default(), 1, 2);
        ingest(&mut s, "a:+1|g\nb:+1|g\nc:+1|g\n");
        let snap = merge(vec![s.take()], &mut state, 100);
        assert_eq!(snap.gauges.len(), 3, "all flushed");
        assert_eq!(
            (state.len(), state.forgotten),
            (2, 1),
            "only two remembered"
        );
        for _ in 0..40 {
            merge(vec![s.take()], &mut state, 100);
        }
        assert_eq!((state.len(), state.forgotten), (0, 3), "idle gauges expire");
    }

    #[test]
    fn sets_count_distinct_members_across_shards() {
        let mut a = shard();
        let mut b = shard();
        ingest(&mut a, "u:x|s\nu:y|s\nu:x|s");
        ingest(&mut b, "u:y|s\nu:z|s");
        let mut state = GaugeState::new(Hasher::default());
        let snap = merge(vec![a, b], &mut state, 100);
        assert_eq!(snap.sets, [("u".into(), 3)]);
    }

    #[test]
    fn bad_line_counted_by_reason() {
        let mut s = shard();
        ingest(&mut s, "a:1|c\nbad\nb:1|c");
        assert_eq!(s.intake.discarded, 1);
        assert_eq!(s.intake.discarded_by[ParseError::MissingValue.index()], 1);
        assert_eq!(s.intake.lines, 2);
    }

    #[test]
    fn huge_sums_saturate_instead_of_overflowing() {
        let mut s = shard();
        ingest(
            &mut s,
            "c:1e308|c\nc:1e308|c\nr:1|c|@5e-324\nt:1e308|ms|@5e-324\nt:1e308|ms",
        );
        ingest(&mut s, "g:-1e308|g\ng:-1e308|g");
        assert_eq!(s.counters.get("c"), Some(&f64::MAX));
        assert_eq!(s.counters.get("r"), Some(&f64::MAX));
        assert_eq!(
            s.timers.get("t").map(|t| (t.sum, t.count)),
            Some((f64::MAX, f64::MAX))
        );
        let mut state = GaugeState::new(Hasher::default());
        let snap = merge(vec![s.clone(), s], &mut state, 100);
        assert_eq!(snap.counters[0].1, f64::MAX);
        assert_eq!(snap.gauges, [("g".into(), -f64::MAX)]);
    }

    #[test]
    fn name_cap_refuses_new_names_only() {
        let mut s = Shard::new(
            Hasher::default(),
            Limits {
                max_names: 2,
                ..Limits::default()
            },
        );
        ingest(&mut s, "a:1|c\nb:1|c\nc:1|c\na:1|c");
        assert_eq!(s.counters.len(), 2);
        assert_eq!(s.counters.get("a"), Some(&2.0));
        assert_eq!(s.intake.names_refused, 1);
        assert_eq!(s.intake.lines, 3);
    }

    #[test]
    fn set_members_are_bounded_and_refusals_counted() {
        let limits = Limits {
            max_set_members: 3,
            ..Limits::default()
        };
        let hasher = Hasher::default();
        let (mut a, mut b) = (
            Shard::new(hasher.clone(), limits),
            Shard::new(hasher.clone(), limits),
        );
        ingest(&mut a, "u:1|s\nu:2|s\nu:3|s\nu:4|s\nu:1|s");
        ingest(&mut b, "u:5|s\nu:6|s");
        assert_eq!(
            a.intake.set_members_refused, 1,
            "a member already held is no refusal"
        );
        let snap = merge(vec![a, b], &mut GaugeState::new(hasher), 100);
        assert_eq!(snap.sets, [("u".into(), 3)]);
        assert_eq!(snap.intake.set_members_refused, 3);
    }
}
