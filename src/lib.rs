//! A StatsD server for Graphite, a drop-in replacement for the deviantART
//! pystatsd fork. Module map (read this first):
//!
//! - [`config`]: command-line flags and their validation -> `Config`.
//! - [`protocol`]: parse one StatsD line into samples; name cleaning. Pure.
//! - [`aggregate`]: per-worker `Shard`s, merged at flush into a `Snapshot`. Pure.
//! - [`render`]: `Snapshot` + prefixes + timestamp -> Graphite plaintext lines. Pure.
//! - [`stats`]: the server's own counters (SPEC section 6), for the flush and `istats`.
//! - [`sink`]: where rendered lines go: carbon (timeouts, bounded backlog) or stdout.
//! - [`net`]: UDP receive workers and TCP line framing.
//! - [`server`]: wires it all together: `run(listeners, config, shutdown)`.
//! - [`logging`]: rate-limited messages on stderr.

pub mod admin;
