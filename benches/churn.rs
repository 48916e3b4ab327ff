//! Connection churn, tcp-proto against smoltcp, side by side in one process: back-to-back
//! lifecycles — three-way handshake, 64 bytes each way, four-way close (the client closes
//! first), TIME-WAIT run out on a virtual clock — between two endpoints of the same stack
//! joined in memory by queues of whole IPv4 packets. Rounds alternate between the stacks.
//!
//! Metrics: lifecycles per CPU-second and CPU ns per lifecycle (thread CPU time), medians
//! over the rounds with the spread.
//!
//! A second workload, `churn_timewait_100k`: 100 000 such lifecycles through one pair of
//! endpoints with 10 000 client 4-tuples in TIME-WAIT at any time (2×MSL = 1 s of virtual
//! time, 100 µs per lifecycle), so every port choice steps around the records and every
//! lifecycle files one and expires one. tcp-proto only: smoltcp keeps a TIME-WAIT as a
//! socket in its set, for a fixed 10 s, and polls every socket on every `Interface::poll`,
//! so 10 000 of them would make each poll walk 10 000 sockets (and hold 10 000 socket
//! buffers); it has no equivalent to measure.
//!
//! `cargo bench --bench churn` (options after `--`: `--rounds N`, `--scale F` for F × 20 000
//! lifecycles and F × 100 000 in the TIME-WAIT workload, `--only tcp-proto|smoltcp`,
//! `--workload churn|churn_timewait_100k`).

#[path = "common/mod.rs"]
mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::{Counts, Options, Queue, SmolDevice, exchange, pump, smol_iface};
use smoltcp::iface::SocketSet;
use smoltcp::socket::tcp;
use smoltcp::time::Instant as SmolInstant;
use smoltcp::wire::IpAddress;
use tcp_proto::{CloseReason, Config, Endpoint, EndpointConfig, EndpointEvent, Event, Instant};

const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const PORT: u16 = 80;
const LIFECYCLES: f64 = 20_000.0;
const MESSAGE: [u8; 64] = [0x42; 64];
const MTU: usize = 1500;

struct Run {
    cpu: Duration,
    lifecycles: u64,
}

// ------------------------------------------------------------------ tcp-proto

/// `lifecycles` lifecycles, one every `step_us` of virtual time, with TIME-WAIT lasting
/// 2 × `msl` (so about 2 × `msl` / `step_us` records are held at once).
#[inline(never)]
fn tcp_proto_churn(lifecycles: u64, msl: Duration, step_us: u64) -> Run {
    let config = |secret: u8| {
        let mut connection = Config::new([secret; 16]);
        connection.msl = msl;
        connection.delayed_ack = None;
        EndpointConfig::new(connection, [secret; 16])
    };
    let mut client = Endpoint::new(config(1));
    let mut server = Endpoint::new(config(2));
    let listen = SocketAddr::new(IpAddr::V4(SERVER), PORT);
    server.listen(listen, 16).unwrap();
    let pool = common::pool();
    let mut queue = Queue::new();
    let mut buf = [0u8; 256];
    let mut now_us = 1_000u64;
    let mut counts = Counts::default();
    let start = common::thread_cpu();
    for _ in 0..lifecycles {
        let now = Instant::from_micros(now_us);
        let c = client.connect(now, IpAddr::V4(CLIENT), listen).unwrap();
        let mut s = None;
        while s.is_none() {
            pump(now, &mut client, &mut server, &mut queue, &pool, MTU, &mut counts);
            pump(now, &mut server, &mut client, &mut queue, &pool, MTU, &mut counts);
            s = server.accept(listen).unwrap();
        }
        let s = s.unwrap();
        client.send(now, c, &MESSAGE).unwrap();
        server.send(now, s, &MESSAGE).unwrap();
        let (mut client_got, mut server_got) = (0, 0);
        let (mut client_closed, mut server_closed) = (false, false);
        let (mut client_fin_sent, mut server_fin_sent) = (false, false);
        while !(client_closed && server_closed) {
            let moved = pump(now, &mut client, &mut server, &mut queue, &pool, MTU, &mut counts)
                | pump(now, &mut server, &mut client, &mut queue, &pool, MTU, &mut counts);
            while let Ok(n) = server.recv(s, &mut buf) {
                if n == 0 {
                    break;
                }
                server_got += n;
            }
            while let Ok(n) = client.recv(c, &mut buf) {
                if n == 0 {
                    break;
                }
                client_got += n;
            }
            if client_got == MESSAGE.len() && !client_fin_sent {
                client.close(now, c).unwrap();
                client_fin_sent = true;
            }
            while let Some(event) = client.poll_event() {
                if event == EndpointEvent::Connection(c, Event::Closed(CloseReason::Orderly)) {
                    client_closed = true;
                }
            }
            while let Some(event) = server.poll_event() {
                match event {
                    EndpointEvent::Connection(h, Event::PeerClosed)
                        if h == s && !server_fin_sent =>
                    {
                        assert_eq!(server_got, MESSAGE.len());
                        server.close(now, s).unwrap();
                        server_fin_sent = true;
                    }
                    EndpointEvent::Connection(h, Event::Closed(_)) if h == s => {
                        server_closed = true
                    }
                    _ => {}
                }
            }
            assert!(moved || client_fin_sent, "stuck");
        }
        // The virtual clock moves on; TIME-WAIT records 2×MSL old run out.
        now_us += step_us;
        client.handle_timeout(Instant::from_micros(now_us));
        server.handle_timeout(Instant::from_micros(now_us));
    }
    let cpu = common::thread_cpu() - start;
    let held = (2 * msl.as_micros() as u64).div_ceil(step_us).min(lifecycles) as usize;
    assert!(client.time_wait_count().abs_diff(held) <= 1, "{} held", client.time_wait_count());
    assert_eq!(client.connection_count() + server.connection_count(), 0);
    Run { cpu, lifecycles }
}

