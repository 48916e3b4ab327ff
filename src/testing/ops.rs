//! The operation language shared by the `connection` fuzz target and the proptest model test
//! (`tests/model.rs`), and the checker both run (feature `arbitrary`).
//!
//! An [`Input`] is a list of [`Op`]s — segments anchored near the connection's current
//! sequence numbers (so they pass validation often), user calls and clock ticks — applied to
//! one [`Connection`] by [`run`], which checks after every step:
//!
//! - **transitions**: every state change is one RFC 9293 allows for what caused it. The
//!   reference is [`rfc_allows`], written from Figure 5 and §3.10 in terms of the input itself
//!   (which flags the segment carried, whether it acknowledged our FIN, which call was made),
//!   not derived from `state::transition` — so a wrong table arm is caught, not mirrored. The
//!   model follows the state through the events alone and must agree with the connection;
//! - **window**: a segment the §3.10.7.4 acceptability test rejects (computed here from the
//!   pre-segment RCV.NXT, and the larger of RCV.WND and the furthest right edge the model saw
//!   the connection advertise: a window may shrink below an edge already offered, as it does
//!   when received packets pin memory, and octets up to that edge are still taken, SHLD-14)
//!   changes neither RCV.NXT nor the state;
//! - **stream**: every octet handed to the application is the octet the peer sent there,
//!   once and in order (never more than RCV.NXT has passed), and every data octet the
//!   connection sends is the one the application handed to SEND at that place in its stream;
//! - **API forms** (issue #19): each SEND picks `send`, `send_bytes` or `write_chunks`
//!   ([`SendForm`]), each RECEIVE `recv`, `read_chunk`, `recv_bytes` or `read_chunks`
//!   ([`ReadForm`]) with its own size, each peer segment is handed over parsed
//!   (`handle_segment`) or as a packet of a chosen capacity (`handle_segment_bytes`,
//!   [`PeerSegment::packet`]), and each output poll is `poll_transmit` or the header-only
//!   `poll_transmit_chunks` ([`Op::Output`]); the checks above hold whatever the mix, and each
//!   form's own promises are checked (`write_chunks` leaves what it did not take in the
//!   chunks, no read returns more than asked or an empty chunk, header and payload add up),
//!   as is the bound on memory received packets pin;
//! - **required behaviour**: a RST is believed only at exactly RCV.NXT (in SYN-SENT only with
//!   our SYN acknowledged; RFC 5961 §3), so a connection that honours one elsewhere fails the
//!   transition check; a connection that times out must have retransmitted R1 times since
//!   the last ACK that had to count as progress (MUST-20; FIN-WAIT-2 after a full CLOSE has
//!   its own timer) — so one that gives up at its first timeout fails;
//! - **output**: every emitted segment is checked against what the model itself saw cross,
//!   never against `status()`: a RST only where RFC 9293 sends one, with the fields it names
//!   (`<SEQ=SEG.ACK>`, `<SEQ=0><ACK=SEG.SEQ+SEG.LEN>` from CLOSED, `<SEQ=SND.NXT>` on ABORT
//!   and SHLD-3); a SYN at ISS, without ACK only before the peer's SYN; after the peer's SYN
//!   every segment carries ACK, exactly RCV.NXT while the model can follow it (in-order
//!   segments wholly inside the window move it; the first segment whose fate is less certain
//!   leaves only the bounds), and always between IRS+1 and the end of what the peer sent and
//!   never moving left; SEQ never beyond the highest sequence number sent;
//! - SND.UNA ≤ SND.NXT, buffers within their configured sizes, a bounded number of segments
//!   per step (every `poll_transmit` succeeds), unacknowledged data always with a timer,
//!   TIME-WAIT always with its timer;
//! - **SACK** ([`super::sack_model`]): the peer may offer SACK-permitted and timestamps on its
//!   SYNs (the input's choice); it holds or loses each segment the connection sends
//!   ([`Op::Lose`], [`Op::Arrive`]), acknowledges what it holds ([`Anchor::Held`]) and sends
//!   SACK blocks, truthful or not ([`SackSpec`]). The blocks the connection sends describe
//!   octets the peer sent, above the ACK field (a D-SACK only octets sent twice, each
//!   duplicate once), at most four (three with timestamps); the connection never resends
//!   octets it took as SACKed unless a retransmission timeout came since; a step that enters
//!   SACK recovery resends the first segment presumed lost in that step (RFC 6675 §5 (4.3)).
//!
//! Violations panic with a message naming the rule: that is what fuzzers and proptest catch.

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use core::time::Duration;

use arbitrary::Arbitrary;

use crate::config::Config;
use crate::connection::Connection;
use crate::event::{Event, Status};
use crate::seq::SeqNum;
use crate::state::State;
use crate::time::Instant;
use crate::wire::{Flags, Options, SackBlock, Segment, TcpHeader};
use bytes::BytesMut;

use super::sack_model::{PeerReceiver, SackCheck};
pub use super::sack_model::{RawSackBlock, SackBlockSpec, SackCoverage, SackSpec};

const LOCAL: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 80);
const REMOTE: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 4000);
const SEND_BUFFER: usize = 4096;
const RECV_BUFFER: usize = 3000;
/// How far auto-tuning may grow the buffers in the model: a few doublings, so runs reach the
/// ceilings.
const SEND_BUFFER_MAX: usize = 4 * SEND_BUFFER;
const RECV_BUFFER_MAX: usize = 4 * RECV_BUFFER;
/// Operations applied at most per input.
pub const MAX_OPS: usize = 200;
/// The most payload a peer segment carries (its length is taken modulo one more).
const MAX_PAYLOAD: usize = 2047;
/// The metadata one held piece of received data costs, with room to spare (48 octets on a
/// 64-bit target: `chunks::PIECE_OVERHEAD`).
const PIECE_ALLOWANCE: usize = 64;

/// Where a segment's sequence or acknowledgment number starts from.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Anchor {
    /// RCV.NXT.
    RcvNxt,
    /// RCV.NXT + RCV.WND.
    RcvWndEnd,
    /// IRS.
    Irs,
    /// SND.UNA.
    SndUna,
    /// SND.NXT.
    SndNxt,
    /// ISS.
    Iss,
    /// Any number.
    Raw(u32),
    /// What a truthful receiver acknowledges of the connection's data: the end of the run
    /// the model peer holds from SND.UNA (see [`super::sack_model`]).
    Held,
}

/// One step.
#[derive(Arbitrary, Clone, Debug)]
pub enum Op {
    /// A segment from the peer.
    Segment(PeerSegment),
    /// SEND of this many octets (modulo 5 000), through the API form given.
    Send(u16, SendForm),
    /// RECEIVE of up to this many octets (modulo 5 000), through the API form given.
    Recv(u16, ReadForm),
    /// CLOSE.
    Close,
    /// CLOSE of the sending side only.
    Shutdown,
    /// ABORT.
    Abort,
    /// Time moves forward this many microseconds, then timers run.
    Tick(u32),
    /// Nagle on or off.
    NoDelay(bool),
    /// From now on the model peer loses the `n`-th segment the connection sends (SYN, data
    /// or FIN) when bit `n % 16` is set; 0 loses nothing.
    Lose(u16),
    /// A segment the model peer lost arrives after all (the `n`-th, modulo how many are
    /// remembered): reordering.
    Arrive(u8),
    /// From now on the `n`-th output poll (counted from the first after the opening SYN) goes
    /// through a header-only form (the header into a buffer, the payload joined by the
    /// checker) when bit `n % 16` is set, else through `poll_transmit`; 0 (the start) copies
    /// every segment. The header-only form is `poll_transmit_borrowed` (the payload lent)
    /// when bit `(n + 5) % 16` is set too, else `poll_transmit_chunks` (`Bytes` slices).
    Output(u16),
}

/// How the application hands data to SEND (issue #19: the forms may be mixed freely on one
/// connection).
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendForm {
    /// `send(&[u8])`: copied into the send queue.
    Copy,
    /// `send_bytes(Bytes)`: the chunk kept by reference.
    Bytes,
    /// `write_chunks(&mut [Bytes])`: the data cut into `1 + n % 8` chunks, the cuts placed by
    /// `n` (some chunks may be empty).
    Chunks(u8),
}

/// How the application takes received data (the forms may be mixed freely).
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadForm {
    /// `recv(&mut [u8])` into a buffer of the op's size.
    Copy,
    /// `read_chunk(max_len)` with the op's size as `max_len` (0 included).
    Chunk,
    /// `recv_bytes()`: the next whole chunk (the op's size unused).
    Bytes,
    /// `read_chunks(&mut [Bytes])` into `n % 8` slots (0 included).
    Chunks(u8),
}

/// A segment from the peer: the anchors plus offsets give SEQ and ACK; the payload is the
/// peer's stream pattern at those sequence numbers.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub struct PeerSegment {
    /// TCP flag bits (low byte).
    pub flags: u8,
    /// SEQ's anchor.
    pub seq: Anchor,
    /// Added to SEQ's anchor.
    pub seq_off: i16,
    /// ACK's anchor.
    pub ack: Anchor,
    /// Added to ACK's anchor.
    pub ack_off: i16,
    /// Window field.
    pub window: u16,
    /// Payload length (modulo 2 048).
    pub len: u16,
    /// Urgent pointer field.
    pub urgent: u16,
    /// MSS option.
    pub mss: Option<u16>,
    /// Window-scale option.
    pub window_scale: Option<u8>,
    /// SACK blocks (RFC 2018 §3), truthful or not; sent whether or not SACK was negotiated.
    pub sack: Option<SackSpec>,
    /// How the segment is handed over: `None` parsed, through `handle_segment` (the payload
    /// copied); `Some(extra)` as a whole packet through `handle_segment_bytes` (the payload
    /// kept as slices), in a `BytesMut` of the segment's length plus `extra` octets of
    /// capacity, so a packet may pin far more memory than it carries.
    pub packet: Option<u16>,
}

