//! Received data held as [`Bytes`] slices of the packets it arrived in (zero-copy receive,
//! issue #19), in order and out of order, with the memory those packets pin.
//!
//! A slice keeps its whole packet allocation alive: a 1-octet segment in a 2 KiB buffer pins
//! 2 KiB. So every piece records what it pins (the packet's `BytesMut::capacity()` at receipt,
//! carried by the last piece cut from that packet, plus [`PIECE_OVERHEAD`] of metadata per
//! piece), the connection offers its window from the receive buffer less what is pinned, and
//! the store compacts — copies what it holds once into fresh, exactly sized chunks, one per
//! contiguous run — when pinned memory gets bad relative to the data held: above the budget
//! (the receive buffer's size) by more than a sixteenth of it ([`overdraft`]), or above
//! max(32 KiB, 1.5 × data held) as quinn's assembler does; and a segment whose packet would
//! pin past the budget and that sixteenth is copied instead of sliced. After a compaction, what is pinned is
//! the data held (never more than the budget: the window sees to that) plus the metadata of
//! one piece per run. So what the store pins never exceeds the budget plus its sixteenth
//! plus one segment's octets and metadata; while it compacts, the old and the new copies
//! exist together once.
//!
//! Out-of-order pieces are trimmed against what is already parked when they arrive, and
//! in-order data trims parked pieces when it reaches them, so every octet is handed out
//! exactly once, in order (RFC 9293 §3.10.7.4: only new octets are kept). Which positions are
//! filled, for SACK and for when a hole closes, is still the [`crate::assembler::Assembler`]'s
//! bookkeeping; this store only keeps the octets, at the same stream positions.

use alloc::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};

/// Metadata one held piece costs (its slice handle, what it pins and its position), counted
/// as pinned so that a flood of tiny pieces cannot grow the queues past the budget.
pub(crate) const PIECE_OVERHEAD: usize = size_of::<(u64, Held)>();

/// Compaction pays once pinned memory exceeds this, even when it is over 1.5 × the data held
/// (quinn's threshold): below it, copying would cost more than the memory it frees is worth.
const COMPACT_FLOOR: usize = 32 * 1024;

/// One held piece of the stream.
#[derive(Clone, Debug)]
pub(crate) struct Held {
    data: Bytes,
    /// Octets this piece accounts for: its packet's allocation if it is the last piece cut
    /// from it (else 0), plus [`PIECE_OVERHEAD`].
    pinned: usize,
}

/// The packet a `handle_segment_bytes` call is processing: the payload's new octets are cut
/// from it instead of copied.
#[derive(Debug)]
struct Incoming {
    packet: Bytes,
    /// The allocation the packet came in (`BytesMut::capacity()` at receipt).
    allocation: usize,
}

/// Received octets as slices: in-order data not yet read, out-of-order data parked at its
/// stream position, and what both pin.
#[derive(Debug, Default)]
pub(crate) struct RecvChunks {
    /// In-order octets not yet read, oldest first.
    ready: VecDeque<Held>,
    ready_len: usize,
    /// Out-of-order pieces by stream position: sorted, disjoint.
    parked: VecDeque<(u64, Held)>,
    parked_len: usize,
    /// The stream position of RCV.NXT: the end of the in-order data.
    next: u64,
    /// Sum of the pieces' `pinned`.
    pinned: usize,
    /// Compactions so far (the connection reports the count).
    compactions: u64,
    incoming: Option<Incoming>,
}

impl RecvChunks {
    /// In-order octets not yet read.
    pub(crate) const fn ready_len(&self) -> usize {
        self.ready_len
    }

    /// Octets held, in order and out of order.
    pub(crate) const fn held(&self) -> usize {
        self.ready_len + self.parked_len
    }

    /// Whether no out-of-order piece is parked.
    #[inline]
    pub(crate) fn nothing_parked(&self) -> bool {
        self.parked.is_empty()
    }

    /// Memory the held pieces pin (packet allocations and metadata).
    pub(crate) const fn pinned(&self) -> usize {
        self.pinned
    }

    /// Compactions so far.
    pub(crate) const fn compactions(&self) -> u64 {
        self.compactions
    }

    /// Whether the octets `offset` past RCV.NXT, `len` of them, fit within `budget` once
    /// everything is compacted: those not parked already are counted (data held never
    /// exceeds the budget: octets that would are dropped, never held). Counting a retransmission
    /// that overlaps parked data as new would refuse it for ever once the window is full.
    #[inline]
    pub(crate) fn has_room(&self, offset: usize, len: usize, budget: usize) -> bool {
        if self.parked.is_empty() {
            // The common case, in-order data with nothing parked: no overlap to discount.
            return self.held() + len <= budget;
        }
        self.has_room_beside_parked(offset, len, budget)
    }

