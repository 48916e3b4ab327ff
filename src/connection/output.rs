//! Segment output: what the connection sends next, written straight from the send queue into
//! the caller's buffer (the one copy on the way out), or as its header alone with the payload
//! handed out as slices of the queued chunks (no copy, `poll_transmit_chunks`).
//!
//! Priority: a control reply (RST) owed to someone, then a retransmission from SND.UNA (RFC 6298
//! rule 5.4), then the rest of a flight resent from a cursor within cwnd (go-back-N after an RTO
//! without SACK or at a smaller path MTU, `path_mtu`), then new SYN / data / FIN inside the
//! peer's window, then a zero-window probe, then a bare ACK. A segment that carries data or a
//! FIN also carries the pending ACK, so ACKs are aggregated (MUST-58).

use core::fmt;
use core::net::{IpAddr, SocketAddr};

use super::send_queue::Pieces;
use super::{Connection, Controller, Payload, Reply, Timer, Transmit, TransmitError, len_u32};
use crate::congestion::{CongestionControl, CongestionEvent};
use crate::seq::{Mss, SeqNum, Window, WindowScale};
use crate::state::State;
use crate::time::Instant;
use crate::wire::checksum::{Checksum, TxChecksum};
use crate::wire::{Flags, LeanHeader, OptionArea, OptionWords, Options, TcpHeader};

/// Where a segment is written: whole into `buf`; or (with `payload`) its header into `buf` and
/// its payload as slices of the send queue into `payload`; or (`borrow`) its header into `buf`
/// and its payload's place in the send queue into `range`, for the caller to lend out.
pub(crate) struct Out<'a> {
    pub(crate) buf: &'a mut [u8],
    pub(crate) payload: Option<&'a mut Payload>,
    /// The window field of the segment written, unless it was a SYN's (unscaled, RFC 7323
    /// §2.2): what `on_ack_sent` records as advertised, without computing it a second time.
    pub(crate) window_field: Option<u16>,
    /// The most wire segments one output may describe (a super-segment, `poll_transmit_gso`);
    /// 1 for an ordinary segment.
    pub(crate) max_segments: usize,
    /// The data segment just written, noted only while building a super-segment.
    emitted: Option<Emitted>,
    /// Wire segments a super-segment describes; 0 for an ordinary segment (one) or none.
    pub(crate) pieces: usize,
    /// Payload octets per wire segment of a super-segment (see [`TransmitChunks`]).
    pub(crate) segment_size: usize,
    /// Write only the header into `buf` and note the payload's place in the send queue in
    /// `range`, for the caller to lend out (`poll_transmit_borrowed`); with `payload` unset.
    pub(crate) borrow: bool,
    /// The payload of the segment written, as an offset into the send queue and a length
    /// (the length 0 for a segment without data).
    pub(crate) range: (usize, usize),
}

/// A data segment as written, for the super-segment builder to decide whether the next one
/// may join it.
#[derive(Clone, Copy, Debug)]
struct Emitted {
    header: TcpHeader,
    data_offset: usize,
    data_len: usize,
    full: usize,
    /// Which of `next_segment`'s branches sent it: runs of new data and runs of segments
    /// deemed lost are batched, each with more of its own kind.
    kind: Kind,
}

/// What a data segment was, for batching.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Anything never batched: a SYN, a retransmission from SND.UNA, a path-MTU resend, a
    /// probe.
    Other,
    /// New data (`Purpose::New`).
    New,
    /// A segment deemed lost, resent in SACK recovery (RFC 6675 NextSeg rule (1)).
    Lost,
}

impl<'a> Out<'a> {
    /// Writes into `buf`, the payload too unless `payload` takes it as slices.
    pub(crate) const fn new(buf: &'a mut [u8], payload: Option<&'a mut Payload>) -> Self {
        Self {
            buf,
            payload,
            window_field: None,
            max_segments: 1,
            emitted: None,
            pieces: 0,
            segment_size: 0,
            borrow: false,
            range: (0, 0),
        }
    }

    /// Writes only the header into `buf` and notes where the payload lies in the send queue
    /// (`range`), for the caller to lend it out (`poll_transmit_borrowed`).
    pub(crate) const fn lending(buf: &'a mut [u8]) -> Self {
        let mut out = Self::new(buf, None);
        out.borrow = true;
        out
    }

    /// Whether the data segment written is noted for the super-segment builder.
    const fn notes_segments(&self) -> bool {
        self.max_segments > 1
    }

    /// Notes the window field of the header about to be written.
    fn note_window(&mut self, header: &TcpHeader) {
        self.window_field = (!header.flags.contains(Flags::SYN)).then_some(header.window);
    }
}

/// One segment from [`Connection::poll_transmit_chunks`] or a super-segment from
/// [`Connection::poll_transmit_gso`]: its header is in the caller's buffer, its payload in
/// `payload`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct TransmitChunks {
    /// Where the segment goes; `transmit.len` is the whole segment (header and payload).
    pub transmit: Transmit,
    /// Octets of TCP header written at the start of the caller's buffer.
    pub header_len: usize,
    /// The payload, to be sent right after the header; empty for a segment without data.
    pub payload: Payload,
    /// Payload octets per wire segment. For an ordinary segment it is `payload.len()` (0
    /// for a segment without data), and the segment goes on the wire as it is. When
    /// `payload.len() > segment_size` this is a super-segment (only from `poll_transmit_gso`):
    /// the wire segments are the payload cut into pieces of `segment_size` octets (the last
    /// may be shorter), each after a copy of the header with the sequence number advanced by
    /// the piece's offset, PSH and FIN only on the last piece, CWR only on the first, and the
    /// checksum computed per piece — what Linux GSO/TSO does (`gso_size` = `segment_size`),
    /// and what [`crate::wire::gso::Segmenter`] does in software.
    pub segment_size: usize,
}

/// One segment from [`Connection::poll_transmit_borrowed`] or
/// [`crate::Endpoint::poll_transmit_borrowed`]: its header is in the caller's buffer, its
/// payload lent from the connection's send queue.
#[derive(Clone, Debug)]
#[must_use]
pub struct TransmitRef<'a> {
    /// Where the segment goes; `transmit.len` is the whole segment (header and payload).
    pub transmit: Transmit,
    /// Octets of TCP header written at the start of the caller's buffer.
    pub header_len: usize,
    /// The payload, to be sent right after the header; empty for a segment without data.
    pub payload: PayloadRef<'a>,
}

impl<'a> TransmitRef<'a> {
    pub(crate) fn new(transmit: Transmit, payload: PayloadRef<'a>) -> Self {
        Self { header_len: transmit.len - payload.len(), transmit, payload }
    }
}

/// A segment's payload lent from the send queue ([`TransmitRef`]): the octets in order, as
/// the parts of the queued chunks that hold them (an iterator; clone it to walk them again).
/// Its `Debug` shows the length only, never the queue it borrows.
#[derive(Clone)]
pub struct PayloadRef<'a> {
    pieces: Pieces<'a>,
    len: usize,
}

impl PayloadRef<'_> {
    /// No payload.
    pub(crate) const fn empty() -> Self {
        Self { pieces: Pieces::EMPTY, len: 0 }
    }

    /// Octets of payload.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether the segment carries no data.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Debug for PayloadRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PayloadRef").field("len", &self.len).finish_non_exhaustive()
    }
}

impl<'a> Iterator for PayloadRef<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        self.pieces.next()
    }
}

/// The shape of one outgoing segment in the sequence space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Plan {
    seq: SeqNum,
    syn: bool,
    /// Offset of the first payload octet in the send buffer.
    data_offset: usize,
    data_len: usize,
    fin: bool,
    /// The payload of a full-sized segment when planned (the effective MSS less the SACK
    /// option the segment carries): `on_sent_new` tells short segments by it without working
    /// it out again. 0 for a plan without data (a SYN, a FIN alone).
    full: usize,
}

impl Plan {
    /// SEG.LEN of the planned segment.
    fn seg_len(&self) -> u32 {
        len_u32(self.data_len) + u32::from(self.syn) + u32::from(self.fin)
    }
}

/// Whether a plan is new data (bounded by the window) or a retransmission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Purpose {
    New,
    Retransmit,
    Probe,
    /// A tail loss probe of new data (RFC 8985 §7.3): within the peer's window but not cwnd,
    /// and not held back by Nagle.
    LossProbe,
}

impl Connection {
    /// Writes the next segment to send into `buf` (TCP header + payload, checksummed) and says
    /// how long it is and where it goes; `Ok(None)` when there is nothing to send. Call it until
    /// it returns `Ok(None)` after every input. A buffer too small for the segment is an error
    /// and nothing is consumed (never a truncated segment).
    pub fn poll_transmit(
        &mut self,
        now: Instant,
        buf: &mut [u8],
    ) -> Result<Option<Transmit>, TransmitError> {
        self.poll_output(now, &mut Out::new(buf, None))
    }

    /// Like [`poll_transmit`](Self::poll_transmit), but without copying the payload: writes
    /// only the TCP header (options included) into `header_buf`, its checksum computed over
    /// the pseudo-header, the header and the payload, and hands the payload out as slices of
    /// the send queue (reference counts on the chunks queued by [`send`](Self::send),
    /// [`send_bytes`](Self::send_bytes) or [`write_chunks`](Self::write_chunks)), for the
    /// caller to write after the header as iovecs. The segment is the same one
    /// `poll_transmit` would have written, octet for octet. The two forms may be mixed freely.
    ///
    /// `header_buf` needs room for the header only (60 octets always suffice). In the result,
    /// `transmit.len` is the length of the whole segment and `header_len` the part written into
    /// `header_buf`.
    ///
    /// # Errors
    ///
    /// As `poll_transmit`: a `header_buf` too small for the header is an error and nothing is
    /// consumed.
    // Inlined into the caller, which takes the descriptor apart in its own frame: the
    // payload's 240 octets are then not copied out of here and again by the caller
    // (callgrind, `bulk_mtu1500_bytes`: 84 instructions a segment fewer).
    #[inline]
    pub fn poll_transmit_chunks(
        &mut self,
        now: Instant,
        header_buf: &mut [u8],
    ) -> Result<Option<TransmitChunks>, TransmitError> {
        let mut payload = Payload::default();
        let Some(transmit) =
            self.poll_output(now, &mut Out::new(header_buf, Some(&mut payload)))?
        else {
            return Ok(None);
        };
        // Built in the return slot, not in a closure: the payload (a few hundred octets) is
        // then moved once rather than twice.
        let segment_size = payload.len();
        let header_len = transmit.len - segment_size;
        Ok(Some(TransmitChunks { transmit, header_len, payload, segment_size }))
    }

