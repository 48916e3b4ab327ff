//! The `Bytes` send path (issue #19): `send_bytes` and `write_chunks` keep the caller's chunks
//! by reference, every (re)transmission of them is a slice of them, and
//! `poll_transmit_chunks` hands the payload out without copying it, and
//! `poll_transmit_borrowed` lends it without touching a reference count — the same segments,
//! octet for octet, as `poll_transmit`. Exact segments with a scripted peer, then byte-exact
//! transfers over lossy, reordering simulated links through every send and output form, on
//! connections and on endpoints.

mod common;

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use tcp_proto::testing::sim::{Link, LinkConfig, Rng, Sim};
use tcp_proto::testing::{addr_a, addr_b};
use tcp_proto::wire::Segment;
use tcp_proto::{
    CallError, Config, Connection, Endpoint, EndpointConfig, Instant, SeqNum, State, Transmit,
    TransmitChunks,
};

fn pattern(n: usize, salt: u8) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8 ^ salt).collect()
}

/// ESTABLISHED with a peer MSS of 1000, a 64 KiB peer window and the given send buffer.
fn sender(send_buffer: usize) -> Harness {
    let mut config = config();
    config.send_buffer = send_buffer;
    let mut h = Harness::connect_with(config);
    h.expect_one();
    h.deliver(seg(syn_ack(), PEER_ISS, add(ISS, 1)).mss(1000).window(65535));
    h.expect_one();
    h.events();
    h
}

/// The next segment through `poll_transmit_chunks`, joined into one packet and parsed (which
/// checks the checksum the header carries over the payload it does not hold).
fn poll_chunks(h: &mut Harness) -> Option<(Sent, TransmitChunks)> {
    let mut header = [0u8; 60];
    let chunks = h.conn.poll_transmit_chunks(h.now, &mut header).unwrap()?;
    let mut packet = header[..chunks.header_len].to_vec();
    for slice in chunks.payload.slices() {
        packet.extend_from_slice(slice);
    }
    assert_eq!(packet.len(), chunks.transmit.len, "transmit.len is the whole segment");
    let segment = Segment::parse_checked(&packet, LOCAL.ip(), chunks.transmit.remote.ip())
        .expect("header-only output is checksummed over the payload (MUST-2)");
    Some((Sent::new(&segment, chunks.transmit.remote), chunks))
}

/// The next segment through `poll_transmit_borrowed`: the header and the lent payload
/// joined into one packet, with its `Transmit`. Checks that the lengths add up.
fn poll_lent(h: &mut Harness) -> Option<(Vec<u8>, Transmit)> {
    let mut header = [0u8; 60];
    let lent = h.conn.poll_transmit_borrowed(h.now, &mut header).unwrap()?;
    let mut packet = header[..lent.header_len].to_vec();
    let len = lent.payload.len();
    for piece in lent.payload {
        packet.extend_from_slice(piece);
    }
    assert_eq!(packet.len(), lent.header_len + len, "the lent pieces add up to its length");
    assert_eq!(packet.len(), lent.transmit.len, "transmit.len is the whole segment");
    Some((packet, lent.transmit))
}

/// Every payload slice of `chunks` lies within `original`'s memory.
#[track_caller]
fn assert_within(chunks: &TransmitChunks, original: &Bytes) {
    let range = original.as_ptr_range();
    for slice in chunks.payload.slices() {
        let inside = range.start <= slice.as_ptr() && slice.as_ptr_range().end <= range.end;
        assert!(inside, "a slice of the queued chunk, not a copy");
    }
}

#[test]
fn send_bytes_takes_what_fits_and_its_segments_are_slices_of_it() {
    let mut h = sender(8192);
    let chunk = Bytes::from(pattern(10_000, 0));
    assert_eq!(h.conn.send_bytes(h.now, chunk.clone()).unwrap(), 8192, "the buffer's room");
    for i in 0..8u32 {
        let (sent, chunks) = poll_chunks(&mut h).expect("a full segment");
        assert_seg(&sent, ack(), add(ISS, 1 + 1000 * i), add(PEER_ISS, 1), WINDOW);
        assert_eq!(sent.payload, &chunk[1000 * i as usize..][..1000]);
        assert_within(&chunks, &chunk);
        assert_eq!(chunks.header_len, 20);
    }
    let (sent, chunks) = poll_chunks(&mut h).unwrap();
    assert_seg(&sent, psh_ack(), add(ISS, 8001), add(PEER_ISS, 1), WINDOW);
    assert_eq!(sent.payload, &chunk[8000..8192]);
    assert_within(&chunks, &chunk);
    assert!(poll_chunks(&mut h).is_none());
    // The rest goes in once acknowledged data frees room.
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(ISS, 1 + 2000)).window(65535));
    assert_eq!(h.conn.send_bytes(h.now, chunk.slice(8192..)).unwrap(), 1808);
}

