//! The flags of `statsd`, as clap parses them: the original's flags keep
//! their exact spelling, short form and default; new flags only add. Values
//! are checked and turned into typed settings in [`super::Config`].

use std::path::PathBuf;

use clap::Parser;

use crate::alert::nsca;
use crate::sink::GraphiteProtocol;
use crate::{aggregate, protocol, render};

use super::delivery::DeliveryArgs;
use super::mgmt::MgmtArgs;

/// The flags of `statsd`. Field docs are the `--help` text.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "statsd",
    version,
    about = "StatsD server: counters, gauges, timers and sets over UDP and TCP, aggregated and flushed to Graphite",
    after_help = "Metrics listen on UDP and TCP at --port; XML-RPC monitoring (istats) on port+10.",
    // As the original's argparse: unambiguous abbreviations of long flags
    // (`--flush 2`), and a repeated flag's last value wins.
    infer_long_args = true,
    args_override_self = true
)]
pub struct Cli {
    /// Alert mode: send an NSCA passive check every --alert-interval seconds
    #[arg(short = 'a', long = "alert")]
    pub alert: bool,

    /// Debug mode: print settings at start, discarded lines with reasons, per-flush internals
    #[arg(short = 'd', long = "debug")]
    pub debug: bool,

    /// No per-flush status lines on stdout (failures still go to stderr)
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,

    /// Address to bind (IPv4 or IPv6 literal or host name); default: every interface, IPv4 and IPv6
    #[arg(short = 'n', long = "name", default_value = "")]
    pub name: String,

    /// With -d: print incoming and rendered metrics whose name contains this text
    #[arg(short = 'm', long = "debug_metric", default_value = "")]
    pub debug_metric: String,

    /// UDP and TCP port for metrics
    #[arg(short = 'p', long = "port", default_value_t = 8125)]
    pub port: u16,

    /// Timer percentile threshold (0 < pct <= 100); several as a comma list or repeated (-t 90,99.9), negative for the top values
    #[arg(short = 't', long = "pct", default_values_t = [render::DEFAULT_PCT], value_delimiter = ',', allow_hyphen_values = true, action = clap::ArgAction::Append)]
    pub pct: Vec<f64>,

    /// Seconds between flushes (fractions allowed)
    #[arg(long = "flush-interval", default_value_t = render::DEFAULT_FLUSH_INTERVAL.as_secs_f64())]
    pub flush_interval: f64,

    /// Carbon host; or several destinations, host[:port[:instance]],... ([v6]:port:instance), spread by --graphite-hashing; `none`: send nowhere
    #[arg(long = "graphite-host", default_value = "localhost")]
    pub graphite_host: String,

    /// Carbon port [default: 2003; 2004 with --graphite-protocol pickle]
    #[arg(long = "graphite-port")]
    pub graphite_port: Option<u16>,

    /// Prefix of the server's own stats
    #[arg(long = "metadata-prefix", default_value = render::DEFAULT_METADATA_PREFIX)]
    pub metadata_prefix: String,

    /// Prefix of counters
    #[arg(long = "counters-prefix", default_value = render::DEFAULT_PREFIX)]
    pub counters_prefix: String,

    /// Prefix of timers
    #[arg(long = "timers-prefix", default_value = render::DEFAULT_TIMERS_PREFIX)]
    pub timers_prefix: String,

    /// Prefix of gauges
    #[arg(long = "gauge-prefix", default_value = render::DEFAULT_PREFIX)]
    pub gauge_prefix: String,

    /// Prefix of sets
    #[arg(long = "sets-prefix", default_value = render::DEFAULT_PREFIX)]
    pub sets_prefix: String,

    /// Seconds allowed to resolve and connect to carbon
    #[arg(long = "graphite-connect-timeout", default_value_t = 5.0)]
    pub graphite_connect_timeout: f64,

    /// Seconds allowed for each write to carbon
    #[arg(long = "graphite-write-timeout", default_value_t = 30.0)]
    pub graphite_write_timeout: f64,

    /// Write the Graphite lines to stdout instead of sending them to carbon
    #[arg(long = "console")]
    pub console: bool,

    /// XML-RPC monitoring port [default: port+10; 0 with -p 0]
    #[arg(long = "monitor-port")]
    pub monitor_port: Option<u16>,

    /// Turn the XML-RPC monitoring endpoint off
    #[arg(long = "no-monitor")]
    pub no_monitor: bool,

    /// UDP receive workers, each with its own socket and shard [default: number of cores]
    #[arg(long = "workers")]
    pub workers: Option<usize>,

    /// Receive buffer asked of the kernel for each UDP socket, in bytes
    #[arg(long = "udp-buffer", default_value_t = 16 * 1024 * 1024)]
    pub udp_buffer: usize,

    /// Longest accepted line, in bytes; longer lines are discarded and counted
    #[arg(long = "max-line-bytes", default_value_t = protocol::DEFAULT_MAX_LINE_BYTES)]
    pub max_line_bytes: usize,

    /// Distinct series accepted per flush interval (0 = unlimited); beyond it new names are dropped and counted
    #[arg(long = "max-names", default_value_t = aggregate::DEFAULT_MAX_NAMES)]
    pub max_names: usize,

