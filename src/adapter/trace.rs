//! `tracing` events of the driver (feature `tracing`): what an operator wants in a log —
//! connections established and ended (orderly, reset, timed out …), retransmission timeouts
//! per stream, packets and segments dropped with their reason — derived from what the core
//! already reports (its events and counters), so the core itself stays free of logging. The
//! blocking [`Driver`](super::driver::Driver) and the async stack (which runs one) share this
//! code: the driver compares counters after each round, and sees connection events as they
//! are drained through it (`Driver::poll_event`; the stack drains them so).
//!
//! Target `tcp_proto::driver`. Levels: `debug` for connections opening and closing in order,
//! and for drops; `info` for abnormal ends and retransmission timeouts; `warn` when a
//! connection reaches R1 (the path looks bad) or events were lost. Nothing is done per
//! packet: drops are found by comparing the driver's and the endpoint's counters once per
//! round, and retransmission timeouts by visiting the established connections' counters only
//! on rounds where a timer was due and `info` is enabled.

use alloc::format;
use alloc::string::{String, ToString};
use std::collections::HashMap;

use tracing::{Level, debug, info, warn};

use super::driver::DriverCounters;
use crate::endpoint::{ConnectionHandle, Endpoint, EndpointCounters};
use crate::event::{CloseReason, Event};
use crate::time::Instant;

/// What the tracer last saw, to report only what changed.
#[derive(Debug, Default)]
pub(crate) struct Tracer {
    driver: DriverCounters,
    endpoint: EndpointCounters,
    /// The endpoint's deadline at the end of the last turn: a turn at or past it ran timers.
    deadline: Option<Instant>,
    /// Established connections (seen `Connected`, not yet `Closed`) and the retransmission
    /// timeouts of each as last reported.
    timeouts: HashMap<ConnectionHandle, u64>,
}

/// `(local, remote)` of a connection, for the log line (`None` once freed).
fn addresses(endpoint: &mut Endpoint, handle: ConnectionHandle) -> Option<String> {
    let connection = endpoint.connection_mut(handle).ok()?;
    let remote = connection.remote().map_or_else(|| "?".into(), |remote| remote.to_string());
    Some(format!("{} -> {remote}", connection.local()))
}

impl Tracer {
    /// One of a connection's events, as it is drained.
    pub(crate) fn on_event(
        &mut self,
        endpoint: &mut Endpoint,
        handle: ConnectionHandle,
        event: &Event,
    ) {
        match event {
            Event::Connected => {
                self.timeouts.insert(handle, 0);
                let flow = addresses(endpoint, handle);
                debug!(target: "tcp_proto::driver", ?handle, flow, "connection established");
            }
            Event::Closed(reason) => {
                self.timeouts.remove(&handle);
                // Present while the endpoint still holds the connection (one that ends with
                // unread data, say); one that ended in order is usually freed already.
                let info = endpoint.info(handle).ok();
                let acked = info.map(|info| info.bytes_acked);
                let received = info.map(|info| info.bytes_received);
                let retransmitted = info.map(|info| info.retransmitted_segments);
                match reason {
                    CloseReason::Orderly => debug!(
                        target: "tcp_proto::driver",
                        ?handle, ?acked, ?received, ?retransmitted, "connection closed"
                    ),
                    CloseReason::Error(error) => info!(
                        target: "tcp_proto::driver",
                        ?handle, %error, ?acked, ?received, ?retransmitted, "connection ended"
                    ),
                }
            }
            Event::RetransmissionThreshold => {
                let flow = addresses(endpoint, handle);
                warn!(
                    target: "tcp_proto::driver",
                    ?handle, flow, "retransmission threshold R1 reached: the path looks bad"
                );
            }
            Event::SoftError(error) => {
                debug!(target: "tcp_proto::driver", ?handle, ?error, "ICMP soft error");
            }
            _ => {}
        }
    }

