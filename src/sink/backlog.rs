//! Everything not yet delivered, from the moment a flush hands it over:
//! oldest first, bounded in bytes and lines. A payload stays here while an
//! attempt sends it, so the bound holds (and the stats tell) even while
//! carbon is stuck; the oldest go first when a bound is passed. A payload
//! the bound pushes out while an attempt is sending it is only dropped if
//! that attempt fails: if it succeeds, carbon has it. Several attempts may
//! be in flight, each carrying payloads no other carries, and they may end
//! in any order: each removes (or gives back) exactly its own payloads.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::Payload;

/// Names one attempt, from [`Backlog::batch`] to its end.
pub type AttemptId = u64;

/// One payload waiting, with what the publisher needs to know of it.
#[derive(Debug)]
struct Entry {
    /// The lines, shared with an attempt that is sending them.
    payload: Arc<Payload>,
    /// The attempt sending it, if any.
    carrier: Option<AttemptId>,
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

impl Removed {
    /// Counts one payload more.
    fn add(&mut self, payload: &Payload) {
        self.payloads += 1;
        self.lines += payload.lines;
        self.bytes += payload.data.len();
    }

    /// Counts another set of payloads too.
    fn merge(&mut self, other: Removed) {
        self.payloads += other.payloads;
        self.lines += other.lines;
        self.bytes += other.bytes;
    }
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
    /// Id of the next attempt.
    next_attempt: AttemptId,
    /// Per attempt in flight, the payloads of its batch the bounds pushed
    /// out meanwhile: delivered if it succeeds, dropped if it fails.
    evicted_in_flight: HashMap<AttemptId, Removed>,
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

    /// New bounds, kept from the next [`Backlog::push`] on.
    pub fn set_bounds(&mut self, max_bytes: usize, max_lines: usize) {
        self.max_bytes = max_bytes;
        self.max_lines = max_lines;
    }

    /// Adds a payload; returns what was dropped, oldest first, to stay
    /// within the bounds (payloads an attempt is sending are pushed out too,
    /// but not counted here: see [`Backlog::delivered`], [`Backlog::failed`]).
    pub fn push(&mut self, payload: Payload) -> Removed {
        self.bytes += payload.data.len();
        self.lines += payload.lines;
        self.queue.push_back(Entry {
            payload: Arc::new(payload),
            carrier: None,
            failed_once: false,
        });
        let mut dropped = Removed::default();
        while self.queue.len() > 1
            && (self.bytes > self.max_bytes || (self.max_lines > 0 && self.lines > self.max_lines))
        {
            let Some(old) = self.queue.pop_front() else {
                break;
            };
            self.bytes -= old.payload.data.len();
            self.lines -= old.payload.lines;
            let count = match old.carrier {
                Some(id) => self.evicted_in_flight.entry(id).or_default(),
                None => &mut dropped,
            };
            count.add(&old.payload);
        }
        dropped
    }

    /// Every payload no attempt is sending, for a new attempt, and its id;
    /// the attempt ends with [`Backlog::delivered`] or [`Backlog::failed`].
    pub fn batch(&mut self) -> (Vec<Arc<Payload>>, AttemptId) {
        let id = self.next_attempt;
        self.next_attempt += 1;
        let batch = self
            .queue
            .iter_mut()
            .filter(|e| e.carrier.is_none())
            .map(|e| {
                e.carrier = Some(id);
                e.payload.clone()
            })
            .collect();
        self.evicted_in_flight.insert(id, Removed::default());
        (batch, id)
    }

    /// Removes what attempt `id` delivered: its payloads, those the bounds
    /// pushed out while it was being sent included.
    pub fn delivered(&mut self, id: AttemptId) -> Removed {
        let mut here = Removed::default();
        self.queue.retain(|e| {
            if e.carrier != Some(id) {
                return true;
            }
            here.add(&e.payload);
            false
        });
        self.bytes -= here.bytes;
        self.lines -= here.lines;
        here.merge(self.evicted_in_flight.remove(&id).unwrap_or_default());
        here
    }

    /// Gives attempt `id`'s payloads back for a later attempt, marked as
    /// failed once. Returns how many failed for the first time (each is a
    /// flush not delivered at once), and what the bounds pushed out while
    /// the attempt was sending it: dropped now.
    pub fn failed(&mut self, id: AttemptId) -> (usize, Removed) {
        let mut first_failures = 0;
        for entry in self.queue.iter_mut().filter(|e| e.carrier == Some(id)) {
            entry.carrier = None;
            if !std::mem::replace(&mut entry.failed_once, true) {
                first_failures += 1;
            }
        }
        let dropped = self.evicted_in_flight.remove(&id).unwrap_or_default();
        (first_failures, dropped)
    }

    /// Abandons every attempt in flight (shutdown): what the bounds pushed
    /// out of their batches; their payloads still here stay.
    pub fn end_attempt(&mut self) -> Removed {
        let mut removed = Removed::default();
        for (_, evicted) in self.evicted_in_flight.drain() {
            removed.merge(evicted);
        }
        for entry in &mut self.queue {
            entry.carrier = None;
        }
        removed
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

    /// True when some payload waits that no attempt is sending.
    pub fn has_unsent(&self) -> bool {
        self.queue.iter().any(|e| e.carrier.is_none())
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

    #[test]
    fn attempts_confirmed_out_of_order_remove_exactly_their_payloads() {
        // 100 bytes a payload, 450 kept.
        let mut b = Backlog::new(450, 0);
        b.push(payload(1));
        let (first, a) = b.batch();
        b.push(payload(2));
        b.push(payload(4));
        let (second, c) = b.batch();
        assert_eq!((first.len(), second.len()), (1, 2), "no payload sent twice");
        assert!(!b.has_unsent());
        b.push(payload(8));
        let done = b.delivered(c);
        assert_eq!((done.payloads, done.lines), (2, 6), "the second, first");
        assert_eq!(b.lines(), 9, "the first attempt's and the new one wait");
        // The first fails: its payload goes out again, with the new one.
        assert_eq!(b.failed(a).0, 1);
        let (third, d) = b.batch();
        assert_eq!(third.iter().map(|p| p.lines).collect::<Vec<_>>(), [1, 8]);
        // Two more push the third attempt's payloads out while it is in flight.
        b.push(payload(10));
        b.push(payload(10));
        b.push(payload(10));
        assert_eq!(b.push(payload(10)).lines, 0, "its lines are in flight");
        let (_, e) = b.batch();
        assert_eq!(b.delivered(d).lines, 9, "carbon has them");
        assert_eq!(b.lines(), 40);
        assert_eq!(b.delivered(e).lines, 40);
        assert!(b.is_empty());
        assert_eq!(b.end_attempt(), Removed::default());
    }
}
