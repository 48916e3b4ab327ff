//! An async TCP stack for tokio (feature `tokio`): a [`Stack`] over a packet [`Device`], with
//! [`TcpListener`] and [`TcpStream`] in tokio's own names and semantics.
//!
//! ```text
//!   TcpStream / TcpListener ──(one lock)──▶ Inner { Driver<QueueTransport>, wakers }
//!                                                   ▲            │ IP packets
//!   StackDriver (a future the user spawns) ─────────┘            ▼
//!        device.poll_recv ──▶ Driver::inject      Driver::flush ──▶ device.poll_send
//! ```
//!
//! **One lock, no second copy.** The shared state is one `Mutex<Inner>` holding the blocking
//! [`Driver`] of `adapter::driver` (which validates IP headers, feeds segments and ICMP errors
//! to the [`Endpoint`] and wraps transmits in IP headers: that code is reused,
//! not repeated) and a waker registry per connection and per listener. Reads and writes call
//! the endpoint's `recv` / `send` under the lock, copying straight between the caller's slice
//! and the connection's buffers; a full send buffer makes `poll_write` return `Pending` until
//! the endpoint reports room (real backpressure). The lock is never held across an await or a
//! device call.
//!
//! **The driver future** ([`StackDriver`]) moves packets between the device and the
//! `Driver`: it receives a batch, injects each packet, runs due timers, flushes the
//! endpoint's output into a bounded queue, hands that to the device, drains the endpoint's
//! events to wake the tasks concerned (`Readable`/`PeerClosed` → readers, `Writable` →
//! writers, `Connected`/`Closed` → both, `Acceptable` → the listener) and sleeps until the
//! endpoint's next deadline, the device's readiness, or a user call that produced output.
//! When it stops — dropped, or a device error — every pending and later call on the stack's
//! sockets fails with `ConnectionAborted` (never hangs). It completes with `Ok(())` once no
//! handle to the stack is left and no connection is live.
//!
//! **Time.** The stack's clock is tokio's (`tokio::time::Instant` since the stack was made),
//! so under tokio's paused time the TCP timers run on virtual time and tests are
//! deterministic. The `Driver` also feeds the endpoint instants, from its own real clock
//! starting at zero; the endpoint never lets time go backwards (it takes the later of the
//! instants it is given), so the stack's clock starts 2^40 µs (12.7 days) ahead and always is
//! the later one. Letting the caller set the `Driver`'s clock would make the offset
//! unnecessary.
//!
//! **Bounded memory.** Each direction has a queue of [`StackConfig::queue_packets`] packets:
//! the device side stops reading when the inbound batch is full, and the endpoint's output is
//! flushed only while the outbound queue is less than half full. One flush is never cut short
//! (a packet refused after the endpoint counted it sent would be lost for a retransmission
//! timeout), so the outbound queue may pass its bound by one flush's output: at most what the
//! connections may have in flight, which their send buffers and the endpoint's limits bound.
//!
//! **Catch-all and deferred accept.** [`TcpListener::bind_any`] is the endpoint's catch-all
//! listener (`0.0.0.0:0`, `[::]:0`); while one is open the `Driver` takes in packets for any
//! destination, so a TUN device's intercepted connections are caught with their original
//! destination as `local_addr`; the connections so caught keep receiving after the last
//! catch-all listener is dropped, until each has ended. A deferred listener's SYNs wait in
//! the endpoint (bounded by its backlog) and come out of [`TcpListener::incoming`] as
//! [`Incoming`]s to accept, refuse or ignore; the stack keeps only their ids, in arrival
//! order.
//!
//! **Packets that are not TCP** (other protocols, ICMP that is no error about a TCP segment,
//! fragments) are kept by the `Driver` in a bounded queue ([`StackConfig::other_packets`],
//! overflow counted) for [`Stack::recv_packet`]; [`Stack::send_packet`] puts any IP packet
//! among the stack's output. ICMP errors about TCP segments still go to the endpoint.
//!
//! **Devices.** [`IoDevice`] over any `AsyncRead + AsyncWrite`, an in-memory [`channel`],
//! and (features `tun`, Linux) `TunDevice`: the adapter's TUN device waited on with tokio's
//! `AsyncFd` (its module says why not `tun-rs`).
//!
//! **Offloads.** A device that declares them ([`Device::offloads`], the adapter's
//! `Offloads`) is handed TCP super-segments of up to 64 KiB (the endpoint's
//! `poll_transmit_gso`, through the `Driver`'s `send_segment` path) with their checksum left
//! to finish, and may hand up coalesced super-segments and checksums it verified or left
//! unfinished; each packet's [`PacketMeta`] says which. The endpoint's checksum settings
//! follow (`Driver::with_config`). Without them, as for [`IoDevice`] and [`channel`], every
//! packet is plain and complete. Received packets are handed to the endpoint a batch at a
//! time and answered once per batch.

