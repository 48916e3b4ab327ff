//! What the SACK model, the storm oracle and the `pair` target found in the connection
//! (src/connection, src/recovery.rs, src/assembler.rs), each as a minimal reproduction with
//! exact segments: every one failed on ecdbe38 and passes since 4ca31a9 (`may_transmit`, the
//! D-SACK of old duplicates, RFC 6675 (4.3)) and b0c46dd (D-SACK from IRS+1, the FIN's
//! octet, `reo_wnd_persist`), which fixed them on main while this was written; they stay as
//! regression tests. The last was found on the merged code and is fixed too. A
//! connection is driven by hand, segment by segment (timestamps off, delayed ACK off, RFC
//! 6298's 1 s RTO floor).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tcp_proto::testing::ops::{
    self, Anchor, Input, Op, PeerSegment, SackBlockSpec, SackSpec, SendForm,
};
use tcp_proto::wire::{Flags, Options, SackBlock, Segment, TcpHeader};
use tcp_proto::{Config, Connection, Instant, SeqNum};

const US: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 80);
const PEER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 4000);
const ISS: u32 = 0xffff_ff00;
const IRS: u32 = 7000;
/// The connection's MSS towards a peer that sent no MSS option (RFC 9293 §3.7.1).
const MSS: u32 = 536;

/// The sequence number of our `n`-th data octet (the space wraps past 2^32).
fn data(n: u32) -> u32 {
    ISS.wrapping_add(1).wrapping_add(n)
}

/// What the connection sent: flags, SEQ, ACK, payload length, SACK blocks.
type Sent = (Flags, u32, u32, usize, Vec<(u32, u32)>);

struct Peer {
    conn: Connection,
    now: Instant,
    /// The window the peer advertises.
    window: u16,
}

impl Peer {
    /// An active open the peer answered at 20 ms, SACK-permitted on both SYNs.
    fn established() -> Self {
        let mut config = Config::with_fixed_isn(SeqNum::new(ISS));
        config.delayed_ack = None;
        config.timestamps = false;
        let now = Instant::from_millis(1);
        config.send_buffer = 65_536;
        // RFC 6298's 1 s floor, not the 200 ms default: the probe timeout comes first.
        config.rto_min = Duration::from_secs(1);
        let conn = Connection::connect(config, now, US, PEER).unwrap();
        let mut peer = Self { conn, now, window: 65_535 };
        let syn = peer.drain();
        assert_eq!(syn.len(), 1);
        peer.wait(Duration::from_millis(20));
        let mut options = Options::NONE;
        options.sack_permitted = true;
        peer.send(Flags::SYN | Flags::ACK, IRS, ISS + 1, &[], options);
        assert_eq!(peer.drain(), [(Flags::ACK, ISS + 1, IRS + 1, 0, vec![])]);
        peer
    }

    fn wait(&mut self, by: Duration) {
        self.now += by;
        self.conn.handle_timeout(self.now);
    }

    fn send(&mut self, flags: Flags, seq: u32, ack: u32, payload: &[u8], options: Options) {
        let header = TcpHeader {
            src_port: PEER.port(),
            dst_port: US.port(),
            seq: SeqNum::new(seq),
            ack: SeqNum::new(ack),
            flags,
            window: self.window,
            urgent_ptr: 0,
            options,
        };
        let mut bytes = vec![0u8; payload.len() + 80];
        let n = header.emit(&[payload], PEER.ip(), US.ip(), &mut bytes).unwrap();
        let segment = Segment::parse_checked(&bytes[..n], PEER.ip(), US.ip()).unwrap();
        self.conn.handle_segment(self.now, PEER.ip(), &segment);
    }

    fn ack(&mut self, ack: u32, blocks: &[(u32, u32)]) {
        let mut options = Options::NONE;
        for &(left, right) in blocks {
            options
                .sack_blocks
                .push(SackBlock { left: SeqNum::new(left), right: SeqNum::new(right) });
        }
        self.send(Flags::ACK, IRS + 1, ack, &[], options);
    }

    fn drain(&mut self) -> Vec<Sent> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 2048];
        while let Some(tx) = self.conn.poll_transmit(self.now, &mut buf).unwrap() {
            let segment = Segment::parse_checked(&buf[..tx.len], US.ip(), PEER.ip()).unwrap();
            let h = &segment.header;
            let blocks =
                h.options.sack_blocks.iter().map(|b| (b.left.get(), b.right.get())).collect();
            out.push((h.flags, h.seq.get(), h.ack.get(), segment.payload.len(), blocks));
        }
        out
    }
}

