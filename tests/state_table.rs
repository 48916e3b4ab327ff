//! The transition table against RFC 9293 Figure 5 (§3.3.2) and §3.10, listed by hand; the whole
//! table as a golden file; and `docs/state-diagram.dot` generated from the table and kept
//! current. Regenerate both files with `UPDATE_GOLDEN=1 cargo test --test state_table`.

use std::fs;
use std::path::PathBuf;
use std::string::String;

use tcp_proto::State::{
    CloseWait, Closed, Closing, Established, FinWait1, FinWait2, LastAck, Listen, SynReceived,
    SynSent, TimeWait,
};
use tcp_proto::state::{State, Stimulus, render_dot, render_table, transition};

/// Every edge RFC 9293 draws, written from Figure 5 and the §3.10 text, independently of the
/// table: (from, stimulus, to, where the RFC says so).
const RFC_EDGES: &[(State, Stimulus, State, &str)] = &[
    // Figure 5.
    (Closed, Stimulus::PassiveOpen, Listen, "Fig. 5: passive OPEN, create TCB"),
    (Closed, Stimulus::ActiveOpen, SynSent, "Fig. 5: active OPEN, snd SYN"),
    (Listen, Stimulus::Close, Closed, "Fig. 5: CLOSE, delete TCB"),
    (Listen, Stimulus::Syn, SynReceived, "Fig. 5: rcv SYN, snd SYN,ACK"),
    (Listen, Stimulus::ActiveOpen, SynSent, "Fig. 5: SEND, snd SYN"),
    (SynSent, Stimulus::Close, Closed, "Fig. 5: CLOSE, delete TCB"),
    (SynSent, Stimulus::Syn, SynReceived, "Fig. 5: rcv SYN, snd ACK (simultaneous open)"),
    (SynSent, Stimulus::SynAck, Established, "Fig. 5: rcv SYN,ACK, snd ACK"),
    (SynReceived, Stimulus::AckOfSyn, Established, "Fig. 5: rcv ACK of SYN"),
    (SynReceived, Stimulus::Close, FinWait1, "Fig. 5: CLOSE, snd FIN"),
    (Established, Stimulus::Close, FinWait1, "Fig. 5: CLOSE, snd FIN"),
    (Established, Stimulus::Fin, CloseWait, "Fig. 5: rcv FIN, snd ACK"),
    (FinWait1, Stimulus::AckOfFin, FinWait2, "Fig. 5: rcv ACK of FIN"),
    (FinWait1, Stimulus::Fin, Closing, "Fig. 5: rcv FIN, snd ACK"),
    (FinWait2, Stimulus::Fin, TimeWait, "Fig. 5: rcv FIN, snd ACK"),
    (CloseWait, Stimulus::Close, LastAck, "Fig. 5: CLOSE, snd FIN"),
    (Closing, Stimulus::AckOfFin, TimeWait, "Fig. 5: rcv ACK of FIN"),
    (LastAck, Stimulus::AckOfFin, Closed, "Fig. 5: rcv ACK of FIN"),
    (TimeWait, Stimulus::TimeWaitTimeout, Closed, "Fig. 5: Timeout=2MSL, delete TCB"),
    // §3.10 text beyond the figure.
    (FinWait1, Stimulus::FinAckingOurFin, TimeWait, "§3.10.7.4 step 8: FIN acks our FIN"),
    (SynReceived, Stimulus::Rst { from_passive_open: true }, Listen, "§3.10.7.4 step 2"),
    (SynReceived, Stimulus::Rst { from_passive_open: false }, Closed, "§3.10.7.4 step 2"),
    (SynReceived, Stimulus::SynInWindow { from_passive_open: true }, Listen, "§3.10.7.4 step 4"),
    (SynSent, Stimulus::Rst { from_passive_open: false }, Closed, "§3.10.7.3: reset"),
    (Listen, Stimulus::Rst { from_passive_open: true }, Listen, "§3.10.7.2: RST ignored"),
    (Established, Stimulus::Rst { from_passive_open: false }, Closed, "§3.10.7.4 step 2"),
    (FinWait1, Stimulus::Rst { from_passive_open: false }, Closed, "§3.10.7.4 step 2"),
    (FinWait2, Stimulus::Rst { from_passive_open: false }, Closed, "§3.10.7.4 step 2"),
    (CloseWait, Stimulus::Rst { from_passive_open: false }, Closed, "§3.10.7.4 step 2"),
    (Closing, Stimulus::Rst { from_passive_open: false }, Closed, "§3.10.7.4 step 2"),
    (LastAck, Stimulus::Rst { from_passive_open: false }, Closed, "§3.10.7.4 step 2"),
    (TimeWait, Stimulus::Fin, TimeWait, "§3.10.7.4 step 8: restart 2MSL"),
    (Listen, Stimulus::Abort, Closed, "§3.10.5"),
    (SynSent, Stimulus::Abort, Closed, "§3.10.5"),
    (SynReceived, Stimulus::Abort, Closed, "§3.10.5"),
    (Established, Stimulus::Abort, Closed, "§3.10.5"),
    (FinWait1, Stimulus::Abort, Closed, "§3.10.5"),
    (FinWait2, Stimulus::Abort, Closed, "§3.10.5"),
    (CloseWait, Stimulus::Abort, Closed, "§3.10.5"),
    (Closing, Stimulus::Abort, Closed, "§3.10.5"),
    (LastAck, Stimulus::Abort, Closed, "§3.10.5"),
    (TimeWait, Stimulus::Abort, Closed, "§3.10.5"),
    (SynSent, Stimulus::TimedOut, Closed, "§3.10.8 user timeout / MUST-20 R2"),
    (Established, Stimulus::TimedOut, Closed, "§3.10.8 user timeout / MUST-20 R2"),
    (Established, Stimulus::SynInWindow { from_passive_open: false }, Established, "RFC 5961 §4"),
    (FinWait2, Stimulus::SynInWindow { from_passive_open: true }, FinWait2, "RFC 5961 §4"),
    (
        TimeWait,
        Stimulus::Rst { from_passive_open: false },
        TimeWait,
        "RFC 1337 (deviation, docs/conformance.md)",
    ),
];

