//! No heap allocation per segment in steady state: a bulk transfer between two connections,
//! once warmed up, allocates nothing — with a clean link and with loss and reordering. And
//! short connections back to back reuse ended ones' allocations (`spare_connections`). An
//! allocation count is deterministic, so this is a test, not a benchmark.
//!
//! Allocations are counted per thread: only the test's own thread does the work counted, and
//! anything the test harness allocates on its threads (such as its "has been running for over
//! 60 seconds" notice on a loaded machine) is no part of the count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use bytes::BytesMut;
use tcp_proto::wire::Segment;
use tcp_proto::wire::checksum::TxChecksum;
use tcp_proto::wire::gso::Segmenter;
use tcp_proto::{Config, Connection, ConnectionHandle, Endpoint, EndpointConfig, Instant, SeqNum};

/// Counts the allocations each thread makes.
struct Counting;

thread_local! {
    /// This thread's allocations so far. A `const`-initialised `Cell` of a type without a
    /// destructor: reading or bumping it never allocates and never registers a TLS destructor,
    /// so the allocator may touch it without recursing into itself.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

/// The allocations the calling thread has made so far.
fn allocations() -> u64 {
    ALLOCATIONS.get()
}

// SAFETY: defers to the system allocator; only counts. The count is thread-local and touched
// with `try_with`, which neither allocates nor panics (it only fails once the thread's locals
// are being torn down, and then the allocation simply goes uncounted).
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const A: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 40_000);
const B: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 80);

/// A fixed pool of packet buffers moving between two connections: no allocation per packet.
struct Link {
    slots: Vec<Vec<u8>>,
    free: Vec<usize>,
    a_to_b: VecDeque<(usize, usize)>,
    b_to_a: VecDeque<(usize, usize)>,
    count: u64,
    lossy: bool,
    /// Output through `poll_transmit_chunks`: the header into the slot, the payload slices
    /// copied after it (as a device would gather iovecs).
    chunked: bool,
    /// Output through `poll_transmit_borrowed`: the header into the slot, the lent payload
    /// copied after it.
    lent: bool,
    /// Output through `poll_transmit_gso` (up to 44 wire segments each), cut into wire
    /// segments by `wire::gso::Segmenter`, one slot each.
    gso: bool,
    /// Super-segments (more than one wire segment) polled.
    super_segments: u64,
    /// B receives through `handle_segment_bytes`, each packet carved from these pools
    /// (reclaimed with `BytesMut::try_reclaim` once no slice of them is held), and reads with
    /// `recv_bytes`.
    pools: Option<Pools>,
}

/// Octets in each packet pool of the `Bytes` path.
const POOL_SIZE: usize = 1 << 20;

/// Packet buffers for the `Bytes` path: packets are carved from a few large pools, each
/// reclaimed with `BytesMut::try_reclaim` once no slice of it is held any more.
struct Pools {
    pools: Vec<BytesMut>,
    current: usize,
}

impl Pools {
    fn new() -> Self {
        // Each pool made shareable once, up front (its first split allocates its shared
        // header), so a pool first used after warm-up costs nothing either.
        let pool = || {
            let mut pool = BytesMut::with_capacity(POOL_SIZE);
            drop(pool.split());
            pool
        };
        Self { pools: (0..8).map(|_| pool()).collect(), current: 0 }
    }

    /// A copy of `packet` in pooled memory: no allocation, as long as one of the pools has
    /// room or nothing of it is held any more.
    fn carve(&mut self, packet: &[u8]) -> BytesMut {
        for _ in 0..self.pools.len() {
            let pool = &mut self.pools[self.current];
            if pool.try_reclaim(packet.len()) {
                pool.extend_from_slice(packet);
                return pool.split();
            }
            self.current = (self.current + 1) % self.pools.len();
        }
        panic!("every packet pool is pinned");
    }
}

impl Link {
    fn new(lossy: bool, chunked: bool) -> Self {
        Self {
            slots: vec![vec![0u8; 1600]; 4096],
            free: (0..4096).collect(),
            a_to_b: VecDeque::with_capacity(4096),
            b_to_a: VecDeque::with_capacity(4096),
            count: 0,
            lossy,
            chunked,
            lent: false,
            gso: false,
            super_segments: 0,
            pools: None,
        }
    }

