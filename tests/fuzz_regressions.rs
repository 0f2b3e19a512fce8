//! Replays every saved fuzz input (`tests/data/fuzz/<target>/*`: the seed corpus
//! and each input a fuzzer found a bug with) through the same checks the fuzz
//! targets run (`tests/fuzz_oracle`), so plain `cargo test` keeps them fixed.
//! Fuzzing itself: `fuzz/run.sh` (see fuzz/README.md).

mod fuzz_oracle;

use std::path::PathBuf;

/// Every file of `tests/data/fuzz/<target>`, sorted; at least one must exist.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/fuzz")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no inputs in {}", dir.display());
    files
        .into_iter()
        .map(|path| {
            let data = std::fs::read(&path).expect("read input");
            (path, data)
        })
        .collect()
}

/// Runs `check` on each input, then names every file that failed.
fn replay(target: &str, check: fn(&[u8])) {
    let failed: Vec<String> = inputs(target)
        .into_iter()
        .filter(|(_, data)| std::panic::catch_unwind(|| check(data)).is_err())
        .map(|(path, _)| path.display().to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "inputs failing their checks: {failed:#?}"
    );
}

#[test]
fn parse_line_inputs() {
    replay("parse_line", fuzz_oracle::statsd_input);
}

#[test]
fn dogstatsd_fields_inputs() {
    replay("dogstatsd_fields", fuzz_oracle::dogstatsd_fields);
}

#[test]
fn xmlrpc_request_inputs() {
    replay("xmlrpc_request", fuzz_oracle::xmlrpc_request);
}

/// The harness must really get answers through the in-memory connection, or the
/// HTTP half of the xmlrpc target would check nothing.
#[test]
fn xmlrpc_harness_gets_responses() {
    let body = b"<methodCall><methodName>system.listMethods</methodName></methodCall>";
    let mut request = format!(
        "POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request.extend_from_slice(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let answer = String::from_utf8(fuzz_oracle::raw_exchange(&request, false)).expect("UTF-8");
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.contains("<string>istats</string>"), "{answer}");
    assert!(
        answer.contains("HTTP/1.1 405 Method Not Allowed\r\n"),
        "{answer}"
    );
    // A client that half-closes still gets the answer to its (first) request.
    let answer = String::from_utf8(fuzz_oracle::raw_exchange(&request, true)).expect("UTF-8");
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
}
