//! The flush: every interval, take the shards out, merge them, render the
//! payload and hand it to the publisher. Merge and render are CPU-heavy at a
//! million names, so each flush runs on a blocking thread, never on the
//! runtime that serves TCP intake, `istats` and the publisher.
//!
//! - [`payload`]: the pure core (snapshot + stats + settings -> payload).
//! - [`keys`]: the server's own stats, read from their owners as keys.

pub mod extended;
pub mod keys;
pub mod payload;

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::aggregate::{merge, GaugeState};
use crate::intake::printable;
use crate::logging::{print_line, Logs};
use crate::net::kernel_view::KernelView;
use crate::render::RenderConfig;
use crate::sink::{Fanout, Payload};
use crate::stats::unix_now;

pub use keys::{own_keys, FlushStats, LastFlush, OwnStats, StatSources, OWN_KEYS};
pub use payload::{build, build_with, FlushReport};

/// What shapes a flush beyond the rendering.
#[derive(Debug, Clone)]
pub struct FlushSettings {
    /// Paths, prefixes and timer maths.
    pub render: RenderConfig,
    /// Timer samples kept per series (the merge keeps the bound).
    pub max_timer_samples: usize,
    /// `-d`: per-flush internals on stdout.
    pub debug: bool,
    /// `-d -m TEXT`: echo outgoing lines containing TEXT.
    pub debug_metric: Option<String>,
    /// `-q`: no per-flush status line.
    pub quiet: bool,
    /// The Etsy-style outputs (`--etsy`, or the original's flags asking for
    /// them); None: the original's render.
    pub outputs: Option<std::sync::Arc<crate::render::etsy::Outputs>>,
}

/// The running flush settings, swapped whole (never half-updated) by a
/// reload; each flush takes one snapshot at its start.
pub type SettingsSlot = Arc<arc_swap::ArcSwap<FlushSettings>>;

/// Turns the interval's shards into one Graphite payload.
pub struct Flusher {
    /// Settings, read once per flush: SIGHUP swaps them between flushes.
    settings: SettingsSlot,
    /// Every component's stats (and the shards, through `sources.shards`).
    sources: StatSources,
    /// Gauge values remembered across flushes.
    gauges: GaugeState,
    /// Rate-limited stderr.
    logs: Arc<Logs>,
    /// Hands payloads to the publishers (split by destination, on this thread).
    payloads: Fanout,
    /// The kernel's drop counts for the UDP sockets.
    kernel: KernelView,
    /// Timestamp of the previous flush.
    last_timestamp: u64,
    /// Flushes made so far.
    flushes: u64,
    /// The extended outputs' state across flushes, when they are on.
    extended: Option<extended::ExtendedState>,
    /// `--etsy`: timestamps rounded (Etsy's `Math.round(now / 1000)`).
    round_timestamps: bool,
}

impl Flusher {
    /// A flusher over `sources.shards`, sending payloads to `payloads`.
    pub fn new(
        settings: FlushSettings,
        sources: StatSources,
        gauges: GaugeState,
        logs: Arc<Logs>,
        payloads: Fanout,
        kernel: KernelView,
    ) -> Flusher {
        Flusher {
            settings: Arc::new(arc_swap::ArcSwap::from_pointee(settings)),
            sources,
            gauges,
            logs,
            payloads,
            kernel,
            last_timestamp: 0,
            flushes: 0,
            extended: None,
            round_timestamps: false,
        }
    }

    /// Turns the extended outputs' state on (with `FlushSettings::outputs`);
    /// `round_timestamps` under `--etsy`.
    pub fn with_extended(
        mut self,
        idle: crate::render::etsy::IdleSeries,
        round_timestamps: bool,
    ) -> Flusher {
        self.extended = Some(extended::ExtendedState::new(idle));
        self.round_timestamps = round_timestamps;
        self
    }

    /// The slot a reload stores new settings in.
    pub fn settings_slot(&self) -> SettingsSlot {
        self.settings.clone()
    }

    /// One flush; `last` marks the final one at shutdown. Blocking: call it
    /// off the runtime.
    pub fn flush(&mut self, last: bool) {
        self.flush_at(last, None);
    }

