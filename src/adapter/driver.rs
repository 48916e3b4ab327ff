//! A small blocking driver: runs an [`Endpoint`] over any [`PacketTransport`].
//!
//! Each [`Driver::poll`] sends everything the endpoint has queued, waits for a packet or the
//! endpoint's next deadline (whichever is first, and at most the caller's `max_wait`), feeds
//! what came, runs due timers and sends again. The application calls the endpoint between
//! polls (through [`Driver::endpoint_mut`]) and drains its events.
//!
//! Time: a monotonic [`std::time::Instant`] taken at construction is the core's epoch, so
//! [`Driver::now`] never goes backwards. IP: every incoming packet is validated here, before
//! the core sees it — IPv4 version, header length (options are skipped, MUST-50), total
//! length and header checksum, IPv6 version and payload length, IPv6 extension headers
//! (hop-by-hop, routing without segments left and destination options skipped, anything
//! malformed refused: [`skip_ipv6_extensions`]), protocol TCP or ICMP, no fragments (RFC 9293
//! §3.7.1 leaves reassembly to IP; this driver has none), and a
//! destination that is one of ours — and each reason to drop is counted in [`DriverCounters`].
//!
//! ICMP: an ICMPv4 or ICMPv6 error that quotes one of our TCP segments (checked by
//! [`IcmpMessage`]: length, checksum, quoted header) goes to
//! [`Endpoint::handle_icmp_error`], which finds the connection and believes it only for a
//! sequence number in flight (RFC 9293 §3.9.2.2 MUST-54, RFC 5927). Without this a path with a
//! smaller MTU would swallow every full-sized segment: path-MTU discovery (RFC 1191, RFC 8201)
//! lives on "fragmentation needed" / "packet too big".
//!
//! Outgoing segments get a 20-octet IPv4 header (DF set unless
//! [`Driver::set_dont_fragment`] cleared it; the connection's TTL and DS field, MUST-48/49) or
//! a 40-octet IPv6 header.
//!
//! Batches and offloads: each round reads a batch of packets
//! ([`PacketTransport::recv_batch`]: up to 64, or 2 MiB), handles them all, runs the timers,
//! then sends everything the endpoint has and flushes the transport's send batch. Over a
//! transport whose [`Offloads`] say so, segments leave as headers plus payload slices
//! ([`Endpoint::poll_transmit_gso`], no copy here) and as super-segments of up to 64 KiB for the
//! kernel (or the transport, in software) to cut. Coalesced super-segments that arrive (the
//! kernel's TSO output over TUN) go to the endpoint whole, which counts them per MSS; with an
//! inbound filter, a capture or a trace they are first cut back into the wire segments they
//! came as ([`wire::gso::Segmenter`](crate::wire::gso::Segmenter)), so loss, traces and
//! captures stay per wire packet. Checksums a device left to finish or verified already are
//! not summed again when the endpoint was made by [`Driver::with_config`], which sets
//! `Config::checksum` to what the transport does; the driver then verifies the checksums the
//! device said nothing about itself (MUST-3).

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;
use core::net::IpAddr;
use core::time::Duration;
use std::fs::File;
use std::io::{self, BufWriter};
use std::path::Path;

use super::pcap::PcapWriter;
use super::{Offloads, OutSegment, PacketTransport, RxBatch, RxChecksumState, RxMeta};
use crate::endpoint::{Endpoint, EndpointConfig};
use crate::time::Instant;
use crate::wire::Segment;
use crate::wire::checksum::{ChecksumCapabilities, RxChecksum, TxChecksum};
use crate::wire::gso::Segmenter;
use crate::wire::icmp::{IcmpMessage, IcmpParseError, PROTOCOL_ICMP, PROTOCOL_ICMPV6};
use crate::wire::ip::{IpParseError, Ipv4Header, Ipv6Header, PROTOCOL_TCP};

/// Packets the driver handled or refused, by reason. TCP-level drops (checksum, lengths,
/// no connection) are the endpoint's to count: see [`Endpoint::counters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DriverCounters {
    /// Packets received from the transport.
    pub packets_in: u64,
    /// Packets handed to the transport.
    pub packets_out: u64,
    /// Shorter than an IP header, or lengths that disagree with the octets received.
    pub dropped_truncated: u64,
    /// Neither IPv4 nor IPv6, or an IPv4 header length below five words.
    pub dropped_bad_header: u64,
    /// IPv4 header checksum wrong.
    pub dropped_bad_checksum: u64,
    /// Neither TCP nor ICMP.
    pub dropped_not_tcp: u64,
    /// IPv4 fragments and IPv6 packets with a fragment header: never reassembled here.
    pub dropped_fragment: u64,
    /// IPv6 packets whose extension headers are refused ([`Ipv6ExtensionError`]): truncated,
    /// too many, a hop-by-hop header not first, or a routing header with segments left.
    pub dropped_ipv6_extension: u64,
    /// Addressed to an IP address that is not ours.
    pub dropped_not_ours: u64,
    /// Held back or discarded by the inbound filter.
    pub filtered: u64,
    /// Segments the endpoint produced that could not be sent (transport error).
    pub send_errors: u64,
    /// ICMP errors about one of our TCP segments, handed to the endpoint (which counts those
    /// it believes: [`EndpointCounters::icmp_accepted`](crate::endpoint::EndpointCounters)).
    pub icmp_errors: u64,
    /// ICMP messages too short, with a wrong checksum, or quoting no usable IP and TCP header.
    pub dropped_icmp_malformed: u64,
    /// ICMP errors about a packet that is not one of ours: not TCP, or from another source.
    pub dropped_icmp_not_ours: u64,
    /// ICMP messages that report no error (echo, redirect, …): nothing for TCP.
    pub icmp_ignored: u64,
    /// Receive calls that brought at least one packet (`packets_in / batches_in` is the mean
    /// batch).
    pub batches_in: u64,
    /// Coalesced TCP super-segments received (each also counts once in `packets_in`, and its
    /// wire segments once each when cut back).
    pub coalesced_in: u64,
    /// Checksums the device left to finish, finished here (only for an endpoint that verifies
    /// them itself).
    pub checksums_finished: u64,
    /// Segments the driver verified for an endpoint that trusts its input, found wrong and
    /// dropped (MUST-3).
    pub dropped_bad_tcp_checksum: u64,
    /// Packets that are not TCP (nor ICMP errors about TCP) kept for the application
    /// ([`Driver::keep_other_packets`]).
    pub other_packets_kept: u64,
    /// Such packets dropped because the application's queue of them was full.
    pub other_packets_dropped: u64,
    /// Super-segments handed to the transport (each counts once in `packets_out`).
    pub super_segments_out: u64,
    /// Wire segments those super-segments make.
    pub super_segment_pieces_out: u64,
}

/// Which way a packet went, for traces and filters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the transport to the endpoint.
    In,
    /// From the endpoint to the transport.
    Out,
}

