//! Buffer auto-tuning (`Config::recv_buffer_max`, `Config::send_buffer_max`,
//! `EndpointConfig::buffer_memory_limit`): the receive window grows from its initial 64 KiB as
//! the rate the application reads at times the RTT calls for, the send buffer with the
//! congestion window, never past their ceilings or an endpoint's memory cap, and never so that
//! the right edge we advertised moves left (RFC 9293 §3.8.6, SHLD-14). All in virtual time.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use tcp_proto::testing::sim::{Link, LinkConfig, Sim};
use tcp_proto::testing::{Direction, Verdict, addr_a, addr_b};
use tcp_proto::wire::{Flags, Segment};
use tcp_proto::{
    Config, Connection, ConnectionHandle, Endpoint, EndpointConfig, EndpointEvent, Event, Instant,
    SeqNum,
};

const INITIAL: usize = 64 * 1024;
/// The default ceiling of both buffers.
const DEFAULT_CEILING: usize = 16 << 20;
/// 100 Mbit/s with a 50 ms round trip: a bandwidth-delay product of 625 000 octets, ten times
/// the initial window.
const RATE_BPS: u64 = 100_000_000;
const ONE_WAY: Duration = Duration::from_millis(25);
const BDP: u32 = 625_000;

fn long_path() -> LinkConfig {
    LinkConfig { delay: ONE_WAY, bandwidth_bps: Some(RATE_BPS), ..LinkConfig::perfect() }
}

/// What B (the receiver) advertised, segment by segment, as A would read it.
#[derive(Debug, Default)]
struct Windows {
    /// B's shift, from its SYN-ACK.
    shift: u8,
    /// The right edge of B's last segment (ACK + window << shift).
    last_edge: Option<u32>,
    /// The largest window B advertised.
    largest: u32,
    /// Segments whose right edge lay left of the one before: by how much, and the segment.
    retreats: Vec<(u32, String)>,
    segments: u64,
}

/// Records every segment B sends (before the link takes it).
fn watch_b(sim: &mut Sim) -> Rc<RefCell<Windows>> {
    let windows = Rc::new(RefCell::new(Windows::default()));
    let seen = Rc::clone(&windows);
    sim.set_hook(Box::new(move |direction, bytes| {
        if direction == Direction::BToA
            && let Ok(segment) = Segment::parse(bytes)
        {
            let header = segment.header;
            let mut seen = seen.borrow_mut();
            if header.flags.contains(Flags::SYN) {
                seen.shift = header.options.window_scale.unwrap_or(0);
                return Verdict::Deliver;
            }
            let window = u32::from(header.window) << seen.shift;
            let edge = header.ack.get().wrapping_add(window);
            if let Some(last) = seen.last_edge
                && (edge.wrapping_sub(last) as i32) < 0
            {
                let line = format!("edge {last} -> {edge}: {segment}");
                seen.retreats.push((last.wrapping_sub(edge), line));
            }
            seen.last_edge = Some(edge);
            seen.largest = seen.largest.max(window);
            seen.segments += 1;
        }
        Verdict::Deliver
    }));
    windows
}

fn sim_with(a_config: Config, b_config: Config) -> Sim {
    let now = Instant::ZERO;
    let a = Connection::connect(a_config, now, addr_a(40_000), addr_b(80)).unwrap();
    let b = Connection::listen(b_config, now, addr_b(80));
    Sim::new(a, b, Link::new(long_path(), 1), Link::new(long_path(), 2), now)
}

/// A bulk transfer of `total` octets from A to B, B reading everything as it arrives (when
/// `reads`); returns (virtual seconds to read the second half, the total time).
fn bulk(sim: &mut Sim, total: usize, reads: bool, limit: Duration) -> Option<(f64, f64)> {
    bulk_within(sim, total, reads, limit, DEFAULT_CEILING)
}