// ------------------------------------------------------------------ smoltcp

#[inline(never)]
fn smoltcp_churn(lifecycles: u64) -> Run {
    let pool = common::pool();
    let device = || SmolDevice {
        rx: Queue::new(),
        tx: Queue::new(),
        pool: std::rc::Rc::clone(&pool),
        mtu: MTU,
    };
    let (mut cdev, mut sdev) = (device(), device());
    let mut ciface = smol_iface(&mut cdev, CLIENT);
    let mut siface = smol_iface(&mut sdev, SERVER);
    let socket = || {
        tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; 64 * 1024]),
            tcp::SocketBuffer::new(vec![0; 64 * 1024]),
        )
    };
    let mut csockets = SocketSet::new(vec![]);
    let mut ssockets = SocketSet::new(vec![]);
    let ch = csockets.add(socket());
    let sh = ssockets.add(socket());
    let remote = (IpAddress::Ipv4(SERVER), PORT);
    let mut buf = [0u8; 256];
    let mut now_us = 1_000i64;
    let mut port = 1024u16;
    let mut counts = Counts::default();
    let start = common::thread_cpu();
    for _ in 0..lifecycles {
        let t = SmolInstant::from_micros(now_us);
        ssockets.get_mut::<tcp::Socket<'_>>(sh).listen(PORT).unwrap();
        port = if port == u16::MAX { 1024 } else { port + 1 };
        csockets.get_mut::<tcp::Socket<'_>>(ch).connect(ciface.context(), remote, port).unwrap();
        let (mut client_sent, mut server_sent) = (false, false);
        let (mut client_got, mut server_got) = (0, 0);
        let mut server_closing = false;
        loop {
            ciface.poll(t, &mut cdev, &mut csockets);
            siface.poll(t, &mut sdev, &mut ssockets);
            let moved = exchange(&mut cdev, &mut sdev, &mut counts);
            let client = csockets.get_mut::<tcp::Socket<'_>>(ch);
            if !client_sent && client.may_send() {
                client.send_slice(&MESSAGE).unwrap();
                client_sent = true;
            }
            while client.can_recv() {
                client_got += client.recv_slice(&mut buf).unwrap();
            }
            if client_got == MESSAGE.len() && client.state() == tcp::State::Established {
                client.close();
            }
            let client_state = client.state();
            let server = ssockets.get_mut::<tcp::Socket<'_>>(sh);
            if !server_sent && server.may_send() {
                server.send_slice(&MESSAGE).unwrap();
                server_sent = true;
            }
            while server.can_recv() {
                server_got += server.recv_slice(&mut buf).unwrap();
            }
            if !server_closing && server.state() == tcp::State::CloseWait {
                assert_eq!(server_got, MESSAGE.len());
                server.close();
                server_closing = true;
            }
            let server_state = server.state();
            if client_state == tcp::State::TimeWait && server_state == tcp::State::Closed {
                break;
            }
            assert!(moved || client_sent, "stuck");
        }
        // smoltcp's TIME-WAIT (10 s) runs out on the virtual clock.
        now_us += 10_000_001;
        let t = SmolInstant::from_micros(now_us);
        ciface.poll(t, &mut cdev, &mut csockets);
        assert_eq!(csockets.get::<tcp::Socket<'_>>(ch).state(), tcp::State::Closed);
    }
    let cpu = common::thread_cpu() - start;
    Run { cpu, lifecycles }
}

