//! A per-worker cache of recent placements: the same names come again and
//! again, and an md5 per line is most of the proxy's work per line.
//! Direct-mapped, fixed size, exact (the key's bytes are kept and compared,
//! so a hit is always the ring's own answer); emptied whenever the ring
//! changes. Made once per worker: nothing is allocated per line.

/// Slots in the cache (a power of two).
const SLOTS: usize = 8192;
/// Longest key kept; longer keys are looked up in the ring every time.
const KEY_BYTES: usize = 54;

/// One remembered placement.
#[derive(Clone, Copy)]
struct Slot {
    /// Bytes of the key (0: empty slot; an empty key is never cached).
    len: u8,
    key: [u8; KEY_BYTES],
    /// Node index, or u16::MAX for "no node".
    node: u16,
}

const EMPTY: Slot = Slot {
    len: 0,
    key: [0; KEY_BYTES],
    node: 0,
};

/// The cache.
pub struct PlacementCache {
    slots: Box<[Slot]>,
    hasher: ahash::RandomState,
}

impl Default for PlacementCache {
    fn default() -> PlacementCache {
        PlacementCache {
            slots: vec![EMPTY; SLOTS].into_boxed_slice(),
            hasher: ahash::RandomState::new(),
        }
    }
}

impl PlacementCache {
    /// The node for `key`: from the cache, else from `lookup`, remembered.
    #[inline]
    pub fn node_for(
        &mut self,
        key: &[u8],
        lookup: impl FnOnce(&[u8]) -> Option<usize>,
    ) -> Option<usize> {
        if key.is_empty() || key.len() > KEY_BYTES {
            return lookup(key);
        }
        let index = self.hasher.hash_one(key) as usize & (SLOTS - 1);
        let slot = &mut self.slots[index];
        if usize::from(slot.len) == key.len() && &slot.key[..key.len()] == key {
            return (slot.node != u16::MAX).then_some(usize::from(slot.node));
        }
        let node = lookup(key);
        // Node lists beyond u16 are not cached (never seen in practice).
        if let Some(n) = node.map_or(Some(u16::MAX), |n| {
            u16::try_from(n).ok().filter(|&n| n != u16::MAX)
        }) {
            slot.len = key.len() as u8;
            slot.key[..key.len()].copy_from_slice(key);
            slot.node = n;
        }
        node
    }

    /// Forgets everything (the ring changed).
    pub fn clear(&mut self) {
        self.slots.fill(EMPTY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_give_the_ring_answer_and_clear_forgets() {
        let mut cache = PlacementCache::default();
        assert_eq!(cache.node_for(b"a", |_| Some(2)), Some(2));
        assert_eq!(cache.node_for(b"a", |_| panic!("cached")), Some(2));
        assert_eq!(cache.node_for(b"b", |_| None), None);
        assert_eq!(cache.node_for(b"b", |_| panic!("cached")), None);
        cache.clear();
        assert_eq!(cache.node_for(b"a", |_| Some(1)), Some(1));
        let long = [b'x'; 100];
        assert_eq!(cache.node_for(&long, |_| Some(0)), Some(0));
        assert_eq!(cache.node_for(&long, |_| Some(1)), Some(1));
    }
}
