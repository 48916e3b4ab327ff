//! ICMP error messages about our own TCP segments (ICMPv4, RFC 792 and RFC 1191; ICMPv6,
//! RFC 4443 and RFC 8201), decoded for adapters that hand them to
//! [`Endpoint::handle_icmp_error`](crate::Endpoint::handle_icmp_error) (RFC 9293 §3.9.2.2,
//! MUST-54).
//!
//! What is checked here is what needs the IP layer: the message's length and checksum (ICMPv6
//! with its pseudo-header, RFC 4443 §2.3), that it is an error (Destination Unreachable,
//! Packet Too Big / Fragmentation Needed, Time Exceeded, Parameter Problem, Source Quench),
//! and that the packet it quotes is one of ours — an IP header of the right version, TCP as its
//! protocol, our address (the one the error was sent to) as its source, the first fragment, and
//! at least the 8 octets of TCP header that carry the ports and the sequence number (RFC 792,
//! RFC 4443 §3 quote at least that much). Whether the quoted sequence number is in flight
//! (RFC 5927 §4.1) is the connection's business. Nothing here allocates or panics on input.

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::PROTOCOL_TCP;
use super::checksum::{Checksum, pseudo_header};
use crate::event::IcmpError;

/// IP protocol number of ICMP (for IPv4).
pub const PROTOCOL_ICMP: u8 = 1;
/// IPv6 next-header number of ICMPv6.
pub const PROTOCOL_ICMPV6: u8 = 58;

/// Type, code, checksum and the 4-octet field after them: every ICMP message has them.
const ICMP_HEADER_LEN: usize = 8;
/// Octets of the quoted TCP header the connection needs: ports and sequence number.
const QUOTED_TCP_LEN: usize = 8;

/// RFC 1191 §7's table of MTU plateaus: the estimate when a router sends "fragmentation
/// needed" without a usable next-hop MTU (the pre-RFC 1191 routers that leave it zero).
const MTU_PLATEAUS: [u16; 11] =
    [65_535, 32_000, 17_914, 8_166, 4_352, 2_002, 1_492, 1_006, 508, 296, 68];

/// An ICMP error that quotes a TCP segment we sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpMessage<'a> {
    /// What went wrong, in the terms [`crate::Connection::handle_icmp_error`] takes (ICMPv6
    /// Destination Unreachable codes are given as their ICMPv4 equivalents).
    pub error: IcmpError,
    /// The quoted IP header's source: our address.
    pub quoted_src: IpAddr,
    /// The quoted IP header's destination: the peer's address.
    pub quoted_dst: IpAddr,
    /// The quoted TCP header, at least its first 8 octets (ports and sequence number).
    pub quoted_tcp: &'a [u8],
}