/// A whole run.
#[derive(Arbitrary, Clone, Debug)]
pub struct Input {
    /// Start in LISTEN (else SYN-SENT).
    pub passive: bool,
    /// Delayed ACKs on.
    pub delayed_ack: bool,
    /// The peer's SYNs offer SACK-permitted (RFC 2018 §2).
    pub peer_sack: bool,
    /// The peer's SYNs offer timestamps (RFC 7323), and all its segments carry them.
    pub peer_timestamps: bool,
    /// The steps (at most [`MAX_OPS`] are used).
    pub ops: Vec<Op>,
}

/// The octet the peer sends at sequence number `seq`.
pub const fn pattern(seq: u32) -> u8 {
    (seq.wrapping_mul(2_654_435_761) >> 24) as u8
}

/// The octet the application hands to SEND at `offset` in its stream (ISS+1 is offset 0):
/// every data segment the connection sends must carry exactly these.
pub const fn sent_octet(offset: u32) -> u8 {
    (offset.wrapping_mul(2_246_822_519).wrapping_add(0x9e37) >> 24) as u8
}

/// SEND of `data` through `form` (`step` names the call in failure messages); returns what
/// the connection took. For `write_chunks`,
/// checks its contract: what was not taken is left in the chunks, in order (a chunk taken
/// whole is emptied, one taken in part advanced in place, later ones untouched), and an error
/// takes nothing.
pub fn send_through(
    conn: &mut Connection,
    now: Instant,
    data: &[u8],
    form: SendForm,
    step: usize,
) -> Result<usize, crate::connection::CallError> {
    match form {
        SendForm::Copy => conn.send(now, data),
        SendForm::Bytes => {
            // A slice in the middle of a larger allocation: offsets into a chunk must hold.
            let mut framed = vec![0xee; data.len() + 6];
            if let Some(middle) = framed.get_mut(3..3 + data.len()) {
                middle.copy_from_slice(data);
            }
            let chunk = bytes::Bytes::from(framed).slice(3..3 + data.len());
            conn.send_bytes(now, chunk)
        }
        SendForm::Chunks(n) => {
            // 1 + n % 8 chunks, cut at places drawn from `n` (a small LCG).
            let mut x = u32::from(n) | 1;
            let mut cuts: Vec<usize> = (0..n % 8)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    (x >> 8) as usize % (data.len() + 1)
                })
                .collect();
            cuts.sort_unstable();
            let whole = bytes::Bytes::copy_from_slice(data);
            let mut from = 0;
            let mut chunks: Vec<bytes::Bytes> = Vec::new();
            for cut in cuts.into_iter().chain([data.len()]) {
                chunks.push(whole.slice(from..cut));
                from = cut;
            }
            let taken = conn.write_chunks(now, &mut chunks);
            let left: Vec<u8> = chunks.iter().flat_map(|chunk| chunk.iter().copied()).collect();
            let expected = data.get(*taken.as_ref().unwrap_or(&0)..).unwrap_or(&[]);
            assert!(
                left == expected,
                "step {step}: write_chunks ({taken:?} of {}) left {} octets in the chunks, not \
                 the {} it did not take",
                data.len(),
                left.len(),
                expected.len()
            );
            taken
        }
    }
}

/// RECEIVE of up to `size` octets through `form` (`step` names the call in failure
/// messages); returns the octets read, after checking
/// what the form promises (never more than asked for, no empty chunk, slots beyond those
/// filled left as they were).
pub fn read_through(
    conn: &mut Connection,
    size: usize,
    form: ReadForm,
    step: usize,
) -> Result<Vec<u8>, crate::connection::CallError> {
    let what = |detail: &str| format!("step {step} ({form:?} of {size}): {detail}");
    match form {
        ReadForm::Copy => {
            let mut buf = vec![0u8; size];
            let read = conn.recv(&mut buf)?;
            assert!(read <= size, "{}", what("read more than the buffer"));
            buf.truncate(read);
            Ok(buf)
        }
        ReadForm::Chunk | ReadForm::Bytes => {
            let chunk =
                if form == ReadForm::Chunk { conn.read_chunk(size)? } else { conn.recv_bytes()? };
            let Some(chunk) = chunk else { return Ok(Vec::new()) };
            assert!(!chunk.is_empty(), "{}", what("an empty chunk"));
            assert!(
                form == ReadForm::Bytes || chunk.len() <= size,
                "{}",
                what(&format!("a chunk of {} octets", chunk.len()))
            );
            Ok(chunk.to_vec())
        }
        ReadForm::Chunks(n) => {
            let untouched = bytes::Bytes::from_static(b"untouched");
            let mut slots = vec![untouched.clone(); usize::from(n % 8)];
            let filled = conn.read_chunks(&mut slots)?;
            assert!(filled <= slots.len(), "{}", what(&format!("{filled} slots filled")));
            let (read, rest) = slots.split_at(filled);
            assert!(read.iter().all(|chunk| !chunk.is_empty()), "{}", what("an empty chunk"));
            assert!(rest.iter().all(|slot| *slot == untouched), "{}", what("a slot beyond"));
            Ok(read.iter().flat_map(|chunk| chunk.iter().copied()).collect())
        }
    }
}

/// The output forms an [`Op::Output`] pattern picks from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OutputForm {
    Copy,
    Chunks,
    Borrowed,
}

/// The next segment through `poll_transmit`, `poll_transmit_chunks` or
/// `poll_transmit_borrowed`: for the latter two the header written into `header_buf`, the
/// payload as slices, joined here into `out` as an adapter would write them (header and
/// payload lengths must add up to the segment's).
fn transmit_through(
    conn: &mut Connection,
    now: Instant,
    out: &mut [u8],
    header_buf: &mut [u8],
    form: OutputForm,
) -> Result<Option<crate::connection::Transmit>, crate::connection::TransmitError> {
    match form {
        OutputForm::Copy => return conn.poll_transmit(now, out),
        OutputForm::Chunks => {}
        OutputForm::Borrowed => {
            let Some(lent) = conn.poll_transmit_borrowed(now, header_buf)? else {
                return Ok(None);
            };
            let header = header_buf.get(..lent.header_len).unwrap_or(&[]);
            assert_eq!(header.len(), lent.header_len, "a header longer than its buffer");
            assert_eq!(
                lent.header_len + lent.payload.len(),
                lent.transmit.len,
                "poll_transmit_borrowed: header and payload do not add up to the segment"
            );
            join_into(out, core::iter::once(header).chain(lent.payload.clone()));
            let joined: usize = lent.payload.map(<[u8]>::len).sum();
            assert_eq!(joined, lent.transmit.len - lent.header_len, "the lent pieces' lengths");
            return Ok(Some(lent.transmit));
        }
    }
    let Some(chunks) = conn.poll_transmit_chunks(now, header_buf)? else { return Ok(None) };
    let header = header_buf.get(..chunks.header_len).unwrap_or(&[]);
    assert_eq!(header.len(), chunks.header_len, "a header longer than its buffer");
    assert_eq!(
        chunks.header_len + chunks.payload.len(),
        chunks.transmit.len,
        "poll_transmit_chunks: header and payload do not add up to the segment"
    );
    join_into(out, core::iter::once(header).chain(chunks.payload.slices().iter().map(|b| &b[..])));
    Ok(Some(chunks.transmit))
}

/// Writes `pieces` one after another at the start of `out`.
fn join_into<'a>(out: &mut [u8], pieces: impl Iterator<Item = &'a [u8]>) {
    let mut at = 0;
    for piece in pieces {
        let Some(target) = out.get_mut(at..at + piece.len()) else {
            panic!("a segment longer than any the checker's buffer holds")
        };
        target.copy_from_slice(piece);
        at += piece.len();
    }
}

/// Every data octet a segment carries is the one the application sent at that place in its
/// stream (whichever SEND form it came through, whichever output form sent it), and nothing
/// beyond what it sent: `sent` octets from ISS+1.
fn check_payload(segment: &Segment<'_>, iss: u32, sent: u32, what: &str) {
    if segment.payload.is_empty() {
        return;
    }
    let header = &segment.header;
    let first = header.seq.get().wrapping_add(u32::from(header.flags.contains(Flags::SYN)));
    let offset = first.wrapping_sub(iss.wrapping_add(1));
    let end = offset.wrapping_add(segment.payload.len() as u32);
    assert!(
        end <= sent && offset < end,
        "{what}: data at stream offsets {offset}..{end}, but the application sent {sent} octets"
    );
    for (i, &byte) in segment.payload.iter().enumerate() {
        let at = offset.wrapping_add(i as u32);
        assert_eq!(byte, sent_octet(at), "{what}: octet {at} is not the one the application sent");
    }
}

