//! A time-driven simulator: two connections joined by a pair of faulty one-way links under a
//! virtual clock that jumps to the next event (a delivery or a connection deadline).
//!
//! Each [`Link`] is seeded, so a run is reproducible from its seed: loss, duplication,
//! reordering (jitter and hold-backs), delay, bandwidth (serialisation queueing, optionally
//! behind a drop-tail queue of bounded octets: a bottleneck router), MTU and
//! corruption (single-bit flips, which the TCP checksum always catches). A per-segment hook can
//! drop or edit segments by script. The trace of the last segments and state changes is kept
//! for printing when a check fails, and each side's data segments are counted as they leave,
//! retransmissions apart ([`DataSent`]: the spurious-retransmission oracle's figures).

use alloc::boxed::Box;
use alloc::collections::{BinaryHeap, VecDeque};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::cmp::Reverse;
use core::net::SocketAddr;
use core::time::Duration;

use crate::connection::Connection;
use crate::event::Event;
use crate::time::Instant;
use crate::wire::Segment;

use super::{Direction, Verdict};

/// A small seeded PRNG (splitmix64): reproducible runs without a dependency.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub const fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// True with probability `per_million` / 1 000 000.
    pub fn chance(&mut self, per_million: u32) -> bool {
        self.below(1_000_000) < u64::from(per_million)
    }
}

/// How a one-way link behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkConfig {
    /// Propagation delay.
    pub delay: Duration,
    /// Extra uniform random delay in `0..=jitter` (reorders packets).
    pub jitter: Duration,
    /// Link rate: a packet occupies the link for its size × 8 / rate; packets queue behind
    /// each other. `None` is infinitely fast.
    pub bandwidth_bps: Option<u64>,
    /// Largest packet carried; bigger ones are dropped.
    pub mtu: usize,
    /// Independent loss, parts per million.
    pub loss_ppm: u32,
    /// Packets delivered twice, parts per million.
    pub duplicate_ppm: u32,
    /// Packets held back by an extra `delay` so later ones overtake them, parts per million.
    pub reorder_ppm: u32,
    /// Packets with exactly one bit flipped, parts per million.
    pub corrupt_ppm: u32,
    /// A drop-tail bottleneck queue in front of the link rate, in octets: a packet is dropped
    /// (and counted in [`LinkStats::queue_dropped`]) when the octets still waiting to be
    /// serialised, the one on the wire included, plus its own would exceed the limit. `None`
    /// queues without bound; without a `bandwidth_bps` nothing ever waits, so no limit bites.
    pub queue_limit: Option<usize>,
    /// Octets each packet takes on the link beyond the TCP segment the simulator carries (20
    /// for the IPv4 header it does not build; more for link framing), counted by the link rate
    /// and the queue limit alike.
    pub packet_overhead: usize,
}

impl LinkConfig {
    /// No delay, no faults.
    pub const fn perfect() -> Self {
        Self {
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            bandwidth_bps: None,
            mtu: 65_535,
            loss_ppm: 0,
            duplicate_ppm: 0,
            reorder_ppm: 0,
            corrupt_ppm: 0,
            queue_limit: None,
            packet_overhead: 0,
        }
    }
}

/// What a link did, counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Packets offered.
    pub sent: u64,
    /// Packets handed to the receiver (duplicates included).
    pub delivered: u64,
    /// Octets those packets took on the link ([`LinkConfig::packet_overhead`] included): what
    /// a link-utilization figure counts.
    pub delivered_octets: u64,
    /// Packets lost.
    pub lost: u64,
    /// Packets duplicated.
    pub duplicated: u64,
    /// Packets held back to be overtaken.
    pub reordered: u64,
    /// Packets with a bit flipped.
    pub corrupted: u64,
    /// Packets over the MTU.
    pub too_big: u64,
    /// Packets dropped because the bottleneck queue was full ([`LinkConfig::queue_limit`]).
    pub queue_dropped: u64,
}

/// A packet in flight.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct InFlight {
    at: Instant,
    order: u64,
    from: SocketAddr,
    to: SocketAddr,
    bytes: Vec<u8>,
}

