//! TCP options (RFC 9293 §3.1, §3.2; window scale and timestamps from RFC 7323; SACK from
//! RFC 2018): parse and emit.
//!
//! Options may arrive in any segment (MUST-5). Parsing understands EOL, NOP and MSS (MUST-4),
//! window scale, SACK-permitted, SACK and timestamps; skips options of unknown kind by their
//! length field (MUST-6, MUST-68); accepts options at any alignment (MUST-64); and rejects an
//! option whose length is impossible — below 2, past the options area, or wrong for a known
//! kind — instead of reading past the header (MUST-7). A repeated option: the last one wins.
//!
//! Emission uses Linux's layout, padded with NOPs so every option group fills whole words and
//! the options area needs no trailing padding:
//!
//! ```text
//!   MSS                          02 04 mm mm
//!   SACK-permitted + timestamps  04 02 08 0a <tsval> <tsecr>      (12 octets)
//!   SACK-permitted alone         01 01 04 02
//!   timestamps alone             01 01 08 0a <tsval> <tsecr>      (12 octets)
//!   window scale                 01 03 03 ss
//!   SACK, n blocks               01 01 05 <2+8n> <left right>*n
//! ```
//!
//! When that layout would exceed the 40-octet options area but the options themselves fit, they
//! are packed instead — the same order with no NOPs, then zeros up to the next word (EOL and
//! padding of zeros, MUST-69) — so anything that parsed can be emitted again.

use core::fmt;

use super::ParseError;
use crate::seq::SeqNum;

const KIND_EOL: u8 = 0;
const KIND_NOP: u8 = 1;
const KIND_MSS: u8 = 2;
const KIND_WINDOW_SCALE: u8 = 3;
const KIND_SACK_PERMITTED: u8 = 4;
const KIND_SACK: u8 = 5;
const KIND_TIMESTAMPS: u8 = 8;

/// The most option octets a header can carry (data offset 15 words).
pub(crate) const MAX_OPTIONS_LEN: usize = 40;

/// Octets of the timestamps option alone, word-aligned: two NOPs and ten octets.
pub(crate) const TIMESTAMPS_ALIGNED_LEN: usize = 12;

/// One SACK block: octets `left..right` were received (RFC 2018 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SackBlock {
    /// First sequence number of the block.
    pub left: SeqNum,
    /// Sequence number just after the block.
    pub right: SeqNum,
}

impl SackBlock {
    /// Filler for the unused slots of [`SackBlocks`]; never observable.
    const UNUSED: Self = Self { left: SeqNum::new(0), right: SeqNum::new(0) };
}

/// The timestamps option (RFC 7323 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timestamps {
    /// TSval: the sender's clock.
    pub tsval: u32,
    /// TSecr: the echoed timestamp.
    pub tsecr: u32,
}

/// Up to four SACK blocks in fixed storage (no allocation).
///
/// Equality compares only the blocks in use.
#[derive(Clone, Copy)]
pub struct SackBlocks {
    /// `blocks[..len]` are in use; the rest are [`SackBlock::UNUSED`].
    blocks: [SackBlock; Self::MAX],
    /// Blocks in use, at most [`Self::MAX`]; one octet, so the struct (in every parsed
    /// header) is 36 octets rather than 40.
    len: u8,
}

impl SackBlocks {
    /// The most blocks an option can carry (RFC 2018 §3: 40 octets hold four).
    pub const MAX: usize = 4;

    /// No blocks.
    pub const fn new() -> Self {
        Self { blocks: [SackBlock::UNUSED; Self::MAX], len: 0 }
    }

    /// Appends a block; `false` (and nothing changes) when already full.
    pub fn push(&mut self, block: SackBlock) -> bool {
        match self.blocks.get_mut(usize::from(self.len)) {
            Some(slot) => {
                *slot = block;
                self.len += 1;
                true
            }
            None => false,
        }
    }

