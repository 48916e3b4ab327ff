//! A byte ring, the storage of the receive buffer (the send buffer is `connection::send_queue`).
//!
//! Its capacity starts at the configured initial size and only ever grows (buffer auto-tuning,
//! `connection::autotune`), up to a limit its owner sets; growing reallocates once and copies
//! the contents once, so steady-state traffic allocates nothing. The storage is allocated on
//! first write, so an idle connection holds no payload memory. Reads can borrow the contents
//! as at most two slices (the ring's two halves), so a segment is emitted straight from the
//! ring (one copy). The allocated part can carry a small value of the owner's (`X`): state
//! that only a connection moving data needs, allocated with the storage rather than in the
//! TCB.

use alloc::boxed::Box;
use alloc::vec::Vec;

/// A byte ring: 16 bytes until first written, when the storage, its indices and the owner's
/// `X` are allocated together (they are the buffer, and only a connection that moves data
/// pays for them).
#[derive(Debug, Default)]
pub(crate) struct Ring<X = ()> {
    store: Option<Box<Store<X>>>,
    capacity: u32,
    /// The capacity the ring may grow to ([`Ring::grow_to`] stops here). Fits the padding
    /// beside `capacity`, so the ring stays 16 bytes.
    limit: u32,
}

/// The allocated part of a [`Ring`].
#[derive(Debug)]
struct Store<X> {
    /// Allocated at the ring's capacity at once (moved only when the ring grows), but only
    /// initialised as far as data has ever been written: a short-lived connection that moves
    /// 64 octets does not pay for zeroing a 64 KiB buffer.
    bytes: Vec<u8>,
    /// Index of the first byte in `bytes`.
    head: usize,
    len: usize,
    /// The owner's state that lives with the storage.
    extra: X,
}

/// `index % capacity` for an index the ring's invariants keep below `2 × capacity` (a head
/// below the capacity plus a length or offset within it): one compare instead of a division on
/// every read and write. Anything larger still wraps correctly, by the division.
fn wrap(index: usize, capacity: usize) -> usize {
    if index < capacity {
        index
    } else if index - capacity < capacity {
        index - capacity
    } else {
        index % capacity
    }
}

