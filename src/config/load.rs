//! Argv (and the `--config` file it names) -> [`Config`]. The file's keys
//! become flags placed before the real command line; a flag the command
//! line gives drops the file's tokens for it, so the command line wins.
//! The argv is kept, so that SIGHUP can do the same again.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser};

use super::file::{self, Group};
use super::{first_line, Cli, Config, ParseOutcome};

/// Where the running settings came from, to read them again on SIGHUP.
#[derive(Debug, Clone, Default)]
pub struct LoaderSettings {
    /// `--config`: the file, if any.
    pub path: Option<PathBuf>,
    /// The command line as given (program name first).
    pub argv: Vec<OsString>,
    /// The file's keys we do not support, one line each.
    pub warnings: Vec<String>,
    /// The file's keys as flags, for what a reload changed.
    pub groups: Vec<Group>,
}

/// Parses `args` (program name first), reading the `--config` file if named.
pub(super) fn parse(args: Vec<OsString>) -> Result<Config, ParseOutcome> {
    let command = Cli::command();
    let matches = command
        .clone()
        .try_get_matches_from(&args)
        .map_err(clap_outcome)?;
    let cli = Cli::from_arg_matches(&matches).map_err(clap_outcome)?;
    let Some(path) = cli.loader.config.clone() else {
        let mut config = Config::from_cli(cli).map_err(ParseOutcome::Invalid)?;
        config.loader.argv = args;
        return Ok(config);
    };
    let loaded = file::load(&path, &command).map_err(ParseOutcome::Invalid)?;
    let mut warnings = loaded.warnings.clone();
    let mut groups = Vec::new();
    for group in loaded.groups {
        let arg = command
            .get_arguments()
            .find(|a| a.get_long() == Some(group.flag.as_str()));
        match arg {
            None => warnings.push(format!(
                "config key {} needs --{}, which this build does not have: ignored",
                group.key, group.flag
            )),
            Some(arg)
                if matches.value_source(arg.get_id().as_str())
                    == Some(ValueSource::CommandLine) => {}
            Some(_) => groups.push(group),
        }
    }
    match with_groups(&args, &groups) {
        Ok(mut config) => {
            config.loader = LoaderSettings {
                path: Some(path),
                argv: args,
                warnings,
                groups,
            };
            config.etsy_file = loaded.etsy;
            Ok(config)
        }
        Err(error) => {
            // Name the key at fault: the first group that fails on its own.
            let shown = path.display();
            let guilty = groups.iter().find_map(|g| {
                with_groups(&args, std::slice::from_ref(g))
                    .err()
                    .map(|e| (g, e))
            });
            Err(ParseOutcome::Invalid(match guilty {
                Some((group, error)) => format!("{shown}: key {}: {error}", group.key),
                None => format!("{shown}: {error}"),
            }))
        }
    }
}

/// The config of `groups`' tokens followed by the real command line.
fn with_groups(args: &[OsString], groups: &[Group]) -> Result<Config, String> {
    let mut argv: Vec<OsString> = args.iter().take(1).cloned().collect();
    argv.extend(groups.iter().flat_map(Group::tokens));
    argv.extend(args.iter().skip(1).cloned());
    let cli = Cli::try_parse_from(argv).map_err(|e| first_line(&e.to_string()))?;
    Config::from_cli(cli)
}

/// `--help`/`--version` are information; anything else one line.
fn clap_outcome(error: clap::Error) -> ParseOutcome {
    match error.kind() {
        clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
            ParseOutcome::Info(error.to_string())
        }
        _ => ParseOutcome::Invalid(first_line(&error.to_string())),
    }
}
