//! Issue 12, items 1 to 4: the server under an operator's worst day. A log
//! pipe nobody drains, a carbon that resets mid-payload or never reads, a
//! publish stuck for its whole write timeout while flushes keep coming, and
//! the signals runit and operators send by habit. Items 5 to 7 (bounds,
//! honest stats, sub-second intervals) are in reliability_bounds.rs.
//!
//! Each test says in a comment how the code before the fixes failed it.
//! Every wait is an event with a deadline (an `istats` value, a flush at
//! carbon, a line on stdout or stderr, a process exit), never a fixed sleep.

mod support;

use std::io::{PipeReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use support::carbon::{value_of, Behaviour, FakeCarbon};
use support::daemon::{port_after, signal, Daemon, STATSD};
use support::istats::stat;
use support::{drain, Statsd, WAIT};

use support::to_carbon::{daemon, flags, server, wait_flushed};

fn path(line: &str) -> &str {
    line.split(' ').next().unwrap()
}

fn value(line: &str) -> f64 {
    line.split(' ').nth(1).unwrap().parse().unwrap()
}

/// Splits lines received into flushes (each ends with its numStats line),
/// checks that each is whole (as many lines as its numStats says, nothing
/// cut at the end), and returns them.
fn flushes(lines: &[String]) -> Vec<&[String]> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, line) in lines.iter().enumerate() {
        if path(line).ends_with(".numStats") {
            let flush = &lines[start..=i];
            assert_eq!(
                value(line) as usize,
                flush.len(),
                "flush ending at line {i}"
            );
            out.push(flush);
            start = i + 1;
        }
    }
    assert_eq!(start, lines.len(), "a flush was cut: {:?}", &lines[start..]);
    out
}

/// `path`'s value in `flush`; panics when absent.
fn meta(flush: &[String], path: &str) -> f64 {
    value_of(flush, path).unwrap_or_else(|| panic!("no {path} in the flush"))
}

/// VmRSS of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// Waits (bounded by `limit`) for `child` to exit; its exit code and how
/// long it took. Panics (the child is killed by its owner) past the limit.
fn wait_exit(child: &mut Child, limit: Duration) -> (i32, Duration) {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return (status.code().unwrap_or(-1), started.elapsed());
        }
        assert!(
            started.elapsed() < limit,
            "statsd still running {limit:?} after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

// ------------------------------------------------------------ 1. log pipe

/// The binary with stdout and stderr both into one pipe, as under runit
/// (`exec 2>&1` into svlogd); killed on drop.
struct PipedDaemon {
    child: Child,
    port: u16,
    monitor: u16,
}

impl Statsd for PipedDaemon {
    fn metrics_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn monitor_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.monitor))
    }
}

impl Drop for PipedDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads `reader` on a thread until a line holding `text` arrives; returns
/// that line and the reader, which then reads no further. Bounded by WAIT.
fn read_until(reader: PipeReader, text: &'static str) -> (String, PipeReader) {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let mut reader = reader;
        let mut pending: Vec<u8> = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = match reader.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            pending.extend_from_slice(&chunk[..n]);
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line = String::from_utf8_lossy(&pending[..end]).into_owned();
                pending.drain(..=end);
                if line.contains(text) {
                    let _ = tx.send((line, reader));
                    return;
                }
            }
        }
    });
    rx.recv_timeout(WAIT)
        .unwrap_or_else(|_| panic!("no line holding {text:?} on the log pipe within {WAIT:?}"))
}

/// Lines whose names hold "flood" (echoed by `-d -m flood` as `incoming:`
/// at intake and `outgoing:` at each flush, ~230 bytes each), one bad line
/// per datagram; 4 datagrams of 250 lines.
fn flood(statsd: &impl Statsd, round: usize) {
    let pad = "p".repeat(200);
    for d in 0..4 {
        let mut datagram = String::from("flood.bad:1|x\n");
        for i in 0..250 {
            datagram.push_str(&format!("flood.r{round}.{d}.{i:03}.{pad}:1|c\n"));
        }
        statsd.send_udp(datagram.as_bytes());
    }
}

