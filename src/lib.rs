//! A StatsD server for Graphite, a drop-in replacement for the deviantART
//! pystatsd fork. Module map, in the order data flows (read this first):
//!
//! ```text
//! net (udp, tcp) -> intake (framing, lines, parse) -> aggregate (Shard per worker)
//!   -> flush (own thread: merge -> render -> payload) -> sink (publisher, backlog -> carbon)
//!   stats: each component's own counters -> flush::keys -> flush lines, admin `istats`, alert
//! ```
//!
//! - [`config`]: flags -> typed [`config::Config`], every value checked once.
//! - [`net`]: binding ([`net::Listeners`]), UDP workers ([`net::udp`]), TCP
//!   connections ([`net::tcp`]).
//! - [`intake`]: bytes -> lines -> parsed values -> the worker's shard;
//!   TCP line framing; debug echo; discards counted by reason.
//! - [`protocol`]: parse one StatsD line into values; name cleaning. Pure.
//! - [`aggregate`]: `Shard` (apply a value, count a discard), timers,
//!   gauges, merge into a `Snapshot`. Pure.
//! - [`render`]: `Snapshot` + prefixes + timestamp -> Graphite lines. Pure.
//!   [`render::etsy`]: Etsy statsd's outputs (`--etsy` and the flags that
//!   offer them to the original's command line).
//! - [`flush`]: the flush thread; its pure core [`flush::build`] turns
//!   snapshot + own stats + settings into the payload (numStats once);
//!   [`flush::keys`] assembles the own stats from their owners;
//!   [`flush::extended`] is the core for the Etsy-style outputs.
//! - [`sink`]: the publisher: carbon (timeouts, bounded backlog) or stdout.
//! - [`stats`]: lock-free counters for the owners; SPEC keys; JSON. Imports
//!   nothing of the crate.
//! - [`admin`]: XML-RPC over HTTP on port+10: `istats`, `system.listMethods`.
//! - [`mgmt`]: Etsy's TCP management console (`stats`, `counters`, `health`, ...).
//! - [`alert`]: `-a` mode: health -> NSCA passive check for Nagios.
//! - [`logging`]: rate-limited messages on stderr.
//! - [`memory`]: the allocator's thresholds, so a big flush's memory goes back.
//! - [`proxy`]: `--proxy`: the UDP workers forward to aggregators placed by
//!   Etsy's proxy.js ring (health-checked) instead of aggregating.
//! - [`server`]: wiring only: `run(listeners, config, shutdown)`.
//!
//! Binaries: `statsd` (the daemon), `statsdmonitor` (prints `istats`). The load
//! generator `statsd-bench` is a workspace member of its own (bench/statsd-bench),
//! so it is not part of this package.

pub mod admin;
pub mod aggregate;
pub mod alert;
pub mod config;
pub mod flush;
pub mod intake;
pub mod logging;
pub mod memory;
pub mod mgmt;
pub mod net;
pub mod protocol;
pub mod proxy;
pub mod reload;
pub mod render;
pub mod server;
pub mod sink;
pub mod stats;
