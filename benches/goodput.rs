//! Goodput in virtual time: one bulk transfer per case over the two-connection simulator
//! (`tcp_proto::testing::sim`), deterministic from its seeds, so every figure is exactly
//! reproducible and the real time it takes is only the simulation's cost.
//!
//! The path: two one-way links of `RTT / 2` propagation each at the case's rate, every packet
//! charged 20 octets of IPv4 header beyond the TCP segment (1500-octet packets at MTU 1500:
//! MSS 1460, 1448 octets of data with timestamps), each link behind a drop-tail queue of
//! max(1 × BDP, 16 packets). Random independent loss hits the data direction only; ACKs are
//! never lost at random (they only share the queue rule, which they never fill). Both sides
//! use `Config` defaults (buffers included) with SACK on or off on both; the sender keeps its
//! send buffer full and the receiver reads everything at once. Goodput is the octets the
//! receiving application read in a fixed virtual time after the handshake, over that time.
//!
//! Output: one `RESULT goodput_<cc>_<sack|nosack>_loss<percent>_rtt<ms>ms_<mbit>mbit` line
//! per case (Mbit/s and retransmission-timer expiries per 10 000 data segments sent), one
//! `RESULT longfat_1000mbit_100ms utilization` line, a markdown table of the matrix for
//! `docs/performance.md`, and `CHECK <name> pass|FAIL (<figures>)` lines for issue #18's
//! targets. A failed target is reported, never a panic; the exit status is non-zero only
//! when a run broke (no handshake, a stall, the connection ending, or wrong octets read).
//!
//! `cargo bench --bench goodput` (options after `--`: `--secs S` for the matrix's virtual
//! duration, `--only SUBSTRING` to run the matching cases alone).

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::{Duration, Instant as WallClock};

use tcp_proto::congestion::{NewReno, initial_window};
use tcp_proto::testing::sim::{Link, LinkConfig, Sim};
use tcp_proto::testing::{addr_a, addr_b};
use tcp_proto::{Config, Connection, Instant, SeqNum, State};

/// The packet size on the links: MTU 1500.
const PACKET: usize = 1500;
/// The IPv4 header the simulator's links charge beyond each TCP segment.
const IP_HEADER: usize = 20;
/// The smallest bottleneck queue, in packets, however small the BDP.
const MIN_QUEUE_PACKETS: usize = 16;
/// The matrix's virtual duration after the handshake: at least 10 s and 300 RTTs (a 100 ms
/// path at 1 % loss then sees some 30 loss episodes even at Mathis's rate).
const MIN_SECS: u64 = 10;
const MIN_RTTS: u64 = 300;
/// `longfat` measures the first 10 s after the handshake, as issue #18 asks.
const LONGFAT_SECS: u64 = 10;

const LOSS_PPM: [u32; 4] = [0, 1_000, 10_000, 50_000];
const RTT_MS: [u64; 2] = [1, 100];
const MBIT: [u64; 2] = [10, 1000];

/// The congestion controller a case runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cc {
    NewReno,
    Cubic,
}

