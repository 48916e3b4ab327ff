//! What a connection tells its user: events, errors and status (RFC 9293 §3.9.1, §3.10).

use core::fmt;
use core::time::Duration;

use crate::congestion::CongestionAlgorithm;
use crate::seq::SeqNum;
use crate::state::State;
use crate::wire::EmitError;

/// Why a connection ended abnormally. Reported once as [`Event::Closed`], then returned by every
/// later user call (RFC 9293 MUST-12: an abort is reported distinctly from an orderly close).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnectionError {
    /// The peer reset an established connection ("connection reset", §3.10.7.4).
    Reset,
    /// The peer refused our SYN with a RST ("connection refused", §3.10.7.3).
    Refused,
    /// Retransmissions reached R2 or the user timeout expired (MUST-20, §3.10.8).
    TimedOut,
    /// The local user aborted the connection (§3.10.5).
    Aborted,
    /// An ICMP hard error (protocol or port unreachable) ended it (SHLD-26).
    Unreachable,
}

impl fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Reset => "connection reset by peer",
            Self::Refused => "connection refused",
            Self::TimedOut => "connection timed out",
            Self::Aborted => "connection aborted",
            Self::Unreachable => "destination unreachable",
        })
    }
}

impl core::error::Error for ConnectionError {}

/// How a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// Both FINs were exchanged and acknowledged (MUST-12: distinct from an abort).
    Orderly,
    /// The connection failed or was aborted.
    Error(ConnectionError),
}

/// Something the user should know about. Drained with `Connection::poll_event`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Event {
    /// The handshake completed: the connection is ESTABLISHED.
    Connected,
    /// New in-order data can be read with `recv`.
    Readable,
    /// Room freed in the send buffer after a `send` took less than it was offered.
    Writable,
    /// The peer sent FIN: no more data will arrive after what is buffered (§3.10.7.4 step 8).
    PeerClosed,
    /// The peer's urgent pointer moved ahead: urgent data is pending where none was, or more
    /// of it (MUST-32). [`Connection::urgent_pending`](crate::Connection::urgent_pending) says
    /// how much.
    Urgent,
    /// R1 was reached: the connection keeps retransmitting but the path looks bad (MUST-20,
    /// SHLD-9).
    RetransmissionThreshold,
    /// An ICMP soft error arrived for data in flight (MUST-47, SHLD-25); the connection goes
    /// on (MUST-56).
    SoftError(IcmpError),
    /// The connection ended. Sent once; the connection is CLOSED afterwards.
    Closed(CloseReason),
    /// The state machine moved.
    StateChanged {
        /// The old state.
        from: State,
        /// The new state.
        to: State,
    },
}

/// An ICMP error about one of our segments, as the embedding stack decoded it (RFC 9293
/// §3.9.2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IcmpError {
    /// Destination unreachable (ICMPv4 type 3 / ICMPv6 type 1) with its code; codes 2
    /// (protocol) and 3 (port) are hard errors. For ICMPv6 pass the equivalent v4 code.
    Unreachable {
        /// The ICMPv4 code.
        code: u8,
    },
    /// Fragmentation needed (ICMPv4 type 3 code 4) or packet too big (ICMPv6 type 2), with
    /// the next-hop MTU.
    PacketTooBig {
        /// The MTU the router reported.
        mtu: u16,
    },
    /// Time exceeded.
    TimeExceeded,
    /// Parameter problem.
    ParameterProblem,
    /// Source quench (deprecated; ignored, MUST-55).
    SourceQuench,
}

/// A misuse of the user-call API (RFC 9293 §3.10.1–3.10.6 error cases). The connection is left
/// unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CallError {
    /// OPEN on a connection that is not CLOSED ("connection already exists", §3.10.1).
    AlreadyOpen,
    /// The call needs a connection and there is none ("connection does not exist").
    NotOpen,
    /// SEND after CLOSE, or CLOSE twice ("connection closing", §3.10.2, §3.10.4).
    Closing,
    /// SEND in LISTEN: this connection has no remote socket yet ("foreign socket
    /// unspecified", §3.10.2).
    NoRemote,
    /// OPEN to an address no connection can have: another IP family than the local one, port
    /// 0, unspecified, broadcast or multicast (MUST-46).
    InvalidRemote,
    /// The connection ended; the reason it ended.
    Ended(ConnectionError),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AlreadyOpen => f.write_str("connection already exists"),
            Self::NotOpen => f.write_str("connection does not exist"),
            Self::Closing => f.write_str("connection closing"),
            Self::NoRemote => f.write_str("foreign socket unspecified"),
            Self::InvalidRemote => f.write_str("remote address cannot be connected to"),
            Self::Ended(error) => write!(f, "{error}"),
        }
    }
}

impl core::error::Error for CallError {}

