//! Our rings against the references, name by name on 10,000 names, one
//! table of cases: carbon's own `carbon.hashing.ConsistentHashRing` (Debian's
//! graphite-carbon, run by the system python3) for `carbon_ch` and
//! `fnv1a_ch`, with and without instances, in carbon-relay's replica order
//! for REPLICATION_FACTOR = 2; and carbon-c-relay's `-t` (test mode: prints
//! where each input line would go; Debian's carbon-c-relay) for
//! `jump_fnv1a_ch`, which carbon itself does not have, replication 2.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use statsd::sink::ring::{HashRing, HashType, Placement, RingNode};
use support::require_binary;

/// Carbon's Python, as Debian installs it (graphite-carbon's own interpreter).
const CARBON_PYTHON: &str = "/usr/bin/python3";
const CARBON_C_RELAY: &str = "/usr/bin/carbon-c-relay";

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

/// Runs `program` with `names` on stdin (one a line); its stdout.
fn run_with_names(mut command: Command, names: &[String], what: &str) -> String {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let mut stdin = child.stdin.take().expect("stdin");
    let input: String = names.iter().map(|n| format!("{n}\n")).collect();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = support::daemon::run_bounded_child(child);
    let _ = writer.join();
    assert!(
        output.status.success(),
        "{what} failed ({:?}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Carbon's placement: per name, the first and second distinct node indices.
fn carbons_placement(nodes: &[RingNode], hash_type: &str, names: &[String]) -> Vec<String> {
    require_binary(CARBON_PYTHON, "python3");
    let list: Vec<String> = nodes
        .iter()
        .map(|n| match &n.instance {
            Some(i) => format!("[\"{}\", \"{i}\"]", n.server),
            None => format!("[\"{}\", null]", n.server),
        })
        .collect();
    let spec = format!(
        "{{\"hash_type\": \"{hash_type}\", \"nodes\": [{}]}}",
        list.join(", ")
    );
    let mut command = Command::new(CARBON_PYTHON);
    command.args(["-c", PLACE, &spec]);
    let what = "carbon.hashing (apt-get install graphite-carbon)";
    run_with_names(command, names, what)
        .lines()
        .map(str::to_string)
        .collect()
}

/// carbon-c-relay's placement with replication 2: per name, the node
/// indices it prints under the cluster, in its order. Node i listens (in
/// the config only) on port 2001 + i.
fn c_relays_placement(nodes: &[RingNode], names: &[String]) -> Vec<String> {
    require_binary(CARBON_C_RELAY, "carbon-c-relay");
    let dir = tempfile::tempdir().expect("temp dir");
    let members: Vec<String> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| match &n.instance {
            Some(inst) => format!("        {}:{}={inst}\n", n.server, 2001 + i),
            None => format!("        {}:{}\n", n.server, 2001 + i),
        })
        .collect();
    let conf = format!(
        "cluster ring\n    jump_fnv1a_ch replication 2\n{}    ;\nmatch * send to ring stop;\n",
        members.concat()
    );
    let path = dir.path().join("relay.conf");
    std::fs::write(&path, conf).expect("write relay.conf");
    let mut command = Command::new(CARBON_C_RELAY);
    command.arg("-f").arg(&path).arg("-t");
    let lines: Vec<String> = names.iter().map(|n| format!("{n} 1 1")).collect();
    let out = run_with_names(command, &lines, "carbon-c-relay -t");
    let mut placements = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in out.lines() {
        if line.starts_with("    * -> ") {
            current = Some(Vec::new());
        } else if line == "    stop" {
            if let Some(done) = current.take() {
                placements.push(done.join(" "));
            }
        } else if let (Some(list), Some(member)) = (current.as_mut(), line.strip_prefix("        "))
        {
            let port: usize = member
                .rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
                .expect("host:port");
            list.push((port - 2001).to_string());
        }
    }
    placements
}

/// Where the reference puts each name.
#[derive(Clone, Copy)]
enum Reference {
    /// carbon's ConsistentHashRing with this hash_type.
    Carbon(&'static str),
    /// carbon-c-relay -t.
    CarbonCRelay,
}

fn node(server: &str, instance: Option<&str>) -> RingNode {
    RingNode {
        server: server.into(),
        instance: instance.map(Into::into),
    }
}

/// Ours for one case: the first two nodes per name, as the reference prints them.
fn ours(ring: &HashRing, hash_type: HashType, name: &str, placement: &mut Placement) -> String {
    let two: Vec<usize> = match hash_type {
        // carbon's get_nodes order (distinct nodes), what the script prints.
        HashType::CarbonCh | HashType::Fnv1aCh => ring.nodes_of(name.as_bytes(), 2).collect(),
        HashType::JumpFnv1aCh => ring.place(name.as_bytes(), 2, placement).to_vec(),
    };
    two.iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn every_ring_type_places_each_name_as_its_reference() {
    struct Case {
        name: &'static str,
        nodes: Vec<RingNode>,
        hash_type: HashType,
        reference: Reference,
    }
    let cases = [
        Case {
            name: "carbon_ch without instances",
            nodes: vec![
                node("127.0.0.1", None),
                node("127.0.0.2", None),
                node("127.0.0.3", None),
            ],
            hash_type: HashType::CarbonCh,
            reference: Reference::Carbon("carbon_ch"),
        },
        Case {
            name: "carbon_ch with instances",
            nodes: vec![
                node("127.0.0.1", Some("a")),
                node("127.0.0.1", Some("b")),
                node("cache-3.example", Some("c")),
            ],
            hash_type: HashType::CarbonCh,
            reference: Reference::Carbon("carbon_ch"),
        },
        Case {
            name: "fnv1a_ch",
            nodes: vec![
                node("127.0.0.1", Some("a")),
                node("127.0.0.1", Some("b")),
                node("127.0.0.1", Some("c")),
            ],
            hash_type: HashType::Fnv1aCh,
            reference: Reference::Carbon("fnv1a_ch"),
        },
        Case {
            name: "jump_fnv1a_ch, instances out of order and one without",
            nodes: vec![
                node("127.0.0.1", Some("b")),
                node("127.0.0.2", None),
                node("127.0.0.3", Some("a")),
            ],
            hash_type: HashType::JumpFnv1aCh,
            reference: Reference::CarbonCRelay,
        },
        Case {
            name: "jump_fnv1a_ch, numeric instances",
            nodes: vec![
                node("127.0.0.1", Some("10")),
                node("127.0.0.2", Some("9")),
                node("127.0.0.3", Some("2")),
                node("127.0.0.4", Some("1")),
            ],
            hash_type: HashType::JumpFnv1aCh,
            reference: Reference::CarbonCRelay,
        },
    ];
    let names = names();
    let mut failures = Vec::new();
    for case in &cases {
        let expected = match case.reference {
            Reference::Carbon(hash_type) => carbons_placement(&case.nodes, hash_type, &names),
            Reference::CarbonCRelay => c_relays_placement(&case.nodes, &names),
        };
        if expected.len() != names.len() {
            failures.push(format!(
                "{}: the reference placed {} of {} names",
                case.name,
                expected.len(),
                names.len()
            ));
            continue;
        }
        let ring = HashRing::new(&case.nodes, case.hash_type);
        let mut placement = Placement::default();
        let mut used = vec![0usize; case.nodes.len()];
        let mut wrong = Vec::new();
        for (name, want) in names.iter().zip(&expected) {
            let got = ours(&ring, case.hash_type, name, &mut placement);
            if &got != want {
                wrong.push(format!("{name:?}: ours {got}, reference {want}"));
            }
            if let Some(first) = ring.node_of(name.as_bytes()) {
                used[first] += 1;
            }
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "{}: {} names placed otherwise, e.g. {:?}",
                case.name,
                wrong.len(),
                &wrong[..wrong.len().min(3)]
            ));
        }
        if used.iter().any(|&n| n < 1000) {
            failures.push(format!(
                "{}: a node holds no fair share: {used:?}",
                case.name
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
