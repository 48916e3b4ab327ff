//! Caller-supplied time.
//!
//! The core never reads a clock: every call that can change state or emit a segment takes the
//! current [`Instant`], chosen by the caller (an adapter's monotonic clock, a simulator's virtual
//! clock). An `Instant` counts microseconds since an epoch the caller picks; only differences
//! between instants mean anything. There is deliberately no `now()` constructor.
//!
//! Contract: time never goes backwards. A connection remembers the latest instant it was given
//! and treats an earlier one as that latest value (a debug assertion flags the caller's bug).
//! Durations are [`core::time::Duration`].

use core::fmt;
use core::num::NonZeroU64;
use core::ops::{Add, AddAssign};
use core::time::Duration;

/// A point in time, in microseconds since a caller-chosen epoch, up to [`Instant::MAX`]
/// (2^64 − 2 µs, half a million years).
///
/// Stored as the microseconds plus one in a `NonZeroU64`, so an `Option<Instant>` is 8 bytes
/// like the `Instant` itself: a connection keeps several.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(NonZeroU64);

impl Instant {
    /// The caller's epoch.
    pub const ZERO: Self = Self(NonZeroU64::MIN);
    /// The latest representable instant; used as "never" by timers that may stay unarmed.
    pub const MAX: Self = Self(NonZeroU64::MAX);

    /// An instant `micros` microseconds after the epoch (saturating at [`Instant::MAX`]).
    pub const fn from_micros(micros: u64) -> Self {
        match NonZeroU64::new(micros.saturating_add(1)) {
            Some(stored) => Self(stored),
            None => Self::MAX,
        }
    }

    /// An instant `millis` milliseconds after the epoch (saturating).
    pub const fn from_millis(millis: u64) -> Self {
        Self::from_micros(millis.saturating_mul(1_000))
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> u64 {
        self.0.get() - 1
    }

    /// Milliseconds since the epoch (truncated).
    pub const fn as_millis(self) -> u64 {
        self.as_micros() / 1_000
    }

    /// The time from `earlier` to `self`, or zero if `earlier` is later.
    pub const fn saturating_duration_since(self, earlier: Self) -> Duration {
        Duration::from_micros(self.0.get().saturating_sub(earlier.0.get()))
    }

    /// `self + duration`, saturating at [`Instant::MAX`].
    pub fn saturating_add(self, duration: Duration) -> Self {
        let micros = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
        Self(self.0.saturating_add(micros))
    }

    /// `self` plus `micros` microseconds, saturating at [`Instant::MAX`]: the same as
    /// `Instant::from_micros(self.as_micros().saturating_add(micros))`, in one addition on
    /// the stored value (for per-segment timer arithmetic).
    pub(crate) const fn saturating_add_micros(self, micros: u64) -> Self {
        Self(self.0.saturating_add(micros))
    }
}

impl Default for Instant {
    fn default() -> Self {
        Self::ZERO
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Instant").field(&self.as_micros()).finish()
    }
}

impl Add<Duration> for Instant {
    type Output = Self;

    /// Saturating: an instant past the end of time is [`Instant::MAX`].
    fn add(self, duration: Duration) -> Self {
        self.saturating_add(duration)
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, duration: Duration) {
        *self = self.saturating_add(duration);
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let micros = self.as_micros();
        write!(f, "{}.{:06}s", micros / 1_000_000, micros % 1_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn adding_micros_matches_the_round_trip_through_micros() {
        for (base, micros) in [(0, 0), (5, 1_000_000), (u64::MAX - 10, 9), (u64::MAX - 10, 10)] {
            let instant = Instant::from_micros(base);
            let expected = Instant::from_micros(instant.as_micros().saturating_add(micros));
            assert_eq!(instant.saturating_add_micros(micros), expected, "{base} + {micros}");
        }
        assert_eq!(Instant::from_micros(u64::MAX - 10).saturating_add_micros(11), Instant::MAX);
        assert_eq!(Instant::MAX.saturating_add_micros(1), Instant::MAX);
    }

    #[test]
    fn add_saturates_instead_of_overflowing() {
        assert_eq!(Instant::MAX + Duration::from_secs(1), Instant::MAX);
        assert_eq!(Instant::from_millis(1) + Duration::from_micros(5), Instant::from_micros(1_005));
    }

    #[test]
    fn duration_since_later_instant_is_zero() {
        let early = Instant::from_millis(5);
        let late = Instant::from_millis(7);
        assert_eq!(late.saturating_duration_since(early), Duration::from_millis(2));
        assert_eq!(early.saturating_duration_since(late), Duration::ZERO);
    }

    #[test]
    fn option_costs_nothing_and_the_ends_round_trip() {
        assert_eq!(size_of::<Option<Instant>>(), 8);
        assert_eq!(Instant::ZERO.as_micros(), 0);
        assert_eq!(Instant::from_micros(u64::MAX), Instant::MAX);
        assert_eq!(Instant::MAX.as_micros(), u64::MAX - 1);
        assert!(Instant::from_micros(u64::MAX - 2) < Instant::MAX);
    }

    #[test]
    fn display_shows_seconds_and_micros() {
        assert_eq!(Instant::from_micros(1_000_042).to_string(), "1.000042s");
    }
}
