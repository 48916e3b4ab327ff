//! Catch-all listeners (any address, any port) and deferred accept (a SYN held for the
//! application's decision), with exact segments: what goes out for each decision, SYN
//! retransmissions while a SYN is held, expiry of undecided SYNs, and the bounds under a flood.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tcp_proto::wire::{Flags, Options, Segment, TcpHeader};
use tcp_proto::{
    CloseReason, Config, ConnectionError, Endpoint, EndpointConfig, EndpointError, EndpointEvent,
    Event, IncomingId, Instant, SeqNum, State,
};

const CLIENT: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 5555);
const ANY_V4: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
/// An address the endpoint owns nothing at: only a catch-all listener takes SYNs to it.
const FAR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)), 443);
const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 80);

fn endpoint() -> Endpoint {
    let mut connection = Config::new([7; 16]);
    connection.delayed_ack = None;
    let mut config = EndpointConfig::new(connection, [8; 16]);
    config.incoming_lifetime = Duration::from_secs(5);
    Endpoint::new(config)
}

fn segment(flags: Flags, from: SocketAddr, to: SocketAddr, seq: u32, ack: u32) -> TcpHeader {
    let mut options = Options::NONE;
    if flags.contains(Flags::SYN) {
        options.mss = Some(1460);
    }
    TcpHeader {
        src_port: from.port(),
        dst_port: to.port(),
        seq: SeqNum::new(seq),
        ack: SeqNum::new(ack),
        flags,
        window: 1000,
        urgent_ptr: 0,
        options,
    }
}

/// Feeds `header` (with `payload`) from `from` to `to` at `now`; returns what the endpoint
/// sends then, as (source, destination, header).
fn feed(
    ep: &mut Endpoint,
    now: Instant,
    from: SocketAddr,
    to: SocketAddr,
    header: TcpHeader,
    payload: &[u8],
) -> Vec<(SocketAddr, SocketAddr, TcpHeader)> {
    let mut bytes = vec![0u8; 200];
    let len = header.emit(&[payload], from.ip(), to.ip(), &mut bytes).unwrap();
    ep.handle_segment(now, from.ip(), to.ip(), &bytes[..len]);
    output(ep, now)
}

fn output(ep: &mut Endpoint, now: Instant) -> Vec<(SocketAddr, SocketAddr, TcpHeader)> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1600];
    while let Some(tx) = ep.poll_transmit(now, &mut buf).unwrap() {
        let header =
            Segment::parse_checked(&buf[..tx.len], tx.local.ip(), tx.remote.ip()).unwrap().header;
        out.push((tx.local, tx.remote, header));
    }
    out
}

fn events(ep: &mut Endpoint) -> Vec<EndpointEvent> {
    std::iter::from_fn(|| ep.poll_event()).collect()
}

fn syn(ep: &mut Endpoint, from: SocketAddr, to: SocketAddr, seq: u32) -> Vec<TcpHeader> {
    let now = Instant::from_millis(1);
    feed(ep, now, from, to, segment(Flags::SYN, from, to, seq, 0), &[])
        .into_iter()
        .map(|s| s.2)
        .collect()
}

