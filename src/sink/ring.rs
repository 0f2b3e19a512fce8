//! Carbon's consistent-hashing ring, bit for bit as carbon-relay and
//! graphite-web build it (`carbon/hashing.py`, `ConsistentHashRing`), so a
//! name we place on a carbon-cache is where graphite-web's CARBONLINK_HOSTS
//! and a carbon-relay with `RELAY_METHOD = consistent-hashing` look for it.
//!
//! A node is a `(server, instance)` pair; the port is not part of the key.
//! Each node gets 100 positions: `carbon_ch` hashes the Python text of the
//! pair with `:i` appended (`('10.0.0.1', 'a'):0`) and keeps the first 16
//! bits of its md5; `fnv1a_ch` hashes `i-instance` with 32-bit FNV-1a folded
//! to 16 bits. A taken position moves up by one, as carbon does (so positions
//! may pass 0xffff). A name goes to the first position at or after its own
//! hash, wrapping round. Written by hand: no crate implements carbon's ring.

use md5::{Digest, Md5};

/// Positions per node, carbon's `replica_count` default.
const REPLICAS: usize = 100;

/// How positions are hashed (carbon's `hash_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashType {
    /// carbon's default: md5, first 16 bits.
    CarbonCh,
    /// 32-bit FNV-1a folded to 16 bits; node positions use the instance only.
    Fnv1aCh,
}

/// One ring member: carbon's `(server, instance)` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingNode {
    /// Host as written in the destination list (carbon keys on it, not on
    /// the address it resolves to).
    pub server: String,
    /// The optional third field of `host:port:instance`.
    pub instance: Option<String>,
}

/// Carbon's ring over a fixed list of nodes.
#[derive(Debug, Clone)]
pub struct HashRing {
    /// Hash type of positions and names.
    hash_type: HashType,
    /// `(position, node index)`, sorted by position; positions are unique.
    entries: Vec<(u32, usize)>,
    /// Distinct nodes.
    nodes: usize,
}

impl HashRing {
    /// Builds the ring; nodes are added in order, as carbon does, since the
    /// order decides who moves up on a taken position. A repeated node is
    /// kept once.
    pub fn new(nodes: &[RingNode], hash_type: HashType) -> HashRing {
        let mut ring = HashRing {
            hash_type,
            entries: Vec::with_capacity(nodes.len() * REPLICAS),
            nodes: 0,
        };
        let mut taken = std::collections::HashSet::new();
        for (index, node) in nodes.iter().enumerate() {
            if nodes[..index].contains(node) {
                continue;
            }
            ring.nodes += 1;
            for replica in 0..REPLICAS {
                let key = match hash_type {
                    HashType::CarbonCh => format!("{}:{replica}", python_tuple_repr(node)),
                    HashType::Fnv1aCh => {
                        format!("{replica}-{}", node.instance.as_deref().unwrap_or("None"))
                    }
                };
                let mut position = position_of(key.as_bytes(), hash_type);
                while !taken.insert(position) {
                    position += 1;
                }
                ring.entries.push((position, index));
            }
        }
        ring.entries.sort_unstable();
        ring
    }

    /// The node (index into the list given to [`HashRing::new`]) that holds `name`.
    pub fn node_of(&self, name: &[u8]) -> Option<usize> {
        self.nodes_of(name, 1).next()
    }

    /// The first `replicas` distinct nodes for `name`, in carbon's order
    /// (carbon-relay's REPLICATION_FACTOR without diverse replicas).
    pub fn nodes_of(&self, name: &[u8], replicas: usize) -> impl Iterator<Item = usize> + '_ {
        let start = if self.entries.is_empty() {
            0
        } else {
            let position = position_of(name, self.hash_type);
            self.entries.partition_point(|&(p, _)| p < position) % self.entries.len()
        };
        let wanted = replicas.min(self.nodes);
        let mut seen: Vec<usize> = Vec::with_capacity(wanted);
        (0..self.entries.len())
            .map(move |step| self.entries[(start + step) % self.entries.len()].1)
            .filter(move |node| {
                if seen.len() >= wanted || seen.contains(node) {
                    return false;
                }
                seen.push(*node);
                true
            })
            .take(wanted)
    }
}

/// A name's (or a replica key's) place on the ring.
fn position_of(key: &[u8], hash_type: HashType) -> u32 {
    match hash_type {
        HashType::CarbonCh => {
            let digest = Md5::digest(key);
            u32::from(u16::from_be_bytes([digest[0], digest[1]]))
        }
        HashType::Fnv1aCh => {
            let hash = fnv1a_32(key);
            (hash >> 16) ^ (hash & 0xffff)
        }
    }
}

/// 32-bit FNV-1a, carbon's `fnv32a`.
fn fnv1a_32(data: &[u8]) -> u32 {
    data.iter().fold(0x811c_9dc5, |hash: u32, &byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

/// What Python's `str((server, instance))` prints, which carbon_ch hashes.
fn python_tuple_repr(node: &RingNode) -> String {
    let instance = node
        .instance
        .as_deref()
        .map_or_else(|| "None".to_string(), python_str_repr);
    format!("({}, {instance})", python_str_repr(&node.server))
}

/// Python's `repr(str)` for printable text: single quotes unless the text
/// holds a single quote and no double quote; backslashes and the chosen
/// quote escaped.
fn python_str_repr(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(text.len() + 2);
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(server: &str, instance: Option<&str>) -> RingNode {
        RingNode {
            server: server.into(),
            instance: instance.map(Into::into),
        }
    }

    #[test]
    fn tuple_text_is_pythons() {
        assert_eq!(
            python_tuple_repr(&node("127.0.0.1", None)),
            "('127.0.0.1', None)"
        );
        assert_eq!(python_tuple_repr(&node("h", Some("a"))), "('h', 'a')");
        assert_eq!(
            python_tuple_repr(&node("it's", Some("\\"))),
            "(\"it's\", '\\\\')"
        );
    }

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        assert_eq!(fnv1a_32(b""), 0x811c_9dc5);
        assert_eq!(fnv1a_32(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a_32(b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn replicas_are_distinct_and_bounded() {
        let ring = HashRing::new(
            &[node("a", None), node("b", None), node("c", None)],
            HashType::CarbonCh,
        );
        let all: Vec<usize> = ring.nodes_of(b"some.metric", 5).collect();
        assert_eq!(all.len(), 3);
        let mut sorted = all.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted, vec![0, 1, 2]);
        assert_eq!(ring.node_of(b"some.metric"), Some(all[0]));
    }

    #[test]
    fn a_repeated_node_counts_once() {
        let ring = HashRing::new(&[node("a", None), node("a", None)], HashType::CarbonCh);
        assert_eq!(ring.nodes_of(b"x", 2).collect::<Vec<_>>(), vec![0]);
        assert_eq!(HashRing::new(&[], HashType::CarbonCh).node_of(b"x"), None);
    }
}
