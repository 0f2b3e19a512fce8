//! The proxy's own counters, one set per node plus the totals, written by
//! the forwarding workers and the health checker, read by the flush and
//! `istats` as `proxy.*` keys. Key names are made once at start (they hold
//! the node's address) and live as long as the process.

use crate::stats::{Counter, Keys};

/// Counters of one node.
#[derive(Debug, Default)]
pub struct NodeStats {
    /// Lines handed to the kernel (UDP) or written (TCP) for this node.
    pub lines: Counter,
    /// Their bytes (newlines between lines included).
    pub bytes: Counter,
    /// Datagrams sent (UDP) or writes made (TCP).
    pub sends: Counter,
    /// Lines lost because a send to this node failed.
    pub errors: Counter,
    /// 1 while the node is in the ring, 0 while it is out.
    pub healthy: Counter,
    /// Health checks that failed (refused, timed out, or not `up`).
    pub checks_failed: Counter,
    /// Times the node was taken out of the ring.
    pub removed: Counter,
}

/// Every counter of the proxy.
#[derive(Debug)]
pub struct ProxyStats {
    /// Lines received to forward.
    pub lines: Counter,
    /// Lines dropped because no node was in the ring.
    pub no_node: Counter,
    /// Lines dropped because they are longer than any datagram.
    pub oversize: Counter,
    /// Lines in datagrams cut by the kernel (longer than 64 KiB): lost.
    pub truncated: Counter,
    /// Per node, in the order of `--proxy`.
    pub nodes: Vec<NodeStats>,
    /// `proxy.node.<host_port>.` key names, per node.
    names: Vec<[&'static str; NODE_KEYS]>,
}

/// Keys per node (the order of [`ProxyStats::keys`]).
const NODE_KEYS: usize = 7;
const NODE_KEY_SUFFIXES: [&str; NODE_KEYS] = [
    "lines",
    "bytes",
    "sends",
    "errors",
    "healthy",
    "checks_failed",
    "removed",
];

/// A node's `host:port` as one Graphite path component.
pub fn path_component(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' => b as char,
            _ => '_',
        })
        .collect()
}

impl ProxyStats {
    /// Counters for the nodes `ids` (`host:port`), every node healthy.
    pub fn new(ids: &[String]) -> ProxyStats {
        let nodes: Vec<NodeStats> = ids.iter().map(|_| NodeStats::default()).collect();
        for node in &nodes {
            node.healthy.set(1);
        }
        let names = ids
            .iter()
            .map(|id| {
                let component = path_component(id);
                NODE_KEY_SUFFIXES.map(|suffix| {
                    // Once per node per server start: bounded by the node list.
                    &*Box::leak(format!("proxy.node.{component}.{suffix}").into_boxed_str())
                })
            })
            .collect();
        ProxyStats {
            lines: Counter::default(),
            no_node: Counter::default(),
            oversize: Counter::default(),
            truncated: Counter::default(),
            nodes,
            names,
        }
    }

    /// Number of keys [`ProxyStats::keys`] yields.
    pub fn key_count(&self) -> usize {
        5 + NODE_KEYS * self.nodes.len()
    }

    /// Every key and value now.
    pub fn keys(&self) -> Keys {
        let mut keys = Vec::with_capacity(self.key_count());
        let healthy = self.nodes.iter().filter(|n| n.healthy.get() == 1).count();
        keys.push(("proxy.lines", self.lines.get() as f64));
        keys.push(("proxy.no_node", self.no_node.get() as f64));
        keys.push(("proxy.oversize", self.oversize.get() as f64));
        keys.push(("proxy.truncated", self.truncated.get() as f64));
        keys.push(("proxy.nodes_healthy", healthy as f64));
        for (node, names) in self.nodes.iter().zip(&self.names) {
            let values = [
                node.lines.get(),
                node.bytes.get(),
                node.sends.get(),
                node.errors.get(),
                node.healthy.get(),
                node.checks_failed.get(),
                node.removed.get(),
            ];
            for (name, value) in names.iter().zip(values) {
                keys.push((*name, value as f64));
            }
        }
        debug_assert_eq!(keys.len(), self.key_count());
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_each_node() {
        let stats = ProxyStats::new(&["127.0.0.1:8127".into(), "[::1]:9".into()]);
        stats.nodes[1].lines.add(3);
        let keys = stats.keys();
        assert_eq!(keys.len(), stats.key_count());
        assert!(keys.contains(&("proxy.node.127_0_0_1_8127.healthy", 1.0)));
        assert!(keys.contains(&("proxy.node.___1__9.lines", 3.0)));
        assert!(keys.contains(&("proxy.nodes_healthy", 2.0)));
    }
}
