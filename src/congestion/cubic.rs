//! CUBIC (RFC 9438): the window grows as a cubic function of the time since the last
//! congestion event, W_cubic(t) = C·(t − K)³ + W_max, flat around the window where loss last
//! struck and fast away from it; never slower than Reno would be (the Reno-friendly estimate
//! W_est, §4.3); β = 0.7 on loss (§4.6), fast convergence (§4.7), RFC 5681 on timeouts with
//! K = 0 afterwards (§4.8), undo of spurious reductions (§4.9), no growth while the application
//! rather than cwnd limits sending (§5.8). The first slow start is HyStart++ (RFC 9406).
//!
//! Integer arithmetic only (the core is no_std, and `f64::cbrt` needs std): windows in octets,
//! times in microseconds, K through an exact integer cube root. The state is boxed at the first
//! event, so a connection that never sent data carries only the initial window.

use alloc::boxed::Box;
use core::time::Duration;

use super::hystart::HyStart;
use super::{
    CongestionControl, CongestionEvent, PathInfo, deflate_on_partial_ack, window_at_recovery_end,
};
use crate::time::Instant;

/// C = 0.4 (§5.1), as a fraction.
const C_NUM: u128 = 2;
const C_DEN: u128 = 5;
/// β_cubic = 0.7 (§4.6), as a fraction.
const BETA_NUM: u32 = 7;
const BETA_DEN: u32 = 10;
/// α_cubic = 3(1 − β)/(1 + β) = 9/17 (§4.3).
const ALPHA_NUM: u64 = 9;
const ALPHA_DEN: u64 = 17;
/// Microseconds per second, cubed: C·t³ with t in µs is in segments after dividing by this.
const US3: u128 = 1_000_000_000_000_000_000;
/// |t − K| is capped here (about 18 minutes) so C·(t − K)³·MSS stays within `i128` for any
/// `u32` MSS; the window is far past any bound by then.
const MAX_DELTA_US: i128 = 1 << 30;

/// The floor of the cube root of `x` (digit by digit, three bits at a time: exact, no floats).
pub(crate) fn cube_root(mut x: u128) -> u64 {
    let mut y: u128 = 0;
    let mut shift: i32 = 126;
    while shift >= 0 {
        y <<= 1;
        // (y + 1)³ − y³ = 3y(y + 1) + 1, at this digit's weight.
        let b = 3 * y * (y + 1) + 1;
        if (x >> shift) >= b {
            x -= b << shift;
            y += 1;
        }
        shift -= 3;
    }
    // y < 2^43: the cube root of a u128.
    u64::try_from(y).unwrap_or(u64::MAX)
}

/// K in microseconds (§4.2, Figure 2): the time W_cubic takes to climb from `cwnd_epoch` back to
/// `w_max`, cbrt((W_max − cwnd_epoch) / C), windows in segments of `mss` octets.
pub(crate) fn k_micros(w_max: u32, cwnd_epoch: u32, mss: u32) -> u64 {
    let deficit = u128::from(w_max.saturating_sub(cwnd_epoch));
    // K³ in µs³ = deficit / mss / C × 10^18.
    cube_root(deficit * C_DEN * US3 / (C_NUM * u128::from(mss.max(1))))
}

/// W_cubic(t) in octets (§4.2, Figure 1), `t` and `k` in microseconds.
pub(crate) fn w_cubic(t_us: u64, k_us: u64, w_max: u32, mss: u32) -> u32 {
    let delta = (i128::from(t_us) - i128::from(k_us)).clamp(-MAX_DELTA_US, MAX_DELTA_US);
    let offset = C_NUM as i128 * delta * delta * delta * i128::from(mss) / (C_DEN * US3) as i128;
    let w = i128::from(w_max) + offset;
    u32::try_from(w.max(0)).unwrap_or(u32::MAX)
}