    /// Like [`poll_transmit_chunks`](Self::poll_transmit_chunks), but the payload is lent
    /// rather than handed out: [`TransmitRef::payload`] borrows the send queue's octets
    /// until the connection is next used, so no chunk's reference count is touched (two
    /// atomic operations a segment fewer, and no descriptor to build and drop). For a caller
    /// that writes the segment out before its next call into the connection (a `writev`, a
    /// copy into a device's buffer); one that must keep the payload past that uses
    /// `poll_transmit_chunks`. The segment is octet for octet the one `poll_transmit` would
    /// have written; the forms may be mixed freely.
    ///
    /// # Errors
    ///
    /// As `poll_transmit_chunks`.
    #[inline]
    pub fn poll_transmit_borrowed(
        &mut self,
        now: Instant,
        header_buf: &mut [u8],
    ) -> Result<Option<TransmitRef<'_>>, TransmitError> {
        let mut out = Out::lending(header_buf);
        let Some(transmit) = self.poll_output(now, &mut out)? else {
            return Ok(None);
        };
        let (offset, len) = out.range;
        Ok(Some(TransmitRef::new(transmit, self.payload_ref(offset, len))))
    }

    /// The `len` octets `offset` into the send queue, lent out.
    pub(crate) fn payload_ref(&mut self, offset: usize, len: usize) -> PayloadRef<'_> {
        PayloadRef { pieces: self.send_buf.pieces(offset, len), len }
    }

    /// Like [`poll_transmit_chunks`](Self::poll_transmit_chunks), but may describe up to
    /// `max_segments` wire segments at once as one super-segment (TSO/GSO): a run of
    /// consecutive full-sized segments of new data, or of segments deemed lost and resent in
    /// SACK recovery (RFC 6675), the last of which may be short or carry PSH or FIN, all
    /// with the same header but for the sequence number. The caller, its
    /// kernel (TUN with a virtio-net header, UDP GSO) or its NIC cuts it into wire segments
    /// as [`TransmitChunks::segment_size`] describes; [`crate::wire::gso::Segmenter`] does it
    /// in software.
    ///
    /// The connection accounts for every wire segment as if each had been polled on its own
    /// at `now` through `poll_transmit_chunks`: congestion and peer windows, Nagle, the
    /// retransmission and loss-detection records, the SACK scoreboard, RTT sampling and the
    /// counters see N segments, and the wire segments are octet for octet those N calls
    /// would have produced. What is never batched: SYNs, the retransmission from SND.UNA
    /// after a timeout, loss probes, zero-window probes, RSTs, bare ACKs, urgent data,
    /// segments during a path-MTU (or go-back-N) resend, a segment whose SACK option differs
    /// from the first's (a one-off D-SACK block).
    ///
    /// A super-segment holds at most `max_segments` wire segments (0 and 1 both mean one, an
    /// ordinary segment), at most 65535 octets less the IP (20 for IPv4, 40 for IPv6) and TCP
    /// headers, and at most [`MAX_PAYLOAD_SLICES`](crate::connection::MAX_PAYLOAD_SLICES)
    /// payload slices; it is cut short before any of those limits.
    ///
    /// The header in `header_buf` is that of the first wire segment, with the PSH and FIN of
    /// the last. Its checksum field: for an ordinary segment, as `poll_transmit_chunks` fills
    /// it (per [`Config::checksum`](crate::Config::checksum)); for a super-segment, the
    /// folded pseudo-header sum over the whole super-segment's TCP length, not complemented
    /// (what Linux expects of a GSO packet with `CHECKSUM_PARTIAL`), or 0 with
    /// [`TxChecksum::None`] — never a full sum of a
    /// segment that does not go on the wire as it is.
    ///
    /// # Errors
    ///
    /// As `poll_transmit_chunks`: a `header_buf` too small for the header is an error and
    /// nothing is consumed.
    // Inlined into the caller, as `poll_transmit_chunks` is.
    #[inline]
    pub fn poll_transmit_gso(
        &mut self,
        now: Instant,
        header_buf: &mut [u8],
        max_segments: usize,
    ) -> Result<Option<TransmitChunks>, TransmitError> {
        let mut payload = Payload::default();
        let mut out = Out::new(header_buf, Some(&mut payload));
        out.max_segments = max_segments;
        let Some(transmit) = self.poll_output(now, &mut out)? else {
            return Ok(None);
        };
        let segment_size = if out.pieces > 1 { out.segment_size } else { payload.len() };
        let header_len = transmit.len - payload.len();
        Ok(Some(TransmitChunks { transmit, header_len, payload, segment_size }))
    }

    /// Adds to the data segment just written (`first`, described in `out`) the segments that
    /// follow it as long as they may form one super-segment with it. Each is sent as
    /// `poll_output` would send it — `next_segment`'s new-data branch and `poll_output`'s epilogue,
    /// every piece of accounting — but its header, which nobody sees, is not written. Then
    /// rewrites the header's flags and checksum field for the whole and the payload as slices
    /// of the whole. Infallible: the first segment is already sent. Kept out of
    /// `poll_output`: inlined there, it would cost every ordinary segment a larger frame.
    #[inline(never)]
    fn extend_super_segment(
        &mut self,
        now: Instant,
        out: &mut Out<'_>,
        first: Transmit,
    ) -> Transmit {
        let Some(start) = out.emitted.take().filter(|emitted| {
            emitted.kind != Kind::Other
                && emitted.data_len == emitted.full
                && emitted.header.flags == Flags::ACK
        }) else {
            return first;
        };
        let header_len = first.len - start.data_len;
        let ip_header_len = if first.remote.is_ipv4() { 20 } else { 40 };
        // 65535 octets of IP packet, and no more payload slices than a `Payload` holds.
        let limit = 65_535usize
            .saturating_sub(ip_header_len + header_len)
            .min(self.send_buf.slices_reach(start.data_offset, super::MAX_PAYLOAD_SLICES));
        let mut total = start.data_len;
        let mut pieces = 1;
        let mut last_flags = Flags::ACK;
        // At most half of cwnd in one super-segment, so that a window goes as two or more:
        // RACK finds a loss only from the delivery of something sent after it (RFC 8985
        // §6.2), and a GRO receiver answers a super-segment with one ACK. A window sent whole
        // as one super-segment made every dropped super-packet, and every lost ACK, a tail
        // loss (§7.1) — a probe at best, the RTO when the probe or its answer was lost too.
        let mss = usize::from(self.effective_mss()).max(1);
        let half_window = (self.cwnd() as usize / mss / 2).max(1);
        let max_segments = out.max_segments.min(half_window);
        while pieces < max_segments {
            if pieces >= 2 && start.kind == Kind::New && last_flags == Flags::ACK {
                // The second piece went the whole way below: what it settled (the advertised
                // edge, the D-SACK sent, the timers armed, the scoreboard made) holds for the
                // rest, so a run of full pieces is accounted in one step.
                let room = max_segments - pieces;
                let octets_left = limit - total;
                let run = self.extend_full_run(now, start.full, room, octets_left);
                if run > 0 {
                    total += run * start.full;
                    pieces += run;
                    continue;
                }
            }
            let next_seq = start.header.seq + len_u32(total);
            let Some((plan, header)) = self.super_segment_continues(&start, next_seq) else {
                break;
            };
            if total + plan.data_len > limit {
                break;
            }
            // What `poll_output` does for this segment (time stands still: same `now`; not idle,
            // so no restart): `next_segment`'s new-data or lost-segment branch, then its
            // epilogue.
            if start.kind == Kind::New {
                self.on_sent_new(now, plan, Purpose::New);
            } else {
                self.ack_pending = false;
                self.on_resent(now, plan);
            }
            self.note_send_limit();
            self.on_ack_sent(Some(header.window));
            self.arm_keepalive();
            total += plan.data_len;
            pieces += 1;
            last_flags = header.flags;
            if plan.data_len != plan.full || header.flags != Flags::ACK {
                break;
            }
        }
        if pieces == 1 {
            return first;
        }
        if let Some(payload) = out.payload.as_deref_mut() {
            self.send_buf.slices(start.data_offset, total, payload);
        }
        let tcp_len = header_len + total;
        let field = match self.config.checksum.tx {
            TxChecksum::None => 0,
            TxChecksum::Compute | TxChecksum::PseudoHeader => {
                self.pseudo_addrs.with_len(len_u32(tcp_len)).map_or(0, Checksum::folded)
            }
        };
        if let Some(flags) = out.buf.get_mut(13) {
            *flags |= last_flags.bits();
        }
        if let Some(field_octets) = out.buf.get_mut(16..18) {
            field_octets.copy_from_slice(&field.to_be_bytes());
        }
        out.pieces = pieces;
        out.segment_size = start.full;
        Transmit { len: tcp_len, ..first }
    }

    /// Sends, as `poll_output` would one at a time, the run of full-sized segments of new
    /// data from SND.NXT that all join a super-segment unchanged (`full` octets each, at most
    /// `max_pieces` of them and `max_octets` octets in all) and returns how many went; 0 when
    /// the state asks for the careful path of `super_segment_continues`. Only pieces that end
    /// before the end of the queue are taken: no PSH, no FIN, no Nagle, the same header as
    /// the piece before but for the sequence number. Called after two pieces went through
    /// the careful path, so that what one segment's accounting settles once — the advertised
    /// edge and the D-SACK reported (`on_ack_sent`), the retransmission timer (rule 5.1),
    /// the RTT probe, the scoreboard made — is settled, and what is left per piece is the
    /// scoreboard's record and SND.NXT; the timers that depend on the flight (the loss probe,
    /// RFC 8985 §7.2) and the cwnd-limited note are worked out once, for the last piece.
    fn extend_full_run(
        &mut self,
        now: Instant,
        full: usize,
        max_pieces: usize,
        max_octets: usize,
    ) -> usize {
        let settled = self.syn_acked
            && !self.retransmit_pending
            && !self.ack_pending
            && self
                .rare
                .as_ref()
                .is_none_or(|rare| rare.reply.is_none() && rare.resegment.is_none())
            && matches!(self.state, State::Established | State::CloseWait)
            && !self.in_sack_recovery()
            && !self.loss_probe_due()
            && (!self.sack_ok || self.scoreboard.is_some())
            && self.rtt_probe.is_some()
            && self.timer(Timer::Retransmit).is_some()
            && self.last_send_at == Some(now)
            && self.snd_nxt.before(self.send_buf_seq + len_u32(self.send_buf.len()))
            && !self.snd_nxt.before(self.send_buf_seq)
            && full > 0;
        if !settled {
            return 0;
        }
        let offset = self.snd_nxt.since(self.send_buf_seq) as usize;
        // `plan_at`'s full size; the careful path checked it against the first piece's.
        let planned_full = usize::from(self.effective_mss()).saturating_sub(self.sack_option_len());
        if planned_full != full {
            return 0;
        }
        let queued = self.send_buf.len() - offset;
        let usable = self.usable_window(self.snd_nxt);
        // Full pieces ending before the end of the queue (the one that reaches it carries
        // PSH, maybe FIN: the careful path sends it), within the windows and the limits.
        let by_queue = (queued - 1) / full;
        let pieces = by_queue.min(usable / full).min(max_pieces).min(max_octets / full);
        if pieces == 0 {
            return 0;
        }
        let mut seq = self.snd_nxt;
        for _ in 0..pieces {
            let end = seq + len_u32(full);
            self.record_sent(seq, end, now, Some(now));
            seq = end;
        }
        self.snd_nxt = seq;
        // What the last piece's `update_retransmit_timer` would leave: the RTO runs already
        // (rule 5.1 does not restart it), the probe timer follows the flight.
        self.arm_loss_probe(now);
        self.note_send_limit();
        pieces
    }

    /// The segment `poll_output` would send next and its header, if it may join the
    /// super-segment that began with `start` and has reached `next_seq`: a segment of the
    /// same kind (new data from SND.NXT, or the next segment deemed lost) at `next_seq`, with
    /// nothing of higher priority pending (`poll_output`'s and `next_segment`'s order: a
    /// reply, a retransmission from SND.UNA, a path-MTU resend, a lost segment, a loss probe,
    /// new data), of the same full size, with the same header but for the sequence number
    /// and a PSH or FIN (which end the run).
    fn super_segment_continues(
        &self,
        start: &Emitted,
        next_seq: SeqNum,
    ) -> Option<(Plan, TcpHeader)> {
        let higher_priority = self.retransmit_pending
            || self.rare.as_ref().is_some_and(|rare| rare.reply.is_some())
            || self.resegment().is_some()
            || matches!(self.state, State::Closed | State::Listen);
        if higher_priority {
            return None;
        }
        let lost = self.next_lost_plan();
        let plan = match start.kind {
            Kind::Lost => lost?,
            Kind::New if lost.is_none() && !self.loss_probe_due() && self.snd_nxt == next_seq => {
                self.plan_at(self.snd_nxt, Purpose::New)?
            }
            Kind::New | Kind::Other => return None,
        };
        if plan.seq != next_seq || plan.syn || plan.data_len == 0 || plan.full != start.full {
            return None;
        }
        if !self.remote_known {
            return None;
        }
        let header = self.plan_header(plan);
        let same = header.flags.without(Flags::PSH | Flags::FIN) == Flags::ACK
            && TcpHeader { seq: start.header.seq, flags: Flags::ACK, ..header } == start.header;
        same.then_some((plan, header))
    }

    /// The next segment, written as `out` asks: with `out.max_segments > 1` and a payload
    /// taken as slices, possibly a super-segment (see `poll_transmit_gso`).
    pub(crate) fn poll_output(
        &mut self,
        now: Instant,
        out: &mut Out<'_>,
    ) -> Result<Option<Transmit>, TransmitError> {
        let now = self.advance_time(now);
        // `cwnd_limited` is noted on every poll (see `note_send_limit`): on the paths that
        // return early, here; on the main one once, after the segment (nothing it does before
        // reads it but an idle restart, which notes it first).
        if let Some(reply) = self.rare.as_ref().and_then(|rare| rare.reply) {
            return self.send_reply(reply, out).map(Some);
        }
        if !core::mem::take(&mut self.transmit_checked) && !self.may_transmit() {
            // The common "nothing more" answer, without planning a segment.
            debug_assert!(
                self.plan_at(self.snd_nxt, Purpose::New).is_none(),
                "may_transmit said no with a segment to send"
            );
            self.note_send_limit();
            self.arm_keepalive();
            return Ok(None);
        }
        // The segments below all go to the connection's peer: the descriptor is made once,
        // here, rather than moved up through every path that writes one.
        // They are written from the connection's own fields (`remote_ip`, `remote_port`);
        // the address is built once, for the descriptor.
        let written = if let Some((plan, cwnd, mss)) = self.full_segment_plan(out) {
            // The send fast path: a full-sized segment of new data, planned in one step;
            // what `next_segment`'s new-data branch then does for it.
            #[cfg(all(test, feature = "std"))]
            switches::FULL_SEGMENTS.with(|count| count.set(count.get() + 1));
            let written = self.emit_plan(plan, out);
            if written.is_ok() {
                self.note_sent_new(now, plan, Purpose::New);
                self.rearm_after_full_segment(now);
            }
            // `note_send_limit` with what the plan found (sending changes neither), also
            // after an error.
            let flight = self.snd_nxt.since(self.snd_una);
            self.cwnd_limited = flight.saturating_add(mss) > cwnd && self.snd_wnd >= cwnd;
            written.map(Some)
        } else {
            let written = if self.remote_known { self.next_segment(now, out) } else { Ok(None) };
            // Also after an error: nothing was sent, and the poll still notes the limit.
            self.note_send_limit();
            written
        };
        let written = written?;
        if written.is_some() {
            self.on_ack_sent(out.window_field);
        } else {
            self.arm_persist_if_needed(now);
        }
        // `arm_keepalive` can only change something for an idle connection or an armed
        // timer: a busy sender's every poll skips it.
        if self.snd_una == self.snd_nxt || self.timer(Timer::KeepAlive).is_some() {
            self.arm_keepalive();
        }
        // `out.pieces` stays 0 for an ordinary segment (callers read it as one): nothing
        // more for the common case to do.
        if out.max_segments > 1
            && out.payload.is_some()
            && let Some(len) = written
        {
            let first = self.transmit(len, self.last_remote());
            return Ok(Some(self.extend_super_segment(now, out, first)));
        }
        // The descriptor is made last, in the return slot: made earlier and kept, it was
        // copied there field by field.
        Ok(written.map(|len| self.transmit(len, self.last_remote())))
    }

    /// The control reply owed to someone (a RST), written, and forgotten once written. Out
    /// of line and cold: few connections ever owe one, and `poll_output`'s common paths stay
    /// the shorter for it.
    #[cold]
    #[inline(never)]
    fn send_reply(&mut self, reply: Reply, out: &mut Out<'_>) -> Result<Transmit, TransmitError> {
        self.note_send_limit();
        let transmit = self.emit_reply(reply, out)?;
        if let Some(rare) = self.rare.as_mut() {
            rare.reply = None;
        }
        Ok(transmit)
    }

    /// The send fast path's test: the plan of a full-sized segment of new data from SND.NXT
    /// when that is what `next_segment` would send — nothing of higher priority pending (a
    /// retransmission, a path-MTU resend, a recovery, a loss probe), data in flight (no idle
    /// restart), no FIN queued, the data and both windows holding a whole segment (so
    /// neither Nagle nor SWS avoidance has a say) — and an ordinary segment asked for (not a
    /// super-segment); with cwnd and the effective MSS, which the cwnd-limited note after
    /// the segment needs again. `None` leaves the segment to the general path (that both
    /// send the same is pinned by `the_full_segment_path_sends_what_the_general_path_does`).
    /// Cheapest and most
    /// telling tests first: a short exchange's segments (sent from idle) leave at the
    /// first.
    #[inline(always)]
    fn full_segment_plan(&self, out: &Out<'_>) -> Option<(Plan, u32, u32)> {
        #[cfg(all(test, feature = "std"))]
        if switches::NO_FULL_SEGMENT_PATH.with(core::cell::Cell::get) {
            return None;
        }
        let common = self.snd_una != self.snd_nxt
            && !self.fin_queued
            && !self.retransmit_pending
            && self.syn_acked
            && self.remote_known
            && out.max_segments <= 1
            && matches!(self.state, State::Established | State::CloseWait)
            && self.rare.as_ref().is_none_or(|rare| rare.resegment.is_none())
            && self
                .scoreboard
                .as_ref()
                .is_none_or(|board| board.recovery().is_none() && !board.probe_due());
        if !common || self.snd_nxt.before(self.send_buf_seq) {
            return None;
        }
        // `plan_at(SND.NXT, Purpose::New)` for a segment that is full-sized.
        let seq = self.snd_nxt;
        let offset = seq.since(self.send_buf_seq) as usize;
        let queued = self.send_buf.len().saturating_sub(offset);
        let mss = self.effective_mss();
        let full = usize::from(mss).saturating_sub(self.sack_option_len());
        if full == 0 || queued < full {
            return None;
        }
        // `usable_window` outside a recovery.
        let cwnd = self.cwnd();
        let window = self.snd_wnd.min(cwnd.saturating_add(self.limited_transmit()));
        let window_end = self.snd_una + window;
        if !window_end.after(seq) || (window_end.since(seq) as usize) < full {
            return None;
        }
        let plan = Plan { seq, syn: false, data_offset: offset, data_len: full, fin: false, full };
        Some((plan, cwnd, u32::from(mss)))
    }

    /// cwnd, read from a built-in controller in place rather than through
    /// `CongestionControl`'s vtable: every poll reads it (`note_send_limit`, the send fast
    /// path, `usable_window`), and the indirect call cost more than the field it returns.
    #[inline(always)]
    fn cwnd(&self) -> u32 {
        match &self.cc {
            Controller::Cubic(cubic) => cubic.window(),
            Controller::NewReno(new_reno) => new_reno.window(),
            Controller::Custom(custom) => custom.window(),
        }
    }

    /// Notes whether cwnd limits sending now (RFC 9438 §5.8, RFC 7661): the flight fills cwnd
    /// to within a segment, and the peer's window is no smaller. Noted on every poll and after
    /// every segment, so the last poll before an ACK arrives leaves the answer for that ACK
    /// (the endpoint stops polling once `may_transmit` says no); a sender that ran out of
    /// data, or that the peer's window holds back, is not cwnd-limited, and its controller
    /// does not grow cwnd on what it learns then.
    fn note_send_limit(&mut self) {
        let cwnd = self.cwnd();
        let flight = self.snd_nxt.since(self.snd_una);
        // The effective MSS is at most the peer's (or the floor): a flight that stays within
        // cwnd by that much is within it by the effective MSS too, which is then not worked
        // out (a short exchange's every poll: a few octets in flight, cwnd the initial window).
        let mss_bound = u32::from(self.peer_mss.get().max(Mss::MIN_USABLE.get()));
        debug_assert!(u32::from(self.effective_mss()) <= mss_bound, "the MSS bound is no bound");
        self.cwnd_limited = self.snd_wnd >= cwnd
            && flight.saturating_add(mss_bound) > cwnd
            && flight.saturating_add(u32::from(self.effective_mss())) > cwnd;
    }

    /// Whether [`poll_transmit`](Self::poll_transmit) may have a segment to send. Conservative:
    /// `false` means it has none (a control reply, a flag asking for a segment, our SYN, or
    /// sequence space queued past SND.NXT would each make it `true`); `true` may still be
    /// answered `Ok(None)` when the windows, Nagle or SWS avoidance hold the data back. The
    /// endpoint visits a connection again only while this holds.
    pub(crate) fn may_transmit(&self) -> bool {
        // One disjunction, cheapest and most often true first: the flags, then queued sequence
        // space (a bulk sender's answer), and only then the rare part and the scoreboard. The
        // endpoint asks after every segment, so the order is worth its instructions.
        let flagged = self.retransmit_pending
            || self.probe_pending
            || self.keepalive_probe_pending
            || self.ack_pending;
        flagged
            || self.unsent_end().after(self.snd_nxt)
            || (self.snd_nxt == self.iss && self.snd_una == self.iss)
            || ((self.rare.is_some() || self.scoreboard.is_some()) && self.may_transmit_repair())
    }

    /// `may_transmit`'s part for a connection with rare state or a scoreboard: a control
    /// reply, a path-MTU resend, a loss probe or a segment deemed lost. Out of line, so the
    /// common answer (a connection with neither: most short ones) needs no registers saved.
    #[inline(never)]
    fn may_transmit_repair(&self) -> bool {
        self.rare.as_ref().is_some_and(|rare| rare.reply.is_some() || rare.resegment.is_some())
            || self.loss_probe_due()
            || self.next_lost_segment(false).is_some()
    }

    /// The sequence number after everything the user has queued, FIN included.
    fn unsent_end(&self) -> SeqNum {
        self.fin_seq()
            .map_or_else(|| self.send_buf_seq + len_u32(self.send_buf.len()), |fin| fin + 1)
    }

    /// The next SYN, data, FIN, probe or ACK segment to the peer, in that priority: its
    /// length.
    fn next_segment(
        &mut self,
        now: Instant,
        out: &mut Out<'_>,
    ) -> Result<Option<usize>, TransmitError> {
        if matches!(self.state, State::Closed | State::Listen) {
            // Nothing but control replies leaves a connection that has no peer yet or any more.
            return Ok(None);
        }
        // Repairs (a retransmission from SND.UNA, a path-MTU resend, a SACK recovery's lost
        // segment, a loss probe) come first; each needs one of these, and without any of them
        // none has anything to send.
        let repairs = self.retransmit_pending
            || self.rare.as_ref().is_some_and(|rare| rare.resegment.is_some())
            || self
                .scoreboard
                .as_ref()
                .is_some_and(|board| board.recovery().is_some() || board.probe_due());
        if repairs && let Some(len) = self.next_repair(now, out)? {
            return Ok(Some(len));
        }
        self.restart_after_idle(now);
        // A poll for an owed ACK with nothing queued past SND.NXT (no SYN, data or FIN to
        // send) need not plan a segment: `plan_at` would find none. Only then is it asked,
        // so a sender's data path pays one test.
        let plans_new = !self.ack_pending
            || self.unsent_end().after(self.snd_nxt)
            || (self.snd_nxt == self.iss && self.snd_una == self.iss);
        debug_assert!(
            plans_new || self.plan_at(self.snd_nxt, Purpose::New).is_none(),
            "a poll for an ACK skipped a segment to send"
        );
        if plans_new && let Some(plan) = self.plan_at(self.snd_nxt, Purpose::New) {
            let len = self.emit_plan(plan, out)?;
            if let Some(emitted) = out.emitted.as_mut() {
                emitted.kind = Kind::New;
            }
            self.on_sent_new(now, plan, Purpose::New);
            return Ok(Some(len));
        }
        if (self.probe_pending || self.keepalive_probe_pending)
            && let Some(len) = self.next_probe(now, out)?
        {
            return Ok(Some(len));
        }
        if self.ack_pending {
            let len = self.emit_bare(self.snd_nxt, Flags::ACK, out)?;
            self.ack_pending = false;
            return Ok(Some(len));
        }
        Ok(None)
    }

    /// `next_segment`'s repairs, in their order: a retransmission from SND.UNA (RFC 6298
    /// rule 5.4), the next piece of a path-MTU resend, a segment deemed lost in SACK recovery
    /// (RFC 6675), a loss probe (RFC 8985 §7.3). Out of line and cold: a connection without
    /// losses never comes here, and the common paths of `poll_output` stay the shorter.
    #[cold]
    #[inline(never)]
    fn next_repair(
        &mut self,
        now: Instant,
        out: &mut Out<'_>,
    ) -> Result<Option<usize>, TransmitError> {
        if self.retransmit_pending {
            let plan = self.plan_at(self.snd_una, Purpose::Retransmit);
            if let Some(plan) = plan.and_then(|plan| self.before_sacked(plan)) {
                let len = self.emit_plan(plan, out)?;
                self.retransmit_pending = false;
                self.ack_pending = false;
                self.on_resent(now, plan);
                return Ok(Some(len));
            }
            self.retransmit_pending = false;
        }
        if let Some(plan) = self.resegment_plan() {
            let len = self.emit_plan(plan, out)?;
            self.on_resent(now, plan);
            return Ok(Some(len));
        }
        if let Some(plan) = self.next_lost_plan() {
            // RFC 6675 §5 (C) with NextSeg rule (1): a segment deemed lost goes again.
            let len = self.emit_plan(plan, out)?;
            if let Some(emitted) = out.emitted.as_mut() {
                emitted.kind = Kind::Lost;
            }
            self.ack_pending = false;
            self.on_resent(now, plan);
            return Ok(Some(len));
        }
        if self.loss_probe_due() {
            if let Some(len) = self.send_loss_probe(now, out)? {
                return Ok(Some(len));
            }
            self.cancel_loss_probe();
        }
        Ok(None)
    }

    /// `next_segment`'s probes, in their order: a zero-window probe (the persist timer), then
    /// a keep-alive. Out of line and cold, as `next_repair`.
    #[cold]
    #[inline(never)]
    fn next_probe(
        &mut self,
        now: Instant,
        out: &mut Out<'_>,
    ) -> Result<Option<usize>, TransmitError> {
        if self.probe_pending {
            self.probe_pending = false;
            let idle = self.snd_una == self.snd_nxt;
            if idle {
                // The persist timer: one octet of new data past the closed window (MUST-36),
                // or what a small window allows (the SWS override, §3.8.6.2.1).
                if let Some(plan) = self.plan_at(self.snd_nxt, Purpose::Probe) {
                    let len = self.emit_plan(plan, out)?;
                    self.on_sent_new(now, plan, Purpose::Probe);
                    return Ok(Some(len));
                }
            } else if self.snd_wnd == 0 {
                // What we sent lies past the closed window: its first octet (or our FIN) goes
                // again as the probe. Once the window opened, the ACKs and the retransmission
                // timer carry the conversation and a stale probe is dropped.
                let plan = self
                    .plan_at(self.snd_una, Purpose::Probe)
                    .or_else(|| self.plan_at(self.snd_una, Purpose::Retransmit));
                if let Some(plan) = plan {
                    let len = self.emit_plan(plan, out)?;
                    self.ack_pending = false;
                    // Karn (MUST-18): the probed octet went before (not counted as a
                    // retransmission, but sent again all the same).
                    self.rtt_probe = None;
                    return Ok(Some(len));
                }
            }
        }
        if self.keepalive_probe_pending {
            // SHLD-12: a keep-alive carries no data; SEG.SEQ = SND.NXT − 1 makes the peer
            // answer with an ACK (RFC 9293 §3.8.4).
            let len = self.emit_bare(self.snd_nxt + u32::MAX, Flags::ACK, out)?;
            self.keepalive_probe_pending = false;
            return Ok(Some(len));
        }
        Ok(None)
    }

    /// The next piece of a flight being resent at a smaller path MTU (see `path_mtu`): from
    /// the cursor (or SND.UNA, once ACKs passed it) up to where the old flight ended, one
    /// effective MSS at a time, while it ends within SND.UNA + cwnd (the first piece always
    /// goes, as a retransmission from SND.UNA would). A finished or impossible resend is
    /// forgotten.
    fn resegment_plan(&mut self) -> Option<Plan> {
        let resegment = self.resegment()?;
        let mut next = resegment.next.max_seq(self.snd_una);
        // SACKed data is never resent (RFC 6675 §5): the resend skips over it.
        if let Some(sacked_end) = self.sacked_end_from(next) {
            next = sacked_end;
            self.set_resegment_next(next);
        }
        let plan = next
            .before(resegment.end)
            .then(|| self.plan_at(next, Purpose::Retransmit))
            .flatten()
            .and_then(|plan| self.before_sacked(plan));
        let Some(mut plan) = plan else {
            self.clear_resegment();
            return None;
        };
        let room = resegment.end.since(next);
        if plan.seg_len() > room {
            // Only the old flight: what was sent since already has the new size.
            plan.data_len = plan.data_len.min(room as usize);
            plan.fin = false;
        }
        let cwnd_end = self.snd_una + self.cwnd();
        let fits = (plan.seq + plan.seg_len()).before_eq(cwnd_end);
        (fits || plan.seq == self.snd_una).then_some(plan)
    }

    /// The next segment RFC 6675's NextSeg rule (1) resends, if recovery is in progress and
    /// cwnd − pipe has room: the first lost segment, up to one MSS, never into SACKed data.
    #[inline(always)]
    fn next_lost_plan(&self) -> Option<Plan> {
        self.lost_plan(false)
    }

    /// The first lost segment's plan, with room (`next_lost_plan`) or `regardless_of_room`
    /// (a loss probe in recovery).
    #[inline(always)]
    fn lost_plan(&self, regardless_of_room: bool) -> Option<Plan> {
        let (start, run) = self.next_lost_segment(regardless_of_room)?;
        let mut plan = self.plan_at(start, Purpose::Retransmit)?;
        if plan.seg_len() > run {
            plan.data_len = plan.data_len.min(run as usize);
            plan.fin = false;
        }
        Some(plan)
    }

    /// A retransmission plan cut short before the first SACKed octet (RFC 6675: SACKed data is
    /// never resent); `None` when the plan starts on SACKed data.
    fn before_sacked(&self, mut plan: Plan) -> Option<Plan> {
        let run = self.unsacked_run(plan.seq);
        if plan.seg_len() > run {
            plan.data_len = plan.data_len.min(run as usize);
            plan.fin = false;
        }
        (plan.seg_len() > 0).then_some(plan)
    }

    /// RFC 8985 §7.3: the probe timer expired. Send one segment of new data if the peer's
    /// window allows it (cwnd does not count), or else the last segment sent again; then the
    /// retransmission timer restarts and no other probe goes until an ACK judges this one.
    fn send_loss_probe(
        &mut self,
        now: Instant,
        out: &mut Out<'_>,
    ) -> Result<Option<usize>, TransmitError> {
        if self.in_fast_sack_recovery()
            && let Some(plan) = self.lost_plan(true)
        {
            // A probe in a fast recovery (`Scoreboard::may_schedule_probe`): a segment deemed
            // lost that PRR's allowance held back goes first — it repairs a hole, and as the
            // newest transmission its SACK shows RACK every earlier one that was lost.
            let len = self.emit_plan(plan, out)?;
            self.ack_pending = false;
            self.on_resent(now, plan);
            self.on_loss_probe_sent(now, plan.seq + plan.seg_len(), true);
            return Ok(Some(len));
        }
        if let Some(plan) = self.plan_at(self.snd_nxt, Purpose::LossProbe) {
            let len = self.emit_plan(plan, out)?;
            self.on_sent_new(now, plan, Purpose::LossProbe);
            self.on_loss_probe_sent(now, self.snd_nxt, false);
            return Ok(Some(len));
        }
        let plan = self
            .loss_probe_resend_start()
            .and_then(|start| self.plan_at(start, Purpose::Retransmit))
            .and_then(|plan| self.before_sacked(plan));
        let Some(plan) = plan else { return Ok(None) };
        let len = self.emit_plan(plan, out)?;
        self.ack_pending = false;
        self.on_resent(now, plan);
        self.on_loss_probe_sent(now, plan.seq + plan.seg_len(), true);
        Ok(Some(len))
    }

    /// A segment from before SND.NXT went again: the scoreboard notes it, and a resend from
    /// the cursor (smaller MTU, RTO go-back-N) goes on after it.
    fn on_resent(&mut self, now: Instant, plan: Plan) {
        // Karn (MUST-18, RFC 6298 §3): the ACK that would complete the segment being timed is
        // cumulative, so it may have been sent for this copy (a hole it fills, or a tail whose
        // first ACK was lost) — whichever way ahead of the probe it lies. Every send-again
        // passes here, so the probe is forgotten here: no ACK before the next segment sent
        // only once is timed. With timestamps the echo still times the copy that arrived.
        self.rtt_probe = None;
        self.record_resent(plan.seq, plan.seq + plan.seg_len(), now);
        self.count_resent(plan.data_len);
        // A retransmission is sending too: a go-back-N resend that takes longer than an RTO
        // and ends in a full ACK is no idle period, and must not cut cwnd back to the
        // restart window (RFC 5681 §4.1 counts from the last transmission of any data).
        self.last_send_at = Some(now);
        if self
            .resegment()
            .is_some_and(|resegment| resegment.next.max_seq(self.snd_una) == plan.seq)
        {
            self.set_resegment_next(plan.seq + plan.seg_len());
        }
    }

    /// A transmit descriptor with this connection's IP-header settings.
    fn transmit(&self, len: usize, remote: SocketAddr) -> Transmit {
        Transmit { len, local: self.local(), remote, ttl: self.config.ttl, ds_field: self.ds_field }
    }

    /// What the segment starting at `seq` carries, if anything.
    fn plan_at(&self, seq: SeqNum, purpose: Purpose) -> Option<Plan> {
        // Our SYN, until it is acknowledged (SYN-SENT, SYN-RECEIVED, or a CLOSE in
        // SYN-RECEIVED): no data rides on it.
        if seq == self.iss && self.snd_una == self.iss {
            return Some(Plan { seq, syn: true, data_offset: 0, data_len: 0, fin: false, full: 0 });
        }
        if seq.before(self.send_buf_seq) {
            return None;
        }
        let offset = seq.since(self.send_buf_seq) as usize;
        let queued = self.send_buf.len().saturating_sub(offset);
        // Data waits until our SYN is acknowledged (§3.10.2: queued before ESTABLISHED).
        // Without data to send (a FIN alone, an empty queue) there is no full size to work
        // out: `full` is 0, as a SYN's, and nothing reads it (it matters only to a segment
        // that carries data).
        let (mut data_len, full) = if self.syn_acked && queued > 0 {
            // A segment that carries SACK blocks carries that much less data (RFC 2018 §3).
            let full = usize::from(self.effective_mss()).saturating_sub(self.sack_option_len());
            (queued.min(full.max(1)), full)
        } else {
            (0, 0)
        };
        let mss = full.max(1);
        // Without data to send (a FIN alone, an empty queue) no window can cut it shorter:
        // the windows are not worked out.
        if data_len > 0 {
            let room = match purpose {
                Purpose::New | Purpose::Probe => {
                    let usable = self.usable_window(seq);
                    // The override of a held segment (RFC 9293 §3.8.6.2.1 (4)): what the
                    // window allows, or one octet past a zero window (MUST-36).
                    if purpose == Purpose::Probe { usable.max(1) } else { usable }
                }
                Purpose::LossProbe => self.peer_window_room(seq),
                // Resend only what was sent before.
                Purpose::Retransmit => {
                    if self.snd_nxt.after(seq) {
                        self.snd_nxt.since(seq) as usize
                    } else {
                        0
                    }
                }
            };
            data_len = data_len.min(room);
        }
        let end = seq + len_u32(data_len);
        let fin = match (self.fin_seq(), purpose) {
            (Some(fin_seq), Purpose::New | Purpose::LossProbe) => {
                // The FIN takes a sequence number, so it goes only inside the peer's window
                // (§3.10.7.4 step 1 would find it unacceptable past the edge — and every ACK we
                // sent after it, at SEQ = SND.NXT, too); a closed window gets it as a probe.
                let window_end = self.snd_una + self.snd_wnd;
                end == fin_seq
                    && self.snd_nxt.before_eq(fin_seq)
                    && self.may_send_fin()
                    && window_end.after(fin_seq)
            }
            (Some(fin_seq), Purpose::Probe) => {
                end == fin_seq && self.snd_nxt.before_eq(fin_seq) && self.may_send_fin()
            }
            (Some(fin_seq), Purpose::Retransmit) => end == fin_seq && self.snd_nxt.after(fin_seq),
            (None, _) => false,
        };
        if purpose == Purpose::New && data_len > 0 && data_len < mss && !fin {
            // A short segment: sender SWS avoidance and Nagle decide (RFC 9293 §3.8.6.2.1,
            // §3.7.4, MUST-38, SHLD-7). Minshall's variant: Nagle only holds data while a
            // short segment is unacknowledged.
            let nagle_allows = self.nodelay || self.snd_sml.before_eq(self.snd_una);
            let everything_queued = data_len == queued;
            let half_max_window = (self.max_snd_wnd / 2) as usize;
            let worth_sending = everything_queued || data_len >= half_max_window;
            if !(nagle_allows && worth_sending) {
                return None;
            }
        }
        (data_len > 0 || fin).then_some(Plan {
            seq,
            syn: false,
            data_offset: offset,
            data_len,
            fin,
            full,
        })
    }

    /// Octets the windows let us send from `seq`: the peer's window and the congestion window,
    /// both counted from SND.UNA (robust to a window that shrank, MUST-34).
    fn usable_window(&self, seq: SeqNum) -> usize {
        if self.in_sack_recovery() {
            // RFC 6675 §5 (C): in recovery, what cwnd − pipe leaves, by whole segments.
            let room = self.recovery_room();
            let room = if room >= u32::from(self.effective_mss()) { room as usize } else { 0 };
            return room.min(self.peer_window_room(seq));
        }
        let window = self.snd_wnd.min(self.cwnd().saturating_add(self.limited_transmit()));
        let window_end = self.snd_una + window;
        if window_end.after(seq) { window_end.since(seq) as usize } else { 0 }
    }

    /// RFC 3042 Limited Transmit (RFC 5681 §3.2: SHOULD): on each of the first two duplicate
    /// ACKs outside recovery one more segment of new data may go, up to cwnd + 2 SMSS, so a
    /// small window still draws the third duplicate ACK that fast retransmit needs instead of
    /// waiting for the timer. cwnd itself is unchanged. Only without SACK: a SACK connection's
    /// RACK-TLP detects losses in a small window by time and probes its tail (RFC 8985), and
    /// its recovery keeps RFC 6675's and RFC 6937's accounting exact.
    fn limited_transmit(&self) -> u32 {
        if self.sack_ok || self.in_fast_recovery || !(1..=2).contains(&self.dup_acks) {
            return 0;
        }
        u32::from(self.dup_acks) * u32::from(self.effective_mss())
    }

    /// Octets the peer's window leaves from `seq` (robust to a window that shrank, MUST-34).
    fn peer_window_room(&self, seq: SeqNum) -> usize {
        let window_end = self.snd_una + self.snd_wnd;
        if window_end.after(seq) { window_end.since(seq) as usize } else { 0 }
    }

    /// Our FIN goes once every data octet before it is sent; in SYN-RECEIVED-then-CLOSE it
    /// may go before the SYN is acknowledged (§3.10.4), but only after the SYN itself.
    fn may_send_fin(&self) -> bool {
        // SND.NXT == ISS only before the SYN is sent (or, once the SYN is acknowledged, at the
        // exact 2^32 wrap: hence the flag).
        self.syn_acked || self.snd_nxt != self.iss
    }

    fn on_sent_new(&mut self, now: Instant, plan: Plan, purpose: Purpose) {
        self.note_sent_new(now, plan, purpose);
        self.update_retransmit_timer(now, false);
    }

    /// [`on_sent_new`](Self::on_sent_new) but for the timers, which the send fast path
    /// re-arms its own way (`rearm_after_full_segment`).
    #[inline(always)]
    fn note_sent_new(&mut self, now: Instant, plan: Plan, purpose: Purpose) {
        let end = plan.seq + plan.seg_len();
        let was_idle = self.snd_una == self.snd_nxt;
        // Full-sized is the MSS less the SACK option this segment carried (`plan_at`).
        debug_assert!(
            plan.syn
                || plan.data_len == 0
                || plan.full
                    == usize::from(self.effective_mss()).saturating_sub(self.sack_option_len()),
            "a plan's full size went stale before it was sent"
        );
        let short = plan.data_len > 0 && plan.data_len < plan.full;
        if short && purpose == Purpose::New {
            // Minshall's variant of Nagle remembers the last short segment. A probe is not
            // one: a closed receiver drops it, and holding the data that follows until it is
            // acknowledged would cost a round trip when the window opens.
            self.snd_sml = end;
        }
        let previous_send = self.last_send_at.replace(now);
        if end.after(self.snd_nxt) {
            if !plan.syn {
                self.record_sent(plan.seq.max_seq(self.snd_nxt), end, now, previous_send);
            }
            self.snd_nxt = end;
        }
        if was_idle {
            self.progress_at = now;
        }
        if self.rtt_probe.is_none() && self.resegment().is_none() {
            self.rtt_probe = Some((end, now));
        }
        if plan.seg_len() > 0 {
            self.ack_pending = false;
        }
    }

    /// RFC 5681 §4.1: after an idle period longer than the RTO, restart from the initial
    /// window rather than bursting a stale cwnd into the network.
    fn restart_after_idle(&mut self, now: Instant) {
        // Idle first: a sender with data in flight need not work out the RTO.
        let idle = self.snd_una == self.snd_nxt;
        // In whole microseconds, as the RTO is kept: the same comparison without `Duration`.
        let long_idle = || {
            self.last_send_at.is_some_and(|at| {
                now.as_micros().saturating_sub(at.as_micros()) > u64::from(self.rtt.rto_micros())
            })
        };
        if idle && long_idle() {
            // The controller reads the limit as of this poll (`poll_output` notes it late).
            self.note_send_limit();
            self.on_congestion_event(CongestionEvent::IdleRestart);
            self.last_send_at = Some(now);
        }
    }

    /// MUST-35/36: with data waiting, nothing in flight and a window too small to send it (zero,
    /// or held back by sender SWS avoidance), probe after one RTO, backing off exponentially
    /// (SHLD-29, SHLD-30). The probe is the override timeout of RFC 9293 §3.8.6.2.1.
    fn arm_persist_if_needed(&mut self, now: Instant) {
        let waiting = self.unsent_end().after(self.snd_nxt) && self.syn_acked;
        let idle = self.snd_una == self.snd_nxt;
        if waiting && idle && self.timer(Timer::Persist).is_none() {
            let delay = self.persist_interval();
            self.set_timer(Timer::Persist, Some(now + delay));
        }
    }

    /// The general header of a segment to the peer.
    fn header(&self, seq: SeqNum, flags: Flags) -> TcpHeader {
        let flags = if self.have_irs { flags | Flags::ACK } else { flags };
        let window = if flags.contains(Flags::SYN) {
            // RFC 7323 §2.2: the window of a SYN is never scaled.
            Window::saturating(self.rcv_wnd()).to_scaled(WindowScale::NONE)
        } else {
            self.window_field()
        };
        let mut options = Options::NONE;
        // RFC 7323 §3.2: offered on our SYN, then on every segment iff both SYNs carried it.
        let first_syn = flags.contains(Flags::SYN) && !self.have_irs;
        options.timestamps = self.ts.option(self.last_now, first_syn, flags.contains(Flags::ACK));
        if flags.contains(Flags::ACK) && !flags.contains(Flags::SYN) {
            // RFC 2018 §4: every ACK carries the blocks while out-of-order data is held.
            options.sack_blocks = self.sack_blocks();
        }
        TcpHeader {
            src_port: self.local_port,
            dst_port: self.remote_port,
            seq,
            ack: if self.have_irs { self.rcv_nxt } else { SeqNum::new(0) },
            flags,
            window,
            urgent_ptr: 0,
            options,
        }
    }

    /// The header of the segment `plan` describes.
    #[inline(always)]
    fn plan_header(&self, plan: Plan) -> TcpHeader {
        let mut flags = Flags::EMPTY;
        if plan.syn {
            flags |= Flags::SYN;
        }
        if plan.fin {
            flags |= Flags::FIN;
        }
        let data_end = plan.data_offset + plan.data_len;
        if plan.data_len > 0 && data_end == self.send_buf.len() {
            // MUST-61: PSH on the segment that empties what the user has written.
            flags |= Flags::PSH;
        }
        let mut header = self.header(plan.seq, flags);
        if plan.syn {
            // MUST-65: the MSS option on SYNs only; MUST-67: derived from the MTU.
            header.options.mss = Some(self.advertised_mss());
            // RFC 7323 §2.2: offer window scaling on our SYN; on a SYN-ACK only in reply to
            // a SYN that offered it.
            let offer = self.config.window_scaling && (!self.have_irs || self.wscale_ok);
            if offer {
                header.options.window_scale = Some(self.rcv_wscale.shift());
            }
            // RFC 2018 §2: SACK-permitted on our SYN when wanted; on a SYN-ACK only in reply
            // to a SYN that carried it.
            header.options.sack_permitted = self.sack_wanted && (!self.have_irs || self.sack_ok);
        }
        if let Some(up) = self.snd_up()
            && up.after(plan.seq)
        {
            // MUST-30/62: the pointer marks the octet after the urgent data.
            header.flags |= Flags::URG;
            header.urgent_ptr = u16::try_from(up.since(plan.seq)).unwrap_or(u16::MAX);
        }
        header
    }

    /// Writes the segment `plan` describes. Every segment to the peer but a RST is written
    /// here — SYNs, data, FINs and bare ACKs (`emit_bare`) alike — through one copy of the
    /// header and payload code: a short connection's few segments of every kind then touch
    /// few instruction-cache lines, and a bulk sender's data segments no more than before.
    fn emit_plan(&mut self, plan: Plan, out: &mut Out<'_>) -> Result<usize, TransmitError> {
        // Storage for the options area of the forms that are not the fixed fields alone.
        let syn_words;
        let general;
        let (header, area) = if plan.syn && self.syn_takes_words(plan, out) {
            syn_words = self.syn_words();
            let header = self.syn_header(plan);
            // A SYN's window is not what `on_ack_sent` records (RFC 7323 §2.2).
            out.window_field = None;
            (header, OptionArea::Words(&syn_words))
        } else if let Some((header, area)) = self.plan_header_lean(plan, out) {
            out.window_field = Some(header.window);
            (header, area)
        } else {
            general = self.plan_header_noted(plan, out);
            general.lean_parts()
        };
        // The addresses' part of the pseudo-header sum was worked out once, for the peer.
        let (pseudo, checksum) = (self.pseudo_addrs, self.config.checksum.tx);
        let written = if let Some(payload) = out.payload.as_deref_mut() {
            self.send_buf.slices(plan.data_offset, plan.data_len, payload);
            let pieces = payload.slices().iter().map(|slice| &slice[..]);
            header.emit_pieces(area, payload.len(), pieces, false, pseudo, out.buf, checksum)
        } else {
            // Copied after the header (`poll_transmit`), or lent out after the call
            // (`poll_transmit_borrowed`): then the header alone is written here and the
            // payload read only where the checksum is summed here (else nothing reads it). A
            // control segment has no payload to locate: no call into the send queue.
            out.range = (plan.data_offset, plan.data_len);
            let skip = plan.data_len == 0 || (out.borrow && checksum != TxChecksum::Compute);
            let pieces = if skip {
                Pieces::EMPTY
            } else {
                self.send_buf.pieces(plan.data_offset, plan.data_len)
            };
            header.emit_pieces(area, plan.data_len, pieces, !out.borrow, pseudo, out.buf, checksum)
        };
        Ok(written?)
    }

    /// The general header of the segment `plan` describes (`plan_header`), its window noted
    /// in `out`, and the segment noted for the super-segment builder when it asks. Kept out
    /// of `emit_plan`: only a SACK report, urgent data or a super-segment needs it.
    #[inline(never)]
    fn plan_header_noted(&self, plan: Plan, out: &mut Out<'_>) -> TcpHeader {
        let header = self.plan_header(plan);
        out.note_window(&header);
        if out.notes_segments() {
            out.emitted = Some(Emitted {
                header,
                data_offset: plan.data_offset,
                data_len: plan.data_len,
                full: plan.full,
                kind: Kind::Other,
            });
        }
        header
    }

    /// The send fast path: the header of the segment `plan` describes from the connection's
    /// fixed fields (ports, SEG.SEQ, SEG.ACK, flags, window) and an options area of at most
    /// the negotiated timestamps, without building a [`TcpHeader`]: what every data, FIN and
    /// ACK segment of an established connection has, except one carrying SACK blocks
    /// (RFC 2018 §4) or urgent data, a SYN (`syn_header`), and a segment noted for a
    /// super-segment, which take `plan_header`. `None` when the plan is one of those. The
    /// octets are those `plan_header` would give (see
    /// `lean_path_writes_what_the_general_path_does`).
    #[inline(always)]
    fn plan_header_lean(
        &self,
        plan: Plan,
        out: &Out<'_>,
    ) -> Option<(LeanHeader, OptionArea<'static>)> {
        if plan.syn || out.notes_segments() || self.snd_up().is_some_and(|up| up.after(plan.seq)) {
            return None;
        }
        #[cfg(all(test, feature = "std"))]
        if switches::GENERAL_HEADERS_ONLY.with(core::cell::Cell::get) {
            return None;
        }
        let mut flags = if plan.fin { Flags::FIN } else { Flags::EMPTY };
        if plan.data_len > 0 && plan.data_offset + plan.data_len == self.send_buf.len() {
            // MUST-61: PSH on the segment that empties what the user has written.
            flags |= Flags::PSH;
        }
        self.lean_header(plan.seq, flags)
    }

    /// Whether the SYN `plan` describes goes through `syn_header`: unless it is noted for a
    /// super-segment builder or carries urgent data (or a test wants the general header).
    fn syn_takes_words(&self, plan: Plan, out: &Out<'_>) -> bool {
        #[cfg(all(test, feature = "std"))]
        if switches::GENERAL_HEADERS_ONLY.with(core::cell::Cell::get) {
            return false;
        }
        !out.notes_segments() && !self.snd_up().is_some_and(|up| up.after(plan.seq))
    }

    /// Our SYN's or SYN-ACK's options as `plan_header` would give them, laid out as words
    /// rather than encoded from an [`Options`]: the MSS (MUST-65, MUST-67), and window
    /// scaling, SACK-permitted (RFC 2018 §2) and timestamps (RFC 7323 §3.2) offered on our
    /// SYN when wanted, on a SYN-ACK only in reply to a SYN that offered them. In line in
    /// `emit_plan`, built in the storage the options area borrows: out of line, it cost a
    /// call and a copy of the words (callgrind, churn: 84 instructions a lifecycle more,
    /// `bulk_mtu1500_bytes` 5 a segment more).
    #[inline(always)]
    fn syn_words(&self) -> OptionWords {
        let timestamps = self.ts.option(self.last_now, !self.have_irs, self.have_irs);
        let scaling = self.config.window_scaling && (!self.have_irs || self.wscale_ok);
        let window_scale = scaling.then(|| self.rcv_wscale.shift());
        let sack_permitted = self.sack_wanted && (!self.have_irs || self.sack_ok);
        Options::syn_words(self.advertised_mss(), sack_permitted, timestamps, window_scale)
    }

    /// Our SYN's or SYN-ACK's fixed fields as `plan_header` would give them, the window
    /// unscaled (RFC 7323 §2.2).
    #[inline(always)]
    fn syn_header(&self, plan: Plan) -> LeanHeader {
        debug_assert!(plan.syn && plan.data_len == 0, "a SYN carries no data here");
        let mut flags = if self.have_irs { Flags::SYN | Flags::ACK } else { Flags::SYN };
        if plan.fin {
            flags |= Flags::FIN;
        }
        LeanHeader {
            src_port: self.local_port,
            dst_port: self.remote_port,
            seq: plan.seq,
            ack: if self.have_irs { self.rcv_nxt } else { SeqNum::new(0) },
            flags,
            window: Window::saturating(self.rcv_wnd()).to_scaled(WindowScale::NONE),
            urgent_ptr: 0,
        }
    }

    /// `header(seq, flags, …)` for a segment other than a SYN, as fixed fields and an options
    /// area, unless SACK blocks are to be reported (RFC 2018 §4), which only the general
    /// header carries. No work for an option the connection did not negotiate: timestamps
    /// only when on (RFC 7323 §3.2), no SACK option without blocks, no MSS or window scale
    /// past the SYN.
    #[inline(always)]
    fn lean_header(&self, seq: SeqNum, flags: Flags) -> Option<(LeanHeader, OptionArea<'static>)> {
        debug_assert!(!flags.contains(Flags::SYN), "a SYN takes the general header");
        let reports_sack =
            self.sack_ok && self.assembler.as_ref().is_some_and(|assembler| assembler.has_report());
        if reports_sack {
            return None;
        }
        let flags = if self.have_irs { flags | Flags::ACK } else { flags };
        let area = match self.ts.option(self.last_now, false, flags.contains(Flags::ACK)) {
            Some(ts) => OptionArea::Timestamps(ts),
            None => OptionArea::None,
        };
        let header = LeanHeader {
            src_port: self.local_port,
            dst_port: self.remote_port,
            seq,
            ack: if self.have_irs { self.rcv_nxt } else { SeqNum::new(0) },
            flags,
            window: self.window_field(),
            urgent_ptr: 0,
        };
        Some((header, area))
    }

    /// Writes a segment without data and without SYN: as `emit_plan` writes a plan of no
    /// sequence space at `seq` (the same code, and the same octets: the fast path where it
    /// applies, else `plan_header`), but for urgent data pending, whose pointer only a segment
    /// that `plan_header` describes carries, and for an ACK before we know the peer's ISN
    /// (`flags` then supplies the ACK bit), which take the general header.
    fn emit_bare(
        &mut self,
        seq: SeqNum,
        flags: Flags,
        out: &mut Out<'_>,
    ) -> Result<usize, TransmitError> {
        if self.have_irs && flags == Flags::ACK && !self.snd_up().is_some_and(|up| up.after(seq)) {
            let plan = Plan { seq, syn: false, data_offset: 0, data_len: 0, fin: false, full: 0 };
            return self.emit_plan(plan, out);
        }
        let header = self.header(seq, flags);
        self.encode(&header, self.remote_ip, out)
    }

    fn emit_reply(&self, reply: Reply, out: &mut Out<'_>) -> Result<Transmit, TransmitError> {
        let flags = if reply.ack.is_some() { Flags::RST | Flags::ACK } else { Flags::RST };
        let mut options = Options::NONE;
        if self.remote() == Some(reply.remote) {
            // RFC 7323 §3.2: the option SHOULD be on a RST of a connection that negotiated it
            // (a RST to anyone else knows nothing of ours).
            options.timestamps = self.ts.option(self.last_now, false, reply.ack.is_some());
        }
        let header = TcpHeader {
            src_port: self.local().port(),
            dst_port: reply.remote.port(),
            seq: reply.seq,
            ack: reply.ack.unwrap_or(SeqNum::new(0)),
            flags,
            window: 0,
            urgent_ptr: 0,
            options,
        };
        let len = self.encode(&header, reply.remote.ip(), out)?;
        Ok(self.transmit(len, reply.remote))
    }

    /// Writes a segment without data to `dst`.
    fn encode(
        &self,
        header: &TcpHeader,
        dst: IpAddr,
        out: &mut Out<'_>,
    ) -> Result<usize, TransmitError> {
        if let Some(payload) = out.payload.as_deref_mut() {
            payload.clear();
        }
        out.range = (0, 0);
        out.note_window(header);
        let src = self.local_ip;
        Ok(header.emit_with_checksum(&[], src, dst, out.buf, self.config.checksum.tx)?)
    }
}

