//! RFC 7323 timestamps for one connection: whether the option is in use (negotiation, §3.2),
//! our TSval clock (§5.4, §7.1), TS.Recent and Last.ACK.sent (§4.3), the PAWS test (§5.3, with
//! the 24-day rule of §5.5) and RTT samples from TSecr (RTTM, §4.1).
//!
//! The connection calls these at the points of SEGMENT ARRIVES and of output the RFC names;
//! `time_wait` keeps TS.Recent in its compact record. Timestamp values live in a modular 32-bit
//! space: `s < t` iff `0 < (t − s) < 2^31` (§5.2), like sequence numbers.

use core::time::Duration;

use crate::seq::SeqNum;
use crate::time::Instant;
use crate::wire;

/// A TS.Recent this old (in seconds) is no longer believed: RFC 7323 §5.5's 24 days, the
/// shortest time in which a peer clock ticking every millisecond can move 2^31 ticks.
const PAWS_IDLE_SECS: u32 = 24 * 24 * 60 * 60;

/// `a` is before `b` in the modular timestamp space (RFC 7323 §5.2).
pub(crate) const fn ts_before(a: u32, b: u32) -> bool {
    let distance = b.wrapping_sub(a);
    distance != 0 && distance < 1 << 31
}

/// Our TSval at `now` for a connection whose clock has `offset`: a 1 ms clock (§5.4 allows
/// 1 ms to 1 s per tick, and asks for a tick at least every 2^31 octets sent: at 1 ms that
/// holds below 17 Tbit/s) plus the offset.
pub(crate) const fn tsval(now: Instant, offset: u32) -> u32 {
    // Truncation is the point: the clock is modular.
    (now.as_millis() as u32).wrapping_add(offset)
}

/// Whether the option is used on this connection (RFC 7323 §3.2), and whether the
/// application wants it (`Config::timestamps`, `Connection::set_timestamps`), in one octet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Switched off by the application: never offered, never used.
    Disabled,
    /// Wanted but not settled: our SYN offers it; the peer's SYN or SYN-ACK decides.
    Offer,
    /// Both SYNs carried it: every segment we send carries it (§3.2).
    On,
    /// Wanted, but the handshake did not negotiate it.
    Declined,
}

/// The timestamp state of a connection: 17 bytes, packed (alignment 1) so they fit the idle
/// TCB's 400-byte budget without 3 bytes of padding; its fields are only ever copied, never
/// borrowed.
///
/// Without the option in use (`Disabled`, `Declined`) no segment carries it and a received
/// one is ignored (§3.2: "the TSopt MUST be ignored and the packet processed normally").
#[derive(Clone, Copy, Debug)]
#[repr(C, packed)]
pub(super) struct TsState {
    mode: Mode,
    /// Added to the millisecond clock so TSval leaks no host uptime (§7.1;
    /// `isn::timestamp_offset`).
    offset: u32,
    /// TS.Recent: the TSval to echo next, and the PAWS reference (§4.3, §5.3).
    recent: u32,
    /// When TS.Recent was last set, in whole seconds of the caller's clock (the 24-day rule).
    recent_secs: u32,
    /// Last.ACK.sent: the ACK field of the last segment we sent (§4.3).
    last_ack_sent: SeqNum,
}

impl TsState {
    pub(super) const fn new(wanted: bool) -> Self {
        Self {
            mode: if wanted { Mode::Offer } else { Mode::Disabled },
            offset: 0,
            recent: 0,
            recent_secs: 0,
            last_ack_sent: SeqNum::new(0),
        }
    }

    /// A fresh TCB (OPEN, or a return to LISTEN): nothing negotiated, the choice kept.
    pub(super) const fn reset(&mut self) {
        *self = Self::new(!matches!(self.mode, Mode::Disabled));
    }

    /// The application's choice; it counts only while the handshake has not begun.
    pub(super) const fn set_wanted(&mut self, wanted: bool) {
        *self = Self::new(wanted);
    }

    /// Our clock's offset for this connection's 4-tuple (RFC 7323 §7.1).
    pub(super) const fn set_offset(&mut self, offset: u32) {
        self.offset = offset;
    }

    /// Both SYNs carried the option: every segment carries it (§3.2), and the effective MSS
    /// is 12 octets smaller (MUST-16).
    pub(super) fn is_on(&self) -> bool {
        self.mode == Mode::On
    }

    /// TS.Recent, while the option is in use.
    pub(super) fn recent(&self) -> Option<u32> {
        self.is_on().then_some(self.recent)
    }

    /// TSval at `now` (see [`tsval`]).
    pub(super) const fn tsval(&self, now: Instant) -> u32 {
        tsval(now, self.offset)
    }

    /// The peer's SYN (or SYN-ACK) arrived with `offered`: the option is used iff we wanted it
    /// and the peer sent it (§3.2 — on our side, the SYN-ACK carries it only then), TS.Recent
    /// starts at its TSval, and the ACK we are about to send is at `rcv_nxt`.
    pub(super) fn on_peer_syn(
        &mut self,
        now: Instant,
        offered: Option<wire::Timestamps>,
        rcv_nxt: SeqNum,
    ) {
        match (self.mode, offered) {
            (Mode::Offer | Mode::On | Mode::Declined, Some(ts)) => {
                self.mode = Mode::On;
                self.set_recent(now, ts.tsval);
            }
            (Mode::Offer | Mode::On | Mode::Declined, None) => self.mode = Mode::Declined,
            (Mode::Disabled, Some(_) | None) => {}
        }
        self.last_ack_sent = rcv_nxt;
    }

