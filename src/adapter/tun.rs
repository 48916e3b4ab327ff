//! A Linux TUN device: IP packets to and from the kernel's routing, as if from a network
//! interface (`IFF_TUN | IFF_NO_PI`: no Ethernet header, no packet-information prefix).
//!
//! [`TunDevice::attach`] opens `/dev/net/tun` and binds it to the device named in the
//! calling thread's network namespace: an existing one (made with `ip tuntap add dev NAME
//! mode tun`, which lets a non-root owner use it) or, for root, a new one that lives as long
//! as this handle. Give the kernel's side an address and bring the link up with `ip`, as
//! for any interface; the address on our side is whatever the endpoint uses.
//!
//! Offloads ([`TunOffloads`], all asked for by `attach`): `IFF_VNET_HDR` puts a virtio-net
//! header ([`super::vnet`]) before every packet both ways, through which we hand the kernel
//! TCP super-segments of up to 64 KiB to cut (GSO) with their checksums left for it to finish;
//! `TUNSETOFFLOAD` with `TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6` lets the kernel hand up packets
//! whose checksum it did not finish (made on this host) and its own TSO super-segments. Where
//! the kernel refuses one, it is left off and counted ([`TunOffloadStatus`]); the device still
//! works, one plain packet per call at worst. Reads are non-blocking after a `poll`, so a batch
//! takes whatever the device holds.
//!
//! Why `libc` and not a TUN crate: it takes a handful of calls (`ioctl`s `TUNSETIFF`,
//! `TUNSETOFFLOAD`, `TUNSETVNETLE`, `SIOCGIFMTU`, `fcntl`, `poll`, and `getifaddrs` for the
//! device's addresses, from which a source address is chosen: [`super::source`]) and a 40-byte request
//! struct; `libc` is already in every Rust build on Linux, where a TUN crate would bring an
//! async runtime or a platform layer we do not need. This module, the UDP adapter's batch
//! calls (`src/adapter/udp.rs`) and one call in the checksum's AVX2 dispatch
//! (`src/wire/checksum.rs`) hold the crate's `unsafe` code, each block with its `SAFETY`
//! argument.

#![allow(unsafe_code)]

use alloc::borrow::ToOwned;
use alloc::string::String;
use core::time::Duration;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::UdpSocket;
use std::os::fd::AsRawFd;

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::source::InterfaceAddress;
use super::vnet::{GsoType, VnetHeader};
use super::{Offloads, OutSegment, PacketTransport, RxBatch, RxChecksumState, RxMeta};
use crate::wire::checksum::TxChecksum;
use alloc::vec::Vec;

/// `struct ifreq` of `<net/if.h>`: an interface name and a 24-octet union, of which we use
/// the leading `short` (flags) or `int` (MTU).
#[repr(C)]
struct InterfaceRequest {
    name: [u8; 16],
    data: [u8; 24],
}

impl InterfaceRequest {
    fn new(name: &str) -> io::Result<Self> {
        let bytes = name.as_bytes();
        // IFNAMSIZ is 16 with the terminating NUL.
        if bytes.is_empty() || bytes.len() > 15 || bytes.contains(&0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an interface name is 1 to 15 octets, without NUL",
            ));
        }
        let mut request = Self { name: [0; 16], data: [0; 24] };
        if let Some(slot) = request.name.get_mut(..bytes.len()) {
            slot.copy_from_slice(bytes);
        }
        Ok(request)
    }
}

/// Which offloads [`TunDevice::attach_with`] asks the kernel for. Each is tried and, where the
/// kernel refuses it, left off (see [`TunDevice::offload_status`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TunOffloads {
    /// `IFF_VNET_HDR`: a virtio-net header before every packet both ways. Without it none of
    /// the others is possible.
    pub vnet_hdr: bool,
    /// Hand the kernel TCP super-segments of up to 64 KiB to cut (GSO), with their checksums
    /// left for it to finish; off: one wire segment per write (still with the checksum left to
    /// the kernel).
    pub tx_gso: bool,
    /// `TUN_F_CSUM`: the kernel may hand up packets whose checksum it did not finish (made on
    /// this host: nothing to verify).
    pub rx_checksum: bool,
    /// `TUN_F_TSO4 | TUN_F_TSO6` (needs `rx_checksum`): the kernel may hand up TCP super-segments
    /// of up to 64 KiB that its own TSO did not cut.
    pub rx_tso: bool,
}

