//! TCP intake: an accept loop bounded in connections, and a task per
//! connection that frames lines and hands them to the shared TCP shard.
//! Every resource a peer can hold is bounded: connections (at the cap the
//! longest-silent one makes room), time without a line (idle) or with an
//! unended line (slow), and the bytes of unended lines, all together.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use tokio::io::AsyncReadExt;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::slots::ConnectionSlots;
use crate::intake::{Intake, LineFramer, ShardCell};
use crate::protocol::ParseError;
use crate::stats::Counter;

/// Limits on TCP intake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpLimits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Silence after which a connection is closed.
    pub idle_timeout: Duration,
    /// Longest line; a longer one is discarded up to its newline.
    pub max_line_bytes: usize,
    /// Longest time a line may take to arrive once begun.
    pub line_timeout: Duration,
    /// Bytes of unended lines held for all connections together.
    pub max_pending_bytes: usize,
}

/// What TCP intake counts (`tcp.connections.*`).
#[derive(Debug, Default)]
pub struct TcpStats {
    /// Connections open now.
    pub open: Counter,
    /// Connections accepted since start.
    pub accepted: Counter,
    /// Connections refused because too many were open.
    pub refused: Counter,
    /// Connections closed for idling.
    pub idle_closed: Counter,
    /// Connections closed because a line took longer than the line timeout.
    pub slow_closed: Counter,
    /// Connections closed at the cap to make room for a new one.
    pub evicted: Counter,
    /// Lines dropped because every connection's unended lines together
    /// reached the pending-bytes bound.
    pub pending_full: Counter,
}

/// How long shutdown waits for a TCP peer's already-sent bytes.
const TCP_DRAIN: Duration = Duration::from_millis(50);
/// Longest shutdown waits for all TCP connections to hand over their lines.
const TCP_DRAIN_ALL: Duration = Duration::from_secs(2);
/// Pause after a failed accept (EMFILE and friends) so the loop cannot spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);
/// Bytes read at once per connection.
const READ_CHUNK: usize = 16 * 1024;
/// A connection silent for less than this is never evicted: at the cap,
/// busy senders keep their connections and the newcomer is refused.
const EVICT_AFTER: Duration = Duration::from_secs(1);
/// How long a newcomer waits for an evicted connection's slot.
const EVICT_WAIT: Duration = Duration::from_millis(200);

/// One open connection, as the accept loop sees it.
#[derive(Debug)]
struct Open {
    /// Milliseconds since the loop started when it last completed a line.
    last_line_ms: AtomicU64,
    /// Closes it.
    close: CancellationToken,
}

/// What every connection shares.
struct Shared {
    /// The TCP shard.
    shard: Arc<ShardCell>,
    /// Parsing and debug output.
    intake: Arc<Intake>,
    /// Counters.
    stats: Arc<TcpStats>,
    /// Bounds, for connections accepted from now on (SIGHUP may store new ones).
    limits: Arc<ArcSwap<TcpLimits>>,
    /// Bytes of unended lines held, all connections together.
    pending: AtomicUsize,
    /// The loop's start, for `Open::last_line_ms`.
    epoch: Instant,
    /// Open connections, for eviction at the cap.
    open: Mutex<Vec<Arc<Open>>>,
}

impl Shared {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Closes the connection silent the longest, if silent long enough.
    fn evict_one(&self) -> bool {
        let open = self.open.lock();
        let now = self.now_ms();
        let victim = open
            .iter()
            .filter(|c| !c.close.is_cancelled())
            .min_by_key(|c| c.last_line_ms.load(Ordering::Relaxed));
        match victim {
            Some(c)
                if now - c.last_line_ms.load(Ordering::Relaxed)
                    >= EVICT_AFTER.as_millis() as u64 =>
            {
                c.close.cancel();
                self.stats.evicted.incr();
                true
            }
            _ => false,
        }
    }
}

