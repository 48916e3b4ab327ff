//! Property tests of the wire format: parse(emit(x)) == x for every header and payload over
//! IPv4 and IPv6; parsing arbitrary bytes never panics and whatever parses re-emits to the same
//! segment; our checksum agrees with `etherparse`, an independent implementation (MUST-2/3);
//! a payload split anywhere emits the same bytes; IP headers round-trip.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use tcp_proto::SeqNum;
use tcp_proto::wire::ip::{Ipv4Header, Ipv6Header};
use tcp_proto::wire::{Flags, Options, SackBlock, SackBlocks, Segment, TcpHeader, Timestamps};

fn addresses() -> impl Strategy<Value = (IpAddr, IpAddr)> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<[u8; 4]>())
            .prop_map(|(a, b)| (IpAddr::from(Ipv4Addr::from(a)), IpAddr::from(Ipv4Addr::from(b)))),
        (any::<[u8; 16]>(), any::<[u8; 16]>())
            .prop_map(|(a, b)| (IpAddr::from(Ipv6Addr::from(a)), IpAddr::from(Ipv6Addr::from(b)))),
    ]
}

fn options() -> impl Strategy<Value = Options> {
    (
        proptest::option::of(any::<u16>()),
        proptest::option::of(any::<u8>()),
        any::<bool>(),
        proptest::option::of((any::<u32>(), any::<u32>())),
        proptest::collection::vec((any::<u32>(), any::<u32>()), 0..=4),
    )
        .prop_map(|(mss, window_scale, sack_permitted, timestamps, blocks)| {
            let mut sack_blocks = SackBlocks::new();
            for (left, right) in blocks {
                sack_blocks.push(SackBlock { left: SeqNum::new(left), right: SeqNum::new(right) });
            }
            Options {
                mss,
                window_scale,
                sack_permitted,
                sack_blocks,
                timestamps: timestamps.map(|(tsval, tsecr)| Timestamps { tsval, tsecr }),
            }
        })
        .prop_filter("options must fit 40 octets", |o| o.encoded_len() <= 40)
}

