//! TCP intake: an accept loop bounded in connections, and a task per
//! connection that frames lines and hands them to the shared TCP shard.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

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
}

/// How long shutdown waits for a TCP peer's already-sent bytes.
const TCP_DRAIN: Duration = Duration::from_millis(50);
/// Longest shutdown waits for all TCP connections to hand over their lines.
const TCP_DRAIN_ALL: Duration = Duration::from_secs(2);
/// Pause after a failed accept (EMFILE and friends) so the loop cannot spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// Accepts TCP connections until `stop`; then takes in what the peers had
/// already sent (queued connections included) before returning.
pub async fn accept_loop(
    listener: tokio::net::TcpListener,
    shard: Arc<ShardCell>,
    intake: Arc<Intake>,
    stats: Arc<TcpStats>,
    limits: TcpLimits,
    stop: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
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
                intake
                    .logs
                    .intake
                    .error(|| format!("TCP accept failed: {e}"));
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            stats.refused.incr();
            intake.logs.intake.error(|| {
                format!(
                    "refused TCP connection from {peer}: {} connections open (--tcp-max-connections)",
                    limits.max_connections
                )
            });
            continue;
        };
        stats.accepted.incr();
        stats.open.incr();
        let (shard, intake, stats, stop) =
            (shard.clone(), intake.clone(), stats.clone(), stop.clone());
        connections.spawn(async move {
            let idle = connection(stream, &shard, &intake, limits, stop).await;
            if idle {
                stats.idle_closed.incr();
                intake.logs.intake.error(|| {
                    format!(
                        "closed TCP connection from {peer}: silent for {:?} (--tcp-idle-timeout)",
                        limits.idle_timeout
                    )
                });
            }
            stats.open.decr();
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
async fn connection(
    mut stream: tokio::net::TcpStream,
    shard: &ShardCell,
    intake: &Intake,
    limits: TcpLimits,
    stop: CancellationToken,
) -> bool {
    let mut framer = LineFramer::new(limits.max_line_bytes);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        // While stopping, only what the peer already sent is taken in.
        let stopping = stop.is_cancelled();
        let wait = if stopping {
            TCP_DRAIN
        } else {
            limits.idle_timeout
        };
        let read = tokio::select! {
            read = tokio::time::timeout(wait, stream.read(&mut chunk)) => read,
            _ = stop.cancelled(), if !stopping => continue,
        };
        let n = match read {
            Err(_) => {
                framer.finish(|| shard.with(|s| s.count_discarded(ParseError::CutOff)));
                return !stopping;
            }
            Ok(Ok(0)) | Ok(Err(_)) => {
                framer.finish(|| shard.with(|s| s.count_discarded(ParseError::CutOff)));
                return false;
            }
            Ok(Ok(n)) => n,
        };
        shard.with(|shard| {
            framer.feed(&chunk[..n], |lines| intake.ingest(shard, lines));
            for _ in 0..framer.take_overlong() {
                shard.count_discarded(ParseError::TooLong);
            }
        });
    }
}
