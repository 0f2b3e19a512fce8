//! Ingests a fixed load in-process, for instruction counts under callgrind:
//! `valgrind --tool=callgrind target/release/examples/ingest_profile`.

use statsd::aggregate::{Hasher, Limits, Shard};
use statsd::intake::Intake;

fn main() {
    let datagrams: Vec<Vec<u8>> = (0..50)
        .map(|d| {
            (0..20)
                .map(|i| format!("bench.c.{}:1|c\n", (d * 20 + i) % 1000))
                .collect::<String>()
                .into_bytes()
        })
        .collect();
    let mut shard = Shard::new(Hasher::default(), Limits::default());
    let intake = Intake::new(Limits::default().max_line_bytes);
    for round in 0..10_000 {
        intake.ingest(&mut shard, &datagrams[round % datagrams.len()]);
    }
    println!("{} lines", shard.intake.lines);
}
