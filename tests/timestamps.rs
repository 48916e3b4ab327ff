//! RFC 7323 timestamps through the public API, against a scripted peer with exact segments:
//! negotiation in every combination (§3.2), the option's bytes, TS.Recent and Last.ACK.sent
//! (§4.3), RTTM after a retransmission (§4.1), PAWS (§5.3) and its 24-day rule (§5.5), the
//! effective MSS (MUST-16), and two tcp-proto peers.
//!
//! The harness's ISN source is `Fixed`, so our timestamp clock has no offset: TSval is the
//! harness clock in milliseconds (`isn::timestamp_offset`), and every expected value below is
//! exact.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::time::Duration;

use common::*;
use tcp_proto::testing::{Pair, addr_a, addr_b};
use tcp_proto::wire::{Segment, Timestamps};
use tcp_proto::{CloseReason, Config, Connection, ConnectionError, Event, Instant, State};

/// The peer's TSval on its SYN-ACK in [`ts_established`].
const PEER_TS: u32 = 500;

fn ts(tsval: u32, tsecr: u32) -> Option<Timestamps> {
    Some(Timestamps { tsval, tsecr })
}

/// The harness clock in milliseconds: our TSval at that moment.
fn ms(h: &Harness) -> u32 {
    h.now.as_millis() as u32
}

/// Active open with timestamps on both SYNs: our SYN at t = 1 s (TSval 1000), the peer's
/// SYN-ACK at t = 1.05 s (TSval 500, echoing 1000). TS.Recent is 500; SRTT 50 ms.
fn ts_established_with(config: Config) -> Harness {
    let mut h = Harness::connect_with(config);
    let syn_seg = h.expect_one();
    assert_seg(&syn_seg, syn(), ISS, 0, WINDOW);
    assert_eq!(syn_seg.options.timestamps, ts(1000, 0), "offered on our SYN, TSecr 0");
    h.advance(Duration::from_millis(50));
    h.deliver(seg(syn_ack(), PEER_ISS, add(ISS, 1)).mss(1460).ts(PEER_TS, 1000));
    let last = h.expect_one();
    assert_seg(&last, ack(), add(ISS, 1), add(PEER_ISS, 1), WINDOW);
    assert_eq!(last.options.timestamps, ts(1050, PEER_TS));
    assert_eq!(h.state(), State::Established);
    assert!(h.conn.status().timestamps);
    h.events();
    h
}

fn ts_established() -> Harness {
    ts_established_with(config())
}

// ------------------------------------------------------------------ negotiation (§3.2)

/// Both SYNs carry the option: from then on every segment does — ACK, data, FIN, in both
/// directions of the handshake — with TSecr echoing TS.Recent.
#[test]
fn both_syns_with_timestamps_put_the_option_on_every_segment_rfc_7323_3_2() {
    // Active: SYN, SYN-ACK, ACK (in `ts_established`), then data and FIN.
    let mut h = ts_established();
    h.advance(Duration::from_millis(50));
    h.conn.send(h.now, b"hello").unwrap();
    let data = h.expect_one();
    assert_seg(&data, psh_ack(), add(ISS, 1), add(PEER_ISS, 1), WINDOW);
    assert_eq!(data.options.timestamps, ts(1100, PEER_TS));
    h.advance(Duration::from_millis(50));
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(ISS, 6)).ts(600, 1100));
    h.expect_nothing();
    h.conn.close(h.now).unwrap();
    let fin = h.expect_one();
    assert_seg(&fin, fin_ack(), add(ISS, 6), add(PEER_ISS, 1), WINDOW);
    assert_eq!(fin.options.timestamps, ts(1150, 600), "TS.Recent moved to 600");

    // Passive: the SYN-ACK carries the option because the SYN did, and echoes its TSval.
    let mut h = Harness::listen();
    h.deliver(seg(syn(), PEER_ISS, 0).mss(1460).ts(700, 0));
    let synack = h.expect_one();
    assert_seg(&synack, syn_ack(), ISS, add(PEER_ISS, 1), WINDOW);
    assert_eq!(synack.options.timestamps, ts(1000, 700));
    h.advance(Duration::from_millis(20));
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(ISS, 1)).ts(710, 1000));
    assert_eq!(h.state(), State::Established);
    assert!(h.conn.status().timestamps);
    h.deliver(seg(psh_ack(), add(PEER_ISS, 1), add(ISS, 1)).payload(b"abc").ts(720, 1000));
    let reply = h.expect_one();
    assert_seg(&reply, ack(), add(ISS, 1), add(PEER_ISS, 4), WINDOW - 3);
    assert_eq!(reply.options.timestamps, ts(1020, 720));
}

