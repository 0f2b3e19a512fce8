//! Ingests a fixed load in-process, for instruction counts under callgrind:
//! `valgrind --tool=callgrind target/release/examples/ingest_profile`.

use statsd::aggregate::{Hasher, Limits, Shard};

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
    for round in 0..10_000 {
        shard.ingest_buffer(&datagrams[round % datagrams.len()], |_, _| {});
    }
    println!("{} lines", shard.intake.lines);
}
