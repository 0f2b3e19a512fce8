//! `--config FILE` end to end through the real binary: Etsy's config.js
//! (comments, trailing commas, unquoted keys) and TOML, unknown keys named
//! on stderr, a bad value refused in one line (exit 2), the command line
//! winning over the file, and SIGHUP reloads: a new prefix from the next
//! flush with every line sent across the reload accounted for, and a bad
//! file keeping the running settings.

mod support;

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::carbon::{value_of, FakeCarbon};
use support::daemon::{run_statsd, signal, Daemon};
use support::{config_file, rewrite, Statsd, WAIT};

fn start(path: &Path, extra: &[&str]) -> Daemon {
    let mut args = vec!["--config", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    Daemon::start(&args)
}

fn toml(carbon: u16, prefix: &str) -> String {
    format!(
        "# flags by their long names\nport = 0\nflush-interval = 1\ngraphite-host = \"127.0.0.1\"\n\
         graphite-port = {carbon}\ncounters-prefix = \"{prefix}\"\nquiet = true\n"
    )
}

#[test]
fn etsy_config_js_with_comments_and_trailing_commas() {
    let carbon = FakeCarbon::start();
    let text = format!(
        "/* Etsy's exampleConfig.js style */\n{{\n  graphitePort: {}, // carbon\n  \
         graphiteHost: '127.0.0.1',\n  port: 0,\n  mgmt_port: 0,\n  flushInterval: 1000,\n  graphService: \"graphite\",\n  \
         backends: [ \"./backends/graphite\", ],\n}}\n",
        carbon.port
    );
    let (_dir, path) = config_file("config.js", &text);
    let statsd = start(&path, &[]);
    // Unknown to Etsy and to us: named, not silently dropped.
    statsd.wait_stderr("config key graphService is not supported");
    statsd.send_udp(b"etsy_counter:3|c");
    let flush = carbon.flush_with("stats.etsy_counter ");
    assert_eq!(
        value_of(&flush, "stats.etsy_counter"),
        Some(3.0),
        "{flush:?}"
    );
}

#[test]
fn an_etsy_config_listens_on_udp_only_as_etsy_does_unless_server_says_tcp() {
    let carbon = FakeCarbon::start();
    let (_dir, path) = config_file(
        "statsd.conf",
        &format!(
            "{{ port: 0, mgmt_port: 0, graphitePort: {}, graphiteHost: '127.0.0.1' }}",
            carbon.port
        ),
    );
    let statsd = start(&path, &[]);
    assert!(
        std::net::TcpStream::connect(statsd.metrics_addr()).is_err(),
        "TCP must be off"
    );
    let (_dir, path) = config_file(
        "statsd.js",
        &format!(
            "{{ server: './servers/tcp', port: 0, mgmt_port: 0, flushInterval: 1000, graphitePort: {}, graphiteHost: '127.0.0.1' }}",
            carbon.port
        ),
    );
    let statsd = start(&path, &[]);
    statsd.send_tcp(b"over_tcp:2|c\n");
    let flush = carbon.flush_with("stats.over_tcp ");
    assert_eq!(value_of(&flush, "stats.over_tcp"), Some(2.0));
}

#[test]
fn toml_file_and_the_command_line_wins() {
    let carbon = FakeCarbon::start();
    let text = toml(carbon.port, "fromfile") + "gauge-prefix = \"gfile\"\nno-such-flag = 1\n";
    let (_dir, path) = config_file("statsd.toml", &text);
    let statsd = start(&path, &["--counters-prefix", "cli"]);
    statsd.wait_stderr("config key no-such-flag is not supported");
    statsd.send_udp(b"hits:4|c\ntemp:7|g");
    let flush = carbon.flush_with("cli.hits ");
    assert_eq!(value_of(&flush, "cli.hits"), Some(4.0), "{flush:?}");
    assert!(
        flush.iter().any(|l| l.starts_with("gfile.temp 7 ")),
        "{flush:?}"
    );
    assert!(
        !flush.iter().any(|l| l.starts_with("fromfile.")),
        "{flush:?}"
    );
}

#[test]
fn a_bad_value_exits_2_with_one_line_naming_file_and_key() {
    for (name, text, key) in [
        ("a.js", "{ flushInterval: 'ten', }", "flushInterval"),
        (
            "b.js",
            "{ percentThreshold: [90, 'x'] }",
            "percentThreshold",
        ),
        (
            "c.js",
            "{ graphite: { globalPrefix: 5 } }",
            "graphite.globalPrefix",
        ),
        ("d.toml", "port = 70000\n", "port"),
        ("e.toml", "counters-prefix = \"a b\"\n", "counters-prefix"),
        ("f.js", "{ port: 1, ", "not a JavaScript object literal"),
        ("g.toml", "port = [\n", "not TOML"),
    ] {
        let (_dir, path) = config_file(name, text);
        let out = run_statsd(&["--config", path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{name}: {stderr}");
        assert!(
            stderr.contains(path.to_str().unwrap()) && stderr.contains(key),
            "{name}: {stderr}"
        );
    }
    let out = run_statsd(&["--config", "/nonexistent/config.js"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn sighup_changes_the_prefix_from_the_next_flush_without_losing_a_line() {
    let carbon = FakeCarbon::start();
    let (_dir, path) = config_file("statsd.toml", &toml(carbon.port, "before"));
    let statsd = start(&path, &[]);
    // One TCP connection sending until told to stop, across the reload.
    let stop = Arc::new(AtomicBool::new(false));
    let mut stream = statsd.connect_tcp();
    let sender = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + WAIT;
            let mut sent = 0u64;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                stream.write_all(b"n:1|c\n").expect("send a line");
                sent += 1;
                // Paced: a few hundred lines per flush.
                std::thread::sleep(Duration::from_millis(2));
            }
            sent
        })
    };
    let mut seen = carbon.through_flush_with("before.n ");
    rewrite(&path, &toml(carbon.port, "after"));
    signal(statsd.child.id(), libc::SIGHUP);
    statsd.wait_stderr("counters-prefix: --counters-prefix before -> --counters-prefix after");
    seen.extend(carbon.through_flush_with("after.n "));
    // And one more flush of the new prefix while still sending.
    seen.extend(carbon.through_flush_with("after.n "));
    stop.store(true, Ordering::Relaxed);
    let sent = sender.join().expect("the sender");
    let mut statsd = statsd;
    assert_eq!(statsd.terminate(), 0);
    let total = |lines: &[String]| -> f64 {
        lines
            .iter()
            .filter_map(|l| {
                let mut parts = l.split(' ');
                let path = parts.next()?;
                (path == "before.n" || path == "after.n")
                    .then(|| parts.next()?.parse::<f64>().ok())?
            })
            .sum()
    };
    // The final flush has been delivered by the time the daemon exits; its
    // lines may still be on their way through the fake carbon's reader.
    let deadline = Instant::now() + WAIT;
    while total(&seen) < sent as f64 && Instant::now() < deadline {
        seen.extend(carbon.drain());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        total(&seen),
        sent as f64,
        "every line sent across the reload is counted once"
    );
    let first_after = seen.iter().position(|l| l.starts_with("after.n ")).unwrap();
    assert!(
        !seen[first_after..].iter().any(|l| l.starts_with("before.")),
        "no old prefix once the new one is out"
    );
}

#[test]
fn a_bad_file_on_sighup_keeps_the_running_settings() {
    let carbon = FakeCarbon::start();
    let (_dir, path) = config_file("statsd.toml", &toml(carbon.port, "kept"));
    let statsd = start(&path, &[]);
    statsd.send_udp(b"k:1|c");
    carbon.flush_with("kept.k ");
    rewrite(&path, "counters-prefix = [\n");
    signal(statsd.child.id(), libc::SIGHUP);
    let line = statsd.wait_stderr("keeping the running settings");
    assert!(
        line.contains("not TOML") && line.contains(path.to_str().unwrap()),
        "{line}"
    );
    // A changed port cannot apply without rebinding: said, and not applied.
    rewrite(
        &path,
        &(toml(carbon.port, "kept").replace("port = 0", "port = 1")),
    );
    signal(statsd.child.id(), libc::SIGHUP);
    statsd.wait_stderr("needs a restart");
    statsd.send_udp(b"k:2|c");
    let flush = carbon.flush_with("kept.k ");
    assert_eq!(value_of(&flush, "kept.k"), Some(2.0), "{flush:?}");
}
