//! The `statsd` daemon: flags -> config, bind, run until SIGTERM or SIGINT.

use std::process::ExitCode;

use statsd::config::{Config, ParseOutcome};
use statsd::logging::{eprint_line, print_line};
use statsd::net::unix::UnixSocketError;
use statsd::net::Listeners;
use statsd::server;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Installs the signal handlers at once (before the "listening" line, so a
/// supervisor's early TERM is never fatal): the first SIGTERM or SIGINT
/// cancels `shutdown`; SIGHUP (`sv hup`), SIGUSR1 and SIGUSR2, whose default
/// would kill the process and lose the interval, are only logged. (SIGPIPE
/// is ignored by the Rust runtime: a closed pipe is a write error.) With
/// `--config`, SIGHUP asks `reload` to read the file again instead.
fn cancel_on_signal(
    shutdown: CancellationToken,
    reload: Option<mpsc::UnboundedSender<()>>,
) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let mut usr2 = signal(SignalKind::user_defined2())?;
    tokio::spawn(async move {
        loop {
            let ignored = tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hup.recv() => match &reload {
                    Some(reload) if reload.send(()).is_ok() => continue,
                    _ => "SIGHUP ignored: there is no config file to reload",
                },
                _ = usr1.recv() => "SIGUSR1 ignored",
                _ = usr2.recv() => "SIGUSR2 ignored",
            };
            eprint_line(&format!("statsd: {ignored}"));
        }
        shutdown.cancel();
    });
    Ok(())
}

/// How long the log lines still queued at exit may take to be written (a
/// stuck log pipe must not keep the process alive).
const LOG_DRAIN: std::time::Duration = std::time::Duration::from_secs(1);

fn main() -> ExitCode {
    statsd::memory::give_back_large_blocks();
    let status = run();
    statsd::logging::drain(LOG_DRAIN);
    status
}

fn run() -> ExitCode {
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
        let (reload, reloads) = mpsc::unbounded_channel();
        let reload = config.loader.path.is_some().then_some(reload);
        let reloads = reload.is_some().then_some(reloads);
        if let Err(e) = cancel_on_signal(shutdown.clone(), reload) {
            eprint_line(&format!("statsd: cannot install signal handlers: {e}"));
            return ExitCode::FAILURE;
        }
        let listeners = match Listeners::bind(&config.bind) {
            Ok(listeners) => listeners,
            Err(e) => {
                // The socket path's own complaint says it all.
                let unix = e
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<UnixSocketError>());
                if let Some(unix) = unix {
                    eprint_line(&format!("statsd: {unix}"));
                    return ExitCode::FAILURE;
                }
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
        let mut warnings = config.warnings();
        warnings.extend(listeners.warnings(config.bind.udp_buffer));
        for warning in warnings {
            eprint_line(&format!("statsd: warning: {warning}"));
        }
        match server::run_with_reloads(listeners, config, shutdown, reloads).await {
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
