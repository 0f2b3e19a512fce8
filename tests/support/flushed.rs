//! One flush as carbon got it, split for exact comparisons: the metric lines
//! (everything not under the metadata prefix `statsd.`), byte for byte and in
//! order, the flush's own timestamp (from its `numStats` line) and the
//! server's own stats by key. [`final_flush`] stops an in-process server
//! and returns its final flush: with a long `--flush-interval` that is the
//! only flush, holding everything sent before the stop.

use std::collections::BTreeMap;

use super::carbon::FakeCarbon;
use super::server::Server;

/// The metadata prefix the tests run with (the default).
pub const META: &str = "statsd.";

/// One flush: metric lines, timestamp, own stats.
#[derive(Debug, Clone)]
pub struct Flush {
    /// `path value timestamp`, every line not under [`META`], in order.
    pub metrics: Vec<String>,
    /// The flush's timestamp, that of its `numStats` line.
    pub timestamp: u64,
    /// The server's own stats, keyed without the prefix.
    pub own: BTreeMap<String, f64>,
}

impl Flush {
    /// Splits the lines of one flush (its numStats line last).
    pub fn parse(lines: &[String]) -> Flush {
        let last = lines.last().expect("a flush has lines");
        assert!(
            last.starts_with("statsd.numStats "),
            "not a whole flush, last line {last:?}"
        );
        let timestamp = last
            .rsplit(' ')
            .next()
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("no timestamp in {last:?}"));
        let mut metrics = Vec::new();
        let mut own = BTreeMap::new();
        for line in lines {
            match line.strip_prefix(META) {
                Some(rest) => {
                    let mut parts = rest.split(' ');
                    let key = parts.next().unwrap_or_default().to_string();
                    let value = parts
                        .next()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or_else(|| panic!("own stat without a value: {line:?}"));
                    own.insert(key, value);
                }
                None => metrics.push(line.clone()),
            }
        }
        Flush {
            metrics,
            timestamp,
            own,
        }
    }

    /// An own stat, by key without the prefix; panics when it is absent.
    pub fn own(&self, key: &str) -> f64 {
        *self
            .own
            .get(key)
            .unwrap_or_else(|| panic!("no own stat {key:?} in the flush"))
    }

    /// `expected` (one line each, `{ts}` standing for the flush's timestamp)
    /// as the exact metric lines this flush must hold.
    pub fn expected(&self, expected: &str) -> Vec<String> {
        expected
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| l.replace("{ts}", &self.timestamp.to_string()))
            .collect()
    }

    /// Asserts the metric lines are exactly `expected` (see [`Flush::expected`]).
    pub fn assert_metrics(&self, expected: &str) {
        let want = self.expected(expected);
        assert_eq!(
            self.metrics,
            want,
            "metric lines differ\n got:\n{}\n want:\n{}",
            self.metrics.join("\n"),
            want.join("\n")
        );
    }

    /// Every `metrics.discarded.<reason>` that is not 0, as `reason=count`.
    pub fn discards(&self) -> Vec<String> {
        self.own
            .iter()
            .filter(|(k, v)| k.starts_with("metrics.discarded.") && **v != 0.0)
            .map(|(k, v)| format!("{}={v}", &k["metrics.discarded.".len()..]))
            .collect()
    }
}

/// Stops `server` (as SIGTERM does: it takes in what was sent, then
/// flushes) and returns the flush carbon got last, up to its numStats line.
pub fn final_flush(server: Server, carbon: &FakeCarbon) -> Flush {
    server.stop();
    let mut lines = carbon.until(".numStats ");
    // Earlier flushes, if the interval let any happen, come first.
    while let Some(more) = next_flush(carbon) {
        lines = more;
    }
    Flush::parse(&lines)
}

/// A further whole flush carbon already got, without waiting.
fn next_flush(carbon: &FakeCarbon) -> Option<Vec<String>> {
    let mut lines = Vec::new();
    while let Ok(line) = carbon.lines.try_recv() {
        let done = line.contains(".numStats ");
        lines.push(line);
        if done {
            return Some(lines);
        }
    }
    assert!(lines.is_empty(), "carbon got part of a flush: {lines:?}");
    None
}
