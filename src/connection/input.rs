//! SEGMENT ARRIVES (RFC 9293 §3.10.7), step by step in the RFC's order.
//!
//! The handlers below only work out what happened and update the sequence variables and
//! buffers; every state change goes through [`Connection::apply`] and the transition table.

use core::net::{IpAddr, SocketAddr};
use core::time::Duration;

use super::{Connection, Event, Reply, Timer, elapsed, len_u32};
use alloc::boxed::Box;

use crate::assembler::Assembler;
use crate::congestion::CongestionEvent;
use crate::seq::{Mss, SeqNum, Window, WindowScale};
use crate::state::{State, Stimulus};
use crate::time::Instant;
use crate::time_wait::Verdict;
use crate::wire::{Flags, Segment, TcpHeader};

impl Connection {
    /// SEGMENT ARRIVES: process one parsed, checksum-verified segment from `remote_ip`
    /// (RFC 9293 §3.10.7). Replies, events and state changes are collected for the `poll_*`
    /// calls. Segments not addressed to this connection are dropped and counted.
    pub fn handle_segment(&mut self, now: Instant, remote_ip: IpAddr, segment: &Segment<'_>) {
        let now = self.advance_time(now);
        if !self.is_addressed_to_us(remote_ip, segment) {
            // Demultiplexing is the caller's job; a stray must never touch this TCB.
            self.count().misaddressed += 1;
            return;
        }
        self.on_segment(now, remote_ip, segment);
        // An ACK may have grown the congestion window a blocked writer waits on. (Not on the
        // endpoint's path below: its connections grow only by the endpoint's grant, which
        // follows every call into them.)
        self.autotune();
    }

    /// [`handle_segment`](Self::handle_segment) of a segment the endpoint demultiplexed to
    /// this connection by its 4-tuple (the TCB RFC 9293 §3.10.7 starts from is the one the
    /// segment's connection identifiers select): the endpoint's lookup compared the addresses
    /// and ports already, so they are not compared a second time on every segment.
    #[inline]
    pub(crate) fn handle_demultiplexed_segment(
        &mut self,
        now: Instant,
        remote_ip: IpAddr,
        segment: &Segment<'_>,
    ) {
        let now = self.advance_time(now);
        debug_assert!(self.is_addressed_to_us(remote_ip, segment), "misdelivered segment");
        self.on_segment(now, remote_ip, segment);
        // No `autotune` here, as `handle_segment` has: an endpoint holds each ring's limit at
        // its capacity (`manage_buffer_growth`; a grant raises it and grows the ring to it at
        // once), so growing by itself could only be a no-op; the endpoint's grant after this
        // call is where its buffers grow.
        #[cfg(test)]
        debug_assert!(
            self.recv_buf.limit() <= self.recv_buf.capacity()
                && self.send_buf.limit() <= self.send_buf.capacity(),
            "an endpoint's connection may grow by itself"
        );
    }

    /// Whether `segment` from `remote_ip` is for this connection: `local()` and `remote()`
    /// compared field by field, as the addresses built from the fields would compare (no flow
    /// label or scope either side), ports first.
    #[inline(always)]
    fn is_addressed_to_us(&self, remote_ip: IpAddr, segment: &Segment<'_>) -> bool {
        let header = &segment.header;
        header.dst_port == self.local_port
            && remote_ip.is_ipv4() == self.local_ip.is_ipv4()
            && (!self.remote_known
                || (self.remote_port == header.src_port && self.remote_ip == remote_ip))
    }

    /// SEGMENT ARRIVES for a segment addressed to this connection, `now` already advanced:
    /// one out-of-line copy for both entries above.
    #[inline(never)]
    fn on_segment(&mut self, now: Instant, remote_ip: IpAddr, segment: &Segment<'_>) {
        let header = &segment.header;
        // Anything from the peer shows it is alive (keep-alive, RFC 9293 §3.8.4).
        self.last_recv_at = now;
        self.keepalive_probes_sent = 0;
        let predicted = self.state == State::Established && self.on_predicted_segment(now, segment);
        match self.state {
            _ if predicted => {}
            // The sender's address is built only where it is used.
            State::Closed => {
                self.on_segment_closed(segment, SocketAddr::new(remote_ip, header.src_port))
            }
            State::Listen => {
                self.on_segment_listen(now, segment, SocketAddr::new(remote_ip, header.src_port));
            }
            State::SynSent => self.on_segment_syn_sent(now, segment),
            State::SynReceived
            | State::Established
            | State::FinWait1
            | State::FinWait2
            | State::CloseWait
            | State::Closing
            | State::LastAck => self.on_segment_otherwise(now, segment),
            State::TimeWait => self.on_segment_time_wait(now, segment),
        }
        self.arm_keepalive();
    }

    /// §3.10.7.1: CLOSED. Everything is discarded; anything but a RST draws a RST. Out of
    /// line: rare at an endpoint, which retires a closed connection once its data is read
    /// (until then a segment for its 4-tuple still reaches it here).
    #[cold]
    #[inline(never)]
    fn on_segment_closed(&mut self, segment: &Segment<'_>, from: SocketAddr) {
        if !segment.header.flags.contains(Flags::RST) {
            self.queue_reply(reset_for(segment, from));
        }
    }

    /// §3.10.7.2: LISTEN. Out of line: once per connection, not once per segment.
    #[inline(never)]
    fn on_segment_listen(&mut self, now: Instant, segment: &Segment<'_>, from: SocketAddr) {
        let header = &segment.header;
        // First: an incoming RST is ignored.
        if header.flags.contains(Flags::RST) {
            self.apply(now, Stimulus::Rst { from_passive_open: true });
            return;
        }
        // Second: any ACK is bad in LISTEN: <SEQ=SEG.ACK><CTL=RST>.
        if header.flags.contains(Flags::ACK) {
            self.queue_reply(Reply { remote: from, seq: header.ack, ack: None });
            return;
        }
        // Third: a SYN (security/compartment checks do not apply: no IP options here).
        if header.flags.contains(Flags::SYN) {
            if !is_valid_source(from.ip()) || from.port() == 0 {
                // MUST-63: a SYN from a broadcast, multicast or unspecified source is ignored.
                self.count().unacceptable_segments += 1;
                return;
            }
            self.set_remote(from);
            self.choose_iss(now, from);
            // RFC 7323 §3.2: our SYN-ACK carries timestamps only if this SYN did. After
            // `choose_iss`, whose SND.WL2 the SYN's window update replaces.
            self.on_peer_syn(now, header);
            // Text on the SYN is not acknowledged, so the peer sends it again once we are
            // ESTABLISHED (§3.10.7.2 lets us queue it; we choose not to hold unacked data).
            self.apply(now, Stimulus::Syn);
            return;
        }
        // Fourth: anything else is dropped.
        self.count().unacceptable_segments += 1;
    }

