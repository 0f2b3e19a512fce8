//! Command-line flags -> [`Config`]: every value checked once, here, and
//! turned into the typed settings each component takes. A value that cannot
//! work is refused with one line (the binary exits 2), never a panic later.

mod cli;
pub mod delivery;
mod etsy;
pub mod file;
mod load;
pub mod mgmt;
pub mod proxy;
mod ring;
mod transports;
mod udp_spread;

use std::fmt;
use std::time::Duration;

pub use cli::Cli;
pub use etsy::{EtsyArgs, EtsySettings};
pub use load::LoaderSettings;
pub use mgmt::{MgmtArgs, MgmtLimits};
pub use ring::{RingArgs, RingSettings};
pub use transports::{LoaderArgs, Transports};

use crate::aggregate::Limits;
use crate::alert::nsca::{load_send_nsca_config, Encryption, NscaClient};
use crate::flush::FlushSettings;
use crate::net::tcp::TcpLimits;
use crate::net::unix::{UnixSettings, MAX_PATH_BYTES};
use crate::net::{BindSettings, MgmtBind};
use crate::render::RenderConfig;
use crate::sink::{BacklogLimits, Carbon, Target};

/// Shortest time a seconds-valued flag may be: below it timers mean nothing.
const MIN_SECONDS: f64 = 0.001;
/// Longest: about three years, far beyond any use and far from overflow.
const MAX_SECONDS: f64 = 1e8;
/// Largest receive buffer the kernel takes (an int, of which it uses half).
const MAX_UDP_BUFFER: usize = (i32::MAX / 2) as usize;
/// Longest line: a TCP connection buffers up to this much of one line.
const MAX_LINE_BYTES: usize = 16 << 20;
/// Most TCP connections: beyond it the file-descriptor limit bites first.
const MAX_TCP_CONNECTIONS: usize = 1_000_000;
/// Most sockets per UDP worker.
const MAX_UDP_QUEUES: usize = 64;
/// Most receive workers.
const MAX_WORKERS: usize = 256;

/// Validated settings the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen.
    pub bind: BindSettings,
    /// Time between flushes.
    pub flush_interval: Duration,
    /// Rendering, debug and status output of each flush.
    pub flush: FlushSettings,
    /// Bounds on what one interval may hold.
    pub limits: Limits,
    /// How long a gauge not updated is remembered (zero: forever).
    pub gauge_ttl: Duration,
    /// Bounds on TCP intake.
    pub tcp: TcpLimits,
    /// Where payloads go: stdout, or the only (with several: the first)
    /// carbon destination.
    pub target: Target,
    /// Every carbon destination and the ring over them.
    pub ring: RingSettings,
    /// Bounds on what waits for carbon.
    pub backlog: BacklogLimits,
    /// Time allowed for the last publish at shutdown.
    pub shutdown_timeout: Duration,
    /// Attempts to carbon in flight at once (`--graphite-max-unconfirmed`).
    pub max_unconfirmed: usize,
    /// `-a`: the NSCA check, when on.
    pub alert: Option<AlertSettings>,
    /// `--signed-gauges-set`: `+5`/`-5` set a gauge, as the original did.
    pub signed_gauges_set: bool,
    /// Bounds of Etsy's management console (where it listens: `bind.mgmt`).
    pub mgmt: MgmtLimits,
    /// `--config`: the file and the command line, for SIGHUP.
    pub loader: LoaderSettings,
    /// The parsed object (for the mgmt helper's `config` command).
    pub etsy_file: Option<serde_json::Value>,
    /// `--proxy`: forward to these aggregators instead of aggregating.
    pub proxy: Option<crate::proxy::ProxySettings>,
    /// `--etsy` and the Etsy outputs.
    pub etsy: EtsySettings,
}

/// What `-a` needs: the client (the send_nsca.cfg file read once, here), who
/// we are to Nagios, and how often to tell it.
#[derive(Clone)]
pub struct AlertSettings {
    /// The NSCA daemon, password and encryption.
    pub client: NscaClient,
    /// Host name reported to Nagios.
    pub host_name: String,
    /// Service name reported to Nagios.
    pub service: String,
    /// Time between checks.
    pub interval: Duration,
}

impl fmt::Debug for AlertSettings {
    /// The password stays out of `-d`'s settings dump.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlertSettings")
            .field(
                "nsca",
                &format_args!("{}:{}", self.client.host, self.client.port),
            )
            .field("encryption", &self.client.encryption)
            .field("password_set", &!self.client.password.is_empty())
            .field("legacy_packet", &self.client.legacy_packet)
            .field("host_name", &self.host_name)
            .field("service", &self.service)
            .field("interval", &self.interval)
            .finish()
    }
}

