//! Two connections over a pair of links whose faults (loss, duplication, reordering,
//! corruption, delay) the fuzzer chooses, with the applications' writes and closes interleaved.
//! Whatever was delivered is always a prefix of what was sent; no connection holds
//! unacknowledged data without a timer. Once the links stop faulting, the liveness oracle
//! (`tcp_proto::testing::liveness`) demands progress: a reopened window restarts data within a
//! round trip, everything is delivered and both sides close within bounds derived from the
//! timers, and an error ending only where the faults justify it — so without one, every octet
//! sent arrives. Both sides negotiate SACK and timestamps (the defaults). Where the links lost
//! and corrupted nothing (reordering, duplication and delay only), the round trip stays below
//! the minimum RTO and no window closed, every retransmission was spurious: the storm oracle
//! (`Liveness::check_no_storm`) bounds them.
//!
//! The API forms mix (issue #19): each write picks `send`, `send_bytes` or `write_chunks`, each
//! read `recv`, `read_chunk`, `recv_bytes` or `read_chunks` with its own size, and
//! [`Op::Forms`] sets, from then on, which output polls go through the header-only
//! `poll_transmit_chunks` and which deliveries through the zero-copy `handle_segment_bytes`
//! (in packets of a chosen capacity, up to 64 KiB beyond the segment): the octets read through
//! any form are the octets written through any form.
#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tcp_proto::testing::liveness::Liveness;
use tcp_proto::testing::ops::{ReadForm, SendForm, read_through, send_through};
use tcp_proto::testing::sim::{FormPattern, Link, LinkConfig, Sim};
use tcp_proto::testing::{addr_a, addr_b};
use tcp_proto::{CloseReason, Config, Connection, Instant, SeqNum, State};

#[derive(Arbitrary, Debug, Clone, Copy)]
struct Faults {
    delay_ms: u8,
    jitter_ms: u8,
    loss: u16,
    duplicate: u16,
    reorder: u16,
    corrupt: u16,
}

impl Faults {
    /// The longest a segment sent on this link can take: delay, jitter, and the extra delay
    /// a reordered segment is held back by.
    fn longest_one_way(self) -> Duration {
        Duration::from_millis(2 * u64::from(self.delay_ms) + u64::from(self.jitter_ms))
    }

    fn link(self) -> LinkConfig {
        let ppm = |x: u16| u32::from(x) * 5; // up to ~33 %
        LinkConfig {
            delay: Duration::from_millis(u64::from(self.delay_ms)),
            jitter: Duration::from_millis(u64::from(self.jitter_ms)),
            loss_ppm: ppm(self.loss),
            duplicate_ppm: ppm(self.duplicate),
            reorder_ppm: ppm(self.reorder),
            corrupt_ppm: ppm(self.corrupt),
            ..LinkConfig::perfect()
        }
    }
}

/// The simulator's [`FormPattern`], as the fuzzer chooses it.
#[derive(Arbitrary, Debug, Clone, Copy)]
struct Forms {
    chunked_output: u16,
    borrowed_output: u16,
    bytes_input: u16,
    extra_capacity: [u16; 4],
}

#[derive(Arbitrary, Debug)]
enum Op {
    WriteA(u16, SendForm),
    WriteB(u16, SendForm),
    /// Reads until nothing is left, each read of up to `1 + n % 8192` octets.
    ReadA(u16, ReadForm),
    ReadB(u16, ReadForm),
    ShutdownA,
    ShutdownB,
    Steps(u8),
    /// From now on, these forms for output polls and deliveries.
    Forms(Forms),
}

#[derive(Arbitrary, Debug)]
struct Input {
    seed: u64,
    a_to_b: Faults,
    b_to_a: Faults,
    buffers: (u16, u16),
    nodelay: bool,
    ops: Vec<Op>,
}

fn pattern(i: usize, salt: u8) -> u8 {
    (i as u8).wrapping_mul(31).wrapping_add(salt)
}

struct Side {
    sent: usize,
    received: Vec<u8>,
}

fn config(iss: u32, buffers: (u16, u16), nodelay: bool) -> Config {
    let mut config = Config::with_fixed_isn(SeqNum::new(iss));
    config.send_buffer = 512 + usize::from(buffers.0 % 8192);
    config.recv_buffer = 512 + usize::from(buffers.1 % 8192);
    config.nodelay = nodelay;
    config.msl = Duration::from_secs(3600);
    config
}

/// Reads until nothing is left (or the form reads nothing: `read_chunk(0)`, no slots).
fn read(conn: &mut Connection, side: &mut Side, size: u16, form: ReadForm) {
    let size = 1 + usize::from(size) % 8192;
    while let Ok(octets) = read_through(conn, size, form, side.received.len()) {
        if octets.is_empty() {
            break;
        }
        side.received.extend_from_slice(&octets);
    }
}

fn check_prefix(side: &Side, salt: u8, label: &str) {
    for (i, &byte) in side.received.iter().enumerate() {
        assert_eq!(byte, pattern(i, salt), "{label}: octet {i} is not what was sent");
    }
}

