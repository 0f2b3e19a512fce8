//! The monitoring endpoint of a running server: Python's standard
//! `xmlrpc.client` (the reference client SPEC section 7 names), the
//! `statsdmonitor` command, and abuse that must not disturb metric intake.
//! The server runs in process; the binary only where its start-up line is
//! what the test reads (the default monitor port).

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use support::daemon::{lines_of, run_bounded, run_statsdmonitor, STATSD};
use support::server::Server;
use support::{free_port, Statsd, WAIT};

use statsd::stats::SPEC_KEYS;

/// Calls istats with Python's xmlrpc.client at `path` (and checks that
/// `system.listMethods` offers it); returns the JSON.
fn python_istats(addr: SocketAddr, path: &str) -> serde_json::Value {
    let script = format!(
        "import xmlrpc.client, sys\n\
         p = xmlrpc.client.ServerProxy('http://{addr}{path}')\n\
         s = p.istats()\n\
         assert isinstance(s, str), type(s)\n\
         assert 'istats' in p.system.listMethods()\n\
         sys.stdout.write(s)\n"
    );
    let mut python = Command::new("python3");
    python.args(["-c", &script]);
    let out = run_bounded(python);
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("istats is JSON")
}

/// A server that never flushes while the test runs.
fn idle_server() -> Server {
    Server::start(&["-p", "0", "-q", "--console", "--flush-interval", "3600"])
}

#[test]
fn python_xmlrpc_reads_every_spec_key_with_true_values() {
    let server = idle_server();
    let monitor = server.monitor_addr();
    server.send_udp(b"a:1|c\nb:2|g\nbroken line\n");
    server.poll_istats(|s| s["pending_stats"] == 2);
    // Nothing changes any more (no flush for an hour): Python reads the
    // same values.
    for path in ["/", "/RPC2"] {
        let stats = python_istats(monitor, path);
        for key in SPEC_KEYS {
            assert!(stats.get(key).is_some(), "{path}: no {key} in {stats}");
        }
        assert_eq!(stats["pending_stats"], 2, "{path}: {stats}");
        assert_eq!(stats["metrics.discarded"], 1, "{path}: {stats}");
        assert_eq!(stats["metrics.batch.count"], 1, "{path}: {stats}");
        assert_eq!(stats["metrics.batch.discarded"], 1, "{path}: {stats}");
        assert!(stats["start_time"].as_f64().unwrap() > 1.6e9, "{stats}");
    }
    server.stop();
}

#[test]
fn monitor_port_defaults_to_port_plus_ten() {
    // A free port p whose p+10 is free too (else statsd cannot bind, and
    // the next try takes another).
    for _ in 0..20 {
        let port = free_port();
        if port > 65000 {
            continue;
        }
        let mut child = Command::new(STATSD)
            .args([
                "-n",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "--console",
                "-q",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = lines_of(child.stderr.take().unwrap());
        let line = stderr.recv_timeout(WAIT);
        let _ = child.kill();
        let _ = child.wait();
        let line = line.expect("statsd wrote no start-up line");
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
fn statsdmonitor_prints_sorted_keys_of_a_running_server() {
    let server = idle_server();
    let monitor = server.monitor_addr().port().to_string();
    server.send_udp(b"x:1|c\n");
    server.poll_istats(|s| s["pending_stats"] == 1);
    let out = run_statsdmonitor(&["127.0.0.1", &monitor]);
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
    server.stop();

    // The server is gone: one line, and a failure.
    let out = run_statsdmonitor(&["127.0.0.1", &monitor]);
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
    let server = idle_server();
    let monitor = server.monitor_addr();
    let abuse: Vec<Vec<u8>> = vec![
        b"GARBAGE\r\n\r\n".to_vec(),
        b"POST /RPC2 HTTP/1.1\r\nContent-Length: 9\r\n\r\nnot xml!!".to_vec(),
        unknown_method(),
        format!("POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n", 10_000_000).into_bytes(),
        vec![0xff; 5000],
    ];
    for (n, request) in abuse.iter().enumerate() {
        server.send_udp(b"counted:1|c\n");
        let mut stream = TcpStream::connect(monitor).unwrap();
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
    let _idle = TcpStream::connect(monitor).unwrap();
    let stats = server.poll_istats(|s| s["pending_stats"] == abuse.len());
    assert_eq!(stats["metrics.discarded"], 0);
    server.stop();
}
