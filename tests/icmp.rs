//! ICMP errors handed in by the embedding stack (RFC 9293 §3.9.2.2, RFC 5927, RFC 1191):
//! believed only for sequence numbers in flight; hard errors abort, soft ones are reported and
//! never abort, "packet too big" shrinks the segments, source quench is ignored.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use common::*;
use tcp_proto::congestion::{CongestionControl, CongestionEvent, PathInfo};
use tcp_proto::{CloseReason, ConnectionError, Event, IcmpError, SeqNum, State};

fn in_flight(h: &mut Harness) -> SeqNum {
    h.conn.send(h.now, &vec![7u8; 3000]).unwrap();
    while h.poll().is_some() {}
    h.conn.status().snd_una
}

#[test]
fn port_unreachable_for_data_in_flight_aborts_shld_26() {
    let mut h = established();
    let seq = in_flight(&mut h);
    assert!(h.conn.handle_icmp_error(h.now, IcmpError::Unreachable { code: 3 }, seq));
    assert_eq!(h.state(), State::Closed);
    assert_eq!(h.conn.close_reason(), Some(CloseReason::Error(ConnectionError::Unreachable)));
}

#[test]
fn icmp_quoting_a_sequence_number_not_in_flight_is_ignored_rfc_5927() {
    let mut h = established();
    let una = in_flight(&mut h);
    let nxt = h.conn.status().snd_nxt;
    for quoted in [una + u32::MAX, nxt, nxt + 1000] {
        assert!(!h.conn.handle_icmp_error(h.now, IcmpError::Unreachable { code: 3 }, quoted));
    }
    assert_eq!(h.state(), State::Established);
}

#[test]
fn soft_errors_are_reported_and_never_abort_must_47_must_56_shld_25() {
    let mut h = established();
    let seq = in_flight(&mut h);
    h.events();
    for error in
        [IcmpError::Unreachable { code: 1 }, IcmpError::TimeExceeded, IcmpError::ParameterProblem]
    {
        assert!(h.conn.handle_icmp_error(h.now, error, seq));
        assert_eq!(h.events(), [Event::SoftError(error)]);
    }
    assert_eq!(h.state(), State::Established);
}

#[test]
fn soft_error_reports_can_be_switched_off_shld_20() {
    let mut config = config();
    config.report_soft_errors = false;
    let mut h = Harness::connect_with(config);
    h.expect_one();
    h.deliver(seg(syn_ack(), PEER_ISS, add(ISS, 1)).mss(1460));
    h.expect_one();
    let seq = in_flight(&mut h);
    h.events();
    assert!(h.conn.handle_icmp_error(h.now, IcmpError::TimeExceeded, seq));
    assert!(h.events().is_empty());
}

#[test]
fn source_quench_is_ignored_must_55() {
    let mut h = established();
    let seq = in_flight(&mut h);
    h.events();
    assert!(h.conn.handle_icmp_error(h.now, IcmpError::SourceQuench, seq));
    assert!(h.events().is_empty());
    assert_eq!(h.state(), State::Established);
}

#[test]
fn packet_too_big_shrinks_segments_and_resends_at_once_rfc_1191() {
    let mut h = established();
    let seq = in_flight(&mut h);
    assert_eq!(h.conn.status().effective_mss, 1460);
    assert!(h.conn.handle_icmp_error(h.now, IcmpError::PacketTooBig { mtu: 1000 }, seq));
    assert_eq!(h.conn.status().effective_mss, 960);
    // The 3 000 octets in flight (1460 + 1460 + 80) go again in pieces of 960.
    let una = seq.get();
    let expected = [(una, 960), (add(una, 960), 960), (add(una, 1920), 960), (add(una, 2880), 120)];
    assert_eq!(resent(&mut h), expected);
    // A silly MTU is raised to the IPv4 minimum of 576.
    assert!(h.conn.handle_icmp_error(h.now, IcmpError::PacketTooBig { mtu: 68 }, seq));
    assert_eq!(h.conn.status().effective_mss, 536);
}

/// (SEG.SEQ, payload length) of every segment the connection sends now.
fn resent(h: &mut Harness) -> Vec<(u32, usize)> {
    std::iter::from_fn(|| h.poll()).map(|sent| (sent.seq, sent.payload.len())).collect()
}

/// Four full segments (1460 each) in flight on an established connection; returns SND.UNA.
fn four_segments_in_flight(h: &mut Harness) -> u32 {
    let una = h.conn.status().snd_una.get();
    h.conn.send(h.now, &[7u8; 4 * 1460]).unwrap();
    let sent = resent(h);
    let expected: Vec<_> = (0..4).map(|k| (add(una, k * 1460), 1460)).collect();
    assert_eq!(sent, expected);
    una
}

