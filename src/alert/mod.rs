//! Alert mode (`-a`, SPEC section 7): every interval, tell Nagios through an
//! NSCA passive service check whether flushes and publishes are working.
//!
//! [`evaluate`] turns two health snapshots into a status and one line of text
//! (pure); [`run_alert_loop`] samples, evaluates and sends; [`nsca`] speaks the
//! protocol.

pub mod nsca;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use nsca::{Encryption, NscaClient, NscaError};

/// Nagios service states we report (UNKNOWN is never ours to send).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i16)]
pub enum CheckStatus {
    /// No flush or publish failed since the previous check.
    Ok = 0,
    /// Some failed, some succeeded.
    Warning = 1,
    /// Some failed and none succeeded.
    Critical = 2,
}

impl CheckStatus {
    /// The word Nagios plugins start their output with.
    pub fn label(self) -> &'static str {
        match self {
            CheckStatus::Ok => "OK",
            CheckStatus::Warning => "WARNING",
            CheckStatus::Critical => "CRITICAL",
        }
    }
}

/// The daemon's health as the alert loop samples it; counters are cumulative.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HealthSnapshot {
    /// Flushes (render and publish) that succeeded since start.
    pub flushes_ok: u64,
    /// Flushes or publishes that failed since start.
    pub flushes_failed: u64,
    /// Lines in the last successful publish.
    pub last_lines_published: u64,
    /// Seconds the last publish took.
    pub last_publish_duration: f64,
    /// Unix time of the last publish; 0 when there was none yet.
    pub last_publish_time: f64,
}

/// Status and one-line text for the window between two snapshots. Pure.
///
/// A window with no flush at all is OK: with a flush interval longer than the
/// alert interval that is normal, and nothing failed.
pub fn evaluate(prev: &HealthSnapshot, now: &HealthSnapshot) -> (CheckStatus, String) {
    // saturating: a counter that went backwards (restart) must not wrap.
    let ok = now.flushes_ok.saturating_sub(prev.flushes_ok);
    let failed = now.flushes_failed.saturating_sub(prev.flushes_failed);
    let status = match (failed, ok) {
        (0, _) => CheckStatus::Ok,
        (_, 0) => CheckStatus::Critical,
        _ => CheckStatus::Warning,
    };
    let last = if now.last_publish_time > 0.0 {
        format!(
            "{} lines last published in {:.3}s at {}",
            now.last_lines_published,
            now.last_publish_duration,
            format_utc(now.last_publish_time)
        )
    } else {
        "nothing published yet".to_string()
    };
    let text = match status {
        CheckStatus::Ok => format!("OK: {last}"),
        CheckStatus::Warning => format!(
            "WARNING: {failed} of {} publish attempts failed; {last}",
            failed + ok
        ),
        CheckStatus::Critical => format!("CRITICAL: all {failed} publish attempts failed; {last}"),
    };
    (status, text)
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (UTC); nonsense times read as the epoch.
fn format_utc(unix: f64) -> String {
    let secs = if unix.is_finite() && unix > 0.0 {
        unix.floor() as u64
    } else {
        0
    };
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    humantime::format_rfc3339_seconds(time).to_string()
}

/// What the alert loop has done since start. The loop owns and writes these
/// counters; the flush and `istats` read them without taking any lock.
#[derive(Debug, Default)]
pub struct AlertStats {
    /// Checks delivered to the NSCA server's socket.
    sent: AtomicU64,
    /// Checks that failed: connect, init packet, send, or the timeout.
    errors: AtomicU64,
}

impl AlertStats {
    /// Checks delivered since start.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Checks that could not be delivered since start.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }
}

/// Sends one check every `interval` until `shutdown` is cancelled.
///
/// The first check goes out one interval after start. Each send is bounded by
/// the client's timeout and counted in `stats`; a failure also goes to
/// `on_error` (for a rate-limited log line) and never stops the loop. The
/// baseline snapshot only advances when a check was delivered, so failures in
/// a window whose check was lost are reported by the next one.
#[allow(clippy::too_many_arguments)] // each has its own role; a struct would only rename them
pub async fn run_alert_loop(
    client: NscaClient,
    host_name: String,
    service: String,
    interval: Duration,
    health: Arc<dyn Fn() -> HealthSnapshot + Send + Sync>,
    stats: Arc<AlertStats>,
    on_error: Arc<dyn Fn(&NscaError) + Send + Sync>,
    shutdown: CancellationToken,
) {
    // tokio's interval panics on a zero period.
    let interval = interval.max(Duration::from_millis(1));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut baseline = health();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let now = health();
        let (status, text) = evaluate(&baseline, &now);
        let result = tokio::select! {
            r = client.send_check(&host_name, &service, status, &text) => r,
            _ = shutdown.cancelled() => return,
        };
        match result {
            Ok(()) => {
                stats.sent.fetch_add(1, Ordering::Relaxed);
                baseline = now;
            }
            Err(error) => {
                stats.errors.fetch_add(1, Ordering::Relaxed);
                on_error(&error);
            }
        }
    }
}

