//! The endpoint: many connections behind one sans-IO object (RFC 9293 §3.4.1, §3.5.2,
//! §3.10.7.1; RFC 6056; RFC 6191).
//!
//! An embedding stack feeds [`Endpoint::handle_segment`] every TCP segment for its addresses.
//! The endpoint validates it (checksum, lengths), demultiplexes by 4-tuple *before* any state is
//! touched, hands it to its connection, a TIME-WAIT record or a listener, and answers strays
//! with the RST of §3.10.7.1. Output comes from [`Endpoint::poll_transmit`], fair across
//! connections; one earliest deadline from [`Endpoint::poll_timeout`] (a heap, so idle
//! connections cost nothing per tick); events from [`Endpoint::poll_event`].
//!
//! Handles are generational: a handle to a freed connection is refused, never mistaken for the
//! connection that reused its slot. Every global limit (connections, TIME-WAIT records, queued
//! events and stray replies, connections per remote address, listener backlogs) refuses and
//! counts rather than growing memory.
//!
//! **Catch-all capture.** A listener on the unspecified address with port 0 (`0.0.0.0:0`,
//! `[::]:0`) takes every SYN of its address family that nothing more specific takes: a
//! connection, a TIME-WAIT record, a listener on the exact address, then a wildcard one on the
//! port all come first (MUST-41, MUST-42). Its connections keep the SYN's destination as their
//! local address, so a transparent proxy learns each one's original destination.
//!
//! **Deferred accept.** A listener made with [`Endpoint::listen_deferred`] answers no SYN by
//! itself: it records it (at most `backlog` at once; more are dropped and counted, never
//! answered with a cookie, since a cookie would accept what the application has not decided
//! on), reports [`EndpointEvent::Incoming`], and waits for [`Endpoint::accept_incoming`],
//! [`Endpoint::refuse_incoming`] or [`Endpoint::ignore_incoming`]. A record lives at most
//! [`EndpointConfig::incoming_lifetime`]; the client's retransmitted SYN finds the record and
//! makes no second one.

mod cookie;
mod map;
mod ports;
mod table;
mod turns;

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BinaryHeap, VecDeque};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cmp::Reverse;
use core::fmt;
use core::net::{IpAddr, SocketAddr};
use map::{HashKey, KeyedMap};
use turns::Fifo;

use bytes::{Bytes, BytesMut};

use crate::config::Config;
use crate::connection::{
    Connection, Out, Payload, PayloadRef, Template, Transmit, TransmitChunks, TransmitRef,
    is_valid_source, unspecified_like,
};
use crate::event::{CallError, CloseReason, Event, Status, TransmitError};
use crate::isn::timestamp_offset;
use crate::seq::SeqNum;
use crate::seq::{Window, WindowScale};
use crate::state::State;
use crate::time::Instant;
use crate::time_wait::{self, TimeWait, Verdict};
use crate::wire::{Flags, Options, Segment, TcpHeader, Timestamps};
use cookie::Cookies;
use table::{TupleHash, TupleTable};

pub use ports::EphemeralPorts;

/// Endpoint-wide settings and limits.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointConfig {
    /// The template every new connection starts from. Its `isn` should be
    /// [`crate::IsnSource::Keyed`] with a random secret (RFC 6528).
    pub connection: Config,
    /// Secret for ephemeral-port selection (RFC 6056 algorithm 3) and, hashed apart, for SYN
    /// cookies (RFC 4987). Random and private, like the ISN secret.
    pub secret: [u8; 16],
    /// The ephemeral port range (RFC 6056 §2.1: 49152–65535 by default).
    pub ephemeral_ports: (u16, u16),
    /// Connections at most (every state but TIME-WAIT, which has compact records).
    pub max_connections: usize,
    /// TIME-WAIT records at most; when full, the oldest is dropped early (counted).
    pub max_time_wait: usize,
    /// Connections at most per remote IP address.
    pub max_per_remote: usize,
    /// Events queued for the application at most; beyond, new ones are dropped and counted.
    pub max_events: usize,
    /// Stray replies (RSTs for segments that match nothing) queued at most.
    pub max_stray_replies: usize,
    /// Ended connections kept for reuse at most: the next connection takes over one's
    /// allocation and its send and receive buffers instead of allocating its own, so a server
    /// with short connections does not allocate per connection. Each holds up to its buffer
    /// capacities (`connection.send_buffer + connection.recv_buffer`) while it waits (a
    /// buffer that grew is freed first); 0 frees every ended connection at once.
    pub spare_connections: usize,
    /// The most octets all connections' buffers together may grow past their initial sizes
    /// (`Config::recv_buffer_max`, `Config::send_buffer_max`; default 64 MiB, two connections'
    /// worth at the default 16 MiB ceilings in both directions). When it is reached,
    /// connections stop growing — each refusal is counted in
    /// [`EndpointCounters::buffer_growth_refused`] — and carry on at the size they have: no
    /// window shrinks and no data is lost. An ended connection's growth returns to the pool.
    ///
    /// The endpoint grants growth after each call it makes into a connection, from its own
    /// count ([`Endpoint::buffer_memory`]): no lock or atomic is involved, and a
    /// standalone [`Connection`] is bounded by its own ceilings only.
    pub buffer_memory_limit: usize,
    /// How long a SYN recorded by a deferred listener ([`Endpoint::listen_deferred`]) waits
    /// for the application's decision before it is forgotten (the client's own SYN
    /// retransmissions then make a new record). Default 30 s.
    pub incoming_lifetime: core::time::Duration,
    /// Whether connections report [`Event::StateChanged`] (default false). Off, the two ends
    /// of a short connection (handshake, data both ways, close) queue nine events between
    /// them instead of nineteen; switch it on to trace the state machine (`nc --trace`,
    /// interoperability tests). [`Event::Connected`], `Readable`, `PeerClosed`, `Closed` and
    /// the endpoint's own events come either way.
    pub state_events: bool,
}

impl EndpointConfig {
    /// Defaults around a connection template: 65 536 connections, as many TIME-WAIT records,
    /// 1 024 per remote address, 8 spare connections, 64 MiB of buffer growth, no
    /// state-change events.
    pub fn new(connection: Config, secret: [u8; 16]) -> Self {
        Self {
            connection,
            secret,
            ephemeral_ports: (49_152, 65_535),
            max_connections: 65_536,
            max_time_wait: 65_536,
            max_per_remote: 1_024,
            max_events: 4_096,
            max_stray_replies: 256,
            spare_connections: 8,
            buffer_memory_limit: 64 * 1024 * 1024,
            incoming_lifetime: core::time::Duration::from_secs(30),
            state_events: false,
        }
    }
}

/// A connection of an [`Endpoint`]: an index and the generation of its slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionHandle {
    index: u32,
    generation: u32,
}

impl fmt::Display for ConnectionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}.{}", self.index, self.generation)
    }
}

/// A SYN a deferred listener holds for the application's decision
/// ([`Endpoint::listen_deferred`]). Never reused within an endpoint's life (a 64-bit count).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IncomingId(u64);

impl fmt::Display for IncomingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "incoming #{}", self.0)
    }
}

/// What an [`Endpoint`] tells the application.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndpointEvent {
    /// Something happened on a connection.
    Connection(ConnectionHandle, Event),
    /// A listener has a connection ready for [`Endpoint::accept`].
    Acceptable {
        /// The listening address.
        listener: SocketAddr,
    },
    /// A deferred listener recorded a SYN and waits for [`Endpoint::accept_incoming`],
    /// [`Endpoint::refuse_incoming`] or [`Endpoint::ignore_incoming`];
    /// [`Endpoint::incoming_addresses`] says where it goes and comes from.
    Incoming {
        /// The listening address.
        listener: SocketAddr,
        /// The recorded SYN.
        id: IncomingId,
    },
    /// A recorded SYN outlived [`EndpointConfig::incoming_lifetime`] undecided and was
    /// forgotten: its id is no longer valid.
    IncomingExpired {
        /// The listening address.
        listener: SocketAddr,
        /// The forgotten SYN.
        id: IncomingId,
    },
}

/// Why an endpoint call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndpointError {
    /// The handle names a connection that no longer exists.
    StaleHandle,
    /// The connection refused the call.
    Call(CallError),
    /// The connection limit (total or per remote address) is reached.
    TooManyConnections,
    /// No free ephemeral port for this remote address.
    PortsExhausted,
    /// Something already listens on this address.
    AddressInUse,
    /// No listener on this address.
    NotListening,
    /// The [`IncomingId`] names no recorded SYN (decided already, or expired).
    UnknownIncoming,
}

impl fmt::Display for EndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::StaleHandle => f.write_str("stale connection handle"),
            Self::Call(error) => write!(f, "{error}"),
            Self::TooManyConnections => f.write_str("connection limit reached"),
            Self::PortsExhausted => f.write_str("no free ephemeral port"),
            Self::AddressInUse => f.write_str("address already in use"),
            Self::NotListening => f.write_str("no listener on this address"),
            Self::UnknownIncoming => f.write_str("no such incoming connection"),
        }
    }
}

impl core::error::Error for EndpointError {}

impl From<CallError> for EndpointError {
    fn from(error: CallError) -> Self {
        Self::Call(error)
    }
}

/// Counters an embedding stack can read (drops by reason, replies, limits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointCounters {
    /// Segments handed in.
    pub segments_in: u64,
    /// Segments handed out.
    pub segments_out: u64,
    /// Segments dropped: checksum or structure (MUST-3, MUST-7).
    pub dropped_malformed: u64,
    /// SYNs dropped: from or to a broadcast, multicast or unspecified address (MUST-57, MUST-63).
    pub dropped_bad_address: u64,
    /// RSTs sent for segments that matched nothing (§3.10.7.1).
    pub rsts_sent: u64,
    /// Stray segments not answered because the reply queue was full.
    pub stray_replies_dropped: u64,
    /// SYNs refused because a listener's SYN queue was full.
    pub syn_queue_full: u64,
    /// Handshakes completed but dropped because a listener's accept queue was full.
    pub accept_queue_full: u64,
    /// SYNs refused by the connection limits.
    pub refused_by_limit: u64,
    /// Events dropped because the event queue was full.
    pub events_dropped: u64,
    /// TIME-WAIT records dropped early because their table was full.
    pub time_wait_evicted: u64,
    /// New SYNs that reopened a 4-tuple from TIME-WAIT (RFC 6191, MAY-2).
    pub time_wait_reopened: u64,
    /// ACKs a TIME-WAIT record did not send because its rate limit (RFC 5961 §7, the
    /// connection's challenge-ACK limit) was reached.
    pub time_wait_acks_suppressed: u64,
    /// SYN-ACKs sent with a SYN cookie because a SYN queue was full (RFC 4987).
    pub cookies_sent: u64,
    /// Connections created from a valid cookie ACK.
    pub cookies_accepted: u64,
    /// ACKs to a listener whose cookie did not check out (answered with a RST).
    pub cookies_refused: u64,
    /// Times a connection asked its buffers to grow by more than was left of
    /// [`EndpointConfig::buffer_memory_limit`] (it got what was left, or nothing).
    pub buffer_growth_refused: u64,
    /// ICMP errors that reached a connection.
    pub icmp_accepted: u64,
    /// ICMP errors dropped: no connection, or a quoted sequence number outside
    /// SND.UNA..SND.NXT (RFC 5927).
    pub icmp_dropped: u64,
    /// SYNs a deferred listener dropped because `backlog` SYNs already waited for a decision.
    pub incoming_dropped: u64,
    /// Retransmitted SYNs that found their SYN already recorded by a deferred listener.
    pub incoming_duplicates: u64,
    /// Recorded SYNs forgotten undecided after [`EndpointConfig::incoming_lifetime`].
    pub incoming_expired: u64,
}

/// A TIME-WAIT record as the endpoint files it. It belongs to the slot its connection had:
/// the 4-tuple table keeps pointing at that slot, whose `time_wait` is the record's place in
/// [`Endpoint::time_wait`] (a dense vector, so the records cost no hashing and their memory
/// follows their number).
#[derive(Clone, Copy, Debug)]
struct FiledTimeWait {
    record: TimeWait,
    /// The deadline of its entry in the expiry queue. A retransmitted FIN moves
    /// `record.expires` only; the entry is filed again when it comes due, so a record has one
    /// entry however often it restarts (the queue stays bounded by the records).
    at: Instant,
    local: SocketAddr,
    remote: SocketAddr,
    /// The slot it lives in.
    slot: u32,
    /// The hash its 4-tuple is filed under in the tuple table.
    hash: TupleHash,
}

/// `Slot::time_wait` of a slot that holds no TIME-WAIT record.
const NO_RECORD: u32 = u32::MAX;

/// A listener and its queues.
#[derive(Debug)]
struct Listener {
    backlog: usize,
    /// Made by [`Endpoint::listen_deferred`]: SYNs wait for the application.
    deferred: bool,
    /// SYNs recorded for the application's decision (deferred listeners only).
    pending: usize,
    /// Connections in SYN-RECEIVED created by this listener.
    half_open: usize,
    /// Established connections waiting for `accept`.
    ready: Fifo<ConnectionHandle>,
}

/// One connection slot.
#[derive(Debug)]
struct Slot {
    generation: u32,
    /// Where in [`Endpoint::time_wait`] this slot's TIME-WAIT record is, or [`NO_RECORD`]. A
    /// slot holds a live connection (`entry`), a TIME-WAIT record, or nothing (free).
    time_wait: u32,
    entry: Option<Entry>,
}

/// A live connection: 24 bytes beside the boxed TCB (its 4-tuple is the connection's own
/// local and last remote address, so it is not repeated here).
#[derive(Debug)]
struct Entry {
    connection: Box<Connection>,
    /// The deadline the timer heap knows for it; [`Instant::MAX`] when none.
    scheduled: Instant,
    /// The listener that created it, until it is accepted.
    listener: ListenerRef,
    /// In the transmit round-robin.
    queued: bool,
    /// Counted in its listener's SYN queue (`Listener::half_open`): made by a SYN, not a
    /// cookie, and not yet established.
    half_open: bool,
    /// The hash its 4-tuple is filed under, kept so freeing it need not hash again (it fits
    /// the padding: the entry stays 24 bytes).
    hash: TupleHash,
    /// Made by a SYN that reopened a TIME-WAIT record of its 4-tuple (MAY-2): the record
    /// stays until this connection is established, and only such a connection has one beside
    /// it (every other way to a connection checks the 4-tuple has no record).
    reopened: bool,
}

/// Which listener a connection belongs to until it is accepted: the one on the connection's
/// own local address, the wildcard one on its port or the catch-all one of its family (one
/// byte, not a 32-byte address).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ListenerRef {
    None,
    Exact,
    Wildcard,
    Any,
    /// The application's from its first segment ([`Endpoint::accept_incoming`]): no
    /// listener's, but, passive in SYN-RECEIVED, it would go back to LISTEN on a RST (MUST-11)
    /// where no listener would take it over, so it ends then instead.
    Deferred,
}

/// A SYN a deferred listener holds (its payload, if any, is not kept: the SYN-ACK will not
/// acknowledge it, so the client sends it again).
#[derive(Clone, Copy, Debug)]
struct PendingSyn {
    listener: SocketAddr,
    local: SocketAddr,
    remote: SocketAddr,
    header: TcpHeader,
    /// SEG.LEN of the SYN, for the ACK field of a refusal's RST.
    seg_len: u32,
}

impl Entry {
    /// The connection's 4-tuple (local, remote), also after a return to LISTEN.
    fn tuple(&self) -> (SocketAddr, SocketAddr) {
        (self.connection.local(), self.connection.last_remote())
    }

    /// The address of the listener it belongs to, if any.
    fn listener(&self) -> Option<SocketAddr> {
        self.listener.address(self.connection.local())
    }
}

impl ListenerRef {
    /// The address of the listener this refers to for a connection on `local`, if any.
    fn address(self, local: SocketAddr) -> Option<SocketAddr> {
        match self {
            Self::None | Self::Deferred => None,
            Self::Exact => Some(local),
            Self::Wildcard => Some(SocketAddr::new(unspecified_like(local.ip()), local.port())),
            Self::Any => Some(SocketAddr::new(unspecified_like(local.ip()), 0)),
        }
    }
}

/// A timer-heap entry: a deadline and the connection (slot index, generation) it belongs to.
/// 16 bytes; TIME-WAIT expiries live in their own FIFO (they all last 2×MSL, so they expire
/// in the order they start).
type TimerEntry = Reverse<(Instant, u32, u32)>;

/// Connections listed for their deadline to be filed before they are filed (each costs
/// [`Endpoint::poll_timeout`] one look at its timers).
const UNFILED_LIMIT: usize = 4;

