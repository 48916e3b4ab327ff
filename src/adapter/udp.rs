//! IPv4 in UDP: each datagram carries exactly one raw IPv4 packet and nothing else.
//!
//! No root, no device: two processes (or hosts) each bind a UDP socket and name the other as
//! the peer, and their endpoints talk TCP/IPv4 through the datagrams. Datagrams from any
//! other source are dropped and counted.

use core::net::SocketAddr;
use core::time::Duration;
use std::io;
use std::net::UdpSocket;

use super::PacketTransport;

/// One IPv4 packet per UDP datagram, exchanged with one peer.
#[derive(Debug)]
pub struct UdpTransport {
    socket: UdpSocket,
    peer: SocketAddr,
    mtu: usize,
    /// The socket's current receive mode, to skip redundant system calls.
    mode: Option<ReadMode>,
    foreign_datagrams: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReadMode {
    NonBlocking,
    Timeout(Duration),
}

impl UdpTransport {
    /// The default MTU: what an Ethernet path carries, so the TCP segments inside stay the
    /// size they would be on a real link (the UDP datagrams themselves are 28 octets larger).
    pub const DEFAULT_MTU: usize = 1500;

    /// Binds `bind` and exchanges packets with `peer`.
    ///
    /// # Errors
    ///
    /// Binding the socket.
    pub fn bind(bind: SocketAddr, peer: SocketAddr) -> io::Result<Self> {
        let socket = UdpSocket::bind(bind)?;
        Ok(Self { socket, peer, mtu: Self::DEFAULT_MTU, mode: None, foreign_datagrams: 0 })
    }

    /// Carries IP packets of at most `mtu` octets (68..=65 507, the most a UDP/IPv4
    /// datagram holds).
    #[must_use]
    pub fn with_mtu(mut self, mtu: usize) -> Self {
        self.mtu = mtu.clamp(68, 65_507);
        self
    }

    /// The local address the socket is bound to.
    ///
    /// # Errors
    ///
    /// The socket's error.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Datagrams dropped because they came from someone other than the peer.
    pub const fn foreign_datagrams(&self) -> u64 {
        self.foreign_datagrams
    }

    fn set_mode(&mut self, mode: ReadMode) -> io::Result<()> {
        if self.mode == Some(mode) {
            return Ok(());
        }
        match mode {
            ReadMode::NonBlocking => self.socket.set_nonblocking(true)?,
            ReadMode::Timeout(timeout) => {
                if self.mode == Some(ReadMode::NonBlocking) || self.mode.is_none() {
                    self.socket.set_nonblocking(false)?;
                }
                self.socket.set_read_timeout(Some(timeout))?;
            }
        }
        self.mode = Some(mode);
        Ok(())
    }
}

impl PacketTransport for UdpTransport {
    fn send(&mut self, packet: &[u8]) -> io::Result<()> {
        self.socket.send_to(packet, self.peer).map(|_| ())
    }

    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<Option<usize>> {
        let mode =
            if timeout.is_zero() { ReadMode::NonBlocking } else { ReadMode::Timeout(timeout) };
        self.set_mode(mode)?;
        loop {
            match self.socket.recv_from(buf) {
                Ok((len, from)) if from == self.peer => return Ok(Some(len)),
                Ok(_) => self.foreign_datagrams += 1,
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(None);
                }
                // A peer not (yet) listening makes the kernel report ICMP port unreachable on
                // the next receive; for a datagram link that is just loss.
                Err(error) if error.kind() == io::ErrorKind::ConnectionRefused => {}
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
    }

    fn mtu(&self) -> usize {
        self.mtu
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{IpAddr, Ipv4Addr};

    fn loopback() -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)
    }

    #[test]
    fn datagrams_carry_packets_between_two_transports_and_strangers_are_dropped() {
        let mut a = UdpTransport::bind(loopback(), loopback()).unwrap();
        let b_socket = UdpSocket::bind(loopback()).unwrap();
        let b_addr = b_socket.local_addr().unwrap();
        drop(b_socket);
        let mut b = UdpTransport::bind(b_addr, a.local_addr().unwrap()).unwrap();
        a.peer = b_addr;
        a.send(b"packet one").unwrap();
        let mut buf = [0u8; 64];
        let len = b.recv(&mut buf, Duration::from_secs(5)).unwrap().expect("a datagram");
        assert_eq!(&buf[..len], b"packet one");
        // Nothing more: a zero timeout returns at once, a short one times out.
        assert_eq!(b.recv(&mut buf, Duration::ZERO).unwrap(), None);
        assert_eq!(b.recv(&mut buf, Duration::from_millis(5)).unwrap(), None);
        // A stranger's datagram is not a packet.
        let stranger = UdpSocket::bind(loopback()).unwrap();
        stranger.send_to(b"noise", b_addr).unwrap();
        a.send(b"packet two").unwrap();
        let len = b.recv(&mut buf, Duration::from_secs(5)).unwrap().expect("a datagram");
        assert_eq!(&buf[..len], b"packet two");
        assert_eq!(b.foreign_datagrams(), 1);
    }
}
