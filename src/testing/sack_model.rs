//! The selective-acknowledgment half of the operation language's model (feature `arbitrary`):
//! the model peer's receiver, the SACK blocks it puts on its segments, and the checks
//! [`super::ops::run`] makes on SACK (RFC 2018, RFC 2883, RFC 6675).
//!
//! **The model peer's receiver** (`PeerReceiver`) takes every segment the connection under
//! test sends that occupies sequence space (SYN, data, FIN) and either *holds* it or *loses* it,
//! as the input's loss pattern says (`Op::Lose`); a lost segment may still arrive later
//! (`Op::Arrive`), out of order — the reordering RACK (RFC 8985) must tolerate. From what it
//! holds the peer can acknowledge truthfully (`Anchor::Held`: the end of the held run from
//! SND.UNA) and SACK truthfully (`SackBlockSpec::Held`: held ranges above the segment's ACK
//! field); a segment held twice is a duplicate it can report as a D-SACK
//! (`SackBlockSpec::Duplicate`). It can also lie: `SackBlockSpec::Raw` blocks anywhere —
//! outside SND.UNA..SND.NXT, reversed, empty, overlapping, D-SACK-shaped.
//!
//! **The checks** (`SackCheck`):
//!
//! - (a) *blocks the connection sends describe data it holds*: SACK blocks only once SACK was
//!   negotiated (both SYNs carried SACK-permitted; a SYN-ACK offers it only in reply, and no
//!   other segment ever carries it: RFC 2018 §2); at most four blocks, three next to
//!   timestamps (§3: the option must fit the 40 octets); every block but a D-SACK lies wholly
//!   above the segment's ACK field and covers only octets the peer sent (§4: blocks report
//!   data received and queued, not acknowledged); blocks are not reversed or empty; a first
//!   block shaped as a D-SACK (RFC 2883 §4: below the ACK field, or inside the second block)
//!   covers only octets the peer sent twice, and each duplicate is reported once (§4: "each
//!   duplicate contiguous sequence of data received is reported in at most one D-SACK
//!   block");
//! - (d) *recovery starts with a retransmission*: a step that enters SACK recovery
//!   (`counters().sack_recoveries` moves) resends sequence space in that step (RFC 6675 §5
//!   (4.3): "retransmit the first data segment presumed dropped") — unless a block, however
//!   dubious, covered the octet at SND.UNA since the last timeout: a receiver that SACKs
//!   SND.UNA and then sends duplicate ACKs for it has reneged, and check (b) forbids
//!   resending what it SACKed;
//! - (b) *SACKed data is never resent before a retransmission timeout* (RFC 6675 §5, §4
//!   NextSeg; RFC 2018 §8): once the connection certainly took a block the peer sent (step 5
//!   of §3.10.7.4 ran: an acceptable ACK-only segment, SND.UNA ≤ SEG.ACK ≤ SND.NXT, none of
//!   the drop counters moved), a block that RFC 2018/2883 make a SACK and not a D-SACK and
//!   that lies within SND.UNA..SND.NXT, its octets must not go out again until
//!   `counters().retransmission_timeouts` moves (after a timeout RFC 2018 §8 lets the sender
//!   forget SACKs, so the model forgets them too). This holds for every well-formed block,
//!   truthful or not: the connection cannot tell a well-formed lie from the truth. A
//!   zero-window probe (one octet at SND.UNA while the peer's window is zero) is no loss
//!   recovery and may carry a SACKed octet;
//! - (c) *the scoreboard's arithmetic never overflows* (`pipe` never underflows): the fuzz
//!   targets run with debug assertions and overflow checks (`-O -a`), and the model test in
//!   debug builds, so any such slip panics.
//!
//! Sequence ranges are kept as offsets from a base (ISS for what the connection sends, IRS for
//! what the peer sends) in `u64`, so a range that wraps the 32-bit space is simply two ranges.

use alloc::vec::Vec;

use crate::seq::SeqNum;
use crate::wire::{Options, SackBlock, SackBlocks, Segment};

/// Sorted, disjoint, non-adjacent half-open ranges of offsets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RangeSet {
    ranges: Vec<(u64, u64)>,
}

/// The 32-bit sequence space as offsets: one more than the largest offset.
const SPACE: u64 = 1 << 32;

/// Offsets from here on lie behind the base (half the sequence space, RFC 9293 §3.4).
const BEHIND: u64 = 1 << 31;

