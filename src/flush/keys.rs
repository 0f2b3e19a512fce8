//! The server's own stats as keys: read from the components that own them
//! ([`StatSources`]) into plain values ([`OwnStats`]), then laid out in one
//! fixed order for both the flush (`<metadata-prefix>.<key>`) and `istats`,
//! so the two can never disagree on names.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::aggregate::IntakeCounts;
use crate::alert::AlertStats;
use crate::intake::ShardCell;
use crate::mgmt::MgmtStats;
use crate::net::tcp::TcpStats;
use crate::net::unix::UnixStats;
use crate::protocol::ParseError;
use crate::proxy::stats::ProxyStats;
use crate::render::RenderStats;
use crate::sink::{PublishCounts, PublishSources};
use crate::stats::{self, Keys};

/// Number of keys [`OwnStats::keys`] yields (numStats counts them): with
/// one destination, every own key.
pub const OWN_KEYS: usize = 54 + ParseError::ALL.len();

/// Keys of each destination, with two or more (`published`, `backlog`, `errors`).
pub const KEYS_PER_DESTINATION: usize = 3;

/// Every own key of a flush with `destinations` carbon destinations (the
/// per-destination keys appear from two on).
pub const fn own_keys(destinations: usize) -> usize {
    if destinations < 2 {
        OWN_KEYS
    } else {
        OWN_KEYS + KEYS_PER_DESTINATION * destinations
    }
}

/// What the flush itself leaves for `istats` and the next flush.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LastFlush {
    /// Seconds the last flush took (merge + render + hand-off).
    pub duration: f64,
    /// What the last flush rendered.
    pub render: RenderStats,
    /// Lines in the last flush, the server's own included.
    pub render_total: usize,
    /// Intake of every completed interval since start.
    pub intake_total: IntakeCounts,
    /// Datagrams the kernel dropped on our UDP sockets (receive buffer full).
    pub udp_kernel_drops: u64,
    /// Other processes' sockets bound to our UDP port.
    pub udp_foreign_sockets: u64,
    /// Gauges remembered for later deltas.
    pub gauges_remembered: u64,
    /// Gauges forgotten (idle past --gauge-ttl, or over --max-names).
    pub gauges_forgotten: u64,
}

/// The flush's stats, written by the flush thread only.
#[derive(Debug, Default)]
pub struct FlushStats {
    /// Held for a copy's time, never across a merge or render.
    last: Mutex<LastFlush>,
    /// True while a flush is being made (`istats`' `flush.running`).
    running: AtomicBool,
}

impl FlushStats {
    /// Marks a flush as started or ended.
    pub fn set_running(&self, running: bool) {
        self.running.store(running, Ordering::Relaxed);
    }

    /// True while a flush is being made.
    pub fn running(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }

    /// A copy of what the last flush left.
    pub fn get(&self) -> LastFlush {
        *self.last.lock()
    }

    /// Changes what the last flush left.
    pub fn update(&self, change: impl FnOnce(&mut LastFlush)) {
        change(&mut self.last.lock());
    }
}

/// Every own stat at one moment, as plain values: what the keys are made of.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OwnStats {
    /// Unix time the server started.
    pub start_time: f64,
    /// Intake of the interval the keys speak of.
    pub interval: IntakeCounts,
    /// What the previous flush left (its render is not the one written).
    pub flush: LastFlush,
    /// The publishers' counters, every destination together.
    pub publish: PublishCounts,
    /// Each destination's `(<host_port>, counters)`; empty with one destination.
    pub destinations: Vec<(String, PublishCounts)>,
    /// TCP connections: open, accepted, refused, idle-closed, slow-closed,
    /// evicted; lines dropped for the pending-bytes bound.
    pub tcp: [u64; 7],
    /// NSCA checks: sent, failed.
    pub alert: [u64; 2],
    /// Unix datagram socket: packets, bytes, truncated datagrams.
    pub unix: [u64; 3],
    /// Etsy's mgmt console: connections accepted, refused, idle-closed;
    /// lines too long.
    pub mgmt: [u64; 4],
    /// Log lines dropped because the log pipe did not drain.
    pub log_dropped: u64,
}

