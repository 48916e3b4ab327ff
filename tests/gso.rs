//! Super-segments (TSO/GSO, issue #20): `poll_transmit_gso` describes a run of wire segments
//! at once, and those segments — cut by the software segmenter `wire::gso::Segmenter` — are
//! octet for octet the ones `poll_transmit_chunks` sends one by one, with the same accounting.

mod common;

use common::*;
use tcp_proto::wire::Segment;
use tcp_proto::wire::checksum::TxChecksum;
use tcp_proto::wire::gso::Segmenter;
use tcp_proto::{Config, TransmitChunks};

/// ESTABLISHED with a peer MSS of 1000 and a 64 KiB peer window.
fn sender(config: Config) -> Harness {
    let mut h = Harness::connect_with(config);
    h.expect_one();
    h.deliver(seg(syn_ack(), PEER_ISS, add(ISS, 1)).mss(1000).window(65535));
    h.expect_one();
    h.events();
    h
}

fn big_config() -> Config {
    let mut config = config();
    config.send_buffer = 200_000;
    config
}

/// Cuts `chunks` (header in `header`) into its wire segments with the software segmenter.
fn split(chunks: &TransmitChunks, header: &[u8]) -> Vec<Sent> {
    let (src, dst) = (LOCAL.ip(), chunks.transmit.remote.ip());
    let slices = chunks.payload.slices();
    let mut segmenter = Segmenter::new(
        &header[..chunks.header_len],
        slices,
        chunks.segment_size,
        src,
        dst,
        TxChecksum::Compute,
    )
    .unwrap();
    let mut buf = vec![0u8; segmenter.max_segment_len()];
    let mut out = Vec::new();
    while let Some(len) = segmenter.next_segment(&mut buf).unwrap() {
        let segment = Segment::parse_checked(&buf[..len], src, dst).expect("checksummed");
        out.push(Sent::new(&segment, chunks.transmit.remote));
    }
    out
}

fn poll_gso(h: &mut Harness, max_segments: usize) -> Option<(TransmitChunks, Vec<Sent>)> {
    let mut header = [0u8; 60];
    let chunks = h.conn.poll_transmit_gso(h.now, &mut header, max_segments).unwrap()?;
    assert_eq!(chunks.transmit.len, chunks.header_len + chunks.payload.len());
    let sent = split(&chunks, &header);
    Some((chunks, sent))
}

/// The initial window of new data goes as one super-segment of ten 1000-octet pieces, the
/// last with PSH, the same ten segments the ordinary path sends.
#[test]
fn initial_window_is_one_super_segment_of_the_same_segments() {
    let data: Vec<u8> = (0..10_000u32).map(|i| (i % 253) as u8).collect();
    let mut plain = sender(big_config());
    let mut gso = sender(big_config());
    plain.conn.send(plain.now, &data).unwrap();
    gso.conn.send(gso.now, &data).unwrap();
    let mut expected = Vec::new();
    while let Some(sent) = plain.poll() {
        expected.push(sent);
    }
    assert_eq!(expected.len(), 10);
    let (chunks, sent) = poll_gso(&mut gso, 44).unwrap();
    assert_eq!(chunks.segment_size, 1000);
    assert_eq!(chunks.payload.len(), 10_000);
    assert_eq!(sent, expected);
    assert_eq!(sent[9].flags, psh_ack());
    assert!(poll_gso(&mut gso, 44).is_none());
    assert_eq!(gso.conn.status(), plain.conn.status());
}

/// `max_segments` caps the pieces; 1 gives ordinary segments.
#[test]
fn max_segments_caps_the_run() {
    let data = vec![7u8; 10_000];
    let mut h = sender(big_config());
    h.conn.send(h.now, &data).unwrap();
    let (chunks, sent) = poll_gso(&mut h, 4).unwrap();
    assert_eq!((chunks.segment_size, chunks.payload.len(), sent.len()), (1000, 4000, 4));
    assert!(sent.iter().all(|s| s.flags == ack()));
    assert_eq!(sent[3].seq, add(ISS, 3001));
    let (chunks, sent) = poll_gso(&mut h, 1).unwrap();
    assert_eq!((chunks.segment_size, chunks.payload.len(), sent.len()), (1000, 1000, 1));
    let (chunks, sent) = poll_gso(&mut h, 44).unwrap();
    assert_eq!((chunks.payload.len(), sent.len()), (5000, 5));
    assert_eq!(sent[4].flags, psh_ack());
}

/// ESTABLISHED receiver with delayed ACKs on and a 64 KiB receive buffer (no window scaling
/// offered by the peer: a 65535-octet window).
fn receiver() -> Harness {
    let mut config = config();
    config.recv_buffer = 65_535;
    config.delayed_ack = Some(std::time::Duration::from_millis(40));
    let mut h = Harness::connect_with(config);
    h.expect_one();
    h.deliver(seg(syn_ack(), PEER_ISS, add(ISS, 1)).mss(1460).window(65535));
    h.expect_one();
    h.events();
    h
}

/// GRO: a coalesced segment longer than our MSS is accepted whole, and counts as the wire
/// segments it was (⌈len / MSS⌉), so one of a full segment and a bit more is acknowledged at
/// once — as the second of those wire segments would have been (SHLD-19) — while a single
/// full-sized segment still waits for the delayed-ACK timer.
#[test]
fn coalesced_segment_is_acked_per_wire_segment() {
    let mut h = receiver();
    let data = vec![3u8; 1460 + 100];
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(ISS, 1)).payload(&data));
    let sent = h.expect_one();
    assert_seg(&sent, ack(), add(ISS, 1), add(PEER_ISS, 1 + 1560), 65_535 - 1560);
    // One ordinary full-sized segment: delayed.
    h.deliver(seg(ack(), add(PEER_ISS, 1561), add(ISS, 1)).payload(&[4u8; 1460]));
    h.expect_nothing();
}

/// A 60 000-octet coalesced segment (as a TUN with IFF_VNET_HDR hands up) fits the window:
/// taken whole through the zero-copy input, and acknowledged at once.
#[test]
fn coalesced_64k_segment_is_taken_whole() {
    let mut h = receiver();
    let data: Vec<u8> = (0..60_000u32).map(|i| (i % 241) as u8).collect();
    h.deliver_bytes(seg(ack(), add(PEER_ISS, 1), add(ISS, 1)).payload(&data), 61_000);
    let sent = h.expect_one();
    assert_eq!(sent.ack, add(PEER_ISS, 60_001));
    let mut read = vec![0u8; 70_000];
    let n = h.conn.recv(&mut read).unwrap();
    assert_eq!(&read[..n], &data[..]);
}
