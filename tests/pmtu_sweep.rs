//! Path-MTU discovery under random faults: two connections (MTU 1500) over simulated links
//! with a narrower hop in the middle (576 to 1400 octets) that drops every larger packet and
//! answers it with "packet too big" — or, in a black hole, with nothing — on top of random
//! loss, duplication, reordering and delay. For each seed both sides' data must arrive
//! byte-exact, both must close orderly, a connection with unacknowledged data must always have
//! a timer, and a side that met the narrow hop must end up sending segments that pass it
//! (RFC 1191, RFC 8201, RFC 4821 §7.7; MUST-54).
//!
//! `cargo test` runs 300 seeds; `PMTU_SEEDS=<n>` runs more. A failing seed prints its trace;
//! rerun it alone with
//! `PMTU_SEED=<seed> cargo test --test pmtu_sweep one_seed -- --nocapture`.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use tcp_proto::testing::sim::{Link, LinkConfig, Rng, Sim};
use tcp_proto::testing::{Direction, Verdict, addr_a, addr_b};
use tcp_proto::wire::Segment;
use tcp_proto::{CloseReason, Config, Connection, IcmpError, Instant, SeqNum, State};

/// An application on one side: writes `outgoing`, half-closes, reads until end of stream.
struct App {
    outgoing: Vec<u8>,
    written: usize,
    shut: bool,
    received: Vec<u8>,
}

impl App {
    fn drive(&mut self, conn: &mut Connection, now: Instant) {
        if self.written < self.outgoing.len()
            && let Ok(n) = conn.send(now, &self.outgoing[self.written..])
        {
            self.written += n;
        }
        if self.written == self.outgoing.len() && !self.shut && conn.state() != State::SynSent {
            self.shut = conn.shutdown(now).is_ok();
        }
        let mut buf = [0u8; 4096];
        while let Ok(n) = conn.recv(&mut buf) {
            if n == 0 {
                break;
            }
            self.received.extend_from_slice(&buf[..n]);
        }
    }
}

fn config(iss: u32) -> Config {
    let mut config = Config::with_fixed_isn(SeqNum::new(iss));
    config.send_buffer = 64 * 1024;
    config.recv_buffer = 64 * 1024;
    // Delivery is checked, not giving up: retransmit forever.
    config.r2_data = None;
    config.r2_syn = None;
    config.msl = Duration::from_secs(3600);
    config
}

/// Segments the narrow hop refused since it was last looked at, per direction: their
/// sequence numbers, which the ICMP error quotes.
type Refused = Rc<RefCell<[Vec<SeqNum>; 2]>>;

