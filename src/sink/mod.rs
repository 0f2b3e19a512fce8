//! Where rendered lines go: carbon's plaintext port (with timeouts and a
//! bounded backlog that is resent, in order, once carbon answers) or stdout.

pub mod backlog;
pub mod carbon;

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::logging::Logs;
use crate::stats::{unix_now, Counter, F64Cell};

pub use backlog::Backlog;
pub use carbon::{Carbon, PublishError};

/// First wait before resending after a failure; doubles up to the flush interval.
const FIRST_RETRY: Duration = Duration::from_millis(500);

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
    /// Carbon's plaintext listener.
    Graphite(Carbon),
    /// Standard output (`--console`).
    Console,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Graphite(c) if c.host.contains(':') => write!(f, "[{}]:{}", c.host, c.port),
            Target::Graphite(c) => write!(f, "{}:{}", c.host, c.port),
            Target::Console => f.write_str("stdout"),
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
    /// Lines delivered since start.
    pub published_lines: Counter,
    /// Lines waiting in the backlog.
    pub backlog_lines: Counter,
    /// Bytes waiting in the backlog.
    pub backlog_bytes: Counter,
    /// Lines dropped: backlog overflow, or shutdown with carbon unreachable.
    pub backlog_dropped_lines: Counter,
}

/// A way to deliver what waits: carbon, stdout, or (in tests) a fake.
pub trait Deliver: std::fmt::Display + Send {
    /// Delivers the backlog in order, removing each payload once delivered;
    /// returns the lines delivered.
    fn deliver(
        &mut self,
        backlog: &mut Backlog,
    ) -> impl Future<Output = Result<usize, PublishError>> + Send;
}

impl Deliver for Target {
    async fn deliver(&mut self, backlog: &mut Backlog) -> Result<usize, PublishError> {
        match self {
            Target::Console => {
                let mut sent = 0;
                while let Some(payload) = backlog.pop() {
                    let mut stdout = std::io::stdout().lock();
                    let _ = io::Write::write_all(&mut stdout, &payload.data);
                    let _ = io::Write::flush(&mut stdout);
                    sent += payload.lines;
                }
                Ok(sent)
            }
            Target::Graphite(carbon) => carbon::send_backlog(carbon, backlog).await,
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

/// Writes payloads to the target. Owns the backlog and its stats.
pub struct Publisher<D: Deliver = Target> {
    /// Where lines go.
    target: D,
    /// Undelivered payloads.
    backlog: Backlog,
    /// What happened, for the flush and `istats`.
    stats: Arc<PublishStats>,
    /// Rate-limited stderr.
    logs: Arc<Logs>,
    /// Longest wait between retries.
    max_retry: Duration,
}

impl<D: Deliver> Publisher<D> {
    /// A publisher with an empty backlog bounded as given.
    pub fn new(
        target: D,
        limits: BacklogLimits,
        stats: Arc<PublishStats>,
        logs: Arc<Logs>,
        max_retry: Duration,
    ) -> Publisher<D> {
        Publisher {
            target,
            backlog: Backlog::new(limits.max_bytes, limits.max_lines),
            stats,
            logs,
            max_retry: max_retry.max(FIRST_RETRY),
        }
    }

    fn enqueue(&mut self, payload: Payload) {
        let dropped = self.backlog.push(payload);
        if dropped > 0 {
            self.stats.backlog_dropped_lines.add(dropped as u64);
            self.logs.publish.error(|| {
                format!("publish backlog full: dropped the oldest {dropped} lines (see backlog.dropped_lines)")
            });
        }
    }

    /// One attempt to deliver everything waiting. `from_flush` marks the
    /// first attempt for a new flush, which counts in `flush_errors`.
    async fn attempt(&mut self, from_flush: bool) -> bool {
        let started = Instant::now();
        let result = self.target.deliver(&mut self.backlog).await;
        let stats = &self.stats;
        stats.backlog_lines.set(self.backlog.lines() as u64);
        stats.backlog_bytes.set(self.backlog.bytes() as u64);
        match result {
            Ok(sent) => {
                stats.ok.incr();
                stats.last_duration.set(started.elapsed().as_secs_f64());
                stats.last_time.set(unix_now());
                stats.last_lines.set(sent as u64);
                stats.published_lines.add(sent as u64);
                true
            }
            Err(error) => {
                match error {
                    PublishError::Socket(_) => stats.error_socket.incr(),
                    PublishError::Unknown(_) => stats.error_unknown.incr(),
                }
                if from_flush {
                    stats.flush_errors.incr();
                }
                let waiting = self.backlog.lines();
                let target = &self.target;
                self.logs.publish.error(|| {
                    format!(
                        "publish to {target} failed: {error}; {waiting} lines kept for resending"
                    )
                });
                false
            }
        }
    }

    /// Runs until the sender side closes, then makes a last attempt bounded
    /// by `final_timeout` and reports whatever could not be delivered. An
    /// attempt still running when the sender side closes (carbon stalled at
    /// SIGTERM) is bounded by the same `final_timeout`.
    pub async fn run(
        mut self,
        mut payloads: mpsc::UnboundedReceiver<Payload>,
        final_timeout: Duration,
    ) {
        let mut retry: Option<(Instant, Duration)> = None;
        // Set when the sender side closes: the end of the shutdown budget.
        let mut deadline: Option<Instant> = None;
        while deadline.is_none() {
            let from_flush = tokio::select! {
                received = payloads.recv() => match received {
                    Some(payload) => {
                        self.enqueue(payload);
                        true
                    }
                    None => break,
                },
                _ = sleep_until(retry.map(|r| r.0)) => false,
            };
            while let Ok(payload) = payloads.try_recv() {
                self.enqueue(payload);
            }
            if self.backlog.is_empty() {
                retry = None;
                continue;
            }
            // Payloads arriving meanwhile wait here; the end of the stream
            // starts the shutdown budget, which also bounds this attempt (a
            // cut attempt keeps its payload whole in the backlog).
            let mut arrived = Vec::new();
            let delivered = {
                let attempt = self.attempt(from_flush);
                tokio::pin!(attempt);
                loop {
                    tokio::select! {
                        delivered = &mut attempt => break delivered,
                        received = payloads.recv(), if deadline.is_none() => match received {
                            Some(payload) => arrived.push(payload),
                            None => deadline = Some(Instant::now() + final_timeout),
                        },
                        _ = sleep_until(deadline), if deadline.is_some() => break false,
                    }
                }
            };
            for payload in arrived {
                self.enqueue(payload);
            }
            if delivered {
                retry = None;
            } else {
                let wait = retry.map_or(FIRST_RETRY, |r| (r.1 * 2).min(self.max_retry));
                retry = Some((Instant::now() + wait, wait));
            }
        }
        if self.backlog.is_empty() {
            return;
        }
        let left = deadline.map_or(final_timeout, |d| {
            d.saturating_duration_since(Instant::now())
        });
        let delivered = tokio::time::timeout(left, self.attempt(true)).await;
        if !matches!(delivered, Ok(true)) {
            let lost = self.backlog.lines();
            self.stats.backlog_dropped_lines.add(lost as u64);
            crate::logging::eprint_line(&format!(
                "statsd: shutting down with carbon at {} unreachable: {lost} lines lost",
                self.target
            ));
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
