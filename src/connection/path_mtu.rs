//! The path MTU: what ICMP "packet too big" / "fragmentation needed" teaches (RFC 1191,
//! RFC 8201, RFC 9293 §3.7.2), resending a flight that was too big at the smaller size, and
//! the fall-back when that ICMP never comes (a black hole, RFC 2923 §2.1; RFC 4821 §7.7,
//! RFC 8899 §4.3).
//!
//! The effective send MSS (MUST-16) is computed from the smaller of `Config::mtu` and the path
//! MTU kept here; it only ever goes down during a connection (RFC 1191 §3: a host must not
//! raise it on ICMP; probing upward as RFC 4821 does is not implemented).
//!
//! Resending: the connection keeps no record of segment boundaries, only sequence numbers, so
//! after "packet too big" it cannot tell which segments in flight were small enough to pass;
//! it resends the whole flight, SND.UNA up to the SND.NXT of the moment the news came, at the
//! new size, at once and within the congestion window (what does not fit waits for ACKs). At
//! worst a short last segment that had fitted goes twice. SND.NXT stays the highest sequence
//! number sent — the resend runs on a cursor of its own — so an ACK for an old, larger segment
//! that did arrive stays acceptable (§3.10.7.4 step 5 bounds SEG.ACK by SND.NXT). Neither
//! cwnd nor ssthresh changes: a smaller MTU is not congestion (RFC 1191 §6.4). RFC 1191 §6.4
//! would also resend one segment only until ACKs arrive; sending what the unchanged congestion
//! window already allowed in flight is what Linux does (`tcp_simple_retransmit`) and saves
//! the round trips (a deviation listed in `docs/conformance.md`).
//!
//! Black holes: after repeated timeouts of a too-large segment the path MTU steps down (see
//! [`Connection::on_rto_path_mtu`]); the RTO's own retransmission and recovery then resend at
//! the smaller size.

use super::{Connection, Timer};
use crate::seq::SeqNum;
use crate::time::Instant;

/// Retransmission timeouts in a row (no ACK advancing SND.UNA between them) of a segment that
/// a fall-back step would shrink, after which the path is taken to drop it for its size
/// (RFC 4821 §7.7 takes the first full-stop timeout; two keep one unlucky loss of a segment
/// with no others behind it from costing the MSS for good).
const BLACK_HOLE_TIMEOUTS: u32 = 2;
/// IPv4 fall-back steps: RFC 8899 §5.1.2's BASE_PLPMTU (1200, "likely to work" on today's
/// paths), then the 576 octets every IPv4 host must accept (RFC 791, RFC 1122 §3.3.3).
const IPV4_BLACK_HOLE_STEPS: [u16; 2] = [1200, 576];
/// IPv6: the minimum link MTU (RFC 8200 §5), which is also BASE_PLPMTU (RFC 8899 §5.1.2).
const IPV6_BLACK_HOLE_STEPS: [u16; 1] = [1280];

/// The lowest path MTU "packet too big" can set: IPv4's 576 (RFC 1191 §3 allows 68, but no
/// sane path is below what every host must accept, and a forged message cannot shrink segments
/// further), IPv6's 1280 (RFC 8201 §4).
const fn path_mtu_floor(ipv4: bool) -> u16 {
    if ipv4 { 576 } else { 1280 }
}

/// The part of the flight still to be resent (go-back-N): at the new size after the path MTU
/// dropped, or after an RTO without SACK or a reopened window ([`Connection::start_resend`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Resegment {
    /// The next sequence number to resend (moved up to SND.UNA when ACKs pass it).
    pub(super) next: SeqNum,
    /// SND.NXT when the resend started: the end of the old flight.
    pub(super) end: SeqNum,
}

impl Connection {
    /// ICMP "packet too big" / "fragmentation needed" reported `mtu` for a segment in flight
    /// (RFC 1191 §6.4, RFC 8201 §5.4): a smaller MTU than the one in use lowers the path MTU
    /// and resends the flight at the new size; the same or a larger one changes nothing, so a
    /// burst of messages for a burst of oversized segments resends once (RFC 8201 §5.4).
    pub(super) fn on_packet_too_big(&mut self, now: Instant, mtu: u16) {
        let mtu = mtu.max(path_mtu_floor(self.local().is_ipv4()));
        if mtu < self.current_mtu() {
            self.lower_path_mtu(now, mtu);
        }
    }

