//! A netcat over tcp-proto: the sans-IO core on a real wire.
//!
//! ```text
//! nc (--udp BIND_IP:PORT --udp-peer IP:PORT | --tun NAME) [--local-ip IP]
//!    [--msl MS] [--pcap FILE] [--trace] [--nodelay] [--no-df] [--no-black-hole-fallback]
//!    [--no-sack] [--no-timestamps] [--no-offload] [--no-gso] [--no-gro] [--stats]
//!    (-l PORT [--echo] | HOST PORT)
//! ```
//!
//! - `HOST PORT` connects: stdin goes to the connection, the connection to stdout. At stdin
//!   EOF it sends FIN (a half-close) and reads on until the peer's FIN; after an orderly close
//!   it stays in TIME-WAIT for 2×MSL (said on stderr), answering as TCP must, then exits 0.
//!   Refused, reset or timed out: one line on stderr and exit status 1.
//! - `-l PORT` listens on `--local-ip:PORT`. With `--echo` every accepted connection gets its
//!   bytes back and its sending side closed once the peer's FIN is in and all is echoed; it
//!   keeps listening. Without `--echo` the first connection is stdin/stdout, as above.
//! - `--udp` carries one IP packet per UDP datagram to `--udp-peer` (either may be IPv6:
//!   `[::1]:7001`); `--tun` uses a Linux TUN device (see `tcp_proto::adapter::tun`).
//! - `--local-ip` (IPv4 or IPv6; HOST likewise) is the stack's own address. Without it the
//!   adapter chooses (RFC 9293 MUST-44, `tcp_proto::adapter::source`): over TUN the far end
//!   of the device's configured addresses (the kernel's 10.0.0.1/24 gives 10.0.0.2, fd00::1/64
//!   gives fd00::2; a configured point-to-point peer is taken as it is), over UDP the
//!   socket's local address toward the peer. A connection starts from the chosen address of
//!   HOST's family; `-l` listens on every chosen address. `--trace` prints every segment and state
//!   change on stderr (ICMP errors too), and the driver's `tracing` events (drops with their
//!   reason, resets sent, connections ended, retransmission timeouts); `--pcap` writes every packet to a capture file.
//! - Path MTU: packets leave with DF set, and a router's ICMP "fragmentation needed" shrinks the
//!   segments (RFC 1191). `--no-df` clears DF so routers fragment instead (for paths that
//!   filter ICMP); `--no-black-hole-fallback` stops the connection from lowering its MTU on
//!   its own after repeated timeouts of full-sized segments (RFC 4821 §7.7).
//! - SACK with SACK-based loss recovery (RFC 2018, RFC 2883, RFC 6675, RFC 8985 RACK-TLP) and
//!   timestamps (RFC 7323) are offered by default; `--no-sack` and `--no-timestamps` stop
//!   offering them (for a path whose middleboxes mangle options, or to compare).
//! - Offloads are on wherever the kernel has them: over TUN the virtio-net header with
//!   checksum offload, 64 KiB super-segments for the kernel to cut (GSO) and coalesced ones
//!   from it (TSO); over UDP `sendmmsg`/`recvmmsg` batches, `UDP_SEGMENT` and `UDP_GRO`.
//!   `--no-offload` turns them all off (one plain packet per system call, to compare);
//!   `--no-gso` keeps everything but super-segments, `--no-gro` everything but coalesced
//!   input. Stdin is handed to the connection as chunks, without a copy. `--stats` prints the
//!   driver's and the endpoint's counters on stderr at the end.
//!
//! Over UDP on one host, for example:
//! `nc --udp 127.0.0.1:7001 --udp-peer 127.0.0.1:7002 --local-ip 10.0.0.1 -l 80 --echo` and
//! `nc --udp 127.0.0.1:7002 --udp-peer 127.0.0.1:7001 --local-ip 10.0.0.2 10.0.0.1 80`.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::time::Duration;

