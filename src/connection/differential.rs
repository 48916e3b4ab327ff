//! The differential harness the fast-path tests share: two connections joined by a link of
//! packets, driven by one script of operations (sends, polls in both transmit forms,
//! deliveries in both receive forms, duplicates, losses, reads, time, closes, forged segments),
//! once with the fast paths on and once with some of them switched off by the test-only
//! switches in `input` and `output`. Everything observable (the link's octets, events,
//! status, deadlines) and the whole TCB must come out the same after every step: a fast path
//! is correct exactly when nobody can tell it ran (RFC 9293 §3.10.7.4 leaves the order of
//! the checks free, not their outcome).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use bytes::BytesMut;
use proptest::prelude::*;

use super::input::switches::FULL_PATH_ONLY;
use super::output::switches::{GENERAL_HEADERS_ONLY, NO_FULL_SEGMENT_PATH, NO_PROBE_REUSE};
use crate::testing::{addr_a, addr_b};
use crate::wire::Segment;
use crate::{Config, Connection, Instant, SeqNum};

/// The application data every send takes its octets from (and a forged segment its payload).
const DATA_LEN: usize = 9000;

/// Which fast paths a [`World`] switches off (all on by default).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Paths {
    /// Every arriving segment through the full SEGMENT ARRIVES path (no header prediction).
    pub(super) full_path_only: bool,
    /// Every segment written through the general header (no lean send path).
    pub(super) general_headers_only: bool,
    /// Every segment planned by `next_segment` (no full-segment send path).
    pub(super) no_full_segment_path: bool,
    /// The timers worked out after every full-sized segment (no probe deadline kept from
    /// the segment before at the same instant).
    pub(super) no_probe_reuse: bool,
}

impl Paths {
    fn switch(self) {
        FULL_PATH_ONLY.with(|only| only.set(self.full_path_only));
        GENERAL_HEADERS_ONLY.with(|only| only.set(self.general_headers_only));
        NO_FULL_SEGMENT_PATH.with(|only| only.set(self.no_full_segment_path));
        NO_PROBE_REUSE.with(|only| only.set(self.no_probe_reuse));
    }
}

/// The configuration of a run: bit 0 timestamps, 1 SACK, 2 a small (8 KiB) receive buffer,
/// 3 no delayed ACKs, 4 no Nagle.
pub(super) fn config(flags: u8) -> Config {
    let mut config = Config::with_fixed_isn(SeqNum::new(1000));
    config.timestamps = flags & 1 != 0;
    config.sack = flags & 2 != 0;
    if flags & 4 != 0 {
        config.recv_buffer = 8192;
    }
    if flags & 8 != 0 {
        config.delayed_ack = None;
    }
    config.nodelay = flags & 16 != 0;
    config
}

/// Runs `ops` through a world with all fast paths and one with `reference`'s switched off,
/// comparing both after the handshake and after every step.
pub(super) fn assert_same_as_reference(
    config: &Config,
    fast: Paths,
    reference: Paths,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let mut fast = World::new(config, fast);
    let mut reference = World::new(config, reference);
    prop_assert_eq!(fast.observed(), reference.observed());
    for (step, op) in ops.iter().enumerate() {
        fast.apply(op);
        reference.apply(op);
        prop_assert_eq!(fast.observed(), reference.observed(), "step {} {:?}", step, op);
    }
    Ok(())
}

#[derive(Clone, Debug)]
pub(super) enum Op {
    /// The application on side A (`false`) or B writes this many octets.
    Send(bool, usize),
    /// Both sides' output goes onto the link.
    Poll,
    /// As `Poll`, through `poll_transmit_chunks` (header and payload slices).
    PollChunks,
    /// The packet at this index (modulo the link's length) arrives; kept on the link
    /// (a duplicate) or not; through `handle_segment_bytes` or the copying form.
    Deliver(usize, bool, bool),
    /// The packet at this index is lost.
    Drop(usize),
    /// The application on one side reads up to this many octets.
    Read(bool, usize),
    /// Time passes and timers run.
    Tick(u64),
    /// One side closes.
    Close(bool),
    /// A segment forged from the receiver's own state arrives at side B (`true`) or A:
    /// near RCV.NXT or not, acknowledging anything from before SND.UNA to past SND.NXT,
    /// with or without a changed window, any flags, fresh, old or missing timestamps, a
    /// SACK block — the segments header prediction must recognise or leave alone
    /// (RFC 9293 §3.10.7.4, RFC 7323 §5.3).
    Forge(bool, Forged),
}

