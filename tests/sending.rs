//! The send side with exact segments: congestion control (initial window RFC 6928, slow start,
//! fast retransmit on three duplicate ACKs before the RTO, NewReno partial ACKs, Limited
//! Transmit — RFC 5681, RFC 3042, RFC 6582, MUST-19), Nagle (SHLD-7, MUST-17), sender silly-window avoidance (MUST-38) and
//! zero windows kept open while the peer answers (MUST-37).

mod common;

use common::*;
use std::time::Duration;

use tcp_proto::State;

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

fn drain(h: &mut Harness) -> Vec<Sent> {
    std::iter::from_fn(|| h.poll()).collect()
}

/// ESTABLISHED with a peer MSS of `mss` and a big peer window.
fn established_mss(mss: u16, window: u16) -> Harness {
    let mut h = syn_sent();
    h.deliver(seg(syn_ack(), PEER_ISS, add(ISS, 1)).mss(mss).window(window));
    h.expect_one();
    h.events();
    h
}

fn big_sender(mss: u16, window: u16) -> Harness {
    big_sender_with(config(), mss, window)
}

/// [`big_sender`] with NewReno pinned: the tests that check its halving of FlightSize.
fn big_newreno_sender(mss: u16, window: u16) -> Harness {
    big_sender_with(newreno(config()), mss, window)
}

fn big_sender_with(mut config: tcp_proto::Config, mss: u16, window: u16) -> Harness {
    config.send_buffer = 1 << 20;
    let mut h = Harness::connect_with(config);
    h.expect_one();
    h.deliver(seg(syn_ack(), PEER_ISS, add(ISS, 1)).mss(mss).window(window));
    h.expect_one();
    h.events();
    h
}

fn ack_to(h: &mut Harness, n: u32) {
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(ISS, 1 + n)).window(65535));
}

#[test]
fn initial_window_is_ten_segments_rfc_6928_must_19() {
    let mut h = big_sender(1000, 65535);
    h.conn.send(h.now, &data(50_000)).unwrap();
    let sent = drain(&mut h);
    assert_eq!(sent.len(), 10, "IW = min(10 MSS, max(2 MSS, 14600)) = 10 000 octets");
    assert_eq!(h.conn.status().cwnd, 10_000);
}

#[test]
fn slow_start_grows_the_window_by_one_segment_per_ack_rfc_5681_3_1() {
    let mut h = big_sender(1000, 65535);
    h.conn.send(h.now, &data(50_000)).unwrap();
    drain(&mut h);
    ack_to(&mut h, 1000);
    // cwnd 11 000, 9 000 in flight: two new segments.
    assert_eq!(drain(&mut h).len(), 2);
    assert_eq!(h.conn.status().cwnd, 11_000);
}

#[test]
fn three_duplicate_acks_trigger_fast_retransmit_before_the_rto_rfc_5681_3_2() {
    let mut h = big_newreno_sender(1000, 65535);
    h.conn.send(h.now, &data(10_000)).unwrap();
    assert_eq!(drain(&mut h).len(), 10);
    // Segment 1 is lost; segments 2.. arrive and each draws a duplicate ACK for ISS+1.
    for _ in 0..2 {
        ack_to(&mut h, 0);
        h.expect_nothing();
    }
    ack_to(&mut h, 0);
    let resent = h.expect_one();
    assert_eq!((resent.seq, resent.payload.len()), (add(ISS, 1), 1000));
    let status = h.conn.status();
    assert_eq!(status.ssthresh, 5000, "FlightSize / 2");
    assert_eq!(status.cwnd, 8000, "ssthresh + 3 SMSS");
    assert_eq!(status.total_retransmissions, 0, "no RTO was needed");
    assert!(h.now.as_micros() < 2_000_000);
}

