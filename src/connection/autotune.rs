//! Buffer auto-tuning: the receive buffer grows as the rate at which the application reads,
//! times the round-trip time, calls for (Linux's receive-buffer moderation, "dynamic right
//! sizing"), and the send buffer as the congestion window does; both up to their ceilings
//! (`Config::recv_buffer_max`, `Config::send_buffer_max`) and, for an endpoint's
//! connections, within the endpoint's memory cap.
//!
//! Growth only adds free space, so the right edge we advertise only moves right (RFC 9293
//! §3.8.6, SHLD-14); a buffer never shrinks while its connection lives.
//!
//! Who decides: each ring has a limit (`Ring::set_limit`). A standalone
//! connection's limits are its ceilings, so it grows by itself in the calls that learn why (a
//! read, an ACK, a `send` that did not fit). An endpoint holds its connections' limits at their
//! capacities ([`Connection::manage_buffer_growth`]) and, after every call it makes into one,
//! grants what the connection asks for from a counter of its own
//! ([`Connection::grant_buffer_growth`]). The grant happens where the endpoint already holds the
//! connection mutably, so the core needs no shared counter, lock or atomic, and a connection
//! never holds memory the endpoint did not count.
//!
//! The moderation state lives in the receive ring's storage (allocated with the buffer, by
//! connections that receive data), so an idle TCB carries none of it.

use super::{Connection, Event, len_u32};
use crate::seq::{SeqNum, Window, WindowScale};
use crate::time::Instant;

/// Headroom over twice what was read in a round trip, in segments (Linux's figure): room for
/// small variations of the rate.
const HEADROOM_SEGMENTS: u64 = 16;

/// What the first measurement compares against: a sender's initial window (RFC 6928: ten
/// segments), so that a connection grows once the peer sends more than its first flight.
const INITIAL_SPACE_SEGMENTS: u32 = 10;

/// How many ACKs' worth of window rounding the receive buffer holds in reserve past its size
/// (SHLD-14, see `Connection::window_field`). An ACK that keeps the right edge where it was
/// may need up to 2^shift − 1 octets past the edge before it.
const ROUNDING_RESERVE_ACKS: usize = 256;

/// The receive ring's capacity for a buffer of `buffer` octets under `shift`: the buffer plus
/// its reserve for rounding our window field up (none unscaled), at most 1/16 of the buffer.
/// With the smallest shift that fits the buffer, 256 × (2^shift − 1) is below 1/128 of it, so
/// the 1/16 only binds when the shift was chosen for a larger ceiling (auto-tuning): a 64 KiB
/// buffer under the 16 MiB ceiling's shift of 9 keeps 4 KiB, the rounding of the ACKs of a
/// closing window about (`Connection::window_field` says what happens beyond).
pub(super) fn recv_ring_capacity(buffer: usize, shift: WindowScale) -> usize {
    let full = ((1 << shift.shift()) - 1) * ROUNDING_RESERVE_ACKS;
    buffer.saturating_add(full.min(buffer / 16))
}

/// The part of a receive ring of `capacity` octets held back for rounding: the inverse of
/// [`recv_ring_capacity`] (exact when the 1/16 binds and the buffer is a multiple of 16).
pub(super) fn rounding_reserve(capacity: usize, shift: WindowScale) -> usize {
    let full = ((1 << shift.shift()) - 1) * ROUNDING_RESERVE_ACKS;
    full.min(capacity / 17)
}

/// Receive-buffer moderation state (Linux's `rcvq_space` and `rcv_rtt_est`), kept in the
/// receive ring's storage.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RcvSpace {
    /// The most octets the application read in one measured round trip.
    space: u32,
    /// Where the application's reading stood when this measurement began.
    seq: SeqNum,
    /// When this measurement began; `None` until the first data arrives.
    since: Option<Instant>,
    /// The receiver's own RTT estimate in microseconds; 0 until measured.
    rtt_us: u32,
    /// Without timestamps: the RCV.NXT whose arrival ends the current one-window measurement,
    /// and when it began.
    rtt_seq: SeqNum,
    rtt_since: Option<Instant>,
    /// The TSecr the last timestamp sample came from: one sample per echo.
    last_tsecr: u32,
    /// The buffer size, in octets, that the measurements call for.
    target: u32,
}

