//! The wire format against hand-made segments: each parse error (MUST-7), unknown options
//! skipped (MUST-6), options at any alignment (MUST-64), zero padding (MUST-69), a real captured
//! SYN's checksum (MUST-2, MUST-3), and the minimal IP headers.

use std::net::IpAddr;

use tcp_proto::SeqNum;
use tcp_proto::wire::ip::{IpParseError, Ipv4Header};
use tcp_proto::wire::{EmitError, Flags, Options, ParseError, Segment, TcpHeader};

const SRC: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 168, 1, 10));
const DST: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 168, 1, 20));

/// A 20-octet header with data offset `words` followed by `options` and `payload`.
fn raw(words: u8, options: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut bytes = vec![
        0x30,
        0x39,
        0x00,
        0x50, // ports 12345 -> 80
        0x00,
        0x00,
        0x03,
        0xe8, // seq 1000
        0x00,
        0x00,
        0x00,
        0x00, // ack 0
        words << 4,
        0x02, // data offset, SYN
        0xff,
        0xff, // window
        0x00,
        0x00,
        0x00,
        0x00, // checksum, urgent
    ];
    bytes.extend_from_slice(options);
    bytes.extend_from_slice(payload);
    bytes
}

#[test]
fn segment_shorter_than_20_octets_is_too_short() {
    assert_eq!(Segment::parse(&[0u8; 19]), Err(ParseError::TooShort { len: 19 }));
    assert_eq!(Segment::parse(&[]), Err(ParseError::TooShort { len: 0 }));
}

#[test]
fn data_offset_below_five_is_rejected() {
    assert_eq!(
        Segment::parse(&raw(4, &[], &[])),
        Err(ParseError::DataOffsetTooSmall { data_offset: 4 })
    );
}

#[test]
fn data_offset_past_the_end_is_rejected() {
    assert_eq!(
        Segment::parse(&raw(6, &[], &[])),
        Err(ParseError::DataOffsetPastEnd { header_len: 24, len: 20 })
    );
}

#[test]
fn option_length_zero_or_one_is_rejected_must_7() {
    assert_eq!(
        Segment::parse(&raw(6, &[0x22, 0x00, 0x01, 0x01], &[])),
        Err(ParseError::BadOptionLength { kind: 0x22, len: 0 })
    );
    assert_eq!(
        Segment::parse(&raw(6, &[0x22, 0x01, 0x01, 0x01], &[])),
        Err(ParseError::BadOptionLength { kind: 0x22, len: 1 })
    );
}

#[test]
fn option_running_past_the_header_is_rejected_must_7() {
    // MSS claims 4 octets but only 2 remain in the options area.
    assert_eq!(
        Segment::parse(&raw(6, &[0x01, 0x01, 0x02, 0x04], &[0x05, 0xb4])),
        Err(ParseError::BadOptionLength { kind: 2, len: 4 })
    );
    // A kind octet with no length octet.
    assert_eq!(
        Segment::parse(&raw(6, &[0x01, 0x01, 0x01, 0x22], &[])),
        Err(ParseError::BadOptionLength { kind: 0x22, len: 0 })
    );
}

#[test]
fn known_option_with_wrong_length_is_rejected_must_7() {
    assert_eq!(
        Segment::parse(&raw(6, &[0x02, 0x03, 0x05, 0x00], &[])),
        Err(ParseError::BadOptionLength { kind: 2, len: 3 })
    );
    assert_eq!(
        Segment::parse(&raw(7, &[0x05, 0x06, 0, 0, 0, 0, 0, 0], &[])),
        Err(ParseError::BadOptionLength { kind: 5, len: 6 })
    );
}

#[test]
fn unknown_option_is_skipped_by_its_length_must_6() {
    // Kind 0x22 of length 5, then MSS 1460, then EOL padding.
    let options = [0x22, 0x05, 0xaa, 0xbb, 0xcc, 0x02, 0x04, 0x05, 0xb4, 0x00, 0x00, 0x00];
    let bytes = raw(8, &options, b"xy");
    let segment = Segment::parse(&bytes).unwrap();
    assert_eq!(segment.header.options.mss, Some(1460));
    assert_eq!(segment.payload, b"xy");
}

#[test]
fn options_at_odd_alignment_are_parsed_must_64() {
    // NOP, then MSS at offset 1, then window scale at offset 5, then NOP NOP.
    let options = [0x01, 0x02, 0x04, 0x05, 0xb4, 0x03, 0x03, 0x07, 0x01, 0x01, 0x01, 0x01];
    let bytes = raw(8, &options, &[]);
    let segment = Segment::parse(&bytes).unwrap();
    assert_eq!(segment.header.options.mss, Some(1460));
    assert_eq!(segment.header.options.window_scale, Some(7));
}

#[test]
fn end_of_option_list_stops_parsing() {
    // EOL then garbage that would be a bad option: ignored.
    let options = [0x00, 0x22, 0x00, 0x00];
    assert!(Segment::parse(&raw(6, &options, &[])).is_ok());
}

