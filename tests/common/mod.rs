//! A scripted peer for driving one [`Connection`] through the public API: build segments the
//! way a remote TCP would, deliver them checksummed, and read back exactly what the connection
//! sends.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;
use std::vec::Vec;

use tcp_proto::wire::{Flags, Options, SackBlock, SackBlocks, Segment, TcpHeader, Timestamps};
use tcp_proto::{Config, Connection, Event, Instant, SeqNum, State};

/// Our side: 10.0.0.1:80.
pub const LOCAL: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 80);
/// The scripted peer: 10.0.0.2:40000.
pub const REMOTE: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 40000);
/// Our ISS: close to the wrap so every test crosses 2^32 (STYLE §8).
pub const ISS: u32 = u32::MAX - 2;
/// The peer's ISS, also near the wrap.
pub const PEER_ISS: u32 = u32::MAX - 100;
/// Receive buffer of the connection under test, so windows are known exactly.
pub const RECV_BUFFER: usize = 4096;
/// The window the connection advertises while its receive buffer is empty.
pub const WINDOW: u16 = RECV_BUFFER as u16;
/// The MSS the connection advertises with MTU 1500 over IPv4 (MUST-67).
pub const OUR_MSS: u16 = 1460;

pub fn config() -> Config {
    let mut config = Config::with_fixed_isn(SeqNum::new(ISS));
    config.recv_buffer = RECV_BUFFER;
    config.send_buffer = 8192;
    // Buffers at their set sizes (auto-tuning off, whatever a test sets them to): exact windows
    // and exact `send` results. Auto-tuning has its own tests (`autotune.rs`).
    config.recv_buffer_max = 0;
    config.send_buffer_max = 0;
    // Exact-segment tests want every ACK at once; delayed ACK has its own tests.
    config.delayed_ack = None;
    // The timer tests were written against RFC 6298 (2.4)'s 1 s floor (the default is Linux's
    // 200 ms, docs/conformance.md); exact instants below assume the RFC's value.
    config.rto_min = Duration::from_secs(1);
    config
}

/// `config` with NewReno pinned (the default is CUBIC): for tests whose expected windows are
/// RFC 5681 / RFC 6582 / RFC 6675 arithmetic (halving FlightSize).
pub fn newreno(mut config: Config) -> Config {
    config.congestion = tcp_proto::congestion::CongestionAlgorithm::NewReno;
    config
}

/// A segment the peer sends.
#[derive(Clone, Debug)]
pub struct Seg {
    pub flags: Flags,
    pub seq: u32,
    pub ack: u32,
    pub window: u16,
    pub urgent_ptr: u16,
    pub mss: Option<u16>,
    pub window_scale: Option<u8>,
    pub timestamps: Option<Timestamps>,
    /// SACK-permitted (RFC 2018 §2).
    pub sack_permitted: bool,
    /// SACK blocks `(left, right)` in the order sent (RFC 2018 §3).
    pub sack_blocks: Vec<(u32, u32)>,
    pub payload: Vec<u8>,
}

pub fn seg(flags: Flags, seq: u32, ack: u32) -> Seg {
    Seg {
        flags,
        seq,
        ack,
        window: 8192,
        urgent_ptr: 0,
        mss: None,
        window_scale: None,
        timestamps: None,
        sack_permitted: false,
        sack_blocks: Vec::new(),
        payload: Vec::new(),
    }
}

impl Seg {
    pub fn payload(mut self, data: &[u8]) -> Self {
        self.payload = data.to_vec();
        self
    }
    pub fn window(mut self, window: u16) -> Self {
        self.window = window;
        self
    }
    pub fn mss(mut self, mss: u16) -> Self {
        self.mss = Some(mss);
        self
    }
    /// The timestamps option (RFC 7323 §3).
    pub fn ts(mut self, tsval: u32, tsecr: u32) -> Self {
        self.timestamps = Some(Timestamps { tsval, tsecr });
        self
    }
    /// The SACK-permitted option (RFC 2018 §2).
    pub fn sack_permitted(mut self) -> Self {
        self.sack_permitted = true;
        self
    }
    /// A SACK option with these blocks `(left, right)`, first block first (RFC 2018 §3; at
    /// most four).
    pub fn sack(mut self, blocks: &[(u32, u32)]) -> Self {
        assert!(blocks.len() <= SackBlocks::MAX, "a SACK option holds at most four blocks");
        self.sack_blocks = blocks.to_vec();
        self
    }
    pub fn urgent(mut self, pointer: u16) -> Self {
        self.urgent_ptr = pointer;
        self.flags |= Flags::URG;
        self
    }