/// What an endpoint's grant did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct BufferGrant {
    /// Octets of growth taken from the endpoint's allowance.
    pub(crate) granted: usize,
    /// The connection wanted more than was left.
    pub(crate) refused: bool,
}

impl Connection {
    /// The receive buffer's size: what we may offer, the ring less its rounding reserve.
    pub(super) fn recv_buffer_size(&self) -> usize {
        let capacity = self.recv_buf.capacity();
        capacity - rounding_reserve(capacity, self.rcv_wscale)
    }

    /// The receive buffer's reserve for rounding our window field up.
    pub(super) fn recv_rounding_reserve(&self) -> usize {
        rounding_reserve(self.recv_buf.capacity(), self.rcv_wscale)
    }

    /// The receive ring's capacity before any growth.
    fn recv_initial_capacity(&self) -> usize {
        recv_ring_capacity(self.config.recv_buffer, self.rcv_wscale)
    }

    /// A standalone connection may grow up to its ceilings by itself.
    pub(super) fn standalone_buffer_limits(&mut self) {
        let ceiling = recv_ring_capacity(self.config.recv_buffer_ceiling(), self.rcv_wscale);
        self.recv_buf.set_limit(ceiling);
        self.send_buf.set_limit(self.config.send_buffer_ceiling());
    }

    /// The connection belongs to an endpoint: it grows only by
    /// [`grant_buffer_growth`](Self::grant_buffer_growth), so every octet is counted there.
    pub(crate) fn manage_buffer_growth(&mut self) {
        self.recv_buf.set_limit(0);
        self.send_buf.set_limit(0);
    }

    /// Octets the buffers have grown past their initial sizes.
    pub(crate) fn buffer_growth(&self) -> usize {
        let recv = self.recv_buf.capacity().saturating_sub(self.recv_initial_capacity());
        recv + self.send_buf.capacity().saturating_sub(self.config.send_buffer)
    }

    /// The connection ended: buffers that grew go back to their initial size (their storage
    /// is freed), so a grown buffer is never kept for reuse.
    pub(crate) fn release_buffer_growth(&mut self) {
        let initial = self.recv_initial_capacity();
        self.recv_buf.shrink_unused(initial);
        self.send_buf.shrink_unused(self.config.send_buffer);
        self.manage_buffer_growth();
    }

    /// The endpoint offers up to `available` octets of growth: each buffer takes what it asks
    /// for, the receive buffer first (it is what the peer's sending waits on), and grows.
    #[inline]
    pub(crate) fn grant_buffer_growth(&mut self, available: usize) -> BufferGrant {
        if !self.may_want_growth() {
            return BufferGrant::default();
        }
        self.grant_wanted_growth(available)
    }

    /// Whether [`grant_buffer_growth`](Self::grant_buffer_growth) may grant anything:
    /// `false` means it would grant and refuse nothing (the endpoint then skips its call).
    #[inline]
    pub(crate) fn may_want_buffer_growth(&self) -> bool {
        self.may_want_growth()
    }

    /// [`grant_buffer_growth`](Self::grant_buffer_growth) once a buffer may want to grow (out
    /// of line: the check above runs after every call into the connection).
    fn grant_wanted_growth(&mut self, available: usize) -> BufferGrant {
        let (recv_capacity, send_capacity) = (self.recv_buf.capacity(), self.send_buf.capacity());
        let recv_want = self.recv_wanted_capacity().saturating_sub(recv_capacity);
        let send_want = self.send_wanted_capacity().saturating_sub(send_capacity);
        if recv_want == 0 && send_want == 0 {
            return BufferGrant::default();
        }
        let recv_give = recv_want.min(available);
        let send_give = send_want.min(available - recv_give);
        self.recv_buf.set_limit(recv_capacity + recv_give);
        self.send_buf.set_limit(send_capacity + send_give);
        self.autotune();
        BufferGrant {
            granted: recv_give + send_give,
            refused: recv_give < recv_want || send_give < send_want,
        }
    }