#[test]
fn write_chunks_takes_whole_chunks_and_advances_a_partly_taken_one() {
    let mut h = sender(8192);
    let originals = [pattern(3000, 1), pattern(4000, 2), pattern(3000, 3)].map(Bytes::from);
    let mut chunks = originals.clone();
    assert_eq!(h.conn.write_chunks(h.now, &mut chunks).unwrap(), 8192);
    assert!(chunks[0].is_empty() && chunks[1].is_empty(), "taken whole: left empty");
    assert_eq!(chunks[2], originals[2].slice(1192..), "advanced past what was taken");
    let expected: Vec<u8> = originals.iter().flat_map(|c| c.iter().copied()).take(8192).collect();
    let mut got = Vec::new();
    while let Some((sent, chunks)) = poll_chunks(&mut h) {
        assert_eq!(sent.seq, add(ISS, 1 + got.len() as u32));
        // A segment across two chunks has two slices, each inside its chunk.
        let boundary = [3000, 7000].iter().any(|&b| got.len() < b && b < got.len() + 1000);
        assert_eq!(chunks.payload.slices().len(), if boundary { 2 } else { 1 });
        got.extend_from_slice(&sent.payload);
    }
    assert_eq!(got, expected);
    // Nothing more fits: no chunk is touched.
    let mut rest = chunks.clone();
    assert_eq!(h.conn.write_chunks(h.now, &mut rest).unwrap(), 0);
    assert_eq!(rest, chunks);
}

#[test]
fn write_chunks_and_send_bytes_follow_the_rules_of_send() {
    let mut h = Harness::listen();
    let mut chunks = [Bytes::from(pattern(500, 0))];
    assert_eq!(h.conn.write_chunks(h.now, &mut chunks), Err(CallError::NoRemote));
    assert_eq!(chunks[0].len(), 500, "an error takes nothing");
    assert_eq!(h.conn.send_bytes(h.now, chunks[0].clone()), Err(CallError::NoRemote));
    let mut h = established();
    h.conn.shutdown(h.now).unwrap();
    assert_eq!(h.conn.send_bytes(h.now, chunks[0].clone()), Err(CallError::Closing));
    assert_eq!(h.conn.write_chunks(h.now, &mut chunks), Err(CallError::Closing));
    // Empty chunks take nothing and change nothing.
    let mut h = established();
    assert_eq!(h.conn.write_chunks(h.now, &mut [Bytes::new(), Bytes::new()]), Ok(0));
    assert_eq!(h.conn.send_bytes(h.now, Bytes::new()), Ok(0));
    h.expect_nothing();
}

#[test]
fn a_retransmission_after_loss_carries_the_same_bytes_from_the_same_memory() {
    let mut h = sender(8192);
    let chunk = Bytes::from(pattern(3000, 7));
    assert_eq!(h.conn.send_bytes(h.now, chunk.clone()).unwrap(), 3000);
    let first: Vec<_> = std::iter::from_fn(|| poll_chunks(&mut h)).collect();
    assert_eq!(first.len(), 3, "all lost");
    h.jump_to_deadline();
    // RFC 6298 (5.4): the first unacknowledged segment goes again, as a slice of the chunk.
    let (again, chunks) = poll_chunks(&mut h).expect("the retransmission");
    assert_eq!(again.seq, add(ISS, 1));
    assert_eq!(again.payload, first[0].0.payload);
    assert_eq!(chunks.payload.slices()[0].as_ptr(), first[0].1.payload.slices()[0].as_ptr());
    assert_within(&chunks, &chunk);
    // The copying form resends the same octets from the same queue.
    h.jump_to_deadline();
    let copied = h.poll().expect("the next retransmission");
    assert_eq!(copied.seq, add(ISS, 1));
    assert_eq!(copied.payload, &chunk[..copied.payload.len()]);
}

