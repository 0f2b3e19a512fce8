//! A receive worker's shard behind its lock, plus a lock-free copy of its
//! intake counts: `istats` reads the copy, so a monitoring request never
//! waits on (or delays) the receive path.

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::aggregate::{IntakeCounts, Shard};
use crate::protocol::ParseError;

/// One worker's shard and the published copy of its counts.
#[derive(Debug)]
pub struct ShardCell {
    /// The interval's aggregates; locked once per batch and once per flush.
    shard: Mutex<Shard>,
    /// The shard's intake counts as of its last batch.
    live: LiveCounts,
}

impl ShardCell {
    /// A cell holding `shard`.
    pub fn new(shard: Shard) -> ShardCell {
        ShardCell {
            shard: Mutex::new(shard),
            live: LiveCounts::default(),
        }
    }

    /// Runs `work` on the shard (one lock per batch), then publishes its counts.
    #[inline]
    pub fn with<R>(&self, work: impl FnOnce(&mut Shard) -> R) -> R {
        let mut shard = self.shard.lock();
        let result = work(&mut shard);
        // Under the lock, so a flush's `take` cannot slip in between.
        self.live.publish(&shard.intake);
        result
    }

    /// Takes the interval's aggregates out (at flush), leaving an empty shard.
    pub fn take(&self) -> Shard {
        let mut shard = self.shard.lock();
        self.live.publish(&IntakeCounts::default());
        shard.take()
    }

    /// Starts a new interval's name budget (shared by every shard).
    pub fn reset_name_budget(&self) {
        self.shard.lock().reset_name_budget();
    }

    /// The counts of the current interval, without taking the lock.
    pub fn live(&self) -> IntakeCounts {
        self.live.read()
    }
}

/// [`IntakeCounts`] as atomics, written by one worker, read by anyone.
#[derive(Debug, Default)]
struct LiveCounts {
    /// Lines accepted.
    lines: AtomicU64,
    /// Lines discarded.
    discarded: AtomicU64,
    /// Lines discarded, by reason.
    discarded_by: [AtomicU64; ParseError::ALL.len()],
    /// Multi-line batches.
    batches: AtomicU64,
    /// Multi-line batches with a discarded line.
    batches_discarded: AtomicU64,
    /// Datagrams or reads.
    packets: AtomicU64,
    /// Bytes received.
    bytes: AtomicU64,
    /// Lines refused by the name cap.
    names_refused: AtomicU64,
    /// Lines with a container id.
    container_ids: AtomicU64,
    /// Lines with external data.
    external_data: AtomicU64,
    /// Lines with their own timestamp.
    timestamped: AtomicU64,
    /// Set members refused.
    set_members_refused: AtomicU64,
}

impl LiveCounts {
    fn publish(&self, counts: &IntakeCounts) {
        let store = |cell: &AtomicU64, value: u64| cell.store(value, Ordering::Relaxed);
        store(&self.lines, counts.lines);
        store(&self.discarded, counts.discarded);
        for (cell, value) in self.discarded_by.iter().zip(counts.discarded_by) {
            store(cell, value);
        }
        store(&self.batches, counts.batches);
        store(&self.batches_discarded, counts.batches_discarded);
        store(&self.packets, counts.packets);
        store(&self.bytes, counts.bytes);
        store(&self.names_refused, counts.names_refused);
        store(&self.container_ids, counts.container_ids);
        store(&self.external_data, counts.external_data);
        store(&self.timestamped, counts.timestamped);
        store(&self.set_members_refused, counts.set_members_refused);
    }

    fn read(&self) -> IntakeCounts {
        let load = |cell: &AtomicU64| cell.load(Ordering::Relaxed);
        IntakeCounts {
            lines: load(&self.lines),
            discarded: load(&self.discarded),
            discarded_by: std::array::from_fn(|i| load(&self.discarded_by[i])),
            batches: load(&self.batches),
            batches_discarded: load(&self.batches_discarded),
            packets: load(&self.packets),
            bytes: load(&self.bytes),
            names_refused: load(&self.names_refused),
            container_ids: load(&self.container_ids),
            external_data: load(&self.external_data),
            timestamped: load(&self.timestamped),
            set_members_refused: load(&self.set_members_refused),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{Hasher, Limits};

    #[test]
    fn live_counts_follow_batches_and_reset_at_take() {
        let cell = ShardCell::new(Shard::new(Hasher::default(), Limits::default()));
        cell.with(|shard| shard.count_discarded(ParseError::BadValue));
        assert_eq!(cell.live().discarded, 1);
        assert_eq!(cell.take().intake.discarded, 1);
        assert_eq!(cell.live(), IntakeCounts::default());
    }
}
