//! Packet devices for the async [`Stack`](super::Stack): the [`Device`] trait (whole IP packets
//! in and out, in batches), the [`PacketBatch`] queue both sides fill and drain, and two
//! devices — [`IoDevice`] over any `AsyncRead + AsyncWrite` and an in-memory [`channel`] pair.
//!
//! Batches, not single packets, cross the trait so a device that can move many packets per
//! system call (`recvmmsg`, a TUN device with GRO) hands them over at once; a device that
//! cannot simply moves one. The batch owns a pool of packet buffers: a buffer sent is
//! recycled for the next packet received, so a steady stream allocates nothing per packet.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use std::io;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::adapter::{Offloads, RxChecksumState};
#[cfg(doc)]
use crate::wire::checksum::TxChecksum;

/// Whole IP packets in and out: what the [`Stack`](super::Stack)'s driver needs from a device.
///
/// Both calls follow the usual poll contract: `Pending` only after arranging for the task to
/// be woken when the call may make progress.
///
/// A device that can do more than plain packets of at most the MTU says so in
/// [`offloads`](Self::offloads): then packets cross the trait with a [`PacketMeta`] saying
/// what each still needs (a checksum to finish) or is (a TCP super-segment to cut, or one
/// coalesced from several wire segments). A device that says nothing (the default) is only
/// ever handed plain packets with complete checksums, as before.
pub trait Device: Send + 'static {
    /// Receives one or more IP packets and appends each to `packets` (take buffers with
    /// [`PacketBatch::buffer`], add them with [`PacketBatch::push`], or
    /// [`PacketBatch::push_with`] when the device knows something about the packet); `Ready(Ok(()))` once at
    /// least one was appended. The driver calls it only while the batch has
    /// [`room`](PacketBatch::room); appending beyond the room is allowed but wasteful.
    ///
    /// # Errors
    ///
    /// A device error stops the stack: every pending and later call on its sockets fails.
    fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        packets: &mut PacketBatch,
    ) -> Poll<io::Result<()>>;

    /// Sends packets from the front of `packets`, removing each one sent
    /// ([`PacketBatch::pop_front`]); `Ready(Ok(()))` once the batch is empty, `Pending` when
    /// the device can take no more now (the rest stays queued, in order). Each packet's
    /// [`PacketMeta`] ([`PacketBatch::front_with_meta`]) is plain unless the device's
    /// [`offloads`](Self::offloads) allow otherwise.
    ///
    /// # Errors
    ///
    /// As for [`poll_recv`](Self::poll_recv).
    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        packets: &mut PacketBatch,
    ) -> Poll<io::Result<()>>;

    /// What the device does beyond plain packets, asked once when the stack is made (the
    /// same [`Offloads`] the blocking driver's transports declare; `batching` is ignored):
    ///
    /// - `tcp_segmentation`: sent packets may be TCP super-segments of up to 64 KiB
    ///   ([`PacketMeta::gso_size`]) for the device to cut into wire segments, each with the
    ///   headers fixed up as Linux GSO does;
    /// - `tx_checksum` [`TxChecksum::PseudoHeader`]: sent TCP segments come with their
    ///   checksum field holding the pseudo-header's sum, for the device to finish
    ///   ([`PacketMeta::checksum`] `Partial`); `Compute` (or `None`, treated as `Compute`):
    ///   complete checksums;
    /// - `rx_checksum`: received packets' [`PacketMeta::checksum`] says whether their TCP
    ///   checksum was verified or left unfinished on this host (those are not verified
    ///   again; packets it says nothing about are);
    /// - `rx_coalesced`: received TCP packets may be super-segments coalesced from wire
    ///   segments of [`PacketMeta::gso_size`] payload octets (delivered whole and acknowledged
    ///   per MSS).
    ///
    /// The default, [`Offloads::NONE`], is plain packets both ways.
    fn offloads(&self) -> Offloads {
        Offloads::NONE
    }
}

