//! UDP receive workers: one OS thread, socket and shard each, taking up to
//! [`RECV_BATCH`] datagrams per system call and one shard lock per batch.
//! The Unix datagram socket ([`super::unix`]) is served by the same worker.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;
use std::time::Duration;

use socket2::{Protocol, Type};
use tokio_util::sync::CancellationToken;

use super::idle::IdlePause;
use super::unix::UnixStats;
use crate::intake::{Intake, ShardCell};
use crate::logging::RateLimited;
use crate::protocol::ParseError;

/// How often a blocked UDP worker wakes up to check for shutdown.
pub(crate) const UDP_POLL: Duration = Duration::from_millis(100);
/// Largest UDP payload (a Unix datagram may be longer: it is cut, and counted).
const MAX_DATAGRAM: usize = 65_536;

/// A worker's total receive buffer (as granted, not doubled) at which one
/// socket is enough: several below it (`--udp-queues` unset).
const QUEUES_BUFFER: usize = 2 << 20;
/// Most sockets per worker picked by [`auto_queues`].
const MAX_AUTO_QUEUES: usize = 8;

/// Sockets per worker when `--udp-queues` is not given: enough that their
/// buffers together reach [`QUEUES_BUFFER`], as far as the kernel grants
/// `recv_buffer` to this process (root may force any size; others get at
/// most `net.core.rmem_max`, 208 KiB on a stock kernel, which makes 8).
pub fn auto_queues(recv_buffer: usize) -> usize {
    let granted = socket2::Socket::new(socket2::Domain::IPV4, Type::DGRAM, None)
        .map(|socket| {
            ask_buffer(&socket, recv_buffer);
            socket.recv_buffer_size().unwrap_or(0) / 2
        })
        .unwrap_or(0)
        .max(1);
    QUEUES_BUFFER.div_ceil(granted).clamp(1, MAX_AUTO_QUEUES)
}

/// Asks for `recv_buffer` bytes of receive buffer, as far as allowed.
fn ask_buffer(socket: &socket2::Socket, recv_buffer: usize) {
    // Beyond net.core.rmem_max only root may ask; try both quietly.
    if socket.set_recv_buffer_size(recv_buffer).is_err() {
        let _ = socket.set_recv_buffer_size(recv_buffer.min(4 << 20));
    }
    // Linux reports twice the size asked (the other half is bookkeeping).
    if socket.recv_buffer_size().unwrap_or(0) / 2 < recv_buffer {
        // SO_RCVBUFFORCE: root (as under runit before chpst) may exceed
        // rmem_max; refused quietly otherwise (start warns).
        let _ = nix::sys::socket::setsockopt(
            socket,
            nix::sys::socket::sockopt::RcvBufForce,
            &recv_buffer,
        );
    }
}