impl Cc {
    const fn name(self) -> &'static str {
        match self {
            Self::NewReno => "newreno",
            Self::Cubic => "cubic",
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Case {
    cc: Cc,
    sack: bool,
    loss_ppm: u32,
    rtt_ms: u64,
    mbit: u64,
}

impl Case {
    fn loss_percent(self) -> f64 {
        f64::from(self.loss_ppm) / 10_000.0
    }

    fn variant(self) -> String {
        format!("{}_{}", self.cc.name(), if self.sack { "sack" } else { "nosack" })
    }

    fn path(self) -> String {
        format!("loss{}_rtt{}ms_{}mbit", self.loss_percent(), self.rtt_ms, self.mbit)
    }

    fn name(self) -> String {
        format!("goodput_{}_{}", self.variant(), self.path())
    }

    /// One seed per path, shared by the four controller/SACK variants: each meets the same
    /// loss draw for its n-th packet.
    fn seed(self) -> u64 {
        u64::from(self.loss_ppm) * 1_000_003 + self.rtt_ms * 1_009 + self.mbit
    }
}

/// What one run measured.
#[derive(Clone, Copy, Debug)]
struct Outcome {
    /// Octets the receiving application read in the measured time.
    delivered: u64,
    /// Octets the data direction's link delivered in the measured time, every header included.
    link_octets: u64,
    seconds: f64,
    /// Data segments the sender sent (as the simulator saw them leave, retransmissions
    /// included) and how many were retransmissions.
    data_segments: u64,
    retransmitted: u64,
    /// Retransmission-timer expiries (`Counters::retransmission_timeouts`).
    rtos: u64,
    sack_recoveries: u64,
    loss_probes: u64,
    /// Data-direction packets lost at random and dropped by the full queue.
    lost: u64,
    queue_dropped: u64,
    mss: u16,
}

impl Outcome {
    fn mbit_per_s(&self) -> f64 {
        self.delivered as f64 * 8.0 / self.seconds / 1e6
    }

    fn rto_per_10k(&self) -> f64 {
        if self.data_segments == 0 {
            0.0
        } else {
            self.rtos as f64 * 10_000.0 / self.data_segments as f64
        }
    }
}

/// The side's `Config`: the defaults, with SACK (and with it RACK-TLP, which only runs on a
/// connection that negotiated SACK) on or off.
fn config(iss: u32, sack: bool) -> Config {
    let mut config = Config::with_fixed_isn(SeqNum::new(iss));
    config.sack = sack;
    config
}

/// Puts the sender on the case's controller once the handshake has settled the MSS. NewReno
/// is installed explicitly; CUBIC is the default controller (until it is, `cubic` runs
/// whatever the default is). When `Config` gains a field choosing the controller, this is the
/// one place to change: set it in `config` instead.
fn choose_controller(sender: &mut Connection, cc: Cc) {
    match cc {
        Cc::NewReno => {
            let mss = u32::from(sender.status().effective_mss);
            sender.set_congestion_control(Box::new(NewReno::new(initial_window(mss))));
        }
        Cc::Cubic => {}
    }
}

/// The data-direction link (`loss_ppm` random loss) or the ACK direction (none).
fn link(rtt_ms: u64, mbit: u64, loss_ppm: u32) -> LinkConfig {
    let bdp = (mbit * 1_000_000 / 8 * rtt_ms / 1_000) as usize;
    LinkConfig {
        delay: Duration::from_micros(rtt_ms * 500),
        bandwidth_bps: Some(mbit * 1_000_000),
        mtu: PACKET - IP_HEADER,
        loss_ppm,
        queue_limit: Some(bdp.max(MIN_QUEUE_PACKETS * PACKET)),
        packet_overhead: IP_HEADER,
        ..LinkConfig::perfect()
    }
}

/// The stream the sender writes: octet `i` is `i % 251`, so the receiver can check every one.
struct Pattern(Vec<u8>);

const CHUNK: usize = 256 * 1024;

impl Pattern {
    fn new() -> Self {
        Self((0..CHUNK + 251).map(|i| (i % 251) as u8).collect())
    }

    /// `len` (≤ `CHUNK`) octets of the stream from offset `at`.
    fn at(&self, at: u64, len: usize) -> &[u8] {
        let start = (at % 251) as usize;
        &self.0[start..start + len]
    }
}

/// Runs one transfer: handshake, then `secs` of virtual time with the sender always writing.
fn run(case: Case, secs: u64, pattern: &Pattern) -> Result<Outcome, String> {
    let now = Instant::ZERO;
    let a = Connection::connect(config(1, case.sack), now, addr_a(40_000), addr_b(80))
        .map_err(|e| format!("connect: {e:?}"))?;
    let b = Connection::listen(config(2, case.sack), now, addr_b(80));
    let data = Link::new(link(case.rtt_ms, case.mbit, case.loss_ppm), case.seed());
    let acks = Link::new(link(case.rtt_ms, case.mbit, 0), case.seed() ^ 0x5555);
    let mut sim = Sim::new(a, b, data, acks, now);

    let established =
        |sim: &mut Sim| sim.a.state() == State::Established && sim.b.state() == State::Established;
    if !sim.run_until(Duration::from_secs(30), established) {
        return Err(format!("no handshake\n{}", post_mortem(&sim)));
    }
    choose_controller(&mut sim.a, case.cc);
    if sim.a.status().sack != case.sack {
        return Err(format!("SACK negotiated {} on a {} case", sim.a.status().sack, case.sack));
    }

    let start = sim.now;
    let end = start + Duration::from_secs(secs);
    let link_octets_at_start = sim.a_to_b.stats().delivered_octets;
    let (mut written, mut read) = (0u64, 0u64);
    let mut buf = vec![0u8; CHUNK];
    let mut broken = None;
    sim.run_until(Duration::from_secs(secs + 1), |sim| {
        // Octets delivered after the end do not count.
        if sim.now > end {
            return true;
        }
        loop {
            match sim.a.send(sim.now, pattern.at(written, CHUNK)) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) => {
                    broken = Some(format!("send failed: {e}"));
                    return true;
                }
            }
        }
        loop {
            match sim.b.recv(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if buf[..n] != *pattern.at(read, n) {
                        broken = Some(format!("wrong octets read at offset {read}"));
                        return true;
                    }
                    read += n as u64;
                }
                Err(e) => {
                    broken = Some(format!("receive failed: {e}"));
                    return true;
                }
            }
        }
        if sim.a.state() != State::Established {
            broken = Some(format!("sender left ESTABLISHED: {}", sim.a.state()));
            return true;
        }
        sim.now >= end
    });
    if let Some(why) = broken {
        return Err(format!("{why}\n{}", post_mortem(&sim)));
    }
    if sim.now < end {
        let why = format!("the simulation stalled at {} (no packet in flight, no timer)", sim.now);
        return Err(format!("{why}\n{}", post_mortem(&sim)));
    }
    let counters = *sim.a.counters();
    let sent = sim.data_sent[0];
    let link = sim.a_to_b.stats();
    Ok(Outcome {
        link_octets: link.delivered_octets - link_octets_at_start,
        delivered: read,
        seconds: secs as f64,
        data_segments: sent.segments,
        retransmitted: sent.retransmitted,
        rtos: counters.retransmission_timeouts,
        sack_recoveries: counters.sack_recoveries,
        loss_probes: counters.loss_probes,
        lost: link.lost,
        queue_dropped: link.queue_dropped,
        mss: sim.a.status().effective_mss,
    })
}

