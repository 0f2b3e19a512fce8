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
//! whose batch came back full, and at most the settled stamp (see
//! [`Settled`]): a socket read empty may still be given a datagram stamped
//! before a later one already taken from another. The others wait.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::idle::IdlePause;
use super::udp::{granted_buffer, Received, RecvBatch, Span, RECV_BATCH, UDP_POLL};
use crate::logging::RateLimited;

/// Datagrams held for ordering before all of them are handed on, ordered
/// as far as known (an overload: [`SETTLE`] holds 2500 at 500k datagrams a
/// second).
const MAX_HELD: usize = 4096;

/// Held bytes below which dead ones are left in place.
const COMPACT_MIN: usize = 256 * 1024;

/// How long after a datagram's stamp it may still reach its socket: the
/// kernel stamps it on entering the network stack and queues it on the
/// socket later, from a softirq that a busy machine defers to ksoftirqd
/// (milliseconds), or on another core. Only the hand-on waits this long.
const SETTLE: Duration = Duration::from_millis(5);

/// The latest stamp no datagram still on its way can precede: the highest
/// stamp taken by a moment at least [`SETTLE`] ago. Anything arriving
/// later was stamped after that moment, so after every datagram taken by
/// then. Measured by the monotonic clock, never by comparing stamps with
/// the wall clock, so a clock step cannot stall the hand-on.
#[derive(Default)]
struct Settled {
    /// (when, highest stamp taken by then), oldest first, a few per SETTLE.
    marks: VecDeque<(Instant, u64)>,
    /// The highest stamp taken so far.
    highest: u64,
    /// The settled stamp.
    settled: u64,
}

impl Settled {
    /// Notes that `stamp` was taken (before the next `mark`).
    fn saw(&mut self, stamp: u64) {
        self.highest = self.highest.max(stamp);
    }

    /// At the start of a cycle, before any socket is read: records the
    /// highest stamp taken so far, and returns the settled stamp.
    fn mark(&mut self, now: Instant) -> u64 {
        // A mark every eighth of SETTLE keeps the queue short; a missed
        // mark only errs late.
        let due = self
            .marks
            .back()
            .is_none_or(|(when, _)| now.duration_since(*when) >= SETTLE / 8);
        if due {
            self.marks.push_back((now, self.highest));
        }
        while let Some(&(when, highest)) = self.marks.front() {
            if now.duration_since(when) < SETTLE {
                break;
            }
            self.settled = highest;
            self.marks.pop_front();
        }
        self.settled
    }
}

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
    fn take(&mut self, batch: &RecvBatch, previous: u64, settled: &mut Settled) -> u64 {
        let mut last = previous;
        for (stamp, datagram, truncated) in batch.received().stamped() {
            let start = self.bytes.len();
            self.bytes.extend_from_slice(datagram);
            // A datagram without a stamp keeps its place behind the socket's
            // previous one.
            last = last.max(stamp);
            settled.saw(last);
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

    /// Drops what was handed on. What stays is compacted only once most of
    /// the bytes are dead, so each byte is copied a bounded number of times
    /// however long it waits to settle.
    fn consume(&mut self) {
        self.spans.drain(..self.ready);
        self.ready = 0;
        if self.spans.is_empty() {
            self.bytes.clear();
            return;
        }
        let live: usize = self.spans.iter().map(|span| span.len).sum();
        if self.bytes.len() < COMPACT_MIN.max(live * 2) {
            return;
        }
        self.spare.clear();
        for span in &mut self.spans {
            let start = self.spare.len();
            self.spare
                .extend_from_slice(&self.bytes[span.start..span.start + span.len]);
            span.start = start;
        }
        std::mem::swap(&mut self.bytes, &mut self.spare);
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
    let mut settled = Settled::default();
    loop {
        let stopping = stop.is_cancelled();
        let settled_stamp = settled.mark(Instant::now());
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
                last[index] = held.take(&batch, last[index], &mut settled);
                open[index] = taken == RECV_BATCH;
                if index == 0 && !open[0] && received == 0 {
                    // The first call of the cycle emptied a socket: how much
                    // memory its datagrams took is known.
                    pause.observe(queued, taken);
                }
                received += taken;
            }
        }
        let full_socket_stamp = open
            .iter()
            .zip(&last)
            .filter(|(open, _)| **open)
            .map(|(_, stamp)| *stamp)
            .min()
            .unwrap_or(u64::MAX);
        let watermark = if held.spans.len() >= MAX_HELD {
            u64::MAX
        } else {
            full_socket_stamp.min(settled_stamp)
        };
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
            wait_readable(sockets, log, kind, UDP_POLL);
        } else if received == 0 {
            // Only datagrams waiting to settle: wake when they have.
            wait_readable(sockets, log, kind, SETTLE / 4);
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

/// Blocks until one of `sockets` has a datagram, or `timeout` passes (to see
/// a shutdown, or datagrams settle).
fn wait_readable<S: AsRawFd>(sockets: &[S], log: &RateLimited, kind: &str, timeout: Duration) {
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
            timeout.as_millis().max(1) as libc::c_int,
        )
    };
    if ready < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            log.error(|| format!("{kind} poll failed: {e}"));
            // Never spin on a persistent error.
            std::thread::sleep(timeout);
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
    fn a_stamp_settles_only_once_taken_at_least_settle_ago() {
        let start = Instant::now();
        let mut settled = Settled::default();
        assert_eq!(settled.mark(start), 0);
        settled.saw(100);
        // Taken after the first mark: that mark says nothing of it.
        assert_eq!(settled.mark(start + SETTLE / 2), 0);
        assert_eq!(settled.mark(start + SETTLE), 0);
        // The mark at SETTLE / 2 knew of 100.
        assert_eq!(settled.mark(start + SETTLE / 2 + SETTLE), 100);
        settled.saw(50);
        assert_eq!(settled.mark(start + SETTLE * 4), 100);
        assert!(settled.marks.len() <= 9, "{} marks", settled.marks.len());
    }

    #[test]
    fn marks_stay_few_however_often_a_cycle_starts() {
        let start = Instant::now();
        let mut settled = Settled::default();
        for micros in 0..20_000u64 {
            settled.saw(micros);
            settled.mark(start + Duration::from_micros(micros));
        }
        assert!(settled.marks.len() <= 9, "{} marks", settled.marks.len());
        assert!(settled.settled >= 20_000 - 6_000, "{}", settled.settled);
    }

    #[test]
    fn compacting_keeps_what_waits_intact() {
        let big = "x".repeat(COMPACT_MIN);
        let mut held = held(&[(1, &big), (3, "kept"), (2, "also")]);
        held.order(2);
        assert_eq!(held.ready, 2);
        held.consume();
        assert_eq!(held.bytes.len(), 4, "compacted to what waits");
        held.order(u64::MAX);
        assert_eq!(texts(held.ready()), ["kept"]);
    }

    #[test]
    fn equal_stamps_keep_the_order_taken() {
        let mut held = held(&[(5, "first"), (5, "second"), (1, "zero")]);
        held.order(u64::MAX);
        assert_eq!(texts(held.ready()), ["zero", "first", "second"]);
    }
}
