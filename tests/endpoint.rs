//! The endpoint: demultiplexing, listeners and their queues, RSTs for strays, generational
//! handles, ephemeral ports, limits, TIME-WAIT records and the timer heap — through two
//! endpoints joined in memory, with exact segments where it matters.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tcp_proto::wire::{Flags, Options, Segment, TcpHeader, Timestamps};
use tcp_proto::{
    CloseReason, Config, ConnectionHandle, Endpoint, EndpointConfig, EndpointError, EndpointEvent,
    Event, Instant, SeqNum, State,
};

const CLIENT_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const SERVER_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
const SERVER: SocketAddr = SocketAddr::new(SERVER_IP, 80);

fn endpoint_config(secret: u8) -> EndpointConfig {
    let mut connection = Config::new([secret; 16]);
    connection.msl = Duration::from_secs(10);
    connection.delayed_ack = None;
    // The timer expectations below assume RFC 6298 (2.4)'s 1 s floor, not the 200 ms default.
    connection.rto_min = Duration::from_secs(1);
    EndpointConfig::new(connection, [secret.wrapping_add(100); 16])
}

/// A client endpoint and a server endpoint joined by a lossless link.
struct Net {
    client: Endpoint,
    server: Endpoint,
    now: Instant,
    /// Every segment that crossed, as (from client?, parsed header, payload length).
    seen: Vec<(bool, TcpHeader, usize)>,
}

impl Net {
    fn new() -> Self {
        Self {
            client: Endpoint::new(endpoint_config(1)),
            server: Endpoint::new(endpoint_config(2)),
            now: Instant::from_millis(1),
            seen: Vec::new(),
        }
    }

    /// Moves segments both ways until quiet.
    fn run(&mut self) {
        let mut buf = vec![0u8; 65_536];
        for _ in 0..100_000 {
            let mut moved = false;
            while let Some(tx) = self.client.poll_transmit(self.now, &mut buf).unwrap() {
                let header = Segment::parse(&buf[..tx.len]).unwrap().header;
                self.seen.push((true, header, tx.len - header.header_len()));
                self.server.handle_segment(self.now, tx.local.ip(), tx.remote.ip(), &buf[..tx.len]);
                moved = true;
            }
            while let Some(tx) = self.server.poll_transmit(self.now, &mut buf).unwrap() {
                let header = Segment::parse(&buf[..tx.len]).unwrap().header;
                self.seen.push((false, header, tx.len - header.header_len()));
                self.client.handle_segment(self.now, tx.local.ip(), tx.remote.ip(), &buf[..tx.len]);
                moved = true;
            }
            if !moved {
                return;
            }
        }
        panic!("no quiet after 100000 rounds");
    }

    /// Jumps to the earliest deadline of either endpoint and runs it.
    fn tick(&mut self) -> bool {
        let next =
            [self.client.poll_timeout(), self.server.poll_timeout()].into_iter().flatten().min();
        let Some(next) = next else { return false };
        self.now = self.now.max(next);
        self.client.handle_timeout(self.now);
        self.server.handle_timeout(self.now);
        self.run();
        true
    }

    fn events(endpoint: &mut Endpoint) -> Vec<EndpointEvent> {
        std::iter::from_fn(|| endpoint.poll_event()).collect()
    }

    /// A connected pair: (client handle, server handle).
    fn connect(&mut self) -> (ConnectionHandle, ConnectionHandle) {
        let client = self.client.connect(self.now, CLIENT_IP, SERVER).unwrap();
        self.run();
        let server = self.server.accept(SERVER).unwrap().expect("the handshake completed");
        (client, server)
    }
}

/// Feeds a hand-made segment from `from` to the endpoint and returns what it answers.
fn stray(
    endpoint: &mut Endpoint,
    from: SocketAddr,
    to: SocketAddr,
    header: TcpHeader,
) -> Vec<TcpHeader> {
    let mut bytes = vec![0u8; 100];
    let len = header.emit(&[], from.ip(), to.ip(), &mut bytes).unwrap();
    endpoint.handle_segment(Instant::from_millis(1), from.ip(), to.ip(), &bytes[..len]);
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1500];
    while let Some(tx) = endpoint.poll_transmit(Instant::from_millis(1), &mut buf).unwrap() {
        assert_eq!((tx.local, tx.remote), (to, from));
        out.push(Segment::parse_checked(&buf[..tx.len], to.ip(), from.ip()).unwrap().header);
    }
    out
}

fn header(flags: Flags, seq: u32, ack: u32) -> TcpHeader {
    TcpHeader {
        src_port: 5555,
        dst_port: 80,
        seq: SeqNum::new(seq),
        ack: SeqNum::new(ack),
        flags,
        window: 1000,
        urgent_ptr: 0,
        options: Options::NONE,
    }
}

const STRANGER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 9, 9, 9)), 5555);

#[test]
fn stray_ack_draws_rst_with_seq_from_its_ack_rfc_9293_3_10_7_1() {
    let mut ep = Endpoint::new(endpoint_config(3));
    let replies = stray(&mut ep, STRANGER, SERVER, header(Flags::ACK, 100, 777));
    assert_eq!(replies.len(), 1);
    assert_eq!((replies[0].flags, replies[0].seq.get(), replies[0].window), (Flags::RST, 777, 0));
    assert_eq!(ep.counters().rsts_sent, 1);
}

#[test]
fn stray_syn_draws_rst_ack_acking_the_syn_rfc_9293_3_10_7_1() {
    let mut ep = Endpoint::new(endpoint_config(3));
    let replies = stray(&mut ep, STRANGER, SERVER, header(Flags::SYN, 100, 0));
    assert_eq!(replies.len(), 1);
    let r = replies[0];
    assert_eq!((r.flags, r.seq.get(), r.ack.get()), (Flags::RST | Flags::ACK, 0, 101));
}

#[test]
fn rst_to_nothing_draws_silence() {
    let mut ep = Endpoint::new(endpoint_config(3));
    assert!(stray(&mut ep, STRANGER, SERVER, header(Flags::RST, 100, 0)).is_empty());
    assert!(stray(&mut ep, STRANGER, SERVER, header(Flags::RST | Flags::ACK, 100, 5)).is_empty());
}

#[test]
fn listener_answers_ack_with_rst_and_ignores_rst_rfc_9293_3_10_7_2() {
    let mut ep = Endpoint::new(endpoint_config(3));
    ep.listen(SERVER, 8).unwrap();
    let replies = stray(&mut ep, STRANGER, SERVER, header(Flags::ACK, 100, 4242));
    assert_eq!((replies[0].flags, replies[0].seq.get()), (Flags::RST, 4242));
    assert!(stray(&mut ep, STRANGER, SERVER, header(Flags::RST, 100, 0)).is_empty());
    assert_eq!(ep.connection_count(), 0);
}

#[test]
fn malformed_segments_are_dropped_and_counted_must_3() {
    let mut ep = Endpoint::new(endpoint_config(3));
    ep.listen(SERVER, 8).unwrap();
    let mut bytes = vec![0u8; 100];
    let len = header(Flags::SYN, 1, 0).emit(&[], STRANGER.ip(), SERVER_IP, &mut bytes).unwrap();
    bytes[4] ^= 0x10;
    ep.handle_segment(Instant::ZERO, STRANGER.ip(), SERVER_IP, &bytes[..len]);
    ep.handle_segment(Instant::ZERO, STRANGER.ip(), SERVER_IP, &bytes[..7]);
    assert_eq!(ep.counters().dropped_malformed, 2);
    assert_eq!(ep.connection_count(), 0);
    assert_eq!(ep.poll_transmit(Instant::ZERO, &mut [0; 100]).unwrap(), None);
}

#[test]
fn handshake_data_and_close_between_two_endpoints() {
    let mut net = Net::new();
    net.server.listen(SERVER, 8).unwrap();
    let (client, server) = net.connect();
    assert!(Net::events(&mut net.server).contains(&EndpointEvent::Acceptable { listener: SERVER }));
    net.client.send(net.now, client, b"hello").unwrap();
    net.run();
    let mut buf = [0u8; 16];
    assert_eq!(net.server.recv(server, &mut buf), Ok(5));
    assert_eq!(&buf[..5], b"hello");
    net.client.close(net.now, client).unwrap();
    net.run();
    net.server.close(net.now, server).unwrap();
    net.run();
    // The server side is freed at once; the client's TIME-WAIT is a compact record.
    assert_eq!(net.server.connection_count(), 0);
    assert_eq!(net.client.connection_count(), 0);
    assert_eq!(net.client.time_wait_count(), 1);
    let client_events = Net::events(&mut net.client);
    assert!(
        client_events
            .contains(&EndpointEvent::Connection(client, Event::Closed(CloseReason::Orderly)))
    );
    // After 2×MSL the record goes.
    while net.tick() {}
    assert_eq!(net.client.time_wait_count(), 0);
}

