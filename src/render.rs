//! Rendering: a [`Snapshot`] becomes Graphite plaintext lines,
//! `path value timestamp\n`, with the original's paths and prefixes.

pub mod etsy;

use std::time::{Duration, Instant};

use crate::aggregate::{Snapshot, TimerSamples};

/// The original's prefix of counters, gauges and sets.
pub const DEFAULT_PREFIX: &str = "stats";
/// The original's prefix of timers.
pub const DEFAULT_TIMERS_PREFIX: &str = "stats.timers";
/// The original's prefix of the server's own stats.
pub const DEFAULT_METADATA_PREFIX: &str = "statsd";
/// The original's timer percentile.
pub const DEFAULT_PCT: f64 = 90.0;
/// The original's flush interval.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(10);

/// What shapes the output paths and values.
#[derive(Debug, Clone)]
pub struct RenderConfig {
    /// Prefix of counters (`--counters-prefix`).
    pub counters_prefix: String,
    /// Prefix of gauges (`--gauge-prefix`).
    pub gauge_prefix: String,
    /// Prefix of timers (`--timers-prefix`).
    pub timers_prefix: String,
    /// Prefix of sets (`--sets-prefix`).
    pub sets_prefix: String,
    /// Prefix of the server's own stats (`--metadata-prefix`).
    pub metadata_prefix: String,
    /// Timer percentile threshold (`--pct`).
    pub pct: f64,
    /// Time between flushes: counters are written as per-second rates.
    pub flush_interval: Duration,
}

impl Default for RenderConfig {
    /// The original's defaults: `stats`, `stats.timers`, `statsd`, pct 90, 10 s.
    fn default() -> Self {
        RenderConfig {
            counters_prefix: DEFAULT_PREFIX.into(),
            gauge_prefix: DEFAULT_PREFIX.into(),
            timers_prefix: DEFAULT_TIMERS_PREFIX.into(),
            sets_prefix: DEFAULT_PREFIX.into(),
            metadata_prefix: DEFAULT_METADATA_PREFIX.into(),
            pct: DEFAULT_PCT,
            flush_interval: DEFAULT_FLUSH_INTERVAL,
        }
    }
}

/// Per-kind counts and durations of one render (SPEC `render.*`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RenderStats {
    /// Counter names rendered.
    pub counters: usize,
    /// Gauge names rendered.
    pub gauges: usize,
    /// Set names rendered.
    pub sets: usize,
    /// Timer names rendered.
    pub timers: usize,
    /// Time spent on counters.
    pub counters_duration: Duration,
    /// Time spent on gauges.
    pub gauges_duration: Duration,
    /// Time spent on sets.
    pub sets_duration: Duration,
    /// Time spent on timers.
    pub timers_duration: Duration,
    /// Lines written at their own timestamps (`|T` counters and gauges).
    pub stamped: usize,
    /// Graphite lines written for metrics (not counting the server's own).
    pub lines: usize,
}

impl RenderStats {
    /// Total time spent rendering metrics.
    pub fn duration(&self) -> Duration {
        self.counters_duration + self.gauges_duration + self.sets_duration + self.timers_duration
    }
}

/// Appends a number in the shortest form that reads back exactly; integers
/// without a fraction. Input values are finite, but sums of them can
/// overflow (`a:1e308|c` twice, `a:1e308|c|@0.01`): an infinity is written
/// as the largest finite number of its sign, never as text carbon would
/// reject and never as 0; NaN (only from `+inf` meeting `-inf`) as 0.
pub fn write_number(out: &mut Vec<u8>, value: f64) {
    if value.is_nan() {
        out.push(b'0');
    } else if value.is_infinite() {
        let max = if value > 0.0 { f64::MAX } else { f64::MIN };
        out.extend_from_slice(ryu::Buffer::new().format_finite(max).as_bytes());
    } else if value == value.trunc() && value.abs() < 1e15 {
        out.extend_from_slice(itoa::Buffer::new().format(value as i64).as_bytes());
    } else {
        out.extend_from_slice(ryu::Buffer::new().format_finite(value).as_bytes());
    }
}

