//! The async stack's statistics and `tracing` events: `TcpStream::info` after a transfer
//! between two stacks on an in-memory link, and the events a collecting subscriber sees for
//! an established, closed and refused connection. Paused time, so nothing depends on the
//! machine's speed.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tcp_proto::stack::{
    ChannelDevice, Device, PacketBatch, Stack, StackConfig, TcpListener, TcpStream, channel,
};
use tcp_proto::{Config, EndpointConfig, State};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::field::{Field, Visit};
use tracing::span;

const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

fn stack(address: Ipv4Addr, device: impl Device + 'static) -> Stack {
    let last = address.octets()[3];
    let config =
        StackConfig::new(EndpointConfig::new(Config::new([last; 16]), [last; 16]), address.into());
    let (stack, driver) = Stack::new(config, device);
    tokio::spawn(driver);
    stack
}

fn b_addr(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(B), port)
}

/// Every event as `LEVEL message field=value …`.
#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<String>>>);

struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, " {value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

/// The process's one subscriber: each event goes to the collector the thread installed
/// (`#[tokio::test]` runs its runtime on the test's own thread). One global subscriber
/// rather than one `set_default` per test: tracing caches each callsite's interest globally,
/// and a callsite first hit by a test without a subscriber while another test installs its
/// own may stay cached as "never" for that one (a race between parallel tests).
struct Router;

thread_local! {
    static CURRENT: std::cell::RefCell<Option<Collect>> = const { std::cell::RefCell::new(None) };
}

impl tracing::Subscriber for Router {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }
    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let Some(collect) = CURRENT.with(|current| current.borrow().clone()) else { return };
        let mut line = Line(event.metadata().level().to_string());
        event.record(&mut line);
        collect.0.lock().unwrap().push(line.0);
    }
    fn enter(&self, _: &span::Id) {}
    fn exit(&self, _: &span::Id) {}
}

impl Collect {
    /// A collector for the events of this thread from now on.
    fn install() -> Self {
        static GLOBAL: std::sync::Once = std::sync::Once::new();
        GLOBAL.call_once(|| tracing::subscriber::set_global_default(Router).unwrap());
        let collect = Self::default();
        CURRENT.with(|current| *current.borrow_mut() = Some(collect.clone()));
        collect
    }

    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

#[tokio::test(start_paused = true)]
async fn stream_info_counts_a_transfer_both_ways() {
    let (device_a, device_b) = channel(4096);
    let (a, b) = (stack(A, device_a), stack(B, device_b));
    let listener = TcpListener::bind(&b, b_addr(80)).await.unwrap();
    let (client, accepted) = tokio::join!(TcpStream::connect(&a, b_addr(80)), listener.accept());
    let (mut client, (mut server, _)) = (client.unwrap(), accepted.unwrap());
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let writer = tokio::spawn(async move {
        client.write_all(&data).await.unwrap();
        client.shutdown().await.unwrap();
        client
    });
    let mut received = Vec::new();
    server.read_to_end(&mut received).await.unwrap();
    assert_eq!(received.len(), 300_000);
    let client = writer.await.unwrap();
    // Everything read, so acknowledged once the last ACK is through.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (sent, got) = (client.info().unwrap(), server.info().unwrap());
    assert_eq!((sent.state, got.state), (State::FinWait2, State::CloseWait));
    // On paused time the RTT measures 0, so tail loss probes go whenever the tasks wait; a
    // probe that resends data is counted as a retransmission, outside a fast recovery, and the
    // peer reports the duplicate with a D-SACK.
    assert_eq!(sent.bytes_acked, 300_000);
    assert_eq!(sent.bytes_sent, 300_000 + sent.bytes_retransmitted);
    assert_eq!((sent.fast_retransmits, sent.recoveries, sent.rto_count), (0, 0, 0));
    assert_eq!(sent.other_retransmits, sent.retransmitted_segments);
    assert_eq!(sent.dsacks_received, sent.retransmitted_segments);
    assert_eq!((got.bytes_received, got.recv_queued, got.bytes_acked), (300_000, 0, 0));
    // The figures `status` also has are the same.
    // The halves of a split stream report the same connection.
    let (read_half, write_half) = server.into_split();
    assert_eq!(read_half.info().unwrap(), got);
    assert_eq!(write_half.info().unwrap(), got);
    let status = client.status().unwrap();
    assert_eq!((sent.cwnd, sent.srtt, sent.mss), (status.cwnd, status.srtt, status.effective_mss));
}

#[tokio::test(start_paused = true)]
async fn tracing_reports_connections_established_closed_and_refused() {
    let collect = Collect::install();
    let (device_a, device_b) = channel(4096);
    let (a, b) = (stack(A, device_a), stack(B, device_b));
    let listener = TcpListener::bind(&b, b_addr(80)).await.unwrap();
    let (client, accepted) = tokio::join!(TcpStream::connect(&a, b_addr(80)), listener.accept());
    let (mut client, (mut server, _)) = (client.unwrap(), accepted.unwrap());
    client.write_all(b"hello").await.unwrap();
    client.shutdown().await.unwrap();
    let mut got = Vec::new();
    server.read_to_end(&mut got).await.unwrap();
    server.shutdown().await.unwrap();
    drop(server);
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).await.unwrap();
    drop(client);
    // Nothing listens on port 81: B answers the SYN with a RST.
    let refused = TcpStream::connect(&a, b_addr(81)).await.unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let lines = collect.lines();
    let count = |needle: &str| lines.iter().filter(|line| line.contains(needle)).count();
    // One on each side, for the one connection that was made.
    assert_eq!(count("DEBUG connection established"), 2, "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.contains("connection established")
            && l.contains("flow=\"10.0.0.1:")
            && l.contains("-> 10.0.0.2:80")),
        "{lines:#?}"
    );
    // Both sides: B's once its FIN is acknowledged, A's as it enters TIME-WAIT.
    assert_eq!(count("DEBUG connection closed"), 2, "{lines:#?}");
    assert_eq!(count("INFO connection ended"), 1, "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.contains("connection ended") && l.contains("connection refused"))
    );
    assert_eq!(count("DEBUG resets sent"), 1, "{lines:#?}");
}