/// Data that arrives just before the connection ends (the peer's last bytes, its FIN, the
/// ACK of ours) is not lost when the application reads after the fact: the connection stays
/// until its receive buffer is read, and only then becomes a TIME-WAIT record or is freed.
#[test]
fn unread_data_outlives_the_end_of_the_connection_until_it_is_read() {
    let mut net = Net::new();
    net.server.listen(SERVER, 8).unwrap();
    let (client, server) = net.connect();
    // Client half-closes first; the server sends its last bytes and closes: the client goes
    // FIN-WAIT-2 -> TIME-WAIT with "bye" unread, the server LAST-ACK -> CLOSED with
    // "last words" unread.
    net.client.send(net.now, client, b"last words").unwrap();
    net.client.shutdown(net.now, client).unwrap();
    net.run();
    net.server.send(net.now, server, b"bye").unwrap();
    net.server.shutdown(net.now, server).unwrap();
    net.run();
    assert_eq!(net.client.status(client).unwrap().state, State::TimeWait);
    assert_eq!(net.server.status(server).unwrap().state, State::Closed);
    assert_eq!((net.client.time_wait_count(), net.client.connection_count()), (0, 1));
    let mut buf = [0u8; 32];
    assert_eq!(net.client.recv(client, &mut buf), Ok(3));
    assert_eq!(&buf[..3], b"bye");
    // Read out (and the output round that follows every call done): now a compact record,
    // and the handle is spent.
    net.run();
    assert_eq!((net.client.time_wait_count(), net.client.connection_count()), (1, 0));
    assert_eq!(net.client.recv(client, &mut buf), Err(EndpointError::StaleHandle));
    assert_eq!(net.server.recv(server, &mut buf), Ok(10));
    assert_eq!(&buf[..10], b"last words");
    net.run();
    assert_eq!(net.server.connection_count(), 0);
}

#[test]
fn stale_handle_is_refused_and_never_reaches_the_slot_reuser() {
    let mut net = Net::new();
    net.server.listen(SERVER, 8).unwrap();
    let (client, _) = net.connect();
    net.client.abort(net.now, client).unwrap();
    net.run();
    assert_eq!(net.client.connection_count(), 0);
    assert_eq!(net.client.send(net.now, client, b"x"), Err(EndpointError::StaleHandle));
    assert_eq!(net.client.status(client).err(), Some(EndpointError::StaleHandle));
    let reused = net.client.connect(net.now, CLIENT_IP, SERVER).unwrap();
    assert_ne!(reused, client);
    assert_eq!(net.client.send(net.now, client, b"x"), Err(EndpointError::StaleHandle));
    assert_eq!(net.client.status(reused).unwrap().state, State::SynSent);
}

/// MUST-46: an OPEN to a multicast remote is refused, with or without an ended TCB waiting
/// for reuse, and leaves nothing behind: no connection, no segment, and the next OPEN works.
#[test]
fn refused_connect_leaves_nothing_and_the_next_one_works_must_46() {
    let mut net = Net::new();
    net.server.listen(SERVER, 8).unwrap();
    let multicast = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(224, 0, 0, 1)), 80);
    let refused = Err(EndpointError::Call(tcp_proto::CallError::InvalidRemote));
    assert_eq!(net.client.connect(net.now, CLIENT_IP, multicast), refused);
    let (client, _) = net.connect();
    net.client.abort(net.now, client).unwrap();
    net.run();
    assert_eq!(net.client.connection_count(), 0);
    // Now an ended TCB waits for reuse.
    assert_eq!(net.client.connect(net.now, CLIENT_IP, multicast), refused);
    assert_eq!(net.client.connection_count(), 0);
    let mut buf = vec![0u8; 1500];
    assert!(net.client.poll_transmit(net.now, &mut buf).unwrap().is_none());
    let next = net.client.connect(net.now, CLIENT_IP, SERVER).unwrap();
    assert_eq!(net.client.status(next).unwrap().state, State::SynSent);
    net.run();
    assert_eq!(net.client.status(next).unwrap().state, State::Established);
    assert!(net.server.accept(SERVER).unwrap().is_some());
}

#[test]
fn ephemeral_ports_never_collide() {
    let mut config = endpoint_config(5);
    config.max_per_remote = 10_000;
    let mut ep = Endpoint::new(config);
    let mut ports = std::collections::BTreeSet::new();
    for _ in 0..2000 {
        let handle = ep.connect(Instant::ZERO, CLIENT_IP, SERVER).unwrap();
        let mut buf = vec![0u8; 1500];
        let tx = ep.poll_transmit(Instant::ZERO, &mut buf).unwrap().unwrap();
        assert!((49_152..=65_535).contains(&tx.local.port()));
        assert!(ports.insert(tx.local.port()), "port {} reused", tx.local.port());
        let _ = handle;
    }
}

#[test]
fn connection_limits_refuse_and_count() {
    let mut config = endpoint_config(6);
    config.max_connections = 3;
    config.max_per_remote = 2;
    let mut ep = Endpoint::new(config);
    let other = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3)), 80);
    ep.connect(Instant::ZERO, CLIENT_IP, SERVER).unwrap();
    ep.connect(Instant::ZERO, CLIENT_IP, SERVER).unwrap();
    assert_eq!(
        ep.connect(Instant::ZERO, CLIENT_IP, SERVER),
        Err(EndpointError::TooManyConnections)
    );
    ep.connect(Instant::ZERO, CLIENT_IP, other).unwrap();
    assert_eq!(ep.connect(Instant::ZERO, CLIENT_IP, other), Err(EndpointError::TooManyConnections));
    // A listener's SYN at the limit is refused and counted.
    let mut buf = vec![0u8; 1500];
    while ep.poll_transmit(Instant::ZERO, &mut buf).unwrap().is_some() {}
    ep.listen(SocketAddr::new(CLIENT_IP, 80), 8).unwrap();
    let from = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 7, 7, 7)), 1234);
    let replies = stray(&mut ep, from, SocketAddr::new(CLIENT_IP, 80), header(Flags::SYN, 1, 0));
    assert!(replies.iter().all(|r| !r.flags.contains(Flags::SYN)));
    assert_eq!(ep.counters().refused_by_limit, 1);
}

#[test]
fn full_accept_queue_drops_syns_and_the_client_gets_in_by_retrying() {
    let mut net = Net::new();
    net.server.listen(SERVER, 1).unwrap();
    let first = net.client.connect(net.now, CLIENT_IP, SERVER).unwrap();
    net.run();
    // The application has not accepted the first: the second SYN is dropped, counted.
    let second = net.client.connect(net.now, CLIENT_IP, SERVER).unwrap();
    net.run();
    assert_eq!(net.server.counters().accept_queue_full, 1);
    assert_eq!(net.client.status(first).unwrap().state, State::Established);
    assert_eq!(net.client.status(second).unwrap().state, State::SynSent);
    let accepted = net.server.accept(SERVER).unwrap().unwrap();
    // Room again: the second client's retransmitted SYN gets in.
    net.tick();
    assert_eq!(net.client.status(second).unwrap().state, State::Established);
    let next = net.server.accept(SERVER).unwrap();
    assert!(next.is_some() && next != Some(accepted));
}

/// A SYN from a spoofed address that will never complete: it occupies a SYN-queue slot.
fn spoofed_syn(ep: &mut Endpoint, i: u32) {
    let from =
        SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + i)), 1024 + (i % 60_000) as u16);
    let mut bytes = vec![0u8; 64];
    let mut syn = header(Flags::SYN, i.wrapping_mul(7919), 0);
    syn.src_port = from.port();
    let len = syn.emit(&[], from.ip(), SERVER_IP, &mut bytes).unwrap();
    ep.handle_segment(Instant::from_millis(1), from.ip(), SERVER_IP, &bytes[..len]);
}

