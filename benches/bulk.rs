//! Bulk transfer, tcp-proto against smoltcp, side by side in one process: two endpoints of the
//! same stack joined in memory by queues of whole IPv4 packets (each stack builds and parses
//! the IP header and computes and verifies checksums), a virtual clock that jumps when both
//! sides are idle, and the application writing and reading through each stack's normal API.
//! 1 GiB client → server per run; rounds alternate between the stacks.
//!
//! Workloads: `bulk_mtu1500` (MSS 1460, 256 KiB send and receive buffers) and `bulk_mtu65535`
//! (4 MiB buffers) through each stack's copying API (`send`/`recv` with slices), and
//! `bulk_mtu1500_bytes` through each stack's best API: tcp-proto's `Bytes` forms (the
//! application's chunk by reference, header-only transmit with the payload lent from the send
//! queue (`poll_transmit_borrowed`) and gathered into the wire packet, whose copy completes the
//! TCP checksum as a partially offloading device would, payload kept as slices of the
//! received packets) against smoltcp's closure `send` producing the data in its ring and
//! closure `recv` reading it in place, and `bulk_mtu1500_superseg`: the same with tcp-proto emitting super-segments of up to 44
//! wire segments (`poll_transmit_gso`) that the software segmenter cuts into 1 500-octet
//! packets, and that the receiving side's harness verifies and coalesces into segments of up
//! to 64 KiB as a kernel's GRO would (`Gro`; smoltcp as in the `_bytes` row). Every wire
//! packet is checksummed and verified on the measured thread either way, and the cost is per
//! wire packet. Metrics: CPU ns per data segment and Gbit/s per CPU-second (thread CPU
//! time of the transfer, handshake excluded), medians over the rounds with the spread.
//!
//! `cargo bench --bench bulk` (options after `--`: `--rounds N`, `--scale F` to move F GiB,
//! `--only tcp-proto|smoltcp` for profiling one stack).

#[path = "common/mod.rs"]
mod common;

use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use bytes::{Buf, Bytes, BytesMut};
use std::time::Duration;

use common::{Counts, Options, Queue, SmolDevice, exchange, ipv4_header, pump, smol_iface};
use smoltcp::iface::SocketSet;
use smoltcp::socket::tcp;
use smoltcp::time::Instant as SmolInstant;
use smoltcp::wire::IpAddress;
use tcp_proto::wire::checksum::{Checksum, RxChecksum, TxChecksum, pseudo_header};
use tcp_proto::wire::gso::Segmenter;
use tcp_proto::wire::ip::{Ipv4Header, PROTOCOL_TCP};
use tcp_proto::{Config, ConnectionHandle, Endpoint, EndpointConfig, Instant};

const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const PORT: u16 = 5001;
const GIB: u64 = 1 << 30;

#[derive(Clone, Copy)]
struct Workload {
    name: &'static str,
    mtu: usize,
    buffer: usize,
    api: Api,
}

const WORKLOADS: [Workload; 4] = [
    Workload { name: "bulk_mtu1500", mtu: 1500, buffer: 256 * 1024, api: Api::Copying },
    Workload { name: "bulk_mtu65535", mtu: 65_535, buffer: 4 * 1024 * 1024, api: Api::Copying },
    Workload { name: "bulk_mtu1500_bytes", mtu: 1500, buffer: 256 * 1024, api: Api::Best },
    Workload {
        name: "bulk_mtu1500_superseg",
        mtu: 1500,
        buffer: 256 * 1024,
        api: Api::SuperSegments,
    },
];

/// Wire segments per super-segment at most (Linux's TSO/GSO cap for 1 500-octet packets:
/// 44 × 1 460 octets fit 64 KiB).
const MAX_SEGMENTS: usize = 44;

/// One run's cost.
struct Run {
    cpu: Duration,
    data_segments: u64,
    /// All segments, either way (data and pure ACKs).
    segments: u64,
    bytes: u64,
}

impl Run {
    fn ns_per_segment(&self) -> f64 {
        self.cpu.as_nanos() as f64 / self.data_segments as f64
    }

    fn gbit_per_cpu_second(&self) -> f64 {
        self.bytes as f64 * 8.0 / self.cpu.as_secs_f64() / 1e9
    }
}

// ------------------------------------------------------------------ tcp-proto

/// Virtual time at which each run's client connects.
const START_US: u64 = 1_000;

/// The two endpoints of a tcp-proto run, the workload's MTU and buffers on both, the server
/// listening and the client's connection opened at `start_us`.
fn endpoints(
    workload: Workload,
    start_us: u64,
) -> (Endpoint, Endpoint, SocketAddr, ConnectionHandle) {
    let config = |secret: u8| {
        let mut connection = Config::new([secret; 16]);
        connection.mtu = workload.mtu as u16;
        connection.send_buffer = workload.buffer;
        connection.recv_buffer = workload.buffer;
        if workload.api == Api::SuperSegments {
            // The harness's receive offload verifies every wire packet (`Gro`).
            connection.checksum.rx = RxChecksum::Trust;
        }
        if workload.api == Api::Best {
            // The harness's wire completes every checksum as it copies the packet
            // (`pump_bytes`: a device's partial offload, in software on the measured thread).
            connection.checksum.tx = TxChecksum::PseudoHeader;
        }
        EndpointConfig::new(connection, [secret; 16])
    };
    let mut client = Endpoint::new(config(1));
    let mut server = Endpoint::new(config(2));
    let listen = SocketAddr::new(IpAddr::V4(SERVER), PORT);
    server.listen(listen, 1).unwrap();
    let c = client.connect(Instant::from_micros(start_us), IpAddr::V4(CLIENT), listen).unwrap();
    (client, server, listen, c)
}

