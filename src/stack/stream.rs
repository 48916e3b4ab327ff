//! [`TcpStream`] and its halves: one connection of a [`Stack`], read and written through the
//! endpoint's own buffers under the stack's lock.
//!
//! Semantics, as tokio's `TcpStream` on Linux:
//! - `poll_write` queues what fits in the send buffer and returns how much; with no room it
//!   returns `Pending` and is woken when acknowledgments free some (backpressure).
//! - `poll_shutdown` queues our FIN after all data already written and completes at once; the
//!   stack sends the FIN when the data before it is out. Reading goes on (half-close).
//! - A read at the peer's FIN (everything before it read) returns `Ok(0)`.
//! - Dropping the stream (both halves, for a split one) closes it: with unread data, or with
//!   [`TcpStream::set_zero_linger`], by RST (RFC 9293 §3.10.4 SHLD-3, as Linux); otherwise in
//!   order, the stack keeping the connection through FIN-WAIT and TIME-WAIT on its own.
//! - Errors: `ConnectionReset`, `ConnectionRefused`, `TimedOut`, `ConnectionAborted`,
//!   `HostUnreachable` for how the connection ended; `BrokenPipe` for a write after our
//!   shutdown or after the connection ended in order; `ConnectionAborted` with "stack
//!   stopped" once the stack's driver is gone.

use alloc::sync::Arc;
use core::future::poll_fn;
use core::net::SocketAddr;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll};
use std::io::{self, IoSlice};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{ConnState, Inner, Stack, call_error, stopped_error};
use crate::endpoint::{ConnectionHandle, EndpointError};
use crate::event::{CallError, CloseReason, Status, TcpInfo};
use crate::state::State;

/// What a stream and its halves share; closing happens when the last of them goes.
#[derive(Debug)]
struct StreamCore {
    stack: Stack,
    handle: ConnectionHandle,
    local: SocketAddr,
    peer: SocketAddr,
    zero_linger: AtomicBool,
}

/// `Pending`, or `WouldBlock` for a `try_` call (no context to register).
fn would_block<T>(cx: Option<&Context<'_>>) -> Poll<io::Result<T>> {
    match cx {
        Some(_) => Poll::Pending,
        None => Poll::Ready(Err(io::ErrorKind::WouldBlock.into())),
    }
}

impl StreamCore {
    /// Registers a new connection of the user's and makes its stream.
    fn register(stack: &Stack, inner: &mut Inner, handle: ConnectionHandle) -> io::Result<Self> {
        // The template's setting: the connection has no getter of its own.
        let nodelay = inner.default_nodelay;
        let connection = inner
            .endpoint_mut()
            .connection_mut(handle)
            .map_err(|error| call_error(error, None, false))?;
        let local = connection.local();
        let peer = connection.remote().unwrap_or(local);
        inner.connections.insert(handle, ConnState { nodelay, ..ConnState::default() });
        Ok(Self { stack: stack.clone(), handle, local, peer, zero_linger: AtomicBool::new(false) })
    }

    fn info(&self) -> io::Result<TcpInfo> {
        let inner = self.stack.lock();
        inner.endpoint().info(self.handle).map_err(|_| io::ErrorKind::NotConnected.into())
    }

    fn poll_connected(&self, cx: &Context<'_>) -> Poll<io::Result<()>> {
        let mut guard = self.stack.lock();
        let inner = &mut *guard;
        if let Some(why) = &inner.stopped {
            return Poll::Ready(Err(stopped_error(why)));
        }
        let status = inner.driver.endpoint().status(self.handle);
        let Some(state) = inner.connections.get_mut(&self.handle) else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        match status.map(|status| status.state) {
            Ok(State::SynSent | State::SynReceived) => {
                state.writer.register(cx.waker());
                Poll::Pending
            }
            Ok(State::Closed | State::Listen) | Err(_) => {
                let closed = state.closed.or_else(|| {
                    inner.driver.endpoint_mut().connection_mut(self.handle).ok()?.close_reason()
                });
                let error = match closed {
                    Some(CloseReason::Error(error)) => super::connection_error(error),
                    _ => io::ErrorKind::NotConnected.into(),
                };
                Poll::Ready(Err(error))
            }
            Ok(_) => Poll::Ready(Ok(())),
        }
    }