    /// The blocks in use, in order.
    pub fn as_slice(&self) -> &[SackBlock] {
        // `len` never exceeds `MAX`, so the range is always in bounds.
        self.blocks.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// The blocks in use, in order, by value.
    pub fn iter(&self) -> impl Iterator<Item = SackBlock> + '_ {
        self.as_slice().iter().copied()
    }

    /// How many blocks are in use.
    pub const fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether there are none.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Default for SackBlocks {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for SackBlocks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl PartialEq for SackBlocks {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for SackBlocks {}

/// The options of one segment, as far as this stack understands them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Maximum segment size (RFC 9293 §3.7.1), SYN only.
    pub mss: Option<u16>,
    /// Window-scale shift as received (RFC 7323 §2); clamping to 14 is the connection's job.
    pub window_scale: Option<u8>,
    /// SACK permitted (RFC 2018 §2), SYN only.
    pub sack_permitted: bool,
    /// SACK blocks (RFC 2018 §3).
    pub sack_blocks: SackBlocks,
    /// Timestamps (RFC 7323 §3).
    pub timestamps: Option<Timestamps>,
}

impl Options {
    /// No options.
    pub const NONE: Self = Self {
        mss: None,
        window_scale: None,
        sack_permitted: false,
        sack_blocks: SackBlocks::new(),
        timestamps: None,
    };

    /// Encoded length in octets, padded to a multiple of 4 (see the layouts in the module
    /// docs).
    ///
    /// May exceed the 40 octets a header can hold; emitting such options is
    /// [`EmitError::OptionsTooLong`](super::EmitError::OptionsTooLong).
    pub fn encoded_len(&self) -> usize {
        let aligned = self.aligned_len();
        if aligned <= MAX_OPTIONS_LEN { aligned } else { self.packed_len().div_ceil(4) * 4 }
    }

    /// Length of the word-aligned layout.
    fn aligned_len(&self) -> usize {
        let mut len = 0;
        if self.mss.is_some() {
            len += 4;
        }
        len += match (self.sack_permitted, self.timestamps.is_some()) {
            (_, true) => 12,
            (true, false) => 4,
            (false, false) => 0,
        };
        if self.window_scale.is_some() {
            len += 4;
        }
        if !self.sack_blocks.is_empty() {
            len += 4 + 8 * self.sack_blocks.len();
        }
        len
    }

    /// Length of the options with no NOPs and no padding.
    fn packed_len(&self) -> usize {
        let mut len = 0;
        if self.mss.is_some() {
            len += 4;
        }
        if self.sack_permitted {
            len += 2;
        }
        if self.timestamps.is_some() {
            len += 10;
        }
        if self.window_scale.is_some() {
            len += 3;
        }
        if !self.sack_blocks.is_empty() {
            len += 2 + 8 * self.sack_blocks.len();
        }
        len
    }

    /// The timestamps option, if it is the only option here: the options area of almost every
    /// segment of a connection that negotiated timestamps (RFC 7323 §3.2), which has a fast
    /// path through parse and emit.
    pub(crate) fn timestamps_only(&self) -> Option<Timestamps> {
        let alone = self.mss.is_none()
            && self.window_scale.is_none()
            && !self.sack_permitted
            && self.sack_blocks.is_empty();
        self.timestamps.filter(|_| alone)
    }

    /// The options area of [`Options::timestamps_only`], in the layout of the module docs.
    pub(crate) fn aligned_timestamps(ts: Timestamps) -> [u8; TIMESTAMPS_ALIGNED_LEN] {
        let [v0, v1, v2, v3] = ts.tsval.to_be_bytes();
        let [e0, e1, e2, e3] = ts.tsecr.to_be_bytes();
        [KIND_NOP, KIND_NOP, KIND_TIMESTAMPS, 10, v0, v1, v2, v3, e0, e1, e2, e3]
    }

    /// The options area of a SYN or SYN-ACK as [`Options::emit`] lays it out — MSS, then
    /// SACK-permitted and timestamps, then window scale, word-aligned with NOPs (at most 20
    /// octets) — as big-endian 32-bit words: a handshake segment written and summed without
    /// encoding an [`Options`].
    pub(crate) fn syn_words(
        mss: u16,
        sack_permitted: bool,
        timestamps: Option<Timestamps>,
        window_scale: Option<u8>,
    ) -> OptionWords {
        let word = |octets: [u8; 4]| u32::from_be_bytes(octets);
        let mut words = OptionWords { words: [0; 5], count: 0 };
        let [m0, m1] = mss.to_be_bytes();
        words.push(word([KIND_MSS, 4, m0, m1]));
        match (sack_permitted, timestamps) {
            (true, Some(ts)) => {
                words.push(word([KIND_SACK_PERMITTED, 2, KIND_TIMESTAMPS, 10]));
                words.push(ts.tsval);
                words.push(ts.tsecr);
            }
            (false, Some(ts)) => {
                words.push(word([KIND_NOP, KIND_NOP, KIND_TIMESTAMPS, 10]));
                words.push(ts.tsval);
                words.push(ts.tsecr);
            }
            (true, None) => words.push(word([KIND_NOP, KIND_NOP, KIND_SACK_PERMITTED, 2])),
            (false, None) => {}
        }
        if let Some(shift) = window_scale {
            words.push(word([KIND_NOP, KIND_WINDOW_SCALE, 3, shift]));
        }
        words
    }

    /// Parses the options area of a header (MUST-6, MUST-7, MUST-64).
    #[cfg(test)]
    pub(crate) fn parse(area: &[u8]) -> Result<Self, ParseError> {
        let mut options = Self::NONE;
        options.parse_into(area)?;
        Ok(options)
    }

    /// Parses the options area of a header (MUST-6, MUST-7, MUST-64) into `self`, which is
    /// [`Options::NONE`]: only the options present are written. On an error `self` holds
    /// what came before the bad option.
    #[inline(always)]
    pub(crate) fn parse_into(&mut self, area: &[u8]) -> Result<(), ParseError> {
        // The common case first: NOP, NOP, timestamps, as every Linux and tcp-proto segment
        // after a handshake that negotiated them carries (Linux's fast path too).
        // The four leading octets compared as one word, not one by one.
        const LEAD: u32 = u32::from_ne_bytes([KIND_NOP, KIND_NOP, KIND_TIMESTAMPS, 10]);
        if let Ok(&[k0, k1, k2, k3, v0, v1, v2, v3, e0, e1, e2, e3]) = <&[u8; 12]>::try_from(area)
            && u32::from_ne_bytes([k0, k1, k2, k3]) == LEAD
        {
            let tsval = u32::from_be_bytes([v0, v1, v2, v3]);
            let tsecr = u32::from_be_bytes([e0, e1, e2, e3]);
            self.timestamps = Some(Timestamps { tsval, tsecr });
            return Ok(());
        }
        self.parse_each(area)
    }

    /// [`parse_into`](Self::parse_into) for any other options area.
    #[inline(never)]
    fn parse_each(&mut self, area: &[u8]) -> Result<(), ParseError> {
        // A handshake segment first: MSS, SACK-permitted and timestamps, NOP and window scale
        // (20 octets), the layout of every Linux SYN and SYN-ACK and of ours (`syn_words`),
        // read whole rather than option by option. Anything else goes the general way.
        const SACK_PERMITTED_TIMESTAMPS: [u8; 4] = [KIND_SACK_PERMITTED, 2, KIND_TIMESTAMPS, 10];
        if let (&[[KIND_MSS, 4, m0, m1], SACK_PERMITTED_TIMESTAMPS, tsval, tsecr, scale], []) =
            area.as_chunks::<4>()
            && let [KIND_NOP, KIND_WINDOW_SCALE, 3, shift] = scale
        {
            self.mss = Some(u16::from_be_bytes([m0, m1]));
            self.sack_permitted = true;
            let (tsval, tsecr) = (u32::from_be_bytes(tsval), u32::from_be_bytes(tsecr));
            self.timestamps = Some(Timestamps { tsval, tsecr });
            self.window_scale = Some(shift);
            return Ok(());
        }
        self.parse_in_turn(area)
    }

    /// [`parse_each`](Self::parse_each) for any options area: each option in turn.
    #[inline(always)]
    fn parse_in_turn(&mut self, mut area: &[u8]) -> Result<(), ParseError> {
        let options = self;
        while let Some((&kind, rest)) = area.split_first() {
            match kind {
                KIND_EOL => break,
                KIND_NOP => {
                    area = rest;
                    continue;
                }
                _ => {}
            }
            // MUST-68: every other option has a length octet; a missing one is reported as 0.
            let Some(&len) = rest.first() else {
                return Err(ParseError::BadOptionLength { kind, len: 0 });
            };
            let bad = ParseError::BadOptionLength { kind, len };
            if len < 2 {
                return Err(bad);
            }
            let Some((option, after)) = area.split_at_checked(usize::from(len)) else {
                return Err(bad);
            };
            let body = option.get(2..).unwrap_or(&[]);
            match kind {
                KIND_MSS => {
                    let &[high, low] = body else { return Err(bad) };
                    options.mss = Some(u16::from_be_bytes([high, low]));
                }
                KIND_WINDOW_SCALE => {
                    let &[shift] = body else { return Err(bad) };
                    options.window_scale = Some(shift);
                }
                KIND_SACK_PERMITTED => {
                    if !body.is_empty() {
                        return Err(bad);
                    }
                    options.sack_permitted = true;
                }
                KIND_TIMESTAMPS => {
                    let Ok(words) = <[u8; 8]>::try_from(body) else { return Err(bad) };
                    let [v0, v1, v2, v3, e0, e1, e2, e3] = words;
                    options.timestamps = Some(Timestamps {
                        tsval: u32::from_be_bytes([v0, v1, v2, v3]),
                        tsecr: u32::from_be_bytes([e0, e1, e2, e3]),
                    });
                }
                KIND_SACK => {
                    let (blocks, remainder) = body.as_chunks::<8>();
                    if blocks.is_empty() || !remainder.is_empty() || blocks.len() > SackBlocks::MAX
                    {
                        return Err(bad);
                    }
                    let mut sack = SackBlocks::new();
                    for &[l0, l1, l2, l3, r0, r1, r2, r3] in blocks {
                        sack.push(SackBlock {
                            left: SeqNum::new(u32::from_be_bytes([l0, l1, l2, l3])),
                            right: SeqNum::new(u32::from_be_bytes([r0, r1, r2, r3])),
                        });
                    }
                    options.sack_blocks = sack;
                }
                // MUST-6: an option we do not implement is skipped by its length.
                _ => {}
            }
            area = after;
        }
        Ok(())
    }

    /// Writes the options into `out`, which the caller sizes to `encoded_len()` octets and
    /// zero-fills (so the packed layout ends in EOL and zeros). Returns octets written before
    /// that padding. The caller has already checked the 40-octet limit.
    pub(crate) fn emit(&self, out: &mut [u8]) -> usize {
        let packed = self.aligned_len() > MAX_OPTIONS_LEN;
        let nop: &[u8] = if packed { &[] } else { &[KIND_NOP] };
        let nops: &[u8] = if packed { &[] } else { &[KIND_NOP, KIND_NOP] };
        let mut writer = Writer { out, at: 0 };
        if let Some(mss) = self.mss {
            writer.put(&[KIND_MSS, 4]);
            writer.put(&mss.to_be_bytes());
        }
        match (self.sack_permitted, self.timestamps) {
            (true, Some(_)) => writer.put(&[KIND_SACK_PERMITTED, 2]),
            (false, Some(_)) => writer.put(nops),
            (true, None) => {
                writer.put(nops);
                writer.put(&[KIND_SACK_PERMITTED, 2]);
            }
            (false, None) => {}
        }
        if let Some(ts) = self.timestamps {
            writer.put(&[KIND_TIMESTAMPS, 10]);
            writer.put(&ts.tsval.to_be_bytes());
            writer.put(&ts.tsecr.to_be_bytes());
        }
        if let Some(shift) = self.window_scale {
            writer.put(nop);
            writer.put(&[KIND_WINDOW_SCALE, 3, shift]);
        }
        if !self.sack_blocks.is_empty() {
            // At most four blocks: a length of at most 34.
            let len = 2 + 8 * self.sack_blocks.len() as u8;
            writer.put(nops);
            writer.put(&[KIND_SACK, len]);
            for block in self.sack_blocks.iter() {
                writer.put(&block.left.get().to_be_bytes());
                writer.put(&block.right.get().to_be_bytes());
            }
        }
        writer.at
    }
}

/// An options area laid out as big-endian 32-bit words ([`Options::syn_words`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OptionWords {
    words: [u32; 5],
    count: usize,
}

impl OptionWords {
    /// Appends a word; a sixth is dropped (no layout built here has one).
    fn push(&mut self, word: u32) {
        if let Some(slot) = self.words.get_mut(self.count) {
            *slot = word;
            self.count += 1;
        }
    }