/// RFC 6675 §5 (4.3) (NextSeg, with RACK deeming the segment lost, RFC 8985 §6.2): four
/// segments sent, the first lost, the other three SACKed: with nothing new queued the hole
/// goes again at once. (It waited for the RTO: `may_transmit` looked only for new data,
/// flags and replies, so `poll_transmit` never asked NextSeg.)
#[test]
fn sack_recovery_with_nothing_new_queued_resends_the_hole_at_once_rfc_6675_5() {
    let mut peer = Peer::established();
    assert_eq!(peer.conn.send(peer.now, &[0x55; 2000]).unwrap(), 2000);
    let flight = peer.drain();
    assert_eq!(flight.len(), 4);
    peer.wait(Duration::from_millis(20));
    peer.ack(ISS + 1, &[(data(MSS), data(2000))]);
    assert_eq!(peer.conn.counters().sack_recoveries, 1);
    assert_eq!(
        peer.drain(),
        [(Flags::ACK, ISS + 1, IRS + 1, MSS as usize, vec![])],
        "the first segment presumed lost goes again at once"
    );
}

/// RFC 8985 §7.3: when the probe timeout expires with the tail of a flight unacknowledged
/// and nothing new to send, the last segment goes again as the probe. (It waited for the RTO:
/// `may_transmit` did not consult `loss_probe_due`.)
#[test]
fn tail_loss_probe_with_nothing_new_queued_resends_the_last_segment_rfc_8985_7_3() {
    let mut peer = Peer::established();
    assert_eq!(peer.conn.send(peer.now, &[0x55; 1500]).unwrap(), 1500);
    assert_eq!(peer.drain().len(), 3);
    peer.wait(Duration::from_millis(20));
    peer.ack(data(2 * MSS), &[]);
    assert_eq!(peer.drain(), []);
    let probe_at = peer.conn.poll_timeout().unwrap();
    assert!(probe_at < peer.now + Duration::from_secs(1), "the probe comes before the RTO");
    peer.now = probe_at;
    peer.conn.handle_timeout(probe_at);
    assert_eq!(
        peer.drain(),
        [(Flags::ACK | Flags::PSH, data(2 * MSS), IRS + 1, 1500 - 2 * MSS as usize, vec![])],
        "the last segment goes again as the probe"
    );
    assert_eq!(peer.conn.counters().loss_probes, 1);
}

/// RFC 2883 §4 (example 4.1.1): a segment wholly below RCV.NXT — the original was late,
/// the sender's spurious retransmission arrived, or the other way round — is a duplicate
/// the ACK reports in a D-SACK block; that report is what lets the sender widen RACK's
/// reordering window (RFC 8985 §6.2 step 4). (The connection reported only segments that
/// overlap RCV.NXT: a wholly old one failed the §3.10.7.4 acceptability test first and drew
/// a bare ACK, so on a path that reorders and loses nothing the sender never learnt that its
/// retransmissions were spurious: the storm oracle of `tests/lossy_sweep.rs` failed 86 of
/// 300 reordering seeds, a side resending up to 17 % of its data segments.)
#[test]
fn a_duplicate_below_rcv_nxt_is_reported_in_a_dsack_rfc_2883_4() {
    let mut peer = Peer::established();
    peer.send(Flags::ACK | Flags::PSH, IRS + 1, data(0), &[0x66; 100], Options::NONE);
    assert_eq!(peer.drain(), [(Flags::ACK, data(0), IRS + 101, 0, vec![])]);
    peer.send(Flags::ACK | Flags::PSH, IRS + 1, data(0), &[0x66; 100], Options::NONE);
    assert_eq!(
        peer.drain(),
        [(Flags::ACK, data(0), IRS + 101, 0, vec![(IRS + 1, IRS + 101)])],
        "the ACK of the duplicate carries a D-SACK block for it"
    );
}

