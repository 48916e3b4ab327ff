//! Model-based property test: operation lists in the same `Op` language the `connection`
//! fuzz target uses — generated here by a proptest strategy weighted towards segments that
//! fit the connection (right SEQ and ACK, meaningful flag sets), so runs get past the
//! handshake and into every state — run against a real connection, checked after every step against the RFC reference model of
//! `tcp_proto::testing::ops` (transitions, acceptability window, byte stream, invariants).
//! proptest shrinks a failure to a minimal operation list; failures are recorded in
//! `tests/model.proptest-regressions` (commit it) and replayed first on every run.
//!
//! A second strategy drives the SACK checks (`tcp_proto::testing::sack_model`): a correct
//! handshake in which the peer usually offers SACK-permitted, then acknowledgments of what
//! the peer holds with truthful, D-SACK and bogus blocks, sends of several segments, losses
//! and late arrivals, out-of-order data from the peer, and ticks near a round trip;
//! `sack_inputs_reach_the_scoreboard` shows the runs reach recovery, probes and D-SACKs.
//!
//! `cargo test --test model` runs a fixed 1 000 cases of each; the ≥ 10 000-case runs are
//! `cargo test --release --test model -- --ignored --nocapture`.

use arbitrary::{Arbitrary, Unstructured};
use proptest::collection::vec;
use proptest::prelude::*;
use tcp_proto::testing::ops::{
    self, Anchor, Input, Op, PeerSegment, RawSackBlock, ReadForm, SackBlockSpec, SackSpec, SendForm,
};

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
        1 => Just(Anchor::Held),
    ]
}

fn offset() -> impl Strategy<Value = i16> {
    prop_oneof![8 => Just(0i16), 3 => -3i16..=3, 1 => -3000i16..=3000, 1 => any::<i16>()]
}

/// A SACK block the model peer sends: mostly truthful (held data above the ACK field), some
/// D-SACKs of what it received twice, some anywhere (outside SND.UNA..SND.NXT, reversed,
/// empty, overlapping, D-SACK-shaped below the ACK).
fn block_spec() -> BoxedStrategy<SackBlockSpec> {
    let raw = (
        anchor(Anchor::SndUna),
        prop_oneof![4 => -1500i16..=3000, 1 => any::<i16>()],
        prop_oneof![4 => 1i16..=1500, 1 => -8i16..=0, 1 => any::<i16>()],
    )
        .prop_map(|(anchor, offset, len)| RawSackBlock { anchor, offset, len });
    prop_oneof![
        6 => (0u8..4).prop_map(SackBlockSpec::Held),
        1 => Just(SackBlockSpec::Duplicate),
        2 => raw.prop_map(SackBlockSpec::Raw),
    ]
    .boxed()
}

// Boxed, like `segment_with`: the value trees of these nested strategies would otherwise sit
// on the test thread's stack, which debug builds overflow.
fn sack_option(weight_none: u32) -> BoxedStrategy<Option<SackSpec>> {
    use SackBlockSpec::{Duplicate, Held};
    prop_oneof![
        weight_none => Just(None),
        4 => (1u8..5).prop_map(|count| Some(SackSpec {
            count,
            blocks: [Held(0), Held(1), Held(2), Held(3)],
        })),
        1 => (1u8..5).prop_map(|count| Some(SackSpec {
            count,
            blocks: [Duplicate, Held(0), Held(1), Held(2)],
        })),
        2 => (any::<u8>(), [block_spec(), block_spec(), block_spec(), block_spec()])
            .prop_map(|(count, blocks)| Some(SackSpec { count, blocks })),
    ]
    .boxed()
}

/// How a segment is handed over: parsed and copied, or as a packet kept as slices, its
/// allocation just the segment, a little larger, much larger (up to 16 times the receive
/// buffer), or anything.
fn packet() -> BoxedStrategy<Option<u16>> {
    prop_oneof![
        3 => Just(None),
        1 => Just(Some(0u16)),
        1 => (1u16..512).prop_map(Some),
        1 => (4096u16..=u16::MAX).prop_map(Some),
        1 => any::<u16>().prop_map(Some),
    ]
    .boxed()
}

