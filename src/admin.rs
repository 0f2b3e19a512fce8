//! The monitoring endpoint (SPEC section 7): XML-RPC over HTTP/1.x on port + 10.
//!
//! Methods: `istats` (no arguments, returns one string: the JSON object of SPEC
//! section 6, produced on demand by an [`IstatsSource`]) and `system.listMethods`.
//! Every path is served (`/`, `/RPC2`, anything), since the original's clients differ.
//!
//! Crate choice: HTTP is [`hyper`] (HTTP/1.0 and 1.1 parsing, keep-alive,
//! `Expect: 100-continue`, automatic 400 on malformed requests, header read
//! timeout); the XML-RPC documents are parsed and written by [`dxr`], a maintained
//! XML-RPC (de)serialiser built on quick-xml. `dxr_server` was not used: its only
//! transport is axum, which adds a large dependency tree and hides the
//! connection-level limits this endpoint needs.
//!
//! Hardening, since this port is reachable by anything that can reach the daemon:
//! - a request body over [`AdminLimits::max_body_bytes`] gets 413 and the connection
//!   is closed, whether announced by `Content-Length` or discovered while reading;
//! - the request head and body must each arrive within
//!   [`AdminLimits::idle_timeout`] (this also closes idle keep-alive connections),
//!   and a response write that makes no progress for that long drops the connection;
//! - at most [`AdminLimits::max_connections`] connections are served at once; extra
//!   ones get a best-effort 503 and are closed at once rather than queued;
//! - XML nesting is bounded before the document reaches the recursive deserialiser,
//!   so a deeply nested body cannot overflow a worker's stack;
//! - a panic in the [`IstatsSource`] becomes an XML-RPC fault, not a dead task.
//!
//! Nothing here ends the daemon: per-connection errors only end that connection, and
//! accept errors (such as running out of file descriptors) are retried after a pause.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use dxr::{Fault, FaultResponse, MethodCall, MethodResponse, Value};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Body, Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, CONNECTION, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Sleep;

/// Produces the istats JSON object text (SPEC section 6 keys) on demand.
///
/// It is called on a runtime worker for every `istats` request, so it must be quick
/// and must not block (read counters, format, return).
pub type IstatsSource = std::sync::Arc<dyn Fn() -> String + Send + Sync>;

/// Resource bounds of the monitoring endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminLimits {
    /// Largest request body accepted; a larger one is answered 413 and the connection closed.
    pub max_body_bytes: usize,
    /// Time allowed for a request head, for its body, and for a stalled response write.
    pub idle_timeout: Duration,
    /// Connections served at once; extra ones are answered 503 and closed.
    pub max_connections: usize,
}

impl Default for AdminLimits {
    fn default() -> Self {
        AdminLimits {
            max_body_bytes: 1024 * 1024,
            idle_timeout: Duration::from_secs(10),
            max_connections: 256,
        }
    }
}

/// Names returned by `system.listMethods`, in that order.
const METHODS: [&str; 2] = ["istats", "system.listMethods"];

/// Fault codes from the widely used "specification for fault code interoperability".
const FAULT_PARSE: i32 = -32700;
const FAULT_NO_METHOD: i32 = -32601;
const FAULT_PARAMS: i32 = -32602;
const FAULT_INTERNAL: i32 = -32603;

/// Deepest element nesting accepted. Our methods take no arguments; 32 still leaves
/// room for clients that send a few nested values, and keeps the recursive
/// deserialiser far from the stack limit.
const MAX_XML_DEPTH: usize = 32;

/// How long in-flight requests may finish after shutdown is signalled.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop cannot spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Largest request head (and read buffer) per connection; an XML-RPC request head is tiny.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Sent, best effort and without waiting, to a connection over the limit.
const BUSY_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n\
Content-Length: 28\r\nConnection: close\r\n\r\ntoo many monitor connections";

