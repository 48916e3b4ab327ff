//! Adapters: what it takes to put the sans-IO core on a real wire (std only; the core never
//! imports this module).
//!
//! - `pcap` (feature `pcap`): a capture writer any side can use, the simulator included.
//! - `driver` (feature `driver`): a small blocking loop that runs an [`Endpoint`] over any
//!   [`PacketTransport`]: it maps a monotonic clock to the core's [`Instant`], validates IP
//!   headers (version, lengths, checksum, protocol; fragments dropped and counted) before
//!   the core sees anything, feeds segments, ICMP errors about our segments (MUST-54) and
//!   timeouts in, and wraps transmits in IP headers.
//! - `udp` (feature `udp`): one raw IPv4 packet per UDP datagram (no root needed).
//! - `tun` (feature `tun`): a Linux TUN device (`IFF_TUN | IFF_NO_PI`), through a few
//!   `libc` calls — with the checksum's AVX2 dispatch, the only `unsafe` in the crate.
//!
//! [`Endpoint`]: crate::Endpoint
//! [`Instant`]: crate::Instant

#[cfg(feature = "driver")]
pub mod driver;
#[cfg(feature = "pcap")]
pub mod pcap;
#[cfg(feature = "tun")]
pub mod tun;
#[cfg(feature = "udp")]
pub mod udp;

use core::time::Duration;
use std::io;

/// Whole IP packets in and out: what the `driver` needs from a transport.
pub trait PacketTransport {
    /// Sends one IP packet.
    ///
    /// # Errors
    ///
    /// The transport's I/O error.
    fn send(&mut self, packet: &[u8]) -> io::Result<()>;

    /// Waits at most `timeout` (zero: do not wait) for one packet and copies it into `buf`;
    /// `Ok(None)` when none came. A packet longer than `buf` is truncated (and then fails IP
    /// validation).
    ///
    /// # Errors
    ///
    /// The transport's I/O error.
    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<Option<usize>>;

    /// The largest IP packet the transport carries (the MTU).
    fn mtu(&self) -> usize;
}
