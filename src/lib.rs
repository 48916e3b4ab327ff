//! `tcp-proto`: a complete TCP endpoint with no I/O inside.
//!
//! The crate is a *sans-IO* protocol core (RFC 9293). The caller hands it incoming segments, user
//! calls (open, send, receive, close, abort) and the current time; it hands back segments to
//! transmit, the next deadline it wants to be woken at, and events. It never reads a clock, opens
//! a socket or spawns a thread.
//!
//! ```text
//!   bytes, now ──▶ wire::Segment::parse_checked ──▶ Connection::handle_segment
//!   user calls, now ──▶ Connection::{open, send, recv, close, abort}
//!                              │ state::transition (the 11-state table)
//!   segments ◀── Connection::poll_transmit(now, buf)
//!   deadline ◀── Connection::poll_timeout()  (then handle_timeout(now))
//!   events   ◀── Connection::poll_event()
//! ```
//!
//! Polling order after any input: drain `poll_transmit` until it returns `None`, drain
//! `poll_event`, then sleep until `poll_timeout` (or the next input).
//!
//! Time is an [`Instant`] chosen by the caller and must never go backwards.
//!
//! A stack that does its own demultiplexing drives [`Connection`]s directly; one that wants
//! the host-level work done (listeners, SYN cookies, RSTs for strays, ephemeral ports,
//! TIME-WAIT records, one timer heap for all connections) uses an [`Endpoint`] with the same
//! `handle_*` / `poll_*` shape.

#![no_std]
#![deny(unsafe_code)]
// Two exceptions, each an item-level `#[allow(unsafe_code)]` with its SAFETY argument:
// src/adapter/tun.rs (feature `tun`: three libc calls), and `wide` in src/wire/checksum.rs
// (feature `std`, x86-64: one call of the AVX2-compiled checksum loop after the CPU says it
// has AVX2).
// No panic may be reachable from input bytes: no unwrap/expect/indexing in library code.
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![warn(clippy::std_instead_of_core, clippy::alloc_instead_of_core)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

#[cfg(feature = "pcap")]
pub mod adapter;
mod assembler;
mod buffer;
mod chunks;
pub mod config;
pub mod congestion;
pub mod connection;
pub mod endpoint;
pub mod event;
pub mod isn;
mod recovery;
pub mod rtt;
pub mod seq;
#[cfg(feature = "tokio")]
pub mod stack;
pub mod state;
#[cfg(feature = "testing")]
pub mod testing;
pub mod time;
mod time_wait;
pub mod wire;

pub use config::{Config, IsnSource, KeepAlive};
pub use connection::{
    Connection, CookieHandshake, Payload, PayloadRef, Transmit, TransmitChunks, TransmitRef,
};
pub use endpoint::{
    ConnectionHandle, Endpoint, EndpointConfig, EndpointError, EndpointEvent, IncomingId,
};
pub use event::{
    CallError, CloseReason, ConnectionError, Event, IcmpError, Status, TcpInfo, TransmitError,
};
pub use seq::{Mss, SeqNum, Window, WindowScale};
pub use state::State;
pub use time::Instant;

/// The README's example is compiled and run as a doctest, so it cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
