//! `config`: Etsy's `helpers.writeConfig` of its config object as it stands
//! after start (and, once flushed, after the first flush), which adds keys
//! to what the file said. Values are written as JavaScript's `+` writes
//! them; an object or array value one level down, as `key > sub: value`.

use serde_json::{Map, Value};

use super::inspect::js_string;

/// The config object Etsy holds: the file, then what stats.js sets at start
/// (`gaugesMaxTTL`, `deleteIdleStats` and what it implies, `flushInterval`
/// in ms, the graphite backend's `graphite`), and after its first flush the
/// `delete*` keys it defaults to `false`.
pub fn etsy_runtime_config(
    file: Option<&Value>,
    flush_interval_ms: f64,
    flushed: bool,
) -> Map<String, Value> {
    let mut config = match file {
        Some(Value::Object(map)) => map.clone(),
        _ => Map::new(),
    };
    let ttl_ok = config
        .get("gaugesMaxTTL")
        .and_then(Value::as_f64)
        .is_some_and(|ttl| ttl.fract() == 0.0 && ttl > 1.0);
    if !ttl_ok {
        config.insert("gaugesMaxTTL".into(), Value::from(1));
    }
    if !config.contains_key("deleteIdleStats") {
        config.insert("deleteIdleStats".into(), Value::Bool(false));
    }
    const DELETES: [&str; 4] = [
        "deleteCounters",
        "deleteTimers",
        "deleteSets",
        "deleteGauges",
    ];
    if config.get("deleteIdleStats").is_some_and(truthy) {
        for key in DELETES {
            if !config.contains_key(key) {
                config.insert(key.into(), Value::Bool(true));
            }
        }
    }
    config.insert("flushInterval".into(), number(flush_interval_ms));
    if !config.get("graphite").is_some_and(truthy) {
        config.insert("graphite".into(), Value::Object(Map::new()));
    }
    if flushed {
        for key in DELETES {
            if !config.get(key).is_some_and(truthy) {
                config.insert(key.into(), Value::Bool(false));
            }
        }
    }
    config
}

/// A JSON number from an f64 (integral values stay integers).
fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9e15 {
        Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

/// JavaScript truthiness.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0 && !n.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// helpers.js `writeConfig`: a blank line, then `key: value` per key, or
/// `key > sub: value` for each key of an object (or index of an array).
pub fn write_config(config: &Map<String, Value>) -> String {
    let mut out = String::from("\n");
    for (key, value) in js_order(config.iter().map(|(k, v)| (k.as_str(), v))) {
        match value {
            Value::Object(sub) => {
                for (sub_key, sub_value) in js_order(sub.iter().map(|(k, v)| (k.as_str(), v))) {
                    out.push_str(&format!("{key} > {sub_key}: {}\n", js_text(sub_value)));
                }
            }
            Value::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    out.push_str(&format!("{key} > {index}: {}\n", js_text(item)));
                }
            }
            // typeof null is 'object': it has no keys, so nothing is written.
            Value::Null => {}
            _ => out.push_str(&format!("{key}: {}\n", js_text(value))),
        }
    }
    out
}

/// `String(value)` in JavaScript.
fn js_text(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => js_string(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => s.clone(),
        // Array#toString: elements joined by ',', null and undefined empty.
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::Null => String::new(),
                other => js_text(other),
            })
            .collect::<Vec<_>>()
            .join(","),
        Value::Object(_) => "[object Object]".into(),
    }
}

/// Keys in JavaScript's own-key order: array indices first, ascending.
fn js_order<'a, V>(entries: impl Iterator<Item = (&'a str, V)>) -> Vec<(&'a str, V)> {
    let (mut indexed, named): (Vec<_>, Vec<_>) =
        entries.partition(|(k, _)| array_index(k).is_some());
    indexed.sort_by_key(|(k, _)| array_index(k));
    indexed.extend(named);
    indexed
}

fn array_index(key: &str) -> Option<u32> {
    let canonical = !key.is_empty()
        && key.bytes().all(|b| b.is_ascii_digit())
        && (key.len() == 1 || !key.starts_with('0'));
    key.parse::<u32>()
        .ok()
        .filter(|n| canonical && *n != u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_as_etsy_writes_its_config() {
        let file = serde_json::json!({
            "port": 8125, "title": "x", "debug": false, "pct": [90, 99.9],
            "graphite": {"legacyNamespace": false, "nested": {"a": 1}, "list": [1, null, [2, 3]]},
            "nothing": null, "2": "two", "deleteIdleStats": true, "deleteGauges": false
        });
        let config = etsy_runtime_config(Some(&file), 2000.0, true);
        assert_eq!(
            write_config(&config),
            "\n2: two\nport: 8125\ntitle: x\ndebug: false\npct > 0: 90\npct > 1: 99.9\n\
             graphite > legacyNamespace: false\ngraphite > nested: [object Object]\n\
             graphite > list: 1,,2,3\ndeleteIdleStats: true\ndeleteGauges: false\n\
             gaugesMaxTTL: 1\ndeleteCounters: true\ndeleteTimers: true\ndeleteSets: true\n\
             flushInterval: 2000\n"
        );
    }
}
