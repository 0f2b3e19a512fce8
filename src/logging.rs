//! Messages on stderr (runit's svlogd collects them), rate limited per kind so
//! a flood of bad input or a long carbon outage cannot flood the log.

use std::io::Write;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Allows `burst` messages per `window`, then counts what it suppressed and
/// says so with the next message let through.
#[derive(Debug)]
pub struct RateLimited {
    /// Length of one window.
    window: Duration,
    /// Messages allowed per window.
    burst: u32,
    /// Window start, messages sent in it, messages suppressed since the last one sent.
    state: Mutex<(Instant, u32, u64)>,
}

impl RateLimited {
    /// A limiter letting `burst` messages through per `window`.
    pub fn new(burst: u32, window: Duration) -> RateLimited {
        RateLimited {
            window,
            burst,
            state: Mutex::new((Instant::now(), 0, 0)),
        }
    }

    /// Writes `statsd: <message>` on stderr unless the limit is reached.
    /// The message is built only when it will be written.
    pub fn error(&self, message: impl FnOnce() -> String) {
        let suppressed = {
            let mut state = self.state.lock();
            let now = Instant::now();
            if now.duration_since(state.0) >= self.window {
                *state = (now, 0, state.2);
            }
            if state.1 >= self.burst {
                state.2 += 1;
                return;
            }
            state.1 += 1;
            std::mem::take(&mut state.2)
        };
        let mut line = format!("statsd: {}", message());
        if suppressed > 0 {
            line.push_str(&format!(" ({suppressed} similar messages suppressed)"));
        }
        eprint_line(&line);
    }
}

/// Writes one line on stderr; a closed stderr is ignored, never a panic.
pub fn eprint_line(line: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{line}");
}

/// Writes one line on stdout; a closed stdout is ignored, never a panic.
pub fn print_line(line: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

/// The rate limiters of one server, one per kind of trouble.
#[derive(Debug)]
pub struct Logs {
    /// Bad input lines (with -d each one, else a summary per flush).
    pub bad_input: RateLimited,
    /// Failed publishes to carbon.
    pub publish: RateLimited,
    /// Receive errors and refused connections.
    pub intake: RateLimited,
    /// NSCA alert failures.
    pub alert: RateLimited,
}

impl Default for Logs {
    fn default() -> Self {
        let minute = Duration::from_secs(60);
        Logs {
            bad_input: RateLimited::new(20, minute),
            publish: RateLimited::new(10, minute),
            intake: RateLimited::new(10, minute),
            alert: RateLimited::new(10, minute),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_counts_suppressed() {
        let limiter = RateLimited::new(2, Duration::from_secs(3600));
        let mut built = 0;
        for _ in 0..5 {
            limiter.error(|| {
                built += 1;
                "x".into()
            });
        }
        assert_eq!(built, 2);
        assert_eq!(limiter.state.lock().2, 3);
    }
}
