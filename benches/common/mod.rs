//! What the side-by-side benches share: an in-memory wire of whole IPv4 packets with
//! recycled buffers (neither stack pays an allocation per packet for the harness), smoltcp's
//! device on it, thread CPU time, medians, and the `RESULT` line format.

#![allow(dead_code, unsafe_code, unreachable_pub, missing_docs)]

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use std::net::{IpAddr, Ipv4Addr};

use smoltcp::iface::{Config as IfaceConfig, Interface};
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant as SmolInstant;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};
use tcp_proto::wire::ip::{Ipv4Header, PROTOCOL_TCP};
use tcp_proto::{Endpoint, Instant, Transmit};

/// Spare packet buffers, shared by both directions of a wire.
pub type Pool = Rc<RefCell<Vec<Vec<u8>>>>;

pub fn pool() -> Pool {
    Rc::new(RefCell::new(Vec::new()))
}

/// A buffer of at least `len` octets from the pool. Buffers keep their size when they come
/// back, so after the first few packets neither stack pays for zeroing one.
pub fn take(pool: &Pool, len: usize) -> Vec<u8> {
    let mut buf = pool.borrow_mut().pop().unwrap_or_default();
    if buf.len() < len {
        buf.resize(len, 0);
    }
    buf
}

pub fn give_back(pool: &Pool, buf: Vec<u8>) {
    pool.borrow_mut().push(buf);
}

/// A packet on the wire: a pooled buffer and how many of its octets are the packet.
pub struct Packet {
    buf: Vec<u8>,
    len: usize,
}

impl Packet {
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// One direction of the wire.
pub type Queue = VecDeque<Packet>;

/// smoltcp's interface device: packets in, packets out, buffers from the pool.
pub struct SmolDevice {
    pub rx: Queue,
    pub tx: Queue,
    pub pool: Pool,
    pub mtu: usize,
}

pub struct Rx {
    packet: Packet,
    pool: Pool,
}

pub struct Tx<'a> {
    queue: &'a mut Queue,
    pool: Pool,
}

impl phy::RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let result = f(self.packet.bytes());
        give_back(&self.pool, self.packet.buf);
        result
    }
}

impl phy::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = take(&self.pool, len);
        let result = f(&mut buf[..len]);
        self.queue.push_back(Packet { buf, len });
        result
    }
}

impl Device for SmolDevice {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _: SmolInstant) -> Option<(Rx, Tx<'_>)> {
        let packet = self.rx.pop_front()?;
        let pool = Rc::clone(&self.pool);
        Some((Rx { packet, pool: Rc::clone(&pool) }, Tx { queue: &mut self.tx, pool }))
    }

    fn transmit(&mut self, _: SmolInstant) -> Option<Tx<'_>> {
        Some(Tx { queue: &mut self.tx, pool: Rc::clone(&self.pool) })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = self.mtu;
        caps
    }
}

/// Payload octets of the IPv4/TCP packet `packet` (0 if it is not one).
pub fn tcp_payload_len(packet: &[u8]) -> usize {
    let ihl = usize::from(packet.first().map_or(0, |b| b & 0x0f)) * 4;
    let data_offset = usize::from(packet.get(ihl + 12).map_or(0, |b| b >> 4)) * 4;
    packet.len().saturating_sub(ihl + data_offset)
}

/// CPU time this thread has used.
pub fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid clock id and a pointer to a timespec we own.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &raw mut ts) };
    assert_eq!(status, 0);
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 { values[mid] } else { (values[mid - 1] + values[mid]) / 2.0 }
}

/// `min..max` of `values`, for the spread.
pub fn spread(values: &[f64]) -> (f64, f64) {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (min, max)
}

/// The machine-readable line the issue asks for.
pub fn result(workload: &str, metric: &str, ours: f64, theirs: f64) {
    println!(
        "RESULT {workload} {metric} tcp-proto={ours:.3} smoltcp={theirs:.3} ratio={:.3}",
        ours / theirs
    );
}

/// Command-line options after `cargo bench --bench NAME --`: `--rounds N`, `--scale F`
/// (multiplies the work), `--only tcp-proto|smoltcp`, `--workload NAME`; anything else (cargo's own `--bench`)
/// is ignored.
pub struct Options {
    pub rounds: usize,
    pub scale: f64,
    pub only: Option<String>,
    pub workload: Option<String>,
}

