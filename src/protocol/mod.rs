//! The StatsD line protocol, every common dialect:
//! `name:value|type[|field]...` with fields in any order (`@rate`, `#tags`
//! (repeatable), `c:container-id`, `e:external-data`, `card:cardinality`,
//! `T<unix seconds>`),
//! several values per line (`name:1|c:5|ms`, Etsy; `name:1:2:3|h`,
//! DogStatsD packed) and tags in the name (`name;k=v`, `name,k=v`).
//!
//! Parsing is pure and allocation-free for clean untagged names: a line
//! either yields all its values or is rejected whole with a [`ParseError`].
//!
//! - [`name`]: the original's byte-by-byte name cleaning; tags in the name.
//! - [`tags`]: every tag dialect merged into one Graphite series key.

mod name;
mod tags;

use std::borrow::Cow;
use std::fmt;

pub use name::{clean_name, split_name, NameParts};

/// The longest line accepted by default; longer lines are discarded.
pub const DEFAULT_MAX_LINE_BYTES: usize = 64 * 1024;
/// Most tags one line may carry (a 5000-tag line is an attack, not a metric).
pub const MAX_TAGS: usize = 64;
/// Longest component of a name between dots: whisper makes a file or a
/// directory of each, and file names stop at 255 bytes.
pub const MAX_COMPONENT_BYTES: usize = 255;
/// Longest series key, tags included.
pub const MAX_KEY_BYTES: usize = 4096;

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
    #[error("not UTF-8 after the name")]
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
    #[error("unknown field after the type")]
    UnknownField,
    #[error("bad tag (empty key or value)")]
    BadTag,
    #[error("line cut off by the connection")]
    CutOff,
    #[error("the same field twice")]
    DuplicateField,
    #[error("timestamp is not whole Unix seconds on a counter or gauge")]
    BadTimestamp,
    #[error("more than 64 tags")]
    TooManyTags,
    #[error("name part over 255 bytes, or series key over 4096")]
    NameTooLong,
    #[error("a DogStatsD event, which Graphite cannot store")]
    Event,
    #[error("a DogStatsD service check, which Graphite cannot store")]
    ServiceCheck,
}

impl ParseError {
    /// Every reason, in the order of [`ParseError::index`].
    pub const ALL: [ParseError; 17] = [
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
        ParseError::DuplicateField,
        ParseError::BadTimestamp,
        ParseError::TooManyTags,
        ParseError::NameTooLong,
        ParseError::Event,
        ParseError::ServiceCheck,
    ];

    /// Position in [`ParseError::ALL`], for per-reason counters.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The stat key: `metrics.discarded.<key>`.
    pub fn stat_key(self) -> &'static str {
        STAT_KEYS[self.index()]
    }

    /// The stat key suffix: `metrics.discarded.<key>`.
    pub fn key(self) -> &'static str {
        &self.stat_key()["metrics.discarded.".len()..]
    }
}

/// `metrics.discarded.<reason>`, in the order of [`ParseError::ALL`].
const STAT_KEYS: [&str; ParseError::ALL.len()] = [
    "metrics.discarded.not_utf8",
    "metrics.discarded.too_long",
    "metrics.discarded.missing_value",
    "metrics.discarded.empty_name",
    "metrics.discarded.missing_type",
    "metrics.discarded.unknown_type",
    "metrics.discarded.bad_value",
    "metrics.discarded.bad_rate",
    "metrics.discarded.unknown_field",
    "metrics.discarded.bad_tag",
    "metrics.discarded.cut_off",
    "metrics.discarded.duplicate_field",
    "metrics.discarded.bad_timestamp",
    "metrics.discarded.too_many_tags",
    "metrics.discarded.name_too_long",
    "metrics.discarded.event",
    "metrics.discarded.service_check",
];

/// What a line says beyond its values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<'a> {
    /// Cleaned name plus Graphite tags (`name;a=b;c=d`, tags sorted by key).
    pub key: Cow<'a, str>,
    /// `|T<unix seconds>`: written with this timestamp, not aggregated.
    pub timestamp: Option<u64>,
    /// `|c:...` was given (accepted, not written).
    pub container_id: bool,
    /// `|e:...` was given (accepted, not written).
    pub external_data: bool,
}