use bytes::Bytes;
use tcp_proto::adapter::PacketTransport;
use tcp_proto::adapter::driver::Driver;
use tcp_proto::adapter::source::choose_source;
use tcp_proto::adapter::tun::{TunDevice, TunOffloads};
use tcp_proto::adapter::udp::{UdpOffloads, UdpTransport};
use tcp_proto::{
    CloseReason, Config, ConnectionHandle, EndpointConfig, EndpointError, EndpointEvent, Event,
    State,
};

const USAGE: &str = "usage: nc (--udp BIND_IP:PORT --udp-peer IP:PORT | --tun NAME) [--local-ip IP]
          [--msl MS] [--pcap FILE] [--trace] [--nodelay] [--no-df] [--no-black-hole-fallback]
          [--no-sack] [--no-timestamps] [--no-offload] [--no-gso] [--no-gro] [--stats]
          (-l PORT [--echo] | HOST PORT)";

/// How long one driver round waits at most, so stdin is looked at often.
const ROUND: Duration = Duration::from_millis(2);

#[derive(Debug)]
enum Transport {
    Udp { bind: SocketAddr, peer: SocketAddr },
    Tun(String),
}

#[derive(Debug)]
enum Mode {
    Listen { port: u16, echo: bool },
    Connect { host: IpAddr, port: u16 },
}

#[derive(Debug)]
struct Args {
    transport: Transport,
    /// The stack's address; chosen by the adapter when not given (MUST-44).
    local_ip: Option<IpAddr>,
    msl: Duration,
    pcap: Option<PathBuf>,
    trace: bool,
    nodelay: bool,
    /// Clear DF on outgoing IPv4 packets.
    no_df: bool,
    /// Turn the black-hole fall-back off.
    no_black_hole_fallback: bool,
    /// Do not offer SACK (RFC 2018).
    no_sack: bool,
    /// Do not offer timestamps (RFC 7323).
    no_timestamps: bool,
    /// Which offloads to leave off.
    offload: Offload,
    /// Print counters at the end.
    stats: bool,
    mode: Mode,
}

/// The offloads asked for: all by default.
#[derive(Clone, Copy, Debug)]
struct Offload {
    all: bool,
    gso: bool,
    gro: bool,
}

impl Offload {
    fn tun(self) -> TunOffloads {
        if !self.all {
            return TunOffloads::NONE;
        }
        TunOffloads { tx_gso: self.gso, rx_tso: self.gro, ..TunOffloads::ALL }
    }

