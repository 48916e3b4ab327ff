//! The zero-copy receive path (issue #19): `handle_segment_bytes` keeps payload as slices of
//! the packets, `read_chunk` / `recv_bytes` hand them out without a copy, and the window
//! counts the memory the held packets pin (RFC 9293 §3.8.6.2.2 SWS avoidance and SHLD-14's
//! never-shrinking edge still hold). Exact segments, windows and bytes.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use bytes::{Bytes, BytesMut};
use common::*;
use tcp_proto::testing::addr_a;
use tcp_proto::{CallError, Config, Endpoint, EndpointConfig, Instant};

/// Metadata one held piece costs (its slice, what it pins, its position), counted as pinned:
/// 48 octets on a 64-bit target.
const PIECE: usize = 48;

fn pattern(n: usize, salt: u8) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8 ^ salt).collect()
}

/// Three 1000-octet segments in 2 KiB buffers into a 4 KiB receive buffer. The window the
/// peer sees never retreats (SHLD-14), but what the buffer may offer is the buffer less the
/// pinned packets, and the held data is compacted (copied once) when the packets pin too much.
/// After the application reads the first 2000 octets, the copying path offers 3096 octets (a
/// window update); here the third packet still pins 2 KiB, the buffer could offer 2000, less
/// than one SWS step (min(4096 / 2, 1460)) past the edge known, and no update goes out until
/// that slice is read too.
#[test]
fn pinned_packets_count_against_the_window_and_are_compacted() {
    let mut h = established();
    let d = add(PEER_ISS, 1);
    let data = pattern(3000, 0x5a);
    let first = h.deliver_bytes(seg(ack(), d, add(ISS, 1)).payload(&data[..1000]), 2048);
    // 2048 + 48 pinned: the buffer could offer 2000, but the peer was offered up to 4096 past
    // the old RCV.NXT, and that edge holds.
    assert_seg(&h.expect_one(), ack(), add(ISS, 1), add(d, 1000), 3096);
    assert_eq!(h.conn.status().rcv_wnd, 4096 - 2048 - PIECE as u32);
    assert_eq!(h.conn.status().recv_pinned, 2048 + PIECE);

    // The second packet fits the buffer and its sixteenth (256 octets): kept as a slice.
    h.deliver_bytes(seg(ack(), add(d, 1000), add(ISS, 1)).payload(&data[1000..2000]), 2048);
    assert_seg(&h.expect_one(), ack(), add(ISS, 1), add(d, 2000), 2096);
    let status = h.conn.status();
    assert_eq!((status.recv_pinned, status.recv_compactions, status.rcv_wnd), (2 * 2096, 0, 0));

    // The third would not: the first two are compacted into 2000 fresh octets first.
    let third = h.deliver_bytes(seg(ack(), add(d, 2000), add(ISS, 1)).payload(&data[2000..]), 2048);
    assert_seg(&h.expect_one(), ack(), add(ISS, 1), add(d, 3000), 1096);
    let status = h.conn.status();
    assert_eq!((status.recv_pinned, status.recv_compactions), (2000 + PIECE + 2048 + PIECE, 1));
    assert_eq!((status.recv_queued, status.rcv_wnd), (3000, 0));

    // The compacted first two segments come out as one chunk (a copy); the third still pins
    // its packet, so the window stays.
    let chunk = h.conn.read_chunk(usize::MAX).unwrap().unwrap();
    assert_eq!(&chunk[..], &data[..2000]);
    assert_ne!(chunk.as_ptr(), first, "compacted: a copy");
    h.expect_nothing();
    assert_eq!(h.conn.status().rcv_wnd, 4096 - 2048 - PIECE as u32);
    // The third is the packet's own octets; once it is taken, the window opens.
    let chunk = h.conn.recv_bytes().unwrap().unwrap();
    assert_eq!((chunk.as_ptr(), &chunk[..]), (third, &data[2000..]));
    assert_eq!(h.conn.status().recv_pinned, 0);
    assert_seg(&h.expect_one(), ack(), add(ISS, 1), add(d, 3000), 4096);
    assert_eq!(h.conn.recv_bytes(), Ok(None));

    // The copying path, same segments: the ring counts octets only.
    let mut h = established();
    for i in 0..3 {
        let payload = &data[1000 * i as usize..][..1000];
        h.deliver(seg(ack(), add(d, 1000 * i), add(ISS, 1)).payload(payload));
        h.expect_one();
    }
    let mut buf = [0u8; 2000];
    assert_eq!(h.conn.recv(&mut buf), Ok(2000));
    assert_seg(&h.expect_one(), ack(), add(ISS, 1), add(d, 3000), 3096);
}