/// A seconds-valued flag as a duration, within sane bounds.
fn seconds(name: &str, value: f64) -> Result<Duration, String> {
    if value.is_finite() && (MIN_SECONDS..=MAX_SECONDS).contains(&value) {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(format!(
            "{name} must be between {MIN_SECONDS} and {MAX_SECONDS} seconds, not {value}"
        ))
    }
}

/// A count-valued flag within `min..=max`.
fn count(name: &str, value: usize, min: usize, max: usize) -> Result<usize, String> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "{name} must be between {min} and {max}, not {value}"
        ))
    }
}

pub(crate) fn check_prefix(name: &str, prefix: &str) -> Result<String, String> {
    let clean = crate::protocol::clean_name(prefix.as_bytes());
    if clean != prefix || prefix.starts_with('.') || prefix.ends_with('.') {
        return Err(format!(
            "{name} {prefix:?} may hold only A-Z a-z 0-9 _ - . and must not start or end with '.'"
        ));
    }
    Ok(prefix.to_string())
}

fn nonzero_port(name: &str, port: u16) -> Result<u16, String> {
    if port == 0 {
        return Err(format!("{name} must be a port from 1 to 65535, not 0"));
    }
    Ok(port)
}

impl Config {
    /// Checks the flags and derives the settings; the error is one line.
    pub fn from_cli(cli: Cli) -> Result<Config, String> {
        let etsy = etsy::settings(&cli, &cli.pct)?;
        let flush_interval = seconds("--flush-interval", cli.flush_interval)?;
        let gauge_ttl = if cli.gauge_ttl == 0.0 {
            Duration::ZERO
        } else {
            seconds("--gauge-ttl", cli.gauge_ttl).map_err(|e| format!("{e} (or 0 for forever)"))?
        };
        if cli.graphite_host.is_empty() {
            return Err("--graphite-host must not be empty".into());
        }
        let carbon = Carbon {
            host: cli.graphite_host.clone(),
            port: nonzero_port(
                "--graphite-port",
                cli.graphite_port
                    .unwrap_or(cli.graphite_protocol.default_port()),
            )?,
            protocol: cli.graphite_protocol,
            connect_timeout: seconds("--graphite-connect-timeout", cli.graphite_connect_timeout)?,
            write_timeout: seconds("--graphite-write-timeout", cli.graphite_write_timeout)?,
        };
        let ring = ring::ring_settings(&cli.graphite_host, &cli.ring, &carbon)?;
        let target = match ring.destinations.first() {
            _ if cli.console => Target::Console,
            Some(first) => Target::Graphite(first.carbon.clone()),
            None => Target::Nowhere,
        };
        let workers = match cli.workers {
            Some(n) => count("--workers", n, 1, MAX_WORKERS)?,
            None => std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_WORKERS)),
        };
        let render = RenderConfig {
            counters_prefix: check_prefix("--counters-prefix", &cli.counters_prefix)?,
            gauge_prefix: check_prefix("--gauge-prefix", &cli.gauge_prefix)?,
            timers_prefix: check_prefix("--timers-prefix", &cli.timers_prefix)?,
            sets_prefix: check_prefix("--sets-prefix", &cli.sets_prefix)?,
            metadata_prefix: check_prefix("--metadata-prefix", &cli.metadata_prefix)?,
            pct: cli
                .pct
                .first()
                .copied()
                .unwrap_or(crate::render::DEFAULT_PCT),
            flush_interval,
        };
        let limits = Limits {
            max_line_bytes: count("--max-line-bytes", cli.max_line_bytes, 1, MAX_LINE_BYTES)?,
            max_names: cli.max_names,
            max_timer_samples: count("--max-timer-samples", cli.max_timer_samples, 1, usize::MAX)?,
            max_set_members: count("--max-set-members", cli.max_set_members, 1, usize::MAX)?,
        };
        let debug_metric =
            (cli.debug && !cli.debug_metric.is_empty()).then(|| cli.debug_metric.clone());
        Ok(Config {
            bind: BindSettings {
                name: cli.name.clone(),
                port: cli.port,
                monitor_port: monitor_port(&cli),
                // `--etsy` turns Etsy's 8126 on; with `-p 0` (tests) the
                // kernel picks it, as for the monitor port.
                mgmt: cli
                    .mgmt
                    .port(cli.etsy.etsy)
                    .map(|port| {
                        if cli.port == 0 && cli.mgmt.mgmt_port.is_none() {
                            0
                        } else {
                            port
                        }
                    })
                    .map(|port| MgmtBind {
                        address: cli.mgmt.mgmt_address.clone(),
                        port,
                    }),
                workers,
                udp_buffer: count("--udp-buffer", cli.udp_buffer, 1, MAX_UDP_BUFFER)?,
                unix: unix_settings(&cli)?,
                spread: cli.udp_spread.udp_spread,
                udp_queues: cli
                    .udp_spread
                    .udp_queues
                    .map(|n| count("--udp-queues", n, 1, MAX_UDP_QUEUES))
                    .transpose()?,
                transports: cli.loader.transports,
            },
            flush_interval,
            flush: FlushSettings {
                render,
                max_timer_samples: limits.max_timer_samples,
                debug: cli.debug,
                debug_metric,
                quiet: cli.quiet,
                outputs: etsy.outputs.clone(),
            },
            limits,
            gauge_ttl,
            tcp: TcpLimits {
                max_connections: count(
                    "--tcp-max-connections",
                    cli.tcp_max_connections,
                    1,
                    MAX_TCP_CONNECTIONS,
                )?,
                idle_timeout: seconds("--tcp-idle-timeout", cli.tcp_idle_timeout)?,
                max_line_bytes: limits.max_line_bytes,
                line_timeout: seconds("--tcp-line-timeout", cli.tcp_line_timeout)?,
                max_pending_bytes: count(
                    "--tcp-buffer-bytes",
                    cli.tcp_buffer_bytes,
                    1,
                    usize::MAX,
                )?,
            },
            target,
            ring,
            backlog: BacklogLimits {
                max_bytes: cli.backlog_max_bytes,
                max_lines: cli.backlog_max_lines,
            },
            shutdown_timeout: seconds("--shutdown-timeout", cli.shutdown_timeout)?,
            max_unconfirmed: cli.delivery.max_unconfirmed()?,
            alert: alert_settings(&cli)?,
            signed_gauges_set: cli.signed_gauges_set,
            mgmt: cli.mgmt.limits()?,
            loader: LoaderSettings::default(),
            etsy_file: None,
            proxy: proxy::settings(&cli.proxy)?,
            etsy,
        })
    }

    /// Settings that work but deserve a line at start.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = self.loader.warnings.clone();
        warnings.extend(self.ring.warnings());
        if self.flush_interval < Duration::from_secs(1) {
            warnings.push(format!(
                "--flush-interval {:?} is under a second: carbon keeps one point per series per \
                 second, so flushes within the same second overwrite each other",
                self.flush_interval
            ));
        }
        warnings
    }

    /// Flushes a gauge stays remembered without updates (0 = forever).
    pub fn gauge_ttl_flushes(&self) -> u64 {
        if self.gauge_ttl.is_zero() {
            return 0;
        }
        (self.gauge_ttl.as_secs_f64() / self.flush_interval.as_secs_f64())
            .ceil()
            .max(1.0) as u64
    }

    /// Parses arguments (the program name first) into a config.
    pub fn parse_from<I, T>(args: I) -> Result<Config, ParseOutcome>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let args = expand_original_abbreviations(args.into_iter().map(Into::into).collect());
        if let Some(error) = ambiguous_abbreviation(&args) {
            return Err(ParseOutcome::Invalid(error));
        }
        load::parse(args)
    }
}

