//! Etsy's management console: its bounds (connections, line length, idle
//! time, each counted in `istats`), its flags, `stats` and `config` once
//! carbon has been published to, and Etsy's own `proxy.js` taking a node
//! out of its ring when our `health` says down.

mod support;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};

use statsd::config::Config;
use support::carbon::FakeCarbon;
use support::istats::stat;
use support::mgmt::{ask, connect, console_with, read_rest, read_until, try_ask, EtsyProgram};
use support::to_carbon;
use support::{free_port, wait_for, Statsd, WAIT};

#[test]
fn connections_beyond_the_bound_are_refused_with_one_line() {
    let server = console_with(&["--mgmt-max-connections", "2"]);
    let mut held: Vec<TcpStream> = (0..2).map(|_| connect(server.mgmt_addr())).collect();
    for stream in &mut held {
        stream.write_all(b"health\n").unwrap();
        assert_eq!(read_until(stream, "\n"), "health: up\n");
    }
    let mut extra = connect(server.mgmt_addr());
    assert_eq!(read_rest(&mut extra), "ERROR too many mgmt connections\n");
    server.poll_istats(|s| stat(s, "mgmt.connections.refused") == 1);
    // A slot freed is a slot to use.
    held.pop();
    let reply = wait_for(
        WAIT,
        "a freed slot to serve a new connection",
        || {
            try_ask(server.mgmt_addr(), "health")
                .ok()
                .filter(|r| r == "health: up\n")
        },
        || "still refused".into(),
    );
    assert_eq!(reply, "health: up\n");
    server.stop();
}

#[test]
fn a_line_over_the_bound_closes_the_connection() {
    let server = console_with(&["--mgmt-max-line-bytes", "64"]);
    let mut stream = connect(server.mgmt_addr());
    stream.write_all(&[b'x'; 100]).unwrap();
    assert_eq!(read_rest(&mut stream), "ERROR line too long\n");
    let mut stream = connect(server.mgmt_addr());
    stream
        .write_all(format!("health\n{}\n", "y".repeat(80)).as_bytes())
        .unwrap();
    assert_eq!(read_rest(&mut stream), "health: up\nERROR line too long\n");
    server.poll_istats(|s| stat(s, "mgmt.lines.too_long") == 2);
    // A line at the bound is a command like any other.
    let padded = format!("health{}", " ".repeat(58));
    assert_eq!(padded.len(), 64);
    assert_eq!(ask(server.mgmt_addr(), &padded), "health: up\n");
    server.stop();
}

#[test]
fn an_idle_connection_is_closed_and_a_partial_line_answered() {
    let server = console_with(&["--mgmt-idle-timeout", "0.3"]);
    let mut idle = connect(server.mgmt_addr());
    assert_eq!(read_rest(&mut idle), "", "closed without a word");
    server.poll_istats(|s| stat(s, "mgmt.connections.idle_closed") == 1);
    // A command without its newline is answered once the client pauses,
    // as Etsy answers each read.
    let mut partial = connect(server.mgmt_addr());
    partial.write_all(b"health").unwrap();
    assert_eq!(read_until(&mut partial, "\n"), "health: up\n");
    partial.write_all(b"quit\n").unwrap();
    assert_eq!(read_rest(&mut partial), "");
    server.stop();
}

#[test]
fn mgmt_flags_are_checked_and_off_by_default() {
    for bad in [
        &["--mgmt-max-connections", "0"][..],
        &["--mgmt-idle-timeout", "0"],
        &["--mgmt-max-line-bytes", "1"],
    ] {
        let args = ["statsd"].into_iter().chain(bad.iter().copied());
        assert!(Config::parse_from(args).is_err(), "{bad:?} accepted");
    }
    let config = Config::parse_from(["statsd"]).unwrap();
    assert_eq!(config.bind.mgmt, None, "off on the original's command line");
    let cli = <statsd::config::Cli as clap::Parser>::parse_from(["statsd"]);
    assert_eq!(
        cli.mgmt.port(true),
        Some(8126),
        "Etsy's default under --etsy"
    );
}

/// The proxy's `status`: its uptime and the nodes in its ring.
fn proxy_status(proxy_mgmt: SocketAddr) -> String {
    ask(proxy_mgmt, "status")
}

#[test]
fn etsy_proxy_takes_us_out_of_its_ring_when_health_is_down() {
    let ours = console_with(&[]);
    let node = format!("127.0.0.1:{}", ours.metrics_addr().port());
    let (port, mgmt) = (free_port(), free_port());
    let proxy_mgmt = SocketAddr::from(([127, 0, 0, 1], mgmt));
    let config = serde_json::json!({
        "nodes": [{
            "host": "127.0.0.1",
            "port": ours.metrics_addr().port(),
            "adminport": ours.mgmt_addr().port(),
        }],
        "host": "127.0.0.1",
        "port": port,
        "mgmt_port": mgmt,
        "mgmt_address": "127.0.0.1",
        "checkInterval": 100,
    });
    let _proxy = EtsyProgram::start("proxy.js", &config, proxy_mgmt);
    let in_ring = |want: bool| {
        wait_for(
            WAIT,
            if want {
                "the proxy to put us in its ring"
            } else {
                "the proxy to take us out"
            },
            || {
                let status = proxy_status(proxy_mgmt);
                (status.contains(&node) == want).then_some(status)
            },
            || proxy_status(proxy_mgmt),
        )
    };
    in_ring(true);
    assert_eq!(ask(ours.mgmt_addr(), "health down"), "health: down\n");
    in_ring(false);
    assert_eq!(ask(ours.mgmt_addr(), "health up"), "health: up\n");
    in_ring(true);
    ours.stop();
}

/// `stats`' value of `key` (a number of seconds or a count).
fn stats_value(reply: &str, key: &str) -> i64 {
    reply
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(": ")?.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {reply:?}"))
}

#[test]
fn stats_and_config_follow_the_publishes() {
    let carbon = FakeCarbon::start();
    let server = to_carbon::server(carbon.port, "1", &["--mgmt-port", "0"]);
    server.send_udp(b"seen:1|c\nnot a line");
    to_carbon::wait_flushed(&server, 1);
    let reply = wait_for(
        WAIT,
        "a publish to show in stats",
        || {
            Some(ask(server.mgmt_addr(), "stats"))
                .filter(|r| stats_value(r, "graphite.flush_length") > 0)
        },
        || ask(server.mgmt_addr(), "stats"),
    );
    // Seconds ago, as Etsy writes them: all of this happened just now.
    assert!(
        stats_value(&reply, "messages.last_msg_seen") <= 3,
        "{reply}"
    );
    assert!(stats_value(&reply, "graphite.last_flush") <= 3, "{reply}");
    assert_eq!(stats_value(&reply, "messages.bad_lines_seen"), 1, "{reply}");
    // Etsy's config object once it has flushed: what stats.js adds at start,
    // then the delete* defaults of the first flush (no Etsy file here).
    assert_eq!(
        ask(server.mgmt_addr(), "config"),
        "\ngaugesMaxTTL: 1\ndeleteIdleStats: false\nflushInterval: 1000\n\
         deleteCounters: false\ndeleteTimers: false\ndeleteSets: false\ndeleteGauges: false\n"
    );
    server.stop();
}
