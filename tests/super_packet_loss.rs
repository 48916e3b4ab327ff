//! Losing whole super-packets (issue #20): with TSO/GSO a sender hands the network 64 KiB
//! super-segments, and one drop — a TUN device or a veth peer delivers a GSO packet locally
//! without cutting it, and a loss rule drops it whole — loses up to 45 wire segments at once.
//! Recovery must then survive the loss of its own retransmissions, which go as super-segments
//! too, without waiting for the retransmission timer.
//!
//! Every test opens like `tests/prr.rs`: a SYN-ACK 100 ms after our SYN (SRTT 100 ms, RTO at
//! its 1 s floor) with MSS 1000, SACK-permitted, window scaling and no timestamps; NewReno, so
//! recovery halves FlightSize. The peer is a receiver with GRO: one ACK per super-packet it
//! receives. Segment `n` carries our octets `1000·n .. 1000·(n + 1)`; what goes is listed as
//! runs of segment numbers, one run per transmission (`poll_transmit_gso`, at most 45 pieces).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::single_range_in_vec_init
)]

mod common;

use std::ops::Range;
use std::time::Duration;

use common::*;
use tcp_proto::wire::Segment;
use tcp_proto::wire::checksum::TxChecksum;
use tcp_proto::wire::gso::Segmenter;
use tcp_proto::{Config, Instant};

const MSS: u16 = 1000;
/// The peer's window field and scale: 40 000 << 4 = 640 000 octets, never the limit here.
const PEER_WINDOW: u16 = 40_000;
const PEER_SHIFT: u8 = 4;
/// The most wire segments one super-segment holds (64 KiB of 1000-octet pieces, as `nc`).
const MAX_PIECES: usize = 45;

/// Sequence number of our data octet `n` (our SYN takes ISS).
fn d(n: u32) -> u32 {
    add(ISS, 1 + n)
}

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn sender_config() -> Config {
    let mut config = newreno(config());
    config.send_buffer = 400_000;
    config
}

/// The peer's pure ACK of segments below `acked` with SACK blocks as segment ranges.
fn peer_ack(acked: u32, blocks: &[(u32, u32)]) -> Seg {
    let blocks: Vec<(u32, u32)> = blocks.iter().map(|&(l, r)| (d(l * 1000), d(r * 1000))).collect();
    seg(ack(), add(PEER_ISS, 1), d(acked * 1000)).window(PEER_WINDOW).sack(&blocks)
}

/// One transmission: the segment numbers it carries, each checked to be a full segment of our
/// data, cut from a super-segment by the software segmenter as a kernel would.
fn poll_run(h: &mut Harness) -> Option<Range<u32>> {
    let mut header = [0u8; 60];
    let chunks = h.conn.poll_transmit_gso(h.now, &mut header, MAX_PIECES).unwrap()?;
    let (src, dst) = (LOCAL.ip(), chunks.transmit.remote.ip());
    let mut segmenter = Segmenter::new(
        &header[..chunks.header_len],
        chunks.payload.slices(),
        chunks.segment_size,
        src,
        dst,
        TxChecksum::Compute,
    )
    .unwrap();
    let mut buf = vec![0u8; segmenter.max_segment_len()];
    let mut numbers = Vec::new();
    while let Some(len) = segmenter.next_segment(&mut buf).unwrap() {
        let segment = Segment::parse_checked(&buf[..len], src, dst).unwrap();
        assert_eq!(segment.payload.len(), usize::from(MSS), "a full segment");
        numbers.push(segment.header.seq.get().wrapping_sub(d(0)) / 1000);
    }
    let first = numbers[0];
    assert!(numbers.iter().zip(first..).all(|(&n, expected)| n == expected), "{numbers:?}");
    Some(first..first + numbers.len() as u32)
}

/// Everything the connection sends now, one run per transmission.
fn drain(h: &mut Harness) -> Vec<Range<u32>> {
    std::iter::from_fn(|| poll_run(h)).collect()
}

