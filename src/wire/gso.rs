//! Software segmentation of a super-segment (GSO/TSO in software): cuts one TCP header and a
//! long payload into the wire segments Linux's GSO or a NIC's TSO would make of them.
//!
//! The connection emits super-segments through `poll_transmit_gso` (header in a buffer, payload
//! as slices, `segment_size` octets per wire segment). A kernel or device that segments takes
//! them as they are; everywhere else (a UDP path without `UDP_SEGMENT`, a TUN without the
//! virtio-net header, a test) [`Segmenter`] writes each wire segment into a buffer: the header
//! copied with its sequence number advanced by the piece's offset, PSH and FIN kept only on the
//! last piece and CWR only on the first (as Linux's `tcp_gso_segment` does), the piece's payload
//! copied, and the checksum filled per piece as [`TxChecksum`] says. Nothing here allocates.

use core::net::IpAddr;

use bytes::BytesMut;

use super::checksum::{Checksum, TxChecksum, pseudo_header};
use super::{EmitError, Flags, HEADER_LEN, PROTOCOL_TCP};

/// Offset of the flags octet in the TCP header.
const FLAGS_AT: usize = 13;
/// Offset of the checksum field in the TCP header.
const CHECKSUM_AT: usize = 16;

/// Cuts a super-segment into wire segments, one per [`next_segment`](Self::next_segment) call.
///
/// `P` is any payload slice type (`Bytes`, `&[u8]`, `Vec<u8>`): the payload is the
/// concatenation of the slices, as [`crate::connection::Payload::slices`] hands them out.
#[derive(Clone, Debug)]
pub struct Segmenter<'a, P> {
    header: &'a [u8],
    payload: &'a [P],
    segment_size: usize,
    src: IpAddr,
    dst: IpAddr,
    checksum: TxChecksum,
    /// The header's sequence number.
    seq: u32,
    /// Payload octets in all slices.
    total: usize,
    /// Payload octets already written into segments.
    done: usize,
    /// The slice the next piece starts in, and the offset in it.
    slice: usize,
    within: usize,
    /// Segments written so far.
    written: usize,
    /// The sum of what every piece's checksum shares: the pseudo-header without its length
    /// and the header with its sequence number, flags and checksum fields zero. A piece adds
    /// only its length, sequence number, flags and payload (RFC 1071 §2: the sum is
    /// commutative and associative, so the header need not be summed again per piece).
    shared_sum: Checksum,
    /// The pseudo-header's length field is 32 bits (IPv6, RFC 8200 §8.1), not 16 (IPv4).
    long_length: bool,
}

