//! A small blocking driver: runs an [`Endpoint`] over any [`PacketTransport`].
//!
//! Each [`Driver::poll`] sends everything the endpoint has queued, waits for a packet or the
//! endpoint's next deadline (whichever is first, and at most the caller's `max_wait`), feeds
//! what came, runs due timers and sends again. The application calls the endpoint between
//! polls (through [`Driver::endpoint_mut`]) and drains its events.
//!
//! Time: a monotonic [`std::time::Instant`] taken at construction is the core's epoch, so
//! [`Driver::now`] never goes backwards. IP: every incoming packet is validated here, before
//! the core sees it — IPv4 version, header length, total length and header checksum, IPv6
//! version and payload length, protocol TCP, no fragments (RFC 9293 §3.7.1 leaves reassembly
//! to IP; this driver has none), and a destination that is one of ours — and each reason to
//! drop is counted in [`DriverCounters`]. Outgoing segments get a 20-octet IPv4 header (DF
//! set, the connection's TTL and DS field, MUST-48/49) or a 40-octet IPv6 header.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use core::net::IpAddr;
use core::time::Duration;
use std::fs::File;
use std::io::{self, BufWriter};
use std::path::Path;

use super::PacketTransport;
use super::pcap::PcapWriter;
use crate::endpoint::Endpoint;
use crate::time::Instant;
use crate::wire::Segment;
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
    /// Not TCP (or IPv6 with extension headers, which this driver does not walk).
    pub dropped_not_tcp: u64,
    /// IPv4 fragments: never reassembled here.
    pub dropped_fragment: u64,
    /// Addressed to an IP address that is not ours.
    pub dropped_not_ours: u64,
    /// Held back or discarded by the inbound filter.
    pub filtered: u64,
    /// Segments the endpoint produced that could not be sent (transport error).
    pub send_errors: u64,
}

/// Which way a packet went, for traces and filters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the transport to the endpoint.
    In,
    /// From the endpoint to the transport.
    Out,
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
    identification: u16,
    rx: Vec<u8>,
    tx: Vec<u8>,
    pcap: Option<PcapWriter<BufWriter<File>>>,
    trace: bool,
    filter: Option<InboundFilter>,
    counters: DriverCounters,
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
/// Packets taken in one [`Driver::poll`] after the first, without waiting, before timers and
/// output get their turn.
const RECEIVE_BATCH: usize = 64;

impl<T: PacketTransport> Driver<T> {
    /// A driver for `endpoint` over `transport`. Its clock starts now.
    pub fn new(endpoint: Endpoint, transport: T) -> Self {
        Self {
            endpoint,
            transport,
            epoch: std::time::Instant::now(),
            addresses: Vec::new(),
            identification: 0,
            rx: vec![0; MAX_PACKET],
            tx: vec![0; Ipv6Header::LEN + MAX_PACKET],
            pcap: None,
            trace: false,
            filter: None,
            counters: DriverCounters::default(),
        }
    }

    /// Accepts packets for `address` (once any address is added, packets for others are
    /// dropped and counted).
    pub fn add_address(&mut self, address: IpAddr) {
        self.addresses.push(address);
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
        let mut timeout = wait;
        for _ in 0..=RECEIVE_BATCH {
            let Some(len) = self.transport.recv(&mut self.rx, timeout)? else { break };
            self.counters.packets_in += 1;
            let packet = core::mem::take(&mut self.rx);
            let result = self.receive(packet.get(..len).unwrap_or(&[]), true);
            self.rx = packet;
            result?;
            timeout = Duration::ZERO;
        }
        let now = self.now();
        self.endpoint.handle_timeout(now);
        self.flush()
    }

    /// Handles `packet` as if it had just arrived (a packet a filter held back, say); it is
    /// not shown to the filter again.
    ///
    /// # Errors
    ///
    /// Writing the capture file.
    pub fn inject(&mut self, packet: &[u8]) -> io::Result<()> {
        self.receive(packet, false)?;
        self.flush()
    }

    /// Sends every segment the endpoint has queued.
    ///
    /// # Errors
    ///
    /// Writing the capture file, or a segment that does not fit the largest IP packet (the
    /// endpoint's configuration is wrong; it would fail again on every call).
    pub fn flush(&mut self) -> io::Result<()> {
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
            match self.wrap(transmit) {
                Some(range) => self.emit(now, range)?,
                None => self.counters.send_errors += 1,
            }
        }
    }

    /// Puts an IP header in front of the segment at `tx[40..40 + len]`; returns the packet's
    /// range in `tx`, or `None` for mixed address families or an oversized segment.
    fn wrap(&mut self, transmit: crate::Transmit) -> Option<core::ops::Range<usize>> {
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
                    dont_fragment: true,
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

    /// Validates one IP packet and hands its TCP segment to the endpoint.
    fn receive(&mut self, packet: &[u8], filter: bool) -> io::Result<()> {
        let now = self.now();
        let Some((src, dst, segment)) = self.validate(packet) else { return Ok(()) };
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
        self.endpoint.handle_segment(now, src, dst, segment);
        Ok(())
    }

    /// The addresses and TCP bytes of a valid packet for us, or `None` (counted).
    fn validate<'p>(&mut self, packet: &'p [u8]) -> Option<(IpAddr, IpAddr, &'p [u8])> {
        let version = packet.first().map(|byte| byte >> 4);
        let parsed = match version {
            Some(4) => Ipv4Header::parse(packet).map(|(header, payload)| {
                let fragment = header.is_fragment();
                let addresses = (IpAddr::V4(header.src), IpAddr::V4(header.dst));
                (addresses, header.protocol, fragment, payload)
            }),
            Some(6) => Ipv6Header::parse(packet).map(|(header, payload)| {
                let addresses = (IpAddr::V6(header.src), IpAddr::V6(header.dst));
                (addresses, header.next_header, false, payload)
            }),
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
        if fragment {
            counters.dropped_fragment += 1;
            return None;
        }
        if protocol != PROTOCOL_TCP {
            counters.dropped_not_tcp += 1;
            return None;
        }
        if !self.addresses.is_empty() && !self.addresses.contains(&dst) {
            counters.dropped_not_ours += 1;
            return None;
        }
        Some((src, dst, payload))
    }
}

/// One line on stderr: time, direction, addresses and the segment in tcpdump style.
fn trace(now: Instant, direction: Direction, packet: &[u8]) {
    let parsed = match packet.first().map(|byte| byte >> 4) {
        Some(4) => Ipv4Header::parse(packet)
            .ok()
            .map(|(h, payload)| (IpAddr::V4(h.src), IpAddr::V4(h.dst), payload)),
        Some(6) => Ipv6Header::parse(packet)
            .ok()
            .map(|(h, payload)| (IpAddr::V6(h.src), IpAddr::V6(h.dst), payload)),
        _ => None,
    };
    let Some((src, dst, tcp)) = parsed else { return };
    let arrow = match direction {
        Direction::In => "in ",
        Direction::Out => "out",
    };
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
