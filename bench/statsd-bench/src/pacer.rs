//! Token-bucket pacing against the monotonic clock, one token per line.

use std::time::{Duration, Instant};

/// Decides how many datagrams may go now; `Err` means sleep that long first.
pub(crate) struct Pacer {
    rate: f64,
    start: Instant,
    /// Lines' worth of tokens forfeited because the sender fell behind by more
    /// than the burst cap (descheduled on a busy machine); keeps catch-up
    /// bursts short.
    forfeited: f64,
    /// Whether we already slept once waiting for a full batch.
    waited: bool,
}

impl Pacer {
    /// Longest sleep while waiting for a full batch: bounds burstiness at low
    /// rates while keeping wake-ups (and our CPU use) to about 1000 a second.
    const MAX_BATCH_WAIT: f64 = 0.001;
    /// Catch-up allowance after falling behind, in seconds of traffic.
    const BURST: f64 = 0.05;

    /// `rate` in lines per second; 0 or less means unpaced.
    pub(crate) fn new(rate: f64, start: Instant) -> Self {
        Pacer {
            rate,
            start,
            forfeited: 0.0,
            waited: false,
        }
    }

    pub(crate) fn admit(
        &mut self,
        sent_lines: u64,
        lpd: usize,
        batch: usize,
    ) -> Result<usize, Duration> {
        if self.rate <= 0.0 {
            return Ok(batch);
        }
        let elapsed = self.start.elapsed().as_secs_f64();
        let mut tokens = self.rate * elapsed - self.forfeited - sent_lines as f64;
        let full = (batch * lpd) as f64;
        let cap = (self.rate * Self::BURST).max(full);
        if tokens > cap {
            self.forfeited += tokens - cap;
            tokens = cap;
        }
        if tokens >= full {
            self.waited = false;
            return Ok(batch);
        }
        if !self.waited {
            self.waited = true;
            let to_full = (full - tokens) / self.rate;
            return Err(Duration::from_secs_f64(
                to_full.clamp(10e-6, Self::MAX_BATCH_WAIT),
            ));
        }
        if tokens >= lpd as f64 {
            self.waited = false;
            return Ok((tokens / lpd as f64) as usize);
        }
        Err(Duration::from_secs_f64(
            ((lpd as f64 - tokens) / self.rate).max(10e-6),
        ))
    }
}

/// Sleeps for `wait`, but never past `deadline`.
pub(crate) fn sleep_until_or(wait: Duration, deadline: Instant) {
    let left = deadline.saturating_duration_since(Instant::now());
    std::thread::sleep(wait.min(left));
}