    /// Reads (or, with `peek`, copies without consuming) into `buf`. `cx`: `None` for a
    /// `try_` call.
    fn poll_read(
        &self,
        cx: Option<&Context<'_>>,
        buf: &mut [u8],
        peek: bool,
    ) -> Poll<io::Result<usize>> {
        let mut guard = self.stack.lock();
        let inner = &mut *guard;
        if let Some(why) = &inner.stopped {
            return Poll::Ready(Err(stopped_error(why)));
        }
        let Some(state) = inner.connections.get_mut(&self.handle) else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        if !state.peeked.is_empty() || buf.is_empty() {
            let n = state.peeked.len().min(buf.len());
            if let (Some(to), Some(from)) = (buf.get_mut(..n), state.peeked.get(..n)) {
                to.copy_from_slice(from);
            }
            if !peek {
                state.peeked.drain(..n);
            }
            return Poll::Ready(Ok(n));
        }
        let endpoint = inner.driver.endpoint_mut();
        let result = if peek {
            state.peeked.resize(buf.len(), 0);
            let result = endpoint.recv(self.handle, &mut state.peeked);
            state.peeked.truncate(*result.as_ref().unwrap_or(&0));
            if let (Some(to), Some(from)) =
                (buf.get_mut(..state.peeked.len()), state.peeked.get(..))
            {
                to.copy_from_slice(from);
            }
            result
        } else {
            endpoint.recv(self.handle, buf)
        };
        match result {
            Ok(0) => {
                if let Some(cx) = cx {
                    state.reader.register(cx.waker());
                }
                would_block(cx)
            }
            Ok(n) => {
                // Reading may open the receive window: a window update to send.
                inner.kick();
                Poll::Ready(Ok(n))
            }
            // The peer's FIN, everything before it read: end of stream.
            Err(EndpointError::Call(CallError::Closing)) => Poll::Ready(Ok(0)),
            Err(error @ (EndpointError::StaleHandle | EndpointError::Call(CallError::NotOpen))) => {
                match state.closed {
                    Some(CloseReason::Error(_)) => {
                        Poll::Ready(Err(call_error(error, state.closed, false)))
                    }
                    // Ended in order: the FIN was read.
                    _ => Poll::Ready(Ok(0)),
                }
            }
            Err(error) => Poll::Ready(Err(call_error(error, state.closed, false))),
        }
    }

    /// Writes as much of `bufs`, in order, as the send buffer takes.
    fn poll_write(
        &self,
        cx: Option<&Context<'_>>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut guard = self.stack.lock();
        let inner = &mut *guard;
        if let Some(why) = &inner.stopped {
            return Poll::Ready(Err(stopped_error(why)));
        }
        let now = inner.now();
        let mut total = 0;
        let mut offered = false;
        for buf in bufs.iter().filter(|buf| !buf.is_empty()) {
            offered = true;
            match inner.driver.endpoint_mut().send(now, self.handle, buf) {
                Ok(taken) => {
                    total += taken;
                    if taken < buf.len() {
                        break;
                    }
                }
                Err(_) if total > 0 => break,
                Err(error) => {
                    let closed = inner.connections.get(&self.handle).and_then(|s| s.closed);
                    return Poll::Ready(Err(call_error(error, closed, true)));
                }
            }
        }
        if total > 0 {
            inner.kick();
            return Poll::Ready(Ok(total));
        }
        if !offered {
            return Poll::Ready(Ok(0));
        }
        // Nothing fit: the endpoint reports `Writable` when acknowledgments free room.
        if let (Some(cx), Some(state)) = (cx, inner.connections.get_mut(&self.handle)) {
            state.writer.register(cx.waker());
        }
        would_block(cx)
    }

    /// Queues as much of `data` as the send buffer takes, by reference (`send_bytes`).
    fn poll_write_bytes(&self, cx: &Context<'_>, data: &Bytes) -> Poll<io::Result<usize>> {
        let mut guard = self.stack.lock();
        let inner = &mut *guard;
        if let Some(why) = &inner.stopped {
            return Poll::Ready(Err(stopped_error(why)));
        }
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let now = inner.now();
        match inner.driver.endpoint_mut().send_bytes(now, self.handle, data.clone()) {
            Ok(0) => {
                if let Some(state) = inner.connections.get_mut(&self.handle) {
                    state.writer.register(cx.waker());
                }
                Poll::Pending
            }
            Ok(taken) => {
                inner.kick();
                Poll::Ready(Ok(taken))
            }
            Err(error) => {
                let closed = inner.connections.get(&self.handle).and_then(|s| s.closed);
                Poll::Ready(Err(call_error(error, closed, true)))
            }
        }
    }