/// [`bulk`] for a sender whose send buffer may grow to `send_ceiling`.
fn bulk_within(
    sim: &mut Sim,
    total: usize,
    reads: bool,
    limit: Duration,
    send_ceiling: usize,
) -> Option<(f64, f64)> {
    let chunk = vec![0x5a; 256 * 1024];
    let mut buf = vec![0u8; 256 * 1024];
    let (mut written, mut read) = (0usize, 0usize);
    let mut half_at = None;
    let done = sim.run_until(limit, |sim| {
        while written < total {
            let want = (total - written).min(chunk.len());
            match sim.a.send(sim.now, &chunk[..want]) {
                Ok(0) | Err(_) => break,
                Ok(n) => written += n,
            }
        }
        if written < total {
            // A writer the buffer held back: it grew to twice what may be in flight (the
            // congestion window, or the peer's window if smaller) first, up to the ceiling.
            let status = sim.a.status();
            let flight = status.cwnd.min(status.max_snd_wnd) as usize;
            let wanted = (2 * flight).min(send_ceiling);
            assert!(status.send_buffer >= wanted, "send buffer behind 2 × cwnd: {status:?}");
        }
        while reads && let Ok(n @ 1..) = sim.b.recv(&mut buf) {
            read += n;
        }
        if half_at.is_none() && read >= total / 2 {
            half_at = Some(sim.now);
        }
        read >= total
    });
    if !done {
        return None;
    }
    let end = sim.now.as_micros() as f64 / 1e6;
    let half = half_at.unwrap().as_micros() as f64 / 1e6;
    Some((end - half, end))
}

fn mbit_per_s(bytes: usize, seconds: f64) -> f64 {
    bytes as f64 * 8.0 / seconds / 1e6
}

/// The default configuration on a path whose BDP is ten times the initial buffer: B's window
/// grows past 64 KiB to cover the BDP, and once ramped up the transfer runs at ≥ 90 % of the
/// link rate (with the window pinned at 64 KiB it could not pass 64 KiB per 50 ms, about
/// 10.5 Mbit/s). Every window B advertised kept its right edge where it was or moved it right.
#[test]
fn receive_window_grows_to_cover_the_bdp_and_fills_a_long_path() {
    let mut sim =
        sim_with(Config::with_fixed_isn(SeqNum::new(1)), Config::with_fixed_isn(SeqNum::new(2)));
    let windows = watch_b(&mut sim);
    let total = 32 << 20;
    let (second_half, whole) = bulk(&mut sim, total, true, Duration::from_secs(120)).unwrap();
    let rate = mbit_per_s(total / 2, second_half);
    let windows = windows.borrow();
    println!(
        "32 MiB in {whole:.2} s virtual, second half at {rate:.1} Mbit/s; B's window up to {} \
         octets, buffers: B receive {}, A send {}",
        windows.largest,
        sim.b.status().recv_buffer,
        sim.a.status().send_buffer
    );
    assert_eq!(windows.shift, 9, "the shift is chosen for the 16 MiB ceiling (RFC 7323 §2.2)");
    assert!(windows.largest > BDP, "B's window {} never covered the BDP", windows.largest);
    assert!(sim.b.status().recv_buffer > BDP as usize);
    assert!(sim.b.status().recv_buffer <= DEFAULT_CEILING);
    assert!(rate >= 0.9 * RATE_BPS as f64 / 1e6, "goodput {rate:.1} Mbit/s after ramp-up");
    assert!(sim.a.status().send_buffer > INITIAL, "A's send buffer grew with its cwnd");
}

/// RFC 9293 §3.8.6 (SHLD-14): growth only adds room, so no segment B sends — hundreds of
/// thousands of ACKs while its buffer grows by doubling — has its right edge left of the one
/// before.
#[test]
fn advertised_right_edge_never_moves_left_while_the_window_grows_shld_14() {
    let mut sim =
        sim_with(Config::with_fixed_isn(SeqNum::new(1)), Config::with_fixed_isn(SeqNum::new(2)));
    let windows = watch_b(&mut sim);
    bulk(&mut sim, 8 << 20, true, Duration::from_secs(60)).unwrap();
    let windows = windows.borrow();
    assert!(windows.segments > 2_000, "{} segments from B", windows.segments);
    assert!(windows.largest > 4 * INITIAL as u32, "the window grew: {}", windows.largest);
    assert!(windows.retreats.is_empty(), "the edge moved left: {:?}", windows.retreats);
}

/// `recv_buffer_max == recv_buffer` (and the same for sending) pins memory: the shift is the
/// initial buffer's (1 for 64 KiB), no window goes past it, and neither buffer grows.
#[test]
fn with_the_maximum_at_the_initial_size_nothing_grows() {
    let pinned = |iss| {
        let mut config = Config::with_fixed_isn(SeqNum::new(iss));
        config.recv_buffer_max = config.recv_buffer;
        config.send_buffer_max = config.send_buffer;
        config
    };
    let mut sim = sim_with(pinned(1), pinned(2));
    let windows = watch_b(&mut sim);
    bulk_within(&mut sim, 2 << 20, true, Duration::from_secs(120), INITIAL).unwrap();
    let windows = windows.borrow();
    assert_eq!(windows.shift, 1);
    // The whole 64 KiB (the 255-octet rounding reserve comes on top).
    assert_eq!(windows.largest, 65_536);
    assert!(windows.retreats.is_empty(), "{:?}", windows.retreats);
    let (a, b) = (sim.a.status(), sim.b.status());
    assert_eq!(
        (a.send_buffer, a.recv_buffer, b.send_buffer, b.recv_buffer),
        (INITIAL, INITIAL, INITIAL, INITIAL)
    );
}

