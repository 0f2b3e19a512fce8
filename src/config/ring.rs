//! Several carbon destinations: `--graphite-host` as a comma-separated list
//! of `host[:port[:instance]]` (carbon's DESTINATIONS syntax, IPv6 literals
//! in brackets), and the flags of the ring that spreads paths over them.
//! A single host, as the original took it, means exactly what it did.

use std::net::Ipv6Addr;

use crate::sink::ring::HashType;
use crate::sink::{Carbon, Destination, Spread};

/// Most copies of a path (carbon-relay takes any number; more than this
/// is a typo).
const MAX_REPLICATION: usize = 100;

/// The ring's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct RingArgs {
    /// With several --graphite-host destinations: how paths are placed (carbon's ring types)
    #[arg(long = "graphite-hashing", value_enum, default_value_t = HashType::CarbonCh)]
    pub graphite_hashing: HashType,

    /// With several --graphite-host destinations: copies of each path, on distinct servers (carbon-relay's REPLICATION_FACTOR)
    #[arg(long = "graphite-replication", default_value_t = 1)]
    pub graphite_replication: usize,
}

/// Where the lines go, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingSettings {
    /// Every destination, in the order given (the ring's order); none with `--graphite-host none`.
    pub destinations: Vec<Destination>,
    /// Ring type and replication, used from two destinations on.
    pub spread: Spread,
}

impl RingSettings {
    /// Settings that work but deserve a line at start.
    pub fn warnings(&self) -> Vec<String> {
        let mut servers: Vec<&str> = self
            .destinations
            .iter()
            .map(|d| d.carbon.host.as_str())
            .collect();
        servers.sort_unstable();
        servers.dedup();
        let replication = self.spread.replication;
        if self.destinations.len() > 1 && replication > servers.len() {
            let distinct = servers.len();
            return vec![format!(
                "--graphite-replication {replication} is more than the {distinct} distinct \
                 servers of --graphite-host: each path is written {distinct} times"
            )];
        }
        Vec::new()
    }
}

/// The destinations of `--graphite-host`; `template` gives the default port,
/// the protocol and the timeouts.
pub fn ring_settings(
    hosts: &str,
    args: &RingArgs,
    template: &Carbon,
) -> Result<RingSettings, String> {
    // `none` (or nothing): no carbon at all, as Etsy without `graphiteHost`.
    let destinations = match hosts.trim() {
        "" | "none" => Vec::new(),
        _ => parse_destinations(hosts, template)?,
    };
    let replication = args.graphite_replication;
    if !(1..=MAX_REPLICATION).contains(&replication) {
        return Err(format!(
            "--graphite-replication must be between 1 and {MAX_REPLICATION}, not {replication}"
        ));
    }
    Ok(RingSettings {
        destinations,
        spread: Spread {
            hashing: args.graphite_hashing,
            replication,
        },
    })
}

/// Parses `host[:port[:instance]],...`; a repeated destination (the same
/// host and instance, as carbon refuses it, or the same host and port)
/// is an error.
pub fn parse_destinations(text: &str, template: &Carbon) -> Result<Vec<Destination>, String> {
    let mut out: Vec<Destination> = Vec::new();
    for entry in text.split(',') {
        let destination = parse_one(entry.trim(), template)
            .map_err(|why| format!("--graphite-host {:?}: {why}", entry.trim()))?;
        let (host, port) = (&destination.carbon.host, destination.carbon.port);
        for other in &out {
            if other.carbon.host == *host && other.instance == destination.instance {
                return Err(format!(
                    "--graphite-host lists {host} with instance {:?} twice (carbon refuses that too)",
                    destination.instance.as_deref().unwrap_or("None")
                ));
            }
            if other.carbon.port == port && other.carbon.host == *host {
                return Err(format!("--graphite-host lists {host}:{port} twice"));
            }
            if other.stat_name() == destination.stat_name() {
                return Err(format!(
                    "--graphite-host: {host}:{port} and {}:{} give the same stats name {}",
                    other.carbon.host,
                    other.carbon.port,
                    destination.stat_name()
                ));
            }
        }
        out.push(destination);
    }
    Ok(out)
}

