//! Several carbon-caches behind us: each flush's payload is split by
//! destination on the flush's own thread, and each destination gets its
//! own publisher (connection, backlog, retries, stats), so one destination
//! down never delays the others.
//!
//! The split places every Graphite path once (the ring is consulted once a
//! line, whatever the replication) and copies the rendered line into the
//! parts of the destinations that hold it: nothing is rendered again.

use tokio::sync::mpsc;

use super::ring::{HashRing, HashType, Placement, RingNode};
use super::{Carbon, Payload};

/// One `host[:port[:instance]]` of `--graphite-host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// Where and how to publish.
    pub carbon: Carbon,
    /// The ring's instance name (carbon's third field), if given.
    pub instance: Option<String>,
}

impl Destination {
    /// carbon's ring key: `(server, instance)`, the port left out.
    pub fn ring_node(&self) -> RingNode {
        RingNode {
            server: self.carbon.host.clone(),
            instance: self.instance.clone(),
        }
    }

    /// The `<host_port>` of `destination.<host_port>.*`: host, `_`, port,
    /// with every byte outside `A-Za-z0-9_-` (dots, colons) made `_`, so
    /// it is one Graphite path element.
    pub fn stat_name(&self) -> String {
        format!("{}_{}", self.carbon.host, self.carbon.port)
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b == b'-' {
                    char::from(b)
                } else {
                    '_'
                }
            })
            .collect()
    }
}

/// How paths are spread over several destinations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spread {
    /// The ring type.
    pub hashing: HashType,
    /// Copies of each path, on distinct servers where the ring has them.
    pub replication: usize,
}

/// Hands each flush's payload to the publishers: whole to a single one, or
/// split by the ring among several.
pub struct Fanout {
    /// One publisher's channel per destination, in `--graphite-host` order.
    outlets: Vec<mpsc::UnboundedSender<Payload>>,
    /// The ring and the replication, with two destinations or more.
    ring: Option<(HashRing, usize)>,
    /// Buffers reused for every line's placement.
    placement: Placement,
}

impl Fanout {
    /// Everything to one publisher (one destination, or stdout).
    pub fn single(outlet: mpsc::UnboundedSender<Payload>) -> Fanout {
        Fanout {
            outlets: vec![outlet],
            ring: None,
            placement: Placement::default(),
        }
    }

    /// Paths placed on `destinations` by the ring; `outlets` in the same order.
    pub fn spread(
        destinations: &[Destination],
        spread: Spread,
        outlets: Vec<mpsc::UnboundedSender<Payload>>,
    ) -> Fanout {
        if outlets.len() < 2 {
            return Fanout {
                outlets,
                ring: None,
                placement: Placement::default(),
            };
        }
        let nodes: Vec<RingNode> = destinations.iter().map(Destination::ring_node).collect();
        Fanout {
            outlets,
            ring: Some((HashRing::new(&nodes, spread.hashing), spread.replication)),
            placement: Placement::default(),
        }
    }

    /// Sends `payload` on, split when there are several destinations. A
    /// destination that holds none of its lines gets nothing this flush.
    pub fn send(&mut self, payload: Payload) {
        match &self.ring {
            None => {
                if let Some(outlet) = self.outlets.first() {
                    let _ = outlet.send(payload);
                }
            }
            Some((ring, replication)) => {
                let parts = split(
                    &payload,
                    ring,
                    *replication,
                    self.outlets.len(),
                    &mut self.placement,
                );
                for (outlet, part) in self.outlets.iter().zip(parts) {
                    if part.lines > 0 {
                        let _ = outlet.send(part);
                    }
                }
            }
        }
    }
}

/// One payload per destination: each line copied into the parts of the
/// nodes its path (the text before the first space) is placed on.
pub fn split(
    payload: &Payload,
    ring: &HashRing,
    replication: usize,
    destinations: usize,
    placement: &mut Placement,
) -> Vec<Payload> {
    let data = &payload.data;
    // Each part gets about its share; a little more saves a regrowth.
    let share = data.len() / destinations.max(1) * replication.min(destinations) + 4096;
    let mut parts: Vec<Payload> = (0..destinations)
        .map(|_| Payload {
            data: Vec::with_capacity(share + share / 8),
            lines: 0,
        })
        .collect();
    let mut start = 0;
    while start < data.len() {
        let end = memchr::memchr(b'\n', &data[start..]).map_or(data.len(), |at| start + at + 1);
        let line = &data[start..end];
        let path = memchr::memchr(b' ', line).map_or(line, |at| &line[..at]);
        for &node in ring.place(path, replication, placement) {
            if let Some(part) = parts.get_mut(node) {
                part.data.extend_from_slice(line);
                part.lines += 1;
            }
        }
        start = end;
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::GraphiteProtocol;
    use std::time::Duration;

    fn destination(host: &str, port: u16, instance: Option<&str>) -> Destination {
        Destination {
            carbon: Carbon {
                host: host.into(),
                port,
                protocol: GraphiteProtocol::Plaintext,
                connect_timeout: Duration::from_secs(1),
                write_timeout: Duration::from_secs(1),
            },
            instance: instance.map(Into::into),
        }
    }

    #[test]
    fn stat_names_are_one_graphite_element() {
        assert_eq!(
            destination("127.0.0.1", 2003, None).stat_name(),
            "127_0_0_1_2003"
        );
        assert_eq!(destination("::1", 2004, Some("a")).stat_name(), "__1_2004");
        assert_eq!(
            destination("cache-1.example", 2003, None).stat_name(),
            "cache-1_example_2003"
        );
    }

    #[test]
    fn every_line_goes_where_the_ring_says_once_per_replica() {
        let dests = [
            destination("127.0.0.1", 1, None),
            destination("127.0.0.2", 2, None),
            destination("127.0.0.3", 3, None),
        ];
        let nodes: Vec<RingNode> = dests.iter().map(Destination::ring_node).collect();
        let ring = HashRing::new(&nodes, HashType::CarbonCh);
        let mut data = Vec::new();
        for i in 0..300 {
            data.extend_from_slice(format!("stats.m{i} {i} 100\n").as_bytes());
        }
        let payload = Payload { data, lines: 300 };
        let mut placement = Placement::default();
        for replication in [1, 2, 3] {
            let parts = split(&payload, &ring, replication, 3, &mut placement);
            let total: usize = parts.iter().map(|p| p.lines).sum();
            assert_eq!(total, 300 * replication);
            for (index, part) in parts.iter().enumerate() {
                let text = String::from_utf8(part.data.clone()).unwrap();
                assert_eq!(text.lines().count(), part.lines);
                for line in text.lines() {
                    let path = line.split(' ').next().unwrap();
                    let placed = ring.place(path.as_bytes(), replication, &mut placement);
                    assert!(placed.contains(&index), "{path} on {index}");
                }
            }
        }
    }
}