impl TunOffloads {
    /// Everything on: what [`TunDevice::attach`] asks for.
    pub const ALL: Self = Self { vnet_hdr: true, tx_gso: true, rx_checksum: true, rx_tso: true };
    /// Nothing: one plain IP packet per `read` and `write`, as before offloads.
    pub const NONE: Self =
        Self { vnet_hdr: false, tx_gso: false, rx_checksum: false, rx_tso: false };
}

/// What the kernel accepted of the [`TunOffloads`] asked for; a refused one is off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TunOffloadStatus {
    /// `IFF_VNET_HDR` is on.
    pub vnet_hdr: bool,
    /// Super-segments are written for the kernel to cut.
    pub tx_gso: bool,
    /// `TUN_F_CSUM` is on.
    pub rx_checksum: bool,
    /// `TUN_F_TSO4` is on.
    pub rx_tso4: bool,
    /// `TUN_F_TSO6` is on.
    pub rx_tso6: bool,
    /// Offloads asked for and refused by the kernel (each fall-back counts one).
    pub refused: u32,
}

/// A Linux TUN device carrying raw IP packets.
#[derive(Debug)]
pub struct TunDevice {
    file: File,
    name: String,
    mtu: usize,
    offloads: TunOffloadStatus,
    /// Received virtio-net headers that did not decode (the packet is dropped).
    bad_vnet_headers: u64,
}

/// `TUN_F_*` of `<linux/if_tun.h>`.
const TUN_F_CSUM: libc::c_uint = 0x01;
const TUN_F_TSO4: libc::c_uint = 0x02;
const TUN_F_TSO6: libc::c_uint = 0x04;
/// The most iovecs one `writev` of a segment takes here: the virtio-net header, the headers
/// and up to 62 payload slices (a segment in more slices is gathered first).
const MAX_IOVECS: usize = 64;
/// Room for the largest IP packet a read can return.
const MAX_PACKET: usize = 65_535;

impl TunDevice {
    /// Binds to the TUN device `name`, creating it if it does not exist (root only) —
    /// see the module docs — with every offload the kernel takes ([`TunOffloads::ALL`]).
    /// The MTU is read from the device.
    ///
    /// # Errors
    ///
    /// Opening `/dev/net/tun` (missing, or no permission), binding the name (a device of
    /// another kind, or busy), or reading the MTU.
    pub fn attach(name: &str) -> io::Result<Self> {
        Self::attach_with(name, TunOffloads::ALL)
    }

