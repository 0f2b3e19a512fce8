//! `--transports udp,tcp`: which metric listeners run (Etsy's `server`
//! key names one of them per server). Both by default, as before.

use std::fmt;
use std::str::FromStr;

/// The metric listeners to run on the metrics port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transports {
    /// UDP receive workers.
    pub udp: bool,
    /// The TCP listener.
    pub tcp: bool,
}

impl Default for Transports {
    fn default() -> Transports {
        Transports {
            udp: true,
            tcp: true,
        }
    }
}

impl FromStr for Transports {
    type Err = String;

    /// A comma list of `udp` and `tcp`, at least one.
    fn from_str(text: &str) -> Result<Transports, String> {
        let mut found = Transports {
            udp: false,
            tcp: false,
        };
        for part in text.split(',').map(str::trim) {
            match part.to_ascii_lowercase().as_str() {
                "udp" => found.udp = true,
                "tcp" => found.tcp = true,
                _ => return Err(format!("{part:?} is not a transport (udp, tcp)")),
            }
        }
        Ok(found)
    }
}

impl fmt::Display for Transports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match (self.udp, self.tcp) {
            (true, true) => "udp+tcp",
            (true, false) => "udp",
            (false, true) => "tcp",
            (false, false) => "none",
        })
    }
}

/// The flags this module adds to `Cli`: the config file and the listeners.
#[derive(Debug, Clone, clap::Args)]
pub struct LoaderArgs {
    /// Read settings from FILE first: Etsy statsd's config.js (JavaScript object literal) or TOML
    /// with long flag names as keys; flags on the command line win. SIGHUP re-reads it.
    #[arg(long = "config", value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,

    /// Metric listeners to run on --port: udp, tcp or both
    #[arg(long = "transports", value_name = "LIST", default_value = "udp,tcp")]
    pub transports: Transports,
}