    /// The words, in order.
    #[cfg(test)]
    pub(crate) fn words(&self) -> &[u32] {
        self.words.get(..self.count).unwrap_or_default()
    }

    /// All five slots: the words, then zeros (a slot is zero until `push` fills it).
    pub(crate) fn slots(&self) -> &[u32; 5] {
        &self.words
    }

    /// Octets of the area.
    pub(crate) fn len(&self) -> usize {
        4 * self.count
    }
}

/// A cursor over the options area; octets that would not fit are dropped, never panicked on.
struct Writer<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let end = self.at.saturating_add(bytes.len());
        if let Some(dst) = self.out.get_mut(self.at..end) {
            dst.copy_from_slice(bytes);
        }
        self.at = end;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn block(left: u32, right: u32) -> SackBlock {
        SackBlock { left: SeqNum::new(left), right: SeqNum::new(right) }
    }

    fn round_trip(options: &Options) -> Options {
        let mut area = [0u8; MAX_OPTIONS_LEN];
        let len = options.encoded_len();
        assert_eq!(len % 4, 0);
        let written = options.emit(&mut area[..len]);
        assert!(written <= len && len - written < 4, "{written} of {len}");
        Options::parse(&area[..len]).unwrap()
    }

    #[test]
    fn linux_syn_options_emit_byte_for_byte_like_linux() {
        let options = Options {
            mss: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            timestamps: Some(Timestamps { tsval: 0x0001_0203, tsecr: 0 }),
            ..Options::NONE
        };
        let mut area = [0u8; 20];
        assert_eq!(options.emit(&mut area), 20);
        assert_eq!(
            area,
            [
                0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x00, 0x01, 0x02, 0x03, 0x00, 0x00,
                0x00, 0x00, 0x01, 0x03, 0x03, 0x07
            ]
        );
        assert_eq!(Options::parse(&area), Ok(options));
    }

