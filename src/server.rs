//! Wires the pieces together: bind, receive, flush on a timer, publish, and
//! shut down cleanly. [`run`] takes already-bound sockets and a shutdown
//! future so tests bind port 0 and never sleep-and-hope.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::admin;
use crate::aggregate::{merge, GaugeState, Hasher, IntakeCounts, Shard};
use crate::alert::nsca::load_send_nsca_config;
use crate::alert::{
    local_hostname, run_alert_loop, Encryption, HealthSnapshot, NscaClient, NscaError,
};
use crate::config::Config;
use crate::intake::{printable, Intake};
use crate::logging::{print_line, Logs};
use crate::net::{self, TcpLimits};
use crate::render::{render_meta, render_metrics};
use crate::sink::{Carbon, Payload, Publisher, Target};
use crate::stats::{self, unix_now, ServerStats};

/// The sockets a server runs on, bound before it starts.
#[derive(Debug)]
pub struct Listeners {
    /// One UDP socket per receive worker, all on the metrics port.
    pub udp: Vec<std::net::UdpSocket>,
    /// TCP listener on the metrics port.
    pub tcp: std::net::TcpListener,
    /// XML-RPC monitoring listener, unless turned off.
    pub monitor: Option<std::net::TcpListener>,
}

/// Binds UDP then TCP on the same port; with port 0, retries until a port
/// is free for both.
fn bind_metrics(
    addr: SocketAddr,
    workers: usize,
    udp_buffer: usize,
) -> io::Result<(Vec<std::net::UdpSocket>, std::net::TcpListener)> {
    let mut last_error = None;
    for _ in 0..if addr.port() == 0 { 20 } else { 1 } {
        let udp = net::bind_udp(addr, workers, udp_buffer)?;
        let port = udp[0].local_addr()?.port();
        match net::bind_tcp(SocketAddr::new(addr.ip(), port)) {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("no free port")))
}

impl Listeners {
    /// Binds every socket the config asks for.
    pub fn bind(config: &Config) -> io::Result<Listeners> {
        let candidates = net::resolve_bind_address(&config.cli.name, config.cli.port)?;
        let mut last_error = None;
        for addr in candidates {
            let (udp, tcp) = match bind_metrics(addr, config.workers, config.cli.udp_buffer) {
                Ok(pair) => pair,
                Err(e) => {
                    last_error = Some(e);
                    continue;
                }
            };
            let monitor = match config.monitor_port() {
                Some(port) => Some(net::bind_tcp(SocketAddr::new(addr.ip(), port)).map_err(
                    |e| {
                        io::Error::new(
                            e.kind(),
                            format!("monitor port {}: {e}", SocketAddr::new(addr.ip(), port)),
                        )
                    },
                )?),
                None => None,
            };
            return Ok(Listeners { udp, tcp, monitor });
        }
        Err(last_error.unwrap_or_else(|| io::Error::other("no address to bind")))
    }

    /// The metrics address (UDP and TCP share it).
    pub fn metrics_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// Warnings worth a line at start: a UDP receive buffer smaller than
    /// asked for (the kernel caps it at net.core.rmem_max for non-root).
    pub fn warnings(&self, asked_udp_buffer: usize) -> Vec<String> {
        let Some(socket) = self.udp.first() else {
            return Vec::new();
        };
        // Linux reports twice the usable size it granted.
        let granted = socket2::SockRef::from(socket)
            .recv_buffer_size()
            .unwrap_or(0)
            / 2;
        if granted >= asked_udp_buffer {
            return Vec::new();
        }
        vec![format!(
            "UDP receive buffer is {granted} bytes, not the {asked_udp_buffer} asked (--udp-buffer): \
             raise it with `sysctl -w net.core.rmem_max={}` or bursts may be dropped \
             (counted in udp.kernel_drops)",
            asked_udp_buffer * 2
        )]
    }

    /// One line for the log: where the server listens.
    pub fn describe(&self) -> String {
        let metrics = self
            .metrics_addr()
            .map_or_else(|e| e.to_string(), |a| a.to_string());
        let monitor = match &self.monitor {
            Some(l) => l
                .local_addr()
                .map_or_else(|e| e.to_string(), |a| format!("on {a}")),
            None => "off".into(),
        };
        format!(
            "listening for metrics on udp+tcp {metrics} ({} UDP workers), monitor (XML-RPC) {monitor}",
            self.udp.len()
        )
    }
}

