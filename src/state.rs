//! The 11 connection states and the transition table (RFC 9293 §3.3.2, Figure 5; §3.10).
//!
//! [`transition`] is the only code in the crate that decides a connection's next state. It is one
//! function written as nested exhaustive matches — outer on the [`State`], inner on the
//! [`Stimulus`] — with no wildcard arm at either level, so adding a state or a stimulus forces
//! every cell of the table to be decided. The connection works out *what happened* (a
//! [`Stimulus`]) from a segment, a user call or a timer, and asks the table; a combination the
//! table does not allow is an [`IllegalTransition`], which the connection treats as a bug (a debug
//! assertion in tests and fuzzing) rather than moving anywhere.
//!
//! The table is also enumerated into `tests/golden/transitions.txt` and
//! `docs/state-diagram.dot` by tests, so a change to it shows up in review.
#![deny(clippy::wildcard_enum_match_arm)]

use core::fmt;

/// A connection state: exactly the 11 states of RFC 9293 §3.3.2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// No connection (the fictional state before OPEN and after the end).
    Closed,
    /// Waiting for a connection request from any remote TCP (passive OPEN).
    Listen,
    /// Our SYN is sent; waiting for a matching SYN (active OPEN).
    SynSent,
    /// A SYN was received and our SYN sent; waiting for the ACK of our SYN.
    SynReceived,
    /// The connection is open; data flows both ways.
    Established,
    /// We closed (sent FIN); waiting for its ACK or the peer's FIN.
    FinWait1,
    /// Our FIN is acknowledged; waiting for the peer's FIN.
    FinWait2,
    /// The peer closed (its FIN is in); waiting for the local user to close.
    CloseWait,
    /// Both sides sent FIN at the same time; waiting for the ACK of ours.
    Closing,
    /// The peer closed first and we then closed; waiting for the ACK of our FIN.
    LastAck,
    /// Both FINs are acknowledged; waiting 2×MSL so stray segments die out.
    TimeWait,
}

impl State {
    /// Every state, in the order of RFC 9293 §3.3.2.
    pub const ALL: [Self; 11] = [
        Self::Closed,
        Self::Listen,
        Self::SynSent,
        Self::SynReceived,
        Self::Established,
        Self::FinWait1,
        Self::FinWait2,
        Self::CloseWait,
        Self::Closing,
        Self::LastAck,
        Self::TimeWait,
    ];

    /// The RFC's spelling of the state name, e.g. `SYN-RECEIVED`.
    pub const fn rfc_name(self) -> &'static str {
        match self {
            Self::Closed => "CLOSED",
            Self::Listen => "LISTEN",
            Self::SynSent => "SYN-SENT",
            Self::SynReceived => "SYN-RECEIVED",
            Self::Established => "ESTABLISHED",
            Self::FinWait1 => "FIN-WAIT-1",
            Self::FinWait2 => "FIN-WAIT-2",
            Self::CloseWait => "CLOSE-WAIT",
            Self::Closing => "CLOSING",
            Self::LastAck => "LAST-ACK",
            Self::TimeWait => "TIME-WAIT",
        }
    }

    /// RFC 9293 §3.3.2: the states after the handshake in which both sequence spaces are known.
    pub const fn is_synchronized(self) -> bool {
        match self {
            Self::Closed | Self::Listen | Self::SynSent | Self::SynReceived => false,
            Self::Established
            | Self::FinWait1
            | Self::FinWait2
            | Self::CloseWait
            | Self::Closing
            | Self::LastAck
            | Self::TimeWait => true,
        }
    }

    /// Whether our FIN has been queued or sent: no more user data may be sent.
    pub const fn has_closed_sending(self) -> bool {
        match self {
            Self::FinWait1
            | Self::FinWait2
            | Self::Closing
            | Self::LastAck
            | Self::TimeWait
            | Self::Closed => true,
            Self::Listen
            | Self::SynSent
            | Self::SynReceived
            | Self::Established
            | Self::CloseWait => false,
        }
    }

    /// Whether the peer's FIN has been received: no more data will arrive.
    pub const fn has_peer_finished(self) -> bool {
        match self {
            Self::CloseWait | Self::Closing | Self::LastAck | Self::TimeWait => true,
            Self::Closed
            | Self::Listen
            | Self::SynSent
            | Self::SynReceived
            | Self::Established
            | Self::FinWait1
            | Self::FinWait2 => false,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.rfc_name())
    }
}