    /// Grows each buffer towards what it calls for, within its ring's limit: a receive buffer
    /// that grew may announce the larger window, a send buffer that grew under a blocked
    /// writer tells it there is room.
    #[inline]
    pub(super) fn autotune(&mut self) {
        if self.may_want_growth() {
            self.grow_wanted_buffers();
        }
    }

    /// [`autotune`](Self::autotune) once a buffer may want to grow.
    fn grow_wanted_buffers(&mut self) {
        let recv_capacity = self.recv_buf.capacity();
        let wanted = self.recv_wanted_capacity();
        if wanted > recv_capacity && self.recv_buf.grow_to(wanted) > recv_capacity {
            self.on_data_read();
        }
        if self.grow_send_buffer() && self.write_blocked {
            self.write_blocked = false;
            self.push_event(Event::Writable);
        }
    }

    /// Whether either buffer may call for growth: `false` is exact (neither
    /// [`recv_wanted_capacity`](Self::recv_wanted_capacity) nor
    /// [`send_wanted_capacity`](Self::send_wanted_capacity) exceeds its capacity), `true`
    /// means the full computation decides. Both callers run after every segment, so this
    /// reads three fields where the full computation works out the rounding reserve.
    #[inline]
    fn may_want_growth(&self) -> bool {
        // Only a blocked writer wants the send buffer to grow, and only while twice the flight
        // exceeds it (exact, and a few field reads): a bulk sender whose buffer already holds
        // that asks for nothing on each of its ACKs.
        if self.send_may_want_growth() && self.send_wanted_capacity() > self.send_buf.capacity() {
            return true;
        }
        // The buffer is the capacity less a reserve of at most 1/17 of it
        // (`rounding_reserve`), so it is at least the capacity less 1/16: a target within
        // that is within the buffer, and the receive side wants nothing.
        let capacity = self.recv_buf.capacity();
        let target = self.recv_buf.extra().map_or(0, |extra| extra.space.target as usize);
        // Then exactly as `recv_wanted_capacity` decides. The target never exceeds the
        // ceiling (`on_read_for_autotune`), so a buffer grown to it asks for nothing more.
        target > capacity - capacity / 16 && target > self.recv_buffer_size()
    }

    /// Grows the send buffer towards what a blocked writer calls for, within the limit;
    /// returns whether it grew.
    pub(super) fn grow_send_buffer(&mut self) -> bool {
        let capacity = self.send_buf.capacity();
        let wanted = self.send_wanted_capacity();
        wanted > capacity && self.send_buf.grow_to(wanted) > capacity
    }

    /// The receive ring's capacity the measurements call for: the target buffer (doubling at
    /// least, so growth reallocates O(log) times), at most the ceiling and the largest window
    /// the negotiated scale can say.
    fn recv_wanted_capacity(&self) -> usize {
        let capacity = self.recv_buf.capacity();
        let target = self
            .recv_buf
            .extra()
            .map(|extra| &extra.space)
            .map_or(0, |space| space.target as usize);
        let buffer = self.recv_buffer_size();
        if target <= buffer {
            return capacity;
        }
        let ceiling = self.recv_buffer_largest();
        let grown = target.max(buffer.saturating_mul(2)).min(ceiling);
        recv_ring_capacity(grown, self.rcv_wscale).max(capacity)
    }

    /// The largest receive buffer: the ceiling, and no more than the negotiated scale's
    /// largest window can offer.
    fn recv_buffer_largest(&self) -> usize {
        let largest = Window::from_scaled(u16::MAX, self.rcv_shift()).get() as usize;
        self.config.recv_buffer_ceiling().min(largest)
    }

    /// The send buffer's capacity a writer calls for: when `send` could not take everything,
    /// twice what may be in flight — the congestion window, or the peer's largest window if
    /// that is smaller (a cwnd that grows while the peer's window is the limit asks for
    /// nothing) — so one window is in flight and one queued behind it; doubling at least, at
    /// most the ceiling.
    fn send_wanted_capacity(&self) -> usize {
        let capacity = self.send_buf.capacity();
        if !self.send_may_want_growth() {
            return capacity;
        }
        let flight = self.cc.get().window().min(self.max_snd_wnd);
        let wanted = (flight as usize).saturating_mul(2);
        if wanted <= capacity {
            return capacity;
        }
        wanted.max(capacity.saturating_mul(2)).min(self.config.send_buffer_ceiling()).max(capacity)
    }

