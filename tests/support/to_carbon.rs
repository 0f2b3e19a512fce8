//! A statsd (in process or the binary) on port 0 publishing to a carbon on
//! loopback, and the wait for what was sent to be flushed.

use super::daemon::Daemon;
use super::istats::stat;
use super::server::Server;
use super::Statsd;

/// Flags for a statsd on port 0 publishing to the carbon on `carbon`.
pub fn flags<'a>(carbon: &'a str, interval: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "-p",
        "0",
        "--graphite-host",
        "127.0.0.1",
        "--graphite-port",
        carbon,
        "--flush-interval",
        interval,
    ];
    args.extend_from_slice(extra);
    args
}

/// The server in process, publishing to carbon on `carbon`.
pub fn server(carbon: u16, interval: &str, extra: &[&str]) -> Server {
    let port = carbon.to_string();
    Server::start(&flags(&port, interval, extra))
}

/// The binary, publishing to carbon on `carbon`.
pub fn daemon(carbon: u16, interval: &str, extra: &[&str]) -> Daemon {
    let port = carbon.to_string();
    Daemon::start(&flags(&port, interval, extra))
}

/// Waits until `lines` lines in all were taken in and then flushed (the
/// interval's intake is empty again): what was sent before is in a flush
/// of its own, apart from what is sent next.
pub fn wait_flushed(statsd: &impl Statsd, lines: u64) {
    statsd.poll_istats(|s| stat(s, "metrics.received") >= lines);
    statsd.poll_istats(|s| stat(s, "pending_stats") == 0);
}