/// What happened to a connection, with the facts the RFC's decision needs.
///
/// Segment stimuli are computed *after* the checks of RFC 9293 §3.10.7 that precede them
/// (acceptability, RST, SYN, ACK), so e.g. [`Stimulus::Fin`] means "an in-order FIN that does not
/// also acknowledge our FIN".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stimulus {
    /// User OPEN, passive (§3.10.1).
    PassiveOpen,
    /// User OPEN, active, or a SEND in LISTEN naming a remote socket (§3.10.1, §3.10.2).
    ActiveOpen,
    /// User CLOSE of the sending side (§3.10.4), after the connection checked it is allowed.
    Close,
    /// User ABORT (§3.10.5), or a CLOSE that must reset (unread data, SHLD-3).
    Abort,
    /// A SYN without ACK (§3.10.7.2 in LISTEN; simultaneous open in SYN-SENT, MUST-10).
    Syn,
    /// A SYN with an acceptable ACK of our SYN, in SYN-SENT (§3.10.7.3).
    SynAck,
    /// A SYN in SYN-RECEIVED or a synchronized state (§3.10.7.4 step 4, RFC 5961 §4). A
    /// passively opened SYN-RECEIVED returns to LISTEN; everywhere else it draws a challenge ACK
    /// and the state stays.
    SynInWindow {
        /// Whether the connection came from a passive OPEN.
        from_passive_open: bool,
    },
    /// An acceptable ACK of our SYN in SYN-RECEIVED (§3.10.7.4 step 5).
    AckOfSyn,
    /// An acceptable ACK that acknowledges our FIN (§3.10.7.4 step 5).
    AckOfFin,
    /// An in-order FIN from the peer that does not acknowledge our FIN (§3.10.7.4 step 8).
    Fin,
    /// An in-order FIN from the peer on a segment that also acknowledges our FIN: FIN-WAIT-1 goes
    /// straight to TIME-WAIT (§3.10.7.4 step 8).
    FinAckingOurFin,
    /// An acceptable RST (§3.10.7.3, RFC 5961 §3: at exactly RCV.NXT in synchronized states).
    Rst {
        /// Whether the connection came from a passive OPEN: a reset SYN-RECEIVED then returns to
        /// LISTEN (§3.10.7.4 step 2).
        from_passive_open: bool,
    },
    /// New data arrived after the user fully closed the connection: reset (SHLD-3, RFC 2525).
    DataAfterClose,
    /// The 2×MSL TIME-WAIT timer expired (§3.10.8).
    TimeWaitTimeout,
    /// The FIN-WAIT-2 timer expired for a connection the user fully closed (not in the RFC; see
    /// `docs/conformance.md`).
    FinWait2Timeout,
    /// Retransmissions reached R2, or the user timeout expired (§3.8.3, §3.10.8; MUST-20..23).
    TimedOut,
    /// An ICMP hard error about data in flight (protocol or port unreachable, RFC 9293
    /// §3.9.2.2, SHLD-26): abort.
    HardError,
    /// A valid SYN-cookie ACK at a listener (RFC 4987 §3.6): the handshake completed without
    /// a SYN-RECEIVED TCB, so LISTEN becomes ESTABLISHED directly.
    CookieAck,
}

impl Stimulus {
    /// Every stimulus, for enumerating the table.
    pub const ALL: [Self; 20] = [
        Self::PassiveOpen,
        Self::ActiveOpen,
        Self::Close,
        Self::Abort,
        Self::Syn,
        Self::SynAck,
        Self::SynInWindow { from_passive_open: true },
        Self::SynInWindow { from_passive_open: false },
        Self::AckOfSyn,
        Self::AckOfFin,
        Self::Fin,
        Self::FinAckingOurFin,
        Self::Rst { from_passive_open: true },
        Self::Rst { from_passive_open: false },
        Self::DataAfterClose,
        Self::TimeWaitTimeout,
        Self::FinWait2Timeout,
        Self::TimedOut,
        Self::CookieAck,
        Self::HardError,
    ];

