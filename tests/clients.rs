//! The real client libraries, as users run them, against the server in
//! process: PyPI `statsd` 4.0.1 and `datadog` 0.56.0 (in the venv
//! `target/peers/venv`) and npm `hot-shots` 17.1.1 (`target/peers/node`), all
//! installed by `scripts/test.sh`. Each script sends a fixed set of metrics
//! to the server's UDP port (and TCP where the client has it); the test
//! asserts the exact Graphite lines carbon got and that nothing was
//! discarded. A missing peer fails the test (run scripts/test.sh), never
//! skips it.
//!
//! Sampling is made deterministic by replacing the client's random number
//! (`random.random`, `Math.random`) with 0: every sampled call is sent, with
//! its `|@rate`. The server runs with a 100 s interval, so its one flush is the
//! final one and a counter of 1 is written as 0.01.

mod support;

use std::path::PathBuf;

use support::carbon::FakeCarbon;
use support::flushed::{final_flush, Flush};
use support::istats::stat;
use support::peers::{peer, python, run};
use support::server::Server;
use support::Statsd;

/// The node_modules with hot-shots, and node itself.
fn node() -> (PathBuf, PathBuf) {
    let modules = peer("node/node_modules", "npm hot-shots");
    peer("node/node_modules/hot-shots/package.json", "npm hot-shots");
    let node = ["/usr/bin/node", "/usr/local/bin/node"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("node is missing: run scripts/test.sh (it installs npm and node)")
        });
    (node, modules)
}

/// The server in process, carbon on `carbon`, a 100 s interval.
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

/// Waits until the server has taken in `lines` lines (accepted or not),
/// stops it, and returns its final flush.
fn flush_after(server: Server, carbon: &FakeCarbon, lines: u64) -> Flush {
    server.poll_istats(|s| stat(s, "metrics.received") + stat(s, "metrics.discarded") >= lines);
    let flush = final_flush(server, carbon);
    assert_eq!(
        flush.own("metrics.discarded"),
        0.0,
        "the client's lines were discarded: {:?}",
        flush.discards()
    );
    assert_eq!(flush.own("metrics.received"), lines as f64);
    flush
}

const PYPI_STATSD: &str = r#"
import random, sys
random.random = lambda: 0.0  # every sampled call is sent
import statsd

host, port, proto = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if proto == "udp":
    c = statsd.StatsClient(host, port, prefix="pyudp")
else:
    c = statsd.TCPStatsClient(host, port, prefix="pytcp")
c.incr("hits")
c.incr("hits", 4)
c.decr("hits")
c.incr("sampled", 1, rate=0.5)
c.gauge("g", 10)
c.gauge("g", 3, delta=True)
c.gauge("g", -2, delta=True)
c.gauge("neg", -5)  # a pipeline: 0|g then -5|g
c.timing("t", 12.5)
c.timing("t", 7.25, rate=0.5)
c.set("users", "alice")
c.set("users", "bob")
c.set("users", "alice")
with c.pipeline() as p:
    p.incr("piped")
    p.incr("piped", 2)
c.close()
"#;

/// PyPI `statsd`: counter, gauge (absolute, deltas, a negative value set by
/// its `0|g` then `-5|g` pipeline), timer, set, sample rate, pipeline; over
/// UDP (`StatsClient`) and TCP (`TCPStatsClient`).
#[test]
fn pypi_statsd_over_udp_and_tcp() {
    let python = python("statsd", "PyPI statsd 4.0.1");
    let carbon = FakeCarbon::start();
    let server = start(&carbon);
    let port = server.metrics_addr().port().to_string();
    for proto in ["udp", "tcp"] {
        let args = [
            "-c".to_string(),
            PYPI_STATSD.to_string(),
            "127.0.0.1".to_string(),
            port.clone(),
            proto.to_string(),
        ];
        run("PyPI statsd", &python, &args, &[]);
    }
    let flush = flush_after(server, &carbon, 32);
    let mut expected = String::new();
    for section in [
        "
        stats.{p}.hits 0.04 {ts}
        stats.{p}.piped 0.03 {ts}
        stats.{p}.sampled 0.02 {ts}",
        "
        stats.{p}.g 11 {ts}
        stats.{p}.neg -5 {ts}",
        "
        stats.timers.{p}.t.lower 7.25 {ts}
        stats.timers.{p}.t.count 3 {ts}
        stats.timers.{p}.t.mean 9.875 {ts}
        stats.timers.{p}.t.upper 12.5 {ts}
        stats.timers.{p}.t.upper_90 7.25 {ts}",
        "
        stats.{p}.users 2 {ts}",
    ] {
        // Sorted by name within each kind: pytcp before pyudp.
        for p in ["pytcp", "pyudp"] {
            expected.push_str(&section.replace("{p}", p));
        }
    }
    flush.assert_metrics(&expected);
}

