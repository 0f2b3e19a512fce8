//! Differential test against Etsy's statsd 0.9.0 itself: the same datagrams
//! go to Etsy's `stats.js` (under node, with a config.js) and to our server
//! run with the equivalent flags; flush by flush, both must write the same
//! set of paths, and every value of every path must agree to 1e-9
//! (relative). Values that measure time (processing_time, calculationtime,
//! flush_time, flush_length, last_flush, last_exception, timestamp_lag)
//! differ by nature: their paths must match, their values are not compared.
//!
//! Intentional differences kept out of the input (README, "Etsy's
//! outputs"): a negative threshold taking every value (Etsy writes NaN
//! sums), negative timer values (Etsy drops them), `|h`/`|d` (Etsy counts
//! them as counters), unsorted tags (we sort them).

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use support::etsy::{send_all, values, EtsyStatsd, FlushCarbon};
use support::to_carbon;
use support::Statsd;

const INTERVAL: Duration = Duration::from_secs(2);

/// Values whose number is a duration, a byte count or a clock reading.
const TIMING: [&str; 7] = [
    "processing_time",
    "graphiteStats.calculationtime",
    "graphiteStats.flush_time",
    "graphiteStats.flush_length",
    "graphiteStats.last_flush",
    "graphiteStats.last_exception",
    "timestamp_lag",
];

fn is_timing(path: &str) -> bool {
    let name = path.split(';').next().unwrap_or(path);
    TIMING.iter().any(|t| name.contains(t))
}

/// Lines packed into datagrams of at most 20 lines.
fn datagrams(lines: &[String]) -> Vec<String> {
    lines.chunks(20).map(|c| c.join("\n")).collect()
}

/// The first interval: every kind, sample rates, deltas, many timer values.
fn round_one() -> Vec<String> {
    let mut lines: Vec<String> = [
        "req:1|c",
        "req:3|c|@0.5",
        "req:2|c|@0.1",
        "bytes:1.5|c",
        "bytes:2.25|c",
        "tagged:1|c|#a:1,b:2",
        "my  spaced/name:1|c",
        "g.abs:10|g",
        "g.abs:+5|g",
        "g.abs:-3|g",
        "g.neg:-7|g",
        "g.zero:0|g",
        "g.zero:+2|g",
        "users:a|s",
        "users:b|s",
        "users:a|s",
        "ids:1|s",
        "one:7|ms",
        "two:1|ms",
        "two:3|ms",
        "bad.line",
    ]
    .map(String::from)
    .to_vec();
    for i in 0..200u32 {
        let v = f64::from((i * 37) % 101) * 1.25 + 0.5;
        let rate = if i % 3 == 0 { "|@0.5" } else { "" };
        lines.push(format!("lat.api:{v}|ms{rate}"));
    }
    for v in [0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 15.0, 0.0, 3.3] {
        lines.push(format!("hist.t:{v}|ms"));
    }
    lines
}

/// The second: some series again (gauge deltas on kept values), the rest idle.
fn round_two() -> Vec<String> {
    let mut lines: Vec<String> = ["req:5|c", "g.abs:+1|g", "users:c|s"]
        .map(String::from)
        .to_vec();
    for v in [4.0, 1.0, 9.5, 2.25, 7.0] {
        lines.push(format!("lat.api:{v}|ms"));
    }
    lines
}

/// The last: a delta on a gauge idle since the first (Etsy with
/// deleteGauges starts it from 0 again).
fn round_four() -> Vec<String> {
    vec!["g.neg:+2|g".into()]
}

/// One of the two servers: where to send, what it flushed, when last.
struct Side {
    name: &'static str,
    carbon: FlushCarbon,
    last: Instant,
}

impl Side {
    fn next(&mut self) -> Vec<String> {
        let (at, lines) = self.carbon.next(self.name);
        self.last = at;
        lines
    }
}

/// Waits until neither server is due to flush within the margin, so one
/// burst of datagrams lands whole in each server's next flush.
fn quiet_moment(sides: &mut [&mut Side]) {
    // Etsy re-aligns each flush to its start-up grid, so one that came late
    // is followed sooner than an interval later: the margin covers that.
    let margin = Duration::from_millis(700);
    let deadline = Instant::now() + support::WAIT;
    loop {
        assert!(Instant::now() < deadline, "no quiet moment between flushes");
        let soonest = sides
            .iter_mut()
            .min_by_key(|s| s.last + INTERVAL)
            .expect("two sides");
        if soonest.last + INTERVAL > Instant::now() + margin {
            return;
        }
        // Due soon (or overdue): take that flush first.
        soonest.next();
    }
}

