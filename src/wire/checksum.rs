//! The Internet checksum (RFC 1071) and the TCP pseudo-header (RFC 9293 §3.1).
//!
//! The sender computes the checksum over the pseudo-header, the TCP header and the payload
//! (MUST-2) and the receiver verifies it (MUST-3). [`Checksum`] accumulates in pieces of any
//! length — odd ones included — so a payload split across the two halves of a ring buffer sums
//! the same as one contiguous slice. This is the per-segment hot path: whole 4-octet words are
//! summed in the machine's byte order — a payload in 32-bit vector lanes, 256 bits wide where
//! the CPU has AVX2 (see `wide`) — and folded and swapped once at the end (RFC 1071 §2(B): the
//! ones'-complement sum may be taken in wider words and is independent of byte order).

use core::fmt;
use core::net::IpAddr;

/// 32-bit words summed into one `u64` before it is folded: each adds less than 2^32, so a
/// block of 2^20 stays far below 2^64.
const WORDS_PER_BLOCK: usize = 1 << 20;

/// The ones'-complement sum of `words`, as if they were read big-endian, folded to 16 bits.
///
/// The words are added in the machine's own byte order (no per-word swap, so the compiler
/// vectorises the wide loop); RFC 1071 §2(B) shows the ones'-complement sum is byte-order
/// independent, so one swap of the folded result at the end gives the big-endian sum.
#[inline]
fn native_words_as_big_endian(words: &[[u8; 4]]) -> u64 {
    let native = if words.len() >= WIDE_WORDS {
        wide(Wide::Sum(words))
    } else {
        // A header, a pseudo-header, a short piece: a plain loop, no vector set-up.
        words.iter().map(|word| u64::from(u32::from_ne_bytes(*word))).sum()
    };
    fold_native_to_big_endian(native)
}

/// Pieces of at least this many words (64 octets) take the wide loop.
const WIDE_WORDS: usize = 16;

/// Words per block of the wide loop's two 32-bit sums: at most 2^16, so neither wraps past
/// what can be undone (see [`sum_words`]).
const WORDS_PER_FLUSH: usize = 1 << 16;

/// A piece of work for the wide loop: sum `words`, or copy `src` into `dst` (of the same
/// length) and sum it. One type, so that one dispatch (and one `unsafe` call) serves both.
enum Wide<'a> {
    Sum(&'a [[u8; 4]]),
    CopySum { dst: &'a mut [[u8; 4]], src: &'a [[u8; 4]] },
}

/// The wide loop, at the widest vectors this CPU has: 256-bit AVX2 where the build targets it
/// (`-C target-cpu=x86-64-v3`) or, with `std`, where the CPU reports it at run time; the same
/// loop in whatever the build targets otherwise (SSE2 on plain x86-64, other architectures'
/// vectors, or scalar). Out of line, so the short pieces around it stay small (inlining the
/// check into every caller measured slower for short and long pieces alike).
#[cfg(all(feature = "std", target_arch = "x86_64", not(target_feature = "avx2")))]
#[inline(never)]
#[allow(unsafe_code)]
fn wide(work: Wide<'_>) -> u64 {
    // std caches the CPUID answer: after the first call this is a load and a bit test.
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: `wide_avx2` is safe Rust compiled with AVX2 enabled; its one precondition is
        // that the CPU executes AVX2 instructions, which was checked just above.
        unsafe { wide_avx2(work) }
    } else {
        wide_baseline(work)
    }
}

/// The wide loop compiled for the build's own target (see the `std` + x86-64 form above).
#[cfg(not(all(feature = "std", target_arch = "x86_64", not(target_feature = "avx2"))))]
#[inline(always)]
fn wide(work: Wide<'_>) -> u64 {
    wide_baseline(work)
}

/// [`wide_portable`] compiled with AVX2: the compiler vectorises its loops in 256-bit lanes.
#[cfg(all(feature = "std", target_arch = "x86_64", not(target_feature = "avx2")))]
#[target_feature(enable = "avx2")]
#[inline(never)]
fn wide_avx2(work: Wide<'_>) -> u64 {
    wide_portable(work)
}