impl<'a, P: AsRef<[u8]>> Segmenter<'a, P> {
    /// A segmenter for the super-segment whose TCP header (options included, as the
    /// connection wrote it: `header_len` octets) is `header`, whose payload is the slices of
    /// `payload`, to be cut into pieces of `segment_size` octets (the last may be shorter),
    /// with the pseudo-header of `src` → `dst` and the checksum filled as `checksum` says:
    /// [`TxChecksum::Compute`] the full sum per piece, [`TxChecksum::PseudoHeader`] the
    /// pseudo-header's folded sum for the piece's length (for a device that completes it,
    /// as Linux's `CHECKSUM_PARTIAL`), [`TxChecksum::None`] 0. The checksum field `header`
    /// holds is ignored.
    ///
    /// A payload no longer than `segment_size` (an ordinary segment, or one without data)
    /// gives exactly one segment: the header and payload as they are, checksummed as asked.
    ///
    /// # Errors
    ///
    /// - [`EmitError::BufferTooSmall`] when `header` is shorter than the length its data
    ///   offset field gives, or than 20 octets (`needed` is that length).
    /// - [`EmitError::AddressFamilyMismatch`] when `src` and `dst` are of different families.
    /// - [`EmitError::OptionsTooLong`] (with `len` 0) when `segment_size` is 0 and there is
    ///   payload: no piece could carry any.
    pub fn new(
        header: &'a [u8],
        payload: &'a [P],
        segment_size: usize,
        src: IpAddr,
        dst: IpAddr,
        checksum: TxChecksum,
    ) -> Result<Self, EmitError> {
        let fixed = header
            .get(..HEADER_LEN)
            .ok_or(EmitError::BufferTooSmall { needed: HEADER_LEN, available: header.len() })?;
        let header_len = usize::from(fixed.get(12).copied().unwrap_or(0) >> 4) * 4;
        let header = header.get(..header_len).filter(|_| header_len >= HEADER_LEN).ok_or(
            EmitError::BufferTooSmall {
                needed: header_len.max(HEADER_LEN),
                available: header.len(),
            },
        )?;
        let mut shared_sum = pseudo_header(src, dst, PROTOCOL_TCP, 0)
            .map_err(|_| EmitError::AddressFamilyMismatch)?;
        // The header with the fields that differ per piece zeroed: sequence number (4..8),
        // flags (13, the low octet of the word at 12) and checksum (16..18).
        let (before_seq, from_seq) = header.split_at(4);
        let (_seq, after_seq) = from_seq.split_at(4);
        let (ack, after_ack) = after_seq.split_at(4);
        let (offset_and_flags, after_flags) = after_ack.split_at(2);
        let (window, after_window) = after_flags.split_at(2);
        let (_field, rest) = after_window.split_at(2);
        shared_sum.add_bytes(before_seq);
        shared_sum.add_bytes(ack);
        shared_sum.add_bytes(offset_and_flags.get(..1).unwrap_or_default());
        shared_sum.add_bytes(&[0]);
        shared_sum.add_bytes(window);
        shared_sum.add_bytes(rest);
        let long_length = src.is_ipv6();
        let total = payload.iter().map(|slice| slice.as_ref().len()).sum();
        if segment_size == 0 && total > 0 {
            return Err(EmitError::OptionsTooLong { len: 0 });
        }
        let seq = header
            .get(4..8)
            .and_then(|octets| <[u8; 4]>::try_from(octets).ok())
            .map_or(0, u32::from_be_bytes);
        Ok(Self {
            header,
            payload,
            segment_size,
            src,
            dst,
            checksum,
            seq,
            total,
            done: 0,
            slice: 0,
            within: 0,
            written: 0,
            shared_sum,
            long_length,
        })
    }

    /// Wire segments this super-segment makes: ⌈payload / `segment_size`⌉, and 1 without
    /// payload.
    pub fn segments(&self) -> usize {
        if self.total == 0 { 1 } else { self.total.div_ceil(self.segment_size.max(1)) }
    }

    /// Octets of the longest wire segment: what a buffer for [`next_segment`](Self::next_segment)
    /// needs.
    pub fn max_segment_len(&self) -> usize {
        self.header.len() + self.segment_size.min(self.total)
    }

    /// Writes the next wire segment (TCP header and payload) at the front of `out`; its
    /// length, or `Ok(None)` once every segment was written.
    ///
    /// # Errors
    ///
    /// [`EmitError::BufferTooSmall`] when `out` cannot hold the segment; nothing is consumed
    /// (the same segment is written by the next call with a larger buffer).
    pub fn next_segment(&mut self, out: &mut [u8]) -> Result<Option<usize>, EmitError> {
        let Some(len) = self.next_len() else { return Ok(None) };
        let available = out.len();
        let header_len = self.header.len();
        let Some((head, body)) = out.get_mut(..len).map(|segment| segment.split_at_mut(header_len))
        else {
            return Err(EmitError::BufferTooSmall { needed: len, available });
        };
        copy_header(head, self.header);
        let (seq, flags) = self.patch_header(head);
        let field = match self.checksum {
            TxChecksum::Compute => {
                let mut sum = self.piece_sum(len, seq, flags);
                self.copy_piece(body, Some(&mut sum));
                sum.finish()
            }
            TxChecksum::PseudoHeader | TxChecksum::None => {
                self.copy_piece(body, None);
                self.uncomputed_field(len)
            }
        };
        if let Some(octets) = head.get_mut(CHECKSUM_AT..CHECKSUM_AT + 2) {
            octets.copy_from_slice(&field.to_be_bytes());
        }
        self.done += len - header_len;
        self.written += 1;
        Ok(Some(len))
    }