/// Serves the monitoring endpoint on `listener` until `shutdown` completes.
///
/// After `shutdown`, no connection is accepted; requests in flight get a short grace
/// period, then every connection is dropped. Per-connection and accept errors never
/// end the loop, so this returns `Ok(())` once shut down.
pub async fn serve(
    listener: TcpListener,
    istats: IstatsSource,
    limits: AdminLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let limits = AdminLimits {
        // Zero would make the endpoint useless; treat it as the smallest useful value.
        max_connections: limits.max_connections.max(1),
        idle_timeout: limits.idle_timeout.max(Duration::from_millis(1)),
        max_body_bytes: limits.max_body_bytes,
    };
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);

    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            // Reap finished connection tasks so the set does not grow without bound.
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => match Arc::clone(&slots).try_acquire_owned() {
                    Ok(permit) => {
                        let istats = Arc::clone(&istats);
                        let stop = stop_rx.clone();
                        tasks.spawn(async move {
                            // Responses are written in one piece; Nagle would only add latency.
                            let _ = stream.set_nodelay(true);
                            serve_connection(stream, istats, limits, stop).await;
                            drop(permit);
                        });
                    }
                    Err(_) => {
                        // Never wait on an excess client: one non-blocking write, then close.
                        let _ = stream.try_write(BUSY_RESPONSE);
                    }
                },
                Err(_) => {
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => {}
                    }
                }
            },
        }
    }

    drop(listener);
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
    Ok(())
}

/// Serves one HTTP/1 connection on any byte stream until the peer is done, exactly
/// as [`serve`] serves each accepted socket. Public so the fuzz target
/// (`fuzz/fuzz_targets/xmlrpc_request.rs`) can drive the real path without sockets.
pub async fn serve_stream<S>(stream: S, istats: IstatsSource, limits: AdminLimits)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // The sender lives until the connection ends, so shutdown never fires.
    let (_never, stop) = watch::channel(false);
    serve_connection(stream, istats, limits, stop).await;
}

/// Runs one HTTP/1 connection to completion, or until shutdown plus grace.
async fn serve_connection<S>(
    stream: S,
    istats: IstatsSource,
    limits: AdminLimits,
    mut stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(WriteDeadline::new(stream, limits.idle_timeout));
    let service = hyper::service::service_fn(move |req| {
        let istats = Arc::clone(&istats);
        async move { Ok::<_, Infallible>(handle(req, istats, limits).await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.idle_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .keep_alive(true);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn.as_mut()).await;
        }
    }
}

/// Answers one HTTP request: reads the body within the limits, then dispatches it.
async fn handle(
    req: Request<Incoming>,
    istats: IstatsSource,
    limits: AdminLimits,
) -> Response<Full<Bytes>> {
    if req.method() != Method::POST {
        let mut resp = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "XML-RPC endpoint: use POST\n",
            false,
        );
        resp.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("POST"));
        return resp;
    }
    // A declared length over the limit is refused before reading a byte of it.
    let declared = req.body().size_hint().lower();
    if usize::try_from(declared).map_or(true, |n| n > limits.max_body_bytes) {
        return plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large\n",
            true,
        );
    }
    let body = Limited::new(req.into_body(), limits.max_body_bytes);
    let bytes = match tokio::time::timeout(limits.idle_timeout, body.collect()).await {
        Err(_elapsed) => {
            return plain(StatusCode::REQUEST_TIMEOUT, "request body too slow\n", true)
        }
        Ok(Err(e)) if e.is::<LengthLimitError>() => {
            return plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large\n",
                true,
            )
        }
        Ok(Err(_)) => return plain(StatusCode::BAD_REQUEST, "cannot read request body\n", true),
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    let xml = dispatch(&bytes, &istats);
    let mut resp = Response::new(Full::new(Bytes::from(xml)));
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    resp
}