/// Binds `count` UDP sockets to one address with SO_REUSEPORT, worker by
/// worker, `queues` each (the group's socket index is the bind order, which
/// the reuseport program of [`super::spread`] relies on). With several
/// queues the sockets stamp each datagram's arrival (SO_TIMESTAMPNS) so a
/// worker can take its sockets' datagrams in arrival order
/// ([`super::queues`]). Port 0 picks one free port for all.
pub fn bind(
    addr: SocketAddr,
    count: usize,
    queues: usize,
    recv_buffer: usize,
) -> io::Result<Vec<std::net::UdpSocket>> {
    let mut sockets = Vec::with_capacity(count);
    let mut addr = addr;
    for _ in 0..count.max(1) {
        let socket = super::new_socket(addr, Type::DGRAM, Protocol::UDP)?;
        socket.set_reuse_port(true)?;
        ask_buffer(&socket, recv_buffer);
        if queues > 1 {
            nix::sys::socket::setsockopt(
                &socket,
                nix::sys::socket::sockopt::ReceiveTimestampns,
                &true,
            )
            .map_err(|e| {
                io::Error::new(io::Error::from(e).kind(), format!("SO_TIMESTAMPNS: {e}"))
            })?;
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

/// The receive buffer the kernel granted `socket`, as it reports it (twice
/// the usable size).
pub fn granted_buffer(socket: &impl AsFd) -> usize {
    socket2::SockRef::from(socket)
        .recv_buffer_size()
        .unwrap_or(0)
}

/// Datagrams taken per `recvmmsg` call.
pub(crate) const RECV_BATCH: usize = 32;

/// Control-message space per datagram: one SCM_TIMESTAMPNS (a cmsghdr and
/// a timespec: 32 bytes) with room to spare, in u64s for its alignment.
const CONTROL_WORDS: usize = 8;

/// Where one received datagram lies in a buffer, and what the kernel said
/// of it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Span {
    /// Arrival (nanoseconds since the epoch) when the socket stamps; else 0.
    pub stamp: u64,
    /// First byte in the buffer.
    pub start: usize,
    /// Bytes received.
    pub len: usize,
    /// Whether the datagram was longer than its slot (cut).
    pub truncated: bool,
}

/// Datagrams taken from the kernel, in the order to ingest them.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    bytes: &'a [u8],
    spans: &'a [Span],
}

impl<'a> Received<'a> {
    /// The datagrams at `spans` of `bytes`.
    pub fn new(bytes: &'a [u8], spans: &'a [Span]) -> Received<'a> {
        Received { bytes, spans }
    }

    /// How many datagrams.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Each datagram, and whether it was cut.
    pub fn iter(&self) -> impl Iterator<Item = (&'a [u8], bool)> + 'a {
        self.stamped().map(|(_, datagram, cut)| (datagram, cut))
    }

    /// Each datagram with its arrival stamp (0 unstamped), and whether it
    /// was cut.
    pub fn stamped(&self) -> impl Iterator<Item = (u64, &'a [u8], bool)> + 'a {
        let bytes = self.bytes;
        self.spans.iter().map(move |span| {
            (
                span.stamp,
                &bytes[span.start..span.start + span.len],
                span.truncated,
            )
        })
    }
}

/// Buffers for receiving up to [`RECV_BATCH`] datagrams in one system call;
/// each slot holds the largest possible datagram, so nothing is truncated.
pub struct RecvBatch {
    /// RECV_BATCH slots of MAX_DATAGRAM bytes.
    buffers: Vec<u8>,
    /// The datagrams of the last call.
    spans: [Span; RECV_BATCH],
    /// How many the last call took.
    received: usize,
    /// Control messages of each slot, when the socket stamps arrivals.
    control: Option<Box<[[u64; CONTROL_WORDS]; RECV_BATCH]>>,
}

impl RecvBatch {
    /// Buffers for a socket that stamps arrivals (`stamps`) or not.
    pub fn new(stamps: bool) -> RecvBatch {
        RecvBatch {
            buffers: vec![0u8; RECV_BATCH * MAX_DATAGRAM],
            spans: [Span::default(); RECV_BATCH],
            received: 0,
            control: stamps.then(|| Box::new([[0u64; CONTROL_WORDS]; RECV_BATCH])),
        }
    }

    /// Receives at least one datagram (blocking up to the socket's read
    /// timeout unless `nonblocking`) and as many more as are queued.
    pub fn recv(&mut self, socket: &impl AsRawFd, nonblocking: bool) -> io::Result<usize> {
        self.received = 0;
        // SAFETY: iovec and mmsghdr are plain C structs for which all-zero
        // bytes are a valid (empty) value.
        let mut iovecs: [libc::iovec; RECV_BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut headers: [libc::mmsghdr; RECV_BATCH] = unsafe { std::mem::zeroed() };
        // One base pointer for every slot: no slot's pointer is derived from
        // a borrow that a later slot's borrow would invalidate.
        let base = self.buffers.as_mut_ptr();
        let mut control = self.control.as_deref_mut().map(|c| c.iter_mut());
        for (slot, (iov, header)) in iovecs.iter_mut().zip(headers.iter_mut()).enumerate() {
            iov.iov_base = base.wrapping_add(slot * MAX_DATAGRAM).cast();
            iov.iov_len = MAX_DATAGRAM;
            header.msg_hdr.msg_iov = iov;
            header.msg_hdr.msg_iovlen = 1;
            if let Some(space) = control.as_mut().and_then(|c| c.next()) {
                header.msg_hdr.msg_control = space.as_mut_ptr().cast();
                header.msg_hdr.msg_controllen = std::mem::size_of_val(space);
            }
        }
        let flags = if nonblocking {
            libc::MSG_DONTWAIT
        } else {
            libc::MSG_WAITFORONE
        };
        // SAFETY: each header points at one iovec in `iovecs`, and each iovec
        // at its own MAX_DATAGRAM-byte slot of `self.buffers`
        // (RECV_BATCH * MAX_DATAGRAM bytes long); a header's control pointer,
        // when set, at its own slot of `self.control` with that slot's
        // length; all of them live, unmoved, until the call returns, and the
        // kernel writes at most `iov_len` (and `msg_controllen`) bytes into
        // each. The fd is open for as long as `socket` is.
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
        let stamps = self.control.is_some();
        for (slot, header) in headers.iter().enumerate().take(received) {
            self.spans[slot] = Span {
                stamp: if stamps { arrival(&header.msg_hdr) } else { 0 },
                start: slot * MAX_DATAGRAM,
                len: (header.msg_len as usize).min(MAX_DATAGRAM),
                truncated: header.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
            };
        }
        self.received = received;
        Ok(received)
    }

    /// The datagrams of the last call, in the order received.
    pub fn received(&self) -> Received<'_> {
        Received::new(&self.buffers, &self.spans[..self.received])
    }
}

/// The SCM_TIMESTAMPNS of a received message, in nanoseconds since the
/// epoch; 0 when it carries none.
fn arrival(header: &libc::msghdr) -> u64 {
    // SAFETY: `header` was filled by recvmmsg: its control pointer and the
    // length the kernel wrote back describe initialised bytes of our
    // control slot (or none), which is what the CMSG macros walk; the data
    // of a SCM_TIMESTAMPNS message is a timespec, read unaligned.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(header);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS
            {
                let at: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                return (at.tv_sec as u64)
                    .saturating_mul(1_000_000_000)
                    .saturating_add(at.tv_nsec as u64);
            }
            cmsg = libc::CMSG_NXTHDR(header, cmsg);
        }
    }
    0
}

