//! The fuzz seed corpus captured from the simulator (`fuzz/seeds/*/sim-*`): the dialogues of
//! `testing::ops::simulated_dialogues` — handshakes both ways, data both ways, each close
//! order, a simultaneous close, resets — as `connection` inputs (A's side of the dialogue in
//! the shared operation language) and as raw segments for `parse_segment`.
//!
//! This test checks that the encoding round-trips through `arbitrary`, that each captured
//! input replays cleanly through the checker and reaches the states its dialogue went
//! through, and that the committed files are current. `UPDATE_SEEDS=1 cargo test --test
//! fuzz_seeds` rewrites them. The scripted SACK runs of `testing::sack_model::sack_scripts`
//! (`fuzz/seeds/connection/sack-*`) are checked the same way.

use std::path::Path;

use arbitrary::{Arbitrary, Unstructured};
use tcp_proto::State;
use tcp_proto::testing::ops::{self, Input};

fn check_or_write(path: &Path, bytes: &[u8], stale: &mut Vec<String>) {
    if std::env::var_os("UPDATE_SEEDS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    } else if std::fs::read(path).ok().as_deref() != Some(bytes) {
        stale.push(path.display().to_string());
    }
}

#[test]
fn simulated_dialogues_are_committed_seeds_that_replay_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    let mut stale = Vec::new();
    let captures = ops::simulated_dialogues();
    assert_eq!(captures.len(), 6);
    for capture in &captures {
        let bytes = ops::encode(&capture.input);
        let decoded = Input::arbitrary_take_rest(Unstructured::new(&bytes)).unwrap();
        assert_eq!(
            format!("{decoded:?}"),
            format!("{:?}", capture.input),
            "{}: the encoding does not round-trip through arbitrary",
            capture.name
        );
        let visited = ops::run(&capture.input);
        assert!(visited.contains(State::Established), "{}: never ESTABLISHED", capture.name);
        check_or_write(
            &root.join("connection").join(format!("sim-{}", capture.name)),
            &bytes,
            &mut stale,
        );
        for (i, segment) in capture.segments.iter().enumerate() {
            let path = root.join("parse_segment").join(format!("sim-{}-{i:02}", capture.name));
            check_or_write(&path, segment, &mut stale);
        }
    }
    // Each close order and the reset reach where the dialogue went.
    let reached = |name: &str, state: State| {
        let capture = captures.iter().find(|c| c.name == name).unwrap();
        assert!(ops::run(&capture.input).contains(state), "{name}: never {state:?}");
    };
    reached("active-data-we-close-first", State::TimeWait);
    reached("active-peer-closes-first", State::LastAck);
    reached("passive-data-both-ways", State::TimeWait);
    reached("passive-simultaneous-close", State::Closing);
    reached("active-peer-resets", State::Closed);
    assert!(stale.is_empty(), "seed files out of date (UPDATE_SEEDS=1 rewrites them): {stale:?}");
}

/// The scripted SACK runs (`testing::sack_model::sack_scripts`) are committed seeds
/// (`fuzz/seeds/connection/sack-*`) that replay cleanly and reach what each is about.
#[test]
fn sack_scripts_are_committed_seeds_that_reach_their_checks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/connection");
    let mut stale = Vec::new();
    let scripts = tcp_proto::testing::sack_model::sack_scripts();
    assert_eq!(scripts.len(), 6);
    for (name, input) in &scripts {
        let bytes = ops::encode(input);
        let decoded = Input::arbitrary_take_rest(Unstructured::new(&bytes)).unwrap();
        assert_eq!(format!("{decoded:?}"), format!("{input:?}"), "{name}: no round trip");
        let sack = ops::run_report(input).sack;
        assert!(sack.negotiated, "{name}: {sack:?}");
        let reached = match *name {
            "sack-recovery" => sack.recoveries == 1 && sack.retransmissions_checked > 0,
            "sack-receiver-blocks" => sack.blocks_sent > 0 && sack.dsacks_sent == 2,
            "sack-spurious-retransmission" => sack.dsacks_received == 1,
            "sack-loss-probe" => sack.loss_probes == 1,
            "sack-bogus-blocks" => sack.blocks_taken > 0 && sack.dsacks_received > 0,
            "sack-timeout" => sack.blocks_taken > 0,
            _ => false,
        };
        assert!(reached, "{name}: {sack:?}");
        check_or_write(&root.join(name), &bytes, &mut stale);
    }
    assert!(stale.is_empty(), "seed files out of date (UPDATE_SEEDS=1 rewrites them): {stale:?}");
}
