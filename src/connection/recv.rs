//! The zero-copy receive side (issue #19): segments handed over as `BytesMut`
//! ([`Connection::handle_segment_bytes`]) keep their payload as slices of the packet
//! ([`crate::chunks::RecvChunks`]), and the application takes them without a copy
//! ([`Connection::read_chunk`], [`Connection::recv_bytes`]).
//!
//! One connection keeps its received data in one storage at a time. The copying path
//! (`handle_segment`) keeps it in the byte ring, exactly as before: its windows, its
//! steady-state zero allocations and its buffer reuse across connections stay as they were.
//! The first segment that arrives through the `Bytes` path while the ring holds nothing
//! (nothing unread, nothing out of order) switches the connection to chunks for the rest of
//! its life (until it is reset to be opened again); a `Bytes` segment that arrives while the
//! ring holds data is copied into the ring instead. Once on chunks, a segment handed over by
//! the copying path is copied into a chunk of its own (an allocation per segment, for a
//! connection that mixes the forms). So the two storages are never both holding data, and the
//! ordering and exactly-once delivery of each is what that storage alone guarantees.
//!
//! With chunks, the window is the receive buffer less the memory the held packets pin (not
//! just the octets held), never retreating from an edge already advertised (SHLD-14: octets
//! up to it are still taken, and the store compacts rather than refuse them).

use alloc::boxed::Box;
use bytes::{Bytes, BytesMut};
use core::net::IpAddr;

use super::autotune::RcvSpace;
use super::{Connection, len_u32};
use crate::assembler::Assembler;
use crate::chunks::RecvChunks;
use crate::connection::CallError;
use crate::event::Event;
use crate::state::State;
use crate::time::Instant;
use crate::wire::{ParseError, Segment};

/// What the receive ring's storage carries besides its octets: auto-tuning's measurements,
/// and the chunk store once the connection receives through the `Bytes` path.
#[derive(Debug, Default)]
pub(crate) struct RecvExtra {
    pub(super) space: RcvSpace,
    /// `Some` once received data is kept as chunks instead of in the ring. Boxed: a
    /// connection on the ring pays 8 octets for it, not the store's queues.
    pub(super) chunks: Option<Box<RecvChunks>>,
}

impl Connection {
    /// SEGMENT ARRIVES through the zero-copy path: `packet` is one whole TCP segment (header
    /// and payload) from `remote_ip` to `local_ip`. It is validated like the endpoint's input
    /// — checksum and lengths (MUST-3, MUST-7) — then processed as
    /// [`handle_segment`](Self::handle_segment) does, except that its payload is kept as a
    /// slice of `packet` instead of being copied: the application later takes it with
    /// [`read_chunk`](Self::read_chunk) or [`recv_bytes`](Self::recv_bytes) (or copies it
    /// with [`recv`](Self::recv)).
    ///
    /// A kept slice holds the whole allocation of `packet` (its `capacity()` as given) until
    /// the application has taken the data, so that allocation counts against the receive
    /// buffer: the offered window shrinks by it, and held data is copied together (compacted)
    /// when packets pin far more than the data in them. A caller that carves packets out of a
    /// larger buffer (`BytesMut::split`) should know that the whole buffer stays allocated
    /// while any slice of it is held, though only the packet's own capacity is counted.
    ///
    /// # Errors
    /// A segment that fails validation is not processed and the parse error is returned.
    pub fn handle_segment_bytes(
        &mut self,
        now: Instant,
        remote_ip: IpAddr,
        local_ip: IpAddr,
        packet: BytesMut,
    ) -> Result<(), ParseError> {
        let allocation = packet.capacity();
        let packet = packet.freeze();
        let segment = Segment::parse_checked(&packet, remote_ip, local_ip)?;
        self.handle_segment_staged(now, remote_ip, &segment, (&packet, allocation), false);
        Ok(())
    }

    /// Processes `segment`, parsed from `packet` (which came in an allocation of
    /// `allocation` octets) and demultiplexed to this connection by the endpoint (see
    /// [`handle_demultiplexed_segment`](Self::handle_demultiplexed_segment)), keeping its
    /// payload as a slice of `packet` where it is kept.
    // In line in the endpoint's `Bytes` input: a wrapper around one call, whose own call
    // (its frame, the arguments passed on) cost ≈ 25 instructions a segment.
    #[inline]
    pub(crate) fn handle_segment_in(
        &mut self,
        now: Instant,
        remote_ip: IpAddr,
        segment: &Segment<'_>,
        packet: &Bytes,
        allocation: usize,
    ) {
        self.handle_segment_staged(now, remote_ip, segment, (packet, allocation), true);
    }

