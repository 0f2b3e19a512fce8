//! The `--max-names` budget, shared by every shard of one server: a series
//! counts once per interval however many receive workers see it. Consulted
//! only when a name is new to a shard, never for names it already holds.

use hashbrown::HashSet;
use nohash_hasher::BuildNoHashHasher;
use parking_lot::Mutex;

use super::Hasher;

/// Largest registry kept allocated across a reset (entries).
const KEEP_CAPACITY: usize = 1 << 17;

/// The series created this interval, by keyed hash of kind and name.
#[derive(Debug, Default)]
pub struct NameRegistry {
    /// Hashes of the series accepted this interval.
    seen: Mutex<HashSet<u64, BuildNoHashHasher<u64>>>,
}

/// Which map a series lives in: one name may be a counter and a timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeriesKind {
    Counter,
    Gauge,
    Timer,
    Set,
    StampedCounter,
    StampedGauge,
}

impl NameRegistry {
    /// True when the series may exist this interval: it already does (in
    /// some shard), or there is room for one more within `max` (0: no cap).
    pub fn admit(&self, hasher: &Hasher, kind: SeriesKind, key: &str, max: usize) -> bool {
        if max == 0 {
            return true;
        }
        let hash = hasher.hash_one((kind, key));
        let mut seen = self.seen.lock();
        if seen.contains(&hash) {
            return true;
        }
        if seen.len() >= max {
            return false;
        }
        seen.insert(hash);
        true
    }

    /// Starts a new interval.
    pub fn reset(&self) {
        let mut seen = self.seen.lock();
        // A small table is kept for the next interval; a large one (9 bytes
        // a bucket: 18 MiB at a million names) is freed, since the flush
        // that follows the reset holds the interval's names and its payload
        // at once, and it is that peak an operator sizes memory for.
        if seen.capacity() > KEEP_CAPACITY {
            *seen = HashSet::default();
        } else {
            seen.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_counts_once_whoever_sees_it() {
        let names = NameRegistry::default();
        let hasher = Hasher::default();
        assert!(names.admit(&hasher, SeriesKind::Counter, "a", 2));
        assert!(
            names.admit(&hasher, SeriesKind::Counter, "a", 2),
            "seen again"
        );
        assert!(
            names.admit(&hasher, SeriesKind::Timer, "a", 2),
            "another kind"
        );
        assert!(!names.admit(&hasher, SeriesKind::Counter, "b", 2), "full");
        names.reset();
        assert!(names.admit(&hasher, SeriesKind::Counter, "b", 2));
    }
}