mod device;
mod listener;
mod stream;
#[cfg(all(feature = "tun", target_os = "linux"))]
mod tun;

pub use device::{ChannelDevice, Device, IoDevice, PacketBatch, PacketMeta, channel};
pub use listener::{Incoming, TcpListener};
pub use stream::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, TcpStream, WriteHalf};
#[cfg(all(feature = "tun", target_os = "linux"))]
pub use tun::TunDevice;

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::future::Future;
use core::net::{IpAddr, SocketAddr};
use core::pin::Pin;
use core::sync::atomic::{AtomicUsize, Ordering};
use core::task::{Context, Poll, Waker};
use core::time::Duration;
use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::adapter::driver::Driver;
use crate::adapter::{Offloads, OutSegment, PacketTransport, RxChecksumState, RxMeta};
use crate::endpoint::{
    ConnectionHandle, Endpoint, EndpointConfig, EndpointError, EndpointEvent, IncomingId,
};
use crate::event::{CallError, CloseReason, ConnectionError, Event};
use crate::time::Instant;
use crate::wire::checksum::TxChecksum;

/// Settings of a [`Stack`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct StackConfig {
    /// The endpoint's settings and limits (connections, buffers, TIME-WAIT records).
    pub endpoint: EndpointConfig,
    /// The stack's own IP addresses: packets for others are dropped, and a connection opened
    /// to a remote address starts from the first address of the same family.
    pub addresses: Vec<IpAddr>,
    /// Packets queued at most in each direction between the device and the endpoint.
    pub queue_packets: usize,
    /// The largest IP packet the device carries.
    pub mtu: usize,
    /// Received packets that are not for TCP (other protocols, ICMP that is no error about
    /// a TCP segment, fragments) kept for [`Stack::recv_packet`] at most; more are dropped
    /// and counted in `DriverCounters::other_packets_dropped`. 0 drops them all (counted by
    /// reason).
    pub other_packets: usize,
}

impl StackConfig {
    /// A stack owning `address`, with 1 024 packets of queue each way, a 1 500-octet MTU and
    /// room for 256 packets that are not TCP.
    pub fn new(endpoint: EndpointConfig, address: IpAddr) -> Self {
        Self {
            endpoint,
            addresses: alloc::vec![address],
            queue_packets: 1024,
            mtu: 1500,
            other_packets: 256,
        }
    }
}

/// The transport the `Driver` sees: outgoing packets go into a queue the [`StackDriver`]
/// takes to the device; incoming ones are handed in with `Driver::inject`, so `recv` never
/// has any.
struct QueueTransport {
    /// `Driver` lends its transport out only by shared reference; the queue is behind a
    /// `RefCell` so the stack's driver can take the packets out (always under the one lock).
    outbound: RefCell<PacketBatch>,
    mtu: usize,
    /// The device's offloads: the `Driver` hands super-segments and partial checksums to
    /// [`send_segment`](PacketTransport::send_segment) only when they say so.
    offloads: Offloads,
}

impl PacketTransport for QueueTransport {
    fn send(&mut self, packet: &[u8]) -> io::Result<()> {
        // Never refused: a flush is bounded by what the connections may have in flight (module
        // docs, Bounded memory), and a packet refused here would be lost after the endpoint
        // counted it sent.
        let outbound = self.outbound.get_mut();
        let mut buffer = outbound.buffer();
        buffer.extend_from_slice(packet);
        outbound.push(buffer);
        Ok(())
    }

    fn recv(&mut self, _buf: &mut [u8], _timeout: Duration) -> io::Result<Option<usize>> {
        Ok(None)
    }

    fn mtu(&self) -> usize {
        self.mtu
    }

    fn offloads(&self) -> Offloads {
        self.offloads
    }

