//! Fault injection over loopback: a carbon that refuses, resets, stalls or
//! crawls; connection storms; floods of garbage; nasty lines; the TCP and
//! cardinality limits. Every wait is an event with a deadline (an `istats`
//! value, a line at carbon, a stdout or stderr line), never a fixed sleep.
//!
//! The server runs in process where the test is about what it does; the real
//! binary where the test reads what the process prints (status lines on
//! stdout, failure messages on stderr) or signals it. Those come last.

mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use support::carbon::{value_of, Behaviour, FakeCarbon};
use support::daemon::Daemon;
use support::istats::stat;
use support::{free_port, Statsd, WAIT};

use support::to_carbon::{daemon, server, wait_flushed};

/// Waits for the next "flushed N lines" status line; returns N.
fn next_flush(daemon: &Daemon) -> u64 {
    let line = daemon.wait_stdout("flushed ");
    flushed_lines(&line)
}

fn flushed_lines(line: &str) -> u64 {
    line.split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a status line: {line}"))
}

fn timestamp(line: &str) -> u64 {
    line.rsplit(' ')
        .next()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no timestamp in {line:?}"))
}

fn path(line: &str) -> &str {
    line.split(' ').next().unwrap()
}

/// The last value of `path` among `lines` (a later flush wins).
fn last_value(lines: &[String], path: &str) -> Option<f64> {
    lines
        .iter()
        .rev()
        .find(|l| l.split(' ').next() == Some(path))
        .map(|l| l.split(' ').nth(1).unwrap().parse().unwrap())
}

/// How often each path occurs.
fn path_counts(lines: &[String]) -> HashMap<&str, usize> {
    let mut counts = HashMap::new();
    for line in lines {
        *counts.entry(path(line)).or_insert(0) += 1;
    }
    counts
}

/// Splits received lines into flushes (each ends with its numStats line) and
/// checks that each flush is whole: as many lines as numStats says, one
/// timestamp, and timestamps never go back from one line to the next.
fn check_flushes(lines: &[String]) -> usize {
    let mut flushes = 0;
    let mut start = 0;
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            assert!(
                timestamp(&lines[i - 1]) <= timestamp(line),
                "timestamps go back at line {i}: {:?} then {line:?}",
                lines[i - 1]
            );
        }
        if path(line).ends_with(".numStats") {
            let flush = &lines[start..=i];
            let declared: f64 = line.split(' ').nth(1).unwrap().parse().unwrap();
            assert_eq!(declared as usize, flush.len(), "flush ending at line {i}");
            assert!(flush.iter().all(|l| timestamp(l) == timestamp(line)));
            flushes += 1;
            start = i + 1;
        }
    }
    assert_eq!(start, lines.len(), "a flush was cut: {:?}", &lines[start..]);
    flushes
}

/// Timer lines whose names are padded to ~900 bytes (in parts of 225: a
/// part over 255 bytes is refused): `count` timers make a flush of about
/// 4.7 KB * count at carbon (five lines per timer).
fn big_timers(prefix: &str, count: usize) -> Vec<u8> {
    let pad = vec!["x".repeat(225); 4].join(".");
    let mut out = Vec::new();
    for i in 0..count {
        out.extend_from_slice(format!("{prefix}.{i:05}.{pad}:{i}|ms\n").as_bytes());
    }
    out
}

/// Timers in [`big_timers`] whose `.count` line reached carbon, and how often.
fn big_timer_counts(lines: &[String], prefix: &str) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    let start = format!("stats.timers.{prefix}.");
    for line in lines {
        let p = path(line);
        if p.starts_with(&start) && p.ends_with(".count") {
            *counts.entry(p.to_string()).or_insert(0) += 1;
        }
    }
    counts
}

/// Enough timers for a flush of ~9 MB, more than twice what loopback socket
/// buffers hold (4 MB send buffer at most, carbon's receive buffer is 16 KiB).
const BIG: usize = 2000;

/// Waits for the flush whose status line says it holds the big timers.
fn wait_big_flush(daemon: &Daemon) {
    let deadline = Instant::now() + WAIT;
    while next_flush(daemon) < (BIG * 5) as u64 {
        assert!(Instant::now() < deadline, "no big flush");
    }
}