#[test]
fn emitted_options_are_padded_with_zero_and_word_aligned_must_69() {
    let mut options = Options::NONE;
    options.mss = Some(1460);
    options.window_scale = Some(7);
    let header = TcpHeader {
        src_port: 1,
        dst_port: 2,
        seq: SeqNum::new(3),
        ack: SeqNum::new(0),
        flags: Flags::SYN,
        window: 100,
        urgent_ptr: 0,
        options,
    };
    let mut buf = [0xeeu8; 64];
    let len = header.emit(&[], SRC, DST, &mut buf).unwrap();
    assert_eq!(len, 28);
    assert_eq!(buf[12] >> 4, 7, "data offset counts the padded options");
    assert_eq!(&buf[20..28], &[0x02, 0x04, 0x05, 0xb4, 0x01, 0x03, 0x03, 0x07]);
}

#[test]
fn captured_linux_syn_verifies_and_reemits_identically_must_2_must_3() {
    // A SYN from 10.0.0.1:50000 to 10.0.0.2:80 with MSS 1460, SACK-permitted, timestamps and
    // window scale 7, laid out as Linux does; checksum computed independently by etherparse.
    let src = IpAddr::from([10, 0, 0, 1]);
    let dst = IpAddr::from([10, 0, 0, 2]);
    let mut bytes: Vec<u8> = vec![
        0xc3, 0x50, 0x00, 0x50, 0x12, 0x34, 0x56, 0x78, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02, 0xfa,
        0xf0, 0x00, 0x00, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x00, 0x01,
        0x02, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07,
    ];
    let (theirs, _) = etherparse::TcpHeader::from_slice(&bytes).unwrap();
    let checksum = theirs.calc_checksum_ipv4_raw([10, 0, 0, 1], [10, 0, 0, 2], &[]).unwrap();
    bytes[16..18].copy_from_slice(&checksum.to_be_bytes());
    let segment = Segment::parse_checked(&bytes, src, dst).unwrap();
    let options = segment.header.options;
    assert_eq!(options.mss, Some(1460));
    assert!(options.sack_permitted);
    assert_eq!(options.timestamps.map(|t| (t.tsval, t.tsecr)), Some((0x0001_0203, 0)));
    assert_eq!(options.window_scale, Some(7));
    assert_eq!(segment.header.flags, Flags::SYN);
    assert_eq!(segment.header.seq, SeqNum::new(0x1234_5678));
    bytes[16] ^= 0x01;
    assert!(matches!(
        Segment::parse_checked(&bytes, src, dst),
        Err(ParseError::BadChecksum { computed, .. }) if computed == checksum
    ));
}

#[test]
fn checksum_over_mixed_address_families_is_refused() {
    let v6 = IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(
        Segment::parse_checked(&raw(5, &[], &[]), SRC, v6),
        Err(ParseError::AddressFamilyMismatch)
    );
    let header = Segment::parse(&raw(5, &[], &[])).unwrap().header;
    assert_eq!(header.emit(&[], SRC, v6, &mut [0; 40]), Err(EmitError::AddressFamilyMismatch));
}

#[test]
fn flags_display_like_tcpdump() {
    assert_eq!(Flags::SYN.to_string(), "S");
    assert_eq!((Flags::SYN | Flags::ACK).to_string(), "S.");
    assert_eq!((Flags::FIN | Flags::ACK | Flags::PSH).to_string(), "FP.");
    assert_eq!((Flags::RST | Flags::ACK).to_string(), "R.");
    assert_eq!(Flags::EMPTY.to_string(), "none");
}

#[test]
fn ipv4_header_errors_are_typed() {
    assert_eq!(Ipv4Header::parse(&[0x45; 10]), Err(IpParseError::TooShort { len: 10 }));
    let mut packet = [0u8; 20];
    packet[0] = 0x65;
    assert_eq!(Ipv4Header::parse(&packet), Err(IpParseError::BadVersion { version: 6 }));
    packet[0] = 0x44;
    assert_eq!(Ipv4Header::parse(&packet), Err(IpParseError::BadHeaderLength { ihl: 4 }));
    packet[0] = 0x45;
    packet[3] = 40;
    assert_eq!(
        Ipv4Header::parse(&packet),
        Err(IpParseError::BadTotalLength { total_len: 40, available: 20 })
    );
    packet[3] = 20;
    assert!(matches!(Ipv4Header::parse(&packet), Err(IpParseError::BadChecksum { .. })));
}

#[test]
fn ipv4_fragment_is_recognised() {
    let header = Ipv4Header {
        src: [1, 2, 3, 4].into(),
        dst: [5, 6, 7, 8].into(),
        protocol: 6,
        ttl: 64,
        identification: 9,
        dont_fragment: false,
        more_fragments: true,
        fragment_offset: 0,
        total_len: 20,
        dscp_ecn: 0,
    };
    let mut buf = [0u8; 20];
    header.emit(&mut buf).unwrap();
    let (parsed, _) = Ipv4Header::parse(&buf).unwrap();
    assert!(parsed.is_fragment());
    // The checksum agrees with etherparse.
    let theirs = etherparse::Ipv4Header::from_slice(&buf).unwrap().0;
    assert_eq!(theirs.header_checksum, theirs.calc_header_checksum());
}
