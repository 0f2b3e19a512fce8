//! SIGHUP applies the bounds too, through the real binary: the intake
//! limits (line length at once, names from the next interval), TCP
//! connections from the next accepted; the carbon destinations of a ring
//! need a restart and say so; an Etsy config without `graphiteHost` sends
//! nothing to carbon, as Etsy does; mgmt's `config` shows the file as last read.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::carbon::{value_of, FakeCarbon};
use support::daemon::{signal, Daemon};
use support::istats::stat;
use support::{config_file, rewrite, Statsd, WAIT};

fn bounds(carbon: u16, line_bytes: usize, names: usize, connections: usize) -> String {
    format!(
        "port = 0\nmonitor-port = 0\nflush-interval = 1\ngraphite-host = \"127.0.0.1\"\n\
         graphite-port = {carbon}\nquiet = true\nmax-line-bytes = {line_bytes}\n\
         max-names = {names}\ntcp-max-connections = {connections}\n"
    )
}

/// True when the server closed `stream` without reading from it (refused).
fn refused(mut stream: TcpStream) -> bool {
    stream.set_read_timeout(Some(WAIT)).expect("read timeout");
    let mut byte = [0u8; 1];
    matches!(stream.read(&mut byte), Ok(0) | Err(_))
}

#[test]
fn sighup_applies_intake_and_tcp_bounds() {
    let carbon = FakeCarbon::start();
    let (_dir, path) = config_file("statsd.toml", &bounds(carbon.port, 1000, 100, 1));
    let statsd = Daemon::start(&["--config", path.to_str().unwrap()]);
    let mut first = statsd.connect_tcp();
    first.write_all(b"t:1|c\n").expect("first connection");
    statsd.poll_istats(|s| stat(s, "metrics.received") >= 1);
    assert!(refused(statsd.connect_tcp()), "a second connection over 1");

    rewrite(&path, &bounds(carbon.port, 40, 2, 3));
    signal(statsd.child.id(), libc::SIGHUP);
    // In the order the reload says them.
    statsd.wait_stderr("intake limits applied");
    statsd.wait_stderr("TCP limits applied");
    let mut more: Vec<TcpStream> = (0..2).map(|_| statsd.connect_tcp()).collect();
    for stream in &mut more {
        stream
            .write_all(b"t:1|c\n")
            .expect("a connection under the new bound");
    }
    // Over the new line bound at once (UDP): discarded and counted.
    statsd.send_udp(format!("long.{}:1|c", "x".repeat(60)).as_bytes());
    // Each connection's t:1 in whichever interval it fell: 3 in all (a
    // 1 s interval, so the rate is the count).
    let mut seen: Vec<String> = Vec::new();
    let deadline = Instant::now() + WAIT;
    let sum = |lines: &[String], path: &str| -> f64 {
        lines
            .iter()
            .filter_map(|l| {
                let mut parts = l.split(' ');
                (parts.next()? == path).then(|| parts.next()?.parse::<f64>().ok())?
            })
            .sum()
    };
    while !(sum(&seen, "stats.t") == 3.0
        && value_of(&seen, "statsd.metrics.discarded.too_long").unwrap_or(0.0) >= 1.0)
    {
        assert!(
            Instant::now() < deadline,
            "t = 3 and the long line refused: {:?}",
            seen.iter()
                .filter(|l| l.starts_with("stats.t ") || l.contains("too_long"))
                .collect::<Vec<_>>()
        );
        seen.extend(carbon.drain());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !seen.iter().any(|l| l.starts_with("stats.long.")),
        "{seen:?}"
    );
    // A new interval has begun since: two names at most in it.
    carbon.flush_with("statsd.numStats");
    statsd.send_udp(b"n1:1|c\nn2:1|c\nn3:1|c\nn4:1|c");
    let flush = carbon.flush_where("the names refused", |lines| {
        value_of(lines, "statsd.metrics.names_refused") == Some(2.0)
    });
    let kept = ["n1", "n2", "n3", "n4"]
        .iter()
        .filter(|n| value_of(&flush, &format!("stats.{n}")).is_some())
        .count();
    assert_eq!(kept, 2, "{flush:?}");
    drop((first, more));
}

