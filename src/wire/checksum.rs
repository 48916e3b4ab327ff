//! The Internet checksum (RFC 1071) and the TCP pseudo-header (RFC 9293 §3.1).
//!
//! The sender computes the checksum over the pseudo-header, the TCP header and the payload
//! (MUST-2) and the receiver verifies it (MUST-3). [`Checksum`] accumulates in pieces of any
//! length — odd ones included — so a payload split across the two halves of a ring buffer sums
//! the same as one contiguous slice. This is the per-segment hot path. Each piece is summed in
//! the machine's byte order as if it started at an even offset — short pieces 8 octets at a
//! time with an end-around carry, long ones in 256-bit vectors where the CPU has AVX2 (see
//! `wide`) — and then turned into network order by a rotation, which also places a piece that
//! starts at an odd offset (RFC 1071 §2(B): the ones'-complement sum may be taken in wider
//! words and in either byte order; swapping the octets of a word multiplies it by 2^8 modulo
//! 2^16 − 1, and rotating a 64-bit ones'-complement sum by 8 bits does the same).

use core::fmt;
use core::mem::MaybeUninit;
use core::net::IpAddr;

/// Pieces of at least this many octets take the wide loop; shorter ones (headers,
/// pseudo-headers, small payloads) are summed 8 octets at a time in line, with no call and no
/// vector set-up. The AVX2 loop needs a whole block of 256 octets (its last block overlaps the
/// one before, see `avx2`), and from there on it is much the cheaper. Measured with callgrind
/// (`cargo bench --bench checksum -- --workload checksum_lengths`, per call with the probe's
/// own ~50): the short loop 121 instructions at 192 octets, 132 at 224 and 149 at 255 (the
/// wide loop before blocks: 125, 132 and 142); the wide loop 101 at 256 and 235 at 1 460.
const WIDE_MIN: usize = 256;

/// As [`WIDE_MIN`] for the fused copy: a short copy is one call to the platform's `memcpy`
/// and then the short sum (146 instructions at 160 octets in the probe, 185 at 255); the wide
/// loop, from its first block, 128 at 256 octets and 342 at 1 460.
const COPY_WIDE_MIN: usize = 256;

/// The ones'-complement sum of two 64-bit values: the sum with its carry added back in (RFC 1071
/// §2(C), "end-around carry"). Congruent to `a + b` modulo 2^64 − 1, hence modulo 2^16 − 1; it
/// is 0 only when both are.
#[inline(always)]
const fn add_ones_complement(a: u64, b: u64) -> u64 {
    let (sum, carry) = a.overflowing_add(b);
    // With a carry the wrapped sum is at most 2^64 − 2, so adding it back cannot overflow.
    sum + carry as u64
}

/// The native-order sum of `data` (a last odd octet padded with zero on the right), as if it
/// started at an even offset: congruent modulo 2^16 − 1 to the sum of its 16-bit words read
/// in the machine's byte order, and 0 only when they all are.
#[inline(always)]
fn native_sum(data: &[u8]) -> u64 {
    if data.len() < WIDE_MIN { short_native_sum(data) } else { wide_sum(data) }
}

/// [`native_sum`] of a long piece: the wide loop, out of line, so that the short pieces
/// around it (summed in line wherever a header is) stay small.
#[inline(never)]
fn wide_sum(data: &[u8]) -> u64 {
    wide(Wide::Sum(data))
}

/// [`native_sum`] of a short piece: 8 octets per add-with-carry, then the 1–7 octets left as
/// the last 8 octets of the piece loaded again with the ones already summed masked off.
#[inline(always)]
fn short_native_sum(data: &[u8]) -> u64 {
    let (words, rest) = data.as_chunks::<8>();
    let mut sum = 0;
    for word in words {
        sum = add_ones_complement(sum, u64::from_ne_bytes(*word));
    }
    let Some(last) = data.last_chunk::<8>() else {
        // Fewer than 8 octets in all.
        return last_octets(rest);
    };
    // Keep the window's last `rest.len()` octets: the high ones in a little-endian load, the
    // low ones in a big-endian load (`rest.len()` < 8, so the shift is below 64).
    let dropped = 8 * (8 - rest.len());
    let kept = if cfg!(target_endian = "little") {
        u64::MAX.checked_shl(dropped as u32).unwrap_or(0)
    } else {
        u64::MAX.checked_shr(dropped as u32).unwrap_or(0)
    };
    let window = u64::from_ne_bytes(*last) & kept;
    // The window starts `data.len() - 8` octets in: after an odd number its octets pair the
    // other way round, one swap (a rotation by 8, see `Checksum::add_native`).
    let window = window.rotate_left(8 * (data.len() as u32 % 2));
    add_ones_complement(sum, window)
}

/// The native-order sum of at most 7 octets at an even offset: a 4-octet word, a 2-octet word
/// and a last octet padded with zero on the right, each at the offset that keeps its octets in
/// their places within 16-bit words (2^16 ≡ 1, so where a word sits in 64 bits does not matter).
#[inline(always)]
fn last_octets(rest: &[u8]) -> u64 {
    let (quads, rest) = rest.as_chunks::<4>();
    let (pairs, odd) = rest.as_chunks::<2>();
    let quads: u64 = quads.iter().map(|quad| u64::from(u32::from_ne_bytes(*quad))).sum();
    let pairs: u64 = pairs.iter().map(|pair| u64::from(u16::from_ne_bytes(*pair))).sum();
    let odd = odd.first().map_or(0, |&octet| u64::from(u16::from_ne_bytes([octet, 0])));
    quads + pairs + odd
}