fn compare(round: &str, etsy: &[String], ours: &[String]) {
    let (etsy, ours): (BTreeMap<_, _>, BTreeMap<_, _>) = (values(etsy), values(ours));
    let only_etsy: Vec<&String> = etsy.keys().filter(|k| !ours.contains_key(*k)).collect();
    let only_ours: Vec<&String> = ours.keys().filter(|k| !etsy.contains_key(*k)).collect();
    assert!(
        only_etsy.is_empty() && only_ours.is_empty(),
        "{round}: paths differ\nonly Etsy: {only_etsy:?}\nonly ours: {only_ours:?}"
    );
    let mut compared = 0;
    for (path, want) in &etsy {
        if is_timing(path) {
            continue;
        }
        let got = ours[path];
        let scale = want.abs().max(got.abs());
        assert!(
            (want - got).abs() <= 1e-9 * scale || scale < 1e-12,
            "{round}: {path}: Etsy {want}, ours {got}"
        );
        compared += 1;
    }
    assert!(compared > 0, "{round}: nothing compared");
    eprintln!("{round}: {} paths, {compared} values compared", etsy.len());
}

/// Runs the rounds through Etsy (config.js members `etsy_config`) and us
/// (`our_flags`), comparing each round's flush.
fn differential(etsy_config: &str, our_flags: &[&str], expect_paths: &[&str]) {
    let mut etsy_side = Side {
        name: "Etsy's statsd",
        carbon: FlushCarbon::start(),
        last: Instant::now(),
    };
    let mut our_side = Side {
        name: "our statsd",
        carbon: FlushCarbon::start(),
        last: Instant::now(),
    };
    let etsy = EtsyStatsd::start(etsy_side.carbon.port, etsy_config);
    let ours = to_carbon::server(our_side.carbon.port, "2", our_flags);
    // Both are up once each has flushed once.
    etsy_side.next();
    our_side.next();
    let rounds = [
        ("round 1", round_one()),
        ("round 2", round_two()),
        ("round 3 (idle)", Vec::new()),
        ("round 4", round_four()),
    ];
    for (i, (round, lines)) in rounds.iter().enumerate() {
        quiet_moment(&mut [&mut etsy_side, &mut our_side]);
        let burst = datagrams(lines);
        send_all(etsy.addr, &burst);
        send_all(ours.metrics_addr(), &burst);
        let (etsy_flush, our_flush) = (etsy_side.next(), our_side.next());
        if i == 0 {
            for path in expect_paths {
                assert!(
                    etsy_flush
                        .iter()
                        .any(|l| l.starts_with(&format!("{path} "))),
                    "{round}: Etsy wrote no {path}: {etsy_flush:?}"
                );
            }
        }
        compare(round, &etsy_flush, &our_flush);
    }
    drop(ours);
}

#[test]
fn legacy_namespace_agrees_with_etsy() {
    differential(
        "flushInterval: 2000, percentThreshold: [90, 99.9, -10, 50],\n  \
         histogram: [{metric: \"hist\", bins: [0.01, 0.1, 1, 10, \"inf\"]}, {metric: \"lat\", bins: [1, 100]}],\n  \
         graphite: {legacyNamespace: true}",
        &[
            "--etsy",
            "-t",
            "90,99.9",
            "-t",
            "-10,50",
            "--histogram",
            "hist=0.01,0.1,1,10,inf",
            "--histogram",
            "lat=1,100",
        ],
        &[
            "stats.req",
            "stats_counts.req",
            "stats.timers.lat.api.upper_99_9",
            "stats.timers.lat.api.lower_top10",
            "stats.timers.hist.t.histogram.bin_0_01",
            "stats.timers.hist.t.histogram.bin_inf",
            "stats.gauges.g.abs",
            "stats.sets.users.count",
            "statsd.numStats",
            "stats.statsd.processing_time",
            "stats.statsd.graphiteStats.last_flush",
            "stats_counts.statsd.bad_lines_seen",
        ],
    );
}

#[test]
fn new_namespace_with_prefixes_filters_and_deletes_agrees_with_etsy() {
    differential(
        "flushInterval: 2000, percentThreshold: [90, -10, 75],\n  \
         histogram: [{metric: \"\", bins: [1, 10, \"inf\"]}],\n  \
         deleteSets: true, deleteGauges: true,\n  \
         calculatedTimerMetrics: [\"count\", \"mean\", \"upper_percent\", \"lower_percent\", \"sum_squares_percent\", \"histogram\", \"count_ps\", \"median\"],\n  \
         graphite: {legacyNamespace: false, globalPrefix: \"pre\", prefixTimer: \"tm\", globalSuffix: \"end\"}",
        &[
            "--etsy",
            "-t",
            "90,-10,75",
            "--histogram",
            "=1,10,inf",
            "--delete-sets",
            "true",
            "--delete-gauges",
            "true",
            "--timer-metrics",
            "count,mean,upper_percent,lower_percent,sum_squares_percent,histogram,count_ps,median",
            "--legacy-namespace",
            "false",
            "--global-prefix",
            "pre",
            "--prefix-timer",
            "tm",
            "--global-suffix",
            "end",
        ],
        &[
            "pre.counters.req.rate.end",
            "pre.counters.req.count.end",
            "pre.tm.lat.api.upper_90.end",
            "pre.tm.lat.api.histogram.bin_inf.end",
            "pre.gauges.g.abs.end",
            "pre.sets.users.count.end",
            "pre.statsd.numStats.end",
            "pre.statsd.graphiteStats.flush_length.end",
        ],
    );
}
