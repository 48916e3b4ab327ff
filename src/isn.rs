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
/// order, local first. An IPv4 tuple is written at once (SipHash is a stream over the octets,
/// so one write hashes exactly what four did, without three writes' overhead).
fn keyed_hash(secret: &[u8; 16], local: SocketAddr, remote: SocketAddr) -> u64 {
    let mut hasher = SipHasher24::new_with_key(secret);
    match (local, remote) {
        (SocketAddr::V4(l), SocketAddr::V4(r)) => {
            let ([a, b, c, d], [e, f, g, h]) = (l.ip().octets(), r.ip().octets());
            let ([p, q], [s, t]) = (l.port().to_be_bytes(), r.port().to_be_bytes());
            hasher.write(&[a, b, c, d, p, q, e, f, g, h, s, t]);
        }
        _ => {
            for address in [local, remote] {
                match address.ip() {
                    IpAddr::V4(ip) => hasher.write(&ip.octets()),
                    IpAddr::V6(ip) => hasher.write(&ip.octets()),
                }
                hasher.write(&address.port().to_be_bytes());
            }
        }
    }
    hasher.finish()
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