    /// [`has_room`](Self::has_room) with pieces parked: octets already parked take no more.
    fn has_room_beside_parked(&self, offset: usize, len: usize, budget: usize) -> bool {
        let start = self.next + offset as u64;
        let end = start + len as u64;
        let first = self.parked.partition_point(|(at, held)| at + len64(held) <= start);
        let parked: usize = self
            .parked
            .range(first..)
            .take_while(|(at, _)| *at < end)
            .map(|(at, held)| offset_in((*at).max(start), (at + len64(held)).min(end)))
            .sum();
        self.held() + (len - parked.min(len)) <= budget
    }

    /// The packet whose segment is being processed: its payload is cut from it.
    pub(crate) fn set_incoming(&mut self, packet: Bytes, allocation: usize) {
        self.incoming = Some(Incoming { packet, allocation });
    }

    /// The segment is processed: the store keeps only the pieces it cut.
    pub(crate) fn clear_incoming(&mut self) {
        self.incoming = None;
    }

    /// `part` as a piece: a slice of the incoming packet when it lies within it (nothing
    /// copied; it pins the packet's allocation), else a copy (it pins only itself).
    ///
    /// A segment's payload is cut once (it is either in order or parked), so the piece is
    /// the incoming packet itself, taken over and narrowed to `part`: no reference count is
    /// touched, where a slice of it would count one more reference and dropping the packet
    /// one less. A second cut of the same packet (none is made) would find it gone and copy.
    #[inline(always)]
    fn cut(&mut self, part: &[u8]) -> (Bytes, usize) {
        if let Some(incoming) = self.incoming.as_ref() {
            // Addresses compared as integers, never dereferenced: `part` is within the packet
            // when its address range is.
            let base = incoming.packet.as_ptr() as usize;
            let at = (part.as_ptr() as usize).wrapping_sub(base);
            if at <= incoming.packet.len()
                && part.len() <= incoming.packet.len() - at
                && let Some(Incoming { mut packet, allocation }) = self.incoming.take()
            {
                let allocation = allocation.max(packet.len());
                packet.truncate(at + part.len());
                packet.advance(at);
                return (packet, allocation);
            }
        }
        (Bytes::copy_from_slice(part), part.len())
    }

    /// `fresh` as a piece to store within `budget` and its [`overdraft`]: a slice of the
    /// incoming packet if what that pins fits beside what is pinned already — after a
    /// compaction, if one frees a third or more — and otherwise a copy, which pins only its
    /// octets. (The overdraft lets a window's worth of full-sized packets, whose headers and
    /// metadata pin a few percent more than their payload, stay slices.)
    #[inline(always)]
    fn admit(&mut self, fresh: &[u8], budget: usize) -> (Bytes, usize) {
        let (data, allocation) = self.cut(fresh);
        let limit = budget + overdraft(budget);
        let fits = |pinned: usize| pinned + allocation + PIECE_OVERHEAD <= limit;
        if fits(self.pinned) || allocation <= fresh.len() {
            return (data, allocation);
        }
        let held = self.held();
        if self.pinned > held + held / 2 {
            self.compact();
            if fits(self.pinned) {
                return (data, allocation);
            }
        }
        (Bytes::copy_from_slice(fresh), fresh.len())
    }

    /// Appends `fresh`, the octets at RCV.NXT, to the in-order data.
    pub(crate) fn push_in_order(&mut self, fresh: &[u8], budget: usize) {
        if fresh.is_empty() {
            return;
        }
        let (data, allocation) = self.admit(fresh, budget);
        let held = Held { data, pinned: allocation + PIECE_OVERHEAD };
        self.pinned += held.pinned;
        self.ready_len += fresh.len();
        self.next += fresh.len() as u64;
        self.ready.push_back(held);
        self.after_store(budget);
    }

    /// Parks `fresh`, the octets `offset` past RCV.NXT, less what is parked already: each
    /// octet is kept once.
    pub(crate) fn park(&mut self, offset: u32, fresh: &[u8], budget: usize) {
        if fresh.is_empty() {
            return;
        }
        let (data, allocation) = self.admit(fresh, budget);
        let start = self.next + u64::from(offset);
        let end = start + data.len() as u64;
        let mut cursor = start;
        let mut index = self.parked.partition_point(|(at, held)| at + len64(held) <= start);
        let mut last_cut = None;
        while cursor < end {
            if let Some((at, held)) = self.parked.get(index)
                && *at <= cursor
            {
                // Already parked: skip it.
                cursor = cursor.max(at + len64(held));
                index += 1;
                continue;
            }
            let gap_end = self.parked.get(index).map_or(end, |(at, _)| (*at).min(end));
            let (from, to) = (offset_in(start, cursor), offset_in(start, gap_end));
            let piece = Held { data: data.slice(from..to), pinned: PIECE_OVERHEAD };
            self.pinned += PIECE_OVERHEAD;
            self.parked_len += to - from;
            self.parked.insert(index, (cursor, piece));
            last_cut = Some(index);
            index += 1;
            cursor = gap_end;
        }
        // The packet stays pinned until its last (highest) piece is gone.
        if let Some((_, held)) = last_cut.and_then(|index| self.parked.get_mut(index)) {
            held.pinned += allocation;
            self.pinned += allocation;
        }
        self.after_store(budget);
    }