    fn send_segment(&mut self, segment: &OutSegment<'_>, _scratch: &mut Vec<u8>) -> io::Result<()> {
        // Gathered into one packet buffer (the device's writes take one buffer per packet);
        // what the device must still do goes beside it. Never refused, as for `send`.
        let outbound = self.outbound.get_mut();
        let mut buffer = outbound.buffer();
        buffer.extend_from_slice(segment.headers);
        for slice in segment.payload {
            buffer.extend_from_slice(slice);
        }
        let checksum = match segment.checksum {
            TxChecksum::PseudoHeader => RxChecksumState::Partial {
                start: u16::try_from(segment.ip_header_len).unwrap_or(u16::MAX),
                offset: TCP_CHECKSUM_OFFSET,
            },
            // `Compute`: complete. (`None` never comes: the stack asks the endpoint for
            // `Compute` when the device offers `None`.)
            TxChecksum::Compute | TxChecksum::None => RxChecksumState::Unknown,
        };
        let gso_size =
            segment.is_super().then(|| u16::try_from(segment.segment_size).unwrap_or(u16::MAX));
        outbound.push_with(buffer, PacketMeta { checksum, gso_size });
        Ok(())
    }
}

/// Where the checksum field lies in a TCP header.
const TCP_CHECKSUM_OFFSET: u16 = 16;

/// The offloads the stack uses of what `device` declares: a checksum the device would compute
/// from nothing (`TxChecksum::None`) is computed by the endpoint instead, since the stack's
/// packets say only whether the field is complete or holds the pseudo-header's sum; batching
/// means nothing here.
fn usable_offloads(declared: Offloads) -> Offloads {
    let mut offloads = declared;
    if offloads.tx_checksum == TxChecksum::None {
        offloads.tx_checksum = TxChecksum::Compute;
    }
    offloads.batching = false;
    offloads
}

/// The tasks waiting for one thing (a direction of a connection, a listener's next
/// connection). Usually one, but `readable()`, `writable()`, `peek()` or `accept()` may be
/// awaited from several tasks at once, and each must be woken; a task is listed once however
/// often it registers.
#[derive(Debug, Default)]
struct Waiters(Vec<Waker>);

impl Waiters {
    fn register(&mut self, waker: &Waker) {
        if !self.0.iter().any(|listed| listed.will_wake(waker)) {
            self.0.push(waker.clone());
        }
    }

    /// Moves every waiter to `into`, to be woken once the lock is released.
    fn take_into(&mut self, into: &mut Vec<Waker>) {
        into.append(&mut self.0);
    }
}

/// What the stack knows of one connection its user holds a stream for.
#[derive(Debug, Default)]
struct ConnState {
    reader: Waiters,
    writer: Waiters,
    /// A writer waits in `writable()` without a refused send behind it (the endpoint reports
    /// `Writable` only after one), so the driver checks the send buffer for it.
    wants_room: bool,
    /// How the connection ended, kept for when the endpoint has freed it.
    closed: Option<CloseReason>,
    /// Octets `peek` took out of the connection and `read` has not returned yet.
    peeked: Vec<u8>,
    nodelay: bool,
}

/// The state every handle of a stack shares, behind its one lock.
struct Inner {
    driver: Driver<QueueTransport>,
    epoch: tokio::time::Instant,
    addresses: Vec<IpAddr>,
    connections: HashMap<ConnectionHandle, ConnState>,
    listeners: HashMap<SocketAddr, Waiters>,
    /// SYNs recorded by each deferred listener, in arrival order, not yet taken by
    /// `TcpListener::incoming` (at most its backlog live ones; expired ones are removed).
    incoming: HashMap<SocketAddr, VecDeque<IncomingId>>,
    /// Catch-all listeners open: while there is one, packets for any address are taken in.
    catch_all: usize,
    /// Established connections answering from an address the stack does not own (caught by
    /// a catch-all listener). While any is live, packets for any address are still taken in
    /// after the last catch-all listener is gone: they must still finish (data, FIN, ACKs),
    /// which a proxy stopping (its listener dropped first) relies on.
    caught: HashSet<ConnectionHandle>,
    /// Tasks waiting in [`Stack::recv_packet`].
    packet_waiters: Waiters,
    /// [`StackConfig::queue_packets`]: packets [`Stack::send_packet`] may queue at once.
    queue_packets: usize,
    mtu: usize,
    driver_waker: Option<Waker>,
    /// Why the driver stopped, once it has.
    stopped: Option<String>,
    /// Connections whose `ConnState::wants_room` is set (each at most once).
    wants_room: Vec<ConnectionHandle>,
    /// New connections' `Config::nodelay`, for [`TcpStream::nodelay`].
    default_nodelay: bool,
    /// `events_dropped` as last seen: if it moved, events (and wakeups) were lost and every
    /// waiter is woken to look for itself.
    events_dropped_seen: u64,
}

