//! A classic libpcap capture writer, so a simulated run can be opened in Wireshark or
//! `tcpdump -r`.
//!
//! The file is little-endian, version 2.4, microsecond timestamps, snapshot length 65 535 and
//! link type 101 (`LINKTYPE_RAW`: each record is a bare IPv4 or IPv6 packet). The simulator
//! carries TCP segments only, so [`ipv4_packet`] wraps one in a minimal IPv4 header first.

use alloc::vec::Vec;
use core::net::Ipv4Addr;

use crate::time::Instant;
use crate::wire::ip::{Ipv4Header, PROTOCOL_TCP};

/// The pcap magic number for microsecond timestamps (written in the file's byte order).
pub const MAGIC: u32 = 0xa1b2_c3d4;
/// Largest number of octets captured per packet; longer packets are truncated in the file
/// (their original length is still recorded).
pub const SNAPLEN: u32 = 65_535;
/// `LINKTYPE_RAW`: records start with an IPv4 or IPv6 header.
pub const LINKTYPE_RAW: u32 = 101;

/// Writes packets to `out` in the classic pcap format.
#[derive(Debug)]
pub struct PcapWriter<W: std::io::Write> {
    out: W,
}

impl<W: std::io::Write> PcapWriter<W> {
    /// Starts a capture: writes the 24-octet global header to `out`.
    pub fn new(mut out: W) -> std::io::Result<Self> {
        let mut header = [0_u8; 24];
        let fields: [&[u8]; 7] = [
            &MAGIC.to_le_bytes(),
            &2_u16.to_le_bytes(), // version major
            &4_u16.to_le_bytes(), // version minor
            &0_i32.to_le_bytes(), // thiszone: timestamps are UTC
            &0_u32.to_le_bytes(), // sigfigs
            &SNAPLEN.to_le_bytes(),
            &LINKTYPE_RAW.to_le_bytes(),
        ];
        for (slot, byte) in header.iter_mut().zip(fields.into_iter().flatten()) {
            *slot = *byte;
        }
        out.write_all(&header)?;
        Ok(Self { out })
    }

    /// Appends one packet captured at `at` (seconds and microseconds since the [`Instant`]
    /// epoch; seconds saturate at `u32::MAX`): a 16-octet record header (`ts_sec`, `ts_usec`,
    /// `incl_len`, `orig_len`) and the packet, truncated to [`SNAPLEN`] octets.
    pub fn write_packet(&mut self, at: Instant, packet: &[u8]) -> std::io::Result<()> {
        let micros = at.as_micros();
        let ts_sec = u32::try_from(micros / 1_000_000).unwrap_or(u32::MAX);
        let ts_usec = u32::try_from(micros % 1_000_000).unwrap_or(0);
        let orig_len = u32::try_from(packet.len()).unwrap_or(u32::MAX);
        let incl_len = orig_len.min(SNAPLEN);
        let captured = packet.get(..packet.len().min(SNAPLEN as usize)).unwrap_or(packet);
        let mut record = [0_u8; 16];
        let fields = [ts_sec, ts_usec, incl_len, orig_len].map(u32::to_le_bytes);
        for (slot, byte) in record.iter_mut().zip(fields.iter().flatten()) {
            *slot = *byte;
        }
        self.out.write_all(&record)?;
        self.out.write_all(captured)
    }