    /// A short name for traces, golden files and the diagram.
    pub const fn name(self) -> &'static str {
        match self {
            Self::PassiveOpen => "passive OPEN",
            Self::ActiveOpen => "active OPEN",
            Self::Close => "CLOSE",
            Self::Abort => "ABORT",
            Self::Syn => "rcv SYN",
            Self::SynAck => "rcv SYN,ACK",
            Self::SynInWindow { from_passive_open: true } => "rcv SYN in window (passive)",
            Self::SynInWindow { from_passive_open: false } => "rcv SYN in window (active)",
            Self::AckOfSyn => "rcv ACK of SYN",
            Self::AckOfFin => "rcv ACK of FIN",
            Self::Fin => "rcv FIN",
            Self::FinAckingOurFin => "rcv FIN,ACK of FIN",
            Self::Rst { from_passive_open: true } => "rcv RST (passive)",
            Self::Rst { from_passive_open: false } => "rcv RST (active)",
            Self::DataAfterClose => "rcv data after CLOSE",
            Self::TimeWaitTimeout => "2MSL timeout",
            Self::FinWait2Timeout => "FIN-WAIT-2 timeout",
            Self::TimedOut => "user/R2 timeout",
            Self::CookieAck => "rcv SYN-cookie ACK",
            Self::HardError => "ICMP hard error",
        }
    }
}

impl fmt::Display for Stimulus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A (state, stimulus) pair the table does not allow: a bug in whoever presented it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IllegalTransition {
    /// The state the connection was in.
    pub from: State,
    /// What it was asked to react to.
    pub on: Stimulus,
}

impl fmt::Display for IllegalTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "illegal transition: {} in {}", self.on, self.from)
    }
}

impl core::error::Error for IllegalTransition {}

