//! Building blocks for the server's own stats (SPEC section 6). Each
//! component owns the counters it writes ([`Counter`], [`F64Cell`]: lock-free,
//! never contended with another writer); the flush and `istats` read them and
//! assemble the keys (see `flush::keys`). This module knows no other module of
//! the crate, so any component can own stats without tying itself to the rest.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The keys SPEC section 6 makes a public interface (Nagios checks and
/// dashboards read them); the flush and `istats` write every one, and more.
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

/// Stat keys and their values, in the order they are written.
pub type Keys = Vec<(&'static str, f64)>;

/// Seconds since the Unix epoch, as a float.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A monotonic count, written by one component and read by anyone.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Adds one.
    #[inline]
    pub fn incr(&self) {
        self.add(1);
    }

    /// Takes one away, never below zero (for "open now" counts).
    pub fn decr(&self) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// Replaces the value (for sizes that go up and down).
    pub fn set(&self, n: u64) {
        self.0.store(n, Ordering::Relaxed);
    }

    /// The value now.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A float written by one component (durations, times), read by anyone.
#[derive(Debug, Default)]
pub struct F64Cell(AtomicU64);

impl F64Cell {
    /// A cell holding `value`.
    pub fn new(value: f64) -> F64Cell {
        F64Cell(AtomicU64::new(value.to_bits()))
    }

    /// Replaces the value.
    pub fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Ordering::Relaxed);
    }

    /// The value now.
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// The `istats` answer: a JSON object of every key. Counts print as
/// integers, times as floats.
pub fn istats_json<'a>(keys: impl IntoIterator<Item = (&'a str, f64)>) -> String {
    let mut map = serde_json::Map::new();
    for (key, value) in keys {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_never_go_below_zero() {
        let open = Counter::default();
        open.incr();
        open.decr();
        open.decr();
        assert_eq!(open.get(), 0);
    }

    #[test]
    fn json_integers_and_floats() {
        let json = istats_json([("a", 3.0), ("b", 0.25), ("c", f64::NAN)]);
        assert_eq!(json, r#"{"a":3,"b":0.25,"c":null}"#);
    }
}