/// Turns the interval's shards into one Graphite payload.
struct Flusher {
    /// Every shard: one per UDP worker, then the TCP one.
    shards: Vec<Arc<Mutex<Shard>>>,
    /// Gauge values remembered across flushes.
    gauges: GaugeState,
    /// Settings.
    config: Config,
    /// Server stats.
    stats: Arc<Mutex<ServerStats>>,
    /// Rate-limited stderr.
    logs: Arc<Logs>,
    /// Hands payloads to the publisher.
    payloads: mpsc::UnboundedSender<Payload>,
    /// The metrics UDP port, to read the kernel's drop count.
    udp_port: u16,
    /// Timestamp of the previous flush.
    last_timestamp: u64,
}

impl Flusher {
    fn flush(&mut self, last: bool) {
        let started = Instant::now();
        let taken: Vec<Shard> = self.shards.iter().map(|s| s.lock().take()).collect();
        if let Some(shard) = self.shards.first() {
            shard.lock().reset_name_budget();
        }
        let mut snapshot = merge(
            taken,
            &mut self.gauges,
            self.config.limits.max_timer_samples,
        );
        // The final flush at SIGTERM can come within a second of a regular
        // one: it takes the next second, or carbon would replace the full
        // interval's points with the partial one's. (Regular flushes keep
        // the clock: with sub-second intervals seconds repeat by design.)
        let now = unix_now() as u64;
        let timestamp = if last {
            now.max(self.last_timestamp + 1)
        } else {
            now
        };
        self.last_timestamp = timestamp;
        let names = snapshot.counters.len()
            + snapshot.gauges.len()
            + snapshot.timers.len()
            + snapshot.sets.len();
        let mut out = Vec::with_capacity(64 * (names + snapshot.timers.len() * 4) + 4096);
        let render = render_metrics(&mut snapshot, &self.config.render, timestamp, &mut out);
        let total = render.lines + stats::key_count() + 1;
        let meta = {
            let mut stats = self.stats.lock();
            if let Some(drops) = net::kernel_udp_drops(self.udp_port) {
                stats.udp_kernel_drops = drops;
            }
            stats.gauges_remembered = self.gauges.len() as u64;
            stats.gauges_forgotten = self.gauges.forgotten;
            let meta = stats.keys(&snapshot.intake, &render, total);
            stats.intake_total.add(&snapshot.intake);
            stats.render = render;
            stats.render_total = total;
            meta
        };
        render_meta(
            &meta,
            render.lines,
            &self.config.render,
            timestamp,
            &mut out,
        );
        self.report(
            &snapshot.intake,
            &snapshot.sample_bad_line,
            &out,
            total,
            names,
            started,
        );
        let _ = self.payloads.send(Payload {
            data: out,
            lines: total,
        });
        self.stats.lock().flush_duration = started.elapsed().as_secs_f64();
    }

    /// Status line, debug output and the bad-line summary of one flush.
    fn report(
        &self,
        intake: &IntakeCounts,
        sample_bad_line: &Option<(Box<[u8]>, crate::protocol::ParseError)>,
        out: &[u8],
        total: usize,
        names: usize,
        started: Instant,
    ) {
        let cli = &self.config.cli;
        if cli.debug && !cli.debug_metric.is_empty() {
            for line in out.split(|b| *b == b'\n') {
                let line = String::from_utf8_lossy(line);
                if line.contains(cli.debug_metric.as_str()) {
                    print_line(&format!("outgoing: {line}"));
                }
            }
        }
        if cli.debug {
            print_line(&format!(
                "flush internals: {} lines in, {} discarded, {} packets, {} bytes, {} names refused, {} gauges remembered",
                intake.lines, intake.discarded, intake.packets, intake.bytes, intake.names_refused, self.gauges.len()
            ));
        } else if let Some((line, error)) = sample_bad_line {
            let count = intake.discarded;
            self.logs.bad_input.error(|| {
                format!("discarded {count} bad lines this interval, e.g. {:?}: {error} (run with -d to see each)", printable(line))
            });
        }
        if intake.names_refused > 0 {
            let refused = intake.names_refused;
            self.logs.intake.error(|| {
                format!("--max-names reached: {refused} lines with new names dropped this interval (see metrics.names_refused)")
            });
        }
        if !cli.quiet {
            print_line(&format!(
                "flushed {total} lines ({names} names) in {:.6}s",
                started.elapsed().as_secs_f64()
            ));
        }
    }
}

