//! [`NscaClient`]: the settings of one NSCA server and the network exchange
//! that delivers a check to it.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use super::packet::{build_packet, padding_fill, parse_init_packet, INIT_PACKET_LEN, IV_LEN};
use super::{encrypt, Encryption, NscaError, SendNscaConfig};
use crate::alert::CheckStatus;

/// NSCA's well-known TCP port.
pub const DEFAULT_PORT: u16 = 5667;
/// send_nsca's default socket timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and how to send passive checks.
#[derive(Debug, Clone)]
pub struct NscaClient {
    /// NSCA server host name or IP literal.
    pub host: String,
    /// NSCA server TCP port (5667 by default).
    pub port: u16,
    /// Shared secret; empty for none.
    pub password: Vec<u8>,
    /// Must match the server's `decryption_method`.
    pub encryption: Encryption,
    /// Send 720-byte NSCA 2.7 packets instead of 4304-byte ones.
    pub legacy_packet: bool,
    /// Bound on one whole exchange: connect, init packet, send.
    pub timeout: Duration,
}

impl NscaClient {
    /// A client with send_nsca's defaults: XOR, no password, 10 s timeout.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        NscaClient {
            host: host.into(),
            port,
            password: Vec::new(),
            encryption: Encryption::Xor,
            legacy_packet: false,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Applies what a `send_nsca.cfg` sets, keeping the rest.
    pub fn with_config(mut self, cfg: &SendNscaConfig) -> Self {
        if let Some(p) = &cfg.password {
            self.password = p.clone();
        }
        if let Some(e) = cfg.encryption {
            self.encryption = e;
        }
        if let Some(l) = cfg.legacy_packet {
            self.legacy_packet = l;
        }
        self
    }

    /// Builds and encrypts the data packet answering an init packet. Pure.
    #[allow(clippy::too_many_arguments)] // the packet's fields, one argument each
    pub fn seal(
        &self,
        iv: &[u8; IV_LEN],
        timestamp: u32,
        host_name: &str,
        service: &str,
        return_code: i16,
        output: &str,
        fill: &mut impl FnMut() -> u8,
    ) -> Vec<u8> {
        let mut p = build_packet(
            timestamp,
            return_code,
            host_name,
            service,
            output,
            self.legacy_packet,
            fill,
        );
        encrypt(&mut p, iv, &self.password, self.encryption);
        p
    }

    /// Sends one passive service check; the whole exchange is bounded by `timeout`.
    pub async fn send_check(
        &self,
        host_name: &str,
        service: &str,
        code: CheckStatus,
        output: &str,
    ) -> Result<(), NscaError> {
        let addr = format!("{}:{}", self.host, self.port);
        let deadline = Instant::now() + self.timeout;
        let timed_out = |stage| NscaError::Timeout {
            addr: addr.clone(),
            stage,
            after: self.timeout,
        };
        let io_err = |stage, source| NscaError::Io {
            addr: addr.clone(),
            stage,
            source,
        };

        let mut stream = timeout_at(
            deadline,
            TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| timed_out("connect"))?
        .map_err(|e| io_err("connect", e))?;

        let mut init = [0u8; INIT_PACKET_LEN];
        timeout_at(deadline, stream.read_exact(&mut init))
            .await
            .map_err(|_| timed_out("read init packet"))?
            .map_err(|e| io_err("read init packet", e))?;
        let (iv, timestamp) = parse_init_packet(&init);

        let packet = self.seal(
            &iv,
            timestamp,
            host_name,
            service,
            code as i16,
            output,
            &mut padding_fill(),
        );
        // shutdown() sends FIN: a 2.7-style (short) packet is only recognised by
        // the server when the client closes its side right after it.
        timeout_at(deadline, async {
            stream.write_all(&packet).await?;
            stream.shutdown().await
        })
        .await
        .map_err(|_| timed_out("send check"))?
        .map_err(|e| io_err("send check", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_overrides_only_what_it_sets() {
        let cfg = SendNscaConfig {
            encryption: Some(Encryption::Des),
            ..SendNscaConfig::default()
        };
        let mut c = NscaClient::new("nagios", DEFAULT_PORT);
        c.password = b"kept".to_vec();
        let c = c.with_config(&cfg);
        assert_eq!(c.encryption, Encryption::Des);
        assert_eq!(c.password, b"kept");
        assert!(!c.legacy_packet);
        assert_eq!(c.timeout, DEFAULT_TIMEOUT);
    }
}
