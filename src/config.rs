//! Command-line flags -> [`Config`]. The original's flags keep their exact
//! spelling, short form and default; new flags only add.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::aggregate::Limits;
use crate::render::RenderConfig;

/// The flags of `statsd`. Field docs are the `--help` text.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "statsd",
    version,
    about = "StatsD server: counters, gauges, timers and sets over UDP and TCP, aggregated and flushed to Graphite",
    after_help = "Metrics listen on UDP and TCP at --port; XML-RPC monitoring (istats) on port+10."
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

    /// Timer percentile threshold (0 < pct <= 100)
    #[arg(short = 't', long = "pct", default_value_t = 90.0)]
    pub pct: f64,

    /// Seconds between flushes (fractions allowed)
    #[arg(long = "flush-interval", default_value_t = 10.0)]
    pub flush_interval: f64,

    /// Carbon host
    #[arg(long = "graphite-host", default_value = "localhost")]
    pub graphite_host: String,

    /// Carbon plaintext port
    #[arg(long = "graphite-port", default_value_t = 2003)]
    pub graphite_port: u16,

    /// Prefix of the server's own stats
    #[arg(long = "metadata-prefix", default_value = "statsd")]
    pub metadata_prefix: String,

    /// Prefix of counters
    #[arg(long = "counters-prefix", default_value = "stats")]
    pub counters_prefix: String,

    /// Prefix of timers
    #[arg(long = "timers-prefix", default_value = "stats.timers")]
    pub timers_prefix: String,

    /// Prefix of gauges
    #[arg(long = "gauge-prefix", default_value = "stats")]
    pub gauge_prefix: String,

    /// Prefix of sets
    #[arg(long = "sets-prefix", default_value = "stats")]
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
    #[arg(long = "max-line-bytes", default_value_t = 64 * 1024)]
    pub max_line_bytes: usize,

    /// Distinct series accepted per flush interval (0 = unlimited); beyond it new names are dropped and counted
    #[arg(long = "max-names", default_value_t = 1_000_000)]
    pub max_names: usize,

    /// Seconds a gauge not updated is remembered for later deltas (0 = forever)
    #[arg(long = "gauge-ttl", default_value_t = 86400.0)]
    pub gauge_ttl: f64,

    /// Timer samples kept per series per interval for percentiles (beyond: uniform reservoir)
    #[arg(long = "max-timer-samples", default_value_t = 10_000)]
    pub max_timer_samples: usize,

    /// TCP connections served at once; more are refused and counted
    #[arg(long = "tcp-max-connections", default_value_t = 1024)]
    pub tcp_max_connections: usize,

    /// Seconds a TCP connection may stay silent before it is closed
    #[arg(long = "tcp-idle-timeout", default_value_t = 300.0)]
    pub tcp_idle_timeout: f64,

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
    #[arg(long = "nsca-port", default_value_t = 5667)]
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
}

/// Validated settings the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// The flags as given.
    pub cli: Cli,
    /// Paths, prefixes and timer maths for the output.
    pub render: RenderConfig,
    /// Bounds on what one interval may hold.
    pub limits: Limits,
    /// Time between flushes.
    pub flush_interval: Duration,
    /// Receive workers (UDP sockets and shards).
    pub workers: usize,
}

fn seconds(name: &str, value: f64) -> Result<Duration, String> {
    if value.is_finite() && value > 0.0 && value < 1e9 {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(format!(
            "{name} must be a positive number of seconds, not {value}"
        ))
    }
}

fn check_prefix(name: &str, prefix: &str) -> Result<(), String> {
    let clean = crate::protocol::clean_name(prefix);
    if clean != prefix || prefix.starts_with('.') || prefix.ends_with('.') {
        return Err(format!(
            "{name} {prefix:?} may hold only A-Z a-z 0-9 _ - . and must not start or end with '.'"
        ));
    }
    Ok(())
}