    /// Whether [`send_wanted_capacity`](Self::send_wanted_capacity) may exceed the capacity
    /// (`false` is exact): only for a blocked writer with no FIN queued, and only while the
    /// flight, at most the peer's largest window, could exceed half the buffer — a buffer
    /// holding twice that asks for nothing, whatever cwnd is. A few field reads, in line in
    /// the per-segment checks (the full computation's frame cost more than these tests).
    #[inline]
    fn send_may_want_growth(&self) -> bool {
        self.write_blocked
            && !self.fin_queued
            && (self.max_snd_wnd as usize).saturating_mul(2) > self.send_buf.capacity()
    }

    /// The application read: once a round trip has passed since the measurement began, see
    /// how much it read in it; if more than ever before, the buffer should hold about twice
    /// that, plus headroom, plus — in proportion to how fast the amount grew — room for a
    /// sender in slow start to double again before the next measurement (the ACK that will
    /// carry the window is one round trip ahead of the data it lets in). Time is that of the
    /// latest input (RECEIVE carries none).
    pub(super) fn on_read_for_autotune(&mut self) {
        // Runs on every read: each input is worked out only once it is needed (most reads
        // fall within a measurement's round trip and change nothing).
        let now = self.last_now;
        let read_seq = self.read_seq();
        let Some(space) = self.recv_buf.extra().map(|extra| extra.space) else { return };
        let Some(since) = space.since else {
            let initial = self.initial_space();
            if let Some(extra) = self.recv_buf.extra_mut() {
                start_measuring(&mut extra.space, initial, read_seq, now);
            }
            return;
        };
        let Some(rtt_us) = self.receiver_rtt_micros() else { return };
        // In whole microseconds, as both clocks count: the `Duration` comparison exactly.
        if now.as_micros().saturating_sub(since.as_micros()) < u64::from(rtt_us) {
            return;
        }
        let copied = read_seq.since(space.seq);
        let grown = (copied > space.space).then(|| {
            let mss = u64::from(self.rcv_mss().max(1));
            let (copied, last) = (u64::from(copied), u64::from(space.space.max(1)));
            let window = 2 * copied + HEADROOM_SEGMENTS * mss;
            let growth = window.saturating_mul(copied - last) / last;
            // Never past the largest buffer: growth stops there anyway
            // (`recv_wanted_capacity`), and a connection that reached it asks for nothing.
            let largest = u64::try_from(self.recv_buffer_largest()).unwrap_or(u64::MAX);
            window.saturating_add(growth.saturating_mul(2)).min(largest)
        });
        let Some(space) = self.recv_buf.extra_mut().map(|extra| &mut extra.space) else { return };
        if let Some(target) = grown {
            space.target = space.target.max(u32::try_from(target).unwrap_or(u32::MAX));
            space.space = copied;
        }
        space.seq = read_seq;
        space.since = Some(now);
    }

    /// In-order or out-of-order text arrived: the receiver's RTT sample. With timestamps, the
    /// first segment echoing a new TSval of ours: our ACK went, the sender answered it with
    /// this data (RFC 7323 §4's RTTM seen from the receiver). Without, the time one window of
    /// data takes to arrive, which can only overestimate, so the smallest counts (as Linux).
    #[inline(always)]
    pub(super) fn on_text_for_autotune(&mut self, now: Instant, tsecr: Option<u32>) {
        // Runs on every segment of text. Most, once measuring, echo the TSval the previous
        // one did (or none) and change nothing: that is decided here, inline, from what the
        // measurement below reads first.
        let unchanged = self.recv_buf.extra().map(|extra| &extra.space).is_none_or(|space| {
            space.since.is_some()
                && self.ts.is_on()
                && tsecr.is_none_or(|tsecr| tsecr == 0 || tsecr == space.last_tsecr)
        });
        if !unchanged {
            self.measure_rtt_for_autotune(now, tsecr);
        }
    }

