//! CUBIC against RFC 9438's formulas.

use proptest::prelude::*;

use super::*;
use crate::seq::SeqNum;

const MSS: u32 = 1000;

fn path_at(ms: u64) -> PathInfo {
    let mut path = PathInfo::new(MSS, Instant::from_millis(ms));
    path.srtt = Some(Duration::from_millis(100));
    path
}

/// A controller grown by slow start (no RTT samples, so HyStart++ never leaves it) to `segments`.
fn grown_to(segments: u32) -> Cubic {
    let mut cc = Cubic::new(10 * MSS);
    while cc.window() < segments * MSS {
        cc.on_event(CongestionEvent::Ack { acked: MSS }, &path_at(0));
    }
    assert_eq!(cc.window(), segments * MSS);
    cc
}

/// One round trip of `rtt_ms` from `*now_ms` on, with one ACK of one segment for every segment
/// of cwnd, spread evenly over it.
fn round_trip(cc: &mut Cubic, now_ms: &mut u64, rtt_ms: u64, cwnd_limited: bool) {
    let acks = u64::from(cc.window() / MSS).max(1);
    let start_us = *now_ms * 1000;
    for i in 0..acks {
        let mut path =
            PathInfo::new(MSS, Instant::from_micros(start_us + i * rtt_ms * 1000 / acks));
        path.srtt = Some(Duration::from_millis(rtt_ms));
        path.cwnd_limited = cwnd_limited;
        cc.on_event(CongestionEvent::Ack { acked: MSS }, &path);
    }
    *now_ms += rtt_ms;
}

#[test]
fn cube_root_is_exact_on_cubes_and_floors_between_them() {
    for y in [0u128, 1, 2, 3, 10, 1000, 4_217_163, (1 << 42) - 1, 1 << 42] {
        assert_eq!(u128::from(cube_root(y * y * y)), y, "cube of {y}");
        if y > 1 {
            assert_eq!(u128::from(cube_root(y * y * y - 1)), y - 1, "below the cube of {y}");
            assert_eq!(u128::from(cube_root(y * y * y + 1)), y, "above the cube of {y}");
        }
    }
    assert_eq!(cube_root(u128::MAX), 6_981_463_658_331);
}

proptest! {
    #[test]
    fn cube_root_agrees_with_f64_cbrt(x in any::<u64>()) {
        let root = cube_root(u128::from(x));
        let float = (x as f64).cbrt();
        prop_assert!((root as f64 - float.floor()).abs() <= 1.0, "{x}: {root} vs {float}");
        let r = u128::from(root);
        prop_assert!(r * r * r <= u128::from(x) && (r + 1) * (r + 1) * (r + 1) > u128::from(x));
    }
}

/// Any event with any sizes, at any time: no panic, and cwnd stays at least one segment.
fn event() -> impl Strategy<Value = CongestionEvent> {
    let size = 0..=u32::MAX;
    prop_oneof![
        size.clone().prop_map(|acked| CongestionEvent::Ack { acked }),
        (0..100 * MSS).prop_map(|acked| CongestionEvent::Ack { acked }),
        size.clone().prop_map(|flight| CongestionEvent::FastRetransmit { flight }),
        size.clone().prop_map(|flight| CongestionEvent::SackRecovery { flight }),
        Just(CongestionEvent::RecoveryDupAck),
        size.clone().prop_map(|acked| CongestionEvent::PartialAck { acked }),
        size.clone().prop_map(|flight| CongestionEvent::RecoveryEnd { flight }),
        size.clone().prop_map(|flight| CongestionEvent::Timeout { flight }),
        Just(CongestionEvent::IdleRestart),
        (size.clone(), size).prop_map(|(flight, acked)| CongestionEvent::Undo { flight, acked }),
    ]
}

proptest! {
    #[test]
    fn any_event_sequence_keeps_cwnd_at_least_one_segment(
        events in proptest::collection::vec(
            (event(), 0..u64::MAX / 2, any::<bool>(), proptest::option::of(0..10_000_000u64)),
            0..200,
        ),
        mss in 1..=u32::from(u16::MAX),
    ) {
        let mut cc = Cubic::new(super::super::initial_window(mss));
        let mut now = 0;
        for (event, step, cwnd_limited, rtt) in events {
            now = (now + step % 10_000_000).min(u64::MAX / 2);
            let mut path = PathInfo::new(mss, Instant::from_micros(now));
            path.cwnd_limited = cwnd_limited;
            path.latest_rtt = rtt.map(Duration::from_micros);
            path.srtt = path.latest_rtt;
            cc.on_event(event, &path);
            prop_assert!(cc.window() >= mss.min(super::super::initial_window(mss)));
        }
    }
}