#[test]
fn carbon_refusing_then_back_drains_backlog_in_order_once() {
    let mut carbon = FakeCarbon::down();
    let server = server(carbon.port, "0.2", &["--graphite-connect-timeout", "1"]);
    const MARKERS: usize = 6;
    for i in 0..MARKERS {
        server.send_udp(format!("marker.{i}:1|c\n").as_bytes());
        wait_flushed(&server, i as u64 + 1);
    }
    // A longer outage: ten more flushes with carbon refusing (each flush's
    // first attempt fails and counts).
    let during = server.poll_istats(|s| stat(s, "flush_errors") >= (MARKERS + 10) as u64);
    assert!(stat(&during, "backlog.lines") > 0, "{during}");
    assert_eq!(stat(&during, "published.lines"), 0, "{during}");

    carbon.up();
    server.send_udp(b"after:1|c\n");
    let got = carbon.through_flush_with("stats.after ");
    let flushes = check_flushes(&got);
    assert!(flushes >= 16, "only {flushes} flushes arrived");
    let counts = path_counts(&got);
    for i in 0..MARKERS {
        assert_eq!(counts.get(format!("stats.marker.{i}").as_str()), Some(&1));
    }
    assert_eq!(counts.get("stats.after"), Some(&1));
    let position = |p: &str| got.iter().position(|l| path(l) == p).unwrap();
    for i in 1..MARKERS {
        assert!(
            position(&format!("stats.marker.{}", i - 1)) < position(&format!("stats.marker.{i}"))
        );
    }
    let errors = last_value(&got, "statsd.flush_errors").unwrap();
    assert!(errors >= 15.0, "flush_errors {errors}");
    // Retries back off (0.5 s, then every flush interval or 0.5 s) while
    // flushes come every 0.2 s, so one failed attempt may carry several
    // flushes: each flush counts once in flush_errors, each attempt once in
    // publish_error.socket; over a 3 s outage the publisher kept trying.
    let attempts = last_value(&got, "statsd.publish_error.socket").unwrap();
    assert!(
        attempts >= 2.0,
        "{attempts} failed attempts, {errors} flushes"
    );
    assert_eq!(last_value(&got, "statsd.backlog.dropped_lines"), Some(0.0));
    let after = server.poll_istats(|s| stat(s, "backlog.lines") == 0);
    assert_eq!(stat(&after, "backlog.dropped_lines"), 0);
    server.stop();
}

#[test]
fn thousands_of_tcp_connections_opened_and_dropped() {
    let carbon = FakeCarbon::start();
    let server = server(carbon.port, "1000", &["-q"]);
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (mut tcp_ok, mut half, mut udp_ok, mut total) = (0u64, 0u64, 0u64, 0u64);
    for wave in 0..30 {
        let mut open = Vec::new();
        for k in 0..100 {
            let mut stream = server.connect_tcp();
            match k % 4 {
                0 => {}
                1 => {
                    stream.write_all(b"conn.ok:1|c\n").unwrap();
                    tcp_ok += 1;
                }
                2 => {
                    // The orderly close ends the last line, which lacks
                    // its type: discarded, and counted.
                    stream.write_all(b"conn.ok:1|c\nconn.half:1").unwrap();
                    tcp_ok += 1;
                    half += 1;
                }
                _ => {
                    // Dropped with RST, nothing sent.
                    socket2::SockRef::from(&stream)
                        .set_linger(Some(Duration::ZERO))
                        .unwrap();
                }
            }
            open.push(stream);
            total += 1;
            if k % 10 == 0 {
                udp.send_to(b"udp.ok:1|c\n", server.metrics_addr()).unwrap();
                udp_ok += 1;
            }
        }
        drop(open);
        // Let the server catch up before the next wave (well below the
        // 1024-connection limit either way).
        let expected_half = half;
        server.poll_istats(|s| {
            stat(s, "tcp.connections.open") == 0
                && stat(s, "metrics.discarded") == expected_half
                && stat(s, "tcp.connections.accepted") >= total - 25 * (wave + 1)
        });
    }
    let stats = server.poll_istats(|s| {
        stat(s, "metrics.received") >= tcp_ok + udp_ok && stat(s, "tcp.connections.open") == 0
    });
    assert_eq!(stat(&stats, "metrics.received"), tcp_ok + udp_ok, "{stats}");
    assert_eq!(stat(&stats, "metrics.discarded"), half, "{stats}");
    assert_eq!(
        stat(&stats, "metrics.discarded.missing_type"),
        half,
        "{stats}"
    );
    assert_eq!(stat(&stats, "metrics.discarded.cut_off"), 0, "{stats}");
    assert_eq!(stat(&stats, "tcp.connections.refused"), 0, "{stats}");
    assert_eq!(stat(&stats, "udp.kernel_drops"), 0, "{stats}");

    server.stop();
    let flush = carbon.flush_with("stats.conn.ok");
    assert_eq!(
        value_of(&flush, "stats.conn.ok"),
        Some(tcp_ok as f64 / 1000.0)
    );
    assert_eq!(
        value_of(&flush, "stats.udp.ok"),
        Some(udp_ok as f64 / 1000.0)
    );
    assert_eq!(
        value_of(&flush, "statsd.metrics.discarded"),
        Some(half as f64)
    );
    assert_eq!(value_of(&flush, "statsd.tcp.connections.open"), Some(0.0));
}