    /// As [`attach`](Self::attach), asking for the `offloads` given; those the kernel refuses
    /// are left off and counted in [`TunOffloadStatus::refused`].
    ///
    /// # Errors
    ///
    /// As [`attach`](Self::attach).
    pub fn attach_with(name: &str, offloads: TunOffloads) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(true).open("/dev/net/tun")?;
        let mut status = TunOffloadStatus::default();
        let plain = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
        if offloads.vnet_hdr {
            match set_interface(&file, name, plain | libc::IFF_VNET_HDR as libc::c_short) {
                Ok(()) => status.vnet_hdr = true,
                // A kernel without IFF_VNET_HDR says EINVAL: plain mode then.
                Err(error) if error.raw_os_error() == Some(libc::EINVAL) => status.refused += 1,
                Err(error) => return Err(error),
            }
        }
        if !status.vnet_hdr {
            set_interface(&file, name, plain)?;
        }
        if status.vnet_hdr {
            // Little-endian header fields whatever the host's order (legacy virtio would use
            // the host's); a kernel without the call is a little-endian host's kernel.
            let little_endian: libc::c_int = 1;
            // SAFETY: TUNSETVNETLE reads one `int` through the pointer, which points to a
            // live local for the call; the descriptor is open while `file` lives.
            let set = unsafe {
                libc::ioctl(file.as_raw_fd(), libc::TUNSETVNETLE, &raw const little_endian)
            };
            if set < 0 && cfg!(target_endian = "big") {
                return Err(io::Error::last_os_error());
            }
            status.tx_gso = offloads.tx_gso;
            set_offloads(&file, offloads, &mut status);
        }
        // Reads in a batch go on until the device is empty: they must not block.
        // SAFETY: F_GETFL/F_SETFL on a descriptor open while `file` lives; no pointers.
        unsafe {
            let flags = libc::fcntl(file.as_raw_fd(), libc::F_GETFL);
            if flags < 0
                || libc::fcntl(file.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) < 0
            {
                return Err(io::Error::last_os_error());
            }
        }
        let mtu = interface_mtu(name)?;
        Ok(Self { file, name: name.to_owned(), mtu, offloads: status, bad_vnet_headers: 0 })
    }

    /// The device's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The offloads in force.
    pub const fn offload_status(&self) -> TunOffloadStatus {
        self.offloads
    }

    /// Packets dropped because their virtio-net header did not decode.
    pub const fn bad_vnet_headers(&self) -> u64 {
        self.bad_vnet_headers
    }

    /// Waits up to `timeout` for the device to be readable; `false` when it did not become so.
    fn wait_readable(&self, timeout: Duration) -> io::Result<bool> {
        if timeout.is_zero() {
            return Ok(true);
        }
        // Round up so a timer due in 0.3 ms is not polled with 0 and spun on.
        let millis = timeout.as_micros().div_ceil(1_000);
        let millis = libc::c_int::try_from(millis).unwrap_or(libc::c_int::MAX);
        let mut poll = libc::pollfd { fd: self.file.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        loop {
            // SAFETY: `poll` points to one valid, exclusively borrowed `pollfd` and the count
            // says one; the descriptor is open while `self.file` lives.
            let ready = unsafe { libc::poll(&raw mut poll, 1, millis) };
            if ready < 0 {
                let error = io::Error::last_os_error();
                if error.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(error);
            }
            return Ok(ready > 0);
        }
    }

    /// One read: the packet into `buf`, its virtio-net header (if on) apart. `Ok(None)` when
    /// nothing is there; a header that does not decode drops the packet (counted) and reads on.
    pub(crate) fn read_one(&mut self, buf: &mut [u8]) -> io::Result<Option<(usize, RxMeta)>> {
        loop {
            if !self.offloads.vnet_hdr {
                return match self.file.read(buf) {
                    Ok(len) => Ok(Some((len, RxMeta::PLAIN))),
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(None),
                    Err(error) => Err(error),
                };
            }
            let mut header = [0u8; VnetHeader::LEN];
            let mut parts = [io::IoSliceMut::new(&mut header), io::IoSliceMut::new(buf)];
            let read = match self.file.read_vectored(&mut parts) {
                Ok(read) => read,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(error) => return Err(error),
            };
            let len = read.saturating_sub(VnetHeader::LEN);
            match decode_header(&header, len) {
                Some(meta) => return Ok(Some((len, meta))),
                None => self.bad_vnet_headers += 1,
            }
        }
    }

    /// Writes `parts` as one packet, the virtio-net header `header` in front when it is on.
    pub(crate) fn write_parts(&mut self, header: &VnetHeader, parts: &[&[u8]]) -> io::Result<()> {
        let encoded = header.encode();
        let mut slices: [io::IoSlice<'_>; MAX_IOVECS] = [io::IoSlice::new(&[]); MAX_IOVECS];
        let mut count = 0;
        if self.offloads.vnet_hdr {
            slices[0] = io::IoSlice::new(&encoded);
            count = 1;
        }
        for (slot, part) in slices.iter_mut().skip(count).zip(parts) {
            *slot = io::IoSlice::new(part);
            count += 1;
        }
        // One write is one packet on a TUN descriptor (a short write cannot happen: the
        // kernel takes the packet whole or fails).
        self.file.write_vectored(slices.get(..count).unwrap_or_default()).map(|_| ())
    }
}

/// The receive-side meaning of a virtio-net header in front of a packet of `packet_len`
/// octets, or `None` when it does not decode.
fn decode_header(header: &[u8; VnetHeader::LEN], packet_len: usize) -> Option<RxMeta> {
    let decoded = VnetHeader::decode_for(header, packet_len).ok()?;
    let checksum = if decoded.needs_csum {
        RxChecksumState::Partial { start: decoded.csum_start, offset: decoded.csum_offset }
    } else if decoded.data_valid {
        RxChecksumState::Valid
    } else {
        RxChecksumState::Unknown
    };
    let tcp_gso_size = (decoded.gso != GsoType::None).then_some(decoded.gso_size);
    Some(RxMeta { checksum, tcp_gso_size, datagram_size: 0 })
}

/// The virtio-net header for a TCP segment we send, whose IP header of `ip_header_len`
/// octets starts `packet` (the TCP header follows; the payload may or may not): all zero
/// when its checksum is complete (`partial` false), else `NEEDS_CSUM` at the TCP checksum
/// field and, with `gso_size`, a TCPv4 or TCPv6 super-packet to be cut at that many payload
/// octets. A super-packet whose first piece carries CWR says so with the ECN bit (RFC 3168
/// §6.1.2: the kernel keeps CWR on the first piece only). Shared by the blocking adapter's
/// `send_segment` and the async stack's TUN device.
pub(crate) fn tcp_tx_header(
    packet: &[u8],
    ip_header_len: usize,
    partial: bool,
    gso_size: Option<u16>,
) -> VnetHeader {
    if !partial {
        return VnetHeader::PLAIN;
    }
    let ipv6 = packet.first().is_some_and(|byte| byte >> 4 == 6);
    let ip_len = u16::try_from(ip_header_len).unwrap_or(u16::MAX);
    // The TCP header's length from its data offset (the payload may follow in `packet`).
    let offset = packet.get(ip_header_len + 12).copied().unwrap_or(0);
    let tcp_len = u16::from(offset >> 4) * 4;
    let mut header = VnetHeader::for_tcp(ipv6, ip_len, tcp_len, gso_size);
    let flags = packet.get(ip_header_len + 13).copied().unwrap_or(0);
    header.gso_ecn = gso_size.is_some() && flags & 0x80 != 0;
    header
}

/// TUNSETIFF: binds `file` to the interface `name` with `flags`.
fn set_interface(file: &File, name: &str, flags: libc::c_short) -> io::Result<()> {
    let mut request = InterfaceRequest::new(name)?;
    if let Some(slot) = request.data.get_mut(..2) {
        slot.copy_from_slice(&flags.to_ne_bytes());
    }
    // SAFETY: the descriptor is open for as long as `file` lives; TUNSETIFF reads and
    // writes one `struct ifreq`, and `request` is a valid, exclusively borrowed,
    // `repr(C)` struct of exactly that size (16 + 24 octets) for the duration of the call.
    let status = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &raw mut request) };
    if status < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// TUNSETOFFLOAD with what `wanted` asks for, dropping TSO6, then TSO4, then the checksum