/// `recv_bytes` returns the payload where it lay in the packet the caller handed over, and
/// `read_chunk` splits it without a copy either.
#[test]
fn recv_bytes_points_into_the_original_packet() {
    let mut h = established();
    let d = add(PEER_ISS, 1);
    let data = pattern(300, 1);
    let at = h.deliver_bytes(seg(psh_ack(), d, add(ISS, 1)).payload(&data), 2048);
    assert_seg(&h.expect_one(), ack(), add(ISS, 1), add(d, 300), 3796);
    let head = h.conn.read_chunk(100).unwrap().unwrap();
    assert_eq!((head.as_ptr(), &head[..]), (at, &data[..100]));
    assert_eq!(h.conn.status().recv_pinned, 2048 + PIECE, "the rest still pins the packet");
    let rest = h.conn.recv_bytes().unwrap().unwrap();
    assert_eq!((rest.as_ptr(), &rest[..]), (at.wrapping_add(100), &data[100..]));
    assert_eq!(h.conn.read_chunk(10), Ok(None));
}

/// Overlapping out-of-order segments and duplicates (RFC 9293 §3.10.7.4: only new octets are
/// kept) deliver every octet once, in order, and each ACK is exact.
#[test]
fn overlapping_and_duplicate_slices_deliver_each_octet_once() {
    let mut h = established();
    let d = add(PEER_ISS, 1);
    let data = pattern(400, 7);
    let send = |h: &mut Harness, from: usize, to: usize| {
        h.deliver_bytes(
            seg(ack(), add(d, from as u32), add(ISS, 1)).payload(&data[from..to]),
            2048,
        );
        h.expect_one()
    };
    // Out of order: a duplicate ACK for RCV.NXT each time, the window as offered.
    assert_seg(&send(&mut h, 100, 200), ack(), add(ISS, 1), d, 4096);
    assert_seg(&send(&mut h, 50, 150), ack(), add(ISS, 1), d, 4096);
    assert_seg(&send(&mut h, 100, 200), ack(), add(ISS, 1), d, 4096);
    assert_seg(&send(&mut h, 180, 300), ack(), add(ISS, 1), d, 4096);
    // In order, overlapping the parked data: everything to 300 is in.
    assert_seg(&send(&mut h, 0, 120), ack(), add(ISS, 1), add(d, 300), 3796);
    // A duplicate below RCV.NXT, then the rest.
    assert_seg(&send(&mut h, 250, 320), ack(), add(ISS, 1), add(d, 320), 3776);
    assert_seg(&send(&mut h, 320, 400), ack(), add(ISS, 1), add(d, 400), 3696);
    let mut got = Vec::new();
    let mut buf = [0u8; 37];
    loop {
        match h.conn.read_chunk(50).unwrap() {
            Some(chunk) => got.extend_from_slice(&chunk),
            None => break,
        }
        let n = h.conn.recv(&mut buf).unwrap();
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, data);
    assert_eq!(h.conn.status().recv_pinned, 0);
}

