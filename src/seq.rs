//! Sequence-number arithmetic and the checked number types of the TCP header.
//!
//! RFC 9293 §3.4: sequence numbers live in a space of 2^32 that wraps, so "before" and "after"
//! only mean something for numbers less than 2^31 apart. [`SeqNum`] therefore has no
//! `PartialOrd`: comparisons are the explicit, wrapping [`SeqNum::before`] / [`SeqNum::after`],
//! and distances are [`SeqNum::wrapping_distance`]. There is no `-` on raw `u32` sequence values
//! anywhere in the crate (PITFALLS: window-update underflow panics).
//!
//! [`Window`], [`WindowScale`] and [`Mss`] are checked newtypes: a value that exists is in range.

use core::fmt;
use core::ops::{Add, AddAssign};

/// A TCP sequence (or acknowledgment) number, compared modulo 2^32 (RFC 9293 §3.4).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNum(u32);

impl SeqNum {
    /// The sequence number with raw value `raw`.
    pub const fn new(raw: u32) -> Self {
        Self(raw)
    }

    /// The raw 32-bit value, as carried on the wire.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The signed distance from `other` to `self` (`self - other` in sequence space).
    ///
    /// Positive when `self` is after `other`. Exact for numbers less than 2^31 apart, which is
    /// the only case in which TCP compares sequence numbers.
    pub const fn wrapping_distance(self, other: Self) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }

    /// The unsigned number of octets from `earlier` up to `self`, wrapping.
    ///
    /// Callers use it where `earlier` is known not to be after `self` (e.g. SND.NXT − SND.UNA).
    pub const fn since(self, earlier: Self) -> u32 {
        self.0.wrapping_sub(earlier.0)
    }

    /// `self < other` in sequence space.
    pub const fn before(self, other: Self) -> bool {
        self.wrapping_distance(other) < 0
    }

    /// `self <= other` in sequence space.
    pub const fn before_eq(self, other: Self) -> bool {
        self.wrapping_distance(other) <= 0
    }

    /// `self > other` in sequence space.
    pub const fn after(self, other: Self) -> bool {
        self.wrapping_distance(other) > 0
    }

    /// `self >= other` in sequence space.
    pub const fn after_eq(self, other: Self) -> bool {
        self.wrapping_distance(other) >= 0
    }

    /// `start <= self < start + len` in sequence space (an empty range holds nothing).
    pub const fn in_range(self, start: Self, len: u32) -> bool {
        self.since(start) < len
    }

    /// Whether a segment starting here with SEG.LEN `seg_len` is acceptable to a receive
    /// window of `rcv_wnd` octets from `rcv_nxt`: the four cases of RFC 9293 §3.10.7.4 step 1.
    pub const fn is_acceptable(self, seg_len: u32, rcv_nxt: Self, rcv_wnd: u32) -> bool {
        match (seg_len, rcv_wnd) {
            (0, 0) => self.0 == rcv_nxt.0,
            (0, _) => self.in_range(rcv_nxt, rcv_wnd),
            (_, 0) => false,
            (_, _) => {
                let last = Self(self.0.wrapping_add(seg_len - 1));
                self.in_range(rcv_nxt, rcv_wnd) || last.in_range(rcv_nxt, rcv_wnd)
            }
        }
    }

    /// The later of two sequence numbers.
    pub const fn max_seq(self, other: Self) -> Self {
        if self.after(other) { self } else { other }
    }

    /// The earlier of two sequence numbers.
    pub const fn min_seq(self, other: Self) -> Self {
        if self.before(other) { self } else { other }
    }
}

impl Add<u32> for SeqNum {
    type Output = Self;

    /// Wrapping addition: sequence space is modulo 2^32.
    fn add(self, rhs: u32) -> Self {
        Self(self.0.wrapping_add(rhs))
    }
}

impl AddAssign<u32> for SeqNum {
    fn add_assign(&mut self, rhs: u32) {
        self.0 = self.0.wrapping_add(rhs);
    }
}

impl fmt::Debug for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SeqNum({})", self.0)
    }
}

impl fmt::Display for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A receive or send window in octets, after scaling.
///
/// RFC 7323 §2.3: with the largest shift (14) a window is below 2^30, so every window fits in
/// 32 bits with room for sequence arithmetic (RFC 9293 REC-1: window arithmetic in 32 bits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Window(u32);

impl Window {
    /// The largest window TCP can express: 65535 << 14.
    pub const MAX: Self = Self((u16::MAX as u32) << WindowScale::MAX_SHIFT);
    /// The zero window.
    pub const ZERO: Self = Self(0);

    /// A window of `octets`, or `None` above [`Window::MAX`].
    pub const fn new(octets: u32) -> Option<Self> {
        if octets <= Self::MAX.0 { Some(Self(octets)) } else { None }
    }

    /// A window of `octets`, clamped to [`Window::MAX`].
    pub const fn saturating(octets: u32) -> Self {
        if octets <= Self::MAX.0 { Self(octets) } else { Self::MAX }
    }

