//! HyStart++ (RFC 9406): slow start that watches the round trip time and, when the minimum RTT
//! of a round rises by a threshold over the last round's, leaves standard slow start for
//! Conservative Slow Start (CSS, a quarter of the growth) before congestion avoidance, so slow
//! start does not overshoot a deep buffer. CUBIC uses it for the connection's first slow start
//! (RFC 9406 §4.3: later slow starts have a discovered ssthresh and use the standard one).
//!
//! Rounds are counted by sequence (RFC 9406 §4.2): a round ends when SND.UNA passes
//! `windowEnd`, the SND.NXT of its start.

use core::time::Duration;

use super::PathInfo;
use crate::seq::SeqNum;

/// RFC 9406 §4.3: the lower bound of the RTT increase that ends slow start.
pub(super) const MIN_RTT_THRESH: Duration = Duration::from_millis(4);
/// RFC 9406 §4.3: the upper bound of that increase.
pub(super) const MAX_RTT_THRESH: Duration = Duration::from_millis(16);
/// RFC 9406 §4.3: the increase is the last round's minimum RTT over this.
pub(super) const MIN_RTT_DIVISOR: u32 = 8;
/// RFC 9406 §4.3: RTT samples a round needs before its minimum is compared.
pub(super) const N_RTT_SAMPLE: u32 = 8;
/// RFC 9406 §4.3: CSS grows the window this many times slower than slow start.
pub(super) const CSS_GROWTH_DIVISOR: u32 = 4;
/// RFC 9406 §4.3: rounds of CSS before congestion avoidance.
pub(super) const CSS_ROUNDS: u8 = 5;
/// RFC 9406 §4.3: at most L segments of growth per ACK when sending is not paced (ours is not).
pub(super) const L: u32 = 8;

/// Where HyStart++ is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// Standard slow start, watching the RTT.
    SlowStart,
    /// Conservative slow start since the RTT rose to `baseline` (`cssBaselineMinRtt`); `rounds`
    /// rounds have started since.
    Css { baseline: Duration, rounds: u8 },
    /// Done: congestion avoidance was entered, or a loss ended slow start.
    Off,
}

/// What one ACK does to cwnd in slow start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Growth {
    /// Octets to add to cwnd.
    pub(super) increase: u32,
    /// CSS_ROUNDS rounds of CSS are complete: ssthresh = cwnd, congestion avoidance from here.
    pub(super) enter_avoidance: bool,
}

/// HyStart++'s state (RFC 9406 §4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct HyStart {
    phase: Phase,
    /// `windowEnd`: the round ends when SND.UNA reaches it; `None` before the first round.
    window_end: Option<SeqNum>,
    /// `lastRoundMinRTT` (`None` is the RFC's infinity).
    last_round_min_rtt: Option<Duration>,
    /// `currentRoundMinRTT`.
    current_round_min_rtt: Option<Duration>,
    /// `rttSampleCount`.
    rtt_sample_count: u32,
}

impl HyStart {
    pub(super) const fn new() -> Self {
        Self {
            phase: Phase::SlowStart,
            window_end: None,
            last_round_min_rtt: None,
            current_round_min_rtt: None,
            rtt_sample_count: 0,
        }
    }

    #[cfg(test)]
    pub(super) const fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether HyStart++ still governs slow start.
    pub(super) const fn is_on(&self) -> bool {
        !matches!(self.phase, Phase::Off)
    }

    /// A loss, a timeout or the end of slow start: standard slow start from now on (§4.2: "if
    /// loss or ECN-marking is observed anytime during standard slow start or CSS, enter
    /// congestion avoidance"; §4.3: only the first slow start uses HyStart++).
    pub(super) fn turn_off(&mut self) {
        self.phase = Phase::Off;
    }

