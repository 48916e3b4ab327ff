//! IP in UDP: each datagram carries exactly one raw IPv4 or IPv6 packet and nothing else.
//!
//! No root, no device: two processes (or hosts) each bind a UDP socket (IPv4 or IPv6) and
//! name the other as the peer, and their endpoints talk TCP over IPv4 or IPv6 through the
//! datagrams (the inner family need not be the outer one). Datagrams from any
//! other source are dropped and counted.
//!
//! Batches and offloads (Linux; [`UdpOffloads`], each found out at bind time and off where
//! the kernel lacks it): packets go out queued and sent together by one `sendmmsg` when the
//! driver flushes, and come in by `recvmmsg`, many per call. A TCP super-segment is cut here
//! in software ([`Segmenter`], which fills each piece's checksum as it copies) into equal
//! IP packets back to back in one buffer, sent as one datagram per packet by one `sendmsg`
//! entry with `UDP_SEGMENT` set to the packet length (UDP GSO: the kernel cuts the buffer,
//! each UDP datagram still carrying exactly one IP packet). With `UDP_GRO` the kernel may hand
//! up several datagrams of the peer coalesced into one buffer, with their length in a control
//! message; the driver cuts them apart again ([`RxMeta::datagram_size`]).
//!
//! The batch calls take raw pointers to message headers, iovecs and control messages built on
//! the stack for each call; those blocks are this module's `unsafe` code, each with its
//! `SAFETY` argument.

#![allow(unsafe_code)]

use alloc::vec::Vec;
use core::net::{IpAddr, SocketAddr};
use core::ops::Range;
use core::time::Duration;
use std::io;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;

use super::{Offloads, OutSegment, PacketTransport, RxBatch, RxMeta};
use crate::wire::checksum::TxChecksum;
use crate::wire::gso::Segmenter;
use crate::wire::ip::{Ipv4Header, Ipv6Header};

/// Which batch and offload features [`UdpTransport::with_offloads`] asks for; each is used
/// only where the kernel has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UdpOffloads {
    /// `sendmmsg` and `recvmmsg`: many datagrams per system call.
    pub batching: bool,
    /// `UDP_SEGMENT`: a super-segment's IP packets leave by one `sendmsg` entry (needs
    /// `batching`).
    pub gso: bool,
    /// `UDP_GRO`: the kernel may coalesce arriving datagrams (needs `batching`).
    pub gro: bool,
}

impl UdpOffloads {
    /// Everything the kernel has: the default of [`UdpTransport::bind`].
    pub const ALL: Self = Self { batching: true, gso: true, gro: true };
    /// One datagram per `send_to` and `recv_from`.
    pub const NONE: Self = Self { batching: false, gso: false, gro: false };
}

/// Datagrams one `sendmmsg` or `recvmmsg` takes at most.
const BATCH: usize = 64;
/// Octets of IP packets queued for one `sendmmsg` at most.
const SEND_QUEUE_BYTES: usize = 1 << 20;
/// The largest UDP/IPv4 payload.
const MAX_DATAGRAM: usize = 65_507;
/// `UDP_SEGMENT` takes at most this many segments per send (`UDP_MAX_SEGMENTS` of older
/// kernels; newer ones take more).
const MAX_GSO_SEGMENTS: usize = 64;

