//! The blocking driver's `tracing` events (feature `tracing`): drops with their reason once
//! per round, resets sent, and connections established and reset as the application drains
//! their events through `Driver::poll_event`, seen by a collecting subscriber. The peer is
//! this test, writing exact IPv4 packets into an in-memory transport.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tcp_proto::adapter::PacketTransport;
use tcp_proto::adapter::driver::Driver;
use tcp_proto::wire::checksum::TxChecksum;
use tcp_proto::wire::ip::{Ipv4Header, PROTOCOL_TCP};
use tcp_proto::wire::{Flags, Options, Segment, TcpHeader};
use tcp_proto::{Config, EndpointConfig, EndpointEvent, Event, SeqNum};
use tracing::field::{Field, Visit};
use tracing::span;

const OURS: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

/// Every event as `LEVEL target message field=value …`.
#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<String>>>);

struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, " {value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

impl tracing::Subscriber for Collect {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }
    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let metadata = event.metadata();
        let mut line = Line(format!("{} {}", metadata.level(), metadata.target()));
        event.record(&mut line);
        self.0.lock().unwrap().push(line.0);
    }
    fn enter(&self, _: &span::Id) {}
    fn exit(&self, _: &span::Id) {}
}

impl Collect {
    /// The lines collected since the last call.
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// A TCP/IPv4 packet from the peer's port 4000 to our `port`, checksums complete.
fn packet(port: u16, flags: Flags, seq: u32, ack: u32) -> Vec<u8> {
    let header = TcpHeader {
        src_port: 4000,
        dst_port: port,
        seq: SeqNum::new(seq),
        ack: SeqNum::new(ack),
        flags,
        window: 65_535,
        urgent_ptr: 0,
        options: Options::NONE,
    };
    let (src, dst) = (IpAddr::V4(PEER), IpAddr::V4(OURS));
    let mut tcp = [0u8; 60];
    let len = header.emit_with_checksum(&[], src, dst, &mut tcp, TxChecksum::Compute).unwrap();
    let mut out = vec![0u8; 20 + len];
    Ipv4Header {
        src: PEER,
        dst: OURS,
        protocol: PROTOCOL_TCP,
        ttl: 64,
        identification: 0,
        dont_fragment: true,
        more_fragments: false,
        fragment_offset: 0,
        total_len: (20 + len) as u16,
        dscp_ecn: 0,
    }
    .emit(&mut out)
    .unwrap();
    out[20..].copy_from_slice(&tcp[..len]);
    out
}

fn round(driver: &mut Driver<Shared>, packets: impl IntoIterator<Item = Vec<u8>>) {
    // The driver owns its transport: the packets go through this thread's queue it reads.
    for packet in packets {
        INBOUND.with(|queue| queue.borrow_mut().push_back(packet));
    }
    driver.poll(Duration::ZERO).unwrap();
}

thread_local! {
    static INBOUND: std::cell::RefCell<VecDeque<Vec<u8>>> = const { std::cell::RefCell::new(VecDeque::new()) };
}

#[test]
fn drops_resets_and_connection_ends_are_logged_by_the_driver() {
    let collect = Collect::default();
    let _guard = tracing::subscriber::set_default(collect.clone());
    let config = EndpointConfig::new(Config::new([1; 16]), [2; 16]);
    let mut driver = Driver::with_config(config, Shared);
    driver.add_address(IpAddr::V4(OURS));
    driver.endpoint_mut().listen(SocketAddr::new(IpAddr::V4(OURS), 80), 4).unwrap();

    // A truncated packet and one for another address: one line per reason, with its count.
    let mut short = packet(80, Flags::SYN, 1, 0);
    short.truncate(30);
    let mut foreign = packet(80, Flags::SYN, 1, 0);
    foreign[19] = 9;
    foreign[10..12].fill(0);
    let mut sum = tcp_proto::wire::checksum::Checksum::new();
    sum.add_bytes(&foreign[..20]);
    let checksum = sum.finish().to_be_bytes();
    foreign[10..12].copy_from_slice(&checksum);
    round(&mut driver, [short.clone(), short, foreign]);
    assert_eq!(
        collect.take(),
        [
            "DEBUG tcp_proto::driver packets dropped reason=\"truncated\" count=2",
            "DEBUG tcp_proto::driver packets dropped reason=\"not our address\" count=1",
        ]
    );
    // Nothing new: nothing logged.
    round(&mut driver, []);
    assert_eq!(collect.take(), Vec::<String>::new());

    // A SYN to a closed port draws a RST.
    round(&mut driver, [packet(81, Flags::SYN, 1, 0)]);
    assert_eq!(
        collect.take(),
        ["DEBUG tcp_proto::driver resets sent (segments for no connection or listener) count=1"]
    );

    // A connection to port 80, established, then reset by the peer: seen as the application
    // drains the events through the driver.
    round(&mut driver, [packet(80, Flags::SYN, 100, 0)]);
    let syn_ack = OUTBOUND.with(|queue| queue.borrow_mut().pop_back()).expect("a SYN-ACK");
    let (_, tcp) = Ipv4Header::parse(&syn_ack).unwrap();
    let segment = Segment::parse_checked(tcp, IpAddr::V4(OURS), IpAddr::V4(PEER)).unwrap();
    let iss = segment.header.seq.get().wrapping_add(1);
    round(&mut driver, [packet(80, Flags::ACK, 101, iss)]);
    let mut events = Vec::new();
    while let Some(event) = driver.poll_event() {
        events.push(event);
    }
    assert!(events.iter().any(|event| matches!(event, EndpointEvent::Acceptable { .. })));
    let handle = driver
        .endpoint_mut()
        .accept(SocketAddr::new(IpAddr::V4(OURS), 80))
        .unwrap()
        .expect("accepted");
    while let Some(event) = driver.poll_event() {
        events.push(event);
    }
    assert!(
        events.contains(&EndpointEvent::Connection(handle, Event::Connected)),
        "events: {events:?}"
    );
    let lines = collect.take();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with(&format!(
            "DEBUG tcp_proto::driver connection established handle={handle:?} \
             flow=\"10.0.0.1:80 -> 10.0.0.2:4000\""
        )),
        "{lines:?}"
    );
    round(&mut driver, [packet(80, Flags::RST, 101, 0)]);
    while driver.poll_event().is_some() {}
    let lines = collect.take();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with(&format!(
            "INFO tcp_proto::driver connection ended handle={handle:?} error=connection reset"
        )),
        "{lines:?}"
    );
}

thread_local! {
    static OUTBOUND: std::cell::RefCell<VecDeque<Vec<u8>>> = const { std::cell::RefCell::new(VecDeque::new()) };
}

/// The transport: the test thread's queues.
struct Shared;

impl PacketTransport for Shared {
    fn send(&mut self, packet: &[u8]) -> io::Result<()> {
        OUTBOUND.with(|queue| queue.borrow_mut().push_back(packet.to_vec()));
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8], _timeout: Duration) -> io::Result<Option<usize>> {
        let Some(packet) = INBOUND.with(|queue| queue.borrow_mut().pop_front()) else {
            return Ok(None);
        };
        buf[..packet.len()].copy_from_slice(&packet);
        Ok(Some(packet.len()))
    }

    fn mtu(&self) -> usize {
        1500
    }
}