    /// §3.10.7.3: SYN-SENT. Out of line: once per connection, not once per segment.
    #[inline(never)]
    fn on_segment_syn_sent(&mut self, now: Instant, segment: &Segment<'_>) {
        let header = &segment.header;
        // The remote address is built only for the reply that needs it.
        if !self.remote_known {
            return;
        }
        // First: check the ACK bit.
        let ack_acceptable = if header.flags.contains(Flags::ACK) {
            // SEG.ACK =< ISS or SEG.ACK > SND.NXT: a reset, unless the segment is one.
            if header.ack.before_eq(self.iss) || header.ack.after(self.snd_nxt) {
                if !header.flags.contains(Flags::RST) {
                    let remote = self.last_remote();
                    self.queue_reply(Reply { remote, seq: header.ack, ack: None });
                }
                self.count().unacceptable_segments += 1;
                return;
            }
            true
        } else {
            false
        };
        // Second: the RST bit. RFC 5961 §3: only a RST acknowledging our SYN is believed.
        if header.flags.contains(Flags::RST) {
            if ack_acceptable {
                self.apply(now, Stimulus::Rst { from_passive_open: false });
            } else {
                self.count().rsts_ignored += 1;
            }
            return;
        }
        // Third: security (no IP security options here). Fourth: the SYN bit.
        if !header.flags.contains(Flags::SYN) {
            // Fifth: neither SYN nor RST: drop.
            self.count().unacceptable_segments += 1;
            return;
        }
        // RFC 7323 §3.2: timestamps in use iff our SYN offered them and this SYN (or SYN-ACK)
        // carries them. The window update before the ACK's effects, which do not read the
        // send window in SYN-SENT (no loss probe before the handshake completes).
        self.on_peer_syn(now, header);
        if ack_acceptable {
            self.on_ack_advances(now, header.ack, echoed(segment), false);
        }
        if self.syn_acked {
            // Our SYN is acknowledged: ESTABLISHED, and <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>.
            self.ack_now();
            self.apply(now, Stimulus::SynAck);
            // Data or a FIN on the SYN-ACK continue at step 6.
            self.process_text_and_fin(now, segment, header.seq + 1);
        } else {
            // Simultaneous open (MUST-10): SYN-RECEIVED, and our SYN goes again with an ACK.
            self.snd_nxt = self.iss;
            self.apply(now, Stimulus::Syn);
        }
    }

    /// The peer's SYN (LISTEN, §3.10.7.2, or SYN-SENT, §3.10.7.3): IRS and RCV.NXT, what its
    /// options negotiate (MSS, window scale, timestamps, SACK), and its window, which is never
    /// scaled (RFC 7323 §2.2). One copy for both states, out of line: each runs it once per
    /// connection.
    #[inline(never)]
    fn on_peer_syn(&mut self, now: Instant, header: &TcpHeader) {
        self.irs = header.seq;
        self.have_irs = true;
        self.rcv_nxt = header.seq + 1;
        self.rcv_nxt_laps = 0;
        self.on_peer_mss(header.options.mss);
        self.on_peer_window_scale(header.options.window_scale);
        self.ts.on_peer_syn(now, header.options.timestamps, self.rcv_nxt);
        self.refresh_snd_mss();
        self.on_peer_sack_permitted(header.options.sack_permitted);
        self.update_send_window(header.seq, header.ack, u32::from(header.window));
    }

    /// §3.10.7.4 for TIME-WAIT: the verdict of [`crate::time_wait::TimeWait::judge`], the one
    /// implementation the endpoint's TIME-WAIT records use too. Out of line: rare at an
    /// endpoint, which turns a connection in TIME-WAIT into a record once its output is out
    /// and its data read.
    #[cold]
    #[inline(never)]
    fn on_segment_time_wait(&mut self, now: Instant, segment: &Segment<'_>) {
        let Some(record) = self.time_wait_record() else { return };
        match record.judge(segment) {
            Verdict::IgnoreRst => self.count().rsts_ignored += 1,
            Verdict::Drop => self.count().unacceptable_segments += 1,
            Verdict::Ack { unacceptable } => {
                if unacceptable {
                    self.count().unacceptable_segments += 1;
                }
                self.send_challenge_ack(now);
            }
            // A connection on its own cannot start a new incarnation (the endpoint can, MAY-2):
            // the SYN gets what §3.10.7.4 gives it, an ACK (RFC 5961 §4).
            Verdict::Reopen => self.send_challenge_ack(now),
            // The table keeps TIME-WAIT; `on_self_loop` acknowledges and restarts 2MSL.
            Verdict::AckFin => {
                // The peer's FIN again: its TSval becomes TS.Recent (RFC 7323 §4.3), as
                // `TimeWait::on_fin_again` does for the record.
                if let Some(ts) = segment.header.options.timestamps {
                    self.ts.on_acceptable(now, segment.header.seq, ts.tsval);
                }
                self.apply(now, Stimulus::Fin);
            }
        }
    }

    /// §3.10.7.4: SYN-RECEIVED and the synchronized states but TIME-WAIT.
    fn on_segment_otherwise(&mut self, now: Instant, segment: &Segment<'_>) {
        let header = &segment.header;
        let mut flags = header.flags;
        let mut seg_seq = header.seq;
        let mut seg_len = segment.seg_len();

        // RFC 7323 before the checks of §3.10.7.4. Once negotiated, a segment without the
        // option is dropped silently (§3.2 SHOULD; never an abort), and PAWS drops one whose
        // TSval is older than TS.Recent, with an ACK (§5.3 R1, rate-limited like the ACK of
        // step 1). RSTs are exempt (R1: RFC 5961 judges them by sequence number alone), and
        // so are SYNs: step 4 answers every SYN here with a challenge ACK or a return to
        // LISTEN anyway (RFC 5961 §4), which is what a restarted peer — new clock, perhaps no
        // timestamps at all — needs to learn that this connection is still open.
        if self.ts.is_on() && !flags.contains(Flags::RST) && !flags.contains(Flags::SYN) {
            let passes =
                header.options.timestamps.is_some_and(|ts| !self.ts.paws_rejects(now, ts.tsval));
            if !passes {
                self.on_timestamps_rejected(now, segment);
                return;
            }
        }

        if self.state == State::SynReceived && flags.contains(Flags::SYN) && seg_seq == self.irs {
            // The peer's SYN again. Its SYN octet is old news (§3.10.7.4's trimming):
            if !flags.contains(Flags::ACK) {
                // A bare SYN: our SYN-ACK was lost. Send it again now rather than the bare
                // ACK of step 1 (documented in docs/conformance.md).
                self.retransmit_pending = true;
                return;
            }
            // A SYN-ACK in simultaneous open (RFC 9293 Figure 8): keep its ACK, which
            // completes the handshake, and drop the old SYN.
            flags = flags.without(Flags::SYN);
            seg_seq += 1;
            seg_len -= 1;
        }

        // First: sequence number acceptability (the four cases of §3.10.7.4). With a zero
        // receive window, a segment at RCV.NXT still has its ACK, URG and RST processed
        // (MUST-66); only its text and FIN are dropped. So a segment at RCV.NXT always gets
        // past this step (with no text, it is acceptable under either window; with text, it
        // is acceptable under an open window and at the closed window's edge otherwise), and
        // only a closed window needs to be known, only for a segment that occupies sequence
        // space.
        let (window_closed_at_edge, acceptable) = if seg_seq == self.rcv_nxt {
            (seg_len > 0 && self.acceptable_window_is_closed(), true)
        } else {
            let window = self.rcv_acceptable_window();
            (false, seg_seq.is_acceptable(seg_len, self.rcv_nxt, window))
        };
        if !window_closed_at_edge && !acceptable {
            self.on_unacceptable_segment(now, segment, flags, seg_seq, seg_len);
            return;
        }

        // Second: the RST bit (RFC 5961 §3). Fourth: the SYN bit. Both are rare, out of line
        // (`on_rst_or_syn_in_window`); a segment with either stops there. Third: security and
        // compartment (no IP security options here).
        if flags.contains(Flags::RST) || flags.contains(Flags::SYN) {
            self.on_rst_or_syn_in_window(now, flags, seg_seq);
            return;
        }

        // Fifth: the ACK field.
        if !flags.contains(Flags::ACK) {
            self.count().unacceptable_segments += 1;
            return;
        }
        if !self.process_ack(now, segment, seg_seq) {
            return;
        }

        // Sixth to eighth: URG, text, FIN.
        if window_closed_at_edge {
            self.on_text_at_closed_window(now, segment);
            return;
        }
        self.process_text_and_fin(now, segment, seg_seq);
    }

