//! `--proxy` in front of fake aggregators (tests/support/fake_node.rs) on
//! loopback: every name on exactly one node, placed by Etsy's ring; totals
//! equal what was sent; a node killed (or answering `health: down`) is taken
//! out of the ring and put back when it is healthy again.

mod support;

use std::collections::HashMap;

use statsd::proxy::ring::Ring;
use support::fake_node::{placement, send_paced, FakeNode};
use support::istats::{poll, stat};
use support::server::Server;
use support::Statsd;

/// Our proxy in process in front of `nodes`, checking health every 50 ms.
fn proxy(nodes: &[FakeNode], extra: &[&str]) -> Server {
    let list: Vec<String> = nodes.iter().map(FakeNode::spec).collect();
    let list = list.join(",");
    let mut flags = vec![
        "-n",
        "127.0.0.1",
        "-p",
        "0",
        "--monitor-port",
        "0",
        "--console",
        "-q",
        "--flush-interval",
        "3600",
        "--proxy-check-interval",
        "0.05",
        "--proxy",
        &list,
    ];
    flags.extend_from_slice(extra);
    Server::start(&flags)
}

/// `count` names `<prefix>.<i>`, `samples` lines each, through `server`.
fn send(server: &Server, nodes: &[FakeNode], prefix: &str, count: usize, samples: usize) {
    let mut lines = Vec::new();
    for sample in 0..samples {
        for i in 0..count {
            let kind = ["c", "ms", "g", "s"][i % 4];
            lines.push(format!("{prefix}.{i}:{sample}|{kind}"));
        }
    }
    send_paced(server.metrics_addr(), nodes, &lines);
}

/// Where Etsy's ring puts `name` with the nodes `servers` in it.
fn expected(nodes: &[FakeNode], servers: Vec<usize>) -> Ring {
    let ids: Vec<String> = nodes.iter().map(FakeNode::id).collect();
    Ring::build(&ids, servers)
}

fn assert_placed_by(placed: &HashMap<Vec<u8>, usize>, ring: &Ring) {
    for (name, node) in placed {
        assert_eq!(
            ring.node_for(name),
            Some(*node),
            "{} placed on the wrong node",
            String::from_utf8_lossy(name)
        );
    }
}

fn healthy_key(node: &FakeNode) -> String {
    format!(
        "proxy.node.{}.healthy",
        statsd::proxy::stats::path_component(&node.id())
    )
}

#[test]
fn every_sample_lands_on_exactly_one_node_and_totals_match() {
    let nodes: Vec<FakeNode> = (0..3).map(|_| FakeNode::start()).collect();
    let server = proxy(&nodes, &[]);
    send(&server, &nodes, "spread", 10_000, 3);
    let total: usize = nodes.iter().map(FakeNode::count).sum();
    assert_eq!(total, 30_000);
    let placed = placement(&nodes);
    assert_eq!(placed.len(), 10_000);
    assert_placed_by(&placed, &expected(&nodes, vec![0, 1, 2]));
    for node in &nodes {
        assert!(node.count() > 3_000, "uneven: {}", node.count());
    }
    let stats = poll(server.monitor_addr(), |s| stat(s, "proxy.lines") == 30_000);
    let per_node: u64 = nodes
        .iter()
        .map(|n| {
            let key = healthy_key(n).replace(".healthy", ".lines");
            stat(&stats, &key)
        })
        .sum();
    assert_eq!(per_node, 30_000);
    assert_eq!(stat(&stats, "proxy.no_node"), 0);
    server.stop();
}

#[test]
fn killed_node_is_taken_out_and_put_back() {
    let mut nodes: Vec<FakeNode> = (0..3).map(|_| FakeNode::start()).collect();
    let server = proxy(&nodes, &[]);
    let key = healthy_key(&nodes[1]);

    nodes[1].kill();
    poll(server.monitor_addr(), |s| stat(s, &key) == 0);
    send(&server, &nodes, "without", 3_000, 1);
    assert_eq!(nodes[0].count() + nodes[2].count(), 3_000);
    assert_placed_by(&placement(&nodes), &expected(&nodes, vec![0, 2]));

    nodes[1].restart();
    poll(server.monitor_addr(), |s| stat(s, &key) == 1);
    for node in &nodes {
        node.lines.lock().expect("lines").clear();
    }
    send(&server, &nodes, "back", 3_000, 1);
    assert!(nodes[1].count() > 0);
    // Put back last, as hashring's add does: the same points, hence the same places.
    assert_placed_by(&placement(&nodes), &expected(&nodes, vec![0, 2, 1]));
    server.stop();
}

