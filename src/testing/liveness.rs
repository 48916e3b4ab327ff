//! The liveness oracle for two simulated connections: it demands progress, not only permission.
//!
//! Safety checks (the model, the window and stream oracles) say what a connection may do; they
//! pass a connection that waits 120 s for no reason, or gives up while its peer is reachable.
//! Once the caller says the path has stopped faulting ([`Liveness::calm`]), this oracle asks,
//! after every simulator step ([`Liveness::check`]):
//!
//! - **a reopened window restarts data within one round trip**: a side that has data to send
//!   and learns that the peer's window went from zero to open must send (SND.NXT moves) or be
//!   acknowledged (SND.UNA moves) within the calm path's round trip plus the peer's
//!   delayed-ACK bound (RFC 9293 §3.8.6.1: the window update restarts transmission);
//! - **everything queued is delivered within a bound derived from the timers**: by
//!   `2 × RTO.max + 1 s` after the calm began, each side has nothing unacknowledged and
//!   nothing queued (a timer armed before the calm fires at most `RTO.max` later, and a
//!   zero-window probe with its backoff at most another `RTO.max`); by that plus `2 × MSL`
//!   both are CLOSED;
//! - **an error ending must be justified by the faults**: a side may end in error only by the
//!   first timeout after the calm began (its earlier retransmissions may all have been lost),
//!   and a timeout ending needs at least R1 unanswered retransmissions behind it (MUST-20).
//!   A side ending because its peer ended first (a RST for a connection the peer gave up on)
//!   is a consequence of that justified ending.
//!
//! And at the end of a run, [`Liveness::check_no_storm`]: **no spurious-retransmission
//! storm**. On a path that reorders (and may duplicate and delay) but loses and corrupts
//! nothing, every retransmission is spurious. RACK (RFC 8985 §6.2) starts with a reordering
//! window of a quarter of the minimum RTT, or none once DupThresh segments are SACKed, so the
//! first reordering deeper than that costs a spurious retransmission, and a tail loss probe
//! (§7) may resend a segment whose ACK is merely late; but each D-SACK of a spurious
//! retransmission (RFC 2883) widens the window by another quarter (up to SRTT), so the cost
//! stops growing with the transfer. A side may resend at most
//! [`STORM_ALLOWANCE`] segments plus [`STORM_PERCENT`] % of the data segments it sent, plus
//! the segments of new data its peer's PAWS dropped (RFC 7323 §5.3 R1 drops an original that
//! a retransmission of earlier data overtook: resending it is needed, not spurious). The
//! oracle applies only where every retransmission is spurious *and* due to reordering: the
//! links lost, corrupted and refused nothing, the round trip (plus the delayed-ACK bound)
//! stays below the minimum RTO (so no timeout can be spurious), and no window closed (a
//! zero-window probe resends an octet).
//!
//! Used by the `pair` fuzz target and the seeded sweep (`tests/lossy_sweep.rs`).

use alloc::format;
use alloc::string::String;
use core::time::Duration;

use crate::config::Config;
use crate::connection::Connection;
use crate::event::{CloseReason, ConnectionError};
use crate::seq::SeqNum;
use crate::state::State;
use crate::testing::sim::Sim;
use crate::time::Instant;

/// Spurious retransmissions a side may make on a reordering path, whatever the transfer's
/// length: two initial windows (RFC 6928: ten segments each). Before the first reordering is
/// seen, DupThresh SACKed segments leave RACK no reordering window (RFC 8985 §6.2 step 4), so
/// the first reordering can cost every segment of a flight still in slow start; the D-SACKs
/// of those widen the window within a round trip or two.
pub const STORM_ALLOWANCE: u64 = 20;

/// Spurious retransmissions a side may make on a reordering path, per 100 data segments sent,
/// once the window has adapted: reordering deeper than the window's SRTT cap, a tail loss
/// probe whose ACK was merely late. The 3 000 reordering seeds of `tests/lossy_sweep.rs`
/// resend 2.5 % of all data segments, and in the 2 460 the oracle judges no side resends
/// more than 13 segments beyond this share; before the receiver reported duplicates below
/// RCV.NXT with D-SACKs (so RACK never widened its window) they resent 8.5 %, up to 123 of
/// 743 on one side.
pub const STORM_PERCENT: u64 = 5;

/// What one side's configuration allows, as far as the oracle needs it.
#[derive(Clone, Copy, Debug)]
struct Timers {
    rto_min: Duration,
    rto_max: Duration,
    msl: Duration,
    r1: u32,
    delayed_ack: Duration,
}

impl Timers {
    fn of(config: &Config) -> Self {
        Self {
            rto_min: config.rto_min,
            rto_max: config.rto_max,
            msl: config.msl,
            r1: config.r1_retransmissions,
            // MUST-40: an ACK is never delayed by half a second or more.
            delayed_ack: config
                .delayed_ack
                .map_or(Duration::ZERO, |d| d.min(Duration::from_millis(500))),
        }
    }
}

