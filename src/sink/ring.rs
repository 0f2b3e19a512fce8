//! Where a Graphite path goes among several carbon-caches, bit for bit as
//! the cluster machinery computes it:
//!
//! - `carbon_ch`, `fnv1a_ch`: carbon's consistent-hashing ring
//!   (`carbon/hashing.py`, `ConsistentHashRing`), as carbon-relay with
//!   `RELAY_METHOD = consistent-hashing` and graphite-web's CARBONLINK_HOSTS
//!   build it. A node is a `(server, instance)` pair; the port is not part of
//!   the key. Each node gets 100 positions: `carbon_ch` hashes the Python text
//!   of the pair with `:i` appended (`('10.0.0.1', 'a'):0`) and keeps the
//!   first 16 bits of its md5; `fnv1a_ch` hashes `i-instance` with 32-bit
//!   FNV-1a folded to 16 bits. A taken position moves up by one, as carbon
//!   does (so positions may pass 0xffff). A path goes to the first position at
//!   or after its own hash, wrapping round; replicas go on along the ring to
//!   nodes on servers not used yet (carbon-relay's `DIVERSE_REPLICAS = True`,
//!   its default).
//! - `jump_fnv1a_ch`: neither carbon nor graphite-web has it (carbon's
//!   hashing.py on master has only carbon_ch, fnv1a_ch and mmh3_ch); it is
//!   carbon-c-relay's (`consistent-hash.c`, v3.7): Lamping and Veach's jump
//!   consistent hash of the path's 64-bit FNV-1a over the nodes ordered by
//!   instance (numerically when both are numbers), nodes without an instance
//!   after them in the order given; each further replica hashes again after
//!   an xorshift, over the nodes not chosen yet.
//!
//! Written by hand: no crate implements these rings.

use md5::{Digest, Md5};

/// Positions per node, carbon's `replica_count` default.
const REPLICAS: usize = 100;

/// How positions are hashed (carbon's `hash_type`, carbon-c-relay's cluster type).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum HashType {
    /// carbon's default: md5, first 16 bits.
    #[default]
    #[value(name = "carbon_ch")]
    CarbonCh,
    /// 32-bit FNV-1a folded to 16 bits; node positions use the instance only.
    #[value(name = "fnv1a_ch")]
    Fnv1aCh,
    /// carbon-c-relay's jump hash over 64-bit FNV-1a.
    #[value(name = "jump_fnv1a_ch")]
    JumpFnv1aCh,
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

/// A ring over a fixed list of nodes.
#[derive(Debug, Clone)]
pub struct HashRing {
    /// Hash type of positions and names.
    hash_type: HashType,
    /// `(position, node index)`, sorted by position; positions are unique.
    /// Empty for the jump hash.
    entries: Vec<(u32, usize)>,
    /// The jump hash's buckets: node indices in carbon-c-relay's order.
    buckets: Vec<usize>,
    /// Per node index, which distinct server it is on (replicas go to
    /// different servers).
    server_of: Vec<usize>,
    /// Distinct nodes.
    nodes: usize,
    /// Distinct servers.
    servers: usize,
}

/// Reusable buffers for [`HashRing::place`], so placing a path allocates nothing.
#[derive(Debug, Default)]
pub struct Placement {
    /// The nodes chosen, first replica first.
    nodes: Vec<usize>,
    /// The jump hash's remaining buckets while choosing replicas.
    buckets: Vec<usize>,
}

