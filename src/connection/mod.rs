//! One TCP connection (the TCB) driven without I/O: user calls (RFC 9293 §3.10.1–3.10.6),
//! SEGMENT ARRIVES (§3.10.7, in `input`), segment output (`output`) and timeouts (§3.10.8).
//!
//! The connection never decides its next state itself: handlers work out what happened (a
//! [`Stimulus`]) and `Connection::apply` asks [`crate::state::transition`] (through the table
//! the compiler makes of it, `state::next_state`), then performs the entry actions of the new
//! state (timers, events). Everything it wants to send is produced by
//! [`Connection::poll_transmit`]; everything the user should know by
//! [`Connection::poll_event`]; when it wants to be woken by [`Connection::poll_timeout`].
//!
//! Polling order after each input: `poll_transmit` until `Ok(None)`, `poll_event` until `None`,
//! then wait until `poll_timeout` or the next input.

#![deny(clippy::wildcard_enum_match_arm)]

mod autotune;
#[cfg(all(test, feature = "std"))]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod differential;
mod input;
mod output;
mod path_mtu;
mod recv;
mod renew;
mod sack;
mod send_queue;
mod timestamps;

pub(crate) use input::{is_valid_source, unspecified_like};
pub(crate) use output::Out;
pub use output::{PayloadRef, TransmitChunks, TransmitRef};
pub(crate) use renew::Template;
use send_queue::Data;
pub use send_queue::{MAX_PAYLOAD_SLICES, Payload};
pub(crate) use timestamps::{ts_before, tsval};

use alloc::boxed::Box;
use alloc::sync::Arc;
use bytes::{Buf, Bytes};
use core::net::{IpAddr, SocketAddr};
use core::time::Duration;

use crate::assembler::Assembler;
use crate::buffer::Ring;
use crate::config::{Config, KeepAlive};
use crate::congestion::{
    CongestionAlgorithm, CongestionControl, CongestionEvent, Cubic, NewReno, PathInfo,
    initial_window,
};
use crate::event::EventQueue;
pub use crate::event::{
    CallError, CloseReason, ConnectionError, Counters, Event, IcmpError, Status, TcpInfo,
    TransmitError,
};
use crate::isn::{initial_numbers, timestamp_offset};
use crate::recovery::Scoreboard;
use crate::rtt::RttEstimator;
use crate::seq::{Mss, SeqNum, Window, WindowScale};
use crate::state::{State, Stimulus, next_state};
use crate::time::Instant;
use crate::time_wait::{self, AckLimiter, TimeWait};
use crate::wire::PROTOCOL_TCP;
use crate::wire::checksum::PseudoAddrs;
use recv::RecvExtra;
use send_queue::SendQueue;
use timestamps::TsState;

/// The most events kept for the user before new ones are dropped (and counted). A connection
/// emits a handful per round trip; a caller that never drains them must not grow memory.
const EVENT_QUEUE_LIMIT: usize = 64;

/// The longest an ACK is delayed, whatever `Config::delayed_ack` says: MUST-40 asks for less
/// than 0.5 s, strictly. The 10 ms below it leave room for a caller whose timer wakes a little
/// late (a millisecond tick, a busy loop) to still send the ACK inside the bound.
const MAX_ACK_DELAY: Duration = Duration::from_millis(490);

/// What a valid SYN cookie restores (RFC 4987 §3.6), for [`Connection::accept_cookie`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CookieHandshake {
    /// Our initial sequence number: the cookie.
    pub iss: SeqNum,
    /// The peer's initial sequence number.
    pub irs: SeqNum,
    /// The peer's MSS option, as far as the cookie could encode it.
    pub peer_mss: Option<u16>,
    /// The peer's window-scale option, if it offered one.
    pub peer_window_scale: Option<u8>,
    /// The TSval of the peer's cookie ACK, when the timestamps option survives the cookie
    /// (the SYN offered it and the ACK echoes our SYN-ACK's marked TSval): it becomes
    /// TS.Recent (RFC 7323 §3.2, §4.3).
    pub peer_tsval: Option<u32>,
    /// The peer's SYN carried SACK-permitted and the cookie kept that (RFC 2018 §2).
    pub peer_sack_permitted: bool,
}

/// One segment written by [`Connection::poll_transmit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub struct Transmit {
    /// Octets written at the start of the caller's buffer (TCP header + payload).
    pub len: usize,
    /// Source address and port (for the caller's IP header).
    pub local: SocketAddr,
    /// Destination address and port.
    pub remote: SocketAddr,
    /// TTL / hop limit for the IP header (MUST-49).
    pub ttl: u8,
    /// Differentiated Services field (DSCP and ECN octet) for the IP header (MUST-48,
    /// SHLD-22: passed through unchanged).
    pub ds_field: u8,
}

/// The timers of a connection (RFC 9293 §3.8, §3.10.8). The table in [`Connection`] is sized by
/// [`Timer::COUNT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Timer {
    /// RFC 6298 retransmission timer.
    Retransmit,
    /// Zero-window probe timer (MUST-36).
    Persist,
    /// 2×MSL in TIME-WAIT.
    TimeWait,
    /// Give up on a peer that never sends its FIN after a full close.
    FinWait2,
    /// The user timeout: data unacknowledged for too long.
    User,
    /// A delayed ACK is owed (SHLD-18, MUST-40).
    DelayedAck,
    /// Keep-alive: probe an idle connection (RFC 9293 §3.8.4).
    KeepAlive,
    /// RACK's reordering timer: segments still inside the reordering window are judged when
    /// it expires (RFC 8985 §6.3).
    Reorder,
    /// The tail loss probe timeout, PTO (RFC 8985 §7.2).
    LossProbe,
}

impl Timer {
    /// Every timer: the first [`Timer::COUNT`] in the connection's table, the loss-recovery
    /// ones (`Reorder`, `LossProbe`) in the scoreboard, which only a connection that
    /// negotiated SACK and sent data has (so an idle TCB does not carry them).
    const ALL: [Self; 9] = [
        Self::Retransmit,
        Self::Persist,
        Self::TimeWait,
        Self::FinWait2,
        Self::User,
        Self::DelayedAck,
        Self::KeepAlive,
        Self::Reorder,
        Self::LossProbe,
    ];
    const COUNT: usize = 7;
    /// [`Timer::Retransmit`]'s slot in the connection's table.
    const RETRANSMIT_SLOT: usize = Self::Retransmit as usize;

    /// The timer's slot in the connection's table; `None` for the loss-recovery timers,
    /// which the scoreboard keeps.
    const fn table_slot(self) -> Option<usize> {
        match self {
            Self::Retransmit
            | Self::Persist
            | Self::TimeWait
            | Self::FinWait2
            | Self::User
            | Self::DelayedAck
            | Self::KeepAlive => Some(self as usize),
            Self::Reorder | Self::LossProbe => None,
        }
    }
}

/// A control segment owed to some address: a RST, or a RST+ACK (RFC 9293 §3.10.7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Reply {
    remote: SocketAddr,
    seq: SeqNum,
    /// `Some` for RST+ACK.
    ack: Option<SeqNum>,
}

/// The part of a TCB that most connections never use — urgent data, control replies to bad
/// segments, challenge ACKs, ICMP path-MTU news, a keep-alive override, drop counters — kept
/// behind one pointer and allocated the first time any of it is needed, so an idle
/// connection does not carry it (nor allocate it per segment: once made, it stays).
#[derive(Debug, Default)]
struct Rare {
    counters: Counters,
    /// A RST owed to some address (at most one waits).
    reply: Option<Reply>,
    /// SND.UP: the sequence number after our last urgent octet, while urgent data is unsent.
    snd_up: Option<SeqNum>,
    /// RCV.UP: the sequence number after the peer's last urgent octet (MUST-62).
    rcv_up: Option<SeqNum>,
    /// RFC 5961 §7 rate limit: the current interval and the challenge ACKs sent in it.
    challenge_acks: AckLimiter,
    /// The path MTU learned from ICMP "packet too big" (RFC 1191, RFC 8201) or the
    /// black-hole fall-back (RFC 4821 §7.7); see `path_mtu`.
    path_mtu: Option<u16>,
    /// The flight being resent from a cursor within cwnd (go-back-N): after the path MTU
    /// dropped, after an RTO on a connection without SACK, after a closed window reopened.
    resegment: Option<path_mtu::Resegment>,
    /// SND.UNA when duplicate ACKs last showed later segments of the flight arriving: the
    /// black-hole fall-back waits one more round for that segment (see `path_mtu`).
    dup_acked_una: Option<SeqNum>,
    /// The application's keep-alive choice, when it made one.
    keepalive_override: Option<Option<KeepAlive>>,
    /// The ISS must come after this: SND.NXT of the TIME-WAIT incarnation this connection
    /// reopens (RFC 9293 §3.6.1, MAY-2 condition (1)). Set by the endpoint only.
    iss_after: Option<SeqNum>,
    /// The application's R2 for data segments, when it set one for this connection (MUST-21).
    r2_data_override: Option<Option<Duration>>,
    /// The application's user timeout, when it set one for this connection (MUST-21).
    user_timeout_override: Option<Option<Duration>>,
    /// When the segment now at SND.UNA was first retransmitted, or the first unanswered
    /// zero-window probe went (R2 counts from here).
    first_retransmission_at: Option<Instant>,
    /// The last window reduction, until judged spurious or not (see `sack`); here because a
    /// reduction already allocates this part (for its counter).
    episode: Option<crate::recovery::Episode>,
    /// The application switched spurious-retransmission undo off (`Connection::set_undo`).
    undo_off: bool,
    /// A partial ACK has restarted the retransmission timer in the current NewReno fast
    /// recovery: later ones do not (RFC 6582 §3.2 step 5, §4's "Impatient" variant).
    partial_ack_restarted_timer: bool,
    /// Where the peer's FIN sits, when it arrived beyond a hole.
    rcv_fin_at: Option<SeqNum>,
}

/// The congestion controller: a built-in one held in place (CUBIC boxes its state only at
/// its first event), or the application's.
#[derive(Debug)]
enum Controller {
    Cubic(Cubic),
    NewReno(NewReno),
    Custom(Box<dyn CongestionControl>),
}

impl Controller {
    /// The built-in `algorithm`, starting from the initial window for `mss` (RFC 6928).
    fn built_in(algorithm: CongestionAlgorithm, mss: u32) -> Self {
        match algorithm {
            CongestionAlgorithm::Cubic => Self::Cubic(Cubic::new(initial_window(mss))),
            CongestionAlgorithm::NewReno => Self::NewReno(NewReno::new(initial_window(mss))),
        }
    }

    /// Starts the built-in `algorithm` over as [`Controller::built_in`] would, reusing
    /// CUBIC's allocation when it is CUBIC already (no allocation per connection on an
    /// endpoint that reuses TCBs).
    fn restart_built_in(&mut self, algorithm: CongestionAlgorithm, mss: u32) {
        match (self, algorithm) {
            (Self::Cubic(cubic), CongestionAlgorithm::Cubic) => cubic.restart(initial_window(mss)),
            (this, _) => this.rebuild(algorithm, mss),
        }
    }

    /// [`restart_built_in`](Self::restart_built_in) of anything but CUBIC over CUBIC: built
    /// afresh, out of line (dropping the old controller needs a stack frame the CUBIC restart,
    /// twice per connection, does not).
    #[inline(never)]
    fn rebuild(&mut self, algorithm: CongestionAlgorithm, mss: u32) {
        *self = Self::built_in(algorithm, mss);
    }

    /// Which built-in algorithm this is; `None` for the application's own.
    const fn algorithm(&self) -> Option<CongestionAlgorithm> {
        match self {
            Self::Cubic(_) => Some(CongestionAlgorithm::Cubic),
            Self::NewReno(_) => Some(CongestionAlgorithm::NewReno),
            Self::Custom(_) => None,
        }
    }

    fn get(&self) -> &dyn CongestionControl {
        match self {
            Self::Cubic(cubic) => cubic,
            Self::NewReno(new_reno) => new_reno,
            Self::Custom(custom) => custom.as_ref(),
        }
    }

    fn get_mut(&mut self) -> &mut dyn CongestionControl {
        match self {
            Self::Cubic(cubic) => cubic,
            Self::NewReno(new_reno) => new_reno,
            Self::Custom(custom) => custom.as_mut(),
        }
    }
}

