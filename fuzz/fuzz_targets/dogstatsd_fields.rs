//! Lines assembled from every dialect's pieces -> the field grammar. The
//! checks live in `tests/fuzz_oracle/fields.rs`, replayed by `cargo test`.
#![no_main]

#[path = "../../tests/fuzz_oracle/mod.rs"]
mod fuzz_oracle;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_oracle::dogstatsd_fields(data));
