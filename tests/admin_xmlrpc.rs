//! The monitoring endpoint (`statsd::admin`) and `statsdmonitor`, over real loopback
//! sockets. Python's standard `xmlrpc.client` is the reference client (SPEC section 7
//! names it); python3 missing is a failure, not a skip.
//!
//! `admin::serve` runs in process on a fixture source (support::server::AdminServer),
//! so replies can be compared byte for byte; `statsdmonitor` is the real binary.
//!
//! Every wait is bounded: sockets carry read/write timeouts and child processes are
//! killed after a deadline, so a broken server fails a test instead of hanging it.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener as StdListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use statsd::admin::{AdminLimits, IstatsSource};
use support::daemon::{run_bounded, run_statsdmonitor, STATSDMONITOR};
use support::free_port;
use support::istats::{self, CALL as ISTATS_CALL};
use support::server::AdminServer;

/// Every SPEC section 6 key with the README's sample values, plus a string-valued
/// extra key that needs XML escaping.
const STATS_JSON: &str = r#"{"start_time": 1392235332.92, "flush_duration": 0.410356044769, "flush_errors": 0, "last_publish.duration": 0.352137088776, "last_publish.time": 1393294923.76, "metrics.batch.count": 1454, "metrics.batch.discarded": 0, "metrics.discarded": 120, "pending_stats": 10334, "publish_error.socket": 0, "publish_error.unknown": 0, "render.counters.count": 0, "render.counters.duration": 0, "render.gauge.count": 28977, "render.gauge.duration": 0.049978017807, "render.set.count": 0, "render.set.duration": 0, "render.time": 0.0500249862671, "render.timers.count": 0, "render.timers.duration": 1e-06, "render.total": 28990, "x.host": "web \"1\" <&>"}"#;

/// What `statsdmonitor` must print for [`STATS_JSON`]: sorted, numbers verbatim.
const MONITOR_OUTPUT: &str = "\
flush_duration: 0.410356044769
flush_errors: 0
last_publish.duration: 0.352137088776
last_publish.time: 1393294923.76
metrics.batch.count: 1454
metrics.batch.discarded: 0
metrics.discarded: 120
pending_stats: 10334
publish_error.socket: 0
publish_error.unknown: 0
render.counters.count: 0
render.counters.duration: 0
render.gauge.count: 28977
render.gauge.duration: 0.049978017807
render.set.count: 0
render.set.duration: 0
render.time: 0.0500249862671
render.timers.count: 0
render.timers.duration: 1e-06
render.total: 28990
start_time: 1392235332.92
x.host: web \"1\" <&>
";

use statsd::stats::SPEC_KEYS;

/// Bound for any single socket wait in these tests.
const IO_BOUND: Duration = Duration::from_secs(10);

/// `admin::serve` answering [`STATS_JSON`].
fn start(limits: AdminLimits) -> AdminServer {
    AdminServer::start(limits, Arc::new(|| STATS_JSON.to_owned()))
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, IO_BOUND).expect("connect");
    s.set_read_timeout(Some(IO_BOUND)).expect("read timeout");
    s.set_write_timeout(Some(IO_BOUND)).expect("write timeout");
    s
}

/// Reads until EOF; a reset also ends the answer. A read timeout fails the test.
fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!(
                    "server neither answered nor closed within {IO_BOUND:?}; got {:?}",
                    String::from_utf8_lossy(&out)
                )
            }
            Err(_) => return out,
        }
    }
}

/// Sends raw bytes, returns everything the server sends before closing.
fn raw_exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = connect(addr);
    // The server may close early (e.g. 413); what it answered still counts.
    let _ = s.write_all(request);
    String::from_utf8_lossy(&read_to_close(&mut s)).into_owned()
}

/// One HTTP response read from a keep-alive connection: (status, body).
fn read_response(s: &mut TcpStream) -> (u16, String) {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => raw.push(byte[0]),
            other => panic!(
                "response head cut short: {other:?} after {:?}",
                String::from_utf8_lossy(&raw)
            ),
        }
    }
    let head = String::from_utf8_lossy(&raw).into_owned();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or_else(|| panic!("no Content-Length in {head:?}"));
    let mut body = vec![0u8; length];
    s.read_exact(&mut body).expect("response body");
    (status, String::from_utf8(body).expect("utf-8 body"))
}