    /// Before step 1 (RFC 7323 §3.2, §5.3 R1): timestamps are in use, and this segment (not
    /// a RST or SYN) lacks the option, which drops it silently, or fails PAWS, which drops it
    /// with an ACK. Out of line: neither happens on a healthy connection.
    #[cold]
    #[inline(never)]
    fn on_timestamps_rejected(&mut self, now: Instant, segment: &Segment<'_>) {
        if segment.header.options.timestamps.is_none() {
            self.count().timestamps_missing += 1;
            return;
        }
        let seg_seq = segment.header.seq;
        self.count().paws_rejected += 1;
        let len = segment.payload.len();
        if self.carries_new_data(seg_seq, len) {
            self.count().paws_rejected_new_data += 1;
        }
        // R1's ACK reports octets we already had as a D-SACK (RFC 2883 §4, as Linux does): on
        // a path that reorders, this is an original its retransmission overtook, and the
        // block is the sender's only proof that the retransmission was spurious (RFC 3708,
        // RFC 8985 §6.2 step 4).
        if len > 0 && seg_seq.before(self.rcv_nxt) {
            let end = (seg_seq + len_u32(len)).min_seq(self.rcv_nxt);
            self.report_duplicate(seg_seq, end);
        }
        self.send_challenge_ack(now);
    }

    /// Step 1 found the segment (`flags`, `seg_seq`, `seg_len` after any trimming of an old
    /// SYN) unacceptable. Out of line: a retransmission or a stray, not the common segment.
    #[cold]
    #[inline(never)]
    fn on_unacceptable_segment(
        &mut self,
        now: Instant,
        segment: &Segment<'_>,
        flags: Flags,
        seg_seq: SeqNum,
        seg_len: u32,
    ) {
        self.count().unacceptable_segments += 1;
        if flags.contains(Flags::RST) {
            self.count().rsts_ignored += 1;
            return;
        }
        if !segment.payload.is_empty() && (seg_seq + seg_len).before_eq(self.rcv_nxt) {
            // An old duplicate (a spurious retransmission, or our ACK was lost): RFC 2883 §4
            // reports it as a D-SACK block on the ACK below.
            let end = seg_seq + len_u32(segment.payload.len());
            self.report_duplicate(seg_seq, end);
        }
        // <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, rate-limited like a challenge ACK: two hosts
        // each outside the other's window would otherwise trade ACKs forever (an "ACK war";
        // Linux limits these too).
        self.send_challenge_ack(now);
    }

    /// Steps 2 and 4 for an acceptable segment with RST or SYN (after any trimming of an old
    /// SYN). Out of line: neither bit is set on the segments of a connection that works.
    #[cold]
    #[inline(never)]
    fn on_rst_or_syn_in_window(&mut self, now: Instant, flags: Flags, seg_seq: SeqNum) {
        // Second: the RST bit (RFC 5961 §3: exactly RCV.NXT resets, else challenge ACK).
        if flags.contains(Flags::RST) {
            if seg_seq == self.rcv_nxt {
                self.apply(now, Stimulus::Rst { from_passive_open: self.returns_to_listen() });
            } else {
                self.send_challenge_ack(now);
            }
            return;
        }
        // Fourth: the SYN bit. RFC 5961 §4: challenge ACK in synchronized states; a passive
        // SYN-RECEIVED returns to LISTEN (§3.10.7.4).
        let from_passive_open = self.returns_to_listen();
        if self.state == State::SynReceived && from_passive_open {
            self.apply(now, Stimulus::SynInWindow { from_passive_open });
        } else {
            self.send_challenge_ack(now);
            self.apply(now, Stimulus::SynInWindow { from_passive_open });
        }
    }

    /// Steps 6–8 for a segment at RCV.NXT whose text or FIN meets a closed window (MUST-66):
    /// only its URG is processed. Out of line: a receiver that reads keeps its window open.
    #[cold]
    #[inline(never)]
    fn on_text_at_closed_window(&mut self, now: Instant, segment: &Segment<'_>) {
        // Text and FIN do not fit: tell the sender the window is still closed.
        self.ack_now();
        self.process_urgent(segment);
        // The FIN this segment carried is not processed, so an ACK of our FIN that step 5 left
        // for step 8 takes effect now (found by the model test: the connection stayed in
        // FIN-WAIT-1 with its FIN acknowledged).
        self.settle_ack_of_our_fin(now);
    }

    /// Window update of step 5: SND.UNA =< SEG.ACK =< SND.NXT and the segment is newer than
    /// the one that last set the window (SND.WL1, SND.WL2).
    #[inline(always)]
    fn update_window_if_newer(
        &mut self,
        now: Instant,
        seg_seq: SeqNum,
        seg_ack: SeqNum,
        window: u32,
    ) {
        if self.snd_una.before_eq(seg_ack) {
            let newer = self.snd_wl1.before(seg_seq)
                || (self.snd_wl1 == seg_seq && self.snd_wl2.before_eq(seg_ack));
            if newer {
                let was_closed = self.snd_wnd == 0;
                self.update_send_window(seg_seq, seg_ack, window);
                if was_closed && self.snd_wnd > 0 {
                    // MUST-36/37: a window update restarts transmission at once.
                    self.on_window_reopened_after_update(now);
                }
            }
        }
    }

    /// [`on_window_reopened`](Self::on_window_reopened), out of line: a zero window that
    /// opens is rare, and the window update that checks for it runs on every segment.
    #[cold]
    #[inline(never)]
    fn on_window_reopened_after_update(&mut self, now: Instant) {
        self.on_window_reopened(now);
    }

