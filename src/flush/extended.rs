//! The pure core of a flush with the Etsy-style outputs (`--etsy`, or the
//! original's command line asking for more percentiles, timer metrics,
//! histograms, counts or idle series): metrics through
//! [`crate::render::etsy`], then Etsy's internal metrics (`--etsy`) or the
//! original's own keys and numStats. No clock, no I/O.

use std::time::{Duration, Instant};

use crate::aggregate::Snapshot;
use crate::render::etsy::{self, InternalValues, Outputs};
use crate::render::{render_meta, RenderConfig};
use crate::sink::Payload;

use super::keys::{OwnStats, OWN_KEYS};
use super::payload::FlushReport;

/// Renders the snapshot's metrics the Etsy way, then the internal metrics
/// (Etsy's, or the original's keys ending in numStats).
pub fn build(
    snapshot: &mut Snapshot,
    own: &OwnStats,
    settings: &RenderConfig,
    outputs: &Outputs,
    internal: &InternalValues,
    timestamp: u64,
) -> (Payload, FlushReport) {
    let started = Instant::now();
    if let Some(etsy) = &outputs.internal {
        etsy.add_series(snapshot, internal);
    }
    let names = snapshot.names();
    let mut out = Vec::with_capacity(64 * (names + snapshot.timers.len() * 12) + 4096);
    let render = etsy::render_metrics(
        snapshot,
        outputs,
        settings.flush_interval,
        timestamp,
        &mut out,
    );
    let total_lines = match &outputs.internal {
        Some(etsy) => {
            // Etsy's numStats counts series, not lines.
            let num_stats = snapshot.counters.len()
                + snapshot.timers.len()
                + snapshot.gauges.len()
                + snapshot.sets.len();
            let calculation = millis(started.elapsed());
            render.lines
                + etsy.render(
                    &outputs.namespace,
                    internal,
                    num_stats,
                    calculation,
                    timestamp,
                    &mut out,
                )
        }
        None => {
            let total_lines = render.lines + OWN_KEYS + 1;
            let mut keys = own.keys(&render, total_lines);
            keys.push(("numStats", total_lines as f64));
            render.lines + render_meta(&keys, settings, timestamp, &mut out)
        }
    };
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

/// Milliseconds, as Etsy's `Date.now()` differences (whole).
pub fn millis(elapsed: Duration) -> f64 {
    elapsed.as_millis() as f64
}

/// What the extended outputs keep across flushes.
#[derive(Debug, Clone)]
pub struct ExtendedState {
    /// Idle series to write as 0 or resend.
    pub idle: etsy::IdleSeries,
    /// Timestamp of the previous flush (Etsy's `timestamp_lag`).
    last_timestamp: Option<u64>,
    /// Bytes of the previous payload (Etsy's `graphiteStats.flush_length`).
    last_length: usize,
    /// Failed publishes seen so far, to date `last_exception`.
    errors_seen: u64,
    /// Unix time a publish was first seen failed, 0 before any.
    last_exception: f64,
}

impl ExtendedState {
    /// State before the first flush.
    pub fn new(idle: etsy::IdleSeries) -> ExtendedState {
        ExtendedState {
            idle,
            last_timestamp: None,
            last_length: 0,
            errors_seen: 0,
            last_exception: 0.0,
        }
    }

    /// The internal metrics' values of this flush; `processing` is the
    /// time the merge took so far, `now` the Unix time.
    pub fn values(
        &mut self,
        snapshot: &Snapshot,
        own: &OwnStats,
        interval: Duration,
        timestamp: u64,
        processing: Duration,
        now: f64,
    ) -> InternalValues {
        let intake = &snapshot.intake;
        let errors = own.publish.error_socket + own.publish.error_unknown;
        if errors > self.errors_seen {
            self.errors_seen = errors;
            self.last_exception = now.round();
        }
        let lag = self
            .last_timestamp
            .map(|last| timestamp as f64 - last as f64 - interval.as_secs_f64());
        self.last_timestamp = Some(timestamp);
        let p = &own.publish;
        InternalValues {
            bad_lines_seen: intake.discarded as f64,
            packets_received: intake.packets as f64,
            metrics_received: (intake.lines + intake.discarded) as f64,
            timestamp_lag: lag,
            processing_time: millis(processing),
            last_exception: self.last_exception,
            last_flush: if p.ok > 0 {
                p.last_time.round()
            } else {
                own.start_time.round()
            },
            flush_time: (p.last_duration * 1000.0).round(),
            flush_length: self.last_length as f64,
        }
    }

    /// Remembers the payload's size for the next flush.
    pub fn sent(&mut self, payload: &Payload) {
        self.last_length = payload.data.len();
    }
}
