//! Spurious retransmissions and taking back the window reduction they caused, through the
//! public API with exact segments and window values: detection by timestamps (RFC 3522, the
//! Eifel algorithm: the first ACK for a retransmission echoes a TSval older than the
//! retransmission's, so the original arrived) and by D-SACK (RFC 3708: every retransmission
//! of the episode reported as a duplicate), and the response of RFC 4015 §3
//! (`CongestionEvent::Undo`: ssthresh back to what it was, cwnd = FlightSize + min(acked, IW),
//! and after a spurious timeout new data rather than the flight again, RFC 5682 §3).
//!
//! The scripted tests open like `tests/sack.rs` and `tests/timestamps.rs`: our SYN at 1 s, the
//! SYN-ACK at 1.1 s (SRTT 100 ms, RTO 1 s), MSS 1000 octets of payload per segment (1012
//! when the 12-octet timestamps option rides on every segment, MUST-16). Our TSval is the
//! harness clock in milliseconds (the ISN source is `Fixed`, so no offset). Ten segments
//! (the initial window, RFC 6928) go at 1.1 s, numbered 0–9: segment `n` carries our octets
//! `1000·n .. 1000·(n + 1)`; twenty are written, so new data is waiting. NewReno remembers
//! before each reduction RFC 4015's `pipe_prev` = max(FlightSize, cwnd in slow start) = 10
//! segments.
//!
//! The last test runs a simulated path that only reorders (no loss) and compares the mean
//! cwnd with and without undo (`Connection::set_undo`) and with a clean path.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::time::Duration;

use common::*;
use tcp_proto::testing::sim::{Link, LinkConfig, Sim};
use tcp_proto::testing::{addr_a, addr_b};
use tcp_proto::wire::Timestamps;
use tcp_proto::{CallError, Config, Connection, Instant, SeqNum, State};

/// The peer's TSval on every segment (it never needs to move: TS.Recent takes equal values).
const PEER_TS: u32 = 500;
/// The peer's window: 30 segments.
const PEER_WINDOW: u16 = 30_000;

/// Sequence number of our data octet `n`.
fn d(n: u32) -> u32 {
    add(ISS, 1 + n)
}

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// How the handshake goes.
#[derive(Clone, Copy)]
struct Options {
    sack: bool,
    timestamps: bool,
}

/// Established with `options`, twenty segments written, the first ten sent at 1.1 s. NewReno,
/// whose halving the exact values below follow (CUBIC's undo has its own unit tests, and the
/// simulated run at the end uses the default CUBIC).
fn ten_in_flight(options: Options) -> Harness {
    let mut config = newreno(config());
    config.send_buffer = 32 * 1024;
    let mut h = Harness::connect_with(config);
    h.expect_one();
    h.advance(Duration::from_millis(100));
    let mss = if options.timestamps { 1012 } else { 1000 };
    let mut syn_ack_seg = seg(syn_ack(), PEER_ISS, d(0)).mss(mss).window(PEER_WINDOW);
    if options.sack {
        syn_ack_seg = syn_ack_seg.sack_permitted();
    }
    if options.timestamps {
        syn_ack_seg = syn_ack_seg.ts(PEER_TS, 1000);
    }
    h.deliver(syn_ack_seg);
    h.expect_one();
    let status = h.conn.status();
    assert_eq!((status.sack, status.timestamps), (options.sack, options.timestamps));
    assert_eq!(status.effective_mss, 1000);
    assert_eq!(status.rto, Duration::from_secs(1));
    let data: Vec<u8> = (0..20_000).map(|i| (i % 251) as u8).collect();
    assert_eq!(h.conn.send(h.now, &data).unwrap(), 20_000);
    let sent: Vec<Sent> = std::iter::from_fn(|| h.poll()).collect();
    assert_eq!(numbers(&sent), (0..10).collect::<Vec<_>>());
    if options.timestamps {
        assert_eq!(sent[0].options.timestamps, Some(Timestamps { tsval: 1100, tsecr: PEER_TS }));
    }
    assert_eq!((h.conn.status().cwnd, h.conn.status().ssthresh), (10_000, u32::MAX));
    h
}