#[test]
fn a_changed_ring_says_it_needs_a_restart_and_keeps_sending() {
    // carbon's ring keys on the host: three loopback addresses.
    let (a, b, c) = (
        FakeCarbon::start_on([127, 0, 0, 1]),
        FakeCarbon::start_on([127, 0, 0, 2]),
        FakeCarbon::start_on([127, 0, 0, 3]),
    );
    let ring = |carbons: &[&FakeCarbon]| {
        let list: Vec<String> = carbons
            .iter()
            .enumerate()
            .map(|(i, carbon)| format!("127.0.0.{}:{}", i + 1, carbon.port))
            .collect();
        format!(
            "port = 0\nmonitor-port = 0\nflush-interval = 0.3\nquiet = true\ngraphite-host = \"{}\"\n",
            list.join(",")
        )
    };
    let (_dir, path) = config_file("statsd.toml", &ring(&[&a, &b]));
    let statsd = Daemon::start(&["--config", path.to_str().unwrap()]);
    rewrite(&path, &ring(&[&a, &b, &c]));
    signal(statsd.child.id(), libc::SIGHUP);
    let line = statsd.wait_stderr("carbon destinations changed");
    assert!(line.contains("needs a restart"), "{line}");
    // Still the two destinations: every name lands on a or b.
    let names: Vec<String> = (0..50).map(|i| format!("ring{i}:1|c")).collect();
    statsd.send_udp(names.join("\n").as_bytes());
    let mut seen = 0;
    let deadline = std::time::Instant::now() + WAIT;
    while seen < 50 && std::time::Instant::now() < deadline {
        seen += [&a, &b]
            .iter()
            .flat_map(|carbon| carbon.drain())
            .filter(|l| l.starts_with("stats.ring"))
            .count();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(seen, 50);
    assert!(!c.drain().iter().any(|l| l.starts_with("stats.ring")));
}

#[test]
fn an_etsy_config_without_graphite_host_sends_nothing_and_says_so() {
    let carbon = FakeCarbon::start();
    let text = "{ port: 0, mgmt_port: 0, flushInterval: 200 }\n";
    let (_dir, path) = config_file("config.js", text);
    // The command line names carbon's port, not its host: the file's
    // missing graphiteHost still means nowhere.
    let port = carbon.port.to_string();
    let statsd = Daemon::start(&[
        "--config",
        path.to_str().unwrap(),
        "--graphite-port",
        &port,
        "--monitor-port",
        "0",
    ]);
    statsd.wait_stderr("graphiteHost is not set: nothing is sent to carbon");
    statsd.send_udp(b"nowhere:1|c");
    statsd.poll_istats(|s| stat(s, "metrics.received") >= 1);
    // Flushes go on (each says so on stdout) and carbon sees no connection.
    for _ in 0..3 {
        statsd.wait_stdout("flushed ");
    }
    assert_eq!(carbon.accepted(), 0, "no connection to carbon");
}

#[test]
fn mgmt_config_shows_the_file_as_last_read() {
    let mgmt = support::free_port();
    let text = |prefix: &str| {
        format!(
            "{{ port: 0, mgmt_port: {mgmt}, mgmt_address: \"127.0.0.1\", flushInterval: 1000,\n  \
             graphiteHost: \"127.0.0.1\", graphitePort: 1, graphite: {{ globalPrefix: \"{prefix}\" }} }}\n"
        )
    };
    let (_dir, path) = config_file("config.js", &text("before_reload"));
    let statsd = Daemon::start(&["--config", path.to_str().unwrap(), "--monitor-port", "0"]);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], mgmt));
    let reply = support::mgmt::ask(addr, "config");
    assert!(reply.contains("before_reload"), "{reply}");
    rewrite(&path, &text("after_reload"));
    signal(statsd.child.id(), libc::SIGHUP);
    statsd.wait_stderr("graphite.globalPrefix");
    let reply = support::mgmt::ask(addr, "config");
    assert!(
        reply.contains("after_reload") && !reply.contains("before_reload"),
        "{reply}"
    );
}