    /// Puts a wire segment in `slot` on its way (or drops or reorders it when lossy).
    fn enqueue(&mut self, slot: usize, len: usize, queue_is_a: bool) {
        self.count += 1;
        // Lossy: drop every 37th segment, swap every 11th with its successor.
        if self.lossy && self.count.is_multiple_of(37) {
            self.free.push(slot);
            return;
        }
        let queue = if queue_is_a { &mut self.a_to_b } else { &mut self.b_to_a };
        if self.lossy && self.count.is_multiple_of(11) && !queue.is_empty() {
            let last = queue.pop_back().unwrap();
            queue.push_back((slot, len));
            queue.push_back(last);
        } else {
            queue.push_back((slot, len));
        }
    }

    /// Sends everything `conn` has through `poll_transmit_gso`, each super-segment cut into
    /// wire segments by the software segmenter.
    fn send_gso(&mut self, now: Instant, conn: &mut Connection, queue_is_a: bool) {
        let (src, dst) = if queue_is_a { (A.ip(), B.ip()) } else { (B.ip(), A.ip()) };
        let mut header = [0u8; 60];
        while let Ok(Some(out)) = conn.poll_transmit_gso(now, &mut header, 44) {
            let mut segmenter = Segmenter::new(
                &header[..out.header_len],
                out.payload.slices(),
                out.segment_size,
                src,
                dst,
                TxChecksum::Compute,
            )
            .unwrap();
            self.super_segments += u64::from(segmenter.segments() > 1);
            loop {
                let slot = self.free.pop().expect("a free slot");
                match segmenter.next_segment(&mut self.slots[slot]).unwrap() {
                    Some(len) => self.enqueue(slot, len, queue_is_a),
                    None => {
                        self.free.push(slot);
                        break;
                    }
                }
            }
        }
    }

    /// Moves one round of segments; returns how many data octets B read.
    fn round(
        &mut self,
        now: Instant,
        a: &mut Connection,
        b: &mut Connection,
        read: &mut [u8],
    ) -> usize {
        for (conn, queue_is_a) in [(&mut *a, true), (&mut *b, false)] {
            if self.gso {
                self.send_gso(now, conn, queue_is_a);
                continue;
            }
            while let Some(slot) = self.free.pop() {
                let polled = if self.lent {
                    let packet = &mut self.slots[slot];
                    let lent = conn.poll_transmit_borrowed(now, &mut packet[..60]);
                    lent.map(|lent| lent.map(|lent| gather(packet, lent)))
                } else if self.chunked {
                    let packet = &mut self.slots[slot];
                    conn.poll_transmit_chunks(now, &mut packet[..60]).map(|chunks| {
                        chunks.map(|chunks| {
                            let mut at = chunks.header_len;
                            for slice in chunks.payload.slices() {
                                packet[at..at + slice.len()].copy_from_slice(slice);
                                at += slice.len();
                            }
                            chunks.transmit
                        })
                    })
                } else {
                    conn.poll_transmit(now, &mut self.slots[slot])
                };
                match polled {
                    Ok(Some(tx)) => self.enqueue(slot, tx.len, queue_is_a),
                    _ => {
                        self.free.push(slot);
                        break;
                    }
                }
            }
        }
        while let Some((slot, len)) = self.a_to_b.pop_front() {
            if let Some(pools) = self.pools.as_mut() {
                let packet = pools.carve(&self.slots[slot][..len]);
                b.handle_segment_bytes(now, A.ip(), B.ip(), packet).unwrap();
            } else {
                let segment =
                    Segment::parse_checked(&self.slots[slot][..len], A.ip(), B.ip()).unwrap();
                b.handle_segment(now, A.ip(), &segment);
            }
            self.free.push(slot);
        }
        while let Some((slot, len)) = self.b_to_a.pop_front() {
            let segment = Segment::parse_checked(&self.slots[slot][..len], B.ip(), A.ip()).unwrap();
            a.handle_segment(now, B.ip(), &segment);
            self.free.push(slot);
        }
        while a.poll_event().is_some() {}
        while b.poll_event().is_some() {}
        let mut total = 0;
        if self.pools.is_some() {
            while let Ok(Some(chunk)) = b.recv_bytes() {
                total += chunk.len();
            }
            return total;
        }
        while let Ok(n @ 1..) = b.recv(read) {
            total += n;
        }
        total
    }
}

