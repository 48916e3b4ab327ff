//! The endpoint's keyed hash and its small hash maps (per-remote counts, listeners, deferred
//! SYNs by 4-tuple; connections and TIME-WAIT records are found through the 4-tuple table of
//! `table.rs`): no tree map on the connection path.
//!
//! **The hash.** Two or three 64 × 64 → 128-bit multiplies whose halves are folded together
//! by XOR (the "folded multiply" of wyhash and foldhash), under a 256-bit key derived from
//! the endpoint secret. An IPv4 4-tuple costs 26 instructions (callgrind) where SipHash-1-3 cost
//! about 170. It is no PRF, and does not need to be one: a flooder who wants to lengthen
//! one probe chain must pick addresses and ports whose hashes agree in their low bits, and
//! every bit of the result depends on key words it never sees — the endpoint never reveals
//! a hash or a bucket, only (at most) a timing difference of a few nanoseconds per probe,
//! and the key differs per endpoint (per secret). The attacker-controlled half of the tuple
//! (remote address and port) enters the first multiply XORed with one key word, the local
//! half with another, so the one degenerate input (a factor of zero) needs the key. What
//! bounds damage even so: the tables keep their load below 3/4, and every table is bounded
//! by a configured limit, so a chain can never hold more entries than the limit.

use alloc::vec::Vec;
use core::net::{IpAddr, SocketAddr};

/// A multiply whose 128-bit product's halves are folded together: every output bit depends
/// on every input bit of both factors.
const fn fold(a: u64, b: u64) -> u64 {
    let product = (a as u128) * (b as u128);
    (product as u64) ^ ((product >> 64) as u64)
}

/// The digits of π, an odd constant with no structure, for the final mix.
const MIX: u64 = 0x243f_6a88_85a3_08d3;

/// The secret key of the endpoint's hash tables (four 64-bit words).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HashKey([u64; 4]);

impl HashKey {
    /// A key from 32 secret octets (two derived 16-octet keys).
    pub(crate) fn new(a: [u8; 16], b: [u8; 16]) -> Self {
        let word = |bytes: &[u8; 16], half: usize| {
            let mut out = [0u8; 8];
            for (slot, byte) in out.iter_mut().zip(bytes.iter().skip(half * 8)) {
                *slot = *byte;
            }
            u64::from_le_bytes(out)
        };
        Self([word(&a, 0), word(&a, 1), word(&b, 0), word(&b, 1)])
    }

    /// The hash of `(local, remote)` words: `local` is ours (address and port), `remote`
    /// the peer's, the part a flooder chooses.
    fn pair(&self, local: u64, remote: u64) -> u64 {
        let [k0, k1, k2, _] = self.0;
        fold(fold(local ^ k0, remote ^ k1) ^ k2, MIX)
    }

    /// The hash of longer input, two words at a time.
    fn words(&self, words: &[u64]) -> u64 {
        let [k0, k1, k2, k3] = self.0;
        let mut h = k3;
        for pair in words.chunks(2) {
            let (x, y) = match *pair {
                [x, y] => (x, y),
                [x] => (x, 0),
                _ => (0, 0),
            };
            h = fold(h ^ x ^ k0, y ^ k1);
        }
        fold(h ^ k2, MIX)
    }

    /// The hash of a 4-tuple (local, remote). IPv4 tuples, the common case, take two
    /// multiplies; others are hashed as IPv6 (IPv4 as mapped addresses).
    pub(crate) fn tuple(&self, local: SocketAddr, remote: SocketAddr) -> u64 {
        match (local, remote) {
            (SocketAddr::V4(l), SocketAddr::V4(r)) => {
                let pack = |ip: u32, port: u16| (u64::from(ip) << 16) | u64::from(port);
                self.pair(pack(u32::from(*l.ip()), l.port()), pack(u32::from(*r.ip()), r.port()))
            }
            (l, r) => {
                let (lh, ll) = ip_words(l.ip());
                let (rh, rl) = ip_words(r.ip());
                let ports = (u64::from(l.port()) << 16) | u64::from(r.port());
                self.words(&[lh, ll, rh, rl, ports])
            }
        }
    }
}