impl OwnStats {
    /// Every key and value, in a fixed order; `render` and `render_total`
    /// describe the flush the keys speak of.
    pub fn keys(&self, render: &RenderStats, render_total: usize) -> Keys {
        let interval = &self.interval;
        let mut all = self.flush.intake_total;
        all.add(interval);
        let secs = |d: std::time::Duration| d.as_secs_f64();
        let (p, f) = (&self.publish, &self.flush);
        let mut keys = vec![
            ("start_time", self.start_time),
            ("flush_duration", f.duration),
            ("flush_errors", p.flush_errors as f64),
            ("last_publish.duration", p.last_duration),
            ("last_publish.time", p.last_time),
            ("metrics.batch.count", interval.batches as f64),
            ("metrics.batch.discarded", interval.batches_discarded as f64),
            ("metrics.discarded", all.discarded as f64),
            ("pending_stats", interval.lines as f64),
            ("publish_error.socket", p.error_socket as f64),
            ("publish_error.unknown", p.error_unknown as f64),
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
            ("metrics.container_ids", all.container_ids as f64),
            ("metrics.external_data", all.external_data as f64),
            ("metrics.timestamped", all.timestamped as f64),
            (
                "metrics.set_members_refused",
                all.set_members_refused as f64,
            ),
            ("packets.received", all.packets as f64),
            ("bytes.received", all.bytes as f64),
            ("udp.kernel_drops", f.udp_kernel_drops as f64),
            ("udp.foreign_sockets", f.udp_foreign_sockets as f64),
            ("tcp.connections.open", self.tcp[0] as f64),
            ("tcp.connections.accepted", self.tcp[1] as f64),
            ("tcp.connections.refused", self.tcp[2] as f64),
            ("tcp.connections.idle_closed", self.tcp[3] as f64),
            ("tcp.connections.slow_closed", self.tcp[4] as f64),
            ("tcp.connections.evicted", self.tcp[5] as f64),
            ("tcp.lines.buffer_full", self.tcp[6] as f64),
            ("unix.packets", self.unix[0] as f64),
            ("unix.bytes", self.unix[1] as f64),
            ("unix.truncated", self.unix[2] as f64),
            ("mgmt.connections.accepted", self.mgmt[0] as f64),
            ("mgmt.connections.refused", self.mgmt[1] as f64),
            ("mgmt.connections.idle_closed", self.mgmt[2] as f64),
            ("mgmt.lines.too_long", self.mgmt[3] as f64),
            ("backlog.lines", p.backlog_lines as f64),
            ("backlog.bytes", p.backlog_bytes as f64),
            ("backlog.dropped_lines", p.backlog_dropped_lines as f64),
            ("published.lines", p.published_lines as f64),
            ("gauges.remembered", f.gauges_remembered as f64),
            ("gauges.forgotten", f.gauges_forgotten as f64),
            ("alert.sent", self.alert[0] as f64),
            ("alert.errors", self.alert[1] as f64),
            ("log.dropped", self.log_dropped as f64),
        ];
        for reason in ParseError::ALL {
            keys.push((reason.stat_key(), all.discarded_by[reason.index()] as f64));
        }
        debug_assert_eq!(keys.len(), OWN_KEYS);
        keys
    }

    /// `destination.<host_port>.{published,backlog,errors}` of each
    /// destination, in `--graphite-host` order (none with one destination).
    pub fn destination_keys(&self) -> Vec<(String, f64)> {
        let mut keys = Vec::with_capacity(self.destinations.len() * KEYS_PER_DESTINATION);
        for (name, counts) in &self.destinations {
            let errors = counts.error_socket + counts.error_unknown;
            keys.push((
                format!("destination.{name}.published"),
                counts.published_lines as f64,
            ));
            keys.push((
                format!("destination.{name}.backlog"),
                counts.backlog_lines as f64,
            ));
            keys.push((format!("destination.{name}.errors"), errors as f64));
        }
        keys
    }
}