#[test]
fn a_sacked_hole_is_resent_as_a_slice_of_the_chunk() {
    let mut config = config();
    config.send_buffer = 16_384;
    let mut h = Harness::connect_with(config);
    h.expect_one();
    h.deliver(seg(syn_ack(), PEER_ISS, add(ISS, 1)).mss(1000).window(65535).sack_permitted());
    h.expect_one();
    let chunk = Bytes::from(pattern(10_000, 9));
    h.conn.send_bytes(h.now, chunk.clone()).unwrap();
    let sent: Vec<_> = std::iter::from_fn(|| poll_chunks(&mut h)).collect();
    assert_eq!(sent.len(), 10);
    // The second segment is lost; the peer SACKs what follows it three times.
    for right in [3000, 4000, 5000] {
        h.deliver(
            seg(ack(), add(PEER_ISS, 1), add(ISS, 1001))
                .window(65535)
                .sack(&[(add(ISS, 2001), add(ISS, 1 + right))]),
        );
    }
    let (resent, chunks) = poll_chunks(&mut h).expect("fast retransmit of the hole");
    assert_eq!((resent.seq, resent.payload.as_slice()), (add(ISS, 1001), &chunk[1000..2000]));
    assert_within(&chunks, &chunk);
}

#[test]
fn header_only_output_is_what_poll_transmit_writes_through_the_whole_lifecycle() {
    // Three identical connections fed identical input; one is read whole, one header-only
    // with the payload as slices, one header-only with the payload lent.
    let mut copy = sender(4096);
    let mut zero = sender(4096);
    let mut lent = sender(4096);
    let (mut next_copy, mut next_zero) = (Vec::new(), Vec::new());
    let big = Bytes::from(pattern(2500, 5));
    for step in 0..12u32 {
        for h in [&mut copy, &mut zero, &mut lent] {
            match step % 4 {
                0 => drop(h.conn.send(h.now, &pattern(700, step as u8))),
                1 => drop(h.conn.send_bytes(h.now, big.clone())),
                2 => drop(h.conn.send_urgent(h.now, b"!urgent!")),
                _ => drop(h.conn.write_chunks(h.now, &mut [big.slice(..900), big.slice(900..)])),
            }
        }
        next_copy.clear();
        next_zero.clear();
        loop {
            let mut buf = [0u8; 2048];
            let whole = copy.conn.poll_transmit(copy.now, &mut buf).unwrap();
            let mut header = [0u8; 60];
            let parts = zero.conn.poll_transmit_chunks(zero.now, &mut header).unwrap();
            let (whole, parts) = match (whole, parts) {
                (Some(whole), Some(parts)) => (whole, parts),
                (None, None) => break,
                (whole, parts) => {
                    panic!("step {step}: one form sent, one did not: {whole:?} {parts:?}")
                }
            };
            let mut joined = header[..parts.header_len].to_vec();
            parts.payload.slices().iter().for_each(|s| joined.extend_from_slice(s));
            assert_eq!(joined, &buf[..whole.len], "step {step}");
            assert_eq!(parts.transmit, whole);
            let (lent_segment, lent_transmit) = poll_lent(&mut lent).expect("lent form sends too");
            assert_eq!(lent_segment, &buf[..whole.len], "step {step}, lent");
            assert_eq!(lent_transmit, whole);
            next_copy.push(whole.len);
            next_zero.push(parts.transmit.len);
        }
        assert!(poll_lent(&mut lent).is_none(), "step {step}: the lent form sent more");
        // Every other step loses everything (a retransmission next); otherwise ACK it all.
        for h in [&mut copy, &mut zero, &mut lent] {
            if step % 2 == 0 {
                h.jump_to_deadline();
            } else {
                let nxt = h.conn.status().snd_nxt.get();
                h.deliver(seg(ack(), add(PEER_ISS, 1), nxt).window(65535));
            }
        }
    }
    for h in [&mut copy, &mut zero, &mut lent] {
        h.conn.shutdown(h.now).unwrap();
    }
    // The rest of the data and the FIN, acknowledged as they go.
    let mut fin_seen = false;
    for _ in 0..50 {
        loop {
            let mut buf = [0u8; 2048];
            let mut header = [0u8; 60];
            let whole = copy.conn.poll_transmit(copy.now, &mut buf).unwrap();
            let parts = zero.conn.poll_transmit_chunks(zero.now, &mut header).unwrap();
            let (Some(whole), Some(parts)) = (whole, parts) else {
                break;
            };
            let mut joined = header[..parts.header_len].to_vec();
            parts.payload.slices().iter().for_each(|s| joined.extend_from_slice(s));
            assert_eq!(joined, &buf[..whole.len], "after the close");
            let (lent_segment, _) = poll_lent(&mut lent).expect("lent form sends too");
            assert_eq!(lent_segment, joined, "after the close, lent");
            let segment = Segment::parse(&joined).unwrap();
            fin_seen |= segment.header.flags.contains(tcp_proto::wire::Flags::FIN);
        }
        for h in [&mut copy, &mut zero, &mut lent] {
            let nxt = h.conn.status().snd_nxt.get();
            h.deliver(seg(ack(), add(PEER_ISS, 1), nxt).window(65535));
        }
    }
    assert!(fin_seen, "the FIN went in every form alike");
    assert_eq!(copy.state(), State::FinWait2);
    assert_eq!(zero.state(), State::FinWait2);
    assert_eq!(lent.state(), State::FinWait2);
}

