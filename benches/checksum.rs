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
//!
//! `--workload checksum_lengths` (only when named) instead sums and copies-and-sums pieces of
//! the lengths around the short/wide threshold, one `#[inline(never)]` probe function per
//! length and form, `CALLS_PER_PROBE` calls each: under callgrind
//! (`valgrind --tool=callgrind $bin --workload checksum_lengths --rounds 1`) a probe's inclusive
//! cost divided by `CALLS_PER_PROBE` is the instructions per call at that length.

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

/// Calls per length probe of `checksum_lengths`.
const CALLS_PER_PROBE: usize = 1000;

/// One `#[inline(never)]` function per length for summing (`sum_<len>`) and for copying and
/// summing (`copy_<len>`), so that callgrind counts each length apart.
macro_rules! length_probes {
    ($($len:literal => $sum:ident, $copy:ident;)*) => {
        $(
            #[inline(never)]
            fn $sum(data: &[u8]) {
                for _ in 0..CALLS_PER_PROBE {
                    black_box(ours(black_box(&data[..$len])));
                }
            }

            #[inline(never)]
            fn $copy(data: &[u8], dst: &mut [u8]) {
                for _ in 0..CALLS_PER_PROBE {
                    let mut sum = Checksum::new();
                    sum.add_copy(black_box(&mut dst[..$len]), black_box(&data[..$len]));
                    black_box(sum.finish());
                }
            }
        )*

        /// The probes: length, sum, copy-and-sum.
        const PROBES: &[(usize, fn(&[u8]), fn(&[u8], &mut [u8]))] = &[$(($len, $sum, $copy)),*];
    };
}

length_probes! {
    12 => sum_12, copy_12;
    20 => sum_20, copy_20;
    32 => sum_32, copy_32;
    40 => sum_40, copy_40;
    52 => sum_52, copy_52;
    63 => sum_63, copy_63;
    64 => sum_64, copy_64;
    72 => sum_72, copy_72;
    96 => sum_96, copy_96;
    127 => sum_127, copy_127;
    128 => sum_128, copy_128;
    160 => sum_160, copy_160;
    192 => sum_192, copy_192;
    224 => sum_224, copy_224;
    255 => sum_255, copy_255;
    256 => sum_256, copy_256;
    257 => sum_257, copy_257;
    1460 => sum_1460, copy_1460;
    1492 => sum_1492, copy_1492;
}

/// `checksum_lengths`: every probe once (CPU time per call printed, but meant for callgrind).
fn lengths(data: &[u8]) {
    let mut dst = vec![0u8; 2048];
    for &(len, sum, copy) in PROBES {
        let start = thread_cpu();
        sum(&data[1..]);
        let sum_ns = (thread_cpu() - start).as_nanos() as f64 / CALLS_PER_PROBE as f64;
        let start = thread_cpu();
        copy(&data[1..], &mut dst[1..]);
        let copy_ns = (thread_cpu() - start).as_nanos() as f64 / CALLS_PER_PROBE as f64;
        println!("RESULT checksum_length_{len} ns_per_call sum={sum_ns:.1} copy_sum={copy_ns:.1}");
    }
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
    if options.workload.as_deref() == Some("checksum_lengths") {
        lengths(&data);
        return;
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
