//! Etsy's management console, differentially: the same datagrams and the
//! same commands to Etsy's statsd 0.9.0 (node, installed by scripts/test.sh
//! under target/peers/node) and to ours; every reply compared byte for byte
//! (the seconds of `stats` within the gap between the two starts).

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use statsd::config::Config;
use support::mgmt::{ask, EtsyProgram};
use support::server::Server;
use support::{free_port, Statsd, WAIT};

/// Etsy's statsd, run by node on a config of ours; killed on drop.
struct Etsy {
    _program: EtsyProgram,
    udp: SocketAddr,
    mgmt: SocketAddr,
}

/// The config both servers are given: Etsy reads it as its file; ours gets
/// it as `Config.etsy_file` (and the same interval and ports by flags).
fn etsy_config(udp: u16, mgmt: u16) -> serde_json::Value {
    serde_json::json!({
        "port": udp,
        "address": "127.0.0.1",
        "mgmt_port": mgmt,
        "mgmt_address": "127.0.0.1",
        "flushInterval": 3_600_000,
        "percentThreshold": [90, 99.9],
        "graphite": { "legacyNamespace": false, "globalPrefix": "stats" },
        "histogram": [ { "metric": "t.", "bins": [10, 100, "inf"] } ],
        "title": "etsy-mgmt-test",
        "keyFlush": null,
        "deleteCounters": false,
        "gaugesMaxTTL": 3,
        "flush_counts": true
    })
}

impl Etsy {
    fn start() -> Etsy {
        let (udp, mgmt) = (free_port(), free_port());
        let mgmt = SocketAddr::from(([127, 0, 0, 1], mgmt));
        Etsy {
            _program: EtsyProgram::start("stats.js", &etsy_config(udp, mgmt.port()), mgmt),
            udp: SocketAddr::from(([127, 0, 0, 1], udp)),
            mgmt,
        }
    }
}

/// Ours, in process, with Etsy's config file as `etsy_file` (its ports are
/// Etsy's: `config` writes what the file says) and the console on.
fn ours(etsy: &Etsy) -> Server {
    let flags = [
        "statsd",
        "-p",
        "0",
        "-n",
        "127.0.0.1",
        "--workers",
        "1",
        "--console",
        "-q",
        "--no-monitor",
        "--flush-interval",
        "3600",
        "--mgmt-port",
        "0",
        "--mgmt-address",
        "127.0.0.1",
    ];
    let mut config = Config::parse_from(flags).expect("flags");
    config.etsy_file = Some(etsy_config(etsy.udp.port(), etsy.mgmt.port()));
    Server::with_config(config)
}

