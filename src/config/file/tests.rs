use std::path::Path;

use clap::CommandFactory;
use serde_json::json;

use super::*;
use crate::config::Cli;

fn etsy_tokens(value: serde_json::Value) -> Vec<String> {
    let mapped = etsy::map(&value).unwrap();
    mapped
        .groups
        .iter()
        .flat_map(Group::tokens)
        .map(|t| t.into_string().unwrap())
        .collect()
}

fn has(tokens: &[String], want: &[&str]) -> bool {
    tokens.windows(want.len()).any(|w| w == want)
}

#[test]
fn etsy_example_config_with_comments_and_trailing_commas() {
    let text = r#"/* Etsy's block comment
    spanning lines */
    {
      graphitePort: 2003, // the text collector
      graphiteHost: "graphite.example.com",
      port: 8125,
      backends: [ "./backends/graphite", ],
    }"#;
    assert_eq!(detect(Path::new("/etc/statsd/config"), text), Format::Etsy);
    let value: serde_json::Value = json5::from_str(text).unwrap();
    let tokens = etsy_tokens(value);
    for want in [
        &["--etsy"][..],
        &["--graphite-port", "2003"],
        &["--graphite-host", "graphite.example.com"],
        &["--port", "8125"],
        &["--transports", "udp"],
    ] {
        assert!(has(&tokens, want), "{want:?} in {tokens:?}");
    }
    assert!(!tokens.contains(&"--console".to_string()));
}

#[test]
fn etsy_units_lists_and_histograms() {
    let tokens = etsy_tokens(json!({
        "flushInterval": 200,
        "percentThreshold": [90, 99.9, -10],
        "histogram": [{"metric": "render", "bins": [0.01, 1, "inf"]}, {"metric": "", "bins": []}],
        "calculatedTimerMetrics": ["count", "upper_percent"],
        "debug": true,
        "dumpMessages": false,
        "flush_counts": false,
        "keyNameSanitize": true,
    }));
    for want in [
        &["--flush-interval", "0.2"][..],
        &["--pct", "90,99.9,-10"],
        &["--histogram", "render=0.01,1,inf"],
        &["--histogram", "="],
        &["--timer-metrics", "count,upper_percent"],
        &["--debug"],
        &["--flush-counts", "false"],
        &["--key-name-sanitize", "true"],
    ] {
        assert!(has(&tokens, want), "{want:?} in {tokens:?}");
    }
    assert!(!tokens.contains(&"--dump-messages".to_string()));
    assert!(has(
        &etsy_tokens(json!({"percentThreshold": 95})),
        &["--pct", "95"]
    ));
}

#[test]
fn delete_idle_stats_is_the_default_of_each_delete() {
    let tokens = etsy_tokens(json!({"deleteIdleStats": true, "deleteGauges": false}));
    assert!(has(&tokens, &["--delete-idle-stats"]));
    assert!(has(&tokens, &["--delete-gauges", "false"]));
    for flag in ["--delete-timers", "--delete-sets", "--delete-counters"] {
        assert!(has(&tokens, &[flag, "true"]), "{flag} in {tokens:?}");
    }
    let tokens = etsy_tokens(json!({"deleteTimers": true}));
    assert!(has(&tokens, &["--delete-timers", "true"]));
    assert!(!tokens
        .iter()
        .any(|t| t == "--delete-gauges" || t == "--delete-idle-stats"));
}