#[test]
fn full_syn_queue_answers_with_a_cookie_and_the_client_connects_rfc_4987() {
    let mut net = Net::new();
    net.server.listen(SERVER, 1).unwrap();
    spoofed_syn(&mut net.server, 1);
    let mut buf = vec![0u8; 1500];
    while net.server.poll_transmit(net.now, &mut buf).unwrap().is_some() {}
    assert_eq!(net.server.connection_count(), 1, "the spoofed SYN holds the only slot");
    let client = net.client.connect(net.now, CLIENT_IP, SERVER).unwrap();
    net.run();
    assert_eq!(net.server.counters().cookies_sent, 1);
    assert_eq!(net.server.counters().cookies_accepted, 1);
    assert_eq!(net.client.status(client).unwrap().state, State::Established);
    let server = net.server.accept(SERVER).unwrap().expect("the cookie connection is acceptable");
    net.client.send(net.now, client, b"through a cookie").unwrap();
    net.run();
    let mut got = [0u8; 32];
    assert_eq!(net.server.recv(server, &mut got), Ok(16));
    assert_eq!(&got[..16], b"through a cookie");
    // The cookie carried the client's MSS and, in the SYN-ACK's marked TSval, timestamps
    // (RFC 7323 §3.2): both sides use them, so 1460 − 12 octets a segment (MUST-16).
    let status = net.server.status(server).unwrap();
    assert!(status.timestamps, "timestamps survived the cookie");
    assert_eq!(status.effective_mss, 1448);
    assert!(net.client.status(client).unwrap().timestamps);
    let synack =
        net.seen.iter().find(|(from_client, h, _)| !from_client && h.flags.contains(Flags::SYN));
    let ts = synack.unwrap().1.options.timestamps.expect("the cookie SYN-ACK carries timestamps");
    assert_eq!(ts.tsval & 1, 1, "the mark");
    // Both endpoints offer SACK-permitted (Config::sack), and the TSval kept it (RFC 2018 §2).
    assert!(synack.unwrap().1.options.sack_permitted);
    assert!(status.sack, "SACK-permitted survived the cookie");
    assert!(net.client.status(client).unwrap().sack);
}

/// A SYN without timestamps through a cookie: the SYN-ACK carries none (RFC 7323 §3.2), and a
/// cookie ACK that claims them anyway (its TSecr no echo of ours) does not turn them on.
#[test]
fn cookie_connection_without_timestamps_in_the_syn_has_none_rfc_7323_3_2() {
    let mut net = Net::new();
    net.server.listen(SERVER, 1).unwrap();
    spoofed_syn(&mut net.server, 1);
    let mut buf = vec![0u8; 1500];
    while net.server.poll_transmit(net.now, &mut buf).unwrap().is_some() {}
    let client = SocketAddr::new(CLIENT_IP, 4321);
    let mut syn = header(Flags::SYN, 1000, 0);
    syn.src_port = client.port();
    let replies = stray(&mut net.server, client, SERVER, syn);
    assert_eq!(replies.len(), 1);
    let synack = replies[0];
    assert_eq!(synack.flags, Flags::SYN | Flags::ACK);
    assert_eq!(synack.options.timestamps, None);
    assert_eq!(net.server.counters().cookies_sent, 1);
    let mut ack = header(Flags::ACK, 1001, synack.seq.get().wrapping_add(1));
    ack.src_port = client.port();
    ack.options.timestamps = Some(Timestamps { tsval: 77, tsecr: 12_344 });
    assert!(stray(&mut net.server, client, SERVER, ack).is_empty());
    assert_eq!(net.server.counters().cookies_accepted, 1);
    let handle = net.server.accept(SERVER).unwrap().expect("the cookie connection");
    let status = net.server.status(handle).unwrap();
    assert!(!status.timestamps);
    assert_eq!(status.effective_mss, 536, "no MSS option on that SYN (MUST-15)");
}

/// A listener at `SERVER` whose one SYN-queue slot a spoofed SYN holds: the next SYN gets a
/// cookie.
fn listener_with_a_full_syn_queue() -> Endpoint {
    let mut ep = Endpoint::new(endpoint_config(2));
    ep.listen(SERVER, 1).unwrap();
    spoofed_syn(&mut ep, 1);
    let mut buf = vec![0u8; 1500];
    while ep.poll_transmit(Instant::from_millis(1), &mut buf).unwrap().is_some() {}
    assert_eq!(ep.connection_count(), 1);
    ep
}

const COOKIE_CLIENT: SocketAddr = SocketAddr::new(CLIENT_IP, 4321);

/// The window shift the server's config chooses: for the receive buffer's auto-tuning
/// ceiling (16 MiB by default), not its initial 64 KiB (RFC 7323 §2.2).
const SERVER_SHIFT: u8 = 9;

/// The SYN-ACK that answers, with a cookie, a SYN (SEQ 1000, MSS 1460, window scale 7) that
/// offers SACK-permitted and timestamps (TSval 5000) as asked; asserted field by field.
fn cookie_syn_ack(ep: &mut Endpoint, sack: bool, timestamps: bool) -> TcpHeader {
    let mut syn = header(Flags::SYN, 1000, 0);
    syn.src_port = COOKIE_CLIENT.port();
    syn.options.mss = Some(1460);
    syn.options.window_scale = Some(7);
    syn.options.sack_permitted = sack;
    syn.options.timestamps = timestamps.then_some(Timestamps { tsval: 5000, tsecr: 0 });
    let cookies_sent = ep.counters().cookies_sent;
    let replies = stray(ep, COOKIE_CLIENT, SERVER, syn);
    assert_eq!(ep.counters().cookies_sent, cookies_sent + 1);
    assert_eq!(replies.len(), 1);
    let synack = replies[0];
    // The cookie (SEQ) and our TSval come from keyed hashes; the rest is exact.
    let tsval = synack.options.timestamps.map(|ts| ts.tsval);
    let mut options = Options::NONE;
    options.mss = Some(1460);
    options.window_scale = Some(SERVER_SHIFT);
    // RFC 2018 §2: offered only when the cookie keeps it, in the TSval.
    options.sack_permitted = sack && timestamps;
    options.timestamps =
        tsval.filter(|_| timestamps).map(|tsval| Timestamps { tsval, tsecr: 5000 });
    let expected = TcpHeader {
        src_port: 80,
        dst_port: COOKIE_CLIENT.port(),
        seq: synack.seq,
        ack: SeqNum::new(1001),
        flags: Flags::SYN | Flags::ACK,
        window: 65_535,
        urgent_ptr: 0,
        options,
    };
    assert_eq!(synack, expected);
    assert_eq!(tsval.is_some(), timestamps, "RFC 7323 §3.2");
    if let Some(tsval) = tsval {
        // The mark (bit 0) and SACK-permitted (bit 1), as Linux keeps options in TSval.
        assert_eq!(tsval & 0b11, if sack { 0b11 } else { 0b01 });
    }
    synack
}

/// The client's ACK of `synack`: TSval 5001 echoing `tsecr`, if given.
fn cookie_ack(synack: &TcpHeader, tsecr: Option<u32>) -> TcpHeader {
    let mut ack = header(Flags::ACK, 1001, synack.seq.get().wrapping_add(1));
    ack.src_port = COOKIE_CLIENT.port();
    ack.options.timestamps = tsecr.map(|tsecr| Timestamps { tsval: 5001, tsecr });
    ack
}

/// A full cookie handshake: the SYN (options as asked), the SYN-ACK, the ACK echoing its TSval.
/// Returns the SYN-ACK and the status of the connection the ACK created.
fn cookie_handshake(sack: bool, timestamps: bool) -> (TcpHeader, tcp_proto::Status) {
    let mut ep = listener_with_a_full_syn_queue();
    let synack = cookie_syn_ack(&mut ep, sack, timestamps);
    let ack = cookie_ack(&synack, synack.options.timestamps.map(|ts| ts.tsval));
    assert_eq!(stray(&mut ep, COOKIE_CLIENT, SERVER, ack), []);
    assert_eq!(ep.counters().cookies_accepted, 1);
    let handle = ep.accept(SERVER).unwrap().expect("the cookie connection");
    let status = ep.status(handle).unwrap();
    assert_eq!(
        (status.state, status.iss, status.irs),
        (State::Established, synack.seq, SeqNum::new(1000))
    );
    // The window scale lives in the cookie (the ISN) whatever the SYN's other options.
    assert_eq!((status.snd_wscale, status.rcv_wscale), (Some(7), Some(SERVER_SHIFT)));
    (synack, status)
}

