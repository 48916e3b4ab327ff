//! [`TcpListener`]: a passive OPEN on the stack's endpoint and the queue of connections it
//! completed; [`Incoming`]: a SYN a deferred listener holds for the application's decision.
//!
//! The endpoint does the listening work — SYN queue, SYN cookies when it is full, backlog,
//! per-remote limits, the records of deferred SYNs and their expiry — so a SYN flood costs
//! what the endpoint's limits allow, never more. The listener only takes established
//! connections off the accept queue (or recorded SYNs off the stack's queue of
//! `EndpointEvent::Incoming`) and wakes its task when the endpoint reports one.
//!
//! A catch-all listener ([`TcpListener::bind_any`]) is the endpoint's listener on `0.0.0.0:0`
//! and `[::]:0`; while one is open the stack's driver takes in packets for any destination
//! address (`Driver::set_any_destination`), so the connections a TUN device routes to the
//! stack are caught with their original destination as `local_addr`.

use alloc::vec::Vec;
use core::future::poll_fn;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use core::task::{Context, Poll};
use std::collections::VecDeque;
use std::io;

use super::{Inner, Stack, TcpStream, call_error, stopped_error};
use crate::endpoint::IncomingId;

/// The backlog of [`TcpListener::bind`]: SYN-queue and accept-queue entries each.
const DEFAULT_BACKLOG: usize = 1024;

/// The catch-all listening addresses, one per family.
const CATCH_ALL: [SocketAddr; 2] = [
    SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
    SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
];

/// A listening socket of a [`Stack`], in the shape of `tokio::net::TcpListener`.
///
/// Dropping it stops listening: the connections it completed that were never accepted are
/// reset, and the SYNs a deferred one recorded and nobody took are forgotten unanswered.
#[derive(Debug)]
pub struct TcpListener {
    stack: Stack,
    /// The endpoint listeners behind it: one address, or both catch-all ones.
    locals: Vec<SocketAddr>,
    /// Made by a `_deferred` constructor: SYNs come out of [`incoming`](Self::incoming).
    deferred: bool,
}

impl TcpListener {
    /// Listens on `local` with a backlog of 1 024. An unspecified IP listens on every address
    /// of the stack for that port; `0.0.0.0:0` or `[::]:0` is the catch-all listener of that
    /// family ([`bind_any`](Self::bind_any) takes both).
    ///
    /// # Errors
    ///
    /// `AddrInUse` if something listens there already, `InvalidInput` for port 0 with a
    /// specified IP (the stack picks no listening port), `ConnectionAborted` once the driver
    /// stopped.
    pub async fn bind(stack: &Stack, local: SocketAddr) -> io::Result<Self> {
        Self::bind_with_backlog(stack, local, DEFAULT_BACKLOG)
    }

    /// Listens on `local` with room for `backlog` connections in the SYN queue and as many in
    /// the accept queue.
    ///
    /// # Errors
    ///
    /// As [`bind`](Self::bind).
    pub fn bind_with_backlog(stack: &Stack, local: SocketAddr, backlog: usize) -> io::Result<Self> {
        Self::open(stack, alloc::vec![local], backlog, false)
    }

    /// The catch-all listener: it accepts connections to any address and port that reach the
    /// stack's device (for both families) and that no connection or more specific listener
    /// takes; each stream's [`local_addr`](TcpStream::local_addr) is the connection's original
    /// destination. While it is open the stack takes in TCP packets for any destination
    /// address, not only its own. [`local_addr`](Self::local_addr) says `0.0.0.0:0`.
    ///
    /// # Errors
    ///
    /// As [`bind`](Self::bind) (`AddrInUse`: a catch-all listener is open already).
    pub fn bind_any(stack: &Stack, backlog: usize) -> io::Result<Self> {
        Self::open(stack, CATCH_ALL.to_vec(), backlog, false)
    }

    /// A deferred listener on `local` (as for [`bind`](Self::bind)): no SYN is answered until
    /// the application decides on it. SYNs come out of [`incoming`](Self::incoming) as
    /// [`Incoming`]s; at most `backlog` wait at once (more are dropped unanswered and counted
    /// in `EndpointCounters::incoming_dropped`: no SYN cookie answers for the application),
    /// and one left undecided for `EndpointConfig::incoming_lifetime` is forgotten.
    /// [`accept`](Self::accept) and [`poll_accept`](Self::poll_accept) are refused on it.
    ///
    /// # Errors
    ///
    /// As [`bind`](Self::bind).
    pub fn bind_deferred(stack: &Stack, local: SocketAddr, backlog: usize) -> io::Result<Self> {
        Self::open(stack, alloc::vec![local], backlog, true)
    }

