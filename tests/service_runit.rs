//! The daemon as it runs in production: started by a real `runsv` from the
//! shipped run script, logging through svlogd, publishing to a real carbon-cache
//! whose whisper files the tests read back.
//!
//! Needs Debian's graphite-carbon, python3-whisper and runit (scripts/test.sh installs them); a
//! missing peer fails the test with the package to install.

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::carbon::{CarbonCache, Points};
use support::istats::{self, stat};
use support::runit::{Options, Service};
use support::{free_port, wait_for, Statsd};

/// Bound on every wait: generous for a loaded 2-core CI machine, yet a hung
/// peer fails the test in well under a minute.
const WAIT: Duration = Duration::from_secs(40);

/// `Some` once `istats` says the daemon holds `n` or more lines this interval.
fn pending_at_least(svc: &Service, n: u64) -> Option<()> {
    let stats = istats::fetch(svc.monitor_addr()).ok()?;
    (stat(&stats, "pending_stats") >= n).then_some(())
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

/// The one point of each series; a series with more than one point means the
/// daemon flushed a name that was not updated, or split our datagram.
fn single_points(got: &BTreeMap<String, Points>) -> BTreeMap<String, (i64, f64)> {
    got.iter()
        .map(|(m, pts)| {
            assert_eq!(pts.len(), 1, "{m}: expected exactly one point, got {pts:?}");
            (m.clone(), pts[0])
        })
        .collect()
}

/// Waits until carbon holds, at timestamp `ts`, as many series as the flush's
/// `<metadata-prefix>.numStats` says it had lines: every line of one flush
/// carries the flush timestamp, and each line is its own series.
fn assert_num_stats_matches(carbon: &CarbonCache, num_stats_metric: &str, ts: i64) {
    let num_stats = carbon.wait_points(&[num_stats_metric], 1, WAIT)[num_stats_metric]
        .iter()
        .find(|(t, _)| *t == ts)
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("{num_stats_metric} has no point at the flush timestamp {ts}"));
    assert!(
        num_stats >= 1.0 && num_stats.fract() == 0.0,
        "numStats {num_stats}"
    );
    let series_at_ts = |carbon: &CarbonCache| -> Vec<String> {
        let all = carbon.metrics();
        let names: Vec<&str> = all.iter().map(String::as_str).collect();
        carbon
            .fetch(&names)
            .into_iter()
            .filter(|(_, pts)| pts.iter().any(|(t, _)| *t == ts))
            .map(|(m, _)| m)
            .collect()
    };
    wait_for(
        WAIT,
        &format!("{num_stats} series with a point at {ts} (numStats)"),
        || (series_at_ts(carbon).len() == num_stats as usize).then_some(()),
        || format!("series at {ts}: {:?}", series_at_ts(carbon)),
    );
}

#[test]
fn runsv_daemon_flushes_counters_gauges_timers_sets_to_real_carbon() {
    let carbon = CarbonCache::start();
    let svc = Service::start_listening(
        || Options {
            port: free_port(),
            monitor_port: free_port(),
            graphite_port: carbon.line_port,
            // 2 s: counters divide by it, and each flush gets its own whole second.
            flush_interval: "2".to_string(),
        },
        WAIT,
    );
    assert!(svc.status().starts_with("run: "), "{}", svc.describe());

    // One datagram: every line lands in the same flush, so one timestamp.
    let mut payload = String::from(
        "svc.hits:3|c\nsvc.hits:2|c|@0.5\n\
         svc.temp:10|g\nsvc.temp:+5|g\nsvc.temp:-2.5|g\n\
         svc.users:alice|s\nsvc.users:bob|s\nsvc.users:alice|s\n",
    );
    for v in [5, 1, 9, 3, 7, 10, 2, 8, 4, 6] {
        payload.push_str(&format!("svc.latency:{v}|ms\n"));
    }
    let sent_at = unix_now();
    svc.send_udp(payload.as_bytes());

    // Paths from the seed run script's prefixes.
    let expected: &[(&str, f64)] = &[
        // (3 + 2 / 0.5) / 2 s
        ("my_prefix.svc.hits", 3.5),
        ("my_prefix.svc.temp", 12.5),
        ("my_prefix.set.svc.users", 2.0),
        ("my_prefix.timers.svc.latency.lower", 1.0),
        ("my_prefix.timers.svc.latency.count", 10.0),
        ("my_prefix.timers.svc.latency.mean", 5.5),
        ("my_prefix.timers.svc.latency.upper", 10.0),
        // k = floor(0.9 * 10) = 9th of the sorted values
        ("my_prefix.timers.svc.latency.upper_90", 9.0),
    ];
    let names: Vec<&str> = expected.iter().map(|(m, _)| *m).collect();
    carbon.wait_points(&names, 1, WAIT);
    let points = single_points(&carbon.fetch(&names));

    let ts = points[names[0]].0;
    let got: Vec<(&str, i64, f64)> = names
        .iter()
        .map(|m| (*m, points[*m].0, points[*m].1))
        .collect();
    let want: Vec<(&str, i64, f64)> = expected.iter().map(|(m, v)| (*m, ts, *v)).collect();
    assert_eq!(got, want, "values or timestamps differ");
    assert!(
        ts >= sent_at.floor() as i64 && (ts as f64) <= sent_at + 2.0 + 10.0,
        "flush timestamp {ts} is not in the flush after sending at {sent_at}"
    );
    assert_num_stats_matches(&carbon, "statsd.my_prefix.numStats", ts);

    assert_eq!(
        svc.down(WAIT),
        "0 0",
        "daemon exit under sv down\n{}",
        svc.describe()
    );
    assert!(svc.status().starts_with("down: "), "{}", svc.describe());
}

