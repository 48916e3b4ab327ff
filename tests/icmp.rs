//! ICMP errors handed in by the embedding stack (RFC 9293 §3.9.2.2, RFC 5927, RFC 1191):
//! believed only for sequence numbers in flight; hard errors abort, soft ones are reported and
//! never abort, "packet too big" shrinks the segments, source quench is ignored.

mod common;

use common::*;
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
    let resent = h.expect_one();
    assert_eq!((resent.seq, resent.payload.len()), (seq.get(), 960));
    // A silly MTU is raised to the IPv4 minimum of 576.
    assert!(h.conn.handle_icmp_error(h.now, IcmpError::PacketTooBig { mtu: 68 }, seq));
    assert_eq!(h.conn.status().effective_mss, 536);
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
