//! TIME-WAIT answered alike by a lone `Connection` and by an `Endpoint`'s compact record
//! (RFC 9293 §3.6.1, §3.10.7.4 in order; RFC 1337; RFC 5961; MUST-13): the same 4-tuple, the same
//! sequence numbers, the same segments in, and the exact replies compared.
//!
//! The endpoint listens on the harness's address and the scripted peer opens to it, so both
//! reach TIME-WAIT through the same passive open and active close; the listener is then
//! removed, so a SYN that could reopen the 4-tuple (MAY-2, `tests/endpoint.rs`) gets what a lone
//! connection gives it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::time::Duration;

use common::*;
use tcp_proto::wire::{Flags, Segment};
use tcp_proto::{Config, Connection, Endpoint, EndpointConfig, Instant, State};

/// A lone connection and an endpoint, both in TIME-WAIT for LOCAL <-> REMOTE.
struct Both {
    conn: Harness,
    ep: Endpoint,
}

/// Delivers `s` from REMOTE to the endpoint at `now` and returns everything it sends.
fn ep_deliver(ep: &mut Endpoint, now: Instant, s: &Seg) -> Vec<Sent> {
    ep.handle_segment(now, REMOTE.ip(), LOCAL.ip(), &s.emit(REMOTE));
    ep_output(ep, now)
}

fn ep_output(ep: &mut Endpoint, now: Instant) -> Vec<Sent> {
    let mut out = Vec::new();
    let mut buf = [0u8; 2048];
    while let Some(tx) = ep.poll_transmit(now, &mut buf).unwrap() {
        assert_eq!(tx.local, LOCAL);
        let segment = Segment::parse_checked(&buf[..tx.len], LOCAL.ip(), tx.remote.ip()).unwrap();
        out.push(Sent::new(&segment, tx.remote));
    }
    while ep.poll_event().is_some() {}
    out
}

fn conn_deliver(h: &mut Harness, now: Instant, s: &Seg) -> Vec<Sent> {
    h.now = now;
    h.deliver(s.clone());
    std::iter::from_fn(|| h.poll()).collect()
}

impl Both {
    /// Passive open (the peer's SYN offering `peer_wscale`), our CLOSE, the peer's ACK and FIN:
    /// both sides in TIME-WAIT at t = 1 s, the endpoint's as a record.
    fn new(config: Config, peer_wscale: Option<u8>) -> Self {
        Self::new_with(config, peer_wscale, false)
    }

    /// As [`Both::new`], with `timestamps` on every segment of the peer when asked (TSvals
    /// 100, 110, 120, 130; TSecr echoing our 1000): both sides then use the option, and
    /// TS.Recent is 130, the TSval of the peer's FIN.
    fn new_with(config: Config, peer_wscale: Option<u8>, timestamps: bool) -> Self {
        let stamp = |s: Seg, tsval: u32| if timestamps { s.ts(tsval, 1000) } else { s };
        let now = Instant::from_millis(1_000);
        let mut conn =
            Harness { conn: Connection::listen(config.clone(), now, LOCAL), now, peer: REMOTE };
        let mut ep = Endpoint::new(EndpointConfig::new(config, [9; 16]));
        ep.listen(LOCAL, 8).unwrap();
        let mut syn = seg(syn(), PEER_ISS, 0).mss(1460);
        syn.window_scale = peer_wscale;
        if timestamps {
            syn = syn.ts(100, 0);
        }
        let mut both = |s: Seg| {
            let (a, b) = (conn_deliver(&mut conn, now, &s), ep_deliver(&mut ep, now, &s));
            assert_eq!(a, b, "the two differ before TIME-WAIT on {s:?}");
            a
        };
        assert_eq!(both(syn)[0].flags, syn_ack());
        assert!(both(stamp(seg(ack(), add(PEER_ISS, 1), add(ISS, 1)), 110)).is_empty());
        let handle = ep.accept(LOCAL).unwrap().unwrap();
        conn.conn.close(now).unwrap();
        ep.close(now, handle).unwrap();
        let fin_conn: Vec<Sent> = std::iter::from_fn(|| conn.poll()).collect();
        assert_eq!(fin_conn, ep_output(&mut ep, now));
        assert_eq!(fin_conn[0].flags, fin_ack());
        let mut both = |s: Seg| {
            let (a, b) = (conn_deliver(&mut conn, now, &s), ep_deliver(&mut ep, now, &s));
            assert_eq!(a, b, "the two differ before TIME-WAIT on {s:?}");
            a
        };
        assert!(both(stamp(seg(ack(), add(PEER_ISS, 1), add(ISS, 2)), 120)).is_empty());
        let last = both(stamp(seg(fin_ack(), add(PEER_ISS, 1), add(ISS, 2)), 130));
        assert_eq!(
            (last[0].flags, last[0].seq, last[0].ack),
            (ack(), add(ISS, 2), add(PEER_ISS, 2))
        );
        assert_eq!(conn.state(), State::TimeWait);
        assert_eq!((ep.connection_count(), ep.time_wait_count()), (0, 1));
        // No listener: nothing can reopen the 4-tuple, as for the lone connection.
        ep.unlisten(LOCAL).unwrap();
        conn.events();
        Self { conn, ep }
    }

