//! The TCP wire format (RFC 9293 §3.1, §3.2): a zero-copy segment view, typed parse errors,
//! options, the checksum over the IPv4/IPv6 pseudo-header, and emission into a caller's buffer.
//!
//! Parsing validates structure — length, data offset, option lengths (MUST-7) — skips options it
//! does not implement by their length (MUST-6) and reads options at any alignment (MUST-64);
//! [`Segment::parse_checked`] first verifies the checksum (MUST-3). Emission computes the
//! checksum (MUST-2), pads the options area with zeros (MUST-69), and never writes a truncated
//! segment: a buffer too small is an [`EmitError`]. Nothing here allocates or panics on input,
//! and nothing here knows about connections: the protocol lives in `connection`.
//!
//! - [`checksum`]: the RFC 1071 sum and the pseudo-header.
//! - `options`: [`Options`] parse and emit (layout documented there).
//! - [`ip`]: minimal IPv4/IPv6 headers for adapters.

pub mod checksum;
pub mod ip;
mod options;

use core::fmt;
use core::net::IpAddr;
use core::ops::{BitOr, BitOrAssign};

pub use options::{Options, SackBlock, SackBlocks, Timestamps};

use crate::seq::SeqNum;
use checksum::pseudo_header;
use options::MAX_OPTIONS_LEN;

/// IP protocol number of TCP.
pub const PROTOCOL_TCP: u8 = 6;

/// The fixed part of a TCP header, in octets.
pub const HEADER_LEN: usize = 20;

/// The TCP control bits (RFC 9293 §3.1; ECE and CWR from RFC 3168).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(u8);

impl Flags {
    /// No more data from sender.
    pub const FIN: Self = Self(0x01);
    /// Synchronize sequence numbers.
    pub const SYN: Self = Self(0x02);
    /// Reset the connection.
    pub const RST: Self = Self(0x04);
    /// Push function.
    pub const PSH: Self = Self(0x08);
    /// Acknowledgment field is significant.
    pub const ACK: Self = Self(0x10);
    /// Urgent pointer field is significant.
    pub const URG: Self = Self(0x20);
    /// ECN-Echo (RFC 3168).
    pub const ECE: Self = Self(0x40);
    /// Congestion window reduced (RFC 3168).
    pub const CWR: Self = Self(0x80);
    /// No bits.
    pub const EMPTY: Self = Self(0);

    /// The flags with these bits.
    pub const fn from_bits(bits: u8) -> Self {
        Self(bits)
    }

    /// The raw bits.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Both sets of bits.
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// These bits without those of `other`.
    pub const fn without(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }
}

impl BitOr for Flags {
    type Output = Self;

    fn bitor(self, rhs: Self) -> Self {
        self.union(rhs)
    }
}

impl BitOrAssign for Flags {
    fn bitor_assign(&mut self, rhs: Self) {
        *self = self.union(rhs);
    }
}

impl fmt::Display for Flags {
    /// tcpdump's letters: S F R P U E W, then `.` for ACK; `none` when empty.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("none");
        }
        let letters = [
            (Self::SYN, 'S'),
            (Self::FIN, 'F'),
            (Self::RST, 'R'),
            (Self::PSH, 'P'),
            (Self::URG, 'U'),
            (Self::ECE, 'E'),
            (Self::CWR, 'W'),
            (Self::ACK, '.'),
        ];
        for (flag, letter) in letters {
            if self.contains(flag) {
                fmt::Write::write_char(f, letter)?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Flags[{self}]")
    }
}

/// A TCP header, parsed or to be emitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpHeader {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: SeqNum,
    /// Acknowledgment number (meaningful with ACK).
    pub ack: SeqNum,
    /// Control bits.
    pub flags: Flags,
    /// The raw, unscaled window field.
    pub window: u16,
    /// Urgent pointer (meaningful with URG).
    pub urgent_ptr: u16,
    /// Options.
    pub options: Options,
}