    /// Header prediction (RFC 9293 §3.10.7.4 as Van Jacobson's fast path does it, cf. RFC
    /// 1323 Appendix A / RFC 7323 §5.3 on its PAWS check): in ESTABLISHED, the common segment
    /// — in order at RCV.NXT, only ACK (and perhaps PSH) set, timestamps passing PAWS, no SACK
    /// blocks, an open window, and an ACK that either moves SND.UNA within (SND.UNA, SND.NXT]
    /// or equals it while the segment brings data that fits the window — is processed here
    /// without the checks of steps 1–4 and 6–8 that cannot fire for it. Unlike Van Jacobson's
    /// prediction, a changed window is no reason to leave: step 5's window update runs here as
    /// in the full path; of step 5's two tests that read the window field, the duplicate ACK
    /// (RFC 5681 §2) never applies to a segment that advances SND.UNA or brings data, and the
    /// answered zero-window probe (MUST-37) is left to the full path with every zero window. So
    /// the first segment after the handshake, whose scaled window differs from the SYN's
    /// unscaled one (RFC 7323 §2.2), takes this path too.
    /// Returns `false`, having changed nothing, for every other segment, which takes the full
    /// path. What this does is exactly what the full path does for such a segment: the
    /// differential property test in this module feeds both the same segments and compares
    /// everything they emit and report.
    fn on_predicted_segment(&mut self, now: Instant, segment: &Segment<'_>) -> bool {
        #[cfg(all(test, feature = "std"))]
        if switches::FULL_PATH_ONLY.with(core::cell::Cell::get) {
            return false;
        }
        let header = &segment.header;
        let (seg_seq, seg_ack) = (header.seq, header.ack);
        let payload = segment.payload;
        let flags = header.flags.without(Flags::PSH);
        if flags != Flags::ACK || seg_seq != self.rcv_nxt || !header.options.sack_blocks.is_empty()
        {
            return false;
        }
        // Steps before step 1 (RFC 7323 §3.2, §5.3 R1): the option present and not old, once
        // in use. `Some` only then: the TSval that may become TS.Recent below.
        let paws_passed = if self.ts.is_on() {
            match header.options.timestamps {
                Some(ts) if !self.ts.paws_rejects(now, ts.tsval) => Some(ts.tsval),
                _ => return false,
            }
        } else {
            None
        };
        // Step 5's acceptability (RFC 5961 §5) holds for any ACK in [SND.UNA, SND.NXT]; one
        // equal to SND.UNA takes this path only with data (without, it may be a duplicate ACK).
        let window = self.scaled_window(header.window);
        // Such an ACK is never below SND.UNA − MAX.SND.WND (MAX.SND.WND < 2^30 under any
        // window scale, RFC 7323 §2.3), so step 5's lower bound needs no test here.
        let advances = self.snd_una.before(seg_ack) && seg_ack.before_eq(self.snd_nxt);
        let ack_predicted = advances || (seg_ack == self.snd_una && !payload.is_empty());
        // A window of zero leaves: step 5 then notes an answered probe (MUST-37).
        if !ack_predicted || window == 0 || !self.remote_known || self.rcv_fin_at().is_some() {
            return false;
        }
        // Step 1: at RCV.NXT, with every octet inside the window (so never the zero-window
        // case of MUST-66); steps 7–8: text the application can still read, no FIN pending.
        // The payload fits when it reaches no further than the edge already advertised (what
        // the peer sends into), else when it fits the acceptable window worked out in full
        // (which is at least that edge, so the first test only saves the work). Nothing below
        // changes the receive buffer or RCV.NXT before the text is stored.
        let len = len_u32(payload.len());
        let advertised = self
            .rcv_adv_edge
            .filter(|edge| edge.after(self.rcv_nxt))
            .map_or(0, |edge| edge.since(self.rcv_nxt));
        let fits = len <= advertised || len <= self.rcv_acceptable_window();
        if !payload.is_empty() && (self.read_closed || !fits) {
            return false;
        }

        #[cfg(all(test, feature = "std"))]
        switches::PREDICTED.with(|count| count.set(count.get() + 1));
        // Step 5, in the full path's order: RFC 7323 §4.3 (2), TS.Recent (a segment with the
        // option while it is not in use changes nothing).
        if let Some(tsval) = paws_passed {
            self.ts.on_acceptable_after_paws(now, seg_seq, tsval);
        }
        let tsecr = echoed(segment);
        let undone = advances && self.judge_by_echo(seg_ack, tsecr);
        // Without blocks (none here) and without a scoreboard, the scoreboard's step has
        // nothing to do (`sack_ack_has_work`).
        if self.sack_ack_has_work(segment) {
            self.on_sack_ack(now, segment);
        }
        if advances {
            self.on_ack_advances(now, seg_ack, tsecr, undone);
        }
        self.update_window_if_newer(now, seg_seq, seg_ack, window);
        // Steps 6–8: no URG, no FIN; the text is in order.
        if !payload.is_empty() {
            // Step 7 for text at RCV.NXT that fits the window: with nothing held out of order
            // it is appended as it is (`store_predicted_text`); otherwise the general store
            // (the window that holds the payload stores it whole whatever its exact size:
            // its length will do).
            if !self.store_predicted_text(now, payload) {
                self.accept_text_within(now, seg_seq, payload, len);
            }
            self.on_text_for_autotune(now, tsecr);
        }
        true
    }

    /// Whether the acceptable window (`rcv_acceptable_window`) is 0: no edge advertised
    /// beyond RCV.NXT, and no room to offer one.
    fn acceptable_window_is_closed(&self) -> bool {
        let advertised_open = self.rcv_adv_edge.is_some_and(|edge| edge.after(self.rcv_nxt));
        !advertised_open && self.rcv_wnd() == 0
    }

    /// Whether a reset or new SYN in SYN-RECEIVED sends this connection back to LISTEN
    /// (§3.10.7.4 steps 2 and 4, MUST-11): only a passive one the application has not used
    /// yet. Once it queued data with `send`, going back to LISTEN would drop that data
    /// silently, so the connection is refused instead and says so (docs/conformance.md).
    fn returns_to_listen(&self) -> bool {
        self.passive && self.send_buf.is_empty()
    }

    /// Step 5. Returns whether processing continues with steps 6–8.
    fn process_ack(&mut self, now: Instant, segment: &Segment<'_>, seg_seq: SeqNum) -> bool {
        let header = &segment.header;
        let seg_ack = header.ack;
        if !self.remote_known {
            return false;
        }
        // Worked out once: neither the window scale nor the segment changes below.
        let (tsecr, window) = (echoed(segment), self.scaled_window(header.window));
        if self.state == State::SynReceived {
            // SND.UNA < SEG.ACK =< SND.NXT: ESTABLISHED; else <SEQ=SEG.ACK><CTL=RST>.
            if !(self.snd_una.before(seg_ack) && seg_ack.before_eq(self.snd_nxt)) {
                self.reset_unacceptable_ack(seg_ack);
                return false;
            }
            self.on_ack_advances(now, seg_ack, tsecr, false);
            self.update_send_window(seg_seq, seg_ack, window);
            // Continue in ESTABLISHED (§3.10.7.4 step 5).
            self.apply(now, Stimulus::AckOfSyn);
        }

        // RFC 5961 §5: acceptable iff SND.UNA − MAX.SND.WND =< SEG.ACK =< SND.NXT.
        let lower_bound = self.snd_una + 0u32.wrapping_sub(self.max_snd_wnd);
        if seg_ack.after(self.snd_nxt) || seg_ack.before(lower_bound) {
            // "Send an ACK, drop the segment, and return" (rate-limited as a challenge ACK).
            self.challenge_unacceptable_ack(now);
            return false;
        }
        // RFC 7323 §5.3 R3 (§4.3 (2)): the segment is acceptable, so its TSval may become
        // TS.Recent. Only once its ACK passed the check above, as Linux does: a blind attacker
        // must then guess SEG.ACK as well as SEG.SEQ to push TS.Recent ahead of the peer's
        // clock (which would make PAWS drop the peer's own segments).
        if let Some(ts) = header.options.timestamps {
            self.ts.on_acceptable(now, seg_seq, ts.tsval);
        }
        // RFC 5681 §2: a duplicate ACK acknowledges nothing new, carries no data, SYN or FIN,
        // leaves the window alone, and arrives while data is outstanding. Under a zero window
        // it is the answer to a probe (the receiver had no room), never a sign of loss.
        let is_duplicate = seg_ack == self.snd_una
            && self.snd_una != self.snd_nxt
            && segment.payload.is_empty()
            && !header.flags.contains(Flags::SYN)
            && !header.flags.contains(Flags::FIN)
            && self.snd_wnd > 0
            && window == self.snd_wnd;
        // RFC 3522: the first ACK for a retransmission may prove the last reduction spurious.
        // Judged first, so that losses this same ACK reveals start a recovery of their own
        // rather than being taken back with it.
        let undone = self.snd_una.before(seg_ack) && self.judge_by_echo(seg_ack, tsecr);
        if self.sack_ack_has_work(segment) {
            // RFC 6675 / RFC 8985: the scoreboard sees the ACK before SND.UNA moves.
            self.on_sack_ack(now, segment);
        }
        if self.snd_una.before(seg_ack) {
            self.on_ack_advances(now, seg_ack, tsecr, undone);
        } else if is_duplicate {
            self.on_duplicate_ack(segment);
        }
        if window == 0 && seg_ack == self.snd_una {
            // MUST-37: a peer that keeps acknowledging our probes while its window stays zero
            // is alive; the connection stays open however long that lasts (SHLD-17).
            self.progress_at = now;
            self.probe_answered = true;
        }
        self.update_window_if_newer(now, seg_seq, seg_ack, window);

        let our_fin_acked = self.fin_seq().is_some_and(|fin| self.snd_una == fin + 1);
        match self.state {
            State::FinWait1 => {
                // If this segment also carries the peer's FIN, step 8 takes FIN-WAIT-1 straight
                // to TIME-WAIT; otherwise the ACK of our FIN moves us to FIN-WAIT-2 now.
                if our_fin_acked && !header.flags.contains(Flags::FIN) {
                    self.apply(now, Stimulus::AckOfFin);
                }
                true
            }
            State::Closing => {
                if our_fin_acked {
                    self.apply(now, Stimulus::AckOfFin);
                }
                // Nothing more can arrive in CLOSING that steps 6–8 would use.
                false
            }
            State::LastAck => {
                if our_fin_acked {
                    self.apply(now, Stimulus::AckOfFin);
                }
                false
            }
            State::Established | State::FinWait2 | State::CloseWait => true,
            // TIME-WAIT segments go to `on_segment_time_wait`, never here.
            State::TimeWait
            | State::Closed
            | State::Listen
            | State::SynSent
            | State::SynReceived => false,
        }
    }

