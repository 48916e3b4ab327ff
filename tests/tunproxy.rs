//! The `tunproxy` example against the Linux kernel, in network namespaces.
//!
//! Each test makes two namespaces of its own (unique names, removed on drop — also when the
//! test fails): a client one holding the TUN device `tun0` (the kernel's 10.8.0.1/24; routes
//! send the server subnet 10.9.0.0/24 into it) where `tunproxy` runs with `--local-ip
//! 10.8.0.2`, and a server one behind a veth pair (10.7.0.1 – 10.7.0.2) that owns 10.9.0.2 and
//! runs the servers: Python's `http.server`, and a small SOCKS5 server and a test server
//! written here (Python, so the kernel is both peers). The client namespace's second route to
//! 10.9.0.0/24, through the veth with a higher metric, is the one `--out-iface veth0` takes
//! (`SO_BINDTODEVICE` skips the TUN's). The same exists over IPv6 (the kernel's fd08::1/64 on
//! the TUN, fd07::1 – fd07::2 on the veth, fd09::2 on the server), where `curl -6` fetches
//! from a second `http.server`; a DNS responder (Python, UDP port 53 of 10.9.0.2 and fd09::2)
//! answers queries sent through the proxy's UDP forwarding, directly or through SOCKS5 UDP
//! ASSOCIATE (the SOCKS5 server on port 1081 grants it, the one on 1080 refuses it). All
//! traffic stays inside the namespaces.
//!
//! Needs root, `/dev/net/tun`, `ip`, `curl` and `python3`, and the example built (`cargo
//! test` builds it; `cargo test --test tunproxy` alone does not: `cargo build --example
//! tunproxy` first). Where something is missing the tests say why and pass without running —
//! unless `CI` is set, where that fails them (as `tests/interop_linux.rs`).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

mod namespaces;

use namespaces::sh;

const MIB: usize = 1 << 20;

// ------------------------------------------------------------------ prerequisites

/// `true` when the test may run (see [`namespaces::prerequisites`]).
fn prerequisites(test: &str) -> bool {
    namespaces::prerequisites(
        test,
        "tunproxy",
        &[("ip", "-V"), ("curl", "--version"), ("python3", "--version")],
    )
}

fn tunproxy_binary() -> PathBuf {
    namespaces::example_binary("tunproxy")
}

// ------------------------------------------------------------------ topology

/// The two namespaces and a scratch directory, all removed on drop.
struct Topology {
    client: String,
    server: String,
    dir: PathBuf,
    children: Vec<Child>,
}

