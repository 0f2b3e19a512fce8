//! Flags of Etsy's management console (`--mgmt-*`), and their checked form.

use std::time::Duration;

/// Etsy's default `mgmt_port`, used under `--etsy`.
pub const ETSY_MGMT_PORT: u16 = 8126;

/// The management console's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct MgmtArgs {
    /// Etsy's TCP management console (stats, counters, health, ...) on this port [default: off; 8126 with --etsy]
    #[arg(long = "mgmt-port")]
    pub mgmt_port: Option<u16>,

    /// Address of the management console [default: every interface]
    #[arg(long = "mgmt-address", default_value = "")]
    pub mgmt_address: String,

    /// Management connections served at once; more are refused and counted
    #[arg(long = "mgmt-max-connections", default_value_t = 64)]
    pub mgmt_max_connections: usize,

    /// Seconds a management connection may stay silent (or stall a reply) before it is closed
    #[arg(long = "mgmt-idle-timeout", default_value_t = 300.0)]
    pub mgmt_idle_timeout: f64,

    /// Longest management command line, in bytes; a longer one closes the connection
    #[arg(long = "mgmt-max-line-bytes", default_value_t = 4096)]
    pub mgmt_max_line_bytes: usize,
}

impl MgmtArgs {
    /// The port to listen on: `--mgmt-port`, else 8126 when `etsy` (an Etsy
    /// config or `--etsy`), else none.
    pub fn port(&self, etsy: bool) -> Option<u16> {
        self.mgmt_port.or(etsy.then_some(ETSY_MGMT_PORT))
    }

    /// The bounds, checked; the error is one line.
    pub fn limits(&self) -> Result<MgmtLimits, String> {
        let idle = self.mgmt_idle_timeout;
        if !(idle.is_finite() && (0.001..=1e8).contains(&idle)) {
            return Err(format!(
                "--mgmt-idle-timeout must be between 0.001 and 100000000 seconds, not {idle}"
            ));
        }
        if !(1..=1_000_000).contains(&self.mgmt_max_connections) {
            return Err(format!(
                "--mgmt-max-connections must be between 1 and 1000000, not {}",
                self.mgmt_max_connections
            ));
        }
        if !(16..=1 << 20).contains(&self.mgmt_max_line_bytes) {
            return Err(format!(
                "--mgmt-max-line-bytes must be between 16 and 1048576, not {}",
                self.mgmt_max_line_bytes
            ));
        }
        Ok(MgmtLimits {
            max_connections: self.mgmt_max_connections,
            idle_timeout: Duration::from_secs_f64(idle),
            max_line_bytes: self.mgmt_max_line_bytes,
        })
    }
}

/// Resource bounds of the management console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MgmtLimits {
    /// Connections served at once; extra ones get one `ERROR` line and are closed.
    pub max_connections: usize,
    /// Silence (or a stalled reply) allowed before a connection is closed.
    pub idle_timeout: Duration,
    /// Longest command line; a longer one gets `ERROR` and the connection is closed.
    pub max_line_bytes: usize,
}

impl Default for MgmtLimits {
    fn default() -> Self {
        MgmtLimits {
            max_connections: 64,
            idle_timeout: Duration::from_secs(300),
            max_line_bytes: 4096,
        }
    }
}