/// Copies a lent payload after its header in `packet` (as a device gathers iovecs); the
/// segment's `Transmit`.
fn gather(packet: &mut [u8], lent: tcp_proto::TransmitRef<'_>) -> tcp_proto::Transmit {
    let mut at = lent.header_len;
    for piece in lent.payload {
        packet[at..at + piece.len()].copy_from_slice(piece);
        at += piece.len();
    }
    lent.transmit
}

/// How segments are polled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Output {
    /// `poll_transmit`, the whole segment copied into the slot.
    Copy,
    /// `poll_transmit_chunks`, the payload slices gathered after the header.
    Chunks,
    /// `poll_transmit_gso`, super-segments cut by the software segmenter.
    Gso,
    /// `poll_transmit_borrowed`, the lent payload gathered after the header.
    Lent,
}

/// How the sender hands its data over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SendForm {
    /// `send(&[u8])`, copied into the send queue's tail blocks.
    Copy,
    /// `send_bytes` of slices of one large chunk, kept by reference.
    Bytes,
}

/// A bulk transfer A → B for `rounds`; `chunked`: A sends through `poll_transmit_chunks`
/// (`Output::Chunks`) or super-segments (`Output::Gso`); `bytes_path`: B receives through
/// `handle_segment_bytes` from pooled packet buffers and reads with `recv_bytes`.
fn transfer(
    lossy: bool,
    form: SendForm,
    output: Output,
    bytes_path: bool,
    rounds: u32,
) -> (u64, u64, usize) {
    let chunked = output == Output::Chunks;
    let mut config = Config::with_fixed_isn(SeqNum::new(1));
    config.send_buffer = 256 * 1024;
    config.recv_buffer = 256 * 1024;
    // Buffers at a fixed size: auto-tuning grows them in a few doublings (reallocations by
    // the logarithm of the ceiling, none per segment), and this checks the steady state after.
    (config.send_buffer_max, config.recv_buffer_max) = (config.send_buffer, config.recv_buffer);
    config.rto_min = std::time::Duration::from_millis(200);
    let mut now = Instant::from_millis(1);
    let mut a = Connection::connect(config.clone(), now, A, B).unwrap();
    let mut b = Connection::listen(config, now, B);
    let mut link = Link::new(lossy, chunked);
    link.gso = output == Output::Gso;
    link.lent = output == Output::Lent;
    if bytes_path {
        link.pools = Some(Pools::new());
    }
    let chunk = vec![0x42u8; 64 * 1024];
    // Shared once (a clone promotes a `Bytes` made from a `Vec`), so slicing it allocates
    // nothing afterwards.
    let source = bytes::Bytes::from(vec![0x42u8; 1 << 20]);
    let _shared = source.clone();
    let mut at = 0;
    if form == SendForm::Bytes {
        // A short write first: a chunk under 256 octets is copied into the queue's tail block,
        // and the first such write allocates that block (once, like the first `send`). The
        // lossy run frees room a few octets at a time now and then, and would otherwise make
        // that first short write late in the count.
        assert_eq!(a.send_bytes(now, source.slice(..100)).unwrap(), 100);
        at = 100;
    }
    let mut read = vec![0u8; 64 * 1024];
    let mut delivered = 0usize;
    let mut steady_from = None;
    let mut segments_before = 0;
    for round in 0..rounds {
        match form {
            SendForm::Copy => while a.send(now, &chunk).unwrap_or(0) > 0 {},
            SendForm::Bytes => {
                while let Ok(n @ 1..) = a.send_bytes(now, source.slice(at..)) {
                    at = (at + n) % source.len();
                }
            }
        }
        let moved_before = link.count;
        delivered += link.round(now, &mut a, &mut b, &mut read);
        if link.count == moved_before {
            // Nothing moved: jump to the next deadline (a retransmission, a delayed ACK).
            let next = [a.poll_timeout(), b.poll_timeout()].into_iter().flatten().min();
            now = now.max(next.unwrap_or(now));
        }
        if round == 2_000 {
            // Warmed up: buffers allocated, reassembly and events at their high-water marks.
            steady_from = Some(allocations());
            segments_before = link.count;
        }
        now += std::time::Duration::from_micros(100);
        if a.poll_timeout().is_some_and(|t| t <= now) {
            a.handle_timeout(now);
        }
        if b.poll_timeout().is_some_and(|t| t <= now) {
            b.handle_timeout(now);
        }
    }
    let allocations = allocations() - steady_from.unwrap();
    if link.gso {
        assert!(link.super_segments > 100, "only {} super-segments", link.super_segments);
    }
    (allocations, link.count - segments_before, delivered)
}

