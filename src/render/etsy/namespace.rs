//! Paths of each kind, as Etsy's graphite backend builds them
//! (`backends/graphite.js`, `graphite_init`), or as the original names them.

/// Etsy's `graphite.*` prefix settings, defaults as in Etsy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtsyPrefixes {
    /// `legacyNamespace` (default true): `stats.X`, `stats_counts.X`, ...
    pub legacy: bool,
    /// `globalPrefix` (default `stats`; new namespace only).
    pub global: String,
    /// `prefixCounter` (default `counters`; new namespace only).
    pub counter: String,
    /// `prefixTimer` (default `timers`; new namespace only).
    pub timer: String,
    /// `prefixGauge` (default `gauges`; new namespace only).
    pub gauge: String,
    /// `prefixSet` (default `sets`; new namespace only).
    pub set: String,
    /// `globalSuffix` (default none), written after every name.
    pub global_suffix: Option<String>,
}

impl Default for EtsyPrefixes {
    fn default() -> Self {
        EtsyPrefixes {
            legacy: true,
            global: "stats".into(),
            counter: "counters".into(),
            timer: "timers".into(),
            gauge: "gauges".into(),
            set: "sets".into(),
            global_suffix: None,
        }
    }
}

/// Where each kind of series is written: a prefix (may be empty) before the
/// name, a fixed suffix after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    /// Counter rates.
    pub counter_rate: (String, &'static str),
    /// Counter counts (`flush_counts`).
    pub counter_count: (String, &'static str),
    /// Timers (their statistic follows the name).
    pub timer: String,
    /// Gauges.
    pub gauge: String,
    /// Sets.
    pub set: (String, &'static str),
    /// `.globalSuffix`, or empty.
    pub global_suffix: String,
    /// Etsy's `globalNamespace`, joined: the internal metrics' root in the
    /// new namespace (`stats`).
    pub global: String,
    /// True in Etsy's legacy namespace.
    pub legacy: bool,
}

/// Joins the non-empty parts with dots.
fn join(parts: &[&str]) -> String {
    parts
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(".")
}

impl Namespace {
    /// The original's prefixes; counts (`--flush-counts`) go under
    /// `<counters-prefix>_counts`, which is Etsy's legacy `stats_counts` for
    /// the default prefix.
    pub fn original(counters: &str, timers: &str, gauges: &str, sets: &str) -> Namespace {
        Namespace {
            counter_rate: (counters.into(), ""),
            counter_count: (format!("{counters}_counts"), ""),
            timer: timers.into(),
            gauge: gauges.into(),
            set: (sets.into(), ""),
            global_suffix: String::new(),
            global: counters.into(),
            legacy: true,
        }
    }

    /// Etsy's namespaces: legacy (`stats.X`, `stats_counts.X`,
    /// `stats.timers.X.*`, `stats.gauges.X`, `stats.sets.X.count`; the
    /// prefixes are ignored, as Etsy ignores them) or new
    /// (`<global>.<prefixCounter>.X.rate`, `.count`, ...).
    pub fn etsy(p: &EtsyPrefixes) -> Namespace {
        let global_suffix = p
            .global_suffix
            .as_ref()
            .map_or(String::new(), |s| format!(".{s}"));
        if p.legacy {
            return Namespace {
                counter_rate: ("stats".into(), ""),
                counter_count: ("stats_counts".into(), ""),
                timer: "stats.timers".into(),
                gauge: "stats.gauges".into(),
                set: ("stats.sets".into(), ".count"),
                global_suffix,
                global: "stats".into(),
                legacy: true,
            };
        }
        let counters = join(&[&p.global, &p.counter]);
        Namespace {
            counter_rate: (counters.clone(), ".rate"),
            counter_count: (counters, ".count"),
            timer: join(&[&p.global, &p.timer]),
            gauge: join(&[&p.global, &p.gauge]),
            set: (join(&[&p.global, &p.set]), ".count"),
            global_suffix,
            global: p.global.clone(),
            legacy: false,
        }
    }
}
