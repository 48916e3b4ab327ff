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
//! The number of disjoint ranges is bounded by the receive buffer's size
//! ([`Assembler::range_limit`]: the ranges' metadata takes at most 1/64 of the buffer), so a
//! peer cannot make us keep unbounded metadata, while a large window on a path that reorders
//! can hold as many holes as full-sized segments make. Policy when full: a segment that would
//! need a new range is not stored (it is dropped, counted, and a duplicate ACK tells the
//! sender where we are); segments that extend or join existing ranges are always taken.

use alloc::vec::Vec;

use crate::seq::SeqNum;
use crate::wire::{SackBlock, SackBlocks};

/// Filled ranges past RCV.NXT, the order they were filled in, and a pending D-SACK.
///
/// Ranges are kept as positions in the stream counted from where this assembler began
/// (`u64`, so they never wrap), not as offsets from RCV.NXT: in-order data then moves RCV.NXT
/// without rewriting every range. The interface speaks offsets from RCV.NXT.
#[derive(Clone, Debug, Default)]
pub(crate) struct Assembler {
    /// Filled `[start, end)` stream positions, sorted, disjoint and non-adjacent.
    ranges: Vec<(u64, u64)>,
    /// RCV.NXT's stream position.
    rcv_nxt: u64,
    /// Stream positions of the latest out-of-order arrivals, newest first: the order of our
    /// SACK blocks (RFC 2018 §4).
    recent: [u64; SackBlocks::MAX],
    recent_len: usize,
    /// A duplicate segment's octets, reported once as the first SACK block (RFC 2883 §4).
    dsack: Option<SackBlock>,
}

/// The segment was not recorded: it would need more ranges than the assembler keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TooManyHoles;

impl Assembler {
    /// Disjoint ranges kept at least, however small the buffer.
    const MIN_RANGES: usize = 8;

    /// Receive-buffer octets per range allowed: a range takes 16 octets, so the metadata is at
    /// most 1/64 of the buffer. Full-sized segments alternating with holes need one range per
    /// two segments, so even 536-octet segments (RFC 9293's default MSS) fit.
    const BUFFER_OCTETS_PER_RANGE: usize = 1024;

    /// No out-of-order data.
    pub(crate) const fn new() -> Self {
        Self {
            ranges: Vec::new(),
            rcv_nxt: 0,
            recent: [0; SackBlocks::MAX],
            recent_len: 0,
            dsack: None,
        }
    }

    /// How many disjoint ranges a receive buffer of `capacity` octets may hold.
    pub(crate) const fn range_limit(capacity: usize) -> usize {
        let limit = capacity / Self::BUFFER_OCTETS_PER_RANGE;
        if limit < Self::MIN_RANGES { Self::MIN_RANGES } else { limit }
    }

    /// Whether the next ACK has anything to report: out-of-order data or a D-SACK.
    pub(crate) const fn has_report(&self) -> bool {
        !self.ranges.is_empty() || self.dsack.is_some()
    }

    /// The stream position of `offset` octets past RCV.NXT.
    const fn position(&self, offset: u32) -> u64 {
        self.rcv_nxt + offset as u64
    }

    /// The offset from RCV.NXT of a stored position (every stored range lies past RCV.NXT,
    /// within the window, so it fits).
    fn offset(&self, position: u64) -> u32 {
        u32::try_from(position.saturating_sub(self.rcv_nxt)).unwrap_or(u32::MAX)
    }

    /// The index of the first range ending after `position`.
    fn first_ending_after(&self, position: u64) -> usize {
        self.ranges.partition_point(|&(_, end)| end <= position)
    }

    /// The first part of `[start, end)` (offsets from RCV.NXT) already stored: a duplicate.
    pub(crate) fn overlap(&self, start: u32, end: u32) -> Option<(u32, u32)> {
        let (start, end) = (self.position(start), self.position(end));
        let &(s, e) = self.ranges.get(self.first_ending_after(start))?;
        let (from, to) = (s.max(start), e.min(end));
        (from < to).then(|| (self.offset(from), self.offset(to)))
    }

    /// Out-of-order data arrived at `offset`: its range leads the next SACK option.
    pub(crate) fn note_arrival(&mut self, offset: u32) {
        let mut recent = [self.position(offset); SackBlocks::MAX];
        let older = self.recent.get(..self.recent_len).unwrap_or(&[]);
        let mut n = 1;
        for (slot, &earlier) in recent.iter_mut().skip(1).zip(older) {
            *slot = earlier;
            n += 1;
        }
        self.recent = recent;
        self.recent_len = n;
    }