/// `poll_transmit` could not write a segment; nothing was consumed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransmitError {
    /// The caller's buffer cannot hold the segment.
    BufferTooSmall {
        /// Octets the segment needs.
        needed: usize,
        /// Octets the buffer has.
        available: usize,
    },
    /// The segment could not be encoded (a bug: addresses are checked at OPEN).
    Encode(EmitError),
}

impl fmt::Display for TransmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BufferTooSmall { needed, available } => {
                write!(
                    f,
                    "transmit buffer too small: segment needs {needed}, buffer has {available}"
                )
            }
            Self::Encode(error) => write!(f, "segment could not be encoded: {error}"),
        }
    }
}

impl core::error::Error for TransmitError {}

impl From<EmitError> for TransmitError {
    /// A too-small buffer keeps its meaning; anything else is an encoding failure.
    fn from(error: EmitError) -> Self {
        match error {
            EmitError::BufferTooSmall { needed, available } => {
                Self::BufferTooSmall { needed, available }
            }
            other @ (EmitError::AddressFamilyMismatch | EmitError::OptionsTooLong { .. }) => {
                Self::Encode(other)
            }
        }
    }
}

/// A snapshot of the TCB (RFC 9293 §3.10.6 STATUS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Status {
    /// Connection state.
    pub state: State,
    /// Initial send sequence number.
    pub iss: SeqNum,
    /// Oldest unacknowledged sequence number.
    pub snd_una: SeqNum,
    /// Next sequence number to send.
    pub snd_nxt: SeqNum,
    /// Send window (octets, as the peer advertised it).
    pub snd_wnd: u32,
    /// Largest window the peer ever advertised (RFC 5961 §5's MAX.SND.WND).
    pub max_snd_wnd: u32,
    /// Initial receive sequence number.
    pub irs: SeqNum,
    /// Next sequence number expected.
    pub rcv_nxt: SeqNum,
    /// Receive window we advertise.
    pub rcv_wnd: u32,
    /// The receive buffer's size now: `Config::recv_buffer`, or more once auto-tuning grew
    /// it (the window's ceiling).
    pub recv_buffer: usize,
    /// The send buffer's capacity now: `Config::send_buffer`, or more once it grew.
    pub send_buffer: usize,
    /// Octets accepted by `send` and not yet acknowledged.
    pub send_queued: usize,
    /// Octets received and not yet read.
    pub recv_queued: usize,
    /// Memory the received data held as slices of packets pins (their allocations and the
    /// pieces' metadata; `Connection::handle_segment_bytes`), counted against the receive
    /// buffer: 0 for data received by copy.
    pub recv_pinned: usize,
    /// How often received slices were compacted (copied once into fresh chunks) because the
    /// packets they pinned were out of proportion to the data in them.
    pub recv_compactions: u64,
    /// Octets of urgent data pending for the user (MUST-33).
    pub urgent_pending: u32,
    /// The effective send MSS (MUST-16).
    pub effective_mss: u16,
    /// Smoothed RTT, once measured.
    pub srtt: Option<Duration>,
    /// RTT variation, once measured.
    pub rttvar: Option<Duration>,
    /// Current retransmission timeout.
    pub rto: Duration,
    /// The peer's window-scale shift, once both sides agreed to scale (RFC 7323).
    pub snd_wscale: Option<u8>,
    /// Our window-scale shift, once both sides agreed to scale.
    pub rcv_wscale: Option<u8>,
    /// Congestion window (octets).
    pub cwnd: u32,
    /// Slow-start threshold (octets; `u32::MAX` until the first loss).
    pub ssthresh: u32,
    /// The congestion controller: a built-in one, or `None` for one the application
    /// installed (`Connection::set_congestion_control`).
    pub congestion: Option<CongestionAlgorithm>,
    /// Retransmissions of the oldest unacknowledged segment so far.
    pub consecutive_retransmissions: u32,
    /// Retransmission timeouts over the connection's life (each resent the oldest
    /// unacknowledged segment): the figure [`Counters::retransmission_timeouts`] keeps. Every
    /// segment sent again, whatever the cause, is [`Counters::retransmitted_segments`]
    /// (`TcpInfo::retransmitted_segments`).
    pub total_retransmissions: u64,
    /// Both SYNs carried the timestamps option, so every segment does (RFC 7323 §3.2).
    pub timestamps: bool,
    /// Both SYNs carried SACK-permitted, so SACK blocks flow both ways (RFC 2018 §2).
    pub sack: bool,
}

