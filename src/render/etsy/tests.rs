use std::time::Duration;

use super::namespace::EtsyPrefixes;
use super::timer::etsy_metric_class;
use super::*;
use crate::aggregate::{merge, GaugeState, Hasher, Limits, Shard};
use crate::intake::Intake;
use crate::render::RenderConfig;

fn snapshot(input: &str) -> Snapshot {
    let hasher = Hasher::with_seeds(1, 2, 3, 4);
    let mut shard = Shard::new(hasher.clone(), Limits::default());
    Intake::new(1 << 16).ingest(&mut shard, input.as_bytes());
    merge(vec![shard], &mut GaugeState::new(hasher), 10_000)
}

fn etsy_outputs(legacy: bool, pcts: &[f64]) -> Outputs {
    Outputs {
        namespace: Namespace::etsy(&EtsyPrefixes {
            legacy,
            ..EtsyPrefixes::default()
        }),
        pcts: pcts.to_vec(),
        rank: Rank::Etsy,
        timer_metrics: None,
        histograms: Vec::new(),
        flush_counts: true,
        deletes: Deletes::NONE,
        internal: Some(EtsyInternal {
            prefix_stats: "statsd".into(),
        }),
    }
}

fn lines(snapshot: &mut Snapshot, outputs: &Outputs) -> Vec<String> {
    let mut out = Vec::new();
    render_metrics(snapshot, outputs, Duration::from_secs(10), 7, &mut out);
    let text = String::from_utf8(out).unwrap();
    text.lines()
        .map(|l| l.trim_end_matches(" 7").to_string())
        .collect()
}

#[test]
fn legacy_namespace_paths() {
    let mut snap = snapshot("c:5|c\ng:3|g\ns:a|s\nt:4|ms\n");
    let got = lines(&mut snap, &etsy_outputs(true, &[90.0]));
    for want in [
        "stats.c 0.5",
        "stats_counts.c 5",
        "stats.gauges.g 3",
        "stats.sets.s.count 1",
        "stats.timers.t.upper_90 4",
        "stats.timers.t.count_ps 0.1",
        "stats.timers.t.median 4",
    ] {
        assert!(got.iter().any(|l| l == want), "{want} not in {got:?}");
    }
}

#[test]
fn new_namespace_paths_and_suffix() {
    let mut snap = snapshot("c:5|c\ng:3|g\ns:a|s\nt:4|ms\nd:1|c|#k:v\n");
    let mut outputs = etsy_outputs(false, &[90.0]);
    outputs.namespace = Namespace::etsy(&EtsyPrefixes {
        legacy: false,
        global_suffix: Some("sfx".into()),
        ..EtsyPrefixes::default()
    });
    let got = lines(&mut snap, &outputs);
    for want in [
        "stats.counters.c.rate.sfx 0.5",
        "stats.counters.c.count.sfx 5",
        "stats.counters.d.rate.sfx;k=v 0.1",
        "stats.gauges.g.sfx 3",
        "stats.sets.s.count.sfx 1",
        "stats.timers.t.mean.sfx 4",
    ] {
        assert!(got.iter().any(|l| l == want), "{want} not in {got:?}");
    }
}

#[test]
fn timer_statistics_as_etsy() {
    let input: String = (1..=10).map(|i| format!("t:{i}|ms\n")).collect();
    let mut snap = snapshot(&input);
    let got = lines(&mut snap, &etsy_outputs(true, &[90.0, -10.0, 99.9, 1.0]));
    let value = |stat: &str| -> f64 {
        let path = format!("stats.timers.t.{stat} ");
        let line = got
            .iter()
            .find(|l| l.starts_with(&path))
            .unwrap_or_else(|| panic!("{stat}: {got:?}"));
        line[path.len()..].parse().unwrap()
    };
    assert_eq!(value("upper_90"), 9.0);
    assert_eq!(value("count_90"), 9.0);
    assert_eq!(value("sum_90"), 45.0);
    assert_eq!(value("mean_90"), 5.0);
    assert_eq!(value("sum_squares_90"), 285.0);
    assert_eq!(value("lower_top10"), 10.0);
    assert_eq!(value("sum_top10"), 10.0);
    assert_eq!(value("upper_99_9"), 10.0);
    assert_eq!(value("sum"), 55.0);
    assert_eq!(value("sum_squares"), 385.0);
    assert_eq!(value("median"), 5.5);
    assert!((value("std") - 8.25f64.sqrt()).abs() < 1e-12);
    // 1% of 10 values rounds to none: Etsy leaves the threshold out.
    assert!(!got.iter().any(|l| l.contains("_1 ")), "{got:?}");
}

