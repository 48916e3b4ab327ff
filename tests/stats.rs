//! `Connection::info` (statistics in the manner of Linux's `TCP_INFO`) after scripted
//! exchanges: exact octet totals, retransmissions by cause, recoveries, SACK and D-SACK
//! counts, and the figures it shares with `status()`.
//!
//! The opening is `tests/sack.rs`'s: a SYN-ACK 100 ms after our SYN (SRTT 100 ms) with MSS
//! 1000, so a segment is 1000 octets; segment `n` carries our octets `1000·n .. 1000·(n+1)`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::time::Duration;

use common::*;
use tcp_proto::{Config, State, TcpInfo};

const MSS: u16 = 1000;
const PEER_WINDOW: u16 = 60_000;

/// Sequence number of our data octet `n` (our SYN takes ISS).
fn d(n: u32) -> u32 {
    add(ISS, 1 + n)
}

/// The peer's pure ACK of our segments below `acked`, with SACK blocks as segment ranges.
fn peer_ack(acked: u32, blocks: &[(u32, u32)]) -> Seg {
    let blocks: Vec<(u32, u32)> = blocks.iter().map(|&(l, r)| (d(l * 1000), d(r * 1000))).collect();
    seg(ack(), add(PEER_ISS, 1), d(acked * 1000)).window(PEER_WINDOW).sack(&blocks)
}

/// Segment numbers of what was sent (all full data segments).
fn drain(h: &mut Harness) -> Vec<u32> {
    std::iter::from_fn(|| h.poll())
        .map(|s| {
            assert_eq!(s.payload.len(), usize::from(MSS), "a full segment: {s:?}");
            s.seq.wrapping_sub(d(0)) / 1000
        })
        .collect()
}

/// Established with MSS 1000 (SACK if `sack`), `segments` full segments written and the
/// initial window of them sent (returned).
fn sending(config: Config, sack: bool, segments: u32) -> (Harness, Vec<u32>) {
    let mut h = Harness::connect_with(config);
    h.expect_one();
    h.advance(Duration::from_millis(100));
    let syn_ack = seg(syn_ack(), PEER_ISS, d(0)).mss(MSS).window(PEER_WINDOW);
    h.deliver(if sack { syn_ack.sack_permitted() } else { syn_ack });
    h.expect_one();
    let data: Vec<u8> = (0..segments * 1000).map(|i| (i % 251) as u8).collect();
    assert_eq!(h.conn.send(h.now, &data).unwrap(), data.len());
    let sent = drain(&mut h);
    (h, sent)
}

fn big_send_buffer(mut config: Config) -> Config {
    config.send_buffer = 64 * 1024;
    config
}

/// What `info` shares with `status` is the same figure.
fn assert_matches_status(h: &Harness) -> TcpInfo {
    let (info, status) = (h.conn.info(), h.conn.status());
    assert_eq!(info.state, status.state);
    assert_eq!((info.srtt, info.rttvar, info.rto), (status.srtt, status.rttvar, status.rto));
    assert_eq!((info.cwnd, info.ssthresh), (status.cwnd, status.ssthresh));
    assert_eq!(info.mss, status.effective_mss);
    assert_eq!((info.snd_wnd, info.rcv_wnd), (status.snd_wnd, status.rcv_wnd));
    assert_eq!((info.send_queued, info.recv_queued), (status.send_queued, status.recv_queued));
    assert_eq!(info.consecutive_retransmissions, status.consecutive_retransmissions);
    assert_eq!(info.rto_count, status.total_retransmissions);
    assert_eq!((info.sack, info.timestamps), (status.sack, status.timestamps));
    // SND.UNA's and SND.NXT's distances from the ISS, less our SYN: the octet totals.
    assert_eq!(info.bytes_acked, u64::from(status.snd_una.since(status.iss)) - 1);
    let in_flight = u64::from(status.snd_nxt.since(status.snd_una));
    assert_eq!(info.bytes_sent, info.bytes_acked + in_flight + info.bytes_retransmitted);
    info
}

#[test]
fn a_clean_exchange_counts_octets_and_nothing_else() {
    let (mut h, sent) = sending(newreno(big_send_buffer(config())), true, 10);
    assert_eq!(sent, (0..10).collect::<Vec<_>>());
    let info = assert_matches_status(&h);
    assert_eq!((info.state, info.bytes_sent, info.bytes_acked), (State::Established, 10_000, 0));
    assert_eq!(info.srtt, Some(Duration::from_millis(100)));
    h.advance(Duration::from_millis(100));
    h.deliver(peer_ack(4, &[]));
    let info = assert_matches_status(&h);
    assert_eq!((info.bytes_acked, info.bytes_sent), (4_000, 10_000));
    assert_eq!((info.retransmitted_segments, info.recoveries, info.rto_count), (0, 0, 0));
    assert_eq!((info.sack_blocks_received, info.dsacks_received), (0, 0));
    // Data from the peer and its FIN: 2 500 octets received, the FIN no octet of data.
    let payload = [7u8; 2500];
    h.deliver(seg(psh_ack(), add(PEER_ISS, 1), d(4_000)).window(PEER_WINDOW).payload(&payload));
    h.deliver(seg(fin_ack(), add(PEER_ISS, 2501), d(4_000)).window(PEER_WINDOW));
    let info = assert_matches_status(&h);
    assert_eq!((info.state, info.bytes_received, info.recv_queued), (State::CloseWait, 2500, 2500));
}

