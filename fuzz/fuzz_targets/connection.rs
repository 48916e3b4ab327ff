//! One `Connection` fed an arbitrary sequence of segments (near its current sequence space, so
//! they pass validation often), timer ticks and user calls.
//!
//! Oracles, after every step: no panic — and in this build an illegal transition is a panic
//! (the table's debug assertion); SND.UNA ≤ SND.NXT; buffers within their configured size; a
//! bounded number of segments per step; unacknowledged data always has a timer; and every octet
//! handed to the application is the octet the peer's segments carried at that sequence number.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tcp_proto::wire::{Flags, Options, Segment, TcpHeader};
use tcp_proto::{Config, Connection, Instant, SeqNum, State};

const LOCAL: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 80);
const REMOTE: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 4000);
const SEND_BUFFER: usize = 4096;
const RECV_BUFFER: usize = 3000;

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Anchor {
    RcvNxt,
    RcvWndEnd,
    Irs,
    SndUna,
    SndNxt,
    Iss,
    Raw(u32),
}

#[derive(Arbitrary, Debug)]
enum Op {
    Segment {
        flags: u8,
        seq: Anchor,
        seq_off: i16,
        ack: Anchor,
        ack_off: i16,
        window: u16,
        len: u16,
        urgent: u16,
        mss: Option<u16>,
        window_scale: Option<u8>,
    },
    Send(u16),
    Recv(u16),
    Close,
    Shutdown,
    Abort,
    Tick(u32),
    NoDelay(bool),
}

#[derive(Arbitrary, Debug)]
struct Input {
    passive: bool,
    delayed_ack: bool,
    ops: Vec<Op>,
}

/// The octet the peer sends at sequence number `seq`.
fn pattern(seq: u32) -> u8 {
    (seq.wrapping_mul(2_654_435_761) >> 24) as u8
}

fn anchor(conn: &Connection, anchor: Anchor) -> u32 {
    let s = conn.status();
    match anchor {
        Anchor::RcvNxt => s.rcv_nxt.get(),
        Anchor::RcvWndEnd => s.rcv_nxt.get().wrapping_add(s.rcv_wnd),
        Anchor::Irs => s.irs.get(),
        Anchor::SndUna => s.snd_una.get(),
        Anchor::SndNxt => s.snd_nxt.get(),
        Anchor::Iss => s.iss.get(),
        Anchor::Raw(raw) => raw,
    }
}

fuzz_target!(|input: Input| {
    let mut config = Config::with_fixed_isn(SeqNum::new(0xffff_ff00));
    config.send_buffer = SEND_BUFFER;
    config.recv_buffer = RECV_BUFFER;
    if !input.delayed_ack {
        config.delayed_ack = None;
    }
    let mut now = Instant::from_millis(1);
    let mut conn = if input.passive {
        Connection::listen(config, now, LOCAL)
    } else {
        Connection::connect(config, now, LOCAL, REMOTE).expect("valid addresses")
    };
    let mut out = vec![0u8; 65_536];
    let mut payload = vec![0u8; 2048];
    // Bytes read since the stream (this IRS) began.
    let mut stream: Option<(u32, u32)> = None;
    for op in input.ops.iter().take(200) {
        match *op {
            Op::Segment {
                flags,
                seq,
                seq_off,
                ack,
                ack_off,
                window,
                len,
                urgent,
                mss,
                window_scale,
            } => {
                let seq = anchor(&conn, seq).wrapping_add_signed(i32::from(seq_off));
                let ack = anchor(&conn, ack).wrapping_add_signed(i32::from(ack_off));
                let len = usize::from(len) % payload.len();
                // SYN occupies the first sequence number; data follows it.
                let first = if flags & 0x02 != 0 { seq.wrapping_add(1) } else { seq };
                for (i, byte) in payload[..len].iter_mut().enumerate() {
                    *byte = pattern(first.wrapping_add(i as u32));
                }
                let mut options = Options::NONE;
                options.mss = mss;
                options.window_scale = window_scale;
                let header = TcpHeader {
                    src_port: REMOTE.port(),
                    dst_port: LOCAL.port(),
                    seq: SeqNum::new(seq),
                    ack: SeqNum::new(ack),
                    flags: Flags::from_bits(flags),
                    window,
                    urgent_ptr: urgent,
                    options,
                };
                let mut bytes = vec![0u8; len + 80];
                let n = header
                    .emit(&[&payload[..len]], REMOTE.ip(), LOCAL.ip(), &mut bytes)
                    .expect("room");
                let segment =
                    Segment::parse_checked(&bytes[..n], REMOTE.ip(), LOCAL.ip()).expect("valid");
                conn.handle_segment(now, REMOTE.ip(), &segment);
            }
            Op::Send(n) => {
                let data = vec![0x55; usize::from(n) % 5000];
                let _ = conn.send(now, &data);
            }
            Op::Recv(n) => {
                let mut buf = vec![0u8; usize::from(n) % 5000];
                if let Ok(read) = conn.recv(&mut buf) {
                    let irs = conn.status().irs.get();
                    let (stream_irs, offset) = stream.get_or_insert((irs, 0));
                    if *stream_irs != irs {
                        *stream_irs = irs;
                        *offset = 0;
                    }
                    for (i, &byte) in buf[..read].iter().enumerate() {
                        let seq = irs.wrapping_add(1).wrapping_add(*offset).wrapping_add(i as u32);
                        assert_eq!(byte, pattern(seq), "delivered an octet the peer never sent");
                    }
                    *offset = offset.wrapping_add(read as u32);
                }
            }
            Op::Close => {
                let _ = conn.close(now);
            }
            Op::Shutdown => {
                let _ = conn.shutdown(now);
            }
            Op::Abort => {
                let _ = conn.abort(now);
            }
            Op::Tick(micros) => {
                now += Duration::from_micros(u64::from(micros));
                conn.handle_timeout(now);
            }
            Op::NoDelay(on) => conn.set_nodelay(on),
        }
        let mut sent = 0;
        while let Ok(Some(_)) = conn.poll_transmit(now, &mut out) {
            sent += 1;
            assert!(sent < 1000, "unbounded output for one input");
        }
        while conn.poll_event().is_some() {}
        let s = conn.status();
        assert!(s.snd_una.before_eq(s.snd_nxt), "SND.UNA after SND.NXT: {s:?}");
        assert!(s.send_queued <= SEND_BUFFER && s.recv_queued <= RECV_BUFFER, "{s:?}");
        assert_eq!(conn.counters().illegal_transitions, 0);
        let timed = !matches!(s.state, State::Closed | State::Listen | State::TimeWait);
        if timed && s.snd_una != s.snd_nxt {
            assert!(conn.poll_timeout().is_some(), "unacknowledged data without a timer: {s:?}");
        }
        if s.state == State::TimeWait {
            assert!(conn.poll_timeout().is_some(), "TIME-WAIT without its timer");
        }
    }
});
