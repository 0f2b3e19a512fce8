//! Etsy statsd 0.9.0's config keys -> our flags, with Etsy's meanings:
//! `flushInterval` in milliseconds, `percentThreshold` a number or a list,
//! `deleteIdleStats` the default of every `delete*`, `server` the
//! listener, the graphite backend's keys under `graphite: {...}`.

use serde_json::Value;

use super::etsy_listeners::listeners;
use super::{Group, KeyError, Mapped};

/// Top-level keys Etsy knows that we do not act on (each is warned about).
const UNSUPPORTED: &[(&str, &str)] = &[
    (
        "automaticConfigReload",
        "the file is re-read on SIGHUP, not when it changes",
    ),
    ("title", "the process title is not changed"),
    ("healthStatus", "no start-up health status"),
    (
        "gaugesMaxTTL",
        "gauges are forgotten after --gauge-ttl seconds",
    ),
    ("keyFlush", "no frequent-key log"),
    ("log", "logs go to stdout and stderr"),
    ("repeater", "no repeater backend"),
    ("repeaterProtocol", "no repeater backend"),
    ("console", "console output is not pretty-printed"),
];

/// Maps an Etsy config object onto flag groups.
pub fn map(config: &Value) -> Result<Mapped, KeyError> {
    let Value::Object(object) = config else {
        return Err(KeyError::new(
            "(top)",
            "the file must be one { ... } object",
        ));
    };
    let mut out = Mapped::default();
    out.groups.push(Group::switch("(an Etsy config)", "etsy"));
    listeners(object, &mut out)?;
    let mut delete_idle = false;
    for (key, value) in object {
        let key = key.as_str();
        match key {
            // Read by `listeners`.
            "port" | "address" | "address_ipv6" | "server" | "servers" => {}
            "mgmt_port" => {
                out.groups
                    .push(Group::with(key, "mgmt-port", port(key, value)?.to_string()))
            }
            "mgmt_address" => {
                out.groups
                    .push(Group::with(key, "mgmt-address", string(key, value)?))
            }
            "flushInterval" => {
                let ms = number(key, value)?;
                if !(ms.is_finite() && ms > 0.0) {
                    return Err(KeyError::new(
                        key,
                        format!("must be a positive number of milliseconds, not {value}"),
                    ));
                }
                out.groups.push(Group::with(
                    key,
                    "flush-interval",
                    (ms / 1000.0).to_string(),
                ));
            }
            "graphiteHost" => {
                out.groups
                    .push(Group::with(key, "graphite-host", string(key, value)?))
            }
            "graphitePort" => {
                if object.get("graphiteProtocol").and_then(Value::as_str) != Some("pickle") {
                    out.groups.push(Group::with(
                        key,
                        "graphite-port",
                        port(key, value)?.to_string(),
                    ));
                }
            }
            "graphitePicklePort" => {
                if object.get("graphiteProtocol").and_then(Value::as_str) == Some("pickle") {
                    out.groups.push(Group::with(
                        key,
                        "graphite-port",
                        port(key, value)?.to_string(),
                    ));
                }
            }
            "graphiteProtocol" => {
                let protocol = match string(key, value)?.as_str() {
                    "text" => "plaintext",
                    "pickle" => "pickle",
                    other => {
                        return Err(KeyError::new(
                            key,
                            format!("must be \"text\" or \"pickle\", not {other:?}"),
                        ))
                    }
                };
                out.groups
                    .push(Group::with(key, "graphite-protocol", protocol));
            }
            "percentThreshold" => {
                out.groups
                    .push(Group::with(key, "pct", percentiles(key, value)?))
            }
            "histogram" => histograms(key, value, &mut out)?,
            "deleteIdleStats" => {
                delete_idle = boolean(key, value)?;
                if delete_idle {
                    out.groups.push(Group::switch(key, "delete-idle-stats"));
                }
            }
            "deleteGauges" | "deleteTimers" | "deleteSets" | "deleteCounters" => {}
            "keyNameSanitize" => out.groups.push(bool_flag(key, "key-name-sanitize", value)?),
            "calculatedTimerMetrics" => {
                let names = strings(key, value)?;
                out.groups
                    .push(Group::with(key, "timer-metrics", names.join(",")));
            }
            "flush_counts" => out.groups.push(bool_flag(key, "flush-counts", value)?),
            "dumpMessages" => switch_if(key, "dump-messages", value, &mut out)?,
            "debug" => switch_if(key, "debug", value, &mut out)?,
            "prefixStats" => out.groups.push(Group::with(
                key,
                "prefix-internal-metrics",
                string(key, value)?,
            )),
            "graphite" => graphite(value, &mut out)?,
            "backends" => backends(key, value, &mut out)?,
            _ => match UNSUPPORTED.iter().find(|(name, _)| *name == key) {
                Some((_, why)) => out
                    .warnings
                    .push(format!("config key {key} is not supported: {why}")),
                None => out.warnings.push(format!(
                    "config key {key} is not supported (unknown to Etsy statsd 0.9.0 and to us)"
                )),
            },
        }
    }
    // Etsy's graphite backend sends only when graphiteHost is set.
    if !object.contains_key("graphiteHost") && !out.groups.iter().any(|g| g.flag == "console") {
        out.groups
            .push(Group::with("graphiteHost", "graphite-host", "none"));
        out.warnings.push(
            "config key graphiteHost is not set: nothing is sent to carbon, as Etsy statsd does (set graphiteHost, or --graphite-host)".into(),
        );
    }
    // Etsy: deleteIdleStats is the default of each delete*, each may override it.
    for (key, flag) in [
        ("deleteGauges", "delete-gauges"),
        ("deleteTimers", "delete-timers"),
        ("deleteSets", "delete-sets"),
        ("deleteCounters", "delete-counters"),
    ] {
        match object.get(key) {
            Some(value) => out.groups.push(bool_flag(key, flag, value)?),
            None if delete_idle => out
                .groups
                .push(Group::with("deleteIdleStats", flag, "true")),
            None => {}
        }
    }
    Ok(out)
}

