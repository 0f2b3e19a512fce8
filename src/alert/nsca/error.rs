//! The one error type of the NSCA client, from configuration to the network.

use std::time::Duration;

/// Everything that can go wrong configuring or sending a check.
#[derive(Debug, thiserror::Error)]
pub enum NscaError {
    /// An encryption method we do not implement (or that does not exist).
    #[error(
        "unsupported NSCA encryption method {0:?} (supported: 0/none, 1/xor, 2/des, 3/3des, 14/rijndael-128)"
    )]
    UnsupportedEncryption(String),
    /// A `send_nsca.cfg` line we cannot accept.
    #[error("send_nsca config line {line}: {reason}")]
    Config {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The config file could not be read.
    #[error("reading send_nsca config {path}: {source}")]
    ConfigFile {
        /// The file's path as given.
        path: String,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A network step failed.
    #[error("NSCA server {addr}: {stage}: {source}")]
    Io {
        /// `host:port` of the NSCA server.
        addr: String,
        /// Which step: connect, read init packet, send check.
        stage: &'static str,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The exchange did not finish within the client's timeout.
    #[error("NSCA server {addr}: {stage}: timed out after {after:?}")]
    Timeout {
        /// `host:port` of the NSCA server.
        addr: String,
        /// The step that was running when time ran out.
        stage: &'static str,
        /// The client's timeout for the whole exchange.
        after: Duration,
    },
}