    fn udp(self) -> UdpOffloads {
        if !self.all {
            return UdpOffloads::NONE;
        }
        UdpOffloads { gso: self.gso, gro: self.gro, ..UdpOffloads::ALL }
    }
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    fn value<T: std::str::FromStr>(
        flag: &str,
        args: &mut impl Iterator<Item = String>,
    ) -> Result<T, String> {
        let raw = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        raw.parse().map_err(|_| format!("{flag}: cannot use {raw:?}"))
    }
    let (mut udp, mut udp_peer, mut tun, mut local_ip) = (None, None, None, None);
    let (mut msl, mut pcap, mut trace, mut nodelay) = (30_000u64, None, false, false);
    let (mut listen, mut echo, mut positional) = (None, false, Vec::new());
    let (mut no_df, mut no_black_hole_fallback) = (false, false);
    let (mut no_sack, mut no_timestamps) = (false, false);
    let mut offload = Offload { all: true, gso: true, gro: true };
    let mut stats = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--udp" => udp = Some(value::<SocketAddr>("--udp", &mut args)?),
            "--udp-peer" => udp_peer = Some(value::<SocketAddr>("--udp-peer", &mut args)?),
            "--tun" => tun = Some(value::<String>("--tun", &mut args)?),
            "--local-ip" => local_ip = Some(value::<IpAddr>("--local-ip", &mut args)?),
            "--msl" => msl = value("--msl", &mut args)?,
            "--pcap" => pcap = Some(value::<PathBuf>("--pcap", &mut args)?),
            "--trace" => trace = true,
            "--stats" => stats = true,
            "--nodelay" => nodelay = true,
            "--no-df" => no_df = true,
            "--no-black-hole-fallback" => no_black_hole_fallback = true,
            "--no-sack" => no_sack = true,
            "--no-timestamps" => no_timestamps = true,
            "--no-offload" => offload.all = false,
            "--no-gso" => offload.gso = false,
            "--no-gro" => offload.gro = false,
            "-l" => listen = Some(value::<u16>("-l", &mut args)?),
            "--echo" => echo = true,
            "-h" | "--help" => return Err(String::new()),
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            _ => positional.push(arg),
        }
    }
    let transport = match (udp, udp_peer, tun) {
        (Some(bind), Some(peer), None) => Transport::Udp { bind, peer },
        (None, None, Some(name)) => Transport::Tun(name),
        (Some(_), None, None) => return Err("--udp needs --udp-peer".into()),
        _ => return Err("give either --udp and --udp-peer, or --tun".into()),
    };
    let mode = match (listen, positional.as_slice()) {
        (Some(port), []) => Mode::Listen { port, echo },
        (None, [host, port]) => {
            if echo {
                return Err("--echo goes with -l".into());
            }
            let host = host.parse().map_err(|_| format!("HOST must be an IP address: {host}"))?;
            let port = port.parse().map_err(|_| format!("bad PORT {port}"))?;
            Mode::Connect { host, port }
        }
        _ => return Err("give either -l PORT or HOST PORT".into()),
    };
    Ok(Args {
        transport,
        local_ip,
        msl: Duration::from_millis(msl),
        pcap,
        trace,
        nodelay,
        no_df,
        no_black_hole_fallback,
        no_sack,
        no_timestamps,
        offload,
        stats,
        mode,
    })
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("nc: {message}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match &args.transport {
        Transport::Udp { bind, peer } => {
            UdpTransport::with_offloads(*bind, *peer, args.offload.udp()).and_then(|t| {
                let candidates = vec![t.source_address()?];
                run(t, &candidates, &args)
            })
        }
        Transport::Tun(name) => TunDevice::attach_with(name, args.offload.tun()).and_then(|t| {
            let candidates = t.source_addresses()?;
            run(t, &candidates, &args)
        }),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("nc: {error}");
            ExitCode::from(1)
        }
    }
}

/// 16 random octets for the ISN and endpoint secrets.
fn secret() -> io::Result<[u8; 16]> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes)
}

/// The stack's addresses: `--local-ip`, or the adapter's `candidates` (MUST-44).
fn own_addresses(args: &Args, candidates: &[IpAddr]) -> io::Result<Vec<IpAddr>> {
    if let Some(ip) = args.local_ip {
        return Ok(vec![ip]);
    }
    if candidates.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            "no --local-ip, and the device has no address to choose one from",
        ));
    }
    Ok(candidates.to_vec())
}