/// The transition table: the next state after `on` happens in `from`.
///
/// `Ok(from)` is a self-loop the RFC describes (e.g. a retransmitted FIN in TIME-WAIT restarts
/// the 2MSL timer); `Err` is a combination that cannot legitimately happen.
///
/// The connection does not run this match per stimulus: it reads the same answers from
/// `TABLE`, which the compiler works out from this function.
pub const fn transition(from: State, on: Stimulus) -> Result<State, IllegalTransition> {
    use State::{
        CloseWait, Closed, Closing, Established, FinWait1, FinWait2, LastAck, Listen, SynReceived,
        SynSent, TimeWait,
    };
    use Stimulus as S;
    let illegal = Err(IllegalTransition { from, on });
    match from {
        Closed => match on {
            S::PassiveOpen => Ok(Listen),
            S::ActiveOpen => Ok(SynSent),
            S::Close
            | S::Abort
            | S::Syn
            | S::SynAck
            | S::SynInWindow { .. }
            | S::AckOfSyn
            | S::AckOfFin
            | S::Fin
            | S::FinAckingOurFin
            | S::Rst { .. }
            | S::DataAfterClose
            | S::TimeWaitTimeout
            | S::FinWait2Timeout
            | S::TimedOut
            | S::CookieAck
            | S::HardError => illegal,
        },
        Listen => match on {
            // §3.10.2: SEND in LISTEN with a remote socket turns the passive OPEN active.
            S::ActiveOpen => Ok(SynSent),
            // §3.10.4: CLOSE in LISTEN deletes the TCB; §3.10.5: so does ABORT.
            S::Close | S::Abort => Ok(Closed),
            // §3.10.7.2, third check.
            S::Syn => Ok(SynReceived),
            // RFC 4987 §3.6: the endpoint validated a cookie; the TCB is born synchronized.
            S::CookieAck => Ok(Established),
            // §3.10.7.2, first check: an incoming RST is ignored.
            S::Rst { from_passive_open: true } => Ok(Listen),
            // LISTEN only ever comes from a passive OPEN.
            S::Rst { from_passive_open: false } | S::HardError => illegal,
            S::PassiveOpen
            | S::SynAck
            | S::SynInWindow { .. }
            | S::AckOfSyn
            | S::AckOfFin
            | S::Fin
            | S::FinAckingOurFin
            | S::DataAfterClose
            | S::TimeWaitTimeout
            | S::FinWait2Timeout
            | S::TimedOut => illegal,
        },
        SynSent => match on {
            // RFC 9293 §3.9.2.2, SHLD-26: protocol or port unreachable ends it.
            S::HardError => Ok(Closed),
            // §3.10.4 / §3.10.5: delete the TCB; queued SENDs and RECEIVEs get "closing".
            S::Close | S::Abort => Ok(Closed),
            // §3.10.7.3 fourth check: simultaneous open (MUST-10).
            S::Syn => Ok(SynReceived),
            S::SynAck => Ok(Established),
            // §3.10.7.3 second check: an RST acknowledging our SYN: "connection reset".
            S::Rst { from_passive_open: false } => Ok(Closed),
            // SYN-SENT never came from a passive OPEN (a SEND in LISTEN made it active).
            S::Rst { from_passive_open: true } | S::CookieAck => illegal,
            S::TimedOut => Ok(Closed),
            S::PassiveOpen
            | S::ActiveOpen
            | S::SynInWindow { .. }
            | S::AckOfSyn
            | S::AckOfFin
            | S::Fin
            | S::FinAckingOurFin
            | S::DataAfterClose
            | S::TimeWaitTimeout
            | S::FinWait2Timeout => illegal,
        },
        SynReceived => match on {
            // RFC 9293 §3.9.2.2, SHLD-26: protocol or port unreachable ends it.
            S::HardError => Ok(Closed),
            // §3.10.4: FIN queued behind any data; enter FIN-WAIT-1.
            S::Close => Ok(FinWait1),
            S::Abort => Ok(Closed),
            // §3.10.7.4 step 5.
            S::AckOfSyn => Ok(Established),
            // §3.10.7.4 step 2: a passive connection returns to LISTEN (MUST-11), an active
            // one is refused.
            S::Rst { from_passive_open: true } => Ok(Listen),
            S::Rst { from_passive_open: false } => Ok(Closed),
            // §3.10.7.4 step 4: a passive connection returns to LISTEN; an active one is
            // handled as in the synchronized states (RFC 5961 §4 challenge ACK).
            S::SynInWindow { from_passive_open: true } => Ok(Listen),
            S::SynInWindow { from_passive_open: false } => Ok(SynReceived),
            S::TimedOut => Ok(Closed),
            S::PassiveOpen
            | S::ActiveOpen
            | S::Syn
            | S::SynAck
            | S::AckOfFin
            | S::FinAckingOurFin
            | S::DataAfterClose
            | S::TimeWaitTimeout
            | S::FinWait2Timeout
            | S::CookieAck => illegal,
            // §3.10.7.4 step 8 lists SYN-RECEIVED → CLOSE-WAIT, but a FIN only reaches step 8
            // with an ACK, and step 5 has then already moved SYN-RECEIVED to ESTABLISHED; the
            // connection presents `AckOfSyn` and then `Fin`.
            S::Fin => illegal,
        },
        Established => match on {
            // RFC 9293 §3.9.2.2, SHLD-26: protocol or port unreachable ends it.
            S::HardError => Ok(Closed),
            S::Close => Ok(FinWait1),
            S::Abort | S::Rst { .. } | S::TimedOut => Ok(Closed),
            S::Fin => Ok(CloseWait),
            // §3.10.7.4 step 4, RFC 5961 §4: challenge ACK, no state change.
            S::SynInWindow { .. } => Ok(Established),
            S::PassiveOpen
            | S::ActiveOpen
            | S::Syn
            | S::SynAck
            | S::AckOfSyn
            | S::AckOfFin
            | S::FinAckingOurFin
            | S::DataAfterClose
            | S::TimeWaitTimeout
            | S::FinWait2Timeout
            | S::CookieAck => illegal,
        },
        FinWait1 => match on {
            // RFC 9293 §3.9.2.2, SHLD-26: protocol or port unreachable ends it.
            S::HardError => Ok(Closed),
            S::AckOfFin => Ok(FinWait2),
            // Simultaneous close.
            S::Fin => Ok(Closing),
            // The seed's rare path: FIN and the ACK of our FIN in one segment.
            S::FinAckingOurFin => Ok(TimeWait),
            S::Abort | S::Rst { .. } | S::TimedOut | S::DataAfterClose => Ok(Closed),
            // §3.10.7.4 step 4, RFC 5961 §4: challenge ACK, no state change.
            S::SynInWindow { .. } => Ok(FinWait1),
            S::PassiveOpen
            | S::ActiveOpen
            | S::Close
            | S::Syn
            | S::SynAck
            | S::AckOfSyn
            | S::TimeWaitTimeout
            | S::FinWait2Timeout
            | S::CookieAck => illegal,
        },
        FinWait2 => match on {
            S::Fin => Ok(TimeWait),
            S::Abort | S::Rst { .. } | S::DataAfterClose | S::FinWait2Timeout => Ok(Closed),
            // Nothing of ours is unacknowledged in FIN-WAIT-2, so no retransmission or user
            // timeout can expire; the FIN-WAIT-2 timer covers a silent peer.
            S::TimedOut | S::CookieAck | S::HardError => illegal,
            // §3.10.7.4 step 4, RFC 5961 §4: challenge ACK, no state change.
            S::SynInWindow { .. } => Ok(FinWait2),
            S::PassiveOpen
            | S::ActiveOpen
            | S::Close
            | S::Syn
            | S::SynAck
            | S::AckOfSyn
            | S::AckOfFin
            | S::FinAckingOurFin
            | S::TimeWaitTimeout => illegal,
        },
        CloseWait => match on {
            // RFC 9293 §3.9.2.2, SHLD-26: protocol or port unreachable ends it.
            S::HardError => Ok(Closed),
            S::Close => Ok(LastAck),
            S::Abort | S::Rst { .. } | S::TimedOut => Ok(Closed),
            // §3.10.7.4 step 4, RFC 5961 §4: challenge ACK, no state change.
            S::SynInWindow { .. } => Ok(CloseWait),
            S::PassiveOpen
            | S::ActiveOpen
            | S::Syn
            | S::SynAck
            | S::AckOfSyn
            | S::AckOfFin
            | S::Fin
            | S::FinAckingOurFin
            | S::DataAfterClose
            | S::TimeWaitTimeout
            | S::FinWait2Timeout
            | S::CookieAck => illegal,
        },
        Closing => match on {
            // RFC 9293 §3.9.2.2, SHLD-26: protocol or port unreachable ends it.
            S::HardError => Ok(Closed),
            S::AckOfFin => Ok(TimeWait),
            S::Abort | S::Rst { .. } | S::TimedOut => Ok(Closed),
            // §3.10.7.4 step 4, RFC 5961 §4: challenge ACK, no state change.
            S::SynInWindow { .. } => Ok(Closing),
            S::PassiveOpen
            | S::ActiveOpen
            | S::Close
            | S::Syn
            | S::SynAck
            | S::AckOfSyn
            | S::Fin
            | S::FinAckingOurFin
            | S::DataAfterClose
            | S::TimeWaitTimeout
            | S::FinWait2Timeout
            | S::CookieAck => illegal,
        },
        LastAck => match on {
            // RFC 9293 §3.9.2.2, SHLD-26: protocol or port unreachable ends it.
            S::HardError => Ok(Closed),
            S::AckOfFin => Ok(Closed),
            S::Abort | S::Rst { .. } | S::TimedOut => Ok(Closed),
            // §3.10.7.4 step 4, RFC 5961 §4: challenge ACK, no state change.
            S::SynInWindow { .. } => Ok(LastAck),
            S::PassiveOpen
            | S::ActiveOpen
            | S::Close
            | S::Syn
            | S::SynAck
            | S::AckOfSyn
            | S::Fin
            | S::FinAckingOurFin
            | S::DataAfterClose
            | S::TimeWaitTimeout
            | S::FinWait2Timeout
            | S::CookieAck => illegal,
        },
        TimeWait => match on {
            S::TimeWaitTimeout | S::Abort => Ok(Closed),
            // §3.10.7.4 step 8: a retransmitted FIN is acknowledged and restarts the 2MSL
            // timeout.
            S::Fin => Ok(TimeWait),
            // RFC 1337: TIME-WAIT ignores RST (deviation from §3.10.7.4 step 2, recorded in
            // docs/conformance.md) — "TIME-WAIT assassination" would let old duplicates in.
            S::Rst { .. } => Ok(TimeWait),
            // §3.10.7.4 step 4, RFC 5961 §4: challenge ACK, no state change.
            S::SynInWindow { .. } => Ok(TimeWait),
            S::PassiveOpen
            | S::ActiveOpen
            | S::Close
            | S::Syn
            | S::SynAck
            | S::AckOfSyn
            | S::AckOfFin
            | S::FinAckingOurFin
            | S::DataAfterClose
            | S::FinWait2Timeout
            | S::TimedOut
            | S::CookieAck
            | S::HardError => illegal,
        },
    }
}