    /// Delivers `s` to both at `now`; asserts they answer identically and returns the answer.
    #[track_caller]
    fn deliver(&mut self, now: Instant, s: &Seg) -> Vec<Sent> {
        let from_conn = conn_deliver(&mut self.conn, now, s);
        let from_ep = ep_deliver(&mut self.ep, now, s);
        assert_eq!(from_conn, from_ep, "the connection and the record answer {s:?} differently");
        from_conn
    }

    /// Both still hold TIME-WAIT.
    #[track_caller]
    fn assert_in_time_wait(&self) {
        assert_eq!(self.conn.state(), State::TimeWait);
        assert_eq!(self.ep.time_wait_count(), 1);
    }
}

const SND_NXT: u32 = ISS.wrapping_add(2);
const RCV_NXT: u32 = PEER_ISS.wrapping_add(2);

/// Every check of §3.10.7.4 for TIME-WAIT, once each (one second apart, so the rate limit of
/// RFC 5961 §7 never hides an answer): the lone connection and the endpoint's record give the
/// same exact reply, and it is the one the RFC asks for.
#[test]
fn connection_and_record_answer_every_segment_alike_must_13() {
    let mut both = Both::new(config(), None);
    let the_ack = |window| vec![(ack(), SND_NXT, RCV_NXT, window)];
    let wnd = u32::from(WINDOW);
    let fin = add(PEER_ISS, 1);
    let cases: Vec<(&str, Seg, bool)> = vec![
        // Step 1: unacceptable (each window edge, a SYN left of the window, a SYN-ACK outside).
        ("ACK at the right edge", seg(ack(), add(RCV_NXT, wnd), SND_NXT), true),
        ("ACK left of the window", seg(ack(), add(RCV_NXT, u32::MAX), SND_NXT), true),
        (
            "data left of the window",
            seg(ack(), add(RCV_NXT, 0u32.wrapping_sub(5)), SND_NXT).payload(b"abc"),
            true,
        ),
        ("SYN left of the window", seg(syn(), add(RCV_NXT, 0u32.wrapping_sub(10)), 0), true),
        ("SYN-ACK outside the window", seg(syn_ack(), add(RCV_NXT, wnd + 100), SND_NXT), true),
        ("FIN left of the peer's", seg(fin_ack(), add(fin, 0u32.wrapping_sub(50)), SND_NXT), true),
        ("FIN without ACK ending at RCV.NXT", seg(Flags::FIN, fin, 0), true),
        ("RST outside the window", seg(rst(), add(RCV_NXT, wnd + 1), 0), false),
        // Step 2: RFC 1337.
        ("RST at RCV.NXT", seg(rst(), RCV_NXT, 0), false),
        ("RST in the window", seg(rst_ack(), add(RCV_NXT, 10), SND_NXT), false),
        // Step 4: RFC 5961 §4 challenge ACK.
        ("SYN at RCV.NXT", seg(syn(), RCV_NXT, 0), true),
        ("SYN-ACK in the window", seg(syn_ack(), add(RCV_NXT, 10), SND_NXT), true),
        ("SYN past RCV.NXT, no listener", seg(syn(), add(RCV_NXT, 5000), 0), true),
        // Step 5: no ACK bit; an ACK out of range (RFC 5961 §5).
        ("FIN without ACK at RCV.NXT", seg(Flags::FIN, RCV_NXT, 0), false),
        ("data without ACK", seg(Flags::PSH, RCV_NXT, 0).payload(b"x"), false),
        ("ACK of unsent data", seg(ack(), RCV_NXT, add(SND_NXT, 1)), true),
        (
            "ACK older than a window",
            seg(ack(), RCV_NXT, add(SND_NXT, 0u32.wrapping_sub(65_536))),
            true,
        ),
        // Acceptable, with an acceptable ACK: TIME-WAIT has no use for it.
        ("ACK in the window", seg(ack(), add(RCV_NXT, 100), SND_NXT), false),
        ("data in the window", seg(psh_ack(), RCV_NXT, SND_NXT).payload(b"late"), false),
        ("FIN at RCV.NXT", seg(fin_ack(), RCV_NXT, SND_NXT), false),
        // The peer's FIN again: ACK (and 2MSL restarts, see the next test).
        ("the peer's FIN again", seg(fin_ack(), fin, SND_NXT), true),
        (
            "the peer's FIN, acking before our FIN",
            seg(fin_ack(), fin, add(SND_NXT, u32::MAX)),
            true,
        ),
    ];
    let mut now = Instant::from_millis(1_000);
    for (name, s, acked) in cases {
        now += Duration::from_secs(1);
        let replies = both.deliver(now, &s);
        let got: Vec<_> = replies.iter().map(|r| (r.flags, r.seq, r.ack, r.window)).collect();
        let want = if acked { the_ack(WINDOW) } else { vec![] };
        assert_eq!(got, want, "{name}");
        both.assert_in_time_wait();
    }
}

