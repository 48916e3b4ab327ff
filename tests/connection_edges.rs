//! One test per edge of the transition table: each drives a real connection into the state
//! through the public API, delivers the stimulus, and asserts the exact reply segment (flags,
//! seq, ack, window, options) and the new state. Names follow `<stimulus>_in_<state>_<result>`
//! and cite RFC 9293 sections and Appendix B requirement ids.
//!
//! Every sequence number here sits just below 2^32, so the handshakes and closes all wrap.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::time::Duration;

use common::*;
use tcp_proto::{CallError, CloseReason, ConnectionError, Event, State};

#[track_caller]
fn assert_state_change(h: &mut Harness, from: State, to: State) {
    let events = h.events();
    assert!(
        events.contains(&Event::StateChanged { from, to }),
        "expected {from} -> {to} among {events:?}"
    );
    assert_eq!(h.state(), to);
}

#[track_caller]
fn assert_closed_with(h: &mut Harness, from: State, reason: CloseReason) {
    let events = h.events();
    assert!(events.contains(&Event::StateChanged { from, to: State::Closed }), "{events:?}");
    assert!(events.contains(&Event::Closed(reason)), "{events:?}");
    assert_eq!(h.state(), State::Closed);
    assert_eq!(h.conn.close_reason(), Some(reason));
}

#[track_caller]
fn assert_challenge_ack(h: &mut Harness, snd_nxt: u32, rcv_nxt: u32) {
    let reply = h.expect_one();
    assert_seg(&reply, ack(), snd_nxt, rcv_nxt, WINDOW);
}

/// Jumps from deadline to deadline (answering nothing) until the connection closes; returns the
/// retransmitted segments and the time it took.
fn retransmit_until_closed(h: &mut Harness) -> (Vec<Sent>, Duration) {
    let started = h.now;
    let mut sent = Vec::new();
    for _ in 0..100 {
        if h.state() == State::Closed {
            break;
        }
        h.jump_to_deadline();
        while let Some(segment) = h.poll() {
            sent.push(segment);
        }
    }
    (sent, Duration::from_micros(h.now.as_micros() - started.as_micros()))
}

// ---------------------------------------------------------------- CLOSED (§3.10.1, §3.10.7.1)

#[test]
fn passive_open_in_closed_moves_to_listen_rfc_9293_3_10_1() {
    let mut h = reach(State::Closed, Origin::Active);
    h.conn.open_passive(h.now).unwrap();
    h.expect_nothing();
    assert_state_change(&mut h, State::Closed, State::Listen);
}

#[test]
fn active_open_in_closed_sends_syn_with_mss_and_moves_to_syn_sent_must_65() {
    let mut h = reach(State::Closed, Origin::Active);
    h.conn.open_active(h.now, REMOTE).unwrap();
    let syn_seg = h.expect_one();
    assert_seg(&syn_seg, syn(), ISS, 0, WINDOW);
    assert_eq!(syn_seg.options.mss, Some(OUR_MSS), "MSS option on the SYN (MUST-65, MUST-67)");
    assert!(syn_seg.payload.is_empty());
    assert_eq!(syn_seg.to, REMOTE);
    assert_state_change(&mut h, State::Closed, State::SynSent);
}

#[test]
fn segment_in_closed_draws_rst_rfc_9293_3_10_7_1() {
    let mut h = reach(State::Closed, Origin::Active);
    // Without ACK: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
    h.deliver(seg(syn(), PEER_ISS, 0).payload(b"abc"));
    let reply = h.expect_one();
    assert_seg(&reply, rst_ack(), 0, add(PEER_ISS, 4), 0);
    // With ACK: <SEQ=SEG.ACK><CTL=RST>.
    h.deliver(seg(ack(), 5, 77));
    let reply = h.expect_one();
    assert_seg(&reply, rst(), 77, 0, 0);
    // A RST is never answered.
    h.deliver(seg(rst(), 5, 0));
    h.expect_nothing();
    assert_eq!(h.state(), State::Closed);
}

#[test]
fn user_calls_in_never_opened_closed_say_connection_does_not_exist() {
    let mut h = reach(State::Closed, Origin::Active);
    assert_eq!(h.conn.send(h.now, b"x"), Err(CallError::NotOpen));
    assert_eq!(h.conn.recv(&mut [0; 4]), Err(CallError::NotOpen));
    assert_eq!(h.conn.close(h.now), Err(CallError::NotOpen));
    assert_eq!(h.conn.abort(h.now), Err(CallError::NotOpen));
}

// ---------------------------------------------------------------- LISTEN (§3.10.7.2)

#[test]
fn syn_in_listen_sends_syn_ack_and_moves_to_syn_received_rfc_9293_3_10_7_2() {
    let mut h = Harness::listen();
    h.events();
    h.deliver(seg(syn(), PEER_ISS, 0).mss(1000));
    let reply = h.expect_one();
    assert_seg(&reply, syn_ack(), ISS, add(PEER_ISS, 1), WINDOW);
    assert_eq!(reply.options.mss, Some(OUR_MSS));
    assert_eq!(reply.to, REMOTE);
    assert_state_change(&mut h, State::Listen, State::SynReceived);
    assert_eq!(h.conn.remote(), Some(REMOTE));
}

#[test]
fn active_open_in_listen_sends_syn_and_moves_to_syn_sent_rfc_9293_3_10_2() {
    let mut h = Harness::listen();
    h.events();
    h.conn.open_active(h.now, REMOTE).unwrap();
    let syn_seg = h.expect_one();
    assert_seg(&syn_seg, syn(), ISS, 0, WINDOW);
    assert_state_change(&mut h, State::Listen, State::SynSent);
}

#[test]
fn close_in_listen_moves_to_closed_rfc_9293_3_10_4() {
    let mut h = Harness::listen();
    h.events();
    h.conn.close(h.now).unwrap();
    h.expect_nothing();
    assert_closed_with(&mut h, State::Listen, CloseReason::Orderly);
}

#[test]
fn abort_in_listen_moves_to_closed_without_rst_rfc_9293_3_10_5() {
    let mut h = Harness::listen();
    h.events();
    h.conn.abort(h.now).unwrap();
    h.expect_nothing();
    assert_closed_with(&mut h, State::Listen, CloseReason::Error(ConnectionError::Aborted));
}

