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
}

impl EphemeralPorts {
    /// Ports `min..=max` (swapped if given the wrong way round), chosen under `secret`.
    pub fn new(secret: [u8; 16], min: u16, max: u16) -> Self {
        let (min, max) = if min <= max { (min, max) } else { (max, min) };
        Self { secret, min, count: u32::from(max - min) + 1, next: 0 }
    }

    /// A free port for a connection from `local_ip` to `remote`, or `None` when every port of
    /// the range is `taken`.
    pub fn pick(
        &mut self,
        local_ip: IpAddr,
        remote: SocketAddr,
        mut taken: impl FnMut(u16) -> bool,
    ) -> Option<u16> {
        let mut hasher = SipHasher24::new_with_key(&self.secret);
        for ip in [local_ip, remote.ip()] {
            match ip {
                IpAddr::V4(v4) => hasher.write(&v4.octets()),
                IpAddr::V6(v6) => hasher.write(&v6.octets()),
            }
        }
        hasher.write(&remote.port().to_be_bytes());
        // The offset only needs 32 bits of the hash.
        let offset = hasher.finish() as u32;
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
}