/// An address as two 64-bit words (IPv4 as its IPv6-mapped form).
fn ip_words(ip: IpAddr) -> (u64, u64) {
    let bits = match ip {
        IpAddr::V4(ip) => u128::from(ip.to_ipv6_mapped()),
        IpAddr::V6(ip) => u128::from(ip),
    };
    ((bits >> 64) as u64, bits as u64)
}

/// A key of a [`KeyedMap`].
pub(crate) trait MapKey: Copy + Eq {
    /// The key's hash under the table's key.
    fn hash_with(&self, key: &HashKey) -> u64;
}

impl MapKey for IpAddr {
    fn hash_with(&self, key: &HashKey) -> u64 {
        match self {
            Self::V4(ip) => key.pair(0, u64::from(u32::from(*ip))),
            Self::V6(_) => {
                let (h, l) = ip_words(*self);
                key.words(&[h, l])
            }
        }
    }
}

impl MapKey for SocketAddr {
    fn hash_with(&self, key: &HashKey) -> u64 {
        match self {
            Self::V4(a) => key.pair(u64::from(a.port()), u64::from(u32::from(*a.ip()))),
            Self::V6(a) => {
                let (h, l) = ip_words(IpAddr::V6(*a.ip()));
                key.words(&[h, l, u64::from(a.port())])
            }
        }
    }
}

impl MapKey for (SocketAddr, SocketAddr) {
    fn hash_with(&self, key: &HashKey) -> u64 {
        key.tuple(self.0, self.1)
    }
}

/// A hash map with open addressing, linear probing and backward-shift deletion (no
/// tombstones), kept between 3/8 and 3/4 full (it shrinks when it empties, so a past flood
/// does not pin memory). Only what the endpoint needs: get, insert, remove, retain, and a
/// bucket found once and used again while the map is unchanged (`find`, `at`, `at_mut`).
///
/// It remembers the bucket of the last key changed or looked up for change through the
/// key (`recent`; `at_mut` leaves it alone), and
/// looks there first: a connection's lifecycle asks the per-remote counts about one remote
/// and the listeners about one listener three to six times (limit check, filing, handshake,
/// accept, release), and the same key in the same bucket needs no hash and no probe. Only a
/// hint — a bucket holding another key (entries move on removal and growth) sends the lookup
/// the usual way, so an answer never depends on it.
#[derive(Debug)]
pub(crate) struct KeyedMap<K, V> {
    buckets: Vec<Option<(K, V)>>,
    len: usize,
    key: HashKey,
    recent: usize,
}

impl<K: MapKey, V> KeyedMap<K, V> {
    const MIN_BUCKETS: usize = 8;

    pub(crate) const fn new(key: HashKey) -> Self {
        Self { buckets: Vec::new(), len: 0, key, recent: 0 }
    }

    pub(crate) const fn len(&self) -> usize {
        self.len
    }

    fn home(&self, key: &K) -> usize {
        (key.hash_with(&self.key) as usize) & self.buckets.len().wrapping_sub(1)
    }