impl Inner {
    /// The stack's clock as the core's instant.
    fn now(&self) -> Instant {
        let micros = u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX);
        Instant::from_micros(CLOCK_OFFSET_MICROS.saturating_add(micros))
    }

    const fn endpoint(&self) -> &Endpoint {
        self.driver.endpoint()
    }

    const fn endpoint_mut(&mut self) -> &mut Endpoint {
        self.driver.endpoint_mut()
    }

    /// Fails once the driver has stopped.
    fn check_running(&self) -> io::Result<()> {
        match &self.stopped {
            None => Ok(()),
            Some(why) => Err(stopped_error(why)),
        }
    }

    /// Wakes the driver: a user call left output to send.
    fn kick(&mut self) {
        if let Some(waker) = self.driver_waker.take() {
            waker.wake();
        }
    }

    /// The first of our addresses in `remote`'s family.
    fn source_for(&self, remote: SocketAddr) -> Option<IpAddr> {
        self.addresses.iter().copied().find(|ip| ip.is_ipv4() == remote.is_ipv4())
    }

    /// Takes the endpoint's events and collects the wakers of the tasks they concern.
    fn drain_events(&mut self, wakers: &mut Vec<Waker>) {
        // Drained through the driver, which logs connections' ends (feature `tracing`).
        while let Some(event) = self.driver.poll_event() {
            match event {
                EndpointEvent::Connection(handle, event) => {
                    match event {
                        Event::Connected => self.note_if_caught(handle),
                        Event::Closed(_) if self.caught.remove(&handle) => {
                            self.settle_any_destination();
                        }
                        _ => {}
                    }
                    let Some(state) = self.connections.get_mut(&handle) else { continue };
                    let (reader, writer) = match event {
                        Event::Readable | Event::PeerClosed => (true, false),
                        Event::Writable => (false, true),
                        Event::Connected => (true, true),
                        Event::Closed(reason) => {
                            state.closed = Some(reason);
                            (true, true)
                        }
                        _ => (false, false),
                    };
                    if reader {
                        state.reader.take_into(wakers);
                    }
                    if writer {
                        state.wants_room = false;
                        state.writer.take_into(wakers);
                    }
                }
                EndpointEvent::Acceptable { listener } => {
                    if let Some(waiters) = self.listeners.get_mut(&listener) {
                        waiters.take_into(wakers);
                    }
                }
                EndpointEvent::Incoming { listener, id } => {
                    if let Some(queue) = self.incoming.get_mut(&listener) {
                        queue.push_back(id);
                        if let Some(waiters) = self.listeners.get_mut(&listener) {
                            waiters.take_into(wakers);
                        }
                    }
                }
                EndpointEvent::IncomingExpired { listener, id } => {
                    if let Some(queue) = self.incoming.get_mut(&listener) {
                        queue.retain(|queued| *queued != id);
                    }
                }
            }
        }
    }

    /// Records `handle`, just established, if it answers from an address that is not ours.
    fn note_if_caught(&mut self, handle: ConnectionHandle) {
        let Ok(connection) = self.driver.endpoint_mut().connection_mut(handle) else { return };
        let local = connection.local().ip();
        if !self.addresses.contains(&local) {
            self.caught.insert(handle);
        }
    }

    /// Takes packets for any destination while a catch-all listener is open or a caught
    /// connection is live; once neither, only for our addresses. Caught connections the
    /// endpoint no longer has are forgotten first (their `Closed` may have been lost with a
    /// full event queue), which visits them only while no catch-all listener is open.
    fn settle_any_destination(&mut self) {
        if self.catch_all > 0 {
            return;
        }
        let endpoint = self.driver.endpoint();
        self.caught.retain(|handle| endpoint.status(*handle).is_ok());
        self.driver.set_any_destination(!self.caught.is_empty());
    }

    /// Every waiting task, to be woken (the driver stopped, or events were lost).
    fn take_all_wakers(&mut self, into: &mut Vec<Waker>) {
        for state in self.connections.values_mut() {
            state.reader.take_into(into);
            state.writer.take_into(into);
        }
        for waiters in self.listeners.values_mut() {
            waiters.take_into(into);
        }
        self.packet_waiters.take_into(into);
    }
}

