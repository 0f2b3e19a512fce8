//! The StatsD line protocol: `name:value|type[|@rate][|#tag,tag:value]`, with
//! several `value|type[|@rate]` groups per line allowed (`name:1|c:5|ms`).
//!
//! Parsing is pure and allocation-free for already-clean names: a line either
//! yields all its samples or is rejected whole with a [`ParseError`].

use std::borrow::Cow;
use std::fmt;

/// The longest line accepted by default; longer lines are discarded.
pub const DEFAULT_MAX_LINE_BYTES: usize = 64 * 1024;

/// Metric kinds of SPEC section 3 (`h` and `d` are handled as timers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Timer,
    Set,
}

/// One value of a line, ready to aggregate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// `value / rate` is what the counter adds.
    Counter { value: f64, rate: f64 },
    /// `delta` is true when the value carried an explicit `+` or `-` sign.
    Gauge { value: f64, delta: bool },
    /// A timer sample; its count adds `1 / rate`.
    Timer { value: f64, rate: f64 },
    /// A set member, kept as text.
    Set(&'a str),
}

/// Why a line was discarded. Kept small and allocation-free: bad lines are hot
/// under abuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("not UTF-8")]
    NotUtf8,
    #[error("line too long")]
    TooLong,
    #[error("no ':' between name and value")]
    MissingValue,
    #[error("name is empty after cleaning")]
    EmptyName,
    #[error("no '|type' after the value")]
    MissingType,
    #[error("unknown metric type")]
    UnknownType,
    #[error("value is not a finite number")]
    BadValue,
    #[error("sample rate is not a number in (0, 1]")]
    BadRate,
    #[error("unexpected field after the type")]
    UnknownField,
    #[error("bad tag")]
    BadTag,
    #[error("line cut off by the connection closing")]
    CutOff,
}

impl ParseError {
    /// Every reason, in the order of [`ParseError::index`].
    pub const ALL: [ParseError; 11] = [
        ParseError::NotUtf8,
        ParseError::TooLong,
        ParseError::MissingValue,
        ParseError::EmptyName,
        ParseError::MissingType,
        ParseError::UnknownType,
        ParseError::BadValue,
        ParseError::BadRate,
        ParseError::UnknownField,
        ParseError::BadTag,
        ParseError::CutOff,
    ];

    /// Position in [`ParseError::ALL`], for per-reason counters.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The stat key: `metrics.discarded.<key>`.
    pub fn stat_key(self) -> &'static str {
        match self {
            ParseError::NotUtf8 => "metrics.discarded.not_utf8",
            ParseError::TooLong => "metrics.discarded.too_long",
            ParseError::MissingValue => "metrics.discarded.missing_value",
            ParseError::EmptyName => "metrics.discarded.empty_name",
            ParseError::MissingType => "metrics.discarded.missing_type",
            ParseError::UnknownType => "metrics.discarded.unknown_type",
            ParseError::BadValue => "metrics.discarded.bad_value",
            ParseError::BadRate => "metrics.discarded.bad_rate",
            ParseError::UnknownField => "metrics.discarded.unknown_field",
            ParseError::BadTag => "metrics.discarded.bad_tag",
            ParseError::CutOff => "metrics.discarded.cut_off",
        }
    }

    /// The stat key suffix: `metrics.discarded.<key>`.
    pub fn key(self) -> &'static str {
        match self {
            ParseError::NotUtf8 => "not_utf8",
            ParseError::TooLong => "too_long",
            ParseError::MissingValue => "missing_value",
            ParseError::EmptyName => "empty_name",
            ParseError::MissingType => "missing_type",
            ParseError::UnknownType => "unknown_type",
            ParseError::BadValue => "bad_value",
            ParseError::BadRate => "bad_rate",
            ParseError::UnknownField => "unknown_field",
            ParseError::BadTag => "bad_tag",
            ParseError::CutOff => "cut_off",
        }
    }
}

/// A parsed line: a series key and its values.
#[derive(Debug, Clone, PartialEq)]
pub struct Line<'a> {
    /// Cleaned name plus Graphite tags (`name;a=b;c=d`, tags sorted by name).
    pub key: Cow<'a, str>,
    /// Every value of the line, in order.
    pub values: Vec<Value<'a>>,
}

/// For each byte: does a cleaned name keep it as it is?
const CLEAN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'.';
        b += 1;
    }
    table
};

/// True for the bytes a cleaned name keeps as they are.
#[inline]
fn is_clean_byte(b: u8) -> bool {
    CLEAN[b as usize]
}

