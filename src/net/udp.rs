//! UDP receive workers: one OS thread, socket and shard each, taking up to
//! [`RECV_BATCH`] datagrams per system call and one shard lock per batch.
//! The Unix datagram socket ([`super::unix`]) is served by the same worker.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::{Protocol, Type};
use tokio_util::sync::CancellationToken;

use super::unix::UnixStats;
use crate::intake::{Intake, ShardCell};
use crate::logging::RateLimited;
use crate::protocol::ParseError;

/// How often a blocked UDP worker wakes up to check for shutdown.
const UDP_POLL: Duration = Duration::from_millis(100);
/// Largest UDP payload (a Unix datagram may be longer: it is cut, and counted).
const MAX_DATAGRAM: usize = 65_536;

/// Binds `count` UDP sockets to one address with SO_REUSEPORT so the kernel
/// spreads datagrams over the workers. Port 0 picks one free port for all.
pub fn bind(
    addr: SocketAddr,
    count: usize,
    recv_buffer: usize,
) -> io::Result<Vec<std::net::UdpSocket>> {
    let mut sockets = Vec::with_capacity(count);
    let mut addr = addr;
    for _ in 0..count.max(1) {
        let socket = super::new_socket(addr, Type::DGRAM, Protocol::UDP)?;
        socket.set_reuse_port(true)?;
        // Beyond net.core.rmem_max only root may ask; try both quietly.
        if socket.set_recv_buffer_size(recv_buffer).is_err() {
            let _ = socket.set_recv_buffer_size(recv_buffer.min(4 << 20));
        }
        // Linux reports twice the size asked (the other half is bookkeeping).
        if socket.recv_buffer_size().unwrap_or(0) / 2 < recv_buffer {
            // SO_RCVBUFFORCE: root (as under runit before chpst) may exceed
            // rmem_max; refused quietly otherwise (start warns).
            let _ = nix::sys::socket::setsockopt(
                &socket,
                nix::sys::socket::sockopt::RcvBufForce,
                &recv_buffer,
            );
        }
        socket.bind(&addr.into())?;
        if addr.port() == 0 {
            if let Some(bound) = socket.local_addr()?.as_socket() {
                addr = bound;
            }
        }
        sockets.push(socket.into());
    }
    Ok(sockets)
}

/// Longest pause after a receive call that emptied the queue (see `IdlePause`).
const IDLE_PAUSE_MAX: Duration = Duration::from_millis(10);
/// Pauses shorter than this are not worth a sleep.
const IDLE_PAUSE_MIN: Duration = Duration::from_micros(20);
/// Kernel bookkeeping per queued datagram beyond its payload (skb truesize:
/// 1280 bytes for a 340-byte datagram on loopback; generous on purpose).
const SKB_OVERHEAD: usize = 2048;
/// Datagrams per second a pause must survive without overflowing half the
/// receive buffer, however quiet the socket was before: about what one
/// sender on loopback can offer.
const BURST_RATE: f64 = 250_000.0;
/// Datagrams taken per `recvmmsg` call.
const RECV_BATCH: usize = 32;

/// Buffers for receiving up to [`RECV_BATCH`] datagrams in one system call;
/// each slot holds the largest possible datagram, so nothing is truncated.
pub struct RecvBatch {
    /// RECV_BATCH slots of MAX_DATAGRAM bytes.
    buffers: Vec<u8>,
    /// Bytes received in each slot by the last call.
    lengths: [usize; RECV_BATCH],
    /// Whether the datagram in each slot was longer than the slot.
    truncated: [bool; RECV_BATCH],
}

impl RecvBatch {
    fn new() -> RecvBatch {
        RecvBatch {
            buffers: vec![0u8; RECV_BATCH * MAX_DATAGRAM],
            lengths: [0; RECV_BATCH],
            truncated: [false; RECV_BATCH],
        }
    }

