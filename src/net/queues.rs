//! Several sockets per UDP worker, read as one queue in arrival order.
//!
//! An unprivileged daemon gets at most `net.core.rmem_max` of receive
//! buffer per socket (208 KiB on a stock kernel: about 330 datagrams), so
//! the idle pause that saves wake-ups must stay under a millisecond to
//! survive a burst. A worker with `--udp-queues N` sockets, the reuseport
//! program spreading each sender's datagrams over them at random
//! ([`super::spread`]), has N times the buffer: pauses N times longer, and N
//! times the slack for a scheduling delay. The kernel stamps each datagram
//! on arrival (SO_TIMESTAMPNS), and the worker takes them in stamp order, so
//! one sender's lines are applied in the order they arrived, as from one
//! socket (a gauge set twice ends at the later value).
//!
//! Each round takes a batch from every socket that still has datagrams. A
//! datagram is handed on only when no socket can still hold an earlier one:
//! its stamp is at most the watermark, the earliest last stamp of a socket
//! whose batch came back full. The others wait for the next round.

use std::io;
use std::os::fd::{AsFd, AsRawFd};

use tokio_util::sync::CancellationToken;

use super::idle::IdlePause;
use super::udp::{granted_buffer, Received, RecvBatch, Span, RECV_BATCH, UDP_POLL};
use crate::logging::RateLimited;

/// Datagrams held for ordering before the held ones are handed on even
/// though every socket still has more (a round under full load).
const MAX_HELD: usize = 1024;

/// Datagrams taken from the sockets and not yet handed on.
#[derive(Default)]
struct Held {
    /// Their bytes, back to back.
    bytes: Vec<u8>,
    /// Where each lies in `bytes`, sorted by arrival once a round ends.
    spans: Vec<Span>,
    /// How many of the first `spans` may be handed on.
    ready: usize,
    /// For compacting what stays: the next round's bytes.
    spare: Vec<u8>,
}

impl Held {
    /// Copies the last call's datagrams of one socket; returns the stamp of
    /// its last datagram (or `previous` when there was none).
    fn take(&mut self, batch: &RecvBatch, previous: u64) -> u64 {
        let mut last = previous;
        for (stamp, datagram, truncated) in batch.received().stamped() {
            let start = self.bytes.len();
            self.bytes.extend_from_slice(datagram);
            // A datagram without a stamp keeps its place behind the socket's
            // previous one.
            last = last.max(stamp);
            self.spans.push(Span {
                stamp: last,
                start,
                len: datagram.len(),
                truncated,
            });
        }
        last
    }

    /// Sorts by arrival (stably: equal stamps keep the order taken) and
    /// marks what is at or before `watermark` as ready.
    fn order(&mut self, watermark: u64) {
        self.spans.sort_by_key(|span| span.stamp);
        self.ready = self.spans.partition_point(|span| span.stamp <= watermark);
    }

    fn ready(&self) -> Received<'_> {
        Received::new(&self.bytes, &self.spans[..self.ready])
    }

    /// Drops what was handed on, keeping the rest (few) compacted.
    fn consume(&mut self) {
        self.spare.clear();
        let kept = self.spans.len() - self.ready;
        self.spans.drain(..self.ready);
        for span in &mut self.spans {
            let start = self.spare.len();
            self.spare
                .extend_from_slice(&self.bytes[span.start..span.start + span.len]);
            span.start = start;
        }
        std::mem::swap(&mut self.bytes, &mut self.spare);
        self.ready = 0;
        debug_assert_eq!(self.spans.len(), kept);
    }
}