#[test]
fn rst_in_listen_is_ignored_rfc_9293_3_10_7_2() {
    let mut h = Harness::listen();
    h.events();
    h.deliver(seg(rst(), PEER_ISS, 0));
    h.deliver(seg(rst_ack(), PEER_ISS, 99));
    h.expect_nothing();
    assert_eq!(h.state(), State::Listen);
    assert!(h.events().is_empty());
}

#[test]
fn ack_in_listen_draws_rst_rfc_9293_3_10_7_2() {
    let mut h = Harness::listen();
    h.deliver(seg(ack(), PEER_ISS, 12345));
    let reply = h.expect_one();
    assert_seg(&reply, rst(), 12345, 0, 0);
    assert_eq!(h.state(), State::Listen);
}

#[test]
fn send_in_listen_says_foreign_socket_unspecified_rfc_9293_3_10_2() {
    let mut h = Harness::listen();
    assert_eq!(h.conn.send(h.now, b"x"), Err(CallError::NoRemote));
}

// ---------------------------------------------------------------- SYN-SENT (§3.10.7.3)

#[test]
fn syn_ack_in_syn_sent_acks_and_moves_to_established_rfc_9293_3_10_7_3() {
    let mut h = syn_sent();
    h.deliver(seg(syn_ack(), PEER_ISS, add(ISS, 1)).mss(1460));
    let reply = h.expect_one();
    assert_seg(&reply, ack(), add(ISS, 1), add(PEER_ISS, 1), WINDOW);
    assert_eq!(reply.options.mss, None, "no MSS option off the SYN (MUST-65)");
    let events = h.events();
    assert!(events.contains(&Event::StateChanged { from: State::SynSent, to: State::Established }));
    assert!(events.contains(&Event::Connected));
}

#[test]
fn syn_in_syn_sent_sends_syn_ack_and_moves_to_syn_received_must_10() {
    let mut h = syn_sent();
    h.deliver(seg(syn(), PEER_ISS, 0).mss(1460));
    let reply = h.expect_one();
    assert_seg(&reply, syn_ack(), ISS, add(PEER_ISS, 1), WINDOW);
    assert_eq!(reply.options.mss, Some(OUR_MSS));
    assert_state_change(&mut h, State::SynSent, State::SynReceived);
    // The peer's SYN-ACK then completes the simultaneous open (RFC 9293 Figure 8, line 6):
    // its SYN is old, its ACK acknowledges ours; nothing more needs to be sent.
    h.deliver(seg(syn_ack(), PEER_ISS, add(ISS, 1)));
    h.expect_nothing();
    assert_state_change(&mut h, State::SynReceived, State::Established);
}

#[test]
fn rst_acking_our_syn_in_syn_sent_closes_refused_rfc_9293_3_10_7_3() {
    let mut h = syn_sent();
    h.deliver(seg(rst_ack(), 0, add(ISS, 1)));
    h.expect_nothing();
    assert_closed_with(&mut h, State::SynSent, CloseReason::Error(ConnectionError::Refused));
    assert_eq!(h.conn.send(h.now, b"x"), Err(CallError::Ended(ConnectionError::Refused)));
    assert_eq!(h.conn.recv(&mut [0; 4]), Err(CallError::Ended(ConnectionError::Refused)));
}

#[test]
fn rst_without_ack_of_our_syn_in_syn_sent_is_ignored_rfc_5961_3() {
    let mut h = syn_sent();
    h.deliver(seg(rst(), 0, 0));
    h.expect_nothing();
    assert_eq!(h.state(), State::SynSent);
}

#[test]
fn unacceptable_ack_in_syn_sent_draws_rst_rfc_9293_3_10_7_3() {
    let mut h = syn_sent();
    h.deliver(seg(syn_ack(), PEER_ISS, add(ISS, 7)));
    let reply = h.expect_one();
    assert_seg(&reply, rst(), add(ISS, 7), 0, 0);
    assert_eq!(h.state(), State::SynSent);
}

#[test]
fn close_in_syn_sent_moves_to_closed_rfc_9293_3_10_4() {
    let mut h = syn_sent();
    h.conn.close(h.now).unwrap();
    h.expect_nothing();
    assert_closed_with(&mut h, State::SynSent, CloseReason::Orderly);
}

#[test]
fn abort_in_syn_sent_moves_to_closed_without_rst_rfc_9293_3_10_5() {
    let mut h = syn_sent();
    h.conn.abort(h.now).unwrap();
    h.expect_nothing();
    assert_closed_with(&mut h, State::SynSent, CloseReason::Error(ConnectionError::Aborted));
}

#[test]
fn timeout_in_syn_sent_retransmits_syn_with_backoff_then_closes_after_r2_must_23() {
    let mut h = syn_sent();
    let (sent, took) = retransmit_until_closed(&mut h);
    for segment in &sent {
        assert_seg(segment, syn(), ISS, 0, WINDOW);
        assert_eq!(segment.options.mss, Some(OUR_MSS));
    }
    // RTO 1 s doubling: retransmissions at 1, 3, 7, 15, 31, 63, 127 s; R2 for a SYN is 3 min.
    assert_eq!(sent.len(), 7, "{sent:?}");
    assert!(took >= Duration::from_secs(180), "gave up after {took:?}, MUST-23 wants ≥ 3 min");
    assert_closed_with(&mut h, State::SynSent, CloseReason::Error(ConnectionError::TimedOut));
}

// ---------------------------------------------------------------- SYN-RECEIVED

#[test]
fn ack_of_syn_in_syn_received_moves_to_established_rfc_9293_3_10_7_4() {
    for origin in ORIGINS {
        let mut h = reach(State::SynReceived, origin);
        h.deliver(seg(ack(), add(PEER_ISS, 1), add(ISS, 1)));
        h.expect_nothing();
        let events = h.events();
        assert!(
            events.contains(&Event::StateChanged {
                from: State::SynReceived,
                to: State::Established
            })
        );
        assert!(events.contains(&Event::Connected));
    }
}

#[test]
fn unacceptable_ack_in_syn_received_draws_rst_rfc_9293_3_10_7_4() {
    let mut h = syn_received_passive();
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(ISS, 50)));
    let reply = h.expect_one();
    assert_seg(&reply, rst(), add(ISS, 50), 0, 0);
    assert_eq!(h.state(), State::SynReceived);
}