    /// The payload's packet staged for the store, then the segment processed, through
    /// [`handle_demultiplexed_segment`](Self::handle_demultiplexed_segment) when the
    /// endpoint found this connection by the segment's 4-tuple, else
    /// [`handle_segment`](Self::handle_segment), which checks the addresses itself.
    #[inline(always)]
    fn handle_segment_staged(
        &mut self,
        now: Instant,
        remote_ip: IpAddr,
        segment: &Segment<'_>,
        (packet, allocation): (&Bytes, usize),
        demultiplexed: bool,
    ) {
        if !segment.payload.is_empty()
            && self.use_chunks()
            && let Some(chunks) = self.chunks_mut()
        {
            chunks.set_incoming(packet.clone(), allocation);
        }
        if demultiplexed {
            self.handle_demultiplexed_segment(now, remote_ip, segment);
        } else {
            self.handle_segment(now, remote_ip, segment);
        }
        if let Some(chunks) = self.chunks_mut() {
            chunks.clear_incoming();
        }
    }

    /// Whether received data goes to chunks: it already does, or the ring holds nothing and
    /// the connection switches now. In line: every segment with text asks.
    #[inline(always)]
    fn use_chunks(&mut self) -> bool {
        self.chunks().is_some() || self.switch_to_chunks()
    }

    /// [`use_chunks`](Self::use_chunks) on the ring: switches to chunks if the ring holds
    /// nothing. Out of line: once per connection that receives through the `Bytes` path.
    #[cold]
    #[inline(never)]
    fn switch_to_chunks(&mut self) -> bool {
        let ring_idle =
            self.recv_buf.is_empty() && self.assembler.as_ref().is_none_or(|a| a.is_empty());
        if ring_idle {
            self.recv_buf.extra_or_init().chunks = Some(Box::default());
        }
        ring_idle
    }

    pub(super) fn chunks(&self) -> Option<&RecvChunks> {
        self.recv_buf.extra().and_then(|extra| extra.chunks.as_deref())
    }

    pub(super) fn chunks_mut(&mut self) -> Option<&mut RecvChunks> {
        self.recv_buf.extra_mut().and_then(|extra| extra.chunks.as_deref_mut())
    }

    /// In-order octets received and not yet read, whichever storage holds them (in line: the
    /// test of an in-line RECEIVE).
    #[inline]
    pub(super) fn recv_len(&self) -> usize {
        self.recv_buf.len() + self.chunks().map_or(0, RecvChunks::ready_len)
    }

    /// The receive buffer's free space as the window sees it: in the ring, its free octets;
    /// with chunks, the buffer less what the held packets pin (in order and out of order).
    pub(super) fn recv_free(&self) -> usize {
        match self.chunks() {
            Some(chunks) => {
                self.recv_buf.capacity().saturating_sub(chunks.pinned().max(chunks.ready_len()))
            }
            None => self.recv_buf.free(),
        }
    }

    /// The octets the buffer can still take past RCV.NXT, its reserve included, once what it
    /// holds is compacted: what a window already promised may use.
    pub(super) fn recv_room(&self) -> usize {
        self.recv_buf.capacity().saturating_sub(self.recv_len())
    }

    /// Drops the out-of-order chunks (with the assembler's ranges).
    pub(super) fn forget_parked_chunks(&mut self) {
        if let Some(chunks) = self.chunks_mut() {
            chunks.forget_parked();
        }
    }

    /// Drops every chunk held; with `back_to_ring`, the connection returns to the ring.
    pub(super) fn clear_chunks(&mut self, back_to_ring: bool) {
        if let Some(extra) = self.recv_buf.extra_mut() {
            if back_to_ring {
                extra.chunks = None;
            } else if let Some(chunks) = extra.chunks.as_mut() {
                chunks.clear();
            }
        }
    }

    /// Memory the held chunks pin and compactions so far (both 0 on the ring).
    pub(super) fn chunk_figures(&self) -> (usize, u64) {
        self.chunks().map_or((0, 0), |chunks| (chunks.pinned(), chunks.compactions()))
    }

