//! The monitoring endpoint of the real binary: Python's standard
//! `xmlrpc.client`, the `statsdmonitor` command, and abuse that must not
//! disturb metric intake.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Daemon, WAIT};

use statsd::stats::SPEC_KEYS;

/// Calls istats with Python's xmlrpc.client at `path`; returns the JSON.
fn python_istats(port: u16, path: &str) -> serde_json::Value {
    let script = format!(
        "import xmlrpc.client, sys\n\
         p = xmlrpc.client.ServerProxy('http://127.0.0.1:{port}{path}')\n\
         s = p.istats()\n\
         assert isinstance(s, str), type(s)\n\
         assert 'istats' in p.system.listMethods()\n\
         sys.stdout.write(s)\n"
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3 must be installed");
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("istats is JSON")
}

/// Polls istats until `check` holds (bounded).
fn wait_istats(port: u16, check: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let stats = python_istats(port, "/RPC2");
        if check(&stats) {
            return stats;
        }
        assert!(Instant::now() < deadline, "istats never matched: {stats}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn idle_daemon() -> Daemon {
    Daemon::start(&["-p", "0", "-q", "--console", "--flush-interval", "3600"])
}

#[test]
fn python_xmlrpc_reads_every_spec_key_with_true_values() {
    let mut daemon = idle_daemon();
    let monitor = daemon.monitor_port.expect("monitor port");
    daemon.send_udp(b"a:1|c\nb:2|g\nbroken line\n");
    let stats = wait_istats(monitor, |s| s["pending_stats"] == 2);
    for path in ["/", "/RPC2"] {
        let stats = python_istats(monitor, path);
        for key in SPEC_KEYS {
            assert!(stats.get(key).is_some(), "{path}: no {key} in {stats}");
        }
    }
    assert_eq!(stats["metrics.discarded"], 1);
    assert_eq!(stats["metrics.batch.count"], 1);
    assert_eq!(stats["metrics.batch.discarded"], 1);
    assert!(stats["start_time"].as_f64().unwrap() > 1.6e9);
    assert_eq!(daemon.terminate(), 0);
}

#[test]
fn monitor_port_defaults_to_port_plus_ten() {
    // Find a port p with p and p+10 free for UDP and TCP, then start on it.
    for _ in 0..20 {
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = probe.local_addr().unwrap().port();
        drop(probe);
        if port > 65000 {
            continue;
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_statsd"))
            .args([
                "-n",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "--console",
                "-q",
            ])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let mut first = [0u8; 300];
        let n = stderr.read(&mut first).unwrap_or(0);
        let line = String::from_utf8_lossy(&first[..n]).to_string();
        let _ = child.kill();
        let _ = child.wait();
        if line.contains("cannot bind") {
            continue; // raced with another test; try another port
        }
        assert!(
            line.contains(&format!("on 127.0.0.1:{}", port + 10)),
            "{line}"
        );
        return;
    }
    panic!("no free port pair found");
}

#[test]
fn statsdmonitor_prints_sorted_keys_of_the_real_daemon() {
    let mut daemon = idle_daemon();
    let monitor = daemon.monitor_port.unwrap();
    daemon.send_udp(b"x:1|c\n");
    wait_istats(monitor, |s| s["pending_stats"] == 1);
    let out = Command::new(env!("CARGO_BIN_EXE_statsdmonitor"))
        .args(["127.0.0.1", &monitor.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let keys: Vec<&str> = text
        .lines()
        .map(|l| l.split(": ").next().unwrap())
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(keys, sorted);
    for key in SPEC_KEYS {
        assert!(keys.contains(&key), "no {key}:\n{text}");
    }
    assert!(text.lines().any(|l| l == "pending_stats: 1"), "{text}");
    assert_eq!(daemon.terminate(), 0);

    let out = Command::new(env!("CARGO_BIN_EXE_statsdmonitor"))
        .args(["127.0.0.1", &monitor.to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
}

fn unknown_method() -> Vec<u8> {
    let body = "<?xml version=\"1.0\"?><methodCall><methodName>nope</methodName></methodCall>";
    format!(
        "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[test]
fn abuse_of_the_monitor_port_does_not_disturb_intake() {
    let mut daemon = idle_daemon();
    let monitor = daemon.monitor_port.unwrap();
    let abuse: Vec<Vec<u8>> = vec![
        b"GARBAGE\r\n\r\n".to_vec(),
        b"POST /RPC2 HTTP/1.1\r\nContent-Length: 9\r\n\r\nnot xml!!".to_vec(),
        unknown_method(),
        format!("POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n", 10_000_000).into_bytes(),
        vec![0xff; 5000],
    ];
    for (n, request) in abuse.iter().enumerate() {
        daemon.send_udp(b"counted:1|c\n");
        let mut stream = TcpStream::connect(("127.0.0.1", monitor)).unwrap();
        // The server answers or closes; a short bound keeps the test quick
        // even if it chose to wait for a body that never comes.
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let _ = stream.write_all(request);
        if n == 3 {
            let _ = stream.write_all(&vec![b'x'; 2_000_000]);
        }
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
    }
    // An idle connection that never sends anything.
    let _idle = TcpStream::connect(("127.0.0.1", monitor)).unwrap();
    let stats = wait_istats(monitor, |s| s["pending_stats"] == abuse.len());
    assert_eq!(stats["metrics.discarded"], 0);
    assert_eq!(daemon.terminate(), 0);
}