impl<'a> IcmpMessage<'a> {
    /// Parses the ICMPv4 message `icmp` (the payload of an IPv4 packet with protocol
    /// [`PROTOCOL_ICMP`]) that was sent to our address `dst`.
    ///
    /// Destination Unreachable code 4 ("fragmentation needed and DF set") becomes
    /// [`IcmpError::PacketTooBig`] with the next-hop MTU of RFC 1191 §4; a router that leaves
    /// it zero (or reports one no smaller than the quoted packet) gets the next lower plateau
    /// of RFC 1191 §7 below the quoted packet's length.
    ///
    /// # Errors
    ///
    /// [`IcmpParseError::TooShort`], [`IcmpParseError::BadChecksum`],
    /// [`IcmpParseError::NotAnError`], then the quoted header's errors
    /// ([`IcmpParseError::BadQuotedHeader`], [`IcmpParseError::QuotedNotTcp`],
    /// [`IcmpParseError::QuotedNotOurs`]), checked in that order.
    pub fn parse_v4(icmp: &'a [u8], dst: Ipv4Addr) -> Result<Self, IcmpParseError> {
        let Some(&[icmp_type, code, _, _, _, _, m0, m1]) = icmp.first_chunk::<ICMP_HEADER_LEN>()
        else {
            return Err(IcmpParseError::TooShort { len: icmp.len() });
        };
        let mut sum = Checksum::new();
        sum.add_bytes(icmp);
        if sum.finish() != 0 {
            return Err(IcmpParseError::BadChecksum);
        }
        let error = match icmp_type {
            // RFC 1191 §4: the next-hop MTU is the low 16 bits of the second word.
            3 if code == 4 => IcmpError::PacketTooBig { mtu: u16::from_be_bytes([m0, m1]) },
            3 => IcmpError::Unreachable { code },
            4 => IcmpError::SourceQuench,
            11 => IcmpError::TimeExceeded,
            12 => IcmpError::ParameterProblem,
            _ => return Err(IcmpParseError::NotAnError { icmp_type, code }),
        };
        let quoted = icmp.get(ICMP_HEADER_LEN..).unwrap_or(&[]);
        let Some(header) = quoted.first_chunk::<20>() else {
            return Err(IcmpParseError::BadQuotedHeader);
        };
        let ihl = usize::from(header[0] & 0x0f) * 4;
        let fragment_offset = u16::from_be_bytes([header[6], header[7]]) & 0x1fff;
        // The quoted octets start with a TCP header only in a first fragment (and every
        // packet we send is one: DF, or never fragmented by us).
        if header[0] >> 4 != 4 || ihl < 20 || fragment_offset != 0 {
            return Err(IcmpParseError::BadQuotedHeader);
        }
        let Some(quoted_tcp) = quoted.get(ihl..).filter(|tcp| tcp.len() >= QUOTED_TCP_LEN) else {
            return Err(IcmpParseError::BadQuotedHeader);
        };
        if header[9] != PROTOCOL_TCP {
            return Err(IcmpParseError::QuotedNotTcp { protocol: header[9] });
        }
        let src = Ipv4Addr::new(header[12], header[13], header[14], header[15]);
        let quoted_dst = Ipv4Addr::new(header[16], header[17], header[18], header[19]);
        if src != dst {
            return Err(IcmpParseError::QuotedNotOurs);
        }
        let error = match error {
            IcmpError::PacketTooBig { mtu } => {
                let quoted_len = u16::from_be_bytes([header[2], header[3]]);
                IcmpError::PacketTooBig { mtu: usable_next_hop_mtu(mtu, quoted_len) }
            }
            other => other,
        };
        Ok(Self {
            error,
            quoted_src: IpAddr::V4(src),
            quoted_dst: IpAddr::V4(quoted_dst),
            quoted_tcp,
        })
    }

