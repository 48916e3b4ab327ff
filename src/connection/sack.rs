//! Selective acknowledgments on a connection: the SACK blocks our ACKs carry (RFC 2018 §4,
//! RFC 2883 D-SACK), and the sender's side — feeding the peer's blocks to the scoreboard,
//! entering and leaving RFC 6675 recovery, NextSeg, RACK's reordering timer and the tail loss
//! probe (RFC 8985), Proportional Rate Reduction during a fast recovery (RFC 6937, with RFC
//! 9937's clarifications), and taking back a window reduction that timestamps (RFC 3522) or
//! D-SACKs (RFC 3708) prove spurious (RFC 4015). The bookkeeping itself lives in
//! [`crate::recovery`]; this file decides when the connection acts on it.

use alloc::boxed::Box;

use super::{Connection, Timer, len_u32};
use crate::congestion::CongestionEvent;
use crate::recovery::{
    Episode, Recovery, Scoreboard, Verdict, WORST_CASE_DELAYED_ACK, dsack_block,
};
use crate::seq::SeqNum;
use crate::time::Instant;
use crate::wire::{SackBlock, SackBlocks, Segment};
use core::time::Duration;

/// RFC 8985 §7.2's probe timeout while there is no SRTT.
const PTO_WITHOUT_SRTT: Duration = Duration::from_secs(1);

/// [`PTO_WITHOUT_SRTT`] in microseconds, as `loss_probe_deadline` counts.
const PTO_WITHOUT_SRTT_MICROS: u64 = PTO_WITHOUT_SRTT.as_micros() as u64;

/// The peer's worst-case delayed ACK (RFC 8985 §7.2) in microseconds.
const WORST_CASE_DELAYED_ACK_MICROS: u64 = WORST_CASE_DELAYED_ACK.as_micros() as u64;

impl Connection {
    /// The SACK blocks of our next ACK: none unless SACK was negotiated and out-of-order data
    /// or a duplicate is to be reported; at most three next to timestamps, four otherwise
    /// (RFC 2018 §3: the option must fit the 40 octets).
    pub(super) fn sack_blocks(&self) -> SackBlocks {
        let Some(assembler) = self.assembler.as_ref().filter(|_| self.sack_ok) else {
            return SackBlocks::new();
        };
        if !assembler.has_report() {
            return SackBlocks::new();
        }
        let max = if self.ts.is_on() { 3 } else { 4 };
        assembler.sack_blocks(self.rcv_nxt, max)
    }

    /// Octets the SACK option of our next segment takes (two NOPs, kind, length, 8 a block):
    /// a data segment carries that much less payload, so it still fits the MSS (RFC 2018 §3).
    pub(super) fn sack_option_len(&self) -> usize {
        if self.assembler.is_none() || !self.sack_ok {
            return 0;
        }
        let blocks = self.sack_blocks().len();
        if blocks == 0 { 0 } else { 4 + 8 * blocks }
    }

    /// Whether `len` octets from `seq` include an in-window octet we do not hold yet (neither
    /// delivered nor stored out of order): data that would be new to us.
    pub(super) fn carries_new_data(&self, seq: SeqNum, len: usize) -> bool {
        let end = (seq + len_u32(len)).min_seq(self.rcv_nxt + self.rcv_acceptable_window());
        let start = seq.max_seq(self.rcv_nxt);
        if !start.before(end) {
            return false;
        }
        let (from, to) = (start.since(self.rcv_nxt), end.since(self.rcv_nxt));
        // Stored ranges are merged, so data held wholly lies within one of them.
        self.assembler.as_ref().and_then(|assembler| assembler.overlap(from, to))
            != Some((from, to))
    }

    /// A segment arrived holding `[start, end)` of which nothing is new: report it once as a
    /// D-SACK block (RFC 2883 §4).
    pub(super) fn report_duplicate(&mut self, start: SeqNum, end: SeqNum) {
        // Only octets we did receive, IRS + 1 up to RCV.NXT, can be duplicates (IRS is the
        // SYN's). Measured as distances back from RCV.NXT, so a segment from half the
        // sequence space away is never taken for one.
        let received = self.rcv_nxt.since(self.irs + 1);
        let back = |seq: SeqNum| self.rcv_nxt.since(seq);
        if back(end) > received || end.after(self.rcv_nxt) {
            return;
        }
        let start = if back(start) > received { self.irs + 1 } else { start };
        if self.sack_ok && start.before(end) {
            let assembler =
                self.assembler.get_or_insert_with(|| Box::new(crate::assembler::Assembler::new()));
            assembler.set_dsack(SackBlock { left: start, right: end });
        }
    }

