//! TIME-WAIT, written once (RFC 9293 §3.6.1, §3.10.7.4; RFC 1337; RFC 5961; RFC 6191).
//!
//! Once both FINs are acknowledged a connection only has to answer the stragglers of its old
//! incarnation for 2×MSL (MUST-13), and for that it needs a handful of numbers: [`TimeWait`].
//! [`TimeWait::judge`] decides what one incoming segment gets, following §3.10.7.4 step by
//! step, and returns a [`Verdict`]. Both holders of a TIME-WAIT 4-tuple call it — a full
//! `Connection` still in TIME-WAIT (through `Connection::time_wait_record`) and the endpoint's
//! compact record that replaces the connection once the application is done with it — so the
//! two can never answer differently. What differs is only who may act on
//! [`Verdict::Reopen`]: a lone connection cannot start a new incarnation, the endpoint can
//! (MAY-2).
//!
//! This module also owns [`AckLimiter`], the RFC 5961 §7 rate limit of the ACKs a
//! misbehaving peer can draw, kept per connection (and per record): never host-wide
//! (CVE-2016-5696).

use core::time::Duration;

use crate::connection::ts_before;
use crate::seq::{SeqNum, Window, WindowScale};
use crate::time::Instant;
use crate::wire::{Flags, Options, Segment, TcpHeader, Timestamps};

/// A TIME-WAIT connection, compact: 40 bytes on 64-bit targets (`record_stays_40_bytes`;
/// TS.Recent took the 4 bytes of padding, its `Option` the 4 the rate limiter no longer pads).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimeWait {
    /// SND.NXT: just past our FIN.
    pub(crate) snd_nxt: SeqNum,
    /// RCV.NXT: just past the peer's FIN.
    pub(crate) rcv_nxt: SeqNum,
    /// The window field of our ACKs exactly as it goes on the wire: the offered window
    /// already shifted right by `rcv_shift` (RFC 7323 §2.3).
    pub(crate) window: u16,
    /// Our receive shift (none unless both SYNs agreed to scale): RCV.WND for the
    /// acceptability test is `window << rcv_shift`.
    pub(crate) rcv_shift: WindowScale,
    /// The peer's shift: MAX.SND.WND of RFC 5961 §5 is taken as the largest window the peer
    /// can advertise under it, the "maximum permissible window" RFC 9293 §3.10.7.4 step 5
    /// allows in place of the largest one seen.
    pub(crate) snd_shift: WindowScale,
    /// The rate limit of the ACKs this 4-tuple sends to unacceptable segments.
    pub(crate) acks: AckLimiter,
    /// TS.Recent, when the connection used the timestamps option (RFC 7323): our ACKs echo
    /// it, PAWS judges by it (§5.3), and RFC 6191 reopens by it. The 24-day rule (§5.5) has no
    /// use here: the record lives 2×MSL.
    pub(crate) ts_recent: Option<u32>,
    /// When the 2×MSL wait ends.
    pub(crate) expires: Instant,
}

/// What a segment arriving in TIME-WAIT gets (RFC 9293 §3.10.7.4, in the order of its checks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A RST, acceptable or not: ignored, the 2×MSL wait runs on (RFC 1337: no TIME-WAIT
    /// assassination; the first and second checks drop it either way).
    IgnoreRst,
    /// Dropped without a reply: an acceptable segment without the ACK bit (fifth check), or an
    /// acceptable one TIME-WAIT has no use for (steps 6–8 ignore URG and text after the peer's
    /// FIN, and a FIN at or past RCV.NXT is not the FIN the peer sent, which ended there).
    Drop,
    /// `<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>`, through the [`AckLimiter`]: an unacceptable
    /// segment (first check), a SYN (fourth check, RFC 5961 §4 challenge ACK), or an ACK
    /// outside SND.UNA − MAX.SND.WND ..= SND.NXT (fifth check, RFC 5961 §5).
    Ack {
        /// The segment failed the first check (for the counters).
        unacceptable: bool,
    },
    /// The peer's own FIN again — it ends exactly at RCV.NXT and carries an acceptable ACK —
    /// so our ACK of it was lost: ACK it again and restart the 2×MSL wait (§3.10.7.4 steps 5
    /// and 8). Not rate-limited, as the FIN of an established connection is not.
    AckFin,
    /// A SYN that may open a new incarnation of the 4-tuple (MAY-2, RFC 6191): SEG.SEQ is
    /// past the old RCV.NXT. Only the endpoint can reopen, with an ISS after
    /// [`TimeWait::snd_nxt`], keeping this record until the new handshake completes. A holder
    /// that cannot reopen answers it as [`Verdict::Ack`], as the checks of §3.10.7.4 do.
    Reopen,
}