/// One IP packet per UDP datagram, exchanged with one peer.
#[derive(Debug)]
pub struct UdpTransport {
    socket: UdpSocket,
    peer: SocketAddr,
    mtu: usize,
    /// The socket's current receive mode, to skip redundant system calls.
    mode: Option<ReadMode>,
    foreign_datagrams: u64,
    /// What is in use (asked for and found in the kernel).
    offloads: UdpOffloads,
    /// IP packets queued for the next `sendmmsg`: each entry a range of `queue` and the length
    /// of the datagrams it is cut into (`UDP_SEGMENT`; the whole range when it is one).
    queue: Vec<u8>,
    entries: Vec<(Range<usize>, usize)>,
    /// Datagrams `recvmmsg` cut short (longer than a slot): dropped.
    truncated_datagrams: u64,
    /// `sendmmsg` calls made.
    send_calls: u64,
    /// Sends the kernel refused with `UDP_SEGMENT` (after which it is off).
    gso_refused: u64,
    /// `UDP_GRO` was switched on (by the first batch receive).
    gro_on: bool,
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
        Self::with_offloads(bind, peer, UdpOffloads::ALL)
    }

    /// As [`bind`](Self::bind), with the batch and offload features `wanted` where the kernel
    /// has them ([`UdpTransport::offloads_in_use`] says which).
    ///
    /// # Errors
    ///
    /// Binding the socket.
    pub fn with_offloads(
        bind: SocketAddr,
        peer: SocketAddr,
        wanted: UdpOffloads,
    ) -> io::Result<Self> {
        let socket = UdpSocket::bind(bind)?;
        let batching = wanted.batching;
        // UDP_SEGMENT is a per-send option: the kernel has it if the socket option reads.
        let gso = batching && wanted.gso && socket_option(&socket, libc::UDP_SEGMENT, None).is_ok();
        // UDP_GRO is switched on per socket, at the first batch receive: a caller of the
        // one-packet `recv` must never be handed datagrams coalesced without a word. The
        // kernel has it if the option reads.
        let gro = batching && wanted.gro && socket_option(&socket, libc::UDP_GRO, None).is_ok();
        Ok(Self {
            socket,
            peer,
            mtu: Self::DEFAULT_MTU,
            mode: None,
            foreign_datagrams: 0,
            offloads: UdpOffloads { batching, gso, gro },
            queue: Vec::new(),
            entries: Vec::new(),
            truncated_datagrams: 0,
            send_calls: 0,
            gso_refused: 0,
            gro_on: false,
        })
    }

    /// The batch and offload features in use.
    pub const fn offloads_in_use(&self) -> UdpOffloads {
        self.offloads
    }

    /// Datagrams longer than a receive slot, dropped.
    pub const fn truncated_datagrams(&self) -> u64 {
        self.truncated_datagrams
    }

    /// `sendmmsg` calls made.
    pub const fn send_calls(&self) -> u64 {
        self.send_calls
    }

    /// Sends refused with `UDP_SEGMENT`, after which GSO was turned off.
    pub const fn gso_refused(&self) -> u64 {
        self.gso_refused
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

    /// The source address for the IP packets carried inside, when the user names none
    /// (RFC 9293 MUST-44): the socket's local address, or — bound to the unspecified address
    /// — the one the kernel would send from toward the peer (found by connecting a scratch
    /// socket of the same family, which sends nothing).
    ///
    /// # Errors
    ///
    /// The socket's errors; no route to the peer.
    pub fn source_address(&self) -> io::Result<IpAddr> {
        let local = self.socket.local_addr()?.ip();
        if !local.is_unspecified() {
            return Ok(local);
        }
        let unspecified: SocketAddr = match self.peer {
            SocketAddr::V4(_) => (core::net::Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (core::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let scratch = UdpSocket::bind(unspecified)?;
        scratch.connect(self.peer)?;
        Ok(scratch.local_addr()?.ip())
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

/// Reads (`value` `None`) or sets an integer socket option of level `SOL_UDP`.
fn socket_option(
    socket: &UdpSocket,
    name: libc::c_int,
    value: Option<libc::c_int>,
) -> io::Result<()> {
    let mut option: libc::c_int = value.unwrap_or(0);
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    let status = match value {
        // SAFETY: the option points to one live `c_int` and the length says so; the
        // descriptor is open while `socket` lives.
        Some(_) => unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_UDP,
                name,
                (&raw const option).cast(),
                len,
            )
        },
        // SAFETY: as above; getsockopt writes at most `len` octets into `option` and `len`.
        None => unsafe {
            libc::getsockopt(
                socket.as_raw_fd(),
                libc::SOL_UDP,
                name,
                (&raw mut option).cast(),
                &raw mut len,
            )
        },
    };
    if status < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// A socket address as the kernel takes it.
#[derive(Clone, Copy)]
enum RawAddr {
    V4(libc::sockaddr_in),
    V6(libc::sockaddr_in6),
}

impl RawAddr {
    fn new(addr: SocketAddr) -> Self {
        match addr {
            SocketAddr::V4(v4) => Self::V4(libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(v4.ip().octets()) },
                sin_zero: [0; 8],
            }),
            SocketAddr::V6(v6) => Self::V6(libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: v6.flowinfo(),
                sin6_addr: libc::in6_addr { s6_addr: v6.ip().octets() },
                sin6_scope_id: v6.scope_id(),
            }),
        }
    }

    fn as_ptr(&mut self) -> (*mut libc::c_void, libc::socklen_t) {
        match self {
            Self::V4(v4) => ((&raw mut *v4).cast(), size_of::<libc::sockaddr_in>() as _),
            Self::V6(v6) => ((&raw mut *v6).cast(), size_of::<libc::sockaddr_in6>() as _),
        }
    }
}

/// The address in a `sockaddr_storage` the kernel filled.
fn socket_addr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match libc::c_int::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage (larger and at least as aligned) holds a
            // `sockaddr_in`; it is read by value.
            let v4 = unsafe { *(&raw const *storage).cast::<libc::sockaddr_in>() };
            let ip = core::net::Ipv4Addr::from(v4.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::new(IpAddr::V4(ip), u16::from_be(v4.sin_port)))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for a `sockaddr_in6`.
            let v6 = unsafe { *(&raw const *storage).cast::<libc::sockaddr_in6>() };
            let ip = core::net::Ipv6Addr::from(v6.sin6_addr.s6_addr);
            Some(SocketAddr::new(IpAddr::V6(ip), u16::from_be(v6.sin6_port)))
        }
        _ => None,
    }
}

