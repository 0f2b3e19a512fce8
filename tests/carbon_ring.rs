//! Our carbon ring against carbon's own (`carbon.hashing.ConsistentHashRing`
//! from Debian's graphite-carbon, run by the system python3): 10,000 names,
//! each hash type, with and without instances, placed name by name, plus the
//! replica order carbon-relay walks for REPLICATION_FACTOR = 2.

use std::io::Write;
use std::process::{Command, Stdio};

use statsd::sink::ring::{HashRing, HashType, RingNode};

/// Carbon's Python, as Debian installs it (graphite-carbon's own interpreter).
const CARBON_PYTHON: &str = "/usr/bin/python3";

const PLACE: &str = r#"
import sys, json
from carbon.hashing import ConsistentHashRing
spec = json.loads(sys.argv[1])
nodes = [(s, i) for s, i in spec["nodes"]]
ring = ConsistentHashRing(nodes, hash_type=spec["hash_type"])
for name in sys.stdin.read().split("\n"):
    if not name:
        continue
    order = []
    for node in ring.get_nodes(name):
        if node not in order:
            order.append(node)
        if len(order) == 2:
            break
    print(" ".join(str(nodes.index(n)) for n in order))
"#;

fn names() -> Vec<String> {
    (0..10_000)
        .map(|i| match i % 4 {
            0 => format!("stats.app{}.requests", i),
            1 => format!("stats.timers.api.endpoint_{i}.upper_90"),
            2 => format!("stats.gauges.host-{}.load", i * 7919),
            _ => format!("statsd.numStats{i}"),
        })
        .collect()
}

/// Carbon's placement: per name, the first and second distinct node indices.
fn carbons_placement(nodes: &[RingNode], hash_type: &str, names: &[String]) -> Vec<String> {
    let spec = serde_like_json(nodes, hash_type);
    let mut child = Command::new(CARBON_PYTHON)
        .args(["-c", PLACE, &spec])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("system python3 (Debian graphite-carbon's) must be installed");
    let mut stdin = child.stdin.take().unwrap();
    let input = names.join("\n");
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        output.status.success(),
        "carbon.hashing must be importable (apt-get install graphite-carbon): {:?}",
        output.status
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The node list as JSON, by hand: names here are plain ASCII.
fn serde_like_json(nodes: &[RingNode], hash_type: &str) -> String {
    let list: Vec<String> = nodes
        .iter()
        .map(|n| match &n.instance {
            Some(i) => format!("[\"{}\", \"{i}\"]", n.server),
            None => format!("[\"{}\", null]", n.server),
        })
        .collect();
    format!(
        "{{\"hash_type\": \"{hash_type}\", \"nodes\": [{}]}}",
        list.join(", ")
    )
}

fn check(nodes: &[RingNode], hash_type: HashType, python_name: &str) {
    let names = names();
    let expected = carbons_placement(nodes, python_name, &names);
    assert_eq!(expected.len(), names.len());
    let ring = HashRing::new(nodes, hash_type);
    let mut used = vec![0usize; nodes.len()];
    for (name, want) in names.iter().zip(&expected) {
        let ours: Vec<String> = ring
            .nodes_of(name.as_bytes(), 2)
            .map(|n| n.to_string())
            .collect();
        assert_eq!(
            &ours.join(" "),
            want,
            "placement of {name:?} ({python_name})"
        );
        used[ring.node_of(name.as_bytes()).unwrap()] += 1;
    }
    assert!(
        used.iter().all(|&n| n > 1000),
        "every node holds a share: {used:?}"
    );
}

fn node(server: &str, instance: Option<&str>) -> RingNode {
    RingNode {
        server: server.into(),
        instance: instance.map(Into::into),
    }
}

#[test]
fn carbon_ch_without_instances_matches_carbon() {
    let nodes = [
        node("127.0.0.1", None),
        node("127.0.0.2", None),
        node("127.0.0.3", None),
    ];
    check(&nodes, HashType::CarbonCh, "carbon_ch");
}

#[test]
fn carbon_ch_with_instances_matches_carbon() {
    let nodes = [
        node("127.0.0.1", Some("a")),
        node("127.0.0.1", Some("b")),
        node("cache-3.example", Some("c")),
    ];
    check(&nodes, HashType::CarbonCh, "carbon_ch");
}

#[test]
fn fnv1a_ch_matches_carbon() {
    let nodes = [
        node("127.0.0.1", Some("a")),
        node("127.0.0.1", Some("b")),
        node("127.0.0.1", Some("c")),
    ];
    check(&nodes, HashType::Fnv1aCh, "fnv1a_ch");
}
