//! Reusing an ended connection's TCB in place: what [`Connection::new`] followed by
//! `Connection::adopt_buffers` makes, without building a new TCB on the stack and moving it
//! into the endpoint's box (two 400-byte copies and a drop per connection), and the OPEN calls
//! for a TCB that fresh, which need not reset it a second time.

use alloc::sync::Arc;
use core::net::SocketAddr;

use super::autotune::recv_ring_capacity;
use super::input::unspecified_like;
use super::send_queue::SendQueue;
use super::timestamps::TsState;
use super::{CallError, Connection, Timer, default_send_mss};
use crate::buffer::Ring;
use crate::config::Config;
use crate::rtt::RttEstimator;
use crate::seq::{Mss, SeqNum, WindowScale};
use crate::state::{State, Stimulus};
use crate::time::Instant;
use crate::wire::checksum::PseudoAddrs;

/// A connection template: the config every connection of an endpoint shares, and what a new
/// TCB derives from it that takes work (the receive window shift, the receive ring's size, the
/// initial RTT estimator), worked out once per template rather than once per connection.
#[derive(Clone, Debug)]
pub(crate) struct Template {
    config: Arc<Config>,
    fresh: FreshParts,
}

impl Template {
    pub(crate) fn new(config: Arc<Config>) -> Self {
        let fresh = FreshParts::of(&config);
        Self { config, fresh }
    }

    /// The shared config.
    pub(crate) const fn config(&self) -> &Arc<Config> {
        &self.config
    }
}

/// The fields of a new TCB that are computed from its config (shared by [`Connection::new`]
/// and [`Connection::renew`], so the two cannot disagree).
#[derive(Clone, Copy, Debug)]
pub(super) struct FreshParts {
    pub(super) rtt: RttEstimator,
    pub(super) rcv_wscale: WindowScale,
    pub(super) recv_capacity: usize,
    /// `Connection::snd_mss` of a fresh TCB (the default peer MSS of MUST-15, no
    /// timestamps option yet) with an IPv4 local address, and with an IPv6 one.
    snd_mss_v4: u16,
    snd_mss_v6: u16,
}

impl FreshParts {
    pub(super) fn of(config: &Config) -> Self {
        // RFC 7323 §2.2: the shift is fixed by the SYNs, so it is chosen for the size the
        // buffer may grow to, not the size it starts at.
        let rcv_wscale = config.recv_window_scale();
        Self {
            rtt: RttEstimator::new(config.rto_initial, config.rto_min, config.rto_max),
            rcv_wscale,
            recv_capacity: recv_ring_capacity(config.recv_buffer, rcv_wscale),
            snd_mss_v4: fresh_snd_mss(config, true),
            snd_mss_v6: fresh_snd_mss(config, false),
        }
    }

    /// `Connection::snd_mss` of a fresh TCB bound to `local`.
    pub(super) const fn snd_mss(&self, local: SocketAddr) -> u16 {
        if local.is_ipv4() { self.snd_mss_v4 } else { self.snd_mss_v6 }
    }
}

/// Eff.snd.MSS (MUST-16, `Connection::effective_mss_at`) of a fresh TCB under `config`: the
/// peer's MSS is MUST-15's default for the family and no option is on every segment yet.
fn fresh_snd_mss(config: &Config, ipv4: bool) -> u16 {
    let (ip_header, peer_mss) =
        if ipv4 { (20, Mss::DEFAULT_IPV4) } else { (40, Mss::DEFAULT_IPV6) };
    let mms_s = config.mtu.saturating_sub(ip_header);
    let bound = peer_mss.get().saturating_add(20).min(mms_s);
    bound.saturating_sub(20).max(Mss::MIN_USABLE.get())
}