/// xorshift64*: reproducible garbage without a dependency.
struct Garbage(u64);

impl Garbage {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// `len` random bytes, none of them `|`: no garbage line can be valid,
    /// so the good lines can be counted exactly.
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len)
            .map(|_| match self.next() as u8 {
                b'|' => b'!',
                b => b,
            })
            .collect()
    }
}

#[test]
fn random_bytes_flood_does_not_disturb_good_metrics() {
    let carbon = FakeCarbon::start();
    let server = server(carbon.port, "1000", &["-q"]);
    let addr = server.metrics_addr();

    // Garbage over TCP on four connections, 1 MB each, with good lines
    // embedded between garbage lines.
    let tcp_flood: Vec<_> = (0..4u64)
        .map(|n| {
            std::thread::spawn(move || {
                let mut garbage = Garbage(0x9e37_79b9_7f4a_7c15 ^ n);
                let mut stream = TcpStream::connect(addr).unwrap();
                let mut embedded = 0u64;
                for _ in 0..64 {
                    let mut chunk = garbage.bytes(16 * 1024);
                    chunk.extend_from_slice(b"\nflood.tcpmixed:1|c\n");
                    embedded += 1;
                    stream.write_all(&chunk).unwrap();
                }
                embedded
            })
        })
        .collect();

    let mut garbage = Garbage(42);
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut good_tcp = server.connect_tcp();
    let (mut udp_good, mut udp_mixed, mut tcp_good) = (0u64, 0u64, 0u64);
    for i in 0..3000 {
        let len = 1 + (garbage.next() % 1400) as usize;
        udp.send_to(&garbage.bytes(len), addr).unwrap();
        if i % 3 == 0 {
            udp.send_to(b"flood.udp:1|c\nflood.udp:2|c", addr).unwrap();
            udp_good += 3;
        }
        if i % 5 == 0 {
            let mut mixed = garbage.bytes(200);
            mixed.extend_from_slice(b"\nflood.udpmixed:1|c\n");
            mixed.extend_from_slice(&garbage.bytes(200));
            udp.send_to(&mixed, addr).unwrap();
            udp_mixed += 1;
        }
        if i % 2 == 0 {
            good_tcp.write_all(b"flood.tcp:1|c\n").unwrap();
            tcp_good += 1;
        }
    }
    drop(good_tcp);
    let tcp_mixed: u64 = tcp_flood.into_iter().map(|t| t.join().unwrap()).sum();
    let good_lines = udp_good / 3 * 2 + udp_mixed + tcp_good + tcp_mixed;

    let stats = server.poll_istats(|s| {
        stat(s, "metrics.received") >= good_lines && stat(s, "tcp.connections.open") == 0
    });
    assert_eq!(stat(&stats, "udp.kernel_drops"), 0, "{stats}");
    assert_eq!(stat(&stats, "metrics.received"), good_lines, "{stats}");
    assert!(stat(&stats, "metrics.discarded") > 3000, "{stats}");

    server.stop();
    let flush = carbon.flush_with("stats.flood.udp");
    let rate = |n: u64| Some(n as f64 / 1000.0);
    assert_eq!(value_of(&flush, "stats.flood.udp"), rate(udp_good));
    assert_eq!(value_of(&flush, "stats.flood.udpmixed"), rate(udp_mixed));
    assert_eq!(value_of(&flush, "stats.flood.tcp"), rate(tcp_good));
    assert_eq!(value_of(&flush, "stats.flood.tcpmixed"), rate(tcp_mixed));
    // Nothing else got through.
    let counters = flush
        .iter()
        .filter(|l| l.starts_with("stats.") && !l.starts_with("stats.timers."))
        .count();
    assert_eq!(counters, 4, "{flush:?}");
}

