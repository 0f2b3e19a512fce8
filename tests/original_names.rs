//! The original's Graphite paths, exactly: every name of
//! `tests/data/compat/original-name-cleaning.tsv` (50 names and the path the
//! original server writes for each, measured by running its own code; a copy
//! of `shared/compat/`) and of our own cases beside it
//! (`own-name-cleaning.tsv`) is sent as `<name>:1|c`, over UDP and, separately,
//! over TCP, to the server in process with a fake carbon; our path after
//! `stats.` must equal the original's for each. An empty expected path means
//! we discard the line, counted as `empty_name`.
//!
//! Names that clean to the same path cannot share a flush (their counts would
//! add up), so the cases go in rounds, each a server of its own whose one
//! (final) flush holds every path of the round once.

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::Shutdown;
use std::path::PathBuf;

use support::carbon::FakeCarbon;
use support::flushed::final_flush;
use support::istats::stat;
use support::server::Server;
use support::Statsd;

/// The flush interval: long, so that the final flush is the only one.
const INTERVAL: f64 = 3600.0;

/// One name and the path the original writes for it.
#[derive(Debug, Clone)]
struct Case {
    /// Where it comes from: file and line.
    origin: String,
    /// Column 1 as written (a Python bytes literal).
    literal: String,
    /// The name's bytes, decoded from the literal.
    name: Vec<u8>,
    /// The path after the prefix; None when the line is discarded.
    path: Option<String>,
}

