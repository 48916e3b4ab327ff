//! CUBIC on a connection (RFC 9438): the default controller, and over the simulator's
//! bottleneck a loss takes cwnd to 0.7× and the window regrows along W_cubic(t) — concave up
//! to the window where the loss struck, convex beyond it.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use tcp_proto::congestion::{CongestionAlgorithm, CongestionControl, CongestionEvent, PathInfo};
use tcp_proto::testing::sim::{Link, LinkConfig, Sim};
use tcp_proto::testing::{Verdict, addr_a, addr_b};
use tcp_proto::{CallError, Config, Connection, Instant, SeqNum};

fn config(iss: u32) -> Config {
    let mut config = Config::with_fixed_isn(SeqNum::new(iss));
    config.send_buffer = 4 << 20;
    config.recv_buffer = 4 << 20;
    config
}

#[derive(Debug)]
struct Fixed;

impl CongestionControl for Fixed {
    fn window(&self) -> u32 {
        10_000
    }
    fn ssthresh(&self) -> u32 {
        u32::MAX
    }
    fn on_event(&mut self, _: CongestionEvent, _: &PathInfo) {}
}

#[test]
fn new_connections_use_cubic_unless_configured_otherwise_rfc_9438_1() {
    let now = Instant::ZERO;
    let conn = Connection::connect(config(1), now, addr_a(40_000), addr_b(80)).unwrap();
    assert_eq!(conn.status().congestion, Some(CongestionAlgorithm::Cubic), "the default");
    assert_eq!(Config::new([0; 16]).congestion, CongestionAlgorithm::Cubic);
    let mut newreno = config(1);
    newreno.congestion = CongestionAlgorithm::NewReno;
    let mut conn = Connection::connect(newreno, now, addr_a(40_000), addr_b(80)).unwrap();
    assert_eq!(conn.status().congestion, Some(CongestionAlgorithm::NewReno));
    conn.set_congestion_control(Box::new(Fixed));
    assert_eq!(conn.status().congestion, None, "the application's own");
    assert_eq!(conn.status().cwnd, 10_000);
}

/// W_cubic(t) in octets (RFC 9438 §4.2, Figure 1) for a loss at `w_max` octets.
fn w_cubic(t: f64, w_max: f64, mss: f64) -> f64 {
    let k = (w_max / mss * 0.3 / 0.4).cbrt();
    0.4 * (t - k).powi(3) * mss + w_max
}