/// A side that learned of a reopened window while it had data to send.
#[derive(Clone, Copy, Debug)]
struct Reopened {
    at: Instant,
    snd_una: SeqNum,
    snd_nxt: SeqNum,
}

/// What the oracle remembers of one side between steps.
#[derive(Clone, Copy, Debug, Default)]
struct Watch {
    snd_wnd: u32,
    /// SND.UNA and SND.NXT after the last step: a side that sent (or was acknowledged) in the
    /// very step that told it of the reopened window has already made progress.
    snd_una: Option<SeqNum>,
    snd_nxt: Option<SeqNum>,
    reopened: Option<Reopened>,
}

/// The oracle: see the module docs.
#[derive(Debug)]
pub struct Liveness {
    timers: [Timers; 2],
    calm_since: Option<Instant>,
    /// When the bounds start: the calm, or later, when a paused reader resumed.
    clock_from: Option<Instant>,
    /// An application is holding the transfer back: no bound applies.
    paused: bool,
    /// When a paused application last resumed.
    resumed_at: Option<Instant>,
    round_trip: Duration,
    watch: [Watch; 2],
    first_error: Option<(Instant, &'static str)>,
    /// A synchronized side saw the peer's window at zero.
    window_closed: bool,
}

impl Liveness {
    /// An oracle for sides configured as `a` and `b`.
    pub fn new(a: &Config, b: &Config) -> Self {
        Self {
            timers: [Timers::of(a), Timers::of(b)],
            calm_since: None,
            clock_from: None,
            paused: false,
            resumed_at: None,
            round_trip: Duration::ZERO,
            watch: [Watch::default(); 2],
            first_error: None,
            window_closed: false,
        }
    }

    /// The path stopped faulting at `now`; its round trip from now on is `round_trip`
    /// (segments already in flight keep the delay they were sent with: include it).
    pub fn calm(&mut self, now: Instant, round_trip: Duration) {
        self.calm_since = Some(now);
        self.clock_from = Some(self.resumed_at.map_or(now, |resumed| resumed.max(now)));
        self.round_trip = round_trip;
    }

    /// An application holds the transfer back (a reader that stopped reading): no stack
    /// delivers to a reader that does not read, so the delivery and close bounds are not
    /// checked until [`Liveness::application_resumed`].
    pub fn application_paused(&mut self) {
        self.paused = true;
    }

    /// The paused application runs again at `now`: the delivery and close bounds count from
    /// here (or from the calm, if that is later). The justification of error endings still
    /// counts from the calm.
    pub fn application_resumed(&mut self, now: Instant) {
        self.paused = false;
        self.resumed_at = Some(now);
        self.clock_from = self.clock_from.map(|from| from.max(now));
    }

    /// The bound by which everything queued is delivered, after the calm began.
    pub fn delivery_bound(&self) -> Duration {
        let [a, b] = self.timers;
        a.rto_max.max(b.rto_max).saturating_mul(2).saturating_add(Duration::from_secs(1))
    }

    /// The bound by which both sides are CLOSED, after the calm began.
    pub fn close_bound(&self) -> Duration {
        let [a, b] = self.timers;
        let msl = a.msl.max(b.msl);
        self.delivery_bound().saturating_add(msl.saturating_mul(2))
    }

    /// Checks the rules after a simulator step; the first broken one is returned as text.
    pub fn check(&mut self, sim: &Sim) -> Result<(), String> {
        let now = sim.now;
        for (index, (label, conn)) in [("A", &sim.a), ("B", &sim.b)].into_iter().enumerate() {
            let status = conn.status();
            // A window of zero before the peer's SYN is only the one not yet learnt.
            self.window_closed |= status.snd_wnd == 0
                && status.state.is_synchronized()
                && status.snd_una.after(status.iss);
            self.check_ending(index, label, conn, now)?;
            self.check_reopening(index, label, conn, now)?;
        }
        let Some(from) = self.clock_from.filter(|_| !self.paused) else { return Ok(()) };
        let since = now.saturating_duration_since(from);
        for (label, conn) in [("A", &sim.a), ("B", &sim.b)] {
            // A passive side sent back to LISTEN has no connection left either.
            let ended = matches!(conn.state(), State::Closed | State::Listen);
            let status = conn.status();
            let pending = status.send_queued > 0 || status.snd_una != status.snd_nxt;
            if since > self.delivery_bound() && !ended && pending {
                return Err(format!(
                    "{label} still has data or a FIN unacknowledged {since:?} after the faults \
                     stopped and the applications ran (bound {:?}): {status:?}",
                    self.delivery_bound()
                ));
            }
            if since > self.close_bound() && !ended {
                return Err(format!(
                    "{label} is still {} {since:?} after the faults stopped and the \
                     applications ran (bound {:?})",
                    status.state,
                    self.close_bound()
                ));
            }
        }
        Ok(())
    }

