//! The `statsd` daemon: flags -> config, bind, run until SIGTERM or SIGINT.

use std::process::ExitCode;

use statsd::config::{Config, ParseOutcome};
use statsd::logging::{eprint_line, print_line};
use statsd::net::Listeners;
use statsd::server;
use tokio_util::sync::CancellationToken;

/// Installs the SIGTERM/SIGINT handlers at once (before the "listening"
/// line, so a supervisor's early TERM is never fatal); the first of them
/// cancels `shutdown`.
fn cancel_on_signal(shutdown: CancellationToken) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        shutdown.cancel();
    });
    Ok(())
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
    if config.flush.debug {
        print_line(&format!("effective settings: {config:#?}"));
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
        let shutdown = CancellationToken::new();
        if let Err(e) = cancel_on_signal(shutdown.clone()) {
            eprint_line(&format!("statsd: cannot install signal handlers: {e}"));
            return ExitCode::FAILURE;
        }
        let listeners = match Listeners::bind(&config.bind) {
            Ok(listeners) => listeners,
            Err(e) => {
                let name = if config.bind.name.is_empty() {
                    "*"
                } else {
                    &config.bind.name
                };
                eprint_line(&format!(
                    "statsd: cannot bind {name} port {}: {e}",
                    config.bind.port
                ));
                return ExitCode::FAILURE;
            }
        };
        eprint_line(&format!("statsd: {}", listeners.describe()));
        for warning in listeners.warnings(config.bind.udp_buffer) {
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