/// The peer's ACK of segments below `acked`, SACK blocks as segment ranges `[from, to)`, and
/// TSecr `tsecr` when timestamps are on.
fn peer_ack(acked: u32, blocks: &[(u32, u32)], tsecr: Option<u32>) -> Seg {
    let blocks: Vec<(u32, u32)> = blocks.iter().map(|&(l, r)| (d(l * 1000), d(r * 1000))).collect();
    let ack_seg = seg(ack(), add(PEER_ISS, 1), d(acked * 1000)).window(PEER_WINDOW).sack(&blocks);
    match tsecr {
        Some(tsecr) => ack_seg.ts(PEER_TS, tsecr),
        None => ack_seg,
    }
}

/// Segment numbers of what was sent (full segments of our data).
fn numbers(sent: &[Sent]) -> Vec<u32> {
    sent.iter()
        .map(|s| {
            assert_eq!(s.payload.len(), 1000, "a full segment: {s:?}");
            s.seq.wrapping_sub(d(0)) / 1000
        })
        .collect()
}

fn drain(h: &mut Harness) -> Vec<u32> {
    let sent: Vec<Sent> = std::iter::from_fn(|| h.poll()).collect();
    numbers(&sent)
}

fn windows(h: &Harness) -> (u32, u32) {
    let status = h.conn.status();
    (status.cwnd, status.ssthresh)
}

/// The retransmission timer fires at 2.1 s: segment 0 goes again (TSval 2100), ssthresh =
/// FlightSize / 2 = 5000, cwnd = one segment (RFC 5681 (4)).
fn spurious_looking_timeout(h: &mut Harness) {
    assert_eq!(h.jump_to_deadline(), at(2100));
    let sent: Vec<Sent> = std::iter::from_fn(|| h.poll()).collect();
    assert_eq!(numbers(&sent), [0]);
    if h.conn.status().timestamps {
        assert_eq!(sent[0].options.timestamps, Some(Timestamps { tsval: 2100, tsecr: PEER_TS }));
    }
    assert_eq!(windows(h), (1000, 5000));
    assert_eq!(h.conn.counters().retransmission_timeouts, 1);
}

/// RFC 3522 §2 with RFC 4015 §3: the ACKs were only late. At 2.15 s the peer's ACK of
/// segments 0–4 arrives echoing TSval 1100, older than the retransmission's 2100: the
/// original arrived, the timeout was spurious. ssthresh goes back to pipe_prev = 10000;
/// cwnd = FlightSize 5000 + min(acked 5000, IW 10000) = 10000; and (RFC 4015 §3, RFC 5682
/// §3) segments 5–9, still in flight, are not sent again: new segments 10–14 go instead
/// (SND.UNA 5000 + cwnd 10000).
#[test]
fn ack_echoing_the_original_after_a_timeout_undoes_it_rfc_3522_rfc_4015_3() {
    let mut h = ten_in_flight(Options { sack: false, timestamps: true });
    spurious_looking_timeout(&mut h);
    h.now = at(2150);
    h.deliver(peer_ack(5, &[], Some(1100)));
    assert_eq!(windows(&h), (10_000, 10_000));
    assert_eq!(drain(&mut h), [10, 11, 12, 13, 14]);
    assert_eq!(h.conn.counters().spurious_retransmissions, 1);
    assert_eq!(h.conn.counters().undos, 1);
    // The rest of the flight is acknowledged without being sent again.
    h.deliver(peer_ack(10, &[], Some(1100)));
    assert_eq!(drain(&mut h), [15, 16, 17, 18, 19]);
}

/// The same with SACK: first the tail loss probe (RFC 8985 §7.2: 2 × SRTT after the last
/// send) sends new segment 10 at 1.3 s and re-arms the RTO, which fires at 2.3 s: segment 0
/// again (TSval 2300), ssthresh = 11000 / 2, cwnd one segment, and RFC 6675 §5.1 deems
/// every segment not SACKed lost. At 2.35 s the ACK of 0–4 echoes 1100: spurious. ssthresh =
/// pipe_prev = 11000, cwnd = FlightSize 6000 + min(5000, IW) = 11000; segments 5–10 are in
/// flight after all, so new data goes (RFC 5682 §3): 11–15 (SND.UNA 5000 + 11000), none of
/// 5–10 again.
#[test]
fn spurious_timeout_with_sack_sends_new_data_not_the_flight_rfc_5682_3() {
    let mut h = ten_in_flight(Options { sack: true, timestamps: true });
    assert_eq!(h.jump_to_deadline(), at(1300));
    assert_eq!(drain(&mut h), [10]);
    assert_eq!(h.conn.counters().loss_probes, 1);
    assert_eq!(h.jump_to_deadline(), at(2300));
    let sent: Vec<Sent> = std::iter::from_fn(|| h.poll()).collect();
    assert_eq!(numbers(&sent), [0]);
    assert_eq!(sent[0].options.timestamps, Some(Timestamps { tsval: 2300, tsecr: PEER_TS }));
    assert_eq!(windows(&h), (1000, 5500));
    h.now = at(2350);
    h.deliver(peer_ack(5, &[], Some(1100)));
    assert_eq!(windows(&h), (11_000, 11_000));
    assert_eq!(drain(&mut h), [11, 12, 13, 14, 15]);
    assert_eq!(h.conn.counters().undos, 1);
    h.deliver(peer_ack(11, &[], Some(1100)));
    assert_eq!(drain(&mut h), [16, 17, 18, 19]);
}

