//! The console's TCP side: accepting within the connection bound, reading
//! command lines within the length and idle bounds, writing replies.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{commands, Console, LAST_MESSAGE_TICK};
use crate::config::MgmtLimits;
use crate::net::slots::ConnectionSlots;

/// A partial line is taken as a command once the peer pauses this long.
const PARTIAL_LINE_PAUSE: Duration = Duration::from_millis(100);
/// Pause after a failed `accept` so the loop cannot spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);
/// Written, best effort, to a connection over the limit.
const BUSY: &[u8] = b"ERROR too many mgmt connections\n";
/// A reply is written in pieces of this size, each within the idle timeout.
const WRITE_PIECE: usize = 64 * 1024;
/// Written, best effort, before closing on a line over the limit.
const TOO_LONG: &[u8] = b"ERROR line too long\n";

/// Serves the console on `listener` until `shutdown` is cancelled; then
/// every connection is dropped. Per-connection and accept errors never end
/// the loop.
pub async fn serve(
    listener: TcpListener,
    console: Arc<Console>,
    limits: Arc<ArcSwap<MgmtLimits>>,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let slots = ConnectionSlots::new(limits.load().max_connections.max(1));
    let mut tasks = JoinSet::new();
    let mut tick = tokio::time::interval(LAST_MESSAGE_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            _ = tick.tick() => console.sample_last_message(),
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => match slots.try_acquire(limits.load().max_connections.max(1)) {
                    Ok(permit) => {
                        // SIGHUP may change the bounds; a connection keeps those it began with.
                        let limits = **limits.load();
                        console.stats.accepted.incr();
                        let console = Arc::clone(&console);
                        let stop = shutdown.clone();
                        tasks.spawn(async move {
                            let _ = stream.set_nodelay(true);
                            serve_connection(stream, &console, limits, stop).await;
                            drop(permit);
                        });
                    }
                    Err(_) => {
                        console.stats.refused.incr();
                        // Never wait on an excess client: one non-blocking write, then
                        // close. What it sent already is read first, so the close is
                        // not a reset that could destroy the line in flight.
                        let mut sent = [0u8; 512];
                        let _ = stream.try_read(&mut sent);
                        let _ = stream.try_write(BUSY);
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
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// What ends a connection's wait for input.
enum Input {
    /// Bytes arrived.
    Bytes(usize),
    /// The peer closed (or the socket failed).
    Closed,
    /// Nothing arrived within the wait.
    Quiet,
}

/// One connection: commands in, replies out, until `quit`, the peer
/// closes, a bound is hit or the server stops.
async fn serve_connection(
    mut stream: TcpStream,
    console: &Console,
    limits: MgmtLimits,
    stop: CancellationToken,
) {
    let mut pending: Vec<u8> = Vec::with_capacity(256);
    let mut chunk = vec![0u8; 4096];
    loop {
        while let Some(end) = memchr::memchr(b'\n', &pending) {
            if end > limits.max_line_bytes {
                refuse_long_line(&mut stream, console).await;
                return;
            }
            let line: Vec<u8> = pending.drain(..=end).collect();
            if !run_line(&mut stream, console, &line, limits).await {
                return;
            }
        }
        if pending.len() > limits.max_line_bytes {
            refuse_long_line(&mut stream, console).await;
            return;
        }
        let wait = if pending.is_empty() {
            limits.idle_timeout
        } else {
            PARTIAL_LINE_PAUSE.min(limits.idle_timeout)
        };
        let input = tokio::select! {
            () = stop.cancelled() => return,
            read = tokio::time::timeout(wait, stream.read(&mut chunk)) => match read {
                Ok(Ok(0)) | Ok(Err(_)) => Input::Closed,
                Ok(Ok(n)) => Input::Bytes(n),
                Err(_) => Input::Quiet,
            },
        };
        match input {
            Input::Bytes(n) => pending.extend_from_slice(&chunk[..n]),
            Input::Quiet if pending.is_empty() => {
                console.stats.idle_closed.incr();
                return;
            }
            // A command without its newline, as Etsy takes each read: run it.
            Input::Quiet => {
                let line = std::mem::take(&mut pending);
                if !run_line(&mut stream, console, &line, limits).await {
                    return;
                }
            }
            Input::Closed => {
                if !pending.is_empty() {
                    let line = std::mem::take(&mut pending);
                    let _ = run_line(&mut stream, console, &line, limits).await;
                }
                return;
            }
        }
    }
}

/// Answers one line; false when the connection is to end.
async fn run_line(
    stream: &mut TcpStream,
    console: &Console,
    line: &[u8],
    limits: MgmtLimits,
) -> bool {
    // Etsy reads the socket as 'ascii', which keeps the low 7 bits of each byte.
    let text: String = line.iter().map(|b| char::from(b & 0x7f)).collect();
    if text.trim().is_empty() {
        // Etsy answers an empty read ERROR too; a bare newline is a client
        // keeping the connection alive, and gets the same.
        return write_reply(stream, console, commands::ERROR.as_bytes(), limits).await;
    }
    match console.answer(&text).await {
        Some(reply) => write_reply(stream, console, reply.as_bytes(), limits).await,
        None => {
            let _ = stream.shutdown().await;
            false
        }
    }
}

/// Writes a reply, each piece within the idle timeout (a client reading a
/// long listing slowly is served; one that stops reading is dropped);
/// false when it failed or stalled.
async fn write_reply(
    stream: &mut TcpStream,
    console: &Console,
    reply: &[u8],
    limits: MgmtLimits,
) -> bool {
    for piece in reply.chunks(WRITE_PIECE) {
        match tokio::time::timeout(limits.idle_timeout, stream.write_all(piece)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return false,
            Err(_) => {
                console.stats.idle_closed.incr();
                return false;
            }
        }
    }
    true
}

/// Says why, then closes. What the client sent already is read first
/// (bounded), so the close is not a reset that destroys the message.
async fn refuse_long_line(stream: &mut TcpStream, console: &Console) {
    console.stats.long_lines.incr();
    let _ = stream.try_write(TOO_LONG);
    let mut sink = [0u8; 4096];
    for _ in 0..64 {
        match stream.try_read(&mut sink) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
    let _ = stream.shutdown().await;
}
