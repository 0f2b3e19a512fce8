//! Golden test: a fixed list of input lines -> the exact Graphite lines of
//! one flush at a fixed timestamp, through the flush's pure core.

use statsd::aggregate::{merge, GaugeState, Hasher, Limits, Shard};
use statsd::flush::{build, OwnStats, OWN_KEYS};
use statsd::intake::Intake;
use statsd::render::RenderConfig;

const INPUT: &str = "\
requests:1|c
requests:2|c|@0.5
requests:3|c
bytes:1.5|c
rate.sampled:1|c|@0.1
temp:20|g
temp:+5|g
temp:-2|g
queue:-3|g
load:1.5|g
load:2.5|g
api.latency:10|ms
api.latency:20|ms
api.latency:30|ms|@0.5
api.latency:40|h
api.latency:50|d
users:alice|s
users:bob|s
users:alice|s
multi:1|c:7|ms:9|g
my/name with  spaces!:1|c
http.req:1|c|#route:/home,method:get
http.req:2|c|#method:get,route:/home
big:1e20|g
tiny:0.000001|ms
crlf:4|c\r
nope
x:1|z
x:abc|c
x:1|c|@2
x:nan|g
x:inf|c
:1|c
x:1|c|@0.5|extra
x:1|c|#:v
\\xff:1|c
";

const EXPECTED: &str = "\
stats.bytes 0.15 1700000000
stats.crlf 0.4 1700000000
stats.http.req;method=get;route=-home 0.3 1700000000
stats.multi 0.1 1700000000
stats.my-name_with__spaces 0.1 1700000000
stats.rate.sampled 1 1700000000
stats.requests 0.8 1700000000
stats.big 1e20 1700000000
stats.load 2.5 1700000000
stats.multi 9 1700000000
stats.queue -3 1700000000
stats.temp 23 1700000000
stats.timers.api.latency.lower 10 1700000000
stats.timers.api.latency.count 6 1700000000
stats.timers.api.latency.mean 30 1700000000
stats.timers.api.latency.upper 50 1700000000
stats.timers.api.latency.upper_90 40 1700000000
stats.timers.multi.lower 7 1700000000
stats.timers.multi.count 1 1700000000
stats.timers.multi.mean 7 1700000000
stats.timers.multi.upper 7 1700000000
stats.timers.multi.upper_90 7 1700000000
stats.timers.tiny.lower 1e-6 1700000000
stats.timers.tiny.count 1 1700000000
stats.timers.tiny.mean 1e-6 1700000000
stats.timers.tiny.upper 1e-6 1700000000
stats.timers.tiny.upper_90 1e-6 1700000000
stats.users 2 1700000000
";

#[test]
fn one_flush_exact_lines() {
    let mut input = INPUT.as_bytes().to_vec();
    // The non-UTF-8 line: replace the escaped text with a real 0xff byte.
    let at = input.windows(4).position(|w| w == b"\\xff").unwrap();
    input.splice(at..at + 4, [0xff]);
    let mut shard = Shard::new(Hasher::default(), Limits::default());
    Intake::new(Limits::default().max_line_bytes).ingest(&mut shard, &input);
    assert_eq!(shard.intake.discarded, 10);
    assert_eq!(shard.intake.lines, 26);
    let mut gauges = GaugeState::new(Hasher::default());
    let mut snapshot = merge(vec![shard], &mut gauges, 10_000);
    let own = OwnStats {
        start_time: 1_699_999_000.5,
        interval: snapshot.intake,
        ..OwnStats::default()
    };
    let (payload, report) = build(&mut snapshot, &own, &RenderConfig::default(), 1_700_000_000);
    let text = String::from_utf8(payload.data).unwrap();
    let render = report.render;
    assert_eq!(&text[..EXPECTED.len()], EXPECTED);
    assert_eq!(render.lines, EXPECTED.lines().count());
    assert_eq!(
        (render.counters, render.gauges, render.timers, render.sets),
        (7, 5, 3, 1)
    );

    // Then the server's own stats and numStats, counting every line.
    let total = report.total_lines;
    assert_eq!(total, render.lines + OWN_KEYS + 1);
    assert_eq!((text.lines().count(), payload.lines), (total, total));
    for expected in [
        "statsd.start_time 1699999000.5 1700000000",
        "statsd.metrics.discarded 10 1700000000",
        "statsd.pending_stats 26 1700000000",
        "statsd.metrics.batch.count 1 1700000000",
        "statsd.metrics.batch.discarded 1 1700000000",
        "statsd.render.counters.count 7 1700000000",
        "statsd.metrics.discarded.missing_value 1 1700000000",
    ] {
        assert!(
            text.lines().any(|l| l == expected),
            "missing {expected}:\n{text}"
        );
    }
    assert!(text
        .lines()
        .any(|l| l == format!("statsd.render.total {total} 1700000000")));
    assert_eq!(
        text.lines().last().unwrap(),
        format!("statsd.numStats {total} 1700000000")
    );
}