#[test]
fn close_in_syn_received_sends_fin_and_moves_to_fin_wait_1_rfc_9293_3_10_4() {
    let mut h = syn_received_passive();
    h.conn.close(h.now).unwrap();
    let fin = h.expect_one();
    assert_seg(&fin, fin_ack(), add(ISS, 1), add(PEER_ISS, 1), WINDOW);
    assert_state_change(&mut h, State::SynReceived, State::FinWait1);
    // The ACK of SYN and FIN together takes it to FIN-WAIT-2.
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(ISS, 2)));
    assert_eq!(h.state(), State::FinWait2);
}

#[test]
fn abort_in_syn_received_sends_rst_and_closes_rfc_9293_3_10_5() {
    let mut h = syn_received_passive();
    h.conn.abort(h.now).unwrap();
    let reply = h.expect_one();
    assert_seg(&reply, rst(), add(ISS, 1), 0, 0);
    assert_closed_with(&mut h, State::SynReceived, CloseReason::Error(ConnectionError::Aborted));
}

#[test]
fn rst_in_passive_syn_received_returns_to_listen_must_11() {
    let mut h = syn_received_passive();
    h.deliver(seg(rst(), add(PEER_ISS, 1), 0));
    h.expect_nothing();
    assert_state_change(&mut h, State::SynReceived, State::Listen);
    assert_eq!(h.conn.remote(), None);
    // And LISTEN works again: a new SYN from elsewhere is answered.
    h.deliver(seg(syn(), 5000, 0));
    let reply = h.expect_one();
    assert_seg(&reply, syn_ack(), ISS, 5001, WINDOW);
}

#[test]
fn rst_in_active_syn_received_closes_refused_rfc_9293_3_10_7_4() {
    let mut h = syn_received_active();
    h.deliver(seg(rst(), add(PEER_ISS, 1), 0));
    h.expect_nothing();
    assert_closed_with(&mut h, State::SynReceived, CloseReason::Error(ConnectionError::Refused));
}

#[test]
fn syn_in_window_in_passive_syn_received_returns_to_listen_rfc_9293_3_10_7_4() {
    let mut h = syn_received_passive();
    h.deliver(seg(syn(), add(PEER_ISS, 10), 0));
    h.expect_nothing();
    assert_state_change(&mut h, State::SynReceived, State::Listen);
}

#[test]
fn syn_in_window_in_active_syn_received_draws_challenge_ack_rfc_5961_4() {
    let mut h = syn_received_active();
    h.deliver(seg(syn(), add(PEER_ISS, 10), 0));
    // The challenge ACK comes from SND.NXT = ISS+1 (our SYN is out).
    assert_challenge_ack(&mut h, add(ISS, 1), add(PEER_ISS, 1));
    assert_eq!(h.state(), State::SynReceived);
}

#[test]
fn retransmitted_syn_in_syn_received_resends_syn_ack() {
    let mut h = syn_received_passive();
    h.deliver(seg(syn(), PEER_ISS, 0).mss(1460));
    let reply = h.expect_one();
    assert_seg(&reply, syn_ack(), ISS, add(PEER_ISS, 1), WINDOW);
    assert_eq!(reply.options.mss, Some(OUR_MSS));
    assert_eq!(h.state(), State::SynReceived);
}

#[test]
fn withheld_ack_in_syn_received_retransmits_syn_ack_after_rto_rfc_6298_5_4() {
    let mut h = syn_received_passive();
    let fired = h.jump_to_deadline();
    assert_eq!(fired.as_micros() - 1_000_000, 1_000_000, "initial RTO is 1 s (RFC 6298 2.1)");
    let reply = h.expect_one();
    assert_seg(&reply, syn_ack(), ISS, add(PEER_ISS, 1), WINDOW);
    assert_eq!(h.state(), State::SynReceived);
    // The next one after 2 s (5.5: back off).
    let fired = h.jump_to_deadline();
    assert_eq!(fired.as_micros() - 1_000_000, 3_000_000);
    h.expect_one();
}

#[test]
fn timeout_in_syn_received_closes_after_r2_must_23() {
    let mut h = syn_received_passive();
    let (sent, took) = retransmit_until_closed(&mut h);
    assert!(sent.iter().all(|s| s.flags == syn_ack() && s.seq == ISS));
    assert!(took >= Duration::from_secs(180));
    assert_closed_with(&mut h, State::SynReceived, CloseReason::Error(ConnectionError::TimedOut));
}

#[test]
fn syn_retransmissions_report_r1_then_close_after_r2_must_22() {
    // MUST-22: SYN retransmission follows the same R1/R2 rules as data: R1 (3 retransmissions)
    // is reported once, after the third, and R2 for a SYN (3 min) ends the attempt.
    for (label, mut h) in [("SYN-SENT", syn_sent()), ("SYN-RECEIVED", syn_received_passive())] {
        let opened = h.now;
        let mut retransmissions = 0;
        let mut reported = Vec::new();
        while h.state() != State::Closed {
            h.jump_to_deadline();
            retransmissions += std::iter::from_fn(|| h.poll()).count();
            for event in h.events() {
                if event == Event::RetransmissionThreshold {
                    let at = h.now.saturating_duration_since(opened);
                    reported.push((retransmissions, at));
                }
            }
        }
        // Retransmissions at 1, 3 and 7 s: R1 is reached with the third.
        assert_eq!(reported, [(3, Duration::from_secs(7))], "{label}");
        assert!(h.now.saturating_duration_since(opened) >= Duration::from_secs(180), "{label}");
        assert_eq!(
            h.conn.close_reason(),
            Some(CloseReason::Error(ConnectionError::TimedOut)),
            "{label}"
        );
    }
}

// ---------------------------------------------------------------- ESTABLISHED

#[test]
fn close_in_established_sends_fin_and_moves_to_fin_wait_1_rfc_9293_3_10_4() {
    let mut h = established();
    h.conn.close(h.now).unwrap();
    let fin = h.expect_one();
    assert_seg(&fin, fin_ack(), add(ISS, 1), add(PEER_ISS, 1), WINDOW);
    assert_state_change(&mut h, State::Established, State::FinWait1);
    assert_eq!(h.conn.send(h.now, b"late"), Err(CallError::Closing));
}