/// SACK-permitted and timestamps on the SYN: the SYN-ACK offers both, its TSval keeps
/// SACK-permitted, and the ACK's echo turns both on (RFC 2018 §2, RFC 7323 §3.2).
#[test]
fn cookie_syn_with_sack_and_timestamps_gets_both_back_rfc_2018_2() {
    let (_, status) = cookie_handshake(true, true);
    assert!(status.sack, "SACK-permitted survived the cookie");
    assert!(status.timestamps);
    assert_eq!(status.effective_mss, 1460 - 12, "MUST-16");
}

/// Timestamps alone: the SYN-ACK offers no SACK-permitted, its TSval says so, and only
/// timestamps are on.
#[test]
fn cookie_syn_with_timestamps_only_gets_no_sack_rfc_2018_2() {
    let (_, status) = cookie_handshake(false, true);
    assert!(!status.sack);
    assert!(status.timestamps);
    assert_eq!(status.effective_mss, 1460 - 12);
}

/// SACK-permitted without timestamps cannot survive a cookie (no TSval to keep it, as in
/// Linux): the SYN-ACK does not offer it, so both sides agree SACK is off.
#[test]
fn cookie_syn_with_sack_but_no_timestamps_loses_sack_on_both_sides_rfc_2018_2() {
    let (_, status) = cookie_handshake(true, false);
    assert!(!status.sack);
    assert!(!status.timestamps);
    assert_eq!(status.effective_mss, 1460);
}

#[test]
fn cookie_syn_with_neither_sack_nor_timestamps_gets_neither_rfc_2018_2() {
    let (_, status) = cookie_handshake(false, false);
    assert!(!status.sack);
    assert!(!status.timestamps);
    assert_eq!(status.effective_mss, 1460);
}

/// A cookie ACK whose TSecr contradicts the SYN-ACK's SACK bit — claiming SACK-permitted the
/// SYN-ACK did not offer, dropping it, or claiming it by timestamps the SYN-ACK never carried —
/// fails the cookie's MAC: <SEQ=SEG.ACK><CTL=RST>, no connection, SACK on nowhere.
#[test]
fn cookie_ack_with_a_tsecr_contradicting_its_sack_bit_draws_a_rst_rfc_2018_2() {
    /// The ACK's TSecr (or no timestamps) made from the SYN-ACK's TSval.
    type Forge = fn(u32) -> Option<u32>;
    let cases: [(bool, bool, Forge); 4] = [
        // Timestamps only; the echo sets the SACK bit.
        (false, true, |tsval| Some(tsval | 0b10)),
        // Both; the echo clears it.
        (true, true, |tsval| Some(tsval & !0b10)),
        // Both; the ACK carries no timestamps, so no SACK bit.
        (true, true, |_| None),
        // SACK-permitted only: no TSval was sent, yet the ACK echoes a SACK mark.
        (true, false, |_| Some(0x0123_4567)),
    ];
    for (sack, timestamps, forge) in cases {
        let mut ep = listener_with_a_full_syn_queue();
        let synack = cookie_syn_ack(&mut ep, sack, timestamps);
        let tsval = synack.options.timestamps.map_or(0, |ts| ts.tsval);
        let ack = cookie_ack(&synack, forge(tsval));
        let replies = stray(&mut ep, COOKIE_CLIENT, SERVER, ack);
        let rst = header(Flags::RST, synack.seq.get().wrapping_add(1), 0);
        let rst = TcpHeader { src_port: 80, dst_port: COOKIE_CLIENT.port(), window: 0, ..rst };
        assert_eq!(replies, [rst], "{sack} {timestamps}");
        assert_eq!(ep.counters().cookies_refused, 1);
        assert_eq!(ep.counters().cookies_accepted, 0);
        assert_eq!(ep.accept(SERVER).unwrap(), None);
        assert_eq!(ep.connection_count(), 1, "only the spoofed SYN's");
    }
}

#[test]
fn forged_cookie_ack_draws_a_rst_and_creates_nothing() {
    let mut ep = Endpoint::new(endpoint_config(8));
    ep.listen(SERVER, 1).unwrap();
    let replies = stray(&mut ep, STRANGER, SERVER, header(Flags::ACK, 5000, 123_456));
    assert_eq!((replies[0].flags, replies[0].seq.get()), (Flags::RST, 123_456));
    assert_eq!(ep.counters().cookies_refused, 1);
    assert_eq!(ep.connection_count(), 0);
}

#[test]
fn syn_flood_of_100000_spoofed_syns_stays_bounded_and_a_client_still_connects() {
    let mut net = Net::new();
    net.server.listen(SERVER, 16).unwrap();
    let mut buf = vec![0u8; 1500];
    for i in 0..100_000 {
        spoofed_syn(&mut net.server, i);
        if i % 64 == 0 {
            while net.server.poll_transmit(net.now, &mut buf).unwrap().is_some() {}
        }
        // Memory bound: never more TCBs than the backlog (16 SYN-RECEIVED), no matter the flood.
        assert!(net.server.connection_count() <= 16);
    }
    while net.server.poll_transmit(net.now, &mut buf).unwrap().is_some() {}
    let counters = *net.server.counters();
    assert!(counters.cookies_sent + counters.stray_replies_dropped >= 99_984);
    let client = net.client.connect(net.now, CLIENT_IP, SERVER).unwrap();
    net.run();
    assert_eq!(net.client.status(client).unwrap().state, State::Established);
    assert!(net.server.accept(SERVER).unwrap().is_some());
    assert_eq!(net.server.connection_count(), 17);
}

#[test]
fn time_wait_record_acks_a_retransmitted_fin_and_ignores_rst_rfc_1337() {
    let mut net = Net::new();
    net.server.listen(SERVER, 8).unwrap();
    let (client, server) = net.connect();
    net.client.close(net.now, client).unwrap();
    net.run();
    net.server.close(net.now, server).unwrap();
    net.run();
    assert_eq!(net.client.time_wait_count(), 1);
    // The server's FIN again (as if our ACK were lost).
    let (_, fin, _) = *net
        .seen
        .iter()
        .rev()
        .find(|(from_client, h, _)| !from_client && h.flags.contains(Flags::FIN))
        .unwrap();
    let local = SocketAddr::new(CLIENT_IP, fin.dst_port);
    let replies = stray(&mut net.client, SERVER, local, fin);
    assert_eq!(replies.len(), 1);
    assert_eq!((replies[0].flags, replies[0].ack), (Flags::ACK, fin.seq + 1));
    let mut rst = fin;
    rst.flags = Flags::RST;
    rst.seq = fin.seq + 1;
    assert!(stray(&mut net.client, SERVER, local, rst).is_empty());
    assert_eq!(net.client.time_wait_count(), 1, "RFC 1337: the record survives the RST");
}

#[test]
fn timer_heap_drives_retransmissions_without_scanning() {
    let mut ep = Endpoint::new(endpoint_config(7));
    let handle = ep.connect(Instant::ZERO, CLIENT_IP, SERVER).unwrap();
    let mut buf = vec![0u8; 1500];
    assert!(ep.poll_transmit(Instant::ZERO, &mut buf).unwrap().is_some());
    assert_eq!(ep.poll_timeout(), Some(Instant::from_millis(1000)));
    ep.handle_timeout(Instant::from_millis(999));
    assert_eq!(ep.poll_transmit(Instant::from_millis(999), &mut buf).unwrap(), None);
    ep.handle_timeout(Instant::from_millis(1000));
    let tx = ep.poll_transmit(Instant::from_millis(1000), &mut buf).unwrap().unwrap();
    let syn = Segment::parse(&buf[..tx.len]).unwrap().header;
    assert_eq!(syn.flags, Flags::SYN);
    assert_eq!(ep.status(handle).unwrap().total_retransmissions, 1);
    assert_eq!(ep.poll_timeout(), Some(Instant::from_millis(3000)));
}

/// A setting changed through `connection_mut` takes effect at the next `poll_transmit`: data
/// that Nagle held (MUST-38/SHLD-7, a short segment still unacknowledged) goes out once Nagle
/// is switched off, with no other call in between.
#[test]
fn a_change_through_connection_mut_is_acted_on_at_the_next_poll_transmit() {
    let mut net = Net::new();
    net.server.listen(SERVER, 8).unwrap();
    let (c, _) = net.connect();
    let mut buf = vec![0u8; 1500];
    net.client.send(net.now, c, b"first").unwrap();
    let tx = net.client.poll_transmit(net.now, &mut buf).unwrap().expect("the first short segment");
    let first = Segment::parse(&buf[..tx.len]).unwrap();
    assert_eq!(first.payload, b"first");
    let first_seq = first.header.seq;
    net.client.send(net.now, c, b"second").unwrap();
    assert!(
        net.client.poll_transmit(net.now, &mut buf).unwrap().is_none(),
        "Nagle holds the second short segment while the first is unacknowledged"
    );
    net.client.connection_mut(c).unwrap().set_nodelay(true);
    let tx = net.client.poll_transmit(net.now, &mut buf).unwrap().expect("released");
    let second = Segment::parse(&buf[..tx.len]).unwrap();
    assert_eq!(second.payload, b"second");
    assert_eq!(second.header.seq, first_seq + 5);
    assert_eq!(second.header.flags, Flags::ACK | Flags::PSH);
    assert!(net.client.poll_transmit(net.now, &mut buf).unwrap().is_none());
}

