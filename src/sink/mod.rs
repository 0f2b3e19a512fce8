//! Where rendered lines go: carbon's plaintext or pickle port, or stdout. Everything
//! not yet delivered waits in a bounded backlog and is resent, in order and
//! with its original timestamps, until carbon confirms it read it.
//!
//! - [`backlog`]: what waits, bounded, from the moment it exists.
//! - [`carbon`]: one attempt: connect, write, wait for carbon's close.
//! - [`fanout`]: several destinations: each flush split by the ring, one publisher each.
//! - [`pickle`]: plaintext lines -> carbon's pickle frames (pure).
//! - [`publisher`]: attempts, retries, the shutdown budget, the stats.
//! - [`ring`]: carbon's consistent-hashing ring (which cache holds a name).

pub mod backlog;
pub mod carbon;
pub mod fanout;
pub mod pickle;
pub mod publisher;
pub mod ring;

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;

use crate::stats::{Counter, F64Cell};

pub use backlog::Backlog;
pub use carbon::{Carbon, GraphiteProtocol, PublishError};
pub use fanout::{Destination, Fanout, Spread};
pub use publisher::Publisher;

/// The lines of one flush, timestamps included, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// Graphite plaintext lines.
    pub data: Vec<u8>,
    /// Number of lines in `data`.
    pub lines: usize,
}

/// Where payloads are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Carbon's plaintext or pickle listener.
    Graphite(Carbon),
    /// Standard output (`--console`).
    Console,
    /// No carbon (`--graphite-host none`, or an Etsy config without
    /// `graphiteHost`): flushes are computed and sent nowhere.
    Nowhere,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Graphite(c) if c.host.contains(':') => write!(f, "[{}]:{}", c.host, c.port),
            Target::Graphite(c) => write!(f, "{}:{}", c.host, c.port),
            Target::Console => f.write_str("stdout"),
            Target::Nowhere => f.write_str("nowhere (--graphite-host none)"),
        }
    }
}

/// Bounds on what waits for carbon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BacklogLimits {
    /// Bytes kept; the oldest beyond are dropped and counted.
    pub max_bytes: usize,
    /// Lines kept (0 = only the byte bound).
    pub max_lines: usize,
}

/// What the publisher counts (SPEC `publish_error.*`, `last_publish.*`, ...).
#[derive(Debug, Default)]
pub struct PublishStats {
    /// Publishes that succeeded.
    pub ok: Counter,
    /// Publishes that failed on the network.
    pub error_socket: Counter,
    /// Publishes that failed otherwise (name resolution, ...).
    pub error_unknown: Counter,
    /// Flushes whose payload could not be delivered at the first attempt.
    pub flush_errors: Counter,
    /// Seconds the last successful publish took.
    pub last_duration: F64Cell,
    /// Unix time of the last successful publish.
    pub last_time: F64Cell,
    /// Lines carried by the last successful publish.
    pub last_lines: Counter,
    /// Bytes carried by the last successful publish.
    pub last_bytes: Counter,
    /// Lines delivered since start.
    pub published_lines: Counter,
    /// Lines waiting in the backlog.
    pub backlog_lines: Counter,
    /// Bytes waiting in the backlog.
    pub backlog_bytes: Counter,
    /// Lines dropped: backlog overflow, or shutdown with carbon unreachable.
    pub backlog_dropped_lines: Counter,
}

/// The rest of an attempt once its batch is written: the wait for the
/// peer's confirmation (Ok when it has every line). It needs no target, so
/// the next attempt may be sent meanwhile.
pub type Confirmation = Pin<Box<dyn Future<Output = Result<(), PublishError>> + Send>>;

/// A confirmation already there.
pub fn confirmed() -> Confirmation {
    Box::pin(std::future::ready(Ok(())))
}

/// A way to deliver what waits: carbon, stdout, or (in tests) a fake.
pub trait Deliver: std::fmt::Display + Send + 'static {
    /// Delivers every payload of `batch`, in order: Ok only when all of
    /// them are known to have arrived.
    fn deliver(
        &mut self,
        batch: &[Arc<Payload>],
    ) -> impl Future<Output = Result<(), PublishError>> + Send;

    /// Writes every payload of `batch`, in order, and returns the wait for
    /// the confirmation. By default the whole delivery is the writing.
    fn send(
        &mut self,
        batch: Vec<Arc<Payload>>,
    ) -> impl Future<Output = Result<Confirmation, PublishError>> + Send {
        async move {
            self.deliver(&batch).await?;
            Ok(confirmed())
        }
    }
}

impl Deliver for Target {
    async fn deliver(&mut self, batch: &[Arc<Payload>]) -> Result<(), PublishError> {
        self.send(batch.to_vec()).await?.await
    }

