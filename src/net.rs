//! Network intake: binding, UDP receive workers (one OS thread, socket and
//! shard each) and TCP connections with line framing.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::AsyncReadExt;
use tokio::sync::{watch, Semaphore};

use crate::aggregate::Shard;
use crate::intake::Intake;
use crate::protocol::ParseError;
use crate::stats::ServerStats;

/// How often a blocked UDP worker wakes up to check for shutdown.
const UDP_POLL: Duration = Duration::from_millis(100);
/// Largest UDP payload.
const MAX_DATAGRAM: usize = 65_536;

/// The addresses to bind for `-n`: every interface (dual-stack `[::]`, or
/// `0.0.0.0` where IPv6 is off) when empty, else the first address the name
/// resolves to.
pub fn resolve_bind_address(name: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    if name.is_empty() {
        return Ok(vec![
            SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
        ]);
    }
    let literal = name.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = literal.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let found: Vec<SocketAddr> = (name, port).to_socket_addrs()?.collect();
    if found.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{name} has no address"),
        ));
    }
    Ok(found)
}

fn new_socket(addr: SocketAddr, kind: Type, protocol: Protocol) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), kind, Some(protocol))?;
    if addr.is_ipv6() {
        // `[::]` takes IPv4 too; an explicit IPv6 address stays IPv6-only.
        socket.set_only_v6(!addr.ip().is_unspecified())?;
    }
    socket.set_reuse_address(true)?;
    Ok(socket)
}

