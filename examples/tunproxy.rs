//! A transparent TCP proxy on a TUN device, over the async stack.
//!
//! ```text
//! tunproxy --tun NAME [--local-ip IP]... (--socks5 HOST:PORT | --out-iface IFACE) [--trace]
//! ```
//!
//! It attaches to the existing TUN device NAME (made and routed by the user: `ip tuntap add
//! dev NAME mode tun`, `ip link set NAME up`, and a route sending the traffic to catch into
//! it) and catches every TCP connection that enters it, whatever its destination, with a
//! deferred catch-all listener: for each SYN it first connects to the connection's original
//! destination — through the SOCKS5 server at HOST:PORT (`--socks5`: CONNECT, no
//! authentication) or directly with a kernel socket bound to IFACE (`--out-iface`:
//! `SO_BINDTODEVICE`, so its own traffic cannot loop back into the TUN) — and only then
//! answers the SYN and splices the two with `copy_bidirectional` (64 KiB buffers; each direction's end is
//! passed on as a half-close). A connection whose upstream connect fails (or takes 20 s) is
//! refused: the client sees a RST, "connection refused".
//!
//! `--local-ip` (IPv4 or IPv6, once per family) is the address the stack owns on the device
//! (the source of what it opens and of its ICMP); without it the stack takes the far end of
//! each address the device is configured with (`tcp_proto::adapter::source`, RFC 9293
//! MUST-44). Caught connections, IPv4 and IPv6 alike, answer from their original destination.
//! `--trace` prints every packet in and out on stderr. SIGINT or SIGTERM stops accepting,
//! closes every connection in order (FIN both ways), waits for them to end (10 s at most) and
//! exits 0.
//!
//! **UDP.** Datagrams entering the device (IPv4 or IPv6; IPv6 extension headers skipped,
//! fragments and datagrams with a wrong checksum dropped) go to their original destination
//! too, and the answers come back into the device as UDP datagrams from that destination to
//! the original source (checksums computed, as IPv6 requires). One *flow* per client source
//! address and port, each with its own upstream: with `--out-iface` a kernel UDP socket bound
//! to IFACE, sending each datagram to its own destination (so one flow may query several
//! servers, and answers from any of them come back); with `--socks5` one UDP ASSOCIATE per
//! flow (RFC 1928 §7), every datagram carrying its destination in the SOCKS UDP request
//! header, the association ending with its TCP control connection. A flow idle for 60 s ends;
//! at most 1 024 flows live at once (datagrams opening more are dropped, counted and reported
//! at exit), each with at most 64 datagrams queued. When the SOCKS5 server refuses UDP
//! ASSOCIATE (reply 7, "command not supported") this is said once on stderr and UDP is no
//! longer forwarded; TCP carries on. Answers too long for the device's MTU are dropped (no IP
//! fragmentation). Other IP packets entering the device (ICMP echo, other protocols) are not
//! forwarded.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use tcp_proto::stack::{Incoming, Stack, StackConfig, TcpListener, TunDevice};
use tcp_proto::{Config, EndpointConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio::task::JoinSet;

const USAGE: &str = "usage: tunproxy --tun NAME [--local-ip IP]... (--socks5 HOST:PORT | --out-iface IFACE) [--trace]";

/// How long an upstream connect may take before the client is refused.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Octets each direction of a splice moves per read and write. `copy_bidirectional`'s 8 KiB
/// default makes a 64 KiB super-segment's worth of data take eight trips through the stack's
/// lock and the kernel socket each way; 64 KiB takes one.
const COPY_BUFFER: usize = 64 << 10;
/// How long connections may take to close at exit.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where caught connections go.
#[derive(Clone, Debug)]
enum Upstream {
    Socks5(SocketAddr),
    Interface(String),
}

struct Args {
    tun: String,
    /// The stack's addresses; empty: chosen from the device's (MUST-44).
    local_ips: Vec<IpAddr>,
    upstream: Upstream,
    trace: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut tun, mut local_ips, mut upstream, mut trace) = (None, Vec::new(), None, false);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--tun" => tun = Some(value()?),
            "--local-ip" => {
                let ip: IpAddr = value()?.parse().map_err(|e| format!("--local-ip: {e}"))?;
                if local_ips.iter().any(|other: &IpAddr| other.is_ipv4() == ip.is_ipv4()) {
                    return Err("--local-ip: one address per family".into());
                }
                local_ips.push(ip);
            }
            "--socks5" => {
                let spec = value()?;
                let address = spec
                    .to_socket_addrs()
                    .map_err(|e| format!("--socks5 {spec}: {e}"))?
                    .next()
                    .ok_or_else(|| format!("--socks5 {spec}: no address"))?;
                if upstream.replace(Upstream::Socks5(address)).is_some() {
                    return Err("give one of --socks5 and --out-iface".into());
                }
            }
            "--out-iface" => {
                if upstream.replace(Upstream::Interface(value()?)).is_some() {
                    return Err("give one of --socks5 and --out-iface".into());
                }
            }
            "--trace" => trace = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        tun: tun.ok_or("--tun is required")?,
        local_ips,
        upstream: upstream.ok_or("one of --socks5 and --out-iface is required")?,
        trace,
    })
}