const DATADOG: &str = r#"
import sys
from datadog.dogstatsd import base
base.random = lambda: 0.0  # every sampled call is sent
from datadog.dogstatsd import DogStatsd

host, port = sys.argv[1], int(sys.argv[2])
d = DogStatsd(host=host, port=port, namespace="dd", constant_tags=["env:test"],
              container_id="abc123", disable_telemetry=True)
d.increment("req", tags=["route:/home", "method:get"])
d.increment("req", 2, tags=["method:get", "route:/home"], sample_rate=0.5)
d.decrement("errs")
d.gauge("temp", 21.5, tags=["room:a b"])
d.gauge_with_timestamp("temp", 19, 1699990000, tags=["room:lab"])
d.count_with_timestamp("jobs", 7, timestamp=1699990060, tags=["q:x"])
d.count_with_timestamp("jobs", 3, timestamp=1699990060, tags=["q:x"])
d.histogram("lat", 10, tags=["a:1"])
d.histogram("lat", 20, tags=["a:1"])
d.histogram("lat", 30, tags=["a:1"])
d.distribution("size", 3)
d.distribution("size", 5)
d.timing("t", 12.5)
d.set("users", "alice")
d.set("users", "bob")
d.increment("carded", tags=["k:v"], cardinality="low")
d.close_socket()
"#;

/// The `datadog` client in a container: `container_id=` (`|c:`), external
/// data from `DD_EXTERNAL_ENV` (`|e:`), constant and per-call tags, sample
/// rate, `gauge_with_timestamp`/`count_with_timestamp` (`|T`, written at
/// their own second, the count raw), histogram and distribution (timers),
/// a per-call cardinality (`|card:`).
#[test]
fn datadog_dogstatsd_in_a_container() {
    let python = python("datadog", "PyPI datadog 0.56.0");
    let carbon = FakeCarbon::start();
    let server = start(&carbon);
    let port = server.metrics_addr().port().to_string();
    let args = [
        "-c".to_string(),
        DATADOG.to_string(),
        "127.0.0.1".to_string(),
        port,
    ];
    run(
        "datadog",
        &python,
        &args,
        &[("DD_EXTERNAL_ENV", "it-false,cn-app,pu-1234")],
    );
    let flush = flush_after(server, &carbon, 16);
    flush.assert_metrics(
        "
        stats.dd.carded;env=test;k=v 0.01 {ts}
        stats.dd.errs;env=test -0.01 {ts}
        stats.dd.req;env=test;method=get;route=-home 0.05 {ts}
        stats.dd.temp;env=test;room=a_b 21.5 {ts}
        stats.timers.dd.lat.lower;a=1;env=test 10 {ts}
        stats.timers.dd.lat.count;a=1;env=test 3 {ts}
        stats.timers.dd.lat.mean;a=1;env=test 20 {ts}
        stats.timers.dd.lat.upper;a=1;env=test 30 {ts}
        stats.timers.dd.lat.upper_90;a=1;env=test 20 {ts}
        stats.timers.dd.size.lower;env=test 3 {ts}
        stats.timers.dd.size.count;env=test 2 {ts}
        stats.timers.dd.size.mean;env=test 4 {ts}
        stats.timers.dd.size.upper;env=test 5 {ts}
        stats.timers.dd.size.upper_90;env=test 3 {ts}
        stats.timers.dd.t.lower;env=test 12.5 {ts}
        stats.timers.dd.t.count;env=test 1 {ts}
        stats.timers.dd.t.mean;env=test 12.5 {ts}
        stats.timers.dd.t.upper;env=test 12.5 {ts}
        stats.timers.dd.t.upper_90;env=test 12.5 {ts}
        stats.dd.users;env=test 2 {ts}
        stats.dd.jobs;env=test;q=x 10 1699990060
        stats.dd.temp;env=test;room=lab 19 1699990000
        ",
    );
    assert_eq!(flush.own("metrics.container_ids"), 16.0);
    assert_eq!(flush.own("metrics.external_data"), 16.0);
    assert_eq!(flush.own("metrics.timestamped"), 3.0);
}

