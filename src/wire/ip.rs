//! Minimal IPv4 (RFC 791) and IPv6 (RFC 8200) headers, for adapters that carry TCP segments
//! over a real network. The core never needs them: a connection is fed TCP segments and the
//! addresses they came from.
//!
//! IPv4 options are skipped by the header length; IPv6 extension headers are not walked (the
//! caller sees `next_header` and decides).

use core::fmt;
use core::net::{Ipv4Addr, Ipv6Addr};

use super::EmitError;
use super::checksum::Checksum;

/// IP protocol number of TCP.
pub const PROTOCOL_TCP: u8 = super::PROTOCOL_TCP;

/// An IPv4 header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Header {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Payload protocol (6 for TCP).
    pub protocol: u8,
    /// Time to live.
    pub ttl: u8,
    /// Identification.
    pub identification: u16,
    /// DF bit.
    pub dont_fragment: bool,
    /// MF bit.
    pub more_fragments: bool,
    /// Fragment offset in 8-octet units.
    pub fragment_offset: u16,
    /// Total length: header plus payload.
    pub total_len: u16,
    /// DSCP and ECN bits.
    pub dscp_ecn: u8,
}

impl Ipv4Header {
    /// Length of a header without options.
    pub const LEN: usize = 20;

    /// Parses a header: version 4, IHL ≥ 5 (options skipped), a total length within `bytes`,
    /// and a valid header checksum. Returns the header and the payload (trailing octets beyond
    /// the total length are ignored, as link-layer padding).
    pub fn parse(bytes: &[u8]) -> Result<(Self, &[u8]), IpParseError> {
        let Some(h) = bytes.first_chunk::<{ Self::LEN }>() else {
            return Err(IpParseError::TooShort { len: bytes.len() });
        };
        let version = h[0] >> 4;
        if version != 4 {
            return Err(IpParseError::BadVersion { version });
        }
        let ihl = h[0] & 0x0f;
        let header_len = usize::from(ihl) * 4;
        if ihl < 5 || header_len > bytes.len() {
            return Err(IpParseError::BadHeaderLength { ihl });
        }
        let total_len = u16::from_be_bytes([h[2], h[3]]);
        if usize::from(total_len) < header_len || usize::from(total_len) > bytes.len() {
            return Err(IpParseError::BadTotalLength { total_len, available: bytes.len() });
        }
        let header = bytes.get(..header_len).unwrap_or(&[]);
        let mut sum = Checksum::new();
        sum.add_bytes(header);
        if sum.finish() != 0 {
            let received = u16::from_be_bytes([h[10], h[11]]);
            let mut again = Checksum::new();
            again.add_bytes(bytes.get(..10).unwrap_or(&[]));
            again.add_bytes(bytes.get(12..header_len).unwrap_or(&[]));
            return Err(IpParseError::BadChecksum { received, computed: again.finish() });
        }
        let flags_fragment = u16::from_be_bytes([h[6], h[7]]);
        let parsed = Self {
            src: Ipv4Addr::new(h[12], h[13], h[14], h[15]),
            dst: Ipv4Addr::new(h[16], h[17], h[18], h[19]),
            protocol: h[9],
            ttl: h[8],
            identification: u16::from_be_bytes([h[4], h[5]]),
            dont_fragment: flags_fragment & 0x4000 != 0,
            more_fragments: flags_fragment & 0x2000 != 0,
            fragment_offset: flags_fragment & 0x1fff,
            total_len,
            dscp_ecn: h[1],
        };
        let payload = bytes.get(header_len..usize::from(total_len)).unwrap_or(&[]);
        Ok((parsed, payload))
    }

    /// Writes a 20-octet header with its checksum. Returns octets written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EmitError> {
        let available = buf.len();
        let Some(out) = buf.first_chunk_mut::<{ Self::LEN }>() else {
            return Err(EmitError::BufferTooSmall { needed: Self::LEN, available });
        };
        let flags_fragment = (u16::from(self.dont_fragment) << 14)
            | (u16::from(self.more_fragments) << 13)
            | (self.fragment_offset & 0x1fff);
        let [t0, t1] = self.total_len.to_be_bytes();
        let [i0, i1] = self.identification.to_be_bytes();
        let [f0, f1] = flags_fragment.to_be_bytes();
        let [s0, s1, s2, s3] = self.src.octets();
        let [d0, d1, d2, d3] = self.dst.octets();
        *out = [
            0x45,
            self.dscp_ecn,
            t0,
            t1,
            i0,
            i1,
            f0,
            f1,
            self.ttl,
            self.protocol,
            0,
            0,
            s0,
            s1,
            s2,
            s3,
            d0,
            d1,
            d2,
            d3,
        ];
        let mut sum = Checksum::new();
        sum.add_bytes(out);
        let [c0, c1] = sum.finish().to_be_bytes();
        out[10] = c0;
        out[11] = c1;
        Ok(Self::LEN)
    }

    /// Whether this packet is a fragment (MF set or a non-zero offset).
    pub const fn is_fragment(&self) -> bool {
        self.more_fragments || self.fragment_offset != 0
    }
}