/// Counters of peer misbehaviour and drops (never errors: the RFC's answer was given).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counters {
    /// Segments that failed the acceptability test (§3.10.7.4 step 1).
    pub unacceptable_segments: u64,
    /// Challenge ACKs sent (RFC 5961).
    pub challenge_acks: u64,
    /// Challenge ACKs suppressed by the per-connection rate limit.
    pub challenge_acks_suppressed: u64,
    /// RSTs ignored (out of window, or in TIME-WAIT per RFC 1337).
    pub rsts_ignored: u64,
    /// Out-of-order segments dropped (reassembly arrives with the data-transfer work).
    pub out_of_order_dropped: u64,
    /// In-order segments received as slices (`Connection::handle_segment_bytes`) dropped
    /// because the data held would have exceeded the receive buffer (never within a window
    /// we advertised: such data always fits once compacted).
    pub recv_memory_dropped: u64,
    /// Segments dropped because they were addressed to another connection.
    pub misaddressed: u64,
    /// Control replies dropped because one was already waiting to be polled.
    pub replies_dropped: u64,
    /// Events dropped because the queue was full.
    pub events_dropped: u64,
    /// Stimuli the transition table refused: always a bug in this crate (a debug assertion
    /// fires in test builds; the fuzzers watch this counter).
    pub illegal_transitions: u64,
    /// Retransmission timeouts (each resends the oldest unacknowledged segment); the same
    /// figure as [`Status::total_retransmissions`].
    pub retransmission_timeouts: u64,
    /// Segments dropped by PAWS: a TSval older than TS.Recent (RFC 7323 §5.3 R1; answered
    /// with an ACK).
    pub paws_rejected: u64,
    /// Of [`Counters::paws_rejected`], those carrying in-window octets we did not hold: data
    /// the sender must send again. On a path that reorders, an original segment overtaken by
    /// a retransmission of earlier data (which moved TS.Recent past its TSval) is dropped so.
    pub paws_rejected_new_data: u64,
    /// Segments dropped for lacking the timestamps option on a connection that negotiated it
    /// (RFC 7323 §3.2).
    pub timestamps_missing: u64,
    /// Loss recoveries entered from SACK information (RFC 6675 §5, RACK's detection).
    pub sack_recoveries: u64,
    /// Tail loss probes sent (RFC 8985 §7).
    pub loss_probes: u64,
    /// D-SACK blocks received: the peer got something twice (RFC 2883).
    pub dsacks_received: u64,
    /// Window reductions whose retransmissions proved unneeded: the first ACK for a
    /// retransmission echoed the original's timestamp (RFC 3522 Eifel detection), or every
    /// retransmission came back D-SACKed (RFC 3708).
    pub spurious_retransmissions: u64,
    /// Spurious window reductions taken back (RFC 4015 §3; `Connection::set_undo`).
    pub undos: u64,
    /// Fast recoveries entered on the third duplicate ACK without SACK (RFC 6582 §3.2 step
    /// 2); those entered from SACK information are [`Counters::sack_recoveries`].
    pub fast_recoveries: u64,
    /// Segments sent again, whatever the cause (RTO, fast recovery, a loss probe's resend, a
    /// go-back-N resend after an RTO, a reopened window or a smaller path MTU); a SYN sent
    /// again counts too, a zero-window probe repeating the octet at SND.UNA does not.
    pub retransmitted_segments: u64,
    /// Data octets in [`Counters::retransmitted_segments`].
    pub retransmitted_octets: u64,
    /// Of [`Counters::retransmitted_segments`], those sent during a fast recovery (NewReno's
    /// or a SACK-based one): repairs of losses found by ACKs rather than by the timer.
    pub fast_retransmitted_segments: u64,
    /// SACK blocks received in ACKs (RFC 2018 §3), D-SACK blocks included.
    pub sack_blocks_received: u64,
}

impl Counters {
    /// Nothing counted yet.
    pub(crate) const ZERO: Self = Self {
        unacceptable_segments: 0,
        challenge_acks: 0,
        challenge_acks_suppressed: 0,
        rsts_ignored: 0,
        out_of_order_dropped: 0,
        recv_memory_dropped: 0,
        misaddressed: 0,
        replies_dropped: 0,
        events_dropped: 0,
        illegal_transitions: 0,
        retransmission_timeouts: 0,
        paws_rejected: 0,
        paws_rejected_new_data: 0,
        timestamps_missing: 0,
        sack_recoveries: 0,
        loss_probes: 0,
        dsacks_received: 0,
        spurious_retransmissions: 0,
        undos: 0,
        fast_recoveries: 0,
        retransmitted_segments: 0,
        retransmitted_octets: 0,
        fast_retransmitted_segments: 0,
        sack_blocks_received: 0,
    };
}

