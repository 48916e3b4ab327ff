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
///
/// Kept in whole microseconds in `u32`s (24 bytes, not 80: one lives in every connection).
/// That bounds every value at about 71 minutes, far above any sensible RTO maximum; larger
/// durations saturate there.
#[derive(Clone, Copy, Debug)]
pub struct RttEstimator {
    /// SRTT and RTTVAR in µs, meaningful once `measured`.
    srtt: u32,
    rttvar: u32,
    measured: bool,
    rto: u32,
    min: u32,
    max: u32,
}

/// `d` in whole microseconds, saturating at `u32::MAX`. In 64 bits (not `as_micros`'s 128):
/// from 4295 s on the value is past `u32::MAX` whatever the fraction, and below that the
/// product fits.
fn micros(d: Duration) -> u32 {
    const SATURATING_SECS: u64 = u32::MAX as u64 / 1_000_000 + 1;
    let secs = d.as_secs();
    if secs >= SATURATING_SECS {
        return u32::MAX;
    }
    u32::try_from(secs * 1_000_000 + u64::from(d.subsec_micros())).unwrap_or(u32::MAX)
}

const fn duration(us: u32) -> Duration {
    Duration::from_micros(us as u64)
}

impl RttEstimator {
    /// A fresh estimator: RTO = `initial` (2.1), clamped to `[min, max]`.
    pub fn new(initial: Duration, min: Duration, max: Duration) -> Self {
        let (min, max) = (micros(min), micros(max));
        let max = max.max(min);
        Self { srtt: 0, rttvar: 0, measured: false, rto: micros(initial).clamp(min, max), min, max }
    }

    /// The current estimate.
    pub const fn estimate(&self) -> RttEstimate {
        if self.measured {
            RttEstimate::Measured { srtt: duration(self.srtt), rttvar: duration(self.rttvar) }
        } else {
            RttEstimate::NoSample
        }
    }

    /// The current (possibly backed-off) RTO.
    pub const fn rto(&self) -> Rto {
        Rto(duration(self.rto))
    }

    /// Smoothed RTT, once measured.
    pub const fn srtt(&self) -> Option<Duration> {
        if self.measured { Some(duration(self.srtt)) } else { None }
    }

    /// Smoothed RTT in whole microseconds, once measured: [`srtt`](Self::srtt) without the
    /// `Duration` round trip, for deadlines worked out on every segment sent.
    pub(crate) const fn srtt_micros(&self) -> Option<u32> {
        if self.measured { Some(self.srtt) } else { None }
    }

    /// The RTO in whole microseconds: [`rto`](Self::rto) without the `Duration` round trip.
    pub(crate) const fn rto_micros(&self) -> u32 {
        self.rto
    }

    /// RTT variation, once measured.
    pub const fn rttvar(&self) -> Option<Duration> {
        if self.measured { Some(duration(self.rttvar)) } else { None }
    }

    /// Takes a measurement `r` of a segment that was not retransmitted (Karn, MUST-18).
    pub fn on_sample(&mut self, r: Duration) {
        let r = u64::from(micros(r));
        let (srtt, rttvar) = if self.measured {
            // (2.3) RTTVAR <- 3/4 RTTVAR + 1/4 |SRTT - R'|; SRTT <- 7/8 SRTT + 1/8 R'.
            let (srtt, rttvar) = (u64::from(self.srtt), u64::from(self.rttvar));
            let delta = srtt.abs_diff(r);
            (srtt * 7 / 8 + r / 8, rttvar * 3 / 4 + delta / 4)
        } else {
            // (2.2) SRTT <- R, RTTVAR <- R/2.
            (r, r / 2)
        };
        // Both are weighted means of values below 2^32, so they fit.
        self.srtt = u32::try_from(srtt).unwrap_or(u32::MAX);
        self.rttvar = u32::try_from(rttvar).unwrap_or(u32::MAX);
        self.measured = true;
        self.restore_from_estimate();
    }

