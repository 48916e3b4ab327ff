//! The Internet checksum in isolation: tcp-proto's `Checksum` against smoltcp's public
//! `wire::checksum::data`, on hot data of the lengths a segment has (a bare header, an MSS of
//! payload at an even and an odd start, a 64 KiB super-segment), and the copy of a payload from a
//! send ring into a packet with the sum taken on the way (`Checksum::add_copy`) against the copy
//! followed by the sum. Run with `cargo bench --bench checksum`, and once more built for AVX2
//! (`RUSTFLAGS="-C target-cpu=x86-64-v3" CARGO_TARGET_DIR=target/v3 cargo bench --bench
//! checksum`) to see that neither build is slower.
//!
//! Prints `RESULT checksum_<len> ns_per_call tcp-proto=… smoltcp=… ratio=…` and the same
//! workloads in `gb_per_s`, the median of `--rounds` rounds (default 5) of CPU time.

#![allow(missing_docs)]

mod common;

use std::hint::black_box;

use common::{Options, median, result, thread_cpu};
use tcp_proto::wire::checksum::Checksum;

/// Octets summed per round of each workload, so short and long pieces are timed alike.
const OCTETS_PER_ROUND: usize = 256 << 20;

/// The send ring the copying workloads read from: larger than L1 and L2 together, as a bulk
/// sender's 256 KiB ring is on this machine's cores.
const RING: usize = 4 << 20;

/// Times `calls` calls of `f` (given the call's index) and returns the median ns per call.
fn time(options: &Options, calls: usize, mut f: impl FnMut(usize)) -> f64 {
    // One round unmeasured: page faults, caches, frequency.
    for i in 0..calls.min(1 << 16) {
        f(i);
    }
    let mut per_call: Vec<f64> = (0..options.rounds)
        .map(|_| {
            let start = thread_cpu();
            for i in 0..calls {
                f(i);
            }
            (thread_cpu() - start).as_nanos() as f64 / calls as f64
        })
        .collect();
    median(&mut per_call)
}

fn ours(data: &[u8]) -> u16 {
    let mut sum = Checksum::new();
    sum.add_bytes(data);
    sum.finish()
}

fn report(name: &str, len: usize, ours_ns: f64, theirs_ns: f64) {
    result(name, "ns_per_call", ours_ns, theirs_ns);
    // Octets per nanosecond are GB/s.
    let rate = |ns: f64| len as f64 / ns;
    println!(
        "RESULT {name} gb_per_s tcp-proto={:.2} smoltcp={:.2}",
        rate(ours_ns),
        rate(theirs_ns)
    );
}

fn main() {
    let options = Options::parse();
    let scale = |calls: usize| ((calls as f64 * options.scale) as usize).max(1);
    let data: Vec<u8> =
        (0..70_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    // Both sums agree before either is timed (smoltcp's is not complemented).
    for len in [0, 1, 63, 64, 1460, 65535] {
        assert_eq!(ours(&data[..len]), !smoltcp::wire::checksum::data(&data[..len]), "{len}");
    }

    for (name, start, len) in [
        ("checksum_20", 0, 20),
        ("checksum_1460", 0, 1460),
        ("checksum_1460_odd_start", 1, 1460),
        ("checksum_65535", 0, 65535),
    ] {
        if !options.includes(name) {
            continue;
        }
        let piece = &data[start..start + len];
        let calls = scale(OCTETS_PER_ROUND / len);
        let ours_ns = time(&options, calls, |_| {
            black_box(ours(black_box(piece)));
        });
        let theirs_ns = time(&options, calls, |_| {
            black_box(smoltcp::wire::checksum::data(black_box(piece)));
        });
        report(name, len, ours_ns, theirs_ns);
    }

    // A payload copied from a send ring (at the offsets a bulk sender's segments have) into a
    // packet buffer, and summed: tcp-proto's fused copy against the copy and then the sum.
    let name = "copy_checksum_1460";
    if options.includes(name) {
        let len = 1460;
        let ring: Vec<u8> = data.iter().copied().cycle().take(RING).collect();
        let mut packet = vec![0u8; 1500];
        let calls = scale(OCTETS_PER_ROUND / len);
        let offset = |i: usize| (i * len) % (RING - len);
        let fused_ns = time(&options, calls, |i| {
            let src = &ring[offset(i)..][..len];
            let mut sum = Checksum::new();
            sum.add_copy(&mut packet[40..40 + len], black_box(src));
            black_box(sum.finish());
        });
        let apart_ns = time(&options, calls, |i| {
            let src = &ring[offset(i)..][..len];
            let dst = &mut packet[40..40 + len];
            dst.copy_from_slice(black_box(src));
            let mut sum = Checksum::new();
            sum.add_bytes(black_box(&*dst));
            black_box(sum.finish());
        });
        let theirs_ns = time(&options, calls, |i| {
            let src = &ring[offset(i)..][..len];
            let dst = &mut packet[40..40 + len];
            dst.copy_from_slice(black_box(src));
            black_box(smoltcp::wire::checksum::data(black_box(&*dst)));
        });
        println!("RESULT {name} ns_per_call tcp-proto-copy-then-sum={apart_ns:.3}");
        report(name, len, fused_ns, theirs_ns);
    }
}
