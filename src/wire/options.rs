//! TCP options (RFC 9293 §3.1, §3.2; RFC 7323; RFC 2018): parse and emit.
//!
//! Parsing skips options of unknown kind by their length (MUST-6), accepts options at any
//! alignment (MUST-64), and rejects an option whose length is impossible (MUST-7) rather than
//! reading past the header. Emitting pads with NOPs to a 4-octet boundary and zero-fills the last
//! word (MUST-69).

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

/// One SACK block: octets `left..right` were received (RFC 2018 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SackBlock {
    /// First sequence number of the block.
    pub left: SeqNum,
    /// Sequence number just after the block.
    pub right: SeqNum,
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
#[derive(Clone, Copy, Debug, Default)]
pub struct SackBlocks {
    blocks: [Option<SackBlock>; Self::MAX],
    len: usize,
}

impl SackBlocks {
    /// The most blocks an option can carry (RFC 2018 §3: 40 octets hold four).
    pub const MAX: usize = 4;

    /// No blocks.
    pub const fn new() -> Self {
        Self { blocks: [None; Self::MAX], len: 0 }
    }

    /// Appends a block; `false` when already full.
    pub fn push(&mut self, block: SackBlock) -> bool {
        match self.blocks.get_mut(self.len) {
            Some(slot) => {
                *slot = Some(block);
                self.len += 1;
                true
            }
            None => false,
        }
    }

    /// The blocks, in order.
    pub fn iter(&self) -> impl Iterator<Item = SackBlock> + '_ {
        self.blocks.iter().take(self.len).flatten().copied()
    }

    /// How many blocks.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl PartialEq for SackBlocks {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
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

    /// Encoded length in octets, padded to a multiple of 4.
    pub fn encoded_len(&self) -> usize {
        let mut len = 0;
        if self.mss.is_some() {
            len += 4;
        }
        if self.window_scale.is_some() {
            len += 4; // NOP + 3
        }
        if self.sack_permitted {
            len += 4; // NOP NOP + 2
        }
        if self.timestamps.is_some() {
            len += 12; // NOP NOP + 10
        }
        if !self.sack_blocks.is_empty() {
            len += 4 + 8 * self.sack_blocks.len(); // NOP NOP + 2 + 8n
        }
        len
    }

    /// Parses the options area of a header (MUST-6, MUST-7, MUST-64).
    pub(crate) fn parse(mut area: &[u8]) -> Result<Self, ParseError> {
        let mut options = Self::NONE;
        while let Some((&kind, rest)) = area.split_first() {
            match kind {
                KIND_EOL => break,
                KIND_NOP => {
                    area = rest;
                    continue;
                }
                _ => {}
            }
            let Some((&len, _)) = rest.split_first() else {
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
                    let bytes: [u8; 2] = body.try_into().map_err(|_| bad)?;
                    options.mss = Some(u16::from_be_bytes(bytes));
                }
                KIND_WINDOW_SCALE => {
                    let [shift]: [u8; 1] = body.try_into().map_err(|_| bad)?;
                    options.window_scale = Some(shift);
                }
                KIND_SACK_PERMITTED => {
                    if !body.is_empty() {
                        return Err(bad);
                    }
                    options.sack_permitted = true;
                }
                KIND_TIMESTAMPS => {
                    let bytes: [u8; 8] = body.try_into().map_err(|_| bad)?;
                    let (tsval, tsecr) = bytes.split_at(4);
                    options.timestamps = Some(Timestamps {
                        tsval: u32::from_be_bytes(tsval.try_into().map_err(|_| bad)?),
                        tsecr: u32::from_be_bytes(tsecr.try_into().map_err(|_| bad)?),
                    });
                }
                KIND_SACK => {
                    if body.is_empty() || body.len() % 8 != 0 || body.len() > 8 * SackBlocks::MAX {
                        return Err(bad);
                    }
                    let mut blocks = SackBlocks::new();
                    for block in body.chunks_exact(8) {
                        let (left, right) = block.split_at(4);
                        blocks.push(SackBlock {
                            left: SeqNum::new(u32::from_be_bytes(
                                left.try_into().map_err(|_| bad)?,
                            )),
                            right: SeqNum::new(u32::from_be_bytes(
                                right.try_into().map_err(|_| bad)?,
                            )),
                        });
                    }
                    options.sack_blocks = blocks;
                }
                // MUST-6: an option we do not know is skipped by its length.
                _ => {}
            }
            area = after;
        }
        Ok(options)
    }

    /// Writes the options into `out` (exactly `encoded_len()` octets). Returns octets written.
    pub(crate) fn emit(&self, out: &mut [u8]) -> usize {
        let mut writer = Writer { out, at: 0 };
        if let Some(mss) = self.mss {
            writer.put(&[KIND_MSS, 4]);
            writer.put(&mss.to_be_bytes());
        }
        if let Some(shift) = self.window_scale {
            writer.put(&[KIND_NOP, KIND_WINDOW_SCALE, 3, shift]);
        }
        if self.sack_permitted {
            writer.put(&[KIND_NOP, KIND_NOP, KIND_SACK_PERMITTED, 2]);
        }
        if let Some(ts) = self.timestamps {
            writer.put(&[KIND_NOP, KIND_NOP, KIND_TIMESTAMPS, 10]);
            writer.put(&ts.tsval.to_be_bytes());
            writer.put(&ts.tsecr.to_be_bytes());
        }
        if !self.sack_blocks.is_empty() {
            // At most 4 blocks: 2 + 32 octets.
            let len = 2 + 8 * self.sack_blocks.len() as u8;
            writer.put(&[KIND_NOP, KIND_NOP, KIND_SACK, len]);
            for block in self.sack_blocks.iter() {
                writer.put(&block.left.get().to_be_bytes());
                writer.put(&block.right.get().to_be_bytes());
            }
        }
        writer.at
    }
}

struct Writer<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        if let Some(dst) = self.out.get_mut(self.at..self.at + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
        self.at += bytes.len();
    }
}