    /// Receives at least one datagram (blocking up to the socket's read
    /// timeout unless `nonblocking`) and as many more as are queued.
    fn recv(&mut self, socket: &impl AsRawFd, nonblocking: bool) -> io::Result<usize> {
        // SAFETY: iovec and mmsghdr are plain C structs for which all-zero
        // bytes are a valid (empty) value.
        let mut iovecs: [libc::iovec; RECV_BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut headers: [libc::mmsghdr; RECV_BATCH] = unsafe { std::mem::zeroed() };
        // One base pointer for every slot: no slot's pointer is derived from
        // a borrow that a later slot's borrow would invalidate.
        let base = self.buffers.as_mut_ptr();
        for (slot, (iov, header)) in iovecs.iter_mut().zip(headers.iter_mut()).enumerate() {
            iov.iov_base = base.wrapping_add(slot * MAX_DATAGRAM).cast();
            iov.iov_len = MAX_DATAGRAM;
            header.msg_hdr.msg_iov = iov;
            header.msg_hdr.msg_iovlen = 1;
        }
        let flags = if nonblocking {
            libc::MSG_DONTWAIT
        } else {
            libc::MSG_WAITFORONE
        };
        // SAFETY: each header points at one iovec in `iovecs`, and each iovec
        // at its own MAX_DATAGRAM-byte slot of `self.buffers`
        // (RECV_BATCH * MAX_DATAGRAM bytes long); all of them live, unmoved,
        // until the call returns, and the kernel writes at most `iov_len`
        // bytes into each. The fd is open for as long as `socket` is.
        let received = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                headers.as_mut_ptr(),
                RECV_BATCH as libc::c_uint,
                flags,
                std::ptr::null_mut(),
            )
        };
        if received < 0 {
            return Err(io::Error::last_os_error());
        }
        let received = received as usize;
        for (slot, header) in headers.iter().enumerate().take(received) {
            self.lengths[slot] = header.msg_len as usize;
            self.truncated[slot] = header.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
        }
        Ok(received)
    }

    /// The datagram received in `slot` by the last call.
    pub fn datagram(&self, slot: usize) -> &[u8] {
        let start = slot * MAX_DATAGRAM;
        &self.buffers[start..start + self.lengths[slot].min(MAX_DATAGRAM)]
    }

    /// Whether the datagram in `slot` was cut (longer than a slot).
    pub fn truncated(&self, slot: usize) -> bool {
        self.truncated[slot]
    }
}

/// After a receive call that emptied the queue, waits a little so the next
/// call takes many datagrams instead of waking up for each one: most of the
/// CPU per datagram at moderate rates is the wake-up. The arrival rate is
/// measured over the whole last cycle (pause, wait and work), and the wait
/// lets the queue fill at most an eighth of the receive buffer at that rate.
/// It is also capped so that a burst at [`BURST_RATE`] arriving during the
/// pause fills at most half the buffer: with a stock kernel's 208 KiB that is
/// a fraction of a millisecond, so an unprivileged daemon loses nothing to
/// its own pauses. Under full load batches come back full and no pause
/// happens at all.
struct IdlePause {
    /// The socket's receive buffer, as the kernel reports it.
    buffer: usize,
    /// When the last cycle ended (or the worker started).
    since: Instant,
    /// Datagrams received since then.
    datagrams: usize,
    /// Their bytes.
    bytes: usize,
}

impl IdlePause {
    fn new(buffer: usize) -> IdlePause {
        IdlePause {
            buffer,
            since: Instant::now(),
            datagrams: 0,
            bytes: 0,
        }
    }

    fn count(&mut self, datagrams: usize, bytes: usize) {
        self.datagrams += datagrams;
        self.bytes += bytes;
    }

    /// How long to wait after a drain; resets the cycle.
    fn wait(&mut self) -> Duration {
        let elapsed = self.since.elapsed().as_secs_f64().max(1e-6);
        let rate = self.datagrams as f64 / elapsed;
        let per_datagram = (self.bytes / self.datagrams.max(1) + SKB_OVERHEAD) as f64;
        let capacity = self.buffer as f64 / per_datagram;
        let wait = (capacity / 8.0 / rate.max(1.0))
            .min(capacity / 2.0 / BURST_RATE)
            .min(IDLE_PAUSE_MAX.as_secs_f64());
        self.datagrams = 0;
        self.bytes = 0;
        self.since = Instant::now();
        Duration::from_secs_f64(wait)
    }