/// The one `Incoming` event among `events`.
fn incoming(events: &[EndpointEvent]) -> IncomingId {
    let ids: Vec<IncomingId> = events
        .iter()
        .filter_map(|event| match event {
            EndpointEvent::Incoming { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(ids.len(), 1, "{events:?}");
    ids[0]
}

// ------------------------------------------------------------------ catch-all

#[test]
fn catch_all_listener_accepts_any_address_and_port_with_the_original_destination() {
    let mut ep = endpoint();
    ep.listen(ANY_V4, 8).unwrap();
    let now = Instant::from_millis(1);
    let out = feed(&mut ep, now, CLIENT, FAR, segment(Flags::SYN, CLIENT, FAR, 1000, 0), &[]);
    // The SYN-ACK answers from the original destination.
    assert_eq!(out.len(), 1);
    let (src, dst, synack) = out[0];
    assert_eq!(
        (src, dst, synack.flags, synack.ack.get()),
        (FAR, CLIENT, Flags::SYN | Flags::ACK, 1001)
    );
    let ack = segment(Flags::ACK, CLIENT, FAR, 1001, synack.seq.get().wrapping_add(1));
    assert!(feed(&mut ep, now, CLIENT, FAR, ack, &[]).is_empty());
    assert!(events(&mut ep).contains(&EndpointEvent::Acceptable { listener: ANY_V4 }));
    let handle = ep.accept(ANY_V4).unwrap().expect("established");
    let connection = ep.connection_mut(handle).unwrap();
    assert_eq!((connection.local(), connection.remote()), (FAR, Some(CLIENT)));
    assert_eq!(connection.state(), State::Established);
}

#[test]
fn specific_listeners_and_connections_keep_priority_over_the_catch_all_must_41_must_42() {
    let mut ep = endpoint();
    ep.listen(ANY_V4, 8).unwrap();
    ep.listen(SERVER, 8).unwrap();
    let wildcard_port = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 22);
    ep.listen(wildcard_port, 8).unwrap();
    let now = Instant::from_millis(1);
    // One handshake each: to the exact listener, to the wildcard one, to the catch-all.
    let to_ssh = SocketAddr::new(FAR.ip(), 22);
    for to in [SERVER, to_ssh, FAR] {
        let out = feed(&mut ep, now, CLIENT, to, segment(Flags::SYN, CLIENT, to, 1000, 0), &[]);
        let synack = out[0].2;
        let ack = segment(Flags::ACK, CLIENT, to, 1001, synack.seq.get().wrapping_add(1));
        feed(&mut ep, now, CLIENT, to, ack, &[]);
    }
    let exact = ep.accept(SERVER).unwrap().unwrap();
    let ssh = ep.accept(wildcard_port).unwrap().unwrap();
    let caught = ep.accept(ANY_V4).unwrap().unwrap();
    assert_eq!(ep.accept(ANY_V4).unwrap(), None, "the catch-all took one connection only");
    assert_eq!(ep.connection_mut(exact).unwrap().local(), SERVER);
    assert_eq!(ep.connection_mut(ssh).unwrap().local(), to_ssh);
    assert_eq!(ep.connection_mut(caught).unwrap().local(), FAR);
    // Data on the caught connection's 4-tuple goes to that connection, not to a listener.
    let iss = ep.status(caught).unwrap().iss.get();
    let data = segment(Flags::ACK | Flags::PSH, CLIENT, FAR, 1001, iss.wrapping_add(1));
    let out = feed(&mut ep, now, CLIENT, FAR, data, b"hello");
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].2.flags, out[0].2.ack.get()), (Flags::ACK, 1006));
    let mut buf = [0u8; 16];
    assert_eq!(ep.recv(caught, &mut buf).unwrap(), 5);
}

#[test]
fn catch_all_does_not_take_the_other_address_family() {
    let mut ep = endpoint();
    ep.listen(ANY_V4, 8).unwrap();
    let client6: SocketAddr = "[2001:db8::1]:5555".parse().unwrap();
    let far6: SocketAddr = "[2001:db8::7]:443".parse().unwrap();
    let replies = syn(&mut ep, client6, far6, 1000);
    // Nothing listens for IPv6: the stray SYN draws <SEQ=0><ACK=SEG.SEQ+1><CTL=RST,ACK>.
    assert_eq!(replies.len(), 1);
    assert_eq!((replies[0].flags, replies[0].ack.get()), (Flags::RST | Flags::ACK, 1001));
    assert_eq!(ep.connection_count(), 0);
}

#[test]
fn syn_flood_at_a_catch_all_stays_within_its_syn_queue_and_is_answered_by_cookies() {
    let mut ep = endpoint();
    ep.listen(ANY_V4, 16).unwrap();
    for i in 0..10_000u32 {
        let from = SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + i)), 1024);
        let to =
            SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0xc633_6400 + i)), (i % 60_000) as u16 + 1);
        let replies = syn(&mut ep, from, to, i);
        assert_eq!(replies.len(), 1);
        assert_eq!(replies[0].flags, Flags::SYN | Flags::ACK);
    }
    assert_eq!(ep.connection_count(), 16);
    assert_eq!(ep.counters().cookies_sent, 10_000 - 16);
}

// ------------------------------------------------------------------ deferred accept

