//! An `Endpoint` with a listener fed arbitrary segments from a few remote addresses (sequence
//! and acknowledgment numbers anchored on what the endpoint last sent to that address, so
//! handshakes and cookies complete), interleaved with connects, sends, receives, closes,
//! aborts, accepts and ticks. Oracles: no panic; every segment out is well formed and
//! checksummed; the connection count stays within the limit; a stale handle is refused.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tcp_proto::wire::{Flags, Options, Segment, TcpHeader};
use tcp_proto::{
    Config, ConnectionHandle, Endpoint, EndpointConfig, EndpointError, EndpointEvent, Event,
    Instant, SeqNum,
};

const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 80);
const MAX_CONNECTIONS: usize = 12;

fn remote(index: u8) -> SocketAddr {
    let host = 2 + (index % 3);
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, host)), 4000 + u16::from(index % 4))
}

#[derive(Arbitrary, Debug)]
enum Op {
    Segment { from: u8, flags: u8, seq_off: i16, ack_off: i16, window: u16, len: u8, mss: Option<u16> },
    Connect(u8),
    Send(u8, u16),
    Recv(u8),
    Close(u8),
    Abort(u8),
    Accept,
    Tick(u32),
}

fuzz_target!(|ops: Vec<Op>| {
    let mut connection = Config::new([1; 16]);
    connection.msl = Duration::from_secs(5);
    let mut config = EndpointConfig::new(connection, [2; 16]);
    config.max_connections = MAX_CONNECTIONS;
    config.max_per_remote = 6;
    config.max_time_wait = 4;
    config.max_events = 64;
    config.max_stray_replies = 8;
    let mut ep = Endpoint::new(config);
    ep.listen(SERVER, 2).expect("fresh endpoint");
    let mut now = Instant::from_millis(1);
    let mut handles: Vec<ConnectionHandle> = Vec::new();
    let mut closed: Vec<ConnectionHandle> = Vec::new();
    // What the endpoint last sent to each remote: (its seq + len, its ack).
    let mut last: Vec<(SocketAddr, u32, u32)> = Vec::new();
    let mut out = vec![0u8; 2048];
    let mut payload = vec![0x77u8; 256];
    for op in ops.iter().take(300) {
        match *op {
            Op::Segment { from, flags, seq_off, ack_off, window, len, mss } => {
                let src = remote(from);
                let (next_ack, next_seq) = last
                    .iter()
                    .rev()
                    .find(|(addr, _, _)| *addr == src)
                    .map_or((0, 1000), |&(_, seq_end, ack)| (seq_end, ack));
                let mut options = Options::NONE;
                options.mss = mss;
                let header = TcpHeader {
                    src_port: src.port(),
                    dst_port: SERVER.port(),
                    seq: SeqNum::new(next_seq.wrapping_add_signed(i32::from(seq_off))),
                    ack: SeqNum::new(next_ack.wrapping_add_signed(i32::from(ack_off))),
                    flags: Flags::from_bits(flags),
                    window,
                    urgent_ptr: 0,
                    options,
                };
                let len = usize::from(len);
                payload.resize(len.max(1), 0x77);
                let mut bytes = vec![0u8; len + 80];
                let n = header.emit(&[&payload[..len]], src.ip(), SERVER.ip(), &mut bytes).expect("room");
                ep.handle_segment(now, src.ip(), SERVER.ip(), &bytes[..n]);
            }
            Op::Connect(to) => {
                if let Ok(handle) = ep.connect(now, SERVER.ip(), remote(to)) {
                    handles.push(handle);
                }
            }
            Op::Send(i, n) => {
                if let Some(&h) = handles.get(usize::from(i) % handles.len().max(1)) {
                    let data = vec![0x33; usize::from(n) % 3000];
                    let _ = ep.send(now, h, &data);
                }
            }
            Op::Recv(i) => {
                if let Some(&h) = handles.get(usize::from(i) % handles.len().max(1)) {
                    let mut buf = [0u8; 1024];
                    let _ = ep.recv(h, &mut buf);
                }
            }
            Op::Close(i) => {
                if let Some(&h) = handles.get(usize::from(i) % handles.len().max(1)) {
                    let _ = ep.close(now, h);
                }
            }
            Op::Abort(i) => {
                if let Some(&h) = handles.get(usize::from(i) % handles.len().max(1)) {
                    let _ = ep.abort(now, h);
                }
            }
            Op::Accept => {
                if let Ok(Some(h)) = ep.accept(SERVER) {
                    handles.push(h);
                }
            }
            Op::Tick(micros) => {
                now += Duration::from_micros(u64::from(micros));
                ep.handle_timeout(now);
            }
        }
        let mut sent = 0;
        while let Ok(Some(tx)) = ep.poll_transmit(now, &mut out) {
            sent += 1;
            assert!(sent < 10_000, "unbounded output");
            let segment = Segment::parse_checked(&out[..tx.len], tx.local.ip(), tx.remote.ip())
                .expect("the endpoint emits valid, checksummed segments");
            let end = segment.header.seq.get().wrapping_add(segment.seg_len());
            last.push((tx.remote, end, segment.header.ack.get()));
            if last.len() > 64 {
                last.remove(0);
            }
        }
        while let Some(event) = ep.poll_event() {
            if let EndpointEvent::Connection(h, Event::Closed(_)) = event {
                closed.push(h);
            }
        }
        assert!(ep.connection_count() <= MAX_CONNECTIONS);
    }
    // A handle whose connection ended and was freed is refused, never another connection.
    for h in closed {
        if let Err(error) = ep.status(h) {
            assert_eq!(error, EndpointError::StaleHandle);
        }
    }
});
