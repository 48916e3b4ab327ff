//! The async stack over a device with TCP segmentation and checksum offloads (feature
//! `tokio`): a test device that declares them, as the TUN device with the virtio-net header
//! does, and whose peer is this test, writing and reading exact IPv4 packets. What a
//! connection sends leaves as super-segments with the metadata the device needs to cut them
//! (and they cut into exactly the wire segments a plain device gets); a coalesced
//! super-segment that arrives is delivered byte-exact and acknowledged as the wire segments
//! it came as. Paused time throughout.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tcp_proto::adapter::{Offloads, RxChecksumState};
use tcp_proto::stack::{Device, PacketBatch, PacketMeta, Stack, StackConfig, TcpListener};
use tcp_proto::wire::checksum::{Checksum, TxChecksum};
use tcp_proto::wire::gso::Segmenter;
use tcp_proto::wire::ip::{Ipv4Header, PROTOCOL_TCP};
use tcp_proto::wire::{Flags, Options, Segment, TcpHeader};
use tcp_proto::{Config, EndpointConfig, SeqNum};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const OURS: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const MSS: usize = 1460;

/// The test's side of the device: packets for the stack, packets from it.
#[derive(Default)]
struct Wire {
    to_stack: VecDeque<(Vec<u8>, PacketMeta)>,
    from_stack: VecDeque<(Vec<u8>, PacketMeta)>,
    receiver: Option<Waker>,
}

struct TestDevice {
    wire: Arc<Mutex<Wire>>,
    offloads: Offloads,
}

impl Device for TestDevice {
    fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        packets: &mut PacketBatch,
    ) -> Poll<io::Result<()>> {
        let mut wire = self.wire.lock().unwrap();
        if wire.to_stack.is_empty() {
            wire.receiver = Some(cx.waker().clone());
            return Poll::Pending;
        }
        while let Some((packet, meta)) = wire.to_stack.pop_front() {
            packets.push_with(packet, meta);
        }
        Poll::Ready(Ok(()))
    }

    fn poll_send(
        &mut self,
        _: &mut Context<'_>,
        packets: &mut PacketBatch,
    ) -> Poll<io::Result<()>> {
        let mut wire = self.wire.lock().unwrap();
        while let Some((packet, meta)) = packets.take_front_with_meta() {
            wire.from_stack.push_back((packet, meta));
        }
        Poll::Ready(Ok(()))
    }

    fn offloads(&self) -> Offloads {
        self.offloads
    }
}

/// What a TUN device with `IFF_VNET_HDR` and `TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6` declares.
fn tso() -> Offloads {
    let mut offloads = Offloads::NONE;
    offloads.tcp_segmentation = true;
    offloads.tx_checksum = TxChecksum::PseudoHeader;
    offloads.rx_checksum = true;
    offloads.rx_coalesced = true;
    offloads
}

/// The checksum state of a TCP segment behind a 20-octet IPv4 header, left to finish.
const PARTIAL: RxChecksumState = RxChecksumState::Partial { start: 20, offset: 16 };

struct Peer {
    wire: Arc<Mutex<Wire>>,
}

impl Peer {
    fn send(&self, packet: Vec<u8>, meta: PacketMeta) {
        let mut wire = self.wire.lock().unwrap();
        wire.to_stack.push_back((packet, meta));
        if let Some(waker) = wire.receiver.take() {
            waker.wake();
        }
    }