/// The `istats` JSON: the server's stats plus what the shards hold now.
pub fn istats_json(stats: &Mutex<ServerStats>, shards: &[Arc<Mutex<Shard>>]) -> String {
    let mut live = IntakeCounts::default();
    for shard in shards {
        live.add(&shard.lock().intake);
    }
    stats.lock().istats_json(&live)
}

/// The NSCA client `-a` asks for, from the flags and `--nsca-config`; an
/// unreadable file or an unsupported method refuses the start.
pub fn nsca_client(config: &Config) -> io::Result<NscaClient> {
    let cli = &config.cli;
    let invalid = |e: NscaError| io::Error::new(io::ErrorKind::InvalidInput, e.to_string());
    let mut client = NscaClient::new(cli.nsca_host.clone(), cli.nsca_port);
    if let Some(path) = &cli.nsca_config {
        client = client.with_config(&load_send_nsca_config(path).map_err(invalid)?);
    }
    if let Some(password) = &cli.nsca_password {
        client.password = password.clone().into_bytes();
    }
    if let Some(method) = &cli.nsca_encryption {
        client.encryption = method.parse::<Encryption>().map_err(invalid)?;
    }
    if cli.nsca_legacy_packet {
        client.legacy_packet = true;
    }
    Ok(client)
}

/// Starts the NSCA loop when `-a` is given.
fn spawn_alerts(
    config: &Config,
    stats: Arc<Mutex<ServerStats>>,
    logs: Arc<Logs>,
    mut stop: watch::Receiver<bool>,
) -> io::Result<Option<tokio::task::JoinHandle<()>>> {
    if !config.cli.alert {
        return Ok(None);
    }
    let client = nsca_client(config)?;
    let host_name = config
        .cli
        .nsca_hostname
        .clone()
        .unwrap_or_else(local_hostname);
    let service = config
        .cli
        .nsca_service
        .clone()
        .unwrap_or_else(|| config.cli.metadata_prefix.clone());
    let health_stats = stats.clone();
    let health: Arc<dyn Fn() -> HealthSnapshot + Send + Sync> = Arc::new(move || {
        let stats = health_stats.lock();
        HealthSnapshot {
            flushes_ok: stats.publish_ok,
            flushes_failed: stats.publish_error_socket + stats.publish_error_unknown,
            last_lines_published: stats.last_publish_lines,
            last_publish_duration: stats.last_publish_duration,
            last_publish_time: stats.last_publish_time,
        }
    });
    let target = format!("{}:{}", client.host, client.port);
    let on_error: Arc<dyn Fn(&NscaError) + Send + Sync> = Arc::new(move |error| {
        logs.alert
            .error(|| format!("NSCA check to {target} failed: {error}"));
    });
    // The loop counts into the AlertStats that ServerStats::keys reads.
    let alert_stats = stats.lock().alert.clone();
    // Bridge from the server's stop signal to the loop's token.
    let shutdown = CancellationToken::new();
    let cancel = shutdown.clone();
    tokio::spawn(async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
        cancel.cancel();
    });
    Ok(Some(tokio::spawn(run_alert_loop(
        client,
        host_name,
        service,
        config.alert_interval(),
        health,
        alert_stats,
        on_error,
        shutdown,
    ))))
}