/// The text after `upper_` for a percentile: `90`, or `99_9` for 99.9.
pub fn pct_suffix(pct: f64) -> String {
    let mut text = Vec::new();
    write_number(&mut text, pct);
    String::from_utf8_lossy(&text).replace('.', "_")
}

/// One line writer: keeps the timestamp text and counts lines.
struct LineWriter<'a> {
    out: &'a mut Vec<u8>,
    timestamp: String,
    lines: usize,
    /// The last value written (its bits) and its text: flushes repeat values
    /// (every counter hit once has the same rate), and formatting a fraction
    /// costs several hundred instructions.
    last_number: (u64, Vec<u8>),
}

impl<'a> LineWriter<'a> {
    fn new(out: &'a mut Vec<u8>, timestamp: u64) -> LineWriter<'a> {
        LineWriter {
            out,
            timestamp: timestamp.to_string(),
            lines: 0,
            last_number: (0, Vec::new()),
        }
    }

    /// Appends `value` as [`write_number`] does.
    fn number(&mut self, value: f64) {
        let (bits, text) = &mut self.last_number;
        if *bits != value.to_bits() || text.is_empty() {
            text.clear();
            write_number(text, value);
            *bits = value.to_bits();
        }
        self.out.extend_from_slice(text);
    }
}

impl LineWriter<'_> {
    /// Writes `prefix.name<suffix>[;tags] value timestamp\n`. The key holds
    /// the name and its tags (`name;a=b`); the suffix goes between them.
    fn line(&mut self, prefix: &str, key: &str, suffix: &str, value: f64) {
        self.path_and_value(prefix, key, suffix, value);
        self.out.extend_from_slice(self.timestamp.as_bytes());
        self.out.push(b'\n');
        self.lines += 1;
    }

    /// Writes `prefix.name[;tags] value at\n`, at a timestamp of its own.
    fn line_at(&mut self, prefix: &str, key: &str, value: f64, at: u64) {
        self.path_and_value(prefix, key, "", value);
        self.out
            .extend_from_slice(itoa::Buffer::new().format(at).as_bytes());
        self.out.push(b'\n');
        self.lines += 1;
    }