    /// `n` more octets are in order (the assembler found the hole before them closed): the
    /// parked pieces up to there join the in-order data, less any part the in-order data
    /// already brought.
    #[inline]
    pub(crate) fn promote(&mut self, n: u32) {
        if self.parked.is_empty() {
            // In-order data with nothing parked (every segment of a clean transfer).
            self.next += u64::from(n);
            return;
        }
        self.promote_parked(n);
    }

    /// [`promote`](Self::promote) with pieces parked.
    fn promote_parked(&mut self, n: u32) {
        let until = self.next + u64::from(n);
        // The end of the in-order data so far: parked octets before it were delivered.
        let mut delivered = self.next;
        while let Some((at, held)) = self.parked.front_mut() {
            if *at >= until {
                break;
            }
            let start = *at;
            let len = held.data.len();
            let skip = offset_in(start, delivered).min(len);
            let take = offset_in(*at, (*at + len as u64).min(until));
            let piece = if take < len {
                // Only part of it is reached (the assembler says this cannot be, but the
                // store stays consistent): the rest stays parked, with what it pins.
                let front = Held { data: held.data.split_to(take), pinned: 0 };
                *at += take as u64;
                front
            } else {
                match self.parked.pop_front() {
                    Some((_, held)) => held,
                    None => break,
                }
            };
            self.parked_len -= piece.data.len();
            let end = (start + piece.data.len() as u64).max(delivered);
            self.deliver_parked(piece, skip);
            delivered = end;
            if take < len {
                break;
            }
        }
        self.next = until;
    }

    /// A parked piece is in order; its first `skip` octets were delivered already.
    fn deliver_parked(&mut self, mut held: Held, skip: usize) {
        if skip >= held.data.len() {
            self.pinned -= held.pinned;
            return;
        }
        held.data = held.data.slice(skip..);
        self.ready_len += held.data.len();
        self.ready.push_back(held);
    }

    /// Drops the parked pieces (the peer's FIN came before them, or the connection reset).
    pub(crate) fn forget_parked(&mut self) {
        for (_, held) in self.parked.drain(..) {
            self.pinned -= held.pinned;
        }
        self.parked_len = 0;
    }

    /// Drops everything held.
    pub(crate) fn clear(&mut self) {
        *self = Self { compactions: self.compactions, ..Self::default() };
    }

    /// Up to `max_len` in-order octets from the front, without a copy.
    pub(crate) fn read_chunk(&mut self, max_len: usize) -> Option<Bytes> {
        let front = self.ready.front_mut()?;
        if max_len == 0 {
            return None;
        }
        if front.data.len() > max_len {
            // The rest stays, with what it pins.
            self.ready_len -= max_len;
            return Some(front.data.split_to(max_len));
        }
        let held = self.ready.pop_front()?;
        self.ready_len -= held.data.len();
        self.pinned -= held.pinned;
        Some(held.data)
    }

    /// Copies in-order octets from the front into `out` and drops them; returns how many.
    pub(crate) fn pop_into(&mut self, out: &mut [u8]) -> usize {
        let mut read = 0;
        while let Some(rest) = out.get_mut(read..).filter(|rest| !rest.is_empty()) {
            let Some(chunk) = self.read_chunk(rest.len()) else { break };
            if let Some(dst) = rest.get_mut(..chunk.len()) {
                dst.copy_from_slice(&chunk);
            }
            read += chunk.len();
        }
        read
    }

    /// Compacts when what is pinned is out of proportion to the data held — over
    /// max(32 KiB, 1.5 × the data held), quinn's rule — or past the budget by more than its
    /// sixteenth ([`overdraft`]): pieces copied because their packets did not fit (see
    /// `admit`) still cost their metadata, and they are merged once that adds up.
    fn after_store(&mut self, budget: usize) {
        let held = self.held();
        let bloated = self.pinned > COMPACT_FLOOR.max(held + held / 2);
        if bloated || self.pinned > budget + overdraft(budget) {
            self.compact();
        }
    }

