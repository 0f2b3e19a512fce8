//! Carbon's plaintext protocol over TCP: resolve, connect and write the
//! backlog in order, each step bounded in time.

use std::io;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::backlog::Backlog;

/// Where carbon listens and how long to wait for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Carbon {
    /// Host name or address.
    pub host: String,
    /// Plaintext port.
    pub port: u16,
    /// Bound on name resolution plus connect.
    pub connect_timeout: Duration,
    /// Bound on each write (and the closing shutdown).
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

/// Connects and writes the backlog in order; each payload written whole is
/// removed at once so a later failure never resends it.
pub async fn send_backlog(carbon: &Carbon, backlog: &mut Backlog) -> Result<usize, PublishError> {
    let (host, port) = (carbon.host.as_str(), carbon.port);
    let addrs: Vec<_> = tokio::time::timeout(
        carbon.connect_timeout,
        tokio::net::lookup_host((host, port)),
    )
    .await
    .map_err(|_| PublishError::Unknown(format!("resolving {host} timed out")))?
    .map_err(|e| PublishError::Unknown(format!("cannot resolve {host}: {e}")))?
    .collect();
    let mut last_error = io::Error::new(io::ErrorKind::NotFound, "no address");
    let mut stream = None;
    for addr in addrs {
        match tokio::time::timeout(carbon.connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                stream = Some(s);
                break;
            }
            Ok(Err(e)) => last_error = e,
            Err(_) => {
                last_error = io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connect timed out after {:?}", carbon.connect_timeout),
                )
            }
        }
    }
    let mut stream = stream.ok_or_else(|| {
        if last_error.kind() == io::ErrorKind::NotFound {
            PublishError::Unknown(format!("{host} has no address"))
        } else {
            PublishError::Socket(last_error)
        }
    })?;
    let mut sent = 0;
    while let Some(payload) = backlog.front() {
        match tokio::time::timeout(carbon.write_timeout, stream.write_all(&payload.data)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(PublishError::Socket(e)),
            Err(_) => {
                return Err(PublishError::Socket(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("write timed out after {:?}", carbon.write_timeout),
                )))
            }
        }
        if let Some(done) = backlog.pop() {
            sent += done.lines;
        }
    }
    // A clean close makes carbon see the end of the last line at once.
    let _ = tokio::time::timeout(carbon.write_timeout, stream.shutdown()).await;
    Ok(sent)
}
