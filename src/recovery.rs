//! SACK-based loss recovery for what we send: the scoreboard (RFC 2018 §5, RFC 6675 §3–§4),
//! RACK's time-based loss detection and the tail loss probe (RFC 8985), and D-SACK's evidence
//! of reordering and spurious retransmission (RFC 2883, RFC 8985 §6.2 step 4).
//!
//! The [`Scoreboard`] keeps one record per transmitted segment from SND.UNA to SND.NXT, in
//! sequence order: where it ends, when it was last sent, and whether it was SACKed, deemed
//! lost or retransmitted. It is made when a connection that negotiated SACK first sends data
//! and reused from then on (its records live in one growable ring: no allocation per segment
//! in steady state), and holds at most [`Scoreboard::limit`] records: a segment past that joins
//! the last record, so memory stays bounded by the send buffer whatever the segment sizes.
//!
//! The scoreboard is advisory (RFC 2018 §8): the connection still retransmits the segment at
//! SND.UNA when the retransmission timer expires, and a timeout with the segment at SND.UNA
//! SACKed — proof that the receiver reneged — forgets every SACK.
//!
//! Loss detection is RACK (RFC 8985 §6): a segment is lost once a segment sent after it was
//! delivered and a reordering window has passed since. RFC 6675's DupThresh rule survives only
//! as RACK's own switch to a zero reordering window (§6.2 step 4). Recovery follows RFC 6675
//! §5: on the first loss, cwnd and ssthresh are halved once; NextSeg (§4) sends lost segments
//! first, then new data. How much goes on each ACK of a fast recovery is Proportional Rate
//! Reduction ([`Prr`], RFC 6937, as RFC 9937 revises it), whose state lives here only while a
//! recovery runs; after a timeout, `pipe` (§4 SetPipe) against cwnd bounds it (RFC 6675 §5.1).
//!
//! [`Episode`] remembers a window reduction until it is judged: RFC 3522's Eifel detection
//! (the first ACK for a retransmission echoes a TSval older than the retransmission's) or RFC
//! 3708's D-SACK detection (every retransmission reported as a duplicate) proves it spurious,
//! and the connection takes it back (RFC 4015).

use alloc::collections::VecDeque;
use core::time::Duration;

use crate::seq::SeqNum;
use crate::time::Instant;
use crate::wire::SackBlock;

/// RFC 6675 §2's DupThresh, as RACK uses it (RFC 8985 §6.2 step 4).
const DUP_THRESH: u32 = 3;

/// How many recoveries a widened reordering window survives (RFC 8985 §6.2 step 4:
/// `RACK.reo_wnd_persist`, 16).
const REO_WND_PERSIST: u8 = 16;

/// The peer's worst-case delayed-ACK time, added to a probe timeout when one segment is in
/// flight (RFC 8985 §7.2: WCDelAckT, 200 ms).
pub(crate) const WORST_CASE_DELAYED_ACK: Duration = Duration::from_millis(200);

/// What a record knows about its segment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Marks(u8);

impl Marks {
    /// The receiver reported it in a SACK block.
    const SACKED: u8 = 1;
    /// RACK (or a timeout) deemed it lost: it is not in the network.
    const LOST: u8 = 2;
    /// Sent again since it was last deemed lost (or before, by a timer or probe).
    const RETRANSMITTED: u8 = 4;

    const fn has(self, mark: u8) -> bool {
        self.0 & mark != 0
    }
    fn set(&mut self, mark: u8) {
        self.0 |= mark;
    }
    fn clear(&mut self, mark: u8) {
        self.0 &= !mark;
    }
    /// Deemed lost and not sent again since: NextSeg's rule (1) candidates.
    const fn awaits_resend(self) -> bool {
        self.has(Self::LOST) && !self.has(Self::RETRANSMITTED | Self::SACKED)
    }
}

/// One transmitted segment: `[previous record's end (or the head), end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Sent {
    end: SeqNum,
    /// When it was last (re)transmitted: RACK's `Segment.xmit_ts`.
    sent_at: Instant,
    marks: Marks,
}

/// Which recovery the sender is in (RFC 6675 §5, §5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Recovery {
    /// Lost segments were detected from SACKs: cwnd was halved and stays until the recovery
    /// point is acknowledged.
    Fast,
    /// The retransmission timer expired: cwnd restarts from the loss window and slow start
    /// grows it while the lost segments go again.
    Timeout,
}

/// The RACK state of RFC 8985 §6.1.
#[derive(Clone, Copy, Debug)]
struct Rack {
    /// `RACK.xmit_ts` and `RACK.end_seq`: the most recently sent segment delivered so far.
    newest_delivered: Option<(Instant, SeqNum)>,
    /// `RACK.rtt`: the RTT of that segment.
    rtt: Duration,
    /// `RACK.fack`: the highest end of any delivered segment.
    fack: Option<SeqNum>,
    /// The smallest RTT seen (RFC 8985 §6.2 step 4 uses it for the reordering window).
    min_rtt: Option<Duration>,
    /// `RACK.reordering_seen`.
    reordering_seen: bool,
    /// `RACK.reo_wnd_mult`: D-SACKs widen the window in steps of min_rtt / 4.
    reo_wnd_mult: u32,
    /// `RACK.reo_wnd_persist`: recoveries left before the multiplier resets.
    reo_wnd_persist: u8,
    /// `RACK.dsack_round`: one widening per round trip.
    dsack_round: Option<SeqNum>,
}

impl Rack {
    const fn new() -> Self {
        Self {
            newest_delivered: None,
            rtt: Duration::ZERO,
            fack: None,
            min_rtt: None,
            reordering_seen: false,
            reo_wnd_mult: 1,
            reo_wnd_persist: REO_WND_PERSIST,
            dsack_round: None,
        }
    }
}

/// A tail loss probe that was sent and not yet judged (RFC 8985 §7.4: `TLP.end_seq`,
/// `TLP.is_retrans`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ProbeSent {
    end: SeqNum,
    retransmission: bool,
    /// Sent during a fast recovery (see [`Scoreboard::may_schedule_probe`]): any ACK that
    /// brings news judges it, and it owes no congestion response of its own.
    in_recovery: bool,
}

/// What RACK's loss detection found (RFC 8985 §6.2 step 5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Detection {
    /// Segments newly deemed lost.
    pub(crate) lost: u32,
    /// Of those, segments whose retransmission was lost too.
    pub(crate) lost_retransmissions: u32,
    /// When segments still inside the reordering window are to be judged (§6.3).
    pub(crate) reorder_at: Option<Instant>,
}

/// What one ACK told the scoreboard.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct AckNews {
    /// What RACK found after the ACK.
    pub(crate) detection: Detection,
    /// The ACK carried a D-SACK block (RFC 2883).
    pub(crate) dsack: bool,
    /// The ACK reported SACKed octets not reported before.
    pub(crate) newly_sacked: bool,
    /// RFC 6937 DeliveredData: octets newly acknowledged cumulatively or newly SACKed (the
    /// change in SND.UNA plus the change in SACKed octets; D-SACKed octets are not new).
    pub(crate) delivered: u32,
    /// Of those, octets newly SACKed.
    pub(crate) newly_sacked_octets: u32,
    /// A loss probe that retransmitted data repaired a loss (RFC 8985 §7.4.2): the congestion
    /// response is owed although no loss was detected otherwise.
    pub(crate) probe_repaired_loss: bool,
}

/// RFC 6937 Proportional Rate Reduction for one fast recovery (§3, with RFC 9937's
/// `RecoverFS = pipe`): how many octets each ACK lets go, so that the flight shrinks from
/// RecoverFS towards ssthresh in proportion to what is delivered, and grows back towards it
/// like slow start when losses took it below (the slow-start reduction bound, PRR-SSRB: each
/// ACK lets go what it delivered and as much again, at least one segment more).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Prr {
    /// `RecoverFS`: pipe when recovery began (at least 1, it divides).
    recover_fs: u32,
    /// `prr_delivered`: octets delivered to the receiver since recovery began.
    delivered: u32,
    /// `prr_out`: octets sent (new or again) since recovery began.
    out: u32,
    /// `sndcnt` of the last ACK less what was sent since: what may still go.
    allowance: u32,
    /// The last sndcnt was the proportional part (pipe > ssthresh), not a reduction bound.
    proportional: bool,
}

impl Prr {
    /// Recovery begins with `recover_fs` octets in the pipe (RFC 6937 §3 initialisation).
    pub(crate) fn new(recover_fs: u32) -> Self {
        Self {
            recover_fs: recover_fs.max(1),
            delivered: 0,
            out: 0,
            allowance: 0,
            proportional: false,
        }
    }

    /// RFC 6937 §3, on every ACK during recovery: `delivered_data` octets newly delivered
    /// (DeliveredData), `pipe` after the ACK (RFC 6675 SetPipe), the controller's `ssthresh`.
    /// PRR-CRB (`conservative`) sends no more than was delivered; PRR-SSRB as much again as
    /// this ACK delivered, at least one `mss`, more.
    /// Returns `sndcnt`, which is also what [`Prr::allowance`] lets go until the next ACK.
    pub(crate) fn on_ack(
        &mut self,
        delivered_data: u32,
        pipe: u32,
        ssthresh: u32,
        mss: u32,
        conservative: bool,
    ) -> u32 {
        self.delivered = self.delivered.saturating_add(delivered_data);
        self.proportional = pipe > ssthresh;
        let sndcnt = if self.proportional {
            // Proportional Rate Reduction: CEIL(prr_delivered * ssthresh / RecoverFS) -
            // prr_out, in 64 bits so the product never overflows.
            let target = (u64::from(self.delivered) * u64::from(ssthresh))
                .div_ceil(u64::from(self.recover_fs));
            u32::try_from(target).unwrap_or(u32::MAX).saturating_sub(self.out)
        } else {
            // PRR-SSRB grows the flight back like slow start: RFC 6937 adds one MSS an ACK,
            // which doubles it a round trip only when every segment is acknowledged on its
            // own. Here the growth counts octets delivered, as slow start does with byte
            // counting (RFC 3465) and as Linux counts a stretch ACK of N segments as N ACKs:
            // a receiver with GRO acknowledges a whole 45-segment super-packet at once, and
            // one MSS for that rebuilt a 45-segment hole one segment a round trip — eight
            // round trips, each a chance for a lost retransmission. With per-segment ACKs
            // this is RFC 6937's bound exactly; ssthresh − pipe still caps it.
            let banked = self.delivered.saturating_sub(self.out);
            let growth = delivered_data.max(mss);
            let limit = if conservative {
                banked
            } else {
                banked.max(delivered_data).saturating_add(growth)
            };
            (ssthresh - pipe).min(limit)
        };
        self.allowance = sndcnt;
        sndcnt
    }