#[test]
fn table_has_every_edge_of_rfc_9293_figure_5_and_section_3_10() {
    let mut missing = String::new();
    for &(from, on, to, why) in RFC_EDGES {
        let got = transition(from, on);
        if got != Ok(to) {
            missing.push_str(&format!("  {from} --{on}--> {to} ({why}): table says {got:?}\n"));
        }
    }
    assert!(missing.is_empty(), "edges the RFC draws that the table lacks:\n{missing}");
}

#[test]
fn closed_accepts_only_open() {
    for on in Stimulus::ALL {
        let allowed = matches!(on, Stimulus::PassiveOpen | Stimulus::ActiveOpen);
        assert_eq!(transition(Closed, on).is_ok(), allowed, "{on} in CLOSED");
    }
}

#[test]
fn every_state_is_reachable_from_closed() {
    let mut reached = vec![Closed];
    let mut frontier = vec![Closed];
    while let Some(from) = frontier.pop() {
        for on in Stimulus::ALL {
            if let Ok(to) = transition(from, on)
                && !reached.contains(&to)
            {
                reached.push(to);
                frontier.push(to);
            }
        }
    }
    for state in State::ALL {
        assert!(reached.contains(&state), "{state} unreachable");
    }
}

#[test]
fn display_uses_rfc_spelling() {
    let names: Vec<String> = State::ALL.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        names,
        [
            "CLOSED",
            "LISTEN",
            "SYN-SENT",
            "SYN-RECEIVED",
            "ESTABLISHED",
            "FIN-WAIT-1",
            "FIN-WAIT-2",
            "CLOSE-WAIT",
            "CLOSING",
            "LAST-ACK",
            "TIME-WAIT"
        ]
    );
}

fn check_golden(relative: &str, rendered: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        fs::write(&path, rendered).unwrap();
        return;
    }
    let stored = fs::read_to_string(&path).unwrap_or_default();
    assert!(
        stored == rendered,
        "{relative} is stale: the transition table changed. Review the diff and run \
         `UPDATE_GOLDEN=1 cargo test --test state_table`.\n--- rendered now ---\n{rendered}"
    );
}

#[test]
fn golden_transition_table_is_current() {
    let mut rendered = String::new();
    render_table(&mut rendered).unwrap();
    check_golden("tests/golden/transitions.txt", &rendered);
}

#[test]
fn state_diagram_dot_is_generated_from_the_table() {
    let mut rendered = String::new();
    render_dot(&mut rendered).unwrap();
    check_golden("docs/state-diagram.dot", &rendered);
}
