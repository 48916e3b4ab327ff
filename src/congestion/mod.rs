//! Congestion control (RFC 9293 §3.8.2, MUST-19): the [`CongestionControl`] trait, the events
//! and path facts it is told, and the built-in algorithms: [`Cubic`] (RFC 9438, with RFC 9406
//! HyStart++ for its first slow start; the default, as in Linux) and [`NewReno`] (RFC 5681,
//! RFC 6582), chosen per connection with [`Config::congestion`](crate::config::Config).
//!
//! Loss *detection* (counting duplicate ACKs, the retransmission timer, the recovery point) lives
//! in the connection; the controller only does window arithmetic, told through typed
//! [`CongestionEvent`]s that keep an RTO apart from duplicate ACKs (PITFALLS: a controller that
//! cannot tell them apart sets ssthresh wrong), with a [`PathInfo`] saying what the connection
//! knows at that moment (time, RTT, the send sequence, whether cwnd limited sending). Another
//! algorithm implements the same trait and is installed with
//! `Connection::set_congestion_control`.

mod cubic;
mod hystart;
mod newreno;

use core::fmt::Debug;
use core::time::Duration;

pub use cubic::Cubic;
pub use newreno::NewReno;

use crate::seq::SeqNum;
use crate::time::Instant;

/// What happened, for the congestion controller. Sizes are in octets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CongestionEvent {
    /// New data was acknowledged outside loss recovery.
    Ack {
        /// Octets newly acknowledged.
        acked: u32,
    },
    /// The third duplicate ACK: fast retransmit, enter fast recovery (RFC 5681 §3.2 steps 2–3).
    FastRetransmit {
        /// Octets in flight when the loss was detected.
        flight: u32,
    },
    /// SACK-based loss recovery begins (RFC 6675 §5 step 4): ssthresh = cwnd = FlightSize / 2;
    /// from then on RFC 6675's pipe, not window inflation, bounds what is sent.
    SackRecovery {
        /// Octets in flight when the loss was detected.
        flight: u32,
    },
    /// A further duplicate ACK during fast recovery (RFC 5681 §3.2 step 4).
    RecoveryDupAck,
    /// An ACK during recovery that acknowledges some but not all of the data outstanding when
    /// recovery began (RFC 6582 §3.2 step 5).
    PartialAck {
        /// Octets newly acknowledged.
        acked: u32,
    },
    /// The ACK that ends fast recovery (RFC 6582 §3.2 step 5, full acknowledgment).
    RecoveryEnd {
        /// Octets still in flight after it.
        flight: u32,
    },
    /// The retransmission timer expired (RFC 5681 §3.1, equation 4 and the loss window).
    ///
    /// During a fast recovery (after `FastRetransmit`, before its `RecoveryEnd`) the built-in
    /// controllers take cwnd to the loss window but keep ssthresh: that window's congestion
    /// was answered already, and FlightSize and cwnd then include what window inflation sent
    /// (reducing from them raised ssthresh above the fast retransmit's). Linux likewise
    /// reduces ssthresh at most once per window of data; RFC 6582 §4's Impatient variant
    /// counts on such a timeout to finish a recovery with many holes.
    Timeout {
        /// Octets in flight when the timer expired.
        flight: u32,
    },
    /// Sending resumes after an idle period longer than the RTO (RFC 5681 §4.1).
    IdleRestart,
    /// The last window reduction (fast retransmit, SACK recovery or timeout) was spurious: the
    /// peer had the data (RFC 3522 timestamps or RFC 3708 D-SACK proved it). The controller
    /// undoes the reduction as RFC 4015 §3 answers a spurious timeout: ssthresh goes back to what
    /// it was before (`pipe_prev`), and cwnd to `flight + min(acked, IW)` so the restored window
    /// is reached by slow start, never in one burst.
    Undo {
        /// Octets still in flight.
        flight: u32,
        /// Octets acknowledged by the ACK that proved the reduction spurious.
        acked: u32,
    },
}