/// `len` octets from `seq`, as offsets from `base`: one range, or two where it wraps.
fn offsets(base: u32, seq: u32, len: u32) -> impl Iterator<Item = (u64, u64)> {
    let start = u64::from(seq.wrapping_sub(base));
    let end = start + u64::from(len);
    let first = (start, end.min(SPACE));
    let wrapped = (end > SPACE).then(|| (0, end - SPACE));
    core::iter::once(first).chain(wrapped).filter(|(s, e)| s < e)
}

impl RangeSet {
    /// Adds `[start, end)`.
    pub(crate) fn insert(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let (mut start, mut end) = (start, end);
        let mut kept = Vec::with_capacity(self.ranges.len() + 1);
        for &(s, e) in &self.ranges {
            if e < start || end < s {
                kept.push((s, e));
            } else {
                start = start.min(s);
                end = end.max(e);
            }
        }
        kept.push((start, end));
        kept.sort_unstable();
        self.ranges = kept;
    }

    /// Removes `[start, end)`.
    pub(crate) fn remove(&mut self, start: u64, end: u64) {
        let mut kept = Vec::with_capacity(self.ranges.len() + 1);
        for &(s, e) in &self.ranges {
            if e <= start || end <= s {
                kept.push((s, e));
                continue;
            }
            if s < start {
                kept.push((s, start));
            }
            if end < e {
                kept.push((end, e));
            }
        }
        self.ranges = kept;
    }

    /// Whether every offset of `[start, end)` is in the set.
    pub(crate) fn covers(&self, start: u64, end: u64) -> bool {
        start >= end || self.ranges.iter().any(|&(s, e)| s <= start && end <= e)
    }

    /// The parts of `[start, end)` in the set.
    pub(crate) fn overlap(&self, start: u64, end: u64) -> Vec<(u64, u64)> {
        self.ranges
            .iter()
            .filter(|&&(s, e)| s < end && start < e)
            .map(|&(s, e)| (s.max(start), e.min(end)))
            .collect()
    }

    /// The ranges, in order.
    pub(crate) fn ranges(&self) -> &[(u64, u64)] {
        &self.ranges
    }

    /// Whether the set is empty.
    pub(crate) fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

/// Lost segments the peer remembers, at most (the oldest is forgotten for good).
const PENDING_MAX: usize = 32;

/// The model peer's receiving half: what it holds of the connection's sequence space (see the
/// module docs).
#[derive(Clone, Debug, Default)]
pub(crate) struct PeerReceiver {
    /// The connection's ISS: the base of the offsets below.
    iss: Option<u32>,
    /// Octets (SYN and FIN included) the peer received.
    held: RangeSet,
    /// Segments lost so far that may still arrive (`Op::Arrive`), oldest first.
    pending: Vec<(u64, u64)>,
    /// Bit `n % 16` says whether the `n`-th segment since the pattern was set is lost.
    loss_pattern: u16,
    since_pattern: u32,
    /// The most recent duplicate the peer received: what a truthful D-SACK reports.
    duplicate: Option<(u64, u64)>,
    /// The connection's latest TSval, echoed as TSecr (RFC 7323 §3.2).
    ts_recent: u32,
    /// The peer's own clock for TSval: one tick per segment, so PAWS never drops one.
    tsval: u32,
}

impl PeerReceiver {
    /// A new incarnation: nothing held (the loss pattern and clock carry on).
    pub(crate) fn reset(&mut self) {
        self.iss = None;
        self.held = RangeSet::default();
        self.pending.clear();
        self.duplicate = None;
    }

    /// `Op::Lose`: from now on, the `n`-th segment sent is lost when bit `n % 16` is set.
    pub(crate) fn set_loss_pattern(&mut self, pattern: u16) {
        self.loss_pattern = pattern;
        self.since_pattern = 0;
    }

    /// `Op::Arrive`: a lost segment (the `n`-th of those remembered) arrives after all.
    pub(crate) fn arrive(&mut self, n: u8) {
        if self.pending.is_empty() {
            return;
        }
        let index = usize::from(n) % self.pending.len();
        let (start, end) = self.pending.remove(index);
        self.hold(start, end);
    }

    fn hold(&mut self, start: u64, end: u64) {
        if let Some(&first) = self.held.overlap(start, end).first() {
            self.duplicate = Some(first);
        }
        self.held.insert(start, end);
    }

