//! `--proxy` and its flags: run as a forwarding front for several
//! aggregators instead of aggregating (see [`crate::proxy`]).

use std::time::Duration;

use crate::proxy::forward::MAX_UDP_PAYLOAD;
use crate::proxy::{
    NodeSpec, ProxySettings, Transport, DEFAULT_CHECK_INTERVAL, DEFAULT_PACKET_BYTES,
};

/// The proxy's flags, flattened into [`super::Cli`].
#[derive(Debug, Clone, clap::Args)]
pub struct ProxyArgs {
    /// Forward every line to the aggregator its name hashes to (Etsy proxy.js's ring) instead of aggregating: host:port[:mgmt_port],... (mgmt port default port+1)
    #[arg(long = "proxy", value_name = "NODES")]
    pub proxy: Option<String>,

    /// Largest datagram sent to a node, in bytes (lines are packed up to it)
    #[arg(long = "proxy-packet-bytes", default_value_t = DEFAULT_PACKET_BYTES)]
    pub proxy_packet_bytes: usize,

    /// How lines go to the nodes: udp (as proxy.js) or tcp (one connection per node)
    #[arg(long = "proxy-transport", value_enum, default_value_t = Transport::Udp)]
    pub proxy_transport: Transport,

    /// Seconds between health checks of the nodes (proxy.js checkInterval), and the bound on each
    #[arg(long = "proxy-check-interval", default_value_t = DEFAULT_CHECK_INTERVAL.as_secs_f64())]
    pub proxy_check_interval: f64,
}

/// One `host:port[:mgmt_port]`; an IPv6 host in brackets: `[::1]:8125`.
fn node(text: &str) -> Result<NodeSpec, String> {
    let bad = |why: &str| format!("--proxy node {text:?}: {why} (host:port[:mgmt_port])");
    let (host, rest) = if let Some(inner) = text.strip_prefix('[') {
        let (host, rest) = inner.split_once(']').ok_or_else(|| bad("no closing ]"))?;
        (host, rest.strip_prefix(':').ok_or_else(|| bad("no port"))?)
    } else {
        text.split_once(':').ok_or_else(|| bad("no port"))?
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port_of = |p: &str| match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(bad(&format!("{p:?} is not a port from 1 to 65535"))),
        Ok(port) => Ok(port),
    };
    let (port, mgmt_port) = match rest.split_once(':') {
        Some((port, mgmt)) => (port_of(port)?, port_of(mgmt)?),
        None => {
            let port = port_of(rest)?;
            let mgmt = port
                .checked_add(1)
                .ok_or_else(|| bad("port 65535 has no port+1 for mgmt; give it"))?;
            (port, mgmt)
        }
    };
    Ok(NodeSpec {
        host: host.to_string(),
        port,
        mgmt_port,
    })
}

/// The proxy's settings, or None without `--proxy`; the error is one line.
pub fn settings(args: &ProxyArgs) -> Result<Option<ProxySettings>, String> {
    let Some(list) = &args.proxy else {
        return Ok(None);
    };
    let nodes = list
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(node)
        .collect::<Result<Vec<_>, _>>()?;
    if nodes.is_empty() {
        return Err("--proxy needs at least one host:port".into());
    }
    let ids: Vec<String> = nodes.iter().map(NodeSpec::id).collect();
    if let Some(twice) = ids
        .iter()
        .enumerate()
        .find(|(i, id)| ids[..*i].contains(id))
    {
        return Err(format!("--proxy names {} twice", twice.1));
    }
    if !(1..=MAX_UDP_PAYLOAD).contains(&args.proxy_packet_bytes) {
        return Err(format!(
            "--proxy-packet-bytes must be between 1 and {MAX_UDP_PAYLOAD}, not {}",
            args.proxy_packet_bytes
        ));
    }
    let check_interval = super::seconds("--proxy-check-interval", args.proxy_check_interval)?;
    Ok(Some(ProxySettings {
        nodes,
        packet_bytes: args.proxy_packet_bytes,
        transport: args.proxy_transport,
        check_interval: check_interval.max(Duration::from_millis(1)),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &str) -> ProxyArgs {
        ProxyArgs {
            proxy: Some(list.into()),
            proxy_packet_bytes: DEFAULT_PACKET_BYTES,
            proxy_transport: Transport::Udp,
            proxy_check_interval: 10.0,
        }
    }

    #[test]
    fn nodes_with_and_without_mgmt_port() {
        let got = settings(&args("a:8125, b:9000:9100,[::1]:7000"))
            .unwrap()
            .unwrap();
        let nodes: Vec<(String, u16, u16)> = got
            .nodes
            .into_iter()
            .map(|n| (n.host, n.port, n.mgmt_port))
            .collect();
        assert_eq!(
            nodes,
            [
                ("a".into(), 8125, 8126),
                ("b".into(), 9000, 9100),
                ("::1".into(), 7000, 7001)
            ]
        );
    }

    #[test]
    fn bad_lists_are_one_line() {
        for list in ["", "a", "a:0", "a:x", ":1", "a:65535", "a:1,a:1", "[::1:5"] {
            let error = settings(&args(list)).unwrap_err();
            assert!(!error.contains('\n'), "{error}");
        }
        let mut big = args("a:1");
        big.proxy_packet_bytes = 70_000;
        assert!(settings(&big).is_err());
    }
}