/// What a device knows or must do about one packet, beside its octets. For a device without
/// [`offloads`](Device::offloads), always [`PacketMeta::PLAIN`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PacketMeta {
    /// The TCP checksum: `Unknown` (sent: complete; received: nothing said, it is verified),
    /// `Valid` (received only: the device verified it), or `Partial` (the field holds only
    /// the pseudo-header's sum and the sum of the octets from `start` on goes at
    /// `start + offset`: the device finishes it on a sent packet; a received one was made on
    /// this host and never crossed a wire).
    pub checksum: RxChecksumState,
    /// `Some(mss)`: a TCP super-segment whose payload is (sent) to be cut or (received) was
    /// coalesced from wire segments of `mss` payload octets, the last shorter.
    pub gso_size: Option<u16>,
}

impl PacketMeta {
    /// A plain packet: checksums complete (or, received, unverified), one wire segment.
    pub const PLAIN: Self = Self { checksum: RxChecksumState::Unknown, gso_size: None };
}

/// A bounded FIFO of IP packets, each with its [`PacketMeta`], and a pool of spare buffers.
///
/// Its bound is a number of packets ([`capacity`](Self::capacity)) and, optionally, a number
/// of octets ([`set_max_octets`](Self::set_max_octets): super-segments are up to 64 KiB
/// each). The spare pool is bounded by the same numbers (its octets counted by buffer
/// capacity), so a batch holds at most twice its bounds in buffers.
#[derive(Debug)]
pub struct PacketBatch {
    packets: VecDeque<(Vec<u8>, PacketMeta)>,
    spare: Vec<Vec<u8>>,
    capacity: usize,
    /// Octets of the packets queued.
    octets: usize,
    /// Capacity of the spare buffers, summed.
    spare_octets: usize,
    max_octets: usize,
}