    /// [`accept_text`](Self::accept_text) with chunks: `fresh` (already trimmed to the
    /// window) is `offset` octets past RCV.NXT. Every octet the window lets in fits the
    /// buffer once compacted, so the store compacts rather than refuse in-window data; data
    /// that would not fit all the same is dropped and counted, never taken back later.
    pub(super) fn accept_chunk_text(
        &mut self,
        now: Instant,
        offset: usize,
        fresh: &[u8],
        fits: bool,
    ) -> bool {
        let budget = self.recv_buf.capacity();
        let room = self.chunks().is_some_and(|chunks| chunks.has_room(offset, fresh.len(), budget));
        if offset > 0 {
            let sack_ok = self.sack_ok;
            let rcv_nxt = self.rcv_nxt;
            let assembler = self.assembler.get_or_insert_with(Default::default);
            let (start, end) = (len_u32(offset), len_u32(offset + fresh.len()));
            if let Some((from, to)) = assembler.overlap(start, end).filter(|_| sack_ok) {
                // RFC 2883 §4: out-of-order octets we already hold.
                let (left, right) = (rcv_nxt + from, rcv_nxt + to);
                assembler.set_dsack(crate::wire::SackBlock { left, right });
            }
            let max_ranges = Assembler::range_limit(budget);
            let stored = room && assembler.insert(start, end, max_ranges).is_ok();
            if stored {
                assembler.note_arrival(start);
                if let Some(chunks) = self.chunks_mut() {
                    chunks.park(start, fresh, budget);
                }
            } else {
                self.count().out_of_order_dropped += 1;
            }
            self.ack_now();
            return stored && fits;
        }
        if !room {
            self.count().recv_memory_dropped += 1;
            self.ack_now();
            return false;
        }
        let was_empty = self.recv_len() == 0;
        let filled_hole = self.assembler.as_ref().is_some_and(|assembler| !assembler.is_empty());
        let written = len_u32(fresh.len());
        let reached = self.assembler.as_mut().map_or(0, |assembler| assembler.advance(written));
        if let Some(chunks) = self.chunks_mut() {
            chunks.push_in_order(fresh, budget);
            chunks.promote(reached);
        }
        self.advance_rcv_nxt(written + reached);
        if was_empty {
            self.push_event(Event::Readable);
        }
        if filled_hole {
            self.unacked_octets = self.unacked_octets.saturating_add(written);
            self.ack_now();
        } else {
            self.ack_soon(now, written);
        }
        fits
    }

    /// Step 7 (RFC 9293 §3.10.7.4) for header prediction's text: `payload` starts at RCV.NXT
    /// and fits the acceptable window. When nothing is held out of order (no hole to fill,
    /// no parked piece to reach) and the store has room, the octets are appended and RCV.NXT
    /// moves past them, with the Readable event and the ACK scheduling of
    /// [`accept_text_within`](Self::accept_text_within)'s in-order tail (SHLD-18/19 through
    /// `ack_soon`), without its trimming, duplicate and reassembly steps, none of which can
    /// apply. Returns `false`, having changed nothing, when that store cannot be used: the
    /// caller then takes the general one.
    #[inline(always)]
    pub(super) fn store_predicted_text(&mut self, now: Instant, payload: &[u8]) -> bool {
        if self.assembler.as_ref().is_some_and(|assembler| !assembler.is_empty()) {
            return false;
        }
        let budget = self.recv_buf.capacity();
        let ring_len = self.recv_buf.len();
        let written = match self.recv_buf.extra_mut().and_then(|extra| extra.chunks.as_deref_mut())
        {
            Some(chunks) => {
                // `has_room` with nothing parked (the assembler is empty, so nothing is).
                if !chunks.nothing_parked() || chunks.held() + payload.len() > budget {
                    return false;
                }
                let was_empty = ring_len + chunks.ready_len() == 0;
                chunks.push_in_order(payload, budget);
                (len_u32(payload.len()), was_empty)
            }
            None => {
                let was_empty = ring_len == 0;
                let written = self.recv_buf.write_at(0, payload);
                self.recv_buf.commit(written);
                (len_u32(written), was_empty && written > 0)
            }
        };
        let (written, was_empty) = written;
        // An empty assembler only follows RCV.NXT (it reaches nothing).
        if let Some(assembler) = self.assembler.as_mut() {
            assembler.advance(written);
        }
        self.advance_rcv_nxt(written);
        if was_empty {
            self.push_event(Event::Readable);
        }
        self.ack_soon(now, written);
        true
    }