/// A genuine loss: the ACK of 0–4 echoes the retransmission's TSval 2100 (it filled the
/// hole, RFC 7323 §4.3). No undo: ssthresh stays 5000, slow start grows cwnd by one segment
/// (RFC 5681 (2)), and the go-back-N continues with segments 5 and 6: cwnd's two segments
/// from SND.UNA (RFC 5681 §3.1 slow start through the flight that was outstanding).
#[test]
fn ack_echoing_the_retransmission_is_a_genuine_loss_rfc_3522_2() {
    let mut h = ten_in_flight(Options { sack: false, timestamps: true });
    spurious_looking_timeout(&mut h);
    h.now = at(2200);
    h.deliver(peer_ack(5, &[], Some(2100)));
    assert_eq!(windows(&h), (2000, 5000));
    assert_eq!(drain(&mut h), [5, 6]);
    assert_eq!(h.conn.counters().spurious_retransmissions, 0);
    assert_eq!(h.conn.counters().undos, 0);
}

/// Without timestamps and without SACK (so no D-SACK) nothing tells a late ACK from the
/// retransmission's: the reduction stands, as in
/// `ack_echoing_the_retransmission_is_a_genuine_loss_rfc_3522_2`.
#[test]
fn without_timestamps_or_dsack_a_late_ack_undoes_nothing_rfc_3522_rfc_3708() {
    let mut h = ten_in_flight(Options { sack: false, timestamps: false });
    spurious_looking_timeout(&mut h);
    h.now = at(2150);
    h.deliver(peer_ack(5, &[], None));
    assert_eq!(windows(&h), (2000, 5000));
    assert_eq!(drain(&mut h), [5, 6]);
    assert_eq!(h.conn.counters().spurious_retransmissions, 0);
    assert_eq!(h.conn.counters().undos, 0);
}

/// Reordering by three segments with SACK and no timestamps. At 1.2 s the ACKs for 1, 2 and
/// 3 arrive before segment 0's: the third SACKed segment makes 0 lost (RFC 8985 §6.2) and
/// recovery halves: ssthresh = cwnd = 5000, and 0 goes again (RFC 6937: the first ACK of
/// recovery sends the retransmission). Then the late original arrives, and the rest: the
/// ACKs of 4, 5, …, 10 (PRR lets new segments go as they deliver). When the retransmission
/// reaches the peer it is a duplicate, reported as a D-SACK block below the ACK (RFC 2883):
/// the only retransmission of the episode was D-SACKed, so it was spurious (RFC 3708 §3),
/// and RFC 4015 §3 restores ssthresh to pipe_prev = 10000 with cwnd = FlightSize +
/// min(acked, IW), no lower than it was — from there slow start, not congestion avoidance,
/// grows it. (Before the D-SACK: recovery ended at the ACK of 10 with cwnd = ssthresh =
/// 5000; the ACKs of 10–14 then grew it to 6000 in congestion avoidance and 15–19 went.)
#[test]
fn dsack_of_every_retransmission_after_reordering_undoes_the_recovery_rfc_3708_3() {
    let (mut h, cwnd) = reordered_by_three();
    assert_eq!(cwnd, 6000);
    h.deliver(peer_ack(15, &[(0, 1)], None));
    assert_eq!(h.conn.counters().dsacks_received, 1);
    assert_eq!(h.conn.counters().spurious_retransmissions, 1);
    assert_eq!(h.conn.counters().undos, 1);
    // FlightSize 5000 (15–19) + min(0, IW) is below cwnd: cwnd stays, ssthresh is restored.
    assert_eq!(windows(&h), (6000, 10_000));
    // Below ssthresh again: the next ACK grows cwnd by a segment (RFC 5681 (2)).
    h.deliver(peer_ack(16, &[], None));
    assert_eq!(windows(&h), (7000, 10_000));
}