/// A flood of 1-octet segments, each in its own 2 KiB buffer, out of order (every offset of
/// the window, from the far end back) and then in order, while the application reads
/// nothing: what the connection pins never exceeds its receive buffer plus the documented
/// allowance (a sixteenth of it, plus one segment and its 48 octets of metadata), and every
/// octet comes out, in order. Without the accounting it would pin 2 KiB per octet: 32 MiB.
#[test]
fn a_flood_of_one_octet_segments_cannot_pin_more_than_the_receive_buffer() {
    let mut config = config();
    config.recv_buffer = 16 * 1024;
    let mut h = Harness::connect_with(config);
    h.expect_one();
    h.deliver(seg(syn_ack(), PEER_ISS, add(ISS, 1)).mss(1460));
    assert_seg(&h.expect_one(), ack(), add(ISS, 1), add(PEER_ISS, 1), 16 * 1024);
    let d = add(PEER_ISS, 1);
    let buffer = h.conn.status().recv_buffer;
    let bound = buffer + buffer / 16 + 1 + PIECE;
    let data = pattern(32 * 1024, 3);
    let mut most = 0;
    let mut one = |h: &mut Harness, offset: usize| {
        h.deliver_bytes(
            seg(ack(), add(d, offset as u32), add(ISS, 1)).payload(&data[offset..][..1]),
            2048,
        );
        while h.poll().is_some() {}
        let pinned = h.conn.status().recv_pinned;
        most = most.max(pinned);
        assert!(pinned <= bound, "{pinned} pinned after octet {offset}; bound {bound}");
    };
    for offset in (1..8 * 1024).rev() {
        one(&mut h, offset);
    }
    one(&mut h, 0);
    assert_eq!(h.conn.status().recv_queued, 8 * 1024);
    // In order, up to what the window lets in.
    for offset in 8 * 1024..16 * 1024 {
        one(&mut h, offset);
    }
    let status = h.conn.status();
    assert_eq!(status.recv_queued, 16 * 1024);
    assert_eq!(status.rcv_wnd, 0);
    assert!(status.recv_compactions > 100, "{} compactions", status.recv_compactions);
    assert!(most > buffer / 2, "the flood did pin memory: {most}");
    eprintln!(
        "flood: at most {most} octets pinned (bound {bound}), {} compactions",
        status.recv_compactions
    );
    let mut got = Vec::new();
    while let Some(chunk) = h.conn.recv_bytes().unwrap() {
        got.extend_from_slice(&chunk);
    }
    assert_eq!(got, &data[..16 * 1024]);
    assert_eq!(h.conn.counters().recv_memory_dropped, 0);
}

/// The endpoint's forms: `handle_segment_bytes` demultiplexes like `handle_segment`, and
/// `read_chunk` / `recv_bytes` take a `ConnectionHandle`; end of stream is reported as by
/// `recv`.
#[test]
fn endpoint_bytes_input_and_chunk_reads() {
    let config = |secret: u8| EndpointConfig::new(Config::new([secret; 16]), [secret; 16]);
    let (mut client, mut server) = (Endpoint::new(config(1)), Endpoint::new(config(2)));
    let listen = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 80);
    server.listen(listen, 4).unwrap();
    let mut now = Instant::from_millis(1);
    let c = client.connect(now, addr_a(0).ip(), listen).unwrap();
    let data = pattern(50_000, 9);
    let mut buf = [0u8; 2048];
    let (mut s, mut sent, mut got, mut eof) = (None, 0, Vec::new(), false);
    let (mut chunks, mut shut, mut pinned_seen) = (0, false, false);
    for _ in 0..2000 {
        now += std::time::Duration::from_millis(1);
        client.handle_timeout(now);
        server.handle_timeout(now);
        if sent < data.len() {
            sent += client.send(now, c, &data[sent..]).unwrap_or(0);
        } else if !shut && client.status(c).is_ok_and(|status| status.state.is_synchronized()) {
            client.shutdown(now, c).unwrap();
            shut = true;
        }
        while let Some(tx) = client.poll_transmit(now, &mut buf).unwrap() {
            let mut packet = BytesMut::with_capacity(2048);
            packet.extend_from_slice(&buf[..tx.len]);
            server.handle_segment_bytes(now, tx.local.ip(), tx.remote.ip(), packet);
        }
        while let Some(tx) = server.poll_transmit(now, &mut buf).unwrap() {
            client.handle_segment(now, tx.local.ip(), tx.remote.ip(), &buf[..tx.len]);
        }
        while client.poll_event().is_some() {}
        while server.poll_event().is_some() {}
        if s.is_none() {
            s = server.accept(listen).unwrap();
        }
        let Some(s) = s else { continue };
        pinned_seen |= server.status(s).unwrap().recv_pinned > 0;
        loop {
            match server.read_chunk(s, 1000) {
                Ok(Some(chunk)) => {
                    chunks += 1;
                    got.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    assert_eq!(e, CallError::Closing.into());
                    eof = true;
                    break;
                }
            }
        }
        if eof {
            break;
        }
    }
    assert!(
        eof,
        "end of stream not reported: got {} of {}, sent {sent}, s {s:?}: {:?}",
        got.len(),
        data.len(),
        s.map(|s| server.status(s))
    );
    assert_eq!(got, data);
    assert!(chunks >= 50_000 / 1000, "{chunks} chunks of at most 1000 octets");
    assert!(pinned_seen, "the server held slices of the packets");
}