impl PacketBatch {
    /// An empty batch for at most `capacity` packets (at least one), with no bound on octets.
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            packets: VecDeque::with_capacity(capacity),
            spare: Vec::new(),
            capacity,
            octets: 0,
            spare_octets: 0,
            max_octets: usize::MAX,
        }
    }

    /// Bounds the octets the batch is meant to hold (its [`room`](Self::room) is zero once
    /// they are reached) and those its spare pool keeps.
    pub fn set_max_octets(&mut self, max_octets: usize) {
        self.max_octets = max_octets;
    }

    /// Octets the batch is meant to hold at most ([`set_max_octets`](Self::set_max_octets);
    /// `usize::MAX` unless set).
    pub const fn max_octets(&self) -> usize {
        self.max_octets
    }

    /// Packets the batch is meant to hold at most.
    pub const fn capacity(&self) -> usize {
        self.capacity
    }

    /// Packets queued.
    pub fn len(&self) -> usize {
        self.packets.len()
    }

    /// Octets of the packets queued.
    pub const fn octets(&self) -> usize {
        self.octets
    }

    /// Whether no packet is queued.
    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// Packets that may still be appended within the capacity (none once the octet bound is
    /// reached).
    pub fn room(&self) -> usize {
        if self.octets >= self.max_octets {
            return 0;
        }
        self.capacity.saturating_sub(self.packets.len())
    }

    /// An empty buffer for the next packet: a recycled one when the pool has one.
    pub fn buffer(&mut self) -> Vec<u8> {
        let buffer = self.spare.pop().unwrap_or_default();
        self.spare_octets = self.spare_octets.saturating_sub(buffer.capacity());
        buffer
    }

    /// Appends a plain packet at the back (past the capacity too: the caller checks
    /// [`room`](Self::room) where the bound matters).
    pub fn push(&mut self, packet: Vec<u8>) {
        self.push_with(packet, PacketMeta::PLAIN);
    }

    /// Appends a packet with what is known about it at the back (as [`push`](Self::push)).
    pub fn push_with(&mut self, packet: Vec<u8>, meta: PacketMeta) {
        self.octets += packet.len();
        self.packets.push_back((packet, meta));
    }

    /// Gives back a buffer that will not be pushed, for reuse.
    pub fn recycle(&mut self, mut buffer: Vec<u8>) {
        let octets = self.spare_octets.saturating_add(buffer.capacity());
        if self.spare.len() < self.capacity && octets <= self.max_octets {
            buffer.clear();
            self.spare_octets = octets;
            self.spare.push(buffer);
        }
    }

    /// The packet at the front.
    pub fn front(&self) -> Option<&[u8]> {
        self.packets.front().map(|(packet, _)| packet.as_slice())
    }

    /// The packet at the front and what is known about it.
    pub fn front_with_meta(&self) -> Option<(&[u8], PacketMeta)> {
        self.packets.front().map(|(packet, meta)| (packet.as_slice(), *meta))
    }

    /// The packets queued, front first.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.packets.iter().map(|(packet, _)| packet.as_slice())
    }

    /// The packets queued with what is known about each, front first.
    pub fn iter_with_meta(&self) -> impl Iterator<Item = (&[u8], PacketMeta)> {
        self.packets.iter().map(|(packet, meta)| (packet.as_slice(), *meta))
    }

    /// Removes the packet at the front (its buffer goes to the pool).
    pub fn pop_front(&mut self) {
        if let Some(packet) = self.take_front() {
            self.recycle(packet);
        }
    }

    /// Removes and returns the packet at the front; give its buffer back with
    /// [`recycle`](Self::recycle) when done.
    pub fn take_front(&mut self) -> Option<Vec<u8>> {
        self.take_front_with_meta().map(|(packet, _)| packet)
    }

    /// As [`take_front`](Self::take_front), with what is known about the packet.
    pub fn take_front_with_meta(&mut self) -> Option<(Vec<u8>, PacketMeta)> {
        let (packet, meta) = self.packets.pop_front()?;
        self.octets = self.octets.saturating_sub(packet.len());
        Some((packet, meta))
    }

    /// Moves every packet of `other` to the back of this batch, and as many of this batch's
    /// spare buffers to `other` as it lacks.
    pub fn append(&mut self, other: &mut Self) {
        self.octets += other.octets;
        other.octets = 0;
        self.packets.append(&mut other.packets);
        while other.spare.len() < other.capacity {
            let Some(buffer) = self.spare.last() else { break };
            if other.spare_octets.saturating_add(buffer.capacity()) > other.max_octets {
                break;
            }
            let buffer = self.buffer();
            other.recycle(buffer);
        }
    }
}

/// The smallest IPv4 header: the least a packet can be.
const MIN_PACKET: usize = 20;

/// A device over a byte-moving I/O object: a TUN file, a socket, one end of a
/// `tokio::io::duplex` pair.
///
/// Two ways to find packet boundaries:
/// - [`IoDevice::packet_per_read`]: every read returns exactly one packet and every write
///   takes one (a TUN device, a datagram socket: what ipstack users have);
/// - [`IoDevice::byte_stream`]: packets are back to back in a byte stream (a pipe, a
///   `duplex` pair) and each is delimited by its IP header's length field (IPv4 total length,
///   IPv6 40 + payload length). A length below a header or above the MTU is a framing error
///   (`InvalidData`) that stops the device, since the stream cannot be resynchronised.
///
/// Writes are whole either way: a short write is continued before the next packet starts. A
/// read of zero octets (end of file) is an `UnexpectedEof` error.
#[derive(Debug)]
pub struct IoDevice<S> {
    io: S,
    mtu: usize,
    framed: bool,
    /// Stream mode: octets read and not yet split into packets.
    pending: Vec<u8>,
    /// Octets of the front packet already written.
    written: usize,
}

impl<S> IoDevice<S> {
    /// A device whose every read is one packet of at most `mtu` octets (larger ones are
    /// truncated by the read and then fail IP validation).
    pub fn packet_per_read(io: S, mtu: usize) -> Self {
        Self { io, mtu: mtu.max(MIN_PACKET), framed: false, pending: Vec::new(), written: 0 }
    }