#[test]
fn k_for_w_max_100_segments_is_4_22_seconds_rfc_9438_4_2() {
    // K = cbrt(W_max (1 − β) / C) = cbrt(100 × 0.3 / 0.4) = cbrt(75) = 4.2172 s.
    assert_eq!(k_micros(100 * MSS, 70 * MSS, MSS), 4_217_163);
    assert_eq!(k_micros(100 * MSS, 100 * MSS, MSS), 0, "no deficit, K = 0");
    assert_eq!(k_micros(100 * MSS, 120 * MSS, MSS), 0, "a window above W_max, K = 0");
}

#[test]
fn w_cubic_follows_c_t_minus_k_cubed_plus_w_max_rfc_9438_4_2() {
    let k = k_micros(100 * MSS, 70 * MSS, MSS);
    // At t = 0 the curve starts at β·W_max (within the rounding of K), reaches W_max at K,
    // and grows by C·s³ segments s seconds later.
    assert!(w_cubic(0, k, 100 * MSS, MSS).abs_diff(70 * MSS) <= 1);
    assert_eq!(w_cubic(k, k, 100 * MSS, MSS), 100 * MSS);
    assert_eq!(w_cubic(k + 1_000_000, k, 100 * MSS, MSS), 100 * MSS + 400, "C = 0.4");
    assert_eq!(w_cubic(k + 2_000_000, k, 100 * MSS, MSS), 100 * MSS + 3200);
    assert_eq!(w_cubic(k - 2_000_000, k, 100 * MSS, MSS), 100 * MSS - 3200);
    assert_eq!(w_cubic(u64::MAX, 0, 100 * MSS, MSS), u32::MAX, "saturates, never wraps");
    assert_eq!(w_cubic(u64::MAX, 0, u32::MAX, u32::MAX), u32::MAX);
    assert_eq!(w_cubic(0, u64::MAX, 100 * MSS, u32::MAX), 0, "never below zero");
}

#[test]
fn loss_sets_ssthresh_to_0_7_cwnd_and_w_max_to_cwnd_rfc_9438_4_6() {
    let mut cc = grown_to(100);
    cc.on_event(CongestionEvent::SackRecovery { flight: 100 * MSS }, &path_at(0));
    assert_eq!((cc.window(), cc.ssthresh()), (70 * MSS, 70 * MSS));
    let mut now = 0;
    round_trip(&mut cc, &mut now, 100, true);
    let (w_max, k) = cc.w_max_and_k().unwrap();
    assert_eq!(w_max, 100 * MSS);
    assert_eq!(k, Duration::from_micros(4_217_163));
    // Never below 2 × MSS.
    let mut small = grown_to(10);
    small.on_event(CongestionEvent::Timeout { flight: 2 * MSS }, &path_at(0));
    small.on_event(CongestionEvent::SackRecovery { flight: MSS }, &path_at(0));
    assert_eq!(small.ssthresh(), 2 * MSS);
}

#[test]
fn window_regrows_along_w_cubic_rfc_9438_4_4_4_5() {
    // W_max = 1000 segments: K = cbrt(300 / 0.4) = 9.09 s, and Reno's estimate (α = 9/17 a
    // round trip of 100 ms) stays far below the curve all the while.
    let mut cc = grown_to(1000);
    cc.on_event(CongestionEvent::SackRecovery { flight: 1000 * MSS }, &path_at(0));
    let mut now = 0;
    let k = k_micros(1000 * MSS, 700 * MSS, MSS);
    assert_eq!(k, 9_085_602);
    // Concave (§4.4) up to W_max, then convex (§4.5): each round trip moves cwnd to where
    // W_cubic(t + RTT) was at its start, so at the last ACK of each cwnd is W_cubic(t) within
    // a segment.
    while now < 14_000 {
        round_trip(&mut cc, &mut now, 100, true);
        let last_ack_us = now * 1000 - 100_000 / u64::from(cc.window() / MSS);
        let curve = w_cubic(last_ack_us, k, 1000 * MSS, MSS);
        assert!(
            cc.window().abs_diff(curve) <= MSS,
            "t = {now} ms: cwnd {} vs W_cubic(t) {curve}",
            cc.window()
        );
    }
    assert!(cc.window() > 1040 * MSS, "convex past W_max after K: {}", cc.window());
}