impl HashRing {
    /// Builds the ring; nodes are added in order, as carbon does, since the
    /// order decides who moves up on a taken position. A repeated node is
    /// kept once.
    pub fn new(nodes: &[RingNode], hash_type: HashType) -> HashRing {
        let mut server_of = Vec::with_capacity(nodes.len());
        let mut servers: Vec<&str> = Vec::new();
        for node in nodes {
            let server = match servers.iter().position(|s| *s == node.server) {
                Some(at) => at,
                None => {
                    servers.push(&node.server);
                    servers.len() - 1
                }
            };
            server_of.push(server);
        }
        let distinct: Vec<usize> = (0..nodes.len())
            .filter(|&i| !nodes[..i].contains(&nodes[i]))
            .collect();
        let mut ring = HashRing {
            hash_type,
            entries: Vec::new(),
            buckets: Vec::new(),
            server_of,
            nodes: distinct.len(),
            servers: servers.len(),
        };
        if hash_type == HashType::JumpFnv1aCh {
            ring.buckets = jump_order(nodes, distinct);
            return ring;
        }
        ring.entries.reserve(distinct.len() * REPLICAS);
        let mut taken = std::collections::HashSet::new();
        for index in distinct {
            let node = &nodes[index];
            for replica in 0..REPLICAS {
                let key = match hash_type {
                    HashType::Fnv1aCh => {
                        format!("{replica}-{}", node.instance.as_deref().unwrap_or("None"))
                    }
                    _ => format!("{}:{replica}", python_tuple_repr(node)),
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
        self.place(name, 1, &mut Placement::default())
            .first()
            .copied()
    }

    /// Where `name` and its replicas go: up to `replicas` node indices, the
    /// first replica first. Ring types walk carbon-relay's way (each replica
    /// on a server not used yet); the jump hash picks as carbon-c-relay does.
    pub fn place<'a>(&self, name: &[u8], replicas: usize, into: &'a mut Placement) -> &'a [usize] {
        into.nodes.clear();
        if self.hash_type == HashType::JumpFnv1aCh {
            self.jump_place(name, replicas, into);
            return &into.nodes;
        }
        let len = self.entries.len();
        if len == 0 || replicas == 0 {
            return &into.nodes;
        }
        let wanted = replicas.min(self.servers);
        let start = self.start(name);
        // carbon's get_nodes stops short of the entry before the start.
        for step in 0..len.saturating_sub(1).max(1) {
            let node = self.entries[(start + step) % len].1;
            let server = self.server_of[node];
            if into.nodes.iter().all(|&n| self.server_of[n] != server) {
                into.nodes.push(node);
                if into.nodes.len() == wanted {
                    break;
                }
            }
        }
        &into.nodes
    }

    /// The first `replicas` distinct nodes for `name` along the ring, in
    /// carbon's `get_nodes` order (carbon-relay's REPLICATION_FACTOR with
    /// `DIVERSE_REPLICAS = False`). Ring types only; empty for the jump hash.
    pub fn nodes_of(&self, name: &[u8], replicas: usize) -> impl Iterator<Item = usize> + '_ {
        let start = if self.entries.is_empty() {
            0
        } else {
            self.start(name)
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

    /// Index of the first entry at or after `name`'s position, wrapping.
    fn start(&self, name: &[u8]) -> usize {
        let position = position_of(name, self.hash_type);
        self.entries.partition_point(|&(p, _)| p < position) % self.entries.len()
    }

    /// carbon-c-relay's `ch_get_nodes` for `jump_fnv1a_ch`.
    fn jump_place(&self, name: &[u8], replicas: usize, into: &mut Placement) {
        let mut left = self.buckets.len();
        if left == 0 || replicas == 0 {
            return;
        }
        let mut hash = fnv1a_64(name);
        if replicas == 1 {
            into.nodes.push(self.buckets[jump_bucket(hash, left)]);
            return;
        }
        into.buckets.clear();
        into.buckets.extend_from_slice(&self.buckets);
        while left > 0 {
            let bucket = jump_bucket(hash, left);
            into.nodes.push(into.buckets[bucket]);
            if into.nodes.len() == replicas {
                break;
            }
            hash ^= hash >> 12;
            hash ^= hash << 25;
            hash ^= hash >> 27;
            hash = hash.wrapping_mul(2_685_821_657_736_338_717);
            left -= 1;
            into.buckets[bucket] = into.buckets[left];
        }
    }
}

/// carbon-c-relay's bucket order for the jump hash: nodes with an instance
/// first, by instance (as numbers when both are, else as text), then those
/// without one in the order given. An insertion sort, as its comparator is
/// not a total order on mixed instances (a library sort may panic on that).
fn jump_order(nodes: &[RingNode], distinct: Vec<usize>) -> Vec<usize> {
    use std::cmp::Ordering;
    let before = |l: usize, r: usize| -> Ordering {
        match (&nodes[l].instance, &nodes[r].instance) {
            (None, None) => l.cmp(&r),
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(a), Some(b)) => match (a.parse::<i64>(), b.parse::<i64>()) {
                (Ok(x), Ok(y)) => x.cmp(&y),
                _ => a.as_bytes().cmp(b.as_bytes()),
            },
        }
    };
    let mut order = distinct;
    for i in 1..order.len() {
        let mut j = i;
        while j > 0 && before(order[j - 1], order[j]) == Ordering::Greater {
            order.swap(j - 1, j);
            j -= 1;
        }
    }
    order
}

/// Lamping and Veach's jump consistent hash, as carbon-c-relay computes it
/// (the same doubles, so the same bucket).
fn jump_bucket(mut key: u64, buckets: usize) -> usize {
    let (mut b, mut j): (i64, i64) = (-1, 0);
    while j < buckets as i64 {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    b.max(0) as usize
}

/// A name's (or a replica key's) place on the ring.
fn position_of(key: &[u8], hash_type: HashType) -> u32 {
    match hash_type {
        HashType::Fnv1aCh => {
            let hash = fnv1a_32(key);
            (hash >> 16) ^ (hash & 0xffff)
        }
        _ => {
            let digest = Md5::digest(key);
            u32::from(u16::from_be_bytes([digest[0], digest[1]]))
        }
    }
}

/// 32-bit FNV-1a, carbon's `fnv32a`.
fn fnv1a_32(data: &[u8]) -> u32 {
    data.iter().fold(0x811c_9dc5, |hash: u32, &byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

/// 64-bit FNV-1a as carbon-c-relay computes it: its bytes are C `char`s,
/// sign-extended (the same as unsigned for the ASCII names we write).
fn fnv1a_64(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |hash: u64, &byte| {
        (hash ^ (byte as i8 as i64 as u64)).wrapping_mul(0x0100_0000_01b3)
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
mod tests;