    /// The D-SACK block went out (it is reported once).
    pub(super) fn on_sack_sent(&mut self) {
        if let Some(assembler) = self.assembler.as_mut() {
            assembler.clear_dsack();
        }
    }

    /// New data `[start, end)` went out at `now` (the one before it at `previous_send`): the
    /// scoreboard records it. It is made when a second segment joins one in flight on a
    /// connection that negotiated SACK, or when a lone segment's probe timeout comes before
    /// its RTO (`arm_loss_probe`): otherwise a lone segment gains nothing from it (no SACK
    /// can come, and the RTO is first), so a short exchange — a request, a reply — on a
    /// steady path never allocates one.
    pub(super) fn record_sent(
        &mut self,
        start: SeqNum,
        end: SeqNum,
        now: Instant,
        previous_send: Option<Instant>,
    ) {
        if !self.sack_ok || !start.before(end) {
            return;
        }
        if let Some(board) = self.scoreboard.as_mut() {
            // Every segment of a bulk flight: no need to size a scoreboard that exists.
            board.on_sent(start, end, now);
            return;
        }
        if !self.flight_start().before(start) {
            return;
        }
        self.make_scoreboard(start, previous_send.unwrap_or(now)).on_sent(start, end, now);
    }

    /// Where the octets in flight start (after our SYN).
    fn flight_start(&self) -> SeqNum {
        self.snd_una.max_seq(self.iss + 1)
    }

    /// The scoreboard, made now if there is none: what is in flight up to `upto` becomes one
    /// record, sent at `sent_at` (the last transmission before).
    fn make_scoreboard(&mut self, upto: SeqNum, sent_at: Instant) -> &mut Scoreboard {
        let from = self.flight_start();
        // Sized for the largest the send buffer may grow to: auto-tuning raises it up to
        // `Config::send_buffer_max` after the scoreboard is made.
        let limit = Scoreboard::limit_for(self.config.send_buffer_ceiling());
        self.scoreboard.get_or_insert_with(|| {
            let mut board = Box::new(Scoreboard::new(limit));
            if from.before(upto) {
                board.on_sent(from, upto, sent_at);
            }
            board
        })
    }

    /// `[start, end)` went again.
    pub(super) fn record_resent(&mut self, start: SeqNum, end: SeqNum, now: Instant) {
        let tsval = self.ts.is_on().then(|| self.ts.tsval(now));
        if let Some(episode) = self.rare.as_mut().and_then(|rare| rare.episode.as_mut()) {
            episode.on_retransmitted(start, end, tsval);
        }
        let Some(board) = self.scoreboard.as_mut() else { return };
        board.on_retransmitted(start, end, now);
        if board.recovery() == Some(Recovery::Fast) && start.before_eq(self.snd_una) {
            // The segment at SND.UNA went again in a fast recovery: the retransmission timer
            // now guards this transmission, RTO from now (as Linux rearms it when it resends
            // the head). Left where the last cumulative ACK put it, it fired before the
            // retransmission's own ACK could come back whenever RACK needed more than
            // RTO − RTT to find the loss — with RTO at its 200 ms floor on a 100 ms path,
            // almost always, and each such timeout was spurious. A lost retransmission is
            // still found by RACK from later deliveries (RFC 8985 §6.2 step 5), and each
            // restart needs a new loss detection, so the timer cannot be put off for ever.
            self.set_timer(Timer::Retransmit, Some(now + self.rtt.rto().get()));
        }
        if self.in_fast_sack_recovery() {
            // The newest transmission is this retransmission: if it is lost with nothing
            // sent after it, only a probe shows RACK the loss (`Scoreboard::may_schedule_probe`).
            self.arm_loss_probe(now);
        }
    }

    /// Whether [`on_sack_ack`](Self::on_sack_ack) can change anything for `segment`: only
    /// with SACK in use, and only with blocks to count or a scoreboard to update. Without
    /// either there is no D-SACK to judge and nothing to record, which is every ACK of a
    /// handshake or close and every ACK while one segment at a time is in flight.
    #[inline]
    pub(super) fn sack_ack_has_work(&self, segment: &Segment<'_>) -> bool {
        self.sack_ok
            && (self.scoreboard.is_some() || !segment.header.options.sack_blocks.is_empty())
    }