const DATADOG_EVENTS: &str = r#"
import sys
from datadog.dogstatsd import DogStatsd

host, port = sys.argv[1], int(sys.argv[2])
d = DogStatsd(host=host, port=port, container_id="abc123", disable_telemetry=True)
d.event("Deploy", "v1.2 is out", alert_type="info", tags=["env:test"])
d.service_check("db.up", DogStatsd.OK, tags=["env:test"], message="fine")
d.increment("after")
d.close_socket()
"#;

/// The `datadog` client's events and service checks: Graphite cannot store
/// them, so they are counted under `event` and `service_check`, and the
/// metric sent after them is kept.
#[test]
fn datadog_events_and_service_checks_are_counted() {
    let python = python("datadog", "PyPI datadog 0.56.0");
    let carbon = FakeCarbon::start();
    let server = start(&carbon);
    let port = server.metrics_addr().port().to_string();
    let args = [
        "-c".to_string(),
        DATADOG_EVENTS.to_string(),
        "127.0.0.1".to_string(),
        port,
    ];
    run("datadog events", &python, &args, &[]);
    server.poll_istats(|s| stat(s, "metrics.received") + stat(s, "metrics.discarded") >= 3);
    let flush = final_flush(server, &carbon);
    flush.assert_metrics("stats.after 0.01 {ts}");
    assert_eq!(flush.discards(), ["event=1", "service_check=1"]);
}

const HOT_SHOTS: &str = r#"
Math.random = () => 0; // every sampled call is sent
const StatsD = require('hot-shots');
const [host, port, prefix, flavour, protocol] = process.argv.slice(1);
const options = {
  host, port: Number(port), protocol, prefix: `${prefix}.`, globalTags: { env: 'test' },
  errorHandler: (e) => { console.error(`hot-shots: ${e}`); process.exitCode = 1; },
};
if (flavour === 'telegraf') {
  options.telegraf = true;
} else if (flavour === 'datadog') {
  Object.assign(options, {
    datadog: true, containerID: 'abc123', cardinality: 'low', includeDatadogTelemetry: false,
  });
} else {
  options.datadog = false;
}
const c = new StatsD(options);
c.increment('req', 1, ['route:home', 'method:get']);
c.increment('req', 2, 0.5, ['method:get', 'route:home']);
c.decrement('errs');
c.gauge('temp', 21.5, ['room:lab']);
c.gaugeDelta('temp', 2, ['room:lab']);
c.gaugeDelta('temp', -0.5, ['room:lab']);
c.histogram('lat', 10, ['a:1']);
c.histogram('lat', 20, ['a:1']);
c.histogram('lat', 30, ['a:1']);
c.distribution('size', 3);
c.distribution('size', 5);
c.timing('t', 12.5);
c.set('users', 'alice');
c.set('users', 'bob');
c.set('users', 'alice');
if (flavour !== 'telegraf') {
  // Telegraf has no timestamps: hot-shots leaves them out there.
  c.gauge('stamped', 19, { timestamp: 1699990000, tags: ['room:lab'] });
  c.increment('jobs', 7, { timestamp: 1699990060 });
}
c.close((err) => { if (err) { console.error(`close: ${err}`); process.exitCode = 1; } });
"#;

/// Lines the hot-shots script sends: 15, and 2 timestamped ones but in
/// Telegraf mode.
fn hot_shots_lines(flavour: &str) -> u64 {
    if flavour == "telegraf" {
        15
    } else {
        17
    }
}

/// Runs the hot-shots script: metrics under `prefix`, `flavour` `plain`
/// (DogStatsD tags), `telegraf` or `datadog`, over `protocol` (`udp`, `tcp`).
fn hot_shots(server: &Server, prefix: &str, flavour: &str, protocol: &str) {
    let (node, modules) = node();
    let port = server.metrics_addr().port().to_string();
    let args = [
        "-e".to_string(),
        HOT_SHOTS.to_string(),
        "127.0.0.1".to_string(),
        port,
        prefix.to_string(),
        flavour.to_string(),
        protocol.to_string(),
    ];
    let modules = modules.to_string_lossy().into_owned();
    run("hot-shots", &node, &args, &[("NODE_PATH", &modules)]);
}