/// How [`Op::Forge`] builds its segment from the receiver's sequence variables.
#[derive(Clone, Debug)]
pub(super) struct Forged {
    /// SEG.SEQ − RCV.NXT.
    seq_delta: i32,
    /// SEG.ACK: SND.UNA plus this share (in 1/8) of the flight, or past SND.NXT (9), or
    /// before SND.UNA (10).
    ack_eighths: u8,
    /// The window field: SND.WND as the peer sent it (`None`), or this value.
    window: Option<u16>,
    /// Control bits besides ACK (which is dropped when `no_ack`).
    extra_flags: u8,
    no_ack: bool,
    payload_len: usize,
    /// TSval − TS.Recent; `None`: no timestamps option.
    tsval_delta: Option<i32>,
    /// A SACK block `(offset from SND.UNA, length)`.
    sack: Option<(u32, u32)>,
}

pub(super) fn forged() -> impl Strategy<Value = Forged> {
    let seq_delta = prop_oneof![
        6 => Just(0i32),
        1 => Just(-1),
        1 => Just(1),
        1 => Just(1460),
        1 => Just(-1460),
        1 => any::<i32>(),
    ];
    let flags = prop_oneof![
        8 => Just(0u8),
        2 => Just(0x08),
        1 => Just(0x01),
        1 => Just(0x02),
        1 => Just(0x04),
        1 => Just(0x20),
        1 => Just(0x09),
    ];
    let tsval = prop_oneof![
        3 => Just(Some(0i32)),
        3 => (1i32..1000).prop_map(Some),
        1 => (-1000i32..0).prop_map(Some),
        1 => Just(None),
    ];
    (
        seq_delta,
        0u8..=10,
        prop::option::weighted(0.2, any::<u16>()),
        flags,
        prop::bool::weighted(0.05),
        prop_oneof![2 => Just(0usize), 1 => Just(1), 1 => 1usize..600, 3 => Just(1448)],
        tsval,
        prop::option::weighted(0.15, (0u32..6000, 1u32..3000)),
    )
        .prop_map(
            |(
                seq_delta,
                ack_eighths,
                window,
                extra_flags,
                no_ack,
                payload_len,
                tsval_delta,
                sack,
            )| {
                Forged {
                    seq_delta,
                    ack_eighths,
                    window,
                    extra_flags,
                    no_ack,
                    payload_len,
                    tsval_delta,
                    sack,
                }
            },
        )
}

/// The packet `forged` describes, from the peer of `receiver` to it.
fn forge(receiver: &Connection, now: Instant, forged: &Forged, data: &[u8]) -> Vec<u8> {
    use crate::wire::{Flags, Options, SackBlock, TcpHeader, Timestamps};
    let seq = receiver.rcv_nxt + forged.seq_delta.cast_unsigned();
    let flight = receiver.snd_nxt.since(receiver.snd_una);
    let ack = match forged.ack_eighths {
        9 => receiver.snd_nxt + 1 + flight,
        10 => receiver.snd_una + (u32::MAX - 99),
        eighths => receiver.snd_una + flight / 8 * u32::from(eighths),
    };
    let shift = if receiver.wscale_ok { receiver.snd_wscale.shift() } else { 0 };
    let window =
        forged.window.unwrap_or(u16::try_from(receiver.snd_wnd >> shift).unwrap_or(u16::MAX));
    let mut flags = Flags::from_bits(forged.extra_flags);
    if !forged.no_ack {
        flags |= Flags::ACK;
    }
    let mut options = Options::NONE;
    if let Some(delta) = forged.tsval_delta {
        let recent = receiver.ts.recent().unwrap_or(0);
        let tsecr = receiver.ts.tsval(now).wrapping_sub(3);
        options.timestamps =
            Some(Timestamps { tsval: recent.wrapping_add(delta.cast_unsigned()), tsecr });
    }
    if let Some((offset, len)) = forged.sack {
        let left = receiver.snd_una + offset;
        options.sack_blocks.push(SackBlock { left, right: left + len });
    }
    let header = TcpHeader {
        src_port: receiver.remote_port,
        dst_port: receiver.local_port,
        seq,
        ack,
        flags,
        window,
        urgent_ptr: if flags.contains(Flags::URG) { 7 } else { 0 },
        options,
    };
    let payload = &data[..forged.payload_len.min(data.len())];
    let mut buf = alloc::vec![0u8; 2000];
    let Ok(len) = header.emit(&[payload], receiver.remote_ip, receiver.local_ip, &mut buf) else {
        panic!("forged segment does not fit")
    };
    buf.truncate(len);
    buf
}

/// Two connected endpoints and the packets between them.
pub(super) struct World {
    pub(super) sides: [Connection; 2],
    /// (towards side B, packet).
    pub(super) link: Vec<(bool, Vec<u8>)>,
    now: Instant,
    paths: Paths,
    trace: Vec<String>,
}

impl World {
    /// Side A connected to side B (its listener) under `config`, the handshake done.
    pub(super) fn new(config: &Config, paths: Paths) -> Self {
        let now = Instant::ZERO;
        let a = Connection::connect(config.clone(), now, addr_a(40_000), addr_b(80));
        let b = Connection::listen(config.clone(), now, addr_b(80));
        let Ok(a) = a else { panic!("connect") };
        let mut world = Self { sides: [a, b], link: Vec::new(), now, paths, trace: Vec::new() };
        // The handshake, then the events it left.
        for _ in 0..4 {
            world.apply(&Op::Poll);
            while !world.link.is_empty() {
                world.apply(&Op::Deliver(0, false, false));
            }
        }
        world
    }