impl Topology {
    fn new(tag: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let unique = format!("{}{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let (client, server) = (format!("tpc-{tag}-{unique}"), format!("tps-{tag}-{unique}"));
        let dir = std::env::temp_dir().join(format!("tunproxy-{tag}-{unique}"));
        std::fs::create_dir_all(&dir).unwrap();
        let topology = Self { client, server, dir, children: Vec::new() };
        let (c, s) = (topology.client.as_str(), topology.server.as_str());
        sh(&["ip", "netns", "add", c]);
        sh(&["ip", "netns", "add", s]);
        let veth = format!("tpv{unique}");
        let peer = format!("tpw{unique}");
        for command in [
            vec!["ip", "-n", c, "link", "set", "lo", "up"],
            vec!["ip", "-n", s, "link", "set", "lo", "up"],
            vec!["ip", "-n", c, "tuntap", "add", "dev", "tun0", "mode", "tun"],
            vec!["ip", "-n", c, "addr", "add", "10.8.0.1/24", "dev", "tun0"],
            vec!["ip", "-n", c, "link", "set", "tun0", "up"],
            vec![
                "ip", "link", "add", &veth, "netns", c, "type", "veth", "peer", "name", &peer,
                "netns", s,
            ],
            vec!["ip", "-n", c, "link", "set", &veth, "name", "veth0"],
            vec!["ip", "-n", s, "link", "set", &peer, "name", "veth0"],
            vec!["ip", "-n", c, "addr", "add", "10.7.0.1/24", "dev", "veth0"],
            vec!["ip", "-n", s, "addr", "add", "10.7.0.2/24", "dev", "veth0"],
            vec!["ip", "-n", c, "link", "set", "veth0", "up"],
            vec!["ip", "-n", s, "link", "set", "veth0", "up"],
            vec!["ip", "-n", s, "addr", "add", "10.9.0.2/32", "dev", "lo"],
            vec!["ip", "-n", c, "route", "add", "10.9.0.0/24", "dev", "tun0", "metric", "10"],
            vec![
                "ip",
                "-n",
                c,
                "route",
                "add",
                "10.9.0.0/24",
                "via",
                "10.7.0.2",
                "dev",
                "veth0",
                "metric",
                "100",
            ],
        ] {
            sh(&command);
        }
        // The same over IPv6: the kernel's fd08::1/64 on the TUN, fd07::1 – fd07::2 on the
        // veth, fd09::2 on the server's `lo`; `nodad` so the addresses are usable at once.
        for command in [
            vec!["ip", "-n", c, "-6", "addr", "add", "fd08::1/64", "dev", "tun0", "nodad"],
            vec!["ip", "-n", c, "-6", "addr", "add", "fd07::1/64", "dev", "veth0", "nodad"],
            vec!["ip", "-n", s, "-6", "addr", "add", "fd07::2/64", "dev", "veth0", "nodad"],
            vec!["ip", "-n", s, "-6", "addr", "add", "fd09::2/128", "dev", "lo", "nodad"],
            vec!["ip", "-n", c, "-6", "route", "add", "fd09::/64", "dev", "tun0", "metric", "10"],
            vec![
                "ip",
                "-n",
                c,
                "-6",
                "route",
                "add",
                "fd09::/64",
                "via",
                "fd07::2",
                "dev",
                "veth0",
                "metric",
                "100",
            ],
        ] {
            sh(&command);
        }
        topology
    }

    /// `args` run in namespace `ns`, in the background; killed on drop.
    fn spawn(&mut self, ns: &str, args: &[&str]) {
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn in a namespace");
        self.children.push(child);
    }

    /// `args` run in namespace `ns` to completion: (exit success, stdout, stderr).
    fn run(&self, ns: &str, args: &[&str]) -> (bool, String, String) {
        let output = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .output()
            .expect("run in a namespace");
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        (output.status.success(), text(&output.stdout), text(&output.stderr))
    }

    /// Writes a Python script into the scratch directory and returns its path.
    fn script(&self, name: &str, source: &str) -> String {
        let path = self.dir.join(name);
        std::fs::write(&path, source).unwrap();
        path.display().to_string()
    }

    /// Waits until something listens on `port` of 10.9.0.2 or 10.7.0.2 (checked from the
    /// server namespace, so nothing crosses the proxy).
    fn wait_listening(&self, address: &str, port: u16) {
        let probe = format!(
            "import socket,time\nfor _ in range(300):\n  try:\n    socket.create_connection(('{address}',{port}),1).close(); break\n  except OSError: time.sleep(0.1)\nelse: raise SystemExit(1)\n"
        );
        let (ok, _, err) = self.run(&self.server, &["python3", "-c", &probe]);
        assert!(ok, "nothing listens on {address}:{port}: {err}");
    }

    /// Starts the servers in the server namespace: `http.server` on 10.9.0.2:8000 and
    /// [fd09::2]:8001 serving the scratch directory, the test server on 10.9.0.2:7000, the
    /// DNS responder on port 53 of 10.9.0.2 and fd09::2 (UDP), and the SOCKS5 servers on
    /// 10.7.0.2: port 1080 refusing UDP ASSOCIATE, port 1081 granting it.
    fn start_servers(&mut self) {
        let dir = self.dir.display().to_string();
        let server = self.server.clone();
        let test_server = self.script("test_server.py", TEST_SERVER);
        let socks = self.script("socks5.py", SOCKS5_SERVER);
        let dns = self.script("dns.py", DNS_SERVER);
        self.spawn(
            &server,
            &["python3", "-m", "http.server", "8000", "--bind", "10.9.0.2", "--directory", &dir],
        );
        self.spawn(
            &server,
            &["python3", "-m", "http.server", "8001", "--bind", "fd09::2", "--directory", &dir],
        );
        self.spawn(&server, &["python3", &test_server, &dir]);
        self.spawn(&server, &["python3", &socks, "1080"]);
        self.spawn(&server, &["python3", &socks, "1081", "udp"]);
        self.spawn(&server, &["python3", &dns]);
        self.wait_listening("10.9.0.2", 8000);
        self.wait_listening("fd09::2", 8001);
        self.wait_listening("10.9.0.2", 7000);
        self.wait_listening("10.7.0.2", 1080);
        self.wait_listening("10.7.0.2", 1081);
    }

    /// Starts `tunproxy` in the client namespace with `upstream` (its arguments) and waits
    /// for it to say it is catching.
    fn start_proxy(&mut self, upstream: &[&str]) -> Proxy {
        let mut args = vec!["--local-ip", "10.8.0.2"];
        args.extend_from_slice(upstream);
        self.start_proxy_with(&args)
    }

    /// Starts `tunproxy` with `args` after `--tun tun0` (no `--local-ip` unless given: then
    /// it chooses 10.8.0.2 and fd08::2, the far ends of the TUN's addresses).
    fn start_proxy_with(&mut self, args: &[&str]) -> Proxy {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.client])
            .arg(tunproxy_binary())
            .args(["--tun", "tun0"])
            .args(args)
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tunproxy");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let lines = Arc::clone(&log);
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[tunproxy] {line}");
                if line.contains("catching TCP") {
                    let _ = ready_tx.send(());
                }
                lines.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        ready_rx.recv_timeout(Duration::from_secs(60)).expect("tunproxy did not start");
        Proxy { child: Some(child), log }
    }

    /// A file of `len` pseudo-random octets in the scratch directory (served over HTTP).
    fn data_file(&self, name: &str, len: usize) -> Vec<u8> {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let data: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        std::fs::write(self.dir.join(name), &data).unwrap();
        data
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in [&self.client, &self.server] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The running example; killed on drop if still running.
struct Proxy {
    child: Option<Child>,
    log: Arc<Mutex<String>>,
}

impl Proxy {
    /// SIGTERM, then its exit status (it must exit 0 after closing in order).
    fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        sh(&["kill", "-TERM", &child.id().to_string()]);
        for _ in 0..600 {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        panic!("tunproxy did not exit within 30 s of SIGTERM");
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ------------------------------------------------------------------ servers

/// The test server on 10.9.0.2:7000. The first line a client sends says what it wants:
/// `A`: read to EOF, then answer with the count and close (the client half-closed first);
/// `B`: send 100 000 octets and shut down writing, read to EOF, write the count to
/// `<dir>/b_count`, close (the server half-closed first); `C`: answer 1 024 octets, close.
const TEST_SERVER: &str = r#"
import os, socket, sys, threading
directory = sys.argv[1]
def read_to_eof(conn):
    total = 0
    while True:
        data = conn.recv(65536)
        if not data:
            return total
        total += len(data)
def handle(conn):
    with conn:
        mode = b""
        while not mode.endswith(b"\n"):
            byte = conn.recv(1)
            if not byte:
                return
            mode += byte
        if mode == b"A\n":
            count = read_to_eof(conn)
            conn.sendall(b"%d\n" % count)
        elif mode == b"B\n":
            conn.sendall(b"b" * 100000)
            conn.shutdown(socket.SHUT_WR)
            count = read_to_eof(conn)
            # Written whole and then renamed: the test polls for the file and must never
            # read it half written.
            with open(directory + "/b_count.tmp", "w") as f:
                f.write(str(count))
            os.replace(directory + "/b_count.tmp", directory + "/b_count")
        elif mode == b"C\n":
            conn.sendall(b"c" * 1024)
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("10.9.0.2", 7000))
listener.listen(4096)
while True:
    conn, _ = listener.accept()
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
"#;

/// A SOCKS5 server on 10.7.0.2:`argv[1]`: no authentication, CONNECT to IPv4 and IPv6
/// addresses (RFC 1928); a failed connect is answered with reply 5 (connection refused). UDP
/// ASSOCIATE (§7) only with `argv[2]` = `udp`, else reply 7 (command not supported): a relay
/// socket per association, datagrams from the client's address forwarded to the destination
/// in their header, answers sent back with their source in the header, until the control
/// connection closes.
const SOCKS5_SERVER: &str = r#"
import socket, struct, sys, threading
PORT = int(sys.argv[1])
UDP = len(sys.argv) > 2 and sys.argv[2] == "udp"
def read_address(conn, kind):
    if kind == 1:
        address = socket.inet_ntoa(recv_exact(conn, 4))
    elif kind == 4:
        address = socket.inet_ntop(socket.AF_INET6, recv_exact(conn, 16))
    else:
        raise OSError("address type")
    port, = struct.unpack("!H", recv_exact(conn, 2))
    return address, port
def associate(client):
    relay = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    relay.bind(("10.7.0.2", 0))
    out = {1: socket.socket(socket.AF_INET, socket.SOCK_DGRAM),
           4: socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)}
    client.sendall(b"\x05\x00\x00\x01" + socket.inet_aton("10.7.0.2") + struct.pack("!H", relay.getsockname()[1]))
    peer = [None]
    def from_client():
        try:
            while True:
                data, source = relay.recvfrom(65536)
                if source[0] != client.getpeername()[0] or data[2] != 0:
                    continue
                peer[0] = source
                kind = data[3]
                if kind == 1:
                    target, rest = socket.inet_ntoa(data[4:8]), data[8:]
                elif kind == 4:
                    target, rest = socket.inet_ntop(socket.AF_INET6, data[4:20]), data[20:]
                else:
                    continue
                port, = struct.unpack("!H", rest[:2])
                out[kind].sendto(rest[2:], (target, port))
        except OSError:
            pass
    def from_upstream(kind):
        try:
            while True:
                data, source = out[kind].recvfrom(65536)
                if kind == 1:
                    header = b"\x01" + socket.inet_aton(source[0])
                else:
                    header = b"\x04" + socket.inet_pton(socket.AF_INET6, source[0])
                relay.sendto(b"\x00\x00\x00" + header + struct.pack("!H", source[1]) + data, peer[0])
        except OSError:
            pass
    for work, args in [(from_client, ()), (from_upstream, (1,)), (from_upstream, (4,))]:
        threading.Thread(target=work, args=args, daemon=True).start()
    try:
        while client.recv(65536):
            pass
    except OSError:
        pass
    for sock in [relay, out[1], out[4], client]:
        sock.close()
def pipe(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass
def recv_exact(conn, n):
    data = b""
    while len(data) < n:
        more = conn.recv(n - len(data))
        if not more:
            raise OSError("short")
        data += more
    return data
def handle(client):
    try:
        version, count = recv_exact(client, 2)
        methods = recv_exact(client, count)
        if version != 5 or 0 not in methods:
            client.sendall(b"\x05\xff"); client.close(); return
        client.sendall(b"\x05\x00")
        version, command, _, kind = recv_exact(client, 4)
        address, port = read_address(client, kind)
        if version == 5 and command == 3 and UDP:
            associate(client); return
        if version != 5 or command != 1:
            client.sendall(b"\x05\x07\x00\x01" + bytes(6)); client.close(); return
        try:
            upstream = socket.create_connection((address, port), 10)
            upstream.settimeout(None)
        except OSError:
            client.sendall(b"\x05\x05\x00\x01" + bytes(6)); client.close(); return
        bound = upstream.getsockname()
        if ":" in bound[0]:
            bound_address = b"\x04" + socket.inet_pton(socket.AF_INET6, bound[0])
        else:
            bound_address = b"\x01" + socket.inet_aton(bound[0])
        client.sendall(b"\x05\x00\x00" + bound_address + struct.pack("!H", bound[1]))
    except OSError:
        client.close(); return
    a = threading.Thread(target=pipe, args=(client, upstream), daemon=True)
    b = threading.Thread(target=pipe, args=(upstream, client), daemon=True)
    a.start(); b.start(); a.join(); b.join()
    client.close(); upstream.close()
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("10.7.0.2", PORT))
listener.listen(4096)
while True:
    conn, _ = listener.accept()
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
"#;

/// A DNS responder on UDP port 53 of 10.9.0.2 and fd09::2: every query for an A record is
/// answered with 10.99.L.S, where L and S are the length and the octet sum (mod 256) of the
/// question, so the client knows what to expect.
const DNS_SERVER: &str = r#"
import socket, struct, threading
def serve(family, address):
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((address, 53))
    while True:
        data, peer = sock.recvfrom(2048)
        if len(data) < 17:
            continue
        ident, = struct.unpack("!H", data[:2])
        end = 12
        while end < len(data) and data[end] != 0:
            end += data[end] + 1
        question = data[12:end + 5]
        answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4)
        answer += bytes([10, 99, len(question) % 256, sum(question) % 256])
        sock.sendto(struct.pack("!HHHHHH", ident, 0x8180, 1, 1, 0, 0) + question + answer, peer)