/// The XML-RPC port: `--monitor-port`, else port+10 (0 when port is 0).
fn monitor_port(cli: &Cli) -> Option<u16> {
    if cli.no_monitor {
        return None;
    }
    Some(match cli.monitor_port {
        Some(port) => port,
        None if cli.port == 0 => 0,
        None => cli.port.saturating_add(10),
    })
}

/// `--unix-socket` and its mode: a path the kernel takes, an octal mode.
fn unix_settings(cli: &Cli) -> Result<Option<UnixSettings>, String> {
    let mode = match &cli.unix_socket_mode {
        Some(text) => match u32::from_str_radix(text.trim_start_matches("0o"), 8) {
            Ok(mode) if mode <= 0o777 => Some(mode),
            _ => {
                return Err(format!(
                    "--unix-socket-mode must be octal permission bits (e.g. 660), not {text:?}"
                ))
            }
        },
        None => None,
    };
    let Some(path) = &cli.unix_socket else {
        if mode.is_some() {
            return Err("--unix-socket-mode needs --unix-socket".into());
        }
        return Ok(None);
    };
    let bytes = path.as_os_str().len();
    if bytes == 0 || bytes > MAX_PATH_BYTES {
        return Err(format!(
            "--unix-socket must be a path of 1 to {MAX_PATH_BYTES} bytes, not {bytes}"
        ));
    }
    Ok(Some(UnixSettings {
        path: path.clone(),
        mode,
    }))
}

