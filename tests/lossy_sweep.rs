//! The seeded lossy-network sweep: for each seed, random transfer sizes, buffer sizes and link
//! faults (loss up to 30 %, duplication, reordering, single-bit corruption, delay and jitter).
//! Each run must deliver exactly the sender's bytes in order in both directions, close cleanly
//! on both sides, and never leave a connection with unacknowledged data and no timer. In half
//! the seeds the faults stop at a random moment, and from then on the liveness oracle
//! (`tcp_proto::testing::liveness`) demands progress: a reopened window restarts data within a
//! round trip, and delivery and the close finish within bounds derived from the timers; in half
//! of those, B reads nothing for up to ten minutes after the calm (a slow reader).
//!
//! The reordering seeds draw links that reorder heavily (10–50 % of segments held back by a
//! further one-way delay, up to 30 ms of jitter, some duplication) and lose and corrupt
//! nothing: the path is calm from the start, so the liveness bounds hold throughout, and at
//! the end the storm oracle (`Liveness::check_no_storm`) bounds the retransmissions — every
//! one of them spurious — to a small part of the data segments sent. Both sides negotiate SACK
//! (on by default) and, in two seeds of three, timestamps.
//!
//! `cargo test` runs 1 000 seeds and 300 reordering seeds; `cargo test --release --test
//! lossy_sweep -- --ignored` runs 10 000 and 3 000 and prints seeds per second, what was
//! resent, and how many seeds the storm oracle judged (those whose round trip stays below
//! the minimum RTO). A failing seed
//! prints its trace and can be rerun alone with `SWEEP_SEED=<seed> cargo test --test
//! lossy_sweep one_seed -- --nocapture` (`SWEEP_PROFILE=reordering` for a reordering seed).

use std::time::Duration;

use tcp_proto::testing::liveness::Liveness;
use tcp_proto::testing::sim::{Link, LinkConfig, Rng, Sim};
use tcp_proto::testing::{addr_a, addr_b};
use tcp_proto::{CallError, CloseReason, Config, Connection, Instant, SeqNum, State};

/// An application on one side: writes `outgoing`, half-closes, reads until end of stream.
struct App {
    outgoing: Vec<u8>,
    written: usize,
    shut: bool,
    /// A slow reader: nothing is read before this instant (its window closes meanwhile).
    reads_from: Instant,
    received: Vec<u8>,
    eof: bool,
    /// Read with `recv_bytes` / `read_chunk` / `recv` in turn (the zero-copy path's seeds).
    mixed_reads: bool,
    reads: u64,
}

impl App {
    fn new(outgoing: Vec<u8>) -> Self {
        Self {
            outgoing,
            written: 0,
            shut: false,
            reads_from: Instant::ZERO,
            received: Vec::new(),
            eof: false,
            mixed_reads: false,
            reads: 0,
        }
    }

    fn drive(&mut self, conn: &mut Connection, now: Instant) {
        if self.written < self.outgoing.len()
            && let Ok(n) = conn.send(now, &self.outgoing[self.written..])
        {
            self.written += n;
        }
        if self.written == self.outgoing.len() && !self.shut && conn.state() != State::SynSent {
            self.shut = conn.shutdown(now).is_ok();
        }
        if now < self.reads_from {
            return;
        }
        let mut buf = [0u8; 4096];
        while self.mixed_reads {
            self.reads += 1;
            let read = match self.reads % 3 {
                0 => conn.recv_bytes(),
                1 => conn.read_chunk(1 + (self.reads % 700) as usize),
                _ => conn.recv(&mut buf).map(|n| (n > 0).then(|| buf[..n].to_vec().into())),
            };
            match read {
                Ok(Some(chunk)) => self.received.extend_from_slice(&chunk),
                Ok(None) => return,
                Err(CallError::Closing) => {
                    self.eof = true;
                    return;
                }
                Err(_) => return,
            }
        }
        loop {
            match conn.recv(&mut buf) {
                Ok(0) => break,
                Ok(n) => self.received.extend_from_slice(&buf[..n]),
                Err(CallError::Closing) => {
                    self.eof = true;
                    break;
                }
                Err(_) => break,
            }
        }
    }
}

fn bytes(rng: &mut Rng, n: usize) -> Vec<u8> {
    (0..n).map(|_| rng.next_u64() as u8).collect()
}

/// Which links a seed draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Profile {
    /// Loss up to 30 %, duplication, reordering, corruption, delay and jitter; half the seeds
    /// stop faulting at a random moment.
    Faulty,
    /// Heavy reordering and some duplication; nothing lost or corrupted, calm from the start.
    Reordering,
}

