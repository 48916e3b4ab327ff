//! Per-connection configuration, with defaults and the RFC text that justifies each.

use core::time::Duration;

use crate::congestion::CongestionAlgorithm;
use crate::seq::{SeqNum, WindowScale};
use crate::wire::checksum::ChecksumCapabilities;

/// Where initial sequence numbers come from (RFC 9293 §3.4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IsnSource {
    /// RFC 6528: a 4 µs clock plus SipHash-2-4 of the 4-tuple under this secret (MUST-8,
    /// SHLD-1, MUST-9). The secret must be random and kept private; adapters fill it from the OS.
    Keyed {
        /// The PRF key.
        secret: [u8; 16],
    },
    /// Always this ISN. For tests and simulators only: on a real network a predictable ISN lets
    /// off-path attackers inject segments (RFC 9293 §3.4.1, RFC 6528).
    Fixed(SeqNum),
}

/// Keep-alive settings (RFC 9293 §3.8.4). Keep-alives are off unless the application turns
/// them on (MUST-24, MUST-25).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeepAlive {
    /// Idle time before the first probe (MUST-27; the default is 2 hours, MUST-28).
    pub idle: Duration,
    /// Time between unanswered probes.
    pub interval: Duration,
    /// Unanswered probes before the connection is declared dead; more than one, because a
    /// single lost probe proves nothing (MUST-29).
    pub probes: u32,
}

impl Default for KeepAlive {
    /// Two hours idle (MUST-28), then a probe every 75 s, dead after 9 unanswered (as Linux).
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(2 * 60 * 60),
            interval: Duration::from_secs(75),
            probes: 9,
        }
    }
}

