//! The send buffer: the octets from SND.UNA onward, held as a queue of [`Bytes`] chunks until
//! acknowledged, so a (re)transmission is a slice of them (a reference count, never a copy).
//!
//! Chunks arrive two ways. [`SendQueue::push_bytes`] keeps the caller's chunk by reference
//! (a small one is copied instead, so many tiny chunks cannot pin many allocations and many
//! queue entries). [`SendQueue::push`] copies into a *tail* [`BytesMut`] block, so small writes
//! do not become many chunks; the tail becomes a chunk ("is sealed") only when a slice of it is
//! needed, a by-reference chunk must follow it, or its block is full. The copying output
//! ([`SendQueue::pieces`]) reads the tail in place and never seals it.
//!
//! Tail blocks are a quarter of the buffer's limit each, and come back for reuse
//! (`BytesMut::try_reclaim`) once every chunk sealed from them is acknowledged and dropped: a
//! bulk sender through `push` allocates nothing per segment in steady state, and holds at most
//! five blocks (1.25 × the limit) while nobody else keeps slices of them. The limit counts queued
//! octets, as a ring's capacity did; it only grows (`connection::autotune`), and growing moves
//! nothing. Nothing is allocated until the first write, so an idle connection holds 16 bytes.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use bytes::{Buf, Bytes, BytesMut};
use core::mem::ManuallyDrop;

/// A by-reference chunk shorter than this is copied into the tail instead: it would cost a
/// queue entry (and pin its whole allocation) for a few octets, and a segment built of many of
/// them would need many iovecs.
pub(crate) const COPY_BELOW: usize = 256;

/// The tail block is this fraction of the limit (see the module documentation for why five
/// blocks then always suffice).
const BLOCKS_PER_LIMIT: usize = 4;

/// Spare blocks kept for reuse besides the tail.
const MAX_SPARES: usize = BLOCKS_PER_LIMIT;

/// At most this many payload slices describe one segment (see [`Payload`]). Seven cover a
/// full-sized Ethernet segment (MSS up to 1537) over chunks of 256 octets or more (shorter ones are copied)
/// (a part of one, five whole ones, a part of one more), and keep a [`Payload`] within 256
/// octets: it is returned by value for every segment, and `memcpy` moves a larger one by a
/// slower loop (about 50 instructions a segment rather than 15).
pub const MAX_PAYLOAD_SLICES: usize = 7;

/// The payload of one segment as [`Bytes`] slices of the send queue, in order, for writing
/// as iovecs after the header. Fixed capacity, so describing a segment allocates nothing. A
/// segment spanning more than [`MAX_PAYLOAD_SLICES`] chunks (possible only with chunks
/// shorter than a segment, sealed apart) has its last slice gathered into one new buffer.
///
/// Only the first `count` slots ever hold a slice; the rest hold the empty static
/// [`Bytes::new`], which owns nothing. So they are never dropped (`ManuallyDrop`; `Drop`
/// releases the slices in use): dropping an empty `Bytes` is still a call through its vtable,
/// and a payload of one slice dropped its seven empty slots on every segment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Payload {
    slices: ManuallyDrop<[Bytes; MAX_PAYLOAD_SLICES]>,
    count: usize,
    /// Octets in the slices, kept as they are pushed: every segment asks for it (its
    /// length, the checksum) and summing the slices each time cost more than keeping it.
    len: usize,
}

impl Payload {
    /// The slices, in order; empty for a segment without data.
    pub fn slices(&self) -> &[Bytes] {
        self.slices.get(..self.count).unwrap_or_default()
    }

    /// Octets of payload in all slices.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the segment carries no data.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Drops the slices (their chunks are then released).
    #[inline]
    pub(crate) fn clear(&mut self) {
        for slice in self.slices.iter_mut().take(self.count) {
            drop(core::mem::take(slice));
        }
        self.count = 0;
        self.len = 0;
    }

    /// [`clear`](Self::clear), out of line.
    #[inline(never)]
    fn clear_all(&mut self) {
        self.clear();
    }

    fn push(&mut self, slice: Bytes) {
        if let Some(slot) = self.slices.get_mut(self.count) {
            self.len += slice.len();
            // A free slot holds the empty static `Bytes`: nothing to drop.
            let empty = core::mem::replace(slot, slice);
            debug_assert!(empty.is_empty(), "a free payload slot held a slice");
            core::mem::forget(empty);
            self.count += 1;
        }
    }
}

impl Drop for Payload {
    fn drop(&mut self) {
        // Nothing reads the counts again. One slice (a bulk sender's every segment) is
        // released alone, as the last thing done (a jump to its release, no frame); more
        // go through the loop of `clear`, out of line, whose registers live across calls.
        if self.count == 1
            && let Some(first) = self.slices.first_mut()
        {
            drop(core::mem::take(first));
        } else {
            self.clear_all();
        }
    }
}

