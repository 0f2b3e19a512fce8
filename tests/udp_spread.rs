//! `--udp-spread`: one sender's datagrams reach every UDP worker (each
//! worker's socket, read on its own), and through the whole server nothing
//! is lost at a moderate rate. Without the flag the kernel's reuseport hash
//! sends one sender to one socket, which is why the flag exists.

mod support;

use std::net::UdpSocket;
use std::time::Instant;

use statsd::config::Config;
use statsd::net::Listeners;
use support::carbon::FakeCarbon;
use support::istats::stat;
use support::to_carbon::{server, wait_flushed};
use support::{Statsd, WAIT};

const WORKERS: usize = 4;
const DATAGRAMS: usize = 4000;

/// Binds the server's sockets as `flags` ask, sends DATAGRAMS datagrams
/// from one socket, and returns how many each worker's socket holds.
fn per_worker(flags: &[&str]) -> Vec<usize> {
    let args = ["statsd", "-p", "0", "-n", "127.0.0.1", "--workers", "4"];
    let config = Config::parse_from(args.iter().chain(flags))
        .unwrap_or_else(|e| panic!("flags refused: {e:?}"));
    let listeners = Listeners::bind(&config.bind).expect("bind");
    assert_eq!(listeners.udp.len(), WORKERS * listeners.udp_queues);
    let target = listeners.metrics_addr().expect("metrics address");
    let sender = UdpSocket::bind("127.0.0.1:0").expect("bind a sender");
    for i in 0..DATAGRAMS {
        sender
            .send_to(format!("spread.{i}:1|c").as_bytes(), target)
            .expect("send");
    }
    let deadline = Instant::now() + WAIT;
    let mut counts = vec![0; listeners.udp.len()];
    let mut buf = [0u8; 256];
    for socket in &listeners.udp {
        socket.set_nonblocking(true).expect("nonblocking");
    }
    // Loopback delivery is synchronous, so everything sent is queued by now;
    // read until every socket is empty (bounded).
    while counts.iter().sum::<usize>() < DATAGRAMS && Instant::now() < deadline {
        for (socket, count) in listeners.udp.iter().zip(&mut counts) {
            while socket.recv(&mut buf).is_ok() {
                *count += 1;
            }
        }
    }
    // Worker by worker (each may read several sockets, `--udp-queues`).
    counts
        .chunks(listeners.udp_queues)
        .map(|worker| worker.iter().sum())
        .collect()
}

#[test]
fn one_sender_reaches_every_worker() {
    let counts = per_worker(&["--udp-spread"]);
    assert_eq!(counts.iter().sum::<usize>(), DATAGRAMS, "lost: {counts:?}");
    // A random pick per datagram: each of 4 gets about 1000 (sd ~27).
    for count in &counts {
        assert!(*count > DATAGRAMS / WORKERS / 2, "uneven: {counts:?}");
    }
}

#[test]
fn without_spread_one_sender_reaches_one_worker() {
    let counts = per_worker(&[]);
    assert_eq!(counts.iter().sum::<usize>(), DATAGRAMS, "lost: {counts:?}");
    assert_eq!(
        counts.iter().filter(|c| **c > 0).count(),
        1,
        "the reuseport hash keeps one flow on one socket: {counts:?}"
    );
}

#[test]
fn spread_server_loses_nothing_from_one_sender() {
    let carbon = FakeCarbon::start();
    let statsd = server(carbon.port, "1", &["--workers", "2", "--udp-spread"]);
    let sender = UdpSocket::bind("127.0.0.1:0").expect("bind a sender");
    let datagram: String = (0..20).map(|_| "spread.hits:1|c\n").collect();
    let batches = 500;
    for _ in 0..batches {
        sender
            .send_to(datagram.as_bytes(), statsd.metrics_addr())
            .expect("send");
    }
    wait_flushed(&statsd, batches * 20);
    statsd.send_udp(b"spread.marker:1|c");
    let lines = carbon.through_flush_with("stats.spread.marker ");
    let total: f64 = lines
        .iter()
        .filter_map(|l| l.strip_prefix("stats.spread.hits "))
        .map(|rest| rest.split(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(total, (batches * 20) as f64, "counted at carbon");
    let stats = statsd.istats();
    assert_eq!(stat(&stats, "udp.kernel_drops"), 0);
    assert_eq!(stat(&stats, "packets.received"), batches + 1);
}
