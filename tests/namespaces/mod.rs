//! What the kernel-in-a-namespace tests of the examples share (`tests/tunproxy.rs`,
//! `tests/http_server.rs`, `tests/tunproxy_bulk.rs`): running a command that must succeed,
//! finding an example binary beside the test executables, and the prerequisite check that
//! skips outside CI and fails under it (as `tests/interop_linux.rs` does).

#![allow(dead_code)] // each test file uses its own part

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Runs `args` (the program first) and fails the test unless it succeeds.
pub(crate) fn sh(args: &[&str]) {
    let status = Command::new(args[0]).args(&args[1..]).status().expect("run a command");
    assert!(status.success(), "{args:?} failed: {status}");
}

/// The debug build of example `name`, built by `cargo test` beside the test executables.
pub(crate) fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    dir.join("examples").join(name)
}

/// Why a test of example `example` cannot run here, if it cannot: not root, no
/// `/dev/net/tun`, one of `tools` (program and a harmless flag) missing, or the example not
/// built.
fn missing_prerequisite(example: &str, tools: &[(&str, &str)]) -> Option<String> {
    let root = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&root.stdout).trim() != "0" {
        return Some("not root".into());
    }
    if !Path::new("/dev/net/tun").exists() {
        return Some("no /dev/net/tun".into());
    }
    let have = |tool: &str, flag: &str| {
        Command::new(tool).arg(flag).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
    };
    for &(tool, flag) in tools {
        if !have(tool, flag) {
            return Some(format!("no `{tool}` command"));
        }
    }
    let binary = example_binary(example);
    if !binary.exists() {
        return Some(format!(
            "{} not built: `cargo build --example {example}` (`cargo test` builds it)",
            binary.display()
        ));
    }
    None
}

/// `true` when `test` may run; otherwise explains and, under CI, fails.
pub(crate) fn prerequisites(test: &str, example: &str, tools: &[(&str, &str)]) -> bool {
    let Some(reason) = missing_prerequisite(example, tools) else { return true };
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: cannot run ({reason}) and CI is set: failing rather than skipping"
    );
    eprintln!("{test}: skipped: {reason} (set CI to make this an error)");
    false
}
