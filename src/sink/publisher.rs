//! The publisher: takes each flush's payload into the backlog at once, and
//! runs attempts to deliver everything waiting. One attempt writes at a
//! time; once it has written its batch and only waits for carbon's
//! confirmation, the next may start on a new connection, up to
//! `max_unconfirmed` in flight (a peer that never reads one connection
//! holds back only that one's lines, until it times out). A failed
//! attempt's lines are retried after 0.5 s, 1 s, 2 s ... up to the flush interval.
//! Payloads keep arriving (and counting, and obeying the bound) while an
//! attempt is stuck. When the flushes end (shutdown), attempts go on for
//! at most the shutdown budget; what is left then is reported lost.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::backlog::{AttemptId, Removed};
use super::{Backlog, BacklogLimits, Confirmation, Deliver, Payload, PublishError, PublishStats};
use crate::logging::Logs;
use crate::stats::unix_now;

/// First wait before resending after a failure; doubles up to the flush interval.
const FIRST_RETRY: Duration = Duration::from_millis(500);

/// Attempts in flight at once unless told otherwise.
const DEFAULT_MAX_UNCONFIRMED: usize = crate::config::delivery::DEFAULT_MAX_UNCONFIRMED;

/// An attempt writing: it owns the target until its batch is written, then
/// gives it back with the wait for the confirmation (or the failure).
type Sending<D> = Pin<Box<dyn Future<Output = (D, Result<Confirmation, PublishError>)> + Send>>;

/// An attempt's phase, with its id and when it started.
struct InFlight<F> {
    id: AttemptId,
    started: Instant,
    phase: F,
}

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
    /// Attempts in flight at once (writing or waiting for confirmation).
    max_unconfirmed: usize,
    /// Where a reload stores the backlog's new bounds.
    live_limits: Option<Arc<ArcSwap<BacklogLimits>>>,
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
            max_unconfirmed: DEFAULT_MAX_UNCONFIRMED,
            live_limits: None,
        }
    }

    /// At most `n` attempts in flight at once (at least one).
    pub fn max_unconfirmed(mut self, n: usize) -> Publisher<D> {
        self.max_unconfirmed = n.max(1);
        self
    }

    /// Lets a reload change the target: `retarget` is asked before each
    /// attempt (the backlog stays; it goes to the new target).
    pub fn with_retarget(mut self, retarget: Retarget<D>) -> Publisher<D> {
        self.retarget = Some(retarget);
        self
    }

    /// Takes the backlog's bounds from `limits` as each payload arrives
    /// (a reload may store new ones there).
    pub fn with_live_limits(mut self, limits: Arc<ArcSwap<BacklogLimits>>) -> Publisher<D> {
        self.live_limits = Some(limits);
        self
    }

    /// Keeps a payload the moment it exists; the bound drops the oldest.
    fn enqueue(&mut self, payload: Payload) {
        if let Some(live) = &self.live_limits {
            let now = live.load();
            self.backlog.set_bounds(now.max_bytes, now.max_lines);
        }
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

    /// Starts an attempt at everything no attempt carries, if the target is free.
    fn start(&mut self) -> Option<InFlight<Sending<D>>> {
        if !self.backlog.has_unsent() {
            return None;
        }
        if let (Some(_), Some(retarget)) = (&self.target, &mut self.retarget) {
            if let Some(new) = retarget() {
                self.target_name = new.to_string();
                self.target = Some(new);
            }
        }
        let mut target = self.target.take()?;
        let (batch, id) = self.backlog.batch();
        let phase: Sending<D> = Box::pin(async move {
            let result = target.send(batch).await;
            (target, result)
        });
        Some(InFlight {
            id,
            started: Instant::now(),
            phase,
        })
    }

    /// Books an attempt's end; true when it delivered.
    fn finish(
        &mut self,
        id: AttemptId,
        started: Instant,
        result: Result<(), PublishError>,
    ) -> bool {
        let stats = &self.stats;
        let delivered = match result {
            Ok(()) => {
                let Removed { lines, bytes, .. } = self.backlog.delivered(id);
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
                let (first_failures, pushed_out) = self.backlog.failed(id);
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
        let mut sending: Option<InFlight<Sending<D>>> = None;
        let mut confirming: Vec<InFlight<Confirmation>> = Vec::new();
        // When the next attempt may start, and the wait that led there.
        let mut retry: Option<(Instant, Duration)> = None;
        // Set when the sender side closes: the end of the shutdown budget.
        let mut deadline: Option<Instant> = None;
        loop {
            let due = retry.is_none_or(|(at, _)| at <= Instant::now());
            let room = confirming.len() < self.max_unconfirmed;
            if sending.is_none() && room && due {
                sending = self.start();
            }
            let idle = sending.is_none() && confirming.is_empty();
            if deadline.is_some() && idle && self.backlog.is_empty() {
                return;
            }
            // Some(delivered) when an attempt ended.
            let ended = tokio::select! {
                received = payloads.recv(), if deadline.is_none() => {
                    match received {
                        Some(payload) => self.enqueue(payload),
                        None => {
                            deadline = Some(Instant::now() + final_timeout);
                            // The flushes are over: try again at once (the
                            // backoff goes on from where it was).
                            retry = retry.map(|(_, last)| (Instant::now(), last));
                        }
                    }
                    None
                }
                (id, started, (target, result)) = written(&mut sending), if sending.is_some() => {
                    sending = None;
                    self.target = Some(target);
                    match result {
                        Ok(phase) => {
                            confirming.push(InFlight { id, started, phase });
                            None
                        }
                        Err(error) => Some(self.finish(id, started, Err(error))),
                    }
                }
                (id, started, result) = any_confirmed(&mut confirming), if !confirming.is_empty() => {
                    Some(self.finish(id, started, result))
                }
                // Only a wait still to come: once due, the next start waits
                // for room, the target or payloads, which other branches bring.
                _ = sleep_until(retry.map(|(at, _)| at)), if !due => None,
                _ = sleep_until(deadline), if deadline.is_some() => break,
            };
            retry = match ended {
                None => retry,
                Some(true) => None,
                Some(false) => {
                    let wait =
                        retry.map_or(FIRST_RETRY, |(_, last)| (last * 2).min(self.max_retry));
                    Some((Instant::now() + wait, wait))
                }
            };
        }
        // The budget is spent: stuck attempts are abandoned (their payloads
        // still in the backlog, and those the bounds pushed out of them,
        // count as lost below).
        drop((sending, confirming));
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

/// The end of the writing attempt's phase; never, when there is none.
async fn written<D>(
    sending: &mut Option<InFlight<Sending<D>>>,
) -> (AttemptId, Instant, (D, Result<Confirmation, PublishError>)) {
    match sending {
        Some(attempt) => (attempt.id, attempt.started, attempt.phase.as_mut().await),
        None => std::future::pending().await,
    }
}

/// The first confirmation (or failure) of the attempts waiting, in any
/// order; that attempt leaves the list.
async fn any_confirmed(
    confirming: &mut Vec<InFlight<Confirmation>>,
) -> (AttemptId, Instant, Result<(), PublishError>) {
    poll_fn(|cx| {
        for i in 0..confirming.len() {
            if let Poll::Ready(result) = confirming[i].phase.as_mut().poll(cx) {
                let done = confirming.swap_remove(i);
                return Poll::Ready((done.id, done.started, result));
            }
        }
        Poll::Pending
    })
    .await
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
