//! Selective acknowledgments through the public API, against a scripted peer with exact
//! segments: negotiation in every combination (RFC 2018 §2), the blocks our ACKs carry and
//! their order (RFC 2018 §3–§4), D-SACK (RFC 2883 §4), and SACK-based loss recovery for what
//! we send (RFC 6675 §5 with RFC 8985 RACK-TLP): RACK's loss detection and reordering timer,
//! recovery's single halving, never resending SACKed data, lost retransmissions, the tail loss
//! probe, and the timeout that finds SND.UNA SACKed (RFC 2018 §8).
//!
//! Every expectation is worked out from the RFCs; the doc comment of each test shows the
//! arithmetic. A test marked `#[ignore = "BUG: …"]` states what the RFC asks and the code does
//! not do yet (the reason names the cause); it is run with `cargo test --test sack --
//! --ignored` and must pass once the bug is fixed. The sender tests open with a SYN-ACK 100 ms after our SYN (SRTT 100 ms, RTTVAR
//! 50 ms, RTO 1 s, RFC 6298 (2.2)) offering MSS 1000 and no timestamps, so a full segment
//! carries exactly 1000 octets and the initial window is 10 segments (RFC 6928). PAWS, which
//! runs before any SACK processing, is tested in `tests/timestamps.rs`
//! (`old_tsval_segment_is_dropped_with_an_ack_rfc_7323_5_3`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::time::Duration;

use common::*;
use tcp_proto::wire::Timestamps;
use tcp_proto::{Config, Connection, Instant, State};

/// The peer's MSS in the sender tests: a full segment is 1000 octets.
const MSS: u16 = 1000;
/// The peer's window in the sender tests (no window scaling): 30 segments.
const PEER_WINDOW: u16 = 30_000;

/// Sequence number of our data octet `n` (our SYN takes ISS).
fn d(n: u32) -> u32 {
    add(ISS, 1 + n)
}

/// Sequence number of the peer's data octet `n`.
fn p(n: u32) -> u32 {
    add(PEER_ISS, 1 + n)
}

/// `ms` milliseconds on the harness clock.
fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// The data the sender tests write: octet `i` is `i mod 251`, so every resent payload can be
/// compared with what it resends.
fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// A configuration with room for 32 segments of sending, NewReno pinned: the expected windows
/// are RFC 6675's halving of FlightSize.
fn sender_config() -> Config {
    let mut config = newreno(config());
    config.send_buffer = 32 * 1024;
    config
}

/// Active open at t = 1 s, SACK-permitted on both SYNs, no timestamps (the SYN-ACK has none);
/// the SYN-ACK comes at t = 1.1 s with MSS 1000 and window 30000: SRTT 100 ms, RTO 1 s.
fn sack_established() -> Harness {
    sack_established_with_window(PEER_WINDOW)
}

/// [`sack_established`] with the peer's window `window`.
fn sack_established_with_window(window: u16) -> Harness {
    let mut h = Harness::connect_with(sender_config());
    let syn_seg = h.expect_one();
    assert_seg(&syn_seg, syn(), ISS, 0, WINDOW);
    assert!(syn_seg.options.sack_permitted);
    h.advance(Duration::from_millis(100));
    h.deliver(seg(syn_ack(), PEER_ISS, d(0)).mss(MSS).window(window).sack_permitted());
    let last = h.expect_one();
    assert_seg(&last, ack(), d(0), p(0), WINDOW);
    assert!(!last.options.sack_permitted, "SACK-permitted only on SYNs (RFC 2018 §2)");
    let status = h.conn.status();
    assert!(status.sack && !status.timestamps);
    assert_eq!(status.srtt, Some(Duration::from_millis(100)));
    assert_eq!(status.rto, Duration::from_secs(1));
    assert_eq!(status.effective_mss, MSS);
    h.events();
    h
}

/// Writes `len` octets of [`data`] (from octet `from` of the stream) and returns what goes.
fn send_from(h: &mut Harness, from: usize, len: usize) -> Vec<Sent> {
    let all = data(from + len);
    assert_eq!(h.conn.send(h.now, &all[from..]).unwrap(), len);
    std::iter::from_fn(|| h.poll()).collect()
}

/// Asserts a data segment of ours: flags, seq = our octet `from`, ACK of nothing from the
/// peer, our full window, `len` octets of [`data`] from `from`, and no SACK blocks.
#[track_caller]
fn assert_data(sent: &Sent, flags: tcp_proto::wire::Flags, from: u32, len: usize) {
    assert_seg(sent, flags, d(from), p(0), WINDOW);
    let expected = data(from as usize + len);
    assert_eq!(sent.payload, &expected[from as usize..], "payload of the segment at {from}");
    assert!(sent.options.sack_blocks.is_empty());
    assert!(!sent.options.sack_permitted);
}

/// The peer's pure ACK of our octets up to `acked` (exclusive) with SACK `blocks` given as
/// our octet offsets.
fn peer_ack(acked: u32, blocks: &[(u32, u32)]) -> Seg {
    let blocks: Vec<(u32, u32)> = blocks.iter().map(|&(l, r)| (d(l), d(r))).collect();
    seg(ack(), p(0), d(acked)).window(PEER_WINDOW).sack(&blocks)
}

/// What segments carried, shortly: (our data offset, payload length) each.
fn brief(sent: &[Sent]) -> Vec<(u32, usize)> {
    sent.iter().map(|s| (s.seq.wrapping_sub(d(0)), s.payload.len())).collect()
}

/// `count` full segments sent at the current time, from octet 0: the last carries PSH.
fn send_segments(h: &mut Harness, count: u32) {
    let sent = send_from(h, 0, count as usize * usize::from(MSS));
    assert_eq!(sent.len(), count as usize);
    for (i, segment) in sent.iter().enumerate() {
        let flags = if i + 1 == sent.len() { psh_ack() } else { ack() };
        assert_data(segment, flags, i as u32 * 1000, 1000);
    }
}

// ------------------------------------------------------------------ negotiation (RFC 2018 §2)

/// The peer sends `[p(100), p(200))` ahead of a hole: our ACK carries the block iff SACK
/// was negotiated (RFC 2018 §4: "MUST NOT send SACK options" otherwise).
#[track_caller]
fn out_of_order_ack_blocks(h: &mut Harness) -> Vec<(u32, u32)> {
    h.deliver(seg(psh_ack(), p(100), d(0)).payload(&[7; 100]));
    let reply = h.expect_one();
    assert_seg(&reply, ack(), d(0), p(0), WINDOW);
    assert!(!reply.options.sack_permitted);
    sack_blocks(&reply)
}

/// Both SYNs carry SACK-permitted, in an active and in a passive open: SACK is on, and an
/// ACK for out-of-order data carries its block.
#[test]
fn both_syns_with_sack_permitted_turn_sack_on_rfc_2018_2() {
    // Active: our SYN offers it, the SYN-ACK carries it.
    let mut h = Harness::connect();
    assert!(h.expect_one().options.sack_permitted);
    h.deliver(seg(syn_ack(), PEER_ISS, d(0)).mss(1460).sack_permitted());
    assert!(!h.expect_one().options.sack_permitted);
    assert!(h.conn.status().sack);
    assert_eq!(out_of_order_ack_blocks(&mut h), [(p(100), p(200))]);

    // Passive: the SYN offers it, our SYN-ACK answers with it.
    let mut h = Harness::listen();
    h.deliver(seg(syn(), PEER_ISS, 0).mss(1460).sack_permitted());
    let synack = h.expect_one();
    assert_seg(&synack, syn_ack(), ISS, p(0), WINDOW);
    assert!(synack.options.sack_permitted);
    h.deliver(seg(ack(), p(0), d(0)));
    assert_eq!(h.state(), State::Established);
    assert!(h.conn.status().sack);
    assert_eq!(out_of_order_ack_blocks(&mut h), [(p(100), p(200))]);
}