impl Connection {
    /// Makes this ended connection a new CLOSED one bound to `local` under `template`, managed
    /// by an endpoint (its buffers grow only by grant): exactly what
    /// `Connection::new(config, local)`, then `adopt_buffers` of the old one, then
    /// `manage_buffer_growth` give, field for field (a test compares the two), keeping the
    /// old buffer storage, CUBIC's allocation and the event queue's allocation. Every field is
    /// named below, so a field added to the TCB does not compile until it is renewed too.
    pub(crate) fn renew(&mut self, template: &Template, local: SocketAddr) {
        let (config, fresh) = (&template.config, template.fresh);
        let Self {
            config: own_config,
            state,
            local_ip,
            local_port,
            remote_ip,
            remote_port,
            remote_known,
            pseudo_addrs,
            passive,
            read_closed,
            close_reason,
            iss,
            snd_una,
            snd_nxt,
            snd_wnd,
            max_snd_wnd,
            snd_wl1,
            snd_wl2,
            send_buf_seq,
            fin_queued,
            send_buf,
            write_blocked,
            irs,
            have_irs,
            rcv_nxt,
            rcv_adv_edge,
            recv_buf,
            assembler,
            unacked_octets,
            peer_mss,
            snd_mss,
            wscale_ok,
            syn_acked,
            snd_wscale,
            rcv_wscale,
            ts,
            sack_wanted,
            sack_ok,
            scoreboard,
            timers,
            deadline_moved_earlier,
            transmit_checked,
            deadline_listed,
            rtt,
            rtt_probe,
            progress_at,
            consecutive_retransmissions,
            handshake_retransmitted,
            retransmit_pending,
            probe_pending,
            probe_answered,
            persist_backoff,
            cc,
            cwnd_limited,
            dup_acks,
            in_fast_recovery,
            recover,
            snd_sml,
            nodelay,
            last_send_at,
            ds_field,
            last_recv_at,
            keepalive_probes_sent,
            keepalive_probe_pending,
            ack_pending,
            events,
            rare,
            last_now,
            snd_una_laps,
            rcv_nxt_laps,
        } = self;
        if !Arc::ptr_eq(own_config, config) {
            *own_config = Arc::clone(config);
        }
        let config = &**own_config;
        *state = State::Closed;
        *local_ip = local.ip();
        *local_port = local.port();
        *remote_ip = unspecified_like(local.ip());
        *remote_port = 0;
        *remote_known = false;
        *pseudo_addrs = PseudoAddrs::NONE;
        *passive = false;
        *read_closed = false;
        *close_reason = None;
        let zero = SeqNum::new(0);
        (*iss, *snd_una, *snd_nxt, *snd_wl1, *snd_wl2, *send_buf_seq) =
            (zero, zero, zero, zero, zero, zero);
        (*snd_wnd, *max_snd_wnd) = (0, 0);
        *fin_queued = false;
        // The queue and the ring as `new` makes them, then the old storage adopted (each
        // keeps it only at the same capacity, as `adopt_buffers` does); no growth by itself.
        let old = core::mem::replace(send_buf, SendQueue::new(config.send_buffer));
        send_buf.adopt(old);
        send_buf.set_limit(0);
        *write_blocked = false;
        *irs = zero;
        *have_irs = false;
        *rcv_nxt = zero;
        *rcv_adv_edge = None;
        *rcv_wscale = fresh.rcv_wscale;
        let old = core::mem::replace(recv_buf, Ring::new(fresh.recv_capacity));
        recv_buf.adopt(old);
        recv_buf.set_limit(0);
        *assembler = None;
        *unacked_octets = 0;
        *peer_mss = default_send_mss(local);
        *snd_mss = fresh.snd_mss(local);
        *wscale_ok = false;
        *syn_acked = false;
        *snd_wscale = WindowScale::NONE;
        *ts = TsState::new(config.timestamps);
        *sack_wanted = config.sack;
        *sack_ok = false;
        *scoreboard = None;
        *timers = [Instant::MAX; Timer::COUNT];
        // As `new` leaves them: the endpoint files a renewed connection afresh (no deadline
        // filed, so it asks `poll_timeout` whatever this says) and has checked nothing yet.
        *deadline_moved_earlier = false;
        *transmit_checked = false;
        // Listed, if at all, under the slot it had: its new slot lists it afresh.
        *deadline_listed = false;
        *rtt = fresh.rtt;
        *rtt_probe = None;
        *progress_at = Instant::ZERO;
        *consecutive_retransmissions = 0;
        *handshake_retransmitted = false;
        *retransmit_pending = false;
        *probe_pending = false;
        *probe_answered = false;
        *persist_backoff = 0;
        // CUBIC keeps its allocation for later (as `Cubic::adopt_allocation` would); anything
        // else is built afresh.
        cc.restart_built_in(config.congestion, u32::from(peer_mss.get()));
        *cwnd_limited = false;
        *dup_acks = 0;
        *in_fast_recovery = false;
        *recover = zero;
        *snd_sml = zero;
        *nodelay = config.nodelay;
        *last_send_at = None;
        *ds_field = config.ds_field;
        *last_recv_at = Instant::ZERO;
        *keepalive_probes_sent = 0;
        *keepalive_probe_pending = false;
        *ack_pending = false;
        // Its events were all collected; the allocation stays.
        events.clear();
        *rare = None;
        *last_now = Instant::ZERO;
        *snd_una_laps = 0;
        *rcv_nxt_laps = 0;
    }