/// A faulty one-way link.
#[derive(Clone, Debug)]
pub struct Link {
    config: LinkConfig,
    rng: Rng,
    queue: BinaryHeap<Reverse<InFlight>>,
    /// When the link finishes sending what it has, in nanoseconds: `Instant` counts whole
    /// microseconds, which would make a fast link faster than its rate.
    busy_until_ns: u64,
    order: u64,
    stats: LinkStats,
}

impl Link {
    /// A link behaving as `config`, with faults drawn from `seed`.
    pub fn new(config: LinkConfig, seed: u64) -> Self {
        Self {
            config,
            rng: Rng::new(seed),
            queue: BinaryHeap::new(),
            busy_until_ns: 0,
            order: 0,
            stats: LinkStats::default(),
        }
    }

    /// Replaces the behaviour (for instance to stop faults late in a test).
    pub fn set_config(&mut self, config: LinkConfig) {
        self.config = config;
    }

    /// What the link did so far.
    pub const fn stats(&self) -> LinkStats {
        self.stats
    }

    /// Packets in flight.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    /// Offers a packet at `now`.
    pub fn send(&mut self, now: Instant, from: SocketAddr, to: SocketAddr, bytes: &[u8]) {
        self.stats.sent += 1;
        if bytes.len() > self.config.mtu {
            self.stats.too_big += 1;
            return;
        }
        // Serialisation: the packet leaves once the link is free and its bits are out.
        let now_ns = now.as_micros().saturating_mul(1_000);
        let start_ns = now_ns.max(self.busy_until_ns);
        let on_link = bytes.len() + self.config.packet_overhead;
        if let (Some(limit), Some(bps)) = (self.config.queue_limit, self.config.bandwidth_bps) {
            // Octets not yet serialised at `now`, rounded up: what waits in the queue.
            let waiting_ns = u128::from(start_ns - now_ns);
            let waiting = (waiting_ns * u128::from(bps)).div_ceil(8_000_000_000);
            if waiting + on_link as u128 > limit as u128 {
                self.stats.queue_dropped += 1;
                return;
            }
        }
        let serialise_ns = self.config.bandwidth_bps.map_or(0, |bps| {
            let bits = (on_link as u64) * 8;
            bits.saturating_mul(1_000_000_000) / bps.max(1)
        });
        self.busy_until_ns = start_ns + serialise_ns;
        // Delivered at the first whole microsecond after the last bit is out.
        let sent_at = Instant::from_micros(self.busy_until_ns.div_ceil(1_000));
        if self.rng.chance(self.config.loss_ppm) {
            self.stats.lost += 1;
            return;
        }
        let copies = if self.rng.chance(self.config.duplicate_ppm) {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut packet = bytes.to_vec();
            if self.rng.chance(self.config.corrupt_ppm) && !packet.is_empty() {
                self.stats.corrupted += 1;
                let bit = self.rng.below(packet.len() as u64 * 8);
                if let Some(byte) = packet.get_mut((bit / 8) as usize) {
                    *byte ^= 1 << (bit % 8);
                }
            }
            let jitter_us = self.rng.below(self.config.jitter.as_micros() as u64 + 1);
            let mut at = sent_at + self.config.delay + Duration::from_micros(jitter_us);
            if self.rng.chance(self.config.reorder_ppm) {
                self.stats.reordered += 1;
                at += self.config.delay.max(Duration::from_millis(1));
            }
            self.order += 1;
            self.queue.push(Reverse(InFlight { at, order: self.order, from, to, bytes: packet }));
        }
    }

    /// The earliest delivery time of anything in flight.
    pub fn next_delivery(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse(packet)| packet.at)
    }

    /// The next packet due at or before `now`: (source, destination, bytes).
    pub fn deliver(&mut self, now: Instant) -> Option<(SocketAddr, SocketAddr, Vec<u8>)> {
        if self.next_delivery()? > now {
            return None;
        }
        let Reverse(packet) = self.queue.pop()?;
        self.stats.delivered += 1;
        self.stats.delivered_octets += (packet.bytes.len() + self.config.packet_overhead) as u64;
        Some((packet.from, packet.to, packet.bytes))
    }
}