/// A valid incoming packet, decoded as far as the endpoint needs.
enum Inbound<'p> {
    /// A TCP segment from `src` to `dst`.
    Tcp { src: IpAddr, dst: IpAddr, segment: &'p [u8] },
    /// An ICMP error about one of our segments.
    Icmp(IcmpMessage<'p>),
}

/// The IP header repeated before each wire segment of a coalesced super-segment.
#[derive(Clone, Copy)]
enum PieceIp {
    V4(Ipv4Header),
    V6(Ipv6Header),
}

/// A test or application hook on incoming packets: `true` lets the packet in, `false` takes
/// it out of the driver's hands (the hook may keep it and give it back later through
/// [`Driver::inject`]).
pub type InboundFilter = Box<dyn FnMut(&[u8]) -> bool + Send>;

/// Runs an [`Endpoint`] over a [`PacketTransport`]; see the module docs.
pub struct Driver<T> {
    endpoint: Endpoint,
    transport: T,
    epoch: std::time::Instant,
    /// Our addresses: a packet for anything else is dropped. Empty: accept any.
    addresses: Vec<IpAddr>,
    /// Accept packets for any address even when `addresses` is not empty (catch-all).
    any_destination: bool,
    /// Packets not for TCP, kept for the application (at most `others_max`).
    others: VecDeque<Vec<u8>>,
    /// 0: such packets are dropped and counted as before.
    others_max: usize,
    identification: u16,
    /// Set DF on outgoing IPv4 packets (RFC 1191 path-MTU discovery).
    dont_fragment: bool,
    rx: RxBatch,
    /// A received super-segment's wire segments, rebuilt one at a time.
    split: Vec<u8>,
    tx: Vec<u8>,
    /// Gathering room: a segment in parts, for the capture, the trace or a transport that
    /// copies.
    scratch: Vec<u8>,
    /// What the endpoint's connections do about checksums (`Config::checksum`).
    checksum: ChecksumCapabilities,
    /// What the transport does, read at construction.
    offloads: Offloads,
    /// Wire segments per super-segment at most (1: none).
    max_segments: usize,
    /// Cut coalesced input into wire segments even with no filter, capture or trace.
    split_coalesced: bool,
    pcap: Option<PcapWriter<BufWriter<File>>>,
    trace: bool,
    filter: Option<InboundFilter>,
    counters: DriverCounters,
    /// What the `tracing` events last reported (feature `tracing`).
    #[cfg(feature = "tracing")]
    tracer: super::trace::Tracer,
}

impl<T> core::fmt::Debug for Driver<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Driver")
            .field("endpoint", &self.endpoint)
            .field("addresses", &self.addresses)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

/// Room for the largest IP packet.
const MAX_PACKET: usize = 65_535;
/// Packets taken in one [`Driver::poll`], the first waited for, before timers and output get
/// their turn.
const RECEIVE_BATCH: usize = 64;
/// Octets of packets one receive batch holds (room for the largest packet is always left for
/// the next one, so this is 32 super-segments or 64 small packets).
const RECEIVE_BATCH_BYTES: usize = 2 << 20;
/// Wire segments per super-segment asked of the endpoint: more than 64 KiB holds at any MSS
/// above 1 000, so the 64 KiB bound cuts first.
const MAX_SEGMENTS: usize = 64;
/// The longest TCP header.
const MAX_TCP_HEADER: usize = 60;

impl<T: PacketTransport> Driver<T> {
    /// A driver for `endpoint` over `transport`. Its clock starts now.
    ///
    /// The endpoint's connections are taken to compute and verify every checksum
    /// (`Config::checksum` left at its default): checksums a device left unfinished are
    /// finished here before the endpoint verifies them. Use [`Driver::with_config`] to let
    /// the endpoint skip what the transport does.
    pub fn new(endpoint: Endpoint, transport: T) -> Self {
        Self::build(endpoint, transport, ChecksumCapabilities::SOFTWARE)
    }

    /// A driver for a new endpoint made from `config`, its `connection.checksum` set to what
    /// `transport` does ([`Driver::checksum_for`]): over a TUN device with the virtio-net
    /// header, checksums are left for the kernel to finish, and arriving ones the kernel
    /// vouches for are not summed again (the driver verifies the others itself).
    pub fn with_config(mut config: EndpointConfig, transport: T) -> Self {
        let checksum = Self::checksum_for(&transport.offloads());
        config.connection.checksum = checksum;
        Self::build(Endpoint::new(config), transport, checksum)
    }

    /// The checksum capabilities an endpoint under this driver may use over a transport
    /// with `offloads`: `tx` as the transport wants segments handed over, `rx` trusting
    /// when the transport reports what each packet's checksum needs (the driver then
    /// verifies those it says nothing about).
    pub fn checksum_for(offloads: &Offloads) -> ChecksumCapabilities {
        let rx = if offloads.rx_checksum { RxChecksum::Trust } else { RxChecksum::Verify };
        ChecksumCapabilities { tx: offloads.tx_checksum, rx }
    }

    fn build(endpoint: Endpoint, transport: T, checksum: ChecksumCapabilities) -> Self {
        let offloads = transport.offloads();
        let max_segments = if offloads.tcp_segmentation { MAX_SEGMENTS } else { 1 };
        Self {
            endpoint,
            transport,
            epoch: std::time::Instant::now(),
            addresses: Vec::new(),
            any_destination: false,
            others: VecDeque::new(),
            others_max: 0,
            identification: 0,
            dont_fragment: true,
            rx: RxBatch::new(RECEIVE_BATCH_BYTES, RECEIVE_BATCH),
            split: vec![0; MAX_PACKET],
            tx: vec![0; Ipv6Header::LEN + MAX_PACKET],
            scratch: Vec::new(),
            checksum,
            offloads,
            max_segments,
            split_coalesced: false,
            pcap: None,
            trace: false,
            filter: None,
            counters: DriverCounters::default(),
            #[cfg(feature = "tracing")]
            tracer: super::trace::Tracer::default(),
        }
    }

    /// Accepts packets for `address` (once any address is added, packets for others are
    /// dropped and counted).
    pub fn add_address(&mut self, address: IpAddr) {
        self.addresses.push(address);
    }

    /// With `true`, accepts TCP segments and ICMP errors for any destination address, added or
    /// not: what a catch-all listener (`Endpoint::listen` on `0.0.0.0:0`) needs to see the
    /// connections a transparent proxy intercepts, which answer from their original
    /// destinations. With `false` (the default), only the added addresses are ours.
    pub fn set_any_destination(&mut self, any: bool) {
        self.any_destination = any;
    }

    /// Keeps up to `max` received packets that are not for TCP — other protocols, ICMP
    /// messages that report no error (echo, …) or report one about a packet that was not
    /// TCP, fragments of other protocols — for [`take_other_packet`](Self::take_other_packet),
    /// whatever their destination; beyond `max` they are dropped and counted in
    /// [`DriverCounters::other_packets_dropped`]. ICMP errors about TCP segments still go to
    /// the endpoint. With 0 (the default) they are dropped and counted by reason, as an
    /// endpoint-only driver has no use for them. Each kept packet is one allocation (this is
    /// not the TCP path).
    pub fn keep_other_packets(&mut self, max: usize) {
        self.others_max = max;
        while self.others.len() > max {
            self.others.pop_front();
            self.counters.other_packets_dropped += 1;
        }
    }

    /// The oldest packet kept by [`keep_other_packets`](Self::keep_other_packets): a whole IP
    /// packet as received.
    pub fn take_other_packet(&mut self) -> Option<Vec<u8>> {
        self.others.pop_front()
    }

    /// Packets kept for [`take_other_packet`](Self::take_other_packet) now.
    pub fn other_packets(&self) -> usize {
        self.others.len()
    }

    /// Keeps `packet` for the application if it asked for such packets; false if it did not
    /// (the caller counts the drop by its reason).
    fn keep_other(&mut self, packet: &[u8]) -> bool {
        if self.others_max == 0 {
            return false;
        }
        if self.others.len() >= self.others_max {
            self.counters.other_packets_dropped += 1;
        } else {
            self.others.push_back(packet.to_vec());
            self.counters.other_packets_kept += 1;
        }
        true
    }

    /// Writes every packet in and out to a pcap file at `path` (link type RAW).
    ///
    /// # Errors
    ///
    /// Creating the file or writing its header.
    pub fn capture_to(&mut self, path: &Path) -> io::Result<()> {
        self.pcap = Some(PcapWriter::new(BufWriter::new(File::create(path)?))?);
        Ok(())
    }

    /// Sets (`true`, the default) or clears the DF bit of outgoing IPv4 packets.
    ///
    /// With DF set a router that cannot forward a packet whole drops it and says so with an
    /// ICMP "fragmentation needed", from which the connection learns the path MTU (RFC 1191,
    /// RFC 9293 §3.7.2). Where ICMP is filtered that message never comes (an RFC 2923 black
    /// hole; the core then falls back on its own, see `Config::black_hole_fallback`); clearing
    /// DF lets routers fragment instead, at the cost of fragmentation and of path-MTU
    /// discovery. IPv6 routers never fragment (RFC 8200 §5), so IPv6 packets are unaffected.
    pub fn set_dont_fragment(&mut self, dont_fragment: bool) {
        self.dont_fragment = dont_fragment;
    }

    /// Cuts coalesced TCP super-segments that arrive (the kernel's TSO output over TUN) back
    /// into the wire segments they came as before the endpoint sees them (`true`), or
    /// hands them over whole (`false`, the default: the endpoint counts them per MSS). With
    /// an inbound filter, a capture or a trace they are always cut, so those see wire packets.
    pub fn set_split_coalesced(&mut self, split: bool) {
        self.split_coalesced = split;
    }

    /// Prints every segment in and out on stderr.
    pub fn set_trace(&mut self, trace: bool) {
        self.trace = trace;
    }

    /// Installs a hook that sees every valid incoming packet before the endpoint does.
    pub fn set_inbound_filter(&mut self, filter: InboundFilter) {
        self.filter = Some(filter);
    }

    /// The core's idea of now: microseconds since the driver was made.
    pub fn now(&self) -> Instant {
        let elapsed = self.epoch.elapsed().as_micros();
        Instant::from_micros(u64::try_from(elapsed).unwrap_or(u64::MAX))
    }

    /// The endpoint, to read.
    pub const fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The endpoint, for user calls. Call [`Driver::poll`] (or [`Driver::flush`]) after them.
    pub const fn endpoint_mut(&mut self) -> &mut Endpoint {
        &mut self.endpoint
    }

    /// The transport.
    pub const fn transport(&self) -> &T {
        &self.transport
    }

    /// What the driver counted.
    pub const fn counters(&self) -> &DriverCounters {
        &self.counters
    }

    /// One round: send what is queued, wait up to `max_wait` (less if a timer is due sooner)
    /// for packets, feed them, run due timers, send again.
    ///
    /// # Errors
    ///
    /// A receive error of the transport (send errors are counted, not returned: TCP
    /// retransmits) or of the capture file.
    pub fn poll(&mut self, max_wait: Duration) -> io::Result<()> {
        self.flush()?;
        let now = self.now();
        let wait = self
            .endpoint
            .poll_timeout()
            .map_or(max_wait, |at| at.saturating_duration_since(now).min(max_wait));
        let mut batch = core::mem::replace(&mut self.rx, RxBatch::new(0, 0));
        batch.clear();
        let received = self.transport.recv_batch(&mut batch, wait);
        if !batch.is_empty() {
            self.counters.batches_in += 1;
        }
        let mut handled = Ok(());
        for index in 0..batch.len() {
            let Some((packet, meta)) = batch.packet_mut(index) else { continue };
            handled = self.receive_meta(packet, meta);
            if handled.is_err() {
                break;
            }
        }
        self.rx = batch;
        received?;
        handled?;
        let now = self.now();
        self.endpoint.handle_timeout(now);
        let flushed = self.flush();
        self.trace_round(now);
        flushed
    }

    /// The endpoint's next event ([`Endpoint::poll_event`]), drained through the driver so
    /// that, with the feature `tracing`, connections established and ended (reset, refused,
    /// timed out …) are logged as they come out.
    pub fn poll_event(&mut self) -> Option<crate::endpoint::EndpointEvent> {
        let event = self.endpoint.poll_event()?;
        #[cfg(feature = "tracing")]
        self.trace_event(&event);
        Some(event)
    }

    /// Logs what `event` says (feature `tracing`).
    #[cfg(feature = "tracing")]
    pub(crate) fn trace_event(&mut self, event: &crate::endpoint::EndpointEvent) {
        if let crate::endpoint::EndpointEvent::Connection(handle, event) = event {
            self.tracer.on_event(&mut self.endpoint, *handle, event);
        }
    }

    /// After a round at `now`: the drops counted since the last one, by reason, and the
    /// retransmission timeouts of established connections (feature `tracing`; nothing
    /// without it). [`poll`](Self::poll) calls it; a caller running the endpoint through
    /// [`receive_packet`](Self::receive_packet) and [`flush`](Self::flush) calls it once per
    /// round of its own.
    pub fn trace_round(&mut self, now: Instant) {
        #[cfg(feature = "tracing")]
        self.tracer.after_turn(now, &self.counters, &self.endpoint);
        #[cfg(not(feature = "tracing"))]
        let _ = now;
    }

    /// Handles `packet` as if it had just arrived (a packet a filter held back, say); it is
    /// not shown to the filter again.
    ///
    /// # Errors
    ///
    /// Writing the capture file.
    pub fn inject(&mut self, packet: &[u8]) -> io::Result<()> {
        self.receive(packet, false, false)?;
        self.flush()
    }

    /// Handles one packet a device received, with what the device said about it (`meta`:
    /// its checksum state, and whether it is a coalesced super-segment), exactly as a packet
    /// of [`poll`](Self::poll)'s batch: counted in `packets_in`, shown to the filter, a
    /// checksum left unfinished finished in place where it must be. Nothing is sent: the
    /// caller hands over a whole batch, then calls [`flush`](Self::flush) once, so the
    /// endpoint answers the batch rather than each packet.
    ///
    /// # Errors
    ///
    /// Writing the capture file.
    pub fn receive_packet(&mut self, packet: &mut [u8], meta: RxMeta) -> io::Result<()> {
        self.receive_meta(packet, meta)
    }

    /// Sends every segment the endpoint has queued.
    ///
    /// # Errors
    ///
    /// Writing the capture file, or a segment that does not fit the largest IP packet (the
    /// endpoint's configuration is wrong; it would fail again on every call).
    pub fn flush(&mut self) -> io::Result<()> {
        let sent =
            if self.offloads.tcp_segmentation || self.offloads.tx_checksum != TxChecksum::Compute {
                self.flush_segments()
            } else {
                self.flush_copies()
            };
        // Whatever a batching transport still holds goes now, error or not.
        if self.transport.flush().is_err() {
            self.counters.send_errors += 1;
        }
        sent
    }

    /// Sends each segment as headers and payload slices (and super-segments where the
    /// transport cuts them).
    fn flush_segments(&mut self) -> io::Result<()> {
        loop {
            let now = self.now();
            let header_room = self
                .tx
                .get_mut(Ipv6Header::LEN..Ipv6Header::LEN + MAX_TCP_HEADER)
                .unwrap_or_default();
            let chunks = match self.endpoint.poll_transmit_gso(now, header_room, self.max_segments)
            {
                Ok(Some(chunks)) => chunks,
                Ok(None) => return Ok(()),
                Err(error) => return Err(io::Error::other(error)),
            };
            let Some(range) = self.wrap(&chunks.transmit) else {
                self.counters.send_errors += 1;
                continue;
            };
            let payload_len = chunks.payload.len();
            let is_super = payload_len > chunks.segment_size;
            // A super-segment's field holds the pseudo-header's sum (or 0 when the endpoint
            // leaves it all to the transport); an ordinary one's is as the endpoint fills it.
            let checksum = match (is_super, self.checksum.tx) {
                (_, TxChecksum::None) => TxChecksum::None,
                (true, _) => TxChecksum::PseudoHeader,
                (false, tx) => tx,
            };
            let headers_end = Ipv6Header::LEN + chunks.header_len;
            let segment = OutSegment {
                headers: self.tx.get(range.start..headers_end).unwrap_or_default(),
                ip_header_len: Ipv6Header::LEN - range.start,
                payload: chunks.payload.slices(),
                payload_len,
                segment_size: chunks.segment_size,
                checksum,
            };
            if self.pcap.is_some() || self.trace {
                self.scratch.clear();
                self.scratch.extend_from_slice(segment.headers);
                for slice in segment.payload {
                    self.scratch.extend_from_slice(slice);
                }
                if let Some(pcap) = self.pcap.as_mut() {
                    pcap.write_packet(now, &self.scratch)?;
                }
                if self.trace {
                    trace(now, Direction::Out, &self.scratch);
                }
            }
            match self.transport.send_segment(&segment, &mut self.scratch) {
                Ok(()) => {
                    self.counters.packets_out += 1;
                    if is_super {
                        self.counters.super_segments_out += 1;
                        let pieces = payload_len.div_ceil(chunks.segment_size.max(1));
                        self.counters.super_segment_pieces_out += pieces as u64;
                    }
                }
                // Lost on the way out is like lost on the wire: TCP retransmits.
                Err(_) => self.counters.send_errors += 1,
            }
        }
    }

    /// Sends each segment copied whole into one buffer behind its IP header.
    fn flush_copies(&mut self) -> io::Result<()> {
        loop {
            let now = self.now();
            // The segment goes after room for the larger (IPv6) header; an IPv4 header is
            // written just in front of it.
            let segment_room = self.tx.get_mut(Ipv6Header::LEN..).unwrap_or_default();
            let transmit = match self.endpoint.poll_transmit(now, segment_room) {
                Ok(Some(transmit)) => transmit,
                Ok(None) => return Ok(()),
                Err(error) => return Err(io::Error::other(error)),
            };
            match self.wrap(&transmit) {
                Some(range) => self.emit(now, range)?,
                None => self.counters.send_errors += 1,
            }
        }
    }

    /// Puts an IP header in front of the segment at `tx[40..40 + len]`; returns the packet's
    /// range in `tx`, or `None` for mixed address families or an oversized segment.
    fn wrap(&mut self, transmit: &crate::Transmit) -> Option<core::ops::Range<usize>> {
        let segment_end = Ipv6Header::LEN + transmit.len;
        match (transmit.local.ip(), transmit.remote.ip()) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                let start = Ipv6Header::LEN - Ipv4Header::LEN;
                self.identification = self.identification.wrapping_add(1);
                let header = Ipv4Header {
                    src,
                    dst,
                    protocol: PROTOCOL_TCP,
                    ttl: transmit.ttl,
                    identification: self.identification,
                    dont_fragment: self.dont_fragment,
                    more_fragments: false,
                    fragment_offset: 0,
                    total_len: u16::try_from(Ipv4Header::LEN + transmit.len).ok()?,
                    dscp_ecn: transmit.ds_field,
                };
                header.emit(self.tx.get_mut(start..)?).ok()?;
                Some(start..segment_end)
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                let header = Ipv6Header {
                    src,
                    dst,
                    next_header: PROTOCOL_TCP,
                    hop_limit: transmit.ttl,
                    payload_len: u16::try_from(transmit.len).ok()?,
                    traffic_class: transmit.ds_field,
                    flow_label: 0,
                };
                header.emit(&mut self.tx).ok()?;
                Some(0..segment_end)
            }
            _ => None,
        }
    }

    fn emit(&mut self, now: Instant, range: core::ops::Range<usize>) -> io::Result<()> {
        let Some(packet) = self.tx.get(range) else { return Ok(()) };
        if let Some(pcap) = self.pcap.as_mut() {
            pcap.write_packet(now, packet)?;
        }
        if self.trace {
            trace(now, Direction::Out, packet);
        }
        match self.transport.send(packet) {
            Ok(()) => self.counters.packets_out += 1,
            // Lost on the way out is like lost on the wire: TCP retransmits.
            Err(_) => self.counters.send_errors += 1,
        }
        Ok(())
    }

    /// One received buffer: one packet, or several back to back (UDP GRO).
    fn receive_meta(&mut self, packet: &mut [u8], meta: RxMeta) -> io::Result<()> {
        if meta.datagram_size == 0 {
            return self.receive_one(packet, meta);
        }
        let single = RxMeta { datagram_size: 0, ..meta };
        for piece in packet.chunks_mut(meta.datagram_size) {
            self.receive_one(piece, single)?;
        }
        Ok(())
    }

    /// One received packet, with what the transport said about it.
    fn receive_one(&mut self, packet: &mut [u8], meta: RxMeta) -> io::Result<()> {
        self.counters.packets_in += 1;
        let trusted = match meta.checksum {
            RxChecksumState::Unknown => false,
            RxChecksumState::Valid | RxChecksumState::Partial { .. } => true,
        };
        if let Some(mss) = meta.tcp_gso_size {
            self.counters.coalesced_in += 1;
            // The endpoint takes a coalesced segment whole (its ACK clock counts it per MSS);
            // a filter, a capture or a trace is shown the wire packets it came as.
            if self.split_coalesced || self.filter.is_some() || self.pcap.is_some() || self.trace {
                return self.receive_coalesced(packet, mss, trusted);
            }
        }
        // Finished for an endpoint that verifies, for a filter, which may keep the packet
        // and inject it later as a plain packet (with nothing said about its checksum), and
        // for a packet that is not TCP (a UDP datagram made on this host, say), which may be
        // kept for the application with nothing said about its checksum either.
        if matches!(meta.checksum, RxChecksumState::Partial { .. })
            && (self.checksum.rx == RxChecksum::Verify
                || self.filter.is_some()
                || !carries_tcp(packet))
        {
            super::finish_partial_checksum(packet, meta.checksum);
            self.counters.checksums_finished += 1;
        }
        self.receive(packet, true, trusted)
    }

    /// A coalesced super-segment: cut back into the wire segments it came as (`mss` payload
    /// octets each), each rebuilt as an IP packet and received as if it came alone.
    fn receive_coalesced(&mut self, packet: &[u8], mss: u16, trusted: bool) -> io::Result<()> {
        let Some(Inbound::Tcp { src, dst, segment }) = self.validate(packet) else {
            return Ok(());
        };
        if !trusted && Segment::parse_checked(segment, src, dst).is_err() {
            self.counters.dropped_bad_tcp_checksum += 1;
            return Ok(());
        }
        let header_len = usize::from(segment.get(12).copied().unwrap_or(0) >> 4).saturating_mul(4);
        let (Some(header), Some(payload)) = (segment.get(..header_len), segment.get(header_len..))
        else {
            self.counters.dropped_truncated += 1;
            return Ok(());
        };
        // The pieces' checksums: none for an endpoint that trusts (the super-segment was
        // vouched for or verified), computed for one that verifies or for a filter (which
        // may keep a piece and inject it later as a plain packet).
        let tx = match self.checksum.rx {
            RxChecksum::Trust if self.filter.is_none() => TxChecksum::None,
            _ => TxChecksum::Compute,
        };
        let payload = [payload];
        let Ok(mut pieces) = Segmenter::new(header, &payload, usize::from(mss), src, dst, tx)
        else {
            self.counters.dropped_bad_header += 1;
            return Ok(());
        };
        // Each piece gets the super-segment's IP header, lengths (and the IPv4 identification)
        // fixed; IPv4 options, which nothing here interprets, are not repeated.
        let ip = match (packet.first().map(|byte| byte >> 4), src, dst) {
            (Some(4), IpAddr::V4(_), IpAddr::V4(_)) => {
                Ipv4Header::parse(packet).ok().map(|(header, _)| PieceIp::V4(header))
            }
            (Some(6), IpAddr::V6(_), IpAddr::V6(_)) => {
                Ipv6Header::parse(packet).ok().map(|(header, _)| PieceIp::V6(header))
            }
            _ => None,
        };
        let Some(ip) = ip else { return Ok(()) };
        let ip_len = match ip {
            PieceIp::V4(_) => Ipv4Header::LEN,
            PieceIp::V6(_) => Ipv6Header::LEN,
        };
        let mut buf = core::mem::take(&mut self.split);
        let mut result = Ok(());
        let mut index: u16 = 0;
        while let Ok(Some(len)) = pieces.next_segment(buf.get_mut(ip_len..).unwrap_or_default()) {
            let emitted = match ip {
                PieceIp::V4(mut v4) => {
                    v4.total_len = u16::try_from(ip_len + len).unwrap_or(u16::MAX);
                    v4.identification = v4.identification.wrapping_add(index);
                    v4.emit(&mut buf)
                }
                PieceIp::V6(mut v6) => {
                    v6.payload_len = u16::try_from(len).unwrap_or(u16::MAX);
                    // Extension headers, which `validate` skipped, are not repeated either.
                    v6.next_header = PROTOCOL_TCP;
                    v6.emit(&mut buf)
                }
            };
            index = index.wrapping_add(1);
            if emitted.is_err() {
                continue;
            }
            result = self.receive(buf.get(..ip_len + len).unwrap_or_default(), true, true);
            if result.is_err() {
                break;
            }
        }
        self.split = buf;
        result
    }

    /// Validates one IP packet and hands its TCP segment, or the ICMP error it carries, to
    /// the endpoint. `trusted`: the device vouched for the TCP checksum.
    fn receive(&mut self, packet: &[u8], filter: bool, trusted: bool) -> io::Result<()> {
        let now = self.now();
        let Some(inbound) = self.validate(packet) else { return Ok(()) };
        // An endpoint that trusts its input relies on the driver for what the device did not
        // vouch for (MUST-3).
        if !trusted
            && self.checksum.rx == RxChecksum::Trust
            && let Inbound::Tcp { src, dst, segment } = inbound
            && Segment::parse_checked(segment, src, dst).is_err()
        {
            self.counters.dropped_bad_tcp_checksum += 1;
            return Ok(());
        }
        if filter
            && let Some(hook) = self.filter.as_mut()
            && !hook(packet)
        {
            self.counters.filtered += 1;
            return Ok(());
        }
        if let Some(pcap) = self.pcap.as_mut() {
            pcap.write_packet(now, packet)?;
        }
        if self.trace {
            trace(now, Direction::In, packet);
        }
        match inbound {
            Inbound::Tcp { src, dst, segment } => {
                self.endpoint.handle_segment(now, src, dst, segment);
            }
            Inbound::Icmp(message) => {
                self.counters.icmp_errors += 1;
                self.endpoint.handle_icmp_error(
                    now,
                    message.error,
                    message.quoted_src,
                    message.quoted_dst,
                    message.quoted_tcp,
                );
            }
        }
        Ok(())
    }

    /// The TCP segment or ICMP error of a valid packet for us, or `None` (counted).
    fn validate<'p>(&mut self, packet: &'p [u8]) -> Option<Inbound<'p>> {
        let version = packet.first().map(|byte| byte >> 4);
        let parsed = match version {
            Some(4) => Ipv4Header::parse(packet).map(|(header, payload)| {
                let fragment = header.is_fragment();
                let addresses = (IpAddr::V4(header.src), IpAddr::V4(header.dst));
                (addresses, header.protocol, fragment, payload)
            }),
            Some(6) => match Ipv6Header::parse(packet) {
                Ok((header, payload)) => {
                    let addresses = (IpAddr::V6(header.src), IpAddr::V6(header.dst));
                    match skip_ipv6_extensions(header.next_header, payload) {
                        Ok(upper) => Ok((addresses, upper.protocol, upper.fragment, upper.payload)),
                        Err(_) => {
                            self.counters.dropped_ipv6_extension += 1;
                            return None;
                        }
                    }
                }
                Err(error) => Err(error),
            },
            Some(version) => Err(IpParseError::BadVersion { version }),
            None => Err(IpParseError::TooShort { len: 0 }),
        };
        let counters = &mut self.counters;
        let ((src, dst), protocol, fragment, payload) = match parsed {
            Ok(parsed) => parsed,
            Err(IpParseError::TooShort { .. } | IpParseError::BadTotalLength { .. }) => {
                counters.dropped_truncated += 1;
                return None;
            }
            Err(IpParseError::BadChecksum { .. }) => {
                counters.dropped_bad_checksum += 1;
                return None;
            }
            Err(_) => {
                counters.dropped_bad_header += 1;
                return None;
            }
        };
        if fragment && protocol == PROTOCOL_TCP {
            counters.dropped_fragment += 1;
            return None;
        }
        let icmp = match (src, dst) {
            (IpAddr::V4(_), IpAddr::V4(_)) => protocol == PROTOCOL_ICMP,
            (IpAddr::V6(_), IpAddr::V6(_)) => protocol == PROTOCOL_ICMPV6,
            (IpAddr::V4(_), IpAddr::V6(_)) | (IpAddr::V6(_), IpAddr::V4(_)) => false,
        };
        if fragment || (protocol != PROTOCOL_TCP && !icmp) {
            if !self.keep_other(packet) {
                if fragment {
                    self.counters.dropped_fragment += 1;
                } else {
                    self.counters.dropped_not_tcp += 1;
                }
            }
            return None;
        }
        let counters = &mut self.counters;
        if !self.any_destination && !self.addresses.is_empty() && !self.addresses.contains(&dst) {
            counters.dropped_not_ours += 1;
            return None;
        }
        if !icmp {
            return Some(Inbound::Tcp { src, dst, segment: payload });
        }
        let message = match (src, dst) {
            (IpAddr::V4(_), IpAddr::V4(dst)) => IcmpMessage::parse_v4(payload, dst),
            (IpAddr::V6(src), IpAddr::V6(dst)) => IcmpMessage::parse_v6(payload, src, dst),
            // `icmp` is false for mixed families (which no IP header can carry anyway).
            (IpAddr::V4(_), IpAddr::V6(_)) | (IpAddr::V6(_), IpAddr::V4(_)) => return None,
        };
        match message {
            Ok(message) => Some(Inbound::Icmp(message)),
            Err(IcmpParseError::NotAnError { .. }) => {
                if !self.keep_other(packet) {
                    self.counters.icmp_ignored += 1;
                }
                None
            }
            Err(IcmpParseError::QuotedNotTcp { .. }) => {
                if !self.keep_other(packet) {
                    self.counters.dropped_icmp_not_ours += 1;
                }
                None
            }
            Err(IcmpParseError::QuotedNotOurs) => {
                self.counters.dropped_icmp_not_ours += 1;
                None
            }
            Err(_) => {
                counters.dropped_icmp_malformed += 1;
                None
            }
        }
    }
}