#[test]
fn limited_transmit_sends_new_data_on_the_first_two_duplicate_acks_rfc_3042() {
    let mut h = big_newreno_sender(1000, 65535);
    h.conn.send(h.now, &data(13_000)).unwrap();
    assert_eq!(drain(&mut h).len(), 10, "the initial window");
    // Segment 1 is lost. Each of the first two duplicate ACKs lets one new segment go
    // (FlightSize ≤ cwnd + 2 SMSS), cwnd unchanged.
    for n in 0..2u32 {
        ack_to(&mut h, 0);
        let sent = h.expect_one();
        assert_eq!((sent.seq, sent.payload.len()), (add(ISS, 1 + 10_000 + n * 1000), 1000));
        h.expect_nothing();
        assert_eq!(h.conn.status().cwnd, 10_000);
    }
    // The third is fast retransmit's: the missing segment, and no more new data than the
    // inflated window allows (ssthresh 6000 = FlightSize 12 000 / 2, cwnd 9000 < flight).
    ack_to(&mut h, 0);
    let resent = h.expect_one();
    assert_eq!((resent.seq, resent.payload.len()), (add(ISS, 1), 1000));
    h.expect_nothing();
    assert_eq!((h.conn.status().cwnd, h.conn.status().ssthresh), (9000, 6000));
}

#[test]
fn partial_ack_in_recovery_retransmits_the_next_hole_rfc_6582() {
    let mut h = big_newreno_sender(1000, 65535);
    h.conn.send(h.now, &data(10_000)).unwrap();
    drain(&mut h);
    // Segments 1 and 4 are lost.
    for _ in 0..3 {
        ack_to(&mut h, 0);
    }
    assert_eq!(h.expect_one().seq, add(ISS, 1));
    // The retransmission fills the first hole: the ACK covers up to the second hole.
    ack_to(&mut h, 3000);
    let next = h.expect_one();
    assert_eq!((next.seq, next.payload.len()), (add(ISS, 3001), 1000));
    // The full ACK ends recovery with cwnd = min(ssthresh, flight + SMSS).
    ack_to(&mut h, 10_000);
    assert_eq!(h.conn.status().cwnd, 1000, "min(ssthresh 5000, flight 0 + SMSS)");
    assert_eq!(h.conn.status().ssthresh, 5000);
}

#[test]
fn only_the_first_partial_ack_restarts_the_retransmission_timer_rfc_6582_3_2_step_5() {
    let mut h = big_sender(1000, 65535);
    h.conn.send(h.now, &data(10_000)).unwrap();
    drain(&mut h);
    // Segments 1, 4 and 7 are lost.
    for _ in 0..3 {
        ack_to(&mut h, 0);
    }
    assert_eq!(h.expect_one().seq, add(ISS, 1));
    h.advance(Duration::from_millis(100));
    ack_to(&mut h, 3000);
    assert_eq!(h.expect_one().seq, add(ISS, 3001));
    let rto = h.conn.status().rto;
    let first_partial_at = h.now;
    assert_eq!(h.conn.poll_timeout(), Some(first_partial_at + rto), "the first restarts it");
    h.advance(Duration::from_millis(100));
    ack_to(&mut h, 6000);
    assert_eq!(h.expect_one().seq, add(ISS, 6001));
    assert_eq!(
        h.conn.poll_timeout(),
        Some(first_partial_at + rto),
        "a later partial ACK leaves the timer running (the Impatient variant, §4)"
    );
    // When it fires, the timeout takes over: go back to SND.UNA, one segment.
    h.jump_to_deadline();
    assert_eq!(h.expect_one().seq, add(ISS, 6001));
    assert_eq!(h.conn.status().cwnd, 1000);
}

#[test]
fn rto_collapses_cwnd_to_one_segment_rfc_5681_3_1() {
    let mut h = big_newreno_sender(1000, 65535);
    h.conn.send(h.now, &data(10_000)).unwrap();
    drain(&mut h);
    h.jump_to_deadline();
    assert_eq!(h.expect_one().seq, add(ISS, 1));
    let status = h.conn.status();
    assert_eq!((status.cwnd, status.ssthresh), (1000, 5000));
}