for family, address in [(socket.AF_INET, "10.9.0.2"), (socket.AF_INET6, "fd09::2")]:
    threading.Thread(target=serve, args=(family, address), daemon=True).start()
threading.Event().wait()
"#;

/// In the client namespace: `argv[2]` DNS queries for A records to `argv[1]` port 53, each
/// from a socket of its own (a flow of its own in the proxy), `argv[3]` tries of 2 s each;
/// prints per query `OK` (the expected answer to our id), `BAD` or `TIMEOUT`.
const DNS_CLIENT: &str = r#"
import socket, struct, sys
server, count, tries = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
family = socket.AF_INET6 if ":" in server else socket.AF_INET
results = []
for i in range(count):
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.settimeout(2)
    name = b"host%d.example.test" % i
    question = b"".join(bytes([len(l)]) + l for l in name.split(b".")) + b"\0" + struct.pack("!HH", 1, 1)
    ident = 0x1000 + i
    query = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + question
    expected = bytes([10, 99, len(question) % 256, sum(question) % 256])
    result = "TIMEOUT"
    for _ in range(tries):
        sock.sendto(query, (server, 53))
        try:
            data, source = sock.recvfrom(2048)
        except socket.timeout:
            continue
        ok = data[:2] == struct.pack("!H", ident) and data[-4:] == expected and source[0] == server
        result = "OK" if ok else "BAD"
        break
    results.append(result)
    sock.close()