#[inline(never)]
fn tcp_proto_bulk(workload: Workload, total: u64) -> Run {
    let (mut client, mut server, listen, c) = endpoints(workload, START_US);
    let mut now_us = START_US;
    let now = |us: u64| Instant::from_micros(us);
    let pool = common::pool();
    let mut queue = Queue::new();
    let mut setup = Counts::default();
    let mut s = None;
    while s.is_none() {
        pump(now(now_us), &mut client, &mut server, &mut queue, &pool, workload.mtu, &mut setup);
        pump(now(now_us), &mut server, &mut client, &mut queue, &pool, workload.mtu, &mut setup);
        s = server.accept(listen).unwrap();
        now_us += 1;
    }
    let s = s.unwrap();
    while client.poll_event().is_some() || server.poll_event().is_some() {}
    let chunk = vec![0x5a_u8; 64 * 1024];
    let mut buf = vec![0_u8; 64 * 1024];
    let (mut sent, mut received) = (0u64, 0u64);
    let mut counts = Counts::default();
    let start = common::thread_cpu();
    while received < total {
        let t = now(now_us);
        while sent < total {
            let want = (total - sent).min(chunk.len() as u64) as usize;
            let n = client.send(t, c, &chunk[..want]).unwrap();
            sent += n as u64;
            if n < want {
                break;
            }
        }
        let mut moved =
            pump(t, &mut client, &mut server, &mut queue, &pool, workload.mtu, &mut counts);
        loop {
            let n = server.recv(s, &mut buf).unwrap();
            if n == 0 {
                break;
            }
            received += n as u64;
            moved = true;
        }
        moved |= pump(t, &mut server, &mut client, &mut queue, &pool, workload.mtu, &mut counts);
        while client.poll_event().is_some() || server.poll_event().is_some() {}
        if !moved {
            // Both idle: jump to the next deadline (a delayed ACK, say).
            let next = [client.poll_timeout(), server.poll_timeout()].into_iter().flatten().min();
            now_us = next.map_or(now_us + 1, |at| at.as_micros().max(now_us + 1));
            client.handle_timeout(now(now_us));
            server.handle_timeout(now(now_us));
        }
    }
    let cpu = common::thread_cpu() - start;
    Run { cpu, data_segments: counts.data, segments: counts.all, bytes: received }
}

/// Packet memory for the `Bytes` path: packets are carved from a few large pools, each reused
/// with `BytesMut::try_reclaim` once no slice of it is held any more (no allocation per
/// packet, as the copying path's recycled buffers).
struct Pools {
    pools: Vec<BytesMut>,
    current: usize,
}

impl Pools {
    const SIZE: usize = 64 << 10;

    fn new() -> Self {
        let pool = || {
            let mut pool = BytesMut::with_capacity(Self::SIZE);
            // Made shareable once, up front: its first split allocates the shared header.
            drop(pool.split());
            pool
        };
        Self { pools: (0..16).map(|_| pool()).collect(), current: 0 }
    }

    /// An empty buffer with room for `len` octets, from a pool nothing pins any more.
    fn pool(&mut self, len: usize) -> &mut BytesMut {
        if !self.pools[self.current].try_reclaim(len) {
            // The lowest pool with room or that nothing pins any more: the same few pools
            // keep being written and stay in the cache (as the smoltcp side's stack of
            // packet buffers does), rather than every pool in turn.
            self.current = (0..self.pools.len())
                .find(|&i| self.pools[i].try_reclaim(len))
                .expect("every packet pool is pinned");
        }
        &mut self.pools[self.current]
    }
}