/// Where every own stat lives: each component's counters, shared read-only.
#[derive(Debug, Clone)]
pub struct StatSources {
    /// Unix time the server started.
    pub start_time: f64,
    /// Every shard, for the live intake counts (read without their locks).
    pub shards: Vec<Arc<ShardCell>>,
    /// What the flush leaves.
    pub flush: Arc<FlushStats>,
    /// Each destination's publisher's counters.
    pub publish: PublishSources,
    /// TCP intake's counters.
    pub tcp: Arc<TcpStats>,
    /// The NSCA loop's counters.
    pub alert: Arc<AlertStats>,
    /// The Unix datagram socket's counters (zero without --unix-socket).
    pub unix: Arc<UnixStats>,
    /// The mgmt console's counters (zero without --mgmt-port).
    pub mgmt: Arc<MgmtStats>,
    /// `--proxy`: the forwarding counters, whose keys follow the fixed ones.
    pub proxy: Option<Arc<ProxyStats>>,
}

impl StatSources {
    /// Sources for a server starting now, every count at zero.
    pub fn starting_now(shards: Vec<Arc<ShardCell>>) -> StatSources {
        StatSources {
            start_time: stats::unix_now(),
            shards,
            flush: Arc::default(),
            publish: PublishSources::default(),
            tcp: Arc::default(),
            alert: Arc::default(),
            unix: Arc::default(),
            mgmt: Arc::default(),
            proxy: None,
        }
    }

    /// Own keys beyond the fixed [`OWN_KEYS`]: the proxy's, per node.
    pub fn extra_keys(&self) -> Keys {
        self.proxy.as_ref().map(|p| p.keys()).unwrap_or_default()
    }

    /// Reads every counter now; `interval` is the intake the keys speak of.
    pub fn read(&self, interval: IntakeCounts) -> OwnStats {
        OwnStats {
            start_time: self.start_time,
            interval,
            flush: self.flush.get(),
            publish: self.publish.total(),
            destinations: self.publish.per_destination(),
            tcp: [
                self.tcp.open.get(),
                self.tcp.accepted.get(),
                self.tcp.refused.get(),
                self.tcp.idle_closed.get(),
                self.tcp.slow_closed.get(),
                self.tcp.evicted.get(),
                self.tcp.pending_full.get(),
            ],
            alert: [self.alert.sent(), self.alert.errors()],
            unix: [
                self.unix.packets.get(),
                self.unix.bytes.get(),
                self.unix.truncated.get(),
            ],
            mgmt: [
                self.mgmt.accepted.get(),
                self.mgmt.refused.get(),
                self.mgmt.idle_closed.get(),
                self.mgmt.long_lines.get(),
            ],
            log_dropped: crate::logging::dropped_lines(),
        }
    }

    /// The intake of the current interval, from every shard's live counts.
    pub fn live_intake(&self) -> IntakeCounts {
        let mut live = IntakeCounts::default();
        for shard in &self.shards {
            live.add(&shard.live());
        }
        live
    }

    /// The `istats` JSON: the current interval's intake, the last flush's
    /// render, and `flush.running` (1 while a flush is being made: in the
    /// flush's own lines it would always be 1). Takes no shard lock.
    pub fn istats_json(&self) -> String {
        let own = self.read(self.live_intake());
        let mut keys = own.keys(&own.flush.render, own.flush.render_total);
        keys.extend(self.extra_keys());
        keys.push(("flush.running", f64::from(u8::from(self.flush.running()))));
        let each = own.destination_keys();
        let all = keys
            .iter()
            .map(|(key, value)| (*key, *value))
            .chain(each.iter().map(|(key, value)| (key.as_str(), *value)));
        stats::istats_json(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_count_is_fixed_and_covers_the_spec() {
        let keys = OwnStats::default().keys(&RenderStats::default(), 0);
        assert_eq!(keys.len(), OWN_KEYS);
        assert_eq!(own_keys(1), OWN_KEYS);
        let three = OwnStats {
            destinations: vec![("a_1".into(), PublishCounts::default()); 3],
            ..OwnStats::default()
        };
        assert_eq!(keys.len() + three.destination_keys().len(), own_keys(3));
        for spec in stats::SPEC_KEYS {
            assert!(keys.iter().any(|(key, _)| *key == spec), "{spec}");
        }
    }

    #[test]
    fn discard_keys_name_their_reason() {
        for reason in ParseError::ALL {
            assert_eq!(
                reason.stat_key(),
                format!("metrics.discarded.{}", reason.key())
            );
        }
    }
}