/// RFC 8201 §5.4, RFC 1191 §6.5: every segment in flight was larger than the new MTU, so the
/// router dropped them all; the whole flight goes again at the new size at once — not the
/// first segment only, leaving the rest to the retransmission timer — without touching cwnd,
/// and with SND.NXT still the highest sequence number sent, so an ACK at an old segment's
/// boundary stays acceptable.
#[test]
fn packet_too_big_resends_the_whole_flight_at_the_new_size_at_once_must_54() {
    let mut h = established();
    let una = four_segments_in_flight(&mut h);
    let (cwnd, snd_nxt) = (h.conn.status().cwnd, h.conn.status().snd_nxt);
    assert!(h.conn.handle_icmp_error(
        h.now,
        IcmpError::PacketTooBig { mtu: 1000 },
        SeqNum::new(una)
    ));
    // 5 840 octets: six pieces of 960 and the last 80, no timer needed (the clock stands).
    let mut expected: Vec<_> = (0..6).map(|k| (add(una, k * 960), 960)).collect();
    expected.push((add(una, 5760), 80));
    assert_eq!(resent(&mut h), expected);
    let status = h.conn.status();
    assert_eq!((status.cwnd, status.snd_nxt, status.effective_mss), (cwnd, snd_nxt, 960));
    assert_eq!(status.total_retransmissions, 0, "no retransmission timeout was needed");
    // An ACK for the first old segment (1460, not a multiple of 960) is acceptable and
    // answered by nothing; the ACK of everything ends the flight.
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(una, 1460)));
    h.expect_nothing();
    assert_eq!(h.conn.status().snd_una.get(), add(una, 1460));
    h.deliver(seg(ack(), add(PEER_ISS, 1), snd_nxt.get()));
    h.expect_nothing();
    assert_eq!(h.conn.poll_timeout(), None, "nothing in flight, no timer");
    // More data goes out at the new size.
    h.conn.send(h.now, &[8u8; 1000]).unwrap();
    assert_eq!(resent(&mut h), [(snd_nxt.get(), 960), (add(snd_nxt.get(), 960), 40)]);
}

/// A congestion window that the test sets from outside.
#[derive(Debug)]
struct FixedWindow(Arc<AtomicU32>);

impl CongestionControl for FixedWindow {
    fn window(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }
    fn ssthresh(&self) -> u32 {
        u32::MAX
    }
    fn on_event(&mut self, _: CongestionEvent, _: &PathInfo) {}
}

/// The resent flight counts against the congestion window like any segment (RFC 5681 §3): what
/// does not fit waits for ACKs to open it.
#[test]
fn packet_too_big_resends_within_the_congestion_window_must_54() {
    let mut h = established();
    let window = Arc::new(AtomicU32::new(4 * 1460));
    h.conn.set_congestion_control(Box::new(FixedWindow(Arc::clone(&window))));
    let una = four_segments_in_flight(&mut h);
    window.store(2000, Ordering::Relaxed);
    assert!(h.conn.handle_icmp_error(
        h.now,
        IcmpError::PacketTooBig { mtu: 1000 },
        SeqNum::new(una)
    ));
    // 960 + 960 end within SND.UNA + 2000; the third would not.
    assert_eq!(resent(&mut h), [(una, 960), (add(una, 960), 960)]);
    // The first piece is acknowledged: the window slides by 960, room for one more.
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(una, 960)));
    assert_eq!(resent(&mut h), [(add(una, 1920), 960)]);
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(una, 2880)));
    assert_eq!(resent(&mut h), [(add(una, 2880), 960), (add(una, 3840), 960)]);
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(una, 4800)));
    assert_eq!(resent(&mut h), [(add(una, 4800), 960), (add(una, 5760), 80)]);
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(una, 5840)));
    h.expect_nothing();
    assert_eq!(h.conn.status().total_retransmissions, 0);
}

/// RFC 8201 §5.4: a burst of oversized segments draws a burst of "packet too big"; only the
/// first (or a smaller MTU) starts a resend, the rest change nothing.
#[test]
fn repeated_packet_too_big_for_the_same_mtu_resends_once_must_54() {
    let mut h = established();
    let una = four_segments_in_flight(&mut h);
    for k in 0..4 {
        let quoted = SeqNum::new(add(una, k * 1460));
        assert!(h.conn.handle_icmp_error(h.now, IcmpError::PacketTooBig { mtu: 1000 }, quoted));
    }
    assert_eq!(resent(&mut h).len(), 7);
    let quoted = SeqNum::new(add(una, 1460));
    assert!(h.conn.handle_icmp_error(h.now, IcmpError::PacketTooBig { mtu: 1000 }, quoted));
    h.expect_nothing();
}