    /// One flush; `slot` is the timestamp of an aligned flush
    /// (`--flush-align`), else the clock's. Blocking: call it off the runtime.
    pub fn flush_at(&mut self, last: bool, slot: Option<u64>) {
        let started = Instant::now();
        let settings = self.settings.load_full();
        // Read before any lock: /proc is slow to read at many sockets.
        let kernel = self.kernel.read();
        let before = self.sources.flush.get();
        let taken = self.sources.shards.iter().map(|cell| cell.take()).collect();
        if let Some(cell) = self.sources.shards.first() {
            cell.reset_name_budget();
        }
        // From here the interval's lines are out of the shards: `istats`
        // says a flush is being merged and rendered.
        self.sources.flush.set_running(true);
        let mut snapshot = merge(taken, &mut self.gauges, settings.max_timer_samples);
        // The final flush at SIGTERM can come within a second of a regular
        // one: it takes the next second, or carbon would replace the full
        // interval's points with the partial one's. (Regular flushes keep
        // the clock: with sub-second intervals seconds repeat by design.)
        let clock = unix_now();
        let now = match slot {
            Some(slot) => slot,
            None if self.round_timestamps => clock.round() as u64,
            None => clock as u64,
        };
        let timestamp = if last {
            now.max(self.last_timestamp + 1)
        } else {
            now
        };
        self.last_timestamp = timestamp;
        let mut own = self.sources.read(snapshot.intake);
        own.flush.udp_kernel_drops = kernel.map_or(before.udp_kernel_drops, |k| k.drops);
        own.flush.udp_foreign_sockets = kernel.map_or(0, |k| k.foreign_sockets);
        own.flush.gauges_remembered = self.gauges.len() as u64;
        own.flush.gauges_forgotten = self.gauges.forgotten;
        let (payload, report) = match (&settings.outputs, &mut self.extended) {
            (Some(outputs), Some(state)) => {
                state.idle.fill(&mut snapshot, &mut self.gauges);
                let interval = settings.render.flush_interval;
                let values = state.values(
                    &snapshot,
                    &own,
                    interval,
                    timestamp,
                    started.elapsed(),
                    clock,
                );
                let built = extended::build(
                    &mut snapshot,
                    &own,
                    &settings.render,
                    outputs,
                    &values,
                    timestamp,
                );
                state.sent(&built.0);
                built
            }
            _ => {
                let extra = self.sources.extra_keys();
                build_with(&mut snapshot, &own, &extra, &settings.render, timestamp)
            }
        };
        self.sources.flush.update(|stats| {
            stats.intake_total.add(&snapshot.intake);
            stats.render = report.render;
            stats.render_total = report.total_lines;
            stats.udp_kernel_drops = own.flush.udp_kernel_drops;
            stats.udp_foreign_sockets = own.flush.udp_foreign_sockets;
            stats.gauges_remembered = own.flush.gauges_remembered;
            stats.gauges_forgotten = own.flush.gauges_forgotten;
        });
        self.report(
            &settings,
            &snapshot,
            &payload,
            &report,
            own.flush.udp_foreign_sockets,
            started,
        );
        self.payloads.send(payload);
        let duration = started.elapsed().as_secs_f64();
        self.sources.flush.update(|stats| stats.duration = duration);
        self.sources.flush.set_running(false);
        self.flushes += 1;
    }

    /// Every shard, in order (UDP workers, TCP, Unix socket).
    pub fn shards(&self) -> &[Arc<crate::intake::ShardCell>] {
        &self.sources.shards
    }

    /// The gauge values remembered across flushes.
    pub fn gauges_mut(&mut self) -> &mut GaugeState {
        &mut self.gauges
    }

    /// Flushes made so far (the final one included).
    pub fn flushes(&self) -> u64 {
        self.flushes
    }

    /// Status line, debug output and the bad-line summary of one flush.
    fn report(
        &self,
        settings: &FlushSettings,
        snapshot: &crate::aggregate::Snapshot,
        payload: &Payload,
        report: &FlushReport,
        foreign: u64,
        started: Instant,
    ) {
        let intake = &snapshot.intake;
        if let (true, Some(text)) = (settings.debug, &settings.debug_metric) {
            for line in payload.data.split(|b| *b == b'\n') {
                let line = String::from_utf8_lossy(line);
                if line.contains(text.as_str()) {
                    print_line(&format!("outgoing: {line}"));
                }
            }
        }
        if settings.debug {
            print_line(&format!(
                "flush internals: {} lines in, {} discarded, {} packets, {} bytes, {} names refused, {} gauges remembered",
                intake.lines, intake.discarded, intake.packets, intake.bytes, intake.names_refused, self.gauges.len()
            ));
        } else if let Some((line, error)) = &snapshot.sample_bad_line {
            let count = intake.discarded;
            self.logs.bad_input.error(|| {
                format!("discarded {count} bad lines this interval, e.g. {:?}: {error} (run with -d to see each)", printable(line))
            });
        }
        if foreign > 0 {
            self.logs.intake.error(|| {
                format!("{foreign} other socket(s) bound to our UDP port: with SO_REUSEPORT they take a share of the datagrams (see udp.foreign_sockets)")
            });
        }
        if intake.names_refused > 0 {
            let refused = intake.names_refused;
            self.logs.intake.error(|| {
                format!("--max-names reached: {refused} lines with new names dropped this interval (see metrics.names_refused)")
            });
        }
        if !settings.quiet {
            print_line(&format!(
                "flushed {} lines ({} names) in {:.6}s",
                report.total_lines,
                report.names,
                started.elapsed().as_secs_f64()
            ));
        }
    }
}