    /// `emit_pieces` sums all five slots of a SYN's words: those past the words are zero,
    /// whichever layout `syn_words` builds.
    #[test]
    fn syn_words_leave_unused_slots_zero() {
        let ts = Some(Timestamps { tsval: u32::MAX, tsecr: u32::MAX });
        for (sack, ts, shift) in [(false, None, None), (true, None, None), (false, ts, None)]
            .into_iter()
            .chain([(true, ts, Some(14)), (true, None, Some(14)), (false, None, Some(0))])
        {
            let words = Options::syn_words(u16::MAX, sack, ts, shift);
            let slots = words.slots();
            assert_eq!(&slots[..words.words().len()], words.words());
            assert!(slots[words.words().len()..].iter().all(|&slot| slot == 0), "{slots:?}");
        }
    }

    #[test]
    fn every_layout_round_trips() {
        for mask in 0u8..32 {
            let mut options = Options::NONE;
            if mask & 1 != 0 {
                options.mss = Some(536);
            }
            if mask & 2 != 0 {
                options.window_scale = Some(14);
            }
            if mask & 4 != 0 {
                options.sack_permitted = true;
            }
            if mask & 8 != 0 {
                options.timestamps = Some(Timestamps { tsval: 7, tsecr: u32::MAX });
            }
            if mask & 16 != 0 {
                options.sack_blocks.push(block(100, 200));
            }
            assert!(options.encoded_len() <= MAX_OPTIONS_LEN);
            assert_eq!(round_trip(&options), options, "mask {mask:#b}");
        }
    }