#[test]
fn target_is_capped_at_one_and_a_half_cwnd_rfc_9438_4_2() {
    // Far past K the curve is steep: one round trip grows cwnd by at most half of it.
    let mut cc = grown_to(100);
    cc.on_event(CongestionEvent::SackRecovery { flight: 100 * MSS }, &path_at(0));
    let mut now = 0;
    round_trip(&mut cc, &mut now, 100, true);
    let before = cc.window();
    // 60 s later (cwnd-limited the whole time) one more round trip.
    now += 60_000;
    round_trip(&mut cc, &mut now, 100, true);
    assert!(cc.window() <= before + before / 2 + MSS, "{} vs {before}", cc.window());
    assert!(cc.window() >= before + before / 2 - MSS, "{} vs {before}", cc.window());
}

#[test]
fn reno_friendly_region_follows_w_est_rfc_9438_4_3() {
    // A 1 ms round trip: Reno's α = 9/17 segments a round trip outruns the cubic curve.
    let mut cc = grown_to(100);
    cc.on_event(CongestionEvent::SackRecovery { flight: 100 * MSS }, &path_at(0));
    let mut now = 0;
    round_trip(&mut cc, &mut now, 1, true);
    let start = cc.window();
    for _ in 0..17 {
        round_trip(&mut cc, &mut now, 1, true);
    }
    // 17 round trips: 9 segments of W_est (within the rounding of ACKs over a window that grows).
    let grown = cc.window() - start;
    assert!(grown.abs_diff(9 * MSS) <= MSS / 2, "grew {grown}");
    // Once W_est is back at cwnd_prior (100 segments), α = 1: one segment a round trip.
    while cc.window() < 100 * MSS {
        round_trip(&mut cc, &mut now, 1, true);
    }
    let at = cc.window();
    for _ in 0..10 {
        round_trip(&mut cc, &mut now, 1, true);
    }
    assert!((cc.window() - at).abs_diff(10 * MSS) <= MSS / 2, "{}", cc.window() - at);
}

#[test]
fn fast_convergence_lowers_w_max_below_the_last_one_rfc_9438_4_7() {
    let mut cc = grown_to(100);
    cc.on_event(CongestionEvent::SackRecovery { flight: 100 * MSS }, &path_at(0));
    let mut now = 0;
    round_trip(&mut cc, &mut now, 100, true);
    // Loss again at 80 segments, below W_max = 100: W_max = 80 × (1 + 0.7) / 2 = 68.
    while cc.window() < 80 * MSS {
        round_trip(&mut cc, &mut now, 100, true);
    }
    let cwnd = cc.window();
    cc.on_event(CongestionEvent::SackRecovery { flight: cwnd }, &path_at(now));
    assert_eq!(cc.ssthresh(), cwnd * 7 / 10);
    round_trip(&mut cc, &mut now, 100, true);
    assert_eq!(cc.w_max_and_k().unwrap().0, cwnd * 17 / 20);
}

#[test]
fn fast_retransmit_inflates_and_recovery_end_deflates_rfc_5681_3_2_rfc_6582() {
    let mut cc = grown_to(100);
    cc.on_event(CongestionEvent::FastRetransmit { flight: 100 * MSS }, &path_at(0));
    assert_eq!((cc.window(), cc.ssthresh()), (73 * MSS, 70 * MSS));
    cc.on_event(CongestionEvent::RecoveryDupAck, &path_at(0));
    assert_eq!(cc.window(), 74 * MSS);
    cc.on_event(CongestionEvent::PartialAck { acked: 10 * MSS }, &path_at(0));
    assert_eq!(cc.window(), 65 * MSS);
    cc.on_event(CongestionEvent::RecoveryEnd { flight: 80 * MSS }, &path_at(0));
    assert_eq!(cc.window(), 70 * MSS, "min(ssthresh, FlightSize + SMSS)");
}

/// An RTO during fast recovery (RFC 6582 §4's Impatient fallback) finds the window's
/// congestion answered: the loss window, but ssthresh stays the fast retransmit's 0.7 × 100
/// segments, not 0.7 × the 150-segment window that inflation reached; and an undo still
/// restores what came before the fast retransmit.
#[test]
fn timeout_during_fast_recovery_keeps_the_fast_retransmits_ssthresh_rfc_6582_4() {
    let mut cc = grown_to(100);
    cc.on_event(CongestionEvent::FastRetransmit { flight: 100 * MSS }, &path_at(0));
    for _ in 0..77 {
        cc.on_event(CongestionEvent::RecoveryDupAck, &path_at(0));
    }
    cc.on_event(CongestionEvent::PartialAck { acked: MSS }, &path_at(0));
    assert_eq!((cc.window(), cc.ssthresh()), (150 * MSS, 70 * MSS));
    cc.on_event(CongestionEvent::Timeout { flight: 150 * MSS }, &path_at(0));
    assert_eq!((cc.window(), cc.ssthresh()), (MSS, 70 * MSS));
    cc.on_event(CongestionEvent::Undo { flight: 0, acked: MSS }, &path_at(0));
    assert_eq!(cc.ssthresh(), 100 * MSS, "pipe_prev from before the fast retransmit");
    // Outside recovery a timeout reduces as §4.8 says.
    let mut cc = grown_to(100);
    cc.on_event(CongestionEvent::Timeout { flight: 100 * MSS }, &path_at(0));
    assert_eq!((cc.window(), cc.ssthresh()), (MSS, 70 * MSS));
}