    /// The bucket holding `key`. The empty map's answer and the recent bucket's at the
    /// caller (most maps are empty on most endpoints: deferred SYNs, a client's listeners;
    /// a lifecycle's lookups of its remote and listener mostly hit the recent bucket), the
    /// search out of line.
    #[inline]
    fn position(&self, key: &K) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        if let Some(Some((k, _))) = self.buckets.get(self.recent)
            && k == key
        {
            return Some(self.recent);
        }
        self.search(key)
    }

    /// [`position`](Self::position) in a map that is not empty, past the recent bucket.
    #[inline(never)]
    fn search(&self, key: &K) -> Option<usize> {
        let mask = self.buckets.len() - 1;
        let mut at = self.home(key);
        loop {
            match self.buckets.get(at)? {
                None => return None,
                Some((k, _)) if k == key => return Some(at),
                Some(_) => at = (at + 1) & mask,
            }
        }
    }

    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        let at = self.position(key)?;
        self.buckets.get(at)?.as_ref().map(|(_, v)| v)
    }

    pub(crate) fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let at = self.position(key)?;
        self.recent = at;
        self.buckets.get_mut(at)?.as_mut().map(|(_, v)| v)
    }

    /// The bucket holding `key`, for [`at`](Self::at) and [`at_mut`](Self::at_mut): valid
    /// until the map is next changed (an insert or remove may move entries).
    pub(crate) fn find(&self, key: &K) -> Option<usize> {
        self.position(key)
    }

    /// The value in bucket `at` (from [`find`](Self::find), the map unchanged since).
    pub(crate) fn at(&self, at: usize) -> Option<&V> {
        self.buckets.get(at)?.as_ref().map(|(_, v)| v)
    }

    /// [`at`](Self::at), mutably.
    pub(crate) fn at_mut(&mut self, at: usize) -> Option<&mut V> {
        self.buckets.get_mut(at)?.as_mut().map(|(_, v)| v)
    }

    /// [`at_mut`](Self::at_mut) of the bucket a lookup for change through the key would have
    /// found (it becomes the recent one, as [`get_mut`](Self::get_mut) makes it): for a
    /// caller that found the key's bucket with [`find`](Self::find) just before, the map
    /// unchanged since.
    pub(crate) fn at_mut_recent(&mut self, at: usize) -> Option<&mut V> {
        self.recent = at;
        self.at_mut(at)
    }

    pub(crate) fn contains_key(&self, key: &K) -> bool {
        self.position(key).is_some()
    }

    /// Inserts or replaces; returns the value replaced.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        if let Some(slot) = self.get_mut(&key) {
            return Some(core::mem::replace(slot, value));
        }
        if (self.len + 1) * 4 > self.buckets.len() * 3 {
            self.resize((self.buckets.len() * 2).max(Self::MIN_BUCKETS));
        }
        self.place(key, value);
        self.len += 1;
        None
    }

    /// Puts an entry known to be absent in the first free bucket of its probe run.
    fn place(&mut self, key: K, value: V) {
        let mask = self.buckets.len().wrapping_sub(1);
        let mut at = self.home(&key);
        while let Some(slot) = self.buckets.get_mut(at) {
            if slot.is_none() {
                *slot = Some((key, value));
                self.recent = at;
                return;
            }
            at = (at + 1) & mask;
        }
    }

    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        let at = self.position(key)?;
        let mask = self.buckets.len() - 1;
        let (_, value) = self.buckets.get_mut(at)?.take()?;
        // Backward-shift deletion (Knuth 6.4, algorithm R), as in the 4-tuple table.
        let mut hole = at;
        let mut next = (hole + 1) & mask;
        while let Some(Some((k, _))) = self.buckets.get(next) {
            let home = self.home(k);
            if (next.wrapping_sub(home) & mask) >= (next.wrapping_sub(hole) & mask) {
                let moved = self.buckets.get_mut(next).and_then(Option::take);
                if let Some(slot) = self.buckets.get_mut(hole) {
                    *slot = moved;
                }
                hole = next;
            }
            next = (next + 1) & mask;
        }
        self.len -= 1;
        if self.len * 8 < self.buckets.len() && self.buckets.len() > Self::MIN_BUCKETS * 8 {
            self.resize(self.buckets.len() / 2);
        }
        Some(value)
    }

    /// Keeps only the entries `keep` says yes to, re-filed into a table sized for them (a
    /// full pass: for sweeps that run rarely, amortised over many inserts).
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&K, &V) -> bool) {
        let old = core::mem::take(&mut self.buckets);
        let kept: Vec<(K, V)> = old.into_iter().flatten().filter(|(k, v)| keep(k, v)).collect();
        self.len = kept.len();
        let mut size = Self::MIN_BUCKETS;
        while self.len * 4 > size * 3 {
            size *= 2;
        }
        let mut fresh = Vec::with_capacity(size);
        fresh.resize_with(size, || None);
        self.buckets = fresh;
        for (key, value) in kept {
            self.place(key, value);
        }
    }

    /// Re-files every entry into `size` buckets (a power of two).
    fn resize(&mut self, size: usize) {
        let mut fresh = Vec::with_capacity(size);
        fresh.resize_with(size, || None);
        let old = core::mem::replace(&mut self.buckets, fresh);
        for (key, value) in old.into_iter().flatten() {
            self.place(key, value);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;
    use core::net::{Ipv4Addr, Ipv6Addr};

    fn key() -> HashKey {
        let mut a = [0u8; 16];
        for (i, byte) in a.iter_mut().enumerate() {
            *byte = (i as u8).wrapping_mul(37) ^ 0x5a;
        }
        HashKey::new(a, [9; 16])
    }

    /// Random inserts and removes against an ordered map: every lookup agrees, and removal
    /// never strands a member behind a hole (the backward-shift invariant), through growth
    /// and shrinking.
    #[test]
    fn agrees_with_a_btree_map_under_churn() {
        let mut map: KeyedMap<SocketAddr, u32> = KeyedMap::new(key());
        let mut model: BTreeMap<SocketAddr, u32> = BTreeMap::new();
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        for step in 0..40_000u32 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            // Phases: grow to a few hundred, then drain, so shrinking is exercised too.
            let phase = (step / 5_000) % 2 == 0;
            let ip = if rng & 1 == 0 {
                IpAddr::V4(Ipv4Addr::from((rng >> 8) as u32 % 64))
            } else {
                IpAddr::V6(Ipv6Addr::from(u128::from((rng >> 8) as u32 % 64)))
            };
            let k = SocketAddr::new(ip, (rng >> 40) as u16 % 16);
            if phase && !rng.is_multiple_of(4) {
                assert_eq!(map.insert(k, step), model.insert(k, step));
            } else {
                assert_eq!(map.remove(&k), model.remove(&k), "step {step}");
            }
            assert_eq!(map.len(), model.len());
            if step.is_multiple_of(997) {
                // A sweep keeps exactly what it is told to, and lookups still agree after.
                map.retain(|_, v| v % 3 != 0);
                model.retain(|_, v| *v % 3 != 0);
                assert_eq!(map.len(), model.len());
            }
            if step.is_multiple_of(101) {
                for (k, v) in &model {
                    assert_eq!(map.get(k), Some(v), "step {step}");
                }
            }
        }
    }

    #[test]
    fn the_key_changes_the_hash() {
        let tuple = (
            SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 80),
            SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 50_000),
        );
        let other = HashKey::new([4; 16], [9; 16]);
        // (A random key; a key whose first two words are equal makes the halves symmetric.)
        assert_ne!(key().tuple(tuple.0, tuple.1), other.tuple(tuple.0, tuple.1));
        // Local and remote halves are not interchangeable.
        assert_ne!(key().tuple(tuple.0, tuple.1), key().tuple(tuple.1, tuple.0));
    }

    /// Remote ports in sequence (what a flooder sends from one address) spread over the
    /// buckets: no bucket of 1 024 gets more than a small multiple of its share.
    #[test]
    fn sequential_ports_spread_over_the_buckets() {
        let local = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 80);
        let mut counts = [0u32; 1024];
        for port in 0..65_535u16 {
            let remote = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)), port);
            counts[(key().tuple(local, remote) & 1023) as usize] += 1;
        }
        let max = counts.iter().max().copied().unwrap();
        assert!(max < 3 * 64, "fullest bucket {max}, mean 64");
    }
}