/// What made a state change, in the terms the RFC's figure and text use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// A segment arrived.
    Segment {
        /// SYN bit.
        syn: bool,
        /// ACK bit.
        ack: bool,
        /// FIN bit.
        fin: bool,
        /// RST bit.
        rst: bool,
        /// It carried data.
        data: bool,
        /// It acknowledged our FIN (ACK bit, our FIN sent, SEG.ACK = SND.NXT).
        acks_our_fin: bool,
        /// SEG.SEQ = RCV.NXT: the one place a RST is believed in a synchronized state or
        /// SYN-RECEIVED (RFC 9293 §3.10.7.4 step 2, RFC 5961 §3).
        at_rcv_nxt: bool,
        /// SEG.ACK acknowledges our SYN and nothing beyond (SND.UNA < SEG.ACK =< SND.NXT in
        /// SYN-SENT): the one ACK a RST in SYN-SENT is believed with (§3.10.7.3).
        acks_our_syn: bool,
    },
    /// CLOSE (full, or of the sending side).
    Close {
        /// A full CLOSE with received data still unread (SHLD-3: reset instead).
        unread: bool,
    },
    /// ABORT.
    Abort,
    /// SEND, RECEIVE or an option change: never a transition.
    OtherCall,
    /// Time passed.
    Tick,
}

/// Facts about the run so far that the RFC's rules depend on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct History {
    /// The application closed (fully or its sending side): a queued FIN may go out on a
    /// later segment's arrival (SYN-RECEIVED → ESTABLISHED → FIN-WAIT-1).
    pub close_called: bool,
    /// The application did a full CLOSE: data arriving afterwards resets (SHLD-3).
    pub full_close: bool,
    /// A FIN arrived earlier: if it lay beyond a hole it is held (§3.10.7.4, eighth step,
    /// once in order), and the data that fills the hole then delivers it.
    pub fin_seen: bool,
}

/// Whether RFC 9293 (Figure 5 and §3.10, with RFC 5961 and the SHLD-3 reset) lets a connection
/// go from `from` to `to` because of `cause`. Written from the RFC, independently of
/// `state::transition`.
pub fn rfc_allows(from: State, to: State, cause: Cause, history: History) -> bool {
    use State::{
        CloseWait, Closed, Closing, Established, FinWait1, FinWait2, LastAck, Listen, SynReceived,
        SynSent, TimeWait,
    };
    match cause {
        // §3.10.4 CLOSE: LISTEN and SYN-SENT delete the TCB; SYN-RECEIVED (nothing queued),
        // ESTABLISHED -> FIN-WAIT-1; CLOSE-WAIT -> LAST-ACK.
        // SHLD-3 (RFC 1122 §4.2.2.13): a CLOSE with unread data sends RST and ends it.
        Cause::Close { unread } => {
            matches!(
                (from, to),
                (Listen | SynSent, Closed)
                    | (SynReceived | Established, FinWait1)
                    | (CloseWait, LastAck)
            ) || (unread && from != Closed && to == Closed)
        }
        // §3.10.5 ABORT: every state but CLOSED ends in CLOSED.
        Cause::Abort => from != Closed && to == Closed,
        Cause::OtherCall => false,
        // §3.10.8: the user timeout and R2 end any connection; 2×MSL ends TIME-WAIT; a
        // passive SYN-RECEIVED may fall back to LISTEN.
        Cause::Tick => match from {
            Closed | Listen => false,
            SynReceived => matches!(to, Closed | Listen),
            SynSent | Established | FinWait1 | FinWait2 | CloseWait | Closing | LastAck
            | TimeWait => to == Closed,
        },
        Cause::Segment { syn, ack, fin, rst, data, acks_our_fin, at_rcv_nxt, acks_our_syn } => {
            let fin = fin || (data && history.fin_seen);
            // SHLD-3: data after a full CLOSE resets the connection.
            let data_after_close = data && history.full_close && to == Closed;
            // §3.10.7.4 step 2 with RFC 5961 §3: only a RST exactly at RCV.NXT resets; one
            // elsewhere in the window draws a challenge ACK and changes nothing.
            let reset = rst && at_rcv_nxt && to == Closed;
            match from {
                Closed => false,
                // §3.10.7.2: only a SYN (without RST or ACK) leaves LISTEN.
                Listen => syn && !rst && !ack && to == SynReceived,
                // §3.10.7.3.
                SynSent => match to {
                    Established => syn && ack && !rst,
                    SynReceived => syn && !ack && !rst,
                    Closed => rst && ack && acks_our_syn,
                    Listen | SynSent | FinWait1 | FinWait2 | CloseWait | Closing | LastAck
                    | TimeWait => false,
                },
                // §3.10.7.4: an acceptable ACK completes it; RST (or a SYN, RFC 9293 step 4)
                // sends a passive one back to LISTEN or ends an active one; its FIN can come
                // with the ACK that completes it (then ESTABLISHED -> CLOSE-WAIT follows).
                SynReceived => match to {
                    Established => ack && !rst,
                    Listen | Closed => (rst && at_rcv_nxt) || syn || data_after_close,
                    SynSent | SynReceived | FinWait1 | FinWait2 | CloseWait | Closing | LastAck
                    | TimeWait => false,
                },
                Established => match to {
                    CloseWait => fin && !rst,
                    // A FIN the application queued in SYN-RECEIVED goes out once this
                    // segment made the connection ESTABLISHED.
                    FinWait1 => history.close_called && !rst,
                    Closed => reset || data_after_close,
                    Listen | SynSent | SynReceived | Established | FinWait2 | Closing | LastAck
                    | TimeWait => false,
                },
                FinWait1 => match to {
                    FinWait2 => acks_our_fin && !rst,
                    Closing => fin && !rst,
                    TimeWait => fin && acks_our_fin && !rst,
                    Closed => reset || data_after_close,
                    Listen | SynSent | SynReceived | Established | FinWait1 | CloseWait
                    | LastAck => false,
                },
                FinWait2 => match to {
                    TimeWait => fin && !rst,
                    Closed => reset || data_after_close,
                    Listen | SynSent | SynReceived | Established | FinWait1 | FinWait2
                    | CloseWait | Closing | LastAck => false,
                },
                CloseWait => reset,
                Closing => match to {
                    TimeWait => acks_our_fin && !rst,
                    Closed => reset || data_after_close,
                    Listen | SynSent | SynReceived | Established | FinWait1 | FinWait2
                    | CloseWait | Closing | LastAck => false,
                },
                LastAck => to == Closed && (acks_our_fin || reset || data_after_close),
                // RFC 9293 lets a RST end TIME-WAIT (this crate ignores it, RFC 1337).
                TimeWait => reset,
            }
        }
    }
}

/// The §3.10.7.4 acceptability test, from the RCV.NXT and RCV.WND the segment met.
pub fn acceptable(seq: u32, seg_len: u32, rcv_nxt: u32, rcv_wnd: u32) -> bool {
    let in_window = |s: u32| s.wrapping_sub(rcv_nxt) < rcv_wnd;
    match (seg_len, rcv_wnd) {
        (0, 0) => seq == rcv_nxt,
        (0, _) => in_window(seq),
        (_, 0) => false,
        (_, _) => in_window(seq) || in_window(seq.wrapping_add(seg_len - 1)),
    }
}

fn anchor(conn: &Connection, receiver: &PeerReceiver, anchor: Anchor) -> u32 {
    let s = conn.status();
    match anchor {
        Anchor::RcvNxt => s.rcv_nxt.get(),
        Anchor::RcvWndEnd => s.rcv_nxt.get().wrapping_add(s.rcv_wnd),
        Anchor::Irs => s.irs.get(),
        Anchor::SndUna => s.snd_una.get(),
        Anchor::SndNxt => s.snd_nxt.get(),
        Anchor::Iss => s.iss.get(),
        Anchor::Raw(raw) => raw,
        Anchor::Held => receiver.held_ack(s.snd_una.get()),
    }
}

/// Which states a run visited, as a bit per [`State`] (in `State::ALL` order).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Visited(pub u16);

impl Visited {
    fn add(&mut self, state: State) {
        if let Some(bit) = State::ALL.iter().position(|&s| s == state) {
            self.0 |= 1 << bit;
        }
    }

    /// Whether `state` was visited.
    pub fn contains(self, state: State) -> bool {
        State::ALL.iter().position(|&s| s == state).is_some_and(|bit| self.0 & (1 << bit) != 0)
    }
}

/// What a run reached: the states, and how far the SACK checks got.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// The states visited.
    pub visited: Visited,
    /// What the SACK checks saw.
    pub sack: SackCoverage,
    /// How the API forms were exercised.
    pub forms: FormCoverage,
}

/// How a run exercised the API forms (issue #19), so tests can show the mixed runs are not
/// vacuous.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FormCoverage {
    /// SENDs that queued data, per [`SendForm`] (copy, `send_bytes`, `write_chunks`).
    pub sends: [u32; 3],
    /// RECEIVEs that returned data, per [`ReadForm`] (copy, `read_chunk`, `recv_bytes`,
    /// `read_chunks`).
    pub reads: [u32; 4],
    /// Data segments sent through `poll_transmit_chunks`.
    pub chunked_data_segments: u32,
    /// Data segments sent through `poll_transmit_borrowed`.
    pub borrowed_data_segments: u32,
    /// Segments with data handed over through `handle_segment_bytes`.
    pub bytes_data_segments: u32,
    /// The most memory received slices pinned after a step.
    pub most_pinned: usize,
    /// Compactions of received slices.
    pub compactions: u64,
}

/// Applies `input` to a fresh connection, checking every rule after every step (see the
/// module docs). Panics on the first violation; returns the states visited.
pub fn run(input: &Input) -> Visited {
    run_report(input).visited
}

/// The drop counters: a segment that moved none of them passed the checks before
/// §3.10.7.4 step 5 (acceptability, PAWS, the timestamps rule, the ACK check).
fn drop_counters(conn: &Connection) -> [u64; 5] {
    let c = conn.counters();
    [
        c.unacceptable_segments,
        c.paws_rejected,
        c.timestamps_missing,
        c.challenge_acks,
        c.challenge_acks_suppressed,
    ]
}