/// Runs one receive worker on its UDP sockets (or, with `unix` stats, the
/// Unix datagram socket) until `stop`; then drains what the kernel already
/// holds so a shutdown loses nothing that arrived. Several sockets are read
/// as one queue, in arrival order ([`super::queues`]).
pub fn worker<S: AsFd + AsRawFd>(
    sockets: Vec<S>,
    shard: Arc<ShardCell>,
    intake: Arc<Intake>,
    stop: CancellationToken,
    unix: Option<Arc<UnixStats>>,
) {
    let kind = if unix.is_some() { "unix socket" } else { "UDP" };
    let logs = intake.logs.clone();
    let handle = |received: Received<'_>| {
        // One lock per batch: the flush only takes it to swap.
        let (datagrams, bytes, truncated) = shard.with(|shard| {
            let (mut datagrams, mut bytes, mut truncated) = (0, 0, 0);
            let mut values = Vec::with_capacity(4);
            for (mut datagram, cut) in received.iter() {
                datagrams += 1;
                bytes += datagram.len();
                if cut {
                    // The lines before the cut are whole; the cut one is lost.
                    truncated += 1;
                    let end = memchr::memrchr(b'\n', datagram).unwrap_or(0);
                    datagram = &datagram[..end];
                    shard.count_discarded(ParseError::CutOff);
                }
                intake.ingest_with(shard, datagram, &mut values);
            }
            (datagrams, bytes, truncated)
        });
        if let Some(stats) = &unix {
            stats.packets.add(datagrams);
            stats.bytes.add(bytes as u64);
            stats.truncated.add(truncated);
        }
        bytes
    };
    receive(sockets, kind, &logs.intake, stop, handle);
}

/// Receives datagrams on a worker's sockets until `stop`, handing each
/// batch to `handle` (which returns the bytes it took, for the idle pause),
/// then drains what the kernel already holds. Shared by the aggregating
/// worker and the proxy's forwarding worker.
pub fn receive<S: AsFd + AsRawFd>(
    mut sockets: Vec<S>,
    kind: &str,
    log: &RateLimited,
    stop: CancellationToken,
    handle: impl FnMut(Received<'_>) -> usize,
) {
    match sockets.len() {
        0 => {}
        1 => {
            if let Some(socket) = sockets.pop() {
                receive_loop(socket, kind, log, stop, handle);
            }
        }
        _ => super::queues::receive_merged(&sockets, kind, log, stop, handle),
    }
}

/// [`receive`] on one socket: a blocking `recvmmsg` wakes for the first
/// datagram, and the idle pause lets the next call take many.
fn receive_loop<S: AsFd + AsRawFd>(
    socket: S,
    kind: &str,
    log: &RateLimited,
    stop: CancellationToken,
    mut handle: impl FnMut(Received<'_>) -> usize,
) {
    if let Err(e) = socket2::SockRef::from(&socket).set_read_timeout(Some(UDP_POLL)) {
        log.error(|| format!("cannot set {kind} read timeout: {e}"));
    }
    let mut batch = RecvBatch::new(false);
    let mut pause = IdlePause::new(granted_buffer(&socket));
    loop {
        let stopping = stop.is_cancelled();
        match batch.recv(&socket, stopping) {
            Ok(received) => {
                let bytes = handle(batch.received());
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