/// RFC 8985 §6.2 step 4: a round trip that brings a D-SACK widens the reordering window
/// by min_RTT / 4 and sets `RACK.reo_wnd_persist = 16`; only 16 recoveries *without* a
/// D-SACK reset the window. (The scoreboard never restored the persistence and counted every
/// recovery: the window measured 30, 43, … 206 ms, then 50 ms in the 17th round.) Each
/// round here: four segments (the peer's window), the first held up; the
/// peer SACKs the other three after 100 ms, the reordering timer deems the first lost
/// (its deadline shows RACK.reo_wnd), it goes again, and the peer acknowledges all with a
/// D-SACK for it.
#[test]
fn dsack_rounds_keep_the_reordering_window_wide_rfc_8985_6_2_step_4() {
    let mut peer = Peer::established();
    peer.window = (4 * MSS) as u16;
    peer.ack(data(0), &[]);
    // More than the window, so NextSeg's resends are not held back (see above).
    assert_eq!(peer.conn.send(peer.now, &[0x55; 40_000]).unwrap(), 40_000);
    let mut base = data(0);
    let mut windows = Vec::new();
    for round in 0..18 {
        // As many segments as cwnd and the window allow (cwnd halves in each recovery).
        let flight = peer.drain();
        assert!(flight.len() >= 2, "round {round}: {flight:?}");
        let end = base.wrapping_add(flight.iter().map(|s| s.3 as u32).sum::<u32>());
        let sent_at = peer.now;
        peer.wait(Duration::from_millis(100));
        // A window that ends at the flight's end: nothing new goes meanwhile.
        peer.window = end.wrapping_sub(base) as u16;
        peer.ack(base, &[(base.wrapping_add(MSS), end)]);
        // RACK deems the first segment lost RACK.rtt (100 ms) + RACK.reo_wnd after it was
        // sent: step a millisecond at a time until it goes again.
        let mut resent_at = None;
        for _ in 0..400 {
            if peer.drain().iter().any(|segment| segment.1 == base) {
                resent_at = Some(peer.now);
                break;
            }
            peer.wait(Duration::from_millis(1));
        }
        let resent_at = resent_at.expect("the first segment goes again");
        let reo_wnd = resent_at.saturating_duration_since(sent_at) - Duration::from_millis(100);
        windows.push(reo_wnd.as_millis());
        peer.window = (4 * MSS) as u16;
        peer.ack(end, &[(base, base.wrapping_add(MSS))]);
        base = end;
    }
    assert_eq!(peer.conn.counters().sack_recoveries, 18);
    // One millisecond of slack for the stepping.
    let widest = windows.iter().max().copied().unwrap();
    let last = windows.last().copied().unwrap();
    assert!(last + 1 >= widest, "the reordering window fell back; in each round (ms): {windows:?}");
}

/// The first finding as the model found it: check (d) of `ops::run` (a step that enters
/// SACK recovery resends in that step) on the shortest input. The same bug stalled a
/// connection in timeout recovery with nothing new queued, one segment per RTO; the `pair`
/// target found that within half a minute as a liveness failure ("B still has data or a FIN
/// unacknowledged 241.28 s after the faults stopped", RTO at its 120 s ceiling), and
/// `fuzz/findings/pair-sack-timeout-recovery-stalls-120s` replays it.
#[test]
fn the_model_finds_recovery_without_a_retransmission() {
    let segment = |flags, seq, ack, sack| {
        Op::Segment(PeerSegment {
            flags,
            seq,
            seq_off: 0,
            ack,
            ack_off: 0,
            window: 65_535,
            len: 0,
            urgent: 0,
            mss: None,
            window_scale: None,
            sack,
            packet: None,
        })
    };
    let held = SackSpec { count: 1, blocks: [SackBlockSpec::Held(0); 4] };
    let input = Input {
        passive: false,
        delayed_ack: false,
        peer_sack: true,
        peer_timestamps: false,
        ops: vec![
            Op::Tick(20_000),
            segment(0x12, Anchor::Raw(IRS), Anchor::Held, None),
            Op::Lose(0b1),
            Op::Send(2000, SendForm::Copy),
            Op::Tick(20_000),
            segment(0x10, Anchor::RcvNxt, Anchor::Held, Some(held)),
        ],
    };
    let report = ops::run_report(&input);
    assert_eq!(report.sack.recoveries, 1);
}