/// The option is 10 octets after SACK-permitted (RFC 2018 §2, on by default) — or after two
/// NOPs without it — right after MSS on our SYN, so every option stays word-aligned (RFC 7323
/// Appendix A's layout, as Linux sends it).
#[test]
fn syn_carries_the_option_word_aligned_after_two_nops_rfc_7323_3_2() {
    let mut h = Harness::connect();
    let mut buf = [0u8; 128];
    let tx = h.conn.poll_transmit(h.now, &mut buf).unwrap().unwrap();
    let options = &buf[20..tx.len];
    let tsval = 1000u32.to_be_bytes();
    let expected = [
        [2, 4, 0x05, 0xb4], // MSS 1460
        [4, 2, 8, 10],      // SACK-permitted, timestamps kind 8 length 10
        tsval,              // TSval
        [0, 0, 0, 0],       // TSecr 0: no ACK bit
        [1, 3, 3, 0],       // NOP, window scale shift 0
    ]
    .concat();
    assert_eq!(options, &expected[..]);
    assert_eq!(tx.len, 40, "a 20-octet header with 20 octets of options");
}

/// Our SYN offered the option, the SYN-ACK did not carry it: no segment carries it from then
/// on, and the peer's later options are ignored (§3.2: "MUST be ignored").
#[test]
fn syn_ack_without_timestamps_switches_them_off_rfc_7323_3_2() {
    let mut h = Harness::connect();
    assert_eq!(h.expect_one().options.timestamps, ts(1000, 0));
    h.deliver(seg(syn_ack(), PEER_ISS, add(ISS, 1)).mss(1460));
    let last = h.expect_one();
    assert_seg(&last, ack(), add(ISS, 1), add(PEER_ISS, 1), WINDOW);
    assert_eq!(last.options.timestamps, None);
    assert!(!h.conn.status().timestamps);
    assert_eq!(h.conn.status().effective_mss, 1460, "no option, no 12 octets less");
    h.conn.send(h.now, b"hi").unwrap();
    assert_eq!(h.expect_one().options.timestamps, None);
    // A segment with an (old) TSval is processed normally: no PAWS without negotiation.
    h.deliver(seg(psh_ack(), add(PEER_ISS, 1), add(ISS, 3)).payload(b"ok").ts(1, 0));
    let reply = h.expect_one();
    assert_seg(&reply, ack(), add(ISS, 3), add(PEER_ISS, 3), WINDOW - 2);
    assert_eq!(reply.options.timestamps, None);
    // And one without the option is not dropped either.
    h.deliver(seg(psh_ack(), add(PEER_ISS, 3), add(ISS, 3)).payload(b"!"));
    assert_seg(&h.expect_one(), ack(), add(ISS, 3), add(PEER_ISS, 4), WINDOW - 3);
}