#[test]
fn fin_in_established_acks_and_moves_to_close_wait_rfc_9293_3_10_7_4() {
    let mut h = established();
    h.deliver(seg(fin_ack(), add(PEER_ISS, 1), add(ISS, 1)));
    let reply = h.expect_one();
    // The FIN takes one sequence number.
    assert_seg(&reply, ack(), add(ISS, 1), add(PEER_ISS, 2), WINDOW);
    let events = h.events();
    assert!(
        events.contains(&Event::StateChanged { from: State::Established, to: State::CloseWait })
    );
    assert!(events.contains(&Event::PeerClosed));
}

#[test]
fn rst_at_rcv_nxt_in_established_closes_with_reset_rfc_5961_3() {
    for origin in ORIGINS {
        let mut h = established_via(origin);
        h.deliver(seg(rst(), add(PEER_ISS, 1), 0));
        h.expect_nothing();
        assert_closed_with(&mut h, State::Established, CloseReason::Error(ConnectionError::Reset));
        assert_eq!(h.conn.send(h.now, b"x"), Err(CallError::Ended(ConnectionError::Reset)));
    }
}

#[test]
fn rst_in_window_not_at_rcv_nxt_in_established_draws_challenge_ack_rfc_5961_3() {
    let mut h = established();
    h.deliver(seg(rst(), add(PEER_ISS, 100), 0));
    assert_challenge_ack(&mut h, add(ISS, 1), add(PEER_ISS, 1));
    assert_eq!(h.state(), State::Established);
}

#[test]
fn rst_outside_window_in_established_is_dropped_silently_rfc_5961_3() {
    let mut h = established();
    h.deliver(seg(rst(), add(PEER_ISS, 100_000), 0));
    h.expect_nothing();
    assert_eq!(h.state(), State::Established);
}

#[test]
fn syn_in_established_draws_challenge_ack_rfc_5961_4() {
    for origin in ORIGINS {
        let mut h = established_via(origin);
        h.deliver(seg(syn(), add(PEER_ISS, 1), 0));
        assert_challenge_ack(&mut h, add(ISS, 1), add(PEER_ISS, 1));
        assert_eq!(h.state(), State::Established);
    }
}

#[test]
fn challenge_acks_in_established_are_rate_limited_per_connection_rfc_5961_7() {
    let mut h = established();
    let mut replies = 0;
    for _ in 0..50 {
        h.deliver(seg(syn(), add(PEER_ISS, 1), 0));
        replies += usize::from(h.poll().is_some());
    }
    assert_eq!(replies, 10, "default limit: 10 challenge ACKs per second");
    assert_eq!(h.conn.counters().challenge_acks_suppressed, 40);
    h.advance(Duration::from_secs(1));
    h.deliver(seg(syn(), add(PEER_ISS, 1), 0));
    assert!(h.poll().is_some(), "a new interval allows challenge ACKs again");
}

#[test]
fn abort_in_established_sends_rst_and_closes_aborted_rfc_9293_3_10_5() {
    let mut h = established();
    h.conn.abort(h.now).unwrap();
    let reply = h.expect_one();
    assert_seg(&reply, rst(), add(ISS, 1), 0, 0);
    assert_closed_with(&mut h, State::Established, CloseReason::Error(ConnectionError::Aborted));
    assert_eq!(h.conn.recv(&mut [0; 4]), Err(CallError::Ended(ConnectionError::Aborted)));
}

#[test]
fn timeout_in_established_retransmits_then_closes_after_r2_must_20() {
    let mut h = established();
    assert_eq!(h.conn.send(h.now, b"lost"), Ok(4));
    let first = h.expect_one();
    assert_seg(&first, psh_ack(), add(ISS, 1), add(PEER_ISS, 1), WINDOW);
    let (sent, took) = retransmit_until_closed(&mut h);
    assert!(!sent.is_empty());
    for segment in &sent {
        assert_eq!(segment, &first, "retransmission re-sends the same segment");
    }
    assert!(took >= Duration::from_secs(100), "R2 for data is at least 100 s (SHLD-11)");
    let events = h.events();
    assert!(events.contains(&Event::RetransmissionThreshold), "R1 reported (MUST-20)");
    assert!(events.contains(&Event::Closed(CloseReason::Error(ConnectionError::TimedOut))));
}

#[test]
fn unacceptable_segment_in_established_draws_ack_rfc_9293_3_10_7_4() {
    let mut h = established();
    // Entirely before RCV.NXT (an old duplicate).
    h.deliver(seg(ack(), add(PEER_ISS, 1).wrapping_sub(10), add(ISS, 1)).payload(b"old"));
    let reply = h.expect_one();
    assert_seg(&reply, ack(), add(ISS, 1), add(PEER_ISS, 1), WINDOW);
    assert_eq!(h.state(), State::Established);
}

#[test]
fn ack_beyond_snd_nxt_in_established_draws_ack_rfc_9293_3_10_7_4() {
    let mut h = established();
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(ISS, 500)).payload(b"ignored"));
    let reply = h.expect_one();
    assert_seg(&reply, ack(), add(ISS, 1), add(PEER_ISS, 1), WINDOW);
    assert_eq!(h.conn.status().recv_queued, 0, "the segment was dropped");
}

#[test]
fn ack_below_snd_una_minus_max_snd_wnd_in_established_draws_ack_rfc_5961_5() {
    let mut h = established();
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(ISS, 1).wrapping_sub(100_000)).payload(b"x"));
    let reply = h.expect_one();
    assert_seg(&reply, ack(), add(ISS, 1), add(PEER_ISS, 1), WINDOW);
    assert_eq!(h.conn.status().recv_queued, 0);
}

#[test]
fn data_in_established_is_delivered_in_order_and_acked() {
    let mut h = established();
    h.deliver(seg(psh_ack(), add(PEER_ISS, 1), add(ISS, 1)).payload(b"hello"));
    let reply = h.expect_one();
    assert_seg(&reply, ack(), add(ISS, 1), add(PEER_ISS, 6), WINDOW - 5);
    assert!(h.events().contains(&Event::Readable));
    let mut buf = [0; 16];
    assert_eq!(h.conn.recv(&mut buf), Ok(5));
    assert_eq!(&buf[..5], b"hello");
    // Overlapping retransmission: only the new part is delivered (every byte once).
    h.deliver(seg(psh_ack(), add(PEER_ISS, 3), add(ISS, 1)).payload(b"llo world"));
    h.poll();
    assert_eq!(h.conn.recv(&mut buf), Ok(6));
    assert_eq!(&buf[..6], b" world");
}

