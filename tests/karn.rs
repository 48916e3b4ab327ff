//! Karn's algorithm (RFC 9293 MUST-18, RFC 6298 §3) on every path that sends a segment again:
//! without timestamps the ACK that covers a retransmitted segment gives no RTT sample (SRTT,
//! RTTVAR and RTO stay exactly as they were), while a later ACK of a segment sent only once
//! gives one. With timestamps the echo times the copy that arrived (RFC 7323 §4.2). And the
//! loss probe when there is no sample at all (RFC 8985 §7.2).

mod common;

use std::time::Duration;

use common::*;
use tcp_proto::{Config, IcmpError, Instant, SeqNum};

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

/// SRTT, RTTVAR and RTO.
fn estimator(h: &Harness) -> (Option<Duration>, Option<Duration>, Duration) {
    let status = h.conn.status();
    (status.srtt, status.rttvar, status.rto)
}

/// Sends whatever is due and returns the sequence numbers.
fn drain(h: &mut Harness) -> Vec<u32> {
    std::iter::from_fn(|| h.poll()).map(|sent| sent.seq).collect()
}

/// RACK (RFC 8985 §6): one SACK of the last of four segments arms the reordering timer;
/// when it expires the three before it are deemed lost and the first goes again. The ACK that
/// covers that retransmission gives no sample.
#[test]
fn rack_detected_loss_ack_gives_no_rtt_sample_must_18_rfc_6298_3() {
    let mut h = established_50ms(true);
    assert_eq!(send_segments(&mut h, 4).len(), 4);
    h.advance(Duration::from_millis(100));
    dup_ack(&mut h, &[(at(3000), at(4000))]);
    h.expect_nothing();
    // The reordering window (a quarter of the minimum RTT) after RACK.rtt.
    assert_eq!(h.conn.poll_timeout(), Some(Instant::from_millis(1_150)));
    h.jump_to_deadline();
    h.expect_nothing();
    assert_eq!(h.jump_to_deadline(), Instant::from_millis(1_175));
    assert_eq!(drain(&mut h), vec![at(0)], "RACK found the three lost; PRR lets one go");
    assert_eq!(h.conn.counters().retransmission_timeouts, 0);
    h.advance(Duration::from_millis(100));
    ack_to(&mut h, 4000);
    assert_untimed(&h, "the ACK of RACK's retransmissions");
    fresh_segment_is_timed(&mut h, 4000);
}

/// The tail loss probe (RFC 8985 §7.3) with nothing new queued resends the last segment. Its
/// first ACK was lost: the ACK the probe draws covers both segments, and would time the first
/// from its original send (PTO + RTT). No sample.
#[test]
fn tail_loss_probe_resend_ack_gives_no_rtt_sample_must_18_rfc_6298_3() {
    let mut h = established_50ms(true);
    assert_eq!(send_segments(&mut h, 2), vec![at(0), at(1000)]);
    // PTO = 2 × SRTT with two segments in flight.
    assert_eq!(h.jump_to_deadline(), Instant::from_millis(1_150));
    assert_eq!(drain(&mut h), vec![at(1000)], "the probe: the last segment again");
    assert_eq!(h.conn.counters().loss_probes, 1);
    h.advance(Duration::from_millis(50));
    ack_to(&mut h, 2000);
    assert_untimed(&h, "the ACK the probe drew");
    fresh_segment_is_timed(&mut h, 2000);
}

/// A loss probe in a fast recovery (`Scoreboard::may_schedule_probe`): the fast
/// retransmission is lost as well, no ACK comes, and after PTO the probe resends. The ACK
/// of everything gives no sample.
#[test]
fn loss_probe_in_fast_recovery_ack_gives_no_rtt_sample_must_18_rfc_6298_3() {
    let mut h = established_50ms(true);
    assert_eq!(send_segments(&mut h, 4).len(), 4);
    h.advance(Duration::from_millis(100));
    dup_ack(&mut h, &[(at(1000), at(2000))]);
    dup_ack(&mut h, &[(at(1000), at(3000))]);
    dup_ack(&mut h, &[(at(1000), at(4000))]);
    assert_eq!(drain(&mut h), vec![at(0)], "the fast retransmission");
    let probes = h.conn.counters().loss_probes;
    h.jump_to_deadline();
    assert_eq!(drain(&mut h), vec![at(0)], "the probe in recovery");
    assert_eq!(h.conn.counters().loss_probes, probes + 1);
    assert_eq!(h.conn.counters().retransmission_timeouts, 0);
    h.advance(Duration::from_millis(50));
    ack_to(&mut h, 4000);
    assert_untimed(&h, "the ACK of the probe");
    fresh_segment_is_timed(&mut h, 4000);
}

