//! Property tests: no input panics the parser, and a counter's total does
//! not depend on how its lines are split into datagrams.

use proptest::prelude::*;
use statsd::aggregate::{merge, GaugeState, Hasher, Limits, Shard};
use statsd::intake::Intake;
use statsd::protocol::parse_line;

fn intake() -> Intake {
    Intake::new(Limits::default().max_line_bytes)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_line(&bytes);
        let mut shard = Shard::new(Hasher::default(), Limits::default());
        intake().ingest(&mut shard, &bytes);
    }

    #[test]
    fn statsd_shaped_text_never_panics(text in "[a-z:|@#.,+\\-0-9eE\\n gcmshd/]{0,200}") {
        let mut shard = Shard::new(Hasher::default(), Limits::default());
        intake().ingest(&mut shard, text.as_bytes());
        let mut gauges = GaugeState::new(Hasher::default());
        let mut snapshot = merge(vec![shard], &mut gauges, 100);
        let config = statsd::render::RenderConfig::default();
        let mut out = Vec::new();
        statsd::render::render_metrics(&mut snapshot, &config, 1, &mut out);
        let text = String::from_utf8(out).unwrap();
        for line in text.lines() {
            let value = line.split(' ').nth(1).unwrap();
            prop_assert!(value.parse::<f64>().unwrap().is_finite(), "{line}");
        }
    }

    #[test]
    fn counter_total_independent_of_datagram_split(
        values in proptest::collection::vec(1u32..1000, 1..200),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..20),
        workers in 1usize..4,
    ) {
        let lines: Vec<String> = values.iter().map(|v| format!("c:{v}|c\n")).collect();
        let mut cut_at: Vec<usize> = cuts.iter().map(|i| i.index(lines.len() + 1)).collect();
        cut_at.push(0);
        cut_at.push(lines.len());
        cut_at.sort_unstable();
        cut_at.dedup();
        let hasher = Hasher::default();
        let mut shards: Vec<Shard> = (0..workers).map(|_| Shard::new(hasher.clone(), Limits::default())).collect();
        for (n, pair) in cut_at.windows(2).enumerate() {
            let datagram: String = lines[pair[0]..pair[1]].concat();
            intake().ingest(&mut shards[n % workers], datagram.as_bytes());
        }
        let mut gauges = GaugeState::new(hasher);
        let snapshot = merge(shards, &mut gauges, 100);
        let expected: u64 = values.iter().map(|v| u64::from(*v)).sum();
        prop_assert_eq!(snapshot.counters.len(), 1);
        prop_assert_eq!(snapshot.counters[0].1, expected as f64);
        prop_assert_eq!(snapshot.intake.lines, values.len() as u64);
    }
}
