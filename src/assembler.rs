//! Out-of-order bookkeeping for the receive buffer (RFC 9293 §3.10.7.4 step 7, SHLD-31).
//!
//! Segments that arrive beyond RCV.NXT are written straight into the receive ring at their
//! offset; the [`Assembler`] remembers which ranges past the in-order data are filled. When the
//! hole at the front closes, the contiguous filled prefix becomes in-order data.
//!
//! It also remembers what our next ACK's SACK option reports (RFC 2018 §4): which ranges
//! received data most recently, so the first block holds the newest segment and the next ones
//! repeat the most recently reported, and a duplicate segment to report once as a D-SACK block
//! (RFC 2883 §4).
//!
//! The number of disjoint ranges is bounded ([`Assembler::MAX_RANGES`]), so a peer cannot make
//! us keep unbounded metadata. Policy when full: a segment that would need a new range is not
//! stored (it is dropped and a duplicate ACK tells the sender where we are); segments that
//! extend or join existing ranges are always taken.

/// Filled ranges `[start, end)` as offsets from RCV.NXT, sorted, disjoint and non-adjacent.
#[derive(Clone, Debug, Default)]
pub(crate) struct Assembler {
    ranges: [(u32, u32); Self::MAX_RANGES],
    len: usize,
    /// Offsets (from RCV.NXT) of the latest out-of-order arrivals, newest first: the order of
    /// our SACK blocks (RFC 2018 §4).
    recent: [u32; SackBlocks::MAX],
    recent_len: usize,
    /// A duplicate segment's octets, reported once as the first SACK block (RFC 2883 §4).
    dsack: Option<SackBlock>,
}

/// The segment was not recorded: it would need more ranges than the assembler keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TooManyHoles;

use crate::seq::SeqNum;
use crate::wire::{SackBlock, SackBlocks};

impl Assembler {
    /// Disjoint out-of-order ranges kept at most.
    pub(crate) const MAX_RANGES: usize = 8;

    /// No out-of-order data.
    pub(crate) const fn new() -> Self {
        Self {
            ranges: [(0, 0); Self::MAX_RANGES],
            len: 0,
            recent: [0; SackBlocks::MAX],
            recent_len: 0,
            dsack: None,
        }
    }

    /// Whether the next ACK has anything to report: out-of-order data or a D-SACK.
    pub(crate) const fn has_report(&self) -> bool {
        self.len > 0 || self.dsack.is_some()
    }

    /// The first part of `[start, end)` (offsets from RCV.NXT) already stored: a duplicate.
    pub(crate) fn overlap(&self, start: u32, end: u32) -> Option<(u32, u32)> {
        self.used().iter().map(|&(s, e)| (s.max(start), e.min(end))).find(|&(from, to)| from < to)
    }

    /// Out-of-order data arrived at `offset`: its range leads the next SACK option.
    pub(crate) fn note_arrival(&mut self, offset: u32) {
        let mut recent = [offset; SackBlocks::MAX];
        let mut n = 1;
        let older = self.recent.get(..self.recent_len).unwrap_or(&[]);
        for &earlier in older {
            if let Some(slot) = recent.get_mut(n) {
                *slot = earlier;
                n += 1;
            }
        }
        self.recent = recent;
        self.recent_len = n;
    }

    /// Drops every stored range (and the arrival order), keeping a pending D-SACK.
    pub(crate) fn forget_ranges(&mut self) {
        self.len = 0;
        self.recent_len = 0;
    }

    /// A duplicate segment arrived: report `block` once, first (RFC 2883 §4).
    pub(crate) fn set_dsack(&mut self, block: SackBlock) {
        self.dsack = Some(block);
    }

    /// The D-SACK block went out on an ACK: it is reported once only.
    pub(crate) fn clear_dsack(&mut self) {
        self.dsack = None;
    }