/// Test-only switches that turn the send side's fast paths off (the general header, the
/// full-segment plan) and count the latter's use, for the differential tests that pin each
/// fast path to the general one (`super::differential`).
#[cfg(all(test, feature = "std"))]
pub(super) mod switches {
    use core::cell::Cell;

    std::thread_local! {
        /// While set on a thread, `plan_header_lean` and `syn_takes_words` never take the
        /// lean path.
        pub(in crate::connection) static GENERAL_HEADERS_ONLY: Cell<bool> =
            const { Cell::new(false) };
        /// While set on a thread, `full_segment_plan` finds nothing: every segment takes
        /// `next_segment`.
        pub(in crate::connection) static NO_FULL_SEGMENT_PATH: Cell<bool> =
            const { Cell::new(false) };
        /// Segments `full_segment_plan` sent on this thread.
        pub(in crate::connection) static FULL_SEGMENTS: Cell<u64> = const { Cell::new(0) };
        /// While set on a thread, `rearm_after_full_segment` always works the timers out
        /// again (RFC 8985 §7.2's rule after every segment, as `update_retransmit_timer`).
        pub(in crate::connection) static NO_PROBE_REUSE: Cell<bool> = const { Cell::new(false) };
        /// Segments after which `rearm_after_full_segment` kept the armed probe deadline.
        pub(in crate::connection) static PROBE_REUSES: Cell<u64> = const { Cell::new(0) };
    }
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use alloc::vec;