/// A parsed line with its values owned; convenient for tests and tools.
#[derive(Debug, Clone, PartialEq)]
pub struct Line<'a> {
    /// The series key.
    pub key: Cow<'a, str>,
    /// Every value of the line, in order.
    pub values: Vec<Value<'a>>,
    /// `|T` timestamp, if any.
    pub timestamp: Option<u64>,
}

/// The line-wide fields, each allowed once (tags: any number of sections).
#[derive(Debug, Default)]
struct Fields<'a> {
    /// `#` sections, without the `#`.
    tags: Vec<&'a [u8]>,
    /// `T` seconds.
    timestamp: Option<u64>,
    /// `c:` seen.
    container_id: bool,
    /// `e:` seen.
    external_data: bool,
    /// `card:` seen (tag cardinality, a hint for the Datadog agent).
    cardinality: bool,
}

impl<'a> Fields<'a> {
    /// Takes one field after the type. A `:` after a rate or timestamp
    /// starts the next value group (`x:1|c|@0.5:2|ms`): it is returned.
    fn take(
        &mut self,
        field: &'a str,
        rate: &mut Option<f64>,
    ) -> Result<Option<&'a str>, ParseError> {
        let bytes = field.as_bytes();
        match bytes {
            [b'@', ..] => {
                let (text, next) = split_group(&field[1..]);
                if rate.is_some() {
                    return Err(ParseError::DuplicateField);
                }
                *rate = Some(parse_rate(text)?);
                Ok(next)
            }
            [b'#', ..] => {
                self.tags.push(&bytes[1..]);
                Ok(None)
            }
            [b'c', b':', ..] => once(&mut self.container_id).map(|()| None),
            [b'e', b':', ..] => once(&mut self.external_data).map(|()| None),
            // Sent by the datadog and hot-shots clients when a cardinality is
            // set (DD_CARDINALITY); it shapes no series here.
            [b'c', b'a', b'r', b'd', b':', ..] => once(&mut self.cardinality).map(|()| None),
            [b'T', ..] => {
                let (text, next) = split_group(&field[1..]);
                if self.timestamp.is_some() {
                    return Err(ParseError::DuplicateField);
                }
                let digits = text.trim().as_bytes();
                if digits.is_empty() || digits.len() > 12 || !digits.iter().all(u8::is_ascii_digit)
                {
                    return Err(ParseError::BadTimestamp);
                }
                self.timestamp = Some(digits.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')));
                Ok(next)
            }
            _ => Err(ParseError::UnknownField),
        }
    }
}

/// Marks a once-only field as seen.
fn once(seen: &mut bool) -> Result<(), ParseError> {
    if std::mem::replace(seen, true) {
        Err(ParseError::DuplicateField)
    } else {
        Ok(())
    }
}

/// Splits `text:next` at its first `:`.
fn split_group(text: &str) -> (&str, Option<&str>) {
    match text.find(':') {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    }
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

fn parse_rate(text: &str) -> Result<f64, ParseError> {
    let rate = parse_number(text.trim()).ok_or(ParseError::BadRate)?;
    if rate > 0.0 && rate <= 1.0 {
        Ok(rate)
    } else {
        Err(ParseError::BadRate)
    }
}

/// The type of a group and what follows it in its `|` segment: nothing, or
/// `:` and the next group's values.
fn parse_type(segment: &str) -> Result<(Kind, Option<&str>), ParseError> {
    let (text, next) = split_group(segment);
    let code = text.trim();
    match kind_code(code.as_bytes()) {
        Some(kind) => Ok((kind, next)),
        None if code.is_empty() => Err(ParseError::MissingType),
        None => Err(ParseError::UnknownType),
    }
}

/// The kind a type code names (`c`, `g`, `ms`, `h`, `d`, `s`), already trimmed.
#[inline]
fn kind_code(code: &[u8]) -> Option<Kind> {
    Some(match code {
        b"c" => Kind::Counter,
        b"g" => Kind::Gauge,
        b"ms" | b"h" | b"d" => Kind::Timer,
        b"s" => Kind::Set,
        _ => return None,
    })
}

/// `text` without ASCII white space around it; free when there is none.
#[inline]
fn trim_ascii(text: &str) -> &str {
    match text.as_bytes() {
        [first, .., last] if !first.is_ascii_whitespace() && !last.is_ascii_whitespace() => text,
        [only] if !only.is_ascii_whitespace() => text,
        _ => text.trim_ascii(),
    }
}

/// One value of `kind`, already trimmed.
#[inline]
fn one_value(one: &str, kind: Kind, rate: f64) -> Result<Value<'_>, ParseError> {
    Ok(match kind {
        Kind::Set if one.is_empty() => return Err(ParseError::BadValue),
        Kind::Set => Value::Set(one),
        Kind::Counter => Value::Counter {
            value: parse_number(one).ok_or(ParseError::BadValue)?,
            rate,
        },
        Kind::Timer => Value::Timer {
            value: parse_number(one).ok_or(ParseError::BadValue)?,
            rate,
        },
        Kind::Gauge => Value::Gauge {
            value: parse_number(one).ok_or(ParseError::BadValue)?,
            delta: matches!(one.as_bytes().first(), Some(b'+' | b'-')),
        },
    })
}