/// Timer-heap entries allowed beyond twice the connection count before stale ones are dropped.
const TIMER_HEAP_SLACK: usize = 64;

/// Per-remote counts allowed beyond twice the connection count before those at zero are
/// dropped.
const PER_REMOTE_SLACK: usize = 64;

/// Expiry entries of deferred SYNs allowed beyond twice the live records before the stale
/// ones (of SYNs decided since) are dropped.
const PENDING_EXPIRY_SLACK: usize = 64;

/// How [`Endpoint::insert`] files a new connection.
#[derive(Clone, Copy, Debug)]
struct Filed {
    /// Its 4-tuple's hash in [`Endpoint::by_tuple`].
    hash: TupleHash,
    /// The listener that made it, if any (which one of the local address's).
    listener: ListenerRef,
    /// Counted in that listener's SYN queue (made by a SYN, not by a cookie; the caller
    /// counted it).
    half_open: bool,
    /// Where its remote's count is in [`Endpoint::per_remote`] (`None`: it has none yet), as
    /// [`Endpoint::check_limits`] found it just before.
    counted: Option<usize>,
}

/// What [`Endpoint::settle`] does about the transmit queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Queue {
    /// Queue the connection if it may transmit (asked unless it is queued already).
    Ask,
    /// Queue the connection: it has output (data was just queued), nothing to ask.
    Yes,
    /// Leave the queue as it is: output decided it.
    Decided,
}

/// A reply owed to a segment that matched nothing.
#[derive(Clone, Copy, Debug)]
struct StrayReply {
    local: SocketAddr,
    remote: SocketAddr,
    header: TcpHeader,
}

/// Many connections, listeners and TIME-WAIT records behind one sans-IO API.
pub struct Endpoint {
    config: EndpointConfig,
    /// The connection template, shared by every connection (one copy, not one per TCB).
    template: Template,
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// Slot indices by 4-tuple.
    by_tuple: TupleTable,
    /// The connection the last segment went to: a bulk transfer's segments all go to the same
    /// one, so this spares the keyed hash of the 4-tuple per segment. Only a hint — checked
    /// against the slot's generation and the connection's own tuple before it is used.
    recent: Option<ConnectionHandle>,
    /// The connection whose segment a `poll_output` wrote last (for the payload
    /// `poll_transmit_borrowed` lends from its send queue). A stray reply written since
    /// leaves it as it was: a reply has no payload, so nothing is lent for it.
    last_sender: Option<ConnectionHandle>,
    /// Ended connections whose allocations wait for reuse (at most `spare_connections`).
    #[expect(clippy::vec_box, reason = "the boxes themselves are what is reused")]
    spare: Vec<Box<Connection>>,
    per_remote: KeyedMap<IpAddr, usize>,
    listeners: KeyedMap<SocketAddr, Listener>,
    /// SYNs deferred listeners hold, by id (at most the sum of their backlogs).
    pending: BTreeMap<IncomingId, PendingSyn>,
    /// The same by 4-tuple (local, remote), so a retransmitted SYN finds its record.
    pending_by_tuple: KeyedMap<(SocketAddr, SocketAddr), IncomingId>,
    /// Expiries of pending SYNs in the order they were recorded (all last
    /// `incoming_lifetime`, so in order); entries of decided SYNs are skipped.
    pending_expiry: VecDeque<(Instant, IncomingId)>,
    next_incoming: u64,
    /// TIME-WAIT records, each in the slot its connection had (found through the 4-tuple
    /// table like a connection; `Slot::time_wait` says where it is here, and the vector stays
    /// dense). A record stays while a SYN that reopened its 4-tuple (MAY-2) is being
    /// handshaken: the new connection shadows it (connections are looked up first), it goes
    /// when that connection reaches ESTABLISHED, and it answers again if the handshake fails.
    time_wait: Vec<FiledTimeWait>,
    timers: BinaryHeap<TimerEntry>,
    /// Connections whose deadline may be earlier than the one filed in `timers`, or have none
    /// filed: listed once each (`Connection::deadline_listed`) and filed when
    /// [`handle_timeout`](Self::handle_timeout) runs or [`UNFILED_LIMIT`] are listed, so a
    /// connection that ends first (a short one's retransmission and TIME-WAIT deadlines)
    /// costs the heap nothing. [`poll_timeout`](Self::poll_timeout) looks at them too.
    unfiled: Vec<ConnectionHandle>,
    /// TIME-WAIT expiries (deadline, slot index, slot generation) in the order they were
    /// filed; an entry whose record was restarted or removed is stale and skipped. Nearly all
    /// are filed at now + 2×MSL, so in order; a connection retired late files its own earlier
    /// expiry, which then waits for the entries before it (a record may outlive 2×MSL a
    /// little, never fall short of it).
    time_wait_expiry: VecDeque<(Instant, u32, u32)>,
    transmit_queue: Fifo<ConnectionHandle>,
    strays: VecDeque<StrayReply>,
    events: Fifo<EndpointEvent>,
    ports: EphemeralPorts,
    cookies: Cookies,
    counters: EndpointCounters,
    /// Octets the live connections' buffers have grown past their initial sizes, all granted
    /// here (at most `config.buffer_memory_limit`).
    buffer_memory: usize,
    last_now: Instant,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("connections", &self.by_tuple.len())
            .field("listeners", &self.listeners.len())
            .field("time_wait", &self.time_wait.len())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// An endpoint with no connections.
    pub fn new(config: EndpointConfig) -> Self {
        let ports = EphemeralPorts::new(
            derive_key(config.secret, b"ports"),
            config.ephemeral_ports.0,
            config.ephemeral_ports.1,
        );
        let cookies = Cookies::new(derive_key(config.secret, b"cookies"));
        let mut template = config.connection.clone();
        template.state_events = config.state_events;
        let template = Template::new(Arc::new(template));
        let key = HashKey::new(
            derive_key(config.secret, b"tuples"),
            derive_key(config.secret, b"tuples, second half"),
        );
        let by_tuple = TupleTable::new(key);
        Self {
            config,
            template,
            slots: Vec::new(),
            free: Vec::new(),
            by_tuple,
            recent: None,
            last_sender: None,
            spare: Vec::new(),
            per_remote: KeyedMap::new(key),
            listeners: KeyedMap::new(key),
            pending: BTreeMap::new(),
            pending_by_tuple: KeyedMap::new(key),
            pending_expiry: VecDeque::new(),
            next_incoming: 0,
            time_wait: Vec::new(),
            timers: BinaryHeap::new(),
            unfiled: Vec::new(),
            time_wait_expiry: VecDeque::new(),
            transmit_queue: Fifo::new(),
            strays: VecDeque::new(),
            events: Fifo::new(),
            ports,
            cookies,
            counters: EndpointCounters::default(),
            buffer_memory: 0,
            last_now: Instant::ZERO,
        }
    }

    /// Counters of traffic, drops and limits.
    pub const fn counters(&self) -> &EndpointCounters {
        &self.counters
    }

    /// Octets the connections' buffers have grown past their initial sizes, in total: at most
    /// [`EndpointConfig::buffer_memory_limit`].
    pub const fn buffer_memory(&self) -> usize {
        self.buffer_memory
    }

    /// Live connections (TIME-WAIT records excluded).
    pub const fn connection_count(&self) -> usize {
        // The tuple table files both.
        self.by_tuple.len() - self.time_wait.len()
    }

    /// TIME-WAIT records held.
    pub fn time_wait_count(&self) -> usize {
        self.time_wait.len()
    }

    // ------------------------------------------------------------------ user calls

    /// Passive OPEN on `local` with room for `backlog` connections in the SYN queue and as many
    /// in the accept queue. A listener never disturbs existing connections on the same port
    /// (MUST-41, MUST-42): demultiplexing prefers the full 4-tuple, then a listener on the
    /// exact address, then one on the unspecified address and the port.
    ///
    /// `local` = `0.0.0.0:0` or `[::]:0` is the catch-all listener of its address family: it
    /// takes SYNs to any address and port that no other listener takes, and its connections'
    /// local address is the SYN's destination (what a transparent proxy needs). Its SYN queue,
    /// cookies and the per-remote limits bound memory as for any listener.
    ///
    /// # Errors
    ///
    /// [`EndpointError::AddressInUse`] when a listener is already on `local`.
    pub fn listen(&mut self, local: SocketAddr, backlog: usize) -> Result<(), EndpointError> {
        self.add_listener(local, backlog, false)
    }

    /// Passive OPEN on `local` (catch-all included, as for [`listen`](Self::listen)) whose
    /// SYNs wait for the application: each is recorded — at most `backlog` at once, the rest
    /// dropped unanswered and counted in [`EndpointCounters::incoming_dropped`] (no SYN
    /// cookie: a cookie would complete a handshake the application has not agreed to; the
    /// client retries its SYN) — and reported as [`EndpointEvent::Incoming`]. Nothing is sent
    /// until [`accept_incoming`](Self::accept_incoming) (the SYN-ACK) or
    /// [`refuse_incoming`](Self::refuse_incoming) (a RST); a record left undecided is
    /// forgotten after [`EndpointConfig::incoming_lifetime`]. The connection limits are
    /// checked when the SYN arrives and again on acceptance.
    ///
    /// A SYN that would reopen a TIME-WAIT 4-tuple (MAY-2) is not deferred: it gets the
    /// TIME-WAIT record's answer, as when a listener has no room.
    ///
    /// # Errors
    ///
    /// [`EndpointError::AddressInUse`] when a listener is already on `local`.
    pub fn listen_deferred(
        &mut self,
        local: SocketAddr,
        backlog: usize,
    ) -> Result<(), EndpointError> {
        self.add_listener(local, backlog, true)
    }

    fn add_listener(
        &mut self,
        local: SocketAddr,
        backlog: usize,
        deferred: bool,
    ) -> Result<(), EndpointError> {
        if self.listeners.contains_key(&local) {
            return Err(EndpointError::AddressInUse);
        }
        let listener = Listener { backlog, deferred, pending: 0, half_open: 0, ready: Fifo::new() };
        self.listeners.insert(local, listener);
        Ok(())
    }

    /// The (local, remote) addresses of a recorded SYN: where it went (for a catch-all
    /// listener, the original destination) and where it came from.
    pub fn incoming_addresses(&self, id: IncomingId) -> Option<(SocketAddr, SocketAddr)> {
        self.pending.get(&id).map(|pending| (pending.local, pending.remote))
    }

    /// Accepts a recorded SYN: a connection in SYN-RECEIVED is made for it now and its SYN-ACK
    /// queued. The connection is the application's at once (it never enters the listener's
    /// accept queue); [`Event::Connected`] says when its handshake completes. A RST from the
    /// client before that ends it with [`Event::Closed`].
    ///
    /// # Errors
    ///
    /// [`EndpointError::UnknownIncoming`] if `id` was decided or expired;
    /// [`EndpointError::TooManyConnections`] if the connection limits are reached now (the
    /// record is dropped unanswered; the client's retransmitted SYN makes a new one).
    pub fn accept_incoming(
        &mut self,
        now: Instant,
        id: IncomingId,
    ) -> Result<ConnectionHandle, EndpointError> {
        let now = self.advance_time(now);
        let pending = self.take_pending(id).ok_or(EndpointError::UnknownIncoming)?;
        let tuple = (pending.local, pending.remote);
        let counted = self.check_limits(pending.remote.ip())?;
        if taken(&self.by_tuple, &self.slots, &self.time_wait, tuple) {
            // A connection took the 4-tuple meanwhile (an active open picked this port).
            return Err(EndpointError::AddressInUse);
        }
        let segment = Segment { header: pending.header, payload: &[] };
        let mut connection = self.fresh_connection(pending.local);
        connection.open_passive_fresh(now);
        // The LISTEN state of this fresh TCB is an implementation detail of the endpoint.
        while connection.poll_event().is_some() {}
        connection.handle_segment(now, pending.remote.ip(), &segment);
        let hash = self.by_tuple.hash(tuple.0, tuple.1);
        let filed = Filed { hash, listener: ListenerRef::None, half_open: false, counted };
        let handle = self.insert(connection, &tuple, filed, Queue::Ask);
        if let Some(entry) = self.entry_mut(handle) {
            entry.listener = ListenerRef::Deferred;
        }
        Ok(handle)
    }

    /// Refuses a recorded SYN: the client gets `<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>`,
    /// the answer of RFC 9293 §3.10.7.2 to a SYN that is not accepted (as of §3.10.7.1 for a
    /// CLOSED port), which a kernel client reports as "connection refused".
    ///
    /// # Errors
    ///
    /// [`EndpointError::UnknownIncoming`] if `id` was decided or expired.
    pub fn refuse_incoming(&mut self, id: IncomingId) -> Result<(), EndpointError> {
        let pending = self.take_pending(id).ok_or(EndpointError::UnknownIncoming)?;
        let header = TcpHeader {
            src_port: pending.local.port(),
            dst_port: pending.remote.port(),
            seq: SeqNum::new(0),
            ack: pending.header.seq + pending.seg_len,
            flags: Flags::RST | Flags::ACK,
            window: 0,
            urgent_ptr: 0,
            options: Options::NONE,
        };
        self.queue_stray(StrayReply { local: pending.local, remote: pending.remote, header });
        Ok(())
    }

    /// Forgets a recorded SYN without answering it (the client retries, then times out).
    ///
    /// # Errors
    ///
    /// [`EndpointError::UnknownIncoming`] if `id` was decided or expired.
    pub fn ignore_incoming(&mut self, id: IncomingId) -> Result<(), EndpointError> {
        self.take_pending(id).map(drop).ok_or(EndpointError::UnknownIncoming)
    }

    /// Removes a pending SYN from its listener and the indices.
    fn take_pending(&mut self, id: IncomingId) -> Option<PendingSyn> {
        let pending = self.pending.remove(&id)?;
        self.pending_by_tuple.remove(&(pending.local, pending.remote));
        if let Some(listener) = self.listeners.get_mut(&pending.listener) {
            listener.pending = listener.pending.saturating_sub(1);
        }
        Some(pending)
    }

    /// A SYN for a deferred listener: recorded if there is room, for the application to
    /// decide on.
    #[cold]
    #[inline(never)]
    fn defer_syn(
        &mut self,
        now: Instant,
        listener: SocketAddr,
        tuple: (SocketAddr, SocketAddr),
        segment: &Segment<'_>,
    ) {
        let Some(state) = self.listeners.get_mut(&listener) else { return };
        if state.pending >= state.backlog {
            self.counters.incoming_dropped += 1;
            return;
        }
        if self.check_limits(tuple.1.ip()).is_err() {
            self.counters.refused_by_limit += 1;
            return;
        }
        if let Some(state) = self.listeners.get_mut(&listener) {
            state.pending += 1;
        }
        let id = IncomingId(self.next_incoming);
        self.next_incoming += 1;
        let (local, remote) = tuple;
        let pending = PendingSyn {
            listener,
            local,
            remote,
            header: segment.header,
            seg_len: segment.seg_len(),
        };
        self.pending.insert(id, pending);
        self.pending_by_tuple.insert(tuple, id);
        if self.pending_expiry.len() >= 2 * self.pending.len() + PENDING_EXPIRY_SLACK {
            // Entries of SYNs decided before their expiry: dropped here, so an application
            // deciding fast on a flood cannot grow the queue by SYN rate × lifetime (amortised
            // O(1) per SYN, as for the timer heap).
            let pending = &self.pending;
            self.pending_expiry.retain(|(_, id)| pending.contains_key(id));
        }
        self.pending_expiry.push_back((now + self.config.incoming_lifetime, id));
        self.push_event(EndpointEvent::Incoming { listener, id });
    }

    /// A segment on the 4-tuple of a recorded SYN: a retransmission of that SYN is absorbed
    /// (one record per 4-tuple); a SYN with another sequence number is a new attempt of the
    /// client and replaces the recorded one. Returns false for anything else, which goes on
    /// to the listener as if nothing were recorded (nothing was sent, so it is a stray).
    #[cold]
    #[inline(never)]
    fn on_pending_segment(&mut self, id: IncomingId, segment: &Segment<'_>) -> bool {
        let flags = segment.header.flags;
        if !flags.contains(Flags::SYN) || flags.contains(Flags::ACK) || flags.contains(Flags::RST) {
            return false;
        }
        self.counters.incoming_duplicates += 1;
        if let Some(pending) = self.pending.get_mut(&id) {
            pending.header = segment.header;
            pending.seg_len = segment.seg_len();
        }
        true
    }