/// Runs the server on bound sockets until `shutdown` resolves, then stops
/// reading, flushes what it holds, waits (bounded) for the last publish and
/// returns.
pub async fn run(
    listeners: Listeners,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let logs = Arc::new(Logs::default());
    let stats = Arc::new(Mutex::new(ServerStats::starting_now()));
    let hasher = Hasher::new();
    let new_names = Arc::new(AtomicUsize::new(0));
    let shards: Vec<Arc<Mutex<Shard>>> = (0..listeners.udp.len() + 1)
        .map(|_| {
            Arc::new(Mutex::new(Shard::with_budget(
                hasher.clone(),
                config.limits,
                new_names.clone(),
            )))
        })
        .collect();
    let intake = Arc::new(Intake {
        debug: config.cli.debug,
        debug_metric: (!config.cli.debug_metric.is_empty())
            .then(|| config.cli.debug_metric.clone()),
        logs: logs.clone(),
    });
    let udp_port = listeners.metrics_addr()?.port();

    let stop = Arc::new(AtomicBool::new(false));
    let mut udp_threads = Vec::new();
    // Duplicates keep the sockets open until after the final flush, which
    // reads the kernel's drop counts from /proc (closed sockets vanish there).
    let udp_open_until_final_flush: Vec<std::net::UdpSocket> = listeners
        .udp
        .iter()
        .filter_map(|socket| socket.try_clone().ok())
        .collect();
    for (index, socket) in listeners.udp.into_iter().enumerate() {
        let (shard, intake, stop) = (shards[index].clone(), intake.clone(), stop.clone());
        udp_threads.push(
            std::thread::Builder::new()
                .name(format!("udp-{index}"))
                .spawn(move || net::udp_worker(socket, shard, intake, stop))?,
        );
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let tcp_shard = shards[shards.len() - 1].clone();
    let tcp_task = tokio::spawn(net::tcp_accept_loop(
        tokio::net::TcpListener::from_std(listeners.tcp)?,
        tcp_shard,
        intake.clone(),
        stats.clone(),
        TcpLimits {
            max_connections: config.cli.tcp_max_connections,
            idle_timeout: config.tcp_idle_timeout(),
            max_line_bytes: config.cli.max_line_bytes,
        },
        stop_rx.clone(),
    ));

    let monitor_task = match listeners.monitor {
        Some(listener) => {
            let (stats, shards) = (stats.clone(), shards.clone());
            let source: admin::IstatsSource = Arc::new(move || istats_json(&stats, &shards));
            let mut stop = stop_rx.clone();
            Some(tokio::spawn(admin::serve(
                tokio::net::TcpListener::from_std(listener)?,
                source,
                admin::AdminLimits::default(),
                async move {
                    let _ = stop.wait_for(|stopped| *stopped).await;
                },
            )))
        }
        None => None,
    };

    let target = if config.cli.console {
        Target::Console
    } else {
        Target::Graphite(Carbon {
            host: config.cli.graphite_host.clone(),
            port: config.cli.graphite_port,
            connect_timeout: Duration::from_secs_f64(config.cli.graphite_connect_timeout),
            write_timeout: Duration::from_secs_f64(config.cli.graphite_write_timeout),
        })
    };
    let (payloads, payloads_rx) = mpsc::unbounded_channel();
    let publisher = Publisher::new(
        target,
        config.cli.backlog_max_bytes,
        config.cli.backlog_max_lines,
        stats.clone(),
        logs.clone(),
        config.flush_interval,
    );
    let publisher_task = tokio::spawn(publisher.run(payloads_rx, config.shutdown_timeout()));

    let alert_task = spawn_alerts(&config, stats.clone(), logs.clone(), stop_rx.clone())?;

    let interval = config.flush_interval;
    let mut flusher = Flusher {
        shards,
        gauges: GaugeState::bounded(hasher, config.gauge_ttl_flushes(), config.cli.max_names),
        config,
        stats,
        logs,
        payloads,
        udp_port,
        last_timestamp: 0,
    };
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = ticker.tick() => flusher.flush(false),
            _ = &mut shutdown => break,
        }
    }

    // Stop reading, let every receiver hand over what it holds, flush once more.
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = stop_tx.send(true);
    let _ = tokio::task::spawn_blocking(move || {
        for thread in udp_threads {
            let _ = thread.join();
        }
    })
    .await;
    let _ = tcp_task.await;
    if let Some(task) = alert_task {
        task.abort();
    }
    if let Some(task) = monitor_task {
        let _ = task.await;
    }
    flusher.flush(true);
    drop(udp_open_until_final_flush);
    drop(flusher);
    let _ = publisher_task.await;
    Ok(())
}
