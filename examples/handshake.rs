//! The seed's TCP dialogue, run by two `tcp-proto` connections joined by an in-memory link
//! under a virtual clock, printed like tcpdump with every state change.
//!
//! ```text
//! cargo run --example handshake                      # the main dialogue
//! cargo run --example handshake -- --all             # every scenario; all 11 states
//! cargo run --example handshake -- simultaneous-close
//! cargo run --example handshake -- --list
//! ```

use std::process::ExitCode;

use tcp_proto::State;
use tcp_proto::testing::scenarios::{self, Scenario};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let all = args.first().map(String::as_str) == Some("--all");
    let chosen: Vec<Scenario> = match args.first().map(String::as_str) {
        None => scenarios::ALL.iter().copied().filter(|(name, ..)| *name == "main").collect(),
        Some("--all") => scenarios::ALL.to_vec(),
        Some("--list" | "--help" | "-h") => {
            println!("usage: handshake [--all | --list | SCENARIO...]\n\nscenarios:");
            for (name, about, _) in scenarios::ALL {
                println!("  {name:<20} {about}");
            }
            return ExitCode::SUCCESS;
        }
        Some(_) => {
            let mut chosen = Vec::new();
            for arg in &args {
                let name = arg.trim_start_matches("--");
                match scenarios::ALL.iter().find(|(n, ..)| *n == name) {
                    Some(scenario) => chosen.push(*scenario),
                    None => {
                        eprintln!("unknown scenario {arg:?}; try --list");
                        return ExitCode::from(2);
                    }
                }
            }
            chosen
        }
    };
    let (text, visited) = scenarios::render(&chosen);
    print!("{text}");
    if all && visited.len() != State::ALL.len() {
        eprintln!("--all must visit every state");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