    /// Like [`next_segment`](Self::next_segment), but appends the segment to `out`, which
    /// grows as needed: no buffer to size or zero-fill first. The payload is copied, then
    /// summed from the copy. Returns the segment's length, or `None` once every segment was
    /// written.
    pub fn append_next_segment(&mut self, out: &mut BytesMut) -> Option<usize> {
        let len = self.next_len()?;
        let header_len = self.header.len();
        let start = out.len();
        out.reserve(len);
        out.extend_from_slice(self.header);
        let mut left = len - header_len;
        while left > 0 {
            let Some(slice) = self.payload.get(self.slice) else { break };
            let rest = slice.as_ref().get(self.within..).unwrap_or_default();
            let take = rest.len().min(left);
            out.extend_from_slice(rest.get(..take).unwrap_or_default());
            left -= take;
            if take == rest.len() {
                self.slice += 1;
                self.within = 0;
            } else {
                self.within += take;
            }
        }
        let segment = out.get_mut(start..).unwrap_or_default();
        let (head, body) = segment.split_at_mut(header_len.min(segment.len()));
        let (seq, flags) = self.patch_header(head);
        let field = match self.checksum {
            TxChecksum::Compute => {
                let mut sum = self.piece_sum(len, seq, flags);
                sum.add_bytes(body);
                sum.finish()
            }
            TxChecksum::PseudoHeader | TxChecksum::None => self.uncomputed_field(len),
        };
        if let Some(octets) = head.get_mut(CHECKSUM_AT..CHECKSUM_AT + 2) {
            octets.copy_from_slice(&field.to_be_bytes());
        }
        self.done += len - header_len;
        self.written += 1;
        Some(len)
    }

    /// The length of the next wire segment, `None` once every segment was written.
    fn next_len(&self) -> Option<usize> {
        let done_all = if self.total == 0 { self.written > 0 } else { self.done >= self.total };
        if done_all {
            return None;
        }
        let piece_len = (self.total - self.done).min(self.segment_size.max(1));
        Some(self.header.len() + piece_len)
    }

    /// Patches the copy of the header in `head` with the piece's sequence number and flags:
    /// PSH and FIN only on the last piece, CWR only on the first. Returns both.
    fn patch_header(&self, head: &mut [u8]) -> (u32, u8) {
        let piece_len = (self.total - self.done).min(self.segment_size.max(1));
        let first = self.done == 0;
        let last = self.done + piece_len >= self.total;
        // The offset is below 2^32 for any payload a pseudo-header can describe: sequence
        // numbers wrap modulo 2^32 anyway.
        let seq = self.seq.wrapping_add(self.done as u32);
        if let Some(field) = head.get_mut(4..8) {
            field.copy_from_slice(&seq.to_be_bytes());
        }
        let mut bits = 0;
        if let Some(flags) = head.get_mut(FLAGS_AT) {
            let mut kept = Flags::from_bits(*flags);
            if !last {
                kept = kept.without(Flags::PSH | Flags::FIN);
            }
            if !first {
                kept = kept.without(Flags::CWR);
            }
            *flags = kept.bits();
            bits = *flags;
        }
        (seq, bits)
    }

    /// The checksum of a piece `len` octets long (header included) with sequence number `seq`
    /// and flags octet `flags`, before its payload is added: the shared sum plus what differs.
    fn piece_sum(&self, len: usize, seq: u32, flags: u8) -> Checksum {
        // `len` fits a u32: it is at most the header plus `segment_size` of a real payload.
        let tcp_len = u32::try_from(len).unwrap_or(u32::MAX);
        // Over IPv4 the pseudo-header carries the length's low 16 bits only.
        let length_high = if self.long_length { (tcp_len >> 16) as u16 } else { 0 };
        let mut sum = self.shared_sum;
        sum.add_words(&[
            length_high,
            tcp_len as u16,
            (seq >> 16) as u16,
            seq as u16,
            u16::from(flags),
        ]);
        sum
    }