    /// The catch-all listener of [`bind_any`](Self::bind_any), deferred as by
    /// [`bind_deferred`](Self::bind_deferred): what a transparent proxy uses to connect
    /// upstream before it answers the client.
    ///
    /// # Errors
    ///
    /// As [`bind_any`](Self::bind_any).
    pub fn bind_any_deferred(stack: &Stack, backlog: usize) -> io::Result<Self> {
        Self::open(stack, CATCH_ALL.to_vec(), backlog, true)
    }

    fn open(
        stack: &Stack,
        locals: Vec<SocketAddr>,
        backlog: usize,
        deferred: bool,
    ) -> io::Result<Self> {
        if locals.iter().any(|local| local.port() == 0 && !local.ip().is_unspecified()) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "listening needs a port"));
        }
        let mut inner = stack.lock();
        inner.check_running()?;
        for (opened, local) in locals.iter().enumerate() {
            let endpoint = inner.endpoint_mut();
            let listened = if deferred {
                endpoint.listen_deferred(*local, backlog)
            } else {
                endpoint.listen(*local, backlog)
            };
            if let Err(error) = listened {
                for earlier in locals.iter().take(opened) {
                    let _ = inner.endpoint_mut().unlisten(*earlier);
                    forget(&mut inner, *earlier);
                }
                return Err(call_error(error, None, false));
            }
            inner.listeners.insert(*local, super::Waiters::default());
            if deferred {
                inner.incoming.insert(*local, VecDeque::new());
            }
            if local.port() == 0 {
                inner.catch_all += 1;
                inner.driver.set_any_destination(true);
            }
        }
        Ok(Self { stack: stack.clone(), locals, deferred })
    }

    /// The address listened on (`0.0.0.0:0` for a catch-all listener).
    ///
    /// # Errors
    ///
    /// None today; `io::Result` as in tokio.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.locals.first().copied().ok_or_else(|| io::ErrorKind::NotConnected.into())
    }

    /// Waits for a connection that completed its handshake and returns it with the peer's
    /// address.
    ///
    /// Cancel safe: a connection is taken off the queue only by the poll that returns it.
    ///
    /// # Errors
    ///
    /// `ConnectionAborted` once the stack's driver stopped; `InvalidInput` on a deferred
    /// listener (use [`incoming`](Self::incoming)).
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Polls for a completed connection; with none, registers the task to be woken when one
    /// arrives.
    ///
    /// # Errors
    ///
    /// As [`accept`](Self::accept).
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        if self.deferred {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a deferred listener hands out Incoming: use incoming()",
            )));
        }
        let mut guard = self.stack.lock();
        let inner = &mut *guard;
        if let Some(why) = &inner.stopped {
            return Poll::Ready(Err(stopped_error(why)));
        }
        for local in &self.locals {
            loop {
                match inner.endpoint_mut().accept(*local) {
                    Ok(Some(handle)) => {
                        // An error means it ended and was freed while it waited: take the next.
                        if let Ok(stream) = TcpStream::accepted(&self.stack, inner, handle) {
                            let peer = stream.core_peer();
                            return Poll::Ready(Ok((stream, peer)));
                        }
                    }
                    Ok(None) => break,
                    Err(error) => return Poll::Ready(Err(call_error(error, None, false))),
                }
            }
        }
        self.register(inner, cx);
        Poll::Pending
    }

    /// Waits for the next SYN a deferred listener recorded, for the application to
    /// [`accept`](Incoming::accept), [`refuse`](Incoming::refuse) or
    /// [`ignore`](Incoming::ignore).
    ///
    /// Cancel safe: a SYN is taken off the queue only by the poll that returns it.
    ///
    /// # Errors
    ///
    /// `ConnectionAborted` once the stack's driver stopped; `InvalidInput` on a listener that
    /// is not deferred.
    pub async fn incoming(&self) -> io::Result<Incoming> {
        poll_fn(|cx| self.poll_incoming(cx)).await
    }

    /// Polls for the next recorded SYN; with none, registers the task to be woken when one
    /// arrives.
    ///
    /// # Errors
    ///
    /// As [`incoming`](Self::incoming).
    pub fn poll_incoming(&self, cx: &mut Context<'_>) -> Poll<io::Result<Incoming>> {
        if !self.deferred {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a deferred listener: use accept()",
            )));
        }
        let mut guard = self.stack.lock();
        let inner = &mut *guard;
        if let Some(why) = &inner.stopped {
            return Poll::Ready(Err(stopped_error(why)));
        }
        for local in &self.locals {
            while let Some(id) = inner.incoming.get_mut(local).and_then(VecDeque::pop_front) {
                // Gone if it expired (or was decided) since it was queued: take the next.
                if let Some((local, peer)) = inner.endpoint().incoming_addresses(id) {
                    let stack = self.stack.clone();
                    return Poll::Ready(Ok(Incoming { stack, id, local, peer, decided: false }));
                }
            }
        }
        self.register(inner, cx);
        Poll::Pending
    }

    fn register(&self, inner: &mut Inner, cx: &Context<'_>) {
        for local in &self.locals {
            if let Some(waiters) = inner.listeners.get_mut(local) {
                waiters.register(cx.waker());
            }
        }
    }
}

