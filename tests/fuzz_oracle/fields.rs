//! Target `dogstatsd_fields`: lines built from a vocabulary of every dialect's
//! pieces (names with tags, packed and multi-metric values, every field in
//! any order, duplicates, junk), so the fuzzer spends its time in the field
//! grammar rather than in bytes the parser rejects at once.

use statsd::protocol::{parse_line_into, Value};

/// Pieces a line is assembled from; each input byte picks one.
const PIECES: [&[u8]; 48] = [
    b"name",
    b"a.b",
    b";k=v",
    b",t=1",
    b";x",
    b" ",
    b"\t",
    b"/",
    b"\xc3\xa9",
    b"\xff",
    b":",
    b"|",
    b"1",
    b"-2.5",
    b"+3",
    b" 4 ",
    b"abc",
    b"1e308",
    b"nan",
    b"",
    b"c",
    b"g",
    b"ms",
    b"h",
    b"d",
    b"s",
    b"x",
    b"@0.5",
    b"@2",
    b"@",
    b"#a:b,c",
    b"#k:v",
    b"#:v",
    b"#",
    b"c:id",
    b"e:x,y",
    b"T1700000000",
    b"Tz",
    b"T",
    b"z",
    b"_e{1,1}:",
    b"_sc|",
    b"=",
    b";",
    b",",
    b"~",
    b"#a b:c;d",
    b"\r",
];

/// Builds a line from `data` and checks what the parser makes of it.
pub fn dogstatsd_fields(data: &[u8]) {
    let mut line = Vec::new();
    for byte in data.iter().take(64) {
        line.extend_from_slice(PIECES[usize::from(*byte) % PIECES.len()]);
    }
    check(&line);
}

/// An accepted line yields a canonical key and sane values.
fn check(line: &[u8]) {
    let mut values = Vec::new();
    let Ok(parsed) = parse_line_into(line, 64 * 1024, &mut values) else {
        return;
    };
    let key = parsed.key.as_ref();
    assert!(!values.is_empty(), "no values: {line:?}");
    check_key(key, line);
    for value in &values {
        match *value {
            Value::Counter { value, rate } | Value::Timer { value, rate } => {
                assert!(value.is_finite() && rate > 0.0 && rate <= 1.0, "{line:?}");
            }
            Value::Gauge { value, .. } => assert!(value.is_finite(), "{line:?}"),
            Value::Set(member) => assert!(!member.is_empty(), "{line:?}"),
        }
        if parsed.timestamp.is_some() {
            assert!(
                matches!(value, Value::Counter { .. } | Value::Gauge { .. }),
                "timestamp on {value:?}: {line:?}"
            );
        }
    }
    // Canonical: the key sent again as a name is the same series (a `:`
    // in a tag value, as in `#url:http://x`, would end the name there).
    if key.contains(':') {
        return;
    }
    let again = format!("{key}:1|c");
    let mut values = Vec::new();
    let reparsed = parse_line_into(again.as_bytes(), 64 * 1024, &mut values)
        .unwrap_or_else(|e| panic!("key {key:?} from {line:?} does not parse again: {e}"));
    assert_eq!(reparsed.key, key, "key not canonical, from {line:?}");
}

/// `name;k=v;...`: a clean name, then unique sorted non-empty tags.
fn check_key(key: &str, line: &[u8]) {
    let mut parts = key.split(';');
    let name = parts.next().unwrap_or_default();
    assert!(!name.is_empty(), "empty name from {line:?}");
    assert!(
        name.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b)),
        "name {name:?} from {line:?}"
    );
    let mut previous: Option<&str> = None;
    for tag in parts {
        let (tag_key, value) = tag
            .split_once('=')
            .unwrap_or_else(|| panic!("{tag:?} in {key:?}"));
        assert!(
            !tag_key.is_empty() && !value.is_empty(),
            "{key:?} from {line:?}"
        );
        for b in tag_key.bytes().chain(value.bytes()) {
            assert!(
                b.is_ascii_graphic() && !b";~=/".contains(&b),
                "{key:?} from {line:?}"
            );
        }
        if let Some(before) = previous {
            assert!(
                before < tag_key,
                "tags not sorted and unique: {key:?} from {line:?}"
            );
        }
        previous = Some(tag_key);
    }
}