    /// Stops listening on `local`. Connections already accepted are unaffected; the ones the
    /// listener still owns — half-open in its SYN queue, or established and waiting in its
    /// accept queue — are aborted, each peer getting a RST (RFC 9293 §3.10.5 ABORT in
    /// SYN-RECEIVED and ESTABLISHED), as Linux resets a closed listener's queues: no
    /// application could ever accept them, so kept they would be connections nobody owns.
    /// Their handles get [`Event::Closed`]. A handshake a SYN cookie was to complete later
    /// finds no listener and draws a RST then.
    ///
    /// Scans the connection slots once (listeners are few and rarely closed; keeping a list
    /// per listener would cost every handshake).
    pub fn unlisten(&mut self, local: SocketAddr) -> Result<(), EndpointError> {
        self.listeners.remove(&local).ok_or(EndpointError::NotListening)?;
        // Its recorded SYNs were never answered; they are forgotten as unanswered.
        let ids: Vec<IncomingId> = self
            .pending
            .iter()
            .filter(|(_, pending)| pending.listener == local)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.take_pending(id);
        }
        let now = self.last_now;
        let orphans: Vec<ConnectionHandle> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(index, slot)| {
                let entry = slot.entry.as_ref()?;
                (entry.listener() == Some(local)).then_some(ConnectionHandle {
                    index: u32::try_from(index).ok()?,
                    generation: slot.generation,
                })
            })
            .collect();
        for handle in orphans {
            if let Some(entry) = self.entry_mut(handle) {
                entry.listener = ListenerRef::None;
                // ABORT is refused only in CLOSED, where there is nothing to reset.
                let _ = entry.connection.abort(now);
            }
            self.after_call(handle);
        }
        Ok(())
    }

    /// The next established connection of the listener on `local`.
    pub fn accept(&mut self, local: SocketAddr) -> Result<Option<ConnectionHandle>, EndpointError> {
        let listener = self.listeners.get_mut(&local).ok_or(EndpointError::NotListening)?;
        let handle = listener.ready.pop_front();
        if let Some(handle) = handle
            && let Some(entry) = self.entry_mut(handle)
        {
            entry.listener = ListenerRef::None;
        }
        Ok(handle)
    }

    /// Active OPEN from `local_ip` (a port is chosen per RFC 6056, never colliding with a live
    /// 4-tuple or a TIME-WAIT record) to `remote`.
    pub fn connect(
        &mut self,
        now: Instant,
        local_ip: IpAddr,
        remote: SocketAddr,
    ) -> Result<ConnectionHandle, EndpointError> {
        let now = self.advance_time(now);
        let counted = self.check_limits(remote.ip())?;
        // The 4-tuple's hash for the table, kept from the check of the port picked: hashed
        // once per connect, not again to file it.
        let mut hashed = None;
        let taken = |port: u16| {
            let tuple = (SocketAddr::new(local_ip, port), remote);
            let hash = self.by_tuple.hash(tuple.0, tuple.1);
            hashed = Some(hash);
            taken_hashed(&self.by_tuple, &self.slots, &self.time_wait, tuple, hash)
                || self.pending_by_tuple.contains_key(&tuple)
                || self.listeners.contains_key(&tuple.0)
        };
        let port = self.ports.pick(local_ip, remote, taken).ok_or(EndpointError::PortsExhausted)?;
        let local = SocketAddr::new(local_ip, port);
        let hash = hashed.unwrap_or_else(|| self.by_tuple.hash(local, remote));
        let mut connection = self.fresh_connection(local);
        if let Err(error) = connection.open_active_fresh(now, remote) {
            // Refused (MUST-46) before anything changed but the renewal: the TCB stays a
            // spare if there is room for one.
            if self.spare.len() < self.config.spare_connections {
                self.spare.push(connection);
            }
            return Err(error.into());
        }
        // A fresh active open has its SYN to send: nothing to ask `may_transmit`.
        let filed = Filed { hash, listener: ListenerRef::None, half_open: false, counted };
        Ok(self.insert(connection, &(local, remote), filed, Queue::Yes))
    }

    /// SEND on a connection.
    pub fn send(
        &mut self,
        now: Instant,
        handle: ConnectionHandle,
        data: &[u8],
    ) -> Result<usize, EndpointError> {
        let now = self.advance_time(now);
        let sent = self.tcb_mut(handle)?.send(now, data)?;
        if !data.is_empty() {
            // Data taken is output to send; data refused asks the send buffer to grow.
            self.after_send(handle, sent);
        }
        Ok(sent)
    }

    /// SEND of a chunk kept by reference on a connection: [`Connection::send_bytes`] (takes
    /// as much as fits from the front and says how much; the caller offers the rest again).
    pub fn send_bytes(
        &mut self,
        now: Instant,
        handle: ConnectionHandle,
        data: Bytes,
    ) -> Result<usize, EndpointError> {
        let now = self.advance_time(now);
        let offered = !data.is_empty();
        let sent = self.tcb_mut(handle)?.send_bytes(now, data)?;
        if offered {
            // As `send`: data taken is output; data refused asks the buffer to grow.
            self.after_send(handle, sent);
        }
        Ok(sent)
    }

    /// SEND of several chunks kept by reference on a connection:
    /// [`Connection::write_chunks`] (whole chunks while they fit, a partly taken one advanced
    /// in place, fully taken ones left empty).
    pub fn write_chunks(
        &mut self,
        now: Instant,
        handle: ConnectionHandle,
        chunks: &mut [Bytes],
    ) -> Result<usize, EndpointError> {
        let now = self.advance_time(now);
        let offered = chunks.iter().any(|chunk| !chunk.is_empty());
        let sent = self.tcb_mut(handle)?.write_chunks(now, chunks)?;
        if offered {
            self.after_send(handle, sent);
        }
        Ok(sent)
    }

    /// RECEIVE on a connection.
    // In line, as `Connection::recv`: a call that finds nothing to read (most of a read
    // loop's) is answered by the slot lookup and a few tests in the caller, without a call.
    #[inline]
    pub fn recv(
        &mut self,
        handle: ConnectionHandle,
        buf: &mut [u8],
    ) -> Result<usize, EndpointError> {
        let read = self.tcb_mut(handle)?.recv(buf)?;
        if read > 0 {
            // Reading may open the window (a window update to send) or let an ended
            // connection retire; reading nothing changes nothing.
            self.after_read(handle);
        }
        Ok(read)
    }

    /// RECEIVE without a copy on a connection: [`Connection::read_chunk`].
    pub fn read_chunk(
        &mut self,
        handle: ConnectionHandle,
        max_len: usize,
    ) -> Result<Option<Bytes>, EndpointError> {
        let chunk = self.tcb_mut(handle)?.read_chunk(max_len)?;
        if chunk.is_some() {
            // As for `recv`: the window may open, or an ended connection retire.
            self.after_read(handle);
        }
        Ok(chunk)
    }

    /// RECEIVE of several chunks at once without a copy: [`Connection::read_chunks`] (the
    /// endpoint's bookkeeping runs once for the batch too).
    pub fn read_chunks(
        &mut self,
        handle: ConnectionHandle,
        out: &mut [Bytes],
    ) -> Result<usize, EndpointError> {
        let filled = self.tcb_mut(handle)?.read_chunks(out)?;
        if filled > 0 {
            // As for `recv`: the window may open, or an ended connection retire.
            self.after_read(handle);
        }
        Ok(filled)
    }

    /// RECEIVE of the next whole chunk without a copy: [`Connection::recv_bytes`].
    pub fn recv_bytes(&mut self, handle: ConnectionHandle) -> Result<Option<Bytes>, EndpointError> {
        self.read_chunk(handle, usize::MAX)
    }

    /// CLOSE (full) of a connection.
    pub fn close(&mut self, now: Instant, handle: ConnectionHandle) -> Result<(), EndpointError> {
        let now = self.advance_time(now);
        self.tcb_mut(handle)?.close(now)?;
        if !self.settle_output_only(handle, Queue::Ask) {
            self.after_call(handle);
        }
        Ok(())
    }

    /// CLOSE of the sending side only.
    pub fn shutdown(
        &mut self,
        now: Instant,
        handle: ConnectionHandle,
    ) -> Result<(), EndpointError> {
        let now = self.advance_time(now);
        self.tcb_mut(handle)?.shutdown(now)?;
        self.after_call(handle);
        Ok(())
    }

    /// ABORT of a connection.
    pub fn abort(&mut self, now: Instant, handle: ConnectionHandle) -> Result<(), EndpointError> {
        let now = self.advance_time(now);
        self.tcb_mut(handle)?.abort(now)?;
        self.after_call(handle);
        Ok(())
    }

    /// STATUS of a connection.
    pub fn status(&self, handle: ConnectionHandle) -> Result<Status, EndpointError> {
        self.entry(handle).map(|entry| entry.connection.status()).ok_or(EndpointError::StaleHandle)
    }

    /// Statistics of a connection in the manner of Linux's `TCP_INFO` (`Connection::info`).
    ///
    /// # Errors
    ///
    /// [`EndpointError::StaleHandle`] once the connection was freed.
    pub fn info(&self, handle: ConnectionHandle) -> Result<crate::event::TcpInfo, EndpointError> {
        self.entry(handle).map(|entry| entry.connection.info()).ok_or(EndpointError::StaleHandle)
    }

    /// Direct access to a connection, for settings such as `set_nodelay`. The endpoint
    /// visits the connection at the next [`poll_transmit`](Self::poll_transmit) whatever is
    /// done with it, so what a change lets it send (data that Nagle held, say) goes out then,
    /// and its events and timers are collected then too.
    pub fn connection_mut(
        &mut self,
        handle: ConnectionHandle,
    ) -> Result<&mut Connection, EndpointError> {
        let entry = self.entry_mut(handle).ok_or(EndpointError::StaleHandle)?;
        // Whatever the application does with it may stop it wanting to send.
        entry.connection.note_transmit_check(false);
        if !core::mem::replace(&mut entry.queued, true) {
            self.transmit_queue.push_back(handle);
        }
        self.tcb_mut(handle)
    }

    /// The connection behind `handle`, for the endpoint's own calls (each followed by the
    /// bookkeeping of [`after_call`](Self::after_call)). In line: callers in line in the
    /// application (`recv`) must not pay a call for a slot lookup.
    #[inline]
    fn tcb_mut(&mut self, handle: ConnectionHandle) -> Result<&mut Connection, EndpointError> {
        self.entry_mut(handle).map(|entry| &mut *entry.connection).ok_or(EndpointError::StaleHandle)
    }

    // ------------------------------------------------------------------ input

    /// A TCP segment (header and payload) from `src` to `dst`. It is validated — checksum (unless
    /// `Config::checksum` says the device verified it) and lengths (MUST-3, MUST-7) — and dropped
    /// with a count when bad; otherwise demultiplexed
    /// by 4-tuple, then TIME-WAIT records, then listeners, and a stray is answered with a RST.
    pub fn handle_segment(&mut self, now: Instant, src: IpAddr, dst: IpAddr, bytes: &[u8]) {
        self.handle_segment_in(now, src, dst, bytes, None);
    }

    /// A TCP segment (header and payload) from `src` to `dst`, handed over without a copy:
    /// validated and demultiplexed as by [`handle_segment`](Self::handle_segment), and a
    /// connection keeps its payload as a slice of `packet`
    /// ([`Connection::handle_segment_bytes`] says what that pins and how it counts against
    /// the window); the application takes it with [`read_chunk`](Self::read_chunk) or
    /// [`recv_bytes`](Self::recv_bytes).
    pub fn handle_segment_bytes(
        &mut self,
        now: Instant,
        src: IpAddr,
        dst: IpAddr,
        packet: BytesMut,
    ) {
        let allocation = packet.capacity();
        let packet = packet.freeze();
        self.handle_segment_in(now, src, dst, &packet, Some((&packet, allocation)));
    }

    /// Input of either form: `owner`, when given, is the packet `bytes` is (and the
    /// allocation it came in), for connections to keep slices of. In line in both (each is a
    /// thin wrapper, and a segment then costs one call into the endpoint, not two).
    #[inline(always)]
    fn handle_segment_in(
        &mut self,
        now: Instant,
        src: IpAddr,
        dst: IpAddr,
        bytes: &[u8],
        owner: Option<(&Bytes, usize)>,
    ) {
        let now = self.advance_time(now);
        self.counters.segments_in += 1;
        let rx = self.config.connection.checksum.rx;
        // Borrowed where it was parsed: moving it out of the `Result` would copy it.
        let parsed = Segment::parse_with_checksum(bytes, src, dst, rx);
        let Ok(segment) = &parsed else {
            self.counters.dropped_malformed += 1;
            return;
        };
        let header = &segment.header;
        // The common case first: the connection the last segment went to (a transfer's
        // segments all go to one, and a handshake's answer to the connection that just sent
        // its SYN), checked on its own fields, on one slot lookup and without building or
        // hashing the 4-tuple. A connection in TIME-WAIT takes the general path, which may
        // reopen it.
        if let Some(handle) = self.recent
            && let Some(entry) = self.entry_mut(handle)
            && entry.connection.has_tuple(dst, header.dst_port, src, header.src_port)
            && entry.connection.state() != State::TimeWait
        {
            deliver(&mut entry.connection, now, src, segment, owner);
            if settled_after_input(entry) {
                // What `settle` does when it finds nothing else to do.
                entry.connection.note_transmit_check(false);
                return;
            }
            self.after_call(handle);
            return;
        }
        self.demultiplex(now, src, dst, segment, owner);
    }

    /// [`handle_segment_in`](Self::handle_segment_in) of a segment that is not for the
    /// connection the last one went to: by 4-tuple, then TIME-WAIT records, deferred SYNs and
    /// listeners. Out of line, so the per-segment path above stays a few cache lines (a
    /// lifecycle comes here once, with its SYN).
    #[inline(never)]
    fn demultiplex(
        &mut self,
        now: Instant,
        src: IpAddr,
        dst: IpAddr,
        segment: &Segment<'_>,
        owner: Option<(&Bytes, usize)>,
    ) {
        let header = &segment.header;
        let remote = SocketAddr::new(src, header.src_port);
        let local = SocketAddr::new(dst, header.dst_port);
        let tuple = (local, remote);
        // Hashed once for both lookups.
        let hash = self.by_tuple.hash(local, remote);
        if let Some(handle) = lookup_hashed(&self.by_tuple, &self.slots, &tuple, hash) {
            self.recent = Some(handle);
            let Some(entry) = self.entry_mut(handle) else { return };
            if entry.connection.state() == State::TimeWait {
                self.on_time_wait_connection_segment(now, handle, (tuple, hash), segment, owner);
                return;
            }
            deliver(&mut entry.connection, now, src, segment, owner);
            self.after_call(handle);
            return;
        }
        if let Some(at) = self.time_wait_record(&tuple, hash) {
            self.on_time_wait_segment(now, at, segment);
            return;
        }
        if let Some(&id) = self.pending_by_tuple.get(&tuple)
            && self.on_pending_segment(id, segment)
        {
            return;
        }
        match self.listener_for(&local) {
            Some(listener) => self.on_listener_segment(now, listener, &tuple, hash, segment),
            None => self.reply_to_stray(tuple, segment),
        }
    }

    /// A segment for a connection in TIME-WAIT not yet retired to a record (its application
    /// still has data to read, or output was queued). It can be reopened too (MAY-2), unless
    /// that would throw away data the application has not read. `filed` is its 4-tuple and
    /// the hash it is filed under.
    #[cold]
    #[inline(never)]
    fn on_time_wait_connection_segment(
        &mut self,
        now: Instant,
        handle: ConnectionHandle,
        filed: ((SocketAddr, SocketAddr), TupleHash),
        segment: &Segment<'_>,
        owner: Option<(&Bytes, usize)>,
    ) {
        let (tuple, hash) = filed;
        let mut reopens = false;
        if let Some(entry) = self.entry_mut(handle) {
            let connection = &mut entry.connection;
            reopens = connection.unread_len() == 0
                && connection
                    .time_wait_record()
                    .is_some_and(|record| record.judge(segment) == Verdict::Reopen);
            if !reopens {
                deliver(connection, now, tuple.1.ip(), segment, owner);
            }
        }
        // The usual bookkeeping first (events, and the retirement of a connection whose
        // output is done), then a TIME-WAIT connection that would reopen becomes the record
        // it was to become anyway (the record answers exactly as it would), which reopens.
        self.after_call(handle);
        if reopens {
            self.retire(handle);
            if let Some(at) = self.time_wait_record(&tuple, hash) {
                self.on_time_wait_segment(now, at, segment);
            }
        }
    }

    /// The listener a segment to `local` belongs to: the one on exactly that address, else a
    /// wildcard one on its port, else the catch-all one of its family (which of them, for
    /// [`ListenerRef::address`]); with its bucket in [`Endpoint::listeners`], so that the
    /// SYN's checks and the new connection's count in the SYN queue need no lookup of their
    /// own (the map does not change in between).
    fn listener_for(&self, local: &SocketAddr) -> Option<(ListenerRef, usize)> {
        if let Some(at) = self.listeners.find(local) {
            return Some((ListenerRef::Exact, at));
        }
        let wildcard = SocketAddr::new(unspecified_like(local.ip()), local.port());
        if let Some(at) = self.listeners.find(&wildcard) {
            return Some((ListenerRef::Wildcard, at));
        }
        let any = SocketAddr::new(wildcard.ip(), 0);
        self.listeners.find(&any).map(|at| (ListenerRef::Any, at))
    }

    /// An ICMP error the embedding stack received about one of our segments:
    /// `quoted_src`/`quoted_dst` are the quoted IP header's addresses (ours, theirs) and
    /// `quoted_tcp` at least the first 8 octets of the quoted TCP header (ports and sequence
    /// number). It reaches its connection only if the quoted sequence number is in flight
    /// (RFC 5927); otherwise it is dropped and counted. See
    /// [`Connection::handle_icmp_error`] for what each kind does.
    pub fn handle_icmp_error(
        &mut self,
        now: Instant,
        error: crate::event::IcmpError,
        quoted_src: IpAddr,
        quoted_dst: IpAddr,
        quoted_tcp: &[u8],
    ) {
        let now = self.advance_time(now);
        let Some(&[a, b, c, d, s0, s1, s2, s3]) = quoted_tcp.first_chunk::<8>() else {
            self.counters.icmp_dropped += 1;
            return;
        };
        let local = SocketAddr::new(quoted_src, u16::from_be_bytes([a, b]));
        let remote = SocketAddr::new(quoted_dst, u16::from_be_bytes([c, d]));
        let quoted_seq = SeqNum::new(u32::from_be_bytes([s0, s1, s2, s3]));
        let Some(handle) = self.lookup((local, remote)) else {
            self.counters.icmp_dropped += 1;
            return;
        };
        let accepted = self
            .entry_mut(handle)
            .is_some_and(|entry| entry.connection.handle_icmp_error(now, error, quoted_seq));
        if accepted {
            self.counters.icmp_accepted += 1;
            self.after_call(handle);
        } else {
            self.counters.icmp_dropped += 1;
        }
    }

    /// A segment for a TIME-WAIT record: [`TimeWait::judge`] decides, exactly as for a
    /// connection in TIME-WAIT (RFC 9293 §3.10.7.4, RFC 1337, RFC 5961, RFC 6191).
    /// The record at `at` in [`Endpoint::time_wait`] (from
    /// [`time_wait_record`](Self::time_wait_record)) is the one the segment is for.
    #[inline(never)]
    fn on_time_wait_segment(&mut self, now: Instant, at: usize, segment: &Segment<'_>) {
        let Some(filed) = self.time_wait.get(at).copied() else { return };
        let (tuple, record) = ((filed.local, filed.remote), filed.record);
        match record.judge(segment) {
            Verdict::IgnoreRst | Verdict::Drop => {}
            Verdict::Ack { .. } => self.time_wait_ack(now, at, true),
            Verdict::Reopen => {
                // The record keeps its place: a new connection takes a slot of its own.
                if !self.reopen(now, tuple, filed.hash, record.snd_nxt, segment) {
                    // No listener, or no room in it: the SYN gets what a connection in
                    // TIME-WAIT gives it.
                    self.time_wait_ack(now, at, true);
                }
            }
            Verdict::AckFin => {
                // The restart moves the record's expiry only; its entry in the expiry queue is
                // filed again when it comes due (one entry per record, however many FINs).
                let expires = time_wait::expiry(now, self.config.connection.msl);
                if let Some(filed) = self.time_wait.get_mut(at) {
                    filed.record.expires = expires;
                    filed.record.on_fin_again(segment);
                }
                self.time_wait_ack(now, at, false);
            }
        }
    }

    /// Queues the record's `<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>`; when `limited`, only within
    /// its RFC 5961 §7 rate limit (the connection's challenge-ACK limit, per record).
    fn time_wait_ack(&mut self, now: Instant, at: usize, limited: bool) {
        let config = &self.config.connection;
        let (interval, limit) = (config.challenge_ack_interval, config.challenge_ack_limit);
        let Some(filed) = self.time_wait.get_mut(at) else { return };
        let tuple = (filed.local, filed.remote);
        if limited && !filed.record.acks.allow(now, interval, limit) {
            self.counters.time_wait_acks_suppressed += 1;
            return;
        }
        // The connection's timestamp clock: its offset is a function of the 4-tuple, so the
        // record need not keep it (RFC 7323 §7.1).
        let offset = timestamp_offset(&config.isn, tuple.0, tuple.1);
        let tsval = crate::connection::tsval(now, offset);
        let header = filed.record.ack_header(tuple.0.port(), tuple.1.port(), tsval);
        self.queue_stray(StrayReply { local: tuple.0, remote: tuple.1, header });
    }

    /// MAY-2 (RFC 9293 §3.6.1, RFC 6191): a SYN its record judged a reopen candidate starts a
    /// new incarnation through the listener, if there is one with room. Its ISS comes after
    /// the old SND.NXT (condition (1)); the record stays, shadowed by the new connection, until
    /// that reaches ESTABLISHED, so a handshake that proves the SYN an old duplicate (the peer
    /// answers with a RST, the SYN-ACK times out) leaves the 4-tuple in TIME-WAIT with its
    /// expiry unchanged (condition (2)). Returns whether it reopened.
    fn reopen(
        &mut self,
        now: Instant,
        tuple: (SocketAddr, SocketAddr),
        hash: TupleHash,
        old_snd_nxt: SeqNum,
        segment: &Segment<'_>,
    ) -> bool {
        let Some(listener) = self.listener_for(&tuple.0) else { return false };
        let Some(state) = self.listeners.at(listener.1) else { return false };
        if state.deferred {
            return false;
        }
        if state.ready.len() >= state.backlog {
            self.counters.accept_queue_full += 1;
            return false;
        }
        if state.half_open >= state.backlog {
            // No SYN cookie: a cookie is the ISS, which could not be after the old SND.NXT.
            self.counters.syn_queue_full += 1;
            return false;
        }
        let Ok(counted) = self.check_limits(tuple.1.ip()) else {
            self.counters.refused_by_limit += 1;
            return false;
        };
        self.counters.time_wait_reopened += 1;
        let filed = Filed { hash, listener: listener.0, half_open: true, counted };
        self.open_from_listener(now, listener.1, &tuple, filed, segment, Some(old_snd_nxt));
        true
    }

    /// A segment for a listener (which of the local address's listeners it is and its bucket,
    /// from [`listener_for`](Self::listener_for)): only a SYN makes a connection (§3.10.7.2).
    /// `hash` is the 4-tuple's hash in [`Endpoint::by_tuple`], from the lookup that found no
    /// connection.
    fn on_listener_segment(
        &mut self,
        now: Instant,
        (listener, at): (ListenerRef, usize),
        tuple: &(SocketAddr, SocketAddr),
        hash: TupleHash,
        segment: &Segment<'_>,
    ) {
        // The listener's address only for the rare paths that need it.
        let address = || listener.address(tuple.0).unwrap_or(tuple.0);
        let flags = segment.header.flags;
        if flags.contains(Flags::RST) {
            return;
        }
        // What the checks below need of the listener, on one lookup.
        let queues = self
            .listeners
            .at(at)
            .map(|state| (state.deferred, state.ready.len(), state.half_open, state.backlog));
        let deferred = queues.is_some_and(|(deferred, ..)| deferred);
        if deferred && flags.contains(Flags::ACK) && !flags.contains(Flags::SYN) {
            // A deferred listener sends no cookies: this ACK acknowledges nothing of ours.
            self.reply_to_stray(*tuple, segment);
            return;
        }
        if flags.contains(Flags::ACK) && !flags.contains(Flags::SYN) {
            // Either the ACK of a SYN cookie, or a stray that draws <SEQ=SEG.ACK><CTL=RST>.
            self.on_cookie_ack(now, address(), *tuple, hash, segment);
            return;
        }
        if !flags.contains(Flags::SYN) || flags.contains(Flags::ACK) {
            // §3.10.7.2: a SYN-ACK draws a RST, anything else is dropped.
            if flags.contains(Flags::ACK) {
                self.reply_to_stray(*tuple, segment);
            }
            return;
        }
        let (local, remote) = (&tuple.0, &tuple.1);
        if !is_valid_source(remote.ip()) || !is_valid_source(local.ip()) {
            // MUST-57, MUST-63.
            self.counters.dropped_bad_address += 1;
            return;
        }
        let Some((deferred, ready, half_open, backlog)) = queues else { return };
        if deferred {
            self.defer_syn(now, address(), *tuple, segment);
            return;
        }
        if ready >= backlog {
            // The accept queue is full: the application is not keeping up, so no new
            // connection (not even a cookie) is started; the client retries its SYN.
            self.counters.accept_queue_full += 1;
            return;
        }
        if half_open >= backlog {
            // SYN queue full (a flood, or a slow network): answer statelessly (RFC 4987).
            self.counters.syn_queue_full += 1;
            self.send_cookie(now, *tuple, segment);
            return;
        }
        let Ok(counted) = self.check_limits(remote.ip()) else {
            self.counters.refused_by_limit += 1;
            return;
        };
        let filed = Filed { hash, listener, half_open: true, counted };
        self.open_from_listener(now, at, tuple, filed, segment, None);
    }

    /// A new SYN-RECEIVED connection of the listener in bucket `at` of
    /// [`Endpoint::listeners`] (`filed.listener` says which of the local address's it is) for
    /// the SYN `segment`, counted in its SYN queue, whose ISS must come after `iss_after` when
    /// it reopens a TIME-WAIT 4-tuple. `filed.hash` is the 4-tuple's hash in
    /// [`Endpoint::by_tuple`], computed once for the segment's lookups (not again to file it).
    fn open_from_listener(
        &mut self,
        now: Instant,
        at: usize,
        tuple: &(SocketAddr, SocketAddr),
        filed: Filed,
        segment: &Segment<'_>,
        iss_after: Option<SeqNum>,
    ) {
        let (local, remote) = (tuple.0, &tuple.1);
        let mut connection = self.fresh_connection(local);
        connection.open_passive_fresh(now);
        if let Some(floor) = iss_after {
            connection.require_iss_after(floor);
        }
        // The LISTEN state of this fresh TCB is an implementation detail of the endpoint.
        connection.clear_events();
        // Demultiplexed here, by its 4-tuple and the listener: a LISTEN TCB takes a segment to
        // its local address from anyone.
        connection.handle_demultiplexed_segment(now, remote.ip(), segment);
        // Counted in the listener's SYN queue from the start (before the bookkeeping pass in
        // `insert`, which may retire it again).
        if let Some(state) = self.listeners.at_mut(at) {
            state.half_open += 1;
        }
        // In SYN-RECEIVED its SYN-ACK is owed: nothing to ask `may_transmit` (a SYN the TCB
        // turned down leaves it in another state, and then it is asked).
        let queue = if connection.state() == State::SynReceived { Queue::Yes } else { Queue::Ask };
        let handle = self.insert(connection, tuple, filed, queue);
        if iss_after.is_some()
            && let Some(entry) = self.entry_mut(handle)
        {
            // Beside the TIME-WAIT record it reopened, until it is established.
            entry.reopened = true;
        }
    }

    /// A SYN-ACK whose sequence number is a SYN cookie; no state is kept.
    #[cold]
    #[inline(never)]
    fn send_cookie(&mut self, now: Instant, tuple: (SocketAddr, SocketAddr), syn: &Segment<'_>) {
        let (local, remote) = tuple;
        let config = &self.config.connection;
        let offered = syn.header.options;
        // RFC 7323 §3.2: timestamps on a SYN-ACK only if the SYN carried them.
        let ts_clock = (config.timestamps && offered.timestamps.is_some())
            .then(|| crate::connection::tsval(now, timestamp_offset(&config.isn, local, remote)));
        let minted = self.cookies.mint(
            now,
            tuple,
            syn.header.seq,
            cookie::SynOptions {
                mss: offered.mss,
                window_scale: offered.window_scale,
                ts_clock,
                sack_permitted: config.sack && offered.sack_permitted,
            },
        );
        let mut options = Options::NONE;
        options.mss = Some(config.advertised_mss(local));
        if config.window_scaling && offered.window_scale.is_some() {
            // The shift the connection this cookie may become will use: for the ceiling.
            options.window_scale = Some(config.recv_window_scale().shift());
        }
        // RFC 2018 §2, only when the cookie keeps it (in the TSval): else neither side uses SACK.
        options.sack_permitted = minted.sack_permitted;
        if let (Some(tsval), Some(ts)) = (minted.tsval, offered.timestamps) {
            // The marked TSval tells the cookie ACK's echo from a forgery and carries SACK.
            options.timestamps = Some(Timestamps { tsval, tsecr: ts.tsval });
        }
        let window = Window::saturating(u32::try_from(config.recv_buffer).unwrap_or(u32::MAX))
            .to_scaled(WindowScale::NONE);
        let header = TcpHeader {
            src_port: local.port(),
            dst_port: remote.port(),
            seq: minted.iss,
            ack: syn.header.seq + 1,
            flags: Flags::SYN | Flags::ACK,
            window,
            urgent_ptr: 0,
            options,
        };
        self.counters.cookies_sent += 1;
        self.queue_stray(StrayReply { local, remote, header });
    }

    /// An ACK at a listener: a connection if it acknowledges a valid cookie and there is room
    /// (the table's LISTEN → ESTABLISHED `CookieAck` edge), else a RST.
    #[cold]
    #[inline(never)]
    fn on_cookie_ack(
        &mut self,
        now: Instant,
        listener: SocketAddr,
        tuple: (SocketAddr, SocketAddr),
        hash: TupleHash,
        segment: &Segment<'_>,
    ) {
        let (local, remote) = tuple;
        let header = segment.header;
        let config = &self.config.connection;
        let ts = header.options.timestamps.filter(|_| config.timestamps);
        let clock = || crate::connection::tsval(now, timestamp_offset(&config.isn, local, remote));
        let restored = self.cookies.check(now, tuple, header.seq, header.ack, ts, clock);
        let room = self.listeners.get(&listener).is_some_and(|l| l.ready.len() < l.backlog);
        let counted = self.check_limits(remote.ip());
        let (Some(cookie), true, Ok(counted)) = (restored, room, counted) else {
            self.counters.cookies_refused += 1;
            self.reply_to_stray(tuple, segment);
            return;
        };
        self.counters.cookies_accepted += 1;
        let mut connection = self.fresh_connection(local);
        connection.open_passive_fresh(now);
        connection.complete_cookie(now, remote, cookie);
        connection.handle_segment(now, remote.ip(), segment);
        let kind = listener_ref(listener, local);
        let filed = Filed { hash, listener: kind, half_open: false, counted };
        self.insert(connection, &tuple, filed, Queue::Ask);
    }

    /// §3.10.7.1: the RST for a segment that matches nothing (never for a RST).
    #[cold]
    #[inline(never)]
    fn reply_to_stray(&mut self, tuple: (SocketAddr, SocketAddr), segment: &Segment<'_>) {
        let incoming = segment.header;
        if incoming.flags.contains(Flags::RST) {
            return;
        }
        let (seq, ack, flags) = if incoming.flags.contains(Flags::ACK) {
            (incoming.ack, SeqNum::new(0), Flags::RST)
        } else {
            (SeqNum::new(0), incoming.seq + segment.seg_len(), Flags::RST | Flags::ACK)
        };
        let header = TcpHeader {
            src_port: tuple.0.port(),
            dst_port: tuple.1.port(),
            seq,
            ack,
            flags,
            window: 0,
            urgent_ptr: 0,
            options: Options::NONE,
        };
        self.queue_stray(StrayReply { local: tuple.0, remote: tuple.1, header });
    }

    fn queue_stray(&mut self, reply: StrayReply) {
        if self.strays.len() >= self.config.max_stray_replies {
            self.counters.stray_replies_dropped += 1;
        } else {
            self.strays.push_back(reply);
        }
    }

    // ------------------------------------------------------------------ output

    /// Writes the next segment into `buf` (TCP header and payload; pass a slice after room for
    /// your IP header) and says where it goes. Replies to strays come first, then connections
    /// in turn, one segment each, so no connection starves the others.
    // Inlined into the caller: most polls find nothing to send (12 of 21 a churn lifecycle)
    // and are answered by `nothing_to_send`'s two queue tests without a call.
    #[inline]
    pub fn poll_transmit(
        &mut self,
        now: Instant,
        buf: &mut [u8],
    ) -> Result<Option<Transmit>, TransmitError> {
        if self.nothing_to_send(now) {
            return Ok(None);
        }
        self.poll_output(now, &mut Out::new(buf, None))
    }

    /// Like [`Endpoint::poll_transmit`], but without copying the payload (as
    /// [`Connection::poll_transmit_chunks`]): only the TCP header goes into `header_buf` (60
    /// octets always suffice), checksummed over the payload too, and the payload is handed
    /// out as slices of the connection's send queue, to be written after the header as
    /// iovecs. `transmit.len` is the whole segment; `header_len` the part in `header_buf`.
    ///
    /// # Errors
    ///
    /// As `poll_transmit`: a `header_buf` too small for the header is an error and nothing is
    /// consumed.
    // Inlined into the caller, which takes the descriptor apart in its own frame: the
    // payload's 240 octets are then not copied out of here and again by the caller
    // (callgrind, `bulk_mtu1500_bytes`: 84 instructions a segment fewer).
    #[inline]
    pub fn poll_transmit_chunks(
        &mut self,
        now: Instant,
        header_buf: &mut [u8],
    ) -> Result<Option<TransmitChunks>, TransmitError> {
        if self.nothing_to_send(now) {
            return Ok(None);
        }
        let mut payload = Payload::default();
        let Some(transmit) =
            self.poll_output(now, &mut Out::new(header_buf, Some(&mut payload)))?
        else {
            return Ok(None);
        };
        // Built in the return slot, not in a closure: the payload (a few hundred octets) is
        // then moved once rather than twice.
        let segment_size = payload.len();
        let header_len = transmit.len - segment_size;
        Ok(Some(TransmitChunks { transmit, header_len, payload, segment_size }))
    }

    /// Like [`Endpoint::poll_transmit_chunks`], but the payload is lent rather than handed
    /// out, as [`Connection::poll_transmit_borrowed`] describes: it borrows the sending
    /// connection's send queue until the endpoint is next used, and no chunk's reference
    /// count is touched.
    ///
    /// # Errors
    ///
    /// As `poll_transmit_chunks`.
    #[inline]
    pub fn poll_transmit_borrowed(
        &mut self,
        now: Instant,
        header_buf: &mut [u8],
    ) -> Result<Option<TransmitRef<'_>>, TransmitError> {
        if self.nothing_to_send(now) {
            return Ok(None);
        }
        let mut out = Out::lending(header_buf);
        let Some(transmit) = self.poll_output(now, &mut out)? else {
            return Ok(None);
        };
        let (offset, len) = out.range;
        // A segment with data comes from a connection, which sending it never retires (only
        // a connection in CLOSED, TIME-WAIT or back in LISTEN is, and none of them sends data).
        let sender = self.last_sender.and_then(|handle| self.entry_mut(handle));
        let payload = match sender {
            Some(entry) => entry.connection.payload_ref(offset, len),
            None if len == 0 => PayloadRef::empty(),
            // Never (see above). Were it to happen, the segment is not handed out: the
            // connection counts it sent, and its retransmission timer resends the data.
            None => {
                debug_assert!(false, "a segment with data from no connection");
                return Ok(None);
            }
        };
        Ok(Some(TransmitRef::new(transmit, payload)))
    }

    /// Like [`Endpoint::poll_transmit_chunks`], but a connection's output may be a
    /// super-segment of up to `max_segments` wire segments, as
    /// [`Connection::poll_transmit_gso`] describes (which see for the header, its checksum
    /// field, [`TransmitChunks::segment_size`] and the limits). Connections take turns by
    /// output, a super-segment being one turn; `EndpointCounters::segments_out` counts wire
    /// segments.
    ///
    /// # Errors
    ///
    /// As `poll_transmit_chunks`: a `header_buf` too small for the header is an error and
    /// nothing is consumed.
    // Inlined into the caller, as `poll_transmit_chunks` is.
    #[inline]
    pub fn poll_transmit_gso(
        &mut self,
        now: Instant,
        header_buf: &mut [u8],
        max_segments: usize,
    ) -> Result<Option<TransmitChunks>, TransmitError> {
        if self.nothing_to_send(now) {
            return Ok(None);
        }
        let mut payload = Payload::default();
        let mut out = Out::new(header_buf, Some(&mut payload));
        out.max_segments = max_segments;
        let Some(transmit) = self.poll_output(now, &mut out)? else {
            return Ok(None);
        };
        let segment_size = if out.pieces > 1 { out.segment_size } else { payload.len() };
        let header_len = transmit.len - payload.len();
        Ok(Some(TransmitChunks { transmit, header_len, payload, segment_size }))
    }

    /// Whether no stray reply and no connection waits to send: then a poll for output is
    /// answered at once (it still moves the clock, as every poll does), without building the
    /// output descriptor or its payload slices. Most polls of a request/response exchange
    /// find nothing, so this is the common answer.
    #[inline]
    fn nothing_to_send(&mut self, now: Instant) -> bool {
        if self.transmit_queue.is_empty() && self.strays.is_empty() {
            self.advance_time(now);
            return true;
        }
        false
    }

    fn poll_output(
        &mut self,
        now: Instant,
        out: &mut Out<'_>,
    ) -> Result<Option<Transmit>, TransmitError> {
        let now = self.advance_time(now);
        if let Some(reply) = self.strays.front().copied() {
            if let Some(payload) = out.payload.as_deref_mut() {
                payload.clear();
            }
            let (src, dst, tx) =
                (reply.local.ip(), reply.remote.ip(), self.config.connection.checksum.tx);
            let len = reply.header.emit_with_checksum(&[], src, dst, out.buf, tx)?;
            self.strays.pop_front();
            if reply.header.flags.contains(Flags::RST) {
                self.counters.rsts_sent += 1;
            }
            self.counters.segments_out += 1;
            let (ttl, ds_field) = (self.config.connection.ttl, self.config.connection.ds_field);
            return Ok(Some(Transmit {
                len,
                local: reply.local,
                remote: reply.remote,
                ttl,
                ds_field,
            }));
        }
        // The connection at the front stays in the queue until its turn is over: a lone
        // sender (a bulk transfer) is then never taken out and put back.
        while let Some(handle) = self.transmit_queue.front() {
            let Some(entry) = self.entry_mut(handle) else {
                self.transmit_queue.pop_front();
                continue;
            };
            match entry.connection.poll_output(now, out) {
                Ok(Some(transmit)) => {
                    let more = entry.connection.may_transmit();
                    // Still so at its next `poll_output`: what follows (`after_output`) can
                    // grant buffer growth, which only adds reasons to send.
                    entry.connection.note_transmit_check(more);
                    // Most segments leave nothing for `after_output` to do (a pure ACK, or a
                    // segment under a timer already filed): then the slot is not visited
                    // again.
                    let quiet = settled_after_output(entry, more);
                    if !more {
                        // Done for now: no visit just to hear "nothing".
                        entry.queued = false;
                        self.transmit_queue.pop_front();
                    } else if self.transmit_queue.len() > 1 {
                        // Back of the line: the next call serves another connection.
                        self.transmit_queue.pop_front();
                        self.transmit_queue.push_back(handle);
                    }
                    self.counters.segments_out += out.pieces.max(1) as u64;
                    self.last_sender = Some(handle);
                    if !quiet {
                        self.after_output(handle);
                    }
                    return Ok(Some(transmit));
                }
                Ok(None) => {
                    entry.queued = false;
                    self.transmit_queue.pop_front();
                    self.after_output(handle);
                }
                // Still at the front: the next call tries it first again.
                Err(error) => return Err(error),
            }
        }
        Ok(None)
    }

    /// The next event for the application.
    // Inlined into the caller: a queue pop, usually of nothing (the application polls until
    // `None`).
    #[inline]
    pub fn poll_event(&mut self) -> Option<EndpointEvent> {
        self.events.pop_front()
    }

    /// The earliest deadline of all connections and TIME-WAIT records (a heap peek, two
    /// queue peeks and the few connections whose deadline is not filed yet: no scan).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let connections = self.timers.peek().map(|Reverse((at, _, _))| *at);
        let unfiled = self.unfiled.iter().filter_map(|&handle| self.entry(handle));
        let unfiled = unfiled.filter_map(|entry| entry.connection.poll_timeout()).min();
        let time_wait = self.time_wait_expiry.front().map(|&(at, _, _)| at);
        let pending = self.pending_expiry.front().map(|(at, _)| *at);
        [connections, unfiled, time_wait, pending].into_iter().flatten().min()
    }

    /// Runs every timer due at `now`. Harmless when called early.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.advance_time(now);
        loop {
            // Filed first, and again after each connection's timers ran (which may arm new
            // ones, due now too).
            self.file_unfiled();
            let Some(Reverse((at, index, generation))) = self.timers.peek().copied() else {
                break;
            };
            if at > now {
                break;
            }
            self.timers.pop();
            let handle = ConnectionHandle { index, generation };
            let Some(entry) = self.entry_mut(handle) else { continue };
            if entry.scheduled != at {
                // A stale heap entry: the connection rescheduled since.
                continue;
            }
            entry.scheduled = Instant::MAX;
            entry.connection.handle_timeout(now);
            self.after_call(handle);
        }
        while let Some(&(at, index, generation)) = self.time_wait_expiry.front() {
            if at > now {
                break;
            }
            self.time_wait_expiry.pop_front();
            // Stale when the record went (and its slot may hold something else since).
            let Some(place) = self.filed_time_wait(at, index, generation) else { continue };
            let Some(filed) = self.time_wait.get_mut(place) else { continue };
            if filed.record.expires <= now {
                self.remove_time_wait(place);
            } else {
                // Restarted by a retransmitted FIN since it was filed: file it again.
                filed.at = filed.record.expires;
                self.time_wait_expiry.push_back((filed.at, index, generation));
            }
        }
        while let Some(&(at, id)) = self.pending_expiry.front() {
            if at > now {
                break;
            }
            self.pending_expiry.pop_front();
            // Decided already when absent: a stale entry.
            if let Some(pending) = self.take_pending(id) {
                self.counters.incoming_expired += 1;
                self.push_event(EndpointEvent::IncomingExpired { listener: pending.listener, id });
            }
        }
    }

    // ------------------------------------------------------------------ bookkeeping

    /// The endpoint's clock, which never runs back (in line: three instructions, and the
    /// in-line `poll_transmit` calls it in the application).
    #[inline]
    fn advance_time(&mut self, now: Instant) -> Instant {
        self.last_now = self.last_now.max(now);
        self.last_now
    }

    /// Whether one more connection with `remote` stays within the limits; if so, where the
    /// remote's count is in [`Endpoint::per_remote`] (`None`: it has none), for
    /// [`insert`](Self::insert) to count the connection without a lookup of its own (nothing
    /// changes the map between a check and the insertion it allows).
    fn check_limits(&self, remote: IpAddr) -> Result<Option<usize>, EndpointError> {
        let counted = self.per_remote.find(&remote);
        let per_remote = counted.and_then(|at| self.per_remote.at(at)).copied().unwrap_or(0);
        if self.connection_count() >= self.config.max_connections
            || per_remote >= self.config.max_per_remote
        {
            return Err(EndpointError::TooManyConnections);
        }
        Ok(counted)
    }

    /// A CLOSED connection bound to `local`, managed by this endpoint: an ended one's TCB
    /// renewed in place (its allocations reused) when there is one, else a new one.
    fn fresh_connection(&mut self, local: SocketAddr) -> Box<Connection> {
        match self.spare.pop() {
            Some(mut spare) => {
                spare.renew(&self.template, local);
                spare
            }
            None => self.new_connection(local),
        }
    }

    /// A new TCB, allocated (out of line: once warm, the spares' are renewed).
    #[cold]
    #[inline(never)]
    fn new_connection(&self, local: SocketAddr) -> Box<Connection> {
        let config = Arc::clone(self.template.config());
        let mut connection = Box::new(Connection::new(config, local));
        connection.manage_buffer_growth();
        connection
    }

    /// The live connection filed under `tuple`.
    fn lookup(&self, tuple: (SocketAddr, SocketAddr)) -> Option<ConnectionHandle> {
        lookup(&self.by_tuple, &self.slots, tuple)
    }

    /// Files a new connection under `tuple` (its local address and remote) as `filed` says,
    /// then does the bookkeeping after a call with `queue` (`Queue::Yes` when it has its
    /// first segment to send for certain).
    fn insert(
        &mut self,
        connection: Box<Connection>,
        tuple: &(SocketAddr, SocketAddr),
        filed: Filed,
        queue: Queue,
    ) -> ConnectionHandle {
        let Filed { hash, listener, half_open, counted } = filed;
        let entry = Entry {
            connection,
            scheduled: Instant::MAX,
            listener,
            queued: false,
            half_open,
            hash,
            reopened: false,
        };
        let handle = match self.free.pop() {
            Some(index) => {
                let generation = self.slots.get(index as usize).map_or(0, |slot| slot.generation);
                if let Some(slot) = self.slots.get_mut(index as usize) {
                    slot.entry = Some(entry);
                }
                ConnectionHandle { index, generation }
            }
            None => self.new_slot(entry),
        };
        self.by_tuple.insert(hash, handle.index);
        // The next segment in is most likely this connection's (a handshake's answer).
        self.recent = Some(handle);
        // The count's bucket as `check_limits` found it just before.
        match counted.and_then(|at| self.per_remote.at_mut_recent(at)) {
            Some(count) => *count += 1,
            None => self.count_new_remote(tuple.1.ip()),
        }
        if !self.settle_new(handle, queue) {
            self.settle(handle, queue);
        }
        handle
    }

    /// Puts `handle` in the transmit queue (`enqueue`) and among the deadlines to file
    /// (`list`), as `settle` decided.
    #[inline(always)]
    fn queue_and_list(&mut self, handle: ConnectionHandle, enqueue: bool, list: bool) {
        if enqueue {
            self.transmit_queue.push_back(handle);
        }
        if list {
            self.unfiled.push(handle);
            if self.unfiled.len() >= UNFILED_LIMIT {
                self.file_unfiled();
            }
        }
    }

    /// [`settle`](Self::settle)'s work for a connection just filed (its first deadline is
    /// to be listed, as none is filed) when there is nothing else to do: no event, no buffer
    /// growth, and a state that cannot have ended (a SYN turned down may leave it so; then
    /// `settle` does it all). Returns `false`, having changed nothing, otherwise.
    fn settle_new(&mut self, handle: ConnectionHandle, queue: Queue) -> bool {
        debug_assert!(queue != Queue::Decided);
        let Some(entry) = self.entry_mut(handle) else { return false };
        if !settles_in_place(&entry.connection) {
            return false;
        }
        let enqueue = queue_in_place(entry, queue);
        let connection = &mut entry.connection;
        // As `settle` lists it: the flag taken, and no deadline filed (`scheduled` is
        // `Instant::MAX`), so listed unless it is already.
        let moved = connection.take_earlier_deadline() || entry.scheduled == Instant::MAX;
        let list = moved && !connection.deadline_listed();
        if list {
            connection.set_deadline_listed(true);
        }
        self.queue_and_list(handle, enqueue, list);
        true
    }

    /// A slot for `entry` past the existing ones (out of line: once warm, slots are reused).
    #[cold]
    #[inline(never)]
    fn new_slot(&mut self, entry: Entry) -> ConnectionHandle {
        // Slot indices stay below the connection limit, far below 2^32.
        let index = self.slots.len() as u32;
        self.slots.push(Slot { generation: 0, time_wait: NO_RECORD, entry: Some(entry) });
        ConnectionHandle { index, generation: 0 }
    }

    /// The first connection with `remote` since its count was swept: counted from one.
    #[inline(never)]
    fn count_new_remote(&mut self, remote: IpAddr) {
        if self.per_remote.len() >= 2 * self.by_tuple.len() + PER_REMOTE_SLACK {
            // Counts that fell to zero stay (see `release_connection`); they go here, when
            // they are at least half the map: amortised O(1) per new remote, and the map
            // stays within twice the connections.
            self.per_remote.retain(|_, count| *count > 0);
        }
        self.per_remote.insert(remote, 1);
    }

    fn entry(&self, handle: ConnectionHandle) -> Option<&Entry> {
        let slot = self.slots.get(handle.index as usize)?;
        if slot.generation != handle.generation {
            return None;
        }
        slot.entry.as_ref()
    }

    fn entry_mut(&mut self, handle: ConnectionHandle) -> Option<&mut Entry> {
        let slot = self.slots.get_mut(handle.index as usize)?;
        if slot.generation != handle.generation {
            return None;
        }
        slot.entry.as_mut()
    }

    /// After any input to a connection: collect its events, queue it for output, reschedule
    /// its timer, and retire it if it ended. (In line: a name for one call, also from the
    /// application's in-line `recv`.)
    #[inline]
    fn after_call(&mut self, handle: ConnectionHandle) {
        self.settle(handle, Queue::Ask);
    }

    /// After a SEND that took `sent` octets: as [`after_call`](Self::after_call), but taken
    /// data is sequence space queued past SND.NXT, which `may_transmit` answers yes to by
    /// definition, so it is not asked.
    #[inline]
    fn after_send(&mut self, handle: ConnectionHandle, sent: usize) {
        let queue = if sent > 0 { Queue::Yes } else { Queue::Ask };
        if !self.settle_output_only(handle, queue) {
            self.settle(handle, queue);
        }
    }

    /// [`settle`](Self::settle)'s work when a call left nothing for it but output to queue
    /// (`queue` says how, not `Queue::Decided`): no event, no deadline to list, no buffer
    /// growth to grant, and a state that cannot have ended. Then it is queued here, as
    /// `settle` would queue it, without its frame; returns `false`, having changed nothing,
    /// otherwise. (A SEND or CLOSE on an open connection: nothing but its output to queue.)
    #[inline(always)]
    fn settle_output_only(&mut self, handle: ConnectionHandle, queue: Queue) -> bool {
        debug_assert!(queue != Queue::Decided);
        let Some(entry) = self.entry_mut(handle) else { return false };
        if !(nothing_to_file(entry) && settles_in_place(&entry.connection)) {
            return false;
        }
        if queue_in_place(entry, queue) {
            self.transmit_queue.push_back(handle);
        }
        true
    }

    /// After a RECEIVE that took data: as [`after_call`](Self::after_call), usually with
    /// nothing but a window update to look for (out of line: `recv` is in line in the
    /// application).
    #[inline(never)]
    fn after_read(&mut self, handle: ConnectionHandle) {
        if !self.settle_output_only(handle, Queue::Ask) {
            self.settle(handle, Queue::Ask);
        }
    }

    /// After output: the connection may have armed timers (persist, keep-alive). Whether it
    /// stays in the transmit queue was decided by the output itself.
    fn after_output(&mut self, handle: ConnectionHandle) {
        self.settle(handle, Queue::Decided);
    }

    /// The bookkeeping after every call into a connection, on one slot lookup past the
    /// events: queue it for output (as `queue` says: if it may transmit, or at once), list it
    /// for its deadline to be filed if that moved earlier or appeared (`file_unfiled`; a later
    /// one leaves a harmless early heap entry that is skipped when it fires), and retire it if
    /// its state says it may have ended.
    ///
    /// Out of line, one copy for every caller: a second, inlined copy in the transmit loop
    /// saved a call per segment but doubled the code a lifecycle runs through (callgrind
    /// churn: 1 225 -> ~900 I1 misses per lifecycle for 161 more instructions).
    #[inline(never)]
    fn settle(&mut self, handle: ConnectionHandle, queue: Queue) {
        let queue_output = queue != Queue::Decided;
        let Some(slot) = self.slots.get_mut(handle.index as usize) else { return };
        // Two tests, two branches: written as one (`filter`), they were made branch-free and
        // the lookup took 14 instructions rather than 10, 17 times a lifecycle.
        if slot.generation != handle.generation {
            return;
        }
        let Some(entry) = slot.entry.as_mut() else { return };
        // Buffer growth first (it may queue a Writable event): granted from the endpoint's own
        // count, on the lookup everything else needs anyway.
        let available = self.config.buffer_memory_limit.saturating_sub(self.buffer_memory);
        let grant = entry.connection.grant_buffer_growth(available);
        self.buffer_memory += grant.granted;
        if grant.refused {
            self.counters.buffer_growth_refused += 1;
        }
        // Many calls leave nothing else to do: no events, no deadline moved earlier, no output
        // to queue and no end to look at.
        let connection = &entry.connection;
        let quiet = connection.pending_events().is_empty()
            && nothing_to_file(entry)
            && (entry.queued || !queue_output)
            && (entry.queued
                || !matches!(connection.state(), State::TimeWait | State::Closed | State::Listen));
        if quiet {
            if queue_output {
                entry.connection.note_transmit_check(false);
            }
            return;
        }
        // Events next: a finished handshake may move the connection between a listener's
        // queues, or reset it when the accept queue is full, before the rest looks at it. The
        // slot, the queue and the counters are separate fields: one lookup for all events.
        let mut established = false;
        let events = entry.connection.pending_events();
        if !events.is_empty() {
            for &event in events {
                established |= event == Event::Connected;
                let event = EndpointEvent::Connection(handle, event);
                push_bounded(&mut self.events, &mut self.counters, self.config.max_events, event);
            }
            entry.connection.clear_events();
        }
        // Only a listener's connection (or a deferred one, or one that reopened a TIME-WAIT
        // record) has anything to do on its handshake's completion: a connection the
        // application opened (a client's) skips the call and the lookup after it.
        let entry = if established && (entry.listener != ListenerRef::None || entry.reopened) {
            // Once per connection: its own lookup afterwards.
            self.on_established(handle);
            let Some(entry) = self.entry_mut(handle) else { return };
            entry
        } else {
            entry
        };
        // The TCB apart from the entry's own fields, so that the entry's stores do not make
        // the box be read again before each use of the TCB.
        let connection: &mut Connection = &mut entry.connection;
        debug_assert!(
            queue != Queue::Yes || connection.may_transmit(),
            "data was queued, yet may_transmit says no"
        );
        let enqueue =
            queue_output && !entry.queued && (queue == Queue::Yes || connection.may_transmit());
        entry.queued |= enqueue;
        if queue_output {
            // The connection's next `poll_output` may skip asking again only if this was the
            // last look at it: a connection already queued was changed since its check.
            connection.note_transmit_check(enqueue);
        }
        // The filed deadline is no later than the connection's own unless a timer moved earlier
        // since; with none filed (new, or its heap entry just fired) there is one to file too.
        // Either way the connection is listed, and its deadline filed later (`file_unfiled`).
        let moved = connection.take_earlier_deadline() || entry.scheduled == Instant::MAX;
        let list = moved && !connection.deadline_listed();
        if list {
            connection.set_deadline_listed(true);
        }
        // Once its last segment is out (nothing queued: a final ACK or a RST may be), a
        // connection in TIME-WAIT becomes a compact record and a CLOSED one is freed; so is a
        // listener's connection that a RST sent back to LISTEN (MUST-11; the listener itself
        // stays). Not while the application has data to read (it may have come with the FIN
        // that ended the connection): the `recv` that takes it lands back here.
        let state = connection.state();
        let ended = !entry.queued
            && (matches!(state, State::TimeWait | State::Closed)
                || (state == State::Listen && entry.listener != ListenerRef::None))
            && connection.unread_len() == 0;
        self.queue_and_list(handle, enqueue, list);
        if ended {
            self.retire(handle);
        }
    }

    /// A connection reported [`Event::Connected`]: its handshake completed (out of line:
    /// once per connection, and `settle` stays small).
    #[inline(never)]
    fn on_established(&mut self, handle: ConnectionHandle) {
        let Some(entry) = self.entry_mut(handle) else { return };
        let was_half_open = core::mem::replace(&mut entry.half_open, false);
        let listener = match entry.listener {
            ListenerRef::None => None,
            ListenerRef::Deferred => {
                // Past SYN-RECEIVED: no return to LISTEN any more, a connection like any other.
                entry.listener = ListenerRef::None;
                None
            }
            ListenerRef::Exact | ListenerRef::Wildcard | ListenerRef::Any => entry.listener(),
        };
        if core::mem::replace(&mut entry.reopened, false) {
            let (tuple, hash) = (entry.tuple(), entry.hash);
            self.forget_reopened_record(tuple, hash);
        }
        if let Some(listener) = listener {
            self.on_handshake_complete(handle, listener, was_half_open);
        }
    }

    /// MAY-2: a connection that reopened a TIME-WAIT 4-tuple completed its handshake, so its
    /// SYN was no old duplicate: the old record can go now.
    #[cold]
    #[inline(never)]
    fn forget_reopened_record(&mut self, tuple: (SocketAddr, SocketAddr), hash: TupleHash) {
        if let Some(at) = self.time_wait_record(&tuple, hash) {
            self.remove_time_wait(at);
        }
    }

    /// Files the deadlines of the listed connections (`unfiled`) in the heap where earlier than
    /// the one filed, or none is: what `settle` left for later. A connection that ended since
    /// (its handle stale) is skipped.
    fn file_unfiled(&mut self) {
        if self.unfiled.is_empty() {
            return;
        }
        self.file_listed();
    }

    /// [`file_unfiled`](Self::file_unfiled) once some are listed (out of line: most calls
    /// find none).
    #[inline(never)]
    fn file_listed(&mut self) {
        // In place (by position, the list's allocation untouched): nothing below lists more.
        let mut next = 0;
        while let Some(&handle) = self.unfiled.get(next) {
            next += 1;
            let Some(entry) = self.entry_mut(handle) else { continue };
            entry.connection.set_deadline_listed(false);
            // Whatever moved since it was listed is seen here.
            entry.connection.take_earlier_deadline();
            let Some(at) = entry.connection.poll_timeout().filter(|&at| at < entry.scheduled)
            else {
                continue;
            };
            entry.scheduled = at;
            if self.timers.len() >= 2 * self.connection_count() + TIMER_HEAP_SLACK {
                self.drop_stale_timers();
            }
            self.timers.push(Reverse((at, handle.index, handle.generation)));
        }
        // The list's allocation is kept.
        self.unfiled.clear();
    }

    /// Removes the heap entries that no longer matter: those of freed connections and those a
    /// connection rescheduled since. A connection has at most one live entry (the one equal to
    /// its `scheduled` deadline), so after this the heap holds at most one entry per
    /// connection; run when it reaches twice that, it costs O(1) per push amortised and keeps
    /// the heap — and its memory — within twice the connections, however fast they churn
    /// (each ended connection would otherwise leave its retransmission deadline behind until
    /// that time passed).
    fn drop_stale_timers(&mut self) {
        let slots = &self.slots;
        self.timers.retain(|Reverse((at, index, generation))| {
            slots.get(*index as usize).is_some_and(|slot| {
                slot.generation == *generation
                    && slot.entry.as_ref().is_some_and(|entry| entry.scheduled == *at)
            })
        });
    }

    /// A connection of `listener` finished its handshake: from the SYN queue (unless it came
    /// through a cookie, which never was in it) to the accept queue.
    fn on_handshake_complete(
        &mut self,
        handle: ConnectionHandle,
        listener: SocketAddr,
        was_half_open: bool,
    ) {
        let Some(state) = self.listeners.get_mut(&listener) else { return };
        if was_half_open {
            state.half_open = state.half_open.saturating_sub(1);
        }
        if state.ready.len() >= state.backlog {
            // Accept queue full: the connection is reset rather than held (documented).
            self.counters.accept_queue_full += 1;
            let now = self.last_now;
            if let Some(entry) = self.entry_mut(handle) {
                // No longer the listener's: it is neither half-open nor ready.
                entry.listener = ListenerRef::None;
                // An established connection can always be aborted.
                let _ = entry.connection.abort(now);
            }
            return;
        }
        state.ready.push_back(handle);
        self.push_event(EndpointEvent::Acceptable { listener });
    }

    /// Queues an endpoint event (out of line: its callers run once per connection, and one
    /// copy of the queue's push serves them all).
    #[inline(never)]
    fn push_event(&mut self, event: EndpointEvent) {
        push_bounded(&mut self.events, &mut self.counters, self.config.max_events, event);
    }

    /// Frees the slot of a connection that ended: one in TIME-WAIT leaves its compact record
    /// behind, and the application hears the connection is over (its last event is already
    /// queued, so the application sees it).
    ///
    /// Out of line: `settle` runs after every call, this only when a connection ended (the
    /// tests before the call are `settle`'s own, on the entry it holds; inlined into `settle`,
    /// the retirement made every call dearer: callgrind, bulk 4 500 -> 4 510 instructions per
    /// segment).
    ///
    /// The common connection (accepted or opened by the application, not reopening a
    /// TIME-WAIT record) takes the straight path; a listener's connection and a reopening one
    /// are handled out of line, so the code every lifecycle runs stays short (I-cache).
    #[inline(never)]
    fn retire(&mut self, handle: ConnectionHandle) {
        let Some(entry) = self.release_connection(handle) else { return };
        if entry.connection.deadline_listed()
            && let Some(at) = self.unfiled.iter().position(|&listed| listed == handle)
        {
            // Its listing goes with it (the list holds a few at most): the next
            // `handle_timeout` then need not find it stale, nor walk the list at all when it
            // was the only one (a short connection is listed when it is created and seldom
            // filed before it ends). The order of the rest is not kept: filing order does not
            // matter to the heap.
            self.unfiled.swap_remove(at);
        }
        if entry.listener != ListenerRef::None {
            // (A connection in TIME-WAIT is never back in LISTEN, so this and the `Closed`
            // event below are never both due: the events come in the order they always did.)
            self.retire_from_listener(handle, &entry);
        }
        let (tuple, hash, reopened) = (entry.tuple(), entry.hash, entry.reopened);
        let record = entry.connection.time_wait_record();
        if record.is_some() {
            // As far as the application is concerned, the connection is over.
            self.push_event(EndpointEvent::Connection(handle, Event::Closed(CloseReason::Orderly)));
        }
        self.keep_spare(entry);
        match record {
            Some(record) => {
                if reopened {
                    self.replace_reopened_record(tuple, hash);
                }
                // The slot stays filed under its 4-tuple, now holding the record.
                self.add_time_wait(handle.index, tuple, hash, record);
            }
            None => {
                self.by_tuple.remove(hash, handle.index);
                self.free.push(handle.index);
            }
        }
    }

    /// [`retire`](Self::retire) of a connection its listener still owns (never accepted; `entry`
    /// is it, just released):
    /// out of the listener's queues, and, reset in SYN-RECEIVED after a deferred listener's
    /// acceptance, over for its application.
    #[cold]
    #[inline(never)]
    fn retire_from_listener(&mut self, handle: ConnectionHandle, entry: &Entry) {
        let listener = entry.listener();
        let deferred_reset =
            entry.listener == ListenerRef::Deferred && entry.connection.state() == State::Listen;
        if let Some(listener) = listener
            && let Some(state) = self.listeners.get_mut(&listener)
        {
            // Never accepted: out of the listener's queues.
            let was_ready = state.ready.contains(&handle);
            state.ready.retain(|ready| *ready != handle);
            if !was_ready {
                state.half_open = state.half_open.saturating_sub(1);
            }
        }
        if deferred_reset {
            // Reset in SYN-RECEIVED (MUST-11's return to LISTEN): no listener takes it back,
            // so for its application it is over.
            let reason = CloseReason::Error(crate::event::ConnectionError::Reset);
            self.push_event(EndpointEvent::Connection(handle, Event::Closed(reason)));
        }
    }

    /// A reopening connection (MAY-2) that never reported its handshake complete retires to
    /// TIME-WAIT: its own record replaces the one it reopened (one record per 4-tuple).
    #[cold]
    #[inline(never)]
    fn replace_reopened_record(&mut self, tuple: (SocketAddr, SocketAddr), hash: TupleHash) {
        if let Some(at) = self.time_wait_record(&tuple, hash) {
            self.remove_time_wait(at);
        }
    }

    /// Files `record` for `tuple` in slot `index` (which its connection just left, still
    /// filed under `hash`), keeping its expiry (the connection's own 2×MSL deadline).
    fn add_time_wait(
        &mut self,
        index: u32,
        tuple: (SocketAddr, SocketAddr),
        hash: TupleHash,
        record: TimeWait,
    ) {
        if self.time_wait.len() >= self.config.max_time_wait {
            self.evict_time_wait();
        }
        let Some(slot) = self.slots.get_mut(index as usize) else { return };
        // Records number fewer than slots, which stay far below 2^32.
        slot.time_wait = self.time_wait.len() as u32;
        let generation = slot.generation;
        let at = record.expires;
        let (local, remote) = tuple;
        self.time_wait.push(FiledTimeWait { record, at, local, remote, slot: index, hash });
        self.time_wait_expiry.push_back((at, index, generation));
    }

    /// Makes room for a record when [`EndpointConfig::max_time_wait`] are held: evicts the
    /// ones that expire first (bounded memory; counted), the front of the expiry queue,
    /// skipping stale entries. Out of line: only an endpoint at its limit gets here.
    #[cold]
    #[inline(never)]
    fn evict_time_wait(&mut self) {
        while self.time_wait.len() >= self.config.max_time_wait {
            let Some((at, index, generation)) = self.time_wait_expiry.pop_front() else { break };
            if let Some(place) = self.filed_time_wait(at, index, generation) {
                self.remove_time_wait(place);
                self.counters.time_wait_evicted += 1;
            }
        }
    }

    /// Where in [`Endpoint::time_wait`] the record of an expiry-queue entry is, if the entry
    /// is still its record's (not stale).
    fn filed_time_wait(&self, at: Instant, index: u32, generation: u32) -> Option<usize> {
        let slot = self.slots.get(index as usize).filter(|slot| slot.generation == generation)?;
        let place = slot.time_wait as usize;
        self.time_wait.get(place).filter(|filed| filed.at == at).map(|_| place)
    }

    /// Where in [`Endpoint::time_wait`] the record of `tuple` (hashed to `hash`) is.
    fn time_wait_record(&self, tuple: &(SocketAddr, SocketAddr), hash: TupleHash) -> Option<usize> {
        if self.time_wait.is_empty() {
            return None;
        }
        let (slots, records) = (&self.slots, &self.time_wait);
        let index = self.by_tuple.find(hash, |index| {
            record_in(slots, records, index)
                .is_some_and(|filed| (filed.local, filed.remote) == *tuple)
        })?;
        Some(slots.get(index as usize)?.time_wait as usize)
    }

    /// Removes the record at `place` and frees its slot; the last record moves into its place
    /// (the vector stays dense) and its slot is told so.
    fn remove_time_wait(&mut self, place: usize) {
        if place >= self.time_wait.len() {
            return;
        }
        let filed = self.time_wait.swap_remove(place);
        if let Some(moved) = self.time_wait.get(place)
            && let Some(slot) = self.slots.get_mut(moved.slot as usize)
        {
            slot.time_wait = place as u32;
        }
        if self.time_wait.capacity() > 64 && self.time_wait.len() * 4 < self.time_wait.capacity() {
            // A past burst of records does not pin its memory.
            self.time_wait.shrink_to(self.time_wait.capacity() / 2);
        }
        self.by_tuple.remove(filed.hash, filed.slot);
        if let Some(slot) = self.slots.get_mut(filed.slot as usize) {
            slot.time_wait = NO_RECORD;
            // Expiry entries of the record are stale from here on.
            slot.generation = slot.generation.wrapping_add(1);
            self.free.push(filed.slot);
        }
    }

    /// Takes an ended connection out of its slot (which the caller frees or gives a TIME-WAIT
    /// record) and gives the slot a new generation, so its handle is stale from here on; its
    /// per-remote count goes with it. The caller hands the entry to
    /// [`keep_spare`](Self::keep_spare) once done with it.
    #[inline]
    fn release_connection(&mut self, handle: ConnectionHandle) -> Option<Entry> {
        let slot = self.slots.get_mut(handle.index as usize)?;
        if slot.generation != handle.generation {
            return None;
        }
        let entry = slot.entry.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        if let Some(count) = self.per_remote.get_mut(&entry.connection.last_remote().ip()) {
            // A count that falls to zero stays until a sweep in `insert`: a client or server
            // talking to one peer at a time would otherwise remove and re-file it (two
            // lookups and a backward shift) per connection.
            *count = count.saturating_sub(1);
        }
        Some(entry)
    }

    /// A released connection's buffer growth back to the pool, and its allocation to the
    /// spares if there is room (a grown buffer is not kept). A connection whose buffers did
    /// not grow (nearly every short one) is kept as it is: its renewal
    /// ([`Connection::renew`]) builds its buffers afresh anyway, adopting the old storage
    /// only at the initial capacity and with no growth allowed.
    #[inline]
    fn keep_spare(&mut self, mut entry: Entry) {
        // Growth is granted from `buffer_memory` alone (each grant adds to it, and no
        // connection grows beyond what it was granted), and a connection's growth leaves it
        // only when the connection ends: while it is zero, no live connection has grown, and
        // there is nothing to measure.
        let growth = if self.buffer_memory == 0 { 0 } else { entry.connection.buffer_growth() };
        self.buffer_memory = self.buffer_memory.saturating_sub(growth);
        if self.spare.len() < self.config.spare_connections {
            if growth > 0 {
                entry.connection.release_buffer_growth();
            }
            self.spare.push(entry.connection);
        }
    }
}