/// Data segments (when, payload) or connection events (when, event), in order.
type Timeline<T> = Vec<(Instant, T)>;

/// The server's side alone, the client unreachable: runs the server's timers until `until`
/// and drops everything it sends. Returns each data segment sent and each connection event.
fn run_server_unanswered(net: &mut Net, until: Instant) -> (Timeline<Vec<u8>>, Timeline<Event>) {
    let (mut sent, mut events) = (Vec::new(), Vec::new());
    let mut buf = vec![0u8; 1500];
    loop {
        while let Some(tx) = net.server.poll_transmit(net.now, &mut buf).unwrap() {
            let segment = Segment::parse(&buf[..tx.len]).unwrap();
            if !segment.payload.is_empty() {
                sent.push((net.now, segment.payload.to_vec()));
            }
        }
        while let Some(event) = net.server.poll_event() {
            if let EndpointEvent::Connection(_, event) = event {
                events.push((net.now, event));
            }
        }
        match net.server.poll_timeout() {
            Some(next) if next <= until => {
                net.now = net.now.max(next);
                net.server.handle_timeout(net.now);
            }
            Some(_) | None => return (sent, events),
        }
    }
}

/// MUST-21: an application sets R2 for one connection it accepted — "infinity" here — while
/// the endpoint's shared configuration keeps R2 = 100 s for the others.
#[test]
fn accepted_connection_sets_its_own_infinite_r2_must_21() {
    let mut net = Net::new();
    net.server.listen(SERVER, 8).unwrap();
    let (_, forever) = net.connect();
    let (_, default) = net.connect();
    net.server.connection_mut(forever).unwrap().set_r2_data(None);
    net.server.send(net.now, forever, b"forever").unwrap();
    net.server.send(net.now, default, b"default").unwrap();
    let start = net.now;
    let (sent, events) = run_server_unanswered(&mut net, start + Duration::from_secs(4000));
    let timed_out = Event::Closed(CloseReason::Error(tcp_proto::ConnectionError::TimedOut));
    let closed: Vec<(u64, Event)> = events
        .into_iter()
        .filter(|(_, event)| matches!(event, Event::Closed(_)))
        .map(|(at, event)| (at.as_micros() - start.as_micros(), event))
        .collect();
    // A tail loss probe at 0.2 s (RFC 8985 §7.2: 2·SRTT, about 0 on this link, plus 200 ms
    // with one segment in flight), which restarts the retransmission timer (§7.3); then
    // retransmissions at 1.2, 3.2, 7.2, 15.2, 31.2 and 63.2 s; at 127.2 s, R2 (100 s since the
    // first) is past and the shared-configuration connection gives up.
    assert_eq!(closed, [(127_200_000, timed_out)], "only the connection under the shared R2");
    assert!(net.server.status(default).is_err(), "it is gone");
    let forever_sent: Vec<Instant> =
        sent.iter().filter(|(_, payload)| payload == b"forever").map(|(at, _)| *at).collect();
    let last = forever_sent.last().unwrap().as_micros() - start.as_micros();
    assert!(last > 3_800_000_000, "still retransmitting after {last} µs");
    assert!(forever_sent.len() > 35, "{} transmissions", forever_sent.len());
    let status = net.server.status(forever).unwrap();
    assert_eq!(status.state, State::Established);
    assert_eq!(status.rto, Duration::from_secs(120), "backoff capped (RFC 6298 2.5)");
}

/// MUST-21: an accepted connection sets its own user timeout (RFC 9293 §3.10.8) while data is
/// already outstanding; it is measured from when that data was sent. A connection beside it
/// keeps the shared configuration (no user timeout, R2 = 100 s).
#[test]
fn accepted_connection_sets_its_own_user_timeout_must_21() {
    let mut net = Net::new();
    net.server.listen(SERVER, 8).unwrap();
    let (_, short) = net.connect();
    let (_, other) = net.connect();
    net.now += Duration::from_secs(1);
    let sent_at = net.now;
    net.server.send(net.now, short, b"short").unwrap();
    net.server.send(net.now, other, b"other").unwrap();
    let mut buf = vec![0u8; 1500];
    while net.server.poll_transmit(net.now, &mut buf).unwrap().is_some() {}
    net.now += Duration::from_secs(2);
    net.server.connection_mut(short).unwrap().set_user_timeout(Some(Duration::from_secs(10)));
    let (_, events) = run_server_unanswered(&mut net, sent_at + Duration::from_secs(10));
    let timed_out = Event::Closed(CloseReason::Error(tcp_proto::ConnectionError::TimedOut));
    let closed: Vec<(u64, Event)> = events
        .into_iter()
        .filter(|(_, event)| matches!(event, Event::Closed(_)))
        .map(|(at, event)| (at.as_micros() - sent_at.as_micros(), event))
        .collect();
    assert_eq!(closed, [(10_000_000, timed_out)], "10 s after the data left, and only this one");
    assert!(net.server.status(short).is_err(), "it is gone");
    assert_eq!(net.server.status(other).unwrap().state, State::Established);
}

#[test]
fn transmit_is_fair_across_connections() {
    let mut net = Net::new();
    net.server.listen(SERVER, 8).unwrap();
    let (a, _) = net.connect();
    let (b, _) = net.connect();
    net.client.connection_mut(a).unwrap().set_nodelay(true);
    net.client.connection_mut(b).unwrap().set_nodelay(true);
    net.client.send(net.now, a, &[1; 4000]).unwrap();
    net.client.send(net.now, b, &[2; 4000]).unwrap();
    let mut buf = vec![0u8; 1500];
    let mut order = Vec::new();
    while let Some(tx) = net.client.poll_transmit(net.now, &mut buf).unwrap() {
        order.push(tx.local.port());
    }
    assert!(order.len() >= 4);
    assert!(order.windows(2).all(|w| w[0] != w[1]), "alternating: {order:?}");
}

/// The server closes first and so holds TIME-WAIT, as a record once the output is out.
/// Returns the client's address and the old incarnation's (SND.NXT, RCV.NXT) at the server,
/// read off the server's last segment (its ACK of the client's FIN).
fn server_in_time_wait(
    net: &mut Net,
    client: ConnectionHandle,
    server: ConnectionHandle,
) -> (SocketAddr, u32, u32) {
    net.server.close(net.now, server).unwrap();
    net.run();
    net.client.close(net.now, client).unwrap();
    net.run();
    assert_eq!((net.server.connection_count(), net.server.time_wait_count()), (0, 1));
    let (_, last, _) = *net.seen.iter().rev().find(|(from_client, _, _)| !from_client).unwrap();
    assert_eq!(last.flags, Flags::ACK);
    (SocketAddr::new(CLIENT_IP, last.dst_port), last.seq.get(), last.ack.get())
}

/// TS.Recent of the server's TIME-WAIT record: what its last ACK echoed.
fn ts_recent(net: &Net) -> u32 {
    let (_, last, _) = *net.seen.iter().rev().find(|(from_client, _, _)| !from_client).unwrap();
    last.options.timestamps.expect("the two endpoints use timestamps").tsecr
}

/// A SYN with timestamps (TSval `tsval`) from `client`, fed to the server; its replies.
fn syn_with_tsval_from(net: &mut Net, client: SocketAddr, seq: u32, tsval: u32) -> Vec<TcpHeader> {
    let mut syn = header(Flags::SYN, seq, 0);
    syn.src_port = client.port();
    syn.options.timestamps = Some(Timestamps { tsval, tsecr: 0 });
    stray(&mut net.server, client, SERVER, syn)
}