#[test]
fn nasty_lines_are_counted_and_good_ones_exact() {
    let carbon = FakeCarbon::start();
    let server = server(carbon.port, "1000", &["-q"]);
    let bad: Vec<&[u8]> = vec![
        b"\xc3\x28:1|c",
        b"huge.bad:1e309|c",
        b"huge.bad:-1e309|g",
        b"multi.bad:1|c:1e309|c",
        b"nan.c:NaN|c",
        b"nan.g:nan|g",
        b"inf.c:inf|c",
        b"inf.g:-inf|g",
        b"inf.ms:infinity|ms",
        b"inf.plus:+Inf|g",
        b":1|c",
        b"%%%:1|c",
        b"\xe2\x82\xac:1|c",
        b"rate:1|c|@0",
        b"rate:1|c|@1.5",
        b"rate:1|c|@nan",
        b"noval|c",
        b"x:|c",
        b"x:1|",
        b"x:1",
        b"x:1|zz",
        b"s:|s",
        b"ok.set:\xff\xfe|s",
    ];
    let good: Vec<&[u8]> = vec![
        b"huge.g:1e308|g",
        b"tiny.g:1e-300|g",
        b"overflow.g:+1e308|g",
        b"overflow.c:1e308|c",
        b"overflow.t:1e308|ms",
        b"overflow.rate:1e308|c|@0.001",
        b"ws  name:1|c",
        b"not\xff\xfeutf8:1|c",
        b"sla/sh:1|c",
        b"ok.count:1|c",
        b"ok.count:2|c",
        b"ok.set:member|s",
    ];
    // Each line alone in a datagram, and all of them again on one TCP
    // connection, with a 1 MB line (over --max-line-bytes) in the middle.
    for line in bad.iter().chain(&good) {
        server.send_udp(line);
    }
    let tags: Vec<String> = (0..10_000).map(|i| format!("t{i:04}")).collect();
    let tagged = format!("tagged:1|c|#{}\n", tags.join(","));
    let mut stream = Vec::new();
    for line in bad.iter().chain(&good) {
        stream.extend_from_slice(line);
        stream.push(b'\n');
    }
    stream.extend_from_slice(&vec![b'a'; 1 << 20]);
    stream.extend_from_slice(b":1|c\nafter.long:1|c\n");
    stream.extend_from_slice(tagged.as_bytes());
    server.send_tcp(&stream);

    // The 10,000-tag line is either a series of its own or discarded.
    let good_lines = 2 * good.len() as u64 + 1;
    let bad_lines = 2 * bad.len() as u64 + 1;
    let all_lines = good_lines + bad_lines + 1;
    let stats = server
        .poll_istats(|s| stat(s, "metrics.received") + stat(s, "metrics.discarded") >= all_lines);
    let tags_kept = stat(&stats, "metrics.received") == good_lines + 1;
    assert_eq!(
        stat(&stats, "metrics.discarded"),
        bad_lines + u64::from(!tags_kept),
        "{stats}"
    );
    // A value that is not UTF-8, sent twice (bytes of a name that are not
    // UTF-8 are cleaned away, as the original did); one line too long.
    assert_eq!(stat(&stats, "metrics.discarded.not_utf8"), 2, "{stats}");
    assert_eq!(stat(&stats, "metrics.discarded.too_long"), 1, "{stats}");

    server.stop();
    let flush = carbon.flush_with("stats.after.long");
    assert_eq!(value_of(&flush, "stats.huge.g"), Some(1e308));
    assert_eq!(value_of(&flush, "stats.tiny.g"), Some(1e-300));
    assert_eq!(value_of(&flush, "stats.ws__name"), Some(2.0 / 1000.0));
    assert_eq!(value_of(&flush, "stats.notutf8"), Some(2.0 / 1000.0));
    assert_eq!(value_of(&flush, "stats.sla-sh"), Some(2.0 / 1000.0));
    assert_eq!(value_of(&flush, "stats.ok.count"), Some(6.0 / 1000.0));
    assert_eq!(value_of(&flush, "stats.ok.set"), Some(1.0));
    assert_eq!(value_of(&flush, "stats.after.long"), Some(1.0 / 1000.0));
    // Sums that overflow are written as the largest finite number, and a
    // mean stays between lower and upper.
    assert_eq!(value_of(&flush, "stats.overflow.g"), Some(f64::MAX));
    assert_eq!(value_of(&flush, "stats.overflow.c"), Some(f64::MAX));
    assert_eq!(value_of(&flush, "stats.overflow.rate"), Some(f64::MAX));
    assert_eq!(
        value_of(&flush, "stats.timers.overflow.t.mean"),
        Some(1e308)
    );
    assert_eq!(value_of(&flush, "stats.timers.overflow.t.count"), Some(2.0));
    for line in &flush {
        let value = line.split(' ').nth(1).unwrap();
        assert!(
            !value.to_ascii_lowercase().contains("nan") && !value.contains("inf"),
            "{line}"
        );
        assert!(
            path(line).starts_with("statsd.")
                || !(path(line).contains("bad") || path(line).contains("nan")),
            "{line}"
        );
    }
    let tagged_line = flush.iter().find(|l| l.starts_with("stats.tagged;"));
    if tags_kept {
        let tagged_line = tagged_line.expect("the tagged series");
        let written: Vec<&str> = path(tagged_line).split(';').skip(1).collect();
        assert_eq!(written.len(), 10_000);
        assert!(written.windows(2).all(|w| w[0] < w[1]), "sorted tags");
        assert!(written.iter().all(|t| t.ends_with("=true")));
    } else {
        assert!(tagged_line.is_none());
    }
}

