//! Adapters: what it takes to put the sans-IO core on a real wire (std only; the core never
//! imports this module).
//!
//! - `pcap` (feature `pcap`): a capture writer any side can use, the simulator included.
//! - `driver` (feature `driver`): a small blocking loop that runs an [`Endpoint`] over any
//!   [`PacketTransport`]: it maps a monotonic clock to the core's [`Instant`], validates IP
//!   headers (version, lengths, checksum, IPv6 extension headers, protocol; fragments
//!   dropped and counted) before
//!   the core sees anything, feeds segments, ICMP errors about our segments (MUST-54) and
//!   timeouts in, and wraps transmits in IP headers.
//! - `udp` (feature `udp`): one raw IP packet per UDP datagram, over IPv4 or IPv6 sockets (no
//!   root needed), in batches
//!   (`recvmmsg`/`sendmmsg`) with UDP GSO and GRO where the kernel has them.
//! - `tun` (feature `tun`): a Linux TUN device (`IFF_TUN | IFF_NO_PI`, and `IFF_VNET_HDR`
//!   with checksum and TCP segmentation offload where the kernel takes it), through a few
//!   `libc` calls — with the UDP batch calls and the checksum's AVX2 dispatch, the only
//!   `unsafe` in the crate.
//! - `vnet` (feature `tun`): the virtio-net header such a TUN device puts before each packet.
//! - `source`: the source address of an active open the user gave none for (MUST-44), from
//!   the device's configured addresses.
//!
//! The [`PacketTransport`] trait is one packet at a time at its simplest (`send`, `recv`,
//! `mtu`); a transport that can do better says so in [`PacketTransport::offloads`] and
//! overrides the batch and offload methods, whose defaults fall back on the simple ones.
//!
//! [`Endpoint`]: crate::Endpoint
//! [`Instant`]: crate::Instant

#[cfg(feature = "driver")]
pub mod driver;
#[cfg(feature = "pcap")]
pub mod pcap;
pub mod source;
#[cfg(feature = "tracing")]
mod trace;
#[cfg(feature = "tun")]
pub mod tun;
#[cfg(feature = "udp")]
pub mod udp;
#[cfg(feature = "tun")]
pub mod vnet;

use alloc::vec::Vec;
use core::ops::Range;
use core::time::Duration;
use std::io;

use bytes::Bytes;

#[cfg(feature = "driver")]
use crate::wire::checksum::Checksum;
use crate::wire::checksum::TxChecksum;

/// Whole IP packets in and out: what the `driver` needs from a transport.
pub trait PacketTransport {
    /// Sends one IP packet.
    ///
    /// # Errors
    ///
    /// The transport's I/O error.
    fn send(&mut self, packet: &[u8]) -> io::Result<()>;

    /// Waits at most `timeout` (zero: do not wait) for one packet and copies it into `buf`;
    /// `Ok(None)` when none came. A packet longer than `buf` is truncated (and then fails IP
    /// validation).
    ///
    /// # Errors
    ///
    /// The transport's I/O error.
    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<Option<usize>>;

    /// The largest IP packet the transport carries (the MTU).
    fn mtu(&self) -> usize;

    /// What the transport does beyond one packet per call; by default nothing.
    fn offloads(&self) -> Offloads {
        Offloads::NONE
    }

    /// Waits at most `timeout` for packets and appends as many as are ready (at least one if
    /// any comes, at most what `batch` has room for) to `batch`. The default calls
    /// [`recv`](Self::recv) until it finds nothing, waiting only for the first.
    ///
    /// # Errors
    ///
    /// The transport's I/O error (packets appended before it stay in `batch`).
    fn recv_batch(&mut self, batch: &mut RxBatch, timeout: Duration) -> io::Result<()> {
        let mut timeout = timeout;
        // Room for the largest IP packet, so none is cut short.
        while let Some(room) = batch.room(65_535) {
            let Some(len) = self.recv(room, timeout)? else { break };
            batch.commit(len, RxMeta::PLAIN);
            timeout = Duration::ZERO;
        }
        Ok(())
    }