/// Only our SYN offers it: in an active open the SYN-ACK without it leaves SACK off; in a
/// passive open a SYN without it gets a SYN-ACK without it. No ACK carries blocks.
#[test]
fn only_our_syn_with_sack_permitted_leaves_sack_off_rfc_2018_2() {
    let mut h = Harness::connect();
    assert!(h.expect_one().options.sack_permitted);
    h.deliver(seg(syn_ack(), PEER_ISS, d(0)).mss(1460));
    h.expect_one();
    assert!(!h.conn.status().sack);
    assert_eq!(out_of_order_ack_blocks(&mut h), []);

    // Passive: we want SACK (the default) but the SYN does not offer it.
    let mut h = Harness::listen();
    h.deliver(seg(syn(), PEER_ISS, 0).mss(1460));
    let synack = h.expect_one();
    assert_seg(&synack, syn_ack(), ISS, p(0), WINDOW);
    assert!(!synack.options.sack_permitted, "a SYN-ACK offers it only in reply to a SYN that did");
    h.deliver(seg(ack(), p(0), d(0)));
    assert!(!h.conn.status().sack);
    assert_eq!(out_of_order_ack_blocks(&mut h), []);
}

/// Only the peer's SYN offers it (SACK switched off here: `set_sack(false)` before an active
/// open's SYN goes, `Config::sack = false` for a listener): our SYN and SYN-ACK go without it,
/// SACK stays off, and the switch no longer takes once the SYN is out.
#[test]
fn only_the_peers_syn_with_sack_permitted_leaves_sack_off_rfc_2018_2() {
    let mut h = Harness::connect();
    assert!(h.conn.set_sack(false));
    let syn_seg = h.expect_one();
    assert_seg(&syn_seg, syn(), ISS, 0, WINDOW);
    assert!(!syn_seg.options.sack_permitted);
    assert!(!h.conn.set_sack(true), "the SYN went without it: too late");
    // A SYN-ACK carrying it anyway (RFC 2018 §2 forbids that) changes nothing.
    h.deliver(seg(syn_ack(), PEER_ISS, d(0)).mss(1460).sack_permitted());
    h.expect_one();
    assert!(!h.conn.status().sack);
    assert_eq!(out_of_order_ack_blocks(&mut h), []);

    let mut config = config();
    config.sack = false;
    let now = Instant::from_millis(1_000);
    let mut h = Harness { conn: Connection::listen(config, now, LOCAL), now, peer: REMOTE };
    h.deliver(seg(syn(), PEER_ISS, 0).mss(1460).sack_permitted());
    let synack = h.expect_one();
    assert_seg(&synack, syn_ack(), ISS, p(0), WINDOW);
    assert!(!synack.options.sack_permitted);
    h.deliver(seg(ack(), p(0), d(0)));
    assert_eq!(h.state(), State::Established);
    assert!(!h.conn.status().sack);
    assert_eq!(out_of_order_ack_blocks(&mut h), []);
}

/// Neither SYN offers it: off in both kinds of open.
#[test]
fn neither_syn_with_sack_permitted_leaves_sack_off_rfc_2018_2() {
    let mut h = Harness::connect();
    assert!(h.conn.set_sack(false));
    assert!(!h.expect_one().options.sack_permitted);
    h.deliver(seg(syn_ack(), PEER_ISS, d(0)).mss(1460));
    h.expect_one();
    assert!(!h.conn.status().sack);
    assert_eq!(out_of_order_ack_blocks(&mut h), []);

    let mut config = config();
    config.sack = false;
    let now = Instant::from_millis(1_000);
    let mut h = Harness { conn: Connection::listen(config, now, LOCAL), now, peer: REMOTE };
    h.deliver(seg(syn(), PEER_ISS, 0).mss(1460));
    assert!(!h.expect_one().options.sack_permitted);
    h.deliver(seg(ack(), p(0), d(0)));
    assert!(!h.conn.status().sack);
    assert_eq!(out_of_order_ack_blocks(&mut h), []);
    // No D-SACK either (RFC 2883 §4 rides on SACK): the hole fills, then 0..200 comes again
    // partly duplicate.
    h.deliver(seg(psh_ack(), p(0), d(0)).payload(&[7; 100]));
    assert_seg(&h.expect_one(), ack(), d(0), p(200), WINDOW - 200);
    h.deliver(seg(psh_ack(), p(100), d(0)).payload(&[7; 200]));
    let reply = h.expect_one();
    assert_seg(&reply, ack(), d(0), p(300), WINDOW - 300);
    assert!(reply.options.sack_blocks.is_empty());
}

/// A peer that did not negotiate SACK sends blocks anyway: they are ignored. Four segments
/// go at 1.1 s; at 1.2 s the first is acknowledged and two duplicate ACKs claim segments 2
/// and 3. With SACK, RACK would resend segment 1 at 1.225 s (see
/// `hole_below_one_sacked_segment_is_resent_after_the_reordering_window_rfc_8985_6_3`); here
/// two duplicate ACKs are no loss signal (RFC 5681 §3.2 needs three), so the next deadline is
/// the RTO restarted by the ACK (2.2 s). After the RTO resends segment 1 and the peer
/// acknowledges it, segment 2 — "SACKed" — goes next, as it would without any blocks.
#[test]
fn sack_blocks_from_a_peer_that_did_not_negotiate_sack_are_ignored_rfc_2018_4() {
    let mut h = Harness::connect_with(sender_config());
    h.expect_one();
    h.advance(Duration::from_millis(100));
    h.deliver(seg(syn_ack(), PEER_ISS, d(0)).mss(MSS).window(PEER_WINDOW));
    h.expect_one();
    assert!(!h.conn.status().sack);
    send_segments(&mut h, 4);
    h.now = at(1200);
    h.deliver(peer_ack(1000, &[]));
    h.deliver(peer_ack(1000, &[(2000, 3000)]));
    h.deliver(peer_ack(1000, &[(2000, 4000)]));
    h.expect_nothing();
    assert_eq!(h.conn.poll_timeout(), Some(at(2200)), "the RTO, no reordering timer");
    assert_eq!(h.jump_to_deadline(), at(2200));
    assert_data(&h.expect_one(), ack(), 1000, 1000);
    h.now = at(2300);
    h.deliver(peer_ack(2000, &[(2000, 4000)]));
    let next = h.poll().expect("the next unacknowledged segment goes");
    assert_data(&next, ack(), 2000, 1000);
    assert_eq!(h.conn.counters().sack_recoveries, 0);
    assert_eq!(h.conn.counters().loss_probes, 0);
}

// ------------------------------------------------------------------ receiver (RFC 2018 §3–§4)

/// Active open with SACK on both SYNs and timestamps off, peer MSS 1460.
fn sack_receiver() -> Harness {
    let mut h = Harness::connect();
    h.expect_one();
    h.deliver(seg(syn_ack(), PEER_ISS, d(0)).mss(1460).sack_permitted());
    h.expect_one();
    assert!(h.conn.status().sack);
    h
}

/// The peer's 100 octets at its octet `from`.
fn peer_data(from: u32) -> Seg {
    seg(psh_ack(), p(from), d(0)).payload(&[0x5a; 100])
}

/// Delivers the peer's 100 octets at `from` and returns the one ACK it draws, checked to be a
/// bare ACK of `acked` with the window `window`.
#[track_caller]
fn ack_for(h: &mut Harness, from: u32, acked: u32, window: u16) -> Vec<(u32, u32)> {
    h.deliver(peer_data(from));
    let reply = h.expect_one();
    assert_seg(&reply, ack(), d(0), p(acked), window);
    sack_blocks(&reply)
}

/// Blocks as the peer's octet offsets.
fn pb(blocks: &[(u32, u32)]) -> Vec<(u32, u32)> {
    blocks.iter().map(|&(l, r)| (p(l), p(r))).collect()
}

