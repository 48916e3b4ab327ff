//! README facts are checked, not trusted: the demo output it shows is what
//! `cargo run --example handshake` prints today, and its set-up commands are the ones CI runs.

use tcp_proto::testing::scenarios;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

#[test]
fn readme_shows_the_current_demo_output() {
    let main: Vec<_> =
        scenarios::ALL.iter().copied().filter(|(name, ..)| *name == "main").collect();
    let (text, _) = scenarios::render(&main);
    let readme = readme();
    assert!(
        readme.contains(text.trim_end()),
        "README.md's demo block is stale; paste the output of `cargo run --example handshake`:\n{text}"
    );
}

#[test]
fn readme_set_up_commands_are_the_ones_ci_runs() {
    let readme = readme();
    let ci = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/run")).unwrap();
    assert!(readme.contains("cargo run --example handshake   #"));
    assert!(readme.contains("cargo test                      #"));
    assert!(ci.contains("step test cargo test\n"), ".ci/run must run the README's test command");
    assert!(ci.contains("cargo run --quiet --example handshake"));
}
