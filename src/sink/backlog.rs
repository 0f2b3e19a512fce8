//! Everything not yet delivered, from the moment a flush hands it over:
//! oldest first, bounded in bytes and lines. A payload stays here while an
//! attempt sends it, so the bound holds (and the stats tell) even while
//! carbon is stuck; the oldest go first when a bound is passed. A payload
//! the bound pushes out while an attempt is sending it is only dropped if
//! that attempt fails: if it succeeds, carbon has it.

use std::collections::VecDeque;
use std::sync::Arc;

use super::Payload;

/// One payload waiting, with what the publisher needs to know of it.
#[derive(Debug)]
struct Entry {
    /// Order of arrival; an attempt delivers everything up to a sequence.
    seq: u64,
    /// The lines, shared with an attempt that is sending them.
    payload: Arc<Payload>,
    /// An attempt has failed to deliver it already (counted in `flush_errors`).
    failed_once: bool,
}

/// What a change to the backlog dropped or delivered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Removed {
    /// Payloads taken out.
    pub payloads: usize,
    /// Their lines.
    pub lines: usize,
    /// Their bytes (of delivered payloads; Etsy's mgmt `graphite.flush_length`).
    pub bytes: usize,
}

/// Payloads not yet delivered, oldest first, bounded in bytes and lines.
#[derive(Debug, Default)]
pub struct Backlog {
    /// The payloads, oldest first.
    queue: VecDeque<Entry>,
    /// Bytes held.
    bytes: usize,
    /// Lines held.
    lines: usize,
    /// Byte bound; the newest payload is always kept.
    max_bytes: usize,
    /// Line bound (0 = none); the newest payload is always kept.
    max_lines: usize,
    /// Sequence of the next payload.
    next_seq: u64,
    /// The last sequence of the batch an attempt is sending, if any.
    in_flight: Option<u64>,
    /// Payloads of that batch the bounds pushed out meanwhile: delivered
    /// if the attempt succeeds, dropped if it fails.
    evicted_in_flight: Removed,
}

impl Backlog {
    /// An empty backlog with these bounds.
    pub fn new(max_bytes: usize, max_lines: usize) -> Backlog {
        Backlog {
            max_bytes,
            max_lines,
            ..Backlog::default()
        }
    }

    /// Adds a payload; returns what was dropped, oldest first, to stay
    /// within the bounds (payloads an attempt is sending are pushed out too,
    /// but not counted here: see [`Backlog::delivered`], [`Backlog::failed`]).
    pub fn push(&mut self, payload: Payload) -> Removed {
        self.bytes += payload.data.len();
        self.lines += payload.lines;
        self.queue.push_back(Entry {
            seq: self.next_seq,
            payload: Arc::new(payload),
            failed_once: false,
        });
        self.next_seq += 1;
        let mut dropped = Removed::default();
        while self.queue.len() > 1
            && (self.bytes > self.max_bytes || (self.max_lines > 0 && self.lines > self.max_lines))
        {
            if let Some((seq, old)) = self.pop() {
                let sending = self.in_flight.is_some_and(|end| seq <= end);
                let count = if sending {
                    &mut self.evicted_in_flight
                } else {
                    &mut dropped
                };
                count.payloads += 1;
                count.lines += old.lines;
            }
        }
        dropped
    }

    /// Takes the oldest payload out, with its sequence.
    fn pop(&mut self) -> Option<(u64, Arc<Payload>)> {
        let old = self.queue.pop_front()?;
        self.bytes -= old.payload.data.len();
        self.lines -= old.payload.lines;
        Some((old.seq, old.payload))
    }

    /// Everything waiting, for one attempt, and the sequence it ends at;
    /// the attempt ends with [`Backlog::delivered`] or [`Backlog::failed`].
    pub fn batch(&mut self) -> (Vec<Arc<Payload>>, u64) {
        let batch = self.queue.iter().map(|e| e.payload.clone()).collect();
        let seq = self.queue.back().map_or(0, |e| e.seq);
        self.in_flight = Some(seq);
        (batch, seq)
    }

