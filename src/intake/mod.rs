//! What every receive path shares, from bytes to a shard: split a datagram or
//! a TCP read into lines, parse each, apply it to the worker's shard, count
//! what was discarded and why, and echo lines for `-d`/`-m`.
//!
//! - [`framing`]: reassembles lines cut across TCP reads.
//! - [`cell`]: a shard behind its lock, with counts `istats` reads lock-free.

pub mod cell;
mod etsy_names;
pub mod framing;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::aggregate::Shard;
use crate::logging::{print_line, Logs};
use crate::protocol::{self, Value};

pub use cell::ShardCell;
pub use framing::LineFramer;

/// Bad lines are shown (and kept for the summary) cut to this many bytes.
const SHOWN_BYTES: usize = 200;

/// Settings and logs for the receive paths.
#[derive(Debug)]
pub struct Intake {
    /// Longest accepted line, in bytes (SIGHUP may change it).
    pub max_line_bytes: AtomicUsize,
    /// `-d`: report each discarded line on stderr.
    pub debug: bool,
    /// `-d -m TEXT`: echo incoming lines whose name contains TEXT.
    pub debug_metric: Option<String>,
    /// `+5`/`-5` gauge values set the gauge (the original's meaning).
    pub signed_gauges_set: bool,
    /// `--dump-messages`: every incoming line on stdout, as Etsy's
    /// `dumpMessages` logs it.
    pub dump_messages: bool,
    /// Names cleaned with Etsy's rule (`--etsy`, `--key-name-sanitize`).
    pub etsy_names: bool,
    /// Rate-limited stderr.
    pub logs: Arc<Logs>,
    /// `--proxy`: lines are forwarded to the aggregators, not parsed here.
    pub forward: Option<Arc<crate::proxy::TcpForward>>,
}

impl Intake {
    /// Intake without debug output, with logs of its own (tools, benches).
    pub fn new(max_line_bytes: usize) -> Intake {
        Intake {
            max_line_bytes: AtomicUsize::new(max_line_bytes),
            debug: false,
            debug_metric: None,
            signed_gauges_set: false,
            dump_messages: false,
            etsy_names: false,
            logs: Arc::new(Logs::default()),
            forward: None,
        }
    }

    /// Parses and aggregates every line of one datagram or TCP read.
    pub fn ingest(&self, shard: &mut Shard, buf: &[u8]) {
        self.ingest_with(shard, buf, &mut Vec::with_capacity(4));
    }

    /// [`Intake::ingest`] with a buffer for a line's values that the caller
    /// keeps across the datagrams of one batch (one allocation per batch,
    /// not per datagram: with 1-line datagrams it was a tenth of the work).
    pub fn ingest_with<'a>(&self, shard: &mut Shard, buf: &'a [u8], values: &mut Vec<Value<'a>>) {
        if let Some(forward) = &self.forward {
            forward.forward(buf);
            return;
        }
        shard.intake.packets += 1;
        shard.intake.bytes += buf.len() as u64;
        let max_line_bytes = self.max_line_bytes.load(Ordering::Relaxed);
        let mut lines = 0u32;
        let mut discarded = false;
        for line in lines_of(buf) {
            lines += 1;
            if self.dump_messages {
                dump_message(line);
            }
            match protocol::parse_line_into(line, max_line_bytes, values) {
                Ok(mut parsed) => {
                    if self.etsy_names {
                        etsy_names::rename(line, &mut parsed.key);
                    }
                    if self.signed_gauges_set {
                        for value in values.iter_mut() {
                            if let Value::Gauge { delta, .. } = value {
                                *delta = false;
                            }
                        }
                    }
                    match parsed.timestamp {
                        None => shard.apply(&parsed.key, values),
                        Some(at) => shard.apply_at(&parsed.key, values, at),
                    };
                    shard.intake.container_ids += u64::from(parsed.container_id);
                    shard.intake.external_data += u64::from(parsed.external_data);
                    if self.debug {
                        self.echo_incoming(line, &parsed.key);
                    }
                }
                Err(reason) => {
                    discarded = true;
                    shard.count_discarded(reason);
                    shard.keep_bad_line(shown_part(line), reason);
                    if self.debug {
                        self.logs
                            .bad_input
                            .error(|| format!("discarded line {:?}: {reason}", printable(line)));
                    }
                }
            }
        }
        if lines > 1 {
            shard.intake.batches += 1;
            if discarded {
                shard.intake.batches_discarded += 1;
            }
        }
    }

    fn echo_incoming(&self, line: &[u8], key: &str) {
        if let Some(text) = &self.debug_metric {
            if key.contains(text.as_str()) {
                print_line(&format!("incoming: {}", String::from_utf8_lossy(line)));
            }
        }
    }
}

/// `--dump-messages`: one incoming line on stdout. Out of line, so the
/// receive loop stays as tight as without it.
#[cold]
#[inline(never)]
fn dump_message(line: &[u8]) {
    print_line(&format!("DEBUG: {}", printable(line)));
}

/// Splits a buffer into lines on `\n`, skipping empty ones (and lone `\r`).
pub fn lines_of(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    let mut ends = memchr::memchr_iter(b'\n', buf).chain(std::iter::once(buf.len()));
    std::iter::from_fn(move || loop {
        let end = ends.next()?;
        let line = &buf[start.min(end)..end];
        start = end + 1;
        if !line.is_empty() && line != b"\r" {
            return Some(line);
        }
    })
}

/// The part of a bad line worth showing.
fn shown_part(line: &[u8]) -> &[u8] {
    &line[..line.len().min(SHOWN_BYTES)]
}

/// A bad line shown safely: lossy UTF-8, cut to 200 bytes, `...` if cut.
pub fn printable(line: &[u8]) -> String {
    let shown = shown_part(line);
    let mut text = String::from_utf8_lossy(shown).into_owned();
    if line.len() > shown.len() {
        text.push_str("...");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{Hasher, Limits};

    fn intake() -> Intake {
        Intake::new(protocol::DEFAULT_MAX_LINE_BYTES)
    }

    #[test]
    fn splits_lines_skipping_empty_ones() {
        let got: Vec<&[u8]> = lines_of(b"a\n\n\r\nb\r\nc").collect();
        assert_eq!(got, [&b"a"[..], b"b\r", b"c"]);
    }

    #[test]
    fn batch_with_a_bad_line_is_marked() {
        let mut shard = Shard::new(Hasher::default(), Limits::default());
        intake().ingest(&mut shard, b"a:1|c\nbad\nb:1|c");
        let counts = shard.intake;
        assert_eq!((counts.lines, counts.discarded), (2, 1));
        assert_eq!((counts.batches, counts.batches_discarded), (1, 1));
        assert_eq!((counts.packets, counts.bytes), (1, 15));
        assert_eq!(
            shard.sample_bad_line.as_ref().map(|s| &*s.0),
            Some(&b"bad"[..])
        );
    }

    #[test]
    fn kept_bad_line_is_cut_once() {
        let mut shard = Shard::new(Hasher::default(), Limits::default());
        let long = vec![b'x'; 500];
        intake().ingest(&mut shard, &long);
        assert_eq!(shard.sample_bad_line.map(|s| s.0.len()), Some(SHOWN_BYTES));
        assert!(printable(&long).ends_with("..."));
    }
}
