//! A Linux TUN device: IP packets to and from the kernel's routing, as if from a network
//! interface (`IFF_TUN | IFF_NO_PI`: no Ethernet header, no packet-information prefix).
//!
//! [`TunDevice::attach`] opens `/dev/net/tun` and binds it to the device named in the
//! calling thread's network namespace: an existing one (made with `ip tuntap add dev NAME
//! mode tun`, which lets a non-root owner use it) or, for root, a new one that lives as long
//! as this handle. Give the kernel's side an address and bring the link up with `ip`, as
//! for any interface; the address on our side is whatever the endpoint uses.
//!
//! Why `libc` and not a TUN crate: it takes three calls (`ioctl(TUNSETIFF)`, `ioctl(SIOCGIFMTU)`
//! and `poll`) and a 40-byte request struct; `libc` is already in every Rust build on Linux,
//! where a TUN crate would bring an async runtime or a platform layer we do not need. This
//! module holds the crate's only `unsafe` code besides one call in the checksum's AVX2 dispatch
//! (`src/wire/checksum.rs`), each block with its `SAFETY` argument.

#![allow(unsafe_code)]

use alloc::borrow::ToOwned;
use alloc::string::String;
use core::time::Duration;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::UdpSocket;
use std::os::fd::AsRawFd;

use super::PacketTransport;

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

/// A Linux TUN device carrying raw IP packets.
#[derive(Debug)]
pub struct TunDevice {
    file: File,
    name: String,
    mtu: usize,
}

impl TunDevice {
    /// Binds to the TUN device `name`, creating it if it does not exist (root only) —
    /// see the module docs. The MTU is read from the device.
    ///
    /// # Errors
    ///
    /// Opening `/dev/net/tun` (missing, or no permission), binding the name (a device of
    /// another kind, or busy), or reading the MTU.
    pub fn attach(name: &str) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(true).open("/dev/net/tun")?;
        let mut request = InterfaceRequest::new(name)?;
        let flags = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
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
        let mtu = interface_mtu(name)?;
        Ok(Self { file, name: name.to_owned(), mtu })
    }

    /// The device's name.
    pub fn name(&self) -> &str {
        &self.name
    }
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

impl PacketTransport for TunDevice {
    fn send(&mut self, packet: &[u8]) -> io::Result<()> {
        // One write is one packet on a TUN descriptor.
        self.file.write(packet).map(|_| ())
    }

    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<Option<usize>> {
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
            if ready == 0 {
                return Ok(None);
            }
            break;
        }
        match self.file.read(buf) {
            Ok(len) => Ok(Some(len)),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(error) => Err(error),
        }
    }

    fn mtu(&self) -> usize {
        self.mtu
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_interface_names_are_refused_before_any_system_call() {
        for name in ["", "a-name-far-too-long", "nul\0inside"] {
            let error = InterfaceRequest::new(name).err().expect("refused");
            assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{name:?}");
        }
        assert!(InterfaceRequest::new("tun0").is_ok());
    }
}