#[test]
fn tcp_connection_limit_refuses_the_sixth_and_counts_it() {
    let carbon = FakeCarbon::start();
    let server = server(carbon.port, "1000", &["-q", "--tcp-max-connections", "5"]);
    let mut held: Vec<TcpStream> = (0..5)
        .map(|_| {
            let mut s = server.connect_tcp();
            s.write_all(b"held:1|c\n").unwrap();
            s
        })
        .collect();
    server
        .poll_istats(|s| stat(s, "tcp.connections.open") == 5 && stat(s, "metrics.received") == 5);

    // The kernel completes the handshake; the server closes at once (the
    // line it writes on stderr is checked on the binary, at the end).
    let mut sixth = server.connect_tcp();
    sixth.set_read_timeout(Some(WAIT)).unwrap();
    let _ = sixth.write_all(b"refused:1|c\n");
    let mut buf = [0u8; 16];
    match sixth.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("sixth connection not closed: {other:?}"),
    }
    let stats = server.poll_istats(|s| stat(s, "tcp.connections.refused") == 1);
    assert_eq!(stat(&stats, "tcp.connections.open"), 5, "{stats}");

    // The five still work; when one leaves, a new one gets its slot.
    for s in &mut held {
        s.write_all(b"held:1|c\n").unwrap();
    }
    drop(held.pop());
    server
        .poll_istats(|s| stat(s, "tcp.connections.open") == 4 && stat(s, "metrics.received") == 10);
    server.send_tcp(b"late:1|c\n");
    let stats = server.poll_istats(|s| stat(s, "metrics.received") == 11);
    assert_eq!(stat(&stats, "tcp.connections.refused"), 1, "{stats}");
    assert_eq!(stat(&stats, "tcp.connections.accepted"), 6, "{stats}");

    drop(held);
    server.stop();
    let flush = carbon.flush_with("stats.held");
    assert_eq!(value_of(&flush, "stats.held"), Some(10.0 / 1000.0));
    assert_eq!(value_of(&flush, "stats.late"), Some(1.0 / 1000.0));
    assert_eq!(value_of(&flush, "stats.refused"), None);
}

#[test]
fn idle_tcp_connection_is_closed_and_counted() {
    let carbon = FakeCarbon::start();
    let server = server(carbon.port, "1000", &["-q", "--tcp-idle-timeout", "0.5"]);

    let mut idle = server.connect_tcp();
    idle.write_all(b"idle:1|c\nidle.half:1").unwrap();
    idle.set_read_timeout(Some(WAIT)).unwrap();
    let opened = Instant::now();

    // A busy connection writing every 150 ms outlives the idle timeout.
    let addr = server.metrics_addr();
    let busy = std::thread::spawn(move || {
        let mut busy = TcpStream::connect(addr).unwrap();
        for _ in 0..6 {
            busy.write_all(b"busy:1|c\n").unwrap();
            std::thread::sleep(Duration::from_millis(150));
        }
        busy.write_all(b"busy:1|c\n").unwrap();
    });

    let mut buf = [0u8; 16];
    assert!(matches!(idle.read(&mut buf), Ok(0)), "closed by the server");
    let took = opened.elapsed();
    assert!(took >= Duration::from_millis(400), "closed after {took:?}");
    assert!(took < Duration::from_secs(5), "closed after {took:?}");
    busy.join().unwrap();
    let stats = server
        .poll_istats(|s| stat(s, "tcp.connections.open") == 0 && stat(s, "metrics.received") == 8);
    assert_eq!(stat(&stats, "tcp.connections.idle_closed"), 1, "{stats}");
    // The partial line the idle peer left is counted as discarded.
    assert_eq!(stat(&stats, "metrics.discarded"), 1, "{stats}");
    assert_eq!(stat(&stats, "metrics.discarded.cut_off"), 1, "{stats}");
    server.stop();
    let flush = carbon.flush_with("stats.busy");
    assert_eq!(value_of(&flush, "stats.busy"), Some(7.0 / 1000.0));
    assert_eq!(
        value_of(&flush, "statsd.tcp.connections.idle_closed"),
        Some(1.0)
    );
    assert_eq!(value_of(&flush, "stats.idle"), Some(1.0 / 1000.0));
}