/// A TCP connection: see the module docs for the calling contract.
///
/// Operations per state (RFC 9293 §3.10): `send` is accepted in SYN-SENT, SYN-RECEIVED (queued),
/// ESTABLISHED and CLOSE-WAIT, refused with [`CallError::Closing`] once our FIN is queued;
/// `recv` returns buffered data in any state until a full `close`; `shutdown` / `close` queue
/// our FIN from SYN-RECEIVED, ESTABLISHED and CLOSE-WAIT and delete the TCB in LISTEN and
/// SYN-SENT; `abort` works in every state but CLOSED.
#[derive(Debug)]
pub struct Connection {
    /// Shared with the endpoint's other connections: one copy, not one per TCB.
    config: Arc<Config>,
    state: State,
    /// The local address and port. Addresses are kept as `IpAddr` and port (19 bytes, where
    /// a `SocketAddr` takes 32): an IPv6 flow label or scope id is no part of a connection's
    /// identity, which is its 4-tuple (RFC 9293 §3.1), so it is not stored.
    local_ip: IpAddr,
    local_port: u16,
    /// The remote address; meaningful while `remote_known`. A connection sent back to LISTEN
    /// forgets its peer but keeps the address, so its owner can still find what it was
    /// filed under.
    remote_ip: IpAddr,
    remote_port: u16,
    remote_known: bool,
    /// The addresses' part of the pseudo-header sum of our segments, `local_ip` →
    /// `remote_ip`, made when the peer becomes known (`set_remote`; none before, when no
    /// segment but a reply, written apart, can go): each segment adds only its length.
    pseudo_addrs: PseudoAddrs,
    /// The connection came from a passive OPEN (RFC 9293 §3.10.7.4 steps 2 and 4).
    passive: bool,
    /// The user did a full close: received data is no longer wanted (SHLD-3).
    read_closed: bool,
    /// Why the connection ended, once it has.
    close_reason: Option<CloseReason>,

    // Send sequence space (RFC 9293 §3.3.1).
    iss: SeqNum,
    snd_una: SeqNum,
    snd_nxt: SeqNum,
    snd_wnd: u32,
    max_snd_wnd: u32,
    snd_wl1: SeqNum,
    snd_wl2: SeqNum,
    /// Sequence number of the first octet in `send_buf`.
    send_buf_seq: SeqNum,
    /// Our FIN is queued after the data in `send_buf`; its sequence number is the end of it.
    fin_queued: bool,
    send_buf: SendQueue,
    /// `send` took less than offered: tell the user when room frees.
    write_blocked: bool,

    // Receive sequence space.
    irs: SeqNum,
    /// The peer's SYN is in, so IRS and RCV.NXT mean something.
    have_irs: bool,
    rcv_nxt: SeqNum,
    /// The furthest RCV.NXT + RCV.WND advertised: window updates are measured against it, the
    /// window never retreats from it (SHLD-14), and segments up to it are accepted.
    rcv_adv_edge: Option<SeqNum>,
    /// The receive buffer; its storage also holds the auto-tuning measurements (`autotune`)
    /// and, once segments arrive through `handle_segment_bytes`, the chunks that hold the
    /// received data instead of the ring (`recv`).
    recv_buf: Ring<RecvExtra>,
    /// Which octets past RCV.NXT are already held (out-of-order data, in the ring or as
    /// chunks); allocated at the first out-of-order segment, so an in-order connection does
    /// not carry it.
    assembler: Option<Box<Assembler>>,
    /// In-order octets received since we last sent an ACK (SHLD-19: ACK every 2×RMSS).
    unacked_octets: u32,
    /// The peer's MSS option, or the default of MUST-15.
    peer_mss: Mss,
    /// Eff.snd.MSS for the configured MTU ([`effective_mss_at`](Self::effective_mss_at) of
    /// `Config::mtu`), kept with what it depends on (the peer's MSS, the timestamps option,
    /// the configuration): [`effective_mss`](Self::effective_mss) is asked a few times per
    /// segment sent and then reads it, unless a path MTU is known.
    snd_mss: u16,
    /// Both SYNs carried the window-scale option (RFC 7323 §2.2).
    wscale_ok: bool,
    /// Our SYN has been acknowledged (SND.UNA moved past ISS once). A flag, not
    /// `SND.UNA > ISS`: sequence comparison is modulo 2^32, so after 2^31 octets that test turns
    /// false and the sender would stop for good.
    syn_acked: bool,
    /// The shift the peer applies to its window fields.
    snd_wscale: WindowScale,
    /// The shift we apply to ours: the smallest that lets the receive buffer be offered.
    rcv_wscale: WindowScale,
    /// RFC 7323 timestamps: negotiation, our clock, TS.Recent, Last.ACK.sent (`timestamps`).
    ts: TsState,
    /// We offer SACK-permitted (`Config::sack`, or `set_sack`).
    sack_wanted: bool,
    /// Both SYNs carried SACK-permitted (RFC 2018 §2): our ACKs carry SACK blocks and the
    /// peer's drive loss recovery.
    sack_ok: bool,
    /// What we sent, as the peer's SACKs describe it, and the loss recovery built on that
    /// (`crate::recovery`); made at the first data segment of a connection that negotiated
    /// SACK.
    scoreboard: Option<Box<Scoreboard>>,

    // Timers and retransmission (RFC 6298).
    /// Deadlines by [`Timer`]; [`Instant::MAX`] means "not armed" (8 bytes a timer, not 16).
    timers: [Instant; Timer::COUNT],
    /// A timer was armed or moved earlier since the endpoint last took this flag
    /// ([`take_earlier_deadline`](Self::take_earlier_deadline)): until one is, the deadline it
    /// filed is no later than [`poll_timeout`](Self::poll_timeout)'s answer, so it need not ask.
    deadline_moved_earlier: bool,
    /// [`may_transmit`](Self::may_transmit) answered yes and nothing happened to the
    /// connection since: the endpoint's next `poll_output` need not ask again. Set only by the
    /// endpoint (`note_transmit_check`), which clears it after any other call; taken by
    /// `poll_output`.
    transmit_checked: bool,
    /// The endpoint listed this connection to have its deadline filed later (its next
    /// `handle_timeout`, or once a few are listed): until then it need not look at the
    /// deadline again. Set and cleared only by the endpoint (`set_deadline_listed`).
    deadline_listed: bool,
    rtt: RttEstimator,
    /// The segment being timed: its end sequence number and when it was sent (Karn, MUST-18:
    /// forgotten whenever anything is sent again, `on_resent`).
    rtt_probe: Option<(SeqNum, Instant)>,
    /// When SND.UNA last advanced or outstanding data started: R2 and user timeout count
    /// from here.
    progress_at: Instant,
    consecutive_retransmissions: u16,
    /// The SYN (or SYN-ACK) was retransmitted (RFC 6298 rule 5.7).
    handshake_retransmitted: bool,
    /// The next segment must be a retransmission from SND.UNA.
    retransmit_pending: bool,
    /// The next persist-timer expiry sends a one-octet probe.
    probe_pending: bool,
    /// The peer acknowledged a probe of its zero window since the last retransmission.
    probe_answered: bool,
    /// Zero-window probes sent since the window last opened, saturating (a shift of at most
    /// 16 is used): a `u8` leaves room for `snd_mss` within the TCB's budget.
    persist_backoff: u8,

    // Congestion control (RFC 5681, RFC 6582, RFC 9438).
    /// CUBIC or NewReno in place, or the application's own controller.
    cc: Controller,
    /// When sending last stopped, cwnd (not the application or the peer's window) was the
    /// limit (RFC 9438 §5.8, RFC 7661): set by the sender, read by the controller.
    cwnd_limited: bool,
    /// Duplicate ACKs in a row (RFC 5681 §2), saturating: only the first three matter.
    dup_acks: u8,
    /// In NewReno fast recovery until SND.UNA passes `recover` (RFC 6582).
    in_fast_recovery: bool,
    /// RFC 6582's `recover`: SND.NXT when the last loss was detected.
    recover: SeqNum,
    /// End of the last short segment sent (Minshall's Nagle variant).
    snd_sml: SeqNum,
    /// Nagle off for this connection (MUST-17).
    nodelay: bool,
    /// When we last sent data, new or again (RFC 5681 §4.1 restart after idle).
    last_send_at: Option<Instant>,

    /// Differentiated Services field for our packets (MUST-48, SHLD-21).
    ds_field: u8,

    // Keep-alive (RFC 9293 §3.8.4).
    /// When the peer last sent us anything.
    last_recv_at: Instant,
    /// Probes sent since the peer was last heard from (16 bits: a count of 65 535 probes, more
    /// than any configuration asks for before giving up, is treated as the limit).
    keepalive_probes_sent: u16,
    /// A probe is due at the next `poll_transmit`.
    keepalive_probe_pending: bool,

    // Output owed.
    ack_pending: bool,

    events: EventQueue,
    /// What few connections ever need, allocated the first time one does.
    rare: Option<Box<Rare>>,
    last_now: Instant,

    // Statistics (`Connection::info`): the octet counts come from the sequence numbers, so
    // only the turns of the 2^32 sequence space are kept (in what was padding).
    /// Times SND.UNA went once round the sequence space since the ISS.
    snd_una_laps: u16,
    /// Times RCV.NXT went once round the sequence space since the IRS.
    rcv_nxt_laps: u16,
}

impl Connection {
    /// A CLOSED connection bound to `local`. Use [`Connection::open_passive`] or
    /// [`Connection::open_active`] next, or the [`Connection::listen`] / [`Connection::connect`]
    /// shorthands.
    pub fn new(config: impl Into<Arc<Config>>, local: SocketAddr) -> Self {
        let config: Arc<Config> = config.into();
        let fresh = renew::FreshParts::of(&config);
        let renew::FreshParts { rtt, rcv_wscale, recv_capacity, .. } = fresh;
        let send_buf = SendQueue::new(config.send_buffer);
        let recv_buf = Ring::new(recv_capacity);
        let peer_mss = default_send_mss(local);
        let nodelay = config.nodelay;
        let ds_field = config.ds_field;
        let ts = TsState::new(config.timestamps);
        let sack_wanted = config.sack;
        let cc = Controller::built_in(config.congestion, u32::from(peer_mss.get()));
        let mut connection = Self {
            config,
            state: State::Closed,
            local_ip: local.ip(),
            local_port: local.port(),
            remote_ip: unspecified_like(local.ip()),
            remote_port: 0,
            remote_known: false,
            pseudo_addrs: PseudoAddrs::NONE,
            passive: false,
            read_closed: false,
            close_reason: None,
            iss: SeqNum::new(0),
            snd_una: SeqNum::new(0),
            snd_nxt: SeqNum::new(0),
            snd_wnd: 0,
            max_snd_wnd: 0,
            snd_wl1: SeqNum::new(0),
            snd_wl2: SeqNum::new(0),
            send_buf_seq: SeqNum::new(0),
            fin_queued: false,
            send_buf,
            write_blocked: false,
            irs: SeqNum::new(0),
            have_irs: false,
            rcv_nxt: SeqNum::new(0),
            rcv_adv_edge: None,
            recv_buf,
            assembler: None,
            unacked_octets: 0,
            peer_mss,
            snd_mss: fresh.snd_mss(local),
            wscale_ok: false,
            syn_acked: false,
            snd_wscale: WindowScale::NONE,
            rcv_wscale,
            ts,
            sack_wanted,
            sack_ok: false,
            scoreboard: None,
            timers: [Instant::MAX; Timer::COUNT],
            deadline_moved_earlier: false,
            transmit_checked: false,
            deadline_listed: false,
            rtt,
            rtt_probe: None,
            progress_at: Instant::ZERO,
            consecutive_retransmissions: 0,
            handshake_retransmitted: false,
            retransmit_pending: false,
            probe_pending: false,
            probe_answered: false,
            persist_backoff: 0,
            cc,
            cwnd_limited: false,
            dup_acks: 0,
            in_fast_recovery: false,
            recover: SeqNum::new(0),
            snd_sml: SeqNum::new(0),
            nodelay,
            last_send_at: None,
            ds_field,
            last_recv_at: Instant::ZERO,
            keepalive_probes_sent: 0,
            keepalive_probe_pending: false,
            ack_pending: false,
            snd_una_laps: 0,
            rcv_nxt_laps: 0,
            events: EventQueue::new(),
            rare: None,
            last_now: Instant::ZERO,
        };
        connection.standalone_buffer_limits();
        connection
    }