    /// The underlying writer (not flushed: call `flush` on it if it buffers).
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Wraps a TCP segment in a minimal 20-octet IPv4 header (protocol 6, TTL 64, no options,
/// identification 0, DF clear, valid header checksum) for captures of the TCP-only simulator.
///
/// The total length is `20 + tcp.len()`; a segment too long for an IPv4 packet (over 65 515
/// octets) is still appended whole, with the total length clamped to 65 535.
pub fn ipv4_packet(src: Ipv4Addr, dst: Ipv4Addr, tcp: &[u8]) -> Vec<u8> {
    let header = Ipv4Header {
        src,
        dst,
        protocol: PROTOCOL_TCP,
        ttl: 64,
        identification: 0,
        dont_fragment: false,
        more_fragments: false,
        fragment_offset: 0,
        total_len: u16::try_from(Ipv4Header::LEN.saturating_add(tcp.len())).unwrap_or(u16::MAX),
        dscp_ecn: 0,
    };
    let mut packet = alloc::vec![0; Ipv4Header::LEN];
    // The buffer is exactly one header long, so emitting cannot fail.
    let written = header.emit(&mut packet).unwrap_or(0);
    packet.truncate(written);
    packet.extend_from_slice(tcp);
    packet
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    const GLOBAL_HEADER: [u8; 24] = [
        0xd4, 0xc3, 0xb2, 0xa1, // magic, little-endian
        2, 0, 4, 0, // version 2.4
        0, 0, 0, 0, // thiszone
        0, 0, 0, 0, // sigfigs
        0xff, 0xff, 0, 0, // snaplen 65535
        101, 0, 0, 0, // LINKTYPE_RAW
    ];

    #[test]
    fn global_header_alone() {
        let writer = PcapWriter::new(Vec::new()).expect("write to a Vec");
        assert_eq!(writer.into_inner(), GLOBAL_HEADER);
    }

    #[test]
    fn two_packets_exact_bytes() {
        let mut writer = PcapWriter::new(Vec::new()).expect("write to a Vec");
        writer.write_packet(Instant::from_micros(1_500_000), &[0xaa; 3]).expect("write");
        writer.write_packet(Instant::from_micros(70_000_000_042), &[1, 2]).expect("write");
        let bytes = writer.into_inner();
        let mut expected = GLOBAL_HEADER.to_vec();
        expected.extend_from_slice(&[
            1, 0, 0, 0, // ts_sec 1
            0x20, 0xa1, 0x07, 0, // ts_usec 500 000
            3, 0, 0, 0, // incl_len
            3, 0, 0, 0, // orig_len
            0xaa, 0xaa, 0xaa,
        ]);
        expected.extend_from_slice(&[
            0x70, 0x11, 0x01, 0, // ts_sec 70 000
            42, 0, 0, 0, // ts_usec 42
            2, 0, 0, 0, // incl_len
            2, 0, 0, 0, // orig_len
            1, 2,
        ]);
        assert_eq!(bytes, expected);
    }

    #[test]
    fn oversized_packets_are_truncated_to_the_snaplen() {
        let mut writer = PcapWriter::new(Vec::new()).expect("write to a Vec");
        writer.write_packet(Instant::ZERO, &vec![7; 70_000]).expect("write");
        let bytes = writer.into_inner();
        assert_eq!(bytes.len(), 24 + 16 + 65_535);
        assert_eq!(bytes.get(32..36), Some(&65_535_u32.to_le_bytes()[..]));
        assert_eq!(bytes.get(36..40), Some(&70_000_u32.to_le_bytes()[..]));
    }

    #[test]
    fn write_errors_are_reported() {
        struct Full;
        impl std::io::Write for Full {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Ok(0)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        assert!(PcapWriter::new(Full).is_err());
    }

    #[test]
    fn ipv4_packet_wraps_the_segment() {
        let src = Ipv4Addr::new(10, 0, 0, 1);
        let dst = Ipv4Addr::new(10, 0, 0, 2);
        let tcp = [0x55_u8; 24];
        let packet = ipv4_packet(src, dst, &tcp);
        assert_eq!(packet.len(), 44);
        assert_eq!(packet.get(..4), Some(&[0x45, 0, 0, 44][..]));
        assert_eq!(packet.get(8..10), Some(&[64, 6][..]));
        let (header, payload) = Ipv4Header::parse(&packet).expect("valid IPv4 header");
        assert_eq!((header.src, header.dst), (src, dst));
        assert_eq!((header.protocol, header.ttl, header.total_len), (6, 64, 44));
        assert_eq!(payload, tcp);
    }

    #[test]
    fn capture_of_real_segments_parses_with_etherparse() {
        use crate::wire::Segment;
        // Round trip through an independent parser: what Wireshark would see.
        let src = Ipv4Addr::new(192, 0, 2, 1);
        let dst = Ipv4Addr::new(192, 0, 2, 2);
        let tcp = etherparse::PacketBuilder::ipv4(src.octets(), dst.octets(), 64)
            .tcp(1234, 80, 1000, 65535)
            .syn();
        let mut ip = Vec::new();
        tcp.write(&mut ip, &[]).expect("build");
        let segment = ip.get(20..).expect("tcp part").to_vec();
        let packet = ipv4_packet(src, dst, &segment);
        let mut writer = PcapWriter::new(Vec::new()).expect("write to a Vec");
        writer.write_packet(Instant::from_millis(3), &packet).expect("write");
        let bytes = writer.into_inner();
        let record = bytes.get(40..).expect("record");
        let parsed = etherparse::SlicedPacket::from_ip(record).expect("parses as IP");
        match parsed.transport {
            Some(etherparse::TransportSlice::Tcp(t)) => {
                assert!(t.syn());
                assert_eq!((t.source_port(), t.destination_port()), (1234, 80));
            }
            other => panic!("not TCP: {other:?}"),
        }
        // The TCP checksum still holds over the pseudo-header of the wrapping addresses.
        let payload = record.get(20..).expect("payload");
        let segment = Segment::parse_checked(payload, src.into(), dst.into()).expect("checksum");
        assert_eq!(segment.header.src_port, 1234);
    }
}