/// Receives on `sockets` (one worker's) until `stop`, handing datagrams to
/// `handle` in arrival order; then drains what the kernel holds.
pub fn receive_merged<S: AsFd + AsRawFd>(
    sockets: &[S],
    kind: &str,
    log: &RateLimited,
    stop: CancellationToken,
    mut handle: impl FnMut(Received<'_>) -> usize,
) {
    let mut batch = RecvBatch::new(true);
    let mut held = Held::default();
    let buffer = sockets.iter().map(granted_buffer).sum();
    let mut pause = IdlePause::new(buffer);
    let mut open = vec![false; sockets.len()];
    let mut last = vec![0u64; sockets.len()];
    loop {
        let stopping = stop.is_cancelled();
        open.fill(true);
        let mut received = 0;
        let queued = sockets.first().map_or(0, queued_bytes);
        // Rounds until every socket is empty, or enough is held.
        while open.contains(&true) && held.spans.len() < MAX_HELD {
            for (index, socket) in sockets.iter().enumerate() {
                if !open[index] {
                    continue;
                }
                let taken = match batch.recv(socket, true) {
                    Ok(taken) => taken,
                    Err(e) => {
                        if !matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                        ) {
                            log.error(|| format!("{kind} receive failed: {e}"));
                        }
                        0
                    }
                };
                last[index] = held.take(&batch, last[index]);
                open[index] = taken == RECV_BATCH;
                if index == 0 && !open[0] && received == 0 {
                    // The first call of the cycle emptied a socket: how much
                    // memory its datagrams took is known.
                    pause.observe(queued, taken);
                }
                received += taken;
            }
        }
        let watermark = open
            .iter()
            .zip(&last)
            .filter(|(open, _)| **open)
            .map(|(_, stamp)| *stamp)
            .min()
            .unwrap_or(u64::MAX);
        held.order(watermark);
        if held.ready > 0 {
            let bytes = handle(held.ready());
            pause.count(held.ready, bytes);
            held.consume();
        }
        let busy = open.contains(&true);
        if received == 0 && held.spans.is_empty() {
            if stopping {
                return;
            }
            wait_readable(sockets, log, kind);
        } else if !busy && !stopping {
            pause.after_drain();
        }
    }
}

/// `SO_MEMINFO` (not in the libc crate): the socket's memory counters.
const SO_MEMINFO: libc::c_int = 55;

/// Kernel memory the datagrams queued on `socket` take (its receive
/// allocation); 0 when unknown.
fn queued_bytes(socket: &impl AsRawFd) -> usize {
    let mut meminfo = [0u32; 16];
    let mut len = std::mem::size_of_val(&meminfo) as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes (the array's size) into
    // `meminfo` and the length back into `len`, both live locals; the fd is
    // open while `socket` is borrowed.
    let result = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_MEMINFO,
            meminfo.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if result != 0 {
        return 0;
    }
    meminfo[libc::SK_MEMINFO_RMEM_ALLOC as usize] as usize
}

/// Blocks until one of `sockets` has a datagram, or [`UDP_POLL`] passes
/// (to see a shutdown).
fn wait_readable<S: AsRawFd>(sockets: &[S], log: &RateLimited, kind: &str) {
    let mut fds: Vec<libc::pollfd> = sockets
        .iter()
        .map(|socket| libc::pollfd {
            fd: socket.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: `fds` is a live array of `fds.len()` pollfd structs that the
    // kernel only writes the `revents` of; every fd is open while `sockets`
    // is borrowed.
    let ready = unsafe {
        libc::poll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            UDP_POLL.as_millis() as libc::c_int,
        )
    };
    if ready < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            log.error(|| format!("{kind} poll failed: {e}"));
            // Never spin on a persistent error.
            std::thread::sleep(UDP_POLL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Held datagrams `text` stamped `stamp`, in the order taken.
    fn held(items: &[(u64, &str)]) -> Held {
        let mut held = Held::default();
        for (stamp, text) in items {
            let start = held.bytes.len();
            held.bytes.extend_from_slice(text.as_bytes());
            held.spans.push(Span {
                stamp: *stamp,
                start,
                len: text.len(),
                truncated: false,
            });
        }
        held
    }

    fn texts(received: Received<'_>) -> Vec<String> {
        received
            .iter()
            .map(|(d, _)| String::from_utf8_lossy(d).into_owned())
            .collect()
    }

    #[test]
    fn hands_on_in_arrival_order_up_to_the_watermark_and_keeps_the_rest() {
        // Two sockets' batches, taken one after the other.
        let mut held = held(&[
            (10, "a"),
            (30, "c"),
            (50, "e"),
            (20, "b"),
            (40, "d"),
            (60, "f"),
        ]);
        held.order(40);
        assert_eq!(texts(held.ready()), ["a", "b", "c", "d"]);
        held.consume();
        // What waits keeps its bytes and order.
        held.order(u64::MAX);
        assert_eq!(texts(held.ready()), ["e", "f"]);
        held.consume();
        assert!(held.spans.is_empty() && held.bytes.is_empty());
    }

    #[test]
    fn equal_stamps_keep_the_order_taken() {
        let mut held = held(&[(5, "first"), (5, "second"), (1, "zero")]);
        held.order(u64::MAX);
        assert_eq!(texts(held.ready()), ["zero", "first", "second"]);
    }
}