/// Control-message room for one `u16` option (`UDP_SEGMENT`, `UDP_GRO`): `CMSG_SPACE(4)`
/// rounded up, as `u64`s for alignment.
type ControlRoom = [u64; 4];

impl UdpTransport {
    /// Makes room for `len` more octets and one more entry in the send queue: sends what is
    /// queued first when either would run over.
    fn queue_room(&mut self, len: usize) -> io::Result<()> {
        if self.entries.len() >= BATCH || self.queue.len() + len > SEND_QUEUE_BYTES {
            self.send_queued()?;
        }
        Ok(())
    }

    /// Sends every queued entry, by `sendmmsg` calls of up to [`BATCH`].
    fn send_queued(&mut self) -> io::Result<()> {
        let mut first_error = None;
        let mut done = 0;
        while done < self.entries.len() {
            let batch = self.entries.get(done..).unwrap_or_default();
            let batch = batch.get(..batch.len().min(BATCH)).unwrap_or_default();
            let mut peer = RawAddr::new(self.peer);
            let (name, name_len) = peer.as_ptr();
            let mut iovecs = [libc::iovec { iov_base: core::ptr::null_mut(), iov_len: 0 }; BATCH];
            let mut controls: [ControlRoom; BATCH] = [[0; 4]; BATCH];
            // SAFETY: mmsghdr is plain data; all-zero is a valid (empty) value of it.
            let mut messages: [libc::mmsghdr; BATCH] = unsafe { core::mem::zeroed() };
            for (index, (range, datagram)) in batch.iter().enumerate() {
                let (Some(iovec), Some(message), Some(control), Some(octets)) = (
                    iovecs.get_mut(index),
                    messages.get_mut(index),
                    controls.get_mut(index),
                    self.queue.get(range.clone()),
                ) else {
                    continue;
                };
                // The kernel only reads the octets (sendmsg), whatever the pointer's mutability.
                *iovec = libc::iovec {
                    iov_base: octets.as_ptr().cast_mut().cast(),
                    iov_len: octets.len(),
                };
                message.msg_hdr.msg_name = name;
                message.msg_hdr.msg_namelen = name_len;
                message.msg_hdr.msg_iov = &raw mut *iovec;
                message.msg_hdr.msg_iovlen = 1;
                if *datagram < octets.len() {
                    // UDP_SEGMENT: one cmsghdr then the u16 segment length.
                    let space = size_of::<ControlRoom>();
                    message.msg_hdr.msg_control = control.as_mut_ptr().cast();
                    message.msg_hdr.msg_controllen = space as _;
                    // SAFETY: msg_control points to `space` octets of u64-aligned, live,
                    // exclusively borrowed room, and CMSG_SPACE(2) (24 on 64-bit Linux) fits
                    // in it; CMSG_FIRSTHDR of such a header is that room's start and not
                    // null, and CMSG_DATA points inside it with 2 octets to spare.
                    unsafe {
                        let header = libc::CMSG_FIRSTHDR(&raw const message.msg_hdr);
                        (*header).cmsg_level = libc::SOL_UDP;
                        (*header).cmsg_type = libc::UDP_SEGMENT;
                        (*header).cmsg_len = libc::CMSG_LEN(2) as _;
                        let size = u16::try_from(*datagram).unwrap_or(u16::MAX);
                        libc::CMSG_DATA(header).cast::<u16>().write_unaligned(size);
                        message.msg_hdr.msg_controllen = libc::CMSG_SPACE(2) as _;
                    }
                }
            }
            let count = batch.len();
            // SAFETY: `messages` holds `count` initialised headers (count ≤ BATCH), each
            // pointing at one iovec over live queue octets, at `peer` and, where set, at its
            // control room — all locals or fields that outlive the call. The descriptor is
            // open while `self.socket` lives.
            let sent = unsafe {
                libc::sendmmsg(
                    self.socket.as_raw_fd(),
                    messages.as_mut_ptr(),
                    count as libc::c_uint,
                    0,
                )
            };
            self.send_calls += 1;
            if sent < 0 {
                let error = io::Error::last_os_error();
                if error.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // A kernel whose path cannot do UDP GSO (no checksum offload on the way out:
                // EIO) refuses it per send: off from now on, and the entry is lost like on
                // a wire (TCP resends it, then as single datagrams).
                let gso_entry =
                    batch.first().is_some_and(|(range, datagram)| *datagram < range.len());
                if gso_entry && matches!(error.raw_os_error(), Some(libc::EIO | libc::EINVAL)) {
                    self.offloads.gso = false;
                    self.gso_refused += 1;
                } else {
                    // The first entry failed (a refused peer, say): lost, like on a wire.
                    first_error.get_or_insert(error);
                }
                done += 1;
                continue;
            }
            // A partial send: the rest goes in the next call.
            done += usize::try_from(sent).unwrap_or(0).max(1);
        }
        self.queue.clear();
        self.entries.clear();
        match first_error {
            Some(error) if error.kind() != io::ErrorKind::ConnectionRefused => Err(error),
            _ => Ok(()),
        }
    }