/// What the hot-shots script writes, kind by kind (`{p}` the prefix): the
/// same series however the tags were sent.
const HOT_SHOTS_WRITTEN: [&str; 4] = [
    "
    stats.{p}.errs;env=test -0.01 {ts}
    stats.{p}.req;env=test;method=get;route=home 0.05 {ts}",
    "
    stats.{p}.temp;env=test;room=lab 23 {ts}",
    "
    stats.timers.{p}.lat.lower;a=1;env=test 10 {ts}
    stats.timers.{p}.lat.count;a=1;env=test 3 {ts}
    stats.timers.{p}.lat.mean;a=1;env=test 20 {ts}
    stats.timers.{p}.lat.upper;a=1;env=test 30 {ts}
    stats.timers.{p}.lat.upper_90;a=1;env=test 20 {ts}
    stats.timers.{p}.size.lower;env=test 3 {ts}
    stats.timers.{p}.size.count;env=test 2 {ts}
    stats.timers.{p}.size.mean;env=test 4 {ts}
    stats.timers.{p}.size.upper;env=test 5 {ts}
    stats.timers.{p}.size.upper_90;env=test 3 {ts}
    stats.timers.{p}.t.lower;env=test 12.5 {ts}
    stats.timers.{p}.t.count;env=test 1 {ts}
    stats.timers.{p}.t.mean;env=test 12.5 {ts}
    stats.timers.{p}.t.upper;env=test 12.5 {ts}
    stats.timers.{p}.t.upper_90;env=test 12.5 {ts}",
    "
    stats.{p}.users;env=test 2 {ts}",
];

/// The timestamped ones, written at their own second after the rest.
const HOT_SHOTS_STAMPED: [&str; 2] = [
    "
    stats.{p}.jobs;env=test 7 1699990060",
    "
    stats.{p}.stamped;env=test;room=lab 19 1699990000",
];

/// `sections` (kinds in flush order) for each of `prefixes` (in name
/// order): within a kind, series are sorted by name.
fn by_kind(sections: &[&str], prefixes: &[&str]) -> String {
    let mut out = String::new();
    for section in sections {
        for p in prefixes {
            out.push_str(&section.replace("{p}", p));
        }
    }
    out
}

/// hot-shots as most users run it: DogStatsD tags (`|#`), sample rate,
/// gauge deltas, timestamps, no Datadog extensions; over UDP and TCP.
#[test]
fn hot_shots_dogstatsd_tags_over_udp_and_tcp() {
    let carbon = FakeCarbon::start();
    let server = start(&carbon);
    hot_shots(&server, "hstcp", "plain", "tcp");
    hot_shots(&server, "hsudp", "plain", "udp");
    let flush = flush_after(server, &carbon, 2 * hot_shots_lines("plain"));
    let prefixes = ["hstcp", "hsudp"];
    let sections: Vec<&str> = HOT_SHOTS_WRITTEN
        .iter()
        .chain(&HOT_SHOTS_STAMPED)
        .copied()
        .collect();
    flush.assert_metrics(&by_kind(&sections, &prefixes));
    assert_eq!(flush.own("metrics.timestamped"), 4.0);
}

/// hot-shots with `telegraf: true`: the tags come in the name
/// (`name,k=v:1|c`, InfluxDB style); over UDP and TCP.
#[test]
fn hot_shots_telegraf_over_udp_and_tcp() {
    let carbon = FakeCarbon::start();
    let server = start(&carbon);
    hot_shots(&server, "tgtcp", "telegraf", "tcp");
    hot_shots(&server, "tgudp", "telegraf", "udp");
    let flush = flush_after(server, &carbon, 2 * hot_shots_lines("telegraf"));
    flush.assert_metrics(&by_kind(&HOT_SHOTS_WRITTEN, &["tgtcp", "tgudp"]));
}

/// hot-shots in Datadog mode: `|c:` container id and `|card:` cardinality
/// after the tags of every line.
#[test]
fn hot_shots_datadog_mode_in_a_container() {
    let carbon = FakeCarbon::start();
    let server = start(&carbon);
    hot_shots(&server, "hd", "datadog", "udp");
    let lines = hot_shots_lines("datadog");
    let flush = flush_after(server, &carbon, lines);
    let sections: Vec<&str> = HOT_SHOTS_WRITTEN
        .iter()
        .chain(&HOT_SHOTS_STAMPED)
        .copied()
        .collect();
    flush.assert_metrics(&by_kind(&sections, &["hd"]));
    assert_eq!(flush.own("metrics.container_ids"), lines as f64);
}
