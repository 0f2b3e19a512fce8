//! Etsy statsd 0.9.0's own tests, `test/graphite_tests.js` and
//! `test/graphite_legacy_tests.js` from its npm tarball, run by nodeunit
//! (the version its package.json names) against OUR binary, assertions
//! unchanged. Where they start their server as `node stats.js CONFIG`, the
//! shim in tests/data/etsy_shim runs `statsd --config CONFIG` instead. The
//! only edit to their files: the fixed ports (8125 for statsd, 31337 for
//! their graphite, Etsy's default 8126 for the admin port, which their
//! config now names) become free ones, so the suite can run beside others.
//! Any failed assertion fails the test, with nodeunit's report, but for the
//! ones listed in [`CANNOT_APPLY`] (and in the README) with why.

mod support;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::daemon::STATSD;
use support::peers::peer;
use support::{free_port, read_lossy, require_binary, GroupGuard};

/// Longest the whole nodeunit run of one file may take: each test starts a
/// server, waits two 200 ms flushes, and stops it after its graphite is
/// gone (our final publish then retries for --shutdown-timeout, 10 s).
const SUITE_WAIT: Duration = Duration::from_secs(240);

/// Etsy's assertions that cannot apply to us, as nodeunit names them. We
/// write a name's tags sorted (one series whatever order a client sends them
/// in), as carbon itself names a tagged series (`TaggedSeries.format` sorts
/// them): in Graphite both servers' lines land in the same series. These two
/// assertions check Etsy's unsorted spelling of the line.
const CANNOT_APPLY: &[&str] = &[
    "Assertion Message: Did not map 'foo+bar;tag1=val1;tag3=val3;tag2=val2' => 'foobar.count;tag1=val1;tag3=val3;tag2=val2'",
    "Assertion Message: Did not map 'foo+bar:250|c|#tag1:val;1,tag3:val3,tag2:val2' => 'foobar.count;tag1=val_1;tag3=val3;tag2=val2'",
];

/// Runs Etsy's `test/<file>` with nodeunit; panics with nodeunit's report
/// unless every assertion passed or is one of [`CANNOT_APPLY`].
fn run_etsy_suite(file: &str) {
    let node = require_binary("/usr/bin/node", "nodejs");
    let modules = peer("node/node_modules", "npm packages of Etsy's suite");
    for package in ["statsd", "nodeunit", "underscore", "temp"] {
        peer(
            &format!("node/node_modules/{package}/package.json"),
            package,
        );
    }
    let original = modules.join("statsd/test").join(file);
    let text = std::fs::read_to_string(&original)
        .unwrap_or_else(|e| panic!("{}: {e}", original.display()));
    let dir = tempfile::tempdir().expect("temp dir");
    let tests = dir.path().join("test");
    std::fs::create_dir(&tests).expect("test dir");
    let (statsd_port, graphite_port, mgmt_port) = (free_port(), free_port(), free_port());
    assert!(
        text.contains("port: 8125"),
        "{file}: its config no longer says port: 8125"
    );
    // Etsy's admin port (8126 under an Etsy config) would be shared too.
    let patched = text
        .replace("port: 8125", &format!("port: 8125, mgmt_port: {mgmt_port}"))
        .replace("8125", &statsd_port.to_string())
        .replace("31337", &graphite_port.to_string());
    std::fs::write(tests.join(file), patched).expect("write the suite");
    let shim = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/etsy_shim");
    let log = dir.path().join("nodeunit.log");
    let out = std::fs::File::create(&log).expect("log file");
    let mut cmd = Command::new(&node);
    cmd.arg(modules.join("nodeunit/bin/nodeunit"))
        .arg(tests.join(file))
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", shim.display()))
        .env("NODE_PATH", &modules)
        .env("ETSY_SHIM_REAL_NODE", &node)
        .env("ETSY_SHIM_STATSD", STATSD)
        // Our XML-RPC monitor would take port+10, which another test may hold.
        .env("ETSY_SHIM_EXTRA", "--monitor-port 0")
        .env("TMPDIR", dir.path())
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("log file"))
        .stderr(out);
    let mut run = GroupGuard::spawn(&mut cmd).expect("start nodeunit");
    let deadline = Instant::now() + SUITE_WAIT;
    let status = loop {
        if let Some(status) = run.try_wait().expect("wait for nodeunit") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(run);
    let report = read_lossy(&log);
    let summary = summarize(&report);
    match status {
        None => panic!("Etsy's {file} did not finish within {SUITE_WAIT:?}\n{summary}\n{report}"),
        Some(status) => {
            let plain = strip_ansi(&report);
            let unexcused: Vec<&str> = plain
                .lines()
                .filter(|l| l.starts_with("Assertion Message") && !CANNOT_APPLY.contains(l))
                .collect();
            // Every test ran to its end (a throw leaves "Undone tests"), and
            // it either passed whole or failed only where it cannot apply.
            let finished = plain.contains("OK: ") || plain.contains("FAILURES: ");
            // nodeunit's own count of failed assertions (a missing one, from
            // `test.expect`, has no "Assertion Message" line) must be the
            // excused ones exactly.
            let failures: usize = plain
                .lines()
                .find_map(|l| l.strip_prefix("FAILURES: "))
                .and_then(|rest| rest.split('/').next()?.parse().ok())
                .unwrap_or(0);
            let excused = plain.lines().filter(|l| CANNOT_APPLY.contains(l)).count();
            assert!(
                finished
                    && !plain.contains("Undone tests")
                    && unexcused.is_empty()
                    && failures == excused
                    && (status.success() || plain.contains("FAILURES: ")),
                "Etsy's {file}: {status}\n{summary}\n--- nodeunit ---\n{report}"
            );
        }
    }
}

/// The failing tests and their assertion messages, from nodeunit's report.
fn summarize(report: &str) -> String {
    let plain = strip_ansi(report);
    let failed: Vec<&str> = plain
        .lines()
        .filter(|l| {
            l.starts_with('✖') || l.starts_with("Assertion Message") || l.starts_with("FAILURES")
        })
        .collect();
    format!("failed: {}", failed.join(" | "))
}

/// nodeunit colours its report; the summary is plain text.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ ... letter
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn etsy_graphite_tests() {
    run_etsy_suite("graphite_tests.js");
}

#[test]
fn etsy_graphite_legacy_tests() {
    run_etsy_suite("graphite_legacy_tests.js");
}