#[test]
fn etsy_graphite_block_and_servers() {
    let tokens = etsy_tokens(json!({
        "graphite": {"legacyNamespace": false, "globalPrefix": "g", "prefixCounter": "c",
                     "prefixTimer": "t", "prefixGauge": "ga", "prefixSet": "s",
                     "prefixInternalMetrics": "i", "globalSuffix": "host1"},
        "servers": [{"server": "./servers/udp", "port": 9125}, {"server": "./servers/tcp", "port": 9125}],
        "mgmt_port": 9126, "mgmt_address": "127.0.0.1",
        "graphiteProtocol": "pickle", "graphitePicklePort": 2104, "graphitePort": 2103,
    }));
    for want in [
        &["--legacy-namespace", "false"][..],
        &["--global-prefix", "g"],
        &["--prefix-counter", "c"],
        &["--prefix-timer", "t"],
        &["--prefix-gauge", "ga"],
        &["--prefix-set", "s"],
        &["--prefix-internal-metrics", "i"],
        &["--global-suffix", "host1"],
        &["--transports", "udp,tcp"],
        &["--port", "9125"],
        &["--mgmt-port", "9126"],
        &["--mgmt-address", "127.0.0.1"],
        &["--graphite-protocol", "pickle"],
        &["--graphite-port", "2104"],
    ] {
        assert!(has(&tokens, want), "{want:?} in {tokens:?}");
    }
    assert!(!has(&tokens, &["--graphite-port", "2103"]));
    let tokens = etsy_tokens(json!({"server": "./servers/tcp", "address": "::1"}));
    assert!(has(&tokens, &["--transports", "tcp"]) && has(&tokens, &["--name", "::1"]));
    let tokens = etsy_tokens(json!({"address_ipv6": true}));
    assert!(has(&tokens, &["--name", "::"]));
    assert!(has(
        &etsy_tokens(json!({"backends": ["./backends/console"]})),
        &["--console"]
    ));
}

#[test]
fn unsupported_keys_are_warned_not_dropped() {
    let mapped = etsy::map(
        &json!({"graphService": "graphite", "title": "x", "graphite": {"foo": 1},
                                   "backends": ["./backends/repeater", "./backends/graphite"]}),
    )
    .unwrap();
    let all = mapped.warnings.join("\n");
    for key in [
        "graphService",
        "title",
        "graphite.foo",
        "./backends/repeater",
    ] {
        assert!(all.contains(key), "{key} in {all}");
    }
}

#[test]
fn bad_values_name_the_key() {
    for (value, key) in [
        (json!({"flushInterval": "10s"}), "flushInterval"),
        (json!({"flushInterval": 0}), "flushInterval"),
        (json!({"port": 70000}), "port"),
        (json!({"percentThreshold": [90, "x"]}), "percentThreshold"),
        (json!({"percentThreshold": 0}), "percentThreshold"),
        (
            json!({"histogram": [{"metric": "a", "bins": ["infinity"]}]}),
            "histogram",
        ),
        (json!({"histogram": {"metric": "a"}}), "histogram"),
        (json!({"deleteGauges": "yes"}), "deleteGauges"),
        (json!({"server": "./servers/http"}), "server"),
        (json!({"servers": [{"port": 1}, {"port": 2}]}), "servers"),
        (
            json!({"graphite": {"globalPrefix": 5}}),
            "graphite.globalPrefix",
        ),
        (json!({"graphiteProtocol": "udp"}), "graphiteProtocol"),
        (json!([1, 2]), "(top)"),
    ] {
        let error = etsy::map(&value).unwrap_err();
        assert_eq!(error.key, key, "{value}: {error:?}");
        assert!(!error.why.contains('\n'));
    }
}

#[test]
fn toml_keys_are_long_flags() {
    let command = Cli::command();
    let table: toml::Table = r#"
        # a comment
        graphite-host = "carbon"
        flush-interval = 2.5
        port = 9125
        debug = true
        quiet = false
        transports = ["udp"]
        no-such-flag = 1
    "#
    .parse()
    .unwrap();
    let mapped = toml_flags::map(&table, &command).unwrap();
    let tokens: Vec<String> = mapped
        .groups
        .iter()
        .flat_map(Group::tokens)
        .map(|t| t.into_string().unwrap())
        .collect();
    for want in [
        &["--graphite-host", "carbon"][..],
        &["--flush-interval", "2.5"],
        &["--port", "9125"],
        &["--debug"],
        &["--transports", "udp"],
    ] {
        assert!(has(&tokens, want), "{want:?} in {tokens:?}");
    }
    assert!(!tokens.contains(&"--quiet".to_string()));
    assert!(mapped.warnings.iter().any(|w| w.contains("no-such-flag")));
    let bad: toml::Table = "debug = \"yes\"".parse().unwrap();
    assert_eq!(toml_flags::map(&bad, &command).unwrap_err().key, "debug");
    assert_eq!(detect(Path::new("x.conf"), "# c\nport = 1\n"), Format::Toml);
    assert_eq!(detect(Path::new("x.toml"), "{"), Format::Toml);
    assert_eq!(detect(Path::new("x.js"), "port = 1"), Format::Etsy);
}