    /// After a driver round at `now`: drops by reason since the last round, and each
    /// established connection's new retransmission timeouts if a timer was due.
    pub(crate) fn after_turn(
        &mut self,
        now: Instant,
        driver: &DriverCounters,
        endpoint: &Endpoint,
    ) {
        let deadline = endpoint.poll_timeout();
        self.report_drops(driver, endpoint.counters());
        let timers_ran = self.deadline.is_some_and(|due| now >= due);
        self.deadline = deadline;
        if !timers_ran || !tracing::enabled!(target: "tcp_proto::driver", Level::INFO) {
            return;
        }
        // A connection the endpoint no longer has is forgotten here too (its `Closed` may
        // have been lost with a full event queue).
        self.timeouts.retain(|&handle, seen| {
            let Ok(info) = endpoint.info(handle) else { return false };
            if info.rto_count > *seen {
                info!(
                    target: "tcp_proto::driver",
                    ?handle,
                    timeouts = info.rto_count,
                    consecutive = info.consecutive_retransmissions,
                    rto_ms = u64::try_from(info.rto.as_millis()).unwrap_or(u64::MAX),
                    "retransmission timeout"
                );
                *seen = info.rto_count;
            }
            true
        });
    }

    fn report_drops(&mut self, driver: &DriverCounters, endpoint: &EndpointCounters) {
        if *driver != self.driver {
            let (now, was) = (driver, &self.driver);
            for (reason, now, was) in [
                ("truncated", now.dropped_truncated, was.dropped_truncated),
                ("bad IP header", now.dropped_bad_header, was.dropped_bad_header),
                ("bad IPv4 checksum", now.dropped_bad_checksum, was.dropped_bad_checksum),
                ("bad TCP checksum", now.dropped_bad_tcp_checksum, was.dropped_bad_tcp_checksum),
                ("not TCP", now.dropped_not_tcp, was.dropped_not_tcp),
                ("fragment", now.dropped_fragment, was.dropped_fragment),
                (
                    "IPv6 extension header refused",
                    now.dropped_ipv6_extension,
                    was.dropped_ipv6_extension,
                ),
                ("not our address", now.dropped_not_ours, was.dropped_not_ours),
                ("filtered", now.filtered, was.filtered),
                ("send error", now.send_errors, was.send_errors),
                ("malformed ICMP", now.dropped_icmp_malformed, was.dropped_icmp_malformed),
                ("ICMP not about us", now.dropped_icmp_not_ours, was.dropped_icmp_not_ours),
                ("other-packet queue full", now.other_packets_dropped, was.other_packets_dropped),
            ] {
                if now > was {
                    debug!(target: "tcp_proto::driver", reason, count = now - was, "packets dropped");
                }
            }
            self.driver = *driver;
        }
        if *endpoint != self.endpoint {
            let (now, was) = (endpoint, &self.endpoint);
            for (reason, now, was) in [
                ("malformed segment", now.dropped_malformed, was.dropped_malformed),
                ("bad address", now.dropped_bad_address, was.dropped_bad_address),
                ("SYN queue full", now.syn_queue_full, was.syn_queue_full),
                ("accept queue full", now.accept_queue_full, was.accept_queue_full),
                ("connection limit", now.refused_by_limit, was.refused_by_limit),
                ("deferred backlog full", now.incoming_dropped, was.incoming_dropped),
                ("ICMP error not believed", now.icmp_dropped, was.icmp_dropped),
            ] {
                if now > was {
                    debug!(target: "tcp_proto::driver", reason, count = now - was, "segments dropped");
                }
            }
            if now.rsts_sent > was.rsts_sent {
                debug!(
                    target: "tcp_proto::driver",
                    count = now.rsts_sent - was.rsts_sent,
                    "resets sent (segments for no connection or listener)"
                );
            }
            if now.events_dropped > was.events_dropped {
                warn!(
                    target: "tcp_proto::driver",
                    count = now.events_dropped - was.events_dropped,
                    "endpoint events dropped (queue full)"
                );
            }
            self.endpoint = *endpoint;
        }
    }
}