/// The graphite backend's own keys.
fn graphite(value: &Value, out: &mut Mapped) -> Result<(), KeyError> {
    let Value::Object(object) = value else {
        return Err(KeyError::new(
            "graphite",
            format!("must be an object {{ ... }}, not {value}"),
        ));
    };
    for (name, value) in object {
        let key = format!("graphite.{name}");
        let key = key.as_str();
        let flag = match name.as_str() {
            "legacyNamespace" => {
                out.groups.push(bool_flag(key, "legacy-namespace", value)?);
                continue;
            }
            "globalPrefix" => "global-prefix",
            "prefixCounter" => "prefix-counter",
            "prefixTimer" => "prefix-timer",
            "prefixGauge" => "prefix-gauge",
            "prefixSet" => "prefix-set",
            "prefixInternalMetrics" => "prefix-internal-metrics",
            "globalSuffix" => "global-suffix",
            _ => {
                out.warnings
                    .push(format!("config key {key} is not supported"));
                continue;
            }
        };
        out.groups.push(Group::with(key, flag, string(key, value)?));
    }
    Ok(())
}

/// Only the graphite backend (ours) and the console (`--console`).
fn backends(key: &str, value: &Value, out: &mut Mapped) -> Result<(), KeyError> {
    let names = strings(key, value)?;
    let graphite = names.iter().any(|n| backend(n) == "graphite");
    let console = names.iter().any(|n| backend(n) == "console");
    for name in &names {
        if !["graphite", "console"].contains(&backend(name)) {
            out.warnings.push(format!("config key {key}: backend {name:?} is not supported (only ./backends/graphite and ./backends/console)"));
        }
    }
    match (graphite, console) {
        (false, true) => out.groups.push(Group::switch(key, "console")),
        (true, true) => out.warnings.push(format!(
            "config key {key}: ./backends/console beside ./backends/graphite is not supported: sending to graphite only"
        )),
        (false, false) => out.warnings.push(format!("config key {key}: no supported backend: sending to graphite anyway")),
        (true, false) => {}
    }
    Ok(())
}

