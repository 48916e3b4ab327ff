//! Data transfer on one connection, with exact segments: out-of-order reassembly (SHLD-31) and
//! the duplicate ACKs that go with it, FIN beyond a hole, bounded buffers under a flood, and
//! delayed ACK timing (SHLD-18, SHLD-19, MUST-40).

mod common;

use std::time::Duration;

use common::*;
use tcp_proto::{Config, Event, State};

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

fn read_all(h: &mut Harness) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    while let Ok(n @ 1..) = h.conn.recv(&mut buf) {
        out.extend_from_slice(&buf[..n]);
    }
    out
}

#[test]
fn out_of_order_segments_are_held_and_delivered_when_the_hole_fills_shld_31() {
    let mut h = established();
    let bytes = data(300);
    // Segments 2 and 3 arrive first: each draws an immediate duplicate ACK for the hole.
    h.deliver(seg(ack(), add(PEER_ISS, 101), add(ISS, 1)).payload(&bytes[100..200]));
    assert_seg(&h.expect_one(), ack(), add(ISS, 1), add(PEER_ISS, 1), WINDOW);
    h.deliver(seg(ack(), add(PEER_ISS, 201), add(ISS, 1)).payload(&bytes[200..300]));
    assert_seg(&h.expect_one(), ack(), add(ISS, 1), add(PEER_ISS, 1), WINDOW);
    assert_eq!(h.conn.status().recv_queued, 0, "nothing readable while the hole is open");
    assert!(!h.events().contains(&Event::Readable));
    // The hole fills: everything is delivered and acknowledged at once.
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(ISS, 1)).payload(&bytes[..100]));
    assert_seg(&h.expect_one(), ack(), add(ISS, 1), add(PEER_ISS, 301), WINDOW - 300);
    assert!(h.events().contains(&Event::Readable));
    assert_eq!(read_all(&mut h), bytes);
}

#[test]
fn overlapping_out_of_order_segments_deliver_every_octet_once() {
    let mut h = established();
    let bytes = data(500);
    for (start, end) in [(300, 450), (100, 200), (150, 320), (440, 500), (0, 120)] {
        h.deliver(
            seg(ack(), add(PEER_ISS, 1 + start), add(ISS, 1)).payload(&bytes[start as usize..end]),
        );
        while h.poll().is_some() {}
    }
    assert_eq!(h.conn.status().rcv_nxt.get(), add(PEER_ISS, 501));
    assert_eq!(read_all(&mut h), bytes);
}

#[test]
fn fin_beyond_a_hole_takes_effect_when_the_hole_fills() {
    let mut h = established();
    h.deliver(seg(fin_ack(), add(PEER_ISS, 6), add(ISS, 1)).payload(b"world"));
    assert_seg(&h.expect_one(), ack(), add(ISS, 1), add(PEER_ISS, 1), WINDOW);
    assert_eq!(h.state(), State::Established);
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(ISS, 1)).payload(b"hello"));
    assert_seg(&h.expect_one(), ack(), add(ISS, 1), add(PEER_ISS, 12), WINDOW - 10);
    assert_eq!(h.state(), State::CloseWait);
    assert_eq!(read_all(&mut h), b"helloworld");
}

#[test]
fn out_of_order_flood_stays_within_the_buffer_and_the_range_limit() {
    let mut h = established();
    // Thirty disjoint one-octet islands, then junk far beyond the window.
    for i in 0..30u32 {
        h.deliver(seg(ack(), add(PEER_ISS, 1 + 2 + 4 * i), add(ISS, 1)).payload(b"x"));
        while h.poll().is_some() {}
    }
    for i in 0..30u32 {
        h.deliver(seg(ack(), add(PEER_ISS, 1 + 5000 + 100 * i), add(ISS, 1)).payload(&data(1000)));
        while h.poll().is_some() {}
    }
    let status = h.conn.status();
    assert_eq!(status.recv_queued, 0);
    assert_eq!(status.rcv_wnd, u32::from(WINDOW), "parked data does not shrink the window");
    assert_eq!(h.conn.counters().out_of_order_dropped, 22, "8 ranges kept, 22 refused");
    // The sender then fills the front: only the first kept island joins.
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(ISS, 1)).payload(b"ab"));
    assert_seg(&h.expect_one(), ack(), add(ISS, 1), add(PEER_ISS, 4), WINDOW - 3);
}

