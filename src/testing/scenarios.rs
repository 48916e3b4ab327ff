//! The seed's dialogues as runnable scenarios: the three-way handshake, data both ways and the
//! four-way close, plus the rare paths (simultaneous open, simultaneous close, the withheld
//! final ACK, FIN+ACK straight to TIME-WAIT, resets). `examples/handshake.rs` prints them and
//! `tests/scenarios.rs` asserts what they show.

use alloc::boxed::Box;
use alloc::collections::BTreeSet;
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use super::{Direction, Pair, Verdict, addr_a, addr_b};
use crate::config::Config;
use crate::connection::Connection;
use crate::seq::SeqNum;
use crate::state::State;
use crate::time::Instant;
use crate::wire::Flags;

/// A scenario's name, a one-line description, and its runner.
pub type Scenario = (&'static str, &'static str, fn() -> Outcome);

/// Every scenario, in the order `--all` runs them.
pub const ALL: [Scenario; 7] = [
    ("main", "handshake, data both ways, four-way close, 2MSL", main_dialogue),
    ("simultaneous-open", "both sides send SYN at once (MUST-10)", simultaneous_open),
    ("simultaneous-close", "both sides send FIN at once: CLOSING", simultaneous_close),
    ("withheld-ack", "the final ACK is lost: SYN-RECEIVED holds, SYN-ACK resent", withheld_ack),
    ("fin-ack", "FIN and ACK of FIN in one segment: FIN-WAIT-1 to TIME-WAIT", fin_ack),
    ("refused", "SYN to a closed port: RST, connection refused", refused),
    ("abort", "ABORT on an established connection: RST", abort),
];

/// What a scenario produced.
pub struct Outcome {
    /// The trace, one line per segment, state change or event.
    pub trace: Vec<String>,
    /// States side A visited.
    pub visited_a: BTreeSet<State>,
    /// States side B visited.
    pub visited_b: BTreeSet<State>,
    /// The pair at the end, for assertions.
    pub pair: Pair,
}

impl Outcome {
    fn from_pair(pair: Pair) -> Self {
        Self {
            trace: pair.trace.clone(),
            visited_a: pair.visited[0].clone(),
            visited_b: pair.visited[1].clone(),
            pair,
        }
    }
}

/// The client's ISN in every scenario (a fixed ISN keeps traces reproducible; real
/// connections use the keyed hash of RFC 6528).
pub const CLIENT_ISS: u32 = 1_234_567;
/// The server's ISN.
pub const SERVER_ISS: u32 = 7_654_321;
/// MSL in the scenarios: short, so TIME-WAIT (2×MSL) ends in a few simulated seconds.
pub const MSL: Duration = Duration::from_secs(2);

fn config(iss: u32) -> Config {
    let mut config = Config::with_fixed_isn(SeqNum::new(iss));
    config.msl = MSL;
    config.recv_buffer = 65_535;
    // The seed's dialogues: a fixed 65 535-octet window, unscaled (auto-tuning off).
    config.recv_buffer_max = 0;
    config
}

fn start() -> Instant {
    Instant::ZERO
}

/// A client on A:40000 that has sent its SYN to a listener on B:80.
fn client_server() -> Pair {
    let now = start();
    let server = Connection::listen(config(SERVER_ISS), now, addr_b(80));
    let client = Connection::connect(config(CLIENT_ISS), now, addr_a(40_000), addr_b(80));
    // Addresses of one family never fail to connect.
    let client = client.unwrap_or_else(|_| Connection::new(config(CLIENT_ISS), addr_a(40_000)));
    Pair::new(client, server, now)
}

/// The seed's main dialogue.
pub fn main_dialogue() -> Outcome {
    let mut pair = client_server();
    pair.note("-- three-way handshake");
    pair.run_until_idle();
    pair.note("-- data: the client says hello, the server answers");
    let _ = pair.a.send(pair.now, b"hello, server");
    pair.run_until_idle();
    let got = pair.read_b();
    pair.note(&alloc::format!("B read {:?}", String::from_utf8_lossy(&got)));
    let _ = pair.b.send(pair.now, b"hello, client");
    pair.run_until_idle();
    let got = pair.read_a();
    pair.note(&alloc::format!("A read {:?}", String::from_utf8_lossy(&got)));
    pair.note("-- four-way close: the client closes first");
    let _ = pair.a.close(pair.now);
    pair.run_until_idle();
    pair.note("-- the server has nothing more to say and closes too");
    let _ = pair.b.close(pair.now);
    pair.run_until_idle();
    pair.note("-- the client waits 2MSL in TIME-WAIT");
    pair.run_to_completion(10);
    Outcome::from_pair(pair)
}

/// Both sides actively open towards each other at once.
pub fn simultaneous_open() -> Outcome {
    let now = start();
    let a = Connection::connect(config(CLIENT_ISS), now, addr_a(5000), addr_b(6000));
    let b = Connection::connect(config(SERVER_ISS), now, addr_b(6000), addr_a(5000));
    let (Ok(a), Ok(b)) = (a, b) else {
        // Same-family addresses cannot fail; keep the scenario total anyway.
        return Outcome::from_pair(Pair::new(
            Connection::new(config(CLIENT_ISS), addr_a(5000)),
            Connection::new(config(SERVER_ISS), addr_b(6000)),
            now,
        ));
    };
    let mut pair = Pair::new(a, b, now);
    pair.note("-- both SYNs cross on the wire");
    pair.run_until_idle();
    pair.note("-- and both sides close");
    let _ = pair.a.close(pair.now);
    pair.run_until_idle();
    let _ = pair.b.close(pair.now);
    pair.run_to_completion(10);
    Outcome::from_pair(pair)
}

