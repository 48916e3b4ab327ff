//! Zero windows between two tcp-proto peers and against a scripted closed receiver (RFC 9293
//! §3.8.6.1, MUST-35/36/37, SHLD-17, SHLD-29/30): probing is not congestion, an answered probe
//! keeps the connection open indefinitely, and a reopened window restarts data at once.

mod common;

use std::time::Duration;

use common::*;
use tcp_proto::testing::sim::{Link, LinkConfig, Sim};
use tcp_proto::testing::{addr_a, addr_b};
use tcp_proto::{CloseReason, Config, Connection, Event, Instant, SeqNum, State};

/// One-way delay of the simulated path: the round trip is twice this.
const ONE_WAY: Duration = Duration::from_millis(50);

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

fn read_all(conn: &mut Connection) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = conn.recv(&mut buf) {
        out.extend_from_slice(&buf[..n]);
    }
    out
}

/// A (sender, 256 KiB send buffer) connected to B (16 KiB receive buffer) over a 100 ms RTT.
fn sender_and_slow_reader() -> Sim {
    let mut a_config = Config::with_fixed_isn(SeqNum::new(1_000));
    a_config.send_buffer = 256 * 1024;
    let mut b_config = Config::with_fixed_isn(SeqNum::new(9_000_000));
    b_config.recv_buffer = 16 * 1024;
    let start = Instant::from_millis(1_000);
    let a = Connection::connect(a_config, start, addr_a(40_000), addr_b(80)).unwrap();
    let b = Connection::listen(b_config, start, addr_b(80));
    let link = LinkConfig { delay: ONE_WAY, ..LinkConfig::perfect() };
    let mut sim = Sim::new(a, b, Link::new(link.clone(), 1), Link::new(link, 2), start);
    assert!(sim.run_until(Duration::from_secs(5), |sim| sim.a.state() == State::Established
        && sim.b.state() == State::Established));
    sim
}

#[test]
fn reopened_window_after_five_minutes_restarts_data_within_one_round_trip_must_36_must_37_shld_17()
{
    let mut sim = sender_and_slow_reader();
    let data = pattern(200 * 1024);
    let queued = sim.a.send(sim.now, &data).unwrap();
    assert_eq!(queued, data.len());
    // B does not read for five minutes: its window closes and A probes it.
    let stalled_from = sim.now;
    assert!(!sim.run_until(Duration::from_secs(300), |_| false));
    assert_eq!(sim.b.status().rcv_wnd, 0, "B's buffer is full");
    assert_eq!(sim.a.state(), State::Established, "{}", sim.trace());
    let probe_events: Vec<&Event> = sim.events[0]
        .iter()
        .filter(|event| matches!(event, Event::RetransmissionThreshold | Event::Closed(_)))
        .collect();
    assert!(probe_events.is_empty(), "answered probes are no failure (MUST-37): {probe_events:?}");
    let status = sim.a.status();
    assert!(
        status.cwnd >= 10 * u32::from(status.effective_mss),
        "probing is not congestion: cwnd {} after {:?} of zero window",
        status.cwnd,
        sim.now.saturating_duration_since(stalled_from)
    );

    // B reads everything: its window update goes out, and A's data must follow within one RTT.
    let mut received = read_all(&mut sim.b);
    let before = received.len();
    let update_at = sim.now;
    assert!(
        sim.run_until(Duration::from_secs(10), |sim| sim.b.status().recv_queued > 0),
        "no data after the window update:\n{}",
        sim.trace()
    );
    let waited = sim.now.saturating_duration_since(update_at);
    assert!(waited <= 2 * ONE_WAY, "first new data {waited:?} after the window update");

    // The rest flows at the speed of the reader, no timer involved.
    assert!(sim.run_until(Duration::from_secs(60), |sim| {
        received.extend(read_all(&mut sim.b));
        received.len() == data.len()
    }));
    assert!(before > 0);
    assert_eq!(received, data, "every octet, in order, once");
    let elapsed = sim.now.saturating_duration_since(update_at);
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?} after the update");
    assert!(
        !sim.events[0].iter().any(|event| matches!(event, Event::Closed(CloseReason::Error(_))))
    );
}

// ------------------------------------------------------- a scripted closed receiver

fn drain(h: &mut Harness) -> Vec<Sent> {
    std::iter::from_fn(|| h.poll()).collect()
}

/// ESTABLISHED (active open, peer MSS 1460) with the peer's window as given.
fn established_with_window(window: u16) -> Harness {
    let mut h = syn_sent();
    h.deliver(seg(syn_ack(), PEER_ISS, add(ISS, 1)).mss(1460).window(window));
    assert_seg(&h.expect_one(), ack(), add(ISS, 1), add(PEER_ISS, 1), WINDOW);
    h.events();
    h
}