    /// Passive OPEN of a connection fresh from [`new`](Self::new) or
    /// [`renew`](Self::renew): [`open_passive`](Self::open_passive) without resetting a TCB
    /// that is fresh already.
    pub(crate) fn open_passive_fresh(&mut self, now: Instant) {
        let now = self.advance_time(now);
        debug_assert_eq!(self.state, State::Closed);
        self.passive = true;
        self.apply(now, Stimulus::PassiveOpen);
    }

    /// Active OPEN of a connection fresh from [`new`](Self::new) or
    /// [`renew`](Self::renew): [`open_active`](Self::open_active) without resetting a TCB
    /// that is fresh already.
    ///
    /// # Errors
    ///
    /// As `open_active`: [`CallError::InvalidRemote`].
    pub(crate) fn open_active_fresh(
        &mut self,
        now: Instant,
        remote: SocketAddr,
    ) -> Result<(), CallError> {
        let now = self.advance_time(now);
        debug_assert_eq!(self.state, State::Closed);
        self.check_remote(remote)?;
        self.start_active(now, remote);
        Ok(())
    }
}

#[cfg(all(test, feature = "testing"))]
#[allow(clippy::unwrap_used)]
mod tests {
    use alloc::format;
    use alloc::sync::Arc;

    use crate::config::Config;
    use crate::congestion::CongestionAlgorithm;
    use crate::testing::{Pair, addr_a, addr_b};
    use crate::{Connection, Instant, State};

    /// A client and a server connection after a whole lifecycle (handshake, data both ways,
    /// orderly close), with their growth released as the endpoint does before keeping one
    /// as a spare. Deterministic: two calls give equal connections.
    fn ended(config: &Arc<Config>) -> (Connection, Connection) {
        let now = Instant::from_millis(3);
        let mut a =
            Connection::connect(Arc::clone(config), now, addr_a(40_000), addr_b(80)).unwrap();
        a.manage_buffer_growth();
        let mut b = Connection::listen(Arc::clone(config), now, addr_b(80));
        b.manage_buffer_growth();
        let mut pair = Pair::new(a, b, now);
        pair.run_until_idle();
        assert_eq!(pair.a.send(pair.now, b"ping"), Ok(4));
        assert_eq!(pair.b.send(pair.now, b"pong!"), Ok(5));
        pair.run_until_idle();
        assert_eq!(pair.read_b(), b"ping");
        assert_eq!(pair.read_a(), b"pong!");
        pair.a.close(pair.now).unwrap();
        pair.run_until_idle();
        pair.b.close(pair.now).unwrap();
        pair.run_until_idle();
        assert_eq!((pair.a.state(), pair.b.state()), (State::TimeWait, State::Closed));
        let (mut a, mut b) = (pair.a, pair.b);
        a.release_buffer_growth();
        b.release_buffer_growth();
        (a, b)
    }

    /// `renew` makes exactly what `new`, `adopt_buffers` and `manage_buffer_growth` made
    /// (the whole TCB, through its `Debug` form, buffers included), under the old config
    /// and under another one, and the fresh OPENs then give what `open_active` /
    /// `open_passive` give.
    #[test]
    fn renew_in_place_makes_what_new_and_adopt_made() {
        let old = Arc::new(Config::new([5; 16]));
        let mut other = Config::new([6; 16]);
        other.congestion = CongestionAlgorithm::NewReno;
        other.timestamps = false;
        other.recv_buffer /= 2;
        let other = Arc::new(other);
        let (local, remote) = (addr_a(40_001), addr_b(443));
        let now = Instant::from_millis(50);
        for config in [&old, &other] {
            for passive in [false, true] {
                let (client, server) = ended(&old);
                let (client_again, server_again) = ended(&old);
                assert_eq!(format!("{client:?}"), format!("{client_again:?}"), "deterministic");
                for (mut renewed, spare) in [(client, client_again), (server, server_again)] {
                    renewed.renew(&super::Template::new(Arc::clone(config)), local);
                    let mut reference = Connection::new(Arc::clone(config), local);
                    reference.adopt_buffers(spare);
                    reference.manage_buffer_growth();
                    assert_eq!(format!("{renewed:?}"), format!("{reference:?}"));
                    if passive {
                        renewed.open_passive_fresh(now);
                        reference.open_passive(now).unwrap();
                    } else {
                        renewed.open_active_fresh(now, remote).unwrap();
                        reference.open_active(now, remote).unwrap();
                    }
                    assert_eq!(format!("{renewed:?}"), format!("{reference:?}"));
                }
            }
        }
    }
}