/// A small text response; `close` also ends the connection after it.
fn plain(status: StatusCode, text: &'static str, close: bool) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if close {
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

/// Turns a request body into the XML-RPC response document (a result or a fault).
/// Public for the fuzz target; never panics, whatever the bytes.
pub fn dispatch(body: &[u8], istats: &IstatsSource) -> String {
    let Ok(text) = std::str::from_utf8(body) else {
        return fault(FAULT_PARSE, "request is not UTF-8");
    };
    if let Err(reason) = check_xml(text) {
        return fault(
            FAULT_PARSE,
            &format!("request is not an XML-RPC call: {reason}"),
        );
    }
    let Ok(call) = MethodCall::from_xml(text) else {
        return fault(FAULT_PARSE, "request is not an XML-RPC call");
    };
    match call.name.as_ref() {
        "istats" if !call.params.is_empty() => fault(FAULT_PARAMS, "istats takes no arguments"),
        "istats" => match catch_unwind(AssertUnwindSafe(|| istats())) {
            Ok(json) => response(Value::String(xml_safe(json))),
            Err(_) => fault(FAULT_INTERNAL, "internal error while collecting stats"),
        },
        "system.listMethods" => response(Value::Array(
            METHODS
                .iter()
                .map(|m| Value::String((*m).to_owned()))
                .collect(),
        )),
        other => {
            // The name is the client's text: shorten it and keep it printable.
            let name: String = other.chars().take(64).filter(|c| !c.is_control()).collect();
            fault(
                FAULT_NO_METHOD,
                &format!("method \"{name}\" is not supported"),
            )
        }
    }
}

/// Checks that `text` is well-formed enough and nested at most [`MAX_XML_DEPTH`] deep.
///
/// Streaming and iterative, so it is safe on any input; the recursive deserialiser
/// only sees documents that pass.
pub fn check_xml(text: &str) -> Result<(), String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(text);
    let mut depth = 0usize;
    loop {
        match reader.read_event() {
            Ok(Event::Start(_)) => {
                depth += 1;
                if depth > MAX_XML_DEPTH {
                    return Err(format!("nested deeper than {MAX_XML_DEPTH} elements"));
                }
            }
            Ok(Event::End(_)) => depth = depth.saturating_sub(1),
            Ok(Event::Eof) => return Ok(()),
            Ok(_) => {}
            Err(e) => {
                return Err(format!(
                    "malformed XML at byte {}: {e}",
                    reader.error_position()
                ))
            }
        }
    }
}

/// Replaces characters that XML 1.0 cannot carry even escaped, so the response
/// always parses (JSON escapes control characters, but the source is not ours).
fn xml_safe(text: String) -> String {
    let bad = |c: char| matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}');
    if text.contains(bad) {
        text.replace(bad, "\u{fffd}")
    } else {
        text
    }
}

const XML_DECL: &str = "<?xml version=\"1.0\"?>\n";

fn response(value: Value) -> String {
    match (MethodResponse { value }).to_xml() {
        Ok(xml) => format!("{XML_DECL}{xml}"),
        Err(_) => fault(FAULT_INTERNAL, "cannot encode the response"),
    }
}

fn fault(code: i32, text: &str) -> String {
    let doc = FaultResponse {
        fault: Fault::new(code, text.to_owned()),
    };
    match doc.to_xml() {
        Ok(xml) => format!("{XML_DECL}{xml}"),
        // Unreachable in practice (an int and a string always encode); still a valid fault.
        Err(_) => format!(
            "{XML_DECL}<methodResponse><fault><value><struct><member><name>faultCode</name>\
             <value><int>{FAULT_INTERNAL}</int></value></member><member><name>faultString</name>\
             <value><string>internal error</string></value></member></struct></value></fault>\
             </methodResponse>"
        ),
    }
}

/// A stream whose writes fail with `TimedOut` after making no progress for `limit`,
/// so a client that stops reading cannot hold a connection slot forever.
struct WriteDeadline<T> {
    /// The wrapped stream.
    inner: T,
    /// How long one write may stay pending.
    limit: Duration,
    /// Armed when a write first returns pending; cleared on progress.
    stall: Option<Pin<Box<Sleep>>>,
}