/// One `host[:port[:instance]]`; `[v6]:port:instance`; a bare IPv6 literal.
fn parse_one(entry: &str, template: &Carbon) -> Result<Destination, String> {
    if entry.is_empty() {
        return Err("an empty destination".into());
    }
    let (host, rest) = if let Some(inside) = entry.strip_prefix('[') {
        let Some(close) = inside.find(']') else {
            return Err("a '[' without its ']'".into());
        };
        let rest = &inside[close + 1..];
        if !rest.is_empty() && !rest.starts_with(':') {
            return Err("text after ']' must be :port[:instance]".into());
        }
        (&inside[..close], rest.strip_prefix(':'))
    } else if entry.parse::<Ipv6Addr>().is_ok() {
        // As the original took it: a bare IPv6 literal is a host.
        (entry, None)
    } else {
        match entry.split_once(':') {
            Some((host, rest)) => (host, Some(rest)),
            None => (entry, None),
        }
    };
    if host.is_empty() {
        return Err("an empty host".into());
    }
    let (port, instance) = match rest {
        None => (template.port, None),
        Some(rest) => {
            let (port, instance) = match rest.split_once(':') {
                Some((port, instance)) => (port, Some(instance)),
                None => (rest, None),
            };
            let port = match port.parse::<u16>() {
                Ok(port) if port > 0 => port,
                _ => return Err(format!("the port must be 1 to 65535, not {port:?}")),
            };
            if let Some(instance) = instance {
                if instance.is_empty() || instance.contains(':') {
                    return Err(format!(
                        "the instance must be non-empty text without ':', not {instance:?} \
                         (an IPv6 address goes in brackets: [::1]:2003)"
                    ));
                }
            }
            (port, instance.map(str::to_string))
        }
    };
    Ok(Destination {
        carbon: Carbon {
            host: host.to_string(),
            port,
            ..template.clone()
        },
        instance,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::GraphiteProtocol;
    use std::time::Duration;

    fn template() -> Carbon {
        Carbon {
            host: String::new(),
            port: 2003,
            protocol: GraphiteProtocol::Plaintext,
            connect_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(30),
        }
    }

    fn parsed(text: &str) -> Vec<(String, u16, Option<String>)> {
        parse_destinations(text, &template())
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .into_iter()
            .map(|d| (d.carbon.host, d.carbon.port, d.instance))
            .collect()
    }

    #[test]
    fn every_form_of_destination() {
        let d = |h: &str, p: u16, i: Option<&str>| (h.to_string(), p, i.map(String::from));
        for (text, want) in [
            ("localhost", vec![d("localhost", 2003, None)]),
            ("::1", vec![d("::1", 2003, None)]),
            ("a:2004", vec![d("a", 2004, None)]),
            (
                "a:2004:x, b",
                vec![d("a", 2004, Some("x")), d("b", 2003, None)],
            ),
            (
                "[::1]:2003:a,[fe80::1]",
                vec![d("::1", 2003, Some("a")), d("fe80::1", 2003, None)],
            ),
            ("[::1]:9", vec![d("::1", 9, None)]),
        ] {
            assert_eq!(parsed(text), want, "{text}");
        }
    }

    #[test]
    fn bad_destinations_are_one_line() {
        for text in [
            "",
            "a,,b",
            ":2003",
            "a:0",
            "a:x",
            "a:70000",
            "a:1:",
            "[::1",
            "[::1]x",
            "[]:1",
            "a:1:b:c",
            "a:1,a:1",
            "a:1,a:2",
            "a:1:x,a:2:x",
            "a:1,a:1:y",
            "a.b:1,a_b:1",
        ] {
            match parse_destinations(text, &template()) {
                Err(line) => assert!(!line.contains('\n') && !line.is_empty(), "{text}: {line}"),
                Ok(got) => panic!("{text}: {got:?}"),
            }
        }
    }
}