/// Pushes the values of one group: `1`, or packed `1:2:3`, all of `kind`.
fn push_values<'a>(
    text: &'a str,
    kind: Kind,
    rate: f64,
    values: &mut Vec<Value<'a>>,
) -> Result<(), ParseError> {
    let mut rest = Some(text);
    while let Some(now) = rest {
        let one = match now.as_bytes().iter().position(|b| *b == b':') {
            Some(at) => {
                rest = Some(&now[at + 1..]);
                &now[..at]
            }
            None => {
                rest = None;
                now
            }
        };
        // White space around a value is ignored, as the original did.
        values.push(one_value(trim_ascii(one), kind, rate)?);
    }
    Ok(())
}

/// Parses everything after the name's `:`.
fn parse_body<'a>(
    body: &'a str,
    values: &mut Vec<Value<'a>>,
    fields: &mut Fields<'a>,
) -> Result<(), ParseError> {
    let mut segments = body.split('|');
    let mut group = segments.next().unwrap_or_default();
    let mut kind: Option<Kind> = None;
    let mut rate: Option<f64> = None;
    for segment in segments {
        let next = match kind {
            None => {
                let (found, next) = parse_type(segment)?;
                kind = Some(found);
                next
            }
            Some(_) => fields.take(segment, &mut rate)?,
        };
        if let (Some(next), Some(done)) = (next, kind) {
            push_values(group, done, rate.unwrap_or(1.0), values)?;
            (group, kind, rate) = (next, None, None);
        }
    }
    let kind = kind.ok_or(ParseError::MissingType)?;
    push_values(group, kind, rate.unwrap_or(1.0), values)
}

/// The text after the name's `:`; ASCII (nearly every line) is checked in
/// one vectorisable pass instead of full UTF-8 validation.
#[inline]
fn body_text(bytes: &[u8]) -> Result<&str, ParseError> {
    if bytes.iter().fold(0u8, |high, b| high | b) < 0x80 {
        // SAFETY: every byte is below 0x80, so the bytes are ASCII, which
        // is valid UTF-8.
        return Ok(unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    std::str::from_utf8(bytes).map_err(|_| ParseError::NotUtf8)
}

/// The fastest path, for what most clients send: a whole number of at most
/// 15 digits and the type (`1|c`, `250|ms`, `42|g`), read in one pass over
/// the bytes, with no UTF-8 check (every byte is ASCII). None for anything
/// else, which takes the paths below; they give the same value for these.
#[inline]
fn whole_number_value(body: &[u8]) -> Option<Value<'static>> {
    let mut at = 0;
    let mut whole = 0u64;
    while at < body.len() && body[at].is_ascii_digit() {
        // Wraps only past 19 digits, and more than 15 are refused below.
        whole = whole
            .wrapping_mul(10)
            .wrapping_add(u64::from(body[at] - b'0'));
        at += 1;
    }
    if at == 0 || at > 15 {
        return None;
    }
    let value = whole as f64;
    Some(match kind_code(body[at..].strip_prefix(b"|")?)? {
        Kind::Counter => Value::Counter { value, rate: 1.0 },
        Kind::Timer => Value::Timer { value, rate: 1.0 },
        Kind::Gauge => Value::Gauge {
            value,
            delta: false,
        },
        // A set's member is text, kept as sent (`007` is not `7`).
        Kind::Set => return None,
    })
}

/// The fast path, for `value|type` and nothing else (no fields, no packed
/// or further values): pushes the value and returns true; false when the
/// line needs the full grammar.
#[inline]
fn single_value<'a>(body: &'a str, values: &mut Vec<Value<'a>>) -> Result<bool, ParseError> {
    let bytes = body.as_bytes();
    let Some(bar) = bytes.iter().position(|b| *b == b'|') else {
        return Ok(false);
    };
    let Some(kind) = kind_code(&bytes[bar + 1..]) else {
        return Ok(false);
    };
    let value = &body[..bar];
    if value.as_bytes().contains(&b':') {
        return Ok(false);
    }
    values.push(one_value(trim_ascii(value), kind, 1.0)?);
    Ok(true)
}

