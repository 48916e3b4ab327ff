//! SYN cookies (RFC 4987 §3.6): when a listener's SYN queue is full, its SYN-ACK carries all
//! the state in its sequence number, and only a valid ACK of it creates a connection.
//!
//! Layout of the 32-bit cookie (our ISN):
//!
//! ```text
//!  31    27 26  24 23    20 19                    0
//! | period | mss  | wscale |   MAC (20 bits)       |
//! ```
//!
//! `period` counts 64-second intervals (mod 32); a cookie is valid in its own period and the
//! next, so for 64 to 128 s. `mss` indexes [`MSS_TABLE`] (the largest entry not above the
//! peer's MSS); `wscale` is the peer's shift, 15 for "no option". The MAC is SipHash-2-4 of the
//! 4-tuple, the peer's ISN and the 12 bits above it (period, MSS, window scale) under a secret,
//! truncated to 20 bits: a blind attacker guessing a valid ACK succeeds with probability 2^-20
//! per try (Linux keeps 24 bits; we spend 3 on the MSS and 4 on the window scale), and a peer
//! that acknowledges a cookie with other MSS or window-scale bits than we sent fails it.
//!
//! Timestamps and SACK-permitted survive a cookie as in Linux, through the TSval of the
//! SYN-ACK. When the SYN offered timestamps (and we use them), the SYN-ACK carries them with a
//! marked TSval, whose two lowest bits are
//!
//! ```text
//!    1      0
//! | sack | mark = 1 |
//! ```
//!
//! It is the largest such value not after our clock: at most 3 ticks behind it (Linux: 63),
//! never ahead, so the connection's later TSvals do not go back. `sack` is set when the SYN
//! carried SACK-permitted and we use SACK, and only then does the SYN-ACK offer SACK-permitted
//! (RFC 2018 §2). A cookie ACK whose TSecr echoes a mark from the cookie's lifetime turns
//! timestamps on (RFC 7323 §3.2), with its TSval as TS.Recent, and SACK on if the mark says so.
//!
//! Linux's low TSval bits hold the window scale (4), SACK-permitted (1) and ECN (1). Our ISN
//! already holds the window scale, so it needs no TSval bits (and it survives a cookie without
//! timestamps, which in Linux it does not); we negotiate no ECN (RFC 3168), so no bit for it.
//! Linux trusts the echoed bits; we do not: the MAC covers the SACK bit, so a cookie ACK whose
//! TSecr claims SACK-permitted its SYN-ACK did not encode, or drops the claim (also by carrying
//! no timestamps), fails the cookie — a RST, no connection — and so does a SACK mark outside
//! the cookie's lifetime. Timestamps alone are judged by the mark and its age only, as before:
//! without a recent mark a cookie ACK makes a connection without them.
//!
//! Lost to a cookie: SACK-permitted on a SYN without timestamps (no TSval to keep it in; Linux
//! loses it too), so that SYN-ACK does not offer it and neither side uses SACK; and the exact
//! MSS, rounded down to an entry of [`MSS_TABLE`].

use core::hash::Hasher;
use core::net::{IpAddr, SocketAddr};

use siphasher::sip::SipHasher24;

use crate::connection::CookieHandshake;
use crate::seq::SeqNum;
use crate::time::Instant;
use crate::wire::Timestamps;

/// The MSS values a cookie can carry.
pub(crate) const MSS_TABLE: [u16; 8] = [536, 1220, 1360, 1400, 1440, 1460, 4312, 8960];

const PERIOD_MICROS: u64 = 64_000_000;
const NO_WINDOW_SCALE: u32 = 15;

/// The TSval bit that marks a cookie SYN-ACK's timestamp.
const MARK: u32 = 0b01;
/// The TSval bit that says the cookie's SYN carried SACK-permitted (and we use SACK).
const MARK_SACK: u32 = 0b10;
/// The TSval bits a mark uses; a marked TSval is at most this many ticks behind the clock.
const MARK_BITS: u32 = MARK | MARK_SACK;