/// The datagrams: counters, timers, gauges, sets and bad lines, names that
/// inspect quotes (dots, dashes, a leading digit, an array index), arriving
/// in name order (Etsy lists in arrival order, we in name order).
fn datagrams() -> Vec<String> {
    let mut out: Vec<String> = [
        "123:1|c",
        "9lives:2|c",
        "_under:3|c",
        "a-b.c:1|c|@0.1",
        "app.errors:5|c\napp.hits:2.5|c",
        "app.hits:1|c",
        "plain:-3|c",
        "x/y:4|c",
        "g.a:5|g",
        "g.a:+3|g",
        "g.b:-2|g",
        "g.c:7|g",
        "g.c:-1|g",
        "gauge_plain:0.000001|g",
        "t.a:1|ms\nt.a:2|ms\nt.a:3.5|ms",
        "t.b:300|ms",
        "s.users:alice|s\ns.users:bob|s\ns.users:alice|s",
        "s.other:1|s",
        "bad_line_without_value",
        "x:abc|c",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Long arrays: cut at 100 items, grouped into columns.
    for chunk in (0..130).collect::<Vec<u32>>().chunks(20) {
        let lines: Vec<String> = chunk
            .iter()
            .map(|i| format!("t.many:{}|ms", i * 7 % 101))
            .collect();
        out.push(lines.join("\n"));
    }
    out.push("t.wide:123.456|ms".into());
    for i in 0..12 {
        out.push(format!("t.wide:{}|ms", f64::from(i) * 1234.5678));
    }
    out
}

/// Lines of the datagrams, good and bad.
fn line_count(datagrams: &[String]) -> usize {
    datagrams.iter().map(|d| d.lines().count()).sum()
}

/// Waits until `counters` says every line arrived.
fn wait_received(mgmt: SocketAddr, lines: usize, who: &str) {
    let want = format!("'statsd.metrics_received': {lines}");
    let mut last = String::new();
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        last = ask(mgmt, "counters");
        if last.contains(&want) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{who} never counted {lines} lines; counters:\n{last}");
}

/// `stats` with its seconds apart: the exact lines, and the time ones.
fn split_stats(reply: &str) -> (Vec<String>, Vec<(String, i64)>) {
    const TIMES: [&str; 4] = [
        "uptime",
        "messages.last_msg_seen",
        "graphite.last_flush",
        "graphite.last_exception",
    ];
    let mut exact = Vec::new();
    let mut times = Vec::new();
    for line in reply.split_inclusive('\n') {
        match line.split_once(": ") {
            Some((key, value)) if TIMES.contains(&key) => {
                times.push((key.to_string(), value.trim().parse().expect("seconds")));
            }
            _ => exact.push(line.to_string()),
        }
    }
    (exact, times)
}

/// `util.inspect` of a JSON object, by node itself.
fn node_inspect(object: &serde_json::Value) -> String {
    let out = Command::new("node")
        .args([
            "-e",
            "process.stdout.write(require('util').inspect(JSON.parse(process.argv[1])))",
        ])
        .arg(object.to_string())
        .output()
        .expect("run node");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn replies_match_etsy_statsd_byte_for_byte() {
    let etsy = Etsy::start();
    let ours = ours(&etsy);
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let datagrams = datagrams();
    for datagram in &datagrams {
        sender.send_to(datagram.as_bytes(), etsy.udp).unwrap();
        sender
            .send_to(datagram.as_bytes(), ours.metrics_addr())
            .unwrap();
    }
    let lines = line_count(&datagrams);
    wait_received(etsy.mgmt, lines, "Etsy's statsd");
    wait_received(ours.mgmt_addr(), lines, "ours");

    let same = |command: &str| {
        let theirs = ask(etsy.mgmt, command);
        let mine = ask(ours.mgmt_addr(), command);
        assert_eq!(mine, theirs, "reply to {command:?}: ours, then Etsy's");
        mine
    };
    for command in [
        "help",
        "counters",
        "timers",
        "gauges",
        "config",
        "health",
        "nonsense",
        "",
        "health down",
        "health",
        "health sideways",
        "health UP",
        "health",
    ] {
        same(command);
    }
    assert_eq!(same("health down"), "health: down\n");
    same("health up");

    let (theirs, mine) = (ask(etsy.mgmt, "stats"), ask(ours.mgmt_addr(), "stats"));
    let (their_exact, their_times) = split_stats(&theirs);
    let (my_exact, my_times) = split_stats(&mine);
    assert_eq!(
        my_exact, their_exact,
        "stats apart from its seconds:\n{mine}\n{theirs}"
    );
    assert_eq!(my_times.len(), 4, "{mine}");
    for ((key, mine_s), (their_key, theirs_s)) in my_times.iter().zip(&their_times) {
        assert_eq!(key, their_key, "{mine}\n{theirs}");
        assert!(
            (mine_s - theirs_s).abs() <= 5,
            "{key}: ours {mine_s}, Etsy {theirs_s}"
        );
    }

    // Deletion: exact names, folder globs, misses, Object.prototype names,
    // empty parameters; then the listings again.
    for command in [
        "delcounters app.* plain nothing.here toString",
        "delcounters  123",
        "delcounters",
        "deltimers t.a t.* t.gone",
        "delgauges g.a g.nothing.*",
        "delgauges g.* gauge_plain",
        "counters",
        "timers",
        "gauges",
    ] {
        same(command);
    }
    // A deleted gauge is gone for good: a delta starts from zero again.
    for datagram in ["g.a:+2|g", "zz.fresh:1|c"] {
        sender.send_to(datagram.as_bytes(), etsy.udp).unwrap();
        sender
            .send_to(datagram.as_bytes(), ours.metrics_addr())
            .unwrap();
    }
    wait_received(etsy.mgmt, lines + 2, "Etsy's statsd");
    wait_received(ours.mgmt_addr(), lines + 2, "ours");
    same("gauges");
    same("counters");
    same("quit");

    // Etsy 0.9.0 has no `sets`: ours lists them as Etsy's other listings
    // are written (distinct members), checked against node's inspect.
    assert_eq!(ask(etsy.mgmt, "sets"), "ERROR\n");
    let sets = serde_json::json!({ "s.other": 1, "s.users": 2 });
    assert_eq!(
        ask(ours.mgmt_addr(), "sets"),
        format!("{}\nEND\n\n", node_inspect(&sets))
    );
    assert_eq!(
        ask(ours.mgmt_addr(), "delsets s.* s.none"),
        "deleted: s.other\ndeleted: s.users\nmetric s.none not found\nEND\n\n"
    );
    assert_eq!(ask(ours.mgmt_addr(), "sets"), "{}\nEND\n\n");
    ours.stop();
}

/// A random number of the kinds counters, gauges and timers hold.
fn random_number(rng: &mut fastrand::Rng) -> f64 {
    let n = match rng.u8(0..6) {
        0 => f64::from(rng.u32(0..1000)),
        1 => f64::from(rng.u32(0..100_000)) / 100.0,
        2 => rng.f64() * 10f64.powi(rng.i32(-12..25)),
        3 => -f64::from(rng.u32(0..5000)) / 7.0,
        4 => 1.0 / f64::from(rng.u32(1..1000)),
        _ => f64::from(rng.u32(0..10)),
    };
    if n == 0.0 {
        0.0 // JSON has no -0
    } else {
        n
    }
}

/// Our `util.inspect` against node's on 300 random objects of the shapes
/// the console lists: wrapping, column grouping, cut arrays, key quoting.
#[test]
fn inspect_matches_node_on_random_objects() {
    use statsd::mgmt::inspect::{inspect_object, Value};
    const KEYS: [&str; 14] = [
        "a",
        "counter",
        "_x9",
        "a.b",
        "stats.some.long.metric-name",
        "9lives",
        "0",
        "17",
        "4294967295",
        "x-y",
        "it's",
        "say \"hi\"",
        "tab\there",
        "very.long.name.that.goes.on.and.on",
    ];
    let mut rng = fastrand::Rng::with_seed(14);
    let mut objects = Vec::new();
    for _ in 0..300 {
        let mut keys: Vec<&str> = KEYS.to_vec();
        rng.shuffle(&mut keys);
        keys.truncate(rng.usize(0..=10));
        let arrays = rng.bool();
        let entries: Vec<(String, serde_json::Value, Vec<f64>)> = keys
            .iter()
            .map(|key| {
                let items: Vec<f64> = if arrays {
                    let len = [0, 1, 3, 6, 7, 12, 40, 100, 101, 140][rng.usize(0..10)];
                    (0..len).map(|_| random_number(&mut rng)).collect()
                } else {
                    vec![random_number(&mut rng)]
                };
                let json = if arrays {
                    serde_json::json!(items)
                } else {
                    serde_json::json!(items[0])
                };
                (key.to_string(), json, items)
            })
            .collect();
        objects.push(entries);
    }
    let input: Vec<Vec<(String, serde_json::Value)>> = objects
        .iter()
        .map(|entries| {
            entries
                .iter()
                .map(|(k, v, _)| (k.clone(), v.clone()))
                .collect()
        })
        .collect();
    let script = "const util = require('util');\
        const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));\
        process.stdout.write(JSON.stringify(input.map(e => util.inspect(Object.fromEntries(e)))));";
    let mut child = Command::new("node")
        .args(["-e", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run node");
    std::io::Write::write_all(
        child.stdin.as_mut().unwrap(),
        serde_json::to_string(&input).unwrap().as_bytes(),
    )
    .unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("node's output");
    assert!(out.status.success());
    let expected: Vec<String> = serde_json::from_slice(&out.stdout).expect("node's JSON");
    for (entries, node) in objects.iter().zip(&expected) {
        let ours: Vec<(&str, Value<'_>)> = entries
            .iter()
            .map(|(key, json, items)| {
                let value = if json.is_array() {
                    Value::Numbers(items)
                } else {
                    Value::Number(items[0])
                };
                (key.as_str(), value)
            })
            .collect();
        let mine = inspect_object(&ours);
        if &mine != node {
            let differ = mine.lines().zip(node.lines()).position(|(a, b)| a != b);
            panic!("first differing line {differ:?}\nours:\n{mine}\nnode:\n{node}");
        }
    }
}