fn config(rng: &mut Rng, iss: u32) -> Config {
    let mut config = Config::with_fixed_isn(SeqNum::new(iss));
    config.send_buffer = 2048 + rng.below(62_000) as usize;
    config.recv_buffer = 2048 + rng.below(62_000) as usize;
    config.nodelay = rng.below(2) == 0;
    if rng.below(3) == 0 {
        config.delayed_ack = None;
    }
    // The sweep checks delivery, not giving up: retransmit forever, and keep TIME-WAIT long
    // enough that the peer's last FIN retransmissions always find it.
    config.r2_data = None;
    config.r2_syn = None;
    config.msl = Duration::from_secs(3600);
    config
}

/// What one seed did.
struct Outcome {
    virtual_time: Duration,
    segments: u64,
    /// Data segments both sides sent, and how many were retransmissions.
    data_segments: u64,
    retransmitted: u64,
    /// The storm oracle applied (see `Liveness::storm_oracle_applies`).
    storm_judged: bool,
}

fn run_seed(seed: u64, profile: Profile) -> Result<Outcome, String> {
    run_seed_via(seed, profile, None)
}

/// `bytes_input`: segments reach both sides through `handle_segment_bytes`, each in a buffer
/// of that many octets, and the applications read with the zero-copy calls too.
fn run_seed_via(
    seed: u64,
    profile: Profile,
    bytes_input: Option<usize>,
) -> Result<Outcome, String> {
    run_seed_mixed(seed, profile, bytes_input, false)
}

