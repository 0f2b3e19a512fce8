//! Etsy's proxy ring: npm `hashring` 3.2.0 exactly as `proxy.js` (statsd
//! 0.9.0) sets it up. Every node is `host:port` with weight 100, md5, 40
//! virtual nodes, `replicas: 0` (which hashring raises to 1): each node gets
//! `floor(weight / total * 40 * nodes)` points, point `i` being the
//! little-endian u32 of `md5("host:port-i")[0..4]`, sorted stably (ties keep
//! server order). A key goes to the point found by hashring's own binary
//! search, quirks included (see [`Ring::find`]), so both proxies place every
//! name alike.

use std::borrow::Cow;

use md5::{Digest, Md5};

/// hashring's default virtual nodes per server (`vnode count`).
const VNODES: usize = 40;
/// The weight proxy.js gives every node ("arbitrary but the same for all").
const WEIGHT: f64 = 100.0;

/// One point of the continuum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Point {
    /// Position on the ring.
    value: u32,
    /// Index of the node (in the proxy's node list) it belongs to.
    node: usize,
}

/// The continuum for the nodes now in the ring.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ring {
    /// Points sorted by value (stable: ties in server order).
    points: Vec<Point>,
    /// Nodes in the ring, in hashring's server order: a node put back goes
    /// last, as `HashRing#add` appends it.
    servers: Vec<usize>,
}

/// hashring's `hashValueHash(x[3], x[2], x[1], x[0])` of an md5 digest.
fn hash_value(bytes: &[u8]) -> u32 {
    let digest = Md5::digest(bytes);
    u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// The position of a key: hashring hashes the JavaScript string, which
/// proxy.js decoded from the datagram as UTF-8 with U+FFFD for bad bytes.
pub fn key_hash(key: &[u8]) -> u32 {
    match String::from_utf8_lossy(key) {
        Cow::Borrowed(_) => hash_value(key),
        Cow::Owned(fixed) => hash_value(fixed.as_bytes()),
    }
}

impl Ring {
    /// The ring of `servers` (indexes into `ids`, in this order); `ids[n]`
    /// is node n's `host:port`.
    pub fn build(ids: &[String], servers: Vec<usize>) -> Ring {
        let mut points = Vec::new();
        let count = servers.len();
        let total = WEIGHT * count as f64;
        for &node in &servers {
            // Evaluated as JavaScript does: (percentage * vnodes) * length.
            let length = (WEIGHT / total * VNODES as f64 * count as f64).floor() as usize;
            for i in 0..length {
                let value = hash_value(format!("{}-{i}", ids[node]).as_bytes());
                points.push(Point { value, node });
            }
        }
        points.sort_by_key(|p| p.value);
        Ring { points, servers }
    }

    /// Nodes in the ring, in server order.
    pub fn servers(&self) -> &[usize] {
        &self.servers
    }

    /// The ring without `node` (`HashRing#remove`: the others keep their order).
    pub fn without(&self, ids: &[String], node: usize) -> Ring {
        let servers = self
            .servers
            .iter()
            .copied()
            .filter(|&n| n != node)
            .collect();
        Ring::build(ids, servers)
    }

    /// The ring with `node` appended (`HashRing#add`; no duplicates).
    pub fn with(&self, ids: &[String], node: usize) -> Ring {
        let mut servers = self.servers.clone();
        if !servers.contains(&node) {
            servers.push(node);
        }
        Ring::build(ids, servers)
    }

    /// The node a key (the text before a line's first `:`) goes to; None
    /// when the ring is empty.
    #[inline]
    pub fn node_for(&self, key: &[u8]) -> Option<usize> {
        self.node_at(key_hash(key))
    }

    /// The node for a key's position.
    #[inline]
    pub fn node_at(&self, hash: u32) -> Option<usize> {
        self.points.get(self.find(hash)).map(|p| p.node)
    }

    /// hashring's `find`, transcribed: a binary search for the first point
    /// at or after `hash` that falls back to index 0 whenever it loses its
    /// way (a key equal to the first point, a key between the points at an
    /// edge of a narrowed range), so it must be copied, not improved.
    fn find(&self, hash: u32) -> usize {
        let size = self.points.len() as i64;
        let (mut low, mut high) = (0i64, size);
        loop {
            let mid = (low + high) >> 1;
            if mid == size {
                return 0;
            }
            let middle = self.points[mid as usize].value;
            let prev = if mid == 0 {
                0
            } else {
                self.points[mid as usize - 1].value
            };
            if hash <= middle && hash > prev {
                return mid as usize;
            }
            if middle < hash {
                low = mid + 1;
            } else {
                high = mid - 1;
            }
            if low > high {
                return 0;
            }
        }
    }
}

#[cfg(test)]
mod tests;