/// The SEND forms (issue #19), one chosen per call.
fn send_form() -> impl Strategy<Value = SendForm> {
    prop_oneof![Just(SendForm::Copy), Just(SendForm::Bytes), any::<u8>().prop_map(SendForm::Chunks),]
}

/// The RECEIVE forms, one chosen per call.
fn read_form() -> impl Strategy<Value = ReadForm> {
    prop_oneof![
        Just(ReadForm::Copy),
        Just(ReadForm::Chunk),
        Just(ReadForm::Bytes),
        any::<u8>().prop_map(ReadForm::Chunks),
    ]
}

/// A RECEIVE: any size, or a small one (chunks cut short, `read_chunk(0)`).
fn recv() -> impl Strategy<Value = Op> {
    (prop_oneof![3 => any::<u16>(), 1 => 0u16..64], read_form())
        .prop_map(|(n, form)| Op::Recv(n, form))
}

/// Which output polls go through the header-only form: none, all, or a pattern.
fn output() -> impl Strategy<Value = Op> {
    prop_oneof![Just(0u16), Just(u16::MAX), any::<u16>()].prop_map(Op::Output)
}

fn segment() -> impl Strategy<Value = Op> {
    let len = prop_oneof![3 => Just(0u16), 3 => 1u16..1500, 1 => any::<u16>()];
    segment_with(flags().boxed(), Anchor::SndNxt, len.boxed(), 21)
}

/// Flags for the SACK runs: mostly plain ACKs, few RSTs and FINs (so connections live long
/// enough to send, lose and recover).
fn sack_flags() -> impl Strategy<Value = u8> {
    const FIN: u8 = 0x01;
    const SYN: u8 = 0x02;
    const PSH: u8 = 0x08;
    const ACK: u8 = 0x10;
    prop_oneof![
        16 => Just(ACK),
        3 => Just(PSH | ACK),
        3 => Just(SYN | ACK),
        2 => Just(SYN),
        1 => Just(FIN | ACK),
        1 => flags(),
    ]
}

/// A peer segment with `flags`, its ACK usually anchored on `ack`, `len` octets of data,
/// carrying SACK blocks in about 7 of `7 + weight_none` cases.
fn segment_with(
    flags: BoxedStrategy<u8>,
    ack: Anchor,
    len: BoxedStrategy<u16>,
    weight_none: u32,
) -> BoxedStrategy<Op> {
    (
        flags,
        anchor(Anchor::RcvNxt),
        offset(),
        anchor(ack),
        offset(),
        prop_oneof![4 => Just(65_535u16), 1 => 0u16..2000, 1 => any::<u16>()],
        len,
        prop_oneof![6 => Just(0u16), 1 => any::<u16>()],
        prop_oneof![4 => Just(None), 1 => (1u16..2000).prop_map(Some)],
        prop_oneof![4 => Just(None), 1 => (0u8..16).prop_map(Some)],
        sack_option(weight_none),
        packet(),
    )
        .prop_map(
            |(flags, seq, seq_off, ack, ack_off, window, len, urgent, mss, scale, sack, packet)| {
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
                    sack,
                    packet,
                })
            },
        )
        .boxed()
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => segment(),
        3 => (any::<u16>(), send_form()).prop_map(|(n, form)| Op::Send(n, form)),
        3 => recv(),
        1 => output(),
        1 => Just(Op::Close),
        1 => Just(Op::Shutdown),
        1 => Just(Op::Abort),
        3 => prop_oneof![0u32..1000, 1000u32..3_000_000, any::<u32>()].prop_map(Op::Tick),
        1 => any::<bool>().prop_map(Op::NoDelay),
        1 => any::<u16>().prop_map(Op::Lose),
        1 => any::<u8>().prop_map(Op::Arrive),
    ]
}

fn input() -> impl Strategy<Value = Input> {
    (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>(), vec(op(), 0..80)).prop_map(
        |(passive, delayed_ack, peer_sack, peer_timestamps, ops)| Input {
            passive,
            delayed_ack,
            peer_sack,
            peer_timestamps,
            ops,
        },
    )
}

