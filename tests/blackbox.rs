//! End to end over loopback, with a fake carbon: the server in process
//! (`server::run` on port 0) for what the server does, the real `statsd`
//! binary for what only the process shows: the seed run script's flags,
//! SIGTERM and the exit code, stdout and stderr, bad flags, `--help`.

mod support;

use std::io::Write;

use support::carbon::{value_of, FakeCarbon};
use support::daemon::{run_statsd, Daemon};
use support::istats::stat;
use support::server::Server;
use support::{free_port, Statsd};

fn carbon_args(carbon: u16, interval: &str) -> Vec<String> {
    [
        "-p",
        "0",
        "--graphite-host",
        "127.0.0.1",
        "--graphite-port",
        &carbon.to_string(),
        "--flush-interval",
        interval,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// The server in process with these flags.
fn server(args: &[String]) -> Server {
    Server::start(&strs(args))
}

/// The binary with these flags.
fn daemon(args: &[String]) -> Daemon {
    Daemon::start(&strs(args))
}

// In process.

#[test]
fn udp_and_tcp_input_reach_carbon() {
    let carbon = FakeCarbon::start();
    let server = server(&carbon_args(carbon.port, "60"));

    server.send_udp(b"udp.hits:3|c\nudp.lat:12|ms\n");
    let big: String = (0..500)
        .map(|i| format!("batch.c:1|c\nbatch.s:{}|s\n", i % 7))
        .collect();
    server.send_udp(big.as_bytes());

    // Two writes with Nagle off: two segments, so the line is cut in the middle.
    let mut tcp = server.connect_tcp();
    tcp.set_nodelay(true).unwrap();
    tcp.write_all(b"tcp.hits:2|c\ntcp.sp").unwrap();
    tcp.write_all(b"lit:5|c\n").unwrap();
    drop(tcp);

    // Shutdown: the server takes in what was sent, then flushes it.
    server.stop();
    let flush = carbon.flush_with("stats.udp.hits");
    assert_eq!(value_of(&flush, "stats.udp.hits"), Some(0.05));
    assert_eq!(value_of(&flush, "stats.tcp.hits"), Some(2.0 / 60.0));
    assert_eq!(value_of(&flush, "stats.tcp.split"), Some(5.0 / 60.0));
    assert_eq!(value_of(&flush, "stats.batch.c"), Some(500.0 / 60.0));
    assert_eq!(value_of(&flush, "stats.batch.s"), Some(7.0));
    assert_eq!(
        value_of(&flush, "stats.timers.udp.lat.upper_90"),
        Some(12.0)
    );
    assert_eq!(value_of(&flush, "statsd.pending_stats"), Some(1004.0));
    assert_eq!(value_of(&flush, "statsd.metrics.discarded"), Some(0.0));
    let num = value_of(&flush, "statsd.numStats").unwrap();
    assert_eq!(num as usize, flush.len());
}

#[test]
fn carbon_down_then_up_delivers_every_line_once_with_original_timestamps() {
    // Carbon's port is ours but refuses for a while.
    let mut carbon = FakeCarbon::down();
    let server = server(&carbon_args(carbon.port, "0.3"));
    for phase in 0..3 {
        server.send_udp(format!("phase{phase}:1|c\n").as_bytes());
        // Taken in, then flushed (the interval's intake is empty again):
        // each phase is a flush of its own.
        server.poll_istats(|s| stat(s, "metrics.received") > phase);
        server.poll_istats(|s| stat(s, "pending_stats") == 0);
    }
    // Those flushes failed to publish, and nothing got through.
    let during = server.poll_istats(|s| stat(s, "flush_errors") >= 3);
    assert_eq!(stat(&during, "published.lines"), 0, "{during}");
    let came_up = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    carbon.up();
    server.send_udp(b"after:1|c\n");
    let got = carbon.until("stats.after ");
    for phase in 0..3 {
        let path = format!("stats.phase{phase} ");
        let matching: Vec<&String> = got.iter().filter(|l| l.starts_with(&path)).collect();
        assert_eq!(matching.len(), 1, "{path}: {matching:?}");
        let ts: u64 = matching[0].rsplit(' ').next().unwrap().parse().unwrap();
        assert!(
            ts <= came_up,
            "timestamp {ts} is not the original (carbon came up at {came_up})"
        );
    }
    // The backlog was resent in order: phase0 before phase1 before phase2.
    let position = |p: &str| got.iter().position(|l| l.starts_with(p)).unwrap();
    assert!(position("stats.phase0 ") < position("stats.phase1 "));
    assert!(position("stats.phase1 ") < position("stats.phase2 "));
    let errors = got
        .iter()
        .filter_map(|l| l.strip_prefix("statsd.publish_error.socket "))
        .map(|rest| rest.split(' ').next().unwrap().parse::<f64>().unwrap())
        .fold(0.0, f64::max);
    assert!(errors >= 2.0, "publish errors counted: {errors}");
    server.stop();
}

#[test]
fn final_flush_never_reuses_the_previous_flush_second() {
    let carbon = FakeCarbon::start();
    let server = server(&carbon_args(carbon.port, "1"));
    server.send_udp(b"before:1|c\n");
    let regular = carbon.flush_with("stats.before ");
    // Stopped right after a regular flush: usually within the same second.
    server.send_udp(b"after:1|c\n");
    server.stop();
    let last = carbon.flush_with("stats.after ");
    let second =
        |flush: &[String]| -> u64 { flush[0].rsplit(' ').next().unwrap().parse().unwrap() };
    assert!(
        second(&last) > second(&regular),
        "final flush reused second {}",
        second(&regular)
    );
}

// The binary.

#[test]
fn seed_run_script_flags_start_the_server() {
    let carbon = FakeCarbon::start();
    let port = carbon.port.to_string();
    let mut daemon = Daemon::start(&[
        "-a",
        "-q",
        "-p",
        "0",
        "--flush-interval",
        "10",
        "--graphite-port",
        &port,
        "--graphite-host",
        "127.0.0.1",
        "--metadata-prefix",
        "statsd.my_prefix",
        "--sets-prefix",
        "my_prefix.set",
        "--counters-prefix",
        "my_prefix",
        "--timers-prefix",
        "my_prefix.timers",
        "--gauge-prefix",
        "my_prefix",
        "--nsca-port",
        &free_port().to_string(),
    ]);
    daemon.send_udp(b"c:10|c\ng:4|g\nt:2|ms\ns:x|s\n");
    assert_eq!(daemon.terminate(), 0);
    let flush = carbon.flush_with("my_prefix.c");
    assert_eq!(value_of(&flush, "my_prefix.c"), Some(1.0));
    assert_eq!(value_of(&flush, "my_prefix.g"), Some(4.0));
    assert_eq!(value_of(&flush, "my_prefix.timers.t.mean"), Some(2.0));
    assert_eq!(value_of(&flush, "my_prefix.set.s"), Some(1.0));
    assert!(value_of(&flush, "statsd.my_prefix.numStats").is_some());
    assert!(value_of(&flush, "statsd.my_prefix.flush_errors").is_some());
}

#[test]
fn sigterm_flushes_and_exits_zero() {
    let carbon = FakeCarbon::start();
    let mut daemon = daemon(&carbon_args(carbon.port, "3600"));
    daemon.send_udp(b"final:7|c\n");
    let mut tcp = daemon.connect_tcp();
    tcp.write_all(b"final.tcp:1|g\n").unwrap();
    tcp.flush().unwrap();
    assert_eq!(daemon.terminate(), 0);
    let flush = carbon.flush_with("stats.final ");
    assert_eq!(value_of(&flush, "stats.final"), Some(7.0 / 3600.0));
    assert_eq!(value_of(&flush, "stats.final.tcp"), Some(1.0));
}

#[test]
fn sigterm_with_carbon_down_reports_the_loss_and_exits_zero() {
    let mut args = carbon_args(free_port(), "3600");
    args.extend(["--shutdown-timeout".into(), "2".into()]);
    let mut daemon = daemon(&args);
    daemon.send_udp(b"lost:1|c\n");
    assert_eq!(daemon.terminate(), 0);
    daemon.wait_stderr("lines lost");
}

#[test]
fn bad_lines_are_counted_and_do_not_disturb_good_ones() {
    let carbon = FakeCarbon::start();
    let mut daemon = daemon(&carbon_args(carbon.port, "3600"));
    daemon.send_udp(b"good:1|c\nbad\nx:1|q\ngood:1|c\n\xff\xfe:1|c\ngood:1|c|@2\n");
    assert_eq!(daemon.terminate(), 0);
    let flush = carbon.flush_with("stats.good ");
    assert_eq!(value_of(&flush, "stats.good"), Some(2.0 / 3600.0));
    assert_eq!(value_of(&flush, "statsd.metrics.discarded"), Some(4.0));
    assert_eq!(value_of(&flush, "statsd.metrics.batch.count"), Some(1.0));
    assert_eq!(
        value_of(&flush, "statsd.metrics.batch.discarded"),
        Some(1.0)
    );
    daemon.wait_stderr("discarded 4 bad lines");
}

#[test]
fn console_mode_prints_graphite_lines() {
    let mut daemon = Daemon::start(&["-p", "0", "--console", "--flush-interval", "0.2"]);
    daemon.send_udp(b"demo:1|c\n");
    let line = daemon.wait_stdout("stats.demo ");
    assert!(line.starts_with("stats.demo 5 "), "{line}");
    assert_eq!(daemon.terminate(), 0);
}

#[test]
fn debug_metric_echoes_incoming_and_outgoing() {
    let mut daemon = Daemon::start(&[
        "-p",
        "0",
        "--console",
        "-q",
        "-d",
        "-m",
        "watched",
        "--flush-interval",
        "0.2",
    ]);
    daemon.send_udp(b"watched.x:1|c\nother:1|c\n");
    daemon.wait_stdout("incoming: watched.x:1|c");
    daemon.wait_stdout("outgoing: stats.watched.x ");
    assert_eq!(daemon.terminate(), 0);
}

#[test]
fn bad_flags_exit_nonzero_with_one_line() {
    for args in [
        &["--no-such-flag"][..],
        &["-p", "notaport"],
        &["--pct", "500"],
        &["--flush-interval", "-1"],
    ] {
        let out = run_statsd(args);
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("statsd: "), "{stderr}");
    }
}

#[test]
fn help_lists_every_original_flag() {
    let out = run_statsd(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "-a, --alert",
        "-d, --debug",
        "-q, --quiet",
        "-n, --name",
        "-m, --debug_metric",
        "-p, --port",
        "-t, --pct",
        "--flush-interval",
        "--graphite-host",
        "--graphite-port",
        "--metadata-prefix",
        "--counters-prefix",
        "--timers-prefix",
        "--gauge-prefix",
        "--sets-prefix",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
}
