//! The transmit round-robin: connections waiting for their turn to send, in order, each at
//! most once (the endpoint's `Entry::queued` says whether it is in).
//!
//! A ring of handles whose size is a power of two, so a position wraps with a mask; pushes
//! and pops are small enough to stay in line at every call site (the standard `VecDeque`
//! left its push out of line once several sites pushed: a call per queued connection). It
//! grows by doubling and never holds more than the connections queued at once.

use alloc::vec::Vec;

use super::ConnectionHandle;

/// A FIFO of connection handles.
#[derive(Debug, Default)]
pub(crate) struct Turns {
    /// Empty, or a power of two long; the queue is the `len` handles from `head` on,
    /// wrapping.
    slots: Vec<ConnectionHandle>,
    head: usize,
    len: usize,
}

impl Turns {
    pub(crate) const fn new() -> Self {
        Self { slots: Vec::new(), head: 0, len: 0 }
    }

    #[inline]
    pub(crate) const fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    pub(crate) const fn len(&self) -> usize {
        self.len
    }

    /// The connection whose turn it is.
    #[inline]
    pub(crate) fn front(&self) -> Option<ConnectionHandle> {
        if self.len == 0 {
            return None;
        }
        self.slots.get(self.head).copied()
    }

    /// Takes the front connection out.
    #[inline]
    pub(crate) fn pop_front(&mut self) {
        if self.len > 0 {
            self.head = (self.head + 1) & self.slots.len().wrapping_sub(1);
            self.len -= 1;
        }
    }

    /// Puts `handle` at the back.
    #[inline]
    pub(crate) fn push_back(&mut self, handle: ConnectionHandle) {
        if self.len == self.slots.len() {
            self.grow();
        }
        let at = (self.head + self.len) & self.slots.len().wrapping_sub(1);
        if let Some(slot) = self.slots.get_mut(at) {
            *slot = handle;
            self.len += 1;
        }
    }

    /// Doubles the ring (at least 8 slots), the queue moved to its start in order. Out of
    /// line: once warm, the ring has room.
    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(8);
        let mut slots = Vec::with_capacity(size);
        let mask = self.slots.len().wrapping_sub(1);
        for offset in 0..self.len {
            if let Some(&handle) = self.slots.get((self.head + offset) & mask) {
                slots.push(handle);
            }
        }
        let filler = ConnectionHandle { index: u32::MAX, generation: 0 };
        slots.resize(size, filler);
        self.slots = slots;
        self.head = 0;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use alloc::collections::VecDeque;

    use super::*;

    fn handle(index: u32) -> ConnectionHandle {
        ConnectionHandle { index, generation: index / 3 }
    }

    /// The ring answers as a `VecDeque` does, through growth at every wrap position.
    #[test]
    fn turns_keep_fifo_order_through_wraps_and_growth() {
        let mut turns = Turns::new();
        let mut model = VecDeque::new();
        let mut next = 0;
        // Pushes and pops interleaved in a pattern that wraps the head at every size.
        for round in 0..400u32 {
            for _ in 0..(round % 5) {
                turns.push_back(handle(next));
                model.push_back(handle(next));
                next += 1;
            }
            for _ in 0..(round % 3) {
                assert_eq!(turns.front(), model.front().copied());
                turns.pop_front();
                model.pop_front();
            }
            assert_eq!(turns.len(), model.len());
            assert_eq!(turns.is_empty(), model.is_empty());
            assert_eq!(turns.front(), model.front().copied());
        }
        while let Some(front) = model.pop_front() {
            assert_eq!(turns.front(), Some(front));
            turns.pop_front();
        }
        assert!(turns.is_empty());
        assert_eq!(turns.front(), None);
        turns.pop_front();
        assert!(turns.is_empty());
    }
}
