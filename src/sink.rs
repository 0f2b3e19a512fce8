//! Where rendered lines go: carbon's plaintext port (with timeouts and a
//! bounded backlog that is resent, in order, once carbon answers) or stdout.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::logging::Logs;
use crate::stats::{unix_now, ServerStats};

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

/// Where carbon listens and how long to wait for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Carbon {
    /// Host name or address.
    pub host: String,
    /// Plaintext port.
    pub port: u16,
    /// Bound on name resolution plus connect.
    pub connect_timeout: Duration,
    /// Bound on each write (and the closing shutdown).
    pub write_timeout: Duration,
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

/// Payloads not yet delivered, oldest first, bounded in bytes and lines.
#[derive(Debug, Default)]
pub struct Backlog {
    /// The payloads, oldest first.
    queue: VecDeque<Payload>,
    /// Bytes held.
    bytes: usize,
    /// Lines held.
    lines: usize,
    /// Byte bound; the newest payload is always kept.
    max_bytes: usize,
    /// Line bound (0 = none); the newest payload is always kept.
    max_lines: usize,
}

impl Backlog {
    /// An empty backlog with these bounds.
    pub fn new(max_bytes: usize, max_lines: usize) -> Backlog {
        Backlog {
            max_bytes,
            max_lines,
            ..Backlog::default()
        }
    }

    /// Adds a payload; returns the number of lines dropped, oldest first, to
    /// stay within the bounds.
    pub fn push(&mut self, payload: Payload) -> usize {
        self.bytes += payload.data.len();
        self.lines += payload.lines;
        self.queue.push_back(payload);
        let mut dropped = 0;
        while self.queue.len() > 1
            && (self.bytes > self.max_bytes || (self.max_lines > 0 && self.lines > self.max_lines))
        {
            if let Some(old) = self.pop() {
                dropped += old.lines;
            }
        }
        dropped
    }

    fn pop(&mut self) -> Option<Payload> {
        let old = self.queue.pop_front()?;
        self.bytes -= old.data.len();
        self.lines -= old.lines;
        Some(old)
    }

    /// Lines held.
    pub fn lines(&self) -> usize {
        self.lines
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

/// Why a publish failed, as SPEC section 6 counts it.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Connect, write or close failed or timed out.
    #[error("{0}")]
    Socket(io::Error),
    /// Anything else (the carbon host name does not resolve, ...).
    #[error("{0}")]
    Unknown(String),
}

/// Connects and writes the backlog in order; each payload written whole is
/// removed at once so a later failure never resends it.
async fn send_backlog(carbon: &Carbon, backlog: &mut Backlog) -> Result<usize, PublishError> {
    let (host, port) = (carbon.host.as_str(), carbon.port);
    let addrs: Vec<_> = tokio::time::timeout(
        carbon.connect_timeout,
        tokio::net::lookup_host((host, port)),
    )
    .await
    .map_err(|_| PublishError::Unknown(format!("resolving {host} timed out")))?
    .map_err(|e| PublishError::Unknown(format!("cannot resolve {host}: {e}")))?
    .collect();
    let mut last_error = io::Error::new(io::ErrorKind::NotFound, "no address");
    let mut stream = None;
    for addr in addrs {
        match tokio::time::timeout(carbon.connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                stream = Some(s);
                break;
            }
            Ok(Err(e)) => last_error = e,
            Err(_) => {
                last_error = io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connect timed out after {:?}", carbon.connect_timeout),
                )
            }
        }
    }
    let mut stream = stream.ok_or_else(|| {
        if last_error.kind() == io::ErrorKind::NotFound {
            PublishError::Unknown(format!("{host} has no address"))
        } else {
            PublishError::Socket(last_error)
        }
    })?;
    let mut sent = 0;
    while let Some(payload) = backlog.queue.front() {
        match tokio::time::timeout(carbon.write_timeout, stream.write_all(&payload.data)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(PublishError::Socket(e)),
            Err(_) => {
                return Err(PublishError::Socket(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("write timed out after {:?}", carbon.write_timeout),
                )))
            }
        }
        if let Some(done) = backlog.pop() {
            sent += done.lines;
        }
    }
    // A clean close makes carbon see the end of the last line at once.
    let _ = tokio::time::timeout(carbon.write_timeout, stream.shutdown()).await;
    Ok(sent)
}

