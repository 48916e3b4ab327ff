//! Property tests of the wire format (RFC 9293 §3.1, §3.2):
//!
//! - parse(emit(x)) == x for every header and payload over IPv4 and IPv6 (MUST-2, MUST-3);
//! - parsing arbitrary bytes never panics, and whatever parses re-emits to the same segment;
//! - option lists of known and unknown kinds at any alignment parse to what a simple model of
//!   them says (MUST-6, MUST-64), and garbage options fail only as `BadOptionLength` (MUST-7);
//! - our checksum agrees with `etherparse`, an independent implementation, both ways;
//! - a payload split anywhere (odd offsets included) emits the same bytes;
//! - the minimal IP headers round-trip, agree with `etherparse`, and never panic on junk;
//! - ICMP errors built by `etherparse` decode to what they quote, and the ICMP parsers never
//!   panic on junk (MUST-54).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::TcpOptionElement;
use proptest::prelude::*;
use tcp_proto::wire::checksum::Checksum;
use tcp_proto::wire::icmp::IcmpMessage;
use tcp_proto::wire::ip::{Ipv4Header, Ipv6Header, PROTOCOL_TCP};
use tcp_proto::wire::{
    Flags, Options, ParseError, SackBlock, SackBlocks, Segment, TcpHeader, Timestamps,
};
use tcp_proto::{IcmpError, SeqNum};

const MAX_OPTIONS_LEN: usize = 40;

fn addresses() -> impl Strategy<Value = (IpAddr, IpAddr)> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<[u8; 4]>())
            .prop_map(|(a, b)| (IpAddr::from(Ipv4Addr::from(a)), IpAddr::from(Ipv4Addr::from(b)))),
        (any::<[u8; 16]>(), any::<[u8; 16]>())
            .prop_map(|(a, b)| (IpAddr::from(Ipv6Addr::from(a)), IpAddr::from(Ipv6Addr::from(b)))),
    ]
}

/// Any options that fit the 40-octet area: SACK blocks are added only while they fit, so with
/// other options there are fewer of them (and the packed layout is exercised too).
fn options() -> impl Strategy<Value = Options> {
    (
        proptest::option::of(any::<u16>()),
        proptest::option::of(any::<u8>()),
        any::<bool>(),
        proptest::option::of((any::<u32>(), any::<u32>())),
        proptest::collection::vec((any::<u32>(), any::<u32>()), 0..=SackBlocks::MAX),
    )
        .prop_map(|(mss, window_scale, sack_permitted, timestamps, blocks)| {
            let mut options = Options {
                mss,
                window_scale,
                sack_permitted,
                sack_blocks: SackBlocks::new(),
                timestamps: timestamps.map(|(tsval, tsecr)| Timestamps { tsval, tsecr }),
            };
            for (left, right) in blocks {
                let mut more = options;
                more.sack_blocks
                    .push(SackBlock { left: SeqNum::new(left), right: SeqNum::new(right) });
                if more.encoded_len() > MAX_OPTIONS_LEN {
                    break;
                }
                options = more;
            }
            assert!(options.encoded_len() <= MAX_OPTIONS_LEN);
            options
        })
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

/// One entry of an options list, as a peer might send it.
#[derive(Clone, Debug)]
enum OptionToken {
    Eol,
    Nop,
    Mss(u16),
    WindowScale(u8),
    SackPermitted,
    Timestamps(u32, u32),
    Sack(Vec<(u32, u32)>),
    /// A kind this stack does not implement, with its body (MUST-6).
    Unknown(u8, Vec<u8>),
}

impl OptionToken {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Eol => out.push(0),
            Self::Nop => out.push(1),
            Self::Mss(mss) => {
                out.extend([2, 4]);
                out.extend(mss.to_be_bytes());
            }
            Self::WindowScale(shift) => out.extend([3, 3, *shift]),
            Self::SackPermitted => out.extend([4, 2]),
            Self::Timestamps(tsval, tsecr) => {
                out.extend([8, 10]);
                out.extend(tsval.to_be_bytes());
                out.extend(tsecr.to_be_bytes());
            }
            Self::Sack(blocks) => {
                out.extend([5, 2 + 8 * blocks.len() as u8]);
                for (left, right) in blocks {
                    out.extend(left.to_be_bytes());
                    out.extend(right.to_be_bytes());
                }
            }
            Self::Unknown(kind, body) => {
                out.extend([*kind, 2 + body.len() as u8]);
                out.extend(body);
            }
        }
    }

    /// What parsing this token does to the options so far; `false` when parsing stops (EOL).
    fn apply(&self, options: &mut Options) -> bool {
        match self {
            Self::Eol => return false,
            Self::Nop | Self::Unknown(..) => {}
            Self::Mss(mss) => options.mss = Some(*mss),
            Self::WindowScale(shift) => options.window_scale = Some(*shift),
            Self::SackPermitted => options.sack_permitted = true,
            Self::Timestamps(tsval, tsecr) => {
                options.timestamps = Some(Timestamps { tsval: *tsval, tsecr: *tsecr });
            }
            Self::Sack(blocks) => {
                let mut sack = SackBlocks::new();
                for &(left, right) in blocks {
                    sack.push(SackBlock { left: SeqNum::new(left), right: SeqNum::new(right) });
                }
                options.sack_blocks = sack;
            }
        }
        true
    }
}

