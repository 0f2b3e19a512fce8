//! Everything not yet delivered, from the moment a flush hands it over:
//! oldest first, bounded in bytes and lines. A payload stays here while an
//! attempt sends it, so the bound holds (and the stats tell) even while
//! carbon is stuck; the oldest go first when a bound is passed.

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
    /// within the bounds.
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
            if let Some(old) = self.pop() {
                dropped.payloads += 1;
                dropped.lines += old.lines;
            }
        }
        dropped
    }

    /// Takes the oldest payload out.
    fn pop(&mut self) -> Option<Arc<Payload>> {
        let old = self.queue.pop_front()?;
        self.bytes -= old.payload.data.len();
        self.lines -= old.payload.lines;
        Some(old.payload)
    }

    /// Everything waiting, for one attempt, and the sequence it ends at.
    pub fn batch(&self) -> (Vec<Arc<Payload>>, u64) {
        let batch = self.queue.iter().map(|e| e.payload.clone()).collect();
        (batch, self.queue.back().map_or(0, |e| e.seq))
    }

    /// Removes what an attempt delivered: every payload up to `seq` (those
    /// the bound dropped meanwhile are already gone, and counted).
    pub fn delivered(&mut self, seq: u64) -> Removed {
        let mut removed = Removed::default();
        while self.queue.front().is_some_and(|e| e.seq <= seq) {
            if let Some(done) = self.pop() {
                removed.payloads += 1;
                removed.lines += done.lines;
            }
        }
        removed
    }

    /// Marks the payloads up to `seq` as failed once; returns how many
    /// failed for the first time (each is a flush not delivered at once).
    pub fn failed(&mut self, seq: u64) -> usize {
        let mut first_failures = 0;
        for entry in self.queue.iter_mut().take_while(|e| e.seq <= seq) {
            if !std::mem::replace(&mut entry.failed_once, true) {
                first_failures += 1;
            }
        }
        first_failures
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
        assert_eq!(b.failed(seq), 2);
        assert_eq!(b.failed(seq), 0, "counted once");
        assert_eq!(b.delivered(seq).lines, 3);
        assert_eq!(
            b.lines(),
            4,
            "the payload that came during the attempt waits"
        );
    }
}