    /// Step 5 of §3.10.7.4 with SACK (RFC 6675 §5, RFC 8985 §6.2): the peer's blocks and
    /// cumulative ACK update the scoreboard, before SND.UNA moves. Losses RACK finds start
    /// recovery: cwnd and ssthresh halve once (RFC 6675 §5 step 4) and NextSeg sends.
    pub(super) fn on_sack_ack(&mut self, now: Instant, segment: &Segment<'_>) {
        let srtt = self.rtt.srtt();
        let (snd_una, snd_nxt) = (self.snd_una, self.snd_nxt);
        let seg_ack = segment.header.ack;
        let blocks = &segment.header.options.sack_blocks;
        if !blocks.is_empty() {
            self.count().sack_blocks_received += blocks.len() as u64;
        }
        if self.scoreboard.is_none() && !blocks.is_empty() {
            // Blocks about a lone segment in flight, which had no scoreboard: make it now, so
            // that what they report is known (and never sent again before an RTO).
            let sent_at = self.last_send_at.unwrap_or(now);
            self.make_scoreboard(snd_nxt, sent_at);
        }
        if let Some(block) = dsack_block(blocks.as_slice(), seg_ack) {
            // RFC 3708: judged before the scoreboard takes the ACK, so that losses the same
            // ACK reveals start a recovery of their own rather than being taken back with it.
            self.judge_by_dsack(block, seg_ack);
        }
        let Some(board) = self.scoreboard.as_mut() else { return };
        let news = board.on_ack(now, snd_una, seg_ack, snd_nxt, blocks.as_slice(), srtt);
        if news.dsack {
            self.count().dsacks_received += 1;
        }
        // A recovery that ended here (RFC 6675 §5: RecoveryPoint acknowledged) needs no
        // congestion event: cwnd stays where step (4.2) put it, at ssthresh — no RFC
        // 6582-style deflation to FlightSize + SMSS, which sent slow start back to one
        // segment after every recovery.
        let found = news.detection;
        if found.lost > 0 {
            self.on_losses_found(found.lost_retransmissions, news.newly_sacked_octets);
            self.update_prr(news.delivered);
        } else if news.probe_repaired_loss {
            // RFC 8985 §7.4.2: the probe repaired a loss nothing else saw: the congestion
            // response is one halving, as for a recovery that ended at once.
            let flight = snd_nxt.since(snd_una);
            self.on_congestion_event(CongestionEvent::SackRecovery { flight });
        } else {
            self.update_prr(news.delivered);
        }
        self.set_timer(Timer::Reorder, found.reorder_at);
        if news.delivered > 0 && self.in_fast_sack_recovery() {
            // RFC 8985 §7.2 restarts the probe timer on an ACK that delivers: in a recovery,
            // SACKs deliver without moving SND.UNA (`Scoreboard::may_schedule_probe`).
            self.arm_loss_probe(now);
        }
    }

    /// RFC 6937 §3 on an ACK (or a reordering timeout) during a fast recovery: PRR's sndcnt
    /// for `delivered` octets newly delivered (DeliveredData), with pipe after the ACK and the
    /// slow-start reduction bound (PRR-SSRB, RFC 6937 §6's recommendation). On the first
    /// ACK of recovery at least one segment goes when one is lost (RFC 9937).
    fn update_prr(&mut self, delivered: u32) {
        let ssthresh = self.cc.get().ssthresh();
        let mss = u32::from(self.effective_mss());
        let snd_una = self.snd_una;
        // Only in a fast recovery: pipe walks every record, and this runs on every ACK.
        let Some(board) = self.scoreboard.as_mut().filter(|board| board.prr().is_some()) else {
            return;
        };
        let pipe = board.pipe(snd_una);
        let lost = board.has_lost(snd_una);
        if let Some(prr) = board.prr_mut() {
            prr.on_ack(delivered, pipe, ssthresh, mss, false);
            if lost {
                prr.ensure_first_retransmission(mss);
            }
        }
    }