/// Work for the flush thread: a flush, or a visit to the flusher's state
/// between flushes (the management console reads and deletes series there,
/// so no flush can take the shards or the gauges halfway).
enum Job {
    /// One flush (`true`: the final one), stamped with the aligned slot's
    /// timestamp if any (`--flush-align`); says when it is done.
    Flush(bool, Option<u64>, oneshot::Sender<()>),
    /// Runs on the flusher between flushes.
    Visit(Box<dyn FnOnce(&mut Flusher) + Send>),
}

/// The flush's own thread: merge and render never run on the runtime.
pub struct FlushThread {
    /// Flushes and visits, in order.
    requests: std::sync::mpsc::Sender<Job>,
    /// Joined at the end, so the last payload is handed over before return.
    thread: std::thread::JoinHandle<()>,
}

/// Runs visits on the flush thread from elsewhere (the management console).
/// The thread ends only once every handle is dropped, so holders drop theirs
/// before [`FlushThread::finish`].
#[derive(Clone)]
pub struct FlushHandle {
    /// The flush thread's queue.
    requests: std::sync::mpsc::Sender<Job>,
}

impl FlushHandle {
    /// Runs `visit` on the flusher between flushes and returns its result,
    /// without blocking the runtime.
    pub async fn visit<R: Send + 'static>(
        &self,
        visit: impl FnOnce(&mut Flusher) -> R + Send + 'static,
    ) -> io::Result<R> {
        let (done, finished) = oneshot::channel();
        let gone = || io::Error::other("the flush thread stopped");
        let job = Job::Visit(Box::new(move |flusher| {
            let _ = done.send(visit(flusher));
        }));
        self.requests.send(job).map_err(|_| gone())?;
        finished.await.map_err(|_| gone())
    }
}

impl FlushThread {
    /// Starts the thread that owns `flusher`.
    pub fn start(mut flusher: Flusher) -> io::Result<FlushThread> {
        let (requests, incoming) = std::sync::mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("flush".into())
            .spawn(move || {
                for job in incoming {
                    match job {
                        Job::Flush(last, slot, done) => {
                            flusher.flush_at(last, slot);
                            let _ = done.send(());
                        }
                        Job::Visit(visit) => visit(&mut flusher),
                    }
                }
            })?;
        Ok(FlushThread { requests, thread })
    }

    /// A handle that runs visits on the thread.
    pub fn handle(&self) -> FlushHandle {
        FlushHandle {
            requests: self.requests.clone(),
        }
    }

    /// Runs one flush on the thread and waits for it without blocking the
    /// runtime.
    pub async fn flush(&self, last: bool) -> io::Result<()> {
        self.flush_slot(last, None).await
    }

    /// Runs one flush stamped `slot` (None: the clock) and waits for it.
    async fn flush_slot(&self, last: bool, slot: Option<u64>) -> io::Result<()> {
        let (done, finished) = oneshot::channel();
        let gone = || io::Error::other("the flush thread stopped (panicked)");
        self.requests
            .send(Job::Flush(last, slot, done))
            .map_err(|_| gone())?;
        finished.await.map_err(|_| gone())
    }

    /// Flushes every `interval` until `stop`; `align`: at wall-clock
    /// multiples of it (`--flush-align`).
    pub async fn every(
        &self,
        interval: Duration,
        align: bool,
        stop: &CancellationToken,
    ) -> io::Result<()> {
        if align {
            return self.every_aligned(interval, stop).await;
        }
        let start = tokio::time::Instant::now() + interval;
        let mut ticker = tokio::time::interval_at(start, interval);
        // A flush longer than the interval delays the next one rather than
        // bunching flushes up.
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => self.flush(false).await?,
                _ = stop.cancelled() => return Ok(()),
            }
        }
    }

    /// Flushes at every wall-clock multiple of `interval`, each stamped
    /// with its multiple: a late flush is followed at once by the next, so
    /// no slot is skipped and timestamps never drift.
    async fn every_aligned(&self, interval: Duration, stop: &CancellationToken) -> io::Result<()> {
        let step = interval.as_secs_f64();
        let next_after = |now: f64| (now / step).floor() + 1.0;
        let mut slot = next_after(unix_now());
        loop {
            let mut wait = slot * step - unix_now();
            if wait > step {
                // The clock was set back: start from its new time.
                slot = next_after(unix_now());
                wait = slot * step - unix_now();
            }
            let sleep = tokio::time::sleep(Duration::from_secs_f64(wait.max(0.0)));
            tokio::select! {
                _ = sleep => {
                    self.flush_slot(false, Some((slot * step).floor() as u64)).await?;
                    slot += 1.0;
                }
                _ = stop.cancelled() => return Ok(()),
            }
        }
    }

    /// Ends the thread once its work is done; the flusher (and with it the
    /// publisher's channel) is dropped.
    pub async fn finish(self) {
        drop(self.requests);
        let thread = self.thread;
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
}
