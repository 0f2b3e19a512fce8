//! The publisher's retry and deadline logic on a paused clock: a scripted
//! carbon records when each attempt came.

use super::*;
use crate::logging::Logs;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Fails `failures` times, then delivers everything; or never answers.
struct Scripted {
    /// Attempts still to fail.
    failures: usize,
    /// Never answer at all (carbon stalled).
    hang: bool,
    /// How long each attempt takes (carbon reading slowly).
    delay: Duration,
    /// When each attempt came, from the test's start.
    attempts: Attempts,
    /// The test's start.
    start: Instant,
}

type Attempts = Arc<parking_lot::Mutex<Vec<Duration>>>;

impl std::fmt::Display for Scripted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("scripted carbon")
    }
}

impl Deliver for Scripted {
    async fn deliver(&mut self, _batch: &[Arc<Payload>]) -> Result<(), PublishError> {
        self.attempts.lock().push(self.start.elapsed());
        if self.hang {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(self.delay).await;
        if self.failures > 0 {
            self.failures -= 1;
            return Err(PublishError::Socket(
                io::ErrorKind::ConnectionRefused.into(),
            ));
        }
        Ok(())
    }
}

fn publisher(failures: usize, hang: bool) -> (Publisher<Scripted>, Arc<PublishStats>, Attempts) {
    bounded_publisher(failures, hang, 1 << 20)
}

fn bounded_publisher(
    failures: usize,
    hang: bool,
    max_bytes: usize,
) -> (Publisher<Scripted>, Arc<PublishStats>, Attempts) {
    let attempts = Attempts::default();
    let stats = Arc::new(PublishStats::default());
    let target = Scripted {
        failures,
        hang,
        delay: Duration::ZERO,
        attempts: attempts.clone(),
        start: Instant::now(),
    };
    let limits = BacklogLimits {
        max_bytes,
        max_lines: 0,
    };
    let publisher = Publisher::new(
        target,
        limits,
        stats.clone(),
        Arc::new(Logs::default()),
        Duration::from_secs(4),
    );
    (publisher, stats, attempts)
}

fn secs(list: &[Duration]) -> Vec<f64> {
    list.iter().map(Duration::as_secs_f64).collect()
}

fn payload(lines: usize) -> Payload {
    Payload {
        data: vec![b'x'; lines * 10],
        lines,
    }
}

#[tokio::test(start_paused = true)]
async fn retries_double_up_to_the_interval_then_deliver() {
    let (publisher, stats, attempts) = publisher(5, false);
    let (payloads, incoming) = mpsc::unbounded_channel();
    payloads.send(payload(7)).unwrap();
    let run = tokio::spawn(publisher.run(incoming, Duration::from_secs(5)));
    tokio::time::sleep(Duration::from_secs(60)).await;
    drop(payloads);
    run.await.unwrap();
    // 0.5 s, then doubling, capped at the 4 s interval.
    assert_eq!(
        secs(&attempts.lock()),
        [0.0, 0.5, 1.5, 3.5, 7.5, 11.5],
        "attempt times"
    );
    assert_eq!(stats.error_socket.get(), 5);
    assert_eq!(stats.flush_errors.get(), 1, "one flush, counted once");
    assert_eq!((stats.ok.get(), stats.published_lines.get()), (1, 7));
    assert_eq!(stats.backlog_lines.get(), 0);
    assert_eq!(stats.backlog_dropped_lines.get(), 0);
}

#[tokio::test(start_paused = true)]
async fn shutdown_deadline_bounds_a_stalled_attempt() {
    let (publisher, stats, attempts) = publisher(0, true);
    let (payloads, incoming) = mpsc::unbounded_channel();
    payloads.send(payload(3)).unwrap();
    let started = Instant::now();
    let run = tokio::spawn(publisher.run(incoming, Duration::from_secs(5)));
    tokio::time::sleep(Duration::from_secs(1)).await;
    drop(payloads);
    run.await.unwrap();
    // The stream ends at 1 s; its 5 s budget ends the stalled attempt.
    assert_eq!(started.elapsed(), Duration::from_secs(6));
    assert_eq!(secs(&attempts.lock()), [0.0]);
    assert_eq!(stats.backlog_dropped_lines.get(), 3, "the loss is counted");
    assert_eq!(stats.ok.get(), 0);
}

#[tokio::test(start_paused = true)]
async fn failing_carbon_at_shutdown_is_retried_within_the_budget() {
    let (publisher, stats, attempts) = publisher(usize::MAX, false);
    let (payloads, incoming) = mpsc::unbounded_channel();
    payloads.send(payload(2)).unwrap();
    let run = tokio::spawn(publisher.run(incoming, Duration::from_secs(5)));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    drop(payloads);
    run.await.unwrap();
    // At the close (1 s) at once, then backing off until the budget (6 s).
    assert_eq!(secs(&attempts.lock()), [0.0, 0.5, 1.0, 3.0]);
    assert_eq!(stats.backlog_dropped_lines.get(), 2);
    assert_eq!(stats.flush_errors.get(), 1, "one flush, counted once");
    assert_eq!(stats.error_socket.get(), 4);
}

#[tokio::test(start_paused = true)]
async fn payloads_during_a_stuck_attempt_are_in_the_backlog_and_bounded() {
    let (publisher, stats, _attempts) = bounded_publisher(0, true, 250);
    let (payloads, incoming) = mpsc::unbounded_channel();
    let run = tokio::spawn(publisher.run(incoming, Duration::from_secs(1)));
    for _ in 0..5 {
        payloads.send(payload(10)).unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // 100 bytes each, 250 kept: two in the backlog, two dropped, counted;
    // the first, pushed out too, is the stuck attempt's: it counts once
    // that attempt ends (dropped if it fails, published if it delivers).
    assert_eq!(stats.backlog_bytes.get(), 200);
    assert_eq!(stats.backlog_lines.get(), 20);
    assert_eq!(stats.backlog_dropped_lines.get(), 20);
    drop(payloads);
    run.await.unwrap();
    assert_eq!(
        stats.backlog_dropped_lines.get(),
        50,
        "the rest is lost at the end, counted"
    );
}

#[tokio::test(start_paused = true)]
async fn payloads_pushed_out_of_a_slow_attempt_that_delivers_count_as_published() {
    let attempts = Attempts::default();
    let stats = Arc::new(PublishStats::default());
    let target = Scripted {
        failures: 0,
        hang: false,
        delay: Duration::from_secs(3),
        attempts: attempts.clone(),
        start: Instant::now(),
    };
    let limits = BacklogLimits {
        max_bytes: 250,
        max_lines: 0,
    };
    let publisher = Publisher::new(
        target,
        limits,
        stats.clone(),
        Arc::new(Logs::default()),
        Duration::from_secs(4),
    );
    let (payloads, incoming) = mpsc::unbounded_channel();
    let run = tokio::spawn(publisher.run(incoming, Duration::from_secs(10)));
    // The first attempt (0 to 3 s) sends the first payload; the third one,
    // at 2 s, pushes it out of the backlog (300 bytes > 250).
    for _ in 0..3 {
        payloads.send(payload(10)).unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(stats.backlog_lines.get(), 20);
    assert_eq!(stats.backlog_dropped_lines.get(), 0, "it is being sent");
    drop(payloads);
    run.await.unwrap();
    assert_eq!(secs(&attempts.lock()), [0.0, 3.0]);
    assert_eq!(stats.published_lines.get(), 30, "carbon got all three");
    assert_eq!(stats.backlog_dropped_lines.get(), 0);
    assert_eq!(stats.backlog_lines.get(), 0);
}

#[tokio::test(start_paused = true)]
async fn new_backlog_bounds_apply_from_the_next_payload() {
    // Carbon down throughout: everything waits in the backlog.
    let (publisher, stats, _attempts) = bounded_publisher(usize::MAX, false, 1 << 20);
    let live = Arc::new(arc_swap::ArcSwap::from_pointee(BacklogLimits {
        max_bytes: 1 << 20,
        max_lines: 0,
    }));
    let publisher = publisher.with_live_limits(live.clone());
    let (payloads, incoming) = mpsc::unbounded_channel();
    let run = tokio::spawn(publisher.run(incoming, Duration::from_secs(1)));
    for _ in 0..3 {
        payloads.send(payload(10)).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(stats.backlog_lines.get(), 30);
    // A reload halves the line bound: the next payload pushes out the oldest.
    live.store(Arc::new(BacklogLimits {
        max_bytes: 1 << 20,
        max_lines: 20,
    }));
    payloads.send(payload(10)).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(stats.backlog_lines.get(), 20);
    assert_eq!(
        stats.backlog_dropped_lines.get(),
        20,
        "counted, never silent"
    );
    drop(payloads);
    run.await.unwrap();
}