/// Cleans a name as the original did: `/` becomes `-`, runs of white space
/// become `_`, then everything outside `A-Z a-z 0-9 _ - .` is removed.
/// Borrows when the name is already clean (the common case).
pub fn clean_name(name: &str) -> Cow<'_, str> {
    if name.bytes().all(is_clean_byte) {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len());
    let mut in_space = false;
    for c in name.chars() {
        if c.is_whitespace() {
            if !in_space {
                out.push('_');
            }
            in_space = true;
            continue;
        }
        in_space = false;
        if c == '/' {
            out.push('-');
        } else if c.is_ascii() && is_clean_byte(c as u8) {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Parses a number as SPEC section 3 allows: decimal with sign, fraction and
/// exponent; NaN and infinity are refused.
#[inline]
fn parse_number(text: &str) -> Option<f64> {
    let bytes = text.as_bytes();
    // Fast path for the common case, whole numbers: exact below 2^53.
    let (negative, digits) = match bytes.first() {
        Some(b'-') => (true, &bytes[1..]),
        Some(b'+') => (false, &bytes[1..]),
        _ => (false, bytes),
    };
    if !digits.is_empty() && digits.len() <= 15 && digits.iter().all(u8::is_ascii_digit) {
        let whole = digits
            .iter()
            .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0')) as f64;
        return Some(if negative { -whole } else { whole });
    }
    // Rust's float parser also takes "inf", "nan" and "infinity"; every valid
    // StatsD number ends in a digit or a '.', which rules those out cheaply.
    match bytes.last() {
        Some(b) if b.is_ascii_digit() || *b == b'.' => {}
        _ => return None,
    }
    let value: f64 = text.parse().ok()?;
    value.is_finite().then_some(value)
}

fn parse_rate(field: &str) -> Result<f64, ParseError> {
    let rate = field
        .strip_prefix('@')
        .and_then(parse_number)
        .ok_or(ParseError::BadRate)?;
    if rate > 0.0 && rate <= 1.0 {
        Ok(rate)
    } else {
        Err(ParseError::BadRate)
    }
}

/// Parses one `value|type[|@rate]` group.
fn parse_group<'a>(group: &'a str) -> Result<Value<'a>, ParseError> {
    let bytes = group.as_bytes();
    let bar = find(bytes, b'|').ok_or(ParseError::MissingType)?;
    let value_text = &group[..bar];
    let after = &bytes[bar + 1..];
    // The type is one or two letters; matching bytes avoids string compares.
    let (kind, type_len) = match after {
        [b'm', b's', ..] => (Kind::Timer, 2),
        [b'c', ..] => (Kind::Counter, 1),
        [b'g', ..] => (Kind::Gauge, 1),
        [b'h' | b'd', ..] => (Kind::Timer, 1),
        [b's', ..] => (Kind::Set, 1),
        [] | [b'|', ..] => return Err(ParseError::MissingType),
        _ => return Err(ParseError::UnknownType),
    };
    let rate = match &after[type_len..] {
        [] => 1.0,
        [b'|', field @ ..] => {
            if find(field, b'|').is_some() {
                return Err(ParseError::UnknownField);
            }
            // `field` is a suffix of `group` after an ASCII '|': a char boundary.
            parse_rate(&group[group.len() - field.len()..])?
        }
        _ => return Err(ParseError::UnknownType),
    };
    Ok(match kind {
        Kind::Set => {
            if value_text.is_empty() {
                return Err(ParseError::BadValue);
            }
            Value::Set(value_text)
        }
        Kind::Counter => Value::Counter {
            value: parse_number(value_text).ok_or(ParseError::BadValue)?,
            rate,
        },
        Kind::Timer => Value::Timer {
            value: parse_number(value_text).ok_or(ParseError::BadValue)?,
            rate,
        },
        Kind::Gauge => Value::Gauge {
            value: parse_number(value_text).ok_or(ParseError::BadValue)?,
            delta: matches!(value_text.as_bytes().first(), Some(b'+' | b'-')),
        },
    })
}

