//! Health checks exactly as proxy.js makes them: every check interval, for
//! every node, connect to its admin port, write `health\r\n`, and read one
//! answer. An answer containing `up` is healthy; any other answer, a refused
//! or failed connection, or silence for a whole interval is not. A node is
//! taken out of the ring at its first failure (`markNodeAsUnhealthy`: only
//! while its failure count is below 2) and put back, appended last, at its
//! first success after a failure (`markNodeAsHealthy`). A connection closed
//! without a word changes nothing, as in proxy.js (no data, no error).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Shared;
use crate::logging::eprint_line;

/// What one check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The answer held `up`.
    Healthy,
    /// Another answer, an error, or no answer in time.
    Unhealthy,
    /// Closed without answering: proxy.js hears no event and does nothing.
    Silent,
}

/// Asks one node's admin port for its health, within `limit`.
pub async fn check(mgmt: SocketAddr, limit: Duration) -> Outcome {
    let ask = async {
        let mut stream = tokio::net::TcpStream::connect(mgmt).await?;
        stream.write_all(b"health\r\n").await?;
        let mut answer = [0u8; 512];
        let n = stream.read(&mut answer).await?;
        Ok::<Outcome, std::io::Error>(if n == 0 {
            Outcome::Silent
        } else if memchr::memmem::find(&answer[..n], b"up").is_some() {
            Outcome::Healthy
        } else {
            Outcome::Unhealthy
        })
    };
    match tokio::time::timeout(limit, ask).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(_)) | Err(_) => Outcome::Unhealthy,
    }
}

/// proxy.js's `node_status`: failures in a row per node (None: never checked).
#[derive(Debug, Clone, Default)]
pub struct NodeStatus(Vec<Option<u32>>);

/// What an outcome does to the ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Nothing.
    None,
    /// Take the node out.
    Remove,
    /// Put the node back.
    Add,
}

impl NodeStatus {
    /// Status for `count` nodes, none checked yet.
    pub fn new(count: usize) -> NodeStatus {
        NodeStatus(vec![None; count])
    }

    /// `markNodeAsHealthy` / `markNodeAsUnhealthy` for `node`.
    pub fn apply(&mut self, node: usize, outcome: Outcome) -> Change {
        let status = &mut self.0[node];
        match outcome {
            Outcome::Silent => Change::None,
            Outcome::Healthy => {
                let was_failing = status.is_some_and(|failures| failures > 0);
                *status = Some(0);
                if was_failing {
                    Change::Add
                } else {
                    Change::None
                }
            }
            Outcome::Unhealthy => {
                let failures = status.map_or(1, |failures| failures.saturating_add(1));
                *status = Some(failures);
                if failures < 2 {
                    Change::Remove
                } else {
                    Change::None
                }
            }
        }
    }
}

/// Checks every node every `interval` until `stop`, the first round at
/// once; each check runs on its own (a slow node delays no other), and
/// outcomes are applied in the order they arrive, as proxy.js's callbacks.
pub async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    let interval = shared.settings.check_interval;
    let ids = shared.ids();
    let mut status = NodeStatus::new(ids.len());
    let (outcomes, mut results) = mpsc::unbounded_channel();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {
                for (index, node) in shared.nodes.iter().enumerate() {
                    let (outcomes, mgmt) = (outcomes.clone(), node.mgmt);
                    let stop = stop.clone();
                    tokio::spawn(async move {
                        tokio::select! {
                            _ = stop.cancelled() => {}
                            outcome = check(mgmt, interval) => {
                                let _ = outcomes.send((index, outcome));
                            }
                        }
                    });
                }
            }
            Some((node, outcome)) = results.recv() => {
                let stats = &shared.stats.nodes[node];
                if outcome == Outcome::Unhealthy {
                    stats.checks_failed.incr();
                }
                let (ring, _) = shared.ring();
                // The ring changes before the stats say so: whoever sees a
                // node marked out knows no worker will pick it any more.
                match status.apply(node, outcome) {
                    Change::None => {}
                    Change::Remove => {
                        eprint_line(&format!("statsd: proxy: removing node {} from the ring", ids[node]));
                        shared.set_ring(ring.without(&ids, node));
                        stats.removed.incr();
                        stats.healthy.set(0);
                    }
                    Change::Add => {
                        eprint_line(&format!("statsd: proxy: adding node {} to the ring", ids[node]));
                        shared.set_ring(ring.with(&ids, node));
                        stats.healthy.set(1);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_failure_removes_and_first_success_after_adds() {
        let mut status = NodeStatus::new(1);
        assert_eq!(status.apply(0, Outcome::Healthy), Change::None);
        assert_eq!(status.apply(0, Outcome::Unhealthy), Change::Remove);
        assert_eq!(status.apply(0, Outcome::Unhealthy), Change::None);
        assert_eq!(status.apply(0, Outcome::Silent), Change::None);
        assert_eq!(status.apply(0, Outcome::Healthy), Change::Add);
        assert_eq!(status.apply(0, Outcome::Healthy), Change::None);
    }

    #[test]
    fn never_checked_node_fails_once_and_is_removed() {
        let mut status = NodeStatus::new(2);
        assert_eq!(status.apply(1, Outcome::Unhealthy), Change::Remove);
        assert_eq!(status.apply(0, Outcome::Silent), Change::None);
        assert_eq!(status.apply(0, Outcome::Healthy), Change::None);
    }

    #[tokio::test]
    async fn answers_are_read_as_proxy_js_reads_them() {
        use tokio::net::TcpListener;
        for (answer, expected) in [
            (&b"health: up\n"[..], Outcome::Healthy),
            (b"health: down\n", Outcome::Unhealthy),
            (b"", Outcome::Silent),
        ] {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let server = tokio::spawn(async move {
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut asked = [0u8; 8];
                stream.read_exact(&mut asked).await.unwrap();
                assert_eq!(&asked, b"health\r\n");
                stream.write_all(answer).await.unwrap();
            });
            assert_eq!(check(addr, Duration::from_secs(5)).await, expected);
            server.await.unwrap();
        }
        let refused = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        assert_eq!(
            check(refused, Duration::from_secs(5)).await,
            Outcome::Unhealthy
        );
    }
}