impl<T> WriteDeadline<T> {
    fn new(inner: T, limit: Duration) -> Self {
        WriteDeadline {
            inner,
            limit,
            stall: None,
        }
    }

    /// Called when the inner write is pending: pending until the stall limit, then an error.
    fn stalled(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let limit = self.limit;
        let sleep = self
            .stall
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(io::Error::new(
                io::ErrorKind::TimedOut,
                "client stopped reading",
            )),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Maps the inner result of a write-side call, arming or clearing the stall timer.
    fn track<R>(&mut self, cx: &mut Context<'_>, res: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        match res {
            Poll::Pending => self.stalled(cx).map(Err),
            ready => {
                self.stall = None;
                ready
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteDeadline<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.track(cx, res)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.track(cx, res)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.inner).poll_flush(cx);
        this.track(cx, res)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.track(cx, res)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> IstatsSource {
        Arc::new(|| String::from("{\"a\": 1}"))
    }

    #[test]
    fn istats_returns_the_json_string() {
        let call = "<?xml version='1.0'?>\n<methodCall>\n<methodName>istats</methodName>\n<params>\n</params>\n</methodCall>\n";
        let xml = dispatch(call.as_bytes(), &source());
        let resp = MethodResponse::from_xml(&xml).map(|r| r.value);
        assert_eq!(
            resp.ok(),
            Some(Value::String(String::from("{\"a\": 1}"))),
            "{xml}"
        );
    }

    #[test]
    fn list_methods() {
        let call = "<methodCall><methodName>system.listMethods</methodName></methodCall>";
        let xml = dispatch(call.as_bytes(), &source());
        let resp = MethodResponse::from_xml(&xml).map(|r| r.value);
        let want = Value::Array(vec![
            Value::String("istats".into()),
            Value::String("system.listMethods".into()),
        ]);
        assert_eq!(resp.ok(), Some(want), "{xml}");
    }

    fn fault_code(xml: &str) -> Option<i32> {
        FaultResponse::from_xml(xml).ok().map(|f| f.fault.code())
    }

    #[test]
    fn faults() {
        let unknown = "<methodCall><methodName>nope</methodName></methodCall>";
        assert_eq!(
            fault_code(&dispatch(unknown.as_bytes(), &source())),
            Some(FAULT_NO_METHOD)
        );
        let args = "<methodCall><methodName>istats</methodName><params><param><value><int>1</int></value></param></params></methodCall>";
        assert_eq!(
            fault_code(&dispatch(args.as_bytes(), &source())),
            Some(FAULT_PARAMS)
        );
        for garbage in [
            &b"\xff\xfe"[..],
            b"",
            b"hello",
            b"<methodCall>",
            b"<a></b>",
            b"{\"json\": 1}",
        ] {
            assert_eq!(
                fault_code(&dispatch(garbage, &source())),
                Some(FAULT_PARSE),
                "{garbage:?}"
            );
        }
    }

    #[test]
    fn deep_nesting_is_refused_without_recursion() {
        let depth = 200_000;
        let mut doc = String::from("<methodCall><methodName>istats</methodName><params><param>");
        doc.push_str(&"<value><array><data>".repeat(depth));
        doc.push_str(&"</data></array></value>".repeat(depth));
        doc.push_str("</param></params></methodCall>");
        assert_eq!(
            fault_code(&dispatch(doc.as_bytes(), &source())),
            Some(FAULT_PARSE)
        );
    }

    #[test]
    fn panicking_source_gives_a_fault() {
        let bad: IstatsSource = Arc::new(|| panic!("boom"));
        let call = "<methodCall><methodName>istats</methodName></methodCall>";
        assert_eq!(
            fault_code(&dispatch(call.as_bytes(), &bad)),
            Some(FAULT_INTERNAL)
        );
    }

    #[test]
    fn control_characters_are_replaced() {
        assert_eq!(xml_safe(String::from("a\u{1}b\tc")), "a\u{fffd}b\tc");
    }
}
