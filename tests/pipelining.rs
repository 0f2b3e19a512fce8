//! Pipelined delivery (`--graphite-max-unconfirmed`): a carbon that accepts
//! a connection and never reads it (as Etsy's own test suite treats its
//! first graphite connection) holds back only that connection's lines;
//! later flushes go out on new connections and are confirmed meanwhile.
//! `published.lines` counts only what carbon read, each line once.
//!
//! Before pipelining, one attempt at a time: every later flush waited
//! behind the held connection for --graphite-write-timeout.

mod support;

use support::carbon::{value_of, Behaviour, FakeCarbon};
use support::istats::stat;
use support::server::Server;
use support::to_carbon::{server, wait_flushed};
use support::Statsd;

/// A statsd whose first delivered payload holds `held.first`, on a carbon
/// that holds that first connection unread and reads every later one.
fn held_first_connection(write_timeout: &str) -> (FakeCarbon, Server) {
    let mut carbon = FakeCarbon::down();
    let flags = [
        "--graphite-write-timeout",
        write_timeout,
        "--shutdown-timeout",
        "1",
    ];
    let server = server(carbon.port, "0.2", &flags);
    // Carbon refuses until this is in the backlog: the first connection
    // it accepts carries it.
    server.send_udp(b"held.first:1|c\n");
    wait_flushed(&server, 1);
    carbon.set(Behaviour::HoldFirst);
    carbon.up();
    carbon.wait_for("the first connection held", |c| c.stalled() == 1);
    (carbon, server)
}

/// Reads flush by flush until one satisfies `wanted`; every line read.
fn through_flush_where(carbon: &FakeCarbon, wanted: impl Fn(&[String]) -> bool) -> Vec<String> {
    let mut got = Vec::new();
    loop {
        let flush = carbon.until(".numStats ");
        let done = wanted(&flush);
        got.extend(flush);
        if done {
            return got;
        }
    }
}

/// `published.lines` counts what carbon read: at least `got` (read, and
/// confirmed by now) and never more than carbon read in all.
fn check_published(server: &Server, carbon: &FakeCarbon, got: &mut Vec<String>) {
    let read = got.len() as u64;
    let stats = server.poll_istats(|s| stat(s, "published.lines") >= read);
    let published = stat(&stats, "published.lines");
    // Carbon reads a line before it closes, and the publisher counts it after.
    got.extend(carbon.drain());
    assert!(
        published <= got.len() as u64,
        "published.lines {published} but carbon read {} lines",
        got.len()
    );
}

fn holds_held_first(flush: &[String]) -> bool {
    value_of(flush, "stats.held.first").is_some_and(|v| v > 0.0)
}

#[test]
fn later_flushes_are_confirmed_while_the_first_connection_is_held() {
    // A write timeout far beyond every wait here: no pass through it.
    let (carbon, server) = held_first_connection("60");
    server.send_udp(b"after.held:1|c\n");
    let mut got = through_flush_where(&carbon, |f| value_of(f, "stats.after.held").is_some());
    assert!(!got.iter().any(|l| l.contains("held.first")), "never read");
    check_published(&server, &carbon, &mut got);
    assert_eq!(carbon.stalled(), 1, "the first connection still waits");
    let stats = server.istats();
    assert!(stat(&stats, "backlog.lines") > 0, "its lines stay: {stats}");
    assert!(carbon.accepted() >= 2);
}

#[test]
fn lines_of_a_held_connection_are_resent_once_it_times_out_and_counted_once() {
    let (carbon, server) = held_first_connection("2");
    // Flushes are confirmed meanwhile; then the first attempt times out and
    // its lines go out again on a new connection.
    let mut got = through_flush_where(&carbon, holds_held_first);
    check_published(&server, &carbon, &mut got);
    let flushes_with_it = got
        .split_inclusive(|l| l.contains(".numStats "))
        .filter(|f| holds_held_first(f))
        .count();
    assert_eq!(flushes_with_it, 1, "resent once");
    let stats = server.istats();
    assert!(stat(&stats, "publish_error.socket") >= 1, "{stats}");
    assert_eq!(carbon.stalled(), 1, "carbon never read the first");
}