    /// RFC 6937 §3's "at least one segment on the first ACK of recovery when one is lost"
    /// (RFC 9937: the fast retransmit is never held back): before anything went, the
    /// allowance is at least `mss`.
    pub(crate) fn ensure_first_retransmission(&mut self, mss: u32) {
        if self.out == 0 {
            self.allowance = self.allowance.max(mss);
        }
    }

    /// `octets` went out (new data or a retransmission): `prr_out += (data sent)`.
    pub(crate) fn on_sent(&mut self, octets: u32) {
        self.out = self.out.saturating_add(octets);
        self.allowance = self.allowance.saturating_sub(octets);
    }

    /// Octets that may still go before the next ACK.
    #[cfg(test)]
    const fn allowance(&self) -> u32 {
        self.allowance
    }

    /// What may go before the next ACK in whole segments of `mss`: the proportional part
    /// rounds up (RFC 6937's CEIL, counted in segments as its examples and Linux count; the
    /// octets sent beyond it are in prr_out, so the next ACKs send that much less), a
    /// reduction bound rounds down (never past ssthresh − pipe).
    pub(crate) fn allowance_in_segments(&self, mss: u32) -> u32 {
        let mss = mss.max(1);
        if self.proportional {
            self.allowance.div_ceil(mss).saturating_mul(mss)
        } else {
            self.allowance / mss * mss
        }
    }
}

/// A window reduction (fast retransmit, SACK recovery or retransmission timeout) waiting to be
/// judged: Eifel detection (RFC 3522) with timestamps, D-SACK detection (RFC 3708) without.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Episode {
    /// SND.UNA when the reduction came: retransmissions of the episode lie from here...
    start: SeqNum,
    /// ...up to HighData then (the recovery point).
    high: SeqNum,
    /// RFC 3522 `RetransmitTS`: the TSval of the episode's first retransmission, and where
    /// that retransmission ends (its ACK is the one Eifel judges by).
    first_retransmission: Option<(u32, SeqNum)>,
    /// Octets retransmitted in the episode.
    retransmitted: u32,
    /// Where those retransmissions lie, as up to [`EPISODE_RANGES`] disjoint ranges, so that a
    /// D-SACK counts only for octets that were really sent twice by us (RFC 3708 §3 is about
    /// retransmitted data; a duplicate the network made of an original proves nothing). More
    /// scattered retransmissions than that (`None`) leave the verdict to timestamps.
    resent: Option<[(SeqNum, SeqNum); EPISODE_RANGES]>,
    /// Octets of those retransmissions the peer reported as duplicates (RFC 2883 D-SACK).
    dsacked: u32,
    /// The reduction was a retransmission timeout (RFC 4015 / RFC 5682: after undoing it, new
    /// data goes, not the rest of the flight again).
    pub(crate) timeout: bool,
}

/// How many disjoint retransmitted ranges an [`Episode`] tracks for D-SACK evidence: a
/// reordering resends one segment or a short run; a window of scattered losses is judged by
/// timestamps alone.
const EPISODE_RANGES: usize = 4;

/// How an [`Episode`] was judged by an ACK.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Nothing known yet.
    Open,
    /// The retransmissions were needed (Eifel: the ACK echoes the retransmission).
    Genuine,
    /// The original arrived: the reduction is to be undone.
    Spurious,
}

impl Episode {
    /// A reduction with SND.UNA at `start` and HighData `high`.
    pub(crate) const fn new(start: SeqNum, high: SeqNum, timeout: bool) -> Self {
        let empty = (start, start);
        Self {
            start,
            high,
            first_retransmission: None,
            retransmitted: 0,
            resent: Some([empty; EPISODE_RANGES]),
            dsacked: 0,
            timeout,
        }
    }

    /// Adds `[start, end)` to the retransmitted ranges, joining a range it touches or overlaps
    /// (then only the octets not already counted are new); past the range budget, D-SACK
    /// evidence is given up. Returns the octets newly covered.
    fn note_resent(&mut self, start: SeqNum, end: SeqNum) -> u32 {
        let Some(ranges) = self.resent.as_mut() else { return end.since(start) };
        for range in ranges.iter_mut() {
            let empty = range.0 == range.1;
            let touches = !empty && start.before_eq(range.1) && range.0.before_eq(end);
            if touches {
                let before = range.1.since(range.0);
                *range = (range.0.min_seq(start), range.1.max_seq(end));
                return range.1.since(range.0).saturating_sub(before);
            }
        }
        if let Some(free) = ranges.iter_mut().find(|range| range.0 == range.1) {
            *free = (start, end);
        } else {
            self.resent = None;
        }
        end.since(start)
    }

    /// Octets of `[left, right)` inside the retransmitted ranges (0 once they were given up).
    fn resent_overlap(&self, left: SeqNum, right: SeqNum) -> u32 {
        let Some(ranges) = self.resent.as_ref() else { return 0 };
        ranges
            .iter()
            .map(|&(from, to)| {
                let (from, to) = (from.max_seq(left), to.min_seq(right));
                if from.before(to) { to.since(from) } else { 0 }
            })
            .sum()
    }

    /// Whether data of this episode is still unacknowledged (a later loss belongs to it).
    pub(crate) fn is_current(&self, snd_una: SeqNum) -> bool {
        snd_una.before(self.high)
    }

    /// `[start, end)` was sent again at TSval `tsval` (`None` without timestamps).
    pub(crate) fn on_retransmitted(&mut self, start: SeqNum, end: SeqNum, tsval: Option<u32>) {
        if !start.before(self.high) || !start.before(end) {
            return;
        }
        let end = end.min_seq(self.high);
        let new = self.note_resent(start, end);
        self.retransmitted = self.retransmitted.saturating_add(new);
        if self.first_retransmission.is_none() {
            self.first_retransmission = tsval.map(|tsval| (tsval, end));
        }
    }

    /// RFC 3522 §2: the first acceptable ACK covering the first retransmission (`seg_ack`)
    /// judges it by its TSecr: older than the retransmission's TSval means the original
    /// arrived. Octet-level D-SACK evidence is weighed by [`Episode::on_dsack`].
    pub(crate) fn judge_by_echo(&self, seg_ack: SeqNum, tsecr: Option<u32>) -> Verdict {
        let Some((tsval, end)) = self.first_retransmission else { return Verdict::Open };
        let Some(tsecr) = tsecr.filter(|_| seg_ack.after_eq(end)) else { return Verdict::Open };
        if crate::connection::ts_before(tsecr, tsval) {
            Verdict::Spurious
        } else {
            Verdict::Genuine
        }
    }

    /// RFC 3708 §3: a D-SACK `block` about this episode's retransmissions; once every octet
    /// retransmitted was reported twice, none of the retransmissions was needed. Octets of the
    /// block that were never retransmitted (a duplicate the network made) count for nothing.
    pub(crate) fn on_dsack(&mut self, block: SackBlock) -> Verdict {
        if block.left.before(block.right) {
            let resent = self.resent_overlap(block.left, block.right);
            self.dsacked = self.dsacked.saturating_add(resent);
        }
        if self.resent.is_some() && self.retransmitted > 0 && self.dsacked >= self.retransmitted {
            Verdict::Spurious
        } else {
            Verdict::Open
        }
    }
}

/// RFC 2883 §4: the first block of an ACK is a D-SACK when it lies below the cumulative ACK
/// `seg_ack` or inside the second block.
pub(crate) fn dsack_block(blocks: &[SackBlock], seg_ack: SeqNum) -> Option<SackBlock> {
    let first = *blocks.first()?;
    let dsack = first.right.before_eq(seg_ack)
        || blocks.get(1).is_some_and(|second| {
            second.left.before_eq(first.left) && first.right.before_eq(second.right)
        });
    dsack.then_some(first)
}

/// The inputs the probe deadline was last worked out from ([`Scoreboard::note_probe_armed`]):
/// the instant (`None`: nothing noted), the retransmission deadline and SND.UNA.
#[derive(Clone, Copy)]
struct ProbeArmed {
    now: Option<Instant>,
    rto: Instant,
    snd_una: SeqNum,
}

impl ProbeArmed {
    const NONE: Self = Self { now: None, rto: Instant::MAX, snd_una: SeqNum::new(0) };
}

/// Printed as nothing: a cache of the last computation, not part of what the scoreboard
/// knows (the differential tests compare scoreboards built with and without it).
impl core::fmt::Debug for ProbeArmed {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("_")
    }
}