/// What a reduction changed, kept so an [`CongestionEvent::Undo`] can put it back (§4.9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Prior {
    /// RFC 4015 §3 `pipe_prev`: what ssthresh goes back to.
    pipe_prev: u32,
    w_max: u32,
    cwnd_prior: u32,
    k_us: u64,
    t_epoch: Option<Instant>,
    cwnd_epoch: u32,
    w_est: u32,
    after_timeout: bool,
}

/// CUBIC's state once it has seen an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct State {
    cwnd: u32,
    ssthresh: u32,
    /// The initial window (RFC 6928), the restart window after idle (RFC 5681 §4.1) and the
    /// cap of an undo's burst (RFC 4015 §3).
    initial: u32,
    /// W_max: the window where the last congestion event struck, after fast convergence.
    w_max: u32,
    /// cwnd_prior: cwnd just before the last reduction (§4.6); W_est switches to α = 1 once it
    /// is back there (§4.3).
    cwnd_prior: u32,
    /// K in microseconds.
    k_us: u64,
    /// t_epoch: when the current congestion avoidance stage began; `None` until it does.
    t_epoch: Option<Instant>,
    /// cwnd_epoch: cwnd when it began.
    cwnd_epoch: u32,
    /// W_est in octets, and what its growth left over (numerator over α_den × cwnd).
    w_est: u32,
    w_est_rest: u64,
    /// What the per-ACK growth (target − cwnd)·acked/cwnd left over (numerator over cwnd).
    cwnd_rest: u64,
    /// Sending became application-limited here (§5.8): the time until cwnd limits again does
    /// not count in t.
    app_limited_since: Option<Instant>,
    /// The last reduction was a timeout: the next stage starts with K = 0 and W_max = cwnd
    /// (§4.8).
    after_timeout: bool,
    /// Between `FastRetransmit` and the end of that recovery: a timeout then finds this
    /// window's congestion already answered (see `CongestionEvent::Timeout`).
    in_fast_recovery: bool,
    hystart: HyStart,
    prior: Option<Prior>,
}

impl State {
    const fn new(initial: u32) -> Self {
        Self {
            cwnd: initial,
            ssthresh: u32::MAX,
            initial,
            w_max: 0,
            cwnd_prior: 0,
            k_us: 0,
            t_epoch: None,
            cwnd_epoch: 0,
            w_est: 0,
            w_est_rest: 0,
            cwnd_rest: 0,
            app_limited_since: None,
            after_timeout: false,
            in_fast_recovery: false,
            hystart: HyStart::new(),
            prior: None,
        }
    }

    /// An ACK of `acked` new octets outside recovery.
    fn on_ack(&mut self, acked: u32, path: &PathInfo) {
        if !path.cwnd_limited {
            // §5.8 (and RFC 7661): cwnd did not limit sending, so the ACKs say nothing about
            // whether a bigger one would fit; no growth, and the time does not count in t.
            if self.t_epoch.is_some() {
                self.app_limited_since.get_or_insert(path.now);
            }
            return;
        }
        if let (Some(since), Some(epoch)) = (self.app_limited_since.take(), self.t_epoch) {
            self.t_epoch = Some(epoch.saturating_add(path.now.saturating_duration_since(since)));
        }
        if self.cwnd < self.ssthresh {
            self.slow_start(acked, path);
        } else {
            self.avoid_congestion(acked, path);
        }
    }

    /// Slow start: HyStart++ the first time, RFC 5681 after a loss.
    fn slow_start(&mut self, acked: u32, path: &PathInfo) {
        if self.hystart.is_on() {
            let growth = self.hystart.on_ack(path, acked);
            self.cwnd = self.cwnd.saturating_add(growth.increase);
            if growth.enter_avoidance {
                // RFC 9406 §4.2: "setting the ssthresh to the current cwnd".
                self.ssthresh = self.cwnd;
            }
        } else {
            // RFC 5681 eq. 2: at most one SMSS per ACK, and never past ssthresh in one step.
            self.cwnd = self.cwnd.saturating_add(acked.min(path.mss)).min(self.ssthresh);
        }
    }

