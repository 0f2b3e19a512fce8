//! Etsy's internal metrics, with Etsy's names and placement: the counters
//! `<prefixStats>.bad_lines_seen`, `.packets_received`, `.metrics_received`
//! and the gauge `<prefixStats>.timestamp_lag` among the metrics; then
//! `numStats`, `graphiteStats.calculationtime`, `processing_time` and
//! `graphiteStats.last_exception`, `.last_flush`, `.flush_time`,
//! `.flush_length` (`stats.js`, `backends/graphite.js`).

use super::namespace::Namespace;
use super::writer::Writer;
use crate::aggregate::Snapshot;

/// Etsy's internal metrics' settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtsyInternal {
    /// Etsy's `prefixStats` (default `statsd`).
    pub prefix_stats: String,
}

/// The values of one flush's internal metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct InternalValues {
    /// Bad lines this interval.
    pub bad_lines_seen: f64,
    /// Datagrams and reads this interval.
    pub packets_received: f64,
    /// Lines this interval, bad ones included.
    pub metrics_received: f64,
    /// Seconds between this flush and the last, less the interval (None at
    /// the first flush, as in Etsy).
    pub timestamp_lag: Option<f64>,
    /// Milliseconds the merge and the statistics took.
    pub processing_time: f64,
    /// Unix time of the last failed publish, 0 if none.
    pub last_exception: f64,
    /// Unix time of the last delivered publish (the start time before).
    pub last_flush: f64,
    /// Milliseconds the last delivered publish took.
    pub flush_time: f64,
    /// Bytes of the last payload.
    pub flush_length: f64,
}

impl EtsyInternal {
    fn name(&self, what: &str) -> Box<str> {
        format!("{}.{what}", self.prefix_stats).into()
    }

    /// Adds Etsy's internal counters and the lag gauge to the snapshot, as
    /// Etsy keeps them in its counters and gauges (so they count in
    /// numStats and take the counters' paths).
    pub fn add_series(&self, snapshot: &mut Snapshot, values: &InternalValues) {
        for (what, value) in [
            ("bad_lines_seen", values.bad_lines_seen),
            ("packets_received", values.packets_received),
            ("metrics_received", values.metrics_received),
        ] {
            insert_sorted(&mut snapshot.counters, self.name(what), value);
        }
        if let Some(lag) = values.timestamp_lag {
            insert_sorted(&mut snapshot.gauges, self.name("timestamp_lag"), lag);
        }
    }

    /// Writes the lines after the metrics; returns how many.
    pub fn render(
        &self,
        ns: &Namespace,
        values: &InternalValues,
        num_stats: usize,
        calculation_time: f64,
        timestamp: u64,
        out: &mut Vec<u8>,
    ) -> usize {
        let ps = &self.prefix_stats;
        // Legacy: `statsd.numStats`, `stats.statsd.*`; new namespace:
        // `<globalPrefix>.statsd.*` (no global prefix: `statsd.*`).
        let (count_root, root) = if ns.legacy {
            (ps.clone(), format!("stats.{ps}"))
        } else {
            let root = if ns.global.is_empty() {
                ps.clone()
            } else {
                format!("{}.{ps}", ns.global)
            };
            (root.clone(), root)
        };
        let mut w = Writer::new(out, timestamp, &ns.global_suffix);
        w.raw(&format!("{count_root}.numStats"), num_stats as f64);
        w.raw(
            &format!("{root}.graphiteStats.calculationtime"),
            calculation_time,
        );
        w.raw(&format!("{root}.processing_time"), values.processing_time);
        for (what, value) in [
            ("last_exception", values.last_exception),
            ("last_flush", values.last_flush),
            ("flush_time", values.flush_time),
            ("flush_length", values.flush_length),
        ] {
            w.raw(&format!("{root}.graphiteStats.{what}"), value);
        }
        w.lines()
    }
}

/// Adds to a series' value, or inserts it where the name sorts.
fn insert_sorted<K: AsRef<str> + From<Box<str>>>(
    list: &mut Vec<(K, f64)>,
    name: Box<str>,
    value: f64,
) {
    match list.binary_search_by(|e| e.0.as_ref().cmp(&*name)) {
        Ok(at) => list[at].1 += value,
        Err(at) => list.insert(at, (name.into(), value)),
    }
}
