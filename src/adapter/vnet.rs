//! The virtio-net header (`struct virtio_net_hdr`, virtio 1.x §5.1.6): the 10 octets a Linux
//! TUN device opened with `IFF_VNET_HDR` puts in front of every packet, in both directions, to
//! say what the packet still needs (a checksum to finish) or already had (a checksum verified),
//! and whether it is a GSO super-packet to be cut into wire segments of `gso_size`.
//!
//! Why the 10-octet form and not the 12-octet one with `num_buffers`: `num_buffers` only means
//! something for mergeable receive buffers of a real virtio device; TUN never fills it in. Ten
//! octets are TUN's default (`TUNSETVNETHDRSZ` is never needed), and two octets less per packet.
//! Multi-octet fields are little-endian: the adapter asks for that with `TUNSETVNETLE` (legacy
//! virtio would be the host's order, which is little-endian on every host this runs on today).
//!
//! [`VnetHeader::decode`] never panics and refuses what the kernel would refuse: an unknown
//! flag or GSO type, a GSO type without a segment size, and a checksum request whose field
//! lies outside the packet.

use core::fmt;

/// A decoded virtio-net header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct VnetHeader {
    /// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum field holds only the pseudo-header's sum; the
    /// one's-complement sum from `csum_start` to the end goes into `csum_start + csum_offset`
    /// (Linux's `CHECKSUM_PARTIAL`). From the kernel: the packet was made on this host and
    /// never crossed a wire, so it cannot have been damaged.
    pub needs_csum: bool,
    /// `VIRTIO_NET_HDR_F_DATA_VALID` (receive only): the checksum was verified already (Linux's
    /// `CHECKSUM_UNNECESSARY`).
    pub data_valid: bool,
    /// What kind of super-packet this is, if any.
    pub gso: GsoType,
    /// `VIRTIO_NET_HDR_GSO_ECN`: a TCP super-packet whose first segment carries CWR (RFC 3168);
    /// the device may not cut it without keeping CWR on the first piece only.
    pub gso_ecn: bool,
    /// Length of the headers (IP and TCP) in front of the payload; a hint for the device.
    pub hdr_len: u16,
    /// Payload octets per segment of a super-packet (the MSS it was built for).
    pub gso_size: u16,
    /// Where the checksum sum starts, from the start of the packet (the TCP header's offset).
    pub csum_start: u16,
    /// Where the checksum field is, from `csum_start` (16 for TCP).
    pub csum_offset: u16,
}

/// The `gso_type` of a virtio-net header, without its ECN bit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum GsoType {
    /// `VIRTIO_NET_HDR_GSO_NONE`: one packet.
    #[default]
    None,
    /// `VIRTIO_NET_HDR_GSO_TCPV4`: a TCP/IPv4 super-packet.
    TcpV4,
    /// `VIRTIO_NET_HDR_GSO_TCPV6`: a TCP/IPv6 super-packet.
    TcpV6,
}

/// Why a virtio-net header could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VnetError {
    /// Fewer than [`VnetHeader::LEN`] octets.
    TooShort {
        /// The octets there were.
        len: usize,
    },
    /// A flag bit this adapter does not know (only `NEEDS_CSUM` and `DATA_VALID` exist for
    /// TUN).
    UnknownFlags {
        /// The whole `flags` octet.
        flags: u8,
    },
    /// A `gso_type` other than none, TCPv4 and TCPv6 (UDP fragmentation offload and the
    /// like are never turned on by this adapter).
    UnsupportedGsoType {
        /// The whole `gso_type` octet.
        gso_type: u8,
    },
    /// A super-packet with `gso_size` 0.
    ZeroGsoSize,
    /// `NEEDS_CSUM` with the checksum field (`csum_start + csum_offset`, two octets) past
    /// the end of the packet.
    ChecksumOutsidePacket {
        /// `csum_start`.
        csum_start: u16,
        /// `csum_offset`.
        csum_offset: u16,
        /// The packet's length after the header.
        packet_len: usize,
    },
}

impl fmt::Display for VnetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TooShort { len } => {
                write!(f, "virtio-net header: {len} octets, fewer than {}", VnetHeader::LEN)
            }
            Self::UnknownFlags { flags } => {
                write!(f, "virtio-net header: unknown flags {flags:#04x}")
            }
            Self::UnsupportedGsoType { gso_type } => {
                write!(f, "virtio-net header: unsupported gso_type {gso_type:#04x}")
            }
            Self::ZeroGsoSize => f.write_str("virtio-net header: GSO type set with gso_size 0"),
            Self::ChecksumOutsidePacket { csum_start, csum_offset, packet_len } => write!(
                f,
                "virtio-net header: checksum field at {csum_start}+{csum_offset} outside a \
                 {packet_len}-octet packet"
            ),
        }
    }
}

