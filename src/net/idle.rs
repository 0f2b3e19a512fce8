//! The pause after a receive call that emptied the queue (see [`IdlePause`]).

use std::time::{Duration, Instant};

/// Longest pause after a receive call that emptied the queue (see `IdlePause`).
const IDLE_PAUSE_MAX: Duration = Duration::from_millis(10);
/// Pauses shorter than this are not worth a sleep.
const IDLE_PAUSE_MIN: Duration = Duration::from_micros(20);
/// Kernel bookkeeping per queued datagram beyond its payload until measured
/// (skb truesize: 1280 bytes for a 340-byte datagram on loopback; generous
/// on purpose).
const SKB_OVERHEAD: usize = 2048;
/// Datagrams per second a pause must survive without overflowing half the
/// receive buffer, however quiet the socket was before: about what one
/// sender on loopback can offer.
const BURST_RATE: f64 = 250_000.0;

/// After a receive call that emptied the queue, waits a little so the next
/// call takes many datagrams instead of waking up for each one: most of the
/// CPU per datagram at moderate rates is the wake-up. The arrival rate is
/// measured over the whole last cycle (pause, wait and work), and the wait
/// lets the queue fill at most an eighth of the receive buffer at that rate.
/// It is also capped so that a burst at [`BURST_RATE`] arriving during the
/// pause fills at most half the buffer: with a stock kernel's 208 KiB that is
/// a fraction of a millisecond, so an unprivileged daemon loses nothing to
/// its own pauses. Under full load batches come back full and no pause
/// happens at all.
pub(crate) struct IdlePause {
    /// The receive buffers of the worker's sockets together, as the kernel
    /// reports them (a burst spread over several sockets fills them alike).
    buffer: usize,
    /// When the last cycle ended (or the worker started).
    since: Instant,
    /// Datagrams received since then.
    datagrams: usize,
    /// Their bytes.
    bytes: usize,
    /// Kernel memory per queued datagram, as measured (see `observe`).
    measured: Option<f64>,
}

impl IdlePause {
    pub(crate) fn new(buffer: usize) -> IdlePause {
        IdlePause {
            buffer,
            since: Instant::now(),
            datagrams: 0,
            bytes: 0,
            measured: None,
        }
    }

    /// A socket held `queued` bytes of kernel memory (SO_MEMINFO) just before
    /// a receive call took all of its `datagrams`: what a datagram really
    /// costs the buffer (about 1280 bytes for 340 of payload on loopback;
    /// NIC drivers differ). Rises at once, falls slowly: the pause errs long
    /// only after many cheaper samples.
    pub(crate) fn observe(&mut self, queued: usize, datagrams: usize) {
        if datagrams == 0 || queued == 0 {
            return;
        }
        let sample = queued as f64 / datagrams as f64;
        self.measured = Some(match self.measured {
            Some(known) if sample < known => known - (known - sample) / 16.0,
            _ => sample,
        });
    }

    pub(crate) fn count(&mut self, datagrams: usize, bytes: usize) {
        self.datagrams += datagrams;
        self.bytes += bytes;
    }

    /// How long to wait after a drain; resets the cycle.
    fn wait(&mut self) -> Duration {
        let elapsed = self.since.elapsed().as_secs_f64().max(1e-6);
        let rate = self.datagrams as f64 / elapsed;
        let payload = self.bytes / self.datagrams.max(1);
        let per_datagram = self
            .measured
            .map_or((payload + SKB_OVERHEAD) as f64, |m| m.max(payload as f64));
        let capacity = self.buffer as f64 / per_datagram;
        let wait = (capacity / 8.0 / rate.max(1.0))
            .min(capacity / 2.0 / BURST_RATE)
            .min(IDLE_PAUSE_MAX.as_secs_f64());
        self.datagrams = 0;
        self.bytes = 0;
        self.since = Instant::now();
        Duration::from_secs_f64(wait)
    }

    pub(crate) fn after_drain(&mut self) {
        let wait = self.wait();
        if wait >= IDLE_PAUSE_MIN {
            std::thread::sleep(wait);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pause measured `ago` after `datagrams` of 340 bytes arrived.
    fn pause_after(buffer: usize, datagrams: usize, ago: Duration) -> Duration {
        let mut pause = IdlePause::new(buffer);
        pause.since = Instant::now() - ago;
        pause.count(datagrams, datagrams * 340);
        pause.wait()
    }

    #[test]
    fn a_quiet_socket_never_pauses_longer_than_a_burst_takes_to_fill_half_the_buffer() {
        // A stock kernel's 208 KiB, as the kernel reports it (doubled).
        let stock = 2 * 212_992;
        // One datagram after a second of silence: the rate says nothing
        // about the burst that may follow, so the burst cap holds.
        let wait = pause_after(stock, 1, Duration::from_secs(1));
        let half_at_burst = stock as f64 / (340 + SKB_OVERHEAD) as f64 / 2.0 / BURST_RATE;
        assert!(wait.as_secs_f64() <= half_at_burst + 1e-9, "{wait:?}");
        assert!(wait < Duration::from_micros(500), "{wait:?}");
    }

    #[test]
    fn a_measured_datagram_size_replaces_the_guess_and_falls_slowly() {
        let stock = 2 * 212_992;
        let guessed = pause_after(stock, 1, Duration::from_secs(1));
        let mut pause = IdlePause::new(stock);
        pause.observe(10 * 1280, 10);
        pause.since = Instant::now() - Duration::from_secs(1);
        pause.count(1, 340);
        let measured = pause.wait();
        // 1280 bytes a datagram instead of 340 + 2048: a longer safe pause.
        let ratio = measured.as_secs_f64() / guessed.as_secs_f64();
        assert!((ratio - 2388.0 / 1280.0).abs() < 0.01, "{ratio}");
        // One dearer sample counts at once; a cheaper one only a little.
        pause.observe(4096, 1);
        assert_eq!(pause.measured, Some(4096.0));
        pause.observe(1024, 1);
        assert_eq!(pause.measured, Some(4096.0 - 3072.0 / 16.0));
    }

    #[test]
    fn a_large_buffer_at_a_moderate_rate_pauses_up_to_the_maximum() {
        // 32 MiB (root's SO_RCVBUFFORCE) at 10k datagrams/s.
        let wait = pause_after(64 << 20, 100, Duration::from_millis(10));
        assert_eq!(wait, IDLE_PAUSE_MAX);
        // Under load (more than an eighth of the buffer per cycle) no pause
        // is due.
        let busy = pause_after(64 << 20, 40_000, Duration::from_micros(100));
        assert!(busy < IDLE_PAUSE_MIN, "{busy:?}");
    }
}