#[test]
fn application_limited_acks_neither_grow_cwnd_nor_count_in_t_rfc_9438_5_8() {
    let mut cc = grown_to(100);
    cc.on_event(CongestionEvent::SackRecovery { flight: 100 * MSS }, &path_at(0));
    let mut twin = cc.clone();
    let (mut now, mut twin_now) = (0, 0);
    for _ in 0..10 {
        round_trip(&mut cc, &mut now, 100, true);
        round_trip(&mut twin, &mut twin_now, 100, true);
    }
    let window = cc.window();
    // Ten seconds during which the application, not cwnd, limits sending.
    for _ in 0..100 {
        round_trip(&mut cc, &mut now, 100, false);
    }
    assert_eq!(cc.window(), window, "no growth while application-limited");
    // Then both go on cwnd-limited: the idle time did not count, the curves agree.
    for _ in 0..20 {
        round_trip(&mut cc, &mut now, 100, true);
        round_trip(&mut twin, &mut twin_now, 100, true);
    }
    assert!(cc.window().abs_diff(twin.window()) <= MSS / 10, "{} {}", cc.window(), twin.window());
}

#[test]
fn timeout_restarts_from_one_segment_then_k_is_0_and_w_max_the_new_cwnd_rfc_9438_4_8() {
    let mut cc = grown_to(100);
    cc.on_event(CongestionEvent::Timeout { flight: 100 * MSS }, &path_at(0));
    assert_eq!((cc.window(), cc.ssthresh()), (MSS, 70 * MSS), "ssthresh with β = 0.7");
    // A second timeout before anything grew keeps ssthresh.
    cc.on_event(CongestionEvent::Timeout { flight: 100 * MSS }, &path_at(0));
    assert_eq!((cc.window(), cc.ssthresh()), (MSS, 70 * MSS));
    // RFC 5681 slow start (one SMSS an ACK; HyStart++ is for the first slow start only).
    cc.on_event(CongestionEvent::Ack { acked: 5 * MSS }, &path_at(0));
    assert_eq!(cc.window(), 2 * MSS);
    while cc.window() < 70 * MSS {
        cc.on_event(CongestionEvent::Ack { acked: MSS }, &path_at(0));
    }
    assert_eq!(cc.window(), 70 * MSS, "slow start stops at ssthresh");
    cc.on_event(CongestionEvent::Ack { acked: MSS }, &path_at(1000));
    assert_eq!(cc.w_max_and_k(), Some((70 * MSS, Duration::ZERO)));
}

#[test]
fn undo_restores_the_epoch_and_slow_starts_back_rfc_9438_4_9() {
    let mut cc = grown_to(100);
    cc.on_event(CongestionEvent::SackRecovery { flight: 100 * MSS }, &path_at(0));
    let mut now = 0;
    for _ in 0..5 {
        round_trip(&mut cc, &mut now, 100, true);
    }
    let (window, w_max_k) = (cc.window(), cc.w_max_and_k());
    // A spurious timeout, found out two segments later.
    cc.on_event(CongestionEvent::Timeout { flight: window }, &path_at(now));
    assert_eq!(cc.window(), MSS);
    cc.on_event(CongestionEvent::Undo { flight: 4 * MSS, acked: 2 * MSS }, &path_at(now));
    assert_eq!(cc.window(), 6 * MSS, "cwnd = FlightSize + min(bytes_acked, IW)");
    assert_eq!(cc.ssthresh(), window, "ssthresh = pipe_prev");
    assert_eq!(cc.w_max_and_k(), w_max_k, "W_max and K as before");
    // Slow start back to the old window, then the old epoch goes on.
    while cc.window() < window {
        cc.on_event(CongestionEvent::Ack { acked: MSS }, &path_at(now));
    }
    round_trip(&mut cc, &mut now, 100, true);
    assert_eq!(cc.w_max_and_k(), w_max_k);
    // Nothing left to undo.
    let before = (cc.window(), cc.ssthresh());
    cc.on_event(CongestionEvent::Undo { flight: 0, acked: 0 }, &path_at(now));
    assert_eq!((cc.window(), cc.ssthresh()), before);
}