    /// Congestion avoidance (§4.2–§4.5).
    fn avoid_congestion(&mut self, acked: u32, path: &PathInfo) {
        let mss = path.mss.max(1);
        let epoch = match self.t_epoch {
            Some(epoch) => epoch,
            None => self.start_epoch(path.now, mss),
        };
        let t = micros(path.now.saturating_duration_since(epoch));
        // §4.3: W_est += α · segments_acked / cwnd, with α = 1 once W_est is back at cwnd_prior.
        let (alpha_num, alpha_den) =
            if self.w_est >= self.cwnd_prior { (1, 1) } else { (ALPHA_NUM, ALPHA_DEN) };
        let cwnd = u64::from(self.cwnd.max(1));
        let step = alpha_num * u64::from(mss) * u64::from(acked) * (ALPHA_DEN / alpha_den);
        self.w_est_rest = self.w_est_rest.saturating_add(step);
        let unit = ALPHA_DEN * cwnd;
        let grown = self.w_est_rest / unit;
        self.w_est_rest %= unit;
        self.w_est = self.w_est.saturating_add(u32::try_from(grown).unwrap_or(u32::MAX));
        if w_cubic(t, self.k_us, self.w_max, mss) < self.w_est {
            // §4.3: the Reno-friendly region: cwnd follows W_est.
            self.cwnd = self.cwnd.max(self.w_est);
            self.cwnd_rest = 0;
            return;
        }
        // §4.4, §4.5: towards W_cubic one RTT ahead, by (target − cwnd) / cwnd per segment
        // acknowledged, target within [cwnd, 1.5 cwnd].
        let rtt = path.srtt.or(path.latest_rtt).unwrap_or(Duration::ZERO);
        let ahead = w_cubic(t.saturating_add(micros(rtt)), self.k_us, self.w_max, mss);
        let target = ahead.clamp(self.cwnd, self.cwnd.saturating_add(self.cwnd / 2));
        let step = u64::from(target - self.cwnd) * u64::from(acked);
        self.cwnd_rest = self.cwnd_rest.saturating_add(step);
        let grown = self.cwnd_rest / cwnd;
        self.cwnd_rest %= cwnd;
        self.cwnd = self.cwnd.saturating_add(u32::try_from(grown).unwrap_or(u32::MAX));
    }

    /// The first ACK of a congestion avoidance stage (§4.2): t_epoch, cwnd_epoch, K and W_est.
    fn start_epoch(&mut self, now: Instant, mss: u32) -> Instant {
        self.t_epoch = Some(now);
        self.app_limited_since = None;
        self.cwnd_epoch = self.cwnd;
        self.w_est = self.cwnd;
        self.w_est_rest = 0;
        self.cwnd_rest = 0;
        if self.after_timeout || self.w_max <= self.cwnd {
            // §4.8 after a timeout (and the first stage, with no congestion event yet, or a
            // window that regrew past W_max): K = 0 and W_max = cwnd, convex growth from here.
            self.w_max = self.cwnd;
            self.k_us = 0;
        } else {
            self.k_us = k_micros(self.w_max, self.cwnd_epoch, mss);
        }
        self.after_timeout = false;
        now
    }

    /// Remembers what a reduction is about to change (§4.9, RFC 4015 §3 `pipe_prev`).
    fn remember_before_reduction(&mut self, flight: u32) {
        self.prior = Some(Prior {
            pipe_prev: flight.max(self.ssthresh.min(self.cwnd)),
            w_max: self.w_max,
            cwnd_prior: self.cwnd_prior,
            k_us: self.k_us,
            t_epoch: self.t_epoch,
            cwnd_epoch: self.cwnd_epoch,
            w_est: self.w_est,
            after_timeout: self.after_timeout,
        });
    }