/// Binds `count` UDP sockets to one address with SO_REUSEPORT so the kernel
/// spreads datagrams over the workers. Port 0 picks one free port for all.
pub fn bind_udp(
    addr: SocketAddr,
    count: usize,
    recv_buffer: usize,
) -> io::Result<Vec<std::net::UdpSocket>> {
    let mut sockets = Vec::with_capacity(count);
    let mut addr = addr;
    for _ in 0..count.max(1) {
        let socket = new_socket(addr, Type::DGRAM, Protocol::UDP)?;
        socket.set_reuse_port(true)?;
        // Beyond net.core.rmem_max only root may ask; try both quietly.
        if socket.set_recv_buffer_size(recv_buffer).is_err() {
            let _ = socket.set_recv_buffer_size(recv_buffer.min(4 << 20));
        }
        // Linux reports twice the size asked (the other half is bookkeeping).
        if socket.recv_buffer_size().unwrap_or(0) / 2 < recv_buffer {
            let _ = force_recv_buffer(&socket, recv_buffer);
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

/// SO_RCVBUFFORCE: root (as under runit before chpst) may exceed rmem_max.
fn force_recv_buffer(socket: &Socket, size: usize) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let value = libc::c_int::try_from(size).unwrap_or(libc::c_int::MAX);
    // SAFETY: a valid socket fd and a correctly sized int option.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Binds the TCP listener for metrics (or for monitoring).
pub fn bind_tcp(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = new_socket(addr, Type::STREAM, Protocol::TCP)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Longest pause after a receive call that emptied the queue (see `IdlePause`).
const IDLE_PAUSE_MAX: Duration = Duration::from_millis(10);
/// Pauses shorter than this are not worth a sleep.
const IDLE_PAUSE_MIN: Duration = Duration::from_micros(50);
/// Kernel bookkeeping per queued datagram beyond its payload (skb truesize;
/// generous on purpose).
const SKB_OVERHEAD: usize = 2048;
/// Datagrams taken per `recvmmsg` call.
const RECV_BATCH: usize = 32;

/// Buffers for receiving up to [`RECV_BATCH`] datagrams in one system call;
/// each slot holds the largest possible datagram, so nothing is truncated.
struct RecvBatch {
    /// RECV_BATCH slots of MAX_DATAGRAM bytes.
    buffers: Vec<u8>,
    /// Bytes received in each slot by the last call.
    lengths: [usize; RECV_BATCH],
}

impl RecvBatch {
    fn new() -> RecvBatch {
        RecvBatch {
            buffers: vec![0u8; RECV_BATCH * MAX_DATAGRAM],
            lengths: [0; RECV_BATCH],
        }
    }

    /// Receives at least one datagram (blocking up to the socket's read
    /// timeout unless `nonblocking`) and as many more as are queued.
    fn recv(&mut self, socket: &std::net::UdpSocket, nonblocking: bool) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        // SAFETY: zeroed iovec/mmsghdr are valid "empty" values; every
        // pointer set below points into `self.buffers`, which outlives the
        // call and is not moved during it; lengths match the slots.
        let mut iovecs: [libc::iovec; RECV_BATCH] = unsafe { std::mem::zeroed() };
        let mut headers: [libc::mmsghdr; RECV_BATCH] = unsafe { std::mem::zeroed() };
        for (slot, (iov, header)) in iovecs.iter_mut().zip(headers.iter_mut()).enumerate() {
            iov.iov_base = self.buffers[slot * MAX_DATAGRAM..].as_mut_ptr().cast();
            iov.iov_len = MAX_DATAGRAM;
            header.msg_hdr.msg_iov = iov;
            header.msg_hdr.msg_iovlen = 1;
        }
        let flags = if nonblocking {
            libc::MSG_DONTWAIT
        } else {
            libc::MSG_WAITFORONE
        };
        // SAFETY: the headers describe valid, writable buffers (see above).
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
        for (length, header) in self.lengths.iter_mut().zip(&headers).take(received) {
            *length = header.msg_len as usize;
        }
        Ok(received)
    }

    fn datagram(&self, slot: usize) -> &[u8] {
        let start = slot * MAX_DATAGRAM;
        &self.buffers[start..start + self.lengths[slot].min(MAX_DATAGRAM)]
    }
}

/// After a receive call that emptied the queue, waits a little so the next
/// call takes many datagrams instead of waking up for each one: most of the
/// CPU per datagram at moderate rates is the wake-up. The wait is sized from
/// the arrival rate so the queue fills at most an eighth of the socket's
/// receive buffer meanwhile: a small buffer (unprivileged, low rmem_max)
/// gets short pauses or none. Under full load batches come back full and no
/// pause happens at all.
struct IdlePause {
    /// The socket's receive buffer, as the kernel reports it.
    buffer: usize,
    /// When the last pause ended (or the worker started).
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

    fn after_drain(&mut self) {
        let elapsed = self.since.elapsed().as_secs_f64().max(1e-6);
        let rate = self.datagrams as f64 / elapsed;
        let per_datagram = self.bytes / self.datagrams.max(1) + SKB_OVERHEAD;
        let room = (self.buffer / 8 / per_datagram) as f64;
        let wait = (room / rate.max(1.0)).min(IDLE_PAUSE_MAX.as_secs_f64());
        if wait >= IDLE_PAUSE_MIN.as_secs_f64() {
            std::thread::sleep(Duration::from_secs_f64(wait));
        }
        self.since = Instant::now();
        self.datagrams = 0;
        self.bytes = 0;
    }
}

/// Runs one UDP receive worker until `stop`; then drains what the kernel
/// already holds so a shutdown loses nothing that arrived.
pub fn udp_worker(
    socket: std::net::UdpSocket,
    shard: Arc<Mutex<Shard>>,
    intake: Arc<Intake>,
    stop: Arc<AtomicBool>,
) {
    if let Err(e) = socket.set_read_timeout(Some(UDP_POLL)) {
        intake
            .logs
            .intake
            .error(|| format!("cannot set UDP read timeout: {e}"));
    }
    let mut batch = RecvBatch::new();
    let mut pause = IdlePause::new(
        socket2::SockRef::from(&socket)
            .recv_buffer_size()
            .unwrap_or(0),
    );
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        match batch.recv(&socket, stopping) {
            Ok(received) => {
                // One lock per batch: the flush only takes it to swap.
                let mut shard = shard.lock();
                let mut bytes = 0;
                for slot in 0..received {
                    let datagram = batch.datagram(slot);
                    bytes += datagram.len();
                    intake.ingest(&mut shard, datagram);
                }
                drop(shard);
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
                intake
                    .logs
                    .intake
                    .error(|| format!("UDP receive failed: {e}"));
                if stopping {
                    return;
                }
            }
        }
    }
}

/// Limits on TCP intake.
#[derive(Debug, Clone, Copy)]
pub struct TcpLimits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Silence after which a connection is closed.
    pub idle_timeout: Duration,
    /// Longest line; a longer one is discarded up to its newline.
    pub max_line_bytes: usize,
}

/// How long shutdown waits for a TCP peer's already-sent bytes.
const TCP_DRAIN: Duration = Duration::from_millis(50);
/// Longest shutdown waits for all TCP connections to hand over their lines.
const TCP_DRAIN_ALL: Duration = Duration::from_secs(2);

/// Accepts TCP connections until `stop` turns true; then takes in what the
/// peers had already sent (queued connections included) before returning.
pub async fn tcp_accept_loop(
    listener: tokio::net::TcpListener,
    shard: Arc<Mutex<Shard>>,
    intake: Arc<Intake>,
    stats: Arc<Mutex<ServerStats>>,
    limits: TcpLimits,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut connections = tokio::task::JoinSet::new();
    let mut stopping = false;
    loop {
        let accepted = if stopping {
            // Connections the kernel completed before the stop: drain them too.
            match tokio::time::timeout(Duration::ZERO, listener.accept()).await {
                Ok(accepted) => accepted,
                Err(_) => break,
            }
        } else {
            tokio::select! {
                accepted = listener.accept() => accepted,
                _ = stop.changed() => {
                    stopping = true;
                    continue;
                }
            }
        };
        // Reap finished connection tasks so the set stays small.
        while connections.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                intake
                    .logs
                    .intake
                    .error(|| format!("TCP accept failed: {e}"));
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            stats.lock().tcp_refused += 1;
            intake.logs.intake.error(|| {
                format!(
                    "refused TCP connection from {peer}: {} connections open (--tcp-max-connections)",
                    limits.max_connections
                )
            });
            continue;
        };
        {
            let mut stats = stats.lock();
            stats.tcp_accepted += 1;
            stats.tcp_open += 1;
        }
        let (shard, intake, stats, stop) =
            (shard.clone(), intake.clone(), stats.clone(), stop.clone());
        connections.spawn(async move {
            let idle = tcp_connection(stream, &shard, &intake, limits, stop).await;
            if idle {
                intake.logs.intake.error(|| {
                    format!(
                        "closed TCP connection from {peer}: silent for {:?} (--tcp-idle-timeout)",
                        limits.idle_timeout
                    )
                });
            }
            let mut stats = stats.lock();
            stats.tcp_open = stats.tcp_open.saturating_sub(1);
            if idle {
                stats.tcp_idle_closed += 1;
            }
            drop(permit);
        });
    }
    let drained = tokio::time::timeout(TCP_DRAIN_ALL, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.shutdown().await;
    }
}