    /// PRR starts over for the fast recovery just entered (or responded to again) on an ACK
    /// that newly SACKed `newly_sacked` octets (SND.UNA has not moved yet): RecoverFS is pipe
    /// as recovery begins (RFC 9937; RFC 6937 took FlightSize; `Scoreboard::start_prr`).
    fn start_prr(&mut self, newly_sacked: u32) {
        let flight = self.snd_nxt.since(self.snd_una);
        if let Some(board) = self.scoreboard.as_mut() {
            board.start_prr(flight, newly_sacked);
        }
    }

    /// RACK found losses: enter recovery, or, when a retransmission was lost inside one,
    /// respond to congestion again (RFC 8985 §9.3: without PRR, a lost retransmission is a
    /// new congestion event) and move the recovery point to what is sent now.
    fn on_losses_found(&mut self, lost_retransmissions: u32, newly_sacked: u32) {
        if self.in_sack_recovery() && lost_retransmissions > 0 {
            if let Some(board) = self.scoreboard.as_mut() {
                board.enter_recovery(Recovery::Fast, self.snd_nxt);
            }
            // Halve what the window allows now: the flight may exceed cwnd in recovery, and
            // the further response must never raise it.
            let flight = self.snd_nxt.since(self.snd_una).min(self.cc.get().window());
            self.on_congestion_event(CongestionEvent::SackRecovery { flight });
            self.on_window_reduction(false);
            self.start_prr(newly_sacked);
            self.count().sack_recoveries += 1;
        } else {
            self.enter_sack_recovery(newly_sacked);
        }
    }

    /// Losses were found outside a recovery: enter one (RFC 6675 §5 step 4: RecoveryPoint =
    /// HighData, ssthresh = cwnd = FlightSize / 2). Inside one, NextSeg simply has more to send.
    fn enter_sack_recovery(&mut self, newly_sacked: u32) {
        let Some(board) = self.scoreboard.as_mut() else { return };
        if board.recovery().is_some() {
            return;
        }
        // RFC 6675 §5 step (4.3): the first segment presumed lost goes at once, whatever
        // cwnd − pipe says (`Scoreboard::first_resend_due`); without it a small flight, whose
        // pipe stays above the halved cwnd, waits for the retransmission timer.
        board.enter_recovery(Recovery::Fast, self.snd_nxt);
        let flight = self.snd_nxt.since(self.snd_una);
        self.on_congestion_event(CongestionEvent::SackRecovery { flight });
        self.on_window_reduction(false);
        self.start_prr(newly_sacked);

        self.count().sack_recoveries += 1;
        self.set_timer(Timer::LossProbe, None);
    }

    /// RFC 6675 §5 step (2)–(4) when duplicate ACKs carry no SACK blocks: the third marks
    /// the segment at SND.UNA lost and enters recovery, so a peer that stops sending blocks
    /// still gets fast retransmit. Returns whether SACK recovery handled the duplicate.
    pub(super) fn on_sack_duplicate_ack(&mut self, segment: &Segment<'_>) -> bool {
        if !self.sack_ok {
            return false;
        }
        let Some(board) = self.scoreboard.as_mut() else { return true };
        if self.dup_acks >= 3 && segment.header.options.sack_blocks.is_empty() {
            board.mark_lost_at(self.snd_una);
            if !board.has_lost(self.snd_una) {
                // The segment at SND.UNA was resent already (a recovery that a D-SACK or an
                // echo just proved spurious): nothing is presumed dropped, so no recovery
                // starts — there would be no first retransmission for step (4.3) to send.
                return true;
            }
            self.enter_sack_recovery(0);
            // RFC 6937 §2: without SACK information a duplicate ACK delivered one segment.
            self.update_prr(u32::from(self.effective_mss()));
        }
        true
    }

    /// The reordering timer expired: judge again what was inside the window (RFC 8985 §6.3).
    pub(super) fn on_reorder_timeout(&mut self, now: Instant) {
        let srtt = self.rtt.srtt();
        let snd_una = self.snd_una;
        let Some(board) = self.scoreboard.as_mut() else { return };
        let found = board.detect_losses(now, snd_una, srtt);
        self.set_timer(Timer::Reorder, found.reorder_at);
        if found.lost > 0 {
            self.on_losses_found(found.lost_retransmissions, 0);
            self.update_prr(0);
        }
    }

    /// The probe timeout expired: the next transmission is a loss probe (RFC 8985 §7.3).
    pub(super) fn on_loss_probe_timeout(&mut self, _now: Instant) {
        if let Some(board) = self.scoreboard.as_mut()
            && self.snd_una != self.snd_nxt
        {
            board.on_probe_timeout();
        }
    }