    use crate::seq::Window;
    use crate::testing::{Pair, addr_a, addr_b};
    use crate::wire::Segment;
    use core::time::Duration;

    use crate::{Config, Connection, Instant, SeqNum, State};

    /// Our SYN and SYN-ACK through `syn_header` are octet for octet those of the general
    /// header (`plan_header`, `Options::emit`), for every combination of window scaling,
    /// SACK and timestamps wanted on either side, through both transmit forms.
    #[test]
    fn handshake_segments_written_as_words_match_the_general_header() {
        use super::switches::GENERAL_HEADERS_ONLY;
        let now = Instant::ZERO + Duration::from_millis(1234);
        let written = |connection: &mut Connection, general: bool, chunks: bool| {
            GENERAL_HEADERS_ONLY.with(|switch| switch.set(general));
            let mut buf = vec![0u8; 256];
            let len = if chunks {
                let out = connection.poll_transmit_chunks(now, &mut buf).unwrap().unwrap();
                assert!(out.payload.is_empty());
                out.transmit.len
            } else {
                connection.poll_transmit(now, &mut buf).unwrap().unwrap().len
            };
            GENERAL_HEADERS_ONLY.with(|switch| switch.set(false));
            buf.truncate(len);
            buf
        };
        let mut checked = 0;
        for combination in 0..64u32 {
            let wants = |shift: u32| combination & (1 << shift) != 0;
            let chunks = combination % 3 == 0;
            let mut config_a = Config::with_fixed_isn(SeqNum::new(1000));
            (config_a.window_scaling, config_a.sack, config_a.timestamps) =
                (wants(0), wants(1), wants(2));
            let mut config_b = Config::with_fixed_isn(SeqNum::new(5000));
            (config_b.window_scaling, config_b.sack, config_b.timestamps) =
                (wants(3), wants(4), wants(5));
            let connect =
                || Connection::connect(config_a.clone(), now, addr_a(40_000), addr_b(80)).unwrap();
            let syn = written(&mut connect(), false, chunks);
            assert_eq!(syn, written(&mut connect(), true, chunks), "SYN, {combination:#b}");
            let segment = Segment::parse(&syn).unwrap();
            let accept = || {
                let mut b = Connection::listen(config_b.clone(), now, addr_b(80));
                b.handle_segment(now, addr_a(0).ip(), &segment);
                b
            };
            let syn_ack = written(&mut accept(), false, chunks);
            assert_eq!(syn_ack, written(&mut accept(), true, chunks), "SYN-ACK, {combination:#b}");
            let parsed = Segment::parse(&syn_ack).unwrap();
            assert_eq!(parsed.header.options.sack_permitted, wants(1) && wants(4));
            checked += 1;
        }
        assert_eq!(checked, 64);
    }