/// Segment 1 of ten is lost; duplicate ACKs SACK 2, 2–3, … 2–9: the third starts a SACK
/// recovery whose one retransmission is segment 1 (a fast retransmit); the ACK of everything
/// ends it. Then a D-SACK reports segment 1 arrived twice.
#[test]
fn a_sack_recovery_counts_one_fast_retransmission_and_every_block() {
    let (mut h, _) = sending(newreno(big_send_buffer(config())), true, 10);
    h.advance(Duration::from_millis(100));
    h.deliver(peer_ack(1, &[]));
    let mut resent = drain(&mut h);
    let mut blocks = 0;
    for top in 3..=10 {
        h.deliver(peer_ack(1, &[(2, top)]));
        blocks += 1;
        resent.extend(drain(&mut h));
    }
    assert_eq!(resent, [1], "segment 1 sent again, nothing else (no new data was written)");
    let info = assert_matches_status(&h);
    assert_eq!(info.recoveries, 1);
    assert_eq!(
        (info.retransmitted_segments, info.fast_retransmits, info.other_retransmits),
        (1, 1, 0)
    );
    assert_eq!(info.bytes_retransmitted, 1000);
    assert_eq!((info.bytes_acked, info.bytes_sent), (1000, 11_000));
    assert_eq!((info.sack_blocks_received, blocks), (8, 8));
    assert_eq!((info.rto_count, info.dsacks_received), (0, 0));
    h.advance(Duration::from_millis(100));
    h.deliver(peer_ack(10, &[]));
    // The retransmission was not needed after all: the peer got segment 1 twice (RFC 2883).
    h.deliver(peer_ack(10, &[(1, 2)]));
    let info = assert_matches_status(&h);
    assert_eq!((info.bytes_acked, info.bytes_sent), (10_000, 11_000));
    assert_eq!((info.dsacks_received, info.sack_blocks_received), (1, 9));
    assert_eq!((info.recoveries, info.retransmitted_segments), (1, 1));
}

/// Without SACK: the third duplicate ACK is NewReno's fast retransmit (RFC 6582).
#[test]
fn a_newreno_fast_retransmit_is_a_recovery_and_a_fast_retransmission() {
    let (mut h, _) = sending(newreno(big_send_buffer(config())), false, 10);
    h.advance(Duration::from_millis(100));
    h.deliver(peer_ack(1, &[]));
    let mut resent = drain(&mut h);
    for _ in 0..3 {
        h.deliver(peer_ack(1, &[]));
        resent.extend(drain(&mut h));
    }
    assert_eq!(resent, [1]);
    let info = assert_matches_status(&h);
    assert!(!info.sack);
    assert_eq!(info.recoveries, 1);
    assert_eq!(
        (info.retransmitted_segments, info.fast_retransmits, info.other_retransmits),
        (1, 1, 0)
    );
    assert_eq!((info.rto_count, info.sack_blocks_received), (0, 0));
    assert_eq!((info.bytes_acked, info.bytes_sent, info.bytes_retransmitted), (1000, 11_000, 1000));
}

/// Without SACK (so no tail loss probe comes first), nothing comes back: the RTO resends
/// segment 0 (not a fast retransmission); its ACK lets the go-back-N resend of segment 1 go.
#[test]
fn retransmission_timeouts_count_as_timeouts_and_other_retransmissions() {
    let (mut h, sent) = sending(newreno(config()), false, 2);
    assert_eq!(sent, [0, 1]);
    h.jump_to_deadline();
    assert_eq!(drain(&mut h), [0]);
    let info = assert_matches_status(&h);
    assert_eq!((info.rto_count, info.consecutive_retransmissions), (1, 1));
    assert_eq!(
        (info.retransmitted_segments, info.fast_retransmits, info.other_retransmits),
        (1, 0, 1)
    );
    assert_eq!((info.bytes_sent, info.bytes_retransmitted), (3000, 1000));
    h.advance(Duration::from_millis(10));
    h.deliver(peer_ack(1, &[]));
    assert_eq!(drain(&mut h), [1]);
    let info = assert_matches_status(&h);
    assert_eq!((info.rto_count, info.consecutive_retransmissions), (1, 0));
    assert_eq!(
        (info.retransmitted_segments, info.fast_retransmits, info.other_retransmits),
        (2, 0, 2)
    );
    assert_eq!((info.bytes_acked, info.bytes_sent, info.bytes_retransmitted), (1000, 4000, 2000));
    assert_eq!(info.recoveries, 0);
}