    /// Writes all of `data` by reference, waiting for room as needed.
    async fn write_bytes(&self, mut data: Bytes) -> io::Result<()> {
        while !data.is_empty() {
            let taken = poll_fn(|cx| self.poll_write_bytes(cx, &data)).await?;
            data.advance(taken);
        }
        Ok(())
    }

    fn poll_shutdown(&self) -> Poll<io::Result<()>> {
        let mut guard = self.stack.lock();
        let inner = &mut *guard;
        if let Some(why) = &inner.stopped {
            return Poll::Ready(Err(stopped_error(why)));
        }
        let now = inner.now();
        let result = inner.driver.endpoint_mut().shutdown(now, self.handle);
        let closed = inner.connections.get(&self.handle).and_then(|s| s.closed);
        match result {
            Ok(()) => {
                inner.kick();
                Poll::Ready(Ok(()))
            }
            // Shut down already, or ended in order: nothing more to do.
            Err(EndpointError::Call(CallError::Closing)) => Poll::Ready(Ok(())),
            Err(EndpointError::StaleHandle | EndpointError::Call(CallError::NotOpen))
                if !matches!(closed, Some(CloseReason::Error(_))) =>
            {
                Poll::Ready(Ok(()))
            }
            Err(error) => Poll::Ready(Err(call_error(error, closed, true))),
        }
    }

    /// Ready when a read would not block: data, the peer's FIN, or an ended connection.
    fn poll_read_ready(&self, cx: &Context<'_>) -> Poll<io::Result<()>> {
        let mut guard = self.stack.lock();
        let inner = &mut *guard;
        if let Some(why) = &inner.stopped {
            return Poll::Ready(Err(stopped_error(why)));
        }
        let status = inner.driver.endpoint().status(self.handle);
        let Some(state) = inner.connections.get_mut(&self.handle) else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        let ready = !state.peeked.is_empty()
            || status.is_err()
            || status.is_ok_and(|status| {
                status.recv_queued > 0
                    || matches!(
                        status.state,
                        State::CloseWait
                            | State::Closing
                            | State::LastAck
                            | State::TimeWait
                            | State::Closed
                    )
            });
        if ready {
            return Poll::Ready(Ok(()));
        }
        state.reader.register(cx.waker());
        Poll::Pending
    }

    /// Ready when a write would not block: room in the send buffer, or a write that would
    /// fail at once.
    fn poll_write_ready(&self, cx: &Context<'_>) -> Poll<io::Result<()>> {
        let mut guard = self.stack.lock();
        let inner = &mut *guard;
        if let Some(why) = &inner.stopped {
            return Poll::Ready(Err(stopped_error(why)));
        }
        let status = inner.driver.endpoint().status(self.handle);
        let Some(state) = inner.connections.get_mut(&self.handle) else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        let blocked = status.is_ok_and(|status| {
            matches!(
                status.state,
                State::SynSent | State::SynReceived | State::Established | State::CloseWait
            ) && status.send_queued >= status.send_buffer
        });
        if !blocked {
            return Poll::Ready(Ok(()));
        }
        state.writer.register(cx.waker());
        if !core::mem::replace(&mut state.wants_room, true) {
            inner.wants_room.push(self.handle);
        }
        Poll::Pending
    }
}

impl Drop for StreamCore {
    fn drop(&mut self) {
        let mut guard = self.stack.lock();
        let inner = &mut *guard;
        let unread =
            inner.connections.remove(&self.handle).is_some_and(|state| !state.peeked.is_empty());
        let now = inner.now();
        let endpoint = inner.driver.endpoint_mut();
        // Errors mean the connection ended already: nothing to close.
        let _ = if unread || self.zero_linger.load(Ordering::Relaxed) {
            endpoint.abort(now, self.handle)
        } else {
            // With unread data in the connection this is a RST too (SHLD-3).
            endpoint.close(now, self.handle)
        };
        inner.kick();
    }
}

/// A TCP connection of a [`Stack`], in the shape of `tokio::net::TcpStream`. See the module
/// docs for its read, write, shutdown and drop semantics.
#[derive(Debug)]
pub struct TcpStream {
    core: Arc<StreamCore>,
}