    /// Parses the ICMPv6 message `icmp` (the payload of an IPv6 packet whose next header is
    /// [`PROTOCOL_ICMPV6`]) from `src` to our address `dst`; the checksum covers the IPv6
    /// pseudo-header (RFC 4443 §2.3).
    ///
    /// Destination Unreachable codes are mapped to their ICMPv4 equivalents: 0 (no route) to
    /// 0 (net unreachable), 2 (beyond scope) and 3 (address unreachable) to 1 (host
    /// unreachable), 4 (port unreachable) to 3 (port unreachable: a hard error, SHLD-26),
    /// 1, 5 and 6 (prohibited, failed policy, reject route) to 13 (communication
    /// administratively prohibited, RFC 1812), anything else to 0. The soft ones of RFC 9293
    /// §3.9.2.2 (codes 0 and 3) stay soft. Packet Too Big carries a 32-bit MTU, given here
    /// saturated to 16 bits (no IPv6 packet this crate sends is larger).
    ///
    /// # Errors
    ///
    /// As [`IcmpMessage::parse_v4`]; a quoted packet with extension headers is
    /// [`IcmpParseError::QuotedNotTcp`] (we never send them).
    pub fn parse_v6(icmp: &'a [u8], src: Ipv6Addr, dst: Ipv6Addr) -> Result<Self, IcmpParseError> {
        let Some(&[icmp_type, code, _, _, m0, m1, m2, m3]) = icmp.first_chunk::<ICMP_HEADER_LEN>()
        else {
            return Err(IcmpParseError::TooShort { len: icmp.len() });
        };
        // An IPv6 payload length is 16 bits, so the length always fits the pseudo-header.
        let len = u32::try_from(icmp.len()).unwrap_or(u32::MAX);
        let mut sum = pseudo_header(IpAddr::V6(src), IpAddr::V6(dst), PROTOCOL_ICMPV6, len)
            .unwrap_or_default();
        sum.add_bytes(icmp);
        if sum.finish() != 0 {
            return Err(IcmpParseError::BadChecksum);
        }
        let error = match icmp_type {
            1 => IcmpError::Unreachable { code: v4_unreachable_code(code) },
            2 => {
                let mtu = u32::from_be_bytes([m0, m1, m2, m3]);
                IcmpError::PacketTooBig { mtu: u16::try_from(mtu).unwrap_or(u16::MAX) }
            }
            3 => IcmpError::TimeExceeded,
            4 => IcmpError::ParameterProblem,
            _ => return Err(IcmpParseError::NotAnError { icmp_type, code }),
        };
        let quoted = icmp.get(ICMP_HEADER_LEN..).unwrap_or(&[]);
        let Some(header) = quoted.first_chunk::<40>() else {
            return Err(IcmpParseError::BadQuotedHeader);
        };
        if header[0] >> 4 != 6 {
            return Err(IcmpParseError::BadQuotedHeader);
        }
        let Some(quoted_tcp) = quoted.get(40..).filter(|tcp| tcp.len() >= QUOTED_TCP_LEN) else {
            return Err(IcmpParseError::BadQuotedHeader);
        };
        if header[6] != PROTOCOL_TCP {
            return Err(IcmpParseError::QuotedNotTcp { protocol: header[6] });
        }
        let mut quoted_src = [0u8; 16];
        quoted_src.copy_from_slice(&header[8..24]);
        let mut quoted_dst = [0u8; 16];
        quoted_dst.copy_from_slice(&header[24..40]);
        let quoted_src = Ipv6Addr::from(quoted_src);
        if quoted_src != dst {
            return Err(IcmpParseError::QuotedNotOurs);
        }
        Ok(Self {
            error,
            quoted_src: IpAddr::V6(quoted_src),
            quoted_dst: IpAddr::V6(Ipv6Addr::from(quoted_dst)),
            quoted_tcp,
        })
    }
}

/// The next-hop MTU of a "fragmentation needed" message, or RFC 1191 §7's estimate when the
/// router gave none that makes sense: zero (routers older than RFC 1191), below the 68 octets
/// every IPv4 link carries (RFC 791), or not below the length of the packet it refused.
fn usable_next_hop_mtu(reported: u16, quoted_len: u16) -> u16 {
    if reported >= 68 && reported < quoted_len {
        return reported;
    }
    MTU_PLATEAUS.iter().copied().find(|&plateau| plateau < quoted_len).unwrap_or(68)
}

/// The ICMPv4 Destination Unreachable code (RFC 792, RFC 1812) closest to ICMPv6 Destination
/// Unreachable `code` (RFC 4443 §3.1).
const fn v4_unreachable_code(code: u8) -> u8 {
    match code {
        2 | 3 => 1,
        4 => 3,
        1 | 5 | 6 => 13,
        _ => 0,
    }
}

/// Why octets are not an ICMP error about one of our TCP segments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IcmpParseError {
    /// Shorter than the 8-octet ICMP header.
    TooShort {
        /// Octets given.
        len: usize,
    },
    /// The ICMP checksum does not match.
    BadChecksum,
    /// A message that reports no error about a packet (echo, redirect, neighbour discovery,
    /// …): nothing for TCP.
    NotAnError {
        /// The ICMP type.
        icmp_type: u8,
        /// The ICMP code.
        code: u8,
    },
    /// The quoted packet is not an IP header of the right version followed by at least 8
    /// octets of a first fragment.
    BadQuotedHeader,
    /// The quoted packet is not TCP.
    QuotedNotTcp {
        /// The quoted protocol (IPv4) or next header (IPv6).
        protocol: u8,
    },
    /// The quoted packet was not sent from the address the error came to.
    QuotedNotOurs,
}