/// The `Bytes` path's wire: each segment `from` emits as a header and its payload lent from
/// the send queue (`poll_transmit_borrowed`: no reference count touched) goes into pooled
/// memory as one IPv4 packet — the one copy a device makes when it gathers the iovecs — and
/// the other side takes each packet whole (`handle_segment_bytes`), verifying its checksum
/// and keeping its payload as a slice. The endpoints leave the TCP checksum to the device
/// (`TxChecksum::PseudoHeader`, as Linux's `CHECKSUM_PARTIAL`): the copy into the packet sums
/// what it copies and stores the checksum ([`write_packet`]), one pass over the payload on the
/// measured thread. Returns whether any moved.
fn pump_bytes(
    now: Instant,
    from: &mut Endpoint,
    to: &mut Endpoint,
    queue: &mut Vec<BytesMut>,
    pools: &mut Pools,
    counts: &mut Counts,
) -> bool {
    let mut header = [0u8; 60];
    // The last IPv4 header emitted: every full-sized segment of the flow has the same one,
    // octet for octet, so it is copied rather than built again (the receiver still parses
    // and verifies each).
    let mut ip_header: (Option<Ipv4Header>, [u8; 20]) = (None, [0; 20]);
    while let Ok(Some(out)) = from.poll_transmit_borrowed(now, &mut header) {
        let ip = ipv4_header(&out.transmit, out.transmit.len);
        if ip_header.0 != Some(ip) {
            ip.emit(&mut ip_header.1).expect("room for the header");
            ip_header.0 = Some(ip);
        }
        let pool = pools.pool(20 + out.transmit.len);
        let tcp_header = &header[..out.header_len];
        write_packet(pool, &ip_header.1, tcp_header, out.payload, out.transmit.len);
        queue.push(pool.split());
    }
    let moved = !queue.is_empty();
    for mut packet in queue.drain(..) {
        let (ip, segment) = Ipv4Header::parse(&packet).expect("valid IPv4");
        counts.all += 1;
        // Payload past the TCP header, read from the segment the parse has just delimited
        // (`tcp_payload_len` would find the IP header's length again).
        let data_offset = usize::from(segment.get(12).map_or(0, |octet| octet >> 4)) * 4;
        counts.data += u64::from(segment.len() > data_offset);
        packet.advance(20);
        to.handle_segment_bytes(now, ip.src.into(), ip.dst.into(), packet);
    }
    moved
}

/// Appends one IPv4 packet to `pool`: the IP header, then the TCP header and payload copied
/// and summed in one pass (`Checksum::add_copy_uninit`, into the spare capacity with no
/// zero-fill first). The TCP header's checksum field holds the pseudo-header's folded sum
/// (`TxChecksum::PseudoHeader`), so the complement of the sum from the TCP header on is the
/// whole checksum (RFC 9293 §3.1), stored at offset 16 as a device completing
/// `CHECKSUM_PARTIAL` does.
#[inline]
fn write_packet<'a>(
    pool: &mut BytesMut,
    ip: &[u8; 20],
    tcp_header: &[u8],
    payload: impl Iterator<Item = &'a [u8]>,
    tcp_len: usize,
) {
    let at = pool.len();
    let (ip_part, segment) = pool.spare_capacity_mut().split_at_mut(20);
    // The headers as fixed-size arrays where they have the usual lengths (20 octets of IP,
    // 32 of TCP with timestamps): moved in line, with no call to `memcpy`.
    write_array(ip_part, ip);
    let mut sum = Checksum::new();
    let mut len = match <&[u8; 32]>::try_from(tcp_header) {
        Ok(usual) => {
            write_array(segment, usual);
            sum.add_bytes(usual);
            usual.len()
        }
        Err(_) => sum.add_copy_uninit(segment, tcp_header),
    };
    for slice in payload {
        len += sum.add_copy_uninit(&mut segment[len..], slice);
    }
    segment[16..18].write_copy_of_slice(&sum.finish().to_be_bytes());
    assert_eq!(len, tcp_len, "room in the pool for the whole segment");
    // SAFETY: the IP header and every octet `add_copy_uninit` copied were written above,
    // one after another from the start of the spare capacity, so the first `at + 20 + len`
    // octets are initialised (and within the capacity).
    #[allow(unsafe_code)]
    unsafe {
        pool.set_len(at + 20 + len);
    }
}

/// Writes `octets` to the front of `dst` as one fixed-size move (`write_copy_of_slice` of a
/// known length: in line, where `octets.map(MaybeUninit::new)` was a call to `try_map`).
#[inline(always)]
fn write_array<const N: usize>(dst: &mut [MaybeUninit<u8>], octets: &[u8; N]) {
    let dst = dst.first_chunk_mut::<N>().expect("room for the header");
    dst.write_copy_of_slice(octets);
}

/// [`tcp_proto_bulk`] through the `Bytes` forms: the application's 64 KiB chunk is handed
/// over by reference (`send_bytes`, a reference count per call), segments go out as header
/// and payload slices, and arrive as whole packets whose payload the receiver keeps and hands
/// out as slices, a batch at a time (`read_chunks`).
#[inline(never)]
fn tcp_proto_bulk_bytes(workload: Workload, total: u64) -> Run {
    let (mut client, mut server, listen, c) = endpoints(workload, START_US);
    let mut now_us = START_US;
    let now = |us: u64| Instant::from_micros(us);
    let mut pools = Pools::new();
    let mut queue = Vec::with_capacity(4096);
    let mut setup = Counts::default();
    let mut s = None;
    while s.is_none() {
        pump_bytes(now(now_us), &mut client, &mut server, &mut queue, &mut pools, &mut setup);
        pump_bytes(now(now_us), &mut server, &mut client, &mut queue, &mut pools, &mut setup);
        s = server.accept(listen).unwrap();
        now_us += 1;
    }
    let s = s.unwrap();
    while client.poll_event().is_some() || server.poll_event().is_some() {}
    let chunk = Bytes::from(vec![0x5a_u8; 64 * 1024]);
    let mut chunks = vec![Bytes::new(); 64];
    let (mut sent, mut received) = (0u64, 0u64);
    let mut counts = Counts::default();
    let start = common::thread_cpu();
    while received < total {
        let t = now(now_us);
        offer_chunks(&mut client, t, c, &chunk, &mut sent, total);
        let mut moved =
            pump_bytes(t, &mut client, &mut server, &mut queue, &mut pools, &mut counts);
        loop {
            let n = server.read_chunks(s, &mut chunks).unwrap();
            for data in &mut chunks[..n] {
                std::hint::black_box(&data[..]);
                received += data.len() as u64;
                // Dropped here, so the packet's pool can be taken back.
                *data = Bytes::new();
            }
            if n == 0 {
                break;
            }
            moved = true;
        }
        moved |= pump_bytes(t, &mut server, &mut client, &mut queue, &mut pools, &mut counts);
        while client.poll_event().is_some() || server.poll_event().is_some() {}
        if !moved {
            let next = [client.poll_timeout(), server.poll_timeout()].into_iter().flatten().min();
            now_us = next.map_or(now_us + 1, |at| at.as_micros().max(now_us + 1));
            client.handle_timeout(now(now_us));
            server.handle_timeout(now(now_us));
        }
    }
    let cpu = common::thread_cpu() - start;
    Run { cpu, data_segments: counts.data, segments: counts.all, bytes: received }
}

