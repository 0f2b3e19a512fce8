//! `--flush-align`: flushes at wall-clock multiples of the interval, each
//! stamped with its multiple: successive flushes are exactly one interval
//! apart, with and without `--etsy`.

mod support;

use support::etsy::FlushCarbon;
use support::to_carbon;

/// The timestamps of the next `n` flushes (each flush has one).
fn stamps(carbon: &FlushCarbon, n: usize) -> Vec<u64> {
    (0..n)
        .map(|_| {
            let (_, lines) = carbon.next("our statsd");
            let mut stamps: Vec<u64> = lines
                .iter()
                .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
                .collect();
            stamps.dedup();
            assert_eq!(stamps.len(), 1, "one timestamp per flush: {lines:?}");
            stamps[0]
        })
        .collect()
}

fn aligned(extra: &[&str]) {
    let carbon = FlushCarbon::start();
    let mut flags = vec!["--flush-align"];
    flags.extend_from_slice(extra);
    let _server = to_carbon::server(carbon.port, "2", &flags);
    let got = stamps(&carbon, 3);
    for stamp in &got {
        assert_eq!(stamp % 2, 0, "not a multiple of the interval: {got:?}");
    }
    assert!(
        got.windows(2).all(|w| w[1] == w[0] + 2),
        "a slot drifted or was skipped: {got:?}"
    );
}

#[test]
fn original_flushes_are_aligned() {
    aligned(&[]);
}

#[test]
fn etsy_flushes_are_aligned() {
    aligned(&["--etsy"]);
}
