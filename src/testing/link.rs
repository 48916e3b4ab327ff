//! A deterministic faulty one-way link for the simulator: propagation delay, jitter,
//! serialisation at a fixed rate, an MTU, a drop-tail queue limit, and seeded loss,
//! duplication, reordering and single-bit corruption.
//!
//! Every random choice comes from a seeded [`Rng`], so a run is reproducible from its seed and
//! configuration alone. Packets are plain byte vectors; the link knows nothing about TCP.

use alloc::collections::BinaryHeap;
use alloc::vec::Vec;
use core::cmp::{Ordering, Reverse};
use core::time::Duration;

use crate::time::Instant;

/// A small seeded PRNG (splitmix64): reproducible runs without a dependency.
///
/// Any seed, zero included, gives a full-period stream.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator for `seed`.
    pub const fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub const fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (always 0 when `n` is 0 or 1; one draw is consumed either way).
    pub fn below(&mut self, n: u64) -> u64 {
        // Multiply-high: maps 64 random bits onto `0..n` without a division.
        let wide = (u128::from(self.next_u64()) * u128::from(n)) >> 64;
        u64::try_from(wide).unwrap_or(0)
    }

    /// True with probability `per_million` / 1 000 000 (always at 1 000 000 and above, never
    /// at 0; one draw is consumed either way, so the stream does not depend on the rates).
    pub fn chance(&mut self, per_million: u32) -> bool {
        self.below(1_000_000) < u64::from(per_million)
    }
}

/// How a one-way link behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkConfig {
    /// One-way propagation delay.
    pub delay: Duration,
    /// Extra uniform random delay in `0..=jitter`, drawn per packet (this reorders packets
    /// sent closer together than the jitter).
    pub jitter: Duration,
    /// Link rate in bits per second: a packet of `n` octets occupies the link for
    /// `n * 8 / rate` seconds, and packets queue behind each other (FIFO at the sender side).
    /// `None` is infinitely fast.
    pub bandwidth_bps: Option<u64>,
    /// Largest packet carried, in octets; bigger ones are dropped (counted as `too_big`).
    pub mtu: usize,
    /// Independent loss, parts per million.
    pub loss_ppm: u32,
    /// Packets delivered twice, parts per million.
    pub duplicate_ppm: u32,
    /// Packets held back by an extra `delay` (at least 1 ms) so later ones overtake them, parts
    /// per million.
    pub reorder_ppm: u32,
    /// Packets with exactly one random bit flipped, parts per million (drawn per copy, so each
    /// copy of a duplicated packet may be corrupted on its own).
    pub corrupt_ppm: u32,
    /// Drop-tail: a packet offered while this many packets are in flight is dropped (counted as
    /// `queue_drops`). `None` is unbounded.
    pub queue_limit: Option<usize>,
}

impl LinkConfig {
    /// Zero delay, infinite rate, MTU 65 535, no faults, no queue limit.
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
        }
    }
}

impl Default for LinkConfig {
    /// [`LinkConfig::perfect`].
    fn default() -> Self {
        Self::perfect()
    }
}

/// What a link did, counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Packets offered to [`Link::send`].
    pub sent: u64,
    /// Packets handed out by [`Link::deliver`] (duplicates included).
    pub delivered: u64,
    /// Packets lost at random.
    pub lost: u64,
    /// Packets scheduled twice.
    pub duplicated: u64,
    /// Copies held back to be overtaken.
    pub reordered: u64,
    /// Copies with a bit flipped.
    pub corrupted: u64,
    /// Packets over the MTU.
    pub too_big: u64,
    /// Packets dropped because the queue limit was reached.
    pub queue_drops: u64,
}

/// A packet in flight, ordered by delivery time and then by the order it was scheduled in.
#[derive(Clone, Debug)]
struct InFlight {
    at: Instant,
    order: u64,
    bytes: Vec<u8>,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for InFlight {}

impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.order).cmp(&(other.at, other.order))
    }
}