// ---------------------------------------------------------------- FIN-WAIT-1

#[test]
fn ack_of_fin_in_fin_wait_1_moves_to_fin_wait_2_rfc_9293_3_10_7_4() {
    let mut h = fin_wait_1();
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(ISS, 2)));
    h.expect_nothing();
    assert_state_change(&mut h, State::FinWait1, State::FinWait2);
}

/// Found by the model test: a FIN+ACK whose text and FIN a zero window drops (MUST-66: its
/// ACK still counts) acknowledged our FIN, yet FIN-WAIT-1 stayed — step 5 had left the ACK of
/// our FIN to step 8, which never ran.
#[test]
fn ack_of_fin_on_a_fin_segment_a_zero_window_drops_moves_to_fin_wait_2_must_66() {
    // A half-close, so data may still arrive in FIN-WAIT-1 (a full close would reset).
    let mut h = established();
    h.conn.shutdown(h.now).unwrap();
    let fin = h.expect_one();
    assert_seg(&fin, fin_ack(), add(ISS, 1), add(PEER_ISS, 1), WINDOW);
    let _ = h.events();
    let fill = vec![7u8; RECV_BUFFER];
    h.deliver(seg(psh_ack(), add(PEER_ISS, 1), add(ISS, 1)).payload(&fill));
    let reply = h.expect_one();
    assert_seg(&reply, ack(), add(ISS, 2), add(PEER_ISS, 1 + RECV_BUFFER as u32), 0);
    let _ = h.events();
    h.deliver(seg(fin_ack(), add(PEER_ISS, 1 + RECV_BUFFER as u32), add(ISS, 2)).payload(b"more"));
    let reply = h.expect_one();
    // The text and FIN are not taken: RCV.NXT stays, the window is still zero.
    assert_seg(&reply, ack(), add(ISS, 2), add(PEER_ISS, 1 + RECV_BUFFER as u32), 0);
    assert_state_change(&mut h, State::FinWait1, State::FinWait2);
}

#[test]
fn fin_in_fin_wait_1_acks_and_moves_to_closing_rfc_9293_3_10_7_4() {
    let mut h = fin_wait_1();
    h.deliver(seg(fin_ack(), add(PEER_ISS, 1), add(ISS, 1)));
    let reply = h.expect_one();
    assert_seg(&reply, ack(), add(ISS, 2), add(PEER_ISS, 2), WINDOW);
    assert_state_change(&mut h, State::FinWait1, State::Closing);
}

#[test]
fn fin_acking_our_fin_in_fin_wait_1_moves_straight_to_time_wait_rfc_9293_3_10_7_4() {
    let mut h = fin_wait_1();
    h.deliver(seg(fin_ack(), add(PEER_ISS, 1), add(ISS, 2)));
    let reply = h.expect_one();
    assert_seg(&reply, ack(), add(ISS, 2), add(PEER_ISS, 2), WINDOW);
    let events = h.events();
    assert!(events.contains(&Event::StateChanged { from: State::FinWait1, to: State::TimeWait }));
    assert!(!events.iter().any(|e| matches!(e, Event::StateChanged { to: State::FinWait2, .. })));
}

#[test]
fn rst_in_fin_wait_1_closes_with_reset_rfc_9293_3_10_7_4() {
    for origin in ORIGINS {
        let mut h = fin_wait_1_via(origin);
        h.deliver(seg(rst(), add(PEER_ISS, 1), 0));
        h.expect_nothing();
        assert_closed_with(&mut h, State::FinWait1, CloseReason::Error(ConnectionError::Reset));
    }
}

#[test]
fn syn_in_fin_wait_1_draws_challenge_ack_rfc_5961_4() {
    for origin in ORIGINS {
        let mut h = fin_wait_1_via(origin);
        h.deliver(seg(syn(), add(PEER_ISS, 1), 0));
        assert_challenge_ack(&mut h, add(ISS, 2), add(PEER_ISS, 1));
        assert_eq!(h.state(), State::FinWait1);
    }
}

#[test]
fn abort_in_fin_wait_1_sends_rst_rfc_9293_3_10_5() {
    let mut h = fin_wait_1();
    h.conn.abort(h.now).unwrap();
    let reply = h.expect_one();
    assert_seg(&reply, rst(), add(ISS, 2), 0, 0);
    assert_closed_with(&mut h, State::FinWait1, CloseReason::Error(ConnectionError::Aborted));
}

#[test]
fn timeout_in_fin_wait_1_retransmits_fin_then_closes_after_r2_must_20() {
    let mut h = fin_wait_1();
    let (sent, took) = retransmit_until_closed(&mut h);
    assert!(!sent.is_empty());
    for segment in &sent {
        assert_seg(segment, fin_ack(), add(ISS, 1), add(PEER_ISS, 1), WINDOW);
    }
    assert!(took >= Duration::from_secs(100));
    assert_closed_with(&mut h, State::FinWait1, CloseReason::Error(ConnectionError::TimedOut));
}

#[test]
fn data_after_full_close_in_fin_wait_1_draws_rst_shld_3() {
    let mut h = fin_wait_1();
    h.deliver(seg(psh_ack(), add(PEER_ISS, 1), add(ISS, 1)).payload(b"unwanted"));
    let reply = h.expect_one();
    assert_seg(&reply, rst(), add(ISS, 2), 0, 0);
    assert_closed_with(&mut h, State::FinWait1, CloseReason::Error(ConnectionError::Aborted));
}

// ---------------------------------------------------------------- FIN-WAIT-2

#[test]
fn fin_in_fin_wait_2_acks_and_moves_to_time_wait_rfc_9293_3_10_7_4() {
    let mut h = fin_wait_2();
    h.deliver(seg(fin_ack(), add(PEER_ISS, 1), add(ISS, 2)));
    let reply = h.expect_one();
    assert_seg(&reply, ack(), add(ISS, 2), add(PEER_ISS, 2), WINDOW);
    let events = h.events();
    assert!(events.contains(&Event::StateChanged { from: State::FinWait2, to: State::TimeWait }));
    assert!(events.contains(&Event::PeerClosed));
}

