//! Initial sequence numbers (RFC 9293 §3.4.1, RFC 6528).
//!
//! ISN = M + F(localip, localport, remoteip, remoteport, secretkey), where M is a clock ticking
//! every 4 µs (MUST-8) and F is SipHash-2-4 keyed by a caller-supplied secret (SHLD-1, MUST-9).
//! Different 4-tuples get unrelated sequence spaces, and a new incarnation of the same 4-tuple
//! starts above the previous one because M keeps advancing.

use core::hash::Hasher;
use core::net::{IpAddr, SocketAddr};

use siphasher::sip::SipHasher24;

use crate::config::IsnSource;
use crate::seq::SeqNum;
use crate::time::Instant;

/// The ISN for a connection from `local` to `remote` at `now`.
pub fn initial_sequence_number(
    source: &IsnSource,
    now: Instant,
    local: SocketAddr,
    remote: SocketAddr,
) -> SeqNum {
    initial_numbers(source, now, local, remote).0
}

/// The ISN and the timestamp clock's offset ([`timestamp_offset`]) of a new connection, from
/// one keyed hash: F is its low 32 bits, the offset its high 32 bits — two halves of one PRF
/// output, so neither tells anything about the other, and a connection pays one hash for both.
pub(crate) fn initial_numbers(
    source: &IsnSource,
    now: Instant,
    local: SocketAddr,
    remote: SocketAddr,
) -> (SeqNum, u32) {
    match source {
        IsnSource::Fixed(iss) => (*iss, 0),
        IsnSource::Keyed { secret } => {
            let hash = keyed_hash(secret, local, remote);
            // Truncation is the point: the hash only offsets the 32-bit clocks.
            let (offset, ts_offset) = (hash as u32, (hash >> 32) as u32);
            // M: the 4 µs clock, modulo 2^32 (RFC 9293 §3.4.1).
            let clock = (now.as_micros() / 4) as u32;
            (SeqNum::new(clock.wrapping_add(offset)), ts_offset)
        }
    }
}

/// SipHash-2-4 of the 4-tuple under `secret`: each address's octets then its port in network
/// order, local first. An IPv4 tuple (12 octets, the case every connection of an IPv4
/// endpoint pays for) is hashed by [`sip24_12_words`], the same function unrolled for that
/// length.
fn keyed_hash(secret: &[u8; 16], local: SocketAddr, remote: SocketAddr) -> u64 {
    match (local, remote) {
        (SocketAddr::V4(l), SocketAddr::V4(r)) => {
            // The message's two little-endian words, built from the octets in wire order
            // (address, then port in network order) without assembling an array first.
            let wire = |ip: core::net::Ipv4Addr, port: u16| {
                u64::from(u32::from_le_bytes(ip.octets())) | u64::from(port.swap_bytes()) << 32
            };
            let (local, remote) = (wire(*l.ip(), l.port()), wire(*r.ip(), r.port()));
            sip24_12_words(secret, local | remote << 48, remote >> 16)
        }
        _ => keyed_hash_general(secret, local, remote),
    }
}

/// [`keyed_hash`] of a tuple that is not IPv4 at both ends, through the general hasher (out
/// of line: the IPv4 case then needs no stack frame for it).
#[cold]
#[inline(never)]
fn keyed_hash_general(secret: &[u8; 16], local: SocketAddr, remote: SocketAddr) -> u64 {
    let mut hasher = SipHasher24::new_with_key(secret);
    for address in [local, remote] {
        match address.ip() {
            IpAddr::V4(ip) => hasher.write(&ip.octets()),
            IpAddr::V6(ip) => hasher.write(&ip.octets()),
        }
        hasher.write(&address.port().to_be_bytes());
    }
    hasher.finish()
}

