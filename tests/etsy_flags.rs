//! The Etsy outputs offered to the original's command line: several
//! percentiles, counts, timer metrics, histograms and idle counters in the
//! original's namespace; `--dump-messages` through the binary.

mod support;

use support::etsy::{values, FlushCarbon};
use support::to_carbon;
use support::Statsd;

#[test]
fn original_namespace_with_etsy_outputs() {
    let carbon = FlushCarbon::start();
    let server = to_carbon::server(
        carbon.port,
        "1",
        &[
            "-t",
            "90,99",
            "--flush-counts",
            "true",
            "--delete-counters",
            "false",
            "--timer-metrics",
            "lower,upper_percent,count_ps,histogram",
            "--histogram",
            "=1,inf",
        ],
    );
    server.send_udp(b"c:4|c\nt:0.5|ms\nt:3|ms");
    let flush = loop {
        let (_, lines) = carbon.next("our statsd");
        if lines.iter().any(|l| l.starts_with("stats.c ")) {
            break values(&lines);
        }
    };
    let want = [
        ("stats.c", 4.0),
        ("stats_counts.c", 4.0),
        ("stats.timers.t.lower", 0.5),
        ("stats.timers.t.upper_90", 0.5),
        ("stats.timers.t.upper_99", 0.5),
        ("stats.timers.t.count_ps", 2.0),
        ("stats.timers.t.histogram.bin_1", 1.0),
        ("stats.timers.t.histogram.bin_inf", 1.0),
    ];
    for (path, value) in want {
        assert_eq!(flush.get(path), Some(&value), "{path}: {flush:?}");
    }
    assert!(!flush.contains_key("stats.timers.t.mean"), "filtered out");
    let num_stats = flush["statsd.numStats"];
    assert_eq!(
        num_stats as usize,
        flush.len(),
        "numStats counts every line"
    );
    // The next flush: the idle counter as 0, the timer gone (deleted).
    let (_, lines) = carbon.next("our statsd");
    let next = values(&lines);
    assert_eq!(next.get("stats.c"), Some(&0.0), "{next:?}");
    assert_eq!(next.get("stats_counts.c"), Some(&0.0));
    assert!(
        !next.keys().any(|k| k.starts_with("stats.timers.")),
        "{next:?}"
    );
}

#[test]
fn dump_messages_prints_every_line() {
    let carbon = FlushCarbon::start();
    let daemon = to_carbon::daemon(carbon.port, "1", &["--dump-messages", "-q"]);
    daemon.send_udp(b"dump.me:1|c\nnot a line");
    daemon.wait_stdout("DEBUG: dump.me:1|c");
    daemon.wait_stdout("DEBUG: not a line");
}