/// The pieces of a range of the queue ([`SendQueue::pieces`]): parts of chunks, then of the
/// tail, in order.
#[derive(Clone)]
pub(crate) struct Pieces<'a> {
    store: Option<&'a Store>,
    /// The chunk the next piece comes from; `chunks.len()` is the tail.
    index: usize,
    /// Octets of that chunk before the range.
    skip: usize,
    /// Octets of the range not yet handed out.
    left: usize,
}

impl Pieces<'_> {
    /// No pieces.
    pub(crate) const EMPTY: Self = Pieces { store: None, index: 0, skip: 0, left: 0 };
}

impl<'a> Iterator for Pieces<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        let store = self.store?;
        let source: &'a [u8] = match store.chunks.get(self.index) {
            Some(chunk) => chunk,
            None => {
                // The tail is the last source: whatever it cannot give does not exist.
                let tail = store.tail.get(self.skip..).unwrap_or_default();
                let piece = tail.get(..self.left).unwrap_or(tail);
                self.left = 0;
                return (!piece.is_empty()).then_some(piece);
            }
        };
        self.index += 1;
        let rest = source.get(core::mem::take(&mut self.skip)..).unwrap_or_default();
        let piece = rest.get(..self.left).unwrap_or(rest);
        self.left -= piece.len();
        Some(piece)
    }
}

/// Data offered to the queue: octets to copy, or a chunk to keep by reference.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Data<'a> {
    Copied(&'a [u8]),
    Shared(&'a Bytes),
}

impl Data<'_> {
    pub(crate) fn len(self) -> usize {
        match self {
            Data::Copied(data) => data.len(),
            Data::Shared(chunk) => chunk.len(),
        }
    }
}

/// The send queue: 16 bytes until first written.
#[derive(Debug, Default)]
pub(crate) struct SendQueue {
    store: Option<Box<Store>>,
    /// Octets that may be queued (the send buffer's size).
    capacity: u32,
    /// The capacity may grow to this ([`SendQueue::grow_to`] stops here).
    limit: u32,
}

/// The allocated part of a [`SendQueue`].
#[derive(Debug, Default)]
struct Store {
    /// Sealed chunks, oldest first; the front one starts at the queue's front (SND.UNA).
    chunks: VecDeque<Bytes>,
    /// Octets in `chunks`.
    sealed_len: usize,
    /// The newest octets, after every chunk, not yet sealed.
    tail: BytesMut,
    /// Earlier tail blocks, kept to be reclaimed once no chunk uses them.
    spares: Vec<BytesMut>,
    /// Chunks dropped from the front since the store was made: `chunks[i]` is chunk number
    /// `popped + i`, which keeps the lookup cursor valid across discards.
    popped: usize,
    /// Where a recent lookup ended ([`SendQueue::pieces`], [`SendQueue::slices`]): a chunk's
    /// number and its start, counted from `front_pos`'s origin. Lookups move forward through
    /// the queue as new data goes out, so each one resumes here instead of walking from the
    /// front. Only ever set to a chunk that exists, and moved along when that chunk's start
    /// moves.
    cursor: Option<(usize, usize)>,
    /// Octets discarded from the front since the store was made.
    front_pos: usize,
    /// Tail blocks allocated so far.
    #[cfg(test)]
    blocks_allocated: usize,
}

impl Store {
    fn len(&self) -> usize {
        self.sealed_len + self.tail.len()
    }

    /// The chunk holding `offset` (octets past the front, below `sealed_len`): its index in
    /// `chunks`, the offset within it, and its start (for the cursor).
    fn locate(&self, offset: usize) -> Option<(usize, usize, usize)> {
        let target = self.front_pos + offset;
        let (mut index, mut start) = match self.cursor {
            Some((number, start)) if number >= self.popped && start <= target => {
                (number - self.popped, start)
            }
            _ => (0, self.front_pos),
        };
        loop {
            let chunk = self.chunks.get(index)?;
            if target < start + chunk.len() {
                return Some((index, target - start, start));
            }
            start += chunk.len();
            index += 1;
        }
    }

    /// Makes the tail's contents the last chunk.
    fn seal(&mut self) {
        if !self.tail.is_empty() {
            let sealed = self.tail.split().freeze();
            self.sealed_len += sealed.len();
            self.chunks.push_back(sealed);
        }
    }