impl Stimulus {
    /// The stimulus's column in [`TABLE`]: its position in [`Stimulus::ALL`]. In line, so a
    /// caller that presents a known stimulus passes a constant.
    #[inline(always)]
    pub(crate) const fn column(self) -> usize {
        match self {
            Self::PassiveOpen => 0,
            Self::ActiveOpen => 1,
            Self::Close => 2,
            Self::Abort => 3,
            Self::Syn => 4,
            Self::SynAck => 5,
            Self::SynInWindow { from_passive_open } => 7 - from_passive_open as usize,
            Self::AckOfSyn => 8,
            Self::AckOfFin => 9,
            Self::Fin => 10,
            Self::FinAckingOurFin => 11,
            Self::Rst { from_passive_open } => 13 - from_passive_open as usize,
            Self::DataAfterClose => 14,
            Self::TimeWaitTimeout => 15,
            Self::FinWait2Timeout => 16,
            Self::TimedOut => 17,
            Self::CookieAck => 18,
            Self::HardError => 19,
        }
    }
}

/// [`transition`] worked out by the compiler for every cell, [`State::ALL`] ×
/// [`Stimulus::ALL`] (`None` where it answers `Err`). The connection reads its answers from
/// here ([`next_state`]): the same few instructions for every cell, where the nested match
/// took two indirect jumps and a block of its own per cell. The match stays the one
/// definition of the table (and what the golden files and the diagram are made from); this
/// is its value.
#[allow(clippy::indexing_slicing)] // Evaluated at compile time: out of range fails the build.
const TABLE: [[Option<State>; Stimulus::ALL.len()]; State::ALL.len()] = {
    let mut table = [[None; Stimulus::ALL.len()]; State::ALL.len()];
    let mut row = 0;
    while row < State::ALL.len() {
        assert!(State::ALL[row] as usize == row, "State::ALL is in declaration order");
        let mut column = 0;
        while column < Stimulus::ALL.len() {
            let on = Stimulus::ALL[column];
            assert!(on.column() == column, "Stimulus::column is the position in ALL");
            table[row][column] = match transition(State::ALL[row], on) {
                Ok(to) => Some(to),
                Err(_) => None,
            };
            column += 1;
        }
        row += 1;
    }
    table
};