/// Timestamps switched off here (by `Config` for a listener, by `set_timestamps` for an active
/// open before its SYN): a SYN with the option gets a SYN-ACK without it, and no segment
/// carries it; once the SYN is out, the switch no longer takes.
#[test]
fn peer_offer_alone_puts_the_option_on_no_segment_rfc_7323_3_2() {
    let mut config = config();
    config.timestamps = false;
    let now = Instant::from_millis(1_000);
    let mut h = Harness { conn: Connection::listen(config, now, LOCAL), now, peer: REMOTE };
    h.deliver(seg(syn(), PEER_ISS, 0).mss(1460).ts(700, 0));
    let synack = h.expect_one();
    assert_seg(&synack, syn_ack(), ISS, add(PEER_ISS, 1), WINDOW);
    assert_eq!(synack.options.timestamps, None);
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(ISS, 1)).ts(710, 1000));
    assert_eq!(h.state(), State::Established);
    h.deliver(seg(psh_ack(), add(PEER_ISS, 1), add(ISS, 1)).payload(b"abc").ts(720, 1000));
    let reply = h.expect_one();
    assert_seg(&reply, ack(), add(ISS, 1), add(PEER_ISS, 4), WINDOW - 3);
    assert_eq!(reply.options.timestamps, None);

    // Per connection, before the SYN goes.
    let mut h = Harness::connect();
    assert!(h.conn.set_timestamps(false));
    let syn_seg = h.expect_one();
    assert_seg(&syn_seg, syn(), ISS, 0, WINDOW);
    assert_eq!(syn_seg.options.timestamps, None);
    assert!(!h.conn.set_timestamps(true), "the SYN went without it: too late");
    h.deliver(seg(syn_ack(), PEER_ISS, add(ISS, 1)).mss(1460).ts(PEER_TS, 1000));
    let last = h.expect_one();
    assert_seg(&last, ack(), add(ISS, 1), add(PEER_ISS, 1), WINDOW);
    assert_eq!(last.options.timestamps, None, "a SYN-ACK's option we never offered is ignored");
}

/// Neither SYN carries the option: none anywhere (the connection wants it, the peer's SYN
/// did not offer it).
#[test]
fn syn_without_timestamps_gets_no_option_anywhere_rfc_7323_3_2() {
    let mut h = syn_received_passive();
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(ISS, 1)));
    assert_eq!(h.state(), State::Established);
    assert!(!h.conn.status().timestamps);
    h.deliver(seg(psh_ack(), add(PEER_ISS, 1), add(ISS, 1)).payload(b"abc"));
    let reply = h.expect_one();
    assert_eq!((reply.flags, reply.options.timestamps), (ack(), None));
    h.conn.send(h.now, b"x").unwrap();
    assert_eq!(h.expect_one().options.timestamps, None);
    let mut buf = [0u8; 8];
    assert_eq!(h.conn.recv(&mut buf).unwrap(), 3);
    h.conn.close(h.now).unwrap();
    let fin = h.expect_one();
    assert_eq!((fin.flags, fin.options.timestamps), (fin_ack(), None));
}

/// TSecr is meaningful only with the ACK bit (§3.2: "the receiver MUST ignore" it otherwise):
/// a SYN whose TSecr would time a 999 ms round trip gives no sample; the ACK completing the
/// handshake, echoing our SYN-ACK's TSval 20 ms later, gives exactly 20 ms.
#[test]
fn tsecr_without_the_ack_bit_is_ignored_rfc_7323_3_2() {
    let mut h = Harness::listen();
    h.deliver(seg(syn(), PEER_ISS, 0).mss(1460).ts(700, 1));
    assert_eq!(h.expect_one().options.timestamps, ts(1000, 700));
    assert_eq!(h.conn.status().srtt, None);
    h.advance(Duration::from_millis(20));
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(ISS, 1)).ts(710, 1000));
    assert_eq!(h.state(), State::Established);
    assert_eq!(h.conn.status().srtt, Some(Duration::from_millis(20)));
}

/// Once negotiated, a segment without the option is dropped silently (§3.2 SHOULD) and
/// counted — never an abort; a RST without it still counts (RFC 5961 judges it by sequence).
#[test]
fn segment_without_timestamps_is_dropped_once_negotiated_rfc_7323_3_2() {
    let mut h = ts_established();
    h.deliver(seg(psh_ack(), add(PEER_ISS, 1), add(ISS, 1)).payload(b"abc"));
    h.expect_nothing();
    let mut buf = [0u8; 8];
    assert_eq!(h.conn.recv(&mut buf).unwrap(), 0);
    assert_eq!(h.conn.counters().timestamps_missing, 1);
    assert_eq!(h.state(), State::Established);
    h.deliver(seg(rst(), add(PEER_ISS, 1), 0));
    assert_eq!(h.state(), State::Closed);
    assert!(h.events().contains(&Event::Closed(CloseReason::Error(ConnectionError::Reset))));
}