impl TcpHeader {
    /// Header length in octets: 20 plus the padded options.
    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.options.encoded_len()
    }

    /// Writes this header, its options (padded to a multiple of 4 octets) and the payload
    /// pieces, concatenated, into the front of `buf`, with the checksum over the pseudo-header of
    /// `src` → `dst` (MUST-2). Returns the octets written: `header_len()` plus the payload.
    ///
    /// The payload may come in pieces (for example the two halves of a ring buffer); pieces of
    /// any length, odd ones included, give the same bytes as one contiguous slice.
    ///
    /// # Errors
    ///
    /// - [`EmitError::OptionsTooLong`] when the options need more than 40 octets.
    /// - [`EmitError::BufferTooSmall`] when `buf` cannot hold the whole segment; a truncated
    ///   segment is never written (the contents of `buf` are then unspecified).
    /// - [`EmitError::AddressFamilyMismatch`] when `src` and `dst` are not of the same family.
    pub fn emit(
        &self,
        payload: &[&[u8]],
        src: IpAddr,
        dst: IpAddr,
        buf: &mut [u8],
    ) -> Result<usize, EmitError> {
        let options_len = self.options.encoded_len();
        if options_len > MAX_OPTIONS_LEN {
            return Err(EmitError::OptionsTooLong { len: options_len });
        }
        let header_len = HEADER_LEN + options_len;
        let available = buf.len();
        let total = payload
            .iter()
            .try_fold(header_len, |total, piece| total.checked_add(piece.len()))
            .unwrap_or(usize::MAX);
        let Some(out) = buf.get_mut(..total) else {
            return Err(EmitError::BufferTooSmall { needed: total, available });
        };
        // A segment longer than 2^32 octets cannot be described by any pseudo-header.
        let tcp_len = u32::try_from(total)
            .map_err(|_| EmitError::BufferTooSmall { needed: total, available })?;
        let mut sum = pseudo_header(src, dst, PROTOCOL_TCP, tcp_len)
            .map_err(|_| EmitError::AddressFamilyMismatch)?;
        let (head, body) = out.split_at_mut(header_len);
        let (fixed, option_area) = head.split_at_mut(HEADER_LEN);
        // header_len / 4 is at most 15 (options ≤ 40 octets), so it fits the 4-bit field.
        let data_offset = (header_len / 4) as u8;
        let [sp0, sp1] = self.src_port.to_be_bytes();
        let [dp0, dp1] = self.dst_port.to_be_bytes();
        let [s0, s1, s2, s3] = self.seq.get().to_be_bytes();
        let [a0, a1, a2, a3] = self.ack.get().to_be_bytes();
        let [w0, w1] = self.window.to_be_bytes();
        let [u0, u1] = self.urgent_ptr.to_be_bytes();
        let fields: [u8; HEADER_LEN] = [
            sp0,
            sp1,
            dp0,
            dp1,
            s0,
            s1,
            s2,
            s3,
            a0,
            a1,
            a2,
            a3,
            data_offset << 4,
            self.flags.bits(),
            w0,
            w1,
            0, // checksum, filled in below
            0,
            u0,
            u1,
        ];
        fixed.copy_from_slice(&fields);
        // MUST-69: whatever the options leave of the area is zero.
        option_area.fill(0);
        self.options.emit(option_area);
        // The header first: the payload then starts at an even offset, as on the wire.
        sum.add_bytes(head);
        let mut rest = body;
        for piece in payload {
            // `total` counted every piece, so each one fits.
            let Some((dst, tail)) = rest.split_at_mut_checked(piece.len()) else {
                break;
            };
            dst.copy_from_slice(piece);
            sum.add_bytes(piece);
            rest = tail;
        }
        let checksum = sum.finish();
        if let Some(field) = head.get_mut(16..18) {
            field.copy_from_slice(&checksum.to_be_bytes());
        }
        Ok(total)
    }
}