/// What one side sent that carried data, as the simulator saw it leave (before any hook or
/// link fault): the spurious-retransmission oracle's figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DataSent {
    /// Segments carrying data.
    pub segments: u64,
    /// Those that carried octets the side had sent before (retransmissions, whatever the
    /// cause: NextSeg, the retransmission timer, a loss probe, a zero-window probe).
    pub retransmitted: u64,
    /// The end of the highest sequence space sent.
    snd_max: Option<crate::seq::SeqNum>,
}

impl DataSent {
    fn on_segment(&mut self, segment: &Segment<'_>) {
        let header = &segment.header;
        let end = header.seq + segment.seg_len();
        if !segment.payload.is_empty() {
            self.segments += 1;
            let first = header.seq + u32::from(header.flags.contains(crate::wire::Flags::SYN));
            if self.snd_max.is_some_and(|max| first.before(max)) {
                self.retransmitted += 1;
            }
        }
        if segment.seg_len() > 0 && self.snd_max.is_none_or(|max| end.after(max)) {
            self.snd_max = Some(end);
        }
    }
}

/// The API form of each output poll and each delivery, by pattern ([`Sim::forms`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FormPattern {
    /// The `n`-th output poll (either side's, counted from the simulator's start) goes
    /// through `poll_transmit_chunks` when bit `n % 16` is set, else `poll_transmit`
    /// (unless `borrowed_output` picks `poll_transmit_borrowed` for it).
    pub chunked_output: u16,
    /// The `n`-th output poll goes through `poll_transmit_borrowed` when bit `n % 16` is set
    /// (whatever `chunked_output` says).
    pub borrowed_output: u16,
    /// The `n`-th segment delivered goes through `handle_segment_bytes` when bit `n % 16` is
    /// set, else `handle_segment`.
    pub bytes_input: u16,
    /// The `n`-th delivery through `handle_segment_bytes` comes in a `BytesMut` of the
    /// packet's length plus `extra_capacity[n % 4]` octets of capacity.
    pub extra_capacity: [u16; 4],
}

impl FormPattern {
    const fn bit(pattern: u16, n: u64) -> bool {
        pattern >> (n % 16) & 1 == 1
    }
}

/// A per-segment hook: sees (and may edit) every segment's bytes before the link takes them.
pub type Hook = Box<dyn FnMut(Direction, &mut Vec<u8>) -> Verdict>;

/// Two connections over two faulty links.
pub struct Sim {
    /// Side A.
    pub a: Connection,
    /// Side B.
    pub b: Connection,
    /// The virtual clock.
    pub now: Instant,
    /// Link from A to B.
    pub a_to_b: Link,
    /// Link from B to A.
    pub b_to_a: Link,
    /// Events each side reported.
    pub events: [Vec<Event>; 2],
    /// Segments that failed the checksum at the receiver (corruption caught).
    pub checksum_drops: u64,
    /// Data segments each side (A, B) sent, and how many were retransmissions.
    pub data_sent: [DataSent; 2],
    /// Both sides send through [`Connection::poll_transmit_chunks`] (the header into a buffer,
    /// the payload as slices, joined here into one packet) instead of `poll_transmit`.
    pub chunked_output: bool,
    /// Both sides send through [`Connection::poll_transmit_borrowed`] (the header into a
    /// buffer, the payload lent, joined here into one packet), whatever `chunked_output` says.
    pub borrowed_output: bool,
    /// Deliver segments through the zero-copy input (`Connection::handle_segment_bytes`),
    /// each in a `BytesMut` of this capacity (or the packet's length, if longer), instead of
    /// `handle_segment`.
    pub bytes_input: Option<usize>,
    /// With `bytes_input`: only every other segment goes through the zero-copy input, the
    /// rest through `handle_segment` (a connection fed both forms).
    pub mixed_input: bool,
    /// Each output poll's and each delivery's form by pattern (a fuzzer's choice, changed
    /// whenever it likes); while set, in place of `chunked_output`, `bytes_input` and
    /// `mixed_input`.
    pub forms: Option<FormPattern>,
    polls: u64,
    delivered: u64,
    hook: Option<Hook>,
    trace: VecDeque<String>,
    buf: Vec<u8>,
}

