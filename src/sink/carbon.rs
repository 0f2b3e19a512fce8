//! Carbon's plaintext (or pickle) protocol over TCP, with delivery confirmed: one
//! connection per attempt; write every payload in order, shut down the
//! write side, then wait for carbon's orderly close (the wait is returned
//! apart, so the publisher may start the next attempt meanwhile). Carbon closes only
//! after reading to the end, so the close proves it read every line; a
//! reset or a timeout before it means nothing of the attempt counts as
//! delivered (resending is harmless: a `path value timestamp` lands in the
//! same whisper slot, so delivery is at-least-once).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{pickle, Confirmation, Payload};

/// Which of carbon's receivers the lines go to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphiteProtocol {
    /// `path value timestamp` lines (carbon's line receiver, port 2003).
    #[default]
    Plaintext,
    /// Length-prefixed pickles (carbon's pickle receiver, port 2004).
    Pickle,
}

impl GraphiteProtocol {
    /// Carbon's usual port for this protocol.
    pub fn default_port(self) -> u16 {
        match self {
            GraphiteProtocol::Plaintext => 2003,
            GraphiteProtocol::Pickle => 2004,
        }
    }
}

/// Where carbon listens and how long to wait for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Carbon {
    /// Host name or address.
    pub host: String,
    /// Port of the receiver `protocol` speaks to.
    pub port: u16,
    /// Plaintext or pickle; the backlog keeps plaintext either way.
    pub protocol: GraphiteProtocol,
    /// Bound on name resolution plus connect.
    pub connect_timeout: Duration,
    /// Bound on each write, and on the wait for carbon's close.
    pub write_timeout: Duration,
}

/// Why a publish failed, as SPEC section 6 counts it.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Connect, write or close failed or timed out.
    #[error("{0}")]
    Socket(io::Error),
    /// Anything else (the carbon host name does not resolve, ...).
    #[error("{0}")]
    Unknown(String),
}

fn timed_out(what: &str, after: Duration) -> PublishError {
    PublishError::Socket(io::Error::new(
        io::ErrorKind::TimedOut,
        format!("{what} timed out after {after:?}"),
    ))
}

/// Resolves and connects, trying each address within the connect bound.
async fn connect(carbon: &Carbon) -> Result<TcpStream, PublishError> {
    let (host, port) = (carbon.host.as_str(), carbon.port);
    let addrs: Vec<_> = tokio::time::timeout(
        carbon.connect_timeout,
        tokio::net::lookup_host((host, port)),
    )
    .await
    .map_err(|_| PublishError::Unknown(format!("resolving {host} timed out")))?
    .map_err(|e| PublishError::Unknown(format!("cannot resolve {host}: {e}")))?
    .collect();
    let mut last_error = None;
    for addr in addrs {
        match tokio::time::timeout(carbon.connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) => last_error = Some(PublishError::Socket(e)),
            Err(_) => last_error = Some(timed_out("connect", carbon.connect_timeout)),
        }
    }
    Err(last_error.unwrap_or_else(|| PublishError::Unknown(format!("{host} has no address"))))
}

/// Most bytes of an attempt left in our send buffer, not yet sent, when its
/// writes complete: "written" then means carbon's side holds the batch (but
/// for this much), so attempts pipelined behind a slow carbon do not park
/// whole flushes in kernel buffers out of the backlog's bounds' reach.
const NOT_SENT_LOW_WATER: libc::c_int = 16 * 1024;

/// Sets [`NOT_SENT_LOW_WATER`]; where the kernel lacks it, writes complete
/// into the send buffer as usual.
fn limit_not_sent(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let value = NOT_SENT_LOW_WATER;
    // SAFETY: a valid socket fd (borrowed from `stream` for the call), and
    // a pointer to a c_int with its exact length, as TCP_NOTSENT_LOWAT takes.
    let _ = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_NOTSENT_LOWAT,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
}

/// Writes `batch` in order and shuts down the write side; returns the wait
/// for carbon's close (bounded by the write timeout), Ok only once it came.
pub async fn send(carbon: &Carbon, batch: &[Arc<Payload>]) -> Result<Confirmation, PublishError> {
    let mut stream = connect(carbon).await?;
    limit_not_sent(&stream);
    let bound = carbon.write_timeout;
    for payload in batch {
        // Pickle is made per attempt from the lines the backlog keeps.
        let pickled;
        let bytes = match carbon.protocol {
            GraphiteProtocol::Plaintext => &payload.data,
            GraphiteProtocol::Pickle => {
                pickled = pickle::encode(&payload.data, pickle::MAX_FRAME).data;
                &pickled
            }
        };
        match tokio::time::timeout(bound, stream.write_all(bytes)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(PublishError::Socket(e)),
            Err(_) => return Err(timed_out("write", bound)),
        }
    }
    match tokio::time::timeout(bound, stream.shutdown()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(PublishError::Socket(e)),
        Err(_) => return Err(timed_out("closing the write side", bound)),
    }
    Ok(Box::pin(confirmed(stream, bound)))
}

/// Waits for carbon's orderly close, which proves it read every line.
async fn confirmed(mut stream: TcpStream, bound: Duration) -> Result<(), PublishError> {
    // Carbon sends nothing on the plaintext or pickle port; whatever comes is skipped.
    let mut sink = [0u8; 512];
    let closed = tokio::time::timeout(bound, async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
    })
    .await;
    match closed {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(PublishError::Socket(io::Error::new(
            e.kind(),
            format!("carbon did not confirm the lines (closed with {e})"),
        ))),
        Err(_) => Err(timed_out("waiting for carbon to close", bound)),
    }
}
