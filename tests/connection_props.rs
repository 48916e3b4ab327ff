//! Arbitrary input never panics the connection: random sequences of valid-checksum segments
//! whose sequence and acknowledgment numbers sit near RCV.NXT / SND.UNA / SND.NXT (so they get
//! past validation), interleaved with user calls and timer ticks, from every starting state.
//! After every step the basic invariants hold: SND.UNA ≤ SND.NXT, windows within bounds, a
//! connection with unacknowledged data has a timer, output per step is bounded, and the table
//! was never asked for an illegal transition.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::time::Duration;

use common::*;
use proptest::prelude::*;
use tcp_proto::State;
use tcp_proto::wire::Flags;

#[derive(Clone, Debug)]
enum Op {
    Segment {
        flags: u8,
        seq_anchor: u8,
        seq_off: i16,
        ack_anchor: u8,
        ack_off: i16,
        window: u16,
        len: u8,
        urg: u16,
    },
    Send(u8),
    Recv,
    Close,
    Shutdown,
    Abort,
    Tick(u32),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (any::<u8>(), 0u8..3, -40i16..40, 0u8..3, -40i16..40, any::<u16>(), 0u8..64, any::<u16>())
            .prop_map(|(flags, seq_anchor, seq_off, ack_anchor, ack_off, window, len, urg)| Op::Segment {
                flags, seq_anchor, seq_off, ack_anchor, ack_off, window, len, urg
            }),
        2 => (1u8..200).prop_map(Op::Send),
        1 => Just(Op::Recv),
        1 => Just(Op::Close),
        1 => Just(Op::Shutdown),
        1 => prop::bool::weighted(0.1).prop_map(|_| Op::Abort),
        2 => (0u32..5_000_000).prop_map(Op::Tick),
    ]
}

fn start(which: u8) -> Harness {
    match which % 11 {
        0 => Harness::listen(),
        1 => syn_sent(),
        2 => syn_received_passive(),
        3 => syn_received_active(),
        4 => established(),
        5 => fin_wait_1(),
        6 => fin_wait_2(),
        7 => close_wait(),
        8 => closing(),
        9 => last_ack(),
        _ => time_wait(),
    }
}

fn anchor(h: &Harness, which: u8, receive_side: bool) -> u32 {
    let status = h.conn.status();
    match (which, receive_side) {
        (0, true) => status.rcv_nxt.get(),
        (1, true) => status.rcv_nxt.get().wrapping_add(status.rcv_wnd),
        (_, true) => status.irs.get(),
        (0, false) => status.snd_una.get(),
        (1, false) => status.snd_nxt.get(),
        (_, false) => status.iss.get(),
    }
}

fn check_invariants(h: &Harness) {
    let status = h.conn.status();
    assert!(status.snd_una.before_eq(status.snd_nxt), "SND.UNA after SND.NXT: {status:?}");
    assert!(status.rcv_wnd <= u32::from(u16::MAX), "window beyond 16 bits without scaling");
    assert!(status.send_queued <= 8192 && status.recv_queued <= RECV_BUFFER, "buffers bounded");
    let outstanding = status.snd_una != status.snd_nxt;
    let timed_state = !matches!(status.state, State::Closed | State::Listen | State::TimeWait);
    if outstanding && timed_state {
        assert!(h.conn.poll_timeout().is_some(), "unacknowledged data without a timer: {status:?}");
    }
    if status.state == State::TimeWait {
        assert!(h.conn.poll_timeout().is_some(), "TIME-WAIT without its 2MSL timer");
    }
    assert_eq!(h.conn.counters().illegal_transitions, 0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_segments_and_calls_never_panic_or_break_invariants(
        which in 0u8..11,
        ops in prop::collection::vec(op(), 1..40),
    ) {
        let mut h = start(which);
        for op in ops {
            match op {
                Op::Segment { flags, seq_anchor, seq_off, ack_anchor, ack_off, window, len, urg } => {
                    let seq = anchor(&h, seq_anchor, true).wrapping_add_signed(i32::from(seq_off));
                    let ack = anchor(&h, ack_anchor, false).wrapping_add_signed(i32::from(ack_off));
                    let payload = vec![0xAB; usize::from(len)];
                    let mut s = seg(Flags::from_bits(flags), seq, ack).window(window).payload(&payload);
                    s.urgent_ptr = urg;
                    h.deliver(s);
                }
                Op::Send(n) => { let _ = h.conn.send(h.now, &vec![1; usize::from(n)]); }
                Op::Recv => { let mut buf = [0; 512]; let _ = h.conn.recv(&mut buf); }
                Op::Close => { let _ = h.conn.close(h.now); }
                Op::Shutdown => { let _ = h.conn.shutdown(h.now); }
                Op::Abort => { let _ = h.conn.abort(h.now); }
                Op::Tick(micros) => {
                    h.advance(Duration::from_micros(u64::from(micros)));
                    h.fire_timers();
                }
            }
            // Bounded output per step: a connection never floods in reply to one input.
            let mut sent = 0;
            while h.poll().is_some() {
                sent += 1;
                prop_assert!(sent <= 64, "unbounded emission");
            }
            h.events();
            check_invariants(&h);
        }
    }
}