/// Lines of trace kept for failure reports.
const TRACE_LINES: usize = 400;

impl Sim {
    /// Joins `a` and `b` over the two links.
    pub fn new(a: Connection, b: Connection, a_to_b: Link, b_to_a: Link, now: Instant) -> Self {
        Self {
            a,
            b,
            now,
            a_to_b,
            b_to_a,
            events: [Vec::new(), Vec::new()],
            checksum_drops: 0,
            data_sent: [DataSent::default(); 2],
            chunked_output: false,
            borrowed_output: false,
            bytes_input: None,
            mixed_input: false,
            forms: None,
            polls: 0,
            delivered: 0,
            hook: None,
            trace: VecDeque::new(),
            buf: alloc::vec![0; 65_536],
        }
    }

    /// Installs a per-segment hook (scripted drops and edits).
    pub fn set_hook(&mut self, hook: Hook) {
        self.hook = Some(hook);
    }

    /// The last segments and events, one per line, oldest first.
    pub fn trace(&self) -> String {
        let mut out = String::new();
        for line in &self.trace {
            out.push_str(line);
            out.push('\n');
        }
        out
    }

    fn note(&mut self, line: String) {
        if self.trace.len() == TRACE_LINES {
            self.trace.pop_front();
        }
        self.trace.push_back(line);
    }

    /// One step: both sides send what they have, due packets are delivered, and if nothing
    /// was due the clock jumps to the next delivery or deadline. Returns `false` when nothing
    /// can ever happen again.
    pub fn step(&mut self) -> bool {
        self.pump(Direction::AToB);
        self.pump(Direction::BToA);
        let mut delivered = false;
        while let Some((from, to, bytes)) = self.a_to_b.deliver(self.now) {
            self.receive(Direction::AToB, from, to, &bytes);
            delivered = true;
        }
        while let Some((from, to, bytes)) = self.b_to_a.deliver(self.now) {
            self.receive(Direction::BToA, from, to, &bytes);
            delivered = true;
        }
        self.collect_events();
        if delivered {
            return true;
        }
        let next = [
            self.a_to_b.next_delivery(),
            self.b_to_a.next_delivery(),
            self.a.poll_timeout(),
            self.b.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(next) = next else { return false };
        self.now = self.now.max(next);
        self.a.handle_timeout(self.now);
        self.b.handle_timeout(self.now);
        self.collect_events();
        true
    }

    /// Steps until `done` holds or `limit` of virtual time has passed; returns whether `done`
    /// held.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&mut Self) -> bool) -> bool {
        let end = self.now + limit;
        while self.now <= end {
            if done(self) {
                return true;
            }
            if !self.step() {
                return done(self);
            }
        }
        false
    }

    /// Hands everything both sides want to send to the links now.
    pub fn flush(&mut self) {
        self.pump(Direction::AToB);
        self.pump(Direction::BToA);
        self.collect_events();
    }