/// Whether [`Endpoint::after_output`] would find nothing to do for `entry`, whose
/// connection just sent a segment and answered `more` to `may_transmit`: no buffer growth to
/// grant, no event, no deadline moved earlier or to file, and not ended. Exactly the quiet
/// test of `settle` without output to queue (`more` is whether it stays queued).
#[inline]
fn settled_after_output(entry: &Entry, more: bool) -> bool {
    let connection = &entry.connection;
    nothing_to_file(entry)
        && connection.pending_events().is_empty()
        && (more || !matches!(connection.state(), State::TimeWait | State::Closed | State::Listen))
        && !connection.may_want_buffer_growth()
}

/// Whether `settle` would find nothing to do for `connection` but queue its output (and
/// list its deadline, for [`Endpoint::settle_new`]): no event, no buffer growth to grant, and
/// a state that cannot have ended.
#[inline(always)]
fn settles_in_place(connection: &Connection) -> bool {
    connection.pending_events().is_empty()
        && !matches!(connection.state(), State::TimeWait | State::Closed | State::Listen)
        && !connection.may_want_buffer_growth()
}

/// The transmit-queue decision `settle` makes, made in place ([`Endpoint::settle_new`],
/// [`Endpoint::settle_output_only`]): whether `entry` is to join the transmit queue now (it
/// is not in it, and `queue` says it has output or `may_transmit` does). Notes the answer in
/// the entry and the connection; the caller pushes the handle.
#[inline(always)]
fn queue_in_place(entry: &mut Entry, queue: Queue) -> bool {
    let connection = &mut entry.connection;
    debug_assert!(
        queue != Queue::Yes || connection.may_transmit(),
        "output was owed, yet may_transmit says no"
    );
    let enqueue = !entry.queued && (queue == Queue::Yes || connection.may_transmit());
    entry.queued |= enqueue;
    connection.note_transmit_check(enqueue);
    enqueue
}

