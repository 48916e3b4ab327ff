//! Minimal IPv4 (RFC 791) and IPv6 (RFC 8200) headers, for adapters that carry TCP segments
//! over a real network. The core never needs them: a connection is fed TCP segments and the
//! addresses they came from, which are what the pseudo-header of RFC 9293 §3.1 (MUST-2, MUST-3)
//! is built from.
//!
//! IPv4 options are skipped by the header length and the header checksum is verified; fragments
//! are reported ([`Ipv4Header::is_fragment`]) but not reassembled — that is the IP layer's job
//! (RFC 9293 §3.7.1, MUST-67). IPv6 extension headers are not walked: [`Ipv6Header::parse`]
//! returns the fixed header and everything after it, and the caller sees `next_header` and
//! decides. Nothing here allocates or panics on input.

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
    ///
    /// # Errors
    ///
    /// [`IpParseError::TooShort`], [`IpParseError::BadVersion`],
    /// [`IpParseError::BadHeaderLength`], [`IpParseError::BadTotalLength`] or
    /// [`IpParseError::BadChecksum`], checked in that order.
    // In line (across crates too): the usual packet's path is a few loads and adds, and a
    // caller that reads only some fields (the addresses, say) leaves the rest unbuilt.
    #[inline]
    pub fn parse(bytes: &[u8]) -> Result<(Self, &[u8]), IpParseError> {
        // The usual packet first: version 4, no options, a total length within `bytes` and a
        // correct checksum, summed as the header's five words with no call and no loop. It
        // gives what the general parse gives for it; anything else (an error included) takes
        // the general parse, out of line.
        if let Some(h) = bytes.first_chunk::<{ Self::LEN }>()
            && h[0] == 0x45
        {
            let total_len = u16::from_be_bytes([h[2], h[3]]);
            let end = usize::from(total_len);
            if let Some(payload) = bytes.get(Self::LEN..end)
                && header_sum_is_all_ones(h)
            {
                return Ok((Self::from_fields(h, total_len), payload));
            }
        }
        Self::parse_general(bytes)
    }

    /// [`parse`](Self::parse) for any packet: options, and every error in its order.
    #[cold]
    #[inline(never)]
    fn parse_general(bytes: &[u8]) -> Result<(Self, &[u8]), IpParseError> {
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
        let mut sum = Checksum::new();
        sum.add_bytes(bytes.get(..header_len).unwrap_or(&[]));
        if sum.finish() != 0 {
            let received = u16::from_be_bytes([h[10], h[11]]);
            let mut again = Checksum::new();
            again.add_bytes(bytes.get(..10).unwrap_or(&[]));
            again.add_bytes(bytes.get(12..header_len).unwrap_or(&[]));
            return Err(IpParseError::BadChecksum { received, computed: again.finish() });
        }
        let payload = bytes.get(header_len..usize::from(total_len)).unwrap_or(&[]);
        Ok((Self::from_fields(h, total_len), payload))
    }

    /// The fields of a header whose first 20 octets are `h`.
    #[inline]
    fn from_fields(h: &[u8; Self::LEN], total_len: u16) -> Self {
        let flags_fragment = u16::from_be_bytes([h[6], h[7]]);
        Self {
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
        }
    }

    /// Writes a 20-octet header (no options) with its checksum into the front of `buf`. Returns
    /// octets written. `total_len` is written as given: the caller counts the payload.
    ///
    /// # Errors
    ///
    /// [`EmitError::BufferTooSmall`] when `buf` is shorter than [`Self::LEN`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EmitError> {
        let available = buf.len();
        let Some(out) = buf.first_chunk_mut::<{ Self::LEN }>() else {
            return Err(EmitError::BufferTooSmall { needed: Self::LEN, available });
        };
        let flags_fragment = (u16::from(self.dont_fragment) << 14)
            | (u16::from(self.more_fragments) << 13)
            | (self.fragment_offset & 0x1fff);
        // The header as five big-endian 32-bit words, checksum field 0 (version 4, IHL 5).
        let words = [
            0x4500_0000 | (u32::from(self.dscp_ecn) << 16) | u32::from(self.total_len),
            (u32::from(self.identification) << 16) | u32::from(flags_fragment),
            (u32::from(self.ttl) << 24) | (u32::from(self.protocol) << 16),
            self.src.to_bits(),
            self.dst.to_bits(),
        ];
        let field = u32::from(header_checksum(&words));
        let [w0, w1, w2, w3, w4] = words;
        let chunks = out.chunks_exact_mut(4).zip([w0, w1, w2 | field, w3, w4]);
        for (octets, word) in chunks {
            octets.copy_from_slice(&word.to_be_bytes());
        }
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

    /// Parses the 40-octet fixed header: version 6 and a payload length within `bytes`. Returns
    /// the header and the payload (trailing octets beyond the payload length are ignored).
    ///
    /// Extension headers are not walked: when `next_header` is not [`PROTOCOL_TCP`] the payload
    /// starts with an extension header (or another protocol) and the caller decides. Jumbograms
    /// (payload length 0 with a hop-by-hop option) are not supported.
    ///
    /// # Errors
    ///
    /// [`IpParseError::TooShort`], [`IpParseError::BadVersion`] or
    /// [`IpParseError::BadTotalLength`] (the payload length runs past `bytes`).
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

    /// Writes the 40-octet fixed header into the front of `buf`. Returns octets written.
    /// `payload_len` is written as given and the flow label is masked to its 20 bits.
    ///
    /// # Errors
    ///
    /// [`EmitError::BufferTooSmall`] when `buf` is shorter than [`Self::LEN`].
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

