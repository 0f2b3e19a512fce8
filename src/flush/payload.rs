//! The pure core of a flush: the merged snapshot, the server's own stats and
//! the settings become the Graphite payload and its report. No clock, no I/O.

use crate::aggregate::Snapshot;
use crate::render::{render_meta, render_metrics, RenderConfig, RenderStats};
use crate::sink::Payload;

use super::keys::{own_keys, OwnStats};

/// What one flush wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FlushReport {
    /// Per-kind counts and times of the metrics rendered.
    pub render: RenderStats,
    /// Every line of the payload, the server's own and numStats included
    /// (the value of `numStats` and `render.total`).
    pub total_lines: usize,
    /// Distinct series flushed.
    pub names: usize,
}

/// Renders the snapshot's metrics, then the server's own stats, then
/// `<metadata-prefix>.numStats`: every line of the flush, itself included.
pub fn build(
    snapshot: &mut Snapshot,
    own: &OwnStats,
    settings: &RenderConfig,
    timestamp: u64,
) -> (Payload, FlushReport) {
    build_with(snapshot, own, &[], settings, timestamp)
}

/// [`build`] with `extra` own keys after the fixed ones (the proxy's
/// per-node keys, whose number depends on the node list).
pub fn build_with(
    snapshot: &mut Snapshot,
    own: &OwnStats,
    extra: &[(&'static str, f64)],
    settings: &RenderConfig,
    timestamp: u64,
) -> (Payload, FlushReport) {
    let names = snapshot.names();
    let mut out = Vec::with_capacity(64 * (names + snapshot.timers.len() * 4) + 4096);
    let render = render_metrics(snapshot, settings, timestamp, &mut out);
    // numStats is known before the own stats are written: their number is
    // fixed by the number of destinations and of the extra keys.
    let destinations = own.destinations.len();
    let total_lines = render.lines + own_keys(destinations) + extra.len() + 1;
    let mut keys = own.keys(&render, total_lines);
    keys.extend_from_slice(extra);
    let mut written = render.lines + render_meta(&keys, settings, timestamp, &mut out);
    written += render_meta(&own.destination_keys(), settings, timestamp, &mut out);
    written += render_meta(
        &[("numStats", total_lines as f64)],
        settings,
        timestamp,
        &mut out,
    );
    debug_assert_eq!(written, total_lines);
    let report = FlushReport {
        render,
        total_lines,
        names,
    };
    (
        Payload {
            data: out,
            lines: total_lines,
        },
        report,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn num_stats_counts_every_line() {
        let (payload, report) = build(
            &mut Snapshot::default(),
            &OwnStats::default(),
            &RenderConfig::default(),
            1,
        );
        let text = String::from_utf8(payload.data).unwrap();
        assert_eq!(text.lines().count(), report.total_lines);
        let last = text.lines().last().unwrap();
        assert_eq!(last, format!("statsd.numStats {} 1", report.total_lines));
    }

    #[test]
    fn num_stats_counts_the_keys_of_every_destination() {
        let own = OwnStats {
            destinations: ["a_1", "b_2", "c_3"]
                .iter()
                .map(|name| (name.to_string(), crate::sink::PublishCounts::default()))
                .collect(),
            ..OwnStats::default()
        };
        let (payload, report) = build(&mut Snapshot::default(), &own, &RenderConfig::default(), 1);
        let text = String::from_utf8(payload.data).unwrap();
        assert_eq!(report.total_lines, own_keys(3) + 1);
        assert_eq!(text.lines().count(), report.total_lines);
        assert!(
            text.contains("statsd.destination.b_2.backlog 0 1\n"),
            "{text}"
        );
    }
}