    /// The furthest right edge a connection records after sending (SHLD-14) is the one the
    /// segment's own window field announces: the field is worked out once, in the header, and
    /// handed to `on_ack_sent`. Checked on every segment while a scaled receive window closes
    /// (fields rounded up past odd-length data, RFC 7323 §2.4) and reopens in odd-sized reads.
    #[test]
    fn the_recorded_edge_is_the_window_field_sent() {
        let now = Instant::ZERO;
        let mut config = Config::with_fixed_isn(SeqNum::new(1000));
        config.recv_buffer = 100_000;
        config.recv_buffer_max = 100_000;
        let a = Connection::connect(config.clone(), now, addr_a(40_000), addr_b(80)).unwrap();
        let b = Connection::listen(config, now, addr_b(80));
        let mut pair = Pair::new(a, b, now);
        pair.run_until_idle();
        assert_eq!(pair.a.state(), State::Established);
        assert!(pair.a.rcv_shift().shift() > 0, "the test wants a scaled window");
        let (ip_a, ip_b) = (addr_a(0).ip(), addr_b(0).ip());
        let mut buf = vec![0u8; 2048];
        let mut checked = 0;
        for round in 0..400 {
            // Time passes, so delayed ACKs and the persist timer (a closed window) fire too.
            pair.now += Duration::from_millis(20);
            let now = pair.now;
            pair.a.handle_timeout(now);
            pair.b.handle_timeout(now);
            let _ = pair.b.send(now, &[round as u8; 1001]);
            while let Ok(Some(transmit)) = pair.b.poll_transmit(now, &mut buf) {
                let segment = Segment::parse(&buf[..transmit.len]).unwrap();
                pair.a.handle_segment(now, ip_b, &segment);
            }
            if round % 3 == 2 {
                let mut sink = vec![0u8; 1399 * (round % 5)];
                let _ = pair.a.recv(&mut sink);
            }
            loop {
                let known = pair.a.rcv_adv_edge;
                let Ok(Some(transmit)) = pair.a.poll_transmit(now, &mut buf) else { break };
                let segment = Segment::parse(&buf[..transmit.len]).unwrap();
                let field = segment.header.window;
                let announced =
                    pair.a.rcv_nxt + Window::from_scaled(field, pair.a.rcv_shift()).get();
                let expected = known.filter(|edge| edge.after(announced)).unwrap_or(announced);
                assert_eq!(pair.a.rcv_adv_edge, Some(expected), "round {round}");
                checked += 1;
                pair.b.handle_segment(now, ip_a, &segment);
            }
        }
        assert!(checked > 100, "only {checked} segments checked");
    }