/// SipHash-2-4 (Aumasson and Bernstein, 2012: two compression rounds per 8-octet block, four
/// finalization rounds) of exactly 12 octets under `key`: one full block, then the last
/// block of the 4 remaining octets with the length in its top octet. The general hasher
/// buffers its input octet by octet; for a fixed length the blocks are known in advance.
/// The same output, octet for octet (tested against the general one).
#[cfg(test)]
fn sip24_12(key: &[u8; 16], message: [u8; 12]) -> u64 {
    let [a, b, c, d, e, f, g, h, i, j, k, l] = message;
    let block = u64::from_le_bytes([a, b, c, d, e, f, g, h]);
    sip24_12_words(key, block, u64::from(u32::from_le_bytes([i, j, k, l])))
}

/// SipHash-2-4 of a 12-octet message (as `sip24_12`) given as its first 8 octets (`block`,
/// little-endian) and its last 4 (`tail`, little-endian, the high half zero).
fn sip24_12_words(key: &[u8; 16], block: u64, tail: u64) -> u64 {
    let [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p] = *key;
    let k0 = u64::from_le_bytes([a, b, c, d, e, f, g, h]);
    let k1 = u64::from_le_bytes([i, j, k, l, m, n, o, p]);
    let last = tail | 12 << 56;
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    for word in [block, last] {
        v[3] ^= word;
        sip_round(&mut v);
        sip_round(&mut v);
        v[0] ^= word;
    }
    v[2] ^= 0xff;
    for _ in 0..4 {
        sip_round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

/// One SipRound over the state `v0..v3`.
#[inline(always)]
const fn sip_round(v: &mut [u64; 4]) {
    let [mut v0, mut v1, mut v2, mut v3] = *v;
    v0 = v0.wrapping_add(v1);
    v1 = v1.rotate_left(13) ^ v0;
    v0 = v0.rotate_left(32);
    v2 = v2.wrapping_add(v3);
    v3 = v3.rotate_left(16) ^ v2;
    v0 = v0.wrapping_add(v3);
    v3 = v3.rotate_left(21) ^ v0;
    v2 = v2.wrapping_add(v1);
    v1 = v1.rotate_left(17) ^ v2;
    v2 = v2.rotate_left(32);
    *v = [v0, v1, v2, v3];
}

/// The offset added to a connection's timestamp clock (RFC 7323 §7.1): keyed by the 4-tuple,
/// so TSval reveals neither the caller's clock (host uptime) nor anything shared by two
/// connections, while a new incarnation of the same 4-tuple continues the old one's clock — its
/// TSvals keep growing, as RFC 6191 reopening and PAWS at the peer need. It is the half of the
/// ISN's keyed hash that F does not use ([`initial_numbers`]). `Fixed` (tests only) gives 0:
/// TSval is then the caller's clock in milliseconds.
pub(crate) fn timestamp_offset(source: &IsnSource, local: SocketAddr, remote: SocketAddr) -> u32 {
    initial_numbers(source, Instant::ZERO, local, remote).1
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, SocketAddrV4};

    fn addr(last: u8, port: u16) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, last), port))
    }

    #[test]
    fn isn_advances_with_the_4us_clock_must_8() {
        let source = IsnSource::Keyed { secret: [7; 16] };
        let a =
            initial_sequence_number(&source, Instant::from_micros(0), addr(1, 80), addr(2, 999));
        let b =
            initial_sequence_number(&source, Instant::from_micros(400), addr(1, 80), addr(2, 999));
        assert_eq!(b.since(a), 100);
    }

    #[test]
    fn isn_differs_per_four_tuple_and_secret_shld_1() {
        let source = IsnSource::Keyed { secret: [7; 16] };
        let other_key = IsnSource::Keyed { secret: [8; 16] };
        let now = Instant::from_millis(5);
        let base = initial_sequence_number(&source, now, addr(1, 80), addr(2, 999));
        assert_ne!(base, initial_sequence_number(&source, now, addr(1, 80), addr(2, 1000)));
        assert_ne!(base, initial_sequence_number(&source, now, addr(1, 80), addr(3, 999)));
        assert_ne!(base, initial_sequence_number(&other_key, now, addr(1, 80), addr(2, 999)));
    }

    #[test]
    fn timestamp_offset_is_keyed_per_four_tuple_and_not_the_isn_offset_rfc_7323_7_1() {
        let source = IsnSource::Keyed { secret: [7; 16] };
        let base = timestamp_offset(&source, addr(1, 80), addr(2, 999));
        assert_eq!(base, timestamp_offset(&source, addr(1, 80), addr(2, 999)));
        assert_ne!(base, timestamp_offset(&source, addr(1, 80), addr(2, 1000)));
        assert_ne!(
            base,
            timestamp_offset(&IsnSource::Keyed { secret: [8; 16] }, addr(1, 80), addr(2, 999))
        );
        let isn = initial_sequence_number(&source, Instant::ZERO, addr(1, 80), addr(2, 999));
        assert_ne!(base, isn.get(), "the ISN's hash is not reused");
        assert_eq!(timestamp_offset(&IsnSource::Fixed(SeqNum::new(5)), addr(1, 80), addr(2, 9)), 0);
    }

    /// The unrolled 12-octet SipHash-2-4 is the general one, over keys and tuples that set
    /// every octet and bit position, so ISNs and timestamp offsets did not change.
    #[test]
    fn unrolled_siphash_of_an_ipv4_tuple_is_the_general_one() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..2000u32 {
            let mut key = [0xffu8; 16];
            if round > 0 {
                key[..8].copy_from_slice(&next().to_le_bytes());
                key[8..].copy_from_slice(&next().to_le_bytes());
            }
            let (low, high) = (next().to_le_bytes(), next().to_le_bytes());
            let message: [u8; 12] =
                core::array::from_fn(|i| if i < 8 { low[i] } else { high[i - 8] });
            let mut hasher = SipHasher24::new_with_key(&key);
            hasher.write(&message);
            assert_eq!(sip24_12(&key, message), hasher.finish(), "{key:?} {message:?}");
        }
    }

    /// The IPv4 tuple's message words, built from addresses and ports directly, are the
    /// octets in wire order: ISNs over random tuples and keys are those of the streaming
    /// hasher fed each address's octets and each port in network order.
    #[test]
    fn ipv4_words_hash_what_the_octets_hash() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..2000 {
            let mut key = [0u8; 16];
            key[..8].copy_from_slice(&next().to_le_bytes());
            key[8..].copy_from_slice(&next().to_le_bytes());
            let (a, b) = (next(), next());
            let local =
                SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(a as u32), (a >> 32) as u16));
            let remote =
                SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(b as u32), (b >> 32) as u16));
            let mut hasher = SipHasher24::new_with_key(&key);
            for address in [local, remote] {
                if let IpAddr::V4(ip) = address.ip() {
                    hasher.write(&ip.octets());
                }
                hasher.write(&address.port().to_be_bytes());
            }
            assert_eq!(keyed_hash(&key, local, remote), hasher.finish(), "{local} {remote}");
        }
    }

    /// One write of the whole tuple hashes exactly what a write per address and per port
    /// did (SipHash streams over the octets), so ISNs and timestamp offsets did not change.
    #[test]
    fn one_write_hashes_what_four_writes_did() {
        let v6 = |last: u16, port: u16| {
            SocketAddr::new(
                IpAddr::V6(core::net::Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, last)),
                port,
            )
        };
        for (local, remote) in [(addr(1, 80), addr(2, 50_000)), (v6(1, 443), v6(2, 40_000))] {
            let mut hasher = SipHasher24::new_with_key(&[7; 16]);
            for address in [local, remote] {
                match address.ip() {
                    IpAddr::V4(ip) => hasher.write(&ip.octets()),
                    IpAddr::V6(ip) => hasher.write(&ip.octets()),
                }
                hasher.write(&address.port().to_be_bytes());
            }
            assert_eq!(keyed_hash(&[7; 16], local, remote), hasher.finish());
        }
    }
}
