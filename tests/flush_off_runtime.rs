//! The flush (merge and render) runs on a thread of its own, never on the
//! runtime: while a flush of a million names is being made, TCP intake and
//! `istats` keep answering. In process, against a fake carbon.

mod support;

use std::io::Write;

use serde_json::Value;
use support::carbon::FakeCarbon;
use support::istats::stat;
use support::server::Server;
use support::Statsd;

/// Distinct names in the big flush.
const NAMES: usize = 1_000_000;
/// Rounds tried: a round misses when its flush ends before the probe does,
/// or comes before the load is in.
const ROUNDS: usize = 3;

fn running(stats: &Value) -> bool {
    stat(stats, "flush.running") == 1
}

/// Sends `NAMES` distinct counters over one TCP connection.
fn load(server: &Server, round: usize) {
    let mut lines = Vec::with_capacity(NAMES * 20);
    for i in 0..NAMES {
        writeln!(lines, "big.r{round}.n{i}:1|c").expect("format a line");
    }
    let mut tcp = server.connect_tcp();
    tcp.write_all(&lines).expect("send the names");
}

#[test]
fn tcp_intake_and_istats_answer_while_a_million_names_flush() {
    let carbon = FakeCarbon::start();
    let port = carbon.port.to_string();
    let server = Server::start(&[
        "-p",
        "0",
        "-q",
        "--graphite-host",
        "127.0.0.1",
        "--graphite-port",
        &port,
        "--flush-interval",
        "15",
        "--max-names",
        "0",
    ]);
    let mut seen = Vec::new();
    for round in 0..ROUNDS {
        load(&server, round);
        // Every name is in this interval, then its flush starts: istats
        // answered while it runs.
        let loaded = server.poll_istats(|s| stat(s, "pending_stats") >= NAMES as u64 || running(s));
        if running(&loaded) {
            seen.push(format!("the flush came before the load was in: {loaded}"));
            server.poll_istats(|s| !running(s));
            continue;
        }
        let during = server.poll_istats(running);
        // A new TCP connection and a line, taken in while it still runs.
        server.send_tcp(b"probe:1|c\n");
        let after = server.poll_istats(|s| {
            stat(s, "tcp.connections.accepted") > stat(&during, "tcp.connections.accepted")
                && stat(s, "pending_stats") > stat(&during, "pending_stats")
        });
        if running(&after) {
            // Then the flush ends, and it was a big one.
            let done = server.poll_istats(|s| !running(s) && stat(s, "render.total") > 0);
            assert!(
                stat(&done, "render.counters.count") >= NAMES as u64,
                "the flush that ran was small: {done}"
            );
            return;
        }
        seen.push(after.to_string());
    }
    panic!("no flush outlasted the probe in {ROUNDS} rounds: {seen:#?}");
}