#[test]
fn node_answering_down_gets_nothing_until_up() {
    let nodes: Vec<FakeNode> = (0..3).map(|_| FakeNode::start()).collect();
    let server = proxy(&nodes, &[]);
    let key = healthy_key(&nodes[2]);
    nodes[2].set_up(false);
    poll(server.monitor_addr(), |s| stat(s, &key) == 0);
    send(&server, &nodes, "down", 3_000, 2);
    assert_eq!(nodes[2].count(), 0, "a node answering down got lines");
    assert_placed_by(&placement(&nodes), &expected(&nodes, vec![0, 1]));

    nodes[2].set_up(true);
    let stats = poll(server.monitor_addr(), |s| stat(s, &key) == 1);
    assert_eq!(stat(&stats, &key.replace(".healthy", ".removed")), 1);
    send(&server, &nodes, "up", 3_000, 1);
    assert!(nodes[2].count() > 0);
    server.stop();
}

#[test]
fn lines_are_packed_up_to_the_packet_size() {
    let nodes: Vec<FakeNode> = (0..1).map(|_| FakeNode::start()).collect();
    let server = proxy(&nodes, &["--proxy-packet-bytes", "100"]);
    send(&server, &nodes, "packed", 1_000, 1);
    let stats = poll(server.monitor_addr(), |s| stat(s, "proxy.lines") == 1_000);
    let id = statsd::proxy::stats::path_component(&nodes[0].id());
    let bytes = stat(&stats, &format!("proxy.node.{id}.bytes"));
    let sends = stat(&stats, &format!("proxy.node.{id}.sends"));
    // Every datagram but the last of a batch is full to within one line.
    assert!(sends < 1_000 / 3, "{sends} datagrams for 1000 lines");
    assert!(bytes <= sends * 100, "{bytes} bytes in {sends} datagrams");
    server.stop();
}

#[test]
fn tcp_transport_and_tcp_intake_reach_a_real_aggregator() {
    // Health from a fake node's admin port, lines to one of our aggregators.
    let health = FakeNode::start();
    let aggregator = Server::start(&[
        "-n",
        "127.0.0.1",
        "-p",
        "0",
        "--monitor-port",
        "0",
        "--console",
        "-q",
        "--flush-interval",
        "3600",
    ]);
    let spec = format!(
        "127.0.0.1:{}:{}",
        aggregator.metrics_addr().port(),
        health.mgmt.port()
    );
    let server = Server::start(&[
        "-n",
        "127.0.0.1",
        "-p",
        "0",
        "--monitor-port",
        "0",
        "--console",
        "-q",
        "--flush-interval",
        "3600",
        "--proxy-transport",
        "tcp",
        "--proxy",
        &spec,
    ]);
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    for i in 0..100 {
        let lines: Vec<String> = (0..20).map(|j| format!("tcp.out.{i}.{j}:1|c")).collect();
        udp.send_to(lines.join("\n").as_bytes(), server.metrics_addr())
            .expect("send");
        if i % 25 == 24 {
            let want = (i + 1) * 20;
            poll(aggregator.monitor_addr(), |s| {
                stat(s, "metrics.received") >= want
            });
        }
    }
    let mut tcp = std::net::TcpStream::connect(server.metrics_addr()).expect("connect");
    let lines: String = (0..1_000).map(|i| format!("tcp.in.{i}:1|c\n")).collect();
    std::io::Write::write_all(&mut tcp, lines.as_bytes()).expect("write");
    drop(tcp);
    let stats = poll(aggregator.monitor_addr(), |s| {
        stat(s, "metrics.received") >= 3_000
    });
    assert_eq!(stat(&stats, "metrics.received"), 3_000);
    assert_eq!(stat(&stats, "metrics.discarded"), 0);
    server.stop();
    aggregator.stop();
}
