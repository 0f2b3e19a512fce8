//! The Etsy output flags (`--etsy` and the outputs it brings, each also
//! offered to the original's command line) and their typed settings. The
//! names are fixed with the Etsy config loader (`config.js` keys map onto
//! them).

use std::sync::Arc;

use clap::ArgAction;

use super::{check_prefix, Cli};
use crate::render::etsy::namespace::EtsyPrefixes;
use crate::render::etsy::{
    Bin, Deletes, EtsyInternal, Histogram, Namespace, Outputs, Rank, ORIGINAL_TIMER_METRICS,
};

/// The Etsy output flags, flattened into [`Cli`].
#[derive(Debug, Clone, Default, clap::Args)]
pub struct EtsyArgs {
    /// Etsy statsd 0.9.0's outputs: its namespaces, counts, timer statistics, idle series, internal metrics and percentile rank
    #[arg(long = "etsy", help_heading = "Etsy statsd outputs")]
    pub etsy: bool,

    /// Histogram bins for timers whose name contains METRIC (empty: every timer), e.g. api=0.01,0.1,1,inf; repeatable, the first match wins
    #[arg(long = "histogram", value_name = "METRIC=BINS", action = ArgAction::Append, help_heading = "Etsy statsd outputs")]
    pub histogram: Vec<String>,

    /// Delete idle counters, timers, sets and gauges instead of writing them as 0 or resending them (Etsy's deleteIdleStats)
    #[arg(long = "delete-idle-stats", help_heading = "Etsy statsd outputs")]
    pub delete_idle_stats: bool,

    /// Idle gauges are not resent [default: true; false under --etsy]
    #[arg(long = "delete-gauges", value_name = "BOOL", action = ArgAction::Set, value_parser = clap::value_parser!(bool), help_heading = "Etsy statsd outputs")]
    pub delete_gauges: Option<bool>,

    /// Idle timers are not written as count 0 [default: true; false under --etsy]
    #[arg(long = "delete-timers", value_name = "BOOL", action = ArgAction::Set, value_parser = clap::value_parser!(bool), help_heading = "Etsy statsd outputs")]
    pub delete_timers: Option<bool>,

    /// Idle sets are not written as 0 [default: true; false under --etsy]
    #[arg(long = "delete-sets", value_name = "BOOL", action = ArgAction::Set, value_parser = clap::value_parser!(bool), help_heading = "Etsy statsd outputs")]
    pub delete_sets: Option<bool>,

    /// Idle counters are not written as 0 [default: true; false under --etsy]
    #[arg(long = "delete-counters", value_name = "BOOL", action = ArgAction::Set, value_parser = clap::value_parser!(bool), help_heading = "Etsy statsd outputs")]
    pub delete_counters: Option<bool>,

    /// Clean names with Etsy's rule (each run of white space one '_', '/' '-', keep A-Za-z0-9_-.) [default: true under --etsy]
    #[arg(long = "key-name-sanitize", value_name = "BOOL", action = ArgAction::Set, value_parser = clap::value_parser!(bool), help_heading = "Etsy statsd outputs")]
    pub key_name_sanitize: Option<bool>,