#[test]
fn lent_payload_is_the_queued_chunk_itself_and_checksummed_over() {
    let mut h = sender(8192);
    let chunk = Bytes::from(pattern(3000, 9));
    assert_eq!(h.conn.send_bytes(h.now, chunk.clone()).unwrap(), 3000);
    let range = chunk.as_ptr_range();
    for i in 0..3u32 {
        let mut header = [0u8; 60];
        let lent = h.conn.poll_transmit_borrowed(h.now, &mut header).unwrap().unwrap();
        let mut packet = header[..lent.header_len].to_vec();
        for piece in lent.payload.clone() {
            let inside = range.start <= piece.as_ptr() && piece.as_ptr_range().end <= range.end;
            assert!(inside, "a piece of the queued chunk's memory, not a copy");
            packet.extend_from_slice(piece);
        }
        let segment = Segment::parse_checked(&packet, LOCAL.ip(), lent.transmit.remote.ip())
            .expect("the header's checksum covers the lent payload (MUST-2)");
        let sent = Sent::new(&segment, lent.transmit.remote);
        let flags = if i == 2 { psh_ack() } else { ack() };
        assert_seg(&sent, flags, add(ISS, 1 + 1000 * i), add(PEER_ISS, 1), WINDOW);
        assert_eq!(sent.payload, &chunk[1000 * i as usize..][..1000]);
    }
    assert!(poll_lent(&mut h).is_none());
    // A loss: the retransmission is lent from the same memory again.
    h.jump_to_deadline();
    let (packet, _) = poll_lent(&mut h).expect("the retransmission");
    let segment = Segment::parse(&packet).unwrap();
    assert_eq!((segment.header.seq.get(), segment.payload), (add(ISS, 1), &chunk[..1000]));
}

#[test]
fn a_header_buffer_too_small_for_the_lent_form_is_an_error_and_consumes_nothing() {
    let mut h = sender(8192);
    h.conn.send_bytes(h.now, Bytes::from(pattern(1000, 0))).unwrap();
    let mut tiny = [0u8; 19];
    assert!(h.conn.poll_transmit_borrowed(h.now, &mut tiny).is_err());
    let (packet, _) = poll_lent(&mut h).expect("the segment is still there");
    let segment = Segment::parse(&packet).unwrap();
    assert_eq!((segment.header.seq.get(), segment.payload.len()), (add(ISS, 1), 1000));
}

#[test]
fn a_header_buffer_too_small_is_an_error_and_consumes_nothing() {
    let mut h = sender(8192);
    h.conn.send_bytes(h.now, Bytes::from(pattern(1000, 0))).unwrap();
    let mut tiny = [0u8; 19];
    assert!(h.conn.poll_transmit_chunks(h.now, &mut tiny).is_err());
    let (sent, _) = poll_chunks(&mut h).expect("the segment is still there");
    assert_eq!((sent.seq, sent.payload.len()), (add(ISS, 1), 1000));
}

