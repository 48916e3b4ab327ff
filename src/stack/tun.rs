//! [`TunDevice`]: a Linux TUN device as a [`Device`] of the async stack (features `tokio` and
//! `tun`).
//!
//! It is the adapter's [`tun::TunDevice`] — the same opening,
//! `IFF_VNET_HDR` and `TUNSETOFFLOAD` code, the same non-blocking descriptor — waited on with
//! tokio's `AsyncFd`: readiness from the runtime's reactor, then the adapter's own read and
//! write. Why `AsyncFd` rather than `tun-rs` with its async feature: the device is opened and
//! configured once already, in `src/adapter/tun.rs`; a second crate would open it a second
//! way, bring its own platform layer, and not share the offload handling. `AsyncFd` adds only
//! readiness, which is all that is missing.
//!
//! Offloads: it asks the kernel for all of them ([`TunOffloads::ALL`]: `IFF_VNET_HDR`, then
//! `TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6`, dropping TSO6, TSO4, then the checksum offload where
//! the kernel refuses one, as the adapter does) and declares to the stack what it got
//! ([`Device::offloads`], the adapter's own `PacketTransport::offloads`). With the header on,
//! the stack hands it TCP super-segments of up to 64 KiB with their checksum left to finish,
//! and each goes out in one write behind the virtio-net header the adapter's `send_segment`
//! would put (`NEEDS_CSUM`, `GSO_TCPV4`/`GSO_TCPV6` with the MSS): the kernel cuts and
//! finishes them. Packets the kernel hands up keep what their header said — a checksum
//! verified or left unfinished, a super-segment coalesced by the kernel's TSO — and the stack's
//! driver takes them whole (acknowledged per MSS). Without the header (a kernel refusing
//! `IFF_VNET_HDR`) it is one plain, complete packet of at most the MTU per read and write.

use alloc::string::String;
use core::task::{Context, Poll};
use std::io;

use tokio::io::unix::AsyncFd;

use super::{Device, PacketBatch, PacketMeta};
use crate::adapter::tun::{self, TunOffloadStatus, TunOffloads};
use crate::adapter::{Offloads, PacketTransport, RxChecksumState};

/// Room for the largest IP packet: what one read may return with receive TSO on.
const MAX_PACKET: usize = 65_535;

/// A Linux TUN device for a [`Stack`](super::Stack): attach to an existing device (or, as root,
/// create one), route traffic into it with `ip`, and hand it to `Stack::new`.
#[derive(Debug)]
pub struct TunDevice {
    fd: AsyncFd<tun::TunDevice>,
    mtu: usize,
    /// What the device does, read once when attached.
    offloads: Offloads,
    /// Octets a read may return: the MTU, or 64 KiB with receive TSO on.
    read_size: usize,
    /// Packets the kernel refused (`EINVAL`: not a packet it takes), dropped.
    send_refused: u64,
}

impl TunDevice {
    /// Binds to the TUN device `name` (see [`tun::TunDevice::attach`] for what that takes and
    /// creates) with every offload the kernel takes (see the module docs), and registers it
    /// with the current tokio runtime's reactor.
    ///
    /// # Errors
    ///
    /// As [`tun::TunDevice::attach`]; also when called outside a tokio runtime (in one
    /// without I/O enabled, tokio panics).
    pub fn attach(name: &str) -> io::Result<Self> {
        Self::attach_with(name, TunOffloads::ALL)
    }

    /// As [`attach`](Self::attach), asking only for `offloads` ([`TunOffloads::NONE`]: plain
    /// packets both ways).
    ///
    /// # Errors
    ///
    /// As [`attach`](Self::attach).
    pub fn attach_with(name: &str, offloads: TunOffloads) -> io::Result<Self> {
        Self::from_device(tun::TunDevice::attach_with(name, offloads)?)
    }

    /// Wraps a device attached with the adapter, with whatever offloads it has.
    ///
    /// # Errors
    ///
    /// Registering with the runtime's reactor (as for [`attach`](Self::attach)).
    pub fn from_device(device: tun::TunDevice) -> io::Result<Self> {
        let status = device.offload_status();
        let mtu = device.mtu();
        let offloads = device.offloads();
        let read_size = if status.rx_tso4 || status.rx_tso6 { MAX_PACKET } else { mtu };
        Ok(Self { fd: device.register_async()?, mtu, offloads, read_size, send_refused: 0 })
    }

