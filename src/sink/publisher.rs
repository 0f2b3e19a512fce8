//! The publisher: takes each flush's payload into the backlog at once, and
//! runs one attempt at a time to deliver everything waiting; a failed
//! attempt is retried after 0.5 s, 1 s, 2 s ... up to the flush interval.
//! Payloads keep arriving (and counting, and obeying the bound) while an
//! attempt is stuck. When the flushes end (shutdown), attempts go on for
//! at most the shutdown budget; what is left then is reported lost.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::backlog::Removed;
use super::{Backlog, BacklogLimits, Deliver, Payload, PublishError, PublishStats};
use crate::logging::Logs;
use crate::stats::unix_now;

/// First wait before resending after a failure; doubles up to the flush interval.
const FIRST_RETRY: Duration = Duration::from_millis(500);

/// An attempt under way: it owns the target until it ends, then gives it
/// back with the last sequence it carried and its result.
type Attempt<D> = Pin<Box<dyn Future<Output = (D, u64, Result<(), PublishError>)> + Send>>;

/// Writes payloads to the target. Owns the backlog and its stats.
pub struct Publisher<D: Deliver = super::Target> {
    /// Where lines go; `None` while an attempt holds it.
    target: Option<D>,
    /// How the target is named in messages.
    target_name: String,
    /// Everything not yet delivered.
    backlog: Backlog,
    /// What happened, for the flush and `istats`.
    stats: Arc<PublishStats>,
    /// Rate-limited stderr.
    logs: Arc<Logs>,
    /// Longest wait between retries.
    max_retry: Duration,
    /// A new target stored by a reload, taken between attempts.
    retarget: Option<Retarget<D>>,
}

/// Gives a new target when a reload stored one since the last call.
pub type Retarget<D> = Box<dyn FnMut() -> Option<D> + Send>;

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
            target_name: target.to_string(),
            target: Some(target),
            backlog: Backlog::new(limits.max_bytes, limits.max_lines),
            stats,
            logs,
            max_retry: max_retry.max(FIRST_RETRY),
            retarget: None,
        }
    }

    /// Lets a reload change the target: `retarget` is asked before each
    /// attempt (the backlog stays; it goes to the new target).
    pub fn with_retarget(mut self, retarget: Retarget<D>) -> Publisher<D> {
        self.retarget = Some(retarget);
        self
    }

    /// Keeps a payload the moment it exists; the bound drops the oldest.
    fn enqueue(&mut self, payload: Payload) {
        let dropped = self.backlog.push(payload);
        self.count_dropped(dropped.lines);
        self.show_backlog();
    }

    /// Counts and reports lines the backlog's bounds dropped.
    fn count_dropped(&self, lines: usize) {
        if lines > 0 {
            self.stats.backlog_dropped_lines.add(lines as u64);
            self.logs.publish.error(|| {
                format!("publish backlog full: dropped the oldest {lines} lines (see backlog.dropped_lines)")
            });
        }
    }

    fn show_backlog(&self) {
        self.stats.backlog_lines.set(self.backlog.lines() as u64);
        self.stats.backlog_bytes.set(self.backlog.bytes() as u64);
    }

    /// Starts an attempt at everything waiting, if the target is free.
    fn start(&mut self) -> Option<Attempt<D>> {
        if self.backlog.is_empty() {
            return None;
        }
        if let (Some(_), Some(retarget)) = (&self.target, &mut self.retarget) {
            if let Some(new) = retarget() {
                self.target_name = new.to_string();
                self.target = Some(new);
            }
        }
        let mut target = self.target.take()?;
        let (batch, seq) = self.backlog.batch();
        Some(Box::pin(async move {
            let result = target.deliver(&batch).await;
            (target, seq, result)
        }))
    }

    /// Books an attempt's end; true when it delivered.
    fn finish(&mut self, seq: u64, started: Instant, result: Result<(), PublishError>) -> bool {
        let stats = &self.stats;
        let delivered = match result {
            Ok(()) => {
                let Removed { lines, bytes, .. } = self.backlog.delivered(seq);
                stats.ok.incr();
                stats.last_duration.set(started.elapsed().as_secs_f64());
                stats.last_time.set(unix_now());
                stats.last_lines.set(lines as u64);
                stats.last_bytes.set(bytes as u64);
                stats.published_lines.add(lines as u64);
                true
            }
            Err(error) => {
                match error {
                    PublishError::Socket(_) => stats.error_socket.incr(),
                    PublishError::Unknown(_) => stats.error_unknown.incr(),
                }
                // Each flush counts once, however many attempts it takes.
                let (first_failures, pushed_out) = self.backlog.failed(seq);
                stats.flush_errors.add(first_failures as u64);
                self.count_dropped(pushed_out.lines);
                let waiting = self.backlog.lines();
                let target = &self.target_name;
                self.logs.publish.error(|| {
                    format!(
                        "publish to {target} failed: {error}; {waiting} lines kept for resending"
                    )
                });
                false
            }
        };
        self.show_backlog();
        delivered
    }

    /// Runs until the sender side closes and everything is delivered, or
    /// the shutdown budget `final_timeout` (counted from the close) ends;
    /// whatever is left then is counted and reported lost.
    pub async fn run(
        mut self,
        mut payloads: mpsc::UnboundedReceiver<Payload>,
        final_timeout: Duration,
    ) {
        let mut attempt: Option<(Attempt<D>, Instant)> = None;
        // When the next attempt may start, and the wait that led there.
        let mut retry: Option<(Instant, Duration)> = None;
        // Set when the sender side closes: the end of the shutdown budget.
        let mut deadline: Option<Instant> = None;
        loop {
            let due = retry.is_none_or(|(at, _)| at <= Instant::now());
            if attempt.is_none() && due {
                attempt = self.start().map(|a| (a, Instant::now()));
            }
            if deadline.is_some() && attempt.is_none() && self.backlog.is_empty() {
                return;
            }
            tokio::select! {
                received = payloads.recv(), if deadline.is_none() => match received {
                    Some(payload) => self.enqueue(payload),
                    None => {
                        deadline = Some(Instant::now() + final_timeout);
                        // The flushes are over: try again at once (the
                        // backoff goes on from where it was).
                        retry = retry.map(|(_, last)| (Instant::now(), last));
                    }
                },
                ((target, seq, result), started) = finished(&mut attempt), if attempt.is_some() => {
                    attempt = None;
                    self.target = Some(target);
                    retry = if self.finish(seq, started, result) {
                        None
                    } else {
                        let wait = retry.map_or(FIRST_RETRY, |(_, last)| (last * 2).min(self.max_retry));
                        Some((Instant::now() + wait, wait))
                    };
                },
                _ = sleep_until(retry.map(|(at, _)| at)), if attempt.is_none() && retry.is_some() => {},
                _ = sleep_until(deadline), if deadline.is_some() => break,
            }
        }
        // The budget is spent: a stuck attempt is abandoned (its payloads
        // still in the backlog, and those the bounds pushed out of it, count
        // as lost below).
        drop(attempt);
        let lost = self.backlog.lines() + self.backlog.end_attempt().lines;
        if lost > 0 {
            self.stats.backlog_dropped_lines.add(lost as u64);
            crate::logging::eprint_line(&format!(
                "statsd: shutting down with carbon at {} unreachable: {lost} lines lost",
                self.target_name
            ));
        }
    }
}

/// The end of the attempt under way; never, when there is none.
async fn finished<D>(
    attempt: &mut Option<(Attempt<D>, Instant)>,
) -> ((D, u64, Result<(), PublishError>), Instant) {
    match attempt {
        Some((running, started)) => (running.await, *started),
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