    /// The checksum field of a piece `len` octets long when the checksum is not computed
    /// here: the pseudo-header's folded sum ([`TxChecksum::PseudoHeader`]) or 0.
    fn uncomputed_field(&self, len: usize) -> u16 {
        if self.checksum != TxChecksum::PseudoHeader {
            return 0;
        }
        let tcp_len = u32::try_from(len).unwrap_or(u32::MAX);
        // `new` checked that the addresses are of one family.
        pseudo_header(self.src, self.dst, PROTOCOL_TCP, tcp_len).map_or(0, Checksum::folded)
    }

    /// Copies the next `body.len()` payload octets into `body`, summing them into `sum` if
    /// given (one pass: [`Checksum::add_copy`]).
    fn copy_piece(&mut self, mut body: &mut [u8], mut sum: Option<&mut Checksum>) {
        while !body.is_empty() {
            let Some(slice) = self.payload.get(self.slice) else { return };
            let rest = slice.as_ref().get(self.within..).unwrap_or_default();
            let take = rest.len().min(body.len());
            let (dst, after) = core::mem::take(&mut body).split_at_mut(take);
            let src = rest.get(..take).unwrap_or_default();
            match sum.as_deref_mut() {
                Some(sum) => {
                    sum.add_copy(dst, src);
                }
                None => dst.copy_from_slice(src),
            }
            body = after;
            if take == rest.len() {
                self.slice += 1;
                self.within = 0;
            } else {
                self.within += take;
            }
        }
    }
}

