//! Proxies in front of three of OUR aggregators, each answering Etsy's
//! `health` on `--mgmt-port` and publishing to a carbon of its own: Etsy's
//! proxy.js and `statsd --proxy` alike deliver every sample of each name to
//! exactly one aggregator, and the totals are exact.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use support::carbon::FakeCarbon;
use support::etsy_proxy::EtsyProxy;
use support::fake_node::FakeNode;
use support::flushed::final_flush;
use support::istats::{fetch, stat};
use support::server::Server;
use support::{free_port, to_carbon, wait_for, Statsd, WAIT};

const INTERVAL: f64 = 3600.0;

struct Aggregator {
    server: Server,
    carbon: FakeCarbon,
    mgmt: u16,
    /// The admin port's stand-in, when the aggregator has none of its own.
    _health: Option<FakeNode>,
}

/// Three aggregators answering `health` on `--mgmt-port`.
fn aggregators() -> Vec<Aggregator> {
    (0..3)
        .map(|_| {
            let carbon = FakeCarbon::start();
            let mgmt = free_port();
            let mgmt_flag = mgmt.to_string();
            let server = to_carbon::server(
                carbon.port,
                "3600",
                &["-n", "127.0.0.1", "--mgmt-port", &mgmt_flag],
            );
            Aggregator {
                server,
                carbon,
                mgmt,
                _health: None,
            }
        })
        .collect()
}

/// Three aggregators whose `health` a fake node's admin port answers (our
/// aggregators without `--mgmt-port`).
fn aggregators_with_fake_health() -> Vec<Aggregator> {
    (0..3)
        .map(|_| {
            let carbon = FakeCarbon::start();
            let health = FakeNode::start();
            let server = to_carbon::server(carbon.port, "3600", &["-n", "127.0.0.1"]);
            Aggregator {
                server,
                carbon,
                mgmt: health.mgmt.port(),
                _health: Some(health),
            }
        })
        .collect()
}

/// Lines the aggregators took in, from their `istats`.
fn received(nodes: &[Aggregator]) -> u64 {
    nodes
        .iter()
        .map(|n| fetch(n.server.monitor_addr()).map_or(0, |s| stat(&s, "metrics.received")))
        .sum()
}

/// Sends `samples` counter lines of value 1 for each of `names` names, in
/// datagrams of 20, pausing every 1,000 lines until the aggregators took
/// them in; the sum at the end must be exact.
fn send(target: SocketAddr, nodes: &[Aggregator], names: usize, samples: usize) {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let before = received(nodes);
    let lines: Vec<String> = (0..samples)
        .flat_map(|_| (0..names).map(|i| format!("agg.name.{i}:1|c")))
        .collect();
    for (index, chunk) in lines.chunks(20).enumerate() {
        socket
            .send_to(chunk.join("\n").as_bytes(), target)
            .expect("send");
        if index % 50 == 49 || (index + 1) * 20 >= lines.len() {
            let want = before + ((index + 1) * 20).min(lines.len()) as u64;
            wait_for(
                WAIT,
                &format!("{want} lines taken in"),
                || (received(nodes) >= want).then_some(()),
                || format!("received {}", received(nodes)),
            );
        }
    }
}

/// Stops every aggregator and checks its final flush: each name on one
/// aggregator only, `samples` per name, all names there.
fn check_totals(nodes: Vec<Aggregator>, names: usize, samples: usize) {
    let mut seen: BTreeMap<String, (usize, f64)> = BTreeMap::new();
    for (index, node) in nodes.into_iter().enumerate() {
        let flush = final_flush(node.server, &node.carbon);
        for line in &flush.metrics {
            let mut parts = line.split(' ');
            let (Some(path), Some(value)) = (parts.next(), parts.next()) else {
                continue;
            };
            let Some(name) = path.strip_prefix("stats.agg.name.") else {
                continue;
            };
            let count = value.parse::<f64>().expect("value") * INTERVAL;
            let before = seen.insert(name.to_string(), (index, count));
            assert!(before.is_none(), "agg.name.{name} on two aggregators");
        }
    }
    assert_eq!(seen.len(), names);
    for (name, (_, count)) in &seen {
        assert_eq!(count.round() as usize, samples, "agg.name.{name}");
    }
    let used: std::collections::BTreeSet<usize> = seen.values().map(|v| v.0).collect();
    assert_eq!(used.len(), 3, "every aggregator got a share");
}

#[test]
fn etsy_proxy_js_in_front_of_our_aggregators_health_from_fakes() {
    etsy_proxy_js_in_front_of(aggregators_with_fake_health());
}

#[test]
fn etsy_proxy_js_in_front_of_our_aggregators() {
    etsy_proxy_js_in_front_of(aggregators());
}

fn etsy_proxy_js_in_front_of(nodes: Vec<Aggregator>) {
    let list: Vec<(u16, u16)> = nodes
        .iter()
        .map(|n| (n.server.metrics_addr().port(), n.mgmt))
        .collect();
    let etsy = EtsyProxy::start(&list, 200);
    etsy.wait_forwarding(|| received(&nodes));
    send(([127, 0, 0, 1], etsy.port).into(), &nodes, 2_000, 3);
    drop(etsy);
    check_totals(nodes, 2_000, 3);
}

#[test]
fn our_proxy_in_front_of_our_aggregators() {
    let nodes = aggregators();
    let list: Vec<String> = nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}:{}", n.server.metrics_addr().port(), n.mgmt))
        .collect();
    let list = list.join(",");
    let proxy = Server::start(&[
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
        "0.1",
        "--proxy",
        &list,
    ]);
    send(proxy.metrics_addr(), &nodes, 2_000, 3);
    let stats = fetch(proxy.monitor_addr()).expect("istats");
    // Checks every 0.1 s ran all along: one failure would have taken a node out.
    assert_eq!(
        stat(&stats, "proxy.nodes_healthy"),
        3,
        "a node failed its checks: {stats}"
    );
    proxy.stop();
    check_totals(nodes, 2_000, 3);
}