/// Removes the stack's records of the listener on `local`.
fn forget(inner: &mut Inner, local: SocketAddr) {
    inner.listeners.remove(&local);
    inner.incoming.remove(&local);
    if local.port() == 0 {
        inner.catch_all = inner.catch_all.saturating_sub(1);
        if inner.catch_all == 0 {
            // Caught connections still live keep it on until they end.
            inner.settle_any_destination();
        }
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        let mut inner = self.stack.lock();
        for local in &self.locals {
            // The endpoint resets what the listener still owns (half-open and never accepted
            // connections), as Linux does for a closed listener, and forgets recorded SYNs.
            let _ = inner.endpoint_mut().unlisten(*local);
            forget(&mut inner, *local);
        }
        inner.kick();
    }
}

/// A SYN a deferred listener recorded and nothing answered yet (as quinn's `Incoming`): the
/// application looks at its addresses and decides. Dropping it undecided ignores it.
#[derive(Debug)]
pub struct Incoming {
    stack: Stack,
    id: IncomingId,
    local: SocketAddr,
    peer: SocketAddr,
    decided: bool,
}

impl Incoming {
    /// Where the SYN went: for a catch-all listener, the connection's original destination.
    pub const fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Where the SYN came from.
    pub const fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// Accepts the connection: the SYN-ACK goes out now, and the stream is returned once the
    /// handshake completes.
    ///
    /// Dropping the future before then closes the connection.
    ///
    /// # Errors
    ///
    /// `ConnectionReset` if the client resets the handshake, `TimedOut` if it never completes
    /// (the SYN-ACK's retries ran out), `TimedOut` too if the record expired before this call
    /// (`EndpointConfig::incoming_lifetime`), `AddrNotAvailable` at the connection limits,
    /// `ConnectionAborted` once the driver stopped.
    pub async fn accept(mut self) -> io::Result<TcpStream> {
        self.decided = true;
        let stream = {
            let mut guard = self.stack.lock();
            let inner = &mut *guard;
            inner.check_running()?;
            let now = inner.now();
            let handle =
                inner.endpoint_mut().accept_incoming(now, self.id).map_err(
                    |error| match error {
                        crate::endpoint::EndpointError::UnknownIncoming => io::Error::new(
                            io::ErrorKind::TimedOut,
                            "the SYN expired before it was accepted",
                        ),
                        error => call_error(error, None, false),
                    },
                )?;
            let stream = TcpStream::accepted(&self.stack, inner, handle)?;
            inner.kick();
            stream
        };
        stream.wait_connected().await?;
        Ok(stream)
    }

    /// Refuses the connection: the client gets a RST acknowledging its SYN (RFC 9293
    /// §3.10.7.2), which a kernel client reports as "connection refused". Nothing happens if
    /// the record already expired or the driver stopped.
    pub fn refuse(mut self) {
        self.decided = true;
        let mut inner = self.stack.lock();
        if inner.endpoint_mut().refuse_incoming(self.id).is_ok() {
            inner.kick();
        }
    }

    /// Drops the SYN without an answer (the client retries, then gives up).
    pub fn ignore(mut self) {
        self.decided = true;
        let _ = self.stack.lock().endpoint_mut().ignore_incoming(self.id);
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if !self.decided {
            let _ = self.stack.lock().endpoint_mut().ignore_incoming(self.id);
        }
    }
}