fn option_token() -> impl Strategy<Value = OptionToken> {
    prop_oneof![
        1 => Just(OptionToken::Eol),
        4 => Just(OptionToken::Nop),
        2 => any::<u16>().prop_map(OptionToken::Mss),
        2 => any::<u8>().prop_map(OptionToken::WindowScale),
        2 => Just(OptionToken::SackPermitted),
        2 => (any::<u32>(), any::<u32>()).prop_map(|(v, e)| OptionToken::Timestamps(v, e)),
        2 => proptest::collection::vec((any::<u32>(), any::<u32>()), 1..=4)
            .prop_map(OptionToken::Sack),
        3 => (
            prop_oneof![Just(6u8), Just(7u8), 9u8..=255],
            proptest::collection::vec(any::<u8>(), 0..=8),
        )
            .prop_map(|(kind, body)| OptionToken::Unknown(kind, body)),
    ]
}

/// Encodes tokens while they fit the options area, zero-padded to a word (MUST-69); returns the
/// area and the options a correct parser finds in it.
fn encode_tokens(tokens: &[OptionToken]) -> (Vec<u8>, Options) {
    let mut area = Vec::new();
    let mut model = Options::NONE;
    let mut parsing = true;
    for token in tokens {
        let mut bytes = Vec::new();
        token.encode(&mut bytes);
        if area.len() + bytes.len() > MAX_OPTIONS_LEN {
            break;
        }
        area.extend(bytes);
        parsing = parsing && token.apply(&mut model);
    }
    area.resize(area.len().div_ceil(4) * 4, 0);
    (area, model)
}

/// A segment whose fixed header comes from `fixed`, with the data offset set to cover `area`.
fn segment_bytes(fixed: [u8; 20], area: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut bytes = fixed.to_vec();
    bytes[12] = (((20 + area.len()) / 4) as u8) << 4 | (bytes[12] & 0x0f);
    bytes.extend_from_slice(area);
    bytes.extend_from_slice(payload);
    bytes
}

fn etherparse_checksum(
    theirs: &etherparse::TcpHeader,
    src: IpAddr,
    dst: IpAddr,
    payload: &[u8],
) -> u16 {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            theirs.calc_checksum_ipv4_raw(s.octets(), d.octets(), payload).unwrap()
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            theirs.calc_checksum_ipv6_raw(s.octets(), d.octets(), payload).unwrap()
        }
        _ => unreachable!("the strategy pairs one family"),
    }
}