    /// The blocks of our next SACK option, at most `max` (RFC 2018 §3: four, three next to
    /// timestamps): a pending D-SACK first (RFC 2883 §4), then the range holding the newest
    /// arrival, then the ranges of earlier arrivals, newest first, then any other range.
    pub(crate) fn sack_blocks(&self, rcv_nxt: SeqNum, max: usize) -> SackBlocks {
        let mut blocks = SackBlocks::new();
        let max = max.min(SackBlocks::MAX);
        if let Some(dsack) = self.dsack {
            blocks.push(dsack);
        }
        let containing =
            |offset: u32| self.used().iter().copied().find(|&(s, e)| s <= offset && offset < e);
        let recent = self.recent.get(..self.recent_len).unwrap_or(&[]);
        let by_recency = recent.iter().filter_map(|&offset| containing(offset));
        let others = self.used().iter().rev().copied();
        let mut chosen = [(0u32, 0u32); SackBlocks::MAX];
        let mut n = 0;
        for range in by_recency.chain(others) {
            if blocks.len() >= max {
                break;
            }
            if chosen.get(..n).unwrap_or(&[]).contains(&range) {
                continue;
            }
            if let Some(slot) = chosen.get_mut(n) {
                *slot = range;
                n += 1;
            }
            blocks.push(SackBlock { left: rcv_nxt + range.0, right: rcv_nxt + range.1 });
        }
        blocks
    }

    /// Whether nothing is stored out of order.
    pub(crate) const fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn used(&self) -> &[(u32, u32)] {
        self.ranges.get(..self.len).unwrap_or(&[])
    }

    /// The stored ranges, as offsets from RCV.NXT.
    #[cfg(test)]
    pub(crate) fn ranges(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.used().iter().copied()
    }

    /// Records `[start, end)` as filled (offsets from RCV.NXT, `start < end`).
    pub(crate) fn insert(&mut self, start: u32, end: u32) -> Result<(), TooManyHoles> {
        if start >= end {
            return Ok(());
        }
        // The ranges that overlap or touch the new one merge with it.
        let first = self.used().iter().position(|&(_, e)| e >= start).unwrap_or(self.len);
        let last = self.used().iter().rposition(|&(s, _)| s <= end).map_or(first, |i| i + 1);
        let merged = self.used().get(first..last).unwrap_or(&[]);
        let new_start = merged.first().map_or(start, |&(s, _)| s.min(start));
        let new_end = merged.last().map_or(end, |&(_, e)| e.max(end));
        let removed = last.saturating_sub(first);
        if removed == 0 && self.len == Self::MAX_RANGES {
            return Err(TooManyHoles);
        }
        // Replace ranges[first..last] by the one merged range.
        let mut out = [(0, 0); Self::MAX_RANGES];
        let mut n = 0;
        let before = self.used().get(..first).unwrap_or(&[]);
        let after = self.used().get(last..).unwrap_or(&[]);
        for &range in before.iter().chain(core::iter::once(&(new_start, new_end))).chain(after) {
            if let Some(slot) = out.get_mut(n) {
                *slot = range;
                n += 1;
            }
        }
        self.ranges = out;
        self.len = n;
        Ok(())
    }