/// Growth follows what the application consumed, not what arrived: B reads nothing for ten
/// seconds while A has plenty to send, and its buffer stays at 64 KiB (the window closes);
/// once B reads, the buffer grows.
#[test]
fn a_receiver_that_does_not_read_does_not_grow_its_buffer() {
    let mut sim =
        sim_with(Config::with_fixed_isn(SeqNum::new(1)), Config::with_fixed_isn(SeqNum::new(2)));
    let windows = watch_b(&mut sim);
    assert!(bulk(&mut sim, 4 << 20, false, Duration::from_secs(10)).is_none());
    let status = sim.b.status();
    assert_eq!((status.recv_buffer, status.rcv_wnd), (INITIAL, 0), "{status:?}");
    assert!(status.recv_queued >= INITIAL, "the buffer filled: {status:?}");
    assert!(windows.borrow().largest <= INITIAL as u32);
    // Reading now: the rate it reads at makes it grow.
    bulk(&mut sim, 4 << 20, true, Duration::from_secs(60)).unwrap();
    assert!(sim.b.status().recv_buffer > INITIAL, "{:?}", sim.b.status());
    // While the window closed on a reader that did not read, the rounding of a 512-octet
    // unit may have outrun the buffer's reserve; then the edge retreats, by less than one
    // unit (RFC 7323 §2.4), and never while the application reads (the test above).
    for (back, segment) in &windows.borrow().retreats {
        assert!(*back < 512, "{segment}");
    }
}

/// Two endpoints joined by a 20 ms delay line (no rate limit): each segment arrives
/// `DELAY` after it was polled.
struct Net {
    client: Endpoint,
    server: Endpoint,
    now: Instant,
    /// In flight: (arrival, towards the server, source, destination, bytes).
    wire: VecDeque<(Instant, bool, IpAddr, IpAddr, Vec<u8>)>,
    buf: Vec<u8>,
}

const DELAY: Duration = Duration::from_millis(20);
const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2)), 80);

impl Net {
    fn pump(&mut self) {
        for to_server in [true, false] {
            let from = if to_server { &mut self.client } else { &mut self.server };
            while let Ok(Some(tx)) = from.poll_transmit(self.now, &mut self.buf) {
                let bytes = self.buf[..tx.len].to_vec();
                let at = self.now + DELAY;
                self.wire.push_back((at, to_server, tx.local.ip(), tx.remote.ip(), bytes));
            }
        }
    }

    /// Delivers what is due, or moves the clock to the next arrival or deadline.
    fn step(&mut self) {
        self.pump();
        let mut delivered = false;
        while self.wire.front().is_some_and(|packet| packet.0 <= self.now) {
            let (_, to_server, src, dst, bytes) = self.wire.pop_front().unwrap();
            let to = if to_server { &mut self.server } else { &mut self.client };
            to.handle_segment(self.now, src, dst, &bytes);
            delivered = true;
            // What the segment calls for (an ACK every second segment) leaves at once.
            self.pump();
        }
        if !delivered {
            let next = [
                self.wire.front().map(|packet| packet.0),
                self.client.poll_timeout(),
                self.server.poll_timeout(),
            ];
            if let Some(next) = next.into_iter().flatten().min() {
                self.now = self.now.max(next);
            }
            self.client.handle_timeout(self.now);
            self.server.handle_timeout(self.now);
        }
    }
}