/// A wide window on a path that reorders holds a hole before every other full-sized segment:
/// a 256 KiB buffer keeps them all (its range limit is 256, the metadata 1/64 of the buffer),
/// SACKs the newest, and delivers everything when the holes fill. (With a fixed eight ranges,
/// 77 of these 85 segments were dropped and had to be sent again.)
#[test]
fn many_holes_in_a_wide_window_are_all_kept_shld_31_rfc_2018_4() {
    const MSS: usize = 1460;
    let mut config = config();
    config.recv_buffer = 256 * 1024;
    let mut h = Harness::connect_with(config);
    h.expect_one();
    let mut syn_ack = seg(syn_ack(), PEER_ISS, add(ISS, 1)).mss(1460).sack_permitted();
    syn_ack.window_scale = Some(0);
    h.deliver(syn_ack);
    h.expect_one();
    assert!(h.conn.status().rcv_wnd >= 256 * 1024 - 1, "scaled: the whole buffer is offered");
    let bytes = data(170 * MSS);
    let piece = |i: usize| &bytes[i * MSS..(i + 1) * MSS];
    let at = |i: usize| add(PEER_ISS, 1 + (i * MSS) as u32);
    // Segments 1, 3, 5, … 169 arrive; each leaves a hole before it.
    for i in (1..170).step_by(2) {
        h.deliver(seg(ack(), at(i), add(ISS, 1)).payload(piece(i)));
        let reply = h.expect_one();
        assert_eq!(reply.ack, add(PEER_ISS, 1));
        assert_eq!(sack_blocks(&reply)[0], (at(i), at(i + 1)), "the newest leads");
    }
    assert_eq!(h.conn.counters().out_of_order_dropped, 0);
    // The holes fill: each joins its neighbours, and the last delivers everything.
    for i in (0..170).step_by(2) {
        h.deliver(seg(ack(), at(i), add(ISS, 1)).payload(piece(i)));
        while h.poll().is_some() {}
    }
    assert_eq!(h.conn.status().rcv_nxt.get(), at(170));
    assert_eq!(read_all(&mut h), bytes);
}

fn delayed_config() -> Config {
    let mut config = config();
    config.delayed_ack = Some(Duration::from_millis(40));
    config
}

fn established_delayed() -> Harness {
    let mut h = Harness::connect_with(delayed_config());
    h.expect_one();
    h.deliver(seg(syn_ack(), PEER_ISS, add(ISS, 1)).mss(1460));
    h.expect_one();
    h.events();
    h
}

#[test]
fn single_segment_is_acked_after_the_delayed_ack_time_shld_18() {
    let mut h = established_delayed();
    h.deliver(seg(psh_ack(), add(PEER_ISS, 1), add(ISS, 1)).payload(b"ping"));
    h.expect_nothing();
    let fired = h.jump_to_deadline();
    assert_eq!(fired.as_micros() - 1_000_000, 40_000);
    assert_seg(&h.expect_one(), ack(), add(ISS, 1), add(PEER_ISS, 5), WINDOW - 4);
    assert_eq!(h.conn.poll_timeout(), None);
}

#[test]
fn second_full_sized_segment_is_acked_at_once_shld_19() {
    let mut h = established_delayed();
    // Our MSS is 1460; the window is 4096, so two full segments fit.
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(ISS, 1)).payload(&data(1460)));
    h.expect_nothing();
    h.deliver(seg(ack(), add(PEER_ISS, 1461), add(ISS, 1)).payload(&data(1460)));
    assert_seg(&h.expect_one(), ack(), add(ISS, 1), add(PEER_ISS, 2921), WINDOW - 2920);
}

#[test]
fn data_sent_while_an_ack_is_delayed_carries_it() {
    let mut h = established_delayed();
    h.deliver(seg(psh_ack(), add(PEER_ISS, 1), add(ISS, 1)).payload(b"question"));
    h.expect_nothing();
    h.advance(Duration::from_millis(5));
    h.conn.send(h.now, b"answer").unwrap();
    let reply = h.expect_one();
    assert_seg(&reply, psh_ack(), add(ISS, 1), add(PEER_ISS, 9), WINDOW - 8);
    assert_eq!(reply.payload, b"answer");
    // The delayed-ACK timer is gone with it.
    assert_eq!(h.conn.poll_timeout(), Some(h.now + Duration::from_secs(1)), "only the RTO");
}

