//! Node's `util.inspect` with its default options (Node 12 to 22: depth 2,
//! breakLength 80, compact 3, maxArrayLength 100), for exactly the shapes
//! Etsy's management console prints: an object of numbers, or an object of
//! arrays of numbers. Ported from `lib/internal/util/inspect.js`
//! (`formatProperty`, `reduceToSingleString`, `isBelowBreakLength`,
//! `groupArrayElements`, `strEscape`) so line wrapping, column grouping and
//! key quoting come out byte for byte. Also JavaScript's `Number#toString`.

/// `breakLength` of `util.inspect`'s defaults.
const BREAK_LENGTH: usize = 80;
/// `maxArrayLength`: items shown before `... N more items`.
const MAX_ARRAY_LENGTH: usize = 100;
/// `compact`: limits the columns of grouped arrays to `compact * 4`.
const COMPACT: usize = 3;

/// A property value in an inspected object.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    /// A number (`counters`, `gauges`, `sets`).
    Number(f64),
    /// An array of numbers (`timers`).
    Numbers(&'a [f64]),
}

/// `util.inspect(object)` of an object whose own keys are `entries`, in
/// insertion order (integer-like keys are moved first, as JavaScript does).
pub fn inspect_object(entries: &[(&str, Value<'_>)]) -> String {
    if entries.is_empty() {
        return "{}".into();
    }
    let output: Vec<String> = js_key_order(entries)
        .into_iter()
        .map(|(key, value)| {
            // formatProperty: the value is formatted two columns deeper.
            let text = match value {
                Value::Number(n) => js_number(n),
                Value::Numbers(items) => inspect_numbers(items, 2),
            };
            format!("{}: {text}", property_name(key))
        })
        .collect();
    reduce_to_single_string(output, "{", "}", 0, false)
}

/// `util.inspect` of an array of numbers at indentation `level`.
fn inspect_numbers(items: &[f64], level: usize) -> String {
    if items.is_empty() {
        return "[]".into();
    }
    let shown = items.len().min(MAX_ARRAY_LENGTH);
    let mut output: Vec<String> = items[..shown].iter().map(|n| js_number(*n)).collect();
    let remaining = items.len() - shown;
    if remaining > 0 {
        let plural = if remaining > 1 { "s" } else { "" };
        output.push(format!("... {remaining} more item{plural}"));
    }
    reduce_to_single_string(output, "[", "]", level, true)
}

/// JavaScript string length (UTF-16 code units), which inspect measures.
fn js_len(text: &str) -> usize {
    text.encode_utf16().count()
}

fn reduce_to_single_string(
    mut output: Vec<String>,
    open: &str,
    close: &str,
    level: usize,
    is_array: bool,
) -> String {
    let entries = output.len();
    if is_array && entries > 6 {
        output = group_array_elements(output, level);
    }
    // Our shapes are at most two deep, so the `currentDepth - recurseTimes <
    // compact` test always holds: try one line first.
    if entries == output.len() {
        let start = output.len() + level + open.len() + 10;
        if is_below_break_length(&output, start) {
            let joined = output.join(", ");
            if !joined.contains('\n') {
                return format!("{open} {joined} {close}");
            }
        }
    }
    let indentation = format!("\n{}", " ".repeat(level));
    format!(
        "{open}{indentation}  {}{indentation}{close}",
        output.join(&format!(",{indentation}  "))
    )
}

fn is_below_break_length(output: &[String], start: usize) -> bool {
    let mut total = output.len() + start;
    if total + output.len() > BREAK_LENGTH {
        return false;
    }
    for item in output {
        total += js_len(item);
        if total > BREAK_LENGTH {
            return false;
        }
    }
    true
}

/// Lays an array's items out in columns (numbers are right-aligned).
fn group_array_elements(output: Vec<String>, level: usize) -> Vec<String> {
    const SEPARATOR_SPACE: usize = 2;
    let has_more = output.len() > MAX_ARRAY_LENGTH;
    let output_length = output.len() - usize::from(has_more);
    let data_len: Vec<usize> = output[..output_length].iter().map(|s| js_len(s)).collect();
    let total_length: usize = data_len.iter().map(|len| len + SEPARATOR_SPACE).sum();
    let max_length = data_len.iter().copied().max().unwrap_or(0);
    let actual_max = max_length + SEPARATOR_SPACE;
    if !(actual_max * 3 + level < BREAK_LENGTH
        && (total_length as f64 / actual_max as f64 > 5.0 || max_length <= 6))
    {
        return output;
    }
    let average_bias = (actual_max as f64 - total_length as f64 / output.len() as f64).sqrt();
    let biased_max = (actual_max as f64 - 3.0 - average_bias).max(1.0);
    let by_area = ((2.5 * biased_max * output_length as f64).sqrt() / biased_max).round();
    let columns = (by_area as usize)
        .min((BREAK_LENGTH - level) / actual_max)
        .min(COMPACT * 4)
        .min(15);
    if columns <= 1 {
        return output;
    }
    let max_line_length: Vec<usize> = (0..columns)
        .map(|column| {
            let widest = data_len
                .iter()
                .skip(column)
                .step_by(columns)
                .copied()
                .max()
                .unwrap_or(0);
            widest + SEPARATOR_SPACE
        })
        .collect();
    let mut grouped = Vec::with_capacity(output_length / columns + 2);
    for row in (0..output_length).step_by(columns) {
        let end = (row + columns).min(output_length);
        let mut line = String::new();
        for (offset, item) in output[row..end - 1].iter().enumerate() {
            line.push_str(&pad_start(&format!("{item}, "), max_line_length[offset]));
        }
        let last = end - 1 - row;
        line.push_str(&pad_start(
            &output[end - 1],
            max_line_length[last] - SEPARATOR_SPACE,
        ));
        grouped.push(line);
    }
    if has_more {
        grouped.push(output[output_length].clone());
    }
    grouped
}

fn pad_start(text: &str, width: usize) -> String {
    let len = js_len(text);
    if len >= width {
        return text.to_string();
    }
    format!("{}{text}", " ".repeat(width - len))
}

/// A property name as inspect writes it: bare if an identifier, else quoted.
fn property_name(key: &str) -> String {
    let mut chars = key.chars();
    let identifier = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if identifier {
        key.to_string()
    } else {
        str_escape(key)
    }
}

/// inspect's `strEscape`: single quotes unless the text holds one (then
/// double quotes, or backticks), control characters escaped.
pub fn str_escape(text: &str) -> String {
    let quote = if !text.contains('\'') {
        '\''
    } else if !text.contains('"') {
        '"'
    } else if !text.contains('`') && !text.contains("${") {
        '`'
    } else {
        '\''
    };
    let mut out = String::with_capacity(text.len() + 2);
    out.push(quote);
    for c in text.chars() {
        let code = c as u32;
        match c {
            '\'' if quote == '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            _ if code < 0x20 || (0x7f..0xa0).contains(&code) => {
                out.push_str(&format!("\\x{code:02X}"));
            }
            _ => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// JavaScript object key order: array-index keys first, ascending, then the
/// rest in insertion order.
fn js_key_order<'a, 'b>(entries: &'b [(&'a str, Value<'b>)]) -> Vec<(&'a str, Value<'b>)> {
    let mut indexed: Vec<(u32, (&str, Value<'_>))> = Vec::new();
    let mut named = Vec::with_capacity(entries.len());
    for &(key, value) in entries {
        match array_index(key) {
            Some(index) => indexed.push((index, (key, value))),
            None => named.push((key, value)),
        }
    }
    indexed.sort_by_key(|(index, _)| *index);
    indexed
        .into_iter()
        .map(|(_, entry)| entry)
        .chain(named)
        .collect()
}

/// The key as an array index (canonical decimal below 2^32 - 1), if it is one.
fn array_index(key: &str) -> Option<u32> {
    if key.is_empty() || (key.len() > 1 && key.starts_with('0')) {
        return None;
    }
    if !key.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    key.parse::<u32>().ok().filter(|n| *n != u32::MAX)
}

/// `String(number)` in JavaScript (`Number.prototype.toString()`), except
/// that `-0` is `-0` as inspect writes it.
pub fn js_number(n: f64) -> String {
    if n.is_nan() {
        return "NaN".into();
    }
    if n == 0.0 {
        return if n.is_sign_negative() { "-0" } else { "0" }.into();
    }
    if n.is_infinite() {
        return if n > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let sign = if n < 0.0 { "-" } else { "" };
    format!("{sign}{}", js_positive(n.abs()))
}

/// `String(number)` as JavaScript's `+` concatenation writes it (`-0` is `0`).
pub fn js_string(n: f64) -> String {
    if n == 0.0 {
        "0".into()
    } else {
        js_number(n)
    }
}

/// ECMA-262 Number::toString for a finite positive number: the shortest
/// digits that round-trip, the nearest of them (ties to even: ryu, as V8;
/// Rust's own `{:e}` breaks ties upwards), placed by exponent.
fn js_positive(n: f64) -> String {
    let mut buffer = ryu::Buffer::new();
    let shortest = buffer.format_finite(n);
    let (mantissa, exponent) = shortest.split_once('e').unwrap_or((shortest, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let fraction = fraction.trim_end_matches('0');
    // digits * 10^(point - len): the decimal point sits after `point` digits.
    let mut digits = format!("{whole}{fraction}");
    let mut point = exponent + whole.len() as i32;
    let leading = digits.len() - digits.trim_start_matches('0').len();
    digits.drain(..leading);
    point -= leading as i32;
    let digits = digits.trim_end_matches('0');
    let k = digits.len() as i32;
    if k <= point && point <= 21 {
        format!("{digits}{}", "0".repeat((point - k) as usize))
    } else if 0 < point && point <= 21 {
        let (whole, fraction) = digits.split_at(point as usize);
        format!("{whole}.{fraction}")
    } else if -6 < point && point <= 0 {
        format!("0.{}{digits}", "0".repeat((-point) as usize))
    } else {
        let sign = if point - 1 < 0 { '-' } else { '+' };
        let (first, rest) = digits.split_at(1);
        let dot = if rest.is_empty() { "" } else { "." };
        format!("{first}{dot}{rest}e{sign}{}", (point - 1).abs())
    }
}

#[cfg(test)]
#[path = "inspect_tests.rs"]
mod tests;