#[test]
fn deferred_syn_is_answered_only_when_accepted_then_the_handshake_completes() {
    let mut ep = endpoint();
    ep.listen_deferred(ANY_V4, 4).unwrap();
    assert!(syn(&mut ep, CLIENT, FAR, 1000).is_empty(), "nothing before the decision");
    let id = incoming(&events(&mut ep));
    assert_eq!(ep.incoming_addresses(id), Some((FAR, CLIENT)));
    assert_eq!(ep.connection_count(), 0, "a record, not a connection");
    let now = Instant::from_millis(2);
    let handle = ep.accept_incoming(now, id).unwrap();
    let out = output(&mut ep, now);
    assert_eq!(out.len(), 1);
    let (src, dst, synack) = out[0];
    assert_eq!((src, dst), (FAR, CLIENT));
    assert_eq!((synack.flags, synack.ack.get()), (Flags::SYN | Flags::ACK, 1001));
    assert_eq!(synack.options.mss, Some(1460));
    let ack = segment(Flags::ACK, CLIENT, FAR, 1001, synack.seq.get().wrapping_add(1));
    assert!(feed(&mut ep, now, CLIENT, FAR, ack, &[]).is_empty());
    let events = events(&mut ep);
    assert!(events.contains(&EndpointEvent::Connection(handle, Event::Connected)), "{events:?}");
    assert!(!events.iter().any(|e| matches!(e, EndpointEvent::Acceptable { .. })));
    assert_eq!(ep.accept(ANY_V4).unwrap(), None, "already the application's");
    assert_eq!(ep.status(handle).unwrap().state, State::Established);
    assert_eq!(ep.incoming_addresses(id), None);
    assert_eq!(ep.accept_incoming(now, id), Err(EndpointError::UnknownIncoming));
}

#[test]
fn refused_syn_draws_rst_ack_acking_the_syn_and_its_data_rfc_9293_3_10_7_2() {
    let mut ep = endpoint();
    ep.listen_deferred(SERVER, 4).unwrap();
    let now = Instant::from_millis(1);
    let out =
        feed(&mut ep, now, CLIENT, SERVER, segment(Flags::SYN, CLIENT, SERVER, 1000, 0), b"abc");
    assert!(out.is_empty());
    let id = incoming(&events(&mut ep));
    ep.refuse_incoming(id).unwrap();
    let out = output(&mut ep, now);
    assert_eq!(out.len(), 1);
    let (src, dst, rst) = out[0];
    assert_eq!((src, dst), (SERVER, CLIENT));
    // <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>: SEG.LEN counts the SYN and 3 octets.
    assert_eq!(
        (rst.flags, rst.seq.get(), rst.ack.get(), rst.window),
        (Flags::RST | Flags::ACK, 0, 1004, 0)
    );
    assert_eq!(ep.refuse_incoming(id), Err(EndpointError::UnknownIncoming));
    assert_eq!(ep.connection_count(), 0);
}

#[test]
fn ignored_syn_is_dropped_silently_and_a_later_retransmission_is_a_new_record() {
    let mut ep = endpoint();
    ep.listen_deferred(SERVER, 4).unwrap();
    assert!(syn(&mut ep, CLIENT, SERVER, 1000).is_empty());
    let id = incoming(&events(&mut ep));
    ep.ignore_incoming(id).unwrap();
    assert!(output(&mut ep, Instant::from_millis(1)).is_empty());
    assert_eq!(
        ep.accept_incoming(Instant::from_millis(1), id),
        Err(EndpointError::UnknownIncoming)
    );
    assert!(syn(&mut ep, CLIENT, SERVER, 1000).is_empty());
    let again = incoming(&events(&mut ep));
    assert_ne!(again, id);
}

#[test]
fn retransmitted_syn_while_pending_makes_no_second_record() {
    let mut ep = endpoint();
    ep.listen_deferred(SERVER, 4).unwrap();
    assert!(syn(&mut ep, CLIENT, SERVER, 1000).is_empty());
    let id = incoming(&events(&mut ep));
    for _ in 0..3 {
        assert!(syn(&mut ep, CLIENT, SERVER, 1000).is_empty());
    }
    assert!(events(&mut ep).is_empty(), "no event for a retransmission");
    assert_eq!(ep.counters().incoming_duplicates, 3);
    // A second client still fits: the retransmissions took no room in the backlog.
    let other = SocketAddr::new(CLIENT.ip(), 5556);
    for port in 0..3 {
        let from = SocketAddr::new(CLIENT.ip(), 6000 + port);
        assert!(syn(&mut ep, from, SERVER, 1).is_empty());
    }
    assert_eq!(events(&mut ep).len(), 3);
    assert!(syn(&mut ep, other, SERVER, 1).is_empty());
    assert_eq!(ep.counters().incoming_dropped, 1, "the fifth 4-tuple overflows a backlog of 4");
    // Accepting answers the one SYN once.
    let now = Instant::from_millis(2);
    ep.accept_incoming(now, id).unwrap();
    let out = output(&mut ep, now);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].2.flags, out[0].2.ack.get()), (Flags::SYN | Flags::ACK, 1001));
}