/// A congestion-control algorithm: keeps cwnd and ssthresh in octets.
pub trait CongestionControl: Debug + Send {
    /// The congestion window, in octets.
    fn window(&self) -> u32;
    /// The slow-start threshold, in octets.
    fn ssthresh(&self) -> u32;
    /// Reacts to an event; `path` says what the connection knows as it happens.
    fn on_event(&mut self, event: CongestionEvent, path: &PathInfo);
}

/// What the connection knows about the path when it tells the controller of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PathInfo {
    /// The sender's maximum segment size (the effective send MSS, MUST-16), in octets.
    pub mss: u32,
    /// The time of the event.
    pub now: Instant,
    /// The RTT sample this ACK gave, if it gave one (Karn-clean: never from an ambiguous
    /// retransmission without timestamps, MUST-18); `None` for events that are not ACKs.
    pub latest_rtt: Option<Duration>,
    /// The smoothed RTT (RFC 6298), once there is a sample.
    pub srtt: Option<Duration>,
    /// SND.UNA after the ACK that caused the event (the event's cumulative acknowledgment).
    pub snd_una: SeqNum,
    /// SND.NXT: a round trip ends when SND.UNA passes the SND.NXT of its start (RFC 9406 §4.2's
    /// `windowEnd`).
    pub snd_nxt: SeqNum,
    /// The congestion window, not the application or the peer's window, limited sending when
    /// the sender last stopped: the flight had filled cwnd to within one segment, and the peer's
    /// window was no smaller (RFC 9438 §5.8, RFC 7661: no growth while application-limited).
    pub cwnd_limited: bool,
}

impl PathInfo {
    /// Facts for an event at `now` with segments of `mss` octets: no RTT known, sequence
    /// numbers zero, cwnd-limited (the fields are public to fill in the rest).
    pub const fn new(mss: u32, now: Instant) -> Self {
        Self {
            mss,
            now,
            latest_rtt: None,
            srtt: None,
            snd_una: SeqNum::new(0),
            snd_nxt: SeqNum::new(0),
            cwnd_limited: true,
        }
    }
}

/// The built-in congestion controllers, for [`Config::congestion`](crate::config::Config).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CongestionAlgorithm {
    /// CUBIC (RFC 9438) with HyStart++ (RFC 9406): the default, as in Linux.
    #[default]
    Cubic,
    /// NewReno (RFC 5681, RFC 6582).
    NewReno,
}

impl core::fmt::Display for CongestionAlgorithm {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Cubic => "cubic",
            Self::NewReno => "newreno",
        })
    }
}

/// RFC 6928: the initial window, min(10×MSS, max(2×MSS, 14600)).
pub fn initial_window(mss: u32) -> u32 {
    (10 * mss).min((2 * mss).max(14_600))
}

/// RFC 6582 §3.2 step 5, a partial ACK in fast recovery: deflate cwnd by the octets
/// acknowledged, add back one SMSS if at least one SMSS was acknowledged (never below one).
/// The same arithmetic for every controller that inflates its window (RFC 5681 §3.2).
pub(crate) fn deflate_on_partial_ack(cwnd: u32, acked: u32, mss: u32) -> u32 {
    let mut cwnd = cwnd.saturating_sub(acked);
    if acked >= mss {
        cwnd = cwnd.saturating_add(mss);
    }
    cwnd.max(mss)
}

/// RFC 6582 §3.2 step 5 option (1), the ACK that ends fast recovery: cwnd = min(ssthresh,
/// FlightSize + SMSS), never below one SMSS.
pub(crate) fn window_at_recovery_end(ssthresh: u32, flight: u32, mss: u32) -> u32 {
    ssthresh.min(flight.saturating_add(mss)).max(mss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_window_follows_rfc_6928() {
        assert_eq!(initial_window(1460), 14_600);
        assert_eq!(initial_window(536), 5360);
        assert_eq!(initial_window(9000), 18_000);
    }
}