    /// The send fast path (`full_segment_plan`) against `next_segment` alone, in random
    /// conversations of sends, polls in both forms, deliveries, duplicates, losses, reads
    /// (windows closing and opening), time passing and closes, under every combination of
    /// timestamps, SACK, a small receive buffer, delayed ACKs and Nagle: the same octets on
    /// the link, the same events, status and deadlines, and the same TCB after every step.
    #[allow(clippy::indexing_slicing)]
    mod full_segment_path {
        use core::cell::Cell;

        use proptest::prelude::*;

        use super::super::super::differential::{
            Op, Paths, World, assert_same_as_reference, config, forged,
        };
        use super::super::switches::{FULL_SEGMENTS, PROBE_REUSES};

        /// Polls in either form (a `Poll` as chunks half the time).
        fn poll(chunks: bool) -> Op {
            if chunks { Op::PollChunks } else { Op::Poll }
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                4 => (any::<bool>(), 1usize..9000).prop_map(|(side, len)| Op::Send(side, len)),
                4 => any::<bool>().prop_map(poll),
                8 => (any::<usize>(), prop::bool::weighted(0.05), any::<bool>())
                    .prop_map(|(at, dup, bytes)| Op::Deliver(at, dup, bytes)),
                1 => any::<usize>().prop_map(Op::Drop),
                2 => (any::<bool>(), 1usize..30_000).prop_map(|(side, len)| Op::Read(side, len)),
                1 => (1u64..3000).prop_map(Op::Tick),
                1 => any::<bool>().prop_map(Op::Close),
                1 => (any::<bool>(), forged()).prop_map(|(side, forged)| Op::Forge(side, forged)),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn the_full_segment_path_sends_what_the_general_path_does(
                flags in 0u8..32,
                ops in prop::collection::vec(op(), 1..150),
            ) {
                let general = Paths { no_full_segment_path: true, ..Paths::default() };
                assert_same_as_reference(&config(flags), Paths::default(), general, &ops)?;
            }

            /// The probe deadline kept from the segment before at the same instant
            /// (`rearm_after_full_segment`) against RFC 8985 §7.2's rule worked out after
            /// every segment, with SACK on (no scoreboard, no probe timer otherwise): ACKs,
            /// SACK blocks, losses, probes and timeouts between the segments of a burst, and
            /// the same deadlines, segments and TCB after every step.
            #[test]
            fn kept_probe_deadlines_are_the_rules(
                flags in 0u8..32,
                ops in prop::collection::vec(op(), 1..150),
            ) {
                let every = Paths { no_probe_reuse: true, ..Paths::default() };
                assert_same_as_reference(&config(flags | 2), Paths::default(), every, &ops)?;
            }
        }