#[test]
fn metric_classes_as_etsy_filter() {
    assert_eq!(etsy_metric_class("upper_90"), "upper_percent");
    assert_eq!(etsy_metric_class("lower_top10"), "lower_percent");
    assert_eq!(etsy_metric_class("sum_squares_90"), "sum_squares_percent");
    assert_eq!(etsy_metric_class("upper_99_9"), "upper_99_percent");
    assert_eq!(etsy_metric_class("count_ps"), "count_ps");
}

#[test]
fn histogram_bins_and_filter() {
    let mut snap = snapshot("a.t:0.005|ms\na.t:0.05|ms\na.t:0.5|ms\na.t:5|ms\n");
    let mut outputs = etsy_outputs(true, &[90.0]);
    outputs.histograms = vec![Histogram {
        metric: "a.".into(),
        bins: ["0.01", "0.1", "1"]
            .iter()
            .map(|b| Bin::parse(b).unwrap())
            .collect(),
    }];
    outputs.timer_metrics = Some(vec!["histogram".into(), "count".into()]);
    let got = lines(&mut snap, &outputs);
    assert_eq!(
        got,
        [
            "stats.timers.a.t.count 4",
            "stats.timers.a.t.histogram.bin_0_01 1",
            "stats.timers.a.t.histogram.bin_0_1 1",
            "stats.timers.a.t.histogram.bin_1 1",
        ]
    );
}

#[test]
fn original_namespace_matches_the_original_render() {
    let input = "c:5|c\ng:3|g\ns:a|s\nt:4|ms\nt:9|ms|@0.5\nu:1|ms\n";
    let config = RenderConfig::default();
    let outputs = Outputs {
        namespace: Namespace::original("stats", "stats.timers", "stats", "stats"),
        pcts: vec![90.0],
        rank: Rank::Original,
        timer_metrics: Some(ORIGINAL_TIMER_METRICS.map(String::from).to_vec()),
        histograms: Vec::new(),
        flush_counts: false,
        deletes: Deletes::ALL,
        internal: None,
    };
    let mut original = Vec::new();
    crate::render::render_metrics(&mut snapshot(input), &config, 7, &mut original);
    let mut original: Vec<String> = String::from_utf8(original)
        .unwrap()
        .lines()
        .map(|l| l.trim_end_matches(" 7").to_string())
        .collect();
    let mut ours = lines(&mut snapshot(input), &outputs);
    original.sort();
    ours.sort();
    assert_eq!(ours, original);
}

#[test]
fn idle_series_are_zero_and_gauges_resent() {
    let hasher = Hasher::with_seeds(1, 2, 3, 4);
    let mut gauges = GaugeState::new(hasher.clone());
    let mut idle = IdleSeries::new(&hasher, Deletes::NONE, 0, 0, true);
    let intake = Intake::new(1 << 16);
    let mut shard = Shard::new(hasher.clone(), Limits::default());
    intake.ingest(&mut shard, b"c:1|c\nt:1|ms\ns:x|s\ng:4|g\n");
    let mut first = merge(vec![shard.take()], &mut gauges, 100);
    idle.fill(&mut first, &mut gauges);
    let mut second = merge(vec![shard.take()], &mut gauges, 100);
    idle.fill(&mut second, &mut gauges);
    let got = lines(&mut second, &etsy_outputs(true, &[90.0]));
    assert_eq!(
        got,
        [
            "stats.c 0",
            "stats_counts.c 0",
            "stats.timers.t.count 0",
            "stats.timers.t.count_ps 0",
            "stats.gauges.g 4",
            "stats.sets.s.count 0",
        ]
    );
}