/// An RTO (RFC 6298 §5) without SACK: the flight goes again from SND.UNA, go-back-N. The
/// ACKs of the resend give no sample, and the backed-off RTO stays (§5 note, (5.7)) until a
/// segment sent once is timed.
#[test]
fn rto_and_go_back_n_acks_give_no_rtt_sample_must_18_rfc_6298_3() {
    let mut h = established_50ms(false);
    assert_eq!(send_segments(&mut h, 4).len(), 4);
    assert_eq!(h.jump_to_deadline(), Instant::from_millis(2_050));
    assert_eq!(drain(&mut h), vec![at(0)], "the RTO resends the first (loss window)");
    let backed_off = (Some(Duration::from_millis(50)), Some(Duration::from_millis(25)));
    h.advance(Duration::from_millis(50));
    ack_to(&mut h, 1000);
    assert_eq!(drain(&mut h), vec![at(1000), at(2000)], "go-back-N, paced by cwnd");
    let status = h.conn.status();
    assert_eq!(
        (status.srtt, status.rttvar, status.rto),
        (backed_off.0, backed_off.1, Duration::from_secs(2))
    );
    h.advance(Duration::from_millis(50));
    ack_to(&mut h, 3000);
    drain(&mut h);
    h.advance(Duration::from_millis(50));
    ack_to(&mut h, 4000);
    let status = h.conn.status();
    assert_eq!(
        (status.srtt, status.rttvar, status.rto),
        (backed_off.0, backed_off.1, Duration::from_secs(2)),
        "the go-back-N resend gave a sample"
    );
    fresh_segment_is_timed(&mut h, 4000);
}

/// A "packet too big" (RFC 8201) resends the flight at the smaller size: the ACK of those
/// pieces gives no sample.
#[test]
fn path_mtu_resend_ack_gives_no_rtt_sample_must_18_rfc_6298_3() {
    let mut h = established_50ms(true);
    assert_eq!(send_segments(&mut h, 2).len(), 2);
    h.advance(Duration::from_millis(10));
    assert!(h.conn.handle_icmp_error(
        h.now,
        IcmpError::PacketTooBig { mtu: 576 },
        SeqNum::new(at(0))
    ));
    let resent = drain(&mut h);
    assert_eq!(resent.first().copied(), Some(at(0)), "the flight again, in smaller pieces");
    assert!(resent.len() > 2, "{resent:?}");
    h.advance(Duration::from_millis(100));
    ack_to(&mut h, 2000);
    assert_untimed(&h, "the ACK of the smaller pieces");
}

/// A zero-window probe (MUST-36) sent a second time: the ACK that opens the window covers
/// the probed octet, sent twice. No sample.
#[test]
fn zero_window_probe_ack_gives_no_rtt_sample_must_18_rfc_6298_3() {
    let mut h = established_50ms(false);
    assert_eq!(send_segments(&mut h, 2).len(), 2);
    h.advance(Duration::from_millis(50));
    h.deliver(seg(ack(), add(PEER_ISS, 1), at(2000)).window(0));
    let before = estimator(&h);
    h.conn.send(h.now, b"more").unwrap();
    h.expect_nothing();
    h.jump_to_deadline();
    assert_eq!(drain(&mut h), vec![at(2000)], "the first probe");
    h.jump_to_deadline();
    assert_eq!(drain(&mut h), vec![at(2000)], "the probe again");
    h.advance(Duration::from_millis(50));
    h.deliver(seg(ack(), add(PEER_ISS, 1), at(2001)).window(60_000));
    assert_eq!(estimator(&h), before, "the ACK of the probe sent twice gave a sample");
}