/// Each out-of-order segment draws an immediate ACK whose first block holds that segment,
/// followed by the blocks most recently reported first, not repeating any already included
/// (RFC 2018 §4), at most four without timestamps (§3: 40 octets). A segment joining two
/// blocks makes the joined block first. Once the holes fill, the ACK advances and the blocks
/// of what is now in order disappear; the last ACK carries none.
#[test]
fn out_of_order_segments_draw_acks_with_blocks_newest_first_rfc_2018_4() {
    let mut h = sack_receiver();
    // Holes at 0, 200, 400, 600, 800.
    assert_eq!(ack_for(&mut h, 100, 0, WINDOW), pb(&[(100, 200)]));
    assert_eq!(ack_for(&mut h, 300, 0, WINDOW), pb(&[(300, 400), (100, 200)]));
    assert_eq!(ack_for(&mut h, 500, 0, WINDOW), pb(&[(500, 600), (300, 400), (100, 200)]));
    assert_eq!(
        ack_for(&mut h, 700, 0, WINDOW),
        pb(&[(700, 800), (500, 600), (300, 400), (100, 200)])
    );
    // Five blocks held, four fit: the oldest report drops out.
    assert_eq!(
        ack_for(&mut h, 900, 0, WINDOW),
        pb(&[(900, 1000), (700, 800), (500, 600), (300, 400)])
    );
    // 200..300 joins 100..200 and 300..400: that block first, then 900, 700, 500 (300..400,
    // reported before, is a subset of the first block now).
    assert_eq!(
        ack_for(&mut h, 200, 0, WINDOW),
        pb(&[(100, 400), (900, 1000), (700, 800), (500, 600)])
    );
    // The first hole fills: RCV.NXT moves to 400; the segment advanced the ACK, so the blocks
    // are the most recently reported ones still above it.
    assert_eq!(ack_for(&mut h, 0, 400, WINDOW - 400), pb(&[(900, 1000), (700, 800), (500, 600)]));
    assert_eq!(ack_for(&mut h, 400, 600, WINDOW - 600), pb(&[(900, 1000), (700, 800)]));
    assert_eq!(ack_for(&mut h, 600, 800, WINDOW - 800), pb(&[(900, 1000)]));
    assert_eq!(ack_for(&mut h, 800, 1000, WINDOW - 1000), pb(&[]));
    let mut buf = [0u8; 2000];
    assert_eq!(h.conn.recv(&mut buf).unwrap(), 1000);
}

/// With timestamps on, the option has room for three blocks only (RFC 2018 §3: 10 + 2
/// octets of timestamps leave 28); the order rules stay (§4).
#[test]
fn with_timestamps_an_ack_carries_at_most_three_blocks_rfc_2018_3() {
    let mut h = Harness::connect();
    h.expect_one();
    h.deliver(seg(syn_ack(), PEER_ISS, d(0)).mss(1460).sack_permitted().ts(500, 1000));
    h.expect_one();
    assert!(h.conn.status().sack && h.conn.status().timestamps);
    let mut last = Vec::new();
    for from in [100, 300, 500, 700] {
        h.deliver(peer_data(from).ts(600, 1000));
        let reply = h.expect_one();
        assert_seg(&reply, ack(), d(0), p(0), WINDOW);
        assert_eq!(reply.options.timestamps, Some(Timestamps { tsval: 1000, tsecr: 500 }));
        last = sack_blocks(&reply);
    }
    assert_eq!(last, pb(&[(700, 800), (500, 600), (300, 400)]));
}

/// A data segment we send while holding out-of-order data carries the blocks too (RFC 2018
/// §4: every ACK), and 12 octets less payload (one block: two NOPs, kind, length, 8 octets)
/// so header, options and payload still fit the peer's MSS (RFC 9293 §3.7.1: the effective
/// MSS counts the options sent, MUST-16).
#[test]
fn data_sent_while_holding_out_of_order_data_carries_blocks_in_a_shorter_payload_must_16() {
    let mut h = Harness::connect_with(sender_config());
    h.expect_one();
    h.deliver(seg(syn_ack(), PEER_ISS, d(0)).mss(MSS).window(PEER_WINDOW).sack_permitted());
    h.expect_one();
    h.deliver(peer_data(100));
    assert_eq!(sack_blocks(&h.expect_one()), pb(&[(100, 200)]));
    let sent = send_from(&mut h, 0, 2 * 988);
    assert_eq!(sent.len(), 2);
    for (segment, (flags, from)) in sent.iter().zip([(ack(), 0u32), (psh_ack(), 988)]) {
        assert_seg(segment, flags, d(from), p(0), WINDOW);
        assert_eq!(segment.payload.len(), 988);
        assert_eq!(sack_blocks(segment), pb(&[(100, 200)]));
    }
}

/// A segment shortened to make room for the SACK option is full-sized (RFC 9293 §3.7.1: the
/// effective MSS counts the options), so Nagle's algorithm in Minshall's variant — which holds
/// a short segment only while another short one is unacknowledged (RFC 9293 §3.7.4) — must not
/// hold the short tail that follows two of them: 988, 988 and 24 octets all go at once.
#[test]
fn nagle_does_not_count_a_segment_shortened_by_sack_blocks_as_short_rfc_9293_3_7_4() {
    let mut h = Harness::connect_with(sender_config());
    h.expect_one();
    h.deliver(seg(syn_ack(), PEER_ISS, d(0)).mss(MSS).window(PEER_WINDOW).sack_permitted());
    h.expect_one();
    h.deliver(peer_data(100));
    h.expect_one();
    let sent = send_from(&mut h, 0, 2000);
    let sizes: Vec<usize> = sent.iter().map(|s| s.payload.len()).collect();
    assert_eq!(sizes, [988, 988, 24]);
    assert_seg(&sent[2], psh_ack(), d(1976), p(0), WINDOW);
    assert_eq!(sack_blocks(&sent[2]), pb(&[(100, 200)]));
}

// ------------------------------------------------------------------ D-SACK (RFC 2883 §4)

/// A segment wholly below RCV.NXT (the peer resent what we had: our ACK was lost, or its
/// retransmission was spurious) is acknowledged with a D-SACK block of exactly its octets as
/// the first block (RFC 2883 §4 rules (1)–(3)); the next ACK no longer carries it (each
/// duplicate is reported once).
#[test]
fn duplicate_segment_below_rcv_nxt_is_reported_once_as_a_dsack_rfc_2883_4() {
    let mut h = sack_receiver();
    assert_eq!(ack_for(&mut h, 0, 100, WINDOW - 100), pb(&[]));
    assert_eq!(ack_for(&mut h, 0, 100, WINDOW - 100), pb(&[(0, 100)]), "D-SACK of 0..100");
    assert_eq!(ack_for(&mut h, 100, 200, WINDOW - 200), pb(&[]), "reported once");
}

/// A segment of which only the front was had already (the peer resent 0..200 when we held
/// 0..100): the D-SACK block reports only the duplicate part, 0..100, while the ACK moves on
/// to 200 (RFC 2883 §4: the block names the duplicate contiguous sequence); once.
#[test]
fn partly_duplicate_segment_reports_only_the_duplicate_part_rfc_2883_4() {
    let mut h = sack_receiver();
    assert_eq!(ack_for(&mut h, 0, 100, WINDOW - 100), pb(&[]));
    h.deliver(seg(psh_ack(), p(0), d(0)).payload(&[0x5a; 200]));
    let reply = h.expect_one();
    assert_seg(&reply, ack(), d(0), p(200), WINDOW - 200);
    assert_eq!(sack_blocks(&reply), pb(&[(0, 100)]));
    assert_eq!(ack_for(&mut h, 200, 300, WINDOW - 300), pb(&[]), "reported once");
    let mut buf = [0u8; 400];
    assert_eq!(h.conn.recv(&mut buf).unwrap(), 300, "no octet delivered twice");
}

/// A duplicate of out-of-order data: the D-SACK block comes first, the block containing it
/// second (RFC 2883 §4 rule (4)), then the other blocks as RFC 2018 orders
/// them; the next ACK reports blocks only.
#[test]
fn duplicate_of_out_of_order_data_reports_dsack_then_its_block_rfc_2883_4() {
    let mut h = sack_receiver();
    assert_eq!(ack_for(&mut h, 100, 0, WINDOW), pb(&[(100, 200)]));
    assert_eq!(ack_for(&mut h, 200, 0, WINDOW), pb(&[(100, 300)]));
    assert_eq!(ack_for(&mut h, 500, 0, WINDOW), pb(&[(500, 600), (100, 300)]));
    h.deliver(seg(psh_ack(), p(150), d(0)).payload(&[0x5a; 100]));
    let reply = h.expect_one();
    assert_seg(&reply, ack(), d(0), p(0), WINDOW);
    assert_eq!(sack_blocks(&reply), pb(&[(150, 250), (100, 300), (500, 600)]));
    assert_eq!(ack_for(&mut h, 600, 0, WINDOW), pb(&[(500, 700), (100, 300)]), "once");
}