/// The options of a SYN that a cookie keeps, as far as our configuration uses them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SynOptions {
    /// The peer's MSS option.
    pub(crate) mss: Option<u16>,
    /// The peer's window-scale option.
    pub(crate) window_scale: Option<u8>,
    /// Our TSval clock, when the SYN offered timestamps and we use them.
    pub(crate) ts_clock: Option<u32>,
    /// The SYN carried SACK-permitted and we use SACK.
    pub(crate) sack_permitted: bool,
}

/// A cookie SYN-ACK's sequence number and the options that ride on its TSval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Minted {
    /// Our ISN: the cookie.
    pub(crate) iss: SeqNum,
    /// The marked TSval, when the SYN-ACK carries timestamps.
    pub(crate) tsval: Option<u32>,
    /// Whether the SYN-ACK offers SACK-permitted: only if the SYN did and the TSval keeps it.
    pub(crate) sack_permitted: bool,
}

/// Mints and checks SYN cookies under one secret.
#[derive(Clone, Debug)]
pub(crate) struct Cookies {
    secret: [u8; 16],
}

impl Cookies {
    pub(crate) const fn new(secret: [u8; 16]) -> Self {
        Self { secret }
    }

    fn period(now: Instant) -> u32 {
        // Only the low 5 bits are kept.
        ((now.as_micros() / PERIOD_MICROS) & 0x1f) as u32
    }

    /// The MAC over everything the cookie restores: `fields` are its top 12 bits, `sack` the
    /// option its TSval carries.
    fn mac(
        &self,
        local: SocketAddr,
        remote: SocketAddr,
        irs: SeqNum,
        fields: u32,
        sack: bool,
    ) -> u32 {
        let mut hasher = SipHasher24::new_with_key(&self.secret);
        for address in [local, remote] {
            match address.ip() {
                IpAddr::V4(ip) => hasher.write(&ip.octets()),
                IpAddr::V6(ip) => hasher.write(&ip.octets()),
            }
            hasher.write(&address.port().to_be_bytes());
        }
        hasher.write(&irs.get().to_be_bytes());
        hasher.write(&(fields | (u32::from(sack) << 12)).to_be_bytes());
        (hasher.finish() as u32) & 0x000f_ffff
    }

    /// The cookie SYN-ACK answering a SYN with sequence number `irs` and options `syn`.
    pub(crate) fn mint(
        &self,
        now: Instant,
        (local, remote): (SocketAddr, SocketAddr),
        irs: SeqNum,
        syn: SynOptions,
    ) -> Minted {
        let period = Self::period(now);
        let mss = syn.mss.unwrap_or(MSS_TABLE[0]);
        let mss_index = MSS_TABLE.iter().rposition(|&entry| entry <= mss).unwrap_or(0) as u32;
        let wscale = syn.window_scale.map_or(NO_WINDOW_SCALE, |shift| u32::from(shift.min(14)));
        let fields = (period << 7) | (mss_index << 4) | wscale;
        // SACK-permitted survives only in a TSval (RFC 2018 §2: offered only if it is kept).
        let sack = syn.sack_permitted && syn.ts_clock.is_some();
        Minted {
            iss: SeqNum::new((fields << 20) | self.mac(local, remote, irs, fields, sack)),
            tsval: syn.ts_clock.map(|clock| mark_tsval(clock, sack)),
            sack_permitted: sack,
        }
    }

