//! Checksum offload (`Config::checksum`): what an endpoint sends and accepts when the device
//! computes or verifies TCP checksums, and that the defaults still compute every checksum
//! (MUST-2) and drop every segment whose checksum is wrong (MUST-3).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use tcp_proto::wire::checksum::{
    Checksum, ChecksumCapabilities, RxChecksum, TxChecksum, pseudo_header,
};
use tcp_proto::wire::{Flags, Options, PROTOCOL_TCP, Segment, TcpHeader};
use tcp_proto::{Config, Endpoint, EndpointConfig, Instant, SeqNum};

const CLIENT_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const SERVER_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
const SERVER: SocketAddr = SocketAddr::new(SERVER_IP, 80);
const STRANGER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 9, 9, 9)), 5555);

fn endpoint(secret: u8, checksum: ChecksumCapabilities) -> Endpoint {
    let mut connection = Config::new([secret; 16]);
    connection.checksum = checksum;
    Endpoint::new(EndpointConfig::new(connection, [secret.wrapping_add(100); 16]))
}

fn syn_from_stranger() -> TcpHeader {
    TcpHeader {
        src_port: STRANGER.port(),
        dst_port: SERVER.port(),
        seq: SeqNum::new(100),
        ack: SeqNum::new(0),
        flags: Flags::SYN,
        window: 1000,
        urgent_ptr: 0,
        options: Options::NONE,
    }
}

/// A SYN from the stranger whose checksum field is off by one bit.
fn syn_with_a_wrong_checksum() -> Vec<u8> {
    let mut bytes = vec![0u8; 20];
    let len = syn_from_stranger().emit(&[], STRANGER.ip(), SERVER_IP, &mut bytes).unwrap();
    assert_eq!(len, 20);
    bytes[17] ^= 0x01;
    assert!(Segment::parse_checked(&bytes, STRANGER.ip(), SERVER_IP).is_err());
    bytes
}

/// Every segment the endpoint has to send: (header, bytes).
fn drain(endpoint: &mut Endpoint, now: Instant) -> Vec<(TcpHeader, Vec<u8>)> {
    let mut buf = vec![0u8; 2000];
    let mut out = Vec::new();
    while let Some(tx) = endpoint.poll_transmit(now, &mut buf).unwrap() {
        let bytes = buf[..tx.len].to_vec();
        out.push((Segment::parse(&bytes).unwrap().header, bytes));
    }
    out
}

fn field(bytes: &[u8]) -> u16 {
    u16::from_be_bytes([bytes[16], bytes[17]])
}

#[test]
fn verify_drops_and_counts_a_segment_with_a_wrong_checksum_must_3() {
    let mut ep = endpoint(3, ChecksumCapabilities::default());
    ep.listen(SERVER, 8).unwrap();
    ep.handle_segment(Instant::ZERO, STRANGER.ip(), SERVER_IP, &syn_with_a_wrong_checksum());
    assert_eq!(ep.counters().dropped_malformed, 1);
    assert!(drain(&mut ep, Instant::ZERO).is_empty());
}

#[test]
fn trust_accepts_a_segment_with_a_wrong_checksum() {
    let caps = ChecksumCapabilities { rx: RxChecksum::Trust, ..ChecksumCapabilities::default() };
    let mut ep = endpoint(3, caps);
    ep.listen(SERVER, 8).unwrap();
    ep.handle_segment(Instant::ZERO, STRANGER.ip(), SERVER_IP, &syn_with_a_wrong_checksum());
    assert_eq!(ep.counters().dropped_malformed, 0);
    let out = drain(&mut ep, Instant::ZERO);
    assert_eq!(out.len(), 1);
    let (header, bytes) = &out[0];
    assert_eq!((header.flags, header.ack.get()), (Flags::SYN | Flags::ACK, 101));
    // Its own transmit checksum is still computed (tx is Compute).
    assert!(Segment::parse_checked(bytes, SERVER_IP, STRANGER.ip()).is_ok());
}

/// Trusting the device's checksum does not trust the caller's addresses: a segment from an
/// IPv4 source to an IPv6 destination (a caller's mistake; one IP header cannot carry both)
/// is dropped as malformed, whether it would reach a wildcard listener or draw a RST from a
/// closed port. No TCB takes it and no reply is queued that could not be written (a reply
/// needs a pseudo-header of one family), so the endpoint's output keeps working.
#[test]
fn trust_still_refuses_addresses_of_two_families() {
    let caps = ChecksumCapabilities { rx: RxChecksum::Trust, ..ChecksumCapabilities::default() };
    let mut ep = endpoint(3, caps);
    let any_v6 = SocketAddr::new(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), 80);
    ep.listen(any_v6, 8).unwrap();
    let v6_dst = IpAddr::V6(std::net::Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2));
    let mut syn = vec![0u8; 20];
    syn_from_stranger().emit(&[], STRANGER.ip(), SERVER_IP, &mut syn).unwrap();
    ep.handle_segment(Instant::ZERO, STRANGER.ip(), v6_dst, &syn);
    assert_eq!(ep.counters().dropped_malformed, 1);
    // The same to a port nobody listens on: no RST either.
    let mut stray = syn.clone();
    stray[2..4].copy_from_slice(&81u16.to_be_bytes());
    ep.handle_segment(Instant::ZERO, STRANGER.ip(), v6_dst, &stray);
    assert_eq!(ep.counters().dropped_malformed, 2);
    assert!(drain(&mut ep, Instant::ZERO).is_empty());
    // A well-formed SYN of one family is still answered.
    let client_v6 = IpAddr::V6(std::net::Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1));
    let mut good = vec![0u8; 20];
    syn_from_stranger().emit(&[], client_v6, v6_dst, &mut good).unwrap();
    ep.handle_segment(Instant::ZERO, client_v6, v6_dst, &good);
    let out = drain(&mut ep, Instant::ZERO);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].0.flags, out[0].0.ack.get()), (Flags::SYN | Flags::ACK, 101));
}