impl fmt::Display for IcmpParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort { len } => write!(f, "ICMP message too short: {len} octets"),
            Self::BadChecksum => f.write_str("bad ICMP checksum"),
            Self::NotAnError { icmp_type, code } => {
                write!(f, "ICMP type {icmp_type} code {code} is not an error report")
            }
            Self::BadQuotedHeader => f.write_str("ICMP error quotes no usable IP and TCP header"),
            Self::QuotedNotTcp { protocol } => {
                write!(f, "ICMP error quotes protocol {protocol}, not TCP")
            }
            Self::QuotedNotOurs => f.write_str("ICMP error quotes a packet from someone else"),
        }
    }
}

impl core::error::Error for IcmpParseError {}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use alloc::string::ToString;
    use alloc::vec::Vec;

    use super::*;
    use crate::wire::ip::{Ipv4Header, Ipv6Header};

    const US: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const PEER: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 2);
    const US6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);
    const PEER6: Ipv6Addr = Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, 0, 2);
    const ROUTER6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
    /// Ports 80 → 4000 and sequence number 0x01020304: what the connection reads.
    const TCP_START: [u8; 8] = [0, 80, 0x0f, 0xa0, 1, 2, 3, 4];

    /// The first 28 octets of a 1500-octet IPv4 packet we sent: header and 8 of TCP.
    fn quoted_v4(protocol: u8, src: Ipv4Addr) -> Vec<u8> {
        let header = Ipv4Header {
            src,
            dst: PEER,
            protocol,
            ttl: 1,
            identification: 7,
            dont_fragment: true,
            more_fragments: false,
            fragment_offset: 0,
            total_len: 1500,
            dscp_ecn: 0,
        };
        let mut quoted = alloc::vec![0u8; 20];
        header.emit(&mut quoted).unwrap();
        quoted.extend_from_slice(&TCP_START);
        quoted
    }

    fn icmp_v4(icmp_type: u8, code: u8, word: [u8; 4], quoted: &[u8]) -> Vec<u8> {
        let mut icmp = alloc::vec![icmp_type, code, 0, 0];
        icmp.extend_from_slice(&word);
        icmp.extend_from_slice(quoted);
        let mut sum = Checksum::new();
        sum.add_bytes(&icmp);
        icmp[2..4].copy_from_slice(&sum.finish().to_be_bytes());
        icmp
    }

    fn quoted_v6(next_header: u8, src: Ipv6Addr) -> Vec<u8> {
        let header = Ipv6Header {
            src,
            dst: PEER6,
            next_header,
            hop_limit: 1,
            payload_len: 1460,
            traffic_class: 0,
            flow_label: 0,
        };
        let mut quoted = alloc::vec![0u8; 40];
        header.emit(&mut quoted).unwrap();
        quoted.extend_from_slice(&TCP_START);
        quoted
    }

    fn icmp_v6(icmp_type: u8, code: u8, word: [u8; 4], quoted: &[u8]) -> Vec<u8> {
        let mut icmp = alloc::vec![icmp_type, code, 0, 0];
        icmp.extend_from_slice(&word);
        icmp.extend_from_slice(quoted);
        let len = icmp.len() as u32;
        let mut sum =
            pseudo_header(IpAddr::V6(ROUTER6), IpAddr::V6(US6), PROTOCOL_ICMPV6, len).unwrap();
        sum.add_bytes(&icmp);
        icmp[2..4].copy_from_slice(&sum.finish().to_be_bytes());
        icmp
    }

    #[test]
    fn fragmentation_needed_carries_the_next_hop_mtu_and_the_quoted_tcp_header() {
        let quoted = quoted_v4(PROTOCOL_TCP, US);
        let icmp = icmp_v4(3, 4, [0, 0, 0x03, 0xe8], &quoted);
        let message = IcmpMessage::parse_v4(&icmp, US).unwrap();
        assert_eq!(message.error, IcmpError::PacketTooBig { mtu: 1000 });
        assert_eq!(message.quoted_src, IpAddr::V4(US));
        assert_eq!(message.quoted_dst, IpAddr::V4(PEER));
        assert_eq!(message.quoted_tcp, TCP_START);
    }

    #[test]
    fn fragmentation_needed_without_a_usable_mtu_takes_the_rfc_1191_plateau() {
        let quoted = quoted_v4(PROTOCOL_TCP, US);
        // Quoted packet of 1500 octets: the plateau below it is 1492.
        for word in [[0, 0, 0, 0], [0, 0, 0x05, 0xdc], [0, 0, 0, 67]] {
            let icmp = icmp_v4(3, 4, word, &quoted);
            let message = IcmpMessage::parse_v4(&icmp, US).unwrap();
            assert_eq!(message.error, IcmpError::PacketTooBig { mtu: 1492 }, "{word:?}");
        }
        assert_eq!(usable_next_hop_mtu(0, 68), 68);
        assert_eq!(usable_next_hop_mtu(0, 0), 68);
        assert_eq!(usable_next_hop_mtu(0, 576), 508);
    }

    #[test]
    fn each_icmpv4_error_type_is_decoded() {
        let quoted = quoted_v4(PROTOCOL_TCP, US);
        let cases = [
            (3, 0, IcmpError::Unreachable { code: 0 }),
            (3, 3, IcmpError::Unreachable { code: 3 }),
            (3, 13, IcmpError::Unreachable { code: 13 }),
            (4, 0, IcmpError::SourceQuench),
            (11, 0, IcmpError::TimeExceeded),
            (12, 0, IcmpError::ParameterProblem),
        ];
        for (icmp_type, code, expected) in cases {
            let icmp = icmp_v4(icmp_type, code, [0; 4], &quoted);
            assert_eq!(IcmpMessage::parse_v4(&icmp, US).unwrap().error, expected);
        }
    }

    #[test]
    fn each_icmpv6_error_type_is_decoded_with_v4_unreachable_codes() {
        let quoted = quoted_v6(PROTOCOL_TCP, US6);
        let cases = [
            (1, 0, [0; 4], IcmpError::Unreachable { code: 0 }),
            (1, 1, [0; 4], IcmpError::Unreachable { code: 13 }),
            (1, 3, [0; 4], IcmpError::Unreachable { code: 1 }),
            (1, 4, [0; 4], IcmpError::Unreachable { code: 3 }),
            (1, 99, [0; 4], IcmpError::Unreachable { code: 0 }),
            (2, 0, [0, 0, 0x05, 0x00], IcmpError::PacketTooBig { mtu: 1280 }),
            (2, 0, [0, 1, 0, 0], IcmpError::PacketTooBig { mtu: u16::MAX }),
            (3, 0, [0; 4], IcmpError::TimeExceeded),
            (4, 1, [0; 4], IcmpError::ParameterProblem),
        ];
        for (icmp_type, code, word, expected) in cases {
            let icmp = icmp_v6(icmp_type, code, word, &quoted);
            let message = IcmpMessage::parse_v6(&icmp, ROUTER6, US6).unwrap();
            assert_eq!(message.error, expected);
            assert_eq!(message.quoted_src, IpAddr::V6(US6));
            assert_eq!(message.quoted_dst, IpAddr::V6(PEER6));
            assert_eq!(message.quoted_tcp, TCP_START);
        }
    }

    #[test]
    fn each_parse_error() {
        let quoted = quoted_v4(PROTOCOL_TCP, US);
        let good = icmp_v4(3, 4, [0, 0, 0x03, 0xe8], &quoted);
        assert_eq!(IcmpMessage::parse_v4(&good[..7], US), Err(IcmpParseError::TooShort { len: 7 }));
        let mut bad = good.clone();
        bad[30] ^= 1;
        assert_eq!(IcmpMessage::parse_v4(&bad, US), Err(IcmpParseError::BadChecksum));
        assert_eq!(
            IcmpMessage::parse_v4(&icmp_v4(8, 0, [0; 4], &quoted), US),
            Err(IcmpParseError::NotAnError { icmp_type: 8, code: 0 })
        );
        // Seven octets of TCP are not enough to find the sequence number.
        let short = icmp_v4(3, 4, [0; 4], &quoted[..27]);
        assert_eq!(IcmpMessage::parse_v4(&short, US), Err(IcmpParseError::BadQuotedHeader));
        let mut fragment = quoted.clone();
        fragment[7] = 1;
        let fragment = icmp_v4(3, 4, [0; 4], &fragment);
        assert_eq!(IcmpMessage::parse_v4(&fragment, US), Err(IcmpParseError::BadQuotedHeader));
        let mut v6 = quoted.clone();
        v6[0] = 0x65;
        let v6 = icmp_v4(3, 4, [0; 4], &v6);
        assert_eq!(IcmpMessage::parse_v4(&v6, US), Err(IcmpParseError::BadQuotedHeader));
        // IHL 15: options running past what was quoted.
        let mut long_header = quoted.clone();
        long_header[0] = 0x4f;
        let long_header = icmp_v4(3, 4, [0; 4], &long_header);
        assert_eq!(IcmpMessage::parse_v4(&long_header, US), Err(IcmpParseError::BadQuotedHeader));
        let udp = icmp_v4(3, 3, [0; 4], &quoted_v4(17, US));
        assert_eq!(
            IcmpMessage::parse_v4(&udp, US),
            Err(IcmpParseError::QuotedNotTcp { protocol: 17 })
        );
        let theirs = icmp_v4(3, 3, [0; 4], &quoted_v4(PROTOCOL_TCP, Ipv4Addr::new(10, 0, 0, 9)));
        assert_eq!(IcmpMessage::parse_v4(&theirs, US), Err(IcmpParseError::QuotedNotOurs));

        let quoted = quoted_v6(PROTOCOL_TCP, US6);
        let good = icmp_v6(2, 0, [0, 0, 5, 0], &quoted);
        // The pseudo-header counts: the same octets from another source fail.
        assert_eq!(IcmpMessage::parse_v6(&good, PEER6, US6), Err(IcmpParseError::BadChecksum));
        assert_eq!(
            IcmpMessage::parse_v6(&icmp_v6(128, 0, [0; 4], &quoted), ROUTER6, US6),
            Err(IcmpParseError::NotAnError { icmp_type: 128, code: 0 })
        );
        let hop_by_hop = icmp_v6(2, 0, [0, 0, 5, 0], &quoted_v6(0, US6));
        assert_eq!(
            IcmpMessage::parse_v6(&hop_by_hop, ROUTER6, US6),
            Err(IcmpParseError::QuotedNotTcp { protocol: 0 })
        );
        let theirs = icmp_v6(2, 0, [0, 0, 5, 0], &quoted_v6(PROTOCOL_TCP, PEER6));
        assert_eq!(
            IcmpMessage::parse_v6(&theirs, ROUTER6, US6),
            Err(IcmpParseError::QuotedNotOurs)
        );
        let short = icmp_v6(2, 0, [0, 0, 5, 0], &quoted[..47]);
        assert_eq!(
            IcmpMessage::parse_v6(&short, ROUTER6, US6),
            Err(IcmpParseError::BadQuotedHeader)
        );
    }

    #[test]
    fn every_truncation_and_single_octet_change_is_refused_or_decoded_without_panic() {
        let v4 = icmp_v4(3, 4, [0, 0, 0x03, 0xe8], &quoted_v4(PROTOCOL_TCP, US));
        let v6 = icmp_v6(2, 0, [0, 0, 5, 0], &quoted_v6(PROTOCOL_TCP, US6));
        for len in 0..v4.len() {
            assert!(IcmpMessage::parse_v4(&v4[..len], US).is_err(), "v4 cut at {len}");
        }
        for len in 0..v6.len() {
            assert!(IcmpMessage::parse_v6(&v6[..len], ROUTER6, US6).is_err(), "v6 cut at {len}");
        }
        for (index, value) in (0..v6.len()).flat_map(|i| [0u8, 0x45, 0x60, 0xff].map(|v| (i, v))) {
            let mut bytes = v6.clone();
            bytes[index] = value;
            let _ = IcmpMessage::parse_v4(&bytes, US);
            let _ = IcmpMessage::parse_v6(&bytes, ROUTER6, US6);
        }
    }

    #[test]
    fn errors_display_by_hand() {
        let errors = [
            IcmpParseError::TooShort { len: 1 },
            IcmpParseError::BadChecksum,
            IcmpParseError::NotAnError { icmp_type: 0, code: 0 },
            IcmpParseError::BadQuotedHeader,
            IcmpParseError::QuotedNotTcp { protocol: 17 },
            IcmpParseError::QuotedNotOurs,
        ];
        for error in errors {
            assert!(!error.to_string().is_empty());
        }
    }
}