/// Without SACK nothing tells which segments of a timed-out flight arrived: after the RTO
/// the whole flight goes again from SND.UNA (go-back-N), paced by cwnd as it slow-starts from
/// the loss window (RFC 5681 §3.1), and new data follows once the old flight is resent.
/// Resending only one segment per ACK kept a single segment in flight — one per round trip
/// for as many round trips as the flight had segments (issue #18's 0.24 Mbit/s).
#[test]
fn after_an_rto_the_flight_goes_again_paced_by_cwnd_rfc_5681_3_1() {
    let mut h = big_newreno_sender(1000, 65535);
    h.conn.send(h.now, &data(20_000)).unwrap();
    assert_eq!(drain(&mut h).len(), 10);
    h.jump_to_deadline();
    assert_eq!(h.expect_one().seq, add(ISS, 1));
    h.expect_nothing();
    let seqs = |sent: Vec<Sent>| -> Vec<u32> {
        sent.iter().map(|s| (s.seq.wrapping_sub(ISS) - 1) / 1000).collect()
    };
    ack_to(&mut h, 1000);
    assert_eq!(h.conn.status().cwnd, 2000);
    assert_eq!(seqs(drain(&mut h)), [1, 2], "cwnd 2000 from SND.UNA");
    ack_to(&mut h, 2000);
    assert_eq!(seqs(drain(&mut h)), [3, 4]);
    ack_to(&mut h, 3000);
    assert_eq!(seqs(drain(&mut h)), [5, 6]);
    // The peer had 5–9 already: the ACK of 5 and 6 covers the old flight; slow start goes on
    // with new data (cwnd 5000 from SND.UNA 10 000).
    ack_to(&mut h, 10_000);
    assert_eq!(h.conn.status().cwnd, 5000);
    assert_eq!(seqs(drain(&mut h)), [10, 11, 12, 13, 14]);
    assert_eq!(h.conn.counters().retransmission_timeouts, 1);
}

/// RFC 6582 §4's Impatient variant leaves a recovery with many holes to the RTO. That window's
/// congestion was answered by the fast retransmit: the RTO takes cwnd to the loss window but
/// keeps ssthresh (FlightSize then counts what window inflation sent; Linux likewise reduces
/// ssthresh at most once per window).
#[test]
fn an_rto_during_fast_recovery_keeps_its_ssthresh_rfc_6582_4() {
    let mut h = big_newreno_sender(1000, 65535);
    h.conn.send(h.now, &data(10_000)).unwrap();
    drain(&mut h);
    // Segments 0, 3 and 6 are lost; the fast retransmit halves FlightSize 10 000.
    for _ in 0..3 {
        ack_to(&mut h, 0);
    }
    assert_eq!(h.expect_one().seq, add(ISS, 1));
    assert_eq!(h.conn.status().ssthresh, 5000);
    ack_to(&mut h, 3000);
    assert_eq!(h.expect_one().seq, add(ISS, 3001));
    ack_to(&mut h, 6000);
    assert_eq!(h.expect_one().seq, add(ISS, 6001));
    h.jump_to_deadline();
    assert_eq!(h.expect_one().seq, add(ISS, 6001));
    let status = h.conn.status();
    assert_eq!((status.cwnd, status.ssthresh), (1000, 5000), "not FlightSize 4000 / 2");
    ack_to(&mut h, 10_000);
    assert_eq!(h.conn.status().ssthresh, 5000);
}

#[test]
fn nagle_holds_a_small_write_while_a_small_segment_is_in_flight_shld_7() {
    let mut h = established_mss(1460, 8192);
    h.conn.send(h.now, b"first").unwrap();
    assert_eq!(h.expect_one().payload, b"first");
    h.conn.send(h.now, b"second").unwrap();
    h.expect_nothing();
    // The ACK of the first releases the second.
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(ISS, 6)));
    let released = h.expect_one();
    assert_eq!((released.seq, released.payload.as_slice()), (add(ISS, 6), &b"second"[..]));
}

#[test]
fn nodelay_sends_small_writes_at_once_must_17() {
    let mut h = established_mss(1460, 8192);
    h.conn.set_nodelay(true);
    h.conn.send(h.now, b"first").unwrap();
    h.expect_one();
    h.conn.send(h.now, b"second").unwrap();
    assert_eq!(h.expect_one().payload, b"second");
}

