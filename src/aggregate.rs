//! Aggregation: each receive worker owns a [`Shard`]; at every flush the shards
//! are swapped out and merged into a [`Snapshot`]. Pure: no clocks, no I/O.

use hashbrown::hash_map::EntryRef;
use hashbrown::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::protocol::{self, ParseError, Value};

/// Hasher for every name map and set member. Keyed at random per process so
/// crafted names cannot force collisions; one key is shared by all shards so
/// set-member hashes from different shards can be merged.
pub type Hasher = ahash::RandomState;

type Map<V> = HashMap<Box<str>, V, Hasher>;

/// Every sum, count and gauge is held within ±`f64::MAX`. Huge values, or values
/// at tiny sample rates (`1|c|@5e-324`), would otherwise add up to infinity, and
/// a remembered gauge at +inf given a -inf delta would be NaN (written as 0) for
/// good; saturating keeps every aggregate finite and as near the truth as f64
/// allows. Found by fuzzing (fuzz/).
#[inline]
fn saturate(x: f64) -> f64 {
    x.clamp(-f64::MAX, f64::MAX)
}

/// Limits that keep one interval's memory bounded.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest accepted line, in bytes.
    pub max_line_bytes: usize,
    /// Distinct series per shard kind accepted per interval, all shards
    /// together; 0 = unlimited.
    pub max_names: usize,
    /// Timer samples kept per series per interval (beyond: reservoir).
    pub max_timer_samples: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line_bytes: protocol::DEFAULT_MAX_LINE_BYTES,
            max_names: 0,
            max_timer_samples: 10_000,
        }
    }
}

/// A gauge's changes within one interval, in one shard.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GaugeUpdate {
    /// The last absolute value seen, if any.
    pub set: Option<f64>,
    /// Sum of the deltas seen after that absolute value (or all of them).
    pub delta: f64,
}

/// A timer's samples within one interval.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TimerSamples {
    /// Kept values: all of them up to the limit, then a uniform reservoir.
    pub values: Vec<f64>,
    /// Sum of `1 / rate` over every value seen.
    pub count: f64,
    /// Number of values seen (exact even when `values` is a reservoir).
    pub seen: u64,
    /// Exact sum of every value seen.
    pub sum: f64,
    /// Exact smallest value seen.
    pub lower: f64,
    /// Exact largest value seen.
    pub upper: f64,
}

impl TimerSamples {
    fn add(&mut self, value: f64, rate: f64, max_samples: usize, rng: &mut u64) {
        if self.seen == 0 {
            self.lower = value;
            self.upper = value;
        } else {
            self.lower = self.lower.min(value);
            self.upper = self.upper.max(value);
        }
        self.seen += 1;
        self.sum = saturate(self.sum + value);
        self.count = saturate(self.count + 1.0 / rate);
        if self.values.len() < max_samples.max(1) {
            self.values.push(value);
        } else {
            // Algorithm R: the kept values stay a uniform sample of all seen.
            let slot = next_random(rng) % self.seen;
            if let Some(kept) = self.values.get_mut(slot as usize) {
                *kept = value;
            }
        }
    }

    fn merge(&mut self, other: TimerSamples, max_samples: usize, rng: &mut u64) {
        if other.seen == 0 {
            return;
        }
        if self.seen == 0 {
            *self = other;
            return;
        }
        self.lower = self.lower.min(other.lower);
        self.upper = self.upper.max(other.upper);
        self.count = saturate(self.count + other.count);
        self.sum = saturate(self.sum + other.sum);
        let total = self.seen + other.seen;
        if self.values.len() + other.values.len() <= max_samples.max(1) {
            self.values.extend(other.values);
        } else {
            // Keep each side in proportion to how many values it stands for.
            let keep = max_samples.max(1);
            let mine = ((keep as f64) * (self.seen as f64 / total as f64)).round() as usize;
            let mine = mine.min(self.values.len());
            let theirs = (keep - mine).min(other.values.len());
            shuffle_prefix(&mut self.values, mine, rng);
            self.values.truncate(mine);
            let mut other_values = other.values;
            shuffle_prefix(&mut other_values, theirs, rng);
            self.values.extend_from_slice(&other_values[..theirs]);
        }
        self.seen = total;
    }
}