    /// A device carrying packets of at most `mtu` octets back to back in a byte stream.
    pub fn byte_stream(io: S, mtu: usize) -> Self {
        Self { io, mtu: mtu.max(MIN_PACKET), framed: true, pending: Vec::new(), written: 0 }
    }

    /// The I/O object.
    pub const fn get_ref(&self) -> &S {
        &self.io
    }
}

/// The length of the IP packet at the front of `octets`, once its header says it.
fn framed_length(octets: &[u8]) -> Option<usize> {
    let field = |at: usize| {
        octets.get(at..).and_then(<[u8]>::first_chunk).map(|b| usize::from(u16::from_be_bytes(*b)))
    };
    match octets.first()? >> 4 {
        4 => field(2),
        6 => field(4).map(|payload| payload + 40),
        // Garbage: let the caller's bounds check refuse it.
        _ => Some(0),
    }
}

impl<S: AsyncRead + AsyncWrite + Send + Unpin + 'static> IoDevice<S> {
    fn poll_recv_one(
        &mut self,
        cx: &mut Context<'_>,
        packets: &mut PacketBatch,
    ) -> Poll<io::Result<bool>> {
        if !self.framed {
            let mut buffer = packets.buffer();
            buffer.resize(self.mtu, 0);
            let mut read = ReadBuf::new(&mut buffer);
            match Pin::new(&mut self.io).poll_read(cx, &mut read) {
                Poll::Ready(Ok(())) => {
                    let len = read.filled().len();
                    if len == 0 {
                        packets.recycle(buffer);
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the packet device reached end of file",
                        )));
                    }
                    buffer.truncate(len);
                    packets.push(buffer);
                    Poll::Ready(Ok(true))
                }
                Poll::Ready(Err(error)) => {
                    packets.recycle(buffer);
                    Poll::Ready(Err(error))
                }
                Poll::Pending => {
                    packets.recycle(buffer);
                    Poll::Pending
                }
            }
        } else {
            loop {
                if let Some(len) = framed_length(&self.pending) {
                    if !(MIN_PACKET..=self.mtu).contains(&len) {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "byte-stream device: a packet length outside 20..=MTU",
                        )));
                    }
                    if self.pending.len() >= len {
                        let mut buffer = packets.buffer();
                        buffer.extend(self.pending.drain(..len));
                        packets.push(buffer);
                        return Poll::Ready(Ok(true));
                    }
                }
                // Read more: at most up to the MTU past what is buffered.
                let start = self.pending.len();
                self.pending.resize(start + self.mtu, 0);
                let mut read = ReadBuf::new(self.pending.get_mut(start..).unwrap_or_default());
                let polled = Pin::new(&mut self.io).poll_read(cx, &mut read);
                let got = read.filled().len();
                self.pending.truncate(start + got);
                match polled {
                    Poll::Ready(Ok(())) if got == 0 => {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the packet device reached end of file",
                        )));
                    }
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                    Poll::Pending => return Poll::Pending,
                }
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Send + Unpin + 'static> Device for IoDevice<S> {
    fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        packets: &mut PacketBatch,
    ) -> Poll<io::Result<()>> {
        let mut received = false;
        while packets.room() > 0 {
            match self.poll_recv_one(cx, packets) {
                Poll::Ready(Ok(_)) => received = true,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => break,
            }
        }
        if received { Poll::Ready(Ok(())) } else { Poll::Pending }
    }

    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        packets: &mut PacketBatch,
    ) -> Poll<io::Result<()>> {
        while let Some(packet) = packets.front() {
            let rest = packet.get(self.written..).unwrap_or_default();
            if rest.is_empty() {
                self.written = 0;
                packets.pop_front();
                continue;
            }
            match Pin::new(&mut self.io).poll_write(cx, rest) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => self.written += n,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => {
                    // Push out what a buffered writer holds before waiting.
                    let _ = Pin::new(&mut self.io).poll_flush(cx);
                    return Poll::Pending;
                }
            }
        }
        match Pin::new(&mut self.io).poll_flush(cx) {
            Poll::Ready(result) => Poll::Ready(result),
            // The packets are handed over; the flush completes on a later call.
            Poll::Pending => Poll::Ready(Ok(())),
        }
    }
}

