//! Etsy's statsd 0.9.0 outputs (`--etsy`), and the same outputs offered to
//! the original's command line (`-t 90,99.9`, `--timer-metrics`,
//! `--histogram`, `--flush-counts`, `--delete-*`). One renderer serves both:
//! what differs is the [`Namespace`], the percentile [`Rank`] and whether
//! the server's own stats are Etsy's internal metrics or the original's keys.
//! The original's default output never comes here (`crate::render` keeps
//! its own fast path).
//!
//! - [`namespace`]: Etsy's paths (legacy and new namespace, prefixes, suffix).
//! - [`timer`]: Etsy's timer statistics, percentiles and histogram bins.
//! - [`idle`]: series written as 0 (or resent) while idle, bounded.
//! - [`internal`]: Etsy's internal metrics (`statsd.*`, `graphiteStats.*`).
//! - [`writer`]: the line writer.

pub mod idle;
pub mod internal;
pub mod namespace;
pub mod timer;
mod writer;

#[cfg(test)]
mod tests;

use std::time::{Duration, Instant};

use crate::aggregate::Snapshot;
use crate::render::RenderStats;

pub use idle::IdleSeries;
pub use internal::{EtsyInternal, InternalValues};
pub use namespace::Namespace;
pub use timer::{Bin, Histogram, Rank};

use writer::Writer;

/// Which idle series are deleted (not written) instead of written as 0 or
/// resent: Etsy's `deleteCounters`, `deleteTimers`, `deleteSets`,
/// `deleteGauges`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deletes {
    /// Idle counters are not written (else: 0).
    pub counters: bool,
    /// Idle timers are not written (else: count 0, count_ps 0).
    pub timers: bool,
    /// Idle sets are not written (else: 0).
    pub sets: bool,
    /// Idle gauges are not written (else: resent with their last value).
    pub gauges: bool,
}

impl Deletes {
    /// The original's behaviour: only series updated in the interval.
    pub const ALL: Deletes = Deletes {
        counters: true,
        timers: true,
        sets: true,
        gauges: true,
    };
    /// Etsy's default: nothing deleted.
    pub const NONE: Deletes = Deletes {
        counters: false,
        timers: false,
        sets: false,
        gauges: false,
    };
}

/// Everything that shapes the Etsy-style render.
#[derive(Debug, Clone, PartialEq)]
pub struct Outputs {
    /// Paths of each kind.
    pub namespace: Namespace,
    /// Percentile thresholds, deduplicated, in the order given (negative:
    /// the top values, `lower_top<N>`).
    pub pcts: Vec<f64>,
    /// How many values a percentile takes.
    pub rank: Rank,
    /// Etsy's `calculatedTimerMetrics`; None: every metric (`--etsy`) or the
    /// original's five (`lower`, `count`, `mean`, `upper`, `upper_percent`).
    pub timer_metrics: Option<Vec<String>>,
    /// Bins per timer name pattern; the first pattern contained in the
    /// name wins.
    pub histograms: Vec<Histogram>,
    /// Counts next to rates (Etsy's `flush_counts`).
    pub flush_counts: bool,
    /// What idle series become.
    pub deletes: Deletes,
    /// Etsy's internal metrics instead of the original's own keys.
    pub internal: Option<EtsyInternal>,
}

/// The original's five timer metrics, when the original's command line
/// asks for more percentiles or histograms but names no metric list.
pub const ORIGINAL_TIMER_METRICS: [&str; 5] = ["lower", "count", "mean", "upper", "upper_percent"];

impl Outputs {
    /// Rate of a counter sum over the interval; an overflowed sum (held at
    /// ±f64::MAX) stays as it is, as in the original's render.
    fn rate(sum: f64, interval: f64) -> f64 {
        if sum.abs() == f64::MAX {
            sum
        } else {
            sum / interval
        }
    }
}

/// Renders every metric of a snapshot the Etsy way (Etsy's order: counters,
/// timers, gauges, sets); returns what it did. Etsy's internal metrics are
/// written by [`internal::render`] after this.
pub fn render_metrics(
    snapshot: &mut Snapshot,
    outputs: &Outputs,
    flush_interval: Duration,
    timestamp: u64,
    out: &mut Vec<u8>,
) -> RenderStats {
    let mut stats = RenderStats::default();
    let ns = &outputs.namespace;
    let mut w = Writer::new(out, timestamp, &ns.global_suffix);
    let interval = if flush_interval.is_zero() {
        1.0
    } else {
        flush_interval.as_secs_f64()
    };

    let started = Instant::now();
    for (key, sum) in &snapshot.counters {
        w.line(
            &ns.counter_rate.0,
            key,
            ns.counter_rate.1,
            "",
            Outputs::rate(*sum, interval),
        );
        if outputs.flush_counts {
            w.line(&ns.counter_count.0, key, ns.counter_count.1, "", *sum);
        }
    }
    stats.counters = snapshot.counters.len();
    stats.counters_duration = started.elapsed();

    let started = Instant::now();
    let suffixes = timer::PctSuffixes::new(&outputs.pcts);
    for (key, samples) in &mut snapshot.timers {
        let bins = timer::bins_for(&outputs.histograms, key);
        timer::render(
            &mut w, &ns.timer, key, samples, outputs, &suffixes, bins, interval,
        );
    }
    stats.timers = snapshot.timers.len();
    stats.timers_duration = started.elapsed();

    let started = Instant::now();
    for (key, value) in &snapshot.gauges {
        w.line(&ns.gauge, key, "", "", *value);
    }
    stats.gauges = snapshot.gauges.len();
    stats.gauges_duration = started.elapsed();

    let started = Instant::now();
    for (key, count) in &snapshot.sets {
        w.line(&ns.set.0, key, ns.set.1, "", *count as f64);
    }
    stats.sets = snapshot.sets.len();
    stats.sets_duration = started.elapsed();

    // Values with their own timestamp (`|T`, which Etsy does not know): a
    // counter as its raw count, a gauge as given, as in the original.
    for (key, at, sum) in &snapshot.stamped_counters {
        w.line_at(&ns.counter_count.0, key, ns.counter_count.1, *sum, *at);
    }
    for (key, at, value) in &snapshot.stamped_gauges {
        w.line_at(&ns.gauge, key, "", *value, *at);
    }
    stats.stamped = snapshot.stamped_counters.len() + snapshot.stamped_gauges.len();
    stats.lines = w.lines();
    stats
}