    /// Drops every stored range (and the arrival order), keeping a pending D-SACK.
    pub(crate) fn forget_ranges(&mut self) {
        self.ranges.clear();
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
        let containing = |position: u64| {
            self.ranges
                .get(self.first_ending_after(position))
                .copied()
                .filter(|&(start, _)| start <= position)
        };
        let recent = self.recent.get(..self.recent_len).unwrap_or(&[]);
        let by_recency = recent.iter().filter_map(|&position| containing(position));
        let others = self.ranges.iter().rev().copied();
        let mut chosen = [(0u64, 0u64); SackBlocks::MAX];
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
            let (left, right) = (self.offset(range.0), self.offset(range.1));
            blocks.push(SackBlock { left: rcv_nxt + left, right: rcv_nxt + right });
        }
        blocks
    }

    /// Whether nothing is stored out of order.
    pub(crate) const fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The stored ranges, as offsets from RCV.NXT.
    #[cfg(test)]
    pub(crate) fn ranges(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.ranges.iter().map(|&(start, end)| (self.offset(start), self.offset(end)))
    }

    /// Records `[start, end)` as filled (offsets from RCV.NXT, `start < end`), keeping at most
    /// `max_ranges` disjoint ranges ([`Self::range_limit`]).
    pub(crate) fn insert(
        &mut self,
        start: u32,
        end: u32,
        max_ranges: usize,
    ) -> Result<(), TooManyHoles> {
        if start >= end {
            return Ok(());
        }
        let (start, end) = (self.position(start), self.position(end));
        // The ranges that overlap or touch the new one, `[first, last)`, merge with it.
        let first = self.ranges.partition_point(|&(_, e)| e < start);
        let last = self.ranges.partition_point(|&(s, _)| s <= end);
        if first >= last {
            let len = self.ranges.len();
            if len >= max_ranges {
                return Err(TooManyHoles);
            }
            if len == self.ranges.capacity() {
                // Grow by doubling, but never past the limit: the memory stays bounded.
                let more = len.max(4).min(max_ranges.saturating_sub(len)).max(1);
                self.ranges.try_reserve_exact(more).map_err(|_| TooManyHoles)?;
            }
            self.ranges.insert(first, (start, end));
            return Ok(());
        }
        let merged_start = self.ranges.get(first).map_or(start, |&(s, _)| s.min(start));
        let merged_end = self.ranges.get(last - 1).map_or(end, |&(_, e)| e.max(end));
        if let Some(slot) = self.ranges.get_mut(first) {
            *slot = (merged_start, merged_end);
        }
        self.ranges.drain(first + 1..last);
        Ok(())
    }

    /// RCV.NXT advanced by `n` octets of in-order data: returns how many more octets, already
    /// stored, are now contiguous with it (the caller advances RCV.NXT by those too).
    pub(crate) fn advance(&mut self, n: u32) -> u32 {
        self.rcv_nxt += u64::from(n);
        // Ranges are sorted and disjoint: those reached (or overlapped) by the in-order data
        // are a prefix, and the last of them ends furthest.
        let reached = self.ranges.partition_point(|&(start, _)| start <= self.rcv_nxt);
        let end = self.ranges.get(..reached).and_then(<[_]>::last).map_or(0, |&(_, end)| end);
        let extra = self.offset(end.max(self.rcv_nxt));
        self.ranges.drain(..reached);
        self.rcv_nxt += u64::from(extra);
        // Arrivals now in order are no longer reported.
        let mut recent = [0; SackBlocks::MAX];
        let mut kept = 0;
        for &position in self.recent.get(..self.recent_len).unwrap_or(&[]) {
            if position >= self.rcv_nxt
                && let Some(slot) = recent.get_mut(kept)
            {
                *slot = position;
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

    const LIMIT: usize = Assembler::MIN_RANGES;

    fn ranges(a: &Assembler) -> Vec<(u32, u32)> {
        a.ranges().collect()
    }

    #[test]
    fn inserts_merge_overlapping_and_adjacent_ranges() {
        let mut a = Assembler::new();
        a.insert(10, 20, LIMIT).unwrap();
        a.insert(30, 40, LIMIT).unwrap();
        assert_eq!(ranges(&a), [(10, 20), (30, 40)]);
        a.insert(20, 30, LIMIT).unwrap();
        assert_eq!(ranges(&a), [(10, 40)]);
        a.insert(5, 12, LIMIT).unwrap();
        a.insert(38, 50, LIMIT).unwrap();
        assert_eq!(ranges(&a), [(5, 50)]);
        a.insert(60, 70, LIMIT).unwrap();
        a.insert(0, 100, LIMIT).unwrap();
        assert_eq!(ranges(&a), [(0, 100)]);
    }

    #[test]
    fn advance_consumes_reached_ranges_and_rebases_the_rest() {
        let mut a = Assembler::new();
        a.insert(10, 20, LIMIT).unwrap();
        a.insert(30, 40, LIMIT).unwrap();
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
            a.insert(i * 10 + 1, i * 10 + 5, LIMIT).unwrap();
        }
        assert_eq!(a.insert(200, 210, LIMIT), Err(TooManyHoles));
        assert_eq!(a.insert(5, 11, LIMIT), Ok(()), "joins two ranges");
        assert_eq!(a.ranges().count(), 7);
        assert_eq!(a.insert(200, 210, LIMIT), Ok(()));
    }

    /// The limit scales with the buffer: a 64 KiB buffer holds 64 holes, a 16 MiB one 16 384
    /// (256 KiB of metadata), and a tiny one still 8.
    #[test]
    fn the_range_limit_keeps_metadata_within_a_64th_of_the_buffer() {
        assert_eq!(Assembler::range_limit(0), 8);
        assert_eq!(Assembler::range_limit(4096), 8);
        assert_eq!(Assembler::range_limit(64 * 1024), 64);
        assert_eq!(Assembler::range_limit(16 << 20), 16_384);
        // Full-sized segments alternating with holes fit a buffer's limit.
        let buffer = 256 * 1024;
        assert!(Assembler::range_limit(buffer) >= buffer / (2 * 536));
    }

    /// Many holes (a wide window on a path that reorders) are all kept up to the limit, and
    /// the memory never grows past it.
    #[test]
    fn holes_up_to_the_limit_are_kept_and_memory_stays_within_it() {
        let limit = 13;
        let mut a = Assembler::new();
        for i in 0..20 {
            let stored = a.insert(i * 2000 + 1000, i * 2000 + 2448, limit);
            assert_eq!(stored.is_ok(), i < 13, "range {i}");
        }
        assert_eq!(a.ranges().count(), 13);
        assert!(a.ranges.capacity() <= limit);
        // The hole before each range fills: in-order data reaches them one by one.
        assert_eq!(a.advance(1000), 1448);
        assert_eq!(a.ranges().next(), Some((552, 2000)));
    }

    proptest::proptest! {
        /// Inserts, advances and overlaps agree with a model that keeps every filled octet.
        #[test]
        fn agrees_with_an_octet_model(
            ops in proptest::collection::vec((0u32..3, 0u32..200, 1u32..40), 1..60),
            limit in 1usize..12,
        ) {
            use alloc::collections::BTreeSet;
            let mut a = Assembler::new();
            // Filled octets past RCV.NXT, as offsets from it.
            let mut model: BTreeSet<u32> = BTreeSet::new();
            let model_ranges = |model: &BTreeSet<u32>| {
                let mut out: Vec<(u32, u32)> = Vec::new();
                for &octet in model {
                    match out.last_mut() {
                        Some(last) if last.1 == octet => last.1 += 1,
                        _ => out.push((octet, octet + 1)),
                    }
                }
                out
            };
            for (kind, start, len) in ops {
                match kind {
                    0 => {
                        let (start, end) = (start + 1, start + 1 + len);
                        let before = model_ranges(&model);
                        let touches = before.iter().any(|&(s, e)| s <= end && start <= e);
                        let result = a.insert(start, end, limit);
                        proptest::prop_assert_eq!(result.is_ok(), touches || before.len() < limit);
                        if result.is_ok() {
                            model.extend(start..end);
                        }
                        let overlap = a.overlap(start, end + 5);
                        let expected = model_ranges(&model).into_iter()
                            .map(|(s, e)| (s.max(start), e.min(end + 5)))
                            .find(|&(from, to)| from < to);
                        proptest::prop_assert_eq!(overlap, expected);
                    }
                    _ => {
                        let n = len;
                        let mut next = n;
                        while model.contains(&next) {
                            next += 1;
                        }
                        let extra = a.advance(n);
                        proptest::prop_assert_eq!(extra, next - n);
                        model = model.into_iter().filter(|&o| o >= next).map(|o| o - next).collect();
                    }
                }
                proptest::prop_assert_eq!(ranges(&a), model_ranges(&model));
            }
        }
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
            a.insert(start, end, LIMIT).unwrap();
            a.note_arrival(start);
        }
        assert_eq!(blocks(&a, 4), [(1090, 1100), (1070, 1080), (1050, 1060), (1030, 1040)]);
        assert_eq!(blocks(&a, 3), [(1090, 1100), (1070, 1080), (1050, 1060)]);
        // A segment extending an older range makes it the newest.
        a.insert(20, 25, LIMIT).unwrap();
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