    /// [`on_text_for_autotune`](Self::on_text_for_autotune) for text that may give a sample.
    fn measure_rtt_for_autotune(&mut self, now: Instant, tsecr: Option<u32>) {
        // Each input is computed only where it is used.
        let Some(space) = self.recv_buf.extra().map(|extra| &extra.space) else { return };
        let (measuring, last_tsecr, rtt_since) =
            (space.since.is_some(), space.last_tsecr, space.rtt_since);
        if !measuring {
            let (initial, read_seq) = (self.initial_space(), self.read_seq());
            if let Some(extra) = self.recv_buf.extra_mut() {
                start_measuring(&mut extra.space, initial, read_seq, now);
            }
        }
        if self.ts.is_on() {
            let Some(tsecr) = tsecr.filter(|&tsecr| tsecr != 0 && tsecr != last_tsecr) else {
                return;
            };
            let Some(sample_ms) = self.ts.rtt_sample_millis(now, tsecr) else { return };
            let Some(space) = self.recv_buf.extra_mut().map(|extra| &mut extra.space) else {
                return;
            };
            space.last_tsecr = tsecr;
            // The echo counts in milliseconds: a sample of 0 is under one. In whole
            // microseconds by integer arithmetic (below 2^31 ms, so the product fits a `u64`).
            let sample = u32::try_from(u64::from(sample_ms.max(1)) * 1_000).unwrap_or(u32::MAX);
            space.rtt_us = if space.rtt_us == 0 {
                sample
            } else {
                // A gain of 1/8, as RFC 6298 smooths SRTT.
                let smoothed = (u64::from(space.rtt_us) * 7 + u64::from(sample)) / 8;
                u32::try_from(smoothed).unwrap_or(u32::MAX)
            };
            return;
        }
        let rcv_nxt = self.rcv_nxt;
        let in_window = rtt_since.is_some()
            && self.recv_buf.extra().is_some_and(|extra| rcv_nxt.before(extra.space.rtt_seq));
        if in_window {
            return;
        }
        let window = self.rcv_wnd();
        let Some(space) = self.recv_buf.extra_mut().map(|extra| &mut extra.space) else { return };
        if let Some(since) = rtt_since {
            // The same microseconds `saturating_duration_since` counts, without a `Duration`.
            let elapsed = now.as_micros().saturating_sub(since.as_micros());
            let sample = u32::try_from(elapsed).unwrap_or(u32::MAX).max(1);
            if space.rtt_us == 0 || sample < space.rtt_us {
                space.rtt_us = sample;
            }
        }
        space.rtt_seq = rcv_nxt + window.max(1);
        space.rtt_since = Some(now);
    }

    /// The round trip the moderation measures over: the receiver's own estimate, else the
    /// smoothed RTT of what we sent (the handshake gives one on both sides).
    /// In whole microseconds (both estimates are kept so): no `Duration` on every read.
    fn receiver_rtt_micros(&self) -> Option<u32> {
        let own = self.recv_buf.extra().map(|extra| &extra.space).map_or(0, |space| space.rtt_us);
        if own > 0 { Some(own) } else { self.rtt.srtt_micros() }
    }

    /// The first measurement's baseline: a sender's initial window, at most our buffer.
    fn initial_space(&self) -> u32 {
        let initial_window = INITIAL_SPACE_SEGMENTS.saturating_mul(u32::from(self.rcv_mss()));
        initial_window.min(len_u32(self.recv_buffer_size()))
    }

    /// Forgets the measurements (a new incarnation of the TCB).
    pub(super) fn reset_autotune(&mut self) {
        if let Some(space) = self.recv_buf.extra_mut().map(|extra| &mut extra.space) {
            *space = RcvSpace::default();
        }
    }
}

fn start_measuring(space: &mut RcvSpace, initial: u32, read_seq: SeqNum, now: Instant) {
    space.space = initial;
    space.seq = read_seq;
    space.since = Some(now);
}
