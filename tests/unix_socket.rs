//! `--unix-socket PATH`: a Unix datagram socket input, fed by real clients
//! (Python's `socket` AF_UNIX SOCK_DGRAM and the PyPI `datadog` client's
//! `socket_path`), parsed as UDP is, with its own `unix.*` stats; the socket
//! file is created with the asked mode, a stale one replaced, anything else
//! refused with one line, and the file removed at exit.

mod support;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::Path;

use support::carbon::FakeCarbon;
use support::daemon::{run_statsd, Daemon};
use support::flushed::{final_flush, Flush};
use support::istats::stat;
use support::peers::{python, run};
use support::server::Server;
use support::to_carbon;
use support::Statsd;

/// The server in process on `path`, carbon on `carbon`, a 100 s interval
/// (its one flush is the final one).
fn start(carbon: &FakeCarbon, path: &Path, extra: &[&str]) -> Server {
    let path = path.to_str().expect("a UTF-8 temp path");
    let mut flags = vec!["-q", "--unix-socket", path];
    flags.extend_from_slice(extra);
    to_carbon::server(carbon.port, "100", &flags)
}

/// Stops the server once it has taken in `lines` lines (accepted or not).
fn flush_after(server: Server, carbon: &FakeCarbon, lines: u64) -> Flush {
    server.poll_istats(|s| stat(s, "metrics.received") + stat(s, "metrics.discarded") >= lines);
    final_flush(server, carbon)
}

fn sorted(mut lines: Vec<String>) -> Vec<String> {
    lines.sort();
    lines
}

const PYTHON_SENDER: &str = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
s.connect(sys.argv[1])
s.send(b"u.hits:1|c")
s.send(b"u.hits:2|c\nu.temp:5|g\nbad line\n")
# 70000 bytes: longer than the server's 65536-byte receive slot.
s.send(b"u.big:1|c\n" * 7000)
s.close()
"#;

#[test]
fn python_af_unix_datagrams_are_parsed_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("statsd.sock");
    let carbon = FakeCarbon::start();
    let server = start(&carbon, &path, &["--unix-socket-mode", "622"]);
    let meta = std::fs::metadata(&path).expect("the socket file exists once bound");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o622);

    server.send_udp(b"u.udp:1|c");
    let python3 = std::path::PathBuf::from("/usr/bin/python3");
    let args = [
        "-c".to_string(),
        PYTHON_SENDER.to_string(),
        path.display().to_string(),
    ];
    run("python3 AF_UNIX", &python3, &args, &[]);
    // 65536 bytes kept: 6553 whole lines, the 6554th cut.
    let flush = flush_after(server, &carbon, 1 + 1 + 3 + 6553 + 1);
    let ts = flush.timestamp;
    assert_eq!(
        sorted(flush.metrics.clone()),
        sorted(vec![
            format!("stats.u.big 65.53 {ts}"),
            format!("stats.u.hits 0.03 {ts}"),
            format!("stats.u.temp 5 {ts}"),
            format!("stats.u.udp 0.01 {ts}"),
        ])
    );
    let second = "u.hits:2|c\nu.temp:5|g\nbad line\n".len() as f64;
    assert_eq!(flush.own("unix.packets"), 3.0);
    assert_eq!(flush.own("unix.bytes"), 10.0 + second + 65536.0);
    assert_eq!(flush.own("unix.truncated"), 1.0);
    assert_eq!(flush.own("packets.received"), 4.0, "UDP's and the socket's");
    assert_eq!(flush.own("metrics.discarded.cut_off"), 1.0);
    assert_eq!(flush.own("metrics.discarded.missing_value"), 1.0);
    let lines = flush.metrics.len() + flush.own.len();
    assert_eq!(flush.own("numStats"), lines as f64);
    assert!(!path.exists(), "the socket file is removed at exit");
}

const DATADOG_UDS: &str = r#"
import sys
from datadog.dogstatsd import DogStatsd
d = DogStatsd(socket_path=sys.argv[1], namespace="dd", constant_tags=["env:uds"],
              disable_telemetry=True)
d.increment("req", tags=["route:home"])
d.gauge("temp", 21.5)
d.histogram("lat", 10)
d.histogram("lat", 30)
d.set("users", "alice")
d.close_socket()
"#;

#[test]
fn datadog_client_over_socket_path() {
    let python = python("datadog", "PyPI datadog 0.56.0");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dsd.socket");
    let carbon = FakeCarbon::start();
    // Datagram sockets take a sender's writes only with write permission.
    let server = start(&carbon, &path, &["--unix-socket-mode", "666"]);
    let args = [
        "-c".to_string(),
        DATADOG_UDS.to_string(),
        path.display().to_string(),
    ];
    run("datadog socket_path", &python, &args, &[]);
    let flush = flush_after(server, &carbon, 5);
    flush.assert_metrics(
        "
        stats.dd.req;env=uds;route=home 0.01 {ts}
        stats.dd.temp;env=uds 21.5 {ts}
        stats.timers.dd.lat.lower;env=uds 10 {ts}
        stats.timers.dd.lat.count;env=uds 2 {ts}
        stats.timers.dd.lat.mean;env=uds 20 {ts}
        stats.timers.dd.lat.upper;env=uds 30 {ts}
        stats.timers.dd.lat.upper_90;env=uds 10 {ts}
        stats.dd.users;env=uds 1 {ts}
        ",
    );
    assert_eq!(
        flush.own("metrics.discarded"),
        0.0,
        "{:?}",
        flush.discards()
    );
    assert!(flush.own("unix.packets") >= 1.0);
    assert_eq!(flush.own("packets.received"), flush.own("unix.packets"));
    assert!(!path.exists());
}

/// Runs the binary on `path` expecting it to refuse to start with one line.
fn refused(path: &Path, why: &str) {
    let out = run_statsd(&["-p", "0", "--unix-socket", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("statsd: --unix-socket "), "{stderr}");
    assert!(lines[0].contains(why), "{stderr}");
}

#[test]
fn binary_refuses_files_and_live_sockets_replaces_stale_ones() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-socket");
    std::fs::write(&file, b"keep me").unwrap();
    refused(&file, "exists and is not a socket");
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");

    let path = dir.path().join("statsd.sock");
    let live = UnixDatagram::bind(&path).unwrap();
    refused(&path, "a process is receiving on it");
    // Closed, the file stays behind: stale, as after a crash.
    drop(live);
    assert!(path.exists());

    // --console: no carbon to wait for at exit.
    let mut daemon = Daemon::start(&[
        "-p",
        "0",
        "--console",
        "--unix-socket",
        path.to_str().unwrap(),
    ]);
    let sender = UnixDatagram::unbound().unwrap();
    sender.send_to(b"stale.replaced:1|c", &path).unwrap();
    daemon.poll_istats(|s| stat(s, "unix.packets") == 1 && stat(s, "metrics.received") == 1);
    assert_eq!(daemon.terminate(), 0);
    assert!(!path.exists(), "removed at exit");
}
