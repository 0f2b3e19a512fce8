//! The server's own stats (SPEC section 6). One list of keys feeds both the
//! flush (`<metadata-prefix>.<key>`) and the XML-RPC `istats` call, so the two
//! can never disagree on names.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::aggregate::IntakeCounts;
use crate::alert::AlertStats;
use crate::protocol::ParseError;
use crate::render::RenderStats;

/// `metrics.discarded.<reason>`, in the order of `ParseError::ALL`.
const DISCARD_KEYS: [&str; ParseError::ALL.len()] = [
    "metrics.discarded.not_utf8",
    "metrics.discarded.too_long",
    "metrics.discarded.missing_value",
    "metrics.discarded.empty_name",
    "metrics.discarded.missing_type",
    "metrics.discarded.unknown_type",
    "metrics.discarded.bad_value",
    "metrics.discarded.bad_rate",
    "metrics.discarded.unknown_field",
    "metrics.discarded.bad_tag",
    "metrics.discarded.cut_off",
];

/// The keys SPEC section 6 makes a public interface (Nagios checks and
/// dashboards read them); `keys` yields every one of them, and more.
pub const SPEC_KEYS: [&str; 21] = [
    "start_time",
    "flush_duration",
    "flush_errors",
    "last_publish.duration",
    "last_publish.time",
    "metrics.batch.count",
    "metrics.batch.discarded",
    "metrics.discarded",
    "pending_stats",
    "publish_error.socket",
    "publish_error.unknown",
    "render.counters.count",
    "render.counters.duration",
    "render.gauge.count",
    "render.gauge.duration",
    "render.set.count",
    "render.set.duration",
    "render.time",
    "render.timers.count",
    "render.timers.duration",
    "render.total",
];

/// Seconds since the Unix epoch, as a float.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Server-wide counters, updated at flush and publish time (never per line).
#[derive(Debug, Clone, Default)]
pub struct ServerStats {
    /// Unix time the server started.
    pub start_time: f64,
    /// Seconds the last flush took (merge + render + hand-off).
    pub flush_duration: f64,
    /// Flushes whose payload could not be delivered at the first attempt.
    pub flush_errors: u64,
    /// Seconds the last successful publish took.
    pub last_publish_duration: f64,
    /// Unix time of the last successful publish.
    pub last_publish_time: f64,
    /// Publishes that failed on the network.
    pub publish_error_socket: u64,
    /// Publishes that failed otherwise (name resolution, ...).
    pub publish_error_unknown: u64,
    /// Publishes that succeeded.
    pub publish_ok: u64,
    /// Lines carried by the last successful publish.
    pub last_publish_lines: u64,
    /// Lines delivered to carbon (or stdout) since start.
    pub published_lines: u64,
    /// What the last flush rendered.
    pub render: RenderStats,
    /// Lines in the last flush, the server's own included.
    pub render_total: usize,
    /// Intake of every completed interval since start.
    pub intake_total: IntakeCounts,
    /// Lines waiting in the publish backlog.
    pub backlog_lines: u64,
    /// Bytes waiting in the publish backlog.
    pub backlog_bytes: u64,
    /// Graphite lines dropped because the backlog overflowed or shutdown
    /// came while carbon was unreachable.
    pub backlog_dropped_lines: u64,
    /// Datagrams the kernel dropped on our UDP port (receive buffer full).
    pub udp_kernel_drops: u64,
    /// TCP connections open now.
    pub tcp_open: u64,
    /// TCP connections accepted since start.
    pub tcp_accepted: u64,
    /// TCP connections refused because too many were open.
    pub tcp_refused: u64,
    /// TCP connections closed for idling.
    pub tcp_idle_closed: u64,
    /// Gauges remembered for later deltas.
    pub gauges_remembered: u64,
    /// Gauges forgotten (idle past --gauge-ttl, or over --max-names).
    pub gauges_forgotten: u64,
    /// The alert loop's own counters (checks sent, errors); read here, written there.
    pub alert: Arc<AlertStats>,
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

impl ServerStats {
    /// A fresh set of stats for a server starting now.
    pub fn starting_now() -> ServerStats {
        ServerStats {
            start_time: unix_now(),
            ..ServerStats::default()
        }
    }

