//! The endpoint's queues of small copyable values: the transmit round-robin (connections
//! waiting for their turn to send, in order, each at most once: the endpoint's
//! `Entry::queued` says whether it is in), the application's events (at most `max_events`)
//! and each listener's accept queue (at most its backlog).
//!
//! A ring whose size is a power of two, so a position wraps with a mask; pushes and pops are
//! small enough to stay in line at every call site (the standard `VecDeque` left its push out
//! of line once several sites pushed: a call per queued connection or event). It grows by
//! doubling and never holds more than its owner queues at once (each owner bounds that).

use alloc::vec::Vec;

/// A FIFO of `T`.
#[derive(Debug, Default)]
pub(crate) struct Fifo<T> {
    /// Empty, or a power of two long; the queue is the `len` values from `head` on,
    /// wrapping. Slots outside it hold stale copies.
    slots: Vec<T>,
    head: usize,
    len: usize,
}

impl<T: Copy> Fifo<T> {
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

    /// The value at the front.
    #[inline]
    pub(crate) fn front(&self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        self.slots.get(self.head).copied()
    }

    /// Takes the front value out.
    #[inline]
    pub(crate) fn pop_front(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        let front = self.slots.get(self.head).copied();
        self.head = (self.head + 1) & self.slots.len().wrapping_sub(1);
        self.len -= 1;
        front
    }

    /// Puts `value` at the back.
    #[inline]
    pub(crate) fn push_back(&mut self, value: T) {
        if self.len == self.slots.len() {
            self.grow(value);
        }
        let at = (self.head + self.len) & self.slots.len().wrapping_sub(1);
        if let Some(slot) = self.slots.get_mut(at) {
            *slot = value;
            self.len += 1;
        }
    }

    /// Whether `value` is queued.
    pub(crate) fn contains(&self, value: &T) -> bool
    where
        T: PartialEq,
    {
        let mask = self.slots.len().wrapping_sub(1);
        (0..self.len).any(|offset| self.slots.get((self.head + offset) & mask) == Some(value))
    }

    /// Keeps only the values `keep` says yes to, in their order (compacted towards the
    /// front in place).
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        let mask = self.slots.len().wrapping_sub(1);
        let mut kept = 0;
        for offset in 0..self.len {
            let Some(&value) = self.slots.get((self.head + offset) & mask) else { continue };
            if keep(&value) {
                if let Some(slot) = self.slots.get_mut((self.head + kept) & mask) {
                    *slot = value;
                }
                kept += 1;
            }
        }
        self.len = kept;
    }

    /// Doubles the ring (at least 8 slots), the queue moved to its start in order, the new
    /// slots filled with copies of `filler`. Out of line: once warm, the ring has room.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, filler: T) {
        let size = (self.slots.len() * 2).max(8);
        let mut slots = Vec::with_capacity(size);
        let mask = self.slots.len().wrapping_sub(1);
        for offset in 0..self.len {
            if let Some(&value) = self.slots.get((self.head + offset) & mask) {
                slots.push(value);
            }
        }
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
    use crate::endpoint::ConnectionHandle;

    fn handle(index: u32) -> ConnectionHandle {
        ConnectionHandle { index, generation: index / 3 }
    }

    /// The ring answers as a `VecDeque` does, through growth at every wrap position.
    #[test]
    fn fifo_keeps_order_through_wraps_and_growth() {
        let mut turns = Fifo::new();
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
                assert_eq!(turns.pop_front(), model.pop_front());
            }
            assert_eq!(turns.len(), model.len());
            assert_eq!(turns.is_empty(), model.is_empty());
            assert_eq!(turns.front(), model.front().copied());
        }
        // Removal from the middle keeps the order of the rest.
        let middle = model.get(model.len() / 2).copied().unwrap();
        assert!(turns.contains(&middle));
        turns.retain(|value| *value != middle);
        model.retain(|value| *value != middle);
        assert!(!turns.contains(&middle));
        assert_eq!(turns.len(), model.len());
        while let Some(front) = model.pop_front() {
            assert_eq!(turns.front(), Some(front));
            assert_eq!(turns.pop_front(), Some(front));
        }
        assert!(turns.is_empty());
        assert_eq!(turns.front(), None);
        assert_eq!(turns.pop_front(), None);
        assert!(turns.is_empty());
    }
}
