//! A forwarding worker's output: each line goes to the node its key hashes
//! to, packed with that node's other lines into datagrams of at most
//! `--proxy-packet-bytes` (sent with one `sendmmsg` per node per batch), or
//! written newline-ended to a TCP connection per node. Buffers are made once
//! per worker and reused: nothing is allocated per line.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::cache::PlacementCache;
use super::ring::Ring;
use super::stats::NodeStats;
use super::{Shared, Transport};

/// Datagrams per node sent in one `sendmmsg` call.
const SEND_BATCH: usize = 64;
/// Largest UDP payload over IPv4: a longer line cannot be forwarded by UDP.
pub const MAX_UDP_PAYLOAD: usize = 65_507;
/// Bytes a TCP output gathers before it writes.
const TCP_WRITE_BYTES: usize = 256 * 1024;
/// Bound on connecting to, and on each write to, a node over TCP: a stuck
/// node costs the worker at most this much per attempt.
const TCP_TIMEOUT: Duration = Duration::from_secs(1);
/// Wait before trying a node's TCP connection again after it failed.
const TCP_RETRY: Duration = Duration::from_secs(1);
/// Send buffer asked for each node's UDP socket.
const SEND_BUFFER: usize = 4 << 20;

/// One packet of lines inside [`Packets::buf`].
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    lines: u32,
}

/// Up to [`SEND_BATCH`] datagrams for one node, back to back in one buffer.
#[derive(Debug, Default)]
struct Packets {
    buf: Vec<u8>,
    spans: Vec<Span>,
}

impl Packets {
    /// Adds a line to the last datagram if it fits, else starts one; false
    /// when the batch is full (send it, then add again).
    fn add(&mut self, line: &[u8], max: usize) -> bool {
        if let Some(last) = self.spans.last_mut() {
            if last.end - last.start + 1 + line.len() <= max {
                self.buf.push(b'\n');
                self.buf.extend_from_slice(line);
                last.end = self.buf.len();
                last.lines += 1;
                return true;
            }
        }
        if self.spans.len() == SEND_BATCH {
            return false;
        }
        let start = self.buf.len();
        self.buf.extend_from_slice(line);
        self.spans.push(Span {
            start,
            end: self.buf.len(),
            lines: 1,
        });
        true
    }

    fn clear(&mut self) {
        self.buf.clear();
        self.spans.clear();
    }
}

/// Sends `packets` on the connected `socket` with `sendmmsg`; returns how
/// many datagrams the kernel took (the rest are lost: counted by the caller).
fn send_all(socket: &UdpSocket, packets: &Packets) -> usize {
    let count = packets.spans.len();
    // SAFETY: iovec and mmsghdr are plain C structs for which all-zero bytes
    // are a valid (empty) value.
    let mut iovecs: [libc::iovec; SEND_BATCH] = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut headers: [libc::mmsghdr; SEND_BATCH] = unsafe { std::mem::zeroed() };
    let base = packets.buf.as_ptr();
    for ((iov, header), span) in iovecs
        .iter_mut()
        .zip(headers.iter_mut())
        .zip(&packets.spans)
    {
        iov.iov_base = base.wrapping_add(span.start) as *mut libc::c_void;
        iov.iov_len = span.end - span.start;
        header.msg_hdr.msg_iov = iov;
        header.msg_hdr.msg_iovlen = 1;
    }
    let (mut sent, mut refused_once) = (0, false);
    while sent < count {
        // SAFETY: headers[sent..count] each point at one iovec of `iovecs`,
        // which points inside `packets.buf` (spans are within its length);
        // all live and unmoved until the call returns, and the kernel only
        // reads them. The socket is connected, so no address is needed.
        let result = unsafe {
            libc::sendmmsg(
                socket.as_raw_fd(),
                headers.as_mut_ptr().add(sent),
                (count - sent) as libc::c_uint,
                0,
            )
        };
        if result >= 0 {
            sent += result as usize;
            continue;
        }
        match io::Error::last_os_error().kind() {
            io::ErrorKind::Interrupted => {}
            // An ICMP refusal of an earlier datagram is reported once, on
            // this call, which sent nothing: try again once.
            io::ErrorKind::ConnectionRefused if !refused_once => refused_once = true,
            _ => break,
        }
    }
    sent
}

/// Where one node's lines go from this worker.
enum Output {
    Udp {
        socket: UdpSocket,
        packets: Packets,
    },
    Tcp {
        addr: SocketAddr,
        stream: Option<TcpStream>,
        retry_at: Option<Instant>,
        buf: Vec<u8>,
        lines: u64,
    },
}

impl Output {
    fn udp(addr: SocketAddr) -> io::Result<Output> {
        let local: SocketAddr = if addr.is_ipv4() {
            "0.0.0.0:0".parse().map_err(io::Error::other)?
        } else {
            "[::]:0".parse().map_err(io::Error::other)?
        };
        let socket = UdpSocket::bind(local)?;
        let _ = socket2::SockRef::from(&socket).set_send_buffer_size(SEND_BUFFER);
        socket.connect(addr)?;
        Ok(Output::Udp {
            socket,
            packets: Packets::default(),
        })
    }

    fn tcp(addr: SocketAddr) -> Output {
        Output::Tcp {
            addr,
            stream: None,
            retry_at: None,
            buf: Vec::with_capacity(TCP_WRITE_BYTES * 2),
            lines: 0,
        }
    }

