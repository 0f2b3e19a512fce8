//! The real client libraries' runtimes, installed by scripts/test.sh under
//! `target/peers`: finding them (a missing one fails the test with what to
//! install) and running a client script to its end, bounded.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::daemon::run_bounded;

/// `target/peers/<rel>`, which must exist.
pub fn peer(rel: &str, what: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target/peers")
        .join(rel);
    assert!(
        path.exists(),
        "{} is missing: this test needs the real {what}; run scripts/test.sh, which installs \
         it under target/peers",
        path.display()
    );
    path
}

/// The venv's Python, with `module` importable.
pub fn python(module: &str, package: &str) -> PathBuf {
    let python = peer("venv/bin/python3", "Python venv");
    let ok = Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .env_clear()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "{} cannot import {module}: run scripts/test.sh, which installs {package} in target/peers/venv",
        python.display()
    );
    python
}

/// Runs a client script to its end (bounded); panics with its output if it
/// fails. The environment is cleared but for `env`, so no DD_* variable of
/// the machine changes what the clients send.
pub fn run(what: &str, program: &PathBuf, args: &[String], env: &[(&str, &str)]) {
    let mut cmd = Command::new(program);
    cmd.args(args).env_clear().envs(env.iter().copied());
    let out = run_bounded(cmd);
    assert!(
        out.status.success(),
        "the {what} script ({}) failed: {}\nstdout: {}\nstderr: {}",
        program.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