/// Whether [`Endpoint::after_call`] would find nothing to do for `entry` but note that its
/// transmit check is stale: already queued for output, no buffer growth to grant, no event,
/// no deadline moved earlier or to file. Exactly the quiet test of `settle` with output to
/// queue (a queued connection is never retired there).
#[inline]
fn settled_after_input(entry: &Entry) -> bool {
    let connection = &entry.connection;
    entry.queued
        && nothing_to_file(entry)
        && connection.pending_events().is_empty()
        && !connection.may_want_buffer_growth()
}

/// Whether `settle` would have no deadline of `entry` to list: it is listed already, or one
/// is filed and no timer moved earlier since.
#[inline]
fn nothing_to_file(entry: &Entry) -> bool {
    let connection = &entry.connection;
    connection.deadline_listed()
        || (!connection.deadline_may_have_moved() && entry.scheduled != Instant::MAX)
}

/// Which listener `listener` is for a connection on `local` (its own address, the wildcard
/// one on its port, or the catch-all one of its family).
fn listener_ref(listener: SocketAddr, local: SocketAddr) -> ListenerRef {
    if listener == local {
        ListenerRef::Exact
    } else if listener.port() == 0 {
        ListenerRef::Any
    } else {
        ListenerRef::Wildcard
    }
}

