//! Arbitrary bytes -> the XML-RPC endpoint's HTTP/1 connection and body dispatch,
//! in memory. The checks live in `tests/fuzz_oracle` (shared with `cargo test`).
#![no_main]

#[path = "../../tests/fuzz_oracle/mod.rs"]
mod fuzz_oracle;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_oracle::xmlrpc_request(data));