/// Floods until `log.dropped` passes `above`; returns it.
fn flood_until_dropped(statsd: &impl Statsd, above: u64, first_round: usize) -> u64 {
    let deadline = Instant::now() + WAIT;
    for round in first_round.. {
        flood(statsd, round);
        let dropped = stat(&statsd.istats(), "log.dropped");
        if dropped > above {
            return dropped;
        }
        assert!(
            Instant::now() < deadline,
            "log.dropped still {dropped} after {} flood rounds",
            round - first_round + 1
        );
    }
    unreachable!()
}

// Before the fix every log line was written straight to the blocking
// stdout/stderr: once the pipe was full the flush thread blocked on its
// status line (carbon got nothing more) and SIGTERM waited for a reader.
#[test]
fn stuck_log_pipe_stops_neither_publishing_nor_sigterm() {
    let carbon = FakeCarbon::start();
    let (reader, writer) = std::io::pipe().expect("pipe");
    let port = carbon.port.to_string();
    let args = flags(&port, "1", &["-d", "-m", "flood"]);
    let child = {
        let mut cmd = Command::new(STATSD);
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(writer.try_clone().expect("dup the pipe"))
            .stderr(writer);
        // The Command holds our copies of the write end: spawned, dropped.
        cmd.spawn().expect("start statsd")
    };
    // Start-up lines are read (effective settings, then where it listens),
    // then nobody reads the pipe.
    let (listening, reader) = read_until(reader, "udp+tcp ");
    let mut statsd = PipedDaemon {
        child,
        port: port_after(&listening, "udp+tcp ").expect("metrics port"),
        monitor: port_after(&listening, "monitor (XML-RPC) on ").expect("monitor port"),
    };

    let dropped = flood_until_dropped(&statsd, 0, 0);
    // The pipe is full and the queue too: carbon still gets every flush.
    carbon.drain();
    statsd.send_udp(b"stuck.marker:1|c\n");
    let marked = carbon.flush_with("stats.stuck.marker ");
    assert_eq!(value_of(&marked, "stats.stuck.marker"), Some(1.0));
    carbon.until(".numStats ");
    carbon.until(".numStats ");
    let still = stat(&statsd.istats(), "log.dropped");
    assert!(
        still > dropped,
        "the flushes' status lines were not dropped ({dropped} then {still}): was the pipe drained?"
    );

    // Once the pipe drains, the daemon says how many lines it dropped.
    let (said, reader) = read_until(reader, "log lines dropped");
    let count: u64 = said
        .strip_prefix("statsd: ")
        .and_then(|rest| rest.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no count in {said:?}"));
    assert!(count >= still, "{said:?} but log.dropped was {still}");

    // Full again, and SIGTERM: the final flush is published and the process
    // exits 0 within a bound (queued log lines get one second), unread pipe
    // and all.
    let before = stat(&statsd.istats(), "log.dropped");
    flood_until_dropped(&statsd, before, 1000);
    // Sent before the signal: shutdown takes in what the kernel holds.
    statsd.send_udp(b"final.marker:1|c\n");
    signal(statsd.child.id(), libc::SIGTERM);
    let (code, took) = wait_exit(&mut statsd.child, WAIT);
    assert_eq!(code, 0, "exit status after SIGTERM");
    assert!(
        took < Duration::from_secs(5),
        "SIGTERM took {took:?} with the log pipe full"
    );
    let last = carbon.flush_with("stats.final.marker ");
    assert_eq!(value_of(&last, "stats.final.marker"), Some(1.0));
    drop(reader);
}

// ------------------------------------------------------------ 2. published

// Before the fix a payload counted as published once the kernel took it:
// a carbon that read 3000 bytes and reset lost the rest of every flush,
// with published.lines counting it all and publish_error.socket and
// flush_errors at 0.
#[test]
fn carbon_resetting_after_3000_bytes_gets_every_line_once_it_behaves() {
    let carbon = FakeCarbon::with(Behaviour::Reset { after: 3000 });
    let statsd = server(carbon.port, "1", &[]);
    const ROUNDS: u64 = 4;
    const NAMES: usize = 100;
    // Four flushes of ~8 KB each (100 counters and the server's own
    // stats), each taken in a flush of its own.
    for round in 1..=ROUNDS {
        let mut datagram = String::new();
        for i in 0..NAMES {
            datagram.push_str(&format!("reset.c{i:03}:{round}|c\n"));
        }
        statsd.send_udp(datagram.as_bytes());
        wait_flushed(&statsd, round * NAMES as u64);
    }
    let during = statsd
        .poll_istats(|s| stat(s, "publish_error.socket") >= 3 && stat(s, "flush_errors") >= 3);
    assert_eq!(
        stat(&during, "published.lines"),
        0,
        "carbon confirmed nothing: {during}"
    );
    assert!(stat(&during, "backlog.lines") > 0, "{during}");
    assert!(carbon.resets() >= 3);

    carbon.set(Behaviour::Normal);
    statsd.send_udp(b"reset.done:1|c\n");
    let got = carbon.through_flush_with("stats.reset.done ");
    let all = flushes(&got);
    // The fake carbon passes on nothing of a connection it reset, so each
    // line arrived once: each counter's values add up exactly.
    for i in 0..NAMES {
        let name = format!("stats.reset.c{i:03}");
        let total: f64 = got
            .iter()
            .filter(|l| path(l) == name)
            .map(|l| value(l))
            .sum();
        assert_eq!(total, (1..=ROUNDS).sum::<u64>() as f64, "{name}");
    }
    // A flush rendered with the backlog empty says in published.lines
    // exactly how many lines carbon read before it; every flush rendered
    // before the first confirmed delivery said 0.
    let mut before = got.len();
    let next = loop {
        let next = carbon.until(".numStats ");
        if meta(&next, "statsd.backlog.lines") == 0.0 {
            break next;
        }
        before += next.len();
    };
    assert_eq!(meta(&next, "statsd.published.lines"), before as f64);
    let unconfirmed = all
        .iter()
        .filter(|f| meta(f, "statsd.published.lines") == 0.0)
        .count() as f64;
    assert!(unconfirmed >= ROUNDS as f64, "{unconfirmed} flushes said 0");
    let flush_errors = meta(&next, "statsd.flush_errors");
    assert!(
        (3.0..=unconfirmed).contains(&flush_errors),
        "flush_errors {flush_errors}: once per flush that failed, {unconfirmed} at most"
    );
    assert!(meta(&next, "statsd.publish_error.socket") >= 3.0);
    assert_eq!(meta(&next, "statsd.backlog.lines"), 0.0);
}

// Before the fix a carbon that never read showed millions of lines
// "published" (the kernel's buffers took them) and flush_errors 0.
#[test]
fn carbon_that_never_reads_has_nothing_published_and_each_flush_failed() {
    let carbon = FakeCarbon::with(Behaviour::Stall);
    let daemon = daemon(carbon.port, "1", &["--graphite-write-timeout", "1"]);
    const FLUSHES: u64 = 8;
    let mut flushes = 0;
    let mut last = serde_json::Value::Null;
    while flushes < FLUSHES {
        daemon.send_udp(format!("stall.c{flushes}:1|c\n").as_bytes());
        daemon.wait_stdout("flushed ");
        flushes += 1;
        // The status line is written just before the payload is handed
        // to the publisher: the backlog may take a moment to show it.
        last = daemon.poll_istats(|s| stat(s, "backlog.bytes") > 0);
        assert_eq!(stat(&last, "published.lines"), 0, "{last}");
        // One per flush, never per attempt (the stdout line may lag one).
        assert!(stat(&last, "flush_errors") <= flushes + 1, "{last}");
    }
    // Attempts take 1 s (the wait for carbon's close) and retry within the
    // 1 s interval: a flush fails within 3 s of its render.
    let failed = stat(&last, "flush_errors");
    assert!(
        failed + 4 >= FLUSHES,
        "flush_errors {failed} after {FLUSHES} flushes"
    );
    assert!(stat(&last, "publish_error.socket") >= 2, "{last}");
    assert!(carbon.accepted() >= 2);
}

// ------------------------------------------------------------- 3. backlog

// Before the fix the payloads that arrived while a write was stuck (up to
// --graphite-write-timeout, 30 s by default) waited outside the backlog:
// backlog.bytes said 0, nothing was dropped, RSS grew by every payload
// (43 -> 182 MB in 16 s in the issue; 25 MB here), and the payloads the
// kernel's buffers took counted as published.
#[test]
fn backlog_bound_holds_while_a_publish_is_stuck() {
    let carbon = FakeCarbon::with(Behaviour::Stall);
    const BOUND: u64 = 1_000_000;
    const NAMES: usize = 20_000;
    let bound = BOUND.to_string();
    let daemon = daemon(carbon.port, "0.2", &["--backlog-max-bytes", &bound]);
    // Each flush: 20,000 counters `stats.bl.n00000 5 1764690000` (under 32
    // bytes a line, ~640 KB) and the server's own stats (~100 lines).
    const PAYLOAD_MAX: u64 = NAMES as u64 * 32 + 200 * 100;
    let mut input = Vec::new();
    for i in 0..NAMES {
        input.extend_from_slice(format!("bl.n{i:05}:1|c\n").as_bytes());
    }
    let pid = daemon.child.id();
    // First ~13 MB of output: 3000 timers with ~900-byte names, five lines
    // each, in one to three flushes. That is more than the socket buffers
    // take (4 MB send buffer at most, carbon's receive buffer is 16 KiB), so
    // a write of it blocks: what arrives meanwhile must wait within the bound.
    let pad = vec!["x".repeat(225); 4].join(".");
    let mut big = Vec::new();
    for i in 0..3000 {
        big.extend_from_slice(format!("bl.big.{i:04}.{pad}:{i}|ms\n").as_bytes());
    }
    daemon.send_tcp(&big);
    wait_flushed(&daemon, 3000);
    // The next flush pushes them out (the newest payload is always kept).
    // A status line is printed just before its payload is handed over, and
    // the next flush begins after: once three more lines are out, the flush
    // after the big ones has been handed over too.
    drain(&daemon.stdout);
    for _ in 0..3 {
        daemon.wait_stdout("flushed ");
    }
    daemon.poll_istats(|s| stat(s, "backlog.bytes") <= BOUND + PAYLOAD_MAX);

    let mut tcp = daemon.connect_tcp();

    let mut warm = None;
    let mut max_bytes = 0;
    const FLUSHES: usize = 50;
    for flush in 1..=FLUSHES {
        tcp.write_all(&input).expect("send a round of names");
        daemon.wait_stdout("flushed ");
        let stats = daemon.istats();
        let bytes = stat(&stats, "backlog.bytes");
        max_bytes = max_bytes.max(bytes);
        assert!(
            bytes <= BOUND + PAYLOAD_MAX,
            "backlog.bytes {bytes} over the bound {BOUND} plus one payload: {stats}"
        );
        assert_eq!(stat(&stats, "published.lines"), 0, "{stats}");
        if flush == 10 {
            let dropped = stat(&stats, "backlog.dropped_lines");
            assert!(dropped > 0, "nothing dropped after 10 flushes: {stats}");
            warm = Some((rss_kib(pid), dropped));
        }
    }
    // The first attempt is still waiting for carbon's close (30 s default).
    assert!(carbon.stalled() >= 1);
    let stats = daemon.istats();
    let (warm_rss, warm_dropped) = warm.unwrap();
    assert!(
        stat(&stats, "backlog.dropped_lines") > warm_dropped,
        "{stats}"
    );
    assert!(
        max_bytes > BOUND / 2,
        "the backlog never filled: {max_bytes}"
    );
    // 40 more payloads of ~640 KB (25 MB) went through the bound meanwhile.
    let rss = rss_kib(pid);
    assert!(
        rss < warm_rss + 8 * 1024,
        "RSS grew from {warm_rss} KiB to {rss} KiB over 40 flushes with the backlog bounded"
    );
}

// Found by these tests (fixed with them): while a slow carbon read an
// attempt's batch, the flushes arriving meanwhile pushed the backlog over
// its bound and out went payloads of that very batch, counted at once as
// dropped; the attempt then delivered them, and published.lines left them
// out. After any outage that fills the backlog, the recovery overstated the
// loss and understated what carbon got.
#[test]
fn payloads_pushed_out_while_being_delivered_count_as_published() {
    // ~400 KB/s, against ~750 KB/s of output: attempts take long, and the
    // backlog is at its bound while they run.
    let carbon = FakeCarbon::with(Behaviour::Slow {
        chunk: 16 * 1024,
        pause: Duration::from_millis(40),
    });
    let statsd = server(carbon.port, "0.2", &["--backlog-max-bytes", "300000"]);
    const NAMES: usize = 5000;
    let mut input = Vec::new();
    for i in 0..NAMES {
        input.extend_from_slice(format!("ev.n{i:04}:1|c\n").as_bytes());
    }
    const ROUNDS: u64 = 15;
    for round in 1..=ROUNDS {
        statsd.send_tcp(&input);
        wait_flushed(&statsd, round * NAMES as u64);
    }
    // Quiet again: a flush rendered with the backlog empty says in
    // published.lines exactly how many lines carbon read before it.
    let mut got = Vec::new();
    let last = loop {
        let flush = carbon.until(".numStats ");
        if meta(&flush, "statsd.backlog.lines") == 0.0 && got.len() > NAMES {
            break flush;
        }
        got.extend(flush);
    };
    flushes(&got);
    let dropped = meta(&last, "statsd.backlog.dropped_lines");
    assert!(dropped > 0.0, "the bound never dropped anything");
    assert_eq!(
        meta(&last, "statsd.published.lines"),
        got.len() as f64,
        "lines carbon read, {dropped} dropped"
    );
}

// ------------------------------------------------------------- 4. signals

// Before the fix SIGHUP (runit's `sv hup`) and SIGUSR1 had their default
// action: the process died (exit 129, 138) and the interval was lost.
// (SIGPIPE was already ignored by the Rust runtime and write errors on
// stdout ignored: that part guards against a regression.)
#[test]
fn hup_usr1_usr2_lose_nothing_and_a_closed_stdout_kills_nothing() {
    let carbon = FakeCarbon::start();
    let port = carbon.port.to_string();
    // stdout is a pipe whose reader is gone from the start: every write
    // there (effective settings, the `incoming:` echoes) gets EPIPE.
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    // A long interval: only the final flush publishes the counters, so a
    // signal that killed the process would lose them.
    let args = flags(&port, "1000", &["-d", "-m", "sig."]);
    let mut daemon = Daemon::start_with_stdout(&args, Stdio::from(writer));
    daemon.send_udp(b"sig.before:3|c\n");
    daemon.poll_istats(|s| stat(s, "metrics.received") == 1);
    for (sig, name) in [
        (libc::SIGHUP, "SIGHUP"),
        (libc::SIGUSR1, "SIGUSR1"),
        (libc::SIGUSR2, "SIGUSR2"),
        (libc::SIGHUP, "SIGHUP"),
    ] {
        signal(daemon.child.id(), sig);
        let said = daemon.wait_stderr(name);
        assert!(said.contains("ignored"), "{said}");
        assert!(
            daemon.child.try_wait().unwrap().is_none(),
            "{name} killed it"
        );
    }
    daemon.send_udp(b"sig.after:5|c\n");
    let stats = daemon.poll_istats(|s| stat(s, "metrics.received") == 2);
    assert_eq!(stat(&stats, "pending_stats"), 2, "{stats}");
    assert_eq!(daemon.terminate(), 0);
    daemon.wait_stderr("stopped after the final flush");
    let last = carbon.flush_with("stats.sig.before ");
    assert_eq!(value_of(&last, "stats.sig.before"), Some(3.0 / 1000.0));
    assert_eq!(value_of(&last, "stats.sig.after"), Some(5.0 / 1000.0));
}
