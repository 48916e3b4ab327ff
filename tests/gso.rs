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

/// The initial window of new data goes as two super-segments of five 1000-octet pieces (at
/// most half of cwnd in one, so that a lost super-packet is never the whole window: RFC 8985
/// §6.2 needs a later delivery to see it), the last with PSH: the same ten segments the
/// ordinary path sends.
#[test]
fn initial_window_is_two_super_segments_of_the_same_segments() {
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
    let mut sent = Vec::new();
    for _ in 0..2 {
        let (chunks, pieces) = poll_gso(&mut gso, 44).unwrap();
        assert_eq!((chunks.segment_size, chunks.payload.len()), (1000, 5000));
        sent.extend(pieces);
    }
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

mod differential {
    //! One connection sends through `poll_transmit_chunks`, a twin through
    //! `poll_transmit_gso` with its super-segments cut by the software segmenter; both talk
    //! to identical receivers over identical lossy links (the same segments dropped, in both
    //! directions, data delayed by one step). The wire segments, each sender's `Status`,
    //! counters and next deadline must be the same at every step.

    use bytes::{Bytes, BytesMut};
    use proptest::prelude::*;
    use std::time::Duration;
    use tcp_proto::testing::{addr_a, addr_b};
    use tcp_proto::wire::Segment;
    use tcp_proto::wire::checksum::TxChecksum;
    use tcp_proto::wire::gso::Segmenter;
    use tcp_proto::{Config, Connection, Instant, SeqNum, State};

    struct World {
        sender: Connection,
        receiver: Connection,
        /// Data segments on the way to the receiver (delivered next step).
        to_receiver: Vec<Vec<u8>>,
        /// Super-segments (more than one wire segment) the sender emitted.
        super_segments: usize,
        /// Those of them that were retransmissions (segments deemed lost in SACK recovery).
        resent_super_segments: usize,
        received: Vec<u8>,
        /// What the sender read of the receiver's data (so the sender's segments carry SACK
        /// and D-SACK blocks that change from one segment to the next).
        received_back: Vec<u8>,
    }

    fn config(case: &Case) -> Config {
        let mut config = Config::with_fixed_isn(SeqNum::new(case.isn));
        config.mtu = case.mtu;
        config.sack = case.sack;
        config.timestamps = case.timestamps;
        config.delayed_ack = case.delayed_ack.then_some(Duration::from_millis(40));
        config.send_buffer = 256 * 1024;
        config.recv_buffer = case.recv_buffer;
        config.nodelay = case.nodelay;
        config
    }

    impl World {
        fn new(case: &Case, now: Instant) -> Self {
            let sender = Connection::connect(config(case), now, addr_a(4000), addr_b(80)).unwrap();
            let receiver = Connection::listen(config(case), now, addr_b(80));
            Self {
                sender,
                receiver,
                to_receiver: Vec::new(),
                super_segments: 0,
                resent_super_segments: 0,
                received: Vec::new(),
                received_back: Vec::new(),
            }
        }

        /// Everything the sender sends now, as wire segments.
        fn sender_output(&mut self, now: Instant, gso: Option<usize>) -> Vec<Vec<u8>> {
            let (src, dst) = (addr_a(0).ip(), addr_b(0).ip());
            let mut out = Vec::new();
            let mut header = [0u8; 60];
            loop {
                let snd_nxt = self.sender.status().snd_nxt;
                let chunks = match gso {
                    None => self.sender.poll_transmit_chunks(now, &mut header),
                    Some(max) => self.sender.poll_transmit_gso(now, &mut header, max),
                };
                let Some(chunks) = chunks.unwrap() else { break };
                if gso.is_none() {
                    assert_eq!(chunks.segment_size, chunks.payload.len());
                }
                if chunks.payload.len() > chunks.segment_size {
                    self.super_segments += 1;
                    let seq = u32::from_be_bytes(header[4..8].try_into().unwrap());
                    self.resent_super_segments += usize::from(seq != snd_nxt.get());
                    assert!(chunks.payload.len() <= 65_535 - 20 - chunks.header_len);
                    assert!(chunks.payload.len().div_ceil(chunks.segment_size) <= gso.unwrap_or(1));
                }
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
                if gso.is_some() {
                    // The appending form here, the writing one for the ordinary segments.
                    let mut bytes = BytesMut::new();
                    while let Some(len) = segmenter.append_next_segment(&mut bytes) {
                        out.push(bytes.split_to(len).to_vec());
                    }
                } else {
                    let mut buf = vec![0u8; segmenter.max_segment_len()];
                    while let Some(len) = segmenter.next_segment(&mut buf).unwrap() {
                        out.push(buf[..len].to_vec());
                    }
                }
            }
            out
        }
    }

    #[derive(Clone, Debug)]
    struct Case {
        isn: u32,
        mtu: u16,
        sack: bool,
        timestamps: bool,
        delayed_ack: bool,
        nodelay: bool,
        recv_buffer: usize,
        total: usize,
        write: usize,
        by_reference: bool,
        max_segments: usize,
        seed: u64,
        loss_per_mille: u64,
        /// Octets the receiver sends back.
        reverse: usize,
    }

    fn case() -> impl Strategy<Value = Case> {
        (
            (
                any::<u32>(),
                576u16..=9000,
                any::<bool>(),
                any::<bool>(),
                any::<bool>(),
                any::<bool>(),
            ),
            (8_192usize..400_000, 1usize..300_000, 1usize..70_000, any::<bool>()),
            (0usize..64, any::<u64>(), 0u64..80, prop_oneof![Just(0usize), 1usize..200_000]),
            any::<bool>(),
        )
            .prop_map(
                |(
                    (isn, mtu, sack, timestamps, delayed_ack, nodelay),
                    (recv_buffer, mut total, mut write, by_reference),
                    (max_segments, seed, loss_per_mille, reverse),
                    aligned,
                )| {
                    if aligned {
                        // Writes and the whole a multiple of the full segment size (the MSS
                        // less the timestamps option; no SACK blocks without loss): the queue
                        // then often ends exactly where a full piece does, which must carry
                        // PSH (and FIN) and so ends a run.
                        let full = usize::from(mtu) - 40 - if timestamps { 12 } else { 0 };
                        write = (write / full).max(1) * full;
                        total = (total / full).max(1) * full;
                    }
                    // The application writes once per step and the run has 20 000 steps:
                    // tiny writes of a large total could not finish in time (a failure of
                    // the harness, not of either connection), so a write is at least
                    // 1/5 000 of the total.
                    write = write.max(total.div_ceil(5_000));
                    Case {
                        isn,
                        mtu,
                        sack,
                        timestamps,
                        delayed_ack,
                        nodelay,
                        recv_buffer,
                        total,
                        write,
                        by_reference,
                        max_segments,
                        seed,
                        loss_per_mille,
                        reverse,
                    }
                },
            )
    }

    fn next(state: &mut u64) -> u64 {
        // xorshift64*: the same drops for both worlds.
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Runs the case; the super-segments emitted and the retransmissions, for the fixed cases
    /// to check they exercise what they claim.
    fn run(case: &Case) -> (usize, usize, u32) {
        // (super-segments, of them retransmissions, SACK recoveries)
        let mut now = Instant::from_millis(1_000);
        let mut plain = World::new(case, now);
        let mut gso = World::new(case, now);
        let data: Vec<u8> = (0..case.total).map(|i| (i * 7 % 251) as u8).collect();
        let back: Vec<u8> = (0..case.reverse).map(|i| (i * 5 % 241) as u8).collect();
        let (mut written, mut written_back) = (0, 0);
        let mut rng = case.seed | 1;
        let mut closed = false;
        let (ip_a, ip_b) = (addr_a(0).ip(), addr_b(0).ip());
        for step in 0..20_000 {
            // The application writes.
            if written < data.len() {
                let end = (written + case.write).min(data.len());
                let piece = &data[written..end];
                let (a, b) = if case.by_reference {
                    let chunk = Bytes::copy_from_slice(piece);
                    (plain.sender.send_bytes(now, chunk.clone()), gso.sender.send_bytes(now, chunk))
                } else {
                    (plain.sender.send(now, piece), gso.sender.send(now, piece))
                };
                assert_eq!(a, b);
                written += a.unwrap_or(0);
            } else if !closed
                && plain.sender.state() == State::Established
                && plain.received_back.len() == back.len()
            {
                // After the data coming back: a closed reader resets new data (SHLD-3).
                closed = true;
                plain.sender.close(now).unwrap();
                gso.sender.close(now).unwrap();
            }
            // Data segments sent one step ago arrive (or are lost).
            let arriving = core::mem::take(&mut plain.to_receiver);
            assert_eq!(arriving, core::mem::take(&mut gso.to_receiver));
            for bytes in &arriving {
                if next(&mut rng) % 1000 < case.loss_per_mille {
                    continue;
                }
                for world in [&mut plain, &mut gso] {
                    let segment = Segment::parse_checked(bytes, ip_a, ip_b).unwrap();
                    world.receiver.handle_segment(now, ip_a, &segment);
                }
            }
            // The receivers read, write back, and answer; their segments arrive at once (or are
            // lost).
            let mut buf = vec![0u8; 70_000];
            let mut replies = Vec::new();
            if written_back < back.len() && plain.receiver.state() == State::Established {
                let piece = &back[written_back..(written_back + 20_000).min(back.len())];
                let a = plain.receiver.send(now, piece);
                assert_eq!(a, gso.receiver.send(now, piece));
                written_back += a.unwrap_or(0);
            }
            for (index, world) in [&mut plain, &mut gso].into_iter().enumerate() {
                while let Ok(n) = world.receiver.recv(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    world.received.extend_from_slice(&buf[..n]);
                }
                let mut sent = Vec::new();
                while let Some(t) = world.receiver.poll_transmit(now, &mut buf).unwrap() {
                    sent.push(buf[..t.len].to_vec());
                }
                if index == 0 {
                    replies = sent;
                } else {
                    assert_eq!(replies, sent, "step {step}: the receivers differ");
                }
            }
            for bytes in &replies {
                if next(&mut rng) % 1000 < case.loss_per_mille / 2 {
                    continue;
                }
                for world in [&mut plain, &mut gso] {
                    let segment = Segment::parse_checked(bytes, ip_b, ip_a).unwrap();
                    world.sender.handle_segment(now, ip_b, &segment);
                }
            }
            for world in [&mut plain, &mut gso] {
                while let Ok(n @ 1..) = world.sender.recv(&mut buf) {
                    world.received_back.extend_from_slice(&buf[..n]);
                }
            }
            // The senders send.
            let max = case.max_segments;
            let plain_out = plain.sender_output(now, None);
            let gso_out = gso.sender_output(now, Some(max));
            assert_eq!(plain_out.len(), gso_out.len(), "step {step}: segment counts");
            assert_eq!(plain_out, gso_out, "step {step}: the wire segments differ");
            plain.to_receiver = plain_out;
            gso.to_receiver = gso_out;
            assert_eq!(plain.sender.status(), gso.sender.status(), "step {step}");
            assert_eq!(plain.sender.counters(), gso.sender.counters(), "step {step}");
            assert_eq!(plain.sender.poll_timeout(), gso.sender.poll_timeout(), "step {step}");
            let done = plain.received.len() == data.len()
                && plain.received_back.len() == back.len()
                && plain.sender.status().snd_una == plain.sender.status().snd_nxt
                && closed;
            if done {
                break;
            }
            // Time moves on by a step, or to the next deadline if that is sooner.
            let tick = now + Duration::from_millis(5);
            let deadline = [plain.sender.poll_timeout(), plain.receiver.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(tick);
            now = tick.min(deadline.max(now));
            for world in [&mut plain, &mut gso] {
                world.sender.handle_timeout(now);
                world.receiver.handle_timeout(now);
            }
        }
        assert_eq!(
            plain.received.len(),
            data.len(),
            "the transfer completed: {:?}",
            plain.sender.status()
        );
        assert!(plain.received == data && gso.received == data, "the data arrived intact");
        assert!(plain.received_back == back && gso.received_back == back, "and back");
        (
            gso.super_segments,
            gso.resent_super_segments,
            gso.sender.counters().sack_recoveries as u32,
        )
    }

    /// A fixed lossy case with SACK and timestamps: super-segments, losses and recovery.
    #[test]
    fn lossy_transfer_with_sack() {
        let (supers, resent, retransmissions) = run(&Case {
            isn: 5,
            mtu: 1500,
            sack: true,
            timestamps: true,
            delayed_ack: true,
            nodelay: false,
            recv_buffer: 300_000,
            total: 2_000_000,
            write: 50_000,
            by_reference: false,
            max_segments: 44,
            seed: 1,
            loss_per_mille: 30,
            reverse: 300_000,
        });
        assert!(supers > 10, "{supers} super-segments");
        assert!(resent > 0, "{resent} super-segments of lost segments");
        assert!(retransmissions > 3, "{retransmissions} SACK recoveries");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
        #[test]
        fn gso_split_in_software_equals_ordinary_segments(case in case()) {
            let _ = run(&case);
        }
    }
}

mod endpoint {
    //! `Endpoint::poll_transmit_gso`: the same wire segments as `poll_transmit_chunks`, two
    //! connections taking turns by output, and `segments_out` counting wire segments.

    use std::net::{IpAddr, Ipv4Addr, SocketAddr};

    use tcp_proto::wire::checksum::TxChecksum;
    use tcp_proto::wire::gso::Segmenter;
    use tcp_proto::{Config, Endpoint, EndpointConfig, Instant};

    const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 80);

    struct Pair {
        client: Endpoint,
        server: Endpoint,
        /// The wire segments the client sent, with where they went.
        wire: Vec<(IpAddr, IpAddr, Vec<u8>)>,
        outputs: usize,
    }

    impl Pair {
        fn new() -> Self {
            let config = |secret: u8| {
                let mut connection = Config::new([secret; 16]);
                connection.send_buffer = 128 * 1024;
                connection.recv_buffer = 128 * 1024;
                EndpointConfig::new(connection, [secret; 16])
            };
            let mut server = Endpoint::new(config(2));
            server.listen(SERVER, 4).unwrap();
            Self { client: Endpoint::new(config(1)), server, wire: Vec::new(), outputs: 0 }
        }

        /// One exchange: the client's output (through GSO when `gso` is set) to the server,
        /// the server's (ordinary) back.
        fn exchange(&mut self, now: Instant, gso: Option<usize>) {
            let mut header = [0u8; 60];
            loop {
                let out = match gso {
                    Some(max) => self.client.poll_transmit_gso(now, &mut header, max),
                    None => self.client.poll_transmit_chunks(now, &mut header),
                };
                let Some(out) = out.unwrap() else { break };
                self.outputs += 1;
                let (src, dst) = (out.transmit.local.ip(), out.transmit.remote.ip());
                let mut segmenter = Segmenter::new(
                    &header[..out.header_len],
                    out.payload.slices(),
                    out.segment_size,
                    src,
                    dst,
                    TxChecksum::Compute,
                )
                .unwrap();
                let mut buf = vec![0u8; segmenter.max_segment_len()];
                while let Some(len) = segmenter.next_segment(&mut buf).unwrap() {
                    self.server.handle_segment(now, src, dst, &buf[..len]);
                    self.wire.push((src, dst, buf[..len].to_vec()));
                }
            }
            let mut buf = vec![0u8; 2048];
            while let Some(t) = self.server.poll_transmit(now, &mut buf).unwrap() {
                let (src, dst) = (t.local.ip(), t.remote.ip());
                self.client.handle_segment(now, src, dst, &buf[..t.len]);
            }
        }
    }

    /// Two connections each writing 60 000 octets: through GSO the client's wire segments are
    /// those of `poll_transmit_chunks` (in another order: a super-segment is one turn), fewer
    /// outputs, and `segments_out` counts the wire segments.
    #[test]
    fn endpoint_gso_sends_the_same_wire_segments_in_fewer_outputs() {
        let mut results = Vec::new();
        for gso in [None, Some(44)] {
            let mut pair = Pair::new();
            let now = Instant::from_millis(1);
            let c1 = pair.client.connect(now, CLIENT, SERVER).unwrap();
            let c2 = pair.client.connect(now, CLIENT, SERVER).unwrap();
            pair.exchange(now, gso);
            pair.exchange(now, gso);
            let data: Vec<u8> = (0..60_000u32).map(|i| (i % 239) as u8).collect();
            assert_eq!(pair.client.send(now, c1, &data).unwrap(), 60_000);
            assert_eq!(pair.client.send(now, c2, &data).unwrap(), 60_000);
            let before = (pair.wire.len(), pair.outputs);
            let mut t = now;
            for _ in 0..50 {
                pair.exchange(t, gso);
                t += std::time::Duration::from_millis(10);
                pair.client.handle_timeout(t);
                pair.server.handle_timeout(t);
            }
            let wire = pair.wire.len() - before.0;
            let outputs = pair.outputs - before.1;
            assert_eq!(pair.client.counters().segments_out as usize, pair.wire.len());
            let mut segments = pair.wire.clone();
            segments.sort();
            results.push((segments, outputs, wire));
        }
        let (plain, gso) = (&results[0], &results[1]);
        assert_eq!(plain.0, gso.0, "the same wire segments");
        assert_eq!(plain.1, plain.2, "one output per segment without GSO");
        assert!(gso.1 * 4 < gso.2, "{} outputs for {} wire segments", gso.1, gso.2);
        assert!(gso.2 >= 2 * 41, "both transfers went: {} segments", gso.2);
    }
}

/// A D-SACK block is reported once (RFC 2883): the data segment that carries it has a longer
/// SACK option, so less payload, than the next, and must not head a super-segment of
/// segments without it. The first output is that one segment alone; the rest follow as one
/// super-segment; the wire is that of ordinary polling.
#[test]
fn a_one_off_dsack_block_ends_the_run() {
    let setup = || {
        let mut h = Harness::connect_with(big_config());
        h.expect_one();
        h.deliver(seg(syn_ack(), PEER_ISS, add(ISS, 1)).mss(1000).window(65535).sack_permitted());
        h.expect_one();
        let data = [9u8; 100];
        h.deliver(seg(ack(), add(PEER_ISS, 1), add(ISS, 1)).payload(&data));
        h.expect_one();
        // The same segment again: a duplicate, reported once as a D-SACK block.
        h.deliver(seg(ack(), add(PEER_ISS, 1), add(ISS, 1)).payload(&data));
        h.events();
        let payload = vec![5u8; 10_000];
        h.conn.send(h.now, &payload).unwrap();
        h
    };
    let mut plain = setup();
    let mut expected = Vec::new();
    while let Some(sent) = plain.poll() {
        expected.push(sent);
    }
    assert_eq!(sack_blocks(&expected[0]), vec![(add(PEER_ISS, 1), add(PEER_ISS, 101))]);
    assert!(sack_blocks(&expected[1]).is_empty());
    assert!(expected[0].payload.len() < expected[1].payload.len());
    let mut gso = setup();
    let (first, sent) = poll_gso(&mut gso, 44).unwrap();
    assert_eq!(first.payload.len(), first.segment_size, "the D-SACK segment goes alone");
    assert_eq!(sent.len(), 1);
    let (rest, more) = poll_gso(&mut gso, 44).unwrap();
    assert!(rest.payload.len() > rest.segment_size, "then a super-segment");
    let mut all = sent;
    all.extend(more);
    while let Some((_, more)) = poll_gso(&mut gso, 44) {
        all.extend(more);
    }
    assert_eq!(all, expected);
    assert_eq!(gso.conn.status(), plain.conn.status());
}