impl<X: Default> Ring<X> {
    /// A ring of `capacity` octets (at most 4 GiB − 1, far above any TCP window) that does not
    /// grow until its limit is raised.
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = u32::try_from(capacity).unwrap_or(u32::MAX);
        Self { store: None, capacity, limit: capacity }
    }

    /// Takes over the storage of `spare` (a ring of a connection that ended), emptied, if this
    /// ring has none yet and both have the same capacity: a new connection then reuses the
    /// old one's buffer instead of allocating its own. The old contents are never readable:
    /// only what is written from now on is, and the owner's state starts afresh.
    pub(crate) fn adopt(&mut self, spare: Self) {
        if self.store.is_some() || spare.capacity != self.capacity {
            return;
        }
        if let Some(mut store) = spare.store {
            store.head = 0;
            store.len = 0;
            store.extra = X::default();
            self.store = Some(store);
        }
    }

    /// The owner's state, once the storage exists.
    pub(crate) fn extra(&self) -> Option<&X> {
        self.store.as_ref().map(|store| &store.extra)
    }

    /// The owner's state, once the storage exists.
    pub(crate) fn extra_mut(&mut self) -> Option<&mut X> {
        self.store.as_mut().map(|store| &mut store.extra)
    }

    /// The owner's state, allocating the storage's bookkeeping (but not its octets, which are
    /// allocated at the first write) if there is none yet: for an owner that keeps its data
    /// elsewhere (the receive side's `Bytes` chunks) and only needs its state.
    pub(crate) fn extra_or_init(&mut self) -> &mut X {
        &mut self
            .store
            .get_or_insert_with(|| {
                Box::new(Store { bytes: Vec::new(), head: 0, len: 0, extra: X::default() })
            })
            .extra
    }

    /// The most the ring may grow to.
    #[cfg(test)]
    pub(crate) const fn limit(&self) -> usize {
        self.limit as usize
    }

    /// Sets how far the ring may grow; never below its capacity (a ring does not shrink).
    pub(crate) fn set_limit(&mut self, limit: usize) {
        self.limit = u32::try_from(limit).unwrap_or(u32::MAX).max(self.capacity);
    }

    /// Grows the capacity to `capacity`, at most to the limit; returns the capacity now.
    /// Contents, and data parked past them by [`Ring::write_at`], keep their offsets. With
    /// storage allocated, this reallocates once and copies the ring once, unwrapped to the
    /// start of the new storage; the caller grows in large steps (doubling at least), so the
    /// copies cost O(1) per octet of final capacity.
    pub(crate) fn grow_to(&mut self, capacity: usize) -> usize {
        let capacity = u32::try_from(capacity).unwrap_or(u32::MAX).min(self.limit);
        if capacity <= self.capacity {
            return self.capacity();
        }
        let old = self.capacity();
        self.capacity = capacity;
        if let Some(store) = self.store.as_mut().filter(|store| store.bytes.capacity() > 0) {
            // Positions never written hold nothing anyone reads; initialising them lets the
            // whole ring be copied as two slices in offset order.
            store.bytes.resize(old, 0);
            let mut grown = Vec::with_capacity(self.capacity as usize);
            let (front, back) = store.bytes.split_at(store.head.min(old));
            grown.extend_from_slice(back);
            grown.extend_from_slice(front);
            store.bytes = grown;
            store.head = 0;
        }
        self.capacity()
    }

    /// Drops the storage of a ring grown past `initial` and returns it to that capacity
    /// (empty): for a connection that ended, so a grown buffer is not kept for reuse.
    pub(crate) fn shrink_unused(&mut self, initial: usize) {
        if self.capacity() != initial {
            *self = Self::new(initial);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.store.as_ref().map_or(0, |store| store.len)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) const fn capacity(&self) -> usize {
        self.capacity as usize
    }

    pub(crate) fn free(&self) -> usize {
        self.capacity() - self.len()
    }

    /// Appends as much of `data` as fits; returns how much was taken.
    #[cfg(test)]
    pub(crate) fn push(&mut self, data: &[u8]) -> usize {
        let taken = self.write_at(0, data);
        self.commit(taken);
        taken
    }

    /// Writes as much of `data` as fits at `offset` octets past the end of the stored data,
    /// without making it part of the contents (see [`Ring::commit`]); returns how much was
    /// written. This is where out-of-order segments wait for the hole before them.
    pub(crate) fn write_at(&mut self, offset: usize, data: &[u8]) -> usize {
        let capacity = self.capacity();
        let room = self.free().saturating_sub(offset);
        let take = data.len().min(room);
        if take == 0 {
            return 0;
        }
        // First use: allocate the whole ring once; it moves again only if it grows.
        let store = self.store.get_or_insert_with(|| {
            Box::new(Store {
                bytes: Vec::with_capacity(capacity),
                head: 0,
                len: 0,
                extra: X::default(),
            })
        });
        if store.bytes.capacity() < capacity {
            // Storage made by `extra_or_init` (or grown before its octets existed): reserve
            // the whole ring at once, as above.
            store.bytes.reserve_exact(capacity - store.bytes.len());
        }
        let at = wrap(store.head + store.len + offset, capacity);
        let first = take.min(capacity - at);
        let rest = take - first;
        // Initialise what this write reaches for the first time (within the capacity
        // reserved above, so the storage never reallocates).
        let reach = if rest > 0 { capacity } else { at + first };
        if store.bytes.len() < reach {
            store.bytes.resize(reach, 0);
        }
        let (data_first, data_rest) = data.split_at(first);
        if let Some(dst) = store.bytes.get_mut(at..at + first) {
            dst.copy_from_slice(data_first);
        }
        // The wrapped part is empty unless the write wraps: no call to copy nothing.
        if rest > 0
            && let (Some(dst), Some(src)) = (store.bytes.get_mut(..rest), data_rest.get(..rest))
        {
            dst.copy_from_slice(src);
        }
        take
    }

    /// Makes `n` octets written past the end (by [`Ring::write_at`]) part of the contents.
    pub(crate) fn commit(&mut self, n: usize) {
        let n = n.min(self.free());
        if let Some(store) = self.store.as_mut() {
            store.len += n;
        }
    }

    /// Borrows `len` bytes starting `offset` bytes into the ring, as two slices (the second
    /// empty unless the range wraps). Out-of-range requests are clamped to what is stored.
    pub(crate) fn peek(&self, offset: usize, len: usize) -> (&[u8], &[u8]) {
        let Some(store) = self.store.as_ref() else { return (&[], &[]) };
        let offset = offset.min(store.len);
        let len = len.min(store.len - offset);
        if len == 0 {
            return (&[], &[]);
        }
        let capacity = self.capacity();
        let start = wrap(store.head + offset, capacity);
        let first = len.min(capacity - start);
        let a = store.bytes.get(start..start + first).unwrap_or(&[]);
        let b = store.bytes.get(..len - first).unwrap_or(&[]);
        (a, b)
    }

    /// Drops `n` bytes from the front (clamped to the length).
    pub(crate) fn discard(&mut self, n: usize) {
        let capacity = self.capacity();
        let Some(store) = self.store.as_mut() else { return };
        let n = n.min(store.len);
        store.len -= n;
        // The head always advances (never resets when empty): out-of-order data parked past
        // the end by `write_at` must stay where it was written. A store exists only with a
        // non-zero capacity.
        store.head = wrap(store.head + n, capacity);
    }

    /// Copies bytes from the front into `out` and drops them; returns how many.
    pub(crate) fn pop_into(&mut self, out: &mut [u8]) -> usize {
        let (a, b) = self.peek(0, out.len());
        let (a_len, b_len) = (a.len(), b.len());
        if let Some(dst) = out.get_mut(..a_len) {
            dst.copy_from_slice(a);
        }
        // The second half is empty unless the data wraps: no call to copy nothing.
        if b_len > 0
            && let Some(dst) = out.get_mut(a_len..a_len + b_len)
        {
            dst.copy_from_slice(b);
        }
        self.discard(a_len + b_len);
        a_len + b_len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_peek_discard_wraps_around() {
        let mut ring = Ring::<()>::new(8);
        assert!(ring.store.is_none(), "no memory before first use");
        assert_eq!(ring.push(b"abcdef"), 6);
        ring.discard(4);
        assert_eq!(ring.push(b"ghijklmn"), 6, "only the free space is taken");
        assert_eq!(ring.len(), 8);
        let (a, b) = ring.peek(1, 6);
        assert_eq!((a, b), (&b"fgh"[..], &b"ijk"[..]));
        let mut out = [0; 10];
        assert_eq!(ring.pop_into(&mut out), 8);
        assert_eq!(&out[..8], b"efghijkl");
        assert!(ring.is_empty());
    }

    #[test]
    fn peek_past_the_end_is_clamped() {
        let mut ring = Ring::<()>::new(4);
        ring.push(b"ab");
        assert_eq!(ring.peek(5, 3), (&[][..], &[][..]));
        assert_eq!(ring.peek(1, 9), (&b"b"[..], &[][..]));
    }

    #[test]
    fn write_at_parks_data_past_the_end_until_committed() {
        let mut ring = Ring::<()>::new(8);
        ring.push(b"ab");
        assert_eq!(ring.write_at(2, b"efgh"), 4);
        assert_eq!(ring.len(), 2);
        assert_eq!(ring.write_at(0, b"cd"), 2);
        ring.commit(6);
        let mut out = [0; 8];
        assert_eq!(ring.pop_into(&mut out), 8);
        assert_eq!(&out, b"abcdefgh");
        assert_eq!(ring.write_at(9, b"x"), 0, "beyond the capacity nothing is written");
    }

    #[test]
    fn parked_data_survives_reading_everything_before_it() {
        let mut ring = Ring::<()>::new(8);
        ring.push(b"ab");
        assert_eq!(ring.write_at(1, b"d"), 1);
        let mut out = [0; 2];
        assert_eq!(ring.pop_into(&mut out), 2);
        assert_eq!(ring.write_at(0, b"c"), 1);
        ring.commit(2);
        assert_eq!(ring.pop_into(&mut out), 2);
        assert_eq!(&out, b"cd");
    }

    #[test]
    fn wrap_agrees_with_the_remainder_below_and_beyond_twice_the_capacity() {
        for capacity in [1, 2, 7, 64] {
            for index in 0..5 * capacity {
                assert_eq!(wrap(index, capacity), index % capacity, "{index} % {capacity}");
            }
        }
    }

    #[test]
    fn an_adopted_store_starts_empty_and_only_same_capacity_unallocated_rings_adopt() {
        let mut old = Ring::<()>::new(8);
        assert_eq!(old.push(b"secret!"), 7);
        old.discard(3);
        let mut ring = Ring::<()>::new(8);
        ring.adopt(old);
        assert_eq!(ring.len(), 0);
        assert_eq!(ring.peek(0, 8), (&[][..], &[][..]));
        assert_eq!(ring.push(b"abcdefgh"), 8);
        assert_eq!(ring.peek(0, 8), (&b"abcdefgh"[..], &[][..]));

        // Different capacity, or a ring that already has storage: nothing is taken.
        let mut other = Ring::<()>::new(4);
        let mut spare = Ring::<()>::new(8);
        spare.push(b"x");
        other.adopt(spare);
        assert!(other.store.is_none());
        let mut spare = Ring::<()>::new(8);
        spare.push(b"y");
        ring.adopt(spare);
        assert_eq!(ring.peek(0, 8), (&b"abcdefgh"[..], &[][..]));
    }

    #[test]
    fn growing_keeps_wrapped_contents_and_parked_data_at_their_offsets() {
        let mut ring = Ring::<()>::new(8);
        ring.set_limit(32);
        assert_eq!(ring.push(b"abcdef"), 6);
        ring.discard(4);
        assert_eq!(ring.push(b"ghij"), 4, "wraps: e f g h | i j");
        assert_eq!(ring.write_at(1, b"l"), 1, "parked one octet past a hole");
        assert_eq!(ring.grow_to(20), 20);
        assert_eq!((ring.len(), ring.free()), (6, 14));
        assert_eq!(ring.peek(0, 6), (&b"efghij"[..], &[][..]), "unwrapped by the growth");
        assert_eq!(ring.write_at(0, b"k"), 1);
        ring.commit(2);
        assert_eq!(ring.push(b"mnopqrstuvwxyz!"), 12, "the new room is usable");
        let mut out = [0; 20];
        assert_eq!(ring.pop_into(&mut out), 20);
        assert_eq!(&out, b"efghijklmnopqrstuvwx");
    }

    #[test]
    fn growth_stops_at_the_limit_and_never_shrinks() {
        let mut ring = Ring::<()>::new(8);
        assert_eq!(ring.grow_to(16), 8, "the limit starts at the capacity");
        ring.set_limit(12);
        assert_eq!(ring.grow_to(16), 12);
        assert_eq!(ring.grow_to(4), 12);
        ring.set_limit(4);
        assert_eq!(ring.limit(), 12, "a limit below the capacity is the capacity");
        ring.push(b"x");
        ring.shrink_unused(8);
        assert_eq!((ring.capacity(), ring.len()), (8, 0));
        assert!(ring.store.is_none());
    }

    #[test]
    fn an_adopted_store_forgets_the_owners_state() {
        let mut old = Ring::<u32>::new(8);
        old.push(b"a");
        if let Some(extra) = old.extra_mut() {
            *extra = 7;
        }
        let mut ring = Ring::<u32>::new(8);
        assert_eq!(ring.extra(), None);
        ring.adopt(old);
        assert_eq!(ring.extra(), Some(&0));
    }

    #[test]
    fn zero_capacity_takes_nothing() {
        let mut ring = Ring::<()>::new(0);
        assert_eq!(ring.push(b"x"), 0);
        assert_eq!(ring.peek(0, 1), (&[][..], &[][..]));
    }
}