/// The super-segment path's wire: the sending side's packet memory, as a device's transmit
/// ring (or the datagram buffer of `sendmmsg`) is. The wire packets of one [`pump_gso`] call
/// are written one after another into `octets`, which is kept at its largest length (zeroed
/// once, when it grows) so that the segmenter writes each piece in place, copying and summing
/// its payload in one pass (`Segmenter::next_segment`, `Checksum::add_copy`); [`Gro`] takes
/// every packet before the next call writes over them.
struct Wire {
    octets: Vec<u8>,
    /// Where each packet lies in `octets`, in order.
    packets: Vec<(usize, usize)>,
}

impl Wire {
    fn new() -> Self {
        Self { octets: Vec::new(), packets: Vec::with_capacity(4096) }
    }
}

/// The super-segment path's wire: each output of `from` (`poll_transmit_gso`, up to
/// [`MAX_SEGMENTS`] wire segments) is cut by the software segmenter into 1 500-octet IPv4
/// packets in the [`Wire`]'s memory, each TCP segment checksummed as it is copied (what a
/// kernel without TSO does for GSO), and the other side gets them through [`Gro`]: each
/// verified, runs of them coalesced into segments of up to 64 KiB. Returns whether any moved.
fn pump_gso(
    now: Instant,
    from: &mut Endpoint,
    to: &mut Endpoint,
    wire: &mut Wire,
    gro: &mut Gro,
    counts: &mut Counts,
) -> bool {
    let mut header = [0u8; 60];
    let mut used = 0;
    while let Ok(Some(out)) = from.poll_transmit_gso(now, &mut header, MAX_SEGMENTS) {
        let (IpAddr::V4(src), IpAddr::V4(dst)) =
            (out.transmit.local.ip(), out.transmit.remote.ip())
        else {
            unreachable!("IPv4 only here")
        };
        let mut segmenter = Segmenter::new(
            &header[..out.header_len],
            out.payload.slices(),
            out.segment_size,
            src.into(),
            dst.into(),
            TxChecksum::Compute,
        )
        .expect("a header the connection wrote");
        let most = 20 + segmenter.max_segment_len();
        // The IP header of the last length emitted: every piece but the last of a
        // super-segment has the same length, hence the same header octet for octet.
        let mut ip_header = (0, [0u8; 20]);
        let mut piece = segmenter.segments();
        while piece > 0 {
            piece -= 1;
            if wire.octets.len() < used + most {
                wire.octets.resize(used + most, 0);
            }
            // The segment after a 20-octet IP header, written in place.
            let packet = &mut wire.octets[used..used + most];
            let len = segmenter
                .next_segment(&mut packet[20..])
                .expect("room for the segment")
                .expect("a segment left");
            if ip_header.0 != len {
                let ip = ipv4_header(&out.transmit, len);
                ip.emit(&mut ip_header.1).expect("room for the header");
                ip_header.0 = len;
            }
            packet[..20].copy_from_slice(&ip_header.1);
            wire.packets.push((used, 20 + len));
            used += 20 + len;
        }
    }
    let moved = !wire.packets.is_empty();
    gro.receive(now, to, wire, counts);
    moved
}

/// TCP flag bits, as in the header's flags octet.
const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const URG: u8 = 0x20;
const CWR: u8 = 0x80;