/// The scenario of `dsack_of_every_retransmission_after_reordering_undoes_the_recovery_rfc_3708_3`
/// with a peer that sends no D-SACK: nothing proves the retransmission spurious, the
/// reduction stands.
#[test]
fn reordering_without_dsack_or_timestamps_keeps_the_reduction_rfc_3708_3() {
    let (mut h, cwnd) = reordered_by_three();
    h.deliver(peer_ack(15, &[], None));
    assert_eq!((cwnd, windows(&h)), (6000, (6000, 5000)));
    assert_eq!(h.conn.counters().spurious_retransmissions, 0);
    assert_eq!(h.conn.counters().undos, 0);
}

/// The scenario of `dsack_of_every_retransmission_after_reordering_undoes_the_recovery_rfc_3708_3`
/// where the D-SACK reports segment 5, which was never retransmitted (the network duplicated
/// it): the retransmission of 0 is not proven spurious, the reduction stands.
#[test]
fn dsack_of_an_original_never_retransmitted_undoes_nothing_rfc_3708_3() {
    let (mut h, cwnd) = reordered_by_three();
    h.deliver(peer_ack(15, &[(5, 6)], None));
    assert_eq!(h.conn.counters().dsacks_received, 1);
    assert_eq!(h.conn.counters().spurious_retransmissions, 0);
    assert_eq!(h.conn.counters().undos, 0);
    assert_eq!((cwnd, windows(&h)), (6000, (6000, 5000)));
    // The D-SACK of the retransmitted segment 0 still proves it spurious afterwards.
    h.deliver(peer_ack(15, &[(0, 1)], None));
    assert_eq!(h.conn.counters().undos, 1);
    assert_eq!(windows(&h), (6000, 10_000));
}

/// The reordering of the two tests above, up to the ACK of segments 0–14. Returns the
/// harness and cwnd then.
fn reordered_by_three() -> (Harness, u32) {
    let mut h = ten_in_flight(Options { sack: true, timestamps: false });
    h.now = at(1200);
    h.deliver(peer_ack(0, &[(1, 2)], None));
    h.deliver(peer_ack(0, &[(1, 3)], None));
    assert_eq!(drain(&mut h), Vec::<u32>::new());
    h.deliver(peer_ack(0, &[(1, 4)], None));
    assert_eq!(drain(&mut h), [0]);
    assert_eq!(windows(&h), (5000, 5000));
    assert_eq!(h.conn.counters().sack_recoveries, 1);
    // The late original of 0 and the segments after it.
    h.now = at(1205);
    let mut new = Vec::new();
    for acked in 4..=10 {
        h.deliver(peer_ack(acked, &[], None));
        new.extend(drain(&mut h));
    }
    assert_eq!(new, [10, 11, 12, 13, 14]);
    h.now = at(1300);
    h.deliver(peer_ack(15, &[], None));
    assert_eq!(drain(&mut h), [15, 16, 17, 18, 19]);
    let cwnd = h.conn.status().cwnd;
    assert_eq!(h.conn.status().ssthresh, 5000);
    (h, cwnd)
}

/// With SACK and timestamps a reordering is undone by the ACK of the late original itself
/// (RFC 3522 §2): at 1.2 s the third SACKed segment starts recovery and segment 0 goes again
/// with TSval 1200; at 1.205 s the original arrives and the ACK of 0–3 echoes its TSval 1100.
/// ssthresh = pipe_prev = 10000; cwnd = FlightSize 6000 + min(acked 4000, IW) = 10000, so
/// new segments 10–13 go at once (SND.UNA 4000 + 10000).
#[test]
fn late_original_echoed_ends_a_spurious_fast_recovery_at_once_rfc_3522_2() {
    let mut h = ten_in_flight(Options { sack: true, timestamps: true });
    h.now = at(1200);
    h.deliver(peer_ack(0, &[(1, 2)], Some(1100)));
    h.deliver(peer_ack(0, &[(1, 3)], Some(1100)));
    h.deliver(peer_ack(0, &[(1, 4)], Some(1100)));
    let resent: Vec<Sent> = std::iter::from_fn(|| h.poll()).collect();
    assert_eq!(numbers(&resent), [0]);
    assert_eq!(resent[0].options.timestamps, Some(Timestamps { tsval: 1200, tsecr: PEER_TS }));
    assert_eq!(windows(&h), (5000, 5000));
    h.now = at(1205);
    h.deliver(peer_ack(4, &[], Some(1100)));
    assert_eq!(windows(&h), (10_000, 10_000));
    assert_eq!(drain(&mut h), [10, 11, 12, 13]);
    assert_eq!(h.conn.counters().spurious_retransmissions, 1);
    assert_eq!(h.conn.counters().undos, 1);
}