#[test]
fn full_segments_are_never_held_by_nagle() {
    let mut h = established_mss(100, 8192);
    h.conn.send(h.now, b"tiny").unwrap();
    h.expect_one();
    h.conn.send(h.now, &data(250)).unwrap();
    let sizes: Vec<usize> = drain(&mut h).iter().map(|s| s.payload.len()).collect();
    assert_eq!(sizes, [100, 100], "the short tail waits for the ACK");
}

#[test]
fn fin_is_not_held_by_nagle() {
    let mut h = established_mss(1460, 8192);
    h.conn.send(h.now, b"first").unwrap();
    h.expect_one();
    h.conn.send(h.now, b"last").unwrap();
    h.conn.close(h.now).unwrap();
    let sent = h.expect_one();
    assert_seg(
        &sent,
        tcp_proto::wire::Flags::FIN | psh_ack(),
        add(ISS, 6),
        add(PEER_ISS, 1),
        WINDOW,
    );
    assert_eq!(sent.payload, b"last");
}

#[test]
fn sender_sws_avoidance_waits_for_a_useful_window_then_overrides_must_38() {
    let mut h = established_mss(1460, 8192);
    h.conn.set_nodelay(true);
    // The peer's window drops to 300 (max seen 8192): 300 < MSS and < max/2, and 1000 octets
    // are queued, so nothing is sent yet.
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(ISS, 1)).window(300));
    h.conn.send(h.now, &data(1000)).unwrap();
    h.expect_nothing();
    // The override timeout (one RTO) sends what the window allows.
    let held_at = h.now.as_micros();
    let fired = h.jump_to_deadline();
    assert_eq!(fired.as_micros() - held_at, 1_000_000);
    let sent = h.expect_one();
    assert_eq!((sent.seq, sent.payload.len()), (add(ISS, 1), 300));
    // A window opening to a full segment releases the rest at once.
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(ISS, 301)).window(8192));
    assert_eq!(h.expect_one().payload.len(), 700);
}

#[test]
fn zero_window_stays_open_while_the_peer_answers_probes_must_37() {
    let mut h = established_mss(1460, 0);
    h.conn.send(h.now, b"patience").unwrap();
    h.expect_nothing();
    let start = h.now;
    // An hour of probing, each probe answered with "window still zero".
    while h.now.as_micros() - start.as_micros() < 3_600_000_000 {
        h.jump_to_deadline();
        for probe in drain(&mut h) {
            assert!(probe.payload.len() <= 1, "probes carry at most one octet");
        }
        let una = h.conn.status().snd_una.get();
        h.deliver(seg(ack(), add(PEER_ISS, 1), una).window(0));
        drain(&mut h);
    }
    assert_eq!(h.state(), State::Established);
    // The window opens; like any closed receiver, the peer never took the probe octet, so all
    // eight octets go from SND.UNA at once.
    let una = h.conn.status().snd_una.get();
    assert_eq!(una, add(ISS, 1));
    h.deliver(seg(ack(), add(PEER_ISS, 1), una).window(8192));
    let sent = drain(&mut h);
    assert_eq!(sent.first().map(|s| s.seq), Some(una));
    let octets: Vec<u8> = sent.iter().flat_map(|s| s.payload.clone()).collect();
    assert_eq!(octets, b"patience");
}

// ------------------------------------------------------------------ window scaling (RFC 7323)

fn scaled_config() -> tcp_proto::Config {
    let mut config = config();
    config.recv_buffer = 256 * 1024;
    config
}

