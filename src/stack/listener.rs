//! [`TcpListener`]: a passive OPEN on the stack's endpoint and the queue of connections it
//! completed.
//!
//! The endpoint does the listening work — SYN queue, SYN cookies when it is full, backlog,
//! per-remote limits — so a SYN flood costs what the endpoint's limits allow, never more. The
//! listener only takes established connections off the accept queue and wakes its task when
//! the endpoint reports one (`EndpointEvent::Acceptable`).

use core::future::poll_fn;
use core::net::SocketAddr;
use core::task::{Context, Poll};
use std::io;

use super::{Stack, TcpStream, call_error, stopped_error};

/// The backlog of [`TcpListener::bind`]: SYN-queue and accept-queue entries each.
const DEFAULT_BACKLOG: usize = 1024;

/// A listening socket of a [`Stack`], in the shape of `tokio::net::TcpListener`.
///
/// Dropping it stops listening and resets the connections it completed that were never
/// accepted.
#[derive(Debug)]
pub struct TcpListener {
    stack: Stack,
    local: SocketAddr,
}

impl TcpListener {
    /// Listens on `local` (an unspecified IP listens on every address of the stack for that
    /// port) with a backlog of 1 024.
    ///
    /// # Errors
    ///
    /// `AddrInUse` if something listens there already, `InvalidInput` for port 0 (the stack
    /// picks no listening port), `ConnectionAborted` once the driver stopped.
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
        if local.port() == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "listening needs a port"));
        }
        let mut inner = stack.lock();
        inner.check_running()?;
        inner
            .endpoint_mut()
            .listen(local, backlog)
            .map_err(|error| call_error(error, None, false))?;
        inner.listeners.insert(local, super::Waiters::default());
        Ok(Self { stack: stack.clone(), local })
    }

    /// The address listened on.
    ///
    /// # Errors
    ///
    /// None today; `io::Result` as in tokio.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    /// Waits for a connection that completed its handshake and returns it with the peer's
    /// address.
    ///
    /// Cancel safe: a connection is taken off the queue only by the poll that returns it.
    ///
    /// # Errors
    ///
    /// `ConnectionAborted` once the stack's driver stopped.
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
        let mut guard = self.stack.lock();
        let inner = &mut *guard;
        if let Some(why) = &inner.stopped {
            return Poll::Ready(Err(stopped_error(why)));
        }
        loop {
            match inner.endpoint_mut().accept(self.local) {
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
        if let Some(waiters) = inner.listeners.get_mut(&self.local) {
            waiters.register(cx.waker());
        }
        Poll::Pending
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        let mut inner = self.stack.lock();
        // The endpoint resets what the listener still owns (half-open and never accepted
        // connections), as Linux does for a closed listener.
        let _ = inner.endpoint_mut().unlisten(self.local);
        inner.listeners.remove(&self.local);
        inner.kick();
    }
}