/// where the kernel refuses a set; records what held in `status`.
fn set_offloads(file: &File, wanted: TunOffloads, status: &mut TunOffloadStatus) {
    negotiate_offloads(wanted, status, |flags| {
        // SAFETY: TUNSETOFFLOAD takes its argument by value (an unsigned long of flags); no
        // memory is passed. The descriptor is open while `file` lives.
        let set = unsafe {
            libc::ioctl(file.as_raw_fd(), libc::TUNSETOFFLOAD, libc::c_ulong::from(flags))
        };
        set == 0
    });
}

/// The fall-back order of [`set_offloads`], apart from the system call so that a kernel
/// refusing some sets can be played by a test: `kernel_accepts(flags)` asks for one set.
/// Older kernels lack TSO6 (or, in containers, any offload): each refusal is counted and the
/// device carries on with what is left, down to plain packets behind the header.
fn negotiate_offloads(
    wanted: TunOffloads,
    status: &mut TunOffloadStatus,
    mut kernel_accepts: impl FnMut(libc::c_uint) -> bool,
) {
    let mut attempts: Vec<libc::c_uint> = Vec::new();
    if wanted.rx_checksum && wanted.rx_tso {
        attempts.extend([TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6, TUN_F_CSUM | TUN_F_TSO4]);
    }
    if wanted.rx_checksum {
        attempts.push(TUN_F_CSUM);
    }
    for (tried, &flags) in attempts.iter().enumerate() {
        if kernel_accepts(flags) {
            status.refused += u32::try_from(tried).unwrap_or(u32::MAX);
            status.rx_checksum = flags & TUN_F_CSUM != 0;
            status.rx_tso4 = flags & TUN_F_TSO4 != 0;
            status.rx_tso6 = flags & TUN_F_TSO6 != 0;
            return;
        }
    }
    status.refused += u32::try_from(attempts.len()).unwrap_or(u32::MAX);
}