    /// The connection sent `segment`: the peer holds it or loses it.
    pub(crate) fn on_sent(&mut self, segment: &Segment<'_>, iss: u32) {
        if let Some(ts) = segment.header.options.timestamps {
            self.ts_recent = ts.tsval;
        }
        let seg_len = segment.seg_len();
        if seg_len == 0 || segment.header.flags.contains(crate::wire::Flags::RST) {
            return;
        }
        if self.iss != Some(iss) {
            self.reset();
            self.iss = Some(iss);
        }
        let lost = self.loss_pattern >> (self.since_pattern % 16) & 1 == 1;
        self.since_pattern = self.since_pattern.wrapping_add(1);
        for (start, end) in offsets(iss, segment.header.seq.get(), seg_len) {
            if lost {
                if self.pending.len() == PENDING_MAX {
                    self.pending.remove(0);
                }
                self.pending.push((start, end));
            } else {
                self.hold(start, end);
            }
        }
    }

    /// `Anchor::Held`: what a truthful receiver acknowledges — the end of the held run that
    /// holds SND.UNA, or SND.UNA itself.
    pub(crate) fn held_ack(&self, snd_una: u32) -> u32 {
        let Some(iss) = self.iss else { return snd_una };
        let una = u64::from(snd_una.wrapping_sub(iss));
        let end = self.held.ranges().iter().find(|&&(s, e)| s <= una && una < e).map(|&(_, e)| e);
        end.map_or(snd_una, |end| iss.wrapping_add(end as u32))
    }

    /// The held ranges wholly or partly above `ack`, clipped to start after it, as blocks.
    fn held_above(&self, ack: u32) -> Vec<SackBlock> {
        let Some(iss) = self.iss else { return Vec::new() };
        let ack_off = u64::from(ack.wrapping_sub(iss));
        self.held
            .ranges()
            .iter()
            .filter(|&&(_, e)| e > ack_off)
            .map(|&(s, e)| SackBlock {
                left: SeqNum::new(iss.wrapping_add(s.max(ack_off) as u32)),
                right: SeqNum::new(iss.wrapping_add(e as u32)),
            })
            .collect()
    }

    /// The blocks `specs` ask for on a segment acknowledging `ack`; `raw` resolves a
    /// [`RawSackBlock`]'s anchor. Only as many as fit next to `options`' others (40 octets).
    pub(crate) fn blocks(
        &self,
        specs: &[SackBlockSpec],
        ack: u32,
        options: &Options,
        mut raw: impl FnMut(&RawSackBlock) -> SackBlock,
    ) -> SackBlocks {
        let held = self.held_above(ack);
        let mut out = SackBlocks::new();
        for spec in specs {
            let block = match spec {
                SackBlockSpec::Held(i) => {
                    if held.is_empty() {
                        continue;
                    }
                    held.get(usize::from(*i) % held.len()).copied()
                }
                SackBlockSpec::Duplicate => {
                    self.duplicate.zip(self.iss).map(|((s, e), iss)| SackBlock {
                        left: SeqNum::new(iss.wrapping_add(s as u32)),
                        right: SeqNum::new(iss.wrapping_add(e as u32)),
                    })
                }
                SackBlockSpec::Raw(block) => Some(raw(block)),
            };
            let Some(block) = block else { continue };
            let mut with = *options;
            with.sack_blocks = out;
            if !with.sack_blocks.push(block) || with.encoded_len() > 40 {
                break;
            }
            out = with.sack_blocks;
        }
        out
    }