/// The lock and the count of user handles.
struct Shared {
    inner: Mutex<Inner>,
    /// Live [`Stack`] handles (streams and listeners each hold one).
    handles: AtomicUsize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A handle to an async TCP stack: cheap to clone, `Send + Sync + 'static`. Sockets are made
/// from it ([`TcpStream::connect`], [`TcpListener::bind`]); its [`StackDriver`] must be
/// spawned for anything to move.
pub struct Stack {
    shared: Arc<Shared>,
}

impl core::fmt::Debug for Stack {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Stack").finish_non_exhaustive()
    }
}

impl Clone for Stack {
    fn clone(&self) -> Self {
        self.shared.handles.fetch_add(1, Ordering::Relaxed);
        Self { shared: Arc::clone(&self.shared) }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // The count drops before the driver is woken, so it sees the last handle gone.
        self.shared.handles.fetch_sub(1, Ordering::AcqRel);
        self.shared.lock().kick();
    }
}

impl Stack {
    /// A stack for `config` over `device`, and the future that drives it. Spawn the driver
    /// (`tokio::spawn(driver)`): until it runs, nothing is sent or received. The stack may be
    /// made anywhere; the driver must be polled within a tokio runtime with the time driver
    /// enabled.
    pub fn new<D: Device>(config: StackConfig, device: D) -> (Self, StackDriver) {
        let epoch = tokio::time::Instant::now();
        let default_nodelay = config.endpoint.connection.nodelay;
        let queue = config.queue_packets.max(2);
        let offloads = usable_offloads(device.offloads());
        // Octets queued each way at most: what `queue` plain packets take (super-segments
        // are up to 64 KiB each, and the packet count alone would let 64 MiB build up).
        let max_octets = queue.saturating_mul(config.mtu.max(1_500));
        let batch = || {
            let mut batch = PacketBatch::with_capacity(queue);
            batch.set_max_octets(max_octets);
            batch
        };
        let transport =
            QueueTransport { outbound: RefCell::new(batch()), mtu: config.mtu, offloads };
        let mut driver = if offloads == usable_offloads(Offloads::NONE) {
            Driver::new(Endpoint::new(config.endpoint), transport)
        } else {
            // The endpoint's checksums as the device does them (`Config::checksum` set to
            // match): left for the device to finish, not verified again where it vouches.
            Driver::with_config(config.endpoint, transport)
        };
        for address in &config.addresses {
            driver.add_address(*address);
        }
        driver.keep_other_packets(config.other_packets);
        let inner = Inner {
            driver,
            epoch,
            addresses: config.addresses,
            connections: HashMap::new(),
            listeners: HashMap::new(),
            incoming: HashMap::new(),
            catch_all: 0,
            caught: HashSet::new(),
            packet_waiters: Waiters::default(),
            queue_packets: queue,
            mtu: config.mtu,
            driver_waker: None,
            stopped: None,
            wants_room: Vec::new(),
            default_nodelay,
            events_dropped_seen: 0,
        };
        let shared = Arc::new(Shared { inner: Mutex::new(inner), handles: AtomicUsize::new(1) });
        let stack_driver = StackDriver {
            shared: Arc::clone(&shared),
            device: alloc::boxed::Box::new(device),
            rx: batch(),
            tx: batch(),
            sleep: None,
            wakers: Vec::new(),
            epoch,
            finished: false,
        };
        (Self { shared }, stack_driver)
    }

    /// Runs `f` on the endpoint under the stack's lock: for counters, status and settings
    /// this API does not cover. Output it causes is sent on the driver's next turn. `f` must
    /// not use the stack's handles (the lock is not reentrant).
    pub fn with_endpoint<R>(&self, f: impl FnOnce(&mut Endpoint) -> R) -> R {
        let mut inner = self.shared.lock();
        let result = f(inner.endpoint_mut());
        inner.kick();
        result
    }

