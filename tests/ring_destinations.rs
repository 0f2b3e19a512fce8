//! Several carbon destinations (`--graphite-host a:p:i,b:p:i,...`) against
//! the real cluster machinery: the placement of 10,000 names by us equals,
//! name by name, the placement by a real carbon-relay (Debian's
//! graphite-carbon, `RELAY_METHOD = consistent-hashing`) in front of the
//! same destinations, for REPLICATION_FACTOR 1 and 2; one destination down
//! keeps its share in its own backlog while the others get theirs on time;
//! pickle per destination lands in three real carbon-caches' whisper files.
//!
//! Servers are told apart by address (carbon's ring keys on the server, and
//! replicas go to distinct servers), so the destinations listen on
//! 127.0.0.1, 127.0.0.2 and 127.0.0.3.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use statsd::sink::ring::{HashRing, HashType, RingNode};
use support::carbon::{CarbonCache, FakeCarbon};
use support::istats::stat;
use support::relay::CarbonRelay;
use support::{to_carbon, Statsd, WAIT};

/// The three servers of every test.
const SERVERS: [[u8; 4]; 3] = [[127, 0, 0, 1], [127, 0, 0, 2], [127, 0, 0, 3]];

/// Longest a whole test may wait for lines to spread (10,000 names through
/// Twisted on a loaded 2-core machine).
const SPREAD_WAIT: Duration = Duration::from_secs(90);

/// Longest a whole test may take, whatever each wait allows.
const TEST_WAIT: Duration = Duration::from_secs(240);

/// The earlier of `within` from now and the test's own end.
fn until(within: Duration, test_end: Instant) -> Instant {
    (Instant::now() + within).min(test_end)
}

fn ip_text(ip: [u8; 4]) -> String {
    format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3])
}

/// carbon's DESTINATIONS entries (and our --graphite-host list) for these carbons.
fn destinations(carbons: &[FakeCarbon], instances: &[Option<&str>]) -> Vec<String> {
    carbons
        .iter()
        .zip(instances)
        .map(|(carbon, instance)| match instance {
            Some(i) => format!("{}:{}:{i}", ip_text(carbon.ip), carbon.port),
            None => format!("{}:{}", ip_text(carbon.ip), carbon.port),
        })
        .collect()
}