/// With the window full of parked data, a retransmission that overlaps it from RCV.NXT is
/// taken: only its octets not parked already count against the buffer. (Counted whole, it
/// would be refused at every retransmission: a connection stuck for ever.)
#[test]
fn a_retransmission_overlapping_parked_data_fits_a_full_window() {
    let mut h = established();
    let d = add(PEER_ISS, 1);
    let data = pattern(4096, 11);
    for (from, to) in [(100, 1400), (1400, 2700), (2700, 4096)] {
        h.deliver_bytes(
            seg(ack(), add(d, from), add(ISS, 1)).payload(&data[from as usize..to]),
            2048,
        );
        assert_seg(&h.expect_one(), ack(), add(ISS, 1), d, 4096);
    }
    h.deliver_bytes(seg(ack(), d, add(ISS, 1)).payload(&data[..1460]), 2048);
    assert_seg(&h.expect_one(), ack(), add(ISS, 1), add(d, 4096), 0);
    assert_eq!(h.conn.counters().recv_memory_dropped, 0);
    let mut got = vec![0u8; 5000];
    assert_eq!(h.conn.recv(&mut got), Ok(4096));
    assert_eq!(&got[..4096], &data[..]);
}

/// A FIN beyond a hole (held as `rcv_fin_at`) takes effect when the slice that fills the hole
/// arrives; the parked slice before it is delivered, and end of stream follows the data.
#[test]
fn a_fin_beyond_a_hole_takes_effect_when_the_hole_fills() {
    let mut h = established();
    let d = add(PEER_ISS, 1);
    let data = pattern(200, 21);
    h.deliver_bytes(seg(fin_ack(), add(d, 100), add(ISS, 1)).payload(&data[100..]), 2048);
    assert_seg(&h.expect_one(), ack(), add(ISS, 1), d, 4096);
    assert_eq!(h.state(), tcp_proto::State::Established);
    h.deliver_bytes(seg(ack(), d, add(ISS, 1)).payload(&data[..100]), 2048);
    assert_seg(&h.expect_one(), ack(), add(ISS, 1), add(d, 201), 3896);
    assert_eq!(h.state(), tcp_proto::State::CloseWait);
    assert_eq!(h.conn.recv_bytes().unwrap().unwrap(), &data[..100]);
    assert_eq!(h.conn.recv_bytes().unwrap().unwrap(), &data[100..]);
    assert_eq!(h.conn.recv_bytes(), Err(CallError::Closing));
}

/// SACK blocks and D-SACK reports (RFC 2018 §4, RFC 2883 §4) are the assembler's, whichever
/// storage holds the octets: a duplicate of parked data is reported first, then its block.
#[test]
fn sack_and_dsack_blocks_through_the_bytes_path_rfc_2018_4_rfc_2883_4() {
    let mut h = Harness::connect();
    assert!(h.expect_one().options.sack_permitted);
    h.deliver(seg(syn_ack(), PEER_ISS, add(ISS, 1)).mss(1460).sack_permitted());
    h.expect_one();
    let d = add(PEER_ISS, 1);
    let data = pattern(300, 5);
    h.deliver_bytes(seg(ack(), add(d, 100), add(ISS, 1)).payload(&data[100..200]), 2048);
    assert_eq!(sack_blocks(&h.expect_one()), [(add(d, 100), add(d, 200))]);
    h.deliver_bytes(seg(ack(), add(d, 150), add(ISS, 1)).payload(&data[150..250]), 2048);
    assert_eq!(
        sack_blocks(&h.expect_one()),
        [(add(d, 150), add(d, 200)), (add(d, 100), add(d, 250))]
    );
    h.deliver_bytes(seg(ack(), d, add(ISS, 1)).payload(&data[..100]), 2048);
    let ack_seg = h.expect_one();
    assert_eq!(ack_seg.ack, add(d, 250));
    assert_eq!(sack_blocks(&ack_seg), []);
    let mut got = Vec::new();
    while let Some(chunk) = h.conn.recv_bytes().unwrap() {
        got.extend_from_slice(&chunk);
    }
    assert_eq!(got, &data[..250]);
}

