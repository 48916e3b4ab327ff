//! The async stack (feature `tokio`): two `Stack`s joined by an in-memory device, driven by
//! tokio's test runtime. Timing-dependent tests run on paused time (timers fire when every
//! task waits, not after real time), so none depends on the machine's speed.

use std::io::{self, IoSlice};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tcp_proto::stack::{
    ChannelDevice, Device, IoDevice, OwnedReadHalf, OwnedWriteHalf, PacketBatch, ReadHalf, Stack,
    StackConfig, StackDriver, TcpListener, TcpStream, WriteHalf, channel,
};
use tcp_proto::{Config, EndpointConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const PORT: u16 = 80;

const FIN: u8 = 0x01;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

fn stack_config(address: Ipv4Addr, tune: fn(&mut Config)) -> StackConfig {
    let last = address.octets()[3];
    let mut connection = Config::new([last; 16]);
    tune(&mut connection);
    StackConfig::new(EndpointConfig::new(connection, [last + 100; 16]), IpAddr::V4(address))
}

/// A device that records every packet it hands on.
struct Tap {
    device: ChannelDevice,
    sent: Arc<Mutex<Vec<Vec<u8>>>>,
    /// Packets at the front of the batch recorded by an earlier call.
    recorded: usize,
}

impl Device for Tap {
    fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        packets: &mut PacketBatch,
    ) -> Poll<io::Result<()>> {
        self.device.poll_recv(cx, packets)
    }

    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        packets: &mut PacketBatch,
    ) -> Poll<io::Result<()>> {
        let mut sent = self.sent.lock().unwrap();
        sent.extend(packets.iter().skip(self.recorded).map(<[u8]>::to_vec));
        drop(sent);
        let result = self.device.poll_send(cx, packets);
        self.recorded = packets.len();
        result
    }
}

/// Two stacks, A and B, on one in-memory link; B's packets are recorded.
struct Net {
    a: Stack,
    b: Stack,
    b_sent: Arc<Mutex<Vec<Vec<u8>>>>,
    a_driver: JoinHandle<io::Result<()>>,
    b_driver: JoinHandle<io::Result<()>>,
}

fn net_with(tune: fn(&mut Config)) -> Net {
    net_with_queues(
        tune,
        StackConfig::new(EndpointConfig::new(Config::new([0; 16]), [0; 16]), IpAddr::V4(A))
            .queue_packets,
    )
}

/// As [`net_with`], with `queue_packets` packets of queue each way in each stack.
fn net_with_queues(tune: fn(&mut Config), queue_packets: usize) -> Net {
    let (device_a, device_b) = channel(4096);
    let mut config_a = stack_config(A, tune);
    config_a.queue_packets = queue_packets;
    let (a, a_driver) = Stack::new(config_a, device_a);
    let b_sent = Arc::new(Mutex::new(Vec::new()));
    let tap = Tap { device: device_b, sent: Arc::clone(&b_sent), recorded: 0 };
    let mut config_b = stack_config(B, tune);
    config_b.queue_packets = queue_packets;
    let (b, b_driver) = Stack::new(config_b, tap);
    Net { a, b, b_sent, a_driver: tokio::spawn(a_driver), b_driver: tokio::spawn(b_driver) }
}

fn net() -> Net {
    net_with(|_| {})
}

fn b_addr(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(B), port)
}

/// A connection from A to B's port 80: (A's stream, B's stream).
async fn connected(net: &Net) -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind(&net.b, b_addr(PORT)).await.unwrap();
    let (client, accepted) =
        tokio::join!(TcpStream::connect(&net.a, b_addr(PORT)), listener.accept());
    let client = client.unwrap();
    let (server, peer) = accepted.unwrap();
    assert_eq!(peer, client.local_addr().unwrap());
    assert_eq!(server.peer_addr().unwrap(), client.local_addr().unwrap());
    assert_eq!(server.local_addr().unwrap(), b_addr(PORT));
    assert_eq!(client.peer_addr().unwrap(), b_addr(PORT));
    (client, server)
}

