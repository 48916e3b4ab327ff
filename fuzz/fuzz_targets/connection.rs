//! One `Connection` fed an arbitrary sequence of segments (near its current sequence space, so
//! they pass validation often), timer ticks and user calls — the operation language and the
//! checks of `tcp_proto::testing::ops`, shared with the proptest model test (`tests/model.rs`).
//!
//! Oracles, after every step (see that module): every state change is one RFC 9293 allows for
//! its cause (an independent reference model, not the crate's own table — and the table's
//! debug assertion panics on an illegal stimulus too); an unacceptable segment moves neither
//! RCV.NXT nor the state; every octet delivered is the octet the peer sent there; SND.UNA ≤
//! SND.NXT; buffers within bounds; bounded output; unacknowledged data always has a timer.
//! Each call picks its API form (issue #19): copying or `Bytes` sends, the copying or the
//! header-only output, parsed or zero-copy input in packets of any capacity, and every
//! read form; every octet sent is the one the application gave at that place in its stream.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcp_proto::testing::ops::{Input, run};

fuzz_target!(|input: Input| {
    run(&input);
});