    /// Everything of a line up to its timestamp.
    fn path_and_value(&mut self, prefix: &str, key: &str, suffix: &str, value: f64) {
        // Names are short: a plain scan beats memchr's set-up here.
        let (name, tags) = match key.bytes().position(|b| b == b';') {
            Some(at) => key.split_at(at),
            None => (key, ""),
        };
        if !prefix.is_empty() {
            self.out.extend_from_slice(prefix.as_bytes());
            self.out.push(b'.');
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(suffix.as_bytes());
        self.out.extend_from_slice(tags.as_bytes());
        self.out.push(b' ');
        self.number(value);
        self.out.push(b' ');
    }
}

/// The k-th smallest kept value with k = max(1, floor(pct / 100 * n)).
fn percentile(sorted: &[f64], pct: f64) -> f64 {
    let n = sorted.len();
    let k = ((pct / 100.0 * n as f64).floor() as usize).clamp(1, n.max(1));
    sorted.get(k - 1).copied().unwrap_or(0.0)
}

fn render_timer(
    w: &mut LineWriter<'_>,
    prefix: &str,
    key: &str,
    timer: &mut TimerSamples,
    upper_pct: &str,
    pct: f64,
) {
    timer.values.sort_unstable_by(f64::total_cmp);
    // The mean lies between the extremes even when the sum overflowed or
    // rounding pushed it past them.
    let mean = if timer.seen == 0 {
        0.0
    } else if timer.sum.is_nan() {
        timer.lower / 2.0 + timer.upper / 2.0
    } else {
        (timer.sum / timer.seen as f64)
            .max(timer.lower)
            .min(timer.upper)
    };
    w.line(prefix, key, ".lower", timer.lower);
    w.line(prefix, key, ".count", timer.count);
    w.line(prefix, key, ".mean", mean);
    w.line(prefix, key, ".upper", timer.upper);
    w.line(prefix, key, upper_pct, percentile(&timer.values, pct));
}

/// Renders every metric of a snapshot; returns what it did. Counters first,
/// then gauges, timers and sets, each sorted by name; then the values that
/// carry their own timestamp.
pub fn render_metrics(
    snapshot: &mut Snapshot,
    config: &RenderConfig,
    timestamp: u64,
    out: &mut Vec<u8>,
) -> RenderStats {
    let mut stats = RenderStats::default();
    let mut w = LineWriter::new(out, timestamp);

    let started = Instant::now();
    let interval = if config.flush_interval.is_zero() {
        1.0
    } else {
        config.flush_interval.as_secs_f64()
    };
    for (key, sum) in &snapshot.counters {
        // A sum at ±f64::MAX has overflowed (aggregate saturates there): written as
        // is, like every overflowed sum, rather than as a finite rate it is not.
        let rate = if sum.abs() == f64::MAX {
            *sum
        } else {
            sum / interval
        };
        w.line(&config.counters_prefix, key, "", rate);
    }
    stats.counters = snapshot.counters.len();
    stats.counters_duration = started.elapsed();

    let started = Instant::now();
    for (key, value) in &snapshot.gauges {
        w.line(&config.gauge_prefix, key, "", *value);
    }
    stats.gauges = snapshot.gauges.len();
    stats.gauges_duration = started.elapsed();

    let started = Instant::now();
    let upper_pct = format!(".upper_{}", pct_suffix(config.pct));
    for (key, timer) in &mut snapshot.timers {
        render_timer(
            &mut w,
            &config.timers_prefix,
            key,
            timer,
            &upper_pct,
            config.pct,
        );
    }
    stats.timers = snapshot.timers.len();
    stats.timers_duration = started.elapsed();

    let started = Instant::now();
    for (key, count) in &snapshot.sets {
        w.line(&config.sets_prefix, key, "", *count as f64);
    }
    stats.sets = snapshot.sets.len();
    stats.sets_duration = started.elapsed();

    // Timestamped values: a counter as its raw count, not a rate.
    for (key, at, sum) in &snapshot.stamped_counters {
        w.line_at(&config.counters_prefix, key, *sum, *at);
    }
    for (key, at, value) in &snapshot.stamped_gauges {
        w.line_at(&config.gauge_prefix, key, *value, *at);
    }
    stats.stamped = snapshot.stamped_counters.len() + snapshot.stamped_gauges.len();

    stats.lines = w.lines;
    stats
}

/// Renders the server's own stats under the metadata prefix; returns the
/// number of lines written.
pub fn render_meta<K: AsRef<str>>(
    meta: &[(K, f64)],
    config: &RenderConfig,
    timestamp: u64,
    out: &mut Vec<u8>,
) -> usize {
    let mut w = LineWriter::new(out, timestamp);
    for (key, value) in meta {
        w.line(&config.metadata_prefix, key.as_ref(), "", *value);
    }
    w.lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(value: f64) -> String {
        let mut out = Vec::new();
        write_number(&mut out, value);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn numbers_shortest_exact() {
        assert_eq!(number(3.0), "3");
        assert_eq!(number(-0.0), "0");
        assert_eq!(number(0.1), "0.1");
        assert_eq!(number(1.0 / 3.0), "0.3333333333333333");
        assert_eq!(number(1e300), "1e300");
        assert_eq!(number(-2.5), "-2.5");
        assert_eq!(number(f64::NAN), "0");
        assert_eq!(number(f64::INFINITY).parse::<f64>().unwrap(), f64::MAX);
        assert_eq!(number(f64::NEG_INFINITY).parse::<f64>().unwrap(), f64::MIN);
        for v in [0.1, 1.0 / 3.0, 1e300, 123456.789, 5e-324] {
            assert_eq!(number(v).parse::<f64>().unwrap(), v);
        }
    }

    #[test]
    fn percentile_rule() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        assert_eq!(percentile(&v, 90.0), 9.0);
        assert_eq!(percentile(&v[..1], 90.0), 1.0);
        assert_eq!(percentile(&v[..2], 10.0), 1.0);
        assert_eq!(percentile(&v[..3], 50.0), 1.0);
    }

    #[test]
    fn pct_suffixes() {
        assert_eq!(pct_suffix(90.0), "90");
        assert_eq!(pct_suffix(99.9), "99_9");
    }
}
