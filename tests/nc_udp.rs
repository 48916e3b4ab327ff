//! The example `nc` over IPv4-in-UDP on loopback: two processes talk TCP through datagrams, no
//! root needed. A listener with `--echo` serves two clients one after the other, a client
//! sends a file and gets it back byte-exact and exits 0; malformed datagrams thrown at the
//! listener in between (truncated IP header, wrong checksum, not TCP, a fragment) are dropped,
//! never crash it; a client to a port nobody listens on is refused with exit status 1.

use std::io::Write;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The example binary, built by `cargo test` beside the test executables.
fn nc_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let nc = dir.join("examples").join("nc");
    assert!(nc.exists(), "{} not built (cargo test builds examples)", nc.display());
    nc
}

/// Two free UDP ports on loopback.
fn free_ports() -> (u16, u16) {
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    (a.local_addr().unwrap().port(), b.local_addr().unwrap().port())
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn client(nc: &Path, own: u16, peer: u16, port: &str, input: &[u8]) -> (bool, Vec<u8>, String) {
    let mut child = Command::new(nc)
        .args(["--udp", &format!("127.0.0.1:{own}"), "--udp-peer", &format!("127.0.0.1:{peer}")])
        .args(["--local-ip", "10.0.0.2", "--msl", "100", "10.0.0.1", port])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        stdin.write_all(&input).unwrap();
    });
    // Collect the output on another thread (a full stdout pipe would stall nc) and give up
    // after a minute.
    let pid = child.id();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(child.wait_with_output()));
    let output = match finished.recv_timeout(Duration::from_secs(60)) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            panic!("nc client did not finish");
        }
    };
    writer.join().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.success(), output.stdout, stderr)
}

#[test]
fn two_nc_processes_talk_tcp_over_udp_and_survive_malformed_datagrams() {
    let nc = nc_binary();
    let (server_port, client_port) = free_ports();
    let _server = Killed(
        Command::new(&nc)
            .args(["--udp", &format!("127.0.0.1:{server_port}")])
            .args(["--udp-peer", &format!("127.0.0.1:{client_port}")])
            .args(["--local-ip", "10.0.0.1", "-l", "80", "--echo"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(200));
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let (ok, echoed, stderr) = client(&nc, client_port, server_port, "80", &data);
    assert!(ok, "client failed: {stderr}");
    assert!(echoed == data, "echo differs: {} octets of {}", echoed.len(), data.len());
    assert!(stderr.contains("TIME-WAIT"), "the active closer waits out TIME-WAIT: {stderr}");

    // Garbage from the peer's address: each must be dropped without harm.
    let garbage = UdpSocket::bind(format!("127.0.0.1:{client_port}")).unwrap();
    let mut header = [
        0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1, // IPv4
        0x10, 0x00, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0x10, 0, 0, 0, 0, 0, // TCP SYN
    ];
    let sum = ipv4_checksum(&header[..20]);
    header[10..12].copy_from_slice(&sum.to_be_bytes());
    let mut bad_checksum = header;
    bad_checksum[11] ^= 0xff;
    let mut not_tcp = header;
    not_tcp[9] = 17;
    let mut fragment = header;
    fragment[6] = 0x20;
    for datagram in [&header[..12], &bad_checksum[..], &not_tcp[..], &fragment[..], &[][..]] {
        garbage.send_to(datagram, format!("127.0.0.1:{server_port}")).unwrap();
    }
    drop(garbage);

    // Still serving.
    let (ok, echoed, stderr) = client(&nc, client_port, server_port, "80", b"still there?");
    assert!(ok, "second client failed: {stderr}");
    assert_eq!(echoed, b"still there?");

    // Empty input: stdin ends before the handshake does; the FIN waits for ESTABLISHED
    // (a CLOSE in SYN-SENT would delete the connection, RFC 9293 §3.10.4).
    let (ok, echoed, stderr) = client(&nc, client_port, server_port, "80", b"");
    assert!(ok, "client with empty input failed: {stderr}");
    assert!(echoed.is_empty());

    // Nobody on port 81: refused, a reason on stderr, exit status 1.
    let (ok, _, stderr) = client(&nc, client_port, server_port, "81", b"");
    assert!(!ok);
    assert!(stderr.contains("connection refused"), "{stderr}");
}

/// IPv6 both ways: the UDP sockets on `[::1]` and TCP over IPv6 inside. The client names no
/// `--local-ip` and connects from its socket's address, ::1 (MUST-44).
#[test]
fn nc_talks_tcp_over_ipv6_inside_udp_over_ipv6() {
    let nc = nc_binary();
    let (Ok(a), Ok(b)) = (UdpSocket::bind("[::1]:0"), UdpSocket::bind("[::1]:0")) else {
        assert!(std::env::var_os("CI").is_none(), "no IPv6 loopback and CI is set");
        eprintln!("skipped: no IPv6 loopback");
        return;
    };
    let (server_port, client_port) =
        (a.local_addr().unwrap().port(), b.local_addr().unwrap().port());
    drop((a, b));
    let _server = Killed(
        Command::new(&nc)
            .args(["--udp", &format!("[::1]:{server_port}")])
            .args(["--udp-peer", &format!("[::1]:{client_port}")])
            .args(["--local-ip", "fd00::1", "-l", "80", "--echo"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(200));
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 13 + i / 509) as u8).collect();
    let mut child = Command::new(&nc)
        .args(["--udp", &format!("[::1]:{client_port}")])
        .args(["--udp-peer", &format!("[::1]:{server_port}")])
        .args(["--msl", "100", "--trace", "fd00::1", "80"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = data.clone();
    let writer = std::thread::spawn(move || stdin.write_all(&input).unwrap());
    let pid = child.id();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(child.wait_with_output()));
    let output = match finished.recv_timeout(Duration::from_secs(60)) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            panic!("nc client did not finish");
        }
    };
    writer.join().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "client failed: {}",
        &stderr[stderr.len().saturating_sub(2000)..]
    );
    assert!(stderr.contains("nc: connecting from ::1\n"), "source chosen from the socket");
    assert!(
        output.stdout == data,
        "echo differs: {} octets of {}",
        output.stdout.len(),
        data.len()
    );
}

fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header.chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], w[1]]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}