    /// The device's name.
    pub fn name(&self) -> String {
        self.fd.get_ref().name().into()
    }

    /// The device's MTU, read when it was attached (give it to `StackConfig::mtu`).
    pub const fn mtu(&self) -> usize {
        self.mtu
    }

    /// The offloads in force.
    pub fn offload_status(&self) -> TunOffloadStatus {
        self.fd.get_ref().offload_status()
    }

    /// The stack's candidate addresses on this device (the far end of each address the
    /// device is configured with: see `adapter::source`), for `StackConfig::addresses` when
    /// the user names none (RFC 9293 MUST-44).
    ///
    /// # Errors
    ///
    /// `getifaddrs` failing.
    pub fn source_addresses(&self) -> io::Result<alloc::vec::Vec<core::net::IpAddr>> {
        self.fd.get_ref().source_addresses()
    }

    /// Packets the kernel refused to take (`EINVAL`), dropped rather than stopping the stack.
    pub const fn send_refused(&self) -> u64 {
        self.send_refused
    }
}

impl Device for TunDevice {
    fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        packets: &mut PacketBatch,
    ) -> Poll<io::Result<()>> {
        let mut received = false;
        while !received || packets.room() > 0 {
            let mut guard = match self.fd.poll_read_ready_mut(cx) {
                Poll::Ready(Ok(guard)) => guard,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending if received => break,
                Poll::Pending => return Poll::Pending,
            };
            let mut buffer = packets.buffer();
            buffer.resize(self.read_size, 0);
            let read = guard.try_io(|fd| {
                fd.get_mut().read_one(&mut buffer)?.ok_or_else(|| io::ErrorKind::WouldBlock.into())
            });
            match read {
                Ok(Ok((len, meta))) => {
                    buffer.truncate(len);
                    // What the header said goes to the stack's driver, which finishes or
                    // verifies the checksum as its endpoint needs and takes a coalesced
                    // super-segment whole.
                    let meta = PacketMeta { checksum: meta.checksum, gso_size: meta.tcp_gso_size };
                    packets.push_with(buffer, meta);
                    received = true;
                }
                Ok(Err(error)) => {
                    packets.recycle(buffer);
                    return Poll::Ready(Err(error));
                }
                // Drained: readiness is cleared, and the next poll registers the task.
                Err(_would_block) => packets.recycle(buffer),
            }
        }
        Poll::Ready(Ok(()))
    }

    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        packets: &mut PacketBatch,
    ) -> Poll<io::Result<()>> {
        while let Some((packet, meta)) = packets.front_with_meta() {
            let mut guard = match self.fd.poll_write_ready_mut(cx) {
                Poll::Ready(Ok(guard)) => guard,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => return Poll::Pending,
            };
            // The header the adapter's `send_segment` puts: all zero for a complete packet,
            // else the checksum to finish and, for a super-segment, how to cut it.
            let (partial, ip_header_len) = match meta.checksum {
                RxChecksumState::Partial { start, .. } => (true, usize::from(start)),
                RxChecksumState::Unknown | RxChecksumState::Valid => (false, 0),
            };
            let header = tun::tcp_tx_header(packet, ip_header_len, partial, meta.gso_size);
            match guard.try_io(|fd| fd.get_mut().write_parts(&header, &[packet])) {
                Ok(Ok(())) => packets.pop_front(),
                Ok(Err(error)) if error.raw_os_error() == Some(libc::EINVAL) => {
                    // One bad packet (the user's `send_packet`, say) must not stop the stack.
                    self.send_refused += 1;
                    packets.pop_front();
                }
                Ok(Err(error)) => return Poll::Ready(Err(error)),
                Err(_would_block) => {}
            }
        }
        Poll::Ready(Ok(()))
    }

    fn offloads(&self) -> Offloads {
        self.offloads
    }
}