/// What a broken run leaves to read: both sides' status, the sender's counters and the last
/// lines of the trace.
fn post_mortem(sim: &Sim) -> String {
    let trace = sim.trace();
    let lines: Vec<&str> = trace.lines().collect();
    let tail = lines[lines.len().saturating_sub(20)..].join("\n");
    format!(
        "sender {:?}\nreceiver {:?}\nsender {:?}\nlast trace lines:\n{tail}",
        sim.a.status(),
        sim.b.status(),
        sim.a.counters()
    )
}

/// The Mathis et al. (1997) bound: a Reno flow under random loss `p` runs at about
/// MSS / RTT × C / √p with C = √(3/2) ≈ 1.22 (RTT the path's base RTT); in Mbit/s.
fn mathis_mbit(mss: u16, rtt_ms: u64, loss_ppm: u32) -> f64 {
    let p = f64::from(loss_ppm) / 1e6;
    f64::from(mss) * 8.0 / (rtt_ms as f64 / 1e3) * 1.22 / p.sqrt() / 1e6
}

struct Options {
    /// Overrides the matrix's virtual duration.
    secs: Option<u64>,
    only: Option<String>,
}

fn options() -> Result<Options, String> {
    let mut options = Options { secs: None, only: None };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--secs" => {
                let value = args.next().ok_or("--secs needs a value")?;
                options.secs = Some(value.parse().map_err(|_| format!("bad --secs {value}"))?);
            }
            "--only" => options.only = Some(args.next().ok_or("--only needs a value")?),
            // `cargo bench` passes `--bench` to every bench binary.
            "--bench" => {}
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(options)
}