    /// Timer statistics written (Etsy's calculatedTimerMetrics), e.g. count,mean,upper_percent,histogram [default: all under --etsy, else lower,count,mean,upper,upper_percent]
    #[arg(
        long = "timer-metrics",
        value_name = "LIST",
        value_delimiter = ',',
        help_heading = "Etsy statsd outputs"
    )]
    pub timer_metrics: Option<Vec<String>>,

    /// Write counter counts next to rates (stats_counts.X, or X.count in Etsy's new namespace) [default: true under --etsy, else false]
    #[arg(long = "flush-counts", value_name = "BOOL", action = ArgAction::Set, value_parser = clap::value_parser!(bool), help_heading = "Etsy statsd outputs")]
    pub flush_counts: Option<bool>,

    /// Print every incoming line on stdout (Etsy's dumpMessages)
    #[arg(long = "dump-messages", help_heading = "Etsy statsd outputs")]
    pub dump_messages: bool,

    /// With --etsy: Etsy's legacy namespace (stats.X, stats_counts.X, stats.gauges.X) or the new one (stats.counters.X.rate) [default: true]
    #[arg(long = "legacy-namespace", value_name = "BOOL", action = ArgAction::Set, value_parser = clap::value_parser!(bool), help_heading = "Etsy statsd outputs")]
    pub legacy_namespace: Option<bool>,

    /// With --etsy --legacy-namespace false: the first part of every path [default: stats]
    #[arg(long = "global-prefix", help_heading = "Etsy statsd outputs")]
    pub global_prefix: Option<String>,

    /// With --etsy --legacy-namespace false: counters' part after the global prefix [default: counters]
    #[arg(long = "prefix-counter", help_heading = "Etsy statsd outputs")]
    pub prefix_counter: Option<String>,

    /// With --etsy --legacy-namespace false: timers' part [default: timers]
    #[arg(long = "prefix-timer", help_heading = "Etsy statsd outputs")]
    pub prefix_timer: Option<String>,

    /// With --etsy --legacy-namespace false: gauges' part [default: gauges]
    #[arg(long = "prefix-gauge", help_heading = "Etsy statsd outputs")]
    pub prefix_gauge: Option<String>,

    /// With --etsy --legacy-namespace false: sets' part [default: sets]
    #[arg(long = "prefix-set", help_heading = "Etsy statsd outputs")]
    pub prefix_set: Option<String>,

    /// With --etsy: Etsy's prefixStats, the internal metrics' prefix [default: the --metadata-prefix, statsd]
    #[arg(long = "prefix-internal-metrics", help_heading = "Etsy statsd outputs")]
    pub prefix_internal_metrics: Option<String>,

    /// With --etsy: a last part written after every name (Etsy's globalSuffix)
    #[arg(long = "global-suffix", help_heading = "Etsy statsd outputs")]
    pub global_suffix: Option<String>,

    /// Flush at wall-clock multiples of the interval; timestamps are those multiples, never drifting or skipping one
    #[arg(long = "flush-align", help_heading = "Etsy statsd outputs")]
    pub flush_align: bool,
}

/// What the Etsy flags decide, beyond the render.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EtsySettings {
    /// The Etsy-style render; None: the original's own (fast) render.
    pub outputs: Option<Arc<Outputs>>,
    /// `--etsy`: flush timestamps rounded as Etsy's `Math.round`.
    pub etsy: bool,
    /// Print every incoming line on stdout.
    pub dump_messages: bool,
    /// Names cleaned with Etsy's rule.
    pub etsy_names: bool,
    /// Flush at wall-clock multiples of the interval.
    pub flush_align: bool,
}

/// A percentile threshold: (0, 100], or [-100, 0) for the top values.
fn check_pct(pct: f64) -> Result<f64, String> {
    if pct.is_finite() && pct != 0.0 && (-100.0..=100.0).contains(&pct) {
        Ok(pct)
    } else {
        Err(format!(
            "--pct must be in (0, 100] (or [-100, 0) for the top values), not {pct}"
        ))
    }
}

/// `METRIC=B1,B2,...` (the bins ascending; `inf` last if at all).
fn parse_histogram(text: &str) -> Result<Histogram, String> {
    let bad = |why: &str| format!("--histogram {text:?}: {why} (e.g. api=0.01,0.1,1,inf)");
    let (metric, bins) = text.rsplit_once('=').ok_or_else(|| bad("no '='"))?;
    let bins: Vec<Bin> = bins
        .split(',')
        .map(|b| Bin::parse(b).ok_or_else(|| bad(&format!("bin {b:?} is not a number or inf"))))
        .collect::<Result<_, _>>()?;
    if bins.windows(2).any(|w| w[0].below >= w[1].below) {
        return Err(bad("bins must ascend"));
    }
    Ok(Histogram {
        metric: metric.to_string(),
        bins,
    })
}

