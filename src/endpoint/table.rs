//! The 4-tuple → connection-slot index (a slot holds a live connection or, after it, its
//! TIME-WAIT record): an open-addressing hash table of 8-byte buckets.
//!
//! The keys themselves are not stored: each connection already knows its addresses, so a
//! bucket holds only the slot index and the key's hash, and a lookup confirms a candidate by
//! asking the caller whether that slot's 4-tuple is the one wanted. A million connections then
//! cost 11–21 bytes each here (load kept between 3/8 and 3/4), where an ordered map of
//! `(SocketAddr, SocketAddr)` keys cost about a hundred. The hash is the endpoint's cheap keyed hash
//! ([`HashKey::tuple`]; `map.rs` says why it is enough), keyed by a value derived from the
//! endpoint secret, so a peer cannot aim its 4-tuples at one probe chain (hash flooding). Linear probing with backward-shift deletion: no tombstones, so lookups
//! stay short however many connections come and go.

use alloc::vec::Vec;
use core::net::SocketAddr;

use super::map::HashKey;

/// One bucket: a slot index and the full hash of its key; `EMPTY` marks a free bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Bucket {
    index: u32,
    hash: u32,
}

impl Bucket {
    const EMPTY: Self = Self { index: u32::MAX, hash: 0 };

    const fn is_empty(self) -> bool {
        self.index == u32::MAX
    }
}

/// The hash of a 4-tuple (local, remote) under the table's key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TupleHash(u32);

/// Slot indices by 4-tuple.
#[derive(Debug)]
pub(crate) struct TupleTable {
    buckets: Vec<Bucket>,
    len: usize,
    key: HashKey,
}

impl TupleTable {
    /// The smallest table allocated (a power of two, like every size).
    const MIN_BUCKETS: usize = 16;

    pub(crate) const fn new(key: HashKey) -> Self {
        Self { buckets: Vec::new(), len: 0, key }
    }

    pub(crate) const fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn hash(&self, local: SocketAddr, remote: SocketAddr) -> TupleHash {
        // The low 32 bits are as good as any; buckets never number more than 2^32.
        TupleHash(self.key.tuple(local, remote) as u32)
    }

    /// The slot index whose tuple hashes to `hash` and for which `is_match` says yes.
    pub(crate) fn find(&self, hash: TupleHash, is_match: impl Fn(u32) -> bool) -> Option<u32> {
        let mask = self.buckets.len().checked_sub(1)?;
        let mut at = hash.0 as usize & mask;
        loop {
            let bucket = *self.buckets.get(at)?;
            if bucket.is_empty() {
                return None;
            }
            if bucket.hash == hash.0 && is_match(bucket.index) {
                return Some(bucket.index);
            }
            at = (at + 1) & mask;
        }
    }

    /// Adds slot `index` under `hash`. The caller has checked the tuple is not present.
    pub(crate) fn insert(&mut self, hash: TupleHash, index: u32) {
        // Grow at 3/4 full: linear probing stays short below that.
        if (self.len + 1) * 4 > self.buckets.len() * 3 {
            self.grow();
        }
        self.place(Bucket { index, hash: hash.0 });
        self.len += 1;
    }

    /// Removes slot `index`, filed under `hash`; false if it was not there.
    pub(crate) fn remove(&mut self, hash: TupleHash, index: u32) -> bool {
        let Some(mask) = self.buckets.len().checked_sub(1) else { return false };
        let mut at = hash.0 as usize & mask;
        loop {
            let Some(bucket) = self.buckets.get(at).copied() else { return false };
            if bucket.is_empty() {
                return false;
            }
            if bucket.index == index {
                break;
            }
            at = (at + 1) & mask;
        }
        // Backward-shift deletion (Knuth 6.4, algorithm R): move later members of the probe
        // run into the hole when the hole lies between their home bucket and where they sit.
        let mut hole = at;
        let mut next = (hole + 1) & mask;
        while let Some(bucket) = self.buckets.get(next).copied().filter(|b| !b.is_empty()) {
            let home = bucket.hash as usize & mask;
            // Distance from home to `next` versus from home to the hole, on the ring.
            if (next.wrapping_sub(home) & mask) >= (next.wrapping_sub(hole) & mask) {
                if let Some(slot) = self.buckets.get_mut(hole) {
                    *slot = bucket;
                }
                hole = next;
            }
            next = (next + 1) & mask;
        }
        if let Some(slot) = self.buckets.get_mut(hole) {
            *slot = Bucket::EMPTY;
        }
        self.len -= 1;
        true
    }