fn istats_request(path: &str, keep_alive: bool) -> String {
    istats::request(path, keep_alive)
}

/// The istats string from an XML-RPC response document.
fn istats_value(xml: &str) -> String {
    istats::response_string(xml).unwrap_or_else(|e| panic!("{e}"))
}

/// The server still answers istats correctly on a fresh connection.
fn assert_still_serves(addr: SocketAddr) {
    let mut s = connect(addr);
    s.write_all(istats_request("/RPC2", false).as_bytes())
        .expect("send");
    let (status, body) = read_response(&mut s);
    assert_eq!(status, 200, "{body}");
    assert_eq!(istats_value(&body), STATS_JSON);
}

fn python(script: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(script).args(args);
    let out = run_bounded(cmd);
    assert!(
        out.status.success(),
        "python3 failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const PY_ROUND_TRIP: &str = r#"
import json, socket, sys, xmlrpc.client
socket.setdefaulttimeout(10)
out = {}
for path in ("/", "/RPC2", "/any/other/path"):
    proxy = xmlrpc.client.ServerProxy(sys.argv[1] + path)
    first = proxy.istats()
    second = proxy.istats()   # same proxy: keep-alive connection reuse
    assert first == second, (first, second)
    out[path] = {"istats": first, "methods": proxy.system.listMethods()}
    proxy("close")()
print(json.dumps(out))
"#;

#[test]
fn python_xmlrpc_client_gets_istats_and_method_list() {
    let server = start(AdminLimits::default());
    let out = python(PY_ROUND_TRIP, &[&server.url("")]);
    let results: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("python printed JSON");
    let want: serde_json::Value = serde_json::from_str(STATS_JSON).expect("fixture");
    for path in ["/", "/RPC2", "/any/other/path"] {
        let got = &results[path];
        let istats = got["istats"].as_str().expect("istats is a string");
        assert_eq!(
            istats, STATS_JSON,
            "path {path}: string must round-trip exactly"
        );
        let parsed: serde_json::Value = serde_json::from_str(istats).expect("istats is JSON");
        assert_eq!(parsed, want);
        for key in SPEC_KEYS {
            assert!(parsed.get(key).is_some(), "{key} missing");
        }
        assert_eq!(
            got["methods"],
            serde_json::json!(["istats", "system.listMethods"])
        );
    }
}

const PY_FAULTS: &str = r#"
import json, socket, sys, xmlrpc.client
socket.setdefaulttimeout(10)
proxy = xmlrpc.client.ServerProxy(sys.argv[1])
out = {}
for name, call in (("unknown", lambda: proxy.no_such_method()),
                   ("args", lambda: proxy.istats(1))):
    try:
        call()
        out[name] = "no fault"
    except xmlrpc.client.Fault as f:
        out[name] = {"code": f.faultCode, "string": f.faultString}
out["after"] = proxy.istats()
print(json.dumps(out))
"#;

#[test]
fn python_sees_a_fault_for_unknown_method_and_bad_arguments() {
    let server = start(AdminLimits::default());
    let out = python(PY_FAULTS, &[&server.url("/RPC2")]);
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).expect("python printed JSON");
    assert_eq!(got["unknown"]["code"], -32601, "{got}");
    assert!(
        got["unknown"]["string"]
            .as_str()
            .unwrap_or("")
            .contains("no_such_method"),
        "{got}"
    );
    assert_eq!(got["args"]["code"], -32602, "{got}");
    assert_eq!(got["after"], STATS_JSON);
}

#[test]
fn garbage_body_gets_a_fault_and_server_keeps_serving() {
    let server = start(AdminLimits::default());
    for body in [
        &b"this is not xml"[..],
        b"<methodCall><methodName>istats",
        b"\xff\xfe\x00garbage",
        b"",
        b"<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"aaaa\"><!ENTITY b \"&a;&a;&a;\">]><methodCall><methodName>&b;</methodName></methodCall>",
    ] {
        let mut request = format!(
            "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body);
        let answer = raw_exchange(server.addr, &request);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        let xml = answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        let fault = dxr::FaultResponse::from_xml(xml).unwrap_or_else(|e| panic!("no fault for {body:?}: {e} {answer}"));
        assert!(fault.fault.code() < 0, "{answer}");
    }
    // Deep nesting must be refused, not overflow the server's stack.
    let depth = 20_000; // about 860 KB, under the 1 MiB body limit
    let call = format!(
        "<methodCall><methodName>istats</methodName><params><param>{}{}</param></params></methodCall>",
        "<value><array><data>".repeat(depth),
        "</data></array></value>".repeat(depth)
    );
    let request = format!(
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{call}",
        call.len()
    );
    let answer = raw_exchange(server.addr, request.as_bytes());
    assert!(answer.contains("<name>faultCode</name>"), "{answer}");
    assert_still_serves(server.addr);
}

#[test]
fn malformed_http_gets_400_and_server_keeps_serving() {
    let server = start(AdminLimits::default());
    for request in [
        &b"GARBAGE\r\n\r\n"[..],
        b"POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        b"\x00\x01\x02\x03 \xff\xff HTTP/1.1\r\n\r\n",
        b"POST / HTTP/9.9\r\n\r\n",
    ] {
        let answer = raw_exchange(server.addr, request);
        assert!(
            answer.starts_with("HTTP/1.1 400") || answer.starts_with("HTTP/1.1 505"),
            "{:?} -> {answer:?}",
            String::from_utf8_lossy(request)
        );
    }
    let answer = raw_exchange(server.addr, b"GET /RPC2 HTTP/1.0\r\n\r\n");
    assert!(
        answer.starts_with("HTTP/1.0 405") || answer.starts_with("HTTP/1.1 405"),
        "{answer}"
    );
    // HTTP/1.0 without keep-alive is served and closed.
    let answer = raw_exchange(
        server.addr,
        format!(
            "POST /RPC2 HTTP/1.0\r\nContent-Length: {}\r\n\r\n{ISTATS_CALL}",
            ISTATS_CALL.len()
        )
        .as_bytes(),
    );
    assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
    assert_still_serves(server.addr);
}

#[test]
fn oversized_bodies_get_413_and_server_keeps_serving() {
    let limits = AdminLimits::default();
    let server = start(limits);
    let ten_mb = 10 * 1024 * 1024;

    // Announced: refused before any of it is sent.
    let answer = raw_exchange(
        server.addr,
        format!("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: {ten_mb}\r\n\r\n").as_bytes(),
    );
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // Actually sent, chunked, so the limit is found while reading. The server may
    // close while we still write: a 413 or a reset are both correct.
    let mut s = connect(server.addr);
    let reader = s.try_clone().expect("clone");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = reader;
        let _ = tx.send(read_to_close(&mut reader));
    });
    let chunk = vec![b'x'; 64 * 1024];
    let _ = s.write_all(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    // Bounded well past 10 MB so kernel buffers cannot hide a server that reads it all.
    let cap = 64 * 1024 * 1024;
    let mut sent = 0usize;
    while sent < cap {
        let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
        if s.write_all(&framed).is_err() {
            break;
        }
        sent += chunk.len();
    }
    let answer = text(&rx.recv_timeout(IO_BOUND).expect("reader finished"));
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 413"),
        "{answer}"
    );
    assert!(
        sent < cap,
        "server read {cap} bytes instead of stopping at the limit"
    );

    // A plain Content-Length body of 10 MB, written while the server refuses it.
    let mut s = connect(server.addr);
    let mut request =
        format!("POST /RPC2 HTTP/1.1\r\nHost: t\r\nContent-Length: {ten_mb}\r\n\r\n").into_bytes();
    request.resize(request.len() + ten_mb, b'<');
    let _ = s.write_all(&request);
    let answer = text(&read_to_close(&mut s));
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 413"),
        "{answer}"
    );

    assert_still_serves(server.addr);
}