    /// Step 5 in SYN-RECEIVED for an ACK outside SND.UNA < SEG.ACK =< SND.NXT:
    /// <SEQ=SEG.ACK><CTL=RST>. Out of line, as it is rare.
    #[cold]
    #[inline(never)]
    fn reset_unacceptable_ack(&mut self, seg_ack: SeqNum) {
        let remote = self.last_remote();
        self.queue_reply(Reply { remote, seq: seg_ack, ack: None });
    }

    /// Step 5 for an ACK of something not yet sent, or older than the send window allows
    /// (RFC 5961 §5): the challenge ACK. Out of line, as it is rare.
    #[cold]
    #[inline(never)]
    fn challenge_unacceptable_ack(&mut self, now: Instant) {
        self.send_challenge_ack(now);
    }

    /// SND.UNA advances to `seg_ack` (known to be within SND.UNA..=SND.NXT); `tsecr` is the
    /// segment's TSecr, if it carries the timestamps option. `undone`: this ACK proved the
    /// last reduction spurious, and the undo (RFC 4015 §3) set cwnd itself, so the ACK grows
    /// nothing.
    fn on_ack_advances(&mut self, now: Instant, seg_ack: SeqNum, tsecr: Option<u32>, undone: bool) {
        if !self.snd_una.before(seg_ack) {
            return;
        }
        let acked = seg_ack.since(self.snd_una);
        let latest_rtt = self.on_rtt_sample(now, seg_ack, tsecr);
        let data_end = self.send_buf_seq + len_u32(self.send_buf.len());
        let acked_data_end = seg_ack.min_seq(data_end);
        // Whether any data octet is acknowledged: an ACK of only our SYN or only our FIN
        // acknowledges none, and grows no window (RFC 5681 §3.1 counts ACKs of new data; after
        // the FIN nothing is ever sent again that cwnd could limit).
        let acks_data = acked_data_end.after(self.send_buf_seq);
        self.dup_acks = 0;
        let mut restart_timer = true;
        if undone {
            // The undo left fast recovery and set cwnd (RFC 4015 §3).
        } else if self.in_fast_recovery {
            restart_timer = self.on_ack_in_fast_recovery(seg_ack, acked);
        } else if self.syn_acked && acks_data && !self.in_fast_sack_recovery() {
            // RFC 6675 §5: cwnd stays put until the recovery point is acknowledged.
            self.on_congestion_event_sampled(CongestionEvent::Ack { acked }, latest_rtt);
        }
        if acks_data {
            let acked = acked_data_end.since(self.send_buf_seq);
            self.send_buf.discard(acked as usize);
            self.send_buf_seq = acked_data_end;
            if self.write_blocked && self.send_buf.free() > 0 {
                self.write_blocked = false;
                self.push_event(Event::Writable);
            }
        }
        if self.snd_up().is_some_and(|up| up.before_eq(seg_ack))
            && let Some(rare) = self.rare.as_mut()
        {
            rare.snd_up = None;
        }
        self.set_snd_una(seg_ack);
        // An ACK that moves SND.UNA acknowledges our SYN first of all.
        self.syn_acked = true;
        self.consecutive_retransmissions = 0;
        self.set_first_retransmission_at(None);
        self.progress_at = now;
        self.update_retransmit_timer(now, restart_timer);
    }

    /// [`on_ack_advances`](Self::on_ack_advances) in an RFC 6582 fast recovery (out of line:
    /// only after a loss without SACK). Returns whether the ACK restarts the retransmission
    /// timer.
    #[cold]
    #[inline(never)]
    fn on_ack_in_fast_recovery(&mut self, seg_ack: SeqNum, acked: u32) -> bool {
        if seg_ack.after_eq(self.recover) {
            self.in_fast_recovery = false;
            let flight = self.snd_nxt.since(seg_ack);
            self.on_congestion_event(CongestionEvent::RecoveryEnd { flight });
            return true;
        }
        // RFC 6582 step 5: a partial ACK; the next hole goes out at once. Only the first
        // partial ACK restarts the retransmission timer (§4, "Impatient"): a window with many
        // holes falls back on the timeout and slow start instead of repairing one hole per
        // round trip for as many round trips as there are holes.
        self.on_congestion_event(CongestionEvent::PartialAck { acked });
        self.retransmit_pending = true;
        let rare = self.rare_mut();
        let restart_timer = !rare.partial_ack_restarted_timer;
        rare.partial_ack_restarted_timer = true;
        restart_timer
    }

