//! Model-based property test: operation lists in the same `Op` language the `connection`
//! fuzz target uses — generated here by a proptest strategy weighted towards segments that
//! fit the connection (right SEQ and ACK, meaningful flag sets), so runs get past the
//! handshake and into every state — run against a real connection, checked after every step against the RFC reference model of
//! `tcp_proto::testing::ops` (transitions, acceptability window, byte stream, invariants).
//! proptest shrinks a failure to a minimal operation list; failures are recorded in
//! `tests/model.proptest-regressions` (commit it) and replayed first on every run.
//!
//! `cargo test --test model` runs a fixed 1 000 cases; the ≥ 10 000-case run is
//! `cargo test --release --test model -- --ignored --nocapture`.

use arbitrary::{Arbitrary, Unstructured};
use proptest::prelude::*;
use tcp_proto::testing::ops::{self, Anchor, Input, Op, PeerSegment};

fn flags() -> impl Strategy<Value = u8> {
    const FIN: u8 = 0x01;
    const SYN: u8 = 0x02;
    const RST: u8 = 0x04;
    const PSH: u8 = 0x08;
    const ACK: u8 = 0x10;
    prop_oneof![
        8 => Just(ACK),
        4 => Just(PSH | ACK),
        3 => Just(SYN | ACK),
        2 => Just(SYN),
        3 => Just(FIN | ACK),
        1 => Just(FIN | PSH | ACK),
        1 => Just(RST),
        1 => Just(RST | ACK),
        1 => Just(SYN | FIN | ACK),
        1 => any::<u8>(),
    ]
}

fn anchor(usual: Anchor) -> impl Strategy<Value = Anchor> {
    prop_oneof![
        8 => Just(usual),
        1 => Just(Anchor::RcvNxt),
        1 => Just(Anchor::RcvWndEnd),
        1 => Just(Anchor::SndUna),
        1 => Just(Anchor::SndNxt),
        1 => Just(Anchor::Irs),
        1 => Just(Anchor::Iss),
        1 => any::<u32>().prop_map(Anchor::Raw),
    ]
}

fn offset() -> impl Strategy<Value = i16> {
    prop_oneof![8 => Just(0i16), 3 => -3i16..=3, 1 => -3000i16..=3000, 1 => any::<i16>()]
}

fn segment() -> impl Strategy<Value = Op> {
    (
        flags(),
        anchor(Anchor::RcvNxt),
        offset(),
        anchor(Anchor::SndNxt),
        offset(),
        prop_oneof![4 => Just(65_535u16), 1 => 0u16..2000, 1 => any::<u16>()],
        prop_oneof![3 => Just(0u16), 3 => 1u16..1500, 1 => any::<u16>()],
        prop_oneof![6 => Just(0u16), 1 => any::<u16>()],
        prop_oneof![4 => Just(None), 1 => (1u16..2000).prop_map(Some)],
        prop_oneof![4 => Just(None), 1 => (0u8..16).prop_map(Some)],
    )
        .prop_map(|(flags, seq, seq_off, ack, ack_off, window, len, urgent, mss, scale)| {
            Op::Segment(PeerSegment {
                flags,
                seq,
                seq_off,
                ack,
                ack_off,
                window,
                len,
                urgent,
                mss,
                window_scale: scale,
            })
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => segment(),
        3 => any::<u16>().prop_map(Op::Send),
        3 => any::<u16>().prop_map(Op::Recv),
        1 => Just(Op::Close),
        1 => Just(Op::Shutdown),
        1 => Just(Op::Abort),
        3 => prop_oneof![0u32..1000, 1000u32..3_000_000, any::<u32>()].prop_map(Op::Tick),
        1 => any::<bool>().prop_map(Op::NoDelay),
    ]
}

fn input() -> impl Strategy<Value = Input> {
    (any::<bool>(), any::<bool>(), proptest::collection::vec(op(), 0..80))
        .prop_map(|(passive, delayed_ack, ops)| Input { passive, delayed_ack, ops })
}

/// Raw bytes through `arbitrary`, as the fuzzer builds its inputs.
fn run_bytes(bytes: &[u8]) -> ops::Visited {
    let mut unstructured = Unstructured::new(bytes);
    match Input::arbitrary(&mut unstructured) {
        Ok(input) => ops::run(&input),
        Err(_) => ops::Visited::default(),
    }
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig { cases, max_shrink_iters: 20_000, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config(1_000))]
    #[test]
    fn connection_follows_the_rfc_model(input in input()) {
        ops::run(&input);
    }

    #[test]
    fn arbitrary_bytes_as_the_fuzzer_reads_them(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        run_bytes(&bytes);
    }
}