/// A segment overlapping the end of an out-of-order block: its duplicate part, 250..300, is
/// a duplicate contiguous sequence and is reported as the D-SACK block, followed by the (now
/// larger) block containing it (RFC 2883 §4 rules (1), (3), (4); Linux does the same).
#[test]
fn partly_duplicate_out_of_order_segment_reports_its_duplicate_part_rfc_2883_4() {
    let mut h = sack_receiver();
    assert_eq!(ack_for(&mut h, 100, 0, WINDOW), pb(&[(100, 200)]));
    assert_eq!(ack_for(&mut h, 200, 0, WINDOW), pb(&[(100, 300)]));
    assert_eq!(ack_for(&mut h, 500, 0, WINDOW), pb(&[(500, 600), (100, 300)]));
    assert_eq!(ack_for(&mut h, 250, 0, WINDOW), pb(&[(250, 300), (100, 350), (500, 600)]));
}

// ------------------------------------------------------------------ sender (RFC 6675, RFC 8985)

/// Six segments go at 1.1 s; at 1.2 s the first is acknowledged and segment 1 is missing.
/// The duplicate ACKs SACK segments 2, 2–3, 2–4. RFC 8985 §6.2: with fewer than DupThresh (3)
/// segments SACKed and no reordering seen, the reordering window is min_RTT / 4 = 25 ms, so
/// segment 1 (sent at 1100, RACK.rtt 100 ms) is not lost before 1225; the third SACKed segment
/// zeroes the window (step 4) and segment 1 is lost at once (1100 + 100 + 0 ≤ 1200): it goes
/// again immediately, 1 s before the RTO. RFC 6675 §5 step 4: ssthresh = cwnd = FlightSize / 2
/// = 5000 / 2; pipe (segment 5 only, then the retransmission) leaves no room for more.
#[test]
fn single_loss_is_resent_at_once_when_three_segments_are_sacked_rfc_8985_6_2() {
    let mut h = sack_established();
    send_segments(&mut h, 6);
    h.now = at(1200);
    h.deliver(peer_ack(1000, &[]));
    h.expect_nothing();
    h.deliver(peer_ack(1000, &[(2000, 3000)]));
    h.expect_nothing();
    assert_eq!(h.conn.poll_timeout(), Some(at(1225)), "RACK's reordering timer");
    h.deliver(peer_ack(1000, &[(2000, 4000)]));
    h.expect_nothing();
    h.deliver(peer_ack(1000, &[(2000, 5000)]));
    assert_data(&h.expect_one(), ack(), 1000, 1000);
    let status = h.conn.status();
    assert_eq!((status.cwnd, status.ssthresh), (2500, 2500));
    assert_eq!(h.conn.counters().sack_recoveries, 1);
    assert_eq!(h.conn.counters().retransmission_timeouts, 0);
    h.now = at(1300);
    h.deliver(peer_ack(6000, &[]));
    h.expect_nothing();
    assert_eq!(h.conn.poll_timeout(), None, "everything acknowledged: no timer");
    assert_eq!(h.conn.status().ssthresh, 2500);
}

/// Three segments at 1.1 s; at 1.2 s segment 0 is acknowledged and segment 2 SACKed. One
/// SACKed segment is below DupThresh: RACK waits the reordering window, min_RTT / 4 = 25 ms,
/// and arms its timer for segment 1's deadline 1100 + RACK.rtt 100 + 25 = 1225 ms (RFC 8985
/// §6.2 step 5, §6.3) — earlier than the probe (1.4 s) and the RTO (2.2 s). When it fires,
/// segment 1 goes again; recovery halves cwnd once: FlightSize 2000 / 2 is below 2 × SMSS, so
/// ssthresh = cwnd = 2000 (RFC 5681 equation (4)).
#[test]
fn hole_below_one_sacked_segment_is_resent_after_the_reordering_window_rfc_8985_6_3() {
    let mut h = sack_established();
    send_segments(&mut h, 3);
    h.now = at(1200);
    h.deliver(peer_ack(1000, &[(2000, 3000)]));
    h.expect_nothing();
    assert_eq!(h.conn.poll_timeout(), Some(at(1225)));
    h.now = at(1224);
    h.fire_timers();
    h.expect_nothing();
    assert_eq!(h.jump_to_deadline(), at(1225));
    assert_data(&h.expect_one(), ack(), 1000, 1000);
    let status = h.conn.status();
    assert_eq!((status.cwnd, status.ssthresh), (2000, 2000));
    assert_eq!(h.conn.counters().sack_recoveries, 1);
    assert_eq!(h.conn.counters().loss_probes, 0);
    h.now = at(1325);
    h.deliver(peer_ack(3000, &[]));
    h.expect_nothing();
    assert_eq!(h.conn.poll_timeout(), None);
}

/// Ten segments at 1.1 s; segments 1, 4 and 7 are lost. At 1.2 s segment 0 is acknowledged,
/// then duplicate ACKs SACK 2–3; 2–3 and 5–6; 2–3, 5–6 and 8–9. With four segments SACKed the
/// reordering window is zero (RFC 8985 §6.2 step 4) and segments 1 and 4 are lost; recovery
/// sets ssthresh = cwnd = 9000 / 2 = 4500 (RFC 6675 §5 step 4) and pipe = 3000 (segments 7–9)
/// leaves room for one segment: 1 (NextSeg rule 1, lowest first). The last SACK makes 7 lost
/// as well (RACK: segment 9, sent after it, was delivered; RFC 6675's IsLost would still wait,
/// with only 2 × SMSS SACKed above it): pipe = 1000 (the retransmission) leaves room for 4 and
/// 7. Each hole goes once, nothing SACKed ever goes, and cwnd halves once per recovery.
#[test]
fn each_hole_is_resent_once_and_sacked_data_never_rfc_6675_5() {
    let mut h = sack_established();
    send_segments(&mut h, 10);
    h.now = at(1200);
    h.deliver(peer_ack(1000, &[]));
    h.expect_nothing();
    h.deliver(peer_ack(1000, &[(2000, 4000)]));
    h.expect_nothing();
    h.deliver(peer_ack(1000, &[(5000, 7000), (2000, 4000)]));
    assert_data(&h.expect_one(), ack(), 1000, 1000);
    assert_eq!((h.conn.status().cwnd, h.conn.status().ssthresh), (4500, 4500));
    h.deliver(peer_ack(1000, &[(8000, 10_000), (5000, 7000), (2000, 4000)]));
    let resent: Vec<Sent> = std::iter::from_fn(|| h.poll()).collect();
    assert_eq!(resent.len(), 2, "{:?}", brief(&resent));
    assert_data(&resent[0], ack(), 4000, 1000);
    assert_data(&resent[1], ack(), 7000, 1000);
    assert_eq!((h.conn.status().cwnd, h.conn.status().ssthresh), (4500, 4500));
    // The retransmissions arrive: segment 1 first, then 4 and 7.
    h.now = at(1300);
    h.deliver(peer_ack(4000, &[(8000, 10_000), (5000, 7000)]));
    h.expect_nothing();
    h.deliver(peer_ack(10_000, &[]));
    h.expect_nothing();
    assert_eq!(h.conn.counters().sack_recoveries, 1);
    assert_eq!(h.conn.counters().retransmission_timeouts, 0);
    assert_eq!(h.conn.status().ssthresh, 4500);
    assert_eq!(h.conn.poll_timeout(), None);
}