impl TimeWait {
    /// The verdict on `segment` (RFC 9293 §3.10.7.4 steps 1 to 8 for TIME-WAIT, with the
    /// SYN rule of RFC 6191 in front).
    pub(crate) fn judge(&self, segment: &Segment<'_>) -> Verdict {
        let header = &segment.header;
        let flags = header.flags;
        let (seg_seq, seg_len) = (header.seq, segment.seg_len());
        let (syn, ack, rst) =
            (flags.contains(Flags::SYN), flags.contains(Flags::ACK), flags.contains(Flags::RST));

        let tsval = header.options.timestamps.map(|ts| ts.tsval);

        // RFC 6191 §2 (MAY-2, RFC 9293 §3.6.1): a SYN may reopen the 4-tuple, before any check
        // below (RFC 9293 §3.10.7.4 step 1 note). When it carries timestamps and the old
        // incarnation used them, its TSval decides: reopen if TSval > TS.Recent, or TSval =
        // TS.Recent and SEG.SEQ > RCV.NXT; otherwise drop the SYN silently. Otherwise (no
        // timestamps on one side) SEG.SEQ > RCV.NXT decides.
        if syn && !ack && !rst {
            match (self.ts_recent, tsval) {
                (Some(recent), Some(tsval)) => {
                    let newer = ts_before(recent, tsval)
                        || (tsval == recent && seg_seq.after(self.rcv_nxt));
                    return if newer { Verdict::Reopen } else { Verdict::Drop };
                }
                (Some(_) | None, None) | (None, Some(_)) => {
                    if seg_seq.after(self.rcv_nxt) {
                        return Verdict::Reopen;
                    }
                }
            }
        }

        // RFC 7323, as for an open connection (`Connection::handle_segment`): once the
        // option was negotiated, a segment other than a RST or SYN without it is dropped
        // silently (§3.2), and one with a TSval older than TS.Recent draws the ACK and is
        // dropped (PAWS, §5.3 R1).
        if let Some(recent) = self.ts_recent
            && !rst
            && !syn
        {
            match tsval {
                None => return Verdict::Drop,
                Some(tsval) if ts_before(tsval, recent) => {
                    return Verdict::Ack { unacceptable: true };
                }
                Some(_) => {}
            }
        }

        // First: sequence number acceptability.
        if !self.is_acceptable(seg_seq, seg_len) {
            if rst {
                return Verdict::IgnoreRst;
            }
            let peers_fin = flags.contains(Flags::FIN) && seg_seq + seg_len == self.rcv_nxt;
            if peers_fin && ack && self.is_ack_in_range(header.ack) {
                return Verdict::AckFin;
            }
            return Verdict::Ack { unacceptable: true };
        }
        // Second: the RST bit. RFC 1337 rather than "enter CLOSED".
        if rst {
            return Verdict::IgnoreRst;
        }
        // Third: security and compartment (no IP security options here).
        // Fourth: the SYN bit: RFC 5961 §4 challenge ACK.
        if syn {
            return Verdict::Ack { unacceptable: false };
        }
        // Fifth: the ACK field.
        if !ack {
            return Verdict::Drop;
        }
        if !self.is_ack_in_range(header.ack) {
            return Verdict::Ack { unacceptable: false };
        }
        // TIME-WAIT: "the only thing that can arrive in this state is a retransmission of the
        // remote FIN" — which ends at RCV.NXT, so it failed the first check above. Sixth and
        // seventh: URG and text are ignored after the peer's FIN. Eighth: a FIN here is not
        // the peer's, so it neither draws an ACK nor restarts the wait (a forged FIN could
        // otherwise keep the 4-tuple in TIME-WAIT for ever).
        Verdict::Drop
    }

    /// RCV.WND as the peer reads it from our ACKs.
    fn rcv_wnd(&self) -> u32 {
        Window::from_scaled(self.window, self.rcv_shift).get()
    }

    /// The four acceptability cases of §3.10.7.4 step 1.
    fn is_acceptable(&self, seg_seq: SeqNum, seg_len: u32) -> bool {
        seg_seq.is_acceptable(seg_len, self.rcv_nxt, self.rcv_wnd())
    }

    /// RFC 5961 §5: SND.UNA − MAX.SND.WND =< SEG.ACK =< SND.NXT (SND.UNA = SND.NXT here:
    /// our FIN is acknowledged).
    fn is_ack_in_range(&self, seg_ack: SeqNum) -> bool {
        let max_snd_wnd = Window::from_scaled(u16::MAX, self.snd_shift).get();
        let lower = self.snd_nxt + 0u32.wrapping_sub(max_snd_wnd);
        !seg_ack.after(self.snd_nxt) && !seg_ack.before(lower)
    }

