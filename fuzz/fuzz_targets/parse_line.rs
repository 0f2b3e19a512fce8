//! Arbitrary bytes -> parser, shards, merge, renderer. The checks live in
//! `tests/fuzz_oracle` so `cargo test` replays saved inputs with the same ones.
#![no_main]

#[path = "../../tests/fuzz_oracle/mod.rs"]
mod fuzz_oracle;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_oracle::statsd_input(data));