/// [`run`], returning what the run reached.
pub fn run_report(input: &Input) -> Report {
    let mut visited = Visited::default();
    // `OPS_TRACE=1`: print every step and the status after it (reproducing a failure).
    let trace = std::env::var_os("OPS_TRACE").is_some();
    let mut config = Config::with_fixed_isn(SeqNum::new(0xffff_ff00));
    config.send_buffer = SEND_BUFFER;
    config.recv_buffer = RECV_BUFFER;
    config.send_buffer_max = SEND_BUFFER_MAX;
    config.recv_buffer_max = RECV_BUFFER_MAX;
    if !input.delayed_ack {
        config.delayed_ack = None;
    }
    let mut now = Instant::from_millis(1);
    let mut conn = if input.passive {
        Connection::listen(config, now, LOCAL)
    } else {
        match Connection::connect(config, now, LOCAL, REMOTE) {
            Ok(conn) => conn,
            Err(error) => panic!("connect with valid addresses failed: {error:?}"),
        }
    };
    let mut model = State::Closed;
    drain_events(&mut conn, &mut model, Cause::OtherCall, History::default(), "open");
    let mut history = History::default();
    let mut out = vec![0u8; 65_536];
    // The header-only output form's buffer: 60 octets hold any TCP header.
    let mut header_buf = [0u8; 60];
    // `Op::Output`'s pattern, and the output polls so far.
    let (mut output_pattern, mut polls) = (0u16, 0u32);
    // Octets the application's SENDs handed over in this incarnation: the connection's data
    // segments carry exactly these, [`sent_octet`] at each offset.
    let mut sent: u32 = 0;
    let mut forms = FormCoverage::default();
    let mut expect = Expect::default();
    let mut receiver = PeerReceiver::default();
    let mut sack = SackCheck::new(input.peer_sack);
    // The SYN goes out before anything arrives.
    while let Ok(Some(transmit)) = conn.poll_transmit(now, &mut out) {
        let bytes = out.get(..transmit.len).unwrap_or(&[]);
        if let Ok(segment) = Segment::parse_checked(bytes, LOCAL.ip(), transmit.remote.ip()) {
            let context = Context {
                cause: Cause::OtherCall,
                before_state: State::SynSent,
                history: History::default(),
                incoming: None,
                rcv_shift: 0,
            };
            let snd_max = expect.snd_max.unwrap_or(segment.header.seq.get());
            expect.check_output(&segment, &context, "the opening SYN");
            let iss = expect.iss.unwrap_or(snd_max);
            sack.check_output(&segment, (iss, expect.irs), snd_max, "the opening SYN");
            receiver.on_sent(&segment, iss);
        }
    }
    let mut payload = vec![0u8; MAX_PAYLOAD];
    // (IRS of the stream, octets read from it).
    let mut stream: Option<(u32, u32)> = None;
    for (step, op) in input.ops.iter().take(MAX_OPS).enumerate() {
        let before = conn.status();
        let recoveries_before = conn.counters().sack_recoveries;
        let mut cause = Cause::OtherCall;
        let mut rejected = false;
        // The window the segment met (§3.10.7.4), for the rejection checks.
        let mut acceptance = before.rcv_wnd;
        let mut incoming: Option<Incoming> = None;
        // SEQ and ACK of a segment step, for failure reports.
        let mut numbers = None;
        match *op {
            Op::Segment(peer) => {
                let PeerSegment { window, urgent, .. } = peer;
                let seq =
                    anchor(&conn, &receiver, peer.seq).wrapping_add_signed(i32::from(peer.seq_off));
                let ack =
                    anchor(&conn, &receiver, peer.ack).wrapping_add_signed(i32::from(peer.ack_off));
                numbers = Some((seq, ack));
                let len = usize::from(peer.len) % MAX_PAYLOAD.saturating_add(1);
                let flags = Flags::from_bits(peer.flags);
                // SYN occupies the first sequence number; data follows it.
                let first = if flags.contains(Flags::SYN) { seq.wrapping_add(1) } else { seq };
                for (i, byte) in payload.iter_mut().take(len).enumerate() {
                    *byte = pattern(first.wrapping_add(i as u32));
                }
                let mut options = Options::NONE;
                options.mss = peer.mss;
                options.window_scale = peer.window_scale;
                options.sack_permitted = input.peer_sack && flags.contains(Flags::SYN);
                if input.peer_timestamps {
                    options.timestamps = Some(receiver.next_timestamps());
                }
                if let Some(spec) = peer.sack {
                    let raw = |block: &RawSackBlock| {
                        let left = anchor(&conn, &receiver, block.anchor)
                            .wrapping_add_signed(i32::from(block.offset));
                        SackBlock {
                            left: SeqNum::new(left),
                            right: SeqNum::new(left.wrapping_add_signed(i32::from(block.len))),
                        }
                    };
                    options.sack_blocks = receiver.blocks(spec.used(), ack, &options, raw);
                }
                let header = TcpHeader {
                    src_port: REMOTE.port(),
                    dst_port: LOCAL.port(),
                    seq: SeqNum::new(seq),
                    ack: SeqNum::new(ack),
                    flags,
                    window,
                    urgent_ptr: urgent,
                    options,
                };
                let mut bytes = vec![0u8; len + 80];
                let data = payload.get(..len).unwrap_or(&[]);
                let Ok(n) = header.emit(&[data], REMOTE.ip(), LOCAL.ip(), &mut bytes) else {
                    panic!("emit into a large enough buffer failed")
                };
                let built = bytes.get(..n).unwrap_or(&[]);
                let Ok(segment) = Segment::parse_checked(built, REMOTE.ip(), LOCAL.ip()) else {
                    panic!("a segment we built does not parse")
                };
                let our_fin_sent =
                    matches!(before.state, State::FinWait1 | State::Closing | State::LastAck);
                cause = Cause::Segment {
                    syn: flags.contains(Flags::SYN),
                    ack: flags.contains(Flags::ACK),
                    fin: flags.contains(Flags::FIN),
                    rst: flags.contains(Flags::RST),
                    data: len > 0,
                    acks_our_fin: flags.contains(Flags::ACK)
                        && our_fin_sent
                        && ack == before.snd_nxt.get(),
                    at_rcv_nxt: seq == before.rcv_nxt.get(),
                    acks_our_syn: flags.contains(Flags::ACK)
                        && before.snd_una.before(SeqNum::new(ack))
                        && SeqNum::new(ack).before_eq(before.snd_nxt),
                };
                let synchronized =
                    !matches!(before.state, State::Closed | State::Listen | State::SynSent);
                let (mut first_seq, mut seg_len) = (seq, segment.seg_len());
                let syn_ack = flags.contains(Flags::SYN) && flags.contains(Flags::ACK);
                if before.state == State::SynReceived && syn_ack && seq == before.irs.get() {
                    // Figure 8 (simultaneous open): the peer's SYN-ACK repeats its SYN at IRS
                    // and completes the handshake; its SYN octet is trimmed as old news.
                    first_seq = seq.wrapping_add(1);
                    seg_len -= 1;
                }
                acceptance = expect.acceptance_window(&before);
                rejected = synchronized
                    && !acceptable(first_seq, seg_len, before.rcv_nxt.get(), acceptance);
                incoming = Some(Incoming { flags, seq, ack, seg_len: segment.seg_len() });
                // An ACK the connection must take as progress (§3.10.7.4 step 5: acceptable,
                // no RST or SYN in the way, SND.UNA < SEG.ACK =< SND.NXT) restarts its
                // count of retransmissions; the model restarts its own only then.
                let syn_sent_syn_ack = before.state == State::SynSent
                    && flags.contains(Flags::SYN)
                    && flags.contains(Flags::ACK);
                let synchronized_ack =
                    (synchronized && !flags.contains(Flags::SYN)) || syn_sent_syn_ack;
                let advances = SeqNum::new(ack).after(before.snd_una)
                    && SeqNum::new(ack).before_eq(before.snd_nxt);
                if flags.contains(Flags::ACK)
                    && !flags.contains(Flags::RST)
                    && synchronized_ack
                    && !rejected
                    && advances
                {
                    expect.retransmission_ticks = 0;
                }
                if trace {
                    std::eprintln!("step {step}: the peer sends {segment}");
                }
                let drops = drop_counters(&conn);
                match peer.packet {
                    None => conn.handle_segment(now, REMOTE.ip(), &segment),
                    Some(extra) => {
                        forms.bytes_data_segments += u32::from(len > 0);
                        let mut packet = BytesMut::with_capacity(built.len() + usize::from(extra));
                        packet.extend_from_slice(built);
                        if let Err(error) =
                            conn.handle_segment_bytes(now, REMOTE.ip(), LOCAL.ip(), packet)
                        {
                            panic!(
                                "step {step}: handle_segment_bytes refused a valid segment: {error:?}"
                            )
                        }
                    }
                }
                // The blocks were certainly taken when §3.10.7.4 step 5 ran: an acceptable
                // ACK-only segment in a state with a send half, SND.UNA =< SEG.ACK =< SND.NXT,
                // and no drop counted.
                let ack_number = SeqNum::new(ack);
                let taken = flags.contains(Flags::ACK)
                    && !flags.contains(Flags::RST)
                    && !flags.contains(Flags::SYN)
                    && !rejected
                    && matches!(
                        before.state,
                        State::Established
                            | State::FinWait1
                            | State::FinWait2
                            | State::CloseWait
                            | State::Closing
                            | State::LastAck
                    )
                    && before.snd_una.before_eq(ack_number)
                    && ack_number.before_eq(before.snd_nxt)
                    && drop_counters(&conn) == drops;
                if flags.contains(Flags::ACK)
                    && let Some(iss) = expect.iss
                {
                    let blocks = segment.header.options.sack_blocks;
                    let window = (before.snd_una, before.snd_nxt);
                    sack.on_blocks_seen(iss, window, blocks.as_slice());
                }
                if taken && let Some(iss) = expect.iss {
                    let blocks = segment.header.options.sack_blocks;
                    let window = (before.snd_una, before.snd_nxt);
                    sack.on_blocks_taken(step, iss, window, ack_number, blocks.as_slice());
                }
                history.fin_seen |= flags.contains(Flags::FIN);
            }
            Op::Send(n, form) => {
                let data: Vec<u8> = (0..usize::from(n) % 5000)
                    .map(|i| sent_octet(sent.wrapping_add(i as u32)))
                    .collect();
                if let Ok(taken) = send_through(&mut conn, now, &data, form, step) {
                    sent = sent.wrapping_add(taken as u32);
                    let index = match form {
                        SendForm::Copy => 0,
                        SendForm::Bytes => 1,
                        SendForm::Chunks(_) => 2,
                    };
                    if let Some(count) = forms.sends.get_mut(index).filter(|_| taken > 0) {
                        *count += 1;
                    }
                }
            }
            Op::Recv(n, form) => {
                if let Ok(read) = read_through(&mut conn, usize::from(n) % 5000, form, step) {
                    let index = match form {
                        ReadForm::Copy => 0,
                        ReadForm::Chunk => 1,
                        ReadForm::Bytes => 2,
                        ReadForm::Chunks(_) => 3,
                    };
                    if let Some(count) = forms.reads.get_mut(index).filter(|_| !read.is_empty()) {
                        *count += 1;
                    }
                    let status = conn.status();
                    let irs = status.irs.get();
                    let (stream_irs, offset) = stream.get_or_insert((irs, 0));
                    if *stream_irs != irs {
                        *stream_irs = irs;
                        *offset = 0;
                    }
                    for (i, &byte) in read.iter().enumerate() {
                        let seq = irs.wrapping_add(1).wrapping_add(*offset).wrapping_add(i as u32);
                        assert_eq!(
                            byte,
                            pattern(seq),
                            "step {step} ({form:?}): delivered an octet the peer never sent"
                        );
                    }
                    *offset = offset.wrapping_add(read.len() as u32);
                    // Exactly once: nothing is read that RCV.NXT has not passed.
                    let received = status.rcv_nxt.get().wrapping_sub(irs.wrapping_add(1));
                    assert!(
                        *offset <= received,
                        "step {step} ({form:?}): {} octets read, RCV.NXT only {received} past \
                         IRS+1",
                        *offset
                    );
                }
            }
            Op::Close => {
                cause = Cause::Close { unread: before.recv_queued > 0 };
                history.close_called = true;
                history.full_close = true;
                let _ = conn.close(now);
            }
            Op::Shutdown => {
                cause = Cause::Close { unread: false };
                history.close_called = true;
                let _ = conn.shutdown(now);
            }
            Op::Abort => {
                cause = Cause::Abort;
                let _ = conn.abort(now);
            }
            Op::Tick(micros) => {
                cause = Cause::Tick;
                now += Duration::from_micros(u64::from(micros));
                conn.handle_timeout(now);
            }
            Op::NoDelay(on) => conn.set_nodelay(on),
            Op::Lose(pattern) => receiver.set_loss_pattern(pattern),
            Op::Arrive(n) => receiver.arrive(n),
            Op::Output(pattern) => output_pattern = pattern,
        }
        let what = match numbers {
            Some((seq, ack)) => {
                format!("step {step} ({op:?}, SEQ {seq}, ACK {ack}, before {before:?})")
            }
            None => format!("step {step} ({op:?}, before {before:?})"),
        };
        // The input's own state changes first (the model learns IRS from them), then what the
        // output changes.
        let had_irs = expect.irs.is_some();
        drain_events(&mut conn, &mut model, cause, history, &what);
        match expect.follow_state(before.state, model, incoming) {
            Incarnation::Opened => sack.on_opened(),
            Incarnation::Forgotten => {
                sack.reset();
                receiver.reset();
                sent = 0;
            }
            Incarnation::Same => {}
        }
        // The peer's FIN is in: its sequence number takes no buffer space, so the right edge
        // the connection accepts into moves one further (as RCV.NXT does over the FIN).
        let peer_finished = |state| {
            matches!(state, State::CloseWait | State::Closing | State::LastAck | State::TimeWait)
        };
        if !peer_finished(before.state) && peer_finished(model) {
            expect.adv_edge = expect.adv_edge.map(|edge| edge.wrapping_add(1));
        }
        if let (Some(irs), Some(incoming)) = (expect.irs, incoming)
            && !incoming.flags.contains(Flags::RST)
        {
            sack.on_peer_sent(irs, incoming.seq, incoming.seg_len);
        }
        // A retransmission timeout since the last step lets the connection forget SACKs.
        sack.on_timeouts(conn.counters().retransmission_timeouts);
        let now_status = conn.status();
        sack.on_send_window(now_status.snd_wnd, now_status.snd_una);
        if had_irs && let Some(incoming) = incoming {
            expect.predict_rcv_nxt(incoming, &before, history);
        }
        expect.saw_peer(incoming);
        let mut emitted = 0;
        let mut retransmitted = false;
        let rcv_shift = now_status.rcv_wscale.unwrap_or(0);
        loop {
            let bit = |n: u32| output_pattern >> (n % 16) & 1 == 1;
            let form = match (bit(polls), bit(polls.wrapping_add(5))) {
                (false, _) => OutputForm::Copy,
                (true, false) => OutputForm::Chunks,
                (true, true) => OutputForm::Borrowed,
            };
            polls = polls.wrapping_add(1);
            let transmit = match transmit_through(&mut conn, now, &mut out, &mut header_buf, form) {
                Ok(Some(transmit)) => transmit,
                Ok(None) => break,
                // The buffer holds any segment: an error is a segment that cannot be encoded.
                Err(error) => {
                    panic!("{what}: poll_transmit ({form:?}) failed: {error}")
                }
            };
            emitted += 1;
            assert!(emitted < 1000, "step {step}: unbounded output for one input");
            let bytes = out.get(..transmit.len).unwrap_or(&[]);
            let Ok(segment) = Segment::parse_checked(bytes, LOCAL.ip(), transmit.remote.ip())
            else {
                panic!("{what}: emitted a segment that does not parse")
            };
            if trace {
                std::eprintln!("step {step}: the connection sends {segment}");
            }
            let context =
                Context { cause, before_state: before.state, history, incoming, rcv_shift };
            let snd_max = expect.snd_max.unwrap_or(segment.header.seq.get());
            retransmitted |= expect.check_output(&segment, &context, &what);
            if !segment.payload.is_empty() {
                match form {
                    OutputForm::Copy => {}
                    OutputForm::Chunks => forms.chunked_data_segments += 1,
                    OutputForm::Borrowed => forms.borrowed_data_segments += 1,
                }
            }
            if let Some(iss) = expect.iss.filter(|_| !segment.header.flags.contains(Flags::RST)) {
                check_payload(&segment, iss, sent, &what);
            }
            if !segment.header.flags.contains(Flags::RST)
                && let Some(iss) = expect.iss
            {
                sack.check_output(&segment, (iss, expect.irs), snd_max, &what);
                receiver.on_sent(&segment, iss);
            }
        }
        // RFC 6675 §5 (4.3): entering recovery resends the first segment presumed lost at
        // once (a connection the same segment reset, SHLD-3, sends nothing more; one that
        // may hold SND.UNA SACKed has nothing presumed lost there).
        let una_sacked =
            expect.iss.is_some_and(|iss| sack.may_hold_una_sacked(iss, now_status.snd_una));
        let entered = conn.counters().sack_recoveries != recoveries_before
            && conn.state() != State::Closed
            && !una_sacked;
        assert!(
            !entered || retransmitted,
            "{what}: entered SACK recovery without resending anything (RFC 6675 §5 (4.3): \
             retransmit the first data segment presumed dropped)"
        );
        if cause == Cause::Tick && retransmitted {
            expect.retransmission_ticks = expect.retransmission_ticks.saturating_add(1);
        }
        drain_events(&mut conn, &mut model, cause, history, &what);
        expect.check_ending(&conn, before.state, cause, history, &what);
        let s = conn.status();
        if trace {
            std::eprintln!("{what}\n  -> {s:?}");
        }
        assert_eq!(model, s.state, "{what}: the state changed without an event");
        visited.add(s.state);
        if rejected {
            // §3.10.7.4: an unacceptable segment is answered with an ACK and dropped.
            assert_eq!(s.rcv_nxt, before.rcv_nxt, "{what}: an unacceptable segment moved RCV.NXT");
            // MUST-66: with a zero window, a segment at RCV.NXT still has its ACK, URG and RST
            // processed.
            let zero_window_allowance = acceptance == 0;
            assert!(
                s.state == before.state || zero_window_allowance,
                "{what}: an unacceptable segment changed the state {:?} -> {:?}",
                before.state,
                s.state
            );
        }
        assert!(s.snd_una.before_eq(s.snd_nxt), "{what}: SND.UNA after SND.NXT: {s:?}");
        // Buffers only grow, within their ceilings, and hold no more than they are.
        assert!(s.send_queued <= s.send_buffer && s.recv_queued <= s.recv_buffer, "{what}: {s:?}");
        assert!(s.send_buffer <= SEND_BUFFER_MAX && s.recv_buffer <= RECV_BUFFER_MAX, "{what}");
        // Packets held as slices pin memory within the receive buffer, a sixteenth of it
        // beyond, and one segment's octets and metadata (`chunks`: what is pinned is counted
        // against the window and compacted when it gets out of proportion).
        forms.most_pinned = forms.most_pinned.max(s.recv_pinned);
        forms.compactions = forms.compactions.max(s.recv_compactions);
        let pinned_bound = s.recv_buffer + s.recv_buffer / 16 + MAX_PAYLOAD + PIECE_ALLOWANCE;
        assert!(
            s.recv_pinned <= pinned_bound,
            "{what}: {} octets pinned, more than the bound {pinned_bound}: {s:?}",
            s.recv_pinned
        );
        assert!(
            s.send_buffer >= before.send_buffer && s.recv_buffer >= before.recv_buffer,
            "{what}: a buffer shrank: {s:?}"
        );
        assert_eq!(conn.counters().illegal_transitions, 0, "{what}: the table refused a stimulus");
        let timed = !matches!(s.state, State::Closed | State::Listen | State::TimeWait);
        if timed && s.snd_una != s.snd_nxt {
            assert!(conn.poll_timeout().is_some(), "{what}: unacknowledged data, no timer: {s:?}");
        }
        if s.state == State::TimeWait {
            assert!(conn.poll_timeout().is_some(), "{what}: TIME-WAIT without its timer");
        }
        if let Some(iss) = expect.iss {
            sack.on_snd_una(iss, s.snd_una.get());
        }
    }
    let counters = conn.counters();
    let mut coverage = sack.coverage;
    coverage.recoveries = counters.sack_recoveries;
    coverage.loss_probes = counters.loss_probes;
    coverage.dsacks_received = counters.dsacks_received;
    Report { visited, sack: coverage, forms }
}