/// Receive offload in the harness, as a kernel's (or NIC's) GRO gives a TUN or UDP-GRO
/// reader: every wire packet's TCP checksum is verified here, on the measured thread, and
/// consecutive in-order data packets of one flow are coalesced into one segment of up to
/// 64 KiB, handed to `handle_segment_bytes` whole (the receiving endpoint trusts the
/// checksum, as Linux marks a GRO packet `CHECKSUM_UNNECESSARY`). The payload is copied once,
/// into pooled memory, and summed as it is copied ([`append_summed`]: one pass, into the
/// spare capacity, no zero-fill first): with the segmenter's copy on the sending side that is
/// two copies per octet, as smoltcp's ring → packet → ring. A packet that goes up alone (no
/// payload, or flags that end a run) is copied out of the [`Wire`] into a packet of its own.
///
/// When a packet may join the run held (Linux's `tcp_gro_receive`): same addresses and
/// ports, the sequence number where the run ends, the same ACK number, the same header
/// length and options octet for octet (so the same TSval and TSecr), the same flags but for
/// CWR, PSH and FIN, no CWR on it, no longer than the run's first packet (its `gso_size`),
/// and the run stays within 64 KiB of IP packet. The run keeps its first packet's header,
/// window included, with the PSH and FIN of the packets that joined. A packet that joined
/// ends the run when it is shorter than the first or carries URG, PSH, RST, SYN or FIN. A
/// packet without payload, or with one of those flags, never starts a run: it goes up as it
/// arrived.
struct Gro {
    pools: Pools,
    /// The coalesced TCP segment (header of the first packet, payloads after it).
    run: Option<BytesMut>,
    /// The run's IP addresses.
    addresses: (Ipv4Addr, Ipv4Addr),
    /// The sequence number after the run's last octet.
    next_seq: u32,
    /// The payload length of the run's first packet.
    segment_size: usize,
    /// The last addresses seen and their pseudo-header's sum without the length (RFC 9293
    /// §3.1: the length is one more 16-bit word, added per packet).
    pseudo: ((Ipv4Addr, Ipv4Addr), Checksum),
}

impl Gro {
    fn new() -> Self {
        let addresses = (Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED);
        let pseudo = (
            addresses,
            pseudo_header(IpAddr::V4(addresses.0), IpAddr::V4(addresses.1), PROTOCOL_TCP, 0)
                .expect("one family"),
        );
        Self { pools: Pools::new(), run: None, addresses, next_seq: 0, segment_size: 0, pseudo }
    }

    /// Takes every packet of `queue`: each is verified and coalesced, or goes up alone.
    fn receive(&mut self, now: Instant, to: &mut Endpoint, wire: &mut Wire, counts: &mut Counts) {
        for (at, len) in wire.packets.drain(..) {
            let packet = &wire.octets[at..at + len];
            counts.all += 1;
            let (ip, segment) = Ipv4Header::parse(packet).expect("valid IPv4");
            let header_len = usize::from(segment[12] >> 4) * 4;
            let (header, payload) = segment.split_at(header_len);
            counts.data += u64::from(!payload.is_empty());
            let flags = header[13];
            let seq = u32::from_be_bytes(header[4..8].try_into().unwrap());
            if self.pseudo.0 != (ip.src, ip.dst) {
                let sum = pseudo_header(ip.src.into(), ip.dst.into(), PROTOCOL_TCP, 0);
                self.pseudo = ((ip.src, ip.dst), sum.expect("one family"));
            }
            let mut sum = self.pseudo.1;
            sum.add_u16(segment.len() as u16);
            // The usual header (timestamps: 32 octets) summed as a fixed-size array: the
            // short loop unrolled in line, no loop over a length known only at run time.
            match <&[u8; 32]>::try_from(header) {
                Ok(usual) => sum.add_bytes(usual),
                Err(_) => sum.add_bytes(header),
            }
            if let Some(run) = self.run.as_mut() {
                let first = &run[..header_len.min(run.len())];
                let joins = self.addresses == (ip.src, ip.dst)
                    && first.len() == header_len
                    && usize::from(first[12] >> 4) * 4 == header_len
                    && first[..4] == header[..4]
                    && first[8..12] == header[8..12]
                    && (first[13] ^ flags) & !(CWR | PSH | FIN) == 0
                    && flags & CWR == 0
                    && same_options(&first[20..], &header[20..])
                    && seq == self.next_seq
                    && !payload.is_empty()
                    && payload.len() <= self.segment_size
                    && 20 + run.len() + payload.len() <= 65_535;
                if joins {
                    append_summed(run, payload, &mut sum);
                    assert_eq!(sum.finish(), 0, "a wire packet's checksum");
                    run[13] |= flags & (PSH | FIN);
                    self.next_seq = seq.wrapping_add(payload.len() as u32);
                    if payload.len() < self.segment_size
                        || flags & (URG | PSH | RST | SYN | FIN) != 0
                    {
                        self.flush(now, to);
                    }
                    continue;
                }
                self.flush(now, to);
            }
            if payload.is_empty() || flags & (URG | PSH | RST | SYN | FIN) != 0 {
                sum.add_bytes(payload);
                assert_eq!(sum.finish(), 0, "a wire packet's checksum");
                // Up as it arrived: out of the wire's memory into a packet of its own.
                let pool = self.pools.pool(segment.len());
                pool.extend_from_slice(segment);
                to.handle_segment_bytes(now, ip.src.into(), ip.dst.into(), pool.split());
                continue;
            }
            // The whole pool: a run grows in place up to 64 KiB (a split of the filled part
            // alone would have to reallocate as it grows).
            let mut run = self.pools.pool(65_535 - 20).split_off(0);
            run.extend_from_slice(header);
            append_summed(&mut run, payload, &mut sum);
            assert_eq!(sum.finish(), 0, "a wire packet's checksum");
            self.run = Some(run);
            self.addresses = (ip.src, ip.dst);
            self.next_seq = seq.wrapping_add(payload.len() as u32);
            self.segment_size = payload.len();
        }
        // The end of the batch: what the device had is handed up (a NAPI poll's end).
        self.flush(now, to);
    }