    /// Takes one of `expected_samples` measurements expected in a round trip (RFC 7323
    /// Appendix G, for RTTM's sample per ACK): the gains become alpha / ExpectedSamples and
    /// beta / ExpectedSamples, so a window's worth of samples moves SRTT and RTTVAR about as far
    /// as one sample per round trip does under RFC 6298, and RTTVAR does not collapse.
    /// In line: the connection takes its samples in one place.
    #[inline]
    pub fn on_sample_weighted(&mut self, r: Duration, expected_samples: u32) {
        if expected_samples <= 1 || !self.measured {
            self.on_sample(r);
            return;
        }
        let n = u64::from(expected_samples);
        let r = u64::from(micros(r));
        let (srtt, rttvar) = (u64::from(self.srtt), u64::from(self.rttvar));
        // RTTVAR <- (1 - beta') RTTVAR + beta' |SRTT - R'|, with the old SRTT; then
        // SRTT <- (1 - alpha') SRTT + alpha' R' (RFC 6298 (2.3) order).
        let rttvar = (rttvar * (4 * n - 1) + srtt.abs_diff(r)) / (4 * n);
        let srtt = (srtt * (8 * n - 1) + r) / (8 * n);
        // Weighted means of values below 2^32 (n is below 2^32 too), so they fit.
        self.srtt = u32::try_from(srtt).unwrap_or(u32::MAX);
        self.rttvar = u32::try_from(rttvar).unwrap_or(u32::MAX);
        self.restore_from_estimate();
    }

    /// (5.5) The timer expired: RTO <- RTO * 2, at most the maximum.
    pub fn on_backoff(&mut self) {
        self.rto = self.rto.saturating_mul(2).clamp(self.min, self.max);
    }

    /// (5.7) If the SYN had to be retransmitted and RTO is below 3 s, RTO restarts at 3 s once
    /// data flows. Also undoes handshake backoff when there is no sample.
    pub fn on_handshake_retransmitted(&mut self) {
        const THREE_SECONDS: u32 = 3_000_000;
        if !self.measured || self.rto < THREE_SECONDS {
            self.rto = THREE_SECONDS.clamp(self.min, self.max);
        }
    }

    /// A new ACK arrived after backoff: recompute RTO from the estimate (RFC 6298 §5 note:
    /// backoff is kept until a new sample, so this only applies with a valid sample).
    pub fn restore_from_estimate(&mut self) {
        if self.measured {
            // RTO <- SRTT + max(G, K*RTTVAR), K = 4; then (2.4)/(2.5) clamps.
            let variation = micros(GRANULARITY).max(self.rttvar.saturating_mul(4));
            self.rto = self.srtt.saturating_add(variation).clamp(self.min, self.max);
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

    /// The 64-bit conversion against `as_micros`, around every boundary it has.
    #[test]
    fn micros_saturates_as_the_wide_conversion_does() {
        let limit = u64::from(u32::MAX);
        for secs in [0, 1, 4293, 4294, 4295, 4296, u64::MAX / 2, u64::MAX] {
            for nanos in [0, 999, 1000, 967_295_999, 967_296_000, 999_999_999] {
                let d = Duration::new(secs, nanos);
                let wide = u32::try_from(d.as_micros()).unwrap_or(u32::MAX);
                assert_eq!(micros(d), wide, "{d:?}");
            }
        }
        assert_eq!(micros(Duration::from_micros(limit)), u32::MAX);
        assert_eq!(micros(Duration::from_micros(limit - 1)), u32::MAX - 1);
        assert_eq!(micros(Duration::from_micros(limit + 1)), u32::MAX);
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
    fn many_samples_a_round_trip_are_weighted_rfc_7323_appendix_g() {
        let mut rtt = estimator();
        rtt.on_sample(Duration::from_millis(100));
        // Four samples expected per round trip: each moves SRTT by 1/32 and RTTVAR by 1/16.
        rtt.on_sample_weighted(Duration::from_millis(200), 4);
        // RTTVAR = (15 * 50 + 100) / 16 = 53.125 ms; SRTT = (31 * 100 + 200) / 32 = 103.125 ms.
        assert_eq!(rtt.rttvar(), Some(Duration::from_micros(53_125)));
        assert_eq!(rtt.srtt(), Some(Duration::from_micros(103_125)));
        // A steady 100 ms path with samples on every ACK keeps RTTVAR far from zero longer
        // than unweighted samples would: after 8 ACKs (two round trips) it is still near 30 ms.
        let mut weighted = estimator();
        let mut unweighted = estimator();
        for sample in [100, 100, 100, 100, 100, 100, 100, 100, 100] {
            weighted.on_sample_weighted(Duration::from_millis(sample), 4);
            unweighted.on_sample(Duration::from_millis(sample));
        }
        assert!(weighted.rttvar() > Some(Duration::from_millis(29)));
        assert!(unweighted.rttvar() < Some(Duration::from_millis(6)));
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