/// Per-connection settings. Build with [`Config::new`] and adjust the public fields.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Source of initial sequence numbers.
    pub isn: IsnSource,
    /// Initial send buffer size in octets: `send` accepts at most this much unacknowledged
    /// data until the buffer grows (see `send_buffer_max`). Allocated on first use, so an idle
    /// connection holds no payload memory.
    pub send_buffer: usize,
    /// Initial receive buffer size in octets; it bounds the advertised window until the buffer
    /// grows (see `recv_buffer_max`). A buffer whose window needs a scale shift holds up to
    /// 256 × (2^shift − 1) octets more (at most 1/16 of it), so that rounding the window
    /// field up need not move the right edge left (SHLD-14).
    pub recv_buffer: usize,
    /// Ceiling of receive-buffer auto-tuning, in octets (default 16 MiB). Once per round trip
    /// the connection measures how much the application read; when that grew, the buffer —
    /// and so the window it advertises — grows to about twice the amount plus room for a
    /// sender in slow start to double again (Linux's receive-buffer moderation), by doubling
    /// at least, never past this. An application that does not read does not grow it.
    ///
    /// Auto-tuning is off when this is at most `recv_buffer`: the buffer then stays at
    /// `recv_buffer`, which is how an embedded user pins memory (and today's footprint).
    ///
    /// The window-scale shift on our SYN is chosen for this ceiling, not for the initial
    /// buffer, since the option cannot change after the handshake (RFC 7323 §2.2): 16 MiB
    /// asks for a shift of 9, so windows count in 512-octet units.
    ///
    /// Why 16 MiB (where 4–8 MiB is common advice): a path must be offered its whole
    /// bandwidth-delay product *plus* the bottleneck's queue for a sender to fill it. At
    /// 1 Gbit/s × 100 ms the product alone is 12.5 MB, so an 8 MiB window caps that path at
    /// about 0.67 of its rate; 16 MiB leaves room for the product and a queue of a few MB.
    /// A connection's buffer only grows this far where the rate × RTT calls for it, and an
    /// [`crate::Endpoint`] bounds the growth of all its connections together
    /// (`EndpointConfig::buffer_memory_limit`).
    pub recv_buffer_max: usize,
    /// Ceiling of send-buffer growth, in octets (default 16 MiB). When `send` could not take
    /// everything offered, the buffer grows (doubling at least) to keep about twice the
    /// congestion window writable — one window in flight and one queued behind it — so a bulk
    /// sender is never limited by its own buffer; never past this. Growth is off when this is
    /// at most `send_buffer`.
    pub send_buffer_max: usize,
    /// The MTU of the path's first hop. Our MSS option is derived from it (RFC 9293 §3.7.1,
    /// MUST-67: MSS = MTU − IP header − 20), and so is the effective send MSS (MUST-16).
    pub mtu: u16,
    /// Maximum segment lifetime; TIME-WAIT lasts 2×MSL (RFC 9293 §3.4.2: MSL is 2 minutes;
    /// MUST-13).
    pub msl: Duration,
    /// RTO before any RTT sample (RFC 6298 (2.1): 1 s).
    pub rto_initial: Duration,
    /// Lower bound of the RTO. RFC 6298 (2.4) says 1 s (a SHOULD); the default is Linux's
    /// 200 ms, a recorded deviation (`docs/conformance.md`): with SACK, RACK and tail loss
    /// probes, a timeout is left for the rare double loss (a retransmission and the segments
    /// or ACKs that would reveal it), and there the 1 s floor, not the path, set the pace —
    /// measured over a TUN device against Linux at 5 % loss, 16 MiB took 10 s with a 1 s
    /// floor and the kernel's own timeouts wait 200 ms. Set 1 s for the RFC's value.
    pub rto_min: Duration,
    /// Upper bound of the RTO (RFC 6298 (2.5): at least 60 s), so backoff never overflows.
    pub rto_max: Duration,
    /// R1: after this many retransmissions of one segment the connection tells the user
    /// (RFC 9293 §3.8.3, MUST-20, SHLD-10: at least 3).
    pub r1_retransmissions: u32,
    /// R2 for data segments: give up after retransmitting for this long (MUST-20, SHLD-11:
    /// at least 100 s). `None` retransmits forever (MUST-21 lets the application choose, per
    /// connection too: `Connection::set_r2_data`).
    pub r2_data: Option<Duration>,
    /// R2 for SYN segments (MUST-23: at least 3 minutes).
    pub r2_syn: Option<Duration>,
    /// User timeout (RFC 9293 §3.10.8): the connection is aborted when data stays
    /// unacknowledged this long. `None` leaves it to R2. Settable per connection later with
    /// `Connection::set_user_timeout` (MUST-21).
    pub user_timeout: Option<Duration>,
    /// How long a fully closed connection may sit in FIN-WAIT-2 waiting for the peer's FIN. Not
    /// in RFC 9293 (a half-closed connection waits forever); Linux's `tcp_fin_timeout` is 60 s.
    pub fin_wait_2_timeout: Option<Duration>,
    /// Keep-alive probing; `None` (the default, MUST-25) sends none. Settable per connection
    /// later with `Connection::set_keepalive` (MUST-24).
    pub keepalive: Option<KeepAlive>,
    /// Whether [`crate::Event::StateChanged`] is reported. Always for a standalone connection;
    /// an [`crate::Endpoint`]'s connections only with
    /// [`crate::EndpointConfig::state_events`] (the endpoint sets this in its template), since
    /// they are ten of the nineteen events a short connection's two ends report, and few
    /// applications read them.
    pub(crate) state_events: bool,
    /// TTL / hop limit for this connection's packets (RFC 9293 MUST-49: configurable).
    pub ttl: u8,
    /// Differentiated Services field for this connection's packets (MUST-48); changeable
    /// later with `Connection::set_ds_field` (SHLD-21).
    pub ds_field: u8,
    /// Report soft ICMP errors to the application as events (MUST-47); `false` turns the
    /// reports off (SHLD-20).
    pub report_soft_errors: bool,
    /// Offer window scaling (RFC 7323 §2), needed for windows beyond 64 KiB. Used only when
    /// both SYNs carry the option; turn it off for paths with middleboxes that mangle it.
    pub window_scaling: bool,
    /// Offer the timestamps option (RFC 7323 §3): an RTT sample from every ACK of new data,
    /// retransmissions included (RTTM, §4), and protection against old duplicates once sequence
    /// numbers wrap (PAWS, §5). Used only when both SYNs carry the option; then every segment
    /// carries its 12 octets (the effective MSS is that much smaller, MUST-16). Switchable per
    /// connection before its handshake with `Connection::set_timestamps`. On by default.
    pub timestamps: bool,
    /// Offer selective acknowledgments (RFC 2018): SACK-permitted on our SYN, SACK blocks (and
    /// RFC 2883 D-SACK) on our ACKs, and SACK-based loss recovery (RFC 6675 with RFC 8985
    /// RACK-TLP) for what we send. Used only when both SYNs carry SACK-permitted; switchable per
    /// connection before its handshake with `Connection::set_sack`. On by default.
    pub sack: bool,
    /// Turn Nagle's algorithm off (RFC 9293 §3.7.4, SHLD-7, MUST-17); settable per connection
    /// later with `Connection::set_nodelay`. Default: Nagle on (`false`).
    pub nodelay: bool,
    /// Delayed ACK (SHLD-18): in-order data is acknowledged within this time, or at once when
    /// two full-sized segments are unacknowledged (SHLD-19). `None` ACKs every segment at
    /// once. MUST-40 asks for less than 0.5 s: values above 490 ms are clamped to 490 ms, 10 ms
    /// below the bound so that a caller whose timer wakes a little late still meets it.
    pub delayed_ack: Option<Duration>,
    /// RFC 5961 §7: at most this many challenge ACKs per `challenge_ack_interval`, per
    /// connection (never a host-wide counter: CVE-2016-5696).
    pub challenge_ack_limit: u32,
    /// The window of the challenge-ACK rate limit.
    pub challenge_ack_interval: Duration,
    /// Fall back to a smaller path MTU when ICMP "packet too big" never comes (a black hole,
    /// RFC 2923 §2.1): after two retransmission timeouts in a row of a segment that a smaller
    /// step would shrink (two more when duplicate ACKs showed later segments getting through),
    /// the path MTU drops to 1200 and then 576 octets over IPv4 (RFC 8899 §5.1.2's
    /// BASE_PLPMTU, then the IPv4 minimum) or 1280 over IPv6 (RFC 4821 §7.7, RFC 8899 §4.3),
    /// for the rest of the connection. On by default.
    pub black_hole_fallback: bool,
    /// The congestion controller of new connections: CUBIC (RFC 9438, with HyStart++, RFC
    /// 9406) by default, as in Linux, or NewReno (RFC 5681, RFC 6582).
    /// `Connection::set_congestion_control` installs any other.
    pub congestion: CongestionAlgorithm,
    /// Which checksums the device computes or verifies, so that the connection skips them:
    /// by default none ([`ChecksumCapabilities::SOFTWARE`]), so every segment sent gets its
    /// checksum (MUST-2) and an [`crate::Endpoint`] verifies every one that arrives (MUST-3).
    /// Set anything else only for a device that does the skipped part. An endpoint uses its
    /// `EndpointConfig::connection` value to verify arriving segments and for its replies to
    /// strays; a [`crate::Connection`] fed by its owner gets segments already parsed, so its
    /// owner verifies them (`Segment::parse_with_checksum`).
    pub checksum: ChecksumCapabilities,
}