/// RFC 6191 with timestamps (SHLD-4): a SYN whose TSval is newer than the record's TS.Recent
/// reopens the 4-tuple even though SEG.SEQ lies below the old RCV.NXT; one whose TSval is
/// older is dropped silently even though SEG.SEQ lies beyond it; at an equal TSval, SEG.SEQ
/// decides. The new incarnation echoes the SYN's TSval.
#[test]
fn syn_with_a_newer_tsval_reopens_a_time_wait_tuple_rfc_6191_shld_4() {
    let mut net = Net::new();
    net.server.listen(SERVER, 8).unwrap();
    let (client, server) = net.connect();
    let (client_addr, old_snd_nxt, old_rcv_nxt) = server_in_time_wait(&mut net, client, server);
    let recent = ts_recent(&net);
    // Older TSval, higher sequence number: silently dropped, no reopening.
    let later_seq = old_rcv_nxt.wrapping_add(100_000);
    assert!(
        syn_with_tsval_from(&mut net, client_addr, later_seq, recent.wrapping_sub(1)).is_empty()
    );
    // Equal TSval, sequence number not beyond RCV.NXT: dropped too.
    assert!(syn_with_tsval_from(&mut net, client_addr, old_rcv_nxt, recent).is_empty());
    assert_eq!(net.server.counters().time_wait_reopened, 0);
    assert_eq!((net.server.connection_count(), net.server.time_wait_count()), (0, 1));
    // Newer TSval, sequence number below the old RCV.NXT: reopened.
    let old_seq = old_rcv_nxt.wrapping_sub(1_000);
    let replies = syn_with_tsval_from(&mut net, client_addr, old_seq, recent.wrapping_add(1));
    assert_eq!(replies.len(), 1);
    let synack = replies[0];
    assert_eq!((synack.flags, synack.ack.get()), (Flags::SYN | Flags::ACK, old_seq + 1));
    assert!(synack.seq.after(SeqNum::new(old_snd_nxt)), "ISS after the old SND.NXT");
    let echoed = synack.options.timestamps.expect("the SYN offered timestamps");
    assert_eq!(echoed.tsecr, recent.wrapping_add(1));
    assert_eq!(net.server.counters().time_wait_reopened, 1);
}

/// Equal TSval and SEG.SEQ beyond the old RCV.NXT: reopened (RFC 6191's tie-break).
#[test]
fn syn_with_an_equal_tsval_and_higher_sequence_reopens_rfc_6191_shld_4() {
    let mut net = Net::new();
    net.server.listen(SERVER, 8).unwrap();
    let (client, server) = net.connect();
    let (client_addr, _, old_rcv_nxt) = server_in_time_wait(&mut net, client, server);
    let recent = ts_recent(&net);
    let seq = old_rcv_nxt.wrapping_add(1);
    let replies = syn_with_tsval_from(&mut net, client_addr, seq, recent);
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].flags, Flags::SYN | Flags::ACK);
    assert_eq!(net.server.counters().time_wait_reopened, 1);
}

/// A SYN from `client` with sequence number `seq`, fed to the server; its replies.
fn syn_from(net: &mut Net, client: SocketAddr, seq: u32) -> Vec<TcpHeader> {
    let mut syn = header(Flags::SYN, seq, 0);
    syn.src_port = client.port();
    stray(&mut net.server, client, SERVER, syn)
}

/// MAY-2 / RFC 6191: a SYN beyond the old RCV.NXT reopens the 4-tuple with an ISS after the
/// old SND.NXT; the record stays until the new handshake completes, then goes.
#[test]
fn new_syn_with_higher_sequence_reopens_a_time_wait_tuple_may_2() {
    let mut net = Net::new();
    net.server.listen(SERVER, 8).unwrap();
    let (client, server) = net.connect();
    let (client_addr, old_snd_nxt, old_rcv_nxt) = server_in_time_wait(&mut net, client, server);
    let syn_seq = old_rcv_nxt.wrapping_add(100_000);
    let replies = syn_from(&mut net, client_addr, syn_seq);
    assert_eq!(replies.len(), 1);
    let synack = replies[0];
    assert_eq!((synack.flags, synack.ack.get()), (Flags::SYN | Flags::ACK, syn_seq + 1));
    assert!(synack.seq.after(SeqNum::new(old_snd_nxt)), "ISS after the old SND.NXT");
    assert_eq!(net.server.counters().time_wait_reopened, 1);
    // Not yet known to be genuine: the record is kept beside the half-open connection.
    assert_eq!((net.server.connection_count(), net.server.time_wait_count()), (1, 1));
    let mut last_ack = header(Flags::ACK, syn_seq + 1, synack.seq.get() + 1);
    last_ack.src_port = client_addr.port();
    assert!(stray(&mut net.server, client_addr, SERVER, last_ack).is_empty());
    // ESTABLISHED: the new incarnation is real, the old record goes.
    assert_eq!((net.server.connection_count(), net.server.time_wait_count()), (1, 0));
    let reopened = net.server.accept(SERVER).unwrap().expect("the reopened connection");
    assert_eq!(net.server.status(reopened).unwrap().state, State::Established);
}

/// The SYN left of the window is no new incarnation: the record answers it as a connection in
/// TIME-WAIT does, with <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> (§3.10.7.4 step 1; RFC 6191 drops
/// silently only SYNs that carry timestamps), and stays.
#[test]
fn old_syn_for_a_time_wait_tuple_draws_the_time_wait_ack_rfc_6191() {
    let mut net = Net::new();
    net.server.listen(SERVER, 8).unwrap();
    let (client, server) = net.connect();
    let (client_addr, old_snd_nxt, old_rcv_nxt) = server_in_time_wait(&mut net, client, server);
    let replies = syn_from(&mut net, client_addr, old_rcv_nxt.wrapping_sub(10));
    assert_eq!(replies.len(), 1);
    let r = replies[0];
    assert_eq!((r.flags, r.seq.get(), r.ack.get()), (Flags::ACK, old_snd_nxt, old_rcv_nxt));
    // At RCV.NXT: in the window, the challenge ACK of RFC 5961 §4, and no reopening either.
    let replies = syn_from(&mut net, client_addr, old_rcv_nxt);
    assert_eq!((replies[0].flags, replies[0].seq.get()), (Flags::ACK, old_snd_nxt));
    assert_eq!(net.server.counters().time_wait_reopened, 0);
    assert_eq!((net.server.connection_count(), net.server.time_wait_count()), (0, 1));
}

/// MAY-2 condition (1): after the old incarnation sent 4 MB in less than the 16 s the 4 µs ISN
/// clock takes to cover them, the clock-driven ISN of a reopening SYN would lie millions of
/// octets *below* the old SND.NXT (3.9 MB in the issue); the new ISS must come after it.
#[test]
fn reopened_4_tuple_starts_its_iss_after_a_4_mb_old_incarnation_may_2() {
    let mut net = Net::new();
    net.server.listen(SERVER, 8).unwrap();
    let (client, server) = net.connect();
    let iss = net.server.status(server).unwrap().iss;
    let chunk = vec![0x5a; 64 * 1024];
    let mut buf = vec![0u8; 64 * 1024];
    let (mut sent, mut received) = (0, 0);
    while received < 4 << 20 {
        if sent < 4 << 20 {
            sent += net.server.send(net.now, server, &chunk).unwrap();
        }
        net.run();
        while let Ok(n @ 1..) = net.client.recv(client, &mut buf) {
            received += n;
        }
        net.run();
    }
    let (client_addr, old_snd_nxt, old_rcv_nxt) = server_in_time_wait(&mut net, client, server);
    assert_eq!(SeqNum::new(old_snd_nxt).since(iss), (4 << 20) + 2, "SYN, 4 MB, FIN");
    let replies = syn_from(&mut net, client_addr, old_rcv_nxt.wrapping_add(1));
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].flags, Flags::SYN | Flags::ACK);
    let new_iss = replies[0].seq;
    assert!(
        new_iss.after(SeqNum::new(old_snd_nxt)),
        "new ISS {new_iss} is {} octets before the old SND.NXT {old_snd_nxt}",
        SeqNum::new(old_snd_nxt).since(new_iss)
    );
}