/// `mixed`: only every other segment goes through `handle_segment_bytes`.
fn run_seed_mixed(
    seed: u64,
    profile: Profile,
    bytes_input: Option<usize>,
    mixed: bool,
) -> Result<Outcome, String> {
    // Each profile draws from a stream of its own, so the faulty seeds stay what they were.
    let stream = match profile {
        Profile::Faulty => 0x5eed,
        Profile::Reordering => 0x7e0_4de7,
    };
    let mut rng = Rng::new(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ stream);
    // The reordering seeds send more: a storm shows in how the count grows with the flow.
    let (a_max, b_max) = match profile {
        Profile::Faulty => (120_000, 30_000),
        Profile::Reordering => (1_000_000, 100_000),
    };
    let a_len = rng.below(a_max) as usize;
    let b_len = rng.below(b_max) as usize;
    let a_data = bytes(&mut rng, a_len);
    let b_data = bytes(&mut rng, b_len);
    let link = |rng: &mut Rng| match profile {
        Profile::Faulty => LinkConfig {
            delay: Duration::from_millis(1 + rng.below(50)),
            jitter: Duration::from_millis(rng.below(20)),
            bandwidth_bps: None,
            mtu: 65_535,
            loss_ppm: rng.below(300_001) as u32,
            duplicate_ppm: rng.below(50_000) as u32,
            reorder_ppm: rng.below(100_000) as u32,
            corrupt_ppm: rng.below(50_000) as u32,
            queue_limit: None,
            packet_overhead: 0,
        },
        Profile::Reordering => {
            let delay = 10 + rng.below(41);
            LinkConfig {
                delay: Duration::from_millis(delay),
                jitter: Duration::from_millis(rng.below(delay / 4 + 1)),
                bandwidth_bps: None,
                mtu: 65_535,
                loss_ppm: 0,
                duplicate_ppm: rng.below(20_000) as u32,
                reorder_ppm: 100_000 + rng.below(400_001) as u32,
                corrupt_ppm: 0,
                queue_limit: None,
                packet_overhead: 0,
            }
        }
    };
    let (link_ab, link_ba) = (link(&mut rng), link(&mut rng));
    let longest_one_way = |link: &LinkConfig| link.delay * 2 + link.jitter;
    let round_trip = longest_one_way(&link_ab) + longest_one_way(&link_ba);
    let now = Instant::ZERO;
    let iss_a = rng.next_u64() as u32;
    let iss_b = rng.next_u64() as u32;
    let (mut config_a, mut config_b) = (config(&mut rng, iss_a), config(&mut rng, iss_b));
    if profile == Profile::Reordering && rng.below(3) == 0 {
        config_a.timestamps = false;
        config_b.timestamps = false;
    }
    // Drawn from a generator of its own, so the seeds' links and data stay what they were.
    let mut calm_rng = Rng::new(seed ^ 0xca1a_ca1a);
    let mut calm_at = match profile {
        Profile::Faulty => {
            (calm_rng.below(2) == 0).then(|| now + Duration::from_millis(calm_rng.below(20_000)))
        }
        // Nothing is ever lost: the liveness bounds hold from the start.
        Profile::Reordering => Some(now),
    };
    let mut liveness = Liveness::new(&config_a, &config_b);
    let a = Connection::connect(config_a, now, addr_a(40_000), addr_b(80))
        .map_err(|e| format!("connect: {e}"))?;
    let b = Connection::listen(config_b, now, addr_b(80));
    let mut sim =
        Sim::new(a, b, Link::new(link_ab, seed * 2 + 1), Link::new(link_ba, seed * 2 + 2), now);
    let mut app_a = App::new(a_data.clone());
    let mut app_b = App::new(b_data.clone());
    sim.bytes_input = bytes_input;
    sim.mixed_input = mixed;
    app_a.mixed_reads = bytes_input.is_some();
    app_b.mixed_reads = bytes_input.is_some();
    if let Some(calm) = calm_at
        && profile == Profile::Faulty
        && calm_rng.below(2) == 0
    {
        // B reads nothing until a while after the calm: A probes a closed window for minutes,
        // and B's window update must then restart A's data within a round trip.
        app_b.reads_from = calm + Duration::from_secs(calm_rng.below(600));
        liveness.application_paused();
    }
    let mut invariant: Option<String> = None;
    let mut reader_resumed = false;
    // Through the bytes path, B holds slices of A's packets at some point.
    let mut b_pinned = false;
    let finished = sim.run_until(Duration::from_secs(100 * 3600), |sim| {
        b_pinned |= sim.b.status().recv_pinned > 0;
        app_a.drive(&mut sim.a, sim.now);
        app_b.drive(&mut sim.b, sim.now);
        if !reader_resumed && sim.now >= app_b.reads_from {
            reader_resumed = true;
            liveness.application_resumed(sim.now);
        }
        if calm_at.is_some_and(|at| sim.now >= at) {
            calm_at = None;
            if profile == Profile::Faulty {
                sim.a_to_b.set_config(LinkConfig::perfect());
                sim.b_to_a.set_config(LinkConfig::perfect());
            }
            liveness.calm(sim.now, round_trip);
        }
        // After the connections had their say, anything waiting to go must have a timer.
        sim.flush();
        if let Err(problem) = liveness.check(sim)
            && invariant.is_none()
        {
            invariant = Some(problem);
        }
        for (side, conn) in [("A", &sim.a), ("B", &sim.b)] {
            let status = conn.status();
            let waiting = status.snd_una != status.snd_nxt || status.send_queued > 0;
            let timed = !matches!(status.state, State::Closed | State::TimeWait | State::Listen);
            if waiting && timed && conn.poll_timeout().is_none() && invariant.is_none() {
                invariant =
                    Some(format!("{side} has unacknowledged data and no timer: {status:?}"));
            }
        }
        sim.a.state() == State::Closed && sim.b.state() == State::Closed
    });
    let report = |what: String, sim: &Sim| {
        format!(
            "seed {seed}: {what}\nA→B {:?}\nB→A {:?}\ntrace (last segments):\n{}",
            sim.a_to_b.stats(),
            sim.b_to_a.stats(),
            sim.trace()
        )
    };
    if let Some(problem) = invariant {
        return Err(report(problem, &sim));
    }
    if bytes_input.is_some() && !mixed && a_len > 0 && !b_pinned {
        return Err(report("B never held a slice of a packet".into(), &sim));
    }
    if !finished {
        let what = format!("not closed: A {} B {}", sim.a.state(), sim.b.state());
        return Err(report(what, &sim));
    }
    if app_b.received != a_data {
        let first = app_b.received.iter().zip(&a_data).position(|(x, y)| x != y);
        let what = format!(
            "B got {} of {} octets; first difference at {first:?}",
            app_b.received.len(),
            a_data.len()
        );
        return Err(report(what, &sim));
    }
    if app_a.received != b_data {
        let first = app_a.received.iter().zip(&b_data).position(|(x, y)| x != y);
        let what = format!(
            "A got {} of {} octets; first difference at {first:?}",
            app_a.received.len(),
            b_data.len()
        );
        return Err(report(what, &sim));
    }
    for (side, conn) in [("A", &sim.a), ("B", &sim.b)] {
        if conn.close_reason() != Some(CloseReason::Orderly) {
            return Err(report(format!("{side} ended {:?}", conn.close_reason()), &sim));
        }
        if conn.counters().illegal_transitions != 0 {
            return Err(report(format!("{side} attempted an illegal transition"), &sim));
        }
    }
    if let Err(problem) = liveness.check_no_storm(&sim, round_trip) {
        return Err(report(problem, &sim));
    }
    let storm_judged = liveness.storm_oracle_applies(&sim, round_trip);
    let stats = (sim.a_to_b.stats(), sim.b_to_a.stats());
    let [a, b] = sim.data_sent;
    Ok(Outcome {
        virtual_time: Duration::from_micros(sim.now.as_micros()),
        segments: stats.0.sent + stats.1.sent,
        data_segments: a.segments + b.segments,
        retransmitted: a.retransmitted + b.retransmitted,
        storm_judged,
    })
}