    /// What a cookie ACK restores, if its cookie (SEG.ACK − 1) is genuine and fresh. `ts` is
    /// the ACK's timestamps option when we use timestamps, and `clock` our TSval clock for the
    /// 4-tuple (called only for a genuine cookie: it costs a hash).
    pub(crate) fn check(
        &self,
        now: Instant,
        (local, remote): (SocketAddr, SocketAddr),
        seg_seq: SeqNum,
        seg_ack: SeqNum,
        ts: Option<Timestamps>,
        clock: impl FnOnce() -> u32,
    ) -> Option<CookieHandshake> {
        let irs = seg_seq + u32::MAX;
        let iss = seg_ack + u32::MAX;
        let cookie = iss.get();
        let period = cookie >> 27;
        let current = Self::period(now);
        let fresh = period == current || period == (current + 31) & 0x1f;
        // What the echo claims; the MAC tells whether the SYN-ACK said so.
        let marked = ts.filter(|ts| ts.tsecr & MARK == MARK);
        let sack = marked.is_some_and(|ts| ts.tsecr & MARK_SACK != 0);
        if !fresh || self.mac(local, remote, irs, cookie >> 20, sack) != cookie & 0x000f_ffff {
            return None;
        }
        // The mark's age: an odd TSecr from outside the cookie's lifetime is no echo of ours.
        let peer_tsval = marked.filter(|ts| is_recent_mark(clock(), ts.tsecr)).map(|ts| ts.tsval);
        if sack && peer_tsval.is_none() {
            // A genuine SACK mark is as fresh as its cookie; a stale one can only be forged.
            return None;
        }
        let mss = MSS_TABLE.get(((cookie >> 24) & 0x7) as usize).copied();
        let wscale = (cookie >> 20) & 0xf;
        let peer_window_scale = (wscale != NO_WINDOW_SCALE).then_some(wscale as u8);
        Some(CookieHandshake {
            iss,
            irs,
            peer_mss: mss,
            peer_window_scale,
            peer_tsval,
            peer_sack_permitted: sack,
        })
    }
}

/// The TSval of a cookie SYN-ACK at our clock `clock`: marked, with `sack` encoded, and never
/// ahead of the clock (at most [`MARK_BITS`] ticks behind it).
const fn mark_tsval(clock: u32, sack: bool) -> u32 {
    let bits = if sack { MARK | MARK_SACK } else { MARK };
    let tsval = (clock & !MARK_BITS) | bits;
    if tsval & MARK_BITS > clock & MARK_BITS { tsval.wrapping_sub(MARK_BITS + 1) } else { tsval }
}