/// The NSCA settings; `--nsca-encryption` is checked even without `-a` (a
/// bad value is a bad flag), the send_nsca.cfg file is read only with it.
fn alert_settings(cli: &Cli) -> Result<Option<AlertSettings>, String> {
    let encryption = match &cli.nsca_encryption {
        Some(method) => Some(
            method
                .parse::<Encryption>()
                .map_err(|e| format!("--nsca-encryption: {e}"))?,
        ),
        None => None,
    };
    if !cli.alert {
        return Ok(None);
    }
    let interval = seconds("--alert-interval", cli.alert_interval)?;
    let port = nonzero_port("--nsca-port", cli.nsca_port)?;
    let mut client = NscaClient::new(cli.nsca_host.clone(), port);
    if let Some(path) = &cli.nsca_config {
        let file = load_send_nsca_config(path).map_err(|e| format!("NSCA alerting: {e}"))?;
        client = client.with_config(&file);
    }
    if let Some(password) = &cli.nsca_password {
        client.password = password.clone().into_bytes();
    }
    if let Some(encryption) = encryption {
        client.encryption = encryption;
    }
    if cli.nsca_legacy_packet {
        client.legacy_packet = true;
    }
    Ok(Some(AlertSettings {
        client,
        host_name: cli
            .nsca_hostname
            .clone()
            .unwrap_or_else(crate::alert::local_hostname),
        service: cli
            .nsca_service
            .clone()
            .unwrap_or_else(|| cli.metadata_prefix.clone()),
        interval,
    }))
}

/// The original's long flags: an abbreviation that named one of them
/// there (`--graphite-h`, `--graphite-p`) still does, whatever new flags
/// share its beginning.
const ORIGINAL_LONGS: [&str; 15] = [
    "alert",
    "debug",
    "quiet",
    "name",
    "debug_metric",
    "port",
    "pct",
    "flush-interval",
    "graphite-host",
    "graphite-port",
    "metadata-prefix",
    "counters-prefix",
    "timers-prefix",
    "gauge-prefix",
    "sets-prefix",
];

/// Writes out abbreviations of the original's flags that were unambiguous there.
fn expand_original_abbreviations(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    for arg in args.iter_mut().skip(1) {
        let Some(text) = arg.to_str() else { continue };
        if text == "--" {
            break;
        }
        let Some(flag) = text.strip_prefix("--") else {
            continue;
        };
        let (name, value) = match flag.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (flag, None),
        };
        if name.is_empty() || ORIGINAL_LONGS.contains(&name) {
            continue;
        }
        let mut matching = ORIGINAL_LONGS.iter().filter(|long| long.starts_with(name));
        if let (Some(long), None) = (matching.next(), matching.next()) {
            *arg = match value {
                Some(value) => format!("--{long}={value}"),
                None => format!("--{long}"),
            }
            .into();
        }
    }
    args
}