    /// `recvmmsg` into `batch`, after waiting up to `timeout` for the first datagram.
    fn recv_many(&mut self, batch: &mut RxBatch, timeout: Duration) -> io::Result<()> {
        if self.offloads.gro && !self.gro_on {
            self.gro_on = true;
            if socket_option(&self.socket, libc::UDP_GRO, Some(1)).is_err() {
                self.offloads.gro = false;
            }
        }
        let millis = timeout.as_micros().div_ceil(1_000);
        let millis = libc::c_int::try_from(millis).unwrap_or(libc::c_int::MAX);
        let mut poll =
            libc::pollfd { fd: self.socket.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid, exclusively borrowed pollfd, and the count says one.
        let ready = unsafe { libc::poll(&raw mut poll, 1, millis) };
        if ready < 0 {
            let error = io::Error::last_os_error();
            return if error.kind() == io::ErrorKind::Interrupted { Ok(()) } else { Err(error) };
        }
        if ready == 0 {
            return Ok(());
        }
        let slot_len = if self.offloads.gro { MAX_DATAGRAM } else { self.mtu.max(2048) };
        let Some(slots) = batch.slots(slot_len, BATCH) else { return Ok(()) };
        let mut iovecs = [libc::iovec { iov_base: core::ptr::null_mut(), iov_len: 0 }; BATCH];
        let mut controls: [ControlRoom; BATCH] = [[0; 4]; BATCH];
        // SAFETY: sockaddr_storage and mmsghdr are plain data; all-zero is valid for both.
        let mut names: [libc::sockaddr_storage; BATCH] = unsafe { core::mem::zeroed() };
        // SAFETY: as above.
        let mut messages: [libc::mmsghdr; BATCH] = unsafe { core::mem::zeroed() };
        let mut count = 0;
        for (((slot, iovec), (message, name)), control) in slots
            .zip(iovecs.iter_mut())
            .zip(messages.iter_mut().zip(names.iter_mut()))
            .zip(controls.iter_mut())
        {
            *iovec = libc::iovec { iov_base: slot.as_mut_ptr().cast(), iov_len: slot.len() };
            message.msg_hdr.msg_name = (&raw mut *name).cast();
            message.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as _;
            message.msg_hdr.msg_iov = &raw mut *iovec;
            message.msg_hdr.msg_iovlen = 1;
            message.msg_hdr.msg_control = control.as_mut_ptr().cast();
            message.msg_hdr.msg_controllen = size_of::<ControlRoom>() as _;
            count += 1;
        }
        if count == 0 {
            return Ok(());
        }
        // SAFETY: `count` headers, each pointing at one iovec over a distinct slot of the
        // batch's buffer (exclusively borrowed through `batch` for this call), at its own
        // address storage and control room; all outlive the call. No timeout pointer.
        let received = unsafe {
            libc::recvmmsg(
                self.socket.as_raw_fd(),
                messages.as_mut_ptr(),
                count as libc::c_uint,
                libc::MSG_DONTWAIT,
                core::ptr::null_mut(),
            )
        };
        if received < 0 {
            let error = io::Error::last_os_error();
            return match error.kind() {
                io::ErrorKind::WouldBlock
                | io::ErrorKind::Interrupted
                | io::ErrorKind::ConnectionRefused => Ok(()),
                _ => Err(error),
            };
        }
        let received = usize::try_from(received).unwrap_or(0);
        for (index, (message, name)) in messages.iter().zip(names.iter()).take(received).enumerate()
        {
            let len = message.msg_len as usize;
            if socket_addr(name) != Some(self.peer) {
                self.foreign_datagrams += 1;
                continue;
            }
            if message.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                self.truncated_datagrams += 1;
                continue;
            }
            let datagram_size = gro_size(&message.msg_hdr).filter(|&size| size < len).unwrap_or(0);
            batch.commit_slot(slot_len, index, len, RxMeta { datagram_size, ..RxMeta::PLAIN });
        }
        batch.finish_slots(slot_len, received);
        Ok(())
    }
}