/// A lost retransmission is found without the RTO (RFC 8985 §6.2 step 5: retransmissions are
/// judged like originals). Ten segments at 1.1 s; at 1.2 s segment 0 is acknowledged and
/// 2–9 SACKed: segment 1 goes again (ssthresh = cwnd = 9000 / 2 = 4500), then two new
/// segments the application writes (pipe 1000 leaves room). At 1.3 s the peer SACKs the new
/// segments but not the retransmission: they were sent after it and delivered, RACK.rtt =
/// 100 ms, the window is zero in recovery, so the retransmission (sent at 1200) is lost at
/// 1200 + 100 ≤ 1300 and goes a third time — 0.9 s before the RTO (2.2 s). (The congestion
/// response RFC 8985 §9.3 owes for it is checked in
/// `lost_retransmission_draws_a_further_congestion_response_rfc_8985_9_3`.)
#[test]
fn lost_retransmission_is_resent_again_before_the_rto_rfc_8985_6_2() {
    let mut h = sack_established();
    send_segments(&mut h, 10);
    h.now = at(1200);
    h.deliver(peer_ack(1000, &[]));
    h.expect_nothing();
    h.deliver(peer_ack(1000, &[(2000, 10_000)]));
    assert_data(&h.expect_one(), ack(), 1000, 1000);
    assert_eq!((h.conn.status().cwnd, h.conn.status().ssthresh), (4500, 4500));
    let new = send_from(&mut h, 10_000, 2000);
    assert_eq!(new.len(), 2, "{:?}", brief(&new));
    assert_data(&new[0], ack(), 10_000, 1000);
    assert_data(&new[1], psh_ack(), 11_000, 1000);
    let rto = Instant::from_millis(2200);
    assert!(h.conn.poll_timeout().is_some_and(|t| t <= rto));
    h.now = at(1300);
    h.deliver(peer_ack(1000, &[(2000, 12_000)]));
    assert_data(&h.expect_one(), ack(), 1000, 1000);
    assert!(h.now < rto);
    assert_eq!(h.conn.counters().retransmission_timeouts, 0);
    h.now = at(1400);
    h.deliver(peer_ack(12_000, &[]));
    h.expect_nothing();
    assert_eq!(h.conn.poll_timeout(), None);
}

/// Tail loss with one segment in flight: 500 octets at 1.1 s and no answer. RFC 8985 §7.2:
/// PTO = 2 × SRTT + WCDelAckT (200 ms, one segment in flight) = 400 ms, so the probe goes at
/// 1.5 s, before the RTO (2.1 s); with no new data it is the last segment again (§7.3). Then
/// the RTO is re-armed, not the PTO (§7.3: 1.5 s + 1 s).
#[test]
fn lone_lost_segment_is_probed_after_two_srtt_plus_the_delayed_ack_time_rfc_8985_7_2() {
    let mut h = sack_established();
    let sent = send_from(&mut h, 0, 500);
    assert_eq!(sent.len(), 1);
    assert_data(&sent[0], psh_ack(), 0, 500);
    assert_eq!(h.conn.poll_timeout(), Some(at(1500)));
    assert_eq!(h.jump_to_deadline(), at(1500));
    assert_data(&h.expect_one(), psh_ack(), 0, 500);
    assert_eq!(h.conn.counters().loss_probes, 1);
    assert_eq!(h.conn.counters().retransmission_timeouts, 0);
    assert_eq!(h.conn.poll_timeout(), Some(at(2500)), "the RTO, re-armed");
    h.now = at(1600);
    h.deliver(peer_ack(500, &[]));
    h.expect_nothing();
    assert_eq!(h.conn.poll_timeout(), None);
}

/// Tail loss of the last two segments: four at 1.1 s, the first two acknowledged at 1.2 s
/// (SRTT stays 100 ms). Two segments in flight: PTO = 2 × SRTT = 200 ms from that ACK, so the
/// probe — the last segment again, no new data being queued — goes at 1.4 s (RFC 8985 §7.2,
/// §7.3), 0.8 s before the RTO. The peer SACKs the probe at 1.5 s: segment 2, sent before it,
/// is lost (1100 + RACK.rtt 100 + min_RTT / 4 ≤ 1500) and goes at once; ssthresh = cwnd =
/// max(2000 / 2, 2 × SMSS) = 2000.
#[test]
fn tail_loss_is_probed_after_two_srtt_and_repaired_by_rack_rfc_8985_7_3() {
    let mut h = sack_established();
    send_segments(&mut h, 4);
    h.now = at(1200);
    h.deliver(peer_ack(2000, &[]));
    h.expect_nothing();
    assert_eq!(h.conn.status().srtt, Some(Duration::from_millis(100)));
    assert_eq!(h.conn.poll_timeout(), Some(at(1400)));
    assert_eq!(h.jump_to_deadline(), at(1400));
    assert_data(&h.expect_one(), psh_ack(), 3000, 1000);
    assert_eq!(h.conn.counters().loss_probes, 1);
    assert_eq!(h.conn.poll_timeout(), Some(at(2400)), "the RTO, re-armed by the probe");
    h.now = at(1500);
    h.deliver(peer_ack(2000, &[(3000, 4000)]));
    assert_data(&h.expect_one(), ack(), 2000, 1000);
    assert_eq!((h.conn.status().cwnd, h.conn.status().ssthresh), (2000, 2000));
    assert_eq!(h.conn.counters().sack_recoveries, 1);
    assert_eq!(h.conn.counters().retransmission_timeouts, 0);
    h.now = at(1600);
    h.deliver(peer_ack(4000, &[]));
    h.expect_nothing();
}

/// With new data queued, the probe is new data (RFC 8985 §7.3), sent within the peer's
/// window although cwnd is full: twelve segments written, ten go at 1.1 s (the initial window),
/// and at PTO = 1.1 s + 2 × SRTT = 1.3 s segment 10 goes as the probe; the RTO is re-armed
/// from it (2.3 s).
#[test]
fn probe_sends_new_data_when_some_is_queued_rfc_8985_7_3() {
    let mut h = sack_established();
    let sent = send_from(&mut h, 0, 12_000);
    assert_eq!(sent.len(), 10, "the initial window");
    assert_eq!(h.conn.poll_timeout(), Some(at(1300)));
    assert_eq!(h.jump_to_deadline(), at(1300));
    assert_data(&h.expect_one(), ack(), 10_000, 1000);
    assert_eq!(h.conn.counters().loss_probes, 1);
    assert_eq!(h.conn.status().snd_nxt.get(), d(11_000));
    assert_eq!(h.conn.poll_timeout(), Some(at(2300)));
}

/// RFC 2018 §8: the receiver may renege, so a retransmission timeout MUST resend the segment
/// at SND.UNA even if it was SACKed. Three segments at 1.1 s; at 1.2 s the peer SACKs all of
/// them without acknowledging any, so there is nothing for RACK to resend and nothing for a
/// probe (the last segment is SACKed: RFC 6675 never resends SACKed data). At the RTO
/// (2.1 s) segment 0 goes again.
#[test]
fn rto_resends_the_segment_at_snd_una_even_if_sacked_rfc_2018_8() {
    let mut h = sack_established();
    send_segments(&mut h, 3);
    h.now = at(1200);
    h.deliver(peer_ack(0, &[(0, 3000)]));
    h.expect_nothing();
    while h.conn.poll_timeout().is_some_and(|t| t < at(2100)) {
        h.jump_to_deadline();
        h.expect_nothing();
    }
    assert_eq!(h.jump_to_deadline(), at(2100));
    assert_data(&h.expect_one(), ack(), 0, 1000);
    assert_eq!(h.conn.counters().retransmission_timeouts, 1);
    assert_eq!(h.conn.counters().loss_probes, 0);
}

/// The timeout of `rto_resends_the_segment_at_snd_una_even_if_sacked_rfc_2018_8` found
/// SND.UNA SACKed — evidence that the receiver reneged — so every SACK is forgotten (RFC 2018
/// §8: the SACKed bits are turned off): when the peer acknowledges segment 0 at 2.2 s (cwnd
/// grows from the loss window to 2 segments), segments 1 and 2 go again at once.
#[test]
fn timeout_with_snd_una_sacked_forgets_every_sack_rfc_2018_8() {
    let mut h = sack_established();
    send_segments(&mut h, 3);
    h.now = at(1200);
    h.deliver(peer_ack(0, &[(0, 3000)]));
    h.expect_nothing();
    h.now = at(2100);
    h.fire_timers();
    assert_data(&h.expect_one(), ack(), 0, 1000);
    h.now = at(2200);
    h.deliver(peer_ack(1000, &[]));
    let rest: Vec<Sent> = std::iter::from_fn(|| h.poll()).collect();
    assert_eq!(rest.len(), 2, "{:?}", brief(&rest));
    assert_data(&rest[0], ack(), 1000, 1000);
    assert_data(&rest[1], psh_ack(), 2000, 1000);
}