#[test]
fn transmits_carry_the_configured_ttl_and_ds_field_must_48_must_49() {
    let mut config = config();
    config.ttl = 7;
    config.ds_field = 0xb8;
    let mut h = Harness::connect_with(config);
    let mut buf = [0u8; 1500];
    let tx = h.conn.poll_transmit(h.now, &mut buf).unwrap().unwrap();
    assert_eq!((tx.ttl, tx.ds_field), (7, 0xb8));
    h.conn.set_ds_field(0x20);
    h.conn.handle_timeout(tcp_proto::Instant::from_millis(2_000));
    let tx =
        h.conn.poll_transmit(tcp_proto::Instant::from_millis(2_000), &mut buf).unwrap().unwrap();
    assert_eq!(tx.ds_field, 0x20, "SHLD-21: changeable during the connection");
}

/// A path that silently drops every IPv4 packet above `limit` octets (ICMP filtered: an RFC
/// 2923 black hole): the segments the connection sends now, (SEG.SEQ, payload length, whether
/// the path carried it).
fn through_black_hole(h: &mut Harness, limit: usize) -> Vec<(u32, usize, bool)> {
    std::iter::from_fn(|| h.poll())
        .map(|sent| (sent.seq, sent.payload.len(), 40 + sent.payload.len() <= limit))
        .collect()
}

/// RFC 4821 §7.7, RFC 8899 §4.3: no "packet too big" ever comes; after two retransmission
/// timeouts in a row of a full-sized segment the path MTU drops to 1200 (RFC 8899's
/// BASE_PLPMTU) and the transfer completes in 1160-octet segments.
#[test]
fn black_hole_drops_the_path_mtu_to_1200_after_two_timeouts_rfc_4821_7_7() {
    let mut h = established();
    let una = h.conn.status().snd_una.get();
    h.conn.send(h.now, &[7u8; 2920]).unwrap();
    let dropped = [(una, 1460, false), (add(una, 1460), 1460, false)];
    assert_eq!(through_black_hole(&mut h, 1200), dropped);
    // First timeout (1 s): the first segment again, at full size, lost again.
    let first = h.jump_to_deadline();
    assert_eq!(through_black_hole(&mut h, 1200), [(una, 1460, false)]);
    // Second timeout in a row (2 s later): the path MTU falls back to 1200.
    let second = h.jump_to_deadline();
    assert_eq!(second.saturating_duration_since(first), std::time::Duration::from_secs(2));
    assert_eq!(h.conn.status().effective_mss, 1160);
    // The timeout's retransmission goes at the new size and passes; its recovery resends the
    // rest of the flight as cwnd allows (RFC 6298 5.4, RFC 5681 §3.1: two segments after the
    // first ACK), at the new size too.
    assert_eq!(through_black_hole(&mut h, 1200), [(una, 1160, true)]);
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(una, 1160)));
    let rest = [(add(una, 1160), 1160, true), (add(una, 2320), 600, true)];
    assert_eq!(through_black_hole(&mut h, 1200), rest);
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(una, 2920)));
    h.expect_nothing();
    assert_eq!(h.conn.poll_timeout(), None, "everything acknowledged");
    let status = h.conn.status();
    assert_eq!((status.snd_una.get(), status.total_retransmissions), (add(una, 2920), 2));
    // New data keeps to the smaller size: the MTU is not raised again.
    h.conn.send(h.now, &[8u8; 1500]).unwrap();
    let more = through_black_hole(&mut h, 1200);
    assert_eq!(more, [(add(una, 2920), 1160, true), (add(una, 4080), 340, true)]);
}

/// A second pair of timeouts at 1200 falls back to 576, the IPv4 minimum; below that there is
/// no step, and a segment that already fits the next step proves nothing about size.
#[test]
fn black_hole_falls_back_to_576_after_two_more_timeouts_rfc_4821_7_7() {
    let mut h = established();
    let una = h.conn.status().snd_una.get();
    h.conn.send(h.now, &[7u8; 1460]).unwrap();
    assert_eq!(through_black_hole(&mut h, 576), [(una, 1460, false)]);
    h.jump_to_deadline();
    assert_eq!(through_black_hole(&mut h, 576), [(una, 1460, false)]);
    h.jump_to_deadline();
    assert_eq!(h.conn.status().effective_mss, 1160);
    assert_eq!(through_black_hole(&mut h, 576), [(una, 1160, false)]);
    h.jump_to_deadline();
    assert_eq!(through_black_hole(&mut h, 576), [(una, 1160, false)]);
    h.jump_to_deadline();
    assert_eq!(h.conn.status().effective_mss, 536);
    assert_eq!(through_black_hole(&mut h, 576), [(una, 536, true)]);
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(una, 536)));
    let rest = [(add(una, 536), 536, true), (add(una, 1072), 388, true)];
    assert_eq!(through_black_hole(&mut h, 576), rest);
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(una, 1072)));
    h.expect_nothing();
    // Lost for another reason now: two more timeouts leave the MSS alone.
    h.jump_to_deadline();
    assert_eq!(through_black_hole(&mut h, 576), [(add(una, 1072), 388, true)]);
    h.jump_to_deadline();
    assert_eq!(through_black_hole(&mut h, 576), [(add(una, 1072), 388, true)]);
    assert_eq!(h.conn.status().effective_mss, 536);
}