/// RFC 2883 §4: a D-SACK reports octets received twice. A segment that starts 20 octets
/// before IRS and reaches 10 past RCV.NXT (nothing received yet) is acceptable (its end is
/// in the window) and is trimmed; nothing in it was received before. (The connection
/// reported `[SEG.SEQ, RCV.NXT)` as a D-SACK, sequence numbers before IRS included; Linux's
/// `tcp_data_queue` reports the same range; the harm was small.)
#[test]
fn a_dsack_never_reports_sequence_numbers_before_irs_rfc_2883_4() {
    let mut peer = Peer::established();
    peer.send(Flags::ACK | Flags::PSH, IRS - 20, ISS + 1, &[0x66; 31], Options::NONE);
    // The ten octets past RCV.NXT are taken; nothing was received twice: no D-SACK.
    assert_eq!(peer.drain(), [(Flags::ACK, ISS + 1, IRS + 11, 0, vec![])]);
}

/// RFC 2018 §4: SACK blocks describe octets received and queued. 50 octets arrive 100
/// past RCV.NXT (block `[RCV.NXT+100, RCV.NXT+150)`), then a FIN at RCV.NXT: RCV.NXT moves
/// over the FIN; the assembler's ranges (offsets from RCV.NXT) were not rebased, so the ACK
/// of the FIN reported `[RCV.NXT+101, RCV.NXT+151)`: one octet the peer never sent. (A peer
/// that sends data beyond its FIN misbehaves; the receiver should still not misreport.)
#[test]
fn sack_blocks_stay_put_when_rcv_nxt_moves_over_a_fin_rfc_2018_4() {
    let mut peer = Peer::established();
    let rcv_nxt = IRS + 1;
    peer.send(Flags::ACK, rcv_nxt + 100, ISS + 1, &[0x66; 50], Options::NONE);
    assert_eq!(
        peer.drain(),
        [(Flags::ACK, ISS + 1, rcv_nxt, 0, vec![(rcv_nxt + 100, rcv_nxt + 150)])]
    );
    peer.send(Flags::FIN | Flags::ACK, rcv_nxt, ISS + 1, &[], Options::NONE);
    // The FIN is taken, and what lay beyond the peer's end of stream is forgotten.
    assert_eq!(peer.drain(), [(Flags::ACK, ISS + 1, rcv_nxt + 1, 0, vec![])]);
}

/// src/recovery.rs: the scoreboard holds at most `Scoreboard::limit` records (one per 128
/// octets of send buffer, at least 64), so its memory stays bounded "whatever the segment
/// sizes"; its own debug check allows one more. SACK blocks split records at their edges
/// without that bound: blocks of one octet, every other octet, four to an ACK, split ten
/// segments into hundreds of records — the debug check panics with "record limit" (the
/// `connection` fuzz target found it on the merged code, through tiny segments and a
/// timeout), and in release a peer can make the sender keep a record (16 octets, more with
/// the ring's slack) per octet in flight.
#[test]
fn sack_blocks_never_split_the_scoreboard_past_its_limit() {
    let mut peer = Peer::established();
    assert_eq!(peer.conn.send(peer.now, &[0x55; 5000]).unwrap(), 5000);
    let flight: u32 = peer.drain().iter().map(|s| s.3 as u32).sum();
    // Send buffer 65 536: a limit of 512 records.
    for ack in 0..(flight / 8) {
        let blocks: Vec<(u32, u32)> = (0..4)
            .map(|i| data(1 + 2 * (4 * ack + i)))
            .map(|seq| (seq, seq.wrapping_add(1)))
            .collect();
        peer.wait(Duration::from_millis(1));
        peer.ack(data(0), &blocks);
        peer.drain();
    }
}

