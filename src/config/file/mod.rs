//! `--config FILE`: a settings file turned into flags. Two formats, told
//! apart by extension, else by content:
//!
//! - Etsy statsd's config.js ([`etsy`]): a JavaScript object literal, read
//!   as JSON5 (unquoted keys, comments, trailing commas); `.js`, `.json`,
//!   `.json5`, or a file whose first text after comments is `{`. Implies
//!   `--etsy`.
//! - TOML ([`toml_flags`]) with the long flag names as keys; `.toml`, or
//!   anything else.
//!
//! Each key becomes a [`Group`] of argv tokens placed before the real
//! command line. A flag given on the command line drops the file's group
//! for it (it wins, lists included). Keys we do not support are warnings,
//! never silently ignored; a bad value is one line naming file, key and why.

pub mod etsy;
mod etsy_listeners;
#[cfg(test)]
mod tests;
pub mod toml_flags;

use std::ffi::OsString;
use std::path::Path;

/// How a file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Etsy statsd's config.js.
    Etsy,
    /// TOML, long flag names as keys.
    Toml,
}

/// The tokens one key of the file stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The key as written in the file (`graphite.globalPrefix`).
    pub key: String,
    /// The long flag, without `--`.
    pub flag: String,
    /// The flag's value, if it takes one.
    pub value: Option<String>,
}

impl Group {
    /// A flag with a value.
    pub fn with(key: &str, flag: &str, value: impl Into<String>) -> Group {
        Group {
            key: key.into(),
            flag: flag.into(),
            value: Some(value.into()),
        }
    }

    /// A flag that takes no value.
    pub fn switch(key: &str, flag: &str) -> Group {
        Group {
            key: key.into(),
            flag: flag.into(),
            value: None,
        }
    }

    /// The argv tokens.
    pub fn tokens(&self) -> Vec<OsString> {
        let mut tokens = vec![OsString::from(format!("--{}", self.flag))];
        tokens.extend(self.value.iter().map(OsString::from));
        tokens
    }
}

/// What a file says, as flags.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Its format.
    pub format: Format,
    /// One group per flag occurrence, in file order.
    pub groups: Vec<Group>,
    /// Keys (and values) we do not support, one line each.
    pub warnings: Vec<String>,
    /// An Etsy file's parsed object, as Etsy's `config` command shows it.
    pub etsy: Option<serde_json::Value>,
}

/// Why a value cannot be used: the key and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError {
    /// The key as written in the file.
    pub key: String,
    /// Why, in a few words.
    pub why: String,
}

impl KeyError {
    pub fn new(key: &str, why: impl Into<String>) -> KeyError {
        KeyError {
            key: key.into(),
            why: why.into(),
        }
    }
}

/// Reads and maps `path`; `command` is `Cli`'s, which the TOML keys name.
/// The error is one line naming the file (and the key, when one is at fault).
pub fn load(path: &Path, command: &clap::Command) -> Result<Loaded, String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("--config {shown}: {e}"))?;
    let format = detect(path, &text);
    let key_error = |e: KeyError| format!("{shown}: key {}: {}", e.key, e.why);
    match format {
        Format::Etsy => {
            let value: serde_json::Value = json5::from_str(&text).map_err(|e| {
                format!(
                    "{shown}: not a JavaScript object literal: {}",
                    one_line(&e.to_string())
                )
            })?;
            let mapped = etsy::map(&value).map_err(key_error)?;
            Ok(Loaded {
                format,
                groups: mapped.groups,
                warnings: mapped.warnings,
                etsy: Some(value),
            })
        }
        Format::Toml => {
            let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
                format!("{shown}: not TOML: {}", one_line(e.message()))
            })?;
            let mapped = toml_flags::map(&table, command).map_err(key_error)?;
            Ok(Loaded {
                format,
                groups: mapped.groups,
                warnings: mapped.warnings,
                etsy: None,
            })
        }
    }
}

/// By extension first; otherwise a file whose first text after `//` and
/// `/* */` comments is `{` is Etsy's, anything else TOML.
pub fn detect(path: &Path, text: &str) -> Format {
    match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => return Format::Toml,
        Some("js" | "json" | "json5") => return Format::Etsy,
        _ => {}
    }
    let mut rest = text.trim_start();
    loop {
        if let Some(after) = rest.strip_prefix("//") {
            rest = after.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else {
            break;
        }
    }
    if rest.starts_with('{') {
        Format::Etsy
    } else {
        Format::Toml
    }
}

/// What the mappers return.
#[derive(Debug, Default)]
pub struct Mapped {
    pub groups: Vec<Group>,
    pub warnings: Vec<String>,
}

/// Parser messages can span lines; the operator gets one.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