impl Config {
    /// The defaults, with ISNs from the keyed PRF under `isn_secret`.
    pub fn new(isn_secret: [u8; 16]) -> Self {
        Self {
            isn: IsnSource::Keyed { secret: isn_secret },
            send_buffer: 64 * 1024,
            recv_buffer: 64 * 1024,
            recv_buffer_max: 16 * 1024 * 1024,
            send_buffer_max: 16 * 1024 * 1024,
            mtu: 1500,
            msl: Duration::from_secs(120),
            rto_initial: Duration::from_secs(1),
            rto_min: Duration::from_millis(200),
            rto_max: Duration::from_secs(120),
            r1_retransmissions: 3,
            r2_data: Some(Duration::from_secs(100)),
            r2_syn: Some(Duration::from_secs(180)),
            user_timeout: None,
            fin_wait_2_timeout: Some(Duration::from_secs(60)),
            keepalive: None,
            state_events: true,
            ttl: 64,
            ds_field: 0,
            report_soft_errors: true,
            window_scaling: true,
            timestamps: true,
            sack: true,
            nodelay: false,
            delayed_ack: Some(Duration::from_millis(40)),
            challenge_ack_limit: 10,
            challenge_ack_interval: Duration::from_secs(1),
            black_hole_fallback: true,
            congestion: CongestionAlgorithm::Cubic,
            checksum: ChecksumCapabilities::SOFTWARE,
        }
    }

    /// The MSS we advertise on SYNs from `local` (MUST-67: MTU − IP header − 20).
    pub(crate) fn advertised_mss(&self, local: core::net::SocketAddr) -> u16 {
        let ip_header = if local.is_ipv4() { 20 } else { 40 };
        self.mtu.saturating_sub(ip_header).saturating_sub(20)
    }

    /// The largest the receive buffer may grow to (auto-tuning off: the initial size).
    pub(crate) fn recv_buffer_ceiling(&self) -> usize {
        self.recv_buffer_max.max(self.recv_buffer)
    }

    /// The largest the send buffer may grow to (growth off: the initial size).
    pub(crate) fn send_buffer_ceiling(&self) -> usize {
        self.send_buffer_max.max(self.send_buffer)
    }

    /// The window-scale shift our SYN offers: the smallest that lets the receive buffer's
    /// ceiling be advertised, since the shift cannot change later (RFC 7323 §2.2).
    pub(crate) fn recv_window_scale(&self) -> WindowScale {
        WindowScale::for_buffer(self.recv_buffer_ceiling())
    }

    /// The defaults with a fixed ISN: for tests and simulators only (see [`IsnSource::Fixed`]).
    pub fn with_fixed_isn(iss: SeqNum) -> Self {
        Self { isn: IsnSource::Fixed(iss), ..Self::new([0; 16]) }
    }
}