/// A deterministic faulty one-way link.
///
/// Call [`Link::send`] with each packet the sender emits, then [`Link::deliver`] until it
/// returns `None` for each instant the clock reaches; [`Link::next_delivery`] says when to wake.
#[derive(Clone, Debug)]
pub struct Link {
    config: LinkConfig,
    rng: Rng,
    queue: BinaryHeap<Reverse<InFlight>>,
    /// When the link has finished serialising what it was given, in nanoseconds: `Instant`
    /// counts whole microseconds, which would round a fast link's per-packet time away.
    busy_until_ns: u64,
    order: u64,
    stats: LinkStats,
}

impl Link {
    /// A link behaving as `config`, with its faults drawn from `seed`.
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

    /// Offers a packet at `now`; it is dropped (too big, queue full, lost) or scheduled for
    /// delivery, possibly twice, possibly corrupted.
    ///
    /// Order of events: the MTU check, then the queue limit (packets already due but not yet
    /// taken by [`Link::deliver`] still count as in flight), then serialisation (a packet lost
    /// on the wire still occupied the link), then loss, duplication, and per copy corruption,
    /// jitter and reordering.
    pub fn send(&mut self, now: Instant, packet: &[u8]) {
        self.stats.sent += 1;
        if packet.len() > self.config.mtu {
            self.stats.too_big += 1;
            return;
        }
        if self.config.queue_limit.is_some_and(|limit| self.queue.len() >= limit) {
            self.stats.queue_drops += 1;
            return;
        }
        // Serialisation: the packet starts once the link is free, and has left when its last
        // bit is out.
        let start_ns = now.as_micros().saturating_mul(1_000).max(self.busy_until_ns);
        let serialise_ns = self.config.bandwidth_bps.map_or(0, |bps| {
            let bits = u64::try_from(packet.len()).unwrap_or(u64::MAX).saturating_mul(8);
            bits.saturating_mul(1_000_000_000) / bps.max(1)
        });
        self.busy_until_ns = start_ns.saturating_add(serialise_ns);
        // Sent at the first whole microsecond after the last bit is out.
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
            let mut bytes = packet.to_vec();
            if self.rng.chance(self.config.corrupt_ppm) && !bytes.is_empty() {
                let bits = u64::try_from(bytes.len()).unwrap_or(u64::MAX).saturating_mul(8);
                let bit = self.rng.below(bits);
                let byte = usize::try_from(bit / 8).ok().and_then(|i| bytes.get_mut(i));
                if let Some(byte) = byte {
                    *byte ^= 1 << (bit % 8);
                    self.stats.corrupted += 1;
                }
            }
            let jitter_us = u64::try_from(self.config.jitter.as_micros()).unwrap_or(u64::MAX);
            let extra_us = self.rng.below(jitter_us.saturating_add(1));
            let mut at = sent_at + self.config.delay + Duration::from_micros(extra_us);
            if self.rng.chance(self.config.reorder_ppm) {
                self.stats.reordered += 1;
                at += self.config.delay.max(Duration::from_millis(1));
            }
            self.order += 1;
            self.queue.push(Reverse(InFlight { at, order: self.order, bytes }));
        }
    }

    /// The earliest delivery time of anything in flight.
    pub fn next_delivery(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse(packet)| packet.at)
    }

    /// Pops the next packet due at or before `now` (in delivery-time order; ties in send
    /// order), or `None` if nothing is due yet.
    pub fn deliver(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.next_delivery()? > now {
            return None;
        }
        let Reverse(packet) = self.queue.pop()?;
        self.stats.delivered += 1;
        Some(packet.bytes)
    }

    /// Packets scheduled and not yet delivered (duplicates count twice).
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    /// What the link did so far.
    pub const fn stats(&self) -> LinkStats {
        self.stats
    }

    /// Replaces the behaviour from now on (for instance to stop faults late in a test).
    /// Packets already in flight keep their delivery times and contents; the random stream
    /// and the serialisation backlog carry over.
    pub fn set_config(&mut self, config: LinkConfig) {
        self.config = config;
    }

    /// The current behaviour.
    pub const fn config(&self) -> &LinkConfig {
        &self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn ms(millis: u64) -> Instant {
        Instant::from_millis(millis)
    }

    /// Everything the link will ever deliver, with its delivery time.
    fn drain(link: &mut Link) -> Vec<(Instant, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some(at) = link.next_delivery() {
            let packet = link.deliver(at).expect("due packet is delivered");
            out.push((at, packet));
        }
        out
    }

    fn packets(n: u8) -> Vec<Vec<u8>> {
        (0..n).map(|i| vec![i; 100]).collect()
    }

    #[test]
    fn rng_is_seeded_and_bounded() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        let mut c = Rng::new(8);
        let xs: Vec<u64> = (0..16).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..16).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..16).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
        let mut r = Rng::new(0);
        assert_ne!(r.next_u64(), 0);
        for n in [1, 2, 3, 10, 1_000_000, u64::MAX] {
            for _ in 0..1_000 {
                assert!(r.below(n) < n);
            }
        }
        assert_eq!(r.below(0), 0);
        assert!((0..1_000).all(|_| r.chance(1_000_000)));
        assert!((0..1_000).all(|_| !r.chance(0)));
        let hits = (0..100_000).filter(|_| r.chance(250_000)).count();
        assert!((24_000..26_000).contains(&hits), "{hits}");
    }

    #[test]
    fn perfect_link_delivers_in_order_after_the_delay() {
        let config = LinkConfig { delay: Duration::from_millis(5), ..LinkConfig::perfect() };
        let mut link = Link::new(config, 1);
        for (i, packet) in packets(10).iter().enumerate() {
            link.send(ms(i as u64), packet);
        }
        assert_eq!(link.in_flight(), 10);
        assert_eq!(link.next_delivery(), Some(ms(5)));
        assert_eq!(link.deliver(ms(4)), None);
        let got = drain(&mut link);
        let expected: Vec<(Instant, Vec<u8>)> =
            packets(10).into_iter().enumerate().map(|(i, p)| (ms(i as u64 + 5), p)).collect();
        assert_eq!(got, expected);
        assert_eq!(link.in_flight(), 0);
        assert_eq!(link.next_delivery(), None);
        assert_eq!(link.stats(), LinkStats { sent: 10, delivered: 10, ..LinkStats::default() });
    }

    #[test]
    fn zero_delay_delivers_at_once_and_ties_keep_send_order() {
        let mut link = Link::new(LinkConfig::perfect(), 1);
        for packet in packets(5) {
            link.send(ms(3), &packet);
        }
        let mut got = Vec::new();
        while let Some(packet) = link.deliver(ms(3)) {
            got.push(packet);
        }
        assert_eq!(got, packets(5));
    }

    #[test]
    fn deliver_takes_everything_due_but_nothing_later() {
        let config = LinkConfig { delay: Duration::from_millis(10), ..LinkConfig::perfect() };
        let mut link = Link::new(config, 1);
        link.send(ms(0), b"first");
        link.send(ms(5), b"second");
        assert_eq!(link.deliver(ms(12)), Some(b"first".to_vec()));
        assert_eq!(link.deliver(ms(12)), None);
        assert_eq!(link.next_delivery(), Some(ms(15)));
        assert_eq!(link.deliver(ms(100)), Some(b"second".to_vec()));
    }

    #[test]
    fn total_loss_drops_everything() {
        let config = LinkConfig { loss_ppm: 1_000_000, ..LinkConfig::perfect() };
        let mut link = Link::new(config, 3);
        for packet in packets(50) {
            link.send(ms(0), &packet);
        }
        assert_eq!(link.in_flight(), 0);
        assert!(drain(&mut link).is_empty());
        assert_eq!(link.stats(), LinkStats { sent: 50, lost: 50, ..LinkStats::default() });
    }

    #[test]
    fn partial_loss_is_roughly_the_rate() {
        let config = LinkConfig { loss_ppm: 100_000, ..LinkConfig::perfect() };
        let mut link = Link::new(config, 4);
        for _ in 0..10_000 {
            link.send(ms(0), b"x");
        }
        let stats = link.stats();
        assert!((800..1_200).contains(&stats.lost), "{stats:?}");
        assert_eq!(drain(&mut link).len() as u64, 10_000 - stats.lost);
    }

    #[test]
    fn duplication_delivers_every_packet_twice() {
        let config = LinkConfig {
            delay: Duration::from_millis(1),
            duplicate_ppm: 1_000_000,
            ..LinkConfig::perfect()
        };
        let mut link = Link::new(config, 5);
        for (i, packet) in packets(4).iter().enumerate() {
            link.send(ms(i as u64), packet);
        }
        assert_eq!(link.in_flight(), 8);
        let got: Vec<Vec<u8>> = drain(&mut link).into_iter().map(|(_, p)| p).collect();
        let expected: Vec<Vec<u8>> = packets(4).into_iter().flat_map(|p| [p.clone(), p]).collect();
        assert_eq!(got, expected);
        assert_eq!(
            link.stats(),
            LinkStats { sent: 4, delivered: 8, duplicated: 4, ..LinkStats::default() }
        );
    }

    #[test]
    fn corruption_flips_exactly_one_bit() {
        let config = LinkConfig { corrupt_ppm: 1_000_000, ..LinkConfig::perfect() };
        let mut link = Link::new(config, 6);
        let original: Vec<u8> = (0..=255).collect();
        let mut flipped = Vec::new();
        for _ in 0..200 {
            link.send(ms(0), &original);
            let got = link.deliver(ms(0)).expect("delivered");
            assert_eq!(got.len(), original.len());
            let diff: u32 = got.iter().zip(&original).map(|(a, b)| (a ^ b).count_ones()).sum();
            assert_eq!(diff, 1);
            let at = got.iter().zip(&original).position(|(a, b)| a != b).expect("one differs");
            flipped.push(at);
        }
        // The bit is random: it lands in many different octets.
        flipped.sort_unstable();
        flipped.dedup();
        assert!(flipped.len() > 50, "{}", flipped.len());
        assert_eq!(link.stats().corrupted, 200);
        // An empty packet has no bit to flip: delivered as is, not counted.
        link.send(ms(0), &[]);
        assert_eq!(link.deliver(ms(0)), Some(Vec::new()));
        assert_eq!(link.stats().corrupted, 200);
    }

    #[test]
    fn bandwidth_serialises_packets_back_to_back() {
        let config = LinkConfig {
            delay: Duration::from_millis(20),
            bandwidth_bps: Some(1_000_000),
            ..LinkConfig::perfect()
        };
        let mut link = Link::new(config, 7);
        // 1250 octets = 10 000 bits = 10 ms at 1 Mbit/s; the second queues behind the first.
        link.send(ms(0), &[1; 1250]);
        link.send(ms(0), &[2; 1250]);
        let got = drain(&mut link);
        let times: Vec<Instant> = got.iter().map(|(at, _)| *at).collect();
        assert_eq!(times, [ms(30), ms(40)]);
        // Once the link is idle again a packet only pays its own serialisation time.
        link.send(ms(100), &[3; 125]);
        assert_eq!(link.next_delivery(), Some(ms(121)));
    }

    #[test]
    fn fast_links_keep_sub_microsecond_serialisation() {
        // 100 octets at 1 Gbit/s take 0.8 µs each: ten of them take 8 µs, not 10.
        let config = LinkConfig { bandwidth_bps: Some(1_000_000_000), ..LinkConfig::perfect() };
        let mut link = Link::new(config, 8);
        for packet in packets(10) {
            link.send(ms(0), &packet);
        }
        let last = drain(&mut link).last().map(|(at, _)| *at);
        assert_eq!(last, Some(Instant::from_micros(8)));
    }

    #[test]
    fn jitter_reorders_for_some_seed() {
        let config = LinkConfig {
            delay: Duration::from_millis(10),
            jitter: Duration::from_millis(5),
            ..LinkConfig::perfect()
        };
        let reordered = (0..20).any(|seed| {
            let mut link = Link::new(config.clone(), seed);
            for (i, packet) in packets(10).iter().enumerate() {
                link.send(Instant::from_micros(i as u64 * 100), packet);
            }
            let got = drain(&mut link);
            assert_eq!(got.len(), 10);
            assert!(got.iter().all(|(at, _)| (ms(10)..=ms(16)).contains(at)));
            got.into_iter().map(|(_, p)| p).collect::<Vec<_>>() != packets(10)
        });
        assert!(reordered);
    }

    #[test]
    fn reorder_holds_packets_back_so_later_ones_overtake() {
        let config = LinkConfig {
            delay: Duration::from_millis(10),
            reorder_ppm: 300_000,
            ..LinkConfig::perfect()
        };
        let mut link = Link::new(config, 9);
        for (i, packet) in packets(20).iter().enumerate() {
            link.send(ms(i as u64), packet);
        }
        let stats = link.stats();
        assert!(stats.reordered > 0 && stats.reordered < 20, "{stats:?}");
        let got = drain(&mut link);
        assert_eq!(got.len(), 20);
        // Held-back packets arrive exactly one extra delay late.
        let late = got
            .iter()
            .filter(|(at, packet)| {
                let sent = packet.first().copied().map_or(0, u64::from);
                *at == ms(sent + 20)
            })
            .count();
        assert_eq!(late as u64, stats.reordered);
        let order: Vec<Vec<u8>> = got.into_iter().map(|(_, p)| p).collect();
        assert_ne!(order, packets(20));
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(sorted, packets(20));
    }

    #[test]
    fn same_seed_same_outcome() {
        let config = LinkConfig {
            delay: Duration::from_millis(10),
            jitter: Duration::from_millis(3),
            bandwidth_bps: Some(10_000_000),
            loss_ppm: 100_000,
            duplicate_ppm: 100_000,
            reorder_ppm: 100_000,
            corrupt_ppm: 100_000,
            ..LinkConfig::perfect()
        };
        let run = |seed: u64| {
            let mut link = Link::new(config.clone(), seed);
            for (i, packet) in packets(200).iter().enumerate() {
                link.send(Instant::from_micros(i as u64 * 50), packet);
            }
            (drain(&mut link), link.stats())
        };
        let (first, stats) = run(42);
        assert_eq!(run(42), (first.clone(), stats));
        assert_ne!(run(43).0, first);
        // Every kind of fault happened.
        assert!(stats.lost > 0 && stats.duplicated > 0, "{stats:?}");
        assert!(stats.reordered > 0 && stats.corrupted > 0, "{stats:?}");
        assert_eq!(stats.delivered, 200 - stats.lost + stats.duplicated);
    }

    #[test]
    fn oversized_packets_are_dropped_and_counted() {
        let config = LinkConfig { mtu: 1500, ..LinkConfig::perfect() };
        let mut link = Link::new(config, 10);
        link.send(ms(0), &[0; 1500]);
        link.send(ms(0), &[0; 1501]);
        link.send(ms(0), &[0; 9000]);
        assert_eq!(drain(&mut link).len(), 1);
        assert_eq!(
            link.stats(),
            LinkStats { sent: 3, delivered: 1, too_big: 2, ..LinkStats::default() }
        );
    }

    #[test]
    fn queue_limit_drops_at_the_tail() {
        let config = LinkConfig {
            delay: Duration::from_millis(10),
            queue_limit: Some(3),
            ..LinkConfig::perfect()
        };
        let mut link = Link::new(config, 11);
        for packet in packets(5) {
            link.send(ms(0), &packet);
        }
        assert_eq!(link.in_flight(), 3);
        assert_eq!(link.stats().queue_drops, 2);
        let got: Vec<Vec<u8>> = drain(&mut link).into_iter().map(|(_, p)| p).collect();
        assert_eq!(got, packets(3));
        // Room again once delivered.
        link.send(ms(20), b"later");
        assert_eq!(link.in_flight(), 1);
        assert_eq!(link.stats().queue_drops, 2);
    }

    #[test]
    fn set_config_stops_faults() {
        let lossy = LinkConfig { loss_ppm: 1_000_000, ..LinkConfig::perfect() };
        let mut link = Link::new(lossy, 12);
        link.send(ms(0), b"lost");
        assert_eq!(link.config().loss_ppm, 1_000_000);
        link.set_config(LinkConfig::perfect());
        assert_eq!(link.config(), &LinkConfig::perfect());
        link.send(ms(1), b"kept");
        assert_eq!(link.deliver(ms(1)), Some(b"kept".to_vec()));
        assert_eq!(
            link.stats(),
            LinkStats { sent: 2, delivered: 1, lost: 1, ..LinkStats::default() }
        );
    }
}