/// Urgent data (MUST-33) is counted from the next octet the application reads, whichever call
/// reads it: `read_chunk` moves it like `recv`.
#[test]
fn urgent_pending_follows_chunk_reads() {
    let mut h = established();
    let d = add(PEER_ISS, 1);
    let data = pattern(100, 13);
    h.deliver_bytes(seg(ack(), d, add(ISS, 1)).payload(&data).urgent(50), 2048);
    h.expect_one();
    assert_eq!(h.conn.urgent_pending(), 50);
    assert_eq!(h.conn.read_chunk(20).unwrap().unwrap(), &data[..20]);
    assert_eq!(h.conn.urgent_pending(), 30);
    assert_eq!(h.conn.recv_bytes().unwrap().unwrap(), &data[20..]);
    assert_eq!(h.conn.urgent_pending(), 0);
}

/// `read_chunks` hands out several chunks in one call, each a slice of its own packet, and
/// runs a read's bookkeeping once for the batch: one window update when the batch frees the
/// pinned packets, the end of the stream as `read_chunk` reports it.
#[test]
fn read_chunks_hands_out_a_batch_of_slices_with_one_window_update() {
    let mut h = established();
    let d = add(PEER_ISS, 1);
    let data = pattern(3000, 0x33);
    let mut at = Vec::new();
    for i in 0..3u32 {
        let payload = &data[1000 * i as usize..][..1000];
        at.push(h.deliver_bytes(seg(ack(), add(d, 1000 * i), add(ISS, 1)).payload(payload), 1024));
        h.expect_one();
    }
    // Three packets of 1024 octets pin 3 × (1024 + 48) of the 4096-octet buffer.
    assert_eq!(h.conn.status().recv_pinned, 3 * (1024 + PIECE));
    let mut out = [Bytes::new(), Bytes::new()];
    assert_eq!(h.conn.read_chunks(&mut out), Ok(2));
    assert_eq!((out[0].as_ptr(), &out[0][..]), (at[0], &data[..1000]));
    assert_eq!((out[1].as_ptr(), &out[1][..]), (at[1], &data[1000..2000]));
    assert_eq!(h.conn.status().recv_pinned, 1024 + PIECE);
    // The connection counts what it holds: the slices handed out are the application's.
    let update = h.expect_one();
    assert_seg(&update, ack(), add(ISS, 1), add(d, 3000), 4096 - 1024 - PIECE as u16);
    h.expect_nothing();
    let mut rest = [Bytes::new(), Bytes::new()];
    assert_eq!(h.conn.read_chunks(&mut rest), Ok(1));
    assert_eq!((rest[0].as_ptr(), &rest[0][..]), (at[2], &data[2000..]));
    assert!(rest[1].is_empty(), "the slot past the last chunk is left as it was");
    // The window grows by 1072 more, less than one SWS step (min(4096 / 2, 1460)) past the
    // edge just advertised: no update (RFC 9293 §3.8.6.2.2).
    assert_eq!(h.conn.status().rcv_wnd, 4096);
    h.expect_nothing();
    assert_eq!(h.conn.read_chunks(&mut rest), Ok(0));
    assert_eq!(h.conn.read_chunks(&mut []), Ok(0));
    // The peer's FIN: once everything before it was read, the stream has ended.
    h.deliver(seg(fin_ack(), add(d, 3000), add(ISS, 1)));
    h.expect_one();
    assert_eq!(h.conn.read_chunks(&mut rest), Err(CallError::Closing));
}