    /// The segment's bytes as `from` sends them to [`LOCAL`], checksummed.
    pub fn emit(&self, from: SocketAddr) -> Vec<u8> {
        let mut options = Options::NONE;
        options.mss = self.mss;
        options.window_scale = self.window_scale;
        options.timestamps = self.timestamps;
        options.sack_permitted = self.sack_permitted;
        for &(left, right) in &self.sack_blocks {
            options
                .sack_blocks
                .push(SackBlock { left: SeqNum::new(left), right: SeqNum::new(right) });
        }
        let header = TcpHeader {
            src_port: from.port(),
            dst_port: LOCAL.port(),
            seq: SeqNum::new(self.seq),
            ack: SeqNum::new(self.ack),
            flags: self.flags,
            window: self.window,
            urgent_ptr: self.urgent_ptr,
            options,
        };
        let mut bytes = vec![0u8; self.payload.len() + 80];
        let len = header.emit(&[&self.payload], from.ip(), LOCAL.ip(), &mut bytes).unwrap();
        bytes.truncate(len);
        bytes
    }
}

/// A segment the connection sent, parsed back from the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    pub flags: Flags,
    pub seq: u32,
    pub ack: u32,
    pub window: u16,
    pub urgent_ptr: u16,
    pub options: Options,
    pub payload: Vec<u8>,
    pub to: SocketAddr,
}

impl Sent {
    /// What a parsed segment sent to `to` carried.
    pub fn new(segment: &Segment<'_>, to: SocketAddr) -> Self {
        Self {
            flags: segment.header.flags,
            seq: segment.header.seq.get(),
            ack: segment.header.ack.get(),
            window: segment.header.window,
            urgent_ptr: segment.header.urgent_ptr,
            options: segment.header.options,
            payload: segment.payload.to_vec(),
            to,
        }
    }
}

pub struct Harness {
    pub conn: Connection,
    pub now: Instant,
    pub peer: SocketAddr,
}

impl Harness {
    pub fn listen() -> Self {
        let now = Instant::from_millis(1_000);
        Self { conn: Connection::listen(config(), now, LOCAL), now, peer: REMOTE }
    }

    pub fn connect() -> Self {
        Self::connect_with(config())
    }

    /// Active OPEN at t = 1 s with a custom configuration; the SYN is not consumed.
    pub fn connect_with(config: Config) -> Self {
        let now = Instant::from_millis(1_000);
        let conn = Connection::connect(config, now, LOCAL, REMOTE).unwrap();
        Self { conn, now, peer: REMOTE }
    }

    pub fn state(&self) -> State {
        self.conn.state()
    }

    pub fn advance(&mut self, by: Duration) {
        self.now += by;
    }

    /// Delivers a segment from the peer, checksummed and parsed as a caller would.
    pub fn deliver(&mut self, s: Seg) {
        let peer = self.peer;
        self.deliver_from(peer, s);
    }

    pub fn deliver_from(&mut self, from: SocketAddr, s: Seg) {
        let bytes = s.emit(from);
        let parsed = Segment::parse_checked(&bytes, from.ip(), LOCAL.ip()).unwrap();
        self.conn.handle_segment(self.now, from.ip(), &parsed);
    }

    /// Delivers a segment from the peer through the zero-copy input
    /// (`handle_segment_bytes`), in a buffer of `capacity` octets; returns the address of its
    /// payload in that buffer (a slice handed out later must point there).
    pub fn deliver_bytes(&mut self, s: Seg, capacity: usize) -> *const u8 {
        let bytes = s.emit(self.peer);
        let mut packet = bytes::BytesMut::with_capacity(capacity.max(bytes.len()));
        packet.extend_from_slice(&bytes);
        let payload = packet[bytes.len() - s.payload.len()..].as_ptr();
        self.conn.handle_segment_bytes(self.now, self.peer.ip(), LOCAL.ip(), packet).unwrap();
        payload
    }

    /// The next segment the connection sends, if any.
    pub fn poll(&mut self) -> Option<Sent> {
        let mut buf = [0u8; 2048];
        let transmit = self.conn.poll_transmit(self.now, &mut buf).unwrap()?;
        assert_eq!(transmit.local, LOCAL);
        let bytes = &buf[..transmit.len];
        let segment = Segment::parse_checked(bytes, LOCAL.ip(), transmit.remote.ip())
            .expect("the connection emits valid, checksummed segments (MUST-2)");
        Some(Sent::new(&segment, transmit.remote))
    }