    #[test]
    fn four_sack_blocks_fill_the_options_area() {
        let mut options = Options::NONE;
        for i in 0..4 {
            assert!(options.sack_blocks.push(block(i * 10, i * 10 + 5)));
        }
        assert!(!options.sack_blocks.push(block(1, 2)), "a fifth block does not fit");
        assert_eq!(options.sack_blocks.len(), SackBlocks::MAX);
        assert_eq!(options.encoded_len(), 36);
        assert_eq!(round_trip(&options), options);
        assert_eq!(options.sack_blocks.as_slice()[3], block(30, 35));
    }

    #[test]
    fn options_too_long_for_word_alignment_are_packed_must_69() {
        // Window scale, SACK-permitted and four SACK blocks: 39 octets on the wire, 44 aligned.
        let mut wire = [0u8; 40];
        wire[..5].copy_from_slice(&[3, 3, 14, 4, 2]);
        wire[5..7].copy_from_slice(&[5, 34]);
        for (i, byte) in wire[7..39].iter_mut().enumerate() {
            *byte = i as u8;
        }
        let options = Options::parse(&wire).unwrap();
        assert_eq!(options.sack_blocks.len(), 4);
        assert_eq!(options.encoded_len(), 40);
        let mut area = [0u8; 40];
        assert_eq!(options.emit(&mut area), 39);
        assert_eq!(area[..4], [4, 2, 3, 3], "same order as aligned, without NOPs");
        assert_eq!(area[39], 0, "zero padding after the last option");
        assert_eq!(Options::parse(&area), Ok(options));
        // Past 40 octets even packed: refused by the caller.
        let mut too_many = options;
        too_many.timestamps = Some(Timestamps { tsval: 1, tsecr: 2 });
        assert!(too_many.encoded_len() > MAX_OPTIONS_LEN);
    }

