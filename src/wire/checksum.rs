//! The Internet checksum (RFC 1071) and the TCP pseudo-header (RFC 9293 §3.1).
//!
//! The sender computes the checksum over the pseudo-header, the TCP header and the payload
//! (MUST-2) and the receiver verifies it (MUST-3). [`Checksum`] accumulates in pieces of any
//! length — odd ones included — so a payload split across the two halves of a ring buffer sums
//! the same as one contiguous slice.

use core::net::IpAddr;

/// An incremental ones'-complement sum.
#[derive(Clone, Copy, Debug, Default)]
pub struct Checksum {
    /// Sum of 16-bit big-endian words, folded lazily.
    sum: u64,
    /// A byte left over from an odd-length piece, waiting for its partner.
    pending: Option<u8>,
}

/// The two addresses of a pseudo-header are of different IP families.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressFamilyMismatch;

impl Checksum {
    /// An empty sum.
    pub const fn new() -> Self {
        Self { sum: 0, pending: None }
    }

    /// Adds `data`, continuing any odd byte left by the previous piece.
    pub fn add_bytes(&mut self, mut data: &[u8]) {
        if let Some(high) = self.pending.take() {
            match data.split_first() {
                Some((&low, rest)) => {
                    self.sum += u64::from(u16::from_be_bytes([high, low]));
                    data = rest;
                }
                None => {
                    self.pending = Some(high);
                    return;
                }
            }
        }
        // Eight bytes at a time: four 16-bit words summed through a u64 (each step adds at
        // most 2^34, so the accumulator cannot overflow before folding at the end).
        let mut chunks = data.chunks_exact(8);
        let mut sum = self.sum;
        for chunk in &mut chunks {
            let word = u64::from_be_bytes(chunk.try_into().unwrap_or([0; 8]));
            sum +=
                (word >> 48) + ((word >> 32) & 0xffff) + ((word >> 16) & 0xffff) + (word & 0xffff);
        }
        let mut rest = chunks.remainder().chunks_exact(2);
        for pair in &mut rest {
            sum += u64::from(u16::from_be_bytes(pair.try_into().unwrap_or([0; 2])));
        }
        self.sum = sum;
        if let Some(&odd) = rest.remainder().first() {
            self.pending = Some(odd);
        }
    }

    /// Adds one 16-bit word (must be called at an even offset).
    pub fn add_u16(&mut self, value: u16) {
        self.add_bytes(&value.to_be_bytes());
    }

    /// Adds one 32-bit value as two words.
    pub fn add_u32(&mut self, value: u32) {
        self.add_bytes(&value.to_be_bytes());
    }

    /// The folded, complemented checksum, ready for the header. An odd final byte is padded
    /// with zero (RFC 9293 §3.1).
    pub fn finish(self) -> u16 {
        let mut sum = self.sum;
        if let Some(high) = self.pending {
            sum += u64::from(u16::from_be_bytes([high, 0]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        // The fold above leaves at most 16 bits.
        !(sum as u16)
    }
}

/// The sum of the TCP pseudo-header: for IPv4 source, destination, zero, protocol and TCP
/// length (RFC 9293 §3.1); for IPv6 source, destination, 32-bit length, three zero octets and
/// the next header (RFC 8200 §8.1).
pub fn pseudo_header(
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
    tcp_len: u32,
) -> Result<Checksum, AddressFamilyMismatch> {
    let mut sum = Checksum::new();
    match (src, dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            sum.add_bytes(&src.octets());
            sum.add_bytes(&dst.octets());
            sum.add_u16(u16::from(protocol));
            // The IPv4 TCP length field is 16 bits; longer segments cannot exist over IPv4.
            sum.add_u16(tcp_len as u16);
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            sum.add_bytes(&src.octets());
            sum.add_bytes(&dst.octets());
            sum.add_u32(tcp_len);
            sum.add_u32(u32::from(protocol));
        }
        (IpAddr::V4(_), IpAddr::V6(_)) | (IpAddr::V6(_), IpAddr::V4(_)) => {
            return Err(AddressFamilyMismatch);
        }
    }
    Ok(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_1071_example_sums_to_ddf2() {
        // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (complement 220d).
        let mut sum = Checksum::new();
        sum.add_bytes(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
        assert_eq!(sum.finish(), !0xddf2);
    }

    #[test]
    fn odd_pieces_sum_like_one_piece() {
        let data: [u8; 23] = core::array::from_fn(|i| (i * 37 + 11) as u8);
        let mut whole = Checksum::new();
        whole.add_bytes(&data);
        for split in 0..data.len() {
            let (a, b) = data.split_at(split);
            let mut pieces = Checksum::new();
            pieces.add_bytes(a);
            pieces.add_bytes(&[]);
            pieces.add_bytes(b);
            assert_eq!(pieces.finish(), whole.finish(), "split at {split}");
        }
    }

    #[test]
    fn mixed_families_are_rejected() {
        let v4 = IpAddr::from([10, 0, 0, 1]);
        let v6 = IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(pseudo_header(v4, v6, 6, 20).err(), Some(AddressFamilyMismatch));
    }
}