#[test]
fn window_scaling_is_used_when_both_syns_offer_it_rfc_7323_2() {
    let mut h = Harness::connect_with(scaled_config());
    let syn_seg = h.expect_one();
    // 256 KiB needs a shift of 3 to fit 16 bits; the SYN's own window is not scaled.
    assert_eq!(syn_seg.options.window_scale, Some(3));
    assert_eq!(syn_seg.window, 65535);
    let mut synack = seg(syn_ack(), PEER_ISS, add(ISS, 1)).mss(1460).window(1000);
    synack.window_scale = Some(7);
    h.deliver(synack);
    let ack_seg = h.expect_one();
    assert_eq!(ack_seg.window, ((256 * 1024) >> 3) as u16, "our window, scaled by 3");
    let status = h.conn.status();
    assert_eq!((status.snd_wscale, status.rcv_wscale), (Some(7), Some(3)));
    assert_eq!(status.snd_wnd, 1000, "the SYN-ACK's window is taken unscaled");
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(ISS, 1)).window(100));
    assert_eq!(h.conn.status().snd_wnd, 100 << 7, "later windows are scaled");
}

#[test]
fn window_scaling_is_off_when_the_peer_does_not_offer_it_rfc_7323_2_2() {
    let mut h = Harness::connect_with(scaled_config());
    h.expect_one();
    h.deliver(seg(syn_ack(), PEER_ISS, add(ISS, 1)).mss(1460).window(1000));
    let ack_seg = h.expect_one();
    assert_eq!(ack_seg.window, 65535, "unscaled, so capped at 65535");
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(ISS, 1)).window(100));
    let status = h.conn.status();
    assert_eq!((status.snd_wscale, status.rcv_wscale, status.snd_wnd), (None, None, 100));
}

#[test]
fn syn_ack_offers_window_scaling_only_in_reply_to_an_offer_rfc_7323_2_2() {
    for (offered, expect) in [(Some(2), Some(3)), (None, None)] {
        let mut h = Harness {
            conn: tcp_proto::Connection::listen(scaled_config(), tcp_proto::Instant::ZERO, LOCAL),
            now: tcp_proto::Instant::ZERO,
            peer: REMOTE,
        };
        let mut syn_seg = seg(syn(), PEER_ISS, 0).mss(1460);
        syn_seg.window_scale = offered;
        h.deliver(syn_seg);
        let synack = h.expect_one();
        assert_eq!(synack.options.window_scale, expect);
        assert_eq!(synack.window, 65535, "a SYN's window is never scaled");
    }
}

#[test]
fn window_scaling_can_be_switched_off_per_connection() {
    let mut config = scaled_config();
    config.window_scaling = false;
    let mut h = Harness::connect_with(config);
    assert_eq!(h.expect_one().options.window_scale, None);
}

#[test]
fn a_shift_above_fourteen_is_taken_as_fourteen_rfc_7323_2_3() {
    let mut h = Harness::connect_with(scaled_config());
    h.expect_one();
    let mut synack = seg(syn_ack(), PEER_ISS, add(ISS, 1)).window(1000);
    synack.window_scale = Some(30);
    h.deliver(synack);
    h.expect_one();
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(ISS, 1)).window(1));
    assert_eq!(h.conn.status().snd_wnd, 1 << 14);
}

#[test]
fn short_tail_after_full_segments_is_not_held_for_a_delayed_ack_rfc_9293_appendix_a_3() {
    // Classic Nagle would hold the 50-octet tail until the full segments are acknowledged,
    // which a delayed-ACK receiver answers only after its timer: the stall of RFC 9293 A.3.
    // Minshall's variant holds a short segment only behind another short one.
    let mut h = established_mss(100, 8192);
    h.conn.send(h.now, &data(250)).unwrap();
    let sizes: Vec<usize> = drain(&mut h).iter().map(|s| s.payload.len()).collect();
    assert_eq!(sizes, [100, 100, 50]);
}

#[test]
fn a_due_probe_is_dropped_once_data_is_in_flight_never_exceeding_the_window() {
    // Found by the `pair` fuzz target: the persist timer fired, a window update arrived before
    // the next poll, the update's data filled the window, and the stale probe then sent one
    // octet past it — after which each side's ACKs were outside the other's window.
    let mut h = established_mss(1460, 0);
    h.conn.set_nodelay(true);
    h.conn.send(h.now, &data(500)).unwrap();
    h.expect_nothing();
    let deadline = h.conn.poll_timeout().unwrap();
    h.now = deadline;
    h.fire_timers();
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(ISS, 1)).window(100));
    let sent = drain(&mut h);
    assert_eq!(sent.len(), 1, "the window's worth, and no probe after it: {sent:?}");
    assert_eq!((sent[0].seq, sent[0].payload.len()), (add(ISS, 1), 100));
}