/// Runs a paused-time test body, failing it (rather than hanging) if it is still waiting
/// after an hour of virtual time: on paused time a task that waits for a wakeup that never
/// comes lets the clock run to this deadline at once.
async fn guarded(body: impl Future<Output = ()>) {
    tokio::time::timeout(Duration::from_secs(3600), body)
        .await
        .expect("stuck: a task waits for a wakeup that never comes");
}

/// (TCP flags, payload length) of each IPv4 packet.
fn segments(packets: &[Vec<u8>]) -> Vec<(u8, usize)> {
    packets
        .iter()
        .map(|packet| {
            let ihl = usize::from(packet[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
            let tcp = &packet[ihl..total];
            let data_offset = usize::from(tcp[12] >> 4) * 4;
            (tcp[13], tcp.len() - data_offset)
        })
        .collect()
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 11) as u8).collect()
}

/// Writes all of `data` in vectored writes of three slices of uneven sizes.
async fn write_all_vectored(half: &mut OwnedWriteHalf, data: &[u8]) {
    let mut offset = 0;
    while offset < data.len() {
        let rest = &data[offset..];
        let (first, rest) = rest.split_at(rest.len().min(1000));
        let (second, rest) = rest.split_at(rest.len().min(7000));
        let third = &rest[..rest.len().min(20_000)];
        let slices = [IoSlice::new(first), IoSlice::new(second), IoSlice::new(third)];
        let n = half.write_vectored(&slices).await.unwrap();
        assert!(n > 0);
        offset += n;
    }
}

#[test]
fn every_handle_and_the_driver_are_send_and_static() {
    fn send_static<T: Send + 'static>() {}
    fn send_sync_static<T: Send + Sync + 'static>() {}
    send_sync_static::<Stack>();
    send_static::<StackDriver>();
    send_sync_static::<TcpStream>();
    send_sync_static::<TcpListener>();
    send_sync_static::<OwnedReadHalf>();
    send_sync_static::<OwnedWriteHalf>();
    send_static::<ReadHalf<'static>>();
    send_static::<WriteHalf<'static>>();
    send_static::<ChannelDevice>();
    send_static::<IoDevice<tokio::io::DuplexStream>>();
}

#[test]
fn a_stack_made_outside_a_runtime_runs_inside_one() {
    let (device_a, device_b) = channel(64);
    let (a, driver_a) = Stack::new(stack_config(A, |_| {}), device_a);
    let (b, driver_b) = Stack::new(stack_config(B, |_| {}), device_b);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async move {
        tokio::spawn(driver_a);
        tokio::spawn(driver_b);
        let listener = TcpListener::bind(&b, b_addr(PORT)).await.unwrap();
        let (client, accepted) =
            tokio::join!(TcpStream::connect(&a, b_addr(PORT)), listener.accept());
        let (mut client, (mut server, _)) = (client.unwrap(), accepted.unwrap());
        client.write_all(b"ping").await.unwrap();
        let mut ping = [0; 4];
        server.read_exact(&mut ping).await.unwrap();
        assert_eq!(&ping, b"ping");
    });
}