/// Whether the IP header at the front of `packet` names TCP as its payload (an IPv6 packet
/// with extension headers does not: it is taken for something else, which costs only a
/// checksum finished that needed not be).
fn carries_tcp(packet: &[u8]) -> bool {
    let protocol = match packet.first().map(|byte| byte >> 4) {
        Some(4) => packet.get(9),
        Some(6) => packet.get(6),
        _ => None,
    };
    protocol == Some(&PROTOCOL_TCP)
}

/// IPv6 extension headers walked at most before the packet is refused: a bound on the work
/// one packet costs (RFC 8200 §4.1 recommends no more than one of each kind but destination
/// options, which may come twice).
const MAX_IPV6_EXTENSIONS: usize = 8;

/// `Next Header` values of the IPv6 extension headers this driver knows (RFC 8200 §4).
const IPV6_HOP_BY_HOP: u8 = 0;
const IPV6_ROUTING: u8 = 43;
const IPV6_FRAGMENT: u8 = 44;
const IPV6_DESTINATION_OPTIONS: u8 = 60;

/// What follows an IPv6 packet's extension headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv6Upper<'p> {
    /// The upper-layer protocol (TCP, ICMPv6, UDP, …); after a fragment header, the one the
    /// fragment header names.
    pub protocol: u8,
    /// A fragment header was met: the payload is (a piece of) a fragment, never reassembled
    /// here.
    pub fragment: bool,
    /// The octets after the last extension header walked.
    pub payload: &'p [u8],
}