#[test]
fn hystart_css_rounds_end_slow_start_with_ssthresh_at_cwnd_rfc_9406_4_2() {
    let mut cc = Cubic::new(10 * MSS);
    let mut una = 0;
    // Rounds of 10 ACKs, each with the RTT given: 100 ms, then 120 ms (CSS from its 8th ACK),
    // then four more rounds of CSS.
    for (round, rtt) in [100, 120, 130, 130, 130, 130].into_iter().enumerate() {
        let end = una + 10 * MSS;
        for i in 0..10 {
            let mut path = path_at(round as u64 * 100);
            path.snd_una = SeqNum::new(una + i * MSS);
            path.snd_nxt = SeqNum::new(end);
            path.latest_rtt = Some(Duration::from_millis(rtt));
            cc.on_event(CongestionEvent::Ack { acked: MSS }, &path);
        }
        una = end;
        assert_eq!(cc.ssthresh(), u32::MAX, "round {round}: still slow start");
    }
    // Slow start grew 10 + 7 segments, CSS a quarter segment an ACK for 3 + 4 × 10 ACKs.
    assert_eq!(cc.window(), 27 * MSS + 43 * MSS / 4);
    // The ACK that starts the fifth round of CSS ends it.
    let mut path = path_at(600);
    path.snd_una = SeqNum::new(una);
    path.snd_nxt = SeqNum::new(una + 10 * MSS);
    cc.on_event(CongestionEvent::Ack { acked: MSS }, &path);
    assert_eq!(cc.ssthresh(), cc.window(), "CSS_ROUNDS done: ssthresh = cwnd");
    assert_eq!(cc.window(), 27 * MSS + 43 * MSS / 4);
}

#[test]
fn idle_restart_caps_cwnd_at_the_initial_window_and_ends_the_epoch_rfc_5681_4_1() {
    let mut cc = Cubic::new(10 * MSS);
    cc.on_event(CongestionEvent::IdleRestart, &path_at(0));
    assert_eq!(cc, Cubic::new(10 * MSS), "nothing to restart: nothing allocated");
    let mut cc = grown_to(40);
    cc.on_event(CongestionEvent::IdleRestart, &path_at(0));
    assert_eq!(cc.window(), 10 * MSS);
}

/// An ACK while cwnd did not limit sending, and an idle restart, before anything grew, leave
/// the controller as it was (no state made): it then answers every later event exactly as
/// one whose state those events did make (`State::apply` run on them).
#[test]
fn events_that_change_nothing_make_no_state() {
    let idle = |cwnd_limited: bool| {
        let mut path = path_at(5);
        path.cwnd_limited = cwnd_limited;
        path
    };
    let quiet = [
        (CongestionEvent::Ack { acked: 64 }, idle(false)),
        (CongestionEvent::IdleRestart, idle(false)),
        (CongestionEvent::Ack { acked: 3 * MSS }, idle(false)),
    ];
    let mut skipped = Cubic::new(10 * MSS);
    let mut applied = Cubic::new(10 * MSS);
    for (event, path) in &quiet {
        skipped.on_event(*event, path);
        applied.apply(*event, path);
    }
    assert!(skipped.live().is_none(), "no state made");
    assert_eq!(applied.live(), Some(&State::new(10 * MSS)), "the events changed nothing");
    // A reused allocation stays spare too.
    let mut reused = Cubic::new(10 * MSS);
    reused.adopt_allocation(grown_to(40));
    for (event, path) in &quiet {
        reused.on_event(*event, path);
    }
    assert!(reused.live().is_none());
    let later = [
        CongestionEvent::Ack { acked: MSS },
        CongestionEvent::SackRecovery { flight: 12 * MSS },
        CongestionEvent::RecoveryEnd { flight: 6 * MSS },
        CongestionEvent::Ack { acked: 2 * MSS },
        CongestionEvent::Timeout { flight: 8 * MSS },
        CongestionEvent::Ack { acked: MSS },
    ];
    for event in later {
        for cc in [&mut skipped, &mut applied, &mut reused] {
            cc.on_event(event, &idle(true));
        }
        assert_eq!(skipped, applied, "{event:?}");
        assert_eq!(reused, applied, "{event:?}");
        assert_eq!((skipped.window(), skipped.ssthresh()), (applied.window(), applied.ssthresh()));
    }
}