    fn pump(&mut self, direction: Direction) {
        loop {
            let (sender, label) = match direction {
                Direction::AToB => (&mut self.a, "A > B"),
                Direction::BToA => (&mut self.b, "B > A"),
            };
            let (chunked, borrowed) = match self.forms {
                Some(forms) => (
                    FormPattern::bit(forms.chunked_output, self.polls),
                    FormPattern::bit(forms.borrowed_output, self.polls),
                ),
                None => (self.chunked_output, self.borrowed_output),
            };
            self.polls += 1;
            let polled = if borrowed {
                sender.poll_transmit_borrowed(self.now, &mut self.buf).map(|lent| {
                    lent.map(|lent| {
                        let mut at = lent.header_len;
                        for piece in lent.payload {
                            if let Some(out) = self.buf.get_mut(at..at + piece.len()) {
                                out.copy_from_slice(piece);
                            }
                            at += piece.len();
                        }
                        lent.transmit
                    })
                })
            } else if chunked {
                sender.poll_transmit_chunks(self.now, &mut self.buf).map(|chunks| {
                    chunks.map(|chunks| {
                        let mut at = chunks.header_len;
                        for slice in chunks.payload.slices() {
                            if let Some(out) = self.buf.get_mut(at..at + slice.len()) {
                                out.copy_from_slice(slice);
                            }
                            at += slice.len();
                        }
                        chunks.transmit
                    })
                })
            } else {
                sender.poll_transmit(self.now, &mut self.buf)
            };
            let transmit = match polled {
                Ok(Some(transmit)) => transmit,
                Ok(None) => return,
                Err(error) => {
                    let line = format!("{} {label}: transmit error {error}", self.now);
                    self.note(line);
                    return;
                }
            };
            let mut bytes = self.buf.get(..transmit.len).unwrap_or(&[]).to_vec();
            if let Ok(segment) =
                Segment::parse_checked(&bytes, transmit.local.ip(), transmit.remote.ip())
            {
                let side = match direction {
                    Direction::AToB => 0,
                    Direction::BToA => 1,
                };
                if let Some(sent) = self.data_sent.get_mut(side) {
                    sent.on_segment(&segment);
                }
                let line = format!("{} {label}: {segment}", self.now);
                self.note(line);
            }
            let verdict = match self.hook.as_mut() {
                Some(hook) => hook(direction, &mut bytes),
                None => Verdict::Deliver,
            };
            if verdict == Verdict::Drop {
                let line = format!("{} {label}: (dropped by hook)", self.now);
                self.note(line);
                continue;
            }
            let link = match direction {
                Direction::AToB => &mut self.a_to_b,
                Direction::BToA => &mut self.b_to_a,
            };
            link.send(self.now, transmit.local, transmit.remote, &bytes);
        }
    }

    fn receive(&mut self, direction: Direction, from: SocketAddr, to: SocketAddr, bytes: &[u8]) {
        let receiver = match direction {
            Direction::AToB => &mut self.b,
            Direction::BToA => &mut self.a,
        };
        if receiver.local() != to {
            return;
        }
        self.delivered += 1;
        let copy_this_one = self.mixed_input && self.delivered.is_multiple_of(2);
        let bytes_capacity = match self.forms {
            Some(forms) => FormPattern::bit(forms.bytes_input, self.delivered).then(|| {
                let extra = forms.extra_capacity.get((self.delivered % 4) as usize);
                bytes.len() + usize::from(extra.copied().unwrap_or(0))
            }),
            None => self.bytes_input.filter(|_| !copy_this_one),
        };
        if let Some(capacity) = bytes_capacity {
            let mut packet = bytes::BytesMut::with_capacity(capacity.max(bytes.len()));
            packet.extend_from_slice(bytes);
            if receiver.handle_segment_bytes(self.now, from.ip(), to.ip(), packet).is_err() {
                self.checksum_drops += 1;
                let line = format!("{} {direction:?}: dropped, bad checksum", self.now);
                self.note(line);
            }
            return;
        }
        match Segment::parse_checked(bytes, from.ip(), to.ip()) {
            Ok(segment) => receiver.handle_segment(self.now, from.ip(), &segment),
            Err(_) => {
                self.checksum_drops += 1;
                let line = format!("{} {direction:?}: dropped, bad checksum", self.now);
                self.note(line);
            }
        }
    }