fn run<T: PacketTransport>(
    transport: T,
    candidates: &[IpAddr],
    args: &Args,
) -> io::Result<ExitCode> {
    let own = own_addresses(args, candidates)?;
    let mut config = Config::new(secret()?);
    config.msl = args.msl;
    config.nodelay = args.nodelay;
    config.black_hole_fallback = !args.no_black_hole_fallback;
    config.sack = !args.no_sack;
    config.timestamps = !args.no_timestamps;
    config.mtu = u16::try_from(transport.mtu()).unwrap_or(u16::MAX);
    config.send_buffer = 256 * 1024;
    config.recv_buffer = 256 * 1024;
    // The endpoint leaves to the transport the checksum work it offloads.
    let mut endpoint = EndpointConfig::new(config, secret()?);
    // The TIME-WAIT line and `--trace`'s state lines come from the state-change events.
    endpoint.state_events = true;
    let mut driver = Driver::with_config(endpoint, transport);
    for address in &own {
        driver.add_address(*address);
    }
    driver.set_trace(args.trace);
    if args.trace {
        // The driver's `tracing` events too: drops with their reason, resets sent,
        // connections ended and retransmission timeouts, once per round.
        let _ = tracing::subscriber::set_global_default(StderrEvents);
    }
    driver.set_dont_fragment(!args.no_df);
    if let Some(path) = &args.pcap {
        driver.capture_to(path)?;
    }
    let echo_mode = matches!(args.mode, Mode::Listen { echo: true, .. });
    let stdout = std::fs::File::from(io::stdout().as_fd().try_clone_to_owned()?);
    let mut nc = Nc {
        driver,
        read_buf: vec![0; 256 * 1024],
        stdout,
        trace: args.trace,
        stats: args.stats,
        echo_mode,
        stdio: None,
        echo: BTreeMap::new(),
    };
    match args.mode {
        Mode::Connect { host, port } => {
            let remote = SocketAddr::new(host, port);
            let source = choose_source(&own, host).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::AddrNotAvailable,
                    format!("no address of {host}'s family to connect from"),
                )
            })?;
            if args.trace {
                eprintln!("nc: connecting from {source}");
            }
            let now = nc.driver.now();
            let handle =
                nc.driver.endpoint_mut().connect(now, source, remote).map_err(io::Error::other)?;
            nc.stdio = Some(Stdio::new(handle));
            nc.run_stdio(args.msl)
        }
        Mode::Listen { port, echo } => {
            for address in &own {
                let local = SocketAddr::new(*address, port);
                nc.driver.endpoint_mut().listen(local, 16).map_err(io::Error::other)?;
            }
            if echo {
                loop {
                    nc.round()?;
                }
            }
            nc.run_stdio(args.msl)
        }
    }
}

/// The connection wired to stdin and stdout.
struct Stdio {
    handle: ConnectionHandle,
    stdin: Input,
    /// Read from stdin, not yet taken by the connection.
    pending: Bytes,
    /// The last offer of input was refused in part (the send buffer is full, or the
    /// connection not open for data yet): wait for the network before offering more.
    blocked: bool,
    stdin_done: bool,
    /// ESTABLISHED was reached: before it, a CLOSE would delete the connection instead of
    /// queueing a FIN (RFC 9293 §3.10.4, SYN-SENT), so end of input waits for this.
    connected: bool,
    fin_sent: bool,
    time_wait: bool,
    ended: Option<CloseReason>,
}

/// Where input comes from.
enum Input {
    /// Stdin is a regular file, mapped: the connection queues slices of the mapping, so the
    /// file's octets go from the page cache to the wire with no copy here.
    Mapped(Bytes),
    /// Stdin is a regular file that could not be mapped: read in the loop itself, as the
    /// connection takes more (a read of a file does not wait on anyone), into chunks handed
    /// over without a copy.
    File(std::fs::File),
    /// Anything else (a pipe, a terminal): a thread reads it, so the loop never blocks on it.
    Thread(Receiver<Bytes>),
}

/// Octets read from a regular file at a time.
const FILE_CHUNK: usize = 256 * 1024;

impl Stdio {
    fn new(handle: ConnectionHandle) -> Self {
        let file = io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .ok()
            .map(std::fs::File::from)
            .filter(|file| file.metadata().is_ok_and(|meta| meta.is_file()));
        let stdin = match file {
            Some(file) => match mapped::map(&file) {
                Some(mapping) => Input::Mapped(mapping),
                None => Input::File(file),
            },
            None => Input::Thread(Self::reader_thread()),
        };
        Self {
            handle,
            stdin,
            pending: Bytes::new(),
            blocked: false,
            stdin_done: false,
            connected: false,
            fin_sent: false,
            time_wait: false,
            ended: None,
        }
    }

    /// The next chunk of input, if one is ready: `Some(empty)` at its end.
    fn next_chunk(&mut self) -> io::Result<Option<Bytes>> {
        match &mut self.stdin {
            // The whole file at once (then its end): the connection takes what fits.
            Input::Mapped(mapping) => Ok(Some(core::mem::take(mapping))),
            Input::File(file) => {
                // Read into spare capacity: nothing to zero first.
                let mut chunk = Vec::with_capacity(FILE_CHUNK);
                (&*file).take(FILE_CHUNK as u64).read_to_end(&mut chunk)?;
                Ok(Some(Bytes::from(chunk)))
            }
            Input::Thread(receiver) => match receiver.try_recv() {
                Ok(chunk) => Ok(Some(chunk)),
                Err(TryRecvError::Empty) => Ok(None),
                Err(TryRecvError::Disconnected) => Ok(Some(Bytes::new())),
            },
        }
    }