    /// The peer's own FIN came again ([`Verdict::AckFin`]): its TSval becomes TS.Recent, so
    /// the ACK echoes it (RFC 7323 §4.3: it is at RCV.NXT − 1, below Last.ACK.sent, and PAWS
    /// passed it).
    pub(crate) fn on_fin_again(&mut self, segment: &Segment<'_>) {
        if let (Some(recent), Some(ts)) = (self.ts_recent, segment.header.options.timestamps)
            && !ts_before(ts.tsval, recent)
        {
            self.ts_recent = Some(ts.tsval);
        }
    }

    /// The ACK this record sends: `<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>` with our window, and
    /// the timestamps option (TSval `tsval`, TSecr TS.Recent) when the connection used it.
    pub(crate) fn ack_header(&self, local_port: u16, remote_port: u16, tsval: u32) -> TcpHeader {
        let mut options = Options::NONE;
        options.timestamps = self.ts_recent.map(|tsecr| Timestamps { tsval, tsecr });
        TcpHeader {
            src_port: local_port,
            dst_port: remote_port,
            seq: self.snd_nxt,
            ack: self.rcv_nxt,
            flags: Flags::ACK,
            window: self.window,
            urgent_ptr: 0,
            options,
        }
    }
}

/// When a TIME-WAIT entered or restarted at `now` ends: 2×MSL later (MUST-13).
pub(crate) fn expiry(now: Instant, msl: Duration) -> Instant {
    now + msl.saturating_mul(2)
}

/// RFC 5961 §7: at most `limit` ACKs per `interval` to segments that should not have come
/// (challenge ACKs, and the ACKs of unacceptable segments: two hosts each outside the other's
/// window would otherwise trade ACKs for ever). Bounded state, per connection or record.
///
/// Packed to 4-byte alignment (12 bytes, not 16), so the TIME-WAIT record holds TS.Recent in
/// its 40 bytes; its fields are only ever copied, never borrowed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C, packed(4))]
pub(crate) struct AckLimiter {
    /// Start of the current interval.
    since: Instant,
    /// ACKs sent in it.
    sent: u32,
}