    fn collect_events(&mut self) {
        for index in 0..2 {
            loop {
                let connection = if index == 0 { &mut self.a } else { &mut self.b };
                let Some(event) = connection.poll_event() else { break };
                if let Event::StateChanged { from, to } = event {
                    let side = if index == 0 { "A" } else { "B" };
                    let line = format!("{} {side}: {from} -> {to}", self.now);
                    self.note(line);
                }
                if let Some(events) = self.events.get_mut(index) {
                    events.push(event);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        super::super::addr_a(port)
    }

    fn drain(link: &mut Link) -> Vec<(Instant, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some(at) = link.next_delivery() {
            while let Some((_, _, bytes)) = link.deliver(at) {
                out.push((at, bytes));
            }
        }
        out
    }

    #[test]
    fn bandwidth_serialises_packets_back_to_back() {
        let config = LinkConfig {
            delay: Duration::from_millis(5),
            bandwidth_bps: Some(1_000_000),
            ..LinkConfig::perfect()
        };
        let mut link = Link::new(config, 1);
        link.send(Instant::ZERO, addr(1), addr(2), &[1; 1250]);
        link.send(Instant::ZERO, addr(1), addr(2), &[2; 1250]);
        let times: Vec<u64> = drain(&mut link).iter().map(|(at, _)| at.as_micros()).collect();
        // 1250 octets at 1 Mbit/s take 10 ms each, then 5 ms of propagation.
        assert_eq!(times, [15_000, 25_000]);
    }

    #[test]
    fn packet_overhead_takes_link_time_and_queue_room() {
        let config = LinkConfig {
            bandwidth_bps: Some(1_000_000),
            queue_limit: Some(2_500),
            packet_overhead: 250,
            ..LinkConfig::perfect()
        };
        let mut link = Link::new(config, 1);
        for _ in 0..3 {
            link.send(Instant::ZERO, addr(1), addr(2), &[0; 1000]);
        }
        assert_eq!(link.stats().queue_dropped, 1);
        let delivered = drain(&mut link);
        // 1000 + 250 octets take 10 ms; the receiver gets the 1000 the sender sent.
        let times: Vec<u64> = delivered.iter().map(|(at, _)| at.as_micros()).collect();
        assert_eq!(times, [10_000, 20_000]);
        assert!(delivered.iter().all(|(_, bytes)| bytes.len() == 1000));
    }

    #[test]
    fn faults_are_counted_and_reproducible_from_the_seed() {
        let config = LinkConfig {
            jitter: Duration::from_millis(3),
            loss_ppm: 200_000,
            duplicate_ppm: 100_000,
            reorder_ppm: 100_000,
            corrupt_ppm: 100_000,
            ..LinkConfig::perfect()
        };
        let run = |seed| {
            let mut link = Link::new(config.clone(), seed);
            for i in 0..500u32 {
                link.send(Instant::from_micros(u64::from(i)), addr(1), addr(2), &i.to_be_bytes());
            }
            let delivered = drain(&mut link);
            (link.stats(), delivered)
        };
        let (stats, delivered) = run(9);
        assert_eq!(run(9), (stats, delivered.clone()), "same seed, same run");
        assert_ne!(run(10).1, delivered, "another seed, another run");
        assert_eq!(stats.sent, 500);
        assert_eq!(stats.delivered as usize, delivered.len());
        assert_eq!(stats.delivered, stats.sent - stats.lost + stats.duplicated);
        assert!(stats.lost > 50 && stats.duplicated > 20 && stats.corrupted > 20);
        // Corruption flips exactly one bit.
        let flipped = delivered
            .iter()
            .filter_map(|(_, bytes)| {
                let value = u32::from_be_bytes(bytes.as_slice().try_into().ok()?);
                let nearest = (0..500u32).map(|i| (i ^ value).count_ones()).min()?;
                (nearest > 0).then_some(nearest)
            })
            .collect::<Vec<_>>();
        assert!(flipped.iter().all(|&bits| bits == 1), "{flipped:?}");
        // Jitter and hold-backs reorder.
        let order: Vec<u32> = delivered
            .iter()
            .filter_map(|(_, b)| Some(u32::from_be_bytes(b.as_slice().try_into().ok()?)))
            .collect();
        assert!(order.windows(2).any(|w| w[1] < w[0]));
    }

    #[test]
    fn a_burst_beyond_the_queue_limit_is_dropped_at_the_tail() {
        let config = LinkConfig {
            delay: Duration::from_millis(5),
            bandwidth_bps: Some(1_000_000),
            queue_limit: Some(2_500),
            ..LinkConfig::perfect()
        };
        let mut link = Link::new(config, 1);
        // 1250 octets take 10 ms at 1 Mbit/s: two fit in 2500 octets, the other three of the
        // burst find the queue full.
        for i in 0..5u8 {
            link.send(Instant::ZERO, addr(1), addr(2), &[i; 1250]);
        }
        assert_eq!(link.stats().queue_dropped, 3);
        // Half a packet later 1875 octets wait (half the first, all the second): 626 more do
        // not fit, 625 do. At 20 ms only those 625 wait: a full-sized packet fits, and then 626
        // octets no longer do.
        link.send(Instant::from_micros(5_000), addr(1), addr(2), &[5; 626]);
        link.send(Instant::from_micros(5_000), addr(1), addr(2), &[6; 625]);
        link.send(Instant::from_micros(20_000), addr(1), addr(2), &[7; 1250]);
        link.send(Instant::from_micros(20_000), addr(1), addr(2), &[8; 626]);
        let stats = link.stats();
        assert_eq!((stats.sent, stats.queue_dropped, stats.lost), (9, 5, 0));
        let delivered: Vec<(u64, u8, usize)> = drain(&mut link)
            .iter()
            .map(|(at, bytes)| (at.as_micros(), bytes[0], bytes.len()))
            .collect();
        // Back to back behind each other, 5 ms of propagation after the last bit.
        assert_eq!(
            delivered,
            [(15_000, 0, 1250), (25_000, 1, 1250), (30_000, 6, 625), (40_000, 7, 1250)]
        );
        assert_eq!(link.stats().delivered, 4);
    }

    #[test]
    fn without_a_queue_limit_a_burst_waits_however_long() {
        let config = LinkConfig { bandwidth_bps: Some(1_000_000), ..LinkConfig::perfect() };
        let mut link = Link::new(config, 1);
        for i in 0..100u8 {
            link.send(Instant::ZERO, addr(1), addr(2), &[i; 1250]);
        }
        assert_eq!(link.stats().queue_dropped, 0);
        assert_eq!(drain(&mut link).len(), 100);
    }

    /// With a form pattern, output polls and deliveries take the forms it sets: packets
    /// through the zero-copy input pin memory at the receiver (where the copying input pins
    /// none), and the data arrives exactly.
    #[test]
    fn a_form_pattern_chooses_each_packets_forms() {
        use crate::config::Config;
        use crate::seq::SeqNum;
        let now = Instant::ZERO;
        let (a_addr, b_addr) = (super::super::addr_a(1000), super::super::addr_b(80));
        let run = |forms: Option<FormPattern>| {
            let a =
                Connection::connect(Config::with_fixed_isn(SeqNum::new(7)), now, a_addr, b_addr);
            let b = Connection::listen(Config::with_fixed_isn(SeqNum::new(9)), now, b_addr);
            let (Ok(a), link) = (a, LinkConfig::perfect()) else { panic!("valid addresses") };
            let mut sim = Sim::new(a, b, Link::new(link.clone(), 1), Link::new(link, 2), now);
            sim.forms = forms;
            let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
            let mut sent = 0;
            let mut received = Vec::new();
            let mut most_pinned = 0;
            for _ in 0..10_000 {
                if let Ok(taken) = sim.a.send(sim.now, data.get(sent..).unwrap_or(&[])) {
                    sent += taken;
                }
                if !sim.step() {
                    break;
                }
                most_pinned = most_pinned.max(sim.b.status().recv_pinned);
                while let Ok(Some(chunk)) = sim.b.read_chunk(usize::MAX) {
                    received.extend_from_slice(&chunk);
                }
                if received.len() == data.len() {
                    break;
                }
            }
            assert_eq!(received, data);
            most_pinned
        };
        assert_eq!(run(None), 0);
        let all = FormPattern {
            chunked_output: u16::MAX,
            borrowed_output: 0x5555,
            bytes_input: u16::MAX,
            extra_capacity: [u16::MAX; 4],
        };
        // Packets of 64 KiB more than their segment pin too much to be kept as slices: they
        // are copied (pinning what they carry); 2 KiB more are kept and pin their buffers.
        assert!(run(Some(all)) > 0);
        let slices = FormPattern { extra_capacity: [2048; 4], ..all };
        assert!(run(Some(slices)) >= 2048);
    }

    #[test]
    fn oversized_packets_are_dropped() {
        let mut link = Link::new(LinkConfig { mtu: 100, ..LinkConfig::perfect() }, 1);
        link.send(Instant::ZERO, addr(1), addr(2), &[0; 101]);
        assert_eq!(link.stats().too_big, 1);
        assert_eq!(link.next_delivery(), None);
    }
}