/// Hands `segment` from `src` to `connection`, keeping its payload as a slice of the packet
/// when `owner` gives one.
#[inline]
fn deliver(
    connection: &mut Connection,
    now: Instant,
    src: IpAddr,
    segment: &Segment<'_>,
    owner: Option<(&Bytes, usize)>,
) {
    match owner {
        Some((packet, allocation)) => {
            connection.handle_segment_in(now, src, segment, packet, allocation);
        }
        None => connection.handle_demultiplexed_segment(now, src, segment),
    }
}

/// Queues `event` for the application unless `max` are already waiting (then it is dropped
/// and counted: the queue's memory stays bounded).
fn push_bounded(
    events: &mut Fifo<EndpointEvent>,
    counters: &mut EndpointCounters,
    max: usize,
    event: EndpointEvent,
) {
    if events.len() >= max {
        counters.events_dropped += 1;
    } else {
        events.push_back(event);
    }
}

/// The live connection filed under `tuple` in `table`, whose indices point into `slots`.
fn lookup(
    table: &TupleTable,
    slots: &[Slot],
    tuple: (SocketAddr, SocketAddr),
) -> Option<ConnectionHandle> {
    lookup_hashed(table, slots, &tuple, table.hash(tuple.0, tuple.1))
}

/// [`lookup`] of a 4-tuple already hashed.
fn lookup_hashed(
    table: &TupleTable,
    slots: &[Slot],
    tuple: &(SocketAddr, SocketAddr),
    hash: TupleHash,
) -> Option<ConnectionHandle> {
    let slot_of = |index: u32| slots.get(index as usize);
    let index = table.find(hash, |index| {
        slot_of(index).and_then(|slot| slot.entry.as_ref()).is_some_and(|e| e.tuple() == *tuple)
    })?;
    Some(ConnectionHandle { index, generation: slot_of(index)?.generation })
}

