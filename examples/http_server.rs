//! A static-file HTTP/1.1 server on a TUN device, over the async stack.
//!
//! ```text
//! http_server --tun NAME --local-ip IP --port PORT --root DIR [--trace]
//! ```
//!
//! It attaches to the existing TUN device NAME (made, addressed and brought up by the user:
//! `ip tuntap add dev NAME mode tun`, `ip addr add …`, `ip link set NAME up`), owns IP (IPv4
//! or IPv6) on it and serves the files under DIR on IP:PORT, any number of connections at
//! once (one task each). `--trace` prints every packet in and out on stderr, and each
//! connection's statistics as it ends (`TcpStream::info`: octets, RTT, retransmissions by
//! cause, recoveries, SACK blocks). SIGINT or SIGTERM stops it (exit 0). It prints `http_server: serving DIR on IP:PORT` once it listens.
//!
//! **Why its own small responder and not hyper.** What is served is a fixed set of files
//! with GET and HEAD: a request line, a few headers read, a status line and three headers
//! written. That is about 150 lines here, against hyper plus `hyper-util`, `http`,
//! `http-body-util` and their dependencies for the example alone, and hyper's body plumbing
//! would stand between the file and `TcpStream`'s backpressure this example is meant to show.
//! What it does:
//! - HTTP/1.1 and 1.0: GET and HEAD (405 with `Allow` otherwise), keep-alive (1.1 unless
//!   `Connection: close`; 1.0 only with `Connection: keep-alive`), pipelined requests answered
//!   in order, `Content-Length` on every answer; 400 for anything malformed, for a request with
//!   a body, and for a header block over 8 KiB (then the connection is closed); 404 for what
//!   is not a regular file under DIR (a directory serves its `index.html`).
//! - Paths are refused (404) when they could leave DIR: `..` components (also
//!   percent-encoded), backslashes, NUL, and symbolic links whose target is outside DIR (the
//!   resolved path must start with DIR's resolved path). Only origin-form targets (`/path`)
//!   are taken: an absolute-form or `*` target is a 400.
//! - Files are streamed in 64 KiB reads, each written before the next is read: memory per
//!   connection is one chunk whatever the file's size, and a slow client slows the reads
//!   (the stream's send buffer is the backpressure).
//! - An idle keep-alive connection is closed after 30 s.

use std::net::{IpAddr, SocketAddr};
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use tcp_proto::stack::{Stack, StackConfig, TcpListener, TcpStream, TunDevice};
use tcp_proto::{Config, EndpointConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::signal::unix::{SignalKind, signal};

const USAGE: &str = "usage: http_server --tun NAME --local-ip IP --port PORT --root DIR [--trace]";

/// The largest request head (request line and headers) read.
const MAX_HEAD: usize = 8 * 1024;
/// The size of each file read, and so of the memory a transfer holds.
const CHUNK: usize = 64 * 1024;
/// How long a keep-alive connection may wait for its next request.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

struct Args {
    tun: String,
    local_ip: IpAddr,
    port: u16,
    root: PathBuf,
    trace: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut tun, mut local_ip, mut port, mut root, mut trace) = (None, None, None, None, false);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--tun" => tun = Some(value()?),
            "--local-ip" => {
                local_ip = Some(value()?.parse().map_err(|e| format!("--local-ip: {e}"))?);
            }
            "--port" => port = Some(value()?.parse().map_err(|e| format!("--port: {e}"))?),
            "--root" => root = Some(PathBuf::from(value()?)),
            "--trace" => trace = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        tun: tun.ok_or("--tun is required")?,
        local_ip: local_ip.ok_or("--local-ip is required")?,
        port: port.ok_or("--port is required")?,
        root: root.ok_or("--root is required")?,
        trace,
    })
}