/// The `UDP_GRO` control message of a received datagram: the length of the datagrams
/// coalesced into it.
fn gro_size(header: &libc::msghdr) -> Option<usize> {
    if header.msg_controllen == 0 {
        return None;
    }
    // SAFETY: the kernel filled msg_control (our live control room) with well-formed control
    // messages up to msg_controllen; CMSG_FIRSTHDR/NXTHDR stay inside it and return null at
    // its end; CMSG_DATA of a UDP_GRO message holds an int.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(header);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_UDP && (*cmsg).cmsg_type == libc::UDP_GRO {
                let size = libc::CMSG_DATA(cmsg).cast::<libc::c_int>().read_unaligned();
                return usize::try_from(size).ok().filter(|&size| size > 0);
            }
            cmsg = libc::CMSG_NXTHDR(header, cmsg);
        }
    }
    None
}

impl PacketTransport for UdpTransport {
    fn send(&mut self, packet: &[u8]) -> io::Result<()> {
        // At once, as the one-packet form always did (after anything queued, to keep the
        // order): batches are for `send_segment`, whose caller flushes.
        if !self.entries.is_empty() {
            self.send_queued()?;
        }
        self.socket.send_to(packet, self.peer).map(|_| ())
    }

    fn offloads(&self) -> Offloads {
        let mut offloads = Offloads::NONE;
        offloads.batching = self.offloads.batching;
        offloads.rx_coalesced = false;
        if self.offloads.batching {
            // Super-segments are cut here, in software, each piece's checksum computed as it
            // is copied: the endpoint leaves the field to us.
            offloads.tcp_segmentation = true;
            offloads.tx_checksum = TxChecksum::None;
        }
        offloads
    }