    /// Copies the in-order data into one fresh chunk, and each run of contiguous parked
    /// pieces into one, releasing the packets they pinned.
    pub(crate) fn compact(&mut self) {
        self.compactions += 1;
        let mut pinned = 0;
        if !self.ready.is_empty() {
            let mut fresh = BytesMut::with_capacity(self.ready_len);
            for held in self.ready.drain(..) {
                fresh.extend_from_slice(&held.data);
            }
            let data = fresh.freeze();
            pinned += data.len() + PIECE_OVERHEAD;
            self.ready.push_back(Held { data, pinned: data_len_pinned(self.ready_len) });
        }
        let mut runs: VecDeque<(u64, Held)> = VecDeque::new();
        let mut index = 0;
        while let Some(&(start, _)) = self.parked.get(index) {
            // The run: pieces each starting where the one before it ended.
            let mut end = start;
            let mut last = index;
            while let Some((at, held)) = self.parked.get(last)
                && *at == end
            {
                end += len64(held);
                last += 1;
            }
            let mut fresh = BytesMut::with_capacity(offset_in(start, end));
            for (_, held) in self.parked.range(index..last) {
                fresh.extend_from_slice(&held.data);
            }
            let data = fresh.freeze();
            pinned += data.len() + PIECE_OVERHEAD;
            let held = Held { pinned: data_len_pinned(data.len()), data };
            runs.push_back((start, held));
            index = last;
        }
        self.parked = runs;
        self.pinned = pinned;
        self.ready.shrink_to(8);
    }
}

/// How far past the budget what is pinned may go before the store compacts: a sixteenth of
/// it. Compaction leaves the data (at most the budget) and one piece's metadata per run
/// (at most a 21st of the budget, by the assembler's range limit), so each compaction is
/// paid for by that much metadata piling up again: a bounded copy per octet received.
pub(crate) const fn overdraft(budget: usize) -> usize {
    budget / 16
}

/// What an exactly sized chunk of `len` octets pins.
const fn data_len_pinned(len: usize) -> usize {
    len + PIECE_OVERHEAD
}

/// A held piece's length as a stream distance.
fn len64(held: &Held) -> u64 {
    held.data.len() as u64
}

/// The distance from stream position `from` to `to` (`to` at or after `from`, within one
/// window of it, so it fits).
fn offset_in(from: u64, to: u64) -> usize {
    usize::try_from(to.saturating_sub(from)).unwrap_or(usize::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn read_all(chunks: &mut RecvChunks) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(chunk) = chunks.read_chunk(usize::MAX) {
            out.extend_from_slice(&chunk);
        }
        out
    }

    #[test]
    fn in_order_payload_is_a_slice_of_the_packet() {
        let mut chunks = RecvChunks::default();
        let packet = Bytes::from_static(b"HEADERpayload");
        chunks.set_incoming(packet.clone(), 2048);
        chunks.push_in_order(&packet[6..], 1 << 20);
        chunks.clear_incoming();
        assert_eq!(chunks.pinned(), 2048 + PIECE_OVERHEAD);
        let chunk = chunks.recv_front();
        assert_eq!(chunk.as_ptr(), packet[6..].as_ptr(), "no copy");
        assert_eq!(chunks.pinned(), 0);
    }

    impl RecvChunks {
        fn recv_front(&mut self) -> Bytes {
            self.read_chunk(usize::MAX).unwrap()
        }
    }

    #[test]
    fn overlapping_parked_pieces_keep_every_octet_once() {
        let mut chunks = RecvChunks::default();
        let data: Vec<u8> = (0..40).collect();
        chunks.park(10, &data[10..20], 1 << 20);
        chunks.park(15, &data[15..30], 1 << 20);
        chunks.park(5, &data[5..35], 1 << 20);
        assert_eq!(chunks.held(), 30);
        // In-order data overlapping the first parked octets.
        chunks.push_in_order(&data[0..12], 1 << 20);
        chunks.promote(23);
        assert_eq!(chunks.held(), 35);
        assert_eq!(read_all(&mut chunks), &data[..35]);
        assert_eq!(chunks.pinned(), 0);
    }

    #[test]
    fn compaction_releases_packets_and_keeps_the_stream() {
        let mut chunks = RecvChunks::default();
        let data: Vec<u8> = (0..=255).collect();
        for i in (0..20).rev() {
            let packet = Bytes::copy_from_slice(&data[i + 1..i + 2]);
            chunks.set_incoming(packet.clone(), 2048);
            chunks.park(u32::try_from(i).unwrap() + 1, &packet, 1 << 20);
        }
        chunks.clear_incoming();
        assert!(chunks.compactions() > 0);
        chunks.push_in_order(&data[0..1], 1 << 20);
        chunks.promote(20);
        assert_eq!(read_all(&mut chunks), &data[..21]);
        assert_eq!(chunks.pinned(), 0);
    }
}
