//! A two-connection simulator for tests, examples, fuzz targets and benches (feature
//! `testing`): a virtual clock, an in-memory link, a per-segment hook to drop or inspect
//! segments, and a readable tcpdump-style trace of everything that crosses it.

pub mod liveness;
#[cfg(feature = "arbitrary")]
pub mod ops;
#[cfg(feature = "arbitrary")]
pub mod sack_model;
pub mod scenarios;
pub mod sim;

use alloc::boxed::Box;
use alloc::collections::BTreeSet;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::net::SocketAddr;

use crate::connection::{Connection, Transmit};
use crate::event::Event;
use crate::state::State;
use crate::time::Instant;
use crate::wire::Segment;

/// Which way a segment travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From `a` to `b`.
    AToB,
    /// From `b` to `a`.
    BToA,
}

/// What the link does with a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Deliver it.
    Deliver,
    /// Lose it.
    Drop,
}

/// A hook that sees every segment before the link carries it.
pub type Filter = Box<dyn FnMut(Direction, &Segment<'_>) -> Verdict>;

/// Two connections joined by a lossless, zero-delay link under a virtual clock.
pub struct Pair {
    /// The first connection ("A" in traces).
    pub a: Connection,
    /// The second connection ("B" in traces).
    pub b: Connection,
    /// The virtual clock.
    pub now: Instant,
    /// Everything that happened, one line each.
    pub trace: Vec<String>,
    /// Events each side reported, in order.
    pub events: [Vec<Event>; 2],
    /// States each side has been in (from its state-changed events, plus its first state).
    pub visited: [BTreeSet<State>; 2],
    filter: Option<Filter>,
    buf: Vec<u8>,
}

impl Pair {
    /// Joins `a` and `b`, starting the clock at `now`.
    pub fn new(a: Connection, b: Connection, now: Instant) -> Self {
        let mut visited = [BTreeSet::new(), BTreeSet::new()];
        visited[0].insert(a.state());
        visited[1].insert(b.state());
        let mut pair = Self {
            a,
            b,
            now,
            trace: Vec::new(),
            events: [Vec::new(), Vec::new()],
            visited,
            filter: None,
            buf: alloc::vec![0; 65_536],
        };
        pair.collect_events();
        pair
    }

    /// Installs a per-segment hook (replacing any earlier one).
    pub fn set_filter(&mut self, filter: Filter) {
        self.filter = Some(filter);
    }

    /// Removes the per-segment hook.
    pub fn clear_filter(&mut self) {
        self.filter = None;
    }

    /// Adds a free-form line to the trace.
    pub fn note(&mut self, text: &str) {
        self.trace.push(format!("{} {text}", self.now));
    }

    /// Moves every segment either side wants to send until both are quiet. Returns how many
    /// segments were carried (delivered or dropped).
    ///
    /// The link works in rounds: first both sides send everything they have, then everything
    /// sent is delivered. Segments sent in the same round cross on the wire, as in a
    /// simultaneous open or close.
    pub fn run_until_idle(&mut self) -> usize {
        let mut carried = 0;
        // A connection sends a bounded amount per input; the bound catches a livelock.
        for _ in 0..10_000 {
            let moved = self.round();
            if moved == 0 {
                return carried;
            }
            carried += moved;
        }
        self.note("run_until_idle: gave up after 10000 rounds (livelock?)");
        carried
    }

    /// Advances the clock to the earliest deadline of either side and runs it. Returns `false`
    /// when neither side has a timer armed.
    pub fn advance_to_next_deadline(&mut self) -> bool {
        let next = match (self.a.poll_timeout(), self.b.poll_timeout()) {
            (Some(x), Some(y)) => x.min(y),
            (Some(x), None) | (None, Some(x)) => x,
            (None, None) => return false,
        };
        self.now = self.now.max(next);
        self.a.handle_timeout(self.now);
        self.b.handle_timeout(self.now);
        self.collect_events();
        true
    }

    /// Runs segments and timers until both sides are quiet with no timer armed, or `limit`
    /// deadlines have passed.
    pub fn run_to_completion(&mut self, limit: usize) {
        self.run_until_idle();
        for _ in 0..limit {
            if !self.advance_to_next_deadline() {
                return;
            }
            self.run_until_idle();
        }
    }

    /// One round: collect what both sides send, then deliver it. Returns how many segments.
    fn round(&mut self) -> usize {
        // Events of user calls made since the last round come first in the trace.
        self.collect_events();
        let mut in_flight: Vec<(Direction, Transmit, Vec<u8>)> = Vec::new();
        for direction in [Direction::AToB, Direction::BToA] {
            loop {
                let sender = match direction {
                    Direction::AToB => &mut self.a,
                    Direction::BToA => &mut self.b,
                };
                match sender.poll_transmit(self.now, &mut self.buf) {
                    Ok(Some(transmit)) => {
                        let bytes = self.buf.get(..transmit.len).unwrap_or(&[]).to_vec();
                        in_flight.push((direction, transmit, bytes));
                    }
                    Ok(None) => break,
                    Err(error) => {
                        self.trace
                            .push(format!("{} {direction:?}: transmit error: {error}", self.now));
                        break;
                    }
                }
            }
        }
        let moved = in_flight.len();
        for (direction, transmit, bytes) in in_flight {
            self.carry(direction, transmit, &bytes);
            self.collect_events();
        }
        moved
    }

    /// Delivers one segment (or drops it, as the filter says), tracing it.
    fn carry(&mut self, direction: Direction, transmit: Transmit, bytes: &[u8]) {
        let label = match direction {
            Direction::AToB => "A > B",
            Direction::BToA => "B > A",
        };
        let segment = match Segment::parse_checked(bytes, transmit.local.ip(), transmit.remote.ip())
        {
            Ok(segment) => segment,
            Err(error) => {
                self.trace.push(format!("{} {label}: unparsable: {error}", self.now));
                return;
            }
        };
        let verdict = match self.filter.as_mut() {
            Some(filter) => filter(direction, &segment),
            None => Verdict::Deliver,
        };
        let mark = match verdict {
            Verdict::Deliver => "",
            Verdict::Drop => " (dropped)",
        };
        self.trace.push(format!("{} {label}: {segment}{mark}", self.now));
        if verdict == Verdict::Drop {
            return;
        }
        let receiver = match direction {
            Direction::AToB => &mut self.b,
            Direction::BToA => &mut self.a,
        };
        if receiver.local() == transmit.remote {
            receiver.handle_segment(self.now, transmit.local.ip(), &segment);
        } else {
            self.trace.push(format!("{} {label}: no host at {}", self.now, transmit.remote));
        }
    }

    fn collect_events(&mut self) {
        for (index, label) in [(0, "A"), (1, "B")] {
            loop {
                let connection = if index == 0 { &mut self.a } else { &mut self.b };
                let Some(event) = connection.poll_event() else { break };
                if let Event::StateChanged { from, to } = event {
                    self.trace.push(format!("{} {label}: {from} -> {to}", self.now));
                    if let Some(visited) = self.visited.get_mut(index) {
                        visited.insert(to);
                    }
                } else {
                    self.trace.push(format!("{} {label}: event {event:?}", self.now));
                }
                if let Some(events) = self.events.get_mut(index) {
                    events.push(event);
                }
            }
        }
    }

    /// Reads everything `a` has received.
    pub fn read_a(&mut self) -> Vec<u8> {
        read_all(&mut self.a)
    }

    /// Reads everything `b` has received.
    pub fn read_b(&mut self) -> Vec<u8> {
        read_all(&mut self.b)
    }
}

fn read_all(connection: &mut Connection) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(n @ 1..) = connection.recv(&mut chunk) {
        out.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
    }
    out
}

/// The address of side A in the scenarios: 10.0.0.1.
pub fn addr_a(port: u16) -> SocketAddr {
    SocketAddr::new(core::net::IpAddr::V4(core::net::Ipv4Addr::new(10, 0, 0, 1)), port)
}

/// The address of side B in the scenarios: 10.0.0.2.
pub fn addr_b(port: u16) -> SocketAddr {
    SocketAddr::new(core::net::IpAddr::V4(core::net::Ipv4Addr::new(10, 0, 0, 2)), port)
}
