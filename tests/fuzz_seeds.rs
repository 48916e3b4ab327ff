//! The fuzz seed corpus captured from the simulator (`fuzz/seeds/*/sim-*`): the dialogues of
//! `testing::ops::simulated_dialogues` — handshakes both ways, data both ways, each close
//! order, a simultaneous close, resets — as `connection` inputs (A's side of the dialogue in
//! the shared operation language) and as raw segments for `parse_segment`.
//!
//! This test checks that the encoding round-trips through `arbitrary`, that each captured
//! input replays cleanly through the checker and reaches the states its dialogue went
//! through, and that the committed files are current. `UPDATE_SEEDS=1 cargo test --test
//! fuzz_seeds` rewrites them.

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