/// The same through two `Endpoint`s (demultiplexing, timer heap, event queues, round-robin
/// output included): after warm-up, lossy or not, no allocation per segment.
///
/// With `bytes_path`, the server takes segments through `Endpoint::handle_segment_bytes` from
/// pooled packet buffers and reads with `Endpoint::recv_bytes`.
fn endpoint_transfer_via(lossy: bool, bytes_path: bool) -> (u64, u64, usize) {
    let mut pools = bytes_path.then(Pools::new);
    let config = |secret: u8| {
        let mut connection = Config::new([secret; 16]);
        connection.send_buffer = 256 * 1024;
        connection.recv_buffer = 256 * 1024;
        // Fixed sizes, as in `transfer`.
        connection.send_buffer_max = connection.send_buffer;
        connection.recv_buffer_max = connection.recv_buffer;
        EndpointConfig::new(connection, [secret; 16])
    };
    let mut client = Endpoint::new(config(1));
    let mut server = Endpoint::new(config(2));
    server.listen(B, 4).unwrap();
    let mut now = Instant::from_millis(1);
    let c = client.connect(now, A.ip(), B).unwrap();
    let mut slots = vec![vec![0u8; 1600]; 4096];
    let mut free: Vec<usize> = (0..4096).collect();
    let mut queue: VecDeque<(usize, usize, IpAddr, IpAddr)> = VecDeque::with_capacity(4096);
    let mut count = 0u64;
    let chunk = vec![0x42u8; 64 * 1024];
    let mut read = vec![0u8; 64 * 1024];
    let (mut delivered, mut steady_from, mut segments_before) = (0usize, None, 0);
    let mut s: Option<ConnectionHandle> = None;
    for round in 0..6_000u32 {
        while client.send(now, c, &chunk).unwrap_or(0) > 0 {}
        let moved_before = count;
        for from_client in [true, false] {
            let (from, to) =
                if from_client { (&mut client, &mut server) } else { (&mut server, &mut client) };
            while let Some(slot) = free.pop() {
                // The `Bytes` path sends through the lent form: the header into the slot,
                // the payload gathered after it.
                let polled = if pools.is_some() {
                    let packet = &mut slots[slot];
                    let lent = from.poll_transmit_borrowed(now, &mut packet[..60]);
                    lent.map(|lent| lent.map(|lent| gather(packet, lent)))
                } else {
                    from.poll_transmit(now, &mut slots[slot])
                };
                let Ok(Some(tx)) = polled else {
                    free.push(slot);
                    break;
                };
                count += 1;
                if lossy && count.is_multiple_of(37) {
                    free.push(slot);
                    continue;
                }
                let entry = (slot, tx.len, tx.local.ip(), tx.remote.ip());
                if lossy && count.is_multiple_of(11) && !queue.is_empty() {
                    let last = queue.pop_back().unwrap();
                    queue.push_back(entry);
                    queue.push_back(last);
                } else {
                    queue.push_back(entry);
                }
            }
            while let Some((slot, len, src, dst)) = queue.pop_front() {
                match pools.as_mut().filter(|_| from_client) {
                    Some(pools) => {
                        let packet = pools.carve(&slots[slot][..len]);
                        to.handle_segment_bytes(now, src, dst, packet);
                    }
                    None => to.handle_segment(now, src, dst, &slots[slot][..len]),
                }
                free.push(slot);
            }
        }
        while client.poll_event().is_some() {}
        while server.poll_event().is_some() {}
        if s.is_none() {
            s = server.accept(B).unwrap();
        }
        if let Some(s) = s {
            if bytes_path {
                while let Ok(Some(chunk)) = server.recv_bytes(s) {
                    delivered += chunk.len();
                }
            }
            while let Ok(n @ 1..) = server.recv(s, &mut read) {
                delivered += n;
            }
        }
        if count == moved_before {
            let next = [client.poll_timeout(), server.poll_timeout()].into_iter().flatten().min();
            now = now.max(next.unwrap_or(now));
        }
        if round == 2_000 {
            steady_from = Some(allocations());
            segments_before = count;
        }
        now += std::time::Duration::from_micros(100);
        client.handle_timeout(now);
        server.handle_timeout(now);
    }
    let allocations = allocations() - steady_from.unwrap();
    (allocations, count - segments_before, delivered)
}

