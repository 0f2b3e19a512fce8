//! `--udp-queues`: a worker reads several sockets, the reuseport program
//! spreads each sender over its worker's sockets, and the worker applies
//! the datagrams in arrival order (SO_TIMESTAMPNS), so a gauge set many
//! times by one sender ends at the value sent last, as from one socket.

mod support;

use std::net::UdpSocket;
use std::time::Instant;

use statsd::config::Config;
use statsd::net::Listeners;
use support::carbon::FakeCarbon;
use support::istats::stat;
use support::to_carbon::{server, wait_flushed};
use support::{Statsd, WAIT};

/// Binds as `flags` ask, sends `datagrams` datagrams from each of `senders`
/// sockets, and returns how many datagrams each bound socket holds, worker
/// by worker.
fn per_socket(flags: &[&str], senders: usize, datagrams: usize) -> Vec<Vec<usize>> {
    let args = ["statsd", "-p", "0"];
    let config = Config::parse_from(args.iter().chain(flags))
        .unwrap_or_else(|e| panic!("flags refused: {e:?}"));
    let listeners = Listeners::bind(&config.bind).expect("bind");
    let port = listeners.metrics_addr().expect("metrics address").port();
    let target = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    for _ in 0..senders {
        let sender = UdpSocket::bind("127.0.0.1:0").expect("bind a sender");
        for i in 0..datagrams {
            sender
                .send_to(format!("q.{i}:1|c").as_bytes(), target)
                .expect("send");
        }
    }
    for socket in &listeners.udp {
        socket.set_nonblocking(true).expect("nonblocking");
    }
    // Loopback delivery is synchronous: everything sent is queued by now.
    let mut counts = vec![0; listeners.udp.len()];
    let deadline = Instant::now() + WAIT;
    let mut buf = [0u8; 256];
    while counts.iter().sum::<usize>() < senders * datagrams && Instant::now() < deadline {
        for (socket, count) in listeners.udp.iter().zip(&mut counts) {
            while socket.recv(&mut buf).is_ok() {
                *count += 1;
            }
        }
    }
    counts
        .chunks(listeners.udp_queues)
        .map(<[usize]>::to_vec)
        .collect()
}

const LOOPBACK_2X4: [&str; 6] = ["-n", "127.0.0.1", "--workers", "2", "--udp-queues", "4"];

#[test]
fn one_sender_fills_every_socket_of_one_worker() {
    let workers = per_socket(&LOOPBACK_2X4, 1, 2000);
    assert_eq!(workers.len(), 2, "{workers:?}");
    let total: usize = workers.iter().flatten().sum();
    assert_eq!(total, 2000, "lost: {workers:?}");
    let busy: Vec<&Vec<usize>> = workers
        .iter()
        .filter(|w| w.iter().sum::<usize>() > 0)
        .collect();
    assert_eq!(busy.len(), 1, "one sender, one worker: {workers:?}");
    // A random socket of the worker per datagram: about 500 each (sd ~19).
    assert!(busy[0].iter().all(|n| *n > 300), "uneven: {workers:?}");
}

#[test]
fn many_senders_reach_every_worker() {
    let flags = ["-n", "127.0.0.1", "--workers", "2", "--udp-queues", "2"];
    let workers = per_socket(&flags, 32, 20);
    let per_worker: Vec<usize> = workers.iter().map(|w| w.iter().sum()).collect();
    assert_eq!(per_worker.iter().sum::<usize>(), 640, "lost: {workers:?}");
    // 32 senders hashed over 2 workers: both get some (all on one: 2^-31).
    assert!(per_worker.iter().all(|n| *n > 0), "{workers:?}");
}

#[test]
fn one_socket_per_worker_needs_no_program() {
    let flags = ["-n", "127.0.0.1", "--workers", "2", "--udp-queues", "1"];
    let workers = per_socket(&flags, 1, 100);
    assert!(workers.iter().all(|w| w.len() == 1), "{workers:?}");
    assert_eq!(workers.iter().flatten().sum::<usize>(), 100);
}