    /// The RTT sample an ACK of new data up to `seg_ack` gives, before SND.UNA moves. Karn
    /// (MUST-18, RFC 6298 §3): a probe sent once gives an exact one, and only while nothing
    /// was sent again since it went (`on_resent` forgets it: a cumulative ACK that covers a
    /// retransmission may answer it rather than the probe). With
    /// timestamps every such ACK gives one (RTTM, RFC 7323 §4.1): `now` less the TSval its
    /// TSecr echoes — the transmission that arrived, so retransmissions are timed too and
    /// Karn's rule is not needed for them (the exact probe is still preferred when it
    /// completes, as Linux does; the echo counts in milliseconds). Many samples a round trip
    /// are weighted as RFC 7323 Appendix G says, so RTTVAR does not collapse. Returns the
    /// sample, for the congestion controller.
    fn on_rtt_sample(
        &mut self,
        now: Instant,
        seg_ack: SeqNum,
        tsecr: Option<u32>,
    ) -> Option<Duration> {
        let probe = self.rtt_probe.filter(|&(probe_end, _)| probe_end.before_eq(seg_ack));
        if probe.is_some() {
            self.rtt_probe = None;
        }
        let sample = match probe {
            Some((_, sent_at)) => elapsed(now, sent_at),
            // The echo only counts without an exact sample.
            None => self.echoed_rtt_sample(now, tsecr)?,
        };
        if self.ts.is_on() {
            // Appendix G: ExpectedSamples = ceiling(FlightSize / (SMSS * 2)), which assumes
            // an ACK per two segments. An ACK that covers more (a receiver's GRO, a stretch
            // ACK: one per 64 KiB super-segment from Linux over TUN) stands for that much of
            // the flight, so the count is of ACKs like it: FlightSize over what it acks,
            // never more than the RFC's. Otherwise SRTT would move by 1/8 per round trip
            // only with 1/20 of the samples per round trip, and a bad first sample would
            // keep the RTO high for dozens of round trips. An ACK of the whole flight counts
            // one, whatever SMSS is.
            let flight = self.snd_nxt.since(self.snd_una);
            let acked = seg_ack.since(self.snd_una);
            let expected = if acked >= flight {
                1
            } else {
                let smss = u32::from(self.effective_mss()).max(1);
                flight.div_ceil(acked.max(smss.saturating_mul(2))).max(1)
            };
            self.rtt.on_sample_weighted(sample, expected);
        } else {
            self.rtt.on_sample(sample);
        }
        Some(sample)
    }

    /// RTTM's sample (RFC 7323 §4.1) from the TSecr `tsecr` an ACK of new data echoes, when
    /// no exact probe completed.
    fn echoed_rtt_sample(&self, now: Instant, tsecr: Option<u32>) -> Option<Duration> {
        let echoed = tsecr.and_then(|tsecr| self.ts.rtt_sample(now, tsecr));
        if !self.syn_acked && self.consecutive_retransmissions > 0 {
            // Our SYN (or SYN-ACK) went more than once and the peer echoes the TSval of an
            // earlier copy than the last (Linux answers a retransmitted SYN from the request
            // it made for the first, keeping that SYN's timestamp): the sample would time
            // the lost reply's retransmission timeout, not the path — 1 s against a path of
            // microseconds, an RTO of seconds for the first hundred round trips. As Karn's
            // rule does without timestamps (MUST-18): no sample; RFC 6298 (5.7) keeps the
            // 3 s RTO until the data's first ACK gives one. The echo counts in milliseconds,
            // hence the 1 ms of slack.
            let since_last_sent = self.last_send_at.map(|at| elapsed(now, at));
            if echoed
                .zip(since_last_sent)
                .is_some_and(|(echo, since)| echo > since.saturating_add(Duration::from_millis(1)))
            {
                return None;
            }
        }
        echoed
    }

    /// Steps 6 (URG), 7 (segment text) and 8 (FIN). `data_seq` is the sequence number of the
    /// first payload octet.
    fn process_text_and_fin(&mut self, now: Instant, segment: &Segment<'_>, seg_seq: SeqNum) {
        let header = &segment.header;
        if segment.payload.is_empty()
            && !header.flags.contains(Flags::FIN)
            && !header.flags.contains(Flags::URG)
            && self.rcv_fin_at().is_none()
        {
            // A bare ACK, with no FIN of the peer's waiting beyond a hole: steps 6-8 have
            // nothing to do but what they do last, settle an ACK of our FIN.
            self.settle_ack_of_our_fin(now);
            return;
        }
        let data_seq = if header.flags.contains(Flags::SYN) { header.seq + 1 } else { seg_seq };
        let accepts_text =
            matches!(self.state, State::Established | State::FinWait1 | State::FinWait2);

        // Sixth: the URG bit.
        self.process_urgent(segment);

        // Seventh: the segment text.
        let payload = segment.payload;
        let mut fin_stored = header.flags.contains(Flags::FIN);
        if !payload.is_empty() {
            if !accepts_text {
                // CLOSE-WAIT, CLOSING, LAST-ACK, TIME-WAIT: the peer already sent FIN; ignore.
                return;
            }
            let brings_new_data = (data_seq + len_u32(payload.len())).after(self.rcv_nxt);
            if self.read_closed && brings_new_data {
                self.reset_data_after_close(now);
                return;
            }
            // A FIN counts only if every octet before it fitted the window.
            fin_stored &= self.accept_text(now, data_seq, payload);
            self.on_text_for_autotune(now, echoed(segment));
        }

        // Eighth: the FIN bit, processed once every octet before it is in. A FIN beyond a
        // hole is remembered and takes effect when reassembly reaches it.
        let sequence_known = !matches!(self.state, State::Closed | State::Listen | State::SynSent);
        let mut fin_at = self.rcv_fin_at();
        if fin_stored && sequence_known && !self.state.has_peer_finished() {
            let fin_seq = data_seq + len_u32(payload.len());
            if fin_seq.after_eq(self.rcv_nxt) {
                fin_at = Some(fin_seq);
            }
        }
        let fin_acks_ours = self.state == State::FinWait1
            && self.fin_seq().is_some_and(|fin| self.snd_una == fin + 1);
        let fin_in_order = fin_at == Some(self.rcv_nxt);
        // "Do not process the FIN if the state is CLOSED, LISTEN, or SYN-SENT" (step 8); nor a
        // FIN we already have (its duplicate was unacceptable at step 1).
        if !fin_in_order || !sequence_known || self.state.has_peer_finished() {
            // A FIN beyond a hole is remembered until reassembly reaches it.
            if fin_at != self.rcv_fin_at() {
                self.set_rcv_fin_at(fin_at);
            }
            self.settle_ack_of_our_fin(now);
            return;
        }
        self.set_rcv_fin_at(None);
        self.advance_rcv_nxt(1);
        if let Some(assembler) = self.assembler.as_mut() {
            // Octets held beyond the peer's end of stream can never be delivered (a peer that
            // sent them misbehaved); RFC 2018 §4's blocks must not report them, and their
            // offsets from RCV.NXT would be off by the FIN's octet.
            assembler.forget_ranges();
        }
        self.forget_parked_chunks();
        // The FIN's sequence number takes no buffer space: the offered edge moves with it, so
        // the window does not look one octet smaller.
        self.rcv_adv_edge = self.rcv_adv_edge.map(|edge| edge + 1);
        // The FIN is acknowledged at once: the peer is waiting for it to finish.
        self.ack_now();
        if fin_acks_ours {
            self.apply(now, Stimulus::FinAckingOurFin);
        } else {
            self.apply(now, Stimulus::Fin);
        }
    }

    /// SHLD-3: new data after a full close: reset, the user will never read it. Out of line,
    /// as it is rare.
    #[cold]
    #[inline(never)]
    fn reset_data_after_close(&mut self, now: Instant) {
        if let Some(remote) = self.remote() {
            self.queue_reply(Reply { remote, seq: self.snd_nxt, ack: None });
        }
        self.apply(now, Stimulus::DataAfterClose);
    }

    /// Step 5 leaves the ACK of our FIN in FIN-WAIT-1 to step 8 when the segment also carries
    /// a FIN (FIN-WAIT-1 goes straight to TIME-WAIT if that FIN is processed). When it is not —
    /// beyond a hole, or no room in the window — the ACK alone moves us to FIN-WAIT-2.
    fn settle_ack_of_our_fin(&mut self, now: Instant) {
        let acked = self.state == State::FinWait1
            && self.fin_seq().is_some_and(|fin| self.snd_una == fin + 1);
        if acked {
            self.apply(now, Stimulus::AckOfFin);
        }
    }