/// The sender's view of what the receiver holds: see the module docs.
#[derive(Debug)]
pub(crate) struct Scoreboard {
    /// Records from `head` to SND.NXT, in sequence order, contiguous.
    segments: VecDeque<Sent>,
    /// Where the first record starts (SND.UNA, once acknowledged data is trimmed).
    head: SeqNum,
    /// At most this many records (see the module docs).
    limit: usize,
    /// Records marked SACKED (RFC 8985 §6.2 step 4 counts them against DupThresh).
    sacked_segments: u32,
    /// Records marked RETRANSMITTED and not yet delivered: while there are none and nothing is
    /// SACKed, no segment can be deemed lost (the fast path of `detect_losses`).
    retransmitted_segments: u32,
    /// Records deemed lost and not sent again since (`Marks::awaits_resend`): while there are
    /// none, NextSeg's rule (1) has nothing to send and `next_lost` answers without a scan
    /// (it is asked on every poll during a recovery).
    awaiting_resend: u32,
    rack: Rack,
    /// The recovery in progress, with its RecoveryPoint (RFC 6675 §3: HighData when it began).
    recovery: Option<(Recovery, SeqNum)>,
    /// A tail loss probe is due at the next transmission (the probe timer expired).
    probe_due: bool,
    /// The last loss probe sent, until an ACK judges it.
    probe_sent: Option<ProbeSent>,
    /// Recovery just began: its first lost segment goes regardless of pipe (RFC 6675 §5 step
    /// (4.3)).
    first_resend_due: bool,
    /// RACK's reordering timer (RFC 8985 §6.3), when armed.
    reorder_at: Option<Instant>,
    /// The probe timeout (RFC 8985 §7.2), when armed.
    probe_at: Option<Instant>,
    /// What the probe deadline was last worked out from by a full-sized segment of new data
    /// (`Connection::rearm_after_full_segment`): a cache that lets the next such segment at the
    /// same instant skip working it out again, not state of the connection. Forgotten
    /// (`forget_probe_armed`) wherever the deadline or what `may_schedule_probe` reads may
    /// change: `set_deadline` of the probe, `on_ack`, `enter_recovery`, `on_probe_timeout`,
    /// `on_probe_sent`, `cancel_probe`. (`undo_recovery` changes the recovery too, but only
    /// one that `enter_recovery` started, which forgot the note then; and the send fast path
    /// notes only outside a recovery.)
    probe_armed: ProbeArmed,
    /// PRR's state while a fast recovery runs (RFC 6937).
    prr: Option<Prr>,
    /// Octets newly delivered by the ACK being processed (RFC 6937 DeliveredData)...
    delivered: u32,
    /// ...and of those, octets newly SACKed.
    newly_sacked: u32,
    /// The ACK about to be processed was proven to acknowledge original transmissions (RFC
    /// 3522, RFC 3708): a retransmitted segment it delivers tells RACK nothing (RFC 8985 §6.2
    /// step 2). Cleared once that ACK is processed.
    echoes_originals: bool,
}