/// [`wide_portable`] compiled for the build's own target.
#[inline(never)]
fn wide_baseline(work: Wide<'_>) -> u64 {
    wide_portable(work)
}

/// The loops behind both [`Wide`] kinds of work, inlined into each compiled form.
#[inline(always)]
fn wide_portable(work: Wide<'_>) -> u64 {
    match work {
        Wide::Sum(words) => sum_words(words),
        Wide::CopySum { dst, src } => copy_sum_words(dst, src),
    }
}

/// The native-order sum of `words`, as two 32-bit sums per block of at most 2^16 words:
/// `full`, the words added with wrap-around, and `high`, their upper halves. The sum of the
/// lower halves is then `full - (high << 16)` modulo 2^32, exact because it stays below 2^32,
/// and low + high is the sum of the block's 16-bit words. One load, one add, one shift and one
/// add per vector of words, no widening.
///
/// The loop is written as one scalar word at a time on purpose, and the compiler picks the
/// vector width: 4 lanes with SSE2, 8 with AVX2 (interleaved into several accumulators).
/// The first form spelled out four 32-bit lanes by hand; built with AVX2, the compiler then
/// vectorised across groups of four, unpicking the lanes with shuffles and spilling its
/// accumulators every step, which made it 1.9× slower than with SSE2 (docs/performance.md,
/// "Checksum"). Modular addition is associative, so any lane split the compiler chooses
/// computes the same two sums.
#[inline(always)]
fn sum_words(words: &[[u8; 4]]) -> u64 {
    let mut native = 0;
    for block in words.chunks(WORDS_PER_FLUSH) {
        let (mut full, mut high) = (0u32, 0u32);
        for word in block {
            let word = u32::from_ne_bytes(*word);
            full = full.wrapping_add(word);
            high = high.wrapping_add(word >> 16);
        }
        native += unsplit(full, high);
    }
    native
}

/// Copies `src` into `dst` (the shorter of the two decides) and returns the native-order sum
/// of the words copied, as [`sum_words`] does, in one pass: each word is loaded once, stored
/// and added.
#[inline(always)]
fn copy_sum_words(dst: &mut [[u8; 4]], src: &[[u8; 4]]) -> u64 {
    let mut native = 0;
    for (dst, src) in dst.chunks_mut(WORDS_PER_FLUSH).zip(src.chunks(WORDS_PER_FLUSH)) {
        let (mut full, mut high) = (0u32, 0u32);
        for (dst, src) in dst.iter_mut().zip(src) {
            *dst = *src;
            let word = u32::from_ne_bytes(*src);
            full = full.wrapping_add(word);
            high = high.wrapping_add(word >> 16);
        }
        native += unsplit(full, high);
    }
    native
}

/// The sum of the 16-bit halves of at most 2^16 words, from the words' sum `full` modulo 2^32
/// and their upper halves' sum `high` (exact: below 2^32 for so few words). The lower halves'
/// sum is below 2^32 too, so `full - (high << 16)` modulo 2^32 is that sum exactly.
#[inline(always)]
fn unsplit(full: u32, high: u32) -> u64 {
    let low = full.wrapping_sub(high << 16);
    u64::from(low) + u64::from(high)
}

/// Folds a native-order sum to 16 bits and swaps it into network order if needed.
fn fold_native_to_big_endian(mut native: u64) -> u64 {
    while native > 0xffff {
        native = (native & 0xffff) + (native >> 16);
    }
    // The loop leaves at most 16 bits.
    let folded = native as u16;
    u64::from(if cfg!(target_endian = "little") { folded.swap_bytes() } else { folded })
}

/// An incremental ones'-complement sum (RFC 1071).
///
/// Feed it pieces with [`add_bytes`](Self::add_bytes) in order; a piece of odd length leaves its
/// last octet pending until the next piece supplies the partner, so the result never depends on
/// where the data was split.
#[derive(Clone, Copy, Debug, Default)]
pub struct Checksum {
    /// Sum of big-endian words, folded below 2^33 after every call.
    sum: u64,
    /// An octet left over from an odd-length piece, waiting for its partner.
    pending: Option<u8>,
}