    /// Whether the spurious-retransmission oracle applies to a run whose path's longest
    /// round trip is `round_trip` (see the module docs): nothing lost, corrupted or refused,
    /// the round trip and the delayed-ACK bound below the minimum RTO, no window closed.
    pub fn storm_oracle_applies(&self, sim: &Sim, round_trip: Duration) -> bool {
        let (ab, ba) = (sim.a_to_b.stats(), sim.b_to_a.stats());
        let lossless = [ab, ba]
            .iter()
            .all(|stats| stats.lost == 0 && stats.corrupted == 0 && stats.too_big == 0)
            && sim.checksum_drops == 0;
        let [a, b] = self.timers;
        let rto_min = a.rto_min.min(b.rto_min);
        let delayed_ack = a.delayed_ack.max(b.delayed_ack);
        let no_spurious_timeout = round_trip.saturating_add(delayed_ack) < rto_min;
        lossless && no_spurious_timeout && !self.window_closed
    }

    /// The spurious-retransmission oracle (see the module docs), after a run whose path's
    /// longest round trip is `round_trip`: `Ok` when it does not apply.
    pub fn check_no_storm(&self, sim: &Sim, round_trip: Duration) -> Result<(), String> {
        if !self.storm_oracle_applies(sim, round_trip) {
            return Ok(());
        }
        let (ab, ba) = (sim.a_to_b.stats(), sim.b_to_a.stats());
        let sides = [("A", sim.data_sent[0], &sim.b), ("B", sim.data_sent[1], &sim.a)];
        for (label, sent, peer) in sides {
            // New data the peer's PAWS dropped (RFC 7323 §5.3 R1: an original overtaken by a
            // retransmission) had to go again: those resends are not spurious.
            let dropped = peer.counters().paws_rejected_new_data;
            let budget = STORM_ALLOWANCE + sent.segments * STORM_PERCENT / 100 + dropped;
            if sent.retransmitted > budget {
                return Err(format!(
                    "{label} resent {} of {} data segments over a path that lost nothing \
                     (budget {budget}: {STORM_ALLOWANCE} + {STORM_PERCENT} % + {dropped} \
                     dropped by the peer's PAWS): a spurious-retransmission storm (A→B {ab:?}, \
                     B→A {ba:?})",
                    sent.retransmitted, sent.segments
                ));
            }
        }
        Ok(())
    }

    /// Whether the first error ending (if any) came while the faults could justify it.
    fn check_ending(
        &mut self,
        index: usize,
        label: &'static str,
        conn: &Connection,
        now: Instant,
    ) -> Result<(), String> {
        let Some(CloseReason::Error(error)) = conn.close_reason() else { return Ok(()) };
        let Some(timers) = self.timers.get(index).copied() else { return Ok(()) };
        if error == ConnectionError::TimedOut {
            let retransmissions = conn.status().consecutive_retransmissions;
            if retransmissions < timers.r1 {
                return Err(format!(
                    "{label} timed out after {retransmissions} retransmissions, fewer than R1 = \
                     {} (MUST-20)",
                    timers.r1
                ));
            }
        }
        if self.first_error.is_some() {
            return Ok(());
        }
        self.first_error = Some((now, label));
        if let Some(calm) = self.calm_since {
            let latest = calm + timers.rto_max + self.round_trip;
            if now > latest {
                return Err(format!(
                    "{label} ended with {error:?} at {now}, though the faults stopped at {calm}: \
                     every retransmission after {latest} would have been answered"
                ));
            }
        }
        Ok(())
    }

    /// A reopened window restarts data within one round trip (once the path is calm).
    fn check_reopening(
        &mut self,
        index: usize,
        label: &str,
        conn: &Connection,
        now: Instant,
    ) -> Result<(), String> {
        let peer_delayed_ack =
            self.timers.get(1 - index).map_or(Duration::ZERO, |timers| timers.delayed_ack);
        let bound = self.round_trip.saturating_add(peer_delayed_ack);
        let calm = self.calm_since.is_some();
        let Some(watch) = self.watch.get_mut(index) else { return Ok(()) };
        let status = conn.status();
        let has_data = status.send_queued > 0 && status.state.is_synchronized();
        let moved_this_step =
            watch.snd_una != Some(status.snd_una) || watch.snd_nxt != Some(status.snd_nxt);
        if calm && watch.snd_wnd == 0 && status.snd_wnd > 0 && has_data && !moved_this_step {
            watch.reopened =
                Some(Reopened { at: now, snd_una: status.snd_una, snd_nxt: status.snd_nxt });
        }
        watch.snd_wnd = status.snd_wnd;
        watch.snd_una = Some(status.snd_una);
        watch.snd_nxt = Some(status.snd_nxt);
        if let Some(reopened) = watch.reopened {
            let progress = status.snd_una != reopened.snd_una || status.snd_nxt != reopened.snd_nxt;
            if progress || !has_data {
                watch.reopened = None;
            } else if now.saturating_duration_since(reopened.at) > bound {
                return Err(format!(
                    "{label} learned at {} that the peer's window reopened, had data to send, \
                     and sent nothing by {now} (one round trip is {bound:?}): {status:?}",
                    reopened.at
                ));
            }
        }
        Ok(())
    }
}