    fn recv_batch(&mut self, batch: &mut RxBatch, timeout: Duration) -> io::Result<()> {
        if !self.offloads.batching {
            let mut timeout = timeout;
            while let Some(room) = batch.room(MAX_DATAGRAM) {
                let Some(len) = self.recv(room, timeout)? else { break };
                batch.commit(len, RxMeta::PLAIN);
                timeout = Duration::ZERO;
            }
            return Ok(());
        }
        self.recv_many(batch, timeout)
    }

    fn send_segment(&mut self, segment: &OutSegment<'_>, scratch: &mut Vec<u8>) -> io::Result<()> {
        if !self.offloads.batching {
            // Gathered and sent as it is (never a super-segment: segmentation is off).
            scratch.clear();
            scratch.extend_from_slice(segment.headers);
            for slice in segment.payload {
                scratch.extend_from_slice(slice);
            }
            return self.socket.send_to(scratch, self.peer).map(|_| ());
        }
        let ip_len = segment.ip_header_len;
        let (Some(ip), Some(tcp)) = (segment.headers.get(..ip_len), segment.headers.get(ip_len..))
        else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "headers shorter than the IP header",
            ));
        };
        let Some((ip, (src, dst))) = IpTemplate::new(ip).and_then(|ip| Some((ip, ip.addresses()?)))
        else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "not an IP header"));
        };
        let size = segment.segment_size.max(1);
        let mut pieces = Segmenter::new(tcp, segment.payload, size, src, dst, TxChecksum::Compute)
            .map_err(io::Error::other)?;
        let packet_len = ip_len + pieces.max_segment_len();
        // Whole packets per datagram train: under the UDP payload limit and the kernel's
        // segment count, and one per entry without GSO.
        let per_entry = if self.offloads.gso {
            (MAX_DATAGRAM / packet_len.max(1)).clamp(1, MAX_GSO_SEGMENTS)
        } else {
            1
        };
        let mut index: u16 = 0;
        let mut entry_start = None;
        let mut in_entry = 0;
        loop {
            if entry_start.is_none() {
                self.queue_room(packet_len * per_entry)?;
                entry_start = Some(self.queue.len());
            }
            let at = self.queue.len();
            self.queue.resize(at + packet_len, 0);
            let written =
                pieces.next_segment(self.queue.get_mut(at + ip_len..).unwrap_or_default());
            let Ok(Some(len)) = written else {
                self.queue.truncate(at);
                break;
            };
            self.queue.truncate(at + ip_len + len);
            ip.emit(self.queue.get_mut(at..at + ip_len).unwrap_or_default(), len, index);
            index = index.wrapping_add(1);
            in_entry += 1;
            if in_entry == per_entry {
                if let Some(start) = entry_start.take() {
                    self.entries.push((start..self.queue.len(), packet_len));
                }
                in_entry = 0;
            }
        }
        if let Some(start) = entry_start.filter(|&start| start < self.queue.len()) {
            self.entries.push((start..self.queue.len(), packet_len));
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.entries.is_empty() {
            return Ok(());
        }
        self.send_queued()
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

/// The IP header of a super-segment, repeated before each of its pieces with the lengths
/// (and, for IPv4, identification and header checksum) fixed.
#[derive(Clone, Copy)]
struct IpTemplate<'a> {
    header: &'a [u8],
}

impl<'a> IpTemplate<'a> {
    /// The header, if it is a whole IPv4 (without options) or IPv6 header.
    fn new(header: &'a [u8]) -> Option<Self> {
        match (header.first().map(|byte| byte >> 4), header.len()) {
            (Some(4), Ipv4Header::LEN) | (Some(6), Ipv6Header::LEN) => Some(Self { header }),
            _ => None,
        }
    }