/// Checks the Etsy flags; `pcts` are `-t`'s values.
pub fn settings(cli: &Cli, pcts: &[f64]) -> Result<EtsySettings, String> {
    let a = &cli.etsy;
    let mut unique: Vec<f64> = Vec::new();
    for pct in pcts {
        let pct = check_pct(*pct)?;
        if !unique.contains(&pct) {
            unique.push(pct);
        }
    }
    let namespace_flags = [
        ("--legacy-namespace", a.legacy_namespace.is_some()),
        ("--global-prefix", a.global_prefix.is_some()),
        ("--prefix-counter", a.prefix_counter.is_some()),
        ("--prefix-timer", a.prefix_timer.is_some()),
        ("--prefix-gauge", a.prefix_gauge.is_some()),
        ("--prefix-set", a.prefix_set.is_some()),
        (
            "--prefix-internal-metrics",
            a.prefix_internal_metrics.is_some(),
        ),
        ("--global-suffix", a.global_suffix.is_some()),
    ];
    if let (false, Some((flag, _))) = (a.etsy, namespace_flags.iter().find(|(_, given)| *given)) {
        return Err(format!(
            "{flag} names a part of Etsy's namespace: it needs --etsy (the original's paths have --counters-prefix etc.)"
        ));
    }
    // Etsy: deleteIdleStats sets every delete* not given.
    let idle_default = a.delete_idle_stats || !a.etsy;
    let deletes = Deletes {
        counters: a.delete_counters.unwrap_or(idle_default),
        timers: a.delete_timers.unwrap_or(idle_default),
        sets: a.delete_sets.unwrap_or(idle_default),
        gauges: a.delete_gauges.unwrap_or(idle_default),
    };
    let histograms = a
        .histogram
        .iter()
        .map(|h| parse_histogram(h))
        .collect::<Result<Vec<_>, _>>()?;
    let timer_metrics = match &a.timer_metrics {
        // Etsy: an empty list means every metric.
        Some(list) if list.iter().any(|m| !m.trim().is_empty()) => {
            Some(list.iter().map(|m| m.trim().to_string()).collect())
        }
        _ if a.etsy => None,
        _ => Some(ORIGINAL_TIMER_METRICS.map(String::from).to_vec()),
    };
    let flush_counts = a.flush_counts.unwrap_or(a.etsy);
    let extended = a.etsy
        || unique.len() > 1
        || unique.iter().any(|p| *p < 0.0)
        || a.timer_metrics.is_some()
        || !histograms.is_empty()
        || flush_counts
        || deletes != Deletes::ALL;
    let outputs = extended.then(|| -> Result<Outputs, String> {
        let (namespace, internal) = if a.etsy {
            let part = |flag: &str, value: &Option<String>, default: &str| match value {
                Some(v) if v.is_empty() => Ok(String::new()),
                Some(v) => check_prefix(flag, v),
                None => Ok(default.to_string()),
            };
            let d = EtsyPrefixes::default();
            let prefixes = EtsyPrefixes {
                legacy: a.legacy_namespace.unwrap_or(true),
                global: part("--global-prefix", &a.global_prefix, &d.global)?,
                counter: part("--prefix-counter", &a.prefix_counter, &d.counter)?,
                timer: part("--prefix-timer", &a.prefix_timer, &d.timer)?,
                gauge: part("--prefix-gauge", &a.prefix_gauge, &d.gauge)?,
                set: part("--prefix-set", &a.prefix_set, &d.set)?,
                global_suffix: match &a.global_suffix {
                    Some(s) => Some(check_prefix("--global-suffix", s)?),
                    None => None,
                },
            };
            let prefix_stats = match &a.prefix_internal_metrics {
                Some(p) => check_prefix("--prefix-internal-metrics", p)?,
                None => cli.metadata_prefix.clone(),
            };
            (
                Namespace::etsy(&prefixes),
                Some(EtsyInternal { prefix_stats }),
            )
        } else {
            let ns = Namespace::original(
                &cli.counters_prefix,
                &cli.timers_prefix,
                &cli.gauge_prefix,
                &cli.sets_prefix,
            );
            (ns, None)
        };
        Ok(Outputs {
            namespace,
            pcts: unique.clone(),
            rank: if a.etsy { Rank::Etsy } else { Rank::Original },
            timer_metrics,
            histograms,
            flush_counts,
            deletes,
            internal,
        })
    });
    Ok(EtsySettings {
        outputs: outputs.transpose()?.map(Arc::new),
        etsy: a.etsy,
        dump_messages: a.dump_messages,
        etsy_names: a.etsy || a.key_name_sanitize == Some(true),
        flush_align: a.flush_align,
    })
}

#[cfg(test)]
#[path = "etsy_tests.rs"]
mod tests;
