//! The `statsd` daemon: flags -> config, bind, run until SIGTERM or SIGINT.

use std::process::ExitCode;

use statsd::config::{Config, ParseOutcome};
use statsd::logging::{eprint_line, print_line};
use statsd::server::{self, Listeners};

/// Installs the SIGTERM/SIGINT handlers at once (before the "listening"
/// line, so a supervisor's early TERM is never fatal) and returns the future
/// that resolves on the first of them.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

fn main() -> ExitCode {
    let config = match Config::parse_from(std::env::args_os()) {
        Ok(config) => config,
        Err(ParseOutcome::Info(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(ParseOutcome::Invalid(reason)) => {
            eprint_line(&format!("statsd: {reason}"));
            return ExitCode::from(2);
        }
    };
    // NSCA settings are checked before anything binds: a bad one stops the start.
    if config.cli.alert {
        if let Err(e) = server::nsca_client(&config) {
            eprint_line(&format!("statsd: NSCA alerting: {e}"));
            return ExitCode::from(2);
        }
    }
    if config.cli.debug {
        print_line(&format!("effective settings: {:#?}", config.cli));
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("statsd")
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprint_line(&format!("statsd: cannot start the runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let shutdown = match shutdown_signal() {
            Ok(shutdown) => shutdown,
            Err(e) => {
                eprint_line(&format!("statsd: cannot install signal handlers: {e}"));
                return ExitCode::FAILURE;
            }
        };
        let listeners = match Listeners::bind(&config) {
            Ok(listeners) => listeners,
            Err(e) => {
                let name = if config.cli.name.is_empty() {
                    "*"
                } else {
                    &config.cli.name
                };
                eprint_line(&format!(
                    "statsd: cannot bind {name} port {}: {e}",
                    config.cli.port
                ));
                return ExitCode::FAILURE;
            }
        };
        eprint_line(&format!("statsd: {}", listeners.describe()));
        for warning in listeners.warnings(config.cli.udp_buffer) {
            eprint_line(&format!("statsd: warning: {warning}"));
        }
        match server::run(listeners, config, shutdown).await {
            Ok(()) => {
                eprint_line("statsd: stopped after the final flush");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprint_line(&format!("statsd: {e}"));
                ExitCode::FAILURE
            }
        }
    })
}