/// [`transition`]'s answer for `from` and the stimulus in `column` ([`Stimulus::column`]),
/// read from [`TABLE`]: `None` for an illegal cell.
#[inline]
pub(crate) fn next_state(from: State, column: usize) -> Option<State> {
    TABLE.get(from as usize).and_then(|row| row.get(column)).copied().flatten()
}

/// Renders the whole table as text, one `FROM --stimulus--> TO` line per legal cell and
/// `FROM --stimulus--> (illegal)` for the rest, in [`State::ALL`] × [`Stimulus::ALL`] order.
pub fn render_table(out: &mut impl fmt::Write) -> fmt::Result {
    for from in State::ALL {
        for on in Stimulus::ALL {
            match transition(from, on) {
                Ok(to) => writeln!(out, "{from} --{on}--> {to}")?,
                Err(_) => writeln!(out, "{from} --{on}--> (illegal)")?,
            }
        }
    }
    Ok(())
}

/// Renders the table as a Graphviz digraph (`docs/state-diagram.dot`): one edge per legal cell
/// that changes the state, labelled with every stimulus that takes it.
pub fn render_dot(out: &mut impl fmt::Write) -> fmt::Result {
    writeln!(out, "// Generated from tcp_proto::state::transition by tests/state_table.rs.")?;
    writeln!(out, "// Do not edit: run `UPDATE_GOLDEN=1 cargo test --test state_table`.")?;
    writeln!(out, "digraph tcp_states {{")?;
    writeln!(out, "    rankdir=TB;")?;
    writeln!(out, "    node [shape=box, style=rounded];")?;
    for state in State::ALL {
        writeln!(out, "    \"{state}\";")?;
    }
    for from in State::ALL {
        for to in State::ALL {
            if to == from {
                continue;
            }
            let mut first = true;
            for on in Stimulus::ALL {
                if transition(from, on) == Ok(to) {
                    if first {
                        write!(out, "    \"{from}\" -> \"{to}\" [label=\"{on}")?;
                        first = false;
                    } else {
                        write!(out, "\\n{on}")?;
                    }
                }
            }
            if !first {
                writeln!(out, "\"];")?;
            }
        }
    }
    writeln!(out, "}}")
}

#[cfg(test)]
mod tests {
    use super::{State, Stimulus, next_state, transition};

    /// The compiled table answers as the match, cell for cell.
    #[test]
    fn next_state_is_transition_for_every_cell() {
        for from in State::ALL {
            for on in Stimulus::ALL {
                assert_eq!(next_state(from, on.column()), transition(from, on).ok(), "{from} {on}");
            }
        }
    }
}
