//! A TOML file whose keys are our long flag names (`graphite-host =
//! "carbon"`, `flush-interval = 2`, `debug = true`, `pct = [90, 99]`).
//! What a key may hold follows the flag, as clap describes it: a switch
//! takes true/false, a flag with a value takes a string or number, a
//! repeatable flag a list (one occurrence per item), another flag's list is
//! joined with commas.

use clap::ArgAction;

use super::{Group, KeyError, Mapped};

/// Maps the table onto groups, looking each key up among `command`'s flags.
pub fn map(table: &toml::Table, command: &clap::Command) -> Result<Mapped, KeyError> {
    let mut out = Mapped::default();
    for (key, value) in table {
        if key == "config" {
            return Err(KeyError::new(key, "a config file cannot name another"));
        }
        let Some(arg) = command
            .get_arguments()
            .find(|a| a.get_long() == Some(key.as_str()))
        else {
            out.warnings.push(format!(
                "config key {key} is not supported (no flag --{key})"
            ));
            continue;
        };
        let switch = matches!(
            arg.get_action(),
            ArgAction::SetTrue | ArgAction::SetFalse | ArgAction::Count
        );
        let repeats = matches!(arg.get_action(), ArgAction::Append);
        if switch {
            match value {
                toml::Value::Boolean(true) => out.groups.push(Group::switch(key, key)),
                toml::Value::Boolean(false) => {}
                other => {
                    return Err(KeyError::new(
                        key,
                        format!("must be true or false, not {other}"),
                    ))
                }
            }
            continue;
        }
        match value {
            toml::Value::Array(items) if repeats => {
                for item in items {
                    out.groups.push(Group::with(key, key, scalar(key, item)?));
                }
            }
            toml::Value::Array(items) => {
                let texts: Result<Vec<String>, KeyError> =
                    items.iter().map(|i| scalar(key, i)).collect();
                out.groups.push(Group::with(key, key, texts?.join(",")));
            }
            other => out.groups.push(Group::with(key, key, scalar(key, other)?)),
        }
    }
    Ok(out)
}

/// A value as the flag's text.
fn scalar(key: &str, value: &toml::Value) -> Result<String, KeyError> {
    match value {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(n) => Ok(n.to_string()),
        toml::Value::Float(x) => Ok(x.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        other => Err(KeyError::new(
            key,
            format!("must be a string, number or true/false, not {other}"),
        )),
    }
}