    /// Queues one line, sending first if the queue is full.
    #[inline]
    fn add(&mut self, line: &[u8], max: usize, stats: &NodeStats) {
        match self {
            Output::Udp { packets, .. } => {
                if !packets.add(line, max) {
                    self.send(stats);
                    if let Output::Udp { packets, .. } = self {
                        packets.add(line, max);
                    }
                }
            }
            Output::Tcp { buf, lines, .. } => {
                buf.extend_from_slice(line);
                buf.push(b'\n');
                *lines += 1;
                if buf.len() >= TCP_WRITE_BYTES {
                    self.send(stats);
                }
            }
        }
    }

    /// Sends what is queued; counts what went and what was lost.
    fn send(&mut self, stats: &NodeStats) {
        match self {
            Output::Udp { socket, packets } => {
                if packets.spans.is_empty() {
                    return;
                }
                let sent = send_all(socket, packets);
                let (went, lost) = packets.spans.split_at(sent);
                let lines = |spans: &[Span]| spans.iter().map(|s| u64::from(s.lines)).sum::<u64>();
                stats.lines.add(lines(went));
                stats
                    .bytes
                    .add(went.iter().map(|s| (s.end - s.start) as u64).sum());
                stats.sends.add(went.len() as u64);
                stats.errors.add(lines(lost));
                packets.clear();
            }
            Output::Tcp {
                addr,
                stream,
                retry_at,
                buf,
                lines,
            } => {
                if buf.is_empty() {
                    return;
                }
                if stream.is_none() && retry_at.is_none_or(|at| Instant::now() >= at) {
                    *stream = connect_tcp(*addr).ok();
                    *retry_at = stream.is_none().then(|| Instant::now() + TCP_RETRY);
                }
                let written = stream.as_mut().map(|s| s.write_all(buf));
                match written {
                    Some(Ok(())) => {
                        stats.lines.add(*lines);
                        stats.bytes.add(buf.len() as u64);
                        stats.sends.incr();
                    }
                    Some(Err(_)) => {
                        // A partly written line may reach the node cut: the
                        // connection is dropped, so the node discards it.
                        *stream = None;
                        *retry_at = Some(Instant::now() + TCP_RETRY);
                        stats.errors.add(*lines);
                    }
                    None => stats.errors.add(*lines),
                }
                buf.clear();
                *lines = 0;
            }
        }
    }
}

fn connect_tcp(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, TCP_TIMEOUT)?;
    stream.set_write_timeout(Some(TCP_TIMEOUT))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// One worker's forwarding state: its copy of the ring and its outputs.
pub struct Forwarder {
    shared: Arc<Shared>,
    /// The ring as of `epoch`; refreshed when the health checker changes it.
    ring: Arc<Ring>,
    epoch: u64,
    /// Recent placements under `ring`.
    cache: PlacementCache,
    /// Per node, in the order of `--proxy`.
    outputs: Vec<Output>,
    /// Longest datagram to send (UDP).
    max: usize,
    /// Counts kept locally, added to the shared stats once per flush.
    lines: u64,
    no_node: u64,
    oversize: u64,
}

impl Forwarder {
    /// A forwarder with its own sockets to every node.
    pub fn new(shared: Arc<Shared>) -> io::Result<Forwarder> {
        let outputs = shared
            .nodes
            .iter()
            .map(|node| match shared.settings.transport {
                Transport::Udp => Output::udp(node.addr),
                Transport::Tcp => Ok(Output::tcp(node.addr)),
            })
            .collect::<io::Result<Vec<_>>>()?;
        let (ring, epoch) = shared.ring();
        Ok(Forwarder {
            max: shared.settings.packet_bytes,
            shared,
            ring,
            epoch,
            cache: PlacementCache::default(),
            outputs,
            lines: 0,
            no_node: 0,
            oversize: 0,
        })
    }

    /// Takes the health checker's latest ring, if it changed.
    pub fn refresh(&mut self) {
        if self.shared.epoch() != self.epoch {
            (self.ring, self.epoch) = self.shared.ring();
            self.cache.clear();
        }
    }

    /// Routes every line of a datagram or TCP read (split on `\n`, empty
    /// lines skipped, as proxy.js does) to its node's queue.
    pub fn forward(&mut self, buf: &[u8]) {
        let udp = self.shared.settings.transport == Transport::Udp;
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', buf).chain(std::iter::once(buf.len())) {
            let line = &buf[start.min(end)..end];
            start = end + 1;
            if line.is_empty() {
                continue;
            }
            self.lines += 1;
            let key = &line[..memchr::memchr(b':', line).unwrap_or(line.len())];
            let ring = &self.ring;
            let Some(node) = self.cache.node_for(key, |key| ring.node_for(key)) else {
                self.no_node += 1;
                continue;
            };
            if udp && line.len() > MAX_UDP_PAYLOAD {
                self.oversize += 1;
                continue;
            }
            self.outputs[node].add(line, self.max, &self.shared.stats.nodes[node]);
        }
    }

    /// Sends everything queued and publishes the local counts.
    pub fn flush(&mut self) {
        for (output, stats) in self.outputs.iter_mut().zip(&self.shared.stats.nodes) {
            output.send(stats);
        }
        let stats = &self.shared.stats;
        stats.lines.add(std::mem::take(&mut self.lines));
        stats.no_node.add(std::mem::take(&mut self.no_node));
        stats.oversize.add(std::mem::take(&mut self.oversize));
    }
}