        /// 40 rounds of a bulk transfer: 8 760 octets sent, every segment delivered, all
        /// of it read (240 full-sized segments), polled through both transmit forms.
        fn bulk_rounds(world: &mut World) {
            for round in 0..40 {
                world.apply(&Op::Send(false, 8760));
                world.apply(&poll(round % 2 == 0));
                while !world.link.is_empty() {
                    world.apply(&Op::Deliver(0, false, false));
                    world.apply(&poll(round % 2 == 1));
                }
                world.apply(&Op::Read(true, 30_000));
            }
        }

        /// A bulk transfer with SACK keeps the probe deadline for most of a burst's
        /// segments; switched off, for none.
        #[test]
        fn bulk_bursts_keep_the_probe_deadline() {
            for every in [false, true] {
                let paths = Paths { no_probe_reuse: every, ..Paths::default() };
                let mut world = World::new(&config(3), paths);
                PROBE_REUSES.with(|count| count.set(0));
                bulk_rounds(&mut world);
                let kept = PROBE_REUSES.with(Cell::get);
                if every {
                    assert_eq!(kept, 0);
                } else {
                    assert!(kept >= 150, "the probe deadline was kept {kept} times");
                }
            }
        }

        /// A plain bulk transfer sends (nearly) every full-sized segment through the fast
        /// path, in both transmit forms; switched off, none.
        #[test]
        fn bulk_segments_take_the_full_segment_path() {
            for general_only in [false, true] {
                let paths = Paths { no_full_segment_path: general_only, ..Paths::default() };
                let mut world = World::new(&config(3), paths);
                FULL_SEGMENTS.with(|count| count.set(0));
                bulk_rounds(&mut world);
                let taken = FULL_SEGMENTS.with(Cell::get);
                if general_only {
                    assert_eq!(taken, 0);
                } else {
                    assert!(taken >= 150, "only {taken} of 240 segments took the fast path");
                }
            }
        }
    }
}