/// The MTU of interface `name` in the calling thread's network namespace.
fn interface_mtu(name: &str) -> io::Result<usize> {
    // Any socket serves as a handle for interface ioctls.
    let socket = UdpSocket::bind("0.0.0.0:0")?;
    let mut request = InterfaceRequest::new(name)?;
    // SAFETY: the socket's descriptor is open while `socket` lives; SIOCGIFMTU reads the
    // name from and writes an `int` into one `struct ifreq`, which `request` is (`repr(C)`,
    // 40 octets, exclusively borrowed for the call).
    let status =
        unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFMTU as _, &raw mut request) };
    if status < 0 {
        return Err(io::Error::last_os_error());
    }
    let mtu = request.data.first_chunk::<4>().map_or(0, |bytes| libc::c_int::from_ne_bytes(*bytes));
    usize::try_from(mtu).map_err(|_| io::Error::other("negative MTU"))
}

impl TunDevice {
    /// The addresses configured on the device (the kernel's end of the link), read now with
    /// `getifaddrs`.
    ///
    /// # Errors
    ///
    /// `getifaddrs` failing.
    pub fn interface_addresses(&self) -> io::Result<Vec<InterfaceAddress>> {
        interface_addresses(&self.name)
    }

    /// The stack's candidate source addresses on this device: the far end of each of its
    /// configured addresses ([`super::source::far_end`]), for
    /// [`super::source::choose_source`] when the user names none (MUST-44).
    ///
    /// # Errors
    ///
    /// `getifaddrs` failing.
    pub fn source_addresses(&self) -> io::Result<Vec<IpAddr>> {
        Ok(self.interface_addresses()?.iter().filter_map(super::source::far_end).collect())
    }
}

/// The IP address in a `sockaddr` `getifaddrs` filled, if it is IPv4 or IPv6.
///
/// # Safety
///
/// `addr` is null or points to a valid `sockaddr` whose family says how long it is.
unsafe fn sockaddr_ip(addr: *const libc::sockaddr) -> Option<IpAddr> {
    if addr.is_null() {
        return None;
    }
    // SAFETY: non-null and valid by the caller's contract; the family is read first and says
    // which (larger) struct the pointer holds, read unaligned by value.
    unsafe {
        match libc::c_int::from((*addr).sa_family) {
            libc::AF_INET => {
                let v4 = core::ptr::read_unaligned(addr.cast::<libc::sockaddr_in>());
                Some(IpAddr::V4(Ipv4Addr::from(v4.sin_addr.s_addr.to_ne_bytes())))
            }
            libc::AF_INET6 => {
                let v6 = core::ptr::read_unaligned(addr.cast::<libc::sockaddr_in6>());
                Some(IpAddr::V6(Ipv6Addr::from(v6.sin6_addr.s6_addr)))
            }
            _ => None,
        }
    }
}