    /// The timestamps option of the peer's next segment: its clock, and the connection's
    /// latest TSval echoed.
    pub(crate) fn next_timestamps(&mut self) -> crate::wire::Timestamps {
        self.tsval = self.tsval.wrapping_add(1);
        crate::wire::Timestamps {
            tsval: 1_000_000u32.wrapping_add(self.tsval),
            tsecr: self.ts_recent,
        }
    }
}

/// How a SACK block the model peer sends is chosen.
#[derive(arbitrary::Arbitrary, Clone, Copy, Debug)]
pub enum SackBlockSpec {
    /// The `n`-th (modulo how many) range of the connection's data the peer holds above the
    /// segment's ACK field: a truthful block (RFC 2018 §4).
    Held(u8),
    /// The latest duplicate the peer received: a truthful D-SACK (RFC 2883 §4) when first.
    Duplicate,
    /// Anything: anchored on the connection's numbers, possibly reversed or empty.
    Raw(RawSackBlock),
}

/// An arbitrary block: left edge `anchor + offset`, right edge `left + len` (a negative
/// length reverses it).
#[derive(arbitrary::Arbitrary, Clone, Copy, Debug)]
pub struct RawSackBlock {
    /// The left edge's anchor.
    pub anchor: super::ops::Anchor,
    /// Added to the anchor.
    pub offset: i16,
    /// Right edge minus left edge.
    pub len: i16,
}

/// The SACK option of a peer segment: the first `count` (modulo 5) of `blocks`, as many as
/// fit.
#[derive(arbitrary::Arbitrary, Clone, Copy, Debug)]
pub struct SackSpec {
    /// How many of `blocks` to use (modulo 5).
    pub count: u8,
    /// The blocks, in order.
    pub blocks: [SackBlockSpec; 4],
}

impl SackSpec {
    /// The blocks in use.
    pub fn used(&self) -> &[SackBlockSpec] {
        self.blocks.get(..usize::from(self.count % 5)).unwrap_or(&[])
    }
}

/// How far the SACK checks got in a run (the model test asserts they are not vacuous).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SackCoverage {
    /// SACK was negotiated.
    pub negotiated: bool,
    /// The connection sent SACK blocks.
    pub blocks_sent: u32,
    /// The connection sent a D-SACK.
    pub dsacks_sent: u32,
    /// Blocks the connection took that the model holds it to (check (b)).
    pub blocks_taken: u32,
    /// Retransmissions checked while SACKed octets were outstanding.
    pub retransmissions_checked: u32,
    /// The connection's `sack_recoveries` at the end.
    pub recoveries: u64,
    /// The connection's `loss_probes` at the end.
    pub loss_probes: u64,
    /// The connection's `dsacks_received` at the end.
    pub dsacks_received: u64,
}

/// Duplicates remembered for D-SACK credit, at most.
const CREDITS_MAX: usize = 16;

/// The SACK checks (a) and (b) of the module docs, for one incarnation at a time.
#[derive(Clone, Debug, Default)]
pub(crate) struct SackCheck {
    /// The peer's SYNs carry SACK-permitted (the input's choice).
    peer_offers: bool,
    /// The peer's SYN that opened this incarnation carried it.
    peer_offered: bool,
    /// The connection's SYN (or SYN-ACK) in this incarnation carried it.
    we_offered: bool,
    /// Octets of sequence space the peer sent, as offsets from IRS.
    peer_sent: RangeSet,
    /// Octets it sent at least twice.
    peer_sent_twice: RangeSet,
    /// Per peer segment that repeated octets: those octets, good for one D-SACK each.
    dsack_credits: Vec<Vec<(u64, u64)>>,
    /// Octets of the connection's sequence space the peer SACKed (offsets from ISS), each
    /// with the step that SACKed it, since the last retransmission timeout.
    sacked: RangeSet,
    sacked_at: Vec<((u64, u64), usize)>,
    /// Octets within SND.UNA..SND.NXT that any block of any ACK covered since the last
    /// timeout, however dubious (a block reaching below SND.UNA, an old ACK): what the
    /// connection *may* hold SACKed.
    maybe_sacked: RangeSet,
    /// The connection's `retransmission_timeouts` as last seen.
    timeouts: u64,
    /// SND.UNA, while the peer's window is zero (a probe resends its first octet).
    zero_window_at: Option<SeqNum>,
    pub(crate) coverage: SackCoverage,
}

impl SackCheck {
    /// Checks for a run whose peer offers SACK-permitted on its SYNs when `peer_offers`.
    pub(crate) fn new(peer_offers: bool) -> Self {
        Self { peer_offers, ..Self::default() }
    }

    /// Whether SACK is in use on this incarnation (RFC 2018 §2: both SYNs offered it).
    pub(crate) fn negotiated(&self) -> bool {
        self.peer_offered && self.we_offered
    }

    /// The connection went back to LISTEN or was opened afresh: forget the incarnation.
    pub(crate) fn reset(&mut self) {
        let coverage = self.coverage;
        let timeouts = self.timeouts;
        *self = Self::new(self.peer_offers);
        self.coverage = coverage;
        self.timeouts = timeouts;
    }