/// Operations for the SACK scoreboard: the peer acknowledges what it holds (`Anchor::Held`)
/// and mostly SACKs truthfully; the application sends several segments at once; the peer
/// loses some of them (`Op::Lose`) and receives some late (`Op::Arrive`); time moves in
/// steps near a round trip (RACK's reordering window and probe timeout) and past the RTO.
fn sack_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => segment_with(
            sack_flags().boxed(),
            Anchor::Held,
            prop_oneof![6 => Just(0u16), 2 => 1u16..600, 1 => any::<u16>()].boxed(),
            3,
        ),
        5 => (prop_oneof![500u16..4000, any::<u16>()], send_form())
            .prop_map(|(n, form)| Op::Send(n, form)),
        2 => recv(),
        1 => output(),
        5 => prop_oneof![
            1 => Just(0u16),
            3 => (0u32..16).prop_map(|bit| 1u16 << bit),
            2 => (0u32..16, 0u32..16).prop_map(|(a, b)| 1u16 << a | 1u16 << b),
            1 => any::<u16>(),
        ]
        .prop_map(Op::Lose),
        2 => any::<u8>().prop_map(Op::Arrive),
        4 => peer_data(),
        4 => prop_oneof![
            0u32..1000,
            1000u32..300_000,
            300_000u32..3_000_000,
        ]
        .prop_map(Op::Tick),
        1 => Just(Op::Close),
        1 => Just(Op::Shutdown),
        1 => any::<bool>().prop_map(Op::NoDelay),
    ]
}

/// The handshake, done right (the SACK runs are about what follows it): the peer's SYN-ACK
/// to an active open, or its SYN and then the ACK of ours to a passive one, with an MSS of
/// the peer's choosing now and then (smaller segments, more of them).
fn handshake(passive: bool) -> impl Strategy<Value = Vec<Op>> {
    const SYN: u8 = 0x02;
    const ACK: u8 = 0x10;
    let mss = prop_oneof![3 => Just(None), 1 => (64u16..1460).prop_map(Some)];
    (any::<u32>(), mss, prop_oneof![3 => Just(None), 1 => (0u8..15).prop_map(Some)]).prop_map(
        move |(irs, mss, window_scale)| {
            let segment = |flags, seq, ack| PeerSegment {
                flags,
                seq,
                seq_off: 0,
                ack,
                ack_off: 0,
                window: 65_535,
                len: 0,
                urgent: 0,
                mss,
                window_scale,
                sack: None,
                packet: None,
            };
            if passive {
                vec![
                    Op::Segment(segment(SYN, Anchor::Raw(irs), Anchor::Raw(0))),
                    Op::Segment(PeerSegment {
                        mss: None,
                        window_scale: None,
                        ..segment(ACK, Anchor::RcvNxt, Anchor::Held)
                    }),
                ]
            } else {
                vec![Op::Segment(segment(SYN | ACK, Anchor::Raw(irs), Anchor::Held))]
            }
        },
    )
}

/// Data from the peer, in order or up to 2 000 octets past RCV.NXT (a few of these leave
/// several holes, so the connection's own SACK option fills up), sometimes repeating what
/// came before (D-SACKs).
fn peer_data() -> impl Strategy<Value = Op> {
    (prop_oneof![2 => Just(0i16), 4 => 1i16..2000, 1 => -300i16..0], 1u16..300, packet()).prop_map(
        |(seq_off, len, packet)| {
            Op::Segment(PeerSegment {
                flags: 0x18,
                seq: Anchor::RcvNxt,
                seq_off,
                ack: Anchor::Held,
                ack_off: 0,
                window: 65_535,
                len,
                urgent: 0,
                mss: None,
                window_scale: None,
                sack: None,
                packet,
            })
        },
    )
}