    /// Waits for the next received IP packet that is not for TCP (another protocol, an ICMP
    /// message that is no error about one of the stack's TCP segments, a fragment): the
    /// whole packet as the device delivered it. They are kept in arrival order, at most
    /// [`StackConfig::other_packets`] (the overflow is dropped and counted in
    /// `DriverCounters::other_packets_dropped`), whatever their destination address.
    ///
    /// Cancel safe: a packet is taken only by the poll that returns it.
    ///
    /// # Errors
    ///
    /// `ConnectionAborted` once the driver stopped.
    pub async fn recv_packet(&self) -> io::Result<Vec<u8>> {
        core::future::poll_fn(|cx| self.poll_recv_packet(cx)).await
    }

    /// Polls for the next packet of [`recv_packet`](Self::recv_packet); with none, registers
    /// the task to be woken when one arrives.
    ///
    /// # Errors
    ///
    /// As [`recv_packet`](Self::recv_packet).
    pub fn poll_recv_packet(&self, cx: &mut Context<'_>) -> Poll<io::Result<Vec<u8>>> {
        let mut inner = self.lock();
        if let Some(packet) = inner.driver.take_other_packet() {
            return Poll::Ready(Ok(packet));
        }
        if let Some(why) = &inner.stopped {
            return Poll::Ready(Err(stopped_error(why)));
        }
        inner.packet_waiters.register(cx.waker());
        Poll::Pending
    }

    /// Queues an IP packet (any protocol, any addresses: the caller builds it whole) for the
    /// device, among the stack's own output, and wakes the driver to send it.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a packet longer than [`StackConfig::mtu`] or not starting with an
    /// IPv4 or IPv6 version nibble; `WouldBlock` when [`StackConfig::queue_packets`] packets
    /// wait already (try again once the driver ran); `ConnectionAborted` once the driver
    /// stopped.
    pub fn send_packet(&self, packet: &[u8]) -> io::Result<()> {
        let mut inner = self.lock();
        inner.check_running()?;
        if packet.len() > inner.mtu || !matches!(packet.first().map(|b| b >> 4), Some(4 | 6)) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not an IP packet within the MTU",
            ));
        }
        {
            let mut outbound = inner.driver.transport().outbound.borrow_mut();
            if outbound.len() >= inner.queue_packets {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let mut buffer = outbound.buffer();
            buffer.extend_from_slice(packet);
            outbound.push(buffer);
        }
        inner.kick();
        Ok(())
    }

    /// Prints every packet in and out on stderr, tcpdump style (the `Driver`'s trace).
    pub fn set_trace(&self, trace: bool) {
        self.lock().driver.set_trace(trace);
    }

    /// The IP-layer counters of the stack's driver (packets in and out, drops by reason).
    pub fn driver_counters(&self) -> crate::adapter::driver::DriverCounters {
        *self.shared.lock().driver.counters()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.shared.lock()
    }
}

/// The future that runs a [`Stack`]: spawn it. See the module docs for what it does each
/// turn.
///
/// It completes with `Ok(())` once every handle to the stack (the [`Stack`] and its clones,
/// streams, listeners) is dropped and no connection is left but TIME-WAIT records, and with
/// the device's error if the device fails. Dropping it stops the stack: pending and later
/// calls on its sockets fail with `ConnectionAborted`.
pub struct StackDriver {
    shared: Arc<Shared>,
    device: alloc::boxed::Box<dyn Device>,
    /// Packets received, not yet injected.
    rx: PacketBatch,
    /// Packets the endpoint emitted, not yet taken by the device.
    tx: PacketBatch,
    /// The timer for the endpoint's next deadline, made at the first one (inside the runtime:
    /// the stack itself may be made outside one).
    sleep: Option<Pin<alloc::boxed::Box<tokio::time::Sleep>>>,
    /// Wakers collected under the lock, woken after it (kept to reuse the allocation).
    wakers: Vec<Waker>,
    /// The stack's clock's origin (as `Inner::epoch`), to turn deadlines into sleeps.
    epoch: tokio::time::Instant,
    finished: bool,
}

impl core::fmt::Debug for StackDriver {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("StackDriver")
            .field("rx", &self.rx.len())
            .field("tx", &self.tx.len())
            .finish_non_exhaustive()
    }
}

