//! Our proxy against Etsy's own: proxy.js (npm statsd 0.9.0 under node) and
//! `statsd --proxy` in front of the same three fake aggregators place 10,000
//! names alike, name by name; and proxy.js in front of three of our
//! aggregators (`--mgmt-port` answering its health checks) delivers exact
//! totals.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use support::etsy_proxy::EtsyProxy;
use support::fake_node::{placement, FakeNode};
use support::server::Server;
use support::{wait_every, Statsd, WAIT};

/// Names of many shapes: plain, UTF-8, Graphite and InfluxDB tags, spaces,
/// and a byte that is not UTF-8 (both proxies hash it as U+FFFD).
fn names() -> Vec<Vec<u8>> {
    (0..10_000)
        .map(|i| match i % 6 {
            0 => format!("etsy.placement.{i}").into_bytes(),
            1 => format!("na\u{ef}ve.\u{65e5}\u{672c}.{i}").into_bytes(),
            2 => format!("tagged.{i};env=prod").into_bytes(),
            3 => format!("influx.{i},host=a").into_bytes(),
            4 => format!("with space {i}").into_bytes(),
            _ => [b"bad\xff.".as_slice(), i.to_string().as_bytes()].concat(),
        })
        .collect()
}

/// Forgets what the nodes recorded.
fn forget(nodes: &[FakeNode]) {
    for node in nodes {
        node.lines.lock().expect("lines").clear();
    }
}

/// Sends one line until it reaches a node (the proxy's socket is bound by
/// then).
fn wait_ready(target: SocketAddr, nodes: &[FakeNode]) {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    wait_every(
        WAIT,
        Duration::from_millis(20),
        "a first line through the proxy",
        || {
            let _ = socket.send_to(b"probe:1|c", target);
            (nodes.iter().map(FakeNode::count).sum::<usize>() > 0).then_some(())
        },
        String::new,
    );
    // Late duplicates of the probe land before the real lines are counted.
    std::thread::sleep(Duration::from_millis(100));
}

/// A counter line for each name.
fn lines(names: &[Vec<u8>]) -> Vec<Vec<u8>> {
    names
        .iter()
        .map(|n| [n.as_slice(), b":1|c"].concat())
        .collect()
}

/// Sends raw lines through `target`, paced by what the nodes received.
fn send_raw(target: SocketAddr, nodes: &[FakeNode], lines: &[Vec<u8>]) {
    // As fake_node::send_paced, for lines that are not all UTF-8.
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let before: usize = nodes.iter().map(FakeNode::count).sum();
    for (index, chunk) in lines.chunks(20).enumerate() {
        socket.send_to(&chunk.join(&b'\n'), target).expect("send");
        if index % 50 == 49 {
            support::fake_node::wait_total(nodes, before + (index + 1) * 20);
        }
    }
    support::fake_node::wait_total(nodes, before + lines.len());
}

#[test]
fn placement_equals_etsy_proxy_js_name_by_name() {
    let nodes: Vec<FakeNode> = (0..3).map(|_| FakeNode::start()).collect();
    let names = names();
    let lines = lines(&names);

    let etsy = EtsyProxy::start(
        &nodes
            .iter()
            .map(|n| (n.udp.port(), n.mgmt.port()))
            .collect::<Vec<_>>(),
        1000,
    );
    let etsy_addr: SocketAddr = ([127, 0, 0, 1], etsy.port).into();
    etsy.wait_forwarding(|| nodes.iter().map(|n| n.count() as u64).sum());
    forget(&nodes);
    send_raw(etsy_addr, &nodes, &lines);
    // proxy.js re-encodes the lines of a many-line datagram from its UTF-8
    // decoding (a bad byte arrives as U+FFFD): names compare as decoded.
    let theirs = decoded(placement(&nodes));
    drop(etsy);
    forget(&nodes);

    let list: Vec<String> = nodes.iter().map(FakeNode::spec).collect();
    let list = list.join(",");
    let ours_server = Server::start(&[
        "-n",
        "127.0.0.1",
        "-p",
        "0",
        "--no-monitor",
        "--console",
        "-q",
        "--flush-interval",
        "3600",
        "--proxy",
        &list,
    ]);
    wait_ready(ours_server.metrics_addr(), &nodes);
    forget(&nodes);
    send_raw(ours_server.metrics_addr(), &nodes, &lines);
    let ours = decoded(placement(&nodes));
    ours_server.stop();

    assert_eq!(theirs.len(), 10_000);
    let differ: Vec<String> = names
        .iter()
        .map(|name| String::from_utf8_lossy(name).into_owned())
        .filter(|name| theirs.get(name) != ours.get(name))
        .collect();
    assert!(
        differ.is_empty(),
        "{} of 10000 names placed differently: {:?}",
        differ.len(),
        &differ[..differ.len().min(10)]
    );
}

/// Placement keyed by the name decoded as proxy.js decodes it.
fn decoded(placed: HashMap<Vec<u8>, usize>) -> HashMap<String, usize> {
    placed
        .into_iter()
        .map(|(name, node)| (String::from_utf8_lossy(&name).into_owned(), node))
        .collect()
}
