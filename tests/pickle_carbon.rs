//! `--graphite-protocol pickle` against the real carbon-cache (Debian's
//! graphite-carbon): the same datagram goes to one statsd speaking pickle to
//! carbon's pickle port and one speaking plaintext to its line port; whisper
//! must hold the same values for both, bit for bit, and every line of the
//! pickled flush (numStats of them) must have landed.

mod support;

use support::carbon::CarbonCache;
use support::to_carbon;
use support::{wait_for, Statsd, WAIT};

/// Prefix flags putting every path of one statsd under `top`.
fn prefixes(top: &str) -> Vec<String> {
    [
        ("--counters-prefix", top.to_string()),
        ("--gauge-prefix", top.to_string()),
        ("--sets-prefix", format!("{top}.set")),
        ("--timers-prefix", format!("{top}.timers")),
        ("--metadata-prefix", format!("{top}.statsd")),
    ]
    .into_iter()
    .flat_map(|(flag, value)| [flag.to_string(), value])
    .collect()
}

#[test]
fn pickle_lands_in_whisper_as_plaintext_does() {
    let carbon = CarbonCache::start();
    let (pk, pt) = (prefixes("pk"), prefixes("pt"));
    let mut pk_flags: Vec<&str> = pk.iter().map(String::as_str).collect();
    pk_flags.extend(["--graphite-protocol", "pickle"]);
    let pt_flags: Vec<&str> = pt.iter().map(String::as_str).collect();
    // 2 s: counters divide by it, and each flush has a second of its own.
    let pickled = to_carbon::server(carbon.pickle_port, "2", &pk_flags);
    let plain = to_carbon::server(carbon.line_port, "2", &pt_flags);

    // Integers small and beyond 32 bits, negatives, fractions, exponents.
    let payload = "hits:3|c\nhits:2|c|@0.5\n\
        big:123456789012|g\nneg:-42|g\nneg:-0.5|g\ntenth:0.1|g\ntiny:1e-7|g\nhuge:3e20|g\n\
        users:a|s\nusers:b|s\n\
        lat:5|ms\nlat:1.25|ms\nlat:9|ms\n";
    for statsd in [&pickled, &plain] {
        statsd.send_udp(payload.as_bytes());
    }
    let expected: &[(&str, f64)] = &[
        ("hits", 3.5),
        ("big", 123456789012.0),
        ("neg", -42.5),
        ("tenth", 0.1),
        ("tiny", 1e-7),
        ("huge", 3e20),
        ("set.users", 2.0),
        ("timers.lat.lower", 1.25),
        ("timers.lat.count", 3.0),
        ("timers.lat.mean", 15.25 / 3.0),
        ("timers.lat.upper", 9.0),
        ("timers.lat.upper_90", 5.0),
    ];
    let names: Vec<String> = ["pk", "pt"]
        .iter()
        .flat_map(|top| expected.iter().map(move |(m, _)| format!("{top}.{m}")))
        .collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let points = carbon.wait_points(&refs, 1, WAIT);
    for (metric, want) in expected {
        let value_of = |top: &str| {
            let pts = &points[&format!("{top}.{metric}")];
            assert_eq!(pts.len(), 1, "{top}.{metric}: {pts:?}");
            pts[0].1
        };
        let (pk_value, pt_value) = (value_of("pk"), value_of("pt"));
        assert_eq!(
            pk_value.to_bits(),
            pt_value.to_bits(),
            "{metric}: pickle vs plaintext"
        );
        assert_eq!(
            pk_value.to_bits(),
            want.to_bits(),
            "{metric}: {pk_value} != {want}"
        );
    }

    // Every line of that flush, own stats included, landed at its timestamp.
    let ts = points["pk.hits"][0].0;
    let flushed = wait_for(
        WAIT,
        "pk.statsd.numStats at the flush's timestamp",
        || {
            let got = carbon.fetch(&["pk.statsd.numStats"]);
            let pts = got.get("pk.statsd.numStats")?;
            pts.iter().find(|(t, _)| *t == ts).map(|(_, v)| *v as usize)
        },
        || carbon.metrics().join(" "),
    );
    let series_at_ts = || {
        let all = carbon.metrics();
        let pk_series: Vec<&str> = all
            .iter()
            .map(String::as_str)
            .filter(|m| m.starts_with("pk."))
            .collect();
        carbon
            .fetch(&pk_series)
            .into_iter()
            .filter(|(_, pts)| pts.iter().any(|(t, _)| *t == ts))
            .count()
    };
    wait_for(
        WAIT,
        &format!("{flushed} pk series with a point at {ts} (numStats)"),
        || (series_at_ts() == flushed).then_some(()),
        || format!("{} series at {ts}", series_at_ts()),
    );
    pickled.stop();
    plain.stop();
}