impl Scoreboard {
    /// An empty scoreboard holding at most `limit` records (at least 2).
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            segments: VecDeque::new(),
            head: SeqNum::new(0),
            limit: limit.max(2),
            sacked_segments: 0,
            retransmitted_segments: 0,
            awaiting_resend: 0,
            rack: Rack::new(),
            recovery: None,
            probe_due: false,
            probe_sent: None,
            first_resend_due: false,
            reorder_at: None,
            probe_at: None,
            probe_armed: ProbeArmed::NONE,
            prr: None,
            delivered: 0,
            newly_sacked: 0,
            echoes_originals: false,
        }
    }

    /// Arms (`Some`) or disarms the probe timer (`probe`) or the reordering timer.
    pub(crate) fn set_deadline(&mut self, probe: bool, at: Option<Instant>) {
        if probe {
            self.forget_probe_armed();
            self.probe_at = at;
        } else {
            self.reorder_at = at;
        }
    }

    /// The probe timer's (`probe`) or the reordering timer's deadline.
    pub(crate) fn deadline(&self, probe: bool) -> Option<Instant> {
        if probe { self.probe_at } else { self.reorder_at }
    }

    /// Notes that the probe timer was just worked out (RFC 8985 §7.2) at `now` with SND.UNA
    /// at `snd_una` and the retransmission deadline at `rto` ([`Instant::MAX`] when unarmed),
    /// by the rule's full computation after a full-sized segment of new data with more than
    /// the peer's MSS in flight. Nothing is noted when no probe is armed.
    pub(crate) fn note_probe_armed(&mut self, now: Instant, snd_una: SeqNum, rto: Instant) {
        self.probe_armed = if self.probe_at.is_some() {
            ProbeArmed { now: Some(now), rto, snd_una }
        } else {
            ProbeArmed::NONE
        };
    }

    /// Whether the probe timer as noted by [`note_probe_armed`](Self::note_probe_armed) is
    /// still what RFC 8985 §7.2's rule gives for another full-sized segment of new data sent
    /// at `now` with SND.UNA at `snd_una` and the retransmission deadline at `rto`, more
    /// than the peer's MSS in flight before and after it (the caller's part). The rule reads
    /// the instant, SRTT (which moves only with SND.UNA), whether more than an MSS is in
    /// flight, the retransmission deadline, the probe and recovery state here and the
    /// connection's state, SACK and windows (which the send fast path's conditions fix); with
    /// all of them as they were, it gives the deadline armed now, and re-arming it changes
    /// nothing (`deadline_moved_earlier` included: the deadline does not move).
    ///
    /// The probe deadline and the state `may_schedule_probe` reads change only where the
    /// note is forgotten (see `probe_armed`), so a note still held vouches for them.
    #[inline]
    pub(crate) fn probe_armed_as(&self, now: Instant, snd_una: SeqNum, rto: Instant) -> bool {
        let armed = &self.probe_armed;
        armed.now == Some(now) && armed.snd_una == snd_una && armed.rto == rto
    }

    /// Forgets the note of [`note_probe_armed`](Self::note_probe_armed).
    #[inline(always)]
    fn forget_probe_armed(&mut self) {
        self.probe_armed.now = None;
    }

    /// The earlier of the two deadlines.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.reorder_at.into_iter().chain(self.probe_at).min()
    }

    /// The record limit for a send buffer of `send_buffer` octets: one record per 128 octets
    /// of it (a full buffer of 1-octet segments is held in fewer, larger records), at least 64.
    pub(crate) fn limit_for(send_buffer: usize) -> usize {
        (send_buffer / 128).max(64)
    }

    /// The records' capacity: what the scoreboard's memory is bounded by.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.segments.len()
    }

    /// The recovery in progress, if any.
    pub(crate) fn recovery(&self) -> Option<Recovery> {
        self.recovery.map(|(kind, _)| kind)
    }

    /// Start and end of record `index`.
    fn bounds(&self, index: usize) -> Option<(SeqNum, SeqNum)> {
        let record = self.segments.get(index)?;
        let start = match index.checked_sub(1) {
            Some(before) => self.segments.get(before).map_or(self.head, |prev| prev.end),
            None => self.head,
        };
        Some((start, record.end))
    }

    /// Iterates `(start, end, record)` in sequence order.
    fn records(&self) -> impl Iterator<Item = (SeqNum, SeqNum, &Sent)> + '_ {
        let mut start = self.head;
        self.segments.iter().map(move |record| {
            let from = start;
            start = record.end;
            (from, record.end, record)
        })
    }

    /// New data `[start, end)` went out at `now` (SND.NXT moved from `start` to `end`).
    pub(crate) fn on_sent(&mut self, start: SeqNum, end: SeqNum, now: Instant) {
        if let Some(prr) = self.prr.as_mut() {
            prr.on_sent(end.since(start));
        }
        if self.segments.is_empty() {
            self.head = start;
        }
        if self.segments.len() >= self.limit {
            self.on_sent_at_limit(end, now);
            return;
        }
        self.segments.push_back(Sent { end, sent_at: now, marks: Marks::default() });
        self.debug_check();
    }

    /// `on_sent` with the records at their limit. Kept out of it (rare: the limit is sized
    /// for the largest flight), so the common path saves no registers for it.
    #[cold]
    #[inline(never)]
    fn on_sent_at_limit(&mut self, end: SeqNum, now: Instant) {
        let plain = Marks::default();
        if let Some(last) = self.segments.back_mut()
            && last.marks == plain
        {
            // At the limit: the segment joins the last record, which now counts as sent at
            // `now` (RACK then waits for the later of the two: never a spurious loss).
            last.end = end;
            last.sent_at = now;
            return;
        }
        if self.segments.len() > self.limit {
            // Over the limit with a marked last record (the peer SACKs as we send): make
            // room by joining two neighbours with the same marks (their union means what
            // both did; the later send time keeps RACK from judging early).
            self.join_a_pair();
        }
        self.segments.push_back(Sent { end, sent_at: now, marks: plain });
        self.debug_check();
    }

    /// Joins the first two neighbouring records with the same marks; failing that (marks
    /// alternate all the way), forgets the marks of the two oldest records and joins them:
    /// the scoreboard is advisory (RFC 2018 §8), memory is not.
    fn join_a_pair(&mut self) {
        let pair = (1..self.segments.len()).find(|&i| {
            let marks = |j: usize| self.segments.get(j).map(|r| r.marks);
            marks(i - 1) == marks(i)
        });
        let index = pair.unwrap_or(1);
        let Some(earlier) = self.segments.remove(index - 1) else { return };
        if let Some(later) = self.segments.get_mut(index - 1) {
            later.sent_at = later.sent_at.max(earlier.sent_at);
            if pair.is_none() {
                later.marks = Marks::default();
            }
        }
        (self.sacked_segments, self.retransmitted_segments, self.awaiting_resend) =
            self.count_marks();
    }

    /// Records SACKed, records retransmitted but not SACKed, and records awaiting a resend,
    /// counted from the marks.
    fn count_marks(&self) -> (u32, u32, u32) {
        let mut counts = (0, 0, 0);
        for record in &self.segments {
            if record.marks.has(Marks::SACKED) {
                counts.0 += 1;
            } else if record.marks.has(Marks::RETRANSMITTED) {
                counts.1 += 1;
            }
            if record.marks.awaits_resend() {
                counts.2 += 1;
            }
        }
        counts
    }

    /// The index of the first record ending after `seq`: records are in sequence order, so a
    /// binary search finds it (`len()` when none does). `seq` at or after the head.
    fn first_ending_after(&self, seq: SeqNum) -> usize {
        // Distances from the head order the records whatever the wrap of the sequence space.
        let offset = seq.since(self.head);
        self.segments.partition_point(|record| record.end.since(self.head) <= offset)
    }

    /// Splits the record holding `seq` so that a record starts there (no-op at a boundary or
    /// outside the records).
    fn split_at(&mut self, seq: SeqNum) {
        if self.segments.len() > self.limit {
            // Memory stays bounded whatever blocks a peer sends: past the limit a record is
            // no longer split, so a block covering part of it does not mark it (the
            // scoreboard is advisory, RFC 2018 §8).
            return;
        }
        if !seq.after(self.head) {
            return;
        }
        let index = self.first_ending_after(seq);
        let Some((start, end)) = self.bounds(index) else { return };
        if !(start.before(seq) && seq.before(end)) {
            return;
        }
        if let Some(&record) = self.segments.get(index) {
            // The front part keeps the record's marks and send time.
            self.segments.insert(index, Sent { end: seq, ..record });
            if record.marks.has(Marks::SACKED) {
                self.sacked_segments += 1;
            } else if record.marks.has(Marks::RETRANSMITTED) {
                self.retransmitted_segments += 1;
            }
            if record.marks.awaits_resend() {
                self.awaiting_resend += 1;
            }
        }
    }

    /// Whether recovery's first retransmission is still owed (RFC 6675 §5 step (4.3)).
    pub(crate) fn first_resend_due(&self) -> bool {
        self.first_resend_due
    }

    /// `[start, end)` was sent again at `now`: by NextSeg, the retransmission timer, a probe
    /// or a resend at a smaller path MTU.
    pub(crate) fn on_retransmitted(&mut self, start: SeqNum, end: SeqNum, now: Instant) {
        self.first_resend_due = false;
        if let Some(prr) = self.prr.as_mut() {
            prr.on_sent(end.since(start));
        }
        self.split_at(start);
        self.split_at(end);
        let mut counted = 0;
        let mut resent = 0;
        // Only the records from the one holding `start` on can lie inside: start there.
        let first = if start.after(self.head) { self.first_ending_after(start) } else { 0 };
        let mut from = self.bounds(first).map_or(self.head, |(record_start, _)| record_start);
        for record in self.segments.range_mut(first..) {
            let record_start = from;
            from = record.end;
            if record.end.after(end) {
                break;
            }
            if record_start.before(start) {
                continue;
            }
            if record.marks.awaits_resend() {
                resent += 1;
            }
            if !record.marks.has(Marks::RETRANSMITTED | Marks::SACKED) {
                counted += 1;
            }
            record.marks.set(Marks::RETRANSMITTED);
            record.sent_at = now;
        }
        self.retransmitted_segments += counted;
        self.awaiting_resend = self.awaiting_resend.saturating_sub(resent);
        self.debug_check();
    }

    /// The scoreboard's own consistency, checked after every change in debug builds (and so
    /// under the fuzzers, which run with debug assertions): records strictly increasing from
    /// the head, the counters equal to the marks they count, and at most one record past the
    /// limit.
    fn debug_check(&self) {
        if cfg!(debug_assertions) {
            let mut from = self.head;
            for record in &self.segments {
                debug_assert!(from.before(record.end), "records out of order");
                from = record.end;
            }
            let (sacked, retransmitted, awaiting) = self.count_marks();
            debug_assert_eq!(sacked, self.sacked_segments, "SACKed count");
            debug_assert_eq!(retransmitted, self.retransmitted_segments, "retransmitted count");
            debug_assert_eq!(awaiting, self.awaiting_resend, "awaiting-resend count");
            debug_assert!(self.segments.len() <= self.limit + 1, "record limit");
        }
    }

    /// RFC 6675 §4 SetPipe, with RACK's marks for IsLost: octets between SND.UNA and SND.NXT
    /// that are not SACKed count once if not deemed lost and once more if retransmitted.
    pub(crate) fn pipe(&self, snd_una: SeqNum) -> u32 {
        let mut pipe = 0u32;
        for (start, end, record) in self.records() {
            if record.marks.has(Marks::SACKED) || !end.after(snd_una) {
                continue;
            }
            let len = end.since(start.max_seq(snd_una));
            if !record.marks.has(Marks::LOST) {
                pipe = pipe.saturating_add(len);
            }
            if record.marks.has(Marks::RETRANSMITTED) {
                pipe = pipe.saturating_add(len);
            }
        }
        pipe
    }

    /// RFC 6675 §4 NextSeg rule (1), RACK's marks standing in for IsLost: the first octet of
    /// the first segment deemed lost and not yet sent again, and where the run of such
    /// segments ends (a retransmission never runs into SACKed data).
    pub(crate) fn next_lost(&self, snd_una: SeqNum) -> Option<(SeqNum, SeqNum)> {
        if self.awaiting_resend == 0 {
            return None;
        }
        let mut run: Option<(SeqNum, SeqNum)> = None;
        for (start, end, record) in self.records() {
            if !end.after(snd_una) {
                continue;
            }
            match (run, record.marks.awaits_resend()) {
                (None, true) => run = Some((start.max_seq(snd_una), end)),
                (Some((from, _)), true) => run = Some((from, end)),
                (Some(_), false) => break,
                (None, false) => {}
            }
        }
        run
    }

    /// Where the last segment sent starts: the one a loss probe sends again when there is no
    /// new data (RFC 8985 §7.3).
    pub(crate) fn last_segment_start(&self) -> Option<SeqNum> {
        let last = self.segments.len().checked_sub(1)?;
        self.bounds(last).map(|(start, _)| start)
    }

    /// Octets from `seq` up to the first SACKed record after it (`u32::MAX` when none): how
    /// far a retransmission from `seq` may run.
    pub(crate) fn unsacked_from(&self, seq: SeqNum) -> u32 {
        self.records()
            .find(|(_, end, record)| record.marks.has(Marks::SACKED) && end.after(seq))
            .map_or(u32::MAX, |(start, _, _)| if start.after(seq) { start.since(seq) } else { 0 })
    }

    /// Where the SACKed data holding `seq` ends (the next octet not SACKed after it), or `None`
    /// when `seq` is not SACKed: how far a go-back resend skips.
    pub(crate) fn sacked_end_from(&self, seq: SeqNum) -> Option<SeqNum> {
        let mut sacked_end = None;
        for (start, end, record) in self.records() {
            if !end.after(seq) {
                continue;
            }
            let covers = start.before_eq(sacked_end.unwrap_or(seq));
            if !record.marks.has(Marks::SACKED) || !covers {
                break;
            }
            sacked_end = Some(end);
        }
        sacked_end
    }

    /// RFC 6675 §5 step (2)–(4) without SACK information: the segment holding `seq` is
    /// deemed lost (the third duplicate ACK).
    pub(crate) fn mark_lost_at(&mut self, seq: SeqNum) {
        if seq.before(self.head) {
            return;
        }
        let index = self.first_ending_after(seq);
        if let Some(record) = self.segments.get_mut(index)
            && !record.marks.has(Marks::SACKED | Marks::RETRANSMITTED | Marks::LOST)
        {
            record.marks.set(Marks::LOST);
            self.awaiting_resend += 1;
        }
        self.debug_check();
    }

    /// Whether a SACKed record of at least `mss` octets is held: the receiver got a
    /// full-sized segment (the black-hole fall-back's evidence against a size problem).
    pub(crate) fn holds_sacked_full_segment(&self, mss: u16) -> bool {
        self.sacked_segments > 0
            && self.records().any(|(start, end, record)| {
                record.marks.has(Marks::SACKED) && end.since(start) >= u32::from(mss)
            })
    }

    /// Whether any octet of `[start, end)` is SACKed (NextSeg never resends such data).
    #[cfg(test)]
    fn any_sacked(&self, start: SeqNum, end: SeqNum) -> bool {
        self.records().any(|(s, e, record)| {
            record.marks.has(Marks::SACKED) && s.before(end) && start.before(e)
        })
    }

    /// The ACK of `seg_ack` (SND.UNA before it: `snd_una`) with SACK `blocks` arrived at `now`
    /// (RFC 6675 §5 steps, RFC 8985 §6.2). `srtt` caps RACK's reordering window; `snd_nxt` is
    /// HighData.
    pub(crate) fn on_ack(
        &mut self,
        now: Instant,
        snd_una: SeqNum,
        seg_ack: SeqNum,
        snd_nxt: SeqNum,
        blocks: &[SackBlock],
        srtt: Option<Duration>,
    ) -> AckNews {
        // The ACK may judge the probe or end the recovery (`probe_armed`).
        self.forget_probe_armed();
        let mut news = AckNews::default();
        self.delivered = 0;
        self.newly_sacked = 0;
        let cumulative = seg_ack.after(snd_una);
        let dsack = dsack_block(blocks, seg_ack).is_some();
        news.dsack = dsack;
        if dsack {
            self.judge_probe_by_dsack(blocks.first().copied());
        }
        let sack_blocks = blocks.get(usize::from(dsack)..).unwrap_or(&[]);
        let fack_before = self.rack.fack;
        for block in sack_blocks {
            // RFC 2018 §4: blocks describe data between SND.UNA and SND.NXT; anything else
            // is a bug or an attack and is ignored (never trusted past what we sent).
            let valid = block.left.before(block.right)
                && block.right.before_eq(snd_nxt)
                && block.left.after_eq(seg_ack.min_seq(snd_una));
            // Reordering is judged against RACK.fack as it was before this ACK: its blocks come
            // newest first, so a lower block of the same ACK is no evidence of reordering.
            let left = block.left.max_seq(seg_ack);
            if valid && self.mark_sacked(now, left, block.right, fack_before) {
                news.newly_sacked = true;
            }
        }
        if cumulative {
            self.deliver_cumulative(now, seg_ack);
        }
        news.probe_repaired_loss = self.judge_probe_by_ack(seg_ack, cumulative, news);
        if let Some((_, point)) = self.recovery
            && seg_ack.after_eq(point)
        {
            // RFC 6675 §5 (A): recovery ends; cwnd stays at ssthresh (nothing to tell the
            // controller), and so does PRR (RFC 6937 §3: cwnd = ssthresh on the way out).
            self.recovery = None;
            self.prr = None;
            self.rack.reo_wnd_persist = self.rack.reo_wnd_persist.saturating_sub(1);
            if self.rack.reo_wnd_persist == 0 {
                self.rack.reo_wnd_mult = 1;
                self.rack.reo_wnd_persist = REO_WND_PERSIST;
            }
        }
        self.update_reordering_window_on_dsack(dsack, seg_ack, snd_nxt);
        news.detection = self.detect_losses(now, seg_ack.max_seq(snd_una), srtt);
        news.delivered = self.delivered;
        news.newly_sacked_octets = self.newly_sacked;
        self.echoes_originals = false;
        self.debug_check();
        news
    }

    /// Marks `[left, right)` SACKed, splitting records at the block's edges; returns whether
    /// anything was newly SACKed. Each newly SACKed record was delivered (RACK step 2).
    fn mark_sacked(
        &mut self,
        now: Instant,
        left: SeqNum,
        right: SeqNum,
        fack: Option<SeqNum>,
    ) -> bool {
        if !left.before(right) {
            return false;
        }
        // Only whole records are SACKed: split at the edges when a block covers part of one
        // (the receiver saw a different segmentation, or a resend at a smaller MTU).
        self.split_at(left);
        self.split_at(right);
        let mut any = false;
        let mut newest: Option<(Instant, SeqNum, bool)> = None;
        let mut highest_end: Option<SeqNum> = None;
        let mut reordered = false;
        let mut sacked = 0;
        let mut retransmitted_delivered = 0;
        let mut awaited = 0;
        // Only the records from the one holding `left` on can lie inside: start there.
        let first = if left.after(self.head) { self.first_ending_after(left) } else { 0 };
        let mut from = self.bounds(first).map_or(self.head, |(start, _)| start);
        for record in self.segments.range_mut(first..) {
            let start = from;
            from = record.end;
            if record.end.after(right) {
                break;
            }
            if start.before(left) || record.marks.has(Marks::SACKED) {
                continue;
            }
            if record.marks.awaits_resend() {
                awaited += 1;
            }
            record.marks.set(Marks::SACKED);
            sacked += 1;
            any = true;
            self.delivered = self.delivered.saturating_add(record.end.since(start));
            self.newly_sacked = self.newly_sacked.saturating_add(record.end.since(start));
            let retransmitted = record.marks.has(Marks::RETRANSMITTED);
            if retransmitted {
                retransmitted_delivered += 1;
            }
            // RFC 8985 §6.2 step 3: delivered below the highest delivered end, and never
            // retransmitted: the network reordered it.
            if !retransmitted && fack.is_some_and(|fack| record.end.before(fack)) {
                reordered = true;
            }
            highest_end = Some(highest_end.map_or(record.end, |end| end.max_seq(record.end)));
            let candidate = (record.sent_at, record.end, retransmitted);
            if newest.is_none_or(|(at, end, _)| Self::sent_after(candidate.0, candidate.1, at, end))
            {
                newest = Some(candidate);
            }
        }
        self.sacked_segments += sacked;
        self.retransmitted_segments =
            self.retransmitted_segments.saturating_sub(retransmitted_delivered);
        self.awaiting_resend = self.awaiting_resend.saturating_sub(awaited);
        if reordered {
            self.rack.reordering_seen = true;
        }
        if let Some((sent_at, end, retransmitted)) = newest {
            self.on_delivered(now, sent_at, end, retransmitted);
        }
        if let Some(end) = highest_end
            && self.rack.fack.is_none_or(|fack| end.after(fack))
        {
            self.rack.fack = Some(end);
        }
        any
    }

    /// Trims records up to `seg_ack`; the records it delivered for the first time (not
    /// SACKed before) feed RACK.
    fn deliver_cumulative(&mut self, now: Instant, seg_ack: SeqNum) {
        let mut newest: Option<(Instant, SeqNum, bool)> = None;
        if self.sacked_segments == 0
            && self.retransmitted_segments == 0
            && self.awaiting_resend == 0
            && self.segments.get(1).is_some_and(|second| !second.end.after(seg_ack))
        {
            // No record carries a mark (the counts would show it) and several are
            // acknowledged: what the loop below does for each record, without its tests, and
            // the records dropped at once. (For one record the loop is cheaper.)
            newest = self.deliver_unmarked(seg_ack);
        }
        while let Some(&record) = self.segments.front() {
            if record.end.after(seg_ack) {
                break;
            }
            self.segments.pop_front();
            let start = core::mem::replace(&mut self.head, record.end);
            if record.marks.awaits_resend() {
                self.awaiting_resend = self.awaiting_resend.saturating_sub(1);
            }
            if record.marks.has(Marks::SACKED) {
                self.sacked_segments = self.sacked_segments.saturating_sub(1);
                continue;
            }
            // Delivered now, not SACKed before: DeliveredData counts it (RFC 6937 §2).
            self.delivered = self.delivered.saturating_add(record.end.since(start));
            let retransmitted = record.marks.has(Marks::RETRANSMITTED);
            if retransmitted {
                self.retransmitted_segments = self.retransmitted_segments.saturating_sub(1);
            }
            let candidate = (record.sent_at, record.end, retransmitted);
            if newest.is_none_or(|(at, end, _)| Self::sent_after(candidate.0, candidate.1, at, end))
            {
                newest = Some(candidate);
            }
        }
        if self.head.before(seg_ack) {
            // Part of the first record is acknowledged; the rest stays in flight.
            let sacked = self.segments.front().is_some_and(|first| first.marks.has(Marks::SACKED));
            if !sacked {
                self.delivered = self.delivered.saturating_add(seg_ack.since(self.head));
            }
            self.head = seg_ack;
        }
        if self.segments.is_empty() {
            self.head = seg_ack;
        }
        if let Some((sent_at, end, retransmitted)) = newest {
            self.on_delivered(now, sent_at, end, retransmitted);
        }
    }

    /// `deliver_cumulative`'s loop for a scoreboard without marks (no record SACKed, deemed
    /// lost or retransmitted), a bulk sender's every ACK: each record up to `seg_ack` is
    /// delivered now (DeliveredData: the octets from the head to its end, RFC 6937 §2), and
    /// the one sent last (RFC 8985's `RACK_sent_after`) is returned for `on_delivered`.
    /// The records go in one drain rather than one by one. The caller checked that the
    /// second record ends at or before `seg_ack`, so `seg_ack` is past the head.
    fn deliver_unmarked(&mut self, seg_ack: SeqNum) -> Option<(Instant, SeqNum, bool)> {
        // Records end in sequence order: a binary search finds those acknowledged.
        let acked = self.first_ending_after(seg_ack);
        let end_of_acked = self.segments.get(acked.checked_sub(1)?)?.end;
        // Among records in sequence order, `sent_after` prefers the later send time and, at
        // an equal one, the later record: the last with the latest `sent_at`. One plain
        // comparison per record, over both halves of the ring at once (a stretch ACK of
        // hundreds of records paid the general test and the ring's wrap check for each).
        let newest =
            self.segments.range(..acked).fold(None, |newest: Option<&Sent>, record| match newest {
                Some(best) if record.sent_at < best.sent_at => Some(best),
                _ => Some(record),
            });
        let newest = newest.map(|record| (record.sent_at, record.end, false));
        self.delivered = self.delivered.saturating_add(end_of_acked.since(self.head));
        self.head = end_of_acked;
        self.segments.drain(..acked);
        newest
    }

    /// RFC 8985 §6.2 step 2 for a delivered segment: a retransmitted one whose RTT is below
    /// the minimum is ambiguous (the original may have been delivered) and is skipped.
    fn on_delivered(&mut self, now: Instant, sent_at: Instant, end: SeqNum, retransmitted: bool) {
        let rtt = now.saturating_duration_since(sent_at);
        let ambiguous = self.echoes_originals || self.rack.min_rtt.is_some_and(|min| rtt < min);
        if retransmitted && ambiguous {
            return;
        }
        if !retransmitted {
            self.rack.min_rtt = Some(self.rack.min_rtt.map_or(rtt, |min| min.min(rtt)));
        }
        let newer = self
            .rack
            .newest_delivered
            .is_none_or(|(at, newest_end)| Self::sent_after(sent_at, end, at, newest_end));
        if newer {
            self.rack.rtt = rtt;
            self.rack.newest_delivered = Some((sent_at, end));
        }
        if self.rack.fack.is_none_or(|fack| end.after(fack)) {
            self.rack.fack = Some(end);
        }
    }

    /// RFC 8985 §6.2: `RACK_sent_after(t1, seq1, t2, seq2)`.
    fn sent_after(t1: Instant, seq1: SeqNum, t2: Instant, seq2: SeqNum) -> bool {
        t1 > t2 || (t1 == t2 && seq1.after(seq2))
    }

    /// RFC 8985 §6.2 step 4, the D-SACK part: widen the reordering window once per round
    /// trip in which D-SACKs arrive.
    fn update_reordering_window_on_dsack(&mut self, dsack: bool, seg_ack: SeqNum, snd_nxt: SeqNum) {
        if self.rack.dsack_round.is_some_and(|round| seg_ack.after_eq(round)) {
            self.rack.dsack_round = None;
        }
        if dsack && self.rack.dsack_round.is_none() {
            self.rack.reo_wnd_mult = self.rack.reo_wnd_mult.saturating_add(1);
            self.rack.reo_wnd_persist = REO_WND_PERSIST;
            self.rack.dsack_round = Some(snd_nxt);
            self.rack.reordering_seen = true;
        }
    }

    /// RFC 8985 §6.2 step 4: `RACK.reo_wnd`.
    pub(crate) fn reordering_window(&self, srtt: Option<Duration>) -> Duration {
        if !self.rack.reordering_seen
            && (self.recovery.is_some() || self.sacked_segments >= DUP_THRESH)
        {
            return Duration::ZERO;
        }
        let Some(min_rtt) = self.rack.min_rtt else { return Duration::ZERO };
        let window = (min_rtt / 4).saturating_mul(self.rack.reo_wnd_mult);
        srtt.map_or(window, |srtt| window.min(srtt))
    }

    /// RFC 8985 §6.2 step 5: marks lost every record sent before the newest delivered one
    /// whose reordering window has passed; returns how many were marked and, when some are
    /// still within their window, when the reordering timer should fire (§6.3).
    pub(crate) fn detect_losses(
        &mut self,
        now: Instant,
        snd_una: SeqNum,
        srtt: Option<Duration>,
    ) -> Detection {
        let mut found = Detection::default();
        let Some((newest_at, newest_end)) = self.rack.newest_delivered else { return found };
        let in_flight = |record: &Sent| {
            record.end.after(snd_una)
                && !record.marks.has(Marks::SACKED)
                && !record.marks.awaits_resend()
        };
        if self.sacked_segments == 0 && self.retransmitted_segments == 0 {
            // Fast path: with nothing SACKed and no retransmission in flight, the records in
            // flight were sent in sequence order, so if the first was not sent before the
            // newest delivered segment, none was.
            let first = self.segments.iter().find(|record| in_flight(record));
            let judged = first.is_some_and(|record| {
                Self::sent_after(newest_at, newest_end, record.sent_at, record.end)
            });
            if !judged {
                return found;
            }
        }
        let reo_wnd = self.reordering_window(srtt);
        let wait = self.rack.rtt.saturating_add(reo_wnd);
        for record in &mut self.segments {
            if !in_flight(record)
                || !Self::sent_after(newest_at, newest_end, record.sent_at, record.end)
            {
                continue;
            }
            let deadline = record.sent_at.saturating_add(wait);
            if deadline <= now {
                if record.marks.has(Marks::RETRANSMITTED) {
                    // Its retransmission was lost too: it needs sending again (RFC 8985 §6.2
                    // step 5 covers retransmissions as well).
                    record.marks.clear(Marks::RETRANSMITTED);
                    found.lost_retransmissions += 1;
                }
                record.marks.set(Marks::LOST);
                found.lost += 1;
                // Not SACKed and not awaiting before (`in_flight`): it awaits a resend now.
                self.awaiting_resend += 1;
            } else {
                // RFC 8985 §6.2 step 5: the timer waits for the last of them.
                found.reorder_at = Some(found.reorder_at.map_or(deadline, |at| at.max(deadline)));
            }
        }
        self.retransmitted_segments =
            self.retransmitted_segments.saturating_sub(found.lost_retransmissions);
        found
    }

    /// Enters recovery (RFC 6675 §5 step 4 or §5.1) with RecoveryPoint `high_data`.
    pub(crate) fn enter_recovery(&mut self, kind: Recovery, high_data: SeqNum) {
        self.forget_probe_armed();
        self.recovery = Some((kind, high_data));
        self.prr = None;
        self.first_resend_due = kind == Recovery::Fast;
        self.probe_due = false;
        self.probe_sent = None;
    }

    /// PRR begins for the fast recovery just entered. RFC 9937's RecoverFS is pipe when
    /// recovery begins: here pipe as it stood before the ACK that began it (`flight` octets
    /// from SND.UNA then, less those SACKed before it: the ACK's `newly_sacked` octets and
    /// the losses it revealed are news PRR counts as it goes, in prr_delivered and pipe).
    pub(crate) fn start_prr(&mut self, flight: u32, newly_sacked: u32) {
        if self.recovery() == Some(Recovery::Fast) {
            let sacked_before = self.sacked_octets().saturating_sub(newly_sacked);
            self.prr = Some(Prr::new(flight.saturating_sub(sacked_before)));
        }
    }

    /// Octets SACKed (RFC 6937's SACKd).
    fn sacked_octets(&self) -> u32 {
        self.records()
            .filter(|(_, _, record)| record.marks.has(Marks::SACKED))
            .fold(0u32, |sum, (start, end, _)| sum.saturating_add(end.since(start)))
    }

    /// PRR's state, while a fast recovery runs.
    pub(crate) fn prr(&self) -> Option<&Prr> {
        self.prr.as_ref()
    }

    /// PRR's state, while a fast recovery runs.
    pub(crate) fn prr_mut(&mut self) -> Option<&mut Prr> {
        self.prr.as_mut()
    }

    /// Whether a segment deemed lost waits to be sent again.
    pub(crate) fn has_lost(&self, snd_una: SeqNum) -> bool {
        self.next_lost(snd_una).is_some()
    }

    /// The recovery in progress was spurious (RFC 3522 / RFC 3708 proved the originals
    /// arrived): it ends, and segments deemed lost but not yet sent again are in flight after
    /// all, so they are not sent again (RFC 4015 §3, RFC 5682: after a spurious timeout, new
    /// data goes rather than the rest of the flight).
    ///
    /// The ACK that proved it acknowledges originals: the next [`Scoreboard::on_ack`] does
    /// not take a retransmitted segment's delivery for RACK's newest (RFC 8985 §6.2 step 2),
    /// which would make everything sent before the retransmission look lost.
    pub(crate) fn undo_recovery(&mut self) {
        self.echoes_originals = true;
        if self.recovery.take().is_none() {
            return;
        }
        self.prr = None;
        self.first_resend_due = false;
        for record in &mut self.segments {
            if record.marks.awaits_resend() {
                record.marks.clear(Marks::LOST);
            }
        }
        self.awaiting_resend = 0;
        self.debug_check();
    }

    /// The retransmission timer expired (RFC 6675 §5.1, RFC 8985 §6.3): every segment not
    /// SACKed is deemed lost and goes again; with the segment at SND.UNA SACKed the receiver
    /// reneged (RFC 2018 §8), so every SACK is forgotten and everything goes again.
    pub(crate) fn on_timeout(&mut self, snd_una: SeqNum, high_data: SeqNum) {
        let reneged = self
            .segments
            .front()
            .is_some_and(|first| first.marks.has(Marks::SACKED) && first.end.after(snd_una));
        for record in &mut self.segments {
            if reneged {
                record.marks.clear(Marks::SACKED);
            }
            if !record.marks.has(Marks::SACKED) {
                record.marks.set(Marks::LOST);
                record.marks.clear(Marks::RETRANSMITTED);
            }
        }
        if reneged {
            self.sacked_segments = 0;
        }
        self.retransmitted_segments = 0;
        self.awaiting_resend = self.count_marks().2;
        self.enter_recovery(Recovery::Timeout, high_data);
        self.prr = None;
        self.debug_check();
    }

    /// Whether a tail loss probe may be scheduled (RFC 8985 §7.2): not after a timeout, and no
    /// probe awaiting judgement.
    ///
    /// RFC 8985 §7.2 schedules no probe in a fast recovery either; here one is, for the tail
    /// of the recovery itself. RACK finds a lost retransmission only from the delivery of
    /// something sent after it (§6.2 step 5), and PRR (RFC 6937 §3) often spends a whole
    /// ACK's allowance on retransmissions: with super-segments one drop then loses every
    /// retransmission in flight, no ACK comes back, and only the retransmission timer was
    /// left — 200 ms or more for a path of a millisecond. That is a tail loss exactly as §7.1
    /// describes it, so the same remedy applies: after PTO without an ACK, one segment goes
    /// (`Connection::send_loss_probe`) whose SACK lets RACK judge what was sent before it.
    /// The recovery already reduced the window, so such a probe owes no congestion response
    /// (§7.4 is about losses no recovery answered), and any ACK with news judges it.
    pub(crate) fn may_schedule_probe(&self) -> bool {
        let recovery_allows = self.recovery.is_none_or(|(kind, _)| kind == Recovery::Fast);
        recovery_allows && self.probe_sent.is_none() && !self.probe_due
    }

    /// Where a loss probe in a fast recovery resends from when no lost segment waits and no
    /// new data may go: the segment sent last of those neither SACKed nor cumulatively
    /// acknowledged (RFC 8985 §7.3 resends the last segment sent; in recovery that is the
    /// newest retransmission, and its delivery lets RACK judge every one sent before it).
    pub(crate) fn newest_unsacked_start(&self, snd_una: SeqNum) -> Option<SeqNum> {
        let mut newest: Option<(Instant, SeqNum, SeqNum)> = None;
        for (start, end, record) in self.records() {
            if record.marks.has(Marks::SACKED) || !end.after(snd_una) {
                continue;
            }
            if newest.is_none_or(|(at, newest_end, _)| {
                Self::sent_after(record.sent_at, end, at, newest_end)
            }) {
                newest = Some((record.sent_at, end, start.max_seq(snd_una)));
            }
        }
        newest.map(|(_, _, start)| start)
    }

    /// The probe timer expired: the next transmission is a loss probe.
    pub(crate) fn on_probe_timeout(&mut self) {
        self.forget_probe_armed();
        self.probe_due = true;
    }

    /// Whether a loss probe is due.
    pub(crate) fn probe_due(&self) -> bool {
        self.probe_due
    }

    /// A loss probe ending at `end` went out (RFC 8985 §7.3: `TLP.end_seq = SND.NXT`).
    pub(crate) fn on_probe_sent(&mut self, end: SeqNum, retransmission: bool) {
        self.forget_probe_armed();
        self.probe_due = false;
        let in_recovery = self.recovery.is_some();
        self.probe_sent = Some(ProbeSent { end, retransmission, in_recovery });
    }

    /// No probe could be sent after all (nothing outstanding or sendable).
    pub(crate) fn cancel_probe(&mut self) {
        self.forget_probe_armed();
        self.probe_due = false;
    }

    /// RFC 8985 §7.4.1: a D-SACK for exactly the probe's retransmission shows the original
    /// arrived too: nothing was lost.
    fn judge_probe_by_dsack(&mut self, dsack: Option<SackBlock>) {
        if let (Some(probe), Some(block)) = (self.probe_sent, dsack)
            && probe.retransmission
            && block.right == probe.end
        {
            self.probe_sent = None;
        }
    }

    /// RFC 8985 §7.4.2: an ACK past the probe's end after a retransmitted probe means the
    /// probe repaired a loss (returns `true`: the congestion response is owed); an ACK of
    /// exactly its end that brings no news is the receiver's answer to a duplicate (no loss).
    fn judge_probe_by_ack(&mut self, seg_ack: SeqNum, cumulative: bool, news: AckNews) -> bool {
        let Some(probe) = self.probe_sent else { return false };
        if probe.in_recovery {
            // The recovery answers for the losses; any news makes room for the next probe.
            if cumulative || news.newly_sacked || news.dsack {
                self.probe_sent = None;
            }
            return false;
        }
        if !probe.retransmission {
            // A probe of new data: RACK judges any loss it reveals.
            if seg_ack.after_eq(probe.end) {
                self.probe_sent = None;
            }
            return false;
        }
        if seg_ack.after(probe.end) {
            self.probe_sent = None;
            return true;
        }
        if seg_ack == probe.end && !cumulative && !news.newly_sacked && !news.dsack {
            self.probe_sent = None;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use alloc::string::String;
    use alloc::vec::Vec;

    use super::*;

    const MSS: u32 = 1000;
    const RTT: Duration = Duration::from_millis(100);

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn seq(n: u32) -> SeqNum {
        SeqNum::new(n)
    }

    fn block(left: u32, right: u32) -> SackBlock {
        SackBlock { left: seq(left), right: seq(right) }
    }

    /// Ten segments of MSS from 0, sent 1 ms apart from t = 0.
    fn ten_sent() -> Scoreboard {
        let mut board = Scoreboard::new(1024);
        for i in 0..10 {
            board.on_sent(seq(i * MSS), seq((i + 1) * MSS), at(u64::from(i)));
        }
        board
    }

    /// The scenario of RFC 6937 §3.1's examples, counted in segments (MSS = 1): 20 segments
    /// in flight (cwnd = FlightSize = pipe = 20), `lost` of them dropped, one ACK (with SACK)
    /// for each of the others; Limited Transmit (RFC 3042) sends a new segment on each of the
    /// first two duplicate ACKs, the third starts recovery with ssthresh = 10 and RecoverFS =
    /// 20. A segment is lost once three segments above it are SACKed (RFC 6675 IsLost), pipe
    /// is RFC 6675's. Returns, per ACK from the first duplicate, what went (`N` new, `R`
    /// retransmitted) and pipe before it went.
    fn rfc_6937_example(lost: &[u32], conservative: bool) -> Vec<(String, u32)> {
        let mut sent_end = 20u32;
        let mut sacked = [false; 64];
        let mut deemed_lost = [false; 64];
        let mut resent = [false; 64];
        let mut prr: Option<Prr> = None;
        let mut rows = Vec::new();
        for ack in (0..20).filter(|s| !lost.contains(s)) {
            sacked[ack as usize] = true;
            for &hole in lost {
                let above = (hole + 1..sent_end).filter(|&s| sacked[s as usize]).count();
                deemed_lost[hole as usize] |= above >= 3;
            }
            let pipe = (0..sent_end)
                .map(|s| {
                    let s = s as usize;
                    if sacked[s] { 0 } else { u32::from(!deemed_lost[s]) + u32::from(resent[s]) }
                })
                .sum::<u32>();
            let dup_acks = (0..20).filter(|&s| sacked[s as usize]).count();
            let mut went = String::new();
            if dup_acks < 3 {
                // Limited Transmit.
                went.push('N');
                sent_end += 1;
                rows.push((went, pipe));
                continue;
            }
            let prr = prr.get_or_insert_with(|| Prr::new(20));
            prr.on_ack(1, pipe, 10, 1, conservative);
            if deemed_lost.iter().zip(resent).any(|(&l, r)| l && !r) {
                prr.ensure_first_retransmission(1);
            }
            while prr.allowance() >= 1 {
                match (0..sent_end).find(|&s| deemed_lost[s as usize] && !resent[s as usize]) {
                    Some(hole) => {
                        resent[hole as usize] = true;
                        went.push('R');
                    }
                    None => {
                        sent_end += 1;
                        went.push('N');
                    }
                }
                prr.on_sent(1);
            }
            rows.push((went, pipe));
        }
        rows
    }

    /// RFC 6937 §3.1, one segment lost: with either reduction bound PRR sends on every other
    /// ACK, the retransmission first, spreading the reduction over the round trip, and pipe
    /// ends exactly at ssthresh = 10. The RFC's chart has the same pattern through ACK 16
    /// (and its pipe row the same values); its last two columns send on ACKs 18 and 19
    /// where its own pipe row (11 after ACK 18, 10 after ACK 19) leaves room for one, as here
    /// on ACK 17: CEIL(15 × 10 / 20) − 7 = 1.
    #[test]
    fn prr_sends_on_every_other_ack_after_a_single_loss_rfc_6937_3_1() {
        for conservative in [false, true] {
            let rows = rfc_6937_example(&[0], conservative);
            let sent: Vec<&str> = rows.iter().map(|(went, _)| went.as_str()).collect();
            assert_eq!(
                sent,
                [
                    "N", "N", "R", "", "N", "", "N", "", "N", "", "N", "", "N", "", "N", "", "N",
                    "", ""
                ],
                "conservative: {conservative}"
            );
            let pipe: Vec<u32> = rows.iter().map(|&(_, pipe)| pipe).collect();
            assert_eq!(
                pipe,
                [19, 19, 18, 18, 17, 17, 16, 16, 15, 15, 14, 14, 13, 13, 12, 12, 11, 11, 10]
            );
        }
    }

    /// RFC 6937 §3.1, segments 0–14 lost: five ACKs come back. The first two send new data
    /// (Limited Transmit); the third starts recovery with pipe = 4, far below ssthresh.
    /// PRR-CRB sends what was delivered, one retransmission per ACK ("b": prr_delivered −
    /// prr_out), pipe stays 4; PRR-SSRB one segment more than delivered ("d": DeliveredData
    /// + MSS), two retransmissions per ACK, pipe 4, 5, 6 — the RFC's charts exactly.
    #[test]
    fn prr_reduction_bounds_after_a_burst_of_fifteen_losses_rfc_6937_3_1() {
        let lost: Vec<u32> = (0..15).collect();
        let crb = rfc_6937_example(&lost, true);
        let expected = [("N", 19), ("N", 19), ("R", 4), ("R", 4), ("R", 4)];
        let crb: Vec<(&str, u32)> = crb.iter().map(|(went, pipe)| (went.as_str(), *pipe)).collect();
        assert_eq!(crb, expected);
        let ssrb = rfc_6937_example(&lost, false);
        let expected = [("N", 19), ("N", 19), ("RR", 4), ("RR", 5), ("RR", 6)];
        let ssrb: Vec<(&str, u32)> =
            ssrb.iter().map(|(went, pipe)| (went.as_str(), *pipe)).collect();
        assert_eq!(ssrb, expected);
    }

    /// RFC 6937 §3 arithmetic at the edges: the proportional part rounds up and banks what
    /// was not sent; the reduction bound never takes pipe past ssthresh.
    #[test]
    fn prr_sndcnt_rounds_up_and_stops_at_ssthresh_rfc_6937_3() {
        let mut prr = Prr::new(10_000);
        // CEIL(1000 × 7000 / 10000) = 700.
        assert_eq!(prr.on_ack(1000, 9000, 7000, 1000, false), 700);
        prr.on_sent(600);
        assert_eq!(prr.allowance(), 100);
        // CEIL(2000 × 7000 / 10000) − 600 = 800: what was not sent is banked.
        assert_eq!(prr.on_ack(1000, 8000, 7000, 1000, false), 800);
        prr.on_sent(800);
        // pipe ≤ ssthresh: min(ssthresh − pipe, max(3000 − 1400, 1000) + 1000) = 500.
        assert_eq!(prr.on_ack(1000, 6500, 7000, 1000, false), 500);
        assert_eq!(prr.on_ack(0, 7000, 7000, 1000, false), 0);
        // The first ACK of a recovery that found a loss: one segment, whatever sndcnt says.
        let mut prr = Prr::new(10_000);
        assert_eq!(prr.on_ack(0, 9000, 5000, 1000, false), 0);
        prr.ensure_first_retransmission(1000);
        assert_eq!(prr.allowance(), 1000);
    }

    /// PRR-SSRB's growth counts what an ACK delivered (RFC 3465 byte counting): one ACK of
    /// one segment lets DeliveredData + MSS go, as RFC 6937 says; one stretch ACK of 45
    /// segments (a GRO receiver's ACK of a super-packet) lets 90 go where RFC 6937's "+ MSS"
    /// let 46 — still never past ssthresh − pipe. PRR-CRB is unchanged.
    #[test]
    fn prr_ssrb_grows_by_what_a_stretch_ack_delivered_rfc_6937_3_rfc_3465() {
        let mut prr = Prr::new(100_000);
        assert_eq!(prr.on_ack(1000, 0, 50_000, 1000, false), 2000);
        let mut prr = Prr::new(100_000);
        assert_eq!(prr.on_ack(45_000, 0, 100_000, 1000, false), 90_000);
        let mut prr = Prr::new(100_000);
        assert_eq!(prr.on_ack(45_000, 0, 60_000, 1000, false), 60_000, "ssthresh − pipe");
        let mut prr = Prr::new(100_000);
        assert_eq!(prr.on_ack(45_000, 0, 100_000, 1000, true), 45_000, "CRB");
    }

    /// A loss probe in a fast recovery with nothing lost waiting and no new data resends the
    /// segment sent last in time that is neither SACKed nor acknowledged: the newest
    /// retransmission, not the highest segment (RFC 8985 §7.3's "last segment sent").
    #[test]
    fn a_probe_in_recovery_resends_the_newest_transmission_rfc_8985_7_3() {
        let mut board = ten_sent();
        board.on_ack(at(100), seq(0), seq(MSS), seq(10 * MSS), &[block(5000, 10_000)], Some(RTT));
        board.enter_recovery(Recovery::Fast, seq(10 * MSS));
        assert!(board.may_schedule_probe(), "a fast recovery may probe its tail");
        board.on_retransmitted(seq(2000), seq(3000), at(110));
        board.on_retransmitted(seq(MSS), seq(2000), at(111));
        assert_eq!(board.newest_unsacked_start(seq(MSS)), Some(seq(MSS)));
        assert_eq!(board.last_segment_start(), Some(seq(9000)), "SACKed: no probe there");
        board.on_probe_sent(seq(2000), true);
        // Any ACK with news judges a probe of the recovery, with no congestion response.
        let news = board.on_ack(at(200), seq(MSS), seq(2000), seq(10 * MSS), &[], Some(RTT));
        assert!(!news.probe_repaired_loss);
        assert!(board.may_schedule_probe());
        board.on_timeout(seq(2000), seq(10 * MSS));
        assert!(!board.may_schedule_probe(), "no probe after a timeout");
    }

    /// A cumulative ACK of many unmarked records (`deliver_unmarked`) feeds RACK the one sent
    /// last (RFC 8985 §6.2 step 2, `RACK_sent_after`): the latest send time, and of records
    /// sent at the same time the highest — also when send times are out of sequence order
    /// (records joined at the limit keep the later time) and when the records wrap around
    /// the ring.
    #[test]
    fn a_stretch_ack_of_unmarked_records_times_the_one_sent_last_rfc_8985_6_2() {
        let mut board = ten_sent();
        board.on_ack(at(100), seq(0), seq(8 * MSS), seq(10 * MSS), &[], Some(RTT));
        assert_eq!(board.rack.newest_delivered, Some((at(7), seq(8 * MSS))));
        for i in 10..20 {
            board.on_sent(seq(i * MSS), seq((i + 1) * MSS), at(20));
        }
        for record in &mut board.segments {
            if record.end == seq(13 * MSS) || record.end == seq(16 * MSS) {
                record.sent_at = at(30);
            }
        }
        board.on_ack(at(200), seq(8 * MSS), seq(17 * MSS), seq(20 * MSS), &[], Some(RTT));
        assert_eq!(board.rack.newest_delivered, Some((at(30), seq(16 * MSS))));
        assert_eq!(board.rack.rtt, Duration::from_millis(170));
        assert_eq!(board.delivered, 9 * MSS);
        assert_eq!(board.head, seq(17 * MSS));
        assert_eq!(board.segments.len(), 3);
    }

    #[test]
    fn sacked_records_leave_the_pipe_rfc_6675_setpipe() {
        let mut board = ten_sent();
        assert_eq!(board.pipe(seq(0)), 10 * MSS);
        // Segments 2..4 SACKed (segments 0 and 1 missing): pipe counts only the rest.
        let news =
            board.on_ack(at(100), seq(0), seq(0), seq(10 * MSS), &[block(2000, 4000)], Some(RTT));
        assert!(news.newly_sacked);
        assert_eq!(board.pipe(seq(0)), 8 * MSS);
        assert!(board.any_sacked(seq(2500), seq(2600)));
        assert!(!board.any_sacked(seq(0), seq(2000)));
    }

    /// RFC 8985 §6.2: a segment is lost once one sent after it was delivered and RACK.rtt +
    /// reo_wnd passed since it was sent. With reordering unseen and fewer than DupThresh
    /// segments SACKed, reo_wnd = min_rtt / 4; with DupThresh SACKed, zero.
    #[test]
    fn rack_marks_a_hole_lost_after_the_reordering_window_rfc_8985_6_2() {
        let mut board = ten_sent();
        // Segment 0 delivered cumulatively at 100 ms: min_rtt = RACK.rtt = 100 ms.
        board.on_ack(at(100), seq(0), seq(MSS), seq(10 * MSS), &[], Some(RTT));
        // Segment 2 SACKed at t = 102 (sent at 2): segment 1 (sent at 1) waits until
        // 1 + 100 + 25 = 126.
        let news = board.on_ack(
            at(102),
            seq(MSS),
            seq(MSS),
            seq(10 * MSS),
            &[block(2000, 3000)],
            Some(RTT),
        );
        assert_eq!(news.detection.lost, 0);
        assert_eq!(board.reordering_window(Some(RTT)), RTT / 4);
        let found = board.detect_losses(at(102), seq(MSS), Some(RTT));
        assert_eq!((found.lost, found.reorder_at), (0, Some(at(126))));
        assert_eq!(board.detect_losses(at(126), seq(MSS), Some(RTT)).lost, 1);
        assert_eq!(board.next_lost(seq(MSS)), Some((seq(MSS), seq(2 * MSS))));
    }

    #[test]
    fn three_sacked_segments_zero_the_reordering_window_rfc_8985_6_2_step_4() {
        let mut board = ten_sent();
        board.on_ack(at(100), seq(0), seq(MSS), seq(10 * MSS), &[], Some(RTT));
        let news = board.on_ack(
            at(104),
            seq(MSS),
            seq(MSS),
            seq(10 * MSS),
            &[block(2000, 5000)],
            Some(RTT),
        );
        assert_eq!(board.reordering_window(Some(RTT)), Duration::ZERO);
        // RACK.rtt = 104 − 4 = 100: segment 1 (sent at 1) is lost at 101 ≤ 104.
        assert_eq!(news.detection.lost, 1);
    }

    #[test]
    fn a_lost_retransmission_is_detected_by_a_later_delivery_rfc_8985_6_2_step_5() {
        let mut board = ten_sent();
        board.on_ack(at(100), seq(0), seq(MSS), seq(10 * MSS), &[], Some(RTT));
        board.on_ack(at(104), seq(MSS), seq(MSS), seq(10 * MSS), &[block(2000, 5000)], Some(RTT));
        assert_eq!(board.next_lost(seq(MSS)), Some((seq(MSS), seq(2 * MSS))));
        board.on_retransmitted(seq(MSS), seq(2 * MSS), at(105));
        assert_eq!(board.next_lost(seq(MSS)), None);
        // pipe: 6 segments (5..10) + the retransmission counted once (RFC 6675 SetPipe (a)+(b)
        // with the original deemed lost).
        assert_eq!(board.pipe(seq(MSS)), 6 * MSS);
        // New data sent at 106, SACKed at 206: the retransmission (sent at 105) is lost.
        board.on_sent(seq(10 * MSS), seq(11 * MSS), at(106));
        let news = board.on_ack(
            at(206),
            seq(MSS),
            seq(MSS),
            seq(11 * MSS),
            &[block(10_000, 11_000), block(2000, 5000)],
            Some(RTT),
        );
        assert!(news.detection.lost >= 1);
        assert_eq!(board.next_lost(seq(MSS)).map(|(s, _)| s), Some(seq(MSS)));
    }

    #[test]
    fn next_seg_never_runs_into_sacked_data_rfc_6675_nextseg() {
        let mut board = ten_sent();
        board.on_timeout(seq(0), seq(10 * MSS));
        assert_eq!(board.next_lost(seq(0)), Some((seq(0), seq(10 * MSS))));
        let mut board = ten_sent();
        board.on_ack(at(100), seq(0), seq(0), seq(10 * MSS), &[block(3000, 4000)], Some(RTT));
        board.on_timeout(seq(0), seq(10 * MSS));
        assert_eq!(board.next_lost(seq(0)), Some((seq(0), seq(3000))));
        board.on_retransmitted(seq(0), seq(3000), at(200));
        assert_eq!(board.next_lost(seq(0)), Some((seq(4000), seq(10 * MSS))));
    }

    #[test]
    fn a_timeout_with_snd_una_sacked_forgets_every_sack_rfc_2018_8() {
        let mut board = ten_sent();
        board.on_ack(at(100), seq(0), seq(0), seq(10 * MSS), &[block(0, 2000)], Some(RTT));
        assert!(board.any_sacked(seq(0), seq(1)));
        board.on_timeout(seq(0), seq(10 * MSS));
        assert!(!board.any_sacked(seq(0), seq(10 * MSS)), "reneged: SACKs forgotten");
        assert_eq!(board.next_lost(seq(0)), Some((seq(0), seq(10 * MSS))));
    }

    #[test]
    fn blocks_outside_what_was_sent_are_ignored_rfc_2018_4() {
        let mut board = ten_sent();
        let news = board.on_ack(
            at(100),
            seq(0),
            seq(0),
            seq(10 * MSS),
            &[block(9000, 11_000), block(5000, 4000)],
            Some(RTT),
        );
        assert!(!news.newly_sacked);
        assert_eq!(board.pipe(seq(0)), 10 * MSS);
    }

    #[test]
    fn a_partial_block_splits_the_record() {
        let mut board = ten_sent();
        board.on_ack(at(100), seq(0), seq(0), seq(10 * MSS), &[block(2500, 4000)], Some(RTT));
        assert!(board.any_sacked(seq(2500), seq(2501)));
        assert!(!board.any_sacked(seq(2000), seq(2500)));
        assert_eq!(board.pipe(seq(0)), 10 * MSS - 1500);
    }

    #[test]
    fn dsack_widens_the_reordering_window_once_per_round_rfc_8985_6_2_step_4() {
        let mut board = ten_sent();
        board.on_ack(at(100), seq(0), seq(MSS), seq(10 * MSS), &[], Some(RTT));
        let news = board.on_ack(
            at(101),
            seq(MSS),
            seq(2 * MSS),
            seq(10 * MSS),
            &[block(0, 1000)],
            Some(RTT),
        );
        assert!(news.dsack);
        assert_eq!(board.reordering_window(Some(RTT)), RTT / 2);
        board.on_ack(
            at(102),
            seq(2 * MSS),
            seq(3 * MSS),
            seq(10 * MSS),
            &[block(0, 1000)],
            Some(RTT),
        );
        assert_eq!(board.reordering_window(Some(RTT)), RTT / 2, "one widening per round trip");
        // Capped at SRTT.
        assert_eq!(board.reordering_window(Some(RTT / 8)), RTT / 8);
    }

    #[test]
    fn a_retransmitted_probe_acked_past_its_end_repaired_a_loss_rfc_8985_7_4() {
        let mut board = ten_sent();
        board.on_probe_timeout();
        board.on_retransmitted(seq(9000), seq(10_000), at(300));
        board.on_probe_sent(seq(10_000), true);
        // ACK of everything: the probe filled the hole at the tail.
        board.on_sent(seq(10_000), seq(11_000), at(301));
        let news = board.on_ack(at(400), seq(0), seq(11_000), seq(11_000), &[], Some(RTT));
        assert!(news.probe_repaired_loss);
        // A D-SACK for the probe: the original arrived, nothing was lost.
        let mut board = ten_sent();
        board.on_retransmitted(seq(9000), seq(10_000), at(300));
        board.on_probe_sent(seq(10_000), true);
        board.on_ack(at(399), seq(0), seq(10_000), seq(10_000), &[], Some(RTT));
        let news = board.on_ack(
            at(400),
            seq(10_000),
            seq(10_000),
            seq(10_000),
            &[block(9000, 10_000)],
            Some(RTT),
        );
        assert!(news.dsack);
        assert!(!news.probe_repaired_loss);
        assert!(board.may_schedule_probe());
    }

    #[test]
    fn at_the_limit_segments_join_the_last_record() {
        let mut board = Scoreboard::new(4);
        for i in 0..10 {
            board.on_sent(seq(i * 10), seq((i + 1) * 10), at(u64::from(i)));
        }
        assert_eq!(board.len(), 4);
        assert_eq!(board.pipe(seq(0)), 100);
        assert_eq!(board.last_segment_start(), Some(seq(30)));
    }
}