/// Where the stack's clock starts, in the core's microseconds (2^40 µs, about 12.7 days): far
/// enough ahead of the `Driver`'s own clock, which starts at zero, that the endpoint — which
/// takes the later of the instants it is given — always runs on the stack's clock (module
/// docs, Time).
const CLOCK_OFFSET_MICROS: u64 = 1 << 40;

/// Packets fed between two drains of the endpoint's events.
const EVENTS_EVERY: usize = 64;

/// Turns of the driver loop per poll before it yields to other tasks.
const TURNS_PER_POLL: usize = 32;

/// What one turn under the lock found.
struct Turn {
    deadline: Option<Instant>,
    /// Output was held back because the outbound queue was half full.
    flush_held: bool,
    /// No handle left and no live connection: the driver is done.
    done: bool,
}

impl StackDriver {
    /// Stops the stack: records why and wakes every waiter to see it.
    fn stop(&mut self, why: &str) {
        let mut wakers = core::mem::take(&mut self.wakers);
        {
            let mut inner = self.shared.lock();
            if inner.stopped.is_none() {
                #[cfg(feature = "tracing")]
                tracing::warn!(target: "tcp_proto::stack", why, "stack stopped");
                inner.stopped = Some(why.to_string());
            }
            inner.take_all_wakers(&mut wakers);
        }
        for waker in wakers.drain(..) {
            waker.wake();
        }
        self.wakers = wakers;
        self.finished = true;
    }

    fn fail(&mut self, error: io::Error) -> Poll<io::Result<()>> {
        self.stop(&alloc::format!("device error: {error}"));
        Poll::Ready(Err(error))
    }

    /// Feeds what was received, runs timers, flushes output and collects the wakers of the
    /// events that came out, all under the lock.
    fn turn(&mut self, waker: &Waker) -> Turn {
        let mut inner = self.shared.lock();
        if !inner.driver_waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
            inner.driver_waker = Some(waker.clone());
        }
        let now = inner.now();
        // Our clock first: the endpoint keeps the later of its instants (module docs, Time).
        inner.endpoint_mut().handle_timeout(now);
        let mut fed = 0;
        while let Some((mut packet, meta)) = self.rx.take_front_with_meta() {
            let meta =
                RxMeta { checksum: meta.checksum, tcp_gso_size: meta.gso_size, datagram_size: 0 };
            // Only a capture file can fail here, and the stack has none. Nothing is sent
            // until the whole batch is in (the flush below): the endpoint answers the batch.
            let _ = inner.driver.receive_packet(&mut packet, meta);
            self.rx.recycle(packet);
            fed += 1;
            if fed % EVENTS_EVERY == 0 {
                // Drained as they come, so a large batch cannot fill the endpoint's bounded
                // event queue (events dropped there are wakeups lost).
                inner.drain_events(&mut self.wakers);
            }
        }
        inner.endpoint_mut().handle_timeout(now);
        if inner.driver.other_packets() > 0 {
            inner.packet_waiters.take_into(&mut self.wakers);
        }
        let flush_held =
            self.tx.len() >= self.tx.capacity() / 2 || self.tx.octets() >= self.tx.max_octets() / 2;
        if !flush_held {
            let _ = inner.driver.flush();
            self.tx.append(&mut inner.driver.transport().outbound.borrow_mut());
        }
        let inner = &mut *inner;
        inner.drain_events(&mut self.wakers);
        // Writers waiting in `writable()`: is there room now? (Only they are visited, not
        // every connection.)
        let endpoint = inner.driver.endpoint();
        let connections = &mut inner.connections;
        inner.wants_room.retain(|handle| {
            let Some(state) = connections.get_mut(handle) else { return false };
            if !state.wants_room {
                return false;
            }
            let room = endpoint.status(*handle).is_ok_and(|s| s.send_queued < s.send_buffer);
            if room {
                state.wants_room = false;
                state.writer.take_into(&mut self.wakers);
            }
            !room
        });
        let dropped = inner.driver.endpoint().counters().events_dropped;
        if dropped != inner.events_dropped_seen {
            inner.events_dropped_seen = dropped;
            inner.take_all_wakers(&mut self.wakers);
            // A lost `Closed` would keep a caught connection listed.
            inner.settle_any_destination();
        }
        let done = self.shared.handles.load(Ordering::Acquire) == 0
            && inner.endpoint().connection_count() == 0;
        let deadline = inner.endpoint().poll_timeout();
        inner.driver.trace_round(now);
        Turn { deadline, flush_held, done }
    }
}