    /// Step 6: the URG bit (MUST-30..33, MUST-62). The urgent pointer is an offset from the
    /// segment's own sequence number (RFC 9293 §3.1): on a SYN-ACK that is the SYN's, one before
    /// the first data octet.
    #[inline(always)]
    fn process_urgent(&mut self, segment: &Segment<'_>) {
        if segment.header.flags.contains(Flags::URG) {
            self.process_urgent_pointer(segment);
        }
    }

    /// [`process_urgent`](Self::process_urgent) for a segment with URG set: out of line, as
    /// almost no application uses urgent data.
    #[cold]
    #[inline(never)]
    fn process_urgent_pointer(&mut self, segment: &Segment<'_>) {
        let header = &segment.header;
        let accepts_urgent =
            matches!(self.state, State::Established | State::FinWait1 | State::FinWait2);
        if !accepts_urgent {
            return;
        }
        let up = header.seq + u32::from(header.urgent_ptr);
        // RCV.UP <- max(RCV.UP, SEG.UP). A pointer at or behind the one we hold, or at data the
        // application already read, changes nothing: the pointer cannot recede, and a receiver
        // must be robust to invalid values (§3.8.5). The segment is acceptable, so `up` lies
        // within a window and 64 KiB of RCV.NXT, and RCV.UP is forgotten once read past
        // (`on_urgent_read`): neither comparison spans half the sequence space.
        let advances =
            up.after(self.read_seq()) && self.rcv_up().is_none_or(|current| up.after(current));
        if advances {
            self.rare_mut().rcv_up = Some(up);
            // MUST-32: tell the user when urgent data starts to be pending, and again whenever
            // the pointer advances in the data stream.
            self.push_event(Event::Urgent);
        }
    }

    /// Stores the new octets of `payload` (starting at `data_seq`) in the receive buffer:
    /// in-order data is delivered, together with any out-of-order data it now reaches;
    /// out-of-order data waits in the ring at its offset (SHLD-31). Octets before RCV.NXT are
    /// duplicates and octets past the window are dropped (§3.10.7.4 trimming). Returns whether
    /// the whole payload fitted.
    fn accept_text(&mut self, now: Instant, data_seq: SeqNum, payload: &[u8]) -> bool {
        let window = self.rcv_acceptable_window();
        self.accept_text_within(now, data_seq, payload, window)
    }

    /// [`accept_text`](Self::accept_text) with the acceptable window (§3.10.7.4 step 1) known.
    /// For text at RCV.NXT only whether the payload fits matters, so any `window` at least
    /// the payload's length gives the same result.
    fn accept_text_within(
        &mut self,
        now: Instant,
        data_seq: SeqNum,
        payload: &[u8],
        window: u32,
    ) -> bool {
        let (offset, fresh) = if data_seq.before(self.rcv_nxt) {
            let skip = self.rcv_nxt.since(data_seq) as usize;
            (0, payload.get(skip..).unwrap_or(&[]))
        } else {
            (data_seq.since(self.rcv_nxt) as usize, payload)
        };
        if data_seq.before(self.rcv_nxt) {
            // RFC 2883 §4: the octets we already had are reported once as a D-SACK block.
            let dup_end = (data_seq + len_u32(payload.len())).min_seq(self.rcv_nxt);
            self.report_duplicate(data_seq, dup_end);
        }
        if fresh.is_empty() {
            // A duplicate: the peer lost our ACK; repeat it now (RFC 5681 §4.2).
            self.ack_now();
            return true;
        }
        // Octets past the window are trimmed. The ring has room beyond it (the rounding
        // reserve of SHLD-14), so the window decides, not the ring.
        let room = (window as usize).saturating_sub(offset);
        let fits = fresh.len() <= room;
        let fresh = fresh.get(..room).unwrap_or(fresh);
        if self.chunks().is_some() {
            return self.accept_chunk_text(now, offset, fresh, fits);
        }
        if offset > 0 {
            // Out of order: park it and tell the sender where the hole is with an immediate
            // duplicate ACK (RFC 5681 §4.2, MAY-13).
            let written = self.recv_buf.write_at(offset, fresh);
            let assembler = self.assembler.get_or_insert_with(|| Box::new(Assembler::new()));
            let (start, end) = (len_u32(offset), len_u32(offset + written));
            let held = if self.sack_ok { assembler.overlap(start, end) } else { None };
            if let Some((from, to)) = held {
                // RFC 2883 §4: out-of-order octets we already hold; the block holding them
                // follows.
                let (left, right) = (self.rcv_nxt + from, self.rcv_nxt + to);
                assembler.set_dsack(crate::wire::SackBlock { left, right });
            }
            let max_ranges = Assembler::range_limit(self.recv_buf.capacity());
            let stored = written > 0 && assembler.insert(start, end, max_ranges).is_ok();
            if stored {
                // RFC 2018 §4: the block holding this segment leads the next SACK option.
                assembler.note_arrival(start);
            }
            if !stored {
                self.count().out_of_order_dropped += 1;
            }
            self.ack_now();
            return stored && fits && written == fresh.len();
        }
        let was_empty = self.recv_buf.is_empty();
        let filled_hole = self.assembler.as_ref().is_some_and(|assembler| !assembler.is_empty());
        let written = self.recv_buf.write_at(0, fresh);
        let reached =
            self.assembler.as_mut().map_or(0, |assembler| assembler.advance(len_u32(written)));
        let delivered = written + reached as usize;
        self.recv_buf.commit(delivered);
        self.advance_rcv_nxt(len_u32(delivered));
        if delivered > 0 && was_empty {
            self.push_event(Event::Readable);
        }
        if filled_hole {
            // RFC 5681 §4.2: ACK at once when a segment fills (part of) a hole.
            self.unacked_octets = self.unacked_octets.saturating_add(len_u32(written));
            self.ack_now();
        } else {
            self.ack_soon(now, len_u32(written));
        }
        fits && written == fresh.len()
    }

    /// RFC 5681 §3.2: the third duplicate ACK retransmits the missing segment and enters fast
    /// recovery (once per window, RFC 6582 step 2); later ones inflate the window. Out of
    /// line: a duplicate ACK is a sign of loss or reordering, not the common ACK.
    #[inline(never)]
    fn on_duplicate_ack(&mut self, segment: &Segment<'_>) {
        self.dup_acks = self.dup_acks.saturating_add(1);
        if self.on_sack_duplicate_ack(segment) {
            // SACK recovery (`sack`) owns loss detection on this connection.
            return;
        }
        if self.in_fast_recovery {
            self.on_congestion_event(CongestionEvent::RecoveryDupAck);
        } else if self.dup_acks == 3 && self.snd_una.after(self.recover) {
            // Strictly after `recover` (SND.NXT when the last loss was detected): an ACK
            // equal to it may be a go-back-N resend after an RTO arriving twice (RFC 6582 §4;
            // Linux holds its state "until something *above* high_seq is ACKed" for Reno).
            let flight = self.snd_nxt.since(self.snd_una);
            self.on_congestion_event(CongestionEvent::FastRetransmit { flight });
            self.on_window_reduction(false);
            self.in_fast_recovery = true;
            self.count().fast_recoveries += 1;
            if let Some(rare) = self.rare.as_mut() {
                rare.partial_ack_restarted_timer = false;
            }
            self.recover = self.snd_nxt;
            self.retransmit_pending = true;
            // Karn (MUST-18): the retransmitted segment cannot be timed.
            self.rtt_probe = None;
        }
    }