/// With timestamps (RFC 7323 §4.2) the echo names the copy that arrived, so the ACK of a
/// fast retransmission is timed from the retransmission: sent at 1.15 s (TSval 1150),
/// acknowledged at 1.25 s echoing 1150, a 100 ms sample (one expected this round trip, RFC
/// 7323 Appendix G, as the ACK covers the whole flight): SRTT 7/8 × 50 + 1/8 × 100.
#[test]
fn with_timestamps_the_ack_of_a_fast_retransmission_is_timed_by_its_echo_rfc_7323_4_2() {
    let mut h = Harness::connect_with(karn_config(true));
    assert_eq!(h.expect_one().options.timestamps.map(|ts| ts.tsval), Some(1000));
    h.advance(Duration::from_millis(50));
    // 1012 less the 12-octet timestamps option: 1000-octet segments, as above.
    let syn_ack = seg(syn_ack(), PEER_ISS, add(ISS, 1)).mss(MSS + 12).window(60_000);
    h.deliver(syn_ack.sack_permitted().ts(500, 1000));
    h.expect_one();
    assert_untimed(&h, "after the handshake");
    assert_eq!(send_segments(&mut h, 4), vec![at(0), at(1000), at(2000), at(3000)]);
    h.advance(Duration::from_millis(100));
    for blocks in [[(at(1000), at(2000))], [(at(1000), at(3000))], [(at(1000), at(4000))]] {
        let dup = seg(ack(), add(PEER_ISS, 1), at(0)).window(60_000).sack(&blocks);
        h.deliver(dup.ts(600, 1050));
    }
    let again = h.poll().expect("the fast retransmission");
    assert_eq!((again.seq, again.options.timestamps.map(|ts| ts.tsval)), (at(0), Some(1150)));
    drain(&mut h);
    assert_untimed(&h, "duplicate ACKs");
    h.advance(Duration::from_millis(100));
    h.deliver(seg(ack(), add(PEER_ISS, 1), at(4000)).window(60_000).ts(700, 1150));
    assert_one_sample(&h, 100);
}

/// RFC 8985 §7.2: without an SRTT the probe timeout is 1 s. A SYN lost once (sent at 1 s,
/// again at 2 s) leaves no sample (Karn) and an RTO of 3 s (RFC 6298 (5.7)); the initial
/// window goes at 2.05 s and its ACK is lost. The probe — the last segment again — goes at
/// 3.05 s, not the RTO at 5.05 s; the RTO is re-armed from it, and the ACK it draws gives no
/// sample either (MUST-18).
#[test]
fn probe_without_an_srtt_goes_after_one_second_rfc_8985_7_2() {
    let mut h = Harness::connect_with(karn_config(true));
    h.expect_one();
    assert_eq!(h.jump_to_deadline(), Instant::from_millis(2_000));
    assert_eq!(h.expect_one().seq, ISS, "the SYN again");
    h.advance(Duration::from_millis(50));
    let syn_ack = seg(syn_ack(), PEER_ISS, add(ISS, 1)).mss(MSS).window(60_000);
    h.deliver(syn_ack.sack_permitted());
    h.expect_one();
    assert_eq!((h.conn.status().srtt, h.conn.status().rto), (None, Duration::from_secs(3)));
    assert_eq!(send_segments(&mut h, 4), vec![at(0), at(1000), at(2000), at(3000)]);
    assert_eq!(h.conn.poll_timeout(), Some(Instant::from_millis(3_050)), "PTO = 1 s");
    assert_eq!(h.jump_to_deadline(), Instant::from_millis(3_050));
    assert_eq!(drain(&mut h), vec![at(3000)], "the probe: the last segment again");
    assert_eq!(h.conn.counters().loss_probes, 1);
    assert_eq!(h.conn.counters().retransmission_timeouts, 1, "the SYN's only");
    assert_eq!(h.conn.poll_timeout(), Some(Instant::from_millis(6_050)), "the RTO, re-armed");
    h.advance(Duration::from_millis(50));
    ack_to(&mut h, 4000);
    assert_eq!((h.conn.status().srtt, h.conn.status().rto), (None, Duration::from_secs(3)));
    assert_eq!(h.conn.poll_timeout(), None);
}