/// MAY-2 condition (2): the SYN passed the sequence test but was an old duplicate — the peer
/// answers our SYN-ACK with a RST — so the 4-tuple goes back to TIME-WAIT: the record (kept
/// all along) answers again as before and still expires 2×MSL after the old close.
#[test]
fn old_duplicate_syn_refused_by_the_peer_returns_the_4_tuple_to_time_wait_may_2() {
    let mut net = Net::new();
    net.server.listen(SERVER, 8).unwrap();
    let (client, server) = net.connect();
    let (client_addr, old_snd_nxt, old_rcv_nxt) = server_in_time_wait(&mut net, client, server);
    let expiry = net.now + Duration::from_secs(20);
    let syn_seq = old_rcv_nxt.wrapping_add(7);
    let synack = syn_from(&mut net, client_addr, syn_seq)[0];
    assert_eq!(synack.flags, Flags::SYN | Flags::ACK);
    // The peer never sent that SYN: <SEQ=SEG.ACK><CTL=RST> (§3.10.7.3).
    let mut rst = header(Flags::RST, synack.ack.get(), 0);
    rst.src_port = client_addr.port();
    assert!(stray(&mut net.server, client_addr, SERVER, rst).is_empty());
    assert_eq!((net.server.connection_count(), net.server.time_wait_count()), (0, 1));
    // Back in TIME-WAIT: an unacceptable segment draws the ACK from the old numbers. (The
    // old incarnation used timestamps, so it carries them: without, it is dropped.)
    let mut stale = header(Flags::ACK, old_rcv_nxt.wrapping_add(500_000), old_snd_nxt);
    stale.src_port = client_addr.port();
    stale.options.timestamps = Some(Timestamps { tsval: ts_recent(&net), tsecr: 0 });
    let replies = stray(&mut net.server, client_addr, SERVER, stale);
    assert_eq!(replies.len(), 1);
    let r = replies[0];
    assert_eq!((r.flags, r.seq.get(), r.ack.get()), (Flags::ACK, old_snd_nxt, old_rcv_nxt));
    // And the old expiry holds.
    net.server.handle_timeout(Instant::from_micros(expiry.as_micros() - 1));
    assert_eq!(net.server.time_wait_count(), 1);
    net.server.handle_timeout(expiry);
    assert_eq!(net.server.time_wait_count(), 0);
}

/// MAY-2 condition (2) again, when the peer stays silent: the reopening SYN-RECEIVED gives up
/// (R2 for SYNs, 3 minutes) and the 4-tuple is back in TIME-WAIT until the old expiry.
#[test]
fn reopening_handshake_that_times_out_returns_the_4_tuple_to_time_wait_may_2() {
    let mut net = Net::new();
    net.server = Endpoint::new({
        let mut config = endpoint_config(2);
        config.connection.msl = Duration::from_secs(300);
        config
    });
    net.server.listen(SERVER, 8).unwrap();
    let (client, server) = net.connect();
    let (client_addr, old_snd_nxt, old_rcv_nxt) = server_in_time_wait(&mut net, client, server);
    let expiry = net.now + Duration::from_secs(600);
    assert_eq!(
        syn_from(&mut net, client_addr, old_rcv_nxt.wrapping_add(7))[0].flags,
        Flags::SYN | Flags::ACK
    );
    let mut buf = vec![0u8; 1500];
    let mut synacks = 0;
    while net.server.connection_count() > 0 {
        net.now = net.server.poll_timeout().unwrap();
        assert!(net.now < expiry, "the record expired before the handshake ended");
        net.server.handle_timeout(net.now);
        while let Some(tx) = net.server.poll_transmit(net.now, &mut buf).unwrap() {
            assert!(Segment::parse(&buf[..tx.len]).unwrap().header.flags.contains(Flags::SYN));
            synacks += 1;
        }
    }
    assert!(synacks >= 3, "R1 retransmissions at least");
    assert_eq!(net.server.time_wait_count(), 1);
    let mut ack = header(Flags::ACK, old_rcv_nxt.wrapping_add(500_000), old_snd_nxt);
    ack.src_port = client_addr.port();
    // The old incarnation used timestamps, so the segment carries them (else it is dropped).
    ack.options.timestamps = Some(Timestamps { tsval: ts_recent(&net), tsecr: 0 });
    let replies = stray(&mut net.server, client_addr, SERVER, ack);
    assert_eq!(
        (replies[0].flags, replies[0].seq.get(), replies[0].ack.get()),
        (Flags::ACK, old_snd_nxt, old_rcv_nxt)
    );
    net.server.handle_timeout(Instant::from_micros(expiry.as_micros() - 1));
    assert_eq!(net.server.time_wait_count(), 1);
    net.server.handle_timeout(expiry);
    assert_eq!(net.server.time_wait_count(), 0);
}

/// The endpoint reopens a TIME-WAIT 4-tuple also while it is still a full connection (its
/// final ACK not yet polled out): it becomes the record it was about to become, the
/// application hears it closed, and the record reopens. One whose application has not read
/// all its data is not reopened (the data would be lost): it answers as TIME-WAIT does.
#[test]
fn time_wait_connection_not_yet_retired_is_reopened_by_the_endpoint_may_2() {
    let mut net = Net::new();
    net.server.listen(SERVER, 8).unwrap();
    let (client, server) = net.connect();
    net.server.close(net.now, server).unwrap();
    net.run();
    net.client.close(net.now, client).unwrap();
    let mut buf = vec![0u8; 1500];
    let tx = net.client.poll_transmit(net.now, &mut buf).unwrap().unwrap();
    let fin = Segment::parse(&buf[..tx.len]).unwrap().header;
    assert!(fin.flags.contains(Flags::FIN));
    net.server.handle_segment(net.now, tx.local.ip(), tx.remote.ip(), &buf[..tx.len]);
    assert_eq!(net.server.status(server).unwrap().state, State::TimeWait);
    let old_snd_nxt = net.server.status(server).unwrap().snd_nxt;
    let client_addr = tx.local;
    let replies = syn_from(&mut net, client_addr, fin.seq.get().wrapping_add(50_000));
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].flags, Flags::SYN | Flags::ACK);
    assert!(replies[0].seq.after(old_snd_nxt));
    assert_eq!(net.server.status(server), Err(EndpointError::StaleHandle));
    assert!(
        Net::events(&mut net.server)
            .contains(&EndpointEvent::Connection(server, Event::Closed(CloseReason::Orderly)))
    );
    assert_eq!((net.server.connection_count(), net.server.time_wait_count()), (1, 1));
    assert_eq!(net.server.counters().time_wait_reopened, 1);

    // With data unread, the connection stays and the SYN gets the TIME-WAIT ACK.
    let mut net = Net::new();
    net.server.listen(SERVER, 8).unwrap();
    let (client, server) = net.connect();
    net.server.shutdown(net.now, server).unwrap();
    net.run();
    net.client.send(net.now, client, b"unread").unwrap();
    net.client.close(net.now, client).unwrap();
    net.run();
    let status = net.server.status(server).unwrap();
    assert_eq!((status.state, status.recv_queued), (State::TimeWait, 6));
    let (_, from_client, _) =
        *net.seen.iter().rev().find(|(from_client, _, _)| *from_client).unwrap();
    let client_addr = SocketAddr::new(CLIENT_IP, from_client.src_port);
    let replies = syn_from(&mut net, client_addr, status.rcv_nxt.get().wrapping_add(50_000));
    assert_eq!(replies.len(), 1);
    let r = replies[0];
    assert_eq!((r.flags, r.seq, r.ack), (Flags::ACK, status.snd_nxt, status.rcv_nxt));
    assert_eq!(net.server.status(server).unwrap().state, State::TimeWait);
    assert_eq!(net.server.counters().time_wait_reopened, 0);
}

#[test]
fn syn_from_or_to_broadcast_or_multicast_is_dropped_must_57_must_63() {
    let mut ep = Endpoint::new(endpoint_config(9));
    let wildcard = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 80);
    ep.listen(wildcard, 8).unwrap();
    let broadcast = SocketAddr::new(IpAddr::V4(Ipv4Addr::BROADCAST), 80);
    let multicast = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(224, 0, 0, 1)), 80);
    assert!(stray(&mut ep, STRANGER, broadcast, header(Flags::SYN, 1, 0)).is_empty());
    assert!(stray(&mut ep, STRANGER, multicast, header(Flags::SYN, 1, 0)).is_empty());
    let from_multicast = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(239, 1, 1, 1)), 5555);
    assert!(stray(&mut ep, from_multicast, SERVER, header(Flags::SYN, 1, 0)).is_empty());
    assert_eq!(ep.counters().dropped_bad_address, 3);
    assert_eq!(ep.connection_count(), 0);
}