/// `./backends/graphite` -> `graphite`.
fn backend(name: &str) -> &str {
    name.trim_end_matches(".js")
        .rsplit('/')
        .next()
        .unwrap_or(name)
}

/// `histogram: [{ metric, bins: [..., 'inf'] }]` -> `--histogram METRIC=B1,...`.
fn histograms(key: &str, value: &Value, out: &mut Mapped) -> Result<(), KeyError> {
    let why = "must be a list of { metric: \"name\", bins: [numbers or \"inf\"] }";
    let Value::Array(list) = value else {
        return Err(KeyError::new(key, why));
    };
    for item in list {
        let (Some(metric), Some(Value::Array(bins))) =
            (item.get("metric").and_then(Value::as_str), item.get("bins"))
        else {
            return Err(KeyError::new(key, why));
        };
        let mut texts = Vec::new();
        for bin in bins {
            match bin {
                Value::Number(n) if n.as_f64().is_some_and(f64::is_finite) => {
                    texts.push(n.to_string())
                }
                Value::String(s) if s == "inf" => texts.push("inf".into()),
                other => {
                    return Err(KeyError::new(
                        key,
                        format!("bins of {metric:?}: {other} is neither a number nor \"inf\""),
                    ))
                }
            }
        }
        if metric.contains('=') {
            return Err(KeyError::new(
                key,
                format!("metric {metric:?} must not contain '='"),
            ));
        }
        out.groups.push(Group::with(
            key,
            "histogram",
            format!("{metric}={}", texts.join(",")),
        ));
    }
    Ok(())
}

/// A number or a list of numbers -> `90,99.9`.
fn percentiles(key: &str, value: &Value) -> Result<String, KeyError> {
    let list = match value {
        Value::Array(list) if !list.is_empty() => list.iter().collect::<Vec<_>>(),
        Value::Array(_) => return Err(KeyError::new(key, "must list at least one percentile")),
        one => vec![one],
    };
    let mut texts = Vec::new();
    for item in list {
        let pct = number(key, item)?;
        if !(pct.is_finite() && pct != 0.0 && (-100.0..=100.0).contains(&pct)) {
            return Err(KeyError::new(
                key,
                format!("{item} is not a percentile (-100..100, not 0)"),
            ));
        }
        texts.push(item.to_string());
    }
    Ok(texts.join(","))
}

fn bool_flag(key: &str, flag: &str, value: &Value) -> Result<Group, KeyError> {
    Ok(Group::with(key, flag, boolean(key, value)?.to_string()))
}

/// A switch flag, given when the key is true.
fn switch_if(key: &str, flag: &str, value: &Value, out: &mut Mapped) -> Result<(), KeyError> {
    if boolean(key, value)? {
        out.groups.push(Group::switch(key, flag));
    }
    Ok(())
}

pub(super) fn boolean(key: &str, value: &Value) -> Result<bool, KeyError> {
    value
        .as_bool()
        .ok_or_else(|| KeyError::new(key, format!("must be true or false, not {value}")))
}

fn number(key: &str, value: &Value) -> Result<f64, KeyError> {
    value
        .as_f64()
        .ok_or_else(|| KeyError::new(key, format!("must be a number, not {value}")))
}

pub(super) fn string(key: &str, value: &Value) -> Result<String, KeyError> {
    value
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| KeyError::new(key, format!("must be a string, not {value}")))
}

fn strings(key: &str, value: &Value) -> Result<Vec<String>, KeyError> {
    let why = || KeyError::new(key, format!("must be a list of strings, not {value}"));
    let Value::Array(list) = value else {
        return Err(why());
    };
    list.iter()
        .map(|v| v.as_str().map(str::to_string).ok_or_else(why))
        .collect()
}

pub(super) fn port(key: &str, value: &Value) -> Result<u16, KeyError> {
    value
        .as_u64()
        .and_then(|n| u16::try_from(n).ok())
        .ok_or_else(|| KeyError::new(key, format!("must be a port number 0-65535, not {value}")))
}
