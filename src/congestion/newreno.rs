//! NewReno (RFC 5681 slow start, congestion avoidance, fast retransmit / fast recovery; RFC 6582
//! partial ACKs; RFC 5681 §4.1 restart after idle; RFC 4015 §3 undo): the window arithmetic of
//! standard TCP, selectable with `CongestionAlgorithm::NewReno`.

use super::{
    CongestionControl, CongestionEvent, PathInfo, deflate_on_partial_ack, window_at_recovery_end,
};

/// NewReno (RFC 5681 + RFC 6582).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewReno {
    cwnd: u32,
    ssthresh: u32,
    initial: u32,
    /// Octets acknowledged in congestion avoidance since cwnd last grew (RFC 5681 §3.1 eq. 3's
    /// byte-counting form: cwnd += MSS once a full cwnd has been acknowledged).
    acked_in_avoidance: u32,
    /// RFC 4015 §3 `pipe_prev`: max(cwnd, ssthresh) before the last reduction, what an
    /// [`CongestionEvent::Undo`] restores ssthresh to; zero when there is nothing to undo.
    pipe_prev: u32,
    /// Between `FastRetransmit` and the end of that recovery: a timeout then finds this
    /// window's congestion already answered (see `CongestionEvent::Timeout`).
    in_fast_recovery: bool,
}

impl NewReno {
    /// A controller starting from `initial_window` octets with an unbounded ssthresh (RFC 5681
    /// §3.1: "arbitrarily high").
    pub fn new(initial_window: u32) -> Self {
        Self {
            cwnd: initial_window,
            ssthresh: u32::MAX,
            initial: initial_window,
            acked_in_avoidance: 0,
            pipe_prev: 0,
            in_fast_recovery: false,
        }
    }

    /// RFC 5681 equation (4): ssthresh = max(FlightSize / 2, 2×SMSS).
    fn halve(flight: u32, mss: u32) -> u32 {
        (flight / 2).max(2 * mss)
    }

    /// Remembers RFC 4015 §3's `pipe_prev = max(FlightSize, ssthresh)` before a reduction, for
    /// [`CongestionEvent::Undo`]. In slow start ssthresh is "arbitrarily high", so cwnd stands
    /// in for it. Each reduction replaces the last one's value: an undo only ever takes back the
    /// latest reduction, the conservative choice when two overlap.
    fn remember_before_reduction(&mut self, flight: u32) {
        self.pipe_prev = flight.max(self.ssthresh.min(self.cwnd));
    }
}

impl CongestionControl for NewReno {
    #[inline]
    fn window(&self) -> u32 {
        self.cwnd
    }

    fn ssthresh(&self) -> u32 {
        self.ssthresh
    }

