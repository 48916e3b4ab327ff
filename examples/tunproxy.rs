//! A transparent TCP proxy on a TUN device, over the async stack.
//!
//! ```text
//! tunproxy --tun NAME --local-ip IP (--socks5 HOST:PORT | --out-iface IFACE) [--trace]
//! ```
//!
//! It attaches to the existing TUN device NAME (made and routed by the user: `ip tuntap add
//! dev NAME mode tun`, `ip link set NAME up`, and a route sending the traffic to catch into
//! it) and catches every TCP connection that enters it, whatever its destination, with a
//! deferred catch-all listener: for each SYN it first connects to the connection's original
//! destination — through the SOCKS5 server at HOST:PORT (`--socks5`: CONNECT, no
//! authentication) or directly with a kernel socket bound to IFACE (`--out-iface`:
//! `SO_BINDTODEVICE`, so its own traffic cannot loop back into the TUN) — and only then
//! answers the SYN and splices the two with `copy_bidirectional` (each direction's end is
//! passed on as a half-close). A connection whose upstream connect fails (or takes 20 s) is
//! refused: the client sees a RST, "connection refused".
//!
//! `--local-ip` is the address the stack owns on the device (the source of what it opens and
//! of its ICMP); caught connections answer from their original destination. `--trace` prints
//! every packet in and out on stderr. SIGINT or SIGTERM stops accepting, closes every
//! connection in order (FIN both ways), waits for them to end (10 s at most) and exits 0.
//! Other IP packets entering the device (UDP, ICMP echo) are not forwarded: the stack keeps a
//! bounded number for `Stack::recv_packet` and counts the rest.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use tcp_proto::stack::{Incoming, Stack, StackConfig, TcpListener, TunDevice};
use tcp_proto::{Config, EndpointConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio::task::JoinSet;

const USAGE: &str =
    "usage: tunproxy --tun NAME --local-ip IP (--socks5 HOST:PORT | --out-iface IFACE) [--trace]";

/// How long an upstream connect may take before the client is refused.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
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
    local_ip: IpAddr,
    upstream: Upstream,
    trace: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut tun, mut local_ip, mut upstream, mut trace) = (None, None, None, false);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--tun" => tun = Some(value()?),
            "--local-ip" => {
                local_ip = Some(value()?.parse().map_err(|e| format!("--local-ip: {e}"))?);
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
        local_ip: local_ip.ok_or("--local-ip is required")?,
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
    let protocol = |what: &str| std::io::Error::other(format!("SOCKS5: {what}"));
    let mut stream = tokio::net::TcpStream::connect(proxy).await?;
    stream.write_all(&[5, 1, 0]).await?;
    let mut choice = [0; 2];
    stream.read_exact(&mut choice).await?;
    if choice != [5, 0] {
        return Err(protocol("the server wants authentication"));
    }
    let mut request = vec![5, 1, 0];
    match target.ip() {
        IpAddr::V4(ip) => {
            request.push(1);
            request.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            request.push(4);
            request.extend_from_slice(&ip.octets());
        }
    }
    request.extend_from_slice(&target.port().to_be_bytes());
    stream.write_all(&request).await?;
    let mut head = [0; 4];
    stream.read_exact(&mut head).await?;
    if head[0] != 5 {
        return Err(protocol("not a SOCKS5 reply"));
    }
    if head[1] != 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            format!("SOCKS5: CONNECT failed with reply {}", head[1]),
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
    stream.set_nodelay(true)?;
    Ok(stream)
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
        result = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {
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
    let mut config = StackConfig::new(
        EndpointConfig::new(Config::new(random_secret()?), random_secret()?),
        args.local_ip,
    );
    config.mtu = device.mtu();
    let (stack, driver) = Stack::new(config, device);
    stack.set_trace(args.trace);
    let driver = tokio::spawn(driver);
    let listener = TcpListener::bind_any_deferred(&stack, 1024)?;
    let (stop, stopping) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    eprintln!("tunproxy: catching TCP on {} ({})", args.tun, args.local_ip);
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