/// A device that loses everything it is given to send once `lose` is set.
struct Lossy {
    device: ChannelDevice,
    lose: Arc<AtomicBool>,
}

impl Device for Lossy {
    fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        packets: &mut PacketBatch,
    ) -> Poll<std::io::Result<()>> {
        self.device.poll_recv(cx, packets)
    }

    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        packets: &mut PacketBatch,
    ) -> Poll<std::io::Result<()>> {
        if self.lose.load(Ordering::Relaxed) {
            while let Some(packet) = packets.take_front() {
                packets.recycle(packet);
            }
            return Poll::Ready(Ok(()));
        }
        self.device.poll_send(cx, packets)
    }
}

/// Everything A sends is lost after the handshake: its data segment goes again on each
/// retransmission timeout, and each timeout is one `info` event for that stream, with the
/// count so far.
#[tokio::test(start_paused = true)]
async fn tracing_reports_each_retransmission_timeout_of_a_stream() {
    let collect = Collect::install();
    let (device_a, device_b) = channel(4096);
    let lose = Arc::new(AtomicBool::new(false));
    let a = stack(A, Lossy { device: device_a, lose: Arc::clone(&lose) });
    let b = stack(B, device_b);
    let listener = TcpListener::bind(&b, b_addr(80)).await.unwrap();
    let (client, accepted) = tokio::join!(TcpStream::connect(&a, b_addr(80)), listener.accept());
    let (mut client, _server) = (client.unwrap(), accepted.unwrap());
    lose.store(true, Ordering::Relaxed);
    client.write_all(b"lost").await.unwrap();
    // The handshake's RTT sample is 0 on paused time, so the RTO is the 200 ms floor, then
    // doubles: timeouts at 0.2, 0.6, 1.4 and 3.0 s (after a tail loss probe), the fifth not
    // before 6.2 s.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let info = client.info().unwrap();
    assert_eq!(info.rto_count, 4, "{info:?}");
    let lines = collect.lines();
    let timeouts: Vec<&String> =
        lines.iter().filter(|l| l.contains("INFO retransmission timeout")).collect();
    assert_eq!(timeouts.len() as u64, info.rto_count, "{lines:#?}");
    for (n, line) in timeouts.iter().enumerate() {
        assert!(line.contains(&format!("timeouts={} ", n + 1)), "{line}");
        assert!(line.contains(&format!("rto_ms={}", 400 << n)), "{line}");
        assert!(line.contains("handle=ConnectionHandle { index: 0, generation: 0 }"), "{line}");
    }
}