/// One direction of a [`channel`]: a bounded packet queue and who waits on it.
#[derive(Debug, Default)]
struct Pipe {
    packets: VecDeque<Vec<u8>>,
    receiver: Option<Waker>,
    sender: Option<Waker>,
    /// The receiving end is gone: sends fail.
    receiver_gone: bool,
    /// The sending end is gone: once drained, receives fail.
    sender_gone: bool,
}

/// The two pipes of a [`channel`]. Both ends lock the same mutex; it is held only to move
/// packet buffers (pointers), never across an await.
#[derive(Debug)]
struct Pipes {
    directions: [Mutex<Pipe>; 2],
    capacity: usize,
}

/// One end of an in-memory point-to-point link made by [`channel`]: what one end sends the
/// other receives, in order, never lost or reordered. Dropping an end makes the other's calls
/// fail (`BrokenPipe`, after the packets already sent were received).
#[derive(Debug)]
pub struct ChannelDevice {
    pipes: Arc<Pipes>,
    /// Index of the pipe this end receives from; it sends on the other.
    side: usize,
}

/// A pair of connected in-memory devices, each direction holding at most `capacity` packets
/// (a sender finding it full waits: backpressure, not loss).
pub fn channel(capacity: usize) -> (ChannelDevice, ChannelDevice) {
    let pipes = Arc::new(Pipes {
        directions: [Mutex::new(Pipe::default()), Mutex::new(Pipe::default())],
        capacity: capacity.max(1),
    });
    (ChannelDevice { pipes: Arc::clone(&pipes), side: 0 }, ChannelDevice { pipes, side: 1 })
}

impl ChannelDevice {
    fn pipe(&self, index: usize) -> MutexGuard<'_, Pipe> {
        let [first, second] = &self.pipes.directions;
        let pipe = if index == 0 { first } else { second };
        pipe.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Device for ChannelDevice {
    fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        packets: &mut PacketBatch,
    ) -> Poll<io::Result<()>> {
        let mut pipe = self.pipe(self.side);
        if pipe.packets.is_empty() {
            if pipe.sender_gone {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the other end of the channel is gone",
                )));
            }
            pipe.receiver = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let room = packets.room().max(1);
        for _ in 0..room {
            let Some(packet) = pipe.packets.pop_front() else { break };
            packets.push(packet);
        }
        let sender = pipe.sender.take();
        drop(pipe);
        if let Some(waker) = sender {
            waker.wake();
        }
        Poll::Ready(Ok(()))
    }

    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        packets: &mut PacketBatch,
    ) -> Poll<io::Result<()>> {
        let capacity = self.pipes.capacity;
        let mut pipe = self.pipe(1 - self.side);
        if pipe.receiver_gone {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the other end of the channel is gone",
            )));
        }
        let mut moved = false;
        while pipe.packets.len() < capacity {
            // The buffer itself travels to the receiver (no copy); pools on both sides
            // balance when traffic flows both ways.
            let Some(packet) = packets.take_front() else { break };
            pipe.packets.push_back(packet);
            moved = true;
        }
        let done = packets.is_empty();
        if !done {
            pipe.sender = Some(cx.waker().clone());
        }
        let receiver = if moved { pipe.receiver.take() } else { None };
        drop(pipe);
        if let Some(waker) = receiver {
            waker.wake();
        }
        if done { Poll::Ready(Ok(())) } else { Poll::Pending }
    }
}

impl Drop for ChannelDevice {
    fn drop(&mut self) {
        let wakers = {
            let mut receiving = self.pipe(self.side);
            receiving.receiver_gone = true;
            let sender = receiving.sender.take();
            drop(receiving);
            let mut sending = self.pipe(1 - self.side);
            sending.sender_gone = true;
            [sender, sending.receiver.take()]
        };
        for waker in wakers.into_iter().flatten() {
            waker.wake();
        }
    }
}
