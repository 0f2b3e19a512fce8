//! Payloads not yet delivered: oldest first, bounded in bytes and lines; the
//! oldest go first when a bound is passed, and the caller counts them.

use std::collections::VecDeque;

use super::Payload;

/// Payloads not yet delivered, oldest first, bounded in bytes and lines.
#[derive(Debug, Default)]
pub struct Backlog {
    /// The payloads, oldest first.
    queue: VecDeque<Payload>,
    /// Bytes held.
    bytes: usize,
    /// Lines held.
    lines: usize,
    /// Byte bound; the newest payload is always kept.
    max_bytes: usize,
    /// Line bound (0 = none); the newest payload is always kept.
    max_lines: usize,
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

    /// Adds a payload; returns the number of lines dropped, oldest first, to
    /// stay within the bounds.
    pub fn push(&mut self, payload: Payload) -> usize {
        self.bytes += payload.data.len();
        self.lines += payload.lines;
        self.queue.push_back(payload);
        let mut dropped = 0;
        while self.queue.len() > 1
            && (self.bytes > self.max_bytes || (self.max_lines > 0 && self.lines > self.max_lines))
        {
            if let Some(old) = self.pop() {
                dropped += old.lines;
            }
        }
        dropped
    }

    /// Takes the oldest payload out.
    pub fn pop(&mut self) -> Option<Payload> {
        let old = self.queue.pop_front()?;
        self.bytes -= old.data.len();
        self.lines -= old.lines;
        Some(old)
    }

    /// Lines held.
    pub fn lines(&self) -> usize {
        self.lines
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The oldest payload, left in place.
    pub fn front(&self) -> Option<&Payload> {
        self.queue.front()
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
    fn backlog_drops_oldest_beyond_bytes() {
        let mut b = Backlog::new(250, 0);
        assert_eq!(b.push(payload(10)), 0);
        assert_eq!(b.push(payload(10)), 0);
        assert_eq!(b.push(payload(10)), 10);
        assert_eq!(b.lines(), 20);
    }

    #[test]
    fn backlog_keeps_newest_even_when_too_big() {
        let mut b = Backlog::new(5, 1);
        assert_eq!(b.push(payload(3)), 0);
        assert_eq!(b.push(payload(4)), 3);
        assert_eq!(b.lines(), 4);
    }
}