/// Writes payloads to the target. Owns the backlog; shares stats.
pub struct Publisher {
    /// Where lines go.
    target: Target,
    /// Undelivered payloads.
    backlog: Backlog,
    /// The server's stats (publish counters, backlog size).
    stats: Arc<Mutex<ServerStats>>,
    /// Rate-limited stderr.
    logs: Arc<Logs>,
    /// Longest wait between retries.
    max_retry: Duration,
}

impl Publisher {
    /// A publisher with an empty backlog bounded as given.
    pub fn new(
        target: Target,
        max_bytes: usize,
        max_lines: usize,
        stats: Arc<Mutex<ServerStats>>,
        logs: Arc<Logs>,
        max_retry: Duration,
    ) -> Publisher {
        Publisher {
            target,
            backlog: Backlog::new(max_bytes, max_lines),
            stats,
            logs,
            max_retry: max_retry.max(FIRST_RETRY),
        }
    }

    fn enqueue(&mut self, payload: Payload) {
        let dropped = self.backlog.push(payload);
        if dropped > 0 {
            self.stats.lock().backlog_dropped_lines += dropped as u64;
            self.logs.publish.error(|| {
                format!("publish backlog full: dropped the oldest {dropped} lines (see backlog.dropped_lines)")
            });
        }
    }

    /// One attempt to deliver everything waiting. `from_flush` marks the
    /// first attempt for a new flush, which counts in `flush_errors`.
    async fn attempt(&mut self, from_flush: bool) -> bool {
        let started = Instant::now();
        let result = match &self.target {
            Target::Console => {
                let mut sent = 0;
                while let Some(payload) = self.backlog.pop() {
                    let mut stdout = std::io::stdout().lock();
                    let _ = io::Write::write_all(&mut stdout, &payload.data);
                    let _ = io::Write::flush(&mut stdout);
                    sent += payload.lines;
                }
                Ok(sent)
            }
            Target::Graphite(carbon) => {
                let carbon = carbon.clone();
                send_backlog(&carbon, &mut self.backlog).await
            }
        };
        let mut stats = self.stats.lock();
        stats.backlog_lines = self.backlog.lines() as u64;
        stats.backlog_bytes = self.backlog.bytes() as u64;
        match result {
            Ok(sent) => {
                stats.publish_ok += 1;
                stats.last_publish_duration = started.elapsed().as_secs_f64();
                stats.last_publish_time = unix_now();
                stats.last_publish_lines = sent as u64;
                stats.published_lines += sent as u64;
                true
            }
            Err(error) => {
                match error {
                    PublishError::Socket(_) => stats.publish_error_socket += 1,
                    PublishError::Unknown(_) => stats.publish_error_unknown += 1,
                }
                if from_flush {
                    stats.flush_errors += 1;
                }
                let waiting = self.backlog.lines();
                drop(stats);
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
            self.stats.lock().backlog_dropped_lines += lost as u64;
            crate::logging::eprint_line(&format!(
                "statsd: shutting down with carbon at {} unreachable: {lost} lines lost",
                self.target
            ));
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(lines: usize) -> Payload {
        Payload {
            data: vec![b'x'; lines * 10],
            lines,
        }
    }

    #[test]
    fn backlog_drops_oldest_beyond_bytes() {
        let mut b = Backlog::new(250, 0);
        assert_eq!(b.push(payload(10)), 0);
        assert_eq!(b.push(payload(10)), 0);
        assert_eq!(b.push(payload(10)), 10);
        assert_eq!(b.lines(), 20);
    }

    #[test]
    fn backlog_keeps_newest_even_when_too_big() {
        let mut b = Backlog::new(5, 1);
        assert_eq!(b.push(payload(3)), 0);
        assert_eq!(b.push(payload(4)), 3);
        assert_eq!(b.lines(), 4);
    }
}