    /// Exactly one segment is sent.
    pub fn expect_one(&mut self) -> Sent {
        let sent = self.poll().expect("expected a segment, the connection sent nothing");
        assert_eq!(self.poll(), None, "expected exactly one segment");
        sent
    }

    pub fn expect_nothing(&mut self) {
        assert_eq!(self.poll(), None, "expected no segment");
    }

    pub fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.conn.poll_event()).collect()
    }

    /// Runs the timers due at `self.now`.
    pub fn fire_timers(&mut self) {
        self.conn.handle_timeout(self.now);
    }

    /// Jumps to the next deadline and runs it.
    pub fn jump_to_deadline(&mut self) -> Instant {
        let at = self.conn.poll_timeout().expect("a timer is armed");
        self.now = self.now.max(at);
        self.conn.handle_timeout(self.now);
        at
    }
}

/// The SACK blocks of a sent segment as `(left, right)` pairs, first block first.
pub fn sack_blocks(sent: &Sent) -> Vec<(u32, u32)> {
    sent.options.sack_blocks.iter().map(|block| (block.left.get(), block.right.get())).collect()
}

/// Asserts the exact header fields that matter of a sent segment.
#[track_caller]
pub fn assert_seg(sent: &Sent, flags: Flags, seq: u32, ack: u32, window: u16) {
    assert_eq!(
        (sent.flags, sent.seq, sent.ack, sent.window),
        (flags, seq, ack, window),
        "segment (flags, seq, ack, window) differs: {sent:?}"
    );
}

pub fn syn() -> Flags {
    Flags::SYN
}
pub fn syn_ack() -> Flags {
    Flags::SYN | Flags::ACK
}
pub fn ack() -> Flags {
    Flags::ACK
}
pub fn fin_ack() -> Flags {
    Flags::FIN | Flags::ACK
}
pub fn rst() -> Flags {
    Flags::RST
}
pub fn rst_ack() -> Flags {
    Flags::RST | Flags::ACK
}
pub fn psh_ack() -> Flags {
    Flags::PSH | Flags::ACK
}

/// Sequence arithmetic on raw numbers, wrapping like the wire.
pub fn add(seq: u32, n: u32) -> u32 {
    seq.wrapping_add(n)
}

// ---- Drive a connection into each state through the public API. ----

/// LISTEN, then the peer's SYN: SYN-RECEIVED (passive). The SYN-ACK is consumed.
pub fn syn_received_passive() -> Harness {
    let mut h = Harness::listen();
    h.deliver(seg(syn(), PEER_ISS, 0).mss(1460));
    let synack = h.expect_one();
    assert_seg(&synack, syn_ack(), ISS, add(PEER_ISS, 1), WINDOW);
    h.events();
    h
}

/// Active OPEN: SYN-SENT. The SYN is consumed.
pub fn syn_sent() -> Harness {
    let mut h = Harness::connect();
    let syn_seg = h.expect_one();
    assert_seg(&syn_seg, syn(), ISS, 0, WINDOW);
    h.events();
    h
}

/// Simultaneous open: SYN-SENT, then the peer's SYN: SYN-RECEIVED (active).
pub fn syn_received_active() -> Harness {
    let mut h = syn_sent();
    h.deliver(seg(syn(), PEER_ISS, 0).mss(1460));
    let synack = h.expect_one();
    assert_seg(&synack, syn_ack(), ISS, add(PEER_ISS, 1), WINDOW);
    h.events();
    h
}

/// How the connection under test was opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// connect(): SYN-SENT, SYN-ACK in, ACK out.
    Active,
    /// listen(): SYN in, SYN-ACK out, ACK in.
    Passive,
}

pub const ORIGINS: [Origin; 2] = [Origin::Active, Origin::Passive];

/// ESTABLISHED through an active open (SYN, SYN-ACK, ACK).
pub fn established() -> Harness {
    established_via(Origin::Active)
}

/// ESTABLISHED through the given kind of open.
pub fn established_via(origin: Origin) -> Harness {
    let mut h = match origin {
        Origin::Active => {
            let mut h = syn_sent();
            h.deliver(seg(syn_ack(), PEER_ISS, add(ISS, 1)).mss(1460));
            let last = h.expect_one();
            assert_seg(&last, ack(), add(ISS, 1), add(PEER_ISS, 1), WINDOW);
            h
        }
        Origin::Passive => {
            let mut h = syn_received_passive();
            h.deliver(seg(ack(), add(PEER_ISS, 1), add(ISS, 1)));
            h.expect_nothing();
            h
        }
    };
    assert_eq!(h.state(), State::Established);
    h.events();
    h
}