/// Our RST on a connection that negotiated the option carries it (§3.2: SHOULD).
#[test]
fn abort_rst_carries_the_timestamps_option_rfc_7323_3_2() {
    let mut h = ts_established();
    h.conn.abort(h.now).unwrap();
    let reset = h.expect_one();
    assert_seg(&reset, rst(), add(ISS, 1), 0, 0);
    assert_eq!(reset.options.timestamps, ts(1050, 0), "no ACK bit: TSecr 0");
}

// ------------------------------------------------------------------ TS.Recent (§4.3)

/// TS.Recent takes the TSval of a segment only if it starts at or before Last.ACK.sent: an
/// out-of-order segment's TSval is not echoed, the one that fills the hole is (§4.3 case C);
/// with delayed ACKs the earliest segment's TSval is echoed (case A).
#[test]
fn ts_recent_echoes_the_earliest_segment_the_ack_covers_rfc_7323_4_3() {
    let mut h = ts_established();
    let data = [0x61u8; 100];
    // Beyond a hole: SEG.SEQ > Last.ACK.sent. The duplicate ACK still echoes 500.
    h.deliver(seg(psh_ack(), add(PEER_ISS, 101), add(ISS, 1)).payload(&data).ts(800, 1050));
    let dup = h.expect_one();
    assert_seg(&dup, ack(), add(ISS, 1), add(PEER_ISS, 1), WINDOW);
    assert_eq!(dup.options.timestamps, ts(1050, PEER_TS));
    // The segment filling the hole starts at Last.ACK.sent: its TSval is echoed.
    h.deliver(seg(psh_ack(), add(PEER_ISS, 1), add(ISS, 1)).payload(&data).ts(900, 1050));
    let filled = h.expect_one();
    assert_seg(&filled, ack(), add(ISS, 1), add(PEER_ISS, 201), WINDOW - 200);
    assert_eq!(filled.options.timestamps, ts(1050, 900));

    // Delayed ACK: two small segments before the ACK; it echoes the first one's TSval.
    let mut config = config();
    config.delayed_ack = Some(Duration::from_millis(100));
    let mut h = ts_established_with(config);
    h.deliver(seg(psh_ack(), add(PEER_ISS, 1), add(ISS, 1)).payload(b"one").ts(600, 1050));
    h.expect_nothing();
    h.advance(Duration::from_millis(10));
    h.deliver(seg(psh_ack(), add(PEER_ISS, 4), add(ISS, 1)).payload(b"two").ts(610, 1050));
    h.expect_nothing();
    h.jump_to_deadline();
    let delayed = h.expect_one();
    assert_seg(&delayed, ack(), add(ISS, 1), add(PEER_ISS, 7), WINDOW - 6);
    assert_eq!(delayed.options.timestamps, ts(ms(&h), 600));
    // The next segment starts at Last.ACK.sent again: its TSval is taken.
    h.deliver(seg(psh_ack(), add(PEER_ISS, 7), add(ISS, 1)).payload(b"3").ts(620, 1050));
    h.jump_to_deadline();
    assert_eq!(h.expect_one().options.timestamps, ts(ms(&h), 620));
}

// ------------------------------------------------------------------ RTTM (§4.1)

