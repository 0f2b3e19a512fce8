//! Waiting until the kernel stamps datagrams on arrival.
//!
//! The first socket on a machine to ask for SO_TIMESTAMPNS turns arrival
//! stamping on, but the kernel does so later, from a work queue; until
//! then a datagram is stamped when it is read. Such stamps follow the order
//! the worker reads its sockets in, not the order the datagrams came, so
//! [`super::queues`] could apply a sender's gauges out of order. A daemon
//! that reads several sockets per worker therefore waits for real arrival
//! stamps before it takes anything in.

use std::net::{Ipv4Addr, UdpSocket};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::udp::RecvBatch;

/// Time between sending a probe and reading it: a stamp taken at the read
/// is at least this late.
const PROBE_WAIT: Duration = Duration::from_millis(2);

/// A probe's stamp at most this long after its send is an arrival stamp.
const ARRIVAL_SLACK: Duration = Duration::from_millis(1);

/// Probes (on loopback) until datagrams are stamped on arrival, for at most
/// `limit`. Returns whether they are; also true when loopback cannot be used
/// to tell, since nothing better can be done then.
pub fn await_arrival_stamps(limit: Duration) -> bool {
    let Ok((probe, sender)) = probe_pair() else {
        return true;
    };
    let mut batch = RecvBatch::new(true);
    let deadline = Instant::now() + limit;
    loop {
        match probe_once(&probe, &sender, &mut batch) {
            Some(true) | None => return true,
            Some(false) if Instant::now() >= deadline => return false,
            Some(false) => {}
        }
    }
}

/// A receiving socket that stamps, and a socket to send to it from.
fn probe_pair() -> std::io::Result<(UdpSocket, UdpSocket)> {
    let probe = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    nix::sys::socket::setsockopt(&probe, nix::sys::socket::sockopt::ReceiveTimestampns, &true)?;
    probe.set_read_timeout(Some(Duration::from_millis(100)))?;
    let sender = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    sender.connect(probe.local_addr()?)?;
    Ok((probe, sender))
}

/// Sends one probe and reads it back: whether its stamp is its arrival's,
/// or None when that cannot be told.
fn probe_once(probe: &UdpSocket, sender: &UdpSocket, batch: &mut RecvBatch) -> Option<bool> {
    let sent = since_epoch(SystemTime::now())?;
    sender.send(b"p").ok()?;
    std::thread::sleep(PROBE_WAIT);
    batch.recv(probe, false).ok()?;
    let (stamp, _, _) = batch.received().stamped().last()?;
    if stamp == 0 {
        return None;
    }
    Some(Duration::from_nanos(stamp.saturating_sub(sent)) < ARRIVAL_SLACK)
}

fn since_epoch(at: SystemTime) -> Option<u64> {
    u64::try_from(at.duration_since(UNIX_EPOCH).ok()?.as_nanos()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_come_on_arrival_once_a_socket_asks() {
        assert!(await_arrival_stamps(Duration::from_secs(5)));
        let (probe, sender) = probe_pair().expect("loopback sockets");
        let mut batch = RecvBatch::new(true);
        assert_eq!(probe_once(&probe, &sender, &mut batch), Some(true));
    }
}