fn run_seed(seed: u64) -> Result<(), String> {
    let mut rng = Rng::new(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x706d_7475);
    let hop_mtu = [576usize, 1000, 1280, 1400][rng.below(4) as usize];
    // How often the narrow hop's ICMP reaches the sender: never (a black hole), sometimes,
    // always.
    let icmp_ppm = [0u32, 300_000, 1_000_000][rng.below(3) as usize];
    let a_data: Vec<u8> = (0..rng.below(150_000)).map(|_| rng.next_u64() as u8).collect();
    let b_data: Vec<u8> = (0..rng.below(40_000)).map(|_| rng.next_u64() as u8).collect();
    let link = |rng: &mut Rng| LinkConfig {
        delay: Duration::from_millis(1 + rng.below(30)),
        jitter: Duration::from_millis(rng.below(10)),
        loss_ppm: rng.below(50_001) as u32,
        duplicate_ppm: rng.below(20_000) as u32,
        reorder_ppm: rng.below(50_000) as u32,
        ..LinkConfig::perfect()
    };
    let (link_ab, link_ba) = (link(&mut rng), link(&mut rng));
    let now = Instant::ZERO;
    let a = Connection::connect(config(rng.next_u64() as u32), now, addr_a(40_000), addr_b(80))
        .map_err(|e| format!("connect: {e}"))?;
    let b = Connection::listen(config(rng.next_u64() as u32), now, addr_b(80));
    let mut sim =
        Sim::new(a, b, Link::new(link_ab, seed * 2 + 1), Link::new(link_ba, seed * 2 + 2), now);
    // The narrow hop: the simulated links carry TCP segments, so the IP header (20) counts
    // on top of each segment's length.
    let refused: Refused = Rc::new(RefCell::new([Vec::new(), Vec::new()]));
    let hook_refused = Rc::clone(&refused);
    sim.set_hook(Box::new(move |direction, bytes| {
        if bytes.len() + 20 <= hop_mtu {
            return Verdict::Deliver;
        }
        if let Ok(segment) = Segment::parse(bytes) {
            let index = usize::from(direction == Direction::BToA);
            hook_refused.borrow_mut()[index].push(segment.header.seq);
        }
        Verdict::Drop
    }));
    let mut app_a = App { outgoing: a_data.clone(), written: 0, shut: false, received: Vec::new() };
    let mut app_b = App { outgoing: b_data.clone(), written: 0, shut: false, received: Vec::new() };
    let mut met_hop = [false; 2];
    let mut invariant: Option<String> = None;
    let finished = sim.run_until(Duration::from_secs(100 * 3600), |sim| {
        // The narrow hop's ICMP, when it gets through, reaches the sender a moment later.
        let refused_now = std::mem::take(&mut *refused.borrow_mut());
        for (index, seqs) in refused_now.into_iter().enumerate() {
            met_hop[index] |= !seqs.is_empty();
            let conn = if index == 0 { &mut sim.a } else { &mut sim.b };
            for seq in seqs {
                if rng.chance(icmp_ppm) {
                    let error = IcmpError::PacketTooBig { mtu: hop_mtu as u16 };
                    conn.handle_icmp_error(sim.now, error, seq);
                }
            }
        }
        app_a.drive(&mut sim.a, sim.now);
        app_b.drive(&mut sim.b, sim.now);
        sim.flush();
        for (side, conn) in [("A", &sim.a), ("B", &sim.b)] {
            let status = conn.status();
            let waiting = status.snd_una != status.snd_nxt || status.send_queued > 0;
            let timed = !matches!(status.state, State::Closed | State::TimeWait | State::Listen);
            if waiting && timed && conn.poll_timeout().is_none() && invariant.is_none() {
                invariant = Some(format!("{side}: unacknowledged data, no timer: {status:?}"));
            }
        }
        sim.a.state() == State::Closed && sim.b.state() == State::Closed
    });
    let report = |what: String, sim: &Sim| {
        format!(
            "seed {seed} (hop MTU {hop_mtu}, ICMP {icmp_ppm} ppm): {what}\ntrace:\n{}",
            sim.trace()
        )
    };
    if let Some(problem) = invariant {
        return Err(report(problem, &sim));
    }
    if !finished {
        return Err(report(format!("not closed: A {} B {}", sim.a.state(), sim.b.state()), &sim));
    }
    if app_b.received != a_data || app_a.received != b_data {
        let what = format!(
            "B got {} of {} octets, A got {} of {}",
            app_b.received.len(),
            a_data.len(),
            app_a.received.len(),
            b_data.len()
        );
        return Err(report(what, &sim));
    }
    for (index, (side, conn)) in [("A", &sim.a), ("B", &sim.b)].into_iter().enumerate() {
        if conn.close_reason() != Some(CloseReason::Orderly) {
            return Err(report(format!("{side} ended {:?}", conn.close_reason()), &sim));
        }
        if conn.counters().illegal_transitions != 0 {
            return Err(report(format!("{side} attempted an illegal transition"), &sim));
        }
        let mss = usize::from(conn.status().effective_mss);
        if met_hop[index] && mss + 40 > hop_mtu {
            return Err(report(format!("{side} still sends {mss}-octet segments"), &sim));
        }
    }
    Ok(())
}

/// Seeds per run: 300, or `PMTU_SEEDS` (a soak).
fn seeds() -> u64 {
    std::env::var("PMTU_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(300)
}

#[test]
fn packet_too_big_and_black_holes_under_random_faults_deliver_every_byte_must_54() {
    let failures: Vec<String> = (0..seeds()).filter_map(|seed| run_seed(seed).err()).collect();
    if let Some(first) = failures.first() {
        panic!("{} of {} seeds failed; first:\n{first}", failures.len(), seeds());
    }
}

#[test]
fn one_seed() {
    let seed = std::env::var("PMTU_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    if let Err(report) = run_seed(seed) {
        panic!("{report}");
    }
}
