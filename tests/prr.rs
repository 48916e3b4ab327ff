//! Proportional Rate Reduction (RFC 6937, as RFC 9937 revises it) through the public API, with
//! exact segments per incoming ACK: during a SACK fast recovery PRR, not RFC 6675's
//! `cwnd − pipe`, decides how much each ACK lets go.
//!
//! Every test opens like `tests/sack.rs`: a SYN-ACK 100 ms after our SYN (SRTT 100 ms) with
//! MSS 1000, SACK-permitted and no timestamps, so a segment is 1000 octets. Ten ACKs at
//! t = 1.2 s, one per segment of the initial window, grow cwnd by slow start to 20 segments
//! (RFC 5681 (2): one SMSS per ACK): segments 10–29 are then in flight, all sent at 1.2 s, the
//! starting point of RFC 6937 §3.1's examples (cwnd = FlightSize = 20 segments, so recovery
//! sets ssthresh = 10 segments). The retransmissions and new segments PRR sends are listed as
//! segment numbers: segment `n` carries our octets `1000·n .. 1000·(n + 1)`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::time::Duration;

use common::*;
use tcp_proto::{Config, Instant};

/// The peer's MSS: a full segment is 1000 octets.
const MSS: u16 = 1000;
/// The peer's window: 60 segments, never the limit here.
const PEER_WINDOW: u16 = 60_000;

/// Sequence number of our data octet `n` (our SYN takes ISS).
fn d(n: u32) -> u32 {
    add(ISS, 1 + n)
}

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// Room for 64 segments of sending, and NewReno: the RFC's examples halve the window
/// (ssthresh = FlightSize / 2), where CUBIC would keep 0.7 of it.
fn sender_config() -> Config {
    let mut config = newreno(config());
    config.send_buffer = 64 * 1024;
    config
}

/// The peer's pure ACK of segments below `acked` with SACK blocks given as segment ranges
/// `[from, to)`.
fn peer_ack(acked: u32, blocks: &[(u32, u32)]) -> Seg {
    let blocks: Vec<(u32, u32)> = blocks.iter().map(|&(l, r)| (d(l * 1000), d(r * 1000))).collect();
    seg(ack(), add(PEER_ISS, 1), d(acked * 1000)).window(PEER_WINDOW).sack(&blocks)
}

/// The segment numbers of what was sent, each checked to be a full segment of our data.
fn numbers(sent: &[Sent]) -> Vec<u32> {
    sent.iter()
        .map(|s| {
            assert_eq!(s.payload.len(), usize::from(MSS), "a full segment: {s:?}");
            s.seq.wrapping_sub(d(0)) / 1000
        })
        .collect()
}

fn drain(h: &mut Harness) -> Vec<u32> {
    let sent: Vec<Sent> = std::iter::from_fn(|| h.poll()).collect();
    numbers(&sent)
}

/// Established as described in the module docs, with 60 segments written: after the ten
/// ACKs at 1.2 s, segments 10–29 are in flight and cwnd is 20 segments.
fn twenty_in_flight() -> Harness {
    let mut h = Harness::connect_with(sender_config());
    h.expect_one();
    h.advance(Duration::from_millis(100));
    h.deliver(seg(syn_ack(), PEER_ISS, d(0)).mss(MSS).window(PEER_WINDOW).sack_permitted());
    h.expect_one();
    let data: Vec<u8> = (0..60_000).map(|i| (i % 251) as u8).collect();
    assert_eq!(h.conn.send(h.now, &data).unwrap(), 60_000);
    assert_eq!(drain(&mut h), (0..10).collect::<Vec<_>>(), "the initial window");
    h.now = at(1200);
    let mut grown = Vec::new();
    for acked in 1..=10 {
        h.deliver(peer_ack(acked, &[]));
        grown.extend(drain(&mut h));
    }
    assert_eq!(grown, (10..30).collect::<Vec<_>>(), "two segments for each ACK");
    let status = h.conn.status();
    assert_eq!((status.cwnd, status.ssthresh), (20_000, u32::MAX));
    h
}