fn check_timers(sim: &Sim) {
    for conn in [&sim.a, &sim.b] {
        let s = conn.status();
        assert!(s.snd_una.before_eq(s.snd_nxt));
        assert_eq!(conn.counters().illegal_transitions, 0);
        let timed = !matches!(s.state, State::Closed | State::Listen | State::TimeWait);
        if timed && s.snd_una != s.snd_nxt {
            assert!(conn.poll_timeout().is_some(), "unacknowledged data without a timer: {s:?}");
        }
    }
}

fuzz_target!(|input: Input| {
    let now = Instant::ZERO;
    let (config_a, config_b) =
        (config(7, input.buffers, input.nodelay), config(9, input.buffers, input.nodelay));
    let mut liveness = Liveness::new(&config_a, &config_b);
    let a = Connection::connect(config_a, now, addr_a(1000), addr_b(80)).expect("valid addresses");
    let b = Connection::listen(config_b, now, addr_b(80));
    let mut sim = Sim::new(
        a,
        b,
        Link::new(input.a_to_b.link(), input.seed),
        Link::new(input.b_to_a.link(), input.seed ^ 0xa5a5),
        now,
    );
    let (mut side_a, mut side_b) =
        (Side { sent: 0, received: Vec::new() }, Side { sent: 0, received: Vec::new() });
    let mut chunk = vec![0u8; 70_000];
    for op in input.ops.iter().take(64) {
        match *op {
            Op::WriteA(n, form) | Op::WriteB(n, form) => {
                let (conn, side, salt) = match op {
                    Op::WriteA(..) => (&mut sim.a, &mut side_a, 1),
                    _ => (&mut sim.b, &mut side_b, 2),
                };
                let n = usize::from(n);
                for (i, byte) in chunk[..n].iter_mut().enumerate() {
                    *byte = pattern(side.sent + i, salt);
                }
                if let Ok(taken) = send_through(conn, sim.now, &chunk[..n], form, side.sent) {
                    side.sent += taken;
                }
            }
            Op::ReadA(size, form) => read(&mut sim.a, &mut side_a, size, form),
            Op::ReadB(size, form) => read(&mut sim.b, &mut side_b, size, form),
            Op::Forms(forms) => {
                sim.forms = Some(FormPattern {
                    chunked_output: forms.chunked_output,
                    borrowed_output: forms.borrowed_output,
                    bytes_input: forms.bytes_input,
                    extra_capacity: forms.extra_capacity,
                });
            }
            Op::ShutdownA => {
                let _ = sim.a.shutdown(sim.now);
            }
            Op::ShutdownB => {
                let _ = sim.b.shutdown(sim.now);
            }
            Op::Steps(n) => {
                for _ in 0..n {
                    if !sim.step() {
                        break;
                    }
                }
            }
        }
        sim.flush();
        check_timers(&sim);
        check_prefix(&side_a, 2, "A");
        check_prefix(&side_b, 1, "B");
        if let Err(problem) = liveness.check(&sim) {
            panic!("{problem}\n{}", sim.trace());
        }
    }
    // The faults stop; both applications finish and close; everything must arrive.
    sim.a_to_b.set_config(LinkConfig::perfect());
    sim.b_to_a.set_config(LinkConfig::perfect());
    let round_trip = input.a_to_b.longest_one_way() + input.b_to_a.longest_one_way();
    liveness.calm(sim.now, round_trip);
    let _ = sim.a.shutdown(sim.now);
    let _ = sim.b.shutdown(sim.now);
    let mut guard = 0;
    while sim.step() {
        read(&mut sim.a, &mut side_a, 4095, ReadForm::Copy);
        read(&mut sim.b, &mut side_b, 4095, ReadForm::Copy);
        sim.flush();
        check_timers(&sim);
        if let Err(problem) = liveness.check(&sim) {
            panic!("{problem}\n{}", sim.trace());
        }
        guard += 1;
        if guard > 200_000 {
            panic!("no progress after the faults stopped:\n{}", sim.trace());
        }
        if sim.a.state() == State::Closed && sim.b.state() == State::Closed {
            break;
        }
    }
    // What arrived before the loop (or after its last step) is still to be read.
    read(&mut sim.a, &mut side_a, 4095, ReadForm::Copy);
    read(&mut sim.b, &mut side_b, 4095, ReadForm::Copy);
    check_prefix(&side_a, 2, "A");
    check_prefix(&side_b, 1, "B");
    // An error ending was justified by the faults (the liveness oracle checked its timing and
    // R1); without one, every octet sent has arrived and both sides are CLOSED.
    let failed = [&sim.a, &sim.b]
        .iter()
        .any(|conn| matches!(conn.close_reason(), Some(CloseReason::Error(_))));
    if !failed {
        assert!(
            sim.a.state() == State::Closed && sim.b.state() == State::Closed,
            "both sides end within the liveness bounds:\n{}",
            sim.trace()
        );
        assert_eq!(side_b.received.len(), side_a.sent, "B did not get all of A's data");
        assert_eq!(side_a.received.len(), side_b.sent, "A did not get all of B's data");
        if let Err(problem) = liveness.check_no_storm(&sim, round_trip) {
            panic!("{problem}\n{}", sim.trace());
        }
    }
});