fn main() {
    let options = Options::parse();
    if options.includes("churn") {
        churn(&options);
    }
    if options.includes("churn_timewait_100k") && options.runs("tcp-proto") {
        churn_timewait(&options);
    }
}

/// 100 000 lifecycles (× scale), 10 000 client 4-tuples in TIME-WAIT throughout.
fn churn_timewait(options: &Options) {
    let lifecycles = (100_000.0 * options.scale) as u64;
    let mut rates = Vec::new();
    for round in 0..options.rounds {
        // 2×MSL = 1 s, a lifecycle every 100 µs: 10 000 records held.
        let run = tcp_proto_churn(lifecycles, Duration::from_millis(500), 100);
        let rate = run.lifecycles as f64 / run.cpu.as_secs_f64();
        eprintln!(
            "churn_timewait_100k round {round}: {} lifecycles, {:.3} s CPU, {rate:.0} conn/s",
            run.lifecycles,
            run.cpu.as_secs_f64()
        );
        rates.push(rate);
    }
    let rate = common::median(&mut rates);
    println!(
        "RESULT churn_timewait_100k conn_per_s tcp-proto={rate:.0} smoltcp=n/a (TIME-WAIT is a \
         polled socket for a fixed 10 s there)"
    );
}

fn churn(options: &Options) {
    let lifecycles = (LIFECYCLES * options.scale) as u64;
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for round in 0..options.rounds {
        let order =
            if round % 2 == 0 { ["tcp-proto", "smoltcp"] } else { ["smoltcp", "tcp-proto"] };
        for stack in order.into_iter().filter(|stack| options.runs(stack)) {
            let run = if stack == "tcp-proto" {
                // TIME-WAIT (2×MSL = 2 ms) runs out before the next lifecycle.
                tcp_proto_churn(lifecycles, Duration::from_millis(1), 2_001)
            } else {
                smoltcp_churn(lifecycles)
            };
            let ns = run.cpu.as_nanos() as f64 / run.lifecycles as f64;
            eprintln!(
                "churn round {round} {stack}: {} lifecycles, {:.3} s CPU, {ns:.0} ns/lifecycle",
                run.lifecycles,
                run.cpu.as_secs_f64()
            );
            if stack == "tcp-proto" { &mut ours } else { &mut theirs }.push(ns);
        }
    }
    if ours.is_empty() || theirs.is_empty() {
        return;
    }
    let (lo, hi) = common::spread(&ours);
    let (slo, shi) = common::spread(&theirs);
    eprintln!("churn: ns/lifecycle spread tcp-proto {lo:.0}..{hi:.0}, smoltcp {slo:.0}..{shi:.0}");
    let (ns, sns) = (common::median(&mut ours), common::median(&mut theirs));
    common::result("churn", "cpu_ns_per_lifecycle", ns, sns);
    common::result("churn", "lifecycles_per_cpu_second", 1e9 / ns, 1e9 / sns);
}