/// Short connections back to back through two endpoints (handshake, 100 octets each way, both
/// close, TIME-WAIT runs out); returns the allocations per lifecycle after warm-up.
fn churn_allocations_per_lifecycle(spare_connections: usize) -> f64 {
    let config = |secret: u8| {
        let mut connection = Config::new([secret; 16]);
        connection.msl = std::time::Duration::from_millis(1);
        let mut config = EndpointConfig::new(connection, [secret; 16]);
        config.spare_connections = spare_connections;
        config
    };
    let mut client = Endpoint::new(config(1));
    let mut server = Endpoint::new(config(2));
    server.listen(B, 4).unwrap();
    let mut now = Instant::from_millis(1);
    let mut packet = vec![0u8; 1600];
    let mut read = [0u8; 256];
    // Warm: the timer heap has reached its bound (twice the live connections plus slack),
    // which takes some fifty lifecycles.
    let (warm_up, lifecycles) = (100, 400);
    let mut counted_from = 0;
    for lifecycle in 0..warm_up + lifecycles {
        if lifecycle == warm_up {
            counted_from = allocations();
        }
        // Each lifecycle's own octet value: a reused buffer must never show an earlier one's.
        let fill = (lifecycle % 251) as u8 + 1;
        let message = [fill; 100];
        let c = client.connect(now, A.ip(), B).unwrap();
        let mut s = None;
        let (mut client_got, mut server_got, mut closed) = (0, 0, false);
        for _ in 0..100 {
            for from_client in [true, false] {
                let (from, to) = if from_client {
                    (&mut client, &mut server)
                } else {
                    (&mut server, &mut client)
                };
                while let Ok(Some(tx)) = from.poll_transmit(now, &mut packet) {
                    to.handle_segment(now, tx.local.ip(), tx.remote.ip(), &packet[..tx.len]);
                }
            }
            while client.poll_event().is_some() {}
            while server.poll_event().is_some() {}
            if s.is_none()
                && let Some(accepted) = server.accept(B).unwrap()
            {
                s = Some(accepted);
                client.send(now, c, &message).unwrap();
                server.send(now, accepted, &message).unwrap();
            }
            let Some(s) = s else { continue };
            while let Ok(n @ 1..) = client.recv(c, &mut read) {
                assert!(read[..n].iter().all(|&b| b == fill), "only this connection's data");
                client_got += n;
            }
            while let Ok(n @ 1..) = server.recv(s, &mut read) {
                assert!(read[..n].iter().all(|&b| b == fill), "only this connection's data");
                server_got += n;
            }
            if client_got == 100 && server_got == 100 && !closed {
                client.close(now, c).unwrap();
                server.close(now, s).unwrap();
                closed = true;
            }
            if closed && client.connection_count() + server.connection_count() == 0 {
                break;
            }
        }
        assert_eq!((client_got, server_got), (100, 100), "lifecycle {lifecycle}");
        now += std::time::Duration::from_millis(3);
        client.handle_timeout(now);
        server.handle_timeout(now);
        assert_eq!(client.connection_count() + server.connection_count(), 0);
        assert_eq!(client.time_wait_count(), 0);
    }
    (allocations() - counted_from) as f64 / lifecycles as f64
}

