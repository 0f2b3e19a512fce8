//! `--proxy`: a stateless front that forwards every line to the aggregator
//! its name hashes to, placed exactly as Etsy's `proxy.js` places it (npm
//! `hashring`, keyed on `host:port`, the key being the text before a line's
//! first `:`), so both proxies can run side by side.
//!
//! - [`ring`]: hashring's continuum and lookup, transcribed.
//! - [`cache`]: recent placements per worker (exact), so most lines skip md5.
//! - [`forward`]: per worker: route, pack into datagrams, `sendmmsg` (or TCP).
//! - [`health`]: Etsy's `health` admin command every `--proxy-check-interval`;
//!   a node that fails is taken out of the ring, and put back once healthy.
//! - [`stats`]: `proxy.*` keys, per node.
//!
//! The UDP intake is the server's own (`net::udp::receive`, recvmmsg):
//! each receive worker owns a [`forward::Forwarder`] and sends what a batch
//! holds before taking the next. TCP intake shares one forwarder.

pub mod cache;
pub mod forward;
pub mod health;
pub mod ring;
pub mod stats;

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use tokio_util::sync::CancellationToken;

use crate::logging::RateLimited;
use crate::net::udp::Received;
use forward::Forwarder;
use ring::Ring;
use stats::ProxyStats;

/// Default datagram size: fits a 1500-byte MTU path with room for tunnels
/// (Etsy's advice for commodity networks).
pub const DEFAULT_PACKET_BYTES: usize = 1432;
/// proxy.js's `checkInterval` default: 10 s.
pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(10);

/// How lines are sent to the nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    /// Datagrams (proxy.js's only way).
    Udp,
    /// One connection per node per worker, lines ended by `\n`.
    Tcp,
}

/// One aggregator, as `--proxy` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    /// Host as written (no brackets around an IPv6 literal).
    pub host: String,
    /// Metrics port.
    pub port: u16,
    /// Admin (mgmt) port, answering `health`.
    pub mgmt_port: u16,
}

impl NodeSpec {
    /// `host:port`, the ring's name for the node (proxy.js: `host + ':' + port`).
    pub fn id(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Everything `--proxy` and its flags ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxySettings {
    /// The aggregators, in the order given.
    pub nodes: Vec<NodeSpec>,
    /// Largest datagram sent to a node.
    pub packet_bytes: usize,
    /// UDP or TCP to the nodes.
    pub transport: Transport,
    /// Time between health checks, and the bound on each.
    pub check_interval: Duration,
}

/// A node once resolved.
#[derive(Debug, Clone)]
pub struct Node {
    /// `host:port`.
    pub id: String,
    /// Where its lines go.
    pub addr: SocketAddr,
    /// Where its health is asked.
    pub mgmt: SocketAddr,
}

/// What every worker and the health checker share.
#[derive(Debug)]
pub struct Shared {
    /// The nodes, in `--proxy` order.
    pub nodes: Vec<Node>,
    /// The settings.
    pub settings: ProxySettings,
    /// Counters.
    pub stats: Arc<ProxyStats>,
    /// The ring now; replaced whole by the health checker.
    ring: RwLock<Arc<Ring>>,
    /// Bumped at each replacement, so workers see a change with one load.
    epoch: AtomicU64,
}

impl Shared {
    /// Resolves the nodes (once, at start) and builds the full ring.
    pub fn new(settings: ProxySettings) -> io::Result<Shared> {
        let resolve = |host: &str, port: u16| -> io::Result<SocketAddr> {
            (host, port).to_socket_addrs()?.next().ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address"))
            })
        };
        let nodes = settings
            .nodes
            .iter()
            .map(|spec| {
                let at = |e: io::Error| {
                    io::Error::new(e.kind(), format!("--proxy node {}: {e}", spec.id()))
                };
                Ok(Node {
                    id: spec.id(),
                    addr: resolve(&spec.host, spec.port).map_err(at)?,
                    mgmt: resolve(&spec.host, spec.mgmt_port).map_err(at)?,
                })
            })
            .collect::<io::Result<Vec<Node>>>()?;
        let ids: Vec<String> = nodes.iter().map(|n| n.id.clone()).collect();
        let ring = Ring::build(&ids, (0..ids.len()).collect());
        Ok(Shared {
            stats: Arc::new(ProxyStats::new(&ids)),
            nodes,
            settings,
            ring: RwLock::new(Arc::new(ring)),
            epoch: AtomicU64::new(0),
        })
    }

    /// The nodes' `host:port` names, in order.
    pub fn ids(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.id.clone()).collect()
    }

    /// The ring now and its epoch.
    pub fn ring(&self) -> (Arc<Ring>, u64) {
        let ring = self.ring.read();
        (ring.clone(), self.epoch.load(Ordering::Acquire))
    }

    /// The epoch now (one atomic load: cheap enough for every batch).
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Replaces the ring.
    pub fn set_ring(&self, ring: Ring) {
        let mut current = self.ring.write();
        *current = Arc::new(ring);
        self.epoch.fetch_add(1, Ordering::Release);
    }
}

/// One UDP receive worker in proxy mode: every batch is routed and sent
/// before the next is taken, so nothing waits in the proxy.
pub fn udp_worker(
    sockets: Vec<std::net::UdpSocket>,
    shared: Arc<Shared>,
    log: &RateLimited,
    stop: CancellationToken,
) {
    let mut forwarder = match Forwarder::new(shared.clone()) {
        Ok(forwarder) => forwarder,
        Err(e) => {
            log.error(|| format!("proxy: cannot open the sockets to the nodes: {e}"));
            return;
        }
    };
    crate::net::udp::receive(sockets, "UDP", log, stop, |received: Received<'_>| {
        forwarder.refresh();
        let mut bytes = 0;
        for (mut datagram, cut) in received.iter() {
            bytes += datagram.len();
            if cut {
                // The lines before the cut are whole; the cut one is lost.
                shared.stats.truncated.incr();
                let end = memchr::memrchr(b'\n', datagram).unwrap_or(0);
                datagram = &datagram[..end];
            }
            forwarder.forward(datagram);
        }
        forwarder.flush();
        bytes
    });
}

/// The forwarder TCP intake shares (TCP reads are few and large).
pub struct TcpForward(Mutex<Forwarder>);

impl std::fmt::Debug for TcpForward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TcpForward")
    }
}

impl TcpForward {
    /// A forwarder of its own for TCP intake.
    pub fn new(shared: Arc<Shared>) -> io::Result<TcpForward> {
        Ok(TcpForward(Mutex::new(Forwarder::new(shared)?)))
    }

    /// Routes and sends the complete lines of one TCP read.
    pub fn forward(&self, lines: &[u8]) {
        let mut forwarder = self.0.lock();
        forwarder.refresh();
        forwarder.forward(lines);
        forwarder.flush();
    }
}