// ---- Byte-exact transfers over the simulator. ----

/// How an application hands data to its connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SendForm {
    Copy,
    Bytes,
    Chunks,
}

struct App {
    outgoing: Bytes,
    written: usize,
    form: SendForm,
    /// Writes at most a few hundred octets per step, so ACKs arrive between writes and the
    /// send queue's tail is partly acknowledged before it is ever sealed.
    trickle: bool,
    shut: bool,
    received: Vec<u8>,
    eof: bool,
}

impl App {
    fn new(outgoing: Vec<u8>, form: SendForm, trickle: bool) -> Self {
        let outgoing = Bytes::from(outgoing);
        let (written, shut, eof) = (0, false, false);
        Self { outgoing, written, form, trickle, shut, received: Vec::new(), eof }
    }

    fn drive(&mut self, conn: &mut Connection, now: Instant, rng: &mut Rng) {
        let mut rest = self.outgoing.slice(self.written..);
        if self.trickle {
            rest.truncate(rng.below(600) as usize);
        }
        if !rest.is_empty() {
            let taken = match self.form {
                SendForm::Copy => conn.send(now, &rest),
                SendForm::Bytes => conn.send_bytes(now, rest),
                SendForm::Chunks => {
                    // Chunks of random sizes, tiny ones (copied) included.
                    let mut chunks = Vec::new();
                    let mut at = 0;
                    while at < rest.len() && chunks.len() < 6 {
                        let n = (1 + rng.below(3000) as usize).min(rest.len() - at);
                        chunks.push(rest.slice(at..at + n));
                        at += n;
                    }
                    conn.write_chunks(now, &mut chunks)
                }
            };
            if let Ok(n) = taken {
                self.written += n;
            }
        }
        if self.written == self.outgoing.len() && !self.shut && conn.state() != State::SynSent {
            self.shut = conn.shutdown(now).is_ok();
        }
        let mut buf = [0u8; 4096];
        loop {
            match conn.recv(&mut buf) {
                Ok(0) => break,
                Ok(n) => self.received.extend_from_slice(&buf[..n]),
                Err(CallError::Closing) => {
                    self.eof = true;
                    break;
                }
                Err(_) => break,
            }
        }
    }
}

/// How the connections' output is polled in a transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OutputForm {
    Copy,
    Chunks,
    Lent,
}

fn transfer(seed: u64, forms: [SendForm; 2], output: OutputForm, trickle: bool) {
    let mut rng = Rng::new(seed ^ 0xb17e5);
    let a_data = pattern(20_000 + rng.below(60_000) as usize, seed as u8);
    let b_data = pattern(rng.below(20_000) as usize, !seed as u8);
    let link = |rng: &mut Rng| LinkConfig {
        delay: Duration::from_millis(1 + rng.below(20)),
        jitter: Duration::from_millis(rng.below(10)),
        loss_ppm: rng.below(100_000) as u32,
        duplicate_ppm: rng.below(20_000) as u32,
        reorder_ppm: rng.below(200_000) as u32,
        ..LinkConfig::perfect()
    };
    let config = |rng: &mut Rng, iss: u32| {
        let mut config = Config::with_fixed_isn(SeqNum::new(iss));
        config.send_buffer = 2048 + rng.below(30_000) as usize;
        config.recv_buffer = 2048 + rng.below(30_000) as usize;
        config.nodelay = rng.below(2) == 0;
        config.r2_data = None;
        config.msl = Duration::from_secs(3600);
        config
    };
    let (ab, ba) = (link(&mut rng), link(&mut rng));
    let (config_a, config_b) = (config(&mut rng, 77), config(&mut rng, u32::MAX - 5));
    let now = Instant::ZERO;
    let a = Connection::connect(config_a, now, addr_a(40_000), addr_b(80)).unwrap();
    let b = Connection::listen(config_b, now, addr_b(80));
    let mut sim = Sim::new(a, b, Link::new(ab, seed * 2 + 1), Link::new(ba, seed * 2 + 2), now);
    sim.chunked_output = output == OutputForm::Chunks;
    sim.borrowed_output = output == OutputForm::Lent;
    let mut app_a = App::new(a_data.clone(), forms[0], trickle);
    let mut app_b = App::new(b_data.clone(), forms[1], trickle);
    let done = sim.run_until(Duration::from_secs(3_000), |sim| {
        let now = sim.now;
        app_a.drive(&mut sim.a, now, &mut rng);
        app_b.drive(&mut sim.b, now, &mut rng);
        app_a.eof && app_b.eof
    });
    let what = format!("seed {seed}, {forms:?}, output {output:?}, trickle {trickle}");
    assert!(done, "{what}: not done\n{}", sim.trace());
    assert!(app_b.received == a_data, "{what}: A's data arrived changed");
    assert!(app_a.received == b_data, "{what}: B's data arrived changed");
}