#[test]
fn undecided_syn_expires_after_its_lifetime() {
    let mut ep = endpoint();
    ep.listen_deferred(SERVER, 1).unwrap();
    assert!(syn(&mut ep, CLIENT, SERVER, 1000).is_empty());
    let id = incoming(&events(&mut ep));
    let expiry = Instant::from_millis(1) + Duration::from_secs(5);
    assert_eq!(ep.poll_timeout(), Some(expiry));
    ep.handle_timeout(Instant::from_millis(1) + Duration::from_millis(4_999));
    assert_eq!(ep.incoming_addresses(id), Some((SERVER, CLIENT)));
    ep.handle_timeout(expiry);
    assert_eq!(events(&mut ep), vec![EndpointEvent::IncomingExpired { listener: SERVER, id }]);
    assert_eq!(ep.counters().incoming_expired, 1);
    assert_eq!(ep.poll_timeout(), None);
    assert_eq!(ep.accept_incoming(expiry, id), Err(EndpointError::UnknownIncoming));
    assert!(output(&mut ep, expiry).is_empty());
    // Its room in the backlog is free again.
    let other = SocketAddr::new(CLIENT.ip(), 5556);
    let now = expiry;
    assert!(
        feed(&mut ep, now, other, SERVER, segment(Flags::SYN, other, SERVER, 1, 0), &[]).is_empty()
    );
    incoming(&events(&mut ep));
}

#[test]
fn deferred_flood_keeps_backlog_records_drops_the_rest_and_sends_nothing() {
    let mut ep = endpoint();
    ep.listen_deferred(ANY_V4, 32).unwrap();
    for i in 0..10_000u32 {
        let from = SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + i)), 1024);
        let to = SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0xc633_6400 + i)), 80);
        assert!(syn(&mut ep, from, to, i).is_empty());
    }
    let recorded =
        events(&mut ep).iter().filter(|e| matches!(e, EndpointEvent::Incoming { .. })).count();
    assert_eq!(recorded, 32);
    assert_eq!(ep.counters().incoming_dropped, 10_000 - 32);
    assert_eq!(ep.counters().cookies_sent, 0);
    assert_eq!(ep.connection_count(), 0);
}

#[test]
fn ack_at_a_deferred_listener_draws_a_rst_never_a_cookie_connection() {
    let mut ep = endpoint();
    ep.listen_deferred(SERVER, 4).unwrap();
    let now = Instant::from_millis(1);
    let out =
        feed(&mut ep, now, CLIENT, SERVER, segment(Flags::ACK, CLIENT, SERVER, 1001, 4242), &[]);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].2.flags, out[0].2.seq.get()), (Flags::RST, 4242));
    assert_eq!(ep.connection_count(), 0);
}

#[test]
fn rst_after_accept_incoming_ends_the_connection_instead_of_returning_to_listen_must_11() {
    let mut ep = endpoint();
    ep.listen_deferred(SERVER, 4).unwrap();
    assert!(syn(&mut ep, CLIENT, SERVER, 1000).is_empty());
    let id = incoming(&events(&mut ep));
    let now = Instant::from_millis(2);
    let handle = ep.accept_incoming(now, id).unwrap();
    assert_eq!(output(&mut ep, now).len(), 1, "the SYN-ACK");
    events(&mut ep);
    let rst = segment(Flags::RST, CLIENT, SERVER, 1001, 0);
    assert!(feed(&mut ep, now, CLIENT, SERVER, rst, &[]).is_empty());
    let closed = Event::Closed(CloseReason::Error(ConnectionError::Reset));
    assert!(events(&mut ep).contains(&EndpointEvent::Connection(handle, closed)));
    assert_eq!(ep.connection_count(), 0);
    assert_eq!(ep.status(handle).map(|s| s.state), Err(EndpointError::StaleHandle));
}

#[test]
fn unlisten_forgets_the_listeners_recorded_syns() {
    let mut ep = endpoint();
    ep.listen_deferred(SERVER, 4).unwrap();
    assert!(syn(&mut ep, CLIENT, SERVER, 1000).is_empty());
    let id = incoming(&events(&mut ep));
    ep.unlisten(SERVER).unwrap();
    assert_eq!(ep.incoming_addresses(id), None);
    assert_eq!(ep.refuse_incoming(id), Err(EndpointError::UnknownIncoming));
    // A new SYN on that 4-tuple is a stray now.
    let replies = syn(&mut ep, CLIENT, SERVER, 1000);
    assert_eq!((replies[0].flags, replies[0].ack.get()), (Flags::RST | Flags::ACK, 1001));
}