#[test]
fn rst_in_fin_wait_2_closes_with_reset_rfc_9293_3_10_7_4() {
    for origin in ORIGINS {
        let mut h = fin_wait_2_via(origin);
        h.deliver(seg(rst(), add(PEER_ISS, 1), 0));
        h.expect_nothing();
        assert_closed_with(&mut h, State::FinWait2, CloseReason::Error(ConnectionError::Reset));
    }
}

#[test]
fn syn_in_fin_wait_2_draws_challenge_ack_rfc_5961_4() {
    for origin in ORIGINS {
        let mut h = fin_wait_2_via(origin);
        h.deliver(seg(syn(), add(PEER_ISS, 1), 0));
        assert_challenge_ack(&mut h, add(ISS, 2), add(PEER_ISS, 1));
        assert_eq!(h.state(), State::FinWait2);
    }
}

#[test]
fn abort_in_fin_wait_2_sends_rst_rfc_9293_3_10_5() {
    let mut h = fin_wait_2();
    h.conn.abort(h.now).unwrap();
    let reply = h.expect_one();
    assert_seg(&reply, rst(), add(ISS, 2), 0, 0);
    assert_closed_with(&mut h, State::FinWait2, CloseReason::Error(ConnectionError::Aborted));
}

#[test]
fn data_after_full_close_in_fin_wait_2_draws_rst_shld_3() {
    let mut h = fin_wait_2();
    h.deliver(seg(psh_ack(), add(PEER_ISS, 1), add(ISS, 2)).payload(b"unwanted"));
    let reply = h.expect_one();
    assert_seg(&reply, rst(), add(ISS, 2), 0, 0);
    assert_closed_with(&mut h, State::FinWait2, CloseReason::Error(ConnectionError::Aborted));
}

#[test]
fn fin_wait_2_timeout_after_full_close_closes_the_connection() {
    let mut h = fin_wait_2();
    let fired = h.jump_to_deadline();
    // Entered FIN-WAIT-2 at 1 s; the default FIN-WAIT-2 timeout is 60 s.
    assert_eq!(fired.as_micros(), 61_000_000);
    h.expect_nothing();
    assert_closed_with(&mut h, State::FinWait2, CloseReason::Error(ConnectionError::TimedOut));
}

#[test]
fn data_in_fin_wait_2_after_half_close_is_delivered_may_1() {
    let mut h = established();
    h.conn.shutdown(h.now).unwrap();
    h.expect_one();
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(ISS, 2)));
    assert_eq!(h.state(), State::FinWait2);
    assert_eq!(h.conn.poll_timeout(), None, "a half-closed connection waits for the FIN forever");
    h.deliver(seg(psh_ack(), add(PEER_ISS, 1), add(ISS, 2)).payload(b"still talking"));
    let reply = h.expect_one();
    assert_seg(&reply, ack(), add(ISS, 2), add(PEER_ISS, 14), WINDOW - 13);
    let mut buf = [0; 32];
    assert_eq!(h.conn.recv(&mut buf), Ok(13));
    assert_eq!(&buf[..13], b"still talking");
}

// ---------------------------------------------------------------- CLOSE-WAIT

#[test]
fn close_in_close_wait_sends_fin_and_moves_to_last_ack_rfc_9293_3_10_4() {
    let mut h = close_wait();
    h.conn.close(h.now).unwrap();
    let fin = h.expect_one();
    assert_seg(&fin, fin_ack(), add(ISS, 1), add(PEER_ISS, 2), WINDOW);
    assert_state_change(&mut h, State::CloseWait, State::LastAck);
}

#[test]
fn rst_in_close_wait_closes_with_reset_rfc_9293_3_10_7_4() {
    for origin in ORIGINS {
        let mut h = close_wait_via(origin);
        h.deliver(seg(rst(), add(PEER_ISS, 2), 0));
        h.expect_nothing();
        assert_closed_with(&mut h, State::CloseWait, CloseReason::Error(ConnectionError::Reset));
    }
}

#[test]
fn syn_in_close_wait_draws_challenge_ack_rfc_5961_4() {
    for origin in ORIGINS {
        let mut h = close_wait_via(origin);
        h.deliver(seg(syn(), add(PEER_ISS, 2), 0));
        assert_challenge_ack(&mut h, add(ISS, 1), add(PEER_ISS, 2));
        assert_eq!(h.state(), State::CloseWait);
    }
}

#[test]
fn abort_in_close_wait_sends_rst_rfc_9293_3_10_5() {
    let mut h = close_wait();
    h.conn.abort(h.now).unwrap();
    let reply = h.expect_one();
    assert_seg(&reply, rst(), add(ISS, 1), 0, 0);
    assert_closed_with(&mut h, State::CloseWait, CloseReason::Error(ConnectionError::Aborted));
}

#[test]
fn timeout_in_close_wait_with_unacked_data_closes_after_r2_must_20() {
    let mut h = close_wait();
    assert_eq!(h.conn.send(h.now, b"reply"), Ok(5));
    let first = h.expect_one();
    assert_seg(&first, psh_ack(), add(ISS, 1), add(PEER_ISS, 2), WINDOW);
    let (sent, _) = retransmit_until_closed(&mut h);
    assert!(sent.iter().all(|s| s == &first));
    assert_closed_with(&mut h, State::CloseWait, CloseReason::Error(ConnectionError::TimedOut));
}

#[test]
fn received_data_stays_readable_in_close_wait_until_read_rfc_9293_3_10_3() {
    let mut h = established();
    h.deliver(seg(psh_ack(), add(PEER_ISS, 1), add(ISS, 1)).payload(b"last words"));
    h.deliver(seg(fin_ack(), add(PEER_ISS, 11), add(ISS, 1)));
    let reply = h.expect_one();
    assert_seg(&reply, ack(), add(ISS, 1), add(PEER_ISS, 12), WINDOW - 10);
    assert_eq!(h.state(), State::CloseWait);
    let mut buf = [0; 32];
    assert_eq!(h.conn.recv(&mut buf), Ok(10));
    assert_eq!(&buf[..10], b"last words");
    assert_eq!(h.conn.recv(&mut buf), Err(CallError::Closing), "end of stream after the FIN");
}