/// ESTABLISHED with 300 segments written; slow start over three round trips, every segment
/// acknowledged on its own and the connection polled once all of a round's ACKs are in, so
/// each round goes as whole super-segments: segments 0–9 at 1.1 s, 10–29 at 1.2 s, 30–69 at
/// 1.3 s, and at 1.4 s, with cwnd 80 segments, 70–114 (45 segments) and 115–149.
fn eighty_in_flight() -> Harness {
    let mut h = Harness::connect_with(sender_config());
    h.expect_one();
    h.advance(Duration::from_millis(100));
    let mut syn_ack = seg(syn_ack(), PEER_ISS, d(0)).mss(MSS).window(PEER_WINDOW).sack_permitted();
    syn_ack.window_scale = Some(PEER_SHIFT);
    h.deliver(syn_ack);
    h.expect_one();
    let data: Vec<u8> = (0..300_000).map(|i| (i % 251) as u8).collect();
    assert_eq!(h.conn.send(h.now, &data).unwrap(), 300_000);
    assert_eq!(drain(&mut h), [0..10]);
    let mut round = 0..10;
    for (t, expected) in
        [(1200, vec![10..30]), (1300, vec![30..70]), (1400, vec![70..115, 115..150])]
    {
        h.now = at(t);
        for acked in round.clone() {
            h.deliver(peer_ack(acked + 1, &[]));
        }
        let sent = drain(&mut h);
        assert_eq!(sent, expected, "at {t} ms");
        round = sent[0].start..sent.last().unwrap().end;
    }
    let status = h.conn.status();
    assert_eq!((status.cwnd, status.ssthresh), (80_000, u32::MAX));
    h
}

/// RFC 8985 §6.2 and RFC 6937 §3 (PRR-SSRB), then RFC 8985 §7 in recovery. The 45-segment
/// super-packet 70–114 is lost; 115–149 arrive and the peer SACKs them in one ACK at 1.5 s.
/// RACK deems all 45 lost at once (35 SACKed: a zero reordering window); recovery halves
/// FlightSize (ssthresh = cwnd = 40 segments) with pipe now 0, and PRR-SSRB lets
/// min(ssthresh − pipe, DeliveredData + DeliveredData) = 40 segments go: one super-segment of
/// retransmissions, 70–109. That super-segment is lost too. Nothing sent after it is in
/// flight, so no delivery can show RACK the loss, and the ACK clock stops. The loss probe,
/// armed in recovery 2·SRTT after the last transmission (RFC 8985 §7.2's PTO), goes at 1.7 s
/// — 800 ms before the RTO would — and is the first of the five lost segments still waiting,
/// 110, which both repairs and probes. Its SACK at 1.8 s shows RACK that the 40
/// retransmissions sent before it were lost (RFC 8985 §6.2 step 5, by the retransmissions'
/// own send times): a second reduction (ssthresh 20 segments), and they go again, the flight
/// doubling each round as the GRO receiver's one ACK per super-packet delivers it.
#[test]
fn a_lost_super_segment_of_retransmissions_is_probed_not_timed_out_rfc_8985_6_2_and_7() {
    let mut h = eighty_in_flight();
    h.now = at(1500);
    h.deliver(peer_ack(70, &[(115, 150)]));
    assert_eq!(drain(&mut h), [70..110], "PRR-SSRB up to ssthresh − pipe");
    let status = h.conn.status();
    assert_eq!((status.cwnd, status.ssthresh), (40_000, 40_000));
    // 70–105 lost again. The next deadline is the probe's, 2·SRTT after the retransmission.
    let deadline = h.conn.poll_timeout().unwrap();
    assert_eq!(deadline, at(1700), "the probe timer, not the RTO");
    h.now = deadline;
    h.fire_timers();
    assert_eq!(drain(&mut h), [110..111], "the probe: a lost segment still waiting");
    assert_eq!(h.conn.counters().loss_probes, 1);
    h.now = at(1800);
    h.deliver(peer_ack(70, &[(110, 111), (115, 150)]));
    let mut rounds = vec![drain(&mut h)];
    assert_eq!(rounds[0], [70..72], "SSRB: DeliveredData + 1 segment");
    // The peer receives every retransmission from now on and ACKs each super-packet.
    let mut peer = Receiver::holding(&[0..70, 110..111, 115..150]);
    let mut t = 1800;
    while !peer.has_all(150) {
        t += 100;
        h.now = at(t);
        let mut next = Vec::new();
        for run in rounds.last().unwrap().clone() {
            h.deliver(peer.receive(run));
            next.extend(drain(&mut h));
        }
        rounds.push(next);
    }
    // SSRB doubles what goes each round (DeliveredData + DeliveredData): 2, 4, 8, 16, then
    // the last 14 holes and new data behind them (RFC 6675 NextSeg rule (2)).
    assert_eq!(
        rounds[..5],
        [
            vec![70..72],
            vec![72..76],
            vec![76..84],
            vec![84..100],
            vec![100..110, 111..115, 150..156]
        ]
    );
    // All of 0–149 delivered at 2.3 s, before the RTO (rearmed at 1.8 s with the probe's
    // ACK... at the latest 1 s after the last retransmission of SND.UNA's segment) fired.
    assert_eq!(t, 2300);
    assert_eq!(h.conn.counters().retransmission_timeouts, 0);
    assert!(h.conn.status().snd_una.get().wrapping_sub(d(150_000)) < 1 << 31);
    assert_eq!(h.conn.counters().sack_recoveries, 2, "the lost retransmissions: a second");
    assert_eq!(h.conn.status().ssthresh, 20_000);
}