/// Parses one line (without its `\n`; a trailing `\r` is tolerated).
/// `values` is a reusable buffer to avoid an allocation per line.
pub fn parse_line_into<'a>(
    raw: &'a [u8],
    max_len: usize,
    values: &mut Vec<Value<'a>>,
) -> Result<Parsed<'a>, ParseError> {
    values.clear();
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    if raw.len() > max_len {
        return Err(ParseError::TooLong);
    }
    if raw.starts_with(b"_e{") {
        return Err(ParseError::Event);
    }
    if raw.starts_with(b"_sc|") {
        return Err(ParseError::ServiceCheck);
    }
    // One pass finds the ':' and tells whether the name is already clean
    // (clean bytes are ASCII and never `;` or `,`: no tags, no cleaning).
    // A clean byte is never ':', so the scan stops at the ':' of a clean
    // name; anything else before it makes the name dirty.
    let mut colon = name::clean_prefix_len(raw);
    let dirty = colon < raw.len() && raw[colon] != b':';
    if dirty {
        colon += raw[colon..]
            .iter()
            .position(|b| *b == b':')
            .ok_or(ParseError::MissingValue)?;
    } else if colon == raw.len() {
        return Err(ParseError::MissingValue);
    }
    let body_bytes = &raw[colon + 1..];
    // None: the value is already in `values`, read by the fastest path.
    let body = match whole_number_value(body_bytes) {
        Some(value) => {
            values.push(value);
            None
        }
        None => Some(body_text(body_bytes)?),
    };
    let parts = if dirty {
        split_name(&raw[..colon])
    } else {
        NameParts {
            name: Cow::Borrowed(name::clean_as_str(&raw[..colon])),
            tags: None,
        }
    };
    if parts.name.is_empty() {
        return Err(ParseError::EmptyName);
    }
    if parts.name.len() > MAX_COMPONENT_BYTES
        && parts
            .name
            .split('.')
            .any(|part| part.len() > MAX_COMPONENT_BYTES)
    {
        return Err(ParseError::NameTooLong);
    }
    let mut fields = Fields::default();
    if let Some(body) = body {
        if !single_value(body, values)? {
            parse_body(body, values, &mut fields)?;
        }
    }
    if fields.timestamp.is_some()
        && !values
            .iter()
            .all(|v| matches!(v, Value::Counter { .. } | Value::Gauge { .. }))
    {
        return Err(ParseError::BadTimestamp);
    }
    let key = if parts.tags.is_none() && fields.tags.is_empty() {
        parts.name
    } else {
        Cow::Owned(tags::tagged_key(&parts.name, parts.tags, &fields.tags)?)
    };
    Ok(Parsed {
        key,
        timestamp: fields.timestamp,
        container_id: fields.container_id,
        external_data: fields.external_data,
    })
}

/// Parses one line into an owned [`Line`]; convenient for tests and tools.
pub fn parse_line(raw: &[u8]) -> Result<Line<'_>, ParseError> {
    let mut values = Vec::new();
    let parsed = parse_line_into(raw, DEFAULT_MAX_LINE_BYTES, &mut values)?;
    Ok(Line {
        key: parsed.key,
        values,
        timestamp: parsed.timestamp,
    })
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
mod tests;