    /// Puts `bucket` in the first free bucket of its probe run; the table has room.
    fn place(&mut self, bucket: Bucket) {
        let mask = self.buckets.len().wrapping_sub(1);
        let mut at = bucket.hash as usize & mask;
        while let Some(slot) = self.buckets.get_mut(at) {
            if slot.is_empty() {
                *slot = bucket;
                return;
            }
            at = (at + 1) & mask;
        }
    }

    /// Doubles the bucket array and re-files every member by its stored hash.
    fn grow(&mut self) {
        let size = (self.buckets.len() * 2).max(Self::MIN_BUCKETS);
        let old = core::mem::replace(&mut self.buckets, alloc::vec![Bucket::EMPTY; size]);
        for bucket in old.into_iter().filter(|bucket| !bucket.is_empty()) {
            self.place(bucket);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;
    use core::net::{IpAddr, Ipv4Addr};

    fn addr(ip: u32, port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port)
    }

    /// Random inserts and removes against an ordered map: every lookup agrees, and removal
    /// never strands a member behind a hole (the backward-shift invariant).
    #[test]
    fn agrees_with_a_map_under_churn() {
        let mut table = TupleTable::new(HashKey::new([7; 16], [8; 16]));
        let mut model: BTreeMap<u32, (SocketAddr, SocketAddr)> = BTreeMap::new();
        let mut tuples: Vec<(SocketAddr, SocketAddr)> = Vec::new();
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for step in 0..20_000u32 {
            let roll = next();
            if roll % 3 != 0 || model.is_empty() {
                // A few remote addresses and ports, so hashes collide on the bucket often.
                let tuple = (addr(1, 80), addr((roll >> 8) as u32 % 4, (roll >> 16) as u16 % 64));
                let hash = table.hash(tuple.0, tuple.1);
                let present = table.find(hash, |i| tuples.get(i as usize) == Some(&tuple));
                if present.is_none() {
                    tuples.push(tuple);
                    let index = (tuples.len() - 1) as u32;
                    table.insert(hash, index);
                    model.insert(index, tuple);
                }
            } else {
                let pick = (roll >> 20) as usize % model.len();
                let (&index, &tuple) = model.iter().nth(pick).unwrap();
                assert!(table.remove(table.hash(tuple.0, tuple.1), index), "step {step}");
                model.remove(&index);
            }
            assert_eq!(table.len(), model.len());
            if step % 97 == 0 {
                for (&index, &tuple) in &model {
                    let hash = table.hash(tuple.0, tuple.1);
                    let found = table.find(hash, |i| tuples.get(i as usize) == Some(&tuple));
                    assert_eq!(found, Some(index), "step {step}");
                }
            }
        }
    }

    #[test]
    fn empty_table_finds_and_removes_nothing() {
        let mut table = TupleTable::new(HashKey::new([0; 16], [0; 16]));
        let hash = table.hash(addr(1, 1), addr(2, 2));
        assert_eq!(table.find(hash, |_| true), None);
        assert!(!table.remove(hash, 0));
    }

    #[test]
    fn the_key_changes_the_hash() {
        let a = TupleTable::new(HashKey::new([1; 16], [1; 16])).hash(addr(1, 80), addr(2, 1234));
        let b = TupleTable::new(HashKey::new([2; 16], [1; 16])).hash(addr(1, 80), addr(2, 1234));
        assert_ne!(a, b);
    }
}