/// Accepts TCP connections until `stop`; then takes in what the peers had
/// already sent (queued connections included) before returning.
pub async fn accept_loop(
    listener: tokio::net::TcpListener,
    shard: Arc<ShardCell>,
    intake: Arc<Intake>,
    stats: Arc<TcpStats>,
    limits: Arc<ArcSwap<TcpLimits>>,
    stop: CancellationToken,
) {
    let slots = ConnectionSlots::new(limits.load().max_connections);
    let shared = Arc::new(Shared {
        shard,
        intake,
        stats,
        limits,
        pending: AtomicUsize::new(0),
        epoch: Instant::now(),
        open: Mutex::new(Vec::new()),
    });
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = if stop.is_cancelled() {
            // Connections the kernel completed before the stop: drain them too.
            match tokio::time::timeout(Duration::ZERO, listener.accept()).await {
                Ok(accepted) => accepted,
                Err(_) => break,
            }
        } else {
            tokio::select! {
                accepted = listener.accept() => accepted,
                _ = stop.cancelled() => continue,
            }
        };
        // Reap finished connection tasks so the set stays small.
        while connections.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                shared
                    .intake
                    .logs
                    .intake
                    .error(|| format!("TCP accept failed: {e}"));
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let permit = match slots.try_acquire(shared.limits.load().max_connections) {
            Ok(permit) => Some(permit),
            Err(_) if shared.evict_one() => tokio::time::timeout(EVICT_WAIT, slots.acquire())
                .await
                .ok()
                .flatten(),
            Err(_) => None,
        };
        let Some(permit) = permit else {
            shared.stats.refused.incr();
            shared.intake.logs.intake.error(|| {
                format!(
                    "refused TCP connection from {peer}: {} connections open (--tcp-max-connections)",
                    slots.size()
                )
            });
            continue;
        };
        shared.stats.accepted.incr();
        shared.stats.open.incr();
        let open = Arc::new(Open {
            last_line_ms: AtomicU64::new(shared.now_ms()),
            close: stop.child_token(),
        });
        shared.open.lock().push(open.clone());
        let shared = shared.clone();
        connections.spawn(async move {
            let end = connection(stream, &shared, &open).await;
            let why = match end {
                End::Idle => Some("silent"),
                End::Slow => Some("sending one line"),
                End::Done => None,
            };
            if let Some(why) = why {
                match end {
                    End::Idle => shared.stats.idle_closed.incr(),
                    _ => shared.stats.slow_closed.incr(),
                }
                shared.intake.logs.intake.error(|| {
                    format!("closed TCP connection from {peer}: {why} for too long (--tcp-idle-timeout, --tcp-line-timeout)")
                });
            }
            shared.open.lock().retain(|c| !Arc::ptr_eq(c, &open));
            shared.stats.open.decr();
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

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The peer closed, reset, or we stopped or evicted it.
    Done,
    /// Silent past the idle timeout.
    Idle,
    /// An unended line past the line timeout.
    Slow,
}

/// Splits a TCP stream into lines, reassembling lines cut across reads.
async fn connection(mut stream: tokio::net::TcpStream, shared: &Shared, open: &Open) -> End {
    let limits = **shared.limits.load();
    let mut framer = LineFramer::new(limits.max_line_bytes);
    let mut chunk = vec![0u8; READ_CHUNK];
    let mut held = 0;
    let mut line_started: Option<Instant> = None;
    let cut_off = |framer: &mut LineFramer| {
        framer.finish(|| shared.shard.with(|s| s.count_discarded(ParseError::CutOff)));
    };
    let end = loop {
        // While stopping, only what the peer already sent is taken in.
        let stopping = open.close.is_cancelled();
        let mut wait = if stopping {
            TCP_DRAIN
        } else {
            limits.idle_timeout
        };
        if let Some(started) = line_started {
            wait =
                wait.min((started + limits.line_timeout).saturating_duration_since(Instant::now()));
        }
        let read = tokio::select! {
            read = tokio::time::timeout(wait, stream.read(&mut chunk)) => read,
            _ = open.close.cancelled(), if !stopping => continue,
        };
        let n = match read {
            Err(_) => {
                cut_off(&mut framer);
                break match line_started {
                    _ if stopping => End::Done,
                    Some(started) if started.elapsed() >= limits.line_timeout => End::Slow,
                    _ => End::Idle,
                };
            }
            Ok(Ok(0)) => {
                framer.finish_at_eof(|line| shared.shard.with(|s| shared.intake.ingest(s, line)));
                break End::Done;
            }
            Ok(Err(_)) => {
                cut_off(&mut framer);
                break End::Done;
            }
            Ok(Ok(n)) => n,
        };
        shared.shard.with(|shard| {
            framer.feed(&chunk[..n], |lines| shared.intake.ingest(shard, lines));
            for _ in 0..framer.take_overlong() {
                shard.count_discarded(ParseError::TooLong);
            }
        });
        if chunk[..n].contains(&b'\n') {
            open.last_line_ms.store(shared.now_ms(), Ordering::Relaxed);
            line_started = None;
        }
        let now_pending = framer.pending_len();
        if now_pending == 0 {
            line_started = None;
        } else if line_started.is_none() {
            line_started = Some(Instant::now());
        }
        // The unended lines of every connection together stay bounded: the
        // line that would pass the bound is dropped, counted as too long.
        if now_pending > held {
            let grew = now_pending - held;
            let total = shared.pending.fetch_add(grew, Ordering::AcqRel) + grew;
            held = now_pending;
            if total > limits.max_pending_bytes && framer.drop_partial() {
                shared
                    .shard
                    .with(|s| s.count_discarded(ParseError::TooLong));
                shared.stats.pending_full.incr();
                shared.pending.fetch_sub(held, Ordering::AcqRel);
                held = 0;
                line_started = None;
            }
        } else {
            shared
                .pending
                .fetch_sub(held - now_pending, Ordering::AcqRel);
            held = now_pending;
        }
    };
    shared.pending.fetch_sub(held, Ordering::AcqRel);
    end
}