#[test]
fn the_default_dual_stack_socket_places_ipv4_senders_alike() {
    // No -n: `[::]` (IPv4 arrives with an IPv4 header, which the program
    // reads), or `0.0.0.0` where IPv6 is off.
    let workers = per_socket(&["--workers", "2", "--udp-queues", "4"], 1, 2000);
    let busy: Vec<&Vec<usize>> = workers
        .iter()
        .filter(|w| w.iter().sum::<usize>() > 0)
        .collect();
    assert_eq!(busy.len(), 1, "one sender, one worker: {workers:?}");
    assert_eq!(busy[0].iter().sum::<usize>(), 2000, "lost: {workers:?}");
    assert!(busy[0].iter().all(|n| *n > 300), "uneven: {workers:?}");
}

#[test]
fn gauges_end_at_the_value_sent_last() {
    const NAMES: usize = 50;
    const DATAGRAMS: usize = 3000;
    let carbon = FakeCarbon::start();
    let statsd = server(
        carbon.port,
        "1",
        &[
            "--workers",
            "1",
            "--udp-queues",
            "4",
            "--udp-buffer",
            "1048576",
        ],
    );
    let sender = UdpSocket::bind("127.0.0.1:0").expect("bind a sender");
    // Datagram i sets gauge i % NAMES to i: each name's last value is one of
    // the last NAMES datagrams, which land on the 4 sockets at random.
    for i in 0..DATAGRAMS {
        let datagram = format!("ordered.g{}:{i}|g\nordered.sent:1|c", i % NAMES);
        sender
            .send_to(datagram.as_bytes(), statsd.metrics_addr())
            .expect("send");
        if i % 500 == 499 {
            // Bounded backlog, so a slow machine does not drop datagrams.
            statsd.poll_istats(|s| stat(s, "packets.received") > i as u64 / 2);
        }
    }
    wait_flushed(&statsd, 2 * DATAGRAMS as u64);
    statsd.send_udp(b"ordered.marker:1|c");
    let lines = carbon.through_flush_with("stats.ordered.marker ");
    let stats = statsd.istats();
    assert_eq!(
        stat(&stats, "udp.kernel_drops"),
        0,
        "a drop would change the last values"
    );
    assert_eq!(stat(&stats, "packets.received"), DATAGRAMS as u64 + 1);
    for name in 0..NAMES {
        let last = (0..DATAGRAMS).rev().find(|i| i % NAMES == name).unwrap();
        let path = format!("stats.ordered.g{name} ");
        // The flush that carried the gauge's last update (the sequence may
        // span two intervals).
        let flushed = lines.iter().rev().find(|l| l.starts_with(&path));
        let value = flushed.and_then(|l| l.split(' ').nth(1)).map(str::to_owned);
        assert_eq!(
            value,
            Some(last.to_string()),
            "gauge g{name}: {:?}",
            &lines[..lines.len().min(8)]
        );
    }
}

#[test]
fn sigterm_applies_every_datagram_held_or_queued() {
    // A long interval: only the final flush carries the counts, so every
    // datagram queued on the 4 sockets, or held for ordering, must be taken
    // in after SIGTERM.
    let carbon = FakeCarbon::start();
    let mut daemon = support::to_carbon::daemon(
        carbon.port,
        "3600",
        &["-n", "127.0.0.1", "--workers", "1", "--udp-queues", "4"],
    );
    let sender = UdpSocket::bind("127.0.0.1:0").expect("bind a sender");
    for i in 0..400 {
        let datagram = format!("drained:1|c\ndrained.g:{i}|g");
        sender
            .send_to(datagram.as_bytes(), daemon.metrics_addr())
            .expect("send");
    }
    assert_eq!(daemon.terminate(), 0);
    let flush = carbon.flush_with("stats.drained ");
    let value = |path: &str| {
        flush
            .iter()
            .find_map(|l| {
                l.strip_prefix(path)
                    .map(|rest| rest.split(' ').next().map(str::to_owned))
            })
            .flatten()
    };
    // 400 in an interval of 3600 s, per second.
    assert_eq!(value("stats.drained "), Some((400.0 / 3600.0).to_string()));
    assert_eq!(value("stats.drained.g "), Some("399".to_string()));
}