    fn on_event(&mut self, event: CongestionEvent, path: &PathInfo) {
        let mss = path.mss;
        let in_fast_recovery = core::mem::take(&mut self.in_fast_recovery);
        match event {
            CongestionEvent::Ack { acked } => {
                if self.cwnd < self.ssthresh {
                    // Slow start (RFC 5681 eq. 2): grow by at most one SMSS per ACK.
                    self.cwnd = self.cwnd.saturating_add(acked.min(mss));
                } else {
                    // Congestion avoidance: about one SMSS per round trip.
                    self.acked_in_avoidance = self.acked_in_avoidance.saturating_add(acked);
                    if self.acked_in_avoidance >= self.cwnd {
                        self.acked_in_avoidance -= self.cwnd;
                        self.cwnd = self.cwnd.saturating_add(mss);
                    }
                }
            }
            CongestionEvent::FastRetransmit { flight } => {
                self.remember_before_reduction(flight);
                self.ssthresh = Self::halve(flight, mss);
                self.cwnd = self.ssthresh.saturating_add(3 * mss);
                self.acked_in_avoidance = 0;
                self.in_fast_recovery = true;
            }
            CongestionEvent::SackRecovery { flight } => {
                self.remember_before_reduction(flight);
                self.ssthresh = Self::halve(flight, mss);
                self.cwnd = self.ssthresh;
                self.acked_in_avoidance = 0;
            }
            CongestionEvent::RecoveryDupAck => {
                self.cwnd = self.cwnd.saturating_add(mss);
                self.in_fast_recovery = in_fast_recovery;
            }
            CongestionEvent::PartialAck { acked } => {
                self.cwnd = deflate_on_partial_ack(self.cwnd, acked, mss);
                self.in_fast_recovery = in_fast_recovery;
            }
            CongestionEvent::RecoveryEnd { flight } => {
                self.cwnd = window_at_recovery_end(self.ssthresh, flight, mss);
            }
            CongestionEvent::Timeout { .. } if in_fast_recovery => {
                // The fast retransmit already halved for this window (FlightSize now counts
                // what window inflation sent, no measure of the path): the loss window,
                // ssthresh kept, and an undo still restores what came before that halving.
                self.cwnd = mss;
                self.acked_in_avoidance = 0;
            }
            CongestionEvent::Timeout { flight } => {
                self.remember_before_reduction(flight);
                self.ssthresh = Self::halve(flight, mss);
                // The loss window: one segment.
                self.cwnd = mss;
                self.acked_in_avoidance = 0;
            }
            CongestionEvent::IdleRestart => {
                // RFC 5681 §4.1: cwnd = min(RW, cwnd), RW = the initial window.
                self.cwnd = self.cwnd.min(self.initial);
            }
            CongestionEvent::Undo { flight, acked } => {
                if self.pipe_prev != 0 {
                    self.ssthresh = self.ssthresh.max(self.pipe_prev);
                    let restart = flight.saturating_add(acked.min(self.initial));
                    self.cwnd = self.cwnd.max(restart).max(mss);
                    self.pipe_prev = 0;
                    self.acked_in_avoidance = 0;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Instant;

    const MSS: u32 = 1000;
    const PATH: PathInfo = PathInfo::new(MSS, Instant::ZERO);

    /// An RTO during fast recovery (RFC 6582 §4's Impatient fallback): FlightSize then counts
    /// what window inflation sent, so halving it would raise ssthresh above the fast
    /// retransmit's; the loss window, ssthresh kept, and an undo restores pipe_prev from before
    /// the fast retransmit.
    #[test]
    fn timeout_during_fast_recovery_keeps_the_fast_retransmits_ssthresh_rfc_6582_4() {
        let mut cc = NewReno::new(20 * MSS);
        cc.on_event(CongestionEvent::FastRetransmit { flight: 20 * MSS }, &PATH);
        for _ in 0..17 {
            cc.on_event(CongestionEvent::RecoveryDupAck, &PATH);
        }
        cc.on_event(CongestionEvent::PartialAck { acked: MSS }, &PATH);
        assert_eq!((cc.window(), cc.ssthresh()), (30 * MSS, 10 * MSS));
        cc.on_event(CongestionEvent::Timeout { flight: 36 * MSS }, &PATH);
        assert_eq!((cc.window(), cc.ssthresh()), (MSS, 10 * MSS));
        cc.on_event(CongestionEvent::Undo { flight: 0, acked: MSS }, &PATH);
        assert_eq!(cc.ssthresh(), 20 * MSS);
        // After the recovery ended, a timeout halves FlightSize again (RFC 5681 eq. 4).
        let mut cc = NewReno::new(20 * MSS);
        cc.on_event(CongestionEvent::FastRetransmit { flight: 20 * MSS }, &PATH);
        cc.on_event(CongestionEvent::RecoveryEnd { flight: 10 * MSS }, &PATH);
        cc.on_event(CongestionEvent::Timeout { flight: 12 * MSS }, &PATH);
        assert_eq!((cc.window(), cc.ssthresh()), (MSS, 6 * MSS));
    }

    #[test]
    fn slow_start_grows_by_one_mss_per_ack_rfc_5681_eq_2() {
        let mut cc = NewReno::new(2 * MSS);
        cc.on_event(CongestionEvent::Ack { acked: 5 * MSS }, &PATH);
        assert_eq!(cc.window(), 3 * MSS, "at most one SMSS per ACK");
        cc.on_event(CongestionEvent::Ack { acked: 100 }, &PATH);
        assert_eq!(cc.window(), 3 * MSS + 100);
    }

    #[test]
    fn congestion_avoidance_grows_one_mss_per_window_rfc_5681_eq_3() {
        let mut cc = NewReno::new(10 * MSS);
        cc.on_event(CongestionEvent::Timeout { flight: 20 * MSS }, &PATH);
        assert_eq!((cc.window(), cc.ssthresh()), (MSS, 10 * MSS));
        for _ in 0..9 {
            cc.on_event(CongestionEvent::Ack { acked: MSS }, &PATH);
        }
        assert_eq!(cc.window(), 10 * MSS, "slow start up to ssthresh");
        for _ in 0..10 {
            cc.on_event(CongestionEvent::Ack { acked: MSS }, &PATH);
        }
        assert_eq!(cc.window(), 11 * MSS, "one SMSS after a whole window is acknowledged");
    }

    #[test]
    fn fast_retransmit_halves_and_inflates_rfc_5681_3_2() {
        let mut cc = NewReno::new(20 * MSS);
        cc.on_event(CongestionEvent::FastRetransmit { flight: 20 * MSS }, &PATH);
        assert_eq!(cc.ssthresh(), 10 * MSS);
        assert_eq!(cc.window(), 13 * MSS);
        cc.on_event(CongestionEvent::RecoveryDupAck, &PATH);
        assert_eq!(cc.window(), 14 * MSS);
        cc.on_event(CongestionEvent::PartialAck { acked: 2 * MSS }, &PATH);
        assert_eq!(cc.window(), 13 * MSS, "RFC 6582: deflate by acked, add one SMSS");
        cc.on_event(CongestionEvent::RecoveryEnd { flight: 4 * MSS }, &PATH);
        assert_eq!(cc.window(), 5 * MSS, "min(ssthresh, FlightSize + SMSS)");
    }

    #[test]
    fn sack_recovery_halves_without_inflation_rfc_6675_5_step_4() {
        let mut cc = NewReno::new(20 * MSS);
        cc.on_event(CongestionEvent::SackRecovery { flight: 20 * MSS }, &PATH);
        assert_eq!((cc.window(), cc.ssthresh()), (10 * MSS, 10 * MSS));
        cc.on_event(CongestionEvent::RecoveryEnd { flight: 12 * MSS }, &PATH);
        assert_eq!(cc.window(), 10 * MSS, "min(ssthresh, FlightSize + SMSS)");
    }

    #[test]
    fn timeout_and_duplicate_acks_set_ssthresh_from_flight_not_cwnd() {
        let mut cc = NewReno::new(40 * MSS);
        cc.on_event(CongestionEvent::Timeout { flight: 6 * MSS }, &PATH);
        assert_eq!(cc.ssthresh(), 3 * MSS);
        assert_eq!(cc.window(), MSS, "RTO: loss window");
        let mut cc = NewReno::new(40 * MSS);
        cc.on_event(CongestionEvent::FastRetransmit { flight: 2 * MSS }, &PATH);
        assert_eq!(cc.ssthresh(), 2 * MSS, "never below 2×SMSS");
    }

    #[test]
    fn undo_restores_ssthresh_and_regrows_by_slow_start_rfc_4015_3() {
        let mut cc = NewReno::new(10 * MSS);
        for _ in 0..10 {
            cc.on_event(CongestionEvent::Ack { acked: MSS }, &PATH);
        }
        assert_eq!(cc.window(), 20 * MSS);
        cc.on_event(CongestionEvent::Timeout { flight: 20 * MSS }, &PATH);
        assert_eq!((cc.window(), cc.ssthresh()), (MSS, 10 * MSS));
        cc.on_event(CongestionEvent::Undo { flight: 4 * MSS, acked: 2 * MSS }, &PATH);
        assert_eq!(cc.ssthresh(), 20 * MSS, "ssthresh = pipe_prev");
        assert_eq!(cc.window(), 6 * MSS, "cwnd = FlightSize + min(bytes_acked, IW)");
        cc.on_event(CongestionEvent::Undo { flight: 0, acked: 20 * MSS }, &PATH);
        assert_eq!((cc.window(), cc.ssthresh()), (6 * MSS, 20 * MSS), "nothing left to undo");
    }

    #[test]
    fn idle_restart_caps_cwnd_at_the_initial_window_rfc_5681_4_1() {
        let mut cc = NewReno::new(4 * MSS);
        for _ in 0..10 {
            cc.on_event(CongestionEvent::Ack { acked: MSS }, &PATH);
        }
        cc.on_event(CongestionEvent::IdleRestart, &PATH);
        assert_eq!(cc.window(), 4 * MSS);
    }
}