    /// Every key and value, in a fixed order. `interval` is the intake of the
    /// current interval (not yet in `intake_total`); `render` and `total`
    /// describe the flush the keys speak of.
    pub fn keys(
        &self,
        interval: &IntakeCounts,
        render: &RenderStats,
        render_total: usize,
    ) -> Vec<(&'static str, f64)> {
        let mut all = self.intake_total;
        all.add(interval);
        let mut keys = vec![
            ("start_time", self.start_time),
            ("flush_duration", self.flush_duration),
            ("flush_errors", self.flush_errors as f64),
            ("last_publish.duration", self.last_publish_duration),
            ("last_publish.time", self.last_publish_time),
            ("metrics.batch.count", interval.batches as f64),
            ("metrics.batch.discarded", interval.batches_discarded as f64),
            ("metrics.discarded", all.discarded as f64),
            ("pending_stats", interval.lines as f64),
            ("publish_error.socket", self.publish_error_socket as f64),
            ("publish_error.unknown", self.publish_error_unknown as f64),
            ("render.counters.count", render.counters as f64),
            ("render.counters.duration", secs(render.counters_duration)),
            ("render.gauge.count", render.gauges as f64),
            ("render.gauge.duration", secs(render.gauges_duration)),
            ("render.set.count", render.sets as f64),
            ("render.set.duration", secs(render.sets_duration)),
            ("render.time", secs(render.duration())),
            ("render.timers.count", render.timers as f64),
            ("render.timers.duration", secs(render.timers_duration)),
            ("render.total", render_total as f64),
            // Beyond SPEC section 6: so that no loss is ever silent.
            ("metrics.received", all.lines as f64),
            ("metrics.names_refused", all.names_refused as f64),
            ("packets.received", all.packets as f64),
            ("bytes.received", all.bytes as f64),
            ("udp.kernel_drops", self.udp_kernel_drops as f64),
            ("tcp.connections.open", self.tcp_open as f64),
            ("tcp.connections.accepted", self.tcp_accepted as f64),
            ("tcp.connections.refused", self.tcp_refused as f64),
            ("tcp.connections.idle_closed", self.tcp_idle_closed as f64),
            ("backlog.lines", self.backlog_lines as f64),
            ("backlog.bytes", self.backlog_bytes as f64),
            ("backlog.dropped_lines", self.backlog_dropped_lines as f64),
            ("published.lines", self.published_lines as f64),
            ("gauges.remembered", self.gauges_remembered as f64),
            ("gauges.forgotten", self.gauges_forgotten as f64),
            ("alert.sent", self.alert.sent() as f64),
            ("alert.errors", self.alert.errors() as f64),
        ];
        for reason in ParseError::ALL {
            keys.push((
                DISCARD_KEYS[reason.index()],
                all.discarded_by[reason.index()] as f64,
            ));
        }
        keys
    }

    /// The `istats` answer: a JSON object of every key. Counts print as
    /// integers, times as floats.
    pub fn istats_json(&self, interval: &IntakeCounts) -> String {
        let mut map = serde_json::Map::new();
        for (key, value) in self.keys(interval, &self.render, self.render_total) {
            let json = if value.fract() == 0.0 && value.abs() < 9e15 {
                serde_json::Value::from(value as i64)
            } else {
                serde_json::Number::from_f64(value)
                    .map_or(serde_json::Value::Null, serde_json::Value::Number)
            };
            map.insert(key.to_string(), json);
        }
        serde_json::Value::Object(map).to_string()
    }
}

/// Number of lines `keys` yields, so numStats can be known before rendering.
pub fn key_count() -> usize {
    ServerStats::default()
        .keys(&IntakeCounts::default(), &RenderStats::default(), 0)
        .len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discard_keys_match_reasons() {
        for reason in ParseError::ALL {
            assert_eq!(
                DISCARD_KEYS[reason.index()],
                format!("metrics.discarded.{}", reason.key())
            );
        }
    }

    #[test]
    fn every_spec_key_present() {
        let json = ServerStats::starting_now().istats_json(&IntakeCounts::default());
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        for key in SPEC_KEYS {
            assert!(value.get(key).is_some(), "{key}");
        }
    }
}