#[test]
fn tx_none_leaves_the_field_zero_on_connection_segments_and_stray_replies() {
    let mut client = endpoint(1, ChecksumCapabilities::DEVICE);
    let mut server = endpoint(2, ChecksumCapabilities::DEVICE);
    server.listen(SERVER, 8).unwrap();
    let now = Instant::from_millis(1);
    let handle = client.connect(now, CLIENT_IP, SERVER).unwrap();
    let mut fields = Vec::new();
    let mut sent_data = false;
    for _ in 0..20 {
        let mut moved = false;
        for (header, bytes) in drain(&mut client, now) {
            fields.push((header.flags, field(&bytes)));
            server.handle_segment(now, CLIENT_IP, SERVER_IP, &bytes);
            moved = true;
        }
        for (header, bytes) in drain(&mut server, now) {
            fields.push((header.flags, field(&bytes)));
            client.handle_segment(now, SERVER_IP, CLIENT_IP, &bytes);
            moved = true;
        }
        if !moved && !sent_data {
            client.send(now, handle, b"hello").unwrap();
            sent_data = true;
        } else if !moved {
            break;
        }
    }
    // SYN, SYN-ACK, ACK, data (its ACK is delayed): every field left for the device, and the
    // segments (checksum 0, trusted) still went through.
    assert_eq!(fields.len(), 4, "{fields:?}");
    assert!(fields.iter().all(|&(_, field)| field == 0), "{fields:?}");
    let server_handle = server.accept(SERVER).unwrap().expect("the handshake completed");
    let mut buf = [0u8; 16];
    assert_eq!(server.recv(server_handle, &mut buf), Ok(5));
    assert_eq!(&buf[..5], b"hello");

    // A reply to a stray (an ACK to a port nobody listens on) is left for the device too.
    let mut ack = syn_from_stranger();
    (ack.flags, ack.dst_port, ack.ack) = (Flags::ACK, 81, SeqNum::new(777));
    let mut bytes = vec![0u8; 20];
    ack.emit(&[], STRANGER.ip(), SERVER_IP, &mut bytes).unwrap();
    server.handle_segment(now, STRANGER.ip(), SERVER_IP, &bytes);
    let replies = drain(&mut server, now);
    assert_eq!(replies.len(), 1);
    assert_eq!((replies[0].0.flags, field(&replies[0].1)), (Flags::RST, 0));
}

#[test]
fn tx_pseudo_header_holds_the_sum_the_device_completes_to_the_right_checksum() {
    let caps = ChecksumCapabilities { tx: TxChecksum::PseudoHeader, ..Default::default() };
    let mut client = endpoint(1, caps);
    let mut server = endpoint(2, ChecksumCapabilities::default());
    server.listen(SERVER, 8).unwrap();
    let now = Instant::from_millis(1);
    let handle = client.connect(now, CLIENT_IP, SERVER).unwrap();
    let mut completed = 0;
    let mut sent_data = false;
    for _ in 0..20 {
        let mut moved = false;
        for (_, mut bytes) in drain(&mut client, now) {
            let len = u32::try_from(bytes.len()).unwrap();
            let pseudo = pseudo_header(CLIENT_IP, SERVER_IP, PROTOCOL_TCP, len).unwrap();
            assert_eq!(field(&bytes), pseudo.folded());
            // What the device does (csum_start at the TCP header, csum_offset 16): sum from
            // there to the end, the field included, and store the complement.
            let mut device = Checksum::new();
            device.add_bytes(&bytes);
            bytes[16..18].copy_from_slice(&device.finish().to_be_bytes());
            // The server verifies (the default): the completed checksum is the right one.
            let before = server.counters().dropped_malformed;
            server.handle_segment(now, CLIENT_IP, SERVER_IP, &bytes);
            assert_eq!(server.counters().dropped_malformed, before);
            completed += 1;
            moved = true;
        }
        for (_, bytes) in drain(&mut server, now) {
            client.handle_segment(now, SERVER_IP, CLIENT_IP, &bytes);
            moved = true;
        }
        if !moved && !sent_data {
            client.send(now, handle, b"odd length").unwrap();
            sent_data = true;
        } else if !moved {
            break;
        }
    }
    assert!(completed >= 3, "SYN, ACK and data");
    let server_handle = server.accept(SERVER).unwrap().expect("the handshake completed");
    let mut buf = [0u8; 16];
    assert_eq!(server.recv(server_handle, &mut buf), Ok(10));
    assert_eq!(&buf[..10], b"odd length");
}