/// What a step did to the incarnation the model follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Incarnation {
    /// The peer's SYN synchronized the connection.
    Opened,
    /// The connection went back to LISTEN: everything learnt is forgotten.
    Forgotten,
    /// Neither.
    Same,
}

/// The segment a step delivered, as the output model needs it.
#[derive(Clone, Copy, Debug)]
struct Incoming {
    flags: Flags,
    seq: u32,
    ack: u32,
    seg_len: u32,
}

/// What an output segment is checked against.
#[derive(Clone, Copy, Debug)]
struct Context {
    cause: Cause,
    before_state: State,
    history: History,
    incoming: Option<Incoming>,
    /// Our window-scale shift (RFC 7323 §2.3; 0 unless both sides agreed), for the right
    /// edge a segment's window field advertises.
    rcv_shift: u8,
}

/// The output model: what every emitted segment's flags, SEQ and ACK must be, from what the
/// model itself saw cross — our first SYN (ISS), the peer's SYN that synchronized us (IRS),
/// the highest sequence numbers each side used — never from the connection's `status()`.
/// It also counts the ticks that retransmitted, since the last ACK that had to count as
/// progress, for the rule that a timeout needs R1 retransmissions (MUST-20).
#[derive(Clone, Copy, Debug, Default)]
struct Expect {
    iss: Option<u32>,
    irs: Option<u32>,
    /// SND.MAX: the end of the highest sequence space we sent.
    snd_max: Option<u32>,
    /// The ACK field of our last segment: RCV.NXT never moves left.
    last_ack: Option<u32>,
    /// How far past IRS+1 the peer's sequence space reached (its data and FIN).
    peer_span: u32,
    /// RCV.NXT, while the model can tell it exactly: from IRS+1, moved by segments whose fate
    /// §3.10.7.4 leaves no doubt about (in order, wholly inside the window, with an
    /// acceptable ACK). The first segment of any other kind (out of order, partly outside the
    /// window, data on a SYN, …) leaves only the bounds below for the rest of the incarnation.
    rcv_nxt: Option<u32>,
    /// The furthest right edge (ACK + window) our segments advertised since IRS was learnt,
    /// one further once the peer's FIN is in (the FIN takes no buffer space). The connection
    /// must take what arrives up to it even when its own window has since shrunk (SHLD-14),
    /// as it does when packets it holds as slices pin buffer memory: so a segment is judged
    /// against this edge, as well as the window `status()` reports, for the rejection checks.
    adv_edge: Option<u32>,
    retransmission_ticks: u32,
}