fn parse_with(
    text: &str,
    name: &str,
    cli: &[&str],
) -> (
    tempfile::TempDir,
    Result<crate::config::Config, crate::config::ParseOutcome>,
) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    let mut args = vec![
        "statsd".to_string(),
        "--config".into(),
        path.display().to_string(),
    ];
    args.extend(cli.iter().map(|s| s.to_string()));
    let parsed = crate::config::Config::parse_from(args);
    (dir, parsed)
}

#[test]
fn the_command_line_wins_over_the_file() {
    let text = "counters-prefix = \"file\"\ngauge-prefix = \"gfile\"\nport = 9000\n";
    let (_dir, parsed) = parse_with(text, "s.toml", &["--counters-prefix", "cli", "-p", "9001"]);
    let config = parsed.unwrap();
    assert_eq!(config.flush.render.counters_prefix, "cli");
    assert_eq!(config.flush.render.gauge_prefix, "gfile");
    assert_eq!(config.bind.port, 9001);
    assert!(config.etsy_file.is_none());
    assert_eq!(
        config.loader.groups.len(),
        1,
        "only the file's gauge-prefix is used"
    );
}

#[test]
fn an_etsy_file_is_kept_parsed_and_sets_transports() {
    let (_dir, parsed) = parse_with("{ port: 9125, flushInterval: 2000, }", "c.js", &[]);
    let config = parsed.unwrap();
    assert_eq!(config.bind.port, 9125);
    assert_eq!(config.flush_interval, std::time::Duration::from_secs(2));
    assert!(config.bind.transports.udp && !config.bind.transports.tcp);
    assert_eq!(
        config.etsy_file,
        Some(json!({"port": 9125, "flushInterval": 2000}))
    );
}

#[test]
fn a_value_clap_refuses_names_the_key() {
    let (_dir, parsed) = parse_with("counters-prefix = \"a b\"\nport = 1\n", "s.toml", &[]);
    match parsed {
        Err(crate::config::ParseOutcome::Invalid(line)) => {
            assert!(
                line.contains("key counters-prefix") && !line.contains('\n'),
                "{line}"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn reload_applies_render_and_target_and_refuses_the_rest() {
    use std::sync::Arc;

    use crate::reload::{apply, Slots};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.toml");
    let args = vec![
        "statsd".to_string(),
        "--config".into(),
        path.display().to_string(),
    ];
    std::fs::write(&path, "counters-prefix = \"a\"\nport = 9000\n").unwrap();
    let mut running = crate::config::Config::parse_from(args.clone()).unwrap();
    let slots = Slots {
        flush: Arc::new(arc_swap::ArcSwap::from_pointee(running.flush.clone())),
        target: Arc::new(arc_swap::ArcSwap::from_pointee(running.target.clone())),
        intake_limits: Arc::new(arc_swap::ArcSwap::from_pointee(running.limits)),
        intake: Arc::new(crate::intake::Intake::new(running.limits.max_line_bytes)),
        tcp: Arc::new(arc_swap::ArcSwap::from_pointee(running.tcp)),
        mgmt: Arc::new(arc_swap::ArcSwap::from_pointee(running.mgmt)),
        backlog: Arc::new(arc_swap::ArcSwap::from_pointee(running.backlog)),
        etsy_file: Arc::new(arc_swap::ArcSwapOption::empty()),
    };
    std::fs::write(
        &path,
        "counters-prefix = \"b\"\nport = 9001\ngraphite-host = \"carbon2\"\n",
    )
    .unwrap();
    let lines = apply(
        &mut running,
        crate::config::Config::parse_from(args.clone()),
        &slots,
    );
    let all = lines.join("\n");
    assert!(
        all.contains("counters-prefix: --counters-prefix a -> --counters-prefix b"),
        "{all}"
    );
    assert!(all.contains("needs a restart"), "{all}");
    assert_eq!(slots.flush.load().render.counters_prefix, "b");
    assert_eq!(running.bind.port, 9000, "the port needs a restart");
    assert!(
        slots.target.load().to_string().starts_with("carbon2:"),
        "{all}"
    );
    std::fs::write(&path, "counters-prefix = [").unwrap();
    let lines = apply(
        &mut running,
        crate::config::Config::parse_from(args),
        &slots,
    );
    assert!(
        lines.len() == 1 && lines[0].contains("keeping the running settings"),
        "{lines:?}"
    );
    assert_eq!(slots.flush.load().render.counters_prefix, "b");
}