    /// One step of the script, with this world's fast paths switched off for its duration.
    pub(super) fn apply(&mut self, op: &Op) {
        self.paths.switch();
        let data: Vec<u8> = (0..DATA_LEN).map(|i| (i % 251) as u8).collect();
        match *op {
            Op::Send(side, len) => {
                let sent = self.sides[usize::from(side)].send(self.now, &data[..len]);
                self.trace.push(format!("send {sent:?}"));
            }
            Op::Poll => {
                let mut buf = [0u8; 2000];
                for side in [false, true] {
                    loop {
                        let out = self.sides[usize::from(side)].poll_transmit(self.now, &mut buf);
                        match out {
                            Ok(Some(transmit)) => {
                                self.link.push((!side, buf[..transmit.len].to_vec()));
                            }
                            Ok(None) => break,
                            Err(error) => {
                                self.trace.push(format!("transmit error {error:?}"));
                                break;
                            }
                        }
                    }
                }
            }
            Op::PollChunks => {
                let mut buf = [0u8; 80];
                for side in [false, true] {
                    loop {
                        let out =
                            self.sides[usize::from(side)].poll_transmit_chunks(self.now, &mut buf);
                        match out {
                            Ok(Some(chunks)) => {
                                let mut packet = buf[..chunks.header_len].to_vec();
                                for slice in chunks.payload.slices() {
                                    packet.extend_from_slice(slice);
                                }
                                assert_eq!(packet.len(), chunks.transmit.len);
                                self.link.push((!side, packet));
                            }
                            Ok(None) => break,
                            Err(error) => {
                                self.trace.push(format!("transmit error {error:?}"));
                                break;
                            }
                        }
                    }
                }
            }
            Op::Deliver(at, keep, zero_copy) if !self.link.is_empty() => {
                let at = at % self.link.len();
                let (to_b, packet) =
                    if keep { self.link[at].clone() } else { self.link.remove(at) };
                let (src, dst) = if to_b { (addr_a(0), addr_b(0)) } else { (addr_b(0), addr_a(0)) };
                let receiver = &mut self.sides[usize::from(to_b)];
                if zero_copy {
                    let result = receiver.handle_segment_bytes(
                        self.now,
                        src.ip(),
                        dst.ip(),
                        BytesMut::from(&packet[..]),
                    );
                    self.trace.push(format!("bytes {result:?}"));
                } else {
                    let Ok(segment) = Segment::parse_checked(&packet, src.ip(), dst.ip()) else {
                        panic!("unparsable")
                    };
                    receiver.handle_segment(self.now, src.ip(), &segment);
                }
            }
            Op::Deliver(..) => {}
            Op::Forge(to_b, ref forged) => {
                let receiver = &mut self.sides[usize::from(to_b)];
                let packet = forge(receiver, self.now, forged, &data);
                let (src, dst) = (receiver.remote_ip, receiver.local_ip);
                if forged.seq_delta % 2 == 0 {
                    let result = receiver.handle_segment_bytes(
                        self.now,
                        src,
                        dst,
                        BytesMut::from(&packet[..]),
                    );
                    self.trace.push(format!("forged bytes {result:?}"));
                } else {
                    let Ok(segment) = Segment::parse_checked(&packet, src, dst) else {
                        panic!("unparsable")
                    };
                    receiver.handle_segment(self.now, src, &segment);
                }
            }
            Op::Drop(at) if !self.link.is_empty() => {
                let at = at % self.link.len();
                self.link.remove(at);
            }
            Op::Drop(_) => {}
            Op::Read(side, len) => {
                let mut buf = alloc::vec![0u8; len];
                let read = self.sides[usize::from(side)].recv(&mut buf);
                self.trace
                    .push(format!("read {read:?} {:?}", &buf[..*read.as_ref().unwrap_or(&0)]));
            }
            Op::Tick(ms) => {
                self.now += Duration::from_millis(ms);
                for side in &mut self.sides {
                    side.handle_timeout(self.now);
                }
            }
            Op::Close(side) => {
                let closed = self.sides[usize::from(side)].close(self.now);
                self.trace.push(format!("close {closed:?}"));
            }
        }
        for side in &mut self.sides {
            while let Some(event) = side.poll_event() {
                self.trace.push(format!("event {event:?}"));
            }
            self.trace.push(format!(
                "status {:?} timeout {:?}",
                side.status(),
                side.poll_timeout()
            ));
        }
        Paths::default().switch();
    }

    /// Everything observable, and the whole TCB besides.
    pub(super) fn observed(&self) -> String {
        format!("{:?}\n{:?}\n{:?}\n{:?}", self.link, self.trace, self.sides[0], self.sides[1])
    }
}
