//! Karn's algorithm (RFC 9293 MUST-18, RFC 6298 §3) on every path that sends a segment again:
//! without timestamps the ACK that covers a retransmitted segment gives no RTT sample (SRTT,
//! RTTVAR and RTO stay exactly as they were), while a later ACK of a segment sent only once
//! gives one. With timestamps the echo times the copy that arrived (RFC 7323 §4.2).

mod common;

use std::time::Duration;

use common::*;
use tcp_proto::{Config, Instant};

/// The peer's MSS: 1000-octet segments keep the sequence arithmetic readable.
const MSS: u16 = 1000;

fn karn_config(sack: bool) -> Config {
    let mut config = newreno(config());
    config.send_buffer = 64 * 1024;
    config.sack = sack;
    config
}

/// ESTABLISHED through an active open whose SYN-ACK came 50 ms after the SYN: SRTT 50 ms,
/// RTTVAR 25 ms, RTO 1 s (RTO.min). The peer offers a 60 000-octet window.
fn established_50ms(sack: bool) -> Harness {
    let mut h = Harness::connect_with(karn_config(sack));
    h.expect_one();
    h.advance(Duration::from_millis(50));
    let mut syn_ack = seg(syn_ack(), PEER_ISS, add(ISS, 1)).mss(MSS).window(60_000);
    if sack {
        syn_ack = syn_ack.sack_permitted();
    }
    h.deliver(syn_ack);
    h.expect_one();
    assert_untimed(&h, "after the handshake");
    h
}

/// SRTT 50 ms, RTTVAR 25 ms, RTO 1 s: the handshake's sample and nothing since.
#[track_caller]
fn assert_untimed(h: &Harness, when: &str) {
    let status = h.conn.status();
    assert_eq!(
        (status.srtt, status.rttvar, status.rto),
        (Some(Duration::from_millis(50)), Some(Duration::from_millis(25)), Duration::from_secs(1)),
        "{when}: the estimator moved"
    );
}

/// The estimator after the handshake's 50 ms and one more sample of `sample_ms` (RFC 6298
/// (2.3)): SRTT = 7/8 × 50 + 1/8 × R, RTTVAR = 3/4 × 25 + 1/4 × |50 − R|.
#[track_caller]
fn assert_one_sample(h: &Harness, sample_ms: u64) {
    let r = sample_ms * 1000;
    let srtt = 50_000 * 7 / 8 + r / 8;
    let rttvar = 25_000 * 3 / 4 + r.abs_diff(50_000) / 4;
    let status = h.conn.status();
    assert_eq!(
        (status.srtt, status.rttvar),
        (Some(Duration::from_micros(srtt)), Some(Duration::from_micros(rttvar))),
        "expected exactly one sample of {sample_ms} ms"
    );
}

/// Octet `n` of the stream (0-based) as a sequence number.
fn at(n: u32) -> u32 {
    add(ISS, 1 + n)
}

/// Queues `segments` full segments and returns the sequence numbers of those sent now.
fn send_segments(h: &mut Harness, segments: usize) -> Vec<u32> {
    let data = vec![7u8; segments * usize::from(MSS)];
    h.conn.send(h.now, &data).unwrap();
    std::iter::from_fn(|| h.poll()).map(|sent| sent.seq).collect()
}

fn dup_ack(h: &mut Harness, blocks: &[(u32, u32)]) {
    h.deliver(seg(ack(), add(PEER_ISS, 1), at(0)).window(60_000).sack(blocks));
}

fn ack_to(h: &mut Harness, n: u32) {
    h.deliver(seg(ack(), add(PEER_ISS, 1), at(n)).window(60_000));
}

/// NewReno fast retransmit (RFC 6582, no SACK): four segments, the first lost; three
/// duplicate ACKs 100 ms later bring its retransmission, whose ACK 100 ms after that covers
/// all four. That ACK gives no sample (it would be 200 ms from the original send); the next
/// segment, sent once, gives one of exactly its round trip.
#[test]
fn fast_retransmit_newreno_ack_gives_no_rtt_sample_must_18_rfc_6298_3() {
    let mut h = established_50ms(false);
    assert_eq!(send_segments(&mut h, 4), vec![at(0), at(1000), at(2000), at(3000)]);
    h.advance(Duration::from_millis(100));
    for _ in 0..3 {
        dup_ack(&mut h, &[]);
    }
    let again = h.poll().expect("the fast retransmission");
    assert_eq!(again.seq, at(0));
    while h.poll().is_some() {}
    h.advance(Duration::from_millis(100));
    ack_to(&mut h, 4000);
    assert_untimed(&h, "the ACK of the fast retransmission");
    fresh_segment_is_timed(&mut h, 4000);
}

/// After recovery: a segment sent once, acknowledged 60 ms later, gives a 60 ms sample.
fn fresh_segment_is_timed(h: &mut Harness, acked: u32) {
    while h.poll().is_some() {}
    let sent = send_segments(h, 1);
    assert_eq!(sent.first().copied(), Some(at(acked)), "one fresh segment");
    h.advance(Duration::from_millis(60));
    let end = acked + u32::from(MSS) * u32::try_from(sent.len()).unwrap();
    ack_to(h, end);
    assert_one_sample(h, 60);
}

/// SACK-based fast retransmit (RFC 6675): the same loss, reported by three SACKs.
#[test]
fn fast_retransmit_sack_ack_gives_no_rtt_sample_must_18_rfc_6298_3() {
    let mut h = established_50ms(true);
    assert_eq!(send_segments(&mut h, 4), vec![at(0), at(1000), at(2000), at(3000)]);
    h.advance(Duration::from_millis(100));
    dup_ack(&mut h, &[(at(1000), at(2000))]);
    dup_ack(&mut h, &[(at(1000), at(3000))]);
    dup_ack(&mut h, &[(at(1000), at(4000))]);
    let again = h.poll().expect("the fast retransmission");
    assert_eq!(again.seq, at(0));
    while h.poll().is_some() {}
    h.advance(Duration::from_millis(100));
    ack_to(&mut h, 4000);
    assert_untimed(&h, "the ACK of the fast retransmission");
    fresh_segment_is_timed(&mut h, 4000);
}

/// Suppress an unused warning until every case uses it.
#[allow(dead_code)]
fn _unused(_: Instant) {}