/// A retransmitted segment is timed by the TSval its ACK echoes (Karn's rule is not needed):
/// sent at 1.1 s, lost, retransmitted at 2.1 s (TSval 2100), acknowledged at 2.2 s echoing
/// 2100: a 100 ms sample, and the backed-off RTO is recomputed from it. Without timestamps the
/// same exchange gives no sample (MUST-18).
#[test]
fn retransmitted_segment_gives_an_rtt_sample_through_its_echo_rfc_7323_4_1() {
    let mut h = ts_established();
    let srtt = Duration::from_millis(50);
    assert_eq!(h.conn.status().srtt, Some(srtt), "the SYN's sample");
    h.advance(Duration::from_millis(50));
    h.conn.send(h.now, b"lost").unwrap();
    assert_eq!(h.expect_one().options.timestamps, ts(1100, PEER_TS));
    assert_eq!(h.jump_to_deadline(), Instant::from_millis(2_100));
    let again = h.expect_one();
    assert_seg(&again, psh_ack(), add(ISS, 1), add(PEER_ISS, 1), WINDOW);
    assert_eq!(again.options.timestamps, ts(2100, PEER_TS));
    assert_eq!(h.conn.status().rto, Duration::from_secs(2), "backed off");
    h.advance(Duration::from_millis(100));
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(ISS, 5)).ts(600, 2100));
    let status = h.conn.status();
    // RFC 6298 (2.3) with R' = 100 ms: SRTT 7/8 50 + 1/8 100, RTTVAR 3/4 25 + 1/4 50.
    assert_eq!(status.srtt, Some(Duration::from_micros(56_250)));
    assert_eq!(status.rttvar, Some(Duration::from_micros(31_250)));
    assert_eq!(status.rto, Duration::from_secs(1), "recomputed (and clamped to RTO.min)");

    // The same without timestamps: Karn's rule, no sample, the backoff stays.
    let mut h = Harness::connect();
    h.expect_one();
    h.advance(Duration::from_millis(50));
    h.deliver(seg(syn_ack(), PEER_ISS, add(ISS, 1)).mss(1460));
    h.expect_one();
    h.advance(Duration::from_millis(50));
    h.conn.send(h.now, b"lost").unwrap();
    h.expect_one();
    h.jump_to_deadline();
    h.expect_one();
    h.advance(Duration::from_millis(100));
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(ISS, 5)));
    assert_eq!(h.conn.status().srtt, Some(srtt));
    assert_eq!(h.conn.status().rto, Duration::from_secs(2));
}

/// Samples on every ACK are weighted by RFC 7323 Appendix G: with four full segments in
/// flight, ExpectedSamples = ceiling(4 × 1448 / (2 × 1448)) = 2, so a 100 ms sample moves SRTT
/// by 1/16 and RTTVAR by 1/8 of the difference, not by 1/8 and 1/4.
#[test]
fn samples_from_a_window_of_acks_are_weighted_rfc_7323_appendix_g() {
    let mut h = ts_established();
    h.advance(Duration::from_millis(50));
    h.conn.send(h.now, &[1; 4 * 1448]).unwrap();
    let sizes: Vec<usize> = std::iter::from_fn(|| h.poll()).map(|s| s.payload.len()).collect();
    assert_eq!(sizes, vec![1448; 4]);
    h.advance(Duration::from_millis(100));
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(ISS, 1 + 2 * 1448)).ts(600, 1100));
    let status = h.conn.status();
    // RTTVAR = (7 × 25 + |50 − 100|) / 8; SRTT = (15 × 50 + 100) / 16.
    assert_eq!(status.rttvar, Some(Duration::from_micros(28_125)));
    assert_eq!(status.srtt, Some(Duration::from_micros(53_125)));
}

/// A stretch ACK (a receiver's GRO: one ACK per 64 KiB super-segment from Linux over TUN)
/// stands for the part of the flight it covers: with five full segments in flight, an ACK of
/// three counts as one of ceiling(5 / 3) = 2 expected, not of Appendix G's ceiling(5 / 2) = 3,
/// so a 100 ms sample moves SRTT by 1/16 of the difference, not 1/24. Before, a receiver acknowledging
/// every 45 segments left SRTT nearly unmoved for dozens of round trips after a bad first
/// sample (an RTO of seconds on a path of microseconds, seen against Linux over TUN).
#[test]
fn a_stretch_ack_counts_for_the_part_of_the_flight_it_covers_rfc_7323_appendix_g() {
    let mut h = ts_established();
    h.advance(Duration::from_millis(50));
    h.conn.send(h.now, &[1; 5 * 1448]).unwrap();
    let sizes: Vec<usize> = std::iter::from_fn(|| h.poll()).map(|s| s.payload.len()).collect();
    assert_eq!(sizes, vec![1448; 5]);
    h.advance(Duration::from_millis(100));
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(ISS, 1 + 3 * 1448)).ts(600, 1100));
    let status = h.conn.status();
    // Five in flight, three acknowledged: two such ACKs a round trip.
    // RTTVAR = (7 × 25 + |50 − 100|) / 8; SRTT = (15 × 50 + 100) / 16.
    assert_eq!(status.rttvar, Some(Duration::from_micros(28_125)));
    assert_eq!(status.srtt, Some(Duration::from_micros(53_125)));
}