    /// A connection in LISTEN on `local` (passive OPEN).
    pub fn listen(config: impl Into<Arc<Config>>, now: Instant, local: SocketAddr) -> Self {
        let mut connection = Self::new(config, local);
        // A new connection is CLOSED, which is the one state where OPEN cannot fail.
        let _ = connection.open_passive(now);
        connection
    }

    /// A connection in SYN-SENT from `local` to `remote` (active OPEN). Fails only when the two
    /// addresses are of different IP families.
    pub fn connect(
        config: impl Into<Arc<Config>>,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Result<Self, CallError> {
        let mut connection = Self::new(config, local);
        connection.open_active(now, remote)?;
        Ok(connection)
    }

    /// A connection completed through a SYN cookie (RFC 4987 §3.6): the endpoint answered
    /// the peer's SYN (initial sequence number `irs`) statelessly with a SYN-ACK whose
    /// sequence number `iss` encoded the cookie, and the peer's ACK of it came back valid. The
    /// connection starts ESTABLISHED (through the table's `CookieAck` edge from LISTEN) with
    /// the MSS and window scale the cookie carried; the ACK segment itself is then handed to
    /// [`Connection::handle_segment`] by the caller for its window and any data.
    pub fn accept_cookie(
        config: impl Into<Arc<Config>>,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        cookie: CookieHandshake,
    ) -> Self {
        let mut connection = Self::listen(config, now, local);
        connection.complete_cookie(now, remote, cookie);
        connection
    }

    /// The LISTEN → ESTABLISHED `CookieAck` edge of [`accept_cookie`](Self::accept_cookie), on
    /// a connection in LISTEN.
    pub(crate) fn complete_cookie(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        cookie: CookieHandshake,
    ) {
        let local = self.local();
        self.set_remote(remote);
        self.irs = cookie.irs;
        self.have_irs = true;
        self.rcv_nxt = cookie.irs + 1;
        self.on_peer_mss(cookie.peer_mss);
        self.on_peer_window_scale(cookie.peer_window_scale);
        self.ts.set_offset(timestamp_offset(&self.config.isn, local, remote));
        let timestamps = cookie.peer_tsval.map(|tsval| crate::wire::Timestamps { tsval, tsecr: 0 });
        self.ts.on_peer_syn(now, timestamps, self.rcv_nxt);
        self.refresh_snd_mss();
        self.on_peer_sack_permitted(cookie.peer_sack_permitted);
        self.iss = cookie.iss;
        self.snd_una = cookie.iss + 1;
        self.syn_acked = true;
        self.snd_nxt = cookie.iss + 1;
        self.send_buf_seq = cookie.iss + 1;
        self.snd_wl2 = cookie.iss + 1;
        self.recover = cookie.iss;
        self.snd_sml = cookie.iss;
        self.apply(now, Stimulus::CookieAck);
    }

    /// Passive OPEN (RFC 9293 §3.10.1): wait in LISTEN for a SYN from anyone.
    pub fn open_passive(&mut self, now: Instant) -> Result<(), CallError> {
        let now = self.advance_time(now);
        if self.state != State::Closed {
            return Err(CallError::AlreadyOpen);
        }
        self.reset_tcb();
        self.passive = true;
        self.apply(now, Stimulus::PassiveOpen);
        Ok(())
    }

    /// Active OPEN (RFC 9293 §3.10.1), or a SEND-with-remote in LISTEN (§3.10.2): send a SYN
    /// to `remote` and enter SYN-SENT.
    pub fn open_active(&mut self, now: Instant, remote: SocketAddr) -> Result<(), CallError> {
        let now = self.advance_time(now);
        self.check_remote(remote)?;
        match self.state {
            State::Closed => self.reset_tcb(),
            // A passive OPEN turned active keeps its (empty) TCB.
            State::Listen => {}
            State::SynSent
            | State::SynReceived
            | State::Established
            | State::FinWait1
            | State::FinWait2
            | State::CloseWait
            | State::Closing
            | State::LastAck
            | State::TimeWait => return Err(CallError::AlreadyOpen),
        }
        self.start_active(now, remote);
        Ok(())
    }

    /// MUST-46: no OPEN to a broadcast or multicast address (nor to a mismatched family, port
    /// 0 or the unspecified address).
    fn check_remote(&self, remote: SocketAddr) -> Result<(), CallError> {
        let usable = remote.is_ipv4() == self.local().is_ipv4()
            && remote.port() != 0
            && is_valid_source(remote.ip());
        if usable { Ok(()) } else { Err(CallError::InvalidRemote) }
    }

    /// The SYN-SENT half of an active OPEN to a checked `remote`, on a TCB that is fresh (or
    /// an empty LISTEN one).
    fn start_active(&mut self, now: Instant, remote: SocketAddr) {
        self.passive = false;
        self.set_remote(remote);
        self.choose_iss(now, remote);
        self.apply(now, Stimulus::ActiveOpen);
    }

    /// SEND (RFC 9293 §3.10.2): queue as much of `data` as the send buffer has room for and say
    /// how much. Data queued before ESTABLISHED is sent once the handshake completes.
    pub fn send(&mut self, now: Instant, data: &[u8]) -> Result<usize, CallError> {
        self.queue_send(now, data, false)
    }

    /// SEND with the URGENT flag (RFC 9293 §3.8.5, MUST-30, MUST-31): like [`Connection::send`],
    /// and the urgent pointer marks the octet after the last one taken (MUST-62).
    pub fn send_urgent(&mut self, now: Instant, data: &[u8]) -> Result<usize, CallError> {
        self.queue_send(now, data, true)
    }

    /// SEND of a chunk kept by reference (RFC 9293 §3.10.2): like [`Connection::send`], but
    /// the send queue holds `data` itself (a reference count, no copy) until the peer
    /// acknowledges it, and every (re)transmission of it is a slice of it. Takes as much as the
    /// send buffer has room for, from the front, and says how much: the rest is not queued,
    /// and the caller offers it again (for example `data.slice(taken..)`) once room frees
    /// ([`Event::Writable`] tells when, as for `send`). When what is taken is shorter than
    /// 256 octets it is copied instead, so many tiny chunks do not pin many allocations.
    ///
    /// The memory stays pinned while any of it is queued: a short slice of a large buffer keeps
    /// all of the buffer alive.
    ///
    /// # Errors
    ///
    /// As [`Connection::send`]: [`CallError::NoRemote`] when listening, [`CallError::Closing`]
    /// once our side closed, the reason once the connection ended.
    pub fn send_bytes(&mut self, now: Instant, data: Bytes) -> Result<usize, CallError> {
        self.queue(now, Data::Shared(&data), false)
    }

    /// SEND of several chunks in order, kept by reference as [`Connection::send_bytes`] keeps
    /// one: whole chunks are taken while they fit; a chunk taken in part is advanced in place
    /// past what was taken (and no later chunk is taken); a chunk taken whole is left empty.
    /// Returns the octets taken in all; empty chunks are skipped.
    ///
    /// # Errors
    ///
    /// As [`Connection::send`], before anything is taken.
    pub fn write_chunks(&mut self, now: Instant, chunks: &mut [Bytes]) -> Result<usize, CallError> {
        self.queue(now, Data::Copied(&[]), false)?;
        let mut total = 0;
        for chunk in chunks.iter_mut().filter(|chunk| !chunk.is_empty()) {
            let taken = self.queue(now, Data::Shared(chunk), false)?;
            total += taken;
            if taken < chunk.len() {
                chunk.advance(taken);
                break;
            }
            *chunk = Bytes::new();
        }
        Ok(total)
    }

    fn queue_send(&mut self, now: Instant, data: &[u8], urgent: bool) -> Result<usize, CallError> {
        self.queue(now, Data::Copied(data), urgent)
    }

    fn queue(&mut self, now: Instant, data: Data<'_>, urgent: bool) -> Result<usize, CallError> {
        let _ = self.advance_time(now);
        match self.state {
            State::Closed => Err(self.closed_error()),
            State::Listen => Err(CallError::NoRemote),
            State::SynSent | State::SynReceived | State::Established | State::CloseWait => {
                let mut taken = self.send_buf.append(data, 0);
                if taken < data.len() {
                    // A writer the buffer holds back: it may grow (`autotune`).
                    self.write_blocked = true;
                    if self.grow_send_buffer() {
                        taken += self.send_buf.append(data, taken);
                    }
                    self.write_blocked = taken < data.len();
                }
                if urgent && taken > 0 {
                    let up = self.send_buf_seq + len_u32(self.send_buf.len());
                    self.rare_mut().snd_up = Some(up);
                }
                Ok(taken)
            }
            State::FinWait1
            | State::FinWait2
            | State::Closing
            | State::LastAck
            | State::TimeWait => Err(CallError::Closing),
        }
    }

    /// RECEIVE (RFC 9293 §3.10.3): copy buffered in-order data into `buf` and say how much.
    ///
    /// `Ok(0)` means nothing yet. Once the peer's FIN is in and everything before it was read,
    /// it returns [`CallError::Closing`] (end of stream); after an abnormal end, the reason.
    // In line: most calls find nothing (a read loop ends on `Ok(0)`) and are answered by a
    // few field tests in the caller; the copy and its bookkeeping are out of line.
    #[inline]
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize, CallError> {
        if self.read_closed {
            return Err(CallError::Closing);
        }
        if self.recv_len() > 0 {
            return Ok(self.read_into(buf));
        }
        self.nothing_to_read().map(|()| 0)
    }

    /// CLOSE of the sending side only (a half-close): queue our FIN after the data already sent;
    /// receiving goes on until the peer's FIN (RFC 9293 §3.10.4, MAY-1).
    pub fn shutdown(&mut self, now: Instant) -> Result<(), CallError> {
        self.close_inner(now, false)
    }

    /// Full CLOSE: like [`Connection::shutdown`], and the application will read no more. With
    /// unread data, or if data arrives later, the connection is reset instead (SHLD-3).
    pub fn close(&mut self, now: Instant) -> Result<(), CallError> {
        self.close_inner(now, true)
    }

    fn close_inner(&mut self, now: Instant, full: bool) -> Result<(), CallError> {
        let now = self.advance_time(now);
        if full && self.recv_len() > 0 && self.state != State::Closed {
            // SHLD-3 / RFC 2525 §2.17: closing with unread data resets the connection, so the
            // peer learns its data was not consumed.
            self.read_closed = true;
            self.abort_inner(now);
            return Ok(());
        }
        match self.state {
            State::Closed => Err(self.closed_error()),
            State::Listen | State::SynSent => {
                self.read_closed |= full;
                // §3.10.4: CLOSE here deletes the TCB. Data already accepted by `send` would
                // be lost with it, so then it is an ABORT, reported as such: accepted data is
                // delivered or the loss is reported, never silently dropped.
                let discards_data = !self.send_buf.is_empty();
                let stimulus = if discards_data { Stimulus::Abort } else { Stimulus::Close };
                self.apply(now, stimulus);
                Ok(())
            }
            State::SynReceived | State::Established | State::CloseWait => {
                self.read_closed |= full;
                self.fin_queued = true;
                self.apply(now, Stimulus::Close);
                Ok(())
            }
            State::FinWait1
            | State::FinWait2
            | State::Closing
            | State::LastAck
            | State::TimeWait => {
                if full && !self.read_closed {
                    // A half-closed connection becoming fully closed: no state change, only
                    // the promise not to read (and the FIN-WAIT-2 timer it allows).
                    self.read_closed = true;
                    if self.state == State::FinWait2 {
                        self.arm_fin_wait_2(now);
                    }
                    return Ok(());
                }
                Err(CallError::Closing)
            }
        }
    }

    /// ABORT (RFC 9293 §3.10.5): send a RST where the peer knows us, drop everything, and
    /// report [`ConnectionError::Aborted`].
    pub fn abort(&mut self, now: Instant) -> Result<(), CallError> {
        let now = self.advance_time(now);
        if self.state == State::Closed {
            return Err(self.closed_error());
        }
        self.abort_inner(now);
        Ok(())
    }

    fn abort_inner(&mut self, now: Instant) {
        match self.state {
            // §3.10.5: RST <SEQ=SND.NXT><CTL=RST> in the synchronized states (and SYN-RECEIVED,
            // where the peer also has our sequence space).
            State::SynReceived
            | State::Established
            | State::FinWait1
            | State::FinWait2
            | State::CloseWait => {
                if let Some(remote) = self.remote() {
                    let seq = self.snd_nxt;
                    self.rare_mut().reply = Some(Reply { remote, seq, ack: None });
                }
            }
            State::Closed
            | State::Listen
            | State::SynSent
            | State::Closing
            | State::LastAck
            | State::TimeWait => {}
        }
        self.apply(now, Stimulus::Abort);
    }

    /// Turns Nagle's algorithm off (`true`) or on for this connection (MUST-17, SHLD-7).
    pub fn set_nodelay(&mut self, nodelay: bool) {
        self.nodelay = nodelay;
    }

    /// Switches the timestamps option (RFC 7323 §3) on or off for this connection, in place of
    /// [`Config::timestamps`]. It counts only before the handshake begins — on a CLOSED or
    /// LISTEN connection, or after an active OPEN before its SYN was polled — because both SYNs
    /// settle it (§3.2); returns whether it took effect.
    pub fn set_timestamps(&mut self, on: bool) -> bool {
        let before_handshake = self.before_handshake();
        if before_handshake {
            self.ts.set_wanted(on);
            self.refresh_snd_mss();
        }
        before_handshake
    }

    /// Switches selective acknowledgments (RFC 2018, with D-SACK and SACK-based recovery) on or
    /// off for this connection, in place of [`Config::sack`]. Like
    /// [`set_timestamps`](Self::set_timestamps) it counts only before the handshake begins, since
    /// both SYNs settle it (§2); returns whether it took effect.
    pub fn set_sack(&mut self, on: bool) -> bool {
        let before_handshake = self.before_handshake();
        if before_handshake {
            self.sack_wanted = on;
        }
        before_handshake
    }

    /// Whether no SYN of ours has gone yet, so options offered on SYNs may still change: a
    /// CLOSED or LISTEN connection, or an active OPEN whose SYN was not polled.
    fn before_handshake(&self) -> bool {
        match self.state {
            State::Closed | State::Listen => true,
            State::SynSent => self.snd_nxt == self.iss,
            State::SynReceived
            | State::Established
            | State::FinWait1
            | State::FinWait2
            | State::CloseWait
            | State::Closing
            | State::LastAck
            | State::TimeWait => false,
        }
    }

    /// RFC 2018 §2: SACK is used only if both SYNs carry SACK-permitted (ours goes only if
    /// wanted, and a SYN-ACK offers it only in reply to a SYN that did).
    pub(super) fn on_peer_sack_permitted(&mut self, offered: bool) {
        self.sack_ok = self.sack_wanted && offered;
    }

    /// Changes the Differentiated Services field of this connection's packets (SHLD-21; RFC
    /// 9293 SHLD-23 advises applications not to change it mid-connection).
    pub fn set_ds_field(&mut self, ds_field: u8) {
        self.ds_field = ds_field;
    }

    /// An ICMP error about a segment this connection sent, whose TCP header began with
    /// sequence number `quoted_seq` (RFC 9293 §3.9.2.2, MUST-54). It is believed only if
    /// `quoted_seq` lies in SND.UNA..SND.NXT (RFC 5927 §4.1); returns whether it was.
    ///
    /// Source quench is ignored (MUST-55). Protocol and port unreachable are hard errors that
    /// abort (SHLD-26). "Packet too big" lowers the path MTU and resends the whole flight at
    /// the smaller size at once (RFC 1191/8201, see `path_mtu`; a documented deviation from
    /// treating it as a soft error). Everything else is a soft error: reported (MUST-47,
    /// SHLD-25) unless reports are off (SHLD-20), never an abort (MUST-56).
    pub fn handle_icmp_error(
        &mut self,
        now: Instant,
        error: IcmpError,
        quoted_seq: SeqNum,
    ) -> bool {
        let now = self.advance_time(now);
        let in_flight = quoted_seq.after_eq(self.snd_una) && quoted_seq.before(self.snd_nxt);
        let open = !matches!(self.state, State::Closed | State::Listen | State::TimeWait);
        if !in_flight || !open {
            return false;
        }
        match error {
            IcmpError::SourceQuench => {}
            IcmpError::Unreachable { code: 2 | 3 } => self.apply(now, Stimulus::HardError),
            IcmpError::PacketTooBig { mtu } => self.on_packet_too_big(now, mtu),
            IcmpError::Unreachable { .. }
            | IcmpError::TimeExceeded
            | IcmpError::ParameterProblem => {
                if self.config.report_soft_errors {
                    self.push_event(Event::SoftError(error));
                }
            }
        }
        true
    }

    /// Turns keep-alive probing on (with its timing) or off for this connection (MUST-24).
    pub fn set_keepalive(&mut self, now: Instant, keepalive: Option<KeepAlive>) {
        let now = self.advance_time(now);
        if keepalive != self.config.keepalive || self.rare.is_some() {
            self.rare_mut().keepalive_override = Some(keepalive);
        }
        // Idleness counts from when keep-alive is switched on, at the earliest.
        self.last_recv_at = self.last_recv_at.max(now);
        self.arm_keepalive();
    }

    /// Sets R2 for this connection's data segments, in place of [`Config::r2_data`]: once one
    /// segment has been retransmitted for this long (and at least R1 times), the connection is
    /// closed with [`ConnectionError::TimedOut`]. `None` retransmits forever, leaving the
    /// decision to the application (RFC 9293 §3.8.3, MUST-21). Takes effect at the next
    /// retransmission timeout, on data already outstanding too.
    pub fn set_r2_data(&mut self, r2: Option<Duration>) {
        // Like the keep-alive choice, kept with the rarely used part of the TCB: a connection
        // that keeps the configuration's value allocates nothing for it.
        if r2 != self.config.r2_data || self.rare.is_some() {
            self.rare_mut().r2_data_override = Some(r2);
        }
    }

    /// Sets this connection's user timeout, in place of [`Config::user_timeout`]: the
    /// connection is closed with [`ConnectionError::TimedOut`] when data stays unacknowledged
    /// this long (RFC 9293 §3.10.8, MUST-21). `None` leaves it to R2. Data already outstanding
    /// is measured against the new value at once, from when it started to wait.
    pub fn set_user_timeout(&mut self, timeout: Option<Duration>) {
        if timeout != self.config.user_timeout || self.rare.is_some() {
            self.rare_mut().user_timeout_override = Some(timeout);
        }
        // The user timer runs exactly while the retransmission timer does (data outstanding,
        // `update_retransmit_timer`); re-arm it from the same start with the new length.
        if self.timer(Timer::Retransmit).is_some() {
            let deadline = self.user_timeout().map(|timeout| self.progress_at + timeout);
            self.set_timer(Timer::User, deadline);
        }
    }

    /// Installs another congestion-control algorithm (RFC 9293 MAY-18), replacing the built-in
    /// one `Config::congestion` chose.
    pub fn set_congestion_control(&mut self, controller: Box<dyn CongestionControl>) {
        self.cc = Controller::Custom(controller);
    }

    /// STATUS (RFC 9293 §3.10.6).
    pub fn status(&self) -> Status {
        Status {
            state: self.state,
            iss: self.iss,
            snd_una: self.snd_una,
            snd_nxt: self.snd_nxt,
            snd_wnd: self.snd_wnd,
            max_snd_wnd: self.max_snd_wnd,
            irs: self.irs,
            rcv_nxt: self.rcv_nxt,
            rcv_wnd: self.rcv_wnd(),
            recv_buffer: self.recv_buffer_size(),
            send_buffer: self.send_buf.capacity(),
            send_queued: self.send_buf.len(),
            recv_queued: self.recv_len(),
            recv_pinned: self.chunk_figures().0,
            recv_compactions: self.chunk_figures().1,
            urgent_pending: self.urgent_pending(),
            effective_mss: self.effective_mss(),
            srtt: self.rtt.srtt(),
            rttvar: self.rtt.rttvar(),
            rto: self.rtt.rto().get(),
            snd_wscale: if self.wscale_ok { Some(self.snd_wscale.shift()) } else { None },
            rcv_wscale: if self.wscale_ok { Some(self.rcv_wscale.shift()) } else { None },
            cwnd: self.cc.get().window(),
            ssthresh: self.cc.get().ssthresh(),
            congestion: self.cc.algorithm(),
            consecutive_retransmissions: u32::from(self.consecutive_retransmissions),
            total_retransmissions: self.counters().retransmission_timeouts,
            timestamps: self.ts.is_on(),
            sack: self.sack_ok,
        }
    }

    /// Statistics in the manner of Linux's `TCP_INFO`: see [`TcpInfo`] for each figure.
    pub fn info(&self) -> TcpInfo {
        let status = self.status();
        let counters = self.counters();
        let fin = self.fin_seq();
        let syn_acked = u64::from(self.syn_acked);
        let fin_acked = u64::from(fin.is_some_and(|fin| self.snd_una.after(fin)));
        let sent_offset =
            (u64::from(self.snd_una_laps) << 32) | u64::from(self.snd_una.since(self.iss));
        let bytes_acked = sent_offset.saturating_sub(syn_acked + fin_acked);
        // Sequence space in flight, less a SYN or FIN in it: data octets sent once so far.
        let syn_in_flight = u32::from(!self.syn_acked && self.snd_nxt.after(self.iss));
        let fin_in_flight =
            u32::from(fin.is_some_and(|fin| self.snd_nxt.after(fin) && !self.snd_una.after(fin)));
        let in_flight =
            self.snd_nxt.since(self.snd_una).saturating_sub(syn_in_flight + fin_in_flight);
        let bytes_received = if self.have_irs {
            let offset =
                (u64::from(self.rcv_nxt_laps) << 32) | u64::from(self.rcv_nxt.since(self.irs));
            let fin_in =
                self.state.has_peer_finished() || self.close_reason == Some(CloseReason::Orderly);
            offset.saturating_sub(1 + u64::from(fin_in))
        } else {
            0
        };
        TcpInfo {
            state: status.state,
            srtt: status.srtt,
            rttvar: status.rttvar,
            rto: status.rto,
            cwnd: status.cwnd,
            ssthresh: status.ssthresh,
            mss: status.effective_mss,
            snd_wnd: status.snd_wnd,
            rcv_wnd: status.rcv_wnd,
            bytes_acked,
            bytes_received,
            bytes_sent: bytes_acked + u64::from(in_flight) + counters.retransmitted_octets,
            bytes_retransmitted: counters.retransmitted_octets,
            retransmitted_segments: counters.retransmitted_segments,
            fast_retransmits: counters.fast_retransmitted_segments,
            other_retransmits: counters.retransmitted_segments
                - counters.fast_retransmitted_segments,
            consecutive_retransmissions: status.consecutive_retransmissions,
            rto_count: counters.retransmission_timeouts,
            loss_probes: counters.loss_probes,
            recoveries: counters.sack_recoveries + counters.fast_recoveries,
            sack_blocks_received: counters.sack_blocks_received,
            dsacks_received: counters.dsacks_received,
            spurious_retransmissions: counters.spurious_retransmissions,
            send_queued: status.send_queued,
            recv_queued: status.recv_queued,
            sack: status.sack,
            timestamps: status.timestamps,
        }
    }

    /// Counts a segment sent again carrying `data_len` octets, by whether a fast recovery
    /// is repairing it (for [`info`](Self::info)).
    pub(super) fn count_resent(&mut self, data_len: usize) {
        let fast = self.in_fast_recovery || self.in_fast_sack_recovery();
        let counters = self.count();
        counters.retransmitted_segments += 1;
        counters.retransmitted_octets += data_len as u64;
        counters.fast_retransmitted_segments += u64::from(fast);
    }

    /// Moves SND.UNA to `ack` (after it), counting the laps of the sequence space since the
    /// ISS for [`info`](Self::info)'s octet totals.
    pub(super) fn set_snd_una(&mut self, ack: SeqNum) {
        if ack.since(self.iss) < self.snd_una.since(self.iss) {
            self.snd_una_laps = self.snd_una_laps.wrapping_add(1);
        }
        self.snd_una = ack;
    }

    /// Moves RCV.NXT ahead by `octets`, counting the laps of the sequence space since the IRS.
    pub(super) fn advance_rcv_nxt(&mut self, octets: u32) {
        let before = self.rcv_nxt.since(self.irs);
        self.rcv_nxt += octets;
        if self.rcv_nxt.since(self.irs) < before {
            self.rcv_nxt_laps = self.rcv_nxt_laps.wrapping_add(1);
        }
    }

    /// The current state.
    pub const fn state(&self) -> State {
        self.state
    }

    /// The local address and port.
    pub const fn local(&self) -> SocketAddr {
        SocketAddr::new(self.local_ip, self.local_port)
    }

    /// The remote address and port, once known.
    pub const fn remote(&self) -> Option<SocketAddr> {
        if self.remote_known { Some(self.last_remote()) } else { None }
    }

    /// Whether the 4-tuple `last_remote()` → `local()` is `remote_ip`:`remote_port` →
    /// `local_ip`:`local_port`: the endpoint's check of the connection a segment went to last,
    /// on the fields themselves rather than on addresses built from them.
    pub(crate) fn has_tuple(
        &self,
        local_ip: IpAddr,
        local_port: u16,
        remote_ip: IpAddr,
        remote_port: u16,
    ) -> bool {
        self.local_port == local_port
            && self.remote_port == remote_port
            && self.local_ip == local_ip
            && self.remote_ip == remote_ip
    }

    /// The last remote address this connection had, even after a return to LISTEN forgot
    /// it (the port is 0 if it never had one).
    pub(crate) const fn last_remote(&self) -> SocketAddr {
        SocketAddr::new(self.remote_ip, self.remote_port)
    }

    fn set_remote(&mut self, remote: SocketAddr) {
        self.remote_ip = remote.ip();
        self.remote_port = remote.port();
        self.remote_known = true;
        self.pseudo_addrs = PseudoAddrs::new(self.local_ip, self.remote_ip, PROTOCOL_TCP);
    }

    /// Takes over the send and receive buffer storage of `spare`, a connection that ended,
    /// where this one has not allocated its own yet (see [`Ring::adopt`]): the reference
    /// [`renew`](Self::renew) is tested against (the endpoint renews an ended TCB in place).
    #[cfg(test)]
    pub(crate) fn adopt_buffers(&mut self, spare: Self) {
        self.send_buf.adopt(spare.send_buf);
        self.recv_buf.adopt(spare.recv_buf);
        // CUBIC's state allocation, for this connection's controller to reuse.
        if let (Controller::Cubic(mine), Controller::Cubic(theirs)) = (&mut self.cc, spare.cc) {
            mine.adopt_allocation(theirs);
        }
        // The event queue's allocation too (its events were all collected), unless this
        // connection queued some already.
        if self.events.is_empty() {
            let mut events = spare.events;
            events.clear();
            self.events = events;
        }
    }

    /// Received octets the application can still read: none once it closed its reading side
    /// or the connection ended in error (RFC 9293 §3.10.7.4: a reset flushes the queues).
    pub(crate) fn unread_len(&self) -> usize {
        let ended_in_error = matches!(self.close_reason, Some(CloseReason::Error(_)));
        if self.read_closed || ended_in_error { 0 } else { self.recv_len() }
    }

    /// How the connection ended, once it has.
    pub const fn close_reason(&self) -> Option<CloseReason> {
        self.close_reason
    }

    /// Drop and misbehaviour counters.
    pub fn counters(&self) -> &Counters {
        static NOTHING_COUNTED: Counters = Counters::ZERO;
        self.rare.as_deref().map_or(&NOTHING_COUNTED, |rare| &rare.counters)
    }

    /// The counters, to count something.
    fn count(&mut self) -> &mut Counters {
        &mut self.rare_mut().counters
    }

    /// The rarely used part of the TCB, allocating it if this is the first use.
    fn rare_mut(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(new_rare)
    }

    fn snd_up(&self) -> Option<SeqNum> {
        self.rare.as_ref().and_then(|rare| rare.snd_up)
    }

    fn rcv_up(&self) -> Option<SeqNum> {
        self.rare.as_ref().and_then(|rare| rare.rcv_up)
    }

    /// Where the peer's FIN sits, when it arrived beyond a hole (rare, so kept in `Rare`).
    fn rcv_fin_at(&self) -> Option<SeqNum> {
        self.rare.as_ref().and_then(|rare| rare.rcv_fin_at)
    }

    /// Sets or clears where the peer's FIN sits; clearing never allocates.
    fn set_rcv_fin_at(&mut self, at: Option<SeqNum>) {
        if at.is_some() || self.rare.is_some() {
            self.rare_mut().rcv_fin_at = at;
        }
    }

    /// Clears (or sets) when the segment at SND.UNA was first retransmitted; clearing never
    /// allocates.
    fn set_first_retransmission_at(&mut self, at: Option<Instant>) {
        if at.is_some() || self.rare.is_some() {
            self.rare_mut().first_retransmission_at = at;
        }
    }

    fn path_mtu(&self) -> Option<u16> {
        self.rare.as_ref().and_then(|rare| rare.path_mtu)
    }

    /// Forgets urgent-data state (both directions) without allocating.
    fn clear_urgent(&mut self) {
        if let Some(rare) = self.rare.as_mut() {
            rare.snd_up = None;
            rare.rcv_up = None;
        }
    }

    /// Octets of urgent data not yet read (MUST-33): from the next octet `recv` returns up to
    /// the peer's urgent pointer (which may lie beyond what has arrived so far).
    pub fn urgent_pending(&self) -> u32 {
        match self.rcv_up() {
            Some(up) => {
                let read_seq = self.read_seq();
                if up.after(read_seq) { up.since(read_seq) } else { 0 }
            }
            None => 0,
        }
    }

    /// The sequence number of the first received octet the application has not read yet.
    fn read_seq(&self) -> SeqNum {
        self.rcv_nxt + 0u32.wrapping_sub(len_u32(self.recv_len()))
    }

    /// The application read data: once it has read past RCV.UP, all urgent data is consumed
    /// and RCV.UP is forgotten. Kept, it would be compared with ever later sequence numbers
    /// and, 2^31 octets on, look far ahead of them again: billions of urgent octets that do
    /// not exist, and no signal for the next real pointer (MUST-32, MUST-33).
    fn on_urgent_read(&mut self) {
        let read_seq = self.read_seq();
        if let Some(rare) = self.rare.as_mut()
            && rare.rcv_up.is_some_and(|up| !up.after(read_seq))
        {
            rare.rcv_up = None;
        }
    }

    /// The next event for the user, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The earliest instant at which [`Connection::handle_timeout`] has work to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        // `Instant::MAX` marks an unarmed timer and is never the minimum of an armed one:
        // the minimum of all, then MAX as none (cheaper than filtering first). A plain fold
        // over the fixed table: the endpoint asks after every call into the connection.
        let table = self.timers.iter().fold(Instant::MAX, |earliest, &at| earliest.min(at));
        match self.scoreboard.as_ref().and_then(|board| board.next_deadline()) {
            Some(recovery) => Some(table.min(recovery)),
            None => (table != Instant::MAX).then_some(table),
        }
    }

