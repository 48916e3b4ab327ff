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
//! Timestamps survive a cookie as in Linux, through the TSval of the SYN-ACK: when the SYN
//! offered the option, the SYN-ACK carries it with the lowest TSval bit set (the clock, or
//! one tick before it, so TSval never runs ahead); a cookie ACK whose TSecr echoes a marked
//! value from the cookie's lifetime turns timestamps on for the connection (RFC 7323 §3.2),
//! with its TSval as TS.Recent. SACK-permitted is not encoded yet.

use core::hash::Hasher;
use core::net::{IpAddr, SocketAddr};

use siphasher::sip::SipHasher24;

use crate::connection::CookieHandshake;
use crate::seq::SeqNum;
use crate::time::Instant;

/// The MSS values a cookie can carry.
pub(crate) const MSS_TABLE: [u16; 8] = [536, 1220, 1360, 1400, 1440, 1460, 4312, 8960];

const PERIOD_MICROS: u64 = 64_000_000;
const NO_WINDOW_SCALE: u32 = 15;

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

    /// The MAC over everything the cookie restores: `fields` are its top 12 bits.
    fn mac(&self, local: SocketAddr, remote: SocketAddr, irs: SeqNum, fields: u32) -> u32 {
        let mut hasher = SipHasher24::new_with_key(&self.secret);
        for address in [local, remote] {
            match address.ip() {
                IpAddr::V4(ip) => hasher.write(&ip.octets()),
                IpAddr::V6(ip) => hasher.write(&ip.octets()),
            }
            hasher.write(&address.port().to_be_bytes());
        }
        hasher.write(&irs.get().to_be_bytes());
        hasher.write(&fields.to_be_bytes());
        (hasher.finish() as u32) & 0x000f_ffff
    }

    /// The cookie (our ISN) answering a SYN with sequence number `irs`.
    pub(crate) fn mint(
        &self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        irs: SeqNum,
        peer_mss: Option<u16>,
        peer_window_scale: Option<u8>,
    ) -> SeqNum {
        let period = Self::period(now);
        let mss = peer_mss.unwrap_or(MSS_TABLE[0]);
        let mss_index = MSS_TABLE.iter().rposition(|&entry| entry <= mss).unwrap_or(0) as u32;
        let wscale = peer_window_scale.map_or(NO_WINDOW_SCALE, |shift| u32::from(shift.min(14)));
        let fields = (period << 7) | (mss_index << 4) | wscale;
        SeqNum::new((fields << 20) | self.mac(local, remote, irs, fields))
    }

    /// What a cookie ACK restores, if its cookie (SEG.ACK − 1) is genuine and fresh.
    pub(crate) fn check(
        &self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        seg_seq: SeqNum,
        seg_ack: SeqNum,
    ) -> Option<CookieHandshake> {
        let irs = seg_seq + u32::MAX;
        let iss = seg_ack + u32::MAX;
        let cookie = iss.get();
        let period = cookie >> 27;
        let current = Self::period(now);
        let fresh = period == current || period == (current + 31) & 0x1f;
        if !fresh || self.mac(local, remote, irs, cookie >> 20) != cookie & 0x000f_ffff {
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
            peer_tsval: None,
            peer_sack_permitted: false,
        })
    }
}

/// The TSval of a cookie SYN-ACK at our clock `clock`: odd, and never ahead of the clock.
pub(crate) const fn mark_tsval(clock: u32) -> u32 {
    if clock & 1 == 1 { clock } else { clock.wrapping_sub(1) }
}

/// Whether `tsecr` on a cookie ACK echoes a marked TSval we could have sent within a cookie's
/// lifetime (two periods) before `clock`: the SYN-ACK offered timestamps.
pub(crate) fn echoes_mark(clock: u32, tsecr: u32) -> bool {
    let lifetime_ms = 2 * PERIOD_MICROS / 1_000;
    tsecr & 1 == 1 && u64::from(clock.wrapping_sub(tsecr)) <= lifetime_ms
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    fn addr(last: u8, port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)), port)
    }

    #[test]
    fn a_minted_cookie_checks_out_and_restores_mss_and_window_scale() {
        let cookies = Cookies::new([3; 16]);
        let now = Instant::from_millis(5_000);
        let irs = SeqNum::new(1_000);
        let iss = cookies.mint(now, addr(2, 80), addr(1, 4000), irs, Some(1460), Some(7));
        let restored = cookies.check(now, addr(2, 80), addr(1, 4000), irs + 1, iss + 1).unwrap();
        assert_eq!(restored.iss, iss);
        assert_eq!(restored.irs, irs);
        assert_eq!(restored.peer_mss, Some(1460));
        assert_eq!(restored.peer_window_scale, Some(7));
        let no_ws = cookies.mint(now, addr(2, 80), addr(1, 4000), irs, Some(1000), None);
        let restored = cookies.check(now, addr(2, 80), addr(1, 4000), irs + 1, no_ws + 1).unwrap();
        assert_eq!((restored.peer_mss, restored.peer_window_scale), (Some(536), None));
    }

    #[test]
    fn cookie_syn_ack_tsval_is_marked_and_its_echo_recognised_rfc_7323_3_2() {
        assert_eq!(mark_tsval(1001), 1001);
        assert_eq!(mark_tsval(1000), 999);
        assert_eq!(mark_tsval(0), u32::MAX, "one tick back, across the wrap");
        assert!(echoes_mark(5000, mark_tsval(5000)));
        assert!(echoes_mark(5001 + 128_000, mark_tsval(5001)), "within the cookie's lifetime");
        assert!(!echoes_mark(5001 + 128_001, mark_tsval(5001)), "older than a cookie lives");
        assert!(!echoes_mark(5000, 5002), "even: not a mark of ours");
        assert!(!echoes_mark(5000, 5003), "from the future");
    }

    #[test]
    fn forged_stale_or_misaddressed_cookies_are_refused() {
        let cookies = Cookies::new([3; 16]);
        let now = Instant::from_millis(5_000);
        let irs = SeqNum::new(1_000);
        let iss = cookies.mint(now, addr(2, 80), addr(1, 4000), irs, Some(1460), None);
        assert!(cookies.check(now, addr(2, 80), addr(1, 4001), irs + 1, iss + 1).is_none());
        assert!(cookies.check(now, addr(2, 80), addr(1, 4000), irs + 2, iss + 1).is_none());
        assert!(cookies.check(now, addr(2, 80), addr(1, 4000), irs + 1, iss + 2).is_none());
        // The same MAC with other MSS or window-scale bits: not the cookie we sent.
        for bit in 20..27 {
            let altered = SeqNum::new(iss.get() ^ (1 << bit));
            assert!(cookies.check(now, addr(2, 80), addr(1, 4000), irs + 1, altered + 1).is_none());
        }
        let later = Instant::from_micros(now.as_micros() + 2 * PERIOD_MICROS);
        assert!(cookies.check(later, addr(2, 80), addr(1, 4000), irs + 1, iss + 1).is_none());
        let next_period = Instant::from_micros(now.as_micros() + PERIOD_MICROS);
        assert!(cookies.check(next_period, addr(2, 80), addr(1, 4000), irs + 1, iss + 1).is_some());
        assert!(
            Cookies::new([4; 16])
                .check(now, addr(2, 80), addr(1, 4000), irs + 1, iss + 1)
                .is_none()
        );
    }
}