/// A parsed segment: the header and a borrowed payload (zero-copy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment<'a> {
    /// The header.
    pub header: TcpHeader,
    /// The payload, borrowed from the parsed bytes.
    pub payload: &'a [u8],
}

impl<'a> Segment<'a> {
    /// Parses the structure of a segment without checking its checksum: length, data offset,
    /// options (MUST-6, MUST-7, MUST-64).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ParseError> {
        let Some(fixed) = bytes.first_chunk::<HEADER_LEN>() else {
            return Err(ParseError::TooShort { len: bytes.len() });
        };
        let data_offset = fixed[12] >> 4;
        if data_offset < 5 {
            return Err(ParseError::DataOffsetTooSmall { data_offset });
        }
        let header_len = usize::from(data_offset) * 4;
        let Some((head, payload)) = bytes.split_at_checked(header_len) else {
            return Err(ParseError::DataOffsetPastEnd { header_len, len: bytes.len() });
        };
        let options = Options::parse(head.get(HEADER_LEN..).unwrap_or(&[]))?;
        Ok(Self {
            header: TcpHeader {
                src_port: u16::from_be_bytes([fixed[0], fixed[1]]),
                dst_port: u16::from_be_bytes([fixed[2], fixed[3]]),
                seq: SeqNum::new(u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]])),
                ack: SeqNum::new(u32::from_be_bytes([fixed[8], fixed[9], fixed[10], fixed[11]])),
                flags: Flags::from_bits(fixed[13]),
                window: u16::from_be_bytes([fixed[14], fixed[15]]),
                urgent_ptr: u16::from_be_bytes([fixed[18], fixed[19]]),
                options,
            },
            payload,
        })
    }

    /// Verifies the checksum over the pseudo-header of `src` → `dst` (MUST-3), then parses.
    pub fn parse_checked(bytes: &'a [u8], src: IpAddr, dst: IpAddr) -> Result<Self, ParseError> {
        let tcp_len = u32::try_from(bytes.len()).map_err(|_| ParseError::TooShort { len: 0 })?;
        let mut sum = pseudo_header(src, dst, PROTOCOL_TCP, tcp_len)
            .map_err(|_| ParseError::AddressFamilyMismatch)?;
        sum.add_bytes(bytes);
        // Summing a correct segment, checksum field included, gives all ones (complement 0).
        if sum.finish() != 0 {
            let received = bytes
                .get(16..18)
                .and_then(|field| field.try_into().ok())
                .map_or(0, u16::from_be_bytes);
            let mut again = pseudo_header(src, dst, PROTOCOL_TCP, tcp_len)
                .map_err(|_| ParseError::AddressFamilyMismatch)?;
            again.add_bytes(bytes.get(..16).unwrap_or(bytes));
            again.add_bytes(bytes.get(18..).unwrap_or(&[]));
            return Err(ParseError::BadChecksum { received, computed: again.finish() });
        }
        Self::parse(bytes)
    }

    /// SEG.LEN: payload octets plus one each for SYN and FIN (RFC 9293 §3.4).
    pub fn seg_len(&self) -> u32 {
        let flags = self.header.flags;
        // A parsed payload is shorter than the 2^32 octets an IP packet could never hold.
        (self.payload.len() as u32)
            + u32::from(flags.contains(Flags::SYN))
            + u32::from(flags.contains(Flags::FIN))
    }

    /// Emits this segment (see [`TcpHeader::emit`]).
    pub fn emit(&self, src: IpAddr, dst: IpAddr, buf: &mut [u8]) -> Result<usize, EmitError> {
        self.header.emit(&[self.payload], src, dst, buf)
    }
}