/// An IPv6 fixed header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv6Header {
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// Next header (6 for TCP with no extension headers).
    pub next_header: u8,
    /// Hop limit.
    pub hop_limit: u8,
    /// Payload length (everything after the fixed header).
    pub payload_len: u16,
    /// Traffic class.
    pub traffic_class: u8,
    /// Flow label (20 bits).
    pub flow_label: u32,
}

impl Ipv6Header {
    /// Length of the fixed header.
    pub const LEN: usize = 40;

    /// Parses the fixed header: version 6 and a payload length within `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<(Self, &[u8]), IpParseError> {
        let Some(h) = bytes.first_chunk::<{ Self::LEN }>() else {
            return Err(IpParseError::TooShort { len: bytes.len() });
        };
        let version = h[0] >> 4;
        if version != 6 {
            return Err(IpParseError::BadVersion { version });
        }
        let payload_len = u16::from_be_bytes([h[4], h[5]]);
        let end = Self::LEN + usize::from(payload_len);
        let Some(payload) = bytes.get(Self::LEN..end) else {
            return Err(IpParseError::BadTotalLength {
                total_len: payload_len,
                available: bytes.len(),
            });
        };
        let mut src = [0u8; 16];
        src.copy_from_slice(&h[8..24]);
        let mut dst = [0u8; 16];
        dst.copy_from_slice(&h[24..40]);
        let first_word = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        let parsed = Self {
            src: Ipv6Addr::from(src),
            dst: Ipv6Addr::from(dst),
            next_header: h[6],
            hop_limit: h[7],
            payload_len,
            // Bits 4..12 of the first word.
            traffic_class: ((first_word >> 20) & 0xff) as u8,
            flow_label: first_word & 0x000f_ffff,
        };
        Ok((parsed, payload))
    }

    /// Writes the 40-octet fixed header. Returns octets written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EmitError> {
        let available = buf.len();
        let Some(out) = buf.first_chunk_mut::<{ Self::LEN }>() else {
            return Err(EmitError::BufferTooSmall { needed: Self::LEN, available });
        };
        let first_word =
            (6u32 << 28) | (u32::from(self.traffic_class) << 20) | (self.flow_label & 0x000f_ffff);
        out[0..4].copy_from_slice(&first_word.to_be_bytes());
        out[4..6].copy_from_slice(&self.payload_len.to_be_bytes());
        out[6] = self.next_header;
        out[7] = self.hop_limit;
        out[8..24].copy_from_slice(&self.src.octets());
        out[24..40].copy_from_slice(&self.dst.octets());
        Ok(Self::LEN)
    }
}

/// Why bytes are not an IP packet this crate can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IpParseError {
    /// Shorter than the fixed header.
    TooShort {
        /// Octets given.
        len: usize,
    },
    /// Not the expected IP version.
    BadVersion {
        /// The version field.
        version: u8,
    },
    /// IPv4 header length below 5 words or past the end.
    BadHeaderLength {
        /// The IHL field.
        ihl: u8,
    },
    /// The length field disagrees with the octets given.
    BadTotalLength {
        /// The length field (IPv4 total length, IPv6 payload length).
        total_len: u16,
        /// Octets given.
        available: usize,
    },
    /// The IPv4 header checksum does not match.
    BadChecksum {
        /// The checksum field.
        received: u16,
        /// The checksum the header calls for.
        computed: u16,
    },
}

impl fmt::Display for IpParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort { len } => write!(f, "IP packet too short: {len} octets"),
            Self::BadVersion { version } => write!(f, "unexpected IP version {version}"),
            Self::BadHeaderLength { ihl } => write!(f, "bad IPv4 header length {ihl}"),
            Self::BadTotalLength { total_len, available } => {
                write!(f, "IP length {total_len} does not fit {available} octets")
            }
            Self::BadChecksum { received, computed } => {
                write!(f, "bad IPv4 header checksum {received:#06x}, expected {computed:#06x}")
            }
        }
    }
}

impl core::error::Error for IpParseError {}