    /// The peer's SYN synchronized the connection.
    pub(crate) fn on_opened(&mut self) {
        self.peer_offered = self.peer_offers;
        self.coverage.negotiated |= self.negotiated();
    }

    /// The peer sent `[seq, seq + seg_len)` (IRS known): remember it, and what it repeated.
    pub(crate) fn on_peer_sent(&mut self, irs: u32, seq: u32, seg_len: u32) {
        let mut repeated = Vec::new();
        for (start, end) in offsets(irs, seq, seg_len) {
            let overlap = self.peer_sent.overlap(start, end);
            for &(s, e) in &overlap {
                self.peer_sent_twice.insert(s, e);
            }
            repeated.extend(overlap);
            self.peer_sent.insert(start, end);
        }
        if !repeated.is_empty() {
            if self.dsack_credits.len() == CREDITS_MAX {
                self.dsack_credits.remove(0);
            }
            self.dsack_credits.push(repeated);
        }
    }

    /// The connection's retransmission-timeout count after a step: a timeout since the last
    /// look lets it forget every SACK (RFC 2018 §8), so the model forgets them too.
    pub(crate) fn on_timeouts(&mut self, timeouts: u64) {
        if timeouts != self.timeouts {
            self.timeouts = timeouts;
            self.sacked = RangeSet::default();
            self.sacked_at.clear();
            self.maybe_sacked = RangeSet::default();
        }
    }

    /// Before the connection's output: the peer's window and SND.UNA as the connection knows
    /// them.
    pub(crate) fn on_send_window(&mut self, snd_wnd: u32, snd_una: SeqNum) {
        self.zero_window_at = (snd_wnd == 0).then_some(snd_una);
    }

    /// SND.UNA moved to `snd_una`: what lies below it can no longer be resent.
    pub(crate) fn on_snd_una(&mut self, iss: u32, snd_una: u32) {
        let below = u64::from(snd_una.wrapping_sub(iss));
        self.sacked.remove(0, below);
        self.sacked_at.retain(|&((_, end), _)| end > below);
        self.maybe_sacked.remove(0, below);
    }

    /// An ACK-bearing segment carrying `blocks` arrived, with SND.UNA and SND.NXT as given
    /// before it: whatever part of SND.UNA..SND.NXT a block covers the connection may hold
    /// SACKed (it takes blocks down to the lower of SEG.ACK and SND.UNA).
    pub(crate) fn on_blocks_seen(
        &mut self,
        iss: u32,
        (snd_una, snd_nxt): (SeqNum, SeqNum),
        blocks: &[SackBlock],
    ) {
        if !self.negotiated() {
            return;
        }
        for block in blocks {
            let (left, right) = (block.left.max_seq(snd_una), block.right.min_seq(snd_nxt));
            if left.before(right) && !block.right.before(block.left) {
                let start = u64::from(left.get().wrapping_sub(iss));
                self.maybe_sacked.insert(start, start + u64::from(right.since(left)));
            }
        }
    }

    /// Whether the connection may hold the octet at `snd_una` SACKed: then entering recovery
    /// finds nothing presumed lost to resend (the receiver reneged, RFC 2018 §8).
    pub(crate) fn may_hold_una_sacked(&self, iss: u32, snd_una: SeqNum) -> bool {
        let una = u64::from(snd_una.get().wrapping_sub(iss));
        self.maybe_sacked.covers(una, una + 1) || self.sacked.covers(una, una + 1)
    }

    /// The connection certainly processed the ACK of a segment carrying `blocks` and ACK
    /// `ack`, with SND.UNA and SND.NXT as given before it: record what it must treat as
    /// SACKed (RFC 2018 §4 and RFC 2883 §4 decide which blocks count).
    pub(crate) fn on_blocks_taken(
        &mut self,
        step: usize,
        iss: u32,
        (snd_una, snd_nxt): (SeqNum, SeqNum),
        ack: SeqNum,
        blocks: &[SackBlock],
    ) {
        if !self.negotiated() {
            return;
        }
        let skip = usize::from(blocks.first().is_some_and(|first| is_dsack(first, blocks, ack)));
        for block in blocks.iter().skip(skip) {
            let within = block.left.before(block.right)
                && snd_una.before_eq(block.left)
                && block.right.before_eq(snd_nxt);
            if !within {
                continue;
            }
            let left = block.left.max_seq(ack);
            if !left.before(block.right) {
                continue;
            }
            let start = u64::from(left.get().wrapping_sub(iss));
            let end = start + u64::from(block.right.since(left));
            self.sacked.insert(start, end);
            self.sacked_at.push(((start, end), step));
            self.coverage.blocks_taken += 1;
        }
    }