/// Only the peer's own FIN — ending at RCV.NXT, with an acceptable ACK — restarts 2×MSL. A
/// forged FIN every 15 s neither keeps the 4-tuple in TIME-WAIT past its 2×MSL (the record
/// used to restart for any FIN) nor draws more ACKs than the RFC 5961 §7 limit (10 a second).
#[test]
fn bogus_fin_neither_restarts_2msl_nor_draws_unlimited_acks_must_13() {
    let mut both = Both::new(config(), None);
    let entered = Instant::from_millis(1_000);
    let expiry = entered + Duration::from_secs(240);
    assert_eq!(both.conn.conn.poll_timeout(), Some(expiry));
    let bogus = [
        seg(fin_ack(), add(RCV_NXT, 7), SND_NXT),
        seg(fin_ack(), add(PEER_ISS, 0u32.wrapping_sub(40)), SND_NXT),
        seg(Flags::FIN, add(PEER_ISS, 1), 0),
        seg(fin_ack(), add(PEER_ISS, 1), add(SND_NXT, 1)),
    ];
    let mut now = entered;
    let mut answered = 0;
    while now + Duration::from_secs(15) < expiry {
        now += Duration::from_secs(15);
        for s in &bogus {
            answered += both.deliver(now, s).len();
        }
        assert_eq!(both.conn.conn.poll_timeout(), Some(expiry), "2MSL restarted at {now}");
        both.assert_in_time_wait();
    }
    // Three of the four forged FINs are unacceptable and get the step-1 ACK, never a restart.
    assert_eq!(answered, 3 * 15);
    // A burst: ten ACKs in the second, the rest suppressed (per 4-tuple, never host-wide).
    now += Duration::from_secs(1);
    let burst: usize = (0..25).map(|_| both.deliver(now, &bogus[1]).len()).sum();
    assert_eq!(burst, 10);
    assert_eq!(both.conn.conn.counters().challenge_acks_suppressed, 15);
    assert_eq!(both.ep.counters().time_wait_acks_suppressed, 15);
    // 2×MSL after entering, both end.
    both.ep.handle_timeout(expiry);
    assert_eq!(both.ep.time_wait_count(), 0);
    assert_eq!(both.conn.jump_to_deadline(), expiry);
    assert_eq!(both.conn.state(), State::Closed);
}

/// The peer's real FIN restarts 2×MSL for both, so both outlive the first expiry.
#[test]
fn peers_fin_again_restarts_2msl_for_connection_and_record_must_13() {
    let mut both = Both::new(config(), None);
    let again = Instant::from_millis(1_000) + Duration::from_secs(200);
    let replies = both.deliver(again, &seg(fin_ack(), add(PEER_ISS, 1), SND_NXT));
    assert_eq!(replies.len(), 1);
    let first_expiry = Instant::from_millis(1_000) + Duration::from_secs(240);
    both.ep.handle_timeout(first_expiry);
    both.conn.now = first_expiry;
    both.conn.fire_timers();
    both.assert_in_time_wait();
    let restarted = again + Duration::from_secs(240);
    assert_eq!(both.conn.conn.poll_timeout(), Some(restarted));
    both.ep.handle_timeout(Instant::from_micros(restarted.as_micros() - 1));
    assert_eq!(both.ep.time_wait_count(), 1);
    both.ep.handle_timeout(restarted);
    assert_eq!(both.ep.time_wait_count(), 0);
}

