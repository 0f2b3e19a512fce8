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
//!
//! Layout: this file holds the listener and the HTTP side with its limits;
//! `xmlrpc.rs` the pure body-to-document part; `write_deadline.rs` the stalled-write
//! guard.

mod write_deadline;
mod xmlrpc;

use std::convert::Infallible;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Body, Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, CONNECTION, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use write_deadline::WriteDeadline;
pub use xmlrpc::{check_xml, dispatch};

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

/// How long in-flight requests may finish after shutdown is signalled.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop cannot spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Largest request head (and read buffer) per connection; an XML-RPC request head is tiny.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Sent, best effort and without waiting, to a connection over the limit.
const BUSY_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n\
Content-Length: 28\r\nConnection: close\r\n\r\ntoo many monitor connections";

/// Serves the monitoring endpoint on `listener` until `shutdown` is cancelled.
///
/// After that, no connection is accepted; requests in flight get a short grace
/// period, then every connection is dropped. Per-connection and accept errors never
/// end the loop, so this returns `Ok(())` once shut down.
pub async fn serve(
    listener: TcpListener,
    istats: IstatsSource,
    limits: AdminLimits,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let limits = AdminLimits {
        // Zero would make the endpoint useless; treat it as the smallest useful value.
        max_connections: limits.max_connections.max(1),
        idle_timeout: limits.idle_timeout.max(Duration::from_millis(1)),
        max_body_bytes: limits.max_body_bytes,
    };
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    // Connections watch a child: the caller's cancel reaches them at once, and ours
    // below (should the loop ever end another way) never reaches the caller's tasks.
    let stop_connections = shutdown.child_token();
    let mut tasks = JoinSet::new();

    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            // Reap finished connection tasks so the set does not grow without bound.
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => match Arc::clone(&slots).try_acquire_owned() {
                    Ok(permit) => {
                        let istats = Arc::clone(&istats);
                        let stop = stop_connections.clone();
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
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => {}
                    }
                }
            },
        }
    }

    drop(listener);
    stop_connections.cancel();
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
    // No one else holds this token, so it is never cancelled.
    serve_connection(stream, istats, limits, CancellationToken::new()).await;
}

/// Runs one HTTP/1 connection to completion, or until shutdown plus grace.
async fn serve_connection<S>(
    stream: S,
    istats: IstatsSource,
    limits: AdminLimits,
    stop: CancellationToken,
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
        () = stop.cancelled() => {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Cancelling the token ends `serve` and closes the listener, even with a
    /// connection open.
    #[tokio::test]
    async fn cancel_ends_serve_and_closes_the_listener() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let istats: IstatsSource = Arc::new(String::new);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(serve(
            listener,
            istats,
            AdminLimits::default(),
            shutdown.clone(),
        ));
        let _open = tokio::net::TcpStream::connect(addr).await.expect("connect");
        shutdown.cancel();
        let ended = tokio::time::timeout(SHUTDOWN_GRACE * 5, task).await;
        assert!(matches!(ended, Ok(Ok(Ok(())))), "{ended:?}");
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }
}