/// R1 in the configuration [`run`] uses (the default, SHLD-10).
const R1: u32 = 3;

impl Expect {
    /// Checks one emitted segment; returns whether it retransmitted sequence space.
    fn check_output(&mut self, segment: &Segment<'_>, context: &Context, what: &str) -> bool {
        let header = &segment.header;
        let (flags, seq, ack) = (header.flags, header.seq.get(), header.ack.get());
        if flags.contains(Flags::RST) {
            self.check_reset(flags, seq, ack, context, what);
            return false;
        }
        let seg_len = segment.seg_len();
        if flags.contains(Flags::SYN) {
            // Our SYN and every repeat of it carry ISS (§3.4: the SYN occupies ISS).
            let iss = *self.iss.get_or_insert(seq);
            assert_eq!(seq, iss, "{what}: a SYN at {seq}, but ISS is {iss}");
        }
        let Some(iss) = self.iss else { panic!("{what}: a {flags} segment before any SYN") };
        match self.irs {
            // Before the peer's SYN is in, only our SYN may go, without ACK (§3.10.7.3).
            None => assert!(
                flags == Flags::SYN,
                "{what}: {flags} segment before the peer's SYN is known"
            ),
            Some(irs) => {
                // Every segment after the peer's SYN carries ACK = RCV.NXT (§3.10.7.4), which
                // lies between IRS+1 and the end of what the peer sent, and never moves left.
                assert!(flags.contains(Flags::ACK), "{what}: {flags} segment without ACK");
                let floor = irs.wrapping_add(1);
                let top = floor.wrapping_add(self.peer_span);
                assert!(
                    ack.wrapping_sub(floor) <= self.peer_span,
                    "{what}: ACK {ack} outside IRS+1 = {floor} ..= {top}, the octets the peer \
                     sent"
                );
                if let Some(rcv_nxt) = self.rcv_nxt {
                    assert_eq!(ack, rcv_nxt, "{what}: ACK {ack}, but RCV.NXT is {rcv_nxt}");
                }
                if let Some(last) = self.last_ack {
                    assert!(
                        SeqNum::new(ack).after_eq(SeqNum::new(last)),
                        "{what}: ACK {ack} moved left of the ACK {last} sent before"
                    );
                }
                self.last_ack = Some(ack);
                // A SYN's window is never scaled (RFC 7323 §2.2).
                let shift = if flags.contains(Flags::SYN) { 0 } else { context.rcv_shift };
                let edge = ack.wrapping_add(u32::from(header.window) << shift);
                if self.adv_edge.is_none_or(|known| SeqNum::new(edge).after(SeqNum::new(known))) {
                    self.adv_edge = Some(edge);
                }
            }
        }
        // SEQ: within our sequence space, never past the highest octet sent (no gap); a
        // keep-alive sits one below SND.NXT.
        let snd_max = self.snd_max.unwrap_or(iss);
        let from_iss = seq.wrapping_sub(iss);
        assert!(
            from_iss <= snd_max.wrapping_sub(iss),
            "{what}: SEQ {seq} beyond SND.MAX {snd_max} (ISS {iss})"
        );
        let end = seq.wrapping_add(seg_len);
        let retransmits = seg_len > 0 && SeqNum::new(seq).before(SeqNum::new(snd_max));
        if self.snd_max.is_none() || SeqNum::new(end).after(SeqNum::new(snd_max)) {
            self.snd_max = Some(end);
        }
        retransmits
    }

    /// A RST goes only where RFC 9293 sends one, with the fields it names (§3.10.7.1–4,
    /// §3.10.5 ABORT, SHLD-3).
    fn check_reset(&self, flags: Flags, seq: u32, ack: u32, context: &Context, what: &str) {
        use State::{
            CloseWait, Closed, Established, FinWait1, FinWait2, Listen, SynReceived, SynSent,
        };
        let snd_max = self.snd_max.unwrap_or(0);
        // ABORT, or CLOSE with unread data (SHLD-3), where the peer knows us: <SEQ=SND.NXT>.
        let aborting = match context.cause {
            Cause::Abort => true,
            Cause::Close { unread } => unread,
            Cause::Segment { data, .. } => data && context.history.full_close,
            Cause::OtherCall | Cause::Tick => false,
        };
        let knows_us = matches!(
            context.before_state,
            SynReceived | Established | FinWait1 | FinWait2 | CloseWait
        );
        if aborting && knows_us && flags == Flags::RST && seq == snd_max {
            return;
        }
        let Some(incoming) =
            context.incoming.filter(|_| matches!(context.cause, Cause::Segment { .. }))
        else {
            panic!("{what}: a RST ({flags} SEQ {seq}) no RFC rule sends here")
        };
        assert!(!incoming.flags.contains(Flags::RST), "{what}: a RST answered a RST");
        if incoming.flags.contains(Flags::ACK) {
            // CLOSED, an ACK in LISTEN, an unacceptable ACK in SYN-SENT or SYN-RECEIVED:
            // <SEQ=SEG.ACK><CTL=RST>.
            let state_answers =
                matches!(context.before_state, Closed | Listen | SynSent | SynReceived);
            assert!(
                state_answers && flags == Flags::RST && seq == incoming.ack,
                "{what}: RST {flags} SEQ {seq} where only <SEQ=SEG.ACK={}><CTL=RST> may go",
                incoming.ack
            );
        } else {
            // CLOSED: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
            let expected_ack = incoming.seq.wrapping_add(incoming.seg_len);
            assert!(
                context.before_state == Closed
                    && flags == Flags::RST | Flags::ACK
                    && seq == 0
                    && ack == expected_ack,
                "{what}: RST {flags} SEQ {seq} ACK {ack} where only CLOSED answers \
                 <SEQ=0><ACK={expected_ack}><CTL=RST,ACK>"
            );
        }
    }