/// Our SYN went twice and the SYN-ACK echoes the TSval of the first (Linux answers the
/// retransmitted SYN from the request it made for the first, whose SYN-ACK was lost): that
/// echo would time the retransmission timeout, a 1 s "RTT". It gives no sample, as Karn's rule
/// without timestamps (MUST-18): RTO stays 3 s (RFC 6298 5.7) until the first data ACK, whose
/// echo is of a segment sent once, gives the path's 10 ms.
#[test]
fn syn_ack_echoing_an_earlier_copy_of_a_retransmitted_syn_gives_no_rtt_sample_must_18() {
    let mut h = Harness::connect();
    assert_eq!(h.expect_one().options.timestamps, ts(1000, 0));
    assert_eq!(h.jump_to_deadline(), Instant::from_millis(2_000));
    assert_eq!(h.expect_one().options.timestamps, ts(2000, 0), "the SYN again");
    h.advance(Duration::from_millis(10));
    h.deliver(seg(syn_ack(), PEER_ISS, add(ISS, 1)).mss(1460).ts(PEER_TS, 1000));
    assert_eq!(h.expect_one().options.timestamps, ts(2010, PEER_TS));
    assert_eq!(h.state(), State::Established);
    let status = h.conn.status();
    assert_eq!(status.srtt, None, "no sample from the stale echo");
    assert_eq!(status.rto, Duration::from_secs(3), "RFC 6298 (5.7)");
    h.conn.send(h.now, b"data").unwrap();
    assert_eq!(h.expect_one().options.timestamps, ts(2010, PEER_TS));
    h.advance(Duration::from_millis(10));
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(ISS, 5)).ts(PEER_TS + 10, 2010));
    assert_eq!(h.conn.status().srtt, Some(Duration::from_millis(10)));

    // An echo of the last SYN is the path's: taken.
    let mut h = Harness::connect();
    h.expect_one();
    h.jump_to_deadline();
    h.expect_one();
    h.advance(Duration::from_millis(10));
    h.deliver(seg(syn_ack(), PEER_ISS, add(ISS, 1)).mss(1460).ts(PEER_TS, 2000));
    h.expect_one();
    assert_eq!(h.conn.status().srtt, Some(Duration::from_millis(10)));
}

// ------------------------------------------------------------------ PAWS (§5)

/// R1: a segment whose TSval is older than TS.Recent is dropped and answered with an ACK
/// (<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, echoing TS.Recent), and counted; the same data with
/// the current TSval is taken.
#[test]
fn old_tsval_segment_is_dropped_with_an_ack_rfc_7323_5_3() {
    let mut h = ts_established();
    h.deliver(seg(psh_ack(), add(PEER_ISS, 1), add(ISS, 1)).payload(b"old").ts(PEER_TS - 1, 1));
    let reply = h.expect_one();
    assert_seg(&reply, ack(), add(ISS, 1), add(PEER_ISS, 1), WINDOW);
    assert_eq!(reply.options.timestamps, ts(1050, PEER_TS));
    let mut buf = [0u8; 8];
    assert_eq!(h.conn.recv(&mut buf).unwrap(), 0);
    assert_eq!(h.conn.counters().paws_rejected, 1);
    // Across the wrap too: 2^31 + 500 ticks "after" 500 is before it.
    h.deliver(seg(psh_ack(), add(PEER_ISS, 1), add(ISS, 1)).payload(b"old").ts(0x8000_01f5, 1));
    assert_eq!(h.expect_one().ack, add(PEER_ISS, 1));
    assert_eq!(h.conn.counters().paws_rejected, 2);
    // An equal TSval is not older.
    h.deliver(seg(psh_ack(), add(PEER_ISS, 1), add(ISS, 1)).payload(b"new").ts(PEER_TS, 1050));
    assert_seg(&h.expect_one(), ack(), add(ISS, 1), add(PEER_ISS, 4), WINDOW - 3);
    assert_eq!(h.conn.recv(&mut buf).unwrap(), 3);
    assert_eq!(&buf[..3], b"new");
}