/// Drives a connection into `state` through the public API (`Closed` means a fresh,
/// never-opened connection; `SynReceived` via `origin` is passive or simultaneous open).
pub fn reach(state: State, origin: Origin) -> Harness {
    match state {
        State::Closed => {
            let now = Instant::from_millis(1_000);
            Harness { conn: Connection::new(config(), LOCAL), now, peer: REMOTE }
        }
        State::Listen => Harness::listen(),
        State::SynSent => syn_sent(),
        State::SynReceived => match origin {
            Origin::Active => syn_received_active(),
            Origin::Passive => syn_received_passive(),
        },
        State::Established => established_via(origin),
        State::FinWait1 => fin_wait_1_via(origin),
        State::FinWait2 => fin_wait_2_via(origin),
        State::CloseWait => close_wait_via(origin),
        State::Closing => closing_via(origin),
        State::LastAck => last_ack_via(origin),
        State::TimeWait => time_wait_via(origin),
    }
}

/// ESTABLISHED, then CLOSE: FIN-WAIT-1 with our FIN sent (at ISS+1).
pub fn fin_wait_1() -> Harness {
    fin_wait_1_via(Origin::Active)
}

pub fn fin_wait_1_via(origin: Origin) -> Harness {
    let mut h = established_via(origin);
    h.conn.close(h.now).unwrap();
    let fin = h.expect_one();
    assert_seg(&fin, fin_ack(), add(ISS, 1), add(PEER_ISS, 1), WINDOW);
    assert_eq!(h.state(), State::FinWait1);
    h.events();
    h
}

/// FIN-WAIT-1, then the ACK of our FIN: FIN-WAIT-2.
pub fn fin_wait_2() -> Harness {
    fin_wait_2_via(Origin::Active)
}

pub fn fin_wait_2_via(origin: Origin) -> Harness {
    let mut h = fin_wait_1_via(origin);
    h.deliver(seg(ack(), add(PEER_ISS, 1), add(ISS, 2)));
    h.expect_nothing();
    assert_eq!(h.state(), State::FinWait2);
    h.events();
    h
}

/// ESTABLISHED, then the peer's FIN: CLOSE-WAIT.
pub fn close_wait() -> Harness {
    close_wait_via(Origin::Active)
}

pub fn close_wait_via(origin: Origin) -> Harness {
    let mut h = established_via(origin);
    h.deliver(seg(fin_ack(), add(PEER_ISS, 1), add(ISS, 1)));
    let ack_seg = h.expect_one();
    assert_seg(&ack_seg, ack(), add(ISS, 1), add(PEER_ISS, 2), WINDOW);
    assert_eq!(h.state(), State::CloseWait);
    h.events();
    h
}

/// FIN-WAIT-1, then the peer's FIN that does not ack ours: CLOSING.
pub fn closing() -> Harness {
    closing_via(Origin::Active)
}

pub fn closing_via(origin: Origin) -> Harness {
    let mut h = fin_wait_1_via(origin);
    h.deliver(seg(fin_ack(), add(PEER_ISS, 1), add(ISS, 1)));
    let ack_seg = h.expect_one();
    assert_seg(&ack_seg, ack(), add(ISS, 2), add(PEER_ISS, 2), WINDOW);
    assert_eq!(h.state(), State::Closing);
    h.events();
    h
}

/// CLOSE-WAIT, then CLOSE: LAST-ACK with our FIN sent.
pub fn last_ack() -> Harness {
    last_ack_via(Origin::Active)
}

pub fn last_ack_via(origin: Origin) -> Harness {
    let mut h = close_wait_via(origin);
    h.conn.close(h.now).unwrap();
    let fin = h.expect_one();
    assert_seg(&fin, fin_ack(), add(ISS, 1), add(PEER_ISS, 2), WINDOW);
    assert_eq!(h.state(), State::LastAck);
    h.events();
    h
}

/// FIN-WAIT-2, then the peer's FIN: TIME-WAIT.
pub fn time_wait() -> Harness {
    time_wait_via(Origin::Active)
}

pub fn time_wait_via(origin: Origin) -> Harness {
    let mut h = fin_wait_2_via(origin);
    h.deliver(seg(fin_ack(), add(PEER_ISS, 1), add(ISS, 2)));
    let ack_seg = h.expect_one();
    assert_seg(&ack_seg, ack(), add(ISS, 2), add(PEER_ISS, 2), WINDOW);
    assert_eq!(h.state(), State::TimeWait);
    h.events();
    h
}