// ---------------------------------------------------------------- CLOSING

#[test]
fn ack_of_fin_in_closing_moves_to_time_wait_rfc_9293_3_10_7_4() {
    let mut h = closing();
    h.deliver(seg(ack(), add(PEER_ISS, 2), add(ISS, 2)));
    h.expect_nothing();
    assert_state_change(&mut h, State::Closing, State::TimeWait);
}

#[test]
fn rst_in_closing_closes_with_reset_rfc_9293_3_10_7_4() {
    for origin in ORIGINS {
        let mut h = closing_via(origin);
        h.deliver(seg(rst(), add(PEER_ISS, 2), 0));
        h.expect_nothing();
        assert_closed_with(&mut h, State::Closing, CloseReason::Error(ConnectionError::Reset));
    }
}

#[test]
fn syn_in_closing_draws_challenge_ack_rfc_5961_4() {
    for origin in ORIGINS {
        let mut h = closing_via(origin);
        h.deliver(seg(syn(), add(PEER_ISS, 2), 0));
        assert_challenge_ack(&mut h, add(ISS, 2), add(PEER_ISS, 2));
        assert_eq!(h.state(), State::Closing);
    }
}

#[test]
fn abort_in_closing_closes_without_rst_rfc_9293_3_10_5() {
    let mut h = closing();
    h.conn.abort(h.now).unwrap();
    h.expect_nothing();
    assert_closed_with(&mut h, State::Closing, CloseReason::Error(ConnectionError::Aborted));
}

#[test]
fn timeout_in_closing_retransmits_fin_then_closes_after_r2_must_20() {
    let mut h = closing();
    let (sent, _) = retransmit_until_closed(&mut h);
    assert!(!sent.is_empty());
    for segment in &sent {
        assert_seg(segment, fin_ack(), add(ISS, 1), add(PEER_ISS, 2), WINDOW);
    }
    assert_closed_with(&mut h, State::Closing, CloseReason::Error(ConnectionError::TimedOut));
}

// ---------------------------------------------------------------- LAST-ACK

#[test]
fn ack_of_fin_in_last_ack_closes_orderly_must_12() {
    let mut h = last_ack();
    h.deliver(seg(ack(), add(PEER_ISS, 2), add(ISS, 2)));
    h.expect_nothing();
    assert_closed_with(&mut h, State::LastAck, CloseReason::Orderly);
    assert_eq!(h.conn.send(h.now, b"x"), Err(CallError::NotOpen));
}

#[test]
fn rst_in_last_ack_closes_with_reset_rfc_9293_3_10_7_4() {
    for origin in ORIGINS {
        let mut h = last_ack_via(origin);
        h.deliver(seg(rst(), add(PEER_ISS, 2), 0));
        h.expect_nothing();
        assert_closed_with(&mut h, State::LastAck, CloseReason::Error(ConnectionError::Reset));
    }
}

#[test]
fn syn_in_last_ack_draws_challenge_ack_rfc_5961_4() {
    for origin in ORIGINS {
        let mut h = last_ack_via(origin);
        h.deliver(seg(syn(), add(PEER_ISS, 2), 0));
        assert_challenge_ack(&mut h, add(ISS, 2), add(PEER_ISS, 2));
        assert_eq!(h.state(), State::LastAck);
    }
}

#[test]
fn abort_in_last_ack_closes_without_rst_rfc_9293_3_10_5() {
    let mut h = last_ack();
    h.conn.abort(h.now).unwrap();
    h.expect_nothing();
    assert_closed_with(&mut h, State::LastAck, CloseReason::Error(ConnectionError::Aborted));
}

#[test]
fn timeout_in_last_ack_retransmits_fin_then_closes_after_r2_must_20() {
    let mut h = last_ack();
    let (sent, _) = retransmit_until_closed(&mut h);
    assert!(!sent.is_empty());
    for segment in &sent {
        assert_seg(segment, fin_ack(), add(ISS, 1), add(PEER_ISS, 2), WINDOW);
    }
    assert_closed_with(&mut h, State::LastAck, CloseReason::Error(ConnectionError::TimedOut));
}

// ---------------------------------------------------------------- TIME-WAIT

#[test]
fn time_wait_timeout_after_2msl_closes_orderly_must_13() {
    let mut h = time_wait();
    let entered = h.now;
    let fired = h.jump_to_deadline();
    // Default MSL is 2 minutes (RFC 9293 §3.4.2): TIME-WAIT lasts 4 minutes.
    assert_eq!(fired.as_micros() - entered.as_micros(), 240_000_000);
    h.expect_nothing();
    assert_closed_with(&mut h, State::TimeWait, CloseReason::Orderly);
}

#[test]
fn retransmitted_fin_in_time_wait_is_acked_and_restarts_2msl_rfc_9293_3_10_7_4() {
    let mut h = time_wait();
    h.advance(Duration::from_secs(100));
    h.deliver(seg(fin_ack(), add(PEER_ISS, 1), add(ISS, 2)));
    let reply = h.expect_one();
    assert_seg(&reply, ack(), add(ISS, 2), add(PEER_ISS, 2), WINDOW);
    assert_eq!(h.state(), State::TimeWait);
    let deadline = h.conn.poll_timeout().unwrap();
    assert_eq!(deadline.as_micros() - h.now.as_micros(), 240_000_000, "2MSL restarted");
}

#[test]
fn rst_in_time_wait_is_ignored_rfc_1337() {
    for origin in ORIGINS {
        let mut h = time_wait_via(origin);
        h.deliver(seg(rst(), add(PEER_ISS, 2), 0));
        h.expect_nothing();
        assert_eq!(h.state(), State::TimeWait, "RFC 1337: no TIME-WAIT assassination");
        assert!(h.conn.poll_timeout().is_some());
    }
}

#[test]
fn syn_in_time_wait_draws_challenge_ack_rfc_5961_4() {
    for origin in ORIGINS {
        let mut h = time_wait_via(origin);
        h.deliver(seg(syn(), add(PEER_ISS, 2), 0));
        assert_challenge_ack(&mut h, add(ISS, 2), add(PEER_ISS, 2));
        assert_eq!(h.state(), State::TimeWait);
    }
}