#[test]
fn idle_and_slow_connections_are_closed() {
    let limits = AdminLimits {
        idle_timeout: Duration::from_millis(300),
        ..AdminLimits::default()
    };
    let server = start(limits);

    // Connected, sends nothing: closed by the server (the read sees EOF, not our timeout).
    let mut idle = connect(server.addr);
    let answer = read_to_close(&mut idle);
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 408"),
        "{}",
        text(&answer)
    );

    // Half a request head, then silence.
    let answer = raw_exchange(server.addr, b"POST / HTTP/1.1\r\nHost: t\r\n");
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );

    // A full head, a body that stops short.
    let answer = raw_exchange(
        server.addr,
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n<methodCall>",
    );
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    // Keep-alive connection left idle after a request is closed too.
    let mut s = connect(server.addr);
    s.write_all(istats_request("/", true).as_bytes())
        .expect("send");
    let (status, body) = read_response(&mut s);
    assert_eq!(status, 200);
    assert_eq!(istats_value(&body), STATS_JSON);
    assert!(read_to_close(&mut s).is_empty());

    assert_still_serves(server.addr);
}

#[test]
fn client_that_stops_reading_is_dropped() {
    let limits = AdminLimits {
        idle_timeout: Duration::from_millis(300),
        ..AdminLimits::default()
    };
    let server = start(limits);
    // Pipeline requests and never read: once the socket buffers fill, the server's
    // write stalls and it must give up on us, which shows up as a failed write here.
    let mut s = connect(server.addr);
    let one = istats_request("/", true);
    let batch = one.repeat(1000);
    let mut written = 0usize;
    let bound = 256 * 1024 * 1024;
    let err = loop {
        match s.write_all(batch.as_bytes()) {
            Ok(()) => written += batch.len(),
            Err(e) => break e,
        }
        assert!(
            written < bound,
            "server kept reading {bound} bytes while we never read"
        );
    };
    assert!(
        !matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "server did not drop the stalled connection: {err}"
    );
    drop(s);
    assert_still_serves(server.addr);
}