impl TcpStream {
    /// Opens a connection to `remote` from the stack's first address of its family and waits
    /// for the handshake to complete.
    ///
    /// Dropping the future before then abandons the attempt (the connection is closed).
    ///
    /// # Errors
    ///
    /// `ConnectionRefused` (the peer answered with RST), `TimedOut` (no answer within the
    /// endpoint's SYN retries), `HostUnreachable` (an ICMP hard error), `AddrNotAvailable`
    /// (no address of that family, no free port, or the connection limit), `InvalidInput`
    /// (an address no connection can have), `ConnectionAborted` once the driver stopped.
    pub async fn connect(stack: &Stack, remote: SocketAddr) -> io::Result<Self> {
        let stream = {
            let mut inner = stack.lock();
            inner.check_running()?;
            let source = inner.source_for(remote).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::AddrNotAvailable,
                    "the stack has no address of that family",
                )
            })?;
            let now = inner.now();
            let handle = inner
                .endpoint_mut()
                .connect(now, source, remote)
                .map_err(|error| call_error(error, None, false))?;
            let core = StreamCore::register(stack, &mut inner, handle)?;
            inner.kick();
            Self { core: Arc::new(core) }
        };
        poll_fn(|cx| stream.core.poll_connected(cx)).await?;
        Ok(stream)
    }

    /// Wraps an accepted connection.
    pub(super) fn accepted(
        stack: &Stack,
        inner: &mut Inner,
        handle: ConnectionHandle,
    ) -> io::Result<Self> {
        Ok(Self { core: Arc::new(StreamCore::register(stack, inner, handle)?) })
    }

    /// The peer's address, infallibly (for the listener).
    pub(super) fn core_peer(&self) -> SocketAddr {
        self.core.peer
    }

    /// Waits for the handshake of a connection made by `Incoming::accept`.
    pub(super) async fn wait_connected(&self) -> io::Result<()> {
        poll_fn(|cx| self.core.poll_connected(cx)).await
    }

    /// Our address and port.
    ///
    /// # Errors
    ///
    /// None today; `io::Result` as in tokio.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.core.local)
    }

    /// The peer's address and port.
    ///
    /// # Errors
    ///
    /// None today; `io::Result` as in tokio.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.core.peer)
    }

    /// The connection's STATUS (RFC 9293 §3.10.6): state, sequence variables, windows,
    /// buffer occupancy, RTT and congestion figures (like Linux's `TCP_INFO`).
    ///
    /// # Errors
    ///
    /// `NotConnected` once the endpoint has freed the connection (after it ended and
    /// everything was read).
    pub fn status(&self) -> io::Result<Status> {
        let inner = self.core.stack.lock();
        inner.endpoint().status(self.core.handle).map_err(|_| io::ErrorKind::NotConnected.into())
    }

    /// The connection's statistics in the manner of Linux's `TCP_INFO` (`ss -ti`): state,
    /// RTT, RTO, congestion window, octet totals, retransmissions by cause, SACK and
    /// loss-recovery counters ([`TcpInfo`] says what each figure counts).
    ///
    /// # Errors
    ///
    /// `NotConnected` once the endpoint has freed the connection (after it ended and
    /// everything was read).
    pub fn info(&self) -> io::Result<TcpInfo> {
        self.core.info()
    }

    /// Turns Nagle's algorithm off (`true`: small writes go out at once) or on.
    ///
    /// # Errors
    ///
    /// `NotConnected` once the endpoint has freed the connection.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        let mut inner = self.core.stack.lock();
        inner
            .endpoint_mut()
            .connection_mut(self.core.handle)
            .map_err(|error| call_error(error, None, false))?
            .set_nodelay(nodelay);
        if let Some(state) = inner.connections.get_mut(&self.core.handle) {
            state.nodelay = nodelay;
        }
        inner.kick();
        Ok(())
    }

    /// Whether Nagle's algorithm is off for this stream (the endpoint's `Config::nodelay`
    /// until [`set_nodelay`](Self::set_nodelay)).
    ///
    /// # Errors
    ///
    /// None today; `io::Result` as in tokio.
    pub fn nodelay(&self) -> io::Result<bool> {
        let inner = self.core.stack.lock();
        Ok(inner.connections.get(&self.core.handle).is_some_and(|state| state.nodelay))
    }

    /// With `true`, dropping the stream resets the connection (RST) instead of closing it in
    /// order, whatever data is still queued: `SO_LINGER` with a zero timeout.
    ///
    /// # Errors
    ///
    /// None today; `io::Result` as in tokio.
    pub fn set_zero_linger(&self, zero_linger: bool) -> io::Result<()> {
        self.core.zero_linger.store(zero_linger, Ordering::Relaxed);
        Ok(())
    }

    /// Whether [`set_zero_linger`](Self::set_zero_linger) is on.
    ///
    /// # Errors
    ///
    /// None today; `io::Result` as in tokio.
    pub fn zero_linger(&self) -> io::Result<bool> {
        Ok(self.core.zero_linger.load(Ordering::Relaxed))
    }

    /// Waits until a read would not block (data, the peer's FIN, or an ended connection).
    ///
    /// # Errors
    ///
    /// `ConnectionAborted` once the stack's driver stopped.
    pub async fn readable(&self) -> io::Result<()> {
        poll_fn(|cx| self.core.poll_read_ready(cx)).await
    }

    /// Waits until a write would not block (room in the send buffer, or a write that would
    /// fail at once).
    ///
    /// # Errors
    ///
    /// `ConnectionAborted` once the stack's driver stopped.
    pub async fn writable(&self) -> io::Result<()> {
        poll_fn(|cx| self.core.poll_write_ready(cx)).await
    }

    /// Reads what is there without waiting: `Ok(0)` at the end of the stream.
    ///
    /// # Errors
    ///
    /// `WouldBlock` when nothing is there yet; otherwise as reading (module docs).
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        ready_or_would_block(self.core.poll_read(None, buf, false))
    }

    /// Writes all of `data` without copying it: the connection's send queue keeps slices of
    /// `data` itself (pieces under 256 octets are copied) until the peer acknowledges them,
    /// and every (re)transmission is read from there. Waits while the send buffer is full.
    ///
    /// Not cancel safe, as `write_all`: dropped midway, a prefix of `data` has been queued.
    ///
    /// # Errors
    ///
    /// As writing (module docs).
    pub async fn write_bytes(&self, data: Bytes) -> io::Result<()> {
        self.core.write_bytes(data).await
    }

    /// Writes what fits without waiting.
    ///
    /// # Errors
    ///
    /// `WouldBlock` when the send buffer is full; otherwise as writing (module docs).
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        ready_or_would_block(self.core.poll_write(None, &[IoSlice::new(buf)]))
    }

    /// Writes what fits of several buffers, in order, without waiting.
    ///
    /// # Errors
    ///
    /// As [`try_write`](Self::try_write).
    pub fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        ready_or_would_block(self.core.poll_write(None, bufs))
    }

    /// Waits for data and copies it into `buf` without consuming it: the next read returns
    /// it again. `Ok(0)` at the end of the stream.
    ///
    /// The octets peeked are taken out of the connection (its window opens for them) and
    /// held by the stack until read; dropping the stream with peeked octets unread resets the
    /// connection, as with any unread data.
    ///
    /// # Errors
    ///
    /// As reading (module docs).
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| self.core.poll_read(Some(cx), buf, true)).await
    }

    /// Splits the stream into halves that borrow it.
    pub fn split(&mut self) -> (ReadHalf<'_>, WriteHalf<'_>) {
        (ReadHalf { core: &self.core }, WriteHalf { core: &self.core })
    }

    /// Splits the stream into owned halves, for two tasks. Dropping the write half shuts
    /// down our sending side (as `poll_shutdown`); the connection is closed when both are
    /// dropped.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        let core = self.core;
        (OwnedReadHalf { core: Arc::clone(&core) }, OwnedWriteHalf { core, shutdown_on_drop: true })
    }
}