/// What the device under the caller does about TCP checksums, so that work it does is not
/// done twice (checksum offload). The default computes and verifies every checksum in
/// software; anything else is only for a device that really does the skipped part, since
/// MUST-2 and MUST-3 are then met by the device (docs/conformance.md).
///
/// A [`Config`](crate::Config) carries one: its connections emit by `tx`, and an
/// [`Endpoint`](crate::Endpoint) uses the one of its `EndpointConfig::connection` for what it
/// handles before any connection does — verifying arriving segments by `rx` and emitting its
/// replies to strays by `tx`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ChecksumCapabilities {
    /// How emitted segments get their checksum.
    pub tx: TxChecksum,
    /// Whether arriving segments' checksums are verified.
    pub rx: RxChecksum,
}

impl ChecksumCapabilities {
    /// Compute every checksum sent and verify every checksum received, in software: the
    /// default.
    pub const SOFTWARE: Self = Self { tx: TxChecksum::Compute, rx: RxChecksum::Verify };
    /// The device computes the checksums of what is sent and verifies those of what arrives:
    /// the field is left 0 on emission and never checked on arrival.
    pub const DEVICE: Self = Self { tx: TxChecksum::None, rx: RxChecksum::Trust };
}

/// How an emitted segment's checksum field is filled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TxChecksum {
    /// The complete checksum over the pseudo-header, header and payload (MUST-2). The default.
    #[default]
    Compute,
    /// The field is left 0 and the payload only copied: the device computes the whole
    /// checksum, pseudo-header included.
    None,
    /// Partial offload, as Linux's `CHECKSUM_PARTIAL` (virtio-net's `VIRTIO_NET_HDR_F_NEEDS_CSUM`)
    /// asks: the field holds the pseudo-header's ones'-complement sum, folded to 16 bits and
    /// *not* complemented ([`Checksum::folded`]); header and payload are not summed. The device
    /// sums from the start of the TCP header to the end of the segment (`csum_start` = the TCP
    /// header's offset in the packet, `csum_offset` = 16, the field's offset in the header) and
    /// stores the complement of that sum in the field; since the field already holds the
    /// pseudo-header's sum, the result is the full checksum.
    PseudoHeader,
}

/// Whether an arriving segment's checksum is verified.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RxChecksum {
    /// Verify it and drop the segment when it is wrong (MUST-3). The default.
    #[default]
    Verify,
    /// Take the segment as valid without summing it: for a device that verified the checksum
    /// and drops (or marks and the caller drops) bad ones, such as Linux's
    /// `CHECKSUM_UNNECESSARY` or virtio-net's `VIRTIO_NET_HDR_F_DATA_VALID`.
    Trust,
}

/// The two addresses of a pseudo-header are of different IP families (one IPv4, one IPv6).
///
/// Returned by [`pseudo_header`]; [`Segment::parse_checked`](super::Segment::parse_checked) and
/// [`TcpHeader::emit`](super::TcpHeader::emit) turn it into their own `AddressFamilyMismatch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AddressFamilyMismatch;

impl fmt::Display for AddressFamilyMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("source and destination addresses are of different IP families")
    }
}

impl core::error::Error for AddressFamilyMismatch {}

impl Checksum {
    /// An empty sum.
    pub const fn new() -> Self {
        Self { sum: 0, pending: None }
    }

    /// Adds `data`, continuing any odd octet left by the previous piece.
    #[inline]
    pub fn add_bytes(&mut self, mut data: &[u8]) {
        let mut sum = self.sum;
        if let Some(high) = self.pending.take() {
            match data.split_first() {
                Some((&low, rest)) => {
                    sum += u64::from(u16::from_be_bytes([high, low]));
                    data = rest;
                }
                None => {
                    self.pending = Some(high);
                    return;
                }
            }
        }
        let (words, tail) = data.as_chunks::<4>();
        for block in words.chunks(WORDS_PER_BLOCK) {
            sum += native_words_as_big_endian(block);
            sum = fold_to_33_bits(sum);
        }
        let (pairs, odd) = tail.as_chunks::<2>();
        for pair in pairs {
            sum += u64::from(u16::from_be_bytes(*pair));
        }
        self.pending = odd.first().copied();
        self.sum = fold_to_33_bits(sum);
    }