    /// RECEIVE without a copy: up to `max_len` octets of in-order data, as a slice of the
    /// packet it arrived in when it came through
    /// [`handle_segment_bytes`](Self::handle_segment_bytes). A chunk never spans two
    /// segments' payloads, so it may be shorter than `max_len` with more data waiting. Data
    /// received through the copying path is copied out of the receive ring into the chunk
    /// returned (one allocation).
    ///
    /// `Ok(None)` means nothing to read yet (or `max_len` is 0).
    ///
    /// # Errors
    /// As [`recv`](Self::recv): [`CallError::Closing`] at the end of the stream (the peer's
    /// FIN is in and everything before it was read), or the reason the connection ended.
    pub fn read_chunk(&mut self, max_len: usize) -> Result<Option<Bytes>, CallError> {
        if self.read_closed {
            return Err(CallError::Closing);
        }
        if self.recv_len() > 0 {
            if max_len == 0 {
                return Ok(None);
            }
            let chunk = match self.chunks_mut() {
                Some(chunks) => chunks.read_chunk(max_len),
                None => {
                    let (front, _) = self.recv_buf.peek(0, max_len);
                    let chunk = Bytes::copy_from_slice(front);
                    self.recv_buf.discard(chunk.len());
                    Some(chunk)
                }
            };
            self.after_read();
            return Ok(chunk);
        }
        self.nothing_to_read().map(|()| None)
    }

    /// RECEIVE of several chunks at once without a copy: fills `out` from the front with the
    /// next chunks of in-order data, each as [`recv_bytes`](Self::recv_bytes) would return it,
    /// and returns how many it filled (the rest of `out` is left as it was). The bookkeeping
    /// a read sets off (the window update, auto-tuning, urgent data) runs once for the batch,
    /// not once per chunk: the way to read a stream of segment-sized chunks cheaply.
    ///
    /// `Ok(0)` means nothing to read yet (or `out` is empty).
    ///
    /// # Errors
    /// As [`read_chunk`](Self::read_chunk), when nothing was read.
    pub fn read_chunks(&mut self, out: &mut [Bytes]) -> Result<usize, CallError> {
        if self.read_closed {
            return Err(CallError::Closing);
        }
        if out.is_empty() {
            return Ok(0);
        }
        let mut filled = 0;
        if let Some(chunks) = self.chunks_mut() {
            // The store is looked up once for the batch. (With chunks in use the ring holds
            // nothing, and a chunk-less store reads as the end of the batch either way.)
            for slot in out.iter_mut() {
                if chunks.ready_len() == 0 {
                    break;
                }
                let Some(chunk) = chunks.read_chunk(usize::MAX) else { break };
                *slot = chunk;
                filled += 1;
            }
        } else {
            for slot in out.iter_mut() {
                if self.recv_buf.is_empty() {
                    break;
                }
                let (front, _) = self.recv_buf.peek(0, usize::MAX);
                let chunk = Bytes::copy_from_slice(front);
                self.recv_buf.discard(chunk.len());
                *slot = chunk;
                filled += 1;
            }
        }
        if filled > 0 {
            self.after_read();
            return Ok(filled);
        }
        self.nothing_to_read().map(|()| 0)
    }

    /// RECEIVE of the next whole chunk without a copy: [`read_chunk`](Self::read_chunk)
    /// with no length limit (a segment's payload as it arrived, less what was read of it).
    ///
    /// # Errors
    /// As [`read_chunk`](Self::read_chunk).
    pub fn recv_bytes(&mut self) -> Result<Option<Bytes>, CallError> {
        self.read_chunk(usize::MAX)
    }

    /// Copies in-order data into `out`, from whichever storage holds it.
    pub(super) fn pop_received(&mut self, out: &mut [u8]) -> usize {
        match self.chunks_mut() {
            Some(chunks) => chunks.pop_into(out),
            None => self.recv_buf.pop_into(out),
        }
    }

    /// RECEIVE of buffered data into `out` (some is buffered): the copy, then what reading
    /// changes.
    #[inline(never)]
    pub(super) fn read_into(&mut self, out: &mut [u8]) -> usize {
        let read = self.pop_received(out);
        self.after_read();
        read
    }

    /// The application read data: urgent data, auto-tuning and the window learn of it.
    pub(super) fn after_read(&mut self) {
        self.on_urgent_read();
        self.on_read_for_autotune();
        self.autotune();
        self.on_data_read();
    }

    /// RECEIVE with nothing buffered: `Ok` while more may come, else end of stream or the
    /// reason the connection ended.
    pub(super) fn nothing_to_read(&self) -> Result<(), CallError> {
        match self.state {
            State::Closed => Err(self.closed_error()),
            State::Listen
            | State::SynSent
            | State::SynReceived
            | State::Established
            | State::FinWait1
            | State::FinWait2 => Ok(()),
            State::CloseWait | State::Closing | State::LastAck | State::TimeWait => {
                Err(CallError::Closing)
            }
        }
    }
}