    /// The window advertised by a header field `raw` under `scale` (RFC 7323 §2.3).
    pub const fn from_scaled(raw: u16, scale: WindowScale) -> Self {
        Self((raw as u32) << scale.shift())
    }

    /// The 16-bit header field for this window under `scale`, rounded down (RFC 7323 §2.3),
    /// saturating at 65535.
    pub const fn to_scaled(self, scale: WindowScale) -> u16 {
        let shifted = self.0 >> scale.shift();
        if shifted > u16::MAX as u32 { u16::MAX } else { shifted as u16 }
    }

    /// The window in octets.
    pub const fn get(self) -> u32 {
        self.0
    }
}

/// A window-scale shift count, 0..=14 (RFC 7323 §2.3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WindowScale(u8);

impl WindowScale {
    /// The largest shift RFC 7323 §2.3 allows.
    pub const MAX_SHIFT: u8 = 14;
    /// No scaling.
    pub const NONE: Self = Self(0);

    /// The shift `shift`, or `None` above 14.
    pub const fn new(shift: u8) -> Option<Self> {
        if shift <= Self::MAX_SHIFT { Some(Self(shift)) } else { None }
    }

    /// The shift received in an option, clamped to 14 as RFC 7323 §2.3 tells a receiver to do
    /// (and to log) when a peer offers more.
    pub const fn clamped(shift: u8) -> Self {
        if shift <= Self::MAX_SHIFT { Self(shift) } else { Self(Self::MAX_SHIFT) }
    }

    /// The shift count.
    pub const fn shift(self) -> u8 {
        self.0
    }

    /// The smallest shift that lets a window of `buffer` octets be advertised in 16 bits
    /// (RFC 7323 §2.3), at most 14.
    pub const fn for_buffer(buffer: usize) -> Self {
        let mut shift = 0;
        while shift < Self::MAX_SHIFT && (buffer >> shift) > u16::MAX as usize {
            shift += 1;
        }
        Self(shift)
    }
}

/// A maximum segment size: the largest payload of one segment, in octets.
///
/// Never zero. A peer-advertised MSS below [`Mss::MIN_USABLE`] is clamped up when it is used to
/// size segments, so a tiny MSS cannot make the sender loop on empty segments (PITFALLS).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mss(u16);

impl Mss {
    /// The IPv4 default send MSS when the peer sends no MSS option (RFC 9293 MUST-15: 536).
    pub const DEFAULT_IPV4: Self = Self(536);
    /// The IPv6 default send MSS when the peer sends no MSS option (RFC 9293 MUST-15: 1220).
    pub const DEFAULT_IPV6: Self = Self(1220);
    /// The smallest MSS this stack will segment data by; a smaller peer MSS is raised to it.
    ///
    /// 64 octets: small enough to honour any real link, large enough that options plus payload
    /// always leave room for data (RFC 9293 MUST-16 subtracts options from the MSS).
    pub const MIN_USABLE: Self = Self(64);

    /// An MSS of `octets`, or `None` for zero.
    pub const fn new(octets: u16) -> Option<Self> {
        if octets == 0 { None } else { Some(Self(octets)) }
    }

    /// The MSS in octets.
    pub const fn get(self) -> u16 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_wrap_around_zero() {
        let near_end = SeqNum::new(u32::MAX - 10);
        let wrapped = near_end + 20;
        assert_eq!(wrapped.get(), 9);
        assert!(near_end.before(wrapped));
        assert!(wrapped.after(near_end));
        assert_eq!(wrapped.wrapping_distance(near_end), 20);
        assert_eq!(near_end.wrapping_distance(wrapped), -20);
        assert_eq!(wrapped.since(near_end), 20);
    }

    #[test]
    fn in_range_is_half_open() {
        let start = SeqNum::new(u32::MAX - 1);
        assert!(start.in_range(start, 1));
        assert!(!start.in_range(start, 0));
        assert!((start + 3).in_range(start, 4));
        assert!(!(start + 4).in_range(start, 4));
    }

    #[test]
    fn window_scaling_rounds_down_and_saturates() {
        let scale = WindowScale::new(7).unwrap_or_default();
        let window = Window::saturating(1 << 20);
        assert_eq!(window.to_scaled(scale), 8192);
        assert_eq!(Window::from_scaled(8192, scale), window);
        assert_eq!(Window::MAX.to_scaled(WindowScale::NONE), u16::MAX);
        assert_eq!(Window::new(Window::MAX.get() + 1), None);
    }

    #[test]
    fn window_scale_above_fourteen_is_rejected_or_clamped() {
        assert_eq!(WindowScale::new(15), None);
        assert_eq!(WindowScale::clamped(200).shift(), 14);
    }

    #[test]
    fn mss_zero_is_rejected() {
        assert_eq!(Mss::new(0), None);
        assert_eq!(Mss::new(1460).map(Mss::get), Some(1460));
    }
}