    /// An ACK of `acked` new octets in slow start (or CSS).
    pub(super) fn on_ack(&mut self, path: &PathInfo, acked: u32) -> Growth {
        if self.window_end.is_none_or(|end| path.snd_una.after_eq(end)) {
            // A round starts (§4.2): remember the last round's minimum, measure anew.
            self.last_round_min_rtt = self.current_round_min_rtt;
            self.current_round_min_rtt = None;
            self.rtt_sample_count = 0;
            self.window_end = Some(path.snd_nxt);
            if let Phase::Css { rounds, .. } = &mut self.phase {
                *rounds = rounds.saturating_add(1);
                if *rounds >= CSS_ROUNDS {
                    // §4.2: CSS_ROUNDS rounds of CSS: congestion avoidance.
                    self.phase = Phase::Off;
                    return Growth { increase: 0, enter_avoidance: true };
                }
            }
        }
        if let Some(rtt) = path.latest_rtt {
            self.current_round_min_rtt =
                Some(self.current_round_min_rtt.map_or(rtt, |min| min.min(rtt)));
            self.rtt_sample_count = self.rtt_sample_count.saturating_add(1);
        }
        // §4.2: cwnd += min(N, L × SMSS).
        let standard = acked.min(L.saturating_mul(path.mss));
        let enough_samples = self.rtt_sample_count >= N_RTT_SAMPLE;
        match self.phase {
            Phase::SlowStart => {
                if let (true, Some(current), Some(last)) =
                    (enough_samples, self.current_round_min_rtt, self.last_round_min_rtt)
                {
                    let threshold =
                        (last / MIN_RTT_DIVISOR).min(MAX_RTT_THRESH).max(MIN_RTT_THRESH);
                    if current >= last.saturating_add(threshold) {
                        // The RTT rose: the queue is building. Conservative slow start.
                        self.phase = Phase::Css { baseline: current, rounds: 0 };
                        return Growth {
                            increase: standard / CSS_GROWTH_DIVISOR,
                            enter_avoidance: false,
                        };
                    }
                }
                Growth { increase: standard, enter_avoidance: false }
            }
            Phase::Css { baseline, .. } => {
                if enough_samples && self.current_round_min_rtt.is_some_and(|min| min < baseline) {
                    // §4.2: the RTT fell below the baseline: the exit was spurious; slow start
                    // resumes.
                    self.phase = Phase::SlowStart;
                    return Growth { increase: standard, enter_avoidance: false };
                }
                Growth { increase: standard / CSS_GROWTH_DIVISOR, enter_avoidance: false }
            }
            Phase::Off => Growth { increase: standard, enter_avoidance: false },
        }
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec::Vec;

    use super::*;
    use crate::time::Instant;

    const MSS: u32 = 1000;

    /// One round of `samples` ACKs of one segment each, every one with the RTT `rtt_ms`: the
    /// first acknowledges up to `una` (the last round's `windowEnd`, so a round starts) when
    /// SND.NXT is `una + samples × MSS`, which becomes the new `windowEnd` and `una`. Returns
    /// the growth of each ACK.
    fn round(hs: &mut HyStart, una: &mut u32, samples: u32, rtt_ms: u64) -> Vec<Growth> {
        let start = *una;
        let end = start + samples * MSS;
        let mut out = Vec::new();
        for i in 0..samples {
            let mut path = PathInfo::new(MSS, Instant::ZERO);
            path.snd_una = SeqNum::new(start + i * MSS);
            path.snd_nxt = SeqNum::new(end);
            path.latest_rtt = Some(Duration::from_millis(rtt_ms));
            out.push(hs.on_ack(&path, MSS));
        }
        *una = end;
        out
    }

    #[test]
    fn rounds_end_when_snd_una_passes_window_end_rfc_9406_4_2() {
        let mut hs = HyStart::new();
        let mut path = PathInfo::new(MSS, Instant::ZERO);
        path.snd_nxt = SeqNum::new(10 * MSS);
        path.latest_rtt = Some(Duration::from_millis(50));
        hs.on_ack(&path, MSS);
        assert_eq!(hs.window_end, Some(SeqNum::new(10 * MSS)), "windowEnd = SND.NXT");
        path.snd_una = SeqNum::new(9 * MSS);
        path.snd_nxt = SeqNum::new(20 * MSS);
        path.latest_rtt = Some(Duration::from_millis(40));
        hs.on_ack(&path, MSS);
        assert_eq!(hs.window_end, Some(SeqNum::new(10 * MSS)), "the round goes on");
        assert_eq!(hs.current_round_min_rtt, Some(Duration::from_millis(40)));
        assert_eq!(hs.rtt_sample_count, 2);
        path.snd_una = SeqNum::new(10 * MSS);
        path.latest_rtt = Some(Duration::from_millis(60));
        hs.on_ack(&path, MSS);
        assert_eq!(hs.window_end, Some(SeqNum::new(20 * MSS)), "a new round");
        assert_eq!(hs.last_round_min_rtt, Some(Duration::from_millis(40)));
        assert_eq!(hs.current_round_min_rtt, Some(Duration::from_millis(60)));
        assert_eq!(hs.rtt_sample_count, 1);
    }

    #[test]
    fn slow_start_grows_by_acked_capped_at_l_segments_rfc_9406_4_2() {
        let mut hs = HyStart::new();
        let path = PathInfo::new(MSS, Instant::ZERO);
        assert_eq!(hs.on_ack(&path, 3 * MSS).increase, 3 * MSS);
        assert_eq!(hs.on_ack(&path, 20 * MSS).increase, L * MSS);
    }

    #[test]
    fn rtt_increase_enters_css_rfc_9406_4_2() {
        let mut hs = HyStart::new();
        let mut una = 0;
        round(&mut hs, &mut una, 8, 100);
        // 100 ms last round: the threshold is clamp(100 / 8, 4, 16) = 12.5 ms.
        let growth = round(&mut hs, &mut una, 8, 112);
        assert!(growth.iter().all(|g| g.increase == MSS), "112 < 112.5: slow start");
        assert_eq!(hs.phase(), Phase::SlowStart);
        // Last round's minimum is now 112 ms: threshold 14 ms. Seven samples are not enough.
        let growth = round(&mut hs, &mut una, 7, 126);
        assert!(growth.iter().all(|g| g.increase == MSS));
        // 126 ms: the threshold is 15.75 ms.
        let growth = round(&mut hs, &mut una, 8, 142);
        assert_eq!(growth[..7].iter().map(|g| g.increase).sum::<u32>(), 7 * MSS);
        assert_eq!(growth[7].increase, MSS / CSS_GROWTH_DIVISOR, "the 8th sample: CSS");
        assert_eq!(
            hs.phase(),
            Phase::Css { baseline: Duration::from_millis(142), rounds: 0 },
            "cssBaselineMinRtt = currentRoundMinRTT"
        );
    }

    #[test]
    fn rtt_thresh_is_clamped_between_4_and_16_ms_rfc_9406_4_3() {
        // 10 ms: 10 / 8 = 1.25 ms, raised to 4 ms; 14 ms is 4 ms more.
        let mut hs = HyStart::new();
        let mut una = 0;
        round(&mut hs, &mut una, 8, 10);
        round(&mut hs, &mut una, 8, 13);
        assert_eq!(hs.phase(), Phase::SlowStart);
        round(&mut hs, &mut una, 8, 17);
        assert!(matches!(hs.phase(), Phase::Css { .. }));
        // 400 ms: 50 ms, lowered to 16 ms.
        let mut hs = HyStart::new();
        let mut una = 0;
        round(&mut hs, &mut una, 8, 400);
        round(&mut hs, &mut una, 8, 416);
        assert!(matches!(hs.phase(), Phase::Css { .. }));
    }

    #[test]
    fn rtt_falling_below_the_baseline_in_css_resumes_slow_start_rfc_9406_4_2() {
        let mut hs = HyStart::new();
        let mut una = 0;
        round(&mut hs, &mut una, 8, 100);
        round(&mut hs, &mut una, 8, 120);
        assert!(matches!(hs.phase(), Phase::Css { .. }));
        let growth = round(&mut hs, &mut una, 8, 119);
        assert!(growth[..7].iter().all(|g| g.increase == MSS / 4), "CSS: a quarter");
        assert_eq!(growth[7].increase, MSS, "8 samples below the baseline: slow start again");
        assert_eq!(hs.phase(), Phase::SlowStart);
    }

    #[test]
    fn css_rounds_complete_enter_congestion_avoidance_rfc_9406_4_2() {
        let mut hs = HyStart::new();
        let mut una = 0;
        round(&mut hs, &mut una, 8, 100);
        round(&mut hs, &mut una, 8, 120);
        assert_eq!(hs.phase(), Phase::Css { baseline: Duration::from_millis(120), rounds: 0 });
        for rounds in 1..CSS_ROUNDS {
            let growth = round(&mut hs, &mut una, 8, 130);
            assert!(growth.iter().all(|g| g.increase == MSS / 4 && !g.enter_avoidance));
            assert_eq!(hs.phase(), Phase::Css { baseline: Duration::from_millis(120), rounds });
        }
        let growth = round(&mut hs, &mut una, 8, 130);
        assert_eq!(growth[0], Growth { increase: 0, enter_avoidance: true }, "fifth round");
        assert!(!hs.is_on());
    }
}