/// RFC 6937 §3.1's first example, one segment lost (here segment 10; no Limited Transmit).
/// At 1.3 s duplicate ACKs SACK 11, 11–12, 11–13, …, one more segment each. The third makes
/// segment 10 lost (RFC 8985: three SACKed, a zero reordering window) and starts recovery:
/// ssthresh = FlightSize / 2 = 10 segments; RecoverFS = pipe as recovery begins = 20 − 2
/// SACKed = 18 segments. On each ACK prr_delivered grows by one segment and (pipe > ssthresh)
/// sndcnt = CEIL(prr_delivered × 10 / 18) − prr_out: 1 (the retransmission), 1, 0, 1, 0, 1, 0,
/// 1, 0, 1, 1, 0, 1, 0 on the ACKs that SACK up to 13, 14, …, 26; from the ACK that SACKs
/// up to 27 pipe is at ssthresh and the reduction bound rules (PRR-SSRB:
/// min(ssthresh − pipe, …)): 0, then 1 and 1 as pipe falls to 9. Sending is spread over the
/// round trip, one segment about every other ACK, where RFC 6675's cwnd − pipe would send
/// nothing for seven ACKs and then one on each. The ACK of the retransmission ends recovery
/// with cwnd = ssthresh (RFC 6937 §3), and that ACK counts in congestion avoidance.
#[test]
fn single_loss_spreads_the_reduction_over_the_round_trip_rfc_6937_3_1() {
    let mut h = twenty_in_flight();
    h.now = at(1300);
    let mut per_ack = Vec::new();
    for top in 12..=30 {
        h.deliver(peer_ack(10, &[(11, top)]));
        per_ack.push(drain(&mut h));
    }
    let expected: Vec<Vec<u32>> = vec![
        vec![],
        vec![],
        vec![10],
        vec![30],
        vec![],
        vec![31],
        vec![],
        vec![32],
        vec![],
        vec![33],
        vec![],
        vec![34],
        vec![35],
        vec![],
        vec![36],
        vec![],
        vec![],
        vec![37],
        vec![38],
    ];
    assert_eq!(per_ack, expected);
    let status = h.conn.status();
    assert_eq!((status.cwnd, status.ssthresh), (10_000, 10_000));
    assert_eq!(h.conn.counters().sack_recoveries, 1);
    // The retransmission arrives: everything up to 30 acknowledged, past the recovery point.
    h.now = at(1400);
    h.deliver(peer_ack(30, &[]));
    // cwnd = ssthresh, then this ACK's 20 segments count in congestion avoidance: + 1 SMSS;
    // 9 segments (30–38) in flight leave room for 2.
    assert_eq!(drain(&mut h), [39, 40]);
    let status = h.conn.status();
    assert_eq!((status.cwnd, status.ssthresh), (11_000, 10_000));
    assert_eq!(h.conn.counters().retransmission_timeouts, 0);
}

/// RFC 6937 §3.1's second example: fifteen segments lost (10–24), five ACKs come back
/// (SACKing 25, 25–26, …, 25–29). The third starts recovery with all fifteen lost and pipe =
/// 2 segments, far below ssthresh = 10: the slow-start reduction bound lets each ACK send
/// DeliveredData + 1 segment = 2 (RFC 6937 "d"), so the holes go two by two and pipe grows
/// by one segment per ACK — where RFC 6675's cwnd − pipe = 8 would send eight
/// retransmissions in one burst.
#[test]
fn burst_loss_rebuilds_the_flight_one_segment_per_ack_prr_ssrb_rfc_6937_3_1() {
    let mut h = twenty_in_flight();
    h.now = at(1300);
    let mut per_ack = Vec::new();
    for top in 26..=30 {
        h.deliver(peer_ack(10, &[(25, top)]));
        per_ack.push(drain(&mut h));
    }
    assert_eq!(per_ack, [vec![], vec![], vec![10, 11], vec![12, 13], vec![14, 15]]);
    let status = h.conn.status();
    assert_eq!((status.cwnd, status.ssthresh), (10_000, 10_000));
}

/// RFC 6937 §3 and §4: prr_out counts every segment sent in recovery, new data included, and
/// what a stalled application did not use is banked (prr_delivered − prr_out) while pipe is
/// above ssthresh. One loss as in
/// `single_loss_spreads_the_reduction_over_the_round_trip_rfc_6937_3_1`, but only the 30
/// segments in flight or acknowledged were written: on the ACKs that would send new data
/// nothing goes. Written after the ACK that SACKs up to 20 (prr_delivered 7 segments,
/// prr_out 1, pipe 11: CEIL(7 × 10 / 18) − 1 = 3), three of four new segments go at once;
/// the next ACK sends the fourth (CEIL(8 × 10 / 18) − 4 = 1).
#[test]
fn sending_opportunities_a_stalled_application_missed_are_banked_rfc_6937_4() {
    let mut h = Harness::connect_with(sender_config());
    h.expect_one();
    h.advance(Duration::from_millis(100));
    h.deliver(seg(syn_ack(), PEER_ISS, d(0)).mss(MSS).window(PEER_WINDOW).sack_permitted());
    h.expect_one();
    let data: Vec<u8> = (0..34_000).map(|i| (i % 251) as u8).collect();
    assert_eq!(h.conn.send(h.now, &data[..30_000]).unwrap(), 30_000);
    assert_eq!(drain(&mut h).len(), 10);
    h.now = at(1200);
    for acked in 1..=10 {
        h.deliver(peer_ack(acked, &[]));
        drain(&mut h);
    }
    h.now = at(1300);
    let mut per_ack = Vec::new();
    for top in 12..=20 {
        h.deliver(peer_ack(10, &[(11, top)]));
        per_ack.push(drain(&mut h));
    }
    let mut expected = vec![vec![]; 9];
    expected[2] = vec![10];
    assert_eq!(per_ack, expected);
    assert_eq!(h.conn.send(h.now, &data[30_000..]).unwrap(), 4000);
    assert_eq!(drain(&mut h), [30, 31, 32]);
    h.deliver(peer_ack(10, &[(11, 21)]));
    assert_eq!(drain(&mut h), [33]);
}