/// A piece of work for the wide loop: sum `data`, or copy `src` into `dst` (of the same
/// length; initialised memory or not) and sum it. One type, so that one dispatch (and one
/// `unsafe` call) serves all three.
enum Wide<'a> {
    Sum(&'a [u8]),
    CopySum { dst: &'a mut [u8], src: &'a [u8] },
    CopySumUninit { dst: &'a mut [MaybeUninit<u8>], src: &'a [u8] },
}

/// An octet the fused copy writes: `u8`, or `MaybeUninit<u8>` for memory not written yet (a
/// buffer's spare capacity), so that a caller appending to a buffer need not zero-fill it
/// first. Writing either is safe Rust; which octets were written is the copy's return value.
trait Octet: Copy {
    /// Stores `src` into `dst` (one vector move for 32 octets).
    fn store<const N: usize>(dst: &mut [Self; N], src: &[u8; N]);
    /// Copies `src` into `dst`, of the same length.
    fn copy(dst: &mut [Self], src: &[u8]);
    /// The wide loop's work for copying `src` into `dst` (of the same length) and summing it.
    fn copy_sum_work<'a>(dst: &'a mut [Self], src: &'a [u8]) -> Wide<'a>;
}

impl Octet for u8 {
    #[inline(always)]
    fn store<const N: usize>(dst: &mut [Self; N], src: &[u8; N]) {
        *dst = *src;
    }

    #[inline(always)]
    fn copy(dst: &mut [Self], src: &[u8]) {
        dst.copy_from_slice(src);
    }

    #[inline(always)]
    fn copy_sum_work<'a>(dst: &'a mut [Self], src: &'a [u8]) -> Wide<'a> {
        Wide::CopySum { dst, src }
    }
}

impl Octet for MaybeUninit<u8> {
    #[inline(always)]
    fn store<const N: usize>(dst: &mut [Self; N], src: &[u8; N]) {
        dst.write_copy_of_slice(src);
    }

    #[inline(always)]
    fn copy(dst: &mut [Self], src: &[u8]) {
        dst.write_copy_of_slice(src);
    }

    #[inline(always)]
    fn copy_sum_work<'a>(dst: &'a mut [Self], src: &'a [u8]) -> Wide<'a> {
        Wide::CopySumUninit { dst, src }
    }
}

/// The wide loop: [`native_sum`] of a long piece (copying it on the way for
/// [`Wide::CopySum`] and [`Wide::CopySumUninit`]), in 256-bit AVX2 vectors where the build
/// targets them (`-C target-cpu=x86-64-v3`) or, with `std`, where the CPU reports them at run
/// time; otherwise the portable loop in whatever vectors the compiler finds for the build's
/// target (SSE2 on plain x86-64). The check costs a load and a bit test (std caches the CPUID
/// answer), or nothing when the build targets AVX2.
///
/// In line where it is called ([`wide_sum`], out of line itself, and the fused copy), so the
/// work's variant is known there: the match folds away and the AVX2 loop is called directly
/// with the slices in registers, not with the work written to memory for a match at run time
/// (callgrind, `bulk_mtu1500_superseg`: some 18 instructions a copy fewer).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(unsafe_code)]
fn wide(work: Wide<'_>) -> u64 {
    if avx2_available() {
        // SAFETY: `avx2::sum` and `avx2::copy_sum` are safe Rust (no raw pointers: their
        // vector loads are built from array references, their stores are array assignments)
        // compiled with AVX2 enabled; their one precondition is that the CPU executes AVX2
        // instructions, which `avx2_available` has just established (at build time or from
        // CPUID).
        unsafe {
            match work {
                Wide::Sum(data) => avx2::sum(data),
                Wide::CopySum { dst, src } => avx2::copy_sum(dst, src),
                Wide::CopySumUninit { dst, src } => avx2::copy_sum(dst, src),
            }
        }
    } else {
        wide_portable(work)
    }
}

/// Whether this CPU executes AVX2: known at build time when the target has it (the call
/// still needs its `unsafe`, since Rust asks every caller of a `#[target_feature]` function
/// to name the feature), asked of the CPU with `std`, and taken as absent otherwise.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn avx2_available() -> bool {
    #[cfg(feature = "std")]
    {
        // `true` without a run-time check where the build targets AVX2.
        std::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(feature = "std"))]
    {
        cfg!(target_feature = "avx2")
    }
}

/// The wide loop on other architectures: the portable loop (out of line itself).
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn wide(work: Wide<'_>) -> u64 {
    wide_portable(work)
}

/// The portable wide loop: whole 4-octet words in as many lanes as the compiler's vectoriser
/// gives the target (see [`sum_words`]), then the 0–3 octets left. The match in line, each
/// loop out of line, so that (as in [`wide`]) the work is never written to memory.
#[inline(always)]
fn wide_portable(work: Wide<'_>) -> u64 {
    match work {
        Wide::Sum(data) => portable_sum(data),
        Wide::CopySum { dst, src } => portable_copy_sum(dst, src),
        Wide::CopySumUninit { dst, src } => portable_copy_sum(dst, src),
    }
}

/// The portable loop's sum: whole 4-octet words, then the 0–3 octets left.
#[inline(never)]
fn portable_sum(data: &[u8]) -> u64 {
    let (words, rest) = data.as_chunks::<4>();
    add_ones_complement(sum_words(words), last_octets(rest))
}