// One test, its runs one after another on the test's thread (the counter is per thread).
#[test]
fn steady_state_bulk_transfer_allocates_nothing_per_segment_clean_and_lossy() {
    // Every send form through every output form: copying, and header-only with the payload
    // as slices of the send queue.
    // The copying forms as before, the others in fewer rounds (the test runs unoptimised).
    for (form, output, rounds) in [
        (SendForm::Copy, Output::Copy, 20_000),
        (SendForm::Copy, Output::Chunks, 8_000),
        (SendForm::Bytes, Output::Copy, 8_000),
        (SendForm::Bytes, Output::Chunks, 8_000),
        (SendForm::Copy, Output::Gso, 8_000),
        (SendForm::Bytes, Output::Gso, 8_000),
        (SendForm::Copy, Output::Lent, 8_000),
        (SendForm::Bytes, Output::Lent, 8_000),
    ] {
        let what = format!("{form:?}, output {output:?}");
        let (allocations, segments, delivered) = transfer(false, form, output, false, rounds);
        assert!(segments > 10_000, "{what}: only {segments} segments in steady state");
        assert!(delivered > 10 << 20);
        assert_eq!(allocations, 0, "{what}: {allocations} allocations over {segments} segments");

        let (allocations, segments, delivered) = transfer(true, form, output, false, rounds);
        assert!(segments > 10_000, "{what}: only {segments} segments in steady state");
        assert!(delivered > 1 << 20);
        assert_eq!(allocations, 0, "{what}: {allocations} allocations over {segments} segments");
    }

    // The zero-copy receive path: the payload kept as slices of the pooled packets, handed
    // out by `recv_bytes`; the pools are reclaimed once the slices are dropped. The sender
    // uses the zero-copy forms too: the whole `Bytes` path end to end.
    for (lossy, output) in [
        (false, Output::Chunks),
        (true, Output::Chunks),
        (false, Output::Gso),
        (true, Output::Gso),
        (false, Output::Lent),
        (true, Output::Lent),
    ] {
        let (allocations, segments, delivered) =
            transfer(lossy, SendForm::Bytes, output, true, 8_000);
        assert!(segments > 10_000, "bytes path: only {segments} segments in steady state");
        assert!(delivered > 1 << 20, "bytes path: {delivered} octets");
        assert_eq!(
            allocations, 0,
            "bytes path (lossy {lossy}, {output:?}): {allocations} allocations over {segments} \
             segments"
        );
    }

    for (lossy, bytes_path) in [(false, false), (true, false), (false, true), (true, true)] {
        let (allocations, segments, delivered) = endpoint_transfer_via(lossy, bytes_path);
        assert!(segments > 10_000, "endpoints: only {segments} segments in steady state");
        assert!(delivered > 1 << 20, "endpoints: {delivered} octets");
        assert_eq!(
            allocations, 0,
            "endpoints (lossy {lossy}, bytes path {bytes_path}): {allocations} allocations \
             over {segments} segments"
        );
    }

    // Spare connections: a new connection takes over an ended one's TCB allocation and its
    // two buffers (each a ring storage and its indices), on both sides: 2 × (1 + 2 × 2) = 10
    // allocations fewer per lifecycle.
    let without = churn_allocations_per_lifecycle(0);
    let with = churn_allocations_per_lifecycle(8);
    eprintln!("churn: {without} allocations per lifecycle without spares, {with} with");
    assert!(
        without - with >= 10.0,
        "{without} allocations per lifecycle without spares, {with} with"
    );
    // And with spares, once warm, a lifecycle allocates nothing at all: the TCB, its buffers,
    // its event queue and CUBIC's state are all reused, and the endpoint's own tables (4-tuple
    // table, hash maps, timer heap, queues) keep their capacity.
    assert_eq!(with, 0.0, "{with} allocations per lifecycle with spares");
}