/// The TIME-WAIT record in slot `index`, if it holds one.
fn record_in<'a>(
    slots: &[Slot],
    records: &'a [FiledTimeWait],
    index: u32,
) -> Option<&'a FiledTimeWait> {
    records.get(slots.get(index as usize)?.time_wait as usize)
}

/// Whether a connection or a TIME-WAIT record holds `tuple`: one probe of the table for both.
fn taken(
    table: &TupleTable,
    slots: &[Slot],
    records: &[FiledTimeWait],
    tuple: (SocketAddr, SocketAddr),
) -> bool {
    taken_hashed(table, slots, records, tuple, table.hash(tuple.0, tuple.1))
}

/// [`taken`] of a 4-tuple already hashed (to `hash`).
fn taken_hashed(
    table: &TupleTable,
    slots: &[Slot],
    records: &[FiledTimeWait],
    tuple: (SocketAddr, SocketAddr),
    hash: TupleHash,
) -> bool {
    let holds = |index: u32| match slots.get(index as usize) {
        Some(Slot { entry: Some(entry), .. }) => entry.tuple() == tuple,
        Some(_) => record_in(slots, records, index)
            .is_some_and(|filed| (filed.local, filed.remote) == tuple),
        None => false,
    };
    table.find(hash, holds).is_some()
}

/// A key for one purpose, derived from the endpoint secret (so ports and cookies never share
/// a key).
fn derive_key(secret: [u8; 16], label: &[u8]) -> [u8; 16] {
    use core::hash::Hasher;
    let mut key = [0u8; 16];
    for (half, chunk) in key.chunks_exact_mut(8).enumerate() {
        let mut hasher = siphasher::sip::SipHasher24::new_with_key(&secret);
        hasher.write(label);
        hasher.write_u8(half as u8);
        chunk.copy_from_slice(&hasher.finish().to_le_bytes());
    }
    key
}

/// The idle-connection budget of the scale bench (≤ 512 bytes each, buffers excluded) rests
/// on these sizes; a field added carelessly shows up here first.
#[cfg(all(test, target_pointer_width = "64"))]
mod footprint {
    use core::mem::size_of;

    #[test]
    fn tcb_and_slot_stay_within_the_idle_connection_budget() {
        assert!(
            size_of::<crate::connection::Connection>() <= 400,
            "{}",
            size_of::<crate::connection::Connection>()
        );
        assert_eq!(size_of::<super::Entry>(), 24);
        assert_eq!(size_of::<super::Slot>(), 32);
        // A TIME-WAIT record as filed, its 4-tuple included (it lives in a dense vector; its
        // slot, 32 bytes, and a tuple-table bucket point at it).
        assert_eq!(size_of::<super::FiledTimeWait>(), 120);
        assert_eq!(size_of::<crate::buffer::Ring>(), 16);
        assert_eq!(size_of::<crate::rtt::RttEstimator>(), 24);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod pending_expiry {
    use core::net::{IpAddr, Ipv4Addr, SocketAddr};

    use super::{Endpoint, EndpointConfig, EndpointEvent, PENDING_EXPIRY_SLACK};
    use crate::wire::{Flags, Options, TcpHeader};
    use crate::{Config, Instant, SeqNum};

    /// A flood of SYNs at a deferred listener whose application ignores each at once: every
    /// record leaves an expiry entry 30 s ahead, and the queue must still stay within twice
    /// the live records plus the slack (without the clean-up it would hold 10 000).
    #[test]
    fn syns_decided_at_once_leave_the_expiry_queue_bounded() {
        let mut ep = Endpoint::new(EndpointConfig::new(Config::new([1; 16]), [2; 16]));
        let any = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
        ep.listen_deferred(any, 8).unwrap();
        let mut bytes = [0u8; 64];
        let mut largest = 0;
        for i in 0..10_000u32 {
            let from = IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + i));
            let to = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
            let syn = TcpHeader {
                src_port: 1024,
                dst_port: 80,
                seq: SeqNum::new(i),
                ack: SeqNum::new(0),
                flags: Flags::SYN,
                window: 1000,
                urgent_ptr: 0,
                options: Options::NONE,
            };
            let len = syn.emit(&[], from, to, &mut bytes).unwrap();
            ep.handle_segment(Instant::from_millis(1), from, to, &bytes[..len]);
            while let Some(event) = ep.poll_event() {
                if let EndpointEvent::Incoming { id, .. } = event {
                    ep.ignore_incoming(id).unwrap();
                }
            }
            largest = largest.max(ep.pending_expiry.len());
        }
        assert_eq!(ep.counters().incoming_dropped, 0);
        // Twice the one live record, the slack, and the entry just filed.
        assert!(largest <= 2 + PENDING_EXPIRY_SLACK, "{largest} entries at most");
    }
}

/// Moves every segment `client` has for `server`, then every segment `server` has for
/// `client`, calling `check` with the receiver after each, and drains both endpoints'
/// events; whether any segment moved.
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
fn deliver_both_ways(
    now: Instant,
    client: &mut Endpoint,
    server: &mut Endpoint,
    mut check: impl FnMut(&Endpoint),
) -> bool {
    let mut buf = [0u8; 1500];
    let mut moved = false;
    for from_client in [true, false] {
        let (from, to) =
            if from_client { (&mut *client, &mut *server) } else { (&mut *server, &mut *client) };
        while let Some(tx) = from.poll_transmit(now, &mut buf).unwrap() {
            to.handle_segment(now, tx.local.ip(), tx.remote.ip(), &buf[..tx.len]);
            check(to);
            moved = true;
        }
    }
    while client.poll_event().is_some() {}
    while server.poll_event().is_some() {}
    moved
}