/// The portable loop's copy and sum: whole 4-octet words, then the 0–3 octets left.
#[inline(never)]
fn portable_copy_sum<T: Octet>(dst: &mut [T], src: &[u8]) -> u64 {
    let (words, rest) = src.as_chunks::<4>();
    let (dst_words, dst_rest) = dst.as_chunks_mut::<4>();
    let sum = copy_sum_words(dst_words, words);
    // Both were cut to the same length, so their rests match too.
    if dst_rest.len() == rest.len() {
        T::copy(dst_rest, rest);
    }
    add_ones_complement(sum, last_octets(rest))
}

/// Words per block of the portable loop's two 32-bit sums: at most 2^16, so neither wraps past
/// what can be undone (see [`sum_words`]).
const WORDS_PER_FLUSH: usize = 1 << 16;

/// The native-order sum of `words`, as two 32-bit sums per block of at most 2^16 words:
/// `full`, the words added with wrap-around, and `high`, their upper halves. The sum of the
/// lower halves is then `full - (high << 16)` modulo 2^32, exact because it stays below 2^32,
/// and low + high is the sum of the block's 16-bit words. One load, one add, one shift and one
/// add per vector of words, no widening.
///
/// The loop is written as one scalar word at a time on purpose, and the compiler picks the
/// vector width (4 lanes with SSE2). A form that spelled out four 32-bit lanes by hand was
/// vectorised across groups of four with AVX2, unpicking the lanes with shuffles and spilling
/// every step (docs/performance.md, "Checksum"). Modular addition is associative, so any lane
/// split the compiler chooses computes the same two sums.
fn sum_words(words: &[[u8; 4]]) -> u64 {
    let mut native = 0;
    for block in words.chunks(WORDS_PER_FLUSH) {
        let (mut full, mut high) = (0u32, 0u32);
        for word in block {
            let word = u32::from_ne_bytes(*word);
            full = full.wrapping_add(word);
            high = high.wrapping_add(word >> 16);
        }
        native = add_ones_complement(native, unsplit(full, high));
    }
    native
}