    /// More input can be offered now, without waiting for the network or the reader thread.
    fn ready(&self) -> bool {
        matches!(self.stdin, Input::File(_) | Input::Mapped(_))
            && self.connected
            && !self.blocked
            && !self.stdin_done
            && !self.fin_sent
            && self.ended.is_none()
    }

    fn reader_thread() -> Receiver<Bytes> {
        let (sender, stdin) = mpsc::sync_channel::<Bytes>(8);
        std::thread::spawn(move || {
            let mut input = io::stdin().lock();
            loop {
                let mut chunk = vec![0u8; 64 * 1024];
                match input.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(len) => {
                        chunk.truncate(len);
                        if sender.send(Bytes::from(chunk)).is_err() {
                            return;
                        }
                    }
                }
            }
            // An empty chunk says end of input.
            let _ = sender.send(Bytes::new());
        });
        stdin
    }
}

/// One echoed connection: bytes received and not yet sent back.
#[derive(Default)]
struct Echo {
    pending: Vec<u8>,
    peer_closed: bool,
    closed: bool,
}

struct Nc<T> {
    driver: Driver<T>,
    /// Room for what the stdin/stdout connection received, on its way to stdout.
    read_buf: Vec<u8>,
    /// Stdout, unbuffered (its descriptor, duplicated).
    stdout: std::fs::File,
    trace: bool,
    /// Print the driver's and endpoint's counters at the end.
    stats: bool,
    /// `-l --echo`: every connection is echoed and none is stdin/stdout.
    echo_mode: bool,
    stdio: Option<Stdio>,
    echo: BTreeMap<ConnectionHandle, Echo>,
}

impl<T: PacketTransport> Nc<T> {
    /// Runs until the stdin/stdout connection (the first accepted one, when listening) is
    /// over, then waits out TIME-WAIT if it is in it.
    fn run_stdio(&mut self, msl: Duration) -> io::Result<ExitCode> {
        loop {
            self.round()?;
            let Some(stdio) = &self.stdio else { continue };
            match stdio.ended {
                None => {}
                Some(CloseReason::Orderly) => break,
                Some(CloseReason::Error(error)) => {
                    eprintln!("nc: {error}");
                    return Ok(ExitCode::from(1));
                }
            }
        }
        if self.stdio.as_ref().is_some_and(|stdio| stdio.time_wait) {
            eprintln!(
                "nc: TIME-WAIT: staying {} ms (2×MSL) to answer the peer",
                msl.as_millis() * 2
            );
            while self.driver.endpoint().time_wait_count() > 0 {
                self.round()?;
            }
        }
        if self.stats {
            eprintln!("nc: driver {:?}", self.driver.counters());
            eprintln!("nc: endpoint {:?}", self.driver.endpoint().counters());
        }
        Ok(ExitCode::SUCCESS)
    }

    /// One driver round, then events, then stdin and echo output.
    fn round(&mut self) -> io::Result<()> {
        // With input ready and room for it, do not sleep on the network.
        let wait =
            if self.stdio.as_ref().is_some_and(Stdio::ready) { Duration::ZERO } else { ROUND };
        self.driver.poll(wait)?;
        // Drained through the driver, which logs connections' ends (`tracing` events).
        while let Some(event) = self.driver.poll_event() {
            self.on_event(event)?;
        }
        self.pump_stdin()?;
        self.pump_echo();
        self.driver.flush()
    }