fn random_secret() -> std::io::Result<[u8; 16]> {
    let mut secret = [0; 16];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut secret)?;
    Ok(secret)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(error) => {
            eprintln!("http_server: {error}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("http_server: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> std::io::Result<()> {
    // Resolved once: every served path must resolve to somewhere under it.
    let root = std::fs::canonicalize(&args.root)?;
    let device = TunDevice::attach(&args.tun)?;
    let mut config = StackConfig::new(
        EndpointConfig::new(Config::new(random_secret()?), random_secret()?),
        args.local_ip,
    );
    config.mtu = device.mtu();
    let (stack, driver) = Stack::new(config, device);
    stack.set_trace(args.trace);
    let driver = tokio::spawn(driver);
    let local = SocketAddr::new(args.local_ip, args.port);
    let listener = TcpListener::bind_with_backlog(&stack, local, 1024)?;
    let root = std::sync::Arc::new(root);
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    eprintln!("http_server: serving {} on {local}", root.display());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = accepted?;
                let root = std::sync::Arc::clone(&root);
                let trace = args.trace;
                tokio::spawn(async move {
                    if let Err(error) = serve(stream, &root, peer, trace).await {
                        eprintln!("http_server: {peer}: {error}");
                    }
                });
            }
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
        }
    }
    drop(listener);
    drop(stack);
    driver.abort();
    Ok(())
}

/// A parsed request head.
#[derive(Debug)]
struct Request {
    head_only: bool,
    path: String,
    keep_alive: bool,
}

/// Why a request is answered with an error status.
#[derive(Debug)]
enum Refusal {
    BadRequest,
    MethodNotAllowed,
}

/// Serves one connection's requests in order until it closes, asks to, or idles out.
async fn serve(
    mut stream: TcpStream,
    root: &Path,
    peer: SocketAddr,
    trace: bool,
) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let mut buffer = Vec::with_capacity(MAX_HEAD);
    loop {
        let head_len =
            match tokio::time::timeout(IDLE_TIMEOUT, read_head(&mut stream, &mut buffer)).await {
                Err(_) | Ok(Ok(None)) => break,
                Ok(Ok(Some(len))) => len,
                Ok(Err(error)) if error.kind() == std::io::ErrorKind::InvalidData => {
                    respond_status(&mut stream, 400, "Bad Request", false, false).await?;
                    break;
                }
                Ok(Err(error)) => return Err(error),
            };
        let parsed = parse_request(buffer.get(..head_len).unwrap_or_default());
        buffer.drain(..head_len);
        match parsed {
            Ok(request) => {
                serve_file(&mut stream, root, &request).await?;
                if !request.keep_alive {
                    break;
                }
            }
            Err(Refusal::MethodNotAllowed) => {
                respond_status(&mut stream, 405, "Method Not Allowed", false, false).await?;
                break;
            }
            Err(Refusal::BadRequest) => {
                respond_status(&mut stream, 400, "Bad Request", false, false).await?;
                break;
            }
        }
    }
    stream.shutdown().await?;
    if trace && let Ok(info) = stream.info() {
        eprintln!(
            "http_server: {peer}: done: {} octets sent ({} acknowledged), {} received; srtt \
             {:?}, rto {:?}, cwnd {}; {} retransmitted ({} fast, {} other), {} RTOs, {} \
             recoveries, {} SACK blocks ({} D-SACK)",
            info.bytes_sent,
            info.bytes_acked,
            info.bytes_received,
            info.srtt.unwrap_or_default(),
            info.rto,
            info.cwnd,
            info.retransmitted_segments,
            info.fast_retransmits,
            info.other_retransmits,
            info.rto_count,
            info.recoveries,
            info.sack_blocks_received,
            info.dsacks_received,
        );
    }
    Ok(())
}