/// Copies `src` into `dst` (the shorter of the two decides) and returns the native-order sum
/// of the words copied, as [`sum_words`] does, in one pass: each word is loaded once, stored
/// and added.
fn copy_sum_words<T: Octet>(dst: &mut [[T; 4]], src: &[[u8; 4]]) -> u64 {
    let mut native = 0;
    for (dst, src) in dst.chunks_mut(WORDS_PER_FLUSH).zip(src.chunks(WORDS_PER_FLUSH)) {
        let (mut full, mut high) = (0u32, 0u32);
        for (dst, src) in dst.iter_mut().zip(src) {
            T::store(dst, src);
            let word = u32::from_ne_bytes(*src);
            full = full.wrapping_add(word);
            high = high.wrapping_add(word >> 16);
        }
        native = add_ones_complement(native, unsplit(full, high));
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

/// The wide loop in 256-bit AVX2 vectors, three instructions per 32 octets.
///
/// `vpmaddwd` multiplies 16-bit lanes and adds neighbouring products into 32-bit lanes, but
/// reads its lanes as *signed*. Each word `w` is therefore first flipped to `w ^ 0x8000`, which
/// as a signed number is exactly `w − 2^15`; multiplied by 1 and added in pairs, a vector of 16
/// words adds `Σw − 2^19` to the eight 32-bit lanes. So per vector: one `vpxor` (with the load
/// folded in), one `vpmaddwd` and one `vpaddd`, against four instructions for splitting each
/// 32-bit word into halves. The lanes wrap modulo 2^32, but as long as a group of words sums
/// to less than 2^32 (fewer than 2^16 words below 2^16) the group's sum is recovered exactly
/// by adding `2^15` per word back, modulo 2^32.
///
/// The loop takes blocks of eight vectors (256 octets). The 2–254 octets after the last whole
/// block are summed as the last 256 octets of the piece, whose earlier octets (summed
/// already) are weighed 0: `vpmaddwd` multiplies each flipped word by a weight of 0 or 1
/// instead of 1, so a word of weight 0 adds nothing. So there is no loop or branch per vector
/// after the blocks and no scalar tail, for one overlapping block of loads; the piece has at
/// least 256 octets (shorter ones take the short or portable loop).
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use core::arch::x86_64::{
        __m256i, _mm_add_epi32, _mm_cvtsi128_si32, _mm_shuffle_epi32, _mm256_add_epi32,
        _mm256_castsi256_si128, _mm256_extracti128_si256, _mm256_madd_epi16, _mm256_set1_epi16,
        _mm256_setr_epi64x, _mm256_setzero_si256, _mm256_xor_si256,
    };

    use super::{Octet, Wide, add_ones_complement, last_octets, wide_portable};

    /// Octets of a block: eight vectors, one step of the loops.
    const BLOCK: usize = 256;

    /// Octets in one group: fewer than 2^16 words (see the module), a whole number of blocks.
    /// A piece no longer than this is summed in one group.
    const GROUP_OCTETS: usize = (1 << 17) - BLOCK;

    /// Eight vectors in memory order.
    type Block = [[u8; 32]; 8];

    /// The weights of the words of a piece's last block: 128 words of weight 0 then 128 of
    /// weight 1, as 16-bit lanes in memory order. The 256 octets from offset `r` (even, below
    /// 256) weigh the last `r / 2` words of a block 1 and the others 0.
    const WINDOW_WEIGHTS: [[[u8; 2]; 128]; 2] =
        [[0i16.to_le_bytes(); 128], [1i16.to_le_bytes(); 128]];

    /// [`Wide::Sum`]: the native-order sum of the piece (see `super::native_sum`). The usual
    /// piece (a segment: one group, at least a block) with no group loop and few registers
    /// to save; the rare others in [`sum_rare`].
    #[target_feature(enable = "avx2")]
    #[inline(never)]
    pub(super) fn sum(data: &[u8]) -> u64 {
        if !(BLOCK..=GROUP_OCTETS).contains(&data.len()) {
            return sum_rare(data);
        }
        let (even, odd) = split_odd(data);
        let (vectors, _) = even.as_chunks::<32>();
        let (blocks, _) = vectors.as_chunks::<8>();
        let mut lanes = [_mm256_setzero_si256(); 4];
        for block in blocks {
            sum_block(&mut lanes, block, None);
        }
        if let Some((block, weights)) = last_block(even) {
            sum_block(&mut lanes, block, Some(weights));
        }
        finish(lanes, even.len()) + odd
    }

    /// [`sum`] of a piece shorter than a block (never from `native_sum`, which takes the wide
    /// loop from `WIDE_MIN` octets): the portable loop; or longer than a group: each group (an
    /// even number of octets, so every group starts at an even offset and their native sums
    /// add as they are) summed apart by [`sum`].
    #[target_feature(enable = "avx2")]
    #[inline(never)]
    #[cold]
    fn sum_rare(data: &[u8]) -> u64 {
        if data.len() <= GROUP_OCTETS {
            return wide_portable(Wide::Sum(data));
        }
        // One group each (the last maybe shorter than a block): never back here.
        data.chunks(GROUP_OCTETS).fold(0, |total, group| add_ones_complement(total, sum(group)))
    }

    /// [`Wide::CopySum`] and [`Wide::CopySumUninit`]: `src` copied into `dst` and summed in
    /// one pass, block by block as [`sum`] does (the last block copied whole: its earlier
    /// octets are written again, unchanged; an odd last octet copied apart).
    #[target_feature(enable = "avx2")]
    #[inline(never)]
    pub(super) fn copy_sum<T: Octet>(dst: &mut [T], src: &[u8]) -> u64 {
        let len = dst.len().min(src.len());
        let (Some(dst), Some(src)) = (dst.get_mut(..len), src.get(..len)) else {
            return 0;
        };
        if !(BLOCK..=GROUP_OCTETS).contains(&len) {
            return copy_sum_rare(dst, src);
        }
        let (even, odd) = split_odd(src);
        let Some((dst_even, dst_odd)) = dst.split_at_mut_checked(even.len()) else {
            return 0;
        };
        let (vectors, _) = even.as_chunks::<32>();
        let (blocks, _) = vectors.as_chunks::<8>();
        let (dst_vectors, _) = dst_even.as_chunks_mut::<32>();
        let (dst_blocks, _) = dst_vectors.as_chunks_mut::<8>();
        let mut lanes = [_mm256_setzero_si256(); 4];
        for (dst, block) in dst_blocks.iter_mut().zip(blocks) {
            copy_block(&mut lanes, dst, block, None);
        }
        if let Some((block, weights)) = last_block(even)
            && let Some(dst) = last_block_mut(dst_even)
        {
            copy_block(&mut lanes, dst, block, Some(weights));
        }
        if let (Some(dst), Some(src)) = (dst_odd.first_chunk_mut::<1>(), src.last_chunk::<1>()) {
            T::store(dst, src);
        }
        finish(lanes, even.len()) + odd
    }

    /// [`copy_sum`] of a piece shorter than a block (never from `add_copy` or
    /// `add_copy_uninit`, which take the wide loop from `COPY_WIDE_MIN` octets): the portable
    /// loop; or longer than a group: each group copied and summed apart by [`copy_sum`], as
    /// in [`sum_rare`].
    #[target_feature(enable = "avx2")]
    #[inline(never)]
    #[cold]
    fn copy_sum_rare<T: Octet>(dst: &mut [T], src: &[u8]) -> u64 {
        if src.len() <= GROUP_OCTETS {
            return super::portable_copy_sum(dst, src);
        }
        let mut total = 0;
        for (dst, src) in dst.chunks_mut(GROUP_OCTETS).zip(src.chunks(GROUP_OCTETS)) {
            // One group each (the last maybe shorter than a block): never back here.
            total = add_ones_complement(total, copy_sum(dst, src));
        }
        total
    }

    /// The last block of `even` (at least a block long) and the weights that sum only its
    /// octets after the whole blocks (see [`WINDOW_WEIGHTS`]); `None` when there are none.
    #[inline(always)]
    fn last_block(even: &[u8]) -> Option<(&Block, &Block)> {
        let rest = even.len() % BLOCK;
        if rest == 0 {
            return None;
        }
        let block = even.last_chunk::<BLOCK>()?;
        let weights = WINDOW_WEIGHTS.as_flattened().as_flattened().get(rest..)?;
        Some((as_block(block)?, as_block(weights.first_chunk::<BLOCK>()?)?))
    }

    /// `dst`'s last block, as eight vectors, for [`last_block`].
    #[inline(always)]
    fn last_block_mut<T: Octet>(dst: &mut [T]) -> Option<&mut [[T; 32]; 8]> {
        let (vectors, _) = dst.last_chunk_mut::<BLOCK>()?.as_chunks_mut::<32>();
        vectors.try_into().ok()
    }

    /// 256 octets as eight vectors.
    #[inline(always)]
    fn as_block(octets: &[u8; BLOCK]) -> Option<&Block> {
        let (vectors, _) = octets.as_chunks::<32>();
        vectors.try_into().ok()
    }

    /// Adds the words of the eight vectors of `block` (each flipped and multiplied by its
    /// weight, 1 for all without `weights`) to the four `lanes`, two vectors to each.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn sum_block(lanes: &mut [__m256i; 4], block: &Block, weights: Option<&Block>) {
        let [a, b, c, d, e, f, g, h] = block;
        let [la, lb, lc, ld] = lanes;
        match weights {
            None => {
                *la = add(*la, load(a));
                *lb = add(*lb, load(b));
                *lc = add(*lc, load(c));
                *ld = add(*ld, load(d));
                *la = add(*la, load(e));
                *lb = add(*lb, load(f));
                *lc = add(*lc, load(g));
                *ld = add(*ld, load(h));
            }
            Some([wa, wb, wc, wd, we, wf, wg, wh]) => {
                *la = add_weighed(*la, load(a), load(wa));
                *lb = add_weighed(*lb, load(b), load(wb));
                *lc = add_weighed(*lc, load(c), load(wc));
                *ld = add_weighed(*ld, load(d), load(wd));
                *la = add_weighed(*la, load(e), load(we));
                *lb = add_weighed(*lb, load(f), load(wf));
                *lc = add_weighed(*lc, load(g), load(wg));
                *ld = add_weighed(*ld, load(h), load(wh));
            }
        }
    }

    /// [`sum_block`] that also copies the block into `dst`, loading each vector once. The
    /// stores are spelled out vector by vector: a loop over them alone would be turned into a
    /// call to `memcpy`.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn copy_block<T: Octet>(
        lanes: &mut [__m256i; 4],
        dst: &mut [[T; 32]; 8],
        block: &Block,
        weights: Option<&Block>,
    ) {
        let [da, db, dc, dd, de, df, dg, dh] = dst;
        let [a, b, c, d, e, f, g, h] = block;
        T::store(da, a);
        T::store(db, b);
        T::store(dc, c);
        T::store(dd, d);
        T::store(de, e);
        T::store(df, f);
        T::store(dg, g);
        T::store(dh, h);
        sum_block(lanes, block, weights);
    }

    /// `data` without its last octet if its length is odd, and that octet's native sum.
    #[inline(always)]
    fn split_odd(data: &[u8]) -> (&[u8], u64) {
        if data.len() % 2 == 1
            && let Some((&last, even)) = data.split_last()
        {
            (even, last_octets(&[last]))
        } else {
            (data, 0)
        }
    }

    /// Adds the 16 words of `vector` to the eight 32-bit `lanes`, each as `w − 2^15` (see the
    /// module).
    #[target_feature(enable = "avx2")]
    #[inline]
    fn add(lanes: __m256i, vector: __m256i) -> __m256i {
        add_weighed(lanes, vector, _mm256_set1_epi16(1))
    }

    /// [`add`] with each word multiplied by its weight in `weights` (0 or 1): a word of
    /// weight 0 adds nothing, one of weight 1 adds `w − 2^15`.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn add_weighed(lanes: __m256i, vector: __m256i, weights: __m256i) -> __m256i {
        let flipped = _mm256_xor_si256(vector, _mm256_set1_epi16(i16::MIN));
        _mm256_add_epi32(lanes, _mm256_madd_epi16(flipped, weights))
    }

    /// The exact sum of the `even` octets (at most a group, of weight 1) whose words were
    /// added to the four `lanes`: their sum modulo 2^32 plus `2^15` per word, `2^14` per
    /// octet (fewer than 2^16 words below 2^16 each: the sum is below 2^32).
    #[target_feature(enable = "avx2")]
    #[inline]
    fn finish(lanes: [__m256i; 4], even: usize) -> u64 {
        let [la, lb, lc, ld] = lanes;
        let lanes = _mm256_add_epi32(_mm256_add_epi32(la, lb), _mm256_add_epi32(lc, ld));
        let halves =
            _mm_add_epi32(_mm256_castsi256_si128(lanes), _mm256_extracti128_si256::<1>(lanes));
        let pairs = _mm_add_epi32(halves, _mm_shuffle_epi32::<0b00_00_11_10>(halves));
        let one = _mm_add_epi32(pairs, _mm_shuffle_epi32::<0b00_00_00_01>(pairs));
        let lanes = _mm_cvtsi128_si32(one) as u32;
        // `even` < 2^17: the product fits 32 bits.
        u64::from(lanes.wrapping_add((even as u32) << 14))
    }

    /// 32 octets as one vector, in memory order.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn load(octets: &[u8; 32]) -> __m256i {
        let (words, _) = octets.as_chunks::<8>();
        let [a, b, c, d] = words else {
            return _mm256_setzero_si256();
        };
        _mm256_setr_epi64x(
            i64::from_ne_bytes(*a),
            i64::from_ne_bytes(*b),
            i64::from_ne_bytes(*c),
            i64::from_ne_bytes(*d),
        )
    }
}

