//! The `http_server` example against the Linux kernel's `curl`, over a TUN device in a network
//! namespace.
//!
//! Each test makes a namespace of its own (unique name, removed on drop — also when the test
//! fails) holding the TUN device `tun0` with the kernel's address 10.8.0.1/24 (and
//! fd00:8::1/64); `http_server` runs there with `--local-ip 10.8.0.2` (or fd00:8::2), serving
//! a scratch directory, and `curl` in the same namespace fetches from it through the TUN: the
//! kernel is the client, the userspace stack the server.
//!
//! Needs root, `/dev/net/tun`, `ip` and `curl`, and the example built (`cargo test` builds
//! it; `cargo test --test http_server` alone does not: `cargo build --example http_server`
//! first). Where something is missing the tests say why and pass without running — unless
//! `CI` is set, where that fails them (as `tests/interop_linux.rs`).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::Duration;

mod namespaces;

use namespaces::sh;

const MIB: usize = 1 << 20;

// ------------------------------------------------------------------ prerequisites

/// `true` when the test may run (see [`namespaces::prerequisites`]).
fn prerequisites(test: &str) -> bool {
    namespaces::prerequisites(test, "http_server", &[("ip", "-V"), ("curl", "--version")])
}

fn server_binary() -> PathBuf {
    namespaces::example_binary("http_server")
}

// ------------------------------------------------------------------ namespace

/// The namespace and a scratch directory (`root/` served, files beside it not), removed on
/// drop with the server.
struct Namespace {
    name: String,
    dir: PathBuf,
    server: Option<Child>,
}