/// Builds the series key `name;a=b;c=d` from a cleaned name and the text
/// after `|#`. Tag names and values are cleaned like names; a tag without a
/// value is written `tag=true` because Graphite tags need a value.
fn tagged_key(name: &str, tags_text: &str) -> Result<String, ParseError> {
    let mut tags: Vec<(Cow<'_, str>, Cow<'_, str>)> = Vec::new();
    for tag in tags_text.split(',') {
        if tag.is_empty() {
            continue;
        }
        let (tag_name, tag_value) = match tag.split_once(':') {
            Some((n, v)) => (clean_name(n), clean_name(v)),
            None => (clean_name(tag), Cow::Borrowed("true")),
        };
        if tag_name.is_empty() || tag_value.is_empty() {
            return Err(ParseError::BadTag);
        }
        tags.push((tag_name, tag_value));
    }
    // Stable sort keeps repeated tag names in arrival order; Graphite keeps
    // the last one.
    tags.sort_by(|a, b| a.0.cmp(&b.0));
    let mut key = String::with_capacity(name.len() + tags_text.len() + 8);
    key.push_str(name);
    for (tag_name, tag_value) in &tags {
        key.push(';');
        key.push_str(tag_name);
        key.push('=');
        key.push_str(tag_value);
    }
    Ok(key)
}

/// Where `|#` starts in the text after the name, if anywhere.
#[inline]
fn tag_start(rest: &[u8]) -> Option<usize> {
    rest.windows(2).position(|pair| pair == b"|#")
}

/// First position of `byte`. The fields of a line are a few bytes long,
/// where a plain loop beats a SIMD search's set-up cost.
#[inline]
fn find(haystack: &[u8], byte: u8) -> Option<usize> {
    haystack.iter().position(|b| *b == byte)
}

/// Parses one line (without its `\n`; a trailing `\r` is tolerated).
/// `values` is a reusable buffer to avoid an allocation per line.
pub fn parse_line_into<'a>(
    raw: &'a [u8],
    max_len: usize,
    values: &mut Vec<Value<'a>>,
) -> Result<Cow<'a, str>, ParseError> {
    values.clear();
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    if raw.len() > max_len {
        return Err(ParseError::TooLong);
    }
    // One pass finds the ':' and tells whether the name is already clean
    // (clean bytes are ASCII); the rest is checked for ASCII in a second,
    // vectorisable pass, which spares full UTF-8 validation for nearly
    // every line.
    let mut colon = 0;
    let mut dirty = false;
    while colon < raw.len() && raw[colon] != b':' {
        dirty |= !is_clean_byte(raw[colon]);
        colon += 1;
    }
    if colon == raw.len() {
        return Err(ParseError::MissingValue);
    }
    let ascii_rest = raw[colon..].iter().fold(0u8, |high, b| high | b) < 0x80;
    let line = if ascii_rest && !dirty {
        // SAFETY: the name holds only clean bytes (all ASCII) and the rest
        // was just checked to be ASCII, so the whole line is valid UTF-8.
        unsafe { std::str::from_utf8_unchecked(raw) }
    } else {
        std::str::from_utf8(raw).map_err(|_| ParseError::NotUtf8)?
    };
    let name = if dirty {
        clean_name(&line[..colon])
    } else {
        Cow::Borrowed(&line[..colon])
    };
    if name.is_empty() {
        return Err(ParseError::EmptyName);
    }
    let rest = &line[colon + 1..];
    // Fast path: one value, no tags (no second ':' and no '#').
    if rest.bytes().all(|b| b != b':' && b != b'#') {
        values.push(parse_group(rest)?);
        return Ok(name);
    }
    // Tags come last and may themselves contain ':', so cut them off before
    // splitting the value groups.
    let (mut body, tags) = match tag_start(rest.as_bytes()) {
        Some(at) => (&rest[..at], Some(&rest[at + 2..])),
        None => (rest, None),
    };
    loop {
        match find(body.as_bytes(), b':') {
            Some(at) => {
                values.push(parse_group(&body[..at])?);
                body = &body[at + 1..];
            }
            None => {
                values.push(parse_group(body)?);
                break;
            }
        }
    }
    match tags {
        Some(tags_text) => Ok(Cow::Owned(tagged_key(&name, tags_text)?)),
        None => Ok(name),
    }
}