    /// RFC 8985 §7.2: with data in flight, no recovery (but for a fast recovery's own tail,
    /// `Scoreboard::may_schedule_probe`) and no probe outstanding, a probe goes after PTO =
    /// 2·SRTT (plus the peer's worst-case delayed ACK when one segment is in flight), or 1 s
    /// without an SRTT, unless the retransmission timer comes first.
    ///
    /// Runs after every segment sent (the PTO restarts on each new transmission), so it is
    /// inlined into its callers and touches the scoreboard once: the deadline goes straight
    /// onto it, as `set_timer` would put it there. A deadline that moves later — the common
    /// case, the same PTO from a later send — never needs the endpoint to look again.
    #[inline]
    pub(super) fn arm_loss_probe(&mut self, now: Instant) {
        let at = self.loss_probe_deadline(now);
        match self.scoreboard.as_deref_mut() {
            Some(board) => {
                if let Some(at) = at {
                    self.deadline_moved_earlier |= board.deadline(true).is_none_or(|old| at < old);
                }
                board.set_deadline(true, at);
            }
            // No scoreboard has no probe armed: only arming one makes it.
            None => {
                if let Some(at) = at {
                    self.arm_loss_probe_first(at, now);
                }
            }
        }
    }

    /// RFC 6298 rules 5.1–5.3 and the probe timer (RFC 8985 §7.2) after a full-sized segment
    /// of new data from the send fast path: what `update_retransmit_timer(now, false)` does,
    /// which the next such segment at the same instant may skip. The rule re-arms the probe
    /// after every segment sent, but within one instant, with SND.UNA (and so SRTT) and the
    /// retransmission deadline unchanged, more than the peer's MSS in flight before and after,
    /// and the probe and recovery state as they were (`Scoreboard::probe_armed_as`), it gives
    /// the deadline already armed: a burst of segments works it out once, and every deadline
    /// `poll_timeout` reports stays the same.
    #[inline]
    pub(super) fn rearm_after_full_segment(&mut self, now: Instant) {
        let beyond_mss = self.snd_nxt.since(self.snd_una) > u32::from(self.peer_mss.get());
        #[cfg(all(test, feature = "std"))]
        let beyond_mss =
            beyond_mss && !super::output::switches::NO_PROBE_REUSE.with(core::cell::Cell::get);
        let rto = self.retransmit_slot();
        if beyond_mss
            && let Some(board) = self.scoreboard.as_deref()
            && board.probe_armed_as(now, self.snd_una, rto)
        {
            // What the rule would leave: the retransmission timer running (5.1 does not
            // restart it) and the probe deadline it gives now already armed.
            debug_assert!(
                rto != Instant::MAX && board.deadline(true) == self.loss_probe_deadline(now),
                "a reused probe deadline differs from the rule's"
            );
            #[cfg(all(test, feature = "std"))]
            super::output::switches::PROBE_REUSES.with(|count| count.set(count.get() + 1));
            return;
        }
        self.update_retransmit_timer(now, false);
        let (snd_una, rto) = (self.snd_una, self.retransmit_slot());
        if beyond_mss && let Some(board) = self.scoreboard.as_deref_mut() {
            board.note_probe_armed(now, snd_una, rto);
        }
    }

    /// The retransmission timer's slot as kept: [`Instant::MAX`] when unarmed.
    #[inline(always)]
    fn retransmit_slot(&self) -> Instant {
        self.timers.get(Timer::RETRANSMIT_SLOT).copied().unwrap_or(Instant::MAX)
    }

    /// The first probe of a flight that had no scoreboard: made now for what is in flight
    /// (sent at the last transmission), then armed at `at`.
    #[inline(never)]
    fn arm_loss_probe_first(&mut self, at: Instant, now: Instant) {
        let sent_at = self.last_send_at.unwrap_or(now);
        self.make_scoreboard(self.snd_nxt, sent_at);
        self.set_timer(Timer::LossProbe, Some(at));
    }

