//! The `tunproxy` example against the Linux kernel, in network namespaces.
//!
//! Each test makes two namespaces of its own (unique names, removed on drop — also when the
//! test fails): a client one holding the TUN device `tun0` (the kernel's 10.8.0.1/24; routes
//! send the server subnet 10.9.0.0/24 into it) where `tunproxy` runs with `--local-ip
//! 10.8.0.2`, and a server one behind a veth pair (10.7.0.1 – 10.7.0.2) that owns 10.9.0.2 and
//! runs the servers: Python's `http.server`, and a small SOCKS5 server and a test server
//! written here (Python, so the kernel is both peers). The client namespace's second route to
//! 10.9.0.0/24, through the veth with a higher metric, is the one `--out-iface veth0` takes
//! (`SO_BINDTODEVICE` skips the TUN's). All traffic stays inside the namespaces.
//!
//! Needs root, `/dev/net/tun`, `ip`, `curl` and `python3`, and the example built (`cargo
//! test` builds it; `cargo test --test tunproxy` alone does not: `cargo build --example
//! tunproxy` first). Where something is missing the tests say why and pass without running —
//! unless `CI` is set, where that fails them (as `tests/interop_linux.rs`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

const MIB: usize = 1 << 20;

// ------------------------------------------------------------------ prerequisites

fn missing_prerequisite() -> Option<String> {
    let root = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&root.stdout).trim() != "0" {
        return Some("not root".into());
    }
    if !Path::new("/dev/net/tun").exists() {
        return Some("no /dev/net/tun".into());
    }
    let have = |tool: &str, flag: &str| {
        Command::new(tool).arg(flag).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
    };
    for (tool, flag) in [("ip", "-V"), ("curl", "--version"), ("python3", "--version")] {
        if !have(tool, flag) {
            return Some(format!("no `{tool}` command"));
        }
    }
    if !tunproxy_binary().exists() {
        return Some(format!(
            "{} not built: `cargo build --example tunproxy` (`cargo test` builds it)",
            tunproxy_binary().display()
        ));
    }
    None
}

/// `true` when the test may run; otherwise explains and, under CI, fails.
fn prerequisites(test: &str) -> bool {
    let Some(reason) = missing_prerequisite() else { return true };
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: cannot run ({reason}) and CI is set: failing rather than skipping"
    );
    eprintln!("{test}: skipped: {reason} (set CI to make this an error)");
    false
}

/// The example binary, built by `cargo test` beside the test executables.
fn tunproxy_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    dir.join("examples").join("tunproxy")
}

fn sh(args: &[&str]) {
    let status = Command::new(args[0]).args(&args[1..]).status().expect("run a command");
    assert!(status.success(), "{args:?} failed: {status}");
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

    /// Starts the servers in the server namespace: `http.server` on 10.9.0.2:8000 serving
    /// the scratch directory, the test server on 10.9.0.2:7000 and the SOCKS5 server on
    /// 10.7.0.2:1080.
    fn start_servers(&mut self) {
        let dir = self.dir.display().to_string();
        let server = self.server.clone();
        let test_server = self.script("test_server.py", TEST_SERVER);
        let socks = self.script("socks5.py", SOCKS5_SERVER);
        self.spawn(
            &server,
            &["python3", "-m", "http.server", "8000", "--bind", "10.9.0.2", "--directory", &dir],
        );
        self.spawn(&server, &["python3", &test_server, &dir]);
        self.spawn(&server, &["python3", &socks]);
        self.wait_listening("10.9.0.2", 8000);
        self.wait_listening("10.9.0.2", 7000);
        self.wait_listening("10.7.0.2", 1080);
    }

    /// Starts `tunproxy` in the client namespace with `upstream` (its arguments) and waits
    /// for it to say it is catching.
    fn start_proxy(&mut self, upstream: &[&str]) -> Proxy {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.client])
            .arg(tunproxy_binary())
            .args(["--tun", "tun0", "--local-ip", "10.8.0.2"])
            .args(upstream)
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
import socket, sys, threading
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
            with open(directory + "/b_count", "w") as f:
                f.write(str(count))
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

/// A SOCKS5 server on 10.7.0.2:1080: no authentication, CONNECT to IPv4 addresses only
/// (RFC 1928); a failed connect is answered with reply 5 (connection refused).
const SOCKS5_SERVER: &str = r#"
import socket, struct, threading
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
        if version != 5 or command != 1 or kind != 1:
            client.sendall(b"\x05\x07\x00\x01" + bytes(6)); client.close(); return
        address = socket.inet_ntoa(recv_exact(client, 4))
        port, = struct.unpack("!H", recv_exact(client, 2))
        try:
            upstream = socket.create_connection((address, port), 10)
            upstream.settimeout(None)
        except OSError:
            client.sendall(b"\x05\x05\x00\x01" + bytes(6)); client.close(); return
        bound = upstream.getsockname()
        client.sendall(b"\x05\x00\x00\x01" + socket.inet_aton(bound[0]) + struct.pack("!H", bound[1]))
    except OSError:
        client.close(); return
    a = threading.Thread(target=pipe, args=(client, upstream), daemon=True)
    b = threading.Thread(target=pipe, args=(upstream, client), daemon=True)
    a.start(); b.start(); a.join(); b.join()
    client.close(); upstream.close()
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("10.7.0.2", 1080))
listener.listen(4096)
while True:
    conn, _ = listener.accept()
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
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
    let counted = std::fs::read_to_string(topology.dir.join("b_count")).unwrap();
    assert_eq!(counted, "200000");
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