#[test]
fn acks_for_unacceptable_segments_are_rate_limited_so_an_ack_war_ends() {
    // Two hosts each sending from outside the other's window would otherwise answer every ACK
    // with an ACK, forever, at the speed of the link.
    let mut h = established_mss(1460, 8192);
    let mut answered = 0;
    for _ in 0..100 {
        h.deliver(seg(ack(), add(PEER_ISS, 1 + u32::from(WINDOW) + 1), add(ISS, 1)));
        answered += drain(&mut h).len();
    }
    assert_eq!(answered, 10, "at most 10 per second (RFC 5961 §7's limit, reused)");
}

#[test]
fn data_held_by_nagle_or_sws_goes_out_without_another_call_must_60() {
    // MUST-60: the SEND call has no PUSH flag, so nothing may wait for one. Data Nagle holds
    // goes with the ACK of the short segment in flight; data sender SWS avoidance holds goes
    // at the override timeout — neither needs another call from the application.
    let mut h = established_mss(1460, 8192);
    h.conn.send(h.now, b"a").unwrap();
    assert_eq!(h.expect_one().payload, b"a");
    h.conn.send(h.now, b"bc").unwrap();
    h.expect_nothing();
    ack_to(&mut h, 1);
    let released = h.expect_one();
    assert_seg(&released, psh_ack(), add(ISS, 2), add(PEER_ISS, 1), WINDOW);
    assert_eq!(released.payload, b"bc");
    // The window shrinks to 300 octets (below MSS and half the largest window seen).
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(ISS, 4)).window(300));
    h.conn.send(h.now, &data(1000)).unwrap();
    h.expect_nothing();
    let held_at = h.now;
    h.jump_to_deadline();
    let overridden = h.expect_one();
    assert_eq!((overridden.seq, overridden.payload.len()), (add(ISS, 4), 300));
    assert_eq!(h.now.saturating_duration_since(held_at), Duration::from_secs(1));
}

#[test]
fn fin_goes_only_inside_the_peers_window_rfc_9293_3_10_7_4() {
    // Found by the pair target's liveness oracle: a FIN sent at the right edge of the peer's
    // window is unacceptable there (§3.10.7.4 step 1), and so is every ACK sent after it at
    // SEQ = SND.NXT — the peer dropped the ACK of its own probe and waited for a timeout.
    let mut h = established_mss(1460, 100);
    h.conn.set_nodelay(true);
    h.conn.send(h.now, &data(100)).unwrap();
    h.conn.close(h.now).unwrap();
    let sent = h.expect_one();
    assert_seg(&sent, psh_ack(), add(ISS, 1), add(PEER_ISS, 1), WINDOW);
    assert_eq!(sent.payload.len(), 100, "the window's worth, without the FIN");
    // The peer takes it and opens its window: the FIN follows.
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(ISS, 101)).window(100));
    assert_seg(&h.expect_one(), fin_ack(), add(ISS, 101), add(PEER_ISS, 1), WINDOW);
    // A closed window gets the FIN as its probe, after one RTO.
    let mut h = established_mss(1460, 100);
    h.conn.send(h.now, &data(100)).unwrap();
    h.conn.close(h.now).unwrap();
    assert_eq!(h.expect_one().payload.len(), 100);
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(ISS, 101)).window(0));
    h.expect_nothing();
    let held_at = h.now;
    h.jump_to_deadline();
    assert_seg(&h.expect_one(), fin_ack(), add(ISS, 101), add(PEER_ISS, 1), WINDOW);
    assert_eq!(h.now.saturating_duration_since(held_at), Duration::from_secs(1));
}