    /// RCV.NXT advanced by `n` octets of in-order data: returns how many more octets, already
    /// stored, are now contiguous with it (the caller advances RCV.NXT by those too) and rebases
    /// the remaining ranges.
    pub(crate) fn advance(&mut self, n: u32) -> u32 {
        let mut out = [(0, 0); Self::MAX_RANGES];
        let mut count = 0;
        let mut extra = 0;
        for &(start, end) in self.used() {
            if start <= n {
                // Reached (or overlapped) by the in-order data.
                extra = extra.max(end.saturating_sub(n));
            } else if let Some(slot) = out.get_mut(count) {
                *slot = (start, end);
                count += 1;
            }
        }
        // Ranges are disjoint and non-adjacent, so every remaining range starts beyond the new
        // contiguous end n + extra.
        let shift = n + extra;
        for slot in out.iter_mut().take(count) {
            *slot = (slot.0.saturating_sub(shift), slot.1.saturating_sub(shift));
        }
        self.ranges = out;
        self.len = count;
        // Arrivals now in order are no longer reported; the rest move with RCV.NXT.
        let mut recent = [0; SackBlocks::MAX];
        let mut kept = 0;
        for &offset in self.recent.get(..self.recent_len).unwrap_or(&[]) {
            if offset >= shift
                && let Some(slot) = recent.get_mut(kept)
            {
                *slot = offset - shift;
                kept += 1;
            }
        }
        self.recent = recent;
        self.recent_len = kept;
        extra
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn ranges(a: &Assembler) -> Vec<(u32, u32)> {
        a.ranges().collect()
    }

    #[test]
    fn inserts_merge_overlapping_and_adjacent_ranges() {
        let mut a = Assembler::new();
        a.insert(10, 20).unwrap();
        a.insert(30, 40).unwrap();
        assert_eq!(ranges(&a), [(10, 20), (30, 40)]);
        a.insert(20, 30).unwrap();
        assert_eq!(ranges(&a), [(10, 40)]);
        a.insert(5, 12).unwrap();
        a.insert(38, 50).unwrap();
        assert_eq!(ranges(&a), [(5, 50)]);
        a.insert(60, 70).unwrap();
        a.insert(0, 100).unwrap();
        assert_eq!(ranges(&a), [(0, 100)]);
    }

    #[test]
    fn advance_consumes_reached_ranges_and_rebases_the_rest() {
        let mut a = Assembler::new();
        a.insert(10, 20).unwrap();
        a.insert(30, 40).unwrap();
        assert_eq!(a.advance(5), 0);
        assert_eq!(ranges(&a), [(5, 15), (25, 35)]);
        // In-order data reaches the first range: it becomes contiguous.
        assert_eq!(a.advance(5), 10);
        assert_eq!(ranges(&a), [(10, 20)]);
        assert_eq!(a.advance(25), 0, "overlapping the start of a range consumes its rest");
        assert!(a.is_empty());
    }

    #[test]
    fn a_ninth_disjoint_range_is_refused_but_joining_ones_are_taken() {
        let mut a = Assembler::new();
        for i in 0..8 {
            a.insert(i * 10 + 1, i * 10 + 5).unwrap();
        }
        assert_eq!(a.insert(200, 210), Err(TooManyHoles));
        assert_eq!(a.insert(5, 11), Ok(()), "joins two ranges");
        assert_eq!(a.ranges().count(), 7);
        assert_eq!(a.insert(200, 210), Ok(()));
    }

    fn blocks(a: &Assembler, max: usize) -> Vec<(u32, u32)> {
        a.sack_blocks(SeqNum::new(1000), max)
            .iter()
            .map(|b| (b.left.get(), b.right.get()))
            .collect()
    }

    /// RFC 2018 §4: the first block holds the newest segment, then the most recently
    /// reported ones; RFC 2883 §4: a D-SACK block goes first, once.
    #[test]
    fn sack_blocks_lead_with_the_newest_arrival_and_a_dsack_rfc_2018_4_rfc_2883_4() {
        let mut a = Assembler::new();
        for (start, end) in [(10, 20), (30, 40), (50, 60), (70, 80), (90, 100)] {
            a.insert(start, end).unwrap();
            a.note_arrival(start);
        }
        assert_eq!(blocks(&a, 4), [(1090, 1100), (1070, 1080), (1050, 1060), (1030, 1040)]);
        assert_eq!(blocks(&a, 3), [(1090, 1100), (1070, 1080), (1050, 1060)]);
        // A segment extending an older range makes it the newest.
        a.insert(20, 25).unwrap();
        a.note_arrival(20);
        assert_eq!(blocks(&a, 3), [(1010, 1025), (1090, 1100), (1070, 1080)]);
        a.set_dsack(SackBlock { left: SeqNum::new(1072), right: SeqNum::new(1074) });
        assert_eq!(a.overlap(72, 74), Some((72, 74)));
        assert_eq!(a.overlap(60, 95), Some((70, 80)));
        assert_eq!(a.overlap(60, 70), None);
        assert_eq!(blocks(&a, 3), [(1072, 1074), (1010, 1025), (1090, 1100)]);
        a.clear_dsack();
        // In-order data reaching the first range drops it from the report.
        a.advance(10);
        assert_eq!(
            a.sack_blocks(SeqNum::new(1025), 4).iter().map(|b| b.left.get()).collect::<Vec<_>>(),
            [1090, 1070, 1050, 1030]
        );
    }
}
