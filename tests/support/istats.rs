//! The one `istats` fetcher: a real XML-RPC call (`POST`, `text/xml`,
//! `<methodCall>`) over a loopback TCP connection, the answer parsed as an
//! XML-RPC `<methodResponse>` (dxr, so every XML escape is undone as an
//! XML-RPC client would) whose string is the JSON object. No Python, so it is
//! cheap enough to poll. Tests that check compatibility with Python's
//! `xmlrpc.client`, the reference client SPEC section 7 names, run it
//! themselves (admin_xmlrpc.rs, monitor_blackbox.rs).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::WAIT;

/// The `istats` call, as xmlrpc.client sends it.
pub const CALL: &str = "<?xml version=\"1.0\"?><methodCall><methodName>istats</methodName><params></params></methodCall>";

/// Bound on one call: connect, send, answer.
const CALL_BOUND: Duration = Duration::from_secs(5);

/// An HTTP/1.1 request carrying [`CALL`] to `path`; with `keep_alive` false
/// it asks the server to close after answering.
pub fn request(path: &str, keep_alive: bool) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n{}\r\n{CALL}",
        CALL.len(),
        if keep_alive { "" } else { "Connection: close\r\n" },
    )
}

/// The string an XML-RPC `<methodResponse>` document returns; an error for
/// a fault, a non-string value or a document that is not a response.
pub fn response_string(xml: &str) -> Result<String, String> {
    match dxr::MethodResponse::from_xml(xml).map(|r| r.value) {
        Ok(dxr::Value::String(s)) => Ok(s),
        other => Err(format!("not an istats answer: {other:?} in {xml}")),
    }
}

/// Calls `istats` once on `addr` (path `/RPC2`) and returns the JSON object.
/// An error while the server does not answer (not started, stopped) or
/// answers something else.
pub fn fetch(addr: SocketAddr) -> Result<serde_json::Value, String> {
    let mut stream =
        TcpStream::connect_timeout(&addr, CALL_BOUND).map_err(|e| format!("connect: {e}"))?;
    stream.set_read_timeout(Some(CALL_BOUND)).ok();
    stream.set_write_timeout(Some(CALL_BOUND)).ok();
    stream
        .write_all(request("/RPC2", false).as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .map_err(|e| format!("read: {e}"))?;
    let answer = String::from_utf8(answer).map_err(|e| format!("answer not UTF-8: {e}"))?;
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("not an HTTP answer: {answer:?}"))?;
    if !head.starts_with("HTTP/1.1 200 ") {
        return Err(format!("HTTP status is not 200: {head:?}"));
    }
    let json = response_string(body)?;
    match serde_json::from_str(&json) {
        Ok(value @ serde_json::Value::Object(_)) => Ok(value),
        other => Err(format!(
            "istats is not a JSON object: {other:?} from {json:?}"
        )),
    }
}

/// Polls `istats` on `addr` until `check` holds; panics with the last
/// answer (or error) after [`WAIT`].
pub fn poll(addr: SocketAddr, check: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let last = match fetch(addr) {
            Ok(stats) if check(&stats) => return stats,
            Ok(stats) => stats.to_string(),
            Err(e) => e,
        };
        assert!(
            Instant::now() < deadline,
            "istats on {addr} never matched within {WAIT:?}; last: {last}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// An integer-valued key of an `istats` answer (0 when absent).
pub fn stat(stats: &serde_json::Value, key: &str) -> u64 {
    stats[key].as_f64().unwrap_or(0.0) as u64
}