/// Splits a TCP stream into lines, reassembling lines cut across reads.
/// Returns true when the connection was closed for idling.
async fn tcp_connection(
    mut stream: tokio::net::TcpStream,
    shard: &Mutex<Shard>,
    intake: &Intake,
    limits: TcpLimits,
    mut stop: watch::Receiver<bool>,
) -> bool {
    let mut framer = LineFramer::new(limits.max_line_bytes);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut stopping = *stop.borrow();
    loop {
        // While stopping, only what the peer already sent is taken in.
        let wait = if stopping {
            TCP_DRAIN
        } else {
            limits.idle_timeout
        };
        let read = tokio::select! {
            read = tokio::time::timeout(wait, stream.read(&mut chunk)) => read,
            _ = stop.changed(), if !stopping => {
                stopping = true;
                continue;
            }
        };
        let n = match read {
            Err(_) => {
                framer.finish(|| shard.lock().count_discarded(ParseError::CutOff));
                return !stopping;
            }
            Ok(Ok(0)) | Ok(Err(_)) => {
                framer.finish(|| shard.lock().count_discarded(ParseError::CutOff));
                return false;
            }
            Ok(Ok(n)) => n,
        };
        let mut shard = shard.lock();
        framer.feed(&chunk[..n], |lines| intake.ingest(&mut shard, lines));
        for _ in 0..framer.take_overlong() {
            shard.count_discarded(ParseError::TooLong);
        }
    }
}