impl Namespace {
    fn new(tag: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let unique = format!("{}{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let name = format!("hs-{tag}-{unique}");
        let dir = std::env::temp_dir().join(format!("http-server-{tag}-{unique}"));
        std::fs::create_dir_all(dir.join("root")).unwrap();
        let namespace = Self { name, dir, server: None };
        let ns = namespace.name.as_str();
        sh(&["ip", "netns", "add", ns]);
        for command in [
            vec!["ip", "-n", ns, "link", "set", "lo", "up"],
            vec!["ip", "-n", ns, "tuntap", "add", "dev", "tun0", "mode", "tun"],
            vec!["ip", "-n", ns, "addr", "add", "10.8.0.1/24", "dev", "tun0"],
            // `nodad`: usable at once, not after duplicate address detection.
            vec!["ip", "-n", ns, "addr", "add", "fd00:8::1/64", "dev", "tun0", "nodad"],
            vec!["ip", "-n", ns, "link", "set", "tun0", "up"],
        ] {
            sh(&command);
        }
        namespace
    }

    fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    /// Starts `http_server` on `local_ip`:8080 and waits for it to say it serves.
    fn start_server(&mut self, local_ip: &str) {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .arg(server_binary())
            .args(["--tun", "tun0", "--local-ip", local_ip, "--port", "8080", "--root"])
            .arg(self.root())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start http_server");
        let stderr = child.stderr.take().unwrap();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[http_server] {line}");
                if line.contains("serving") {
                    let _ = ready_tx.send(());
                }
            }
        });
        ready_rx.recv_timeout(Duration::from_secs(60)).expect("http_server did not start");
        self.server = Some(child);
    }

    /// A command run in the namespace, not yet started.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name]).args(args);
        command
    }

    /// `args` run in the namespace to completion: (exit success, stdout, stderr).
    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let output = self.command(args).output().expect("run in the namespace");
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        (output.status.success(), text(&output.stdout), text(&output.stderr))
    }

    /// A file of `len` pseudo-random octets at `path` (relative to the scratch directory).
    fn data_file(&self, path: &str, len: usize) -> Vec<u8> {
        let mut state = 0x2545_f491_4f6c_dd1du64 ^ len as u64;
        let data: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        std::fs::write(self.dir.join(path), &data).unwrap();
        data
    }

    /// curl fetches `url` into a file; returns (HTTP status, what it got).
    fn curl(&self, url: &str, extra: &[&str]) -> (u16, Vec<u8>) {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let out = self.dir.join(format!("fetched-{}", NEXT.fetch_add(1, Ordering::Relaxed)));
        let out_arg = out.display().to_string();
        let mut args = vec!["curl", "-sS", "--max-time", "300", "-o", &out_arg];
        args.extend_from_slice(&["-w", "%{http_code}"]);
        args.extend_from_slice(extra);
        args.push(url);
        let (ok, code, err) = self.run(&args);
        assert!(ok, "curl {url} failed: {err}");
        let code = code.trim().parse().unwrap_or_else(|_| panic!("curl printed {code:?}"));
        (code, std::fs::read(out).unwrap_or_default())
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        if let Some(child) = &mut self.server {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ------------------------------------------------------------------ tests

#[test]
fn curl_fetches_16_mib_byte_exact_over_ipv4() {
    if !prerequisites("curl_fetches_16_mib_byte_exact_over_ipv4") {
        return;
    }
    let mut ns = Namespace::new("big4");
    let data = ns.data_file("root/big.bin", 16 * MIB);
    ns.start_server("10.8.0.2");
    let (code, fetched) = ns.curl("http://10.8.0.2:8080/big.bin", &[]);
    assert_eq!(code, 200);
    assert!(fetched == data, "{} octets fetched of {}, or they differ", fetched.len(), data.len());
}

#[test]
fn two_hundred_concurrent_curls_all_succeed() {
    if !prerequisites("two_hundred_concurrent_curls_all_succeed") {
        return;
    }
    let mut ns = Namespace::new("many");
    let data = ns.data_file("root/file.bin", 100_000);
    ns.start_server("10.8.0.2");
    // 200 curl processes started before any is waited for: all in flight at once.
    let children: Vec<(PathBuf, Child)> = (0..200)
        .map(|i| {
            let out = ns.dir.join(format!("many-{i}"));
            let child = ns
                .command(&["curl", "-sS", "--max-time", "120", "-w", "%{http_code}", "-o"])
                .arg(&out)
                .arg("http://10.8.0.2:8080/file.bin")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start curl");
            (out, child)
        })
        .collect();
    let mut failures = Vec::new();
    for (i, (out, child)) in children.into_iter().enumerate() {
        let output = child.wait_with_output().unwrap();
        let code = String::from_utf8_lossy(&output.stdout).into_owned();
        let fetched = std::fs::read(&out).unwrap_or_default();
        if !output.status.success() || code != "200" || fetched != data {
            failures.push(format!(
                "fetch {i}: {} code {code} {} octets: {}",
                output.status,
                fetched.len(),
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
    }
    assert!(failures.is_empty(), "{} of 200 failed: {:?}", failures.len(), &failures[..]);
}

#[test]
fn missing_files_traversal_and_links_out_of_the_root_are_404() {
    if !prerequisites("missing_files_traversal_and_links_out_of_the_root_are_404") {
        return;
    }
    let mut ns = Namespace::new("refuse");
    let served = ns.data_file("root/served.txt", 1000);
    ns.data_file("secret.txt", 100);
    std::os::unix::fs::symlink(ns.dir.join("secret.txt"), ns.root().join("out-link")).unwrap();
    std::os::unix::fs::symlink("served.txt", ns.root().join("in-link")).unwrap();
    ns.start_server("10.8.0.2");
    let base = "http://10.8.0.2:8080";
    assert_eq!(ns.curl(&format!("{base}/served.txt"), &[]), (200, served.clone()));
    // A link staying inside the root is followed.
    assert_eq!(ns.curl(&format!("{base}/in-link"), &[]).0, 200);
    for (path, why) in [
        ("/missing.txt", "no such file"),
        ("/../secret.txt", "a `..` component"),
        ("/%2e%2e/secret.txt", "a percent-encoded `..`"),
        ("/a/../../secret.txt", "`..` past the root"),
        ("/out-link", "a symbolic link out of the root"),
        ("/..%5csecret.txt", "a backslash"),
    ] {
        let (code, body) = ns.curl(&format!("{base}{path}"), &["--path-as-is"]);
        assert_eq!(code, 404, "{path} ({why})");
        assert_eq!(body, b"404 Not Found\n", "{path} ({why})");
    }
    // Another method: 405.
    assert_eq!(ns.curl(&format!("{base}/served.txt"), &["-X", "DELETE"]).0, 405);
    // HEAD: the length, no body.
    let (ok, head, err) = ns.run(&["curl", "-sS", "-I", &format!("{base}/served.txt")]);
    assert!(ok, "{err}");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("Content-Length: 1000\r\n"), "{head}");
    // Keep-alive: two fetches in one curl run share one connection.
    let (ok, out, err) = ns.run(&[
        "curl",
        "-sS",
        "-o",
        "/dev/null",
        "-o",
        "/dev/null",
        "-w",
        "%{num_connects} ",
        &format!("{base}/served.txt"),
        &format!("{base}/missing.txt"),
    ]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "1 0", "the second fetch should reuse the connection");
}

#[test]
fn curl_6_fetches_16_mib_byte_exact_over_ipv6() {
    if !prerequisites("curl_6_fetches_16_mib_byte_exact_over_ipv6") {
        return;
    }
    let mut ns = Namespace::new("big6");
    let data = ns.data_file("root/big.bin", 16 * MIB);
    ns.start_server("fd00:8::2");
    let (code, fetched) = ns.curl("http://[fd00:8::2]:8080/big.bin", &["-6"]);
    assert_eq!(code, 200);
    assert!(fetched == data, "{} octets fetched of {}, or they differ", fetched.len(), data.len());
}