    /// Seconds a gauge not updated is remembered for later deltas (0 = forever)
    #[arg(long = "gauge-ttl", default_value_t = 86400.0)]
    pub gauge_ttl: f64,

    /// Timer samples kept per series per interval for percentiles (beyond: uniform reservoir)
    #[arg(long = "max-timer-samples", default_value_t = aggregate::DEFAULT_MAX_TIMER_SAMPLES)]
    pub max_timer_samples: usize,

    /// Distinct members kept per set per interval; beyond, new members are refused and counted
    #[arg(long = "max-set-members", default_value_t = aggregate::DEFAULT_MAX_SET_MEMBERS)]
    pub max_set_members: usize,

    /// TCP connections served at once; more are refused and counted
    #[arg(long = "tcp-max-connections", default_value_t = 1024)]
    pub tcp_max_connections: usize,

    /// Seconds a TCP connection may stay silent before it is closed
    #[arg(long = "tcp-idle-timeout", default_value_t = 300.0)]
    pub tcp_idle_timeout: f64,

    /// Seconds a line may take to arrive once begun (a slow sender is closed)
    #[arg(long = "tcp-line-timeout", default_value_t = 30.0)]
    pub tcp_line_timeout: f64,

    /// Bytes of unended TCP lines held for all connections together; beyond, the line is dropped and counted
    #[arg(long = "tcp-buffer-bytes", default_value_t = 32 * 1024 * 1024)]
    pub tcp_buffer_bytes: usize,

    /// Bytes of unsent Graphite lines kept while carbon is unreachable; the oldest beyond it are dropped and counted
    #[arg(long = "backlog-max-bytes", default_value_t = 64 * 1024 * 1024)]
    pub backlog_max_bytes: usize,

    /// Lines of unsent Graphite output kept while carbon is unreachable (0 = only the byte bound)
    #[arg(long = "backlog-max-lines", default_value_t = 0)]
    pub backlog_max_lines: usize,

    /// Seconds allowed for the final publish at shutdown before unsent lines are reported lost
    #[arg(long = "shutdown-timeout", default_value_t = 10.0)]
    pub shutdown_timeout: f64,

    /// Seconds between NSCA checks (with -a)
    #[arg(long = "alert-interval", default_value_t = 60.0)]
    pub alert_interval: f64,

    /// NSCA daemon host
    #[arg(long = "nsca-host", default_value = "localhost")]
    pub nsca_host: String,

    /// NSCA daemon port
    #[arg(long = "nsca-port", default_value_t = nsca::DEFAULT_PORT)]
    pub nsca_port: u16,

    /// Host name reported to Nagios [default: this machine's name]
    #[arg(long = "nsca-hostname")]
    pub nsca_hostname: Option<String>,

    /// Service name reported to Nagios [default: the metadata prefix]
    #[arg(long = "nsca-service")]
    pub nsca_service: Option<String>,

    /// A send_nsca.cfg-style file with password= and encryption_method=
    #[arg(long = "nsca-config")]
    pub nsca_config: Option<PathBuf>,

    /// NSCA password (overrides --nsca-config)
    #[arg(long = "nsca-password")]
    pub nsca_password: Option<String>,

    /// NSCA encryption method number: 0 none, 1 XOR, 2 DES, 3 3DES, 14 RIJNDAEL-128 (overrides --nsca-config)
    #[arg(long = "nsca-encryption")]
    pub nsca_encryption: Option<String>,

    /// Send the 720-byte NSCA 2.7 packet instead of the 4304-byte 2.9 one
    #[arg(long = "nsca-legacy-packet")]
    pub nsca_legacy_packet: bool,

    /// Gauge values with a sign (+5, -5) set the gauge, as the original did, instead of adding to it
    #[arg(long = "signed-gauges-set")]
    pub signed_gauges_set: bool,

    // --- pickle and unix socket ---
    /// Carbon protocol: plaintext lines (port 2003) or pickle (port 2004)
    #[arg(long = "graphite-protocol", value_enum, default_value_t = GraphiteProtocol::Plaintext)]
    pub graphite_protocol: GraphiteProtocol,

    /// Unix datagram socket to receive metrics on too (DogStatsD's socket_path); created at start, removed at exit
    #[arg(long = "unix-socket")]
    pub unix_socket: Option<PathBuf>,

    // --- several carbon destinations (config/ring.rs) ---
    #[command(flatten)]
    pub ring: super::ring::RingArgs,

    /// Permissions of the --unix-socket file, in octal (e.g. 660) [default: as the umask leaves them]
    #[arg(long = "unix-socket-mode")]
    pub unix_socket_mode: Option<String>,

    // --- Etsy's management console ---
    #[command(flatten)]
    pub mgmt: MgmtArgs,
    /// `--proxy` and its flags (src/config/proxy.rs).
    #[command(flatten)]
    pub proxy: super::proxy::ProxyArgs,
    #[command(flatten)]
    pub udp_spread: super::udp_spread::UdpSpreadArgs,
    /// Etsy statsd's outputs (src/config/etsy.rs).
    #[command(flatten)]
    pub etsy: super::etsy::EtsyArgs,

    /// `--config FILE` and `--transports`.
    #[command(flatten)]
    pub loader: super::LoaderArgs,

    // --- pipelined delivery to carbon ---
    #[command(flatten)]
    pub delivery: DeliveryArgs,
}