    /// When the probe is due if armed `now`: PTO after it (RFC 8985 §7.2), `None` when no
    /// probe may be armed or the retransmission timer comes first.
    #[inline]
    fn loss_probe_deadline(&self, now: Instant) -> Option<Instant> {
        // Cheapest tests first: this runs for every segment sent and every ACK.
        if self.snd_una == self.snd_nxt || self.snd_wnd == 0 {
            return None;
        }
        if !self.sack_ok || !self.state.is_synchronized() || !self.syn_acked {
            return None;
        }
        // Without a scoreboard no probe is outstanding and no recovery runs.
        if self.scoreboard.as_ref().is_some_and(|board| !board.may_schedule_probe()) {
            return None;
        }
        // In whole microseconds (SRTT is kept so): exact, and without the `Duration`
        // arithmetic that cost this per-segment path more than everything else in it.
        let pto = match self.rtt.srtt_micros() {
            Some(srtt) => {
                let flight = self.snd_nxt.since(self.snd_una);
                let pto = u64::from(srtt) * 2;
                if flight <= u32::from(self.peer_mss.get()) {
                    pto + WORST_CASE_DELAYED_ACK_MICROS
                } else {
                    pto
                }
            }
            // No sample yet — a handshake sent twice gives none (Karn, MUST-18), and RFC 6298
            // (5.7) holds the RTO at 3 s: §7.2's PTO is then 1 s, so a lost ACK of the
            // initial window costs a second, not three.
            None => PTO_WITHOUT_SRTT_MICROS,
        };
        let at = now.saturating_add_micros(pto);
        let rto_first = self.timer(Timer::Retransmit).is_some_and(|rto| rto <= at);
        (!rto_first).then_some(at)
    }

    /// Whether a SACK-detected recovery holds cwnd (RFC 6675 §5).
    pub(super) fn in_fast_sack_recovery(&self) -> bool {
        self.scoreboard.as_ref().is_some_and(|board| board.recovery() == Some(Recovery::Fast))
    }

    /// Whether sending is governed by RFC 6675's pipe (a recovery is in progress).
    pub(super) fn in_sack_recovery(&self) -> bool {
        self.scoreboard.as_ref().is_some_and(|board| board.recovery().is_some())
    }

    /// Octets that may go while in recovery: in a fast recovery what PRR's sndcnt leaves
    /// (RFC 6937 §3: cwnd = pipe + sndcnt), after a timeout RFC 6675 §5 (C)'s `cwnd − pipe`.
    /// PRR counts octets but sends whole segments (`Prr::allowance_in_segments`).
    pub(super) fn recovery_room(&self) -> u32 {
        let Some(board) = self.scoreboard.as_ref() else { return 0 };
        if let Some(prr) = board.prr() {
            return prr.allowance_in_segments(u32::from(self.effective_mss()));
        }
        self.cc.get().window().saturating_sub(board.pipe(self.snd_una))
    }

    /// Switches spurious-retransmission undo on (the default) or off: with it off, a window
    /// reduction that timestamps or D-SACKs prove spurious is still counted
    /// (`Counters::spurious_retransmissions`) but not taken back.
    pub fn set_undo(&mut self, on: bool) {
        if !on || self.rare.is_some() {
            self.rare_mut().undo_off = !on;
        }
    }

    /// The window was just reduced (fast retransmit, SACK recovery, retransmission timeout):
    /// remember it to judge it (RFC 3522, RFC 3708), unless it belongs to a reduction whose
    /// data is still unacknowledged — a further response in the same episode, whose first
    /// retransmission is still the one Eifel judges by. Nothing is judged about our SYN.
    pub(super) fn on_window_reduction(&mut self, timeout: bool) {
        let (snd_una, snd_nxt) = (self.snd_una, self.snd_nxt);
        if !snd_una.after(self.iss) {
            return;
        }
        let rare = self.rare_mut();
        match rare.episode.as_mut() {
            Some(episode) if episode.is_current(snd_una) => episode.timeout |= timeout,
            _ => rare.episode = Some(Episode::new(snd_una, snd_nxt, timeout)),
        }
    }

    /// RFC 3522 §2 Eifel detection, on an ACK advancing SND.UNA to `seg_ack` with TSecr
    /// `tsecr`: returns whether it proved the last reduction spurious and took it back.
    pub(super) fn judge_by_echo(&mut self, seg_ack: SeqNum, tsecr: Option<u32>) -> bool {
        let Some(episode) = self.rare.as_ref().and_then(|rare| rare.episode) else {
            return false;
        };
        match episode.judge_by_echo(seg_ack, tsecr) {
            Verdict::Open => false,
            Verdict::Genuine => {
                // The retransmission was needed: nothing to take back, whatever D-SACKs say.
                self.rare_mut().episode = None;
                false
            }
            Verdict::Spurious => self.undo_reduction(seg_ack),
        }
    }