impl AckLimiter {
    /// Whether one more ACK may go at `now`; counts it if so.
    pub(crate) fn allow(&mut self, now: Instant, interval: Duration, limit: u32) -> bool {
        if now.saturating_duration_since(self.since) >= interval {
            self.since = now;
            self.sent = 0;
        }
        if self.sent < limit {
            self.sent += 1;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use core::time::Duration;

    use super::{AckLimiter, TimeWait, Verdict};
    use crate::seq::{SeqNum, WindowScale};
    use crate::time::Instant;
    use crate::wire::{Flags, Options, Segment, TcpHeader};

    /// Near the wrap, so every comparison below crosses 2^32.
    const SND_NXT: u32 = u32::MAX - 1;
    const RCV_NXT: u32 = u32::MAX - 3;

    fn record(window: u16, rcv_shift: u8) -> TimeWait {
        TimeWait {
            snd_nxt: SeqNum::new(SND_NXT),
            rcv_nxt: SeqNum::new(RCV_NXT),
            window,
            rcv_shift: WindowScale::new(rcv_shift).unwrap(),
            snd_shift: WindowScale::NONE,
            acks: AckLimiter::default(),
            ts_recent: None,
            expires: Instant::from_millis(240_000),
        }
    }

    fn judge(record: &TimeWait, flags: Flags, seq: u32, ack: u32, payload: &[u8]) -> Verdict {
        let header = TcpHeader {
            src_port: 1,
            dst_port: 2,
            seq: SeqNum::new(seq),
            ack: SeqNum::new(ack),
            flags,
            window: 100,
            urgent_ptr: 0,
            options: Options::NONE,
        };
        let segment = Segment { header, payload };
        record.judge(&segment)
    }

    #[test]
    fn judge_takes_the_checks_of_3_10_7_4_in_order_must_13() {
        let r = record(1000, 0);
        let (ack, fin_ack, syn) = (Flags::ACK, Flags::FIN | Flags::ACK, Flags::SYN);
        let fin_seq = RCV_NXT.wrapping_sub(1);
        // The peer's FIN again: ACK and restart; without ACK, or acking nothing we sent, no.
        assert_eq!(judge(&r, fin_ack, fin_seq, SND_NXT, &[]), Verdict::AckFin);
        assert_eq!(judge(&r, Flags::FIN, fin_seq, 0, &[]), Verdict::Ack { unacceptable: true });
        let beyond = SND_NXT.wrapping_add(1);
        assert_eq!(judge(&r, fin_ack, fin_seq, beyond, &[]), Verdict::Ack { unacceptable: true });
        // A FIN after data, ending at RCV.NXT, is the peer's FIN too.
        let data_fin = RCV_NXT.wrapping_sub(4);
        assert_eq!(judge(&r, fin_ack, data_fin, SND_NXT, b"abc"), Verdict::AckFin);
        // Any other FIN: acceptable ones are dropped, unacceptable ones draw the ACK.
        assert_eq!(judge(&r, fin_ack, RCV_NXT, SND_NXT, &[]), Verdict::Drop);
        assert_eq!(
            judge(&r, fin_ack, fin_seq - 5, SND_NXT, &[]),
            Verdict::Ack { unacceptable: true }
        );
        assert_eq!(judge(&r, Flags::FIN, RCV_NXT, 0, &[]), Verdict::Drop);
        // RST: ignored in or out of the window (RFC 1337).
        assert_eq!(judge(&r, Flags::RST, RCV_NXT, 0, &[]), Verdict::IgnoreRst);
        assert_eq!(judge(&r, Flags::RST, RCV_NXT.wrapping_add(5000), 0, &[]), Verdict::IgnoreRst);
        // SYN: past RCV.NXT a reopen candidate; at RCV.NXT a challenge ACK; left of it the ACK
        // of step 1; with ACK never a reopen.
        assert_eq!(judge(&r, syn, RCV_NXT.wrapping_add(1), 0, &[]), Verdict::Reopen);
        assert_eq!(judge(&r, syn, RCV_NXT, 0, &[]), Verdict::Ack { unacceptable: false });
        assert_eq!(
            judge(&r, syn, RCV_NXT.wrapping_sub(10), 0, &[]),
            Verdict::Ack { unacceptable: true }
        );
        let syn_ack = Flags::SYN | Flags::ACK;
        assert_eq!(judge(&r, syn_ack, RCV_NXT, SND_NXT, &[]), Verdict::Ack { unacceptable: false });
        assert_eq!(
            judge(&r, syn_ack, RCV_NXT.wrapping_add(1000), SND_NXT, &[]),
            Verdict::Ack { unacceptable: true }
        );
        // ACKs: at the window's edges unacceptable; inside, out of range draws the ACK.
        assert_eq!(
            judge(&r, ack, RCV_NXT.wrapping_add(1000), SND_NXT, &[]),
            Verdict::Ack { unacceptable: true }
        );
        assert_eq!(
            judge(&r, ack, RCV_NXT.wrapping_sub(1), SND_NXT, &[]),
            Verdict::Ack { unacceptable: true }
        );
        assert_eq!(judge(&r, ack, RCV_NXT.wrapping_add(999), SND_NXT, &[]), Verdict::Drop);
        assert_eq!(judge(&r, ack, RCV_NXT, beyond, &[]), Verdict::Ack { unacceptable: false });
        let too_old = SND_NXT.wrapping_sub(65_536);
        assert_eq!(judge(&r, ack, RCV_NXT, too_old, &[]), Verdict::Ack { unacceptable: false });
        assert_eq!(judge(&r, ack, RCV_NXT, too_old + 1, &[]), Verdict::Drop);
        // No ACK bit on an acceptable segment: dropped (fifth check).
        assert_eq!(judge(&r, Flags::EMPTY, RCV_NXT, 0, b"x"), Verdict::Drop);
    }

    #[test]
    fn the_window_is_scaled_for_the_acceptability_test_must_13() {
        // 1000 << 3 = 8000 octets of window.
        let r = record(1000, 3);
        let ack = Flags::ACK;
        assert_eq!(judge(&r, ack, RCV_NXT.wrapping_add(7999), SND_NXT, &[]), Verdict::Drop);
        assert_eq!(
            judge(&r, ack, RCV_NXT.wrapping_add(8000), SND_NXT, &[]),
            Verdict::Ack { unacceptable: true }
        );
        // A zero window accepts only a segment at RCV.NXT without text.
        let r = record(0, 3);
        assert_eq!(judge(&r, ack, RCV_NXT, SND_NXT, &[]), Verdict::Drop);
        assert_eq!(judge(&r, ack, RCV_NXT, SND_NXT, b"x"), Verdict::Ack { unacceptable: true });
    }

    #[test]
    fn limiter_allows_limit_per_interval() {
        let mut limiter = AckLimiter::default();
        let second = Duration::from_secs(1);
        let start = Instant::from_millis(5_000);
        let allowed = (0..25).filter(|_| limiter.allow(start, second, 10)).count();
        assert_eq!(allowed, 10);
        assert!(!limiter.allow(start + Duration::from_millis(999), second, 10));
        assert!(limiter.allow(start + second, second, 10));
    }

    /// The record's size is part of the endpoint's memory budget per TIME-WAIT 4-tuple.
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn record_stays_40_bytes() {
        assert_eq!(size_of::<TimeWait>(), 40);
    }
}