    #[test]
    fn sack_blocks_compare_only_the_blocks_in_use() {
        let mut a = SackBlocks::new();
        let mut b = SackBlocks::default();
        assert_eq!(a, b);
        assert!(a.is_empty());
        a.push(block(1, 2));
        assert_ne!(a, b);
        b.push(block(1, 2));
        assert_eq!(a, b);
        assert_eq!(a.as_slice(), &[block(1, 2)]);
        assert_eq!(a.iter().collect::<alloc::vec::Vec<_>>(), [block(1, 2)]);
    }

    #[test]
    fn repeated_option_last_one_wins() {
        let area = [2, 4, 0x01, 0x00, 2, 4, 0x05, 0xb4];
        assert_eq!(Options::parse(&area).unwrap().mss, Some(1460));
    }

    #[test]
    fn eol_ends_parsing_and_nops_are_skipped() {
        // NOP, NOP, EOL, then bytes that would be an invalid option if they were read.
        let area = [1, 1, 0, 2, 0, 0, 0, 0];
        assert_eq!(Options::parse(&area), Ok(Options::NONE));
    }

    #[test]
    fn unknown_option_is_skipped_by_its_length_must_6() {
        let area = [0x22, 5, 0xaa, 0xbb, 0xcc, 2, 4, 0x05, 0xb4];
        assert_eq!(Options::parse(&area).unwrap().mss, Some(1460));
    }

