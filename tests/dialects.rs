//! Every client's dialect, one golden test each: input lines -> the exact
//! Graphite bytes of one flush, through the flush's pure core (intake ->
//! shard -> merge -> `flush::build`, default settings: `stats.` prefixes,
//! a 10 s interval, so a counter of 1 is written as 0.1) at a fixed
//! timestamp; and how bad lines of each kind are counted. Then the same
//! through the server in process over UDP and TCP (the stats of the fields,
//! a TCP line ended by an orderly close, one cut off by a reset).

mod support;

use std::io::Write;
use std::net::Shutdown;
use std::time::Duration;

use statsd::aggregate::{merge, GaugeState, Hasher, IntakeCounts, Limits, Shard};
use statsd::flush::{build, OwnStats};
use statsd::intake::Intake;
use statsd::protocol::ParseError;
use statsd::render::RenderConfig;

use support::carbon::FakeCarbon;
use support::flushed::final_flush;
use support::istats::stat;
use support::server::Server;
use support::Statsd;

/// The flush's timestamp in the golden tests.
const TS: u64 = 1_700_000_000;

/// What one flush of `input` writes.
struct Golden {
    /// The metric lines (the server's own stats left out), exact bytes.
    metrics: String,
    /// What intake counted.
    intake: IntakeCounts,
}

impl Golden {
    /// Every discard reason with a count, as `reason=count`.
    fn discards(&self) -> Vec<String> {
        ParseError::ALL
            .iter()
            .filter(|r| self.intake.discarded_by[r.index()] > 0)
            .map(|r| format!("{}={}", r.key(), self.intake.discarded_by[r.index()]))
            .collect()
    }
}

/// `input` (one datagram) through intake, merge and `flush::build`.
fn golden(input: &str) -> Golden {
    let mut shard = Shard::new(Hasher::default(), Limits::default());
    Intake::new(Limits::default().max_line_bytes).ingest(&mut shard, input.as_bytes());
    let mut gauges = GaugeState::new(Hasher::default());
    let mut snapshot = merge(vec![shard], &mut gauges, 10_000);
    let intake = snapshot.intake;
    let own = OwnStats {
        interval: intake,
        ..OwnStats::default()
    };
    let (payload, report) = build(&mut snapshot, &own, &RenderConfig::default(), TS);
    let text = String::from_utf8(payload.data).expect("the payload is UTF-8");
    let metrics: String = text
        .lines()
        .take(report.render.lines)
        .map(|l| format!("{l}\n"))
        .collect();
    // The own stats follow, all of them under the metadata prefix.
    assert!(text
        .lines()
        .skip(report.render.lines)
        .all(|l| l.starts_with("statsd.")));
    Golden { metrics, intake }
}

/// Asserts `input` writes exactly `expected` (lines with the timestamp
/// left out get [`TS`]) and discards nothing.
fn assert_golden(input: &str, expected: &str) -> Golden {
    let got = golden(input);
    assert_eq!(got.metrics, with_ts(expected), "from:\n{input}");
    assert_eq!(got.intake.discarded, 0, "{:?}", got.discards());
    got
}

/// `path value` lines get ` {TS}`; `path value time` lines stay.
fn with_ts(expected: &str) -> String {
    expected
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| match l.split(' ').count() {
            2 => format!("{l} {TS}\n"),
            _ => format!("{l}\n"),
        })
        .collect()
}

#[test]
fn etsy_multi_metric() {
    assert_golden(
        "name:1|c:5|ms\nmulti:2|c|@0.5:7|g:3|s\n",
        "
        stats.multi 0.4
        stats.name 0.1
        stats.multi 7
        stats.timers.name.lower 5
        stats.timers.name.count 1
        stats.timers.name.mean 5
        stats.timers.name.upper 5
        stats.timers.name.upper_90 5
        stats.multi 1
        ",
    );
}