/// Copies the header `src` into `dst`, of the same length: the usual one (20 octets and
/// timestamps, 32 in all) as one fixed-size move in line, any other with `copy_from_slice`
/// (a call to `memcpy`, which for so few octets costs more than the move itself).
#[inline(always)]
fn copy_header(dst: &mut [u8], src: &[u8]) {
    match (<&mut [u8; 32]>::try_from(&mut *dst), <&[u8; 32]>::try_from(src)) {
        (Ok(dst), Ok(src)) => *dst = *src,
        _ => dst.copy_from_slice(src),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::SeqNum;
    use crate::wire::{Options, Segment, TcpHeader};
    use alloc::vec;
    use alloc::vec::Vec;
    use core::net::{Ipv4Addr, Ipv6Addr};

    const SRC4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const DST4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

    fn header(flags: Flags) -> Vec<u8> {
        let header = TcpHeader {
            src_port: 1234,
            dst_port: 80,
            seq: SeqNum::new(0xffff_fffe),
            ack: SeqNum::new(7),
            flags,
            window: 512,
            urgent_ptr: 0,
            options: Options::NONE,
        };
        let mut buf = vec![0u8; 20];
        header.emit(&[], SRC4, DST4, &mut buf).unwrap();
        buf
    }

    /// Every segment, written by `next_segment`; `append_next_segment` (onto a buffer that
    /// already holds something) must give the same octets.
    fn all(segmenter: &mut Segmenter<'_, &[u8]>) -> Vec<Vec<u8>> {
        let mut appending = segmenter.clone();
        let mut out = Vec::new();
        let mut buf = [0u8; 128];
        while let Some(len) = segmenter.next_segment(&mut buf).unwrap() {
            out.push(buf[..len].to_vec());
        }
        let mut appended = Vec::new();
        let mut bytes = BytesMut::from(&b"ip"[..]);
        while let Some(len) = appending.append_next_segment(&mut bytes) {
            assert_eq!(bytes.len(), 2 + len);
            appended.push(bytes.split_off(2).to_vec());
        }
        assert_eq!(bytes, b"ip"[..]);
        assert_eq!(appended, out, "appended segments");
        out
    }

    /// Five payload octets in two slices, cut by two: three segments with seq advanced (and
    /// wrapping), PSH and FIN only on the last, CWR only on the first, each checksummed.
    #[test]
    fn cuts_seq_flags_and_checksums_per_piece() {
        let flags = Flags::ACK | Flags::PSH | Flags::FIN | Flags::CWR;
        let header = header(flags);
        let payload: [&[u8]; 2] = [b"abc", b"de"];
        let mut segmenter =
            Segmenter::new(&header, &payload, 2, SRC4, DST4, TxChecksum::Compute).unwrap();
        assert_eq!(segmenter.segments(), 3);
        assert_eq!(segmenter.max_segment_len(), 22);
        let segments = all(&mut segmenter);
        let expected: [(&[u8], u32, u8); 3] =
            [(b"ab", 0xffff_fffe, 0x90), (b"cd", 0, 0x10), (b"e", 2, 0x19)];
        assert_eq!(segments.len(), 3);
        for (segment, (data, seq, flag_bits)) in segments.iter().zip(expected) {
            assert_eq!(&segment[20..], data);
            assert_eq!(segment[4..8], seq.to_be_bytes());
            assert_eq!(segment[13], flag_bits);
            // Everything else of the header as given.
            assert_eq!(segment[..4], header[..4]);
            assert_eq!(segment[8..13], header[8..13]);
            assert_eq!(segment[14..16], header[14..16]);
            let parsed = Segment::parse_checked(segment, SRC4, DST4).unwrap();
            assert_eq!(parsed.payload, data);
        }
        // The exact octets of the middle segment, checksum included.
        assert_eq!(
            segments[1],
            [
                0x04, 0xd2, 0x00, 0x50, 0, 0, 0, 0, 0, 0, 0, 7, 0x50, 0x10, 0x02, 0x00, 0x31, 0x43,
                0, 0, b'c', b'd'
            ]
        );
    }

    /// The pseudo-header mode leaves the folded pseudo-header sum for the piece's length;
    /// `None` leaves 0; IPv6 sums the IPv6 pseudo-header.
    #[test]
    fn checksum_modes_and_ipv6() {
        let header = header(Flags::ACK);
        let payload: [&[u8]; 1] = [b"xyz"];
        let mut partial =
            Segmenter::new(&header, &payload, 2, SRC4, DST4, TxChecksum::PseudoHeader).unwrap();
        let segments = all(&mut partial);
        let expected = pseudo_header(SRC4, DST4, PROTOCOL_TCP, 22).unwrap().folded();
        assert_eq!(segments[0][16..18], expected.to_be_bytes());
        let expected = pseudo_header(SRC4, DST4, PROTOCOL_TCP, 21).unwrap().folded();
        assert_eq!(segments[1][16..18], expected.to_be_bytes());
        let mut none = Segmenter::new(&header, &payload, 2, SRC4, DST4, TxChecksum::None).unwrap();
        assert!(all(&mut none).iter().all(|segment| segment[16..18] == [0, 0]));
        let (src6, dst6) = (
            IpAddr::V6(Ipv6Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2)),
        );
        let mut v6 = Segmenter::new(&header, &payload, 2, src6, dst6, TxChecksum::Compute).unwrap();
        for segment in all(&mut v6) {
            Segment::parse_checked(&segment, src6, dst6).unwrap();
        }
        assert_eq!(
            Segmenter::new(&header, &payload, 2, SRC4, dst6, TxChecksum::Compute).err(),
            Some(EmitError::AddressFamilyMismatch)
        );
    }

    /// No payload: one segment, the header as given with its checksum; a buffer too small is
    /// an error that consumes nothing.
    #[test]
    fn bare_header_and_small_buffer() {
        let header = header(Flags::ACK | Flags::FIN);
        let payload: [&[u8]; 0] = [];
        let mut segmenter =
            Segmenter::new(&header, &payload, 1460, SRC4, DST4, TxChecksum::Compute).unwrap();
        assert_eq!(segmenter.segments(), 1);
        assert_eq!(all(&mut segmenter), vec![header.clone()]);
        let data: [&[u8]; 1] = [b"hello"];
        let mut segmenter =
            Segmenter::new(&header, &data, 1460, SRC4, DST4, TxChecksum::Compute).unwrap();
        let mut small = [0u8; 24];
        assert_eq!(
            segmenter.next_segment(&mut small),
            Err(EmitError::BufferTooSmall { needed: 25, available: 24 })
        );
        let segments = all(&mut segmenter);
        assert_eq!(segments.len(), 1);
        assert_eq!(&segments[0][20..], b"hello");
        assert_eq!(segments[0][13], 0x11);
        assert!(Segmenter::new(&header[..19], &data, 2, SRC4, DST4, TxChecksum::Compute).is_err());
    }
}