impl Options {
    pub fn parse() -> Self {
        let mut options = Self { rounds: 5, scale: 1.0, only: None, workload: None };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--rounds" => {
                    options.rounds = args.next().and_then(|v| v.parse().ok()).unwrap_or(5)
                }
                "--scale" => {
                    options.scale = args.next().and_then(|v| v.parse().ok()).unwrap_or(1.0)
                }
                "--only" => options.only = args.next(),
                "--workload" => options.workload = args.next(),
                _ => {}
            }
        }
        options
    }

    pub fn runs(&self, stack: &str) -> bool {
        self.only.as_deref().is_none_or(|only| only == stack)
    }

    pub fn includes(&self, workload: &str) -> bool {
        self.workload.as_deref().is_none_or(|only| only == workload)
    }
}

/// Segments that crossed the wire.
#[derive(Default)]
pub struct Counts {
    /// Segments with payload.
    pub data: u64,
    /// All segments, either way (data and pure ACKs).
    pub all: u64,
}

/// The IPv4 header in front of a TCP segment of `tcp_len` octets that `transmit` describes
/// (its addresses, TTL and DS field; IPv4 only here).
#[inline]
pub fn ipv4_header(transmit: &Transmit, tcp_len: usize) -> Ipv4Header {
    let (IpAddr::V4(src), IpAddr::V4(dst)) = (transmit.local.ip(), transmit.remote.ip()) else {
        unreachable!("IPv4 only here")
    };
    Ipv4Header {
        src,
        dst,
        protocol: PROTOCOL_TCP,
        ttl: transmit.ttl,
        identification: 0,
        dont_fragment: true,
        more_fragments: false,
        fragment_offset: 0,
        total_len: (20 + tcp_len) as u16,
        dscp_ecn: transmit.ds_field,
    }
}

/// Moves every segment `from` wants to send into `to`, as IPv4 packets each stack-side builds
/// and parses (headers, checksums) as smoltcp's interface does. Returns whether any moved.
pub fn pump(
    now: Instant,
    from: &mut Endpoint,
    to: &mut Endpoint,
    queue: &mut Queue,
    pool: &Pool,
    mtu: usize,
    counts: &mut Counts,
) -> bool {
    loop {
        let mut packet = take(pool, mtu);
        let Ok(Some(tx)) = from.poll_transmit(now, &mut packet[20..mtu]) else {
            give_back(pool, packet);
            break;
        };
        ipv4_header(&tx, tx.len).emit(&mut packet).expect("room for the header");
        queue.push_back(Packet { buf: packet, len: 20 + tx.len });
    }
    let moved = !queue.is_empty();
    while let Some(packet) = queue.pop_front() {
        counts.all += 1;
        counts.data += u64::from(tcp_payload_len(packet.bytes()) > 0);
        let (ip, tcp) = Ipv4Header::parse(packet.bytes()).expect("valid IPv4");
        to.handle_segment(now, ip.src.into(), ip.dst.into(), tcp);
        give_back(pool, packet.buf);
    }
    moved
}

/// Moves smoltcp's packets both ways between two devices. Returns whether any moved.
pub fn exchange(a: &mut SmolDevice, b: &mut SmolDevice, counts: &mut Counts) -> bool {
    let moved = !a.tx.is_empty() || !b.tx.is_empty();
    for packet in a.tx.drain(..) {
        counts.all += 1;
        counts.data += u64::from(tcp_payload_len(packet.bytes()) > 0);
        b.rx.push_back(packet);
    }
    for packet in b.tx.drain(..) {
        counts.all += 1;
        counts.data += u64::from(tcp_payload_len(packet.bytes()) > 0);
        a.rx.push_back(packet);
    }
    moved
}

/// A smoltcp interface on `device` with address `ip`/24.
pub fn smol_iface(device: &mut SmolDevice, ip: Ipv4Addr) -> Interface {
    let mut iface =
        Interface::new(IfaceConfig::new(HardwareAddress::Ip), device, SmolInstant::from_micros(0));
    iface.update_ip_addrs(|addrs| {
        addrs.push(IpCidr::new(IpAddress::Ipv4(ip), 24)).unwrap();
    });
    iface
}