#[test]
fn dogstatsd_packed_values() {
    assert_golden(
        "lat:1:2:3|h\nhits:1:2:3|c\nu:a:b:a|s\ng:1:+2|g\nd:4:8|d|@0.5\n",
        "
        stats.hits 0.6
        stats.g 3
        stats.timers.d.lower 4
        stats.timers.d.count 4
        stats.timers.d.mean 6
        stats.timers.d.upper 8
        stats.timers.d.upper_90 4
        stats.timers.lat.lower 1
        stats.timers.lat.count 3
        stats.timers.lat.mean 2
        stats.timers.lat.upper 3
        stats.timers.lat.upper_90 2
        stats.u 2
        ",
    );
}

#[test]
fn packed_values_beside_multi_metric() {
    assert_golden(
        "x:1:2|c:5:6|ms|@0.5\n",
        "
        stats.x 0.3
        stats.timers.x.lower 5
        stats.timers.x.count 4
        stats.timers.x.mean 5.5
        stats.timers.x.upper 6
        stats.timers.x.upper_90 5
        ",
    );
}

#[test]
fn dogstatsd_tags() {
    assert_golden(
        "req:1|c|#zone:b,app:web/1,beta\nreq:2|c|#beta,zone:b,app:web/1\nclean:1|g|#a b:c;d~e=f\n",
        "
        stats.req;app=web-1;beta=true;zone=b 0.3
        stats.clean;a_b=c_d_e_f 1
        ",
    );
}

/// Keys are sorted and merged as they are written: `a b` and `a_b` are one
/// tag (the last value wins), `é` (written `__`) sorts first.
#[test]
fn tag_keys_sorted_and_merged_as_written() {
    assert_golden(
        "k:1|c|#a b:1,a_b:2\nk:1|c|#a_b:2\nm:1|g|#a b:c;d,\u{e9}\n",
        "
        stats.k;a_b=2 0.2
        stats.m;__=true;a_b=c_d 1
        ",
    );
}

#[test]
fn dogstatsd_fields_in_any_order() {
    let got = assert_golden(
        "\
f:1|c|@0.5|#a:b|c:id1|e:it-false
f:1|c|e:it-false|c:id1|#a:b|@0.5
f:1|c|c:id1|@0.5|#a:b|e:it-false
f:1|c|#a:b|e:it-false,cn-x|c:abc123
x:1|c|#a:b|c:abc123
",
        "
        stats.f;a=b 0.7
        stats.x;a=b 0.1
        ",
    );
    assert_eq!((got.intake.container_ids, got.intake.external_data), (5, 4));
}

#[test]
fn dogstatsd_container_id_alone() {
    let got = assert_golden(
        "x:1|c|c:abc\ng:2|g|c:abc\n",
        "
        stats.x 0.1
        stats.g 2
        ",
    );
    assert_eq!(got.intake.container_ids, 2);
}

#[test]
fn dogstatsd_timestamped_counter_and_gauge() {
    let got = assert_golden(
        "\
jobs:5|c|T1699990000
jobs:2|c|@0.5|#q:x|T1699990000
jobs:3|c|T1699990000
jobs:1|c|T1699990060
jobs:1|c
temp:7|g|T1699990010
temp:-3|g|T1699990020
temp:21|g
x:1|c|#a:b|T1796216437
",
        "
        stats.jobs 0.1
        stats.temp 21
        stats.jobs 8 1699990000
        stats.jobs 1 1699990060
        stats.jobs;q=x 4 1699990000
        stats.x;a=b 1 1796216437
        stats.temp 7 1699990010
        stats.temp -3 1699990020
        ",
    );
    assert_eq!(got.intake.timestamped, 7);
    assert_eq!(got.intake.lines, 9);
}

#[test]
fn dogstatsd_timestamp_only_on_counters_and_gauges() {
    let got = golden("t:5|ms|T1699990000\ns:a|s|T1699990000\nc:5|c|Tsoon\nc:5|c|T\nok:1|c\n");
    assert_eq!(got.metrics, with_ts("stats.ok 0.1"));
    assert_eq!(got.discards(), ["bad_timestamp=4"]);
}

#[test]
fn dogstatsd_second_tag_section_merges() {
    assert_golden(
        "x:1|c|#b:2|@1|#a:1\ny:1|c|#k:1|#k:2\n",
        "
        stats.x;a=1;b=2 0.1
        stats.y;k=2 0.1
        ",
    );
}