/// Simulator: 2 MiB over a 20 Mbit/s path with a 20 ms round trip whose only fault is
/// reordering (5 % of segments each way held back by one more path delay), SACK and
/// timestamps on, deterministic seeds. Mean cwnd over the transfer (sampled at every step)
/// and the final ssthresh, for a clean path, for the reordering path, and for the same
/// reordering path with undo switched off.
fn reordering_run(reorder_ppm: u32, undo: bool) -> (f64, u32, u64) {
    let link = LinkConfig {
        delay: Duration::from_millis(10),
        bandwidth_bps: Some(20_000_000),
        reorder_ppm,
        ..LinkConfig::perfect()
    };
    let config = |iss: u32| {
        let mut config = Config::with_fixed_isn(SeqNum::new(iss));
        config.send_buffer = 256 * 1024;
        config.recv_buffer = 64 * 1024;
        // A fixed 64 KiB receive window, so cwnd (not the auto-tuned window) is what differs.
        config.send_buffer_max = config.send_buffer;
        config.recv_buffer_max = config.recv_buffer;
        config
    };
    let now = Instant::ZERO;
    let mut a = Connection::connect(config(1), now, addr_a(40_000), addr_b(80)).unwrap();
    a.set_undo(undo);
    let b = Connection::listen(config(2), now, addr_b(80));
    let mut sim = Sim::new(a, b, Link::new(link.clone(), 7), Link::new(link, 8), now);
    const TOTAL: usize = 2 << 20;
    let chunk = vec![0x5a; 64 * 1024];
    let mut buf = vec![0; 64 * 1024];
    let (mut written, mut read) = (0usize, 0usize);
    let (mut sum, mut samples) = (0f64, 0u64);
    let done = sim.run_until(Duration::from_secs(600), |sim| {
        while written < TOTAL {
            match sim.a.send(sim.now, &chunk[..(TOTAL - written).min(chunk.len())]) {
                Ok(0) | Err(_) => break,
                Ok(n) => written += n,
            }
        }
        if written == TOTAL && sim.a.state() == State::Established {
            sim.a.shutdown(sim.now).unwrap();
        }
        loop {
            match sim.b.recv(&mut buf) {
                Ok(0) => break,
                Ok(n) => read += n,
                Err(CallError::Closing) => return true,
                Err(e) => panic!("receiver failed: {e}"),
            }
        }
        if sim.a.state() == State::Established {
            let status = sim.a.status();
            sum += f64::from(status.cwnd.min(status.snd_wnd));
            samples += 1;
        }
        false
    });
    assert!(done && read == TOTAL, "transfer incomplete: {read} of {TOTAL}");
    (sum / samples as f64, sim.a.status().ssthresh, sim.a.counters().undos)
}

/// Reordering alone must not halve the window: with undo the mean cwnd stays within 20 % of
/// the clean path's; without undo (the same run, `set_undo(false)`) it falls well below.
#[test]
fn reordering_only_path_keeps_cwnd_near_its_lossless_value_with_undo_rfc_4015() {
    let (clean, _, clean_undos) = reordering_run(0, true);
    let (with_undo, _, undos) = reordering_run(50_000, true);
    let (without_undo, _, no_undos) = reordering_run(50_000, false);
    println!(
        "mean cwnd: clean {clean:.0}, reordering with undo {with_undo:.0} ({undos} undos), \
         without undo {without_undo:.0}"
    );
    assert_eq!((clean_undos, no_undos), (0, 0));
    assert!(undos > 0);
    assert!(with_undo >= 0.8 * clean, "with undo {with_undo:.0} vs clean {clean:.0}");
    assert!(without_undo < 0.8 * with_undo, "without {without_undo:.0} vs with {with_undo:.0}");
}