/// The peer answers like a closed receiver (tcp-proto, Linux): it drops the probe octet and
/// acknowledges what it holds, window still zero.
fn answer_closed(h: &mut Harness, holds_up_to: u32) {
    h.deliver(seg(ack(), add(PEER_ISS, 1), holds_up_to).window(0));
    let drawn = drain(h);
    assert!(drawn.is_empty(), "an answer to a probe draws nothing: {drawn:?}");
}

#[test]
fn probes_answered_by_a_closed_receiver_neither_time_out_nor_shrink_cwnd_must_37_shld_17() {
    let mut h = established_with_window(0);
    h.conn.send(h.now, b"patience").unwrap();
    h.expect_nothing();
    let cwnd = h.conn.status().cwnd;
    let rto = h.conn.status().rto;
    let start = h.now;
    let mut probes = 0;
    // An hour of probing; the receiver never takes the probe octet.
    while h.now.saturating_duration_since(start) < Duration::from_secs(3600) {
        h.jump_to_deadline();
        for probe in drain(&mut h) {
            // MUST-36: each probe is the first unacknowledged octet, sent again.
            assert_seg(&probe, ack(), add(ISS, 1), add(PEER_ISS, 1), WINDOW);
            assert_eq!(probe.payload, b"p");
            probes += 1;
        }
        answer_closed(&mut h, add(ISS, 1));
    }
    assert!(probes > 30, "probes keep going at most every 120 s: {probes}");
    assert_eq!(h.state(), State::Established);
    let events = h.events();
    assert!(!events.contains(&Event::RetransmissionThreshold), "no R1 report: {events:?}");
    let status = h.conn.status();
    assert_eq!(status.cwnd, cwnd, "probing is not congestion");
    assert_eq!(status.rto, rto, "probes back off their own interval, not the RTO");
    assert_eq!(status.consecutive_retransmissions, 0);

    // The window opens with the probe octet still dropped: all eight octets go at once, the
    // first again, without waiting for any timer.
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(ISS, 1)).window(8192));
    let sent = drain(&mut h);
    let resent: Vec<(u32, &[u8])> = sent.iter().map(|s| (s.seq, s.payload.as_slice())).collect();
    assert_eq!(resent, [(add(ISS, 1), &b"p"[..]), (add(ISS, 2), &b"atience"[..])]);
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(ISS, 9)).window(8192));
    assert_eq!(h.conn.status().snd_una.get(), add(ISS, 9));
    h.expect_nothing();
}

#[test]
fn one_lost_probe_answer_after_r2_does_not_abort_must_37_shld_17() {
    // 11 probes answered over more than R2 (100 s), then one answer lost: the connection must
    // stay (it aborted at the 12th probe before, at 729 s).
    let mut h = established_with_window(0);
    h.conn.send(h.now, b"patience").unwrap();
    h.expect_nothing();
    let start = h.now;
    for _ in 0..11 {
        h.jump_to_deadline();
        assert_eq!(drain(&mut h).len(), 1);
        answer_closed(&mut h, add(ISS, 1));
    }
    assert!(h.now.saturating_duration_since(start) > Duration::from_secs(100));
    // The 12th probe's answer is lost; the 13th is answered again, and so on.
    h.jump_to_deadline();
    assert_eq!(drain(&mut h).len(), 1);
    for _ in 0..5 {
        h.jump_to_deadline();
        assert_eq!(drain(&mut h).len(), 1);
        assert_eq!(h.state(), State::Established, "a single lost answer is no dead peer");
        answer_closed(&mut h, add(ISS, 1));
    }
    assert!(!h.events().iter().any(|event| matches!(event, Event::Closed(_))));
}

#[test]
fn unanswered_probes_end_the_connection_after_r1_probes_and_r2_must_20() {
    let mut h = established_with_window(0);
    h.conn.send(h.now, b"patience").unwrap();
    h.expect_nothing();
    // The peer answers the first probe, then goes silent for good.
    h.jump_to_deadline();
    assert_eq!(drain(&mut h).len(), 1);
    answer_closed(&mut h, add(ISS, 1));
    let silent_from = h.now;
    let mut unanswered = 0;
    while h.state() == State::Established {
        h.jump_to_deadline();
        unanswered += drain(&mut h).len();
    }
    let gave_up_after = h.now.saturating_duration_since(silent_from);
    assert!(gave_up_after >= Duration::from_secs(100), "R2 first: {gave_up_after:?}");
    assert!(unanswered >= 3, "R1 probes first: {unanswered}");
    let events = h.events();
    assert_eq!(
        events.iter().filter(|event| **event == Event::RetransmissionThreshold).count(),
        1,
        "R1 of unanswered probes is reported once: {events:?}"
    );
    assert_eq!(
        h.conn.close_reason(),
        Some(CloseReason::Error(tcp_proto::ConnectionError::TimedOut))
    );
}