/// An incremental ones'-complement sum (RFC 1071).
///
/// Feed it pieces with [`add_bytes`](Self::add_bytes) in order; after a piece of odd length the
/// next one starts mid-word, and is placed accordingly, so the result never depends on where
/// the data was split.
#[derive(Clone, Copy, Debug, Default)]
pub struct Checksum {
    /// The ones'-complement sum so far, of big-endian words, in 64 bits with end-around carry
    /// (congruent to the 16-bit sum modulo 2^16 − 1; 0 only while everything added was 0).
    sum: u64,
    /// An odd number of octets has been added: the next octet is the low half of a word.
    odd: bool,
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
        Self { sum: 0, odd: false }
    }

    /// Adds `data`, continuing any odd octet left by the previous piece.
    #[inline]
    pub fn add_bytes(&mut self, data: &[u8]) {
        self.add_native(native_sum(data), data.len());
    }

    /// Copies `src` into the front of `dst` and adds the copied octets, as
    /// `dst.copy_from_slice(src)` followed by [`add_bytes`](Self::add_bytes) would, but in one
    /// pass over the data. Returns the octets copied: `src.len()`, or `dst.len()` when `dst` is
    /// shorter (then only that much of `src` is copied and summed; nothing panics).
    #[inline]
    pub fn add_copy(&mut self, dst: &mut [u8], src: &[u8]) -> usize {
        self.add_copy_into(dst, src)
    }

    /// [`add_copy`](Self::add_copy) into memory that need not be initialised, such as the
    /// spare capacity of a buffer being appended to (`Vec::spare_capacity_mut`,
    /// `BytesMut::spare_capacity_mut`): no zero-fill first, one pass over the data. Returns
    /// the octets copied, `src.len()` or `dst.len()` if shorter; exactly the first that many
    /// octets of `dst` are written, which is what a caller may then take as initialised
    /// (`set_len`).
    #[inline]
    pub fn add_copy_uninit(&mut self, dst: &mut [MaybeUninit<u8>], src: &[u8]) -> usize {
        self.add_copy_into(dst, src)
    }

    /// [`add_copy`](Self::add_copy) and [`add_copy_uninit`](Self::add_copy_uninit), for
    /// either kind of destination octet.
    #[inline(always)]
    fn add_copy_into<T: Octet>(&mut self, dst: &mut [T], src: &[u8]) -> usize {
        let len = src.len().min(dst.len());
        let (Some(dst), Some(src)) = (dst.get_mut(..len), src.get(..len)) else {
            return 0;
        };
        let native = if len < COPY_WIDE_MIN {
            // Short: the copy and the sum are cheap apart, with no vector set-up.
            T::copy(dst, src);
            short_native_sum(src)
        } else {
            wide(T::copy_sum_work(dst, src))
        };
        self.add_native(native, len);
        len
    }

    /// Adds the native-order sum of a piece of `len` octets (see [`native_sum`]) where the
    /// data so far ends.
    ///
    /// A 16-bit word's big-endian value is its little-endian value with the octets swapped,
    /// which is the value times 2^8 modulo 2^16 − 1; so on a little-endian machine a piece at
    /// an even offset is rotated by 8 bits (a 64-bit rotation is also a multiplication by 2^8
    /// modulo 2^64 − 1, a multiple of 2^16 − 1). A piece after an odd number of octets pairs
    /// its octets the other way round: one more swap, i.e. none on little-endian machines and
    /// one on big-endian ones.
    #[inline(always)]
    fn add_native(&mut self, native: u64, len: usize) {
        let swaps = self.odd == cfg!(target_endian = "big");
        let big_endian = if swaps { native.rotate_left(8) } else { native };
        self.sum = add_ones_complement(self.sum, big_endian);
        self.odd ^= len % 2 == 1;
    }

    /// Adds a sum of big-endian words where the data so far ends: as it is after an even
    /// number of octets, swapped (rotated by 8 bits, see [`add_native`](Self::add_native))
    /// after an odd one.
    #[inline(always)]
    fn add_big_endian(&mut self, big_endian: u64) {
        let placed = if self.odd { big_endian.rotate_left(8) } else { big_endian };
        self.sum = add_ones_complement(self.sum, placed);
    }

    /// Adds 16-bit words given as numbers, as if their big-endian octets came next.
    ///
    /// For headers built from fields: the numbers are summed as they are, instead of reading
    /// back (as wider words) the octets just written one by one.
    #[inline]
    pub fn add_words(&mut self, words: &[u16]) {
        // Fewer than 2^48 words of less than 2^16 each: the plain sum cannot overflow.
        let sum: u64 = words.iter().map(|&word| u64::from(word)).sum();
        self.add_big_endian(sum);
    }

    /// Adds one 16-bit value, big-endian (as the next two octets of the data).
    #[inline]
    pub fn add_u16(&mut self, value: u16) {
        self.add_big_endian(u64::from(value));
    }

    /// Adds one 32-bit value, big-endian (as the next four octets of the data).
    #[inline]
    pub fn add_u32(&mut self, value: u32) {
        // 2^16 ≡ 1: the value is congruent to the sum of its two 16-bit words.
        self.add_big_endian(u64::from(value));
    }

    /// Adds a plain sum of big-endian 16- or 32-bit words given as numbers, as if their
    /// octets came next (2^16 ≡ 1: a 32-bit word sums as its two halves): for a header
    /// summed from its fields a word at a time, with one end-around addition for all.
    #[inline(always)]
    pub(crate) fn add_u64_words(&mut self, sum: u64) {
        self.add_big_endian(sum);
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
    #[inline]
    pub fn finish(self) -> u16 {
        // An odd final octet was added as the high half of a word whose low half is 0.
        // Folded with end-around carries, 64 to 32 to 16 bits: each fold keeps the value
        // modulo 2^16 − 1, and a non-zero sum stays non-zero (all ones, not 0, when ≡ 0).
        let (half, carry) = (self.sum as u32).overflowing_add((self.sum >> 32) as u32);
        let half = half + u32::from(carry);
        let (folded, carry) = (half as u16).overflowing_add((half >> 16) as u16);
        !(folded + u16::from(carry))
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
    Ok(Checksum { sum: fold_to_33_bits(sum), odd: false })
}

/// The part of a pseudo-header sum that does not depend on the segment (its addresses and
/// protocol), worked out once — by a connection when it learns its peer (issue #19: a
/// pseudo-header sum per connection on send) — so that a segment adds only its length:
/// `with_len(n)` gives what `pseudo_header(src, dst, protocol, n)` gives, to the checksum
/// octet, and the same error for addresses of different families.
///
/// Kept in 32 bits (a connection holds one): the address sum folded below 2^18, bit 31 set
/// for IPv6 (whose length field is 32 bits), or every bit set for a family mismatch. The
/// folded sum is congruent to the full one modulo 2^16 − 1 and 0 only when that is, so
/// every sum built on it folds to the same 16 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PseudoAddrs(u32);

impl PseudoAddrs {
    /// Set for an IPv6 pair.
    const V6: u32 = 1 << 31;
    /// Addresses of different families.
    const MISMATCH: u32 = u32::MAX;

    /// No addresses yet (a connection before it knows its peer): completed by a length, a
    /// family mismatch.
    pub(crate) const NONE: Self = Self(Self::MISMATCH);

    /// The address and protocol part of the pseudo-header of `src` → `dst`.
    pub(crate) fn new(src: IpAddr, dst: IpAddr, protocol: u8) -> Self {
        match pseudo_header(src, dst, protocol, 0) {
            Ok(base) => {
                // Below 2^33, folded once more: below 2^16 + 2^17.
                let sum = (base.sum & 0xffff) + (base.sum >> 16);
                let family = if src.is_ipv6() { Self::V6 } else { 0 };
                Self(sum as u32 | family)
            }
            Err(AddressFamilyMismatch) => Self(Self::MISMATCH),
        }
    }

    /// `pseudo_header(src, dst, protocol, tcp_len)` for the addresses and protocol of `self`.
    #[inline]
    pub(crate) fn with_len(self, tcp_len: u32) -> Result<Checksum, AddressFamilyMismatch> {
        if self.0 == Self::MISMATCH {
            return Err(AddressFamilyMismatch);
        }
        // Over IPv4 only the low 16 bits of the length exist (`pseudo_header`).
        let len = if self.0 & Self::V6 == 0 { u32::from(tcp_len as u16) } else { tcp_len };
        Ok(Checksum { sum: u64::from(self.0 & !Self::V6) + u64::from(len), odd: false })
    }
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

    /// A native-order sum folded to 16 bits with end-around carries (0 only for 0).
    fn fold_native(mut native: u64) -> u64 {
        while native > 0xffff {
            native = (native & 0xffff) + (native >> 16);
        }
        native
    }

    /// The plain native-order sum of `data` (a last odd octet padded on the right), 16 bits
    /// at a time, folded: what every form of [`native_sum`] must agree with.
    fn plain_native(data: &[u8]) -> u64 {
        let (pairs, odd) = data.as_chunks::<2>();
        let mut sum: u64 = pairs.iter().map(|pair| u64::from(u16::from_ne_bytes(*pair))).sum();
        if let Some(&octet) = odd.first() {
            sum += u64::from(u16::from_ne_bytes([octet, 0]));
        }
        fold_native(sum)
    }

    /// Every form of the native sum — the short loop, the dispatched wide loop (AVX2 where
    /// this CPU has it), the portable wide loop, and both copying forms — against the plain
    /// 16-bit sum of `data`; the copies must leave exactly `data` behind.
    fn every_form_matches_the_plain_sum(data: &[u8]) {
        let plain = plain_native(data);
        assert_eq!(fold_native(short_native_sum(data)), plain, "short, {} octets", data.len());
        assert_eq!(fold_native(wide(Wide::Sum(data))), plain, "wide, {} octets", data.len());
        assert_eq!(
            fold_native(wide_portable(Wide::Sum(data))),
            plain,
            "portable, {} octets",
            data.len()
        );
        let mut dst = alloc::vec![0x5au8; data.len()];
        let copied = wide(Wide::CopySum { dst: &mut dst, src: data });
        assert_eq!(fold_native(copied), plain, "wide copy, {} octets", data.len());
        assert_eq!(dst, data);
        let mut dst = alloc::vec![0x5au8; data.len()];
        let copied = wide_portable(Wide::CopySum { dst: &mut dst, src: data });
        assert_eq!(fold_native(copied), plain, "portable copy, {} octets", data.len());
        assert_eq!(dst, data);
        // Into memory not initialised: a vector's spare capacity, read back once written.
        let mut dst: Vec<u8> = Vec::with_capacity(data.len());
        let copied = wide(Wide::CopySumUninit {
            dst: &mut dst.spare_capacity_mut()[..data.len()],
            src: data,
        });
        assert_eq!(fold_native(copied), plain, "wide uninit copy, {} octets", data.len());
        assert_eq!(initialised(&mut dst, data.len()), data);
        let mut dst: Vec<u8> = Vec::with_capacity(data.len());
        let copied = wide_portable(Wide::CopySumUninit {
            dst: &mut dst.spare_capacity_mut()[..data.len()],
            src: data,
        });
        assert_eq!(fold_native(copied), plain, "portable uninit copy, {} octets", data.len());
        assert_eq!(initialised(&mut dst, data.len()), data);
    }

    /// `dst` with its first `len` octets, which a fused copy has just written, taken as
    /// initialised.
    #[allow(unsafe_code)]
    fn initialised(dst: &mut Vec<u8>, len: usize) -> &[u8] {
        assert!(len <= dst.capacity());
        // SAFETY: the caller's copy wrote the first `len` octets of the spare capacity (what
        // the tests check is what they hold), and `len` is within the capacity.
        unsafe { dst.set_len(len) };
        dst
    }

    /// A small deterministic generator (xorshift), so the exhaustive tests need no seed file.
    fn pseudo_random(len: usize, mut state: u64) -> Vec<u8> {
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn every_length_and_alignment_sums_like_the_reference() {
        // Every length to 300 at every start within 32 octets (so every alignment of the
        // vector loads and, from 256 octets on, the block loop with every length of the
        // re-summed last block, odd and even), summed at an even
        // start and after an odd octet, as one piece and copied.
        let buffer = pseudo_random(332, 0x9e37_79b9_7f4a_7c15);
        for start in 0..32 {
            for len in 0..=300 {
                let data = &buffer[start..start + len];
                every_form_matches_the_plain_sum(data);
                assert_eq!(sum_of(data), reference(data), "start {start}, length {len}");
                let mut after_odd = Checksum::new();
                after_odd.add_bytes(&[0xc3]);
                after_odd.add_bytes(data);
                let mut expected = alloc::vec![0xc3];
                expected.extend_from_slice(data);
                assert_eq!(after_odd.finish(), reference(&expected), "odd, {start}, {len}");
                let mut copied = Checksum::new();
                copied.add_bytes(&[0xc3]);
                let mut dst = alloc::vec![0u8; len];
                assert_eq!(copied.add_copy(&mut dst, data), len);
                assert_eq!(dst, data);
                assert_eq!(copied.finish(), reference(&expected), "copy, {start}, {len}");
            }
        }
    }

    #[test]
    fn every_length_of_a_segment_sums_like_the_reference() {
        // Every length from one block (the wide loop's least) to past an MSS, at an even and
        // an odd start: every length of the last, overlapping block, with whole blocks
        // before it or none, and an odd octet after it or none.
        let buffer = pseudo_random(1_700, 0x2545_f491_4f6c_dd1d);
        for start in [0, 1] {
            for len in 250..=1_600 {
                let data = &buffer[start..start + len];
                every_form_matches_the_plain_sum(data);
                assert_eq!(sum_of(data), reference(data), "start {start}, length {len}");
            }
        }
    }

    #[test]
    fn large_pieces_sum_like_the_reference() {
        // Past one group of the AVX2 lanes (511 blocks, 130 816 octets) and several, with
        // all-ones words (the largest sums) and random ones, at ragged ends.
        for len in [130_815, 130_816, 130_817, 130_848, 130_879, 261_632 + 62, 400_001] {
            let ones = alloc::vec![0xffu8; len];
            every_form_matches_the_plain_sum(&ones);
            assert_eq!(sum_of(&ones), reference(&ones), "ones, {len}");
            let random = pseudo_random(len, len as u64);
            every_form_matches_the_plain_sum(&random[1..]);
            assert_eq!(sum_of(&random[1..]), reference(&random[1..]), "random, {len}");
        }
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
            every_form_matches_the_plain_sum(data);
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

            // The same into memory not initialised (a vector's spare capacity).
            let mut uninit = Checksum::new();
            uninit.add_bytes(&prefix);
            let mut dst: Vec<u8> = Vec::with_capacity(dst_len);
            let copied = uninit.add_copy_uninit(&mut dst.spare_capacity_mut()[..dst_len], src);
            uninit.add_bytes(&suffix);
            proptest::prop_assert_eq!(copied, len);
            proptest::prop_assert_eq!(initialised(&mut dst, copied), &src[..len]);
            proptest::prop_assert_eq!(uninit.finish(), apart.finish());
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
        assert_eq!(PseudoAddrs::new(v4, v6, 6).with_len(20).err(), Some(AddressFamilyMismatch));
        assert_eq!(PseudoAddrs::new(v6, v4, 6).with_len(20).err(), Some(AddressFamilyMismatch));
    }

    proptest::proptest! {
        /// The per-connection part of the pseudo-header, completed by a length, sums as the
        /// whole pseudo-header does — alone (`folded`) and with any data after it (`finish`) —
        /// for both families, every length (over IPv4 only its low 16 bits count), and
        /// addresses whose sums carry (all ones) or vanish (all zeros).
        #[test]
        fn pseudo_addrs_with_a_length_sum_as_the_pseudo_header(
            v6 in proptest::bool::ANY,
            src in proptest::prop_oneof![
                proptest::num::u128::ANY, proptest::strategy::Just(0), proptest::strategy::Just(u128::MAX)
            ],
            dst in proptest::prop_oneof![
                proptest::num::u128::ANY, proptest::strategy::Just(0), proptest::strategy::Just(u128::MAX)
            ],
            protocol in proptest::num::u8::ANY,
            tcp_len in proptest::prop_oneof![0u32..70_000, proptest::num::u32::ANY],
            data in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
        ) {
            let (src, dst) = if v6 {
                (IpAddr::V6(Ipv6Addr::from(src)), IpAddr::V6(Ipv6Addr::from(dst)))
            } else {
                (IpAddr::V4(Ipv4Addr::from(src as u32)), IpAddr::V4(Ipv4Addr::from(dst as u32)))
            };
            let whole = pseudo_header(src, dst, protocol, tcp_len).unwrap();
            let parts = PseudoAddrs::new(src, dst, protocol).with_len(tcp_len).unwrap();
            proptest::prop_assert_eq!(parts.folded(), whole.folded());
            let (mut whole, mut parts) = (whole, parts);
            whole.add_bytes(&data);
            parts.add_bytes(&data);
            proptest::prop_assert_eq!(parts.finish(), whole.finish());
        }
    }
}
