//! A fixed-capacity byte ring, the storage of both the send and the receive buffer.
//!
//! Capacity comes from configuration and never grows; the storage is allocated on first write,
//! so an idle connection holds no payload memory. Reads can borrow the contents as at most two
//! slices (the ring's two halves), so a segment is emitted straight from the ring (one copy).

use alloc::vec::Vec;

/// A byte ring with a fixed capacity.
#[derive(Debug, Default)]
pub(crate) struct Ring {
    storage: Vec<u8>,
    capacity: usize,
    /// Index of the first byte in `storage`.
    head: usize,
    len: usize,
}

impl Ring {
    pub(crate) const fn new(capacity: usize) -> Self {
        Self { storage: Vec::new(), capacity, head: 0, len: 0 }
    }

    pub(crate) const fn len(&self) -> usize {
        self.len
    }

    pub(crate) const fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) const fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) const fn free(&self) -> usize {
        self.capacity - self.len
    }

    /// Appends as much of `data` as fits; returns how much was taken.
    pub(crate) fn push(&mut self, data: &[u8]) -> usize {
        let taken = self.write_at(0, data);
        self.commit(taken);
        taken
    }

    /// Writes as much of `data` as fits at `offset` octets past the end of the stored data,
    /// without making it part of the contents (see [`Ring::commit`]); returns how much was
    /// written. This is where out-of-order segments wait for the hole before them.
    pub(crate) fn write_at(&mut self, offset: usize, data: &[u8]) -> usize {
        let room = self.free().saturating_sub(offset);
        let take = data.len().min(room);
        if take == 0 {
            return 0;
        }
        if self.storage.len() != self.capacity {
            // First use: allocate the whole ring once; it never grows after this.
            self.storage.resize(self.capacity, 0);
        }
        let at = (self.head + self.len + offset) % self.capacity;
        let first = take.min(self.capacity - at);
        let (data_first, data_rest) = data.split_at(first);
        if let Some(dst) = self.storage.get_mut(at..at + first) {
            dst.copy_from_slice(data_first);
        }
        let rest = take - first;
        if let (Some(dst), Some(src)) = (self.storage.get_mut(..rest), data_rest.get(..rest)) {
            dst.copy_from_slice(src);
        }
        take
    }

    /// Makes `n` octets written past the end (by [`Ring::write_at`]) part of the contents.
    pub(crate) fn commit(&mut self, n: usize) {
        self.len += n.min(self.free());
    }

    /// Borrows `len` bytes starting `offset` bytes into the ring, as two slices (the second
    /// empty unless the range wraps). Out-of-range requests are clamped to what is stored.
    pub(crate) fn peek(&self, offset: usize, len: usize) -> (&[u8], &[u8]) {
        let offset = offset.min(self.len);
        let len = len.min(self.len - offset);
        if len == 0 {
            return (&[], &[]);
        }
        let start = (self.head + offset) % self.capacity;
        let first = len.min(self.capacity - start);
        let a = self.storage.get(start..start + first).unwrap_or(&[]);
        let b = self.storage.get(..len - first).unwrap_or(&[]);
        (a, b)
    }

    /// Drops `n` bytes from the front (clamped to the length).
    pub(crate) fn discard(&mut self, n: usize) {
        let n = n.min(self.len);
        self.len -= n;
        // The head always advances (never resets when empty): out-of-order data parked past
        // the end by `write_at` must stay where it was written.
        if self.capacity > 0 {
            self.head = (self.head + n) % self.capacity;
        }
    }

    /// Copies bytes from the front into `out` and drops them; returns how many.
    pub(crate) fn pop_into(&mut self, out: &mut [u8]) -> usize {
        let (a, b) = self.peek(0, out.len());
        let (a_len, b_len) = (a.len(), b.len());
        if let Some(dst) = out.get_mut(..a_len) {
            dst.copy_from_slice(a);
        }
        if let Some(dst) = out.get_mut(a_len..a_len + b_len) {
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
        let mut ring = Ring::new(8);
        assert!(ring.storage.is_empty(), "no memory before first use");
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
        let mut ring = Ring::new(4);
        ring.push(b"ab");
        assert_eq!(ring.peek(5, 3), (&[][..], &[][..]));
        assert_eq!(ring.peek(1, 9), (&b"b"[..], &[][..]));
    }

    #[test]
    fn write_at_parks_data_past_the_end_until_committed() {
        let mut ring = Ring::new(8);
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
        let mut ring = Ring::new(8);
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
    fn zero_capacity_takes_nothing() {
        let mut ring = Ring::new(0);
        assert_eq!(ring.push(b"x"), 0);
        assert_eq!(ring.peek(0, 1), (&[][..], &[][..]));
    }
}