    /// A congestion event (§4.6, §4.7): W_max with fast convergence, ssthresh = β·cwnd, a new
    /// epoch when congestion avoidance resumes; slow start is over.
    fn reduce(&mut self, mss: u32) {
        self.cwnd_prior = self.cwnd;
        self.w_max = if self.cwnd < self.w_max {
            // §4.7 fast convergence: W_max = cwnd · (1 + β) / 2, yielding to newer flows.
            mul_div(self.cwnd, BETA_DEN + BETA_NUM, 2 * BETA_DEN)
        } else {
            self.cwnd
        };
        self.ssthresh = mul_div(self.cwnd, BETA_NUM, BETA_DEN).max(2 * mss);
        self.t_epoch = None;
        self.app_limited_since = None;
        self.after_timeout = false;
        self.hystart.turn_off();
    }

    fn on_event(&mut self, event: CongestionEvent, path: &PathInfo) {
        let mss = path.mss.max(1);
        let in_fast_recovery = core::mem::take(&mut self.in_fast_recovery);
        match event {
            CongestionEvent::Ack { acked } => self.on_ack(acked, path),
            CongestionEvent::FastRetransmit { flight } => {
                self.remember_before_reduction(flight);
                self.reduce(mss);
                // RFC 5681 §3.2 step 3 (without SACK): inflate by the three segments that left.
                self.cwnd = self.ssthresh.saturating_add(3 * mss);
                self.in_fast_recovery = true;
            }
            CongestionEvent::SackRecovery { flight } => {
                self.remember_before_reduction(flight);
                self.reduce(mss);
                self.cwnd = self.ssthresh;
            }
            CongestionEvent::RecoveryDupAck => {
                self.cwnd = self.cwnd.saturating_add(mss);
                self.in_fast_recovery = in_fast_recovery;
            }
            CongestionEvent::PartialAck { acked } => {
                self.cwnd = deflate_on_partial_ack(self.cwnd, acked, mss);
                self.in_fast_recovery = in_fast_recovery;
            }
            CongestionEvent::RecoveryEnd { flight } => {
                self.cwnd = window_at_recovery_end(self.ssthresh, flight, mss);
            }
            CongestionEvent::Timeout { .. } if in_fast_recovery => {
                // The fast retransmit already reduced for this window (its inflated cwnd is no
                // measure of the path): the loss window, ssthresh and W_max kept, and the
                // state an undo restores stays the one from before that reduction.
                self.t_epoch = None;
                self.cwnd = mss;
                self.after_timeout = true;
            }
            CongestionEvent::Timeout { flight } => {
                self.remember_before_reduction(flight);
                if self.cwnd > mss {
                    // §4.8: ssthresh with β as in §4.6. A timeout again before cwnd grew past
                    // the loss window keeps the ssthresh the first one set.
                    self.reduce(mss);
                } else {
                    self.t_epoch = None;
                    self.hystart.turn_off();
                }
                self.cwnd = mss;
                self.after_timeout = true;
            }
            CongestionEvent::IdleRestart => {
                // RFC 5681 §4.1, and §5.8: the idle time is no part of the epoch.
                self.cwnd = self.cwnd.min(self.initial);
                self.t_epoch = None;
                self.app_limited_since = None;
            }
            CongestionEvent::Undo { flight, acked } => {
                if let Some(prior) = self.prior.take() {
                    // §4.9 and RFC 4015 §3: the state before the reduction comes back; cwnd
                    // regrows to it by slow start, never in one burst.
                    self.ssthresh = self.ssthresh.max(prior.pipe_prev);
                    let restart = flight.saturating_add(acked.min(self.initial));
                    self.cwnd = self.cwnd.max(restart).max(mss);
                    self.w_max = prior.w_max;
                    self.cwnd_prior = prior.cwnd_prior;
                    self.k_us = prior.k_us;
                    self.t_epoch = prior.t_epoch;
                    self.cwnd_epoch = prior.cwnd_epoch;
                    self.w_est = prior.w_est;
                    self.after_timeout = prior.after_timeout;
                    self.app_limited_since = None;
                }
            }
        }
    }
}

/// `value · num / den` without overflow.
fn mul_div(value: u32, num: u32, den: u32) -> u32 {
    let product = u64::from(value) * u64::from(num) / u64::from(den.max(1));
    u32::try_from(product).unwrap_or(u32::MAX)
}