print(" ".join(results))
"#;

/// In the client namespace: connect to 10.9.0.2:`port`; print `ECONNREFUSED` if refused.
const CONNECT_CLIENT: &str = r#"
import socket, sys
try:
    socket.create_connection(("10.9.0.2", int(sys.argv[1])), 20).close()
    print("CONNECTED")
except ConnectionRefusedError:
    print("ECONNREFUSED")
except OSError as error:
    print("OTHER", error)
"#;

/// In the client namespace: both half-closes against the test server.
const HALF_CLOSE_CLIENT: &str = r#"
import socket
# A: we shut down writing first and still read the reply.
conn = socket.create_connection(("10.9.0.2", 7000), 20)
conn.sendall(b"A\n" + b"a" * 300000)
conn.shutdown(socket.SHUT_WR)
reply = b""
while True:
    data = conn.recv(65536)
    if not data:
        break
    reply += data
conn.close()
print("A", reply.decode().strip())
# B: the server shuts down writing first; we read to its FIN, then still send.
conn = socket.create_connection(("10.9.0.2", 7000), 20)
conn.sendall(b"B\n")
got = 0
while True:
    data = conn.recv(65536)
    if not data:
        break
    got += len(data)
conn.sendall(b"z" * 200000)
conn.shutdown(socket.SHUT_WR)
conn.settimeout(20)
while conn.recv(65536):
    pass