    /// The stack's next packet, waiting (virtual time) for it.
    async fn next(&self) -> (Vec<u8>, PacketMeta) {
        for _ in 0..10_000 {
            if let Some(sent) = self.wire.lock().unwrap().from_stack.pop_front() {
                return sent;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("the stack sent nothing");
    }

    fn pending(&self) -> usize {
        self.wire.lock().unwrap().from_stack.len()
    }
}

/// A TCP/IPv4 packet from the peer to port 80, its checksum complete or (`partial`) holding
/// only the pseudo-header's sum, as a kernel hands up with `NEEDS_CSUM`.
fn packet(
    flags: Flags,
    seq: u32,
    ack: u32,
    options: Options,
    payload: &[u8],
    partial: bool,
) -> Vec<u8> {
    let header = TcpHeader {
        src_port: 4000,
        dst_port: 80,
        seq: SeqNum::new(seq),
        ack: SeqNum::new(ack),
        flags,
        window: 65_535,
        urgent_ptr: 0,
        options,
    };
    let mode = if partial { TxChecksum::PseudoHeader } else { TxChecksum::Compute };
    let (src, dst) = (IpAddr::V4(PEER), IpAddr::V4(OURS));
    let mut tcp = vec![0u8; 60 + payload.len()];
    let len = header.emit_with_checksum(&[payload], src, dst, &mut tcp, mode).unwrap();
    let mut out = vec![0u8; 20 + len];
    Ipv4Header {
        src: PEER,
        dst: OURS,
        protocol: PROTOCOL_TCP,
        ttl: 64,
        identification: 0,
        dont_fragment: true,
        more_fragments: false,
        fragment_offset: 0,
        total_len: (20 + len) as u16,
        dscp_ecn: 0,
    }
    .emit(&mut out)
    .unwrap();
    out[20..].copy_from_slice(&tcp[..len]);
    out
}

/// The TCP segment of a packet the stack sent, its checksum finished first if `meta` says
/// it was left to the device, and checked.
fn segment(packet: &[u8], meta: PacketMeta) -> Segment<'static> {
    let mut packet = packet.to_vec();
    if let RxChecksumState::Partial { start, offset } = meta.checksum {
        let (start, field) = (usize::from(start), usize::from(start + offset));
        let mut sum = Checksum::new();
        sum.add_bytes(&packet[start..]);
        packet[field..field + 2].copy_from_slice(&sum.finish().to_be_bytes());
    }
    let packet: &'static [u8] = packet.leak();
    let (ip, tcp) = Ipv4Header::parse(packet).unwrap();
    assert_eq!((ip.src, ip.dst), (OURS, PEER));
    Segment::parse_checked(tcp, IpAddr::V4(OURS), IpAddr::V4(PEER)).expect("checksum right")
}

/// A stack over a test device with `offloads`, a connection from the peer accepted on port
/// 80 (MSS 1460 both ways): the peer, the stream, the peer's next sequence number and ours.
async fn connected(offloads: Offloads) -> (Stack, Peer, tcp_proto::stack::TcpStream, u32, u32) {
    let wire = Arc::new(Mutex::new(Wire::default()));
    let device = TestDevice { wire: Arc::clone(&wire), offloads };
    let config =
        StackConfig::new(EndpointConfig::new(Config::new([7; 16]), [8; 16]), IpAddr::V4(OURS));
    let (stack, driver) = Stack::new(config, device);
    tokio::spawn(driver);
    let peer = Peer { wire };
    let listener = TcpListener::bind(&stack, SocketAddr::new(IpAddr::V4(OURS), 80)).await.unwrap();
    let options = Options { mss: Some(MSS as u16), ..Options::NONE };
    peer.send(packet(Flags::SYN, 100, 0, options, b"", false), PacketMeta::PLAIN);
    let (syn_ack, meta) = peer.next().await;
    let syn_ack = segment(&syn_ack, meta);
    assert_eq!(syn_ack.header.flags, Flags::SYN | Flags::ACK);
    let iss = syn_ack.header.seq.get().wrapping_add(1);
    peer.send(packet(Flags::ACK, 101, iss, Options::NONE, b"", false), PacketMeta::PLAIN);
    let (stream, _) = listener.accept().await.unwrap();
    (stack, peer, stream, 101, iss)
}

async fn guarded(body: impl Future<Output = ()>) {
    tokio::time::timeout(Duration::from_secs(3600), body).await.expect("stuck");
}

/// Full segments in the data each test sends.
const FULL: usize = 4;

/// The data each test sends: [`FULL`] full segments and a short one, under half the initial
/// window (RFC 6928: 14 600 octets), the most one super-segment carries.
fn data() -> Vec<u8> {
    (0..FULL * MSS + 100).map(|i| (i * 7 % 251) as u8).collect()
}

#[tokio::test(start_paused = true)]
async fn bulk_output_reaches_an_offloading_device_as_one_super_segment_it_cuts_into_the_wire_segments()
 {
    guarded(async {
        let (_stack, peer, mut stream, _, iss) = connected(tso()).await;
        let data = data();
        stream.write_all(&data).await.unwrap();
        let (packet, meta) = peer.next().await;
        // One packet: the whole initial window, for the device to cut at the MSS, its TCP
        // checksum left to finish from the TCP header (20 octets in) on.
        assert_eq!(meta, PacketMeta { checksum: PARTIAL, gso_size: Some(MSS as u16) });
        assert_eq!(peer.pending(), 0);
        let (ip, tcp) = Ipv4Header::parse(&packet).unwrap();
        assert_eq!(usize::from(ip.total_len), 20 + 20 + data.len());
        // The field holds the pseudo-header's sum over the whole super-segment: finished,
        // the super-segment checks.
        let whole = segment(&packet, meta);
        assert_eq!(whole.payload, &data[..]);
        // Cut as Linux GSO does: five wire segments in sequence, the data intact.
        let (src, dst) = (IpAddr::V4(OURS), IpAddr::V4(PEER));
        let payload = [&tcp[20..]];
        let mut pieces =
            Segmenter::new(&tcp[..20], &payload, MSS, src, dst, TxChecksum::Compute).unwrap();
        let (mut buf, mut joined, mut seq, mut count) = (vec![0u8; 2000], Vec::new(), iss, 0);
        while let Some(len) = pieces.next_segment(&mut buf).unwrap() {
            let piece = Segment::parse_checked(&buf[..len], src, dst).unwrap();
            assert_eq!(piece.header.seq.get(), seq);
            assert_eq!(piece.payload.len(), if count < FULL { MSS } else { 100 });
            seq = seq.wrapping_add(piece.payload.len() as u32);
            joined.extend_from_slice(piece.payload);
            count += 1;
        }
        assert_eq!(count, FULL + 1);
        assert_eq!(joined, data);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_device_without_offloads_gets_the_same_data_as_plain_complete_wire_segments() {
    guarded(async {
        let (_stack, peer, mut stream, _, iss) = connected(Offloads::NONE).await;
        let data = data();
        stream.write_all(&data).await.unwrap();
        let (mut joined, mut seq) = (Vec::new(), iss);
        for index in 0..=FULL {
            let (packet, meta) = peer.next().await;
            assert_eq!(meta, PacketMeta::PLAIN);
            let piece = segment(&packet, meta);
            assert_eq!(piece.header.seq.get(), seq);
            assert_eq!(piece.payload.len(), if index < FULL { MSS } else { 100 });
            seq = seq.wrapping_add(piece.payload.len() as u32);
            joined.extend_from_slice(piece.payload);
        }
        assert_eq!(joined, data);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_coalesced_super_segment_is_delivered_byte_exact_and_acknowledged_as_its_wire_segments() {
    guarded(async {
        let (stack, peer, mut stream, seq, ack) = connected(tso()).await;
        // Three wire segments' worth, coalesced by the kernel (its TSO output over TUN), the
        // checksum left unfinished: taken whole, trusted, not summed.
        let data: Vec<u8> = (0..3 * MSS - 10).map(|i| (i % 241) as u8).collect();
        let coalesced = packet(Flags::ACK | Flags::PSH, seq, ack, Options::NONE, &data, true);
        let meta = PacketMeta { checksum: PARTIAL, gso_size: Some(MSS as u16) };
        peer.send(coalesced, meta);
        let mut received = vec![0u8; data.len()];
        stream.read_exact(&mut received).await.unwrap();
        assert_eq!(received, data);
        // Three full-sized segments' worth: acknowledged at once (RFC 9293 §3.8.6.3, an ACK
        // at least every second full-sized segment), not after the delayed-ACK timer — and
        // the ACK's checksum is left for the device to finish too.
        let (packet, meta) = peer.next().await;
        assert_eq!(meta, PacketMeta { checksum: PARTIAL, gso_size: None });
        let acked = segment(&packet, meta);
        assert_eq!(acked.header.flags, Flags::ACK);
        assert_eq!(acked.header.ack.get(), seq + data.len() as u32);
        assert!(acked.payload.is_empty());
        let counters = stack.driver_counters();
        assert_eq!(counters.coalesced_in, 1);
        assert_eq!(counters.checksums_finished, 0);
        assert_eq!(counters.dropped_bad_tcp_checksum, 0);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_segment_the_device_vouched_for_nothing_about_is_still_verified_must_3() {
    guarded(async {
        let (stack, peer, mut stream, seq, ack) = connected(tso()).await;
        let mut corrupt = packet(Flags::ACK | Flags::PSH, seq, ack, Options::NONE, b"first", false);
        let last = corrupt.len() - 1;
        corrupt[last] ^= 1;
        peer.send(corrupt, PacketMeta::PLAIN);
        let good = packet(Flags::ACK | Flags::PSH, seq, ack, Options::NONE, b"first", false);
        peer.send(good, PacketMeta::PLAIN);
        let mut received = [0u8; 5];
        stream.read_exact(&mut received).await.unwrap();
        assert_eq!(&received, b"first");
        assert_eq!(stack.driver_counters().dropped_bad_tcp_checksum, 1);
    })
    .await;
}