/// One short connection from `client` to `server`'s listener at `listen`, opened at `now`:
/// 20 rounds of moving every segment both ways and draining both endpoints' events; the
/// server closes as soon as it accepts, the client once synchronized. `each_round` looks at
/// both endpoints after every round.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
fn short_lifecycle(
    now: Instant,
    client: &mut Endpoint,
    server: &mut Endpoint,
    listen: SocketAddr,
    mut each_round: impl FnMut(&Endpoint, &Endpoint),
) {
    let client_ip = IpAddr::V4(core::net::Ipv4Addr::new(10, 0, 0, 1));
    let c = client.connect(now, client_ip, listen).unwrap();
    let mut closed = false;
    for _ in 0..20 {
        deliver_both_ways(now, client, server, |_| {});
        if let Some(s) = server.accept(listen).unwrap() {
            server.close(now, s).unwrap();
        }
        if !closed && client.status(c).is_ok_and(|status| status.state.is_synchronized()) {
            client.close(now, c).unwrap();
            closed = true;
        }
        each_round(client, server);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod timer_heap {
    use core::net::{IpAddr, Ipv4Addr, SocketAddr};
    use core::time::Duration;

    use super::{Endpoint, EndpointConfig, TIMER_HEAP_SLACK};
    use crate::{Config, Instant};

    /// An endpoint whose connections have a 1 ms MSL and no delayed ACK: short lifecycles
    /// end at once, their TIME-WAIT over by the next millisecond.
    fn config(secret: u8) -> EndpointConfig {
        let mut connection = Config::new([secret; 16]);
        connection.msl = Duration::from_millis(1);
        connection.delayed_ack = None;
        EndpointConfig::new(connection, [secret; 16])
    }

    /// Deadlines are filed lazily: right after the SYN, `poll_timeout` already answers its
    /// retransmission deadline (from the listed connection itself) with nothing in the heap;
    /// the next `handle_timeout` files it, with the same answer; and a short lifecycle that
    /// ends before any `handle_timeout` leaves no heap entry behind at either end.
    #[test]
    fn deadlines_are_answered_at_once_and_filed_at_the_next_tick() {
        let mut client = Endpoint::new(config(1));
        let now = Instant::from_millis(1);
        let listen = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 80);
        let c = client.connect(now, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), listen).unwrap();
        let mut buf = [0u8; 100];
        assert!(client.poll_transmit(now, &mut buf).unwrap().is_some(), "the SYN");
        let due = Some(now + Config::new([1; 16]).rto_initial);
        assert_eq!(client.entry(c).unwrap().connection.poll_timeout(), due);
        assert!(client.timers.is_empty());
        assert_eq!(client.unfiled, [c]);
        assert_eq!(client.poll_timeout(), due);
        client.handle_timeout(now);
        assert!(client.unfiled.is_empty());
        assert_eq!(client.timers.len(), 1);
        assert_eq!(client.entry(c).map(|entry| Some(entry.scheduled)), Some(due));
        assert_eq!(client.poll_timeout(), due);

        let mut client = Endpoint::new(config(1));
        let mut server = Endpoint::new(config(2));
        server.listen(listen, 8).unwrap();
        super::short_lifecycle(now, &mut client, &mut server, listen, |_, _| {});
        assert_eq!(client.connection_count() + server.connection_count(), 0);
        assert!(client.timers.is_empty() && server.timers.is_empty());
    }

    /// Short connections back to back, far faster than their 1 s retransmission deadlines
    /// pass: every ended connection leaves such a deadline in the heap, and the heap must
    /// still stay within twice the live connections (one at a time here) plus the slack
    /// (without the clean-up it would hold hundreds of stale entries).
    #[test]
    fn churning_connections_leave_the_timer_heap_within_twice_the_live_ones() {
        let mut client = Endpoint::new(config(1));
        let mut server = Endpoint::new(config(2));
        let listen = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 80);
        server.listen(listen, 8).unwrap();
        let mut now = Instant::from_millis(1);
        let mut largest = 0;
        for _ in 0..1_000 {
            super::short_lifecycle(now, &mut client, &mut server, listen, |_, _| {});
            largest = largest.max(client.timers.len()).max(server.timers.len());
            now += Duration::from_millis(3);
            client.handle_timeout(now);
            server.handle_timeout(now);
            assert_eq!(client.connection_count() + server.connection_count(), 0);
        }
        assert!(largest <= 2 + TIMER_HEAP_SLACK + 1, "{largest} entries at most");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod time_wait_slots {
    use core::net::{IpAddr, Ipv4Addr, SocketAddr};
    use core::time::Duration;

    use super::{Endpoint, EndpointConfig, NO_RECORD};
    use crate::{Config, Instant};

    /// The TIME-WAIT records live in the slots their connections had: each record's slot
    /// points back at it, holds no connection and stays filed under the record's 4-tuple; the
    /// tuple table files exactly the connections and the records; free slots hold neither.
    fn assert_consistent(ep: &Endpoint) {
        assert_eq!(ep.by_tuple.len(), ep.connection_count() + ep.time_wait_count());
        for (place, filed) in ep.time_wait.iter().enumerate() {
            let slot = &ep.slots[filed.slot as usize];
            assert_eq!(slot.time_wait as usize, place);
            assert!(slot.entry.is_none());
            assert_eq!(ep.time_wait_record(&(filed.local, filed.remote), filed.hash), Some(place));
        }
        let holding = ep.slots.iter().filter(|slot| slot.time_wait != NO_RECORD).count();
        assert_eq!(holding, ep.time_wait_count());
        for &index in &ep.free {
            let slot = &ep.slots[index as usize];
            assert!(slot.entry.is_none() && slot.time_wait == NO_RECORD);
        }
    }

    /// Short connections 1 ms apart with 2×MSL = 10 ms and room for 4 records: records are
    /// filed, evicted (oldest first, counted) and expired while their slots are reused, and
    /// the bookkeeping stays consistent throughout; once all expire every slot is free.
    #[test]
    fn records_stay_in_their_slots_through_churn_eviction_and_expiry() {
        let config = |secret: u8| {
            let mut connection = Config::new([secret; 16]);
            connection.msl = Duration::from_millis(5);
            connection.delayed_ack = None;
            let mut config = EndpointConfig::new(connection, [secret; 16]);
            config.max_time_wait = 4;
            config
        };
        let mut client = Endpoint::new(config(1));
        let mut server = Endpoint::new(config(2));
        let listen = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 80);
        server.listen(listen, 8).unwrap();
        let mut now = Instant::from_millis(1);
        for _ in 0..40 {
            super::short_lifecycle(now, &mut client, &mut server, listen, |client, server| {
                assert_consistent(client);
                assert_consistent(server);
            });
            assert_eq!(client.connection_count() + server.connection_count(), 0);
            assert!(client.time_wait_count() <= 4);
            now += Duration::from_millis(1);
            client.handle_timeout(now);
            server.handle_timeout(now);
            assert_consistent(&client);
        }
        assert!(client.counters().time_wait_evicted > 0);
        assert_eq!(client.counters().time_wait_evicted + 4, 40);
        now += Duration::from_millis(100);
        client.handle_timeout(now);
        assert_consistent(&client);
        assert_eq!((client.time_wait_count(), client.by_tuple.len()), (0, 0));
        assert_eq!(client.free.len(), client.slots.len());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod settle_bookkeeping {
    use alloc::vec;
    use alloc::vec::Vec;
    use core::net::{IpAddr, Ipv4Addr, SocketAddr};
    use core::time::Duration;

    use super::{Endpoint, EndpointConfig, EndpointEvent};
    use crate::{Config, Event, Instant, State};

    /// What `settle` must leave true after every call, however little the call changed: every
    /// event collected, every live connection's deadline filed in the heap no later than the
    /// connection's own, after a call other than a poll for output every connection that may
    /// transmit queued for output (a poll drops one that answered nothing: `may_transmit` only
    /// says it might have something), and no ended connection left in a slot once its output
    /// is out and its data read.
    fn assert_settled(ep: &Endpoint) {
        assert_settled_but_queue(ep);
        for slot in &ep.slots {
            let Some(entry) = slot.entry.as_ref() else { continue };
            if entry.connection.may_transmit() {
                assert!(entry.queued, "output waits unqueued");
            }
        }
    }

    /// [`assert_settled`] but for the transmit queue, after a poll for output.
    fn assert_settled_but_queue(ep: &Endpoint) {
        for (index, slot) in ep.slots.iter().enumerate() {
            let Some(entry) = slot.entry.as_ref() else { continue };
            let connection = &entry.connection;
            assert!(connection.pending_events().is_empty(), "events left behind");
            let handle =
                super::ConnectionHandle { index: index as u32, generation: slot.generation };
            if connection.deadline_listed() {
                assert!(ep.unfiled.contains(&handle), "listed, yet not in the list");
            } else if let Some(at) = connection.poll_timeout() {
                assert!(entry.scheduled <= at, "deadline {at} not filed: {}", entry.scheduled);
                let filed = (entry.scheduled, index as u32, slot.generation);
                assert!(ep.timers.iter().any(|entry| entry.0 == filed), "no heap entry");
            }
            if !entry.queued && connection.unread_len() == 0 {
                assert!(
                    !matches!(connection.state(), State::TimeWait | State::Closed),
                    "ended connection not retired"
                );
            }
        }
    }

    /// A lifecycle exercising each kind of change `settle` looks for — events (connected,
    /// readable, peer closed, closed), deadlines armed and moved earlier (SYN, data,
    /// keep-alive, FIN, TIME-WAIT), output queued by input and by the application, the end
    /// of a connection — between calls that change nothing (polls with nothing to send, reads
    /// of nothing, a send of nothing), and calls whose only news is one of them (an event
    /// for a connection already queued, a deadline moved earlier by output): the bookkeeping
    /// holds after every single call, and the application sees every event in order.
    #[test]
    fn every_call_leaves_events_deadlines_queue_and_ends_settled() {
        let config = |secret: u8| {
            let mut connection = Config::new([secret; 16]);
            connection.msl = Duration::from_millis(5);
            // Filed while idle, then beaten by the first retransmission deadline.
            connection.keepalive = Some(crate::config::KeepAlive {
                idle: Duration::from_secs(60),
                ..crate::config::KeepAlive::default()
            });
            EndpointConfig::new(connection, [secret; 16])
        };
        let mut client = Endpoint::new(config(1));
        let mut server = Endpoint::new(config(2));
        let listen = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 80);
        server.listen(listen, 8).unwrap();
        let mut now = Instant::from_millis(1);
        let client_ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let c = client.connect(now, client_ip, listen).unwrap();
        assert_settled(&client);
        let mut buf = [0u8; 1500];
        let (mut client_events, mut server_events) = (vec![], vec![]);
        let mut s = None;
        let (chunk, mut unsent, mut client_closed) = (vec![7u8; 65_536], 300_000, false);
        let mut server_closed = false;
        for round in 0..40u32 {
            for from_client in [true, false] {
                let (from, to) = if from_client {
                    (&mut client, &mut server)
                } else {
                    (&mut server, &mut client)
                };
                while let Some(tx) = from.poll_transmit(now, &mut buf).unwrap() {
                    assert_settled_but_queue(from);
                    to.handle_segment(now, tx.local.ip(), tx.remote.ip(), &buf[..tx.len]);
                    assert_settled(to);
                }
                // A poll that finds nothing, and a second one.
                assert!(from.poll_transmit(now, &mut buf).unwrap().is_none());
                assert_settled_but_queue(from);
            }
            while let Some(event) = client.poll_event() {
                client_events.push(event);
            }
            while let Some(event) = server.poll_event() {
                server_events.push(event);
            }
            if s.is_none() {
                s = server.accept(listen).unwrap();
                assert_settled(&server);
            }
            for (ep, handle) in [(&mut client, Some(c)), (&mut server, s)] {
                let Some(handle) = handle else { continue };
                // Reads (of nothing, mostly) and a send of nothing.
                while ep.recv(handle, &mut buf).is_ok_and(|n| n > 0) {
                    assert_settled(ep);
                }
                assert_settled(ep);
                let _ = ep.send(now, handle, &[]);
                assert_settled(ep);
            }
            if round == 2 {
                // Past the handshake's retransmission deadline: its heap entry fires and the
                // keep-alive deadline is filed in its place.
                now += Duration::from_secs(2);
            }
            if round >= 3 {
                // More than the send buffer holds: the ACKs that free room find the client
                // queued already with its deadline filed, so their news is `Writable`.
                while unsent > 0 {
                    let n = client.send(now, c, &chunk[..unsent.min(chunk.len())]).unwrap();
                    assert_settled(&client);
                    if n == 0 {
                        break;
                    }
                    unsent -= n;
                }
            }
            if round == 5 {
                server.send(now, s.unwrap(), b"response").unwrap();
                assert_settled(&server);
            }
            if round >= 8 && unsent == 0 && !client_closed {
                client.close(now, c).unwrap();
                assert_settled(&client);
                client_closed = true;
            }
            // The server closes once it has read everything up to the client's FIN.
            let peer_closed = EndpointEvent::Connection(s.unwrap_or(c), Event::PeerClosed);
            if !server_closed && server_events.contains(&peer_closed) {
                server.close(now, s.unwrap()).unwrap();
                assert_settled(&server);
                server_closed = true;
            }
            now += Duration::from_millis(1);
            for ep in [&mut client, &mut server] {
                ep.handle_timeout(now);
                assert_settled(ep);
            }
        }
        let s = s.unwrap();
        let connection = |handle, event| EndpointEvent::Connection(handle, event);
        let closed = Event::Closed(crate::CloseReason::Orderly);
        // Each connection's events, a repeated one (`Readable`, once per segment) once.
        let ends = |events: &[EndpointEvent], handle| {
            let mut mine: Vec<EndpointEvent> = events
                .iter()
                .copied()
                .filter(|event| matches!(event, EndpointEvent::Connection(h, _) if *h == handle))
                .collect();
            mine.dedup();
            mine
        };
        // The response arrives while the client's data is still going out.
        let (readable, writable) = (Event::Readable, Event::Writable);
        assert_eq!(
            ends(&client_events, c),
            [Event::Connected, writable, readable, writable, Event::PeerClosed, closed]
                .map(|event| connection(c, event))
        );
        assert_eq!(
            ends(&server_events, s),
            [Event::Connected, Event::Readable, Event::PeerClosed, closed]
                .map(|event| connection(s, event))
        );
        assert_eq!(client.connection_count() + server.connection_count(), 0);
        assert_eq!(client.time_wait_count(), 0, "expired after 2 MSL");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod lifecycle {
    use core::net::{IpAddr, Ipv4Addr, SocketAddr};
    use core::time::Duration;

    use super::{ConnectionHandle, Endpoint, EndpointConfig, EndpointError};
    use crate::{Config, Instant};

    fn config(secret: u8) -> EndpointConfig {
        let mut connection = Config::new([secret; 16]);
        connection.msl = Duration::from_millis(1);
        connection.delayed_ack = None;
        EndpointConfig::new(connection, [secret; 16])
    }

    /// Every live connection and TIME-WAIT record is filed under the hash its 4-tuple has when
    /// hashed afresh, and found by it; the per-remote counts are the live connections per
    /// remote address (counts at zero may stay until a sweep).
    fn assert_filed_as_recomputed(ep: &Endpoint) {
        let mut live = alloc::collections::BTreeMap::<IpAddr, usize>::new();
        for (index, slot) in ep.slots.iter().enumerate() {
            let Some(entry) = slot.entry.as_ref() else { continue };
            let tuple = entry.tuple();
            assert_eq!(entry.hash, ep.by_tuple.hash(tuple.0, tuple.1));
            let handle = ConnectionHandle { index: index as u32, generation: slot.generation };
            assert_eq!(ep.lookup(tuple), Some(handle));
            *live.entry(tuple.1.ip()).or_default() += 1;
        }
        for filed in &ep.time_wait {
            assert_eq!(filed.hash, ep.by_tuple.hash(filed.local, filed.remote));
        }
        for ip in [IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))] {
            let counted = ep.per_remote.get(&ip).copied().unwrap_or(0);
            assert_eq!(counted, live.get(&ip).copied().unwrap_or(0), "{ip}");
        }
    }

    /// The hash a listener's SYN was looked up under is the one its connection is filed under
    /// (passed down, not computed again), on both endpoints, through whole lifecycles.
    #[test]
    fn connections_from_a_listener_are_filed_under_the_hash_recomputed() {
        let (mut client, mut server) = (Endpoint::new(config(1)), Endpoint::new(config(2)));
        let listen = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 80);
        server.listen(listen, 8).unwrap();
        let mut now = Instant::from_millis(1);
        for _ in 0..50 {
            super::short_lifecycle(now, &mut client, &mut server, listen, |client, server| {
                assert_filed_as_recomputed(client);
                assert_filed_as_recomputed(server);
            });
            now += Duration::from_millis(3);
            client.handle_timeout(now);
            server.handle_timeout(now);
            assert_eq!(client.connection_count() + server.connection_count(), 0);
        }
    }

    /// Moves every segment both ways until neither endpoint sends, checking the filing after
    /// each segment.
    fn exchange(now: Instant, client: &mut Endpoint, server: &mut Endpoint) {
        while super::deliver_both_ways(now, client, server, assert_filed_as_recomputed) {}
    }

    /// Per-remote limits under churn: each round the client may open three connections to
    /// one server (its fourth `connect` is refused), the server takes two from that client
    /// and refuses the third SYN, counting it; aborted, they free their counts for the next
    /// round, so every round refuses and counts exactly the same.
    #[test]
    fn per_remote_limits_refuse_and_count_under_churn() {
        let mut client_config = config(1);
        client_config.max_per_remote = 3;
        let mut server_config = config(2);
        server_config.max_per_remote = 2;
        let (mut client, mut server) = (Endpoint::new(client_config), Endpoint::new(server_config));
        let listen = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 80);
        server.listen(listen, 8).unwrap();
        let client_ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let mut now = Instant::from_millis(1);
        for round in 1..=20u64 {
            let handles: alloc::vec::Vec<_> =
                (0..3).map(|_| client.connect(now, client_ip, listen).unwrap()).collect();
            assert_eq!(
                client.connect(now, client_ip, listen),
                Err(EndpointError::TooManyConnections)
            );
            exchange(now, &mut client, &mut server);
            assert_eq!(server.counters().refused_by_limit, round);
            assert_eq!(server.connection_count(), 2);
            while server.accept(listen).unwrap().is_some() {}
            for handle in handles {
                client.abort(now, handle).unwrap();
            }
            exchange(now, &mut client, &mut server);
            now += Duration::from_millis(3);
            client.handle_timeout(now);
            server.handle_timeout(now);
            exchange(now, &mut client, &mut server);
            assert_eq!(client.connection_count() + server.connection_count(), 0, "round {round}");
            assert_filed_as_recomputed(&client);
            assert_filed_as_recomputed(&server);
        }
    }
}