fn header() -> impl Strategy<Value = TcpHeader> {
    (
        any::<u16>(),
        any::<u16>(),
        any::<u32>(),
        any::<u32>(),
        any::<u8>(),
        any::<u16>(),
        any::<u16>(),
        options(),
    )
        .prop_map(|(src_port, dst_port, seq, ack, flags, window, urgent_ptr, options)| {
            TcpHeader {
                src_port,
                dst_port,
                seq: SeqNum::new(seq),
                ack: SeqNum::new(ack),
                flags: Flags::from_bits(flags),
                window,
                urgent_ptr,
                options,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn parse_of_emit_is_identity_must_2_must_3(
        header in header(),
        payload in proptest::collection::vec(any::<u8>(), 0..2000),
        (src, dst) in addresses(),
    ) {
        let mut buf = vec![0u8; 2100];
        let len = header.emit(&[&payload], src, dst, &mut buf).unwrap();
        prop_assert_eq!(len, header.header_len() + payload.len());
        let parsed = Segment::parse_checked(&buf[..len], src, dst).unwrap();
        prop_assert_eq!(parsed.header, header);
        prop_assert_eq!(parsed.payload, &payload[..]);
        prop_assert_eq!(
            parsed.seg_len() as usize,
            payload.len()
                + usize::from(header.flags.contains(Flags::SYN))
                + usize::from(header.flags.contains(Flags::FIN))
        );
    }

    #[test]
    fn any_single_bit_flip_fails_the_checksum_must_3(
        header in header(),
        payload in proptest::collection::vec(any::<u8>(), 0..200),
        (src, dst) in addresses(),
        bit in any::<usize>(),
    ) {
        let mut buf = vec![0u8; 300];
        let len = header.emit(&[&payload], src, dst, &mut buf).unwrap();
        let bit = bit % (len * 8);
        buf[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(Segment::parse_checked(&buf[..len], src, dst).is_err());
    }

    #[test]
    fn parse_of_arbitrary_bytes_never_panics_and_reemits_the_same_segment(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
        (src, dst) in addresses(),
    ) {
        let _ = Segment::parse_checked(&bytes, src, dst);
        if let Ok(first) = Segment::parse(&bytes) {
            let mut buf = vec![0u8; 400];
            if let Ok(len) = first.emit(src, dst, &mut buf) {
                let again = Segment::parse_checked(&buf[..len], src, dst).unwrap();
                prop_assert_eq!(again, first);
            }
        }
    }

    #[test]
    fn checksum_agrees_with_etherparse(
        header in header(),
        payload in proptest::collection::vec(any::<u8>(), 0..1500),
        (src, dst) in addresses(),
    ) {
        let mut buf = vec![0u8; 1600];
        let len = header.emit(&[&payload], src, dst, &mut buf).unwrap();
        let (theirs, their_payload) = etherparse::TcpHeader::from_slice(&buf[..len]).unwrap();
        prop_assert_eq!(their_payload, &payload[..]);
        prop_assert_eq!(theirs.source_port, header.src_port);
        prop_assert_eq!(theirs.destination_port, header.dst_port);
        prop_assert_eq!(theirs.sequence_number, header.seq.get());
        prop_assert_eq!(theirs.acknowledgment_number, header.ack.get());
        prop_assert_eq!(theirs.window_size, header.window);
        prop_assert_eq!(theirs.syn, header.flags.contains(Flags::SYN));
        prop_assert_eq!(theirs.fin, header.flags.contains(Flags::FIN));
        let expected = match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                theirs.calc_checksum_ipv4_raw(s.octets(), d.octets(), their_payload).unwrap()
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                theirs.calc_checksum_ipv6_raw(s.octets(), d.octets(), their_payload).unwrap()
            }
            _ => unreachable!("the strategy pairs one family"),
        };
        prop_assert_eq!(theirs.checksum, expected);
    }

    #[test]
    fn payload_split_anywhere_emits_identical_bytes(
        header in header(),
        payload in proptest::collection::vec(any::<u8>(), 0..600),
        split in any::<usize>(),
        (src, dst) in addresses(),
    ) {
        let split = if payload.is_empty() { 0 } else { split % (payload.len() + 1) };
        let (a, b) = payload.split_at(split);
        let mut whole = vec![0u8; 700];
        let mut pieces = vec![0u8; 700];
        let n = header.emit(&[&payload], src, dst, &mut whole).unwrap();
        let m = header.emit(&[a, b], src, dst, &mut pieces).unwrap();
        prop_assert_eq!(&whole[..n], &pieces[..m]);
    }

    #[test]
    fn too_small_buffer_is_an_error_never_a_truncated_segment(
        header in header(),
        payload in proptest::collection::vec(any::<u8>(), 0..100),
        short in 0usize..160,
    ) {
        let src = IpAddr::from([10, 0, 0, 1]);
        let dst = IpAddr::from([10, 0, 0, 2]);
        let needed = header.header_len() + payload.len();
        let mut buf = vec![0u8; short.min(needed.saturating_sub(1))];
        prop_assert!(header.emit(&[&payload], src, dst, &mut buf).is_err());
    }

    #[test]
    fn ipv4_header_round_trips_and_arbitrary_bytes_never_panic(
        src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(), ttl in any::<u8>(),
        identification in any::<u16>(), dont_fragment in any::<bool>(),
        payload in proptest::collection::vec(any::<u8>(), 0..100),
        junk in proptest::collection::vec(any::<u8>(), 0..80),
    ) {
        let header = Ipv4Header {
            src: src.into(), dst: dst.into(), protocol: 6, ttl, identification, dont_fragment,
            more_fragments: false, fragment_offset: 0,
            total_len: (20 + payload.len()) as u16, dscp_ecn: 0,
        };
        let mut buf = vec![0u8; 20 + payload.len()];
        header.emit(&mut buf).unwrap();
        buf[20..].copy_from_slice(&payload);
        let (parsed, body) = Ipv4Header::parse(&buf).unwrap();
        prop_assert_eq!(parsed, header);
        prop_assert_eq!(body, &payload[..]);
        let _ = Ipv4Header::parse(&junk);
    }

    #[test]
    fn ipv6_header_round_trips_and_arbitrary_bytes_never_panic(
        src in any::<[u8; 16]>(), dst in any::<[u8; 16]>(), hop_limit in any::<u8>(),
        traffic_class in any::<u8>(), flow_label in 0u32..(1 << 20),
        payload in proptest::collection::vec(any::<u8>(), 0..100),
        junk in proptest::collection::vec(any::<u8>(), 0..80),
    ) {
        let header = Ipv6Header {
            src: src.into(), dst: dst.into(), next_header: 6, hop_limit,
            payload_len: payload.len() as u16, traffic_class, flow_label,
        };
        let mut buf = vec![0u8; 40 + payload.len()];
        header.emit(&mut buf).unwrap();
        buf[40..].copy_from_slice(&payload);
        let (parsed, body) = Ipv6Header::parse(&buf).unwrap();
        prop_assert_eq!(parsed, header);
        prop_assert_eq!(body, &payload[..]);
        let _ = Ipv6Header::parse(&junk);
    }
}