    fn on_event(&mut self, event: EndpointEvent) -> io::Result<()> {
        match event {
            EndpointEvent::Acceptable { listener } => self.accept(listener),
            EndpointEvent::Connection(handle, event) => {
                if self.trace {
                    eprintln!("nc: {handle}: {event:?}");
                }
                if self.stdio.as_ref().is_some_and(|stdio| stdio.handle == handle) {
                    self.on_stdio_event(event)?;
                } else if self.echo.contains_key(&handle) {
                    self.on_echo_event(handle, event);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn accept(&mut self, listener: SocketAddr) -> io::Result<()> {
        while let Ok(Some(handle)) = self.driver.endpoint_mut().accept(listener) {
            if self.echo_mode {
                self.echo.insert(handle, Echo::default());
                // Data may already be waiting.
                self.on_echo_event(handle, Event::Readable);
            } else if self.stdio.is_none() {
                let mut stdio = Stdio::new(handle);
                // Accepted connections are ESTABLISHED already.
                stdio.connected = true;
                self.stdio = Some(stdio);
                // One stdin, one connection: later SYNs are refused.
                let _ = self.driver.endpoint_mut().unlisten(listener);
                self.on_stdio_event(Event::Readable)?;
            } else {
                // Accepted before the listener went: there is no stdin for it.
                let now = self.driver.now();
                let _ = self.driver.endpoint_mut().abort(now, handle);
            }
        }
        Ok(())
    }

    fn on_stdio_event(&mut self, event: Event) -> io::Result<()> {
        let endpoint = self.driver.endpoint_mut();
        let Some(stdio) = self.stdio.as_mut() else { return Ok(()) };
        match event {
            Event::Readable | Event::PeerClosed => {
                // Large reads, written straight to the descriptor: stdout's own line buffer
                // would scan every octet for a newline.
                let buf = &mut self.read_buf;
                while let Ok(len) = endpoint.recv(stdio.handle, buf) {
                    if len == 0 {
                        break;
                    }
                    self.stdout.write_all(buf.get(..len).unwrap_or_default())?;
                }
            }
            Event::Connected => stdio.connected = true,
            Event::StateChanged { to: State::TimeWait, .. } => stdio.time_wait = true,
            Event::Closed(reason) => stdio.ended = Some(reason),
            _ => {}
        }
        Ok(())
    }

    fn on_echo_event(&mut self, handle: ConnectionHandle, event: Event) {
        let endpoint = self.driver.endpoint_mut();
        let Some(echo) = self.echo.get_mut(&handle) else { return };
        match event {
            Event::Readable | Event::PeerClosed => {
                let mut buf = [0u8; 16 * 1024];
                loop {
                    match endpoint.recv(handle, &mut buf) {
                        Ok(0) => break,
                        Ok(len) => echo.pending.extend_from_slice(&buf[..len]),
                        // End of stream: the peer's FIN is in and all was read.
                        Err(EndpointError::Call(_)) => {
                            echo.peer_closed = true;
                            break;
                        }
                        Err(_) => break,
                    }
                }
            }
            Event::Closed(_) => echo.closed = true,
            _ => {}
        }
    }

    /// Sends what stdin gave; at its end, half-closes once everything is taken.
    fn pump_stdin(&mut self) -> io::Result<()> {
        let now = self.driver.now();
        let endpoint = self.driver.endpoint_mut();
        let Some(stdio) = self.stdio.as_mut() else { return Ok(()) };
        if stdio.ended.is_some() || stdio.fin_sent {
            return Ok(());
        }
        stdio.blocked = false;
        loop {
            if stdio.pending.is_empty() && !stdio.stdin_done {
                match stdio.next_chunk()? {
                    Some(chunk) if chunk.is_empty() => stdio.stdin_done = true,
                    Some(chunk) => stdio.pending = chunk,
                    None => return Ok(()),
                }
            }
            if !stdio.pending.is_empty() {
                // By reference: the chunk is queued, not copied.
                let sent = match endpoint.send_bytes(now, stdio.handle, stdio.pending.clone()) {
                    Ok(sent) => sent,
                    // Not open for data (yet, or any more): try again next round, or let the
                    // close event end things.
                    Err(_) => {
                        stdio.blocked = true;
                        return Ok(());
                    }
                };
                let _ = stdio.pending.split_to(sent.min(stdio.pending.len()));
                if !stdio.pending.is_empty() {
                    // The send buffer is full.
                    stdio.blocked = true;
                    return Ok(());
                }
            }
            if stdio.stdin_done && stdio.pending.is_empty() {
                if stdio.connected && endpoint.shutdown(now, stdio.handle).is_ok() {
                    stdio.fin_sent = true;
                }
                return Ok(());
            }
        }
    }

    /// Sends echoed bytes back; closes each connection's sending side once the peer's FIN is
    /// in and everything is echoed.
    fn pump_echo(&mut self) {
        let now = self.driver.now();
        let endpoint = self.driver.endpoint_mut();
        self.echo.retain(|&handle, echo| {
            if !echo.pending.is_empty()
                && let Ok(sent) = endpoint.send(now, handle, &echo.pending)
            {
                echo.pending.drain(..sent);
            }
            if echo.peer_closed && echo.pending.is_empty() && !echo.closed {
                echo.closed = endpoint.close(now, handle).is_ok();
            }
            // Forget it once the endpoint has (its handle goes stale).
            endpoint.status(handle).is_ok()
        });
    }
}

/// A read-only mapping of the input file, as `Bytes` (the one `unsafe` corner of this example).
mod mapped {
    #![allow(unsafe_code)]

    use std::fs::File;
    use std::os::fd::AsRawFd;

    use bytes::Bytes;

    /// The mapping; unmapped when the last `Bytes` slice of it goes.
    struct Mapping {
        address: *mut libc::c_void,
        len: usize,
    }

    // SAFETY: the mapping is read-only memory owned by this value alone; reading it from any
    // thread is as safe as reading a `&[u8]`.
    unsafe impl Send for Mapping {}
    // SAFETY: as above: shared access is reads only.
    unsafe impl Sync for Mapping {}

    impl AsRef<[u8]> for Mapping {
        fn as_ref(&self) -> &[u8] {
            // SAFETY: `address` is the start of a live PROT_READ mapping of `len` octets
            // (made in `map`, unmapped only in `drop`), valid for reads while `self` lives.
            // The file is the caller's stdin: should someone truncate it meanwhile, reads past
            // the new end raise SIGBUS, as for any program reading a mapped file.
            unsafe { core::slice::from_raw_parts(self.address.cast::<u8>(), self.len) }
        }
    }

    impl Drop for Mapping {
        fn drop(&mut self) {
            // SAFETY: the mapping made in `map`, unmapped once; no slice of it outlives
            // `self` (`Bytes` drops its owner after its last slice).
            unsafe { libc::munmap(self.address, self.len) };
        }
    }

    /// The whole of `file` as one `Bytes`, or `None` (empty, or the kernel would not map it:
    /// the caller reads it instead).
    pub(super) fn map(file: &File) -> Option<Bytes> {
        let len = usize::try_from(file.metadata().ok()?.len()).ok().filter(|&len| len > 0)?;
        // SAFETY: a new private read-only mapping chosen by the kernel (no address given), of
        // an open descriptor, at offset 0; no existing memory is touched.
        let address = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        if address == libc::MAP_FAILED {
            return None;
        }
        // Read ahead generously: it is read once, front to back. A refusal costs nothing.
        // SAFETY: advice on the mapping just made, of its exact length.
        unsafe { libc::madvise(address, len, libc::MADV_SEQUENTIAL) };
        Some(Bytes::from_owner(Mapping { address, len }))
    }
}

/// A `tracing` subscriber for `--trace`: every event of the driver on stderr, one line each
/// (`nc: LEVEL message field=value …`). Spans are not used by the crate.
struct StderrEvents;

/// An event's fields as text.
struct EventLine(String);

impl tracing::field::Visit for EventLine {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        if field.name() == "message" {
            let _ = write!(self.0, " {value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

impl tracing::Subscriber for StderrEvents {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target().starts_with("tcp_proto")
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut line = EventLine(format!("nc: {}", event.metadata().level()));
        event.record(&mut line);
        eprintln!("{}", line.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}