    /// Hands the run held (if any) up as one segment.
    fn flush(&mut self, now: Instant, to: &mut Endpoint) {
        if let Some(run) = self.run.take() {
            let (src, dst) = self.addresses;
            to.handle_segment_bytes(now, src.into(), dst.into(), run);
        }
    }
}

/// Whether two TCP headers' options (from octet 20 on) are the same octet for octet: the
/// usual 12 octets (timestamps) compared as a fixed-size array, with no call to `memcmp`.
#[inline]
fn same_options(a: &[u8], b: &[u8]) -> bool {
    match (<&[u8; 12]>::try_from(a), <&[u8; 12]>::try_from(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Appends `payload` to `run` and adds it to `sum` in one pass over the octets
/// (`Checksum::add_copy_uninit` into the spare capacity: no zero-fill first, no second pass
/// over the copy).
#[inline]
fn append_summed(run: &mut BytesMut, payload: &[u8], sum: &mut Checksum) {
    let at = run.len();
    let spare = run.spare_capacity_mut();
    assert!(spare.len() >= payload.len(), "room in the run");
    let copied = sum.add_copy_uninit(spare, payload);
    assert_eq!(copied, payload.len());
    // SAFETY: `add_copy_uninit` wrote the first `copied` octets of the spare capacity, so
    // the `at + copied` octets from the start are initialised (and within the capacity).
    #[allow(unsafe_code)]
    unsafe {
        run.set_len(at + copied);
    }
}

/// [`tcp_proto_bulk_bytes`] with super-segments: the sender polls `poll_transmit_gso`, and
/// the software segmenter cuts each super-segment into checksummed 1 500-octet wire packets
/// on the measured thread; the receiver gets them as a kernel's GRO would hand them up
/// ([`Gro`]: each verified, in-order runs coalesced into segments of up to 64 KiB). Cost per
/// wire packet.
#[inline(never)]
fn tcp_proto_bulk_superseg(workload: Workload, total: u64) -> Run {
    let (mut client, mut server, listen, c) = endpoints(workload, START_US);
    let mut now_us = START_US;
    let now = |us: u64| Instant::from_micros(us);
    let mut wire = Wire::new();
    let mut gro = Gro::new();
    let mut setup = Counts::default();
    let mut s = None;
    while s.is_none() {
        pump_gso(now(now_us), &mut client, &mut server, &mut wire, &mut gro, &mut setup);
        pump_gso(now(now_us), &mut server, &mut client, &mut wire, &mut gro, &mut setup);
        s = server.accept(listen).unwrap();
        now_us += 1;
    }
    let s = s.unwrap();
    while client.poll_event().is_some() || server.poll_event().is_some() {}
    let chunk = Bytes::from(vec![0x5a_u8; 64 * 1024]);
    let mut chunks = vec![Bytes::new(); 64];
    let (mut sent, mut received) = (0u64, 0u64);
    let mut counts = Counts::default();
    let start = common::thread_cpu();
    while received < total {
        let t = now(now_us);
        offer_chunks(&mut client, t, c, &chunk, &mut sent, total);
        let mut moved = pump_gso(t, &mut client, &mut server, &mut wire, &mut gro, &mut counts);
        loop {
            let n = server.read_chunks(s, &mut chunks).unwrap();
            for data in &mut chunks[..n] {
                std::hint::black_box(&data[..]);
                received += data.len() as u64;
                *data = Bytes::new();
            }
            if n == 0 {
                break;
            }
            moved = true;
        }
        moved |= pump_gso(t, &mut server, &mut client, &mut wire, &mut gro, &mut counts);
        while client.poll_event().is_some() || server.poll_event().is_some() {}
        if !moved {
            let next = [client.poll_timeout(), server.poll_timeout()].into_iter().flatten().min();
            now_us = next.map_or(now_us + 1, |at| at.as_micros().max(now_us + 1));
            client.handle_timeout(now(now_us));
            server.handle_timeout(now(now_us));
        }
    }
    let cpu = common::thread_cpu() - start;
    Run { cpu, data_segments: counts.data, segments: counts.all, bytes: received }
}

// ------------------------------------------------------------------ smoltcp

/// How the application hands data to a stack and takes it back.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Api {
    /// Copies in and out of the application's buffers: `send`/`recv` with slices.
    Copying,
    /// Each stack's best: tcp-proto's `Bytes` forms (chunks by reference, payload kept as
    /// slices of the packets); smoltcp's closure `send` filling its ring in place and closure
    /// `recv` reading it in place.
    Best,
    /// tcp-proto's `Bytes` forms with super-segments (`poll_transmit_gso`) cut into wire
    /// packets by the software segmenter; smoltcp as in `Best` (it has no super-segments).
    SuperSegments,
}

#[inline(never)]
fn smoltcp_bulk(workload: Workload, total: u64) -> Run {
    smoltcp_bulk_with(workload, total, Api::Copying)
}

#[inline(never)]
fn smoltcp_bulk_best(workload: Workload, total: u64) -> Run {
    smoltcp_bulk_with(workload, total, Api::Best)
}

fn smoltcp_bulk_with(workload: Workload, total: u64, api: Api) -> Run {
    let pool = common::pool();
    let device = || SmolDevice {
        rx: Queue::new(),
        tx: Queue::new(),
        pool: std::rc::Rc::clone(&pool),
        mtu: workload.mtu,
    };
    let (mut cdev, mut sdev) = (device(), device());
    let mut ciface = smol_iface(&mut cdev, CLIENT);
    let mut siface = smol_iface(&mut sdev, SERVER);
    let socket = || {
        tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; workload.buffer]),
            tcp::SocketBuffer::new(vec![0; workload.buffer]),
        )
    };
    let mut csockets = SocketSet::new(vec![]);
    let mut ssockets = SocketSet::new(vec![]);
    let ch = csockets.add(socket());
    let sh = ssockets.add(socket());
    ssockets.get_mut::<tcp::Socket<'_>>(sh).listen(PORT).unwrap();
    let remote = (IpAddress::Ipv4(SERVER), PORT);
    csockets.get_mut::<tcp::Socket<'_>>(ch).connect(ciface.context(), remote, 40_000).unwrap();
    let mut now_us = 1_000i64;
    loop {
        let t = SmolInstant::from_micros(now_us);
        ciface.poll(t, &mut cdev, &mut csockets);
        siface.poll(t, &mut sdev, &mut ssockets);
        exchange(&mut cdev, &mut sdev, &mut Counts::default());
        if csockets.get::<tcp::Socket<'_>>(ch).state() == tcp::State::Established
            && ssockets.get::<tcp::Socket<'_>>(sh).state() == tcp::State::Established
        {
            break;
        }
        now_us += 1;
    }
    let chunk = vec![0x5a_u8; 64 * 1024];
    let mut buf = vec![0_u8; 64 * 1024];
    let (mut sent, mut received) = (0u64, 0u64);
    let mut counts = Counts::default();
    let start = common::thread_cpu();
    while received < total {
        let t = SmolInstant::from_micros(now_us);
        let client = csockets.get_mut::<tcp::Socket<'_>>(ch);
        while sent < total && client.can_send() {
            let want = (total - sent).min(chunk.len() as u64) as usize;
            let n = if api == Api::Copying {
                client.send_slice(&chunk[..want]).unwrap()
            } else {
                // Produced in place: the cheapest way to put octets into its ring.
                client
                    .send(|ring| {
                        let n = ring.len().min(want);
                        ring[..n].fill(0x5a);
                        (n, n)
                    })
                    .unwrap()
            };
            sent += n as u64;
            if n < want {
                break;
            }
        }
        ciface.poll(t, &mut cdev, &mut csockets);
        let mut moved = exchange(&mut cdev, &mut sdev, &mut counts);
        siface.poll(t, &mut sdev, &mut ssockets);
        let server = ssockets.get_mut::<tcp::Socket<'_>>(sh);
        while server.can_recv() {
            let n = if api == Api::Copying {
                server.recv_slice(&mut buf).unwrap()
            } else {
                // Read in place: the application looks at the octets where they lie.
                server
                    .recv(|ring| {
                        std::hint::black_box(&*ring);
                        (ring.len(), ring.len())
                    })
                    .unwrap()
            };
            if n == 0 {
                break;
            }
            received += n as u64;
            moved = true;
        }
        siface.poll(t, &mut sdev, &mut ssockets);
        moved |= exchange(&mut cdev, &mut sdev, &mut counts);
        if !moved {
            let next = [ciface.poll_at(t, &csockets), siface.poll_at(t, &ssockets)]
                .into_iter()
                .flatten()
                .min();
            now_us = next.map_or(now_us + 1, |at| at.total_micros().max(now_us + 1));
        }
    }
    let cpu = common::thread_cpu() - start;
    Run { cpu, data_segments: counts.data, segments: counts.all, bytes: received }
}