    /// The option for an outgoing segment, if it carries one: always once negotiated; on our
    /// SYN (`first_syn`: a SYN sent before the peer's SYN arrived) when we offer it; never
    /// otherwise — in particular not on a SYN-ACK to a SYN without it (§3.2). TSecr is
    /// TS.Recent when the ACK bit is set and zero when not (§3.2, §4.3 (3)).
    pub(super) fn option(
        &self,
        now: Instant,
        first_syn: bool,
        ack: bool,
    ) -> Option<wire::Timestamps> {
        let sends = match self.mode {
            Mode::On => true,
            Mode::Offer => first_syn,
            Mode::Disabled | Mode::Declined => false,
        };
        sends.then(|| wire::Timestamps {
            tsval: self.tsval(now),
            tsecr: if ack { self.recent } else { 0 },
        })
    }

    /// We sent a segment acknowledging up to `rcv_nxt` (§4.3 (1): Last.ACK.sent).
    pub(super) const fn on_ack_sent(&mut self, rcv_nxt: SeqNum) {
        self.last_ack_sent = rcv_nxt;
    }

    /// Whether TS.Recent still counts: set less than 24 days ago (§5.5).
    fn recent_is_valid(&self, now: Instant) -> bool {
        secs(now).wrapping_sub(self.recent_secs) < PAWS_IDLE_SECS
    }

    /// PAWS, RFC 7323 §5.3 R1: a segment whose TSval is older than a valid TS.Recent is an old
    /// duplicate. (The caller exempts RSTs, as R1 does.)
    pub(super) fn paws_rejects(&self, now: Instant, tsval: u32) -> bool {
        self.is_on() && ts_before(tsval, self.recent) && self.recent_is_valid(now)
    }

    /// §4.3 (2) and §5.3 R3: an acceptable segment with SEG.TSval >= TS.Recent (or any TSval
    /// once TS.Recent is more than 24 days old, §5.5) and SEG.SEQ =< Last.ACK.sent sets
    /// TS.Recent, so we echo the TSval of the earliest segment our next ACK covers.
    pub(super) fn on_acceptable(&mut self, now: Instant, seg_seq: SeqNum, tsval: u32) {
        let newer = !ts_before(tsval, self.recent) || !self.recent_is_valid(now);
        if self.is_on() && newer && seg_seq.before_eq(self.last_ack_sent) {
            self.set_recent(now, tsval);
        }
    }

    /// [`on_acceptable`](Self::on_acceptable) for a segment PAWS has just let through while
    /// the option is in use (header prediction): not rejected means SEG.TSval >= TS.Recent
    /// or TS.Recent no longer valid, which is `on_acceptable`'s "newer", so only
    /// SEG.SEQ =< Last.ACK.sent is left to test (§4.3 (2)).
    #[inline(always)]
    pub(super) fn on_acceptable_after_paws(&mut self, now: Instant, seg_seq: SeqNum, tsval: u32) {
        if seg_seq.before_eq(self.last_ack_sent) {
            self.set_recent(now, tsval);
        }
    }

    fn set_recent(&mut self, now: Instant, tsval: u32) {
        self.recent = tsval;
        self.recent_secs = secs(now);
    }

    /// RTTM (§4.1): the round trip of the segment whose TSval an ACK's TSecr echoes. A TSecr
    /// of zero is none (our SYN sends zero, and a peer may echo it); one from the future, or
    /// more than 2^31 ms back, is no echo of ours.
    pub(super) fn rtt_sample(&self, now: Instant, tsecr: u32) -> Option<Duration> {
        self.rtt_sample_millis(now, tsecr).map(|ticks| Duration::from_millis(u64::from(ticks)))
    }

    /// [`rtt_sample`](Self::rtt_sample) in whole milliseconds (the echo's unit, below 2^31):
    /// for a caller that keeps microseconds in a `u32`, without `Duration`'s 128-bit
    /// conversion.
    pub(super) fn rtt_sample_millis(&self, now: Instant, tsecr: u32) -> Option<u32> {
        if !self.is_on() || tsecr == 0 {
            return None;
        }
        let ticks = self.tsval(now).wrapping_sub(tsecr);
        (i32::try_from(ticks).is_ok()).then_some(ticks)
    }
}

/// The caller's clock in whole seconds, modulo 2^32 (136 years).
const fn secs(now: Instant) -> u32 {
    (now.as_micros() / 1_000_000) as u32
}

#[cfg(test)]
mod tests {
    use super::{TsState, ts_before};
    use crate::seq::SeqNum;
    use crate::time::Instant;
    use crate::wire::Timestamps;

    #[test]
    fn timestamp_order_is_modular_rfc_7323_5_2() {
        assert!(ts_before(1, 2));
        assert!(ts_before(u32::MAX, 0));
        assert!(!ts_before(0, u32::MAX));
        assert!(!ts_before(5, 5));
        assert!(ts_before(0, 0x7fff_ffff));
        assert!(!ts_before(0, 0x8000_0000));
    }

    #[test]
    fn ts_recent_older_than_24_days_is_not_believed_rfc_7323_5_5() {
        let mut ts = TsState::new(true);
        let start = Instant::from_millis(1_000);
        ts.on_peer_syn(start, Some(Timestamps { tsval: 1_000_000, tsecr: 0 }), SeqNum::new(7));
        assert!(ts.paws_rejects(start, 999_999));
        let day = 24 * 60 * 60 * 1_000;
        let almost = Instant::from_millis(1_000 + 24 * day - 1_000);
        assert!(ts.paws_rejects(almost, 999_999));
        let idle = Instant::from_millis(1_000 + 24 * day);
        assert!(!ts.paws_rejects(idle, 999_999));
        // And the next acceptable segment takes its TSval, however "old" it looks.
        ts.on_acceptable(idle, SeqNum::new(7), 5);
        assert_eq!(ts.recent(), Some(5));
        assert!(ts.paws_rejects(idle, 4));
    }
}