    fn addresses(&self) -> Option<(IpAddr, IpAddr)> {
        let h = self.header;
        if h.len() == Ipv4Header::LEN {
            let src: [u8; 4] = h.get(12..16)?.try_into().ok()?;
            let dst: [u8; 4] = h.get(16..20)?.try_into().ok()?;
            Some((IpAddr::from(src), IpAddr::from(dst)))
        } else {
            let src: [u8; 16] = h.get(8..24)?.try_into().ok()?;
            let dst: [u8; 16] = h.get(24..40)?.try_into().ok()?;
            Some((IpAddr::from(src), IpAddr::from(dst)))
        }
    }

    /// Writes the header of piece `index`, whose TCP segment is `tcp_len` octets, into `out`
    /// (exactly the header's length).
    fn emit(&self, out: &mut [u8], tcp_len: usize, index: u16) {
        if out.len() != self.header.len() {
            return;
        }
        out.copy_from_slice(self.header);
        let tcp_len = u16::try_from(tcp_len).unwrap_or(u16::MAX);
        if self.header.len() == Ipv6Header::LEN {
            if let Some(field) = out.get_mut(4..6) {
                field.copy_from_slice(&tcp_len.to_be_bytes());
            }
            return;
        }
        let total = tcp_len.saturating_add(Ipv4Header::LEN as u16);
        let id = out
            .get(4..6)
            .and_then(|f| f.try_into().ok())
            .map_or(0, u16::from_be_bytes)
            .wrapping_add(index);
        if let Some(field) = out.get_mut(2..6) {
            field.copy_from_slice(&[total.to_be_bytes(), id.to_be_bytes()].concat());
        }
        if let Some(field) = out.get_mut(10..12) {
            field.fill(0);
        }
        let mut sum = crate::wire::checksum::Checksum::new();
        sum.add_bytes(out);
        if let Some(field) = out.get_mut(10..12) {
            field.copy_from_slice(&sum.finish().to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{IpAddr, Ipv4Addr};

    fn loopback() -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)
    }

    /// Two transports with `offloads` talking to each other on loopback.
    fn pair(offloads: UdpOffloads) -> (UdpTransport, UdpTransport) {
        let b_socket = UdpSocket::bind(loopback()).unwrap();
        let b_addr = b_socket.local_addr().unwrap();
        drop(b_socket);
        let mut a = UdpTransport::with_offloads(loopback(), b_addr, offloads).unwrap();
        let b = UdpTransport::with_offloads(b_addr, a.local_addr().unwrap(), offloads).unwrap();
        a.peer = b_addr;
        (a, b)
    }

    #[test]
    fn datagrams_carry_packets_between_two_transports_and_strangers_are_dropped() {
        for offloads in [UdpOffloads::NONE, UdpOffloads::ALL] {
            let (mut a, mut b) = pair(offloads);
            let b_addr = b.local_addr().unwrap();
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

    /// A TCP super-segment of five wire segments (IPv4 header, 20-octet TCP header, 1 000
    /// octets each but the last), headers as the driver hands them over.
    fn super_segment() -> (Vec<u8>, Vec<u8>) {
        let (src, dst) = (Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 1));
        let payload: Vec<u8> = (0..4_321).map(|i| (i % 249) as u8).collect();
        let mut headers = alloc::vec![0u8; 40];
        let ip = Ipv4Header {
            src,
            dst,
            protocol: 6,
            ttl: 64,
            identification: 7,
            dont_fragment: true,
            more_fragments: false,
            fragment_offset: 0,
            total_len: (40 + payload.len()) as u16,
            dscp_ecn: 0,
        };
        ip.emit(&mut headers).unwrap();
        let tcp = crate::wire::TcpHeader {
            src_port: 4000,
            dst_port: 80,
            seq: crate::SeqNum::new(1_000),
            ack: crate::SeqNum::new(1),
            flags: crate::wire::Flags::ACK | crate::wire::Flags::PSH,
            window: 1000,
            urgent_ptr: 0,
            options: crate::wire::Options::NONE,
        };
        let mut scratch = alloc::vec![0u8; 20];
        tcp.emit_with_checksum(&[], src.into(), dst.into(), &mut scratch, TxChecksum::None)
            .unwrap();
        headers[20..].copy_from_slice(&scratch);
        (headers, payload)
    }

    /// The IP packets `b` receives in one batch, cut apart where UDP GRO coalesced them.
    fn received_packets(b: &mut UdpTransport) -> (Vec<Vec<u8>>, usize) {
        let mut batch = RxBatch::new(1 << 20, 64);
        let mut packets = Vec::new();
        let mut coalesced = 0;
        let start = std::time::Instant::now();
        while packets.len() < 5 && start.elapsed() < Duration::from_secs(5) {
            batch.clear();
            b.recv_batch(&mut batch, Duration::from_millis(100)).unwrap();
            for index in 0..batch.len() {
                let (octets, meta) = batch.packet_mut(index).unwrap();
                if meta.datagram_size > 0 {
                    coalesced += 1;
                    packets.extend(octets.chunks(meta.datagram_size).map(<[u8]>::to_vec));
                } else {
                    packets.push(octets.to_vec());
                }
            }
        }
        (packets, coalesced)
    }

    #[test]
    fn the_one_packet_recv_never_sees_coalesced_datagrams() {
        let (mut a, mut b) = pair(UdpOffloads::ALL);
        let (headers, payload) = super_segment();
        let slices = [bytes::Bytes::from(payload)];
        let segment = OutSegment {
            headers: &headers,
            ip_header_len: 20,
            payload: &slices,
            payload_len: 4_321,
            segment_size: 1_000,
            checksum: TxChecksum::None,
        };
        a.send_segment(&segment, &mut Vec::new()).unwrap();
        a.flush().unwrap();
        let mut buf = alloc::vec![0u8; 65_536];
        for expected in [1_040, 1_040, 1_040, 1_040, 361] {
            let len = b.recv(&mut buf, Duration::from_secs(5)).unwrap().expect("a datagram");
            assert_eq!(len, expected);
        }
    }

    #[test]
    fn a_super_segment_leaves_as_whole_ip_packets_one_per_datagram_and_arrives_whole() {
        for (offloads, expect_coalesced) in [
            (UdpOffloads::ALL, true),
            (UdpOffloads { gro: false, ..UdpOffloads::ALL }, false),
            (UdpOffloads { gso: false, gro: false, ..UdpOffloads::ALL }, false),
        ] {
            let (mut a, mut b) = pair(offloads);
            // This kernel (4.18 and later) has both; without them the test would not test them.
            assert_eq!(a.offloads_in_use(), offloads);
            // GRO goes on with the first batch receive (never for the one-packet `recv`).
            b.recv_batch(&mut RxBatch::new(1 << 20, 64), Duration::ZERO).unwrap();
            let (headers, payload) = super_segment();
            let slices = [bytes::Bytes::from(payload.clone())];
            let segment = OutSegment {
                headers: &headers,
                ip_header_len: 20,
                payload: &slices,
                payload_len: payload.len(),
                segment_size: 1_000,
                checksum: TxChecksum::None,
            };
            a.send_segment(&segment, &mut Vec::new()).unwrap();
            a.flush().unwrap();
            assert_eq!(a.send_calls(), 1, "one sendmmsg: {offloads:?}");
            let (packets, coalesced) = received_packets(&mut b);
            assert_eq!(coalesced > 0, expect_coalesced, "{offloads:?}");
            assert_eq!(packets.len(), 5, "{offloads:?}");
            let mut joined = Vec::new();
            for (index, packet) in packets.iter().enumerate() {
                let (ip, tcp) = Ipv4Header::parse(packet).expect("a whole IPv4 packet");
                assert_eq!(ip.identification, 7 + index as u16);
                let segment =
                    crate::wire::Segment::parse_checked(tcp, ip.src.into(), ip.dst.into()).unwrap();
                assert_eq!(segment.header.seq.get(), 1_000 + 1_000 * index as u32);
                assert_eq!(segment.header.flags.contains(crate::wire::Flags::PSH), index == 4);
                joined.extend_from_slice(segment.payload);
            }
            assert_eq!(joined, payload);
        }
    }
}