// ------------------------------------------------------------------ the floor

/// The data work the workload demands of any stack, and nothing else: per segment the
/// application's copy into a send ring, the copy from it into a packet, the TCP checksum and
/// the IPv4 header (with its checksum) built, both checksums verified, the copy into a
/// receive ring and the application's copy out of it — the four copies and two sums both
/// stacks do, with tcp-proto's own checksum. No TCP at all: what it costs is a lower bound
/// for the CPU per segment of a stack that copies through its API and checksums in software.
#[inline(never)]
fn data_floor(workload: Workload, total: u64) -> Run {
    let mss = workload.mtu - 40;
    let mut send_ring = vec![0_u8; workload.buffer];
    let mut recv_ring = vec![0_u8; workload.buffer];
    let chunk = vec![0x5a_u8; mss];
    let mut buf = vec![0_u8; mss];
    let mut packet = vec![0_u8; workload.mtu];
    let (src, dst) = (IpAddr::V4(CLIENT), IpAddr::V4(SERVER));
    let tcp_len = (workload.mtu - 20) as u32;
    let (mut moved, mut segments, mut at) = (0u64, 0u64, 0usize);
    let start = common::thread_cpu();
    while moved < total {
        if at + mss > workload.buffer {
            at = 0;
        }
        send_ring[at..at + mss].copy_from_slice(&chunk);
        packet[40..].copy_from_slice(&send_ring[at..at + mss]);
        // A 20-octet TCP header whose checksum field is zero while it is summed.
        packet[20..40].fill(0);
        packet[32] = 5 << 4;
        let mut sum = pseudo_header(src, dst, PROTOCOL_TCP, tcp_len).unwrap();
        sum.add_bytes(&packet[20..]);
        packet[36..38].copy_from_slice(&sum.finish().to_be_bytes());
        let header = Ipv4Header {
            src: CLIENT,
            dst: SERVER,
            protocol: PROTOCOL_TCP,
            ttl: 64,
            identification: 0,
            dont_fragment: true,
            more_fragments: false,
            fragment_offset: 0,
            total_len: workload.mtu as u16,
            dscp_ecn: 0,
        };
        header.emit(&mut packet).unwrap();
        let (_, tcp) = Ipv4Header::parse(std::hint::black_box(&packet)).unwrap();
        let mut check = pseudo_header(src, dst, PROTOCOL_TCP, tcp_len).unwrap();
        check.add_bytes(tcp);
        assert_eq!(check.finish(), 0);
        recv_ring[at..at + mss].copy_from_slice(&tcp[20..]);
        buf.copy_from_slice(&recv_ring[at..at + mss]);
        std::hint::black_box(&mut buf);
        at += mss;
        moved += mss as u64;
        segments += 1;
    }
    let cpu = common::thread_cpu() - start;
    Run { cpu, data_segments: segments, segments, bytes: moved }
}

