//! Messages on stderr and stdout (runit's svlogd collects them): rate
//! limited per kind, so a flood of bad input or a long carbon outage cannot
//! flood the log, and written from a bounded queue by a thread of their own,
//! so a stuck log pipe never stops the server.

use std::io::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
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

/// Lines waiting for the log writer; beyond this they are dropped, counted.
const QUEUE_LINES: usize = 4096;

/// Which standard stream a line goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Out,
    Err,
}

/// The log writer: a bounded queue drained by a thread of its own, so a log
/// pipe that stops draining (svlogd stuck, a full disk) costs log lines,
/// never intake, flushes, publishing or shutdown.
struct LogQueue {
    /// Lines waiting, in order, for both streams.
    lines: std::sync::mpsc::SyncSender<(Stream, String)>,
    /// Lines queued and not yet written.
    waiting: AtomicUsize,
    /// Lines dropped because the queue was full, since start (`log.dropped`).
    dropped: AtomicU64,
}

static QUEUE: OnceLock<Option<LogQueue>> = OnceLock::new();

/// The queue, started on first use; `None` if no thread could be started
/// (then lines are written directly, as a last resort).
fn queue() -> Option<&'static LogQueue> {
    QUEUE
        .get_or_init(|| {
            let (lines, incoming) = std::sync::mpsc::sync_channel(QUEUE_LINES);
            std::thread::Builder::new()
                .name("log".into())
                .spawn(move || write_lines(incoming))
                .ok()?;
            Some(LogQueue {
                lines,
                waiting: AtomicUsize::new(0),
                dropped: AtomicU64::new(0),
            })
        })
        .as_ref()
}

/// The writer thread: writes each line; once the queue is empty after lines
/// were dropped, says how many.
fn write_lines(incoming: std::sync::mpsc::Receiver<(Stream, String)>) {
    let mut reported = 0;
    for (stream, line) in incoming {
        write_now(stream, &line);
        let Some(queue) = QUEUE.get().and_then(Option::as_ref) else {
            continue;
        };
        let left = queue.waiting.fetch_sub(1, Ordering::AcqRel) - 1;
        let dropped = queue.dropped.load(Ordering::Relaxed);
        if left == 0 && dropped > reported {
            write_now(
                Stream::Err,
                &format!(
                    "statsd: {} log lines dropped while the log pipe was full (log.dropped)",
                    dropped - reported
                ),
            );
            reported = dropped;
        }
    }
}

fn write_now(stream: Stream, line: &str) {
    // A closed or broken stream is ignored, never a panic.
    match stream {
        Stream::Out => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
        Stream::Err => {
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        }
    }
}

fn send(stream: Stream, line: String) {
    let Some(queue) = queue() else {
        write_now(stream, &line);
        return;
    };
    queue.waiting.fetch_add(1, Ordering::AcqRel);
    if queue.lines.try_send((stream, line)).is_err() {
        queue.waiting.fetch_sub(1, Ordering::AcqRel);
        queue.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

/// Queues one line for stderr; never blocks.
pub fn eprint_line(line: &str) {
    send(Stream::Err, line.to_string());
}

/// Queues one line for stdout; never blocks.
pub fn print_line(line: &str) {
    send(Stream::Out, line.to_string());
}

/// Log lines dropped since start because the log pipe did not drain.
pub fn dropped_lines() -> u64 {
    queue().map_or(0, |q| q.dropped.load(Ordering::Relaxed))
}

/// Waits, at most `limit`, for the queued lines to be written (at exit).
pub fn drain(limit: Duration) {
    let Some(queue) = queue() else {
        return;
    };
    let until = Instant::now() + limit;
    while queue.waiting.load(Ordering::Acquire) > 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(2));
    }
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