    fn after_drain(&mut self) {
        let wait = self.wait();
        if wait >= IDLE_PAUSE_MIN {
            std::thread::sleep(wait);
        }
    }
}

/// Runs one receive worker on a UDP socket (or, with `unix` stats, the Unix
/// datagram socket) until `stop`; then drains what the kernel already holds
/// so a shutdown loses nothing that arrived.
pub fn worker<S: AsFd + AsRawFd>(
    socket: S,
    shard: Arc<ShardCell>,
    intake: Arc<Intake>,
    stop: CancellationToken,
    unix: Option<Arc<UnixStats>>,
) {
    let kind = if unix.is_some() { "unix socket" } else { "UDP" };
    let logs = intake.logs.clone();
    receive_loop(socket, kind, &logs.intake, stop, |batch, received| {
        // One lock per batch: the flush only takes it to swap.
        let (bytes, truncated) = shard.with(|shard| {
            let (mut bytes, mut truncated) = (0, 0);
            for slot in 0..received {
                let mut datagram = batch.datagram(slot);
                bytes += datagram.len();
                if batch.truncated(slot) {
                    // The lines before the cut are whole; the cut one is lost.
                    truncated += 1;
                    let end = memchr::memrchr(b'\n', datagram).unwrap_or(0);
                    datagram = &datagram[..end];
                    shard.count_discarded(ParseError::CutOff);
                }
                intake.ingest(shard, datagram);
            }
            (bytes, truncated)
        });
        if let Some(stats) = &unix {
            stats.packets.add(received as u64);
            stats.bytes.add(bytes as u64);
            stats.truncated.add(truncated);
        }
        bytes
    });
}