/// R1's ACK for a duplicate it drops carries a D-SACK block (RFC 2883 §4): on a path that
/// reorders, the original of a segment its retransmission overtook arrives with an older
/// TSval, and without the block the sender never learns that the retransmission was spurious.
/// New data that PAWS drops is counted apart: the sender must send it again.
#[test]
fn paws_drop_of_a_duplicate_reports_it_as_a_dsack_rfc_7323_5_3_rfc_2883_4() {
    let mut h = Harness::connect_with(config());
    h.expect_one();
    h.advance(Duration::from_millis(50));
    h.deliver(seg(syn_ack(), PEER_ISS, add(ISS, 1)).mss(1460).sack_permitted().ts(PEER_TS, 1000));
    h.expect_one();
    assert!(h.conn.status().sack);
    // The retransmission of "abc" (TSval 600) fills RCV.NXT first: TS.Recent becomes 600.
    h.deliver(seg(psh_ack(), add(PEER_ISS, 1), add(ISS, 1)).payload(b"abc").ts(600, 1050));
    h.advance(Duration::from_millis(200));
    assert_seg(&h.expect_one(), ack(), add(ISS, 1), add(PEER_ISS, 4), WINDOW - 3);
    // Its original (TSval 550) comes after it: dropped, and R1's ACK reports it.
    h.deliver(seg(psh_ack(), add(PEER_ISS, 1), add(ISS, 1)).payload(b"abc").ts(550, 1000));
    let reply = h.expect_one();
    assert_seg(&reply, ack(), add(ISS, 1), add(PEER_ISS, 4), WINDOW - 3);
    assert_eq!(sack_blocks(&reply), [(add(PEER_ISS, 1), add(PEER_ISS, 4))]);
    assert_eq!(reply.options.timestamps, ts(1250, 600));
    let counters = h.conn.counters();
    assert_eq!((counters.paws_rejected, counters.paws_rejected_new_data), (1, 0));
    // An original the retransmission overtook that carries new data: dropped and counted,
    // with no D-SACK (nothing of it was held).
    h.deliver(seg(psh_ack(), add(PEER_ISS, 4), add(ISS, 1)).payload(b"def").ts(550, 1000));
    let reply = h.expect_one();
    assert_seg(&reply, ack(), add(ISS, 1), add(PEER_ISS, 4), WINDOW - 3);
    assert_eq!(sack_blocks(&reply), []);
    let counters = h.conn.counters();
    assert_eq!((counters.paws_rejected, counters.paws_rejected_new_data), (2, 1));
}

/// R1 exempts RSTs: one at RCV.NXT with an old TSval still resets the connection.
#[test]
fn rst_with_an_old_tsval_is_not_dropped_by_paws_rfc_7323_5_3() {
    let mut h = ts_established();
    h.deliver(seg(rst(), add(PEER_ISS, 1), 0).ts(1, 0));
    h.expect_nothing();
    assert_eq!(h.state(), State::Closed);
    assert_eq!(h.conn.counters().paws_rejected, 0);
    assert!(h.events().contains(&Event::Closed(CloseReason::Error(ConnectionError::Reset))));
}

/// A SYN is left to §3.10.7.4 step 4 (RFC 5961 §4: a challenge ACK) whatever its TSval, so a
/// restarted peer with a new clock learns the connection is open; PAWS counts nothing.
#[test]
fn syn_with_an_old_tsval_in_established_draws_the_challenge_ack_rfc_7323_5_3() {
    let mut h = ts_established();
    h.deliver(seg(syn(), add(PEER_ISS, 1000), 0).ts(3, 0));
    let reply = h.expect_one();
    assert_seg(&reply, ack(), add(ISS, 1), add(PEER_ISS, 1), WINDOW);
    assert_eq!(reply.options.timestamps, ts(1050, PEER_TS));
    assert_eq!(h.conn.counters().paws_rejected, 0);
    assert_eq!(h.conn.counters().challenge_acks, 1);
    assert_eq!(h.state(), State::Established);
}

