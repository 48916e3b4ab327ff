//! The async stack's catch-all and deferred listeners (feature `tokio`): stack A connects to
//! addresses stack B does not own, over an in-memory link; B catches the connections with
//! their original destinations, and decides on deferred ones before its SYN-ACK. Paused time
//! throughout, so no test depends on the machine's speed.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tcp_proto::stack::{Stack, StackConfig, TcpListener, TcpStream, channel};
use tcp_proto::{Config, EndpointConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
/// Addresses neither stack owns: only B's catch-all listener takes connections to them.
const FAR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)), 8080);
const FAR2: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9)), 443);

fn config(address: Ipv4Addr) -> StackConfig {
    let last = address.octets()[3];
    let mut endpoint = EndpointConfig::new(Config::new([last; 16]), [last + 100; 16]);
    endpoint.incoming_lifetime = Duration::from_secs(5);
    StackConfig::new(endpoint, IpAddr::V4(address))
}

fn stacks() -> (Stack, Stack) {
    let (device_a, device_b) = channel(4096);
    let (a, a_driver) = Stack::new(config(A), device_a);
    let (b, b_driver) = Stack::new(config(B), device_b);
    tokio::spawn(a_driver);
    tokio::spawn(b_driver);
    (a, b)
}

async fn guarded(body: impl Future<Output = ()>) {
    tokio::time::timeout(Duration::from_secs(3600), body)
        .await
        .expect("stuck: a task waits for a wakeup that never comes");
}

async fn ping_pong(client: &mut TcpStream, server: &mut TcpStream) {
    client.write_all(b"ping").await.unwrap();
    let mut buf = [0; 4];
    server.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
    server.write_all(b"pong").await.unwrap();
    client.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"pong");
}

