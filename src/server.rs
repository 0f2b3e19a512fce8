//! Wiring, and nothing else: starts every component on already-bound
//! sockets, runs until `shutdown` is cancelled, then stops them in the order
//! that loses nothing: intake drains, the final flush runs, the publisher
//! makes its last (bounded) attempt.

use std::io;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::admin;
use crate::aggregate::{GaugeState, Hasher, NameRegistry, Shard};
use crate::alert::{run_alert_loop, AlertStats, HealthSnapshot, NscaError};
use arc_swap::{ArcSwap, ArcSwapOption};

use crate::config::{AlertSettings, Config, ParseOutcome};
use crate::flush::{FlushThread, Flusher, StatSources};
use crate::intake::{Intake, ShardCell};
use crate::logging::{eprint_line, Logs};
use crate::mgmt::{self, Console};
use crate::net::{self, Listeners};
use crate::proxy;
use crate::reload;
use crate::render::etsy::IdleSeries;
use crate::sink::{Fanout, PublishSources, Publisher, Target};

/// Runs the server on bound sockets until `shutdown` is cancelled, then
/// stops reading, flushes what it holds, waits (bounded) for the last
/// publish and returns.
pub async fn run(
    listeners: Listeners,
    config: Config,
    shutdown: CancellationToken,
) -> io::Result<()> {
    run_with_reloads(listeners, config, shutdown, None).await
}