#[test]
fn max_names_caps_new_series_and_keeps_existing_ones() {
    let carbon = FakeCarbon::start();
    let server = server(carbon.port, "1000", &["-q", "--max-names", "100"]);
    let mut input = Vec::new();
    for i in 0..150 {
        input.extend_from_slice(format!("name.{i:03}:1|c\n").as_bytes());
    }
    // The first ten again: existing names keep counting.
    for i in 0..10 {
        input.extend_from_slice(format!("name.{i:03}:1|c\n").as_bytes());
    }
    server.send_tcp(&input);
    let stats = server
        .poll_istats(|s| stat(s, "metrics.received") + stat(s, "metrics.names_refused") >= 160);
    assert_eq!(stat(&stats, "metrics.received"), 110, "{stats}");
    assert_eq!(stat(&stats, "metrics.names_refused"), 50, "{stats}");
    assert_eq!(stat(&stats, "metrics.discarded"), 0, "{stats}");

    server.stop();
    let flush = carbon.flush_with("stats.name.000");
    let names: Vec<&String> = flush
        .iter()
        .filter(|l| l.starts_with("stats.name."))
        .collect();
    assert_eq!(names.len(), 100, "{names:?}");
    for i in 0..100 {
        let expected = if i < 10 { 2.0 } else { 1.0 } / 1000.0;
        assert_eq!(
            value_of(&flush, &format!("stats.name.{i:03}")),
            Some(expected)
        );
    }
    assert_eq!(value_of(&flush, "statsd.metrics.names_refused"), Some(50.0));
    assert_eq!(
        value_of(&flush, "statsd.render.counters.count"),
        Some(100.0)
    );
}

#[test]
fn shutdown_with_an_open_tcp_peer_stops_promptly() {
    // A peer that sent a partial line and keeps its connection open must
    // not delay the stop beyond the drain bound.
    let carbon = FakeCarbon::start();
    let server = server(carbon.port, "1000", &["-q"]);
    let mut open = server.connect_tcp();
    open.write_all(b"kept:1|c\nkept.partial:1").unwrap();
    server.poll_istats(|s| stat(s, "metrics.received") == 1);
    let took = server.stop();
    assert!(took < Duration::from_secs(5), "stop took {took:?}");
    let flush = carbon.flush_with("stats.kept");
    assert_eq!(value_of(&flush, "stats.kept"), Some(1.0 / 1000.0));
    let _ = open.shutdown(Shutdown::Both);
}

// The binary: what the process prints, and SIGTERM.

