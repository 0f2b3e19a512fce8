//! A StatsD server for Graphite, a drop-in replacement for the deviantART
//! pystatsd fork. Module map (read this first):
//!
//! - [`config`]: command-line flags and their validation -> `Config`.
//! - [`protocol`]: parse one StatsD line into values; name cleaning. Pure.
//! - [`aggregate`]: per-worker `Shard`s, merged at flush into a `Snapshot`. Pure.
//! - [`render`]: `Snapshot` + prefixes + timestamp -> Graphite plaintext lines. Pure.
//! - [`stats`]: the server's own stats (SPEC section 6), for the flush and `istats`.
//! - [`intake`]: what every receive path shares: parse into a shard, debug output.
//! - [`net`]: binding, UDP receive workers, TCP line framing.
//! - [`sink`]: where rendered lines go: carbon (timeouts, bounded backlog) or stdout.
//! - [`server`]: wires it all together: `run(listeners, config, shutdown)`.
//! - [`logging`]: rate-limited messages on stderr.
//! - [`alert`]: `-a` mode: health -> NSCA passive check for Nagios, every interval.
//! - [`admin`]: XML-RPC over HTTP on port+10: `istats`, `system.listMethods`.
//!
//! Binaries: `statsd` (the daemon), `statsdmonitor` (prints `istats`). The load
//! generator `statsd-bench` is a workspace member of its own (bench/statsd-bench),
//! so it is not part of this package.

pub mod admin;
pub mod aggregate;
pub mod alert;
pub mod config;
pub mod intake;
pub mod logging;
pub mod net;
pub mod protocol;
pub mod render;
pub mod server;
pub mod sink;
pub mod stats;