/// Receives batches of datagrams on `socket` until `stop`, handing each to
/// `handle` (which returns the bytes it took, for the idle pause), then
/// drains what the kernel already holds. Shared by the aggregating worker
/// and the proxy's forwarding worker.
pub fn receive_loop<S: AsFd + AsRawFd>(
    socket: S,
    kind: &str,
    log: &RateLimited,
    stop: CancellationToken,
    mut handle: impl FnMut(&RecvBatch, usize) -> usize,
) {
    if let Err(e) = socket2::SockRef::from(&socket).set_read_timeout(Some(UDP_POLL)) {
        log.error(|| format!("cannot set {kind} read timeout: {e}"));
    }
    let mut batch = RecvBatch::new();
    let mut pause = IdlePause::new(
        socket2::SockRef::from(&socket)
            .recv_buffer_size()
            .unwrap_or(0),
    );
    loop {
        let stopping = stop.is_cancelled();
        match batch.recv(&socket, stopping) {
            Ok(received) => {
                let bytes = handle(&batch, received);
                pause.count(received, bytes);
                if received < RECV_BATCH && !stopping {
                    pause.after_drain();
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if stopping {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                log.error(|| format!("{kind} receive failed: {e}"));
                if stopping {
                    return;
                }
            }
        }
    }
}

/// The kernel's view of the server's UDP sockets, from /proc/net/udp and
/// udp6: drops are summed over the server's own sockets only (matched by
/// inode, not by port: another socket on the port is someone else's), and
/// such foreign sockets on the port are counted, since with SO_REUSEPORT
/// one of the same user would silently take a share of the datagrams.
#[derive(Debug, Clone)]
pub struct KernelView {
    /// `:PORT` as /proc writes it.
    port_hex: String,
    /// The server's sockets.
    inodes: Vec<u64>,
    /// Highest drop count read: the stat never goes down.
    drops: u64,
}

/// One reading of [`KernelView`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelReading {
    /// Datagrams the kernel dropped on the server's sockets, since start.
    pub drops: u64,
    /// Other processes' sockets on the server's port now.
    pub foreign_sockets: u64,
}

impl KernelView {
    /// Watches `sockets`, bound to `port`.
    pub fn new(port: u16, sockets: &[std::net::UdpSocket]) -> KernelView {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::MetadataExt;
        let inodes = sockets
            .iter()
            .filter_map(|s| std::fs::metadata(format!("/proc/self/fd/{}", s.as_raw_fd())).ok())
            .map(|m| m.ino())
            .collect();
        KernelView {
            port_hex: format!(":{port:04X}"),
            inodes,
            drops: 0,
        }
    }

    /// Reads /proc now; None where it is absent.
    pub fn read(&mut self) -> Option<KernelReading> {
        let mut found = false;
        let (mut drops, mut foreign) = (0, 0);
        for path in ["/proc/net/udp", "/proc/net/udp6"] {
            let Ok(text) = std::fs::read_to_string(path) else {
                continue;
            };
            found = true;
            for line in text.lines().skip(1) {
                let fields: Vec<&str> = line.split_whitespace().collect();
                if !fields
                    .get(1)
                    .is_some_and(|local| local.ends_with(&self.port_hex))
                {
                    continue;
                }
                let inode = fields.get(9).and_then(|i| i.parse::<u64>().ok());
                match inode {
                    Some(inode) if self.inodes.contains(&inode) => {
                        drops += fields
                            .last()
                            .and_then(|d| d.parse::<u64>().ok())
                            .unwrap_or(0);
                    }
                    _ => foreign += 1,
                }
            }
        }
        found.then(|| {
            self.drops = self.drops.max(drops);
            KernelReading {
                drops: self.drops,
                foreign_sockets: foreign,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pause measured `ago` after `datagrams` of 340 bytes arrived.
    fn pause_after(buffer: usize, datagrams: usize, ago: Duration) -> Duration {
        let mut pause = IdlePause::new(buffer);
        pause.since = Instant::now() - ago;
        pause.count(datagrams, datagrams * 340);
        pause.wait()
    }

    #[test]
    fn a_quiet_socket_never_pauses_longer_than_a_burst_takes_to_fill_half_the_buffer() {
        // A stock kernel's 208 KiB, as the kernel reports it (doubled).
        let stock = 2 * 212_992;
        // One datagram after a second of silence: the rate says nothing
        // about the burst that may follow, so the burst cap holds.
        let wait = pause_after(stock, 1, Duration::from_secs(1));
        let half_at_burst = stock as f64 / (340 + SKB_OVERHEAD) as f64 / 2.0 / BURST_RATE;
        assert!(wait.as_secs_f64() <= half_at_burst + 1e-9, "{wait:?}");
        assert!(wait < Duration::from_micros(500), "{wait:?}");
    }

    #[test]
    fn a_large_buffer_at_a_moderate_rate_pauses_up_to_the_maximum() {
        // 32 MiB (root's SO_RCVBUFFORCE) at 10k datagrams/s.
        let wait = pause_after(64 << 20, 100, Duration::from_millis(10));
        assert_eq!(wait, IDLE_PAUSE_MAX);
        // Under load (more than an eighth of the buffer per cycle) no pause
        // is due.
        let busy = pause_after(64 << 20, 40_000, Duration::from_micros(100));
        assert!(busy < IDLE_PAUSE_MIN, "{busy:?}");
    }

    #[test]
    fn counts_only_our_sockets_and_sees_foreign_ones() {
        let ours = bind("127.0.0.1:0".parse().unwrap(), 1, 1 << 16).unwrap();
        let port = ours[0].local_addr().unwrap().port();
        let mut view = KernelView::new(port, &ours);
        assert_eq!(view.read().map(|r| r.foreign_sockets), Some(0));
        // Another socket on the same port (another address): not ours.
        let other = std::net::UdpSocket::bind(("127.0.0.2", port));
        if let Ok(_other) = other {
            assert_eq!(view.read().map(|r| r.foreign_sockets), Some(1));
        }
    }
}