fn main() {
    let options = Options::parse();
    let total = (GIB as f64 * options.scale) as u64;
    for workload in WORKLOADS.into_iter().filter(|w| options.includes(w.name)) {
        let mut ours = (Vec::new(), Vec::new());
        let mut theirs = (Vec::new(), Vec::new());
        for round in 0..options.rounds {
            // Alternate which stack goes first, so neither always runs on a warm machine.
            let order =
                if round % 2 == 0 { ["tcp-proto", "smoltcp"] } else { ["smoltcp", "tcp-proto"] };
            for stack in order.into_iter().filter(|stack| options.runs(stack)) {
                let run = match (stack, workload.api) {
                    ("tcp-proto", Api::Copying) => tcp_proto_bulk(workload, total),
                    ("tcp-proto", Api::Best) => tcp_proto_bulk_bytes(workload, total),
                    ("tcp-proto", Api::SuperSegments) => tcp_proto_bulk_superseg(workload, total),
                    (_, Api::Copying) => smoltcp_bulk(workload, total),
                    (_, Api::Best | Api::SuperSegments) => smoltcp_bulk_best(workload, total),
                };
                eprintln!(
                    "{} round {round} {stack}: {} data segments ({} in all), {:.3} s CPU, {:.1} ns/segment, {:.2} Gbit/s per CPU-second",
                    workload.name,
                    run.data_segments,
                    run.segments,
                    run.cpu.as_secs_f64(),
                    run.ns_per_segment(),
                    run.gbit_per_cpu_second()
                );
                let (ns, gbit) = if stack == "tcp-proto" { &mut ours } else { &mut theirs };
                ns.push(run.ns_per_segment());
                gbit.push(run.gbit_per_cpu_second());
            }
        }
        if ours.0.is_empty() || theirs.0.is_empty() {
            continue;
        }
        if workload.api == Api::Copying {
            let mut floor: Vec<f64> =
                (0..options.rounds).map(|_| data_floor(workload, total).ns_per_segment()).collect();
            let floor = common::median(&mut floor);
            let smoltcp = common::median(&mut theirs.0.clone());
            eprintln!(
                "{}: the data work alone (4 copies, 2 checksums, IPv4 headers; no TCP) {floor:.1} ns/segment = {:.3} of smoltcp's CPU per segment",
                workload.name,
                floor / smoltcp
            );
        }
        let (lo, hi) = common::spread(&ours.0);
        let (slo, shi) = common::spread(&theirs.0);
        eprintln!(
            "{}: ns/segment spread tcp-proto {lo:.1}..{hi:.1}, smoltcp {slo:.1}..{shi:.1}",
            workload.name
        );
        let ns = (common::median(&mut ours.0), common::median(&mut theirs.0));
        let gbit = (common::median(&mut ours.1), common::median(&mut theirs.1));
        common::result(workload.name, "cpu_ns_per_segment", ns.0, ns.1);
        common::result(workload.name, "gbit_per_cpu_second", gbit.0, gbit.1);
    }
}

/// The application's side of the `Bytes` rows: slices of `chunk` handed over by reference
/// until `total` octets are taken or the send buffer refuses the rest of one.
#[inline]
fn offer_chunks(
    client: &mut Endpoint,
    t: Instant,
    c: ConnectionHandle,
    chunk: &Bytes,
    sent: &mut u64,
    total: u64,
) {
    while *sent < total {
        let want = (total - *sent).min(chunk.len() as u64) as usize;
        let n = client.send_bytes(t, c, chunk.slice(..want)).unwrap();
        *sent += n as u64;
        if n < want {
            break;
        }
    }
}
