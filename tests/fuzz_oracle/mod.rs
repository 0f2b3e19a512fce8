//! The checks behind each fuzz target, shared by `fuzz/fuzz_targets/*.rs` (which
//! include this file by path) and `tests/fuzz_regressions.rs` (which replays the
//! saved inputs under plain `cargo test`), so a saved input is judged exactly as
//! the fuzzer judged it. Each function panics on a broken invariant.

#![allow(dead_code)] // each includer uses only some of the checks

mod fields;

pub use fields::dogstatsd_fields;

use std::sync::{Arc, OnceLock};

use statsd::admin::{self, AdminLimits, IstatsSource};
use statsd::aggregate::{merge, GaugeState, Hasher, Limits, Shard, Snapshot};
use statsd::protocol::{self, Value};
use statsd::render::RenderConfig;

/// Timestamp written on every rendered line; checked as the third field.
const TIMESTAMP: u64 = 1_700_000_000;

fn render_config(flush_interval: f64) -> RenderConfig {
    // Distinct gauge and set prefixes keep the kinds apart in the output.
    RenderConfig {
        gauge_prefix: "stats.gauges".into(),
        sets_prefix: "stats.sets".into(),
        flush_interval: std::time::Duration::from_secs_f64(flush_interval),
        ..RenderConfig::default()
    }
}

/// `parse_line` on its own: an accepted line has a clean, non-empty key and
/// sane values.
fn check_parsed_line(line: &[u8]) -> bool {
    let Ok(parsed) = protocol::parse_line(line) else {
        return false;
    };
    let key = &*parsed.key;
    assert!(!key.is_empty(), "empty key from {line:?}");
    assert!(
        !key.contains([' ', '\n', '\r', '\t', '\0']),
        "key {key:?} would break the Graphite line"
    );
    assert!(!parsed.values.is_empty(), "no values from {line:?}");
    for value in &parsed.values {
        match *value {
            Value::Counter { value, rate } | Value::Timer { value, rate } => {
                assert!(value.is_finite(), "{value} from {line:?}");
                assert!(rate > 0.0 && rate <= 1.0, "rate {rate} from {line:?}");
            }
            Value::Gauge { value, .. } => assert!(value.is_finite(), "{value} from {line:?}"),
            Value::Set(member) => assert!(!member.is_empty(), "empty member from {line:?}"),
        }
    }
    true
}

/// What a flush would show must be what the shards hold: nothing non-finite
/// (the renderer would quietly print it as 0).
fn check_snapshot(snapshot: &Snapshot) {
    for (key, sum) in &snapshot.counters {
        assert!(sum.is_finite(), "counter {key} = {sum}");
    }
    for (key, value) in &snapshot.gauges {
        assert!(value.is_finite(), "gauge {key} = {value}");
    }
    for (key, t) in &snapshot.timers {
        for (what, v) in [
            ("lower", t.lower),
            ("upper", t.upper),
            ("sum", t.sum),
            ("count", t.count),
        ] {
            assert!(v.is_finite(), "timer {key} {what} = {v}");
        }
        assert!(t.values.iter().all(|v| v.is_finite()), "timer {key} sample");
        assert!(t.seen >= t.values.len() as u64, "timer {key} kept > seen");
    }
}

/// Every Graphite line: `path value timestamp`, value a finite number.
fn check_rendered(out: &[u8], expected_lines: usize) {
    let text = std::str::from_utf8(out).expect("rendered output is UTF-8");
    let mut lines = 0;
    for line in text.lines() {
        lines += 1;
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields.len(), 3, "not 3 fields: {line:?}");
        assert!(!fields[0].is_empty(), "empty path: {line:?}");
        let value: f64 = fields[1]
            .parse()
            .unwrap_or_else(|_| panic!("value is not a number: {line:?}"));
        assert!(value.is_finite(), "value not finite: {line:?}");
        assert_eq!(fields[2], TIMESTAMP.to_string(), "timestamp: {line:?}");
    }
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "unterminated output"
    );
    assert_eq!(lines, expected_lines, "line count vs render stats");
}

/// Target `parse_line`: arbitrary bytes through the parser, the shards, the merge
/// and the renderer. The first byte picks the shape (shard count, small caps, a
/// sub-second flush interval) so the reservoir, the name cap, cross-shard merging
/// and large per-second rates get exercised too.
pub fn statsd_input(data: &[u8]) {
    let Some((&shape, body)) = data.split_first() else {
        return;
    };
    let _ = protocol::parse_line(body);
    let lines: Vec<&[u8]> = statsd::intake::lines_of(body).collect();
    let accepted = lines.iter().filter(|l| check_parsed_line(l)).count();

    let workers = 1 + usize::from(shape & 3);
    let limits = Limits {
        max_timer_samples: if shape & 4 != 0 { 3 } else { 10_000 },
        max_names: if shape & 8 != 0 { 4 } else { 0 },
        ..Limits::default()
    };
    let hasher = Hasher::with_seeds(1, 2, 3, 4);
    let mut gauges = GaugeState::new(hasher.clone());
    // Two flushes of the same input: the second applies gauge deltas to what the
    // first left behind.
    let intake = statsd::intake::Intake::new(limits.max_line_bytes);
    for _flush in 0..2 {
        let budget = Arc::new(statsd::aggregate::NameRegistry::default());
        let mut shards: Vec<Shard> = (0..workers)
            .map(|_| Shard::with_budget(hasher.clone(), limits, budget.clone()))
            .collect();
        if workers == 1 {
            // One datagram, as UDP delivers it (exercises the batch counts).
            intake.ingest(&mut shards[0], body);
        } else {
            for (n, line) in lines.iter().enumerate() {
                intake.ingest(&mut shards[n % workers], line);
            }
        }
        let counts = shards.iter().fold(Default::default(), |mut all, s| {
            statsd::aggregate::IntakeCounts::add(&mut all, &s.intake);
            all
        });
        assert_eq!(
            counts.lines + counts.names_refused,
            accepted as u64,
            "accepted lines: parse_line and the shards disagree"
        );
        assert_eq!(
            counts.discarded,
            (lines.len() - accepted) as u64,
            "discarded lines"
        );

        let mut snapshot = merge(shards, &mut gauges, limits.max_timer_samples);
        check_snapshot(&snapshot);
        let config = render_config(if shape & 16 != 0 { 0.1 } else { 10.0 });
        let own = statsd::flush::OwnStats {
            interval: counts,
            ..Default::default()
        };
        let (payload, report) = statsd::flush::build(&mut snapshot, &own, &config, TIMESTAMP);
        assert_eq!(payload.lines, report.total_lines);
        check_rendered(&payload.data, report.total_lines);
    }
}