#[test]
fn graphite_tags_in_the_name() {
    assert_golden(
        "req;route=home;method=get:1|c\nt;a=b:5|ms\n",
        "
        stats.req;method=get;route=home 0.1
        stats.timers.t.lower;a=b 5
        stats.timers.t.count;a=b 1
        stats.timers.t.mean;a=b 5
        stats.timers.t.upper;a=b 5
        stats.timers.t.upper_90;a=b 5
        ",
    );
}

#[test]
fn influx_tags_in_the_name() {
    assert_golden(
        "cpu,host=a,dc=x:2|g\nreq,route=/x:1|c\n",
        "
        stats.req;route=-x 0.1
        stats.cpu;dc=x;host=a 2
        ",
    );
}

#[test]
fn every_tag_dialect_merged() {
    assert_golden(
        "m;a=1,b=2:1|c|#c:3,a:9\nm,b=2;a=1:1|c|#c:3|#a:9\n",
        "stats.m;a=9;b=2;c=3 0.2",
    );
}

#[test]
fn sections_without_equals_are_no_tags() {
    assert_golden("a;b:1|c\na,b:1|c\n", "stats.ab 0.2");
}

#[test]
fn events_and_service_checks_are_discarded_and_counted() {
    let got = golden(
        "_e{5,4}:title|text|#a:b\n_sc|db.up|0|#env:prod\n_e{1,1}:a|b\n_sc|x|2|m:down\nok:1|c\n",
    );
    assert_eq!(got.metrics, with_ts("stats.ok 0.1"));
    assert_eq!(got.discards(), ["event=2", "service_check=2"]);
    assert_eq!((got.intake.lines, got.intake.discarded), (1, 4));
}

#[test]
fn duplicate_field_is_discarded_and_counted() {
    let got = golden(
        "x:1|c|@0.5|@0.5\nx:1|c|c:a|c:b\nx:1|c|e:a|e:b\nx:1|c|T1|T2\nx:1|c|#a:b|c:a|@1|c:a\nok:1|c\n",
    );
    assert_eq!(got.metrics, with_ts("stats.ok 0.1"));
    assert_eq!(got.discards(), ["duplicate_field=5"]);
}

#[test]
fn unknown_field_is_discarded_and_counted() {
    let got = golden("x:1|c|z:1\nx:1|c|\nx:1|c|0.5\nx:1|c|C:abc\nx:1|c|#a:b|q\nok:1|c\n");
    assert_eq!(got.metrics, with_ts("stats.ok 0.1"));
    assert_eq!(got.discards(), ["unknown_field=5"]);
}

#[test]
fn white_space_around_a_value() {
    assert_golden(
        "x: 5 |c\nx:5\t|c\ng:\t7\t|g\nt: 12.5 |ms\ns: alice |s\ns:alice|s\np: 1 : 2 |c\n",
        "
        stats.p 0.3
        stats.x 1
        stats.g 7
        stats.timers.t.lower 12.5
        stats.timers.t.count 1
        stats.timers.t.mean 12.5
        stats.timers.t.upper 12.5
        stats.timers.t.upper_90 12.5
        stats.s 1
        ",
    );
}

// Through the server in process.

/// Flags for the server in process: carbon on `carbon`, a 100 s interval
/// (one flush: the final one; a counter of 1 is written as 0.01).
fn start(carbon: &FakeCarbon) -> Server {
    let port = carbon.port.to_string();
    Server::start(&[
        "-p",
        "0",
        "-q",
        "--graphite-host",
        "127.0.0.1",
        "--graphite-port",
        &port,
        "--flush-interval",
        "100",
    ])
}