impl Config {
    /// Checks the flags and derives the settings; the error is one line.
    pub fn from_cli(cli: Cli) -> Result<Config, String> {
        if !(cli.pct > 0.0 && cli.pct <= 100.0) {
            return Err(format!("--pct must be in (0, 100], not {}", cli.pct));
        }
        let flush_interval = seconds("--flush-interval", cli.flush_interval)?;
        seconds("--tcp-idle-timeout", cli.tcp_idle_timeout)?;
        seconds("--graphite-connect-timeout", cli.graphite_connect_timeout)?;
        seconds("--graphite-write-timeout", cli.graphite_write_timeout)?;
        seconds("--shutdown-timeout", cli.shutdown_timeout)?;
        seconds("--alert-interval", cli.alert_interval)?;
        if !(cli.gauge_ttl.is_finite() && cli.gauge_ttl >= 0.0) {
            return Err(format!(
                "--gauge-ttl must be 0 or a positive number of seconds, not {}",
                cli.gauge_ttl
            ));
        }
        for (name, prefix) in [
            ("--metadata-prefix", &cli.metadata_prefix),
            ("--counters-prefix", &cli.counters_prefix),
            ("--timers-prefix", &cli.timers_prefix),
            ("--gauge-prefix", &cli.gauge_prefix),
            ("--sets-prefix", &cli.sets_prefix),
        ] {
            check_prefix(name, prefix)?;
        }
        if cli.graphite_host.is_empty() {
            return Err("--graphite-host must not be empty".into());
        }
        if let Some(method) = &cli.nsca_encryption {
            // Checked even without -a: a bad value is a bad flag.
            method
                .parse::<crate::alert::Encryption>()
                .map_err(|e| format!("--nsca-encryption: {e}"))?;
        }
        if cli.max_line_bytes == 0 {
            return Err("--max-line-bytes must be at least 1".into());
        }
        if cli.tcp_max_connections == 0 {
            return Err("--tcp-max-connections must be at least 1".into());
        }
        let workers = match cli.workers {
            Some(0) => return Err("--workers must be at least 1".into()),
            Some(n) if n > 256 => return Err(format!("--workers must be at most 256, not {n}")),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let render = RenderConfig {
            counters_prefix: cli.counters_prefix.clone(),
            gauge_prefix: cli.gauge_prefix.clone(),
            timers_prefix: cli.timers_prefix.clone(),
            sets_prefix: cli.sets_prefix.clone(),
            metadata_prefix: cli.metadata_prefix.clone(),
            pct: cli.pct,
            flush_interval: cli.flush_interval,
        };
        let limits = Limits {
            max_line_bytes: cli.max_line_bytes,
            max_names: cli.max_names,
            max_timer_samples: cli.max_timer_samples.max(1),
        };
        Ok(Config {
            cli,
            render,
            limits,
            flush_interval,
            workers,
        })
    }

    /// The XML-RPC port: `--monitor-port`, else port+10 (0 when port is 0).
    pub fn monitor_port(&self) -> Option<u16> {
        if self.cli.no_monitor {
            return None;
        }
        Some(match self.cli.monitor_port {
            Some(port) => port,
            None if self.cli.port == 0 => 0,
            None => self.cli.port.saturating_add(10),
        })
    }

    /// Seconds-valued flags as durations (validated in `from_cli`).
    pub fn tcp_idle_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.cli.tcp_idle_timeout)
    }

    /// Time allowed for the last publish at shutdown.
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.cli.shutdown_timeout)
    }

    /// Flushes a gauge stays remembered without updates (0 = forever).
    pub fn gauge_ttl_flushes(&self) -> u64 {
        if self.cli.gauge_ttl == 0.0 {
            return 0;
        }
        (self.cli.gauge_ttl / self.cli.flush_interval)
            .ceil()
            .max(1.0) as u64
    }

    /// Time between NSCA checks.
    pub fn alert_interval(&self) -> Duration {
        Duration::from_secs_f64(self.cli.alert_interval)
    }

    /// Parses arguments (the program name first) into a config.
    pub fn parse_from<I, T>(args: I) -> Result<Config, ParseOutcome>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        match Cli::try_parse_from(args) {
            Ok(cli) => Config::from_cli(cli).map_err(ParseOutcome::Invalid),
            Err(error) => match error.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    Err(ParseOutcome::Info(error.to_string()))
                }
                _ => Err(ParseOutcome::Invalid(first_line(&error.to_string()))),
            },
        }
    }
}

/// Why parsing did not give a config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseOutcome {
    /// `--help` or `--version`: print this on stdout and exit 0.
    Info(String),
    /// A bad flag or value: print this one line on stderr and exit non-zero.
    Invalid(String),
}

/// clap's errors span several lines; operators get the first, which says it.
fn first_line(text: &str) -> String {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or(text);
    line.trim_start_matches("error: ").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, ParseOutcome> {
        Config::parse_from(std::iter::once("statsd").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_match_the_original() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.cli.port, 8125);
        assert_eq!(c.cli.pct, 90.0);
        assert_eq!(c.flush_interval, Duration::from_secs(10));
        assert_eq!(c.cli.graphite_host, "localhost");
        assert_eq!(c.cli.graphite_port, 2003);
        assert_eq!(c.render.metadata_prefix, "statsd");
        assert_eq!(c.render.counters_prefix, "stats");
        assert_eq!(c.render.timers_prefix, "stats.timers");
        assert_eq!(c.render.gauge_prefix, "stats");
        assert_eq!(c.render.sets_prefix, "stats");
        assert_eq!(c.monitor_port(), Some(8135));
        assert!(!c.cli.alert && !c.cli.debug && !c.cli.quiet);
    }

    #[test]
    fn seed_run_script_flags() {
        let c = parse(&[
            "-a",
            "-q",
            "-p",
            "8125",
            "--flush-interval",
            "10",
            "--graphite-port",
            "2003",
            "--graphite-host",
            "127.0.0.1",
            "--metadata-prefix",
            "statsd.my_prefix",
            "--sets-prefix",
            "my_prefix.set",
            "--counters-prefix",
            "my_prefix",
            "--timers-prefix",
            "my_prefix.timers",
            "--gauge-prefix",
            "my_prefix",
        ])
        .unwrap();
        assert!(c.cli.alert && c.cli.quiet);
        assert_eq!(c.render.sets_prefix, "my_prefix.set");
        assert_eq!(c.render.metadata_prefix, "statsd.my_prefix");
    }

    #[test]
    fn short_forms() {
        let c = parse(&["-d", "-m", "foo", "-n", "127.0.0.1", "-t", "95"]).unwrap();
        assert!(c.cli.debug);
        assert_eq!(c.cli.debug_metric, "foo");
        assert_eq!(c.cli.name, "127.0.0.1");
        assert_eq!(c.render.pct, 95.0);
        let c = parse(&["--debug_metric", "bar"]).unwrap();
        assert_eq!(c.cli.debug_metric, "bar");
    }

    #[test]
    fn bad_values_are_one_line() {
        for args in [
            &["--bogus"][..],
            &["-p", "70000"],
            &["-t", "0"],
            &["--flush-interval", "0"],
            &["--flush-interval", "nan"],
            &["--counters-prefix", "a b"],
            &["--workers", "0"],
        ] {
            match parse(args) {
                Err(ParseOutcome::Invalid(line)) => {
                    assert!(!line.contains('\n') && !line.is_empty(), "{args:?}: {line}")
                }
                other => panic!("{args:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn help_is_info() {
        assert!(matches!(parse(&["-h"]), Err(ParseOutcome::Info(_))));
    }
}
