//! SIGHUP under `--config`: the file (and the same command line) is read
//! again and what can change without rebinding is applied at once:
//! everything the flush renders (prefixes, percentiles, bins, ...) and the
//! target (graphite host, port, protocol, console) and the bounds (intake
//! from the next interval, TCP and mgmt connections from the next accepted,
//! the backlog from the next flush). The flush settings are swapped whole
//! between two flushes, so no flush mixes old and new and no line is lost.
//! Anything else needs a restart, and says so. A file that does not parse
//! keeps the running settings.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};

use crate::aggregate::Limits;
use crate::config::{file::Group, Config, MgmtLimits, ParseOutcome};
use crate::flush::SettingsSlot;
use crate::intake::Intake;
use crate::net::tcp::TcpLimits;
use crate::sink::{BacklogLimits, Target};

/// Where the running server takes its reloadable settings from.
#[derive(Clone)]
pub struct Slots {
    /// Read by the flush, once per flush.
    pub flush: SettingsSlot,
    /// Read by the publisher before each attempt.
    pub target: Arc<ArcSwap<Target>>,
    /// Read by each shard as an interval starts.
    pub intake_limits: Arc<ArcSwap<Limits>>,
    /// Holds the line length UDP and Unix datagrams are parsed with.
    pub intake: Arc<Intake>,
    /// Read as each TCP connection is accepted.
    pub tcp: Arc<ArcSwap<TcpLimits>>,
    /// Read as each mgmt connection is accepted.
    pub mgmt: Arc<ArcSwap<MgmtLimits>>,
    /// Read by each publisher as a payload arrives.
    pub backlog: Arc<ArcSwap<BacklogLimits>>,
    /// The parsed Etsy file, for mgmt's `config`.
    pub etsy_file: Arc<ArcSwapOption<serde_json::Value>>,
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
    lines.extend(apply_bounds(running, &fresh, slots));
    if format!("{:?}", running.flush) != format!("{:?}", fresh.flush) {
        slots.flush.store(Arc::new(fresh.flush.clone()));
        running.flush = fresh.flush.clone();
        lines.push("SIGHUP: flush settings applied from the next flush".into());
    }
    if running.target != fresh.target || running.ring != fresh.ring {
        let (old, new) = (destinations(running), destinations(&fresh));
        if movable(running) && movable(&fresh) {
            // One destination: the ring type and replication do not matter.
            if running.target != fresh.target {
                lines.push(format!("SIGHUP: target {old} -> {new}"));
                slots.target.store(Arc::new(fresh.target.clone()));
            }
            running.target = fresh.target;
            running.ring = fresh.ring;
        } else {
            // Publishers exist per destination, placed by the ring: only a
            // restart makes (or removes) them.
            lines.push(format!(
                "SIGHUP: carbon destinations changed ({old} -> {new}): needs a restart, still {old}"
            ));
        }
    }
    if lines.is_empty() {
        lines.push(format!("SIGHUP: {file} read again, nothing changed"));
    }
    running.loader = fresh.loader;
    slots.etsy_file.store(fresh.etsy_file.clone().map(Arc::new));
    running.etsy_file = fresh.etsy_file;
    lines
}

/// Stores the bounds that changed; one line for each.
fn apply_bounds(running: &mut Config, fresh: &Config, slots: &Slots) -> Vec<String> {
    let mut lines = Vec::new();
    if running.limits.max_line_bytes != fresh.limits.max_line_bytes {
        slots
            .intake
            .max_line_bytes
            .store(fresh.limits.max_line_bytes, Ordering::Relaxed);
    }
    if running.limits.max_names != fresh.limits.max_names {
        lines.push(
            "SIGHUP: the gauges and idle series remembered keep their --max-names bound until a restart"
                .into(),
        );
    }
    let when = "lines at once, names and samples from the next interval";
    store_changed(
        "intake",
        when,
        &mut running.limits,
        fresh.limits,
        &slots.intake_limits,
        &mut lines,
    );
    let when = "to connections accepted from now on";
    store_changed(
        "TCP",
        when,
        &mut running.tcp,
        fresh.tcp,
        &slots.tcp,
        &mut lines,
    );
    store_changed(
        "mgmt",
        when,
        &mut running.mgmt,
        fresh.mgmt,
        &slots.mgmt,
        &mut lines,
    );
    let when = "from the next flush";
    store_changed(
        "backlog",
        when,
        &mut running.backlog,
        fresh.backlog,
        &slots.backlog,
        &mut lines,
    );
    lines
}

/// Stores `fresh` in `slot` if it differs from `running`, saying so.
fn store_changed<T: Copy + PartialEq + std::fmt::Debug>(
    what: &str,
    when: &str,
    running: &mut T,
    fresh: T,
    slot: &ArcSwap<T>,
    lines: &mut Vec<String>,
) {
    if *running != fresh {
        slot.store(Arc::new(fresh));
        lines.push(format!(
            "SIGHUP: {what} limits applied {when} ({running:?} -> {fresh:?})"
        ));
        *running = fresh;
    }
}

/// Whether a reload can move the target: one publisher, to stdout or one
/// carbon (its backlog goes along).
fn movable(config: &Config) -> bool {
    match config.target {
        Target::Console => true,
        Target::Graphite(_) => config.ring.destinations.len() == 1,
        Target::Nowhere => false,
    }
}

/// Where the lines go, for messages.
fn destinations(config: &Config) -> String {
    match config.target {
        Target::Graphite(_) if config.ring.destinations.len() > 1 => {
            let each: Vec<String> = config
                .ring
                .destinations
                .iter()
                .map(|d| Target::Graphite(d.carbon.clone()).to_string())
                .collect();
            format!("{} ({:?})", each.join(","), config.ring.spread)
        }
        _ => config.target.to_string(),
    }
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
            "gauge ttl",
            format!("{:?}", running.gauge_ttl),
            format!("{:?}", fresh.gauge_ttl),
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