    /// The window a segment is accepted into (§3.10.7.4 step 1): the window `before` reports,
    /// or as far as the furthest edge advertised, if that reaches further.
    fn acceptance_window(&self, before: &Status) -> u32 {
        let rcv_nxt = before.rcv_nxt.get();
        let advertised = self
            .adv_edge
            .filter(|&edge| SeqNum::new(edge).after(SeqNum::new(rcv_nxt)))
            .map_or(0, |edge| edge.wrapping_sub(rcv_nxt));
        before.rcv_wnd.max(advertised)
    }

    /// Notes how far the peer's sequence space reaches (once IRS is known; RSTs carry none).
    fn saw_peer(&mut self, incoming: Option<Incoming>) {
        let (Some(irs), Some(incoming)) = (self.irs, incoming) else { return };
        if incoming.flags.contains(Flags::RST) {
            return;
        }
        let span = incoming.seq.wrapping_add(incoming.seg_len).wrapping_sub(irs.wrapping_add(1));
        // Ahead of IRS+1 by less than half the space: anything else lies behind it.
        if span < 1 << 31 {
            self.peer_span = self.peer_span.max(span);
        }
    }

    /// Moves the exact RCV.NXT for a segment that arrived after IRS was known, or gives the
    /// exact value up when the segment's fate is not certain from the RFC alone.
    fn predict_rcv_nxt(&mut self, incoming: Incoming, before: &Status, history: History) {
        let Some(rcv_nxt) = self.rcv_nxt else { return };
        let flags = incoming.flags;
        let fin = flags.contains(Flags::FIN);
        let data_len = incoming.seg_len.saturating_sub(u32::from(fin));
        let end = incoming.seq.wrapping_add(incoming.seg_len);
        // Nothing to move RCV.NXT: no text and no FIN; a RST (step 2 ends the processing
        // before the text); a bare SYN (challenge ACK, or the repeat of the handshake); or
        // only octets already received (a duplicate).
        let old = SeqNum::new(end).before_eq(SeqNum::new(rcv_nxt));
        let bare_syn = flags.contains(Flags::SYN) && incoming.seg_len == 1;
        if flags.contains(Flags::RST) || bare_syn || incoming.seg_len == 0 || old {
            return;
        }
        // In order, wholly inside the free window, with an ACK §3.10.7.4 step 5 must take
        // (SND.UNA =< SEG.ACK =< SND.NXT), in a state that takes text, from an application
        // still reading: every octet goes in, and an in-order FIN after them.
        let ack = SeqNum::new(incoming.ack);
        let certain = !flags.contains(Flags::SYN)
            && incoming.seq == rcv_nxt
            && data_len <= before.rcv_wnd
            && flags.contains(Flags::ACK)
            && ack.after_eq(before.snd_una)
            && ack.before_eq(before.snd_nxt)
            && matches!(before.state, State::Established | State::FinWait1 | State::FinWait2)
            && !history.full_close;
        self.rcv_nxt = certain.then(|| rcv_nxt.wrapping_add(incoming.seg_len));
    }

    /// Learns IRS when the peer's SYN synchronized us, and forgets the incarnation when the
    /// connection goes back to LISTEN or ends.
    fn follow_state(
        &mut self,
        before: State,
        after: State,
        incoming: Option<Incoming>,
    ) -> Incarnation {
        // (A SYN-ACK may carry a FIN too: SYN-SENT then ends up in CLOSE-WAIT at once.)
        let opened = matches!(before, State::Listen | State::SynSent)
            && !matches!(after, State::Listen | State::SynSent | State::Closed);
        if after == State::Listen && before != State::Listen {
            *self = Self::default();
            return Incarnation::Forgotten;
        }
        if opened && let Some(incoming) = incoming {
            self.irs = Some(incoming.seq);
            self.adv_edge = None;
            // A SYN alone: RCV.NXT = IRS+1. Data or a FIN on it: the model does not follow.
            self.rcv_nxt = (incoming.seg_len == 1).then(|| incoming.seq.wrapping_add(1));
            return Incarnation::Opened;
        }
        Incarnation::Same
    }

    /// A connection that timed out must have retransmitted R1 times since its last progress
    /// (MUST-20); only FIN-WAIT-2 after a full CLOSE may time out without (its own timer).
    fn check_ending(
        &self,
        conn: &Connection,
        before: State,
        cause: Cause,
        history: History,
        what: &str,
    ) {
        let timed_out = conn.state() == State::Closed
            && before != State::Closed
            && conn.close_reason()
                == Some(crate::event::CloseReason::Error(crate::event::ConnectionError::TimedOut));
        if !timed_out {
            return;
        }
        assert_eq!(cause, Cause::Tick, "{what}: timed out without time passing");
        let fin_wait_2_timer = before == State::FinWait2 && history.full_close;
        assert!(
            fin_wait_2_timer || self.retransmission_ticks >= R1,
            "{what}: gave up in {before:?} after {} retransmitting timeouts, fewer than R1 = {R1} \
             (MUST-20)",
            self.retransmission_ticks
        );
    }
}

/// Follows the state through the events; each change must start where the model stands and
/// be one [`rfc_allows`] for `cause`.
fn drain_events(
    conn: &mut Connection,
    model: &mut State,
    cause: Cause,
    history: History,
    what: &str,
) {
    while let Some(event) = conn.poll_event() {
        if let Event::StateChanged { from, to } = event {
            assert_eq!(
                from, *model,
                "{what}: a change from {from:?}, but the model is in {model:?}"
            );
            let opening = matches!((from, to), (State::Closed, State::Listen | State::SynSent))
                && what == "open";
            assert!(
                opening || rfc_allows(from, to, cause, history),
                "{what}: {from:?} -> {to:?} is no transition RFC 9293 allows for {cause:?} \
                 ({history:?})"
            );
            *model = to;
        }
    }
}

// ------------------------------------------------------------------ seeds

/// `input` as the bytes `Input::arbitrary_take_rest` reads back (arbitrary 1.x's format:
/// little-endian integers, a `u32` per enum variant scaled by multiply-and-shift, a byte per
/// `bool` and per `Option` tag, and the last field's list as elements each preceded by a
/// "one more" byte, running to the end). Lets seeds be
/// written from structured runs; `tests/fuzz_seeds.rs` checks the round trip.
pub fn encode(input: &Input) -> Vec<u8> {
    fn variant(out: &mut Vec<u8>, index: u64, count: u64) {
        // The smallest v with (v * count) >> 32 == index.
        let v = (index << 32).div_ceil(count);
        out.extend_from_slice(&u32::try_from(v).unwrap_or(u32::MAX).to_le_bytes());
    }
    fn anchor(out: &mut Vec<u8>, anchor: Anchor) {
        let (index, raw) = match anchor {
            Anchor::RcvNxt => (0, None),
            Anchor::RcvWndEnd => (1, None),
            Anchor::Irs => (2, None),
            Anchor::SndUna => (3, None),
            Anchor::SndNxt => (4, None),
            Anchor::Iss => (5, None),
            Anchor::Raw(raw) => (6, Some(raw)),
            Anchor::Held => (7, None),
        };
        variant(out, index, 8);
        if let Some(raw) = raw {
            out.extend_from_slice(&raw.to_le_bytes());
        }
    }
    fn sack(out: &mut Vec<u8>, spec: &SackSpec) {
        out.push(spec.count);
        for block in spec.blocks {
            match block {
                SackBlockSpec::Held(n) => {
                    variant(out, 0, 3);
                    out.push(n);
                }
                SackBlockSpec::Duplicate => variant(out, 1, 3),
                SackBlockSpec::Raw(raw) => {
                    variant(out, 2, 3);
                    anchor(out, raw.anchor);
                    out.extend_from_slice(&raw.offset.to_le_bytes());
                    out.extend_from_slice(&raw.len.to_le_bytes());
                }
            }
        }
    }
    fn send_form(out: &mut Vec<u8>, form: SendForm) {
        match form {
            SendForm::Copy => variant(out, 0, 3),
            SendForm::Bytes => variant(out, 1, 3),
            SendForm::Chunks(n) => {
                variant(out, 2, 3);
                out.push(n);
            }
        }
    }
    fn read_form(out: &mut Vec<u8>, form: ReadForm) {
        match form {
            ReadForm::Copy => variant(out, 0, 4),
            ReadForm::Chunk => variant(out, 1, 4),
            ReadForm::Bytes => variant(out, 2, 4),
            ReadForm::Chunks(n) => {
                variant(out, 3, 4);
                out.push(n);
            }
        }
    }
    const OPS: u64 = 11;
    let mut out = vec![
        u8::from(input.passive),
        u8::from(input.delayed_ack),
        u8::from(input.peer_sack),
        u8::from(input.peer_timestamps),
    ];
    for op in &input.ops {
        // "One more element."
        out.push(1);
        match *op {
            Op::Segment(peer) => {
                variant(&mut out, 0, OPS);
                out.push(peer.flags);
                anchor(&mut out, peer.seq);
                out.extend_from_slice(&peer.seq_off.to_le_bytes());
                anchor(&mut out, peer.ack);
                out.extend_from_slice(&peer.ack_off.to_le_bytes());
                for field in [peer.window, peer.len, peer.urgent] {
                    out.extend_from_slice(&field.to_le_bytes());
                }
                out.push(u8::from(peer.mss.is_some()));
                if let Some(mss) = peer.mss {
                    out.extend_from_slice(&mss.to_le_bytes());
                }
                out.push(u8::from(peer.window_scale.is_some()));
                if let Some(shift) = peer.window_scale {
                    out.push(shift);
                }
                out.push(u8::from(peer.sack.is_some()));
                if let Some(spec) = &peer.sack {
                    sack(&mut out, spec);
                }
                out.push(u8::from(peer.packet.is_some()));
                if let Some(extra) = peer.packet {
                    out.extend_from_slice(&extra.to_le_bytes());
                }
            }
            Op::Send(n, form) => {
                variant(&mut out, 1, OPS);
                out.extend_from_slice(&n.to_le_bytes());
                send_form(&mut out, form);
            }
            Op::Recv(n, form) => {
                variant(&mut out, 2, OPS);
                out.extend_from_slice(&n.to_le_bytes());
                read_form(&mut out, form);
            }
            Op::Close => variant(&mut out, 3, OPS),
            Op::Shutdown => variant(&mut out, 4, OPS),
            Op::Abort => variant(&mut out, 5, OPS),
            Op::Tick(micros) => {
                variant(&mut out, 6, OPS);
                out.extend_from_slice(&micros.to_le_bytes());
            }
            Op::NoDelay(on) => {
                variant(&mut out, 7, OPS);
                out.push(u8::from(on));
            }
            Op::Lose(pattern) => {
                variant(&mut out, 8, OPS);
                out.extend_from_slice(&pattern.to_le_bytes());
            }
            Op::Arrive(n) => {
                variant(&mut out, 9, OPS);
                out.push(n);
            }
            Op::Output(pattern) => {
                variant(&mut out, 10, OPS);
                out.extend_from_slice(&pattern.to_le_bytes());
            }
        }
    }
    out
}