fn ready_or_would_block<T>(poll: Poll<io::Result<T>>) -> io::Result<T> {
    match poll {
        Poll::Ready(result) => result,
        Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
    }
}

/// `AsyncRead` / `AsyncWrite` for a type with a `core: &StreamCore`-like field.
macro_rules! stream_io {
    (read $ty:ty) => {
        impl AsyncRead for $ty {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                let read = self.core.poll_read(Some(cx), buf.initialize_unfilled(), false);
                read.map_ok(|n| buf.advance(n))
            }
        }
    };
    (write $ty:ty) => {
        impl AsyncWrite for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                self.core.poll_write(Some(cx), &[IoSlice::new(buf)])
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                self.core.poll_write(Some(cx), bufs)
            }

            fn is_write_vectored(&self) -> bool {
                true
            }

            /// Written data is in the connection's send buffer already: nothing to flush.
            fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                self.core.poll_shutdown()
            }
        }
    };
}

stream_io!(read TcpStream);
stream_io!(write TcpStream);
stream_io!(read ReadHalf<'_>);
stream_io!(write WriteHalf<'_>);
stream_io!(read OwnedReadHalf);
stream_io!(write OwnedWriteHalf);

/// The reading half of a [`TcpStream::split`].
#[derive(Debug)]
pub struct ReadHalf<'a> {
    core: &'a StreamCore,
}

/// The writing half of a [`TcpStream::split`]; shutting it down shuts down the stream's
/// sending side.
#[derive(Debug)]
pub struct WriteHalf<'a> {
    core: &'a StreamCore,
}