#[test]
fn connection_count_is_bounded() {
    let limits = AdminLimits {
        max_connections: 2,
        ..AdminLimits::default()
    };
    let server = start(limits);
    // Two kept-alive connections, each proven accepted by a completed request.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = connect(server.addr);
        s.write_all(istats_request("/", true).as_bytes())
            .expect("send");
        assert_eq!(read_response(&mut s).0, 200);
        held.push(s);
    }
    // Sends nothing, so nothing unread makes the server's close a reset: the 503 arrives.
    let mut third = connect(server.addr);
    let answer = text(&read_to_close(&mut third));
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");

    // Hand one back: the server frees the slot once it sees the close. That happens
    // asynchronously, so retry (each attempt is a real, bounded request).
    let mut first = held.remove(0);
    first
        .write_all(istats_request("/", false).as_bytes())
        .expect("send");
    assert_eq!(read_response(&mut first).0, 200);
    assert!(read_to_close(&mut first).is_empty());
    let mut served = false;
    for _ in 0..2000 {
        let mut s = connect(server.addr);
        let _ = s.write_all(istats_request("/", false).as_bytes());
        let answer = text(&read_to_close(&mut s));
        if answer.starts_with("HTTP/1.1 200") {
            served = true;
            break;
        }
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 503"),
            "{answer}"
        );
    }
    assert!(served, "slot never freed after a client closed");
}

#[test]
fn istats_source_panic_is_a_fault_not_a_crash() {
    let server = AdminServer::start(AdminLimits::default(), Arc::new(|| panic!("stats broke")));
    let out = python(
        PY_FAULTS
            .replace("proxy.istats()\nprint", "None\nprint")
            .as_str(),
        &[&server.url("/")],
    );
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).expect("python printed JSON");
    assert_eq!(got["unknown"]["code"], -32601, "{got}");
    let monitor = run_statsdmonitor(&["127.0.0.1", &server.addr.port().to_string()]);
    assert_eq!(monitor.status.code(), Some(1));
    let err = text(&monitor.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("statsdmonitor: ") && err.contains("fault -32603"),
        "{err}"
    );
}

#[test]
fn serve_returns_promptly_on_shutdown_with_connections_open() {
    let server = start(AdminLimits::default());
    let _idle = connect(server.addr);
    let mut busy = connect(server.addr);
    busy.write_all(istats_request("/", true).as_bytes())
        .expect("send");
    assert_eq!(read_response(&mut busy).0, 200);
    let took = server.stop(); // asserts serve() returned Ok
    assert!(took < IO_BOUND, "serve took {took:?} to return");
}