/// Decodes a Python bytes literal, `b'...'` or `b"..."`, exactly: `\xNN`,
/// `\t`, `\n`, `\r`, `\v`, `\f`, `\a`, `\b`, `\0`-`\777` (octal), `\\`, `\'`,
/// `\"`; a backslash before anything else stays a backslash, as in Python.
fn decode_bytes_literal(literal: &str) -> Result<Vec<u8>, String> {
    let body = literal
        .strip_prefix("b'")
        .and_then(|s| s.strip_suffix('\''))
        .or_else(|| {
            literal
                .strip_prefix("b\"")
                .and_then(|s| s.strip_suffix('"'))
        })
        .ok_or_else(|| format!("not a bytes literal: {literal}"))?;
    let bytes = body.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !b.is_ascii() {
            return Err(format!("non-ASCII character in a bytes literal: {literal}"));
        }
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let escape = *bytes
            .get(i + 1)
            .ok_or_else(|| format!("lone backslash at the end: {literal}"))?;
        i += 2;
        match escape {
            b'\\' | b'\'' | b'"' => out.push(escape),
            b't' => out.push(b'\t'),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b'v' => out.push(0x0b),
            b'f' => out.push(0x0c),
            b'a' => out.push(0x07),
            b'b' => out.push(0x08),
            b'x' => {
                let hex = body
                    .get(i..i + 2)
                    .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
                    .ok_or_else(|| format!("bad \\x escape in {literal}"))?;
                out.push(u8::from_str_radix(hex, 16).expect("two hex digits"));
                i += 2;
            }
            b'0'..=b'7' => {
                let mut value = u32::from(escape - b'0');
                for _ in 0..2 {
                    match bytes.get(i) {
                        Some(d @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                // Python 3.11 masks an octal escape over 0o377 to a byte.
                out.push((value & 0xff) as u8);
            }
            // Python keeps an unknown escape as it is, backslash included.
            other => out.extend_from_slice(&[b'\\', other]),
        }
    }
    Ok(out)
}

/// The cases of `tests/data/compat/<file>`: `literal<TAB>path`, `#` comments.
fn cases(file: &str) -> Vec<Case> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/compat")
        .join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let cases: Vec<Case> = text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .map(|(n, line)| {
            let origin = format!("{file}:{}", n + 1);
            let (literal, expected) = line
                .split_once('\t')
                .unwrap_or_else(|| panic!("{origin}: no tab in {line:?}"));
            assert!(!expected.contains('\t'), "{origin}: three columns");
            let name = decode_bytes_literal(literal).unwrap_or_else(|e| panic!("{origin}: {e}"));
            assert!(
                !name.contains(&b':') && !name.contains(&b'\n'),
                "{origin}: a name cannot hold ':' or a newline"
            );
            Case {
                origin,
                literal: literal.to_string(),
                name,
                path: (!expected.is_empty()).then(|| expected.to_string()),
            }
        })
        .collect();
    assert!(!cases.is_empty(), "no cases in {}", path.display());
    cases
}

/// Cases in rounds in which no two share an expected path.
fn rounds(cases: &[Case]) -> Vec<Vec<&Case>> {
    let mut rounds: Vec<Vec<&Case>> = Vec::new();
    for case in cases {
        let free = rounds.iter().position(|round| {
            case.path.is_none() || round.iter().all(|other| other.path != case.path)
        });
        match free {
            Some(at) => rounds[at].push(case),
            None => rounds.push(vec![case]),
        }
    }
    rounds
}

/// How the lines reach the server.
#[derive(Debug, Clone, Copy)]
enum Transport {
    /// One datagram per line.
    Udp,
    /// Every line of the round on one connection, closed in order.
    Tcp,
}

/// What our parser makes of a case, for the failure message.
fn ours(case: &Case) -> String {
    let mut line = case.name.clone();
    line.extend_from_slice(b":1|c");
    match statsd::protocol::parse_line(&line) {
        Ok(parsed) => parsed.key.into_owned(),
        Err(e) => format!("(discarded: {e})"),
    }
}

/// Sends every case over `transport`, round by round, and compares each
/// path with the original's.
fn check(file: &str, transport: Transport) {
    let cases = cases(file);
    let carbon = FakeCarbon::start();
    let port = carbon.port.to_string();
    let interval = INTERVAL.to_string();
    let mut wrong = Vec::new();
    for round in rounds(&cases) {
        let server = Server::start(&[
            "-p",
            "0",
            "-q",
            "--graphite-host",
            "127.0.0.1",
            "--graphite-port",
            &port,
            "--flush-interval",
            &interval,
        ]);
        let lines: Vec<Vec<u8>> = round
            .iter()
            .map(|case| [&case.name[..], b":1|c\n"].concat())
            .collect();
        match transport {
            Transport::Udp => lines.iter().for_each(|line| server.send_udp(line)),
            Transport::Tcp => {
                let mut stream = server.connect_tcp();
                stream.write_all(&lines.concat()).expect("write the names");
                stream.shutdown(Shutdown::Write).expect("close in order");
            }
        }
        let n = lines.len() as u64;
        server.poll_istats(|s| stat(s, "metrics.received") + stat(s, "metrics.discarded") == n);
        let flush = final_flush(server, &carbon);

        // path -> how many lines landed there.
        let mut got: BTreeMap<String, u64> = BTreeMap::new();
        for line in &flush.metrics {
            let mut parts = line.split(' ');
            let path = parts.next().unwrap_or_default();
            let value: f64 = parts.next().and_then(|v| v.parse().ok()).unwrap_or(-1.0);
            let path = path
                .strip_prefix("stats.")
                .unwrap_or_else(|| panic!("a line not under stats.: {line:?}"));
            *got.entry(path.to_string()).or_default() += (value * INTERVAL).round() as u64;
        }
        for case in &round {
            let ok = match &case.path {
                Some(path) => got.get(path) == Some(&1),
                None => true,
            };
            if !ok {
                wrong.push(format!(
                    "{}: {} should be {:?}, ours is {:?}",
                    case.origin,
                    case.literal,
                    case.path.as_deref().unwrap_or("(discarded)"),
                    ours(case)
                ));
            }
        }
        let expected_paths: Vec<&str> = round.iter().filter_map(|c| c.path.as_deref()).collect();
        for stray in got.keys().filter(|p| !expected_paths.contains(&p.as_str())) {
            wrong.push(format!(
                "a path no name of its round should give: {stray:?}"
            ));
        }
        let empty = round.iter().filter(|c| c.path.is_none()).count() as f64;
        let discarded = (
            flush.own("metrics.discarded.empty_name"),
            flush.own("metrics.discarded"),
        );
        if discarded != (empty, empty) {
            wrong.push(format!(
                "{empty} names of a round should be discarded as empty_name, got {:?}",
                flush.discards()
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{transport:?}: {} of {} names not written as the original wrote them:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}

#[test]
fn original_names_over_udp() {
    check("original-name-cleaning.tsv", Transport::Udp);
}

#[test]
fn original_names_over_tcp() {
    check("original-name-cleaning.tsv", Transport::Tcp);
}

#[test]
fn own_names_over_udp() {
    check("own-name-cleaning.tsv", Transport::Udp);
}

#[test]
fn own_names_over_tcp() {
    check("own-name-cleaning.tsv", Transport::Tcp);
}

/// The original's file is whole: 50 names, one of them discarded.
#[test]
fn original_file_is_the_measured_one() {
    let cases = cases("original-name-cleaning.tsv");
    assert_eq!(cases.len(), 50);
    assert_eq!(cases.iter().filter(|c| c.path.is_none()).count(), 1);
}

#[test]
fn bytes_literals_decode_as_python_does() {
    let decode = |s: &str| decode_bytes_literal(s).unwrap();
    assert_eq!(decode(r"b'a\tb'"), b"a\tb");
    assert_eq!(decode(r"b'a\x0bb\x0c'"), b"a\x0bb\x0c");
    assert_eq!(decode(r"b'caf\xc3\xa9'"), "café".as_bytes());
    assert_eq!(decode(r"b'a\\b'"), b"a\\b");
    assert_eq!(decode(r#"b'a\'b"c'"#), b"a'b\"c");
    assert_eq!(decode(r#"b"a'b""#), b"a'b");
    assert_eq!(decode(r"b'x\x00y\0z\101'"), b"x\0y\0zA");
    assert_eq!(decode(r"b'\r\n\a\b'"), b"\r\n\x07\x08");
    assert_eq!(decode(r"b'\q'"), b"\\q");
    assert!(decode_bytes_literal("'no b'").is_err());
    assert!(decode_bytes_literal(r"b'\x4'").is_err());
}