/// The IPv4 and IPv6 addresses configured on interface `name` in the calling thread's
/// network namespace (`getifaddrs`), with their prefix lengths and point-to-point peers.
///
/// # Errors
///
/// `getifaddrs` failing.
pub fn interface_addresses(name: &str) -> io::Result<Vec<InterfaceAddress>> {
    let mut list: *mut libc::ifaddrs = core::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head into the valid, exclusively borrowed pointer.
    if unsafe { libc::getifaddrs(&raw mut list) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut found = Vec::new();
    let mut entry = list;
    while !entry.is_null() {
        // SAFETY: `entry` is a node of the list getifaddrs made, not freed until below; its
        // name is a NUL-terminated string and its address pointers are null or valid
        // `sockaddr`s (the kernel's families), as getifaddrs(3) documents.
        unsafe {
            let node = &*entry;
            let matches = !node.ifa_name.is_null()
                && core::ffi::CStr::from_ptr(node.ifa_name).to_bytes() == name.as_bytes();
            if matches && let Some(address) = sockaddr_ip(node.ifa_addr) {
                let prefix_len = match sockaddr_ip(node.ifa_netmask) {
                    Some(IpAddr::V4(mask)) => u32::from(mask).count_ones(),
                    Some(IpAddr::V6(mask)) => u128::from(mask).count_ones(),
                    None => 0,
                };
                // On a point-to-point link `ifa_ifu` is the peer's address.
                let peer = if node.ifa_flags & libc::IFF_POINTOPOINT as libc::c_uint != 0 {
                    sockaddr_ip(node.ifa_ifu)
                } else {
                    None
                };
                found.push(InterfaceAddress {
                    address,
                    prefix_len: u8::try_from(prefix_len).unwrap_or(0),
                    peer,
                });
            }
            entry = node.ifa_next;
        }
    }
    // SAFETY: the list getifaddrs made, freed once, after its last use.
    unsafe { libc::freeifaddrs(list) };
    Ok(found)
}

#[cfg(feature = "tokio")]
impl TunDevice {
    /// Registers the device with the current tokio runtime's reactor (the async stack's TUN
    /// device waits on it). Panics, as tokio does, in a runtime without I/O enabled.
    ///
    /// # Errors
    ///
    /// `Other` outside a tokio runtime; the reactor's registration error.
    pub(crate) fn register_async(self) -> io::Result<tokio::io::unix::AsyncFd<Self>> {
        tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
        // SAFETY: `register` needs the descriptor to stay open and be this one for as long
        // as it is registered. It is the `File` this device owns and never closes or
        // replaces; the `AsyncFd` owns the device and deregisters before dropping it.
        unsafe { tokio::io::unix::AsyncFd::register(self) }.map_err(io::Error::from)
    }
}

/// The device's descriptor, for readiness with an event loop (the async stack's TUN device
/// registers it with tokio's `AsyncFd`); reads and writes must go through the device.
impl AsRawFd for TunDevice {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.file.as_raw_fd()
    }
}

impl PacketTransport for TunDevice {
    fn send(&mut self, packet: &[u8]) -> io::Result<()> {
        // Checksums complete: a header of zeros (when headers are on at all).
        self.write_parts(&VnetHeader::PLAIN, &[packet])
    }

    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<Option<usize>> {
        if !self.wait_readable(timeout)? {
            return Ok(None);
        }
        let Some((len, meta)) = self.read_one(buf)? else { return Ok(None) };
        // A caller of the one-packet form cannot be told the checksum is unfinished: finish it.
        if let Some(packet) = buf.get_mut(..len) {
            super::finish_partial_checksum(packet, meta.checksum);
        }
        Ok(Some(len))
    }

    fn mtu(&self) -> usize {
        self.mtu
    }

    fn offloads(&self) -> Offloads {
        let vnet = self.offloads.vnet_hdr;
        let mut offloads = Offloads::NONE;
        offloads.tcp_segmentation = vnet && self.offloads.tx_gso;
        if vnet {
            offloads.tx_checksum = TxChecksum::PseudoHeader;
        }
        offloads.rx_checksum = vnet;
        offloads.rx_coalesced = self.offloads.rx_tso4 || self.offloads.rx_tso6;
        offloads.batching = true;
        offloads
    }

    fn recv_batch(&mut self, batch: &mut RxBatch, timeout: Duration) -> io::Result<()> {
        if !self.wait_readable(timeout)? {
            return Ok(());
        }
        // Room for the largest packet, so a super-segment is never cut short.
        while let Some(room) = batch.room(MAX_PACKET) {
            let Some((len, meta)) = self.read_one(room)? else { break };
            batch.commit(len, meta);
        }
        Ok(())
    }

