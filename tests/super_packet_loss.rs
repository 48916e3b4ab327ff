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

/// ESTABLISHED with `written` segments written; slow start over four round trips, every
/// segment acknowledged on its own and the connection polled once all of a round's ACKs are
/// in, so each round goes as super-segments of at most half of cwnd: at 1.5 s, with cwnd 160
/// segments, 150–309 as 150–194, 195–239, 240–284 (45 segments each) and 285–309.
fn one_sixty_in_flight(written: u32) -> Harness {
    let mut h = Harness::connect_with(sender_config());
    h.expect_one();
    h.advance(Duration::from_millis(100));
    let mut syn_ack = seg(syn_ack(), PEER_ISS, d(0)).mss(MSS).window(PEER_WINDOW).sack_permitted();
    syn_ack.window_scale = Some(PEER_SHIFT);
    h.deliver(syn_ack);
    h.expect_one();
    let data: Vec<u8> = (0..written * 1000).map(|i| (i % 251) as u8).collect();
    assert_eq!(h.conn.send(h.now, &data).unwrap(), data.len());
    assert_eq!(drain(&mut h), [0..5, 5..10]);
    let mut round = 0..10;
    for (t, expected) in [
        (1200, vec![10..20, 20..30]),
        (1300, vec![30..50, 50..70]),
        (1400, vec![70..110, 110..150]),
        (1500, vec![150..195, 195..240, 240..285, 285..310]),
    ] {
        h.now = at(t);
        for acked in round.clone() {
            h.deliver(peer_ack(acked + 1, &[]));
        }
        let sent = drain(&mut h);
        assert_eq!(sent, expected, "at {t} ms");
        round = sent[0].start..sent.last().unwrap().end;
    }
    let status = h.conn.status();
    assert_eq!((status.cwnd, status.ssthresh), (160_000, u32::MAX));
    h
}

/// Delivers `runs` to `peer` one at a time, each answered by one ACK (a GRO receiver), and
/// returns what the connection sent after each.
fn deliver_runs(h: &mut Harness, peer: &mut Receiver, runs: &[Range<u32>]) -> Vec<Vec<Range<u32>>> {
    runs.iter()
        .map(|run| {
            h.deliver(peer.receive(run.clone()));
            drain(h)
        })
        .collect()
}

/// RFC 8985 §6.2 and §7 in a fast recovery, RFC 6937 §3. The 45-segment super-packet
/// 150–194 is lost; at 1.6 s the peer ACKs each of the other three. The first ACK's SACK
/// (45 segments: a zero reordering window) makes RACK deem all 45 lost at once; recovery
/// halves FlightSize (ssthresh = cwnd = 80 segments). PRR-SSRB lets ssthresh − pipe go on
/// each ACK (pipe is 70, then 35 + 10, then 45): 150–159, then 160–194; the application
/// wrote nothing more, so the third sends nothing. The super-segment 160–194 is lost too;
/// 150–159 arrive and are acknowledged at 1.7 s. Nothing sent after 160–194 is in flight, so
/// no delivery can show RACK its loss, and no ACK comes back. The loss probe, armed in
/// recovery 2·SRTT after that last ACK (RFC 8985 §7.2's PTO), goes at 1.9 s — 800 ms
/// before the RTO would — and, with nothing lost waiting and no new data, is the newest
/// retransmission again, 194. Its SACK a round trip later shows RACK that the ones sent
/// before it were lost (§6.2 step 5, by their own send times): a second reduction (ssthresh
/// 40 segments), and they go again, the flight doubling each round as the receiver's one ACK
/// per super-packet delivers it (PRR-SSRB counting octets delivered).
#[test]
fn a_lost_super_segment_of_retransmissions_is_probed_not_timed_out_rfc_8985_6_2_and_7() {
    let mut h = one_sixty_in_flight(310);
    let mut peer = Receiver::holding(&[0..150]);
    h.now = at(1600);
    let sent = deliver_runs(&mut h, &mut peer, &[195..240, 240..285, 285..310]);
    assert_eq!(sent, [vec![150..160], vec![160..195], vec![]]);
    let status = h.conn.status();
    assert_eq!((status.cwnd, status.ssthresh), (80_000, 80_000));
    // 160–194 lost; 150–159 arrive.
    h.now = at(1700);
    assert_eq!(deliver_runs(&mut h, &mut peer, &[150..160]), [vec![]]);
    let deadline = h.conn.poll_timeout().unwrap();
    // SRTT is still 100 ms: the ACK at 1.7 s covers retransmissions and gives no sample
    // (Karn, MUST-18; it would be 200 ms, segment 150's first send at 1.5 s).
    assert_eq!(h.conn.status().srtt, Some(Duration::from_millis(100)));
    assert_eq!(deadline, at(1900), "the probe timer, not the RTO");
    h.now = deadline;
    h.fire_timers();
    assert_eq!(drain(&mut h), [194..195], "the probe: the newest retransmission");
    assert_eq!(h.conn.counters().loss_probes, 1);
    h.now = at(2000);
    let mut rounds = deliver_runs(&mut h, &mut peer, &[194..195]);
    let mut t = 2000;
    while !peer.has_all(310) {
        t += 100;
        assert!(t < 2700, "not repaired before the RTO: {rounds:?}");
        h.now = at(t);
        let last = rounds.last().unwrap().clone();
        rounds.push(deliver_runs(&mut h, &mut peer, &last).concat());
    }
    assert_eq!(
        rounds[..5],
        [vec![160..162], vec![162..166], vec![166..174], vec![174..190], vec![190..194]]
    );
    assert_eq!(t, 2500, "everything delivered 2.5 s in, before the RTO");
    assert_eq!(h.conn.counters().retransmission_timeouts, 0);
    assert_eq!(h.conn.counters().sack_recoveries, 2, "the lost retransmissions: a second");
    assert_eq!(h.conn.status().ssthresh, 40_000);
}

/// RFC 8985 §6.2 step 5 with super-segments: a lost retransmission is found by the delivery
/// of what was sent after it, without any timer. As in the test above, 150–194 is lost and
/// the three ACKs at 1.6 s send 150–159, then 160–194 — and, more data being written, new
/// data behind them (RFC 6675 NextSeg rule (2)): 310–319, then 320–344. 150–159 are lost
/// again. At 1.7 s the first ACK, for 160–194, shows RACK that 150–159, sent before them and
/// not delivered, were lost, and they go again at once — no probe, no timeout.
#[test]
fn a_lost_super_segment_of_retransmissions_is_found_by_what_was_sent_after_it_rfc_8985_6_2() {
    let mut h = one_sixty_in_flight(400);
    let mut peer = Receiver::holding(&[0..150]);
    h.now = at(1600);
    let sent = deliver_runs(&mut h, &mut peer, &[195..240, 240..285, 285..310]);
    assert_eq!(sent, [vec![150..160], vec![160..195, 310..320], vec![320..345]]);
    // 150–159 lost again. The first ACK at 1.7 s delivers 160–194, sent after them: they go
    // again at once (a second reduction, ssthresh 40 segments; PRR-SSRB from pipe ~0).
    h.now = at(1700);
    let again = deliver_runs(&mut h, &mut peer, &[160..195, 310..320, 320..345]);
    assert_eq!(again, [vec![150..155], vec![155..160, 345..350], vec![350..370, 370..375]]);
    assert_eq!(h.conn.counters().loss_probes, 0);
    assert_eq!(h.conn.counters().retransmission_timeouts, 0);
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