/// Both sides close at the same moment: each FIN crosses the other's.
pub fn simultaneous_close() -> Outcome {
    let mut pair = client_server();
    pair.run_until_idle();
    pair.note("-- both applications close at the same time; the FINs cross");
    let _ = pair.a.close(pair.now);
    let _ = pair.b.close(pair.now);
    pair.run_until_idle();
    pair.run_to_completion(10);
    Outcome::from_pair(pair)
}

/// The client's final ACK of the handshake is lost: the server holds SYN-RECEIVED and
/// retransmits its SYN-ACK after one RTO; the client acknowledges again.
pub fn withheld_ack() -> Outcome {
    let mut pair = client_server();
    let mut dropped = false;
    pair.set_filter(Box::new(move |direction, segment| {
        let bare_ack = segment.header.flags == Flags::ACK && segment.payload.is_empty();
        if direction == Direction::AToB && bare_ack && !dropped {
            dropped = true;
            Verdict::Drop
        } else {
            Verdict::Deliver
        }
    }));
    pair.note("-- the handshake's last ACK is lost");
    pair.run_until_idle();
    pair.note("-- the server's retransmission timer fires (RTO 1 s)");
    pair.advance_to_next_deadline();
    pair.run_until_idle();
    pair.clear_filter();
    let _ = pair.a.close(pair.now);
    pair.run_until_idle();
    let _ = pair.b.close(pair.now);
    pair.run_to_completion(10);
    Outcome::from_pair(pair)
}

/// The server answers the client's FIN with its own FIN carrying the ACK: the client goes from
/// FIN-WAIT-1 straight to TIME-WAIT.
pub fn fin_ack() -> Outcome {
    let mut pair = client_server();
    pair.run_until_idle();
    pair.note("-- the client closes; its FIN reaches the server");
    let _ = pair.a.close(pair.now);
    // Carry only A's FIN, then let B close before it answers, so one segment carries both.
    while let Ok(Some(transmit)) = pair.a.poll_transmit(pair.now, &mut pair.buf) {
        let bytes = pair.buf.get(..transmit.len).unwrap_or(&[]);
        if let Ok(segment) =
            crate::wire::Segment::parse_checked(bytes, transmit.local.ip(), transmit.remote.ip())
        {
            pair.trace.push(alloc::format!("{} A > B: {segment}", pair.now));
            pair.b.handle_segment(pair.now, transmit.local.ip(), &segment);
        }
    }
    pair.collect_events();
    pair.note("-- the server closes before acknowledging: FIN and ACK travel together");
    let _ = pair.b.close(pair.now);
    pair.run_until_idle();
    pair.run_to_completion(10);
    Outcome::from_pair(pair)
}

/// A SYN to a port where nothing listens: the CLOSED connection answers RST,ACK.
pub fn refused() -> Outcome {
    let now = start();
    let nobody = Connection::new(config(SERVER_ISS), addr_b(81));
    let client = Connection::connect(config(CLIENT_ISS), now, addr_a(40_001), addr_b(81))
        .unwrap_or_else(|_| Connection::new(config(CLIENT_ISS), addr_a(40_001)));
    let mut pair = Pair::new(client, nobody, now);
    pair.note("-- SYN to a closed port");
    pair.run_until_idle();
    Outcome::from_pair(pair)
}

/// The client aborts an established connection: a RST, and the server reports a reset.
pub fn abort() -> Outcome {
    let mut pair = client_server();
    pair.run_until_idle();
    let _ = pair.a.send(pair.now, b"half a thought");
    pair.run_until_idle();
    pair.note("-- the client aborts");
    let _ = pair.a.abort(pair.now);
    pair.run_until_idle();
    Outcome::from_pair(pair)
}

/// Runs `chosen` and renders what `examples/handshake.rs` prints: each scenario's trace, the
/// states each side visited, and the 11 states with a mark for the visited ones. Returns the
/// text and the set of states visited.
pub fn render(chosen: &[Scenario]) -> (String, BTreeSet<State>) {
    use core::fmt::Write as _;
    let mut out = String::new();
    let mut visited: BTreeSet<State> = BTreeSet::new();
    let show = |states: &BTreeSet<State>| {
        states.iter().map(|state| state.rfc_name()).collect::<Vec<_>>().join(", ")
    };
    for (name, about, run) in chosen {
        let outcome = run();
        // Writing to a String cannot fail.
        let _ = writeln!(out, "=== {name}: {about}");
        for line in &outcome.trace {
            let _ = writeln!(out, "{line}");
        }
        let _ = writeln!(out, "A visited: {}", show(&outcome.visited_a));
        let _ = writeln!(out, "B visited: {}", show(&outcome.visited_b));
        let _ = writeln!(out);
        visited.extend(outcome.visited_a);
        visited.extend(outcome.visited_b);
    }
    let _ = writeln!(out, "states visited ({} of {}):", visited.len(), State::ALL.len());
    for state in State::ALL {
        let mark = if visited.contains(&state) { "x" } else { " " };
        let _ = writeln!(out, "  [{mark}] {state}");
    }
    (out, visited)
}