/// `d` in whole microseconds, saturating.
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// CUBIC (RFC 9438) with HyStart++ (RFC 9406) for its first slow start.
///
/// Sixteen bytes until the first congestion event or ACK of data: the initial window inline,
/// the rest boxed then (once per connection, never per segment).
#[derive(Clone, Debug)]
pub struct Cubic {
    /// cwnd: the initial window until the first event makes the state, then a copy of the
    /// state's, renewed after every event. Every poll reads cwnd: one load, not a look into
    /// the box that first asks whether it holds anything.
    cwnd: u32,
    /// `state` is an allocation kept for reuse (an endpoint's next connection takes over an
    /// ended one's), holding nothing yet: the controller behaves as if it were `None`.
    spare_box: bool,
    state: Option<Box<State>>,
}

impl PartialEq for Cubic {
    fn eq(&self, other: &Self) -> bool {
        self.cwnd == other.cwnd && self.live() == other.live()
    }
}

impl Eq for Cubic {}

impl Cubic {
    /// A controller starting from `initial_window` octets in slow start (ssthresh unbounded).
    pub const fn new(initial_window: u32) -> Self {
        Self { cwnd: initial_window, spare_box: false, state: None }
    }

    /// The state, once the first event made it.
    fn live(&self) -> Option<&State> {
        if self.spare_box { None } else { self.state.as_deref() }
    }

    /// Starts over from `initial_window`, as [`Cubic::new`] would, keeping the allocation.
    pub(crate) fn restart(&mut self, initial_window: u32) {
        self.cwnd = initial_window;
        self.spare_box = self.state.is_some();
    }

    /// Takes over `other`'s allocation for later use, if this controller has none.
    #[cfg(test)]
    pub(crate) fn adopt_allocation(&mut self, other: Self) {
        if self.state.is_none() && other.state.is_some() {
            self.state = other.state;
            self.spare_box = true;
        }
    }

    /// W_max in octets (the window at the last congestion event, after fast convergence), and
    /// K: for inspection and tests. `None` until an event changed the state.
    pub fn w_max_and_k(&self) -> Option<(u32, Duration)> {
        self.live().map(|state| (state.w_max, Duration::from_micros(state.k_us)))
    }
}

impl CongestionControl for Cubic {
    #[inline]
    fn window(&self) -> u32 {
        self.cwnd
    }

    fn ssthresh(&self) -> u32 {
        self.live().map_or(u32::MAX, |state| state.ssthresh)
    }

    fn on_event(&mut self, event: CongestionEvent, path: &PathInfo) {
        // Nothing grew yet, and this event would change nothing: an idle restart finds cwnd
        // at the initial window already, and an ACK while cwnd did not limit sending grows
        // nothing and starts no epoch (§5.8; `State::on_ack`). The state is then not made: a
        // short exchange, never cwnd-limited, neither allocates it nor resets a reused one.
        let no_op = match event {
            CongestionEvent::IdleRestart => true,
            CongestionEvent::Ack { .. } => !path.cwnd_limited,
            _ => false,
        };
        if no_op && self.live().is_none() {
            return;
        }
        self.apply(event, path);
    }
}

impl Cubic {
    /// `on_event` past its early answer: the state made (or reset) if not live yet, and the
    /// event applied to it. Out of line, so the early answer needs no frame for it.
    #[inline(never)]
    fn apply(&mut self, event: CongestionEvent, path: &PathInfo) {
        // Not live yet: cwnd is still the initial window.
        let initial = self.cwnd;
        if core::mem::replace(&mut self.spare_box, false)
            && let Some(state) = self.state.as_deref_mut()
        {
            *state = State::new(initial);
        }
        let state = self.state.get_or_insert_with(|| Box::new(State::new(initial)));
        state.on_event(event, path);
        self.cwnd = state.cwnd;
    }
}

#[cfg(test)]
mod tests;