#[test]
fn listen_beside_a_connection_on_the_same_port_disturbs_nothing_must_41_must_42() {
    let mut net = Net::new();
    net.server.listen(SERVER, 8).unwrap();
    let (client, server) = net.connect();
    // A second listener, on the wildcard address and the same port, and a third SYN: the
    // existing connection keeps its segments (4-tuple first).
    let wildcard = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 80);
    net.server.listen(wildcard, 8).unwrap();
    assert_eq!(net.server.listen(SERVER, 8), Err(EndpointError::AddressInUse));
    net.client.send(net.now, client, b"still mine").unwrap();
    net.run();
    let mut got = [0u8; 16];
    assert_eq!(net.server.recv(server, &mut got), Ok(10));
    let (second, _) = net.connect();
    assert_eq!(net.client.status(second).unwrap().state, State::Established);
}

/// State changes are reported only when asked for (`EndpointConfig::state_events`); the
/// events an application acts on come either way, and the handshake still completes into the
/// accept queue (the endpoint no longer learns of it from a state change).
#[test]
fn state_change_events_are_opt_in() {
    for state_events in [false, true] {
        let mut net = Net::new();
        let mut config = endpoint_config(1);
        config.state_events = state_events;
        net.client = Endpoint::new(config);
        net.server.listen(SERVER, 8).unwrap();
        let (client, _server) = net.connect();
        let events: Vec<EndpointEvent> = std::iter::from_fn(|| net.client.poll_event()).collect();
        let changes: Vec<(State, State)> = events
            .iter()
            .filter_map(|event| match event {
                EndpointEvent::Connection(h, Event::StateChanged { from, to }) if *h == client => {
                    Some((*from, *to))
                }
                _ => None,
            })
            .collect();
        let expected = if state_events {
            vec![(State::Closed, State::SynSent), (State::SynSent, State::Established)]
        } else {
            vec![]
        };
        assert_eq!(changes, expected, "state_events {state_events}");
        assert!(events.contains(&EndpointEvent::Connection(client, Event::Connected)));
    }
}

#[test]
fn full_event_queue_drops_and_counts() {
    let mut config = endpoint_config(10);
    config.max_events = 3;
    config.state_events = true;
    let mut ep = Endpoint::new(config);
    for _ in 0..3 {
        ep.connect(Instant::ZERO, CLIENT_IP, SERVER).unwrap();
    }
    // Each connect reports CLOSED -> SYN-SENT; the queue holds three.
    assert_eq!(ep.counters().events_dropped, 0);
    ep.connect(Instant::ZERO, CLIENT_IP, SERVER).unwrap();
    assert_eq!(ep.counters().events_dropped, 1);
    assert_eq!(std::iter::from_fn(|| ep.poll_event()).count(), 3);
}

#[test]
fn full_time_wait_table_evicts_the_oldest_record_and_counts() {
    let mut net = Net::new();
    net.client = Endpoint::new({
        let mut config = endpoint_config(1);
        config.max_time_wait = 2;
        config
    });
    net.server.listen(SERVER, 8).unwrap();
    for i in 0..3 {
        let (client, server) = net.connect();
        net.client.close(net.now, client).unwrap();
        net.run();
        net.server.close(net.now, server).unwrap();
        net.run();
        assert_eq!(net.client.time_wait_count(), (i + 1).min(2));
    }
    assert_eq!(net.client.counters().time_wait_evicted, 1);
}

#[test]
fn full_stray_reply_queue_drops_and_counts() {
    let mut config = endpoint_config(11);
    config.max_stray_replies = 2;
    let mut ep = Endpoint::new(config);
    for seq in 0..5 {
        let mut bytes = vec![0u8; 64];
        let len =
            header(Flags::SYN, seq, 0).emit(&[], STRANGER.ip(), SERVER_IP, &mut bytes).unwrap();
        ep.handle_segment(Instant::ZERO, STRANGER.ip(), SERVER_IP, &bytes[..len]);
    }
    assert_eq!(ep.counters().stray_replies_dropped, 3);
    let mut buf = vec![0u8; 100];
    let mut sent = 0;
    while ep.poll_transmit(Instant::ZERO, &mut buf).unwrap().is_some() {
        sent += 1;
    }
    assert_eq!(sent, 2);
}

#[test]
fn endpoint_routes_icmp_errors_by_quoted_header_and_counts_strays() {
    let mut net = Net::new();
    net.server.listen(SERVER, 8).unwrap();
    let (client, _) = net.connect();
    // Data in flight that the server never acknowledges (we do not run the link).
    net.client.send(net.now, client, b"lost in the network").unwrap();
    let mut buf = vec![0u8; 1500];
    let tx = net.client.poll_transmit(net.now, &mut buf).unwrap().unwrap();
    let quoted = buf[..8].to_vec();
    // A quote for no connection, and one too short, are dropped.
    net.client.handle_icmp_error(
        net.now,
        tcp_proto::IcmpError::Unreachable { code: 3 },
        CLIENT_IP,
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 99)),
        &quoted,
    );
    net.client.handle_icmp_error(
        net.now,
        tcp_proto::IcmpError::Unreachable { code: 3 },
        CLIENT_IP,
        SERVER_IP,
        &quoted[..4],
    );
    assert_eq!(net.client.counters().icmp_dropped, 2);
    net.client.handle_icmp_error(
        net.now,
        tcp_proto::IcmpError::Unreachable { code: 3 },
        tx.local.ip(),
        tx.remote.ip(),
        &quoted,
    );
    assert_eq!(net.client.counters().icmp_accepted, 1);
    let events: Vec<_> = std::iter::from_fn(|| net.client.poll_event()).collect();
    assert!(events.contains(&EndpointEvent::Connection(
        client,
        Event::Closed(CloseReason::Error(tcp_proto::ConnectionError::Unreachable))
    )));
}

/// Closing a listener resets what it still owns — the half-open connection in its SYN queue
/// and the established one in its accept queue — with `<SEQ=SND.NXT><CTL=RST>` each (RFC 9293
/// §3.10.5 ABORT), as Linux does; connections already accepted go on. Before, both were left
/// behind, the half-open one becoming an established connection nobody could accept.
#[test]
fn unlisten_resets_the_listeners_unaccepted_connections_rfc_9293_3_10_5() {
    let mut net = Net::new();
    net.server.listen(SERVER, 4).unwrap();
    let (client_accepted, server_accepted) = net.connect();
    // Established and waiting in the accept queue.
    let client_ready = net.client.connect(net.now, CLIENT_IP, SERVER).unwrap();
    net.run();
    let ready = net.client.status(client_ready).unwrap();
    assert_eq!(ready.state, State::Established);
    // Half-open: a SYN whose SYN-ACK is never answered.
    let synack = stray(&mut net.server, STRANGER, SERVER, header(Flags::SYN, 7000, 0));
    assert_eq!(synack.len(), 1);
    assert_eq!(synack[0].flags, Flags::SYN | Flags::ACK);
    assert_eq!(net.server.connection_count(), 3);

    net.server.unlisten(SERVER).unwrap();
    let mut resets = Vec::new();
    let mut buf = vec![0u8; 1500];
    while let Some(tx) = net.server.poll_transmit(net.now, &mut buf).unwrap() {
        let header =
            Segment::parse_checked(&buf[..tx.len], tx.local.ip(), tx.remote.ip()).unwrap().header;
        resets.push((tx.remote.ip(), header.flags, header.seq));
        if tx.remote.ip() == CLIENT_IP {
            net.client.handle_segment(net.now, tx.local.ip(), tx.remote.ip(), &buf[..tx.len]);
        }
    }
    resets.sort_by_key(|(ip, ..)| *ip);
    assert_eq!(
        resets,
        [(CLIENT_IP, Flags::RST, ready.rcv_nxt), (STRANGER.ip(), Flags::RST, synack[0].seq + 1)]
    );
    let events: Vec<EndpointEvent> = Net::events(&mut net.client);
    assert!(
        events.iter().any(|event| matches!(
            event,
            EndpointEvent::Connection(handle, Event::Closed(_)) if *handle == client_ready
        )),
        "the waiting client was reset: {events:?}"
    );
    assert_eq!(net.server.connection_count(), 1, "the accepted connection goes on");
    assert_eq!(net.server.status(server_accepted).unwrap().state, State::Established);
    assert_eq!(net.client.status(client_accepted).unwrap().state, State::Established);
    assert_eq!(net.server.accept(SERVER), Err(EndpointError::NotListening));
    // The stranger's late final ACK finds nothing and draws a RST from its ACK number.
    let late_ack = header(Flags::ACK, 7001, synack[0].seq.get().wrapping_add(1));
    let late = stray(&mut net.server, STRANGER, SERVER, late_ack);
    assert_eq!(late.len(), 1);
    assert_eq!((late[0].flags, late[0].seq), (Flags::RST, synack[0].seq + 1));
}
