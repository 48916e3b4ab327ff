//! An `Endpoint` with a listener fed arbitrary segments from a few remote addresses (sequence
//! and acknowledgment numbers anchored on what the endpoint last sent to that address, so
//! handshakes and cookies complete), interleaved with connects, sends, receives, closes,
//! aborts, accepts and ticks. Each segment in, send, receive and output picks one of the API
//! forms (copying or `Bytes`: `handle_segment` / `handle_segment_bytes`, `send` / `send_bytes`
//! / `write_chunks`, `recv` / `read_chunk` / `read_chunks` / `recv_bytes`, `poll_transmit` /
//! `poll_transmit_chunks`), so every form meets every state (issue #19). Oracles: no panic;
//! every segment out is well formed and checksummed, whichever form wrote it; a `Bytes` send
//! takes exactly what `write_chunks` leaves behind; the connection count stays within the
//! limit; a stale handle is refused.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use arbitrary::Arbitrary;
use bytes::{Bytes, BytesMut};
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
    Segment {
        from: u8,
        flags: u8,
        seq_off: i16,
        ack_off: i16,
        window: u16,
        len: u8,
        mss: Option<u16>,
        zero_copy: bool,
    },
    Connect(u8),
    Send(u8, u16, SendForm),
    Recv(u8, ReadForm),
    /// Switches how the endpoint's output is drained: whole segments or header + slices.
    Output(bool),
    Close(u8),
    Abort(u8),
    Accept,
    Tick(u32),
}

/// Which SEND call carries the data.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum SendForm {
    Copy,
    Bytes,
    /// Split into this many chunks (at least one) handed to `write_chunks`.
    Chunks(u8),
}

/// Which RECEIVE call takes the data.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum ReadForm {
    Copy,
    Chunk(u16),
    Chunks(u8),
    Whole,
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
    let mut chunked_output = false;
    for op in ops.iter().take(300) {
        match *op {
            Op::Segment { from, flags, seq_off, ack_off, window, len, mss, zero_copy } => {
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
                if zero_copy {
                    bytes.truncate(n);
                    ep.handle_segment_bytes(now, src.ip(), SERVER.ip(), BytesMut::from(&bytes[..]));
                } else {
                    ep.handle_segment(now, src.ip(), SERVER.ip(), &bytes[..n]);
                }
            }
            Op::Connect(to) => {
                if let Ok(handle) = ep.connect(now, SERVER.ip(), remote(to)) {
                    handles.push(handle);
                }
            }
            Op::Send(i, n, form) => {
                if let Some(&h) = handles.get(usize::from(i) % handles.len().max(1)) {
                    send(&mut ep, now, h, usize::from(n) % 3000, form);
                }
            }
            Op::Recv(i, form) => {
                if let Some(&h) = handles.get(usize::from(i) % handles.len().max(1)) {
                    recv(&mut ep, h, form);
                }
            }
            Op::Output(chunked) => chunked_output = chunked,
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
        while let Some((tx, len)) = next_output(&mut ep, now, &mut out, chunked_output) {
            sent += 1;
            assert!(sent < 10_000, "unbounded output");
            let segment = Segment::parse_checked(&out[..len], tx.local.ip(), tx.remote.ip())
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

/// The next segment out, whole in `out` whichever form wrote it: `chunked` drains by header +
/// slices and joins the slices after the header, as an adapter's iovecs would.
fn next_output(
    ep: &mut Endpoint,
    now: Instant,
    out: &mut Vec<u8>,
    chunked: bool,
) -> Option<(tcp_proto::Transmit, usize)> {
    if !chunked {
        let tx = ep.poll_transmit(now, out).ok()??;
        return Some((tx, tx.len));
    }
    let chunks = ep.poll_transmit_chunks(now, out).ok()??;
    let mut len = chunks.header_len;
    for slice in chunks.payload.slices() {
        out.resize(out.len().max(len + slice.len()), 0);
        out[len..len + slice.len()].copy_from_slice(slice);
        len += slice.len();
    }
    assert_eq!(len, chunks.transmit.len, "header and payload make the whole segment");
    Some((chunks.transmit, len))
}

fn send(ep: &mut Endpoint, now: Instant, h: ConnectionHandle, n: usize, form: SendForm) {
    let data = vec![0x33; n];
    match form {
        SendForm::Copy => {
            let _ = ep.send(now, h, &data);
        }
        SendForm::Bytes => {
            if let Ok(taken) = ep.send_bytes(now, h, Bytes::from(data)) {
                assert!(taken <= n);
            }
        }
        SendForm::Chunks(pieces) => {
            let mut whole = Bytes::from(data);
            let pieces = usize::from(pieces % 8) + 1;
            let step = n.div_ceil(pieces).max(1);
            let mut chunks = Vec::new();
            while !whole.is_empty() {
                chunks.push(whole.split_to(step.min(whole.len())));
            }
            if let Ok(taken) = ep.write_chunks(now, h, &mut chunks) {
                let left: usize = chunks.iter().map(Bytes::len).sum();
                assert_eq!(taken + left, n, "write_chunks leaves exactly what it did not take");
            }
        }
    }
}

fn recv(ep: &mut Endpoint, h: ConnectionHandle, form: ReadForm) {
    match form {
        ReadForm::Copy => {
            let mut buf = [0u8; 1024];
            let _ = ep.recv(h, &mut buf);
        }
        ReadForm::Chunk(max) => {
            if let Ok(Some(chunk)) = ep.read_chunk(h, usize::from(max)) {
                assert!(!chunk.is_empty() && chunk.len() <= usize::from(max));
            }
        }
        ReadForm::Chunks(n) => {
            let mut out = vec![Bytes::new(); usize::from(n % 6)];
            if let Ok(filled) = ep.read_chunks(h, &mut out) {
                assert!(filled <= out.len());
            }
        }
        ReadForm::Whole => {
            let _ = ep.recv_bytes(h);
        }
    }
}