    /// Sends one TCP segment given in parts (headers, then the payload slices), which with
    /// `segment_size` below its payload is a super-segment the transport cuts into wire
    /// segments. The default gathers the parts into `scratch` and calls
    /// [`send`](Self::send); only a transport whose [`offloads`](Self::offloads) say
    /// `tcp_segmentation` is ever handed a super-segment.
    ///
    /// # Errors
    ///
    /// The transport's I/O error, or `InvalidInput` for a super-segment it cannot cut.
    fn send_segment(&mut self, segment: &OutSegment<'_>, scratch: &mut Vec<u8>) -> io::Result<()> {
        if segment.is_super() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "this transport does not cut TCP super-segments",
            ));
        }
        scratch.clear();
        scratch.extend_from_slice(segment.headers);
        for slice in segment.payload {
            scratch.extend_from_slice(slice);
        }
        self.send(scratch)
    }

    /// Sends whatever the transport queued for a batched send (a `sendmmsg`). The driver calls
    /// it after each round of output; the default has nothing queued.
    ///
    /// # Errors
    ///
    /// The transport's I/O error.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What a transport does for the driver beyond one packet per call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Offloads {
    /// [`PacketTransport::send_segment`] takes TCP super-segments and has them cut into wire
    /// segments of `segment_size` payload octets (by the kernel, or in software before one
    /// system call).
    pub tcp_segmentation: bool,
    /// What the TCP checksum field of segments handed to
    /// [`PacketTransport::send_segment`] should hold: complete (the default), the
    /// pseudo-header's sum for the device to finish, or nothing (the transport computes it).
    pub tx_checksum: TxChecksum,
    /// Received packets come with [`RxMeta::checksum`] filled in (which need no verifying).
    pub rx_checksum: bool,
    /// Received TCP packets may be coalesced super-segments ([`RxMeta::tcp_gso_size`]).
    pub rx_coalesced: bool,
    /// Packets are received and sent several per system call.
    pub batching: bool,
}

impl Offloads {
    /// One plain packet per call.
    pub const NONE: Self = Self {
        tcp_segmentation: false,
        tx_checksum: TxChecksum::Compute,
        rx_checksum: false,
        rx_coalesced: false,
        batching: false,
    };
}

/// One TCP segment to send, in parts: `headers` is the IP header (`ip_header_len` octets)
/// followed by the TCP header, then come the `payload` slices.
#[derive(Clone, Copy, Debug)]
pub struct OutSegment<'a> {
    /// The IP header then the TCP header.
    pub headers: &'a [u8],
    /// Octets of IP header at the start of `headers` (20 for IPv4 without options, 40 for
    /// IPv6).
    pub ip_header_len: usize,
    /// The payload, in order.
    pub payload: &'a [Bytes],
    /// Payload octets in all of `payload`.
    pub payload_len: usize,
    /// Payload octets per wire segment: a payload longer than this is a super-segment, cut
    /// into pieces of `segment_size` (the last shorter), each with a copy of the headers with
    /// lengths, sequence number, flags and checksums fixed (Linux GSO semantics).
    pub segment_size: usize,
    /// What the TCP checksum field holds: the complete checksum (only for an ordinary
    /// segment), the pseudo-header's sum over the whole segment (not complemented) for the
    /// device to finish per piece, or 0 for the transport to fill.
    pub checksum: TxChecksum,
}

impl OutSegment<'_> {
    /// Whether the payload spans more than one wire segment.
    pub const fn is_super(&self) -> bool {
        self.segment_size > 0 && self.payload_len > self.segment_size
    }
}

/// What a transport knows about one received packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RxMeta {
    /// Whether the TCP checksum must still be verified.
    pub checksum: RxChecksumState,
    /// `Some(mss)`: the packet is a coalesced TCP super-segment whose payload came in wire
    /// segments of `mss` octets (TUN with `TUN_F_TSO*`: the kernel's TSO output).
    pub tcp_gso_size: Option<u16>,
    /// Non-zero: the octets are several whole IP packets back to back, each this long but the
    /// last (UDP GRO: datagrams coalesced by the kernel, to be split where they were).
    pub datagram_size: usize,
}

impl RxMeta {
    /// A plain packet: nothing known.
    pub const PLAIN: Self =
        Self { checksum: RxChecksumState::Unknown, tcp_gso_size: None, datagram_size: 0 };
}

/// The TCP checksum of a received packet, as the device reported it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RxChecksumState {
    /// Nothing said: verify it.
    #[default]
    Unknown,
    /// Verified by the device (`DATA_VALID`).
    Valid,
    /// Never crossed a wire, and the field holds only the pseudo-header's sum (`NEEDS_CSUM`):
    /// the sum of octets from `start` to the end of the packet goes at `start + offset`.
    Partial {
        /// Offset of the first octet summed, from the start of the IP packet.
        start: u16,
        /// Offset of the checksum field from `start`.
        offset: u16,
    },
}