#[test]
fn abort_in_time_wait_closes_without_rst_rfc_9293_3_10_5() {
    let mut h = time_wait();
    h.conn.abort(h.now).unwrap();
    h.expect_nothing();
    assert_closed_with(&mut h, State::TimeWait, CloseReason::Error(ConnectionError::Aborted));
}

// ---------------------------------------------------------------- API misuse per state

#[test]
fn close_twice_says_connection_closing_rfc_9293_3_10_4() {
    for state in [State::FinWait1, State::FinWait2, State::Closing, State::LastAck, State::TimeWait]
    {
        let mut h = reach(state, Origin::Active);
        assert_eq!(h.conn.close(h.now), Err(CallError::Closing), "{state}");
        assert_eq!(h.conn.send(h.now, b"x"), Err(CallError::Closing), "{state}");
        assert_eq!(h.state(), state);
    }
}

#[test]
fn open_on_an_open_connection_says_already_exists_rfc_9293_3_10_1() {
    for state in State::ALL.into_iter().filter(|s| *s != State::Closed) {
        let mut h = reach(state, Origin::Passive);
        assert_eq!(h.conn.open_passive(h.now), Err(CallError::AlreadyOpen), "{state}");
    }
}

#[test]
fn close_with_unread_data_resets_the_connection_shld_3() {
    let mut h = established();
    h.deliver(seg(psh_ack(), add(PEER_ISS, 1), add(ISS, 1)).payload(b"unread"));
    h.poll();
    h.events();
    h.conn.close(h.now).unwrap();
    let reply = h.expect_one();
    assert_seg(&reply, rst(), add(ISS, 1), 0, 0);
    assert_closed_with(&mut h, State::Established, CloseReason::Error(ConnectionError::Aborted));
}

// ---------------------------------------------------------------- the endpoint's edge

#[test]
fn cookie_ack_in_listen_moves_to_established_rfc_4987() {
    let now = tcp_proto::Instant::from_millis(1_000);
    let cookie = tcp_proto::CookieHandshake {
        iss: tcp_proto::SeqNum::new(ISS),
        irs: tcp_proto::SeqNum::new(PEER_ISS),
        peer_mss: Some(1460),
        peer_window_scale: None,
        peer_tsval: None,
        peer_sack_permitted: false,
    };
    let conn = tcp_proto::Connection::accept_cookie(config(), now, LOCAL, REMOTE, cookie);
    let mut h = Harness { conn, now, peer: REMOTE };
    let events = h.events();
    assert!(events.contains(&Event::StateChanged { from: State::Listen, to: State::Established }));
    assert!(events.contains(&Event::Connected));
    // The ACK that carried the cookie, with data: delivered and acknowledged.
    h.deliver(seg(psh_ack(), add(PEER_ISS, 1), add(ISS, 1)).payload(b"hi"));
    assert_seg(&h.expect_one(), ack(), add(ISS, 1), add(PEER_ISS, 3), WINDOW - 2);
    let status = h.conn.status();
    assert_eq!((status.snd_una.get(), status.snd_nxt.get()), (add(ISS, 1), add(ISS, 1)));
}

#[test]
fn icmp_hard_error_in_every_state_with_something_in_flight_closes_unreachable_shld_26() {
    for state in [
        State::SynSent,
        State::SynReceived,
        State::Established,
        State::FinWait1,
        State::CloseWait,
        State::Closing,
        State::LastAck,
    ] {
        for origin in ORIGINS {
            let mut h = reach(state, origin);
            if matches!(state, State::Established | State::CloseWait) {
                h.conn.send(h.now, b"in flight").unwrap();
                h.expect_one();
            }
            let una = h.conn.status().snd_una;
            let error = tcp_proto::IcmpError::Unreachable { code: 2 };
            assert!(h.conn.handle_icmp_error(h.now, error, una), "{state}");
            h.expect_nothing();
            assert_closed_with(&mut h, state, CloseReason::Error(ConnectionError::Unreachable));
        }
    }
}

#[test]
fn close_in_syn_sent_with_queued_data_is_reported_as_an_abort_rfc_9293_3_10_4() {
    let mut h = syn_sent();
    assert_eq!(h.conn.send(h.now, b"never sent"), Ok(10));
    h.conn.close(h.now).unwrap();
    h.expect_nothing();
    assert_closed_with(&mut h, State::SynSent, CloseReason::Error(ConnectionError::Aborted));
}

#[test]
fn rst_in_passive_syn_received_with_queued_data_refuses_rather_than_dropping_it_silently() {
    // Found by the `pair` fuzz target: back in LISTEN, data the application had handed to
    // `send` was gone and nobody was told.
    let mut h = syn_received_passive();
    assert_eq!(h.conn.send(h.now, b"queued"), Ok(6));
    h.deliver(seg(rst(), add(PEER_ISS, 1), 0));
    h.expect_nothing();
    assert_closed_with(&mut h, State::SynReceived, CloseReason::Error(ConnectionError::Refused));
}

#[test]
fn segments_at_the_right_window_edge_are_unacceptable_and_the_last_octet_is_not_rfc_9293_3_10_7_4()
{
    // §3.10.7.4 step 1: RCV.NXT =< SEG.SEQ < RCV.NXT+RCV.WND. A segment (with or without text)
    // starting exactly at the right edge is unacceptable and draws an ACK; one octet at the
    // last sequence number inside the window is acceptable (held out of order).
    let edge = add(PEER_ISS, 1 + u32::from(WINDOW));
    for payload in [&b""[..], b"x"] {
        let mut h = established();
        h.deliver(seg(ack(), edge, add(ISS, 1)).payload(payload));
        assert_seg(&h.expect_one(), ack(), add(ISS, 1), add(PEER_ISS, 1), WINDOW);
        assert_eq!(h.conn.counters().unacceptable_segments, 1, "{payload:?}");
    }
    let mut h = established();
    h.deliver(seg(ack(), edge.wrapping_sub(1), add(ISS, 1)).payload(b"y"));
    assert_seg(&h.expect_one(), ack(), add(ISS, 1), add(PEER_ISS, 1), WINDOW);
    assert_eq!(h.conn.counters().unacceptable_segments, 0);
}