    /// Copies `src` into the front of `dst` and adds the copied octets, as
    /// `dst.copy_from_slice(src)` followed by [`add_bytes`](Self::add_bytes) would, but in one
    /// pass over the data. Returns the octets copied: `src.len()`, or `dst.len()` when `dst` is
    /// shorter (then only that much of `src` is copied and summed; nothing panics).
    #[inline]
    pub fn add_copy(&mut self, dst: &mut [u8], src: &[u8]) -> usize {
        let len = src.len().min(dst.len());
        let (Some(mut dst), Some(mut src)) = (dst.get_mut(..len), src.get(..len)) else {
            return 0;
        };
        if self.pending.is_some()
            && let Some((&first, src_rest)) = src.split_first()
            // `dst` is as long as `src`, so not empty either.
            && let Some((dst_first, dst_rest)) = core::mem::take(&mut dst).split_first_mut()
        {
            // The first octet completes the pending word: the general path takes it.
            *dst_first = first;
            self.add_bytes(&[first]);
            (src, dst) = (src_rest, dst_rest);
        }
        if src.len() < WIDE_WORDS * 4 {
            // Short: the copy and the sum are cheap apart, with no vector set-up.
            dst.copy_from_slice(src);
            self.add_bytes(src);
            return len;
        }
        let (words, tail) = src.as_chunks::<4>();
        let (dst_words, dst_tail) = dst.as_chunks_mut::<4>();
        let mut sum = self.sum;
        for (dst, src) in dst_words.chunks_mut(WORDS_PER_BLOCK).zip(words.chunks(WORDS_PER_BLOCK)) {
            sum += fold_native_to_big_endian(wide(Wide::CopySum { dst, src }));
            sum = fold_to_33_bits(sum);
        }
        self.sum = sum;
        dst_tail.copy_from_slice(tail);
        self.add_bytes(tail);
        len
    }

    /// Adds 16-bit words given as numbers, as if their big-endian octets came next.
    ///
    /// For headers built from fields: the numbers are summed as they are, instead of reading
    /// back (as wider words) the octets just written one by one.
    #[inline]
    pub fn add_words(&mut self, words: &[u16]) {
        if self.pending.is_some() {
            // Mid-word: the octets take the general path.
            for word in words {
                self.add_bytes(&word.to_be_bytes());
            }
            return;
        }
        // Fewer than 2^16 words of less than 2^16 each: the sum stays far below 2^33 + 2^32.
        let words: u64 = words.iter().map(|&word| u64::from(word)).sum();
        self.sum = fold_to_33_bits(self.sum + words);
    }

    /// Adds one 16-bit value, big-endian (as the next two octets of the data).
    pub fn add_u16(&mut self, value: u16) {
        self.add_bytes(&value.to_be_bytes());
    }

    /// Adds one 32-bit value, big-endian (as the next four octets of the data).
    pub fn add_u32(&mut self, value: u32) {
        self.add_bytes(&value.to_be_bytes());
    }

    /// The ones'-complement sum folded to 16 bits, *not* complemented: the value a device
    /// doing partial checksum offload expects in the field ([`TxChecksum::PseudoHeader`]).
    /// An odd final octet is padded with zero on the right. Always `!self.finish()`.
    pub fn folded(self) -> u16 {
        !self.finish()
    }