/// As [`run`]; each message on `reloads` (SIGHUP under `--config`) reads
/// the settings again and applies what can change ([`reload`]).
pub async fn run_with_reloads(
    listeners: Listeners,
    config: Config,
    shutdown: CancellationToken,
    reloads: Option<mpsc::UnboundedReceiver<()>>,
) -> io::Result<()> {
    let logs = Arc::new(Logs::default());
    let kernel =
        net::kernel_view::KernelView::new(listeners.metrics_addr()?.port(), &listeners.udp);
    // One shard per UDP worker, then the TCP one, then the Unix socket's;
    // one name budget for all.
    let hasher = Hasher::new();
    let names = Arc::new(NameRegistry::default());
    let intake_limits = Arc::new(ArcSwap::from_pointee(config.limits));
    let queues = listeners.udp_queues.max(1);
    let tcp_shard = listeners.udp.len().div_ceil(queues);
    let shard_count = tcp_shard + 1 + usize::from(listeners.unix.is_some());
    let shards: Vec<Arc<ShardCell>> = (0..shard_count)
        .map(|_| {
            let shard =
                Shard::with_live_limits(hasher.clone(), intake_limits.clone(), names.clone());
            Arc::new(ShardCell::new(shard))
        })
        .collect();
    let mut sources = StatSources::starting_now(shards.clone());
    let proxy = match config.proxy.clone() {
        Some(settings) => Some(Arc::new(proxy::Shared::new(settings)?)),
        None => None,
    };
    sources.proxy = proxy.as_ref().map(|p| p.stats.clone());
    let forward = match &proxy {
        Some(shared) => Some(Arc::new(proxy::TcpForward::new(shared.clone())?)),
        None => None,
    };
    // One publisher per destination (stdout counts as one).
    let targets: Vec<Target> = match &config.target {
        Target::Console => vec![Target::Console],
        // Flushes are computed (mgmt, istats) and sent nowhere: no publisher.
        Target::Nowhere => Vec::new(),
        Target::Graphite(_) => config
            .ring
            .destinations
            .iter()
            .map(|d| Target::Graphite(d.carbon.clone()))
            .collect(),
    };
    if targets.len() > 1 {
        let names = config
            .ring
            .destinations
            .iter()
            .map(|d| d.stat_name())
            .collect();
        sources.publish = PublishSources::new(names);
    }
    let intake = Arc::new(Intake {
        max_line_bytes: AtomicUsize::new(config.limits.max_line_bytes),
        debug: config.flush.debug,
        debug_metric: config.flush.debug_metric.clone(),
        signed_gauges_set: config.signed_gauges_set,
        dump_messages: config.etsy.dump_messages,
        etsy_names: config.etsy.etsy_names,
        logs: logs.clone(),
        forward,
    });

    // Duplicates keep the sockets open until after the final flush, which
    // reads the kernel's drop counts from /proc (closed sockets vanish there).
    let udp_open_until_final_flush: Vec<std::net::UdpSocket> = listeners
        .udp
        .iter()
        .filter_map(|socket| socket.try_clone().ok())
        .collect();
    let mut udp_threads = Vec::new();
    let mut udp = listeners.udp.into_iter();
    for (index, shard) in shards.iter().take(tcp_shard).enumerate() {
        let sockets: Vec<std::net::UdpSocket> = udp.by_ref().take(queues).collect();
        let (shard, intake, stop) = (shard.clone(), intake.clone(), shutdown.clone());
        let proxy = proxy.clone();
        udp_threads.push(
            std::thread::Builder::new()
                .name(format!("udp-{index}"))
                .spawn(move || match proxy {
                    Some(shared) => proxy::udp_worker(sockets, shared, &intake.logs.intake, stop),
                    None => net::udp::worker(sockets, shard, intake, stop, None),
                })?,
        );
    }
    let health_task = proxy
        .clone()
        .map(|shared| tokio::spawn(proxy::health::run(shared, shutdown.clone())));
    // The socket file lives until `run` returns: removed after the last read.
    let mut unix_file = None;
    if let Some(input) = listeners.unix {
        let (shard, intake, stop) = (
            shards[tcp_shard + 1].clone(),
            intake.clone(),
            shutdown.clone(),
        );
        let stats = Some(sources.unix.clone());
        udp_threads.push(
            std::thread::Builder::new()
                .name("unix".into())
                .spawn(move || net::udp::worker(vec![input.socket], shard, intake, stop, stats))?,
        );
        unix_file = Some(input.file);
    }
    let tcp_limits = Arc::new(ArcSwap::from_pointee(config.tcp));
    let tcp_task = match listeners.tcp {
        Some(listener) => Some(tokio::spawn(net::tcp::accept_loop(
            tokio::net::TcpListener::from_std(listener)?,
            shards[tcp_shard].clone(),
            intake.clone(),
            sources.tcp.clone(),
            tcp_limits.clone(),
            shutdown.clone(),
        ))),
        None => None,
    };
    let monitor_task = match listeners.monitor {
        Some(listener) => {
            let stats = sources.clone();
            let source: admin::IstatsSource = Arc::new(move || stats.istats_json());
            Some(tokio::spawn(admin::serve(
                tokio::net::TcpListener::from_std(listener)?,
                source,
                admin::AdminLimits::default(),
                shutdown.clone(),
            )))
        }
        None => None,
    };
    let alert_task = config
        .alert
        .clone()
        .map(|alert| spawn_alerts(alert, &sources, logs.clone(), shutdown.clone()));

    let mut outlets: Vec<_> = Vec::with_capacity(targets.len());
    let mut publisher_tasks = Vec::with_capacity(targets.len());
    let target_slot = Arc::new(ArcSwap::from_pointee(config.target.clone()));
    let backlog_limits = Arc::new(ArcSwap::from_pointee(config.backlog));
    // A reload may move the one destination; a ring of several is fixed
    // until a restart (the reload says so).
    let single = targets.len() == 1;
    for (target, (_, stats)) in targets.into_iter().zip(&sources.publish.each) {
        let (outlet, payloads_rx) = mpsc::unbounded_channel();
        let mut publisher = Publisher::new(
            target,
            config.backlog,
            stats.clone(),
            logs.clone(),
            config.flush_interval,
        )
        .max_unconfirmed(config.max_unconfirmed)
        .with_live_limits(backlog_limits.clone());
        if single {
            publisher = publisher.with_retarget(retarget_from(target_slot.clone()));
        }
        outlets.push(outlet);
        publisher_tasks.push(tokio::spawn(
            publisher.run(payloads_rx, config.shutdown_timeout),
        ));
    }
    // With one outlet, everything goes to it whole.
    let payloads = Fanout::spread(&config.ring.destinations, config.ring.spread, outlets);

    let gauges = GaugeState::bounded(
        hasher.clone(),
        config.gauge_ttl_flushes(),
        config.limits.max_names,
    );
    let mgmt_sources = sources.clone();
    let mut flusher = Flusher::new(
        config.flush.clone(),
        sources,
        gauges,
        logs,
        payloads,
        kernel,
    );
    if let Some(outputs) = &config.flush.outputs {
        let idle = IdleSeries::new(
            &hasher,
            outputs.deletes,
            config.gauge_ttl_flushes(),
            config.limits.max_names,
            config.etsy.etsy,
        );
        flusher = flusher.with_extended(idle, config.etsy.etsy);
    }
    let mgmt_limits = Arc::new(ArcSwap::from_pointee(config.mgmt));
    let etsy_file = Arc::new(ArcSwapOption::from(config.etsy_file.clone().map(Arc::new)));
    let slots = reload::Slots {
        flush: flusher.settings_slot(),
        target: target_slot,
        intake_limits,
        intake,
        tcp: tcp_limits,
        mgmt: mgmt_limits.clone(),
        backlog: backlog_limits,
        etsy_file: etsy_file.clone(),
    };
    let reload_task = reloads.map(|hups| tokio::spawn(reload_loop(hups, config.clone(), slots)));
    let flush_thread = FlushThread::start(flusher)?;
    let mgmt_task = match listeners.mgmt {
        Some(listener) => {
            let console = Arc::new(Console::new(
                flush_thread.handle(),
                mgmt_sources,
                etsy_file,
                config.flush_interval,
            ));
            Some(tokio::spawn(mgmt::serve(
                tokio::net::TcpListener::from_std(listener)?,
                console,
                mgmt_limits,
                shutdown.clone(),
            )))
        }
        None => None,
    };
    let regular = flush_thread
        .every(config.flush_interval, config.etsy.flush_align, &shutdown)
        .await;

    // Stop reading, let every receiver hand over what it holds, flush once more.
    shutdown.cancel();
    let _ = tokio::task::spawn_blocking(move || {
        for thread in udp_threads {
            let _ = thread.join();
        }
    })
    .await;
    if let Some(task) = tcp_task {
        let _ = task.await;
    }
    if let Some(task) = alert_task {
        task.abort();
    }
    if let Some(task) = health_task {
        let _ = task.await;
    }
    if let Some(task) = reload_task {
        task.abort();
    }
    if let Some(task) = monitor_task {
        let _ = task.await;
    }
    // Before the flush thread's end: the console holds a handle to it.
    if let Some(task) = mgmt_task {
        let _ = task.await;
    }
    let last = flush_thread.flush(true).await;
    drop(udp_open_until_final_flush);
    // Ends the flush thread, which closes the publishers' channels; they
    // make their last attempts side by side, each within the budget.
    flush_thread.finish().await;
    for task in publisher_tasks {
        let _ = task.await;
    }
    drop(unix_file);
    regular.and(last)
}

