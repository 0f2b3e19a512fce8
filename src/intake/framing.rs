//! TCP line framing: a byte stream becomes complete lines, with lines cut
//! across reads reassembled and overlong ones dropped and counted.

/// Reassembles lines from a byte stream. Complete lines are handed over in
/// one slice per read; a partial line waits for the next read; a line longer
/// than the limit is dropped up to its newline and counted.
#[derive(Debug)]
pub struct LineFramer {
    /// Bytes of a line not yet ended.
    pending: Vec<u8>,
    /// True while skipping the rest of an overlong line.
    skipping: bool,
    /// Longest line kept.
    max_line: usize,
    /// Overlong lines dropped since the last `take_overlong`.
    overlong: u64,
}

impl LineFramer {
    /// A framer for lines up to `max_line` bytes.
    pub fn new(max_line: usize) -> LineFramer {
        LineFramer {
            pending: Vec::new(),
            skipping: false,
            max_line,
            overlong: 0,
        }
    }

    /// Feeds one read; `complete` gets every complete line (with newlines).
    pub fn feed(&mut self, mut data: &[u8], mut complete: impl FnMut(&[u8])) {
        if self.skipping {
            match data.iter().position(|b| *b == b'\n') {
                Some(at) => {
                    self.skipping = false;
                    data = &data[at + 1..];
                }
                None => return,
            }
        }
        let Some(last_newline) = data.iter().rposition(|b| *b == b'\n') else {
            self.keep_partial(data);
            return;
        };
        let (lines, rest) = data.split_at(last_newline + 1);
        if self.pending.is_empty() {
            complete(lines);
        } else {
            self.pending.extend_from_slice(lines);
            complete(&self.pending);
            self.pending.clear();
            // A long line's buffer is not kept for the connection's life.
            if self.pending.capacity() > 4096 {
                self.pending = Vec::new();
            }
        }
        self.keep_partial(rest);
    }

    /// Drops the unended line held now and the rest of it still to come
    /// (as for an overlong line); true when there was one.
    pub fn drop_partial(&mut self) -> bool {
        let had = !self.pending.is_empty();
        if had {
            self.pending = Vec::new();
            self.skipping = true;
        }
        had
    }

    /// Bytes of an unended line held now.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    fn keep_partial(&mut self, data: &[u8]) {
        if self.pending.len() + data.len() > self.max_line {
            self.pending.clear();
            self.skipping = true;
            self.overlong += 1;
        } else {
            self.pending.extend_from_slice(data);
        }
    }

    /// Overlong lines dropped since the last call.
    pub fn take_overlong(&mut self) -> u64 {
        std::mem::take(&mut self.overlong)
    }

    /// At the peer's orderly close: the unended line is a complete line
    /// (as `echo -n ... | nc` sends it); hands it over, if there is one.
    pub fn finish_at_eof(&mut self, complete: impl FnOnce(&[u8])) {
        if !self.pending.iter().all(|b| b.is_ascii_whitespace()) {
            complete(&self.pending);
        }
        self.pending.clear();
    }

    /// After a reset or an idle timeout: a partial line is lost; `discard`
    /// counts it.
    pub fn finish(&mut self, discard: impl FnOnce()) {
        if !self.pending.iter().all(|b| b.is_ascii_whitespace()) {
            discard();
        }
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(reads: &[&[u8]], max: usize) -> (Vec<Vec<u8>>, u64) {
        let mut framer = LineFramer::new(max);
        let mut got = Vec::new();
        let mut overlong = 0;
        for read in reads {
            framer.feed(read, |lines| got.push(lines.to_vec()));
            overlong += framer.take_overlong();
        }
        (got, overlong)
    }

    #[test]
    fn line_split_over_reads_is_reassembled() {
        let (got, _) = frame(&[b"a:1|c\nb:", b"2|c\n"], 100);
        assert_eq!(got, [b"a:1|c\n".to_vec(), b"b:2|c\n".to_vec()]);
    }

    #[test]
    fn overlong_line_dropped_up_to_newline() {
        let (got, overlong) = frame(&[b"xxxxxxxx", b"xxxx\nok:1|c\n"], 6);
        assert_eq!(overlong, 1);
        assert_eq!(got, [b"ok:1|c\n".to_vec()]);
    }

    #[test]
    fn unended_line_at_eof_is_complete() {
        let mut framer = LineFramer::new(100);
        framer.feed(b"a:1|c\nb:2", |_| {});
        let mut got = Vec::new();
        framer.finish_at_eof(|line| got.push(line.to_vec()));
        assert_eq!(got, [b"b:2".to_vec()]);
    }

    #[test]
    fn partial_line_at_reset_is_counted() {
        let mut framer = LineFramer::new(100);
        framer.feed(b"a:1", |_| {});
        let mut lost = 0;
        framer.finish(|| lost += 1);
        assert_eq!(lost, 1);
    }
}
