//! Source addresses for active opens when the user names none (RFC 9293 §3.9.1.1 MUST-44: the
//! IP layer selects one before the first SYN; RFC 1122 §3.3.4.2 GET_SRCADDR): the adapters'
//! IP layer is this crate's, so the choice is made here, from what the device is configured
//! with.
//!
//! A TUN device's configured addresses are the *kernel's* end of the link; the stack is the
//! other end. So the stack takes, for each of the device's addresses ([`far_end`]), the
//! point-to-point peer address when one was configured (`ip addr add A peer B`: B), and
//! otherwise the lowest host address of the prefix that is not the kernel's (for
//! 10.0.0.1/24: 10.0.0.2; for fd00::1/64: fd00::2). A UDP transport's inner packets leave
//! from the address the kernel would use toward the peer (the socket's local address).
//! [`choose_source`] then picks, for a remote address, a candidate of its family, of the same
//! scope (link-local for link-local) where there is one.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One address configured on an interface, as `getifaddrs` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InterfaceAddress {
    /// The interface's own (the kernel's) address.
    pub address: IpAddr,
    /// Its prefix length.
    pub prefix_len: u8,
    /// The point-to-point peer address, when one was configured.
    pub peer: Option<IpAddr>,
}

/// The address the stack takes at the far end of a link on which the kernel holds `on`:
/// `on.peer` when configured (and not the kernel's own address), else the lowest host
/// address of the prefix other than the kernel's. `None` when the prefix holds no other host
/// address (an IPv4 /31 or /32, an IPv6 /127 or /128) or the families disagree.
pub fn far_end(on: &InterfaceAddress) -> Option<IpAddr> {
    if let Some(peer) = on.peer
        && peer != on.address
        && peer.is_ipv4() == on.address.is_ipv4()
    {
        return Some(peer);
    }
    match on.address {
        IpAddr::V4(kernel) => {
            let host_bits = 32u32.checked_sub(u32::from(on.prefix_len))?;
            // The network and broadcast addresses are no hosts: room for two others needed.
            if host_bits < 2 {
                return None;
            }
            let mask = u32::MAX.checked_shl(host_bits).unwrap_or(0);
            let network = u32::from(kernel) & mask;
            let first = Ipv4Addr::from(network + 1);
            let pick = if first == kernel { Ipv4Addr::from(network + 2) } else { first };
            // A /30 has two hosts: network + 2 is the other one.
            Some(IpAddr::V4(pick))
        }
        IpAddr::V6(kernel) => {
            let host_bits = 128u32.checked_sub(u32::from(on.prefix_len))?;
            if host_bits < 2 {
                return None;
            }
            let mask = u128::MAX.checked_shl(host_bits).unwrap_or(0);
            let network = u128::from(kernel) & mask;
            let first = Ipv6Addr::from(network + 1);
            let pick = if first == kernel { Ipv6Addr::from(network + 2) } else { first };
            Some(IpAddr::V6(pick))
        }
    }
}

/// Whether `address` is link-local (IPv4 169.254/16, IPv6 fe80::/10).
const fn is_link_local(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
    }
}

/// The source address for a connection to `remote` among `candidates`: the first of the same
/// family and scope (link-local only for a link-local remote), else the first of the same
/// family; `None` when there is none of its family.
pub fn choose_source(candidates: &[IpAddr], remote: IpAddr) -> Option<IpAddr> {
    let family = || candidates.iter().copied().filter(|c| c.is_ipv4() == remote.is_ipv4());
    family().find(|c| is_link_local(*c) == is_link_local(remote)).or_else(|| family().next())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(address: &str, prefix_len: u8, peer: Option<&str>) -> InterfaceAddress {
        InterfaceAddress {
            address: address.parse().unwrap(),
            prefix_len,
            peer: peer.map(|p| p.parse().unwrap()),
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_far_end_is_the_peer_or_the_lowest_other_host_of_the_prefix() {
        assert_eq!(far_end(&on("10.0.0.1", 24, None)), Some(ip("10.0.0.2")));
        assert_eq!(far_end(&on("10.0.0.7", 24, None)), Some(ip("10.0.0.1")));
        // The kernel's own address as "peer" is what `ip addr add A/24` reports: no peer.
        assert_eq!(far_end(&on("10.8.0.1", 24, Some("10.8.0.1"))), Some(ip("10.8.0.2")));
        assert_eq!(far_end(&on("10.8.0.1", 32, Some("10.8.0.9"))), Some(ip("10.8.0.9")));
        assert_eq!(far_end(&on("192.168.5.1", 30, None)), Some(ip("192.168.5.2")));
        assert_eq!(far_end(&on("192.168.5.2", 30, None)), Some(ip("192.168.5.1")));
        assert_eq!(far_end(&on("10.0.0.1", 31, None)), None);
        assert_eq!(far_end(&on("10.0.0.1", 32, None)), None);
        assert_eq!(far_end(&on("10.0.0.1", 0, None)), Some(ip("0.0.0.1")));
        assert_eq!(far_end(&on("10.0.0.1", 40, None)), None, "a prefix longer than the address");
        assert_eq!(far_end(&on("fd00::1", 64, None)), Some(ip("fd00::2")));
        assert_eq!(far_end(&on("fd00::5", 64, None)), Some(ip("fd00::1")));
        assert_eq!(far_end(&on("fd00::1", 128, Some("fd00::99"))), Some(ip("fd00::99")));
        assert_eq!(far_end(&on("fd00::1", 127, None)), None);
        assert_eq!(far_end(&on("fd00::1", 64, Some("10.0.0.1"))), Some(ip("fd00::2")));
    }

    #[test]
    fn the_source_is_of_the_remote_family_and_scope_must_44() {
        let candidates = [ip("fe80::2"), ip("10.0.0.2"), ip("fd00::2")];
        assert_eq!(choose_source(&candidates, ip("10.0.0.1")), Some(ip("10.0.0.2")));
        assert_eq!(choose_source(&candidates, ip("fd00::1")), Some(ip("fd00::2")));
        assert_eq!(choose_source(&candidates, ip("2001:db8::1")), Some(ip("fd00::2")));
        assert_eq!(choose_source(&candidates, ip("fe80::1")), Some(ip("fe80::2")));
        // Only a link-local address of the family: still better than none.
        assert_eq!(choose_source(&[ip("fe80::2")], ip("fd00::1")), Some(ip("fe80::2")));
        assert_eq!(choose_source(&[ip("10.0.0.2")], ip("fd00::1")), None);
        assert_eq!(choose_source(&[], ip("10.0.0.1")), None);
    }
}
