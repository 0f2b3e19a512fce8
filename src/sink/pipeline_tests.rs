//! Pipelined attempts on a paused clock: a scripted carbon whose
//! confirmations take as long as the test says, in any order.

use super::*;
use crate::logging::Logs;
use parking_lot::Mutex;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Writes at once; attempt `n` is confirmed after `waits[n]` (the last one
/// for the rest). Records how many attempts were in flight at most.
struct Confirming {
    waits: Vec<Duration>,
    started: usize,
    in_flight: Arc<Mutex<(usize, usize)>>,
}

impl std::fmt::Display for Confirming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("confirming carbon")
    }
}

impl Deliver for Confirming {
    async fn deliver(&mut self, _batch: &[Arc<Payload>]) -> Result<(), PublishError> {
        unreachable!("the publisher sends")
    }

    async fn send(&mut self, _batch: Vec<Arc<Payload>>) -> Result<Confirmation, PublishError> {
        let wait = self.waits[self.started.min(self.waits.len() - 1)];
        self.started += 1;
        let in_flight = self.in_flight.clone();
        {
            let mut count = in_flight.lock();
            count.0 += 1;
            count.1 = count.1.max(count.0);
        }
        Ok(Box::pin(async move {
            tokio::time::sleep(wait).await;
            in_flight.lock().0 -= 1;
            Ok(())
        }))
    }
}

fn payload(lines: usize) -> Payload {
    Payload {
        data: vec![b'x'; lines * 10],
        lines,
    }
}

#[tokio::test(start_paused = true)]
async fn later_attempts_are_confirmed_while_the_first_waits_and_shutdown_waits_for_it() {
    let in_flight = Arc::new(Mutex::new((0, 0)));
    let target = Confirming {
        waits: vec![
            Duration::from_secs(10),
            Duration::from_millis(1500),
            Duration::from_millis(100),
        ],
        started: 0,
        in_flight: in_flight.clone(),
    };
    let stats = Arc::new(PublishStats::default());
    let limits = BacklogLimits {
        max_bytes: 1 << 20,
        max_lines: 0,
    };
    let publisher = Publisher::new(
        target,
        limits,
        stats.clone(),
        Arc::new(Logs::default()),
        Duration::from_secs(1),
    )
    .max_unconfirmed(2);
    let (payloads, incoming) = mpsc::unbounded_channel();
    let started = Instant::now();
    let run = tokio::spawn(publisher.run(incoming, Duration::from_secs(30)));
    for lines in [1, 2, 4] {
        payloads.send(payload(lines)).unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // The first (1 line) still waits; the second was confirmed at 2.5 s,
    // and only then could the third start (two in flight at most).
    assert_eq!(stats.published_lines.get(), 6);
    assert_eq!(stats.backlog_lines.get(), 1);
    drop(payloads);
    run.await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(10), "it waited");
    assert_eq!(stats.published_lines.get(), 7);
    assert_eq!((stats.ok.get(), stats.backlog_dropped_lines.get()), (3, 0));
    assert_eq!(
        in_flight.lock().1,
        2,
        "never more than --graphite-max-unconfirmed"
    );
}