impl fmt::Display for Segment<'_> {
    /// tcpdump style without addresses:
    /// `Flags [S.], seq 1000, ack 2001, win 65535, options [mss 1460], length 0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = &self.header;
        write!(f, "Flags [{}], seq {}", h.flags, h.seq)?;
        if h.flags.contains(Flags::ACK) {
            write!(f, ", ack {}", h.ack)?;
        }
        write!(f, ", win {}", h.window)?;
        if h.flags.contains(Flags::URG) {
            write!(f, ", urg {}", h.urgent_ptr)?;
        }
        let o = &h.options;
        if *o != Options::NONE {
            f.write_str(", options [")?;
            let mut sep = "";
            if let Some(mss) = o.mss {
                write!(f, "{sep}mss {mss}")?;
                sep = ",";
            }
            if o.sack_permitted {
                write!(f, "{sep}sackOK")?;
                sep = ",";
            }
            if let Some(ts) = o.timestamps {
                write!(f, "{sep}TS val {} ecr {}", ts.tsval, ts.tsecr)?;
                sep = ",";
            }
            if let Some(shift) = o.window_scale {
                write!(f, "{sep}wscale {shift}")?;
                sep = ",";
            }
            if !o.sack_blocks.is_empty() {
                write!(f, "{sep}sack {}", o.sack_blocks.len())?;
                for block in o.sack_blocks.iter() {
                    write!(f, " {{{}:{}}}", block.left, block.right)?;
                }
            }
            f.write_str("]")?;
        }
        write!(f, ", length {}", self.payload.len())
    }
}

/// Why bytes are not a TCP segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// Fewer than the 20 octets of a header.
    TooShort {
        /// Octets given.
        len: usize,
    },
    /// The data offset is below 5 words.
    DataOffsetTooSmall {
        /// The data offset field, in 32-bit words.
        data_offset: u8,
    },
    /// The data offset points past the end of the segment.
    DataOffsetPastEnd {
        /// Header length the data offset claims.
        header_len: usize,
        /// Octets given.
        len: usize,
    },
    /// An option's length is impossible (MUST-7): below 2, past the options area, or wrong
    /// for its kind.
    BadOptionLength {
        /// Option kind.
        kind: u8,
        /// The length octet (0 when missing).
        len: u8,
    },
    /// The checksum does not match (MUST-3).
    BadChecksum {
        /// The checksum field.
        received: u16,
        /// The checksum the contents call for.
        computed: u16,
    },
    /// Source and destination addresses are of different IP families.
    AddressFamilyMismatch,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort { len } => write!(f, "segment too short: {len} octets, header needs 20"),
            Self::DataOffsetTooSmall { data_offset } => {
                write!(f, "data offset {data_offset} below the minimum of 5 words")
            }
            Self::DataOffsetPastEnd { header_len, len } => {
                write!(f, "header length {header_len} past the end of a {len}-octet segment")
            }
            Self::BadOptionLength { kind, len } => {
                write!(f, "option kind {kind} has impossible length {len}")
            }
            Self::BadChecksum { received, computed } => {
                write!(f, "bad checksum {received:#06x}, expected {computed:#06x}")
            }
            Self::AddressFamilyMismatch => f.write_str("source and destination families differ"),
        }
    }
}

impl core::error::Error for ParseError {}

/// Why a segment could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EmitError {
    /// The buffer cannot hold header and payload.
    BufferTooSmall {
        /// Octets needed.
        needed: usize,
        /// Octets available.
        available: usize,
    },
    /// Source and destination addresses are of different IP families.
    AddressFamilyMismatch,
    /// The options need more than 40 octets.
    OptionsTooLong {
        /// Octets the options need.
        len: usize,
    },
}

impl fmt::Display for EmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BufferTooSmall { needed, available } => {
                write!(f, "buffer too small: need {needed} octets, have {available}")
            }
            Self::AddressFamilyMismatch => f.write_str("source and destination families differ"),
            Self::OptionsTooLong { len } => write!(f, "options need {len} octets, at most 40 fit"),
        }
    }
}

impl core::error::Error for EmitError {}