    /// The folded and complemented checksum, ready for the header. An odd final octet is padded
    /// with zero on the right (RFC 9293 §3.1).
    ///
    /// Summing data that already contains a correct checksum gives `0` here (MUST-3).
    pub fn finish(self) -> u16 {
        let mut sum = self.sum;
        if let Some(high) = self.pending {
            sum += u64::from(u16::from_be_bytes([high, 0]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        // The loop above leaves at most 16 bits.
        !(sum as u16)
    }
}

/// Folds a sum of at most 2^64 - 1 back below 2^33 without changing it modulo 2^16 - 1.
const fn fold_to_33_bits(sum: u64) -> u64 {
    (sum & 0xffff_ffff) + (sum >> 32)
}

/// The sum of the TCP pseudo-header (RFC 9293 §3.1), to which the segment is then added.
///
/// IPv4: source, destination, a zero octet, `protocol` and the 16-bit TCP length. IPv6 (RFC 8200
/// §8.1): source, destination, the 32-bit upper-layer length, three zero octets and `protocol` as
/// the next header. `tcp_len` is header plus payload in octets; over IPv4 only its low 16 bits
/// exist (no IPv4 packet can carry more).
///
/// # Errors
///
/// [`AddressFamilyMismatch`] when `src` and `dst` are not of the same family.
pub fn pseudo_header(
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
    tcp_len: u32,
) -> Result<Checksum, AddressFamilyMismatch> {
    // Every field is a whole number of 16-bit words at an even offset, so each can be added as
    // one big-endian integer: 2^16 ≡ 1 (mod 2^16 − 1) makes a 32- or 128-bit value sum the same
    // as its 16-bit words. No per-octet loop for the 12 or 40 octets of every segment.
    let sum = match (src, dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            // The IPv4 TCP length field is 16 bits; longer segments cannot exist over IPv4.
            u64::from(src.to_bits())
                + u64::from(dst.to_bits())
                + u64::from(protocol)
                + u64::from(tcp_len as u16)
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let (src, dst) = (src.to_bits(), dst.to_bits());
            let halves =
                [src >> 64, src & u128::from(u64::MAX), dst >> 64, dst & u128::from(u64::MAX)];
            // Each half is below 2^64; folded to 33 bits, four of them and the rest fit a u64.
            halves.iter().map(|&half| fold_to_33_bits(half as u64)).sum::<u64>()
                + u64::from(tcp_len)
                + u64::from(protocol)
        }
        (IpAddr::V4(_), IpAddr::V6(_)) | (IpAddr::V6(_), IpAddr::V4(_)) => {
            return Err(AddressFamilyMismatch);
        }
    };
    Ok(Checksum { sum: fold_to_33_bits(sum), pending: None })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use alloc::vec::Vec;
    use core::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    /// The straightforward RFC 1071 sum, 16 bits at a time, as a reference.
    fn reference(data: &[u8]) -> u16 {
        let mut sum: u64 = 0;
        let mut words = data.chunks(2);
        for word in &mut words {
            let high = word[0];
            let low = word.get(1).copied().unwrap_or(0);
            sum += u64::from(u16::from_be_bytes([high, low]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    fn sum_of(data: &[u8]) -> u16 {
        let mut sum = Checksum::new();
        sum.add_bytes(data);
        sum.finish()
    }

    #[test]
    fn rfc_1071_example_sums_to_ddf2() {
        // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (complement 220d).
        assert_eq!(sum_of(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]), !0xddf2);
        assert_eq!(sum_of(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]), 0x220d);
    }

    #[test]
    fn wikipedia_ipv4_header_checksums_to_b861() {
        // The IPv4 header example from the Internet checksum literature, checksum field zeroed.
        let header = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(sum_of(&header), 0xb861);
        let mut with_checksum = header;
        with_checksum[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
        assert_eq!(sum_of(&with_checksum), 0, "a correct header sums to all ones");
    }

    #[test]
    fn empty_data_checksums_to_all_ones() {
        assert_eq!(Checksum::new().finish(), 0xffff);
    }

    #[test]
    fn wide_summing_matches_the_16_bit_reference_at_every_length() {
        let data: [u8; 300] = core::array::from_fn(|i| (i * 131 + 7) as u8);
        for len in 0..data.len() {
            assert_eq!(sum_of(&data[..len]), reference(&data[..len]), "length {len}");
        }
        let ones = [0xffu8; 97];
        assert_eq!(sum_of(&ones), reference(&ones));
        // Carries at every fold: all-ones and near-all-ones words, long enough to wrap the
        // 32-bit halves of the accumulator many times.
        for fill in [0xffu8, 0xfe, 0x80, 0x01] {
            let long = alloc::vec![fill; 70_001];
            assert_eq!(sum_of(&long), reference(&long), "fill {fill:#x}");
        }
    }

    #[test]
    fn wide_lanes_are_emptied_before_their_sums_could_wrap() {
        // All-ones words are the worst case for the two 32-bit sums: several blocks' worth
        // (2^16 words each; fails if the block is doubled), plus a ragged end.
        let long = alloc::vec![0xffu8; 16 * ((1 << 16) - 1) * 2 + 16 * 3 + 7];
        assert_eq!(sum_of(&long), reference(&long));
        let mut pattern = alloc::vec![0u8; long.len()];
        for (i, octet) in pattern.iter_mut().enumerate() {
            *octet = (i * 251 + 13) as u8;
        }
        assert_eq!(sum_of(&pattern), reference(&pattern));
    }

    #[test]
    fn odd_pieces_sum_like_one_piece() {
        let data: [u8; 23] = core::array::from_fn(|i| (i * 37 + 11) as u8);
        let whole = sum_of(&data);
        for split in 0..data.len() {
            let (a, b) = data.split_at(split);
            let mut pieces = Checksum::new();
            pieces.add_bytes(a);
            pieces.add_bytes(&[]);
            pieces.add_bytes(b);
            assert_eq!(pieces.finish(), whole, "split at {split}");
        }
        // Many one-octet pieces, then words after an odd piece.
        let mut bytewise = Checksum::new();
        for byte in data {
            bytewise.add_bytes(&[byte]);
        }
        assert_eq!(bytewise.finish(), whole);
        let mut mixed = Checksum::new();
        mixed.add_bytes(&data[..3]);
        mixed.add_u16(u16::from_be_bytes([data[3], data[4]]));
        mixed.add_u32(u32::from_be_bytes([data[5], data[6], data[7], data[8]]));
        mixed.add_bytes(&data[9..]);
        assert_eq!(mixed.finish(), whole);
    }

    #[test]
    fn words_sum_like_their_big_endian_octets() {
        let words = [0x0001u16, 0xf203, 0xf4f5, 0xf6f7, 0xffff, 0x8000];
        let octets: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
        let mut sum = Checksum::new();
        sum.add_words(&words);
        assert_eq!(sum.finish(), sum_of(&octets));
        // After an odd piece the words straddle octet pairs, as their octets would.
        let mut odd = Checksum::new();
        odd.add_bytes(&[0x12]);
        odd.add_words(&words);
        let mut expected = alloc::vec![0x12u8];
        expected.extend_from_slice(&octets);
        assert_eq!(odd.finish(), sum_of(&expected));
    }

    /// The wide loop's sum folded to 16 bits, against the plain sum of the same words.
    fn wide_matches_plain_words(words: &[[u8; 4]]) -> bool {
        let plain: u64 = words.iter().map(|word| u64::from(u32::from_ne_bytes(*word))).sum();
        fold_native_to_big_endian(wide(Wide::Sum(words)))
            == fold_native_to_big_endian(wide_portable(Wide::Sum(words)))
            && fold_native_to_big_endian(wide(Wide::Sum(words))) == fold_native_to_big_endian(plain)
    }

    proptest::proptest! {
        /// The dispatched sum (AVX2 where this CPU has it) equals the 16-bit reference for
        /// any length, any start (so any alignment of the words), and any split into pieces,
        /// odd ones included.
        #[test]
        fn dispatched_sum_matches_the_scalar_reference(
            data in proptest::collection::vec(proptest::num::u8::ANY, 0..4000),
            start in 0usize..64,
            cuts in proptest::collection::vec(0usize..4000, 0..6),
        ) {
            let data = data.get(start..).unwrap_or_default();
            let expected = reference(data);
            proptest::prop_assert_eq!(sum_of(data), expected);
            let (words, _) = data.as_chunks::<4>();
            proptest::prop_assert!(wide_matches_plain_words(words));
            let mut cuts: Vec<usize> = cuts.into_iter().map(|cut| cut.min(data.len())).collect();
            cuts.sort_unstable();
            let mut pieces = Checksum::new();
            let mut from = 0;
            for cut in cuts.into_iter().chain([data.len()]) {
                pieces.add_bytes(&data[from..cut]);
                from = cut;
            }
            proptest::prop_assert_eq!(pieces.finish(), expected);
        }

        /// `add_copy` leaves the same octets in `dst` and the same sum as a copy followed by
        /// `add_bytes`, after a prefix of any length (so with an octet pending or not), and
        /// copies only what fits when `dst` is shorter.
        #[test]
        fn add_copy_equals_copy_then_add(
            prefix in proptest::collection::vec(proptest::num::u8::ANY, 0..8),
            src in proptest::collection::vec(proptest::num::u8::ANY, 0..4000),
            start in 0usize..64,
            dst_len in 0usize..4100,
            suffix in proptest::collection::vec(proptest::num::u8::ANY, 0..8),
        ) {
            let src = src.get(start..).unwrap_or_default();
            let mut fused = Checksum::new();
            fused.add_bytes(&prefix);
            let mut dst = alloc::vec![0xa5u8; dst_len];
            let copied = fused.add_copy(&mut dst, src);
            fused.add_bytes(&suffix);

            let len = src.len().min(dst_len);
            proptest::prop_assert_eq!(copied, len);
            proptest::prop_assert_eq!(&dst[..len], &src[..len]);
            proptest::prop_assert!(dst[len..].iter().all(|&octet| octet == 0xa5));
            let mut apart = Checksum::new();
            apart.add_bytes(&prefix);
            apart.add_bytes(&src[..len]);
            apart.add_bytes(&suffix);
            proptest::prop_assert_eq!(fused.finish(), apart.finish());
        }
    }

    #[test]
    fn fused_copy_keeps_a_pending_octet_and_sums_like_the_reference() {
        // 3 + 97 + 1 octets: the copy starts on an odd octet and leaves one pending.
        let src: [u8; 97] = core::array::from_fn(|i| (i * 89 + 5) as u8);
        let mut dst = [0u8; 97];
        let mut sum = Checksum::new();
        sum.add_bytes(&[0xff, 0xfe, 0xfd]);
        assert_eq!(sum.add_copy(&mut dst, &src), 97);
        sum.add_bytes(&[0x42]);
        assert_eq!(dst, src);
        let mut all = alloc::vec![0xff, 0xfe, 0xfd];
        all.extend_from_slice(&src);
        all.push(0x42);
        assert_eq!(sum.finish(), reference(&all));
    }

    #[test]
    fn ipv4_pseudo_header_matches_an_independent_sum() {
        // 10.0.0.1 → 10.0.0.2, protocol 6, length 40; summed independently (Python) to 0x1431.
        let sum = pseudo_header(
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            6,
            40,
        )
        .unwrap();
        assert_eq!(sum.finish(), !0x1431);
        assert_eq!(sum.finish(), sum_of(&[10, 0, 0, 1, 10, 0, 0, 2, 0, 6, 0, 40]));
    }

    #[test]
    fn ipv6_pseudo_header_matches_an_independent_sum() {
        // 2001:db8::1 → 2001:db8::2, length 40, next header 6; summed independently to 0x5ba3.
        let src = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
        let dst = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
        let sum = pseudo_header(IpAddr::V6(src), IpAddr::V6(dst), 6, 40).unwrap();
        assert_eq!(sum.finish(), !0x5ba3);
        let mut bytes = [0u8; 40];
        bytes[..16].copy_from_slice(&src.octets());
        bytes[16..32].copy_from_slice(&dst.octets());
        bytes[32..36].copy_from_slice(&40u32.to_be_bytes());
        bytes[39] = 6;
        assert_eq!(sum.finish(), sum_of(&bytes));
    }

    #[test]
    fn mixed_families_are_rejected() {
        let v4 = IpAddr::from([10, 0, 0, 1]);
        let v6 = IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(pseudo_header(v4, v6, 6, 20).err(), Some(AddressFamilyMismatch));
        assert_eq!(pseudo_header(v6, v4, 6, 20).err(), Some(AddressFamilyMismatch));
    }
}