/// The istats text the fuzzed endpoint serves; it holds characters XML 1.0 cannot
/// carry, so the response path must replace them.
const ISTATS: &str = "{\"a\": 1, \"b\": \"<&>\u{1}\"}";

fn istats_source() -> IstatsSource {
    Arc::new(|| ISTATS.to_owned())
}

/// Checks one XML-RPC response document: a fault, or a result a client parses to
/// exactly what one of our two methods returns.
fn check_response_xml(xml: &str) {
    use dxr::Value;
    if let Ok(resp) = dxr::MethodResponse::from_xml(xml) {
        let istats = Value::String(ISTATS.replace('\u{1}', "\u{fffd}"));
        let methods = Value::Array(vec![
            Value::String("istats".into()),
            Value::String("system.listMethods".into()),
        ]);
        assert!(
            resp.value == istats || resp.value == methods,
            "unexpected result: {xml:?}"
        );
    } else {
        assert!(
            dxr::FaultResponse::from_xml(xml).is_ok(),
            "unparseable response: {xml:?}"
        );
    }
}

/// The request-body -> response path on its own.
pub fn xmlrpc_body(body: &[u8]) {
    check_response_xml(&admin::dispatch(body, &istats_source()));
}

/// One runtime for every input: building one per input would dominate the time.
/// Its clock is paused, so the endpoint's timeouts cost no wall time.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("runtime")
    })
}

/// Wraps `body` in a well-formed POST, so the fuzzer reaches the XML-RPC layer
/// without first having to discover a matching Content-Length.
fn as_post(body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

/// Target `xmlrpc_request`: the bytes go through the real per-connection HTTP/1
/// service over an in-memory stream. The first byte picks the shape: bit 0 set,
/// the rest is raw HTTP, else it is the body of a valid POST; bit 1 set, the client
/// half-closes after writing, else it keeps the stream open until the server
/// closes it (idle timeout, on the paused clock).
pub fn xmlrpc_request(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    xmlrpc_body(rest);
    let request = if mode & 1 == 1 {
        rest.to_vec()
    } else {
        as_post(rest)
    };
    let output = runtime().block_on(exchange(request, mode & 2 != 0));
    check_http_responses(&output);
}

/// The server's raw answer to `request` (for tests of the harness itself).
pub fn raw_exchange(request: &[u8], half_close: bool) -> Vec<u8> {
    runtime().block_on(exchange(request.to_vec(), half_close))
}

/// Writes `request`, optionally closes our write side, reads until the server closes.
async fn exchange(request: Vec<u8>, half_close: bool) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut client, server) = tokio::io::duplex(64 * 1024);
    let limits = AdminLimits {
        max_body_bytes: 4096,
        ..AdminLimits::default()
    };
    let served = tokio::spawn(admin::serve_stream(server, istats_source(), limits));
    let (mut read_half, mut write_half) = tokio::io::split(&mut client);
    let write = async move {
        // The server may close early (an error answer); later writes may then fail.
        let _ = write_half.write_all(&request).await;
        if half_close {
            let _ = write_half.shutdown().await;
        }
        // Keep the stream (and our write side, if still open) until the server closes.
        std::future::pending::<()>().await
    };
    let mut output = Vec::new();
    let read = read_half.read_to_end(&mut output);
    let bounded = tokio::time::timeout(std::time::Duration::from_secs(3600), async {
        tokio::select! {
            () = write => unreachable!("the writer never finishes"),
            read = read => read,
        }
    })
    .await;
    assert!(bounded.is_ok(), "connection still open after an hour");
    served.await.expect("connection task panicked");
    output
}

/// The server's bytes must be a sequence of complete HTTP/1.1 responses; every
/// 200 carries an XML-RPC document.
fn check_http_responses(mut out: &[u8]) {
    while !out.is_empty() {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        let head = match resp.parse(out) {
            Ok(httparse::Status::Complete(n)) => n,
            other => panic!(
                "bad response head {other:?}: {:?}",
                String::from_utf8_lossy(out)
            ),
        };
        let code = resp.code.expect("status code");
        let length = resp
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
            .map(|h| {
                std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .expect("numeric Content-Length")
            });
        let length = match (code, length) {
            // 100 Continue has no body.
            (100..=199, _) => 0,
            (_, Some(n)) => n,
            (_, None) => panic!("response {code} without Content-Length"),
        };
        assert!(out.len() >= head + length, "truncated response body");
        let body = &out[head..head + length];
        if code == 200 {
            check_response_xml(std::str::from_utf8(body).expect("UTF-8 response"));
        }
        out = &out[head + length..];
    }
}
