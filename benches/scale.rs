//! Endpoint scale: establish N connections (1k → 1M) in one `Endpoint`, each with a timer
//! armed (keep-alive on), and report bytes per idle connection (receive and send buffers are
//! allocated lazily, so none are counted) and the cost of `poll_timeout` / `handle_timeout` as
//! N grows. Clients are hand-made segments from many addresses, so only the server's state is
//! measured. Run with `cargo bench --bench scale` (add `-- 1000000` for the largest size).
//!
//! Prints one line per size: `RESULT scale_<N> <metric> tcp-proto=<value>`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant as Wall};

use tcp_proto::wire::{Flags, Options, Segment, TcpHeader};
use tcp_proto::{Config, Endpoint, EndpointConfig, Instant, KeepAlive, SeqNum};

/// Counts live heap bytes.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: defers to the system allocator; only adds bookkeeping.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 80);

fn client(i: u32) -> SocketAddr {
    SocketAddr::new(
        IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + i / 50_000)),
        1024 + (i % 50_000) as u16,
    )
}

fn segment(from: SocketAddr, flags: Flags, seq: u32, ack: u32, buf: &mut [u8]) -> usize {
    let header = TcpHeader {
        src_port: from.port(),
        dst_port: 80,
        seq: SeqNum::new(seq),
        ack: SeqNum::new(ack),
        flags,
        window: 65_535,
        urgent_ptr: 0,
        options: Options::NONE,
    };
    header.emit(&[], from.ip(), SERVER.ip(), buf).expect("room for a header")
}

fn run(n: u32) {
    let mut connection = Config::new([9; 16]);
    connection.keepalive = Some(KeepAlive::default());
    let mut config = EndpointConfig::new(connection, [8; 16]);
    config.max_connections = n as usize + 10;
    config.max_per_remote = 100_000;
    config.max_events = 1 << 20;
    let before = LIVE.load(Ordering::Relaxed);
    let mut ep = Endpoint::new(config);
    ep.listen(SERVER, 1 << 24).expect("listen");
    let now = Instant::from_millis(1);
    let mut seg_buf = [0u8; 64];
    let mut out = vec![0u8; 1500];
    let mut handles = Vec::with_capacity(n as usize);
    let start = Wall::now();
    for i in 0..n {
        let from = client(i);
        let len = segment(from, Flags::SYN, i, 0, &mut seg_buf);
        ep.handle_segment(now, from.ip(), SERVER.ip(), &seg_buf[..len]);
        let tx = ep.poll_transmit(now, &mut out).expect("transmit").expect("a SYN-ACK");
        let iss = Segment::parse(&out[..tx.len]).expect("our SYN-ACK").header.seq;
        let len =
            segment(from, Flags::ACK, i.wrapping_add(1), iss.get().wrapping_add(1), &mut seg_buf);
        ep.handle_segment(now, from.ip(), SERVER.ip(), &seg_buf[..len]);
        while ep.poll_transmit(now, &mut out).expect("transmit").is_some() {}
        while ep.poll_event().is_some() {}
        handles.push(ep.accept(SERVER).expect("listening").expect("established"));
    }
    let setup = start.elapsed();
    let bytes = LIVE.load(Ordering::Relaxed) - before - handles.capacity() * 8;
    let per_connection = bytes as f64 / f64::from(n);
    // Timer queries: the earliest deadline (2 h keep-alive) and an idle tick before it.
    let rounds = 1_000_000u32;
    let t = Wall::now();
    let mut sink = 0u64;
    for _ in 0..rounds {
        let ep = std::hint::black_box(&ep);
        sink = sink.wrapping_add(ep.poll_timeout().map_or(0, |at| at.as_micros()));
    }
    let poll_ns = t.elapsed().as_nanos() as f64 / f64::from(rounds);
    // The handshake left one stale heap entry per connection (the SYN-ACK's retransmission
    // deadline, 1 s after it was sent); the first tick past it discards them all, once.
    let t = Wall::now();
    ep.handle_timeout(Instant::from_millis(3_000));
    let stale_flush_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Wall::now();
    for k in 0..rounds {
        std::hint::black_box(&mut ep)
            .handle_timeout(Instant::from_millis(3_000 + u64::from(k) / 1000));
    }
    let idle_tick_ns = t.elapsed().as_nanos() as f64 / f64::from(rounds);
    // One connection's timer firing among n: a keep-alive probe due.
    let due = ep.poll_timeout().expect("keep-alive armed");
    let t = Wall::now();
    ep.handle_timeout(due + Duration::from_micros(1));
    let fire_us = t.elapsed().as_secs_f64() * 1e6;
    println!(
        "n={n}: setup {:.2} s ({:.1} µs/connection), {per_connection:.0} B/connection, poll_timeout {poll_ns:.1} ns, idle handle_timeout {idle_tick_ns:.1} ns (after a one-off {stale_flush_ms:.1} ms discarding stale handshake timers), all {n} keep-alives expiring at once {fire_us:.0} µs (sink {})",
        setup.as_secs_f64(),
        setup.as_secs_f64() * 1e6 / f64::from(n),
        sink % 10
    );
    println!("RESULT scale_{n} bytes_per_idle_connection tcp-proto={per_connection:.0}");
    println!("RESULT scale_{n} poll_timeout_ns tcp-proto={poll_ns:.1}");
    println!("RESULT scale_{n} idle_handle_timeout_ns tcp-proto={idle_tick_ns:.1}");
    drop(handles);
    drop(ep);
}

fn main() {
    let largest: u32 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(100_000);
    let mut n = 1_000;
    while n <= largest {
        run(n);
        n *= 10;
    }
}