    async fn send(&mut self, batch: Vec<Arc<Payload>>) -> Result<Confirmation, PublishError> {
        match self {
            Target::Console => {
                let mut stdout = std::io::stdout().lock();
                for payload in &batch {
                    io::Write::write_all(&mut stdout, &payload.data)
                        .map_err(PublishError::Socket)?;
                }
                io::Write::flush(&mut stdout).map_err(PublishError::Socket)?;
                Ok(confirmed())
            }
            Target::Graphite(carbon) => carbon::send(carbon, &batch).await,
            // No publisher is started for it; were one, nothing is written.
            Target::Nowhere => Ok(confirmed()),
        }
    }
}

/// [`PublishStats`] read at one moment, as plain values.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PublishCounts {
    /// Publishes that succeeded.
    pub ok: u64,
    /// Publishes that failed on the network.
    pub error_socket: u64,
    /// Publishes that failed otherwise.
    pub error_unknown: u64,
    /// Flushes not delivered at the first attempt.
    pub flush_errors: u64,
    /// Seconds the last successful publish took.
    pub last_duration: f64,
    /// Unix time of the last successful publish.
    pub last_time: f64,
    /// Lines delivered since start.
    pub published_lines: u64,
    /// Lines waiting in the backlog.
    pub backlog_lines: u64,
    /// Bytes waiting in the backlog.
    pub backlog_bytes: u64,
    /// Lines dropped from the backlog.
    pub backlog_dropped_lines: u64,
}

impl PublishCounts {
    /// Adds another destination's counts: counts sum; the last publish is
    /// the latest one, its duration the longest of the last publishes.
    pub fn add(&mut self, other: &PublishCounts) {
        self.ok += other.ok;
        self.error_socket += other.error_socket;
        self.error_unknown += other.error_unknown;
        self.flush_errors += other.flush_errors;
        self.last_duration = self.last_duration.max(other.last_duration);
        self.last_time = self.last_time.max(other.last_time);
        self.published_lines += other.published_lines;
        self.backlog_lines += other.backlog_lines;
        self.backlog_bytes += other.backlog_bytes;
        self.backlog_dropped_lines += other.backlog_dropped_lines;
    }
}

/// Every destination's publisher stats, in `--graphite-host` order.
#[derive(Debug, Clone)]
pub struct PublishSources {
    /// `(<host_port> of the keys, the publisher's stats)` per destination.
    pub each: Vec<(String, Arc<PublishStats>)>,
}

impl Default for PublishSources {
    /// One destination (or stdout).
    fn default() -> Self {
        PublishSources {
            each: vec![(String::new(), Arc::default())],
        }
    }
}

impl PublishSources {
    /// Stats for these destinations, every count at zero.
    pub fn new(names: Vec<String>) -> PublishSources {
        PublishSources {
            each: names.into_iter().map(|n| (n, Arc::default())).collect(),
        }
    }

    /// Every destination together: the aggregate `publish_error.*`,
    /// `published.lines`, `backlog.*` ...
    pub fn total(&self) -> PublishCounts {
        let mut total = PublishCounts::default();
        for (_, stats) in &self.each {
            total.add(&stats.read());
        }
        total
    }

    /// Lines carried by the last successful publish of each destination, summed.
    pub fn last_lines(&self) -> u64 {
        self.each.iter().map(|(_, s)| s.last_lines.get()).sum()
    }

    /// Bytes carried by the last successful publish of each destination, summed.
    pub fn last_bytes(&self) -> u64 {
        self.each.iter().map(|(_, s)| s.last_bytes.get()).sum()
    }

    /// Per destination `(<host_port>, counts)`; none with a single
    /// destination, whose counts are the aggregate ones.
    pub fn per_destination(&self) -> Vec<(String, PublishCounts)> {
        if self.each.len() < 2 {
            return Vec::new();
        }
        self.each
            .iter()
            .map(|(name, stats)| (name.clone(), stats.read()))
            .collect()
    }
}

impl PublishStats {
    /// Every counter now.
    pub fn read(&self) -> PublishCounts {
        PublishCounts {
            ok: self.ok.get(),
            error_socket: self.error_socket.get(),
            error_unknown: self.error_unknown.get(),
            flush_errors: self.flush_errors.get(),
            last_duration: self.last_duration.get(),
            last_time: self.last_time.get(),
            published_lines: self.published_lines.get(),
            backlog_lines: self.backlog_lines.get(),
            backlog_bytes: self.backlog_bytes.get(),
            backlog_dropped_lines: self.backlog_dropped_lines.get(),
        }
    }
}

#[cfg(test)]
mod pipeline_tests;
#[cfg(test)]
mod tests;
