//! Throughput of `tunproxy` against the kernel alone, in the same run (ignored: it measures,
//! it does not check; run it by hand, see docs/performance.md):
//!
//! ```text
//! cargo build --release --example tunproxy
//! cargo test --release --test tunproxy_bulk -- --ignored --nocapture
//! ```
//!
//! Two namespaces as in `tests/tunproxy.rs`: a client one with the TUN device `tun0`
//! (10.8.0.1/24, the route to 10.9.0.0/24 through it) and a veth to a server one that owns
//! 10.9.0.2 and runs Python's `http.server`. `curl` in the client namespace fetches the same
//! 16 MiB file twice over: through `tunproxy --out-iface veth0` (kernel → TUN → the
//! userspace stack → a kernel socket on the veth → server), and kernel to kernel over the
//! veth (`curl --interface veth0`, the second route). Each way runs ten times, alternating,
//! and the best of each counts (the least disturbed by the rest of the machine); it prints
//!
//! ```text
//! RESULT tunproxy_bulk gbit_per_s tcp-proto=… kernel=… ratio=…
//! ```
//!
//! It uses `target/release/examples/tunproxy` when built, else the debug one (and says so:
//! an unoptimised build's figure means little). Needs root, `/dev/net/tun`, `ip`, `curl` and
//! `python3`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

mod namespaces;

use namespaces::sh;

const LEN: usize = 16 << 20;
const RUNS: usize = 10;

/// The release build of the example if there is one, else the debug build beside the tests.
fn tunproxy_binary() -> (PathBuf, &'static str) {
    let exe = std::env::current_exe().unwrap();
    let target = exe.parent().and_then(Path::parent).and_then(Path::parent).unwrap();
    let release = target.join("release").join("examples").join("tunproxy");
    if release.exists() {
        return (release, "release");
    }
    (target.join("debug").join("examples").join("tunproxy"), "debug")
}

struct Topology {
    client: String,
    server: String,
    dir: PathBuf,
    children: Vec<Child>,
}

impl Topology {
    fn new() -> Self {
        let unique = std::process::id();
        let (client, server) = (format!("tbc-{unique}"), format!("tbs-{unique}"));
        let dir = std::env::temp_dir().join(format!("tunproxy-bulk-{unique}"));
        std::fs::create_dir_all(&dir).unwrap();
        let topology = Self { client, server, dir, children: Vec::new() };
        let (c, s) = (topology.client.as_str(), topology.server.as_str());
        sh(&["ip", "netns", "add", c]);
        sh(&["ip", "netns", "add", s]);
        let (veth, peer) = (format!("tbv{unique}"), format!("tbw{unique}"));
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

    fn spawn(&mut self, ns: &str, args: &[&str]) -> &mut Child {
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn in a namespace");
        self.children.push(child);
        self.children.last_mut().unwrap()
    }

    fn run(&self, ns: &str, args: &[&str]) -> (bool, String, String) {
        let output = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .output()
            .expect("run in a namespace");
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        (output.status.success(), text(&output.stdout), text(&output.stderr))
    }

    /// Fetches the file with curl in the client namespace (`extra` before the URL); returns
    /// gigabits per second of payload as curl measured them, checking the length.
    fn fetch(&self, extra: &[&str]) -> f64 {
        let mut args = vec!["curl", "-sS", "--max-time", "300", "-o", "/dev/null"];
        args.extend_from_slice(&["-w", "%{size_download} %{time_total}"]);
        args.extend_from_slice(extra);
        args.push("http://10.9.0.2:8000/big.bin");
        let (ok, out, err) = self.run(&self.client, &args);
        assert!(ok, "curl {extra:?} failed: {err}");
        let mut fields = out.split_whitespace();
        let size: f64 = fields.next().unwrap().parse().unwrap();
        let seconds: f64 = fields.next().unwrap().parse().unwrap();
        assert_eq!(size as usize, LEN, "curl {extra:?}: short transfer");
        size * 8.0 / seconds / 1e9
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

#[test]
#[ignore = "measures throughput; run by hand (module docs)"]
fn tunproxy_bulk_against_kernel_to_kernel() {
    let (tunproxy, build) = tunproxy_binary();
    assert!(tunproxy.exists(), "build the example first: cargo build --release --example tunproxy");
    let mut topology = Topology::new();
    std::fs::write(topology.dir.join("big.bin"), vec![0x5a; LEN]).unwrap();
    let (server, dir) = (topology.server.clone(), topology.dir.display().to_string());
    topology.spawn(
        &server,
        &["python3", "-m", "http.server", "8000", "--bind", "10.9.0.2", "--directory", &dir],
    );
    let client = topology.client.clone();
    let proxy = topology.spawn(
        &client,
        &[
            tunproxy.to_str().unwrap(),
            "--tun",
            "tun0",
            "--local-ip",
            "10.8.0.2",
            "--out-iface",
            "veth0",
        ],
    );
    let stderr = proxy.stderr.take().unwrap();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("catching TCP") {
                let _ = ready_tx.send(());
            }
        }
    });
    ready_rx.recv_timeout(Duration::from_secs(60)).expect("tunproxy did not start");
    // The server answers over the veth before anything is timed.
    let probe = "import socket,time\nfor _ in range(300):\n  try:\n    socket.create_connection(('10.9.0.2',8000),1).close(); break\n  except OSError: time.sleep(0.1)\n";
    let (ok, _, err) = topology.run(&topology.server, &["python3", "-c", probe]);
    assert!(ok, "{err}");
    let (mut proxied, mut kernel) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        proxied.push(topology.fetch(&[]));
        kernel.push(topology.fetch(&["--interface", "veth0"]));
    }
    let best = |runs: &[f64]| runs.iter().copied().fold(0.0, f64::max);
    let (ours, theirs) = (best(&proxied), best(&kernel));
    eprintln!("tunproxy ({build} build) runs: {proxied:.2?} Gbit/s; kernel runs: {kernel:.2?}");
    println!(
        "RESULT tunproxy_bulk gbit_per_s tcp-proto={ours:.2} kernel={theirs:.2} ratio={:.3}",
        ours / theirs
    );
}