    /// Removes what an attempt delivered: every payload up to `seq`, those
    /// the bounds pushed out while it was being sent included.
    pub fn delivered(&mut self, seq: u64) -> Removed {
        let mut removed = self.end_attempt();
        while self.queue.front().is_some_and(|e| e.seq <= seq) {
            if let Some((_, done)) = self.pop() {
                removed.payloads += 1;
                removed.lines += done.lines;
                removed.bytes += done.data.len();
            }
        }
        removed
    }

    /// Marks the payloads up to `seq` as failed once. Returns how many
    /// failed for the first time (each is a flush not delivered at once),
    /// and what the bounds pushed out while the attempt was sending it:
    /// dropped now.
    pub fn failed(&mut self, seq: u64) -> (usize, Removed) {
        let mut first_failures = 0;
        for entry in self.queue.iter_mut().take_while(|e| e.seq <= seq) {
            if !std::mem::replace(&mut entry.failed_once, true) {
                first_failures += 1;
            }
        }
        (first_failures, self.end_attempt())
    }

    /// Ends the attempt under way: what the bounds pushed out of its batch.
    pub fn end_attempt(&mut self) -> Removed {
        self.in_flight = None;
        std::mem::take(&mut self.evicted_in_flight)
    }

    /// Lines held.
    pub fn lines(&self) -> usize {
        self.lines
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(lines: usize) -> Payload {
        Payload {
            data: vec![b'x'; lines * 10],
            lines,
        }
    }

    #[test]
    fn drops_oldest_beyond_bytes() {
        let mut b = Backlog::new(250, 0);
        assert_eq!(b.push(payload(10)).lines, 0);
        assert_eq!(b.push(payload(10)).lines, 0);
        assert_eq!(b.push(payload(10)).lines, 10);
        assert_eq!(b.lines(), 20);
    }

    #[test]
    fn keeps_newest_even_when_too_big() {
        let mut b = Backlog::new(5, 1);
        assert_eq!(b.push(payload(3)).lines, 0);
        assert_eq!(b.push(payload(4)).lines, 3);
        assert_eq!(b.lines(), 4);
    }

    #[test]
    fn delivery_removes_up_to_the_batch_only() {
        let mut b = Backlog::new(1 << 20, 0);
        b.push(payload(1));
        b.push(payload(2));
        let (batch, seq) = b.batch();
        assert_eq!(batch.len(), 2);
        b.push(payload(4));
        assert_eq!(b.failed(seq).0, 2);
        let (batch, seq) = b.batch();
        assert_eq!(batch.len(), 3);
        assert_eq!(b.failed(seq).0, 1, "counted once");
        let (_, seq) = b.batch();
        b.push(payload(8));
        assert_eq!(b.delivered(seq).lines, 7);
        assert_eq!(
            b.lines(),
            8,
            "the payload that came during the attempt waits"
        );
    }

    #[test]
    fn pushed_out_while_being_sent_counts_as_the_attempt_ends() {
        // 100 bytes a payload, 250 kept.
        let mut b = Backlog::new(250, 0);
        b.push(payload(10));
        b.push(payload(10));
        let (_, seq) = b.batch();
        // The bound pushes out the first payload, which the attempt sends.
        assert_eq!(b.push(payload(10)).lines, 0, "not dropped yet");
        assert_eq!(b.lines(), 20);
        let done = b.delivered(seq);
        assert_eq!((done.payloads, done.lines), (2, 20), "carbon has both");
        assert_eq!(b.lines(), 10);

        let (_, seq) = b.batch();
        b.push(payload(10));
        assert_eq!(b.push(payload(10)).lines, 0, "the batch's one, sent");
        let (first_failures, dropped) = b.failed(seq);
        assert_eq!(first_failures, 0, "it had gone");
        assert_eq!(dropped.lines, 10, "the attempt failed: lost");
        // Outside an attempt the bound drops at once.
        assert_eq!(b.push(payload(10)).lines, 10);
        assert_eq!(b.end_attempt(), Removed::default());
    }
}