/// A dialogue run in the simulator ([`super::Pair`]): side A is configured exactly as [`run`]
/// configures its connection, side B is the peer.
pub struct Capture {
    /// What the dialogue shows.
    pub name: &'static str,
    /// A's side of it as operations: B's segments (anchored on A's ISS and B's ISS, as [`run`]
    /// sees them), A's calls and the clock.
    pub input: Input,
    /// Every segment that crossed, either way, as TCP bytes (header and payload).
    pub segments: Vec<Vec<u8>>,
}

/// The simulator's dialogues, captured as seeds: handshakes both ways, data both ways, each
/// close order, a simultaneous close and a reset.
pub fn simulated_dialogues() -> Vec<Capture> {
    use alloc::rc::Rc;
    use core::cell::RefCell;

    use super::{Direction, Pair, Verdict};

    const PEER_ISS: u32 = 7_654_321;
    const OUR_ISS: u32 = 0xffff_ff00;
    #[derive(Clone, Copy)]
    enum Step {
        Send(u16),
        Recv,
        Close,
        Shutdown,
        Abort,
        PeerSend(u16),
        PeerClose,
        PeerAbort,
        /// Both close before either FIN crosses.
        CloseTogether,
        WaitOut,
    }
    let dialogues: [(&'static str, bool, &[Step]); 6] = [
        (
            "active-data-we-close-first",
            false,
            &[
                Step::Send(100),
                Step::PeerSend(200),
                Step::Recv,
                Step::Close,
                Step::PeerClose,
                Step::WaitOut,
            ],
        ),
        (
            "active-peer-closes-first",
            false,
            &[Step::PeerSend(50), Step::Recv, Step::PeerClose, Step::Recv, Step::Close],
        ),
        (
            "passive-data-both-ways",
            true,
            &[
                Step::PeerSend(300),
                Step::Recv,
                Step::Send(1000),
                Step::Shutdown,
                Step::PeerClose,
                Step::Recv,
                Step::WaitOut,
            ],
        ),
        ("passive-simultaneous-close", true, &[Step::Send(20), Step::CloseTogether, Step::WaitOut]),
        ("active-peer-resets", false, &[Step::Send(30), Step::PeerAbort]),
        ("active-we-abort", false, &[Step::PeerSend(10), Step::Abort]),
    ];
    let mut captures = Vec::new();
    for (name, passive, steps) in dialogues {
        let mut ours = Config::with_fixed_isn(SeqNum::new(OUR_ISS));
        ours.send_buffer = SEND_BUFFER;
        ours.recv_buffer = RECV_BUFFER;
        ours.delayed_ack = None;
        let mut theirs = Config::with_fixed_isn(SeqNum::new(PEER_ISS));
        theirs.delayed_ack = None;
        // Buffers at their set sizes (auto-tuning off), so the captured segments — the
        // committed seeds — stay as they were.
        (ours.recv_buffer_max, ours.send_buffer_max) = (0, 0);
        (theirs.recv_buffer_max, theirs.send_buffer_max) = (0, 0);
        let now = Instant::from_millis(1);
        let (a, b) = if passive {
            (
                Ok(Connection::listen(ours, now, LOCAL)),
                Connection::connect(theirs, now, REMOTE, LOCAL),
            )
        } else {
            (
                Connection::connect(ours, now, LOCAL, REMOTE),
                Ok(Connection::listen(theirs, now, REMOTE)),
            )
        };
        // Addresses of one family: opening cannot fail.
        let (Ok(a), Ok(b)) = (a, b) else { continue };
        let mut pair = Pair::new(a, b, now);
        let ops: Rc<RefCell<Vec<Op>>> = Rc::new(RefCell::new(Vec::new()));
        let segments: Rc<RefCell<Vec<Vec<u8>>>> = Rc::new(RefCell::new(Vec::new()));
        let (seen_ops, seen_segments) = (Rc::clone(&ops), Rc::clone(&segments));
        pair.set_filter(alloc::boxed::Box::new(move |direction, segment: &Segment<'_>| {
            let mut bytes = vec![0u8; segment.payload.len() + 80];
            if let Ok(len) = segment.emit(REMOTE.ip(), LOCAL.ip(), &mut bytes) {
                bytes.truncate(len);
                seen_segments.borrow_mut().push(bytes);
            }
            if direction == Direction::BToA {
                let h = &segment.header;
                let offset = |from: u32, to: u32| i16::try_from(to.wrapping_sub(from) as i32).ok();
                let seq = if h.flags.contains(Flags::SYN) {
                    (Anchor::Raw(h.seq.get()), 0)
                } else {
                    offset(PEER_ISS, h.seq.get())
                        .map_or((Anchor::Raw(h.seq.get()), 0), |off| (Anchor::Irs, off))
                };
                let ack = offset(OUR_ISS, h.ack.get())
                    .map_or((Anchor::Raw(h.ack.get()), 0), |off| (Anchor::Iss, off));
                seen_ops.borrow_mut().push(Op::Segment(PeerSegment {
                    flags: h.flags.bits(),
                    seq: seq.0,
                    seq_off: seq.1,
                    ack: ack.0,
                    ack_off: ack.1,
                    window: h.window,
                    len: u16::try_from(segment.payload.len()).unwrap_or(u16::MAX),
                    urgent: h.urgent_ptr,
                    mss: h.options.mss,
                    window_scale: h.options.window_scale,
                    sack: None,
                    packet: None,
                }));
            }
            Verdict::Deliver
        }));
        pair.run_until_idle();
        for &step in steps {
            let now = pair.now;
            match step {
                Step::Send(n) => {
                    ops.borrow_mut().push(Op::Send(n, SendForm::Copy));
                    let _ = pair.a.send(now, &vec![0x55; usize::from(n)]);
                }
                Step::Recv => {
                    ops.borrow_mut().push(Op::Recv(4096, ReadForm::Copy));
                    let _ = pair.read_a();
                }
                Step::Close => {
                    ops.borrow_mut().push(Op::Close);
                    let _ = pair.a.close(now);
                }
                Step::Shutdown => {
                    ops.borrow_mut().push(Op::Shutdown);
                    let _ = pair.a.shutdown(now);
                }
                Step::Abort => {
                    ops.borrow_mut().push(Op::Abort);
                    let _ = pair.a.abort(now);
                }
                Step::PeerSend(n) => {
                    let _ = pair.b.send(now, &vec![0x66; usize::from(n)]);
                }
                Step::PeerClose => {
                    let _ = pair.read_b();
                    let _ = pair.b.close(now);
                }
                Step::PeerAbort => {
                    let _ = pair.b.abort(now);
                }
                Step::CloseTogether => {
                    ops.borrow_mut().push(Op::Close);
                    let _ = pair.read_b();
                    let _ = pair.a.close(now);
                    let _ = pair.b.close(now);
                }
                Step::WaitOut => {
                    let before = pair.now;
                    while pair.advance_to_next_deadline() {
                        pair.run_until_idle();
                        if pair.now.saturating_duration_since(before) > Duration::from_secs(600) {
                            break;
                        }
                    }
                    let waited = pair.now.saturating_duration_since(before).as_micros();
                    ops.borrow_mut().push(Op::Tick(u32::try_from(waited).unwrap_or(u32::MAX)));
                }
            }
            pair.run_until_idle();
        }
        pair.clear_filter();
        // B offers SACK-permitted and timestamps, as every tcp-proto connection does by
        // default; the replay's peer does too.
        let input = Input {
            passive,
            delayed_ack: false,
            peer_sack: true,
            peer_timestamps: true,
            ops: ops.borrow().clone(),
        };
        let segments = segments.borrow().clone();
        captures.push(Capture { name, input, segments });
    }
    captures
}