/// Every dialect in one datagram and over one TCP connection: the lines
/// written, and the stats of the fields and of each discard reason.
#[test]
fn round_trip_counts_fields_and_reasons() {
    let input = "\
f:1|c|@0.5|#a:b|c:id1|e:it-false
f:1|c|e:it-false,cn-x|T1699990000|c:id1|#a:b
g;k=v:3|g|c:id2
cpu,host=a:1:2:3|h|#dc:x
multi:1|c:5|ms
x: 5 |c
_e{5,4}:title|text
_sc|db.up|0
x:1|c|c:a|c:b
x:1|c|z:1
x:1|c|@2
t:1|ms|T1699990000
;k=v:1|c
";
    let carbon = FakeCarbon::start();
    let server = start(&carbon);
    server.send_udp(input.as_bytes());
    let mut tcp = server.connect_tcp();
    tcp.write_all(input.as_bytes()).expect("write");
    tcp.shutdown(Shutdown::Write).expect("close in order");
    server.poll_istats(|s| stat(s, "metrics.received") + stat(s, "metrics.discarded") == 26);
    let flush = final_flush(server, &carbon);
    flush.assert_metrics(
        "
        stats.f;a=b 0.04 {ts}
        stats.multi 0.02 {ts}
        stats.x 0.1 {ts}
        stats.g;k=v 3 {ts}
        stats.timers.cpu.lower;dc=x;host=a 1 {ts}
        stats.timers.cpu.count;dc=x;host=a 6 {ts}
        stats.timers.cpu.mean;dc=x;host=a 2 {ts}
        stats.timers.cpu.upper;dc=x;host=a 3 {ts}
        stats.timers.cpu.upper_90;dc=x;host=a 3 {ts}
        stats.timers.multi.lower 5 {ts}
        stats.timers.multi.count 2 {ts}
        stats.timers.multi.mean 5 {ts}
        stats.timers.multi.upper 5 {ts}
        stats.timers.multi.upper_90 5 {ts}
        stats.f;a=b 2 1699990000
        ",
    );
    for (key, value) in [
        ("metrics.received", 12.0),
        ("metrics.container_ids", 6.0),
        ("metrics.external_data", 4.0),
        ("metrics.timestamped", 2.0),
        ("metrics.discarded", 14.0),
        ("metrics.discarded.event", 2.0),
        ("metrics.discarded.service_check", 2.0),
        ("metrics.discarded.duplicate_field", 2.0),
        ("metrics.discarded.unknown_field", 2.0),
        ("metrics.discarded.bad_rate", 2.0),
        ("metrics.discarded.bad_timestamp", 2.0),
        ("metrics.discarded.empty_name", 2.0),
    ] {
        assert_eq!(flush.own(key), value, "{key}: {:?}", flush.discards());
    }
}

/// `echo -n "x:1|c" | nc host 8125`: the line ended by the orderly close is
/// a complete line, counted and written.
#[test]
fn tcp_line_without_final_newline_at_orderly_close() {
    let carbon = FakeCarbon::start();
    let server = start(&carbon);
    let mut tcp = server.connect_tcp();
    tcp.write_all(b"x:1|c").expect("write");
    tcp.shutdown(Shutdown::Write).expect("close in order");
    let stats = server.poll_istats(|s| stat(s, "metrics.received") == 1);
    assert_eq!(stat(&stats, "metrics.discarded"), 0, "{stats}");
    drop(tcp);
    let flush = final_flush(server, &carbon);
    flush.assert_metrics("stats.x 0.01 {ts}");
    assert_eq!(flush.own("metrics.discarded"), 0.0);
}

/// A partial line, then a reset (SO_LINGER 0, then close): the partial line
/// is lost and counted as `cut_off`; the complete line before it is kept.
#[test]
fn tcp_partial_line_at_reset_is_cut_off() {
    let carbon = FakeCarbon::start();
    let server = start(&carbon);
    let tcp = server.connect_tcp();
    tcp.set_nodelay(true).expect("nodelay");
    // One write, one segment: the server reads the partial line together
    // with the complete one, so once that one is counted the partial one is
    // held by the server, not by the kernel.
    (&tcp).write_all(b"a:1|c\nb:2").expect("write");
    server.poll_istats(|s| stat(s, "metrics.received") == 1);
    socket2::SockRef::from(&tcp)
        .set_linger(Some(Duration::ZERO))
        .expect("SO_LINGER 0");
    drop(tcp);
    let stats = server.poll_istats(|s| stat(s, "metrics.discarded.cut_off") == 1);
    assert_eq!(stat(&stats, "metrics.discarded"), 1, "{stats}");
    let flush = final_flush(server, &carbon);
    flush.assert_metrics("stats.a 0.01 {ts}");
    assert_eq!(flush.own("metrics.discarded.cut_off"), 1.0);
}