/// Parses one line into an owned [`Line`]; convenient for tests and tools.
pub fn parse_line(raw: &[u8]) -> Result<Line<'_>, ParseError> {
    let mut values = Vec::new();
    let key = parse_line_into(raw, DEFAULT_MAX_LINE_BYTES, &mut values)?;
    Ok(Line { key, values })
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Timer => "timer",
            Kind::Set => "set",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Line<'_> {
        parse_line(line.as_bytes()).expect(line)
    }

    fn bad(line: &[u8]) -> ParseError {
        parse_line(line).expect_err(&String::from_utf8_lossy(line))
    }

    #[test]
    fn counter() {
        let line = ok("hits:3|c");
        assert_eq!(line.key, "hits");
        assert_eq!(
            line.values,
            [Value::Counter {
                value: 3.0,
                rate: 1.0
            }]
        );
    }

    #[test]
    fn counter_with_rate() {
        assert_eq!(
            ok("hits:1|c|@0.1").values,
            [Value::Counter {
                value: 1.0,
                rate: 0.1
            }]
        );
    }

    #[test]
    fn gauge_absolute_and_delta() {
        assert_eq!(
            ok("g:5|g").values,
            [Value::Gauge {
                value: 5.0,
                delta: false
            }]
        );
        assert_eq!(
            ok("g:+5|g").values,
            [Value::Gauge {
                value: 5.0,
                delta: true
            }]
        );
        assert_eq!(
            ok("g:-5|g").values,
            [Value::Gauge {
                value: -5.0,
                delta: true
            }]
        );
    }

    #[test]
    fn timer_histogram_distribution() {
        for t in ["ms", "h", "d"] {
            let text = format!("t:2.5|{t}");
            assert_eq!(
                parse_line(text.as_bytes()).unwrap().values,
                [Value::Timer {
                    value: 2.5,
                    rate: 1.0
                }]
            );
        }
    }

    #[test]
    fn set_member_is_text() {
        assert_eq!(ok("u:alice|s").values, [Value::Set("alice")]);
    }

    #[test]
    fn several_values_per_line() {
        let line = ok("x:1|c:5|ms|@0.5:7|g");
        assert_eq!(
            line.values,
            [
                Value::Counter {
                    value: 1.0,
                    rate: 1.0
                },
                Value::Timer {
                    value: 5.0,
                    rate: 0.5
                },
                Value::Gauge {
                    value: 7.0,
                    delta: false
                },
            ]
        );
    }

    #[test]
    fn tags_sorted_and_cleaned() {
        assert_eq!(
            ok("req:1|c|#zone:b,app:web/1,beta").key,
            "req;app=web-1;beta=true;zone=b"
        );
        assert_eq!(ok("req:1|c|@0.5|#a:b").key, "req;a=b");
    }

    #[test]
    fn name_cleaning() {
        assert_eq!(clean_name("a/b c\t d"), "a-b_c_d");
        assert_eq!(clean_name("ok.name-1_x"), "ok.name-1_x");
        assert_eq!(clean_name("we!rd$name"), "werdname");
        assert_eq!(clean_name("é"), "");
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_number("1e3"), Some(1000.0));
        assert_eq!(parse_number("-.5"), Some(-0.5));
        assert_eq!(parse_number("5."), Some(5.0));
        for bad in [
            "nan", "NaN", "inf", "-inf", "infinity", "1e999", "", "+", "0x10", "1_0",
        ] {
            assert_eq!(parse_number(bad), None, "{bad}");
        }
    }

    #[test]
    fn bad_lines() {
        assert_eq!(bad(b"novalue"), ParseError::MissingValue);
        assert_eq!(bad(b"x:1"), ParseError::MissingType);
        assert_eq!(bad(b"x:1|"), ParseError::MissingType);
        assert_eq!(bad(b"x:1|q"), ParseError::UnknownType);
        assert_eq!(bad(b"x:abc|c"), ParseError::BadValue);
        assert_eq!(bad(b"x:nan|g"), ParseError::BadValue);
        assert_eq!(bad(b"x:|s"), ParseError::BadValue);
        assert_eq!(bad(b"x:1|c|@0"), ParseError::BadRate);
        assert_eq!(bad(b"x:1|c|@1.5"), ParseError::BadRate);
        assert_eq!(bad(b"x:1|c|@x"), ParseError::BadRate);
        assert_eq!(bad(b"x:1|c|0.5"), ParseError::BadRate);
        assert_eq!(bad(b"x:1|c|@0.5|z"), ParseError::UnknownField);
        assert_eq!(bad(b"!!!:1|c"), ParseError::EmptyName);
        assert_eq!(bad(b":1|c"), ParseError::EmptyName);
        assert_eq!(bad(b"x\xff:1|c"), ParseError::NotUtf8);
        assert_eq!(bad(b"x:1|c:bad|c"), ParseError::BadValue);
        assert_eq!(bad(b"x:1|c|#:v"), ParseError::BadTag);
    }

    #[test]
    fn reasons_have_distinct_indexes() {
        for (i, reason) in ParseError::ALL.iter().enumerate() {
            assert_eq!(reason.index(), i);
        }
    }

    #[test]
    fn too_long() {
        let mut values = Vec::new();
        assert_eq!(
            parse_line_into(b"abcdef:1|c", 5, &mut values),
            Err(ParseError::TooLong)
        );
    }
}