#[test]
fn window_closing_on_data_in_flight_probes_one_octet_and_resends_the_rest_on_reopening_must_34_must_36()
 {
    let mut h = established_with_window(8192);
    h.conn.set_nodelay(true);
    h.conn.send(h.now, &pattern(4000)).unwrap();
    let sizes: Vec<usize> = drain(&mut h).iter().map(|s| s.payload.len()).collect();
    assert_eq!(sizes, [1460, 1460, 1080]);
    // The receiver takes the first segment and its buffer is then full: it drops the others.
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(ISS, 1461)).window(0));
    h.expect_nothing();
    // One RTO later the first dropped octet probes the window, not a whole segment, and the
    // RTO itself is not backed off.
    let rto = h.conn.status().rto;
    h.jump_to_deadline();
    let probe = h.expect_one();
    assert_seg(&probe, ack(), add(ISS, 1461), add(PEER_ISS, 1), WINDOW);
    assert_eq!(probe.payload.len(), 1);
    assert_eq!(h.conn.status().rto, rto);
    answer_closed(&mut h, add(ISS, 1461));
    // The window opens: what was dropped goes again at once, as far as cwnd allows (the
    // initial window here: all of it; a zero window is no congestion).
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(ISS, 1461)).window(8192));
    let resent: Vec<(u32, usize)> =
        drain(&mut h).iter().map(|s| (s.seq, s.payload.len())).collect();
    assert_eq!(resent, [(add(ISS, 1461), 1460), (add(ISS, 2921), 1080)]);
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(ISS, 4001)).window(8192));
    h.expect_nothing();
    assert_eq!(h.conn.status().send_queued, 0);
    assert!(!h.events().contains(&Event::RetransmissionThreshold));
}

#[test]
fn user_timeout_counts_from_the_last_answered_probe_must_37_rfc_9293_3_8_6_1() {
    let mut config = config();
    config.user_timeout = Some(Duration::from_secs(30));
    let mut h = Harness::connect_with(config);
    h.expect_one();
    h.deliver(seg(syn_ack(), PEER_ISS, add(ISS, 1)).mss(1460).window(0));
    h.expect_one();
    h.conn.send(h.now, b"patience").unwrap();
    h.expect_nothing();
    let start = h.now;
    // Ten minutes of answered probes: far past the user timeout, and the connection stays.
    while h.now.saturating_duration_since(start) < Duration::from_secs(600) {
        h.jump_to_deadline();
        drain(&mut h);
        assert_eq!(h.state(), State::Established);
        answer_closed(&mut h, add(ISS, 1));
    }
    // Then silence: the user timeout ends it 30 s after the last answer.
    let last_answer = h.now;
    while h.state() == State::Established {
        h.jump_to_deadline();
        drain(&mut h);
    }
    assert_eq!(h.now.saturating_duration_since(last_answer), Duration::from_secs(30));
    assert_eq!(
        h.conn.close_reason(),
        Some(CloseReason::Error(tcp_proto::ConnectionError::TimedOut))
    );
}

#[test]
fn full_receiver_keeps_its_window_closed_for_hours_dropping_probe_octets_may_8() {
    let mut h = established_with_window(8192);
    let fill = pattern(RECV_BUFFER);
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(ISS, 1)).payload(&fill));
    let full_at = add(PEER_ISS, 1 + RECV_BUFFER as u32);
    assert_seg(&h.expect_one(), ack(), add(ISS, 1), full_at, 0);
    // Two hours of one-octet probes: each is dropped and answered with the same zero window.
    for probe in 0..120u8 {
        h.advance(Duration::from_secs(60));
        h.fire_timers();
        h.deliver(seg(ack(), full_at, add(ISS, 1)).payload(&[probe]));
        assert_seg(&h.expect_one(), ack(), add(ISS, 1), full_at, 0);
        assert_eq!(h.state(), State::Established);
    }
    assert_eq!(h.conn.status().recv_queued, RECV_BUFFER);
    // The application reads: the window opens and the peer hears of it at once.
    let mut buf = vec![0u8; RECV_BUFFER];
    assert_eq!(h.conn.recv(&mut buf), Ok(RECV_BUFFER));
    assert_eq!(buf, fill);
    assert_seg(&h.expect_one(), ack(), add(ISS, 1), full_at, WINDOW);
}
