//! The seed's dialogues end to end (the same scenarios `cargo run --example handshake` prints):
//! exact segments of the three-way handshake and the four-way close, the rare paths, and all 11
//! states visited by `--all`.

use std::collections::BTreeSet;

use tcp_proto::testing::scenarios::{self, CLIENT_ISS, MSL, SERVER_ISS};
use tcp_proto::{CloseReason, ConnectionError, Event, State};

fn trace_has(trace: &[String], needle: &str) -> bool {
    trace.iter().any(|line| line.contains(needle))
}

#[track_caller]
fn assert_trace(trace: &[String], needle: &str) {
    assert!(trace_has(trace, needle), "trace lacks {needle:?}:\n{}", trace.join("\n"));
}

#[test]
fn all_scenarios_visit_all_11_states() {
    let mut visited = BTreeSet::new();
    for (_, _, run) in scenarios::ALL {
        let outcome = run();
        visited.extend(outcome.visited_a);
        visited.extend(outcome.visited_b);
    }
    let missing: Vec<State> =
        State::ALL.iter().copied().filter(|state| !visited.contains(state)).collect();
    assert!(missing.is_empty(), "states never visited: {missing:?}");
}

#[test]
fn main_dialogue_is_the_seed_handshake_and_four_way_close_rfc_9293_3_5() {
    let outcome = scenarios::main_dialogue();
    let trace = &outcome.trace;
    let (c, s) = (CLIENT_ISS, SERVER_ISS);
    // SYN, SYN+ACK with ack = seq + 1, ACK; both SYNs offer SACK (RFC 2018 §2); every segment
    // with the timestamps both SYNs offered (RFC 7323 §3.2; the scenario's clock starts at 0, and its fixed ISN gives the
    // timestamp clock no offset).
    assert_trace(
        trace,
        &format!(
            "A > B: Flags [S], seq {c}, win 65535, options [mss 1460,sackOK,TS val 0 ecr 0,\
             wscale 0], length 0"
        ),
    );
    assert_trace(
        trace,
        &format!(
            "B > A: Flags [S.], seq {s}, ack {}, win 65535, options [mss 1460,sackOK,TS val 0 \
             ecr 0,wscale 0], length 0",
            c + 1
        ),
    );
    assert_trace(
        trace,
        &format!(
            "A > B: Flags [.], seq {}, ack {}, win 65535, options [TS val 0 ecr 0], length 0",
            c + 1,
            s + 1
        ),
    );
    // Data both ways (13 octets each).
    assert_trace(
        trace,
        &format!(
            "A > B: Flags [P.], seq {}, ack {}, win 65535, options [TS val 0 ecr 0], length 13",
            c + 1,
            s + 1
        ),
    );
    assert_trace(trace, "B read \"hello, server\"");
    assert_trace(trace, "A read \"hello, client\"");
    // The four-way close: each FIN takes one sequence number.
    assert_trace(trace, &format!("A > B: Flags [F.], seq {}, ack {}", c + 14, s + 14));
    assert_trace(trace, &format!("B > A: Flags [.], seq {}, ack {}", s + 14, c + 15));
    assert_trace(trace, &format!("B > A: Flags [F.], seq {}, ack {}", s + 14, c + 15));
    assert_trace(trace, &format!("A > B: Flags [.], seq {}, ack {}", c + 15, s + 15));
    let expected_a = [
        State::Closed,
        State::SynSent,
        State::Established,
        State::FinWait1,
        State::FinWait2,
        State::TimeWait,
    ];
    let expected_b = [
        State::Listen,
        State::SynReceived,
        State::Established,
        State::CloseWait,
        State::LastAck,
        State::Closed,
    ];
    assert_eq!(outcome.visited_a, expected_a.into_iter().collect());
    assert_eq!(outcome.visited_b, expected_b.into_iter().collect());
    // Both ended orderly (MUST-12), the client after 2MSL in TIME-WAIT.
    assert_eq!(outcome.pair.a.close_reason(), Some(CloseReason::Orderly));
    assert_eq!(outcome.pair.b.close_reason(), Some(CloseReason::Orderly));
    assert_trace(trace, "A: TIME-WAIT -> CLOSED");
    assert!(outcome.pair.now.as_micros() >= (2 * MSL).as_micros() as u64);
}

#[test]
fn simultaneous_open_passes_through_syn_received_on_both_sides_must_10() {
    let outcome = scenarios::simultaneous_open();
    for visited in [&outcome.visited_a, &outcome.visited_b] {
        assert!(visited.contains(&State::SynSent));
        assert!(visited.contains(&State::SynReceived));
        assert!(visited.contains(&State::Established));
    }
    assert_trace(&outcome.trace, "A: SYN-RECEIVED -> ESTABLISHED");
    assert_trace(&outcome.trace, "B: SYN-RECEIVED -> ESTABLISHED");
}

#[test]
fn simultaneous_close_enters_closing_then_time_wait_on_both_sides() {
    let outcome = scenarios::simultaneous_close();
    for side in ["A", "B"] {
        assert_trace(&outcome.trace, &format!("{side}: FIN-WAIT-1 -> CLOSING"));
        assert_trace(&outcome.trace, &format!("{side}: CLOSING -> TIME-WAIT"));
        assert_trace(&outcome.trace, &format!("{side}: TIME-WAIT -> CLOSED"));
    }
}

#[test]
fn withheld_ack_holds_syn_received_and_retransmits_syn_ack_after_one_rto() {
    let outcome = scenarios::withheld_ack();
    let trace = &outcome.trace;
    let synack = format!("B > A: Flags [S.], seq {SERVER_ISS}, ack {}", CLIENT_ISS + 1);
    let sent: Vec<&String> = trace.iter().filter(|line| line.contains(&synack)).collect();
    assert_eq!(sent.len(), 2, "SYN-ACK sent once and retransmitted once:\n{}", trace.join("\n"));
    assert!(
        sent[1].starts_with("1.000000s"),
        "retransmitted after the initial 1 s RTO: {}",
        sent[1]
    );
    assert_trace(trace, "(dropped)");
    assert_trace(trace, "B: SYN-RECEIVED -> ESTABLISHED");
}

#[test]
fn fin_with_ack_of_our_fin_in_fin_wait_1_goes_straight_to_time_wait() {
    let outcome = scenarios::fin_ack();
    assert_trace(&outcome.trace, "A: FIN-WAIT-1 -> TIME-WAIT");
    assert!(!outcome.visited_a.contains(&State::FinWait2));
    assert!(!outcome.visited_a.contains(&State::Closing));
}

#[test]
fn syn_to_closed_port_is_refused_with_rst_ack_rfc_9293_3_10_7_1() {
    let outcome = scenarios::refused();
    assert_trace(
        &outcome.trace,
        &format!("B > A: Flags [R.], seq 0, ack {}, win 0, length 0", CLIENT_ISS + 1),
    );
    assert_eq!(outcome.pair.a.close_reason(), Some(CloseReason::Error(ConnectionError::Refused)));
}

#[test]
fn abort_sends_rst_and_peer_reports_reset_must_12() {
    let outcome = scenarios::abort();
    assert_eq!(outcome.pair.a.close_reason(), Some(CloseReason::Error(ConnectionError::Aborted)));
    assert_eq!(outcome.pair.b.close_reason(), Some(CloseReason::Error(ConnectionError::Reset)));
    assert!(
        outcome.pair.events[1].contains(&Event::Closed(CloseReason::Error(ConnectionError::Reset)))
    );
    assert_trace(&outcome.trace, "A > B: Flags [R]");
}
