//! Round-trip time estimation and the retransmission timeout (RFC 6298).
//!
//! The estimator is an enum: before the first sample there is no SRTT at all (rule 2.1), and
//! afterwards SRTT and RTTVAR always exist together (rules 2.2, 2.3). [`Rto`] is a clamped
//! witness: a value of it is always within the configured minimum and maximum (rules 2.4, 2.5).
//! Karn's algorithm (MUST-18, rule 3) is the caller's half: no sample from a retransmitted
//! segment.

use core::time::Duration;

/// The clock granularity G of RFC 6298 (2.2): our clock counts microseconds, but the timers a
/// caller can keep are coarser; 1 ms is an honest bound for the `K*RTTVAR` floor.
const GRANULARITY: Duration = Duration::from_millis(1);

/// A retransmission timeout, always within `[rto_min, rto_max]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rto(Duration);

impl Rto {
    /// The timeout.
    pub const fn get(self) -> Duration {
        self.0
    }
}

/// The RTT estimator's state (RFC 6298 §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RttEstimate {
    /// No measurement yet: RTO is the initial value (2.1).
    NoSample,
    /// At least one measurement.
    Measured {
        /// Smoothed round-trip time.
        srtt: Duration,
        /// Round-trip time variation.
        rttvar: Duration,
    },
}

/// RFC 6298 estimator plus exponential backoff (rule 5.5).
#[derive(Clone, Copy, Debug)]
pub struct RttEstimator {
    estimate: RttEstimate,
    rto: Rto,
    min: Duration,
    max: Duration,
}

impl RttEstimator {
    /// A fresh estimator: RTO = `initial` (2.1), clamped to `[min, max]`.
    pub fn new(initial: Duration, min: Duration, max: Duration) -> Self {
        let max = max.max(min);
        Self { estimate: RttEstimate::NoSample, rto: Rto(initial.clamp(min, max)), min, max }
    }

    /// The current estimate.
    pub const fn estimate(&self) -> RttEstimate {
        self.estimate
    }

    /// The current (possibly backed-off) RTO.
    pub const fn rto(&self) -> Rto {
        self.rto
    }

    /// Smoothed RTT, once measured.
    pub const fn srtt(&self) -> Option<Duration> {
        match self.estimate {
            RttEstimate::NoSample => None,
            RttEstimate::Measured { srtt, .. } => Some(srtt),
        }
    }

    /// RTT variation, once measured.
    pub const fn rttvar(&self) -> Option<Duration> {
        match self.estimate {
            RttEstimate::NoSample => None,
            RttEstimate::Measured { rttvar, .. } => Some(rttvar),
        }
    }

    /// Takes a measurement `r` of a segment that was not retransmitted (Karn, MUST-18).
    pub fn on_sample(&mut self, r: Duration) {
        let (srtt, rttvar) = match self.estimate {
            // (2.2) SRTT <- R, RTTVAR <- R/2.
            RttEstimate::NoSample => (r, r / 2),
            // (2.3) RTTVAR <- 3/4 RTTVAR + 1/4 |SRTT - R'|; SRTT <- 7/8 SRTT + 1/8 R'.
            RttEstimate::Measured { srtt, rttvar } => {
                let delta = srtt.abs_diff(r);
                (srtt * 7 / 8 + r / 8, rttvar * 3 / 4 + delta / 4)
            }
        };
        self.estimate = RttEstimate::Measured { srtt, rttvar };
        // RTO <- SRTT + max(G, K*RTTVAR), K = 4; then (2.4)/(2.5) clamps.
        let rto = srtt.saturating_add(GRANULARITY.max(rttvar.saturating_mul(4)));
        self.rto = Rto(rto.clamp(self.min, self.max));
    }

    /// (5.5) The timer expired: RTO <- RTO * 2, at most the maximum.
    pub fn on_backoff(&mut self) {
        self.rto = Rto(self.rto.0.saturating_mul(2).clamp(self.min, self.max));
    }

    /// (5.7) If the SYN had to be retransmitted and RTO is below 3 s, RTO restarts at 3 s once
    /// data flows. Also undoes handshake backoff when there is no sample.
    pub fn on_handshake_retransmitted(&mut self) {
        if self.srtt().is_none() || self.rto.0 < Duration::from_secs(3) {
            self.rto = Rto(Duration::from_secs(3).clamp(self.min, self.max));
        }
    }

    /// A new ACK arrived after backoff: recompute RTO from the estimate (RFC 6298 §5 note:
    /// backoff is kept until a new sample, so this only applies with a valid sample).
    pub fn restore_from_estimate(&mut self) {
        if let RttEstimate::Measured { srtt, rttvar } = self.estimate {
            let rto = srtt.saturating_add(GRANULARITY.max(rttvar.saturating_mul(4)));
            self.rto = Rto(rto.clamp(self.min, self.max));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn estimator() -> RttEstimator {
        RttEstimator::new(
            Duration::from_secs(1),
            Duration::from_millis(200),
            Duration::from_secs(60),
        )
    }

    #[test]
    fn initial_rto_is_one_second_rfc6298_2_1() {
        let rtt = estimator();
        assert_eq!(rtt.rto().get(), Duration::from_secs(1));
        assert_eq!(rtt.estimate(), RttEstimate::NoSample);
    }

    #[test]
    fn first_sample_sets_srtt_and_half_rttvar_rfc6298_2_2() {
        let mut rtt = estimator();
        rtt.on_sample(Duration::from_millis(100));
        assert_eq!(rtt.srtt(), Some(Duration::from_millis(100)));
        assert_eq!(rtt.rttvar(), Some(Duration::from_millis(50)));
        // 100 + 4*50 = 300 ms.
        assert_eq!(rtt.rto().get(), Duration::from_millis(300));
    }

    #[test]
    fn later_samples_smooth_rfc6298_2_3() {
        let mut rtt = estimator();
        rtt.on_sample(Duration::from_millis(100));
        rtt.on_sample(Duration::from_millis(200));
        // RTTVAR = 3/4*50 + 1/4*100 = 62.5; SRTT = 7/8*100 + 1/8*200 = 112.5.
        assert_eq!(rtt.srtt(), Some(Duration::from_micros(112_500)));
        assert_eq!(rtt.rttvar(), Some(Duration::from_micros(62_500)));
        assert_eq!(rtt.rto().get(), Duration::from_micros(362_500));
    }

    #[test]
    fn rto_is_clamped_to_min_and_max_rfc6298_2_4() {
        let mut rtt = estimator();
        rtt.on_sample(Duration::from_millis(1));
        assert_eq!(rtt.rto().get(), Duration::from_millis(200));
        for _ in 0..100 {
            rtt.on_backoff();
        }
        assert_eq!(rtt.rto().get(), Duration::from_secs(60), "backoff stops at the maximum");
    }

    #[test]
    fn backoff_doubles_rfc6298_5_5() {
        let mut rtt = estimator();
        rtt.on_backoff();
        assert_eq!(rtt.rto().get(), Duration::from_secs(2));
        rtt.on_backoff();
        assert_eq!(rtt.rto().get(), Duration::from_secs(4));
    }

    #[test]
    fn syn_retransmission_resets_rto_to_three_seconds_rfc6298_5_7() {
        let mut rtt = estimator();
        rtt.on_backoff();
        rtt.on_handshake_retransmitted();
        assert_eq!(rtt.rto().get(), Duration::from_secs(3));
    }
}