fn matrix() -> Vec<Case> {
    let mut cases = Vec::new();
    for mbit in MBIT {
        for rtt_ms in RTT_MS {
            for loss_ppm in LOSS_PPM {
                for cc in [Cc::NewReno, Cc::Cubic] {
                    for sack in [false, true] {
                        cases.push(Case { cc, sack, loss_ppm, rtt_ms, mbit });
                    }
                }
            }
        }
    }
    cases
}

fn main() -> ExitCode {
    let options = match options() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("goodput: {e}");
            return ExitCode::FAILURE;
        }
    };
    let pattern = Pattern::new();
    let wall = WallClock::now();
    let mut broken = 0usize;
    let mut results: Vec<(Case, Outcome)> = Vec::new();
    for case in matrix() {
        let name = case.name();
        if options.only.as_ref().is_some_and(|only| !name.contains(only.as_str())) {
            continue;
        }
        let started = WallClock::now();
        let secs = options.secs.unwrap_or(MIN_SECS.max(MIN_RTTS * case.rtt_ms / 1_000));
        match run(case, secs, &pattern) {
            Ok(outcome) => {
                println!(
                    "RESULT {name} mbit_per_s tcp-proto={:.3} rto_per_10k={:.1}",
                    outcome.mbit_per_s(),
                    outcome.rto_per_10k()
                );
                eprintln!(
                    "  {name}: {secs} s virtual, {} data segments ({} retransmitted), {} RTOs, {} SACK recoveries, \
                     {} loss probes; link lost {} at random, {} at the full queue; MSS {}; \
                     {:.1} s real",
                    outcome.data_segments,
                    outcome.retransmitted,
                    outcome.rtos,
                    outcome.sack_recoveries,
                    outcome.loss_probes,
                    outcome.lost,
                    outcome.queue_dropped,
                    outcome.mss,
                    started.elapsed().as_secs_f64()
                );
                results.push((case, outcome));
            }
            Err(why) => {
                broken += 1;
                println!("RESULT {name} mbit_per_s tcp-proto=broken");
                eprintln!("goodput: {name} broke: {why}");
            }
        }
    }

    let longfat_case = Case { cc: Cc::Cubic, sack: true, loss_ppm: 0, rtt_ms: 100, mbit: 1000 };
    let run_longfat = options.only.as_ref().is_none_or(|only| "longfat".contains(only.as_str()));
    let mut longfat = None;
    if run_longfat {
        let started = WallClock::now();
        // The default controller and the default `Config` (no buffer tweaks).
        match run(longfat_case, LONGFAT_SECS, &pattern) {
            Ok(outcome) => {
                // Link utilization: what the link carried for the connection over what it could
                // have (at 0 % loss nothing is sent twice). Goodput is capped below it by the
                // headers (1448 of 1500 octets); both are printed.
                let capacity = 1e9 / 8.0 * outcome.seconds;
                let utilization = outcome.link_octets as f64 / capacity;
                let goodput_fraction = outcome.mbit_per_s() / 1000.0;
                println!(
                    "RESULT longfat_1000mbit_100ms utilization tcp-proto={utilization:.3} \
                     goodput_fraction={goodput_fraction:.3}"
                );
                eprintln!(
                    "  longfat: {} octets in {LONGFAT_SECS} s, {} RTOs, {:.1} s real",
                    outcome.delivered,
                    outcome.rtos,
                    started.elapsed().as_secs_f64()
                );
                longfat = Some(utilization);
            }
            Err(why) => {
                broken += 1;
                println!("RESULT longfat_1000mbit_100ms utilization tcp-proto=broken");
                eprintln!("goodput: longfat broke: {why}");
            }
        }
    }

    println!();
    print!("{}", markdown(&results));
    println!();
    for line in checks(&results, longfat) {
        println!("{line}");
    }
    eprintln!(
        "goodput: {} runs in {:.1} s real",
        results.len() + usize::from(longfat.is_some()),
        wall.elapsed().as_secs_f64(),
    );
    if broken > 0 {
        eprintln!("goodput: {broken} run(s) broke");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// The matrix as a markdown table: a row per path, a column per controller and SACK setting,
/// each cell "Mbit/s (RTOs per 10 000 data segments)".
fn markdown(results: &[(Case, Outcome)]) -> String {
    let variants = ["newreno_nosack", "newreno_sack", "cubic_nosack", "cubic_sack"];
    let mut out = String::new();
    out.push_str(
        "| rate | RTT | loss | newreno nosack | newreno sack | cubic nosack | cubic sack |\n",
    );
    out.push_str("|---:|---:|---:|---:|---:|---:|---:|\n");
    let mut paths: Vec<Case> = Vec::new();
    for (case, _) in results {
        if !paths.iter().any(|p| p.path() == case.path()) {
            paths.push(*case);
        }
    }
    for path in paths {
        let _ = write!(
            out,
            "| {} Mbit/s | {} ms | {} % |",
            path.mbit,
            path.rtt_ms,
            path.loss_percent()
        );
        for variant in variants {
            let cell = results
                .iter()
                .find(|(case, _)| case.path() == path.path() && case.variant() == variant)
                .map_or_else(
                    || " – |".to_owned(),
                    |(_, o)| format!(" {:.3} ({:.1}) |", o.mbit_per_s(), o.rto_per_10k()),
                );
            out.push_str(&cell);
        }
        out.push('\n');
    }
    out
}

/// Issue #18's targets, one line each.
fn checks(results: &[(Case, Outcome)], longfat: Option<f64>) -> Vec<String> {
    let verdict = |ok: bool| if ok { "pass" } else { "FAIL" };
    let mut lines = Vec::new();
    if let Some(utilization) = longfat {
        lines.push(format!(
            "CHECK longfat_utilization_at_least_0.9 {} (utilization {utilization:.3})",
            verdict(utilization >= 0.9)
        ));
    }
    let find = |variant: &str, path: &str| {
        results.iter().find(|(case, _)| case.variant() == variant && case.path() == path)
    };
    for mbit in MBIT {
        for rtt_ms in RTT_MS {
            for loss_ppm in [10_000, 50_000] {
                let path = Case { cc: Cc::Cubic, sack: true, loss_ppm, rtt_ms, mbit }.path();
                if let (Some((_, cubic)), Some((_, reno))) =
                    (find("cubic_sack", &path), find("newreno_nosack", &path))
                {
                    lines.push(format!(
                        "CHECK cubic_sack_beats_newreno_nosack_{path} {} (cubic_sack {:.3} vs \
                         newreno_nosack {:.3} Mbit/s)",
                        verdict(cubic.mbit_per_s() > reno.mbit_per_s()),
                        cubic.mbit_per_s(),
                        reno.mbit_per_s()
                    ));
                }
            }
        }
    }
    for (case, outcome) in results {
        if case.loss_ppm == 10_000 && case.rtt_ms == 100 {
            let bound = mathis_mbit(outcome.mss, case.rtt_ms, case.loss_ppm);
            lines.push(format!(
                "CHECK mathis_{}_{} {} ({:.3} Mbit/s, bound {:.3} = {} × 8 bit / {} ms × 1.22 / √{})",
                case.variant(),
                case.path(),
                verdict(outcome.mbit_per_s() >= bound),
                outcome.mbit_per_s(),
                bound,
                outcome.mss,
                case.rtt_ms,
                f64::from(case.loss_ppm) / 1e6
            ));
        }
    }
    lines
}
