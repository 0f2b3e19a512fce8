//! SIGHUP under `--config`: the file (and the same command line) is read
//! again and what can change without rebinding is applied at once:
//! everything the flush renders (prefixes, percentiles, bins, ...) and the
//! target (graphite host, port, protocol, console). The flush settings are
//! swapped whole between two flushes, so no flush mixes old and new and no
//! line is lost. Anything else needs a restart, and says so. A file that
//! does not parse keeps the running settings.

use std::collections::BTreeMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::{file::Group, Config, ParseOutcome};
use crate::flush::SettingsSlot;
use crate::sink::Target;

/// Where the running server takes its reloadable settings from.
#[derive(Clone)]
pub struct Slots {
    /// Read by the flush, once per flush.
    pub flush: SettingsSlot,
    /// Read by the publisher before each attempt.
    pub target: Arc<ArcSwap<Target>>,
}

/// Applies `fresh` (the file read again) over `running`, storing what
/// changed in `slots`; returns the lines to print on stderr.
pub fn apply(
    running: &mut Config,
    fresh: Result<Config, ParseOutcome>,
    slots: &Slots,
) -> Vec<String> {
    let file = running
        .loader
        .path
        .as_ref()
        .map_or_else(|| "(no file)".into(), |p| p.display().to_string());
    let mut fresh = match fresh {
        Ok(config) => config,
        Err(ParseOutcome::Invalid(why) | ParseOutcome::Info(why)) => {
            return vec![format!("SIGHUP: {why}; keeping the running settings")];
        }
    };
    let mut lines: Vec<String> = changed_keys(&running.loader.groups, &fresh.loader.groups)
        .into_iter()
        .map(|change| format!("SIGHUP: {file}: {change}"))
        .collect();
    for warning in &fresh.loader.warnings {
        if !running.loader.warnings.contains(warning) {
            lines.push(format!("SIGHUP: warning: {warning}"));
        }
    }
    // Rates are per interval: the render keeps the interval the ticker runs.
    fresh.flush.render.flush_interval = running.flush_interval;
    for (what, old, new) in restart_only(running, &fresh) {
        lines.push(format!(
            "SIGHUP: {what} changed ({old} -> {new}): needs a restart, still {old}"
        ));
    }
    if format!("{:?}", running.flush) != format!("{:?}", fresh.flush) {
        slots.flush.store(Arc::new(fresh.flush.clone()));
        running.flush = fresh.flush;
        lines.push("SIGHUP: flush settings applied from the next flush".into());
    }
    if format!("{:?}", running.target) != format!("{:?}", fresh.target) {
        lines.push(format!(
            "SIGHUP: target {} -> {}",
            running.target, fresh.target
        ));
        slots.target.store(Arc::new(fresh.target.clone()));
        running.target = fresh.target;
    }
    if lines.is_empty() {
        lines.push(format!("SIGHUP: {file} read again, nothing changed"));
    }
    running.loader = fresh.loader;
    running.etsy_file = fresh.etsy_file;
    lines
}

/// The file's keys whose flags changed, `key: old -> new` each.
fn changed_keys(old: &[Group], new: &[Group]) -> Vec<String> {
    let by_key = |groups: &[Group]| {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for group in groups {
            let tokens = group
                .tokens()
                .iter()
                .map(|t| t.to_string_lossy().into_owned())
                .collect::<Vec<_>>();
            map.entry(group.key.clone())
                .or_default()
                .push(tokens.join(" "));
        }
        map
    };
    let (old, new) = (by_key(old), by_key(new));
    let unset = || "(unset)".to_string();
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|key| old.get(*key) != new.get(*key))
        .map(|key| {
            let show =
                |m: &BTreeMap<String, Vec<String>>| m.get(key).map_or_else(unset, |v| v.join(" "));
            format!("{key}: {} -> {}", show(&old), show(&new))
        })
        .collect()
}

/// Settings that only a restart applies: (what, running, asked).
fn restart_only(running: &Config, fresh: &Config) -> Vec<(&'static str, String, String)> {
    let pairs = [
        (
            "listeners (port, address, transports, workers)",
            format!("{:?}", running.bind),
            format!("{:?}", fresh.bind),
        ),
        (
            "flush interval",
            format!("{:?}", running.flush_interval),
            format!("{:?}", fresh.flush_interval),
        ),
        (
            "intake limits",
            format!("{:?}", running.limits),
            format!("{:?}", fresh.limits),
        ),
        (
            "gauge ttl",
            format!("{:?}", running.gauge_ttl),
            format!("{:?}", fresh.gauge_ttl),
        ),
        (
            "TCP limits",
            format!("{:?}", running.tcp),
            format!("{:?}", fresh.tcp),
        ),
        (
            "backlog limits",
            format!("{:?}", running.backlog),
            format!("{:?}", fresh.backlog),
        ),
        (
            "alerting",
            format!("{:?}", running.alert),
            format!("{:?}", fresh.alert),
        ),
        (
            "signed gauges",
            format!("{:?}", running.signed_gauges_set),
            format!("{:?}", fresh.signed_gauges_set),
        ),
    ];
    pairs
        .into_iter()
        .filter(|(_, old, new)| old != new)
        .collect()
}