/// Received packets, several per call: one buffer and where each packet lies in it.
#[derive(Debug)]
pub struct RxBatch {
    buf: Vec<u8>,
    used: usize,
    packets: Vec<(Range<usize>, RxMeta)>,
    max_packets: usize,
}

impl RxBatch {
    /// Room for `bytes` octets of packets and `max_packets` packets at most.
    pub fn new(bytes: usize, max_packets: usize) -> Self {
        Self {
            buf: alloc::vec![0; bytes],
            used: 0,
            packets: Vec::with_capacity(max_packets),
            max_packets,
        }
    }

    /// Forgets every packet (the buffer stays).
    pub fn clear(&mut self) {
        self.used = 0;
        self.packets.clear();
    }

    /// Packets held.
    pub fn len(&self) -> usize {
        self.packets.len()
    }

    /// No packets held.
    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// The free space for the next packet if it has at least `at_least` octets and a packet
    /// slot is left. Fill a prefix, then [`commit`](Self::commit) its length.
    pub fn room(&mut self, at_least: usize) -> Option<&mut [u8]> {
        if self.packets.len() >= self.max_packets {
            return None;
        }
        self.buf.get_mut(self.used..).filter(|room| room.len() >= at_least)
    }

    /// The next `count` slots of `len` octets each in the free space, for a receive call that
    /// fills several buffers (`recvmmsg`); as many whole slots as fit, fewer when space or
    /// packet slots run short. Commit each filled slot with [`commit_slot`](Self::commit_slot)
    /// in order, then [`finish_slots`](Self::finish_slots).
    pub fn slots(
        &mut self,
        len: usize,
        count: usize,
    ) -> Option<core::slice::ChunksExactMut<'_, u8>> {
        let count = count.min(self.max_packets.saturating_sub(self.packets.len()));
        let room = self.buf.get_mut(self.used..)?;
        let fit = room.len().checked_div(len)?.min(count);
        let (room, _) = room.split_at_mut_checked(fit * len)?;
        Some(room.chunks_exact_mut(len))
    }

    /// Records that the packet of `len` octets at the start of [`room`](Self::room) was
    /// filled.
    pub fn commit(&mut self, len: usize, meta: RxMeta) {
        let end = (self.used + len).min(self.buf.len());
        self.packets.push((self.used..end, meta));
        self.used = end;
    }

    /// Records that slot `index` of the last [`slots`](Self::slots) call, `slot_len` octets
    /// each, holds a packet of `len` octets.
    pub fn commit_slot(&mut self, slot_len: usize, index: usize, len: usize, meta: RxMeta) {
        let start = self.used + index * slot_len;
        let end = (start + len.min(slot_len)).min(self.buf.len());
        self.packets.push((start..end, meta));
    }

    /// Ends a [`slots`](Self::slots) fill of `filled` slots of `slot_len`.
    pub fn finish_slots(&mut self, slot_len: usize, filled: usize) {
        self.used = (self.used + slot_len * filled).min(self.buf.len());
    }

    /// Packet `index`: its octets (mutable, so a checksum can be finished in place) and what
    /// the transport said about it.
    pub fn packet_mut(&mut self, index: usize) -> Option<(&mut [u8], RxMeta)> {
        let (range, meta) = self.packets.get(index)?.clone();
        Some((self.buf.get_mut(range)?, meta))
    }
}

/// Finishes a checksum the device left partial (`NEEDS_CSUM`): the one's-complement sum of
/// the octets from `start` on (the field holds the pseudo-header's sum) goes, complemented,
/// into the field. Anything else is left alone.
#[cfg(feature = "driver")]
pub(crate) fn finish_partial_checksum(packet: &mut [u8], checksum: RxChecksumState) {
    let RxChecksumState::Partial { start, offset } = checksum else { return };
    let (start, field) = (usize::from(start), usize::from(start) + usize::from(offset));
    let Some(summed) = packet.get(start..) else { return };
    let mut sum = Checksum::new();
    sum.add_bytes(summed);
    if let Some(slot) = packet.get_mut(field..field + 2) {
        slot.copy_from_slice(&sum.finish().to_be_bytes());
    }
}