impl core::error::Error for VnetError {}

const F_NEEDS_CSUM: u8 = 1;
const F_DATA_VALID: u8 = 2;
const GSO_NONE: u8 = 0;
const GSO_TCPV4: u8 = 1;
const GSO_TCPV6: u8 = 4;
const GSO_ECN: u8 = 0x80;

impl VnetHeader {
    /// Octets on the wire (the form without `num_buffers`).
    pub const LEN: usize = 10;

    /// The header of a plain packet whose checksums are complete: all zero.
    pub const PLAIN: Self = Self {
        needs_csum: false,
        data_valid: false,
        gso: GsoType::None,
        gso_ecn: false,
        hdr_len: 0,
        gso_size: 0,
        csum_start: 0,
        csum_offset: 0,
    };

    /// Decodes the header at the start of `read` (a whole read from the device: header, then
    /// packet) and checks it against the packet behind it; returns the header and the packet.
    ///
    /// # Errors
    ///
    /// See [`VnetError`]: short input, unknown flags or GSO types, a zero segment size, a
    /// checksum field outside the packet.
    pub fn decode(read: &[u8]) -> Result<(Self, &[u8]), VnetError> {
        let Some((raw, packet)) = read.split_first_chunk::<{ Self::LEN }>() else {
            return Err(VnetError::TooShort { len: read.len() });
        };
        Ok((Self::decode_for(raw, packet.len())?, packet))
    }

    /// Decodes the header `raw`, read apart from its packet of `packet_len` octets (a
    /// vectored read), checking it against that length as [`decode`](Self::decode) does.
    ///
    /// # Errors
    ///
    /// As [`decode`](Self::decode), but for the length.
    pub fn decode_for(raw: &[u8; Self::LEN], packet_len: usize) -> Result<Self, VnetError> {
        let [flags, gso_type, h0, h1, s0, s1, c0, c1, o0, o1] = *raw;
        if flags & !(F_NEEDS_CSUM | F_DATA_VALID) != 0 {
            return Err(VnetError::UnknownFlags { flags });
        }
        let gso = match gso_type & !GSO_ECN {
            GSO_NONE => GsoType::None,
            GSO_TCPV4 => GsoType::TcpV4,
            GSO_TCPV6 => GsoType::TcpV6,
            _ => return Err(VnetError::UnsupportedGsoType { gso_type }),
        };
        let header = Self {
            needs_csum: flags & F_NEEDS_CSUM != 0,
            data_valid: flags & F_DATA_VALID != 0,
            gso,
            gso_ecn: gso_type & GSO_ECN != 0,
            hdr_len: u16::from_le_bytes([h0, h1]),
            gso_size: u16::from_le_bytes([s0, s1]),
            csum_start: u16::from_le_bytes([c0, c1]),
            csum_offset: u16::from_le_bytes([o0, o1]),
        };
        if gso != GsoType::None && header.gso_size == 0 {
            return Err(VnetError::ZeroGsoSize);
        }
        if header.needs_csum {
            let field_end = usize::from(header.csum_start) + usize::from(header.csum_offset) + 2;
            if field_end > packet_len {
                return Err(VnetError::ChecksumOutsidePacket {
                    csum_start: header.csum_start,
                    csum_offset: header.csum_offset,
                    packet_len,
                });
            }
        }
        Ok(header)
    }

    /// The header's ten octets.
    pub fn encode(&self) -> [u8; Self::LEN] {
        let flags =
            (u8::from(self.needs_csum) * F_NEEDS_CSUM) | (u8::from(self.data_valid) * F_DATA_VALID);
        let gso_type = match self.gso {
            GsoType::None => GSO_NONE,
            GsoType::TcpV4 => GSO_TCPV4,
            GsoType::TcpV6 => GSO_TCPV6,
        } | if self.gso_ecn { GSO_ECN } else { 0 };
        let [h0, h1] = self.hdr_len.to_le_bytes();
        let [s0, s1] = self.gso_size.to_le_bytes();
        let [c0, c1] = self.csum_start.to_le_bytes();
        let [o0, o1] = self.csum_offset.to_le_bytes();
        [flags, gso_type, h0, h1, s0, s1, c0, c1, o0, o1]
    }