/// An endpoint's `buffer_memory_limit` bounds the growth of all its connections together:
/// two bulk transfers into one server, whose cap (1 MiB) is far below what they ask for, grow
/// to exactly the cap in total, the refusals are counted, the transfers complete (nothing is
/// lost, no window shrinks), and the growth returns to the pool when the connections end.
#[test]
fn endpoint_memory_cap_stops_growth_across_two_connections_and_counts_it() {
    const CAP: usize = 1 << 20;
    const TOTAL: usize = 8 << 20;
    let mut server_config = EndpointConfig::new(Config::new([2; 16]), [2; 16]);
    server_config.buffer_memory_limit = CAP;
    let mut net = Net {
        client: Endpoint::new(EndpointConfig::new(Config::new([1; 16]), [1; 16])),
        server: Endpoint::new(server_config),
        now: Instant::from_millis(1),
        wire: VecDeque::new(),
        buf: vec![0; 1600],
    };
    net.server.listen(SERVER, 4).unwrap();
    let local = addr_a(0).ip();
    let clients: Vec<ConnectionHandle> =
        (0..2).map(|_| net.client.connect(net.now, local, SERVER).unwrap()).collect();
    let mut servers: Vec<ConnectionHandle> = Vec::new();
    let chunk = vec![7u8; 256 * 1024];
    let mut buf = vec![0u8; 256 * 1024];
    let mut written = [0usize; 2];
    let mut read = [0usize; 2];
    let mut peak = 0;
    let mut peak_status = Vec::new();
    for _ in 0..2_000_000 {
        if read == [TOTAL; 2] {
            break;
        }
        net.step();
        while net.client.poll_event().is_some() {}
        while let Some(event) = net.server.poll_event() {
            if let EndpointEvent::Connection(_, Event::Closed(reason)) = event {
                panic!("a connection ended: {reason:?}");
            }
        }
        while let Ok(Some(handle)) = net.server.accept(SERVER) {
            servers.push(handle);
        }
        for (i, &client) in clients.iter().enumerate() {
            while written[i] < TOTAL {
                let want = (TOTAL - written[i]).min(chunk.len());
                match net.client.send(net.now, client, &chunk[..want]) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => written[i] += n,
                }
            }
        }
        for (i, &server) in servers.iter().enumerate() {
            while let Ok(n @ 1..) = net.server.recv(server, &mut buf) {
                read[i] += n;
            }
        }
        let memory = net.server.buffer_memory();
        assert!(memory <= CAP, "{memory} octets of growth past the cap");
        if memory > peak {
            peak = memory;
            peak_status = servers.iter().map(|&s| net.server.status(s).unwrap()).collect();
        }
    }
    assert_eq!(read, [TOTAL; 2], "both transfers complete");
    assert_eq!(peak, CAP, "growth reaches exactly the cap");
    assert!(net.server.counters().buffer_growth_refused > 0, "refusals are counted");
    // Both connections grew (the receive buffers of the two), and together by the cap: each
    // buffer's growth is its size past 64 KiB plus the rounding reserve that came with it.
    assert_eq!(peak_status.len(), 2);
    for status in &peak_status {
        assert!(status.recv_buffer > INITIAL, "{status:?}");
        assert_eq!(status.send_buffer, INITIAL, "the server sends nothing: {status:?}");
    }
    let grown: usize = peak_status.iter().map(|status| status.recv_buffer - INITIAL).sum();
    assert!(grown <= CAP && grown > CAP * 31 / 33, "{grown} of {CAP}");
    // The server's connections end: their growth goes back to the pool.
    for &server in &servers {
        net.server.abort(net.now, server).unwrap();
    }
    for _ in 0..100 {
        net.step();
    }
    assert_eq!(net.server.buffer_memory(), 0);
    assert_eq!(net.server.connection_count(), 0);
}

/// The send buffer grows with the congestion window: whenever `send` could not take
/// everything, the buffer already held twice what may be in flight (checked after every write
/// by `bulk_within`), up to its ceiling — here 1 MiB, which a 100 Mbit/s × 50 ms path reaches
/// and never passes.
#[test]
fn send_buffer_grows_to_twice_the_flight_up_to_its_ceiling() {
    const CEILING: usize = 1 << 20;
    let mut a_config = Config::with_fixed_isn(SeqNum::new(1));
    a_config.send_buffer_max = CEILING;
    let mut sim = sim_with(a_config, Config::with_fixed_isn(SeqNum::new(2)));
    let mut sizes = vec![INITIAL];
    for _ in 0..3 {
        bulk_within(&mut sim, 1 << 20, true, Duration::from_secs(60), CEILING).unwrap();
        let size = sim.a.status().send_buffer;
        assert!(size >= *sizes.last().unwrap(), "the send buffer shrank: {sizes:?} {size}");
        sizes.push(size);
    }
    assert_eq!(*sizes.last().unwrap(), CEILING, "grew to the ceiling: {sizes:?}");
}