impl Future for StackDriver {
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.finished {
            return Poll::Ready(Ok(()));
        }
        for _ in 0..TURNS_PER_POLL {
            // The endpoint's turn first: a driver with nothing left to do finishes before it
            // touches the device again (whose other end may be gone by then).
            let turn = this.turn(cx.waker());
            for waker in this.wakers.drain(..) {
                waker.wake();
            }
            if turn.done && this.tx.is_empty() {
                this.finished = true;
                return Poll::Ready(Ok(()));
            }
            let mut sent_all = this.tx.is_empty();
            if !sent_all {
                match this.device.poll_send(cx, &mut this.tx) {
                    Poll::Ready(Ok(())) => sent_all = true,
                    Poll::Ready(Err(error)) => return this.fail(error),
                    Poll::Pending => {}
                }
            }
            let mut received = false;
            while this.rx.room() > 0 {
                match this.device.poll_recv(cx, &mut this.rx) {
                    Poll::Ready(Ok(())) => received = true,
                    Poll::Ready(Err(error)) => return this.fail(error),
                    Poll::Pending => break,
                }
            }
            let mut timer_due = false;
            if let Some(deadline) = turn.deadline {
                let since_epoch = deadline.as_micros().saturating_sub(CLOCK_OFFSET_MICROS);
                let at = this.epoch + Duration::from_micros(since_epoch);
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| alloc::boxed::Box::pin(tokio::time::sleep_until(at)));
                if sleep.deadline() != at {
                    sleep.as_mut().reset(at);
                }
                timer_due = sleep.as_mut().poll(cx).is_ready();
            }
            if !(received || timer_due || (turn.flush_held && sent_all) || (turn.done && sent_all))
            {
                return Poll::Pending;
            }
        }
        // Busy: let other tasks run, then carry on.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl Drop for StackDriver {
    fn drop(&mut self) {
        if !self.finished {
            self.stop("the stack's driver was dropped");
        }
    }
}

/// The error of every call once the driver stopped.
fn stopped_error(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, alloc::format!("stack stopped: {why}"))
}

/// The `io::Error` for how a connection ended abnormally.
fn connection_error(error: ConnectionError) -> io::Error {
    let kind = match error {
        ConnectionError::Reset => io::ErrorKind::ConnectionReset,
        ConnectionError::Refused => io::ErrorKind::ConnectionRefused,
        ConnectionError::TimedOut => io::ErrorKind::TimedOut,
        ConnectionError::Aborted => io::ErrorKind::ConnectionAborted,
        ConnectionError::Unreachable => io::ErrorKind::HostUnreachable,
    };
    io::Error::new(kind, error)
}

/// The `io::Error` for an endpoint call that failed on a connection whose end is recorded in
/// `closed` (if the endpoint already freed it). `writing`: a call that sends, for which an
/// orderly end or our own shutdown is `BrokenPipe`.
fn call_error(error: EndpointError, closed: Option<CloseReason>, writing: bool) -> io::Error {
    match error {
        EndpointError::Call(CallError::Ended(error)) => connection_error(error),
        EndpointError::StaleHandle | EndpointError::Call(CallError::NotOpen) => match closed {
            Some(CloseReason::Error(error)) => connection_error(error),
            _ if writing => io::ErrorKind::BrokenPipe.into(),
            _ => io::ErrorKind::NotConnected.into(),
        },
        EndpointError::Call(CallError::Closing) if writing => io::ErrorKind::BrokenPipe.into(),
        EndpointError::Call(CallError::NoRemote) => io::ErrorKind::NotConnected.into(),
        EndpointError::Call(CallError::InvalidRemote) => {
            io::Error::new(io::ErrorKind::InvalidInput, error)
        }
        EndpointError::TooManyConnections | EndpointError::PortsExhausted => {
            io::Error::new(io::ErrorKind::AddrNotAvailable, error)
        }
        EndpointError::AddressInUse => io::ErrorKind::AddrInUse.into(),
        _ => io::Error::other(error),
    }
}