#[test]
fn sv_down_during_traffic_lands_final_flush_in_whisper_and_logs_to_svlogd() {
    let carbon = CarbonCache::start();
    let svc = Service::start_listening(
        || Options {
            port: free_port(),
            monitor_port: free_port(),
            graphite_port: carbon.line_port,
            // Far beyond the test's length: only the flush on SIGTERM publishes.
            flush_interval: "60".to_string(),
        },
        WAIT,
    );
    let port = svc.opts.port;
    let before = svc.status();
    assert!(before.starts_with("run: "), "sv status before: {before}");

    // 1000 counter increments in 10 datagrams, plus a gauge, then wait until
    // the daemon has taken them all in (what is still in the socket buffer at
    // SIGTERM may be dropped: the daemon stops reading first).
    for _ in 0..10 {
        svc.send_udp("final.count:1|c\n".repeat(100).as_bytes());
    }
    svc.send_udp(b"final.gauge:42|g\n");
    wait_for(
        WAIT,
        "pending_stats >= 1001 over XML-RPC istats",
        || pending_at_least(&svc, 1001),
        || {
            format!(
                "istats: {:?}\n{}",
                istats::fetch(svc.monitor_addr()),
                svc.describe()
            )
        },
    );

    // Traffic that goes on while the service is taken down.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let noise = {
        let (stop, sent) = (stop.clone(), sent.clone());
        std::thread::spawn(move || {
            let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
            let deadline = Instant::now() + WAIT;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                // Refused once the daemon is gone: fine, keep going.
                if sock
                    .send_to(b"noise.count:1|c\n", ("127.0.0.1", port))
                    .is_ok()
                {
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    wait_for(
        WAIT,
        "noise traffic reaching the daemon",
        || pending_at_least(&svc, 1011),
        || svc.describe(),
    );

    let exit = svc.down(WAIT);
    stop.store(true, Ordering::Relaxed);
    noise.join().expect("noise thread");
    assert_eq!(exit, "0 0", "daemon exit on SIGTERM\n{}", svc.describe());
    let after = svc.status();
    assert!(after.starts_with("down: "), "sv status after: {after}");

    let names = [
        "my_prefix.final.count",
        "my_prefix.final.gauge",
        "my_prefix.noise.count",
        "statsd.my_prefix.numStats",
    ];
    carbon.wait_points(&names, 1, WAIT);
    let points = single_points(&carbon.fetch(&names));
    let ts = points["my_prefix.final.count"].0;
    assert_eq!(points["my_prefix.final.count"], (ts, 1000.0 / 60.0));
    assert_eq!(points["my_prefix.final.gauge"], (ts, 42.0));
    let (noise_ts, noise_rate) = points["my_prefix.noise.count"];
    assert_eq!(noise_ts, ts);
    let noise_sent = sent.load(Ordering::Relaxed) as f64;
    assert!(
        noise_rate >= 10.0 / 60.0 && noise_rate <= noise_sent / 60.0,
        "noise rate {noise_rate} for {noise_sent} sent"
    );
    assert_num_stats_matches(&carbon, "statsd.my_prefix.numStats", ts);

    // stderr went through `exec 2>&1` to svlogd, which stamps each line (-tt).
    let log = svc.log();
    let start_line = log
        .lines()
        .find(|l| l.contains("listening"))
        .unwrap_or_else(|| panic!("no start-up line in svlogd current:\n{log}"));
    assert!(
        has_svlogd_stamp(start_line),
        "svlogd -tt timestamp missing: {start_line:?}"
    );
    assert!(
        start_line.contains(&format!("127.0.0.1:{port}")),
        "start-up line names the bound address: {start_line:?}"
    );
}

#[test]
fn publish_failure_reaches_svlogd_and_daemon_still_exits_cleanly() {
    // Nothing listens there: every publish is refused.
    let dead_carbon = free_port();
    let svc = Service::start_listening(
        || Options {
            port: free_port(),
            monitor_port: free_port(),
            graphite_port: dead_carbon,
            flush_interval: "0.5".to_string(),
        },
        WAIT,
    );
    svc.send_udp(b"lost.count:1|c\n");

    let needle = format!("127.0.0.1:{dead_carbon}");
    let line = wait_for(
        WAIT,
        "a publish error naming the carbon address in svlogd's current",
        || {
            svc.log()
                .lines()
                .find(|l| l.contains("publish") && l.contains(&needle))
                .map(str::to_string)
        },
        || svc.describe(),
    );
    assert!(
        has_svlogd_stamp(&line),
        "svlogd -tt timestamp missing: {line:?}"
    );
    assert!(
        svc.status().starts_with("run: "),
        "publish failures must not stop the daemon\n{}",
        svc.describe()
    );

    assert_eq!(
        svc.down(WAIT),
        "0 0",
        "daemon exit on SIGTERM\n{}",
        svc.describe()
    );
}

/// svlogd -tt prefixes `YYYY-MM-DD_HH:MM:SS.xxxxx `.
fn has_svlogd_stamp(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 27
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'_'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && b[..4].iter().all(u8::is_ascii_digit)
}
