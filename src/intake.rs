//! What every receive path shares: parse a buffer into a shard, with debug
//! output (`-d`, `-m`) and rate-limited reports of bad lines.

use std::sync::Arc;

use crate::aggregate::Shard;
use crate::logging::{print_line, Logs};
use crate::protocol::ParseError;

/// Settings and logs for the receive paths.
#[derive(Debug)]
pub struct Intake {
    /// `-d`: report each discarded line on stderr.
    pub debug: bool,
    /// `-d -m TEXT`: echo incoming lines whose name contains TEXT.
    pub debug_metric: Option<String>,
    /// Rate-limited stderr.
    pub logs: Arc<Logs>,
}

impl Intake {
    /// Parses and aggregates one datagram or TCP read.
    #[inline]
    pub fn ingest(&self, shard: &mut Shard, buf: &[u8]) {
        if !self.debug {
            shard.ingest_buffer(buf, |_, _| {});
            return;
        }
        shard.ingest_buffer(buf, |line, outcome| self.debug_line(line, outcome));
    }

    fn debug_line(&self, line: &[u8], outcome: Result<&str, ParseError>) {
        match outcome {
            Ok(key) => {
                if let Some(text) = &self.debug_metric {
                    if key.contains(text.as_str()) {
                        print_line(&format!("incoming: {}", String::from_utf8_lossy(line)));
                    }
                }
            }
            Err(error) => self
                .logs
                .bad_input
                .error(|| format!("discarded line {:?}: {error}", printable(line))),
        }
    }
}

/// A bad line shown safely: lossy UTF-8, cut to 200 bytes.
pub fn printable(line: &[u8]) -> String {
    let cut = &line[..line.len().min(200)];
    let mut text = String::from_utf8_lossy(cut).into_owned();
    if line.len() > cut.len() {
        text.push_str("...");
    }
    text
}