    /// Gives the tail room for at least one more octet: seals it and continues in a block
    /// nothing refers to any more (the tail's own, or a spare's), or else in a new one.
    fn renew_tail(&mut self, block: usize) {
        self.seal();
        if self.tail.try_reclaim(block) {
            return;
        }
        let reusable = self.spares.iter_mut().position(|spare| spare.try_reclaim(block));
        let next = match reusable {
            Some(index) => self.spares.swap_remove(index),
            None => {
                if self.spares.len() >= MAX_SPARES {
                    // Someone else still holds slices of the oldest: let them have it.
                    self.spares.remove(0);
                }
                #[cfg(test)]
                {
                    self.blocks_allocated += 1;
                }
                BytesMut::with_capacity(block)
            }
        };
        // Kept even with no room left (sealed to the end): its chunks come back.
        let old = core::mem::replace(&mut self.tail, next);
        self.spares.push(old);
    }
}

impl SendQueue {
    /// A queue of at most `capacity` octets (at most 4 GiB − 1) that does not grow until its
    /// limit is raised.
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = u32::try_from(capacity).unwrap_or(u32::MAX);
        Self { store: None, capacity, limit: capacity }
    }

    /// Takes over the storage of `spare` (the queue of a connection that ended), emptied, if
    /// this queue has none yet and both have the same capacity, so a new connection reuses the
    /// old one's blocks. The old contents are never readable again.
    pub(crate) fn adopt(&mut self, spare: Self) {
        if self.store.is_some() || spare.capacity != self.capacity {
            return;
        }
        let block = self.block();
        if let Some(mut store) = spare.store {
            // Mostly empty already (everything acknowledged): then no call to clear it.
            if !store.chunks.is_empty() {
                store.chunks.clear();
            }
            store.sealed_len = 0;
            store.tail.clear();
            // Back to the start of its block when nothing else refers to it: each connection
            // wrote a little further into it, and the connection after the one that reached
            // its end would have allocated a fresh block.
            let _ = store.tail.try_reclaim(block);
            store.cursor = None;
            store.popped = 0;
            store.front_pos = 0;
            self.store = Some(store);
        }
    }

    /// The most the queue may grow to.
    #[cfg(test)]
    pub(crate) const fn limit(&self) -> usize {
        self.limit as usize
    }

    /// Sets how far the capacity may grow; never below it (a send buffer does not shrink).
    pub(crate) fn set_limit(&mut self, limit: usize) {
        self.limit = u32::try_from(limit).unwrap_or(u32::MAX).max(self.capacity);
    }

    /// Grows the capacity to `capacity`, at most to the limit; returns the capacity now.
    /// Nothing moves: later tail blocks are larger.
    pub(crate) fn grow_to(&mut self, capacity: usize) -> usize {
        let capacity = u32::try_from(capacity).unwrap_or(u32::MAX).min(self.limit);
        if capacity > self.capacity {
            self.capacity = capacity;
            if let Some(store) = self.store.as_mut() {
                // Blocks of the old size are freed as their chunks are acknowledged.
                store.spares.clear();
            }
        }
        self.capacity()
    }

    /// Drops the storage of a queue grown past `initial` and returns it to that capacity
    /// (empty): for a connection that ended, so grown blocks are not kept for reuse.
    pub(crate) fn shrink_unused(&mut self, initial: usize) {
        if self.capacity() != initial {
            *self = Self::new(initial);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.store.as_ref().map_or(0, |store| store.len())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) const fn capacity(&self) -> usize {
        self.capacity as usize
    }

    pub(crate) fn free(&self) -> usize {
        self.capacity().saturating_sub(self.len())
    }

    /// The size of a new tail block.
    fn block(&self) -> usize {
        self.capacity().div_ceil(BLOCKS_PER_LIMIT).max(1)
    }

    /// Appends a copy of as much of `data` as fits; returns how much was taken.
    pub(crate) fn push(&mut self, data: &[u8]) -> usize {
        let take = data.len().min(self.free());
        if take == 0 {
            return 0;
        }
        let block = self.block();
        let store = self.store.get_or_insert_with(Box::default);
        let mut rest = data.get(..take).unwrap_or_default();
        while !rest.is_empty() {
            let room = store.tail.capacity() - store.tail.len();
            if room == 0 {
                store.renew_tail(block);
                continue;
            }
            let (now, later) = rest.split_at(rest.len().min(room));
            // Within the reserved capacity: never reallocates.
            store.tail.extend_from_slice(now);
            rest = later;
        }
        take
    }

    /// Appends as much of `chunk` as fits, by reference (a chunk shorter than
    /// [`COPY_BELOW`] is copied); returns how much was taken.
    pub(crate) fn push_bytes(&mut self, chunk: &Bytes) -> usize {
        let take = chunk.len().min(self.free());
        if take < COPY_BELOW {
            return self.push(chunk.get(..take).unwrap_or_default());
        }
        let store = self.store.get_or_insert_with(Box::default);
        // The tail's octets came first.
        store.seal();
        store.chunks.push_back(if take == chunk.len() {
            chunk.clone()
        } else {
            chunk.slice(..take)
        });
        store.sealed_len += take;
        take
    }

    /// Appends as much of `data`, from octet `from` on, as fits; returns how much was taken.
    pub(crate) fn append(&mut self, data: Data<'_>, from: usize) -> usize {
        match data {
            Data::Copied(data) => self.push(data.get(from..).unwrap_or_default()),
            Data::Shared(chunk) if from == 0 => self.push_bytes(chunk),
            Data::Shared(chunk) => match chunk.get(from..) {
                Some(rest) if rest.len().min(self.free()) < COPY_BELOW => self.push(rest),
                Some(_) => self.push_bytes(&chunk.slice(from..)),
                None => 0,
            },
        }
    }

    /// Drops `n` octets from the front (clamped to the length): they were acknowledged.
    pub(crate) fn discard(&mut self, n: usize) {
        let Some(store) = self.store.as_mut() else { return };
        let n = n.min(store.len());
        store.front_pos += n;
        let mut left = n;
        while left > 0 {
            let Some(front) = store.chunks.front_mut() else { break };
            if front.len() > left {
                front.advance(left);
                store.sealed_len -= left;
                // The front chunk now starts later: a cursor on it would be stale.
                if store.cursor.is_some_and(|(number, _)| number == store.popped) {
                    store.cursor = Some((store.popped, store.front_pos));
                }
                return;
            }
            left -= front.len();
            store.sealed_len -= front.len();
            store.chunks.pop_front();
            store.popped += 1;
        }
        if left == store.tail.len() {
            // The whole tail acknowledged: the next write starts where this one did, not
            // after it (nothing refers to unsealed octets). A short exchange's tail then never
            // creeps through its block, and the next connection adopts it with nothing to
            // reclaim (`adopt`).
            store.tail.clear();
        } else {
            store.tail.advance(left);
        }
    }

    /// The `len` octets starting `offset` octets into the queue (clamped to what is queued),
    /// as borrowed pieces in order: for a segment copied into the caller's buffer. Does not
    /// seal the tail; notes where the range starts, so the next lookup resumes there.
    pub(crate) fn pieces(&mut self, offset: usize, len: usize) -> Pieces<'_> {
        // A segment without data (an ACK, a SYN, a FIN alone): nothing to locate.
        let store = if len == 0 { None } else { self.store.as_deref_mut() };
        let Some(store) = store else {
            return Pieces { store: None, index: 0, skip: 0, left: 0 };
        };
        // A bulk sender's segment: the range lies within the chunk the last lookup ended in
        // (the cursor), as in `slices`; the general path below finds the same.
        if let Some((number, start)) = store.cursor
            && let Some(index) = number.checked_sub(store.popped)
            && let Some(chunk) = store.chunks.get(index)
            && let Some(skip) = (store.front_pos + offset).checked_sub(start)
            && skip + len <= chunk.len()
        {
            return Pieces { store: Some(store), index, skip, left: len };
        }
        let offset = offset.min(store.len());
        let left = len.min(store.len() - offset);
        let (index, skip) = if offset < store.sealed_len {
            match store.locate(offset) {
                Some((index, within, start)) => {
                    store.cursor = Some((index + store.popped, start));
                    (index, within)
                }
                None => (store.chunks.len(), 0),
            }
        } else {
            (store.chunks.len(), offset - store.sealed_len)
        };
        Pieces { store: Some(store), index, skip, left }
    }

    /// Octets from `offset` on (clamped to what is queued) that [`slices`](Self::slices)
    /// describes with at most `max_slices` slices (the unsealed tail counts as the one chunk
    /// it would be sealed into): a super-segment is cut before it needs more than a
    /// [`Payload`] holds.
    pub(crate) fn slices_reach(&self, offset: usize, max_slices: usize) -> usize {
        let Some(store) = self.store.as_deref() else { return 0 };
        let offset = offset.min(store.len());
        if offset >= store.sealed_len {
            return if max_slices > 0 { store.len() - offset } else { 0 };
        }
        let Some((mut index, mut within, _)) = store.locate(offset) else { return 0 };
        let mut reach = 0;
        for _ in 0..max_slices {
            match store.chunks.get(index) {
                Some(chunk) => reach += chunk.len() - within,
                None => return reach + store.tail.len(),
            }
            within = 0;
            index += 1;
        }
        reach
    }

    /// The `len` octets starting `offset` octets into the queue (clamped to what is queued)
    /// as slices of the chunks that hold them, written into `out` (cleared first). Seals the
    /// tail if the range reaches into it.
    pub(crate) fn slices(&mut self, offset: usize, len: usize, out: &mut Payload) {
        out.clear();
        let Some(store) = self.store.as_mut() else { return };
        // A bulk sender's segment: the range lies within the chunk the last lookup ended in
        // (the cursor), so it is one slice of it, and the cursor stays. What the general path
        // below does for such a range, without its clamping, sealing and walk.
        if let Some((number, start)) = store.cursor
            && let Some(chunk) = number.checked_sub(store.popped).and_then(|i| store.chunks.get(i))
            && let Some(within) = (store.front_pos + offset).checked_sub(start)
            && len > 0
            && within + len <= chunk.len()
        {
            out.push(chunk.slice(within..within + len));
            return;
        }
        let offset = offset.min(store.len());
        let mut left = len.min(store.len() - offset);
        let end = offset + left;
        if left == 0 {
            return;
        }
        if end > store.sealed_len {
            store.seal();
        }
        let Some((mut index, mut within, start)) = store.locate(offset) else { return };
        store.cursor = Some((index + store.popped, start));
        while left > 0 {
            let Some(chunk) = store.chunks.get(index) else { return };
            if out.count + 1 == MAX_PAYLOAD_SLICES && chunk.len() - within < left {
                // The last slot: gather what is left (a rare, fragmented segment).
                let mut gathered = Vec::with_capacity(left);
                for piece in self.pieces(end - left, left) {
                    gathered.extend_from_slice(piece);
                }
                out.push(Bytes::from(gathered));
                return;
            }
            let end = chunk.len().min(within + left);
            out.push(chunk.slice(within..end));
            left -= end - within;
            within = 0;
            index += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    /// Everything queued, read straight from the store (not through `pieces`).
    fn contents(queue: &SendQueue) -> Vec<u8> {
        let store = queue.store.as_deref();
        let mut out: Vec<u8> = store.map_or_else(Vec::new, |store| {
            store.chunks.iter().flat_map(|chunk| chunk.iter().copied()).collect()
        });
        out.extend_from_slice(store.map_or(&[][..], |store| &store.tail[..]));
        out
    }

    fn sliced(queue: &mut SendQueue, offset: usize, len: usize) -> Payload {
        let mut out = Payload::default();
        queue.slices(offset, len, &mut out);
        out
    }

    fn joined(payload: &Payload) -> Vec<u8> {
        payload.slices().iter().flat_map(|slice| slice.iter().copied()).collect()
    }

    #[test]
    fn copies_and_chunks_queue_in_order_up_to_the_capacity() {
        let mut queue = SendQueue::new(1000);
        assert!(queue.store.is_none(), "no memory before first use");
        assert_eq!(queue.push(b"abc"), 3);
        let big = Bytes::from(vec![7u8; 600]);
        assert_eq!(queue.push_bytes(&big), 600);
        assert_eq!(queue.push(b"def"), 3);
        assert_eq!(queue.push_bytes(&big), 394, "only what fits");
        assert_eq!((queue.len(), queue.free()), (1000, 0));
        let all = contents(&queue);
        assert_eq!(&all[..3], b"abc");
        assert_eq!(&all[603..606], b"def");
        assert!(all[3..603].iter().chain(&all[606..]).all(|&b| b == 7));
    }

    #[test]
    fn a_slice_of_a_chunk_shares_its_memory() {
        let mut queue = SendQueue::new(4096);
        let chunk = Bytes::from((0..=255u8).cycle().take(2000).collect::<Vec<_>>());
        assert_eq!(queue.push_bytes(&chunk), 2000);
        let payload = sliced(&mut queue, 100, 500);
        assert_eq!(payload.slices().len(), 1);
        let slice = &payload.slices()[0];
        assert_eq!(slice.as_ptr(), chunk[100..].as_ptr(), "a reference, not a copy");
        assert_eq!(&slice[..], &chunk[100..600]);
    }

    /// The payload's slots are never dropped as a whole (`ManuallyDrop`): the slices in use
    /// must still be released, on `clear` and on drop, clones included.
    #[test]
    fn a_dropped_payload_releases_its_slices() {
        let mut queue = SendQueue::new(1 << 16);
        let chunks: Vec<Bytes> = (0..3u8).map(|i| Bytes::from(vec![i; 2 * COPY_BELOW])).collect();
        for chunk in &chunks {
            queue.push_bytes(chunk);
        }
        let mut payload = sliced(&mut queue, 10, 5 * COPY_BELOW);
        assert_eq!(payload.slices().len(), 3);
        let copy = payload.clone();
        queue.discard(queue.len());
        assert!(chunks.iter().all(|chunk| !chunk.is_unique()), "the slices hold them");
        payload.clear();
        assert!(payload.is_empty());
        drop(payload);
        drop(copy);
        assert!(chunks.iter().all(Bytes::is_unique), "every slice released");
        // One slice, dropped without `clear` (`Drop`'s own path for it).
        let mut queue = SendQueue::new(1 << 16);
        queue.push_bytes(&chunks[1]);
        let one = sliced(&mut queue, 3, COPY_BELOW);
        assert_eq!(one.slices().len(), 1);
        queue.discard(queue.len());
        assert!(!chunks[1].is_unique(), "the slice holds it");
        drop(one);
        assert!(chunks[1].is_unique(), "the one slice released");
    }

    #[test]
    fn small_chunks_are_copied_into_the_tail() {
        let mut queue = SendQueue::new(4096);
        let small = Bytes::from(vec![1u8; COPY_BELOW - 1]);
        queue.push_bytes(&small);
        queue.push_bytes(&small);
        let payload = sliced(&mut queue, 0, 2 * (COPY_BELOW - 1));
        assert_eq!(payload.slices().len(), 1, "one tail chunk, not two small ones");
        assert!(!payload.slices()[0].as_ptr_range().contains(&small.as_ptr()));
    }

    #[test]
    fn slices_span_chunks_and_the_sealed_tail() {
        let mut queue = SendQueue::new(4096);
        queue.push(b"head-");
        let chunk = Bytes::from(vec![b'x'; 300]);
        queue.push_bytes(&chunk);
        queue.push(b"-tail");
        let payload = sliced(&mut queue, 2, 306);
        assert_eq!(payload.slices().len(), 3);
        let mut expected = b"ad-".to_vec();
        expected.extend_from_slice(&[b'x'; 300]);
        expected.extend_from_slice(b"-ta");
        assert_eq!(joined(&payload), expected);
        assert_eq!(payload.len(), 306);
        // Sealing changed nothing about the contents or later writes.
        queue.push(b"!");
        assert_eq!(contents(&queue).last(), Some(&b'!'));
    }

    #[test]
    fn discard_drops_acknowledged_octets_across_chunks() {
        let mut queue = SendQueue::new(4096);
        let chunk = Bytes::from((0..300u32).map(|i| i as u8).collect::<Vec<_>>());
        queue.push_bytes(&chunk);
        queue.push(b"abcdef");
        let _ = sliced(&mut queue, 250, 10);
        queue.discard(299);
        assert_eq!(contents(&queue), [&[43u8][..], b"abcdef"].concat());
        queue.discard(3);
        assert_eq!(contents(&queue), b"cdef");
        assert_eq!(joined(&sliced(&mut queue, 1, 2)), b"de");
        queue.discard(99);
        assert!(queue.is_empty());
    }

    #[test]
    fn lookups_after_later_lookups_and_discards_find_the_right_chunk() {
        let mut queue = SendQueue::new(1 << 20);
        let chunks: Vec<Bytes> =
            (0..20u8).map(|i| Bytes::from(vec![i; 300 + usize::from(i)])).collect();
        for chunk in &chunks {
            queue.push_bytes(chunk);
        }
        let expected: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
        let mut front = 0;
        for (offset, len) in [(5000, 700), (100, 50), (6000, 10), (0, 1), (3000, 2000)] {
            assert_eq!(
                joined(&sliced(&mut queue, offset, len)),
                &expected[front + offset..][..len]
            );
            let copied: Vec<u8> = queue.pieces(offset, len).flatten().copied().collect();
            assert_eq!(copied, &expected[front + offset..][..len]);
            queue.discard(77);
            front += 77;
        }
    }

    /// A payload goes back to the caller by value on every segment: within 256 octets
    /// `memcpy` moves it in a few vector moves, past them by its slower loop.
    #[test]
    fn a_payload_stays_within_256_octets() {
        assert!(size_of::<Payload>() <= 256);
    }

    /// A full-sized Ethernet segment over the shortest chunks kept by reference fits the
    /// slots: part of one, five whole ones, part of one more, nothing gathered.
    #[test]
    fn an_ethernet_segment_over_the_shortest_chunks_needs_no_gathering() {
        let mut queue = SendQueue::new(1 << 20);
        let chunks: Vec<Bytes> = (0..12u8).map(|i| Bytes::from(vec![i; COPY_BELOW])).collect();
        for chunk in &chunks {
            queue.push_bytes(chunk);
        }
        let payload = sliced(&mut queue, COPY_BELOW - 1, 1460);
        assert_eq!(payload.slices().len(), MAX_PAYLOAD_SLICES);
        assert!(payload.slices().iter().all(|slice| slice.len() <= COPY_BELOW));
        let expected: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
        assert_eq!(joined(&payload), &expected[COPY_BELOW - 1..][..1460]);
        assert_eq!(payload.len(), 1460);
    }

    #[test]
    fn a_segment_over_too_many_chunks_gathers_the_rest() {
        let mut queue = SendQueue::new(1 << 20);
        let chunks: Vec<Bytes> = (0..12u8).map(|i| Bytes::from(vec![i; COPY_BELOW])).collect();
        for chunk in &chunks {
            queue.push_bytes(chunk);
        }
        let payload = sliced(&mut queue, 10, 11 * COPY_BELOW);
        assert_eq!(payload.slices().len(), MAX_PAYLOAD_SLICES);
        let expected: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
        assert_eq!(joined(&payload), &expected[10..][..11 * COPY_BELOW]);
    }

    #[test]
    fn tail_blocks_are_reused_once_their_chunks_are_acknowledged() {
        let mut queue = SendQueue::new(400);
        let data: Vec<u8> = (0..=255).collect();
        let mut seen = Vec::new();
        for round in 0..40 {
            assert_eq!(queue.push(&data[..100]), 100, "round {round}");
            let payload = sliced(&mut queue, 0, 100);
            assert_eq!(joined(&payload), &data[..100]);
            let block = payload.slices()[0].as_ptr() as usize;
            drop(payload);
            queue.discard(100);
            if !seen.contains(&block) {
                seen.push(block);
            }
        }
        let store = queue.store.as_ref().unwrap();
        assert!(store.spares.len() <= MAX_SPARES);
        assert!(seen.len() <= 2, "blocks come back instead of new ones: {seen:?}");
    }

    #[test]
    fn a_bulk_writer_rotates_through_five_blocks_at_most() {
        let mut queue = SendQueue::new(4096);
        let data = vec![1u8; 1000];
        let allocated = |queue: &SendQueue| queue.store.as_ref().unwrap().blocks_allocated;
        let mut after_warm_up = 0;
        for round in 0..2000usize {
            // The writer keeps the buffer full; ACKs free uneven amounts.
            while queue.push(&data) > 0 {}
            queue.discard(100 + (round * 37) % 900);
            if round == 100 {
                after_warm_up = allocated(&queue);
            }
        }
        assert!(after_warm_up <= BLOCKS_PER_LIMIT + 1, "{after_warm_up} blocks");
        assert_eq!(allocated(&queue), after_warm_up, "no block allocated in steady state");
    }

    /// Random writes (both forms), ACKs, lookups and growth against a plain `Vec` model.
    #[test]
    fn random_operations_agree_with_a_plain_model() {
        for seed in 1..50u64 {
            let mut state = seed;
            let mut next = move |n: usize| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state % n as u64) as usize
            };
            let mut queue = SendQueue::new(64 + next(8000));
            queue.set_limit(1 << 16);
            let mut model: Vec<u8> = Vec::new();
            let mut written = 0u32;
            let mut held = Vec::new();
            for step in 0..400 {
                let op = next(7);
                match op {
                    0 | 1 => {
                        let data: Vec<u8> =
                            (0..next(3000)).map(|i| (written as usize + i) as u8).collect();
                        let taken = queue.push(&data);
                        model.extend_from_slice(&data[..taken]);
                        written += taken as u32;
                    }
                    2 => {
                        let data: Vec<u8> =
                            (0..next(3000)).map(|i| (written as usize + i) as u8 ^ 0x55).collect();
                        let chunk = Bytes::from(data);
                        let skipped = next(10).min(chunk.len());
                        let taken = queue.push_bytes(&chunk.slice(skipped..));
                        model.extend_from_slice(&chunk[skipped..][..taken]);
                        written += taken as u32;
                    }
                    3 => {
                        let n = next(model.len() + 1);
                        queue.discard(n);
                        model.drain(..n);
                    }
                    4 => {
                        let _ = queue.grow_to(queue.capacity() * 2);
                    }
                    _ => {
                        let offset = next(model.len() + 1);
                        let len = next(model.len() - offset + 1);
                        let expected = &model[offset..offset + len];
                        let copied: Vec<u8> =
                            queue.pieces(offset, len).flatten().copied().collect();
                        assert_eq!(copied, expected, "seed {seed} step {step}: pieces");
                        let payload = sliced(&mut queue, offset, len);
                        assert_eq!(joined(&payload), expected, "seed {seed} step {step}");
                        // Some slices outlive their acknowledgement, as an adapter's may.
                        if next(4) == 0 {
                            held.push(payload);
                        }
                    }
                }
                assert_eq!(queue.len(), model.len(), "seed {seed} step {step}");
                assert_eq!(contents(&queue), model, "seed {seed} step {step}");
            }
        }
    }

    #[test]
    fn growth_and_limits() {
        let mut queue = SendQueue::new(8);
        assert_eq!(queue.grow_to(16), 8, "the limit starts at the capacity");
        queue.set_limit(12);
        assert_eq!(queue.grow_to(16), 12);
        assert_eq!(queue.push(b"0123456789abcdef"), 12);
        queue.set_limit(4);
        assert_eq!(queue.limit(), 12, "a limit below the capacity is the capacity");
        queue.shrink_unused(8);
        assert_eq!((queue.capacity(), queue.len()), (8, 0));
        assert!(queue.store.is_none());
    }

    #[test]
    fn an_adopted_store_starts_empty() {
        let mut old = SendQueue::new(8);
        assert_eq!(old.push(b"secret!"), 7);
        let mut queue = SendQueue::new(8);
        queue.adopt(old);
        assert!(queue.is_empty());
        assert_eq!(queue.push(b"abcdefgh"), 8);
        assert_eq!(contents(&queue), b"abcdefgh");
        let mut other = SendQueue::new(4);
        let mut spare = SendQueue::new(8);
        spare.push(b"x");
        other.adopt(spare);
        assert!(other.store.is_none(), "a different capacity is not adopted");
    }

    /// A short exchange's tail, wholly acknowledged, is written again from the start of its
    /// block: it does not creep through it, and an adopting queue finds it whole.
    #[test]
    fn a_wholly_acknowledged_tail_is_rewritten_from_its_start() {
        let mut queue = SendQueue::new(4096);
        let block = queue.block();
        for round in 0..100u8 {
            assert_eq!(queue.push(&[round; 64]), 64);
            assert_eq!(queue.pieces(0, 64).flatten().copied().collect::<Vec<u8>>(), [round; 64]);
            queue.discard(64);
            assert!(queue.is_empty());
            let store = queue.store.as_deref().unwrap();
            assert_eq!(store.tail.capacity(), block, "round {round}");
        }
        assert_eq!(queue.store.as_deref().unwrap().blocks_allocated, 1);
        // Part of the tail acknowledged: the rest stays, after it.
        assert_eq!(queue.push(b"abcdef"), 6);
        queue.discard(2);
        assert_eq!(contents(&queue), b"cdef");
        let mut next = SendQueue::new(4096);
        next.adopt(queue);
        assert_eq!(next.store.as_deref().unwrap().tail.capacity(), block);
    }

    /// `slices` of a range within the chunk the last lookup ended in (one step, the cursor
    /// kept) gives what the walk gives, at every offset and length within it and across
    /// its ends.
    #[test]
    fn slices_within_the_cursors_chunk_match_the_walk() {
        let mut queue = SendQueue::new(1 << 16);
        let chunks: Vec<Bytes> =
            (0..4u8).map(|i| Bytes::from(vec![i; 300 + 100 * usize::from(i)])).collect();
        let mut model = Vec::new();
        for chunk in &chunks {
            assert_eq!(queue.push_bytes(chunk), chunk.len());
            model.extend_from_slice(chunk);
        }
        for (offset, len) in
            [(0usize, 300usize), (10, 200), (299, 1), (299, 2), (300, 400), (650, 400)]
        {
            for (first, then) in [(offset, offset), (0, offset), (offset.saturating_sub(5), offset)]
            {
                let _ = sliced(&mut queue, first, 1);
                let cursor = queue.store.as_deref().unwrap().cursor;
                let payload = sliced(&mut queue, then, len);
                assert_eq!(joined(&payload), &model[then..then + len], "{first} then {then}+{len}");
                if payload.slices().len() == 1 && first == then {
                    assert_eq!(queue.store.as_deref().unwrap().cursor, cursor);
                }
            }
        }
        queue.discard(350);
        model.drain(..350);
        for offset in [0, 49, 50, 300, 600] {
            let payload = sliced(&mut queue, offset, 60);
            assert_eq!(joined(&payload), &model[offset..offset + 60], "after a discard, {offset}");
        }
    }

    #[test]
    fn zero_capacity_takes_nothing() {
        let mut queue = SendQueue::new(0);
        assert_eq!(queue.push(b"x"), 0);
        assert_eq!(queue.push_bytes(&Bytes::from(vec![0; 1000])), 0);
        assert_eq!(queue.pieces(0, 1).count(), 0);
    }
}