/// A configured delay of 2 s is clamped below half a second: MUST-40 says *less than* 0.5 s.
#[test]
fn delayed_ack_of_two_seconds_comes_before_half_a_second_must_40() {
    let mut config = delayed_config();
    config.delayed_ack = Some(Duration::from_secs(2));
    let mut h = Harness::connect_with(config);
    h.expect_one();
    h.deliver(seg(syn_ack(), PEER_ISS, add(ISS, 1)));
    h.expect_one();
    let arrived = h.now;
    h.deliver(seg(psh_ack(), add(PEER_ISS, 1), add(ISS, 1)).payload(b"x"));
    h.expect_nothing();
    let fired = h.jump_to_deadline();
    let delay = fired.as_micros() - arrived.as_micros();
    assert!(delay < 500_000, "MUST-40: the ACK came {delay} µs after the data");
    assert_eq!(delay, 490_000, "the clamp (Config::delayed_ack)");
    assert_seg(&h.expect_one(), ack(), add(ISS, 1), add(PEER_ISS, 2), WINDOW - 1);
}

#[test]
fn out_of_order_data_is_acked_at_once_even_with_delayed_ack() {
    let mut h = established_delayed();
    h.deliver(seg(ack(), add(PEER_ISS, 11), add(ISS, 1)).payload(b"later"));
    assert_seg(&h.expect_one(), ack(), add(ISS, 1), add(PEER_ISS, 1), WINDOW);
}

// ------------------------------------------------------------------ keep-alive (§3.8.4)

fn keepalive_config() -> Config {
    let mut config = config();
    config.keepalive = Some(tcp_proto::KeepAlive {
        idle: Duration::from_secs(10),
        interval: Duration::from_secs(1),
        probes: 3,
    });
    config
}

fn established_with(config: Config) -> Harness {
    let mut h = Harness::connect_with(config);
    h.expect_one();
    h.deliver(seg(syn_ack(), PEER_ISS, add(ISS, 1)).mss(1460));
    h.expect_one();
    h.events();
    h
}

#[test]
fn keepalive_is_off_by_default_and_defaults_to_two_hours_must_25_must_28() {
    let h = established();
    assert_eq!(h.conn.poll_timeout(), None, "an idle connection arms no timer");
    assert_eq!(tcp_proto::KeepAlive::default().idle, Duration::from_secs(7200));
}

#[test]
fn keepalive_probes_an_idle_connection_with_no_data_must_24_shld_12() {
    let mut h = established_with(keepalive_config());
    let start = h.now.as_micros();
    let fired = h.jump_to_deadline();
    assert_eq!(fired.as_micros() - start, 10_000_000);
    let probe = h.expect_one();
    assert_seg(&probe, ack(), ISS, add(PEER_ISS, 1), WINDOW);
    assert!(probe.payload.is_empty(), "SHLD-12: no data");
    // The peer answers: idleness counts again from now.
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(ISS, 1)));
    h.expect_nothing();
    let next = h.conn.poll_timeout().unwrap();
    assert_eq!(next.as_micros() - h.now.as_micros(), 10_000_000);
}

#[test]
fn keepalive_gives_up_only_after_several_unanswered_probes_must_29() {
    let mut h = established_with(keepalive_config());
    let start = h.now.as_micros();
    let mut probes = 0;
    while h.state() == State::Established {
        h.jump_to_deadline();
        while h.poll().is_some() {
            probes += 1;
        }
    }
    assert_eq!(probes, 3);
    assert_eq!(h.now.as_micros() - start, 13_000_000, "10 s idle, probes at 10, 11, 12 s");
    assert_eq!(
        h.conn.close_reason(),
        Some(tcp_proto::CloseReason::Error(tcp_proto::ConnectionError::TimedOut))
    );
}

#[test]
fn keepalive_waits_while_data_is_outstanding_must_26() {
    let mut h = established_with(keepalive_config());
    h.conn.send(h.now, b"unacked").unwrap();
    h.expect_one();
    // For a minute only retransmissions go out: no keep-alive while data is in flight.
    let start = h.now.as_micros();
    while h.now.as_micros() - start < 60_000_000 {
        h.jump_to_deadline();
        while let Some(sent) = h.poll() {
            assert_eq!(sent.payload, b"unacked", "only retransmissions, never a probe");
        }
    }
}

#[test]
fn keepalive_can_be_switched_on_later_per_connection_must_24() {
    let mut h = established();
    h.conn.set_keepalive(h.now, keepalive_config().keepalive);
    assert_eq!(h.conn.poll_timeout().map(|t| t.as_micros() - h.now.as_micros()), Some(10_000_000));
    h.conn.set_keepalive(h.now, None);
    assert_eq!(h.conn.poll_timeout(), None);
}