/// Inputs for the SACK checks: a handshake, then [`sack_op`]s; the peer offers
/// SACK-permitted in 7 of 8.
fn sack_input() -> impl Strategy<Value = Input> {
    (any::<bool>(), any::<bool>(), prop_oneof![7 => Just(true), 1 => Just(false)], any::<bool>())
        .prop_flat_map(|(passive, delayed_ack, peer_sack, peer_timestamps)| {
            (handshake(passive), vec(sack_op(), 0..150)).prop_map(move |(mut ops, rest)| {
                ops.extend(rest);
                Input { passive, delayed_ack, peer_sack, peer_timestamps, ops }
            })
        })
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
    fn arbitrary_bytes_as_the_fuzzer_reads_them(bytes in vec(any::<u8>(), 0..4096)) {
        run_bytes(&bytes);
    }

    #[test]
    fn sack_blocks_and_scoreboard_follow_the_model(input in sack_input()) {
        ops::run(&input);
    }
}

proptest! {
    #![proptest_config(config(10_000))]
    #[test]
    #[ignore = "long: run with --release --ignored"]
    fn connection_follows_the_rfc_model_10k(input in input()) {
        ops::run(&input);
    }

    #[test]
    #[ignore = "long: run with --release --ignored"]
    fn sack_blocks_and_scoreboard_follow_the_model_10k(input in sack_input()) {
        ops::run(&input);
    }
}

/// The SACK inputs are not vacuous: across 2 000 of them the connection negotiates SACK,
/// sends SACK blocks and D-SACKs, takes the peer's blocks, resends while SACKed octets are
/// outstanding (so check (b) has something to check), enters SACK recovery, sends loss
/// probes and hears of D-SACKs.
#[test]
fn sack_inputs_reach_the_scoreboard() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = sack_input();
    let mut runs = [0u32; 8];
    for _ in 0..2_000 {
        let input = strategy.new_tree(&mut runner).unwrap().current();
        let sack = ops::run_report(&input).sack;
        let reached = [
            sack.negotiated,
            sack.blocks_sent > 0,
            sack.dsacks_sent > 0,
            sack.blocks_taken > 0,
            sack.retransmissions_checked > 0,
            sack.recoveries > 0,
            sack.loss_probes > 0,
            sack.dsacks_received > 0,
        ];
        for (count, hit) in runs.iter_mut().zip(reached) {
            *count += u32::from(hit);
        }
    }
    eprintln!(
        "runs (of 2 000) that negotiated SACK, sent blocks, sent a D-SACK, had blocks taken, \
         resent with SACKed octets outstanding, recovered, probed, heard a D-SACK: {runs:?}"
    );
    assert!(runs.iter().all(|&n| n >= 20), "{runs:?}");
}

/// The API forms are mixed for real (issue #19): across 2 000 inputs of each strategy, runs
/// send through each SEND form, read data through each RECEIVE form, send data segments
/// through both header-only outputs (slices and lent), hand data over as packets kept as
/// slices, pin more memory than the receive buffer holds, and compact.
#[test]
fn inputs_mix_every_api_form() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (plain, sack) = (input().boxed(), sack_input().boxed());
    let mut runs = [0u32; 13];
    for i in 0..4_000 {
        let strategy = if i % 2 == 0 { &plain } else { &sack };
        let input = strategy.new_tree(&mut runner).unwrap().current();
        let forms = ops::run_report(&input).forms;
        let reached = [
            forms.sends[0] > 0,
            forms.sends[1] > 0,
            forms.sends[2] > 0,
            forms.reads[0] > 0,
            forms.reads[1] > 0,
            forms.reads[2] > 0,
            forms.reads[3] > 0,
            forms.chunked_data_segments > 0,
            forms.borrowed_data_segments > 0,
            forms.bytes_data_segments > 0,
            forms.most_pinned > 0,
            forms.most_pinned > 3_000,
            forms.compactions > 0,
        ];
        for (count, hit) in runs.iter_mut().zip(reached) {
            *count += u32::from(hit);
        }
    }
    eprintln!(
        "runs (of 4 000) that sent by copy, send_bytes, write_chunks; read by copy, read_chunk, \
         recv_bytes, read_chunks; sent data header-only with slices, lent; took data as \
         packets; pinned memory, more than the initial buffer; compacted: {runs:?}"
    );
    assert!(runs.iter().all(|&n| n >= 20), "{runs:?}");
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