/// Reassembles lines from a byte stream. Complete lines are handed over in
/// one slice per read; a partial line waits for the next read; a line longer
/// than the limit is dropped up to its newline and counted.
#[derive(Debug)]
pub struct LineFramer {
    /// Bytes of a line not yet ended.
    pending: Vec<u8>,
    /// True while skipping the rest of an overlong line.
    skipping: bool,
    /// Longest line kept.
    max_line: usize,
    /// Overlong lines dropped since the last `take_overlong`.
    overlong: u64,
}

impl LineFramer {
    /// A framer for lines up to `max_line` bytes.
    pub fn new(max_line: usize) -> LineFramer {
        LineFramer {
            pending: Vec::new(),
            skipping: false,
            max_line,
            overlong: 0,
        }
    }

    /// Feeds one read; `complete` gets every complete line (with newlines).
    pub fn feed(&mut self, mut data: &[u8], mut complete: impl FnMut(&[u8])) {
        if self.skipping {
            match data.iter().position(|b| *b == b'\n') {
                Some(at) => {
                    self.skipping = false;
                    data = &data[at + 1..];
                }
                None => return,
            }
        }
        let Some(last_newline) = data.iter().rposition(|b| *b == b'\n') else {
            self.keep_partial(data);
            return;
        };
        let (lines, rest) = data.split_at(last_newline + 1);
        if self.pending.is_empty() {
            complete(lines);
        } else {
            self.pending.extend_from_slice(lines);
            complete(&self.pending);
            self.pending.clear();
        }
        self.keep_partial(rest);
    }

    fn keep_partial(&mut self, data: &[u8]) {
        if self.pending.len() + data.len() > self.max_line {
            self.pending.clear();
            self.skipping = true;
            self.overlong += 1;
        } else {
            self.pending.extend_from_slice(data);
        }
    }

    /// Overlong lines dropped since the last call.
    pub fn take_overlong(&mut self) -> u64 {
        std::mem::take(&mut self.overlong)
    }

    /// At end of stream: a partial line is lost; `discard` counts it.
    pub fn finish(&mut self, discard: impl FnOnce()) {
        if !self.pending.iter().all(|b| b.is_ascii_whitespace()) {
            discard();
        }
        self.pending.clear();
    }
}

/// Datagrams the kernel dropped on UDP sockets bound to `port`, from
/// /proc/net/udp and udp6 (the last column). None where /proc is absent.
pub fn kernel_udp_drops(port: u16) -> Option<u64> {
    let port_hex = format!(":{port:04X}");
    let mut total = None;
    for path in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields
                .get(1)
                .is_some_and(|local| local.ends_with(&port_hex))
            {
                if let Some(drops) = fields.last().and_then(|d| d.parse::<u64>().ok()) {
                    *total.get_or_insert(0) += drops;
                }
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(reads: &[&[u8]], max: usize) -> (Vec<Vec<u8>>, u64) {
        let mut framer = LineFramer::new(max);
        let mut got = Vec::new();
        let mut overlong = 0;
        for read in reads {
            framer.feed(read, |lines| got.push(lines.to_vec()));
            overlong += framer.take_overlong();
        }
        (got, overlong)
    }

    #[test]
    fn line_split_over_reads_is_reassembled() {
        let (got, _) = frame(&[b"a:1|c\nb:", b"2|c\n"], 100);
        assert_eq!(got, [b"a:1|c\n".to_vec(), b"b:2|c\n".to_vec()]);
    }

    #[test]
    fn overlong_line_dropped_up_to_newline() {
        let (got, overlong) = frame(&[b"xxxxxxxx", b"xxxx\nok:1|c\n"], 6);
        assert_eq!(overlong, 1);
        assert_eq!(got, [b"ok:1|c\n".to_vec()]);
    }

    #[test]
    fn partial_line_at_close_is_counted() {
        let mut framer = LineFramer::new(100);
        framer.feed(b"a:1", |_| {});
        let mut lost = 0;
        framer.finish(|| lost += 1);
        assert_eq!(lost, 1);
    }
}
