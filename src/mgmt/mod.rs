//! Etsy statsd 0.9.0's management console: a TCP port (`mgmt_port`, 8126
//! under Etsy's config) taking one command per line (`help`, `stats`,
//! `counters`, `timers`, `gauges`, `sets`, `del*` with `prefix.*` globs,
//! `health [up|down]`, `config`, `quit`) and answering byte for byte as
//! Etsy does, so Etsy's `proxy.js` health checks and Nagios `check_statsd`
//! scripts work against us.
//!
//! - [`commands`]: parsing and the reply texts (pure).
//! - [`inspect`]: Node's `util.inspect`, for the listings (pure).
//! - [`config_text`]: `config`, Etsy's `writeConfig` (pure).
//! - [`view`]: the current interval, read and pruned between flushes.
//! - `connection`: the TCP side and its bounds.
//!
//! Bounded like the XML-RPC port: connections at once (extra ones get one
//! line and are closed), line length (a longer line closes the connection),
//! idle time, and a reply write that stalls; each refusal is counted. Etsy
//! answers each TCP read as one command; we take a command at each newline,
//! or a partial line once the peer pauses or closes, which answers the same
//! to every client that writes a command at a time.

pub mod commands;
pub mod config_text;
mod connection;
pub mod inspect;
pub mod view;

pub use connection::serve;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use parking_lot::Mutex;

use crate::flush::{FlushHandle, StatSources};
use crate::stats::{unix_now, Counter};
use commands::{Command, StatsView};

/// How often the time of the last received packet is sampled (Etsy keeps
/// it in whole seconds).
const LAST_MESSAGE_TICK: Duration = Duration::from_millis(500);

/// The console's own counts.
#[derive(Debug, Default)]
pub struct MgmtStats {
    /// Connections accepted and served.
    pub accepted: Counter,
    /// Connections refused: too many at once.
    pub refused: Counter,
    /// Connections closed after the idle timeout (or a stalled reply).
    pub idle_closed: Counter,
    /// Connections closed for a line over `--mgmt-max-line-bytes`.
    pub long_lines: Counter,
}

/// What the console answers from: the flush thread (series), the stats
/// sources (`stats`), its own health flag and Etsy's config.
pub struct Console {
    /// Runs reads and deletions between flushes.
    flush: FlushHandle,
    /// Counters of intake, flush and publish.
    sources: StatSources,
    /// `health`'s state: Etsy's `healthStatus` (`up` unless the config says).
    health: Mutex<String>,
    /// The Etsy config file as last read (SIGHUP reads it again), for `config`.
    etsy_file: Arc<ArcSwapOption<serde_json::Value>>,
    /// The flush interval in ms, as Etsy writes it in `config`.
    flush_interval_ms: f64,
    /// Unix second a packet was last seen received (the start until then).
    last_msg_seen: AtomicI64,
    /// Packets counted when last sampled, all intervals together.
    packets_seen: AtomicU64,
    /// Largest bad-line total reported (never goes back while a flush moves
    /// the interval's counts into the total).
    bad_lines_seen: AtomicU64,
    /// The console's own counts (shared with the flush and `istats`).
    pub stats: Arc<MgmtStats>,
}

impl Console {
    /// A console over the running server's state.
    pub fn new(
        flush: FlushHandle,
        sources: StatSources,
        etsy_file: Arc<ArcSwapOption<serde_json::Value>>,
        flush_interval: Duration,
    ) -> Console {
        let health = etsy_file
            .load()
            .as_deref()
            .and_then(|file| file.get("healthStatus"))
            .and_then(serde_json::Value::as_str)
            .filter(|status| !status.is_empty())
            .unwrap_or("up")
            .to_string();
        let startup = commands::js_round(sources.start_time);
        let stats = Arc::clone(&sources.mgmt);
        Console {
            flush,
            sources,
            health: Mutex::new(health),
            etsy_file,
            flush_interval_ms: flush_interval.as_secs_f64() * 1000.0,
            last_msg_seen: AtomicI64::new(startup),
            packets_seen: AtomicU64::new(0),
            bad_lines_seen: AtomicU64::new(0),
            stats,
        }
    }

    /// True unless `health down` was said last.
    pub fn healthy(&self) -> bool {
        *self.health.lock() != "down"
    }

    /// Intake since start: completed intervals plus the current one.
    fn intake_total(&self) -> crate::aggregate::IntakeCounts {
        let mut total = self.sources.flush.get().intake_total;
        for cell in &self.sources.shards {
            total.add(&cell.live());
        }
        total
    }

    /// Notes the second packets were last seen arriving.
    fn sample_last_message(&self) {
        let packets = self.intake_total().packets;
        if packets > self.packets_seen.fetch_max(packets, Ordering::Relaxed) {
            self.last_msg_seen
                .store(commands::js_round(unix_now()), Ordering::Relaxed);
        }
    }

    /// The reply to one command line; `None` for `quit`.
    pub async fn answer(&self, line: &str) -> Option<String> {
        let reply = match commands::parse(line) {
            Command::Help => commands::HELP.to_string(),
            Command::Unknown => commands::ERROR.to_string(),
            Command::Quit => return None,
            Command::Health(change) => {
                let mut health = self.health.lock();
                match change {
                    Some(true) => *health = "up".into(),
                    Some(false) => *health = "down".into(),
                    None => {}
                }
                format!("health: {health}\n")
            }
            Command::Stats => {
                self.sample_last_message();
                commands::stats(&self.stats_view())
            }
            Command::Config => {
                let flushed = self.flush.visit(|flusher| flusher.flushes() > 0).await;
                let config = config_text::etsy_runtime_config(
                    self.etsy_file.load().as_deref(),
                    self.flush_interval_ms,
                    flushed.unwrap_or(false),
                );
                config_text::write_config(&config)
            }
            Command::List(kind) => {
                let listed = self
                    .flush
                    .visit(move |flusher| {
                        let shards = flusher.shards().to_vec();
                        view::list(kind, &shards, flusher.gauges_mut())
                    })
                    .await;
                match listed {
                    Ok(series) => commands::listing(&series),
                    Err(_) => commands::ERROR.to_string(),
                }
            }
            Command::Delete(kind, requests) => self
                .flush
                .visit(move |flusher| {
                    let shards = flusher.shards().to_vec();
                    let series = view::list(kind, &shards, flusher.gauges_mut());
                    let names: Vec<&str> = series.iter().map(|(name, _)| &**name).collect();
                    let (reply, deleted) = commands::delete_stats(&names, &requests);
                    view::delete(kind, &deleted, &shards, flusher.gauges_mut());
                    reply
                })
                .await
                .unwrap_or_else(|_| commands::ERROR.to_string()),
        };
        Some(reply)
    }

    fn stats_view(&self) -> StatsView {
        let startup = commands::js_round(self.sources.start_time);
        let publish = self.sources.publish.total();
        let bad = self.intake_total().discarded;
        let bad = bad.max(self.bad_lines_seen.fetch_max(bad, Ordering::Relaxed));
        StatsView {
            now: commands::js_round(unix_now()),
            startup,
            last_msg_seen: self.last_msg_seen.load(Ordering::Relaxed),
            bad_lines_seen: bad,
            last_flush: if publish.ok > 0 {
                commands::js_round(publish.last_time)
            } else {
                startup
            },
            last_exception: 0,
            flush_time: (publish.last_duration * 1000.0).round() as i64,
            flush_length: self.sources.publish.last_bytes(),
        }
    }
}