#[tokio::test(start_paused = true)]
async fn four_mib_each_way_arrive_byte_exact_through_async_read_and_vectored_writes() {
    guarded(async move {
        const LEN: usize = 4 << 20;
        let net = net();
        let (client, server) = connected(&net).await;
        assert!(tokio::io::AsyncWrite::is_write_vectored(&client));
        let (mut client_read, mut client_write) = client.into_split();
        let (mut server_read, mut server_write) = server.into_split();
        let up = tokio::spawn(async move {
            write_all_vectored(&mut client_write, &pattern(LEN, 1)).await;
            client_write.shutdown().await.unwrap();
        });
        let down = tokio::spawn(async move {
            server_write.write_all(&pattern(LEN, 2)).await.unwrap();
            server_write.shutdown().await.unwrap();
        });
        let mut received_up = Vec::new();
        let mut received_down = Vec::new();
        let (r1, r2) = tokio::join!(
            server_read.read_to_end(&mut received_up),
            client_read.read_to_end(&mut received_down)
        );
        assert_eq!(r1.unwrap(), LEN);
        assert_eq!(r2.unwrap(), LEN);
        assert!(received_up == pattern(LEN, 1), "A→B bytes differ");
        assert!(received_down == pattern(LEN, 2), "B→A bytes differ");
        up.await.unwrap();
        down.await.unwrap();
        assert_eq!(net.a.driver_counters().send_errors, 0, "no packet dropped on the way out");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_flush_larger_than_the_packet_queue_loses_no_packet() {
    guarded(async move {
        const LEN: usize = 1 << 20;
        // Four packets of queue: a window of data comes out of one flush, far more than four.
        let net = net_with_queues(|_| {}, 4);
        let (mut client, mut server) = connected(&net).await;
        let writer = tokio::spawn(async move {
            client.write_all(&pattern(LEN, 8)).await.unwrap();
            client.shutdown().await.unwrap();
            client
        });
        let mut received = Vec::new();
        server.read_to_end(&mut received).await.unwrap();
        assert!(received == pattern(LEN, 8));
        let client = writer.await.unwrap();
        assert_eq!(net.a.driver_counters().send_errors, 0);
        assert_eq!(client.status().unwrap().total_retransmissions, 0);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn write_bytes_queues_chunks_by_reference_and_they_arrive_byte_exact() {
    guarded(async move {
        const LEN: usize = 1 << 20;
        let net = net_with(small_buffers);
        let (client, mut server) = connected(&net).await;
        let (_read, write) = client.into_split();
        let data = bytes::Bytes::from(pattern(LEN, 9));
        let sent = data.clone();
        // 1 MiB through a 64 KiB send buffer: the writer waits for room many times.
        let writer = tokio::spawn(async move {
            write.write_bytes(sent.slice(..1000)).await.unwrap();
            write.write_bytes(sent.slice(1000..)).await.unwrap();
            write
        });
        let mut received = vec![0; LEN];
        server.read_exact(&mut received).await.unwrap();
        assert!(received == data);
        let write = writer.await.unwrap();
        drop(write);
        assert_eq!(server.read(&mut [0; 8]).await.unwrap(), 0, "the write half's drop sent FIN");
    })
    .await;
}

/// Send and receive buffers pinned at 64 KiB (no growth).
fn small_buffers(config: &mut Config) {
    config.send_buffer = 64 * 1024;
    config.send_buffer_max = 64 * 1024;
    config.recv_buffer = 64 * 1024;
    config.recv_buffer_max = 64 * 1024;
}

#[tokio::test(start_paused = true)]
async fn a_writer_blocks_on_a_full_send_buffer_and_resumes_when_the_peer_reads() {
    guarded(async move {
        const TOTAL: usize = 1 << 20;
        let net = net_with(small_buffers);
        let (mut client, mut server) = connected(&net).await;
        let written = Arc::new(AtomicUsize::new(0));
        let progress = Arc::clone(&written);
        let writer = tokio::spawn(async move {
            let data = pattern(TOTAL, 3);
            let mut offset = 0;
            while offset < TOTAL {
                offset += client.write(&data[offset..]).await.unwrap();
                progress.store(offset, Ordering::SeqCst);
            }
            client.shutdown().await.unwrap();
            client
        });
        // Time runs only while every task waits: the writer is parked, not spinning.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let stalled = written.load(Ordering::SeqCst);
        assert!(!writer.is_finished());
        // The peer's receive buffer (64 KiB) and our send buffer (64 KiB) are full; nothing more
        // is taken however long the reader waits.
        assert!(stalled >= 64 * 1024, "only {stalled} written");
        assert!(stalled <= 2 * 64 * 1024 + 1, "{stalled} written past both buffers");
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(written.load(Ordering::SeqCst), stalled, "the writer stays blocked");
        assert!(!writer.is_finished());
        // The reader drains: the writer resumes and finishes, every octet in order.
        let mut received = Vec::new();
        server.read_to_end(&mut received).await.unwrap();
        assert!(received == pattern(TOTAL, 3));
        writer.await.unwrap();
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn dropping_with_unread_data_resets_and_the_peer_reads_connection_reset() {
    guarded(async move {
        let net = net();
        let (mut client, server) = connected(&net).await;
        client.write_all(b"never read").await.unwrap();
        server.readable().await.unwrap();
        let before = net.b_sent.lock().unwrap().len();
        drop(server);
        let mut buf = [0; 16];
        let error = client.read(&mut buf).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::ConnectionReset);
        let after = segments(&net.b_sent.lock().unwrap()[before..]);
        assert_eq!(after, [(RST, 0)], "exactly one RST <SEQ=SND.NXT><CTL=RST> (§3.10.5), no FIN");
        // Writing after the reset reports it too.
        let error = client.write(b"more").await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::ConnectionReset);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn dropping_with_zero_linger_resets_even_with_nothing_unread() {
    guarded(async move {
        let net = net();
        let (mut client, server) = connected(&net).await;
        server.set_zero_linger(true).unwrap();
        assert!(server.zero_linger().unwrap());
        let before = net.b_sent.lock().unwrap().len();
        drop(server);
        let mut buf = [0; 16];
        let error = client.read(&mut buf).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::ConnectionReset);
        let after = segments(&net.b_sent.lock().unwrap()[before..]);
        assert_eq!(after, [(RST, 0)]);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn dropping_with_nothing_unread_closes_in_order_through_time_wait() {
    guarded(async move {
        let net = net();
        let (mut client, mut server) = connected(&net).await;
        client.write_all(b"read in full").await.unwrap();
        let mut buf = [0; 12];
        server.read_exact(&mut buf).await.unwrap();
        let before = net.b_sent.lock().unwrap().len();
        drop(server);
        let mut rest = Vec::new();
        assert_eq!(client.read_to_end(&mut rest).await.unwrap(), 0, "Ok(0) at the FIN");
        drop(client);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let after = segments(&net.b_sent.lock().unwrap()[before..]);
        // B's FIN (carrying the ACK of the data, delayed until then), then its ACK of A's FIN.
        assert_eq!(after, [(FIN | ACK, 0), (ACK, 0)]);
        // B closed first: it holds the 4-tuple in TIME-WAIT, with no stream left.
        assert_eq!(net.b.with_endpoint(|endpoint| endpoint.time_wait_count()), 1);
        assert_eq!(net.b.with_endpoint(|endpoint| endpoint.connection_count()), 0);
        assert_eq!(net.a.with_endpoint(|endpoint| endpoint.connection_count()), 0);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn half_close_shutdown_then_read_the_reply_and_ok_0_at_each_fin() {
    guarded(async move {
        let net = net();
        let (mut client, mut server) = connected(&net).await;
        client.write_all(b"request").await.unwrap();
        client.shutdown().await.unwrap();
        // Shutting down twice is harmless.
        client.shutdown().await.unwrap();
        let mut request = Vec::new();
        server.read_to_end(&mut request).await.unwrap();
        assert_eq!(request, b"request");
        // A write after our shutdown is a broken pipe.
        assert_eq!(client.write(b"late").await.unwrap_err().kind(), io::ErrorKind::BrokenPipe);
        let before = net.b_sent.lock().unwrap().len();
        server.write_all(b"reply").await.unwrap();
        server.shutdown().await.unwrap();
        let mut reply = Vec::new();
        client.read_to_end(&mut reply).await.unwrap();
        assert_eq!(reply, b"reply");
        assert_eq!(client.read(&mut [0; 8]).await.unwrap(), 0, "and again at the FIN");
        // The FIN came after the reply's data, never before it.
        let after = segments(&net.b_sent.lock().unwrap()[before..]);
        let data_at = after.iter().position(|&(_, len)| len == 5).unwrap();
        let fin_at = after.iter().position(|&(flags, _)| flags & FIN != 0).unwrap();
        assert!(data_at <= fin_at, "{after:?}");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_port_with_no_listener_refuses_and_a_silent_address_times_out() {
    guarded(async move {
        let net = net();
        let error = TcpStream::connect(&net.a, b_addr(81)).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused);
        let before = segments(&net.b_sent.lock().unwrap());
        assert_eq!(before, [(RST | ACK, 0)], "B answered the SYN with a RST");
        // Nobody owns 10.0.0.3: its SYNs go unanswered until the endpoint gives up.
        let silent = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3)), PORT);
        let error = TcpStream::connect(&net.a, silent).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        // B saw the SYN and its retransmissions, and dropped them as not its own.
        assert!(net.b.driver_counters().dropped_not_ours >= 2);
    })
    .await;
}

/// On two worker threads, where a wakeup racing a registration would be lost; a lost one
/// shows as a hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_echo_connections_lose_no_wakeup_on_two_threads() {
    echo_stress().await;
}

/// The same on one thread and paused time, where a lost wakeup fails the test at once.
#[tokio::test(start_paused = true)]
async fn two_hundred_concurrent_echo_connections_lose_no_wakeup_on_paused_time() {
    guarded(echo_stress()).await;
}

/// 200 connections at once, each echoing 24 KiB written in pieces, every one byte-exact.
async fn echo_stress() {
    const CONNECTIONS: usize = 200;
    const LEN: usize = 24 * 1024;
    let net = net();
    let listener = TcpListener::bind(&net.b, b_addr(7)).await.unwrap();
    let server = tokio::spawn(async move {
        let mut echoes = tokio::task::JoinSet::new();
        for _ in 0..CONNECTIONS {
            let (stream, _) = listener.accept().await.unwrap();
            echoes.spawn(async move {
                let (mut read, mut write) = stream.into_split();
                tokio::io::copy(&mut read, &mut write).await.unwrap();
                write.shutdown().await.unwrap();
            });
        }
        echoes.join_all().await;
    });
    let mut clients = tokio::task::JoinSet::new();
    for i in 0..CONNECTIONS {
        let stack = net.a.clone();
        clients.spawn(async move {
            let stream = TcpStream::connect(&stack, b_addr(7)).await.unwrap();
            let (mut read, mut write) = stream.into_split();
            let data = pattern(LEN, i as u8);
            let sent = data.clone();
            let writer = tokio::spawn(async move {
                for piece in sent.chunks(3000) {
                    write.write_all(piece).await.unwrap();
                }
                write.shutdown().await.unwrap();
            });
            let mut echoed = Vec::new();
            read.read_to_end(&mut echoed).await.unwrap();
            writer.await.unwrap();
            assert!(echoed == data, "connection {i}: echo differs");
        });
    }
    assert_eq!(clients.join_all().await.len(), CONNECTIONS);
    server.await.unwrap();
    // Every event reached the stack (none dropped from the endpoint's bounded queue).
    for stack in [&net.a, &net.b] {
        assert_eq!(stack.with_endpoint(|endpoint| endpoint.counters().events_dropped), 0);
    }
}

#[tokio::test(start_paused = true)]
async fn dropped_accept_read_and_write_futures_lose_nothing() {
    guarded(async move {
        let net = net_with(small_buffers);
        let listener = TcpListener::bind(&net.b, b_addr(PORT)).await.unwrap();
        // accept: pending, then dropped by the timeout.
        assert!(tokio::time::timeout(Duration::from_millis(10), listener.accept()).await.is_err());
        let (client, accepted) =
            tokio::join!(TcpStream::connect(&net.a, b_addr(PORT)), listener.accept());
        let mut client = client.unwrap();
        let (mut server, _) = accepted.unwrap();
        // read: pending, dropped; the data that comes later is all there for the next read.
        let mut buf = [0; 64];
        assert!(
            tokio::time::timeout(Duration::from_millis(10), server.read(&mut buf)).await.is_err()
        );
        client.write_all(b"after the dropped read").await.unwrap();
        server.read_exact(&mut buf[..22]).await.unwrap();
        assert_eq!(&buf[..22], b"after the dropped read");
        // write: fill the buffers until a write is pending and drop it; the peer receives exactly
        // what the completed writes reported, in order.
        let data = pattern(1 << 20, 4);
        let mut accepted_octets = 0;
        while let Ok(result) =
            tokio::time::timeout(Duration::from_millis(10), client.write(&data[accepted_octets..]))
                .await
        {
            accepted_octets += result.unwrap();
        }
        assert!(accepted_octets < data.len());
        client.shutdown().await.unwrap();
        let mut received = Vec::new();
        server.read_to_end(&mut received).await.unwrap();
        assert_eq!(received.len(), accepted_octets);
        assert!(received == data[..accepted_octets]);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn pending_and_later_calls_fail_when_the_driver_is_dropped() {
    guarded(async move {
        let net = net();
        let (mut client, _server) = connected(&net).await;
        let listener = TcpListener::bind(&net.a, SocketAddr::new(IpAddr::V4(A), 90)).await.unwrap();
        let (reader_done, reader_result) = tokio::sync::oneshot::channel();
        let reader = tokio::spawn(async move {
            let mut buf = [0; 8];
            let result = client.read(&mut buf).await.map_err(|error| error.kind());
            reader_done.send(result).unwrap();
            client
        });
        let acceptor =
            tokio::spawn(async move { listener.accept().await.map(|_| ()).map_err(|e| e.kind()) });
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert!(!reader.is_finished() && !acceptor.is_finished(), "both wait");
        net.a_driver.abort();
        assert!(net.a_driver.await.unwrap_err().is_cancelled());
        assert_eq!(reader_result.await.unwrap(), Err(io::ErrorKind::ConnectionAborted));
        assert_eq!(acceptor.await.unwrap(), Err(io::ErrorKind::ConnectionAborted));
        let mut client = reader.await.unwrap();
        assert_eq!(client.write(b"x").await.unwrap_err().kind(), io::ErrorKind::ConnectionAborted);
        let error = TcpStream::connect(&net.a, b_addr(PORT)).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::ConnectionAborted);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_device_error_stops_the_driver_and_fails_pending_reads() {
    guarded(async move {
        let net = net();
        let (mut client, server) = connected(&net).await;
        let reader = tokio::spawn(async move {
            let mut buf = [0; 8];
            client.read(&mut buf).await.map_err(|error| error.kind())
        });
        tokio::time::sleep(Duration::from_millis(1)).await;
        // B's driver goes, and with it the other end of A's device.
        net.b_driver.abort();
        let _ = net.b_driver.await;
        let error = net.a_driver.await.unwrap().unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::BrokenPipe);
        assert_eq!(reader.await.unwrap(), Err(io::ErrorKind::ConnectionAborted));
        drop(server);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn try_calls_peek_readiness_nodelay_and_split_halves() {
    guarded(async move {
        let net = net();
        let (mut client, server) = connected(&net).await;
        assert_eq!(client.try_read(&mut [0; 4]).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        assert!(!server.nodelay().unwrap());
        server.set_nodelay(true).unwrap();
        assert!(server.nodelay().unwrap());
        client.write_all(b"hello world").await.unwrap();
        server.readable().await.unwrap();
        // peek does not consume: twice the same, then a read returns it.
        let mut five = [0; 5];
        assert_eq!(server.peek(&mut five).await.unwrap(), 5);
        assert_eq!(&five, b"hello");
        assert_eq!(server.peek(&mut five).await.unwrap(), 5);
        assert_eq!(&five, b"hello");
        let mut all = [0; 11];
        let mut got = server.try_read(&mut all).unwrap();
        while got < 11 {
            server.readable().await.unwrap();
            got += server.try_read(&mut all[got..]).unwrap();
        }
        assert_eq!(&all, b"hello world");
        server.writable().await.unwrap();
        assert_eq!(server.try_write(b"abc").unwrap(), 3);
        let (mut read, mut write) = client.split();
        let mut abc = [0; 3];
        read.read_exact(&mut abc).await.unwrap();
        assert_eq!(&abc, b"abc");
        write.write_all(b"via the write half").await.unwrap();
        write.shutdown().await.unwrap();
        let mut server = server;
        let mut rest = Vec::new();
        server.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"via the write half");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn writable_and_readable_wait_for_room_and_data_and_wake_for_them() {
    guarded(async move {
        let net = net_with(small_buffers);
        let (client, mut server) = connected(&net).await;
        let client = Arc::new(client);
        // Fill both buffers with `try_write` until it would block.
        let mut written = 0;
        loop {
            match client.try_write(&[7; 4096]) {
                Ok(n) => written += n,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    // Perhaps only until the data in flight is acknowledged: let time pass.
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    match client.try_write(&[7; 4096]) {
                        Ok(n) => written += n,
                        Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                        Err(error) => panic!("{error}"),
                    }
                }
                Err(error) => panic!("{error}"),
            }
        }
        let waiter = Arc::clone(&client);
        let writable = tokio::spawn(async move { waiter.writable().await });
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(!writable.is_finished(), "no room, no wakeup");
        // The peer reads: acknowledgments free room and wake the writer.
        let mut buf = vec![0; written];
        server.read_exact(&mut buf).await.unwrap();
        writable.await.unwrap().unwrap();
        assert!(client.try_write(b"more").unwrap() > 0);
        // readable: pending with nothing to read, woken by data.
        let reader = tokio::spawn(async move {
            server.readable().await.unwrap();
            server
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        // "more" was written, so the reader may already be done; drain and wait again.
        let mut server = reader.await.unwrap();
        let mut more = [0; 4];
        server.read_exact(&mut more).await.unwrap();
        let reader = tokio::spawn(async move {
            server.readable().await.unwrap();
            server
        });
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(!reader.is_finished(), "nothing to read, no wakeup");
        assert_eq!(client.try_write(b"x").unwrap(), 1);
        let server = reader.await.unwrap();
        assert_eq!(server.try_read(&mut [0; 4]).unwrap(), 1);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn writable_wakes_a_writer_whose_buffer_filled_exactly_without_a_refused_write() {
    guarded(async move {
        let net = net_with(small_buffers);
        let (client, mut server) = connected(&net).await;
        // Fill the send buffer exactly, never offering more than fits: no write is refused,
        // so the endpoint owes no `Writable` event; only the stack's own check can wake.
        let capacity = client.status().unwrap().send_buffer;
        assert_eq!(client.try_write(&vec![1; capacity]).unwrap(), capacity);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let status = client.status().unwrap();
        assert!(status.send_queued < capacity, "the peer took some: {status:?}");
        let room = capacity - status.send_queued;
        assert_eq!(client.try_write(&vec![2; room]).unwrap(), room);
        assert_eq!(client.status().unwrap().send_queued, capacity);
        let client = Arc::new(client);
        let waiter = Arc::clone(&client);
        let writable = tokio::spawn(async move { waiter.writable().await });
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(!writable.is_finished(), "no room, no wakeup");
        let mut buf = vec![0; capacity + room];
        server.read_exact(&mut buf).await.unwrap();
        writable.await.unwrap().unwrap();
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn several_tasks_waiting_on_one_stream_or_listener_are_all_woken() {
    guarded(async move {
        let net = net();
        let (mut client, server) = connected(&net).await;
        let server = Arc::new(server);
        let waiting: Vec<_> = (0..2)
            .map(|_| {
                let server = Arc::clone(&server);
                tokio::spawn(async move { server.readable().await })
            })
            .collect();
        let listener = Arc::new(TcpListener::bind(&net.b, b_addr(8080)).await.unwrap());
        let accepting: Vec<_> = (0..2)
            .map(|_| {
                let listener = Arc::clone(&listener);
                tokio::spawn(async move { listener.accept().await.map(|(_, peer)| peer) })
            })
            .collect();
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(waiting.iter().all(|task| !task.is_finished()));
        assert!(accepting.iter().all(|task| !task.is_finished()));
        client.write_all(b"x").await.unwrap();
        for task in waiting {
            task.await.unwrap().unwrap();
        }
        // Two connections for two acceptors, each woken.
        let first = TcpStream::connect(&net.a, b_addr(8080)).await.unwrap();
        let second = TcpStream::connect(&net.a, b_addr(8080)).await.unwrap();
        let mut peers = Vec::new();
        for task in accepting {
            peers.push(task.await.unwrap().unwrap());
        }
        peers.sort();
        let mut expected = [first.local_addr().unwrap(), second.local_addr().unwrap()];
        expected.sort();
        assert_eq!(peers, expected);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_dropped_connect_leaves_no_connection_behind() {
    guarded(async move {
        let net = net();
        let silent = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3)), PORT);
        let attempt =
            tokio::time::timeout(Duration::from_millis(10), TcpStream::connect(&net.a, silent));
        assert!(attempt.await.is_err(), "still in SYN-SENT when dropped");
        assert_eq!(net.a.with_endpoint(|endpoint| endpoint.connection_count()), 0);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_byte_stream_device_carries_two_stacks_over_a_duplex_pipe() {
    guarded(async move {
        const LEN: usize = 512 * 1024;
        let (io_a, io_b) = tokio::io::duplex(16 * 1024);
        let (a, driver_a) = Stack::new(stack_config(A, |_| {}), IoDevice::byte_stream(io_a, 1500));
        let (b, driver_b) = Stack::new(stack_config(B, |_| {}), IoDevice::byte_stream(io_b, 1500));
        tokio::spawn(driver_a);
        tokio::spawn(driver_b);
        let listener = TcpListener::bind(&b, b_addr(PORT)).await.unwrap();
        let (client, accepted) =
            tokio::join!(TcpStream::connect(&a, b_addr(PORT)), listener.accept());
        let (mut client, (mut server, _)) = (client.unwrap(), accepted.unwrap());
        let data = pattern(LEN, 5);
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            client.write_all(&sent).await.unwrap();
            client.shutdown().await.unwrap();
            client
        });
        let mut received = Vec::new();
        server.read_to_end(&mut received).await.unwrap();
        assert!(received == data);
        writer.await.unwrap();
    })
    .await;
}

/// A message-preserving pipe end, as a TUN file or a datagram socket is: each write is one
/// packet and each read returns one whole packet.
struct DatagramPipe {
    tx: tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
    rx: tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>,
}

fn datagram_pipe() -> (DatagramPipe, DatagramPipe) {
    let (tx_a, rx_b) = tokio::sync::mpsc::unbounded_channel();
    let (tx_b, rx_a) = tokio::sync::mpsc::unbounded_channel();
    (DatagramPipe { tx: tx_a, rx: rx_a }, DatagramPipe { tx: tx_b, rx: rx_b })
}

impl tokio::io::AsyncRead for DatagramPipe {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(packet)) => {
                buf.put_slice(&packet);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(None) => Poll::Ready(Ok(())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl tokio::io::AsyncWrite for DatagramPipe {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut Context<'_>,
        packet: &[u8],
    ) -> Poll<io::Result<usize>> {
        let sent = self.tx.send(packet.to_vec());
        Poll::Ready(sent.map(|()| packet.len()).map_err(|_| io::ErrorKind::BrokenPipe.into()))
    }

    fn poll_flush(self: std::pin::Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: std::pin::Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[tokio::test(start_paused = true)]
async fn a_packet_per_read_device_carries_ipv6_between_two_stacks() {
    guarded(async move {
        let ipv6 = |last: u16| IpAddr::V6(std::net::Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, last));
        let config = |last: u16| {
            let endpoint = EndpointConfig::new(Config::new([last as u8; 16]), [9; 16]);
            StackConfig::new(endpoint, ipv6(last))
        };
        let (pipe_a, pipe_b) = datagram_pipe();
        let (a, driver_a) = Stack::new(config(1), IoDevice::packet_per_read(pipe_a, 1500));
        let (b, driver_b) = Stack::new(config(2), IoDevice::packet_per_read(pipe_b, 1500));
        tokio::spawn(driver_a);
        tokio::spawn(driver_b);
        let server_addr = SocketAddr::new(ipv6(2), 443);
        let listener = TcpListener::bind(&b, server_addr).await.unwrap();
        let (client, accepted) =
            tokio::join!(TcpStream::connect(&a, server_addr), listener.accept());
        let (mut client, (mut server, peer)) = (client.unwrap(), accepted.unwrap());
        assert_eq!(peer.ip(), ipv6(1));
        assert_eq!(client.local_addr().unwrap().ip(), ipv6(1));
        let data = pattern(256 * 1024, 6);
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            client.write_all(&sent).await.unwrap();
            client.shutdown().await.unwrap();
            client
        });
        let mut received = Vec::new();
        server.read_to_end(&mut received).await.unwrap();
        assert!(received == data);
        writer.await.unwrap();
        // An IPv4 destination: the stack has no IPv4 address to open it from.
        let error = TcpStream::connect(&a, b_addr(PORT)).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::AddrNotAvailable);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn the_driver_finishes_once_every_handle_is_gone_and_connections_ended() {
    guarded(async move {
        let net = net();
        let (client, server) = connected(&net).await;
        drop(client);
        drop(server);
        // Both ends close, and end up as TIME-WAIT records (which keep no driver running).
        tokio::time::sleep(Duration::from_secs(1)).await;
        let Net { a, b, a_driver, b_driver, .. } = net;
        drop(a);
        drop(b);
        a_driver.await.unwrap().unwrap();
        b_driver.await.unwrap().unwrap();
    })
    .await;
}
