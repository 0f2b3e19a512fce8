//! Microbenchmarks of the hot path: parse, ingest (parse + aggregate) and
//! render. `cargo bench --bench hot_path`.

use divan::{black_box, Bencher};
use statsd::aggregate::{merge, GaugeState, Hasher, Limits, Shard};
use statsd::intake::Intake;
use statsd::protocol::parse_line;
use statsd::render::{render_metrics, RenderConfig};
use statsd::sink::fanout::split;
use statsd::sink::ring::{HashRing, HashType, Placement, RingNode};
use statsd::sink::Payload;

fn main() {
    divan::main();
}

/// A 20-line datagram of counters over 1000 names, like the load generator's.
fn datagram(offset: usize) -> Vec<u8> {
    (0..20)
        .map(|i| format!("bench.c.{}:1|c\n", (offset * 20 + i) % 1000))
        .collect::<String>()
        .into_bytes()
}

#[divan::bench(args = ["bench.c.123:1|c", "api.latency:12.5|ms|@0.5", "g:-3|g", "req:1|c|#route:home,method:get"])]
fn parse(line: &str) -> usize {
    parse_line(black_box(line.as_bytes())).map_or(0, |l| l.values.len())
}

#[divan::bench]
fn ingest_20_line_datagram(bencher: Bencher) {
    let datagrams: Vec<Vec<u8>> = (0..50).map(datagram).collect();
    let mut shard = Shard::new(Hasher::default(), Limits::default());
    let intake = Intake::new(Limits::default().max_line_bytes);
    let mut n = 0;
    bencher
        .counter(divan::counter::ItemsCount::new(20usize))
        .bench_local(|| {
            n = (n + 1) % datagrams.len();
            intake.ingest(&mut shard, black_box(&datagrams[n]));
        });
}

#[divan::bench(args = [10_000, 100_000])]
fn merge_and_render(bencher: Bencher, names: usize) {
    let hasher = Hasher::default();
    let mut shard = Shard::new(
        hasher.clone(),
        Limits {
            max_names: 0,
            ..Limits::default()
        },
    );
    let intake = Intake::new(Limits::default().max_line_bytes);
    for i in 0..names {
        let kind = ["c", "g", "ms", "s"][i % 4];
        intake.ingest(&mut shard, format!("name.{i}:{i}|{kind}\n").as_bytes());
    }
    bencher
        .counter(divan::counter::ItemsCount::new(names))
        .with_inputs(|| shard.clone())
        .bench_local_values(|shard| {
            let mut gauges = GaugeState::new(hasher.clone());
            let mut snapshot = merge(vec![shard], &mut gauges, 10_000);
            let mut out = Vec::with_capacity(names * 64);
            render_metrics(
                &mut snapshot,
                &RenderConfig::default(),
                1_700_000_000,
                &mut out,
            );
            out.len()
        });
}

/// The split of a rendered flush among three carbon destinations, per ring
/// type (`--graphite-host a,b,c`): every path placed once, every line
/// copied once; compare with `merge_and_render` at the same size.
#[divan::bench(args = [HashType::CarbonCh, HashType::Fnv1aCh, HashType::JumpFnv1aCh])]
fn split_100k_lines_three_ways(bencher: Bencher, hash_type: HashType) {
    let nodes: Vec<RingNode> = (1..=3)
        .map(|i| RingNode {
            server: format!("10.0.0.{i}"),
            instance: Some(format!("{i}")),
        })
        .collect();
    let ring = HashRing::new(&nodes, hash_type);
    let mut data = Vec::new();
    for i in 0..100_000 {
        data.extend_from_slice(format!("stats.name.{i} {i} 1700000000\n").as_bytes());
    }
    let payload = Payload {
        data,
        lines: 100_000,
    };
    let mut placement = Placement::default();
    bencher
        .counter(divan::counter::ItemsCount::new(100_000usize))
        .bench_local(|| split(black_box(&payload), &ring, 1, 3, &mut placement).len());
}