/// §5.5: a TS.Recent set 24 days ago or more is no longer believed: the old-looking segment
/// is taken and its TSval becomes TS.Recent. A day earlier it is still dropped.
#[test]
fn ts_recent_idle_for_24_days_no_longer_drops_segments_rfc_7323_5_5() {
    let mut h = ts_established();
    let day = Duration::from_secs(24 * 60 * 60);
    // TS.Recent was set at 1.05 s, in second 1 of the caller's clock.
    h.now = Instant::from_millis(1_000) + (day * 24 - Duration::from_millis(1));
    h.deliver(seg(psh_ack(), add(PEER_ISS, 1), add(ISS, 1)).payload(b"a").ts(PEER_TS - 1, 1));
    assert_seg(&h.expect_one(), ack(), add(ISS, 1), add(PEER_ISS, 1), WINDOW);
    assert_eq!(h.conn.counters().paws_rejected, 1);
    h.now = Instant::from_millis(1_000) + day * 24 + Duration::from_secs(1);
    h.deliver(seg(psh_ack(), add(PEER_ISS, 1), add(ISS, 1)).payload(b"a").ts(PEER_TS - 1, 1));
    let reply = h.expect_one();
    assert_seg(&reply, ack(), add(ISS, 1), add(PEER_ISS, 2), WINDOW - 1);
    assert_eq!(reply.options.timestamps, ts(ms(&h), PEER_TS - 1));
    assert_eq!(h.conn.counters().paws_rejected, 1);
}

// ------------------------------------------------------------------ MSS (MUST-16)

/// With the option on every segment, a full data segment carries 12 octets less: the peer's
/// MSS 1460 gives 1448-octet segments, so the IP packet stays within 1500 octets.
#[test]
fn effective_mss_subtracts_the_timestamp_option_must_16() {
    let mut config = config();
    config.send_buffer = 4000;
    let mut h = ts_established_with(config);
    assert_eq!(h.conn.status().effective_mss, 1448);
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(ISS, 1)).window(8000).ts(PEER_TS, 1050));
    assert_eq!(h.conn.send(h.now, &[7; 3000]).unwrap(), 3000);
    let sizes: Vec<usize> = std::iter::from_fn(|| h.poll()).map(|s| s.payload.len()).collect();
    assert_eq!(sizes, vec![1448, 1448, 104]);
}

// ------------------------------------------------------------------ two tcp-proto peers

/// Two tcp-proto peers negotiate timestamps by default, move 200 kB both ways byte-exact with
/// the option on every segment, and measure RTTs from the echoes.
#[test]
fn two_peers_use_timestamps_on_every_segment_rfc_7323_3_2() {
    let now = Instant::from_millis(10);
    let a = Connection::connect(Config::new([1; 16]), now, addr_a(1000), addr_b(80)).unwrap();
    let b = Connection::listen(Config::new([2; 16]), now, addr_b(80));
    let mut pair = Pair::new(a, b, now);
    let (seen, without) =
        (std::rc::Rc::new(std::cell::Cell::new(0)), std::rc::Rc::new(std::cell::Cell::new(0)));
    let (seen2, without2) = (seen.clone(), without.clone());
    pair.set_filter(Box::new(move |_, segment: &Segment<'_>| {
        seen2.set(seen2.get() + 1);
        if segment.header.options.timestamps.is_none() {
            without2.set(without2.get() + 1);
        }
        tcp_proto::testing::Verdict::Deliver
    }));
    pair.run_until_idle();
    assert_eq!(pair.a.state(), State::Established);
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let (mut sent_a, mut sent_b) = (0, 0);
    let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
    for _ in 0..10_000 {
        let now = pair.now;
        sent_a += pair.a.send(now, &data[sent_a..]).unwrap();
        sent_b += pair.b.send(now, &data[sent_b..]).unwrap();
        pair.run_until_idle();
        got_b.extend(pair.read_b());
        got_a.extend(pair.read_a());
        if got_a.len() == data.len() && got_b.len() == data.len() {
            break;
        }
        // Reading may have owed a window update: the next round sends it; a timer is run
        // only when one is armed.
        pair.advance_to_next_deadline();
    }
    assert!(got_b == data && got_a == data, "byte-exact both ways");
    for status in [pair.a.status(), pair.b.status()] {
        assert!(status.timestamps);
        assert_eq!(status.effective_mss, 1448);
        assert!(status.srtt.is_some());
    }
    assert!(seen.get() > 200, "{} segments", seen.get());
    assert_eq!(without.get(), 0, "every segment carried the option");
}