#[test]
fn backlog_overflow_is_counted_and_reported_and_the_rest_arrives_once() {
    let mut carbon = FakeCarbon::down();
    // One flush is ~1.7 KB here: the backlog holds two of them.
    let mut daemon = daemon(carbon.port, "0.2", &["--backlog-max-bytes", "4000"]);
    let mut produced = 0;
    const MARKERS: usize = 8;
    for i in 0..MARKERS {
        daemon.send_udp(format!("marker.{i}:1|c\n").as_bytes());
        produced += next_flush(&daemon);
    }
    daemon.wait_stderr("backlog full");
    let during = daemon.poll_istats(|s| stat(s, "backlog.dropped_lines") > 0);
    assert!(stat(&during, "backlog.bytes") <= 4000, "{during}");

    carbon.up();
    daemon.send_udp(b"after:1|c\n");
    let mut got = carbon.through_flush_with("stats.after ");
    daemon.poll_istats(|s| stat(s, "backlog.lines") == 0);

    // Stop: every line the daemon produced either reached carbon or is in
    // backlog.dropped_lines (as the last flush says), nothing twice.
    assert_eq!(daemon.terminate(), 0);
    let deadline = Instant::now() + WAIT;
    while let Ok(line) = daemon
        .stdout
        .recv_timeout(deadline.saturating_duration_since(Instant::now()))
    {
        if line.contains("flushed ") {
            produced += flushed_lines(&line);
        }
    }
    let dropped = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = carbon
            .lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("carbon got {} lines, produced {produced}", got.len()));
        let end = path(&line).ends_with(".numStats");
        got.push(line);
        if end {
            let dropped = last_value(&got, "statsd.backlog.dropped_lines").unwrap() as u64;
            if got.len() as u64 + dropped >= produced {
                break dropped;
            }
        }
    };
    assert!(dropped > 0);
    assert_eq!(got.len() as u64 + dropped, produced);
    check_flushes(&got);
    // The oldest flushes were dropped: the markers that arrived are the
    // newest ones, each once, in order.
    let counts = path_counts(&got);
    let arrived: Vec<usize> = (0..MARKERS)
        .filter(|i| counts.contains_key(format!("stats.marker.{i}").as_str()))
        .collect();
    assert!(arrived.len() < MARKERS, "nothing was dropped: {arrived:?}");
    if let Some(first) = arrived.first() {
        assert_eq!(arrived, (*first..MARKERS).collect::<Vec<_>>());
    }
    for i in &arrived {
        assert_eq!(counts[format!("stats.marker.{i}").as_str()], 1);
    }
}

#[test]
fn carbon_reset_mid_write_is_counted_and_later_flushes_arrive() {
    let carbon = FakeCarbon::with(Behaviour::Reset { after: 100 });
    let daemon = daemon(carbon.port, "1", &[]);
    next_flush(&daemon);
    daemon.send_tcp(&big_timers("reset", BIG));
    wait_big_flush(&daemon);
    let failure = daemon.wait_stderr("failed");
    assert!(
        failure.contains("reset") || failure.contains("Broken pipe"),
        "{failure}"
    );
    assert!(carbon.resets() >= 1);

    carbon.set(Behaviour::Normal);
    daemon.send_udp(b"after.reset:1|c\n");
    let got = carbon.through_flush_with("stats.after.reset ");
    check_flushes(&got);
    // The cut payload was resent whole: every timer once (carbon read
    // nothing of what it reset).
    let counts = big_timer_counts(&got, "reset");
    assert_eq!(counts.len(), BIG);
    assert!(counts.values().all(|n| *n == 1));
    assert_eq!(path_counts(&got).get("stats.after.reset"), Some(&1));
    assert!(last_value(&got, "statsd.publish_error.socket").unwrap() >= 1.0);
    assert!(last_value(&got, "statsd.flush_errors").unwrap() >= 1.0);
}

#[test]
fn carbon_that_never_reads_times_out_and_gets_the_data_once_it_behaves() {
    let carbon = FakeCarbon::with(Behaviour::Stall);
    let daemon = daemon(carbon.port, "1", &["--graphite-write-timeout", "1"]);
    next_flush(&daemon);
    daemon.send_tcp(&big_timers("stall", BIG));
    wait_big_flush(&daemon);
    // Smaller payloads fit in the socket buffers and fail waiting for carbon
    // to close; the big one cannot be written.
    let failure = daemon.wait_stderr("write timed out");
    assert!(failure.contains("failed"), "{failure}");
    let stats = daemon.poll_istats(|s| stat(s, "publish_error.socket") >= 1);
    assert!(stat(&stats, "backlog.lines") >= (BIG * 5) as u64, "{stats}");

    // Carbon is restarted: what sat in the stalled connections is gone, the
    // payload cut by the timeout is resent whole.
    carbon.set(Behaviour::Normal);
    daemon.send_udp(b"after.stall:1|c\n");
    let got = carbon.through_flush_with("stats.after.stall ");
    let counts = big_timer_counts(&got, "stall");
    assert_eq!(counts.len(), BIG);
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
    assert_eq!(path_counts(&got).get("stats.after.stall"), Some(&1));
    assert!(last_value(&got, "statsd.publish_error.socket").unwrap() >= 1.0);
    assert!(last_value(&got, "statsd.flush_errors").unwrap() >= 1.0);
}