proptest! {
    #![proptest_config(config(10_000))]
    #[test]
    #[ignore = "long: run with --release --ignored"]
    fn connection_follows_the_rfc_model_10k(input in input()) {
        ops::run(&input);
    }
}

/// The generated inputs are not vacuous: across 2 000 of them every one of the 11 states is
/// reached (so every rule above is exercised from every state).
#[test]
fn random_inputs_reach_every_state() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = input();
    let mut seen = 0u16;
    let mut counts = [0u32; 11];
    for _ in 0..2_000 {
        let input = strategy.new_tree(&mut runner).unwrap().current();
        let visited = ops::run(&input);
        seen |= visited.0;
        for (i, count) in counts.iter_mut().enumerate() {
            *count += u32::from(visited.0 >> i & 1);
        }
    }
    let missing: Vec<_> = tcp_proto::State::ALL
        .iter()
        .enumerate()
        .filter(|(i, _)| seen >> i & 1 == 0)
        .map(|(_, s)| *s)
        .collect();
    eprintln!("runs visiting each state: {counts:?}");
    assert!(missing.is_empty(), "never reached: {missing:?}");
}

/// The model itself can fail: a transition RFC 9293 does not allow is refused, and an
/// unacceptable segment is recognised as one (so the checks above are not vacuous).
#[test]
fn the_reference_model_refuses_what_the_rfc_forbids() {
    use ops::{Cause, History, acceptable, rfc_allows};
    use tcp_proto::State;
    let fin = Cause::Segment {
        syn: false,
        ack: true,
        fin: true,
        rst: false,
        data: false,
        acks_our_fin: false,
        at_rcv_nxt: true,
        acks_our_syn: false,
    };
    let h = History::default();
    // RFC 5961 §3: a RST believed only exactly at RCV.NXT, in SYN-SENT only with our SYN
    // acknowledged.
    let rst = |at_rcv_nxt, acks_our_syn| Cause::Segment {
        syn: false,
        ack: true,
        fin: false,
        rst: true,
        data: false,
        acks_our_fin: false,
        at_rcv_nxt,
        acks_our_syn,
    };
    assert!(rfc_allows(State::Established, State::Closed, rst(true, false), h));
    assert!(!rfc_allows(State::Established, State::Closed, rst(false, false), h));
    assert!(!rfc_allows(State::SynReceived, State::Listen, rst(false, false), h));
    assert!(rfc_allows(State::SynSent, State::Closed, rst(false, true), h));
    assert!(!rfc_allows(State::SynSent, State::Closed, rst(false, false), h));
    assert!(rfc_allows(State::Established, State::CloseWait, fin, h));
    assert!(!rfc_allows(State::Established, State::TimeWait, fin, h));
    assert!(!rfc_allows(State::FinWait1, State::FinWait2, fin, h), "FIN without ACK of ours");
    assert!(!rfc_allows(State::Listen, State::Established, fin, h));
    assert!(!rfc_allows(State::Established, State::CloseWait, Cause::Tick, h));
    assert!(!rfc_allows(State::CloseWait, State::FinWait1, Cause::Close { unread: false }, h));
    assert!(!rfc_allows(State::Established, State::Closed, Cause::Close { unread: false }, h));
    assert!(acceptable(100, 0, 100, 0));
    assert!(!acceptable(101, 0, 100, 0));
    assert!(!acceptable(100, 1, 100, 0));
    assert!(acceptable(99, 2, 100, 10), "its end is in the window");
    assert!(!acceptable(110, 1, 100, 10), "just past the right edge");
    let _ = Op::Close;
}