/// An abbreviated long flag that more than one flag starts with, named
/// with its candidates as the original's argparse did (clap only says it
/// is unknown).
fn ambiguous_abbreviation(args: &[std::ffi::OsString]) -> Option<String> {
    use clap::CommandFactory;
    let command = Cli::command();
    let longs: Vec<&str> = command
        .get_arguments()
        .filter_map(|a| a.get_long())
        .collect();
    for arg in args.iter().skip(1) {
        let text = arg.to_str()?;
        if text == "--" {
            return None;
        }
        let Some(flag) = text.strip_prefix("--") else {
            continue;
        };
        let flag = flag.split('=').next().unwrap_or(flag);
        if flag.is_empty() || longs.contains(&flag) {
            continue;
        }
        let candidates: Vec<String> = longs
            .iter()
            .filter(|long| long.starts_with(flag))
            .map(|long| format!("--{long}"))
            .collect();
        if candidates.len() > 1 {
            return Some(format!(
                "ambiguous option: --{flag} could match {}",
                candidates.join(", ")
            ));
        }
    }
    None
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
        assert_eq!(c.bind.port, 8125);
        assert_eq!(c.flush.render.pct, 90.0);
        assert_eq!(c.flush_interval, Duration::from_secs(10));
        match &c.target {
            Target::Graphite(carbon) => {
                assert_eq!((carbon.host.as_str(), carbon.port), ("localhost", 2003))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(c.flush.render.metadata_prefix, "statsd");
        assert_eq!(c.flush.render.counters_prefix, "stats");
        assert_eq!(c.flush.render.timers_prefix, "stats.timers");
        assert_eq!(c.flush.render.gauge_prefix, "stats");
        assert_eq!(c.flush.render.sets_prefix, "stats");
        assert_eq!(c.bind.monitor_port, Some(8135));
        assert!(c.alert.is_none() && !c.flush.debug && !c.flush.quiet);
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
        assert!(c.alert.is_some() && c.flush.quiet);
        assert_eq!(c.flush.render.sets_prefix, "my_prefix.set");
        assert_eq!(c.flush.render.metadata_prefix, "statsd.my_prefix");
    }

    #[test]
    fn short_forms() {
        let c = parse(&["-d", "-m", "foo", "-n", "127.0.0.1", "-t", "95"]).unwrap();
        assert!(c.flush.debug);
        assert_eq!(c.flush.debug_metric.as_deref(), Some("foo"));
        assert_eq!(c.bind.name, "127.0.0.1");
        assert_eq!(c.flush.render.pct, 95.0);
        assert!(
            c.flush.outputs.is_none(),
            "one -t keeps the original's render"
        );
        let c = parse(&["-d", "--debug_metric", "bar"]).unwrap();
        assert_eq!(c.flush.debug_metric.as_deref(), Some("bar"));
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
            &["--flush-interval", "1e-10"],
            &["--flush-interval", "1e300"],
            &["--udp-buffer", "18446744073709551615"],
            &["--udp-buffer", "0"],
            &["--tcp-max-connections", "18446744073709551615"],
            &["--max-line-bytes", "0"],
            &["--max-timer-samples", "0"],
            &["--gauge-ttl", "-1"],
            &["--graphite-port", "0"],
            &["--shutdown-timeout", "inf"],
            &["-a", "--nsca-config", "/nonexistent/send_nsca.cfg"],
            &["--nsca-encryption", "99"],
            &["--unix-socket", ""],
            &["--unix-socket-mode", "660"],
            &["--unix-socket", "/tmp/s", "--unix-socket-mode", "999"],
            &["--unix-socket", "/tmp/s", "--unix-socket-mode", "7777"],
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
    fn abbreviations_and_repeats_as_argparse() {
        let c = parse(&[
            "--flush",
            "2",
            "--graphite-h",
            "carbon",
            "-p",
            "1",
            "-p",
            "9",
        ])
        .unwrap();
        assert_eq!(c.flush_interval, Duration::from_secs(2));
        assert_eq!(c.bind.port, 9, "the last one wins");
        match &c.target {
            Target::Graphite(carbon) => assert_eq!(carbon.host, "carbon"),
            other => panic!("{other:?}"),
        }
        // New flags sharing a beginning with an original one leave its abbreviations alone.
        match parse(&["--graphite-h", "a", "--graphite-p", "2010"]).map(|c| c.target) {
            Ok(Target::Graphite(carbon)) => {
                assert_eq!((carbon.host.as_str(), carbon.port), ("a", 2010))
            }
            other => panic!("{other:?}"),
        }
        match parse(&["--graphite", "x"]) {
            Err(ParseOutcome::Invalid(line)) => assert!(
                line.contains("--graphite-host") && line.contains("--graphite-port"),
                "{line}"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pickle_moves_the_default_port_only() {
        let carbon = |args: &[&str]| match parse(args).map(|c| c.target) {
            Ok(Target::Graphite(carbon)) => (carbon.port, carbon.protocol),
            other => panic!("{args:?}: {other:?}"),
        };
        use crate::sink::GraphiteProtocol::{Pickle, Plaintext};
        assert_eq!(carbon(&[]), (2003, Plaintext));
        assert_eq!(
            carbon(&["--graphite-protocol", "plaintext"]),
            (2003, Plaintext)
        );
        assert_eq!(carbon(&["--graphite-protocol", "pickle"]), (2004, Pickle));
        assert_eq!(
            carbon(&["--graphite-port", "2003", "--graphite-protocol", "pickle"]),
            (2003, Pickle)
        );
        match parse(&["--graphite-protocol", "json"]) {
            Err(ParseOutcome::Invalid(line)) => assert!(!line.contains('\n'), "{line}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn help_is_info() {
        assert!(matches!(parse(&["-h"]), Err(ParseOutcome::Info(_))));
    }
}