/// Why an IPv6 packet's extension headers are refused (counted in
/// [`DriverCounters::dropped_ipv6_extension`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ipv6ExtensionError {
    /// An extension header runs past the payload.
    Truncated,
    /// More than eight extension headers (a bound on the work one packet costs).
    TooMany,
    /// A hop-by-hop options header anywhere but first (RFC 8200 §4.3: it must follow the
    /// fixed header immediately).
    MisplacedHopByHop,
    /// A routing header with segments left: the packet is not at its final destination
    /// (RFC 8200 §4.4), and its TCP pseudo-header would name another address.
    SegmentsLeft,
}

/// Walks the IPv6 extension headers starting with `next_header` at the front of `payload`
/// (RFC 8200 §4): hop-by-hop options, routing (with no segments left) and destination
/// options are skipped by their length field — their options concern the IP layer, and an
/// option a node must act on is one this endpoint, as a final destination without routing,
/// has no use for — and a fragment header ends the walk with
/// [`Ipv6Upper::fragment`] set (never reassembled here). Any other value is the upper-layer
/// protocol. Never reads past `payload`.
///
/// # Errors
///
/// [`Ipv6ExtensionError`]: a header cut short, too many headers, a misplaced hop-by-hop
/// header, or a routing header with segments left.
pub fn skip_ipv6_extensions(
    mut next_header: u8,
    mut payload: &[u8],
) -> Result<Ipv6Upper<'_>, Ipv6ExtensionError> {
    for walked in 0..=MAX_IPV6_EXTENSIONS {
        match next_header {
            IPV6_HOP_BY_HOP | IPV6_ROUTING | IPV6_DESTINATION_OPTIONS | IPV6_FRAGMENT
                if walked == MAX_IPV6_EXTENSIONS =>
            {
                return Err(Ipv6ExtensionError::TooMany);
            }
            IPV6_HOP_BY_HOP if walked > 0 => return Err(Ipv6ExtensionError::MisplacedHopByHop),
            IPV6_FRAGMENT => {
                // Next header, reserved, offset and flags, identification: 8 octets.
                let (Some(&inner), Some(rest)) = (payload.first(), payload.get(8..)) else {
                    return Err(Ipv6ExtensionError::Truncated);
                };
                return Ok(Ipv6Upper { protocol: inner, fragment: true, payload: rest });
            }
            IPV6_HOP_BY_HOP | IPV6_ROUTING | IPV6_DESTINATION_OPTIONS => {
                let (Some(&inner), Some(&units)) = (payload.first(), payload.get(1)) else {
                    return Err(Ipv6ExtensionError::Truncated);
                };
                // Routing: type at 2, segments left at 3 (RFC 8200 §4.4).
                if next_header == IPV6_ROUTING && payload.get(3).is_some_and(|&left| left != 0) {
                    return Err(Ipv6ExtensionError::SegmentsLeft);
                }
                // The length counts 8-octet units beyond the first 8.
                let len = (usize::from(units) + 1) * 8;
                let Some(rest) = payload.get(len..) else {
                    return Err(Ipv6ExtensionError::Truncated);
                };
                next_header = inner;
                payload = rest;
            }
            protocol => return Ok(Ipv6Upper { protocol, fragment: false, payload }),
        }
    }
    Err(Ipv6ExtensionError::TooMany)
}