conn.close()
print("B", got)
"#;

/// In the client namespace: `sys.argv[1]` concurrent connections to the test server, each
/// asking for 1 024 octets; prints how many got all of them.
const MANY_CLIENT: &str = r#"
import asyncio, sys
async def fetch():
    for attempt in range(1):
        reader, writer = await asyncio.wait_for(asyncio.open_connection("10.9.0.2", 7000), 120)
        writer.write(b"C\n")
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 120)
        writer.close()
        return len(data) == 1024
async def main(n):
    results = await asyncio.gather(*(fetch() for _ in range(n)), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    print("OK", sum(1 for r in results if r is True), "ERRORS", len(errors), errors[:3])
asyncio.run(main(int(sys.argv[1])))
"#;

// ------------------------------------------------------------------ tests

/// curl in the client namespace fetches `name` through the proxy; returns what it got.
fn curl(topology: &Topology, name: &str) -> Vec<u8> {
    let out = topology.dir.join(format!("{name}.fetched"));
    let url = format!("http://10.9.0.2:8000/{name}");
    let (ok, _, err) = topology.run(
        &topology.client,
        &["curl", "-sS", "--max-time", "300", "-o", &out.display().to_string(), &url],
    );
    assert!(ok, "curl failed: {err}");
    std::fs::read(out).unwrap()
}

fn sixteen_mib_byte_exact(tag: &str, upstream: &[&str]) {
    let mut topology = Topology::new(tag);
    topology.start_servers();
    let data = topology.data_file("big.bin", 16 * MIB);
    let mut proxy = topology.start_proxy(upstream);
    let fetched = curl(&topology, "big.bin");
    assert!(fetched == data, "{} octets fetched of {}, or they differ", fetched.len(), data.len());
    let status = proxy.terminate();
    assert!(status.success(), "tunproxy exited with {status}; log:\n{}", proxy.log());
}

#[test]
fn curl_fetches_16_mib_byte_exact_through_socks5() {
    if !prerequisites("curl_fetches_16_mib_byte_exact_through_socks5") {
        return;
    }
    sixteen_mib_byte_exact("socks", &["--socks5", "10.7.0.2:1080"]);
}

#[test]
fn curl_fetches_16_mib_byte_exact_through_out_iface() {
    if !prerequisites("curl_fetches_16_mib_byte_exact_through_out_iface") {
        return;
    }
    sixteen_mib_byte_exact("iface", &["--out-iface", "veth0"]);
}

#[test]
fn half_close_passes_through_both_ways() {
    if !prerequisites("half_close_passes_through_both_ways") {
        return;
    }
    let mut topology = Topology::new("half");
    topology.start_servers();
    let mut proxy = topology.start_proxy(&["--out-iface", "veth0"]);
    let client = topology.script("half_close.py", HALF_CLOSE_CLIENT);
    let (ok, out, err) = topology.run(&topology.client, &["python3", &client]);
    assert!(ok, "half-close client failed: {out}{err}");
    // A: the server read all 300 000 octets after our FIN reached it, and its reply came back.
    // B: we read the server's 100 000 octets up to its FIN, then sent 200 000 it still read.
    assert_eq!(out, "A 300000\nB 100000\n");
    // The client's last read ends at the server's FIN, which came before the server read our
    // 200 000 octets: the server may still be reading when the client exits, so wait for its
    // count rather than race it (the bound only guards against a hang).
    let count_file = topology.dir.join("b_count");
    let mut counted = None;
    for _ in 0..600 {
        if let Ok(text) = std::fs::read_to_string(&count_file) {
            counted = Some(text);
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(counted.as_deref(), Some("200000"), "the server never wrote its count");
    assert!(proxy.terminate().success(), "log:\n{}", proxy.log());
}

#[test]
fn a_refused_upstream_is_econnrefused_at_the_kernel_client() {
    if !prerequisites("a_refused_upstream_is_econnrefused_at_the_kernel_client") {
        return;
    }
    for upstream in [&["--out-iface", "veth0"][..], &["--socks5", "10.7.0.2:1080"][..]] {
        let mut topology = Topology::new("refused");
        topology.start_servers();
        let mut proxy = topology.start_proxy(upstream);
        let client = topology.script("connect.py", CONNECT_CLIENT);
        // Port 9 of the server: nothing listens there.
        let (_, out, err) = topology.run(&topology.client, &["python3", &client, "9"]);
        assert_eq!(out.trim(), "ECONNREFUSED", "{upstream:?}: {err}");
        // A listening port still connects.
        let (_, out, err) = topology.run(&topology.client, &["python3", &client, "7000"]);
        assert_eq!(out.trim(), "CONNECTED", "{upstream:?}: {err}");
        assert!(proxy.terminate().success(), "log:\n{}", proxy.log());
    }
}

#[test]
fn a_thousand_concurrent_short_fetches_lose_none() {
    if !prerequisites("a_thousand_concurrent_short_fetches_lose_none") {
        return;
    }
    let mut topology = Topology::new("many");
    topology.start_servers();
    let mut proxy = topology.start_proxy(&["--out-iface", "veth0"]);
    let client = topology.script("many.py", MANY_CLIENT);
    let (ok, out, err) = topology.run(&topology.client, &["python3", &client, "1000"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "OK 1000 ERRORS 0 []", "{err}");
    assert!(proxy.terminate().success(), "log:\n{}", proxy.log());
}

/// DNS queries from the client namespace to `server`: `count` queries, `tries` each.
fn dns(topology: &Topology, server: &str, count: usize, tries: usize) -> String {
    let client = topology.script("dns_client.py", DNS_CLIENT);
    let (count, tries) = (count.to_string(), tries.to_string());
    let (ok, out, err) =
        topology.run(&topology.client, &["python3", &client, server, &count, &tries]);
    assert!(ok, "DNS client failed: {err}");
    out.trim().to_string()
}

fn dns_through(tag: &str, upstream: &[&str]) {
    let mut topology = Topology::new(tag);
    topology.start_servers();
    // No --local-ip: the proxy takes 10.8.0.2 and fd08::2 from the TUN's addresses.
    let mut proxy = topology.start_proxy_with(upstream);
    // Three queries from three source ports (three flows), over IPv4 and over IPv6: each
    // answer came back through the TUN with a checksum the kernel accepted.
    assert_eq!(dns(&topology, "10.9.0.2", 3, 3), "OK OK OK", "log:\n{}", proxy.log());
    assert_eq!(dns(&topology, "fd09::2", 3, 3), "OK OK OK", "log:\n{}", proxy.log());
    assert!(proxy.terminate().success(), "log:\n{}", proxy.log());
}

#[test]
fn dns_queries_get_their_answers_through_out_iface_over_ipv4_and_ipv6() {
    if !prerequisites("dns_queries_get_their_answers_through_out_iface_over_ipv4_and_ipv6") {
        return;
    }
    dns_through("dnsif", &["--out-iface", "veth0"]);
}

#[test]
fn dns_queries_get_their_answers_through_socks5_udp_associate() {
    if !prerequisites("dns_queries_get_their_answers_through_socks5_udp_associate") {
        return;
    }
    dns_through("dnssocks", &["--socks5", "10.7.0.2:1081"]);
}

#[test]
fn a_socks5_server_refusing_udp_associate_is_reported_once_and_tcp_still_works() {
    if !prerequisites("a_socks5_server_refusing_udp_associate_is_reported_once_and_tcp_still_works")
    {
        return;
    }
    let mut topology = Topology::new("udprefused");
    topology.start_servers();
    let data = topology.data_file("small.bin", 100_000);
    let mut proxy = topology.start_proxy(&["--socks5", "10.7.0.2:1080"]);
    // Three flows try; none is answered.
    assert_eq!(dns(&topology, "10.9.0.2", 3, 1), "TIMEOUT TIMEOUT TIMEOUT");
    assert!(curl(&topology, "small.bin") == data, "TCP through the same server");
    let status = proxy.terminate();
    let log = proxy.log();
    assert!(status.success(), "log:\n{log}");
    assert_eq!(log.matches("refuses UDP ASSOCIATE").count(), 1, "reported once; log:\n{log}");
}

/// curl -6 in the client namespace fetches `name` from [fd09::2]:8001 through the proxy.
fn curl6(topology: &Topology, name: &str) -> Vec<u8> {
    let out = topology.dir.join(format!("{name}.fetched6"));
    let url = format!("http://[fd09::2]:8001/{name}");
    let (ok, _, err) = topology.run(
        &topology.client,
        &["curl", "-6", "-g", "-sS", "--max-time", "300", "-o", &out.display().to_string(), &url],
    );
    assert!(ok, "curl -6 failed: {err}");
    std::fs::read(out).unwrap()
}

fn sixteen_mib_over_ipv6(tag: &str, upstream: &[&str]) {
    let mut topology = Topology::new(tag);
    topology.start_servers();
    let data = topology.data_file("big6.bin", 16 * MIB);
    let mut proxy = topology.start_proxy_with(upstream);
    let fetched = curl6(&topology, "big6.bin");
    assert!(fetched == data, "{} octets fetched of {}, or they differ", fetched.len(), data.len());
    let status = proxy.terminate();
    assert!(status.success(), "tunproxy exited with {status}; log:\n{}", proxy.log());
}

#[test]
fn curl_6_fetches_16_mib_byte_exact_through_out_iface_over_ipv6() {
    if !prerequisites("curl_6_fetches_16_mib_byte_exact_through_out_iface_over_ipv6") {
        return;
    }
    sixteen_mib_over_ipv6("v6iface", &["--out-iface", "veth0"]);
}

#[test]
fn curl_6_fetches_16_mib_byte_exact_through_socks5_over_ipv6() {
    if !prerequisites("curl_6_fetches_16_mib_byte_exact_through_socks5_over_ipv6") {
        return;
    }
    sixteen_mib_over_ipv6("v6socks", &["--socks5", "10.7.0.2:1080"]);
}