/// xorshift64*: cheap randomness for reservoir sampling; quality is ample.
fn next_random(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    x.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

/// Moves a uniform random choice of `n` elements to the front.
fn shuffle_prefix(values: &mut [f64], n: usize, rng: &mut u64) {
    let len = values.len();
    for i in 0..n.min(len) {
        let j = i + (next_random(rng) % (len - i) as u64) as usize;
        values.swap(i, j);
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
    }
}

/// One worker's aggregates for the current interval.
#[derive(Debug, Clone)]
pub struct Shard {
    /// Counter sums of `value / rate`.
    pub counters: Map<f64>,
    /// Gauge changes.
    pub gauges: Map<GaugeUpdate>,
    /// Timer samples.
    pub timers: Map<TimerSamples>,
    /// Set members, as keyed hashes.
    pub sets: Map<HashSet<u64, BuildU64>>,
    /// What came in.
    pub intake: IntakeCounts,
    /// One discarded line of the interval and why, for the stderr summary.
    pub sample_bad_line: Option<(Box<[u8]>, ParseError)>,
    /// Bounds on this shard's growth.
    limits: Limits,
    /// Keyed hasher, shared by all shards of one server.
    hasher: Hasher,
    /// New series created this interval by all shards together; checked
    /// only when a name is new, so the hot path never touches it.
    new_names: Arc<AtomicUsize>,
    /// Reservoir sampling state.
    rng: u64,
}

/// Set members are already hashed: a pass-through hasher avoids hashing twice.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuildU64;

/// The pass-through hasher behind [`BuildU64`].
#[derive(Debug, Clone, Copy, Default)]
pub struct U64Hasher(u64);

impl std::hash::Hasher for U64Hasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl BuildHasher for BuildU64 {
    type Hasher = U64Hasher;
    fn build_hasher(&self) -> U64Hasher {
        U64Hasher(0)
    }
}

impl Shard {
    /// An empty shard with its own name budget (for tests and tools).
    pub fn new(hasher: Hasher, limits: Limits) -> Shard {
        Shard::with_budget(hasher, limits, Arc::new(AtomicUsize::new(0)))
    }

    /// An empty shard. Every shard of one server must share `hasher` and
    /// `new_names`, the count of series created this interval.
    pub fn with_budget(hasher: Hasher, limits: Limits, new_names: Arc<AtomicUsize>) -> Shard {
        let seed = hasher.hash_one(0x5eed_u64) | 1;
        Shard {
            counters: Map::with_hasher(hasher.clone()),
            gauges: Map::with_hasher(hasher.clone()),
            timers: Map::with_hasher(hasher.clone()),
            sets: Map::with_hasher(hasher.clone()),
            intake: IntakeCounts::default(),
            sample_bad_line: None,
            limits,
            hasher,
            new_names,
            rng: seed,
        }
    }

    /// Takes this interval's aggregates out, leaving an empty shard.
    pub fn take(&mut self) -> Shard {
        let fresh = Shard::with_budget(self.hasher.clone(), self.limits, self.new_names.clone());
        std::mem::replace(self, fresh)
    }

    /// Number of distinct series held.
    pub fn names(&self) -> usize {
        self.counters.len() + self.gauges.len() + self.timers.len() + self.sets.len()
    }

    /// Parses and aggregates every line of a datagram or of a TCP read.
    /// `on_line` sees each line and its outcome (for debug output).
    pub fn ingest_buffer(
        &mut self,
        buf: &[u8],
        mut on_line: impl FnMut(&[u8], Result<&str, ParseError>),
    ) {
        self.intake.packets += 1;
        self.intake.bytes += buf.len() as u64;
        let mut values = Vec::with_capacity(4);
        let mut lines = 0u32;
        let mut discarded = false;
        for line in protocol::lines(buf) {
            lines += 1;
            match protocol::parse_line_into(line, self.limits.max_line_bytes, &mut values) {
                Ok(key) => {
                    if self.apply(&key, &values) {
                        self.intake.lines += 1;
                    }
                    on_line(line, Ok(&key));
                }
                Err(error) => {
                    self.count_discarded(error);
                    discarded = true;
                    if self.sample_bad_line.is_none() {
                        let cut = &line[..line.len().min(200)];
                        self.sample_bad_line = Some((cut.into(), error));
                    }
                    on_line(line, Err(error));
                }
            }
        }
        if lines > 1 {
            self.intake.batches += 1;
            if discarded {
                self.intake.batches_discarded += 1;
            }
        }
    }

    /// Counts a discarded line; also for lines lost before parsing (too
    /// long for the TCP framer, cut off by a close).
    pub fn count_discarded(&mut self, reason: ParseError) {
        self.intake.discarded += 1;
        self.intake.discarded_by[reason.index()] += 1;
    }

    /// Starts a new interval's name budget (call after taking every shard).
    pub fn reset_name_budget(&self) {
        self.new_names.store(0, Ordering::Relaxed);
    }

    /// Aggregates one parsed line; false when the cardinality cap refused it.
    pub fn apply(&mut self, key: &str, values: &[Value<'_>]) -> bool {
        // One hash lookup per value; the name is copied only when new.
        let mut budget = NameBudget {
            limits: &self.limits,
            new_names: &self.new_names,
            intake: &mut self.intake,
        };
        for value in values {
            match *value {
                Value::Counter { value, rate } => match self.counters.entry_ref(key) {
                    EntryRef::Occupied(mut sum) => {
                        let sum = sum.get_mut();
                        *sum = saturate(*sum + value / rate);
                    }
                    EntryRef::Vacant(slot) if budget.has_room() => {
                        slot.insert(saturate(value / rate));
                    }
                    EntryRef::Vacant(_) => return false,
                },
                Value::Gauge { value, delta } => {
                    let update = match self.gauges.entry_ref(key) {
                        EntryRef::Occupied(update) => update.into_mut(),
                        EntryRef::Vacant(slot) if budget.has_room() => {
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
                    let timer = match self.timers.entry_ref(key) {
                        EntryRef::Occupied(timer) => timer.into_mut(),
                        EntryRef::Vacant(slot) if budget.has_room() => {
                            slot.insert(TimerSamples::default())
                        }
                        EntryRef::Vacant(_) => return false,
                    };
                    timer.add(value, rate, self.limits.max_timer_samples, &mut self.rng);
                }
                Value::Set(member) => {
                    let hash = self.hasher.hash_one(member);
                    let members = match self.sets.entry_ref(key) {
                        EntryRef::Occupied(members) => members.into_mut(),
                        EntryRef::Vacant(slot) if budget.has_room() => {
                            slot.insert(HashSet::with_hasher(BuildU64))
                        }
                        EntryRef::Vacant(_) => return false,
                    };
                    members.insert(hash);
                }
            }
        }
        true
    }
}

/// The distinct-name cap, borrowed apart from the maps it guards.
struct NameBudget<'a> {
    /// Holds the cap.
    limits: &'a Limits,
    /// Series created this interval, all shards together.
    new_names: &'a AtomicUsize,
    /// Where refusals are counted.
    intake: &'a mut IntakeCounts,
}

impl NameBudget<'_> {
    /// True when a new series may be created; counts a refusal otherwise.
    fn has_room(&mut self) -> bool {
        if self.limits.max_names == 0
            || self.new_names.fetch_add(1, Ordering::Relaxed) < self.limits.max_names
        {
            return true;
        }
        self.intake.names_refused += 1;
        false
    }
}

/// Everything one flush writes: the merge of all shards, plus gauge state.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Counter sums of the interval.
    pub counters: Vec<(Box<str>, f64)>,
    /// Gauges updated in the interval, with their new values.
    pub gauges: Vec<(Box<str>, f64)>,
    /// Timers of the interval.
    pub timers: Vec<(Box<str>, TimerSamples)>,
    /// Distinct member counts of the sets of the interval.
    pub sets: Vec<(Box<str>, usize)>,
    /// What the shards took in during the interval.
    pub intake: IntakeCounts,
    /// One discarded line of the interval and why.
    pub sample_bad_line: Option<(Box<[u8]>, ParseError)>,
}

/// Gauge values live across flushes so later deltas apply to them.
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
    fn apply(&mut self, key: &str, update: GaugeUpdate) -> f64 {
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
    fn end_flush(&mut self) {
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

    /// Number of gauges remembered.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when no gauge is remembered.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// Merges the shards of one interval into a snapshot, sorted by name so the
/// output is stable. Gauge updates are applied to `gauges`; across shards the
/// order of gauge writes within one interval is not defined (UDP has none).
pub fn merge(shards: Vec<Shard>, gauges: &mut GaugeState, max_timer_samples: usize) -> Snapshot {
    let mut snapshot = Snapshot::default();
    let mut shards = shards.into_iter();
    let Some(mut first) = shards.next() else {
        return snapshot;
    };
    let mut rng = first.rng;
    let mut updated: Map<GaugeUpdate> = std::mem::take(&mut first.gauges);
    for shard in shards {
        first.intake.add(&shard.intake);
        if first.sample_bad_line.is_none() {
            first.sample_bad_line = shard.sample_bad_line;
        }
        for (key, sum) in shard.counters {
            let total = first.counters.entry(key).or_insert(0.0);
            *total = saturate(*total + sum);
        }
        for (key, timer) in shard.timers {
            first
                .timers
                .entry(key)
                .or_default()
                .merge(timer, max_timer_samples, &mut rng);
        }
        for (key, members) in shard.sets {
            first.sets.entry(key).or_default().extend(members);
        }
        for (key, update) in shard.gauges {
            let merged = updated.entry(key).or_default();
            match update.set {
                Some(_) => *merged = update,
                None => merged.delta = saturate(merged.delta + update.delta),
            }
        }
    }
    snapshot.intake = first.intake;
    snapshot.sample_bad_line = first.sample_bad_line;
    snapshot.counters = first.counters.into_iter().collect();
    snapshot.timers = first.timers.into_iter().collect();
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
    snapshot.counters.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    snapshot.gauges.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    snapshot.timers.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    snapshot.sets.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    snapshot
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard() -> Shard {
        Shard::new(Hasher::with_seeds(1, 2, 3, 4), Limits::default())
    }

    fn ingest(shard: &mut Shard, text: &str) {
        shard.ingest_buffer(text.as_bytes(), |_, _| {});
    }

    #[test]
    fn counters_add_with_rate() {
        let mut s = shard();
        ingest(&mut s, "a:1|c\na:2|c|@0.5\n");
        assert_eq!(s.counters.get("a"), Some(&5.0));
        assert_eq!(s.intake.lines, 2);
        assert_eq!(s.intake.batches, 1);
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
    fn bad_line_counted_and_batch_marked() {
        let mut s = shard();
        ingest(&mut s, "a:1|c\nbad\nb:1|c");
        assert_eq!(s.intake.discarded, 1);
        assert_eq!(s.intake.lines, 2);
        assert_eq!(s.intake.batches_discarded, 1);
    }

    #[test]
    fn timer_reservoir_keeps_exact_aggregates() {
        let mut s = Shard::new(
            Hasher::default(),
            Limits {
                max_timer_samples: 10,
                ..Limits::default()
            },
        );
        for i in 1..=1000 {
            ingest(&mut s, &format!("t:{i}|ms"));
        }
        let t = &s.timers["t"];
        assert_eq!(t.values.len(), 10);
        assert_eq!(
            (t.seen, t.sum, t.lower, t.upper),
            (1000, 500500.0, 1.0, 1000.0)
        );
    }

    #[test]
    fn huge_sums_saturate_instead_of_overflowing() {
        let mut s = shard();
        ingest(
            &mut s,
            "c:1e308|c\nc:1e308|c\nr:1|c|@5e-324\nt:1e308|ms|@5e-324\nt:1e308|ms",
        );
        ingest(&mut s, "g:-1e308|g\ng:-1e308|g");
        assert_eq!(s.counters["c"], f64::MAX);
        assert_eq!(s.counters["r"], f64::MAX);
        assert_eq!(
            (s.timers["t"].sum, s.timers["t"].count),
            (f64::MAX, f64::MAX)
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
        assert_eq!(s.counters["a"], 2.0);
        assert_eq!(s.intake.names_refused, 1);
        assert_eq!(s.intake.lines, 3);
    }
}