fn random_secret() -> std::io::Result<[u8; 16]> {
    let mut secret = [0; 16];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut secret)?;
    Ok(secret)
}

/// SOCKS5 CONNECT to `target` through `proxy`, without authentication (RFC 1928).
async fn socks5_connect(
    proxy: SocketAddr,
    target: SocketAddr,
) -> std::io::Result<tokio::net::TcpStream> {
    let mut stream = tokio::net::TcpStream::connect(proxy).await?;
    socks5_request(&mut stream, SOCKS5_CONNECT, target).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// SOCKS5 command CONNECT (RFC 1928 §4).
const SOCKS5_CONNECT: u8 = 1;
/// SOCKS5 command UDP ASSOCIATE (RFC 1928 §4, §7).
const SOCKS5_UDP_ASSOCIATE: u8 = 3;
/// SOCKS5 reply "command not supported" (RFC 1928 §6).
const SOCKS5_COMMAND_NOT_SUPPORTED: u8 = 7;

/// `address` in SOCKS5's form (RFC 1928 §4-5): type 1 and 4 octets, or type 4 and 16, then
/// the port.
fn socks5_address(address: SocketAddr, out: &mut Vec<u8>) {
    match address.ip() {
        IpAddr::V4(ip) => {
            out.push(1);
            out.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out.push(4);
            out.extend_from_slice(&ip.octets());
        }
    }
    out.extend_from_slice(&address.port().to_be_bytes());
}

/// The method negotiation (no authentication) and one request of `command` for `target` on
/// `stream` to a SOCKS5 server; returns the server's bound address (a domain name in the
/// reply gives the unspecified address). A refused command is `ConnectionRefused` naming the
/// reply code (`Unsupported` for "command not supported").
async fn socks5_request(
    stream: &mut tokio::net::TcpStream,
    command: u8,
    target: SocketAddr,
) -> std::io::Result<SocketAddr> {
    let protocol = |what: &str| std::io::Error::other(format!("SOCKS5: {what}"));
    stream.write_all(&[5, 1, 0]).await?;
    let mut choice = [0; 2];
    stream.read_exact(&mut choice).await?;
    if choice != [5, 0] {
        return Err(protocol("the server wants authentication"));
    }
    let mut request = vec![5, command, 0];
    socks5_address(target, &mut request);
    stream.write_all(&request).await?;
    let mut head = [0; 4];
    stream.read_exact(&mut head).await?;
    if head[0] != 5 {
        return Err(protocol("not a SOCKS5 reply"));
    }
    if head[1] != 0 {
        let kind = if head[1] == SOCKS5_COMMAND_NOT_SUPPORTED {
            std::io::ErrorKind::Unsupported
        } else {
            std::io::ErrorKind::ConnectionRefused
        };
        return Err(std::io::Error::new(
            kind,
            format!("SOCKS5: command {command} failed with reply {}", head[1]),
        ));
    }
    let bound_len = match head[3] {
        1 => 4 + 2,
        4 => 16 + 2,
        3 => usize::from(stream.read_u8().await?) + 2,
        _ => return Err(protocol("unknown address type in the reply")),
    };
    let mut bound = vec![0; bound_len];
    stream.read_exact(&mut bound).await?;
    let port = |at: usize| u16::from_be_bytes([bound[at], bound[at + 1]]);
    Ok(match head[3] {
        1 => {
            let ip: [u8; 4] = bound[..4].try_into().map_err(|_| protocol("short address"))?;
            SocketAddr::new(IpAddr::from(ip), port(4))
        }
        4 => {
            let ip: [u8; 16] = bound[..16].try_into().map_err(|_| protocol("short address"))?;
            SocketAddr::new(IpAddr::from(ip), port(16))
        }
        _ => SocketAddr::new(IpAddr::from([0u8; 4]), port(bound_len - 2)),
    })
}

/// A kernel connection to `target` from `interface` (`SO_BINDTODEVICE`).
async fn direct_connect(
    interface: &str,
    target: SocketAddr,
) -> std::io::Result<tokio::net::TcpStream> {
    let socket = match target {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.bind_device(Some(interface.as_bytes()))?;
    let stream = socket.connect(target).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// One caught connection: upstream first, then the SYN-ACK, then the splice.
async fn proxy(
    incoming: Incoming,
    upstream: Upstream,
    mut shutdown: watch::Receiver<bool>,
    trace: bool,
) {
    let (client, target) = (incoming.peer_addr(), incoming.local_addr());
    let connect = async {
        match &upstream {
            Upstream::Socks5(proxy) => socks5_connect(*proxy, target).await,
            Upstream::Interface(interface) => direct_connect(interface, target).await,
        }
    };
    let mut outbound = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            eprintln!("tunproxy: {client} -> {target}: upstream: {error}; refused");
            incoming.refuse();
            return;
        }
        Err(_) => {
            eprintln!("tunproxy: {client} -> {target}: upstream connect timed out; refused");
            incoming.refuse();
            return;
        }
    };
    let mut inbound = match incoming.accept().await {
        Ok(stream) => stream,
        Err(error) => {
            eprintln!("tunproxy: {client} -> {target}: {error}");
            return;
        }
    };
    if trace {
        eprintln!("tunproxy: {client} -> {target}: spliced");
    }
    tokio::select! {
        result = tokio::io::copy_bidirectional_with_sizes(
            &mut inbound, &mut outbound, COPY_BUFFER, COPY_BUFFER,
        ) => {
            if let Err(error) = result {
                eprintln!("tunproxy: {client} -> {target}: {error}");
            }
        }
        _ = shutdown.changed() => {
            // Exiting: FIN both ways; the stack finishes the close after the drop.
            let _ = inbound.shutdown().await;
            let _ = outbound.shutdown().await;
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(error) => {
            eprintln!("tunproxy: {error}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tunproxy: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> std::io::Result<()> {
    let device = TunDevice::attach(&args.tun)?;
    let addresses =
        if args.local_ips.is_empty() { device.source_addresses()? } else { args.local_ips };
    let Some(&first) = addresses.first() else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AddrNotAvailable,
            "no --local-ip, and the device has no address to choose one from",
        ));
    };
    let mut config = StackConfig::new(
        EndpointConfig::new(Config::new(random_secret()?), random_secret()?),
        first,
    );
    config.addresses.clone_from(&addresses);
    config.mtu = device.mtu();
    let mtu = config.mtu;
    let (stack, driver) = Stack::new(config, device);
    stack.set_trace(args.trace);
    let driver = tokio::spawn(driver);
    let udp = tokio::spawn(udp::relay(stack.clone(), args.upstream.clone(), mtu, args.trace));
    let listener = TcpListener::bind_any_deferred(&stack, 1024)?;
    let (stop, stopping) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let shown: Vec<String> = addresses.iter().map(ToString::to_string).collect();
    eprintln!("tunproxy: catching TCP and UDP on {} ({})", args.tun, shown.join(", "));
    loop {
        tokio::select! {
            incoming = listener.incoming() => {
                let incoming = incoming?;
                let task = proxy(incoming, args.upstream.clone(), stopping.clone(), args.trace);
                tasks.spawn(task);
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
        }
    }
    eprintln!("tunproxy: closing {} connections", tasks.len());
    // The UDP relay and its flows hold stack handles: they go first (a datagram in flight
    // is lost, as UDP allows).
    udp.abort();
    if let Ok(dropped) = udp.await
        && dropped > 0
    {
        eprintln!("tunproxy: {dropped} UDP datagrams dropped (flow limit or full queues)");
    }
    drop(listener);
    let _ = stop.send(true);
    let closing = async {
        while tasks.join_next().await.is_some() {}
        drop(stack);
        // The driver ends once no handle is left and every connection has ended.
        driver.await
    };
    match tokio::time::timeout(CLOSE_TIMEOUT, closing).await {
        Ok(Ok(result)) => result,
        Ok(Err(join_error)) => Err(std::io::Error::other(join_error)),
        Err(_) => {
            eprintln!("tunproxy: connections still closing after {CLOSE_TIMEOUT:?}; exiting");
            Ok(())
        }
    }
}

/// UDP through the proxy: the datagrams the stack hands over (`Stack::recv_packet`), one flow
/// per client source address, and the answers written back (`Stack::send_packet`). See the
/// module docs, UDP.
mod udp {
    use std::collections::HashMap;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::time::Duration;

    use tcp_proto::adapter::driver::skip_ipv6_extensions;
    use tcp_proto::stack::Stack;
    use tcp_proto::wire::checksum::pseudo_header;
    use tcp_proto::wire::ip::{Ipv4Header, Ipv6Header};
    use tokio::io::AsyncReadExt;
    use tokio::net::UdpSocket;
    use tokio::sync::mpsc;
    use tokio::task::JoinSet;

    use super::{SOCKS5_UDP_ASSOCIATE, Upstream, socks5_address, socks5_request};

    /// A flow with no datagram either way for this long ends.
    const IDLE: Duration = Duration::from_secs(60);
    /// Flows live at once at most.
    const MAX_FLOWS: usize = 1024;
    /// Datagrams queued toward one flow's upstream at most.
    const FLOW_QUEUE: usize = 64;
    const PROTOCOL_UDP: u8 = 17;
    const UDP_HEADER: usize = 8;

    /// One datagram taken out of an IP packet.
    #[derive(Debug, PartialEq, Eq)]
    pub(crate) struct Datagram {
        pub(crate) src: SocketAddr,
        pub(crate) dst: SocketAddr,
        pub(crate) payload: Vec<u8>,
    }

    /// The UDP datagram in `packet`, checked: not a fragment, lengths within the packet, and
    /// the checksum right (required over IPv6, RFC 8200 §8.1; zero means none over IPv4).
    pub(crate) fn parse(packet: &[u8]) -> Result<Datagram, &'static str> {
        let (src, dst, protocol, fragment, payload) = match packet.first().map(|b| b >> 4) {
            Some(4) => {
                let (h, payload) = Ipv4Header::parse(packet).map_err(|_| "bad IPv4 header")?;
                (IpAddr::V4(h.src), IpAddr::V4(h.dst), h.protocol, h.is_fragment(), payload)
            }
            Some(6) => {
                let (h, payload) = Ipv6Header::parse(packet).map_err(|_| "bad IPv6 header")?;
                let upper = skip_ipv6_extensions(h.next_header, payload)
                    .map_err(|_| "refused IPv6 extension headers")?;
                (
                    IpAddr::V6(h.src),
                    IpAddr::V6(h.dst),
                    upper.protocol,
                    upper.fragment,
                    upper.payload,
                )
            }
            _ => return Err("not IP"),
        };
        if protocol != PROTOCOL_UDP {
            return Err("not UDP");
        }
        if fragment {
            return Err("a fragment");
        }
        let header = payload.first_chunk::<UDP_HEADER>().ok_or("short UDP header")?;
        let field = |at: usize| u16::from_be_bytes([header[at], header[at + 1]]);
        let len = usize::from(field(4));
        let datagram = payload.get(..len).filter(|_| len >= UDP_HEADER).ok_or("bad UDP length")?;
        let checksum = field(6);
        if checksum != 0 || src.is_ipv6() {
            let mut sum = pseudo_header(src, dst, PROTOCOL_UDP, u32::from(field(4)))
                .map_err(|_| "mixed families")?;
            sum.add_bytes(datagram);
            if checksum == 0 || sum.finish() != 0 {
                return Err("bad UDP checksum");
            }
        }
        Ok(Datagram {
            src: SocketAddr::new(src, field(0)),
            dst: SocketAddr::new(dst, field(2)),
            payload: datagram[UDP_HEADER..].to_vec(),
        })
    }

    /// An IP packet carrying `payload` from `src` to `dst` in a UDP datagram with its checksum,
    /// or `None` when the addresses are of different families or it would exceed `mtu`.
    pub(crate) fn build(
        src: SocketAddr,
        dst: SocketAddr,
        payload: &[u8],
        mtu: usize,
    ) -> Option<Vec<u8>> {
        let udp_len = UDP_HEADER + payload.len();
        let ip_len = if src.is_ipv4() { Ipv4Header::LEN } else { Ipv6Header::LEN };
        if ip_len + udp_len > mtu {
            return None;
        }
        let mut packet = vec![0; ip_len + udp_len];
        let udp_len16 = u16::try_from(udp_len).ok()?;
        match (src.ip(), dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => Ipv4Header {
                src: s,
                dst: d,
                protocol: PROTOCOL_UDP,
                ttl: 64,
                identification: 0,
                dont_fragment: true,
                more_fragments: false,
                fragment_offset: 0,
                total_len: u16::try_from(ip_len + udp_len).ok()?,
                dscp_ecn: 0,
            }
            .emit(&mut packet)
            .ok()?,
            (IpAddr::V6(s), IpAddr::V6(d)) => Ipv6Header {
                src: s,
                dst: d,
                next_header: PROTOCOL_UDP,
                hop_limit: 64,
                payload_len: udp_len16,
                traffic_class: 0,
                flow_label: 0,
            }
            .emit(&mut packet)
            .ok()?,
            _ => return None,
        };
        let udp = &mut packet[ip_len..];
        udp[0..2].copy_from_slice(&src.port().to_be_bytes());
        udp[2..4].copy_from_slice(&dst.port().to_be_bytes());
        udp[4..6].copy_from_slice(&udp_len16.to_be_bytes());
        udp[UDP_HEADER..].copy_from_slice(payload);
        let mut sum = pseudo_header(src.ip(), dst.ip(), PROTOCOL_UDP, u32::from(udp_len16)).ok()?;
        sum.add_bytes(udp);
        // A computed zero is sent as all ones (RFC 768; zero would mean "none").
        let checksum = match sum.finish() {
            0 => 0xffff,
            value => value,
        };
        udp[6..8].copy_from_slice(&checksum.to_be_bytes());
        Some(packet)
    }

    /// What the flows share.
    struct Shared {
        stack: Stack,
        upstream: Upstream,
        mtu: usize,
        trace: bool,
        /// The SOCKS5 server refused UDP ASSOCIATE: said once, and UDP is off.
        refused: AtomicBool,
        /// Datagrams dropped here: flow limit, full queues, answers over the MTU.
        dropped: AtomicU64,
    }

    /// Takes the stack's non-TCP packets and forwards their UDP datagrams until aborted;
    /// returns (when the task ends) the datagrams dropped.
    pub(crate) async fn relay(stack: Stack, upstream: Upstream, mtu: usize, trace: bool) -> u64 {
        let shared = Arc::new(Shared {
            stack,
            upstream,
            mtu,
            trace,
            refused: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
        });
        let mut flows: HashMap<SocketAddr, mpsc::Sender<(SocketAddr, Vec<u8>)>> = HashMap::new();
        let mut tasks = JoinSet::new();
        loop {
            tokio::select! {
                packet = shared.stack.recv_packet() => {
                    let Ok(packet) = packet else { break };
                    let datagram = match parse(&packet) {
                        Ok(datagram) => datagram,
                        Err(why) => {
                            if shared.trace {
                                eprintln!("tunproxy: not forwarded ({why})");
                            }
                            continue;
                        }
                    };
                    if shared.refused.load(Ordering::Relaxed) {
                        continue;
                    }
                    let client = datagram.src;
                    let live = flows.get(&client).filter(|sender| !sender.is_closed()).cloned();
                    let sender = match live {
                        Some(sender) => sender,
                        None => {
                            flows.retain(|_, sender| !sender.is_closed());
                            if flows.len() >= MAX_FLOWS {
                                shared.dropped.fetch_add(1, Ordering::Relaxed);
                                continue;
                            }
                            let (sender, receiver) = mpsc::channel(FLOW_QUEUE);
                            tasks.spawn(flow(Arc::clone(&shared), client, receiver));
                            flows.insert(client, sender.clone());
                            sender
                        }
                    };
                    if sender.try_send((datagram.dst, datagram.payload)).is_err() {
                        shared.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {
                    flows.retain(|_, sender| !sender.is_closed());
                }
            }
        }
        shared.dropped.load(Ordering::Relaxed)
    }

    /// One client source's flow: its upstream, until idle, closed or failed.
    async fn flow(
        shared: Arc<Shared>,
        client: SocketAddr,
        receiver: mpsc::Receiver<(SocketAddr, Vec<u8>)>,
    ) {
        let result = match &shared.upstream {
            Upstream::Interface(interface) => direct(&shared, interface, client, receiver).await,
            Upstream::Socks5(proxy) => socks5(&shared, *proxy, client, receiver).await,
        };
        match result {
            Err(error) if error.kind() == std::io::ErrorKind::Unsupported => {
                if !shared.refused.swap(true, Ordering::Relaxed) {
                    eprintln!(
                        "tunproxy: the SOCKS5 server refuses UDP ASSOCIATE ({error}): UDP is not \
                         forwarded; TCP carries on"
                    );
                }
            }
            Err(error) => eprintln!("tunproxy: UDP {client}: {error}"),
            Ok(()) => {
                if shared.trace {
                    eprintln!("tunproxy: UDP {client}: flow ended");
                }
            }
        }
    }

    /// An answer from `from` to `client`, written back into the device.
    fn answer(shared: &Shared, from: SocketAddr, client: SocketAddr, payload: &[u8]) {
        // An IPv4 source in an IPv6 socket's form (a mapped address) is IPv4.
        let from = match from.ip() {
            IpAddr::V6(v6) if client.is_ipv4() => match v6.to_ipv4_mapped() {
                Some(v4) => SocketAddr::new(IpAddr::V4(v4), from.port()),
                None => from,
            },
            _ => from,
        };
        let sent = build(from, client, payload, shared.mtu)
            .is_some_and(|packet| shared.stack.send_packet(&packet).is_ok());
        if !sent {
            shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
        if shared.trace {
            eprintln!("tunproxy: UDP {from} -> {client}: {} octets", payload.len());
        }
    }

    fn unspecified(like: SocketAddr) -> SocketAddr {
        match like {
            SocketAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
            SocketAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
        }
    }

    /// `--out-iface`: a socket bound to the interface, each datagram sent to its destination.
    async fn direct(
        shared: &Shared,
        interface: &str,
        client: SocketAddr,
        mut receiver: mpsc::Receiver<(SocketAddr, Vec<u8>)>,
    ) -> std::io::Result<()> {
        let socket = UdpSocket::bind(unspecified(client)).await?;
        socket.bind_device(Some(interface.as_bytes()))?;
        let mut buffer = vec![0; 65_536];
        loop {
            tokio::select! {
                next = receiver.recv() => {
                    let Some((target, payload)) = next else { return Ok(()) };
                    if let Err(error) = socket.send_to(&payload, target).await {
                        eprintln!("tunproxy: UDP {client} -> {target}: {error}");
                    }
                }
                got = socket.recv_from(&mut buffer) => {
                    let (len, from) = got?;
                    answer(shared, from, client, &buffer[..len]);
                }
                () = tokio::time::sleep(IDLE) => return Ok(()),
            }
        }
    }

    /// `--socks5`: one UDP ASSOCIATE (RFC 1928 §7) for the flow; datagrams go to the relay
    /// with the request header naming their destination, answers come with their source.
    async fn socks5(
        shared: &Shared,
        proxy: SocketAddr,
        client: SocketAddr,
        mut receiver: mpsc::Receiver<(SocketAddr, Vec<u8>)>,
    ) -> std::io::Result<()> {
        let mut control = tokio::net::TcpStream::connect(proxy).await?;
        // We do not know the address the relay will see us send from: zeros (§4).
        let bound = socks5_request(&mut control, SOCKS5_UDP_ASSOCIATE, unspecified(proxy)).await?;
        let relay = if bound.ip().is_unspecified() {
            SocketAddr::new(proxy.ip(), bound.port())
        } else {
            bound
        };
        let socket = UdpSocket::bind(unspecified(relay)).await?;
        socket.connect(relay).await?;
        let mut buffer = vec![0; 65_536];
        let mut request = Vec::with_capacity(2_048);
        let mut control_byte = [0u8; 1];
        loop {
            tokio::select! {
                next = receiver.recv() => {
                    let Some((target, payload)) = next else { return Ok(()) };
                    // RSV (2 octets), FRAG 0 (not fragmented), the destination, the data.
                    request.clear();
                    request.extend_from_slice(&[0, 0, 0]);
                    socks5_address(target, &mut request);
                    request.extend_from_slice(&payload);
                    socket.send(&request).await?;
                }
                got = socket.recv(&mut buffer) => {
                    let len = got?;
                    match socks5_datagram(&buffer[..len]) {
                        Some((from, payload)) => answer(shared, from, client, payload),
                        None => {
                            shared.dropped.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                // The association lives as long as its control connection (§7).
                read = control.read(&mut control_byte) => {
                    return match read {
                        Ok(0) => Err(std::io::Error::other("SOCKS5 closed the association")),
                        Ok(_) => Err(std::io::Error::other("SOCKS5 sent data on the association")),
                        Err(error) => Err(error),
                    };
                }
                () = tokio::time::sleep(IDLE) => return Ok(()),
            }
        }
    }

    /// The source and data of a datagram from a SOCKS5 UDP relay; `None` for a fragment
    /// (FRAG not 0: reassembly is optional, §7, and not done here), a domain name or a short
    /// header.
    pub(crate) fn socks5_datagram(datagram: &[u8]) -> Option<(SocketAddr, &[u8])> {
        let (&[_, _, frag, kind], rest) = datagram.split_first_chunk::<4>()?;
        if frag != 0 {
            return None;
        }
        let (ip, rest): (IpAddr, &[u8]) = match kind {
            1 => {
                let (ip, rest) = rest.split_first_chunk::<4>()?;
                (IpAddr::from(*ip), rest)
            }
            4 => {
                let (ip, rest) = rest.split_first_chunk::<16>()?;
                (IpAddr::from(*ip), rest)
            }
            _ => return None,
        };
        let (port, data) = rest.split_first_chunk::<2>()?;
        Some((SocketAddr::new(ip, u16::from_be_bytes(*port)), data))
    }
}
