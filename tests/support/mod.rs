//! Shared helpers for the service tests: real peers (carbon-cache, runsv,
//! svlogd, Python's xmlrpc client) started in temp dirs on free loopback ports,
//! and bounded polling instead of sleeps.
//!
//! Each test binary uses only part of this module, hence the allow.
#![allow(dead_code)]

pub mod carbon;
pub mod runit;

use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Where Debian puts a peer's binary, and the package that brings it: a test
/// that needs it fails with the install command rather than skipping.
pub fn require_binary(path: &str, package: &str) -> PathBuf {
    let p = PathBuf::from(path);
    assert!(
        p.is_file(),
        "{path} is missing: this test needs a real peer; install it with \
         `apt-get install -y {package}` (see ci-deps.txt)"
    );
    p
}

/// Python 3 with the `whisper` module (python3-whisper): used to read whisper
/// files back and to call the daemon's XML-RPC endpoint.
pub fn require_python_whisper() {
    require_binary("/usr/bin/python3", "python3");
    let ok = Command::new("/usr/bin/python3")
        .args(["-c", "import whisper"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "python3 cannot import whisper: install it with \
         `apt-get install -y python3-whisper` (see ci-deps.txt)"
    );
}

/// A loopback port free for TCP at the time of the call.
pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A loopback port free for both TCP and UDP: the daemon binds both on `-p`.
pub fn free_tcp_udp_port() -> u16 {
    for _ in 0..100 {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = tcp.local_addr().expect("local_addr").port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no loopback port free for both TCP and UDP after 100 tries");
}

/// Polls `f` every 50 ms until it returns `Some`, for at most `timeout`.
/// Panics with `what` and the last state `describe` gives, so a failure says
/// what was awaited and what was seen instead.
pub fn wait_for<T>(
    timeout: Duration,
    what: &str,
    mut f: impl FnMut() -> Option<T>,
    describe: impl Fn() -> String,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!(
                "timed out after {timeout:?} waiting for {what}\n{}",
                describe()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The file's text, or "" while it does not exist yet.
pub fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// Calls the daemon's `istats` with Python's standard xmlrpc client, the
/// client SPEC section 7 names, and returns the decoded JSON object. `None`
/// while the daemon does not answer.
pub fn istats(monitor_port: u16) -> Option<serde_json::Map<String, serde_json::Value>> {
    let out = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import sys, xmlrpc.client\n\
             p = xmlrpc.client.ServerProxy('http://127.0.0.1:%s/RPC2' % sys.argv[1])\n\
             sys.stdout.write(p.istats())\n",
            &monitor_port.to_string(),
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    match serde_json::from_slice::<serde_json::Value>(&out.stdout) {
        Ok(serde_json::Value::Object(m)) => Some(m),
        other => panic!(
            "istats did not return a JSON object: {other:?} from {:?}",
            String::from_utf8_lossy(&out.stdout)
        ),
    }
}

/// One numeric key of `istats`.
pub fn istat(monitor_port: u16, key: &str) -> Option<f64> {
    istats(monitor_port)?.get(key)?.as_f64()
}

/// Sends `payload` as one UDP datagram to the daemon on loopback: one datagram
/// lands in one flush, so every line in it shares a flush timestamp.
pub fn send_udp(port: u16, payload: &str) {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind udp sender");
    let n = sock
        .send_to(payload.as_bytes(), ("127.0.0.1", port))
        .expect("send udp datagram");
    assert_eq!(n, payload.len(), "short UDP send");
}