    /// RFC 3708 §3: a D-SACK `block` on an ACK of `seg_ack`.
    fn judge_by_dsack(&mut self, block: SackBlock, seg_ack: SeqNum) {
        let Some(episode) = self.rare.as_mut().and_then(|rare| rare.episode.as_mut()) else {
            return;
        };
        if episode.on_dsack(block) == Verdict::Spurious {
            self.undo_reduction(seg_ack.max_seq(self.snd_una));
        }
    }

    /// The last window reduction was spurious: tell the controller (RFC 4015 §3's response,
    /// `CongestionEvent::Undo`), leave the recovery it started, and — RFC 4015 §3 and RFC 5682
    /// §3 after a spurious timeout — send new data rather than the flight again. Returns
    /// whether the reduction was taken back (undo may be switched off).
    fn undo_reduction(&mut self, seg_ack: SeqNum) -> bool {
        let rare = self.rare_mut();
        rare.episode = None;
        rare.counters.spurious_retransmissions += 1;
        if rare.undo_off {
            return false;
        }
        rare.counters.undos += 1;
        let flight = self.snd_nxt.since(seg_ack);
        let acked = if seg_ack.after(self.snd_una) { seg_ack.since(self.snd_una) } else { 0 };
        self.on_congestion_event(CongestionEvent::Undo { flight, acked });
        self.in_fast_recovery = false;
        self.clear_resegment();
        if let Some(board) = self.scoreboard.as_mut() {
            board.undo_recovery();
        }
        true
    }

    /// NextSeg rule (1) (RFC 6675 §4): the first segment deemed lost and not yet resent, when
    /// cwnd − pipe leaves room for it (or `regardless_of_room`: a loss probe); never running
    /// into SACKed data.
    pub(super) fn next_lost_segment(&self, regardless_of_room: bool) -> Option<(SeqNum, u32)> {
        let board = self.scoreboard.as_ref()?;
        board.recovery()?;
        let (start, end) = board.next_lost(self.snd_una)?;
        let len = end.since(start).min(u32::from(self.effective_mss()));
        let room = regardless_of_room || board.first_resend_due() || self.recovery_room() >= len;
        room.then_some((start, end.since(start)))
    }

    /// Where SACKed data starting at `seq` ends, if `seq` is SACKed.
    pub(super) fn sacked_end_from(&self, seq: SeqNum) -> Option<SeqNum> {
        self.scoreboard.as_ref()?.sacked_end_from(seq)
    }

    /// How many octets from `seq` a retransmission may carry before SACKed data.
    pub(super) fn unsacked_run(&self, seq: SeqNum) -> u32 {
        self.scoreboard.as_ref().map_or(u32::MAX, |board| board.unsacked_from(seq))
    }

    /// Whether a loss probe is due now.
    pub(super) fn loss_probe_due(&self) -> bool {
        self.scoreboard.as_ref().is_some_and(|board| board.probe_due())
    }

    /// Where a probe that resends old data starts: the last segment sent (RFC 8985 §7.3); in
    /// a fast recovery the one sent last in time, the newest retransmission.
    pub(super) fn loss_probe_resend_start(&self) -> Option<SeqNum> {
        let board = self.scoreboard.as_ref()?;
        if board.recovery() == Some(Recovery::Fast) {
            return board.newest_unsacked_start(self.snd_una);
        }
        board.last_segment_start().map(|start| start.max_seq(self.snd_una))
    }

    /// A loss probe went out, ending at `end`: one probe until an ACK judges it, and the
    /// retransmission timer restarts (RFC 8985 §7.3).
    pub(super) fn on_loss_probe_sent(&mut self, now: Instant, end: SeqNum, retransmission: bool) {
        if let Some(board) = self.scoreboard.as_mut() {
            board.on_probe_sent(end, retransmission);
        }
        self.count().loss_probes += 1;
        self.set_timer(Timer::LossProbe, None);
        self.set_timer(Timer::Retransmit, Some(now + self.rtt.rto().get()));
    }

    /// The probe timer fired but nothing could be sent.
    pub(super) fn cancel_loss_probe(&mut self) {
        if let Some(board) = self.scoreboard.as_mut() {
            board.cancel_probe();
        }
    }
}