    /// Checks one segment the connection sent (a), and its retransmitted payload (b); `irs`
    /// and `iss` once known, `snd_max` the end of what it sent before this segment.
    pub(crate) fn check_output(
        &mut self,
        segment: &Segment<'_>,
        (iss, irs): (u32, Option<u32>),
        snd_max: u32,
        what: &str,
    ) {
        let header = &segment.header;
        let options = &header.options;
        let syn = header.flags.contains(crate::wire::Flags::SYN);
        let ack_flag = header.flags.contains(crate::wire::Flags::ACK);
        if options.sack_permitted {
            // RFC 2018 §2: on a SYN only; on a SYN-ACK only in reply to a SYN with it.
            assert!(syn, "{what}: SACK-permitted on a segment without SYN");
            assert!(
                !ack_flag || self.peer_offered,
                "{what}: SACK-permitted on a SYN-ACK answering a SYN without it (RFC 2018 §2)"
            );
        }
        if syn {
            self.we_offered = options.sack_permitted;
            self.coverage.negotiated |= self.negotiated();
        }
        self.check_blocks(segment, irs, what);
        self.check_resend(segment, iss, snd_max, what);
    }

    /// Check (a).
    fn check_blocks(&mut self, segment: &Segment<'_>, irs: Option<u32>, what: &str) {
        let header = &segment.header;
        let blocks = header.options.sack_blocks.as_slice();
        if blocks.is_empty() {
            return;
        }
        assert!(
            self.negotiated(),
            "{what}: SACK blocks {blocks:?} though SACK was not negotiated (RFC 2018 §2)"
        );
        let max = if header.options.timestamps.is_some() { 3 } else { 4 };
        assert!(
            blocks.len() <= max,
            "{what}: {} SACK blocks, more than the {max} that fit (RFC 2018 §3)",
            blocks.len()
        );
        let Some(irs) = irs else { panic!("{what}: SACK blocks before the peer's SYN") };
        let ack = header.ack;
        self.coverage.blocks_sent += 1;
        for (i, block) in blocks.iter().enumerate() {
            assert!(
                block.left.before(block.right),
                "{what}: SACK block {i} {block:?} is empty or reversed"
            );
            let len = block.right.since(block.left);
            let parts: Vec<(u64, u64)> = offsets(irs, block.left.get(), len).collect();
            if i == 0 && is_dsack(block, blocks, ack) {
                // RFC 2883 §4: octets received twice, each duplicate reported once.
                assert!(
                    parts.iter().all(|&(s, e)| s < BEHIND && self.peer_sent_twice.covers(s, e)),
                    "{what}: D-SACK {block:?} for octets the peer did not send twice"
                );
                let within = |pieces: &Vec<(u64, u64)>| {
                    parts.iter().all(|&(s, e)| pieces.iter().any(|&(ps, pe)| ps <= s && e <= pe))
                };
                let credit = self.dsack_credits.iter().rposition(within);
                let Some(credit) = credit else {
                    panic!(
                        "{what}: D-SACK {block:?} reports no duplicate the peer sent since the \
                         last D-SACK for it (RFC 2883 §4: each duplicate at most once)"
                    )
                };
                self.dsack_credits.remove(credit);
                self.coverage.dsacks_sent += 1;
                continue;
            }
            // RFC 2018 §4: blocks report data received and queued above the ACK field.
            assert!(
                block.left.after(ack),
                "{what}: SACK block {i} {block:?} is not above the ACK field {ack}"
            );
            assert!(
                parts.iter().all(|&(s, e)| self.peer_sent.covers(s, e)),
                "{what}: SACK block {i} {block:?} covers octets the peer never sent"
            );
        }
    }