    /// Runs every timer due at `now` (RFC 9293 §3.10.8). Harmless when called early or twice.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.advance_time(now);
        for timer in Timer::ALL {
            let due = self.timer(timer).is_some_and(|at| at <= now);
            if due {
                self.set_timer(timer, None);
                self.on_timer(now, timer);
            }
        }
    }

    fn on_timer(&mut self, now: Instant, timer: Timer) {
        match timer {
            Timer::Retransmit => self.on_retransmit_timeout(now),
            Timer::Persist => {
                // MUST-36: probe a zero window; SHLD-30: back off exponentially.
                self.probe_pending = true;
                self.persist_backoff = self.persist_backoff.saturating_add(1);
            }
            Timer::TimeWait => self.apply(now, Stimulus::TimeWaitTimeout),
            Timer::FinWait2 => self.apply(now, Stimulus::FinWait2Timeout),
            Timer::User => {
                if self.snd_una != self.snd_nxt {
                    // Progress since the timer was armed (an ACK, an answered zero-window
                    // probe) moves the deadline rather than ending the connection.
                    let deadline = self.user_timeout().map(|timeout| self.progress_at + timeout);
                    match deadline {
                        Some(at) if at > now => self.set_timer(Timer::User, Some(at)),
                        Some(_) | None => self.apply(now, Stimulus::TimedOut),
                    }
                }
            }
            Timer::DelayedAck => self.ack_now(),
            Timer::KeepAlive => self.on_keepalive_timeout(now),
            Timer::Reorder => self.on_reorder_timeout(now),
            Timer::LossProbe => self.on_loss_probe_timeout(now),
        }
    }

    /// RFC 6298 rule 5.4–5.6 and RFC 9293 §3.8.3 (R1, R2).
    fn on_retransmit_timeout(&mut self, now: Instant) {
        if self.snd_una == self.snd_nxt {
            return;
        }
        if self.is_probing_zero_window() {
            self.on_zero_window_probe_timeout(now);
            return;
        }
        let syn_outstanding = !self.syn_acked;
        let r2 = if syn_outstanding { self.config.r2_syn } else { self.r2_data() };
        // A zero-window probe the peer answered is no sign of a dead path (MUST-37).
        let answered = core::mem::take(&mut self.probe_answered);
        // MUST-20 counts transmissions of the *same* segment: R2 is measured from the first
        // retransmission of the segment now at SND.UNA, and needs at least R1 of them, so a
        // backed-off RTO after some progress cannot end the connection after one try.
        let first_retransmission = *self.rare_mut().first_retransmission_at.get_or_insert(now);
        let given_up = r2.is_some_and(|r2| {
            now.saturating_duration_since(first_retransmission) >= r2
                && u32::from(self.consecutive_retransmissions) >= self.config.r1_retransmissions
        });
        if given_up && !answered {
            // MUST-20: at R2, close the connection.
            self.apply(now, Stimulus::TimedOut);
            return;
        }
        self.consecutive_retransmissions = self.consecutive_retransmissions.saturating_add(1);
        self.count().retransmission_timeouts += 1;
        if u32::from(self.consecutive_retransmissions) == self.config.r1_retransmissions {
            // MUST-20 / SHLD-9: R1 reached; tell the user (and, through them, IP).
            self.push_event(Event::RetransmissionThreshold);
        }
        if syn_outstanding {
            self.handshake_retransmitted = true;
        }
        // Before the duplicate-ACK count is reset: it tells a black hole from random loss.
        self.on_rto_path_mtu();
        let flight = self.snd_nxt.since(self.snd_una);
        self.on_congestion_event(CongestionEvent::Timeout { flight });
        if !self.in_fast_recovery {
            self.on_window_reduction(true);
        }
        // A timeout during NewReno fast recovery (RFC 6582 §4's Impatient fallback) continues
        // that recovery's episode rather than opening one of its own: an echo of a partial
        // ACK's retransmission of this same segment would otherwise prove "spurious" a
        // timeout whose recovery was needed, and undo the fast retransmit's reduction too.
        self.in_fast_recovery = false;
        self.dup_acks = 0;
        self.recover = self.snd_nxt;
        self.rtt.on_backoff();
        // Karn (MUST-18): nothing sent before this retransmission may be timed.
        self.rtt_probe = None;
        self.retransmit_pending = true;
        if let Some(board) = self.scoreboard.as_mut() {
            // RFC 6675 §5.1: everything not SACKed goes again, paced by cwnd and pipe.
            board.on_timeout(self.snd_una, self.snd_nxt);
            self.set_timer(Timer::Reorder, None);
            self.set_timer(Timer::LossProbe, None);
        } else {
            // RFC 5681 §3.1 / RFC 6582 §3.2 step 5 fallback: without SACK nothing tells which
            // segments arrived, so the whole flight goes again from SND.UNA (go-back-N),
            // paced by cwnd as it slow-starts from the loss window. Resending only the next
            // segment per ACK instead kept one segment in flight: one segment per round trip
            // for as many round trips as the flight had segments.
            self.start_resend();
        }
        self.set_timer(Timer::Retransmit, Some(now + self.rtt.rto().get()));
    }

    /// Whether what is outstanding lies beyond a window the peer closed: our SYN is
    /// acknowledged and the peer's window is zero. A timeout then calls for a window probe
    /// (RFC 9293 §3.8.6.1), not a retransmission: the receiver dropped the octets because it
    /// had no room, which says nothing about the path.
    fn is_probing_zero_window(&self) -> bool {
        self.snd_wnd == 0 && self.syn_acked && self.state.is_synchronized()
    }

    /// The retransmission timer expired while the peer's window is zero: probe it (MUST-36)
    /// with the persist backoff (SHLD-30). Probing is not congestion: no congestion event and
    /// no RTO backoff, so the connection resumes at full speed when the window opens. An
    /// answered probe restarts the give-up clock (MUST-37, SHLD-17: "SHOULD NOT close the
    /// connection as long as the receiving host continues to send acknowledgments in response
    /// to the probe segments"); only R1 *unanswered* probes over R2 end the connection
    /// (MUST-20), and only they are reported as R1.
    fn on_zero_window_probe_timeout(&mut self, now: Instant) {
        if core::mem::take(&mut self.probe_answered) {
            self.consecutive_retransmissions = 0;
            self.set_first_retransmission_at(None);
        } else {
            let first_unanswered = *self.rare_mut().first_retransmission_at.get_or_insert(now);
            let r2 = self.r2_data();
            let given_up = r2.is_some_and(|r2| {
                now.saturating_duration_since(first_unanswered) >= r2
                    && u32::from(self.consecutive_retransmissions) >= self.config.r1_retransmissions
            });
            if given_up {
                self.apply(now, Stimulus::TimedOut);
                return;
            }
            self.consecutive_retransmissions = self.consecutive_retransmissions.saturating_add(1);
            if u32::from(self.consecutive_retransmissions) == self.config.r1_retransmissions {
                self.push_event(Event::RetransmissionThreshold);
            }
        }
        self.persist_backoff = self.persist_backoff.saturating_add(1);
        self.probe_pending = true;
        // Karn (MUST-18): the probed octet goes again, so it cannot be timed.
        self.rtt_probe = None;
        let interval = self.persist_interval();
        self.set_timer(Timer::Retransmit, Some(now + interval));
    }

    /// The peer's window went from zero to open while octets we sent past its edge are still
    /// unacknowledged: it dropped them for want of room, so send them again at once, and the
    /// rest up to the old SND.NXT as cwnd allows (as after an RTO, but without its congestion
    /// response: nothing was lost to congestion). Waiting for the timer instead stalled a
    /// connection for the whole backed-off RTO (up to 120 s) after a long zero window.
    fn on_window_reopened(&mut self, now: Instant) {
        if self.snd_una == self.snd_nxt || !self.syn_acked {
            return;
        }
        self.retransmit_pending = true;
        self.start_resend();
        self.probe_pending = false;
        self.probe_answered = false;
        self.consecutive_retransmissions = 0;
        self.set_first_retransmission_at(None);
        self.rtt_probe = None;
        self.set_timer(Timer::Retransmit, Some(now + self.rtt.rto().get()));
    }

    /// The wait before the next zero-window probe: one RTO, doubled per probe sent (SHLD-29,
    /// SHLD-30), at most the largest RTO.
    fn persist_interval(&self) -> Duration {
        let shift = u32::from(self.persist_backoff.min(16));
        self.rtt.rto().get().saturating_mul(1 << shift).min(self.config.rto_max)
    }

    /// Asks the transition table and performs the entry actions of the new state, through
    /// [`apply_in`](Self::apply_in): the only place `self.state` changes (apart from
    /// `renew`, which makes a fresh TCB as `new` does).
    // In line (to a call of `apply_in`): the stimulus's column in the table is then a
    // constant at most call sites, which present a known stimulus.
    #[inline(always)]
    fn apply(&mut self, now: Instant, on: Stimulus) {
        self.apply_in(now, on, on.column());
    }

    /// [`apply`](Self::apply) of `on`, whose column in the table is `column`.
    #[inline(never)]
    fn apply_in(&mut self, now: Instant, on: Stimulus, column: usize) {
        let from = self.state;
        let Some(to) = next_state(from, column) else {
            // A handler presented a stimulus the table forbids: a bug in this crate.
            debug_assert!(false, "{}", crate::state::IllegalTransition { from, on });
            self.count().illegal_transitions += 1;
            return;
        };
        if to == from {
            self.on_self_loop(now, on);
            return;
        }
        self.state = to;
        if self.config.state_events {
            self.push_event(Event::StateChanged { from, to });
        }
        self.on_enter(now, from, on);
    }

    fn on_self_loop(&mut self, now: Instant, on: Stimulus) {
        if self.state == State::TimeWait && on == Stimulus::Fin {
            // `Verdict::AckFin` (§3.10.7.4 steps 5 and 8): the peer's FIN again is
            // acknowledged again and the 2MSL timeout restarts.
            self.ack_now();
            self.arm_time_wait(now);
        }
    }

    fn on_enter(&mut self, now: Instant, from: State, on: Stimulus) {
        match self.state {
            State::Closed => self.on_closed(from, on),
            State::Listen => {
                // MUST-11: a passive connection reset in SYN-RECEIVED goes back to LISTEN with
                // a fresh TCB. (From CLOSED, `open_passive` has just reset it.)
                if from != State::Closed {
                    self.reset_tcb();
                }
                self.passive = true;
            }
            State::SynSent | State::SynReceived => {
                self.progress_at = now;
            }
            State::Established => {
                if self.handshake_retransmitted {
                    // RFC 6298 rule 5.7.
                    self.rtt.on_handshake_retransmitted();
                }
                if let Some(algorithm) = self.cc.algorithm() {
                    // RFC 6928: the initial window from the MSS the handshake settled on.
                    let mss = u32::from(self.effective_mss());
                    self.cc.restart_built_in(algorithm, mss);
                }
                self.push_event(Event::Connected);
            }
            State::FinWait2 => {
                if self.read_closed {
                    self.arm_fin_wait_2(now);
                }
            }
            State::TimeWait => {
                self.clear_timers();
                self.arm_time_wait(now);
            }
            State::FinWait1 | State::CloseWait | State::Closing | State::LastAck => {}
        }
        if matches!(on, Stimulus::Fin | Stimulus::FinAckingOurFin) {
            self.push_event(Event::PeerClosed);
        }
    }

    fn on_closed(&mut self, from: State, on: Stimulus) {
        let reason = match on {
            Stimulus::Rst { .. } => {
                if matches!(from, State::SynSent | State::SynReceived) {
                    CloseReason::Error(ConnectionError::Refused)
                } else {
                    CloseReason::Error(ConnectionError::Reset)
                }
            }
            Stimulus::Abort | Stimulus::DataAfterClose => {
                CloseReason::Error(ConnectionError::Aborted)
            }
            Stimulus::TimedOut | Stimulus::FinWait2Timeout => {
                CloseReason::Error(ConnectionError::TimedOut)
            }
            Stimulus::HardError => CloseReason::Error(ConnectionError::Unreachable),
            Stimulus::PassiveOpen
            | Stimulus::ActiveOpen
            | Stimulus::Close
            | Stimulus::Syn
            | Stimulus::SynAck
            | Stimulus::SynInWindow { .. }
            | Stimulus::AckOfSyn
            | Stimulus::AckOfFin
            | Stimulus::Fin
            | Stimulus::FinAckingOurFin
            | Stimulus::TimeWaitTimeout
            | Stimulus::CookieAck => CloseReason::Orderly,
        };
        self.clear_timers();
        self.retransmit_pending = false;
        self.clear_resegment();
        self.probe_pending = false;
        self.ack_pending = false;
        self.fin_queued = false;
        self.send_buf.discard(self.send_buf.len());
        self.assembler = None;
        self.forget_parked_chunks();
        self.set_rcv_fin_at(None);
        if let CloseReason::Error(_) = reason {
            // An abnormal end flushes the queues (§3.10.7.4 step 2, §3.10.5); after an
            // orderly end the data already received stays readable.
            self.recv_buf.discard(self.recv_buf.len());
            self.clear_chunks(false);
        }
        self.close_reason = Some(reason);
        self.push_event(Event::Closed(reason));
    }

    fn closed_error(&self) -> CallError {
        match self.close_reason {
            Some(CloseReason::Error(error)) => CallError::Ended(error),
            Some(CloseReason::Orderly) | None => CallError::NotOpen,
        }
    }

    /// Fresh sequence variables and empty buffers (OPEN, or a return to LISTEN).
    fn reset_tcb(&mut self) {
        self.remote_known = false;
        self.read_closed = false;
        self.close_reason = None;
        self.snd_wnd = 0;
        self.max_snd_wnd = 0;
        self.fin_queued = false;
        self.send_buf.discard(self.send_buf.len());
        self.write_blocked = false;
        self.have_irs = false;
        self.clear_urgent();
        self.recv_buf.discard(self.recv_buf.len());
        self.clear_chunks(true);
        self.reset_autotune();
        self.assembler = None;
        self.set_rcv_fin_at(None);
        self.rcv_adv_edge = None;
        self.unacked_octets = 0;
        self.peer_mss = default_send_mss(self.local());
        self.wscale_ok = false;
        self.snd_wscale = WindowScale::NONE;
        self.ts.reset();
        self.refresh_snd_mss();
        self.sack_ok = false;
        self.scoreboard = None;
        self.clear_timers();
        self.rtt =
            RttEstimator::new(self.config.rto_initial, self.config.rto_min, self.config.rto_max);
        self.rtt_probe = None;
        self.consecutive_retransmissions = 0;
        self.handshake_retransmitted = false;
        self.dup_acks = 0;
        self.in_fast_recovery = false;
        self.last_send_at = None;
        self.retransmit_pending = false;
        self.clear_resegment();
        self.probe_pending = false;
        self.persist_backoff = 0;
        self.ack_pending = false;
    }

    /// Out of line: both openings (`start_active`, a SYN at a listener) share one copy in
    /// the hot code rather than each inlining its own.
    #[inline(never)]
    fn choose_iss(&mut self, now: Instant, remote: SocketAddr) {
        let (mut iss, ts_offset) = initial_numbers(&self.config.isn, now, self.local(), remote);
        self.ts.set_offset(ts_offset);
        if let Some(floor) = self.rare.as_ref().and_then(|rare| rare.iss_after)
            && !iss.after(floor)
        {
            // MAY-2 (1): a reopened 4-tuple starts above everything its TIME-WAIT incarnation
            // sent. The clock-driven ISN usually is (250 000 a second), but not after a fast
            // transfer of more than that; then start a full unscaled window past the old
            // SND.NXT, as Linux does, so no octet of ours the old peer may still hold in its
            // window is ever taken for the new incarnation's.
            iss = floor + (u32::from(u16::MAX) + 2);
        }
        self.iss = iss;
        self.snd_una = iss;
        self.snd_una_laps = 0;
        self.syn_acked = false;
        self.snd_nxt = iss;
        self.recover = iss;
        self.snd_sml = iss;
        self.send_buf_seq = iss + 1;
        self.snd_wl2 = iss;
    }

    fn advance_time(&mut self, now: Instant) -> Instant {
        // Time must not go backwards (crate docs); in release an earlier `now` counts as the
        // latest one seen.
        debug_assert!(now >= self.last_now, "time went backwards: {now} < {}", self.last_now);
        self.last_now = self.last_now.max(now);
        self.last_now
    }

    fn set_timer(&mut self, timer: Timer, at: Option<Instant>) {
        match timer.table_slot() {
            Some(index) => {
                if let Some(slot) = self.timers.get_mut(index) {
                    let at = at.unwrap_or(Instant::MAX);
                    // Only an earlier deadline can make the endpoint's filed one too late.
                    self.deadline_moved_earlier |= at < *slot;
                    *slot = at;
                }
            }
            None => {
                if let Some(board) = self.scoreboard.as_mut() {
                    let probe = timer == Timer::LossProbe;
                    if let Some(at) = at {
                        self.deadline_moved_earlier |=
                            board.deadline(probe).is_none_or(|old| at < old);
                    }
                    board.set_deadline(probe, at);
                }
            }
        }
    }

    /// Whether a timer was armed or moved earlier since the last call (and forgets it): the
    /// endpoint asks [`poll_timeout`](Self::poll_timeout) only then, or when it has no deadline
    /// of this connection filed. The scoreboard's timers go through `set_timer` too, and
    /// disarming one (or dropping the scoreboard) only moves the deadline later.
    pub(crate) fn take_earlier_deadline(&mut self) -> bool {
        core::mem::replace(&mut self.deadline_moved_earlier, false)
    }

    /// Whether [`take_earlier_deadline`](Self::take_earlier_deadline) would say yes, without
    /// forgetting it.
    pub(crate) const fn deadline_may_have_moved(&self) -> bool {
        self.deadline_moved_earlier
    }

    /// The endpoint's record of the last thing done to the connection: `true` right after
    /// [`may_transmit`](Self::may_transmit) said yes, `false` after anything else (see
    /// `transmit_checked`).
    pub(crate) fn note_transmit_check(&mut self, may_transmit: bool) {
        self.transmit_checked = may_transmit;
    }

    /// Whether the endpoint has this connection listed for its deadline to be filed
    /// (`deadline_listed`).
    pub(crate) const fn deadline_listed(&self) -> bool {
        self.deadline_listed
    }

    /// The endpoint lists (`true`) or files (`false`) this connection's deadline.
    pub(crate) fn set_deadline_listed(&mut self, listed: bool) {
        self.deadline_listed = listed;
    }

    /// The events not yet collected, oldest first; the endpoint takes them all at once and
    /// then calls [`clear_events`](Self::clear_events).
    pub(crate) fn pending_events(&self) -> &[Event] {
        self.events.as_slice()
    }

    pub(crate) fn clear_events(&mut self) {
        self.events.clear();
    }

    fn timer(&self, timer: Timer) -> Option<Instant> {
        match timer.table_slot() {
            Some(index) => self.timers.get(index).copied().filter(|&at| at != Instant::MAX),
            None => {
                self.scoreboard.as_ref().and_then(|board| board.deadline(timer == Timer::LossProbe))
            }
        }
    }

    /// Disarms every timer.
    fn clear_timers(&mut self) {
        self.timers = [Instant::MAX; Timer::COUNT];
        self.set_timer(Timer::Reorder, None);
        self.set_timer(Timer::LossProbe, None);
    }

    fn arm_time_wait(&mut self, now: Instant) {
        self.set_timer(Timer::TimeWait, Some(time_wait::expiry(now, self.config.msl)));
    }

    /// This connection as a TIME-WAIT record (`None` in any other state): what
    /// [`TimeWait::judge`] rules on for its segments, and what the endpoint keeps once the
    /// application is done with it, so both answer alike.
    pub(crate) fn time_wait_record(&self) -> Option<TimeWait> {
        if self.state != State::TimeWait {
            return None;
        }
        let snd_shift = if self.wscale_ok { self.snd_wscale } else { WindowScale::NONE };
        Some(TimeWait {
            snd_nxt: self.snd_nxt,
            rcv_nxt: self.rcv_nxt,
            // The window field our ACKs carry (`header`), scaled as negotiated.
            window: Window::saturating(self.offered_window()).to_scaled(self.rcv_shift()),
            rcv_shift: self.rcv_shift(),
            snd_shift,
            acks: self.rare.as_ref().map_or_else(AckLimiter::default, |rare| rare.challenge_acks),
            ts_recent: self.ts.recent(),
            expires: self
                .timer(Timer::TimeWait)
                .unwrap_or_else(|| time_wait::expiry(self.last_now, self.config.msl)),
        })
    }

    /// The ISS this connection picks must come after `floor`: the endpoint reopens a
    /// TIME-WAIT 4-tuple whose old incarnation sent up to `floor` (MAY-2).
    pub(crate) fn require_iss_after(&mut self, floor: SeqNum) {
        self.rare_mut().iss_after = Some(floor);
    }

    fn arm_fin_wait_2(&mut self, now: Instant) {
        if let Some(timeout) = self.config.fin_wait_2_timeout {
            self.set_timer(Timer::FinWait2, Some(now + timeout));
        }
    }

    fn push_event(&mut self, event: Event) {
        let duplicate = matches!(event, Event::Readable | Event::Writable)
            && self.events.back() == Some(&event);
        if duplicate {
            return;
        }
        if self.events.len() >= EVENT_QUEUE_LIMIT {
            self.count().events_dropped += 1;
            return;
        }
        self.events.push_back(event);
    }

    /// The window we offer: the free space of the receive buffer (not its rounding reserve),
    /// at most what the 16-bit field can say under the negotiated scale (RFC 7323 §2.3; all
    /// arithmetic in 32 bits, REC-1). Auto-tuning only adds to the buffer, so growth only
    /// moves the edge right.
    fn rcv_wnd(&self) -> u32 {
        let largest = Window::from_scaled(u16::MAX, self.rcv_shift()).get();
        let free = self.recv_free().saturating_sub(self.recv_rounding_reserve());
        len_u32(free).min(largest)
    }

    /// The window a segment is accepted into (§3.10.7.4 step 1): the one we offer now, or, if
    /// it reaches further, up to the furthest right edge we advertised, so that nothing the
    /// peer sent into a window we advertised is dropped (SHLD-14). Both lie within the receive
    /// buffer and its reserve.
    fn rcv_acceptable_window(&self) -> u32 {
        let advertised = self
            .rcv_adv_edge
            .filter(|edge| edge.after(self.rcv_nxt))
            .map_or(0, |edge| edge.since(self.rcv_nxt));
        self.rcv_wnd().max(advertised)
    }

    /// The shift our window fields use: ours once both sides agreed to scale, else none.
    fn rcv_shift(&self) -> WindowScale {
        if self.wscale_ok { self.rcv_wscale } else { WindowScale::NONE }
    }

    /// MUST-16: Eff.snd.MSS = min(SendMSS + 20, MMS_S) − TCPhdrsize − IP options, where
    /// TCPhdrsize counts the options every data segment carries: the 12 octets of timestamps
    /// once negotiated (RFC 9293 §3.7.1, RFC 7323 §3.2). A floor keeps a tiny peer MSS from
    /// making the sender loop on empty segments (PITFALLS).
    ///
    /// Asked from a dozen places (the plan, the window offered, the congestion controller's
    /// path information, ACK processing), it reads `snd_mss`, worked out when what it depends
    /// on changed; only a connection that learned a path MTU (RFC 1191, RFC 8201, RFC 4821)
    /// works it out here.
    // Out of line: inlined (even reading `snd_mss`) it made its callers larger and pushed
    // `offered_window`, then `offered_field`, out of line (callgrind, churn: +100 and +290
    // instructions a lifecycle).
    #[inline(never)]
    fn effective_mss(&self) -> u16 {
        if self.rare.as_ref().is_some_and(|rare| rare.path_mtu.is_some()) {
            return self.effective_mss_on_path();
        }
        debug_assert_eq!(self.snd_mss, self.effective_mss_at(self.config.mtu), "stale snd_mss");
        self.snd_mss
    }

    /// [`effective_mss`](Self::effective_mss) under a learned path MTU.
    #[cold]
    fn effective_mss_on_path(&self) -> u16 {
        self.effective_mss_at(self.current_mtu())
    }

    /// Eff.snd.MSS (MUST-16) when the MTU in use is `mtu`.
    fn effective_mss_at(&self, mtu: u16) -> u16 {
        let ip_header = if self.local_ip.is_ipv4() { 20 } else { 40 };
        let mms_s = mtu.saturating_sub(ip_header);
        let bound = (self.peer_mss.get().saturating_add(20)).min(mms_s);
        let tcp_header = 20 + self.options_len();
        bound.saturating_sub(tcp_header).max(Mss::MIN_USABLE.get())
    }

    /// Works `snd_mss` out again: after the peer's MSS, the timestamps option or the
    /// configuration changed (the peer's SYN, a fresh TCB, `set_timestamps`). Out of line:
    /// one copy for its few callers, each run about once per connection.
    #[inline(never)]
    pub(super) fn refresh_snd_mss(&mut self) {
        self.snd_mss = self.effective_mss_at(self.config.mtu);
    }

    /// Octets of options on every segment after the handshake: the timestamps option once
    /// negotiated (RFC 7323 §3.2: 10 octets, two NOPs to keep it word-aligned).
    fn options_len(&self) -> u16 {
        if self.ts.is_on() { 12 } else { 0 }
    }

    /// The most payload a full-sized segment from the peer carries: our MSS less the options
    /// every segment carries (so "two full-sized segments", SHLD-19, means what the peer
    /// actually sends).
    fn rcv_mss(&self) -> u16 {
        self.advertised_mss().saturating_sub(self.options_len())
    }

    /// The MSS we advertise on our SYN (MUST-67: from the MTU; MUST-65: on SYNs only).
    fn advertised_mss(&self) -> u16 {
        self.config.advertised_mss(self.local())
    }

    /// Receiver SWS avoidance (RFC 9293 §3.8.6.2.2, MUST-39): the right edge we offer moves
    /// only in steps of at least min(RCV.BUFF/2, Eff.snd.MSS); a smaller opening keeps the
    /// edge where it was (SHLD-14; `window_field` rounds the field so that it stays there).
    fn offered_window(&self) -> u32 {
        let free = self.rcv_wnd();
        let Some(edge) = self.rcv_adv_edge else { return free };
        let current = if edge.after(self.rcv_nxt) { edge.since(self.rcv_nxt) } else { 0 };
        if free <= current {
            // No opening at all (a sender's steady state): the step need not be known.
            return free;
        }
        let step = len_u32(self.recv_buffer_size() / 2).min(u32::from(self.effective_mss()));
        if free >= current.saturating_add(step.max(1)) { free } else { current }
    }

    /// The offered window in the units of our 16-bit field, rounded down (RFC 7323 §2.3).
    fn offered_field(&self) -> u16 {
        Window::saturating(self.offered_window()).to_scaled(self.rcv_shift())
    }

    /// The window field of our next segment other than a SYN: the offered window rounded
    /// down to units of 2^shift — or up, where rounding down would move the right edge the
    /// peer knows to the left (SHLD-14; RFC 7323 §2.4 describes the choice). After data whose
    /// length is no multiple of 2^shift, rounding up promises up to 2^shift − 1 octets past
    /// the edge before; the receive buffer's reserve holds them (made good again as the
    /// application reads). An application that reads nothing while the window closes can see
    /// the promises add up past the reserve (one per ACK); then the field is rounded down to
    /// what the buffer still holds instead, so the edge the peer sees retreats by less than
    /// one unit — the case RFC 7323 §2.4 foresees, which a sender must cope with (RFC 9293
    /// §3.8.6) — rather than offer room that is not there: the window closes to zero and the
    /// peer probes it, instead of resending into it until R2 ends the connection. Octets up to
    /// the furthest edge ever advertised still fit the buffer and are still taken.
    fn window_field(&self) -> u16 {
        let shift = self.rcv_shift();
        let field = self.offered_field();
        let Some(edge) = self.rcv_adv_edge else { return field };
        let known = if edge.after(self.rcv_nxt) { edge.since(self.rcv_nxt) } else { 0 };
        if Window::from_scaled(field, shift).get() >= known {
            return field;
        }
        let unit = 1u32 << shift.shift();
        let rounded_up = known.div_ceil(unit);
        // What the buffer can still take past RCV.NXT, its reserve included.
        let room = len_u32(self.recv_room());
        let affordable =
            if rounded_up.saturating_mul(unit) <= room { rounded_up } else { room / unit };
        u16::try_from(affordable).unwrap_or(u16::MAX).max(field)
    }

    /// The window as the peer will read it from our next window field.
    fn advertised_window(&self) -> u32 {
        Window::from_scaled(self.window_field(), self.rcv_shift()).get()
    }

    /// The user read data, so the window may have opened: send a window update when the edge
    /// we may offer (receiver SWS avoidance passed, rounded down) moved past the one the peer
    /// knows (RFC 1122 §4.2.3.3). Rounding up alone is no news worth a segment.
    fn on_data_read(&mut self) {
        if !self.state.is_synchronized() || self.state.has_peer_finished() {
            return;
        }
        let edge = self.rcv_nxt + Window::from_scaled(self.offered_field(), self.rcv_shift()).get();
        if self.rcv_adv_edge.is_some_and(|known| edge.after(known)) {
            self.ack_now();
        }
    }

    /// A segment carrying our ACK and window left: remember the furthest right edge we have
    /// advertised (data sent into it is accepted as far as the buffer holds it), and nothing
    /// is owed any more (MUST-58: this segment carried the aggregated ACK).
    /// `window_field` is the field the segment carried when it was no SYN (then computing it
    /// again would give the same: nothing since the header changed what it depends on).
    fn on_ack_sent(&mut self, window_field: Option<u16>) {
        if self.have_irs {
            // RFC 7323 §4.3 (1): Last.ACK.sent.
            self.ts.on_ack_sent(self.rcv_nxt);
            let advertised = window_field.map_or_else(
                || self.advertised_window(),
                |field| Window::from_scaled(field, self.rcv_shift()).get(),
            );
            debug_assert_eq!(advertised, self.advertised_window(), "stale window field");
            let edge = self.rcv_nxt + advertised;
            let furthest = self.rcv_adv_edge.filter(|known| known.after(edge)).unwrap_or(edge);
            self.rcv_adv_edge = Some(furthest);
        }
        self.ack_pending = false;
        self.unacked_octets = 0;
        self.set_timer(Timer::DelayedAck, None);
        self.on_sack_sent();
    }

    /// An ACK must go out at the next `poll_transmit`.
    fn ack_now(&mut self) {
        self.ack_pending = true;
    }

    /// In-order data arrived, `written` new octets of one segment: ACK it within the
    /// delayed-ACK time (SHLD-18, MUST-40), or at once once two full-sized segments' worth is
    /// unacknowledged (SHLD-19).
    ///
    /// A segment longer than a full-sized one can only be several wire segments coalesced on
    /// the way up (GRO: a TUN with a virtio-net header, UDP GRO), so it counts as
    /// ⌈len / MSS⌉ full-sized segments: the ACK clock of SHLD-19 (RFC 5681 §4.2, "at least
    /// every second full-sized segment") then runs per wire segment, and such a segment is
    /// acknowledged at once, as its second wire segment would have been.
    fn ack_soon(&mut self, now: Instant, written: u32) {
        let Some(delay) = self.config.delayed_ack else {
            // Every segment of data is acknowledged at once: the count of octets not yet
            // acknowledged (read only to decide whether a delayed ACK may wait) is not kept.
            self.ack_now();
            return;
        };
        let mss = u32::from(self.rcv_mss());
        let counted =
            if written > mss { written.div_ceil(mss.max(1)).saturating_mul(mss) } else { written };
        self.unacked_octets = self.unacked_octets.saturating_add(counted);
        let two_segments = 2 * mss;
        if self.unacked_octets < two_segments {
            if self.timer(Timer::DelayedAck).is_none() {
                // MUST-40: less than 0.5 s.
                let delay = delay.min(MAX_ACK_DELAY);
                self.set_timer(Timer::DelayedAck, Some(now + delay));
            }
        } else {
            self.ack_now();
        }
    }

    /// RFC 5961 §7: a challenge ACK, unless this connection already sent its quota in the
    /// current interval.
    fn send_challenge_ack(&mut self, now: Instant) {
        let (interval, limit) =
            (self.config.challenge_ack_interval, self.config.challenge_ack_limit);
        if self.rare_mut().challenge_acks.allow(now, interval, limit) {
            self.count().challenge_acks += 1;
            self.ack_now();
        } else {
            self.count().challenge_acks_suppressed += 1;
        }
    }

    /// R2 for data segments: the application's for this connection, else the configuration's.
    fn r2_data(&self) -> Option<Duration> {
        self.rare.as_ref().and_then(|rare| rare.r2_data_override).unwrap_or(self.config.r2_data)
    }

    /// The user timeout: the application's for this connection, else the configuration's.
    fn user_timeout(&self) -> Option<Duration> {
        let chosen = self.rare.as_ref().and_then(|rare| rare.user_timeout_override);
        chosen.unwrap_or(self.config.user_timeout)
    }

    /// The keep-alive settings in force: the application's, else the configuration's.
    fn keepalive(&self) -> Option<KeepAlive> {
        self.rare.as_ref().and_then(|rare| rare.keepalive_override).unwrap_or(self.config.keepalive)
    }

    /// Keep-alive applies to an open connection with nothing outstanding (MUST-26): the first
    /// probe after `idle` without hearing from the peer, the next ones every `interval`.
    ///
    /// Called after every segment in and most out. With keep-alive off in the configuration
    /// and never switched on for this connection (no `rare` part: `set_keepalive` makes one
    /// for any setting but the configuration's), the timer was never armed (only this
    /// function arms it, and `renew` clears it with the `rare` part): nothing to do, decided
    /// in line.
    #[inline]
    fn arm_keepalive(&mut self) {
        if self.rare.is_none() && self.config.keepalive.is_none() {
            debug_assert!(self.timer(Timer::KeepAlive).is_none());
            return;
        }
        self.rearm_keepalive();
    }

    /// [`arm_keepalive`](Self::arm_keepalive) when keep-alive may be on.
    #[inline(never)]
    fn rearm_keepalive(&mut self) {
        let idle_connection = matches!(self.state, State::Established | State::CloseWait)
            && self.snd_una == self.snd_nxt;
        if !idle_connection {
            // Data in flight (every poll of a bulk sender): no keep-alive, without looking up
            // the settings.
            self.set_timer(Timer::KeepAlive, None);
            return;
        }
        let deadline = match self.keepalive() {
            Some(keepalive) => {
                let silence = keepalive.idle.saturating_add(
                    keepalive.interval.saturating_mul(u32::from(self.keepalive_probes_sent)),
                );
                Some(self.last_recv_at + silence)
            }
            None => None,
        };
        self.set_timer(Timer::KeepAlive, deadline);
    }

    fn on_keepalive_timeout(&mut self, now: Instant) {
        let Some(keepalive) = self.keepalive() else { return };
        let idle_connection = matches!(self.state, State::Established | State::CloseWait)
            && self.snd_una == self.snd_nxt;
        if !idle_connection {
            return;
        }
        if u32::from(self.keepalive_probes_sent) >= keepalive.probes.min(u32::from(u16::MAX)) {
            // Many unanswered probes, never one (MUST-29): the peer is gone.
            self.apply(now, Stimulus::TimedOut);
            return;
        }
        self.keepalive_probes_sent = self.keepalive_probes_sent.saturating_add(1);
        self.keepalive_probe_pending = true;
        self.arm_keepalive();
    }

    /// Tells the congestion controller, with what the connection knows of the path.
    fn on_congestion_event(&mut self, event: CongestionEvent) {
        self.on_congestion_event_sampled(event, None);
    }

    /// Tells the congestion controller of an event whose ACK gave the RTT sample `latest_rtt`.
    /// Called before SND.UNA moves: the ACK's own edge is SND.UNA plus what it acknowledged.
    fn on_congestion_event_sampled(
        &mut self,
        event: CongestionEvent,
        latest_rtt: Option<Duration>,
    ) {
        let snd_una = match event {
            CongestionEvent::Ack { acked } | CongestionEvent::PartialAck { acked } => {
                self.snd_una + acked
            }
            CongestionEvent::RecoveryEnd { flight } => self.snd_nxt + flight.wrapping_neg(),
            CongestionEvent::FastRetransmit { .. }
            | CongestionEvent::SackRecovery { .. }
            | CongestionEvent::RecoveryDupAck
            | CongestionEvent::Timeout { .. }
            | CongestionEvent::IdleRestart
            | CongestionEvent::Undo { .. } => self.snd_una,
        };
        let mut path = PathInfo::new(u32::from(self.effective_mss()), self.last_now);
        path.latest_rtt = latest_rtt;
        path.srtt = self.rtt.srtt();
        path.snd_una = snd_una;
        path.snd_nxt = self.snd_nxt;
        path.cwnd_limited = self.cwnd_limited;
        self.cc.get_mut().on_event(event, &path);
    }

    /// Queues a control reply, keeping the first if one is already waiting.
    fn queue_reply(&mut self, reply: Reply) {
        let rare = self.rare_mut();
        if rare.reply.is_some() {
            rare.counters.replies_dropped += 1;
        } else {
            rare.reply = Some(reply);
        }
    }

    /// Whether the send side has anything unsent: data, or our FIN.
    fn fin_seq(&self) -> Option<SeqNum> {
        self.fin_queued.then(|| self.send_buf_seq + len_u32(self.send_buf.len()))
    }

    /// RTO rules 5.1–5.3 after SND.UNA or SND.NXT moved.
    fn update_retransmit_timer(&mut self, now: Instant, acked_new: bool) {
        if self.snd_una == self.snd_nxt {
            // 5.2: all outstanding data acknowledged.
            self.set_timer(Timer::Retransmit, None);
            self.set_timer(Timer::User, None);
        } else if acked_new || self.timer(Timer::Retransmit).is_none() {
            // 5.3 / 5.1.
            // `now + rto()` in the microseconds the estimator keeps (saturating alike).
            let rto = u64::from(self.rtt.rto_micros());
            self.set_timer(Timer::Retransmit, Some(now.saturating_add_micros(rto)));
            if let Some(timeout) = self.user_timeout() {
                self.set_timer(Timer::User, Some(self.progress_at + timeout));
            }
        }
        self.arm_loss_probe(now);
    }
}

