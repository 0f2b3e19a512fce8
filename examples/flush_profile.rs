//! One flush of N distinct counter names, stage by stage, for time and
//! memory (and instruction counts under callgrind):
//! `target/release/examples/flush_profile 1000000` prints the ingest, merge
//! and render times and the peak RSS after each stage;
//! `flush_profile 100000 10` does the same for 100k timers of 10 samples
//! each (values `i % 1000`, sent name after name as statsd-bench does).

use std::time::Instant;

use statsd::aggregate::{merge, GaugeState, Hasher, Limits, NameRegistry, Shard};
use statsd::flush::{build, OwnStats};
use statsd::intake::Intake;
use statsd::render::RenderConfig;

fn status_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn report(stage: &str, started: Instant) {
    println!(
        "{stage:>8}: {:>7.3} s  RSS {:>6.1} MiB  peak {:>6.1} MiB",
        started.elapsed().as_secs_f64(),
        status_kib("VmRSS:") as f64 / 1024.0,
        status_kib("VmHWM:") as f64 / 1024.0
    );
}

fn main() {
    statsd::memory::give_back_large_blocks();
    let names: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    // Timer samples per name; 0: one counter line per name.
    let samples: usize = std::env::args()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let hasher = Hasher::default();
    let limits = Limits {
        max_names: 2 * names,
        ..Limits::default()
    };
    let registry = std::sync::Arc::new(NameRegistry::default());
    // One sender: every datagram lands in one worker's shard; the other is empty.
    let mut shards = [
        Shard::with_budget(hasher.clone(), limits, registry.clone()),
        Shard::with_budget(hasher.clone(), limits, registry.clone()),
    ];
    let intake = Intake::new(limits.max_line_bytes);
    let started = Instant::now();
    let mut datagram = String::new();
    let lines = names * samples.max(1);
    for k in 0..lines {
        let i = k % names;
        if samples == 0 {
            datagram.push_str(&format!("bench.c.{i}:1|c\n"));
        } else {
            datagram.push_str(&format!("bench.ms.{i}:{}|ms\n", i % 1000));
        }
        if k % 20 == 19 || k + 1 == lines {
            intake.ingest(&mut shards[0], datagram.as_bytes());
            datagram.clear();
        }
    }
    report("ingest", started);
    let started = Instant::now();
    let taken: Vec<Shard> = shards.iter_mut().map(Shard::take).collect();
    registry.reset();
    let mut gauges = GaugeState::new(hasher.clone());
    let mut snapshot = merge(taken, &mut gauges, limits.max_timer_samples);
    report("merge", started);
    let started = Instant::now();
    let config = RenderConfig::default();
    let (payload, flush) = build(&mut snapshot, &OwnStats::default(), &config, 1_700_000_000);
    report("render", started);
    drop(snapshot);
    println!(
        "{} lines, {} bytes, render.time {:.3} s",
        flush.total_lines,
        payload.data.len(),
        flush.render.duration().as_secs_f64()
    );
}