    /// At a retransmission timeout (before its congestion response and recovery, which then
    /// resend the flight at whatever size is current): an RTO's recovery resends the flight
    /// itself, so a resend after "packet too big" stops.
    ///
    /// And the black-hole fall-back (RFC 4821 §7.7, RFC 8899 §4.3): where the segment the
    /// timer keeps resending has timed out [`BLACK_HOLE_TIMEOUTS`] times in a row and a
    /// fall-back step below the MTU in use would make it smaller, no "packet too big" came for
    /// a path that may drop segments for their size — ICMP is filtered (RFC 2923 §2.1) — so
    /// the path MTU drops to the first such step. Duplicate ACKs for that segment (later
    /// segments arrived, RFC 5681 §4.2) make random loss the likelier cause: they put the step
    /// off by one more round of timeouts (a path that drops every full-sized segment leaves
    /// the peer nothing to acknowledge; its own data, FIN or window updates say nothing about
    /// ours). A SACKed full-sized segment proves the path carries that size: no step at all.
    /// Off with `Config::black_hole_fallback`.
    pub(super) fn on_rto_path_mtu(&mut self) {
        self.clear_resegment();
        if self.dup_acks > 0 {
            // The count restarts at every RTO and every advance of SND.UNA: remember it.
            let snd_una = self.snd_una;
            self.rare_mut().dup_acked_una = Some(snd_una);
        }
        // This RTO's retransmission is the next in a row.
        let timeouts = u32::from(self.consecutive_retransmissions);
        if !self.config.black_hole_fallback
            || timeouts == 0
            || !timeouts.is_multiple_of(BLACK_HOLE_TIMEOUTS)
            || !self.syn_acked
        {
            // Not yet, or our SYN (small: its loss says nothing about size).
            return;
        }
        if self
            .scoreboard
            .as_ref()
            .is_some_and(|board| board.holds_sacked_full_segment(self.effective_mss()))
        {
            // The peer SACKed a full-sized segment sent after this one: the path carries
            // packets of this size, so these timeouts are random loss, however many.
            return;
        }
        if let Some(rare) = self.rare.as_mut()
            && rare.dup_acked_una == Some(self.snd_una)
        {
            // Random loss, most likely: wait for another round of timeouts. Only once — the
            // later segments that arrived may have been smaller than this one.
            rare.dup_acked_una = None;
            return;
        }
        // The packet the timer keeps resending: the flight, up to one MSS, and its headers.
        let resent = self.snd_nxt.since(self.snd_una).min(u32::from(self.effective_mss()))
            + u32::from(super::ip_header_len(self.local()))
            + 20;
        let ipv4 = self.local().is_ipv4();
        let steps: &[u16] = if ipv4 { &IPV4_BLACK_HOLE_STEPS } else { &IPV6_BLACK_HOLE_STEPS };
        let current = self.current_mtu();
        // The first step down that would make it smaller; none when it would pass every step
        // (then its losses are not about its size).
        let step = steps.iter().find(|&&step| step < current && u32::from(step) < resent);
        let Some(&step) = step else { return };
        // The RTO's retransmission and recovery that follow use the new size.
        self.rare_mut().path_mtu = Some(step);
    }

    /// The path MTU is now `mtu` (below the one in use): resend the flight at the new size.
    fn lower_path_mtu(&mut self, now: Instant, mtu: u16) {
        let resegment = Resegment { next: self.snd_una, end: self.snd_nxt };
        let rare = self.rare_mut();
        rare.path_mtu = Some(mtu);
        rare.resegment = Some(resegment);
        // Karn (MUST-18): a segment sent again cannot be timed. An RTO's go-back-N resend in
        // progress is replaced by this one, which covers its whole range.
        self.rtt_probe = None;
        // The timer ran for segments that never arrived; time the resent ones.
        if self.snd_una != self.snd_nxt {
            self.set_timer(Timer::Retransmit, Some(now + self.rtt.rto().get()));
        }
    }

    /// The MTU segments are sized for: the configured first hop, or the smaller path MTU.
    pub(super) fn current_mtu(&self) -> u16 {
        self.path_mtu().map_or(self.config.mtu, |path| path.min(self.config.mtu))
    }

    /// The resend in progress after the path MTU dropped, if any.
    pub(super) fn resegment(&self) -> Option<Resegment> {
        self.rare.as_ref().and_then(|rare| rare.resegment)
    }

    /// Moves the resend cursor to `next`, or ends the resend once it reaches its end.
    pub(super) fn set_resegment_next(&mut self, next: SeqNum) {
        if let Some(rare) = self.rare.as_mut()
            && let Some(resegment) = rare.resegment.as_mut()
        {
            if next.before(resegment.end) {
                resegment.next = next;
            } else {
                rare.resegment = None;
            }
        }
    }

    /// Starts resending the whole flight, SND.UNA up to SND.NXT, from a cursor within cwnd
    /// (go-back-N) at the current size: after an RTO on a connection without SACK, where
    /// nothing tells which segments arrived (RFC 5681 §3.1: the sender slow-starts from the
    /// loss window through the flight), and after a closed window reopened. The segment at
    /// SND.UNA itself goes as the pending retransmission, which moves the cursor past it.
    pub(super) fn start_resend(&mut self) {
        let resegment = Resegment { next: self.snd_una, end: self.snd_nxt };
        self.rare_mut().resegment = Some(resegment);
    }

    /// Forgets a resend in progress (the connection ended or starts over).
    pub(super) fn clear_resegment(&mut self) {
        if let Some(rare) = self.rare.as_mut() {
            rare.resegment = None;
        }
    }
}