fn etherparse_options(options: &Options) -> Vec<TcpOptionElement> {
    let mut elements = Vec::new();
    if let Some(mss) = options.mss {
        elements.push(TcpOptionElement::MaximumSegmentSize(mss));
    }
    if let Some(shift) = options.window_scale {
        elements.push(TcpOptionElement::WindowScale(shift));
    }
    if options.sack_permitted {
        elements.push(TcpOptionElement::SelectiveAcknowledgementPermitted);
    }
    if let Some(ts) = options.timestamps {
        elements.push(TcpOptionElement::Timestamp(ts.tsval, ts.tsecr));
    }
    if let Some((first, rest)) = options.sack_blocks.as_slice().split_first() {
        let mut others = [None; 3];
        for (slot, block) in others.iter_mut().zip(rest) {
            *slot = Some((block.left.get(), block.right.get()));
        }
        elements.push(TcpOptionElement::SelectiveAcknowledgement(
            (first.left.get(), first.right.get()),
            others,
        ));
    }
    elements
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
        prop_assert_eq!(header.header_len() % 4, 0);
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
        prop_assert!(
            matches!(
                Segment::parse_checked(&buf[..len], src, dst),
                Err(ParseError::BadChecksum { .. })
            ),
            "flipped bit {} went unnoticed", bit
        );
    }

    #[test]
    fn parse_of_arbitrary_bytes_never_panics_and_reemits_the_same_segment(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
        (src, dst) in addresses(),
    ) {
        let _ = Segment::parse_checked(&bytes, src, dst);
        if let Ok(first) = Segment::parse(&bytes) {
            let mut buf = vec![0u8; 400];
            let len = first.emit(src, dst, &mut buf).unwrap();
            let again = Segment::parse_checked(&buf[..len], src, dst).unwrap();
            prop_assert_eq!(again, first);
        }
    }

    #[test]
    fn known_and_unknown_options_at_any_alignment_parse_like_the_model_must_6_must_64(
        fixed in any::<[u8; 20]>(),
        tokens in proptest::collection::vec(option_token(), 0..12),
        payload in proptest::collection::vec(any::<u8>(), 0..40),
        (src, dst) in addresses(),
    ) {
        let (area, model) = encode_tokens(&tokens);
        let bytes = segment_bytes(fixed, &area, &payload);
        let parsed = Segment::parse(&bytes).unwrap();
        prop_assert_eq!(parsed.header.options, model);
        prop_assert_eq!(parsed.payload, &payload[..]);
        // Whatever fitted the options area re-emits, in our layout, to the same segment.
        let mut buf = vec![0u8; 120];
        let len = parsed.emit(src, dst, &mut buf).unwrap();
        prop_assert_eq!(Segment::parse_checked(&buf[..len], src, dst).unwrap(), parsed);
    }

    #[test]
    fn garbage_options_fail_only_as_bad_option_length_must_7(
        fixed in any::<[u8; 20]>(),
        words in 0usize..=10,
        area in proptest::collection::vec(
            prop_oneof![Just(0u8), Just(1), Just(2), Just(3), Just(4), Just(5), Just(8), any::<u8>()],
            40,
        ),
        (src, dst) in addresses(),
    ) {
        let bytes = segment_bytes(fixed, &area[..words * 4], b"payload");
        match Segment::parse(&bytes) {
            Ok(parsed) => {
                prop_assert_eq!(parsed.payload, b"payload");
                let mut buf = vec![0u8; 120];
                let len = parsed.emit(src, dst, &mut buf).unwrap();
                prop_assert_eq!(Segment::parse_checked(&buf[..len], src, dst).unwrap(), parsed);
            }
            Err(ParseError::BadOptionLength { .. }) => {}
            Err(other) => prop_assert!(false, "unexpected {:?}", other),
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
        prop_assert_eq!(theirs.urgent_pointer, header.urgent_ptr);
        prop_assert_eq!(theirs.syn, header.flags.contains(Flags::SYN));
        prop_assert_eq!(theirs.fin, header.flags.contains(Flags::FIN));
        prop_assert_eq!(theirs.cwr, header.flags.contains(Flags::CWR));
        prop_assert_eq!(theirs.checksum, etherparse_checksum(&theirs, src, dst, their_payload));
        // etherparse reads our options as the same values.
        let mut read_back = Options::NONE;
        for element in theirs.options_iterator() {
            match element.unwrap() {
                TcpOptionElement::Noop => {}
                TcpOptionElement::MaximumSegmentSize(mss) => read_back.mss = Some(mss),
                TcpOptionElement::WindowScale(shift) => read_back.window_scale = Some(shift),
                TcpOptionElement::SelectiveAcknowledgementPermitted => {
                    read_back.sack_permitted = true;
                }
                TcpOptionElement::Timestamp(tsval, tsecr) => {
                    read_back.timestamps = Some(Timestamps { tsval, tsecr });
                }
                TcpOptionElement::SelectiveAcknowledgement(first, others) => {
                    for (left, right) in std::iter::once(first).chain(others.into_iter().flatten()) {
                        read_back.sack_blocks.push(SackBlock {
                            left: SeqNum::new(left),
                            right: SeqNum::new(right),
                        });
                    }
                }
            }
        }
        prop_assert_eq!(read_back, header.options);
    }

    #[test]
    fn segment_emitted_by_etherparse_passes_our_checksum_check_must_3(
        header in header(),
        payload in proptest::collection::vec(any::<u8>(), 0..600),
        (src, dst) in addresses(),
    ) {
        let mut theirs = etherparse::TcpHeader::new(
            header.src_port,
            header.dst_port,
            header.seq.get(),
            header.window,
        );
        theirs.acknowledgment_number = header.ack.get();
        theirs.urgent_pointer = header.urgent_ptr;
        let flags = header.flags;
        theirs.fin = flags.contains(Flags::FIN);
        theirs.syn = flags.contains(Flags::SYN);
        theirs.rst = flags.contains(Flags::RST);
        theirs.psh = flags.contains(Flags::PSH);
        theirs.ack = flags.contains(Flags::ACK);
        theirs.urg = flags.contains(Flags::URG);
        theirs.ece = flags.contains(Flags::ECE);
        theirs.cwr = flags.contains(Flags::CWR);
        // etherparse lays options out its own way (and may need more than our 40 octets).
        prop_assume!(theirs.set_options(&etherparse_options(&header.options)).is_ok());
        theirs.checksum = etherparse_checksum(&theirs, src, dst, &payload);
        let mut bytes = theirs.to_bytes().to_vec();
        bytes.extend_from_slice(&payload);
        let parsed = Segment::parse_checked(&bytes, src, dst).unwrap();
        prop_assert_eq!(parsed.header, header);
        prop_assert_eq!(parsed.payload, &payload[..]);
    }

    #[test]
    fn payload_split_anywhere_emits_identical_bytes(
        header in header(),
        payload in proptest::collection::vec(any::<u8>(), 0..600),
        first in any::<usize>(),
        second in any::<usize>(),
        (src, dst) in addresses(),
    ) {
        let first = first % (payload.len() + 1);
        let second = first + second % (payload.len() - first + 1);
        let (a, rest) = payload.split_at(first);
        let (b, c) = rest.split_at(second - first);
        let mut whole = vec![0u8; 700];
        let mut two = vec![0u8; 700];
        let mut three = vec![0u8; 700];
        let n = header.emit(&[&payload], src, dst, &mut whole).unwrap();
        prop_assert_eq!(header.emit(&[a, rest], src, dst, &mut two), Ok(n));
        prop_assert_eq!(header.emit(&[a, b, c], src, dst, &mut three), Ok(n));
        prop_assert_eq!(&whole[..n], &two[..n]);
        prop_assert_eq!(&whole[..n], &three[..n]);
    }

    #[test]
    fn checksum_of_pieces_equals_checksum_of_the_whole(
        data in proptest::collection::vec(any::<u8>(), 0..300),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let mut whole = Checksum::new();
        whole.add_bytes(&data);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (data.len() + 1)).collect();
        cuts.sort_unstable();
        let mut pieces = Checksum::new();
        let mut start = 0;
        for cut in cuts.into_iter().chain([data.len()]) {
            pieces.add_bytes(&data[start..cut]);
            start = cut;
        }
        prop_assert_eq!(pieces.finish(), whole.finish());
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
    fn ipv4_header_round_trips_and_agrees_with_etherparse(
        src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(), ttl in any::<u8>(),
        protocol in any::<u8>(), identification in any::<u16>(), dont_fragment in any::<bool>(),
        more_fragments in any::<bool>(), fragment_offset in 0u16..0x2000, dscp_ecn in any::<u8>(),
        payload in proptest::collection::vec(any::<u8>(), 0..100),
        trailer in proptest::collection::vec(any::<u8>(), 0..8),
    ) {
        let header = Ipv4Header {
            src: src.into(), dst: dst.into(), protocol, ttl, identification, dont_fragment,
            more_fragments, fragment_offset,
            total_len: (20 + payload.len()) as u16, dscp_ecn,
        };
        let mut buf = vec![0u8; 20];
        prop_assert_eq!(header.emit(&mut buf), Ok(20));
        let (theirs, _) = etherparse::Ipv4Header::from_slice(&buf).unwrap();
        prop_assert_eq!(theirs.header_checksum, theirs.calc_header_checksum());
        prop_assert_eq!(theirs.identification, identification);
        prop_assert_eq!(theirs.fragment_offset.value(), fragment_offset);
        buf.extend_from_slice(&payload);
        buf.extend_from_slice(&trailer);
        let (parsed, body) = Ipv4Header::parse(&buf).unwrap();
        prop_assert_eq!(parsed, header);
        prop_assert_eq!(body, &payload[..]);
        prop_assert_eq!(parsed.is_fragment(), more_fragments || fragment_offset != 0);
    }

    #[test]
    fn ipv6_header_round_trips(
        src in any::<[u8; 16]>(), dst in any::<[u8; 16]>(), hop_limit in any::<u8>(),
        next_header in any::<u8>(), traffic_class in any::<u8>(), flow_label in 0u32..(1 << 20),
        payload in proptest::collection::vec(any::<u8>(), 0..100),
        trailer in proptest::collection::vec(any::<u8>(), 0..8),
    ) {
        let header = Ipv6Header {
            src: src.into(), dst: dst.into(), next_header, hop_limit,
            payload_len: payload.len() as u16, traffic_class, flow_label,
        };
        let mut buf = vec![0u8; 40];
        prop_assert_eq!(header.emit(&mut buf), Ok(40));
        let (theirs, _) = etherparse::Ipv6Header::from_slice(&buf).unwrap();
        prop_assert_eq!(theirs.traffic_class, traffic_class);
        prop_assert_eq!(theirs.flow_label.value(), flow_label);
        buf.extend_from_slice(&payload);
        buf.extend_from_slice(&trailer);
        let (parsed, body) = Ipv6Header::parse(&buf).unwrap();
        prop_assert_eq!(parsed, header);
        prop_assert_eq!(body, &payload[..]);
    }

    #[test]
    fn ip_parsers_never_panic_on_arbitrary_bytes(
        junk in proptest::collection::vec(any::<u8>(), 0..120),
        version_ihl in any::<u8>(),
    ) {
        let mut bytes = junk.clone();
        if let Some(first) = bytes.first_mut() {
            *first = version_ihl;
        }
        for input in [&junk, &bytes] {
            if let Ok((header, payload)) = Ipv4Header::parse(input) {
                prop_assert!(usize::from(header.total_len) <= input.len());
                prop_assert!(payload.len() < usize::from(header.total_len));
            }
            if let Ok((header, payload)) = Ipv6Header::parse(input) {
                prop_assert_eq!(payload.len(), usize::from(header.payload_len));
            }
        }
    }

    #[test]
    fn icmp_errors_built_by_etherparse_decode_to_the_quoted_segment_must_54(
        us in any::<[u8; 4]>(), peer in any::<[u8; 4]>(), router in any::<[u8; 4]>(),
        us6 in any::<[u8; 16]>(), peer6 in any::<[u8; 16]>(), router6 in any::<[u8; 16]>(),
        mtu in 68u16..1500, mtu6 in any::<u32>(),
        tcp in proptest::collection::vec(any::<u8>(), 8..40),
    ) {
        // Fragmentation needed (RFC 1191) about a 1500-octet packet we sent.
        let quoted = Ipv4Header {
            src: us.into(), dst: peer.into(), protocol: PROTOCOL_TCP, ttl: 63,
            identification: 1, dont_fragment: true, more_fragments: false, fragment_offset: 0,
            total_len: 1500, dscp_ecn: 0,
        };
        let mut quoted_bytes = vec![0u8; 20];
        quoted.emit(&mut quoted_bytes).unwrap();
        quoted_bytes.extend_from_slice(&tcp);
        let [m0, m1] = mtu.to_be_bytes();
        let builder =
            etherparse::PacketBuilder::ipv4(router, us, 64).icmpv4_raw(3, 4, [0, 0, m0, m1]);
        let mut packet = Vec::new();
        builder.write(&mut packet, &quoted_bytes).unwrap();
        let (ip, icmp) = Ipv4Header::parse(&packet).unwrap();
        let message = IcmpMessage::parse_v4(icmp, ip.dst).unwrap();
        prop_assert_eq!(message.error, IcmpError::PacketTooBig { mtu });
        prop_assert_eq!(message.quoted_src, IpAddr::from(us));
        prop_assert_eq!(message.quoted_dst, IpAddr::from(peer));
        prop_assert_eq!(message.quoted_tcp, &tcp[..]);
        // Packet too big (RFC 8201) about an IPv6 segment we sent.
        let quoted = Ipv6Header {
            src: us6.into(), dst: peer6.into(), next_header: PROTOCOL_TCP, hop_limit: 1,
            payload_len: 1460, traffic_class: 0, flow_label: 0,
        };
        let mut quoted_bytes = vec![0u8; 40];
        quoted.emit(&mut quoted_bytes).unwrap();
        quoted_bytes.extend_from_slice(&tcp);
        let builder = etherparse::PacketBuilder::ipv6(router6, us6, 64)
            .icmpv6(etherparse::Icmpv6Type::PacketTooBig { mtu: mtu6 });
        let mut packet = Vec::new();
        builder.write(&mut packet, &quoted_bytes).unwrap();
        let (ip, icmp) = Ipv6Header::parse(&packet).unwrap();
        let message = IcmpMessage::parse_v6(icmp, ip.src, ip.dst).unwrap();
        let expected = u16::try_from(mtu6).unwrap_or(u16::MAX);
        prop_assert_eq!(message.error, IcmpError::PacketTooBig { mtu: expected });
        prop_assert_eq!(message.quoted_src, IpAddr::from(us6));
        prop_assert_eq!(message.quoted_tcp, &tcp[..]);
    }

    #[test]
    fn icmp_parsers_never_panic_on_arbitrary_bytes(
        junk in proptest::collection::vec(any::<u8>(), 0..120),
        icmp_type in prop_oneof![Just(3u8), Just(1), Just(2), Just(11), any::<u8>()],
        quoted_version in prop_oneof![Just(0x45u8), Just(0x60), any::<u8>()],
        addresses in any::<([u8; 4], [u8; 16], [u8; 16])>(),
    ) {
        // Junk as it is, and junk shaped like an error that quotes an IP header, with a valid
        // checksum so the parsers look past it.
        let (us, router6, us6) = addresses;
        let mut shaped = junk.clone();
        if shaped.len() < 8 {
            shaped.resize(8, 0);
        }
        shaped[0] = icmp_type;
        if let Some(version) = shaped.get_mut(8) {
            *version = quoted_version;
        }
        let with_checksum = |mut bytes: Vec<u8>, mut sum: Checksum| {
            bytes[2] = 0;
            bytes[3] = 0;
            sum.add_bytes(&bytes);
            bytes[2..4].copy_from_slice(&sum.finish().to_be_bytes());
            bytes
        };
        let shaped_v4 = with_checksum(shaped.clone(), Checksum::new());
        let pseudo = tcp_proto::wire::checksum::pseudo_header(
            IpAddr::from(router6),
            IpAddr::from(us6),
            58,
            shaped.len() as u32,
        )
        .unwrap();
        let shaped_v6 = with_checksum(shaped, pseudo);
        for input in [&junk, &shaped_v4, &shaped_v6] {
            if let Ok(message) = IcmpMessage::parse_v4(input, us.into()) {
                prop_assert_eq!(message.quoted_src, IpAddr::from(us));
                prop_assert!(message.quoted_tcp.len() >= 8);
            }
            if let Ok(message) = IcmpMessage::parse_v6(input, router6.into(), us6.into()) {
                prop_assert_eq!(message.quoted_src, IpAddr::from(us6));
                prop_assert!(message.quoted_tcp.len() >= 8);
            }
        }
    }
}