#[test]
fn every_send_form_delivers_exactly_over_a_lossy_reordering_link() {
    let forms = [SendForm::Copy, SendForm::Bytes, SendForm::Chunks];
    for seed in 0..12u64 {
        for (i, &form_a) in forms.iter().enumerate() {
            let form_b = forms[(i + seed as usize) % 3];
            for output in [OutputForm::Copy, OutputForm::Chunks, OutputForm::Lent] {
                transfer(seed, [form_a, form_b], output, seed % 2 == 1);
            }
        }
    }
}

// ---- Endpoints. ----

#[test]
fn endpoints_send_bytes_and_write_chunks_and_transmit_header_only() {
    let config = |secret: u8| {
        let mut connection = Config::new([secret; 16]);
        connection.send_buffer = 16 * 1024;
        EndpointConfig::new(connection, [secret; 16])
    };
    let (a_addr, b_addr) = (addr_a(40_000), addr_b(80));
    let mut client = Endpoint::new(config(1));
    let mut server = Endpoint::new(config(2));
    server.listen(b_addr, 4).unwrap();
    let mut now = Instant::from_millis(1);
    let c = client.connect(now, a_addr.ip(), b_addr).unwrap();
    let data = Bytes::from(pattern(200_000, 3));
    let (mut written, mut received, mut s) = (0, Vec::new(), None);
    let mut in_flight: VecDeque<(Vec<u8>, std::net::IpAddr, std::net::IpAddr)> = VecDeque::new();
    for round in 0..20_000 {
        if written < data.len() {
            let rest = data.slice(written..);
            written += if round % 2 == 0 {
                client.send_bytes(now, c, rest).unwrap()
            } else {
                let mut chunks =
                    [rest.slice(..rest.len().min(5000)), rest.slice(rest.len().min(5000)..)];
                client.write_chunks(now, c, &mut chunks).unwrap()
            };
        }
        for from_client in [true, false] {
            let (from, to) =
                if from_client { (&mut client, &mut server) } else { (&mut server, &mut client) };
            let mut header = [0u8; 60];
            // Every third round through `poll_transmit_chunks`, the others lent.
            if round % 3 == 0 {
                while let Some(tx) = from.poll_transmit_chunks(now, &mut header).unwrap() {
                    let mut packet = header[..tx.header_len].to_vec();
                    tx.payload.slices().iter().for_each(|s| packet.extend_from_slice(s));
                    in_flight.push_back((packet, tx.transmit.local.ip(), tx.transmit.remote.ip()));
                }
            } else {
                while let Some(tx) = from.poll_transmit_borrowed(now, &mut header).unwrap() {
                    let mut packet = header[..tx.header_len].to_vec();
                    tx.payload.for_each(|s| packet.extend_from_slice(s));
                    in_flight.push_back((packet, tx.transmit.local.ip(), tx.transmit.remote.ip()));
                }
            }
            while let Some((packet, src, dst)) = in_flight.pop_front() {
                to.handle_segment(now, src, dst, &packet);
            }
        }
        while client.poll_event().is_some() {}
        while server.poll_event().is_some() {}
        if s.is_none() {
            s = server.accept(b_addr).unwrap();
        }
        if let Some(s) = s {
            let mut buf = [0u8; 8192];
            while let Ok(n @ 1..) = server.recv(s, &mut buf) {
                received.extend_from_slice(&buf[..n]);
            }
        }
        if received.len() == data.len() {
            break;
        }
        now += Duration::from_millis(1);
        client.handle_timeout(now);
        server.handle_timeout(now);
    }
    assert!(received == data, "{} of {} octets, in order", received.len(), data.len());
}