/// The reading half of a [`TcpStream::into_split`].
#[derive(Debug)]
pub struct OwnedReadHalf {
    core: Arc<StreamCore>,
}

/// The writing half of a [`TcpStream::into_split`]: dropping it shuts down the sending side
/// (the peer reads end of stream after the data written).
#[derive(Debug)]
pub struct OwnedWriteHalf {
    core: Arc<StreamCore>,
    shutdown_on_drop: bool,
}

impl OwnedReadHalf {
    /// The connection's statistics, as [`TcpStream::info`].
    ///
    /// # Errors
    ///
    /// As [`TcpStream::info`].
    pub fn info(&self) -> io::Result<TcpInfo> {
        self.core.info()
    }

    /// Our address and port.
    ///
    /// # Errors
    ///
    /// None today; `io::Result` as in tokio.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.core.local)
    }

    /// The peer's address and port.
    ///
    /// # Errors
    ///
    /// None today; `io::Result` as in tokio.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.core.peer)
    }

    /// As [`TcpStream::readable`].
    ///
    /// # Errors
    ///
    /// As [`TcpStream::readable`].
    pub async fn readable(&self) -> io::Result<()> {
        poll_fn(|cx| self.core.poll_read_ready(cx)).await
    }

    /// As [`TcpStream::try_read`].
    ///
    /// # Errors
    ///
    /// As [`TcpStream::try_read`].
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        ready_or_would_block(self.core.poll_read(None, buf, false))
    }

    /// As [`TcpStream::peek`].
    ///
    /// # Errors
    ///
    /// As [`TcpStream::peek`].
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| self.core.poll_read(Some(cx), buf, true)).await
    }
}

impl OwnedWriteHalf {
    /// The connection's statistics, as [`TcpStream::info`].
    ///
    /// # Errors
    ///
    /// As [`TcpStream::info`].
    pub fn info(&self) -> io::Result<TcpInfo> {
        self.core.info()
    }

    /// Our address and port.
    ///
    /// # Errors
    ///
    /// None today; `io::Result` as in tokio.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.core.local)
    }

    /// The peer's address and port.
    ///
    /// # Errors
    ///
    /// None today; `io::Result` as in tokio.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.core.peer)
    }

    /// As [`TcpStream::writable`].
    ///
    /// # Errors
    ///
    /// As [`TcpStream::writable`].
    pub async fn writable(&self) -> io::Result<()> {
        poll_fn(|cx| self.core.poll_write_ready(cx)).await
    }

    /// As [`TcpStream::try_write`].
    ///
    /// # Errors
    ///
    /// As [`TcpStream::try_write`].
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        ready_or_would_block(self.core.poll_write(None, &[IoSlice::new(buf)]))
    }

    /// As [`TcpStream::write_bytes`].
    ///
    /// # Errors
    ///
    /// As [`TcpStream::write_bytes`].
    pub async fn write_bytes(&self, data: Bytes) -> io::Result<()> {
        self.core.write_bytes(data).await
    }

    /// Drops the half without shutting down the sending side: the connection then closes
    /// only when the read half goes too.
    pub fn forget(mut self) {
        self.shutdown_on_drop = false;
    }
}

impl Drop for OwnedWriteHalf {
    fn drop(&mut self) {
        if self.shutdown_on_drop {
            let _ = self.core.poll_shutdown();
        }
    }
}
