//! The server inside the test process: `statsd::server::run` on sockets
//! bound to port 0, driven by the same flags as the binary, on a tokio
//! runtime of its own (a thread, two workers like the binary). Stopping it
//! cancels the shutdown token, as SIGTERM does in the binary, and waits
//! (bounded) for `run` to return. [`AdminServer`] is `admin::serve` alone on
//! a fixture source, for the endpoint's own tests.
//!
//! A test that needs the process itself (argv, signals, exit codes, stdout
//! and stderr) uses [`super::daemon::Daemon`] instead.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::mpsc::{channel, Receiver};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use statsd::admin::{self, AdminLimits, IstatsSource};
use statsd::config::Config;
use statsd::net::Listeners;
use tokio_util::sync::CancellationToken;

use super::{Statsd, WAIT};

/// A future running on its own runtime thread until its token is cancelled.
struct Running {
    /// What runs, for failure messages.
    what: String,
    /// Cancelled to stop it.
    shutdown: CancellationToken,
    /// What the future returned, once the runtime is shut down too.
    done: Receiver<io::Result<()>>,
    /// The runtime's thread; None once joined.
    thread: Option<JoinHandle<()>>,
}

impl Running {
    /// Builds a runtime with `workers` threads on a new thread and runs the
    /// future `start` makes of the shutdown token on it.
    fn spawn<F, Fut>(what: &str, workers: usize, start: F) -> Running
    where
        F: FnOnce(CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = io::Result<()>>,
    {
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let (tx, done) = channel();
        let thread = std::thread::Builder::new()
            .name(what.to_string())
            .spawn(move || {
                let result = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(workers)
                    .enable_all()
                    .build()
                    .and_then(|runtime| {
                        let result = runtime.block_on(start(token));
                        // Tasks left over end here, before the caller hears
                        // of the return: nothing outlives a stop.
                        runtime.shutdown_timeout(Duration::from_secs(5));
                        result
                    });
                let _ = tx.send(result);
            })
            .expect("start the runtime thread");
        Running {
            what: what.to_string(),
            shutdown,
            done,
            thread: Some(thread),
        }
    }

    /// Cancels the token and waits (bounded by [`WAIT`]) for the future to
    /// return; panics if it does not. None if it was already stopped.
    fn stop(&mut self) -> Option<io::Result<()>> {
        let thread = self.thread.take()?;
        self.shutdown.cancel();
        let result = self.done.recv_timeout(WAIT).unwrap_or_else(|_| {
            panic!(
                "{} did not return within {WAIT:?} of its shutdown",
                self.what
            )
        });
        let _ = thread.join();
        Some(result)
    }

    /// On drop: stops, and unless the test already failed, insists that the
    /// future ended cleanly.
    fn stop_on_drop(&mut self) {
        if std::thread::panicking() {
            self.shutdown.cancel();
            if let Some(thread) = self.thread.take() {
                let _ = self.done.recv_timeout(WAIT);
                let _ = thread.join();
            }
            return;
        }
        if let Some(Err(e)) = self.stop() {
            panic!("{} ended with an error on shutdown: {e}", self.what);
        }
    }
}

/// `statsd::server::run` in this process; stopped (and checked) on drop.
pub struct Server {
    /// The metrics address (UDP and TCP), on loopback.
    metrics: SocketAddr,
    /// The monitoring address, on loopback, unless it is off.
    monitor: Option<SocketAddr>,
    /// Etsy's management console, on loopback, when `--mgmt-port` is given.
    mgmt: Option<SocketAddr>,
    /// `run` on its runtime.
    running: Running,
}

/// `addr` with an unspecified IP (`[::]`, `0.0.0.0`) made 127.0.0.1: the
/// address a test on this machine sends to.
fn loopback(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    }
}

impl Server {
    /// Parses `flags` as the binary does (its name is added in front; give
    /// `-p 0` yourself), binds, and starts `run`. Returns once the sockets
    /// are bound: anything sent from then on is received.
    pub fn start(flags: &[&str]) -> Server {
        let args = std::iter::once("statsd").chain(flags.iter().copied());
        let config = Config::parse_from(args)
            .unwrap_or_else(|e| panic!("statsd flags {flags:?} refused: {e:?}"));
        Server::with_config(config)
    }

    /// Binds what `config` says and starts `run` on it.
    pub fn with_config(config: Config) -> Server {
        let listeners = Listeners::bind(&config.bind)
            .unwrap_or_else(|e| panic!("cannot bind {:?}: {e}", config.bind));
        let metrics = loopback(listeners.metrics_addr().expect("metrics address"));
        let monitor = listeners.monitor_addr().map(loopback);
        let mgmt = listeners.mgmt_addr().map(loopback);
        let running = Running::spawn("statsd server::run", 2, move |shutdown| {
            statsd::server::run(listeners, config, shutdown)
        });
        Server {
            metrics,
            monitor,
            mgmt,
            running,
        }
    }

    /// The management console's address (panics unless `--mgmt-port` was given).
    pub fn mgmt_addr(&self) -> SocketAddr {
        self.mgmt
            .expect("the server's mgmt port is off (give --mgmt-port)")
    }

    /// Stops the server as SIGTERM stops the binary (cancels the token),
    /// waits (bounded) for `run` to return, and asserts it returned Ok.
    /// Returns how long the stop took.
    pub fn stop(mut self) -> Duration {
        let started = Instant::now();
        match self.running.stop() {
            Some(Ok(())) => started.elapsed(),
            Some(Err(e)) => panic!("server::run returned an error on shutdown: {e}"),
            None => unreachable!("a server stops once"),
        }
    }
}

impl Statsd for Server {
    fn metrics_addr(&self) -> SocketAddr {
        self.metrics
    }

    fn monitor_addr(&self) -> SocketAddr {
        self.monitor.expect("the server's monitor port is off")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.running.stop_on_drop();
    }
}

/// `admin::serve` alone on 127.0.0.1:0, answering from `source`, on its
/// own runtime (one worker, like a busy daemon); stopped (and checked) on
/// drop.
pub struct AdminServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// `serve` on its runtime.
    running: Running,
}

impl AdminServer {
    pub fn start(limits: AdminLimits, source: IstatsSource) -> AdminServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("local addr");
        let running = Running::spawn("admin::serve", 1, move |shutdown| async move {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            admin::serve(listener, source, limits, shutdown).await
        });
        AdminServer { addr, running }
    }

    /// Cancels the token, waits (bounded) for `serve` to return, and asserts
    /// it returned Ok. Returns how long the stop took.
    pub fn stop(mut self) -> Duration {
        let started = Instant::now();
        match self.running.stop() {
            Some(Ok(())) => started.elapsed(),
            Some(Err(e)) => panic!("admin::serve returned an error on shutdown: {e}"),
            None => unreachable!("a server stops once"),
        }
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        self.running.stop_on_drop();
    }
}