/// Per-connection statistics in the manner of Linux's `TCP_INFO` (`ss -ti`): the figures of
/// [`Status`] an operator looks at, with the loss and recovery counters of [`Counters`] and
/// the octet totals, in one snapshot (`Connection::info`).
///
/// Every figure is kept by the connection anyway or counted on an event that is itself rare
/// (a retransmission, a SACK block): taking one costs nothing per segment. Counts of all
/// segments sent and received are not kept: the TCB has no room for them inline, and
/// counting in its boxed part would allocate that part for every connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TcpInfo {
    /// Connection state.
    pub state: State,
    /// Smoothed RTT, once measured (Linux `tcpi_rtt`).
    pub srtt: Option<Duration>,
    /// RTT variation, once measured (`tcpi_rttvar`).
    pub rttvar: Option<Duration>,
    /// Current retransmission timeout (`tcpi_rto`).
    pub rto: Duration,
    /// Congestion window in octets (Linux counts segments: `tcpi_snd_cwnd` × MSS).
    pub cwnd: u32,
    /// Slow-start threshold in octets (`u32::MAX` until the first loss).
    pub ssthresh: u32,
    /// The effective send MSS (`tcpi_snd_mss`).
    pub mss: u16,
    /// The peer's advertised window (octets).
    pub snd_wnd: u32,
    /// The window we advertise (octets).
    pub rcv_wnd: u32,
    /// Data octets the peer acknowledged (`tcpi_bytes_acked`): SND.UNA's distance from the
    /// ISS over the whole life, less our SYN and FIN.
    pub bytes_acked: u64,
    /// Data octets received in order (`tcpi_bytes_received`): RCV.NXT's distance from the
    /// IRS, less the peer's SYN and FIN (after an abnormal end a FIN that had arrived may
    /// count as one octet).
    pub bytes_received: u64,
    /// Data octets sent, retransmissions included (`tcpi_bytes_sent`): those acknowledged,
    /// those in flight, and [`TcpInfo::bytes_retransmitted`].
    pub bytes_sent: u64,
    /// Data octets sent again (`tcpi_bytes_retrans`).
    pub bytes_retransmitted: u64,
    /// Segments sent again, whatever the cause (`tcpi_total_retrans`).
    pub retransmitted_segments: u64,
    /// Of those, sent during a fast recovery (losses found by ACKs: duplicate ACKs, SACK,
    /// RACK).
    pub fast_retransmits: u64,
    /// Of those, sent outside a fast recovery: after retransmission timeouts (the segment at
    /// SND.UNA and the go-back-N resend after it), loss probes' resends, resends after a
    /// reopened window or a smaller path MTU.
    pub other_retransmits: u64,
    /// Retransmissions of the segment now at SND.UNA (`tcpi_retransmits`).
    pub consecutive_retransmissions: u32,
    /// Retransmission timeouts that expired.
    pub rto_count: u64,
    /// Tail loss probes sent (RFC 8985 §7).
    pub loss_probes: u64,
    /// Loss recoveries entered: fast recoveries without SACK and SACK-based ones.
    pub recoveries: u64,
    /// SACK blocks received, D-SACK blocks included.
    pub sack_blocks_received: u64,
    /// D-SACK blocks received (RFC 2883; `tcpi_dsack_dups`).
    pub dsacks_received: u64,
    /// Window reductions proved unneeded (Eifel or D-SACK detection).
    pub spurious_retransmissions: u64,
    /// Octets accepted by `send` and not yet acknowledged.
    pub send_queued: usize,
    /// Octets received and not yet read.
    pub recv_queued: usize,
    /// Both sides agreed to SACK.
    pub sack: bool,
    /// Both sides agreed to timestamps.
    pub timestamps: bool,
}

/// A connection's events not yet collected, oldest first: a plain vector (24 bytes, where a
/// `VecDeque` takes 32) because the endpoint collects all of a connection's events after every
/// call into it, so the queue is nearly always empty or holds one or two; taking the oldest
/// alone (the standalone [`Connection::poll_event`](crate::Connection::poll_event)) shifts the
/// rest, at most the connection's small event bound.
#[derive(Debug, Default)]
pub(crate) struct EventQueue(alloc::vec::Vec<Event>);

impl EventQueue {
    pub(crate) const fn new() -> Self {
        Self(alloc::vec::Vec::new())
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Only `adopt_buffers`, the test reference of `Connection::renew`, asks.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The newest event.
    pub(crate) fn back(&self) -> Option<&Event> {
        self.0.last()
    }

    pub(crate) fn push_back(&mut self, event: Event) {
        self.0.push(event);
    }

    /// Takes the oldest event.
    pub(crate) fn pop_front(&mut self) -> Option<Event> {
        if self.0.is_empty() { None } else { Some(self.0.remove(0)) }
    }

    /// The events in order, oldest first, for collecting all at once with [`clear`](Self::clear).
    pub(crate) fn as_slice(&self) -> &[Event] {
        &self.0
    }

    /// Forgets every event, keeping the allocation.
    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }
}