#[test]
fn statsdmonitor_prints_sorted_key_value_lines() {
    let server = start(AdminLimits::default());
    let out = run_statsdmonitor(&["127.0.0.1", &server.addr.port().to_string()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), MONITOR_OUTPUT);
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    for key in SPEC_KEYS {
        assert!(
            text(&out.stdout)
                .lines()
                .any(|l| l.starts_with(&format!("{key}: "))),
            "{key} missing"
        );
    }
    // Host names resolve too.
    let out = run_statsdmonitor(&["localhost", &server.addr.port().to_string(), "--path", "/"]);
    // localhost may resolve to ::1 first; the client must fall through to 127.0.0.1.
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), MONITOR_OUTPUT);
}

#[test]
fn statsdmonitor_json_prints_the_raw_object() {
    let server = start(AdminLimits::default());
    let out = run_statsdmonitor(&["--json", "127.0.0.1", &server.addr.port().to_string()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{STATS_JSON}\n"));
}

#[test]
fn statsdmonitor_watch_refreshes() {
    let server = start(AdminLimits::default());
    let mut child = Command::new(STATSDMONITOR)
        .args([
            "--watch",
            "0.05",
            "127.0.0.1",
            &server.addr.port().to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start statsdmonitor");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut rounds = 0;
    let mut lines = Vec::new();
    while rounds < 3 {
        match rx.recv_timeout(IO_BOUND) {
            Ok(line) => {
                if line.starts_with("start_time: ") {
                    rounds += 1;
                }
                lines.push(line);
            }
            Err(e) => {
                let _ = child.kill();
                panic!("watch stopped refreshing ({e}) after {lines:?}");
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let per_round = MONITOR_OUTPUT.lines().count() + 1; // plus the blank separator
    assert_eq!(
        lines.len(),
        2 * per_round + MONITOR_OUTPUT.lines().count() - 1,
        "{lines:?}"
    );
}

#[test]
fn statsdmonitor_fails_with_one_line_when_unreachable() {
    // A port that was just ours and is now closed.
    let port = free_port();
    let out = run_statsdmonitor(&["127.0.0.1", &port.to_string()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = text(&out.stderr);
    assert_eq!(
        err,
        format!("statsdmonitor: cannot reach 127.0.0.1:{port}: Connection refused\n")
    );
}

#[test]
fn statsdmonitor_times_out_on_a_silent_server() {
    // Listening but never accepting: the kernel completes the handshake, nobody answers.
    let silent = StdListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let out = run_statsdmonitor(&["--timeout", "0.3", "127.0.0.1", &port.to_string()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert_eq!(
        err,
        format!("statsdmonitor: no answer from 127.0.0.1:{port} within 0.3 s\n")
    );
    drop(silent);
}

/// Reads one whole request, head and Content-Length body (bounded). The monitor may
/// send them in separate writes, and a server that closes with bytes unread makes
/// the kernel reset the connection, so the client would see a reset, not the answer.
fn read_request(s: &mut TcpStream) {
    let _ = s.set_read_timeout(Some(IO_BOUND));
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while got.len() < 1 << 20 {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        if let Ok(httparse::Status::Complete(head)) = req.parse(&got) {
            let length = req
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
                .unwrap_or(0usize);
            if got.len() >= head + length {
                return;
            }
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// A one-shot server that answers whatever `answer` is, for client error paths.
fn canned_server(answer: &'static [u8]) -> (u16, std::thread::JoinHandle<()>) {
    let l = StdListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let handle = std::thread::spawn(move || {
        if let Ok((mut s, _)) = l.accept() {
            read_request(&mut s);
            let _ = s.write_all(answer);
        }
    });
    (port, handle)
}

#[test]
fn statsdmonitor_rejects_garbage_answers_with_one_line() {
    let cases: [(&'static [u8], &str); 5] = [
        (b"hello there\r\n\r\n", "not an HTTP response"),
        (b"HTTP/1.0 404 Not Found\r\n\r\nnope", "HTTP 404 Not Found"),
        (b"HTTP/1.0 200 OK\r\n\r\n<html>not xml-rpc</html>", "not an XML-RPC response"),
        (
            b"HTTP/1.0 200 OK\r\n\r\n<methodResponse><params><param><value><string>[1,2]</string></value></param></params></methodResponse>",
            "did not return a JSON object",
        ),
        (
            b"HTTP/1.0 200 OK\r\n\r\n<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>1</int></value></member><member><name>faultString</name><value><string>no\nway</string></value></member></struct></value></fault></methodResponse>",
            "server fault 1: no way",
        ),
    ];
    for (answer, want) in cases {
        let (port, handle) = canned_server(answer);
        let out = run_statsdmonitor(&["127.0.0.1", &port.to_string()]);
        handle.join().expect("canned server");
        assert_eq!(out.status.code(), Some(1), "{want}");
        let err = text(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("statsdmonitor: ") && err.contains(want),
            "want {want:?}: {err}"
        );
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn statsdmonitor_bad_arguments_exit_non_zero_with_one_line() {
    for args in [
        &[][..],
        &["localhost"],
        &["localhost", "notaport"],
        &["localhost", "70000"],
        &["localhost", "8135", "--watch", "-1"],
        &["localhost", "8135", "--bogus"],
    ] {
        let out = run_statsdmonitor(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = text(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("statsdmonitor: "), "{err}");
        if args.is_empty() {
            assert!(err.contains("<HOST> <PORT>"), "{err}");
        }
    }
    let help = run_statsdmonitor(&["--help"]);
    assert!(help.status.success());
    assert!(text(&help.stdout).contains("HOST"));
}

const PY_SIMPLE_SERVER: &str = r#"
import sys
from xmlrpc.server import SimpleXMLRPCServer
srv = SimpleXMLRPCServer(("127.0.0.1", 0), logRequests=False)
srv.register_function(lambda: sys.argv[1], "istats")
srv.timeout = 20
print(srv.server_address[1], flush=True)
srv.handle_request()
"#;

/// The original daemon answered with Python's SimpleXMLRPCServer (HTTP/1.0): the new
/// monitor must read that too.
#[test]
fn statsdmonitor_reads_pythons_simple_xmlrpc_server() {
    let mut server = Command::new("python3")
        .arg("-c")
        .arg(PY_SIMPLE_SERVER)
        .arg(STATS_JSON)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start python3: {e}"));
    let stdout = server.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let port = match rx.recv_timeout(support::WAIT) {
        Ok(line) if !line.trim().is_empty() => line.trim().to_owned(),
        other => {
            let _ = server.kill();
            panic!("python XML-RPC server did not start: {other:?}");
        }
    };
    let out = run_statsdmonitor(&["127.0.0.1", &port]);
    let _ = server.kill();
    let _ = server.wait();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), MONITOR_OUTPUT);
}

/// The core's own `istats` JSON (statsd::flush::keys) through the endpoint and the monitor:
/// every SPEC key arrives, sorted, one per line.
#[test]
fn statsdmonitor_shows_every_spec_key_of_the_core_stats() {
    let stats = statsd::flush::StatSources::starting_now(Vec::new());
    let source: IstatsSource = Arc::new(move || stats.istats_json());
    let server = AdminServer::start(AdminLimits::default(), source);
    let out = run_statsdmonitor(&["127.0.0.1", &server.addr.port().to_string()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let keys: Vec<&str> = stdout
        .lines()
        .map(|l| l.split_once(": ").map_or(l, |(k, _)| k))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(keys, sorted, "not sorted:\n{stdout}");
    for key in SPEC_KEYS {
        assert!(keys.contains(&key), "{key} missing:\n{stdout}");
    }
}

#[test]
fn statsdmonitor_does_not_wait_for_close_after_a_complete_answer() {
    // Answers with Content-Length, then keeps the connection open (the canned server
    // thread holds it until the monitor has exited).
    let l = StdListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let handle = std::thread::spawn(move || {
        if let Ok((mut s, _)) = l.accept() {
            read_request(&mut s);
            let body = format!(
                "<methodResponse><params><param><value><string>{}</string></value></param></params></methodResponse>",
                r#"{"b": 2, "a": 1.50}"#.replace('"', "&quot;")
            );
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
            let _ = s.write_all(format!("{head}{body}").as_bytes());
            let _ = done_rx.recv_timeout(support::WAIT);
        }
    });
    let out = run_statsdmonitor(&["--timeout", "10", "127.0.0.1", &port.to_string()]);
    let _ = done_tx.send(());
    handle.join().expect("canned server");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "a: 1.50\nb: 2\n");
}