/// Deviation from RFC 2018 §8 (a timeout SHOULD turn off every SACKed bit; RFC 6675 §5.1
/// lets an implementation with a reneging test keep them, as Linux does): when the segment at
/// SND.UNA is not SACKed, a timeout keeps the SACK marks. The peer's window is 3000 octets,
/// so of the four segments written three go at 1.1 s. Segment 0 is lost and 1–2 SACKed at
/// 1.2 s; RACK resends 0 at 1.225 s (1100 + 100 + min_RTT / 4), restarting the timer, and
/// that is lost too, as is the loss probe of the recovery at 1.425 s (2·SRTT later; the
/// peer's window holds segment 3 back, so the probe is segment 0 again, the newest
/// transmission not SACKed), which restarts the timer; at the RTO (2.425 s) segment 0 goes
/// once more, and nothing else. At 2.5 s the peer acknowledges segment 0 only, having dropped
/// 1–2 (reneging). Per RFC 2018 segment 1 would go now; here the marks stand, so the window's
/// new room takes segment 3 and segment 1 waits for the next RTO (backed off to 2 s: 4.5 s),
/// which finds SND.UNA SACKed and forgets every SACK.
#[test]
fn rto_keeps_sack_marks_unless_snd_una_is_sacked_deviation_rfc_2018_8() {
    let mut h = sack_established_with_window(3000);
    let sent = send_from(&mut h, 0, 4000);
    assert_eq!(sent.len(), 3, "the peer's window");
    h.now = at(1200);
    h.deliver(peer_ack(0, &[(1000, 3000)]).window(3000));
    h.expect_nothing();
    assert_eq!(h.jump_to_deadline(), at(1225));
    assert_data(&h.expect_one(), ack(), 0, 1000);
    assert_eq!(h.jump_to_deadline(), at(1425));
    assert_data(&h.expect_one(), ack(), 0, 1000);
    assert_eq!(h.conn.counters().loss_probes, 1);
    assert_eq!(h.jump_to_deadline(), at(2425));
    assert_data(&h.expect_one(), ack(), 0, 1000);
    assert_eq!(h.conn.counters().retransmission_timeouts, 1);
    h.now = at(2500);
    h.deliver(peer_ack(1000, &[]).window(3000));
    assert_data(&h.expect_one(), psh_ack(), 3000, 1000);
    assert_eq!(h.conn.poll_timeout(), Some(at(4500)), "the RTO, backed off and restarted");
    assert_eq!(h.jump_to_deadline(), at(4500));
    assert_data(&h.expect_one(), ack(), 1000, 1000);
}

/// The probe when the peer's window holds queued data back (RFC 8985 §7.3: new data only "if
/// the receive window allows"; otherwise the most recently sent segment again). Window 3000:
/// three of four segments go at 1.1 s; at PTO = 1.1 s + 2 × SRTT = 1.3 s segment 2 goes again
/// and the RTO is re-armed from the probe (2.3 s).
#[test]
fn probe_resends_the_last_segment_when_the_peer_window_holds_data_back_rfc_8985_7_3() {
    let mut h = sack_established_with_window(3000);
    let sent = send_from(&mut h, 0, 4000);
    assert_eq!(sent.len(), 3, "the peer's window");
    assert_eq!(h.conn.poll_timeout(), Some(at(1300)));
    assert_eq!(h.jump_to_deadline(), at(1300));
    assert_data(&h.expect_one(), ack(), 2000, 1000);
    assert_eq!(h.conn.counters().loss_probes, 1);
    assert_eq!(h.conn.poll_timeout(), Some(at(2300)));
    h.now = at(1400);
    h.deliver(peer_ack(3000, &[]).window(3000));
    assert_data(&h.expect_one(), psh_ack(), 3000, 1000);
}

/// Recovery in a bulk transfer, where more data waits than cwnd lets go. Fifteen segments
/// written: ten at 1.1 s (the initial window); at 1.2 s the ACK of segment 0 grows cwnd to
/// 11 segments (slow start) and sends 10 and 11. Segments 1 and 4 are lost: a duplicate ACK
/// SACKs 2–3 (below DupThresh: RACK waits), the next one 5–9 as its first block (RFC 2018
/// §4); RACK deems 1 and 4 lost (seven SACKed: zero reordering window, RFC 8985 §6.2),
/// recovery sets ssthresh = cwnd = FlightSize 11000 / 2 = 5500 once for both
/// (RFC 6675 §5 step 4; RFC 8985 §9.3: one response per window) and pipe = 2000 (10 and 11).
/// NextSeg sends the lost segments first (rule 1), then new data (rule 2) while cwnd − pipe
/// ≥ 1 SMSS: 1, 4, 12 (pipe 5000). At 1.3 s everything up to 13 is acknowledged: past the
/// RecoveryPoint (12), so recovery ends (§5 (A)) with cwnd still at ssthresh, and 13 and 14
/// go. No SACKed segment ever goes again.
#[test]
fn bulk_recovery_resends_the_holes_before_new_data_and_halves_once_rfc_6675_5() {
    let mut h = sack_established();
    let first = send_from(&mut h, 0, 15_000);
    assert_eq!(first.len(), 10, "the initial window");
    h.now = at(1200);
    h.deliver(peer_ack(1000, &[]));
    let grown: Vec<Sent> = std::iter::from_fn(|| h.poll()).collect();
    assert_eq!(grown.len(), 2, "{:?}", brief(&grown));
    assert_data(&grown[0], ack(), 10_000, 1000);
    assert_data(&grown[1], ack(), 11_000, 1000);
    h.deliver(peer_ack(1000, &[(2000, 4000)]));
    h.expect_nothing();
    h.deliver(peer_ack(1000, &[(5000, 10_000), (2000, 4000)]));
    let recovery: Vec<Sent> = std::iter::from_fn(|| h.poll()).collect();
    assert_eq!(recovery.len(), 3, "{:?}", brief(&recovery));
    assert_data(&recovery[0], ack(), 1000, 1000);
    assert_data(&recovery[1], ack(), 4000, 1000);
    assert_data(&recovery[2], ack(), 12_000, 1000);
    assert_eq!((h.conn.status().cwnd, h.conn.status().ssthresh), (5500, 5500));
    assert_eq!(h.conn.counters().sack_recoveries, 1);
    h.now = at(1300);
    h.deliver(peer_ack(13_000, &[]));
    let after: Vec<Sent> = std::iter::from_fn(|| h.poll()).collect();
    assert_eq!(after.len(), 2, "{:?}", brief(&after));
    assert_data(&after[0], ack(), 13_000, 1000);
    assert_data(&after[1], psh_ack(), 14_000, 1000);
    // Recovery leaves cwnd at ssthresh (RFC 6675 §5 step (4.2): nothing deflates it on the
    // way out); the same ACK then counts in congestion avoidance, 12 000 octets ≥ cwnd: one
    // SMSS more (RFC 5681 §3.1).
    assert_eq!(h.conn.status().cwnd, 6500);
    assert_eq!(h.conn.status().ssthresh, 5500);
    assert_eq!(h.conn.counters().sack_recoveries, 1);
    assert_eq!(h.conn.counters().retransmission_timeouts, 0);
}

/// RFC 8985 §6.2 step 3 judges reordering over the newly delivered segments "in ascending
/// order of Segment.xmit_ts": a segment is reordered only if delivered below RACK.fack
/// without being retransmitted. When one ACK newly SACKs two blocks, the first one highest
/// (RFC 2018 §4: the newest first), nothing was reordered: segments 2–3 and 5–9 were all sent
/// at 1.1 s, in sequence order. So the scenario of
/// `bulk_recovery_resends_the_holes_before_new_data_and_halves_once_rfc_6675_5` with both
/// blocks on one ACK must go the same way: seven SACKed, zero reordering window, 1, 4 and 12
/// sent at once.
#[test]
fn one_ack_sacking_two_new_blocks_newest_first_is_no_reordering_rfc_8985_6_2() {
    let mut h = sack_established();
    assert_eq!(send_from(&mut h, 0, 15_000).len(), 10);
    h.now = at(1200);
    h.deliver(peer_ack(1000, &[]));
    assert_eq!(std::iter::from_fn(|| h.poll()).count(), 2);
    h.deliver(peer_ack(1000, &[(5000, 10_000), (2000, 4000)]));
    let recovery: Vec<Sent> = std::iter::from_fn(|| h.poll()).collect();
    assert_eq!(recovery.len(), 3, "{:?}", brief(&recovery));
    assert_data(&recovery[0], ack(), 1000, 1000);
    assert_data(&recovery[1], ack(), 4000, 1000);
    assert_data(&recovery[2], ack(), 12_000, 1000);
}