/// The peer's receive side: which segments it holds; its ACKs cover what is in order and
/// SACK the rest (up to four blocks, highest first).
struct Receiver {
    held: std::collections::BTreeSet<u32>,
}

impl Receiver {
    fn holding(runs: &[Range<u32>]) -> Self {
        Self { held: runs.iter().flat_map(|run| run.clone()).collect() }
    }

    fn has_all(&self, end: u32) -> bool {
        (0..end).all(|n| self.held.contains(&n))
    }

    /// Takes `run` and answers with its ACK.
    fn receive(&mut self, run: Range<u32>) -> Seg {
        self.held.extend(run);
        let acked = (0..).find(|n| !self.held.contains(n)).unwrap();
        let mut blocks: Vec<(u32, u32)> = Vec::new();
        for &n in self.held.range(acked..) {
            match blocks.last_mut() {
                Some(last) if last.1 == n => last.1 = n + 1,
                _ => blocks.push((n, n + 1)),
            }
        }
        blocks.reverse();
        blocks.truncate(4);
        peer_ack(acked, &blocks)
    }
}

/// RFC 8985 §6.2 step 5 with super-segments: a lost retransmission is found by the delivery
/// of new data sent after it, without any timer. The last super-packet of the flight, 115–149,
/// is lost; the ACK of 70–114 at 1.5 s (slow start: cwnd 81 segments) sends 150–195 behind
/// it, whose SACK at 1.6 s makes RACK deem 115–149 lost. Recovery: ssthresh = 81 / 2 segments,
/// pipe 0, and PRR-SSRB lets 40 go — the 35 retransmissions as one super-segment, then new
/// data, 196–200, behind them (RFC 6675 NextSeg rule (2)). The retransmissions are lost; the
/// new data's SACK at 1.7 s shows RACK that they were (sent before it, delivered: no),
/// and they go again at once — no probe, no timeout. (RACK found this before the probe in
/// recovery existed; what goes again is PRR-SSRB's, counting the stretch ACK's octets.)
#[test]
fn a_lost_super_segment_of_retransmissions_is_found_by_new_data_behind_it_rfc_8985_6_2() {
    let mut h = eighty_in_flight();
    h.now = at(1500);
    h.deliver(peer_ack(115, &[]));
    assert_eq!(drain(&mut h), [150..195, 195..196]);
    h.now = at(1600);
    h.deliver(peer_ack(115, &[(150, 196)]));
    assert_eq!(drain(&mut h), [115..150, 196..201]);
    let status = h.conn.status();
    assert_eq!((status.cwnd, status.ssthresh), (40_500, 40_500));
    // 115–149 lost again; 196–200 arrive.
    h.now = at(1700);
    h.deliver(peer_ack(115, &[(150, 201)]));
    // A second reduction for the lost retransmissions (ssthresh 20.25 segments), pipe 0:
    // DeliveredData + DeliveredData = 10 segments go again.
    assert_eq!(drain(&mut h), [115..125]);
    assert_eq!(h.conn.counters().loss_probes, 0);
    assert_eq!(h.conn.counters().retransmission_timeouts, 0);
}
