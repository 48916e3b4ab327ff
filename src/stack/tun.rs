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
//! Offloads: the stack's [`Device`] carries plain IP packets of at most the MTU, with complete
//! checksums both ways, so only the receive-checksum offload is asked for (`IFF_VNET_HDR` with
//! `TUN_F_CSUM`: a packet made on this host may come with its checksum unfinished, and is
//! finished here, as the adapter's one-packet receive does). TSO either way would need the
//! trait to carry each packet's segmentation metadata; the blocking `Driver` over the adapter
//! has it.

use alloc::string::String;
use core::task::{Context, Poll};
use std::io;

use tokio::io::unix::AsyncFd;

use super::{Device, PacketBatch};
use crate::adapter::tun::{self, TunOffloadStatus, TunOffloads};
use crate::adapter::vnet::VnetHeader;

/// A Linux TUN device for a [`Stack`](super::Stack): attach to an existing device (or, as root,
/// create one), route traffic into it with `ip`, and hand it to `Stack::new`.
#[derive(Debug)]
pub struct TunDevice {
    fd: AsyncFd<tun::TunDevice>,
    mtu: usize,
    /// Packets the kernel refused (`EINVAL`: not a packet it takes), dropped.
    send_refused: u64,
}

impl TunDevice {
    /// Binds to the TUN device `name` (see [`tun::TunDevice::attach`] for what that takes and
    /// creates) with the receive-checksum offload where the kernel has it, and registers it
    /// with the current tokio runtime's reactor.
    ///
    /// # Errors
    ///
    /// As [`tun::TunDevice::attach`]; also when called outside a tokio runtime (in one
    /// without I/O enabled, tokio panics).
    pub fn attach(name: &str) -> io::Result<Self> {
        let offloads =
            TunOffloads { vnet_hdr: true, tx_gso: false, rx_checksum: true, rx_tso: false };
        Self::from_device(tun::TunDevice::attach_with(name, offloads)?)
    }

    /// Wraps a device attached with the adapter (its TSO offloads must be off: see the module
    /// docs).
    ///
    /// # Errors
    ///
    /// `InvalidInput` if receive TSO is on; registering with the runtime's reactor (as for
    /// [`attach`](Self::attach)).
    pub fn from_device(device: tun::TunDevice) -> io::Result<Self> {
        let status = device.offload_status();
        if status.rx_tso4 || status.rx_tso6 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the async stack's TUN device takes no receive TSO",
            ));
        }
        let mtu = crate::adapter::PacketTransport::mtu(&device);
        Ok(Self { fd: device.register_async()?, mtu, send_refused: 0 })
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
            buffer.resize(self.mtu, 0);
            let read = guard.try_io(|fd| {
                fd.get_mut().read_one(&mut buffer)?.ok_or_else(|| io::ErrorKind::WouldBlock.into())
            });
            match read {
                Ok(Ok((len, meta))) => {
                    buffer.truncate(len);
                    crate::adapter::finish_partial_checksum(&mut buffer, meta.checksum);
                    packets.push(buffer);
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
        while let Some(packet) = packets.front() {
            let mut guard = match self.fd.poll_write_ready_mut(cx) {
                Poll::Ready(Ok(guard)) => guard,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => return Poll::Pending,
            };
            match guard.try_io(|fd| fd.get_mut().write_parts(&VnetHeader::PLAIN, &[packet])) {
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
}
