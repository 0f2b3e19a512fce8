//! Etsy statsd 0.9.0's console commands and their replies, byte for byte
//! (stats.js `mgmt_server.start` callback, lib/mgmt_console.js,
//! lib/helpers.js `writeConfig`). Pure: the caller supplies the state.

use super::inspect::{inspect_object, Value};
use super::view::{Kind, Listed};

/// `help`'s reply (Etsy lists neither `sets` nor `delsets`).
pub const HELP: &str =
    "Commands: stats, counters, timers, gauges, delcounters, deltimers, delgauges, health, config, quit\n\n";
/// The reply to anything else.
pub const ERROR: &str = "ERROR\n";
/// Ends a listing, deletion or `stats`.
pub const END: &str = "END\n\n";

/// A command line, split as Etsy splits it: trimmed, then cut at every
/// single space (so two spaces make an empty parameter, as in Etsy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `help`.
    Help,
    /// `config`.
    Config,
    /// `health [up|down]`: the new state, if one was asked for.
    Health(Option<bool>),
    /// `stats`.
    Stats,
    /// `counters`, `timers`, `gauges`, `sets`.
    List(Kind),
    /// `delcounters`, ... with the names or `prefix.*` globs asked for.
    Delete(Kind, Vec<String>),
    /// `quit`: close the connection.
    Quit,
    /// Anything else (answered `ERROR`).
    Unknown,
}

/// Parses one command line.
pub fn parse(line: &str) -> Command {
    let mut words = line.trim().split(' ');
    let command = words.next().unwrap_or("");
    let parameters: Vec<String> = words.map(str::to_string).collect();
    match command {
        "help" => Command::Help,
        "config" => Command::Config,
        "health" => Command::Health(match parameters.first().map(|p| p.to_lowercase()) {
            Some(p) if p == "up" => Some(true),
            Some(p) if p == "down" => Some(false),
            _ => None,
        }),
        "stats" => Command::Stats,
        "counters" => Command::List(Kind::Counters),
        "timers" => Command::List(Kind::Timers),
        "gauges" => Command::List(Kind::Gauges),
        "sets" => Command::List(Kind::Sets),
        "delcounters" => Command::Delete(Kind::Counters, parameters),
        "deltimers" => Command::Delete(Kind::Timers, parameters),
        "delgauges" => Command::Delete(Kind::Gauges, parameters),
        "delsets" => Command::Delete(Kind::Sets, parameters),
        "quit" => Command::Quit,
        _ => Command::Unknown,
    }
}

/// `health`'s reply.
pub fn health(up: bool) -> String {
    format!("health: {}\n", if up { "up" } else { "down" })
}

/// `counters` (and the other listings): `util.inspect` of the object, END.
pub fn listing(series: &[(Box<str>, Listed)]) -> String {
    let entries: Vec<(&str, Value<'_>)> = series
        .iter()
        .map(|(name, value)| {
            let value = match value {
                Listed::Number(n) => Value::Number(*n),
                Listed::Samples(samples) => Value::Numbers(samples),
            };
            (&**name, value)
        })
        .collect();
    format!("{}\n{END}", inspect_object(&entries))
}

/// Names every JavaScript object has through its prototype: Etsy's
/// `bucket in stats_type` finds them, so `delcounters toString` answers
/// `deleted: toString` (and deletes nothing).
const INHERITED: [&str; 12] = [
    "constructor",
    "__defineGetter__",
    "__defineSetter__",
    "hasOwnProperty",
    "__lookupGetter__",
    "__lookupSetter__",
    "isPrototypeOf",
    "propertyIsEnumerable",
    "toString",
    "valueOf",
    "__proto__",
    "toLocaleString",
];

/// mgmt_console.js `delete_stats`: for each request, the exact name and,
/// for `folder.*`, every name starting with `folder.`; each reported, in
/// turn. `names` are the series held, in listing order; returns the reply
/// and the names to delete.
pub fn delete_stats(names: &[&str], requests: &[String]) -> (String, Vec<String>) {
    let mut left: Vec<&str> = names.to_vec();
    let mut reply = String::new();
    let mut deleted = Vec::new();
    for bucket in requests {
        let mut matches: Vec<&str> = Vec::new();
        if left.contains(&bucket.as_str()) || INHERITED.contains(&bucket.as_str()) {
            matches.push(bucket);
        }
        if let Some(folder) = bucket.strip_suffix('*').filter(|_| bucket.ends_with(".*")) {
            matches.extend(left.iter().copied().filter(|name| name.starts_with(folder)));
        }
        if matches.is_empty() {
            reply.push_str(&format!("metric {bucket} not found\n"));
        }
        for name in matches {
            reply.push_str(&format!("deleted: {name}\n"));
            if let Some(at) = left.iter().position(|held| *held == name) {
                left.remove(at);
                deleted.push(name.to_string());
            }
        }
    }
    reply.push_str(END);
    (reply, deleted)
}

/// What `stats` reports, in Unix seconds as Etsy rounds them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatsView {
    /// Now.
    pub now: i64,
    /// Start of the server.
    pub startup: i64,
    /// The last packet received (the start until one is).
    pub last_msg_seen: i64,
    /// Bad lines since start.
    pub bad_lines_seen: u64,
    /// The last successful publish (the start until one is).
    pub last_flush: i64,
    /// The last publish exception (Etsy: 0 unless connecting threw at once).
    pub last_exception: i64,
    /// Milliseconds the last publish took to write.
    pub flush_time: i64,
    /// Characters of the last payload.
    pub flush_length: u64,
}

/// `stats`: uptime, the `messages` group, the graphite backend's status
/// (`last_*` as seconds ago), END.
pub fn stats(view: &StatsView) -> String {
    let now = view.now;
    format!(
        "uptime: {}\nmessages.last_msg_seen: {}\nmessages.bad_lines_seen: {}\n\
         graphite.last_flush: {}\ngraphite.last_exception: {}\ngraphite.flush_time: {}\n\
         graphite.flush_length: {}\n{END}",
        now - view.startup,
        now - view.last_msg_seen,
        view.bad_lines_seen,
        now - view.last_flush,
        now - view.last_exception,
        view.flush_time,
        view.flush_length,
    )
}

/// `Math.round(x)` for a time in seconds.
pub fn js_round(seconds: f64) -> i64 {
    (seconds + 0.5).floor() as i64
}

#[cfg(test)]
#[path = "commands_tests.rs"]
mod tests;