    /// SND.WND, SND.WL1, SND.WL2 from a segment (§3.10.7.4 step 5).
    fn update_send_window(&mut self, seg_seq: SeqNum, seg_ack: SeqNum, window: u32) {
        self.snd_wnd = window;
        self.max_snd_wnd = self.max_snd_wnd.max(window);
        self.snd_wl1 = seg_seq;
        self.snd_wl2 = seg_ack;
        if window > 0 {
            self.set_timer(Timer::Persist, None);
            self.persist_backoff = 0;
        }
    }

    /// The peer's window field in octets (RFC 7323 §2.3; only called for non-SYN segments,
    /// whose windows are scaled once both sides agreed).
    fn scaled_window(&self, raw: u16) -> u32 {
        let shift = if self.wscale_ok { self.snd_wscale } else { WindowScale::NONE };
        Window::from_scaled(raw, shift).get()
    }

    /// RFC 7323 §2.2: scaling is on only if both SYNs carry the option; a shift above 14 is
    /// taken as 14 (§2.3).
    pub(super) fn on_peer_window_scale(&mut self, offered: Option<u8>) {
        self.wscale_ok = self.config.window_scaling && offered.is_some();
        self.snd_wscale = offered.map_or(WindowScale::NONE, WindowScale::clamped);
    }

    /// MUST-14/15: use the peer's MSS option, or the default when there is none.
    pub(super) fn on_peer_mss(&mut self, mss: Option<u16>) {
        if let Some(mss) = mss.and_then(Mss::new) {
            self.peer_mss = mss;
        }
    }
}

/// The TSecr of a segment that can echo one: it carries the timestamps option and the ACK bit
/// (RFC 7323 §3.2: without ACK, TSecr MUST be ignored).
fn echoed(segment: &Segment<'_>) -> Option<u32> {
    let header = &segment.header;
    let timestamps = header.options.timestamps.filter(|_| header.flags.contains(Flags::ACK));
    timestamps.map(|ts| ts.tsecr)
}

/// The unspecified address of `ip`'s family (a wildcard listener, or no address yet).
pub(crate) const fn unspecified_like(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(core::net::Ipv6Addr::UNSPECIFIED),
    }
}

/// Whether `ip` can be the source of a connection: not unspecified, multicast or the IPv4
/// limited broadcast (RFC 9293 §3.9.2.3, MUST-46, MUST-57, MUST-63).
pub(crate) fn is_valid_source(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast()),
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast()),
    }
}

/// §3.10.7.1 / §3.10.7.2: the RST that answers a segment for no connection. If the segment
/// has an ACK: <SEQ=SEG.ACK><CTL=RST>; otherwise <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
fn reset_for(segment: &Segment<'_>, from: SocketAddr) -> Reply {
    let header = &segment.header;
    if header.flags.contains(Flags::ACK) {
        Reply { remote: from, seq: header.ack, ack: None }
    } else {
        Reply { remote: from, seq: SeqNum::new(0), ack: Some(header.seq + segment.seg_len()) }
    }
}

/// Test-only switches and counters of header prediction, for the differential tests
/// (`super::differential`).
#[cfg(all(test, feature = "std"))]
pub(super) mod switches {
    use core::cell::Cell;

    std::thread_local! {
        /// Set: every segment takes the full path (the reference of the differential test).
        pub(in crate::connection) static FULL_PATH_ONLY: Cell<bool> = const { Cell::new(false) };
        /// Segments the fast path took on this thread.
        pub(in crate::connection) static PREDICTED: Cell<u64> = const { Cell::new(0) };
    }
}

/// The fast path against the full path: the same random segment streams (in order, out of
/// order, duplicated, lost; with and without timestamps and SACK; windows opening and
/// closing as the application reads) go to one pair of connections with header prediction
/// and to one forced through the full path, and everything observable must be identical.
#[cfg(all(test, feature = "std"))]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use core::cell::Cell;

    use proptest::prelude::*;

    use super::super::differential::{Op, Paths, World, assert_same_as_reference, config, forged};
    use super::switches::PREDICTED;
    use crate::SeqNum;

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (any::<bool>(), 1usize..6000).prop_map(|(side, len)| Op::Send(side, len)),
            3 => Just(Op::Poll),
            1 => Just(Op::PollChunks),
            8 => (any::<usize>(), prop::bool::weighted(0.1), any::<bool>())
                .prop_map(|(at, dup, bytes)| Op::Deliver(at, dup, bytes)),
            1 => any::<usize>().prop_map(Op::Drop),
            2 => (any::<bool>(), 1usize..20_000).prop_map(|(side, len)| Op::Read(side, len)),
            1 => (1u64..400).prop_map(Op::Tick),
            1 => Just(Op::Close(false)),
            3 => (any::<bool>(), forged()).prop_map(|(side, forged)| Op::Forge(side, forged)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// RFC 9293 §3.10.7.4 through header prediction or not: the same state, segments,
        /// events and status after every step.
        #[test]
        fn header_prediction_is_invisible(
            flags in 0u8..32,
            ops in prop::collection::vec(op(), 1..120),
        ) {
            let full = Paths { full_path_only: true, ..Paths::default() };
            assert_same_as_reference(&config(flags), Paths::default(), full, &ops)?;
        }

        /// The send fast path (`plan_header_lean`, `emit_bare`: the header from the fixed
        /// fields and at most the timestamps option) against the general header, with and
        /// without header prediction on receive: the same octets on the link, the same
        /// state, events and status after every step, through SACK blocks, FINs, losses,
        /// duplicates and closed windows.
        #[test]
        fn lean_path_writes_what_the_general_path_does(
            flags in 0u8..32,
            predicted in any::<bool>(),
            ops in prop::collection::vec(op(), 1..120),
        ) {
            let lean = Paths { full_path_only: !predicted, ..Paths::default() };
            let general =
                Paths { full_path_only: true, general_headers_only: true, ..Paths::default() };
            assert_same_as_reference(&config(flags), lean, general, &ops)?;
        }
    }

    /// Step 1's shortcut at RCV.NXT (`on_segment_otherwise`): under any window, a segment
    /// there is acceptable or at the closed window's edge, and the edge case needs text.
    #[test]
    fn a_segment_at_rcv_nxt_always_passes_step_one() {
        for rcv_nxt in [0u32, 1, 0x7fff_ffff, 0x8000_0000, u32::MAX] {
            let rcv_nxt = SeqNum::new(rcv_nxt);
            for seg_len in [0u32, 1, 2, 1460, 65_535, u32::MAX / 2] {
                for window in [0u32, 1, 2, 1460, 65_535, 1 << 30] {
                    let at_edge = window == 0 && seg_len > 0;
                    assert!(at_edge || rcv_nxt.is_acceptable(seg_len, rcv_nxt, window));
                    if seg_len == 0 {
                        assert!(rcv_nxt.is_acceptable(seg_len, rcv_nxt, window));
                    }
                }
            }
        }
    }

    /// A plain bulk transfer takes the fast path for (nearly) every data segment and ACK.
    #[test]
    fn bulk_segments_take_the_fast_path() {
        let mut world = World::new(&config(0b11), Paths::default());
        PREDICTED.with(|count| count.set(0));
        for _ in 0..40 {
            world.apply(&Op::Send(false, 6000));
            world.apply(&Op::Poll);
            while !world.link.is_empty() {
                world.apply(&Op::Deliver(0, false, true));
            }
            world.apply(&Op::Read(true, 20_000));
        }
        let predicted = PREDICTED.with(Cell::get);
        assert!(predicted >= 160, "only {predicted} segments predicted");
    }
}