    fn send_segment(&mut self, segment: &OutSegment<'_>, scratch: &mut Vec<u8>) -> io::Result<()> {
        let vnet = self.offloads.vnet_hdr;
        let partial = segment.checksum == TxChecksum::PseudoHeader;
        if !vnet && (partial || segment.is_super()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a partial checksum or super-segment needs IFF_VNET_HDR",
            ));
        }
        let gso_size =
            segment.is_super().then(|| u16::try_from(segment.segment_size).unwrap_or(u16::MAX));
        let header = tcp_tx_header(segment.headers, segment.ip_header_len, partial, gso_size);
        if segment.payload.len() < MAX_IOVECS - 2 {
            let mut parts: [&[u8]; MAX_IOVECS] = [&[]; MAX_IOVECS];
            parts[0] = segment.headers;
            for (slot, slice) in parts.iter_mut().skip(1).zip(segment.payload) {
                *slot = slice;
            }
            let count = 1 + segment.payload.len();
            return self.write_parts(&header, parts.get(..count).unwrap_or_default());
        }
        scratch.clear();
        scratch.extend_from_slice(segment.headers);
        for slice in segment.payload {
            scratch.extend_from_slice(slice);
        }
        let gathered = core::mem::take(scratch);
        let result = self.write_parts(&header, &[&gathered]);
        *scratch = gathered;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A "device" that is the write end of a pipe, with the offloads `status`, and the read end.
    fn piped(status: TunOffloadStatus) -> (TunDevice, io::PipeReader) {
        let (reader, writer) = io::pipe().unwrap();
        let file = File::from(std::os::fd::OwnedFd::from(writer));
        let device = TunDevice {
            file,
            name: "pipe".into(),
            mtu: 1500,
            offloads: status,
            bad_vnet_headers: 0,
        };
        (device, reader)
    }

    const OFFLOADED: TunOffloadStatus = TunOffloadStatus {
        vnet_hdr: true,
        tx_gso: true,
        rx_checksum: true,
        rx_tso4: true,
        rx_tso6: true,
        refused: 0,
    };

    /// IPv4 and TCP headers (flags `flags`) for a segment of `payload` octets.
    fn ip_tcp_headers(payload: usize, flags: u8) -> Vec<u8> {
        let mut headers = alloc::vec![0u8; 40];
        headers[0] = 0x45;
        headers[2..4].copy_from_slice(&((40 + payload) as u16).to_be_bytes());
        headers[9] = 6;
        headers[20 + 12] = 5 << 4;
        headers[20 + 13] = flags;
        headers
    }

    #[test]
    fn a_super_segment_goes_out_in_one_write_behind_the_header_the_kernel_cuts_it_by() {
        let (mut device, mut pipe) = piped(OFFLOADED);
        let payload = bytes::Bytes::from((0..3_000).map(|i| i as u8).collect::<Vec<u8>>());
        let (first, second) = (payload.slice(..1_000), payload.slice(1_000..));
        let headers = ip_tcp_headers(payload.len(), 0x80 | 0x10);
        let segment = OutSegment {
            headers: &headers,
            ip_header_len: 20,
            payload: &[first, second],
            payload_len: 3_000,
            segment_size: 1_448,
            checksum: TxChecksum::PseudoHeader,
        };
        device.send_segment(&segment, &mut Vec::new()).unwrap();
        let mut written = alloc::vec![0u8; 4_000];
        let len = pipe.read(&mut written).unwrap();
        let (header, packet) = VnetHeader::decode(&written[..len]).unwrap();
        assert_eq!(
            header,
            VnetHeader {
                needs_csum: true,
                data_valid: false,
                gso: GsoType::TcpV4,
                gso_ecn: true,
                hdr_len: 40,
                gso_size: 1_448,
                csum_start: 20,
                csum_offset: 16,
            }
        );
        assert_eq!(&packet[..40], &headers[..]);
        assert_eq!(&packet[40..], &payload[..]);
        // An ordinary segment with its checksum complete: a header of zeros.
        let short = ip_tcp_headers(100, 0x10);
        let body = [payload.slice(..100)];
        let segment = OutSegment {
            headers: &short,
            ip_header_len: 20,
            payload: &body,
            payload_len: 100,
            segment_size: 100,
            checksum: TxChecksum::Compute,
        };
        device.send_segment(&segment, &mut Vec::new()).unwrap();
        let len = pipe.read(&mut written).unwrap();
        assert_eq!(&written[..10], &[0; 10]);
        assert_eq!(len, 10 + 140);
    }

    #[test]
    fn without_the_header_packets_go_plain_and_super_segments_are_refused() {
        let (mut device, mut pipe) = piped(TunOffloadStatus::default());
        assert_eq!(device.offloads(), Offloads { batching: true, ..Offloads::NONE });
        device.send(b"plain packet").unwrap();
        let mut written = [0u8; 64];
        let len = pipe.read(&mut written).unwrap();
        assert_eq!(&written[..len], b"plain packet");
        let headers = ip_tcp_headers(3_000, 0x10);
        let payload = [bytes::Bytes::from(alloc::vec![0u8; 3_000])];
        let segment = OutSegment {
            headers: &headers,
            ip_header_len: 20,
            payload: &payload,
            payload_len: 3_000,
            segment_size: 1_448,
            checksum: TxChecksum::PseudoHeader,
        };
        let error = device.send_segment(&segment, &mut Vec::new()).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn received_headers_become_what_the_driver_needs_and_bad_ones_drop_the_packet() {
        let packet = [0u8; 60];
        let partial = VnetHeader::for_tcp(false, 20, 20, Some(1_448));
        let meta = decode_header(&partial.encode(), packet.len()).unwrap();
        assert_eq!(
            meta,
            RxMeta {
                checksum: RxChecksumState::Partial { start: 20, offset: 16 },
                tcp_gso_size: Some(1_448),
                datagram_size: 0,
            }
        );
        let valid = VnetHeader { data_valid: true, ..VnetHeader::PLAIN };
        assert_eq!(decode_header(&valid.encode(), 60).unwrap().checksum, RxChecksumState::Valid);
        assert_eq!(decode_header(&[0; 10], 60), Some(RxMeta::PLAIN));
        // The checksum field past the end of a 30-octet packet, an unknown GSO type.
        assert_eq!(decode_header(&partial.encode(), 30), None);
        assert_eq!(decode_header(&[0, 3, 0, 0, 0, 0, 0, 0, 0, 0], 60), None);
    }

    /// Plays a kernel that takes only the flag sets `accepted`; returns what was asked, in
    /// order, and the status the negotiation left.
    fn negotiate_with(
        wanted: TunOffloads,
        accepted: &[libc::c_uint],
    ) -> (Vec<libc::c_uint>, TunOffloadStatus) {
        let mut asked = Vec::new();
        let mut status = TunOffloadStatus { vnet_hdr: true, ..TunOffloadStatus::default() };
        negotiate_offloads(wanted, &mut status, |flags| {
            asked.push(flags);
            accepted.contains(&flags)
        });
        (asked, status)
    }

    #[test]
    fn a_kernel_refusing_tso6_leaves_tso4_and_the_checksum_on_and_counts_one_refusal() {
        let all = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
        let (asked, status) = negotiate_with(TunOffloads::ALL, &[TUN_F_CSUM | TUN_F_TSO4]);
        assert_eq!(asked, [all, TUN_F_CSUM | TUN_F_TSO4]);
        assert_eq!(
            (status.rx_checksum, status.rx_tso4, status.rx_tso6, status.refused),
            (true, true, false, 1)
        );
        // Everything taken at the first ask: nothing refused.
        let (asked, status) = negotiate_with(TunOffloads::ALL, &[all]);
        assert_eq!(asked, [all]);
        assert_eq!((status.rx_tso6, status.refused), (true, 0));
    }

    #[test]
    fn a_kernel_refusing_every_offload_leaves_plain_packets_behind_the_header() {
        let (asked, status) = negotiate_with(TunOffloads::ALL, &[]);
        assert_eq!(asked.len(), 3);
        assert_eq!(
            (status.rx_checksum, status.rx_tso4, status.rx_tso6, status.refused),
            (false, false, false, 3)
        );
        assert!(status.vnet_hdr, "the header itself stays: only the offloads fell back");
        // A kernel taking only the checksum offload.
        let (_, status) = negotiate_with(TunOffloads::ALL, &[TUN_F_CSUM]);
        assert_eq!((status.rx_checksum, status.rx_tso4, status.refused), (true, false, 2));
    }

    #[test]
    fn tso_is_not_asked_for_without_the_checksum_offload_it_needs() {
        let wanted = TunOffloads { rx_checksum: false, ..TunOffloads::ALL };
        let (asked, status) = negotiate_with(wanted, &[TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6]);
        assert!(asked.is_empty());
        assert_eq!((status.rx_checksum, status.rx_tso4, status.refused), (false, false, 0));
    }

    #[test]
    fn bad_interface_names_are_refused_before_any_system_call() {
        for name in ["", "a-name-far-too-long", "nul\0inside"] {
            let error = InterfaceRequest::new(name).err().expect("refused");
            assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{name:?}");
        }
        assert!(InterfaceRequest::new("tun0").is_ok());
    }
}