    #[test]
    fn option_at_odd_offset_is_parsed_must_64() {
        let area = [1, 2, 4, 0x05, 0xb4, 1, 3, 3, 9, 0, 0, 0];
        let options = Options::parse(&area).unwrap();
        assert_eq!(options.mss, Some(1460));
        assert_eq!(options.window_scale, Some(9));
    }

    #[test]
    fn option_length_zero_or_one_is_rejected_must_7() {
        for len in [0, 1] {
            assert_eq!(
                Options::parse(&[0x22, len, 0, 0]),
                Err(ParseError::BadOptionLength { kind: 0x22, len })
            );
        }
        // The length octet itself is missing.
        assert_eq!(Options::parse(&[2]), Err(ParseError::BadOptionLength { kind: 2, len: 0 }));
    }

    #[test]
    fn option_running_past_the_area_is_rejected_must_7() {
        assert_eq!(
            Options::parse(&[1, 0x22, 8, 0, 0]),
            Err(ParseError::BadOptionLength { kind: 0x22, len: 8 })
        );
        assert_eq!(
            Options::parse(&[2, 4, 5]),
            Err(ParseError::BadOptionLength { kind: 2, len: 4 })
        );
    }

    #[test]
    fn known_option_with_wrong_length_is_rejected_must_7() {
        let cases: [(&[u8], u8, u8); 7] = [
            (&[2, 3, 0, 0], 2, 3),
            (&[3, 4, 0, 0], 3, 4),
            (&[4, 3, 0, 0], 4, 3),
            (&[8, 9, 0, 0, 0, 0, 0, 0, 0, 0], 8, 9),
            (&[5, 2, 0, 0], 5, 2),
            (&[5, 9, 0, 0, 0, 0, 0, 0, 0], 5, 9),
            (
                &[
                    5, 42, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                ],
                5,
                42,
            ),
        ];
        for (area, kind, len) in cases {
            assert_eq!(
                Options::parse(area),
                Err(ParseError::BadOptionLength { kind, len }),
                "{area:?}"
            );
        }
    }

    /// The handshake layout read whole (`parse_each`) against reading it option by option:
    /// the same options or the same error for the layout itself and for every one-octet
    /// change of it (another kind, length or value at any position).
    mod handshake_layout {
        use proptest::prelude::*;

        use super::*;

        fn in_turn(area: &[u8]) -> Result<Options, ParseError> {
            let mut options = Options::NONE;
            options.parse_in_turn(area)?;
            Ok(options)
        }

        proptest! {
            #[test]
            fn reads_as_option_by_option(
                mss in any::<u16>(),
                tsval in any::<u32>(),
                tsecr in any::<u32>(),
                shift in any::<u8>(),
                change in prop::option::of((0usize..20, any::<u8>())),
            ) {
                let ts = Some(Timestamps { tsval, tsecr });
                let mut area = [0u8; 20];
                let words = Options::syn_words(mss, true, ts, Some(shift));
                for (octets, word) in area.chunks_exact_mut(4).zip(words.words()) {
                    octets.copy_from_slice(&word.to_be_bytes());
                }
                if let Some((at, value)) = change {
                    area[at] = value;
                }
                prop_assert_eq!(Options::parse(&area), in_turn(&area));
                if change.is_none() {
                    let expected = Options {
                        mss: Some(mss),
                        window_scale: Some(shift),
                        sack_permitted: true,
                        timestamps: ts,
                        ..Options::NONE
                    };
                    prop_assert_eq!(Options::parse(&area), Ok(expected));
                }
            }
        }
    }
}