/// Whether the marked `tsecr` on a cookie ACK is a TSval we could have sent within a cookie's
/// lifetime (two periods, plus the mark's lag) before `clock`.
fn is_recent_mark(clock: u32, tsecr: u32) -> bool {
    let lifetime_ms = 2 * PERIOD_MICROS / 1_000 + u64::from(MARK_BITS);
    tsecr & MARK == MARK && u64::from(clock.wrapping_sub(tsecr)) <= lifetime_ms
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    fn addr(last: u8, port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)), port)
    }

    /// Our (local, remote) pair, the client at `port`.
    fn tuple(port: u16) -> (SocketAddr, SocketAddr) {
        (addr(2, 80), addr(1, port))
    }

    fn syn(mss: Option<u16>, window_scale: Option<u8>) -> SynOptions {
        SynOptions { mss, window_scale, ts_clock: None, sack_permitted: false }
    }

    /// A SYN offering timestamps (our clock at `clock`) and, if `sack`, SACK-permitted.
    fn syn_ts(clock: u32, sack: bool) -> SynOptions {
        SynOptions { ts_clock: Some(clock), sack_permitted: sack, ..syn(Some(1460), Some(7)) }
    }

    /// The ACK's timestamps: its own TSval 77, echoing `tsecr`.
    fn echo(tsecr: u32) -> Option<Timestamps> {
        Some(Timestamps { tsval: 77, tsecr })
    }

    /// A `clock` for cookie checks that must fail before they cost a hash.
    fn no_clock() -> u32 {
        panic!("the TSval clock is only read for a genuine cookie")
    }

    #[test]
    fn a_minted_cookie_checks_out_and_restores_mss_and_window_scale() {
        let cookies = Cookies::new([3; 16]);
        let now = Instant::from_millis(5_000);
        let irs = SeqNum::new(1_000);
        let minted = cookies.mint(now, tuple(4000), irs, syn(Some(1460), Some(7)));
        assert_eq!((minted.tsval, minted.sack_permitted), (None, false));
        let iss = minted.iss;
        let restored = cookies.check(now, tuple(4000), irs + 1, iss + 1, None, no_clock).unwrap();
        assert_eq!(restored.iss, iss);
        assert_eq!(restored.irs, irs);
        assert_eq!(restored.peer_mss, Some(1460));
        assert_eq!(restored.peer_window_scale, Some(7));
        assert_eq!((restored.peer_tsval, restored.peer_sack_permitted), (None, false));
        let no_ws = cookies.mint(now, tuple(4000), irs, syn(Some(1000), None)).iss;
        let restored = cookies.check(now, tuple(4000), irs + 1, no_ws + 1, None, no_clock).unwrap();
        assert_eq!((restored.peer_mss, restored.peer_window_scale), (Some(536), None));
    }

    #[test]
    fn cookie_syn_ack_tsval_is_marked_with_sack_and_never_ahead_of_the_clock_rfc_7323_3_2() {
        assert_eq!(mark_tsval(1001, false), 1001);
        assert_eq!(mark_tsval(1000, false), 997);
        assert_eq!(mark_tsval(1003, false), 1001);
        assert_eq!(mark_tsval(1003, true), 1003);
        assert_eq!(mark_tsval(1001, true), 999);
        assert_eq!(mark_tsval(0, false), u32::MAX - 2, "back across the wrap");
        assert_eq!(mark_tsval(0, true), u32::MAX);
        for clock in (0..64).chain(u32::MAX - 64..=u32::MAX) {
            for sack in [false, true] {
                let tsval = mark_tsval(clock, sack);
                assert!(clock.wrapping_sub(tsval) <= MARK_BITS, "{clock} {sack}: {tsval}");
                assert_eq!(tsval & MARK_BITS, if sack { 0b11 } else { 0b01 });
            }
        }
        assert!(is_recent_mark(5000, mark_tsval(5000, false)));
        assert!(is_recent_mark(5001 + 128_003, 5001), "within the cookie's lifetime and lag");
        assert!(!is_recent_mark(5001 + 128_004, 5001), "older than a cookie lives");
        assert!(!is_recent_mark(5000, 5002), "even: not a mark of ours");
        assert!(!is_recent_mark(5000, 5003), "from the future");
    }

    /// RFC 2018 §2 through a cookie: the SYN-ACK offers SACK-permitted only when its TSval can
    /// keep it, and the echo of that TSval restores it.
    #[test]
    fn sack_permitted_survives_a_cookie_only_with_timestamps_rfc_2018_2() {
        let cookies = Cookies::new([3; 16]);
        let now = Instant::from_millis(5_000);
        let irs = SeqNum::new(1_000);
        let clock = 90_002;
        for (syn, offers_sack, tsval) in [
            (syn_ts(clock, true), true, Some(89_999)),
            (syn_ts(clock, false), false, Some(90_001)),
            (SynOptions { sack_permitted: true, ..syn(Some(1460), Some(7)) }, false, None),
            (syn(Some(1460), Some(7)), false, None),
        ] {
            let minted = cookies.mint(now, tuple(4000), irs, syn);
            assert_eq!((minted.sack_permitted, minted.tsval), (offers_sack, tsval), "{syn:?}");
            let ts = minted.tsval.and_then(echo);
            let later = || clock + 40;
            let restored = cookies.check(now, tuple(4000), irs + 1, minted.iss + 1, ts, later);
            let restored = restored.expect("the echo of a genuine cookie");
            assert_eq!(restored.peer_sack_permitted, offers_sack, "{syn:?}");
            assert_eq!(restored.peer_tsval, tsval.map(|_| 77), "{syn:?}");
            assert_eq!(restored.peer_window_scale, Some(7));
        }
    }

    /// The MAC covers the SACK bit of the mark: an echo that claims SACK-permitted the SYN-ACK
    /// did not encode, or drops a claim it did, fails the cookie before the clock is read.
    #[test]
    fn an_echo_contradicting_the_cookies_sack_bit_fails_it_rfc_2018_2() {
        let cookies = Cookies::new([3; 16]);
        let now = Instant::from_millis(5_000);
        let irs = SeqNum::new(1_000);
        let clock = 90_002;
        let check =
            |iss: SeqNum, ts| cookies.check(now, tuple(4000), irs + 1, iss + 1, ts, no_clock);
        let ts_only = cookies.mint(now, tuple(4000), irs, syn_ts(clock, false));
        let tsval = ts_only.tsval.unwrap();
        assert!(check(ts_only.iss, echo(tsval | MARK_SACK)).is_none(), "SACK claimed");
        let both = cookies.mint(now, tuple(4000), irs, syn_ts(clock, true));
        let tsval = both.tsval.unwrap();
        assert!(check(both.iss, echo(tsval & !MARK_SACK)).is_none(), "SACK dropped");
        assert!(check(both.iss, None).is_none(), "timestamps (and with them SACK) dropped");
        let sack_only = SynOptions { sack_permitted: true, ..syn(Some(1460), Some(7)) };
        let sack_only = cookies.mint(now, tuple(4000), irs, sack_only);
        assert!(check(sack_only.iss, echo(clock | MARK_BITS)).is_none(), "a mark never sent");
        // The SACK bit of a genuine mark, in a TSval we did not send then: a forgery too.
        let stale = tsval.wrapping_sub(1 << 20);
        let stale_check =
            cookies.check(now, tuple(4000), irs + 1, both.iss + 1, echo(stale), || clock + 40);
        assert!(stale_check.is_none());
        // Without SACK, a stale mark loses only the timestamps, as it did before SACK rode on it.
        let stale = ts_only.tsval.unwrap().wrapping_sub(1 << 20);
        let restored =
            cookies.check(now, tuple(4000), irs + 1, ts_only.iss + 1, echo(stale), || clock + 40);
        let restored = restored.unwrap();
        assert_eq!((restored.peer_tsval, restored.peer_sack_permitted), (None, false));
    }

    #[test]
    fn forged_stale_or_misaddressed_cookies_are_refused() {
        let cookies = Cookies::new([3; 16]);
        let now = Instant::from_millis(5_000);
        let irs = SeqNum::new(1_000);
        let iss = cookies.mint(now, tuple(4000), irs, syn(Some(1460), None)).iss;
        let check = |now, tuple, seg_seq, seg_ack| {
            cookies.check(now, tuple, seg_seq, seg_ack, None, no_clock).is_some()
        };
        assert!(!check(now, tuple(4001), irs + 1, iss + 1));
        assert!(!check(now, tuple(4000), irs + 2, iss + 1));
        assert!(!check(now, tuple(4000), irs + 1, iss + 2));
        // The same MAC with other MSS or window-scale bits: not the cookie we sent.
        for bit in 20..27 {
            let altered = SeqNum::new(iss.get() ^ (1 << bit));
            assert!(!check(now, tuple(4000), irs + 1, altered + 1));
        }
        let later = Instant::from_micros(now.as_micros() + 2 * PERIOD_MICROS);
        assert!(!check(later, tuple(4000), irs + 1, iss + 1));
        let next_period = Instant::from_micros(now.as_micros() + PERIOD_MICROS);
        assert!(check(next_period, tuple(4000), irs + 1, iss + 1));
        let other_secret = Cookies::new([4; 16]);
        assert!(other_secret.check(now, tuple(4000), irs + 1, iss + 1, None, no_clock).is_none());
    }
}
