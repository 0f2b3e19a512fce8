//! The real `statsd` binary as a black box: what only a process shows (flags
//! as argv, signals, exit codes, what it prints on stdout and stderr). And
//! bounded runs of any child that is expected to exit by itself.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use super::{drain, lines_until, Statsd, WAIT};

/// The daemon under test.
pub const STATSD: &str = env!("CARGO_BIN_EXE_statsd");

/// The monitor command under test.
pub const STATSDMONITOR: &str = env!("CARGO_BIN_EXE_statsdmonitor");

/// A running daemon; killed on drop if the test did not stop it.
pub struct Daemon {
    pub child: Child,
    /// Metrics port (UDP and TCP), from its start-up line.
    pub port: u16,
    /// XML-RPC port, from its start-up line; None when it is off.
    pub monitor_port: Option<u16>,
    /// Lines the daemon writes on stderr, as they come.
    pub stderr: Receiver<String>,
    /// Lines the daemon writes on stdout, as they come.
    pub stdout: Receiver<String>,
}

/// The lines of `stream` as they come, read on a thread of their own.
pub fn lines_of(stream: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Daemon {
    /// Starts the binary with `args` (add `-p 0` yourself) and waits for its
    /// "listening" line to learn the ports.
    pub fn start(args: &[&str]) -> Daemon {
        Daemon::start_with_stdout(args, Stdio::piped())
    }

    /// As [`Daemon::start`], with the daemon's stdout going to `stdout`
    /// (a pipe whose reader is gone, /dev/null, ...); unless it is
    /// `Stdio::piped()`, [`Daemon::stdout`] never gets a line.
    // Drop kills and waits for the child; clippy cannot see that.
    #[allow(clippy::zombie_processes)]
    pub fn start_with_stdout(args: &[&str], stdout: Stdio) -> Daemon {
        let mut child = Command::new(STATSD)
            .args(args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .expect("start statsd");
        let stderr = lines_of(child.stderr.take().unwrap());
        let stdout = match child.stdout.take() {
            Some(out) => lines_of(out),
            None => channel().1,
        };
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = stderr.recv_timeout(left).unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("statsd {args:?} printed no listening line")
            });
            // "udp+tcp ADDR", or one of them under --transports.
            let metrics = ["on udp+tcp ", "on udp ", "on tcp "]
                .iter()
                .find_map(|marker| port_after(&line, marker));
            if let Some(port) = metrics {
                let monitor_port = port_after(&line, "monitor (XML-RPC) on ");
                return Daemon {
                    child,
                    port,
                    monitor_port,
                    stderr,
                    stdout,
                };
            }
        }
    }

    /// Sends SIGTERM and waits (bounded) for the exit code.
    pub fn terminate(&mut self) -> i32 {
        signal(self.child.id(), libc::SIGTERM);
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "statsd did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for a stdout line containing `text`.
    pub fn wait_stdout(&self, text: &str) -> String {
        lines_until(&self.stdout, "statsd stdout", text)
            .pop()
            .unwrap()
    }

    /// Waits for a stderr line containing `text`.
    pub fn wait_stderr(&self, text: &str) -> String {
        lines_until(&self.stderr, "statsd stderr", text)
            .pop()
            .unwrap()
    }

    /// Every stderr line so far, without waiting.
    pub fn stderr_so_far(&self) -> Vec<String> {
        drain(&self.stderr)
    }
}

impl Statsd for Daemon {
    fn metrics_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn monitor_addr(&self) -> SocketAddr {
        let port = self.monitor_port.expect("the daemon's monitor port is off");
        SocketAddr::from(([127, 0, 0, 1], port))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The port of the address after `marker` in a "listening" line.
pub fn port_after(line: &str, marker: &str) -> Option<u16> {
    let rest = &line[line.find(marker)? + marker.len()..];
    let addr = rest.split_whitespace().next()?;
    addr.rsplit(':').next()?.trim_end_matches(',').parse().ok()
}

/// Sends `signal` to the process `pid`.
pub fn signal(pid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) on the pid of a child of ours; no memory is involved.
    let done = unsafe { libc::kill(pid as libc::pid_t, signal) };
    assert_eq!(done, 0, "kill({pid}, {signal}) failed");
}

/// Runs `cmd` to completion within [`WAIT`] (stdin empty, stdout and stderr
/// captured), killing it past that and failing the test.
pub fn run_bounded(mut cmd: Command) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    run_bounded_child(child)
}

/// Waits (bounded by [`WAIT`]) for a started child with piped output;
/// kills it and panics if it does not finish.
pub fn run_bounded_child(child: Child) -> Output {
    let pid = child.id();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(WAIT) {
        Ok(out) => out.expect("child output"),
        Err(_) => {
            // The waiting thread still owns the child and reaps it.
            signal(pid, libc::SIGKILL);
            panic!("child {pid} did not finish within {WAIT:?}");
        }
    }
}

/// Runs `statsd ARGS`, expecting it to exit by itself (bounded).
pub fn run_statsd(args: &[&str]) -> Output {
    let mut cmd = Command::new(STATSD);
    cmd.args(args);
    run_bounded(cmd)
}

/// Runs `statsdmonitor ARGS` to completion (bounded).
pub fn run_statsdmonitor(args: &[&str]) -> Output {
    let mut cmd = Command::new(STATSDMONITOR);
    cmd.args(args);
    run_bounded(cmd)
}