/// [`Connection::rare_mut`]'s first use: out of line, so that making the part is not copied
/// into every use of a counter or rare field on the segment paths.
#[cold]
#[inline(never)]
fn new_rare() -> Box<Rare> {
    Box::default()
}

/// MUST-15: without an MSS option, assume 536 (IPv4) or 1220 (IPv6).
const fn default_send_mss(local: SocketAddr) -> Mss {
    match local {
        SocketAddr::V4(_) => Mss::DEFAULT_IPV4,
        SocketAddr::V6(_) => Mss::DEFAULT_IPV6,
    }
}

const fn ip_header_len(local: SocketAddr) -> u16 {
    match local {
        SocketAddr::V4(_) => 20,
        SocketAddr::V6(_) => 40,
    }
}

/// Buffer lengths are bounded by configuration far below 2^32; saturate rather than wrap if a
/// caller configures something absurd.
fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// The time an RTT probe took, for Karn-clean samples.
fn elapsed(now: Instant, since: Instant) -> Duration {
    now.saturating_duration_since(since)
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use crate::testing::{Pair, addr_a, addr_b};
    use crate::{Config, Connection, Instant, SeqNum, State};

    /// Sequence numbers compare modulo 2^32 (RFC 9293 §3.4): once 2^31 octets have been sent,
    /// `SND.UNA > ISS` is false again. Whether our SYN is acknowledged must not depend on it,
    /// or the sender stops sending with data queued and the window open. Sending 2 GiB takes
    /// too long for a test, so the ISS is moved back instead, as if it had been sent.
    #[test]
    fn sending_continues_past_two_to_the_31_octets_rfc_9293_3_4() {
        let now = Instant::ZERO;
        let config = Config::with_fixed_isn(SeqNum::new(1000));
        let a = Connection::connect(config.clone(), now, addr_a(40_000), addr_b(80)).unwrap();
        let b = Connection::listen(config, now, addr_b(80));
        let mut pair = Pair::new(a, b, now);
        pair.run_until_idle();
        assert_eq!(pair.a.state(), State::Established);
        for (round, fill) in [0x11u8, 0x22].into_iter().enumerate() {
            pair.a.iss = pair.a.snd_una + 0x8000_0000;
            assert!(!pair.a.snd_una.after(pair.a.iss), "round {round}: SND.UNA no longer > ISS");
            let data = [fill; 3000];
            assert_eq!(pair.a.send(pair.now, &data), Ok(3000));
            pair.run_until_idle();
            assert_eq!(pair.read_b(), data.to_vec(), "round {round}: every octet delivered");
            assert_eq!(pair.a.snd_una, pair.a.snd_nxt, "round {round}: all acknowledged");
        }
    }
}