/// A FIN without the ACK bit is dropped (fifth check) when it is acceptable, and only gets the
/// step-1 ACK when it is not; neither restarts 2×MSL. The record used to ACK it and restart.
#[test]
fn fin_without_ack_in_time_wait_is_dropped_must_13() {
    let mut both = Both::new(config(), None);
    let expiry = Instant::from_millis(1_000) + Duration::from_secs(240);
    let now = Instant::from_millis(1_000) + Duration::from_secs(100);
    assert!(both.deliver(now, &seg(Flags::FIN, RCV_NXT, 0)).is_empty());
    assert!(both.deliver(now, &seg(Flags::FIN | Flags::PSH, RCV_NXT, 0).payload(b"x")).is_empty());
    let replies = both.deliver(now, &seg(Flags::FIN, add(PEER_ISS, 1), 0));
    assert_eq!(replies.len(), 1);
    assert_seg(&replies[0], ack(), SND_NXT, RCV_NXT, WINDOW);
    assert_eq!(both.conn.conn.poll_timeout(), Some(expiry));
    both.ep.handle_timeout(expiry);
    assert_eq!(both.ep.time_wait_count(), 0);
}

/// With window scaling negotiated, the record's ACKs carry the window field the connection's
/// do — the receive buffer (256 KiB) shifted right by our scale (3) — not the unscaled window
/// clamped to 65 535, which the peer would read as 512 KiB.
#[test]
fn time_wait_record_acks_carry_the_scaled_window_must_13() {
    let mut config = config();
    config.recv_buffer = 256 * 1024;
    let mut both = Both::new(config, Some(2));
    let scaled = ((256 * 1024) >> 3) as u16;
    let now = Instant::from_millis(2_000);
    let replies = both.deliver(now, &seg(fin_ack(), add(PEER_ISS, 1), SND_NXT));
    assert_eq!(replies.len(), 1);
    assert_seg(&replies[0], ack(), SND_NXT, RCV_NXT, scaled);
    // And the acceptability test counts the window scaled: the right edge is 256 KiB away.
    assert!(both.deliver(now, &seg(ack(), add(RCV_NXT, 256 * 1024 - 1), SND_NXT)).is_empty());
    let replies = both.deliver(now, &seg(ack(), add(RCV_NXT, 256 * 1024), SND_NXT));
    assert_seg(&replies[0], ack(), SND_NXT, RCV_NXT, scaled);
}

/// A connection that used timestamps keeps TS.Recent in TIME-WAIT, and the lone connection
/// and the endpoint's record (which keeps it in the 40 bytes) judge alike: their ACKs carry
/// the option echoing TS.Recent; PAWS answers an old TSval with the ACK (RFC 7323 §5.3 R1);
/// a segment without the option is dropped (§3.2); the peer's FIN again moves TS.Recent to
/// its TSval (§4.3), an unacceptable segment does not.
#[test]
fn time_wait_keeps_ts_recent_and_judges_by_it_rfc_7323_5_3() {
    let mut both = Both::new_with(config(), None, true);
    let second = |n: u64| Instant::from_millis(1_000 * n);
    let answer = |sent: &[Sent]| -> Vec<_> {
        sent.iter().map(|s| (s.flags, s.seq, s.ack, s.options.timestamps)).collect()
    };
    let the_ack = |tsval: u32, tsecr: u32| {
        vec![(ack(), SND_NXT, RCV_NXT, Some(tcp_proto::wire::Timestamps { tsval, tsecr }))]
    };
    // An acceptable ACK with an older TSval: PAWS, the ACK echoing TS.Recent 130.
    let old = seg(ack(), RCV_NXT, SND_NXT).ts(129, 1000);
    assert_eq!(answer(&both.deliver(second(2), &old)), the_ack(2000, 130));
    // The same without the option: dropped silently.
    assert!(both.deliver(second(3), &seg(ack(), RCV_NXT, SND_NXT)).is_empty());
    // The peer's FIN again, with a newer TSval: acknowledged, echoing it.
    let fin = seg(fin_ack(), add(PEER_ISS, 1), SND_NXT).ts(140, 1000);
    assert_eq!(answer(&both.deliver(second(4), &fin)), the_ack(4000, 140));
    // An unacceptable segment with a newer TSval draws the ACK but moves nothing.
    let far = seg(ack(), add(RCV_NXT, 100_000), SND_NXT).ts(150, 1000);
    assert_eq!(answer(&both.deliver(second(5), &far)), the_ack(5000, 140));
    both.assert_in_time_wait();
}