/// Reads until `buffer` holds a whole request head; returns its length (through the blank
/// line), `None` at a clean end of stream between requests, `InvalidData` for a head over
/// [`MAX_HEAD`] or a stream ending inside one.
async fn read_head(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> std::io::Result<Option<usize>> {
    let mut searched = 0;
    loop {
        if let Some(at) = find_blank_line(buffer, searched) {
            return Ok(Some(at));
        }
        searched = buffer.len().saturating_sub(3);
        if buffer.len() >= MAX_HEAD {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
        let mut chunk = [0u8; 2048];
        let room = (MAX_HEAD - buffer.len()).min(chunk.len());
        let n = stream.read(&mut chunk[..room]).await?;
        if n == 0 {
            return if buffer.is_empty() {
                Ok(None)
            } else {
                Err(std::io::ErrorKind::InvalidData.into())
            };
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
}

/// The end of the first `\r\n\r\n` at or after `from`.
fn find_blank_line(buffer: &[u8], from: usize) -> Option<usize> {
    buffer.get(from..)?.windows(4).position(|w| w == b"\r\n\r\n").map(|at| from + at + 4)
}

fn parse_request(head: &[u8]) -> Result<Request, Refusal> {
    let head = std::str::from_utf8(head).map_err(|_| Refusal::BadRequest)?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().ok_or(Refusal::BadRequest)?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::BadRequest);
    };
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return Err(Refusal::BadRequest),
    };
    let mut keep_alive = http11;
    for line in lines.take_while(|line| !line.is_empty()) {
        let (name, value) = line.split_once(':').ok_or(Refusal::BadRequest)?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("connection") {
            if value.eq_ignore_ascii_case("close") {
                keep_alive = false;
            } else if value.eq_ignore_ascii_case("keep-alive") {
                keep_alive = true;
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            || (name.eq_ignore_ascii_case("content-length") && value != "0")
        {
            // No request this server answers has a body; reading past one is not worth it.
            return Err(Refusal::BadRequest);
        }
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Err(Refusal::MethodNotAllowed),
    };
    // Origin form only: "/path?query".
    let path = target.split(['?', '#']).next().unwrap_or_default();
    if !path.starts_with('/') {
        return Err(Refusal::BadRequest);
    }
    let path = percent_decode(path).ok_or(Refusal::BadRequest)?;
    Ok(Request { head_only, path, keep_alive })
}

fn percent_decode(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        if byte == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(byte);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The file `path` names under `root`, or `None` when it is not one this server serves
/// (module docs: what is refused).
fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    if path.contains(['\\', '\0']) {
        return None;
    }
    let relative = Path::new(path.trim_start_matches('/'));
    if !relative.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir)) {
        return None;
    }
    let mut resolved = std::fs::canonicalize(root.join(relative)).ok()?;
    if !resolved.starts_with(root) {
        // A symbolic link out of the root.
        return None;
    }
    if resolved.is_dir() {
        resolved = std::fs::canonicalize(resolved.join("index.html")).ok()?;
        if !resolved.starts_with(root) {
            return None;
        }
    }
    Some(resolved)
}

async fn serve_file(stream: &mut TcpStream, root: &Path, request: &Request) -> std::io::Result<()> {
    let opened = match resolve(root, &request.path) {
        Some(path) => tokio::fs::File::open(&path).await.ok(),
        None => None,
    };
    let file = match opened {
        Some(file) => match file.metadata().await {
            Ok(metadata) if metadata.is_file() => Some((file, metadata.len())),
            _ => None,
        },
        None => None,
    };
    let Some((mut file, len)) = file else {
        return respond_status(stream, 404, "Not Found", request.keep_alive, request.head_only)
            .await;
    };
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nContent-Type: application/octet-stream\r\n\
         Connection: {}\r\n\r\n",
        if request.keep_alive { "keep-alive" } else { "close" }
    );
    stream.write_all(head.as_bytes()).await?;
    if request.head_only {
        return Ok(());
    }
    let mut chunk = vec![0u8; CHUNK];
    let mut left = len;
    while left > 0 {
        let n = file.read(&mut chunk).await?;
        if n == 0 {
            // The file shrank under us: the promised length cannot be kept, so the connection
            // must end here rather than go on out of step.
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "file shrank"));
        }
        let n = n.min(usize::try_from(left).unwrap_or(usize::MAX));
        stream.write_all(&chunk[..n]).await?;
        left -= n as u64;
    }
    Ok(())
}

/// An answer with a short text body (for HEAD, the head alone).
async fn respond_status(
    stream: &mut TcpStream,
    code: u16,
    reason: &str,
    keep_alive: bool,
    head_only: bool,
) -> std::io::Result<()> {
    let body = format!("{code} {reason}\n");
    let allow = if code == 405 { "Allow: GET, HEAD\r\n" } else { "" };
    let mut answer = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n{allow}\
         Connection: {}\r\n\r\n",
        body.len(),
        if keep_alive { "keep-alive" } else { "close" }
    );
    if !head_only {
        answer.push_str(&body);
    }
    stream.write_all(answer.as_bytes()).await
}