/// One line on stderr: time, direction, addresses and the segment in tcpdump style (or the
/// ICMP error and what it quotes).
fn trace(now: Instant, direction: Direction, packet: &[u8]) {
    let parsed = match packet.first().map(|byte| byte >> 4) {
        Some(4) => Ipv4Header::parse(packet).ok().map(|(h, payload)| {
            let icmp = (h.protocol == PROTOCOL_ICMP)
                .then(|| IcmpMessage::parse_v4(payload, h.dst).ok())
                .flatten();
            (IpAddr::V4(h.src), IpAddr::V4(h.dst), payload, icmp)
        }),
        Some(6) => Ipv6Header::parse(packet).ok().and_then(|(h, payload)| {
            let upper = skip_ipv6_extensions(h.next_header, payload).ok()?;
            let icmp = (upper.protocol == PROTOCOL_ICMPV6)
                .then(|| IcmpMessage::parse_v6(upper.payload, h.src, h.dst).ok())
                .flatten();
            Some((IpAddr::V6(h.src), IpAddr::V6(h.dst), upper.payload, icmp))
        }),
        _ => None,
    };
    let Some((src, dst, tcp, icmp)) = parsed else { return };
    let arrow = match direction {
        Direction::In => "in ",
        Direction::Out => "out",
    };
    if let Some(message) = icmp {
        let quoted = message.quoted_tcp;
        let port = |at: usize| {
            quoted.get(at..).and_then(<[u8]>::first_chunk).map_or(0, |p| u16::from_be_bytes(*p))
        };
        let seq =
            quoted.get(4..).and_then(<[u8]>::first_chunk).map_or(0, |s| u32::from_be_bytes(*s));
        std::eprintln!(
            "{now} {arrow} {src} > {dst}: ICMP {:?} about {}.{} > {}.{} seq {seq}",
            message.error,
            message.quoted_src,
            port(0),
            message.quoted_dst,
            port(2),
        );
        return;
    }
    match Segment::parse(tcp) {
        Ok(segment) => std::eprintln!(
            "{now} {arrow} {src}.{} > {dst}.{}: {segment}",
            segment.header.src_port,
            segment.header.dst_port
        ),
        Err(error) => std::eprintln!("{now} {arrow} {src} > {dst}: unparsable segment: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::endpoint::EndpointConfig;
    use alloc::collections::VecDeque;
    use core::net::{Ipv4Addr, SocketAddr};

    /// A transport that is two queues.
    #[derive(Default)]
    struct Queues {
        inbound: VecDeque<Vec<u8>>,
        outbound: Vec<Vec<u8>>,
    }

    impl PacketTransport for Queues {
        fn send(&mut self, packet: &[u8]) -> io::Result<()> {
            self.outbound.push(packet.to_vec());
            Ok(())
        }

        fn recv(&mut self, buf: &mut [u8], _timeout: Duration) -> io::Result<Option<usize>> {
            let Some(packet) = self.inbound.pop_front() else { return Ok(None) };
            let len = packet.len().min(buf.len());
            buf[..len].copy_from_slice(&packet[..len]);
            Ok(Some(len))
        }

        fn mtu(&self) -> usize {
            1500
        }
    }

    const OURS: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const PEER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

    fn driver() -> Driver<Queues> {
        let endpoint = Endpoint::new(EndpointConfig::new(Config::new([1; 16]), [2; 16]));
        let mut driver = Driver::new(endpoint, Queues::default());
        driver.add_address(IpAddr::V4(OURS));
        driver
    }

    /// A SYN from the peer to port 80 of `dst`, as a whole IPv4 packet.
    fn syn_packet(dst: Ipv4Addr) -> Vec<u8> {
        let header = crate::wire::TcpHeader {
            src_port: 4000,
            dst_port: 80,
            seq: crate::SeqNum::new(1),
            ack: crate::SeqNum::new(0),
            flags: crate::wire::Flags::SYN,
            window: 1000,
            urgent_ptr: 0,
            options: crate::wire::Options::NONE,
        };
        let mut tcp = [0u8; 20];
        let len = header.emit(&[], IpAddr::V4(PEER), IpAddr::V4(dst), &mut tcp).unwrap();
        super::super::pcap::ipv4_packet(PEER, dst, &tcp[..len])
    }

    fn feed(driver: &mut Driver<Queues>, packet: Vec<u8>) {
        driver.transport.inbound.push_back(packet);
        driver.poll(Duration::ZERO).unwrap();
    }

    #[test]
    fn a_valid_syn_to_a_closed_port_draws_a_rst_ack_in_an_ipv4_packet() {
        let mut driver = driver();
        feed(&mut driver, syn_packet(OURS));
        let sent = driver.transport.outbound.pop().expect("a reply");
        let (ip, tcp) = Ipv4Header::parse(&sent).unwrap();
        assert_eq!((ip.src, ip.dst, ip.protocol, ip.dont_fragment), (OURS, PEER, 6, true));
        let segment = Segment::parse_checked(tcp, IpAddr::V4(OURS), IpAddr::V4(PEER)).unwrap();
        assert_eq!(segment.header.flags, crate::wire::Flags::RST | crate::wire::Flags::ACK);
        assert_eq!(segment.header.ack, crate::SeqNum::new(2));
        assert_eq!(driver.counters().packets_out, 1);
    }

    #[test]
    fn a_listener_behind_the_driver_answers_syn_with_syn_ack() {
        let mut driver = driver();
        let local = SocketAddr::new(IpAddr::V4(OURS), 80);
        driver.endpoint_mut().listen(local, 4).unwrap();
        feed(&mut driver, syn_packet(OURS));
        let sent = driver.transport.outbound.pop().expect("a SYN-ACK");
        let (_, tcp) = Ipv4Header::parse(&sent).unwrap();
        let segment = Segment::parse(tcp).unwrap();
        assert_eq!(segment.header.flags, crate::wire::Flags::SYN | crate::wire::Flags::ACK);
    }

    #[test]
    fn malformed_packets_are_dropped_and_counted_never_fed() {
        let mut driver = driver();
        let good = syn_packet(OURS);
        // Truncated IP header.
        feed(&mut driver, good[..12].to_vec());
        // Total length past the end.
        feed(&mut driver, good[..good.len() - 1].to_vec());
        // Wrong header checksum.
        let mut bad_sum = good.clone();
        bad_sum[10] ^= 0xff;
        feed(&mut driver, bad_sum);
        // Not TCP: protocol 17, checksum redone.
        let mut udp = good.clone();
        udp[9] = 17;
        refresh_checksum(&mut udp);
        feed(&mut driver, udp);
        // A fragment: MF set.
        let mut fragment = good.clone();
        fragment[6] |= 0x20;
        refresh_checksum(&mut fragment);
        feed(&mut driver, fragment);
        // Version 5.
        let mut version = good.clone();
        version[0] = 0x55;
        feed(&mut driver, version);
        // Empty.
        feed(&mut driver, Vec::new());
        // For someone else.
        feed(&mut driver, syn_packet(Ipv4Addr::new(10, 0, 0, 9)));
        let c = *driver.counters();
        assert_eq!(c.packets_in, 8);
        assert_eq!(c.dropped_truncated, 3);
        assert_eq!(c.dropped_bad_checksum, 1);
        assert_eq!(c.dropped_not_tcp, 1);
        assert_eq!(c.dropped_fragment, 1);
        assert_eq!(c.dropped_bad_header, 1);
        assert_eq!(c.dropped_not_ours, 1);
        assert!(driver.transport.outbound.is_empty(), "nothing reached the endpoint");
        assert_eq!(driver.endpoint().counters().segments_in, 0);
    }

    /// An IPv6 extension header: `next`, its length in 8-octet units beyond the first, and
    /// padding (a PadN option, or zeros for a routing header's fields after `extra`).
    fn extension(next: u8, units: u8, extra: &[u8]) -> Vec<u8> {
        let mut header = vec![next, units];
        header.extend_from_slice(extra);
        header.resize((usize::from(units) + 1) * 8, 0);
        header
    }

    /// `tcp_packet` over IPv6 with `extensions` (whose first `Next Header` is `first`) between
    /// the fixed header and the TCP header.
    fn syn_v6_behind(first: u8, extensions: &[u8]) -> Vec<u8> {
        let (ours, peer) = (IpAddr::V6(OURS_V6), IpAddr::V6(PEER_V6));
        let plain = tcp_packet(peer, ours, crate::wire::Flags::SYN, 1, 0);
        let mut payload = extensions.to_vec();
        payload.extend_from_slice(&plain[Ipv6Header::LEN..]);
        ip_packet(peer, ours, first, &payload)
    }

    const OURS_V6: core::net::Ipv6Addr = core::net::Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);
    const PEER_V6: core::net::Ipv6Addr = core::net::Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);

    #[test]
    fn ipv6_extension_headers_are_skipped_by_their_length_and_refused_when_they_must_be() {
        let tcp = [0xaa_u8; 20];
        let with = |parts: &[Vec<u8>]| {
            let mut payload: Vec<u8> = parts.concat();
            payload.extend_from_slice(&tcp);
            payload
        };
        // Hop-by-hop (PadN over 6 octets), destination options of 16 octets, routing with no
        // segments left: all skipped, TCP follows.
        let payload = with(&[
            extension(IPV6_DESTINATION_OPTIONS, 0, &[1, 4]),
            extension(IPV6_ROUTING, 1, &[1, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            extension(PROTOCOL_TCP, 0, &[4, 0]),
        ]);
        let upper = skip_ipv6_extensions(IPV6_HOP_BY_HOP, &payload).unwrap();
        assert_eq!(upper, Ipv6Upper { protocol: PROTOCOL_TCP, fragment: false, payload: &tcp });
        // No extension: the payload as it is.
        let upper = skip_ipv6_extensions(PROTOCOL_TCP, &tcp).unwrap();
        assert_eq!(upper.payload, &tcp);
        // A fragment header ends the walk, naming the protocol inside.
        let mut fragment = vec![PROTOCOL_TCP, 0, 0, 1, 0, 0, 0, 7];
        fragment.extend_from_slice(&tcp);
        let upper = skip_ipv6_extensions(IPV6_FRAGMENT, &fragment).unwrap();
        assert_eq!(upper, Ipv6Upper { protocol: PROTOCOL_TCP, fragment: true, payload: &tcp });
        // Refused: segments left, a hop-by-hop header second, cut short, too many.
        let routed = with(&[extension(PROTOCOL_TCP, 0, &[0, 1])]);
        assert_eq!(
            skip_ipv6_extensions(IPV6_ROUTING, &routed),
            Err(Ipv6ExtensionError::SegmentsLeft)
        );
        let late = with(&[extension(IPV6_HOP_BY_HOP, 0, &[]), extension(PROTOCOL_TCP, 0, &[])]);
        assert_eq!(
            skip_ipv6_extensions(IPV6_DESTINATION_OPTIONS, &late),
            Err(Ipv6ExtensionError::MisplacedHopByHop)
        );
        let long = extension(PROTOCOL_TCP, 3, &[]);
        for cut in [0, 1, 7, 31] {
            assert_eq!(
                skip_ipv6_extensions(IPV6_DESTINATION_OPTIONS, &long[..cut]),
                Err(Ipv6ExtensionError::Truncated),
                "{cut} octets"
            );
        }
        assert_eq!(
            skip_ipv6_extensions(IPV6_FRAGMENT, &[6; 7]),
            Err(Ipv6ExtensionError::Truncated)
        );
        let chain: Vec<Vec<u8>> =
            (0..MAX_IPV6_EXTENSIONS).map(|_| extension(IPV6_DESTINATION_OPTIONS, 0, &[])).collect();
        assert_eq!(
            skip_ipv6_extensions(IPV6_DESTINATION_OPTIONS, &with(&chain)),
            Err(Ipv6ExtensionError::TooMany)
        );
        let mut allowed = chain;
        allowed.pop();
        allowed.push(extension(PROTOCOL_TCP, 0, &[]));
        assert!(skip_ipv6_extensions(IPV6_DESTINATION_OPTIONS, &with(&allowed)).is_ok());
    }

    #[test]
    fn a_syn_behind_ipv6_extension_headers_is_answered_and_refused_ones_are_counted() {
        let endpoint = Endpoint::new(EndpointConfig::new(Config::new([1; 16]), [2; 16]));
        let mut driver = Driver::new(endpoint, Queues::default());
        driver.add_address(IpAddr::V6(OURS_V6));
        driver.endpoint_mut().listen(SocketAddr::new(IpAddr::V6(OURS_V6), 80), 4).unwrap();
        let skipped =
            [extension(IPV6_DESTINATION_OPTIONS, 0, &[1, 4]), extension(PROTOCOL_TCP, 1, &[1, 12])]
                .concat();
        feed(&mut driver, syn_v6_behind(IPV6_HOP_BY_HOP, &skipped));
        let sent = driver.transport.outbound.pop().expect("a SYN-ACK");
        let (ip, tcp) = Ipv6Header::parse(&sent).unwrap();
        assert_eq!((ip.src, ip.dst, ip.next_header), (OURS_V6, PEER_V6, PROTOCOL_TCP));
        let segment =
            Segment::parse_checked(tcp, IpAddr::V6(OURS_V6), IpAddr::V6(PEER_V6)).unwrap();
        assert_eq!(segment.header.flags, crate::wire::Flags::SYN | crate::wire::Flags::ACK);
        assert_eq!(segment.header.ack, crate::SeqNum::new(2));
        // A routing header with a segment left, a truncated one, a fragment: none is fed.
        feed(&mut driver, syn_v6_behind(IPV6_ROUTING, &extension(PROTOCOL_TCP, 0, &[0, 1])));
        feed(&mut driver, syn_v6_behind(IPV6_DESTINATION_OPTIONS, &[PROTOCOL_TCP, 200]));
        let fragment = [PROTOCOL_TCP, 0, 0, 1, 0, 0, 0, 7];
        feed(&mut driver, syn_v6_behind(IPV6_FRAGMENT, &fragment));
        let c = *driver.counters();
        assert_eq!((c.packets_in, c.dropped_ipv6_extension, c.dropped_fragment), (4, 2, 1));
        assert!(driver.transport.outbound.is_empty(), "nothing more was answered");
        assert_eq!(driver.endpoint().counters().segments_in, 1);
    }

    #[test]
    fn a_filtered_packet_is_held_and_can_be_injected_later() {
        let mut driver = driver();
        driver.set_inbound_filter(Box::new(|_| false));
        feed(&mut driver, syn_packet(OURS));
        assert!(driver.transport.outbound.is_empty());
        assert_eq!(driver.counters().filtered, 1);
        driver.inject(&syn_packet(OURS)).unwrap();
        assert_eq!(driver.transport.outbound.len(), 1, "the injected SYN was answered");
    }

    /// An IPv4 or IPv6 packet of `protocol` carrying `payload`.
    fn ip_packet(src: IpAddr, dst: IpAddr, protocol: u8, payload: &[u8]) -> Vec<u8> {
        let mut packet = vec![0u8; Ipv6Header::LEN];
        let written = match (src, dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => Ipv4Header {
                src,
                dst,
                protocol,
                ttl: 64,
                identification: 0,
                dont_fragment: false,
                more_fragments: false,
                fragment_offset: 0,
                total_len: (Ipv4Header::LEN + payload.len()) as u16,
                dscp_ecn: 0,
            }
            .emit(&mut packet)
            .unwrap(),
            (IpAddr::V6(src), IpAddr::V6(dst)) => Ipv6Header {
                src,
                dst,
                next_header: protocol,
                hop_limit: 64,
                payload_len: payload.len() as u16,
                traffic_class: 0,
                flow_label: 0,
            }
            .emit(&mut packet)
            .unwrap(),
            _ => unreachable!("one family per test"),
        };
        packet.truncate(written);
        packet.extend_from_slice(payload);
        packet
    }

    /// A segment from port 4000 of `src` to port 80 of `dst`, as a whole IP packet.
    fn tcp_packet(
        src: IpAddr,
        dst: IpAddr,
        flags: crate::wire::Flags,
        seq: u32,
        ack: u32,
    ) -> Vec<u8> {
        let mut header = crate::wire::TcpHeader {
            src_port: 4000,
            dst_port: 80,
            seq: crate::SeqNum::new(seq),
            ack: crate::SeqNum::new(ack),
            flags,
            window: 65_535,
            urgent_ptr: 0,
            options: crate::wire::Options::NONE,
        };
        if flags.contains(crate::wire::Flags::SYN) {
            // The MSS of an Ethernet link (MUST-14).
            header.options.mss = Some(if src.is_ipv4() { 1460 } else { 1440 });
        }
        let mut tcp = [0u8; 24];
        let len = header.emit(&[], src, dst, &mut tcp).unwrap();
        ip_packet(src, dst, PROTOCOL_TCP, &tcp[..len])
    }

    /// The TCP segment inside an IP packet the driver sent.
    fn sent_segment(packet: &[u8]) -> Segment<'_> {
        let tcp = match packet[0] >> 4 {
            4 => Ipv4Header::parse(packet).unwrap().1,
            _ => Ipv6Header::parse(packet).unwrap().1,
        };
        Segment::parse(tcp).unwrap()
    }

    /// A driver for `ours` with a connection from the peer at `peer` accepted on port 80 and
    /// 3 000 octets sent on it (two full segments and a short one, the packets in
    /// `transport.outbound`).
    fn established_with_data_in_flight(
        ours: IpAddr,
        peer: IpAddr,
    ) -> (Driver<Queues>, crate::ConnectionHandle) {
        use crate::wire::Flags;
        let endpoint = Endpoint::new(EndpointConfig::new(Config::new([1; 16]), [2; 16]));
        let mut driver = Driver::new(endpoint, Queues::default());
        driver.add_address(ours);
        let local = SocketAddr::new(ours, 80);
        driver.endpoint_mut().listen(local, 4).unwrap();
        feed(&mut driver, tcp_packet(peer, ours, Flags::SYN, 100, 0));
        let syn_ack = driver.transport.outbound.pop().expect("a SYN-ACK");
        let iss = sent_segment(&syn_ack).header.seq.get();
        feed(&mut driver, tcp_packet(peer, ours, Flags::ACK, 101, iss.wrapping_add(1)));
        let handle = driver.endpoint_mut().accept(local).unwrap().expect("accepted");
        let now = driver.now();
        assert_eq!(driver.endpoint_mut().send(now, handle, &[7; 3000]), Ok(3000));
        driver.flush().unwrap();
        let lengths: Vec<usize> =
            driver.transport.outbound.iter().map(|p| sent_segment(p).payload.len()).collect();
        let mss = driver.endpoint().status(handle).unwrap().effective_mss;
        assert_eq!(lengths, [usize::from(mss), usize::from(mss), 3000 - 2 * usize::from(mss)]);
        (driver, handle)
    }

    /// An ICMPv4 message (checksummed) from `router` to `dst`.
    fn icmp_v4(router: Ipv4Addr, dst: Ipv4Addr, head: [u8; 8], quoted: &[u8]) -> Vec<u8> {
        let mut icmp = head.to_vec();
        icmp[2..4].fill(0);
        icmp.extend_from_slice(quoted);
        let mut sum = crate::wire::checksum::Checksum::new();
        sum.add_bytes(&icmp);
        icmp[2..4].copy_from_slice(&sum.finish().to_be_bytes());
        ip_packet(IpAddr::V4(router), IpAddr::V4(dst), PROTOCOL_ICMP, &icmp)
    }

    const ROUTER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

    #[test]
    fn icmp_fragmentation_needed_reaches_the_connection_and_shrinks_its_segments_must_54() {
        let (mut driver, handle) = established_with_data_in_flight(OURS.into(), PEER.into());
        let first = driver.transport.outbound.remove(0);
        driver.transport.outbound.clear();
        let first_seq = sent_segment(&first).header.seq;
        // A router on the way: "fragmentation needed and DF set", next-hop MTU 1000, quoting
        // the IP header and the first 8 octets of our first data segment (RFC 792).
        let packet = icmp_v4(ROUTER, OURS, [3, 4, 0, 0, 0, 0, 0x03, 0xe8], &first[..28]);
        feed(&mut driver, packet);
        assert_eq!(driver.counters().icmp_errors, 1);
        assert_eq!(driver.endpoint().counters().icmp_accepted, 1);
        assert_eq!(driver.endpoint().status(handle).unwrap().effective_mss, 960);
        // The segment the router dropped goes out again at once, in 1 000-octet packets.
        let resent = driver.transport.outbound.first().expect("a resent segment");
        assert_eq!(resent.len(), 1000);
        assert_eq!(sent_segment(resent).header.seq, first_seq);
        assert_eq!(sent_segment(resent).payload.len(), 960);
    }

    #[test]
    fn icmpv6_packet_too_big_with_its_pseudo_header_checksum_reaches_the_connection_must_54() {
        let ours = IpAddr::V6(core::net::Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2));
        let peer = IpAddr::V6(core::net::Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1));
        let router = IpAddr::V6(core::net::Ipv6Addr::new(0xfd00, 9, 0, 0, 0, 0, 0, 1));
        let (mut driver, handle) = established_with_data_in_flight(ours, peer);
        assert_eq!(driver.endpoint().status(handle).unwrap().effective_mss, 1440);
        let first = driver.transport.outbound.remove(0);
        driver.transport.outbound.clear();
        // Packet Too Big, MTU 1280 (RFC 4443 §3.2), quoting as much as fits 1280 octets.
        let mut icmp = vec![2, 0, 0, 0, 0, 0, 0x05, 0x00];
        icmp.extend_from_slice(&first[..1280 - 48]);
        let len = icmp.len() as u32;
        let mut sum = crate::wire::checksum::pseudo_header(router, ours, 58, len).unwrap();
        sum.add_bytes(&icmp);
        icmp[2..4].copy_from_slice(&sum.finish().to_be_bytes());
        let mut forged = ip_packet(peer, ours, PROTOCOL_ICMPV6, &icmp);
        // From another source the same octets fail the pseudo-header checksum.
        feed(&mut driver, forged.clone());
        assert_eq!(driver.counters().dropped_icmp_malformed, 1);
        assert_eq!(driver.endpoint().status(handle).unwrap().effective_mss, 1440);
        let IpAddr::V6(router_v6) = router else { unreachable!() };
        forged[8..24].copy_from_slice(&router_v6.octets());
        feed(&mut driver, forged);
        assert_eq!(driver.counters().icmp_errors, 1);
        assert_eq!(driver.endpoint().counters().icmp_accepted, 1);
        // 1280 − 40 (IPv6) − 20 (TCP).
        assert_eq!(driver.endpoint().status(handle).unwrap().effective_mss, 1220);
        let resent = driver.transport.outbound.first().expect("a resent segment");
        assert_eq!(resent.len(), 1280);
    }

    #[test]
    fn malformed_foreign_and_informational_icmp_is_counted_never_fed() {
        let (mut driver, handle) = established_with_data_in_flight(OURS.into(), PEER.into());
        let first = driver.transport.outbound.remove(0);
        driver.transport.outbound.clear();
        let head = [3, 4, 0, 0, 0, 0, 0x03, 0xe8];
        let good = icmp_v4(ROUTER, OURS, head, &first[..28]);
        // Truncated below the ICMP header, and a quote too short for the sequence number.
        let mut truncated = good[..26].to_vec();
        truncated[2..4].copy_from_slice(&26u16.to_be_bytes());
        refresh_checksum(&mut truncated);
        feed(&mut driver, truncated);
        feed(&mut driver, icmp_v4(ROUTER, OURS, head, &first[..27]));
        // Wrong ICMP checksum.
        let mut bad_sum = good.clone();
        bad_sum[22] ^= 0xff;
        feed(&mut driver, bad_sum);
        // Echo request: no error, nothing for TCP.
        feed(&mut driver, icmp_v4(ROUTER, OURS, [8, 0, 0, 0, 0, 1, 0, 1], b"ping"));
        // A quote of someone else's packet, and of a UDP packet of ours.
        let mut theirs = first[..28].to_vec();
        theirs[12..16].copy_from_slice(&[10, 0, 0, 9]);
        feed(&mut driver, icmp_v4(ROUTER, OURS, head, &theirs));
        let mut udp = first[..28].to_vec();
        udp[9] = 17;
        feed(&mut driver, icmp_v4(ROUTER, OURS, head, &udp));
        // An ICMP error for an address that is not ours.
        feed(&mut driver, icmp_v4(ROUTER, Ipv4Addr::new(10, 0, 0, 9), head, &first[..28]));
        let c = *driver.counters();
        assert_eq!(c.dropped_icmp_malformed, 3);
        assert_eq!(c.icmp_ignored, 1);
        assert_eq!(c.dropped_icmp_not_ours, 2);
        assert_eq!(c.dropped_not_ours, 1);
        assert_eq!(c.icmp_errors, 0);
        assert_eq!(driver.endpoint().counters().icmp_accepted, 0);
        assert_eq!(driver.endpoint().counters().icmp_dropped, 0);
        assert_eq!(driver.endpoint().status(handle).unwrap().effective_mss, 1460);
        assert!(driver.transport.outbound.is_empty(), "nothing was resent");
        // The good one, last, is believed.
        feed(&mut driver, good);
        assert_eq!(driver.endpoint().status(handle).unwrap().effective_mss, 960);
    }

    #[test]
    fn segment_in_an_ipv4_packet_with_options_is_delivered_must_50() {
        let mut driver = driver();
        let local = SocketAddr::new(IpAddr::V4(OURS), 80);
        driver.endpoint_mut().listen(local, 4).unwrap();
        let plain = syn_packet(OURS);
        // IHL 8: a record-route option (RFC 791: type 7, length 11, pointer 4, two empty
        // slots), then NOP and end-of-list to fill the last word. The crate interprets no IP
        // option; an unknown one must be skipped, not refused (MUST-50).
        let options = [7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0];
        let mut packet = plain[..20].to_vec();
        packet.extend_from_slice(&options[..12]);
        packet.extend_from_slice(&plain[20..]);
        packet[0] = 0x48;
        let total = packet.len() as u16;
        packet[2..4].copy_from_slice(&total.to_be_bytes());
        packet[10..12].fill(0);
        let mut sum = crate::wire::checksum::Checksum::new();
        sum.add_bytes(&packet[..32]);
        packet[10..12].copy_from_slice(&sum.finish().to_be_bytes());
        feed(&mut driver, packet);
        assert_eq!(driver.counters().dropped_bad_header, 0);
        assert_eq!(driver.endpoint().counters().segments_in, 1);
        let sent = driver.transport.outbound.pop().expect("a SYN-ACK");
        let segment = sent_segment(&sent);
        assert_eq!(segment.header.flags, crate::wire::Flags::SYN | crate::wire::Flags::ACK);
        assert_eq!(segment.header.ack, crate::SeqNum::new(2));
    }

    #[test]
    fn dont_fragment_is_set_by_default_and_can_be_cleared() {
        let mut driver = driver();
        driver.set_dont_fragment(false);
        feed(&mut driver, syn_packet(OURS));
        let sent = driver.transport.outbound.pop().expect("a reply");
        assert!(!Ipv4Header::parse(&sent).unwrap().0.dont_fragment);
    }

    /// A transport that offloads like a TUN device with the virtio-net header: it takes
    /// super-segments and partial checksums, and hands up packets with what the device
    /// said about them.
    #[derive(Default)]
    struct Offloaded {
        inbound: VecDeque<(Vec<u8>, RxMeta)>,
        /// Each segment sent: the packet gathered whole, its `segment_size` and checksum form.
        outbound: Vec<(Vec<u8>, usize, TxChecksum)>,
        /// `recv_batch` calls that returned packets.
        batches: usize,
    }

    impl PacketTransport for Offloaded {
        fn send(&mut self, packet: &[u8]) -> io::Result<()> {
            self.outbound.push((packet.to_vec(), 0, TxChecksum::Compute));
            Ok(())
        }

        fn recv(&mut self, _buf: &mut [u8], _timeout: Duration) -> io::Result<Option<usize>> {
            unreachable!("the driver reads in batches")
        }

        fn mtu(&self) -> usize {
            1500
        }

        fn offloads(&self) -> Offloads {
            let mut offloads = Offloads::NONE;
            offloads.tcp_segmentation = true;
            offloads.tx_checksum = TxChecksum::PseudoHeader;
            offloads.rx_checksum = true;
            offloads.rx_coalesced = true;
            offloads.batching = true;
            offloads
        }

        fn recv_batch(&mut self, batch: &mut RxBatch, _timeout: Duration) -> io::Result<()> {
            let before = batch.len();
            while let Some((packet, meta)) = self.inbound.front() {
                let Some(room) = batch.room(packet.len()) else { break };
                room[..packet.len()].copy_from_slice(packet);
                batch.commit(packet.len(), *meta);
                self.inbound.pop_front();
            }
            if batch.len() > before {
                self.batches += 1;
            }
            Ok(())
        }

        fn send_segment(&mut self, segment: &OutSegment<'_>, _: &mut Vec<u8>) -> io::Result<()> {
            let mut packet = segment.headers.to_vec();
            for slice in segment.payload {
                packet.extend_from_slice(slice);
            }
            self.outbound.push((packet, segment.segment_size, segment.checksum));
            Ok(())
        }
    }

    const MSS: usize = 1460;

    /// A driver made by `with_config` (or `new`, `trusting` false) over [`Offloaded`], with a
    /// connection from the peer accepted on port 80; the handshake's packets are cleared.
    fn offloaded(trusting: bool) -> (Driver<Offloaded>, crate::ConnectionHandle, u32, u32) {
        use crate::wire::Flags;
        let config = EndpointConfig::new(Config::new([1; 16]), [2; 16]);
        let mut driver = if trusting {
            Driver::with_config(config, Offloaded::default())
        } else {
            Driver::new(Endpoint::new(config), Offloaded::default())
        };
        driver.add_address(IpAddr::V4(OURS));
        let local = SocketAddr::new(IpAddr::V4(OURS), 80);
        driver.endpoint_mut().listen(local, 4).unwrap();
        let (peer, ours) = (IpAddr::V4(PEER), IpAddr::V4(OURS));
        let syn = tcp_packet(peer, ours, Flags::SYN, 100, 0);
        driver.transport.inbound.push_back((syn, RxMeta::PLAIN));
        driver.poll(Duration::ZERO).unwrap();
        let (syn_ack, _, _) = driver.transport.outbound.pop().expect("a SYN-ACK");
        let iss = sent_segment(&syn_ack).header.seq.get().wrapping_add(1);
        let ack = tcp_packet(peer, ours, Flags::ACK, 101, iss);
        driver.transport.inbound.push_back((ack, RxMeta::PLAIN));
        driver.poll(Duration::ZERO).unwrap();
        let handle = driver.endpoint_mut().accept(local).unwrap().expect("accepted");
        driver.transport.outbound.clear();
        driver.transport.batches = 0;
        driver.counters = DriverCounters::default();
        (driver, handle, 101, iss)
    }

    /// A data segment from the peer carrying `payload`, as an IPv4 packet, its checksum
    /// complete or (`partial`) only the pseudo-header's sum, as the kernel hands it up with
    /// `NEEDS_CSUM`.
    fn data_packet(seq: u32, ack: u32, payload: &[u8], partial: bool) -> Vec<u8> {
        let header = crate::wire::TcpHeader {
            src_port: 4000,
            dst_port: 80,
            seq: crate::SeqNum::new(seq),
            ack: crate::SeqNum::new(ack),
            flags: crate::wire::Flags::ACK | crate::wire::Flags::PSH,
            window: 65_535,
            urgent_ptr: 0,
            options: crate::wire::Options::NONE,
        };
        let tx = if partial { TxChecksum::PseudoHeader } else { TxChecksum::Compute };
        let mut tcp = vec![0u8; 20 + payload.len()];
        let (src, dst) = (IpAddr::V4(PEER), IpAddr::V4(OURS));
        let len = header.emit_with_checksum(&[payload], src, dst, &mut tcp, tx).unwrap();
        ip_packet(src, dst, PROTOCOL_TCP, &tcp[..len])
    }

    const PARTIAL: RxMeta = RxMeta {
        checksum: RxChecksumState::Partial { start: 20, offset: 16 },
        tcp_gso_size: None,
        datagram_size: 0,
    };

    fn read_all(driver: &mut Driver<Offloaded>, handle: crate::ConnectionHandle) -> Vec<u8> {
        let mut out = vec![0u8; 1 << 16];
        let len = driver.endpoint_mut().recv(handle, &mut out).unwrap_or(0);
        out.truncate(len);
        out
    }

    #[test]
    fn bulk_output_leaves_as_one_super_segment_the_kernel_cuts_into_the_same_wire_segments() {
        let (mut driver, handle, _, iss) = offloaded(true);
        let data: Vec<u8> = (0..4 * MSS + 100).map(|i| (i * 7 % 251) as u8).collect();
        let now = driver.now();
        assert_eq!(driver.endpoint_mut().send(now, handle, &data), Ok(data.len()));
        driver.flush().unwrap();
        // The initial window (10 segments) takes it all: one super-segment of five pieces (a
        // super-segment carries at most half of cwnd).
        assert_eq!(driver.transport.outbound.len(), 1);
        let (packet, segment_size, checksum) = driver.transport.outbound.remove(0);
        assert_eq!((segment_size, checksum), (MSS, TxChecksum::PseudoHeader));
        let (ip, tcp) = Ipv4Header::parse(&packet).unwrap();
        assert_eq!(usize::from(ip.total_len), 20 + 20 + data.len());
        assert_eq!(driver.counters().super_segments_out, 1);
        assert_eq!(driver.counters().super_segment_pieces_out, 5);
        // Cut as Linux's GSO would: each piece a valid segment, in sequence, data intact.
        let header = &tcp[..20];
        let payload = [&tcp[20..]];
        let (src, dst) = (IpAddr::V4(OURS), IpAddr::V4(PEER));
        let mut pieces =
            Segmenter::new(header, &payload, MSS, src, dst, TxChecksum::Compute).unwrap();
        let (mut buf, mut joined, mut seq) = (vec![0u8; 2000], Vec::new(), iss);
        while let Some(len) = pieces.next_segment(&mut buf).unwrap() {
            let piece = Segment::parse_checked(&buf[..len], src, dst).unwrap();
            assert_eq!(piece.header.seq.get(), seq);
            seq = seq.wrapping_add(piece.payload.len() as u32);
            joined.extend_from_slice(piece.payload);
        }
        assert_eq!(joined, data);
    }

    #[test]
    fn coalesced_input_is_cut_into_wire_segments_for_the_filter_and_the_endpoint() {
        let (mut driver, handle, seq, ack) = offloaded(true);
        let seen = alloc::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = alloc::sync::Arc::clone(&seen);
        driver.set_inbound_filter(Box::new(move |packet| {
            log.lock().unwrap().push(packet.to_vec());
            true
        }));
        let data: Vec<u8> = (0..3 * MSS - 10).map(|i| (i % 253) as u8).collect();
        let meta = RxMeta { tcp_gso_size: Some(MSS as u16), ..PARTIAL };
        driver.transport.inbound.push_back((data_packet(seq, ack, &data, true), meta));
        driver.poll(Duration::ZERO).unwrap();
        let seen = seen.lock().unwrap();
        // Three wire packets, each with a complete checksum (the filter could keep and
        // re-inject any of them), PSH only on the last.
        assert_eq!(seen.len(), 3);
        for (index, packet) in seen.iter().enumerate() {
            let (ip, tcp) = Ipv4Header::parse(packet).unwrap();
            let piece = Segment::parse_checked(tcp, ip.src.into(), ip.dst.into()).unwrap();
            assert_eq!(piece.header.seq.get(), seq + (index * MSS) as u32);
            assert_eq!(piece.header.flags.contains(crate::wire::Flags::PSH), index == 2);
        }
        assert_eq!(driver.counters().coalesced_in, 1);
        assert_eq!(read_all(&mut driver, handle), data);
    }

    #[test]
    fn coalesced_input_goes_whole_to_the_endpoint_when_nothing_watches_wire_packets() {
        for split in [false, true] {
            let (mut driver, handle, seq, ack) = offloaded(true);
            driver.set_split_coalesced(split);
            let data: Vec<u8> = (0..3 * MSS - 10).map(|i| (i % 241) as u8).collect();
            let meta = RxMeta { tcp_gso_size: Some(MSS as u16), ..PARTIAL };
            driver.transport.inbound.push_back((data_packet(seq, ack, &data, true), meta));
            let before = driver.endpoint().counters().segments_in;
            driver.poll(Duration::ZERO).unwrap();
            let segments = driver.endpoint().counters().segments_in - before;
            assert_eq!(segments, if split { 3 } else { 1 });
            assert_eq!(driver.counters().coalesced_in, 1);
            assert_eq!(read_all(&mut driver, handle), data);
            // Three wire segments' worth: acknowledged at once, as the second would have been.
            let acks: Vec<u32> = driver
                .transport
                .outbound
                .iter()
                .map(|(packet, _, _)| sent_segment(packet).header.ack.get())
                .collect();
            assert_eq!(acks, [seq + data.len() as u32], "split {split}");
        }
    }

    #[test]
    fn a_trusting_endpoint_has_what_the_device_did_not_vouch_for_verified_here_must_3() {
        let (mut driver, handle, seq, ack) = offloaded(true);
        let mut corrupt = data_packet(seq, ack, b"first", false);
        let last = corrupt.len() - 1;
        corrupt[last] ^= 1;
        driver.transport.inbound.push_back((corrupt, RxMeta::PLAIN));
        driver.poll(Duration::ZERO).unwrap();
        assert_eq!(driver.counters().dropped_bad_tcp_checksum, 1);
        assert_eq!(read_all(&mut driver, handle), b"");
        // Vouched for (DATA_VALID) and left unfinished (NEEDS_CSUM): neither is summed.
        let valid = RxMeta { checksum: RxChecksumState::Valid, ..RxMeta::PLAIN };
        driver.transport.inbound.push_back((data_packet(seq, ack, b"first", false), valid));
        driver.transport.inbound.push_back((data_packet(seq + 5, ack, b"second", true), PARTIAL));
        driver.poll(Duration::ZERO).unwrap();
        assert_eq!(read_all(&mut driver, handle), b"firstsecond");
        assert_eq!(driver.counters().checksums_finished, 0);
        assert_eq!(driver.counters().dropped_bad_tcp_checksum, 1);
    }

    #[test]
    fn a_verifying_endpoint_gets_unfinished_checksums_finished_first() {
        let (mut driver, handle, seq, ack) = offloaded(false);
        driver.transport.inbound.push_back((data_packet(seq, ack, b"partial", true), PARTIAL));
        driver.poll(Duration::ZERO).unwrap();
        assert_eq!(driver.counters().checksums_finished, 1);
        assert_eq!(read_all(&mut driver, handle), b"partial");
        assert_eq!(driver.endpoint().counters().dropped_malformed, 0);
        // The same packet without the device's word for it is just wrong, and dropped.
        driver.transport.inbound.push_back((data_packet(seq + 7, ack, b"x", true), RxMeta::PLAIN));
        driver.poll(Duration::ZERO).unwrap();
        assert_eq!(driver.endpoint().counters().dropped_malformed, 1);
    }

    #[test]
    fn a_kept_udp_datagram_left_unfinished_by_the_device_is_handed_over_finished() {
        let (mut driver, _, _, _) = offloaded(true);
        driver.keep_other_packets(4);
        let (src, dst) = (IpAddr::V4(PEER), IpAddr::V4(OURS));
        // UDP 5353 -> 53, eight octets of payload, its checksum field holding only the
        // pseudo-header's sum (not complemented), as the kernel hands it up with NEEDS_CSUM.
        let mut udp = vec![0x14, 0xe9, 0, 53, 0, 16, 0, 0];
        udp.extend_from_slice(b"question");
        let partial = crate::wire::checksum::pseudo_header(src, dst, 17, 16).unwrap();
        udp[6..8].copy_from_slice(&partial.folded().to_be_bytes());
        let packet = ip_packet(src, dst, 17, &udp);
        let meta =
            RxMeta { checksum: RxChecksumState::Partial { start: 20, offset: 6 }, ..RxMeta::PLAIN };
        driver.transport.inbound.push_back((packet, meta));
        driver.poll(Duration::ZERO).unwrap();
        let kept = driver.take_other_packet().expect("kept for the application");
        let mut sum = crate::wire::checksum::pseudo_header(src, dst, 17, 16).unwrap();
        sum.add_bytes(&kept[20..]);
        assert_eq!(sum.finish(), 0, "a complete checksum sums to zero");
        assert_eq!(&kept[28..], b"question");
    }

    #[test]
    fn a_round_reads_the_whole_batch_before_it_answers() {
        let (mut driver, handle, seq, ack) = offloaded(true);
        // Four full-sized segments: each pair calls for an ACK (RFC 9293 §3.8.6.3).
        for index in 0..4u32 {
            let packet = data_packet(seq + index * MSS as u32, ack, &[index as u8; MSS], false);
            driver.transport.inbound.push_back((packet, RxMeta::PLAIN));
        }
        driver.poll(Duration::ZERO).unwrap();
        assert_eq!(driver.transport.batches, 1);
        assert_eq!(driver.counters().batches_in, 1);
        assert_eq!(read_all(&mut driver, handle).len(), 4 * MSS);
        // One ACK for the four, sent after all were handled.
        let acks: Vec<u32> = driver
            .transport
            .outbound
            .iter()
            .map(|(packet, _, _)| sent_segment(packet).header.ack.get())
            .collect();
        assert_eq!(acks, [seq + 4 * MSS as u32]);
    }

    fn refresh_checksum(packet: &mut [u8]) {
        packet[10] = 0;
        packet[11] = 0;
        let mut sum = crate::wire::checksum::Checksum::new();
        sum.add_bytes(&packet[..20]);
        let [a, b] = sum.finish().to_be_bytes();
        packet[10] = a;
        packet[11] = b;
    }
}