/// `Config::black_hole_fallback` off: the full-sized segment is retransmitted as it was.
#[test]
fn black_hole_fallback_can_be_switched_off() {
    let mut config = config();
    config.black_hole_fallback = false;
    let mut h = Harness::connect_with(config);
    h.expect_one();
    h.deliver(seg(syn_ack(), PEER_ISS, add(ISS, 1)).mss(1460));
    h.expect_one();
    let una = h.conn.status().snd_una.get();
    h.conn.send(h.now, &[7u8; 1460]).unwrap();
    h.expect_one();
    for _ in 0..4 {
        h.jump_to_deadline();
        assert_eq!(through_black_hole(&mut h, 1200), [(una, 1460, false)]);
    }
    assert_eq!(h.conn.status().effective_mss, 1460);
}

/// Random loss is no black hole: a duplicate ACK showed a later segment arriving, so two
/// timeouts in a row leave the MSS alone; only two more, with no further sign of delivery,
/// step it down.
#[test]
fn duplicate_acks_put_the_black_hole_fallback_off_one_round_rfc_4821_7_7() {
    let mut h = established();
    let una = four_segments_in_flight(&mut h);
    // The first segment is lost, the second arrives: one duplicate ACK (no fast retransmit).
    h.advance(std::time::Duration::from_millis(10));
    h.deliver(seg(ack(), add(PEER_ISS, 1), una));
    for _ in 0..3 {
        h.jump_to_deadline();
        assert_eq!(resent(&mut h), [(una, 1460)]);
    }
    assert_eq!(h.conn.status().consecutive_retransmissions, 3);
    assert_eq!(h.conn.status().effective_mss, 1460);
    h.jump_to_deadline();
    assert_eq!(h.conn.status().effective_mss, 1160);
    assert_eq!(resent(&mut h), [(una, 1160)]);
}

/// Over IPv6 the one step is 1280, the minimum link MTU and RFC 8899's BASE_PLPMTU.
#[test]
fn black_hole_over_ipv6_falls_back_to_1280_rfc_8899() {
    use std::net::{IpAddr, Ipv6Addr, SocketAddr};
    use tcp_proto::wire::{Options, Segment, TcpHeader};
    let local = SocketAddr::new(IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)), 80);
    let remote = SocketAddr::new(IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2)), 4000);
    let mut now = tcp_proto::Instant::from_millis(1_000);
    let mut conn = tcp_proto::Connection::connect(config(), now, local, remote).unwrap();
    let mut buf = [0u8; 2048];
    // The length (TCP header and payload) of every segment the connection sends now.
    let mut sent = |conn: &mut tcp_proto::Connection, now| -> Vec<usize> {
        std::iter::from_fn(|| conn.poll_transmit(now, &mut buf).unwrap().map(|t| t.len)).collect()
    };
    assert_eq!(sent(&mut conn, now).len(), 1, "the SYN");
    let mut options = Options::NONE;
    options.mss = Some(1440);
    let syn_ack = TcpHeader {
        src_port: 4000,
        dst_port: 80,
        seq: SeqNum::new(PEER_ISS),
        ack: SeqNum::new(add(ISS, 1)),
        flags: syn_ack(),
        window: 8192,
        urgent_ptr: 0,
        options,
    };
    let mut bytes = [0u8; 64];
    let len = syn_ack.emit(&[], remote.ip(), local.ip(), &mut bytes).unwrap();
    let segment = Segment::parse_checked(&bytes[..len], remote.ip(), local.ip()).unwrap();
    conn.handle_segment(now, remote.ip(), &segment);
    assert_eq!(sent(&mut conn, now).len(), 1, "the ACK");
    assert_eq!(conn.status().effective_mss, 1440);
    conn.send(now, &[7u8; 1440]).unwrap();
    // 20 octets of TCP header and 1440 of data: the full-sized segment, lost every time.
    assert_eq!(sent(&mut conn, now), [1460]);
    now = conn.poll_timeout().unwrap();
    conn.handle_timeout(now);
    assert_eq!(sent(&mut conn, now), [1460]);
    now = conn.poll_timeout().unwrap();
    conn.handle_timeout(now);
    // 1280 − 40 (IPv6) − 20 (TCP).
    assert_eq!(conn.status().effective_mss, 1220);
    assert_eq!(sent(&mut conn, now), [20 + 1220]);
}
