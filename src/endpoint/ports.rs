//! Ephemeral port selection (RFC 6056 §3.3.3, Algorithm 3: simple hash-based).
//!
//! port = min + (next_ephemeral + F(local IP, remote IP, remote port, secret)) mod range. The
//! keyed hash makes the sequence unpredictable to an off-path attacker and different per
//! destination; the shared counter spreads successive connections. Ports already in use by a
//! live 4-tuple, a TIME-WAIT record or a listener are skipped, so no collision is possible.

use core::hash::Hasher;
use core::net::{IpAddr, SocketAddr};

use siphasher::sip::SipHasher24;

/// The ephemeral-port chooser.
#[derive(Clone, Debug)]
pub struct EphemeralPorts {
    secret: [u8; 16],
    min: u16,
    count: u32,
    next: u32,
    /// The last destination's F, kept because F depends on the destination only (not on
    /// the counter): a client that opens connection after connection to one server (a proxy
    /// to its backend) hashes once, not per connection. A copy of a keyed output held where
    /// the key is, so it tells nothing the key did not.
    last: Option<(IpAddr, SocketAddr, u32)>,
}

impl EphemeralPorts {
    /// Ports `min..=max` (swapped if given the wrong way round), chosen under `secret`.
    pub fn new(secret: [u8; 16], min: u16, max: u16) -> Self {
        let (min, max) = if min <= max { (min, max) } else { (max, min) };
        Self { secret, min, count: u32::from(max - min) + 1, next: 0, last: None }
    }

    /// A free port for a connection from `local_ip` to `remote`, or `None` when every port of
    /// the range is `taken`.
    pub fn pick(
        &mut self,
        local_ip: IpAddr,
        remote: SocketAddr,
        mut taken: impl FnMut(u16) -> bool,
    ) -> Option<u16> {
        let offset = match self.last {
            Some((ip, to, offset)) if ip == local_ip && to == remote => offset,
            _ => self.remember_offset(local_ip, remote),
        };
        for _ in 0..self.count {
            let slot = self.next.wrapping_add(offset) % self.count;
            self.next = self.next.wrapping_add(1);
            // slot < count ≤ 65536, so min + slot fits a port.
            let port = u32::from(self.min) + slot;
            let port = u16::try_from(port).ok()?;
            if !taken(port) {
                return Some(port);
            }
        }
        None
    }

    /// F for a destination other than the last one, remembered for the next connection (out
    /// of line: the hash needs a stack frame the remembered case does not).
    #[inline(never)]
    fn remember_offset(&mut self, local_ip: IpAddr, remote: SocketAddr) -> u32 {
        let offset = self.offset(local_ip, remote);
        self.last = Some((local_ip, remote, offset));
        offset
    }

    /// F(local IP, remote IP, remote port, secret) of RFC 6056 §3.3.3: SipHash-2-4 of the
    /// addresses' octets and the remote port, for IPv4 written at once (SipHash is a stream
    /// over the octets: the same hash as three writes, without two writes' overhead).
    fn offset(&self, local_ip: IpAddr, remote: SocketAddr) -> u32 {
        let mut hasher = SipHasher24::new_with_key(&self.secret);
        let [p, q] = remote.port().to_be_bytes();
        match (local_ip, remote.ip()) {
            (IpAddr::V4(l), IpAddr::V4(r)) => {
                let ([a, b, c, d], [e, f, g, h]) = (l.octets(), r.octets());
                hasher.write(&[a, b, c, d, e, f, g, h, p, q]);
            }
            (l, r) => {
                for ip in [l, r] {
                    match ip {
                        IpAddr::V4(ip) => hasher.write(&ip.octets()),
                        IpAddr::V6(ip) => hasher.write(&ip.octets()),
                    }
                }
                hasher.write(&[p, q]);
            }
        }
        // The offset only needs 32 bits of the hash.
        hasher.finish() as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeSet;
    use core::net::Ipv4Addr;

    fn remote(port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), port)
    }

    #[test]
    fn ports_stay_in_range_and_never_collide_until_exhausted() {
        let mut ports = EphemeralPorts::new([1; 16], 50_000, 50_099);
        let local = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let mut used = BTreeSet::new();
        for _ in 0..100 {
            let port = ports.pick(local, remote(80), |p| used.contains(&p)).unwrap();
            assert!((50_000..=50_099).contains(&port));
            assert!(used.insert(port));
        }
        assert_eq!(ports.pick(local, remote(80), |p| used.contains(&p)), None);
    }

    #[test]
    fn sequence_depends_on_the_secret_and_destination() {
        let local = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let first = |secret: [u8; 16], dest| {
            EphemeralPorts::new(secret, 49_152, 65_535).pick(local, dest, |_| false)
        };
        assert_ne!(first([1; 16], remote(80)), first([2; 16], remote(80)));
        assert_ne!(first([1; 16], remote(80)), first([1; 16], remote(443)));
    }

    /// The remembered F of the last destination is the one hashing gives: the same ports in
    /// the same order as a chooser that hashes every time, whatever the destinations.
    #[test]
    fn remembered_offset_picks_what_hashing_picks() {
        let local = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let mut remembering = EphemeralPorts::new([3; 16], 49_152, 65_535);
        let mut hashing = remembering.clone();
        for dest in [80, 80, 443, 443, 80, 8080, 8080, 80] {
            hashing.last = None;
            let want = hashing.pick(local, remote(dest), |_| false);
            assert_eq!(remembering.pick(local, remote(dest), |_| false), want);
            assert_eq!(remembering.last.map(|(.., offset)| offset), hashing.last.map(|l| l.2));
        }
    }

    /// One write hashes what a write per address and one for the port did.
    #[test]
    fn one_write_hashes_what_three_writes_did() {
        use core::hash::Hasher;
        let ports = EphemeralPorts::new([5; 16], 49_152, 65_535);
        let local = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let mut hasher = SipHasher24::new_with_key(&[5; 16]);
        hasher.write(&[10, 0, 0, 1]);
        hasher.write(&[10, 0, 0, 2]);
        hasher.write(&443u16.to_be_bytes());
        assert_eq!(ports.offset(local, remote(443)), hasher.finish() as u32);
    }
}