/// This machine's host name (what Nagios knows it by); "localhost" if unknown.
pub fn local_hostname() -> String {
    match gethostname::gethostname().into_string() {
        Ok(name) if !name.is_empty() => name,
        _ => "localhost".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(ok: u64, failed: u64) -> HealthSnapshot {
        HealthSnapshot {
            flushes_ok: ok,
            flushes_failed: failed,
            last_lines_published: 123,
            last_publish_duration: 0.0042,
            last_publish_time: 1_795_626_000.75,
        }
    }

    #[test]
    fn ok_when_nothing_failed() {
        let (s, text) = evaluate(&snap(10, 2), &snap(16, 2));
        assert_eq!(s, CheckStatus::Ok);
        assert_eq!(
            text,
            "OK: 123 lines last published in 0.004s at 2026-11-25T17:00:00Z"
        );
    }

    #[test]
    fn ok_when_no_flush_happened() {
        assert_eq!(evaluate(&snap(10, 2), &snap(10, 2)).0, CheckStatus::Ok);
    }

    #[test]
    fn warning_when_some_failed() {
        let (s, text) = evaluate(&snap(10, 2), &snap(14, 4));
        assert_eq!(s, CheckStatus::Warning);
        assert!(
            text.starts_with("WARNING: 2 of 6 publish attempts failed; 123 lines"),
            "{text}"
        );
    }

    #[test]
    fn critical_when_all_failed() {
        let (s, text) = evaluate(&snap(10, 2), &snap(10, 8));
        assert_eq!(s, CheckStatus::Critical);
        assert!(
            text.starts_with("CRITICAL: all 6 publish attempts failed; "),
            "{text}"
        );
    }

    #[test]
    fn counters_going_backwards_do_not_wrap() {
        assert_eq!(evaluate(&snap(10, 5), &snap(3, 1)).0, CheckStatus::Ok);
    }

    #[test]
    fn never_published() {
        let now = HealthSnapshot::default();
        assert_eq!(evaluate(&now, &now).1, "OK: nothing published yet");
    }

    #[test]
    fn text_is_one_short_line() {
        let (_, text) = evaluate(&snap(0, 0), &snap(u64::MAX / 2, u64::MAX / 2));
        assert!(!text.contains('\n') && text.len() < 200, "{text}");
    }

    #[test]
    fn utc_formatting() {
        assert_eq!(format_utc(0.0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(951_782_400.0), "2000-02-29T00:00:00Z");
        assert_eq!(format_utc(4_102_444_799.9), "2099-12-31T23:59:59Z");
        assert_eq!(format_utc(f64::NAN), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn status_codes_are_nagios_codes() {
        assert_eq!(CheckStatus::Ok as i16, 0);
        assert_eq!(CheckStatus::Warning as i16, 1);
        assert_eq!(CheckStatus::Critical as i16, 2);
    }

    #[test]
    fn hostname_is_not_empty() {
        assert!(!local_hostname().is_empty());
    }

    #[tokio::test]
    async fn cancelled_loop_sends_nothing() {
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        let stats = Arc::new(AlertStats::default());
        // Port 9 (discard) is never asked: the loop must end before its first tick.
        run_alert_loop(
            NscaClient::new("127.0.0.1", 9),
            "h".into(),
            "s".into(),
            Duration::from_millis(1),
            Arc::new(HealthSnapshot::default),
            Arc::clone(&stats),
            Arc::new(|e: &NscaError| panic!("no send expected: {e}")),
            shutdown,
        )
        .await;
        assert_eq!((stats.sent(), stats.errors()), (0, 0));
    }
}