/// RFC 6675 §5 (4.3), found by `tests/model.rs` (the last entry of its regressions file): the
/// third duplicate ACK without blocks starts a recovery that resends SND.UNA's segment; a
/// D-SACK then proves the recovery spurious and it is undone (RFC 3708, RFC 4015); a further
/// duplicate ACK without blocks must not start another recovery, because nothing is presumed
/// dropped — the segment at SND.UNA was resent and is in flight — and a recovery would have
/// no first retransmission to send. (It did: `sack_recoveries` counted a recovery that sent
/// nothing.)
#[test]
fn a_duplicate_ack_after_an_undone_recovery_starts_none_with_nothing_to_resend_rfc_6675_5() {
    let input = Input {
        passive: false,
        delayed_ack: false,
        peer_sack: true,
        peer_timestamps: false,
        ops: vec![
            Op::Segment(PeerSegment {
                flags: 18,
                seq: Anchor::Raw(0),
                seq_off: 0,
                ack: Anchor::Held,
                ack_off: 0,
                window: 65535,
                len: 0,
                urgent: 0,
                mss: Some(64),
                window_scale: None,
                sack: None,
                packet: None,
            }),
            Op::Lose(4128),
            Op::Send(1637, SendForm::Copy),
            Op::Segment(PeerSegment {
                flags: 24,
                seq: Anchor::RcvNxt,
                seq_off: 1,
                ack: Anchor::Held,
                ack_off: 0,
                window: 65535,
                len: 1,
                urgent: 0,
                mss: None,
                window_scale: None,
                sack: None,
                packet: None,
            }),
            Op::Tick(200000),
            Op::Arrive(16),
            Op::Send(500, SendForm::Copy),
            Op::Segment(PeerSegment {
                flags: 17,
                seq: Anchor::RcvNxt,
                seq_off: 0,
                ack: Anchor::Held,
                ack_off: 0,
                window: 65535,
                len: 0,
                urgent: 0,
                mss: None,
                window_scale: None,
                sack: None,
                packet: None,
            }),
            Op::Segment(PeerSegment {
                flags: 24,
                seq: Anchor::RcvNxt,
                seq_off: 0,
                ack: Anchor::Held,
                ack_off: 0,
                window: 65535,
                len: 1,
                urgent: 0,
                mss: None,
                window_scale: None,
                sack: None,
                packet: None,
            }),
            Op::Lose(14937),
            Op::Segment(PeerSegment {
                flags: 24,
                seq: Anchor::RcvNxt,
                seq_off: 2,
                ack: Anchor::Held,
                ack_off: 0,
                window: 65535,
                len: 1,
                urgent: 0,
                mss: None,
                window_scale: None,
                sack: None,
                packet: None,
            }),
            Op::Tick(1),
            Op::Segment(PeerSegment {
                flags: 16,
                seq: Anchor::RcvNxt,
                seq_off: 0,
                ack: Anchor::Held,
                ack_off: 0,
                window: 65535,
                len: 0,
                urgent: 0,
                mss: None,
                window_scale: None,
                sack: None,
                packet: None,
            }),
            Op::Segment(PeerSegment {
                flags: 16,
                seq: Anchor::RcvNxt,
                seq_off: 0,
                ack: Anchor::Held,
                ack_off: 0,
                window: 65535,
                len: 0,
                urgent: 0,
                mss: None,
                window_scale: None,
                sack: None,
                packet: None,
            }),
            Op::Segment(PeerSegment {
                flags: 16,
                seq: Anchor::RcvNxt,
                seq_off: 0,
                ack: Anchor::Held,
                ack_off: 0,
                window: 65535,
                len: 0,
                urgent: 0,
                mss: None,
                window_scale: None,
                sack: None,
                packet: None,
            }),
            Op::Segment(PeerSegment {
                flags: 16,
                seq: Anchor::RcvNxt,
                seq_off: 0,
                ack: Anchor::Held,
                ack_off: 0,
                window: 65535,
                len: 0,
                urgent: 0,
                mss: None,
                window_scale: None,
                sack: Some(SackSpec {
                    count: 2,
                    blocks: [
                        SackBlockSpec::Held(0),
                        SackBlockSpec::Held(1),
                        SackBlockSpec::Held(2),
                        SackBlockSpec::Held(3),
                    ],
                }),
                packet: None,
            }),
            Op::Segment(PeerSegment {
                flags: 16,
                seq: Anchor::RcvNxt,
                seq_off: 0,
                ack: Anchor::Held,
                ack_off: 0,
                window: 65535,
                len: 0,
                urgent: 0,
                mss: None,
                window_scale: None,
                sack: Some(SackSpec {
                    count: 225,
                    blocks: [
                        SackBlockSpec::Held(0),
                        SackBlockSpec::Held(0),
                        SackBlockSpec::Held(0),
                        SackBlockSpec::Held(0),
                    ],
                }),
                packet: None,
            }),
        ],
    };
    let report = ops::run_report(&input);
    assert_eq!(report.sack.recoveries, 1);
}