/// The bulk recovery of one hole (segment 1: 2–9 SACKed at 1.2 s, after 10 and 11 went on
/// the ACK of 0), whose retransmission is lost. NextSeg sends 1, 12 and 13 (cwnd 5500, pipe
/// 2000 before them). At 1.3 s the peer SACKs 10–13 but not the retransmission of 1, sent
/// before them: RACK deems it lost (RFC 8985 §6.2 step 5: 1200 + RACK.rtt 100 + a zero window
/// in recovery ≤ 1300) and it goes a third time, before new segment 14 (NextSeg rule 1 before
/// rule 2) and 0.9 s before the RTO.
#[test]
fn bulk_lost_retransmission_is_resent_before_the_rto_rfc_8985_6_2() {
    let (mut h, _) = bulk_single_hole();
    h.now = at(1300);
    h.deliver(peer_ack(1000, &[(2000, 14_000)]));
    let again: Vec<Sent> = std::iter::from_fn(|| h.poll()).collect();
    assert_eq!(again.len(), 2, "{:?}", brief(&again));
    assert_data(&again[0], ack(), 1000, 1000);
    assert_data(&again[1], psh_ack(), 14_000, 1000);
    assert_eq!(h.conn.counters().retransmission_timeouts, 0);
    h.now = at(1400);
    h.deliver(peer_ack(15_000, &[]));
    h.expect_nothing();
    assert_eq!(h.conn.poll_timeout(), None);
}

/// RFC 8985 §6.2 step 2: the delivery of a retransmitted segment is ignored when it was
/// last sent less than min_RTT ago (the ACK is probably for the original). Fifteen segments
/// written, ten at 1.1 s, 10 and 11 at 1.2 s on the ACK of 0 (min_RTT 100 ms). Segments 1 and
/// 5 are missing: at 1.21 s duplicate ACKs SACK 2–4, then 6–9 as well; recovery (cwnd 5500)
/// resends 1 and 5 and sends 12. At 1.25 s the late original of 1 arrives: the ACK covers 1–4,
/// 6–9 still SACKed. Taking it for the retransmission's delivery (RTT 40 ms, sent at 1210)
/// would make 10 and 11, sent at 1200, lost at once (1200 + 40 + a zero window in recovery);
/// ignoring it, nothing is lost, and PRR (pipe 4000: 5's retransmission, 10, 11, 12, below
/// ssthresh 5500) takes new segment 13 only.
///
/// RFC 6937 sets the order the three go in: the ACK that starts recovery (SACKing 2–4, pipe
/// 7000 above ssthresh) lets CEIL(3000 × 5500 / 11000) = 1500 octets, in whole segments two,
/// go: 1 and new segment 12 (RFC 6675's cwnd − pipe sent 1 alone); the next ACK (pipe 4000)
/// sends 5 (PRR-SSRB: ssthresh − pipe = 1500, one segment).
#[test]
fn ack_of_a_retransmission_sent_less_than_min_rtt_ago_is_no_delivery_rfc_8985_6_2() {
    let mut h = sack_established();
    assert_eq!(send_from(&mut h, 0, 15_000).len(), 10);
    h.now = at(1200);
    h.deliver(peer_ack(1000, &[]));
    assert_eq!(std::iter::from_fn(|| h.poll()).count(), 2);
    h.now = at(1210);
    h.deliver(peer_ack(1000, &[(2000, 5000)]));
    let mut recovery: Vec<Sent> = std::iter::from_fn(|| h.poll()).collect();
    h.deliver(peer_ack(1000, &[(6000, 10_000), (2000, 5000)]));
    recovery.extend(std::iter::from_fn(|| h.poll()));
    assert_eq!(recovery.len(), 3, "{:?}", brief(&recovery));
    assert_data(&recovery[0], ack(), 1000, 1000);
    assert_data(&recovery[1], ack(), 12_000, 1000);
    assert_data(&recovery[2], ack(), 5000, 1000);
    h.now = at(1250);
    h.deliver(peer_ack(5000, &[(6000, 10_000)]));
    let sent: Vec<Sent> = std::iter::from_fn(|| h.poll()).collect();
    assert_eq!(sent.len(), 1, "{:?}", brief(&sent));
    assert_data(&sent[0], ack(), 13_000, 1000);
}

/// RFC 8985 §6.2 step 5 applies to every segment not yet delivered, whatever else the ACK
/// says. Fifteen segments written, ten at 1.1 s, 10 and 11 at 1.2 s; at 1.21 s segment 1 is
/// found missing (2–9 SACKed) and recovery resends it and sends 12 and 13. Segments 10–13 are
/// lost. At 1.32 s the retransmission of 1 is acknowledged (ACK 10000, nothing SACKed above):
/// RACK.xmit_ts = 1210, RACK.rtt = 110 ms, so 10 and 11, sent at 1200, are lost (1200 + 110 +
/// a zero window in recovery ≤ 1320) and go again, then new segment 14 (cwnd 5500, pipe 2000
/// for 12 and 13). 12 and 13, sent with the retransmission, wait for a later delivery.
#[test]
fn segments_sent_before_a_delivered_retransmission_are_judged_lost_rfc_8985_6_2() {
    let mut h = sack_established();
    assert_eq!(send_from(&mut h, 0, 15_000).len(), 10);
    h.now = at(1200);
    h.deliver(peer_ack(1000, &[]));
    assert_eq!(std::iter::from_fn(|| h.poll()).count(), 2);
    h.now = at(1210);
    h.deliver(peer_ack(1000, &[(2000, 10_000)]));
    assert_eq!(std::iter::from_fn(|| h.poll()).count(), 3);
    h.now = at(1320);
    h.deliver(peer_ack(10_000, &[]));
    let sent: Vec<Sent> = std::iter::from_fn(|| h.poll()).collect();
    assert_eq!(sent.len(), 3, "{:?}", brief(&sent));
    assert_data(&sent[0], ack(), 10_000, 1000);
    assert_data(&sent[1], ack(), 11_000, 1000);
    assert_data(&sent[2], psh_ack(), 14_000, 1000);
}

/// RFC 8985 §9.3: without PRR, "when RACK-TLP detects a lost retransmission, the congestion
/// control MUST trigger an additional congestion response" (the retransmission was sent in a
/// later window than the original loss). In the scenario of
/// `bulk_lost_retransmission_is_resent_before_the_rto_rfc_8985_6_2` cwnd was 5500 when the
/// retransmission of segment 1 was found lost at 1.3 s; it must be reduced again.
#[test]
fn lost_retransmission_draws_a_further_congestion_response_rfc_8985_9_3() {
    let (mut h, cwnd) = bulk_single_hole();
    h.now = at(1300);
    h.deliver(peer_ack(1000, &[(2000, 14_000)]));
    let status = h.conn.status();
    assert!(status.cwnd < cwnd && status.ssthresh < cwnd, "{status:?}");
}

