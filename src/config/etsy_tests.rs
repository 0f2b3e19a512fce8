use std::time::Duration;

use super::super::{Config, ParseOutcome};
use crate::render::etsy::{Deletes, Rank};

fn parse(args: &[&str]) -> Result<Config, ParseOutcome> {
    Config::parse_from(std::iter::once("statsd").chain(args.iter().copied()))
}

fn refused(args: &[&str]) -> String {
    match parse(args) {
        Err(ParseOutcome::Invalid(line)) => {
            assert!(!line.contains('\n'), "{line}");
            line
        }
        other => panic!("{args:?}: {other:?}"),
    }
}

#[test]
fn several_percentiles_as_list_and_repeated() {
    let c = parse(&["-t", "90,99.9", "-t", "-10,50", "--pct", "90"]).unwrap();
    let outputs = c
        .flush
        .outputs
        .expect("several thresholds need the extended render");
    assert_eq!(outputs.pcts, [90.0, 99.9, -10.0, 50.0]);
    assert_eq!(outputs.rank, Rank::Original);
    assert_eq!(outputs.deletes, Deletes::ALL);
    assert!(!outputs.flush_counts && outputs.internal.is_none());
    assert_eq!(c.flush.render.pct, 90.0);
}

#[test]
fn etsy_defaults() {
    let c = parse(&["--etsy"]).unwrap();
    let outputs = c.flush.outputs.expect("--etsy");
    assert_eq!(outputs.deletes, Deletes::NONE);
    assert!(outputs.flush_counts && outputs.timer_metrics.is_none());
    assert_eq!(outputs.rank, Rank::Etsy);
    assert_eq!(outputs.internal.as_ref().unwrap().prefix_stats, "statsd");
    assert_eq!(outputs.namespace.counter_count.0, "stats_counts");
    assert!(c.etsy.etsy && c.etsy.etsy_names && !c.etsy.flush_align);
}

#[test]
fn delete_idle_stats_sets_the_others_not_given() {
    let c = parse(&[
        "--etsy",
        "--delete-idle-stats",
        "--delete-counters",
        "false",
    ])
    .unwrap();
    let d = c.flush.outputs.unwrap().deletes;
    assert!(!d.counters && d.timers && d.sets && d.gauges);
    let c = parse(&["--delete-gauges", "false"]).unwrap();
    assert!(!c.flush.outputs.unwrap().deletes.gauges);
}

#[test]
fn new_namespace_prefixes() {
    let c = parse(&[
        "--etsy",
        "--legacy-namespace",
        "false",
        "--global-prefix",
        "",
        "--prefix-counter",
        "c",
        "--global-suffix",
        "s",
    ])
    .unwrap();
    let ns = c.flush.outputs.unwrap().namespace.clone();
    assert_eq!(ns.counter_rate, ("c".to_string(), ".rate"));
    assert_eq!(ns.timer, "timers");
    assert_eq!(ns.global_suffix, ".s");
}

#[test]
fn histograms_parse_in_order() {
    let c = parse(&["--histogram", "api=0.01,0.1,inf", "--histogram", "=1,10"]).unwrap();
    let h = &c.flush.outputs.unwrap().histograms;
    assert_eq!((h[0].metric.as_str(), h[1].metric.as_str()), ("api", ""));
    assert_eq!(h[0].bins[0].suffix, ".histogram.bin_0_01");
    assert_eq!(h[0].bins[2].suffix, ".histogram.bin_inf");
}

#[test]
fn bad_etsy_flags_are_one_line() {
    for args in [
        &["-t", "0"][..],
        &["-t", "101"],
        &["-t", "-101"],
        &["--histogram", "api"],
        &["--histogram", "a=2,1"],
        &["--histogram", "a=x"],
        &["--delete-gauges", "maybe"],
        &["--global-prefix", "x"],
        &["--etsy", "--global-prefix", "a b"],
    ] {
        refused(args);
    }
    assert!(refused(&["--prefix-timer", "t"]).contains("needs --etsy"));
}

#[test]
fn the_originals_abbreviations_still_mean_its_flags() {
    let c = parse(&["--flush", "2", "--timer", "t.x"]).unwrap();
    assert_eq!(c.flush_interval, Duration::from_secs(2));
    assert_eq!(c.flush.render.timers_prefix, "t.x");
    let c = parse(&["--flush-a"]).unwrap();
    assert!(c.etsy.flush_align);
}