#[tokio::test(start_paused = true)]
async fn catch_all_listener_catches_any_destination_and_reports_it_as_local_addr() {
    guarded(async {
        let (a, b) = stacks();
        let listener = TcpListener::bind_any(&b, 64).unwrap();
        assert_eq!(listener.local_addr().unwrap(), "0.0.0.0:0".parse().unwrap());
        for far in [FAR, FAR2] {
            let (client, accepted) = tokio::join!(TcpStream::connect(&a, far), listener.accept());
            let mut client = client.unwrap();
            let (mut server, peer) = accepted.unwrap();
            assert_eq!(client.peer_addr().unwrap(), far);
            assert_eq!(server.local_addr().unwrap(), far, "the original destination");
            assert_eq!(peer, client.local_addr().unwrap());
            ping_pong(&mut client, &mut server).await;
        }
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_specific_listener_keeps_its_port_beside_the_catch_all() {
    guarded(async {
        let (a, b) = stacks();
        let catch_all = TcpListener::bind_any(&b, 64).unwrap();
        let own = SocketAddr::new(IpAddr::V4(B), 80);
        let specific = TcpListener::bind(&b, own).await.unwrap();
        let (client, accepted) = tokio::join!(TcpStream::connect(&a, own), specific.accept());
        let (mut client, (mut server, _)) = (client.unwrap(), accepted.unwrap());
        assert_eq!(server.local_addr().unwrap(), own);
        ping_pong(&mut client, &mut server).await;
        // Nothing reached the catch-all.
        let nothing = tokio::time::timeout(Duration::from_secs(10), catch_all.accept()).await;
        assert!(nothing.is_err());
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn without_a_catch_all_a_foreign_destination_is_not_ours() {
    guarded(async {
        let (a, b) = stacks();
        let listener = TcpListener::bind_any(&b, 64).unwrap();
        drop(listener);
        // B drops packets for addresses it does not own again: the SYN goes unanswered.
        let error = TcpStream::connect(&a, FAR).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(b.driver_counters().dropped_not_ours > 0);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn deferred_incoming_accepted_after_a_delay_connects_with_both_addresses() {
    guarded(async {
        let (a, b) = stacks();
        let listener = TcpListener::bind_any_deferred(&b, 16).unwrap();
        let connect = tokio::spawn({
            let a = a.clone();
            async move { TcpStream::connect(&a, FAR).await }
        });
        let incoming = listener.incoming().await.unwrap();
        assert_eq!(incoming.local_addr(), FAR);
        assert_eq!(incoming.peer_addr().ip(), IpAddr::V4(A));
        // The client waits (retransmitting its SYN) while the application decides.
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(!connect.is_finished());
        let mut server = incoming.accept().await.unwrap();
        let mut client = connect.await.unwrap().unwrap();
        assert_eq!(server.local_addr().unwrap(), FAR);
        assert_eq!(server.peer_addr().unwrap(), client.local_addr().unwrap());
        ping_pong(&mut client, &mut server).await;
        assert_eq!(b.with_endpoint(|ep| ep.counters().incoming_duplicates), 1, "one SYN resent");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn deferred_incoming_refused_is_connection_refused_at_the_client() {
    guarded(async {
        let (a, b) = stacks();
        let listener = TcpListener::bind_any_deferred(&b, 16).unwrap();
        let (connected, incoming) = tokio::join!(TcpStream::connect(&a, FAR), async {
            listener.incoming().await.unwrap().refuse()
        });
        let () = incoming;
        assert_eq!(connected.unwrap_err().kind(), io::ErrorKind::ConnectionRefused);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn deferred_incoming_ignored_leaves_the_client_to_time_out() {
    guarded(async {
        let (a, b) = stacks();
        let listener =
            TcpListener::bind_deferred(&b, SocketAddr::new(IpAddr::V4(B), 80), 16).unwrap();
        let mut ignored = 0;
        let connect = TcpStream::connect(&a, SocketAddr::new(IpAddr::V4(B), 80));
        tokio::pin!(connect);
        let error = loop {
            tokio::select! {
                result = &mut connect => break result.unwrap_err(),
                incoming = listener.incoming() => {
                    incoming.unwrap().ignore();
                    ignored += 1;
                }
            }
        };
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        // The first SYN was ignored; its retransmissions were new SYNs to decide on.
        assert!(ignored > 1, "{ignored}");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn accepting_an_expired_incoming_fails_and_the_client_gets_in_on_its_next_syn() {
    guarded(async {
        let (a, b) = stacks();
        let listener = TcpListener::bind_any_deferred(&b, 16).unwrap();
        let connect = tokio::spawn({
            let a = a.clone();
            async move { TcpStream::connect(&a, FAR).await }
        });
        let stale = listener.incoming().await.unwrap();
        // Past the 5 s lifetime: the record is gone.
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert_eq!(stale.accept().await.unwrap_err().kind(), io::ErrorKind::TimedOut);
        assert_eq!(b.with_endpoint(|ep| ep.counters().incoming_expired), 1);
        // The client's next retransmission is a new record.
        let fresh = listener.incoming().await.unwrap();
        let mut server = fresh.accept().await.unwrap();
        let mut client = connect.await.unwrap().unwrap();
        ping_pong(&mut client, &mut server).await;
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn accept_and_incoming_are_refused_on_the_wrong_kind_of_listener() {
    guarded(async {
        let (_a, b) = stacks();
        let deferred = TcpListener::bind_any_deferred(&b, 16).unwrap();
        assert_eq!(deferred.accept().await.unwrap_err().kind(), io::ErrorKind::InvalidInput);
        drop(deferred);
        let plain = TcpListener::bind_any(&b, 16).unwrap();
        assert_eq!(plain.incoming().await.unwrap_err().kind(), io::ErrorKind::InvalidInput);
        assert_eq!(
            TcpListener::bind_any(&b, 16).unwrap_err().kind(),
            io::ErrorKind::AddrInUse,
            "one catch-all at a time"
        );
        let port_zero = SocketAddr::new(IpAddr::V4(B), 0);
        assert_eq!(
            TcpListener::bind(&b, port_zero).await.unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    })
    .await;
}

// ------------------------------------------------------------------ non-TCP packets

/// The ones' complement sum of RFC 1071 over `bytes`.
fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4 packet from `src` to `dst` carrying `payload` of `protocol`.
fn ipv4(protocol: u8, src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut packet = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, protocol, 0, 0];
    packet[2..4].copy_from_slice(&total.to_be_bytes());
    packet.extend_from_slice(&src.octets());
    packet.extend_from_slice(&dst.octets());
    let sum = checksum(&packet);
    packet[10..12].copy_from_slice(&sum.to_be_bytes());
    packet.extend_from_slice(payload);
    packet
}

/// An ICMP message of `kind` and `code` with `body` after its 4-octet rest of header.
fn icmp(kind: u8, code: u8, body: &[u8]) -> Vec<u8> {
    let mut message = vec![kind, code, 0, 0, 0, 0, 0, 0];
    message.extend_from_slice(body);
    let sum = checksum(&message);
    message[2..4].copy_from_slice(&sum.to_be_bytes());
    message
}

#[tokio::test(start_paused = true)]
async fn udp_and_icmp_echo_reach_recv_packet_byte_exact_whatever_their_destination() {
    guarded(async {
        let (a, b) = stacks();
        let udp =
            ipv4(17, A, Ipv4Addr::new(8, 8, 8, 8), &[0x30, 0x39, 0, 53, 0, 12, 0, 0, 1, 2, 3, 4]);
        let echo = ipv4(1, A, B, &icmp(8, 0, b"echo"));
        a.send_packet(&udp).unwrap();
        a.send_packet(&echo).unwrap();
        assert_eq!(b.recv_packet().await.unwrap(), udp);
        assert_eq!(b.recv_packet().await.unwrap(), echo);
        assert_eq!(b.driver_counters().other_packets_kept, 2);
        assert_eq!(b.driver_counters().dropped_not_tcp, 0);
        // TCP beside them is untouched.
        let own = SocketAddr::new(IpAddr::V4(B), 80);
        let listener = TcpListener::bind(&b, own).await.unwrap();
        let (client, accepted) = tokio::join!(TcpStream::connect(&a, own), listener.accept());
        let (mut client, (mut server, _)) = (client.unwrap(), accepted.unwrap());
        ping_pong(&mut client, &mut server).await;
        assert_eq!(b.driver_counters().other_packets_kept, 2);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn non_tcp_packets_beyond_the_queue_are_dropped_and_counted() {
    guarded(async {
        let (device_a, device_b) = channel(4096);
        let (a, a_driver) = Stack::new(config(A), device_a);
        let mut config_b = config(B);
        config_b.other_packets = 2;
        let (b, b_driver) = Stack::new(config_b, device_b);
        tokio::spawn(a_driver);
        tokio::spawn(b_driver);
        let packets: Vec<Vec<u8>> =
            (0..5u8).map(|i| ipv4(17, A, B, &[0, 1, 0, 2, 0, 9, 0, 0, i])).collect();
        for packet in &packets {
            a.send_packet(packet).unwrap();
        }
        // Let both drivers run until the packets crossed.
        tokio::time::sleep(Duration::from_millis(10)).await;
        let counters = b.driver_counters();
        assert_eq!((counters.other_packets_kept, counters.other_packets_dropped), (2, 3));
        assert_eq!(b.recv_packet().await.unwrap(), packets[0]);
        assert_eq!(b.recv_packet().await.unwrap(), packets[1]);
        let none = tokio::time::timeout(Duration::from_secs(1), b.recv_packet()).await;
        assert!(none.is_err(), "nothing else kept");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn an_icmp_error_quoting_tcp_goes_to_the_endpoint_not_to_recv_packet() {
    guarded(async {
        let (a, b) = stacks();
        // "Port unreachable" about a TCP segment B sent to A: an ICMP error for the endpoint
        // (which drops it, counted: no such connection).
        let mut quoted = ipv4(6, B, A, &[]);
        quoted.extend_from_slice(&[0x1f, 0x90, 0x00, 0x50, 0, 0, 0, 1]);
        let error = ipv4(1, A, B, &icmp(3, 3, &quoted));
        a.send_packet(&error).unwrap();
        // An ICMP error about UDP is the user's.
        let mut quoted_udp = ipv4(17, B, A, &[]);
        quoted_udp.extend_from_slice(&[0x1f, 0x90, 0x00, 0x35, 0, 8, 0, 0]);
        let udp_error = ipv4(1, A, B, &icmp(3, 3, &quoted_udp));
        a.send_packet(&udp_error).unwrap();
        assert_eq!(b.recv_packet().await.unwrap(), udp_error);
        let counters = b.driver_counters();
        assert_eq!((counters.icmp_errors, counters.other_packets_kept), (1, 1));
        assert_eq!(b.with_endpoint(|ep| ep.counters().icmp_dropped), 1);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn send_packet_refuses_what_is_not_an_ip_packet_within_the_mtu() {
    guarded(async {
        let (a, _b) = stacks();
        assert_eq!(a.send_packet(&[0x12; 40]).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        assert_eq!(a.send_packet(&[]).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        let big = ipv4(17, A, B, &vec![0; 1500]);
        assert_eq!(a.send_packet(&big).unwrap_err().kind(), io::ErrorKind::InvalidInput);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn caught_connections_carry_on_and_close_in_order_after_the_catch_all_listener_is_dropped() {
    guarded(async {
        let (a, b) = stacks();
        let listener = TcpListener::bind_any(&b, 64).unwrap();
        let (client, accepted) = tokio::join!(TcpStream::connect(&a, FAR), listener.accept());
        let (mut client, (mut server, _)) = (client.unwrap(), accepted.unwrap());
        // What a transparent proxy does when it stops: no more new connections, but the
        // caught ones (answering from their original destination, an address B does not
        // own) still finish — data both ways, then FIN both ways.
        drop(listener);
        ping_pong(&mut client, &mut server).await;
        server.shutdown().await.unwrap();
        drop(server);
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
        drop(client);
        // B's connection is over (its FIN acknowledged): no connection left on B, so a driver
        // whose handles are gone can finish.
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(b.with_endpoint(|endpoint| endpoint.connection_count()), 0);
        // A SYN to a foreign address is no longer taken in once no caught connection is left.
        let refused =
            tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(&a, FAR2)).await;
        assert!(refused.is_err(), "a connection to an address B does not own without a catch-all");
    })
    .await;
}