fn sweep(seeds: std::ops::Range<u64>, profile: Profile) {
    sweep_via(seeds, profile, None);
}

fn sweep_via(seeds: std::ops::Range<u64>, profile: Profile, bytes_input: Option<usize>) {
    sweep_mixed(seeds, profile, bytes_input, false);
}

fn sweep_mixed(
    seeds: std::ops::Range<u64>,
    profile: Profile,
    bytes_input: Option<usize>,
    mixed: bool,
) {
    let started = std::time::Instant::now();
    let (mut segments, mut data_segments, mut retransmitted, mut judged) = (0, 0, 0, 0);
    let mut worst = (0.0f64, 0);
    let mut failures = Vec::new();
    for seed in seeds.clone() {
        match run_seed_mixed(seed, profile, bytes_input, mixed) {
            Ok(outcome) => {
                judged += u32::from(outcome.storm_judged);
                segments += outcome.segments;
                data_segments += outcome.data_segments;
                retransmitted += outcome.retransmitted;
                let ratio = outcome.retransmitted as f64 / outcome.data_segments.max(1) as f64;
                if ratio > worst.0 {
                    worst = (ratio, seed);
                }
            }
            Err(report) => failures.push((seed, report)),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let count = seeds.end - seeds.start;
    println!(
        "{count} {profile:?} seeds in {elapsed:.1} s ({:.0} seeds/s, {segments} segments; \
         {retransmitted} of {data_segments} data segments resent, at most {:.1} % in seed {}; \
         the storm oracle judged {judged})",
        count as f64 / elapsed,
        worst.0 * 100.0,
        worst.1
    );
    if let Some((_, first)) = failures.first() {
        let failed: Vec<u64> = failures.iter().map(|&(seed, _)| seed).collect();
        panic!("{} of {count} seeds failed ({failed:?}); first:\n{first}", failures.len());
    }
}

#[test]
fn sweep_1000_seeds_delivers_every_byte_and_closes_cleanly() {
    sweep(0..1000, Profile::Faulty);
}

/// Before the receiver reported duplicates wholly below RCV.NXT with a D-SACK
/// (`tests/sack_findings.rs`, `a_duplicate_below_rcv_nxt_is_reported_in_a_dsack_rfc_2883_4`),
/// 86 of these 300 seeds failed the storm oracle: RACK never widened its reordering window.
#[test]
fn sweep_300_reordering_seeds_without_a_retransmission_storm() {
    sweep(0..300, Profile::Reordering);
}

/// The zero-copy receive path (`handle_segment_bytes`, each packet in a 2 KiB buffer, read
/// with `recv_bytes`, `read_chunk` and `recv` in turn) under the same faults: every octet
/// exactly once, in order, with loss, duplicates, reordering and corruption.
#[test]
fn sweep_300_seeds_through_the_bytes_path() {
    sweep_via(0..300, Profile::Faulty, Some(2048));
}

/// Heavy reordering through the zero-copy path: out-of-order slices, trimmed overlaps.
#[test]
fn sweep_100_reordering_seeds_through_the_bytes_path() {
    sweep_via(0..100, Profile::Reordering, Some(2048));
}

/// Both input forms on the same connections, segment by segment: data arriving by copy
/// while slices are held is copied into chunks, and a slice arriving while the ring holds
/// data is copied into the ring until it empties.
#[test]
fn sweep_200_seeds_mixing_the_input_forms() {
    sweep_mixed(1000..1200, Profile::Faulty, Some(2048), true);
}

#[test]
#[ignore = "soak: 10 000 seeds and 3 000 reordering seeds; run with --release and report the figures"]
fn sweep_10000_seeds_soak() {
    sweep(0..10_000, Profile::Faulty);
    sweep(0..3_000, Profile::Reordering);
}

#[test]
fn one_seed() {
    let seed = std::env::var("SWEEP_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(7);
    let profile = match std::env::var("SWEEP_PROFILE").as_deref() {
        Ok("reordering") => Profile::Reordering,
        _ => Profile::Faulty,
    };
    match run_seed(seed, profile) {
        Ok(outcome) => println!(
            "seed {seed}: ok in {:?} virtual, {} segments",
            outcome.virtual_time, outcome.segments
        ),
        Err(report) => panic!("{report}"),
    }
}