    /// The header for a TCP segment we send, `ip_len` octets of IP header then `tcp_header_len`
    /// of TCP header, whose checksum field holds the pseudo-header's sum
    /// ([`TxChecksum::PseudoHeader`](crate::wire::checksum::TxChecksum::PseudoHeader)): the
    /// kernel finishes it (per piece, for a super-packet). `gso_size`: `Some(mss)` when the
    /// payload is longer than one segment, to be cut at `mss` octets.
    pub fn for_tcp(ipv6: bool, ip_len: u16, tcp_header_len: u16, gso_size: Option<u16>) -> Self {
        let gso = match (gso_size, ipv6) {
            (None, _) => GsoType::None,
            (Some(_), false) => GsoType::TcpV4,
            (Some(_), true) => GsoType::TcpV6,
        };
        Self {
            needs_csum: true,
            data_valid: false,
            gso,
            gso_ecn: false,
            hdr_len: ip_len.saturating_add(tcp_header_len),
            gso_size: gso_size.unwrap_or(0),
            csum_start: ip_len,
            csum_offset: 16,
        }
    }

    /// Whether the TCP checksum of the packet behind this header need not be verified: it was
    /// verified already, or the packet was built on this host and only asks for it to be
    /// finished (which a receiver may skip, as Linux does for `CHECKSUM_PARTIAL`).
    pub const fn checksum_trusted(&self) -> bool {
        self.needs_csum || self.data_valid
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Segment;
    use crate::wire::ip::{Ipv4Header, Ipv6Header};
    use alloc::vec::Vec;
    use core::net::IpAddr;

    /// The kernel's reads, by label, from `tests/golden/vnet_kernel.txt` (see
    /// `tests/golden/vnet_capture.py` for how they were captured).
    fn captured(label: &str) -> Vec<u8> {
        let text = include_str!("../../tests/golden/vnet_kernel.txt");
        let hex = text
            .lines()
            .find_map(|line| line.strip_prefix(label)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("{label} not captured"));
        (0..hex.len())
            .step_by(2)
            .map(|at| u8::from_str_radix(&hex[at..at + 2], 16).unwrap())
            .collect()
    }

    /// Finishes a `NEEDS_CSUM` checksum as the device would, then checks the segment.
    fn finish_and_verify(
        header: &VnetHeader,
        packet: &[u8],
        src: IpAddr,
        dst: IpAddr,
        tcp_at: usize,
    ) {
        let mut packet = packet.to_vec();
        let start = usize::from(header.csum_start);
        let field = start + usize::from(header.csum_offset);
        let mut sum = crate::wire::checksum::Checksum::new();
        sum.add_bytes(&packet[start..]);
        packet[field..field + 2].copy_from_slice(&sum.finish().to_be_bytes());
        Segment::parse_checked(&packet[tcp_at..], src, dst).expect("checksum right once finished");
    }

    #[test]
    fn kernel_tcpv4_super_packet_decodes_and_re_encodes_exactly() {
        let read = captured("tcpv4_data");
        let (header, packet) = VnetHeader::decode(&read).unwrap();
        assert_eq!(
            header,
            VnetHeader {
                needs_csum: true,
                data_valid: false,
                gso: GsoType::TcpV4,
                gso_ecn: false,
                hdr_len: 40,
                gso_size: 1460,
                csum_start: 20,
                csum_offset: 16,
            }
        );
        assert_eq!(header.encode(), read[..10]);
        // Five full segments behind one IPv4 header: the kernel's TSO super-packet.
        let (ip, tcp) = Ipv4Header::parse(packet).unwrap();
        assert_eq!(usize::from(ip.total_len), packet.len());
        assert_eq!(tcp.len() - 20, 5 * 1460);
        assert!(header.checksum_trusted());
        finish_and_verify(&header, packet, ip.src.into(), ip.dst.into(), 20);
        // What we would send for the same segment is the same header.
        assert_eq!(VnetHeader::for_tcp(false, 20, 20, Some(1460)), header);
    }

    #[test]
    fn kernel_tcpv6_super_packet_decodes_and_re_encodes_exactly() {
        let read = captured("tcpv6_data");
        let (header, packet) = VnetHeader::decode(&read).unwrap();
        assert_eq!(
            header,
            VnetHeader {
                needs_csum: true,
                data_valid: false,
                gso: GsoType::TcpV6,
                gso_ecn: false,
                hdr_len: 60,
                gso_size: 1440,
                csum_start: 40,
                csum_offset: 16,
            }
        );
        assert_eq!(header.encode(), read[..10]);
        let (ip, tcp) = Ipv6Header::parse(packet).unwrap();
        assert_eq!(usize::from(ip.payload_len), tcp.len());
        assert_eq!(tcp.len() - 20, 5 * 1440);
        finish_and_verify(&header, packet, ip.src.into(), ip.dst.into(), 40);
        assert_eq!(VnetHeader::for_tcp(true, 40, 20, Some(1440)), header);
    }

    #[test]
    fn kernel_syns_need_their_checksum_finished_and_are_not_gso() {
        for (label, tcp_at) in [("tcpv4_syn", 20), ("tcpv6_syn", 40)] {
            let read = captured(label);
            let (header, packet) = VnetHeader::decode(&read).unwrap();
            assert!(header.needs_csum, "{label}");
            assert_eq!(header.gso, GsoType::None, "{label}");
            assert_eq!(header.gso_size, 0, "{label}");
            assert_eq!(usize::from(header.csum_start), tcp_at, "{label}");
            assert_eq!(header.csum_offset, 16, "{label}");
            assert_eq!(header.encode(), read[..10], "{label}");
            let tcp = &packet[tcp_at..];
            // Unfinished, the checksum is wrong (only the pseudo-header is in the field).
            let (src, dst): (IpAddr, IpAddr) = if tcp_at == 20 {
                let (ip, _) = Ipv4Header::parse(packet).unwrap();
                (ip.src.into(), ip.dst.into())
            } else {
                let (ip, _) = Ipv6Header::parse(packet).unwrap();
                (ip.src.into(), ip.dst.into())
            };
            assert!(Segment::parse_checked(tcp, src, dst).is_err(), "{label}");
            finish_and_verify(&header, packet, src, dst, tcp_at);
        }
    }

    #[test]
    fn every_field_round_trips_ecn_and_data_valid_included() {
        let header = VnetHeader {
            needs_csum: false,
            data_valid: true,
            gso: GsoType::TcpV6,
            gso_ecn: true,
            hdr_len: 0x1234,
            gso_size: 0x0567,
            csum_start: 0,
            csum_offset: 0,
        };
        let bytes = header.encode();
        assert_eq!(bytes, [0x02, 0x84, 0x34, 0x12, 0x67, 0x05, 0, 0, 0, 0]);
        assert_eq!(VnetHeader::decode(&bytes), Ok((header, &[][..])));
        assert_eq!(VnetHeader::PLAIN.encode(), [0; 10]);
        assert!(!VnetHeader::PLAIN.checksum_trusted());
    }

    #[test]
    fn bad_headers_are_refused_with_their_reason_never_a_panic() {
        assert_eq!(VnetHeader::decode(&[0; 9]), Err(VnetError::TooShort { len: 9 }));
        assert_eq!(VnetHeader::decode(&[]), Err(VnetError::TooShort { len: 0 }));
        let mut bytes = [0u8; 10];
        bytes[0] = 4;
        assert_eq!(VnetHeader::decode(&bytes), Err(VnetError::UnknownFlags { flags: 4 }));
        bytes[0] = 0;
        bytes[1] = 3; // VIRTIO_NET_HDR_GSO_UDP
        assert_eq!(VnetHeader::decode(&bytes), Err(VnetError::UnsupportedGsoType { gso_type: 3 }));
        bytes[1] = GSO_TCPV4;
        assert_eq!(VnetHeader::decode(&bytes), Err(VnetError::ZeroGsoSize));
        // NEEDS_CSUM with the field at 20 + 16 in a 37-octet packet: one octet short.
        let mut read = VnetHeader::for_tcp(false, 20, 20, None).encode().to_vec();
        read.extend_from_slice(&[0; 37]);
        let error = VnetHeader::decode(&read).unwrap_err();
        assert_eq!(
            error,
            VnetError::ChecksumOutsidePacket { csum_start: 20, csum_offset: 16, packet_len: 37 }
        );
        assert!(alloc::format!("{error}").contains("outside"));
        read.push(0);
        assert!(VnetHeader::decode(&read).is_ok());
        // Every one-octet mutation of a good header decodes or errs; none panics.
        let good = captured("tcpv4_data");
        for at in 0..10 {
            for value in [0u8, 1, 2, 3, 4, 0x80, 0xff] {
                let mut mutated = good.clone();
                mutated[at] = value;
                let _ = VnetHeader::decode(&mutated);
            }
        }
    }
}