#[test]
fn slow_carbon_gets_everything_without_errors() {
    let carbon = FakeCarbon::with(Behaviour::Slow {
        chunk: 256,
        pause: Duration::from_millis(2),
    });
    let daemon = daemon(carbon.port, "0.2", &[]);
    let mut input = Vec::new();
    for i in 1..=2000 {
        input.extend_from_slice(format!("slow.{i}:{i}|c\n").as_bytes());
    }
    input.extend_from_slice(b"slow.done:1|c\n");
    daemon.send_tcp(&input);
    let got = carbon.through_flush_with("stats.slow.done ");
    check_flushes(&got);
    let counts = path_counts(&got);
    for i in 1..=2000 {
        let p = format!("stats.slow.{i}");
        assert_eq!(counts.get(p.as_str()), Some(&1), "{p}");
        let rate = last_value(&got, &p).unwrap();
        assert!((rate * 0.2 - i as f64).abs() < 1e-9, "{p} = {rate}");
    }
    let stats = daemon.istats();
    assert_eq!(stat(&stats, "publish_error.socket"), 0, "{stats}");
    assert_eq!(stat(&stats, "flush_errors"), 0, "{stats}");
    assert_eq!(stat(&stats, "backlog.dropped_lines"), 0, "{stats}");
    // Nothing but the start-up lines (where it listens; that 0.2 s is
    // under carbon's one second).
    let errors: Vec<String> = daemon
        .stderr_so_far()
        .into_iter()
        .filter(|l| !l.contains("listening") && !l.starts_with("statsd: warning: --flush-interval"))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn sigterm_during_a_stalled_publish_exits_within_the_shutdown_timeout() {
    let carbon = FakeCarbon::with(Behaviour::Stall);
    // The write timeout stays at its 30 s default: only --shutdown-timeout
    // may bound the stop.
    let mut daemon = daemon(carbon.port, "1", &["--shutdown-timeout", "1"]);
    next_flush(&daemon);
    daemon.send_tcp(&big_timers("term", BIG));
    wait_big_flush(&daemon);
    // One attempt at a time: the first one wrote its flush and waits for
    // carbon to close (up to the 30 s write timeout); the big flush waits
    // behind it in the backlog. An attempt is stuck right now.
    carbon.wait_for("a publish stuck on it", |c| c.stalled() >= 1);

    let stopping = Instant::now();
    assert_eq!(daemon.terminate(), 0);
    let took = stopping.elapsed();
    assert!(
        took < Duration::from_secs(4),
        "exit took {took:?} with --shutdown-timeout 1"
    );
    let lost = daemon.wait_stderr("lines lost");
    assert!(lost.contains("shutting down"), "{lost}");
}

/// The lines on stderr that the in-process tests above cannot read: a
/// failed publish names carbon's address, and each limit names its flag.
#[test]
fn failures_and_limits_are_logged_naming_their_cause() {
    let refusing = free_port();
    let mut statsd = daemon(
        refusing,
        "0.2",
        &["-q", "--max-names", "2", "--tcp-max-connections", "1"],
    );
    let failed = statsd.wait_stderr("publish to ");
    assert!(
        failed.contains(&format!("publish to 127.0.0.1:{refusing} failed")),
        "{failed}"
    );
    statsd.send_udp(b"name.a:1|c\nname.b:1|c\nname.c:1|c\nname.d:1|c\nname.e:1|c\n");
    let capped = statsd.wait_stderr("--max-names reached: ");
    assert!(capped.contains("--max-names reached: 3 lines"), "{capped}");

    let mut held = statsd.connect_tcp();
    held.write_all(b"held:1|c\n").unwrap();
    statsd.poll_istats(|s| stat(s, "tcp.connections.open") == 1);
    let _refused = statsd.connect_tcp();
    let refused = statsd.wait_stderr("--tcp-max-connections");
    assert!(
        refused.contains("refused TCP connection from ") && refused.contains("1 connections open"),
        "{refused}"
    );
    drop(held);
    assert_eq!(statsd.terminate(), 0);

    let carbon = FakeCarbon::start();
    let mut idling = daemon(carbon.port, "1000", &["-q", "--tcp-idle-timeout", "0.5"]);
    let mut idle = idling.connect_tcp();
    idle.write_all(b"idle:1|c\n").unwrap();
    let closed = idling.wait_stderr("--tcp-idle-timeout");
    assert!(closed.contains("closed TCP connection from "), "{closed}");
    assert_eq!(idling.terminate(), 0);
}
