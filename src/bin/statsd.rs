//! The `statsd` daemon: flags -> config, bind, run until SIGTERM or SIGINT.

use std::process::ExitCode;

use statsd::config::{Config, ParseOutcome};
use statsd::logging::{eprint_line, print_line};
use statsd::server::{self, Listeners};

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        eprint_line("statsd: cannot install signal handlers; stop with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
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
        match server::run(listeners, config, shutdown_signal()).await {
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
