//! What the cli suites share: the built `garrison` binary with a clean
//! environment, and `garrison serve` running on it.

use std::path::Path;
use std::process::{Command, Stdio};

use garrison_test_support::process::{Served, clean_command};

/// The built binary with a clean `GARRISON_*` environment.
pub fn garrison() -> Command {
    clean_command(env!("CARGO_BIN_EXE_garrison"))
}

/// `garrison serve` with `GARRISON_HOME` at `dir` and `env` added, its
/// `garrison.toml` (over whatever was there) listening on a free loopback
/// port; ready once it printed its first three lines (listen address,
/// dashboard, API token). Killed on drop if still running.
pub fn serve(dir: &Path, env: &[(&str, &str)]) -> Served {
    std::fs::write(dir.join("garrison.toml"), "listen = \"127.0.0.1:0\"\n").unwrap();
    Served::start(
        garrison()
            .env("GARRISON_HOME", dir)
            .envs(env.iter().copied())
            .arg("serve")
            .stderr(Stdio::null()),
        3,
    )
}