#[test]
fn loss_takes_cwnd_to_0_7_and_it_regrows_along_the_cubic_curve_rfc_9438_4_6_4_2() {
    // 1 Gbit/s, 100 ms round trip: the window stays far below the bandwidth-delay product
    // (12.5 MB), so no queue builds, the RTT stays put and slow start runs until the loss;
    // the link rate spreads the ACKs (one a step).
    let link = LinkConfig {
        delay: Duration::from_millis(50),
        bandwidth_bps: Some(1_000_000_000),
        ..LinkConfig::perfect()
    };
    let now = Instant::ZERO;
    let a = Connection::connect(config(1), now, addr_a(40_000), addr_b(80)).unwrap();
    let b = Connection::listen(config(2), now, addr_b(80));
    let mut sim = Sim::new(a, b, Link::new(link.clone(), 1), Link::new(link, 2), now);
    // Armed once cwnd reaches 100 segments: the next data segment from A is lost (once).
    let drop_next = Rc::new(Cell::new(false));
    let hook_flag = Rc::clone(&drop_next);
    sim.set_hook(Box::new(move |direction, bytes| {
        let header_len = bytes.get(12).map_or(20, |offset| usize::from(offset >> 4) * 4);
        let data = bytes.len() > header_len;
        if hook_flag.get() && data && direction == tcp_proto::testing::Direction::AToB {
            hook_flag.set(false);
            return Verdict::Drop;
        }
        Verdict::Deliver
    }));
    let chunk = vec![0x5a; 256 * 1024];
    let mut buf = vec![0u8; 256 * 1024];
    let mut armed = false;
    let mut before_loss = None;
    let mut loss: Option<(Instant, u32, u32)> = None;
    let mut samples = Vec::new();
    let mut last_cwnd = 0;
    while loss.is_none_or(|(at, _, _)| sim.now < at + Duration::from_secs(12)) {
        while sim.a.send(sim.now, &chunk).is_ok_and(|n| n > 0) {}
        loop {
            match sim.b.recv(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(CallError::Closing) => break,
                Err(e) => panic!("receiver failed: {e}"),
            }
        }
        if !armed && sim.a.status().cwnd >= 100 * u32::from(sim.a.status().effective_mss) {
            armed = true;
            drop_next.set(true);
            before_loss = Some(sim.a.status().ssthresh);
        }
        let status = sim.a.status();
        if loss.is_none() && armed && Some(status.ssthresh) != before_loss {
            loss = Some((sim.now, last_cwnd, status.ssthresh));
        }
        if let Some((at, _, _)) = loss {
            samples.push((sim.now.saturating_duration_since(at).as_secs_f64(), status.cwnd));
        }
        last_cwnd = status.cwnd;
        assert!(sim.step(), "{}", sim.trace());
    }
    let (_, w_max, ssthresh) = loss.expect("the dropped segment drew a congestion response");
    assert_eq!(sim.a.status().congestion, Some(CongestionAlgorithm::Cubic));
    assert_eq!(ssthresh, w_max * 7 / 10, "β = 0.7 (cwnd was {w_max})");
    let mss = f64::from(sim.a.status().effective_mss);
    let w_max = f64::from(w_max);
    let k = (w_max / mss * 0.3 / 0.4).cbrt();
    assert!(k > 4.0, "K = {k:.2} s: the test wants a long concave stretch");
    // The epoch starts when recovery ends (the first ACK in congestion avoidance), within a
    // couple of round trips of the loss being found: cwnd lies between the curve started then
    // and the curve started at the loss.
    let mut checked = 0;
    for &(t, cwnd) in &samples {
        if t < 0.5 || t > 2.0 * k {
            continue;
        }
        let cwnd = f64::from(cwnd);
        let (low, high) = (w_cubic(t - 0.4, w_max, mss), w_cubic(t, w_max, mss) + mss);
        assert!(
            (low - mss..=high).contains(&cwnd),
            "at {t:.2} s after the loss cwnd {cwnd} outside [{low:.0}, {high:.0}] (W_max {w_max}, K {k:.2})"
        );
        checked += 1;
    }
    assert!(checked > 1000, "{checked} samples");
    println!("loss at cwnd {w_max} octets, ssthresh {ssthresh}, K {k:.2} s; {checked} samples");
    // Concave below W_max before K, past it (convex) by 2K.
    let at =
        |when: f64| samples.iter().find(|&&(t, _)| t >= when).map(|&(_, cwnd)| f64::from(cwnd));
    assert!(at(k * 0.5).unwrap() < w_max && at(k * 0.5).unwrap() > f64::from(ssthresh));
    assert!(at(2.0 * k).unwrap() > w_max + 0.4 * (0.9 * k).powi(3) * mss);
}

/// Runs a request/response pattern: A writes `size` octets every 200 ms (over a 100 ms round
/// trip) for 10 s, B reads; returns A's cwnd and the initial window in octets.
fn trickle(congestion: CongestionAlgorithm, size: usize) -> (u32, u32) {
    let link = LinkConfig { delay: Duration::from_millis(50), ..LinkConfig::perfect() };
    let now = Instant::ZERO;
    let mut a_config = config(1);
    a_config.congestion = congestion;
    let a = Connection::connect(a_config, now, addr_a(40_000), addr_b(80)).unwrap();
    let b = Connection::listen(config(2), now, addr_b(80));
    let mut sim = Sim::new(a, b, Link::new(link.clone(), 1), Link::new(link, 2), now);
    let mut buf = vec![0u8; 64 * 1024];
    assert!(
        sim.run_until(Duration::from_secs(1), |sim| sim.a.state() == tcp_proto::State::Established)
    );
    let initial = sim.a.status().cwnd;
    let mut next_write = sim.now;
    let end = sim.now + Duration::from_secs(10);
    while sim.now < end {
        if sim.now >= next_write {
            assert_eq!(sim.a.send(sim.now, &vec![1; size]).unwrap(), size);
            next_write += Duration::from_millis(200);
        }
        while sim.b.recv(&mut buf).is_ok_and(|n| n > 0) {}
        // Step until the next write is due; when both sides are idle, jump to it.
        let due = next_write;
        if !sim.run_until(Duration::from_secs(1), |sim| sim.now >= due) {
            sim.now = sim.now.max(due);
        }
    }
    (sim.a.status().cwnd, initial)
}

#[test]
fn application_limited_sending_does_not_grow_cwnd_rfc_9438_5_8() {
    // Five segments a round trip, half the initial window: cwnd never limited the sender.
    let (cwnd, initial) = trickle(CongestionAlgorithm::Cubic, 5 * 1448);
    assert_eq!(cwnd, initial, "no growth while the application limits sending");
    // NewReno (RFC 5681) grows on every ACK, cwnd-limited or not: the contrast.
    let (cwnd, initial) = trickle(CongestionAlgorithm::NewReno, 5 * 1448);
    assert!(cwnd > 2 * initial, "NewReno: {cwnd} from {initial}");
}