/// The retransmission timer guards the newest transmission of the segment at SND.UNA: when a
/// fast recovery resends it, the timer restarts, RTO (1 s) from that retransmission (as
/// Linux does; RFC 6298 (5.3) alone restarts it only on an ACK of new data, so it kept the
/// deadline the last cumulative ACK set). Ten segments at 1.1 s; the ACK of segment 0 at
/// 1.2 s restarts the timer (2.2 s) and sends 10 and 11; the SACKs of 2–9 come late, at
/// 2.0 s: RACK finds 1 lost and it goes again at 2.0 s. At 2.2 s no timeout may happen —
/// the retransmission has had 200 ms, less than one RTO; the timer fired there and resent 1
/// a third time (on the goodput bench's 100 ms path, RTO at its 200 ms floor, every loss
/// found more than 100 ms after the last cumulative ACK drew such a spurious timeout: 34 of
/// 34 RTOs). What goes at 2.2 s is the recovery's loss probe (2·SRTT after the last
/// transmission; `super_packet_loss.rs`): new data, segment 14, which restarts the timer
/// (RFC 8985 §7.3). Unanswered, the retransmission times out at 3.2 s.
#[test]
fn a_fast_retransmission_of_snd_una_restarts_the_retransmission_timer_rfc_6298_5() {
    let mut h = sack_established();
    assert_eq!(send_from(&mut h, 0, 15_000).len(), 10);
    h.now = at(1200);
    h.deliver(peer_ack(1000, &[]));
    assert_eq!(std::iter::from_fn(|| h.poll()).count(), 2);
    h.now = at(2000);
    h.deliver(peer_ack(1000, &[(2000, 10_000)]));
    let recovery: Vec<Sent> = std::iter::from_fn(|| h.poll()).collect();
    assert_data(&recovery[0], ack(), 1000, 1000);
    h.now = at(2200);
    h.fire_timers();
    assert_data(&h.expect_one(), psh_ack(), 14_000, 1000);
    assert_eq!(h.conn.counters().loss_probes, 1);
    assert_eq!(h.conn.counters().retransmission_timeouts, 0);
    h.now = at(3199);
    h.fire_timers();
    assert_eq!(h.conn.counters().retransmission_timeouts, 0);
    h.now = at(3200);
    h.fire_timers();
    assert_eq!(h.conn.counters().retransmission_timeouts, 1);
    let again = h.poll().expect("the RTO resends SND.UNA");
    assert_data(&again, ack(), 1000, 1000);
}

/// Fifteen segments written, ten at 1.1 s, 10 and 11 on the ACK of 0 at 1.2 s; one duplicate
/// ACK SACKs 2–9: recovery (cwnd 5500) sends 1, 12, 13. Returns the harness and cwnd.
fn bulk_single_hole() -> (Harness, u32) {
    let mut h = sack_established();
    assert_eq!(send_from(&mut h, 0, 15_000).len(), 10);
    h.now = at(1200);
    h.deliver(peer_ack(1000, &[]));
    assert_eq!(std::iter::from_fn(|| h.poll()).count(), 2);
    h.deliver(peer_ack(1000, &[(2000, 10_000)]));
    let recovery: Vec<Sent> = std::iter::from_fn(|| h.poll()).collect();
    assert_eq!(recovery.len(), 3, "{:?}", brief(&recovery));
    assert_data(&recovery[0], ack(), 1000, 1000);
    assert_data(&recovery[1], ack(), 12_000, 1000);
    assert_data(&recovery[2], ack(), 13_000, 1000);
    let status = h.conn.status();
    assert_eq!((status.cwnd, status.ssthresh), (5500, 5500));
    (h, status.cwnd)
}

/// A D-SACK from the peer (RFC 2883 §4: the first block lies inside the second, or below the
/// cumulative ACK) is counted and is not taken for new SACK information, and it widens RACK's
/// reordering window (RFC 8985 §6.2 step 4: reo_wnd_mult 2, so 2 × min_RTT / 4 = 50 ms,
/// bounded by SRTT 100 ms). Three segments at 1.1 s; at 1.2 s segment 1 is SACKed: segment 0
/// would be lost at 1100 + 100 + 25 = 1225. The next ACK reports segment 1 twice (D-SACK)
/// and SACKs 1–2: the deadline moves to 1250, and nothing goes. Once everything is
/// acknowledged, a D-SACK below the ACK is counted too.
#[test]
fn dsack_from_the_peer_is_counted_and_widens_the_reordering_window_rfc_8985_6_2() {
    let mut h = sack_established();
    send_segments(&mut h, 3);
    h.now = at(1200);
    h.deliver(peer_ack(0, &[(1000, 2000)]));
    h.expect_nothing();
    assert_eq!(h.conn.poll_timeout(), Some(at(1225)));
    assert_eq!(h.conn.counters().dsacks_received, 0);
    h.deliver(peer_ack(0, &[(1000, 2000), (1000, 3000)]));
    h.expect_nothing();
    assert_eq!(h.conn.counters().dsacks_received, 1);
    assert_eq!(h.conn.poll_timeout(), Some(at(1250)));
    assert_eq!(h.conn.counters().sack_recoveries, 0);
    h.now = at(1300);
    h.deliver(peer_ack(3000, &[]));
    h.deliver(peer_ack(3000, &[(0, 1000)]));
    h.expect_nothing();
    assert_eq!(h.conn.counters().dsacks_received, 2);
    assert_eq!(h.conn.counters().sack_recoveries, 0);
    assert_eq!(h.conn.poll_timeout(), None);
}

/// RFC 6675 §5 step (4.3): entering recovery retransmits the first segment presumed lost at
/// once, whatever pipe says; only then does (C) let cwnd − pipe pace the rest. Twelve
/// segments written, ten at 1.1 s; segment 0 is lost and so is everything after 3 (a burst):
/// three duplicate ACKs at 1.2 s SACK 1, 1–2, 1–3 (no Limited Transmit: step (3) is a MAY).
/// The third makes segment 0 lost (RFC 8985 §6.2: three SACKed, zero reordering window) and
/// starts recovery with ssthresh = cwnd = 10000 / 2 = 5000 while pipe is 6000 (4–9, not yet
/// deemed lost: sent after the newest delivered). Segment 0 must go now: no further ACK will
/// come to drain pipe, and the next deadline would be the RTO at 2.1 s.
#[test]
fn entering_recovery_resends_the_first_lost_segment_even_when_pipe_fills_cwnd_rfc_6675_5() {
    let mut h = sack_established();
    let first = send_from(&mut h, 0, 12_000);
    assert_eq!(first.len(), 10, "the initial window");
    h.now = at(1200);
    h.deliver(peer_ack(0, &[(1000, 2000)]));
    h.expect_nothing();
    h.deliver(peer_ack(0, &[(1000, 3000)]));
    h.expect_nothing();
    h.deliver(peer_ack(0, &[(1000, 4000)]));
    assert_eq!((h.conn.status().cwnd, h.conn.status().ssthresh), (5000, 5000));
    assert_eq!(h.conn.counters().sack_recoveries, 1);
    let sent = h.poll().expect("the fast retransmission of segment 0");
    assert_data(&sent, ack(), 0, 1000);
}

/// RFC 6675 §5 (1)–(4) without SACK blocks: a peer that negotiated SACK but sends three
/// duplicate ACKs with no blocks still gets a fast retransmit (DupAcks ≥ DupThresh) — segment
/// 0 at once, with ssthresh = cwnd = FlightSize 4000 / 2 = 2000. Window 4000: four of five
/// segments go at 1.1 s (so data stays queued). With no SACK information pipe stays 3000
/// (segments 1–3) whatever arrives, so a first retransmission held back by cwnd − pipe (see
/// `entering_recovery_resends_the_first_lost_segment_even_when_pipe_fills_cwnd_rfc_6675_5`)
/// never goes before the RTO.
#[test]
fn three_duplicate_acks_without_blocks_fast_retransmit_on_a_sack_connection_rfc_6675_5() {
    let mut h = sack_established_with_window(4000);
    assert_eq!(send_from(&mut h, 0, 5000).len(), 4);
    h.now = at(1200);
    for _ in 0..3 {
        h.deliver(peer_ack(0, &[]).window(4000));
    }
    assert_eq!((h.conn.status().cwnd, h.conn.status().ssthresh), (2000, 2000));
    assert_eq!(h.conn.counters().sack_recoveries, 1);
    let sent = h.poll().expect("the fast retransmission of segment 0");
    assert_data(&sent, ack(), 0, 1000);
}

/// The black-hole fall-back (RFC 4821 §7.7) steps the path MTU down after repeated timeouts
/// of one segment, as if the path dropped it for its size. A SACKed full-sized segment sent
/// after it proves the path carries that size: however many timeouts follow (random loss of
/// the retransmissions), the MSS stays.
#[test]
fn sacked_full_sized_segments_keep_the_black_hole_fallback_off_rfc_4821_7_7() {
    let mut h = sack_established();
    send_segments(&mut h, 3);
    h.now = at(1200);
    h.deliver(peer_ack(0, &[(1000, 3000)]));
    while h.conn.counters().retransmission_timeouts < 4 {
        h.jump_to_deadline();
        while h.poll().is_some() {}
    }
    assert_eq!(h.conn.status().effective_mss, MSS, "no step down: SACKs showed full segments");
}