/// The octet totals of `Connection::info` over more than 2^32 octets: SND.UNA and RCV.NXT go
/// round the sequence space, and the laps keep the totals growing.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod info_laps {
    use core::net::{IpAddr, Ipv4Addr, SocketAddr};

    use super::Connection;
    use crate::{Config, Instant, SeqNum};

    #[test]
    fn octet_totals_go_past_four_gib() {
        let local = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 1000);
        let remote = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 2000);
        let config = Config::with_fixed_isn(SeqNum::new(u32::MAX - 10));
        let mut conn = Connection::connect(config, Instant::ZERO, local, remote).unwrap();
        // As if the SYN-ACK had come: our SYN acknowledged, the peer's IRS known.
        conn.set_snd_una(conn.iss + 1);
        conn.syn_acked = true;
        conn.irs = SeqNum::new(5);
        conn.rcv_nxt = conn.irs + 1;
        conn.have_irs = true;
        assert_eq!((conn.info().bytes_acked, conn.info().bytes_received), (0, 0));
        // Five steps of 2^30: 1.25 times round the sequence space.
        for _ in 0..5 {
            let ack = conn.snd_una + (1 << 30);
            conn.set_snd_una(ack);
            conn.advance_rcv_nxt(1 << 30);
        }
        assert_eq!((conn.snd_una_laps, conn.rcv_nxt_laps), (1, 1));
        assert_eq!(conn.info().bytes_acked, 5 << 30);
        assert_eq!(conn.info().bytes_received, 5 << 30);
    }
}