/// Reads every carbon's lines until `done` holds for the paths seen so far
/// (path -> the carbons that got it); bounded by [`SPREAD_WAIT`] and the test's end.
fn collect(
    carbons: &[FakeCarbon],
    what: &str,
    test_end: Instant,
    done: impl Fn(&BTreeMap<String, BTreeSet<usize>>) -> bool,
) -> BTreeMap<String, BTreeSet<usize>> {
    let mut seen: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
    let deadline = until(SPREAD_WAIT, test_end);
    loop {
        for (index, carbon) in carbons.iter().enumerate() {
            for line in carbon.drain() {
                let path = line.split(' ').next().unwrap_or_default().to_string();
                seen.entry(path).or_default().insert(index);
            }
        }
        if done(&seen) {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not done in time; {} paths so far",
            seen.len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// 10,000 counter names in datagrams of 50 lines.
fn send_names(statsd: &impl Statsd, names: &[String]) {
    for chunk in names.chunks(50) {
        let datagram: String = chunk.iter().map(|n| format!("{n}:1|c\n")).collect();
        statsd.send_udp(datagram.as_bytes());
    }
}

/// Every path of `paths` written to the relay's line port on one connection.
fn through_relay(relay: &CarbonRelay, paths: &[&String]) {
    let mut stream =
        TcpStream::connect(("127.0.0.1", relay.line_port)).expect("connect to the relay");
    stream.set_write_timeout(Some(WAIT)).expect("write timeout");
    let mut text = String::new();
    for path in paths {
        text.push_str(&format!("{path} 1 1796000000\n"));
    }
    stream
        .write_all(text.as_bytes())
        .expect("write to the relay");
}

#[test]
fn placement_matches_carbon_relay_name_by_name() {
    let test_end = Instant::now() + TEST_WAIT;
    struct Case {
        name: &'static str,
        replication: usize,
        instances: [Option<&'static str>; 3],
    }
    let cases = [
        Case {
            name: "REPLICATION_FACTOR 1, no instances",
            replication: 1,
            instances: [None, None, None],
        },
        Case {
            name: "REPLICATION_FACTOR 2, instances a b c",
            replication: 2,
            instances: [Some("a"), Some("b"), Some("c")],
        },
    ];
    let names: Vec<String> = (0..10_000)
        .map(|i| format!("ring.app{}.n{i}", i % 37))
        .collect();
    let mut failures = Vec::new();
    for case in &cases {
        // Ours in front of three fakes; the relay in front of three others on
        // the same addresses (the ring ignores ports).
        let direct: Vec<FakeCarbon> = SERVERS.iter().map(|ip| FakeCarbon::start_on(*ip)).collect();
        let behind: Vec<FakeCarbon> = SERVERS.iter().map(|ip| FakeCarbon::start_on(*ip)).collect();
        let ours = destinations(&direct, &case.instances).join(",");
        let replication = case.replication.to_string();
        let statsd = to_carbon::server(
            direct[0].port,
            "1",
            &[
                "--graphite-host",
                &ours,
                "--graphite-replication",
                &replication,
            ],
        );
        let relay = CarbonRelay::start(
            &destinations(&behind, &case.instances),
            case.replication,
            "carbon_ch",
        );
        send_names(&statsd, &names);
        let complete = |seen: &BTreeMap<String, BTreeSet<usize>>| {
            names.iter().all(|n| {
                seen.get(&format!("stats.{n}"))
                    .is_some_and(|at| at.len() == case.replication)
            })
        };
        let placed = collect(&direct, case.name, test_end, complete);
        let paths: Vec<&String> = placed
            .keys()
            .filter(|p| p.starts_with("stats.ring."))
            .collect();
        assert_eq!(paths.len(), names.len(), "{}", case.name);
        through_relay(&relay, &paths);
        let relayed = collect(
            &behind,
            &format!("{} through carbon-relay", case.name),
            test_end,
            complete,
        );
        let log = relay.log();
        let mut wrong = Vec::new();
        let mut share = [0usize; 3];
        for path in &paths {
            let (ours, theirs) = (&placed[*path], relayed.get(*path));
            if Some(ours) != theirs {
                wrong.push(format!("{path}: ours {ours:?}, carbon-relay {theirs:?}"));
            }
            for &at in ours {
                share[at] += 1;
            }
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "{}: {} of {} paths placed otherwise, e.g. {:?}\nrelay log:\n{log}",
                case.name,
                wrong.len(),
                paths.len(),
                &wrong[..wrong.len().min(5)]
            ));
        }
        assert!(
            share.iter().all(|&n| n > 1000),
            "{}: every destination a share: {share:?}",
            case.name
        );
        statsd.stop();
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The ring our server builds for `carbons` (no instances).
fn ring_of(carbons: &[FakeCarbon]) -> HashRing {
    let nodes: Vec<RingNode> = carbons
        .iter()
        .map(|c| RingNode {
            server: ip_text(c.ip),
            instance: None,
        })
        .collect();
    HashRing::new(&nodes, HashType::CarbonCh)
}

/// `destination.<host_port>.<key>` of a carbon in istats.
fn destination_stat(istats: &serde_json::Value, carbon: &FakeCarbon, key: &str) -> u64 {
    let name = format!("{}_{}", ip_text(carbon.ip).replace('.', "_"), carbon.port);
    stat(istats, &format!("destination.{name}.{key}"))
}

#[test]
fn one_destination_down_waits_in_its_backlog_the_others_get_theirs() {
    let test_end = Instant::now() + TEST_WAIT;
    let mut carbons = vec![
        FakeCarbon::start_on(SERVERS[0]),
        FakeCarbon::start_on(SERVERS[1]),
        FakeCarbon::down_on(SERVERS[2]),
    ];
    let list = destinations(&carbons, &[None, None, None]).join(",");
    let statsd = to_carbon::server(carbons[0].port, "0.5", &["--graphite-host", &list]);
    let ring = ring_of(&carbons);
    let batch =
        |tag: &str| -> Vec<String> { (0..300).map(|i| format!("down.{tag}.n{i}")).collect() };
    let share = |names: &[String], at: usize| -> BTreeSet<String> {
        names
            .iter()
            .map(|n| format!("stats.{n}"))
            .filter(|p| ring.node_of(p.as_bytes()) == Some(at))
            .collect()
    };
    let (first, second) = (batch("first"), batch("second"));
    let lines_of = |names: &[String]| {
        names
            .iter()
            .map(|n| format!("{n}:1|c\n"))
            .collect::<String>()
    };

    // Two batches, one flush after the other, while the third is down: the
    // first two carbons get exactly their shares of each, flush by flush.
    let mut got: Vec<BTreeMap<String, String>> = vec![BTreeMap::new(); 3];
    for names in [&first, &second] {
        statsd.send_udp(lines_of(names).as_bytes());
        let deadline = until(WAIT, test_end);
        loop {
            for (index, carbon) in carbons.iter().enumerate().take(2) {
                for line in carbon.drain() {
                    let (path, rest) = line.split_once(' ').unwrap_or((&line, ""));
                    got[index].insert(path.to_string(), rest.to_string());
                }
            }
            let arrived = (0..2).all(|at| share(names, at).iter().all(|p| got[at].contains_key(p)));
            if arrived {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the carbons that are up did not get their shares"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    for (at, lines) in got.iter().enumerate().take(2) {
        let mine: BTreeSet<String> = share(&first, at)
            .union(&share(&second, at))
            .cloned()
            .collect();
        let received: BTreeSet<String> = lines
            .keys()
            .filter(|p| p.starts_with("stats.down."))
            .cloned()
            .collect();
        assert_eq!(received, mine, "carbon {at} got exactly its share");
    }
    let down_share: BTreeSet<String> = share(&first, 2)
        .union(&share(&second, 2))
        .cloned()
        .collect();
    assert!(
        down_share.len() > 100,
        "the third holds a share: {}",
        down_share.len()
    );
    let stats = statsd.poll_istats(|s| {
        destination_stat(s, &carbons[2], "errors") > 0
            && destination_stat(s, &carbons[2], "backlog") > 0
    });
    assert_eq!(destination_stat(&stats, &carbons[0], "backlog"), 0);
    assert_eq!(destination_stat(&stats, &carbons[0], "errors"), 0);
    assert_eq!(
        stat(&stats, "backlog.lines"),
        destination_stat(&stats, &carbons[2], "backlog"),
        "the aggregate backlog is the sum"
    );

    // Back up: its backlog arrives, with the timestamps of the flushes it was part of.
    carbons[2].up();
    let deadline = until(WAIT, test_end);
    let mut late: BTreeMap<String, String> = BTreeMap::new();
    while !down_share.iter().all(|p| late.contains_key(p)) {
        assert!(
            Instant::now() < deadline,
            "the backlog never reached the third carbon"
        );
        if let Ok(line) = carbons[2].lines.recv_timeout(Duration::from_millis(50)) {
            let (path, rest) = line.split_once(' ').unwrap_or((&line, ""));
            late.insert(path.to_string(), rest.to_string());
        }
    }
    let stamp = |rest: &str| rest.rsplit(' ').next().unwrap_or_default().to_string();
    let first_stamp = got[0][share(&first, 0).iter().next().unwrap()].clone();
    let first_late = &late[share(&first, 2).iter().next().unwrap()];
    assert_eq!(
        stamp(first_late),
        stamp(&first_stamp),
        "resent with the first flush's timestamp"
    );
    let stats = statsd.poll_istats(|s| stat(s, "backlog.lines") == 0);
    let each: u64 = carbons
        .iter()
        .map(|c| destination_stat(&stats, c, "published"))
        .sum();
    assert_eq!(
        stat(&stats, "published.lines"),
        each,
        "published.lines is the sum"
    );
    statsd.stop();
}

#[test]
fn pickle_per_destination_lands_in_the_caches_the_ring_says() {
    let caches = [
        CarbonCache::start(),
        CarbonCache::start(),
        CarbonCache::start(),
    ];
    // All three listen on 127.0.0.1: instances tell them apart on the ring.
    let instances = ["a", "b", "c"];
    let list: Vec<String> = caches
        .iter()
        .zip(instances)
        .map(|(cache, i)| format!("127.0.0.1:{}:{i}", cache.pickle_port))
        .collect();
    let statsd = to_carbon::server(
        caches[0].pickle_port,
        "1",
        &[
            "--graphite-protocol",
            "pickle",
            "--graphite-host",
            &list.join(","),
        ],
    );
    let names: Vec<String> = (0..60).map(|i| format!("pk.n{i}")).collect();
    send_names(&statsd, &names);
    let nodes: Vec<RingNode> = instances
        .iter()
        .map(|i| RingNode {
            server: "127.0.0.1".into(),
            instance: Some(i.to_string()),
        })
        .collect();
    let ring = HashRing::new(&nodes, HashType::CarbonCh);
    let paths: Vec<String> = names.iter().map(|n| format!("stats.{n}")).collect();
    for (index, cache) in caches.iter().enumerate() {
        let mine: Vec<&str> = paths
            .iter()
            .filter(|p| ring.node_of(p.as_bytes()) == Some(index))
            .map(String::as_str)
            .collect();
        assert!(!mine.is_empty(), "cache {index} holds a share");
        let points = cache.wait_points(&mine, 1, WAIT);
        for path in &mine {
            assert_eq!(points[*path][0].1, 1.0, "{path} in cache {index}");
        }
    }
    // And none of them anywhere else.
    for (index, cache) in caches.iter().enumerate() {
        let stored: BTreeSet<String> = cache
            .metrics()
            .into_iter()
            .filter(|m| m.starts_with("stats.pk."))
            .collect();
        for path in &stored {
            assert_eq!(
                ring.node_of(path.as_bytes()),
                Some(index),
                "{path} in cache {index}"
            );
        }
    }
    statsd.stop();
}