/// A reload's new target, once per store into `slot`.
fn retarget_from(slot: Arc<ArcSwap<Target>>) -> crate::sink::publisher::Retarget<Target> {
    let mut seen = slot.load_full();
    Box::new(move || {
        let now = slot.load_full();
        if Arc::ptr_eq(&now, &seen) {
            return None;
        }
        seen = now;
        Some((*seen).clone())
    })
}

/// Reads the settings again on each message, one reload at a time.
async fn reload_loop(
    mut hups: mpsc::UnboundedReceiver<()>,
    mut running: Config,
    slots: reload::Slots,
) {
    while hups.recv().await.is_some() {
        let argv = running.loader.argv.clone();
        let fresh = tokio::task::spawn_blocking(move || Config::parse_from(argv)).await;
        let fresh = fresh.unwrap_or_else(|e| {
            Err(ParseOutcome::Invalid(format!(
                "reading the file failed: {e}"
            )))
        });
        for line in reload::apply(&mut running, fresh, &slots) {
            eprint_line(&format!("statsd: {line}"));
        }
    }
}

/// Starts the NSCA loop; its health is what the publisher counted.
fn spawn_alerts(
    alert: AlertSettings,
    sources: &StatSources,
    logs: Arc<Logs>,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    let publish = sources.publish.clone();
    let health: Arc<dyn Fn() -> HealthSnapshot + Send + Sync> = Arc::new(move || {
        let total = publish.total();
        HealthSnapshot {
            flushes_ok: total.ok,
            flushes_failed: total.error_socket + total.error_unknown,
            last_lines_published: publish.last_lines(),
            last_publish_duration: total.last_duration,
            last_publish_time: total.last_time,
        }
    });
    let target = format!("{}:{}", alert.client.host, alert.client.port);
    let on_error: Arc<dyn Fn(&NscaError) + Send + Sync> = Arc::new(move |error| {
        logs.alert
            .error(|| format!("NSCA check to {target} failed: {error}"));
    });
    let stats: Arc<AlertStats> = sources.alert.clone();
    tokio::spawn(run_alert_loop(
        alert.client,
        alert.host_name,
        alert.service,
        alert.interval,
        health,
        stats,
        on_error,
        shutdown,
    ))
}