    /// Check (b): retransmitted payload octets were not SACKed since the last timeout.
    fn check_resend(&mut self, segment: &Segment<'_>, iss: u32, snd_max: u32, what: &str) {
        let header = &segment.header;
        let len = u32::try_from(segment.payload.len()).unwrap_or(u32::MAX);
        if len == 0 || self.sacked.is_empty() {
            return;
        }
        let first = header.seq + u32::from(header.flags.contains(crate::wire::Flags::SYN));
        let start = u64::from(first.get().wrapping_sub(iss));
        let end = start + u64::from(len);
        let resent_end = end.min(u64::from(snd_max.wrapping_sub(iss)));
        if start >= resent_end {
            return;
        }
        if self.zero_window_at == Some(first) && len == 1 {
            // A zero-window probe (RFC 9293 §3.8.6.1): one octet from SND.UNA to draw the
            // peer's window, not loss recovery; which octet it carries does not matter.
            return;
        }
        self.coverage.retransmissions_checked += 1;
        if let Some(&(s, e)) = self.sacked.overlap(start, resent_end).first() {
            let step = self
                .sacked_at
                .iter()
                .find(|&&((bs, be), _)| bs < e && s < be)
                .map_or(0, |&(_, step)| step);
            panic!(
                "{what}: resent octets {}..{} that the peer SACKed at step {step}, with no \
                 retransmission timeout since (RFC 6675 §5: SACKed data is not sent again)",
                iss.wrapping_add(s as u32),
                iss.wrapping_add(e as u32),
            );
        }
    }
}

/// RFC 2883 §4: the first block is a D-SACK when the cumulative ACK covers it or the second
/// block contains it.
fn is_dsack(first: &SackBlock, blocks: &[SackBlock], ack: SeqNum) -> bool {
    first.right.before_eq(ack)
        || blocks.get(1).is_some_and(|second| {
            second.left.before_eq(first.left) && first.right.before_eq(second.right)
        })
}