/// The IPv4 header checksum (RFC 791) of a header given as 32-bit words with its checksum
/// field 0: the ones'-complement sum of its 16-bit halves, which summing whole 32-bit words
/// and folding the carries back gives as well (RFC 1071 §2 (B)), complemented. The version
/// octet keeps the sum from being zero, so the folded value is the one the 16-bit sum gives.
fn header_checksum(words: &[u32; 5]) -> u16 {
    let mut sum: u64 = words.iter().map(|&word| u64::from(word)).sum();
    sum = (sum & 0xffff_ffff) + (sum >> 32);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    // Three folds leave at most 16 bits: below 2^33, then 2^17 + 2^16, then 2^16 + 1, then 2^16.
    !(sum as u16)
}

/// Whether the ones'-complement sum of a 20-octet header is all ones (RFC 1071), as
/// `Checksum::finish() == 0` says of the same octets. Five 32-bit words sum below 2^35; each
/// fold keeps the value modulo 2^16 − 1 and leaves a non-zero one non-zero.
#[inline]
fn header_sum_is_all_ones(h: &[u8; Ipv4Header::LEN]) -> bool {
    // In native byte order, with no swaps: swapping the octets of every word swaps those of
    // the sum (RFC 1071 §2 (B)), and all ones reads the same either way.
    let (words, _) = h.as_chunks::<4>();
    let mut sum: u64 = words.iter().map(|&word| u64::from(u32::from_ne_bytes(word))).sum();
    sum = (sum & 0xffff_ffff) + (sum >> 32);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    // At most 0x10000 now, which is 1 modulo 2^16 − 1: only 0xffff itself is all ones.
    sum == 0xffff
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use alloc::string::ToString;

    use super::*;

    /// The classic IPv4 header example (UDP, 192.168.0.1 → 192.168.0.199), checksum b861.
    const IPV4_EXAMPLE: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];

    /// The unrolled sum of a 20-octet header against the general one, for headers that pass,
    /// fail, sum to zero or carry the most carries.
    #[test]
    fn short_header_sum_matches_the_general_sum() {
        let mut headers = alloc::vec![IPV4_EXAMPLE, [0; 20], [0xff; 20]];
        let mut state = 0x2545_f491_u32;
        for _ in 0..2000 {
            let mut h = IPV4_EXAMPLE;
            for octet in &mut h {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                *octet = if state & 0x100 == 0 { state as u8 } else { 0xff };
            }
            // Half of them get their correct checksum.
            if state & 0x200 == 0 {
                h[10] = 0;
                h[11] = 0;
                let mut sum = Checksum::new();
                sum.add_bytes(&h);
                h[10..12].copy_from_slice(&sum.finish().to_be_bytes());
            }
            headers.push(h);
        }
        let mut valid = 0;
        for h in &headers {
            let mut sum = Checksum::new();
            sum.add_bytes(h);
            assert_eq!(header_sum_is_all_ones(h), sum.finish() == 0, "{h:02x?}");
            valid += usize::from(sum.finish() == 0);
        }
        assert!(valid > 500, "{valid}");
    }

    /// The fast parse against the general one: packets with and without options, correct and
    /// corrupted, of every length around the header and total lengths.
    #[test]
    fn fast_parse_gives_what_the_general_parse_gives() {
        let mut state = 0x9e37_79b9_u32;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        let mut valid = 0;
        for round in 0..3000 {
            let options = if round % 4 == 0 { 4 * (next() as usize % 11) } else { 0 };
            let payload = next() as usize % 40;
            let mut packet = alloc::vec![0u8; 20 + options + payload];
            let total = u16::try_from(20 + options + payload).unwrap();
            v4_header(total).emit(&mut packet).unwrap();
            packet[0] = 0x40 | u8::try_from(5 + options / 4).unwrap();
            for octet in &mut packet[20..] {
                *octet = next() as u8;
            }
            let mut sum = Checksum::new();
            packet[10..12].copy_from_slice(&[0, 0]);
            sum.add_bytes(&packet[..20 + options]);
            packet[10..12].copy_from_slice(&sum.finish().to_be_bytes());
            match next() % 6 {
                0 => packet[next() as usize % 20] ^= 1 << (next() % 8),
                1 => packet.truncate(next() as usize % (packet.len() + 1)),
                2 => packet.extend_from_slice(&[7; 5]),
                _ => {}
            }
            let fast = Ipv4Header::parse(&packet);
            assert_eq!(fast, Ipv4Header::parse_general(&packet), "{packet:02x?}");
            valid += usize::from(fast.is_ok());
        }
        assert!(valid > 1000, "{valid}");
    }

    fn v4_header(total_len: u16) -> Ipv4Header {
        Ipv4Header {
            src: Ipv4Addr::new(192, 168, 0, 1),
            dst: Ipv4Addr::new(192, 168, 0, 199),
            protocol: 17,
            ttl: 64,
            identification: 0,
            dont_fragment: true,
            more_fragments: false,
            fragment_offset: 0,
            total_len,
            dscp_ecn: 0,
        }
    }

    fn v6_header(payload_len: u16) -> Ipv6Header {
        Ipv6Header {
            src: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
            dst: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2),
            next_header: PROTOCOL_TCP,
            hop_limit: 64,
            payload_len,
            traffic_class: 0xb8,
            flow_label: 0x1_2345,
        }
    }

    #[test]
    fn ipv4_known_header_emits_and_parses_with_checksum_b861() {
        let mut buf = [0u8; 20];
        assert_eq!(v4_header(0x73).emit(&mut buf), Ok(20));
        assert_eq!(buf, IPV4_EXAMPLE);
        let mut packet = [0u8; 0x73 + 4];
        packet[..20].copy_from_slice(&IPV4_EXAMPLE);
        packet[20] = 0xaa;
        let (header, payload) = Ipv4Header::parse(&packet).unwrap();
        assert_eq!(header, v4_header(0x73));
        assert_eq!(payload.len(), 0x73 - 20, "trailing link-layer padding is ignored");
        assert_eq!(payload[0], 0xaa);
        assert!(!header.is_fragment());
    }

    #[test]
    fn ipv4_options_are_skipped_by_the_header_length() {
        let mut packet = [0u8; 28];
        packet[..20].copy_from_slice(&IPV4_EXAMPLE);
        packet[0] = 0x46; // IHL 6: one word of options (NOPs)
        packet[2..4].copy_from_slice(&28u16.to_be_bytes());
        packet[20..24].copy_from_slice(&[1, 1, 1, 0]);
        packet[24..].copy_from_slice(b"tcp!");
        packet[10..12].fill(0);
        let mut sum = Checksum::new();
        sum.add_bytes(&packet[..24]);
        packet[10..12].copy_from_slice(&sum.finish().to_be_bytes());
        let (header, payload) = Ipv4Header::parse(&packet).unwrap();
        assert_eq!(header.total_len, 28);
        assert_eq!(payload, b"tcp!");
    }

    #[test]
    fn ipv4_each_parse_error() {
        assert_eq!(Ipv4Header::parse(&IPV4_EXAMPLE[..19]), Err(IpParseError::TooShort { len: 19 }));
        let mut packet = [0u8; 0x73];
        packet[..20].copy_from_slice(&IPV4_EXAMPLE);
        let mut bad = packet;
        bad[0] = 0x65;
        assert_eq!(Ipv4Header::parse(&bad), Err(IpParseError::BadVersion { version: 6 }));
        bad[0] = 0x44;
        assert_eq!(Ipv4Header::parse(&bad), Err(IpParseError::BadHeaderLength { ihl: 4 }));
        bad[0] = 0x4f;
        assert_eq!(Ipv4Header::parse(&bad[..40]), Err(IpParseError::BadHeaderLength { ihl: 15 }));
        assert_eq!(
            Ipv4Header::parse(&packet[..0x72]),
            Err(IpParseError::BadTotalLength { total_len: 0x73, available: 0x72 })
        );
        let mut bad = packet;
        bad[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(
            Ipv4Header::parse(&bad),
            Err(IpParseError::BadTotalLength { total_len: 19, available: 0x73 })
        );
        let mut bad = packet;
        bad[8] = 63; // TTL changed, checksum not updated
        assert_eq!(
            Ipv4Header::parse(&bad),
            Err(IpParseError::BadChecksum { received: 0xb861, computed: 0xb961 })
        );
    }

    #[test]
    fn ipv4_fragments_are_recognised() {
        let mut buf = [0u8; 20];
        for (more_fragments, fragment_offset, expected) in
            [(false, 0, false), (true, 0, true), (false, 185, true), (true, 0x1fff, true)]
        {
            let header = Ipv4Header {
                dont_fragment: false,
                more_fragments,
                fragment_offset,
                ..v4_header(20)
            };
            header.emit(&mut buf).unwrap();
            let (parsed, payload) = Ipv4Header::parse(&buf).unwrap();
            assert_eq!(parsed, header);
            assert!(payload.is_empty());
            assert_eq!(parsed.is_fragment(), expected);
        }
    }

    #[test]
    fn ipv6_header_round_trips() {
        let mut packet = [0u8; 40 + 6];
        assert_eq!(v6_header(4).emit(&mut packet), Ok(40));
        assert_eq!(packet[0], 0x6b, "version 6, traffic class high nibble");
        assert_eq!(packet[1..4], [0x81, 0x23, 0x45]);
        packet[40..44].copy_from_slice(b"tcp!");
        let (header, payload) = Ipv6Header::parse(&packet).unwrap();
        assert_eq!(header, v6_header(4));
        assert_eq!(payload, b"tcp!", "trailing octets beyond the payload length are ignored");
    }

    #[test]
    fn ipv6_each_parse_error() {
        let mut packet = [0u8; 44];
        v6_header(4).emit(&mut packet).unwrap();
        assert_eq!(Ipv6Header::parse(&packet[..39]), Err(IpParseError::TooShort { len: 39 }));
        assert_eq!(
            Ipv6Header::parse(&packet[..43]),
            Err(IpParseError::BadTotalLength { total_len: 4, available: 43 })
        );
        packet[0] = 0x45;
        assert_eq!(Ipv6Header::parse(&packet), Err(IpParseError::BadVersion { version: 4 }));
    }

    /// The checksum summed from 32-bit words is the one the generic 16-bit sum gives, over
    /// headers with every field varied (carries in every position).
    #[test]
    fn ipv4_header_checksum_matches_the_generic_sum_rfc_791() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..20_000 {
            let bits = next();
            let extreme = |value: u64| match round % 3 {
                0 => value,
                1 => u64::MAX,
                _ => 0,
            };
            let header = Ipv4Header {
                src: Ipv4Addr::from_bits(extreme(next()) as u32),
                dst: Ipv4Addr::from_bits(extreme(next()) as u32),
                protocol: bits as u8,
                ttl: (bits >> 8) as u8,
                identification: extreme(bits >> 16) as u16,
                dont_fragment: bits & (1 << 40) != 0,
                more_fragments: bits & (1 << 41) != 0,
                fragment_offset: (bits >> 42) as u16 & 0x1fff,
                total_len: extreme(bits >> 24) as u16,
                dscp_ecn: (bits >> 56) as u8,
            };
            let mut buf = [0u8; 20];
            assert_eq!(header.emit(&mut buf), Ok(20));
            let field = u16::from_be_bytes([buf[10], buf[11]]);
            buf[10] = 0;
            buf[11] = 0;
            let mut sum = Checksum::new();
            sum.add_bytes(&buf);
            assert_eq!(field, sum.finish(), "{header:?}");
        }
    }

    #[test]
    fn emit_into_a_short_buffer_is_an_error() {
        assert_eq!(
            v4_header(20).emit(&mut [0; 19]),
            Err(EmitError::BufferTooSmall { needed: 20, available: 19 })
        );
        assert_eq!(
            v6_header(0).emit(&mut [0; 39]),
            Err(EmitError::BufferTooSmall { needed: 40, available: 39 })
        );
    }

    #[test]
    fn arbitrary_short_inputs_never_panic() {
        let mut bytes = [0u8; 64];
        for len in 0..bytes.len() {
            for first in [0x00, 0x45, 0x4f, 0x60, 0x6f, 0xff] {
                bytes[0] = first;
                bytes[2] = len as u8;
                let _ = Ipv4Header::parse(&bytes[..len]);
                let _ = Ipv6Header::parse(&bytes[..len]);
            }
        }
    }

    #[test]
    fn errors_display_by_hand() {
        let errors = [
            IpParseError::TooShort { len: 1 },
            IpParseError::BadVersion { version: 5 },
            IpParseError::BadHeaderLength { ihl: 2 },
            IpParseError::BadTotalLength { total_len: 9, available: 3 },
            IpParseError::BadChecksum { received: 1, computed: 2 },
        ];
        for error in errors {
            assert!(!error.to_string().is_empty());
        }
    }
}