/// Scripted runs for the SACK checks, committed as `connection` seeds
/// (`fuzz/seeds/connection/sack-*`; `tests/fuzz_seeds.rs` checks what each reaches): a loss
/// repaired by SACK recovery, the receiver's SACK and D-SACK blocks, a spurious retransmission
/// the peer reports with a D-SACK, a tail loss probe, blocks of every bogus shape, and a
/// retransmission timeout with SACKed data outstanding.
pub fn sack_scripts() -> Vec<(&'static str, super::ops::Input)> {
    use super::ops::{Anchor, Input, Op, PeerSegment, ReadForm, SendForm};
    use SackBlockSpec::{Duplicate, Held, Raw};
    const SYN: u8 = 0x02;
    const ACK: u8 = 0x10;
    const PSH_ACK: u8 = 0x18;
    const FIN_ACK: u8 = 0x11;
    let segment = |flags: u8, seq: Anchor, seq_off: i16, len: u16, blocks: &[SackBlockSpec]| {
        let mut spec = SackSpec { count: 0, blocks: [Held(0); 4] };
        for (slot, block) in spec.blocks.iter_mut().zip(blocks) {
            *slot = *block;
            spec.count += 1;
        }
        Op::Segment(PeerSegment {
            flags,
            seq,
            seq_off,
            ack: Anchor::Held,
            ack_off: 0,
            window: 65_535,
            len,
            urgent: 0,
            mss: None,
            window_scale: None,
            sack: (!blocks.is_empty()).then_some(spec),
            packet: None,
        })
    };
    let ack = |blocks: &[SackBlockSpec]| segment(ACK, Anchor::RcvNxt, 0, 0, blocks);
    let syn_ack = segment(SYN | ACK, Anchor::Raw(7_000), 0, 0, &[]);
    let raw = |anchor, offset, len| Raw(RawSackBlock { anchor, offset, len });
    let active = |peer_timestamps, ops: Vec<Op>| Input {
        passive: false,
        delayed_ack: false,
        peer_sack: true,
        peer_timestamps,
        ops,
    };
    let close = [Op::Close, segment(FIN_ACK, Anchor::RcvNxt, 0, 0, &[]), Op::Tick(300_000_000)];
    let mut scripts = Vec::new();
    // The second of six segments is lost; the peer SACKs the four after it and RACK (with
    // DupThresh SACKed segments, no reordering window) resends it at once.
    let mut ops = alloc::vec![
        Op::Tick(20_000),
        syn_ack.clone(),
        Op::Lose(0b10),
        Op::Send(3000, SendForm::Copy),
        Op::Tick(20_000),
        ack(&[Held(0)]),
        Op::Lose(0),
        ack(&[]),
    ];
    ops.extend(close.clone());
    scripts.push(("sack-recovery", active(true, ops)));
    // The peer sends out of order, twice the same, then fills the hole and repeats old data:
    // SACK blocks, a D-SACK inside the block, a D-SACK below the ACK field.
    let ops = alloc::vec![
        segment(SYN, Anchor::Raw(7_000), 0, 0, &[]),
        ack(&[]),
        segment(PSH_ACK, Anchor::RcvNxt, 100, 100, &[]),
        segment(PSH_ACK, Anchor::RcvNxt, 300, 50, &[]),
        segment(PSH_ACK, Anchor::RcvNxt, 100, 100, &[]),
        segment(PSH_ACK, Anchor::RcvNxt, 0, 200, &[]),
        segment(PSH_ACK, Anchor::RcvNxt, -50, 100, &[]),
        Op::Recv(1000, ReadForm::Copy),
        segment(FIN_ACK, Anchor::RcvNxt, 0, 0, &[]),
        Op::Close,
        ack(&[]),
    ];
    scripts.push((
        "sack-receiver-blocks",
        Input { passive: true, delayed_ack: false, peer_sack: true, peer_timestamps: false, ops },
    ));
    // A segment held up, not lost: the retransmission timer resends it, the original arrives
    // after all, and the peer reports the duplicate with a D-SACK (RFC 2883 §4); RACK takes
    // it as reordering (RFC 8985 §6.2 step 4).
    let mut ops = alloc::vec![
        Op::Tick(20_000),
        syn_ack.clone(),
        Op::Lose(0b1),
        Op::Send(500, SendForm::Copy),
        Op::Tick(1_100_000),
        Op::Lose(0),
        Op::Arrive(0),
        ack(&[Duplicate]),
    ];
    ops.extend(close.clone());
    scripts.push(("sack-spurious-retransmission", active(false, ops)));
    // The tail of a flight is lost: the probe timeout (2·SRTT with two segments out, before
    // the 200 ms RTO) makes the last segment go again (RFC 8985 §7).
    let mut ops = alloc::vec![
        Op::Tick(20_000),
        syn_ack.clone(),
        Op::Lose(0b110),
        Op::Send(1500, SendForm::Copy),
        Op::Tick(20_000),
        ack(&[]),
        Op::Tick(60_000),
        Op::Lose(0),
        ack(&[]),
    ];
    ops.extend(close.clone());
    scripts.push(("sack-loss-probe", active(false, ops)));
    // Blocks the connection must ignore: beyond SND.NXT, below SND.UNA, reversed, empty,
    // overlapping, a D-SACK-shaped block below the ACK, one spanning SND.UNA.
    let mut ops = alloc::vec![
        Op::Tick(20_000),
        syn_ack.clone(),
        Op::Lose(0b1),
        Op::Send(2000, SendForm::Copy),
        ack(&[raw(Anchor::SndNxt, 1, 100), raw(Anchor::SndUna, -200, 100)]),
        ack(&[raw(Anchor::SndUna, 600, -300), raw(Anchor::SndUna, 600, 0)]),
        ack(&[raw(Anchor::SndUna, 500, 400), raw(Anchor::SndUna, 700, 400)]),
        ack(&[raw(Anchor::SndUna, -100, 50), raw(Anchor::SndUna, -10, 500)]),
        ack(&[raw(Anchor::Iss, 0, 1), raw(Anchor::Raw(0x8000_0000), 0, 1000)]),
        Op::Tick(2_000_000),
        Op::Lose(0),
        ack(&[]),
    ];
    ops.extend(close.clone());
    scripts.push(("sack-bogus-blocks", active(true, ops)));
    // SACKed data outstanding when the retransmission timer expires: the timeout resends from
    // SND.UNA, after which RFC 2018 §8 lets the sender forget the SACKs.
    let mut ops = alloc::vec![
        Op::Tick(20_000),
        syn_ack.clone(),
        Op::Lose(0b1111_1101),
        Op::Send(3000, SendForm::Copy),
        Op::Tick(20_000),
        ack(&[Held(0)]),
        Op::Tick(1_500_000),
        Op::Tick(3_000_000),
        Op::Lose(0),
        Op::Tick(6_000_000),
        ack(&[]),
    ];
    ops.extend(close);
    scripts.push(("sack-timeout", active(false, ops)));
    scripts
}
